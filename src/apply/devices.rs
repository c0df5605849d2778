//! Degrade instead of failing: gateways whose device (static `device`, or
//! netifd's `l3_device` of an interface) is missing or down become
//! inactive (the plan says why), the others are applied.

use super::kernel::{Kernel, Link};
use crate::config::Config;
use crate::facts::Facts;
use crate::plan::{Plan, Route};
use std::collections::BTreeMap;

/// For status: active gateways of `plan` with a route missing from the
/// kernel's `have` whose next hop is not on a connected network, with why
/// (for [`crate::facts::Facts::refused`]): what apply found when the
/// kernel refused that route.
pub fn unreachable(k: &mut dyn Kernel, plan: &Plan, have: &[Route]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for g in plan.gateways.iter().filter(|g| g.active) {
        let missing = g
            .routes
            .iter()
            .filter(|r| !have.iter().any(|h| super::diff::same_route(h, r)));
        for r in missing {
            let Some(via) = r.via else { continue };
            if !k.reaches(via, r.device.as_deref()) {
                out.insert(g.name.clone(), format!("next hop not reachable: {via}"));
            }
        }
    }
    out
}

/// The devices of enabled gateways that cannot carry a route now, with
/// why, for [`crate::facts::Facts::unusable_devices`]: static `device`s and
/// the `l3_device`s netifd reports for their interfaces. Each is logged as
/// a warning.
pub fn unusable(k: &mut dyn Kernel, config: &Config, facts: &Facts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Each device asked once (250 gateways on one LAN: one lookup).
    let mut seen: BTreeMap<&str, Link> = BTreeMap::new();
    for g in config.gateways.iter().filter(|g| g.enabled) {
        let up = |n: &String| facts.interfaces.get(n).filter(|i| i.up);
        let l3 = g.interfaces.iter().filter_map(|n| up(n)?.device.as_ref());
        let devs: Vec<&String> = match &g.device {
            Some(d) => vec![d],
            None => l3.collect(),
        };
        for d in devs {
            let link = *seen.entry(d).or_insert_with(|| k.link(d));
            let why = match link {
                Link::Up => continue,
                Link::Missing => "does not exist",
                Link::Down => "is down",
            };
            log::warn!("gateway {} inactive: device {d} {why}", g.name);
            out.insert(d.clone(), why.to_string());
        }
    }
    out
}
