//! Every Sentry event captured while handling a request carries the correlation ID as
//! the `transaction_id` tag, each request on a hub of its own.
//!
//! Run with
//!
//! ```sh
//! cargo run -p correlation-core --example sentry --features sentry
//! ```
//!
//! It uses sentry's in-memory test transport, so nothing leaves the machine; in a service,
//! bind a client with `sentry::init(dsn)` instead.

use correlation_core::{CorrelationConfig, CorrelationId, spawn};

fn main() {
    let events = sentry_core::test::with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let config = CorrelationConfig::default();
            for id in [
                "3758c31e11774540ba330109c405579a",
                "9e6454c421d54e4aa66ab28f15576414",
            ] {
                let context = correlation_core::adapter::request_context(
                    &config,
                    CorrelationId::from_static(id).into(),
                );
                context
                    .wrap(async {
                        sentry_core::capture_message("something failed", sentry_core::Level::Error);
                        spawn(async {
                            sentry_core::capture_message(
                                "and in a task",
                                sentry_core::Level::Error,
                            );
                        })
                        .await
                        .ok();
                    })
                    .await;
            }
        });
    });
    for event in events {
        println!(
            "{:<16} transaction_id={}",
            event.message.unwrap_or_default(),
            event
                .tags
                .get("transaction_id")
                .map(String::as_str)
                .unwrap_or("-")
        );
    }
}
