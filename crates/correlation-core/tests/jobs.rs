//! The apalis layer in a real apalis worker (in-memory storage): each job runs under the
//! context it was enqueued with, and nothing of one job leaks into the next job the same
//! worker runs. The SQLite storage, and chains of jobs enqueuing jobs, are tested end to
//! end in `examples/jobs` (sqlx would turn on tracing's `log` feature for this crate's
//! other tests).

use apalis_core::backend::TaskSink;
use apalis_core::backend::memory::MemoryStorage;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use correlation_core::propagation::{JobContextLayer, correlated_task};
use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationId, current, current_job_id, scope};

/// A job: its label (unique per test), and whether it is the last one.
type Job = (String, bool);

async fn log_and_maybe_stop(job: Job, worker: WorkerContext, tag: Data<&'static str>) {
    log::info!("{} ran {}", *tag, job.0);
    if job.1 {
        worker.stop().unwrap();
    }
}

fn only_record(logs: &LogCapture, message: &str) -> CapturedRecord {
    let records = logs.filtered(|record| record.message == message);
    assert_eq!(records.len(), 1, "{message}: {records:?}");
    records.into_iter().next().unwrap()
}

fn is_v4_hex(id: &str) -> bool {
    id.len() == 32 && StrictUuidV4.is_valid(id)
}

#[tokio::test]
async fn jobs_run_in_their_carried_context_and_share_nothing_on_one_worker() {
    let logs = LogCapture::install();
    let request = CorrelationId::from_static("0e3d9a4b1c6f4b2a8e5d7c9f1a3b5d7e");
    let mut storage = MemoryStorage::<Job>::new();

    // 1: from a request; 2: from outside any request or job; 3: pushed without a carrier
    // (e.g. by a producer that does not use this crate); 4: from the request again.
    scope(request.clone(), async {
        log::info!("isolation view enqueues");
        let task = correlated_task(("isolation-1".to_owned(), false));
        storage.push_task(task).await
    })
    .await
    .unwrap();
    let outside = correlated_task(("isolation-2".to_owned(), false));
    storage.push_task(outside).await.unwrap();
    storage
        .push(("isolation-3".to_owned(), false))
        .await
        .unwrap();
    let again = scope(request.clone(), async {
        correlated_task(("isolation-4".to_owned(), true))
    })
    .await;
    storage.push_task(again).await.unwrap();

    WorkerBuilder::new("isolation")
        .backend(storage)
        .data("isolation")
        .layer(JobContextLayer::new())
        .build(log_and_maybe_stop)
        .run()
        .await
        .unwrap();
    log::info!("isolation after the worker stopped");

    let view = only_record(logs, "isolation view enqueues");
    assert_eq!(view.correlation_id.as_deref(), Some(request.as_str()));
    assert_eq!((view.job_id, view.parent_job_id), (None, None));

    let runs: Vec<_> = (1..=4)
        .map(|n| only_record(logs, &format!("isolation ran isolation-{n}")))
        .collect();
    for run in &runs {
        assert!(is_v4_hex(run.job_id.as_deref().unwrap()), "{run:?}");
        assert_eq!(run.parent_job_id, None, "no job enqueued these: {run:?}");
    }
    // The request's jobs run under its ID; the others under IDs of their own.
    assert_eq!(runs[0].correlation_id.as_deref(), Some(request.as_str()));
    assert_eq!(runs[3].correlation_id.as_deref(), Some(request.as_str()));
    for run in &runs[1..3] {
        let id = run.correlation_id.as_deref().unwrap();
        assert!(is_v4_hex(id), "{run:?}");
        assert_ne!(id, request.as_str());
    }
    assert_ne!(runs[1].correlation_id, runs[2].correlation_id);
    // Every run has its own job ID.
    let mut job_ids: Vec<_> = runs.iter().map(|run| run.job_id.clone()).collect();
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), 4);

    let after = only_record(logs, "isolation after the worker stopped");
    assert_eq!(
        (after.correlation_id, after.job_id, after.parent_job_id),
        (None, None, None)
    );
    assert_eq!((current(), current_job_id()), (None, None));
}

#[tokio::test]
async fn an_unusable_carried_id_is_replaced_and_reported() {
    use apalis_core::task::builder::TaskBuilder;

    let logs = LogCapture::install();
    let mut storage = MemoryStorage::<Job>::new();
    let mut metadata = apalis_core::task::metadata::MetadataStore::new();
    metadata
        // The key the carrier's correlation ID is stored under.
        .insert("correlation.correlation_id", "hostile\tvalue-31c7")
        .unwrap();
    let task = TaskBuilder::new(("unusable-1".to_owned(), true))
        .with_metadata(metadata)
        .build();
    storage.push_task(task).await.unwrap();

    WorkerBuilder::new("unusable")
        .backend(storage)
        .data("unusable")
        .layer(JobContextLayer::new())
        .build(log_and_maybe_stop)
        .run()
        .await
        .unwrap();

    let run = only_record(logs, "unusable ran unusable-1");
    let id = run.correlation_id.clone().unwrap();
    assert!(is_v4_hex(&id), "{run:?}");
    let warnings: Vec<_> = logs
        .records_for(&id)
        .into_iter()
        .filter(|record| record.level == log::Level::Warn)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].job_id, run.job_id);
    assert!(
        logs.records_containing("31c7").is_empty(),
        "the value was logged"
    );
}
