//! Trace-context headers as sources of the correlation ID: W3C `traceparent`, AWS X-Ray's
//! `X-Amzn-Trace-Id` and Google Cloud's `X-Cloud-Trace-Context`.
//!
//! Each parser is strict: it accepts exactly what its specification allows and returns the
//! trace ID as 32 lowercase hex digits, the form OpenTelemetry uses, so logs, traces and
//! the response header can share one ID. Anything else is malformed, and the caller treats
//! it like an invalid correlation header.

use std::fmt;

/// Why a trace-context header was not used. Carries no part of the value, so it can be
/// logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum MalformedTraceContext {
    /// A W3C `traceparent` that is not `version-traceid-parentid-flags` as the
    /// specification allows.
    TraceParent,
    /// An `X-Amzn-Trace-Id` without a well-formed `Root=1-<8 hex>-<24 hex>` field.
    AmazonTraceId,
    /// An `X-Cloud-Trace-Context` that is not `<32 hex>[/<span id>][;o=<0|1>]`.
    CloudTraceContext,
}

impl fmt::Display for MalformedTraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TraceParent => "malformed traceparent header",
            Self::AmazonTraceId => "malformed X-Amzn-Trace-Id header",
            Self::CloudTraceContext => "malformed X-Cloud-Trace-Context header",
        })
    }
}

impl std::error::Error for MalformedTraceContext {}

/// The trace ID of a W3C `traceparent` value (Trace Context Level 1, section 3.2):
/// `version "-" trace-id "-" parent-id "-" trace-flags`, lowercase hex of 2, 32, 16 and 2
/// digits, with a version other than `ff`, and a trace ID and parent ID not all zeros.
/// Version `00` allows nothing after the flags; a later version may add fields after
/// another `-`, which are ignored, as the specification asks.
pub(crate) fn trace_id_from_traceparent(value: &[u8]) -> Result<&str, MalformedTraceContext> {
    const MALFORMED: MalformedTraceContext = MalformedTraceContext::TraceParent;
    // 2 + 1 + 32 + 1 + 16 + 1 + 2
    const LENGTH: usize = 55;
    if value.len() < LENGTH {
        return Err(MALFORMED);
    }
    let (fields, rest) = value.split_at(LENGTH);
    let version = &fields[0..2];
    let trace_id = &fields[3..35];
    let parent_id = &fields[36..52];
    let flags = &fields[53..55];
    let dashes = [fields[2], fields[35], fields[52]] == [b'-'; 3];
    let well_formed = dashes
        && is_lower_hex(version)
        && is_lower_hex(trace_id)
        && is_lower_hex(parent_id)
        && is_lower_hex(flags)
        && version != b"ff"
        && !is_all_zeros(trace_id)
        && !is_all_zeros(parent_id);
    let rest_allowed = if version == b"00" {
        rest.is_empty()
    } else {
        rest.is_empty() || rest[0] == b'-'
    };
    if well_formed && rest_allowed {
        Ok(as_str(trace_id))
    } else {
        Err(MALFORMED)
    }
}

/// The trace ID of an AWS X-Ray `X-Amzn-Trace-Id` value: its `Root` field, among
/// `;`-separated `key=value` fields, must be `1-<8 hex>-<24 hex>` (version 1, the epoch
/// seconds, 96 random bits), not all zeros. Returned as the 32 hex digits OpenTelemetry's
/// X-Ray propagator uses as the trace ID, lowercase.
pub(crate) fn trace_id_from_amazon_trace_id(value: &[u8]) -> Result<String, MalformedTraceContext> {
    const MALFORMED: MalformedTraceContext = MalformedTraceContext::AmazonTraceId;
    let mut roots = value
        .split(|byte| *byte == b';')
        .map(trim_spaces)
        .filter_map(|field| field.strip_prefix(b"Root="));
    let root = roots.next().ok_or(MALFORMED)?;
    if roots.next().is_some() || root.len() != 35 {
        return Err(MALFORMED);
    }
    let (version, epoch, random) = (&root[0..2], &root[2..10], &root[10..]);
    let well_formed =
        version == b"1-" && is_hex(epoch) && random.first() == Some(&b'-') && is_hex(&random[1..]);
    if !well_formed {
        return Err(MALFORMED);
    }
    let mut id = String::with_capacity(32);
    id.push_str(as_str(epoch));
    id.push_str(as_str(&random[1..]));
    id.make_ascii_lowercase();
    if is_all_zeros(id.as_bytes()) {
        return Err(MALFORMED);
    }
    Ok(id)
}

/// The trace ID of a Google Cloud `X-Cloud-Trace-Context` value:
/// `<trace id>[/<span id>][;o=<options>]`, where the trace ID is 32 hex digits, not all
/// zeros, the span ID a decimal 64-bit number and the options `0` or `1`. Returned
/// lowercase.
pub(crate) fn trace_id_from_cloud_trace_context(
    value: &[u8],
) -> Result<String, MalformedTraceContext> {
    const MALFORMED: MalformedTraceContext = MalformedTraceContext::CloudTraceContext;
    let (before_options, options) = match value.iter().position(|byte| *byte == b';') {
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    };
    let (trace_id, span_id) = match before_options.iter().position(|byte| *byte == b'/') {
        Some(at) => (&before_options[..at], Some(&before_options[at + 1..])),
        None => (before_options, None),
    };
    let span_ok = span_id.is_none_or(|span| {
        !span.is_empty()
            && span.iter().all(u8::is_ascii_digit)
            && as_str(span).parse::<u64>().is_ok()
    });
    let options_ok = options.is_none_or(|options| options == b"o=0" || options == b"o=1");
    if trace_id.len() != 32
        || !is_hex(trace_id)
        || is_all_zeros(trace_id)
        || !span_ok
        || !options_ok
    {
        return Err(MALFORMED);
    }
    Ok(as_str(trace_id).to_ascii_lowercase())
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
}

fn is_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_hexdigit)
}

fn is_all_zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|byte| *byte == b'0')
}

fn trim_spaces(field: &[u8]) -> &[u8] {
    let start = field
        .iter()
        .position(|byte| *byte != b' ')
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|byte| *byte != b' ')
        .map_or(start, |at| at + 1);
    &field[start..end]
}

/// The bytes as text; only called on bytes already checked to be ASCII hex.
fn as_str(ascii: &[u8]) -> &str {
    std::str::from_utf8(ascii).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A typical value of each format, and one it refuses.
    #[test]
    fn each_format_gives_the_trace_id_of_a_typical_value() {
        let id =
            trace_id_from_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(id.unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            trace_id_from_traceparent(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .is_err()
        );
        let id =
            trace_id_from_amazon_trace_id(b"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
        assert_eq!(id.unwrap(), "5759e988bd862e3fe1be46a994272793");
        assert!(
            trace_id_from_amazon_trace_id(b"Self=1-5759e988-bd862e3fe1be46a994272793").is_err()
        );
        let id = trace_id_from_cloud_trace_context(b"105445aa7843bc8bf206b12000100000/1;o=1");
        assert_eq!(id.unwrap(), "105445aa7843bc8bf206b12000100000");
        assert!(
            trace_id_from_cloud_trace_context(b"105445aa7843bc8bf206b12000100000/x;o=1").is_err()
        );
    }

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn traceparent_accepts_the_specifications_examples() {
        for value in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            // A later version may append fields.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
        ] {
            assert_eq!(
                trace_id_from_traceparent(value.as_bytes()),
                Ok(TRACE_ID),
                "{value}"
            );
        }
    }

    #[test]
    fn traceparent_rejects_what_the_specification_forbids() {
        for value in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace ID
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // all-zero parent ID
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace ID
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", // long trace ID
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",  // short parent ID
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  // short flags
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // short version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // v00 with more
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // no dash before more
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", // wrong separators
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", // not hex
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // leading space
        ] {
            assert_eq!(
                trace_id_from_traceparent(value.as_bytes()),
                Err(MalformedTraceContext::TraceParent),
                "{value:?}"
            );
        }
    }

    #[test]
    fn amazon_trace_id_takes_the_root_among_other_fields() {
        for value in [
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "Self=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272793",
            "Parent=53995c3f42cd8ad8; Root=1-5759E988-BD862E3FE1BE46A994272793 ;Sampled=0",
        ] {
            assert_eq!(
                trace_id_from_amazon_trace_id(value.as_bytes()).as_deref(),
                Ok("5759e988bd862e3fe1be46a994272793"),
                "{value}"
            );
        }
    }

    #[test]
    fn amazon_trace_id_rejects_a_malformed_or_missing_root() {
        for value in [
            "",
            "Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793", // version 2
            "Root=1-5759e98-bd862e3fe1be46a994272793",  // short epoch
            "Root=1-5759e988-bd862e3fe1be46a99427279",  // short random part
            "Root=1-5759e988-bd862e3fe1be46a99427279z", // not hex
            "Root=1-5759e988bd862e3fe1be46a994272793",  // missing dash
            "Root=1-00000000-000000000000000000000000", // all zeros
            "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272793",
        ] {
            assert_eq!(
                trace_id_from_amazon_trace_id(value.as_bytes()),
                Err(MalformedTraceContext::AmazonTraceId),
                "{value:?}"
            );
        }
    }

    #[test]
    fn cloud_trace_context_accepts_its_three_forms() {
        for value in [
            "105445aa7843bc8bf206b12000100000",
            "105445aa7843bc8bf206b12000100000/1",
            "105445aa7843bc8bf206b12000100000/18446744073709551615;o=1",
            "105445AA7843BC8BF206B12000100000;o=0",
        ] {
            assert_eq!(
                trace_id_from_cloud_trace_context(value.as_bytes()).as_deref(),
                Ok("105445aa7843bc8bf206b12000100000"),
                "{value}"
            );
        }
    }

    #[test]
    fn cloud_trace_context_rejects_malformed_values() {
        for value in [
            "",
            "00000000000000000000000000000000/1;o=1", // all zeros
            "105445aa7843bc8bf206b1200010000/1;o=1",  // short
            "105445aa7843bc8bf206b12000100000/;o=1",  // empty span
            "105445aa7843bc8bf206b12000100000/-1;o=1", // negative span
            "105445aa7843bc8bf206b12000100000/18446744073709551616", // span over 64 bits
            "105445aa7843bc8bf206b12000100000/1;o=2", // options
            "105445aa7843bc8bf206b12000100000/1;o=1;x", // extra field
        ] {
            assert_eq!(
                trace_id_from_cloud_trace_context(value.as_bytes()),
                Err(MalformedTraceContext::CloudTraceContext),
                "{value:?}"
            );
        }
    }

    proptest! {
        /// Whatever the bytes, the parsers never panic, and what they return is always 32
        /// lowercase hex digits, not all zeros: safe as a correlation ID.
        #[test]
        fn parsers_return_only_nonzero_lowercase_hex(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            let results = [
                trace_id_from_traceparent(&value).map(str::to_owned),
                trace_id_from_amazon_trace_id(&value),
                trace_id_from_cloud_trace_context(&value),
            ];
            for id in results.into_iter().flatten() {
                prop_assert_eq!(id.len(), 32);
                prop_assert!(is_lower_hex(id.as_bytes()) && !is_all_zeros(id.as_bytes()));
            }
        }

        /// Every well-formed traceparent yields its trace ID; one changed byte in the
        /// fixed part either keeps it well-formed or is rejected, never misread.
        #[test]
        fn traceparent_round_trips(
            trace in "[0-9a-f]{32}", parent in "[0-9a-f]{16}", flags in "[0-9a-f]{2}",
            at in 0usize..55, byte in any::<u8>(),
        ) {
            prop_assume!(!is_all_zeros(trace.as_bytes()) && !is_all_zeros(parent.as_bytes()));
            let value = format!("00-{trace}-{parent}-{flags}");
            prop_assert_eq!(trace_id_from_traceparent(value.as_bytes()), Ok(trace.as_str()));
            let mut changed = value.clone().into_bytes();
            changed[at] = byte;
            if let Ok(id) = trace_id_from_traceparent(&changed) {
                prop_assert_eq!(id.as_bytes(), &changed[3..35]);
            }
        }

        /// Any well-formed X-Ray root, among any other fields, yields its 32 hex digits.
        #[test]
        fn amazon_trace_id_round_trips(
            epoch in "[0-9a-f]{8}", random in "[0-9a-f]{24}", sampled in proptest::option::of(0u8..2),
        ) {
            prop_assume!(!is_all_zeros(format!("{epoch}{random}").as_bytes()));
            let mut value = format!("Root=1-{epoch}-{random}");
            if let Some(sampled) = sampled {
                value = format!("Parent=53995c3f42cd8ad8;{value};Sampled={sampled}");
            }
            prop_assert_eq!(trace_id_from_amazon_trace_id(value.as_bytes()), Ok(format!("{epoch}{random}")));
        }
    }
}
