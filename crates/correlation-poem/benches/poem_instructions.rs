//! Instructions and heap allocations per request of every poem stack
//! (`support/stacks.rs`), counted by gungraun: callgrind and DHAT over a batch of requests
//! after a warm-up, both limited to `batch` below.
//!
//! Run with `cargo bench -p correlation-poem --bench poem_instructions`; it needs valgrind
//! and `gungraun-runner` of the `gungraun` crate's version. `cargo xtask bench` divides the
//! counts by the batch's size for `BENCHMARKS.md`.

// gungraun's `main!` exits with its runner's status.
#![allow(clippy::exit)]

use std::hint::black_box;

use correlation_bench_support::{Stack, prepare};
use gungraun::{library_benchmark, library_benchmark_group, main};
use poem::Request;
use stacks::Poem;

#[path = "support/floor.rs"]
mod floor;
#[path = "support/stacks.rs"]
mod stacks;

/// The counted function and its group, in a module of their own: the macros make public
/// items, which need no documentation there.
mod counts {
    use super::*;

    #[library_benchmark]
    #[bench::bare_no_id(args = ("bare", false), setup = prepare)]
    #[bench::bare_with_id(args = ("bare", true), setup = prepare)]
    #[bench::no_op_no_id(args = ("no-op", false), setup = prepare)]
    #[bench::no_op_with_id(args = ("no-op", true), setup = prepare)]
    #[bench::peer_no_id(args = ("peer", false), setup = prepare)]
    #[bench::peer_with_id(args = ("peer", true), setup = prepare)]
    #[bench::floor_no_id(args = ("floor", false), setup = prepare)]
    #[bench::floor_with_id(args = ("floor", true), setup = prepare)]
    #[bench::ours_no_id(args = ("ours", false), setup = prepare)]
    #[bench::ours_with_id(args = ("ours", true), setup = prepare)]
    fn batch(prepared: (Poem, Vec<Request>)) -> Poem {
        let (stack, requests) = prepared;
        black_box(stack.serve(requests));
        stack
    }

    library_benchmark_group!(name = requests, benchmarks = batch);
}

use counts::requests;

main!(
    config = correlation_bench_support::instructions();
    library_benchmark_groups = requests
);
