//! Time per request of every poem stack (`support/stacks.rs`) and case, with criterion: the
//! framework alone, with a no-op middleware, with poem's own `RequestId` (what poem users
//! use today), with the floor (the least work that does what our defaults promise,
//! `support/floor.rs`) and with our `Correlation`; each without and with an incoming
//! `x-request-id`.
//!
//! Run with `cargo bench -p correlation-poem --bench poem`; `cargo xtask bench` puts the
//! results in `BENCHMARKS.md`.

use std::time::Duration;

use criterion::Criterion;

#[path = "support/floor.rs"]
mod floor;
#[path = "support/stacks.rs"]
mod stacks;

fn requests(c: &mut Criterion) {
    correlation_bench_support::time::<stacks::Poem>(c, "poem");
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
