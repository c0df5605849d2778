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
use crate::plan::{IpRule, Layout, RuleAction, with_capacity};
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
        .flat_map(|&f| {
            let live = of(live, f);
            desired(&kept_size(&of(plan, f), &live), &live).0
        })
        .collect()
}

/// The plan's block at the live block's size when that is larger: the
/// banks grow with the gateway count but do not shrink while the block
/// is live, so removing a gateway never moves the others' rules (a
/// shrink would have to rebuild over the live bank). A block with
/// another `rule_priority` or `mark_mask` is a move, not kept.
fn kept_size(want: &[IpRule], live: &[IpRule]) -> Vec<IpRule> {
    match live_capacity(want, live) {
        Some(c) => with_capacity(want, c),
        None => want.to_vec(),
    }
}

/// The capacity of the live block of `want`'s base and mask, when larger
/// than `want`'s: read from every rule that jumps to END or is END (the
/// largest), so a block that lost its entry rule keeps its size too.
fn live_capacity(want: &[IpRule], live: &[IpRule]) -> Option<u32> {
    let (w, mask) = (Layout::of(want)?, entry(want)?.mask);
    let ours = |r: &IpRule| r.mask == mask && (r.priority == w.base || r.priority == w.base + 1);
    if !live.iter().any(ours) {
        return None;
    }
    let ends = live.iter().filter_map(|r| end_of(r, w, mask));
    let sizes = ends.filter_map(|e| Layout::ending_at(w.base, e));
    let most = sizes.map(|l| l.capacity).max()?;
    (most > w.capacity).then_some(most)
}

/// The END a rule of the block laid out as `w` (entry mask `mask`) refers
/// to: the target of the entry or of a bank's exit, or END itself (its
/// `nop`).
fn end_of(r: &IpRule, w: Layout, mask: u32) -> Option<u32> {
    let exit = r.mask == 0 && r.priority != w.selector();
    let entry = r.priority == w.base && r.mask == mask && r.mark == 0 && !r.invert;
    match r.action {
        RuleAction::Goto(t) if exit || entry => Some(t),
        RuleAction::Nop if r.mask == 0 => Some(r.priority),
        _ => None,
    }
}

/// A block's entry rule (`P fwmark 0/MASK goto END`), as `Layout::of`
/// reads it.
fn entry(block: &[IpRule]) -> Option<&IpRule> {
    let l = Layout::of(block)?;
    let is_entry = |r: &&IpRule| r.priority == l.base && r.action == RuleAction::Goto(l.end());
    block.iter().find(is_entry)
}

/// The steps that make room for a larger block beside the live one, all
/// before it is built: END at its new place, then every rule that jumps
/// to a smaller block's END (the live banks' exits, the entry) re-pointed
/// there (each new rule added behind the old one of its priority, which
/// the kernel keeps following until it is deleted), then the smaller
/// ENDs deleted. Afterwards no packet reaches the priorities between the
/// old END and the new one, where the new bank 1 goes, and each packet
/// still walks the live bank. A growth left half done (a failed apply
/// whose rollback failed too) is finished the same way.
fn growth(want: &[IpRule], live: &[IpRule]) -> Vec<RuleStep> {
    let (Some(w), Some(we)) = (Layout::of(want), entry(want)) else {
        return Vec::new();
    };
    let to_smaller = |r: &&IpRule| {
        let end = end_of(r, w, we.mask);
        end.is_some_and(|t| t < w.end() && Layout::ending_at(w.base, t).is_some())
    };
    let (ends, short): (Vec<&IpRule>, Vec<&IpRule>) = live
        .iter()
        .filter(to_smaller)
        .partition(|r| r.action == RuleAction::Nop);
    if short.is_empty() && ends.is_empty() {
        return Vec::new();
    }
    let new_end = want
        .iter()
        .filter(|r| r.priority == w.end() && !live.contains(r));
    let mut steps: Vec<RuleStep> = new_end.cloned().map(RuleStep::Add).collect();
    for r in short {
        let again = IpRule {
            action: RuleAction::Goto(w.end()),
            ..r.clone()
        };
        if !live.contains(&again) {
            steps.push(RuleStep::Add(again));
        }
        steps.push(RuleStep::Remove(r.clone()));
    }
    steps.extend(ends.into_iter().cloned().map(RuleStep::Remove));
    steps
}

/// `live` after `steps`, as the kernel orders it (a new rule behind the
/// others of its priority).
fn stepped(live: &[IpRule], steps: &[RuleStep]) -> Vec<IpRule> {
    let mut out = live.to_vec();
    for s in steps {
        match s {
            RuleStep::Add(r) => {
                let at = out.partition_point(|x| x.priority <= r.priority);
                out.insert(at, r.clone());
            }
            RuleStep::Remove(r) => {
                if let Some(i) = out.iter().position(|x| x == r) {
                    out.remove(i);
                }
            }
        }
    }
    out
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

/// One family: room for a larger block first ([`growth`]), then the
/// move between banks ([`bank_changes`]).
fn family_changes(want: &[IpRule], live: &[IpRule]) -> (Vec<RuleStep>, Vec<IpRule>) {
    let want = kept_size(want, live);
    let mut steps = growth(&want, live);
    let (rest, after) = bank_changes(&want, &stepped(live, &steps));
    steps.extend(rest);
    (steps, after)
}

/// Left-overs in the bank to build go first, then the adds, then the
/// switch away from bank 1; the rest after the table's load.
fn bank_changes(want: &[IpRule], live: &[IpRule]) -> (Vec<RuleStep>, Vec<IpRule>) {
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
