//! Property tests for the safety rules: whatever bytes a client sends and whatever a
//! generator or transformer returns, the decision never panics and the request's ID is
//! always 1 to `max_length` bytes of visible ASCII (`0x21` to `0x7E`).
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use correlation_core::adapter::Decision;
use correlation_core::http::{HeaderMap, HeaderValue};
use correlation_core::strategy::{
    AnySafe, AnyUuid, HyphenatedUuidV4, IdGenerator, IdValidator, StrictUuidV4, UuidV4, UuidV7,
};
use correlation_core::{CorrelationConfig, CorrelationId, InvalidCorrelationId, Outcome};
use proptest::collection::vec;
use proptest::prelude::*;
use uuid::Uuid;

/// The safety rules, restated independently of the crate.
fn is_safe(bytes: &[u8], max: usize) -> bool {
    (1..=max).contains(&bytes.len()) && bytes.iter().all(|b| (0x21..=0x7E).contains(b))
}

fn assert_safe(decision: &Decision, max: usize) -> Result<(), TestCaseError> {
    let bytes = decision.id.as_bytes();
    prop_assert!(
        is_safe(bytes, max),
        "unsafe final id {:?} (limit {max})",
        String::from_utf8_lossy(bytes)
    );
    // Every view of the ID shows the same bytes.
    prop_assert_eq!(decision.id.as_str().as_bytes(), bytes);
    prop_assert_eq!(decision.id.as_bytes(), bytes);
    prop_assert_eq!(decision.id.len(), bytes.len());
    Ok(())
}

/// A byte a hostile client might send, biased towards the interesting ones.
fn hostile_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => 0x21u8..=0x7E,
        1 => Just(b' '),
        1 => Just(b'\t'),
        1 => prop::sample::select(vec![b'\r', b'\n', 0x1B, 0x7F, 0x00]),
        1 => 0x00u8..0x20,
        2 => 0x80u8..=0xFF,
    ]
}

/// A byte `HeaderValue::from_bytes` accepts: visible ASCII, space, tab and obs-text.
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => 0x21u8..=0x7E,
        1 => Just(b' '),
        1 => Just(b'\t'),
        2 => 0x80u8..=0xFF,
    ]
}

/// A UUID in one of the forms the `uuid` crate parses, in either case; v4 or not.
fn uuid_text() -> impl Strategy<Value = Vec<u8>> {
    (any::<u128>(), any::<bool>(), 0..5u8, any::<bool>()).prop_map(
        |(bits, make_v4, form, upper)| {
            let uuid = if make_v4 {
                uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
            } else {
                Uuid::from_u128(bits)
            };
            let text = match form {
                0 => uuid.hyphenated().to_string(),
                1 => uuid.simple().to_string(),
                2 => uuid.braced().to_string(),
                3 => uuid.urn().to_string(),
                _ => format!("{}-1", uuid.hyphenated()),
            };
            if upper {
                text.to_uppercase().into_bytes()
            } else {
                text.into_bytes()
            }
        },
    )
}

/// A UUID with one byte overwritten: a near miss for the validators' byte-level checks.
fn mutated_uuid_text() -> impl Strategy<Value = Vec<u8>> {
    (uuid_text(), any::<prop::sample::Index>(), header_byte()).prop_map(|(mut text, at, byte)| {
        let at = at.index(text.len());
        text[at] = byte;
        text
    })
}

/// The default validator's rule, restated with the `uuid` crate's parser.
fn is_strict_uuid_v4(candidate: &str) -> bool {
    Uuid::try_parse(candidate).is_ok_and(|uuid| {
        uuid.get_version_num() == 4 && uuid.get_variant() == uuid::Variant::RFC4122
    })
}

/// Incoming header bytes: short and long, near the 128-byte limit, huge (8 KiB and
/// more), ANSI escapes, CR/LF, tabs, bytes above `0x7F`, and UUIDs in every form.
fn incoming() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(header_byte(), 0..40),
        2 => vec(hostile_byte(), 0..40),
        2 => vec(0x21u8..=0x7E, 120..=136),
        1 => vec(any::<u8>(), 0..200),
        1 => vec(header_byte(), 8_000..9_000),
        1 => (vec(0x21u8..=0x7E, 0..8), vec(0x21u8..=0x7E, 0..8)).prop_map(|(a, b)| {
            [a.as_slice(), b"\x1b[31m", b.as_slice(), b"\x1b[0m"].concat()
        }),
        1 => (vec(0x21u8..=0x7E, 1..8), vec(0x21u8..=0x7E, 1..8)).prop_map(|(a, b)| {
            [a.as_slice(), b"\r\nX-Injected: 1\r\n", b.as_slice()].concat()
        }),
        4 => uuid_text(),
        3 => mutated_uuid_text(),
    ]
}

/// A character a buggy transformer or generator might return, biased like
/// [`hostile_byte`]: mostly visible ASCII, and every kind of unsafe character.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => (0x21u8..=0x7E).prop_map(char::from),
        1 => Just(' '),
        1 => Just('\t'),
        1 => prop::sample::select(vec!['\r', '\n', '\u{1b}', '\u{7f}', '\0']),
        1 => prop::sample::select(vec!['é', '€', '😀', '\u{a0}', '\u{2028}']),
        1 => any::<char>(),
    ]
}

/// A string a buggy transformer or generator might return.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(hostile_char(), 0..24).prop_map(String::from_iter),
        2 => "[!-~]{0,24}",
        1 => any::<String>(),
        1 => "[!-~]{100,140}",
        1 => vec(hostile_char(), 4_000..5_000).prop_map(String::from_iter),
        1 => Just("\u{1b}[31mred\u{1b}[0m".to_owned()),
        1 => Just("\r\nX-Injected: 1".to_owned()),
    ]
}

fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

/// A validator as a plain closure, so the property can both configure and consult it.
type Validator = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Picks one of the built-in validators.
fn validator(index: u8) -> (Validator, &'static str) {
    match index % 3 {
        0 => (Box::new(|s: &str| StrictUuidV4.is_valid(s)), "StrictUuidV4"),
        1 => (Box::new(|s: &str| AnyUuid.is_valid(s)), "AnyUuid"),
        _ => (Box::new(|s: &str| AnySafe.is_valid(s)), "AnySafe"),
    }
}

/// A UUID v4 cut to `max` hex digits: a generator that fits any limit.
fn short_generator(max: usize) -> impl Fn() -> String + Send + Sync + 'static {
    move || UuidV4::new_id().as_str()[..max.min(32)].to_owned()
}

/// Checks the outcome against an independent model of the rules (no transformer).
fn check_untransformed(
    input: &[u8],
    decision: &Decision,
    max: usize,
    valid: impl Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    assert_safe(decision, max)?;
    let acceptable = is_safe(input, max) && valid(std::str::from_utf8(input).unwrap_or_default());
    match decision.outcome {
        Outcome::Accepted => {
            prop_assert!(acceptable);
            // An accepted ID is the incoming value exactly, byte for byte.
            prop_assert_eq!(decision.id.as_bytes(), input);
        }
        Outcome::Generated => prop_assert!(input.is_empty()),
        Outcome::Replaced => prop_assert!(!input.is_empty() && !acceptable),
        other => prop_assert!(false, "unexpected outcome {other:?}"),
    }
    if acceptable {
        prop_assert_eq!(decision.outcome, Outcome::Accepted);
    }
    Ok(())
}

proptest! {
    #[test]
    fn default_config_accepts_only_strict_uuid_v4_verbatim(input in incoming()) {
        let Some(value) = header_value(&input) else { return Ok(()) };
        let config = CorrelationConfig::default();
        let decision = config.decide_value(Some(&value));
        check_untransformed(&input, &decision, 128, is_strict_uuid_v4)?;
        prop_assert_eq!(
            StrictUuidV4.is_valid(std::str::from_utf8(&input).unwrap_or("\u{0}")),
            is_strict_uuid_v4(std::str::from_utf8(&input).unwrap_or("\u{0}"))
        );
    }

    #[test]
    fn any_safe_accepts_exactly_the_safe_values_verbatim(input in incoming()) {
        let Some(value) = header_value(&input) else { return Ok(()) };
        let config = CorrelationConfig::builder().validator(AnySafe).build().unwrap();
        let decision = config.decide_value(Some(&value));
        check_untransformed(&input, &decision, 128, |_| true)?;
    }

    #[test]
    fn max_length_bounds_every_id(
        input in incoming(),
        max in 1usize..=128,
        which in any::<u8>(),
    ) {
        let Some(value) = header_value(&input) else { return Ok(()) };
        let (valid, name) = validator(which);
        let config = CorrelationConfig::builder()
            .validator(move |s: &str| valid(s))
            .generator(short_generator(max))
            .max_length(max)
            .build()
            .unwrap();
        let decision = config.decide_value(Some(&value));
        let (valid, _) = validator(which);
        check_untransformed(&input, &decision, max, valid)
            .map_err(|e| TestCaseError::fail(format!("{name}, max {max}: {e}")))?;
        assert_safe(&config.decide_value(None), max)?;
    }

    #[test]
    fn the_first_header_value_decides(
        first in incoming(),
        second in incoming(),
    ) {
        let (Some(a), Some(b)) = (header_value(&first), header_value(&second)) else {
            return Ok(());
        };
        let config = CorrelationConfig::builder().validator(AnySafe).build().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-request-id", a);
        headers.append("x-request-id", b);
        let decision = config.decide(&headers);
        check_untransformed(&first, &decision, 128, |_| true)?;
    }

    #[test]
    fn a_transformer_appending_anything_never_leaks_unsafe_bytes(
        input in incoming(),
        suffix in hostile_string(),
        max in 1usize..=128,
    ) {
        let Some(value) = header_value(&input) else { return Ok(()) };
        let injected = suffix.clone();
        let config = CorrelationConfig::builder()
            .validator(AnySafe)
            .generator(short_generator(max))
            .max_length(max)
            .transformer(move |id: &str| format!("{id}{injected}"))
            .build()
            .unwrap();
        let decision = config.decide_value(Some(&value));
        assert_safe(&decision, max)?;
        let transformed = [input.as_slice(), suffix.as_bytes()].concat();
        if is_safe(&input, max) && is_safe(&transformed, max) {
            prop_assert_eq!(decision.outcome, Outcome::Accepted);
            prop_assert_eq!(decision.id.as_bytes(), transformed.as_slice());
        } else if !input.is_empty() {
            prop_assert_eq!(decision.outcome, Outcome::Replaced);
        }
        assert_safe(&config.decide_value(None), max)?;
    }

    #[test]
    fn a_transformer_returning_anything_never_leaks_unsafe_bytes(
        input in incoming(),
        output in hostile_string(),
        max in 1usize..=128,
        which in any::<u8>(),
    ) {
        let Some(value) = header_value(&input) else { return Ok(()) };
        let (valid, _) = validator(which);
        let returned = output.clone();
        let config = CorrelationConfig::builder()
            .validator(move |s: &str| valid(s))
            .generator(short_generator(max))
            .max_length(max)
            .transformer(move |_: &str| returned.clone())
            .build()
            .unwrap();
        for decision in [config.decide_value(Some(&value)), config.decide_value(None)] {
            assert_safe(&decision, max)?;
            if decision.outcome == Outcome::Accepted {
                prop_assert_eq!(decision.id.as_str(), output.as_str());
            }
        }
    }

    #[test]
    fn a_generator_going_bad_at_request_time_falls_back_to_a_safe_id(
        output in hostile_string(),
        max in 1usize..=128,
    ) {
        // Usable when probed by `build`, then returns `output` on every request.
        let probed = AtomicBool::new(false);
        let returned = output.clone();
        let config = CorrelationConfig::builder()
            .generator(move || {
                if probed.swap(true, Ordering::Relaxed) { returned.clone() } else { "k".to_owned() }
            })
            .max_length(max)
            .build()
            .unwrap();
        let decision = config.decide_value(None);
        assert_safe(&decision, max)?;
        prop_assert_eq!(decision.outcome, Outcome::Generated);
        if is_safe(output.as_bytes(), max) {
            prop_assert_eq!(decision.id.as_str(), output.as_str());
        }
    }

    #[test]
    fn correlation_id_new_accepts_exactly_1_to_128_visible_ascii_bytes(s in hostile_string()) {
        let expected = is_safe(s.as_bytes(), 128);
        let made = CorrelationId::new(&s);
        prop_assert_eq!(made.is_ok(), expected, "{:?}", s);
        // Every constructor agrees with `new`.
        prop_assert_eq!(&s.parse::<CorrelationId>(), &made);
        prop_assert_eq!(&CorrelationId::try_from(s.clone()), &made);
        prop_assert_eq!(&CorrelationId::from_bytes(Bytes::from(s.clone())), &made);
        if let Some(value) = header_value(s.as_bytes()) {
            prop_assert_eq!(&CorrelationId::from_header_value(&value), &made);
        }
        match made {
            Ok(id) => prop_assert_eq!(id.as_str(), s.as_str()),
            Err(InvalidCorrelationId::Empty) => prop_assert!(s.is_empty()),
            Err(InvalidCorrelationId::TooLong { len, max }) => {
                prop_assert_eq!((len, max), (s.len(), 128));
            }
            Err(InvalidCorrelationId::InvalidByte { position }) => {
                prop_assert!(s.len() <= 128);
                let first_bad = s.bytes().position(|b| !(0x21..=0x7E).contains(&b));
                prop_assert_eq!(Some(position), first_bad);
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn correlation_id_from_bytes_accepts_exactly_the_safe_bytes(input in incoming()) {
        let made = CorrelationId::from_bytes(Bytes::from(input.clone()));
        prop_assert_eq!(made.is_ok(), is_safe(&input, 128));
        if let Ok(id) = made {
            prop_assert_eq!(id.as_bytes(), input.as_slice());
        }
    }
}

/// Generates `n` IDs and checks that they are safe, distinct and well-formed.
fn check_sample(
    n: usize,
    generator: &dyn IdGenerator,
    well_formed: impl Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    for _ in 0..n {
        let id = generator
            .generate()
            .expect("built-in generators are infallible");
        prop_assert!(is_safe(id.as_bytes(), 128), "unsafe generated id {id:?}");
        prop_assert!(well_formed(id.as_str()), "malformed generated id {id:?}");
        prop_assert!(seen.insert(id.clone()), "duplicate generated id {id:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn generated_ids_are_safe_and_unique_within_a_sample(n in 1usize..=4_000) {
        check_sample(n, &UuidV4, |s| {
            s.len() == 32
                && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && StrictUuidV4.is_valid(s)
        })?;
        check_sample(n, &HyphenatedUuidV4, |s| {
            s.len() == 36 && s == s.to_ascii_lowercase() && StrictUuidV4.is_valid(s)
        })?;
        check_sample(n, &UuidV7, |s| {
            s.len() == 36 && Uuid::try_parse(s).is_ok_and(|u| u.get_version_num() == 7)
        })?;
    }
}

/// The configuration's own `generate` (what `decide` uses) also yields unique IDs,
/// including from several threads at once.
#[test]
fn config_generates_unique_ids_across_threads() {
    let config = Arc::new(CorrelationConfig::default());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let config = Arc::clone(&config);
            std::thread::spawn(move || (0..2_000).map(|_| config.generate()).collect::<Vec<_>>())
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for handle in handles {
        for id in handle.join().unwrap() {
            assert!(is_safe(id.as_bytes(), 128));
            assert!(seen.insert(id), "duplicate id across threads");
        }
    }
    assert_eq!(seen.len(), 8_000);
}
