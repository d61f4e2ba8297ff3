//! `cargo xtask bench`: runs the criterion benches of every adapter (bare framework, with
//! ours, with the peer crate, with the hand-written floor; each with and without an
//! incoming ID) and of core, counts each adapter stack's instructions per request with
//! callgrind where valgrind is installed, and regenerates the two tables in
//! `BENCHMARKS.md` from the results.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The markers around the time table.
const TIME_TABLE: (&str, &str) = ("<!-- bench-table:start -->", "<!-- bench-table:end -->");

/// The markers around the instructions table.
const INSTRUCTIONS_TABLE: (&str, &str) = (
    "<!-- instructions-table:start -->",
    "<!-- instructions-table:end -->",
);

/// Requests each callgrind run counts (after a warm-up the bench does outside the count).
const PROFILED_REQUESTS: u64 = 2_000;

/// One adapter bench.
struct Adapter {
    /// The criterion group, also the bench target's name and the profiled function's
    /// crate (`<name>::drive`).
    name: &'static str,
    package: &'static str,
    /// The peer's stack name in the criterion group and in the profile mode.
    peer_stack: &'static str,
    peer_profile: &'static str,
    /// The peer as the table shows it.
    peer_label: &'static str,
}

const ADAPTERS: &[Adapter] = &[
    Adapter {
        name: "axum",
        package: "correlation-axum",
        peer_stack: "tower-http",
        peer_profile: "tower-http",
        peer_label: "tower-http SetRequestId + PropagateRequestId",
    },
    Adapter {
        name: "actix",
        package: "correlation-actix",
        peer_stack: "actix-request-identifier",
        peer_profile: "peer",
        peer_label: "actix-request-identifier",
    },
    Adapter {
        name: "poem",
        package: "correlation-poem",
        peer_stack: "poem RequestId (ReuseId::Use)",
        peer_profile: "peer",
        peer_label: "poem RequestId (ReuseId::Use)",
    },
];

/// Runs the benches and rewrites the generated parts of `BENCHMARKS.md`.
pub(crate) fn run(sh: &Shell, quick: bool) -> anyhow::Result<()> {
    let timing: &[&str] = if quick {
        &["--warm-up-time", "1", "--measurement-time", "2"]
    } else {
        &["--warm-up-time", "2", "--measurement-time", "5"]
    };
    for adapter in ADAPTERS {
        let (package, bench) = (adapter.package, adapter.name);
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
    let path = root.join("BENCHMARKS.md");
    let mut document = fs::read_to_string(&path).context("reading BENCHMARKS.md")?;
    let times = render(&read_times(&target_dir().join("criterion"))?, "ns/req")?;
    document = replace_between(&document, TIME_TABLE, &times)?;
    println!("{times}");
    if valgrind_available() {
        let instructions = render(&count_instructions(sh)?, "Ir/req")?;
        document = replace_between(&document, INSTRUCTIONS_TABLE, &instructions)?;
        println!("{instructions}");
    } else {
        eprintln!("xtask: valgrind is not installed; the instructions table is left as it was");
    }
    fs::write(&path, document)?;
    eprintln!("xtask: BENCHMARKS.md updated");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

fn replace_between(
    document: &str,
    (start, end): (&str, &str),
    table: &str,
) -> anyhow::Result<String> {
    let (before, rest) = document
        .split_once(start)
        .with_context(|| format!("BENCHMARKS.md lacks the {start} marker"))?;
    let (_, after) = rest
        .split_once(end)
        .with_context(|| format!("BENCHMARKS.md lacks the {end} marker"))?;
    Ok(format!("{before}{start}\n{table}{end}{after}"))
}

/// One measured stack: its cost per request without and with an incoming ID.
#[derive(Debug, Clone, Copy)]
struct Cost {
    without_id: f64,
    with_id: f64,
}

/// One adapter's four stacks.
struct Measured {
    adapter: &'static Adapter,
    bare: Cost,
    ours: Cost,
    peer: Cost,
    floor: Cost,
}

fn render(measured: &[Measured], unit: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "| framework | stack | no incoming ID ({unit}) | overhead | valid incoming ID ({unit}) | overhead | our overhead ÷ peer's | our overhead ÷ floor's |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    for Measured {
        adapter,
        bare,
        ours,
        peer,
        floor,
    } in measured
    {
        let ratios = |other: &Cost| {
            format!(
                "{} / {}",
                ratio(
                    ours.without_id - bare.without_id,
                    other.without_id - bare.without_id
                ),
                ratio(ours.with_id - bare.with_id, other.with_id - bare.with_id)
            )
        };
        let rows = [
            ("bare", bare, String::new(), String::new()),
            ("correlation (ours)", ours, ratios(peer), ratios(floor)),
            (adapter.peer_label, peer, String::new(), String::new()),
            ("floor", floor, String::new(), String::new()),
        ];
        for (label, cost, to_peer, to_floor) in rows {
            writeln!(
                out,
                "| {} | {label} | {:.0} | {} | {:.0} | {} | {to_peer} | {to_floor} |",
                adapter.name,
                cost.without_id,
                overhead(cost.without_id, bare.without_id, unit),
                cost.with_id,
                overhead(cost.with_id, bare.with_id, unit),
            )?;
        }
    }
    Ok(out)
}

fn overhead(value: f64, bare: f64, unit: &str) -> String {
    if value == bare {
        "—".to_owned()
    } else {
        let unit = unit.split('/').next().unwrap_or(unit);
        format!(
            "{:+.0} {unit} ({:+.1} %)",
            value - bare,
            (value / bare - 1.0) * 100.0
        )
    }
}

fn ratio(ours: f64, other: f64) -> String {
    if other <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{:.2}", ours / other)
}

/// Criterion's means for every adapter, from `<group>/<stack>/<case>/new/estimates.json`.
fn read_times(criterion: &Path) -> anyhow::Result<Vec<Measured>> {
    ADAPTERS
        .iter()
        .map(|adapter| {
            let dir = criterion.join(adapter.name);
            let stack = |name: &str| read_stack(&dir.join(criterion_dir_name(name)));
            Ok(Measured {
                adapter,
                bare: stack("bare")?,
                ours: stack("correlation")?,
                peer: stack(adapter.peer_stack)?,
                floor: stack("floor")?,
            })
        })
        .collect()
}

/// Criterion's directory name for a benchmark name: characters it does not keep in
/// file names become `_`.
fn criterion_dir_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect()
}

/// A stack's two cases; a case whose name mentions "no" is the one without an ID.
fn read_stack(dir: &Path) -> anyhow::Result<Cost> {
    let (mut without_id, mut with_id) = (None, None);
    for case_dir in sorted_dirs(dir)? {
        let estimate = mean_ns(&case_dir.join("new/estimates.json"))?;
        if file_name(&case_dir).to_ascii_lowercase().contains("no") {
            without_id = Some(estimate);
        } else {
            with_id = Some(estimate);
        }
    }
    match (without_id, with_id) {
        (Some(without_id), Some(with_id)) => Ok(Cost {
            without_id,
            with_id,
        }),
        _ => bail!(
            "{} lacks a case with or without an incoming ID",
            dir.display()
        ),
    }
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() && file_name(&path) != "report" {
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

fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Instructions per request of every adapter stack, by callgrind: each bench binary in
/// its profile mode sends [`PROFILED_REQUESTS`] requests through one stack inside
/// `<bench>::drive`, and only that function's instructions are collected.
fn count_instructions(sh: &Shell) -> anyhow::Result<Vec<Measured>> {
    let mut measured = Vec::new();
    for adapter in ADAPTERS {
        let binary = bench_binary(sh, adapter)?;
        let stack = |name: &str| -> anyhow::Result<Cost> {
            Ok(Cost {
                without_id: instructions(&binary, adapter.name, name, "no-id")?,
                with_id: instructions(&binary, adapter.name, name, "with-id")?,
            })
        };
        measured.push(Measured {
            adapter,
            bare: stack("bare")?,
            ours: stack("correlation")?,
            peer: stack(adapter.peer_profile)?,
            floor: stack("floor")?,
        });
    }
    Ok(measured)
}

/// Builds an adapter's bench and returns its executable, from cargo's JSON messages.
fn bench_binary(sh: &Shell, adapter: &Adapter) -> anyhow::Result<PathBuf> {
    let (package, bench) = (adapter.package, adapter.name);
    let messages = cmd!(
        sh,
        "cargo bench --locked -p {package} --bench {bench} --no-run --message-format=json"
    )
    .read()?;
    messages
        .lines()
        .filter(|line| line.contains("\"kind\":[\"bench\"]"))
        .find_map(|line| {
            let (_, rest) = line.split_once("\"executable\":\"")?;
            rest.split_once('"').map(|(path, _)| PathBuf::from(path))
        })
        .with_context(|| format!("cargo named no executable for the {bench} bench"))
}

/// Instructions per request of one stack and case.
fn instructions(binary: &Path, bench: &str, stack: &str, case: &str) -> anyhow::Result<f64> {
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            &format!("--toggle-collect={bench}::drive"),
        ])
        .arg(binary)
        .env("CORRELATION_PROFILE", format!("{stack}/{case}"))
        .env(
            "CORRELATION_PROFILE_REQUESTS",
            PROFILED_REQUESTS.to_string(),
        )
        .output()
        .context("running valgrind")?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("callgrind of {bench} {stack}/{case} failed:\n{log}");
    }
    let collected: f64 = log
        .lines()
        .find_map(|line| line.split_once("Collected :"))
        .and_then(|(_, count)| count.trim().parse().ok())
        .with_context(|| format!("no instruction count in callgrind's output:\n{log}"))?;
    eprintln!(
        "xtask: bench: {bench} {stack}/{case}: {:.0} instructions per request",
        collected / PROFILED_REQUESTS as f64
    );
    Ok(collected / PROFILED_REQUESTS as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates_and_renders_ratios() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let estimate = |group: &str, stack: &str, case: &str, ns: f64| {
            let path = dir
                .join(group)
                .join(criterion_dir_name(stack))
                .join(case)
                .join("new");
            fs::create_dir_all(&path).unwrap();
            fs::write(
                path.join("estimates.json"),
                format!(
                    r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{ns},"standard_error":0.1}},"median":{{"point_estimate":1.0}}}}"#
                ),
            )
            .unwrap();
        };
        for adapter in ADAPTERS {
            let group = adapter.name;
            estimate(group, "bare", "no-id", 1000.0);
            estimate(group, "bare", "with-id", 1000.0);
            estimate(group, "correlation", "no-id", 1100.0);
            estimate(group, "correlation", "with-id", 1050.0);
            estimate(group, adapter.peer_stack, "no id", 1400.0);
            estimate(group, adapter.peer_stack, "incoming id", 1200.0);
            estimate(group, "floor", "no-id", 1080.0);
            estimate(group, "floor", "with-id", 1050.0);
        }
        let table = render(&read_times(&dir).unwrap(), "ns/req").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            table.contains("| axum | correlation (ours) | 1100 | +100 ns (+10.0 %) | 1050 | +50 ns (+5.0 %) | 0.25 / 0.25 | 1.25 / 1.00 |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2 + 12);
    }

    #[test]
    fn replaces_only_the_text_between_markers() {
        let document = "a\n<!-- bench-table:start -->\nold\n<!-- bench-table:end -->\nb";
        let replaced = replace_between(document, TIME_TABLE, "new\n").unwrap();
        assert_eq!(
            replaced,
            "a\n<!-- bench-table:start -->\nnew\n<!-- bench-table:end -->\nb"
        );
        assert!(replace_between("no markers", TIME_TABLE, "new\n").is_err());
    }
}
