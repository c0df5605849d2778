//! `config globals`: at most one section of settings for the whole file.

use super::fields::{Context, Loader, Val};
use super::model::Globals;
use crate::uci::Document;

/// Loads the globals section, or the defaults when there is none.
pub(super) fn load(l: &mut Loader, doc: &Document) -> Globals {
    let d = Globals::default();
    let mut globals = d.clone();
    for (n, s) in doc.of_type("globals").enumerate() {
        if n > 0 {
            l.error(
                s.line,
                s,
                None,
                "only one globals section is allowed".into(),
            );
            continue;
        }
        let f = l.fields(
            doc,
            s,
            &Context {
                mark_mask: d.mark_mask,
            },
        );
        globals = Globals {
            enabled: f.flag("enabled").unwrap_or(d.enabled),
            mark_mask: f.num("mark_mask").unwrap_or(d.mark_mask),
            rule_priority: f.num("rule_priority").unwrap_or(d.rule_priority),
            table_base: f.num("table_base").unwrap_or(d.table_base),
            log_level: f
                .vals("log_level")
                .into_iter()
                .find_map(|v| match v {
                    Val::Level(level) => Some(level),
                    _ => None,
                })
                .unwrap_or(d.log_level),
        };
        neighbours(l, &f, &globals);
    }
    globals
}

/// Mark bits other OpenWrt packages own: both would rewrite them.
const MARKS_OF_OTHERS: [(u32, &str); 2] = [
    (0x0000_3f00, "mwan3's (0x3f00)"),
    (0x00ff_0000, "pbr's and Tailscale's (0x00ff0000)"),
];

/// Warns when the settings reach into what other packages use
/// (docs/DESIGN.md): their mark bits, mwan3's ip rule priorities (`mwan3
/// stop` deletes every rule from 1000 to 3999, connroute's too) and its
/// tables (1 to 60). Only what is set explicitly: the defaults avoid them.
fn neighbours(l: &mut Loader, f: &super::fields::Fields, g: &Globals) {
    let s = f.section;
    let mut warn = |opt: &'static str, msg: String| {
        if f.given(opt) {
            l.push(super::Severity::Warning, f.line(opt), s, Some(opt), msg);
        }
    };
    for (bits, whose) in MARKS_OF_OTHERS {
        if g.mark_mask & bits != 0 {
            warn(
                "mark_mask",
                format!("overlaps {whose} mark bits; pick bits no other package uses"),
            );
        }
    }
    if (1000..4000).contains(&g.rule_priority) {
        let msg = "mwan3 uses ip rule priorities 1000-3999, and `mwan3 stop` deletes every \
                   rule there, connroute's too";
        warn("rule_priority", msg.into());
    }
    if (1..=60).contains(&g.table_base) {
        warn("table_base", "mwan3 uses routing tables 1-60".into());
    }
}
