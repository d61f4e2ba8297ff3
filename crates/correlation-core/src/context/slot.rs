//! The thread's slot that a context is moved into while its work runs, and the
//! functions that read it.
//!
//! It works like tokio's `task_local!` (a thread-local slot that a future's context is
//! swapped into for each poll and out of after it), with one difference that matters on
//! every request: a context owned mutably is *moved* into the slot and back, where
//! `LocalKey::sync_scope` needs a clone of it each time, with its reference counts.

use std::cell::RefCell;
use std::mem;
use std::sync::Arc;

use crate::id::CorrelationId;
use crate::job_id::JobIds;

thread_local! {
    /// The context of the unit of work this thread runs at this moment; empty between
    /// polls. An empty value inside a scope means "explicitly no ID": it shadows any
    /// outer scope.
    static CURRENT: RefCell<Current> = const { RefCell::new(Current::NONE) };
}

/// What the task-local holds: the correlation ID and, inside a job, the job IDs.
#[derive(Clone, Default)]
pub(super) struct Current {
    pub(super) id: Option<CorrelationId>,
    // Boxed behind an `Arc` so the value swapped in and out on every poll stays small:
    // requests, the hot path, never have job IDs.
    pub(super) job: Option<Arc<JobIds>>,
}

impl Current {
    pub(super) const NONE: Self = Self {
        id: None,
        job: None,
    };

    pub(super) fn request(id: CorrelationId) -> Self {
        Self {
            id: Some(id),
            job: None,
        }
    }

    /// The context the caller runs in (empty outside any scope).
    pub(super) fn get() -> Self {
        with_slot(|current| current.cloned().unwrap_or_default())
    }

    /// Runs `f` with `self` as the current context, moved into the thread's slot for the
    /// duration and back afterwards, even if `f` panics.
    pub(super) fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        /// Swaps the outer context back in when `f` returns or unwinds.
        struct Exit<'a>(&'a mut Current);

        impl Drop for Exit<'_> {
            #[inline]
            fn drop(&mut self) {
                swap_with_slot(self.0);
            }
        }

        if !swap_with_slot(self) {
            // The thread is exiting, or a `with_current` callback is entering a scope:
            // run without the context rather than panic.
            return f();
        }
        let _exit = Exit(self);
        f()
    }
}

/// Exchanges `current` with the thread's slot; `false` if the slot is unavailable.
// Inlined into the adapters (this runs on every poll); without the attribute a
// non-generic function is a call across crates.
#[inline]
pub(super) fn swap_with_slot(current: &mut Current) -> bool {
    CURRENT
        .try_with(|slot| match slot.try_borrow_mut() {
            Ok(mut slot) => {
                mem::swap(&mut *slot, current);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Calls `f` with the current context, borrowed; `None` outside any scope.
fn with_slot<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|slot| {
        let current = slot.try_borrow().ok()?;
        f.take().map(|f| f(Some(&current)))
    });
    match (result, f) {
        (Ok(Some(value)), _) => value,
        (_, Some(f)) => f(None),
        // `f` was taken only when it ran, which returned `Some` above.
        (_, None) => unreachable!("the closure ran but returned nothing"),
    }
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

/// Calls `f` with the current ID, without cloning it: for formatters and hot paths.
///
/// `f` must not enter a scope of its own: one entered inside it runs without its ID.
pub fn with_current<R>(f: impl FnOnce(Option<&CorrelationId>) -> R) -> R {
    with_slot(|current| f(current.and_then(|current| current.id.as_ref())))
}

/// Calls `f` with the current job's IDs, if the caller runs inside a job: for formatters.
pub(crate) fn with_current_job<R>(f: impl FnOnce(Option<&JobIds>) -> R) -> R {
    with_slot(|current| f(current.and_then(|current| current.job.as_deref())))
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
    Current::request(id).enter(f)
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
}
