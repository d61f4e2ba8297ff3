//! asgi-correlation-id's Celery tests, for apalis on SQLite: a real endpoint over real
//! HTTP, a real worker on the SQLite storage, log lines captured with their IDs.
//!
//! - endpoint, then worker, then worker: the view's line has the request's ID and no job
//!   IDs; each job's line has the same ID, a valid job ID of its own, and as parent the
//!   previous job's ID;
//! - worker, then worker, then worker outside any request: all share the ID the first
//!   job generated;
//! - nothing of one job leaks into the next job run on the same worker;
//! - a job that fails and is retried runs every attempt under the same IDs.
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use correlation_core::propagation::correlated_task;
use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, current, current_job_id};
use example_jobs::{ChainDone, JobDeps, Queue, Step, app, run_worker, sqlite_queue};
use tokio::sync::{mpsc, watch};

/// The demo on `127.0.0.1:0` with its own in-memory SQLite queue and one worker; stopped
/// on drop.
struct Demo {
    addr: SocketAddr,
    queue: Queue,
    finished: mpsc::UnboundedReceiver<ChainDone>,
    stop: watch::Sender<bool>,
}

impl Demo {
    async fn start() -> Self {
        let config = CorrelationConfig::default();
        let queue = sqlite_queue("sqlite::memory:").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let (done, finished) = mpsc::unbounded_channel();
        let deps = JobDeps::new(
            queue.clone(),
            config.clone(),
            format!("http://{addr}"),
            done,
        );
        tokio::spawn(run_worker(
            "jobs-test",
            queue.clone(),
            deps,
            until_stopped(stopped.clone()),
        ));
        let server = axum::serve(listener, app(config, queue.clone()))
            .with_graceful_shutdown(until_stopped(stopped));
        tokio::spawn(server.into_future());
        Self {
            addr,
            queue,
            finished,
            stop,
        }
    }

    /// `POST /jobs?of=<of>` with `id` as the incoming correlation ID; returns the body.
    async fn enqueue(&self, id: &str, of: u32) -> String {
        self.enqueue_with(id, &format!("of={of}")).await
    }

    /// `POST /jobs?<query>` with `id` as the incoming correlation ID; returns the body.
    async fn enqueue_with(&self, id: &str, query: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("http://{}/jobs?{query}", self.addr))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.text().await.unwrap()
    }

    /// The next chain to finish (within 20 seconds).
    async fn next_finished(&mut self) -> ChainDone {
        tokio::time::timeout(Duration::from_secs(20), self.finished.recv())
            .await
            .expect("the chain did not finish within 20 seconds")
            .expect("the worker stopped")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn is_v4_hex(id: Option<&str>) -> bool {
    id.is_some_and(|id| id.len() == 32 && StrictUuidV4.is_valid(id))
}

/// The one record logged under `id` with `message`.
fn line(logs: &LogCapture, id: &str, message: &str) -> CapturedRecord {
    let records: Vec<_> = logs
        .records_for(id)
        .into_iter()
        .filter(|record| record.message == message)
        .collect();
    assert_eq!(records.len(), 1, "{message:?} under {id}: {records:?}");
    records.into_iter().next().unwrap()
}

/// The `job N of <of> running` lines of the chain under `id`, checked to form a chain:
/// every job has a valid ID of its own, the first has no parent, and each other one has
/// the previous job as its parent.
fn chain_lines(logs: &LogCapture, id: &str, of: u32) -> Vec<CapturedRecord> {
    let lines: Vec<_> = (1..=of)
        .map(|n| line(logs, id, &format!("job {n} of {of} running")))
        .collect();
    for (n, job) in lines.iter().enumerate() {
        assert!(is_v4_hex(job.job_id.as_deref()), "job {}: {job:?}", n + 1);
        let expected_parent = match n {
            0 => None,
            _ => lines[n - 1].job_id.clone(),
        };
        assert_eq!(job.parent_job_id, expected_parent, "job {}: {job:?}", n + 1);
    }
    let mut job_ids: Vec<_> = lines.iter().map(|job| job.job_id.clone()).collect();
    job_ids.sort();
    job_ids.dedup();
    assert_eq!(job_ids.len(), lines.len(), "job IDs repeat: {lines:?}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_then_worker_then_worker() {
    let logs = LogCapture::install();
    let mut demo = Demo::start().await;
    let id = "1c5e0f0a9b7d4e2c8a6f3b1d5e7c9a0b";

    assert_eq!(demo.enqueue(id, 3).await, id);
    let chain = demo.next_finished().await;
    assert_eq!(chain.correlation_id, id);

    let view = line(logs, id, "view: enqueueing job 1 of 3");
    assert_eq!((view.job_id, view.parent_job_id), (None, None));
    let jobs = chain_lines(logs, id, 3);
    // Every other line a job logs carries its job IDs too.
    for (n, job) in jobs.iter().take(2).enumerate() {
        let enqueued = line(
            logs,
            id,
            &format!("job {} of 3 enqueued job {}", n + 1, n + 2),
        );
        assert_eq!(
            (&enqueued.job_id, &enqueued.parent_job_id),
            (&job.job_id, &job.parent_job_id)
        );
    }
    let last = line(logs, id, &format!("job 3 of 3 done: /whoami saw {id}"));
    assert_eq!(last.job_id, jobs[2].job_id);
    // Job 3's outgoing call carried the ID: the endpoint it called logged under it, as a
    // request (no job IDs).
    assert_eq!(chain.whoami, id);
    let whoami = line(logs, id, "whoami: called with our ID");
    assert_eq!((whoami.job_id, whoami.parent_job_id), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_then_worker_then_worker_outside_a_request() {
    let logs = LogCapture::install();
    let mut demo = Demo::start().await;

    // Enqueued outside any request or job, like a scheduled job: no ID to carry.
    assert_eq!((current(), current_job_id()), (None, None));
    let task = correlated_task(Step {
        step: 1,
        of: 3,
        failing_attempts: 0,
    });
    demo.queue.push_task(task).await.unwrap();
    let chain = demo.next_finished().await;

    // The first job generated an ID, and its children inherited it.
    let id = chain.correlation_id.as_str();
    assert!(is_v4_hex(Some(id)), "{id}");
    let jobs = chain_lines(logs, id, 3);
    assert_eq!(jobs[0].correlation_id.as_deref(), Some(id));
    // The outgoing call carried it too.
    assert_eq!(chain.whoami, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_one_job_leaks_into_the_next_on_the_same_worker() {
    let logs = LogCapture::install();
    let mut demo = Demo::start().await;

    // A chain from a request, then (on the same worker) a job pushed without any carrier.
    let request = "6a2f4c8e1b3d4f5a9c7e0b2d4f6a8c1e";
    demo.enqueue(request, 2).await;
    assert_eq!(demo.next_finished().await.correlation_id, request);
    let first = chain_lines(logs, request, 2);
    let bare = apalis::prelude::TaskBuilder::new(Step {
        step: 1,
        of: 1,
        failing_attempts: 0,
    })
    .build();
    demo.queue.push_task(bare).await.unwrap();
    let next = demo.next_finished().await;

    let id = next.correlation_id.as_str();
    assert_ne!(id, request);
    assert!(is_v4_hex(Some(id)), "{id}");
    let job = line(logs, id, "job 1 of 1 running");
    assert!(is_v4_hex(job.job_id.as_deref()));
    assert_eq!(job.parent_job_id, None, "a parent leaked in: {job:?}");
    assert!(
        first.iter().all(|earlier| earlier.job_id != job.job_id),
        "a job ID was reused: {job:?}"
    );
    // Nothing under the request's ID after its chain ended, and nothing here either.
    assert!(
        logs.records_for(request).iter().all(|record| {
            record.message != "job 1 of 1 running" && record.job_id != job.job_id
        })
    );
    assert_eq!((current(), current_job_id()), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_runs_every_attempt_under_the_same_ids() {
    let logs = LogCapture::install();
    let mut demo = Demo::start().await;
    let id = "3e9b1f7a2c4d4e6f8a0b1c2d3e4f5a6b";

    demo.enqueue_with(id, "of=2&fail=1").await;
    assert_eq!(demo.next_finished().await.correlation_id, id);

    let mut parent = None;
    for step in 1..=2 {
        let failed = line(
            logs,
            id,
            &format!("job {step} of 2 failing attempt 1 on purpose"),
        );
        assert!(is_v4_hex(failed.job_id.as_deref()), "{failed:?}");
        assert_eq!(failed.parent_job_id, parent, "job {step}: {failed:?}");
        let attempts: Vec<_> = logs
            .records_for(id)
            .into_iter()
            .filter(|record| record.message == format!("job {step} of 2 running"))
            .collect();
        assert_eq!(attempts.len(), 2, "job {step}: {attempts:?}");
        for attempt in &attempts {
            assert_eq!(
                (&attempt.job_id, &attempt.parent_job_id),
                (&failed.job_id, &failed.parent_job_id),
                "job {step}: {attempts:?}"
            );
        }
        parent = failed.job_id;
    }
}
