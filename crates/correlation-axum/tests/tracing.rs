//! With the `tracing` feature, every `tracing` event of a request carries
//! `correlation_id` — in the handler, nested calls, spawned work, the streamed body, and
//! tower-http's `TraceLayer` access log placed inside our layer — with
//! `tracing-subscriber`'s JSON output; `log` records bridged by `tracing-log` too.
#![cfg(feature = "tracing")]

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use correlation_axum::correlation_core::test_util::TracingCapture;
use correlation_axum::{CorrelationId, CorrelationLayer};
use futures_util::StreamExt;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

fn nested() {
    tracing::info!("nested call");
}

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|id: CorrelationId| async move {
                tracing::info!("handler event");
                log::info!("bridged log record");
                nested();
                correlation_axum::correlation_core::spawn(async {
                    tracing::info!("spawned event")
                })
                .await
                .unwrap();
                id.to_string()
            }),
        )
        .route(
            "/stream",
            get(|| async {
                Body::from_stream(futures_util::stream::iter(0..2).map(|n| {
                    tracing::info!("streamed chunk {n}");
                    Ok::<_, Infallible>(Bytes::from("x"))
                }))
            }),
        )
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(CorrelationLayer::new())
}

async fn call(path: &str) -> String {
    let response = app()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.into_body().collect().await.unwrap();
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
                "finished processing request",
            ],
        );
    }
    capture.assert_events_under("streamed chunk", 2, &stream);
}
