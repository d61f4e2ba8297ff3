//! The thread's slot that a context is lent to while its work runs, and the functions
//! that read it.
//!
//! It works like tokio's `task_local!` (a thread-local slot that a future's context is
//! put into for each poll and taken out of after it), with one difference that matters
//! on every request: the slot holds a *reference* to the context, lent for the duration
//! of a closure (`scoped-tls`), where `task_local!` moves the value in and out (or
//! clones it, for `sync_scope`). Entering costs the same whatever the context holds,
//! and the context stays where its owner keeps it.

use std::sync::Arc;

use super::CorrelationContext;
use crate::fields::FieldMap;
use crate::id::CorrelationId;
use crate::job_id::JobIds;
#[cfg(feature = "request-log")]
use crate::request_log::RequestLog;

scoped_tls::scoped_thread_local! {
    /// The context of the unit of work this thread runs at this moment; unset between
    /// polls. A context without an ID inside a scope means "explicitly no ID": it
    /// shadows any outer scope.
    static CURRENT: CorrelationContext
}

/// The unit of work the context is for: its correlation ID, and what only some units of
/// work have (a job's IDs, a request's hop ID, a request log).
///
/// A plain request's context is its ID alone; the rest lives behind one `Arc`, so the
/// context is no larger than its ID: it is moved with every future and body that carries
/// it.
#[derive(Clone, Default)]
pub(super) enum Current {
    /// Explicitly no ID.
    #[default]
    Empty,
    /// An ID and nothing else: a request's, or one given to a scope.
    Id(CorrelationId),
    /// An ID with a job's IDs, a hop ID or a request log, shared by every copy of its
    /// context.
    Scoped(Arc<Scope>),
}

/// A unit of work with more than an ID.
pub(super) struct Scope {
    id: CorrelationId,
    /// The job's own and parent IDs, inside a background job.
    job: Option<JobIds>,
    /// The ID of a request's hop through this service, with hop IDs on.
    hop: Option<CorrelationId>,
    /// A raised log level or a log buffer.
    #[cfg(feature = "request-log")]
    log: Option<RequestLog>,
}

impl Current {
    pub(super) fn request(id: CorrelationId, hop: Option<CorrelationId>) -> Self {
        match hop {
            None => Self::Id(id),
            Some(hop) => Self::Scoped(Arc::new(Scope {
                id,
                job: None,
                hop: Some(hop),
                #[cfg(feature = "request-log")]
                log: None,
            })),
        }
    }

    pub(super) fn job(id: CorrelationId, job: JobIds) -> Self {
        Self::Scoped(Arc::new(Scope {
            id,
            job: Some(job),
            hop: None,
            #[cfg(feature = "request-log")]
            log: None,
        }))
    }

    #[inline]
    pub(super) fn id(&self) -> Option<&CorrelationId> {
        match self {
            Self::Empty => None,
            Self::Id(id) => Some(id),
            Self::Scoped(scope) => Some(&scope.id),
        }
    }

    pub(super) fn hop_id(&self) -> Option<&CorrelationId> {
        match self {
            Self::Empty | Self::Id(_) => None,
            Self::Scoped(scope) => scope.hop.as_ref(),
        }
    }

    pub(super) fn job_ids(&self) -> Option<&JobIds> {
        match self {
            Self::Empty | Self::Id(_) => None,
            Self::Scoped(scope) => scope.job.as_ref(),
        }
    }

    #[cfg(feature = "request-log")]
    pub(super) fn request_log(&self) -> Option<&RequestLog> {
        match self {
            Self::Empty | Self::Id(_) => None,
            Self::Scoped(scope) => scope.log.as_ref(),
        }
    }

    /// The same unit of work with `log` as its log state.
    #[cfg(feature = "request-log")]
    pub(super) fn with_log(self, log: RequestLog) -> Self {
        let (id, job, hop) = match self {
            Self::Empty => return Self::Empty,
            Self::Id(id) => (id, None, None),
            Self::Scoped(scope) => match Arc::try_unwrap(scope) {
                Ok(scope) => (scope.id, scope.job, scope.hop),
                Err(scope) => (scope.id.clone(), scope.job.clone(), scope.hop.clone()),
            },
        };
        Self::Scoped(Arc::new(Scope {
            id,
            job,
            hop,
            log: Some(log),
        }))
    }
}

impl CorrelationContext {
    /// Runs `f` with `self` as the current context, lent to the thread's slot for the
    /// duration; the outer context is current again when `f` returns or unwinds.
    #[inline]
    pub(super) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        CURRENT.set(self, f)
    }
}

/// Calls `f` with the current context, borrowed; `None` outside any scope.
#[inline]
pub(crate) fn with_slot<R>(f: impl FnOnce(Option<&CorrelationContext>) -> R) -> R {
    if CURRENT.is_set() {
        CURRENT.with(|context| f(Some(context)))
    } else {
        f(None)
    }
}

/// Calls `f` with the fields of the current request (or job), if any was ever set: for
/// formatters and [`fields`](crate::fields).
#[inline]
pub(crate) fn with_current_fields<R>(f: impl FnOnce(Option<&FieldMap>) -> R) -> R {
    with_slot(|context| f(context.and_then(|context| context.fields.get())))
}

/// The correlation ID of the request (or job) this code runs for, if any.
///
/// ```
/// use correlation_core::{CorrelationId, current, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(current(), None);
/// let id = CorrelationId::from_static("req-1");
/// let seen = scope(id, async { current() }).await;
/// assert_eq!(seen.unwrap(), "req-1");
/// assert_eq!(current(), None);
/// # }
/// ```
pub fn current() -> Option<CorrelationId> {
    with_current(|id| id.cloned())
}

/// Calls `f` with the current ID, without cloning it: for formatters.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&CorrelationId>) -> R) -> R {
    with_slot(|context| f(context.and_then(|context| context.current.id())))
}

/// Calls `f` with the current request's (or job's) log state, if it has one: for the
/// request logger.
#[cfg(feature = "request-log")]
pub(crate) fn with_current_log<R>(f: impl FnOnce(Option<&RequestLog>) -> R) -> R {
    with_slot(|context| f(context.and_then(|context| context.current.request_log())))
}

/// Calls `f` with the current request's hop ID, if hop IDs are on: for formatters.
pub(crate) fn with_current_hop<R>(f: impl FnOnce(Option<&CorrelationId>) -> R) -> R {
    with_slot(|context| f(context.and_then(|context| context.current.hop_id())))
}

/// Calls `f` with the current job's IDs, if the caller runs inside a job: for formatters.
pub(crate) fn with_current_job<R>(f: impl FnOnce(Option<&JobIds>) -> R) -> R {
    with_slot(|context| f(context.and_then(|context| context.current.job_ids())))
}

/// Runs the closure `f` with `id` as the current correlation ID (and no job IDs).
///
/// ```
/// use correlation_core::{CorrelationId, current, sync_scope};
///
/// let seen = sync_scope(CorrelationId::from_static("job-7"), || current());
/// assert_eq!(seen.unwrap(), "job-7");
/// ```
pub fn sync_scope<R>(id: CorrelationId, f: impl FnOnce() -> R) -> R {
    CorrelationContext::new(id).enter(f)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start tasks outside any request on purpose
mod tests {
    use super::*;

    fn id(value: &'static str) -> CorrelationId {
        CorrelationId::from_static(value)
    }

    #[test]
    fn with_current_sees_the_id_without_cloning() {
        assert!(with_current(|id| id.is_none()));
        let len = sync_scope(id("abc"), || with_current(|id| id.map(CorrelationId::len)));
        assert_eq!(len, Some(3));
    }

    #[test]
    fn a_panic_inside_a_scope_restores_the_outer_id() {
        sync_scope(id("outer"), || {
            let caught = std::panic::catch_unwind(|| {
                sync_scope(id("inner"), || panic!("handler bug"));
            });
            assert!(caught.is_err());
            assert_eq!(current().unwrap(), "outer");
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn a_scope_entered_while_the_current_id_is_borrowed_carries_its_own() {
        sync_scope(id("outer"), || {
            let inner = with_current(|outer| {
                assert_eq!(outer.unwrap(), "outer");
                sync_scope(id("inner"), current)
            });
            assert_eq!(inner.unwrap(), "inner");
            assert_eq!(current().unwrap(), "outer");
        });
    }
}
