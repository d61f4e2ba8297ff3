//! Background jobs: a job ID of its own beside the correlation ID, the ID of the job that
//! enqueued it, and the [`JobCarrier`] that takes both across a queue.
//!
//! The model is asgi-correlation-id's Celery integration. Every job run gets a fresh
//! *current* job ID. Its *parent* job ID is the current job ID of whoever enqueued it, or
//! none when a request (or anything outside a job) enqueued it. The correlation ID flows
//! unchanged from the request to every job it causes, however deep the chain; a job
//! enqueued with none (a scheduled job) gets a generated one that its own children
//! inherit.

use crate::config::CorrelationConfig;
use crate::context::{CorrelationContext, with_current_job};
use crate::fields::Fields;
use crate::id::CorrelationId;
use crate::job_id::{JobId, JobIds};
use crate::strategy::UuidV4;

/// The ID of the job the caller runs in, if any.
///
/// ```
/// use correlation_core::{JobCarrier, current_job_id};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(current_job_id(), None);
/// let context = JobCarrier::capture().into_context();
/// let expected = context.job_id().cloned();
/// assert_eq!(context.wrap(async { current_job_id() }).await, expected);
/// # }
/// ```
pub fn current_job_id() -> Option<JobId> {
    with_current_job(|job| job.map(|job| job.current.clone()))
}

/// The ID of the job that enqueued the job the caller runs in, if a job enqueued it.
pub fn parent_job_id() -> Option<JobId> {
    with_current_job(|job| job.and_then(|job| job.parent.clone()))
}

/// What a job takes across a queue: the correlation ID of whoever enqueued it, its
/// [`Fields`] (a copy: the job's own are its own from then on) and, when
/// a job enqueued it, that job's ID (the new job's parent); with the `request-log`
/// feature, the raised log level of a request that
/// [takes it into its jobs](crate::CorrelationConfigBuilder::log_level_into_jobs).
///
/// [`capture`](Self::capture) it when enqueueing, store it in the job's metadata (it is
/// `Serialize` / `Deserialize` with the `serde` feature, the fields as a `fields` map
/// whose entries past the [bounds](Fields#bounds) are left out; the `apalis` feature stores it
/// as apalis task metadata), and run the job inside
/// [`into_context`](Self::into_context): `carrier.into_context().wrap(job)`.
///
/// ```
/// use correlation_core::{CorrelationId, JobCarrier, current, current_job_id, parent_job_id, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A request enqueues job 1: the carrier holds the request's ID and no parent.
/// let request = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// let carrier = scope(request.clone(), async { JobCarrier::capture() }).await;
/// assert_eq!(carrier.correlation_id(), Some(&request));
/// assert_eq!(carrier.parent_job_id(), None);
///
/// // Job 1 runs under the request's ID with a fresh job ID, and enqueues job 2.
/// let (job_1, carrier) = carrier.into_context().wrap(async {
///     assert_eq!(parent_job_id(), None);
///     (current_job_id().unwrap(), JobCarrier::capture())
/// })
/// .await;
///
/// // Job 2 has the same correlation ID, a new job ID, and job 1 as its parent.
/// let (id, job_2, parent) = carrier
///     .into_context()
///     .wrap(async { (current(), current_job_id(), parent_job_id()) })
///     .await;
/// assert_eq!(id, Some(request));
/// assert_ne!(job_2, Some(job_1.clone()));
/// assert_eq!(parent, Some(job_1));
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JobCarrier {
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    correlation_id: Option<CorrelationId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    parent_job_id: Option<JobId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Fields::is_empty")
    )]
    fields: Fields,
    #[cfg(feature = "request-log")]
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "carried_level"
        )
    )]
    log_level: Option<log::LevelFilter>,
}

impl JobCarrier {
    /// The caller's correlation ID and current job ID, to enqueue a job with: in a
    /// request, the request's ID and no parent; in a job, the job's correlation ID and
    /// its job ID as the parent; elsewhere, nothing (the job generates its own ID). With
    /// the `request-log` feature, also the caller's raised log level when its
    /// configuration [takes it into jobs](crate::CorrelationConfigBuilder::log_level_into_jobs).
    /// The caller's [`Fields`] too: the job's lines carry them, and jobs it enqueues.
    #[must_use]
    pub fn capture() -> Self {
        Self {
            correlation_id: crate::context::current(),
            parent_job_id: current_job_id(),
            fields: Fields::current(),
            #[cfg(feature = "request-log")]
            log_level: crate::context::with_current_log(|log| {
                log.and_then(crate::request_log::RequestLog::level_for_jobs)
            }),
        }
    }

    /// A carrier holding exactly these IDs, e.g. rebuilt from a queue's own metadata.
    #[must_use]
    pub fn new(correlation_id: Option<CorrelationId>, parent_job_id: Option<JobId>) -> Self {
        Self {
            correlation_id,
            parent_job_id,
            #[cfg(feature = "request-log")]
            log_level: None,
            fields: Fields::default(),
        }
    }

    /// The correlation ID the job will run under (`None`: it will generate one).
    pub fn correlation_id(&self) -> Option<&CorrelationId> {
        self.correlation_id.as_ref()
    }

    /// The [`Fields`] of the request (or job) that enqueued the job, set in the job's
    /// context by [`into_context`](Self::into_context).
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The carrier with `fields` in place of the ones it had.
    #[must_use]
    pub fn with_fields(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }

    /// The ID of the job that enqueued this one (`None` when a request, or nothing in
    /// particular, enqueued it).
    pub fn parent_job_id(&self) -> Option<&JobId> {
        self.parent_job_id.as_ref()
    }

    /// The level the job will log at besides the output level: `Debug` or `Trace` when a
    /// raised request enqueued it and its configuration
    /// [takes the level into jobs](crate::CorrelationConfigBuilder::log_level_into_jobs).
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, CorrelationId, JobCarrier, TrustPolicy, adapter};
    /// use http::HeaderMap;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = CorrelationConfig::builder()
    ///     .log_level_header("X-Debug-Log", TrustPolicy::from_peers(["127.0.0.1/32"])?)
    ///     .log_level_into_jobs(true)
    ///     .build()?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-debug-log", "debug".parse()?);
    /// let peer = || Some("127.0.0.1".parse().unwrap());
    /// let (decision, _) = adapter::decide_request(&config, &headers, peer)?;
    /// let request = adapter::request_context(&config, decision);
    ///
    /// let carrier = request.run(JobCarrier::capture);
    /// assert_eq!(carrier.log_level(), Some(log::LevelFilter::Debug));
    /// assert_eq!(JobCarrier::capture().log_level(), None);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "request-log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
    pub fn log_level(&self) -> Option<log::LevelFilter> {
        self.log_level
    }

    /// The carrier with `level` as its carried level, read from a queue's metadata.
    #[cfg(all(feature = "request-log", feature = "apalis"))]
    pub(crate) fn with_log_level(mut self, level: Option<log::LevelFilter>) -> Self {
        self.log_level = level;
        self
    }

    /// The raised level and log buffer of a run of the job: the carried level, `config`'s
    /// buffer, and whether its own jobs take the level along.
    #[cfg(feature = "request-log")]
    pub(crate) fn job_log(
        &self,
        config: Option<&CorrelationConfig>,
    ) -> Option<crate::request_log::RequestLog> {
        crate::request_log::RequestLog::new(
            self.log_level,
            config.and_then(CorrelationConfig::log_buffer_settings),
            config.is_some_and(CorrelationConfig::log_level_into_jobs),
        )
    }

    /// The context to run the job in: the carried correlation ID (or a new UUID v4, 32
    /// hex characters, when none was carried), a fresh job ID, and the carried parent
    /// (and, with the `request-log` feature, the carried raised level).
    ///
    /// Call it once per run: every call makes a new job ID, so a retried job gets a new
    /// one for each attempt, like a Celery retry.
    #[must_use]
    pub fn into_context(self) -> CorrelationContext {
        #[cfg(feature = "request-log")]
        let log = self.job_log(None);
        let id = self.correlation_id.unwrap_or_else(UuidV4::new_id);
        #[cfg_attr(not(feature = "request-log"), allow(unused_mut))]
        let mut context =
            Self::context(id, self.parent_job_id, crate::constants::DEFAULT_SENTRY_TAG);
        self.fields.set_in(&context);
        #[cfg(feature = "request-log")]
        context.set_log(log);
        context
    }

    /// Like [`into_context`](Self::into_context), but a missing correlation ID comes
    /// from `config`'s generator (and transformer), as for a request without one, the
    /// Sentry tag is `config`'s, and with the `request-log` feature the job gets a log
    /// buffer of its own when `config` has one, and passes its carried level on to its
    /// own jobs when `config`
    /// [takes it into jobs](crate::CorrelationConfigBuilder::log_level_into_jobs). The
    /// buffer is written when the job fails: an `ERROR` in its scope, a panic under its
    /// ID, and, run by the apalis layer, an `Err` from the job.
    #[must_use]
    pub fn into_context_with(self, config: &CorrelationConfig) -> CorrelationContext {
        #[cfg(feature = "request-log")]
        let log = self.job_log(Some(config));
        let id = match self.correlation_id {
            Some(id) => id,
            None => config.decide_value(None).id,
        };
        #[cfg_attr(not(feature = "request-log"), allow(unused_mut))]
        let mut context = Self::context(id, self.parent_job_id, config.sentry_tag());
        self.fields.set_in(&context);
        #[cfg(feature = "request-log")]
        context.set_log(log);
        context
    }

    fn context(id: CorrelationId, parent: Option<JobId>, sentry_tag: &str) -> CorrelationContext {
        let job = JobIds {
            current: JobId::generate(),
            parent,
        };
        CorrelationContext::for_job(id, job, sentry_tag)
    }
}

/// The carried level in a serialized carrier: `debug` or `trace`, checked on the way in.
#[cfg(all(feature = "serde", feature = "request-log"))]
mod carried_level {
    use log::LevelFilter;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde's `with` passes the field by reference
    pub(super) fn serialize<S: Serializer>(
        level: &Option<LevelFilter>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match level {
            Some(LevelFilter::Trace) => serializer.serialize_str("trace"),
            Some(_) => serializer.serialize_str("debug"),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<LevelFilter>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(value) => crate::request_log::parse_raised_level(value.as_bytes())
                .map(Some)
                .ok_or_else(|| {
                    serde::de::Error::custom("a carried log level must be `debug` or `trace`")
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorrelationFutureExt, current, scope, spawn, spawn_blocking, sync_scope};

    fn request_id() -> CorrelationId {
        CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3")
    }

    #[test]
    fn capture_outside_anything_is_empty() {
        assert_eq!(JobCarrier::capture(), JobCarrier::default());
        assert_eq!(current_job_id(), None);
        assert_eq!(parent_job_id(), None);
    }

    #[test]
    fn a_request_enqueues_with_its_id_and_no_parent() {
        let carrier = sync_scope(request_id(), JobCarrier::capture);
        assert_eq!(carrier, JobCarrier::new(Some(request_id()), None));
    }

    #[test]
    fn a_job_without_an_id_generates_one_that_its_children_inherit() {
        let context = JobCarrier::default().into_context();
        let generated = context.id().cloned().unwrap();
        assert_eq!(generated.len(), 32);
        let child = context.run(JobCarrier::capture);
        assert_eq!(child.correlation_id(), Some(&generated));
        assert_eq!(child.parent_job_id(), context.job_id());
        let grandchild = child.into_context();
        assert_eq!(grandchild.id(), Some(&generated));
        assert_eq!(grandchild.parent_job_id(), context.job_id());
        assert_ne!(grandchild.job_id(), context.job_id());
    }

    #[test]
    fn every_run_gets_a_fresh_job_id() {
        let carrier = JobCarrier::new(Some(request_id()), None);
        let first = carrier.clone().into_context();
        let second = carrier.into_context();
        assert_ne!(first.job_id(), second.job_id());
        assert_eq!(first.id(), second.id());
    }

    #[test]
    fn into_context_with_uses_the_configured_generator() {
        let config = CorrelationConfig::builder()
            .generator(|| "scheduled-1")
            .build()
            .unwrap();
        let context = JobCarrier::default().into_context_with(&config);
        assert_eq!(context.id().unwrap(), "scheduled-1");
        let carried = JobCarrier::new(Some(request_id()), None).into_context_with(&config);
        assert_eq!(carried.id(), Some(&request_id()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spawn_helpers_carry_the_job_ids_and_a_scope_clears_them() {
        let context = JobCarrier::new(Some(request_id()), Some(JobId::generate())).into_context();
        let expected = (context.job_id().cloned(), context.parent_job_id().cloned());
        let (spawned, blocking, scoped) = context
            .wrap(async {
                let spawned = spawn(async { (current_job_id(), parent_job_id()) });
                let blocking = spawn_blocking(|| (current_job_id(), parent_job_id()));
                let scoped = scope(request_id(), async { (current(), current_job_id()) });
                (
                    spawned.await.unwrap(),
                    blocking.await.unwrap(),
                    scoped.await,
                )
            })
            .await;
        assert_eq!(spawned, expected);
        assert_eq!(blocking, expected);
        assert_eq!(scoped, (Some(request_id()), None));
    }

    #[tokio::test]
    async fn nothing_leaks_after_a_job_ends() {
        JobCarrier::default()
            .into_context()
            .wrap(async {
                assert!(current_job_id().is_some());
            })
            .await;
        assert_eq!(current_job_id(), None);
        assert_eq!(current(), None);
        let seen = async { current_job_id() }.in_current_correlation().await;
        assert_eq!(seen, None);
    }

    #[cfg(feature = "request-log")]
    #[test]
    fn a_raised_level_goes_into_jobs_only_when_configured() {
        use log::LevelFilter;

        use crate::request_log::RequestLog;
        use crate::trust::TrustPolicy;

        let raised_request = |into_jobs| {
            let config = CorrelationConfig::builder()
                .log_level_header("X-Debug-Log", TrustPolicy::Always)
                .log_level_into_jobs(into_jobs)
                .build()
                .unwrap();
            let mut headers = http::HeaderMap::new();
            headers.insert("x-debug-log", "trace".parse().unwrap());
            let (decision, _) = crate::adapter::decide_request(&config, &headers, || None).unwrap();
            (crate::adapter::request_context(&config, decision), config)
        };
        let raised = |context: &CorrelationContext| context.request_log().map(RequestLog::raised);

        let (request, _) = raised_request(false);
        assert_eq!(request.run(JobCarrier::capture).log_level(), None);

        let (request, config) = raised_request(true);
        let carrier = request.run(JobCarrier::capture);
        assert_eq!(carrier.log_level(), Some(LevelFilter::Trace));
        // A worker configured the same way runs the job raised and passes the level on.
        let job = carrier.clone().into_context_with(&config);
        assert_eq!(raised(&job), Some(LevelFilter::Trace));
        assert_eq!(
            job.run(JobCarrier::capture).log_level(),
            Some(LevelFilter::Trace)
        );
        // Any worker runs it raised; only one configured so passes it on.
        for job in [
            carrier
                .clone()
                .into_context_with(&CorrelationConfig::default()),
            carrier.into_context(),
        ] {
            assert_eq!(raised(&job), Some(LevelFilter::Trace));
            assert_eq!(job.run(JobCarrier::capture).log_level(), None);
        }
        // Outside any raised request, nothing is carried.
        assert_eq!(JobCarrier::capture().log_level(), None);
    }

    #[test]
    fn the_requests_fields_reach_its_jobs_and_their_jobs() {
        let carrier = sync_scope(request_id(), || {
            assert!(Fields::insert("tenant", "acme"));
            JobCarrier::capture()
        });
        assert_eq!(carrier.fields().get("tenant"), Some("acme"));
        let job = carrier.into_context();
        let (seen, child) = job.run(|| {
            assert!(Fields::insert("step", 1));
            (Fields::current().to_string(), JobCarrier::capture())
        });
        assert_eq!(seen, "tenant=acme step=1");
        let grandchild = child.into_context();
        assert_eq!(
            grandchild.run(|| Fields::current().to_string()),
            "tenant=acme step=1"
        );
        // A job's fields are its own: the request's are as they were.
        assert_eq!(JobCarrier::default().fields(), &Fields::default());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn fields_round_trip_through_json_and_keep_to_the_bounds() {
        let carrier = sync_scope(request_id(), || {
            assert!(Fields::insert("tenant", "acme"));
            assert!(Fields::insert("user", "Alice Smith"));
            JobCarrier::capture()
        });
        let json = serde_json::to_string(&carrier).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"correlation_id":"{}","fields":{{"tenant":"acme","user":"Alice Smith"}}}}"#,
                request_id()
            )
        );
        assert_eq!(serde_json::from_str::<JobCarrier>(&json).unwrap(), carrier);
        let long = "v".repeat(Fields::MAX_VALUE_LEN + 1);
        let hostile =
            format!(r#"{{"fields":{{"bad key":"x","fields":"x","long":"{long}","ok":"\n"}}}}"#);
        let carrier: JobCarrier = serde_json::from_str(&hostile).unwrap();
        assert_eq!(carrier.fields().to_string(), r#"ok="\n""#);
    }

    #[cfg(all(feature = "serde", feature = "request-log"))]
    #[test]
    fn the_carried_level_round_trips_through_json_and_is_checked() {
        let carrier: JobCarrier =
            serde_json::from_str(r#"{"correlation_id":"abc","log_level":"TRACE"}"#).unwrap();
        assert_eq!(carrier.log_level(), Some(log::LevelFilter::Trace));
        assert_eq!(
            serde_json::to_string(&carrier).unwrap(),
            r#"{"correlation_id":"abc","log_level":"trace"}"#
        );
        for invalid in [r#"{"log_level":"info"}"#, r#"{"log_level":7}"#] {
            let err = serde_json::from_str::<JobCarrier>(invalid).unwrap_err();
            assert!(!err.to_string().contains("info"), "{err}");
        }
        let absent: JobCarrier = serde_json::from_str(r#"{"log_level":null}"#).unwrap();
        assert_eq!(absent, JobCarrier::default());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn the_carrier_round_trips_through_json_and_validates() {
        let parent = JobId::new("0d5b7c1e0f8a4a8f9d3e2b1c4a5f6e7d").unwrap();
        let carrier = JobCarrier::new(Some(request_id()), Some(parent));
        let json = serde_json::to_string(&carrier).unwrap();
        assert_eq!(
            json,
            r#"{"correlation_id":"5bd6e2a7fa4a4c32bd84a5ec5a43c1d3","parent_job_id":"0d5b7c1e0f8a4a8f9d3e2b1c4a5f6e7d"}"#
        );
        assert_eq!(serde_json::from_str::<JobCarrier>(&json).unwrap(), carrier);
        assert_eq!(serde_json::to_string(&JobCarrier::default()).unwrap(), "{}");
        assert_eq!(
            serde_json::from_str::<JobCarrier>("{}").unwrap(),
            JobCarrier::default()
        );
        assert!(serde_json::from_str::<JobCarrier>(r#"{"correlation_id":"a b"}"#).is_err());
    }
}
