//! What fields cost a request: a request that sets two fields and logs, against the same
//! request without fields, and one record with two fields against one without.
//!
//! Run with `cargo bench -p correlation-core --bench fields --features env-logger`; results
//! are recorded in `BENCHMARKS.md` at the repository root. Records go through our `log`
//! format and env_logger into `io::sink()`, so a record pays for its formatting as it
//! would in production, without a terminal's cost. Before timing, the bench counts the
//! heap allocations each case makes (`allocation-counter`) and prints them.

use std::hint::black_box;
use std::io;

use correlation_core::{CorrelationConfig, CorrelationContext, Fields, adapter};
use criterion::Criterion;
use log::{Level, Log, Record};

/// env_logger with our format into `io::sink()`.
fn backend() -> env_logger::Logger {
    env_logger::Builder::new()
        .format(correlation_core::format)
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Pipe(Box::new(io::sink())))
        .build()
}

/// Logs one `INFO` record through `logger`, as `log`'s macros do.
fn log_one(logger: &dyn Log, n: u64) {
    logger.log(
        &Record::builder()
            .level(Level::Info)
            .target("shop::checkout")
            .module_path_static(Some("shop::checkout"))
            .args(format_args!(
                "cart {n} priced with 3 items, total 42.50 EUR"
            ))
            .build(),
    );
}

/// A request's context with a fresh ID, as an adapter makes it.
fn request(config: &CorrelationConfig) -> CorrelationContext {
    adapter::request_context(config, config.generate().into())
}

/// One request: its context made and entered, `fields` set, one record logged.
fn serve(config: &CorrelationConfig, logger: &dyn Log, fields: &[(&str, &str)], n: u64) {
    let context = request(config);
    context.run(|| {
        for (key, value) in fields {
            black_box(Fields::insert(key, value));
        }
        log_one(logger, n);
    });
}

/// The allocations `work` makes, averaged over many runs.
fn allocations_per_run(mut work: impl FnMut(u64)) -> f64 {
    const RUNS: u32 = 1000;
    work(0);
    let made = allocation_counter::measure(|| {
        for n in 0..RUNS {
            work(n.into());
        }
    })
    .count_total;
    #[allow(clippy::cast_precision_loss)]
    let per_run = made as f64 / f64::from(RUNS);
    per_run
}

fn main() {
    let config = CorrelationConfig::default();
    let logger = backend();
    let two = [("tenant", "acme"), ("user", "alice")];

    let cases: [(&str, &[(&str, &str)]); 2] =
        [("request, no field", &[]), ("request, two fields", &two)];
    for (name, fields) in cases {
        let allocations = allocations_per_run(|n| serve(&config, &logger, fields, n));
        println!("fields/{name}: {allocations:.1} allocations per request");
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("fields");
    for (name, fields) in cases {
        group.bench_function(name, |b| {
            let mut n = 0;
            b.iter(|| {
                n += 1;
                serve(&config, &logger, fields, black_box(n));
            });
        });
    }
    for (name, fields) in cases {
        let record = name.replace("request", "record");
        let context = request(&config);
        context.run(|| {
            for (key, value) in fields {
                Fields::insert(key, value);
            }
        });
        group.bench_function(record, |b| {
            context.run(|| {
                let mut n = 0;
                b.iter(|| {
                    n += 1;
                    log_one(&logger, black_box(n));
                });
            });
        });
    }
    group.finish();
    criterion.final_summary();
}
