//! Named sets for long value lists of a single rule: their elements are
//! plain expressions (a fraction of an anonymous set item's size), stored
//! once and referenced from both classify chains. Only lists of single
//! values (addresses, ports, names, protocols) become named sets: they need
//! no interval flag, and nft drops duplicates. Lists holding prefixes or
//! port ranges stay anonymous sets, which nft merges itself.

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

/// Adds set `name` of `ty` holding `values`.
pub(super) fn add(bd: &mut Builder, name: &str, ty: SetType, values: &[Val]) {
    bd.add(NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_string().into(),
        handle: None,
        set_type: SetTypeValue::Single(ty),
        policy: None,
        flags: None,
        elem: Some(values.iter().map(Val::expr).collect::<Vec<_>>().into()),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    })));
}
