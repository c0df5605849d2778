//! Named sets for long value lists of a single rule: their elements are
//! plain expressions (a fraction of an anonymous set item's size), stored
//! once and referenced from both classify chains. Only lists of single
//! values (addresses, ports, names, protocols) become named sets: they need
//! no interval flag, and nft drops duplicates. Lists holding prefixes or
//! port ranges stay anonymous sets, which nft merges itself.

use super::bulk;
use super::classify::Val;
use super::ruleset::{Builder, TABLE};
use nftables::schema::{NfListObject, Set, SetType, SetTypeValue};
use nftables::types::NfFamily;

/// Lists this long or longer become a named set.
pub const NAMED_SET_MIN: usize = 32;

/// True when `values` can be a named set.
pub(super) fn fits(values: &[Val]) -> bool {
    values.len() >= NAMED_SET_MIN && values.iter().all(|v| v.span.0 == v.span.1)
}

/// Adds set `name` of `ty` holding `values` (written as text unless the
/// batch keeps typed objects: src/plan/bulk.rs).
pub(super) fn add(bd: &mut Builder, name: &str, ty: SetType, values: &[Val]) {
    let typed = bulk::typed(bd);
    let elem = match typed {
        true => values.iter().map(Val::expr).collect(),
        false => Vec::new(),
    };
    bd.add(NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_string().into(),
        handle: None,
        set_type: SetTypeValue::Single(ty),
        policy: None,
        flags: None,
        elem: Some(elem.into()),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    })));
    if !typed {
        bulk::fill_last(bd, bulk::EMPTY_ELEM, values.iter().map(Val::expr));
    }
}
