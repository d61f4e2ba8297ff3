//! Time per request through an axum `Router`, in one run: bare, with our
//! `CorrelationLayer` (defaults), with tower-http's `SetRequestIdLayer` +
//! `PropagateRequestIdLayer` (what axum users use today), and with the floor (the least
//! work that does what our defaults promise, hand-written in `support/floor.rs`); each
//! with and without an incoming `x-request-id`.
//!
//! Run with `cargo bench -p correlation-axum --bench axum`; results are recorded in
//! `BENCHMARKS.md` at the repository root.
//!
//! Requests are driven in-process with `ServiceExt::oneshot` on a clone of the router
//! (no sockets) on a current-thread tokio runtime, after `with_state(())` as
//! `axum::serve` does. Each iteration builds the request (with a `Host` header, and the
//! ID as reference-counted bytes as hyper parses it), gets the response and reads the
//! body as hyper's server does, since our layer also works while the body is polled.
//! Every stack uses the same handler, and each middleware is added with a single
//! `Router::layer` call, so each pays axum's per-layer boxing once; a no-op layer shows
//! that cost.
//!
//! Two more modes, chosen by environment variables, serve `BENCHMARKS.md`:
//! `CORRELATION_INTERLEAVED_ROUNDS=<n>` times all stacks in interleaved rounds (steadier
//! on a shared machine), and `CORRELATION_PROFILE=<stack>/<case>` drives one stack for
//! callgrind. With `CORRELATION_THREADS=<n>`, the interleaved mode runs each batch on
//! `n` threads at once through clones of the same router, as a multi-threaded server
//! does: reference counts that every request touches then bounce between cores.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use correlation_axum::{CorrelationConfig, CorrelationLayer, CorrelationService, IdSource};
use correlation_bench_support::{BenchMode, interleaved_rounds, shared_header_value};
use criterion::{BenchmarkId, Criterion};
use http::header::HOST;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use tower::layer::util::Identity;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

#[path = "support/floor.rs"]
mod floor;

/// A valid UUID v4, accepted by both middlewares.
const INCOMING_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

async fn handler() -> &'static str {
    "hello"
}

fn routes() -> Router {
    Router::new().route("/", get(handler))
}

/// `with_state(())` turns every handler into a route once, as `axum::serve` does;
/// without it `oneshot` would convert the handler again on every request.
fn bare() -> Router {
    routes().with_state(())
}

/// A layer that does nothing: what any `Router::layer` costs in axum (the layered
/// route is boxed and cloned per request), under every middleware here.
fn noop_layer() -> Router {
    routes().layer(Identity::new()).with_state(())
}

fn ours() -> Router {
    routes().layer(CorrelationLayer::new()).with_state(())
}

/// Ours with the demos' sources: `X-Request-ID`, then `traceparent` (profile mode only).
fn ours_traceparent() -> Router {
    routes()
        .layer(CorrelationLayer::with_config(demo_config()))
        .with_state(())
}

/// The floor: the least work that does what our defaults promise.
fn floor() -> Router {
    routes().layer(floor::FloorLayer).with_state(())
}

/// Our layer around the whole router, as a tower service (`axum::serve` takes any):
/// no per-route boxing, no per-request clone of a boxed route, no body box.
fn ours_around() -> CorrelationService<Router> {
    CorrelationLayer::new().layer(bare())
}

/// tower-http's pair around the whole router, likewise.
fn tower_http_around() -> impl Service<
    Request<Body>,
    Response = http::Response<impl http_body::Body<Data = Bytes> + Unpin>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .service(bare())
}

fn tower_http() -> Router {
    // `ServiceBuilder` runs top-down: `SetRequestId` sees the request first, as in
    // tower-http's own documentation.
    routes()
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(())
}

/// A request as a client sends it: a `Host` header, and the ID if there is one.
fn request(incoming: Option<&HeaderValue>) -> Request<Body> {
    let mut builder = Request::get("/").header(HOST, HeaderValue::from_static("localhost"));
    if let Some(value) = incoming {
        builder = builder.header("x-request-id", value.clone());
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// One request: build it, answer it, and read the body the way hyper's server does
/// (frames until `is_end_stream`). Returns the response head and the body length.
async fn serve<S, B>(app: S, incoming: Option<&HeaderValue>) -> (http::response::Parts, usize)
where
    S: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let response = app.oneshot(request(incoming)).await.expect("infallible");
    let (parts, mut body) = response.into_parts();
    let mut len = 0;
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) => len += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
    (parts, len)
}

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let incoming = shared_header_value(INCOMING_ID);

    // `cargo xtask bench` reads the group `axum` and expects exactly these four stacks;
    // the no-op layer, a reference for axum's own per-layer cost, has a group of its own.
    let groups = [
        (
            "axum",
            vec![
                ("bare", bare()),
                ("correlation", ours()),
                ("tower-http", tower_http()),
                ("floor", floor()),
            ],
        ),
        ("axum-noop-layer", vec![("noop-layer", noop_layer())]),
    ];
    for (group_name, stacks) in groups {
        let mut group = c.benchmark_group(group_name);
        for (stack, app) in stacks {
            for (case, header) in [("no-id", None), ("with-id", Some(&incoming))] {
                group.bench_function(BenchmarkId::new(stack, case), |b| {
                    b.to_async(&runtime).iter(|| {
                        let app = app.clone();
                        async move { black_box(serve(app, header).await) }
                    })
                });
            }
        }
        group.finish();
    }
}

/// Both middlewares answer with the same status and body as bare axum, and carry the
/// ID; a benchmark of something that does not work would mean nothing.
fn check_stacks() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let incoming = shared_header_value(INCOMING_ID);
    runtime.block_on(async {
        for app in [ours(), tower_http(), floor()] {
            for header in [None, Some(&incoming)] {
                let response = app.clone().oneshot(request(header)).await.unwrap();
                assert!(response.status().is_success());
                let id = response.headers().get("x-request-id").expect("echoed id");
                if let Some(incoming) = header {
                    assert_eq!(id, incoming);
                }
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, "hello");
            }
        }
    });
}

fn benches(c: &mut Criterion) {
    check_stacks();
    requests(c);
}

/// Sends `count` requests through one stack, for a profiler rather than criterion:
/// `CORRELATION_PROFILE=correlation/with-id valgrind --tool=callgrind
/// --toggle-collect=axum::drive <bench binary>` counts the instructions of exactly
/// those requests (see `BENCHMARKS.md`).
#[inline(never)]
fn drive(
    runtime: &tokio::runtime::Runtime,
    serve_batch: &Batch,
    header: Option<&HeaderValue>,
    count: u32,
) {
    serve_batch(runtime, header, count);
}

fn profile(stack: &str, with_id: bool, count: u32) {
    let serve_batch = match stack {
        "bare" => batch_of(bare()),
        "noop-layer" => batch_of(noop_layer()),
        "correlation" => batch_of(ours()),
        "tower-http" => batch_of(tower_http()),
        "floor" => batch_of(floor()),
        "correlation-around" => batch_of(ours_around()),
        "correlation-traceparent" => batch_of(ours_traceparent()),
        "tower-http-around" => batch_of(tower_http_around()),
        other => panic!(
            "unknown stack {other:?}: bare, noop-layer, correlation, tower-http, floor, \
             correlation-around or tower-http-around"
        ),
    };
    let incoming = shared_header_value(INCOMING_ID);
    let header = with_id.then_some(&incoming);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    // Warm up outside `drive`: lazy initialisation is not a per-request cost.
    serve_batch(&runtime, header, 100);
    drive(&runtime, &serve_batch, header, count);
}

/// `batch` requests through one stack, its type erased: `(runtime, incoming ID, batch)`.
type Batch = Box<dyn Fn(&tokio::runtime::Runtime, Option<&HeaderValue>, u32) + Sync>;

fn batch_of<S, B>(app: S) -> Batch
where
    S: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    B: http_body::Body<Data = Bytes> + Unpin,
{
    Box::new(move |runtime, header, batch| {
        runtime.block_on(async {
            for _ in 0..batch {
                black_box(serve(app.clone(), header).await);
            }
        });
    })
}

/// Times every stack in interleaved rounds (`rounds` rounds of `batch` requests each,
/// stacks in turn) and prints the fastest and the median round per stack, in ns per
/// request. On a machine shared with other work, the fastest of many short interleaved
/// rounds is far steadier than one long criterion run per stack, since interference
/// hits every stack alike and rarely spares none of a stack's rounds.
fn interleaved(rounds: usize, batch: u32, threads: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let others: Vec<_> = (1..threads)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime")
        })
        .collect();
    let incoming = shared_header_value(INCOMING_ID);
    let stacks: [(&str, Batch); 7] = [
        ("bare", batch_of(bare())),
        ("noop-layer", batch_of(noop_layer())),
        ("correlation", batch_of(ours())),
        ("tower-http", batch_of(tower_http())),
        ("floor", batch_of(floor())),
        ("correlation-around", batch_of(ours_around())),
        ("tower-http-around", batch_of(tower_http_around())),
    ];
    let names: Vec<_> = stacks.iter().map(|(name, _)| *name).collect();
    let headers = [None, Some(&incoming)];
    interleaved_rounds(&names, &["no-id", "with-id"], rounds, |stack, case| {
        let (serve_batch, header) = (&stacks[stack].1, headers[case]);
        let run = |runtime: &tokio::runtime::Runtime| {
            // Each thread its own buffer, as each connection has in a server: one value
            // shared by all threads would make its reference count the bottleneck.
            let own = header.map(|_| shared_header_value(INCOMING_ID));
            serve_batch(runtime, own.as_ref(), batch);
        };
        // Time per request as each thread sees it: the batch's wall time over its size.
        std::thread::scope(|scope| {
            for other in &others {
                scope.spawn(|| run(other));
            }
            run(&runtime);
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
        BenchMode::Interleaved { rounds } => {
            let threads = std::env::var("CORRELATION_THREADS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            return interleaved(rounds, 2_000, threads);
        }
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
