//! The desired state: what the system must look like for a config and the
//! live facts. Pure: nothing here reads or changes the system.

mod batch;
mod bulk;
mod classify;
mod iprule;
mod ruleset;
mod runs;
mod sets;

use crate::config::{Config, Family, Gateway, Rule};
use crate::facts::Facts;
use std::fmt;
use std::net::IpAddr;

pub use batch::{Commands, Ruleset, Texts};
pub use iprule::{IpRule, Layout, MAX_BANK, RuleAction, with_capacity};
pub use ruleset::{
    CHAIN_PREROUTING, TABLE, fingerprint_in_comment, fingerprint_of, gateway_counter_name,
};

/// The routing protocol number connroute tags its routes and ip rules with
/// (see `/etc/iproute2/rt_protos`: unassigned, below the 240+ private range
/// other tools pick from).
pub const RTPROT_CONNROUTE: u8 = 197;
/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// A default route in a gateway's table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// Address family.
    pub family: Family,
    /// Routing table id.
    pub table: u32,
    /// Next hop; `None` for a device route.
    pub via: Option<IpAddr>,
    /// Output device; `None` lets the kernel find it from the next hop.
    pub device: Option<String>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.family == Family::V6 { "-6 " } else { "" };
        write!(f, "ip {v}route default")?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(d) = &self.device {
            write!(f, " dev {d}")?;
        }
        write!(f, " table {} proto {RTPROT_CONNROUTE}", self.table)
    }
}

/// What became of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayState {
    /// Section name.
    pub name: String,
    /// Its mark.
    pub mark: u32,
    /// Its table.
    pub table: u32,
    /// True when routes, rules and classification are installed.
    pub active: bool,
    /// Why it is inactive, or which interfaces made it active.
    pub reason: String,
    /// Its default routes, one per family served.
    pub routes: Vec<Route>,
}

impl GatewayState {
    /// Families this gateway routes.
    pub fn families(&self) -> Vec<Family> {
        self.routes.iter().map(|r| r.family).collect()
    }
}

/// What became of one rule. Kept for every rule of the config through
/// the whole apply, so only what cannot be derived is stored: one name
/// block per rule; the gateway is an index and the counter's name is made
/// on demand (10,000 rules held three names each before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleState {
    /// Section name or generated id.
    pub name: Box<str>,
    /// Target gateway: its index in [`Plan::gateways`].
    pub gateway: usize,
    /// Families it is installed for (empty: not installed).
    pub families: &'static [Family],
    /// Why it is not installed, if so (empty when installed).
    pub reason: Box<str>,
}

impl RuleState {
    /// Name of its nft counter.
    pub fn counter(&self) -> String {
        ruleset::rule_counter_name(&self.name)
    }
}

/// The whole desired state.
#[derive(Debug, Clone)]
pub struct Plan {
    /// False when `globals.enabled` is 0: everything is to be removed.
    pub enabled: bool,
    /// Per gateway.
    pub gateways: Vec<GatewayState>,
    /// Per enabled rule.
    pub rules: Vec<RuleState>,
    /// Routes to install.
    pub routes: Vec<Route>,
    /// ip rules to install.
    pub ip_rules: Vec<IpRule>,
    /// The nft batch replacing `table inet connroute`.
    pub ruleset: Ruleset,
    /// Hash of the ruleset, also stored in the table to skip identical reloads.
    pub fingerprint: String,
    /// `id name` lines for `rt_tables.d`.
    pub table_names: Vec<(u32, String)>,
}

fn resolve(g: &Gateway, facts: &Facts) -> Result<(Vec<Route>, String), String> {
    if let Some(why) = facts.refused.get(&g.name) {
        return Err(why.clone());
    }
    if g.interfaces.is_empty() {
        resolve_static(g, facts)
    } else {
        resolve_interfaces(g, facts)
    }
}

/// `g`'s default route in its table for `family`.
fn route_of(g: &Gateway, family: Family, via: Option<IpAddr>, device: Option<String>) -> Route {
    Route {
        family,
        table: g.table,
        via,
        device,
    }
}

/// A gateway given by next hops and/or a device: its routes, unless its
/// device is missing or down.
fn resolve_static(g: &Gateway, facts: &Facts) -> Result<(Vec<Route>, String), String> {
    let route = |family, via, device| route_of(g, family, via, device);
    if let Some((d, why)) = g
        .device
        .as_ref()
        .and_then(|d| Some((d, facts.unusable_devices.get(d)?)))
    {
        return Err(format!("device {d} {why}"));
    }
    let mut routes = Vec::new();
    if let Some(v4) = g.gateway {
        routes.push(route(Family::V4, Some(IpAddr::V4(v4)), g.device.clone()));
    }
    if let Some(v6) = g.gateway6 {
        routes.push(route(Family::V6, Some(IpAddr::V6(v6)), g.device.clone()));
    }
    if routes.is_empty() {
        // Only a device: follow the main table's default route through
        // it when the kernel has one (DHCP clients), else a device route.
        routes = Family::ALL
            .iter()
            .map(|f| {
                let learned = g
                    .device
                    .as_ref()
                    .and_then(|d| facts.kernel_next_hops.get(&(d.clone(), *f)).copied());
                route(*f, learned, g.device.clone())
            })
            .collect();
    }
    Ok((routes, "static".into()))
}

/// A gateway bound to OpenWrt interfaces: next hops and device from the
/// first of them that is up (explicit `gateway`/`gateway6`/`device` win).
fn resolve_interfaces(g: &Gateway, facts: &Facts) -> Result<(Vec<Route>, String), String> {
    let route = |family, via, device| route_of(g, family, via, device);
    let ups: Vec<(&String, &crate::facts::Interface)> = g
        .interfaces
        .iter()
        .filter_map(|n| {
            facts
                .interfaces
                .get(n)
                .filter(|i| i.usable())
                .map(|i| (n, i))
        })
        .collect();
    if ups.is_empty() {
        let states: Vec<String> = g
            .interfaces
            .iter()
            .map(|n| match facts.interfaces.get(n) {
                Some(i) if i.up => format!("{n} has an invalid device name"),
                Some(_) => format!("{n} down"),
                None => format!("{n} unknown to netifd"),
            })
            .collect();
        return Err(states.join(", "));
    }
    let mut routes = Vec::new();
    for family in Family::ALL {
        let explicit = match family {
            Family::V4 => g.gateway.map(IpAddr::V4),
            Family::V6 => g.gateway6.map(IpAddr::V6),
        };
        let learned = ups.iter().find_map(|(_, i)| {
            let r = if family == Family::V4 {
                i.route4
            } else {
                i.route6
            };
            r.map(|r| (r.via, i.device.clone()))
        });
        let first_device = ups.iter().find_map(|(_, i)| i.device.clone());
        match (explicit, learned) {
            (Some(via), _) => {
                routes.push(route(family, Some(via), g.device.clone().or(first_device)))
            }
            (None, Some((via, dev))) => routes.push(route(family, via, g.device.clone().or(dev))),
            (None, None) => {}
        }
    }
    let names: Vec<&str> = ups.iter().map(|(n, _)| n.as_str()).collect();
    if routes.is_empty() {
        return Err(format!("no default route on {}", names.join(", ")));
    }
    let dead = |d: &String| Some((d.clone(), facts.unusable_devices.get(d)?));
    if let Some((d, why)) = routes.iter().find_map(|r| r.device.as_ref().and_then(dead)) {
        return Err(format!("device {d} {why}"));
    }
    if let Some(r) = routes
        .iter()
        .find(|r| r.via.is_none() && r.device.is_none())
    {
        return Err(format!("no device known for the {} route", r.family));
    }
    Ok((routes, format!("{} up", names.join(", "))))
}

/// Devices of `in_interface` values that are up; the reason when none is.
fn input_devices(rule: &Rule, facts: &Facts) -> Result<Vec<String>, String> {
    let devs: Vec<String> = rule
        .in_interface
        .iter()
        .filter_map(|n| {
            facts
                .interfaces
                .get(n)
                .and_then(|i| i.live_device())
                .map(str::to_string)
        })
        .collect();
    if devs.is_empty() && !rule.in_interface.is_empty() {
        let known = |n: &String| facts.interfaces.contains_key(n);
        let state = match rule.in_interface.iter().any(known) {
            true => "not up",
            false => "unknown to netifd",
        };
        return Err(format!(
            "in_interface {} {state}",
            rule.in_interface.join(", ")
        ));
    }
    Ok(devs)
}

/// Computes the desired state. Pure.
pub fn plan(config: &Config, facts: &Facts) -> Plan {
    plan_with(config, facts, false)
}

/// [`plan`], keeping the batch's typed objects too (the nft text printer
/// reads them; apply needs only the JSON).
pub fn plan_typed(config: &Config, facts: &Facts) -> Plan {
    plan_with(config, facts, true)
}

fn plan_with(config: &Config, facts: &Facts, typed: bool) -> Plan {
    let g = &config.globals;
    let gateways = gateway_states(config, facts);
    let routes = gateways
        .iter()
        .flat_map(|gw| gw.routes.iter().cloned())
        .collect();
    let ip_rules = Family::ALL
        .iter()
        .flat_map(|&f| {
            let served: Vec<(u32, u32)> = gateways
                .iter()
                .filter(|gw| gw.families().contains(&f))
                .map(|gw| (gw.mark, gw.table))
                .collect();
            iprule::block(f, g.rule_priority, g.mark_mask, &served)
        })
        .collect();
    let (rules, placed) = place_rules(config, &gateways, facts);
    let mut ruleset = ruleset::build(g.mark_mask, &gateways, &placed, typed);
    // Final: the capacity grown while the texts were added goes back.
    ruleset.objects_mut().shrink_to_fit();
    let fingerprint = fingerprint_of(&ruleset);
    let table_names = config
        .gateways
        .iter()
        .map(|gw| (gw.table, gw.name.clone()))
        .collect();
    Plan {
        enabled: g.enabled,
        gateways,
        rules,
        routes,
        ip_rules,
        ruleset,
        fingerprint,
        table_names,
    }
}

/// What becomes of each gateway: active with its routes, or why not.
fn gateway_states(config: &Config, facts: &Facts) -> Vec<GatewayState> {
    let enabled = config.globals.enabled;
    config
        .gateways
        .iter()
        .map(|gw| {
            let resolved = if !enabled {
                Err("connroute is disabled".to_string())
            } else if !gw.enabled {
                Err("disabled".to_string())
            } else {
                resolve(gw, facts)
            };
            let (active, reason, routes) = match resolved {
                Ok((r, why)) => (true, why, r),
                Err(why) => (false, why, Vec::new()),
            };
            GatewayState {
                name: gw.name.clone(),
                mark: gw.mark,
                table: gw.table,
                active,
                reason,
                routes,
            }
        })
        .collect()
}

/// Each rule's state, and the rules placed in the ruleset (those whose
/// gateway is active and routes one of their families, with their input
/// devices resolved), in config order.
fn place_rules<'a>(
    config: &'a Config,
    gateways: &'a [GatewayState],
    facts: &Facts,
) -> (Vec<RuleState>, Vec<ruleset::Placed<'a>>) {
    // Sized once: 10,000 rules would otherwise leave 6,384 spare slots.
    let mut rules = Vec::with_capacity(config.rules.len());
    let mut placed = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        let gw = &gateways[rule.gateway];
        let mut state = RuleState {
            name: rule.name.as_str().into(),
            gateway: rule.gateway,
            families: &[],
            reason: Box::default(),
        };
        let served = gw.families();
        let families = Family::subset(rule.families, |f| served.contains(&f));
        match input_devices(rule, facts) {
            _ if !gw.active => state.reason = format!("gateway {} inactive", gw.name).into(),
            _ if families.is_empty() => {
                state.reason =
                    format!("gateway {} routes none of the rule's families", gw.name).into()
            }
            Err(why) => state.reason = why.into(),
            Ok(devs) => {
                state.families = families;
                placed.push(ruleset::Placed {
                    rule,
                    families,
                    in_devices: devs,
                    gateway: gw,
                });
            }
        }
        rules.push(state);
    }
    (rules, placed)
}

#[cfg(test)]
mod tests;
