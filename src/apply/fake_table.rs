//! The fake kernel's nft table: counters, sets with elements, chains with
//! rules that carry handles, changed only by interpreting JSON batches the
//! way nf_tables does for the commands connroute sends (add, insert,
//! replace and delete rules by handle; add, flush and delete chains, sets,
//! counters and the table). A batch is one transaction: applied to a copy,
//! kept only when every command succeeds. References are checked: a rule
//! may only name existing chains, counters and sets, and a referenced
//! object cannot be deleted.

use super::kernel::{TableState, fnv1a};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A chain: its declaration and its rules `(handle, text)` in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeChain {
    /// The chain object without handle.
    pub decl: String,
    /// Its rules: handle and the rule without handle, table and chain.
    pub rules: Vec<(u64, String)>,
}

/// The table's objects; listing order does not matter (a fresh load and
/// an incremental one create them in different orders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeTable {
    /// Named counters.
    pub counters: BTreeSet<String>,
    /// Named sets: declaration and elements.
    pub sets: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Chains by name.
    pub chains: BTreeMap<String, FakeChain>,
    /// The table's flags as nft's JSON gives them (`["dormant"]`); empty
    /// when none. A table re-created (deleted, added) has none.
    pub flags: String,
    next: u64,
}

type Res<T> = Result<T, String>;

fn text(v: &Value, drop: &[&str]) -> String {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in drop {
        m.remove(*k);
    }
    Value::Object(m).to_string()
}

fn field<'a>(o: &'a Value, k: &str) -> Res<&'a str> {
    o.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {k} in {o}"))
}

/// Chains, counters and sets a rule refers to.
fn refs(v: &Value, out: &mut Vec<(&'static str, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("jump" | "goto", Value::Object(t)) => {
                        if let Some(Value::String(s)) = t.get("target") {
                            out.push(("chain", s.clone()));
                        }
                    }
                    ("counter", Value::String(s)) => out.push(("counter", s.clone())),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        Value::String(s) if s.starts_with('@') => out.push(("set", s[1..].to_string())),
        _ => {}
    }
}

/// Whether a rule holds an anonymous interval set (prefixes or ranges):
/// nft 1.0.6 to 1.0.9 abort on a `replace` of such a rule.
fn interval(rule: &str) -> bool {
    rule.split("\"set\":[")
        .skip(1)
        .any(|s| s.contains("\"prefix\"") || s.contains("\"range\""))
}

impl FakeTable {
    /// The fingerprint in the first prerouting rule's comment.
    pub fn fingerprint(&self) -> Option<String> {
        let (_, r) = self.chains.get("prerouting")?.rules.first()?;
        let v: Value = serde_json::from_str(r).ok()?;
        let c = v.get("comment")?.as_str()?;
        crate::plan::fingerprint_in_comment(c).map(str::to_string)
    }

    /// What the kernel's dump gives at ruleset `generation`: digest
    /// without handles, rule handles.
    pub fn state(&self, generation: u32) -> TableState {
        let rules = self
            .chains
            .iter()
            .flat_map(|(c, ch)| ch.rules.iter().map(move |(h, _)| (c.clone(), *h)));
        TableState {
            fingerprint: self.fingerprint(),
            digest: fnv1a(self.listing().as_bytes()),
            rules: rules.collect(),
            generation,
        }
    }

    /// The table without handles, one object a line.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        if !self.flags.is_empty() {
            out += &format!("flags {}\n", self.flags);
        }
        for c in &self.counters {
            out += &format!("counter {c}\n");
        }
        for (n, (d, e)) in &self.sets {
            out += &format!("set {n} {d} {e:?}\n");
        }
        for (n, ch) in &self.chains {
            out += &format!("chain {n} {}\n", ch.decl);
            for (_, r) in &ch.rules {
                out += &format!("  {r}\n");
            }
        }
        out
    }

    /// Drift made by hand: classify flushed and one rule added.
    pub fn tamper(&mut self) {
        self.next += 1;
        let ch = self.chains.entry("classify".into()).or_default();
        ch.rules = vec![(self.next, r#"{"expr":[{"drop":null}]}"#.into())];
    }

    fn referenced(&self, kind: &str, name: &str) -> bool {
        self.chains.values().flat_map(|c| &c.rules).any(|(_, r)| {
            let mut out = Vec::new();
            refs(&serde_json::from_str(r).unwrap_or_default(), &mut out);
            out.iter().any(|(k, n)| *k == kind && n == name)
        })
    }

    fn position(&self, chain: &str, h: &Value) -> Res<usize> {
        let h = h.as_u64().ok_or("handle is not a number")?;
        let ch = &self.chains[chain];
        ch.rules
            .iter()
            .position(|(x, _)| *x == h)
            .ok_or_else(|| format!("no rule with handle {h} in {chain} (ENOENT)"))
    }

    fn rule(&mut self, op: &str, o: &Value) -> Res<()> {
        let chain = field(o, "chain")?;
        if !self.chains.contains_key(chain) {
            return Err(format!("no chain {chain} (ENOENT)"));
        }
        let handle = o.get("handle");
        if op == "delete" {
            let at = self.position(chain, handle.ok_or("delete needs a handle")?)?;
            self.chains.get_mut(chain).unwrap().rules.remove(at);
            return Ok(());
        }
        let mut out = Vec::new();
        refs(o.get("expr").ok_or("rule without expr")?, &mut out);
        for (kind, n) in out {
            let there = match kind {
                "chain" => self.chains.contains_key(&n),
                "counter" => self.counters.contains(&n),
                _ => self.sets.contains_key(&n),
            };
            if !there {
                return Err(format!("rule refers to a missing {kind} {n} (ENOENT)"));
            }
        }
        let body = text(o, &["family", "table", "chain", "handle", "index"]);
        if op == "replace" && interval(&body) {
            return Err("BUG: unhandled op 2 (nft < 1.1.0 aborts: SIGABRT)".into());
        }
        let at = match (op, handle) {
            ("add", None) => self.chains[chain].rules.len(),
            ("insert", None) => 0,
            ("add", Some(h)) => self.position(chain, h)? + 1,
            ("insert", Some(h)) => self.position(chain, h)?,
            ("replace", Some(h)) => {
                let at = self.position(chain, h)?;
                self.chains.get_mut(chain).unwrap().rules[at].1 = body;
                return Ok(());
            }
            _ => return Err(format!("{op} rule not understood")),
        };
        self.next += 1;
        let next = self.next;
        let ch = self.chains.get_mut(chain).unwrap();
        ch.rules.insert(at, (next, body));
        Ok(())
    }

    fn named(&mut self, op: &str, kind: &str, o: &Value) -> Res<()> {
        let n = field(o, "name")?.to_string();
        let busy = |t: &Self, what: &str| {
            if t.referenced(what, &n) {
                Err(format!("{what} {n} is in use (EBUSY)"))
            } else {
                Ok(())
            }
        };
        let missing = || format!("no {kind} {n} (ENOENT)");
        match (op, kind) {
            ("add", "counter") => {
                self.counters.insert(n);
            }
            ("delete", "counter") => {
                busy(self, "counter")?;
                self.counters.remove(&n).then_some(()).ok_or_else(missing)?;
            }
            ("add", "chain") => {
                let decl = text(o, &["handle"]);
                let ch = self.chains.entry(n).or_default();
                if !ch.decl.is_empty() && ch.decl != decl {
                    return Err(format!("chain redefined: {decl}"));
                }
                ch.decl = decl;
            }
            ("flush", "chain") => self.chains.get_mut(&n).ok_or_else(missing)?.rules.clear(),
            ("delete", "chain") => {
                busy(self, "chain")?;
                let ch = self.chains.get(&n).ok_or_else(missing)?;
                if !ch.rules.is_empty() {
                    return Err(format!("chain {n} is not empty (EBUSY)"));
                }
                self.chains.remove(&n);
            }
            ("add", "set") | ("add", "element") => {
                let elems: Vec<String> = match o.get("elem") {
                    Some(Value::Array(a)) => a.iter().map(Value::to_string).collect(),
                    _ => Vec::new(),
                };
                if kind == "set" {
                    let decl = text(o, &["handle", "elem"]);
                    self.sets
                        .entry(n.clone())
                        .or_insert((decl, BTreeSet::new()));
                }
                let set = self.sets.get_mut(&n).ok_or_else(missing)?;
                set.1.extend(elems);
            }
            ("flush", "set") => self.sets.get_mut(&n).ok_or_else(missing)?.1.clear(),
            ("delete", "set") => {
                busy(self, "set")?;
                self.sets.remove(&n).ok_or_else(missing)?;
            }
            _ => return Err(format!("{op} {kind} not understood")),
        }
        Ok(())
    }
}

/// One command against `table` (`None`: absent).
fn command(table: &mut Option<FakeTable>, op: &str, kind: &str, o: &Value) -> Res<()> {
    if kind == "table" {
        match op {
            "add" => {
                let t = table.get_or_insert_with(FakeTable::default);
                if let Some(f) = o.get("flags") {
                    t.flags = f.to_string();
                }
            }
            "delete" => {
                table.take().ok_or("no table (ENOENT)")?;
            }
            "flush" => {
                let t = table.as_mut().ok_or("no table (ENOENT)")?;
                t.chains.values_mut().for_each(|c| c.rules.clear());
            }
            _ => return Err(format!("{op} table not understood")),
        }
        return Ok(());
    }
    if field(o, "table")? != crate::plan::TABLE || field(o, "family")? != "inet" {
        return Err(format!("not connroute's table: {o}"));
    }
    let t = table.as_mut().ok_or("no table (ENOENT)")?;
    match kind {
        "rule" => t.rule(op, o),
        _ => t.named(op, kind, o),
    }
}

/// Runs a JSON batch as one transaction on `table`: the new table, or
/// nft's complaint (nothing changed).
pub fn run(table: &Option<FakeTable>, batch: &[u8]) -> Res<Option<FakeTable>> {
    let v: Value = serde_json::from_slice(batch).map_err(|e| e.to_string())?;
    let cmds = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("not a batch")?;
    let mut t = table.clone();
    for c in cmds {
        let (op, obj) = single(c)?;
        let (kind, o) = single(obj)?;
        command(&mut t, op, kind, o).map_err(|e| format!("{e}: {c}"))?;
    }
    Ok(t)
}

fn single(v: &Value) -> Res<(&str, &Value)> {
    let m: &Map<String, Value> = v.as_object().ok_or("not an object")?;
    match m.iter().next() {
        Some((k, x)) if m.len() == 1 => Ok((k, x)),
        _ => Err(format!("not one command: {v}")),
    }
}
