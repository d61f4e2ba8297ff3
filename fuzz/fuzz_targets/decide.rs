//! Fuzzes correlation-core's decision and its log formatter with arbitrary header bytes.
//!
//! The input is a raw header value; NUL bytes, which no header value can hold, split it
//! into several values (repeated headers, or two header names). For every input and
//! every configuration in [`setups`]:
//!
//! - `decide` and `decide_value` never panic;
//! - the decided ID is 1 to `max_length` bytes of visible ASCII (`0x21..=0x7E`);
//! - the outcome is the expected one: an absent or empty value is generated, a safe value
//!   the validator accepts is kept byte for byte (or its transformation, if that is
//!   safe), anything else is replaced (or rejected);
//! - the log lines written meanwhile (through `LogFormat`) are exactly the known warning
//!   naming the new ID, one per replaced value and none otherwise: the rejected value is
//!   never logged;
//! - `LogFormat::write` and `CurrentId` inside `sync_scope` show exactly the ID, or its
//!   first `n` characters.
//!
//! The same bytes also go through `CorrelationId`'s constructors, which must agree with
//! the safety rules, and, when they make an ID, through the formatter.
//!
//! Panicking validators, generators and transformers are left out: libFuzzer's panic hook
//! aborts even on a panic that core catches. The unit and conformance tests cover them.

#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use correlation_core::http::{HeaderMap, HeaderName, HeaderValue};
use correlation_core::{CorrelationConfig, CorrelationId, CurrentId, LOG_TARGET, LogFormat, OnInvalid, Outcome, sync_scope};
use correlation_core::strategy::{AnySafe, AnyUuid, HyphenatedUuidV4, IdValidator, StrictUuidV4, UuidV7};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check(data));

/// One configuration under test, with what the harness needs to predict its decisions.
struct Setup {
    name: &'static str,
    config: CorrelationConfig,
    /// The configured validator, called by the harness on safe values only.
    validator: fn(&str) -> bool,
    /// The configured transformer, if any (deterministic, so the harness can predict it).
    transformer: Option<fn(&str) -> String>,
    /// Whether the ID is read from `X-Correlation-ID` first, then `X-Request-ID`.
    two_names: bool,
}

/// The warnings core may log while deciding, with `{id}` standing for the new ID.
const KNOWN_WARNINGS: &[&str] = &[
    "Generated new request ID ({id}), since request header value failed validation",
    "Rejected request with ID ({id}), since request header value failed validation",
    "Generated new request ID ({id}), since the transformed ID failed the safety rules",
];

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A generator of short IDs, for the 16-byte limit.
fn short_id() -> String {
    format!("r{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn strict(id: &str) -> bool {
    StrictUuidV4.is_valid(id)
}

fn any_uuid(id: &str) -> bool {
    AnyUuid.is_valid(id)
}

fn any_safe(id: &str) -> bool {
    AnySafe.is_valid(id)
}

/// Adds a prefix: safe, unless it pushes the ID past the limit.
fn tag(id: &str) -> String {
    format!("svc-{id}")
}

/// Returns something unsafe for two IDs in three.
fn hostile(id: &str) -> String {
    match id.len() % 3 {
        0 => format!("{id}\r\nX-Injected: 1"),
        1 => id.to_ascii_uppercase(),
        _ => String::new(),
    }
}

fn setups() -> &'static [Setup] {
    static SETUPS: OnceLock<Vec<Setup>> = OnceLock::new();
    SETUPS.get_or_init(|| {
        static CAPTURE: Capture = Capture;
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Trace);
        let build = |builder: correlation_core::CorrelationConfigBuilder| {
            builder.build().expect("a fuzz configuration is valid")
        };
        vec![
            Setup {
                name: "default",
                config: CorrelationConfig::default(),
                validator: strict,
                transformer: None,
                two_names: false,
            },
            Setup {
                name: "any-uuid",
                config: build(
                    CorrelationConfig::builder()
                        .validator(AnyUuid)
                        .generator(HyphenatedUuidV4),
                ),
                validator: any_uuid,
                transformer: None,
                two_names: false,
            },
            Setup {
                name: "any-safe",
                config: build(CorrelationConfig::builder().validator(AnySafe)),
                validator: any_safe,
                transformer: None,
                two_names: false,
            },
            Setup {
                name: "any-safe, max_length 16",
                config: build(
                    CorrelationConfig::builder()
                        .validator(AnySafe)
                        .generator(short_id)
                        .max_length(16),
                ),
                validator: any_safe,
                transformer: None,
                two_names: false,
            },
            Setup {
                name: "two names, tag transformer, reject",
                config: build(
                    CorrelationConfig::builder()
                        .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
                        .validator(AnySafe)
                        .transformer(tag)
                        .on_invalid(OnInvalid::Reject),
                ),
                validator: any_safe,
                transformer: Some(tag),
                two_names: true,
            },
            Setup {
                name: "hostile transformer, max_length 40",
                config: build(
                    CorrelationConfig::builder()
                        .validator(AnyUuid)
                        .generator(UuidV7)
                        .transformer(hostile)
                        .max_length(40),
                ),
                validator: any_uuid,
                transformer: Some(hostile),
                two_names: false,
            },
        ]
    })
}

fn check(data: &[u8]) {
    let setups = setups();
    let length = data.first().map_or(0, |b| usize::from(*b) % 40);
    check_constructors(data, length);
    let values: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    for setup in setups {
        let (headers, first) = headers(setup, &values);
        take_lines();
        let decision = setup.config.decide(&headers);
        let lines = take_lines();
        check_decision(setup, first, &decision, &lines, length);
        if data.is_empty() {
            let decision = setup.config.decide_value(None);
            let lines = take_lines();
            check_decision(setup, None, &decision, &lines, length);
        }
    }
}

/// The request headers for `values`, and the value that counts (the first one under the
/// first name present), if any.
fn headers<'a>(setup: &Setup, values: &[&'a [u8]]) -> (HeaderMap, Option<&'a [u8]>) {
    let mut headers = HeaderMap::new();
    let valid: Vec<(&'a [u8], HeaderValue)> = values
        .iter()
        .filter_map(|v| Some((*v, HeaderValue::from_bytes(v).ok()?)))
        .collect();
    let request_id = HeaderName::from_static("x-request-id");
    if setup.two_names && valid.len() >= 2 {
        let correlation_id = HeaderName::from_static("x-correlation-id");
        headers.append(correlation_id, valid[0].1.clone());
        for (_, value) in &valid[1..] {
            headers.append(request_id.clone(), value.clone());
        }
    } else {
        for (_, value) in &valid {
            headers.append(request_id.clone(), value.clone());
        }
    }
    (headers, valid.first().map(|(raw, _)| *raw))
}

fn check_decision(
    setup: &Setup,
    incoming: Option<&[u8]>,
    decision: &correlation_core::adapter::Decision,
    lines: &[Vec<u8>],
    length: usize,
) {
    let name = setup.name;
    let max = setup.config.max_length();
    let id = &decision.id;
    assert!(
        is_safe(id.as_bytes(), max),
        "{name}: unsafe ID {id:?} (limit {max})"
    );
    let replaced = match incoming {
        None | Some([]) => match setup.transformer {
            None => {
                assert_eq!(decision.outcome, Outcome::Generated, "{name}");
                false
            }
            // A generated ID is transformed too; an unsafe transformation is replaced.
            Some(_) => {
                assert!(
                    matches!(decision.outcome, Outcome::Generated | Outcome::Replaced),
                    "{name}: {:?}",
                    decision.outcome
                );
                decision.outcome == Outcome::Replaced
            }
        },
        Some(value) if is_safe(value, max) && (setup.validator)(ascii(value)) => {
            match setup.transformer {
                None => {
                    assert_eq!(decision.outcome, Outcome::Accepted, "{name}");
                    assert_eq!(id.as_bytes(), value, "{name}: the accepted ID changed");
                    false
                }
                Some(transform) => {
                    let transformed = transform(ascii(value));
                    if is_safe(transformed.as_bytes(), max) {
                        assert_eq!(decision.outcome, Outcome::Accepted, "{name}");
                        assert_eq!(id.as_str(), transformed, "{name}");
                        false
                    } else {
                        assert_eq!(decision.outcome, Outcome::Replaced, "{name}");
                        true
                    }
                }
            }
        }
        Some(_) => {
            let expected = match setup.config.on_invalid() {
                OnInvalid::Reject => Outcome::Rejected,
                _ => Outcome::Replaced,
            };
            assert_eq!(decision.outcome, expected, "{name}");
            true
        }
    };
    check_lines(name, id, lines, usize::from(replaced));
    check_format(id, length);
}

/// The lines logged while deciding: exactly `count` of the known warnings, each naming
/// the new ID in its bracket and in its text.
fn check_lines(name: &str, id: &CorrelationId, lines: &[Vec<u8>], count: usize) {
    let shown: Vec<_> = lines.iter().map(|l| String::from_utf8_lossy(l)).collect();
    assert_eq!(lines.len(), count, "{name}: logged {shown:?}");
    for line in lines {
        let (text, newline) = line.split_at(line.len().saturating_sub(1));
        assert_eq!(newline, b"\n", "{name}: {shown:?}");
        assert!(
            text.iter().all(|b| (0x20..=0x7E).contains(b)),
            "{name}: a log line holds a byte outside printable ASCII: {shown:?}"
        );
        let known = KNOWN_WARNINGS.iter().any(|warning| {
            let message = warning.replace("{id}", id.as_str());
            text == format!("WARN  [{id}] {LOG_TARGET}: {message}").as_bytes()
        });
        assert!(known, "{name}: an unexpected log line: {shown:?}");
    }
}

/// The formatter and `CurrentId` show exactly the ID (or its first `length` characters)
/// in its scope, and the default outside it.
fn check_format(id: &CorrelationId, length: usize) {
    let record = log::Record::builder()
        .level(log::Level::Info)
        .target("fuzz")
        .args(format_args!("message"))
        .build();
    let shown = &id.as_str()[..length.min(id.len())];
    for (format, shown) in [
        (LogFormat::new().without_timestamp(), id.as_str()),
        (LogFormat::new().without_timestamp().id_length(length), shown),
    ] {
        let mut line = Vec::new();
        sync_scope(id.clone(), || format.write(&mut line, &record)).expect("writing to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&line),
            format!("INFO  [{shown}] fuzz: message\n")
        );
    }
    let display = sync_scope(id.clone(), || CurrentId::new().length(length).to_string());
    assert_eq!(display, shown);
    assert_eq!(CurrentId::new().to_string(), "-");
}

/// Every constructor of `CorrelationId` agrees with the safety rules on `data`.
fn check_constructors(data: &[u8], length: usize) {
    let safe = is_safe(data, CorrelationId::MAX_LEN);
    let from_bytes = CorrelationId::from_bytes(Bytes::copy_from_slice(data));
    assert_eq!(from_bytes.is_ok(), safe, "from_bytes on {data:?}");
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(CorrelationId::new(text).is_ok(), safe, "new on {data:?}");
    }
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let id = CorrelationId::from_header_value(&value);
        assert_eq!(id.is_ok(), safe, "from_header_value on {data:?}");
    }
    if let Ok(id) = from_bytes {
        assert_eq!(id.as_bytes(), data);
        check_format(&id, length);
    }
}

/// The safety rules: 1 to `max` bytes, each in `0x21..=0x7E`.
fn is_safe(bytes: &[u8], max: usize) -> bool {
    !bytes.is_empty() && bytes.len() <= max && bytes.iter().all(|b| (0x21..=0x7E).contains(b))
}

/// A safe value as text (safe values are ASCII).
fn ascii(value: &[u8]) -> &str {
    std::str::from_utf8(value).expect("safe values are ASCII")
}

thread_local! {
    static LINES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_lines() -> Vec<Vec<u8>> {
    LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
}

/// A logger that formats every record with `LogFormat` into a thread-local buffer.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut line = Vec::new();
        LogFormat::new()
            .without_timestamp()
            .write(&mut line, record)
            .expect("writing to a Vec");
        LINES.with(|lines| lines.borrow_mut().push(line));
    }

    fn flush(&self) {}
}
