//! `apply`: make the system match the config.

use super::args::Cli;
use super::{Run, facts, load, runtime, system, table_names_free};
use crate::apply::{engine, lock::Lock};
use crate::plan;
use std::time::Duration;

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    let config = load(cli)?;
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let p = plan::plan(&config, &facts(cli, &config, true)?);
    table_names_free(cli, &p)?;
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    match engine::apply(&p, &system(cli), force) {
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            Ok(())
        }
        Err(e) => {
            log::error!("apply failed, previous state kept: {e}");
            Err(runtime(format!("apply failed, previous state kept: {e}")))
        }
    }
}
