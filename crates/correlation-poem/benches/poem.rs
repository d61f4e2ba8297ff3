//! Time per request through a poem `Route`, in one run: bare, with our `Correlation`
//! (defaults), with poem's own `RequestId` with `ReuseId::Use` (what poem users use
//! today), and with the floor (the least work that does what our defaults promise,
//! hand-written in `support/floor.rs`); each with and without an incoming
//! `x-request-id`.
//!
//! Run with `cargo bench -p correlation-poem --bench poem`; results are recorded in
//! `BENCHMARKS.md` at the repository root.
//!
//! Requests are driven in-process with `Endpoint::get_response` on the app boxed as
//! poem's server boxes it (no sockets), on a current-thread tokio runtime. Each iteration builds the
//! request (with a `Host` header, and the ID as reference-counted bytes as hyper parses
//! it), gets the response and reads the body. Every stack uses the same handler, and each
//! middleware is added with a single `.with` call. A last group compares a streamed
//! body (the one case where ours wraps the body, one allocation) bare and with ours.
//!
//! Two more modes, chosen by environment variables, serve `BENCHMARKS.md`:
//! `CORRELATION_INTERLEAVED_ROUNDS=<n>` times all stacks in interleaved rounds (steadier
//! on a shared machine), and `CORRELATION_PROFILE=<stack>/<case>` drives one stack for
//! callgrind.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use correlation_bench_support::{BenchMode, interleaved_rounds, shared_header_value};
use correlation_poem::{Correlation, CorrelationConfig, IdSource};
use criterion::{BenchmarkId, Criterion};
use poem::http::HeaderValue;
use poem::http::header::HOST;
use poem::middleware::{RequestId, ReuseId};
use poem::{Body, Endpoint, EndpointExt, Request, Response, Route, get, handler};

#[path = "support/floor.rs"]
mod floor;

/// A valid UUID v4, accepted by both middlewares.
const INCOMING_ID: &str = "9e6454c4-21d5-4e4a-a66a-b28f15576414";

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[handler]
fn streamed() -> Response {
    Response::builder()
        .content_type("text/plain")
        .body(Body::from_bytes_stream(futures_util::stream::iter([Ok::<
            _,
            std::io::Error,
        >(
            "hello",
        )])))
}

/// The stacks, type-erased as poem's server does (`Arc<dyn DynEndpoint>`, which boxes
/// each request's future), so every stack pays the same boxing as in production.
type App = poem::endpoint::BoxEndpoint<'static, Response>;

fn bare() -> App {
    Route::new().at("/", get(hello)).boxed()
}

fn ours() -> App {
    Route::new()
        .at("/", get(hello))
        .with(Correlation::default())
        .boxed()
}

fn peer() -> App {
    Route::new()
        .at("/", get(hello))
        .with(RequestId::default().reuse_id(ReuseId::Use))
        .boxed()
}

fn floor() -> App {
    Route::new().at("/", get(hello)).with(floor::Floor).boxed()
}

fn streamed_bare() -> App {
    Route::new().at("/", get(streamed)).boxed()
}

fn streamed_ours() -> App {
    Route::new()
        .at("/", get(streamed))
        .with(Correlation::default())
        .boxed()
}

fn request(incoming: Option<&HeaderValue>) -> Request {
    let mut builder = Request::builder()
        .uri_str("/")
        .header(HOST, HeaderValue::from_static("localhost"));
    if let Some(value) = incoming {
        builder = builder.header("x-request-id", value.clone());
    }
    builder.finish()
}

/// One request as poem's server makes it: answer, then read the body.
async fn serve(app: &App, incoming: Option<&HeaderValue>) -> Bytes {
    let response = app.get_response(request(incoming)).await;
    response.into_body().into_bytes().await.expect("a body")
}

/// Fails the bench early if a stack does not do what its row claims.
fn check_stacks() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let incoming = shared_header_value(INCOMING_ID);
    runtime.block_on(async {
        for (name, app) in [
            ("correlation", ours()),
            ("peer", peer()),
            ("floor", floor()),
        ] {
            for header in [None, Some(&incoming)] {
                let response = app.get_response(request(header)).await;
                let id = response
                    .header("x-request-id")
                    .unwrap_or_else(|| panic!("{name} echoes an ID"))
                    .to_owned();
                if header.is_some() {
                    assert_eq!(id, INCOMING_ID, "{name} keeps the incoming ID");
                }
                assert_eq!(response.into_body().into_bytes().await.unwrap(), "hello");
            }
        }
    });
}

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let incoming = shared_header_value(INCOMING_ID);
    let groups = [
        (
            "poem",
            vec![
                ("bare", bare()),
                ("correlation", ours()),
                ("poem RequestId (ReuseId::Use)", peer()),
                ("floor", floor()),
            ],
        ),
        (
            "poem streamed body",
            vec![("bare", streamed_bare()), ("correlation", streamed_ours())],
        ),
    ];
    for (group_name, stacks) in &groups {
        let mut group = c.benchmark_group(*group_name);
        for (stack, app) in stacks {
            for (case, header) in [("no id", None), ("incoming id", Some(&incoming))] {
                group.bench_function(BenchmarkId::new(*stack, case), |b| {
                    b.to_async(&runtime)
                        .iter(|| async { black_box(serve(app, header).await) });
                });
            }
        }
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    check_stacks();
    requests(c);
}

/// Sends `count` requests through one stack, for a profiler rather than criterion:
/// `CORRELATION_PROFILE=correlation/with-id valgrind --tool=callgrind
/// --toggle-collect=poem::drive <bench binary>` counts the instructions of exactly
/// those requests.
#[inline(never)]
fn drive(runtime: &tokio::runtime::Runtime, app: &App, header: Option<&HeaderValue>, count: u64) {
    runtime.block_on(async {
        for _ in 0..count {
            black_box(serve(app, header).await);
        }
    });
}

fn profile(stack: &str, with_id: bool, count: u32) {
    let app = match stack {
        "bare" => bare(),
        "correlation" => ours(),
        "correlation-traceparent" => Route::new()
            .at("/", get(hello))
            .with(Correlation::with_config(demo_config()))
            .boxed(),
        "peer" => peer(),
        "floor" => floor(),
        other => panic!("unknown stack {other:?}: bare, correlation, peer or floor"),
    };
    let incoming = shared_header_value(INCOMING_ID);
    let header = with_id.then_some(&incoming);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    // Warm up outside `drive`: lazy initialisation is not a per-request cost.
    runtime.block_on(async {
        for _ in 0..100 {
            black_box(serve(&app, header).await);
        }
    });
    drive(&runtime, &app, header, u64::from(count));
}

/// Times every stack in interleaved rounds (`rounds` rounds of `batch` requests each,
/// stacks in turn) and prints the fastest and the median round per stack, in ns per
/// request: on a shared machine, interference hits every stack alike.
fn interleaved(rounds: usize, batch: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let incoming = shared_header_value(INCOMING_ID);
    let stacks = [
        ("bare", bare()),
        ("correlation", ours()),
        ("peer", peer()),
        ("floor", floor()),
    ];
    let names: Vec<_> = stacks.iter().map(|(name, _)| *name).collect();
    let headers = [None, Some(&incoming)];
    interleaved_rounds(&names, &["no-id", "with-id"], rounds, |stack, case| {
        let (app, header) = (&stacks[stack].1, headers[case]);
        runtime.block_on(async {
            for _ in 0..batch {
                black_box(serve(app, header).await);
            }
        });
        batch
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
