//! `cargo xtask fuzz [--seconds N]`: builds each cargo-fuzz target in `fuzz/` (its own
//! workspace) and runs it for N seconds (default 60), starting from the seed corpus in
//! `fuzz/corpus/<target>/`. New inputs go to `fuzz/target/corpus/<target>/`, crashes to
//! `fuzz/artifacts/<target>/`; the committed seeds are never written.
//!
//! cargo-fuzz works on stable Rust here with `--sanitizer none` (libFuzzer's coverage
//! instrumentation needs no nightly flag; AddressSanitizer would). Not part of CI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The fuzz targets: core's decision and log formatter over arbitrary header bytes
/// (`decide`), and incoming and outgoing W3C baggage (`baggage`).
const TARGETS: [&str; 2] = ["decide", "baggage"];

/// Builds each target and fuzzes it for `seconds`; fails on the first crash.
pub(crate) fn run(sh: &Shell, seconds: u64) -> anyhow::Result<()> {
    for target in TARGETS {
        run_target(sh, target, seconds)?;
    }
    Ok(())
}

/// Builds `target` and fuzzes it for `seconds`; fails on a crash.
fn run_target(sh: &Shell, target: &str, seconds: u64) -> anyhow::Result<()> {
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!(
            "cargo-fuzz is not installed: run `cargo install cargo-fuzz` (stable Rust is enough)"
        );
    }
    let fuzz = crate::project_root().join("fuzz");
    let seeds = fuzz.join("corpus").join(target);
    let work = fuzz.join("target").join("corpus").join(target);
    sh.create_dir(&work)?;
    let _dir = sh.push_dir(&fuzz);
    cmd!(sh, "cargo fuzz build --sanitizer none {target}").run()?;

    eprintln!("xtask: fuzzing `{target}` for {seconds} s");
    let started = Instant::now();
    let mut fuzzer = Command::new("cargo")
        .current_dir(&fuzz)
        .args(["fuzz", "run", "--sanitizer", "none", target])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(["-max_len=4096", "-timeout=10", "-print_final_stats=1"])
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo fuzz run")?;
    // libFuzzer reports on stderr: pass it through and keep the final statistics.
    let mut stats = Vec::new();
    if let Some(stderr) = fuzzer.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.starts_with("stat::") {
                stats.push(line);
            }
        }
    }
    let status = fuzzer.wait()?;
    let stat = |name: &str| {
        stats
            .iter()
            .find_map(|line| line.strip_prefix(&format!("stat::{name}:")))
            .map_or("?", str::trim)
            .to_owned()
    };
    if !status.success() {
        bail!(
            "the fuzzer found a crash after {:.0?} ({status}); the input is in fuzz/artifacts/{target}/",
            started.elapsed()
        );
    }
    eprintln!(
        "xtask: fuzz ok: {} executions ({} per second) in {:.0?}, {} new inputs, peak RSS {} MB, no crash",
        stat("number_of_executed_units"),
        stat("average_exec_per_sec"),
        started.elapsed(),
        stat("new_units_added"),
        stat("peak_rss_mb"),
    );
    Ok(())
}
