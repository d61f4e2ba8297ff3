//! `cargo xtask bench [--quick]`: runs each adapter's criterion bench (time) and gungraun
//! bench (instructions and heap allocations, by callgrind and DHAT), reads their JSON
//! outputs, and writes one table per framework into `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use correlation_bench_support::{CASES, REQUESTS, STACKS};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::metadata::Metadata;

/// Each framework's bench name (criterion's group too), package, and the peer's label.
const FRAMEWORKS: [(&str, &str, &str); 3] = [
    ("axum", "correlation-axum", "tower-http request-id"),
    ("actix", "correlation-actix", "actix-request-identifier"),
    ("poem", "correlation-poem", "poem `RequestId`"),
];

/// What one stack costs per request in one case.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cost {
    instructions: f64,
    nanoseconds: f64,
    allocations: f64,
}

/// One framework's costs, in the order of [`STACKS`] and [`CASES`].
type Costs = [[Cost; 2]; 5];

/// Runs the benches and rewrites each framework's table in `BENCHMARKS.md`.
pub(crate) fn run(sh: &Shell, quick: bool) -> anyhow::Result<()> {
    for (tool, install) in [
        ("valgrind", "apt-get install valgrind"),
        (
            "gungraun-runner",
            "cargo install gungraun-runner --version <gungraun's in Cargo.lock>",
        ),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!("`cargo xtask bench` needs {tool} (install it with `{install}`)");
        }
    }
    let timing: &[&str] = if quick {
        &["--warm-up-time", "1", "--measurement-time", "2"]
    } else {
        &["--warm-up-time", "2", "--measurement-time", "5"]
    };
    let target = Metadata::read(sh, &crate::project_root(), &["--no-deps"])?.target_directory;
    let path = crate::project_root().join("BENCHMARKS.md");
    let mut document = fs::read_to_string(&path).context("reading BENCHMARKS.md")?;
    for (bench, package, peer) in FRAMEWORKS {
        cmd!(
            sh,
            "cargo bench --locked -p {package} --bench {bench} -- {timing...}"
        )
        .run()?;
        let counts = format!("{bench}_instructions");
        cmd!(
            sh,
            "cargo bench --locked -p {package} --bench {counts} -- --save-summary=json"
        )
        .run()?;
        let mut costs = Costs::default();
        for (stack, name) in STACKS.into_iter().enumerate() {
            for (case, (case_name, _)) in CASES.into_iter().enumerate() {
                let summary = target.join(format!(
                    "gungraun/{package}/{counts}/requests/batch.{}_{}/summary.json",
                    name.replace('-', "_"),
                    case_name.replace('-', "_"),
                ));
                let estimates = target.join(format!(
                    "criterion/{bench}/{name}/{case_name}/new/estimates.json"
                ));
                let (instructions, allocations) = counts_per_request(&read_json(&summary)?)?;
                costs[stack][case] = Cost {
                    instructions,
                    nanoseconds: median(&read_json(&estimates)?)?,
                    allocations,
                };
            }
        }
        let table = render(peer, &costs)?;
        println!("{bench}\n{table}");
        document = replace_between(&document, bench, &table)?;
    }
    fs::write(&path, document)?;
    eprintln!("xtask: BENCHMARKS.md updated");
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Criterion's median time per iteration (one request), in nanoseconds.
fn median(estimates: &Value) -> anyhow::Result<f64> {
    estimates
        .pointer("/median/point_estimate")
        .and_then(Value::as_f64)
        .context("criterion's estimates lack the median")
}

/// Instructions (callgrind's `Ir`) and heap blocks (DHAT's `TotalBlocks`) per request,
/// from gungraun's summary of one batch of [`REQUESTS`].
fn counts_per_request(summary: &Value) -> anyhow::Result<(f64, f64)> {
    let total = |tool: &str, metric: &str| {
        summary["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|profile| profile["tool"] == tool)
            .and_then(|profile| {
                profile.pointer(&format!("/data/total/metrics/{metric}/values/new"))
            })
            .and_then(Value::as_f64)
            .map(|total| total / REQUESTS as f64)
            .with_context(|| format!("gungraun's summary lacks {tool}'s {metric}"))
    };
    Ok((total("Callgrind", "Ir")?, total("DHAT", "TotalBlocks")?))
}

/// The floor's and our positions in [`STACKS`].
const FLOOR: usize = 3;
const OURS: usize = 4;

/// `stack`'s instructions per request in `case`, as a multiple of the floor's: the
/// guard rail's measure.
fn to_floor(costs: &Costs, stack: usize, case: usize) -> f64 {
    costs[stack][case].instructions / costs[FLOOR][case].instructions
}

/// `stack`'s instruction overhead over bare in `case`, as a multiple of the floor's.
fn overhead_to_floor(costs: &Costs, stack: usize, case: usize) -> f64 {
    let over = |stack: usize| costs[stack][case].instructions - costs[0][case].instructions;
    over(stack) / over(FLOOR)
}

/// One framework's table, each stack's costs per request, and whether the guard rail held.
fn render(peer: &str, costs: &Costs) -> anyhow::Result<String> {
    let mut out = String::from(
        "| stack | instructions (no ID / with ID) | ÷ floor's | overhead ÷ floor's | time, ns (no ID / with ID) | allocations (no ID / with ID) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let pair = |figure: &dyn Fn(usize) -> String| format!("{} / {}", figure(0), figure(1));
    for (index, (name, stack)) in STACKS.into_iter().zip(costs).enumerate() {
        let label = match name {
            "peer" => peer,
            "ours" => "**ours**",
            other => other,
        };
        let ratio = pair(&|case| format!("{:.2}", to_floor(costs, index, case)));
        let overhead_ratio = match index {
            0 => "—".to_owned(),
            _ => pair(&|case| format!("{:.2}", overhead_to_floor(costs, index, case))),
        };
        let allocations = |case: usize| {
            let count = stack[case].allocations;
            let whole = (count - count.round()).abs() < 0.005;
            if whole {
                format!("{count:.0}")
            } else {
                format!("{count:.2}")
            }
        };
        writeln!(
            out,
            "| {label} | {} | {ratio} | {overhead_ratio} | {} | {} |",
            pair(&|case| format!("{:.0}", stack[case].instructions)),
            pair(&|case| format!("{:.0}", stack[case].nanoseconds)),
            pair(&allocations),
        )?;
    }
    let held = (0..2).all(|case| {
        (to_floor(costs, OURS, case) * 100.0).round() <= 110.0
            && costs[OURS][case].allocations <= costs[FLOOR][case].allocations
    });
    let verdict = if held { "held" } else { "**not held**" };
    writeln!(
        out,
        "\nGuard rail (ours ≤ 1.10 × the floor's instructions per request, allocations ≤ the floor's): {verdict}."
    )?;
    Ok(out)
}

/// `document` with the text between `bench`'s markers replaced by `table`.
fn replace_between(document: &str, bench: &str, table: &str) -> anyhow::Result<String> {
    let (start, end) = (
        format!("<!-- bench:{bench}:start -->"),
        format!("<!-- bench:{bench}:end -->"),
    );
    let (before, rest) = document
        .split_once(&start)
        .with_context(|| format!("BENCHMARKS.md lacks the {start} marker"))?;
    let (_, after) = rest
        .split_once(&end)
        .with_context(|| format!("BENCHMARKS.md lacks the {end} marker"))?;
    Ok(format!("{before}{start}\n{table}{end}{after}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_median_and_the_counts_per_request() {
        let estimates = json!({"mean": {"point_estimate": 9.0}, "median": {"point_estimate": 7.5}});
        assert_eq!(median(&estimates).unwrap(), 7.5);
        let batch = REQUESTS as f64;
        let summary = json!({"profiles": [
            {"tool": "Callgrind", "data": {"total": {"metrics": {"Ir": {"values": {"new": 8000.0 * batch, "old": 1}}}}}},
            {"tool": "DHAT", "data": {"total": {"metrics": {"TotalBlocks": {"values": {"new": 13.0 * batch}}}}}},
        ]});
        assert_eq!(counts_per_request(&summary).unwrap(), (8000.0, 13.0));
        let error = counts_per_request(&json!({"profiles": []})).unwrap_err();
        assert!(error.to_string().contains("Callgrind's Ir"), "{error}");
    }

    #[test]
    fn renders_each_stacks_costs_over_the_floors() {
        let cost = |instructions: f64, allocations: f64| {
            let cost = Cost {
                instructions,
                nanoseconds: instructions / 10.0,
                allocations,
            };
            [
                cost,
                Cost {
                    allocations: allocations - 1.0,
                    ..cost
                },
            ]
        };
        let costs = [
            cost(1000.0, 9.0),
            cost(1100.0, 9.0),
            cost(2000.0, 12.5),
            cost(1500.0, 11.0),
            cost(1650.0, 11.0),
        ];
        let table = render("tower-http request-id", &costs).unwrap();
        let rows: Vec<_> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| bare | 1000 / 1000 | 0.67 / 0.67 | — | 100 / 100 | 9 / 8 |",
                "| no-op | 1100 / 1100 | 0.73 / 0.73 | 0.20 / 0.20 | 110 / 110 | 9 / 8 |",
                "| tower-http request-id | 2000 / 2000 | 1.33 / 1.33 | 2.00 / 2.00 | 200 / 200 | 12.50 / 11.50 |",
                "| floor | 1500 / 1500 | 1.00 / 1.00 | 1.00 / 1.00 | 150 / 150 | 11 / 10 |",
                "| **ours** | 1650 / 1650 | 1.10 / 1.10 | 1.30 / 1.30 | 165 / 165 | 11 / 10 |",
                "",
                "Guard rail (ours ≤ 1.10 × the floor's instructions per request, allocations ≤ the floor's): held.",
            ]
        );
        assert_eq!((STACKS[FLOOR], STACKS[OURS]), ("floor", "ours"));
        let mut over = costs;
        over[OURS][1].allocations += 1.0;
        assert!(
            render("peer", &over)
                .unwrap()
                .ends_with(": **not held**.\n")
        );
        over = costs;
        over[OURS][0].instructions = 1660.0;
        assert!(
            render("peer", &over)
                .unwrap()
                .ends_with(": **not held**.\n")
        );
    }

    #[test]
    fn replaces_only_the_text_between_a_frameworks_markers() {
        let document = "a\n<!-- bench:poem:start -->\nold\n<!-- bench:poem:end -->\nb";
        let replaced = replace_between(document, "poem", "new\n").unwrap();
        assert_eq!(
            replaced,
            "a\n<!-- bench:poem:start -->\nnew\n<!-- bench:poem:end -->\nb"
        );
        assert!(replace_between(document, "axum", "new\n").is_err());
    }
}
