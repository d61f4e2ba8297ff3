//! With the `tracing` feature, every `tracing` event of a request carries
//! `correlation_id` (from the `correlation` span core opens for it): in the handler, nested
//! calls, spawned work, the streamed body and poem's `Tracing` access log placed inside
//! `Correlation`, with `tracing-subscriber`'s JSON output; `log` records bridged by
//! `tracing-log` too.
#![cfg(feature = "tracing")]

use correlation_poem::correlation_core::test_util::TracingCapture;
use correlation_poem::{Correlation, CorrelationId};
use futures_util::StreamExt;
use poem::middleware::Tracing;
use poem::{Body, Endpoint, EndpointExt, Request, Route, get, handler};

fn nested() {
    tracing::info!("nested call");
}

#[handler]
async fn index(id: CorrelationId) -> String {
    tracing::info!("handler event");
    log::info!("bridged log record");
    nested();
    correlation_poem::correlation_core::spawn(async { tracing::info!("spawned event") })
        .await
        .unwrap();
    id.to_string()
}

#[handler]
fn streaming() -> Body {
    Body::from_bytes_stream(futures_util::stream::iter(0..2).map(|n| {
        tracing::info!("streamed chunk {n}");
        Ok::<_, std::io::Error>("x")
    }))
}

fn app() -> impl Endpoint {
    Route::new()
        .at("/", get(index))
        .at("/stream", get(streaming))
        .with(Tracing)
        .with(Correlation::default())
}

async fn call(path: &str) -> String {
    let response = app()
        .get_response(Request::builder().uri_str(path).finish())
        .await;
    let id = response.header("x-request-id").unwrap().to_owned();
    response.into_body().into_bytes().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_request_carries_the_correlation_id() {
    let capture = TracingCapture::install();
    let (first, second) = tokio::join!(call("/"), call("/"));
    let stream = call("/stream").await;
    for id in [&first, &second] {
        capture.assert_each_once_under(
            id,
            &[
                "handler event",
                "bridged log record",
                "nested call",
                "spawned event",
                // poem's `Tracing` access log, inside ours.
                "response",
            ],
        );
    }
    capture.assert_events_under("streamed chunk", 2, &stream);
}
