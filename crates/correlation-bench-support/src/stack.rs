//! What the adapter benches share: the stacks they measure, criterion's timing of each, and
//! the setup and configuration of gungraun's counts.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use gungraun::{Dhat, LibraryBenchmarkConfig};

/// The stacks every adapter bench measures, by name: the framework alone, with a
/// middleware that only passes the request on, with the crate its users use today, with
/// the floor ([`crate::floor`]) and with ours.
pub const STACKS: [&str; 5] = ["bare", "no-op", "peer", "floor", "ours"];

/// The cases, by name: requests without an `x-request-id`, so every middleware makes
/// one, and requests with [`INCOMING_ID`], which every middleware keeps.
pub const CASES: [(&str, bool); 2] = [("no-id", false), ("with-id", true)];

/// A valid UUID v4, which every middleware measured keeps.
pub const INCOMING_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

/// Requests in each batch that gungraun counts.
pub const REQUESTS: usize = 1_000;

/// Requests served before a count starts: lazy initialisation is not a cost per request.
const WARM_UP: usize = 100;

/// One stack of one framework, answering requests in-process (no sockets) on a
/// current-thread runtime of its own.
pub trait Stack {
    /// A request as the framework's server hands it to the application.
    type Request;

    /// Stack `name` (one of [`STACKS`]), after checking that it answers and that, unless
    /// it is `bare` or `no-op`, it echoes the incoming ID or a new one: a benchmark of
    /// something that does not work would mean nothing.
    fn new(name: &str) -> Self;

    /// `count` requests as a client sends them: `GET /` with a `Host` header and, if
    /// `with_id`, [`INCOMING_ID`] over reference-counted bytes, as servers parse it.
    fn requests(&self, with_id: bool, count: usize) -> Vec<Self::Request>;

    /// Answers `requests` one after the other, reading each body to its end as the
    /// framework's server does, and returns the bytes read.
    fn serve(&self, requests: Vec<Self::Request>) -> usize;
}

/// Times every stack and case with criterion, in a group named `framework`: each
/// iteration answers one request built beforehand.
pub fn time<S: Stack>(c: &mut Criterion, framework: &str) {
    let mut group = c.benchmark_group(framework);
    for name in STACKS {
        let stack = S::new(name);
        for (case, with_id) in CASES {
            group.bench_function(BenchmarkId::new(name, case), |b| {
                b.iter_custom(|iterations| {
                    let requests = stack.requests(with_id, iterations as usize);
                    let start = Instant::now();
                    black_box(stack.serve(requests));
                    start.elapsed()
                });
            });
        }
    }
    group.finish();
}

/// gungraun's setup of one count: stack `name` warmed up, and [`REQUESTS`] requests of
/// the case to send it.
pub fn prepare<S: Stack>(name: &str, with_id: bool) -> (S, Vec<S::Request>) {
    let stack = S::new(name);
    black_box(stack.serve(stack.requests(with_id, WARM_UP)));
    let requests = stack.requests(with_id, REQUESTS);
    (stack, requests)
}

/// gungraun's configuration of the adapter benches: callgrind counts instructions, DHAT
/// counts the heap blocks allocated. DHAT counts a block only if its recorded stack reaches
/// the counted function, so it records whole stacks: a framework's allocations sit deeper
/// than valgrind's default of 12 frames.
///
/// `cargo test --all-targets` runs every bench target too, without the `--bench` argument
/// that `cargo bench` passes; gungraun would then look for its runner, which only
/// `cargo bench` needs. There the process stops here: the criterion bench of the same
/// stacks checks them under `cargo test`.
#[expect(clippy::exit, reason = "the harness, not a test, is what must not run")]
pub fn instructions() -> LibraryBenchmarkConfig {
    if !std::env::args().any(|argument| argument == "--bench") {
        eprintln!("instruction counts run under `cargo bench` only");
        std::process::exit(0);
    }
    let mut config = LibraryBenchmarkConfig::default();
    config.tool(Dhat::with_args(["--num-callers=500"]));
    config
}
