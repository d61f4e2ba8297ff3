//! The request-log rows (feature `request-log`): each demo lets a caller on 127.0.0.1
//! raise one request's level with `X-Debug-Log`, and keeps every request's `DEBUG` lines
//! until it fails. Output is filtered at `info`, as the demos' default `RUST_LOG`, so
//! these rows need a [`RequestLogger`] in front of the capture and a test binary of their
//! own (`tests/<framework>_request_log.rs`); the main table's capture lets every level
//! through.

use std::sync::OnceLock;

use correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, IdSource, PANIC_LOG_TARGET};
use futures_util::StreamExt;
use log::Level;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::TestServer;
use crate::scenarios::{ACCESS_LOG_TARGETS, Reply, Starter, eventually, fresh_hex, get_from};

/// Expands to one `#[tokio::test]` per request-log row, run against the adapter started
/// by `$start` with the demo's configuration from `$demo_config`.
#[macro_export]
macro_rules! request_log_suite {
    ($start:path, $demo_config:path) => {
        $crate::request_log_suite!(@tests $start, $demo_config;
            a_trusted_debug_header_raises_its_request_alone,
            the_debug_header_from_an_untrusted_peer_changes_nothing,
            a_failed_request_brings_its_debug_lines_before_its_error,
            a_request_over_the_bound_keeps_the_newest_and_counts_the_rest,
            concurrent_failures_and_successes_never_mix_lines,
        );
    };
    (@tests $start:path, $demo_config:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                // Installed before the server starts, so no line of the row is lost.
                $crate::request_log::install(&$demo_config());
                let start = $crate::scenarios::starter($start);
                $crate::request_log::$name(&start, $demo_config()).await;
            }
        )*
    };
}

static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();

/// Installs, once per process, a [`RequestLogger`] with the output filter `info` in front
/// of a capture, with `log::max_level` at what `config` needs; returns the capture, which
/// holds what would be written. Callers running in parallel wait until it is in place.
///
/// # Panics
///
/// If another global logger was installed first.
pub fn install(config: &CorrelationConfig) -> &'static LogCapture {
    CAPTURE.get_or_init(|| {
        let capture: &'static LogCapture = Box::leak(Box::default());
        RequestLogger::new(capture)
            .parse_filters("info")
            .init(config)
            .expect("another global logger is already installed");
        capture
    })
}

/// What the installed logger wrote.
fn written() -> &'static LogCapture {
    CAPTURE
        .get()
        .expect("the request logger is installed first")
}

/// The demo routes' own `DEBUG` lines, the same in every demo (the demo contract).
fn route_debug_lines(path: &str) -> &'static [&'static str] {
    match path {
        "/" => &["the index takes no input"],
        "/spawn" => &[
            "spawning with core's helper, which carries the ID",
            "reading the ID in the spawned task",
        ],
        "/blocking" => &[
            "spawning on the blocking pool with core's helper, which carries the ID",
            "reading the ID in the blocking closure",
        ],
        "/error" => &[
            "preparing to fail: step 1 of 3",
            "preparing to fail: step 2 of 3",
            "preparing to fail: step 3 of 3",
        ],
        "/panic" => &["about to panic on purpose"],
        other => panic!("no DEBUG lines listed for {other}"),
    }
}

/// The `ERROR` line of the demos' `/error` route.
const ERROR_LINE: &str = "the demo error route failed on purpose";

/// Whether `record` is one of the demo app's own lines (target `example_<framework>`).
fn from_the_demo(record: &CapturedRecord) -> bool {
    record.target.starts_with("example_")
}

/// The messages of the demo's own `DEBUG` lines in `records`, in order.
fn demo_debug_lines(records: &[CapturedRecord]) -> Vec<&str> {
    records
        .iter()
        .filter(|r| r.level == Level::Debug && from_the_demo(r))
        .map(|r| r.message.as_str())
        .collect()
}

/// Every `DEBUG` record in `records`, whoever logged it.
fn debug_records(records: &[CapturedRecord]) -> Vec<&CapturedRecord> {
    records.iter().filter(|r| r.level == Level::Debug).collect()
}

/// What was written under `id` once the framework's access-log line with `status` is
/// among it: that line is the last one every framework writes for a request, so a line
/// that should not be there has had its chance by then.
async fn written_once_answered(id: &str, status: u16) -> Vec<CapturedRecord> {
    let status = status.to_string();
    let answered = |records: &[CapturedRecord]| {
        records.iter().any(|r| {
            ACCESS_LOG_TARGETS.iter().any(|t| r.target.starts_with(t))
                && r.message.contains(&status)
        })
    };
    let records = eventually(|| {
        let records = written().records_for(id);
        (answered(&records), records)
    })
    .await;
    assert!(
        answered(&records),
        "no access-log line with {status} under {id}: {records:?}"
    );
    records
}

/// Waits until the demo's own `DEBUG` lines under `id` are `expected`; returns what was
/// written under it.
async fn written_with_debug_lines(id: &str, expected: &[&str]) -> Vec<CapturedRecord> {
    let records = eventually(|| {
        let records = written().records_for(id);
        (demo_debug_lines(&records) == expected, records)
    })
    .await;
    assert_eq!(
        demo_debug_lines(&records),
        expected,
        "the demo's DEBUG lines under {id}: {records:?}"
    );
    records
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

/// `GET path` from 127.0.0.1 under a fresh ID, with `X-Debug-Log: <level>` when given;
/// returns the ID and the reply.
async fn send(server: &TestServer, path: &str, debug_log: Option<&str>) -> (String, Reply) {
    send_from(server, [127, 0, 0, 1], path, debug_log).await
}

async fn send_from(
    server: &TestServer,
    local: [u8; 4],
    path: &str,
    debug_log: Option<&str>,
) -> (String, Reply) {
    let id = fresh_hex();
    let mut sent = vec![("x-request-id", id.as_str())];
    if let Some(level) = debug_log {
        sent.push(("x-debug-log", level));
    }
    let reply = get_from(server, local, path, headers(&sent)).await;
    assert_eq!(reply.id(), id, "GET {path}");
    (id, reply)
}

/// `X-Debug-Log: debug` from 127.0.0.1 writes the `DEBUG` lines of that request — its
/// handler's, and those of the task and blocking closure it starts — while requests in
/// flight at the same time without the header write none.
pub async fn a_trusted_debug_header_raises_its_request_alone(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let paths = ["/", "/spawn", "/blocking"];
    let requests = (0..30).map(|n| {
        let (path, raised) = (paths[n % paths.len()], n % 2 == 0);
        let server = &server;
        async move {
            let (id, reply) = send(server, path, raised.then_some("debug")).await;
            assert_eq!(reply.status, 200, "GET {path}");
            (path, raised, id)
        }
    });
    let sent: Vec<_> = futures_util::stream::iter(requests)
        .buffer_unordered(30)
        .collect()
        .await;
    for (path, raised, id) in sent {
        if raised {
            written_with_debug_lines(&id, route_debug_lines(path)).await;
        } else {
            let records = written_once_answered(&id, 200).await;
            assert!(
                debug_records(&records).is_empty(),
                "GET {path} without the header wrote DEBUG lines: {records:?}"
            );
        }
    }
}

/// The header from 127.0.0.2, which the demo does not trust, or with a value other than
/// a level, leaves the request at `info`: no `DEBUG` line, not even the one saying it was
/// ignored (that one is kept and dropped with the request).
pub async fn the_debug_header_from_an_untrusted_peer_changes_nothing(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    for (local, level) in [([127, 0, 0, 2], "debug"), ([127, 0, 0, 1], "loud")] {
        let (id, reply) = send_from(&server, local, "/spawn", Some(level)).await;
        assert_eq!(reply.status, 200);
        let records = written_once_answered(&id, 200).await;
        assert!(
            debug_records(&records).is_empty(),
            "X-Debug-Log: {level} from {local:?} wrote DEBUG lines: {records:?}"
        );
    }
    // The same request from the trusted address is raised.
    let (id, _) = send(&server, "/spawn", Some("debug")).await;
    written_with_debug_lines(&id, route_debug_lines("/spawn")).await;
}

/// `GET /error` writes its kept `DEBUG` lines, in order, before its `ERROR` line; a
/// panic writes them before the panic's line; `GET /` succeeds and writes none.
pub async fn a_failed_request_brings_its_debug_lines_before_its_error(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let (id, reply) = send(&server, "/error", None).await;
    assert_eq!(reply.status, 500);
    let records = written_with_debug_lines(&id, route_debug_lines("/error")).await;
    assert_debug_lines_before(&records, |r| r.message == ERROR_LINE, "/error");

    let (id, reply) = send(&server, "/panic", None).await;
    assert_eq!(reply.status, 500);
    let records = written_with_debug_lines(&id, route_debug_lines("/panic")).await;
    assert_debug_lines_before(&records, |r| r.target == PANIC_LOG_TARGET, "/panic");

    let (id, reply) = send(&server, "/", None).await;
    assert_eq!(reply.status, 200);
    let records = written_once_answered(&id, 200).await;
    assert!(
        debug_records(&records).is_empty(),
        "GET / succeeded and wrote DEBUG lines: {records:?}"
    );
}

/// Asserts that the first `ERROR` record in `records` is the one `failure` picks, and
/// that the demo's `DEBUG` lines all come before it.
fn assert_debug_lines_before(
    records: &[CapturedRecord],
    failure: impl Fn(&CapturedRecord) -> bool,
    path: &str,
) {
    let first_error = records
        .iter()
        .position(|r| r.level == Level::Error)
        .unwrap_or_else(|| panic!("{path} wrote no ERROR line: {records:?}"));
    assert!(
        failure(&records[first_error]),
        "{path}: the first ERROR line is not the failure's: {records:?}"
    );
    let last_debug = records
        .iter()
        .rposition(|r| r.level == Level::Debug && from_the_demo(r))
        .unwrap_or_else(|| panic!("{path} wrote no DEBUG line: {records:?}"));
    assert!(
        last_debug < first_error,
        "{path}: a DEBUG line came after the ERROR line: {records:?}"
    );
}

/// The records written out of `records`' buffer: those before the first `ERROR` that the
/// output filter (`info`) would have left out, and the line saying how many were dropped.
fn flushed_before_error(records: &[CapturedRecord]) -> Vec<&CapturedRecord> {
    records
        .iter()
        .take_while(|r| r.level != Level::Error)
        .filter(|r| r.level == Level::Debug || is_dropped_note(r))
        .collect()
}

/// Whether `record` is the buffer's note of the records it dropped.
fn is_dropped_note(record: &CapturedRecord) -> bool {
    record.target == "correlation" && record.message.contains("were dropped from its log buffer")
}

/// With a bound of two records, `GET /error` writes the two newest of the lines it kept,
/// after a line saying how many earlier ones were dropped (counted against the same
/// request under an unbounded buffer), then its `ERROR` line.
pub async fn a_request_over_the_bound_keeps_the_newest_and_counts_the_rest(
    start: &Starter,
    demo: CorrelationConfig,
) {
    const BOUND: usize = 2;
    // What the demo keeps of the request when nothing is dropped: the demo's lines and
    // its framework's.
    let unbounded = start(demo).await;
    let (id, _) = send(&unbounded, "/error", None).await;
    let records = written_with_debug_lines(&id, route_debug_lines("/error")).await;
    let kept: Vec<String> = flushed_before_error(&records)
        .iter()
        .map(|r| r.message.clone())
        .collect();
    assert!(
        kept.len() > BOUND,
        "the row needs more kept lines than the bound: {kept:?}"
    );

    let small = CorrelationConfig::builder()
        .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
        .log_buffer(LogBuffer::new().max_records(BOUND))
        .build()
        .unwrap();
    let bounded = start(small).await;
    let (id, reply) = send(&bounded, "/error", None).await;
    assert_eq!(reply.status, 500);
    let records = eventually(|| {
        let records = written().records_for(&id);
        let done = records.iter().any(|r| r.message == ERROR_LINE);
        (done, records)
    })
    .await;
    let flushed = flushed_before_error(&records);
    let dropped = kept.len() - BOUND;
    let note = format!(
        "{dropped} earlier records of this request were dropped from its log buffer, which keeps at most {BOUND} records and 262144 bytes"
    );
    let messages: Vec<&str> = flushed.iter().map(|r| r.message.as_str()).collect();
    let mut expected = vec![note.as_str()];
    expected.extend(kept[dropped..].iter().map(String::as_str));
    assert_eq!(messages, expected, "{records:?}");
    assert_eq!(flushed[0].level, Level::Info);
    assert!(
        records.iter().any(|r| r.message == ERROR_LINE),
        "no ERROR line under {id}: {records:?}"
    );
}

/// 100 requests at once, half failing (`/error`) and half succeeding (`/`, `/spawn`,
/// `/blocking`): each failed request writes exactly its own kept lines, in order, under
/// its own ID, and no succeeding request writes a `DEBUG` line.
pub async fn concurrent_failures_and_successes_never_mix_lines(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let succeeding = ["/", "/spawn", "/blocking"];
    let requests = (0..100).map(|n| {
        let path = if n % 2 == 0 {
            "/error"
        } else {
            succeeding[n / 2 % succeeding.len()]
        };
        let server = &server;
        async move {
            let (id, reply) = send(server, path, None).await;
            (path, id, reply.status)
        }
    });
    let sent: Vec<_> = futures_util::stream::iter(requests)
        .buffer_unordered(100)
        .collect()
        .await;
    let mut failed = 0;
    for (path, id, status) in sent {
        if path == "/error" {
            assert_eq!(status, 500);
            failed += 1;
            let records = written_with_debug_lines(&id, route_debug_lines(path)).await;
            assert_debug_lines_before(&records, |r| r.message == ERROR_LINE, path);
            let errors: Vec<_> = records.iter().filter(|r| r.message == ERROR_LINE).collect();
            assert_eq!(errors.len(), 1, "{id}: {records:?}");
        } else {
            assert_eq!(status, 200, "GET {path}");
            let records = written_once_answered(&id, 200).await;
            assert!(
                debug_records(&records).is_empty(),
                "GET {path} succeeded and wrote DEBUG lines: {records:?}"
            );
        }
    }
    assert_eq!(failed, 50);
}
