//! Heap allocations one request makes through an actix-web app with our middleware,
//! counted over the same request through a no-op middleware written here, per thread.
//! Counting over a no-op middleware in the same framework, rather than asserting
//! actix-web's own counts, keeps what actix-web allocates for any middleware out of the
//! assertions: a patch release of actix-web cannot fail them.
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc`
//! wrapper over `System` with thread-local counters), because the workspace forbids
//! `unsafe_code`, which an allocator needs. Each request is driven to completion by
//! polling it by hand on this thread (the handlers never wait), so the count holds
//! exactly what actix-web and the middleware allocate for it: building the request is
//! left outside the count, taking the response, reading its body and dropping it all
//! inside. Requests carry a `Host` header, as every request actix parses does, so the
//! request's header map has room for one more.
//!
//! What it proves, in allocations per request over the no-op middleware:
//! - an accepted incoming ID: **0**, as the floor (`benches/support/floor.rs`). The ID
//!   holds the incoming bytes in itself (up to 38 bytes; actix-web 4's `http` 0.2 value
//!   cannot be shared with core's `http` 1 type), the request header is left in place and
//!   the response echoes actix's own incoming value.
//! - a generated ID: **1**, as the floor: the ID is made in itself, with no allocation,
//!   and copied into one actix header value that the request header and the response
//!   share.
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
use actix_web::dev::{Transform, forward_ready};
use actix_web::http::header::{HOST, HeaderValue};
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error, web};
use allocation_counter::measure;
use correlation_actix::{Correlation, CorrelationConfig, IdSource};
use correlation_bench_support::shared_bytes;

#[path = "../benches/support/floor.rs"]
mod floor;

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

/// A request carrying `incoming`, a header's name and value, if any.
fn request(incoming: Option<(&str, &HeaderValue)>) -> Request {
    let mut request = TestRequest::get()
        .uri("/")
        .insert_header((HOST, HeaderValue::from_static("localhost")));
    if let Some((name, value)) = incoming {
        request = request.insert_header((name, value.clone()));
    }
    request.to_request()
}

/// Allocations of one request through `app`, after warm-up (actix pools request and
/// response heads, so the first requests allocate more).
fn allocations<S, B>(app: &S, incoming: Option<(&str, &HeaderValue)>) -> u64
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

/// A middleware that does nothing but wrap the service: the baseline our cost is
/// counted over.
struct Noop;

impl<S, B> Transform<S, actix_web::dev::ServiceRequest> for Noop
where
    S: Service<actix_web::dev::ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = NoopMiddleware<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<NoopMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(NoopMiddleware { service }))
    }
}

struct NoopMiddleware<S> {
    service: S,
}

impl<S, B> Service<actix_web::dev::ServiceRequest> for NoopMiddleware<S>
where
    S: Service<actix_web::dev::ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, request: actix_web::dev::ServiceRequest) -> S::Future {
        self.service.call(request)
    }
}

/// Allocations per request, `[no incoming ID, valid incoming ID]`.
struct Counts {
    noop: [u64; 2],
    ours: [u64; 2],
    floor: [u64; 2],
    peer: [u64; 2],
}

fn counts() -> Counts {
    let shared = shared_header_value(VALID);
    let cases = [None, Some(("x-request-id", &shared))];
    let route = || App::new().route("/", web::get().to(handler));
    let noop = ready(test::init_service(route().wrap(Noop)));
    let ours = ready(test::init_service(route().wrap(Correlation::default())));
    let floor = ready(test::init_service(route().wrap(floor::Floor)));
    let peer = ready(test::init_service(route().wrap(
        RequestIdentifier::with_uuid().use_incoming_id(IdReuse::UseIncoming),
    )));
    Counts {
        noop: cases.map(|incoming| allocations(&noop, incoming)),
        ours: cases.map(|incoming| allocations(&ours, incoming)),
        floor: cases.map(|incoming| allocations(&floor, incoming)),
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
fn an_accepted_id_adds_no_allocation_and_a_generated_one_one_like_the_floor() {
    let Counts {
        noop,
        ours,
        floor,
        peer,
    } = counts();
    println!(
        "allocations per request [no id, with id]: no-op middleware {noop:?}, \
         correlation {ours:?}, floor {floor:?}, actix-request-identifier {peer:?}"
    );
    let [noop_generated, noop_accepted] = noop;
    let [ours_generated, ours_accepted] = ours;
    let [peer_generated, peer_accepted] = peer;
    let [floor_generated, floor_accepted] = floor;
    assert!(noop_generated > 0, "the app allocates: the count works");

    // Accepted: the ID holds the incoming bytes in itself, the request header is left in
    // place and the response echoes the incoming `http` 0.2 value: nothing allocated.
    assert_eq!(ours_accepted - noop_accepted, 0, "{ours:?} vs {noop:?}");
    // Generated: the ID made in itself and copied into one actix header value.
    assert_eq!(ours_generated - noop_generated, 1, "{ours:?} vs {noop:?}");
    // No more than the floor either way.
    assert_eq!(ours_generated, floor_generated, "{ours:?} vs {floor:?}");
    assert_eq!(ours_accepted, floor_accepted, "{ours:?} vs {floor:?}");

    // Fewer than the peer, which boxes its future and inserts a request extension.
    assert!(ours_accepted < peer_accepted, "{ours:?} vs {peer:?}");
    assert!(ours_generated < peer_generated, "{ours:?} vs {peer:?}");
}

/// Sources other than the correlation header are looked up by the names actix parsed, so
/// configuring them adds no allocation: a request with none of them, with a valid
/// `x-request-id`, or with only a `traceparent` (its trace ID copied into the ID, then
/// written into the request as a generated one would be) allocates as with the default
/// configuration.
#[test]
fn trace_context_sources_add_no_allocation() {
    let route = || App::new().route("/", web::get().to(handler));
    let config = CorrelationConfig::builder()
        .sources([
            IdSource::header("X-Request-ID"),
            IdSource::traceparent(),
            IdSource::amazon_trace_id(),
        ])
        .build()
        .unwrap();
    let default = ready(test::init_service(route().wrap(Correlation::default())));
    let traced = ready(test::init_service(
        route().wrap(Correlation::with_config(config)),
    ));
    let valid = shared_header_value(VALID);
    let traceparent =
        shared_header_value("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let with_id = Some(("x-request-id", &valid));
    assert_eq!(allocations(&traced, None), allocations(&default, None));
    assert_eq!(
        allocations(&traced, with_id),
        allocations(&default, with_id)
    );
    assert_eq!(
        allocations(&traced, Some(("traceparent", &traceparent))),
        allocations(&default, None)
    );
}
