//! Which netifd hotplug events concern connroute.

use crate::config::Config;

/// Actions that can change a gateway's state. Everything else (mwan3's
/// `connected`, `ifup-failed`, …) is ignored at once.
pub fn handles(action: &str) -> bool {
    matches!(action, "ifup" | "ifdown" | "ifupdate")
}

/// True when some enabled gateway or rule uses the interface.
pub fn concerns(config: &Config, interface: &str) -> bool {
    !interface.is_empty() && config.interfaces().iter().any(|n| n == interface)
}
