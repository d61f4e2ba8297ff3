//! The background-jobs demo, shared by `main` and the tests: an axum endpoint enqueues
//! job 1 on an apalis SQLite queue, job 1 enqueues job 2, and so on to the chain's last
//! job, which calls this service back over HTTP. Every log line carries the request's
//! correlation ID, and each job's line its parent and current job IDs:
//!
//! ```text
//! INFO  [5bd6e2a7…] [---]               example_jobs: view: enqueueing job 1 of 3
//! INFO  [5bd6e2a7…] [--9f1c02aa]        example_jobs: job 1 of 3 running
//! INFO  [5bd6e2a7…] [9f1c02aa-0b77d3e1] example_jobs: job 2 of 3 running
//! INFO  [5bd6e2a7…] [0b77d3e1-e4a0c65f] example_jobs: job 3 of 3 running
//! INFO  [5bd6e2a7…] [---]               example_jobs: whoami: called with our ID
//! ```

use std::time::Duration;

use apalis::prelude::{BackendExt, BoxDynError, Data, TaskSink, WorkerBuilder};
use apalis_sqlite::{SqlitePool, SqliteStorage};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use correlation_axum::CorrelationLayer;
use correlation_core::propagation::{
    JobContextLayer, PropagateCorrelationMiddleware, correlated_task,
};
use correlation_core::{CorrelationConfig, CorrelationId, current, current_job_id};
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The queue's job: step `step` of a chain of `of` jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// This job's position in the chain, from 1.
    pub step: u32,
    /// The chain's length: the job with `step == of` enqueues nothing.
    pub of: u32,
}

/// The demo's queue: apalis's SQLite storage of [`Step`]s.
pub type Queue = SqliteStorage<Step>;

/// What the last job of a chain reports when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDone {
    /// The correlation ID the chain ran under.
    pub correlation_id: CorrelationId,
    /// The body `/whoami` answered the last job's call with: the ID this service saw.
    pub whoami: String,
}

/// Opens the SQLite database at `url` (e.g. `sqlite::memory:` or
/// `sqlite://jobs.db?mode=rwc`), creates apalis's tables, and returns the queue.
pub async fn sqlite_queue(url: &str) -> Result<Queue, apalis_sqlite::Error> {
    let pool = SqlitePool::connect(url).await?;
    SqliteStorage::setup(&pool).await?;
    Ok(SqliteStorage::new(&pool))
}

/// The HTTP side: `POST /jobs` enqueues job 1 of a chain of 3 (`?of=N` for another
/// length) and answers `202` with the request's correlation ID; `GET /whoami` answers
/// with the correlation ID it was called with (the last job calls it).
pub fn app(config: CorrelationConfig, queue: Queue) -> Router {
    Router::new()
        .route("/jobs", post(enqueue))
        .route("/whoami", get(whoami))
        .with_state(queue)
        .layer(CorrelationLayer::with_config(config))
}

#[derive(Debug, Deserialize)]
struct ChainLength {
    of: Option<u32>,
}

async fn enqueue(
    State(mut queue): State<Queue>,
    axum::extract::Query(length): axum::extract::Query<ChainLength>,
) -> Result<(StatusCode, String), (StatusCode, String)> {
    let of = length.of.unwrap_or(3).max(1);
    log::info!("view: enqueueing job 1 of {of}");
    // Built here, inside the request's scope, the task carries the request's ID.
    let task = correlated_task(Step { step: 1, of });
    queue.push_task(task).await.map_err(|err| {
        log::error!("view: could not enqueue: {err}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "queue unavailable".to_owned(),
        )
    })?;
    let id = current().map(|id| id.to_string()).unwrap_or_default();
    Ok((StatusCode::ACCEPTED, id))
}

async fn whoami() -> String {
    log::info!("whoami: called with our ID");
    current().map(|id| id.to_string()).unwrap_or_default()
}

/// What every job can reach: the queue (to enqueue the next job), this service's base
/// URL and an HTTP client that propagates the ID (for the last job's call), and where to
/// report finished chains.
#[derive(Debug, Clone)]
pub struct JobDeps {
    queue: Queue,
    client: ClientWithMiddleware,
    base_url: String,
    done: mpsc::UnboundedSender<ChainDone>,
}

impl JobDeps {
    /// Jobs enqueue on `queue`, call `base_url` (e.g. `http://127.0.0.1:8080`) with the
    /// header named by `config`, and report finished chains to `done`.
    pub fn new(
        queue: Queue,
        config: CorrelationConfig,
        base_url: String,
        done: mpsc::UnboundedSender<ChainDone>,
    ) -> Self {
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(PropagateCorrelationMiddleware::with_config(config))
            .build();
        Self {
            queue,
            client,
            base_url,
            done,
        }
    }
}

/// Runs one job: logs, then enqueues the next step or, as the last, calls `/whoami`.
async fn run_step(step: Step, deps: Data<JobDeps>) -> Result<(), BoxDynError> {
    log::info!("job {} of {} running", step.step, step.of);
    if step.step < step.of {
        let next = Step {
            step: step.step + 1,
            of: step.of,
        };
        // Built inside this job, the task carries our ID and this job as its parent.
        deps.queue.clone().push_task(correlated_task(next)).await?;
        log::info!(
            "job {} of {} enqueued job {}",
            step.step,
            step.of,
            next.step
        );
        return Ok(());
    }
    let whoami = deps
        .client
        .get(format!("{}/whoami", deps.base_url))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    log::info!(
        "job {} of {} done: /whoami saw {whoami}",
        step.step,
        step.of
    );
    let correlation_id = current().ok_or("a job always has a correlation ID")?;
    debug_assert!(current_job_id().is_some());
    // The receiver may be gone (e.g. the demo is shutting down); nothing to do then.
    let _ = deps.done.send(ChainDone {
        correlation_id,
        whoami,
    });
    Ok(())
}

/// How often an idle worker looks for new jobs. The SQLite storage's own wake-up only
/// reaches the storage value a job was pushed through, not the worker's copy, so the
/// worker polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs a worker named `name` on `queue` until `shutdown` completes: every job runs in
/// the context it was enqueued with ([`JobContextLayer`]).
pub async fn run_worker(
    name: &str,
    queue: Queue,
    deps: JobDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), apalis::prelude::WorkerError> {
    WorkerBuilder::new(name)
        .backend(queue.poll_with_interval(POLL_INTERVAL))
        .data(deps)
        .layer(JobContextLayer::new())
        .build(run_step)
        .run_until(async {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await
}
