//! Developer tasks for the correlation workspace, run as `cargo xtask <task>`.
//!
//! - `cargo xtask ci`: everything CI checks (format, clippy, tests, doc tests, the
//!   documents' examples in `ecosystem/docs-*`, docs, the browser check, tidy).
//! - `cargo xtask demo [axum|actix|poem]`: starts a demo server, sends it a handful of
//!   concurrent requests and prints its log lines grouped by correlation ID.
//! - `cargo xtask bench [--quick]`: times every adapter stack with criterion, counts its
//!   instructions and allocations with gungraun, and regenerates the tables in
//!   `BENCHMARKS.md`.
//! - `cargo xtask package`: packages the published crates and builds them with the minimum
//!   supported Rust version on the dependency versions it resolves (also a `ci` step).
//! - `cargo xtask duplicates`: fails when our crates add a second version of a crate to
//!   the ecosystem check's tree (also a `ci` step).
//! - `cargo xtask public-api [--bless]`: compares each published crate's public API with
//!   the listing committed in its `public-api.txt` (`--bless` rewrites them; also a `ci`
//!   step).
//! - `cargo xtask tidy`: the repository hygiene checks (also run by `cargo test`).
//! - `cargo xtask fuzz [--seconds N]`: the cargo-fuzz targets over core's decision and log
//!   formatter and over W3C baggage, each for N seconds (default 60).
//! - `cargo xtask browser`: headless Chromium reads the correlation header cross-origin
//!   from each demo (also a `ci` step).
//! - `cargo xtask load [--rounds N] [--seconds S] [--connections C]`: the axum demo bare
//!   vs with our layer under `wrk`'s keep-alive load on 127.0.0.1, in alternating runs.
//! - `cargo xtask soak [--requests N]`: N requests (default 1,000,000) through each demo,
//!   failing if resident memory grows more than 5 MB after warm-up.

// Developer tasks run outside any request: plain threads are what they need, and the
// workspace's ban on context-losing spawns (`.clippy.toml`) is for library code.
#![allow(clippy::disallowed_methods)]

mod bench;
mod browser;
mod ci;
mod demo;
mod fuzz;
mod load;
mod metadata;
mod public_api;
mod release;
mod server;
mod services;
mod soak;
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::Shell;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                        format, clippy, tests, doc tests, docs, browser and tidy checks
  demo [axum|actix|poem]    run a demo server and show its logs grouped by request
  bench [--quick]           time and count every adapter stack, regenerate BENCHMARKS.md's tables
  package                   package the published crates; build them with the MSRV's compiler
  duplicates                fail when our crates add a second version of a crate to an application
  public-api [--bless]      compare each published crate's public API with its public-api.txt
                            (--bless rewrites them)
  tidy                      repository hygiene checks
  fuzz [--seconds N]        fuzz core's decision, log formatter and baggage, N seconds each (default 60)
  browser                   headless Chromium reads the header cross-origin from each demo
  load [--rounds N] [--seconds S] [--connections C]
                            axum demo bare vs with ours under keep-alive load (127.0.0.1)
  soak [--requests N]       N requests through each demo; fails if memory grows over 5 MB
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let task = Task::parse(&args)?;
    task.run(&sh)
}

/// One developer task with its arguments.
enum Task {
    Ci,
    Demo(demo::Demo),
    Bench { quick: bool },
    Tidy,
    Package,
    Duplicates,
    PublicApi { bless: bool },
    Fuzz { seconds: u64 },
    Browser,
    Load(load::Load),
    Soak { requests: u64 },
}

impl Task {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["ci"] => Ok(Self::Ci),
            ["demo"] => Ok(Self::Demo(demo::Demo::new(demo::Framework::Axum))),
            ["demo", framework] => Ok(Self::Demo(demo::Demo::new(framework.parse()?))),
            ["tidy"] => Ok(Self::Tidy),
            ["package"] => Ok(Self::Package),
            ["duplicates"] => Ok(Self::Duplicates),
            ["public-api"] => Ok(Self::PublicApi { bless: false }),
            ["public-api", "--bless"] => Ok(Self::PublicApi { bless: true }),
            ["bench"] => Ok(Self::Bench { quick: false }),
            ["bench", "--quick"] => Ok(Self::Bench { quick: true }),
            ["fuzz", options @ ..] => {
                let mut seconds = 60;
                parse_options(options, &mut [("--seconds", &mut seconds)])?;
                Ok(Self::Fuzz { seconds })
            }
            ["browser"] => Ok(Self::Browser),
            ["load", options @ ..] => {
                let mut load = load::Load::default();
                parse_options(
                    options,
                    &mut [
                        ("--rounds", &mut load.rounds),
                        ("--seconds", &mut load.seconds),
                        ("--connections", &mut load.connections),
                    ],
                )?;
                Ok(Self::Load(load))
            }
            ["soak", options @ ..] => {
                let mut requests = 1_000_000;
                parse_options(options, &mut [("--requests", &mut requests)])?;
                Ok(Self::Soak { requests })
            }
            ["help" | "--help" | "-h"] | [] => {
                print!("{USAGE}");
                std::process::exit(0)
            }
            _ => bail!("unknown arguments {args:?}\n\n{USAGE}"),
        }
    }

    fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        match self {
            Self::Ci => ci::run(sh),
            Self::Demo(demo) => demo.run(sh),
            Self::Bench { quick } => bench::run(sh, *quick),
            Self::Package => release::package(sh),
            Self::Duplicates => release::duplicates(sh),
            Self::PublicApi { bless } => public_api::run(sh, *bless),
            Self::Tidy => tidy::check(&project_root()).context("tidy checks failed"),
            Self::Fuzz { seconds } => fuzz::run(sh, *seconds),
            Self::Browser => browser::run(sh),
            Self::Load(load) => load.run(sh),
            Self::Soak { requests } => soak::run(sh, *requests),
        }
    }
}

/// Reads `--name value` pairs into the numbers of `known`; anything else is an error.
fn parse_options(options: &[&str], known: &mut [(&str, &mut u64)]) -> anyhow::Result<()> {
    let mut options = options.iter();
    while let Some(name) = options.next() {
        let Some((_, slot)) = known.iter_mut().find(|(known, _)| known == name) else {
            bail!("unknown option {name:?}\n\n{USAGE}");
        };
        let value = options
            .next()
            .with_context(|| format!("{name} needs a value"))?;
        **slot = value
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name} {value:?}: expected a whole number"))?;
    }
    Ok(())
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
