//! `flush`: remove everything connroute owns, and nothing else.

use super::args::Cli;
use super::{Run, runtime, system};
use crate::apply::{engine, lock::Lock};
use std::time::Duration;

/// Removes connroute's nft table, ip rules and routes under the lock.
pub fn run(cli: &Cli) -> Run {
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let report = engine::flush(&system(cli)).map_err(runtime)?;
    log::info!("flush: {}", report.summary());
    Ok(())
}
