//! `apply`: make the system match the config.

use super::args::Cli;
use super::{Run, live_facts, load_with, open_kernel, read_ids, runtime, system, table_names_free};
use crate::apply::{apply::apply, error::ApplyError, lock::Lock};
use crate::ids::{self, Ids};
use crate::plan::plan;
use std::time::Duration;

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    let mut previous = read_ids(cli)?;
    let mut config = load_with(cli, &previous)?;
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    // Another run may have recorded allocations while we waited.
    let now = read_ids(cli)?;
    if now != previous {
        config = load_with(cli, &now)?;
        previous = now;
    }
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
    match result {
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            record_ids(cli, &previous, &config.ids)
        }
        Err(e) => {
            log::error!("{e}");
            Err(e.into())
        }
    }
}

/// Writes the allocations after a successful apply, only when they changed.
fn record_ids(cli: &Cli, previous: &Ids, now: &Ids) -> Run {
    if previous == now {
        return Ok(());
    }
    ids::write(&cli.ids, now).map_err(|e| {
        let msg = format!("applied, but the allocations are not recorded: {e}");
        log::error!("{msg}");
        runtime(msg)
    })?;
    log::debug!("recorded allocations in {}", cli.ids.display());
    Ok(())
}
