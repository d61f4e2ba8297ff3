//! The per-request context: a tokio task-local holding the current correlation ID (and,
//! inside a background job, the job's own and parent IDs), and the helpers that carry it
//! into spawned tasks, blocking closures and any future.
//!
//! The context is task-local, not merely thread-local: it follows a request across
//! `.await` points and worker threads, and it never outlives its scope: outside a
//! scope [`current`] is `None`, never a stale value from an earlier request.
//!
//! The parts: the thread's slot and what reads it (`slot`), the context a unit of work
//! runs in and its guard (this module), carrying it into futures (`future`) and into
//! spawned work (`spawn`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::id::CorrelationId;
use crate::job_id::{JobId, JobIds};

mod future;
mod slot;
mod spawn;

pub use future::{CorrelationFutureExt, WithCorrelation, scope};
pub(crate) use slot::with_current_job;
use slot::{Current, swap_with_slot};
pub use slot::{current, sync_scope, with_current};
pub use spawn::{bind_current, spawn, spawn_blocking, spawn_local};

/// Everything a request's (or a job's) work runs inside: its correlation ID, the job IDs
/// when it is a background job, and, with the `tracing` feature, its span, and with the
/// `sentry` feature, its own Sentry hub.
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
    ambient: Ambient,
}

impl CorrelationContext {
    /// A context holding only `id`.
    #[must_use]
    pub fn new(id: CorrelationId) -> Self {
        Self {
            current: Current::request(id),
            ambient: Ambient::default(),
        }
    }

    /// The caller's current context: its ID (if any), its job IDs (inside a job), span
    /// and Sentry hub.
    #[must_use]
    pub fn capture() -> Self {
        Self {
            current: Current::get(),
            ambient: Ambient::capture(),
        }
    }

    /// A request's context: a new span and a new Sentry hub tagged with `id`, where those
    /// features are enabled.
    pub(crate) fn for_request(id: CorrelationId, _sentry_tag: &str) -> Self {
        #[cfg(feature = "tracing")]
        let span = Some(tracing::info_span!(
            target: crate::constants::LOG_TARGET,
            "correlation",
            correlation_id = %id
        ));
        #[cfg(feature = "sentry")]
        let hub = request_hub(|scope| scope.set_tag(_sentry_tag, &id));
        Self {
            current: Current::request(id),
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
        ));
        #[cfg(feature = "sentry")]
        let hub = request_hub(|scope| {
            scope.set_tag(_sentry_tag, &id);
            scope.set_tag("job_id", &job.current);
        });
        Self {
            current: Current {
                id: Some(id),
                job: Some(Arc::new(job)),
            },
            ambient: Ambient {
                #[cfg(feature = "tracing")]
                span,
                #[cfg(feature = "sentry")]
                hub,
            },
        }
    }

    /// The context's correlation ID.
    pub fn id(&self) -> Option<&CorrelationId> {
        self.current.id.as_ref()
    }

    /// The ID of the job this context runs, if it is a job's context (see
    /// [`JobCarrier::into_context`](crate::JobCarrier::into_context)).
    pub fn job_id(&self) -> Option<&JobId> {
        self.current.job.as_deref().map(|job| &job.current)
    }

    /// The ID of the job that enqueued this context's job, if a job enqueued it.
    pub fn parent_job_id(&self) -> Option<&JobId> {
        self.current
            .job
            .as_ref()
            .and_then(|job| job.parent.as_ref())
    }

    /// Runs the closure `f` inside this context.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut current = self.current.clone();
        self.ambient.run(|| current.enter(f))
    }

    /// Like [`run`](Self::run), without cloning: see
    /// [`adapter::run_mut`](crate::adapter::run_mut).
    pub(crate) fn run_mut<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let Self { current, ambient } = self;
        ambient.run(|| current.enter(f))
    }

    /// Enters this context on the current thread until the returned guard is dropped:
    /// see [`adapter::enter`](crate::adapter::enter).
    #[inline]
    pub(crate) fn enter(&self) -> Entered {
        #[cfg(feature = "tracing")]
        let span = self.ambient.span.clone().map(tracing::Span::entered);
        #[cfg(feature = "sentry")]
        let hub = self
            .ambient
            .hub
            .clone()
            .map(sentry_core::HubSwitchGuard::new);
        let mut displaced = self.current.clone();
        let in_slot = swap_with_slot(&mut displaced);
        Entered {
            displaced,
            in_slot,
            #[cfg(feature = "sentry")]
            _hub: hub,
            #[cfg(feature = "tracing")]
            _span: span,
            _not_send: PhantomData,
        }
    }

    /// Runs `future` inside this context.
    pub fn wrap<F: Future>(self, future: F) -> WithCorrelation<F> {
        WithCorrelation::new(future, self)
    }
}

/// A [`CorrelationContext`] entered on the current thread by
/// [`adapter::enter`](crate::adapter::enter); dropping it leaves the context and restores
/// what was current before.
///
/// The context is entered in a per-thread slot, so the guard must be dropped on the
/// thread that entered it: it is not `Send`, and holding it across an `.await` in a
/// spawned task does not compile.
///
/// ```compile_fail
/// use correlation_core::{CorrelationContext, CorrelationId, adapter};
///
/// fn assert_send<T: Send>(_: T) {}
/// let context = CorrelationContext::new(CorrelationId::from_static("req-1"));
/// assert_send(adapter::enter(&context));
/// ```
#[must_use = "the context is left as soon as the guard is dropped"]
pub struct Entered {
    // The value this guard took out of the thread's slot, put back on drop. Fields drop
    // after `Drop::drop`, in order: the Sentry hub, then the span, the reverse of
    // entering.
    displaced: Current,
    // `false` when the slot was unavailable (the thread is exiting): nothing to restore.
    in_slot: bool,
    #[cfg(feature = "sentry")]
    _hub: Option<sentry_core::HubSwitchGuard>,
    #[cfg(feature = "tracing")]
    _span: Option<tracing::span::EnteredSpan>,
    // The slot is per thread: leaving must happen on the thread that entered.
    _not_send: PhantomData<*const ()>,
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if self.in_slot {
            swap_with_slot(&mut self.displaced);
        }
    }
}

impl fmt::Debug for Entered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entered").finish_non_exhaustive()
    }
}

impl fmt::Debug for CorrelationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationContext")
            .field("id", &self.current.id)
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
    fn an_owned_context_keeps_its_id_across_entries() {
        let mut context = CorrelationContext::new(id("body"));
        for _ in 0..3 {
            assert_eq!(context.run_mut(current).unwrap(), "body");
            assert_eq!(current(), None);
        }
        assert_eq!(context.id().unwrap(), "body");
    }

    #[test]
    fn an_entered_guard_restores_the_outer_id_and_nests() {
        sync_scope(id("outer"), || {
            let first = CorrelationContext::new(id("first"));
            let second = CorrelationContext::new(id("second"));
            let entered_first = first.enter();
            assert_eq!(current().unwrap(), "first");
            {
                let _entered_second = second.enter();
                assert_eq!(current().unwrap(), "second");
            }
            assert_eq!(current().unwrap(), "first");
            drop(entered_first);
            assert_eq!(current().unwrap(), "outer");
            // The contexts kept their IDs: entering copies, it does not take.
            assert_eq!(first.id().unwrap(), "first");
            assert_eq!(second.id().unwrap(), "second");
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_under_an_entered_guard_restores_the_outer_id() {
        let context = CorrelationContext::new(id("entered"));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _entered = context.enter();
            panic!("handler bug");
        }));
        assert!(caught.is_err());
        assert_eq!(current(), None);
    }
}
