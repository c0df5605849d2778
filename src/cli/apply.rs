//! `apply`: make the system match the config.

use super::args::Cli;
use super::{Run, live_plan, load, open_kernel, runtime, system, table_names_free};
use crate::apply::{apply::apply, lock::Lock};
use std::time::Duration;

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    let config = load(cli)?;
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let mut k = open_kernel(cli)?;
    let p = live_plan(cli, &config, &mut k, true)?;
    table_names_free(cli, &p)?;
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    match apply(&mut k, &p, &system(cli), force) {
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            Ok(())
        }
        Err(e) => {
            log::error!("{e}");
            Err(e.into())
        }
    }
}
