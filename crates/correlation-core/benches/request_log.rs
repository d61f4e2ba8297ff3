//! What one log record costs with the `request-log` feature: written as usual, left out
//! below the level outside any request, kept in a request's buffer, and written out when
//! the request fails.
//!
//! Run with `cargo bench -p correlation-core --bench request_log --features request-log,env-logger,tracing`;
//! results are recorded in `BENCHMARKS.md` at the repository root. Every `log` record
//! goes through our `log` format, through env_logger, into `io::sink()`, and every
//! `tracing` event through `tracing-subscriber`'s fmt layer into `io::sink()`, so a written
//! record pays for its formatting as it would in production, without a terminal's cost.

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use correlation_core::adapter;
use correlation_core::request_log::{LogBuffer, RequestFilter, RequestLogger};
use correlation_core::{CorrelationConfig, CorrelationContext};
use criterion::Criterion;
use log::{Level, Log, Record};

/// Records a failing request keeps before its `ERROR`, in the flush bench.
const KEPT_BEFORE_FAILURE: u32 = 100;

/// env_logger with our format into `io::sink()`, letting every record through, as
/// `RequestLogger` wants its backend.
fn backend() -> env_logger::Logger {
    env_logger::Builder::new()
        .format(correlation_core::format)
        .filter_level(log::LevelFilter::Trace)
        .target(env_logger::Target::Pipe(Box::new(io::sink())))
        .build()
}

/// Logs one record at `level` through `logger`, as `log`'s macros do once the level
/// passes `log::max_level`.
fn log_at(logger: &dyn Log, level: Level, n: u64) {
    logger.log(
        &Record::builder()
            .level(level)
            .target("shop::checkout")
            .module_path_static(Some("shop::checkout"))
            .file_static(Some("src/checkout.rs"))
            .line(Some(42))
            .args(format_args!(
                "cart {n} priced with 3 items, total 42.50 EUR"
            ))
            .build(),
    );
}

/// A request's context under `config`, with a fresh ID.
fn request(config: &CorrelationConfig) -> CorrelationContext {
    adapter::request_context(config, config.generate().into())
}

/// The time `records` records kept take: each sample's requests start empty, so what is
/// timed is pushing into a buffer below its bound, as a request that logs fewer records
/// than the bound does.
fn time_kept(config: &CorrelationConfig, records: u64, debug: &dyn Fn(u64)) -> Duration {
    let mut timed = Duration::ZERO;
    let mut logged = 0;
    while logged < records {
        let context = request(config);
        let batch = (records - logged).min(u64::from(KEPT_BEFORE_FAILURE));
        context.run(|| {
            let start = Instant::now();
            for n in 0..batch {
                debug(black_box(n));
            }
            timed += start.elapsed();
        });
        logged += batch;
    }
    timed
}

/// The time `records` records written out of failing requests take: each request keeps
/// its records, then fails with an `ERROR`; what is timed is the `ERROR` that writes the
/// kept records and itself, per record written, scaled to `records`.
fn time_written_out(
    config: &CorrelationConfig,
    records: u64,
    debug: &dyn Fn(u64),
    error: &dyn Fn(),
) -> Duration {
    let mut timed = Duration::ZERO;
    let records_per_failure = u64::from(KEPT_BEFORE_FAILURE) + 1;
    let failures = records.div_ceil(records_per_failure);
    for _ in 0..failures {
        let context = request(config);
        context.run(|| {
            for n in 0..u64::from(KEPT_BEFORE_FAILURE) {
                debug(n);
            }
            let start = Instant::now();
            error();
            timed += start.elapsed();
        });
    }
    timed.mul_f64(records as f64 / (failures * records_per_failure) as f64)
}

fn per_record(c: &mut Criterion) {
    let config = CorrelationConfig::builder()
        .log_buffer(LogBuffer::new())
        .build()
        .expect("the bench configuration is valid");
    let plain = backend();
    let logger = RequestLogger::new(backend()).parse_filters("info");
    let mut group = c.benchmark_group("request_log");

    // The baseline: env_logger alone, no request.
    group.bench_function("written, env_logger alone", |b| {
        b.iter(|| log_at(&plain, Level::Info, black_box(1)))
    });
    group.bench_function("written, outside a request", |b| {
        b.iter(|| log_at(&logger, Level::Info, black_box(1)))
    });
    let ok = request(&config);
    group.bench_function("written, inside a request", |b| {
        ok.run(|| b.iter(|| log_at(&logger, Level::Info, black_box(1))))
    });
    group.bench_function("below the level, outside a request", |b| {
        b.iter(|| log_at(&logger, Level::Debug, black_box(1)))
    });

    let debug = |n: u64| log_at(&logger, Level::Debug, n);
    let error = || log_at(&logger, Level::Error, 0);
    group.bench_function("kept in the request's buffer", |b| {
        b.iter_custom(|records| time_kept(&config, records, &debug))
    });
    group.bench_function("written out when the request fails", |b| {
        b.iter_custom(|records| time_written_out(&config, records, &debug, &error))
    });
    group.finish();
}

/// The same figures for `tracing` events through a fmt layer with `RequestFilter` and its
/// writer, against a fmt layer filtered at `INFO` alone.
fn per_event(c: &mut Criterion) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;

    let config = CorrelationConfig::builder()
        .log_buffer(LogBuffer::new())
        .build()
        .expect("the bench configuration is valid");
    let plain = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(io::sink)
            .with_filter(LevelFilter::INFO),
    );
    let filter = RequestFilter::new(&config).parse_filters("info");
    let ours = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(filter.writer(io::sink))
            .with_filter(filter),
    );
    let event = |n: u64| tracing::info!(n, "cart priced with 3 items, total 42.50 EUR");
    let debug = |n: u64| tracing::debug!(n, "cart priced with 3 items, total 42.50 EUR");
    let error = |n: u64| tracing::error!(n, "cart priced with 3 items, total 42.50 EUR");
    let mut group = c.benchmark_group("request_log_tracing");

    tracing::subscriber::with_default(plain, || {
        group.bench_function("written, fmt layer alone", |b| {
            b.iter(|| event(black_box(1)))
        });
    });
    tracing::subscriber::with_default(ours, || {
        group.bench_function("written, outside a request", |b| {
            b.iter(|| event(black_box(1)))
        });
        let ok = request(&config);
        group.bench_function("written, inside a request", |b| {
            ok.run(|| b.iter(|| event(black_box(1))))
        });
        group.bench_function("below the level, outside a request", |b| {
            b.iter(|| debug(black_box(1)))
        });
        group.bench_function("kept in the request's buffer", |b| {
            b.iter_custom(|events| time_kept(&config, events, &debug))
        });
        group.bench_function("written out when the request fails", |b| {
            b.iter_custom(|events| time_written_out(&config, events, &debug, &|| error(0)))
        });
    });
    group.finish();
}

mod harness {
    use super::*;

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        targets = per_record, per_event
    }
}

criterion::criterion_main!(harness::benches);
