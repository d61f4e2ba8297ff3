use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use log::{Level, LevelFilter, Log, Metadata, Record};

use super::{LogBuffer, RequestLogger};
use crate::adapter;
use crate::config::CorrelationConfig;
use crate::context::CorrelationContext;
use crate::fmt::time::record_time;
use crate::id::CorrelationId;
use crate::test_util::LogCapture;
use crate::trust::TrustPolicy;

/// One line the backend was given.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    message: String,
    id: Option<String>,
    at: SystemTime,
}

/// A backend keeping every record it is given, with the ID and the time to print.
#[derive(Default)]
struct Backend {
    lines: Mutex<Vec<Line>>,
}

impl Backend {
    fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap().clone()
    }

    fn messages_for(&self, id: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.id.as_deref() == Some(id))
            .map(|line| line.message)
            .collect()
    }
}

impl Log for Backend {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        self.lines.lock().unwrap().push(Line {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            id: crate::current().map(|id| id.as_str().to_owned()),
            at: record_time(),
        });
    }

    fn flush(&self) {}
}

fn log(logger: &dyn Log, level: Level, message: &str) {
    logger.log(
        &Record::builder()
            .level(level)
            .target("app")
            .args(format_args!("{message}"))
            .build(),
    );
}

fn logger() -> RequestLogger<Backend> {
    RequestLogger::new(Backend::default()).parse_filters("info")
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

fn debug_header(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-debug-log", value.parse().unwrap());
    headers
}

#[test]
fn the_buffer_keeps_the_newest_in_order_and_says_how_many_went() {
    let config = buffered(LogBuffer::new().max_records(3));
    let logger = logger();
    let request = context(&config, "req-bound");
    request.run(|| {
        for n in 1..=5 {
            log(&logger, Level::Debug, &format!("step {n}"));
        }
    });
    assert!(logger.get_ref().lines().is_empty());
    request.run(|| log(&logger, Level::Error, "failed"));
    let lines = logger.get_ref().lines();
    assert_eq!(lines[0].level, Level::Info);
    assert_eq!(lines[0].target, crate::LOG_TARGET);
    assert!(
        lines[0]
            .message
            .starts_with("2 earlier records of this request were dropped")
    );
    let rest: Vec<_> = lines[1..]
        .iter()
        .map(|line| line.message.as_str())
        .collect();
    assert_eq!(rest, ["step 3", "step 4", "step 5", "failed"]);
    assert!(
        lines
            .iter()
            .all(|line| line.id.as_deref() == Some("req-bound"))
    );
}

#[test]
fn the_byte_bound_drops_the_oldest_and_a_record_too_large_alone() {
    let config = buffered(LogBuffer::new().max_bytes(1000));
    let logger = logger();
    let request = context(&config, "req-bytes");
    let big = "x".repeat(300);
    request.run(|| {
        log(&logger, Level::Debug, &"too large alone ".repeat(100));
        for n in 1..=4 {
            log(&logger, Level::Debug, &format!("{n} {big}"));
        }
        log(&logger, Level::Error, "failed");
    });
    let lines = logger.get_ref().messages_for("req-bytes");
    assert!(lines[0].starts_with("3 earlier records"), "{}", lines[0]);
    assert!(lines[1].starts_with("3 ") && lines[2].starts_with("4 "));
    assert_eq!(lines.len(), 4);
}

#[test]
fn an_error_writes_the_buffer_first_with_each_records_own_time() {
    let config = buffered(LogBuffer::new());
    let logger = logger();
    let request = context(&config, "req-error");
    let before = SystemTime::now();
    request.run(|| {
        log(&logger, Level::Debug, "looked up the user");
        log(&logger, Level::Trace, "not kept: below the buffer level");
        log(&logger, Level::Info, "written at once");
        log(&logger, Level::Debug, "called the bank");
    });
    let logged = SystemTime::now();
    let lines = logger.get_ref().lines();
    assert_eq!(lines.len(), 1);
    request.run(|| log(&logger, Level::Error, "the bank said no"));
    request.run(|| log(&logger, Level::Debug, "after the failure: written at once"));
    let lines = logger.get_ref().lines();
    let messages: Vec<_> = lines.iter().map(|line| line.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "written at once",
            "looked up the user",
            "called the bank",
            "the bank said no",
            "after the failure: written at once"
        ]
    );
    for replayed in &lines[1..3] {
        assert_eq!(replayed.level, Level::Debug);
        assert!(before <= replayed.at && replayed.at <= logged);
    }
    assert!(lines[3].at >= logged);
}

#[test]
fn a_request_that_ends_well_drops_its_buffer() {
    let config = buffered(LogBuffer::new());
    let logger = logger();
    let request = context(&config, "req-ok");
    request.run(|| log(&logger, Level::Debug, "detail"));
    adapter::response_status(&request, 200);
    adapter::response_status(&request, 404);
    drop(request);
    assert!(logger.get_ref().lines().is_empty());
}

#[test]
fn a_5xx_writes_the_buffer_through_the_global_logger() {
    let capture = LogCapture::install();
    let config = buffered(LogBuffer::new());
    let logger = logger();
    let request = context(&config, "req-5xx");
    request.run(|| log(&logger, Level::Debug, "detail before the 503"));
    adapter::response_status(&request, 503);
    let lines = capture.records_for("req-5xx");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].level, lines[0].message.as_str()),
        (Level::Debug, "detail before the 503")
    );
    // Once: a second failure has nothing left to write.
    adapter::response_status(&request, 500);
    assert_eq!(capture.records_for("req-5xx").len(), 1);
}

#[test]
fn records_outside_a_request_meet_the_output_filter_alone() {
    let logger = logger();
    log(&logger, Level::Debug, "dropped");
    log(&logger, Level::Info, "written");
    log(&logger, Level::Error, "written too");
    let messages: Vec<_> = logger
        .get_ref()
        .lines()
        .into_iter()
        .map(|line| line.message)
        .collect();
    assert_eq!(messages, ["written", "written too"]);
    let metadata = Metadata::builder()
        .level(Level::Debug)
        .target("app")
        .build();
    assert!(!logger.enabled(&metadata));
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
    let local = || Some("127.0.0.1".parse().unwrap());
    let (raised, _) = adapter::decide_request(&config, &debug_header("DEBUG"), local).unwrap();
    assert_eq!(raised.log_level(), Some(LevelFilter::Debug));
    let (plain, _) = adapter::decide_request(&config, &HeaderMap::new(), local).unwrap();
    assert_eq!(plain.log_level(), None);
    let (raised_id, plain_id) = (raised.id.clone(), plain.id.clone());

    let logger = logger();
    let (raised, plain) = (
        adapter::request_context(&config, raised),
        adapter::request_context(&config, plain),
    );
    raised.run(|| {
        log(&logger, Level::Debug, "raised");
        log(&logger, Level::Trace, "above the raised level");
    });
    plain.run(|| log(&logger, Level::Debug, "not raised"));
    assert_eq!(
        logger.get_ref().messages_for(raised_id.as_str()),
        ["raised"]
    );
    assert!(logger.get_ref().messages_for(plain_id.as_str()).is_empty());
    let metadata = Metadata::builder()
        .level(Level::Debug)
        .target("app")
        .build();
    assert!(raised.run(|| logger.enabled(&metadata)));
    assert!(!plain.run(|| logger.enabled(&metadata)));

    // Carried into work started from the request.
    let bound = raised.run(|| crate::bind_current(|| log(&logger, Level::Debug, "bound")));
    bound();
    assert_eq!(
        logger.get_ref().messages_for(raised_id.as_str()),
        ["raised", "bound"]
    );
}

#[test]
fn an_untrusted_peer_or_another_value_is_ignored_with_one_debug_line() {
    let capture = LogCapture::install();
    let config = CorrelationConfig::builder()
        .log_level_header(
            "X-Debug-Log",
            TrustPolicy::from_peers(["127.0.0.1"]).unwrap(),
        )
        .build()
        .unwrap();
    let peer = |address: &'static str| move || Some(address.parse().unwrap());
    let cases = [
        (
            debug_header("debug"),
            peer("127.0.0.2"),
            "untrusted peer 127.0.0.2",
        ),
        (
            debug_header("loud-7f3a\tinjected"),
            peer("127.0.0.1"),
            "its value is not `debug` or `trace`",
        ),
        (debug_header("info"), peer("127.0.0.1"), "its value is not"),
    ];
    for (headers, peer, why) in cases {
        let (decision, _) = adapter::decide_request(&config, &headers, peer).unwrap();
        assert_eq!(decision.log_level(), None);
        let lines = capture.records_for(decision.id.as_str());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].level, Level::Debug);
        assert_eq!(lines[0].target, crate::LOG_TARGET);
        assert!(lines[0].message.contains(why), "{}", lines[0].message);
    }
    assert!(capture.records_containing("loud-7f3a").is_empty());

    // The peer is asked once, for both trust policies.
    let config = CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers(["127.0.0.1"]).unwrap())
        .log_level_header(
            "X-Debug-Log",
            TrustPolicy::from_peers(["127.0.0.1"]).unwrap(),
        )
        .build()
        .unwrap();
    let asked = std::cell::Cell::new(0);
    let counted = || {
        asked.set(asked.get() + 1);
        Some("127.0.0.1".parse().unwrap())
    };
    let (decision, _) = adapter::decide_request(&config, &debug_header("trace"), counted).unwrap();
    assert_eq!(decision.log_level(), Some(LevelFilter::Trace));
    assert_eq!(asked.get(), 1);
}

#[test]
fn misconfiguration_fails_at_build() {
    let err = |builder: crate::CorrelationConfigBuilder| builder.build().unwrap_err().to_string();
    assert_eq!(
        err(CorrelationConfig::builder().log_buffer(LogBuffer::new().level("app=loud"))),
        "invalid log buffer level \"app=loud\": error parsing logger filter: invalid logging spec 'loud'"
    );
    assert_eq!(
        err(CorrelationConfig::builder().log_buffer(LogBuffer::new().level("off"))),
        "invalid log buffer level \"off\": it keeps no record"
    );
    assert_eq!(
        err(CorrelationConfig::builder().log_buffer(LogBuffer::new().max_records(0))),
        "the log buffer must keep at least one record and one byte"
    );
    assert_eq!(
        err(CorrelationConfig::builder().log_level_header("bad name", TrustPolicy::Never)),
        "the log level header \"bad name\" is not a valid HTTP header name"
    );
    assert_eq!(
        err(CorrelationConfig::builder().log_level_header("Cookie", TrustPolicy::Never)),
        "the log level header \"Cookie\" is reserved"
    );
}

#[test]
fn max_level_covers_the_output_the_buffer_and_a_level_header() {
    let logger = logger();
    assert_eq!(
        logger.max_level(&CorrelationConfig::default()),
        LevelFilter::Info
    );
    let config = buffered(LogBuffer::new().level("warn,app=debug"));
    assert_eq!(logger.max_level(&config), LevelFilter::Debug);
    let config = CorrelationConfig::builder()
        .log_level_header("X-Debug-Log", TrustPolicy::Never)
        .build()
        .unwrap();
    assert_eq!(logger.max_level(&config), LevelFilter::Trace);
}

#[test]
fn contexts_without_a_level_or_a_buffer_are_the_plain_id() {
    let config = CorrelationConfig::default();
    let request = context(&config, "req-plain");
    assert!(request.request_log().is_none());
    let request = context(&buffered(LogBuffer::new()), "req-buffered");
    assert!(
        request
            .request_log()
            .is_some_and(|log| log.buffer().is_some())
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_that_outlives_its_request_never_reaches_another_requests_buffer() {
    let config = buffered(LogBuffer::new());
    let logger = Arc::new(logger());
    let (go, wait) = mpsc::channel::<()>();
    let first = context(&config, "req-first");
    let late = {
        let logger = Arc::clone(&logger);
        first.run(|| {
            crate::spawn_blocking(move || {
                wait.recv_timeout(Duration::from_secs(10)).unwrap();
                log(&*logger, Level::Debug, "late line of the first request");
                log(&*logger, Level::Error, "the first request's task failed");
            })
        })
    };
    drop(first);

    let second = context(&config, "req-second");
    second.run(|| log(&*logger, Level::Debug, "second's own line"));
    go.send(()).unwrap();
    late.await.unwrap();
    second.run(|| log(&*logger, Level::Error, "the second request failed"));

    assert_eq!(
        logger.get_ref().messages_for("req-second"),
        ["second's own line", "the second request failed"]
    );
    assert_eq!(
        logger.get_ref().messages_for("req-first"),
        [
            "late line of the first request",
            "the first request's task failed"
        ]
    );
}
