//! The apalis integration: the carrier as task metadata, and a worker layer that runs
//! every task in the context it carries.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::metadata::{Metadata, MetadataStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::CorrelationConfig;
use crate::constants::{DEFAULT_SENTRY_TAG, LOG_TARGET};
use crate::context::{CorrelationContext, WithCorrelation};
use crate::fields::Fields;
use crate::id::CorrelationId;
use crate::job::JobCarrier;
use crate::job_id::{JobId, JobIds};
use crate::strategy::UuidV4;

/// The task-metadata key holding the correlation ID a job runs under.
const METADATA_CORRELATION_ID: &str = "correlation.correlation_id";

/// The task-metadata key holding the ID of the job that enqueued a job.
const METADATA_PARENT_JOB_ID: &str = "correlation.parent_job_id";

/// The task-metadata key holding a job's own ID, given when the task is built, so that
/// every attempt of the task runs under the same job ID.
const METADATA_JOB_ID: &str = "correlation.job_id";

/// The task-metadata key holding the fields a job takes from its request, as a W3C
/// baggage list (`tenant=acme,user=Alice%20Smith`).
const METADATA_FIELDS: &str = "correlation.fields";

/// The task-metadata key holding the raised log level a job takes from its request.
#[cfg(feature = "request-log")]
const METADATA_LOG_LEVEL: &str = "correlation.log_level";

/// Stored as string entries (`correlation.correlation_id`, `correlation.parent_job_id`,
/// `correlation.fields` as a W3C baggage list, `tenant=acme,user=Alice%20Smith`, and with
/// the `request-log` feature `correlation.log_level`, `debug` or `trace`), so
/// every apalis storage that keeps task metadata (SQLite, Postgres, Redis, in-memory)
/// carries it. Injecting replaces earlier entries, and gives the task its own job ID
/// (`correlation.job_id`) unless it has one: the storage keeps it with the task, so a
/// retried task runs every attempt under the same job ID. Extracting ignores values that
/// break the safety rules (use [`JobContextLayer`] to have them reported).
impl Metadata for JobCarrier {
    type Error = Infallible;

    fn extract(store: &MetadataStore) -> Result<Self, Self::Error> {
        Ok(read_carrier(store).0)
    }

    fn inject(&self, store: &mut MetadataStore) -> Result<(), Self::Error> {
        for (key, value) in [
            (
                METADATA_CORRELATION_ID,
                self.correlation_id().map(|id| id.as_str()),
            ),
            (
                METADATA_PARENT_JOB_ID,
                self.parent_job_id().map(JobId::as_str),
            ),
            (
                METADATA_FIELDS,
                (!self.fields().is_empty())
                    .then(|| self.fields().to_list())
                    .as_deref(),
            ),
            #[cfg(feature = "request-log")]
            (
                METADATA_LOG_LEVEL,
                self.log_level().map(|level| match level {
                    log::LevelFilter::Trace => "trace",
                    _ => "debug",
                }),
            ),
        ] {
            match value {
                Some(value) => {
                    store.replace(key, value);
                }
                None => {
                    store.remove(key);
                }
            }
        }
        store.insert_if_absent(METADATA_JOB_ID, JobId::generate().as_str());
        Ok(())
    }
}

/// Reads the carrier, and whether some stored value was unusable.
fn read_carrier(store: &MetadataStore) -> (JobCarrier, bool) {
    let (carrier, _, unusable) = read_job(store);
    (carrier, unusable)
}

/// Reads the carrier and the job's own ID, and whether some stored value was unusable.
fn read_job(store: &MetadataStore) -> (JobCarrier, Option<JobId>, bool) {
    let mut unusable = false;
    let job_id = store
        .get(METADATA_JOB_ID)
        .and_then(|value| JobId::new(value).map_err(|_| unusable = true).ok());
    let correlation_id = store
        .get(METADATA_CORRELATION_ID)
        .and_then(|value| CorrelationId::new(value).map_err(|_| unusable = true).ok());
    let parent_job_id = store
        .get(METADATA_PARENT_JOB_ID)
        .and_then(|value| JobId::new(value).map_err(|_| unusable = true).ok());
    let fields = store
        .get(METADATA_FIELDS)
        .map_or_else(Fields::default, |value| {
            let (fields, dropped) = Fields::from_list(value);
            unusable |= dropped;
            fields
        });
    let carrier = JobCarrier::new(correlation_id, parent_job_id).with_fields(fields);
    #[cfg(feature = "request-log")]
    let carrier = carrier.with_log_level(store.get(METADATA_LOG_LEVEL).and_then(|value| {
        let level = crate::request_log::parse_raised_level(value.as_bytes());
        unusable |= level.is_none();
        level
    }));
    (carrier, job_id, unusable)
}

/// A task for `args` carrying the caller's context ([`JobCarrier::capture`]): push it
/// with apalis's `TaskSink::push_task`. Within a request the job will run under the
/// request's ID; within a job, under that job's ID with that job as its parent.
///
/// To set other task options too, add the carrier to your own builder:
/// `TaskBuilder::new(args).metadata(&JobCarrier::capture())`.
pub fn correlated_task<Args>(args: Args) -> Task<Args> {
    TaskBuilder::new(args)
        .metadata(&JobCarrier::capture())
        .build()
}

/// An apalis worker layer that runs every task inside the context its metadata carries
/// (see [`correlated_task`]): the carried correlation ID (a generated one if none), a
/// job ID given when the task was built (a fresh one for a task built without the
/// carrier), and the carried parent job ID. Log lines of the handler, and of anything it
/// spawns with this crate's helpers, carry all three.
///
/// With the `request-log` feature and a configuration ([`with_config`](Self::with_config))
/// that has a [log buffer](crate::CorrelationConfigBuilder::log_buffer), every run of a
/// task keeps its records below the output level in a buffer of its own, written when
/// the task returns an `Err` or panics (or logs at `ERROR`) and dropped when it returns
/// `Ok`. A task carries the raised level of the request that enqueued it when that
/// request's configuration [takes it into jobs](crate::CorrelationConfigBuilder::log_level_into_jobs).
///
/// apalis workers are tower services, so this is a tower [`Layer`] for
/// `WorkerBuilder::layer`. A task that fails and is retried, by the worker's retry layer
/// or by the storage fetching it again (in any worker process), runs every attempt under
/// the same correlation ID, job ID and parent job ID, as long as it was built with the
/// carrier and enqueued with a correlation ID. A task enqueued with no correlation ID at
/// all generates one per attempt.
///
/// ```
/// use apalis_core::backend::TaskSink;
/// use apalis_core::backend::memory::MemoryStorage;
/// use apalis_core::task::data::Data;
/// use apalis_core::worker::builder::WorkerBuilder;
/// use apalis_core::worker::context::WorkerContext;
/// use correlation_core::propagation::{JobContextLayer, correlated_task};
/// use correlation_core::{CorrelationId, JobId, current, current_job_id, parent_job_id, scope};
/// use std::sync::{Arc, Mutex};
///
/// type Seen = Arc<Mutex<Option<(Option<CorrelationId>, Option<JobId>, Option<JobId>)>>>;
///
/// async fn send_email(_to: String, seen: Data<Seen>, worker: WorkerContext) {
///     *seen.lock().unwrap() = Some((current(), current_job_id(), parent_job_id()));
///     worker.stop().unwrap();
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut storage = MemoryStorage::new();
/// // In a request handler (here, inside the request's scope):
/// let request = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// scope(request.clone(), async {
///     // The task is made inside the scope, so it captures the request's ID.
///     storage.push_task(correlated_task("ada@example.com".to_owned())).await
/// })
/// .await?;
///
/// // In the worker process:
/// let seen = Seen::default();
/// WorkerBuilder::new("mailer")
///     .backend(storage)
///     .data(seen.clone())
///     .layer(JobContextLayer::new())
///     .build(send_email)
///     .run()
///     .await?;
///
/// let (id, job_id, parent) = seen.lock().unwrap().take().unwrap();
/// assert_eq!(id, Some(request));
/// assert_eq!(job_id.unwrap().len(), 32);
/// assert_eq!(parent, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct JobContextLayer {
    config: Option<CorrelationConfig>,
}

impl JobContextLayer {
    /// Jobs enqueued without a correlation ID get a UUID v4 (32 hex characters).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Jobs enqueued without a correlation ID get one from `config`'s generator.
    #[must_use]
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self {
            config: Some(config),
        }
    }
}

impl From<CorrelationConfig> for JobContextLayer {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

impl<S> Layer<S> for JobContextLayer {
    type Service = JobContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JobContextService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`JobContextLayer`].
#[derive(Clone)]
pub struct JobContextService<S> {
    inner: S,
    config: Option<CorrelationConfig>,
}

impl<S> JobContextService<S> {
    /// Wraps `inner`; a missing correlation ID is generated as [`JobContextLayer::new`] does.
    #[must_use]
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            config: None,
        }
    }

    /// A [`JobContextLayer`] with the default configuration.
    #[must_use]
    pub fn layer() -> JobContextLayer {
        JobContextLayer::new()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn context(&self, store: &MetadataStore) -> CorrelationContext {
        let (carrier, job_id, unusable) = read_job(store);
        let context = match (job_id, &self.config) {
            (Some(job_id), config) => context_for_attempt(carrier, job_id, config.as_ref()),
            (None, Some(config)) => carrier.into_context_with(config),
            (None, None) => carrier.into_context(),
        };
        if unusable {
            context.run(|| {
                log::warn!(
                    target: LOG_TARGET,
                    "Job metadata held an unusable correlation ID, parent job ID, log level or \
                     field; it was ignored"
                );
            });
        }
        context
    }
}

/// The context of one attempt of a task whose job ID was given when it was built.
fn context_for_attempt(
    carrier: JobCarrier,
    job_id: JobId,
    config: Option<&CorrelationConfig>,
) -> CorrelationContext {
    let id = match (carrier.correlation_id(), config) {
        (Some(id), _) => id.clone(),
        (None, Some(config)) => config.decide_value(None).id,
        (None, None) => UuidV4::new_id(),
    };
    let job = JobIds {
        current: job_id,
        parent: carrier.parent_job_id().cloned(),
    };
    let sentry_tag = config.map_or(DEFAULT_SENTRY_TAG, CorrelationConfig::sentry_tag);
    #[cfg_attr(not(feature = "request-log"), allow(unused_mut))]
    let mut context = CorrelationContext::for_job(id, job, sentry_tag);
    carrier.fields().set_in(&context);
    #[cfg(feature = "request-log")]
    context.set_log(carrier.job_log(config));
    context
}

impl<S> fmt::Debug for JobContextService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContextService")
            .field("inner", &std::any::type_name::<S>())
            .field("config", &self.config)
            .finish()
    }
}

impl<S, Args> Service<Task<Args>> for JobContextService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    /// Boxed, as apalis's own task functions are: the run writes out its log buffer when
    /// the task fails.
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let context = self.context(task.ctx().metadata());
        let future = context.run(|| self.inner.call(task));
        Box::pin(JobRun {
            context: context.clone(),
            future: context.wrap(future),
        })
    }
}

pin_project_lite::pin_project! {
    /// A run of a task inside its context, which writes out the run's log buffer when
    /// the task returns an `Err` or panics.
    struct JobRun<F> {
        context: CorrelationContext,
        #[pin]
        future: WithCorrelation<F>,
    }
}

impl<F, T, E> Future for JobRun<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let on_panic = FlushOnPanic(this.context);
        let poll = this.future.poll(cx);
        if let Poll::Ready(Err(_)) = &poll {
            on_panic.0.flush_log();
        }
        poll
    }
}

/// Writes out the run's log buffer if the task panics while it is polled (the panic hook's
/// `ERROR` line, when installed, has written it already).
struct FlushOnPanic<'a>(&'a CorrelationContext);

impl Drop for FlushOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.flush_log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync_scope;

    #[test]
    fn the_carrier_round_trips_through_metadata_and_replaces_old_entries() {
        let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
        let parent = JobId::generate();
        let mut store = MetadataStore::new();
        JobCarrier::new(Some(id.clone()), Some(parent.clone()))
            .inject(&mut store)
            .unwrap();
        assert_eq!(store.get(METADATA_CORRELATION_ID), Some(id.as_str()));
        assert_eq!(
            JobCarrier::extract(&store).unwrap(),
            JobCarrier::new(Some(id), Some(parent))
        );
        let job_id = store.get(METADATA_JOB_ID).unwrap().to_owned();
        assert_eq!(job_id.len(), 32);
        JobCarrier::default().inject(&mut store).unwrap();
        assert_eq!(store.get(METADATA_CORRELATION_ID), None);
        assert_eq!(store.get(METADATA_PARENT_JOB_ID), None);
        assert_eq!(store.get(METADATA_JOB_ID), Some(job_id.as_str()));
    }

    #[test]
    fn fields_round_trip_through_metadata_and_bad_ones_are_left_out() {
        let carrier = sync_scope(CorrelationId::from_static("req-1"), || {
            assert!(Fields::insert("tenant", "acme"));
            assert!(Fields::insert("user", "Alice Smith, 100%"));
            JobCarrier::capture()
        });
        let mut store = MetadataStore::new();
        carrier.inject(&mut store).unwrap();
        assert_eq!(
            store.get(METADATA_FIELDS),
            Some("tenant=acme,user=Alice%20Smith%2C%20100%25")
        );
        let (read, unusable) = read_carrier(&store);
        assert_eq!(read, carrier);
        assert!(!unusable);
        let context = JobContextService::new(()).context(&store);
        assert_eq!(
            context.run(|| Fields::current().to_string()),
            r#"tenant=acme user="Alice Smith, 100%""#
        );

        store.replace(
            METADATA_FIELDS,
            "tenant=acme,novalue,bad key=x,user=%ZZ,ok=%0A",
        );
        let (read, unusable) = read_carrier(&store);
        assert!(unusable);
        assert_eq!(read.fields().to_string(), r#"tenant=acme ok="\n""#);
        JobCarrier::default().inject(&mut store).unwrap();
        assert_eq!(store.get(METADATA_FIELDS), None);
    }

    #[test]
    fn every_attempt_of_a_task_runs_under_its_job_id() {
        let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
        let parent = JobId::generate();
        let task = sync_scope(id.clone(), || {
            TaskBuilder::new(())
                .metadata(&JobCarrier::new(Some(id.clone()), Some(parent.clone())))
                .build()
        });
        let layer = JobContextService::new(());
        let first = layer.context(task.ctx().metadata());
        let second = layer.context(task.ctx().metadata());
        assert_eq!(first.id(), Some(&id));
        assert_eq!(first.parent_job_id(), Some(&parent));
        assert_eq!(
            first.job_id().map(JobId::as_str),
            task.ctx().metadata().get(METADATA_JOB_ID)
        );
        assert_eq!(
            (second.id(), second.job_id(), second.parent_job_id()),
            (first.id(), first.job_id(), first.parent_job_id())
        );
        // A task built without the carrier gets a fresh job ID per attempt.
        let bare = TaskBuilder::new(()).build();
        assert_ne!(
            layer.context(bare.ctx().metadata()).job_id(),
            layer.context(bare.ctx().metadata()).job_id()
        );
    }

    #[test]
    fn unusable_values_are_ignored_and_reported() {
        let store: MetadataStore = [
            (METADATA_CORRELATION_ID, "has space"),
            (METADATA_PARENT_JOB_ID, "ok-parent"),
        ]
        .into_iter()
        .collect();
        let (carrier, unusable) = read_carrier(&store);
        assert!(unusable);
        assert_eq!(carrier.correlation_id(), None);
        assert_eq!(carrier.parent_job_id().unwrap(), "ok-parent");
        assert!(!read_carrier(&MetadataStore::new()).1);
    }

    #[cfg(feature = "request-log")]
    #[test]
    fn the_carried_level_round_trips_through_metadata_and_is_checked() {
        use log::LevelFilter;

        use crate::request_log::LogBuffer;

        let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
        let raised =
            JobCarrier::new(Some(id.clone()), None).with_log_level(Some(LevelFilter::Debug));
        let mut store = MetadataStore::new();
        raised.inject(&mut store).unwrap();
        assert_eq!(store.get(METADATA_LOG_LEVEL), Some("debug"));
        assert_eq!(JobCarrier::extract(&store).unwrap(), raised);

        // Each attempt runs raised, with a buffer when the worker's configuration has one.
        let config = CorrelationConfig::builder()
            .log_buffer(LogBuffer::new())
            .build()
            .unwrap();
        let context = JobContextService {
            inner: (),
            config: Some(config),
        }
        .context(&store);
        let log = context.request_log().unwrap();
        assert_eq!(log.raised(), LevelFilter::Debug);
        assert!(log.buffer().is_some());
        let plain = JobContextService::new(()).context(&store);
        assert!(
            plain
                .request_log()
                .is_some_and(|log| log.buffer().is_none())
        );

        JobCarrier::new(Some(id), None).inject(&mut store).unwrap();
        assert_eq!(store.get(METADATA_LOG_LEVEL), None);

        for value in ["info", "TRACE"] {
            let store: MetadataStore = [(METADATA_LOG_LEVEL, value)].into_iter().collect();
            let (carrier, unusable) = read_carrier(&store);
            let expected = (value == "TRACE").then_some(LevelFilter::Trace);
            assert_eq!(
                (carrier.log_level(), unusable),
                (expected, expected.is_none())
            );
        }
    }

    #[test]
    fn correlated_task_captures_the_callers_context() {
        let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
        let task = sync_scope(id.clone(), || correlated_task(7_u32));
        assert_eq!(
            task.ctx().metadata().get(METADATA_CORRELATION_ID),
            Some(id.as_str())
        );
        assert_eq!(task.ctx().metadata().get(METADATA_PARENT_JOB_ID), None);
        let outside = correlated_task(8_u32);
        assert_eq!(outside.ctx().metadata().get(METADATA_CORRELATION_ID), None);
        assert_eq!(outside.ctx().metadata().get(METADATA_PARENT_JOB_ID), None);
        assert!(outside.ctx().metadata().get(METADATA_JOB_ID).is_some());
    }
}
