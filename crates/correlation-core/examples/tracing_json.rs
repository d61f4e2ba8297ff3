//! Every `tracing` event of a request carries `correlation_id`, in JSON output.
//!
//! Run with
//!
//! ```sh
//! cargo run -p correlation-core --example tracing_json --features tracing
//! ```

use correlation_core::{CorrelationConfig, CorrelationId, spawn};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt().json().with_span_list(true).init();
    let config = CorrelationConfig::default();

    // What an adapter does for each request: the request span records the ID.
    let context = correlation_core::adapter::request_context(
        &config,
        CorrelationId::from_static("9e6454c421d54e4aa66ab28f15576414").into(),
    );
    context
        .wrap(async {
            tracing::info!("handling the request");
            spawn(async { tracing::info!("in a spawned task") })
                .await
                .ok();
        })
        .await;
    tracing::info!("outside any request: no correlation_id");
}
