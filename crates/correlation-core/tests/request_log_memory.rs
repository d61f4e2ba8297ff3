//! A request's log buffer holds at most about its configured bytes, however much the
//! request logs: the heap it holds is counted by `allocation-counter`'s global allocator,
//! per thread, as in `allocations.rs`.
//!
//! `cargo test -p correlation-core --features request-log --test request_log_memory -- --nocapture`
//! prints the figures recorded in BENCHMARKS.md.
#![cfg(feature = "request-log")]

use allocation_counter::measure;
use correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_core::{CorrelationConfig, CorrelationId, adapter};
use log::{Level, Log, Metadata, Record};

/// A backend that writes nothing: what is measured is what the request keeps.
struct Discard;

impl Log for Discard {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &Record<'_>) {}
    fn flush(&self) {}
}

/// The most heap bytes held while a request logs `records` DEBUG records of `message_len`
/// bytes each under `buffer`, none of them written, measured before the request ends.
fn peak_heap(buffer: LogBuffer, records: usize, message_len: usize) -> u64 {
    let config = CorrelationConfig::builder()
        .log_buffer(buffer)
        .build()
        .unwrap();
    let logger = RequestLogger::new(Discard).parse_filters("info");
    let message = "m".repeat(message_len);
    let id = CorrelationId::new("memory-bound").unwrap();
    let info = measure(|| {
        let context = adapter::request_context(&config, id.into());
        context.run(|| {
            for n in 0..records {
                logger.log(
                    &Record::builder()
                        .level(Level::Debug)
                        .target("shop::checkout")
                        .module_path_static(Some("shop::checkout"))
                        .file_static(Some("src/checkout.rs"))
                        .line(Some(42))
                        .args(format_args!("{n} {message}"))
                        .build(),
                );
            }
        });
        // Held until here, when the request's context goes.
        drop(context);
    });
    info.bytes_max
}

#[test]
fn a_request_that_logs_past_its_byte_bound_holds_about_the_bound() {
    let max_bytes = 64 * 1024;
    let buffer = LogBuffer::new().max_bytes(max_bytes).max_records(1_000_000);
    // 2,000 records of about 300 bytes: ten times the bound.
    let peak = peak_heap(buffer, 2_000, 300);
    println!("bound {max_bytes} bytes, 2000 records of 300 bytes: peak heap {peak} bytes");
    assert!(
        peak <= (max_bytes + max_bytes / 4) as u64,
        "a request bounded at {max_bytes} bytes held {peak} bytes"
    );
}

#[test]
fn the_default_bound_holds_for_short_and_long_records() {
    // Short records reach the default 1000-record bound first, long ones the 256 KiB one.
    for (records, message_len) in [(5_000, 40), (5_000, 1_000)] {
        let peak = peak_heap(LogBuffer::new(), records, message_len);
        println!("default bound, {records} records of {message_len} bytes: peak heap {peak} bytes");
        assert!(
            peak <= 256 * 1024 + 64 * 1024,
            "a request under the default bound held {peak} bytes"
        );
    }
}
