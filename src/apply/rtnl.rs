//! rtnetlink wire format for the two message kinds connroute uses: routes
//! (`struct rtmsg`) and ip rules (`struct fib_rule_hdr`), both 12 bytes,
//! followed by `rtattr`s. Pure encode and decode, no I/O.
//!
//! Netlink headers and integer attributes are in host byte order,
//! addresses in network order; everything here goes through `to_ne_bytes`
//! / `from_ne_bytes`, and the unit tests run on big-endian MIPS too
//! (`make test-cross`).
//!
//! Why hand-written rather than netlink-packet-route: that crate decodes
//! every attribute of every rtnetlink family; measured on the static mipsel
//! build it added 99 KiB against a 700 KiB budget, while connroute needs two
//! message kinds and a dozen attributes (this module is a few KiB). The
//! replies to a request are checked and collected by [`super::dump`].

use crate::config::Family;
use crate::plan::{IpRule, RTPROT_CONNROUTE, Route, RuleAction};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Netlink message types connroute sends or reads.
pub mod kind {
    /// End of a dump.
    pub const DONE: u16 = 3;
    /// Error or ACK (error 0).
    pub const ERROR: u16 = 2;
    /// Add or replace a route.
    pub const NEWROUTE: u16 = 24;
    /// Delete a route.
    pub const DELROUTE: u16 = 25;
    /// Dump routes.
    pub const GETROUTE: u16 = 26;
    /// Add an ip rule.
    pub const NEWRULE: u16 = 32;
    /// Delete an ip rule.
    pub const DELRULE: u16 = 33;
    /// Dump ip rules.
    pub const GETRULE: u16 = 34;
}

/// `nlmsghdr` flags.
pub mod flags {
    /// A request.
    pub const REQUEST: u16 = 0x1;
    /// Ask for an ACK.
    pub const ACK: u16 = 0x4;
    /// Replace an existing object.
    pub const REPLACE: u16 = 0x100;
    /// Fail if it exists.
    pub const EXCL: u16 = 0x200;
    /// Create if missing.
    pub const CREATE: u16 = 0x400;
    /// Dump everything (ROOT | MATCH).
    pub const DUMP: u16 = 0x300;
    /// Part of a multipart reply.
    pub const MULTI: u16 = 0x2;
    /// The dump changed while it was being read: it is inconsistent.
    pub const DUMP_INTR: u16 = 0x10;
}

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const RT_TABLE_COMPAT: u8 = 252;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_GOTO: u8 = 2;
const FR_ACT_NOP: u8 = 3;
const FIB_RULE_INVERT: u32 = 2;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const FRA_GOTO: u16 = 4;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_SUPPRESS_IFGROUP: u16 = 13;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;

const NLMSG_HDRLEN: usize = 16;
/// Both `rtmsg` and `fib_rule_hdr` are 12 bytes.
const BODY_HDRLEN: usize = 12;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn af(f: Family) -> u8 {
    match f {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    }
}

fn family_of(af: u8) -> Option<Family> {
    match af {
        AF_INET => Some(Family::V4),
        AF_INET6 => Some(Family::V6),
        _ => None,
    }
}

/// A message body (`rtmsg`/`fib_rule_hdr` plus attributes) being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(Vec<u8>);

impl Body {
    /// A body starting with this 12-byte family header.
    fn new(header: [u8; BODY_HDRLEN]) -> Body {
        Body(header.to_vec())
    }

    fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Body {
        let len = 4 + value.len();
        // Attribute values here are at most 16 bytes: the cast cannot truncate.
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    fn u32(&mut self, kind: u16, v: u32) -> &mut Body {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// The body bytes, as sent after the netlink header.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A whole netlink message: header, then `body`.
pub fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    out.extend_from_slice(body);
    out
}

/// The body of a dump request for one family.
pub fn dump_request(f: Family) -> Body {
    let mut h = [0u8; BODY_HDRLEN];
    h[0] = af(f);
    Body::new(h)
}

/// The body of a route message for `r`; `oif` is its device's index.
pub fn route_body(r: &Route, oif: Option<u32>) -> Body {
    let scope = if r.via.is_some() {
        RT_SCOPE_UNIVERSE
    } else {
        RT_SCOPE_LINK
    };
    let table = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
    let mut b = Body::new([
        af(r.family),
        0, // dst_len: the default route
        0,
        0,
        table,
        RTPROT_CONNROUTE,
        scope,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]);
    b.u32(RTA_TABLE, r.table);
    match r.via {
        Some(IpAddr::V4(a)) => b.attr(RTA_GATEWAY, &a.octets()),
        Some(IpAddr::V6(a)) => b.attr(RTA_GATEWAY, &a.octets()),
        None => &mut b,
    };
    if let Some(i) = oif {
        b.u32(RTA_OIF, i);
    }
    b
}

/// The body of an ip rule message for `r`, tagged as connroute's.
pub fn rule_body(r: &IpRule) -> Body {
    let (action, table) = match r.action {
        RuleAction::Lookup { table, .. } => (FR_ACT_TO_TBL, table),
        RuleAction::Goto(_) => (FR_ACT_GOTO, 0),
        RuleAction::Nop => (FR_ACT_NOP, 0),
    };
    let mut h = [0u8; BODY_HDRLEN];
    h[0] = af(r.family);
    h[4] = u8::try_from(table).unwrap_or(RT_TABLE_COMPAT);
    h[7] = action;
    let flags = if r.invert { FIB_RULE_INVERT } else { 0 };
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    let mut b = Body::new(h);
    b.u32(FRA_PRIORITY, r.priority);
    if r.mask != 0 {
        b.u32(FRA_FWMARK, r.mark).u32(FRA_FWMASK, r.mask);
    }
    match r.action {
        RuleAction::Lookup {
            table,
            suppress_default,
        } => {
            b.u32(FRA_TABLE, table);
            if suppress_default {
                b.u32(FRA_SUPPRESS_PREFIXLEN, 0);
            }
        }
        RuleAction::Goto(target) => {
            // The kernel's duplicate check ignores the target: two gotos at
            // one priority with the same fwmark would collide (EEXIST) while
            // apply moves from one block to the next. The target also goes
            // in suppress_ifgroup, which that check compares and a goto
            // never evaluates (nor does `ip rule` print it without a table).
            b.u32(FRA_GOTO, target).u32(FRA_SUPPRESS_IFGROUP, target);
        }
        RuleAction::Nop => {}
    }
    b.attr(FRA_PROTOCOL, &[RTPROT_CONNROUTE]);
    b
}

/// One message read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Everything after the netlink header.
    pub body: &'a [u8],
}

/// Splits a datagram into messages; `None` if a header is malformed.
pub fn replies(buf: &[u8]) -> Option<Vec<Reply<'_>>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let len = ne_u32(rest.get(0..4)?)? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        out.push(Reply {
            kind: ne_u16(rest.get(4..6)?)?,
            flags: ne_u16(rest.get(6..8)?)?,
            seq: ne_u32(rest.get(8..12)?)?,
            body: rest.get(NLMSG_HDRLEN..len)?,
        });
        rest = rest.get(align4(len).min(rest.len())..)?;
    }
    Some(out)
}

/// The errno of an `NLMSG_ERROR` body (0 is an ACK); `None` if truncated.
pub fn error_code(body: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(body.get(0..4)?.try_into().ok()?))
}

fn ne_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(b.try_into().ok()?))
}

fn ne_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.try_into().ok()?))
}

/// The attributes after the 12-byte header, as (type, value); the nested
/// and byte-order flag bits of the type are cleared.
fn attrs(body: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    attrs_after(body, BODY_HDRLEN)
}

/// The attributes after a `hdr`-byte family header (12 for routes and
/// rules, 16 for links, 4 for nfnetlink), as [`attrs`] reads them; shared
/// by the decoders here, the watcher's monitor and the kernel facts.
pub fn attrs_after(body: &[u8], hdr: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = body.get(hdr..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = usize::from(ne_u16(rest.get(0..2)?)?);
        let kind = ne_u16(rest.get(2..4)?)? & 0x3fff;
        let value = rest.get(4..len)?;
        rest = rest.get(align4(len).min(rest.len())..)?;
        Some((kind, value))
    })
}

fn addr(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?))),
        _ => None,
    }
}

/// A route body read from the kernel, if it is a default route connroute
/// owns; the device comes back as its index for the caller to name.
pub fn decode_route(body: &[u8]) -> Option<(Route, Option<u32>)> {
    let d = decode_default(body)?;
    d.ours().then_some((d.route, d.oif))
}

/// A default route of any owner, as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The route in plan terms (device not named yet).
    pub route: Route,
    /// Output device index.
    pub oif: Option<u32>,
    /// `rtm_protocol`: who installed it.
    pub protocol: u8,
    /// `rtm_type` (1 unicast, 6 blackhole, 7 unreachable, 8 prohibit, …).
    pub kind: u8,
    /// `RTA_PRIORITY` (the metric).
    pub metric: Option<u32>,
    /// Next hops (gateway, device index) of a multipath route; empty for
    /// one next hop. connroute installs only single next hops, so a
    /// multipath route holds another owner's (an IPv6 `ip route append`
    /// merges into connroute's route, which keeps its protocol).
    pub nexthops: Vec<(Option<IpAddr>, u32)>,
}

impl DefaultRoute {
    /// Whether connroute owns the whole route: its protocol, one next hop.
    pub fn ours(&self) -> bool {
        self.protocol == RTPROT_CONNROUTE && self.nexthops.is_empty()
    }
}

/// A route body read from the kernel, if it is a default route (any owner).
pub fn decode_default(body: &[u8]) -> Option<DefaultRoute> {
    (body.get(1) == Some(&0)).then(|| decode_any(body))?
}

/// A route body of any prefix, decoded like [`decode_default`].
fn decode_any(body: &[u8]) -> Option<DefaultRoute> {
    let h: [u8; BODY_HDRLEN] = body.get(0..BODY_HDRLEN)?.try_into().ok()?;
    let mut route = Route {
        family: family_of(h[0])?,
        table: u32::from(h[4]),
        via: None,
        device: None,
    };
    let (mut oif, mut metric, mut hops) = (None, None, Vec::new());
    for (kind, v) in attrs(body) {
        match kind {
            RTA_TABLE => route.table = ne_u32(v)?,
            RTA_GATEWAY => route.via = Some(addr(v)?),
            RTA_OIF => oif = Some(ne_u32(v)?),
            RTA_PRIORITY => metric = Some(ne_u32(v)?),
            RTA_MULTIPATH => hops = more::nexthops(v)?,
            _ => {}
        }
    }
    Some(DefaultRoute {
        route,
        oif,
        protocol: h[5],
        kind: h[7],
        metric,
        nexthops: hops,
    })
}

/// An ip rule body read from the kernel, if connroute owns it (and it is
/// a lookup, goto or nop rule).
pub fn decode_rule(body: &[u8]) -> Option<IpRule> {
    let h: [u8; BODY_HDRLEN] = body.get(0..BODY_HDRLEN)?.try_into().ok()?;
    let flags = u32::from_ne_bytes(h[8..12].try_into().ok()?);
    let (mut priority, mut mark, mut mask, mut goto) = (0, 0, 0, 0);
    let (mut table, mut suppress_default) = (u32::from(h[4]), false);
    let mut ours = false;
    for (kind, v) in attrs(body) {
        match kind {
            FRA_PRIORITY => priority = ne_u32(v)?,
            FRA_FWMARK => mark = ne_u32(v)?,
            FRA_FWMASK => mask = ne_u32(v)?,
            FRA_TABLE => table = ne_u32(v)?,
            FRA_GOTO => goto = ne_u32(v)?,
            FRA_SUPPRESS_PREFIXLEN => suppress_default = ne_u32(v)? == 0,
            FRA_PROTOCOL => ours = v.first() == Some(&RTPROT_CONNROUTE),
            _ => {}
        }
    }
    let action = match h[7] {
        FR_ACT_TO_TBL => RuleAction::Lookup {
            table,
            suppress_default,
        },
        FR_ACT_GOTO => RuleAction::Goto(goto),
        FR_ACT_NOP => RuleAction::Nop,
        _ => return None,
    };
    ours.then_some(IpRule {
        family: family_of(h[0])?,
        priority,
        mark,
        mask,
        invert: flags & FIB_RULE_INVERT != 0,
        action,
    })
}

#[path = "rtnl_more.rs"]
mod more;
pub use more::{decode_stray, foreign_rule, get_request, ip_route_text, local, on_link};

#[cfg(test)]
#[path = "rtnl_rule_tests.rs"]
mod rule_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> IpRule {
        IpRule {
            family: Family::V6,
            priority: 5001,
            mark: 0x0100_0000,
            mask: 0xff00_0000,
            invert: false,
            action: RuleAction::Lookup {
                table: 5001,
                suppress_default: false,
            },
        }
    }

    #[test]
    fn route_round_trips() {
        for (via, oif) in [
            (Some("10.2.0.1".parse().unwrap()), Some(7)),
            (Some("fe80::1".parse().unwrap()), Some(3)),
            (None, Some(9)),
        ] {
            let r = Route {
                family: if matches!(via, Some(IpAddr::V6(_))) {
                    Family::V6
                } else {
                    Family::V4
                },
                table: 5001,
                via,
                device: None,
            };
            let b = route_body(&r, oif);
            assert_eq!(b.bytes().len() % 4, 0);
            assert_eq!(decode_route(b.bytes()), Some((r, oif)));
        }
    }

    #[test]
    fn rule_round_trips_and_foreign_rules_are_ignored() {
        let mut r = rule();
        assert_eq!(decode_rule(rule_body(&r).bytes()), Some(r.clone()));
        r.action = RuleAction::Lookup {
            table: 254,
            suppress_default: true,
        };
        r.invert = true;
        assert_eq!(decode_rule(rule_body(&r).bytes()), Some(r.clone()));
        // Drop the FRA_PROTOCOL attribute (last, 8 bytes): not ours any more.
        let b = rule_body(&r);
        let foreign = &b.bytes()[..b.bytes().len() - 8];
        assert_eq!(decode_rule(foreign), None);
    }

    #[test]
    fn wire_layout_is_host_order_with_network_order_addresses() {
        let r = Route {
            family: Family::V4,
            table: 300,
            via: Some("10.2.0.1".parse().unwrap()),
            device: None,
        };
        let b = route_body(&r, None);
        let mut want = vec![
            AF_INET,
            0,
            0,
            0,
            RT_TABLE_COMPAT,
            RTPROT_CONNROUTE,
            0,
            1,
            0,
            0,
            0,
            0,
        ];
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&RTA_TABLE.to_ne_bytes());
        want.extend_from_slice(&300u32.to_ne_bytes());
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&RTA_GATEWAY.to_ne_bytes());
        want.extend_from_slice(&[10, 2, 0, 1]);
        assert_eq!(b.bytes(), &want[..]);
        let m = message(kind::NEWROUTE, flags::REQUEST | flags::ACK, 7, b.bytes());
        assert_eq!(&m[0..4], &((16 + want.len()) as u32).to_ne_bytes());
        assert_eq!(&m[4..6], &kind::NEWROUTE.to_ne_bytes());
        assert_eq!(&m[8..12], &7u32.to_ne_bytes());
    }

    #[test]
    fn replies_split_and_reject_garbage() {
        let body = rule_body(&rule());
        let mut buf = message(kind::NEWRULE, 2, 5, body.bytes());
        let mut ack_body = 0i32.to_ne_bytes().to_vec();
        ack_body.extend_from_slice(&[0; 16]); // the request's header, echoed
        buf.extend_from_slice(&message(kind::ERROR, 0, 5, &ack_body));
        let got = replies(&buf).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, body.bytes());
        assert_eq!(error_code(got[1].body), Some(0));
        assert_eq!(replies(&buf[..buf.len() - 1]), None);
        assert_eq!(replies(&[1, 0, 0, 0]), None);
        assert_eq!(replies(&[]), Some(vec![]));
    }

    #[test]
    fn decoders_never_panic_on_truncation() {
        let b = route_body(
            &Route {
                family: Family::V6,
                table: 5001,
                via: Some("fe80::1".parse().unwrap()),
                device: None,
            },
            Some(2),
        );
        for n in 0..b.bytes().len() {
            let _ = decode_route(&b.bytes()[..n]);
            let _ = decode_rule(&b.bytes()[..n]);
        }
    }
}
