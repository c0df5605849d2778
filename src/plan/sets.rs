//! Named sets for long value lists of a single rule: their elements are
//! plain expressions (a fraction of an anonymous set item's size), stored
//! once and referenced from both classify chains.

use super::classify::Val;
use super::ruleset::{Builder, TABLE};
use crate::nft::build as b;
use nftables::schema::{NfListObject, Set, SetFlag, SetType, SetTypeValue};
use nftables::types::NfFamily;
use std::collections::HashSet;

/// Lists this long or longer become a named set.
pub const NAMED_SET_MIN: usize = 32;

/// Adds set `name` of `ty` holding `values`. A named set refuses
/// overlapping intervals (an anonymous one merges them), so overlapping
/// spans are merged first: nested prefixes keep the outer one, port
/// ranges become their union. Names are only deduplicated.
pub(super) fn add(bd: &mut Builder, name: &str, ty: SetType, values: &[Val]) {
    let numeric = !matches!(ty, SetType::Ifname | SetType::EtherAddr);
    let mut sorted: Vec<&Val> = values.iter().collect();
    sorted.sort_by_key(|v| (v.span.0, std::cmp::Reverse(v.span.1)));
    let mut elem: Vec<b::Expr> = Vec::with_capacity(sorted.len());
    let mut last: Option<(u128, u128)> = None;
    let mut prev_name = None;
    let mut interval = false;
    for v in sorted {
        match last.as_mut() {
            Some(span) if numeric && v.span.0 <= span.1 => {
                if v.span.1 > span.1 {
                    // Only port ranges overlap without nesting.
                    span.1 = v.span.1;
                    interval = true;
                    let merged = b::range(span.0 as u32, span.1 as u32);
                    if let Some(e) = elem.last_mut() {
                        *e = merged;
                    }
                }
            }
            // Equal names hash alike, so sorting made duplicates neighbours.
            Some(span) if !numeric && *span == v.span && prev_name == v.name() => {}
            _ => {
                elem.push(v.expr());
                last = Some(v.span);
                prev_name = v.name();
                interval |= v.span.0 != v.span.1;
            }
        }
    }
    let interval = numeric && interval;
    bd.add(NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_string().into(),
        handle: None,
        set_type: SetTypeValue::Single(ty),
        policy: None,
        flags: interval.then(|| HashSet::from([SetFlag::Interval])),
        elem: Some(elem.into()),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    })));
}
