//! More ID formats: ULID, UUID v7 validation and 32 hex digits (nginx `$request_id`,
//! trace IDs).

use uuid::{Uuid, Variant};

use super::{IdGenerator, IdValidator, all_hex};
use crate::id::{CorrelationId, InvalidCorrelationId};

/// Generates and validates [ULIDs](https://github.com/ulid/spec): 26 characters of
/// Crockford's base32, a 48-bit millisecond timestamp then 80 random bits, so IDs sort by
/// creation time.
///
/// As a validator it accepts the spec's alphabet in either case (no `I`, `L`, `O` or `U`)
/// with a first character of `0` to `7` (larger would overflow 128 bits).
///
/// ```
/// use correlation_core::strategy::{IdGenerator, IdValidator, Ulid};
///
/// let id = Ulid.generate()?;
/// assert_eq!(id.len(), 26);
/// assert!(Ulid.is_valid(id.as_str()));
/// assert!(Ulid.is_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
/// assert!(!Ulid.is_valid("81ARZ3NDEKTSV4RRFFQ69G5FAV")); // over 128 bits
/// assert!(!Ulid.is_valid("01ARZ3NDEKTSV4RRFFQ69G5FAU")); // `U` is not in the alphabet
/// # Ok::<(), correlation_core::InvalidCorrelationId>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Ulid;

impl IdGenerator for Ulid {
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        CorrelationId::try_from(ulid::Ulid::generate().to_string())
    }
}

impl IdValidator for Ulid {
    fn is_valid(&self, candidate: &str) -> bool {
        let bytes = candidate.as_bytes();
        bytes.len() == 26
            && (b'0'..=b'7').contains(&bytes[0])
            && bytes.iter().all(|byte| is_crockford_base32(*byte))
    }
}

fn is_crockford_base32(byte: u8) -> bool {
    match byte.to_ascii_uppercase() {
        b'0'..=b'9' => true,
        b'I' | b'L' | b'O' | b'U' => false,
        upper => upper.is_ascii_uppercase(),
    }
}

/// Accepts a UUID v7 (RFC 9562: version 7, the RFC variant) in any form the `uuid`
/// crate parses; the validator for services whose callers generate
/// [`UuidV7`](crate::strategy::UuidV7) IDs.
///
/// ```
/// use correlation_core::strategy::{IdValidator, StrictUuidV7};
///
/// assert!(StrictUuidV7.is_valid("019386c5-2a2e-7cc1-8e2c-4ab7e5e2e4a0"));
/// assert!(!StrictUuidV7.is_valid("3758c31e-1177-4540-ba33-0109c405579a")); // a v4
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StrictUuidV7;

impl IdValidator for StrictUuidV7 {
    fn is_valid(&self, candidate: &str) -> bool {
        Uuid::try_parse(candidate)
            .is_ok_and(|uuid| uuid.get_version_num() == 7 && uuid.get_variant() == Variant::RFC4122)
    }
}

/// Accepts 32 hex digits in either case, except all zeros: nginx's `$request_id`,
/// W3C and OpenTelemetry trace IDs, and this crate's default generated IDs.
///
/// ```
/// use correlation_core::strategy::{Hex32, IdValidator};
///
/// assert!(Hex32.is_valid("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert!(!Hex32.is_valid("00000000000000000000000000000000"));
/// assert!(!Hex32.is_valid("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Hex32;

impl IdValidator for Hex32 {
    fn is_valid(&self, candidate: &str) -> bool {
        <&[u8; 32]>::try_from(candidate.as_bytes())
            .is_ok_and(|digits| all_hex(digits) && digits.iter().any(|byte| *byte != b'0'))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ulids_outside_the_alphabet_or_range_fail() {
        for candidate in [
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX", // 27 characters
            "01ARZ3NDEKTSV4RRFFQ69G5FA",   // 25
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",  // over 128 bits
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",  // I, L, O and U are not in the alphabet
            "01ARZ3NDEKTSV4RRFFQ69G5FAL",
            "01ARZ3NDEKTSV4RRFFQ69G5FAO",
            "01ARZ3NDEKTSV4RRFFQ69G5FA-",
        ] {
            assert!(!Ulid.is_valid(candidate), "{candidate}");
        }
        assert!(Ulid.is_valid("01arz3ndektsv4rrffq69g5fav"), "either case");
    }

    #[test]
    fn generated_ulids_are_valid_ulids_and_differ() {
        let first = Ulid.generate().unwrap();
        let second = Ulid.generate().unwrap();
        assert_ne!(first, second);
        assert!(Ulid.is_valid(first.as_str()) && Ulid.is_valid(second.as_str()));
    }

    #[test]
    fn the_uuid_crates_v7_passes_and_v4_fails() {
        assert!(StrictUuidV7.is_valid(&Uuid::now_v7().to_string()));
        assert!(StrictUuidV7.is_valid(&Uuid::now_v7().simple().to_string()));
        assert!(!StrictUuidV7.is_valid(&Uuid::new_v4().to_string()));
        assert!(!StrictUuidV7.is_valid(&Uuid::nil().to_string()));
    }

    proptest! {
        /// What the validator accepts, the `ulid` crate parses to the same ULID (it is
        /// more lenient: it also decodes `I`, `L` and `O` and wraps a first character over
        /// `7`), and every ULID's canonical text is accepted.
        #[test]
        fn ulid_validation_is_the_strict_side_of_the_ulid_crate(candidate in "[0-9A-Za-z]{26}", value in any::<u128>()) {
            if Ulid.is_valid(&candidate) {
                let parsed = ulid::Ulid::from_string(&candidate);
                prop_assert!(parsed.is_ok());
                prop_assert!(parsed.unwrap().to_string().eq_ignore_ascii_case(&candidate));
            }
            prop_assert!(Ulid.is_valid(&ulid::Ulid(value).to_string()));
        }

        #[test]
        fn hex32_accepts_exactly_nonzero_32_hex(candidate in "[0-9a-fA-Fg]{31,33}") {
            let expected = candidate.len() == 32
                && candidate.bytes().all(|byte| byte.is_ascii_hexdigit())
                && candidate.bytes().any(|byte| byte != b'0');
            prop_assert_eq!(Hex32.is_valid(&candidate), expected);
        }
    }
}
