//! A full batch reduced to what the incremental diff compares, built one
//! command text at a time (from the plan, or line by line from the batch
//! record without holding the record): per named object (counter, set,
//! chain) its name and 64-bit FNV-1a sums of its text, per rule its chain
//! and sums. No text is kept: the plan's are found again by position.
//! For 10,000 rules this is about 1 MB where the texts are 4 MB.

use crate::plan::Commands;

const TABLE: &str = crate::plan::TABLE;

/// Counters, in [`Shape::named`].
pub const COUNTERS: usize = 0;
/// Named sets.
pub const SETS: usize = 1;
/// Chains.
pub const CHAINS: usize = 2;

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3))
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Sums of one command text: `full` of the text, `key` of what decides
/// whether two objects are the same one (a rule without its fingerprint,
/// a set's declaration without its elements, else the whole text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    /// Of what identifies the object.
    pub key: u64,
    /// Of the whole text.
    pub full: u64,
}

/// One named object.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    name: (u32, u32),
    /// The sum of its text.
    pub full: u64,
    /// Its position in its batch.
    pub at: u32,
    /// A set whose text splits into declaration and elements.
    pub split: bool,
}

/// One rule: its chain's position among the chains (the sum of the
/// chain's name until [`Shape::finish`]), sums, position in its batch.
pub type Rule = (u64, Sum, u32);

/// A batch by object (see the module docs).
#[derive(Default)]
pub struct Shape<'a> {
    /// The batch's texts when it is in memory: names are found in them.
    texts: Option<Texts<'a>>,
    /// Else the names, one after the other.
    names: String,
    named: [Vec<Entry>; 3],
    /// Per named set, the sum of its declaration without its elements.
    decl: Vec<u64>,
    /// Positions ordered by the sum of their names (once built).
    index: [Vec<u32>; 3],
    rules: Vec<Rule>,
    starts: Vec<u32>,
    tables: u32,
    count: u32,
}

/// One command of a full batch, as far as the diff needs it.
enum Obj<'a> {
    Table,
    Named(usize, &'a str),
    Rule(&'a str),
}

fn head(kind: &str, key: &str) -> String {
    format!("{{\"add\":{{\"{kind}\":{{\"family\":\"inet\",\"table\":\"{TABLE}\",\"{key}\":\"")
}

/// The JSON string starting `s` up to its closing quote; `None` when it
/// holds an escape (names connroute makes never do).
fn name(s: &str) -> Option<&str> {
    let end = s.find('"')?;
    let n = &s[..end];
    (!n.contains('\\') && !n.is_empty()).then_some(n)
}

fn parse(text: &str) -> Option<Obj<'_>> {
    let rest = text
        .strip_prefix("{\"add\":")
        .or(text.strip_prefix("{\"delete\":"));
    let table = format!("{{\"table\":{{\"family\":\"inet\",\"name\":\"{TABLE}\"}}}}}}");
    if rest == Some(&table) {
        return Some(Obj::Table);
    }
    let kinds = [
        ("counter", "name", COUNTERS),
        ("set", "name", SETS),
        ("chain", "name", CHAINS),
        ("rule", "chain", usize::MAX),
    ];
    let (h, k) = kinds.iter().find_map(|(kind, key, k)| {
        let h = head(kind, key);
        text.starts_with(&h).then_some((h, *k))
    })?;
    let n = name(&text[h.len()..])?;
    Some(match k {
        usize::MAX => Obj::Rule(n),
        k => Obj::Named(k, n),
    })
}

/// A set's declaration without its elements, and the elements' array.
pub fn set_parts(text: &str) -> Option<(String, &str)> {
    let at = text.find(",\"elem\":[")?;
    let elems = text.strip_suffix("}}}")?.get(at + 8..)?;
    elems
        .ends_with(']')
        .then(|| (format!("{}}}}}}}", &text[..at]), elems))
}

const FP_KEY: &str = "\"comment\":\"connroute restore fp=";

/// A rule text's sum with its fingerprint (if any) zeroed: rules that
/// differ only there are the same rule.
fn masked(text: &str) -> u64 {
    let at = text.find(FP_KEY).map(|at| at + FP_KEY.len());
    let hex = |at: usize| {
        let fp = text.get(at..at + 16).unwrap_or("");
        fp.len() == 16
            && fp.bytes().all(|c| c.is_ascii_hexdigit())
            && text[at + 16..].starts_with('"')
    };
    match at {
        Some(at) if hex(at) => {
            let h = fnv(FNV0, &text.as_bytes()[..at]);
            let h = fnv(h, &[b'0'; 16]);
            fnv(h, &text.as_bytes()[at + 16..])
        }
        _ => fnv(FNV0, text.as_bytes()),
    }
}

/// The texts of a batch in memory, by position.
type Texts<'a> = Box<dyn Fn(u32) -> &'a str + 'a>;

impl<'a> Shape<'a> {
    /// The shape of a whole batch in memory (names are not copied: they
    /// are found in `batch`); `None` for one the diff does not know.
    pub fn of<S: Commands + ?Sized>(batch: &'a S) -> Option<Shape<'a>> {
        let mut s = Shape {
            texts: Some(Box::new(|at| batch.text(at as usize))),
            ..Shape::default()
        };
        for i in 0..batch.count() {
            s.push(batch.text(i))?;
        }
        s.finish()
    }

    /// Takes the batch's next command; `None` when the batch is of a shape
    /// the diff does not know (then nothing is diffed).
    pub fn push(&mut self, text: &str) -> Option<()> {
        let full = fnv(FNV0, text.as_bytes());
        match parse(text)? {
            Obj::Table if self.tables == self.count => self.tables += 1,
            Obj::Table => return None,
            Obj::Named(k, n) => {
                let parts = (k == SETS).then(|| set_parts(text)).flatten();
                if k == SETS {
                    let decl = parts.as_ref().map(|(d, _)| fnv(FNV0, d.as_bytes()));
                    self.decl.push(decl.unwrap_or(full));
                }
                // Where the name is: in the text, or copied to `names`.
                let start = match self.texts {
                    Some(_) => n.as_ptr() as usize - text.as_ptr() as usize,
                    None => {
                        self.names.push_str(n);
                        self.names.len() - n.len()
                    }
                };
                let start = u32::try_from(start).ok()?;
                self.named[k].push(Entry {
                    name: (start, n.len() as u32),
                    full,
                    at: self.count,
                    split: parts.is_some(),
                });
            }
            Obj::Rule(c) => {
                let chain = fnv(FNV0, c.as_bytes());
                let key = masked(text);
                self.rules.push((chain, Sum { key, full }, self.count));
            }
        }
        self.count = self.count.checked_add(1)?;
        Some(())
    }

    /// Ends the batch (`add table; delete table; add table; …`).
    pub fn finish(mut self) -> Option<Shape<'a>> {
        if self.tables != 3 {
            return None;
        }
        self.names.shrink_to_fit();
        for k in [COUNTERS, SETS, CHAINS] {
            self.named[k].shrink_to_fit();
            // Sorted in place by the sums, recomputed (no second list).
            let sum = |i: &u32| fnv(FNV0, self.name(&self.named[k][*i as usize]).as_bytes());
            let mut index: Vec<u32> = (0..self.named[k].len() as u32).collect();
            index.sort_unstable_by_key(sum);
            // A repeated name, or two names with one sum: not diffed.
            if index.windows(2).any(|w| sum(&w[0]) == sum(&w[1])) {
                return None;
            }
            self.index[k] = index;
        }
        // Each rule's chain, declared before it; then the rules by chain,
        // each chain's in batch order (sorted in place by chain, position).
        for r in 0..self.rules.len() {
            let (sum, _, at) = self.rules[r];
            let by = |i: &u32| fnv(FNV0, self.name(&self.named[CHAINS][*i as usize]).as_bytes());
            let i = self.index[CHAINS].binary_search_by_key(&sum, by).ok()?;
            let chain = self.index[CHAINS][i];
            (self.named[CHAINS][chain as usize].at < at).then_some(())?;
            self.rules[r].0 = u64::from(chain);
        }
        self.rules.sort_unstable_by_key(|r| (r.0, r.2));
        self.rules.shrink_to_fit();
        let chains = self.named[CHAINS].len() as u64;
        self.starts = Vec::with_capacity(chains as usize + 1);
        let mut at = 0;
        for c in 0..=chains {
            while self.rules.get(at).is_some_and(|r| r.0 < c) {
                at += 1;
            }
            self.starts.push(at as u32);
        }
        Some(self)
    }

    /// The named objects of kind `k`, in batch order.
    pub fn named(&self, k: usize) -> &[Entry] {
        &self.named[k]
    }

    /// An entry's name.
    pub fn name(&self, e: &Entry) -> &str {
        let (at, len) = (e.name.0 as usize, e.name.1 as usize);
        match &self.texts {
            Some(texts) => &texts(e.at)[at..at + len],
            None => &self.names[at..at + len],
        }
    }

    /// Where the object of kind `k` named `n` is in [`Shape::named`].
    pub fn pos(&self, k: usize, n: &str) -> Option<usize> {
        let h = fnv(FNV0, n.as_bytes());
        let sum = |i: &u32| fnv(FNV0, self.name(&self.named[k][*i as usize]).as_bytes());
        let at = self.index[k].binary_search_by_key(&h, sum).ok()?;
        let i = self.index[k][at] as usize;
        (self.name(&self.named[k][i]) == n).then_some(i)
    }

    /// Where the rules of the chain at position `c` start in
    /// [`Shape::rules`] taken in chain order.
    pub fn start(&self, c: usize) -> usize {
        self.starts[c] as usize
    }

    /// Rules in all.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The object of kind `k` named `n`.
    pub fn get(&self, k: usize, n: &str) -> Option<&Entry> {
        self.pos(k, n).map(|i| &self.named[k][i])
    }

    /// The sum of the declaration (without elements) of the set named `n`.
    pub fn decl(&self, n: &str) -> Option<u64> {
        self.pos(SETS, n).map(|i| self.decl[i])
    }

    /// Names of kind `k` here that `other` does not have, in order.
    pub fn gone(&self, k: usize, other: &Shape) -> Vec<&str> {
        let names = self.named[k].iter().map(|e| self.name(e));
        names.filter(|n| other.pos(k, n).is_none()).collect()
    }

    /// The rules of the chain at position `c`, in order.
    pub fn rules(&self, c: usize) -> &[Rule] {
        let (a, b) = (self.starts[c] as usize, self.starts[c + 1] as usize);
        &self.rules[a..b]
    }
}
