//! Heap allocations of one request through poem, bare and with `Correlation`, counted
//! per thread on a current-thread runtime (`block_on` runs the request on the test's own
//! thread, so the counts are exact and no other test pollutes them).
//!
//! What the middleware costs, measured here and explained at each assertion:
//!
//! - An accepted incoming ID: no allocation over bare poem. The ID shares the incoming
//!   header's bytes, the request header keeps its slot, the response's header map has
//!   room for the echo, the scope lives in the endpoint's future, and an in-memory body
//!   is not wrapped.
//! - No incoming ID: one allocation, the generated ID's buffer.
//! - A streaming body (exact size unknown): one more, the box around the wrapper that
//!   polls it inside the scope. A response with no header at all also pays 2 for its
//!   header map's first entry, ours, as it would for any middleware adding a header.
//! - poem's own `RequestId` (reuse on), for comparison, is printed.
//!
//! The counts are the same with the `tracing` feature (a span allocates nothing when no
//! subscriber is interested) and with `sentry` when no Sentry client is bound (core then
//! opens no hub of its own).
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc` wrapper
//! over `System` with thread-local counters) because the workspace forbids `unsafe_code`.

use allocation_counter::measure;
use correlation_poem::Correlation;
use correlation_poem::correlation_core::test_util::shared_header_value;
use poem::http::header::HOST;
use poem::http::{HeaderValue, StatusCode};
use poem::middleware::{RequestId, ReuseId};
use poem::{Body, Endpoint, EndpointExt, Request, Response, Route, get, handler};

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
fn an_accepted_id_allocates_nothing_over_bare_poem() {
    let incoming = shared_header_value(INCOMING_ID);
    let bare = per_request(&bare(), Some(&incoming));
    let ours = per_request(&ours(), Some(&incoming));
    println!("with an accepted id: bare {bare}, correlation {ours}");
    assert_eq!(ours, bare);
}

#[test]
fn a_generated_id_allocates_its_one_buffer() {
    let bare = per_request(&bare(), None);
    let ours = per_request(&ours(), None);
    println!("without an incoming id: bare {bare}, correlation {ours}");
    // The generated ID's buffer (`Bytes::from_owner`), shared by the request header, the
    // task-local and the response header. Inserting the request header does not
    // allocate: the map already holds `Host` and has room.
    assert_eq!(ours - bare, 1);
}

#[test]
fn a_streaming_body_costs_one_box_for_its_scoped_wrapper() {
    let incoming = shared_header_value(INCOMING_ID);
    let bare = per_request(&Route::new().at("/", get(streamed)), Some(&incoming));
    let ours = per_request(
        &Route::new()
            .at("/", get(streamed))
            .with(Correlation::default()),
        Some(&incoming),
    );
    println!("streaming body, accepted id: bare {bare}, correlation {ours}");
    assert_eq!(ours - bare, 1);
}

#[test]
fn a_response_without_any_header_pays_for_its_header_map() {
    let incoming = shared_header_value(INCOMING_ID);
    let route = || Route::new().at("/", get(streamed_without_headers));
    let bare = per_request(&route(), Some(&incoming));
    let ours = per_request(&route().with(Correlation::default()), Some(&incoming));
    println!("headerless streaming body, accepted id: bare {bare}, correlation {ours}");
    // The wrapper's box (1), and the response's empty `HeaderMap` allocating its index
    // table and entry vector for its first header, ours (2): what any middleware that
    // adds a header to such a response pays (poem's `RequestId` too).
    assert_eq!(ours - bare, 3);
}

/// For the record: what poem's own request-ID middleware allocates for the same requests.
#[test]
fn poems_request_id_for_comparison() {
    let incoming = shared_header_value(INCOMING_ID);
    let peer = Route::new()
        .at("/", get(hello))
        .with(RequestId::default().reuse_id(ReuseId::Use));
    for header in [Some(&incoming), None] {
        let bare = per_request(&bare(), header);
        let ours = per_request(&ours(), header);
        let theirs = per_request(&peer, header);
        println!(
            "incoming {:?}: bare {bare}, correlation +{}, poem RequestId +{}",
            header.is_some(),
            ours - bare,
            theirs - bare
        );
        assert!(ours < theirs);
    }
}
