//! `cargo xtask bench`: times every adapter stack (bare framework, with ours, with the peer
//! crate, with the hand-written floor; each with and without an incoming ID) in the
//! benches' interleaved mode, counts each stack's instructions per request with callgrind
//! where valgrind is installed, runs core's criterion bench, and regenerates the two
//! tables in `BENCHMARKS.md` from the results.

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

/// Interleaved rounds per run: with `--quick`, and without.
const ROUNDS: (u32, u32) = (250, 750);

/// Interleaved runs per adapter, each with the process stack placed differently
/// ([`stack_padding`]). The time table gives each figure's median over them.
///
/// Where the stack starts, relative to a page, decides which stack slots alias in the
/// caches and store buffers with the data they are copied from; with address-space
/// randomisation off it is fixed by the size of the environment, so a single run
/// measures one arbitrary placement. Placements alone can move a stack's overhead, and
/// the ratio of two stacks, by more than the differences between the stacks (see
/// BENCHMARKS.md, "Method").
const RUNS: usize = 16;

/// The placements are spread evenly over one page of the stack.
const PAGE: usize = 4096;

/// An environment variable that the benches do not read: its value's length places the
/// process stack ([`stack_padding`]).
const STACK_PADDING: &str = "CORRELATION_BENCH_STACK_PADDING";

/// The value of [`STACK_PADDING`] that places the stack of run `run` (of [`RUNS`]) at its
/// own offset within a page.
fn stack_padding(run: usize) -> String {
    "x".repeat(run * PAGE / RUNS)
}

/// One adapter bench.
struct Adapter {
    /// The bench target's name, also the profiled function's crate (`<name>::drive`).
    name: &'static str,
    package: &'static str,
    /// The peer's stack name in the profile mode.
    peer_profile: &'static str,
    /// The peer's stack name in the interleaved mode's output.
    peer_interleaved: &'static str,
    /// The peer as the table shows it.
    peer_label: &'static str,
}

const ADAPTERS: &[Adapter] = &[
    Adapter {
        name: "axum",
        package: "correlation-axum",
        peer_profile: "tower-http",
        peer_interleaved: "tower-http",
        peer_label: "tower-http SetRequestId + PropagateRequestId",
    },
    Adapter {
        name: "actix",
        package: "correlation-actix",
        peer_profile: "peer",
        peer_interleaved: "actix-request-identifier",
        peer_label: "actix-request-identifier",
    },
    Adapter {
        name: "poem",
        package: "correlation-poem",
        peer_profile: "peer",
        peer_interleaved: "peer",
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
    cmd!(
        sh,
        "cargo bench --locked -p correlation-core --bench core -- {timing...}"
    )
    .run()?;
    let binaries = ADAPTERS
        .iter()
        .map(|adapter| bench_binary(sh, adapter))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rounds = if quick { ROUNDS.0 } else { ROUNDS.1 };
    let mut timed = Vec::new();
    for (adapter, binary) in ADAPTERS.iter().zip(&binaries) {
        let runs = (0..RUNS)
            .map(|run| read_interleaved(adapter, &interleaved(binary, rounds, run)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let spread = |pick: fn(&Cost) -> f64| {
            let ratios = runs.iter().map(|run| pick(&run.ours_to_floor));
            let low = ratios.clone().fold(f64::INFINITY, f64::min);
            let high = ratios.fold(f64::NEG_INFINITY, f64::max);
            format!("{}–{}", shown(low), shown(high))
        };
        eprintln!(
            "xtask: bench: {} ours ÷ floor in time over {RUNS} stack placements: {} without an ID, {} with one",
            adapter.name,
            spread(|cost| cost.without_id),
            spread(|cost| cost.with_id),
        );
        timed.push(Measured::median(&runs)?);
    }
    let root = crate::project_root();
    let path = root.join("BENCHMARKS.md");
    let mut document = fs::read_to_string(&path).context("reading BENCHMARKS.md")?;
    let times = render(&timed, "ns/req")?;
    document = replace_between(&document, TIME_TABLE, &times)?;
    println!("{times}");
    if valgrind_available() {
        let instructions = render(&count_instructions(&binaries)?, "Ir/req")?;
        document = replace_between(&document, INSTRUCTIONS_TABLE, &instructions)?;
        println!("{instructions}");
    } else {
        eprintln!("xtask: valgrind is not installed; the instructions table is left as it was");
    }
    fs::write(&path, document)?;
    eprintln!("xtask: BENCHMARKS.md updated");
    Ok(())
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

impl Cost {
    fn map2(self, other: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Self {
            without_id: f(self.without_id, other.without_id),
            with_id: f(self.with_id, other.with_id),
        }
    }

    /// Each case's median over `costs`.
    fn median(costs: &[Self]) -> Self {
        Self {
            without_id: median(costs.iter().map(|cost| cost.without_id)),
            with_id: median(costs.iter().map(|cost| cost.with_id)),
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count); NaN, which
/// stands for a ratio that does not apply, sorts last.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

/// One adapter's four stacks, each stack's overhead over bare, and our overhead's ratios.
struct Measured {
    adapter: &'static Adapter,
    bare: Cost,
    /// Ours, the peer and the floor, in that order.
    stacks: [Cost; 3],
    overheads: [Cost; 3],
    ours_to_peer: Cost,
    ours_to_floor: Cost,
}

impl Measured {
    /// Overheads and ratios as differences and quotients of the costs: right for
    /// instruction counts, which do not drift.
    fn from_costs(adapter: &'static Adapter, bare: Cost, stacks: [Cost; 3]) -> Self {
        let overheads = stacks.map(|stack| stack.map2(bare, |value, bare| value - bare));
        let [ours, peer, floor] = overheads;
        Self {
            adapter,
            bare,
            stacks,
            overheads,
            ours_to_peer: ours.map2(peer, ratio),
            ours_to_floor: ours.map2(floor, ratio),
        }
    }

    /// Every figure's median over several runs of one adapter's stacks.
    fn median(runs: &[Self]) -> anyhow::Result<Self> {
        let first = runs.first().context("no run to take the medians of")?;
        let median =
            |pick: &dyn Fn(&Self) -> Cost| Cost::median(&runs.iter().map(pick).collect::<Vec<_>>());
        Ok(Self {
            adapter: first.adapter,
            bare: median(&|run| run.bare),
            stacks: [0, 1, 2].map(|stack| median(&|run: &Self| run.stacks[stack])),
            overheads: [0, 1, 2].map(|stack| median(&|run: &Self| run.overheads[stack])),
            ours_to_peer: median(&|run| run.ours_to_peer),
            ours_to_floor: median(&|run| run.ours_to_floor),
        })
    }
}

/// `ours ÷ other`, or NaN (shown as n/a) when the other stack costs nothing over bare.
fn ratio(ours: f64, other: f64) -> f64 {
    if other <= 0.0 { f64::NAN } else { ours / other }
}

fn render(measured: &[Measured], unit: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "| framework | stack | no incoming ID ({unit}) | overhead | valid incoming ID ({unit}) | overhead | our overhead ÷ peer's | our overhead ÷ floor's |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    let short_unit = unit.split('/').next().unwrap_or(unit);
    for measured in measured {
        let (adapter, bare) = (measured.adapter, measured.bare);
        let ratios =
            |ratio: Cost| format!("{} / {}", shown(ratio.without_id), shown(ratio.with_id));
        writeln!(
            out,
            "| {} | bare | {:.0} | — | {:.0} | — |  |  |",
            adapter.name, bare.without_id, bare.with_id
        )?;
        let labels = ["correlation (ours)", adapter.peer_label, "floor"];
        for (index, label) in labels.into_iter().enumerate() {
            let (cost, overhead) = (measured.stacks[index], measured.overheads[index]);
            let (to_peer, to_floor) = if index == 0 {
                (
                    ratios(measured.ours_to_peer),
                    ratios(measured.ours_to_floor),
                )
            } else {
                (String::new(), String::new())
            };
            writeln!(
                out,
                "| {} | {label} | {:.0} | {} | {:.0} | {} | {to_peer} | {to_floor} |",
                adapter.name,
                cost.without_id,
                over(overhead.without_id, bare.without_id, short_unit),
                cost.with_id,
                over(overhead.with_id, bare.with_id, short_unit),
            )?;
        }
    }
    Ok(out)
}

fn over(overhead: f64, bare: f64, unit: &str) -> String {
    format!("{overhead:+.0} {unit} ({:+.1} %)", overhead / bare * 100.0)
}

fn shown(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}")
    } else {
        "n/a".to_owned()
    }
}

/// Runs an adapter bench binary in its interleaved mode, with its stack in the placement
/// of run `run`, and returns what it printed.
fn interleaved(binary: &Path, rounds: u32, run: usize) -> anyhow::Result<String> {
    eprintln!(
        "xtask: bench: {} in {rounds} interleaved rounds, stack placement {} of {RUNS}",
        binary.display(),
        run + 1
    );
    // Without address-space randomisation where `setarch` can turn it off: code layout
    // then stays the same from run to run, and so do the times.
    let mut command = if fixed_layout_available() {
        let mut command = Command::new("setarch");
        command.arg("-R").arg(binary);
        command
    } else {
        Command::new(binary)
    };
    let output = command
        .env("CORRELATION_INTERLEAVED_ROUNDS", rounds.to_string())
        .env(STACK_PADDING, stack_padding(run))
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{} failed:\n{stdout}{}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// What follows `<key>: ` on a line of `section`.
fn line_value<'a>(section: &'a str, key: &str, bench: &str) -> anyhow::Result<&'a str> {
    section
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
        .with_context(|| format!("no `{key}` in the {bench} bench's interleaved output"))
}

/// An adapter's stacks from the interleaved mode's output: each stack's median round, and
/// the medians of the per-round overheads and ratios, which pair the stacks of one round
/// and so cancel the machine's changes of speed between rounds.
fn read_interleaved(adapter: &'static Adapter, output: &str) -> anyhow::Result<Measured> {
    let (rounds, paired) = output
        .split_once("paired per round")
        .context("the interleaved output lacks its paired overheads")?;
    let number = |text: &str| -> anyhow::Result<f64> {
        text.trim()
            .parse()
            .with_context(|| format!("`{text}` is not a number"))
    };
    let cost = |read: &dyn Fn(&str) -> anyhow::Result<f64>, stack: &str| -> anyhow::Result<Cost> {
        Ok(Cost {
            without_id: read(&format!("{stack}/no-id"))?,
            with_id: read(&format!("{stack}/with-id"))?,
        })
    };
    // `<stack>/<case>: <fastest>, <median>`
    let median = |key: &str| {
        let (_, median) = line_value(rounds, key, adapter.name)?
            .split_once(", ")
            .with_context(|| format!("`{key}` lacks its median round"))?;
        number(median)
    };
    // `<stack>/<case>: <overhead> ns`
    let overhead =
        |key: &str| number(line_value(paired, key, adapter.name)?.trim_end_matches(" ns"));
    let ratio = |key: &str| number(line_value(paired, key, adapter.name)?);
    let stacks = ["correlation", adapter.peer_interleaved, "floor"];
    Ok(Measured {
        adapter,
        bare: cost(&median, "bare")?,
        stacks: [
            cost(&median, stacks[0])?,
            cost(&median, stacks[1])?,
            cost(&median, stacks[2])?,
        ],
        overheads: [
            cost(&overhead, stacks[0])?,
            cost(&overhead, stacks[1])?,
            cost(&overhead, stacks[2])?,
        ],
        ours_to_peer: cost(&ratio, &format!("correlation÷{}", adapter.peer_interleaved))?,
        ours_to_floor: cost(&ratio, "correlation÷floor")?,
    })
}

fn fixed_layout_available() -> bool {
    Command::new("setarch")
        .args(["-R", "true"])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Instructions per request of every adapter stack, by callgrind: each bench binary in
/// its profile mode sends [`PROFILED_REQUESTS`] requests through one stack inside
/// `<bench>::drive`, and only that function's instructions are collected. `binaries` are
/// the bench executables in the order of [`ADAPTERS`].
fn count_instructions(binaries: &[PathBuf]) -> anyhow::Result<Vec<Measured>> {
    let mut measured = Vec::new();
    for (adapter, binary) in ADAPTERS.iter().zip(binaries) {
        let stack = |name: &str| -> anyhow::Result<Cost> {
            Ok(Cost {
                without_id: instructions(binary, adapter.name, name, "no-id")?,
                with_id: instructions(binary, adapter.name, name, "with-id")?,
            })
        };
        measured.push(Measured::from_costs(
            adapter,
            stack("bare")?,
            [
                stack("correlation")?,
                stack(adapter.peer_profile)?,
                stack("floor")?,
            ],
        ));
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

    /// What the actix bench prints in its interleaved mode (see
    /// `correlation_bench_support::interleaved_rounds`).
    const ACTIX_OUTPUT: &str = "\
stack/case: fastest round, median round (ns per request)
bare/no-id: 676, 759
bare/with-id: 791, 915
correlation/no-id: 1036, 1171
correlation/with-id: 1052, 1141
actix-request-identifier/no-id: 908, 973
actix-request-identifier/with-id: 940, 1008
floor/no-id: 977, 1030
floor/with-id: 978, 1043
paired per round (medians): overhead over bare
correlation/no-id: 391 ns
actix-request-identifier/no-id: 218 ns
floor/no-id: 293 ns
correlation÷actix-request-identifier/no-id: 1.64
correlation÷floor/no-id: 1.27
correlation/with-id: 296 ns
actix-request-identifier/with-id: 133 ns
floor/with-id: 180 ns
correlation÷actix-request-identifier/with-id: 1.62
correlation÷floor/with-id: 1.21
";

    #[test]
    fn renders_the_interleaved_medians_and_paired_ratios() {
        let measured = read_interleaved(&ADAPTERS[1], ACTIX_OUTPUT).unwrap();
        let table = render(&[measured], "ns/req").unwrap();
        let rows: Vec<_> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| actix | bare | 759 | — | 915 | — |  |  |",
                "| actix | correlation (ours) | 1171 | +391 ns (+51.5 %) | 1141 | +296 ns (+32.3 %) | 1.64 / 1.62 | 1.27 / 1.21 |",
                "| actix | actix-request-identifier | 973 | +218 ns (+28.7 %) | 1008 | +133 ns (+14.5 %) |  |  |",
                "| actix | floor | 1030 | +293 ns (+38.6 %) | 1043 | +180 ns (+19.7 %) |  |  |",
            ]
        );
    }

    #[test]
    fn the_time_table_takes_each_figures_median_over_the_runs() {
        let run = |ours_no_id: &str, ratio_no_id: &str| {
            let output = ACTIX_OUTPUT
                .replace(
                    "correlation/no-id: 1036, 1171",
                    &format!("correlation/no-id: 1036, {ours_no_id}"),
                )
                .replace(
                    "correlation÷floor/no-id: 1.27",
                    &format!("correlation÷floor/no-id: {ratio_no_id}"),
                );
            read_interleaved(&ADAPTERS[1], &output).unwrap()
        };
        let runs = [
            run("1180", "1.05"),
            run("1171", "1.27"),
            run("1400", "0.95"),
        ];
        let medians = Measured::median(&runs).unwrap();
        assert_eq!(medians.stacks[0].without_id, 1180.0);
        assert_eq!(medians.ours_to_floor.without_id, 1.05);
        // Figures equal in every run stay as they are.
        assert_eq!(medians.ours_to_floor.with_id, 1.21);
        assert_eq!(medians.bare.with_id, 915.0);
        // An even count takes the mean of the middle two; NaN (a ratio that does not
        // apply) sorts last.
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median([f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert!(Measured::median(&[]).is_err());
    }

    #[test]
    fn every_run_places_the_stack_at_its_own_offset_within_a_page() {
        let offsets: Vec<usize> = (0..RUNS).map(|run| stack_padding(run).len()).collect();
        assert_eq!(offsets[0], 0);
        assert!(
            offsets
                .windows(2)
                .all(|pair| pair[1] - pair[0] == PAGE / RUNS)
        );
        assert!(offsets[RUNS - 1] < PAGE);
    }

    #[test]
    fn an_interleaved_output_missing_a_stack_is_an_error_naming_it() {
        let without_floor: String = ACTIX_OUTPUT
            .lines()
            .filter(|line| !line.starts_with("floor/"))
            .map(|line| format!("{line}\n"))
            .collect();
        let error = read_interleaved(&ADAPTERS[1], &without_floor)
            .err()
            .expect("the floor is missing");
        assert!(error.to_string().contains("floor/no-id"), "{error}");
    }

    #[test]
    fn instruction_ratios_are_quotients_of_overheads_and_na_without_a_cost() {
        let cost = |without_id, with_id| Cost {
            without_id,
            with_id,
        };
        let measured = Measured::from_costs(
            &ADAPTERS[0],
            cost(1000.0, 1000.0),
            [
                cost(1100.0, 1050.0),
                cost(1400.0, 1000.0),
                cost(1080.0, 1050.0),
            ],
        );
        let table = render(&[measured], "Ir/req").unwrap();
        assert!(
            table.contains("| axum | correlation (ours) | 1100 | +100 Ir (+10.0 %) | 1050 | +50 Ir (+5.0 %) | 0.25 / n/a | 1.25 / 1.00 |"),
            "{table}"
        );
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
