//! Jobs run by the apalis layer with `request-log`: each run keeps its records below the
//! output level and writes them when it returns an `Err` or panics, and a raised request
//! gives its level to the jobs it enqueues when its configuration says so. The global
//! logger is a `RequestLogger` in front of a capture; no panic hook is installed, so a
//! panicking job's buffer is written by the layer itself.

use std::sync::OnceLock;

use apalis_core::backend::TaskSink;
use apalis_core::backend::memory::MemoryStorage;
use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use correlation_core::propagation::{JobContextLayer, correlated_task};
use correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, CorrelationId, JobCarrier, TrustPolicy, adapter};
use http::HeaderMap;
use log::Level;
use tower::{Layer, ServiceExt};

/// Output at `INFO`, buffers at `DEBUG`, a level header trusted from anyone, and the
/// raised level taken into jobs; the global logger installed for it.
fn setup() -> (&'static CorrelationConfig, &'static LogCapture) {
    static SETUP: OnceLock<(CorrelationConfig, &'static LogCapture)> = OnceLock::new();
    let (config, capture) = SETUP.get_or_init(|| {
        let config = CorrelationConfig::builder()
            .log_buffer(LogBuffer::new())
            .log_level_header("X-Debug-Log", TrustPolicy::Always)
            .log_level_into_jobs(true)
            .build()
            .unwrap();
        let capture: &'static LogCapture = Box::leak(Box::default());
        RequestLogger::new(capture)
            .parse_filters("info")
            .init(&config)
            .unwrap();
        (config, capture)
    });
    (config, capture)
}

/// What this test's jobs and requests logged under `id`: not the lines of `tracing`
/// spans, which its `log` feature writes when another crate of the workspace turns it on.
fn messages(capture: &LogCapture, id: &str) -> Vec<(Level, String)> {
    capture
        .records_for(id)
        .into_iter()
        .filter(|record| record.target == module_path!())
        .map(|record| (record.level, record.message))
        .collect()
}

/// A job: its label, whether it fails, and whether it is the last one.
type Job = (String, bool, bool);

async fn run(job: Job, worker: WorkerContext) -> Result<(), BoxDynError> {
    let (label, fails, last) = job;
    log::debug!("{label}: detail");
    if last {
        worker.stop().unwrap();
    }
    if fails {
        return Err(format!("{label} failed").into());
    }
    Ok(())
}

fn task(id: &'static str, label: &str, fails: bool, last: bool) -> Task<Job> {
    correlation_core::sync_scope(CorrelationId::from_static(id), || {
        correlated_task((label.to_owned(), fails, last))
    })
}

#[tokio::test]
async fn a_job_that_returns_an_error_writes_its_buffer_and_one_that_succeeds_drops_it() {
    let (config, capture) = setup();
    let mut storage = MemoryStorage::<Job>::new();
    storage
        .push_task(task("job-err", "failing", true, false))
        .await
        .unwrap();
    storage
        .push_task(task("job-ok", "succeeding", false, true))
        .await
        .unwrap();
    WorkerBuilder::new("buffers")
        .backend(storage)
        .layer(JobContextLayer::with_config(config.clone()))
        .build(run)
        .run()
        .await
        .unwrap();

    assert_eq!(
        messages(capture, "job-err"),
        [(Level::Debug, "failing: detail".to_owned())]
    );
    let failed = capture.records_for("job-err");
    assert!(failed[0].job_id.is_some(), "{failed:?}");
    assert!(messages(capture, "job-ok").is_empty());
}

#[test]
fn a_job_that_panics_writes_its_buffer() {
    let (config, capture) = setup();
    fn bug() -> Result<(), BoxDynError> {
        panic!("job bug")
    }
    let service = JobContextLayer::with_config(config.clone()).layer(tower::service_fn(
        |_: Task<()>| async {
            log::debug!("about to panic");
            bug()
        },
    ));
    let task = correlation_core::sync_scope(CorrelationId::from_static("job-panic"), || {
        TaskBuilder::new(())
            .metadata(&JobCarrier::capture())
            .build()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(service.oneshot(task))
    }));
    assert!(caught.is_err());
    assert_eq!(
        messages(capture, "job-panic"),
        [(Level::Debug, "about to panic".to_owned())]
    );
}

#[tokio::test]
async fn a_raised_request_raises_the_jobs_it_enqueues() {
    let (config, capture) = setup();
    let mut headers = HeaderMap::new();
    headers.insert("x-debug-log", "debug".parse().unwrap());
    let decide = |headers: &HeaderMap, id: &'static str| {
        let (mut decision, _) = adapter::decide_request(config, headers, || None).unwrap();
        decision.id = CorrelationId::from_static(id);
        adapter::request_context(config, decision)
    };
    let raised = decide(&headers, "raised-request");
    let plain = decide(&HeaderMap::new(), "plain-request");

    let mut storage = MemoryStorage::<Job>::new();
    let raised_task = raised.run(|| correlated_task(("raised".to_owned(), false, false)));
    let plain_task = plain.run(|| correlated_task(("plain".to_owned(), false, true)));
    storage.push_task(raised_task).await.unwrap();
    storage.push_task(plain_task).await.unwrap();
    WorkerBuilder::new("raised")
        .backend(storage)
        .layer(JobContextLayer::with_config(config.clone()))
        .build(run)
        .run()
        .await
        .unwrap();

    // Written at once, though the job succeeded: its level was raised.
    assert_eq!(
        messages(capture, "raised-request"),
        [(Level::Debug, "raised: detail".to_owned())]
    );
    assert!(messages(capture, "plain-request").is_empty());
}
