//! The building blocks of the floor middleware: the least work that does what our
//! defaults promise, written by hand for one framework, against which the adapters'
//! cost is measured.
//!
//! Each adapter bench writes its floor in its framework's own middleware API with these
//! blocks. Per request, a floor
//!
//! 1. reads the first `x-request-id` value and keeps it if [`is_uuid_v4`] accepts it
//!    (the default validator's two common forms: 32 hex digits or hyphenated, version 4,
//!    RFC 4122 variant), sharing its bytes;
//! 2. otherwise makes a new one with [`new_id_bytes`] (a UUID v4 as 32 lowercase hex
//!    digits, one allocation);
//! 3. writes the ID into the request, replacing what was there, unless the request
//!    carried it as that header's only value, so the handler sees exactly one header
//!    (steps 1 to 3: [`request_id`] for frameworks on `http` 1);
//! 4. runs the inner service's `call`, its future and every poll of a response body
//!    not already in memory inside a tokio task-local scope holding the ID
//!    ([`CURRENT_ID`] for frameworks on `http` 1), as ours does; where the framework
//!    cannot tell a body in memory (poem's boxed bodies), every body with something
//!    left to read; in actix-web, where middleware inside (its `Logger`) logs when the
//!    body is dropped, the body is dropped inside the scope too;
//! 5. puts the ID on the response as one `x-request-id` header.
//!
//! It does none of what is configurable in ours (other header names, other validators,
//! skipped paths, rejection, job context, `tracing` or Sentry), and logs nothing for a
//! replaced ID.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header the floors read and echo.
pub const HEADER: &str = "x-request-id";

/// [`HEADER`] as a name made once, so looking it up hashes it but never parses it.
pub const HEADER_NAME: HeaderName = HeaderName::from_static(HEADER);

tokio::task_local! {
    /// The floor's current ID, for frameworks whose header values are `http` 1's.
    pub static CURRENT_ID: HeaderValue;
}

/// Whether `candidate` is a UUID v4 as 32 hex digits or in hyphenated form (either
/// case), with the RFC 4122 variant. Each form is checked in one pass without early
/// exits, which the compiler turns into a few vector instructions: a floor should not
/// lose to ours by a slow check.
pub fn is_uuid_v4(candidate: &[u8]) -> bool {
    if let Ok(simple) = <&[u8; 32]>::try_from(candidate) {
        return simple[12] == b'4' && is_rfc4122_variant(simple[16]) && all_hex(simple);
    }
    if let Ok(hyphenated) = <&[u8; 36]>::try_from(candidate) {
        const HYPHEN_AT: [bool; 36] = {
            let mut layout = [false; 36];
            layout[8] = true;
            layout[13] = true;
            layout[18] = true;
            layout[23] = true;
            layout
        };
        return hyphenated[14] == b'4'
            && is_rfc4122_variant(hyphenated[19])
            && hyphenated
                .iter()
                .zip(HYPHEN_AT)
                .fold(true, |all, (&byte, hyphen)| {
                    all & if hyphen { byte == b'-' } else { is_hex(byte) }
                });
    }
    false
}

/// Not inlined: inlined into the short-circuiting caller, the loop is not vectorised.
#[inline(never)]
fn all_hex(digits: &[u8; 32]) -> bool {
    digits.iter().fold(true, |all, &byte| all & is_hex(byte))
}

#[inline(always)]
fn is_hex(byte: u8) -> bool {
    let digit = byte.wrapping_sub(b'0') < 10;
    // Setting bit 5 maps `A`..=`F` onto `a`..=`f` and leaves `a`..=`f` alone.
    let letter = (byte | 0x20).wrapping_sub(b'a') < 6;
    digit | letter
}

fn is_rfc4122_variant(nibble: u8) -> bool {
    matches!(nibble, b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// A new random UUID v4 as 32 lowercase hex digits, in one allocation.
pub fn new_id_bytes() -> Bytes {
    let mut text = [0u8; 32];
    uuid::Uuid::new_v4().simple().encode_lower(&mut text);
    Bytes::from_owner(text)
}

/// [`new_id_bytes`] as a header value.
///
/// # Panics
///
/// Never: hex digits are a valid header value.
pub fn new_id() -> HeaderValue {
    HeaderValue::from_maybe_shared(new_id_bytes()).expect("hex digits are a valid header value")
}

/// Steps 1 to 3 on an `http` 1 header map: the request's ID, left in `headers` as the
/// only `x-request-id` value.
#[inline]
pub fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(&HEADER_NAME).iter();
    let kept = values
        .next()
        .filter(|first| is_uuid_v4(first.as_bytes()))
        .map(|first| (first.clone(), values.next().is_none()));
    match kept {
        Some((id, true)) => id,
        Some((id, false)) => {
            headers.insert(HEADER_NAME, id.clone());
            id
        }
        None => {
            let id = new_id();
            headers.insert(HEADER_NAME, id.clone());
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_two_common_forms_of_a_uuid_v4_only() {
        for valid in [
            "3758c31e-1177-4540-ba33-0109c405579a",
            "9E6454C421D54E4AA66AB28F15576414",
        ] {
            assert!(is_uuid_v4(valid.as_bytes()), "{valid}");
        }
        for invalid in [
            "",
            "not-a-uuid",
            "3758c31e-1177-1540-ba33-0109c405579a",
            "3758c31e-1177-4540-7a33-0109c405579a",
            "3758c31e11774540ba330109c405579a-",
            "3758c31e+1177-4540-ba33-0109c405579a",
            "9e6454c421d54e4aa66ab28f1557641g",
        ] {
            assert!(!is_uuid_v4(invalid.as_bytes()), "{invalid}");
        }
    }

    #[test]
    fn the_request_is_left_with_one_header_holding_its_id() {
        const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";
        for (values, kept) in [
            (&[VALID][..], true),
            (&[VALID, "second"][..], true),
            (&["not-a-uuid", VALID][..], false),
            (&[][..], false),
        ] {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(HEADER_NAME, HeaderValue::from_static(value));
            }
            let id = request_id(&mut headers);
            assert_eq!(id == VALID, kept, "{values:?}");
            assert!(is_uuid_v4(id.as_bytes()), "{values:?}");
            let left: Vec<_> = headers.get_all(HEADER_NAME).iter().collect();
            assert_eq!(left, [id], "{values:?}");
        }
    }

    #[test]
    fn new_ids_are_fresh_valid_simple_uuids() {
        let (first, second) = (new_id(), new_id());
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        assert!(is_uuid_v4(first.as_bytes()));
    }
}
