//! `apply`: make the system match the config.

use super::args::Cli;
use super::{
    Error, Run, live_facts, load_with, need_root, open_kernel, read_ids, runtime, system,
    table_names_free,
};
use crate::apply::{apply::apply, error::ApplyError, lock::Lock};
use crate::ids::{self, Ids};
use crate::plan::plan;
use crate::service;
use crate::watch::Applied;
use std::time::Duration;

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    // A bad config fails at once (exit 2), without waiting for the lock.
    load_with(cli, &read_ids(cli)?)?;
    need_root("apply")?;
    locked(cli, force, &mut || false).map(drop)
}

/// Takes the lock, then — unless `stop()` reports a stop request or the
/// init script (`--init-script`) is disabled — reads the config, the
/// recorded allocations and netifd state as they are now, plans and
/// applies. Checking after the lock means a run that waited while the
/// package was being removed installs nothing.
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
    let previous = read_ids(cli)?;
    let config = load_with(cli, &previous)?;
    let mut k = open_kernel(cli)?;
    let mut f = live_facts(cli, &config, &mut k, true)?;
    let mut p = plan(&config, &f);
    table_names_free(cli, &p)?;
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    // A gateway whose next hop the kernel refuses becomes inactive; the
    // run is then applied without it (once per gateway: bounded).
    let result = loop {
        match apply(&mut k, &p, &system(cli), force) {
            Err(ApplyError::Unreachable { gateway, why }) if !f.refused.contains_key(&gateway) => {
                log::warn!("gateway {gateway} inactive: {why}");
                f.refused.insert(gateway, why);
                p = plan(&config, &f);
            }
            r => break r,
        }
    };
    // An error is logged by whoever reports it (main, or watch's retry).
    let report = result?;
    log::info!("apply: {}", report.summary());
    record_ids(cli, &previous, &config.ids)?;
    Ok(if report.changes.is_empty() {
        Applied::Unchanged
    } else {
        Applied::Changed(report.summary())
    })
}

/// Writes the allocations after a successful apply, only when they changed.
fn record_ids(cli: &Cli, previous: &Ids, now: &Ids) -> Run {
    if previous == now {
        return Ok(());
    }
    ids::write(&cli.ids, now).map_err(|e| {
        runtime(format!(
            "applied, but the allocations are not recorded: {e}"
        ))
    })?;
    log::debug!("recorded allocations in {}", cli.ids.display());
    Ok(())
}
