//! Where a request's incoming ID may come from, and whom to trust with it.
//!
//! The sources are tried in order and the first one present decides, as the incoming
//! header names always did: a correlation header, a trace-context header (W3C
//! `traceparent`, AWS `X-Amzn-Trace-Id`, Google `X-Cloud-Trace-Context`) or a function of
//! the request's headers. Before any of them counts, the trust policy asks whether the
//! connection's peer may set the ID at all.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::id::CorrelationId;
use crate::trace_context::{
    MalformedTraceContext, trace_id_from_amazon_trace_id, trace_id_from_cloud_trace_context,
    trace_id_from_traceparent,
};

/// The headers the trace-context sources read: W3C Trace Context's `traceparent`, AWS
/// X-Ray's `X-Amzn-Trace-Id` and Google Cloud's `X-Cloud-Trace-Context`.
static TRACE_CONTEXT_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("x-amzn-trace-id"),
    HeaderName::from_static("x-cloud-trace-context"),
];

/// A request's headers, as a source reads them, whatever the framework's header map.
///
/// Implemented for `http` 1's [`HeaderMap`]; an adapter over another map (actix-web 4's
/// `http` 0.2, say) implements it on a wrapper of its own.
pub trait RequestHeaders {
    /// The first value under `name`, and whether it is the only one.
    fn first_value(&self, name: &HeaderName) -> Option<FirstValue<'_>>;

    /// The bytes of the first value under `name`.
    fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        self.first_value(name).map(FirstValue::into_bytes)
    }

    /// Calls `each` with the bytes of every value under `name`, in order: for headers
    /// whose values make one list, such as `baggage`. By default, the first value alone;
    /// an adapter whose map holds repeated headers gives them all.
    fn each_value<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
        if let Some(value) = self.get(name) {
            each(value);
        }
    }
}

impl RequestHeaders for HeaderMap {
    fn first_value(&self, name: &HeaderName) -> Option<FirstValue<'_>> {
        let mut values = self.get_all(name).iter();
        let first = values.next()?;
        Some(FirstValue::new(first, values.next().is_none()))
    }

    fn each_value<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
        for value in self.get_all(name) {
            each(value.as_bytes());
        }
    }
}

/// The first value a request carries under a header name, and whether it is alone there.
#[derive(Debug, Clone, Copy)]
pub struct FirstValue<'a> {
    value: Candidate<'a>,
    alone: bool,
}

impl<'a> FirstValue<'a> {
    /// An `http` 1 value: an accepted ID shares its bytes.
    #[must_use]
    pub fn new(value: &'a HeaderValue, alone: bool) -> Self {
        Self {
            value: Candidate::Shared(value),
            alone,
        }
    }

    /// The bytes of a header value of another type: an accepted ID copies them once.
    #[must_use]
    pub fn from_bytes(value: &'a [u8], alone: bool) -> Self {
        Self {
            value: Candidate::Borrowed(value),
            alone,
        }
    }

    /// The value's bytes.
    #[must_use]
    pub fn into_bytes(self) -> &'a [u8] {
        self.value.as_bytes()
    }
}

/// A header value as a source found it: an `http` 1 value, whose bytes an accepted ID
/// shares, or the bytes of another header type, which it copies.
#[derive(Debug, Clone, Copy)]
pub(super) enum Candidate<'a> {
    Shared(&'a HeaderValue),
    Borrowed(&'a [u8]),
}

impl<'a> Candidate<'a> {
    pub(super) fn as_bytes(self) -> &'a [u8] {
        match self {
            Self::Shared(value) => value.as_bytes(),
            Self::Borrowed(bytes) => bytes,
        }
    }

    /// The ID, once the bytes are known to pass the safety rules.
    pub(super) fn into_checked_id(self) -> CorrelationId {
        match self {
            Self::Shared(value) => CorrelationId::from_checked_header_value(value),
            Self::Borrowed(bytes) => CorrelationId::from_checked_bytes(bytes),
        }
    }
}

/// A function of a request's headers that finds its ID: see [`IdSource::custom`].
type CustomFn = dyn Fn(&dyn RequestHeaders) -> Option<String> + Send + Sync;

/// One place a request's incoming ID may come from; a configuration tries its
/// [`sources`](crate::CorrelationConfigBuilder::sources) in order, and the first one present
/// decides.
///
/// A correlation header's value must pass the configured validator. A trace-context
/// header's parser is strict, and its trace ID (32 lowercase hex digits, the form
/// OpenTelemetry uses) is the ID; a custom source's value is the ID. Every value still
/// passes the safety rules, the maximum length and the transformer; one that does not, or a
/// malformed trace-context header, is treated like an invalid correlation header: replaced
/// by a generated ID, with one warning that never contains the value.
///
/// ```
/// use correlation_core::{CorrelationConfig, IdSource, Outcome};
/// use correlation_core::http::HeaderMap;
///
/// let config = CorrelationConfig::builder()
///     .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
///     .build()?;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?);
/// let decision = config.decide(&headers);
/// assert_eq!(decision.outcome, Outcome::Accepted);
/// assert_eq!(decision.id, "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// // The correlation header comes first, so it wins.
/// headers.insert("x-request-id", "9e6454c4-21d5-4e4a-a66a-b28f15576414".parse()?);
/// assert_eq!(config.decide(&headers).id, "9e6454c4-21d5-4e4a-a66a-b28f15576414");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IdSource {
    pub(super) kind: SourceKind,
}

#[derive(Clone)]
pub(super) enum SourceKind {
    Header(String),
    Trace(TraceFormat),
    Custom {
        name: Cow<'static, str>,
        find: Arc<CustomFn>,
    },
}

/// The trace-context formats a source can read, each the index of its header in
/// [`TRACE_CONTEXT_HEADERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TraceFormat {
    TraceParent = 0,
    AmazonTraceId = 1,
    CloudTraceContext = 2,
}

impl TraceFormat {
    pub(super) fn header_name(self) -> &'static HeaderName {
        &TRACE_CONTEXT_HEADERS[self as usize]
    }

    pub(super) fn trace_id(self, value: &[u8]) -> Result<Cow<'_, str>, MalformedTraceContext> {
        match self {
            Self::TraceParent => trace_id_from_traceparent(value).map(Cow::Borrowed),
            Self::AmazonTraceId => trace_id_from_amazon_trace_id(value).map(Cow::Owned),
            Self::CloudTraceContext => trace_id_from_cloud_trace_context(value).map(Cow::Owned),
        }
    }
}

impl IdSource {
    /// A correlation header (case-insensitive): its first value is the ID, if it passes
    /// the validator. The first header among the sources is where the request carries the
    /// final ID, and the response too unless
    /// [`response_header_name`](crate::CorrelationConfigBuilder::response_header_name) says
    /// otherwise.
    pub fn header(name: impl Into<String>) -> Self {
        Self {
            kind: SourceKind::Header(name.into()),
        }
    }

    /// The W3C Trace Context `traceparent` header: its trace ID is the ID. Accepted as
    /// the specification allows: `version-traceid-parentid-flags` in lowercase hex, a
    /// version other than `ff`, and trace and parent IDs not all zeros.
    pub fn traceparent() -> Self {
        Self::trace(TraceFormat::TraceParent)
    }

    /// AWS X-Ray's `X-Amzn-Trace-Id` header (set by AWS load balancers and API Gateway):
    /// the trace ID of its `Root` field, `1-<8 hex>-<24 hex>` and not all zeros, as 32
    /// lowercase hex digits.
    pub fn amazon_trace_id() -> Self {
        Self::trace(TraceFormat::AmazonTraceId)
    }

    /// Google Cloud's `X-Cloud-Trace-Context` header (set by its load balancers): its
    /// trace ID, from `<32 hex>[/<span id>][;o=<0|1>]`, not all zeros, lowercase.
    pub fn cloud_trace_context() -> Self {
        Self::trace(TraceFormat::CloudTraceContext)
    }

    fn trace(format: TraceFormat) -> Self {
        Self {
            kind: SourceKind::Trace(format),
        }
    }

    /// A function of the request's headers: `Some(id)` when it finds one, `None` when the
    /// request carries nothing for it (the next source is then tried). `name` names the
    /// source in warnings. The function must not panic; if it does, the request gets a
    /// generated ID and a warning.
    ///
    /// ```
    /// use correlation_core::http::HeaderName;
    /// use correlation_core::{CorrelationConfig, IdSource};
    ///
    /// // Zipkin's B3 trace ID, as sent by older Spring Cloud Sleuth services.
    /// static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
    /// let b3 = IdSource::custom("b3", |headers| {
    ///     let value = headers.get(&B3_TRACE_ID)?;
    ///     Some(String::from_utf8_lossy(value).into_owned())
    /// });
    /// let config = CorrelationConfig::builder()
    ///     .sources([IdSource::header("X-Request-ID"), b3])
    ///     .build()?;
    ///
    /// let mut headers = correlation_core::http::HeaderMap::new();
    /// headers.insert("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7".parse()?);
    /// assert_eq!(config.decide(&headers).id, "80f198ee56343ba864fe8b2a57d3eff7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn custom<F>(name: impl Into<Cow<'static, str>>, find: F) -> Self
    where
        F: Fn(&dyn RequestHeaders) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            kind: SourceKind::Custom {
                name: name.into(),
                find: Arc::new(find),
            },
        }
    }
}

impl fmt::Debug for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SourceKind::Header(name) => f.debug_tuple("Header").field(name).finish(),
            SourceKind::Trace(format) => fmt::Debug::fmt(format, f),
            SourceKind::Custom { name, .. } => f.debug_tuple("Custom").field(name).finish(),
        }
    }
}

/// A source as a checked configuration holds it.
pub(super) enum Source {
    /// The correlation header at this index of the incoming names.
    Header(usize),
    Trace(TraceFormat),
    Custom {
        name: Cow<'static, str>,
        find: Arc<CustomFn>,
    },
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(index) => f.debug_tuple("Header").field(index).finish(),
            Self::Trace(format) => fmt::Debug::fmt(format, f),
            Self::Custom { name, .. } => f.debug_tuple("Custom").field(name).finish(),
        }
    }
}

/// What the first source a request carries found.
pub(super) enum Found<'h> {
    /// A correlation header's first value, the index of its name among the incoming
    /// names, and whether the value is alone there.
    Header {
        value: Candidate<'h>,
        index: usize,
        alone: bool,
    },
    Trace(TraceFormat, &'h [u8]),
    /// `None`: the function panicked.
    Custom(&'h str, Option<String>),
}

impl Found<'_> {
    /// The value found, as the warning about it being invalid names it (never showing it).
    pub(super) fn describe(&self) -> Cow<'static, str> {
        match self {
            Self::Header { .. } => Cow::Borrowed("request header value"),
            Self::Trace(format, _) => format!("the {} header value", format.header_name()).into(),
            Self::Custom(name, _) => format!("the value of source `{name}`").into(),
        }
    }
}

impl Source {
    /// What this source finds in `headers`, if the request carries it; `incoming` are the
    /// configuration's correlation header names.
    pub(super) fn find<'h, H: RequestHeaders>(
        &'h self,
        headers: &'h H,
        incoming: &[HeaderName],
    ) -> Option<Found<'h>> {
        match self {
            Self::Header(index) => {
                headers
                    .first_value(&incoming[*index])
                    .map(|first| Found::Header {
                        value: first.value,
                        index: *index,
                        alone: first.alone,
                    })
            }
            Self::Trace(format) => headers
                .get(format.header_name())
                .map(|value| Found::Trace(*format, value)),
            Self::Custom { name, find } => {
                let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    find(headers as &dyn RequestHeaders)
                }));
                match found {
                    Ok(None) => None,
                    Ok(Some(value)) => Some(Found::Custom(name, Some(value))),
                    Err(_) => Some(Found::Custom(name, None)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use std::net::IpAddr;

    use super::super::test_support::{VALID, headers, is_default_generated};
    use super::super::{CorrelationConfig, Decision, OnInvalid, Outcome};
    use super::*;
    use crate::id::CorrelationId;
    use crate::test_util::LogCapture;
    use crate::trust::{PeerAddressUnavailable, TrustPolicy};

    const TRACEPARENT_VALUE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn request_id_then_traceparent() -> CorrelationConfig {
        CorrelationConfig::builder()
            .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
            .build()
            .unwrap()
    }

    fn update(config: &CorrelationConfig, pairs: &[(&str, &str)]) -> (Decision, HeaderMap) {
        let mut map = headers(pairs);
        let decision = config.decide_and_update(&mut map, || None).unwrap();
        (decision, map)
    }

    #[test]
    fn a_valid_traceparent_alone_gives_its_trace_id_to_the_request_header() {
        let (decision, map) = update(
            &request_id_then_traceparent(),
            &[("traceparent", TRACEPARENT_VALUE)],
        );
        assert_eq!(decision.outcome, Outcome::Accepted);
        assert_eq!(decision.id, TRACE_ID);
        assert_eq!(map["x-request-id"], TRACE_ID);
        // The trace context itself travels on untouched.
        assert_eq!(map["traceparent"], TRACEPARENT_VALUE);
    }

    #[test]
    fn the_first_source_present_wins() {
        let config = request_id_then_traceparent();
        let (decision, _) = update(
            &config,
            &[("traceparent", TRACEPARENT_VALUE), ("x-request-id", VALID)],
        );
        assert_eq!(decision.id, VALID);
        // An invalid correlation header still decides: replaced, not skipped over.
        let (decision, _) = update(
            &config,
            &[("traceparent", TRACEPARENT_VALUE), ("x-request-id", "bad")],
        );
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert!(is_default_generated(&decision.id));
        // With the trace context first, it wins.
        let trace_first = CorrelationConfig::builder()
            .sources([IdSource::traceparent(), IdSource::header("X-Request-ID")])
            .build()
            .unwrap();
        let (decision, map) = update(
            &trace_first,
            &[("traceparent", TRACEPARENT_VALUE), ("x-request-id", VALID)],
        );
        assert_eq!(decision.id, TRACE_ID);
        assert_eq!(map["x-request-id"], TRACE_ID);
    }

    #[test]
    fn malformed_trace_context_is_replaced_with_one_warning_without_the_value() {
        let logs = LogCapture::install();
        let config = request_id_then_traceparent();
        let malformed = [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ];
        for value in malformed {
            let (decision, map) = update(&config, &[("traceparent", value)]);
            assert_eq!(decision.outcome, Outcome::Replaced, "{value}");
            assert!(is_default_generated(&decision.id));
            assert_eq!(map["x-request-id"], decision.id.as_str());
            let lines = logs.records_for(decision.id.as_str());
            assert_eq!(lines.len(), 1, "{value}: {lines:?}");
            assert_eq!(lines[0].level, log::Level::Warn);
            assert_eq!(
                lines[0].message,
                format!(
                    "Generated new request ID ({}), since the traceparent header value failed validation",
                    decision.id
                )
            );
            assert!(logs.records_containing(&value[3..20]).is_empty());
        }
    }

    #[test]
    fn trace_context_values_pass_the_length_limit_and_the_transformer() {
        let short = CorrelationConfig::builder()
            .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
            .validator(crate::strategy::AnySafe)
            .generator(|| "gen")
            .max_length(16)
            .build()
            .unwrap();
        let (decision, _) = update(&short, &[("traceparent", TRACEPARENT_VALUE)]);
        assert_eq!(
            (decision.outcome, decision.id.as_str()),
            (Outcome::Replaced, "gen")
        );

        let prefixed = CorrelationConfig::builder()
            .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
            .transformer(|id: &str| format!("trace-{id}"))
            .build()
            .unwrap();
        let (decision, _) = update(&prefixed, &[("traceparent", TRACEPARENT_VALUE)]);
        assert_eq!(decision.id, format!("trace-{TRACE_ID}"));

        let reject = CorrelationConfig::builder()
            .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        let (decision, map) = update(&reject, &[("traceparent", "00-garbage")]);
        assert_eq!(decision.outcome, Outcome::Rejected);
        assert!(map.get("x-request-id").is_none());
    }

    #[test]
    fn the_cloud_presets_read_their_headers() {
        let config = CorrelationConfig::builder()
            .sources([
                IdSource::header("X-Request-ID"),
                IdSource::amazon_trace_id(),
                IdSource::cloud_trace_context(),
            ])
            .build()
            .unwrap();
        let (decision, _) = update(
            &config,
            &[(
                "x-amzn-trace-id",
                "Self=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            )],
        );
        assert_eq!(decision.id, "5759e988bd862e3fe1be46a994272793");
        let (decision, _) = update(
            &config,
            &[(
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/1;o=1",
            )],
        );
        assert_eq!(decision.id, "105445aa7843bc8bf206b12000100000");
        let (decision, _) = update(&config, &[("x-cloud-trace-context", "not-a-trace")]);
        assert_eq!(decision.outcome, Outcome::Replaced);
    }

    #[test]
    fn a_custom_source_is_a_function_of_the_headers() {
        static TENANT: HeaderName = HeaderName::from_static("x-tenant-request");
        let config = CorrelationConfig::builder()
            .sources([
                IdSource::header("X-Request-ID"),
                IdSource::custom("tenant", |headers| {
                    let value = headers.get(&TENANT)?;
                    Some(format!("t-{}", String::from_utf8_lossy(value)))
                }),
            ])
            .build()
            .unwrap();
        let (decision, map) = update(&config, &[("x-tenant-request", "42")]);
        assert_eq!(
            (decision.outcome, decision.id.as_str()),
            (Outcome::Accepted, "t-42")
        );
        assert_eq!(map["x-request-id"], "t-42");
        // Absent: the next source (none here), so generated silently.
        let (decision, _) = update(&config, &[]);
        assert_eq!(decision.outcome, Outcome::Generated);
        // Unsafe output: replaced, with a warning naming the source.
        let logs = LogCapture::install();
        let (decision, _) = update(&config, &[("x-tenant-request", "4 2")]);
        assert_eq!(decision.outcome, Outcome::Replaced);
        let lines = logs.records_for(decision.id.as_str());
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0]
                .message
                .ends_with("since the value of source `tenant` failed validation")
        );

        let panicking = CorrelationConfig::builder()
            .sources([
                IdSource::header("X-Request-ID"),
                IdSource::custom("buggy", |_| panic!("source bug")),
            ])
            .build()
            .unwrap();
        let (decision, _) = update(&panicking, &[]);
        assert_eq!(decision.outcome, Outcome::Replaced);
    }

    #[test]
    fn sources_need_a_correlation_header() {
        let error = CorrelationConfig::builder()
            .sources([IdSource::traceparent()])
            .build()
            .unwrap_err();
        assert!(matches!(error, crate::ConfigError::NoHeaderName));
        let error = CorrelationConfig::builder()
            .sources([IdSource::header("Content-Length"), IdSource::traceparent()])
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            crate::ConfigError::ForbiddenHeaderName { .. }
        ));
    }

    #[test]
    fn untrusted_peers_get_a_generated_id_and_a_debug_line() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::builder()
            .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
            .trust(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
            .build()
            .unwrap();
        let trusted = IpAddr::from(Ipv4Addr::LOCALHOST);
        let untrusted = IpAddr::from(Ipv4Addr::new(127, 0, 0, 2));
        for pairs in [
            [("x-request-id", VALID)],
            [("traceparent", TRACEPARENT_VALUE)],
        ] {
            let mut map = headers(&pairs);
            let decision = config
                .decide_and_update(&mut map, || Some(trusted))
                .unwrap();
            assert_eq!(decision.outcome, Outcome::Accepted);

            let mut map = headers(&pairs);
            let decision = config
                .decide_and_update(&mut map, || Some(untrusted))
                .unwrap();
            assert_eq!(decision.outcome, Outcome::Generated);
            assert!(is_default_generated(&decision.id));
            assert_eq!(map["x-request-id"], decision.id.as_str());
            let lines = logs.records_for(decision.id.as_str());
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].level, log::Level::Debug);
            assert_eq!(
                lines[0].message,
                format!(
                    "Generated new request ID ({}), ignoring the incoming one from untrusted peer 127.0.0.2",
                    decision.id
                )
            );
        }
        // Nothing incoming: nothing to ignore, so no line.
        let mut map = headers(&[]);
        let decision = config
            .decide_and_update(&mut map, || Some(untrusted))
            .unwrap();
        assert!(logs.records_for(decision.id.as_str()).is_empty());
        // No address: never trusted silently.
        let mut map = headers(&[("x-request-id", VALID)]);
        assert_eq!(
            config.decide_and_update(&mut map, || None),
            Err(PeerAddressUnavailable)
        );
        // `decide` has no peer: it trusts no one under such a policy.
        let decision = config.decide(&headers(&[("x-request-id", VALID)]));
        assert_eq!(decision.outcome, Outcome::Generated);
        let lines = logs.records_for(decision.id.as_str());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].message.ends_with("the peer's address is unknown"));
    }

    #[test]
    fn never_ignores_every_incoming_id_without_asking_for_the_peer() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::builder()
            .trust(TrustPolicy::Never)
            .build()
            .unwrap();
        let mut map = headers(&[("x-request-id", VALID)]);
        let decision = config
            .decide_and_update(&mut map, || unreachable!("the peer is not needed"))
            .unwrap();
        assert_eq!(decision.outcome, Outcome::Generated);
        assert_ne!(decision.id, VALID);
        assert_eq!(map["x-request-id"], decision.id.as_str());
        let lines = logs.records_for(decision.id.as_str());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].level, log::Level::Debug);
        assert!(
            lines[0]
                .message
                .ends_with("the trust policy trusts no peer")
        );
    }

    proptest! {
        /// Whatever a client sends as `traceparent`, the request ends up with exactly one
        /// safe ID under the correlation header, and never with the raw value unless it
        /// is a well-formed trace context.
        #[test]
        fn any_traceparent_yields_one_safe_id(value in "[ -~]{0,80}") {
            let config = request_id_then_traceparent();
            let mut map = HeaderMap::new();
            map.insert("traceparent", HeaderValue::from_str(&value).unwrap());
            let decision = config.decide_and_update(&mut map, || None).unwrap();
            prop_assert_eq!(map.get_all("x-request-id").iter().count(), 1);
            prop_assert!(CorrelationId::new(decision.id.as_str()).is_ok());
            match trace_id_from_traceparent(value.as_bytes()) {
                Ok(trace_id) => prop_assert_eq!(decision.id.as_str(), trace_id),
                Err(_) if value.is_empty() => prop_assert_eq!(decision.outcome, Outcome::Generated),
                Err(_) => prop_assert_eq!(decision.outcome, Outcome::Replaced),
            }
        }
    }
}
