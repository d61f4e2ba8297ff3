//! The `tracing` side under a subscriber scoped to each test: what a fmt layer filtered by
//! `RequestFilter` and writing through `RequestWriter` prints, in JSON and in text.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::prelude::*;

use super::{LogBuffer, RequestFilter};
use crate::adapter;
use crate::config::CorrelationConfig;
use crate::context::CorrelationContext;
use crate::id::CorrelationId;
use crate::trust::TrustPolicy;

/// Everything a layer wrote.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }

    fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A clock that ticks once per formatted line: `t0`, `t1`, ... A line shows when it was
/// formatted, whenever it is written.
#[derive(Default)]
struct Ticks(AtomicUsize);

impl FormatTime for Ticks {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "t{}", self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// Runs `f` under a subscriber whose one layer prints JSON (with the span list) through
/// the request filter (output at `INFO`) and writer; returns what it printed.
fn json(config: &CorrelationConfig, f: impl FnOnce()) -> Vec<Value> {
    let capture = Capture::default();
    let filter = RequestFilter::new(config).parse_filters("info");
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_span_list(true)
        .with_timer(Ticks::default())
        .with_writer(filter.writer(capture.clone()))
        .with_filter(filter);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.json()
}

/// The same with the default text format.
fn text(config: &CorrelationConfig, f: impl FnOnce()) -> Vec<String> {
    let capture = Capture::default();
    let filter = RequestFilter::new(config).parse_filters("info");
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_timer(Ticks::default())
        .with_writer(filter.writer(capture.clone()))
        .with_filter(filter);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.lines()
}

fn buffered(buffer: LogBuffer) -> CorrelationConfig {
    CorrelationConfig::builder()
        .log_buffer(buffer)
        .build()
        .unwrap()
}

fn context(config: &CorrelationConfig, id: &'static str) -> CorrelationContext {
    adapter::request_context(config, CorrelationId::from_static(id).into())
}

/// `(timestamp, level, message, correlation_id)` of each JSON line.
fn summary(lines: &[Value]) -> Vec<(String, String, String, Option<String>)> {
    lines
        .iter()
        .map(|line| {
            let id = line["spans"].as_array().and_then(|spans| {
                spans
                    .iter()
                    .find_map(|span| span["correlation_id"].as_str().map(str::to_owned))
            });
            (
                line["timestamp"].as_str().unwrap().to_owned(),
                line["level"].as_str().unwrap().to_owned(),
                line["fields"]["message"].as_str().unwrap().to_owned(),
                id,
            )
        })
        .collect()
}

fn owned(
    expected: &[(&str, &str, &str, Option<&str>)],
) -> Vec<(String, String, String, Option<String>)> {
    expected
        .iter()
        .map(|(at, level, message, id)| {
            (
                (*at).to_owned(),
                (*level).to_owned(),
                (*message).to_owned(),
                id.map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn an_error_writes_the_buffer_first_in_order_with_each_lines_own_time() {
    let config = buffered(LogBuffer::new());
    let lines = json(&config, || {
        let request = context(&config, "req-error");
        request.run(|| {
            tracing::debug!("looked up the user");
            tracing::trace!("not kept: below the buffer level");
            tracing::info!("written at once");
            tracing::debug!("called the bank");
        });
        request.run(|| tracing::error!("the bank said no"));
        request.run(|| tracing::debug!("after the failure: written at once"));
    });
    let id = Some("req-error");
    assert_eq!(
        summary(&lines),
        owned(&[
            ("t1", "INFO", "written at once", id),
            ("t0", "DEBUG", "looked up the user", id),
            ("t2", "DEBUG", "called the bank", id),
            ("t3", "ERROR", "the bank said no", id),
            ("t4", "DEBUG", "after the failure: written at once", id),
        ])
    );
}

#[test]
fn the_text_format_flushes_the_same_way() {
    let config = buffered(LogBuffer::new());
    let lines = text(&config, || {
        let request = context(&config, "req-text");
        request.run(|| {
            tracing::debug!(user = 7, "looked up the user");
            tracing::error!("failed");
        });
        tracing::debug!("outside any request");
    });
    assert_eq!(
        lines,
        [
            "t0 DEBUG correlation{correlation_id=req-text}: correlation_core::request_log::subscriber_tests: looked up the user user=7",
            "t1 ERROR correlation{correlation_id=req-text}: correlation_core::request_log::subscriber_tests: failed",
        ]
    );
}

#[test]
fn a_request_that_ends_well_drops_its_buffer_and_a_5xx_writes_it() {
    let config = buffered(LogBuffer::new());
    let lines = json(&config, || {
        let ok = context(&config, "req-ok");
        ok.run(|| tracing::debug!("detail of a good request"));
        adapter::response_status(&ok, 200);
        adapter::response_status(&ok, 404);
        drop(ok);

        let failed = context(&config, "req-503");
        failed.run(|| tracing::debug!("detail before the 503"));
        adapter::response_status(&failed, 503);
        // Once: a second failure has nothing left to write.
        adapter::response_status(&failed, 500);
    });
    assert_eq!(
        summary(&lines),
        owned(&[("t1", "DEBUG", "detail before the 503", Some("req-503"))])
    );
}

#[test]
fn the_bound_keeps_the_newest_and_the_flush_says_how_many_went() {
    let config = buffered(LogBuffer::new().max_records(3));
    let lines = json(&config, || {
        let request = context(&config, "req-bound");
        request.run(|| {
            for n in 1..=5 {
                tracing::debug!("step {n}");
            }
        });
        request.run(|| tracing::error!("failed"));
        // The same through a 5xx, outside any event.
        let other = context(&config, "req-bound-5xx");
        other.run(|| {
            for n in 1..=4 {
                tracing::debug!("other step {n}");
            }
        });
        adapter::response_status(&other, 502);
    });
    let lines = summary(&lines);
    let messages: Vec<_> = lines
        .iter()
        .map(|(_, level, message, id)| (level.as_str(), message.as_str(), id.as_deref()))
        .collect();
    let notice = |n| {
        format!(
            "{n} earlier records of this request were dropped from its log buffer, which keeps at most 3 records and 262144 bytes"
        )
    };
    let (first, second) = (notice(2), notice(1));
    let id = Some("req-bound");
    let other = Some("req-bound-5xx");
    assert_eq!(
        messages,
        [
            ("INFO", first.as_str(), id),
            ("DEBUG", "step 3", id),
            ("DEBUG", "step 4", id),
            ("DEBUG", "step 5", id),
            ("ERROR", "failed", id),
            ("INFO", second.as_str(), other),
            ("DEBUG", "other step 2", other),
            ("DEBUG", "other step 3", other),
            ("DEBUG", "other step 4", other),
        ]
    );
}

#[test]
fn the_byte_bound_counts_the_formatted_line() {
    // A JSON line of about 200 bytes and its 200-byte message: two fit, three do not.
    let config = buffered(LogBuffer::new().max_bytes(1000));
    let big = "x".repeat(200);
    let lines = json(&config, || {
        let request = context(&config, "req-bytes");
        request.run(|| {
            tracing::debug!("too large alone {}", "y".repeat(1000));
            for n in 1..=4 {
                tracing::debug!("{n} {big}");
            }
            tracing::error!("failed");
        });
    });
    let messages: Vec<_> = summary(&lines).into_iter().map(|line| line.2).collect();
    assert!(messages[0].starts_with("3 earlier records"), "{messages:?}");
    assert!(messages[1].starts_with("3 ") && messages[2].starts_with("4 "));
    assert_eq!(messages.len(), 4);
}

#[test]
fn records_outside_a_request_meet_the_output_filter_alone() {
    let config = buffered(LogBuffer::new());
    let lines = json(&config, || {
        tracing::debug!("dropped");
        tracing::info!("written");
        tracing::error!("written too");
    });
    assert_eq!(
        summary(&lines),
        owned(&[
            ("t0", "INFO", "written", None),
            ("t1", "ERROR", "written too", None)
        ])
    );
}

#[test]
fn a_trusted_header_raises_its_request_alone() {
    let config = CorrelationConfig::builder()
        .log_level_header(
            "X-Debug-Log",
            TrustPolicy::from_peers(["127.0.0.1"]).unwrap(),
        )
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-debug-log", "debug".parse().unwrap());
    let local = || Some("127.0.0.1".parse().unwrap());
    let (raised, _) = adapter::decide_request(&config, &headers, local).unwrap();
    let (plain, _) = adapter::decide_request(&config, &HeaderMap::new(), local).unwrap();
    let (raised_id, plain_id) = (raised.id.to_string(), plain.id.to_string());
    let lines = json(&config, || {
        let (raised, plain) = (
            adapter::request_context(&config, raised),
            adapter::request_context(&config, plain),
        );
        raised.run(|| {
            tracing::debug!("raised");
            tracing::trace!("above the raised level");
        });
        plain.run(|| tracing::debug!("not raised"));
        // Carried into work started from the request.
        let bound = raised.run(|| crate::bind_current(|| tracing::debug!("bound")));
        bound();
    });
    let id = Some(raised_id.as_str());
    assert_eq!(
        summary(&lines),
        owned(&[("t0", "DEBUG", "raised", id), ("t1", "DEBUG", "bound", id)])
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.to_string().contains(&plain_id))
    );
}

#[test]
fn the_filter_tells_tracing_what_requests_may_want() {
    use tracing_subscriber::layer::Filter;
    let hint = |config: &CorrelationConfig, directives| {
        Filter::<tracing_subscriber::Registry>::max_level_hint(
            &RequestFilter::new(config).parse_filters(directives),
        )
    };
    let plain = CorrelationConfig::default();
    assert_eq!(
        hint(&plain, "warn"),
        Some(tracing::level_filters::LevelFilter::WARN)
    );
    let buffered = buffered(LogBuffer::new().level("warn,app=debug"));
    assert_eq!(
        hint(&buffered, "warn"),
        Some(tracing::level_filters::LevelFilter::DEBUG)
    );
    let header = CorrelationConfig::builder()
        .log_level_header("X-Debug-Log", TrustPolicy::Never)
        .build()
        .unwrap();
    assert_eq!(
        hint(&header, "info"),
        Some(tracing::level_filters::LevelFilter::TRACE)
    );
}

#[test]
fn with_the_output_at_warn_kept_lines_still_carry_the_request_span() {
    let config = buffered(LogBuffer::new());
    let capture = Capture::default();
    let filter = RequestFilter::new(&config).parse_filters("warn");
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_span_list(true)
        .with_timer(Ticks::default())
        .with_writer(filter.writer(capture.clone()))
        .with_filter(filter);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let request = context(&config, "req-warn");
        request.run(|| {
            tracing::info!("kept");
            tracing::warn!("written");
        });
        adapter::response_status(&request, 500);
        tracing::info!("outside: dropped");
    });
    assert_eq!(
        summary(&capture.json()),
        owned(&[
            ("t1", "WARN", "written", Some("req-warn")),
            ("t0", "INFO", "kept", Some("req-warn")),
        ])
    );
}

#[test]
fn kept_lines_go_where_the_wrapped_writer_sends_their_level() {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let config = buffered(LogBuffer::new());
    let (errors, rest) = (Capture::default(), Capture::default());
    let filter = RequestFilter::new(&config).parse_filters("info");
    let writer = errors
        .clone()
        .with_max_level(tracing::Level::WARN)
        .or_else(rest.clone());
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_timer(Ticks::default())
        .with_writer(filter.writer(writer))
        .with_filter(filter);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let request = context(&config, "req-split");
        request.run(|| {
            tracing::debug!("kept");
            tracing::error!("failed");
        });
    });
    let messages = |capture: &Capture| -> Vec<String> {
        capture
            .json()
            .iter()
            .map(|line| line["fields"]["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(messages(&rest), ["kept"]);
    assert_eq!(messages(&errors), ["failed"]);
}
