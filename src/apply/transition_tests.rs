//! ip rule transitions as a property: for random chains of gateway sets
//! (1..40 gateways, added, removed, renamed, explicit marks and tables,
//! IPv4/IPv6), the rule list after every single kernel operation of an
//! apply (and of its rollback) routes every packet as the old plan or as
//! the new plan does: unmarked, pinned to an old or a new gateway, or
//! carrying a mark nobody owns. Rules are walked as the kernel walks them.
//! Transitions whose gateway count crosses a power of two upwards (the
//! banks grow; they never shrink while live) are held to the same
//! property; at least one chain in 20 has one.
//! 40 chains by default; `CONNROUTE_TRANSITION_CASES` and
//! `CONNROUTE_TRANSITION_SEED` run more or others.

use super::apply::apply;
use super::diff;
use super::fake::{Fake, Op};
use super::kernel::Kernel;
use super::nft::Nft;
use super::{Report, System};
use crate::config::{Config, Family};
use crate::facts::Facts;
use crate::plan::{self, IpRule, Layout, MAIN_TABLE, Plan, RuleAction};

/// A lookup a packet's walk makes (every lookup failing, so the whole
/// walk is seen): `Suppressed` is `lookup main suppress_prefixlength 0`,
/// `Main` the kernel's own main rule at 32766 that ends every walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Suppressed,
    Table(u32),
    Main,
}

/// How a `goto` finds its target: `Exact` as the kernel does (the first
/// rule of exactly that priority; none: the goto is skipped), `AtLeast`
/// the first rule at that priority or after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goto {
    Exact,
    AtLeast,
}

/// The lookups a packet with `mark` makes walking `rules` (one family,
/// in the kernel's order), normalised: a table looked up again fails
/// again, and a suppressed main lookup right before the main rule adds
/// nothing. Also how many rules were tested.
fn walk(rules: &[IpRule], mark: u32, goto: Goto) -> (Vec<Look>, usize) {
    let mut looks = Vec::new();
    let (mut i, mut tested) = (0, 0);
    while i < rules.len() {
        let r = &rules[i];
        tested += 1;
        assert!(tested <= 4 * rules.len() + 4, "walk loops: {rules:?}");
        i += 1;
        if ((mark ^ r.mark) & r.mask == 0) == r.invert {
            continue;
        }
        match r.action {
            RuleAction::Goto(p) => {
                let j = rules.partition_point(|x| x.priority < p);
                let found = j < rules.len() && (goto == Goto::AtLeast || rules[j].priority == p);
                if found {
                    i = j;
                }
            }
            RuleAction::Nop => {}
            RuleAction::Lookup { table, .. } if table == MAIN_TABLE => looks.push(Look::Suppressed),
            RuleAction::Lookup { table, .. } => looks.push(Look::Table(table)),
        }
    }
    looks.push(Look::Main);
    let mut out: Vec<Look> = Vec::new();
    for l in looks {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    if out.len() >= 2 && out[out.len() - 2] == Look::Suppressed {
        out.remove(out.len() - 2);
    }
    (out, tested)
}

/// Whether a family's block needs larger banks in `new` than in `old`.
fn grows(old: &Plan, new: &Plan) -> bool {
    Family::ALL.iter().any(|&f| {
        let (o, n) = (family(&old.ip_rules, f), family(&new.ip_rules, f));
        matches!((Layout::of(&o), Layout::of(&n)), (Some(a), Some(b)) if a.capacity < b.capacity)
    })
}

fn family(rules: &[IpRule], f: Family) -> Vec<IpRule> {
    rules.iter().filter(|r| r.family == f).cloned().collect()
}

/// xorshift64*: reproducible cases without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
struct Gw {
    name: String,
    addr: u32,
    v4: bool,
    v6: bool,
    mark: Option<u32>,
    table: Option<u32>,
}

fn new_gw(rng: &mut Rng, serial: &mut u32) -> Gw {
    *serial += 1;
    let fam = rng.below(4);
    Gw {
        name: format!("g{serial}"),
        addr: *serial,
        v4: fam != 3,
        v6: fam >= 2,
        mark: rng.chance(25).then(|| (1 + rng.below(255) as u32) << 24),
        table: rng.chance(20).then(|| 100 + rng.below(200) as u32),
    }
}

fn config_text(gws: &[Gw]) -> String {
    let mut t = String::from("config globals 'globals'\n\toption mark_mask '0xff000000'\n");
    for g in gws {
        t += &format!("config gateway '{}'\n", g.name);
        if g.v4 {
            t += &format!(
                "\toption gateway '10.{}.{}.1'\n",
                g.addr / 250,
                g.addr % 250
            );
        }
        if g.v6 {
            t += &format!("\toption gateway6 'fd00::{:x}'\n", g.addr);
        }
        if let Some(m) = g.mark {
            t += &format!("\toption mark '0x{m:x}'\n");
        }
        if let Some(tb) = g.table {
            t += &format!("\toption table '{tb}'\n");
        }
    }
    t
}

/// Adds, removes, renames and re-marks some gateways.
fn mutate(rng: &mut Rng, gws: &[Gw], serial: &mut u32) -> Vec<Gw> {
    let mut out: Vec<Gw> = gws.iter().filter(|_| !rng.chance(20)).cloned().collect();
    for g in &mut out {
        if rng.chance(10) {
            *serial += 1;
            g.name = format!("g{serial}");
        }
        if rng.chance(10) {
            g.mark = rng.chance(50).then(|| (1 + rng.below(255) as u32) << 24);
        }
        if rng.chance(5) {
            g.v6 = !g.v6;
            g.v4 = g.v4 || !g.v6;
        }
    }
    for _ in 0..rng.below(6) {
        let at = rng.below(out.len() as u64 + 1) as usize;
        out.insert(at, new_gw(rng, serial));
    }
    out.truncate(40);
    if out.is_empty() {
        out.push(new_gw(rng, serial));
    }
    out
}

fn plan_of(gws: &[Gw]) -> Option<Plan> {
    let config = Config::parse(config_text(gws).as_bytes(), "t.conf").ok()?;
    Some(plan::plan(&config, &Facts::default()))
}

/// Every mark worth a packet: none, each gateway's of both plans, one
/// nobody owns; with bits outside the mask set.
fn marks(a: &Plan, b: &Plan) -> Vec<u32> {
    let mut m: Vec<u32> = vec![0];
    m.extend(a.gateways.iter().chain(&b.gateways).map(|g| g.mark));
    let free = (1..=255u32)
        .map(|i| i << 24)
        .find(|x| !m.contains(x))
        .unwrap_or(0);
    m.push(free);
    m.sort_unstable();
    m.dedup();
    m.iter().map(|x| x | 0x0042_0001).collect()
}

/// Asserts that every recorded rule list routes each mark as `old` or
/// `new` does (under both goto readings), and that unmarked packets never
/// test more than 2 of connroute's rules (3 while the banks grow: the
/// new END is in place before the entry jumps to it).
fn check(trace: &[Vec<IpRule>], old: &Plan, new: &Plan, what: &str) {
    let most = if grows(old, new) { 3 } else { 2 };
    let marks = marks(old, new);
    check_rules(trace, &old.ip_rules, &new.ip_rules, &marks, what, (0, most));
}

/// `cost`: the first step whose unmarked cost is checked, and the most
/// rules an unmarked packet may test.
fn check_rules(
    trace: &[Vec<IpRule>],
    old: &[IpRule],
    new: &[IpRule],
    marks: &[u32],
    what: &str,
    (costed, most): (usize, usize),
) {
    for f in Family::ALL {
        let (o, n) = (family(old, f), family(new, f));
        for (step, state) in trace.iter().enumerate() {
            let s = family(state, f);
            for goto in [Goto::Exact, Goto::AtLeast] {
                for &m in marks {
                    let (got, tested) = walk(&s, m, goto);
                    let (want_old, want_new) = (walk(&o, m, goto).0, walk(&n, m, goto).0);
                    assert!(
                        got == want_old || got == want_new,
                        "{what}: {f} step {step}, mark {m:#x} ({goto:?}): {got:?}, \
                         old {want_old:?}, new {want_new:?}\nrules:\n{}",
                        s.iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                    if m & 0xff00_0000 == 0 && goto == Goto::Exact && step >= costed {
                        assert!(
                            tested <= most,
                            "{what}: {f} step {step}: unmarked tests {tested}\n{}",
                            s.iter()
                                .map(|r| r.to_string())
                                .collect::<Vec<_>>()
                                .join("\n")
                        );
                    }
                }
            }
        }
    }
}

/// A rule someone deleted is put back where it was (the block stays in
/// its bank), every step routing as the damaged state or as the plan.
fn healed(k: &mut Fake, plan: &Plan, victim: usize, what: &str) {
    let whole = k.rules.clone();
    k.rules.remove(victim % whole.len());
    let damaged = k.rules.clone();
    let (ok, trace) = traced_apply(k, plan, false);
    assert!(ok, "{what}: heal");
    // The damaged state itself may cost more: from the first repair on, not.
    check_rules(&trace, &damaged, &whole, &marks(plan, plan), what, (1, 2));
    assert_eq!(k.rules, whole, "{what}: healed in place");
}

fn sys() -> System {
    System {
        nft: Nft::default(),
        rt_tables: None,
        state: None,
    }
}

/// Applies `plan` recording every rule list; `fail_load` makes nft refuse.
fn traced_apply(k: &mut Fake, plan: &Plan, fail_load: bool) -> (bool, Vec<Vec<IpRule>>) {
    let start = k.rules.clone();
    k.trace = Some(Vec::new());
    if fail_load {
        k.fail.push(Op::Load);
    }
    let ok = apply(k, plan, &sys(), false).is_ok();
    k.fail.clear();
    let mut trace = vec![start];
    trace.extend(k.trace.take().unwrap_or_default());
    (ok, trace)
}

/// The routing part of the plan is exactly what the kernel has.
fn assert_current(k: &mut Fake, plan: &Plan, what: &str) {
    let (routes, rules) = (k.routes().unwrap(), k.rules().unwrap());
    let c = diff::routing(plan, &routes, &rules);
    assert!(c.is_empty(), "{what}: not current:\n{c}");
}

/// An apply stopped after `at` rule operations (a crash) leaves drift
/// that the next apply repairs, every step of the repair routing as the
/// old or the new plan.
fn interrupted(k: &mut Fake, trace: &[Vec<IpRule>], at: u64, old: &Plan, new: &Plan, what: &str) {
    k.rules = trace[at as usize].clone();
    let c = diff::routing(new, &k.routes().unwrap(), &k.rules);
    assert_eq!(
        c.is_empty(),
        at as usize == trace.len() - 1,
        "{what}: stopped at {at}"
    );
    let (ok, repair) = traced_apply(k, new, false);
    assert!(ok, "{what}: repair after {at}");
    check(&repair, old, new, &format!("{what}: repair after {at}"));
    assert_current(k, new, what);
}

#[test]
fn every_intermediate_rule_list_routes_as_old_or_new() {
    let mut rng = Rng(std::env::var("CONNROUTE_TRANSITION_SEED")
        .map_or(0x9e37_79b9_7f4a_7c15, |v| v.parse().unwrap()));
    let mut serial = 0;
    let cases = std::env::var("CONNROUTE_TRANSITION_CASES").map_or(40, |v| v.parse().unwrap());
    let (mut transitions, mut bank1, mut resizes) = (0, 0, 0);
    for case in 0..cases {
        let mut k = Fake::default();
        let n = 1 + rng.below(40) as usize;
        let mut gws: Vec<Gw> = (0..n).map(|_| new_gw(&mut rng, &mut serial)).collect();
        let mut old = loop {
            match plan_of(&gws) {
                Some(p) => break p,
                None => gws = mutate(&mut rng, &gws, &mut serial),
            }
        };
        let (ok, trace) = traced_apply(&mut k, &old, false);
        assert!(ok, "case {case}: cold apply failed");
        check(
            &trace,
            &Plan {
                ip_rules: vec![],
                ..old.clone()
            },
            &old,
            "cold",
        );
        for step in 0..4 {
            let next = mutate(&mut rng, &gws, &mut serial);
            let Some(new) = plan_of(&next) else { continue };
            let what = format!("case {case} transition {step}\n{}", config_text(&next));
            let fail = rng.chance(20);
            let (ok, trace) = traced_apply(&mut k, &new, fail);
            assert_eq!(ok, !fail, "{what}");
            // Banks that grow (or are kept larger) keep old-or-new too.
            resizes += usize::from(grows(&old, &new));
            check(&trace, &old, &new, &what);
            transitions += 1;
            bank1 += usize::from(k.rules.iter().any(|r| r.priority == 5002));
            if fail {
                assert_current(&mut k, &old, &what);
                continue;
            }
            assert_current(&mut k, &new, &what);
            if rng.chance(20) {
                healed(&mut k, &new, rng.below(1000) as usize, &what);
            }
            if rng.chance(30) {
                interrupted(
                    &mut k,
                    &trace,
                    rng.below(trace.len() as u64),
                    &old,
                    &new,
                    &what,
                );
            }
            (gws, old) = (next, new);
        }
        let _: Report = super::flush::flush(&mut k, &sys()).unwrap();
        assert!(k.rules.is_empty());
    }
    // Not vacuous: most chains parse, both banks were built, and the
    // banks grew now and then.
    assert!(transitions >= cases * 2, "{transitions} transitions");
    assert!(resizes * 20 >= cases, "{resizes} resizes");
    assert!(
        bank1 * 5 >= transitions,
        "{bank1} of {transitions} in bank 1"
    );
}

#[test]
fn the_walk_reads_rules_as_the_kernel_does() {
    let p = plan_of(&[Gw {
        name: "a".into(),
        addr: 1,
        v4: true,
        v6: false,
        mark: None,
        table: None,
    }])
    .unwrap();
    let (looks, tested) = walk(&p.ip_rules, 0x0100_0000, Goto::Exact);
    assert_eq!(looks, [Look::Suppressed, Look::Table(5000), Look::Main]);
    assert!(tested >= 3);
    assert_eq!(walk(&p.ip_rules, 0, Goto::Exact), (vec![Look::Main], 2));
    // A goto to a priority nobody has is skipped, or lands past it.
    let mut rules = p.ip_rules.clone();
    rules.retain(|r| r.action != RuleAction::Nop);
    let (_, exact) = walk(&rules, 0, Goto::Exact);
    assert!(exact > 2);
}

#[test]
fn a_block_in_either_bank_is_current_and_status_sees_it() {
    let dir = std::env::temp_dir().join(format!("cr-banks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sys = System {
        state: Some(dir.join("state")),
        ..sys()
    };
    let gw = |i: u32| Gw {
        name: format!("g{i}"),
        addr: i,
        v4: true,
        v6: i % 2 == 0,
        mark: None,
        table: None,
    };
    let mut k = Fake::default();
    for (n, bank1) in [(1, false), (3, true), (2, false), (2, false)] {
        let p = plan_of(&(1..=n).map(gw).collect::<Vec<_>>()).unwrap();
        apply(&mut k, &p, &sys, false).unwrap();
        let selector = k.rules.iter().any(|r| r.priority == 5002);
        assert_eq!(selector, bank1, "{n} gateways: {:#?}", k.rules);
        let st = super::status::status(&mut k, &p, &sys, 0xff00_0000).unwrap();
        assert_eq!((st.exit_code(), st.drift.len()), (0, 0), "{:?}", st.drift);
        assert!(st.gateways.iter().all(|g| g.rules_present));
        let again = apply(&mut k, &p, &sys, false).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        // A half-built block in the other bank is drift, and apply removes it.
        let mut half = k.rules.clone();
        let stray = IpRule {
            priority: if bank1 { 5003 } else { 5019 },
            ..p.ip_rules[3].clone()
        };
        half.push(stray.clone());
        k.rules = half;
        let st = super::status::status(&mut k, &p, &sys, 0xff00_0000).unwrap();
        assert_eq!(st.exit_code(), 3);
        apply(&mut k, &p, &sys, false).unwrap();
        assert!(!k.rules.contains(&stray), "{stray} left");
        assert_current(&mut k, &p, "after the repair");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new `rule_priority` or `mark_mask` moves the banks: not covered by
/// the old-or-new guarantee, but apply still ends exactly at the plan.
/// A gateway count crossing a power of two (8, 16, …) grows the banks in
/// place; fewer gateways keep them (END stays), until a flush.
#[test]
fn moving_the_banks_converges() {
    let text = |prio: u32, mask: &str, n: u32| {
        let mut t = format!(
            "config globals 'globals'\n\toption rule_priority '{prio}'\n\toption mark_mask '{mask}'\n"
        );
        for i in 1..=n {
            t += &format!("config gateway 'g{i}'\n\toption gateway '10.0.0.{i}'\n");
        }
        plan::plan(
            &Config::parse(t.as_bytes(), "t").unwrap(),
            &Facts::default(),
        )
    };
    let mut k = Fake::default();
    let end = |k: &Fake| k.rules.iter().map(|r| r.priority).max();
    for (p, want_end) in [
        (text(5000, "0xff000000", 3), 5035),
        (text(5000, "0xff000000", 9), 5067),
        (text(5000, "0xff000000", 40), 5259),
        (text(5000, "0xff000000", 4), 5259),
        (text(5010, "0xff000000", 4), 5045),
        (text(5003, "0x00000f00", 2), 5038),
        (text(5000, "0xff000000", 3), 5035),
    ] {
        apply(&mut k, &p, &sys(), false).unwrap();
        assert_current(&mut k, &p, "moved");
        assert_eq!(end(&k), Some(want_end), "{:#?}", k.rules);
        // Nothing of the old place is left: the block, and in bank 1 its selector.
        let selector = Layout::of(&p.ip_rules).unwrap().selector();
        let bank1 = k.rules.iter().any(|r| r.priority == selector);
        assert_eq!(k.rules.len(), p.ip_rules.len() + usize::from(bank1));
    }
    // A flush gives the block up: the next apply sizes it afresh.
    let (big, small) = (text(5000, "0xff000000", 40), text(5000, "0xff000000", 4));
    apply(&mut k, &big, &sys(), false).unwrap();
    apply(&mut k, &small, &sys(), false).unwrap();
    assert_eq!(end(&k), Some(5259));
    let _: Report = super::flush::flush(&mut k, &sys()).unwrap();
    apply(&mut k, &small, &sys(), false).unwrap();
    assert_eq!(end(&k), Some(5035));
}

#[path = "transition_fail_tests.rs"]
mod fail;
