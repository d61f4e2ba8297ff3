//! The per-request context: a task-local holding the current correlation ID (and,
//! inside a background job, the job's own and parent IDs), and the helpers that carry it
//! into spawned tasks, blocking closures and any future.
//!
//! The context is task-local, not merely thread-local: it follows a request across
//! `.await` points and worker threads, and it never outlives its scope: outside a
//! scope [`current`] is `None`, never a stale value from an earlier request.
//!
//! The parts: the thread's slot and what reads it (`slot`), the context a unit of work
//! runs in (this module), carrying it into futures (`future`) and into
//! spawned work (`spawn`).

use std::fmt;
#[cfg(feature = "sentry")]
use std::sync::Arc;

use crate::fields::FieldsCell;
use crate::id::CorrelationId;
use crate::job_id::{JobId, JobIds};

mod future;
mod slot;
mod spawn;

pub use future::{CorrelationFutureExt, WithCorrelation, scope};
use slot::Current;
#[cfg(feature = "request-log")]
pub(crate) use slot::with_current_log;
pub use slot::{current, sync_scope};
pub(crate) use slot::{
    with_current, with_current_fields, with_current_hop, with_current_job,
    with_slot as with_current_context,
};
pub use spawn::{bind_current, spawn, spawn_blocking, spawn_local};

/// Everything a request's (or a job's) work runs inside: its correlation ID, the job IDs
/// when it is a background job, its [`Fields`](crate::Fields) once one is set, and, with
/// the `tracing` feature, its span, and with the `sentry` feature, its own Sentry hub.
///
/// Adapters make one per request with
/// [`adapter::request_context`](crate::adapter::request_context) and enter it as the
/// [`adapter`](crate::adapter) module describes. [`run`](Self::run) runs a closure in it,
/// [`wrap`](Self::wrap) a future, and [`capture`](Self::capture) takes the caller's
/// context, to carry it elsewhere.
/// A job's context comes from its [`JobCarrier`](crate::JobCarrier).
///
/// ```
/// use correlation_core::{CorrelationContext, CorrelationId, current};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let context = CorrelationContext::new(CorrelationId::from_static("req-9"));
/// assert_eq!(context.run(current).unwrap(), "req-9");
/// assert_eq!(context.wrap(async { current() }).await.unwrap(), "req-9");
/// assert_eq!(CorrelationContext::capture().id(), None);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct CorrelationContext {
    current: Current,
    /// Empty until a field is set or work is started from this context: then one map
    /// shared by this context and every context captured from it.
    fields: FieldsCell,
    ambient: Ambient,
}

impl CorrelationContext {
    /// A context explicitly without an ID.
    pub(super) const fn none() -> Self {
        Self {
            current: Current::Empty,
            fields: FieldsCell::new(),
            ambient: Ambient::NONE,
        }
    }

    /// A context holding only `id`.
    #[must_use]
    pub fn new(id: CorrelationId) -> Self {
        Self {
            current: Current::request(id, None),
            fields: FieldsCell::default(),
            ambient: Ambient::default(),
        }
    }

    /// The caller's current context: its ID (if any), its job IDs (inside a job), its
    /// fields, span and Sentry hub.
    ///
    /// The fields are shared, not copied: a field set later by the caller is seen by the
    /// captured context, and one set through the captured context by the caller.
    #[must_use]
    pub fn capture() -> Self {
        slot::with_slot(|context| match context {
            Some(context) => Self {
                current: context.current.clone(),
                fields: context.share_fields(),
                ambient: Ambient::capture(),
            },
            None => Self {
                current: Current::default(),
                fields: FieldsCell::default(),
                ambient: Ambient::capture(),
            },
        })
    }

    /// This context's fields, to share with a context captured from it: made now if
    /// there are none yet, so that a field set later by either is seen by both. Only a
    /// context with an ID has fields.
    fn share_fields(&self) -> FieldsCell {
        if self.current.id().is_none() {
            return FieldsCell::default();
        }
        self.fields.share(|| self.ambient.fields_sinks())
    }

    /// This context's fields, made now if there are none yet; `None` without an ID.
    pub(crate) fn fields_or_init(&self) -> Option<&crate::fields::FieldMap> {
        self.current.id()?;
        Some(self.fields.get_or_init(|| self.ambient.fields_sinks()))
    }

    /// A request's context, with its hop ID when hop IDs are on: a new span and a new
    /// Sentry hub tagged with `id` (and `hop_id`), where those features are enabled.
    pub(crate) fn for_request(
        id: CorrelationId,
        hop: Option<CorrelationId>,
        _sentry_tag: &str,
    ) -> Self {
        #[cfg(feature = "tracing")]
        let span = Some(tracing::info_span!(
            target: crate::constants::LOG_TARGET,
            "correlation",
            correlation_id = %id,
            hop_id = hop.as_ref().map(tracing::field::display),
            fields = tracing::field::Empty,
        ));
        #[cfg(feature = "sentry")]
        let hub = request_hub(|scope| {
            scope.set_tag(_sentry_tag, &id);
            if let Some(hop) = &hop {
                scope.set_tag(crate::constants::HOP_ID_KEY, hop);
            }
        });
        Self {
            current: Current::request(id, hop),
            fields: FieldsCell::default(),
            ambient: Ambient {
                #[cfg(feature = "tracing")]
                span,
                #[cfg(feature = "sentry")]
                hub,
            },
        }
    }

    /// A job's context: a `job` span recording the three IDs and a new Sentry hub tagged
    /// with the correlation ID, where those features are enabled.
    pub(crate) fn for_job(id: CorrelationId, job: JobIds, _sentry_tag: &str) -> Self {
        #[cfg(feature = "tracing")]
        let span = Some(tracing::info_span!(
            target: crate::constants::LOG_TARGET,
            "job",
            correlation_id = %id,
            job_id = %job.current,
            parent_job_id = job.parent.as_ref().map(tracing::field::display),
            fields = tracing::field::Empty,
        ));
        #[cfg(feature = "sentry")]
        let hub = request_hub(|scope| {
            scope.set_tag(_sentry_tag, &id);
            scope.set_tag("job_id", &job.current);
        });
        Self {
            current: Current::job(id, job),
            fields: FieldsCell::default(),
            ambient: Ambient {
                #[cfg(feature = "tracing")]
                span,
                #[cfg(feature = "sentry")]
                hub,
            },
        }
    }

    /// Gives the context `log` as its request's log state (a raised level, a buffer);
    /// leaves it as it is for `None`.
    #[cfg(feature = "request-log")]
    pub(crate) fn set_log(&mut self, log: Option<crate::request_log::RequestLog>) {
        if let Some(log) = log {
            self.current = std::mem::take(&mut self.current).with_log(log);
        }
    }

    /// The request's (or job's) log state, if it has a raised level or a buffer.
    #[cfg(all(test, feature = "request-log"))]
    pub(crate) fn request_log(&self) -> Option<&crate::request_log::RequestLog> {
        self.current.request_log()
    }

    /// Writes out the buffer of the request (or job) this context runs, if it has one and
    /// it has not been written yet: the work has failed without logging an `ERROR`.
    #[cfg_attr(not(feature = "request-log"), allow(clippy::unused_self))]
    pub(crate) fn flush_log(&self) {
        #[cfg(feature = "request-log")]
        if let Some(log) = self.current.request_log() {
            self.run(|| log.flush_to_logger());
        }
    }

    /// The context's correlation ID.
    pub fn id(&self) -> Option<&CorrelationId> {
        self.current.id()
    }

    /// The ID this service made for the request's hop, beside its correlation ID, when
    /// the configuration has a
    /// [hop ID header](crate::CorrelationConfigBuilder::hop_id_header). Work started from
    /// the request (spawned tasks, the response body) shares it; jobs and messages do
    /// not: like outgoing calls, they carry the correlation ID alone.
    pub fn hop_id(&self) -> Option<&CorrelationId> {
        self.current.hop_id()
    }

    /// The current request's hop ID (see [`hop_id`](Self::hop_id)), without capturing
    /// the rest of its context; `None` outside a request or with hop IDs off.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, CorrelationContext, adapter};
    ///
    /// let config = CorrelationConfig::builder().hop_id_header("X-Hop-ID").build()?;
    /// let decision = adapter::decide_request(&config, &correlation_core::http::HeaderMap::new(), || None)?.0;
    /// let context = adapter::request_context(&config, decision);
    /// let seen = context.run(CorrelationContext::current_hop_id);
    /// assert_eq!(seen.as_ref(), context.hop_id());
    /// assert_eq!(CorrelationContext::current_hop_id(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn current_hop_id() -> Option<CorrelationId> {
        with_current_hop(|hop| hop.cloned())
    }

    /// The ID of the job this context runs, if it is a job's context (see
    /// [`JobCarrier::into_context`](crate::JobCarrier::into_context)).
    pub fn job_id(&self) -> Option<&JobId> {
        self.current.job_ids().map(|job| &job.current)
    }

    /// The ID of the job that enqueued this context's job, if a job enqueued it.
    pub fn parent_job_id(&self) -> Option<&JobId> {
        self.current.job_ids().and_then(|job| job.parent.as_ref())
    }

    /// Runs the closure `f` inside this context. The context is lent, not copied: a
    /// middleware that owns its context enters it this way for every poll.
    #[inline]
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.ambient.run(|| self.enter(f))
    }

    /// Runs `future` inside this context.
    pub fn wrap<F: Future>(self, future: F) -> WithCorrelation<F> {
        WithCorrelation::new(future, self)
    }
}

impl fmt::Debug for CorrelationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationContext")
            .field("id", &self.id())
            .field("hop_id", &self.hop_id())
            .field("job_id", &self.job_id())
            .field("parent_job_id", &self.parent_job_id())
            .finish_non_exhaustive()
    }
}

/// A Sentry hub of the unit of work's own, forked from the current one and configured by
/// `configure`; none when no Sentry client is bound, so services without Sentry set up pay
/// nothing for the feature.
#[cfg(feature = "sentry")]
fn request_hub(configure: impl FnOnce(&mut sentry_core::Scope)) -> Option<Arc<sentry_core::Hub>> {
    let current = sentry_core::Hub::current();
    current.client()?;
    let hub = Arc::new(sentry_core::Hub::new_from_top(current));
    hub.configure_scope(configure);
    Some(hub)
}

/// What other crates keep in their own thread-locals and a context carries along: the
/// `tracing` span and the Sentry hub.
#[derive(Clone, Default)]
struct Ambient {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
    #[cfg(feature = "sentry")]
    hub: Option<std::sync::Arc<sentry_core::Hub>>,
}

impl Ambient {
    const NONE: Self = Self {
        #[cfg(feature = "tracing")]
        span: None,
        #[cfg(feature = "sentry")]
        hub: None,
    };

    /// Where a field set in this context is recorded besides the log lines: the
    /// request's span and its own Sentry hub.
    #[cfg_attr(
        not(any(feature = "tracing", feature = "sentry")),
        allow(clippy::unused_self)
    )]
    fn fields_sinks(&self) -> crate::fields::Sinks {
        crate::fields::Sinks {
            #[cfg(feature = "tracing")]
            span: self.span.clone(),
            #[cfg(feature = "sentry")]
            hub: self.hub.clone(),
        }
    }

    fn capture() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: Some(tracing::Span::current()),
            #[cfg(feature = "sentry")]
            hub: Some(sentry_core::Hub::current()),
        }
    }

    // Without `tracing` and `sentry` there is nothing ambient to enter.
    #[cfg_attr(
        not(any(feature = "tracing", feature = "sentry")),
        allow(clippy::unused_self)
    )]
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.span.as_ref().map(tracing::Span::enter);
        #[cfg(feature = "sentry")]
        if let Some(hub) = &self.hub {
            return sentry_core::Hub::run(std::sync::Arc::clone(hub), f);
        }
        f()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start tasks outside any request on purpose
mod tests {
    use super::*;

    fn id(value: &'static str) -> CorrelationId {
        CorrelationId::from_static(value)
    }

    #[test]
    fn a_context_keeps_its_id_across_entries() {
        let context = CorrelationContext::new(id("body"));
        for _ in 0..3 {
            assert_eq!(context.run(current).unwrap(), "body");
            assert_eq!(current(), None);
        }
        assert_eq!(context.id().unwrap(), "body");
    }

    #[test]
    fn entries_nest_and_restore_the_outer_id() {
        let (first, second) = (
            CorrelationContext::new(id("first")),
            CorrelationContext::new(id("second")),
        );
        sync_scope(id("outer"), || {
            first.run(|| {
                assert_eq!(current().unwrap(), "first");
                second.run(|| assert_eq!(current().unwrap(), "second"));
                assert_eq!(current().unwrap(), "first");
            });
            assert_eq!(current().unwrap(), "outer");
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_inside_a_context_restores_the_outer_id() {
        let context = CorrelationContext::new(id("entered"));
        sync_scope(id("outer"), || {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                context.run(|| panic!("handler bug"));
            }));
            assert!(caught.is_err());
            assert_eq!(current().unwrap(), "outer");
        });
        assert_eq!(current(), None);
    }
}
