//! Reads netifd's interface state through the `ubus` command.

use crate::config::Config;
use crate::facts::Facts;
use std::path::Path;
use std::process::Command;

/// Every OpenWrt interface name the config refers to, sorted.
pub fn referenced(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .enabled_gateways()
        .flat_map(|g| g.interfaces.iter().cloned())
        .chain(
            config
                .rules
                .iter()
                .flat_map(|r| r.in_interface.iter().cloned()),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `ubus call network.interface dump`.
pub fn dump(ubus: &Path) -> Result<Facts, String> {
    let out = Command::new(ubus)
        .args(["call", "network.interface", "dump"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", ubus.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} call network.interface dump failed ({}): {}",
            ubus.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Facts::from_dump(&String::from_utf8_lossy(&out.stdout))
}
