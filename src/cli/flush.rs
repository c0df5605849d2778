//! `flush`: remove everything connroute owns, and nothing else.

use super::args::Cli;
use super::{Run, open_kernel, runtime, system};
use crate::apply::{flush::flush, lock::Lock};
use std::time::Duration;

/// Removes connroute's nft table, ip rules and routes under the lock.
pub fn run(cli: &Cli) -> Run {
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let mut k = open_kernel(cli)?;
    let report = flush(&mut k, &system(cli))?;
    log::info!("flush: {}", report.summary());
    Ok(())
}
