//! Properties of the log format: whatever text a record carries, it is written as exactly
//! one line that starts with the time, its level and the current ID, holds no control character or
//! bidirectional override, and shows printable text unchanged.
#![cfg(feature = "env-logger")]

#[path = "support/buffer.rs"]
mod buffer;

use buffer::Buffer;
use correlation_core::{CorrelationId, Escaped, JobCarrier, LogFormat, sync_scope};
use proptest::prelude::*;

/// A character a hostile client might send, biased towards the ones that forge lines or
/// rewrite terminals.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        3 => prop::char::range(' ', '~'),
        2 => prop::sample::select(vec!['\n', '\r', '\t', '\u{1b}', '\u{0}', '\u{7f}', '\u{85}']),
        1 => prop::char::range('\u{0}', '\u{9f}'),
        1 => prop::char::range('\u{2026}', '\u{206a}'),
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..64).prop_map(|chars| chars.into_iter().collect())
}

/// Whether `c` may appear in a written line: no control, no line or paragraph separator,
/// no bidirectional embedding, override or isolate.
fn is_harmless(c: char) -> bool {
    !(c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// The line `format` writes, after the timestamp it starts with.
fn write(format: &LogFormat, level: log::Level, target: &str, message: &str) -> String {
    let mut out = Vec::new();
    format
        .write(
            &mut out,
            &log::Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{message}"))
                .build(),
        )
        .unwrap();
    after_timestamp(&String::from_utf8(out).unwrap()).to_owned()
}

/// `line` after its leading `2026-12-05T13:05:39Z `, which must be there.
fn after_timestamp(line: &str) -> &str {
    let (time, rest) = line.split_once(' ').unwrap_or_default();
    let shape = time
        .bytes()
        .zip("0000-00-00T00:00:00Z".bytes())
        .all(|(byte, shape)| {
            if shape == b'0' {
                byte.is_ascii_digit()
            } else {
                byte == shape
            }
        });
    assert!(
        time.len() == 20 && shape,
        "{line:?} does not start with a timestamp"
    );
    rest
}

fn level() -> impl Strategy<Value = log::Level> {
    prop::sample::select(vec![
        log::Level::Error,
        log::Level::Warn,
        log::Level::Info,
        log::Level::Debug,
        log::Level::Trace,
    ])
}

fn assert_one_harmless_line(line: &str, prefix: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        line.starts_with(prefix),
        "{line:?} does not start with {prefix:?}"
    );
    let body = line.strip_suffix('\n');
    prop_assert!(body.is_some(), "{line:?} does not end the line");
    let body = body.unwrap_or_default();
    prop_assert_eq!(line.lines().count(), 1, "{:?}", line);
    prop_assert!(body.chars().all(is_harmless), "{:?}", body);
    Ok(())
}

proptest! {
    #[test]
    fn any_message_is_one_line_under_the_current_id(
        level in level(),
        target in hostile_text(),
        message in hostile_text(),
    ) {
        let id = CorrelationId::from_static("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
        let line = sync_scope(id, || write(&LogFormat::new(), level, &target, &message));
        let prefix = format!("{level:<5} [773fa6885e0a4e6c9a8ce3a6e09b8c8d] ");
        assert_one_harmless_line(&line, &prefix)?;
        prop_assert!(line.ends_with(&format!(": {}\n", Escaped(&message))), "{:?}", line);

        let outside = write(&LogFormat::new(), level, &target, &message);
        assert_one_harmless_line(&outside, &format!("{level:<5} [-] "))?;
    }

    #[test]
    fn any_message_in_a_job_is_one_line_under_its_ids(message in hostile_text()) {
        let context = JobCarrier::new(Some(CorrelationId::from_static("req")), None).into_context();
        let job = context.job_id().unwrap().as_str().to_owned();
        let line = context.run(|| {
            write(&LogFormat::new().with_job_ids(), log::Level::Info, "worker", &message)
        });
        assert_one_harmless_line(&line, &format!("INFO  [req] [--{job}] worker: "))?;
    }

    #[test]
    fn printable_text_is_written_unchanged(
        message in "[^\\p{C}\u{2028}\u{2029}]{0,64}",
    ) {
        let line = write(&LogFormat::new(), log::Level::Info, "app", &message);
        prop_assert_eq!(line, format!("INFO  [-] app: {message}\n"));
    }

    #[test]
    fn unescaped_writes_the_message_as_it_is(message in hostile_text()) {
        let line = write(&LogFormat::new().unescaped(), log::Level::Warn, "app", &message);
        prop_assert_eq!(line, format!("WARN  [-] app: {message}\n"));
    }
}

/// The ready-made format functions escape too: a forged line and a terminal sequence end
/// up visible inside the one real line, through env_logger itself.
#[test]
fn env_logger_with_the_format_writes_one_line_per_record() {
    let buffer = Buffer::default();
    type Format = Box<
        dyn Fn(&mut env_logger::fmt::Formatter, &log::Record<'_>) -> std::io::Result<()>
            + Send
            + Sync,
    >;
    let with_job_ids = LogFormat::new().with_job_ids();
    let formats: [(Format, &str); 2] = [
        (Box::new(correlation_core::format), ""),
        (
            Box::new(move |buf, record| with_job_ids.format(buf, record)),
            "[---] ",
        ),
    ];
    for (format, job_ids) in formats {
        let logger = env_logger::Builder::new()
            .format(format)
            .parse_filters("info")
            .target(env_logger::Target::Pipe(Box::new(buffer.clone())))
            .build();
        let forged = "hello\nINFO  [0000] app: forged\r\u{1b}[2K\u{1b}[31m\u{202e}";
        sync_scope(CorrelationId::from_static("victim-of-none"), || {
            log::Log::log(
                &logger,
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("ws")
                    .args(format_args!("received: {forged}"))
                    .build(),
            );
        });
        log::Log::flush(&logger);
        let text = buffer.take_text();
        assert_eq!(
            after_timestamp(&text),
            format!(
                "INFO  [victim-of-none] {job_ids}ws: received: hello\\nINFO  [0000] app: forged\\r\\u{{1b}}[2K\\u{{1b}}[31m\\u{{202e}}\n"
            )
        );
    }
}
