//! The engine against the fake kernel: every failure point injected, the
//! resulting kernel state asserted; other owners' entries never touched.

use super::apply::{apply, decide};
use super::diff::TableChange;
use super::error::ApplyError;
use super::fake::{Fake, FakeRoute, Op};
use super::flush::flush;
use super::kernel::Kernel;
use super::nft::Nft;
use super::runstate::RunState;
use super::status::status;
use super::{System, devices};
use crate::config::{Config, Family};
use crate::facts::Facts;
use crate::plan::{self, IpRule, Plan, Route, RuleAction};
use std::path::PathBuf;

/// Whether this test runs under an emulator (`make test-cross` sets
/// `CONNROUTE_RUNNER`, e.g. qemu-user); then says it is skipped and why:
/// `what` is what the emulator cannot give it.
pub(super) fn skipped_under_emulator(what: &str) -> bool {
    let emulated = std::env::var("CONNROUTE_RUNNER").is_ok_and(|r| !r.is_empty());
    if emulated {
        eprintln!("skipped: {what} under an emulator");
    }
    emulated
}

const SEED: &str = "config globals 'globals'
	option mark_mask '0xff000000'
	option rule_priority '5000'
	option table_base '5000'
config gateway 'router2'
	option gateway '192.168.1.2'
config rule 'http_via_router2'
	option gateway 'router2'
	list proto 'tcp'
	list dest_port '80'
";

fn config(extra: &str) -> Config {
    Config::parse(format!("{SEED}{extra}").as_bytes(), "test.conf").unwrap()
}

/// The seed config with `extra` appended, planned without live facts.
pub(super) fn plan_of(extra: &str) -> Plan {
    plan::plan(&config(extra), &Facts::default())
}

/// The seed plan moved: router2 in table 300 and a second gateway.
fn changed() -> Plan {
    let p = plan_of("config gateway 'router3'\n\toption gateway '192.168.1.3'\n");
    assert_eq!(p.routes.len(), 2);
    p
}

/// A run state in a directory of its own (`name`: unique among all the
/// engine's tests), removed at the end.
pub(super) struct Run {
    pub(super) sys: System,
    dir: PathBuf,
}

impl Run {
    pub(super) fn new(name: &str) -> Run {
        let dir = std::env::temp_dir().join(format!("cr-engine-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Run {
            sys: System {
                nft: Nft::default(),
                rt_tables: None,
                state: Some(dir.join("state")),
            },
            dir,
        }
    }

    /// The run state's path.
    pub(super) fn state(&self) -> &std::path::Path {
        self.sys.state.as_deref().unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn foreign(table: u32, family: Family, via: &str) -> FakeRoute {
    FakeRoute {
        route: Route {
            family,
            table,
            via: Some(via.parse().unwrap()),
            device: Some("lan".into()),
        },
        protocol: 3,
    }
}

/// A fake with the seed applied, and an unrelated foreign default route.
fn applied(run: &Run) -> Fake {
    let mut k = Fake::default();
    k.routes.push(foreign(1, Family::V4, "192.168.1.1"));
    apply(&mut k, &plan_of(""), &run.sys, false).unwrap();
    k
}

#[test]
fn cold_apply_installs_everything_with_one_add_only_load() {
    let run = Run::new("cold");
    let mut k = Fake::default();
    let p = plan_of("");
    let report = apply(&mut k, &p, &run.sys, false).unwrap();
    assert_eq!(k.routes().unwrap(), p.routes);
    assert_eq!(k.rules, p.ip_rules);
    assert_eq!(k.fingerprint().as_deref(), Some(p.fingerprint.as_str()));
    let batch = String::from_utf8(k.last_batch.clone()).unwrap();
    assert!(batch.contains("\"flush\":{\"table\""), "{batch}");
    assert!(!batch.contains("\"delete\""), "add-only batch: {batch}");
    // One load and one listing to record the table's digest.
    assert_eq!(k.nft_runs, 2);
    let expected = p.routes.len() + p.ip_rules.len() + 1;
    assert_eq!(report.changes.len(), expected, "{:?}", report.changes);
    let st = RunState::read(run.sys.state.as_ref().unwrap()).unwrap();
    assert_eq!(st.generation, k.generation);
    assert!(st.digest.is_some());
}

#[test]
fn unchanged_apply_runs_no_nft_and_changes_nothing() {
    let run = Run::new("noop");
    let mut k = applied(&run);
    let before = k.snapshot();
    let runs = k.nft_runs;
    let report = apply(&mut k, &plan_of(""), &run.sys, false).unwrap();
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(k.nft_runs, runs, "no nft process on the no-op path");
    assert_eq!(k.snapshot(), before);
}

#[test]
fn foreign_commit_elsewhere_is_verified_once_not_reloaded() {
    let run = Run::new("fw4");
    let mut k = applied(&run);
    k.generation += 5; // fw4 reloaded its own table
    let before = k.snapshot();
    let runs = k.nft_runs;
    assert!(
        apply(&mut k, &plan_of(""), &run.sys, false)
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(k.nft_runs, runs + 1, "one listing, no load");
    assert_eq!(k.snapshot(), before);
    apply(&mut k, &plan_of(""), &run.sys, false).unwrap();
    assert_eq!(
        k.nft_runs,
        runs + 1,
        "generation recorded again: no listing"
    );
}

#[test]
fn drift_in_the_table_is_seen_by_status_and_repaired_by_apply() {
    let run = Run::new("drift");
    let mut k = applied(&run);
    let p = plan_of("");
    // `nft flush chain inet connroute classify; nft add rule … drop`.
    k.table.as_mut().unwrap().tamper();
    k.generation += 2;
    let st = status(&mut k, &p, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(st.exit_code(), 3);
    assert!(
        st.drift[0].contains("changed outside connroute"),
        "{:?}",
        st.drift
    );
    let report = apply(&mut k, &p, &run.sys, false).unwrap();
    assert!(
        report.changes[0].starts_with("loaded table"),
        "{:?}",
        report.changes
    );
    let st = status(&mut k, &p, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(
        (st.exit_code(), st.nft_table),
        (0, "current"),
        "{:?}",
        st.drift
    );
    // Per gateway: every packet and byte of its pinned connections.
    let g = &st.gateways[0];
    assert_eq!(
        (g.name.as_str(), g.packets, g.bytes),
        ("router2", 40, 52_000)
    );
}

#[test]
fn stray_and_duplicate_entries_of_ours_are_removed_foreign_kept() {
    let run = Run::new("stray");
    let mut k = applied(&run);
    let stray_rule = IpRule {
        family: Family::V6,
        priority: 4000,
        mark: 0x0700_0000,
        mask: 0xff00_0000,
        invert: false,
        action: RuleAction::Lookup {
            table: 7000,
            suppress_default: false,
        },
    };
    k.rules.push(stray_rule.clone());
    k.rules.push(k.rules[0].clone()); // `ip rule add` allows duplicates
    let stray_route = Route {
        family: Family::V6,
        table: 7000,
        via: Some("fe80::1".parse().unwrap()),
        device: Some("lan".into()),
    };
    k.routes.push(FakeRoute {
        route: stray_route.clone(),
        protocol: plan::RTPROT_CONNROUTE,
    });
    let p = plan_of("");
    assert_eq!(
        status(&mut k, &p, &run.sys, 0xff00_0000)
            .unwrap()
            .exit_code(),
        3
    );
    apply(&mut k, &p, &run.sys, false).unwrap();
    k.rules.sort();
    assert_eq!(
        k.rules,
        p.ip_rules
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(k.routes().unwrap(), p.routes);
    assert!(k.routes.contains(&foreign(1, Family::V4, "192.168.1.1")));
}

#[test]
fn foreign_default_route_in_a_wanted_table_is_refused_before_any_change() {
    let run = Run::new("foreign");
    for family in Family::ALL {
        let via = if family == Family::V4 {
            "192.168.1.1"
        } else {
            "fe80::1"
        };
        let mut k = Fake::default();
        k.routes.push(foreign(5000, family, via));
        let before = k.snapshot();
        let text = SEED.replace(
            "option gateway '192.168.1.2'",
            "option gateway '192.168.1.2'\n\toption gateway6 '2001:db8::2'\n\toption table '5000'",
        );
        let p = plan::plan(
            &Config::parse(text.as_bytes(), "t").unwrap(),
            &Facts::default(),
        );
        assert_eq!(p.routes.len(), 2);
        let err = apply(&mut k, &p, &run.sys, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let msg = err.to_string();
        assert!(msg.contains("table 5000") && msg.contains(via), "{msg}");
        assert_eq!(k.snapshot(), before);
        assert_eq!(k.nft_runs, 0);
    }
}

#[test]
fn flush_removes_only_ours() {
    let run = Run::new("flush");
    let mut k = applied(&run);
    k.routes.push(foreign(5000, Family::V6, "fe80::9"));
    flush(&mut k, &run.sys).unwrap();
    assert_eq!(
        k.routes,
        vec![
            foreign(1, Family::V4, "192.168.1.1"),
            foreign(5000, Family::V6, "fe80::9")
        ]
    );
    assert!(k.rules.is_empty() && k.table.is_none());
    assert!(!run.sys.state.as_ref().unwrap().exists());
}

#[test]
fn flush_reports_what_it_could_not_remove_and_keeps_the_rules_after_it() {
    let run = Run::new("flushfail");
    let mut k = applied(&run);
    let rules = k.rules.len();
    k.fail.push(Op::DeleteRule);
    let e = flush(&mut k, &run.sys).unwrap_err();
    assert!(matches!(&e, ApplyError::Flush(v) if v.len() == 1), "{e}");
    // The first removal (the top of the bank) failed: the rules after it
    // (main rule, entry, END) stay so the leaf is never walked before main.
    assert_eq!((e.exit_code(), k.rules.len()), (1, rules));
    assert!(k.table.is_none() && k.routes().unwrap().is_empty());
    assert_eq!(k.routes, vec![foreign(1, Family::V4, "192.168.1.1")]);
}

/// Applies the changed plan over the seed with `faults` injected; the
/// state must be exactly the seed's afterwards.
fn rolled_back(name: &str, faults: &[Op]) -> (Fake, ApplyError) {
    let run = Run::new(name);
    let mut k = applied(&run);
    let before = k.snapshot();
    k.fail.extend(faults);
    let fault = faults;
    let err = apply(&mut k, &changed(), &run.sys, false).unwrap_err();
    assert_eq!(k.snapshot(), before, "{fault:?}: {err}");
    assert!(k.fail.is_empty(), "{fault:?} was not reached");
    (k, err)
}

#[test]
fn route_add_fails_nothing_changes() {
    let (_, e) = rolled_back("route", &[Op::AddRoute]);
    assert!(
        matches!(&e, ApplyError::Failed { rollback, .. } if rollback.is_empty()),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("apply failed, previous state kept"),
        "{e}"
    );
}

#[test]
fn rule_add_fails_route_is_rolled_back() {
    rolled_back("rule", &[Op::AddRule]);
}

#[test]
fn nft_load_fails_routes_and_rules_rolled_back() {
    // The incremental update, then the full replace it falls back to.
    let (k, e) = rolled_back("nft", &[Op::Load, Op::Load]);
    assert_eq!(k.batches.len(), 3, "seed, update, replace");
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("nft refused"), "{e}");
}

#[test]
fn nft_that_exits_0_without_committing_is_a_failure_rolled_back() {
    // The incremental update, then the full replace: neither commits.
    let (k, e) = rolled_back("nothing", &[Op::LoadNothing, Op::LoadNothing]);
    assert_eq!(k.batches.len(), 3, "seed, update, replace");
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("nothing was committed"), "{e}");
}

#[test]
fn nft_commits_then_fails_new_state_kept_consistent() {
    let run = Run::new("commits");
    let mut k = applied(&run);
    let p = changed();
    k.fail.push(Op::LoadCommits);
    let e = apply(&mut k, &p, &run.sys, false).unwrap_err();
    assert!(matches!(e, ApplyError::CommittedDespite(_)), "{e}");
    assert_eq!(k.fingerprint().as_deref(), Some(p.fingerprint.as_str()));
    assert_eq!(k.routes().unwrap(), p.routes, "routes match the live table");
    // The plan's block, built in the bank the seed's did not use.
    assert_eq!(k.rules, super::banks::placed(&p.ip_rules, &k.rules));
    assert_eq!(
        k.rules[2].to_string(),
        "ip rule priority 5002 goto 5019 proto 197"
    );
    // The committed table was verified and recorded: nothing to repair.
    let st = RunState::read(run.sys.state.as_ref().unwrap()).unwrap();
    assert_eq!((st.generation, st.digest.is_some()), (k.generation, true));
    assert_eq!(
        status(&mut k, &p, &run.sys, 0xff00_0000)
            .unwrap()
            .exit_code(),
        0
    );
    let runs = k.nft_runs;
    assert!(
        apply(&mut k, &p, &run.sys, false)
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(k.nft_runs, runs);
}

#[test]
fn deletion_fails_after_the_table_is_live() {
    let run = Run::new("cleanup");
    let mut k = applied(&run);
    let p = plan_of("config gateway 'router3'\n\toption gateway '192.168.1.3'\n").clone();
    // Move router2 away from its rules: old rules must go after the load.
    let mut p2 = p.clone();
    for r in &mut p2.ip_rules {
        r.priority += 100;
        if let RuleAction::Goto(t) = &mut r.action {
            *t += 100;
        }
    }
    let seed = k.rules.len();
    k.fail.push(Op::DeleteRule);
    let e = apply(&mut k, &p2, &run.sys, false).unwrap_err();
    assert!(matches!(&e, ApplyError::Cleanup(v) if v.len() == 1), "{e}");
    assert!(e.to_string().contains("new state is live"), "{e}");
    for r in &p2.ip_rules {
        assert!(k.rules.contains(r), "new rule {r} kept");
    }
    // The first old rule could not go: the rest of the old block stays.
    let old = k.rules.len() - p2.ip_rules.len();
    assert_eq!(old, seed, "the old block left over");
    apply(&mut k, &p2, &run.sys, false).unwrap();
    assert_eq!(k.rules, p2.ip_rules, "the next apply removes it");
}

#[test]
fn rollback_fails_reports_both_and_leaves_only_ours() {
    let run = Run::new("rollback");
    let mut k = applied(&run);
    let foreign_before = k
        .routes
        .iter()
        .filter(|r| r.protocol != plan::RTPROT_CONNROUTE)
        .cloned()
        .collect::<Vec<_>>();
    let p = changed();
    k.fail.extend([Op::Load, Op::Load, Op::DeleteRoute]);
    let e = apply(&mut k, &p, &run.sys, false).unwrap_err();
    match &e {
        ApplyError::Failed { rollback, .. } => assert_eq!(rollback.len(), 1, "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("rollback incomplete"), "{e}");
    // The new route of router3 could not be removed; everything else is back.
    let seed = plan_of("");
    assert_eq!(k.rules, seed.ip_rules);
    assert_eq!(k.routes().unwrap().len(), 2);
    let now: Vec<_> = k
        .routes
        .iter()
        .filter(|r| r.protocol != plan::RTPROT_CONNROUTE)
        .cloned()
        .collect();
    assert_eq!(now, foreign_before);
    // And the next apply of the seed removes the leftover.
    apply(&mut k, &seed, &run.sys, false).unwrap();
    assert_eq!(k.routes().unwrap(), seed.routes);
}

#[test]
fn replaced_route_is_restored_on_failure() {
    let run = Run::new("replace");
    let mut k = applied(&run);
    let before = k.snapshot();
    let p = plan::plan(
        &Config::parse(
            SEED.replace("192.168.1.2", "192.168.1.9")
                .replace("'80'", "'8080'")
                .as_bytes(),
            "t",
        )
        .unwrap(),
        &Facts::default(),
    );
    let d = decide(&mut k, &p, &run.sys, false).unwrap();
    assert_eq!(d.changes.replace_routes.len(), 1);
    assert!(
        matches!(&d.changes.table, Some(TableChange::Update(u)) if u.touched.rules_replaced == 3),
        "{:?}",
        d.changes.table
    );
    k.fail.extend([Op::Load, Op::Load]);
    apply(&mut k, &p, &run.sys, false).unwrap_err();
    assert_eq!(k.snapshot(), before);
}

#[test]
fn missing_or_down_device_makes_only_that_gateway_inactive() {
    let run = Run::new("degrade");
    let c = config(
        "config gateway 'lte'\n\toption device 'wwan0'\n\toption gateway '10.64.0.1'\nconfig rule 'r2'\n\toption gateway 'lte'\n\tlist proto 'udp'\n",
    );
    let mut k = Fake::default();
    let facts = Facts {
        unusable_devices: devices::unusable(&mut k, &c, &Facts::default()),
        ..Facts::default()
    };
    let p = plan::plan(&c, &facts);
    let lte = p.gateways.iter().find(|g| g.name == "lte").unwrap();
    assert!(
        !lte.active && lte.reason == "device wwan0 does not exist",
        "{}",
        lte.reason
    );
    apply(&mut k, &p, &run.sys, false).unwrap();
    assert_eq!(k.routes().unwrap(), plan_of("").routes, "router2 applied");
    let st = status(&mut k, &p, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(st.exit_code(), 4, "{:?}", st.drift);
    let conns: Vec<_> = st
        .gateways
        .iter()
        .map(|g| (g.name.as_str(), g.connections))
        .collect();
    assert_eq!(conns[0], ("router2", Some(1)), "the fake counts mark >> 24");
    k.links.insert("wwan0".into(), super::kernel::Link::Down);
    assert_eq!(
        devices::unusable(&mut k, &c, &Facts::default())
            .get("wwan0")
            .map(String::as_str),
        Some("is down")
    );
}

#[test]
fn status_cannot_read_is_an_error_not_missing() {
    let run = Run::new("unreadable");
    let mut k = applied(&run);
    k.generation += 1;
    k.fail.push(Op::Table);
    let e = status(&mut k, &plan_of(""), &run.sys, 0xff00_0000).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn dry_run_lists_changes_and_changes_nothing() {
    let run = Run::new("dry");
    let mut k = applied(&run);
    let before = k.snapshot();
    let d = decide(&mut k, &changed(), &run.sys, false).unwrap();
    let text = d.changes.to_string();
    assert!(
        text.contains("+ ip route default via 192.168.1.3"),
        "{text}"
    );
    assert!(text.contains("~ table inet connroute"), "{text}");
    assert_eq!(k.snapshot(), before);
    let d = decide(&mut k, &plan_of(""), &run.sys, false).unwrap();
    assert!(d.changes.is_empty(), "{}", d.changes);
}

#[test]
fn what_must_be_recorded_first_is_recorded_before_any_change() {
    use super::apply::apply_with;
    let run = Run::new("before-change");
    let mut k = applied(&run);
    let before = k.snapshot();
    // It fails: nothing changes, exit 1, and it was asked after every
    // refusal could be made (the live state read).
    let mut calls = 0;
    let mut refuse = || {
        calls += 1;
        Err("cannot record the new allocations: read-only".to_string())
    };
    let e = apply_with(&mut k, &changed(), &run.sys, false, &mut refuse).unwrap_err();
    assert!(matches!(e, ApplyError::Prepare(_)), "{e}");
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("nothing changed"), "{e}");
    assert_eq!((calls, k.snapshot()), (1, before.clone()));
    assert!(k.calls.last() != Some(&"load"), "{:?}", k.calls);
    // A foreign default route in a wanted table is refused first: the hook
    // (the ids file's write) is not reached.
    k.routes.push(foreign(5001, Family::V4, "10.9.9.9"));
    let mut reached = false;
    let mut hook = || {
        reached = true;
        Ok(())
    };
    let e = apply_with(&mut k, &changed(), &run.sys, false, &mut hook).unwrap_err();
    assert!(matches!(e, ApplyError::Foreign(_)) && !reached, "{e}");
    k.routes.pop();
    // nft fails after its commit: the run fails (exit 1) with the new
    // table live, and the hook ran before.
    k.fail.push(Op::LoadCommits);
    let mut hook = || {
        reached = true;
        Ok(())
    };
    let e = apply_with(&mut k, &changed(), &run.sys, false, &mut hook).unwrap_err();
    assert!(matches!(e, ApplyError::CommittedDespite(_)), "{e}");
    assert!(reached && k.snapshot() != before);
}
