//! The workspace as cargo sees it, from `cargo metadata --format-version 1`: only the
//! fields the tasks read.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use semver::Version;
use serde::Deserialize;
use xshell::{Shell, cmd};

/// The output of `cargo metadata`.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) packages: Vec<Package>,
    pub(crate) workspace_members: Vec<String>,
    /// Absent with `--no-deps`.
    pub(crate) resolve: Option<Resolve>,
    pub(crate) target_directory: PathBuf,
}

/// One package of the workspace or of its dependency graph.
#[derive(Debug, Deserialize)]
pub(crate) struct Package {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) version: Version,
    /// As written in the manifest: `1.85` or `1.85.0`.
    pub(crate) rust_version: Option<String>,
    /// The registries it may be published to: empty for `publish = false`, absent for any.
    pub(crate) publish: Option<Vec<String>>,
    pub(crate) features: BTreeMap<String, Vec<String>>,
    pub(crate) manifest_path: PathBuf,
    pub(crate) targets: Vec<Target>,
    /// The manifest's `[package.metadata]` table.
    pub(crate) metadata: Option<serde_json::Value>,
}

/// A library, binary, test, bench or example of a package.
#[derive(Debug, Deserialize)]
pub(crate) struct Target {
    pub(crate) kind: Vec<String>,
    pub(crate) src_path: PathBuf,
}

/// The resolved dependency graph.
#[derive(Debug, Deserialize)]
pub(crate) struct Resolve {
    pub(crate) nodes: Vec<Node>,
}

/// A package in the resolved graph with its edges.
#[derive(Debug, Deserialize)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) deps: Vec<NodeDep>,
}

/// An edge of the resolved graph.
#[derive(Debug, Deserialize)]
pub(crate) struct NodeDep {
    pub(crate) pkg: String,
    pub(crate) dep_kinds: Vec<DepKind>,
}

/// Why an edge exists: `kind` is `dev`, `build`, or absent for a normal dependency.
#[derive(Debug, Deserialize)]
pub(crate) struct DepKind {
    pub(crate) kind: Option<String>,
}

impl Metadata {
    /// `cargo metadata` for the workspace around `dir`, with `options` such as
    /// `--no-deps`, `--locked` or `--all-features`.
    pub(crate) fn read(sh: &Shell, dir: &Path, options: &[&str]) -> anyhow::Result<Self> {
        let manifest = dir.join("Cargo.toml");
        let json = cmd!(
            sh,
            "cargo metadata --format-version 1 --manifest-path {manifest} {options...}"
        )
        .quiet()
        .read()?;
        serde_json::from_str(&json).context("parsing the output of `cargo metadata`")
    }

    /// The package named `name`.
    pub(crate) fn package(&self, name: &str) -> anyhow::Result<&Package> {
        self.packages
            .iter()
            .find(|package| package.name == name)
            .with_context(|| format!("`cargo metadata` lists no package `{name}`"))
    }

    /// The workspace's own packages.
    pub(crate) fn members(&self) -> impl Iterator<Item = &Package> {
        self.packages
            .iter()
            .filter(|package| self.workspace_members.contains(&package.id))
    }

    /// The packages by id.
    pub(crate) fn packages_by_id(&self) -> HashMap<&str, &Package> {
        self.packages
            .iter()
            .map(|package| (package.id.as_str(), package))
            .collect()
    }

    /// The resolved graph's nodes by id (none with `--no-deps`).
    pub(crate) fn nodes_by_id(&self) -> HashMap<&str, &Node> {
        self.resolve
            .iter()
            .flat_map(|resolve| &resolve.nodes)
            .map(|node| (node.id.as_str(), node))
            .collect()
    }
}

impl Package {
    /// Whether `cargo publish` may publish it.
    pub(crate) fn is_published(&self) -> bool {
        self.publish
            .as_ref()
            .is_none_or(|registries| !registries.is_empty())
    }

    /// The source file of its library target.
    pub(crate) fn lib_path(&self) -> anyhow::Result<&Path> {
        self.targets
            .iter()
            .find(|target| target.kind.iter().any(|kind| kind == "lib"))
            .map(|target| target.src_path.as_path())
            .with_context(|| format!("`{}` has no library target", self.name))
    }

    /// Its `rust-version` as a full version (`1.85` reads as `1.85.0`).
    pub(crate) fn rust_version(&self) -> anyhow::Result<Option<Version>> {
        self.rust_version
            .as_deref()
            .map(|text| {
                rust_version(text).with_context(|| format!("`{}`'s rust-version", self.name))
            })
            .transpose()
    }
}

impl Node {
    /// The packages it depends on through normal (not dev or build) edges.
    pub(crate) fn normal_dependencies(&self) -> impl Iterator<Item = &str> {
        self.deps
            .iter()
            .filter(|dep| dep.dep_kinds.iter().any(|kind| kind.kind.is_none()))
            .map(|dep| dep.pkg.as_str())
    }
}

/// A `rust-version` (`1.85`, or `1.85.0` as `rustc --version` prints it) as a version:
/// cargo allows leaving out the minor and patch numbers, semver does not.
pub(crate) fn rust_version(text: &str) -> anyhow::Result<Version> {
    let missing = match text.split('.').count() {
        1 => ".0.0",
        2 => ".0",
        _ => "",
    };
    Version::parse(&format!("{text}{missing}"))
        .with_context(|| format!("`{text}` is not a Rust version"))
}

#[cfg(test)]
mod tests {
    use super::rust_version;

    #[test]
    fn rust_versions_compare_as_versions() {
        let version = |text| rust_version(text).unwrap();
        assert!(version("1.89") > version("1.85"));
        assert!(version("1.100") > version("1.99.9"));
        assert_eq!(version("1.85"), version("1.85.0"));
        assert_eq!(version("1"), version("1.0.0"));
        assert!(rust_version("1.x").is_err());
    }
}
