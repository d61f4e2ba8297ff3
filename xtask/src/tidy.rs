//! Repository hygiene checks, run by `cargo xtask tidy`, by `cargo xtask ci` and as a
//! `#[test]`, so they hold on every `cargo test` too.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Runs every check and reports all problems at once.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let rust_version = workspace_rust_version(root)?;
    for manifest in member_manifests(root)? {
        check_manifest(&manifest, &mut problems)?;
    }
    for crate_dir in published_crates(root)? {
        check_published_crate(&crate_dir, &rust_version, &mut problems)?;
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

fn workspace_rust_version(root: &Path) -> anyhow::Result<String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|version| version.trim_matches('"').to_owned())
        .context("the root Cargo.toml has no rust-version in [workspace.package]")
}

fn member_manifests(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .context("the root Cargo.toml has no members list")?;
    Ok(members
        .split(',')
        .map(|member| member.trim().trim_matches('"'))
        .filter(|member| !member.is_empty())
        .map(|member| root.join(member).join("Cargo.toml"))
        .collect())
}

/// Every dependency is inherited from `[workspace.dependencies]`, and lints from `[workspace.lints]`.
fn check_manifest(manifest: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let text = read(manifest)?;
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let is_dependency_section = section.ends_with("dependencies]");
        // A crate's dev-dependency on itself (to turn on its test features) is by path only,
        // so `cargo package` can drop it; the workspace's entry carries a version.
        let is_self_by_path = line.contains("path = \".\"");
        if is_dependency_section
            && line.contains('=')
            && !line.contains("workspace = true")
            && !is_self_by_path
        {
            problems.push(format!(
                "{}: `{line}` does not inherit from [workspace.dependencies]",
                manifest.display()
            ));
        }
    }
    if !text.contains("[lints]\nworkspace = true") {
        problems.push(format!(
            "{}: missing `[lints] workspace = true`",
            manifest.display()
        ));
    }
    Ok(())
}

/// The crates under `crates/` that are published (support crates say `publish = false`).
fn published_crates(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut crates = Vec::new();
    for entry in fs::read_dir(root.join("crates")).context("reading crates/")? {
        let dir = entry?.path();
        if !read(&dir.join("Cargo.toml"))?.contains("\npublish = false") {
            crates.push(dir);
        }
    }
    crates.sort();
    Ok(crates)
}

/// docs.rs metadata, the `doc_cfg` attribute and the MSRV section in the crate docs.
fn check_published_crate(
    dir: &Path,
    rust_version: &str,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let manifest = read(&dir.join("Cargo.toml"))?;
    if !manifest.contains("[package.metadata.docs.rs]") {
        problems.push(format!("{}: no [package.metadata.docs.rs]", dir.display()));
    }
    let lib = read(&dir.join("src/lib.rs"))?;
    if !lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]") {
        problems.push(format!(
            "{}: lib.rs lacks the docsrs doc_cfg attribute",
            dir.display()
        ));
    }
    let msrv = format!("minimum supported Rust version is **{rust_version}**");
    if !lib.contains("## Supported Rust Versions") || !lib.contains(&msrv) {
        problems.push(format!(
            "{}: crate docs must state the MSRV {rust_version}",
            dir.display()
        ));
    }
    if !lib.contains("## Feature Flags") {
        problems.push(format!(
            "{}: crate docs lack `## Feature Flags`",
            dir.display()
        ));
    }
    Ok(())
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

/// No placeholders or debugging leftovers in committed code.
fn check_source(file: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    // Spelled in pieces so this file does not flag itself.
    let forbidden = [
        ["to", "do!("].concat(),
        ["unimple", "mented!("].concat(),
        ["db", "g!("].concat(),
    ];
    let text = read(file)?;
    for (number, line) in text.lines().enumerate() {
        for pattern in &forbidden {
            if line.contains(pattern.as_str()) {
                problems.push(format!(
                    "{}:{}: `{pattern}` left in",
                    file.display(),
                    number + 1
                ));
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_is_tidy() {
        if let Err(err) = super::check(&crate::project_root()) {
            panic!("{err:#}");
        }
    }
}
