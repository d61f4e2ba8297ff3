//! Micro-benchmarks of the request path in `correlation-core`: ID generation,
//! validation, the accept / generate / replace decision, the task-local scope and (with
//! the `env-logger` feature) one line of the log format.
//!
//! Run with `cargo bench -p correlation-core --bench core`; results are recorded in
//! `BENCHMARKS.md` at the repository root. No logger is installed, so the warning of
//! the "replaced" decision costs only the level check, as with a disabled level.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use correlation_core::http::{HeaderMap, HeaderValue};
use correlation_core::strategy::{
    AnyUuid, HyphenatedUuidV4, IdGenerator, IdValidator, StrictUuidV4, UuidV4, UuidV7,
};
use correlation_core::{
    CorrelationConfig, CorrelationContext, CorrelationId, current, scope, sync_scope,
};
use criterion::Criterion;

const HYPHENATED: &str = "3758c31e-1177-4540-ba33-0109c405579a";
const SIMPLE: &str = "9e6454c421d54e4aa66ab28f15576414";
const INVALID: &str = "9e6454c4-21d5-4e4a-a66a-b28f15576414-1";

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.bench_function("UuidV4", |b| b.iter(|| UuidV4.generate()));
    group.bench_function("HyphenatedUuidV4", |b| {
        b.iter(|| HyphenatedUuidV4.generate())
    });
    group.bench_function("UuidV7", |b| b.iter(|| UuidV7.generate()));
    group.finish();
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    for (name, value) in [
        ("hyphenated", HYPHENATED),
        ("simple", SIMPLE),
        ("invalid", INVALID),
    ] {
        group.bench_function(format!("StrictUuidV4/{name}"), |b| {
            b.iter(|| StrictUuidV4.is_valid(black_box(value)))
        });
        group.bench_function(format!("AnyUuid/{name}"), |b| {
            b.iter(|| AnyUuid.is_valid(black_box(value)))
        });
    }
    group.finish();
}

fn decide(c: &mut Criterion) {
    let config = CorrelationConfig::default();
    let mut group = c.benchmark_group("decide");

    // Reference-counted bytes, like the header values hyper slices out of its buffer.
    let shared = Bytes::from(HYPHENATED.as_bytes().to_vec());
    drop(shared.clone()); // promote the `Vec` to a shared buffer once
    let mut accepted = HeaderMap::new();
    accepted.insert(
        "x-request-id",
        HeaderValue::from_maybe_shared(shared).unwrap(),
    );
    group.bench_function("accepted", |b| {
        b.iter(|| config.decide(black_box(&accepted)))
    });

    let absent = HeaderMap::new();
    group.bench_function("generated", |b| {
        b.iter(|| config.decide(black_box(&absent)))
    });

    let mut invalid = HeaderMap::new();
    invalid.insert("x-request-id", HeaderValue::from_static(INVALID));
    group.bench_function("replaced", |b| {
        b.iter(|| config.decide(black_box(&invalid)))
    });
    group.finish();
}

fn scope_round_trip(c: &mut Criterion) {
    let id = CorrelationId::from_static(HYPHENATED);
    let mut group = c.benchmark_group("scope");
    group.bench_function("sync_scope+current", |b| {
        b.iter(|| sync_scope(black_box(&id).clone(), current))
    });
    group.bench_function("scope(ready future)+current", |b| {
        let mut cx = Context::from_waker(Waker::noop());
        b.iter(|| {
            let mut future = pin!(scope(black_box(&id).clone(), async { current() }));
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(seen) => seen,
                Poll::Pending => unreachable!("the future is ready"),
            }
        })
    });
    group.bench_function("current (outside a scope)", |b| b.iter(current));
    // What an adapter pays to enter a request's context around a call: the ID is a
    // generated one (reference-counted bytes, as in production), not a static.
    let generated = UuidV4::new_id();
    let context = CorrelationContext::new(generated.clone());
    group.bench_function("run (a request's context)", |b| {
        b.iter(|| black_box(&context).run(|| black_box(1)))
    });
    group.bench_function("clone+drop of a generated id", |b| {
        b.iter(|| black_box(black_box(&generated).clone()))
    });
    group.finish();
}

/// One log line through `LogFormat` into a reused buffer, inside a request: a message with
/// nothing to escape (the common case), the same without escaping (the baseline), and a
/// message a client filled with line breaks and terminal escapes.
fn format(c: &mut Criterion) {
    #[cfg(feature = "env-logger")]
    {
        use correlation_core::LogFormat;

        let plain = "websocket received: hello from a well-behaved client, café 東京 #42";
        let controls =
            "websocket received: a\nINFO  [0123] app: forged\r\u{1b}[2K\u{1b}[31m\u{202e}";
        let mut group = c.benchmark_group("format");
        let mut buffer = Vec::with_capacity(256);
        let id = UuidV4::new_id();
        let mut line = |format: &LogFormat, message: &str| {
            buffer.clear();
            format
                .write(
                    &mut buffer,
                    &log::Record::builder()
                        .level(log::Level::Info)
                        .target("example_axum")
                        .args(format_args!("{message}"))
                        .build(),
                )
                .unwrap();
            buffer.len()
        };
        let escaped = LogFormat::new();
        let unescaped = LogFormat::new().unescaped();
        sync_scope(id, || {
            group.bench_function("plain message", |b| {
                b.iter(|| line(&escaped, black_box(plain)))
            });
            group.bench_function("plain message, unescaped", |b| {
                b.iter(|| line(&unescaped, black_box(plain)))
            });
            group.bench_function("message with controls", |b| {
                b.iter(|| line(&escaped, black_box(controls)))
            });
        });
        group.finish();
    }
    #[cfg(not(feature = "env-logger"))]
    let _ = c;
}

mod harness {
    use super::*;

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        targets = generation, validation, decide, scope_round_trip, format
    }
}

criterion::criterion_main!(harness::benches);
