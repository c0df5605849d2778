//! `flush`: remove everything connroute owns, and nothing else.

use super::args::Cli;
use super::{Run, need_root, open_kernel, runtime, system};
use crate::apply::{flush::flush, lock::Lock};
use std::time::Duration;

/// Removes connroute's nft table, ip rules and routes under the lock.
pub fn run(cli: &Cli) -> Run {
    need_root("flush")?;
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let mut k = open_kernel(cli)?;
    let report = flush(&mut k, &system(cli))?;
    // The allocations stay (a later apply keeps every gateway's mark and
    // table); only what killed writes of them left behind goes.
    crate::ids::remove_temporaries(&cli.ids);
    log::info!("flush: {}", report.summary());
    Ok(())
}
