//! `cargo xtask fuzz [--seconds N]`: builds the cargo-fuzz target in `fuzz/` (its own
//! workspace) and runs it for N seconds (default 60), starting from the seed corpus in
//! `fuzz/corpus/decide/`. New inputs go to `fuzz/target/corpus/decide/`, crashes to
//! `fuzz/artifacts/decide/`; the committed seeds are never written.
//!
//! cargo-fuzz works on stable Rust here with `--sanitizer none` (libFuzzer's coverage
//! instrumentation needs no nightly flag; AddressSanitizer would). Not part of CI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The fuzz target: core's decision and log formatter over arbitrary header bytes.
const TARGET: &str = "decide";

/// Builds the target and fuzzes it for `seconds`; fails on a crash.
pub(crate) fn run(sh: &Shell, seconds: u64) -> anyhow::Result<()> {
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
    let seeds = fuzz.join("corpus").join(TARGET);
    let work = fuzz.join("target").join("corpus").join(TARGET);
    sh.create_dir(&work)?;
    let _dir = sh.push_dir(&fuzz);
    cmd!(sh, "cargo fuzz build --sanitizer none {TARGET}").run()?;

    eprintln!("xtask: fuzzing `{TARGET}` for {seconds} s");
    let started = Instant::now();
    let mut fuzzer = Command::new("cargo")
        .current_dir(&fuzz)
        .args(["fuzz", "run", "--sanitizer", "none", TARGET])
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
            "the fuzzer found a crash after {:.0?} ({status}); the input is in fuzz/artifacts/{TARGET}/",
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
