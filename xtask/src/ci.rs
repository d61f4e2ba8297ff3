//! `cargo xtask ci`: exactly what CI checks, every cargo call `--locked`.

use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The applications that compile every Rust example of the README and of one adapter's
/// docs with that adapter alone, and run those that promise a log line.
const EXAMPLE_APPLICATIONS: [&str; 3] = [
    "correlation-docs-axum",
    "correlation-docs-actix",
    "correlation-docs-poem",
];

/// Runs every check in order and stops at the first failure.
pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    let started = Instant::now();
    step("tidy", || crate::tidy::check(&crate::project_root()))?;
    step("format", || Ok(cmd!(sh, "cargo fmt --all --check").run()?))?;
    step("clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --locked --workspace --all-targets --all-features -- -D warnings"
        )
        .run()?)
    })?;
    let skipped_services = crate::services::check()?;
    let _skip = skipped_services
        .as_deref()
        .map(|names| sh.push_env(correlation_test_services::SKIP_VARIABLE, names));
    // The examples' applications are tested on their own below, with their own features.
    let not_examples = &EXAMPLE_APPLICATIONS.map(|package| format!("--exclude={package}"));
    step("tests", || {
        Ok(cmd!(
            sh,
            "cargo test --locked --workspace {not_examples...} --all-features --all-targets"
        )
        .run()?)
    })?;
    step("doc tests", || {
        Ok(cmd!(
            sh,
            "cargo test --locked --workspace {not_examples...} --all-features --doc"
        )
        .run()?)
    })?;
    step("examples", || {
        // One application at a time: built together, their features would unify (actix-web
        // turns on tracing's `log`, which poem's access logs need) and hide a feature the
        // documents forget to name.
        for package in EXAMPLE_APPLICATIONS {
            cmd!(sh, "cargo test --locked -p {package}").run()?;
        }
        Ok(())
    })?;
    step("docs", || {
        let _deny = sh.push_env("RUSTDOCFLAGS", "-D warnings");
        Ok(cmd!(
            sh,
            "cargo doc --locked --workspace --no-deps --all-features"
        )
        .run()?)
    })?;
    step("public API", || crate::public_api::run(sh, false))?;
    step("duplicates", || crate::release::duplicates(sh))?;
    step("package and MSRV", || crate::release::package(sh))?;
    if crate::browser::chromium_available() {
        step("browser", || crate::browser::run(sh))?;
    } else if std::env::var_os("CI").is_some() {
        bail!(
            "ci step `browser` failed: `chromium` is not installed \
             (.ci/run installs it with `apt-get install -y chromium`)"
        );
    } else {
        eprintln!(
            "xtask: chromium is not installed; skipping the browser step \
             (CI runs it; locally: apt-get install -y chromium)"
        );
    }
    if cmd!(sh, "cargo hack --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        step("features", || {
            // Every feature of core on its own. The adapters forward core's features
            // unchanged, so for them only the features with code of their own (and none,
            // and the defaults) are checked.
            cmd!(
                sh,
                "cargo hack check --locked --each-feature -p correlation-core"
            )
            .run()?;
            for (adapter, own) in [
                ("correlation-axum", "env-logger,tower-http"),
                ("correlation-actix", "env-logger,tracing-actix-web"),
                ("correlation-poem", "env-logger"),
            ] {
                cmd!(
                    sh,
                    "cargo hack check --locked --each-feature -p {adapter} --include-features {own}"
                )
                .run()?;
            }
            Ok(())
        })?;
    } else {
        eprintln!("xtask: cargo-hack is not installed; skipping the per-feature check");
    }
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, run: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("xtask: == {name} ==");
    let started = Instant::now();
    run().with_context(|| format!("ci step `{name}` failed"))?;
    eprintln!("xtask: {name} ok in {:.0?}", started.elapsed());
    Ok(())
}
