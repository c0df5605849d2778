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

use std::collections::BTreeMap;
use std::fmt;

#[path = "incr_align.rs"]
mod align;
pub use align::align;

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

/// The incremental batch and what it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The commands, one compact JSON text each, in load order.
    pub commands: Vec<String>,
    /// What they touch.
    pub touched: Touched,
    /// The ruleset generation the live table was read at (set by the
    /// caller): the update is loaded only while it has not moved.
    pub generation: Option<u32>,
}

impl Update {
    /// The batch as nft reads it: `{"nftables":[…]}`.
    pub fn to_json(&self) -> Vec<u8> {
        self.pieces().concat()
    }

    /// [`Update::to_json`] as pieces to write in order (no copy).
    pub fn pieces(&self) -> Vec<&[u8]> {
        let mut out = vec![&b"{\"nftables\":["[..]];
        for (i, c) in self.commands.iter().enumerate() {
            if i > 0 {
                out.push(b",");
            }
            out.push(c.as_bytes());
        }
        out.push(b"]}");
        out
    }
}

const TABLE: &str = crate::plan::TABLE;

/// One object of a full batch, as far as the diff needs it.
enum Obj<'a> {
    Table,
    Counter(&'a str),
    Set(&'a str),
    Chain(&'a str),
    Rule(&'a str),
}

/// The JSON string starting `s` up to its closing quote; `None` when it
/// holds an escape (names connroute makes never do).
fn name(s: &str) -> Option<&str> {
    let end = s.find('"')?;
    let n = &s[..end];
    (!n.contains('\\') && !n.is_empty()).then_some(n)
}

fn head(kind: &str, key: &str) -> String {
    format!("{{\"add\":{{\"{kind}\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"{key}\":\"")
}

/// Classifies one command of a full batch; `None` for anything else.
fn parse<'a>(text: &'a str, heads: &[(String, u8); 4]) -> Option<Obj<'a>> {
    let table = format!("{{\"table\":{{\"family\":\"inet\",\"name\":\"{TABLE}\"}}}}}}");
    if text
        .strip_prefix("{\"add\":")
        .or(text.strip_prefix("{\"delete\":"))
        == Some(&table)
    {
        return Some(Obj::Table);
    }
    let (h, kind) = heads.iter().find(|(h, _)| text.starts_with(h.as_str()))?;
    let n = name(&text[h.len()..])?;
    Some(match kind {
        0 => Obj::Counter(n),
        1 => Obj::Set(n),
        2 => Obj::Chain(n),
        _ => Obj::Rule(n),
    })
}

/// Named objects of one kind in batch order, indexed by name (a batch of
/// 10,000 rules has as many chains and counters).
#[derive(Default)]
struct Named<'a> {
    list: Vec<(&'a str, &'a str)>,
    index: BTreeMap<String, usize>,
}

impl<'a> Named<'a> {
    /// Adds object `n` (text `t`); `None` when the name repeats.
    fn push(&mut self, n: &'a str, t: &'a str) -> Option<()> {
        let fresh = self.index.insert(n.to_string(), self.list.len()).is_none();
        self.list.push((n, t));
        fresh.then_some(())
    }

    fn pos(&self, n: &str) -> Option<usize> {
        self.index.get(n).copied()
    }

    fn get(&self, n: &str) -> Option<&'a str> {
        self.pos(n).map(|i| self.list[i].1)
    }

    /// Names here that `other` does not have, in order.
    fn gone(&self, other: &Named) -> Vec<&'a str> {
        let names = self.list.iter().map(|(k, _)| *k);
        names.filter(|k| other.pos(k).is_none()).collect()
    }
}

/// A full batch by object: named objects with their texts, and the rules
/// of each chain (by the chain's index).
#[derive(Default)]
struct Shape<'a> {
    counters: Named<'a>,
    sets: Named<'a>,
    chains: Named<'a>,
    rules: Vec<Vec<&'a str>>,
}

/// Splits a full batch (`add table; delete table; add table; …`).
fn shape<'a, S: AsRef<str>>(batch: &'a [S]) -> Option<Shape<'a>> {
    let heads = [
        (head("counter", "name"), 0),
        (head("set", "name"), 1),
        (head("chain", "name"), 2),
        (head("rule", "chain"), 3),
    ];
    let mut s = Shape::default();
    let mut tables = 0;
    for (i, t) in batch.iter().enumerate() {
        let t = t.as_ref();
        match parse(t, &heads)? {
            Obj::Table if i == tables => tables += 1,
            Obj::Table => return None,
            Obj::Counter(n) => s.counters.push(n, t)?,
            Obj::Set(n) => s.sets.push(n, t)?,
            Obj::Chain(n) => {
                s.chains.push(n, t)?;
                s.rules.push(Vec::new());
            }
            Obj::Rule(c) => s.rules[s.chains.pos(c)?].push(t),
        }
    }
    (tables == 3).then_some(s)
}

fn named(op: &str, kind: &str, n: &str) -> String {
    format!(
        "{{\"{op}\":{{\"{kind}\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"name\":\"{n}\"}}}}}}"
    )
}

/// `{"OP":{"rule":{…,"chain":"C","handle":H,…}}}` from an added rule.
fn with_handle(op: &str, text: &str, chain: &str, handle: u64) -> String {
    let h = head("rule", "chain");
    let rest = &text[h.len() + chain.len() + 1..];
    format!(
        "{{\"{op}\":{{\"rule\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"chain\":\"{chain}\",\"handle\":{handle}{rest}"
    )
}

fn delete_rule(chain: &str, handle: u64) -> String {
    format!(
        "{{\"delete\":{{\"rule\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"chain\":\"{chain}\",\"handle\":{handle}}}}}}}"
    )
}

/// A set's declaration without its elements, and the elements' array.
fn set_parts(text: &str) -> Option<(String, &str)> {
    let at = text.find(",\"elem\":[")?;
    let elems = text.strip_suffix("}}}")?.get(at + 8..)?;
    elems
        .ends_with(']')
        .then(|| (format!("{}}}}}}}", &text[..at]), elems))
}

/// The batch that turns the table loaded from `prev` into `next`'s, given
/// the live rules' `(chain, handle)` in the kernel's order (which must
/// match `prev` rule for rule). `None` when it cannot be done safely.
pub fn diff<A: AsRef<str>, B: AsRef<str>>(
    prev: &[A],
    next: &[B],
    live: &[(String, u64)],
) -> Option<Update> {
    let (p, n) = (shape(prev)?, shape(next)?);
    let handles = handles(&p, live)?;
    let u = build(&p, &n, &handles, false)?;
    if u.touched.add_only() {
        return Some(u);
    }
    build(&p, &n, &handles, true)
}

/// The update from `p` (live `handles`) to `n`; `refresh`: kept rules
/// whose fingerprint changed are replaced too.
fn build(p: &Shape, n: &Shape, handles: &[Vec<u64>], refresh: bool) -> Option<Update> {
    let mut u = Update {
        commands: Vec::new(),
        touched: Touched::default(),
        generation: None,
    };
    added(p, n, &mut u)?;
    for (&(chain, _), new) in n.chains.list.iter().zip(&n.rules) {
        let (old, hs) = match p.chains.pos(chain) {
            Some(i) => (&p.rules[i][..], &handles[i][..]),
            None => (&[][..], &[][..]),
        };
        edit(chain, (old, new), hs, refresh, &mut u);
    }
    removed(p, n, &mut u);
    Some(u)
}

/// Rules per chain (chains without rules left out) of the table a full
/// batch loads: what the live table holds once an add-only update of it
/// committed. `None` for a batch of a shape [`diff`] does not know.
pub fn rule_counts<S: AsRef<str>>(batch: &[S]) -> Option<BTreeMap<String, usize>> {
    let s = shape(batch)?;
    let chains = s.chains.list.iter().zip(&s.rules);
    let counts = chains.filter(|(_, r)| !r.is_empty());
    Some(counts.map(|((c, _), r)| (c.to_string(), r.len())).collect())
}

/// Rules per chain of a live table's `(chain, handle)` list.
pub fn live_counts(live: &[(String, u64)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (c, _) in live {
        *out.entry(c.clone()).or_insert(0) += 1;
    }
    out
}

/// The live rules' handles by chain index of `p`: the kernel dumps them
/// chain by chain, and each chain must hold as many rules as `p` says.
fn handles(p: &Shape, live: &[(String, u64)]) -> Option<Vec<Vec<u64>>> {
    let mut out = vec![Vec::new(); p.rules.len()];
    let mut last = None;
    for (c, h) in live {
        let i = p.chains.pos(c)?;
        if last != Some(i) && !out[i].is_empty() {
            return None;
        }
        last = Some(i);
        out[i].push(*h);
    }
    let same = out.iter().zip(&p.rules).all(|(h, r)| h.len() == r.len());
    same.then_some(out)
}

const FP_KEY: &str = "\"comment\":\"connroute restore fp=";

/// A rule's text with its fingerprint (if any) zeroed: rules that differ
/// only there are the same rule.
fn masked(text: &str) -> std::borrow::Cow<'_, str> {
    let at = text.find(FP_KEY).map(|at| at + FP_KEY.len());
    let hex = |at: usize| {
        let fp = text.get(at..at + 16).unwrap_or("");
        fp.len() == 16
            && fp.bytes().all(|c| c.is_ascii_hexdigit())
            && text[at + 16..].starts_with('"')
    };
    match at {
        Some(at) if hex(at) => {
            format!("{}{}{}", &text[..at], "0".repeat(16), &text[at + 16..]).into()
        }
        _ => text.into(),
    }
}

/// New counters, sets and chains; changed sets' elements.
fn added(p: &Shape, n: &Shape, u: &mut Update) -> Option<()> {
    let t = &mut u.touched;
    for (name, text) in &n.counters.list {
        if p.counters.pos(name).is_none() {
            u.commands.push(text.to_string());
            t.counters_added += 1;
        }
    }
    for (name, text) in &n.sets.list {
        match p.sets.get(name) {
            None => {
                u.commands.push(text.to_string());
                t.sets_added += 1;
            }
            Some(old) if old != *text => {
                let ((d0, _), (d1, elems)) = (set_parts(old)?, set_parts(text)?);
                if d0 != d1 {
                    return None;
                }
                u.commands.push(named("flush", "set", name));
                let add = named("add", "element", name);
                let add = add.strip_suffix("}}}")?;
                u.commands.push(format!("{add},\"elem\":{elems}}}}}}}"));
                t.sets_changed += 1;
            }
            Some(_) => {}
        }
    }
    for (name, text) in &n.chains.list {
        match p.chains.get(name) {
            None => {
                u.commands.push(text.to_string());
                t.chains_added += 1;
            }
            Some(old) if old != *text => return None,
            Some(_) => {}
        }
    }
    Some(())
}

/// Removed chains (flushed, then deleted), then removed sets and counters.
fn removed(p: &Shape, n: &Shape, u: &mut Update) {
    let chains = p.chains.gone(&n.chains);
    for c in &chains {
        u.commands.push(named("flush", "chain", c));
    }
    for c in &chains {
        u.commands.push(named("delete", "chain", c));
    }
    u.touched.chains_removed = chains.len();
    let sets = p.sets.gone(&n.sets);
    u.commands
        .extend(sets.iter().map(|s| named("delete", "set", s)));
    u.touched.sets_removed = sets.len();
    let counters = p.counters.gone(&n.counters);
    u.commands
        .extend(counters.iter().map(|c| named("delete", "counter", c)));
    u.touched.counters_removed = counters.len();
}

/// `text` in place of the rule `handle` of `chain`: inserted before it,
/// then the old one deleted (never `replace`, see the module comment).
fn replace(out: &mut Vec<String>, text: &str, chain: &str, handle: u64) {
    out.push(with_handle("insert", text, chain, handle));
    out.push(delete_rule(chain, handle));
}

/// One chain's rules from `old` (live `handles`) to `new`: within each gap
/// between kept rules, old rules are replaced by new ones pairwise, the
/// rest deleted or inserted before the next kept rule (appended at the end
/// when none follows). With `refresh`, kept rules whose fingerprint
/// changed are replaced too, so the table carries the plan's fingerprint.
fn edit(chain: &str, rules: (&[&str], &[&str]), handles: &[u64], refresh: bool, u: &mut Update) {
    let (old, new) = rules;
    let (mo, mn): (Vec<_>, Vec<_>) = (
        old.iter().map(|t| masked(t)).collect(),
        new.iter().map(|t| masked(t)).collect(),
    );
    let mo: Vec<&str> = mo.iter().map(AsRef::as_ref).collect();
    let mn: Vec<&str> = mn.iter().map(AsRef::as_ref).collect();
    let mut kept = align(&mo, &mn);
    kept.push((old.len(), new.len()));
    let (mut i, mut j) = (0, 0);
    let t = &mut u.touched;
    for (ki, kj) in kept {
        let anchor = handles.get(ki).copied();
        let (olds, news) = (&handles[i..ki], &new[j..kj]);
        let pairs = olds.len().min(news.len());
        for (h, text) in olds.iter().zip(news) {
            replace(&mut u.commands, text, chain, *h);
        }
        for h in &olds[pairs..] {
            u.commands.push(delete_rule(chain, *h));
        }
        for text in &news[pairs..] {
            u.commands.push(match anchor {
                Some(h) => with_handle("insert", text, chain, h),
                None => text.to_string(),
            });
        }
        if let Some(h) = anchor.filter(|_| refresh && old[ki] != new[kj]) {
            replace(&mut u.commands, new[kj], chain, h);
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
