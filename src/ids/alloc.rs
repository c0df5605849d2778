//! The allocation rule, pure: requests and the previous records in,
//! assignments and the records to persist out.

use super::{Ids, Record};
use crate::config::values::RESERVED_TABLES;
use std::collections::{BTreeMap, BTreeSet};

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

/// A request that cannot be served (marks' errors come before tables').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocError {
    /// Index of the request.
    pub index: usize,
    /// `mark` or `table` when an explicit option is to blame.
    pub option: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// One of the two id spaces. New values are `start + k * step` for
/// `k < count`, lowest first, skipping `reserved`.
struct Space {
    what: &'static str,
    explicit: Vec<Option<u32>>,
    /// The recorded value of each previous record, by record index.
    recorded: Vec<u32>,
    start: u64,
    step: u64,
    count: u64,
    /// Lowest value handed out anew (retired ones included).
    floor: u32,
    /// Bits a value may use.
    mask: u32,
    reserved: &'static [u32],
    hex: bool,
    exhausted: String,
}

impl Space {
    /// Whether `v` may be held at all (recorded values below `floor` too).
    fn usable(&self, v: u32) -> bool {
        v != 0 && v & !self.mask == 0 && !self.reserved.contains(&v)
    }

    /// Whether `v` may be handed out anew.
    fn fresh(&self, v: u32) -> bool {
        v >= self.floor && self.usable(v)
    }

    fn show(&self, v: u32) -> String {
        if self.hex {
            format!("0x{v:08x}")
        } else {
            v.to_string()
        }
    }
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
    let base = limits.table_base;
    let by_name: BTreeMap<String, usize> = previous
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    let marks = Space {
        what: "mark",
        explicit: reqs.iter().map(|r| r.mark).collect(),
        recorded: previous.records.iter().map(|r| r.mark).collect(),
        start: 1 << shift,
        step: 1 << shift,
        count: u64::from(mask >> shift),
        floor: 0,
        mask,
        reserved: &[],
        hex: true,
        exhausted: format!("no free mark left inside mark_mask 0x{mask:08x}"),
    };
    // New tables, retired ones included, come from table_base up; recorded
    // ones below it stay where they are.
    let tables = Space {
        what: "table",
        explicit: reqs.iter().map(|r| r.table).collect(),
        recorded: previous.records.iter().map(|r| r.table).collect(),
        start: u64::from(base),
        step: 1,
        count: (1 << 32) - u64::from(base),
        floor: base,
        mask: u32::MAX,
        reserved: &RESERVED_TABLES,
        hex: false,
        exhausted: format!("no free routing table id left from table_base {base} up to 4294967295"),
    };
    let mut errors = Vec::new();
    let m = assign(reqs, &by_name, &marks, &mut errors);
    let t = assign(reqs, &by_name, &tables, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let out: Vec<Assignment> = m
        .iter()
        .zip(&t)
        .map(|(&mark, &table)| Assignment { mark, table })
        .collect();
    let ids = records(reqs, &out, previous, &by_name);
    Ok((out, ids))
}

/// The values of one space, one per request (0 where an error was pushed):
/// explicit values, then recorded ones, then new ones.
fn assign(
    reqs: &[Request],
    by_name: &BTreeMap<String, usize>,
    sp: &Space,
    errors: &mut Vec<AllocError>,
) -> Vec<u32> {
    let mut out = vec![0u32; reqs.len()];
    let mut taken = BTreeSet::new();
    for (i, v) in sp.explicit.iter().enumerate() {
        let Some(v) = *v else { continue };
        if !taken.insert(v) {
            errors.push(AllocError {
                index: i,
                option: Some(sp.what),
                message: format!("{} {} is used by another gateway", sp.what, sp.show(v)),
            });
        }
        out[i] = v;
    }
    // Recorded values of gateways without an explicit one; an explicit
    // value that takes one is the error (naming both), never the move.
    let mut reserved = vec![None; sp.recorded.len()];
    for (i, r) in reqs.iter().enumerate() {
        let Some(&k) = by_name.get(&r.name) else {
            continue;
        };
        let v = sp.recorded[k];
        if sp.explicit[i].is_some() || !sp.usable(v) {
            continue;
        }
        if !taken.insert(v) {
            let j = out.iter().position(|o| *o == v).unwrap_or(i);
            errors.push(AllocError {
                index: j,
                option: Some(sp.what),
                message: format!(
                    "{} {} is recorded for gateway '{}' in the ids file; choose another {} \
                     (taking it would move that gateway's connections)",
                    sp.what,
                    sp.show(v),
                    r.name,
                    sp.what
                ),
            });
        }
        reserved[k] = Some(i);
        out[i] = v;
    }
    // Values recorded for names that hold nothing now: handed out last.
    let mut spare = BTreeSet::new();
    for (k, &v) in sp.recorded.iter().enumerate() {
        if reserved[k].is_none() && sp.fresh(v) && !taken.contains(&v) {
            spare.insert(v);
        }
    }
    fill(reqs, sp, &mut out, &taken, &spare, errors);
    out
}

/// Gives new values to requests that have neither an explicit nor a
/// recorded one: one pass over a bounded range of candidates (used values
/// plus one per request cannot all be taken), then the spares.
fn fill(
    reqs: &[Request],
    sp: &Space,
    out: &mut [u32],
    taken: &BTreeSet<u32>,
    spare: &BTreeSet<u32>,
    errors: &mut Vec<AllocError>,
) {
    let pending: Vec<usize> = (0..reqs.len())
        .filter(|&i| out[i] == 0 && sp.explicit[i].is_none())
        .collect();
    let bound = (taken.len() + spare.len() + pending.len() + sp.reserved.len()) as u64;
    let mut fresh = (0..sp.count.min(bound + 1))
        .map(|k| (sp.start + k * sp.step) as u32)
        .filter(|c| sp.fresh(*c) && !taken.contains(c) && !spare.contains(c));
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
fn records(
    reqs: &[Request],
    got: &[Assignment],
    previous: &Ids,
    by_name: &BTreeMap<String, usize>,
) -> Ids {
    let mut ids = Ids::default();
    let mut present = vec![false; previous.records.len()];
    let (mut marks, mut tables) = (BTreeSet::new(), BTreeSet::new());
    for (r, a) in reqs.iter().zip(got) {
        if let Some(&k) = by_name.get(&r.name) {
            present[k] = true;
        }
        marks.insert(a.mark);
        tables.insert(a.table);
        ids.records.push(Record {
            name: r.name.clone(),
            mark: a.mark,
            table: a.table,
            retired: false,
        });
    }
    for (k, old) in previous.records.iter().enumerate() {
        if !present[k] && !marks.contains(&old.mark) && !tables.contains(&old.table) {
            ids.records.push(Record {
                retired: true,
                ..old.clone()
            });
        }
    }
    ids
}

/// What to write before an apply that may make `now`'s allocations live
/// (`None`: every gateway of `now` already has a record): `previous` with
/// the records of `now`'s new gateways added. So no gateway is in use
/// without a record, whatever becomes of the run (a failure or a kill
/// after nft's commit). Nothing else changes before success: a recorded
/// gateway's new explicit values, and retiring removed gateways' lines,
/// wait for it. The one record a failed run can drop is a removed
/// gateway's whose mark or table a new gateway took (an explicit value, or
/// values handed out when nothing else was free): a file cannot hold a
/// value twice, and the new gateway may now be live with it. A gateway of
/// `now` keeps its record: a new one that took its value (it was given a
/// new explicit one) is recorded only after success.
pub fn durable(previous: &Ids, now: &Ids) -> Option<Ids> {
    let present = |p: &&Record| now.get(&p.name).is_some();
    let held: Vec<&Record> = previous.records.iter().filter(present).collect();
    let new: Vec<&Record> = now
        .records
        .iter()
        .filter(|r| previous.get(&r.name).is_none())
        .filter(|r| !held.iter().any(|p| p.mark == r.mark || p.table == r.table))
        .collect();
    if new.is_empty() {
        return None;
    }
    let kept = previous
        .records
        .iter()
        .filter(|p| !new.iter().any(|r| r.mark == p.mark || r.table == p.table));
    let records = kept.chain(new.iter().copied()).cloned().collect();
    Some(Ids { records })
}
