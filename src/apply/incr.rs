//! An incremental table update: the difference between the batch connroute
//! last loaded and the plan's, as one nft transaction that touches only
//! what changed. New counters, sets and chains come first; then each
//! chain's rules are edited by handle (a changed rule is inserted before
//! the old one, which is deleted; a removed one deleted; an added one
//! inserted before the next unchanged rule); then removed chains are
//! flushed and deleted, and removed sets and counters deleted, once no rule
//! refers to them. The table and unchanged base chains are never deleted,
//! so no hook is unregistered. The fingerprint comments are refreshed only
//! when the update destroys something anyway: an add-only batch makes nft
//! wait for no RCU grace period, and keeps the older fingerprint (the run
//! state's digest says what the table holds). No `replace rule` is
//! ever sent: nft before 1.1.0 aborts on one whose rule holds an anonymous
//! interval set (prefixes, ranges). Any shape this does not know gives
//! `None`: the caller replaces the whole table instead.

use crate::plan::Commands;
use std::fmt;

#[path = "incr_align.rs"]
mod align;
pub use align::align;
#[path = "incr_shape.rs"]
mod shape;
pub use shape::Shape;
use shape::{CHAINS, COUNTERS, Rule, SETS, set_parts};

/// How many objects of each kind the update touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Rules added (inserted or appended).
    pub rules_added: usize,
    /// Rules replaced (new one inserted before, old one deleted).
    pub rules_replaced: usize,
    /// Rules deleted (not counting those of deleted chains).
    pub rules_removed: usize,
    /// Chains added.
    pub chains_added: usize,
    /// Chains deleted.
    pub chains_removed: usize,
    /// Named counters added.
    pub counters_added: usize,
    /// Named counters deleted.
    pub counters_removed: usize,
    /// Named sets added.
    pub sets_added: usize,
    /// Named sets whose elements were replaced.
    pub sets_changed: usize,
    /// Named sets deleted.
    pub sets_removed: usize,
}

impl Touched {
    /// True when nothing is deleted or replaced and a rule is added: nft
    /// then waits for no RCU grace period, the update leaves the
    /// fingerprint rules as they are, and its commit shows in the rule
    /// counts (an update adding only named objects would not).
    pub fn add_only(&self) -> bool {
        self.rules_added > 0
            && self.rules_replaced
                + self.rules_removed
                + self.chains_removed
                + self.counters_removed
                + self.sets_changed
                + self.sets_removed
                == 0
    }

    /// Kernel objects touched in all.
    pub fn objects(&self) -> usize {
        self.rules_added
            + self.rules_replaced
            + self.rules_removed
            + self.chains_added
            + self.chains_removed
            + self.counters_added
            + self.counters_removed
            + self.sets_added
            + self.sets_changed
            + self.sets_removed
    }
}

impl fmt::Display for Touched {
    /// `2 rules added, 1 counter added`, or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.rules_added, "rule", "added"),
            (self.rules_replaced, "rule", "replaced"),
            (self.rules_removed, "rule", "removed"),
            (self.chains_added, "chain", "added"),
            (self.chains_removed, "chain", "removed"),
            (self.counters_added, "counter", "added"),
            (self.counters_removed, "counter", "removed"),
            (self.sets_added, "set", "added"),
            (self.sets_changed, "set", "changed"),
            (self.sets_removed, "set", "removed"),
        ];
        let mut first = true;
        for (n, what, how) in parts.into_iter().filter(|p| p.0 > 0) {
            let s = if n == 1 { "" } else { "s" };
            let sep = if first { "" } else { ", " };
            write!(f, "{sep}{n} {what}{s} {how}")?;
            first = false;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// One command of an update: its own text, or a text of the new batch
/// (by position) with `head` in place of its first `skip` bytes. The new
/// batch's texts are not copied: a changed verdict-map rule of 10,000
/// rules is 370 KB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Its own text.
    Own(String),
    /// A text of the new batch, `head` in place of its first `skip` bytes.
    Batch {
        /// Replaces the first `skip` bytes.
        head: String,
        /// Position in the new batch.
        at: u32,
        /// Bytes of the text replaced by `head`.
        skip: u32,
    },
}

/// The incremental batch and what it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The commands in load order; texts of the new batch are referred to
    /// by position (see [`Update::texts`]).
    pub commands: Vec<Cmd>,
    /// What they touch.
    pub touched: Touched,
    /// The ruleset generation the live table was read at (set by the
    /// caller): the update is loaded only while it has not moved.
    pub generation: Option<u32>,
    /// [`rule_counts`] of the new batch: how the live table shows that an
    /// add-only update committed.
    pub counts: u64,
}

impl Update {
    /// The batch as nft reads it: `{"nftables":[…]}`; `next`: the new
    /// batch the update was made for.
    pub fn to_json<S: Commands + ?Sized>(&self, next: &S) -> Vec<u8> {
        self.pieces(next).concat()
    }

    /// [`Update::to_json`] as pieces to write in order (no copy).
    pub fn pieces<'a, S: Commands + ?Sized>(&'a self, next: &'a S) -> Vec<&'a [u8]> {
        let mut out = vec![&b"{\"nftables\":["[..]];
        for (i, c) in self.commands.iter().enumerate() {
            if i > 0 {
                out.push(b",");
            }
            match c {
                Cmd::Own(t) => out.push(t.as_bytes()),
                Cmd::Batch { head, at, skip } => {
                    let text = next.text(*at as usize).as_bytes();
                    out.extend([head.as_bytes(), &text[*skip as usize..]]);
                }
            }
        }
        out.push(b"]}");
        out
    }

    /// Each command's text.
    pub fn texts<S: Commands + ?Sized>(&self, next: &S) -> Vec<String> {
        let text = |c: &Cmd| match c {
            Cmd::Own(t) => t.clone(),
            Cmd::Batch { head, at, skip } => {
                head.clone() + &next.text(*at as usize)[*skip as usize..]
            }
        };
        self.commands.iter().map(text).collect()
    }
}

const TABLE: &str = crate::plan::TABLE;

fn named(op: &str, kind: &str, n: &str) -> Cmd {
    Cmd::Own(format!(
        "{{\"{op}\":{{\"{kind}\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"name\":\"{n}\"}}}}}}"
    ))
}

/// The new batch's text at `at`, unchanged.
fn as_is(at: u32) -> Cmd {
    Cmd::Batch {
        head: String::new(),
        at,
        skip: 0,
    }
}

/// `{"OP":{"rule":{…,"chain":"C","handle":H,…}}}` from the added rule at
/// `at` of the new batch.
fn with_handle(op: &str, at: u32, chain: &str, handle: u64) -> Cmd {
    let h =
        "{\"add\":{\"rule\":{\"family\":\"inet\",\"table\":\"\",\"chain\":\"".len() + TABLE.len();
    Cmd::Batch {
        head: format!(
            "{{\"{op}\":{{\"rule\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"chain\":\"{chain}\",\"handle\":{handle}"
        ),
        at,
        skip: (h + chain.len() + 1) as u32,
    }
}

fn delete_rule(chain: &str, handle: u64) -> Cmd {
    Cmd::Own(format!(
        "{{\"delete\":{{\"rule\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"chain\":\"{chain}\",\"handle\":{handle}}}}}}}"
    ))
}

/// The batch that turns the table loaded from `prev` into `next`'s, given
/// the live rules' `(chain, handle)` in the kernel's order (which must
/// match `prev` rule for rule). `None` when it cannot be done safely.
pub fn diff<A: Commands + ?Sized, B: Commands + ?Sized>(
    prev: &A,
    next: &B,
    live: &[(String, u64)],
) -> Option<Update> {
    diff_shapes(&Shape::of(prev)?, next, live.to_vec())
}

/// [`diff`] from the shape of the previous batch (see [`Shape`]: read from
/// its record without holding its texts); `live` is freed once its
/// handles are taken, before the new batch's shape is made.
pub fn diff_shapes<B: Commands + ?Sized>(
    p: &Shape,
    next: &B,
    live: Vec<(String, u64)>,
) -> Option<Update> {
    let handles = handles(p, &live)?;
    drop(live);
    let n = Shape::of(next)?;
    let b = Both { p, n: &n, next };
    let u = build(&b, &handles, false)?;
    if u.touched.add_only() {
        return Some(u);
    }
    // Its commands hold the changed rules' texts: freed before the next.
    drop(u);
    build(&b, &handles, true)
}

/// The two shapes and the new batch's texts.
struct Both<'a, 'p, 'n, B: ?Sized> {
    p: &'a Shape<'p>,
    n: &'a Shape<'n>,
    next: &'a B,
}

impl<B: Commands + ?Sized> Both<'_, '_, '_, B> {
    fn text(&self, at: u32) -> &str {
        self.next.text(at as usize)
    }
}

/// The update from `b.p` (live `handles`) to `b.n`; `refresh`: kept rules
/// whose fingerprint changed are replaced too.
fn build<B: Commands + ?Sized>(
    b: &Both<'_, '_, '_, B>,
    handles: &[u64],
    refresh: bool,
) -> Option<Update> {
    let mut u = Update {
        commands: Vec::new(),
        touched: Touched::default(),
        generation: None,
        counts: rule_counts(b.n),
    };
    added(b, &mut u)?;
    for (i, e) in b.n.named(CHAINS).iter().enumerate() {
        let chain = b.n.name(e);
        let (old, hs) = match b.p.pos(CHAINS, chain) {
            Some(i) => (b.p.rules(i), &handles[b.p.start(i)..b.p.start(i + 1)]),
            None => (&[][..], &[][..]),
        };
        edit(chain, (old, b.n.rules(i)), hs, refresh, &mut u);
    }
    removed(b.p, b.n, &mut u);
    Some(u)
}

/// One chain's rule count in a [`rule_counts`] sum.
fn count_sum(chain: &str, n: usize) -> u64 {
    let h = chain.bytes().chain((n as u64).to_le_bytes());
    h.fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A sum of the rules per chain (chains without rules left out, in any
/// order) of the table a full batch loads: what the live table shows once
/// an add-only update of it committed ([`live_counts`] of it), from the
/// batch's shape. A sum, not a map: 10,000 chain names would take 700 KB.
pub fn rule_counts(s: &Shape) -> u64 {
    let chains = s.named(CHAINS).iter().enumerate();
    let counts = chains.filter(|(i, _)| !s.rules(*i).is_empty());
    counts.fold(0u64, |sum, (i, e)| {
        sum.wrapping_add(count_sum(s.name(e), s.rules(i).len()))
    })
}

/// [`rule_counts`]' sum for a live table's `(chain, handle)` list (dumped
/// chain by chain: a chain in two runs does not match).
pub fn live_counts(live: &[(String, u64)]) -> u64 {
    let runs = live.chunk_by(|a, b| a.0 == b.0);
    runs.fold(0u64, |sum, r| sum.wrapping_add(count_sum(&r[0].0, r.len())))
}

/// The live rules' handles in `p`'s chain order (those of the chain at
/// position `i` at `p.start(i)..p.start(i + 1)`): the kernel dumps them
/// chain by chain, and each chain must hold as many rules as `p` says.
fn handles(p: &Shape, live: &[(String, u64)]) -> Option<Vec<u64>> {
    let chains = p.named(CHAINS).len();
    let mut out = vec![0; p.rule_count()];
    let mut filled = vec![0u32; chains];
    let mut last = None;
    for (c, h) in live {
        let i = p.pos(CHAINS, c)?;
        let n = filled[i] as usize;
        if last != Some(i) && n > 0 || n >= p.rules(i).len() {
            return None;
        }
        last = Some(i);
        out[p.start(i) + n] = *h;
        filled[i] += 1;
    }
    let same = (0..chains).all(|i| filled[i] as usize == p.rules(i).len());
    same.then_some(out)
}

/// New counters, sets and chains; changed sets' elements.
fn added<B: Commands + ?Sized>(b: &Both<'_, '_, '_, B>, u: &mut Update) -> Option<()> {
    let (p, n) = (b.p, b.n);
    let t = &mut u.touched;
    for e in n.named(COUNTERS) {
        if p.pos(COUNTERS, n.name(e)).is_none() {
            u.commands.push(as_is(e.at));
            t.counters_added += 1;
        }
    }
    for e in n.named(SETS) {
        let name = n.name(e);
        match p.get(SETS, name) {
            None => {
                u.commands.push(as_is(e.at));
                t.sets_added += 1;
            }
            Some(old) if old.full != e.full => {
                if !(old.split && e.split) || p.decl(name) != n.decl(name) {
                    return None;
                }
                let (_, elems) = set_parts(b.text(e.at))?;
                u.commands.push(named("flush", "set", name));
                let add = format!(
                    "{{\"add\":{{\"element\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"name\":\"{name}\""
                );
                u.commands
                    .push(Cmd::Own(format!("{add},\"elem\":{elems}}}}}}}")));
                t.sets_changed += 1;
            }
            Some(_) => {}
        }
    }
    for e in n.named(CHAINS) {
        match p.get(CHAINS, n.name(e)) {
            None => {
                u.commands.push(as_is(e.at));
                t.chains_added += 1;
            }
            Some(old) if old.full != e.full => return None,
            Some(_) => {}
        }
    }
    Some(())
}

/// Removed chains (flushed, then deleted), then removed sets and counters.
fn removed(p: &Shape, n: &Shape, u: &mut Update) {
    let chains = p.gone(CHAINS, n);
    for c in &chains {
        u.commands.push(named("flush", "chain", c));
    }
    for c in &chains {
        u.commands.push(named("delete", "chain", c));
    }
    u.touched.chains_removed = chains.len();
    let sets = p.gone(SETS, n);
    u.commands
        .extend(sets.iter().map(|s| named("delete", "set", s)));
    u.touched.sets_removed = sets.len();
    let counters = p.gone(COUNTERS, n);
    u.commands
        .extend(counters.iter().map(|c| named("delete", "counter", c)));
    u.touched.counters_removed = counters.len();
}

/// `text` in place of the rule `handle` of `chain`: inserted before it,
/// then the old one deleted (never `replace`, see the module comment).
fn replace(out: &mut Vec<Cmd>, at: u32, chain: &str, handle: u64) {
    out.push(with_handle("insert", at, chain, handle));
    out.push(delete_rule(chain, handle));
}

/// One chain's rules from `old` (live `handles`) to `new`: within each gap
/// between kept rules, old rules are replaced by new ones pairwise, the
/// rest deleted or inserted before the next kept rule (appended at the end
/// when none follows). With `refresh`, kept rules whose fingerprint
/// changed are replaced too, so the table carries the plan's fingerprint.
fn edit(chain: &str, rules: (&[Rule], &[Rule]), handles: &[u64], refresh: bool, u: &mut Update) {
    let (old, new) = rules;
    let ko: Vec<u64> = old.iter().map(|r| r.1.key).collect();
    let kn: Vec<u64> = new.iter().map(|r| r.1.key).collect();
    let mut kept = align(&ko, &kn);
    kept.push((old.len(), new.len()));
    let (mut i, mut j) = (0, 0);
    let t = &mut u.touched;
    for (ki, kj) in kept {
        let anchor = handles.get(ki).copied();
        let (olds, news) = (&handles[i..ki], &new[j..kj]);
        let pairs = olds.len().min(news.len());
        for (h, r) in olds.iter().zip(news) {
            replace(&mut u.commands, r.2, chain, *h);
        }
        for h in &olds[pairs..] {
            u.commands.push(delete_rule(chain, *h));
        }
        for r in &news[pairs..] {
            u.commands.push(match anchor {
                Some(h) => with_handle("insert", r.2, chain, h),
                None => as_is(r.2),
            });
        }
        if let Some(h) = anchor.filter(|_| refresh && old[ki].1.full != new[kj].1.full) {
            replace(&mut u.commands, new[kj].2, chain, h);
            t.rules_replaced += 1;
        }
        t.rules_replaced += pairs;
        t.rules_removed += olds.len() - pairs;
        t.rules_added += news.len() - pairs;
        (i, j) = (ki + 1, kj + 1);
    }
}

#[cfg(test)]
#[path = "incr_tests.rs"]
mod tests;
