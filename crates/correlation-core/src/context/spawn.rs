//! Starting other work with the caller's context: tasks, local tasks, blocking closures
//! and closures run anywhere.

use std::future::Future;

use tokio::task::JoinHandle;

use super::CorrelationContext;
use super::future::CorrelationFutureExt;

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
    let context = CorrelationContext::capture();
    move || context.run(f)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start tasks outside any request on purpose
mod tests {
    use super::*;

    use crate::context::{current, scope, sync_scope};
    use crate::id::CorrelationId;

    fn id(value: &'static str) -> CorrelationId {
        CorrelationId::from_static(value)
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

    #[test]
    fn bind_current_carries_the_id_to_another_thread() {
        let job = sync_scope(id("thread"), || bind_current(current));
        assert_eq!(std::thread::spawn(job).join().unwrap().unwrap(), "thread");
        assert_eq!(std::thread::spawn(current).join().unwrap(), None);
    }
}
