//! Developer tasks for the correlation workspace, run as `cargo xtask <task>`.
//!
//! - `cargo xtask ci`: everything CI checks (format, clippy, tests, doc tests, docs, tidy).
//! - `cargo xtask demo [axum|actix|poem]`: starts a demo server, sends it a handful of
//!   concurrent requests and prints its log lines grouped by correlation ID.
//! - `cargo xtask bench [--quick]`: runs the criterion benches and regenerates the
//!   table in `BENCHMARKS.md`.
//! - `cargo xtask tidy`: the repository hygiene checks (also run by `cargo test`).

mod bench;
mod ci;
mod demo;
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::Shell;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                        format, clippy, tests, doc tests, docs and tidy checks
  demo [axum|actix|poem]    run a demo server and show its logs grouped by request
  bench [--quick]           run every criterion bench and regenerate BENCHMARKS.md's table
  tidy                      repository hygiene checks
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
}

impl Task {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["ci"] => Ok(Self::Ci),
            ["demo"] => Ok(Self::Demo(demo::Demo::new(demo::Framework::Axum))),
            ["demo", framework] => Ok(Self::Demo(demo::Demo::new(framework.parse()?))),
            ["tidy"] => Ok(Self::Tidy),
            ["bench"] => Ok(Self::Bench { quick: false }),
            ["bench", "--quick"] => Ok(Self::Bench { quick: true }),
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
            Self::Tidy => tidy::check(&project_root()).context("tidy checks failed"),
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
