//! Carrying a context into any future: [`scope`], [`CorrelationFutureExt`] and the
//! [`WithCorrelation`] future they make.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::CorrelationContext;
use crate::id::CorrelationId;

/// Runs `future` with `id` as the current correlation ID (and no job IDs: a scope is a
/// new unit of work, not a job).
pub fn scope<F: Future>(id: CorrelationId, future: F) -> WithCorrelation<F> {
    CorrelationContext::new(id).wrap(future)
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
            if this.future.is_some() {
                this.drop_unfinished();
            }
        }
    }
}

impl<F> WithCorrelation<F> {
    /// Drops a future that did not complete inside its context, so destructors that log
    /// (a dropped request's guards, say) see the ID too.
    fn drop_unfinished(self: Pin<&mut Self>) {
        let this = self.project();
        let mut future = this.future;
        let context = this.context.as_ref().unwrap_or(&NO_CONTEXT);
        context.run(|| future.set(None));
    }
}

impl<F: Future> Future for WithCorrelation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        let context = this.context.as_ref().unwrap_or(&NO_CONTEXT);
        context.run(|| poll_until_done(future, cx))
    }
}

/// Where a future runs once its context was taken: explicitly without an ID. One path
/// for every poll, with or without a context of its own.
static NO_CONTEXT: CorrelationContext = CorrelationContext::none();

/// Polls `future`, and drops it as soon as it is done.
fn poll_until_done<F: Future>(
    mut future: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let Some(inner) = future.as_mut().as_pin_mut() else {
        panic!("`WithCorrelation` polled after completion");
    };
    let poll = inner.poll(cx);
    if poll.is_ready() {
        future.set(None);
    }
    poll
}

impl<F> WithCorrelation<F> {
    pub(super) fn new(future: F, context: CorrelationContext) -> Self {
        Self {
            future: Some(future),
            context: Some(context),
        }
    }

    /// Takes the context back out, once: middleware that wrapped a request's future
    /// reuses it for the response body once the future is done. `None` when already
    /// taken; taken before completion, the rest of the future runs without an ID.
    pub fn take_context(self: Pin<&mut Self>) -> Option<CorrelationContext> {
        self.project().context.take()
    }

    /// The context it runs in; `None` once [taken](Self::take_context).
    pub fn context(&self) -> Option<&CorrelationContext> {
        self.context.as_ref()
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

    use std::sync::Arc;
    use std::time::Duration;

    use crate::context::current;

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

    #[test]
    #[should_panic(expected = "`WithCorrelation` polled after completion")]
    fn polling_after_completion_panics() {
        let mut future = std::pin::pin!(scope(id("done"), async {}));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let _ = future.as_mut().poll(&mut cx);
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
        let context = future.as_mut().take_context().unwrap();
        assert_eq!(context.run(current).unwrap(), "handed-on");
        assert!(future.as_mut().take_context().is_none());
    }

    /// Polls `future` once and reports whether it finished.
    async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await
    }
}
