//! `config rule` sections: which new connections are pinned to which
//! gateway, and the address families each rule can match.

use super::Severity;
use super::fields::{Context, Fields, Loader, Val};
use super::model::{Gateway, Rule};
use super::values::{Family, Proto};
use crate::uci::{Document, Section};

/// Most values one port option may hold: nf_tables keeps a set of single
/// ports as a bitmap whose insert walks the elements added so far (4,096
/// load in 0.1 s, 16,384 in 1.5 s, 65,535 in 32 s on the bench machine).
pub const MAX_PORTS: usize = 4096;

/// Loads every rule; disabled rules are checked but not returned.
pub(super) fn load(
    l: &mut Loader,
    doc: &Document,
    gateways: &[Gateway],
    ctx: &Context,
) -> Vec<Rule> {
    // Exactly as many as there are: no doubling of 10,000 rules.
    let mut out = Vec::with_capacity(doc.of_type("rule").count());
    for s in doc.of_type("rule") {
        let errors = l.errors;
        let f = l.fields(doc, s, ctx);
        let enabled = f.flag("enabled").unwrap_or(true);
        let gateway = target(l, &f, gateways, enabled);
        let mut proto: Vec<Proto> = f
            .vals("proto")
            .into_iter()
            .filter_map(|v| match v {
                Val::Proto(p) => Some(p),
                _ => None,
            })
            .collect();
        let src_ip = f.criterion("src_ip", prefix);
        let dest_ip = f.criterion("dest_ip", prefix);
        let src_port = f.criterion("src_port", port);
        let dest_port = f.criterion("dest_port", port);
        for (opt, c) in [("src_port", &src_port), ("dest_port", &dest_port)] {
            if distinct_ports(c) > MAX_PORTS {
                let msg = format!(
                    "more than {MAX_PORTS} ports: the kernel loads a set of single ports in \
                     quadratic time (65,535 took 32 s); write runs as ranges (FROM-TO)"
                );
                l.error(f.line(opt), s, Some(opt), msg);
            }
        }
        let has_ports = !src_port.is_empty() || !dest_port.is_empty();
        protocols(l, &f, &mut proto, has_ports, !dest_port.is_empty());
        let mut rule = Rule {
            name: s.name.to_string(),
            gateway: 0,
            families: &[],
            src_mac: f.texts("src_mac").into(),
            in_device: f.texts("in_device").into(),
            in_interface: f.texts("in_interface").into(),
            proto: proto.into(),
            src_ip,
            dest_ip,
            src_port,
            dest_port,
            log: f.flag("log").unwrap_or(false),
            line: s.line,
        };
        rule.families = families(l, &f, &rule);
        one_input_option(l, &f, &rule);
        let served = gateway.map_or(&Family::ALL[..], |g| static_families(&gateways[g]));
        if enabled && l.errors == errors {
            routable(l, &f, &rule, served, gateway.map(|g| &gateways[g]));
        }
        // Not when a refused value is why nothing narrows it.
        if enabled && l.errors == errors {
            unnarrowed(l, &f, &rule, served);
        }
        if let (true, Some(g)) = (enabled, gateway) {
            rule.gateway = g;
            out.push(rule);
        }
    }
    out
}

/// `in_device` and `in_interface` both name the input device, and a
/// packet arrives on one: both given would have to mean either (wider than
/// each) or both (never), so neither is guessed.
fn one_input_option(l: &mut Loader, f: &Fields, r: &Rule) {
    if !r.in_device.is_empty() && !r.in_interface.is_empty() {
        let msg = "cannot be combined with in_device: both name the input device; \
                   list the devices in in_device or the interfaces in in_interface";
        l.error(
            f.line("in_interface"),
            f.section,
            Some("in_interface"),
            msg.into(),
        );
    }
}

/// The families a gateway can route, when the config alone tells: a
/// gateway with next hops and no OpenWrt interface routes those families.
/// Otherwise (a device alone, interfaces) both may be routed.
fn static_families(g: &Gateway) -> &'static [Family] {
    if !g.interfaces.is_empty() || (g.gateway.is_none() && g.gateway6.is_none()) {
        return &Family::ALL;
    }
    Family::subset(&Family::ALL, |f| match f {
        Family::V4 => g.gateway.is_some(),
        Family::V6 => g.gateway6.is_some(),
    })
}

/// A rule whose families its gateway can never route would be left out
/// of the ruleset, its connections falling to a later rule: an error.
fn routable(l: &mut Loader, f: &Fields, r: &Rule, served: &[Family], gw: Option<&Gateway>) {
    let Some(gw) = gw else { return };
    if r.families.is_empty() || r.families.iter().any(|fam| served.contains(fam)) {
        return;
    }
    let (wants, has, opt) = match served {
        [Family::V4] => ("IPv6", "IPv4", "gateway6"),
        _ => ("IPv4", "IPv6", "gateway"),
    };
    let msg = format!(
        "the rule can never match: it selects {wants} only and gateway '{}' routes {has} \
         only (give that gateway an {wants} next hop: option {opt})",
        gw.name
    );
    l.error(f.line("gateway"), f.section, Some("gateway"), msg);
}

/// Warns when the rule takes every new connection of a family it can be
/// routed in: no option narrows it, or only values of the other family
/// do (`src_ip '!2001:db8::/32'` excludes nothing from IPv4).
fn unnarrowed(l: &mut Loader, f: &Fields, r: &Rule, served: &[Family]) {
    let s = f.section;
    if matches_everything(r) {
        let msg = "matches every new connection, also the router's own: \
                   add a match option (src_ip, in_device, …) to narrow it";
        l.push(Severity::Warning, s.line, s, None, msg.into());
        return;
    }
    let fams = Family::subset(r.families, |f| served.contains(&f) && !narrowed(r, f));
    if let [fam] = fams {
        let name = match fam {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        };
        let or_family = match f.given("family") {
            true => "",
            false => " or set option family",
        };
        let msg = format!(
            "matches every new {name} connection, also the router's own: its addresses \
             are all of the other family; add an {name} match{or_family}"
        );
        l.push(Severity::Warning, s.line, s, None, msg);
    }
}

/// True when some option narrows the rule's connections of family `fam`.
fn narrowed(r: &Rule, fam: Family) -> bool {
    let addresses = |c: &super::Criterion<super::Prefix>| {
        c.any.iter().chain(c.none.iter()).any(|p| p.family() == fam)
    };
    !r.src_mac.is_empty()
        || !r.in_device.is_empty()
        || !r.in_interface.is_empty()
        || !r.proto.is_empty()
        || !r.src_port.is_empty()
        || !r.dest_port.is_empty()
        || addresses(&r.src_ip)
        || addresses(&r.dest_ip)
}

/// How many values a port option gives nft: single ports once however
/// often listed (nft gets each once), each range as one.
fn distinct_ports(c: &super::Criterion<super::PortRange>) -> usize {
    let listed = c.any.len() + c.none.len();
    if listed <= MAX_PORTS {
        return listed;
    }
    let mut seen = vec![0u64; 1024];
    let mut n = 0;
    for p in c.any.iter().chain(c.none.iter()) {
        let (word, bit) = (usize::from(p.from / 64), 1u64 << (p.from % 64));
        if p.from != p.to || seen[word] & bit == 0 {
            seen[word] |= if p.from == p.to { bit } else { 0 };
            n += 1;
        }
    }
    n
}

/// True when no option narrows the rule (`family` alone does not count:
/// it still takes every connection of that family).
fn matches_everything(r: &Rule) -> bool {
    r.src_mac.is_empty()
        && r.in_device.is_empty()
        && r.in_interface.is_empty()
        && r.proto.is_empty()
        && r.src_ip.is_empty()
        && r.dest_ip.is_empty()
        && r.src_port.is_empty()
        && r.dest_port.is_empty()
}

fn prefix(v: &Val) -> Option<super::Prefix> {
    match v {
        Val::Prefix(p) => Some(*p),
        _ => None,
    }
}

fn port(v: &Val) -> Option<super::PortRange> {
    match v {
        Val::Port(p) => Some(*p),
        _ => None,
    }
}

/// The index of the rule's gateway, which must exist and be enabled.
fn target(l: &mut Loader, f: &Fields, gateways: &[Gateway], enabled: bool) -> Option<usize> {
    let s: &Section = f.section;
    let Some(name) = f.text("gateway") else {
        if !f.given("gateway") {
            let msg = "needs option gateway: the gateway its connections are pinned to";
            l.error(s.line, s, None, msg.into());
        }
        return None;
    };
    let line = f.line("gateway");
    match gateways.iter().find(|g| g.name == name) {
        None => {
            let msg = format!("no gateway section named '{}'", crate::uci::clip(&name));
            l.error(line, s, Some("gateway"), msg);
            None
        }
        Some(g) if !g.enabled && enabled => {
            let msg = format!("gateway '{name}' is disabled");
            l.error(line, s, Some("gateway"), msg);
            None
        }
        Some(g) => Some(g.index),
    }
}

/// Ports need port protocols; without proto, ports mean tcp and udp (as in
/// fw4). `all` stands alone and means no constraint.
fn protocols(l: &mut Loader, f: &Fields, proto: &mut Vec<Proto>, has_ports: bool, dest: bool) {
    let s = f.section;
    if has_ports {
        if proto.is_empty() {
            *proto = vec![Proto::Number(6), Proto::Number(17)];
        } else if let Some(p) = proto.iter().find(|p| !p.has_ports()) {
            let opt = if dest { "dest_port" } else { "src_port" };
            let msg = format!("ports need a protocol with ports, but proto has '{p}'");
            l.error(f.line(opt), s, Some(opt), msg);
        }
    }
    if proto.contains(&Proto::All) {
        if proto.len() > 1 {
            let msg = "'all' cannot be combined with other protocols";
            l.error(f.line("proto"), s, Some("proto"), msg.into());
        }
        proto.clear();
    }
    proto.sort();
    proto.dedup();
}

/// Which families the rule can match at all: `family`, non-negated
/// addresses and icmp/icmpv6 narrow it; none left is an error.
fn families(l: &mut Loader, f: &Fields, rule: &Rule) -> &'static [Family] {
    let family = f.vals("family").into_iter().find_map(|v| match v {
        Val::Family(fam) => fam,
        _ => None,
    });
    let mut families = match family {
        Some(fam) => Family::subset(&Family::ALL, |f| f == fam),
        None => &Family::ALL,
    };
    let mut why = Vec::new();
    for (name, c) in [("src_ip", &rule.src_ip), ("dest_ip", &rule.dest_ip)] {
        if !c.any.is_empty() {
            families = Family::subset(families, |fam| c.any.iter().any(|p| p.family() == fam));
            why.push(name);
        }
    }
    let proto = &rule.proto;
    if !proto.is_empty() && proto.iter().all(|p| p.family().is_some()) {
        families = Family::subset(families, |fam| {
            proto.iter().any(|p| p.family() == Some(fam))
        });
        why.push("proto");
    }
    if families.is_empty() {
        let opt = why.last().copied().unwrap_or("family");
        let msg = format!(
            "the rule can never match: {} and family select no common address family",
            why.join(", ")
        );
        l.error(f.line(opt), f.section, Some(opt), msg);
    }
    families
}
