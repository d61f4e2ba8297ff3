//! Fuzzes W3C baggage, incoming and outgoing, through correlation-core's public API.
//!
//! The input is the bytes of `baggage` headers; NUL bytes, which no header value can
//! hold, split it into several headers (one list). For every input, with the baggage of
//! every peer trusted and the keys `tenant`, `user` and `k1` allowed:
//!
//! - the decision and the request's context never panic;
//! - the request's fields are allow-listed keys only, each value at most 256 bytes;
//! - the fields as the log format shows them, and every line logged meanwhile, are one
//!   line of text without a control character, and no line holds the header's text: a
//!   line is the one known warning or nothing;
//! - sent on as baggage (`inject_current`), the fields read back the same, and a
//!   caller's baggage header already on the outgoing request keeps its members.

#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use correlation_core::http::{HeaderMap, HeaderName, HeaderValue};
use correlation_core::{CorrelationConfig, Fields, LogFormat, TrustPolicy, adapter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| check(data));

const KEYS: [&str; 3] = ["tenant", "user", "k1"];

/// The only line the incoming path may log, after this prefix: the reason, never the text.
const WARNING: &str = "correlation: Left part of the baggage header out: ";

fn config() -> &'static CorrelationConfig {
    static CONFIG: OnceLock<CorrelationConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        static CAPTURE: Capture = Capture;
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Trace);
        CorrelationConfig::builder()
            .baggage_keys(KEYS)
            .baggage_from(TrustPolicy::Always)
            .build()
            .expect("a fuzz configuration is valid")
    })
}

fn check(data: &[u8]) {
    let config = config();
    let baggage = HeaderName::from_static("baggage");
    let mut headers = HeaderMap::new();
    for piece in data.split(|byte| *byte == 0) {
        if let Ok(value) = HeaderValue::from_bytes(piece) {
            headers.append(baggage.clone(), value);
        }
    }
    take_lines();
    let decision = adapter::decide_and_update(config, &mut headers, || None)
        .expect("the trust policy needs no peer");
    let context = adapter::request_context(config, decision);
    let (fields, shown) = context.run(|| {
        log::info!(target: "fuzz", "handler");
        let fields = Fields::current();
        (fields.clone(), fields.to_string())
    });
    for (key, value) in fields.iter() {
        assert!(KEYS.contains(&key), "a key not allowed: {key:?}");
        assert!(value.len() <= Fields::MAX_VALUE_LEN, "{key}: {} bytes", value.len());
    }
    assert!(is_one_line(shown.as_bytes()), "fields shown as {shown:?}");

    let lines = take_lines();
    let (handler, others) = lines.split_last().expect("the handler logged");
    assert!(String::from_utf8_lossy(handler).ends_with(" fuzz: handler\n"));
    assert!(others.len() <= 1, "{} lines besides the handler's", others.len());
    for line in &lines {
        let (text, newline) = line.split_at(line.len() - 1);
        assert_eq!(newline, b"\n");
        assert!(is_one_line(text), "{:?}", String::from_utf8_lossy(line));
    }
    for line in others {
        let text = String::from_utf8_lossy(line);
        assert!(text.contains(WARNING), "an unexpected line: {text:?}");
    }

    // Sent on: the same fields read back, beside a member the caller set.
    let mut outgoing = HeaderMap::new();
    outgoing.insert(baggage.clone(), HeaderValue::from_static("region=eu"));
    context.run(|| config.inject_current(&mut outgoing));
    let sent: Vec<_> = outgoing.get_all(&baggage).iter().collect();
    assert_eq!(sent.len(), 1, "one baggage header");
    assert!(sent[0].as_bytes().starts_with(b"region=eu"));
    let mut back = HeaderMap::new();
    back.insert(baggage, sent[0].clone());
    let decision = adapter::decide_and_update(config, &mut back, || None).unwrap();
    let read_back = adapter::request_context(config, decision).run(Fields::current);
    assert_eq!(read_back, fields, "sent as {:?}", sent[0]);
    take_lines();
}

/// Printable ASCII and any non-ASCII text but what the log format escapes.
fn is_one_line(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    !text.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{2028}'..='\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
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
