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
    }
    globals
}
