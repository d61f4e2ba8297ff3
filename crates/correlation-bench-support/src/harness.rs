//! The bench modes the adapter benches share beside criterion.

/// The name a bench gives its floor middleware's stack (see [`crate::floor`]).
pub const FLOOR_STACK: &str = "floor";

/// What an adapter bench binary was asked to do, read from its environment: the two
/// modes beside criterion that the adapter benches share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchMode {
    /// `CORRELATION_PROFILE=<stack>/<case>` (case `with-id`, the default, or `no-id`):
    /// send `requests` requests (`CORRELATION_PROFILE_REQUESTS`, default 10 000) through
    /// one stack, for a profiler.
    Profile {
        /// The stack's name.
        stack: String,
        /// Whether requests carry a valid incoming ID.
        with_id: bool,
        /// How many requests to send.
        requests: u32,
    },
    /// `CORRELATION_INTERLEAVED_ROUNDS=<n>`: time all stacks in `n` interleaved rounds
    /// (see [`interleaved_rounds`]).
    Interleaved {
        /// The number of rounds.
        rounds: usize,
    },
    /// Neither variable set: run criterion.
    Criterion,
}

impl BenchMode {
    /// Reads the mode from the environment.
    ///
    /// # Panics
    ///
    /// If `CORRELATION_INTERLEAVED_ROUNDS` is not a number: a bench run that cannot do
    /// what it was asked should stop, not fall back to another mode.
    pub fn from_env() -> Self {
        if let Ok(target) = std::env::var("CORRELATION_PROFILE") {
            let (stack, case) = target.split_once('/').unwrap_or((&target, "with-id"));
            let requests = std::env::var("CORRELATION_PROFILE_REQUESTS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000);
            return Self::Profile {
                stack: stack.to_owned(),
                with_id: case == "with-id",
                requests,
            };
        }
        match std::env::var("CORRELATION_INTERLEAVED_ROUNDS") {
            Ok(rounds) => Self::Interleaved {
                rounds: rounds.parse().expect("a number of rounds"),
            },
            Err(_) => Self::Criterion,
        }
    }
}

/// Times every `stack` × `case` pair in interleaved rounds and prints, per pair, the
/// fastest and the median round in nanoseconds per request.
///
/// `run_batch(stack, case)` serves one batch of requests through stack number `stack` for
/// case number `case` and returns how many it served. Round 0 only warms up. On a machine
/// shared with other work, the fastest of many short interleaved rounds is far steadier
/// than one long run per stack, since interference hits every stack alike.
pub fn interleaved_rounds(
    stacks: &[&str],
    cases: &[&str],
    rounds: usize,
    mut run_batch: impl FnMut(usize, usize) -> u32,
) {
    let mut samples = vec![Vec::with_capacity(rounds); stacks.len() * cases.len()];
    for round in 0..=rounds {
        for stack in 0..stacks.len() {
            for case in 0..cases.len() {
                let start = std::time::Instant::now();
                let served = run_batch(stack, case).max(1);
                let per_request = start.elapsed().as_nanos() as f64 / f64::from(served);
                if round > 0 {
                    samples[stack * cases.len() + case].push(per_request);
                }
            }
        }
    }
    println!("stack/case: fastest round, median round (ns per request)");
    for (stack, stack_name) in stacks.iter().enumerate() {
        for (case, case_name) in cases.iter().enumerate() {
            let mut times = samples[stack * cases.len() + case].clone();
            times.sort_by(f64::total_cmp);
            match (times.first(), times.get(times.len() / 2)) {
                (Some(fastest), Some(median)) => {
                    println!("{stack_name}/{case_name}: {fastest:.0}, {median:.0}");
                }
                _ => println!("{stack_name}/{case_name}: no rounds"),
            }
        }
    }
    print_paired_overheads(stacks, cases, &samples);
}

/// Prints, per case, each stack's overhead over the first stack and, for each stack
/// whose name starts with `correlation`, the ratio of its overhead to that of the stack
/// listed right after it (its peer) and, for the stack named `correlation`, to that of the
/// stack named [`FLOOR_STACK`], as medians
/// of per-round values: pairing the stacks
/// of one round cancels the drift between rounds (a machine that changes speed), which
/// a ratio of separate medians keeps.
fn print_paired_overheads(stacks: &[&str], cases: &[&str], samples: &[Vec<f64>]) {
    if stacks.len() < 2 {
        return;
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let at = |stack: usize, case: usize| &samples[stack * cases.len() + case];
    println!("paired per round (medians): overhead over {}", stacks[0]);
    for (case, case_name) in cases.iter().enumerate() {
        for (stack, stack_name) in stacks.iter().enumerate().skip(1) {
            let overheads = at(stack, case)
                .iter()
                .zip(at(0, case))
                .map(|(time, base)| time - base)
                .collect();
            println!("{stack_name}/{case_name}: {:.0} ns", median(overheads));
        }
        let floor = stacks.iter().position(|name| *name == FLOOR_STACK);
        let pairs = stacks.iter().zip(stacks.iter().skip(1)).enumerate();
        for (ours, (ours_name, peer_name)) in pairs.skip(1) {
            if !ours_name.starts_with("correlation") {
                continue;
            }
            let mut references = vec![(ours + 1, *peer_name)];
            if let Some(floor) =
                floor.filter(|floor| *floor != ours + 1 && *ours_name == "correlation")
            {
                references.push((floor, FLOOR_STACK));
            }
            for (reference, reference_name) in references {
                let ratios = at(ours, case)
                    .iter()
                    .zip(at(reference, case))
                    .zip(at(0, case))
                    .map(|((ours, other), base)| (ours - base) / (other - base))
                    .collect();
                println!(
                    "{ours_name}÷{reference_name}/{case_name}: {:.2}",
                    median(ratios)
                );
            }
        }
    }
}
