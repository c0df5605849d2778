//! A run's verdict map, the largest single object of a big batch (10,000
//! same-shape rules are one rule with 10,000 elements), added without
//! holding its elements as `nftables` values: each typed element is about
//! 600 bytes, its JSON text about 75. The rule is serialized with an empty
//! map, and the elements' texts, made one at a time, are put into it;
//! the result is byte for byte what serializing the whole rule gives
//! (`vmap_text_is_what_serde_writes` checks it). A batch that keeps its
//! typed objects (for the nft text printer) gets the typed rule.

use super::ruleset::Builder;
use crate::nft::build::{self as b, Expr, Stmt};
use nftables::expr::SetItem;

/// What an empty map's data serializes to; the elements go inside.
const EMPTY_SET: &str = "{\"set\":[]}";

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
    if bd.batch().typed_mut().is_some() {
        let mut items = Vec::with_capacity(map.len);
        items.extend(map.items);
        st.push(b::vmap(map.key, items));
        for chain in chains {
            bd.rule(chain, st.clone(), Some(comment.to_string()));
        }
        return;
    }
    let mut text = Vec::new();
    for (i, item) in map.items.enumerate() {
        if i > 0 {
            text.push(b',');
        }
        // Serializing these types cannot fail (string keys, no floats).
        let _ = serde_json::to_writer(&mut text, &item);
    }
    // The elements' texts are JSON, so UTF-8.
    let text = String::from_utf8(text).unwrap_or_default();
    st.push(b::vmap(map.key, Vec::new()));
    for chain in chains {
        bd.rule(chain, st.clone(), Some(comment.to_string()));
        if let Some(obj) = bd.batch().objects_mut().last_mut() {
            *obj = fill(obj, &text).into_boxed_str();
        }
    }
}

/// The rule text `obj` with `items` put into its (last) empty map.
fn fill(obj: &str, items: &str) -> String {
    let Some(at) = obj.rfind(EMPTY_SET) else {
        return obj.to_string();
    };
    let inside = at + EMPTY_SET.len() - 2;
    let mut out = String::with_capacity(obj.len() + items.len());
    out.push_str(&obj[..inside]);
    out.push_str(items);
    out.push_str(&obj[inside..]);
    out
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
        config rule f\n\toption gateway g\n\tlist in_device 'eth2 eth3'\n\tlist src_mac 52:54:00:00:00:02\n";

    #[test]
    fn vmap_text_is_what_serde_writes() {
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
    fn items_go_into_the_last_empty_map() {
        let obj = r#"{"a":{"set":[]},"b":{"set":[]}}"#;
        assert_eq!(
            super::fill(obj, "1,2"),
            r#"{"a":{"set":[]},"b":{"set":[1,2]}}"#
        );
        assert_eq!(super::fill("{}", "1"), "{}");
    }
}
