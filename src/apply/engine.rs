//! apply, flush and status: desired state against the kernel's.

use super::netlink::{KernelRoute, KernelRule, Netlink};
use super::nft::Nft;
use super::rt_tables;
use crate::config::Family;
use crate::plan::{self, IpRule, Plan, Route};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// Where connroute's state lives on the system.
#[derive(Debug, Clone)]
pub struct System {
    /// How to run nft.
    pub nft: Nft,
    /// `rt_tables.d` file naming connroute's tables; `None` to skip.
    pub rt_tables: Option<PathBuf>,
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

enum Undo {
    Route {
        planned: Route,
        previous: Option<KernelRoute>,
    },
    Rule(IpRule),
}

fn nl_err(what: &str, e: io::Error) -> String {
    format!("{what}: {e}")
}

fn same_route(actual: &Route, want: &Route) -> bool {
    actual.family == want.family
        && actual.table == want.table
        && actual.via == want.via
        && (want.device.is_none() || actual.device == want.device)
}

fn rollback(nl: &mut Netlink, undo: Vec<Undo>) -> Vec<String> {
    let mut problems = Vec::new();
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::Route {
                previous: Some(k), ..
            } => nl.restore_route(k),
            Undo::Route {
                planned,
                previous: None,
            } => nl.delete_planned_route(planned),
            Undo::Rule(rule) => nl.delete_rule(rule),
        };
        if let Err(e) = r {
            problems.push(format!("rollback failed: {e}"));
        }
    }
    problems
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) => Ok(()),
        other => other,
    }
}

/// The fingerprint stored in the loaded table, if any.
pub fn loaded_fingerprint(nft: &Nft) -> Option<String> {
    let v = nft
        .list(&["list", "chain", "inet", plan::TABLE, plan::CHAIN_PREROUTING])
        .ok()?;
    v.get("nftables")?.as_array()?.iter().find_map(|o| {
        let comment = o.get("rule")?.get("comment")?.as_str()?;
        plan::fingerprint_in_comment(comment).map(str::to_string)
    })
}

fn table_exists(nft: &Nft) -> Result<bool, String> {
    let v = nft.list(&["list", "tables", "inet"])?;
    Ok(v.get("nftables")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|o| {
                o.get("table")
                    .and_then(|t| t.get("name"))
                    .and_then(Value::as_str)
                    == Some(plan::TABLE)
            })
        }))
}

/// Makes the system match `plan`. On failure, what this run changed is
/// undone and the previous state keeps running.
pub fn apply(plan: &Plan, sys: &System, force: bool) -> Result<Report, String> {
    if !plan.enabled {
        return flush(sys);
    }
    let mut nl = Netlink::open().map_err(|e| nl_err("cannot open rtnetlink", e))?;
    let routes = nl.routes().map_err(|e| nl_err("cannot list routes", e))?;
    let rules = nl.rules().map_err(|e| nl_err("cannot list ip rules", e))?;
    let mut report = Report::default();
    let mut undo = Vec::new();
    let fail = |nl: &mut Netlink, undo: Vec<Undo>, msg: String| -> String {
        let problems = rollback(nl, undo);
        if problems.is_empty() {
            msg
        } else {
            format!("{msg}; {}", problems.join("; "))
        }
    };

    for want in &plan.routes {
        let current = routes
            .iter()
            .find(|k| k.route.family == want.family && k.route.table == want.table);
        if current.is_some_and(|k| same_route(&k.route, want)) {
            continue;
        }
        if let Err(e) = nl.replace_route(want) {
            return Err(fail(&mut nl, undo, format!("cannot install `{want}`: {e}")));
        }
        report.changes.push(format!("route {want}"));
        undo.push(Undo::Route {
            planned: want.clone(),
            previous: current.cloned(),
        });
    }
    for want in &plan.ip_rules {
        if rules.iter().any(|k| &k.rule == want) {
            continue;
        }
        if let Err(e) = nl.add_rule(want) {
            return Err(fail(&mut nl, undo, format!("cannot add `{want}`: {e}")));
        }
        report.changes.push(format!("rule {want}"));
        undo.push(Undo::Rule(want.clone()));
    }
    if force || loaded_fingerprint(&sys.nft).as_deref() != Some(plan.fingerprint.as_str()) {
        let json = serde_json::to_vec(&plan.ruleset).map_err(|e| e.to_string())?;
        if let Err(e) = sys.nft.load(&json) {
            return Err(fail(
                &mut nl,
                undo,
                format!("nftables refused the ruleset: {e}"),
            ));
        }
        report.changes.push(format!(
            "loaded table inet {} ({})",
            plan::TABLE,
            plan.fingerprint
        ));
    }

    // The new state is live; now remove what it no longer needs.
    let mut problems = Vec::new();
    for k in rules.iter().filter(|k| !plan.ip_rules.contains(&k.rule)) {
        match ignore_missing(nl.delete_kernel_rule(k)) {
            Ok(()) => report.changes.push(format!("removed rule {}", k.rule)),
            Err(e) => problems.push(format!("cannot remove `{}`: {e}", k.rule)),
        }
    }
    for k in routes.iter().filter(|k| {
        !plan
            .routes
            .iter()
            .any(|r| r.family == k.route.family && r.table == k.route.table)
    }) {
        match ignore_missing(nl.delete_route(k)) {
            Ok(()) => report.changes.push(format!("removed route {}", k.route)),
            Err(e) => problems.push(format!("cannot remove `{}`: {e}", k.route)),
        }
    }
    if let Some(path) = &sys.rt_tables {
        match rt_tables::write(path, &plan.table_names) {
            Ok(change) => report.changes.extend(change.summary(path)),
            Err(e) => log::warn!("could not write {e}"),
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems.join("; "))
    }
}

/// Removes connroute's table, ip rules and routes, and nothing else.
pub fn flush(sys: &System) -> Result<Report, String> {
    let mut report = Report::default();
    let mut problems = Vec::new();
    match table_exists(&sys.nft) {
        Ok(true) => match sys.nft.run(&["delete", "table", "inet", plan::TABLE], b"") {
            Ok(_) => report
                .changes
                .push(format!("deleted table inet {}", plan::TABLE)),
            Err(e) => problems.push(e.into()),
        },
        Ok(false) => {}
        Err(e) => problems.push(e),
    }
    let mut nl = Netlink::open().map_err(|e| nl_err("cannot open rtnetlink", e))?;
    for k in nl.rules().map_err(|e| nl_err("cannot list ip rules", e))? {
        match ignore_missing(nl.delete_kernel_rule(&k)) {
            Ok(()) => report.changes.push(format!("removed rule {}", k.rule)),
            Err(e) => problems.push(format!("cannot remove `{}`: {e}", k.rule)),
        }
    }
    for k in nl.routes().map_err(|e| nl_err("cannot list routes", e))? {
        match ignore_missing(nl.delete_route(&k)) {
            Ok(()) => report.changes.push(format!("removed route {}", k.route)),
            Err(e) => problems.push(format!("cannot remove `{}`: {e}", k.route)),
        }
    }
    if let Some(path) = &sys.rt_tables {
        match rt_tables::remove(path) {
            Ok(change) => report.changes.extend(change.summary(path)),
            Err(e) => problems.push(format!("cannot remove {e}")),
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems.join("; "))
    }
}

/// Counters by name from `nft -j list counters table inet connroute`.
fn counters(nft: &Nft) -> Vec<(String, u64, u64)> {
    let Ok(v) = nft.list(&["list", "counters", "table", "inet", plan::TABLE]) else {
        return Vec::new();
    };
    v.get("nftables")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    let c = o.get("counter")?;
                    Some((
                        c.get("name")?.as_str()?.to_string(),
                        c.get("packets")?.as_u64()?,
                        c.get("bytes")?.as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Desired against actual, as JSON (the human table is printed from it).
pub fn status(plan: &Plan, sys: &System) -> Result<Value, String> {
    let mut nl = Netlink::open().map_err(|e| nl_err("cannot open rtnetlink", e))?;
    let routes: Vec<KernelRoute> = nl.routes().map_err(|e| nl_err("cannot list routes", e))?;
    let rules: Vec<KernelRule> = nl.rules().map_err(|e| nl_err("cannot list ip rules", e))?;
    let loaded = loaded_fingerprint(&sys.nft);
    let counters = counters(&sys.nft);
    let mut drift = Vec::new();
    let nft_state = match &loaded {
        None if plan.enabled => {
            drift.push(format!("table inet {} is missing", plan::TABLE));
            "missing"
        }
        None => "absent",
        Some(_) if !plan.enabled => {
            drift.push(format!(
                "table inet {} is loaded but connroute is disabled",
                plan::TABLE
            ));
            "stale"
        }
        Some(fp) if *fp == plan.fingerprint => "current",
        Some(_) => {
            drift.push(format!(
                "table inet {} differs from the config",
                plan::TABLE
            ));
            "stale"
        }
    };
    for want in &plan.routes {
        if !routes.iter().any(|k| same_route(&k.route, want)) {
            drift.push(format!("missing route: {want}"));
        }
    }
    for k in &routes {
        if !plan.routes.iter().any(|w| same_route(&k.route, w)) {
            drift.push(format!("unexpected route: {}", k.route));
        }
    }
    for want in &plan.ip_rules {
        if !rules.iter().any(|k| &k.rule == want) {
            drift.push(format!("missing rule: {want}"));
        }
    }
    for k in &rules {
        if !plan.ip_rules.contains(&k.rule) {
            drift.push(format!("unexpected rule: {}", k.rule));
        }
    }
    let gateways: Vec<Value> = plan
        .gateways
        .iter()
        .map(|g| {
            let fams: Vec<Family> = g.families();
            let routes_ok = g.routes.iter().all(|w| routes.iter().any(|k| same_route(&k.route, w)));
            let rules_ok = plan
                .ip_rules
                .iter()
                .filter(|r| r.mark == g.mark && fams.contains(&r.family))
                .all(|w| rules.iter().any(|k| &k.rule == w));
            json!({
                "name": g.name,
                "active": g.active,
                "reason": g.reason,
                "mark": format!("0x{:08x}", g.mark),
                "table": g.table,
                "next_hops": g.routes.iter().map(|r| {
                    let via = r.via.map_or("-".to_string(), |v| v.to_string());
                    format!("{}:{}{}", r.family, via, r.device.as_ref().map_or(String::new(), |d| format!("@{d}")))
                }).collect::<Vec<_>>(),
                "routes_present": routes_ok,
                "rules_present": rules_ok,
            })
        })
        .collect();
    let rules_json: Vec<Value> = plan
        .rules
        .iter()
        .map(|r| {
            let c = counters.iter().find(|c| c.0 == r.counter);
            json!({
                "name": r.name,
                "gateway": r.gateway,
                "families": r.families.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                "installed": !r.families.is_empty(),
                "reason": r.reason,
                "packets": c.map_or(0, |c| c.1),
                "bytes": c.map_or(0, |c| c.2),
            })
        })
        .collect();
    Ok(json!({
        "enabled": plan.enabled,
        "nft_table": nft_state,
        "fingerprint": plan.fingerprint,
        "gateways": gateways,
        "rules": rules_json,
        "drift": drift,
    }))
}

/// The status JSON as aligned tables.
pub fn status_text(v: &Value) -> String {
    let s = |x: &Value| x.as_str().map_or_else(|| x.to_string(), str::to_string);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "connroute {}; table inet {}: {}",
        if v["enabled"].as_bool() == Some(true) {
            "enabled"
        } else {
            "disabled"
        },
        plan::TABLE,
        s(&v["nft_table"])
    );
    let mut rows = vec![
        vec![
            "GATEWAY",
            "STATE",
            "MARK",
            "TABLE",
            "NEXT HOPS",
            "ROUTES",
            "RULES",
            "WHY",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>(),
    ];
    for g in v["gateways"].as_array().into_iter().flatten() {
        let ok = |b: &Value| {
            if b.as_bool() == Some(true) {
                "ok"
            } else {
                "MISSING"
            }
            .to_string()
        };
        let active = g["active"].as_bool() == Some(true);
        rows.push(vec![
            s(&g["name"]),
            if active { "active" } else { "inactive" }.into(),
            s(&g["mark"]),
            s(&g["table"]),
            g["next_hops"].as_array().map_or(String::new(), |a| {
                a.iter().map(s).collect::<Vec<_>>().join(" ")
            }),
            if active {
                ok(&g["routes_present"])
            } else {
                "-".into()
            },
            if active {
                ok(&g["rules_present"])
            } else {
                "-".into()
            },
            s(&g["reason"]),
        ]);
    }
    table(&mut out, &rows);
    let mut rows = vec![
        vec!["RULE", "GATEWAY", "FAMILIES", "PACKETS", "BYTES", "WHY"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for r in v["rules"].as_array().into_iter().flatten() {
        let fams = r["families"].as_array().map_or(String::new(), |a| {
            a.iter().map(s).collect::<Vec<_>>().join(",")
        });
        rows.push(vec![
            s(&r["name"]),
            s(&r["gateway"]),
            if fams.is_empty() { "-".into() } else { fams },
            s(&r["packets"]),
            s(&r["bytes"]),
            s(&r["reason"]),
        ]);
    }
    out.push('\n');
    table(&mut out, &rows);
    let drift: Vec<String> = v["drift"].as_array().into_iter().flatten().map(s).collect();
    out.push('\n');
    if drift.is_empty() {
        out.push_str("drift: none\n");
    } else {
        for d in drift {
            let _ = writeln!(out, "drift: {d}");
        }
    }
    out
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}
