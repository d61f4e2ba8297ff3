//! The strategies a configuration is made of: how IDs are generated, which incoming
//! IDs are accepted, and how IDs are rewritten.
//!
//! Each strategy is a small trait implemented for closures, so a custom strategy is
//! usually just a closure passed to the [`CorrelationConfigBuilder`](crate::CorrelationConfigBuilder).
//! Whatever a strategy returns still has to pass the safety rules of [`CorrelationId`].

use uuid::{Uuid, Variant};

use crate::id::{CorrelationId, InvalidCorrelationId};

pub(crate) mod configured;
mod formats;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;

pub use formats::{Hex32, StrictUuidV7, Ulid};
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub use otel::OpenTelemetryTraceId;

/// Makes new correlation IDs for requests that arrive without a usable one.
///
/// Implemented for the built-in generators and for any `Fn() -> impl Into<String>`:
///
/// ```
/// use correlation_core::CorrelationConfig;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let counter = AtomicU64::new(0);
/// let config = CorrelationConfig::builder()
///     .generator(move || format!("req-{}", counter.fetch_add(1, Ordering::Relaxed)))
///     .build()?;
/// # Ok::<(), correlation_core::ConfigError>(())
/// ```
pub trait IdGenerator: Send + Sync + 'static {
    /// Returns a new ID, or the reason the candidate it made is unsafe.
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId>;
}

impl<F, S> IdGenerator for F
where
    F: Fn() -> S + Send + Sync + 'static,
    S: Into<String>,
{
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        CorrelationId::try_from(self().into())
    }
}

/// The default generator: a random UUID v4 as 32 lowercase hex characters
/// (`uuid4().hex` in asgi-correlation-id), with a single allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV4;

impl UuidV4 {
    /// Generates an ID; infallible, unlike the trait method.
    #[must_use]
    pub fn new_id() -> CorrelationId {
        simple(Uuid::new_v4())
    }

    /// A new ID held in the ID itself, with no allocation: a header value made from it
    /// copies it.
    pub(crate) fn new_inline_id() -> CorrelationId {
        let mut buf = [0u8; 32];
        Uuid::new_v4().simple().encode_lower(&mut buf);
        CorrelationId::from_checked_bytes(&buf)
    }
}

impl IdGenerator for UuidV4 {
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        Ok(Self::new_id())
    }
}

/// A random UUID v4 in hyphenated form (36 characters, lowercase).
#[derive(Debug, Clone, Copy, Default)]
pub struct HyphenatedUuidV4;

impl IdGenerator for HyphenatedUuidV4 {
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        let mut buf = [0u8; 36];
        Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        CorrelationId::from_uuid_text(buf)
    }
}

/// A time-ordered UUID v7 in hyphenated form, handy when IDs double as sortable keys.
///
/// Pair it with the [`StrictUuidV7`] validator (or [`AnyUuid`]), since the default validator
/// only accepts v4.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7;

impl IdGenerator for UuidV7 {
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        let mut buf = [0u8; 36];
        Uuid::now_v7().hyphenated().encode_lower(&mut buf);
        CorrelationId::from_uuid_text(buf)
    }
}

fn simple(uuid: Uuid) -> CorrelationId {
    let mut buf = [0u8; 32];
    uuid.simple().encode_lower(&mut buf);
    // 32 lowercase hex digits always pass the safety rules; the fallback keeps this total.
    CorrelationId::from_uuid_text(buf).unwrap_or_else(|_| CorrelationId::from_static("0"))
}

/// Decides whether an incoming ID is accepted.
///
/// The validator only sees values that already pass the safety rules. Implemented for
/// the built-in validators and for any `Fn(&str) -> bool`.
pub trait IdValidator: Send + Sync + 'static {
    /// Whether `candidate` is accepted as the request's correlation ID.
    fn is_valid(&self, candidate: &str) -> bool;
}

impl<F> IdValidator for F
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    fn is_valid(&self, candidate: &str) -> bool {
        self(candidate)
    }
}

/// The default validator: a UUID v4 in any form the `uuid` crate parses (hyphenated,
/// simple, braced, URN; any case) with version 4 and the RFC 4122 variant.
///
/// The all-zero UUID and other versions (v1, v7, …) fail, exactly like
/// asgi-correlation-id's `is_valid_uuid4`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StrictUuidV4;

impl StrictUuidV4 {
    /// The check on raw header bytes. The two forms clients send (simple and hyphenated)
    /// are checked in one pass over the bytes, with no UTF-8 or UUID decoding: this runs
    /// on every request that carries an ID. Anything that passes is visible ASCII.
    pub(crate) fn accepts(candidate: &[u8]) -> bool {
        if let Ok(simple) = <&[u8; 32]>::try_from(candidate) {
            return is_version_4(simple[12]) && is_rfc4122_variant(simple[16]) && all_hex(simple);
        }
        if let Ok(hyphenated) = <&[u8; 36]>::try_from(candidate) {
            return is_version_4(hyphenated[14])
                && is_rfc4122_variant(hyphenated[19])
                && is_hyphenated(hyphenated);
        }
        // Braced and URN forms: rare enough to leave to the `uuid` parser.
        Uuid::try_parse_ascii(candidate)
            .is_ok_and(|uuid| uuid.get_version_num() == 4 && uuid.get_variant() == Variant::RFC4122)
    }
}

/// Whether the 36 bytes are 8-4-4-4-12 hex digits, in either case, with hyphens between.
/// Like [`all_hex`], one pass without early exits, against a constant layout.
fn is_hyphenated(text: &[u8; 36]) -> bool {
    const HYPHEN_AT: [bool; 36] = {
        let mut layout = [false; 36];
        layout[8] = true;
        layout[13] = true;
        layout[18] = true;
        layout[23] = true;
        layout
    };
    text.iter()
        .zip(HYPHEN_AT)
        .fold(true, |all, (&byte, hyphen)| {
            let fits = if hyphen { byte == b'-' } else { is_hex(byte) };
            all & fits
        })
}

fn is_hex(byte: u8) -> bool {
    let digit = byte.wrapping_sub(b'0') < 10;
    // Setting bit 5 maps `A`..=`F` onto `a`..=`f` and leaves `a`..=`f` alone.
    let letter = (byte | 0x20).wrapping_sub(b'a') < 6;
    digit | letter
}

/// Whether all 32 bytes are hex digits, in either case, in one pass without early exits.
pub(crate) fn all_hex(digits: &[u8; 32]) -> bool {
    digits.iter().fold(true, |all, &byte| all & is_hex(byte))
}

fn is_version_4(nibble: u8) -> bool {
    nibble == b'4'
}

/// The RFC 4122 variant: the two top bits of the nibble are `10`.
fn is_rfc4122_variant(nibble: u8) -> bool {
    matches!(nibble, b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

impl IdValidator for StrictUuidV4 {
    fn is_valid(&self, candidate: &str) -> bool {
        Self::accepts(candidate.as_bytes())
    }
}

/// Accepts any UUID, whatever its version or variant: nginx's `$request_id`,
/// OpenTelemetry trace IDs and UUID v7 pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUuid;

impl IdValidator for AnyUuid {
    fn is_valid(&self, candidate: &str) -> bool {
        Uuid::try_parse(candidate).is_ok()
    }
}

/// Accepts every value that passes the safety rules (1 to the configured maximum
/// bytes of visible ASCII). Use it when upstream IDs have no fixed format.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnySafe;

impl IdValidator for AnySafe {
    fn is_valid(&self, _candidate: &str) -> bool {
        true
    }
}

/// Rewrites every ID, incoming or generated, before it is used.
///
/// Implemented for any `Fn(&str) -> impl Into<String>`. If the output breaks the safety
/// rules, a freshly generated ID is used instead and a warning is logged.
pub trait IdTransformer: Send + Sync + 'static {
    /// Returns the rewritten ID.
    fn transform(&self, id: &str) -> String;
}

impl<F, S> IdTransformer for F
where
    F: Fn(&str) -> S + Send + Sync + 'static,
    S: Into<String>,
{
    fn transform(&self, id: &str) -> String {
        self(id).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validator table of asgi-correlation-id's test suite.
    #[test]
    fn strict_uuid_v4_table() {
        let valid = [
            "3758c31e-1177-4540-ba33-0109c405579a",
            "9e6454c421d54e4aa66ab28f15576414",
            "9E6454C421D54E4AA66AB28F15576414",
            "{9e6454c4-21d5-4e4a-a66a-b28f15576414}",
            "urn:uuid:9e6454c4-21d5-4e4a-a66a-b28f15576414",
        ];
        let invalid = [
            "foo",
            "9e6454c4-21d5-4e4a-a66a-b28f15576414-1",
            "00000000000000000000000000000000",
            // Version 1.
            "c232ab00-9414-11ec-b3c8-9f6bdeced846",
            // Version 4 nibble, but NCS variant.
            "9e6454c4-21d5-4e4a-066a-b28f15576414",
            "9e6454c421d54e4a066ab28f15576414",
            // Microsoft and future variants.
            "9e6454c421d54e4ac66ab28f15576414",
            "9e6454c4-21d5-4e4a-e66a-b28f15576414",
            // Hyphens misplaced, or one digit replaced by a non-hex letter.
            "9e6454c421-d5-4e4a-a66a-b28f1557641",
            "9e6454c4-21d5-4e4a-a66a-b28f1557641g",
            "9e6454c421d54e4aa66ab28f1557641g",
            "9e6454c4_21d5_4e4a_a66a_b28f15576414",
            "{9e6454c4-21d5-4e4a-066a-b28f15576414}",
            "",
        ];
        for value in valid {
            assert!(StrictUuidV4.is_valid(value), "{value} should be valid");
        }
        for value in invalid {
            assert!(!StrictUuidV4.is_valid(value), "{value} should be invalid");
        }
    }

    /// Every single-byte change to a valid v4 UUID, in both forms the byte-level check
    /// handles and both cases, gets the same answer as the `uuid` crate's parser.
    #[test]
    fn strict_uuid_v4_byte_check_agrees_with_the_parser_on_every_one_byte_change() {
        let reference = |candidate: &[u8]| {
            Uuid::try_parse_ascii(candidate).is_ok_and(|uuid| {
                uuid.get_version_num() == 4 && uuid.get_variant() == Variant::RFC4122
            })
        };
        let uuid = Uuid::parse_str("9e6454c4-21d5-4e4a-a66a-b28f15576414").unwrap();
        let forms = [
            uuid.simple().to_string(),
            uuid.hyphenated().to_string(),
            uuid.simple().to_string().to_uppercase(),
            uuid.hyphenated().to_string().to_uppercase(),
        ];
        let mut rejected = 0;
        for form in forms {
            assert!(StrictUuidV4::accepts(form.as_bytes()), "{form}");
            for at in 0..form.len() {
                for byte in 0..=u8::MAX {
                    let mut candidate = form.clone().into_bytes();
                    candidate[at] = byte;
                    let expected = reference(&candidate);
                    rejected += usize::from(!expected);
                    assert_eq!(
                        StrictUuidV4::accepts(&candidate),
                        expected,
                        "{:?}",
                        String::from_utf8_lossy(&candidate)
                    );
                }
            }
        }
        // The table is not trivially all-accepting.
        assert!(rejected > 10_000, "{rejected}");
    }

    #[test]
    fn any_uuid_accepts_other_versions() {
        assert!(AnyUuid.is_valid("c232ab00-9414-11ec-b3c8-9f6bdeced846"));
        assert!(AnyUuid.is_valid("00000000000000000000000000000000"));
        assert!(AnyUuid.is_valid("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!AnyUuid.is_valid("not-a-uuid"));
    }

    #[test]
    fn generators_produce_their_format() {
        let id = UuidV4.generate().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(StrictUuidV4.is_valid(id.as_str()));

        let id = HyphenatedUuidV4.generate().unwrap();
        assert_eq!(id.len(), 36);
        assert!(StrictUuidV4.is_valid(id.as_str()));

        let id = UuidV7.generate().unwrap();
        assert_eq!(Uuid::try_parse(id.as_str()).unwrap().get_version_num(), 7);
        assert!(!StrictUuidV4.is_valid(id.as_str()));
        assert!(AnyUuid.is_valid(id.as_str()));
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(UuidV4::new_id(), UuidV4::new_id());
    }

    #[test]
    fn closure_generator_output_is_checked() {
        let good = || "abc";
        let bad = || "a b";
        assert_eq!(good.generate().unwrap(), "abc");
        assert!(bad.generate().is_err());
    }
}
