//! status: the plan against the live state, as a typed [`Status`]
//! (rendering to text or JSON is the CLI's job). Read-only.

use super::System;
use super::banks::{self, RuleStep};
use super::diff::{self, TableChange, same_route};
use super::error::ApplyError;
use super::kernel::{KResult, Kernel};
use super::runstate;
use crate::config::Family;
use crate::plan::{
    self, GatewayState, IpRule, Layout, MAIN_TABLE, MAX_BANK, Plan, Route, RuleAction,
};
use serde::Serialize;
use std::collections::HashSet;

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `globals.enabled`.
    pub enabled: bool,
    /// The nft table: current, missing, stale or absent.
    pub nft_table: &'static str,
    /// The plan's fingerprint.
    pub fingerprint: String,
    /// Per gateway.
    pub gateways: Vec<GatewayStatus>,
    /// Per rule.
    pub rules: Vec<RuleStatus>,
    /// Every difference between the live state and the plan.
    pub drift: Vec<String>,
}

/// One gateway.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    /// Section name.
    pub name: String,
    /// Routes, rules and classification installed.
    pub active: bool,
    /// Why inactive, or what made it active.
    pub reason: String,
    /// Its mark, `0x%08x`.
    pub mark: String,
    /// Its routing table.
    pub table: u32,
    /// `family:via@device` per route.
    pub next_hops: Vec<String>,
    /// All its routes are in the kernel.
    pub routes_present: bool,
    /// All ip rules looking up its table are in the kernel.
    pub rules_present: bool,
    /// Live connections pinned to it (conntrack); `None` if unreadable.
    pub connections: Option<u64>,
    /// Packets of connections pinned to it, both directions (its
    /// `gw_NAME` counter).
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

/// One rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    /// Section name or generated id.
    pub name: String,
    /// Target gateway.
    pub gateway: String,
    /// Families installed.
    pub families: Vec<String>,
    /// Installed for at least one family.
    pub installed: bool,
    /// Why not installed.
    pub reason: String,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl Status {
    /// 0 current; 3 drift; 4 current but an enabled gateway is inactive.
    pub fn exit_code(&self) -> u8 {
        if !self.drift.is_empty() {
            3
        } else if self.enabled
            && self
                .gateways
                .iter()
                .any(|g| !g.active && g.reason != "disabled")
        {
            4
        } else {
            0
        }
    }
}

/// Compares `plan` with the kernel. Errors (exit 1) when the state cannot
/// be read: not root, nft missing, netlink refused.
/// `mask` is the config's `mark_mask`, to count pinned connections.
pub fn status(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    mask: u32,
) -> Result<Status, ApplyError> {
    let routes = k.routes()?;
    let rules = k.rules()?;
    warn_foreign(k, plan);
    let recorded = runstate::recorded(sys)?;
    let (table, _) = diff::table(k, plan, recorded.as_ref(), None, false)?;
    let counters = k.counters()?;
    let mut drift = Vec::new();
    let nft_table = table_drift(table, plan.enabled, &mut drift);
    let wanted: Vec<_> = plan.routes.iter().map(|r| (r.family, r.table)).collect();
    for f in k.foreign_defaults(&wanted)? {
        drift.push(format!(
            "table {} ({}) holds another owner's default route: {}",
            f.table, f.family, f.text
        ));
    }
    routing_drift(&diff::routing(plan, &routes, &rules), &mut drift);
    for s in k.strays()? {
        drift.push(format!("stray route tagged as connroute's: {s}"));
    }
    // The plan's rules in the bank apply keeps or builds.
    let placed = banks::placed(&plan.ip_rules, &rules);
    let gateways = plan
        .gateways
        .iter()
        .map(|g| {
            let mut st = gateway(g, &placed, &routes, &rules, k.pinned(g.mark, mask).ok());
            let name = plan::gateway_counter_name(&g.name);
            if let Some(c) = counters.iter().find(|c| c.0 == name) {
                (st.packets, st.bytes) = (c.1, c.2);
            }
            st
        })
        .collect();
    let rules = plan
        .rules
        .iter()
        .map(|r| {
            let counter = r.counter();
            let c = counters.iter().find(|c| c.0 == counter);
            RuleStatus {
                name: r.name.to_string(),
                gateway: plan.gateways[r.gateway].name.clone(),
                families: r.families.iter().map(ToString::to_string).collect(),
                installed: !r.families.is_empty(),
                reason: r.reason.to_string(),
                packets: c.map_or(0, |c| c.1),
                bytes: c.map_or(0, |c| c.2),
            }
        })
        .collect();
    Ok(Status {
        enabled: plan.enabled,
        nft_table,
        fingerprint: plan.fingerprint.clone(),
        gateways,
        rules,
        drift,
    })
}

/// The table's state word, and its drift line if any.
fn table_drift(table: TableChange, enabled: bool, drift: &mut Vec<String>) -> &'static str {
    let t = crate::plan::TABLE;
    match table {
        TableChange::Keep if enabled => "current",
        TableChange::Keep => "absent",
        TableChange::Create => {
            drift.push(format!("table inet {t} is missing"));
            "missing"
        }
        TableChange::Delete => {
            drift.push(format!(
                "table inet {t} is loaded but connroute is disabled"
            ));
            "stale"
        }
        TableChange::Replace(why) => {
            drift.push(format!("table inet {t} {why}"));
            "stale"
        }
        TableChange::Update(_) => {
            drift.push(format!("table inet {t} differs from the config"));
            "stale"
        }
    }
}

/// One drift line per route or rule apply would change.
fn routing_drift(c: &diff::Changes, drift: &mut Vec<String>) {
    drift.extend(c.add_routes.iter().map(|r| format!("missing route: {r}")));
    drift.extend(
        c.replace_routes
            .iter()
            .map(|(old, new)| format!("route differs: {old} (want: {new})")),
    );
    drift.extend(
        c.remove_routes
            .iter()
            .map(|r| format!("unexpected route: {r}")),
    );
    drift.extend(c.rule_steps.iter().map(|s| match s {
        RuleStep::Add(r) => format!("missing rule: {r}"),
        RuleStep::Remove(r) => format!("unexpected rule: {r}"),
    }));
    drift.extend(
        c.remove_rules
            .iter()
            .map(|r| format!("unexpected rule: {r}")),
    );
}

fn gateway(
    g: &GatewayState,
    placed: &[IpRule],
    routes: &[Route],
    rules: &[IpRule],
    connections: Option<u64>,
) -> GatewayStatus {
    GatewayStatus {
        name: g.name.clone(),
        active: g.active,
        reason: g.reason.clone(),
        mark: format!("0x{:08x}", g.mark),
        table: g.table,
        next_hops: g
            .routes
            .iter()
            .map(|r| {
                let via = r.via.map_or("-".to_string(), |v| v.to_string());
                let dev = r.device.as_ref().map_or(String::new(), |d| format!("@{d}"));
                format!("{}:{via}{dev}", r.family)
            })
            .collect(),
        routes_present: present_routes(g, routes),
        rules_present: present_rules(g, placed, rules),
        connections,
        packets: 0,
        bytes: 0,
    }
}

/// An active gateway: all its routes are in the kernel. An inactive one
/// wants none, so: any route is left in its table.
fn present_routes(g: &GatewayState, routes: &[Route]) -> bool {
    if !g.active {
        return routes.iter().any(|k| k.table == g.table);
    }
    g.routes
        .iter()
        .all(|w| routes.iter().any(|k| same_route(k, w)))
}

/// An active gateway: all ip rules it needs (its leaf and the shared
/// entry, main and dispatch rules of `placed`, the plan's block where
/// apply keeps or builds it) are in the kernel. An inactive one: any rule
/// still looks up its table.
fn present_rules(g: &GatewayState, placed: &[IpRule], rules: &[IpRule]) -> bool {
    let its = |t: u32| t == g.table;
    if !g.active {
        return rules
            .iter()
            .any(|r| matches!(r.action, RuleAction::Lookup { table, .. } if its(table)));
    }
    let live: HashSet<&IpRule> = rules.iter().collect();
    placed
        .iter()
        .filter(|r| match r.action {
            RuleAction::Lookup { table, .. } => its(table) || table == MAIN_TABLE,
            _ => true,
        })
        .all(|w| live.contains(w))
}

/// One line per other owner's ip rule inside the priorities the plan's
/// block spans in its family (P … END, END as far as the live block
/// reaches: its banks do not shrink): the entry's goto jumps every
/// unmarked packet over it. Such a rule is never touched, only reported.
pub fn foreign_in_range(k: &mut dyn Kernel, plan: &Plan) -> KResult<Vec<String>> {
    let foreign = k.foreign_rules()?;
    let live = k.dumped_rules()?;
    let mut out = Vec::new();
    for f in Family::ALL {
        let block: Vec<IpRule> = plan
            .ip_rules
            .iter()
            .filter(|r| r.family == f)
            .cloned()
            .collect();
        let Some(l) = Layout::of(&block) else {
            continue;
        };
        let most = l.base + 4 * MAX_BANK + 3;
        let end = live
            .iter()
            .filter(|r| r.family == f && (l.base..=most).contains(&r.priority))
            .map(|r| r.priority)
            .fold(l.end(), u32::max);
        for &(_, p) in foreign
            .iter()
            .filter(|(g, p)| *g == f && (l.base..=end).contains(p))
        {
            out.push(format!(
                "another owner's {f} ip rule at priority {p} is inside connroute's range {}-{end}: \
                 unmarked packets jump over it; move it or set globals.rule_priority outside it",
                l.base,
            ));
        }
    }
    Ok(out)
}

/// Logs [`foreign_in_range`]'s lines as warnings (a failed look-up too).
pub fn warn_foreign(k: &mut dyn Kernel, plan: &Plan) {
    match foreign_in_range(k, plan) {
        Ok(lines) => lines.iter().for_each(|l| log::warn!("{l}")),
        // Advisory only (apply and status fail on their own rule dump
        // anyway); an emulator or a kernel without rule dumps is no reason
        // to make `check` noisy.
        Err(e) => log::debug!("cannot check other owners' ip rules: {e}"),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
