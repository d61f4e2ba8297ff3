//! poem bare, with our middleware, and with poem's own `RequestId` (reuse on), each with
//! and without an incoming ID, driven in-process through `Endpoint::get_response` so
//! the difference is the middleware's alone.
//!
//! Run with `cargo bench -p correlation-poem --bench poem -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use correlation_poem::Correlation;
use criterion::{BenchmarkId, Criterion, criterion_main};
use poem::http::{HeaderValue, Uri};
use poem::middleware::{RequestId, ReuseId};
use poem::{Body, Endpoint, EndpointExt, Request, Route, get, handler};

const ID: &str = "9e6454c421d54e4aa66ab28f15576414";

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[handler]
fn streamed() -> Body {
    Body::from_bytes_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
        "hello",
    )]))
}

fn request(with_id: bool) -> Request {
    let builder = Request::builder().uri(Uri::from_static("/"));
    if with_id {
        builder
            .header("x-request-id", HeaderValue::from_static(ID))
            .finish()
    } else {
        builder.finish()
    }
}

fn bench_app<E: Endpoint>(
    c: &mut Criterion,
    group: &str,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    app: E,
) {
    let mut group = c.benchmark_group(group);
    for with_id in [false, true] {
        let label = if with_id { "incoming id" } else { "no id" };
        group.bench_function(BenchmarkId::new(name, label), |b| {
            b.to_async(runtime)
                .iter(|| async { black_box(app.get_response(request(with_id)).await) });
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let route = || Route::new().at("/", get(hello));

    bench_app(c, "poem", &runtime, "bare", route());
    bench_app(
        c,
        "poem",
        &runtime,
        "correlation",
        route().with(Correlation::default()),
    );
    bench_app(
        c,
        "poem",
        &runtime,
        "poem RequestId (reuse)",
        route().with(RequestId::default().reuse_id(ReuseId::Use)),
    );

    // A streaming body is the one case ours allocates for (the scoped body wrapper).
    let streaming = || Route::new().at("/", get(streamed));
    bench_app(c, "poem streaming body", &runtime, "bare", streaming());
    bench_app(
        c,
        "poem streaming body",
        &runtime,
        "correlation",
        streaming().with(Correlation::default()),
    );
}

#[allow(missing_docs, unreachable_pub)] // criterion's macro makes an undocumented `pub fn`
mod group {
    criterion::criterion_group!(poem_benches, super::benches);
}
criterion_main!(group::poem_benches);
