//! Heap allocations of one request through poem with `Correlation`, counted over the same
//! request through a no-op middleware written here, per thread on a current-thread
//! runtime (`block_on` runs the request on the test's own thread, so the counts are
//! exact and no other test pollutes them). Counting over a no-op middleware in the same
//! framework, rather than asserting poem's own counts, keeps what poem allocates out of
//! the assertions: a patch release of poem cannot fail them.
//!
//! What the middleware costs, measured here and explained at each assertion:
//!
//! - Every response body with something to read: one allocation, the box around the
//!   wrapper that polls it inside the scope. poem's bodies do not say whether they are
//!   bytes in memory (a middleware's logging wrapper keeps the exact size of what it
//!   wraps), so an in-memory body is wrapped as a stream is.
//! - An accepted incoming ID: nothing more. The ID shares the incoming header's bytes,
//!   the request header keeps its slot, the response's header map has room for the
//!   echo, and the scope lives in the endpoint's future.
//! - No incoming ID: one more, the generated ID's buffer.
//! - A response with no header at all also pays 2 for its header map's first entry,
//!   ours, as it would for any middleware adding a header.
//! - The floor (`benches/support/floor.rs`, the least work that does what our defaults
//!   promise) allocates the same; poem's own `RequestId` (reuse on) more.
//!
//! The counts are the same with the `tracing` feature (a span allocates nothing when no
//! subscriber is interested) and with `sentry` when no Sentry client is bound (core then
//! opens no hub of its own).
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc` wrapper
//! over `System` with thread-local counters) because the workspace forbids `unsafe_code`.

use std::future::Future;

use allocation_counter::measure;
use correlation_bench_support::shared_header_value;
use correlation_poem::Correlation;
use poem::http::header::HOST;
use poem::http::{HeaderValue, StatusCode};
use poem::middleware::{RequestId, ReuseId};
use poem::{Body, Endpoint, EndpointExt, Middleware, Request, Response, Route, get, handler};

#[path = "../benches/support/floor.rs"]
mod floor;

const INCOMING_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

#[handler]
fn hello() -> &'static str {
    "hello"
}

fn stream_body() -> Body {
    Body::from_bytes_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
        "hello",
    )]))
}

/// A streamed body with its content type, as SSE and downloads have.
#[handler]
fn streamed() -> Response {
    Response::builder()
        .content_type("text/plain")
        .body(stream_body())
}

/// A streamed body and no header at all.
#[handler]
fn streamed_without_headers() -> Body {
    stream_body()
}

/// A request as a client sends it: a `Host` header (so the header map already exists,
/// as it always does for a request hyper parsed), and the ID if there is one.
fn request(incoming: Option<&HeaderValue>) -> Request {
    let mut builder = Request::builder()
        .uri_str("/")
        .header(HOST, HeaderValue::from_static("localhost"));
    if let Some(value) = incoming {
        builder = builder.header("x-request-id", value.clone());
    }
    builder.finish()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Allocations of one request through `app` (building the request excluded; answering
/// it as poem's server does, reading the body and dropping everything included), after
/// warming up.
fn per_request(app: &impl Endpoint, incoming: Option<&HeaderValue>) -> u64 {
    let runtime = runtime();
    let run = |request: Request| {
        runtime.block_on(async {
            let response = app.get_response(request).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.into_body().into_bytes().await.unwrap(), "hello");
        });
    };
    for _ in 0..3 {
        run(request(incoming));
    }
    let request = request(incoming);
    measure(|| run(request)).count_total
}

fn bare() -> impl Endpoint {
    Route::new().at("/", get(hello))
}

/// A middleware that does nothing but wrap the endpoint: the baseline our cost is
/// counted over.
struct Noop;

impl<E: Endpoint> Middleware<E> for Noop {
    type Output = NoopEndpoint<E>;

    fn transform(&self, inner: E) -> NoopEndpoint<E> {
        NoopEndpoint(inner)
    }
}

struct NoopEndpoint<E>(E);

impl<E: Endpoint> Endpoint for NoopEndpoint<E> {
    type Output = E::Output;

    fn call(&self, request: Request) -> impl Future<Output = poem::Result<E::Output>> + Send {
        self.0.call(request)
    }
}

fn noop() -> impl Endpoint {
    Route::new().at("/", get(hello)).with(Noop)
}

fn floor() -> impl Endpoint {
    Route::new().at("/", get(hello)).with(floor::Floor)
}

fn ours() -> impl Endpoint {
    Route::new()
        .at("/", get(hello))
        .with(Correlation::default())
}

/// Without this, the exact counts below could hold vacuously.
#[test]
fn the_counting_allocator_is_installed_and_counts_this_thread() {
    assert_eq!(
        measure(|| drop(std::hint::black_box(Box::new(1_u8)))).count_total,
        1
    );
    assert!(
        per_request(&bare(), None) > 0,
        "a request through poem allocates"
    );
}

#[test]
fn an_accepted_id_allocates_only_the_bodys_scoped_wrapper() {
    let incoming = shared_header_value(INCOMING_ID);
    let noop = per_request(&noop(), Some(&incoming));
    let ours = per_request(&ours(), Some(&incoming));
    let floor = per_request(&floor(), Some(&incoming));
    println!("with an accepted id: no-op middleware {noop}, correlation {ours}, floor {floor}");
    // The box around the wrapper that reads the body inside the scope.
    assert_eq!(ours - noop, 1);
    assert!(ours <= floor, "ours {ours}, floor {floor}");
}

#[test]
fn a_generated_id_allocates_its_one_buffer_more() {
    let noop = per_request(&noop(), None);
    let ours = per_request(&ours(), None);
    let floor = per_request(&floor(), None);
    println!("without an incoming id: no-op middleware {noop}, correlation {ours}, floor {floor}");
    // The body's scoped wrapper, and the generated ID's buffer (`Bytes::from_owner`),
    // shared by the request header, the task-local and the response header. Inserting
    // the request header does not allocate: the map already holds `Host` and has room.
    assert_eq!(ours - noop, 2);
    assert!(ours <= floor, "ours {ours}, floor {floor}");
}

#[test]
fn a_streaming_body_costs_one_box_for_its_scoped_wrapper() {
    let incoming = shared_header_value(INCOMING_ID);
    let route = || Route::new().at("/", get(streamed));
    let noop = per_request(&route().with(Noop), Some(&incoming));
    let ours = per_request(&route().with(Correlation::default()), Some(&incoming));
    let floor = per_request(&route().with(floor::Floor), Some(&incoming));
    println!(
        "streaming body, accepted id: no-op middleware {noop}, correlation {ours}, floor {floor}"
    );
    assert_eq!(ours - noop, 1);
    assert!(ours <= floor, "ours {ours}, floor {floor}");
}

#[test]
fn a_response_without_any_header_pays_for_its_header_map() {
    let incoming = shared_header_value(INCOMING_ID);
    let route = || Route::new().at("/", get(streamed_without_headers));
    let noop = per_request(&route().with(Noop), Some(&incoming));
    let ours = per_request(&route().with(Correlation::default()), Some(&incoming));
    println!("headerless streaming body, accepted id: no-op middleware {noop}, correlation {ours}");
    // The wrapper's box (1), and the response's empty `HeaderMap` allocating its index
    // table and entry vector for its first header, ours (2): what any middleware that
    // adds a header to such a response pays (poem's `RequestId` too).
    assert_eq!(ours - noop, 3);
}

/// What poem's own request-ID middleware allocates for the same requests: more than ours.
#[test]
fn poems_request_id_allocates_more() {
    let incoming = shared_header_value(INCOMING_ID);
    let peer = Route::new()
        .at("/", get(hello))
        .with(RequestId::default().reuse_id(ReuseId::Use));
    for header in [Some(&incoming), None] {
        let noop = per_request(&noop(), header);
        let ours = per_request(&ours(), header);
        let theirs = per_request(&peer, header);
        println!(
            "incoming {:?}: correlation +{}, poem RequestId +{} over a no-op middleware",
            header.is_some(),
            ours - noop,
            theirs - noop
        );
        assert!(ours < theirs);
    }
}
