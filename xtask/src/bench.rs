//! `cargo xtask bench`: runs the criterion benches of every adapter (bare framework, with
//! ours, with the peer crate, each with and without an incoming ID) and of core, then
//! regenerates the tables in `BENCHMARKS.md` from criterion's estimates.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

const START: &str = "<!-- bench-table:start -->";
const END: &str = "<!-- bench-table:end -->";

/// The adapter benches: (criterion group, package, bench target, peer shown in the table).
const ADAPTERS: &[(&str, &str, &str, &str)] = &[
    (
        "axum",
        "correlation-axum",
        "axum",
        "tower-http SetRequestId + PropagateRequestId",
    ),
    (
        "actix",
        "correlation-actix",
        "actix",
        "actix-request-identifier",
    ),
    (
        "poem",
        "correlation-poem",
        "poem",
        "poem RequestId (ReuseId::Use)",
    ),
];

/// Runs the benches and rewrites the generated part of `BENCHMARKS.md`.
pub(crate) fn run(sh: &Shell, quick: bool) -> anyhow::Result<()> {
    let timing: &[&str] = if quick {
        &["--warm-up-time", "1", "--measurement-time", "2"]
    } else {
        &["--warm-up-time", "2", "--measurement-time", "5"]
    };
    for (_, package, bench, _) in ADAPTERS {
        cmd!(
            sh,
            "cargo bench --locked -p {package} --bench {bench} -- {timing...}"
        )
        .run()?;
    }
    cmd!(
        sh,
        "cargo bench --locked -p correlation-core --bench core -- {timing...}"
    )
    .run()?;
    let root = crate::project_root();
    let table = render(&root.join("target/criterion"))?;
    let path = root.join("BENCHMARKS.md");
    let document = fs::read_to_string(&path).context("reading BENCHMARKS.md")?;
    let (before, rest) = document
        .split_once(START)
        .with_context(|| format!("BENCHMARKS.md lacks the {START} marker"))?;
    let (_, after) = rest
        .split_once(END)
        .with_context(|| format!("BENCHMARKS.md lacks the {END} marker"))?;
    fs::write(&path, format!("{before}{START}\n{table}{END}{after}"))?;
    println!("{table}");
    eprintln!("xtask: BENCHMARKS.md updated");
    Ok(())
}

/// One measured stack of one adapter: ns per request without and with an incoming ID.
struct Stack {
    name: String,
    without_id: f64,
    with_id: f64,
}

fn render(criterion: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "| framework | stack | no incoming ID (ns/req) | overhead | valid incoming ID (ns/req) | overhead | our overhead ÷ peer's (no ID / with ID) |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|")?;
    for (group, _, _, peer_label) in ADAPTERS {
        let stacks = read_group(&criterion.join(group))?;
        let find = |predicate: &dyn Fn(&str) -> bool| stacks.iter().find(|s| predicate(&s.name));
        let bare = find(&|name| name == "bare").context("no `bare` stack")?;
        let ours = find(&|name| name == "correlation").context("no `correlation` stack")?;
        let peer =
            find(&|name| name != "bare" && name != "correlation").context("no peer stack")?;
        for (label, stack) in [
            ("bare", bare),
            ("correlation (ours)", ours),
            (*peer_label, peer),
        ] {
            let ratio = if std::ptr::eq(stack, ours) {
                format!(
                    "{} / {}",
                    ratio(
                        ours.without_id - bare.without_id,
                        peer.without_id - bare.without_id
                    ),
                    ratio(ours.with_id - bare.with_id, peer.with_id - bare.with_id)
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "| {group} | {label} | {:.0} | {} | {:.0} | {} | {ratio} |",
                stack.without_id,
                overhead(stack.without_id, bare.without_id),
                stack.with_id,
                overhead(stack.with_id, bare.with_id),
            )?;
        }
    }
    Ok(out)
}

fn overhead(value: f64, bare: f64) -> String {
    if value == bare {
        "—".to_owned()
    } else {
        format!(
            "{:+.0} ns ({:+.1} %)",
            value - bare,
            (value / bare - 1.0) * 100.0
        )
    }
}

fn ratio(ours: f64, peer: f64) -> String {
    if peer <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{:.2}", ours / peer)
}

/// Reads `<group>/<stack>/<case>/new/estimates.json`; a case whose name mentions "no" is
/// the one without an incoming ID.
fn read_group(dir: &Path) -> anyhow::Result<Vec<Stack>> {
    let mut stacks = Vec::new();
    for stack_dir in sorted_dirs(dir)? {
        let name = file_name(&stack_dir);
        if name == "report" {
            continue;
        }
        let (mut without_id, mut with_id) = (None, None);
        for case_dir in sorted_dirs(&stack_dir)? {
            let estimate = mean_ns(&case_dir.join("new/estimates.json"))?;
            if file_name(&case_dir).to_ascii_lowercase().contains("no") {
                without_id = Some(estimate);
            } else {
                with_id = Some(estimate);
            }
        }
        match (without_id, with_id) {
            (Some(without_id), Some(with_id)) => stacks.push(Stack {
                name,
                without_id,
                with_id,
            }),
            _ => bail!(
                "{} lacks a case with or without an incoming ID",
                stack_dir.display()
            ),
        }
    }
    Ok(stacks)
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The mean's point estimate, in nanoseconds, from criterion's `estimates.json`.
fn mean_ns(path: &Path) -> anyhow::Result<f64> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mean = text
        .split_once("\"mean\"")
        .map(|(_, rest)| rest)
        .with_context(|| format!("no mean in {}", path.display()))?;
    let value = mean
        .split_once("\"point_estimate\":")
        .and_then(|(_, rest)| rest.split([',', '}']).next())
        .with_context(|| format!("no point estimate in {}", path.display()))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("bad point estimate in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates_and_renders_ratios() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let estimate = |group: &str, stack: &str, case: &str, ns: f64| {
            let path = dir.join(group).join(stack).join(case).join("new");
            fs::create_dir_all(&path).unwrap();
            fs::write(
                path.join("estimates.json"),
                format!(
                    r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{ns},"standard_error":0.1}},"median":{{"point_estimate":1.0}}}}"#
                ),
            )
            .unwrap();
        };
        for (group, peer) in [("axum", "tower-http"), ("actix", "peer"), ("poem", "peer2")] {
            estimate(group, "bare", "no-id", 1000.0);
            estimate(group, "bare", "with-id", 1000.0);
            estimate(group, "correlation", "no-id", 1100.0);
            estimate(group, "correlation", "with-id", 1050.0);
            estimate(group, peer, "no id", 1400.0);
            estimate(group, peer, "incoming id", 1200.0);
        }
        let table = render(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(table.contains("| axum | correlation (ours) | 1100 | +100 ns (+10.0 %) | 1050 | +50 ns (+5.0 %) | 0.25 / 0.25 |"), "{table}");
        assert_eq!(table.lines().count(), 2 + 9);
    }
}
