//! Degrade instead of failing: static gateways whose `device` is missing
//! or down become inactive (the plan says why), the others are applied.

use super::kernel::{Kernel, Link};
use crate::config::Config;
use std::collections::BTreeMap;

/// The devices of enabled static gateways that cannot carry a route now,
/// with why, for [`crate::facts::Facts::unusable_devices`]. Each is logged
/// as a warning.
pub fn unusable(k: &mut dyn Kernel, config: &Config) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for g in config
        .gateways
        .iter()
        .filter(|g| g.enabled && g.interfaces.is_empty())
    {
        let Some(d) = &g.device else { continue };
        let why = match k.link(d) {
            Link::Up => continue,
            Link::Missing => "does not exist",
            Link::Down => "is down",
        };
        log::warn!("gateway {} inactive: device {d} {why}", g.name);
        out.insert(d.clone(), why.to_string());
    }
    out
}
