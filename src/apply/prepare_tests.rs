//! The early nft start ([`Kernel::prepare_load`]) against the fake kernel:
//! asked for as soon as a load is known to follow, before any route or
//! rule is read or changed; never when nothing changes; and the waiting
//! nft is dropped on every way out that does not feed it.

use super::apply::{apply, decide, prepare_if_absent};
use super::fake::{Fake, FakeRoute, Op};
use super::kernel::Kernel;
use super::tests::{Run, plan_of};
use crate::config::Family;
use crate::plan::Route;

fn pos(k: &Fake, call: &str) -> usize {
    let p = k.calls.iter().position(|c| *c == call);
    p.unwrap_or_else(|| panic!("no {call} in {:?}", k.calls))
}

#[test]
fn a_cold_apply_starts_nft_before_any_route_or_rule_work_and_feeds_it() {
    let d = Run::new("prepare-cold");
    let mut k = Fake::default();
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert_eq!(k.calls[0], "prepare", "{:?}", k.calls);
    assert!(pos(&k, "routes") > 0 && pos(&k, "route+") > 0 && pos(&k, "rule+") > 0);
    // The prepared nft gets the batch, after every route and rule change:
    // only nft's start moved, not the order of the commits.
    let load = pos(&k, "load*");
    let change = |c: &&str| c.ends_with(['+', '-', '~']);
    let last_change = k.calls.iter().rposition(change);
    assert!(last_change.is_some_and(|l| l < load), "{:?}", k.calls);
    assert!(!k.prepared && !k.calls.contains(&"discard"));
    // One route dump and one rule dump serve the whole run.
    let dumps = |what| k.calls.iter().filter(|c| **c == what).count();
    assert_eq!((dumps("routes"), dumps("rules")), (1, 1), "{:?}", k.calls);
}

#[test]
fn an_unchanged_apply_starts_no_nft() {
    let d = Run::new("prepare-same");
    let mut k = Fake::default();
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    k.calls.clear();
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert!(!k.calls.contains(&"prepare"), "{:?}", k.calls);
    // A changed route with the table current: no nft either.
    k.calls.clear();
    k.routes[0].route.via = Some("192.168.1.9".parse().unwrap());
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert_eq!(k.calls.iter().filter(|c| **c == "route~").count(), 1);
    assert!(
        !k.calls
            .iter()
            .any(|c| c.starts_with("prepare") || c.starts_with("load"))
    );
}

#[test]
fn check_diff_decides_without_starting_nft() {
    let d = Run::new("prepare-check");
    let mut k = Fake::default();
    let dec = decide(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert!(!dec.changes.is_empty());
    assert!(
        !k.prepared && !k.calls.contains(&"prepare"),
        "{:?}",
        k.calls
    );
}

/// Every way out of a cold apply that does not reach the load.
#[test]
fn an_error_after_the_hint_drops_the_waiting_nft() {
    type Setup = fn(&mut Fake);
    let cases: [(&str, Setup); 4] = [
        ("route", |k| k.fail.push(Op::AddRoute)),
        ("rule", |k| k.fail.push(Op::AddRule)),
        ("unreachable", |k| {
            k.unreachable.push("192.168.1.2".parse().unwrap())
        }),
        ("foreign", |k| {
            k.routes.push(FakeRoute {
                route: Route {
                    family: Family::V4,
                    table: 5000,
                    via: Some("192.168.1.1".parse().unwrap()),
                    device: None,
                },
                protocol: 4,
            })
        }),
    ];
    for (name, setup) in cases {
        let d = Run::new(&format!("prepare-{name}"));
        let mut k = Fake::default();
        setup(&mut k);
        apply(&mut k, &plan_of(""), &d.sys, false).unwrap_err();
        assert_eq!(k.calls.first(), Some(&"prepare"), "{name}: {:?}", k.calls);
        assert_eq!(k.calls.last(), Some(&"discard"), "{name}: {:?}", k.calls);
        assert!(
            !k.prepared && k.table.is_none() && k.batches.is_empty(),
            "{name}"
        );
    }
}

#[test]
fn a_refused_load_and_its_fallback_leave_no_nft_waiting() {
    let d = Run::new("prepare-refused");
    let mut k = Fake::default();
    k.fail.push(Op::Load);
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap_err();
    assert!(k.calls.contains(&"load*"), "{:?}", k.calls);
    assert!(
        !k.prepared && !k.calls.contains(&"discard"),
        "{:?}",
        k.calls
    );
    assert!(k.table.is_none() && k.routes.is_empty() && k.rules.is_empty());
}

#[test]
fn before_the_plan_only_an_absent_table_of_an_enabled_config_starts_nft() {
    let d = Run::new("prepare-early");
    let mut k = Fake::default();
    prepare_if_absent(&mut k, false);
    assert!(!k.prepared, "disabled: no table to load");
    prepare_if_absent(&mut k, true);
    assert!(k.prepared);
    // apply uses that nft; it does not start a second one.
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert_eq!(k.calls.iter().filter(|c| **c == "prepare").count(), 1);
    assert!(k.calls.contains(&"load*") && !k.prepared, "{:?}", k.calls);
    // The table is there now: nothing started before the plan.
    k.calls.clear();
    prepare_if_absent(&mut k, true);
    assert!(!k.prepared && k.calls.is_empty());
    // Started before the plan, but apply finds nothing to load (the table
    // was made meanwhile): the waiting nft is dropped.
    k.prepare_load();
    apply(&mut k, &plan_of(""), &d.sys, false).unwrap();
    assert_eq!(k.calls, ["prepare", "routes", "rules", "discard"]);
}
