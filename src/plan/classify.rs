//! The classify chains: config rules in file order, first match wins.
//!
//! Each config rule becomes one entry per family (or one for both when no
//! part of it depends on the family). A run of two or more consecutive
//! entries of the same shape (same family, same set of options, no negated
//! values) whose elements do not overlap becomes one verdict-map lookup:
//!
//! ```text
//! [meta nfproto F] K1 . K2 … vmap { v1 . v2 … : goto r_R, … }
//! r_R:  counter name "rule_R" [log] goto pin_G
//! ```
//! Because no two elements of a map overlap, at most one rule of the run
//! can match a packet, so the lookup picks exactly the rule the linear walk
//! would. Any other entry stays one nft rule of its own.

use super::ruleset::{Builder, Placed, counter_name, pin_chain, truncate};
use super::runs::Run;
use super::sets;
use crate::config::{Criterion, Family, PortRange, Prefix, Proto};
use crate::nft::build::{self as b, Expr, Stmt};
use nftables::expr::{Expression, MetaKey, NamedExpression};
use nftables::schema::SetType;
use std::net::IpAddr;

/// The classify chain for arriving traffic.
pub const CHAIN_CLASSIFY: &str = "classify";
/// The classify chain for locally generated traffic.
pub const CHAIN_CLASSIFY_LOCAL: &str = "classify_local";
/// Most map elements one config rule may expand to (its lists' product).
const MAX_ELEMENTS_PER_RULE: usize = 256;

/// The options a rule can match on, in the order they are matched.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Dev,
    Mac,
    Proto,
    Src,
    Dst,
    Sport,
    Dport,
}

/// Where a value comes from in the config (expressions are made on
/// demand: a 100,000-address list is not held twice).
#[derive(Clone, Copy)]
enum Src<'a> {
    Name(&'a str),
    Proto(Proto),
    Prefix(&'a Prefix),
    Port(PortRange),
}

/// One value of an option: where it comes from and the span of numbers it
/// covers (names hash to a point: a collision only splits a run).
#[derive(Clone, Copy)]
pub(super) struct Val<'a> {
    src: Src<'a>,
    pub(super) span: (u128, u128),
}

impl Val<'_> {
    /// The value as an nft expression.
    pub fn expr(&self) -> Expr {
        match self.src {
            Src::Name(s) => b::s(s.to_string()),
            Src::Proto(p) => match (p.name(), p) {
                (Some(name), _) => b::s(name),
                (None, Proto::Number(n)) => b::n(u32::from(n)),
                (None, Proto::All) => b::n(0),
            },
            Src::Prefix(p) if p.is_host() => b::s(p.addr.to_string()),
            Src::Prefix(p) => b::prefix(p.addr.to_string(), u32::from(p.len)),
            Src::Port(p) if p.from == p.to => b::n(u32::from(p.from)),
            Src::Port(p) => b::range(u32::from(p.from), u32::from(p.to)),
        }
    }

    fn is_wildcard(&self) -> bool {
        matches!(self.src, Src::Name(s) if s.contains(['*', '\\']))
    }
}

/// One option of an entry: values that match, values that must not.
pub(super) struct Part<'a> {
    pub(super) key: Key,
    any: Vec<Val<'a>>,
    none: Vec<Val<'a>>,
}

/// One config rule for one family (`None`: both at once).
pub(super) struct Entry<'a> {
    pub(super) placed: &'a Placed<'a>,
    pub(super) family: Option<Family>,
    pub(super) parts: Vec<Part<'a>>,
}

fn name_span(s: &str) -> (u128, u128) {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    });
    (u128::from(h), u128::from(h))
}

fn prefix_val(p: &Prefix) -> Val<'_> {
    let (addr, bits) = match p.addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host = u32::from(bits - p.len);
    let hostmask = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    Val {
        src: Src::Prefix(p),
        span: (addr, addr | hostmask),
    }
}

fn port_val(p: &PortRange) -> Val<'_> {
    Val {
        src: Src::Port(*p),
        span: (u128::from(p.from), u128::from(p.to)),
    }
}

fn proto_val(p: &Proto) -> Val<'_> {
    let n = match p {
        Proto::Number(n) => *n,
        Proto::All => 0,
    };
    Val {
        src: Src::Proto(*p),
        span: (u128::from(n), u128::from(n)),
    }
}

fn name_val(s: &str) -> Val<'_> {
    Val {
        src: Src::Name(s),
        span: name_span(s),
    }
}

fn key_name(key: Key) -> &'static str {
    match key {
        Key::Dev => "dev",
        Key::Mac => "mac",
        Key::Proto => "proto",
        Key::Src => "src",
        Key::Dst => "dst",
        Key::Sport => "sport",
        Key::Dport => "dport",
    }
}

/// A rule's named set: `s_` (values that match) or `n_` (negated ones),
/// then the key and family, then the rule's name. The first two parts hold
/// no `_`, so no two rules' sets can share a name, whatever the rules are
/// called (`r_a_not_dport4` once named both rule `a`'s negated ports and
/// rule `a_not`'s ports).
fn set_name(negate: bool, key: Key, fam: &str, rule: &str) -> String {
    let sign = if negate { 'n' } else { 's' };
    format!("{sign}_{}{fam}_{rule}", key_name(key))
}

fn key_type(key: Key, family: Option<Family>) -> SetType {
    match key {
        Key::Dev => SetType::Ifname,
        Key::Mac => SetType::EtherAddr,
        Key::Proto => SetType::InetProto,
        Key::Src | Key::Dst if family == Some(Family::V6) => SetType::Ipv6Addr,
        Key::Src | Key::Dst => SetType::Ipv4Addr,
        Key::Sport | Key::Dport => SetType::InetService,
    }
}

fn key_expr(key: Key, family: Option<Family>) -> Expr {
    let l3 = if family == Some(Family::V6) {
        "ip6"
    } else {
        "ip"
    };
    match key {
        Key::Dev => b::meta(MetaKey::Iifname),
        Key::Mac => b::payload("ether", "saddr"),
        Key::Proto => b::meta(MetaKey::L4proto),
        Key::Src => b::payload(l3, "saddr"),
        Key::Dst => b::payload(l3, "daddr"),
        Key::Sport => b::payload("th", "sport"),
        Key::Dport => b::payload("th", "dport"),
    }
}

fn part<'a, T>(
    key: Key,
    c: &'a Criterion<T>,
    keep: impl Fn(&T) -> bool,
    val: fn(&T) -> Val<'_>,
) -> Part<'a> {
    Part {
        key,
        any: c.any.iter().filter(|v| keep(v)).map(val).collect(),
        none: c.none.iter().filter(|v| keep(v)).map(val).collect(),
    }
}

pub(super) fn entry<'a>(p: &'a Placed<'a>, family: Option<Family>) -> Entry<'a> {
    let r = p.rule;
    let names = |key, list: Vec<&'a String>| Part {
        key,
        any: list.into_iter().map(|s| name_val(s)).collect(),
        none: Vec::new(),
    };
    let mut parts = vec![
        names(Key::Dev, r.in_device.iter().chain(&p.in_devices).collect()),
        names(Key::Mac, r.src_mac.iter().collect()),
        Part {
            key: Key::Proto,
            any: r
                .proto
                .iter()
                .filter(|pr| pr.family().is_none_or(|pf| family.is_none_or(|f| pf == f)))
                .map(proto_val)
                .collect(),
            none: Vec::new(),
        },
    ];
    if let Some(f) = family {
        let fam = move |p: &Prefix| p.family() == f;
        parts.push(part(Key::Src, &r.src_ip, fam, prefix_val));
        parts.push(part(Key::Dst, &r.dest_ip, fam, prefix_val));
    }
    parts.push(part(Key::Sport, &r.src_port, |_| true, port_val));
    parts.push(part(Key::Dport, &r.dest_port, |_| true, port_val));
    parts.retain(|p| !p.any.is_empty() || !p.none.is_empty());
    parts.shrink_to_fit(); // 10,000 rules: grown capacity would cost megabytes
    Entry {
        placed: p,
        family,
        parts,
    }
}

/// The entries of one placed rule: per family when addresses or icmp
/// differ by family, else one for both.
fn entries<'a>(p: &'a Placed<'a>) -> Vec<Entry<'a>> {
    let r = p.rule;
    let family_parts = !r.src_ip.is_empty()
        || !r.dest_ip.is_empty()
        || r.proto.iter().any(|p| p.family().is_some());
    if p.families.len() == 2 && !family_parts {
        vec![entry(p, None)]
    } else {
        p.families.iter().map(|f| entry(p, Some(*f))).collect()
    }
}

/// The statements matching an entry on its own; long value lists go to
/// named sets (shared by both classify chains).
fn matches(bd: &mut Builder, e: &Entry) -> Vec<Stmt> {
    let mut out = Vec::new();
    if let Some(f) = e.family {
        out.push(b::matches(
            b::meta(MetaKey::Nfproto),
            b::s(f.nfproto()),
            false,
        ));
    }
    let fam = e
        .family
        .map_or("", |f| if f == Family::V4 { "4" } else { "6" });
    for p in &e.parts {
        for (values, negate) in [(&p.any, false), (&p.none, true)] {
            let right = if values.is_empty() {
                continue;
            } else if sets::fits(values) {
                let name = set_name(negate, p.key, fam, &e.placed.rule.name);
                sets::add(bd, &name, key_type(p.key, e.family), values);
                b::s(format!("@{name}"))
            } else {
                b::one_or_set(values.iter().map(Val::expr).collect())
            };
            out.push(b::matches(key_expr(p.key, e.family), right, negate));
        }
    }
    out
}

/// What a matching entry does: count, maybe log, pin.
fn verdict(p: &Placed) -> Vec<Stmt> {
    let mut st = vec![b::counter(counter_name(p.rule))];
    if p.rule.log {
        st.push(b::log(truncate(format!("connroute {}: ", p.rule.name))));
    }
    st.push(b::goto(pin_chain(p.gateway)));
    st
}

/// An element of a map: one value per part, with its spans.
pub(super) type Element<'v> = Vec<&'v Val<'v>>;

/// The elements an entry expands to, if it can live in a map.
pub(super) fn elements<'e>(e: &'e Entry) -> Option<Vec<Element<'e>>> {
    if e.parts.is_empty() || e.parts.iter().any(|p| !p.none.is_empty()) {
        return None;
    }
    let mut out: Vec<Element> = vec![Vec::new()];
    for p in &e.parts {
        if out.len() * p.any.len() > MAX_ELEMENTS_PER_RULE || p.any.iter().any(Val::is_wildcard) {
            return None;
        }
        out = out
            .iter()
            .flat_map(|el| p.any.iter().map(move |v| [el.as_slice(), &[v]].concat()))
            .collect();
    }
    // A rule's own overlapping values (80 and 70-90) cannot share a map.
    for (i, a) in out.iter().enumerate() {
        if out[i + 1..].iter().any(|b| overlap(a, b)) {
            return None;
        }
    }
    Some(out)
}

fn overlap(a: &[&Val], b: &[&Val]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| x.span.0 <= y.span.1 && y.span.0 <= x.span.1)
}

pub(super) fn is_point(el: &[&Val]) -> bool {
    el.iter().all(|v| v.span.0 == v.span.1)
}

/// Chain of a rule reached from a map.
fn rule_chain(p: &Placed) -> String {
    format!("r_{}", p.rule.name)
}

/// Adds the classify chains' rules (and their maps and rule chains).
/// With `local`, rules that can match local traffic also go to
/// classify_local. Entries are made one at a time: only the run being
/// gathered is held.
pub(super) fn build(bd: &mut Builder, placed: &[Placed], local: bool) {
    let mut last_chain = None;
    let mut run = Run::default();
    for e in placed.iter().flat_map(entries) {
        match elements(&e) {
            Some(els) if run.accepts(&e, &els) => run.push(&e, &els),
            els => {
                emit(bd, std::mem::take(&mut run), &mut last_chain, local);
                match els {
                    Some(els) => run.push(&e, &els),
                    None => emit_single(bd, &e, local),
                }
            }
        }
    }
    emit(bd, run, &mut last_chain, local);
}

fn emit_single(bd: &mut Builder, e: &Entry, local: bool) {
    let mut st = matches(bd, e);
    st.extend(verdict(e.placed));
    let comment = format!("rule {}", e.placed.rule.name);
    if local && !e.placed.rule.needs_input() {
        bd.rule(CHAIN_CLASSIFY_LOCAL, st.clone(), Some(comment.clone()));
    }
    bd.rule(CHAIN_CLASSIFY, st, Some(comment));
}

/// `last_chain`: the rule whose `r_` chain was made last (a rule's two
/// family entries are neighbours, so that is the only one to look at).
fn emit<'a>(bd: &mut Builder, run: Run<'a>, last_chain: &mut Option<&'a Placed<'a>>, local: bool) {
    let Some((family, keys)) = run.shape.clone() else {
        return;
    };
    let first = run.entries[0].0;
    if run.entries.len() == 1 {
        return emit_single(bd, &entry(first, family), local);
    }
    for &(p, _) in &run.entries {
        if !last_chain.is_some_and(|l| std::ptr::eq(l, p)) {
            *last_chain = Some(p);
            let chain = rule_chain(p);
            bd.chain(&chain, None);
            let comment = format!("rule {}", p.rule.name);
            bd.rule(&chain, verdict(p), Some(comment));
        }
    }
    // The map's elements are made one at a time: the values are read again
    // from each rule (they were checked when the run was built).
    let items = run.entries.iter().flat_map(|&(p, family)| {
        let e = entry(p, family);
        let chain = rule_chain(p);
        let els = elements(&e).unwrap_or_default();
        els.into_iter()
            .map(|el| b::goto_item(concat(el.iter().map(|v| v.expr()).collect()), chain.clone()))
            .collect::<Vec<_>>()
    });
    let mut st = Vec::new();
    if let Some(f) = family {
        st.push(b::matches(
            b::meta(MetaKey::Nfproto),
            b::s(f.nfproto()),
            false,
        ));
    }
    let key = concat(keys.iter().map(|k| key_expr(*k, family)).collect());
    let comment = format!("{} rules", run.entries.len());
    let chains: &[&str] = match local && !first.rule.needs_input() {
        true => &[CHAIN_CLASSIFY_LOCAL, CHAIN_CLASSIFY],
        false => &[CHAIN_CLASSIFY],
    };
    let map = super::bulk::Map {
        key,
        items,
        len: run.elements,
    };
    super::bulk::add(bd, chains, st, map, &comment);
}

fn concat(mut parts: Vec<Expr>) -> Expr {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expression::Named(NamedExpression::Concat(parts))
    }
}
