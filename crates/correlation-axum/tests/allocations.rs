//! Heap allocations of one request through axum with `CorrelationLayer`, counted over the
//! same request through a no-op layer written here, per thread on a current-thread
//! runtime (`block_on` runs the request on the test's own thread, so the counts are
//! exact and no other test pollutes them). Counting over a no-op layer in the same
//! framework, rather than asserting axum's own counts, keeps what axum allocates for
//! any layer (the layered route is a `BoxCloneSyncService`, cloned and its future boxed
//! per request) out of the assertions: a patch release of axum cannot fail them.
//!
//! What the layer costs, measured here and explained at each assertion:
//!
//! - In plain tower (any HTTP service, no axum), the layer allocates nothing for an
//!   accepted incoming ID, and exactly once (the ID's buffer) for a generated one.
//! - Through `Router::layer`, an accepted ID costs 1 allocation over the no-op layer:
//!   axum boxing our response body wrapper (`Body::new` on a body that is not already
//!   `axum::body::Body`). A generated ID adds its one buffer.
//! - The floor (`benches/support/floor.rs`, the least work that does what our defaults
//!   promise) allocates the same.
//!
//! - With the `sentry` feature and no Sentry client bound, no per-request hub is made, so
//!   it costs nothing; the `tracing` span costs none without a subscriber.
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc` wrapper
//! over `System` with thread-local counters) because the workspace forbids `unsafe_code`.

use std::convert::Infallible;
use std::task::{Context, Poll};

use allocation_counter::measure;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use correlation_axum::CorrelationLayer;
use correlation_bench_support::shared_header_value;
use http::header::HOST;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

#[path = "../benches/support/floor.rs"]
mod floor;

const INCOMING_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

/// Allocations per request that depend on features: `adapter::request_context` makes
/// none (with the `sentry` feature a hub is only forked when a Sentry client is bound, none
/// is here, and the `tracing` span allocates nothing when no subscriber is interested);
/// the `tower-http` feature's `RequestId` extension makes three when the request has no
/// extensions yet (the map, its table and the entry), as in plain tower ...
const CONTEXT: u64 = if cfg!(feature = "tower-http") { 3 } else { 0 };

/// ... and one, the entry, through axum, whose requests carry extensions already.
const CONTEXT_IN_AXUM: u64 = if cfg!(feature = "tower-http") { 1 } else { 0 };

async fn handler() -> &'static str {
    "hello"
}

fn routes() -> Router {
    Router::new().route("/", get(handler))
}

/// `with_state(())` turns the handler into a route once, as `axum::serve` does.
fn bare() -> Router {
    routes().with_state(())
}

/// A layer that does nothing but wrap the service: the baseline our cost is counted over.
#[derive(Clone, Copy)]
struct NoopLayer;

impl<S> Layer<S> for NoopLayer {
    type Service = Noop<S>;

    fn layer(&self, inner: S) -> Noop<S> {
        Noop(inner)
    }
}

#[derive(Clone)]
struct Noop<S>(S);

impl<S: Service<R>, R> Service<R> for Noop<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.0.call(request)
    }
}

fn noop_layer() -> Router {
    routes().layer(NoopLayer).with_state(())
}

fn floor() -> Router {
    routes().layer(floor::FloorLayer).with_state(())
}

fn ours() -> Router {
    routes().layer(CorrelationLayer::new()).with_state(())
}

/// A request as a client sends it: a `Host` header (so the header map already exists,
/// as it always does for a request hyper parsed), and the ID if there is one.
fn request<B>(incoming: Option<&HeaderValue>, body: B) -> Request<B> {
    let mut builder = Request::get("/").header(HOST, HeaderValue::from_static("localhost"));
    if let Some(value) = incoming {
        builder = builder.header("x-request-id", value.clone());
    }
    builder.body(body).unwrap()
}

/// Reads a body the way hyper's server does: frames until `is_end_stream`.
async fn read_body<B: http_body::Body + Unpin>(mut body: B) -> usize
where
    B::Data: bytes::Buf,
{
    let mut len = 0;
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) => len += frame.data_ref().map_or(0, bytes::Buf::remaining),
            _ => break,
        }
    }
    len
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Allocations of one request through `app` (building the request excluded; answering
/// it, reading the body and dropping everything included), after warming up.
fn per_request(app: &Router, incoming: Option<&HeaderValue>) -> u64 {
    let runtime = runtime();
    let run = |request: Request<Body>| {
        let app = app.clone();
        runtime.block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            assert!(response.status().is_success());
            assert_eq!(read_body(response.into_body()).await, 5);
        });
    };
    for _ in 0..3 {
        run(request(incoming, Body::empty()));
    }
    let request = request(incoming, Body::empty());
    measure(|| run(request)).count_total
}

/// Without this, the exact counts below could hold vacuously.
#[test]
fn the_counting_allocator_is_installed_and_counts_this_thread() {
    assert_eq!(
        measure(|| drop(std::hint::black_box(Box::new(1_u8)))).count_total,
        1
    );
    let bare = per_request(&bare(), None);
    assert!(bare > 0, "a request through axum allocates");
}

#[test]
fn in_plain_tower_an_accepted_id_allocates_nothing_and_a_generated_one_once() {
    let runtime = runtime();
    let incoming = shared_header_value(INCOMING_ID);
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        Ok::<_, Infallible>(response)
    });
    let layered = CorrelationLayer::new().layer(inner);
    let count = |header: Option<&HeaderValue>, with_layer: bool| {
        let run = |request: Request<Full<Bytes>>| {
            runtime.block_on(async {
                if with_layer {
                    let response = layered.clone().oneshot(request).await.unwrap();
                    assert!(response.headers().contains_key("x-request-id"));
                    assert_eq!(read_body(response.into_body()).await, 5);
                } else {
                    let response = inner.oneshot(request).await.unwrap();
                    assert_eq!(read_body(response.into_body()).await, 5);
                }
            })
        };
        run(request(header, Full::default()));
        let request = request(header, Full::default());
        measure(|| run(request)).count_total
    };
    for header in [None, Some(&incoming)] {
        let added = count(header, true) - count(header, false) - CONTEXT;
        let expected = if header.is_some() {
            // The ID shares the incoming header's bytes; the request header keeps its
            // slot; the response map has room for the echo; the scope and the body
            // wrapper live inside the response future.
            0
        } else {
            // The generated ID's buffer (`Bytes::from_owner`), shared by the request
            // header, the task-local, the response header and the body wrapper.
            1
        };
        assert_eq!(added, expected, "incoming id: {header:?}");
    }
}

#[test]
fn through_axum_an_accepted_id_costs_one_body_box_over_a_no_op_layer() {
    let incoming = shared_header_value(INCOMING_ID);
    let noop = per_request(&noop_layer(), Some(&incoming));
    let ours = per_request(&ours(), Some(&incoming));
    let floor = per_request(&floor(), Some(&incoming));
    println!("with an accepted id: no-op layer {noop}, correlation {ours}, floor {floor}");
    // axum's `MapIntoResponse` turns our `Response<CorrelationBody<Body>>` into
    // `Response<Body>` with `Body::new`, which boxes any body that is not already
    // `axum::body::Body` (1): the price of scoping the body, which the floor pays too.
    assert_eq!(ours - noop - CONTEXT_IN_AXUM, 1);
    assert!(
        ours - CONTEXT_IN_AXUM <= floor,
        "ours {ours}, floor {floor}"
    );
}

#[test]
fn through_axum_a_generated_id_adds_its_one_buffer() {
    let noop = per_request(&noop_layer(), None);
    let ours = per_request(&ours(), None);
    let floor = per_request(&floor(), None);
    println!("without an incoming id: no-op layer {noop}, correlation {ours}, floor {floor}");
    // The body box, plus the generated ID's buffer. Inserting the request header does
    // not allocate: the map already holds `Host` and has room.
    assert_eq!(ours - noop - CONTEXT_IN_AXUM, 2);
    assert!(
        ours - CONTEXT_IN_AXUM <= floor,
        "ours {ours}, floor {floor}"
    );
}

/// What tower-http's request-ID pair allocates for the same requests: more than ours.
#[test]
fn tower_http_request_id_allocates_more() {
    let incoming = shared_header_value(INCOMING_ID);
    let tower_http = routes()
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(());
    for header in [Some(&incoming), None] {
        let noop = per_request(&noop_layer(), header);
        let ours = per_request(&ours(), header);
        let theirs = per_request(&tower_http, header);
        println!(
            "incoming {:?}: correlation +{}, tower-http +{} over a no-op layer",
            header.is_some(),
            ours - noop,
            theirs - noop
        );
        assert!(ours < theirs);
    }
}
