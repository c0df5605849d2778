//! Incremental loads through the engine and the fake kernel: applying
//! config A then B ends with exactly the table a fresh load of B gives,
//! with no table or base chain deleted; a refused update falls back to a
//! full replace; anything unverifiable replaces the whole table.

use super::apply::{apply, decide};
use super::diff::TableChange;
use super::error::ApplyError;
use super::fake::{Fake, Op};
use super::kernel::Kernel;
use super::runstate::Batch;
use super::status::status;
use super::tests::Run;
use crate::config::Config;
use crate::facts::Facts;
use crate::plan::{self, Plan};

const HEAD: &str = "config globals 'globals'
	option mark_mask '0xff000000'
config gateway 'r2'
	option gateway '192.168.1.2'
";

/// Rules of different shapes, so each stays an nft rule of its own.
fn rule(name: &str) -> String {
    let m = match name {
        "a" => "list proto 'tcp'\n\tlist dest_port '80'",
        "b" => "list src_ip '10.0.0.0/8'",
        "c" => "list dest_ip '192.0.2.1'",
        "d" => "list proto 'udp'\n\tlist src_port '53'",
        "v1" | "v2" | "v3" => "list dest_ip '198.51.100.9'",
        _ => "list dest_ip '!203.0.113.0/24'",
    };
    let m = match name {
        "v1" => m.replace("100.9", "100.1"),
        "v2" => m.replace("100.9", "100.2"),
        _ => m.to_string(),
    };
    format!("config rule '{name}'\n\toption gateway 'r2'\n\t{m}\n")
}

fn plan_of(rules: &[&str], extra: &str) -> Plan {
    let mut text = HEAD.to_string() + extra;
    for r in rules {
        text += &rule(r);
    }
    plan::plan(
        &Config::parse(text.as_bytes(), "t.conf").unwrap(),
        &Facts::default(),
    )
}

/// The table listing (no handles) a fresh load of `p` gives.
fn fresh(p: &Plan) -> String {
    let run = Run::new("incr-fresh");
    let mut k = Fake::default();
    apply(&mut k, p, &run.sys, false).unwrap();
    k.table.unwrap().listing()
}

/// `listing` with every fingerprint in it zeroed.
fn unstamped(listing: &str) -> String {
    let tag = "connroute restore fp=";
    let mut parts = listing.split(tag);
    let mut out = parts.next().unwrap_or("").to_string();
    for p in parts {
        out += tag;
        out += &"0".repeat(16);
        out += p.get(16..).unwrap_or("");
    }
    out
}

/// Applies `a`, then `b`; asserts `b` was an incremental update (no
/// `replace rule`: nft before 1.1.0 aborts on some) ending in exactly the
/// fresh table of `b` (fingerprint comments included, unless the update
/// was add-only: then it deletes nothing and keeps `a`'s comments), and
/// that nothing is left to do.
fn a_then_b(name: &str, a: &Plan, b: &Plan) -> Fake {
    let run = Run::new(&format!("incr-{name}"));
    let mut k = Fake::default();
    apply(&mut k, a, &run.sys, false).unwrap();
    let d = decide(&mut k, b, &run.sys, false).unwrap();
    let Some(TableChange::Update(u)) = &d.changes.table else {
        panic!("{name}: {:?}", d.changes.table);
    };
    let add_only = u.touched.add_only();
    let shown = d.changes.to_string();
    assert!(
        shown.contains(&format!("~ table inet connroute: {}", u.touched)),
        "{shown}"
    );
    k.check(&u.to_json(b.ruleset.objects()))
        .expect("the update checks");
    let report = apply(&mut k, b, &run.sys, false).unwrap();
    let line = format!("updated table inet connroute ({}): ", b.fingerprint);
    assert!(
        report.changes.iter().any(|c| c.starts_with(&line)),
        "{name}: {report:?}"
    );
    let batch = String::from_utf8(k.last_batch.clone()).unwrap();
    for gone in [
        r#"{"replace""#,
        r#"{"delete":{"table""#,
        r#""name":"prerouting""#,
        r#""name":"output""#,
    ] {
        assert!(!batch.contains(gone), "{name}: {gone} in {batch}");
    }
    let live = k.table.as_ref().unwrap().listing();
    if add_only {
        assert!(!batch.contains(r#"{"delete""#), "{name}: {batch}");
        assert_eq!(k.fingerprint().as_deref(), Some(a.fingerprint.as_str()));
        assert_eq!(unstamped(&live), unstamped(&fresh(b)), "{name}");
    } else {
        assert_eq!(k.fingerprint().as_deref(), Some(b.fingerprint.as_str()));
        assert_eq!(live, fresh(b), "{name}");
    }
    let st = status(&mut k, b, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(st.nft_table, "current", "{name}: {:?}", st.drift);
    let runs = k.nft_runs;
    assert!(
        apply(&mut k, b, &run.sys, false)
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(k.nft_runs, runs, "{name}: the re-apply runs no nft");
    k
}

#[test]
fn rules_added_removed_and_moved_end_like_a_fresh_load() {
    let abc = plan_of(&["a", "b", "c"], "");
    for (name, to) in [
        ("start", vec!["n", "a", "b", "c"]),
        ("middle", vec!["a", "n", "b", "c"]),
        ("end", vec!["a", "b", "c", "n"]),
        ("removed", vec!["a", "c"]),
        ("swapped", vec!["b", "a", "c", "d"]),
        ("all-new", vec!["d", "n"]),
    ] {
        a_then_b(name, &abc, &plan_of(&to, ""));
    }
}

#[test]
fn one_rule_added_only_adds() {
    let a = plan_of(&["a", "b"], "");
    let b = plan_of(&["a", "n", "b"], "");
    let k = a_then_b("one", &a, &b);
    let batch = String::from_utf8(k.last_batch).unwrap();
    // Its counter and its rule, nothing else: no fingerprint refresh.
    assert_eq!(batch.matches(r#"{"add":{"counter""#).count(), 1, "{batch}");
    assert_eq!(batch.matches(r#"{"insert":{"rule""#).count(), 1, "{batch}");
    let v: serde_json::Value = serde_json::from_str(&batch).unwrap();
    assert_eq!(v["nftables"].as_array().unwrap().len(), 2, "{batch}");
    // Removing it destroys anyway: the fingerprint rules are refreshed.
    let k = a_then_b("one-removed", &b, &a);
    let batch = String::from_utf8(k.last_batch).unwrap();
    assert_eq!(batch.matches(r#"{"insert":{"rule""#).count(), 2, "{batch}");
    assert_eq!(batch.matches(r#"{"delete":{"rule""#).count(), 3, "{batch}");
}

#[test]
fn gateways_added_and_removed_end_like_a_fresh_load() {
    let r3 = "config gateway 'r3'\n\toption gateway '192.168.1.3'\n";
    let r3rule = "config rule 'via3'\n\toption gateway 'r3'\n\tlist proto 'udp'\n";
    let one = plan_of(&["a"], "");
    let two = plan_of(&["a"], &format!("{r3}{r3rule}"));
    a_then_b("gw-added", &one, &two);
    a_then_b("gw-removed", &two, &one);
}

#[test]
fn vmap_runs_and_named_sets_end_like_a_fresh_load() {
    let v = plan_of(&["v1", "v2"], "");
    a_then_b("vmap", &v, &plan_of(&["v1", "v2", "v3"], ""));
    let ports = |n: u32| {
        let list: Vec<String> = (1..=n).map(|p| p.to_string()).collect();
        format!(
            "config rule 'big'\n\toption gateway 'r2'\n\tlist dest_port '{}'\n",
            list.join(" ")
        )
    };
    let s33 = plan_of(&[], &ports(33));
    let s34 = plan_of(&[], &ports(34));
    assert!(
        String::from_utf8(s33.ruleset.to_json())
            .unwrap()
            .contains(r#"{"add":{"set""#)
    );
    let k = a_then_b("set-changed", &s33, &s34);
    let batch = String::from_utf8(k.last_batch).unwrap();
    assert!(batch.contains(r#"{"flush":{"set""#), "{batch}");
    assert!(batch.contains(r#"{"add":{"element""#), "{batch}");
    a_then_b("set-removed", &s34, &plan_of(&["a"], ""));
}

#[test]
fn interval_sets_are_edited_without_replace() {
    // A run of prefix rules merges into one verdict map (an anonymous
    // interval set); nft 1.0.6 aborts on `replace` of such a rule (the
    // fake too), so each edit must insert the new rule and delete the old.
    let prefixes = |rules: &[(&str, &str)]| {
        let mut text = String::new();
        for (name, dest) in rules {
            text += &format!("config rule '{name}'\n\toption gateway 'r2'\n");
            for d in dest.split(' ') {
                text += &format!("\tlist dest_ip '{d}'\n");
            }
        }
        plan_of(&[], &text)
    };
    let a = prefixes(&[("p1", "10.1.0.0/24"), ("p2", "10.2.0.0/24")]);
    let json = String::from_utf8(a.ruleset.to_json()).unwrap();
    assert!(
        json.contains(r#""vmap""#) && json.contains(r#""prefix""#),
        "{json}"
    );
    let b = prefixes(&[
        ("p1", "10.1.0.0/24"),
        ("p2", "10.2.0.0/24"),
        ("p3", "10.3.0.0/24"),
    ]);
    a_then_b("vmap-rule-added", &a, &b);
    let c = prefixes(&[("p1", "10.1.0.0/24 10.9.0.0/16"), ("p2", "10.2.0.0/24")]);
    let d = prefixes(&[("p1", "10.1.0.0/24 10.8.0.0/16"), ("p2", "10.2.0.0/24")]);
    a_then_b("prefix-list-edited", &c, &d);
}

#[test]
fn a_dormant_table_is_drift_and_replaced_whole() {
    let run = Run::new("incr-dormant");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    // `nft add table inet connroute { flags dormant; }`: every hook off.
    k.table.as_mut().unwrap().flags = r#"["dormant"]"#.into();
    k.generation += 1;
    let st = status(&mut k, &a, &run.sys, 0xff00_0000).unwrap();
    assert_ne!(st.nft_table, "current", "{:?}", st.drift);
    let d = decide(&mut k, &b, &run.sys, false).unwrap();
    assert!(
        matches!(d.changes.table, Some(TableChange::Replace(_))),
        "{:?}",
        d.changes.table
    );
    apply(&mut k, &b, &run.sys, false).unwrap();
    assert_eq!(k.table.as_ref().unwrap().flags, "", "re-created: no flags");
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&b));
}

#[test]
fn a_refused_update_falls_back_to_a_full_replace() {
    let run = Run::new("incr-refused");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    k.fail.push(Op::Load);
    let report = apply(&mut k, &b, &run.sys, false).unwrap();
    assert_eq!(k.batches.len(), 3, "load of a, refused update, replace");
    assert!(!String::from_utf8_lossy(&k.batches[1]).contains(r#"{"delete":{"table""#));
    assert!(String::from_utf8_lossy(&k.batches[2]).contains(r#"{"delete":{"table""#));
    assert!(
        report.changes.iter().any(|c| c.starts_with("loaded table")),
        "{report:?}"
    );
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&b));
    // The replace was recorded: the next change is incremental again.
    a_then_b_again(&mut k, &run, &b, &plan_of(&["n"], ""));
}

#[test]
fn a_stopped_update_is_not_followed_by_a_full_replace() {
    let run = Run::new("incr-stopped");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    let before = k.table.as_ref().unwrap().listing();
    k.fail.push(Op::LoadStopped);
    let e = apply(&mut k, &b, &run.sys, false).unwrap_err();
    assert!(e.to_string().contains("stop"), "{e}");
    assert_eq!(k.batches.len(), 2, "load of a, the stopped update only");
    assert_eq!(k.table.as_ref().unwrap().listing(), before);
}

#[test]
fn a_timed_out_update_is_the_error_not_followed_by_a_full_replace() {
    // `--timeout` bounds the whole load: a second nft would double it.
    let run = Run::new("incr-timeout");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    let (before, routes, rules) = (
        k.table.as_ref().unwrap().listing(),
        k.routes.clone(),
        k.rules.clone(),
    );
    k.fail.push(Op::LoadTimesOut);
    let e = apply(&mut k, &b, &run.sys, false).unwrap_err();
    assert!(e.to_string().contains("timed out after 2 s"), "{e}");
    assert!(
        e.to_string()
            .starts_with("apply failed, previous state kept"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
    assert_eq!(k.batches.len(), 2, "load of a, the timed-out update only");
    assert_eq!(k.table.as_ref().unwrap().listing(), before);
    assert_eq!(
        (k.routes.clone(), k.rules.clone()),
        (routes, rules),
        "rolled back"
    );
}

fn a_then_b_again(k: &mut Fake, run: &Run, b: &Plan, c: &Plan) {
    let d = decide(k, c, &run.sys, false).unwrap();
    assert!(
        matches!(d.changes.table, Some(TableChange::Update(_))),
        "{:?}",
        d.changes.table
    );
    apply(k, c, &run.sys, false).unwrap();
    assert_eq!(
        k.table.as_ref().unwrap().listing(),
        fresh(c),
        "after {}",
        b.fingerprint
    );
}

#[test]
fn an_update_that_commits_then_fails_is_kept_and_recorded() {
    let run = Run::new("incr-commits");
    let (a, b) = (plan_of(&["a", "c"], ""), plan_of(&["b", "a"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    // It stamps the new fingerprint: that tells it committed.
    let d = decide(&mut k, &b, &run.sys, false).unwrap();
    assert!(matches!(d.changes.table, Some(TableChange::Update(_))));
    k.fail.push(Op::LoadCommits);
    let e = apply(&mut k, &b, &run.sys, false).unwrap_err();
    assert!(matches!(e, ApplyError::CommittedDespite(_)), "{e}");
    assert_eq!(k.batches.len(), 2, "no replace after a committed update");
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&b));
    let runs = k.nft_runs;
    assert!(
        apply(&mut k, &b, &run.sys, false)
            .unwrap()
            .changes
            .is_empty()
    );
    assert_eq!(k.nft_runs, runs);
    // An add-only update keeps the older comment; the rule counts it
    // leaves (after exactly one commit) tell it committed: kept, recorded,
    // and no route rolled back under the live table.
    let c = plan_of(&["n", "b", "a"], "");
    k.fail.push(Op::LoadCommits);
    let e = apply(&mut k, &c, &run.sys, false).unwrap_err();
    assert!(matches!(e, ApplyError::CommittedDespite(_)), "{e}");
    assert_eq!(k.batches.len(), 3, "no replace after a committed update");
    assert!(!String::from_utf8_lossy(&k.last_batch).contains(r#"{"delete""#));
    assert_eq!(k.fingerprint().as_deref(), Some(b.fingerprint.as_str()));
    let live = k.table.as_ref().unwrap().listing();
    assert_eq!(unstamped(&live), unstamped(&fresh(&c)));
    let st = status(&mut k, &c, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(st.nft_table, "current", "{:?}", st.drift);
    assert_eq!(st.exit_code(), 0, "{:?}", st.drift);
    // Status with the older config (whose fingerprint the comment still
    // carries) trusts the record: the table differs from it (exit 3).
    let st = status(&mut k, &b, &run.sys, 0xff00_0000).unwrap();
    assert_eq!(st.drift, ["table inet connroute differs from the config"]);
    assert_eq!(st.exit_code(), 3);
    // The run state lost: the comment names an older plan, nothing says
    // what the table holds; apply replaces it whole, for either config.
    std::fs::remove_file(run.state()).unwrap();
    let d = decide(&mut k, &c, &run.sys, false).unwrap();
    let differs = "differs from the config";
    assert_eq!(d.changes.table, Some(TableChange::Replace(differs.into())));
    let d = decide(&mut k, &b, &run.sys, false).unwrap();
    let why = "contents not verifiable: no record of the last load";
    assert_eq!(d.changes.table, Some(TableChange::Replace(why.into())));
}

#[test]
fn an_add_only_update_that_failed_is_not_taken_for_committed() {
    let run = Run::new("incr-notcommitted");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    // nft fails, nothing committed, but another commit moved the
    // generation by one: the counts are a's, so it is not taken as
    // committed; the whole table is replaced.
    k.fail.push(Op::LoadBumps);
    let report = apply(&mut k, &b, &run.sys, false).unwrap();
    assert_eq!(k.batches.len(), 3, "load of a, failed update, replace");
    assert!(String::from_utf8_lossy(&k.batches[2]).contains(r#"{"delete":{"table""#));
    assert!(report.changes.iter().any(|c| c.starts_with("loaded table")));
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&b));
    // Committed, but another commit came too (the generation moved by
    // two): it cannot tell, and replaces the table whole.
    let c = plan_of(&["a", "n", "b"], "");
    k.fail.push(Op::LoadCommitsTwice);
    apply(&mut k, &c, &run.sys, false).unwrap();
    assert_eq!(k.batches.len(), 5, "failed update, replace");
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&c));
}

#[test]
fn a_stale_handle_is_refused_whole_then_replaced() {
    let run = Run::new("incr-stale");
    let (a, b) = (plan_of(&["a", "b"], ""), plan_of(&["a", "n", "b"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    let before = k.table.clone();
    let Some(TableChange::Update(u)) = decide(&mut k, &b, &run.sys, false).unwrap().changes.table
    else {
        panic!("no update");
    };
    // The rule the update inserts before is gone: nft refuses all of it.
    let stale = u.to_json(b.ruleset.objects());
    k.table.as_mut().unwrap().tamper();
    let changed = k.table.clone();
    assert!(k.load(&[&stale]).is_err());
    assert_eq!(k.table, changed, "nothing of a refused batch stays");
    k.table = before;
    apply(&mut k, &b, &run.sys, false).unwrap();
    let live = k.table.as_ref().unwrap().listing();
    assert_eq!(
        unstamped(&live),
        unstamped(&fresh(&b)),
        "add-only: a's comment"
    );
}

#[test]
fn unverifiable_tables_are_replaced_whole() {
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let replace = |k: &mut Fake, run: &Run| {
        let d = decide(k, &b, &run.sys, false).unwrap();
        assert!(
            matches!(d.changes.table, Some(TableChange::Replace(_))),
            "{:?}",
            d.changes.table
        );
    };
    // No batch recorded, a foreign or damaged record, drift, --force.
    let run = Run::new("incr-unverifiable");
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    let record = Batch::path(run.state());
    let saved = std::fs::read(&record).unwrap();
    std::fs::remove_file(&record).unwrap();
    replace(&mut k, &run);
    std::fs::write(&record, saved.replace_first()).unwrap();
    replace(&mut k, &run);
    std::fs::write(&record, "not connroute's\n").unwrap();
    replace(&mut k, &run);
    apply(&mut k, &a, &run.sys, true).unwrap();
    assert_eq!(
        std::fs::read(&record).unwrap(),
        b"not connroute's\n",
        "foreign file kept"
    );
    std::fs::remove_file(&record).unwrap();
    apply(&mut k, &a, &run.sys, true).unwrap();
    assert!(record.exists());
    k.table.as_mut().unwrap().tamper();
    k.generation += 1;
    replace(&mut k, &run);
    let d = decide(&mut k, &b, &run.sys, true).unwrap();
    assert_eq!(d.changes.table, Some(TableChange::Replace("forced".into())));
}

trait Damage {
    fn replace_first(&self) -> Vec<u8>;
}

impl Damage for Vec<u8> {
    /// The record with one byte of its commands changed (checksum fails).
    fn replace_first(&self) -> Vec<u8> {
        let mut v = self.clone();
        let at = v.iter().position(|&c| c == b'\n').unwrap() + 5;
        v[at] ^= 1;
        v
    }
}

#[test]
fn a_table_changed_after_it_was_read_is_replaced_whole() {
    let run = Run::new("incr-raced");
    let (a, b) = (plan_of(&["a"], ""), plan_of(&["a", "n"], ""));
    let mut k = Fake::default();
    apply(&mut k, &a, &run.sys, false).unwrap();
    let d = decide(&mut k, &b, &run.sys, false).unwrap();
    assert!(matches!(d.changes.table, Some(TableChange::Update(_))));
    // Someone adds a rule to connroute's table meanwhile: the update's
    // handles are still there, but it would keep the foreign rule.
    let classify = k.table.as_mut().unwrap().chains.get_mut("classify");
    classify
        .unwrap()
        .rules
        .push((999, r#"{"expr":[{"drop":null}]}"#.into()));
    k.generation += 1;
    let mut report = super::Report::default();
    let (result, state) = super::apply::execute(&mut k, &b, &d.changes, &mut report);
    result.unwrap();
    assert!(state.unwrap().digest.is_some());
    let last = String::from_utf8(k.last_batch.clone()).unwrap();
    assert!(last.contains(r#"{"delete":{"table""#), "{last}");
    assert_eq!(k.table.as_ref().unwrap().listing(), fresh(&b));
}
