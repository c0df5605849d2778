//! Moving from the live ip rule block to the plan's without a wrong route
//! in between. The plan's block (built in bank 0, see `plan::Layout`)
//! goes to the bank that already holds it, else to the bank the live block
//! does not use: built there while no packet can reach it (leaves and
//! dispatch before the exit and the selector), then one rule switches
//! (adding `P+2 goto B1`, or deleting it), then the old bank is deleted
//! where no packet reaches it. Shared rules come first (END, then the main
//! rule, then the entry) and go last (entry before END), so the main rule
//! is always looked up before any leaf and unmarked packets test at most
//! two rules. Every step keeps each packet on the old plan's or the new
//! plan's route (`transition_tests.rs` checks it after every operation).

use crate::config::Family;
use crate::plan::{IpRule, Layout};
use std::cmp::Reverse;
use std::collections::HashMap;

/// One ip rule change before the nft table is loaded, in apply's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStep {
    /// Add this rule.
    Add(IpRule),
    /// Delete this connroute rule.
    Remove(IpRule),
}

/// The ip rule changes: steps before the table is loaded, and rules to
/// remove after it (the old bank, strays, duplicates), both in order.
pub fn changes(plan: &[IpRule], live: &[IpRule]) -> (Vec<RuleStep>, Vec<IpRule>) {
    let (mut steps, mut after) = (Vec::new(), Vec::new());
    for f in Family::ALL {
        let (want, have) = (of(plan, f), of(live, f));
        let (s, a) = family_changes(&want, &have);
        steps.extend(s);
        after.extend(a);
    }
    (steps, after)
}

/// Every rule of `live` in the order that removes them safely (flush):
/// each family's banks from the top, the main rule after every leaf,
/// the entry, END last.
pub fn removal(live: &[IpRule]) -> Vec<IpRule> {
    changes(&[], live).1
}

/// The plan's rules as they should sit next to `live`: each family's
/// block in the bank [`changes`] would use.
pub fn placed(plan: &[IpRule], live: &[IpRule]) -> Vec<IpRule> {
    Family::ALL
        .iter()
        .flat_map(|&f| desired(&of(plan, f), &of(live, f)).0)
        .collect()
}

fn of(rules: &[IpRule], f: Family) -> Vec<IpRule> {
    rules.iter().filter(|r| r.family == f).cloned().collect()
}

/// Where one family's block goes: its rules there, the layout, the bank
/// live now and the bank it goes to. The live bank when it holds the
/// block (extra rules go after the load) or when nothing in its place
/// contradicts the plan (a first block, or rules others deleted: put
/// back where they were, unless the other bank lacks fewer); else the
/// other one.
fn desired(want: &[IpRule], live: &[IpRule]) -> (Vec<IpRule>, Option<(Layout, usize, usize)>) {
    let Some(layout) = Layout::of(want) else {
        return (Vec::new(), None);
    };
    let banks = [layout.in_bank(want, 0), layout.in_bank(want, 1)];
    let selector = banks[1].iter().find(|r| r.priority == layout.selector());
    let first = live.iter().find(|r| r.priority == layout.selector());
    let now = usize::from(first.is_some() && first == selector);
    let placed: Vec<IpRule> = live
        .iter()
        .filter(|r| {
            (layout.base..=layout.selector()).contains(&r.priority) || r.priority == layout.end()
        })
        .chain(
            live.iter()
                .filter(|r| layout.bank_of(r.priority) == Some(now)),
        )
        .cloned()
        .collect();
    let missing = |b: usize| unmatched(&banks[b], live).0.len();
    let in_place = unmatched(&banks[now], &placed).1.is_empty();
    let to = if missing(now) == 0 || in_place && missing(now) <= missing(1 - now) {
        now
    } else {
        1 - now
    };
    (banks[to].clone(), Some((layout, now, to)))
}

/// The rules of `want` missing from `live`, and those of `live` not in
/// `want` (each live rule matches one wanted rule at most).
fn unmatched(want: &[IpRule], live: &[IpRule]) -> (Vec<IpRule>, Vec<IpRule>) {
    let mut free: HashMap<&IpRule, usize> = HashMap::new();
    for r in live {
        *free.entry(r).or_default() += 1;
    }
    let mut missing = Vec::new();
    for w in want {
        match free.get_mut(w) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing.push(w.clone()),
        }
    }
    // The extras in live order: the last ones of each kind.
    let mut extra = Vec::new();
    for r in live.iter().rev() {
        if let Some(n) = free.get_mut(r).filter(|n| **n > 0) {
            *n -= 1;
            extra.push(r.clone());
        }
    }
    extra.reverse();
    (missing, extra)
}

/// One family: left-overs in the bank to build go first, then the adds,
/// then the switch away from bank 1; the rest after the table's load.
fn family_changes(want: &[IpRule], live: &[IpRule]) -> (Vec<RuleStep>, Vec<IpRule>) {
    let (target, banks) = desired(want, live);
    let (mut add, extra) = unmatched(&target, live);
    let layout = banks.map(|b| b.0).or_else(|| Layout::of(live));
    let Some((layout, now, to)) = banks else {
        let mut after = extra;
        after.sort_by_key(|r| remove_rank(r, layout));
        return (Vec::new(), after);
    };
    let (clear, extra): (Vec<_>, Vec<_>) = extra
        .into_iter()
        .partition(|r| to != now && layout.bank_of(r.priority) == Some(to));
    let (switch, mut after): (Vec<_>, Vec<_>) = extra
        .into_iter()
        .partition(|r| r.priority == layout.selector());
    add.sort_by_key(|r| add_rank(r, layout));
    after.sort_by_key(|r| remove_rank(r, Some(layout)));
    let steps = clear
        .into_iter()
        .map(RuleStep::Remove)
        .chain(add.into_iter().map(RuleStep::Add))
        .chain(switch.into_iter().map(RuleStep::Remove))
        .collect();
    (steps, after)
}

/// Adds: END, the main rule, the entry, then the bank from its exit down
/// (every goto's target is there before it), the selector last.
fn add_rank(r: &IpRule, l: Layout) -> (u8, Reverse<u32>) {
    let rank = match r.priority {
        p if p == l.end() => 0,
        p if p == l.base + 1 => 1,
        p if p == l.base => 2,
        p if p == l.selector() => 4,
        _ => 3,
    };
    (rank, Reverse(r.priority))
}

/// Removals: the selector, the banks from the top, the main rule after
/// every leaf, the entry, END last.
fn remove_rank(r: &IpRule, l: Option<Layout>) -> (u8, Reverse<u32>) {
    let rank = match (r.priority, l) {
        (p, Some(l)) if p == l.selector() => 0,
        (p, Some(l)) if p == l.base + 1 => 2,
        (p, Some(l)) if p == l.base => 3,
        (p, Some(l)) if p == l.end() => 4,
        _ => 1,
    };
    (rank, Reverse(r.priority))
}
