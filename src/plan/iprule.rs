//! connroute's ip rules: per family, a block of priorities from
//! `rule_priority` whose cost per packet does not grow with the number of
//! gateways.
//!
//! ```text
//! P      fwmark 0/MASK goto END                       # unmarked: 2 rules in all
//! P+1    not fwmark 0/MASK lookup main suppress_prefixlength 0
//! P+2…   binary dispatch on single mark bits:
//!          fwmark B/B goto <first rule of the B-set half>
//!          … the B-clear half, then the B-set half …
//!        leaves: fwmark M/MASK lookup T               # one per gateway
//! END    nop                                          # END = P + 2N + 1
//! ```
//! A pinned packet meets the entry rule, the main-table rule, one rule per
//! level of the dispatch (⌈log2 N⌉ levels for allocated marks) and its
//! leaf. Each leaf checks the whole mark, so a packet whose leaf lookup
//! fails (or a mark no gateway owns) walks on and never hits another
//! gateway's table. Gotos only jump forward, as the kernel requires.

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

/// Priorities one family's block takes for `gateways` gateways (the band
/// `rule_priority` reserves: `2N + 2`).
pub fn band_size(gateways: usize) -> u32 {
    2 * gateways as u32 + 2
}

/// The block for one family: `gateways` are (mark, table) of the active
/// gateways routing it, marks distinct and inside `mask`.
pub fn block(family: Family, base: u32, mask: u32, gateways: &[(u32, u32)]) -> Vec<IpRule> {
    if gateways.is_empty() {
        return Vec::new();
    }
    let end = base + band_size(gateways.len()) - 1;
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
    dispatch(&mut out, family, mask, gateways);
    out.push(rule(end, 0, 0, false, RuleAction::Nop));
    out
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

/// Appends the dispatch over `gws` (at least one) at the next priorities.
fn dispatch(out: &mut Vec<IpRule>, family: Family, mask: u32, gws: &[(u32, u32)]) {
    let next = |out: &Vec<IpRule>| out.last().map_or(0, |r| r.priority + 1);
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
    dispatch(out, family, mask, &clear);
    out[node].action = RuleAction::Goto(next(out));
    dispatch(out, family, mask, &set);
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
    fn every_mark_reaches_its_table_in_log_steps() {
        let mask = 0xff00_0000;
        for n in [1u32, 2, 3, 7, 10, 100, 250] {
            let gws = gateways(n, 24);
            let rules = block(Family::V4, 5000, mask, &gws);
            assert_eq!(rules.len() as u32, band_size(n as usize));
            let last = rules.last().unwrap().priority;
            assert_eq!(last, 5000 + band_size(n as usize) - 1);
            assert!(rules.windows(2).all(|w| w[0].priority + 1 == w[1].priority));
            let depth = (n as f64).log2().ceil() as usize;
            for (mark, table) in &gws {
                let (tables, tested) = walk(&rules, mark | 0x42);
                assert_eq!(tables, [MAIN_TABLE, *table], "n={n} mark={mark:x}");
                assert!(tested <= depth + 3, "n={n}: {tested} rules for {mark:x}");
            }
            // Unmarked packets: the entry rule and the end, nothing looked up.
            assert_eq!(walk(&rules, 0x00ff_ffff), (vec![], 2));
            // A mark no gateway owns reaches no gateway's table.
            assert_eq!(walk(&rules, 0xfe00_0000).0, [MAIN_TABLE]);
        }
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
        let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "ip -6 rule priority 5000 fwmark 0x0/0xff000000 goto 5003 proto 197",
                "ip -6 rule priority 5001 not fwmark 0x0/0xff000000 lookup main suppress_prefixlength 0 proto 197",
                "ip -6 rule priority 5002 fwmark 0x1000000/0xff000000 lookup 5000 proto 197",
                "ip -6 rule priority 5003 nop proto 197",
            ]
        );
    }
}
