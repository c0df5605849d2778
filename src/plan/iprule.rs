//! connroute's ip rules: per family, a block of priorities from
//! `rule_priority` (P) whose cost per packet does not grow with the number
//! of gateways, in one of two banks so that apply can build the next block
//! beside the live one and switch with a single rule.
//!
//! ```text
//! P      fwmark 0/MASK goto END                       # unmarked: 2 rules in all
//! P+1    not fwmark 0/MASK lookup main suppress_prefixlength 0
//! P+2    goto B1                                      # only while bank 1 is live
//! B0=P+3 bank 0 (B1 = B0+2C: bank 1), each: binary dispatch on single mark bits
//!          fwmark B/B goto <first rule of the B-set half>
//!          … the B-clear half, then the B-set half …
//!        leaves: fwmark M/MASK lookup T               # one per gateway
//!        goto END                                     # the bank's exit
//! END    nop                                          # END = P+3+4C
//! ```
//! C, the gateways a bank holds, is the power of two at or above the
//! family's gateway count, at least 8 (see [`Layout`]): the entry's goto
//! skips every priority up to END for unmarked packets, so the block
//! reserves no more than it needs (P … P+35 for up to 8 gateways); the
//! banks grow when the count crosses a power of two, and apply keeps a
//! live block's larger banks when it falls back (`apply::banks`).
//! A pinned packet meets the entry rule, the main-table rule, the
//! selector (bank 1 only), one rule per level of the dispatch (⌈log2 N⌉
//! levels for allocated marks) and its leaf. Each leaf checks the whole
//! mark, so a packet whose leaf lookup fails (or a mark no gateway owns)
//! walks on to its bank's exit and never hits another gateway's table.
//! Gotos only jump forward, as the kernel requires.

use super::{MAIN_TABLE, RTPROT_CONNROUTE};
use crate::config::Family;
use std::fmt;

/// What an ip rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleAction {
    /// `lookup TABLE`, with `suppress_prefixlength 0` when `suppress_default`
    /// (default routes found there are ignored).
    Lookup {
        /// Table looked up.
        table: u32,
        /// `suppress_prefixlength 0`.
        suppress_default: bool,
    },
    /// `goto PRIORITY`: continue at the first rule of that priority.
    Goto(u32),
    /// `nop`: matches and does nothing (the block's end, target of gotos).
    Nop,
}

/// A policy routing rule: `[not] fwmark MARK/MASK ACTION` (no fwmark test
/// when `mask` is 0).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRule {
    /// Address family.
    pub family: Family,
    /// Rule priority.
    pub priority: u32,
    /// fwmark value.
    pub mark: u32,
    /// fwmark mask (0: the rule does not look at the mark).
    pub mask: u32,
    /// `not`: the rule matches when the fwmark test fails.
    pub invert: bool,
    /// What it does.
    pub action: RuleAction,
}

impl fmt::Display for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.family == Family::V6 { "-6 " } else { "" };
        write!(f, "ip {v}rule priority {}", self.priority)?;
        if self.invert {
            f.write_str(" not")?;
        }
        if self.mask != 0 {
            write!(f, " fwmark 0x{:x}/0x{:x}", self.mark, self.mask)?;
        }
        match self.action {
            RuleAction::Lookup {
                table,
                suppress_default,
            } => {
                if table == MAIN_TABLE {
                    f.write_str(" lookup main")?;
                } else {
                    write!(f, " lookup {table}")?;
                }
                if suppress_default {
                    f.write_str(" suppress_prefixlength 0")?;
                }
            }
            RuleAction::Goto(p) => write!(f, " goto {p}")?,
            RuleAction::Nop => f.write_str(" nop")?,
        }
        write!(f, " proto {RTPROT_CONNROUTE}")
    }
}

/// Most gateways one bank holds, whatever `mark_mask` allows: both banks
/// then stay within 4·1023+4 priorities of `rule_priority`.
pub const MAX_BANK: u32 = 1023;

/// Fewest gateways a bank is sized for: up to 8 gateways the block keeps
/// its place (P … P+35).
pub const MIN_BANK: u32 = 8;

/// Where one family's rules sit: fixed by `rule_priority`, `mark_mask` and
/// the power of two the gateway count rounds up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `rule_priority`: the entry rule.
    pub base: u32,
    /// Gateways a bank holds (it takes 2 priorities per gateway).
    pub capacity: u32,
}

impl Layout {
    /// The layout for `rule_priority` `base`, `mask` and `gateways`: a
    /// bank holds the power of two at or above `gateways`, at least
    /// [`MIN_BANK`], at most [`Layout::most`].
    pub fn new(base: u32, mask: u32, gateways: usize) -> Layout {
        let want = (gateways as u32).max(MIN_BANK).next_power_of_two();
        let capacity = want.min(Layout::most(base, mask));
        Layout { base, capacity }
    }

    /// The most gateways a bank from `base` can hold: as many as the mask
    /// has marks, at most [`MAX_BANK`], and fewer when END would reach the
    /// main table's rule (32766).
    pub fn most(base: u32, mask: u32) -> u32 {
        let marks = (1u64 << mask.count_ones()) - 1;
        let fits = u64::from(32762u32.saturating_sub(base) / 4);
        marks.min(u64::from(MAX_BANK)).min(fits) as u32
    }

    /// Reads the layout back from a block: its entry rule is the first
    /// `fwmark 0/MASK goto END`.
    pub fn of(block: &[IpRule]) -> Option<Layout> {
        let entry = block
            .iter()
            .filter(|r| r.mask != 0 && r.mark == 0 && !r.invert)
            .min_by_key(|r| r.priority)?;
        match entry.action {
            RuleAction::Goto(end) if end >= entry.priority + 3 => Some(Layout {
                base: entry.priority,
                capacity: (end - entry.priority - 3) / 4,
            }),
            _ => None,
        }
    }

    /// The layout from `base` whose END is `end`, if there is one (its
    /// capacity a power of two).
    pub fn ending_at(base: u32, end: u32) -> Option<Layout> {
        let capacity = end.checked_sub(base + 3)? / 4;
        let exact = capacity.is_power_of_two() && end == base + 3 + 4 * capacity;
        exact.then_some(Layout { base, capacity })
    }

    /// The selector's priority: `goto B1` while bank 1 is live.
    pub fn selector(&self) -> u32 {
        self.base + 2
    }

    /// First priority of bank `b` (0 or 1).
    pub fn bank(&self, b: usize) -> u32 {
        self.base + 3 + 2 * self.capacity * b as u32
    }

    /// The bank `priority` falls in.
    pub fn bank_of(&self, priority: u32) -> Option<usize> {
        (0..2).find(|&b| (self.bank(b)..self.bank(b) + 2 * self.capacity).contains(&priority))
    }

    /// END: the `nop` every unmarked packet and every bank exit jumps to.
    pub fn end(&self) -> u32 {
        self.base + 3 + 4 * self.capacity
    }

    /// `block` (as [`block`] builds it, in bank 0) moved to bank `b`: the
    /// bank's rules and their gotos shifted, and for bank 1 the selector.
    pub fn in_bank(&self, block: &[IpRule], b: usize) -> Vec<IpRule> {
        let shift = |p: u32| match self.bank_of(p) {
            Some(0) => self.bank(b) + p - self.bank(0),
            _ => p,
        };
        let mut out: Vec<IpRule> = block
            .iter()
            .map(|r| IpRule {
                priority: shift(r.priority),
                action: match r.action {
                    RuleAction::Goto(p) => RuleAction::Goto(shift(p)),
                    a => a,
                },
                ..r.clone()
            })
            .collect();
        if let (1, Some(first)) = (b, block.first()) {
            let at = out.partition_point(|r| r.priority < self.selector());
            out.insert(at, jump(first.family, self.selector(), self.bank(1)));
        }
        out
    }
}

/// `PRIORITY goto TARGET` for every packet (selector, bank exit).
fn jump(family: Family, priority: u32, target: u32) -> IpRule {
    IpRule {
        family,
        priority,
        mark: 0,
        mask: 0,
        invert: false,
        action: RuleAction::Goto(target),
    }
}

/// The block for one family, in bank 0: `gateways` are (mark, table) of
/// the active gateways routing it, marks distinct and inside `mask`, at
/// most [`Layout::most`] of them (the config is refused otherwise).
pub fn block(family: Family, base: u32, mask: u32, gateways: &[(u32, u32)]) -> Vec<IpRule> {
    block_in(
        family,
        Layout::new(base, mask, gateways.len()),
        mask,
        gateways,
    )
}

/// [`block`] laid out for `layout` (a bank at least as large as
/// `gateways`): the same rules, only the exit's and END's priorities move
/// with the capacity.
pub fn block_in(family: Family, layout: Layout, mask: u32, gateways: &[(u32, u32)]) -> Vec<IpRule> {
    if gateways.is_empty() {
        return Vec::new();
    }
    debug_assert!(gateways.len() as u32 <= layout.capacity);
    let (base, end) = (layout.base, layout.end());
    let rule = |priority, mark, mask, invert, action| IpRule {
        family,
        priority,
        mark,
        mask,
        invert,
        action,
    };
    let mut out = vec![
        rule(base, 0, mask, false, RuleAction::Goto(end)),
        rule(
            base + 1,
            0,
            mask,
            true,
            RuleAction::Lookup {
                table: MAIN_TABLE,
                suppress_default: true,
            },
        ),
    ];
    let first = out.len();
    dispatch(&mut out, family, mask, gateways, layout.bank(0));
    debug_assert_eq!(out.len() - first, 2 * gateways.len() - 1);
    let exit = out.last().map_or(0, |r| r.priority + 1);
    out.push(jump(family, exit, end));
    out.push(rule(end, 0, 0, false, RuleAction::Nop));
    out
}

/// `block` (as [`block`] builds it, in bank 0) laid out for banks of
/// `capacity` gateways (at least its own): the banks of a live block grow
/// but do not shrink (`apply::banks`), so a gateway removed never moves
/// the others' rules.
pub fn with_capacity(block: &[IpRule], capacity: u32) -> Vec<IpRule> {
    let (Some(layout), Some(entry)) = (Layout::of(block), block.first()) else {
        return block.to_vec();
    };
    if capacity <= layout.capacity {
        return block.to_vec();
    }
    let leaves: Vec<(u32, u32)> = block
        .iter()
        .filter(|r| r.mask == entry.mask && r.mark != 0 && !r.invert)
        .filter_map(|r| match r.action {
            RuleAction::Lookup {
                table,
                suppress_default: false,
            } => Some((r.mark, table)),
            _ => None,
        })
        .collect();
    let layout = Layout { capacity, ..layout };
    block_in(entry.family, layout, entry.mask, &leaves)
}

/// The mark bit that splits `gws` most evenly (the highest on a tie).
fn split_bit(mask: u32, gws: &[(u32, u32)]) -> u32 {
    let half = gws.len() / 2;
    (0..32)
        .rev()
        .map(|i| 1u32 << i)
        .filter(|b| mask & b != 0)
        .min_by_key(|b| {
            let ones = gws.iter().filter(|(m, _)| m & b != 0).count();
            // Bits that do not split at all are never picked.
            let useless = ones == 0 || ones == gws.len();
            (useless, ones.abs_diff(half))
        })
        .unwrap_or(0)
}

/// Appends the dispatch over `gws` (at least one) from priority `first`.
fn dispatch(out: &mut Vec<IpRule>, family: Family, mask: u32, gws: &[(u32, u32)], first: u32) {
    let start = out.len();
    let next = |out: &Vec<IpRule>| first + (out.len() - start) as u32;
    if let [(mark, table)] = gws {
        out.push(IpRule {
            family,
            priority: next(out),
            mark: *mark,
            mask,
            invert: false,
            action: RuleAction::Lookup {
                table: *table,
                suppress_default: false,
            },
        });
        return;
    }
    let bit = split_bit(mask, gws);
    let (clear, set): (Vec<_>, Vec<_>) = gws.iter().partition(|(m, _)| m & bit == 0);
    let node = out.len();
    out.push(IpRule {
        family,
        priority: next(out),
        mark: bit,
        mask: bit,
        invert: false,
        action: RuleAction::Nop,
    });
    let at = next(out);
    dispatch(out, family, mask, &clear, at);
    let at = next(out);
    out[node].action = RuleAction::Goto(at);
    dispatch(out, family, mask, &set, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `rules` as the kernel does for a packet with `mark`: the
    /// tables looked up in order and how many rules were tested.
    pub(crate) fn walk(rules: &[IpRule], mark: u32) -> (Vec<u32>, usize) {
        let mut tables = Vec::new();
        let mut tested = 0;
        let mut i = 0;
        while i < rules.len() {
            let r = &rules[i];
            tested += 1;
            let hit = ((mark ^ r.mark) & r.mask == 0) != r.invert;
            i += 1;
            if !hit {
                continue;
            }
            match r.action {
                RuleAction::Goto(p) => {
                    assert!(p > r.priority, "backward goto in {r}");
                    i = rules
                        .iter()
                        .position(|x| x.priority == p)
                        .expect("goto target");
                }
                RuleAction::Nop => {}
                RuleAction::Lookup { table, .. } => {
                    tables.push(table);
                    if table != MAIN_TABLE {
                        return (tables, tested);
                    }
                }
            }
        }
        (tables, tested)
    }

    fn gateways(n: u32, shift: u32) -> Vec<(u32, u32)> {
        (1..=n).map(|i| (i << shift, 5000 + i)).collect()
    }

    #[test]
    fn every_mark_reaches_its_table_in_log_steps_in_either_bank() {
        let mask = 0xff00_0000;
        for n in [1u32, 2, 3, 7, 10, 100, 250] {
            let layout = Layout::new(5000, mask, n as usize);
            let gws = gateways(n, 24);
            let rules = block(Family::V4, 5000, mask, &gws);
            assert_eq!(rules.len() as u32, 2 * n + 3);
            assert_eq!(rules.last().unwrap().priority, layout.end());
            let bank: Vec<u32> = rules[2..rules.len() - 1]
                .iter()
                .map(|r| r.priority)
                .collect();
            assert_eq!(bank, (5003..5003 + 2 * n).collect::<Vec<_>>());
            let depth = (n as f64).log2().ceil() as usize;
            for (b, rules) in [(0, rules.clone()), (1, layout.in_bank(&rules, 1))] {
                assert!(rules.windows(2).all(|w| w[0].priority < w[1].priority));
                for (mark, table) in &gws {
                    let (tables, tested) = walk(&rules, mark | 0x42);
                    assert_eq!(tables, [MAIN_TABLE, *table], "n={n} mark={mark:x}");
                    assert!(
                        tested <= depth + 3 + b,
                        "n={n}: {tested} rules for {mark:x}"
                    );
                }
                // Unmarked packets: the entry rule and the end, nothing looked up.
                assert_eq!(walk(&rules, 0x00ff_ffff), (vec![], 2));
                // A mark no gateway owns reaches no gateway's table.
                assert_eq!(walk(&rules, 0xff00_0000).0, [MAIN_TABLE]);
            }
        }
    }

    #[test]
    fn the_banks_fit_the_mask_and_the_main_rule() {
        assert_eq!(Layout::most(5000, 0x3f00), 63);
        assert_eq!(Layout::most(5000, 0xffff_0000), MAX_BANK);
        assert_eq!(Layout::most(5000, u32::MAX), MAX_BANK);
        assert_eq!(Layout::most(31999, 0xff00_0000), 190);
        let top = Layout::new(31999, 0xff00_0000, 190);
        assert_eq!(top.capacity, 190);
        assert!(top.end() < 32766);
        assert_eq!(Layout::new(5000, 0xffff_0000, 2000).capacity, MAX_BANK);
        assert_eq!(Layout::new(5000, 0x700, 3).capacity, 7);
        let rules = block(Family::V6, 100, 0xf0, &gateways(3, 4));
        assert_eq!(Layout::of(&rules), Some(Layout::new(100, 0xf0, 3)));
        assert_eq!(Layout::new(100, 0xf0, 3).bank_of(103 + 15), Some(0));
        assert_eq!(Layout::new(100, 0xf0, 3).bank_of(103 + 16), Some(1));
        assert_eq!(Layout::new(100, 0xf0, 3).bank_of(103 + 32), None);
        assert_eq!(Layout::new(100, 0xf0, 3).bank_of(102), None);
    }

    /// The entry's goto skips P+1 … END-1 for every unmarked packet, so
    /// the block reserves only what its gateway count needs: other
    /// owners' rules above it (Tailscale's at 5210 … 5270 with P = 5000)
    /// stay reachable. Before: END was P+1023 for the default mask.
    #[test]
    fn the_block_reserves_what_its_gateways_need() {
        let mask = 0xff00_0000;
        for (n, end) in [
            (1, 5035),
            (8, 5035),
            (9, 5067),
            (16, 5067),
            (17, 5131),
            (250, 6023),
        ] {
            let rules = block(Family::V4, 5000, mask, &gateways(n, 24));
            assert_eq!(rules.last().unwrap().priority, end, "{n} gateways");
            assert_eq!(Layout::of(&rules).unwrap().end(), end);
        }
        let end = Layout::new(5000, mask, 1).end();
        assert!(end < 5210, "END {end} reaches Tailscale's 5210");
    }

    #[test]
    fn scattered_explicit_marks_still_dispatch() {
        let gws = [(0x1, 7), (0x80, 8), (0x8000_0000, 9), (0x8000_0001, 10)];
        let rules = block(Family::V6, 100, u32::MAX, &gws);
        for (mark, table) in gws {
            assert_eq!(walk(&rules, mark).0, [MAIN_TABLE, table]);
        }
    }

    #[test]
    fn display_is_ip_rule_syntax() {
        let rules = block(Family::V6, 5000, 0xff00_0000, &[(0x100_0000, 5000)]);
        let mut text: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "ip -6 rule priority 5000 fwmark 0x0/0xff000000 goto 5035 proto 197",
                "ip -6 rule priority 5001 not fwmark 0x0/0xff000000 lookup main suppress_prefixlength 0 proto 197",
                "ip -6 rule priority 5003 fwmark 0x1000000/0xff000000 lookup 5000 proto 197",
                "ip -6 rule priority 5004 goto 5035 proto 197",
                "ip -6 rule priority 5035 nop proto 197",
            ]
        );
        let moved = Layout::new(5000, 0xff00_0000, 1).in_bank(&rules, 1);
        text = moved.iter().map(ToString::to_string).collect();
        assert_eq!(
            text[2..5],
            [
                "ip -6 rule priority 5002 goto 5019 proto 197",
                "ip -6 rule priority 5019 fwmark 0x1000000/0xff000000 lookup 5000 proto 197",
                "ip -6 rule priority 5020 goto 5035 proto 197",
            ]
        );
    }
}
