//! `hotplug`: re-apply when netifd reports a change to an interface the
//! config uses (ACTION and INTERFACE from the environment).

use super::apply::{Early, run_early};
use super::args::Cli;
use super::{Run, need_root};
use crate::hotplug;

/// Re-applies for ifup/ifdown/ifupdate of a used interface; ignores the rest.
pub fn run(cli: &Cli) -> Run {
    let action = std::env::var("ACTION").unwrap_or_default();
    let iface = std::env::var("INTERFACE").unwrap_or_default();
    if !hotplug::handles(&action) {
        return Ok(());
    }
    let early = Early::read(cli)?;
    if !hotplug::concerns(&early.config, &iface) {
        return Ok(());
    }
    log::debug!("hotplug {action} {iface}: re-applying");
    need_root("hotplug")?;
    run_early(cli, false, early)
}
