//! `apply`: make the system match the config.

use super::args::Cli;
use super::{Error, Run, facts, load, runtime, system};
use crate::apply::{engine, lock::Lock};
use crate::watch::Applied;
use crate::{plan, service};
use std::time::Duration;

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    load(cli)?; // a bad config fails at once (exit 2), without the lock
    locked(cli, force, &mut || false).map(drop)
}

/// Takes the lock, then — unless `stop()` reports a stop request or the
/// init script (`--init-script`) is disabled — re-reads the config and
/// netifd state, plans and applies. Checking after the lock means a run
/// that waited while the package was being removed installs nothing.
pub(super) fn locked(
    cli: &Cli,
    force: bool,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Applied, Error> {
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    if stop() {
        return Ok(Applied::Skipped);
    }
    if let Some(init) = &cli.init_script {
        if !service::enabled(init, Duration::from_secs(10)) {
            log::info!("{} is disabled: nothing applied", init.display());
            return Ok(Applied::Skipped);
        }
    }
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, true)?);
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    match engine::apply(&p, &system(cli), force) {
        Ok(report) if report.changes.is_empty() => {
            log::info!("apply: {}", report.summary());
            Ok(Applied::Unchanged)
        }
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            Ok(Applied::Changed(report.summary()))
        }
        Err(e) => {
            log::error!("apply failed, previous state kept: {e}");
            Err(runtime(format!("apply failed, previous state kept: {e}")))
        }
    }
}
