//! The local services the integration tests need: found, or reported with how to install.

use anyhow::bail;
use correlation_test_services::Service;

/// Checks every service. In CI (`CI` set) a missing one fails the run; on a developer's
/// machine it prints a notice naming each missing service and how to install it, and
/// returns the value for `correlation_test_services::SKIP_VARIABLE` so its tests are
/// skipped.
pub(crate) fn check() -> anyhow::Result<Option<String>> {
    let missing: Vec<Service> = Service::ALL
        .into_iter()
        .filter(|service| !service.is_reachable())
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let list = missing
        .iter()
        .map(|service| {
            format!(
                "  {service} at {} ({})",
                service.addr(),
                service.install_hint()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    if std::env::var_os("CI").is_some() {
        bail!("services the tests need are not reachable:\n{list}");
    }
    eprintln!(
        "xtask: these services are not running, so the tests that need them are skipped \
         (CI runs them):\n{list}"
    );
    Ok(Some(
        missing
            .iter()
            .map(|service| service.name())
            .collect::<Vec<_>>()
            .join(","),
    ))
}
