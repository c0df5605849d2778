//! The one place that changes the system: compares the plan with what the
//! kernel has and makes them match, routes first, then ip rules, then the
//! nft table in one transaction, rolling back on failure. Every kernel
//! access goes through [`kernel::Kernel`].

#[allow(clippy::module_inception)]
pub mod apply;
pub mod devices;
pub mod diff;
pub mod error;
#[cfg(test)]
mod fake;
pub mod flush;
pub mod kernel;
pub mod lock;
pub mod netlink;
pub mod nfgen;
pub mod nft;
pub mod rtnl;
pub mod runstate;
pub mod status;
#[cfg(test)]
mod tests;

use crate::plan::Plan;
use nft::Nft;
use std::fmt::Write as _;
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

fn write_rt_tables(sys: &System, plan: &Plan, report: &mut Report) {
    let Some(path) = &sys.rt_tables else { return };
    let mut text = String::from("# Written by connroute: its routing tables, by gateway name.\n");
    for (id, name) in &plan.table_names {
        let _ = writeln!(text, "{id}\t{name}");
    }
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    let Some(dir) = path.parent() else { return };
    if dir.parent().is_some_and(|p| !p.exists()) {
        return; // no iproute2 config directory: nothing reads the names
    }
    let tmp = path.with_extension("tmp");
    let ok = std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, &text).is_ok()
        && std::fs::rename(&tmp, path).is_ok();
    if ok {
        report.changes.push(format!("wrote {}", path.display()));
    } else {
        log::warn!("could not write {}", path.display());
    }
}
