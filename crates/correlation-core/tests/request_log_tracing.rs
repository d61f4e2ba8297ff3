//! `RequestFilter` and `RequestWriter` under the global subscriber, as an application
//! installs them, with `log` records bridged by `tracing-log` and the panic hook
//! installed: what reaches the output of each request, across threads and tasks.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use correlation_core::request_log::{LogBuffer, RequestFilter};
use correlation_core::{
    CorrelationConfig, CorrelationContext, CorrelationId, adapter, install_panic_hook,
};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Everything the layer wrote.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

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

impl Capture {
    /// `(level, message)` of each line printed under `id`, in order.
    fn lines_for(&self, id: &str) -> Vec<(String, String)> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| {
                line["spans"].as_array().is_some_and(|spans| {
                    spans
                        .iter()
                        .any(|span| span["correlation_id"].as_str() == Some(id))
                })
            })
            .map(|line| {
                (
                    line["level"].as_str().unwrap().to_owned(),
                    line["fields"]["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The configuration every test uses, with the global subscriber installed for it:
/// JSON output at `INFO`, buffers at `DEBUG`.
fn setup() -> (&'static CorrelationConfig, &'static Capture) {
    static SETUP: OnceLock<(CorrelationConfig, Capture)> = OnceLock::new();
    let (config, capture) = SETUP.get_or_init(|| {
        let config = CorrelationConfig::builder()
            .log_buffer(LogBuffer::new())
            .build()
            .unwrap();
        let capture = Capture::default();
        let filter = RequestFilter::new(&config).parse_filters("info");
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_span_list(true)
                    .with_writer(filter.writer(capture.clone()))
                    .with_filter(filter),
            )
            .init();
        tracing_log::LogTracer::init().unwrap();
        install_panic_hook();
        (config, capture)
    });
    (config, capture)
}

fn request(config: &CorrelationConfig, id: &str) -> CorrelationContext {
    adapter::request_context(config, CorrelationId::new(id).unwrap().into())
}

fn expected(lines: &[(&str, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(level, message)| ((*level).to_owned(), (*message).to_owned()))
        .collect()
}

#[test]
fn log_records_are_kept_and_written_with_the_events() {
    let (config, capture) = setup();
    let context = request(config, "log-bridge");
    context.run(|| {
        log::debug!("a log record");
        tracing::debug!("a tracing event");
        log::info!("written at once");
    });
    assert_eq!(
        capture.lines_for("log-bridge"),
        expected(&[("INFO", "written at once")])
    );
    context.run(|| log::error!("failed"));
    assert_eq!(
        capture.lines_for("log-bridge"),
        expected(&[
            ("INFO", "written at once"),
            ("DEBUG", "a log record"),
            ("DEBUG", "a tracing event"),
            ("ERROR", "failed"),
        ])
    );
}

#[test]
fn a_panic_under_the_id_writes_the_buffer_before_the_panic_line() {
    let (config, capture) = setup();
    let context = request(config, "panic-req");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        context.run(|| {
            tracing::debug!("about to divide");
            panic!("division by zero");
        });
    }));
    assert!(caught.is_err());
    let lines = capture.lines_for("panic-req");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], ("DEBUG".to_owned(), "about to divide".to_owned()));
    assert_eq!(lines[1].0, "ERROR");
    assert!(lines[1].1.ends_with("division by zero"), "{:?}", lines[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_outlives_its_request_never_reaches_another_requests_flush() {
    let (config, capture) = setup();
    let (go, wait) = mpsc::channel::<()>();
    let first = request(config, "outlived-first");
    let late = first.run(|| {
        correlation_core::spawn_blocking(move || {
            wait.recv_timeout(Duration::from_secs(10)).unwrap();
            tracing::debug!("late line of the first request");
            tracing::error!("the first request's task failed");
        })
    });
    drop(first);

    let second = request(config, "outlived-second");
    second.run(|| tracing::debug!("second's own line"));
    go.send(()).unwrap();
    late.await.unwrap();
    adapter::response_status(&second, 500);

    assert_eq!(
        capture.lines_for("outlived-second"),
        expected(&[("DEBUG", "second's own line")])
    );
    assert_eq!(
        capture.lines_for("outlived-first"),
        expected(&[
            ("DEBUG", "late line of the first request"),
            ("ERROR", "the first request's task failed"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // each request's task starts outside any request, as a server's
async fn concurrent_requests_never_mix_their_lines() {
    let (config, capture) = setup();
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let context = request(config, &format!("mix-{n}"));
            tokio::spawn(async move {
                context
                    .clone()
                    .wrap(async move {
                        tracing::debug!("step one of {n}");
                        tokio::task::yield_now().await;
                        tracing::debug!("step two of {n}");
                        if n % 2 == 0 {
                            tracing::error!("request {n} failed");
                        }
                    })
                    .await;
                adapter::response_status(&context, if n % 3 == 0 { 503 } else { 200 });
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for n in 0..100 {
        let lines = capture.lines_for(&format!("mix-{n}"));
        let mut want = vec![];
        if n % 2 == 0 || n % 3 == 0 {
            want.push(("DEBUG", format!("step one of {n}")));
            want.push(("DEBUG", format!("step two of {n}")));
        }
        if n % 2 == 0 {
            want.push(("ERROR", format!("request {n} failed")));
        }
        let want: Vec<_> = want
            .into_iter()
            .map(|(level, message)| (level.to_owned(), message))
            .collect();
        assert_eq!(lines, want, "request {n}");
    }
}
