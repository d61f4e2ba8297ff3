//! Escaping log output costs no heap allocation: the format escapes while it writes, and
//! `CorrelationLogger` passes a record with nothing to escape on as it is.
//!
//! Counted per thread by `allocation-counter`'s global allocator, as in `allocations.rs`.
#![cfg(feature = "env-logger")]

use allocation_counter::measure;
use correlation_core::{CorrelationId, LogFormat, sync_scope};

const ID: &str = "773fa6885e0a4e6c9a8ce3a6e09b8c8d";

/// Writes one line through `format` into a buffer that is large enough already, and
/// returns the heap allocations that made and the line after its timestamp.
fn write_counted(format: &LogFormat, message: &str) -> (u64, String) {
    let mut line = Vec::with_capacity(512);
    let count = sync_scope(CorrelationId::from_static(ID), || {
        measure(|| {
            format
                .write(
                    &mut line,
                    &log::Record::builder()
                        .level(log::Level::Info)
                        .target("app")
                        .args(format_args!("received: {message}"))
                        .build(),
                )
                .unwrap();
        })
        .count_total
    });
    let line = String::from_utf8(line).unwrap();
    let (time, line) = line.split_once(' ').unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time:?}");
    (count, line.to_owned())
}

#[test]
fn the_format_allocates_nothing_with_or_without_something_to_escape() {
    assert_eq!(
        measure(|| drop(Box::new(1))).count_total,
        1,
        "the counter counts"
    );
    let format = LogFormat::new().with_job_ids();
    let (count, line) = write_counted(&format, "hello, café 東京");
    assert_eq!(
        line,
        format!("INFO  [{ID}] [---] app: received: hello, café 東京\n")
    );
    assert_eq!(count, 0, "plain message");
    let (count, line) = write_counted(&format, "a\nINFO  [x] forged\u{1b}[2K\u{202e}");
    assert_eq!(
        line,
        format!(r"INFO  [{ID}] [---] app: received: a\nINFO  [x] forged\u{{1b}}[2K\u{{202e}}")
            + "\n"
    );
    assert_eq!(count, 0, "message with controls");
}

#[cfg(feature = "kv")]
#[test]
fn the_logger_wrapper_allocates_nothing_for_a_record_with_nothing_to_escape() {
    use correlation_core::CorrelationLogger;
    use log::Log;

    struct Discard;
    impl Log for Discard {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            // Visit what a backend would read, without keeping it.
            let _ = record.key_values().count();
            let _ = record.target().len();
        }
        fn flush(&self) {}
    }

    let logger = CorrelationLogger::new(Discard);
    let kvs: &[(&str, log::kv::Value<'_>)] = &[
        ("user", log::kv::Value::from("bob")),
        ("count", log::kv::Value::from(3u64)),
    ];
    let count = sync_scope(CorrelationId::from_static(ID), || {
        measure(|| {
            logger.log(
                &log::Record::builder()
                    .target("app")
                    .args(format_args!("handled {}", "café"))
                    .key_values(&kvs)
                    .build(),
            );
        })
        .count_total
    });
    assert_eq!(count, 0);
}
