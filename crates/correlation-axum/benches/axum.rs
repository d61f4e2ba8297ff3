//! Time per request of every axum stack (`support/stacks.rs`) and case, with criterion:
//! the framework alone, with a no-op layer, with tower-http's `SetRequestIdLayer` +
//! `PropagateRequestIdLayer` (what axum users use today), with the floor (the least work
//! that does what our defaults promise, `support/floor.rs`) and with our
//! `CorrelationLayer`; each without and with an incoming `x-request-id`.
//!
//! Run with `cargo bench -p correlation-axum --bench axum`; `cargo xtask bench` puts the
//! results in `BENCHMARKS.md`.

use std::time::Duration;

use criterion::Criterion;

#[path = "support/floor.rs"]
mod floor;
#[path = "support/stacks.rs"]
mod stacks;

fn requests(c: &mut Criterion) {
    correlation_bench_support::time::<stacks::Axum>(c, "axum");
}

/// The group in a module of its own: the macro makes a public function, which needs no
/// documentation there.
mod harness {
    use super::*;

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = requests
    }
}

criterion::criterion_main!(harness::benches);
