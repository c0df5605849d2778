//! The one place that changes the system: compares the plan with what the
//! kernel has and makes them match, routes first, then ip rules, then the
//! nft table in one transaction, rolling back on failure. Every kernel
//! access goes through [`kernel::Kernel`].

#[allow(clippy::module_inception)]
pub mod apply;
pub mod banks;
pub mod child;
pub mod devices;
pub mod diff;
pub mod dump;
pub mod error;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod fake_table;
pub mod flush;
pub mod incr;
#[cfg(test)]
mod incr_apply_tests;
pub mod kernel;
pub mod lock;
pub mod monitor;
pub mod netlink;
pub mod nfgen;
pub mod nfnl;
pub mod nft;
#[cfg(test)]
mod owned_tests;
#[cfg(test)]
mod prepare_tests;
pub mod rt_tables;
pub mod rtnl;
pub mod runstate;
pub mod spawn;
pub mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transition_tests;

use nft::Nft;
use std::path::PathBuf;

/// Where connroute's state lives on the system.
#[derive(Debug, Clone)]
pub struct System {
    /// How to run nft.
    pub nft: Nft,
    /// `rt_tables.d` file naming connroute's tables; `None` to skip.
    pub rt_tables: Option<PathBuf>,
    /// Run-state file (what the last apply loaded); `None` to keep none,
    /// which makes every run list the nft table.
    pub state: Option<PathBuf>,
}

/// What a run changed, one line per change.
#[derive(Debug, Default)]
pub struct Report {
    /// Human-readable changes, in the order they were made.
    pub changes: Vec<String>,
}

impl Report {
    /// One log line summarising the run.
    pub fn summary(&self) -> String {
        if self.changes.is_empty() {
            "nothing changed".into()
        } else {
            self.changes.join("; ")
        }
    }
}
