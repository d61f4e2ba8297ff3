//! Heap allocations one request makes through an actix-web app, with and without our
//! middleware, counted per thread.
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc`
//! wrapper over `System` with thread-local counters), because the workspace forbids
//! `unsafe_code`, which an allocator needs. Each request is driven to completion by
//! polling it by hand on this thread (the handlers never wait), so the count holds
//! exactly what actix-web and the middleware allocate for it: building the request is
//! left outside the count, taking the response, reading its body and dropping it all
//! inside.
//!
//! What it proves, in allocations per request over bare actix-web:
//! - an accepted incoming ID: **1**. actix-web 4 uses `http` 0.2 header values and core's
//!   `CorrelationId` an `http` 1 one; neither exposes its bytes as a shareable buffer,
//!   so the incoming bytes are copied once into one shared buffer. That buffer then
//!   serves the context, the request header and the response header without a copy.
//! - a generated ID: **2**: core's generator allocates the ID (one allocation, as core's
//!   own allocation test shows), and the ID's bytes are shared into an actix header value
//!   (one allocation). Writing the new header into a request that had none can grow
//!   actix's request header map: **3** with a `TestRequest` without headers. On a server,
//!   actix pools request heads and keeps their map's capacity, so that growth stops once
//!   the pooled heads have grown.
//!
//! actix-request-identifier, the peer, is measured for comparison.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use actix_http::Request;
use actix_request_identifier::{IdReuse, RequestIdentifier};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error, web};
use allocation_counter::measure;
use correlation_actix::correlation_core::test_util::shared_bytes;
use correlation_actix::{Correlation, CorrelationConfig};

const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

/// Polls `future` once on this thread; the futures here never wait.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the request did not complete in one poll"),
    }
}

/// A header value over reference-counted bytes, as actix's parser slices it out of its
/// read buffer.
fn shared_header_value(value: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(shared_bytes(value)).unwrap()
}

fn request(incoming: Option<&HeaderValue>) -> Request {
    let mut request = TestRequest::get().uri("/");
    if let Some(value) = incoming {
        request = request.insert_header(("x-request-id", value.clone()));
    }
    request.to_request()
}

/// Allocations of one request through `app`, after warm-up (actix pools request and
/// response heads, so the first requests allocate more).
fn allocations<S, B>(app: &S, incoming: Option<&HeaderValue>) -> u64
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let mut counts = Vec::new();
    for _ in 0..20 {
        let request = request(incoming);
        let count = measure(|| {
            let response = ready(app.call(request)).unwrap();
            let (request, response) = response.into_parts();
            let (head, body) = response.into_parts();
            let body = ready(actix_web::body::to_bytes(body)).ok().unwrap();
            assert_eq!(body, "hello");
            drop(black_box((request, head)));
        })
        .count_total;
        counts.push(count);
    }
    let last = counts[counts.len() - 1];
    // Steady state: the last requests all allocate the same.
    assert!(counts[10..].iter().all(|&c| c == last), "{counts:?}");
    last
}

async fn handler() -> &'static str {
    "hello"
}

struct Counts {
    bare: [u64; 2],
    ours: [u64; 2],
    ours_without_request_update: [u64; 2],
    peer: [u64; 2],
}

fn counts() -> Counts {
    let shared = shared_header_value(VALID);
    let cases = [None, Some(&shared)];
    let bare = ready(test::init_service(
        App::new().route("/", web::get().to(handler)),
    ));
    let ours = ready(test::init_service(
        App::new()
            .route("/", web::get().to(handler))
            .wrap(Correlation::default()),
    ));
    let config = CorrelationConfig::builder()
        .update_request_header(false)
        .build()
        .unwrap();
    let ours_without_request_update = ready(test::init_service(
        App::new()
            .route("/", web::get().to(handler))
            .wrap(Correlation::with_config(config)),
    ));
    let peer = ready(test::init_service(
        App::new()
            .route("/", web::get().to(handler))
            .wrap(RequestIdentifier::with_uuid().use_incoming_id(IdReuse::UseIncoming)),
    ));
    Counts {
        bare: cases.map(|incoming| allocations(&bare, incoming)),
        ours: cases.map(|incoming| allocations(&ours, incoming)),
        ours_without_request_update: cases
            .map(|incoming| allocations(&ours_without_request_update, incoming)),
        peer: cases.map(|incoming| allocations(&peer, incoming)),
    }
}

/// Without this, an "adds nothing" assertion could pass vacuously.
#[test]
fn the_counting_allocator_counts_this_thread() {
    assert_eq!(measure(|| drop(black_box(Box::new(7_u64)))).count_total, 1);
    assert_eq!(measure(|| {}).count_total, 0);
}

#[test]
fn an_accepted_id_adds_one_allocation_and_a_generated_one_two() {
    let Counts {
        bare,
        ours,
        ours_without_request_update,
        peer,
    } = counts();
    println!(
        "allocations per request [no id, with id]: bare {bare:?}, correlation {ours:?}, \
         correlation without request update {ours_without_request_update:?}, \
         actix-request-identifier {peer:?}"
    );
    let [bare_generated, bare_accepted] = bare;
    let [ours_generated, ours_accepted] = ours;
    let [peer_generated, peer_accepted] = peer;
    assert!(
        bare_generated > 0,
        "the bare app allocates: the count works"
    );

    // Accepted: the one shared copy of the incoming bytes; the request header is
    // replaced in place and the response header shares the same bytes.
    assert_eq!(
        ours_accepted - bare_accepted,
        1,
        "accepted: {ours:?} vs {bare:?}"
    );
    assert_eq!(ours_without_request_update[1] - bare_accepted, 1);

    // Generated: core's new ID, and sharing its bytes into an actix header value.
    assert_eq!(
        ours_without_request_update[0] - bare_generated,
        2,
        "generated: {ours_without_request_update:?} vs {bare:?}"
    );
    // Writing the new header into a request that had none grows actix's header map once
    // more. (On a server, actix pools request heads and keeps their map's capacity, so
    // this only happens until the pooled heads have grown.)
    assert_eq!(
        ours_generated - bare_generated,
        3,
        "generated: {ours:?} vs {bare:?}"
    );

    // Fewer than the peer, which boxes its future and inserts a request extension.
    assert!(ours_accepted < peer_accepted, "{ours:?} vs {peer:?}");
    assert!(ours_generated < peer_generated, "{ours:?} vs {peer:?}");
}
