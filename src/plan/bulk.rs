//! Objects with long element lists, the largest of a big batch (10,000
//! same-shape rules are one verdict map of 10,000 elements; a
//! 100,000-address list is one named set), added without holding their
//! elements as `nftables` values: a typed map element is about 600 bytes,
//! a typed address about 100, their JSON texts 75 and 12. The object is
//! serialized with an empty list, and the elements' texts, made one at a
//! time, are put into it; the result is byte for byte what serializing the
//! whole object gives (`bulk_text_is_what_serde_writes` checks it). A
//! batch that keeps its typed objects (for the nft text printer) gets them
//! typed.

use super::batch::Appender;
use super::ruleset::Builder;
use crate::nft::build::{self as b, Expr, Stmt};
use nftables::expr::SetItem;
use serde::Serialize;
use std::ops::Range;

/// What an empty map's data serializes to; the elements go inside.
const EMPTY_SET: &str = "{\"set\":[]}";
/// What a named set's empty element list serializes to.
pub(super) const EMPTY_ELEM: &str = "\"elem\":[]";

/// True when the batch keeps typed objects: lists must be made typed.
pub(super) fn typed(bd: &mut Builder) -> bool {
    bd.batch().typed_mut().is_some()
}

/// Writes the JSON texts of `items`, comma-separated, made one at a time
/// in a scratch buffer: serde_json serializes into a `Vec<u8>` as it does
/// everywhere else (into the [`Appender`] itself it would be a second
/// copy of every serializer, 32 KB of the mipsel binary).
fn write_texts<T: Serialize>(out: &mut Appender<'_>, items: impl Iterator<Item = T>) {
    let mut text = Vec::new();
    for (i, item) in items.enumerate() {
        text.clear();
        if i > 0 {
            text.push(b',');
        }
        // Serializing these types cannot fail (string keys, no floats).
        let _ = serde_json::to_writer(&mut text, &item);
        out.extend(&text);
    }
}

/// Where items go in `obj`'s last `empty` list.
fn inside(obj: &str, empty: &str) -> Option<usize> {
    let at = obj.rfind(empty)?;
    Some(at + empty.len() - 1 - usize::from(empty.ends_with('}')))
}

/// Writes `items` into the last `empty` list of the batch's last object;
/// returns where their text is in it.
pub(super) fn fill_last<T: Serialize>(
    bd: &mut Builder,
    empty: &str,
    items: impl Iterator<Item = T>,
) -> Range<usize> {
    let objects = bd.batch().objects_mut();
    match objects.last().and_then(|obj| inside(obj, empty)) {
        Some(at) => objects.insert_in_last(at, |out| write_texts(out, items)),
        None => 0..0,
    }
}

/// Copies the items at `at` of the object before the last into the last
/// object's last `empty` list (a rule added to both classify chains).
fn copy_to_last(bd: &mut Builder, empty: &str, at: Range<usize>) {
    let objects = bd.batch().objects_mut();
    let Some(from) = objects.len().checked_sub(2) else {
        return;
    };
    let (start, end) = (objects.start(from), objects.start(from + 1));
    let items = (start + at.start).min(end)..(start + at.end).min(end);
    if let Some(at) = objects.last().and_then(|obj| inside(obj, empty)) {
        objects.insert_in_last(at, |out| out.copy_within(items));
    }
}

/// `KEY vmap { ITEMS }`, the items made on demand.
pub(super) struct Map<I> {
    /// The map's key expression.
    pub key: Expr,
    /// Its elements.
    pub items: I,
    /// How many `items` yields.
    pub len: usize,
}

/// Adds the rule `STATEMENTS KEY vmap { ITEMS }` with `comment` to each of
/// `chains`, in order.
pub(super) fn add<I>(
    bd: &mut Builder,
    chains: &[&str],
    mut st: Vec<Stmt>,
    map: Map<I>,
    comment: &str,
) where
    I: Iterator<Item = SetItem<'static>>,
{
    if typed(bd) {
        let mut items = Vec::with_capacity(map.len);
        items.extend(map.items);
        st.push(b::vmap(map.key, items));
        for chain in chains {
            bd.rule(chain, st.clone(), Some(comment.to_string()));
        }
        return;
    }
    st.push(b::vmap(map.key, Vec::new()));
    let mut items = Some(map.items);
    let mut at = 0..0;
    for chain in chains {
        bd.rule(chain, st.clone(), Some(comment.to_string()));
        match items.take() {
            Some(items) => at = fill_last(bd, EMPTY_SET, items),
            None => copy_to_last(bd, EMPTY_SET, at.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::facts::Facts;

    /// Runs of both families, for both classify chains, with prefixes,
    /// ranges, names and protocol numbers in the keys.
    const CONFIG: &str = "config gateway g\n\toption gateway 10.0.0.1\n\toption gateway6 fd00::1\n\
        config rule a\n\toption gateway g\n\tlist proto 'tcp udp'\n\tlist dest_port 80\n\
        config rule b\n\toption gateway g\n\tlist proto tcp\n\tlist dest_port '81-90 100'\n\
        config rule c\n\toption gateway g\n\tlist src_ip '10.1.0.0/16'\n\
        config rule d\n\toption gateway g\n\tlist src_ip '10.2.0.7 10.3.0.0/24'\n\
        config rule c6\n\toption gateway g\n\tlist src_ip 'fd00:1::/64'\n\
        config rule d6\n\toption gateway g\n\tlist src_ip 'fd00:2::7'\n\
        config rule e\n\toption gateway g\n\tlist in_device eth1\n\tlist src_mac 52:54:00:00:00:01\n\
        config rule f\n\toption gateway g\n\tlist in_device 'eth2 eth3'\n\tlist src_mac 52:54:00:00:00:02\n\
        config rule s\n\toption gateway g\n\tlist dest_port '2000 2001 2002 2003 2004 2005 2006 2007 \
        2008 2009 2010 2011 2012 2013 2014 2015 2016 2017 2018 2019 2020 2021 2022 2023 2024 2025 \
        2026 2027 2028 2029 2030 2031 2032'\n";

    #[test]
    fn bulk_text_is_what_serde_writes() {
        let config = Config::parse(CONFIG.as_bytes(), "t").unwrap();
        let text = super::super::plan(&config, &Facts::default()).ruleset;
        let typed = super::super::plan_typed(&config, &Facts::default()).ruleset;
        let whole = serde_json::to_vec(&typed.typed().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(text.to_json()).unwrap(),
            String::from_utf8(whole).unwrap()
        );
        // Two restore maps, three runs in both classify chains, one in classify.
        let maps = text
            .objects()
            .iter()
            .filter(|o| o.contains("\"vmap\""))
            .count();
        assert_eq!(maps, 9);
        assert!(
            !text
                .to_json()
                .windows(10)
                .any(|w| w == super::EMPTY_SET.as_bytes())
        );
    }

    #[test]
    fn items_go_into_the_last_empty_list() {
        use crate::plan::Texts;
        let put = |obj: &str, empty, items: &str| {
            let mut t: Texts = ["{\"x\":[]}", obj].into_iter().collect();
            let at = super::inside(obj, empty).unwrap();
            let at = t.insert_in_last(at, |out| {
                std::io::Write::write_all(out, items.as_bytes()).unwrap()
            });
            assert_eq!(&t[1][at.clone()], items);
            assert_eq!(&t[0], "{\"x\":[]}");
            // Copied again from the text before the last.
            let from = t.start(1) + at.start..t.start(1) + at.end;
            t.push(obj);
            t.insert_in_last(super::inside(obj, empty).unwrap(), |out| {
                out.copy_within(from)
            });
            assert_eq!(t[1], t[2]);
            t[1].to_string()
        };
        let obj = r#"{"a":{"set":[]},"b":{"set":[]}}"#;
        let set = super::EMPTY_SET;
        let want = r#"{"a":{"set":[]},"b":{"set":[1,2]}}"#;
        assert_eq!(put(obj, set, "1,2"), want);
        assert_eq!(super::inside("{}", set), None);
        let obj = r#"{"set":{"name":"s","elem":[]}}"#;
        let want = r#"{"set":{"name":"s","elem":["a","b"]}}"#;
        assert_eq!(put(obj, super::EMPTY_ELEM, r#""a","b""#), want);
    }
}
