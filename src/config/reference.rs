//! The option reference rendered from the [`schema`](super::schema): the
//! README's table, the man page's entries and the installed config file.
//! `tests/docs.rs` fails when the checked-in copies disagree.

use super::schema::{Kind, OptSpec, SECTION_TYPES, of_section};

fn default_text(o: &OptSpec) -> &'static str {
    match o.default {
        "" => "—",
        d => d,
    }
}

/// A Markdown table: option | section | kind | default | meaning.
pub fn reference_markdown() -> String {
    let mut out =
        String::from("| option | section | kind | default | meaning |\n|---|---|---|---|---|\n");
    for t in SECTION_TYPES {
        for o in of_section(t) {
            let default = match o.default {
                "" => "—".to_string(),
                d => format!("`{d}`"),
            };
            out.push_str(&format!(
                "| `{}` | {t} | {}{} | {default} | {} |\n",
                o.name,
                o.kind.name(),
                if o.negatable { ", `!` negates" } else { "" },
                o.help.replace('|', "\\|")
            ));
        }
    }
    out
}

/// Text made safe for roff: backslashes and dashes escaped, no line
/// starting with a control character.
fn roff(s: &str) -> String {
    let t = s
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('—', "\\(em");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}

/// How a section type is written, for headings.
fn heading(t: &str) -> &'static str {
    match t {
        "globals" => "config globals 'globals'",
        "gateway" => "config gateway 'NAME'",
        _ => "config rule ['NAME']",
    }
}

/// Man page entries: one `.SS` per section type, one `.TP` per option.
pub fn reference_roff() -> String {
    let mut out = String::new();
    for t in SECTION_TYPES {
        out.push_str(&format!(".SS \"{}\"\n", heading(t)));
        for o in of_section(t) {
            out.push_str(&format!(
                ".TP\n.B {}\n({}, default {}) {}\n",
                o.name,
                o.kind.name(),
                roff(default_text(o)),
                roff(o.help)
            ));
        }
    }
    out
}

fn keyword(o: &OptSpec) -> &'static str {
    if o.kind == Kind::List {
        "list"
    } else {
        "option"
    }
}

/// `#\toption NAME 'EXAMPLE'   # help` lines for one section type.
fn commented(t: &'static str) -> String {
    let mut out = String::new();
    for o in of_section(t) {
        let stmt = format!("{} {} '{}'", keyword(o), o.name, o.example);
        let default = match o.default {
            "" => String::new(),
            d => format!(" (default {d})"),
        };
        out.push_str(&format!("#\t{stmt:<36} # {}{default}\n", o.help));
    }
    out
}

const HEADER: &str = "\
# connroute: answer every connection through the gateway it came in by.
#
# Nothing happens until globals 'enabled' is '1' (and each section you use
# is enabled). Then check and apply (with uci set: uci commit connroute
# first, connroute reads only this file):
#   connroute check --diff        what would change, touching nothing
#   OpenWrt: service connroute reload
#   Debian:  systemctl reload connroute     (man connroute: every option)
# connroute changes only its own nft table (inet connroute), the ip rules
# and routes it tagged (protocol 197) and the mark bits of mark_mask.
# An unknown option, an empty value, an option given twice (use list) or a
# section name used twice in these sections is an error.
";

const EXAMPLES: &str = "
# Case 1, two routers on one LAN: router #2 (192.168.1.2) forwards ports to
# this box, whose default gateway is router #1. Pin connections that router
# #2 brings in (its MAC: ip neigh show 192.168.1.2; from outside the LAN)
# to router #2.
config gateway 'router2'
\toption enabled '0'
\toption gateway '192.168.1.2'
\toption device 'br-lan'

config rule 'via_router2'
\toption enabled '0'
\toption gateway 'router2'
\tlist src_mac '52:54:00:c2:a5:43'
\tlist proto 'tcp'
\tlist dest_port '80 443'
\tlist src_ip '!192.168.1.0/24'

# Case 2, one router with two uplinks: connections arriving on wan2 (port
# forwards and the router's own services) are answered through wan2. Device
# and next hops come from netifd while wan2 / wan2_6 are up.
config gateway 'wan2'
\toption enabled '0'
\tlist interface 'wan2'
\tlist interface 'wan2_6'

config rule 'from_wan2'
\toption enabled '0'
\toption gateway 'wan2'
\tlist in_interface 'wan2'
\tlist in_interface 'wan2_6'
";

/// The installed `/etc/config/connroute`: every option explained in
/// comments, and a working example with everything disabled.
pub fn default_config() -> String {
    let mut out = String::from(HEADER);
    out.push_str("\nconfig globals 'globals'\n");
    for o in of_section("globals") {
        let value = if o.name == "enabled" { "0" } else { o.default };
        out.push_str(&format!("\t# {} (default {})\n", o.help, o.default));
        out.push_str(&format!("\t{} {} '{value}'\n", keyword(o), o.name));
    }
    out.push_str(
        "\n# config gateway 'NAME': where pinned connections leave. The name (A-Z,\n\
         # a-z, 0-9, _; not a number, not main/local/default/unspec/all) names\n\
         # its table.\n",
    );
    out.push_str(&commented("gateway"));
    out.push_str(
        "\n# config rule ['NAME']: which new connections are pinned, first match\n\
         # wins. Every option set must match; within one, any value matches.\n",
    );
    out.push_str(&commented("rule"));
    out.push_str(EXAMPLES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_config_loads_disabled_without_warnings() {
        let c = Config::parse(default_config().as_bytes(), "connroute").unwrap();
        assert!(!c.globals.enabled && c.warnings.is_empty());
        assert!(c.rules.is_empty() && c.gateways.iter().all(|g| !g.enabled));
    }

    #[test]
    fn every_example_value_loads() {
        let mut conf = String::from("config gateway 'router2'\n");
        for o in of_section("gateway") {
            conf.push_str(&format!("\t{} {} '{}'\n", keyword(o), o.name, o.example));
        }
        // in_device and in_interface exclude each other: one rule each.
        for (name, leave_out) in [("r", "in_interface"), ("r2", "in_device")] {
            conf.push_str(&format!("config rule '{name}'\n"));
            for o in of_section("rule").filter(|o| o.name != leave_out) {
                conf.push_str(&format!("\t{} {} '{}'\n", keyword(o), o.name, o.example));
            }
        }
        let c = Config::parse(conf.as_bytes(), "connroute").unwrap();
        assert_eq!(c.rules.len(), 2);
    }

    #[test]
    fn every_option_is_documented_everywhere() {
        let (md, man, conf) = (reference_markdown(), reference_roff(), default_config());
        for t in SECTION_TYPES {
            for o in of_section(t) {
                assert!(md.contains(&format!("| `{}` | {t} |", o.name)));
                assert!(man.contains(&format!(".B {}\n", o.name.replace('-', "\\-"))));
                assert!(conf.contains(&format!(" {} '", o.name)), "{}", o.name);
            }
        }
    }
}
