//! The per-request context: a tokio task-local holding the current correlation ID (and,
//! inside a background job, the job's own and parent IDs), and the helpers that carry it
//! into spawned tasks, blocking closures and any future.
//!
//! The context is task-local, not merely thread-local: it follows a request across
//! `.await` points and worker threads, and it never outlives its scope: outside a
//! scope [`current`] is `None`, never a stale value from an earlier request.
//!
//! It works like tokio's `task_local!` (a thread-local slot that a future's context is
//! swapped into for each poll and out of after it), with one difference that matters on
//! every request: a context owned mutably is *moved* into the slot and back, where
//! `LocalKey::sync_scope` needs a clone of it each time, with its reference counts.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::JoinHandle;

use crate::id::CorrelationId;
use crate::job::{JobId, JobIds};

thread_local! {
    /// The context of the unit of work this thread runs at this moment; empty between
    /// polls. An empty value inside a scope means "explicitly no ID": it shadows any
    /// outer scope.
    static CURRENT: RefCell<Current> = const { RefCell::new(Current::NONE) };
}

/// What the task-local holds: the correlation ID and, inside a job, the job IDs.
#[derive(Clone, Default)]
struct Current {
    id: Option<CorrelationId>,
    // Boxed behind an `Arc` so the value swapped in and out on every poll stays small:
    // requests, the hot path, never have job IDs.
    job: Option<Arc<JobIds>>,
}

impl Current {
    const NONE: Self = Self {
        id: None,
        job: None,
    };

    fn request(id: CorrelationId) -> Self {
        Self {
            id: Some(id),
            job: None,
        }
    }

    /// The context the caller runs in (empty outside any scope).
    fn get() -> Self {
        with_slot(|current| current.cloned().unwrap_or_default())
    }

    /// Runs `f` with `self` as the current context, moved into the thread's slot for the
    /// duration and back afterwards, even if `f` panics.
    fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
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
fn swap_with_slot(current: &mut Current) -> bool {
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

/// Runs `future` with `id` as the current correlation ID (and no job IDs: a scope is a
/// new unit of work, not a job).
pub fn scope<F: Future>(id: CorrelationId, future: F) -> WithCorrelation<F> {
    CorrelationContext::new(id).wrap(future)
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

/// Spawns `future` on the tokio runtime, carrying the current correlation context (the
/// ID, and with the `tracing` / `sentry` features the span and the Sentry hub) into it.
///
/// A plain `tokio::spawn` starts a new task without the caller's task-locals, so its
/// logs would lose the ID; this one keeps it.
///
/// ```
/// use correlation_core::{CorrelationId, current, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let id = CorrelationId::from_static("req-1");
/// let handle = scope(id, async { correlation_core::spawn(async { current() }) }).await;
/// assert_eq!(handle.await.unwrap().unwrap(), "req-1");
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a tokio runtime, like `tokio::spawn`.
#[allow(clippy::disallowed_methods)] // this is the context-carrying replacement
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_correlation())
}

/// Spawns a `!Send` future on the current [`LocalSet`](tokio::task::LocalSet), carrying
/// the current correlation context into it (actix-web serves inside a `LocalSet`).
///
/// # Panics
///
/// Panics if called outside a `LocalSet`, like `tokio::task::spawn_local`.
#[allow(clippy::disallowed_methods)] // this is the context-carrying replacement
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(future.in_current_correlation())
}

/// Runs the blocking closure `f` on tokio's blocking pool, carrying the current
/// correlation context into it.
///
/// ```
/// use correlation_core::{CorrelationId, current, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let id = CorrelationId::from_static("req-1");
/// let seen = scope(id, async { correlation_core::spawn_blocking(current).await }).await;
/// assert_eq!(seen.unwrap().unwrap(), "req-1");
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a tokio runtime, like `tokio::task::spawn_blocking`.
#[allow(clippy::disallowed_methods)] // this is the context-carrying replacement
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(bind_current(f))
}

/// Wraps the closure `f` so that it runs with the caller's current correlation context,
/// wherever it is called: `std::thread::spawn`, rayon, a thread pool.
///
/// ```
/// use correlation_core::{CorrelationId, bind_current, current, sync_scope};
///
/// let job = sync_scope(CorrelationId::from_static("req-1"), || bind_current(current));
/// let seen = std::thread::spawn(job).join().unwrap();
/// assert_eq!(seen.unwrap(), "req-1");
/// ```
pub fn bind_current<F, R>(f: F) -> impl FnOnce() -> R
where
    F: FnOnce() -> R,
{
    let mut context = CorrelationContext::capture();
    move || context.run_mut(f)
}

/// Everything a request's (or a job's) work runs inside: its correlation ID, the job IDs
/// when it is a background job, and, with the `tracing` feature, its span, and with the
/// `sentry` feature, its own Sentry hub.
///
/// Adapters make one per request with
/// [`CorrelationConfig::request_context`](crate::CorrelationConfig::request_context), run
/// the inner service's `call` with [`run`](Self::run) (or under [`enter`](Self::enter)
/// when its future is built in place), its future with [`wrap`](Self::wrap), and every
/// poll of the response body with [`run_mut`](Self::run_mut).
/// [`capture`](Self::capture) takes the caller's context, to carry it elsewhere.
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
    pub fn new(id: CorrelationId) -> Self {
        Self {
            current: Current::request(id),
            ambient: Ambient::default(),
        }
    }

    /// The caller's current context: its ID (if any), its job IDs (inside a job), span
    /// and Sentry hub.
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
            target: crate::LOG_TARGET,
            "request",
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
            target: crate::LOG_TARGET,
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

    /// Like [`run`](Self::run), without cloning: the context is moved in for the
    /// duration of `f` and back out. For middleware that owns its context (a response
    /// body polled many times, say).
    pub fn run_mut<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let Self { current, ambient } = self;
        ambient.run(|| current.enter(f))
    }

    /// Enters this context on the current thread until the returned guard is dropped,
    /// in the manner of tracing's `Span::entered`: for code that cannot pass a closure
    /// to [`run`](Self::run), such as a middleware that builds the inner service's
    /// future in place inside its own.
    ///
    /// Like `run`, it enters a copy of the ID (a reference count), so the context stays
    /// free to be moved while the guard lives.
    ///
    /// Guards must be dropped on the thread that made them (they are not `Send`) and in
    /// the reverse order of entering. A guard that is leaked with `mem::forget` leaves
    /// the ID current on its thread; prefer `run` or [`wrap`](Self::wrap) wherever a
    /// closure or a future will do.
    ///
    /// ```
    /// use correlation_core::{CorrelationContext, CorrelationId, current};
    ///
    /// let context = CorrelationContext::new(CorrelationId::from_static("req-3"));
    /// let entered = context.enter();
    /// assert_eq!(current().unwrap(), "req-3");
    /// let moved = context; // the guard does not borrow the context
    /// drop(entered);
    /// assert_eq!(current(), None);
    /// # let _ = moved;
    /// ```
    #[inline]
    pub fn enter(&self) -> Entered {
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
        WithCorrelation {
            future: Some(future),
            context: Some(self),
        }
    }
}

/// A [`CorrelationContext`] entered on the current thread by
/// [`CorrelationContext::enter`]; dropping it leaves the context and restores what was
/// current before.
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

/// Carries a correlation ID into any future, in the spirit of tracing's `Instrument`.
///
/// Implemented for every [`Future`].
///
/// ```
/// use correlation_core::{CorrelationFutureExt, CorrelationId, current};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let seen = async { current() }
///     .with_correlation_id(CorrelationId::from_static("ws-42"))
///     .await;
/// assert_eq!(seen.unwrap(), "ws-42");
/// # }
/// ```
pub trait CorrelationFutureExt: Future + Sized {
    /// Runs this future with `id` as the current correlation ID.
    fn with_correlation_id(self, id: CorrelationId) -> WithCorrelation<Self> {
        CorrelationContext::new(id).wrap(self)
    }

    /// Runs this future with the caller's current correlation context (or explicitly
    /// none, if the caller has none), captured now.
    fn in_current_correlation(self) -> WithCorrelation<Self> {
        CorrelationContext::capture().wrap(self)
    }
}

impl<F: Future> CorrelationFutureExt for F {}

pin_project! {
    /// A future running inside a [`CorrelationContext`]: see [`CorrelationFutureExt`]
    /// and [`scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithCorrelation<F> {
        // `None` once complete: the future is dropped as soon as it is done, inside the
        // context, like everything else it does.
        #[pin]
        future: Option<F>,
        context: Option<CorrelationContext>,
    }

    impl<F> PinnedDrop for WithCorrelation<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut future = this.future;
            if future.is_none() {
                return;
            }
            // Destructors that log (a dropped request's guards, say) see the ID too.
            match this.context {
                Some(context) => context.run_mut(|| future.set(None)),
                None => future.set(None),
            }
        }
    }
}

impl<F: Future> Future for WithCorrelation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut future = this.future;
        let mut poll = || {
            let Some(inner) = future.as_mut().as_pin_mut() else {
                panic!("`WithCorrelation` polled after completion");
            };
            let poll = inner.poll(cx);
            if poll.is_ready() {
                future.set(None);
            }
            poll
        };
        match this.context {
            Some(context) => context.run_mut(poll),
            None => poll(),
        }
    }
}

impl<F> WithCorrelation<F> {
    /// Takes the context back out, once: middleware that wrapped a request's future
    /// reuses it for the response body instead of keeping a second copy alongside.
    /// `None` when already taken. Taken before completion, the rest of the future runs
    /// without it.
    pub fn take_context(self: Pin<&mut Self>) -> Option<CorrelationContext> {
        self.project().context.take()
    }
}

impl<F> fmt::Debug for WithCorrelation<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCorrelation")
            .field("future", &std::any::type_name::<F>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start tasks outside any request on purpose
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(value: &'static str) -> CorrelationId {
        CorrelationId::from_static(value)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_never_see_each_others_id() {
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let own = CorrelationId::new(&format!("task-{n}")).unwrap();
                tokio::spawn(scope(own.clone(), async move {
                    for _ in 0..20 {
                        assert_eq!(current().as_ref(), Some(&own));
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_micros(50)).await;
                    }
                    current()
                }))
            })
            .collect();
        for (n, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), format!("task-{n}"));
        }
        assert_eq!(current(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spawn_carries_the_id_but_tokio_spawn_does_not() {
        let (ours, plain) = scope(id("req-1"), async {
            let ours = spawn(async { current() });
            #[allow(clippy::disallowed_methods)]
            let plain = tokio::spawn(async { current() });
            (ours.await.unwrap(), plain.await.unwrap())
        })
        .await;
        assert_eq!(ours.unwrap(), "req-1");
        assert_eq!(plain, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spawn_blocking_carries_the_id_but_tokio_spawn_blocking_does_not() {
        let (ours, plain) = scope(id("req-2"), async {
            let ours = spawn_blocking(current);
            #[allow(clippy::disallowed_methods)]
            let plain = tokio::task::spawn_blocking(current);
            (ours.await.unwrap(), plain.await.unwrap())
        })
        .await;
        assert_eq!(ours.unwrap(), "req-2");
        assert_eq!(plain, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn works_on_the_current_thread_runtime_and_in_a_local_set() {
        let local = tokio::task::LocalSet::new();
        let seen = local
            .run_until(scope(id("local"), async {
                let nested = spawn_local(async {
                    tokio::task::yield_now().await;
                    current()
                });
                (current(), nested.await.unwrap())
            }))
            .await;
        assert_eq!(seen.0.unwrap(), "local");
        assert_eq!(seen.1.unwrap(), "local");
    }

    #[tokio::test]
    async fn in_current_without_an_id_shadows_nothing_and_stays_none() {
        let seen = async { current() }.in_current_correlation().await;
        assert_eq!(seen, None);
    }

    #[tokio::test]
    async fn nested_scopes_restore_the_outer_id() {
        let (inner, outer) = scope(id("outer"), async {
            let inner = scope(id("inner"), async { current() }).await;
            (inner, current())
        })
        .await;
        assert_eq!(inner.unwrap(), "inner");
        assert_eq!(outer.unwrap(), "outer");
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

    /// Records the ID current when it is dropped.
    struct DropProbe(Arc<std::sync::Mutex<Vec<Option<CorrelationId>>>>);

    impl Drop for DropProbe {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(current());
        }
    }

    #[tokio::test]
    async fn a_future_dropped_before_completion_is_dropped_inside_its_context() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let probe = DropProbe(Arc::clone(&seen));
        let pending = scope(id("dropped"), async move {
            let _probe = probe;
            std::future::pending::<()>().await;
        });
        // Polled once, so the probe lives inside the future's state.
        let mut pending = Box::pin(pending);
        assert!(futures_poll_once(pending.as_mut()).await.is_pending());
        drop(pending);
        assert_eq!(*seen.lock().unwrap(), [Some(id("dropped"))]);
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn take_context_hands_the_finished_futures_context_on() {
        let mut future = Box::pin(scope(id("handed-on"), async { current() }));
        assert_eq!(future.as_mut().await.unwrap(), "handed-on");
        let mut context = future.as_mut().take_context().unwrap();
        assert_eq!(context.run_mut(current).unwrap(), "handed-on");
        assert!(future.as_mut().take_context().is_none());
    }

    /// Polls `future` once and reports whether it finished.
    async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await
    }

    #[test]
    fn bind_current_carries_the_id_to_another_thread() {
        let job = sync_scope(id("thread"), || bind_current(current));
        assert_eq!(std::thread::spawn(job).join().unwrap().unwrap(), "thread");
        assert_eq!(std::thread::spawn(current).join().unwrap(), None);
    }
}
