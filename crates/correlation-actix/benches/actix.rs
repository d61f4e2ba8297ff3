//! Time per request through an actix-web `App`, in one run: bare, with our `Correlation`
//! (defaults), with `actix-request-identifier` (what actix users use today, set to
//! reuse incoming IDs as ours does), and with the floor (the least work that does what
//! our defaults promise, hand-written in `support/floor.rs`); each with and without an
//! incoming `x-request-id`.
//!
//! Run with `cargo bench -p correlation-actix --bench actix`; results are recorded in
//! `BENCHMARKS.md` at the repository root.
//!
//! Requests are driven in-process with actix-web's test harness (`init_service`, then
//! `Service::call`; no sockets) on actix's own current-thread runtime. Each iteration
//! builds the request, gets the response and reads its body to the end, since our
//! middleware also wraps the body. Every stack uses the same handler, and each
//! middleware is registered with a single `.wrap`.
//!
//! Two more modes, for steadier figures than criterion's separate runs on a shared
//! machine: `CORRELATION_INTERLEAVED_ROUNDS=<n>` times all stacks in interleaved rounds,
//! and `CORRELATION_PROFILE=<stack>/<case>` (stacks `bare`, `correlation`, `peer`, `floor`; cases
//! `no-id`, `with-id`) drives one stack for a profiler:
//! `valgrind --tool=callgrind --toggle-collect=actix::drive <bench binary>`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_http::Request;
use actix_request_identifier::{IdReuse, RequestIdentifier};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HOST, HeaderValue};
use actix_web::rt::SystemRunner;
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error, web};
use correlation_actix::{Correlation, CorrelationConfig, IdSource};
use correlation_bench_support::{BenchMode, interleaved_rounds, shared_bytes};
use criterion::{BenchmarkId, Criterion};

#[path = "support/floor.rs"]
mod floor;

/// A valid UUID v4, accepted by both middlewares.
const INCOMING_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";
const HEADER: &str = "x-request-id";

async fn handler() -> &'static str {
    "hello"
}

/// A header value over reference-counted bytes, as actix's parser slices it out of its
/// read buffer: cloning it into a request is a reference-count increment.
fn shared_header_value(value: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(shared_bytes(value)).expect("a valid header value")
}

/// A request as a client sends it: a `Host` header (so the header map has room, as in
/// any request actix parsed), and the ID if there is one.
fn request(incoming: Option<&HeaderValue>) -> Request {
    let mut request = TestRequest::get()
        .uri("/")
        .insert_header((HOST, HeaderValue::from_static("localhost")));
    if let Some(value) = incoming {
        request = request.insert_header((HEADER, value.clone()));
    }
    request.to_request()
}

/// Sends `iters` requests one after the other and returns the time they took.
async fn run<S, B>(app: &S, incoming: Option<&HeaderValue>, iters: u64) -> Duration
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let start = Instant::now();
    for _ in 0..iters {
        let response = app.call(request(incoming)).await.expect("a response");
        let (request, response) = response.into_parts();
        let (head, body) = response.into_parts();
        let body = actix_web::body::to_bytes(body).await.ok();
        black_box((request, head, body));
    }
    start.elapsed()
}

/// One stack: checks that it answers and carries the ID (a benchmark of something that
/// does not work would mean nothing), then times it with and without an incoming ID.
fn stack<S, B>(c: &mut Criterion, system: &SystemRunner, name: &str, app: S, expect_id: bool)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let incoming = shared_header_value(INCOMING_ID);
    for header in [None, Some(&incoming)] {
        let response = system.block_on(test::call_service(&app, request(header)));
        assert!(response.status().is_success());
        let echoed = response.headers().get(HEADER);
        assert_eq!(echoed.is_some(), expect_id);
        if let (Some(incoming), true) = (header, expect_id) {
            assert_eq!(echoed, Some(incoming));
        }
        assert_eq!(system.block_on(test::read_body(response)), "hello");
    }

    let mut group = c.benchmark_group("actix");
    for (case, header) in [("no-id", None), ("with-id", Some(&incoming))] {
        group.bench_function(BenchmarkId::new(name, case), |b| {
            b.iter_custom(|iters| system.block_on(run(&app, header, iters)))
        });
    }
    group.finish();
}

/// Builds the four stacks and hands each, with its name and whether it echoes an ID, to
/// `visit`: one definition of the stacks for every mode of this bench.
macro_rules! with_stacks {
    ($system:expr, $visit:ident) => {{
        let bare = $system.block_on(test::init_service(
            App::new().route("/", web::get().to(handler)),
        ));
        $visit!("bare", bare, false);
        let ours = $system.block_on(test::init_service(
            App::new()
                .route("/", web::get().to(handler))
                .wrap(Correlation::default()),
        ));
        $visit!("correlation", ours, true);
        let peer = $system.block_on(test::init_service(
            App::new()
                .route("/", web::get().to(handler))
                .wrap(RequestIdentifier::with_uuid().use_incoming_id(IdReuse::UseIncoming)),
        ));
        $visit!("actix-request-identifier", peer, true);
        let floor = $system.block_on(test::init_service(
            App::new()
                .route("/", web::get().to(handler))
                .wrap(floor::Floor),
        ));
        $visit!("floor", floor, true);
    }};
}

fn benches(c: &mut Criterion) {
    let system = actix_web::rt::System::new();
    macro_rules! bench {
        ($name:expr, $app:expr, $echoes:expr) => {
            stack(c, &system, $name, $app, $echoes)
        };
    }
    with_stacks!(system, bench);
}

/// A batch of requests through one stack, its type erased: `(incoming ID, count)`.
type Batch<'a> = Box<dyn Fn(Option<&HeaderValue>, u64) + 'a>;

fn batch<'a, S, B>(system: &'a SystemRunner, app: S) -> Batch<'a>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error> + 'a,
    B: MessageBody,
{
    Box::new(move |header, count| {
        black_box(system.block_on(run(&app, header, count)));
    })
}

/// Sends `count` requests through one stack, for a profiler rather than criterion:
/// `--toggle-collect=actix::drive` counts the instructions of exactly those requests.
#[inline(never)]
fn drive(batch: &Batch<'_>, header: Option<&HeaderValue>, count: u64) {
    batch(header, count);
}

fn profile(stack: &str, with_id: bool, count: u32) {
    let stack = match stack {
        "peer" => "actix-request-identifier",
        other => other,
    };
    let incoming = shared_header_value(INCOMING_ID);
    let header = with_id.then_some(&incoming);
    let system = actix_web::rt::System::new();
    let mut found = None;
    macro_rules! pick {
        ($name:expr, $app:expr, $echoes:expr) => {
            if $name == stack {
                found = Some(batch(&system, $app));
            }
        };
    }
    with_stacks!(system, pick);
    if stack == "correlation-traceparent" {
        let app = system.block_on(test::init_service(
            App::new()
                .route("/", web::get().to(handler))
                .wrap(Correlation::with_config(demo_config())),
        ));
        found = Some(batch(&system, app));
    }
    let Some(batch) = found else {
        panic!("unknown stack {stack:?}: bare, correlation, peer or floor");
    };
    // Warm up outside `drive`: lazy initialisation is not a per-request cost.
    batch(header, 100);
    drive(&batch, header, u64::from(count));
}

/// Times every stack in interleaved rounds (`rounds` rounds of `batch` requests each,
/// stacks in turn) and prints the fastest and the median round per stack, in ns per
/// request: on a shared machine, interference hits every stack alike.
fn interleaved(rounds: usize, size: u32) {
    let system = actix_web::rt::System::new();
    let incoming = shared_header_value(INCOMING_ID);
    let mut stacks: Vec<(&str, Batch<'_>)> = Vec::new();
    macro_rules! collect {
        ($name:expr, $app:expr, $echoes:expr) => {
            stacks.push(($name, batch(&system, $app)))
        };
    }
    with_stacks!(system, collect);
    let names: Vec<_> = stacks.iter().map(|(name, _)| *name).collect();
    let headers = [None, Some(&incoming)];
    interleaved_rounds(&names, &["no-id", "with-id"], rounds, |stack, case| {
        stacks[stack].1(headers[case], u64::from(size));
        size
    });
}

fn main() {
    match BenchMode::from_env() {
        BenchMode::Profile {
            stack,
            with_id,
            requests,
        } => return profile(&stack, with_id, requests),
        BenchMode::Interleaved { rounds } => return interleaved(rounds, 2_000),
        BenchMode::Criterion => {}
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}

/// The demos' configuration: the ID from `X-Request-ID`, else from `traceparent`.
fn demo_config() -> CorrelationConfig {
    CorrelationConfig::builder()
        .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
        .build()
        .expect("a valid configuration")
}
