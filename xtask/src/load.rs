//! `cargo xtask load [--rounds N] [--seconds S] [--connections C]`: the axum demo (release
//! build) bare (`CORRELATION_DEMO_BARE=1`) and with our layer, side by side on 127.0.0.1,
//! under the same keep-alive load in alternating runs; prints requests per second of
//! each run and our difference from bare. Not part of CI.
//!
//! The load comes from `wrk` (Debian's package, installed with `apt-get` when missing):
//! C keep-alive connections (default 64) on two threads, `GET /` back to back, every
//! other request with a valid UUID v4 (the accepted path), the rest with none (the
//! generated path). Each run warms up for one second, then counts for S seconds (default
//! 5). The servers log at `warn`, so neither writes a line per request: the figure is
//! the middleware's cost.
//!
//! On a shared machine throughput swings with whatever else runs, so the report also
//! gives each round's paired difference (bare and ours back to back) and the server's
//! CPU time per request (user + system, from `/proc/<pid>/stat`), which other load
//! disturbs much less than requests per second.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::server::{Framework, Output, Profile, Server};

/// The warm-up of every run, not counted.
const WARM_UP_SECONDS: u64 = 1;

/// The valid ID every other request sends.
const VALID_ID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

/// The load test's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Runs of each variant.
    pub(crate) rounds: u64,
    /// Counted seconds of each run.
    pub(crate) seconds: u64,
    /// Keep-alive connections.
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
        ensure_wrk(sh)?;
        crate::server::build(sh, &[Framework::Axum], Profile::Release)?;
        let script = sh.create_temp_dir()?;
        let script = script.path().join("half-with-id.lua");
        std::fs::write(&script, wrk_script())?;
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
                let run = self.drive(sh, &script, server, variant, round, ticks)?;
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

    /// One run against `server`: a warm-up, then requests per second and server CPU time
    /// per request over the counted window.
    fn drive(
        &self,
        sh: &Shell,
        script: &Path,
        server: &Server,
        variant: Variant,
        round: u64,
        ticks: f64,
    ) -> anyhow::Result<Run> {
        let url = format!("http://{}/", server.addr());
        let connections = self.connections.to_string();
        let threads = self.connections.min(2).to_string();
        let wrk = |seconds: u64| {
            let duration = format!("{seconds}s");
            cmd!(
                sh,
                "wrk --threads {threads} --connections {connections} --duration {duration} --script {script} {url}"
            )
            .quiet()
            .read()
        };
        wrk(WARM_UP_SECONDS)?;
        let start_cpu = cpu_ticks(server.pid())?;
        let output = wrk(self.seconds)?;
        let end_cpu = cpu_ticks(server.pid())?;
        let summary = WrkSummary::parse(&output)?;
        if summary.failures > 0 {
            bail!(
                "{}: wrk saw {} errors or non-2xx responses:\n{output}",
                variant.name(),
                summary.failures
            );
        }
        let requests = summary.requests.max(1) as f64;
        Ok(Run {
            variant,
            round,
            rps: summary.requests_per_second,
            cpu_us: (end_cpu - start_cpu) as f64 / ticks * 1e6 / requests,
        })
    }
}

/// Installs Debian's `wrk` when it is not on the `PATH`.
fn ensure_wrk(sh: &Shell) -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: load: installing wrk (apt-get install -y wrk)");
    cmd!(sh, "apt-get install -y wrk")
        .run()
        .context("installing wrk failed: install Debian's `wrk` package")?;
    Ok(())
}

/// A `wrk` script sending every other request with the valid ID.
fn wrk_script() -> String {
    format!(
        r#"-- Every other request carries a valid ID (accepted), the rest none (generated).
local with_id = wrk.format("GET", "/", {{ ["x-request-id"] = "{VALID_ID}" }})
local without_id = wrk.format("GET", "/")
local sent = 0
request = function()
  sent = sent + 1
  if sent % 2 == 0 then return with_id end
  return without_id
end
"#
    )
}

/// What `wrk` printed that the report needs.
#[derive(Debug, PartialEq)]
struct WrkSummary {
    requests: u64,
    requests_per_second: f64,
    /// Socket errors and non-2xx/3xx responses.
    failures: u64,
}

impl WrkSummary {
    fn parse(output: &str) -> anyhow::Result<Self> {
        let requests = output
            .lines()
            .find_map(|line| line.trim().split_once(" requests in "))
            .and_then(|(count, _)| count.trim().parse().ok())
            .with_context(|| format!("no request count in wrk's output:\n{output}"))?;
        let requests_per_second = output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
            .and_then(|rate| rate.trim().parse().ok())
            .with_context(|| format!("no Requests/sec in wrk's output:\n{output}"))?;
        let mut failures = 0;
        for line in output.lines().map(str::trim) {
            if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
                failures += count.trim().parse::<u64>().unwrap_or(1);
            }
            if let Some(errors) = line.strip_prefix("Socket errors:") {
                failures += errors
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
        Ok(Self {
            requests,
            requests_per_second,
            failures,
        })
    }
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
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .get(format!("http://{addr}/"))
        .header("x-request-id", VALID_ID)
        .send()?;
    let ids: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
    if response.status() != reqwest::StatusCode::OK || ids.len() != expected_ids(variant) {
        bail!(
            "the {} server answered {} with {} x-request-id headers",
            variant.name(),
            response.status(),
            ids.len()
        );
    }
    if variant == Variant::Ours && ids[0] != VALID_ID {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_summaries() {
        let output = "Running 5s test @ http://127.0.0.1:1/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  310.00us   9.00ms   80.00%
    Req/Sec    31.20k     1.10k   33.00k    70.00%
  310480 requests in 5.00s, 41.16MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  62096.00
Transfer/sec:      8.23MB
";
        assert_eq!(
            WrkSummary::parse(output).unwrap(),
            WrkSummary {
                requests: 310_480,
                requests_per_second: 62_096.0,
                failures: 7,
            }
        );
        assert!(WrkSummary::parse("nothing").is_err());
    }
}
