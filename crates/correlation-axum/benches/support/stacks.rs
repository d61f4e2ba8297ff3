//! The axum stacks both benches measure (see `correlation_bench_support::STACKS`).
//!
//! Every stack serves the same handler through a `Router`, after `with_state(())` as
//! `axum::serve` does, and adds its middleware with a single `Router::layer` call, so each
//! pays axum's per-layer boxing once; the no-op stack (tower's `Identity` layer) shows that
//! cost. Requests are answered with `ServiceExt::oneshot` on a clone of the router, and each
//! body is read as hyper's server reads it (frames until `is_end_stream`), since the
//! middleware also works while the body is polled.

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use correlation_axum::CorrelationLayer;
use correlation_bench_support::{INCOMING_ID, Stack, shared_header_value};
use http::header::HOST;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::layer::util::Identity;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::floor::FloorLayer;

/// One axum stack on its runtime.
pub(crate) struct Axum {
    runtime: Runtime,
    app: Router,
    incoming: HeaderValue,
}

async fn handler() -> &'static str {
    "hello"
}

fn app(name: &str) -> Router {
    let routes = Router::new().route("/", get(handler));
    let routes = match name {
        "bare" => routes,
        "no-op" => routes.layer(Identity::new()),
        // `ServiceBuilder` runs top-down: `SetRequestId` sees the request first, as in
        // tower-http's own documentation.
        "peer" => routes.layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id()),
        ),
        "floor" => routes.layer(FloorLayer),
        "ours" => routes.layer(CorrelationLayer::new()),
        other => panic!("unknown stack {other:?}"),
    };
    routes.with_state(())
}

impl Stack for Axum {
    type Request = Request<Body>;

    fn new(name: &str) -> Self {
        let stack = Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime"),
            app: app(name),
            incoming: shared_header_value(INCOMING_ID),
        };
        let echoes = !matches!(name, "bare" | "no-op");
        stack.runtime.block_on(async {
            for with_id in [false, true] {
                let [request] = <[_; 1]>::try_from(stack.requests(with_id, 1)).unwrap();
                let response = stack.app.clone().oneshot(request).await.unwrap();
                assert!(response.status().is_success(), "{name}");
                let echoed = response.headers().get("x-request-id");
                assert_eq!(echoed.is_some(), echoes, "{name}");
                if with_id && echoes {
                    assert_eq!(echoed, Some(&stack.incoming), "{name}");
                }
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, "hello", "{name}");
            }
        });
        stack
    }

    fn requests(&self, with_id: bool, count: usize) -> Vec<Request<Body>> {
        (0..count)
            .map(|_| {
                let request = Request::get("/").header(HOST, HeaderValue::from_static("localhost"));
                let request = if with_id {
                    request.header("x-request-id", self.incoming.clone())
                } else {
                    request
                };
                request.body(Body::empty()).expect("a valid request")
            })
            .collect()
    }

    fn serve(&self, requests: Vec<Request<Body>>) -> usize {
        self.runtime.block_on(async {
            let mut read = 0;
            for request in requests {
                let response = self.app.clone().oneshot(request).await.expect("infallible");
                let (parts, mut body) = response.into_parts();
                while !http_body::Body::is_end_stream(&body) {
                    match body.frame().await {
                        Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                        _ => break,
                    }
                }
                black_box(parts);
            }
            read
        })
    }
}
