//! The background-jobs demo, shared by `main` and the tests: an axum endpoint enqueues
//! job 1 on an apalis queue (SQLite, Redis or PostgreSQL), job 1 enqueues job 2, and so on
//! to the chain's last job, which calls the web service back over HTTP. The web service
//! and the workers may run in one process or in several. Every log line carries the
//! request's correlation ID, and each job's line its parent and current job IDs:
//!
//! ```text
//! 2026-12-05T13:05:39Z INFO  [5bd6e2a7…] [---]               example_jobs: view: enqueueing job 1 of 3
//! 2026-12-05T13:05:39Z INFO  [5bd6e2a7…] [--9f1c02aa]        example_jobs: job 1 of 3 running
//! 2026-12-05T13:05:39Z INFO  [5bd6e2a7…] [9f1c02aa-0b77d3e1] example_jobs: job 2 of 3 running
//! 2026-12-05T13:05:40Z INFO  [5bd6e2a7…] [0b77d3e1-e4a0c65f] example_jobs: job 3 of 3 running
//! 2026-12-05T13:05:40Z INFO  [5bd6e2a7…] [---]               example_jobs: whoami: called with our ID
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{
    Attempt, BoxDynError, Data, PollSnapshot, PollStrategy, PollWith, Task, TaskSink, WorkerBuilder,
};
use apalis_postgres::{PgPool, PostgresStorage};
use apalis_redis::RedisStorage;
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
    /// How many attempts of each job of the chain fail on purpose (before it enqueues
    /// anything), to show that a retried job keeps its IDs.
    #[serde(default)]
    pub failing_attempts: u32,
}

/// The demo's queue of [`Step`]s, on one of apalis's storages.
#[derive(Clone)]
pub enum Queue {
    /// `apalis-sqlite`, in one process (in memory) or shared through a file.
    Sqlite(SqliteStorage<Step>),
    /// `apalis-redis`: the queue's keys start with its name.
    Redis(RedisStorage<Step>),
    /// `apalis-postgres`: apalis's tables in the `apalis` schema; the queue's name is
    /// its rows' job type.
    Postgres(PostgresStorage<Step>),
}

/// The queue's name when `JOBS_QUEUE` does not set one.
pub const DEFAULT_QUEUE_NAME: &str = "example-jobs";

impl Queue {
    /// Connects to the storage `url` names and returns the queue called `name` there:
    /// `sqlite:...` (e.g. `sqlite::memory:` or `sqlite://jobs.db?mode=rwc`), `redis://...`
    /// or `postgres://...` (`postgresql://` too). Creates apalis's tables when needed.
    pub async fn connect(url: &str, name: &str) -> Result<Self, BoxDynError> {
        let [queue] = Self::connect_all(url, [name]).await?;
        Ok(queue)
    }

    /// Like [`connect`](Self::connect), for several queues of one storage sharing one
    /// connection (one pool).
    pub async fn connect_all<const N: usize>(
        url: &str,
        names: [&str; N],
    ) -> Result<[Self; N], BoxDynError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => {
                let queue = sqlite_queue(url).await?;
                Ok(names.map(|_| queue.clone()))
            }
            "redis" | "rediss" => {
                let connection = apalis_redis::connect(url).await?;
                // One task per fetch, so that a queue's jobs spread over the worker
                // processes rather than the first poll taking a whole batch.
                Ok(names.map(|name| {
                    let config = apalis_redis::Config::default().queue(name).batch_size(1);
                    Self::Redis(RedisStorage::new(connection.clone()).with_config(config))
                }))
            }
            "postgres" | "postgresql" => {
                let pool = PgPool::connect(url).await?;
                PostgresStorage::setup(&pool).await?;
                Ok(names.map(|name| {
                    let config = apalis_postgres::Config::default().queue(name).batch_size(1);
                    Self::Postgres(PostgresStorage::new(&pool).with_config(config))
                }))
            }
            _ => Err(format!(
                "JOBS_DATABASE_URL must start with sqlite:, redis:// or postgres://, not {:?}",
                scheme.escape_default().to_string()
            )
            .into()),
        }
    }

    /// Which storage: `sqlite`, `redis` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Enqueues `task` (build it with `correlated_task` to carry the caller's IDs).
    pub async fn push_task(&self, task: Task<Step>) -> Result<(), BoxDynError> {
        match self {
            Self::Sqlite(storage) => storage.clone().push_task(task).await?,
            Self::Redis(storage) => storage.clone().push_task(task).await?,
            Self::Postgres(storage) => storage.clone().push_task(task).await?,
        }
        Ok(())
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Queue").field(&self.kind()).finish()
    }
}

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
    Ok(Queue::Sqlite(SqliteStorage::new(&pool)))
}

/// The HTTP side: `POST /jobs` enqueues job 1 of a chain of 3 (`?of=N` for another
/// length, `?fail=K` to make each job's first K attempts fail) and answers `202` with
/// the request's correlation ID; `GET /whoami` answers with the correlation ID it was
/// called with (the last job calls it).
pub fn app(config: CorrelationConfig, queue: Queue) -> Router {
    Router::new()
        .route("/jobs", post(enqueue))
        .route("/whoami", get(whoami))
        .with_state(queue)
        .layer(CorrelationLayer::with_config(config))
}

#[derive(Debug, Deserialize)]
struct ChainOptions {
    of: Option<u32>,
    fail: Option<u32>,
}

async fn enqueue(
    State(queue): State<Queue>,
    axum::extract::Query(options): axum::extract::Query<ChainOptions>,
) -> Result<(StatusCode, String), (StatusCode, String)> {
    let of = options.of.unwrap_or(3).max(1);
    log::info!("view: enqueueing job 1 of {of}");
    // Built here, inside the request's scope, the task carries the request's ID.
    let task = correlated_task(Step {
        step: 1,
        of,
        failing_attempts: options.fail.unwrap_or(0),
    });
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

/// Runs one job: logs, fails on purpose if asked to, then enqueues the next step or, as
/// the last, calls `/whoami`.
async fn run_step(step: Step, attempt: Attempt, deps: Data<JobDeps>) -> Result<(), BoxDynError> {
    log::info!("job {} of {} running", step.step, step.of);
    // apalis numbers attempts from 1.
    let attempt = attempt.current();
    if attempt <= step.failing_attempts as usize {
        log::warn!(
            "job {} of {} failing attempt {attempt} on purpose",
            step.step,
            step.of
        );
        return Err(format!("attempt {attempt} failed on purpose").into());
    }
    if step.step < step.of {
        let next = Step {
            step: step.step + 1,
            ..step
        };
        // Built inside this job, the task carries our ID and this job as its parent.
        deps.queue.push_task(correlated_task(next)).await?;
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

/// How often an idle worker looks for new jobs. A storage's own wake-up only reaches the
/// storage value a job was pushed through, never a worker in another process, so the
/// worker polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Wakes an idle worker every `interval`, with a timer armed after every wake-up.
///
/// apalis's own interval strategy (`poll_with_interval`) sets its next timer without
/// polling it. When the worker's fetch finishes in the same wake-up and finds nothing, no
/// timer is left to wake the worker, which then sleeps until its next heartbeat (30 s on
/// PostgreSQL) while jobs wait in the queue. This strategy polls each new timer as soon
/// as it sets it.
#[derive(Debug)]
pub struct EveryInterval {
    interval: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl EveryInterval {
    /// The strategy, its first wake-up `interval` from now. Call it inside a Tokio runtime.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            timer: Box::pin(tokio::time::sleep(interval)),
        }
    }
}

impl PollStrategy for EveryInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + self.interval);
        // The new deadline registers this wake-up's waker, so the worker wakes again even
        // if nothing else polls it before then.
        let _ = self.timer.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

/// Runs a worker named `name` on `queue` until `shutdown` completes: every job runs in
/// the context it was enqueued with ([`JobContextLayer`]). Worker names must be unique
/// per queue across processes.
pub async fn run_worker(
    name: &str,
    queue: Queue,
    deps: JobDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), apalis::prelude::WorkerError> {
    let shutdown = async {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    // One worker definition; the storages are different types.
    macro_rules! run_on {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend(PollWith::new($storage, EveryInterval::new(POLL_INTERVAL)))
                .data(deps)
                .layer(JobContextLayer::new())
                .build(run_step)
                .run_until(shutdown)
                .await
        };
    }
    match queue {
        Queue::Sqlite(storage) => run_on!(storage),
        Queue::Redis(storage) => run_on!(storage),
        Queue::Postgres(storage) => run_on!(storage),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use tokio::sync::Notify;

    use super::*;

    /// A waker that records each wake-up as a `Notify` permit.
    #[derive(Default)]
    struct Wakes(Notify);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.notify_one();
        }
    }

    #[tokio::test]
    async fn the_poll_strategy_wakes_an_idle_worker_again_after_every_wake_up() {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut strategy = EveryInterval::new(Duration::from_millis(5));
        let mut fired = 0;
        while fired < 3 {
            // Polled once per wake-up, as by a worker whose fetch finished in that same
            // wake-up and found nothing: nothing else polls it before the next one.
            if strategy
                .poll_drive(&mut cx, &PollSnapshot::default())
                .is_ready()
            {
                fired += 1;
            }
            tokio::time::timeout(Duration::from_secs(10), wakes.0.notified())
                .await
                .unwrap_or_else(|_| {
                    panic!("no wake-up after {fired} timer(s): the worker would sleep on")
                });
        }
    }
}
