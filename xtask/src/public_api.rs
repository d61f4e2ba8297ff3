//! `cargo xtask public-api [--bless]`: each published crate's public API, with every
//! feature, compared with the listing committed beside it in `public-api.txt`, so that
//! every change to the API shows in a diff.
//!
//! The listing is the `public-api` crate's rendering of rustdoc's JSON output, one line
//! per item, without blanket implementations (`impl<T> From<T> for T` and the like, which
//! every type has). rustdoc emits JSON only with an unstable flag, which the stable
//! toolchain accepts under `RUSTC_BOOTSTRAP=1`. `public-api` reads one JSON format
//! version: a toolchain that emits another needs the `public-api` release made for it.
//!
//! It also counts core's items, and fails when the crate root holds more than an
//! application needs to see (adapter-author items live in `correlation_core::adapter`,
//! the strategies in `correlation_core::strategy`), or the crate more than an application
//! and an adapter author need.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

/// The rustdoc JSON format version the `public-api` release in `[workspace.dependencies]`
/// reads.
const FORMAT_VERSION: u64 = 57;

/// The most items core's root may hold, with every feature.
const CORE_ROOT_LIMIT: usize = 40;

/// The most public items core may have in all, with every feature.
const CORE_CRATE_LIMIT: usize = 80;

/// Regenerates each published crate's listing and compares it with the committed one;
/// with `bless`, writes it instead.
pub(crate) fn run(sh: &Shell, bless: bool) -> anyhow::Result<()> {
    let root = crate::project_root();
    let target = target_directory(sh)?;
    let mut changed = Vec::new();
    let mut core_size = None;
    for name in crate::release::PUBLISHED {
        let json = rustdoc_json(sh, &target, name)?;
        let listing = listing(&json)?;
        if name == "correlation-core" {
            core_size = Some(ApiSize::of(&json)?);
        }
        let committed = root.join("crates").join(name).join("public-api.txt");
        if bless {
            std::fs::write(&committed, &listing)
                .with_context(|| format!("writing {}", committed.display()))?;
            eprintln!("xtask: wrote {}", committed.display());
            continue;
        }
        let old = std::fs::read_to_string(&committed).unwrap_or_default();
        if old != listing {
            eprintln!("{}", line_diff(&old, &listing, name));
            changed.push(name);
        }
    }
    if !changed.is_empty() {
        bail!(
            "the public API of {} differs from the committed listing (above: - committed, \
             + now); if the change is intended, run `cargo xtask public-api --bless` and \
             commit the listing",
            changed.join(", ")
        );
    }
    if let Some(size) = core_size {
        size.check_core()?;
    }
    Ok(())
}

/// Builds `name`'s rustdoc JSON with every feature and returns its path.
fn rustdoc_json(sh: &Shell, target: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
    cmd!(
        sh,
        "cargo rustdoc --locked --quiet -p {name} --lib --all-features -- -Z unstable-options --output-format json"
    )
    .run()?;
    let json = target
        .join("doc")
        .join(format!("{}.json", name.replace('-', "_")));
    let format: Value = serde_json::from_str(
        &std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?,
    )?;
    let version = format["format_version"].as_u64();
    if version != Some(FORMAT_VERSION) {
        bail!(
            "{} is rustdoc JSON format {version:?}, but the `public-api` crate in \
             [workspace.dependencies] reads format {FORMAT_VERSION}: use the `public-api` \
             release for this toolchain's format and update FORMAT_VERSION",
            json.display()
        );
    }
    Ok(json)
}

/// The listing written to `public-api.txt`.
fn listing(json: &Path) -> anyhow::Result<String> {
    let api = public_api::Builder::from_rustdoc_json(json)
        .omit_blanket_impls(true)
        .build()
        .with_context(|| format!("reading the public API from {}", json.display()))?;
    Ok(api.to_string())
}

/// How many named items a crate's documentation shows: modules, types, traits,
/// functions, constants, statics and macros, each counted once however many paths reach
/// it (impls, methods, fields and variants are parts of the item they belong to).
#[derive(Debug, PartialEq)]
struct ApiSize {
    /// The items the crate root shows, re-exports included.
    root: usize,
    /// Every item reachable from the root through public modules.
    all: usize,
}

impl ApiSize {
    /// Fails when core's root holds more than [`CORE_ROOT_LIMIT`] items, or the crate more
    /// than [`CORE_CRATE_LIMIT`].
    fn check_core(&self) -> anyhow::Result<()> {
        eprintln!(
            "xtask: correlation-core has {} items at the root, {} public items in all",
            self.root, self.all
        );
        if self.root > CORE_ROOT_LIMIT {
            bail!(
                "correlation-core's root holds {} items, more than {CORE_ROOT_LIMIT}: items for \
                 adapter authors belong in `adapter`, strategies in `strategy`, and an item \
                 nobody outside the crate needs is `pub(crate)`",
                self.root
            );
        }
        if self.all > CORE_CRATE_LIMIT {
            bail!(
                "correlation-core has {} public items, more than {CORE_CRATE_LIMIT}: make public \
                 only what an application or an adapter author needs (an item that exists for \
                 speed, a second way to do the same thing or a name only this crate uses is \
                 `pub(crate)`), and keep test helpers behind `test-util`",
                self.all
            );
        }
        Ok(())
    }

    fn of(json: &Path) -> anyhow::Result<Self> {
        let krate: Value = serde_json::from_str(&std::fs::read_to_string(json)?)?;
        Self::of_crate(&krate)
    }

    fn of_crate(krate: &Value) -> anyhow::Result<Self> {
        let index = &krate["index"];
        let root_id = id_key(&krate["root"]).context("rustdoc JSON without a root")?;
        let root = module_items(index, &root_id)?.len();
        let mut seen = BTreeSet::new();
        let mut pending = vec![root_id];
        while let Some(module) = pending.pop() {
            for item in module_items(index, &module)? {
                let target = resolve(index, &item);
                if !seen.insert(target.clone()) {
                    continue;
                }
                if index[&target]["inner"].get("module").is_some() {
                    pending.push(target);
                }
            }
        }
        Ok(Self {
            root,
            all: seen.len(),
        })
    }
}

/// The ids of the items a module shows.
fn module_items(index: &Value, module: &str) -> anyhow::Result<Vec<String>> {
    let items = index[module]["inner"]["module"]["items"]
        .as_array()
        .with_context(|| format!("item {module} is not a module"))?;
    Ok(items.iter().filter_map(id_key).collect())
}

/// What a re-export of this crate's own item names; anything else is itself.
fn resolve(index: &Value, item: &str) -> String {
    index[item]["inner"]["use"]["id"]
        .as_u64()
        .map(|target| target.to_string())
        .filter(|target| index.get(target).is_some())
        .unwrap_or_else(|| item.to_owned())
}

fn id_key(id: &Value) -> Option<String> {
    id.as_u64().map(|id| id.to_string())
}

/// The lines only in `old` (`-`) and only in `new` (`+`), in `new`'s order: a listing is
/// sorted and each line is unique, so that is the whole change.
fn line_diff(old: &str, new: &str, name: &str) -> String {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut diff = format!("--- crates/{name}/public-api.txt\n+++ {name} now\n");
    for line in old.lines().filter(|line| !new_lines.contains(line)) {
        diff.push_str(&format!("-{line}\n"));
    }
    for line in new.lines().filter(|line| !old_lines.contains(line)) {
        diff.push_str(&format!("+{line}\n"));
    }
    diff
}

/// The workspace's target directory, wherever `CARGO_TARGET_DIR` or the configuration
/// puts it.
fn target_directory(sh: &Shell) -> anyhow::Result<PathBuf> {
    let metadata: Value = serde_json::from_str(
        &cmd!(sh, "cargo metadata --locked --format-version 1 --no-deps")
            .quiet()
            .read()?,
    )?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata gave no target directory")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A root with a module, a struct re-exported both at the root and inside the module,
    /// and a re-export of another crate's item.
    #[test]
    fn an_item_reached_by_two_paths_counts_once_and_the_root_counts_what_it_shows() {
        let krate = json!({
            "root": 0,
            "index": {
                "0": {"inner": {"module": {"items": [1, 3, 4]}}},
                "1": {"inner": {"module": {"items": [2]}}},
                "2": {"inner": {"struct": {}}},
                "3": {"inner": {"use": {"id": 2}}},
                "4": {"inner": {"use": {"id": 99}}},
            }
        });
        assert_eq!(
            ApiSize::of_crate(&krate).unwrap(),
            ApiSize { root: 3, all: 3 }
        );
    }

    #[test]
    fn core_may_reach_each_limit_but_not_pass_it() {
        let size = |root, all| ApiSize { root, all };
        size(CORE_ROOT_LIMIT, CORE_CRATE_LIMIT)
            .check_core()
            .unwrap();
        let root = size(CORE_ROOT_LIMIT + 1, CORE_CRATE_LIMIT).check_core();
        assert!(
            root.unwrap_err()
                .to_string()
                .contains("root holds 41 items")
        );
        let all = size(CORE_ROOT_LIMIT, CORE_CRATE_LIMIT + 1).check_core();
        assert!(all.unwrap_err().to_string().contains("has 81 public items"));
    }

    #[test]
    fn the_diff_shows_removed_and_added_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nc\nd\n", "x");
        assert!(diff.ends_with("-b\n+d\n"), "{diff}");
    }
}
