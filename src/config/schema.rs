//! The option schema: every option connroute reads, declared once.
//!
//! Loading ([`super::fields`]), unknown-option errors with their
//! "did you mean" hints, and the documentation ([`super::reference`]: the
//! README table, the man page, the installed config's comments) are all
//! driven by [`OPTIONS`], so they cannot drift apart.

/// The section types connroute reads, in documentation order.
pub const SECTION_TYPES: [&str; 3] = ["globals", "gateway", "rule"];

/// How an option is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A boolean `option` (`1`/`0`, `yes`/`no`, …).
    Flag,
    /// A single `option`; a `list` is an error.
    Value,
    /// A `list` (or an `option` holding several words); any value may match.
    List,
}

impl Kind {
    /// The word used in the documentation.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Value => "value",
            Kind::List => "list",
        }
    }
}

/// Whether an option selects traffic or configures connroute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Narrows which connections a rule matches.
    Match,
    /// Any other setting.
    Setting,
}

/// Which value parser reads the option's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    /// UCI boolean.
    Bool,
    /// Contiguous non-zero bit mask.
    MarkMask,
    /// ip rule priority 1..31999.
    RulePriority,
    /// First allocated table id.
    TableBase,
    /// error|warn|info|debug.
    LogLevel,
    /// IPv4 address.
    Ipv4,
    /// IPv6 address.
    Ipv6,
    /// Kernel network device name.
    Device,
    /// OpenWrt logical interface name.
    Interface,
    /// A mark inside `mark_mask`.
    Mark,
    /// A routing table id.
    Table,
    /// A gateway section's name.
    GatewayRef,
    /// Free text (ignored by connroute).
    Text,
    /// any|ipv4|ipv6.
    Family,
    /// Ethernet address.
    Mac,
    /// Protocol name or number.
    Proto,
    /// Address or prefix, `!` negates.
    Prefix,
    /// Port or range, `!` negates.
    Port,
}

/// One option of one section type.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Option name.
    pub name: &'static str,
    /// Section type it belongs to.
    pub section: &'static str,
    /// How it is written.
    pub kind: Kind,
    /// Match or setting.
    pub role: Role,
    /// Value parser.
    pub parser: Parser,
    /// Whether values may start with `!`.
    pub negatable: bool,
    /// Default, as documented (empty: none).
    pub default: &'static str,
    /// One-line meaning.
    pub help: &'static str,
    /// An example value for the installed config's comments.
    pub example: &'static str,
}

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    parser: Parser,
    default: &'static str,
    help: &'static str,
    example: &'static str,
) -> OptSpec {
    OptSpec {
        name,
        section,
        kind,
        role: Role::Setting,
        parser,
        negatable: false,
        default,
        help,
        example,
    }
}

const fn matcher(
    name: &'static str,
    kind: Kind,
    parser: Parser,
    negatable: bool,
    default: &'static str,
    help: &'static str,
    example: &'static str,
) -> OptSpec {
    OptSpec {
        name,
        section: "rule",
        kind,
        role: Role::Match,
        parser,
        negatable,
        default,
        help,
        example,
    }
}

use Kind::{Flag, List, Value};
use Parser as P;

/// Every option, grouped by section type in documentation order.
#[rustfmt::skip]
pub const OPTIONS: &[OptSpec] = &[
    opt("globals", "enabled", Flag, P::Bool, "1",
        "'0': apply removes everything connroute installed", "1"),
    opt("globals", "mark_mask", Value, P::MarkMask, "0xff000000",
        "the mark bits connroute owns (one contiguous run)", "0xff000000"),
    opt("globals", "rule_priority", Value, P::RulePriority, "5000",
        "first ip rule priority: connroute's rules take P to P+4C+3 (C = gateways rounded up to a power of two, at least 8: P+35; it grows with the gateways and shrinks only at `flush`); keep other ip rules out", "5000"),
    opt("globals", "table_base", Value, P::TableBase, "5000",
        "first routing table id handed out", "5000"),
    opt("globals", "log_level", Value, P::LogLevel, "info",
        "error|warn|info|debug (-v forces debug on stderr)", "info"),
    opt("gateway", "enabled", Flag, P::Bool, "1",
        "'0': keeps its mark and table, installs nothing", "1"),
    opt("gateway", "gateway", Value, P::Ipv4, "",
        "IPv4 next hop", "192.168.1.2"),
    opt("gateway", "gateway6", Value, P::Ipv6, "",
        "IPv6 next hop (a link-local one needs device or interface)", "fe80::1"),
    opt("gateway", "device", Value, P::Device, "",
        "device of the default route (optional with a next hop)", "br-lan"),
    opt("gateway", "interface", List, P::Interface, "",
        "OpenWrt interfaces giving device and next hops; active while one is up", "wan2"),
    opt("gateway", "mark", Value, P::Mark, "allocated",
        "mark inside mark_mask; allocated once and kept in the ids file when absent", "0x02000000"),
    opt("gateway", "table", Value, P::Table, "allocated",
        "routing table id; allocated from table_base and kept when absent", "200"),
    opt("rule", "enabled", Flag, P::Bool, "1",
        "'0': the rule is ignored", "1"),
    opt("rule", "name", Value, P::Text, "",
        "a label for people; ignored", "web"),
    opt("rule", "gateway", Value, P::GatewayRef, "",
        "required: the gateway its connections are pinned to (with no match option: every new connection, the router's own too; warned)", "router2"),
    matcher("family", Value, P::Family, false, "any",
        "any|ipv4|ipv6", "ipv4"),
    matcher("src_mac", List, P::Mac, false, "",
        "source MAC (the gateway's, for gateways sharing one LAN)", "52:54:00:c2:a5:43"),
    matcher("in_device", List, P::Device, false, "",
        "input device (not with in_interface)", "eth1"),
    matcher("in_interface", List, P::Interface, false, "",
        "input OpenWrt interface (its device while up; not with in_device)", "wan2"),
    matcher("proto", List, P::Proto, false, "all",
        "tcp|udp|udplite|sctp|dccp|icmp|icmpv6|all|0-255", "tcp"),
    matcher("src_ip", List, P::Prefix, true, "",
        "source address or prefix, v4 or v6; '!' negates", "!192.168.1.0/24"),
    matcher("dest_ip", List, P::Prefix, true, "",
        "destination address or prefix; '!' negates", "203.0.113.0/24"),
    matcher("src_port", List, P::Port, true, "",
        "source port or range; '!' negates", "1024-65535"),
    matcher("dest_port", List, P::Port, true, "",
        "destination port or range; several in one value work too", "80 443"),
    opt("rule", "log", Flag, P::Bool, "0",
        "log the first packet of each pinned connection", "1"),
];

/// The spec of `name` in a section of type `section`.
pub fn lookup(section: &str, name: &str) -> Option<&'static OptSpec> {
    OPTIONS
        .iter()
        .find(|o| o.section == section && o.name == name)
}

/// Every option of one section type, in schema order.
pub fn of_section(section: &'static str) -> impl Iterator<Item = &'static OptSpec> {
    OPTIONS.iter().filter(move |o| o.section == section)
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The section type `stype` was probably meant to be: one of
/// [`SECTION_TYPES`] equal but for case, or within two edits of it (one
/// for short types).
pub fn near_section_type(stype: &str) -> Option<&'static str> {
    if stype.len() > 64 {
        return None;
    }
    let lower = stype.to_ascii_lowercase();
    SECTION_TYPES
        .iter()
        .map(|t| (distance(&lower, t), *t))
        .filter(|(d, t)| *d <= if t.len() < 5 { 1 } else { 2 })
        .min()
        .map(|(_, t)| t)
}

/// The message for an option `name` not known in `section`: the closest
/// known option when one is near, else where the name does belong.
pub fn unknown_option(section: &str, name: &str) -> String {
    if name.len() <= 64 {
        let limit = if name.len() < 5 { 1 } else { 2 };
        let best = OPTIONS
            .iter()
            .filter(|o| o.section == section)
            .map(|o| (distance(name, o.name), o.name))
            .filter(|(d, _)| *d <= limit)
            .min();
        if let Some((_, near)) = best {
            return format!("unknown option; did you mean '{near}'?");
        }
    }
    if let Some(o) = OPTIONS.iter().find(|o| o.name == name) {
        return format!(
            "unknown option: '{name}' belongs in a {} section",
            o.section
        );
    }
    let known: Vec<&str> = OPTIONS
        .iter()
        .filter(|o| o.section == section)
        .map(|o| o.name)
        .collect();
    format!("unknown option (a {section} knows: {})", known.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_pick_the_nearest_option() {
        assert_eq!(
            unknown_option("rule", "src_mca"),
            "unknown option; did you mean 'src_mac'?"
        );
        assert_eq!(
            unknown_option("rule", "dst_ip"),
            "unknown option; did you mean 'dest_ip'?"
        );
        assert_eq!(
            unknown_option("rule", "interface"),
            "unknown option: 'interface' belongs in a gateway section"
        );
        assert!(
            unknown_option("gateway", "colour")
                .starts_with("unknown option (a gateway knows: enabled,")
        );
    }

    #[test]
    fn every_section_type_has_options_and_names_are_unique() {
        for t in SECTION_TYPES {
            let names: Vec<&str> = of_section(t).map(|o| o.name).collect();
            assert!(!names.is_empty());
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{t}");
        }
        assert!(OPTIONS.iter().all(|o| SECTION_TYPES.contains(&o.section)));
        let negatable = OPTIONS.iter().filter(|o| o.negatable);
        assert!(
            negatable
                .clone()
                .all(|o| o.kind == Kind::List && o.role == Role::Match)
        );
        assert_eq!(negatable.count(), 4);
    }
}
