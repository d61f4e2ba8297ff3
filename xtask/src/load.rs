//! `cargo xtask load [--rounds N] [--seconds S] [--connections C]`: the axum demo (release
//! build) bare (`CORRELATION_DEMO_BARE=1`) and with our layer, side by side on 127.0.0.1,
//! under the same keep-alive load in alternating runs; prints requests per second of
//! each run and our difference from bare. Not part of CI.
//!
//! The load: C connections (default 64), one client thread each, `GET /` back to back,
//! half the connections sending a valid UUID v4 (the accepted path), half none (the
//! generated path). Each run warms up for one second, then counts for S seconds (default
//! 5), and stops early after [`MAX_REQUESTS_PER_RUN`] requests. The servers log at
//! `warn`, so neither writes a line per request: the figure is the middleware's cost.
//!
//! On a shared machine throughput swings with whatever else runs, so the report also
//! gives each round's paired difference (bare and ours back to back) and the server's
//! CPU time per request (user + system, from `/proc/<pid>/stat`), which other load
//! disturbs much less than requests per second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::client::{Connection, Response};
use crate::server::{Framework, Output, Profile, Server};

/// The most requests one run sends, warm-up included.
const MAX_REQUESTS_PER_RUN: u64 = 20_000_000;

/// The warm-up of every run, not counted.
const WARM_UP: Duration = Duration::from_secs(1);

/// The valid ID half of the connections send.
const VALID_ID: &[u8] = b"3758c31e-1177-4540-ba33-0109c405579a";

/// The load test's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Runs of each variant.
    pub(crate) rounds: u64,
    /// Counted seconds of each run.
    pub(crate) seconds: u64,
    /// Keep-alive connections, one client thread each.
    pub(crate) connections: u64,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            rounds: 5,
            seconds: 5,
            connections: 64,
        }
    }
}

/// The two servers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Bare,
    Ours,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Ours => "ours",
        }
    }
}

impl Load {
    /// Builds the axum demo in release, starts both variants and runs the rounds.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        if self.rounds == 0 || self.seconds == 0 || self.connections == 0 {
            bail!("--rounds, --seconds and --connections must be at least 1");
        }
        crate::server::build(sh, &[Framework::Axum], Profile::Release)?;
        let quiet = ("RUST_LOG", "warn");
        let bare = Server::start(
            Framework::Axum,
            Profile::Release,
            &[quiet, ("CORRELATION_DEMO_BARE", "1")],
            Output::Discard,
        )?;
        let ours = Server::start(Framework::Axum, Profile::Release, &[quiet], Output::Discard)?;
        check_variant(bare.addr(), Variant::Bare)?;
        check_variant(ours.addr(), Variant::Ours)?;
        eprintln!(
            "xtask: load: {} rounds of {} s per variant, {} keep-alive connections, GET /, \
             bare on {} and ours on {}",
            self.rounds,
            self.seconds,
            self.connections,
            bare.addr(),
            ours.addr()
        );
        let ticks = clock_ticks(sh);
        let load_before = load_average();
        let mut results: Vec<Run> = Vec::new();
        for round in 0..self.rounds {
            // Alternate which variant goes first, so neither always runs on a warmer machine.
            let order = if round % 2 == 0 {
                [(Variant::Bare, &bare), (Variant::Ours, &ours)]
            } else {
                [(Variant::Ours, &ours), (Variant::Bare, &bare)]
            };
            for (variant, server) in order {
                let run = self.drive(server, variant, round, ticks)?;
                eprintln!(
                    "xtask: load: round {} {:<4} {:>8.0} requests/s, server CPU {:.1} µs/request",
                    round + 1,
                    variant.name(),
                    run.rps,
                    run.cpu_us
                );
                results.push(run);
            }
        }
        drop((bare, ours));
        report(&results);
        println!(
            "Load average (1 min) before the runs: {load_before} on {} cores: other work \
             competing with client and server (the runs' own threads raise it afterwards).",
            thread::available_parallelism().map_or(0, usize::from)
        );
        Ok(())
    }

    /// One run against `server`: requests per second and server CPU time per request
    /// over the counted window.
    fn drive(
        &self,
        server: &Server,
        variant: Variant,
        round: u64,
        ticks: f64,
    ) -> anyhow::Result<Run> {
        let addr = server.addr();
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..self.connections)
            .map(|n| {
                let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
                let id = (n % 2 == 0).then_some(VALID_ID);
                thread::spawn(move || client(addr, variant, id, &done, &stop))
            })
            .collect();
        thread::sleep(WARM_UP);
        let start_cpu = cpu_ticks(server.pid())?;
        let (start_count, started) = (done.load(Ordering::Relaxed), Instant::now());
        let window = Duration::from_secs(self.seconds);
        while started.elapsed() < window && done.load(Ordering::Relaxed) < MAX_REQUESTS_PER_RUN {
            thread::sleep(Duration::from_millis(20));
        }
        let (end_count, elapsed) = (done.load(Ordering::Relaxed), started.elapsed());
        let end_cpu = cpu_ticks(server.pid())?;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            match client.join() {
                Ok(result) => result?,
                Err(_) => bail!("a load client thread panicked"),
            }
        }
        let requests = (end_count - start_count).max(1) as f64;
        Ok(Run {
            variant,
            round,
            rps: requests / elapsed.as_secs_f64(),
            cpu_us: (end_cpu - start_cpu) as f64 / ticks * 1e6 / requests,
        })
    }
}

/// One keep-alive connection sending `GET /` until told to stop.
fn client(
    addr: SocketAddr,
    variant: Variant,
    id: Option<&[u8]>,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut connection = Connection::open(addr)?;
    let mut response = Response::default();
    while !stop.load(Ordering::Relaxed) && done.load(Ordering::Relaxed) < MAX_REQUESTS_PER_RUN {
        connection.get("/", id, &mut response)?;
        if response.status != 200 || response.request_ids.len() != expected_ids(variant) {
            bail!(
                "{}: status {} with {} x-request-id headers",
                variant.name(),
                response.status,
                response.request_ids.len()
            );
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Bare answers without a correlation header; ours with exactly one.
fn expected_ids(variant: Variant) -> usize {
    match variant {
        Variant::Bare => 0,
        Variant::Ours => 1,
    }
}

/// Checks that each server is the variant it should be before measuring it.
fn check_variant(addr: SocketAddr, variant: Variant) -> anyhow::Result<()> {
    let mut connection = Connection::open(addr)?;
    let mut response = Response::default();
    connection.get("/", Some(VALID_ID), &mut response)?;
    let ids = response.request_ids.len();
    if response.status != 200 || ids != expected_ids(variant) {
        bail!(
            "the {} server answered {} with {ids} x-request-id headers",
            variant.name(),
            response.status
        );
    }
    if variant == Variant::Ours && response.request_ids[0] != VALID_ID {
        bail!("our server did not echo the valid ID");
    }
    Ok(())
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Run {
    variant: Variant,
    round: u64,
    rps: f64,
    cpu_us: f64,
}

/// The server's CPU time so far (user + system, all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {} in /proc/{pid}/stat", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// The 1-minute load average, from `/proc/loadavg` (other work competing for the cores).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|avg| avg.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
fn clock_ticks(sh: &Shell) -> f64 {
    cmd!(sh, "getconf CLK_TCK")
        .quiet()
        .read()
        .ok()
        .and_then(|ticks| ticks.trim().parse().ok())
        .unwrap_or(100.0)
}

fn report(results: &[Run]) {
    let diff = |ours: f64, bare: f64| (ours - bare) / bare * 100.0;
    println!(
        "\n| round | bare requests/s | ours requests/s | ours vs bare | bare CPU µs/request | ours CPU µs/request |"
    );
    println!("|---|---|---|---|---|---|");
    let rounds = results
        .iter()
        .map(|run| run.round)
        .max()
        .map_or(0, |r| r + 1);
    let mut paired = Vec::new();
    for round in 0..rounds {
        let find = |variant| {
            results
                .iter()
                .find(|run| run.round == round && run.variant == variant)
        };
        let (Some(bare), Some(ours)) = (find(Variant::Bare), find(Variant::Ours)) else {
            continue;
        };
        paired.push(diff(ours.rps, bare.rps));
        println!(
            "| {} | {:.0} | {:.0} | {:+.1} % | {:.1} | {:.1} |",
            round + 1,
            bare.rps,
            ours.rps,
            diff(ours.rps, bare.rps),
            bare.cpu_us,
            ours.cpu_us
        );
    }
    let of = |variant, value: fn(&Run) -> f64| -> Vec<f64> {
        results
            .iter()
            .filter(|run| run.variant == variant)
            .map(value)
            .collect()
    };
    let rps = |run: &Run| run.rps;
    let cpu = |run: &Run| run.cpu_us;
    let (bare_rps, ours_rps) = (
        median(&of(Variant::Bare, rps)),
        median(&of(Variant::Ours, rps)),
    );
    let (bare_cpu, ours_cpu) = (
        median(&of(Variant::Bare, cpu)),
        median(&of(Variant::Ours, cpu)),
    );
    let median_paired = median(&paired);
    println!(
        "| median | {bare_rps:.0} | {ours_rps:.0} | {median_paired:+.1} % (paired) | {bare_cpu:.1} | {ours_cpu:.1} |"
    );
    println!(
        "\nours vs bare: requests/s {:+.1} % (medians), {median_paired:+.1} % (median of the paired rounds); \
         server CPU per request {:+.1} %. Target: within 3 % of bare in requests/s: {}.",
        diff(ours_rps, bare_rps),
        diff(ours_cpu, bare_cpu),
        if median_paired >= -3.0 {
            "met"
        } else {
            "not met"
        }
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
