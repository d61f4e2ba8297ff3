//! Repository hygiene checks, run by `cargo xtask tidy`, by `cargo xtask ci` and as a
//! `#[test]`, so they hold on every `cargo test` too. What clippy's lints catch (such as
//! `todo!` and `dbg!`, denied in `[workspace.lints]`) is left to clippy.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::Shell;

use crate::metadata::{Metadata, Package};

/// Runs every check and reports all problems at once.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let metadata = Metadata::read(&sh, root, &["--no-deps"])?;
    let mut problems = Vec::new();
    let rust_version = workspace_rust_version(root)?;
    for member in metadata.members() {
        check_manifest(&member.manifest_path, &mut problems)?;
    }
    for package in metadata.members().filter(|package| package.is_published()) {
        check_published_crate(package, &rust_version, &mut problems)?;
    }
    check_readme(root, &rust_version, &mut problems)?;
    for file in rust_files(root)? {
        check_source(&file, &mut problems)?;
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    )
}

/// `[workspace.package] rust-version`, which the members inherit.
fn workspace_rust_version(root: &Path) -> anyhow::Result<String> {
    let manifest = read_toml(&root.join("Cargo.toml"))?;
    manifest
        .get("workspace")
        .and_then(|workspace| workspace.get("package"))
        .and_then(|package| package.get("rust-version"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .context("the root Cargo.toml has no rust-version in [workspace.package]")
}

/// Every dependency is inherited from `[workspace.dependencies]`, and lints from
/// `[workspace.lints]`. `cargo metadata` shows manifests with inheritance resolved, so
/// this reads the manifest as written.
fn check_manifest(manifest_path: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let manifest = read_toml(manifest_path)?;
    let mut tables = dependency_tables("", &manifest);
    if let Some(toml::Value::Table(targets)) = manifest.get("target") {
        for (cfg, target) in targets {
            if let toml::Value::Table(target) = target {
                tables.extend(dependency_tables(&format!("target.{cfg}."), target));
            }
        }
    }
    for (section, dependencies) in tables {
        for (name, dependency) in dependencies {
            let inherited =
                dependency.get("workspace").and_then(toml::Value::as_bool) == Some(true);
            // A crate's dev-dependency on itself (to turn on its test features) is by path only,
            // so `cargo package` can drop it; the workspace's entry carries a version.
            let is_self_by_path = dependency.get("path").and_then(toml::Value::as_str) == Some(".");
            if !inherited && !is_self_by_path {
                problems.push(format!(
                    "{}: `{name}` in [{section}] does not inherit from [workspace.dependencies]",
                    manifest_path.display()
                ));
            }
        }
    }
    let lints_inherited = manifest
        .get("lints")
        .and_then(|lints| lints.get("workspace"))
        .and_then(toml::Value::as_bool)
        == Some(true);
    if !lints_inherited {
        problems.push(format!(
            "{}: missing `[lints] workspace = true`",
            manifest_path.display()
        ));
    }
    Ok(())
}

/// The dependency tables of a manifest (or of one of its `[target.…]` tables), named as
/// in the manifest after `prefix`.
fn dependency_tables<'a>(prefix: &str, table: &'a toml::Table) -> Vec<(String, &'a toml::Table)> {
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .into_iter()
        .filter_map(|kind| match table.get(kind) {
            Some(toml::Value::Table(dependencies)) => {
                Some((format!("{prefix}{kind}"), dependencies))
            }
            _ => None,
        })
        .collect()
}

/// docs.rs metadata, the `doc_cfg` attribute, the MSRV section and a feature table that
/// lists exactly the crate's features in the crate docs.
fn check_published_crate(
    package: &Package,
    rust_version: &str,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let name = &package.name;
    let has_docs_rs = package
        .metadata
        .as_ref()
        .is_some_and(|metadata| metadata["docs"]["rs"].is_object());
    if !has_docs_rs {
        problems.push(format!("{name}: no [package.metadata.docs.rs]"));
    }
    let lib_path = package.lib_path()?;
    let lib = read(lib_path)?;
    if !lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]") {
        problems.push(format!("{name}: lib.rs lacks the docsrs doc_cfg attribute"));
    }
    let docs = crate_docs(lib_path, &package.manifest_path, problems)?;
    let msrv = format!("minimum supported Rust version is **{rust_version}**");
    if !docs.contains("## Supported Rust Versions") || !docs.contains(&msrv) {
        problems.push(format!(
            "{name}: crate docs must state the MSRV {rust_version}"
        ));
    }
    check_feature_table(package, &docs, problems);
    Ok(())
}

/// The text of the crate docs: `lib.rs`'s `//!` lines, and every file it includes with
/// `include_str!` (a path relative to `lib.rs`, or to the manifest's directory through
/// `concat!(env!("CARGO_MANIFEST_DIR"), "…")`).
fn crate_docs(
    lib_path: &Path,
    manifest_path: &Path,
    problems: &mut Vec<String>,
) -> anyhow::Result<String> {
    let lib = read(lib_path)?;
    let mut docs: String = lib
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("//!"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    let source_dir = lib_path.parent().unwrap_or(Path::new("."));
    let manifest_dir = manifest_path.parent().unwrap_or(Path::new("."));
    for rest in lib.split("include_str!(").skip(1) {
        let included = if let Some(path) = rest.strip_prefix('"') {
            path.split('"').next().map(|path| source_dir.join(path))
        } else if let Some(path) = rest.strip_prefix("concat!(env!(\"CARGO_MANIFEST_DIR\"), \"") {
            path.split('"')
                .next()
                .map(|path| manifest_dir.join(path.trim_start_matches('/')))
        } else {
            None
        };
        match included {
            Some(path) => docs.push_str(&read(&path)?),
            None => problems.push(format!(
                "{}: cannot follow `include_str!({}`",
                lib_path.display(),
                rest.lines().next().unwrap_or_default()
            )),
        }
    }
    Ok(docs)
}

/// The `## Feature Flags` table lists every feature of the manifest but `default` once,
/// nothing else, and marks `(default)` exactly the default ones; a `test-util` feature
/// says it enables test helpers only.
fn check_feature_table(package: &Package, docs: &str, problems: &mut Vec<String>) {
    let name = &package.name;
    let Some(rows) = feature_table(docs) else {
        problems.push(format!(
            "{name}: crate docs lack a `## Feature Flags` table"
        ));
        return;
    };
    let declared: BTreeSet<&str> = package
        .features
        .keys()
        .map(String::as_str)
        .filter(|feature| *feature != "default")
        .collect();
    let defaults: BTreeSet<&str> = package
        .features
        .get("default")
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut listed = BTreeSet::new();
    for row in &rows {
        if !listed.insert(row.feature.as_str()) {
            problems.push(format!(
                "{name}: the feature table lists `{}` twice",
                row.feature
            ));
        }
        if !declared.contains(row.feature.as_str()) {
            problems.push(format!(
                "{name}: the feature table lists `{}`, which Cargo.toml does not declare",
                row.feature
            ));
        } else if row.marked_default != defaults.contains(row.feature.as_str()) {
            let (is, marked) = if row.marked_default {
                ("is not", "marked")
            } else {
                ("is", "not marked")
            };
            problems.push(format!(
                "{name}: `{}` {is} a default feature but is {marked} `(default)` in the feature table",
                row.feature
            ));
        }
        if row.feature.starts_with(TEST_UTIL) && !row.enables.contains(TEST_HELPERS_ONLY) {
            problems.push(format!(
                "{name}: the feature table says what `{}` enables without \"{TEST_HELPERS_ONLY}\"",
                row.feature
            ));
        }
    }
    for feature in declared.difference(&listed) {
        problems.push(format!(
            "{name}: feature `{feature}` is missing from the feature table"
        ));
    }
}

/// The prefix of the features that turn on test helpers (`test-util`, `test-util-tracing`).
const TEST_UTIL: &str = "test-util";

/// What the feature table says of each of them.
const TEST_HELPERS_ONLY: &str = "test helpers only";

/// A row of a crate's feature table.
#[derive(Debug, PartialEq)]
struct FeatureRow {
    feature: String,
    marked_default: bool,
    /// The rest of the row: what the feature enables.
    enables: String,
}

/// The rows of the table following the `Feature Flags` heading: the feature is the first
/// cell's code span, `(default)` beside it marks a default feature.
fn feature_table(docs: &str) -> Option<Vec<FeatureRow>> {
    let mut lines = docs.lines().map(str::trim);
    lines.find(|line| {
        line.starts_with('#') && line.trim_start_matches('#').trim() == "Feature Flags"
    })?;
    let table = lines
        .skip_while(|line| line.is_empty())
        .take_while(|line| line.starts_with('|'));
    let rows = table
        .skip(2) // the header row and the delimiter row
        .map(|row| {
            let (first_cell, enables) = row
                .trim_start_matches('|')
                .split_once('|')
                .unwrap_or((row, ""));
            FeatureRow {
                feature: first_cell
                    .split('`')
                    .nth(1)
                    .unwrap_or(first_cell.trim())
                    .to_owned(),
                marked_default: first_cell.contains("(default)"),
                enables: enables.trim().trim_end_matches('|').trim().to_owned(),
            }
        })
        .collect();
    Some(rows)
}

/// The README opens with the demo and test commands and states the MSRV.
fn check_readme(root: &Path, rust_version: &str, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let readme = read(&root.join("README.md"))?;
    let opening: String = readme.lines().take(30).collect::<Vec<_>>().join("\n");
    for command in ["cargo xtask demo", "cargo xtask ci"] {
        if !opening.contains(command) {
            problems.push(format!(
                "README.md: the opening lines must show `{command}`"
            ));
        }
    }
    if !readme.contains(&format!("Rust {rust_version}")) {
        problems.push(format!(
            "README.md: must state the MSRV as `Rust {rust_version}`"
        ));
    }
    let quick_start: String = readme.lines().take(80).collect::<Vec<_>>().join("\n");
    for adapter in ["correlation_axum", "correlation_actix", "correlation_poem"] {
        if !quick_start.contains(adapter) {
            problems.push(format!(
                "README.md: the quick start for `{adapter}` must be within the first 80 lines"
            ));
        }
    }
    for (document, limit) in [("README.md", 400), ("BENCHMARKS.md", 200)] {
        let length = read(&root.join(document))?.lines().count();
        if length >= limit {
            problems.push(format!(
                "{document}: {length} lines, not under {limit}: move contributor material to \
                 CONTRIBUTING.md and keep the document for users"
            ));
        }
    }
    Ok(())
}

fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = ["crates", "examples", "tests", "xtask"]
        .iter()
        .map(|dir| root.join(dir))
        .collect();
    while let Some(dir) = pending.pop() {
        if !dir.exists() {
            continue;
        }
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// No placeholders left in committed code (`todo!` is clippy's `todo` lint; this is the
/// one it leaves out).
fn check_source(file: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    // Spelled in pieces so this file does not flag itself.
    let placeholder = ["unimple", "mented!("].concat();
    let text = read(file)?;
    for (number, line) in text.lines().enumerate() {
        if line.contains(&placeholder) {
            problems.push(format!(
                "{}:{}: `{placeholder}` left in",
                file.display(),
                number + 1
            ));
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_toml(path: &Path) -> anyhow::Result<toml::Table> {
    read(path)?
        .parse()
        .with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{FeatureRow, feature_table};

    #[test]
    fn feature_tables_read_the_first_cells_code_span_and_default_mark() {
        let docs = "# Crate\n\n## Feature Flags\n\n| feature | enables |\n|---|---|\n\
                    | `env-logger` (default) | the `format` function |\n| `kv` | key-values |\n\n\
                    | not | this table |\n";
        let row = |feature: &str, marked_default, enables: &str| FeatureRow {
            feature: feature.to_owned(),
            marked_default,
            enables: enables.to_owned(),
        };
        assert_eq!(
            feature_table(docs),
            Some(vec![
                row("env-logger", true, "the `format` function"),
                row("kv", false, "key-values")
            ])
        );
        assert_eq!(feature_table("## Features\n| a | b |\n"), None);
    }

    #[test]
    fn repository_is_tidy() {
        if let Err(err) = super::check(&crate::project_root()) {
            panic!("{err:#}");
        }
    }
}
