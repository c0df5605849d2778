//! The allocation rule, pure: requests and the previous records in,
//! assignments and the records to persist out.

use super::{Ids, Record};
use crate::config::values::RESERVED_TABLES;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One gateway asking for a mark and a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Gateway name.
    pub name: String,
    /// Explicit `mark`, if set.
    pub mark: Option<u32>,
    /// Explicit `table`, if set.
    pub table: Option<u32>,
}

/// Where new values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `globals.mark_mask`: marks are multiples of its lowest bit inside it.
    pub mark_mask: u32,
    /// `globals.table_base`: first table id handed out.
    pub table_base: u32,
}

/// The mark and table a gateway gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// Its mark.
    pub mark: u32,
    /// Its table.
    pub table: u32,
}

/// A request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocError {
    /// Index of the request.
    pub index: usize,
    /// `mark` or `table` when an explicit option is to blame.
    pub option: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// One of the two id spaces.
struct Space<'a> {
    what: &'static str,
    explicit: Vec<Option<u32>>,
    recorded: HashMap<&'a str, u32>,
    usable: &'a dyn Fn(u32) -> bool,
    /// Whether a value may be handed out anew (a retired one included).
    fresh: &'a dyn Fn(u32) -> bool,
    /// Candidates for new values, lowest first; bounded by the caller.
    candidates: &'a dyn Fn(usize) -> Box<dyn Iterator<Item = u32>>,
    show: fn(u32) -> String,
    exhausted: String,
}

fn hex(v: u32) -> String {
    format!("0x{v:08x}")
}

fn dec(v: u32) -> String {
    v.to_string()
}

/// Assigns every request a mark and a table. Explicit values win; a
/// request whose name has a record keeps the recorded value; new ones get
/// the lowest value used by nobody, or else the lowest retired one. An
/// explicit value equal to another current gateway's recorded value is an
/// error naming both, so no existing gateway ever moves.
pub fn allocate(
    reqs: &[Request],
    limits: Limits,
    previous: &Ids,
) -> Result<(Vec<Assignment>, Ids), Vec<AllocError>> {
    let mask = limits.mark_mask;
    let shift = mask.trailing_zeros();
    let top = u64::from(mask >> shift);
    let mark_ok = move |m: u32| m != 0 && m & !mask == 0;
    let mark_candidates = move |n: usize| -> Box<dyn Iterator<Item = u32>> {
        Box::new((1..=top.min(n as u64 + 1)).map(move |k| (k << shift) as u32))
    };
    let base = limits.table_base;
    let table_ok = |t: u32| !RESERVED_TABLES.contains(&t);
    // New tables, retired ones included, come from table_base up; recorded
    // ones below it stay where they are.
    let table_new = move |t: u32| t >= base && table_ok(t);
    let table_candidates = move |n: usize| -> Box<dyn Iterator<Item = u32>> {
        let last = u64::from(base) + n as u64 + RESERVED_TABLES.len() as u64;
        Box::new((u64::from(base)..=last.min(u64::from(u32::MAX))).map(|t| t as u32))
    };
    let record_of = |f: fn(&Record) -> u32| -> HashMap<&str, u32> {
        previous
            .records
            .iter()
            .map(|r| (r.name.as_str(), f(r)))
            .collect()
    };
    let marks = Space {
        what: "mark",
        explicit: reqs.iter().map(|r| r.mark).collect(),
        recorded: record_of(|r| r.mark),
        usable: &mark_ok,
        fresh: &mark_ok,
        candidates: &mark_candidates,
        show: hex,
        exhausted: format!("no free mark left inside mark_mask 0x{mask:08x}"),
    };
    let tables = Space {
        what: "table",
        explicit: reqs.iter().map(|r| r.table).collect(),
        recorded: record_of(|r| r.table),
        usable: &table_ok,
        fresh: &table_new,
        candidates: &table_candidates,
        show: dec,
        exhausted: format!("no free routing table id left from table_base {base} up to 4294967295"),
    };
    let mut errors = Vec::new();
    let m = assign(reqs, &marks, &mut errors);
    let t = assign(reqs, &tables, &mut errors);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.index);
        return Err(errors);
    }
    let out: Vec<Assignment> = m
        .iter()
        .zip(&t)
        .map(|(&mark, &table)| Assignment { mark, table })
        .collect();
    Ok((out.clone(), records(reqs, &out, previous)))
}

/// The values of one space, one per request (0 where an error was pushed):
/// explicit values, then recorded ones, then new ones.
fn assign(reqs: &[Request], sp: &Space, errors: &mut Vec<AllocError>) -> Vec<u32> {
    let mut out = vec![0u32; reqs.len()];
    let mut taken: HashMap<u32, usize> = HashMap::new();
    // Explicit values first; then recorded values of gateways without one.
    for (i, v) in sp.explicit.iter().enumerate() {
        let Some(v) = *v else { continue };
        if taken.insert(v, i).is_some() {
            errors.push(AllocError {
                index: i,
                option: Some(sp.what),
                message: format!("{} {} is used by another gateway", sp.what, (sp.show)(v)),
            });
        }
        out[i] = v;
    }
    for (i, r) in reqs.iter().enumerate() {
        if sp.explicit[i].is_some() {
            continue;
        }
        let Some(&v) = sp
            .recorded
            .get(r.name.as_str())
            .filter(|v| (sp.usable)(**v))
        else {
            continue;
        };
        if let Some(&j) = taken.get(&v) {
            errors.push(AllocError {
                index: j,
                option: Some(sp.what),
                message: format!(
                    "{} {} is recorded for gateway '{}' in the ids file; choose another {} \
                     (taking it would move that gateway's connections)",
                    sp.what,
                    (sp.show)(v),
                    r.name,
                    sp.what
                ),
            });
        }
        taken.insert(v, i);
        out[i] = v;
    }
    fill(reqs, sp, &mut out, &taken, errors);
    out
}

/// Gives new values to requests that have neither an explicit nor a
/// recorded one.
fn fill(
    reqs: &[Request],
    sp: &Space,
    out: &mut [u32],
    taken: &HashMap<u32, usize>,
    errors: &mut Vec<AllocError>,
) {
    // Values recorded for names that hold nothing now: reuse them last.
    let spare: BTreeSet<u32> = sp
        .recorded
        .values()
        .copied()
        .filter(|v| (sp.fresh)(*v) && !taken.contains_key(v))
        .collect();
    // New values come from one pass over the candidates (a bounded range:
    // used values plus one per request cannot all be taken), then spares.
    let pending: Vec<usize> = (0..reqs.len())
        .filter(|&i| out[i] == 0 && sp.explicit[i].is_none())
        .collect();
    let bound = taken.len() + spare.len() + pending.len();
    let mut fresh = (sp.candidates)(bound)
        .filter(|c| (sp.fresh)(*c) && !taken.contains_key(c) && !spare.contains(c));
    let mut spares = spare.iter().copied();
    for i in pending {
        match fresh.next().or_else(|| spares.next()) {
            Some(c) => out[i] = c,
            None => errors.push(AllocError {
                index: i,
                option: None,
                message: sp.exhausted.clone(),
            }),
        }
    }
}

/// The records to persist: every request with what it got, then previous
/// records of names no longer present whose values nobody took.
fn records(reqs: &[Request], got: &[Assignment], previous: &Ids) -> Ids {
    let mut ids = Ids::default();
    for (r, a) in reqs.iter().zip(got) {
        ids.records.push(Record {
            name: r.name.clone(),
            mark: a.mark,
            table: a.table,
            retired: false,
        });
    }
    let names: HashSet<&str> = reqs.iter().map(|r| r.name.as_str()).collect();
    let marks: HashSet<u32> = got.iter().map(|a| a.mark).collect();
    let tables: HashSet<u32> = got.iter().map(|a| a.table).collect();
    for old in &previous.records {
        let gone = !names.contains(old.name.as_str());
        let untouched = !marks.contains(&old.mark) && !tables.contains(&old.table);
        if gone && untouched {
            ids.records.push(Record {
                retired: true,
                ..old.clone()
            });
        }
    }
    ids
}
