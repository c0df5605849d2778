//! Policy routing over rtnetlink, synchronously: list, add, replace and
//! delete the default routes and ip rules connroute owns.
//!
//! Ownership is the routing protocol tag ([`RTPROT_CONNROUTE`]) on every
//! route and rule connroute creates; entries without it are never touched.
//! Only route and rule messages are decoded (a small message enum instead of
//! netlink-packet-route's full one), which keeps the binary small.

use crate::config::Family;
use crate::plan::{IpRule, RTPROT_CONNROUTE, Route};
use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, Parseable,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::ffi::{CStr, CString};
use std::io;
use std::net::IpAddr;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;
const RT_TABLE_COMPAT: u8 = 252;

/// The only rtnetlink messages connroute sends or reads.
#[derive(Debug, Clone)]
enum Msg {
    Route(u16, RouteMessage),
    Rule(u16, RuleMessage),
}

impl NetlinkSerializable for Msg {
    fn message_type(&self) -> u16 {
        match self {
            Msg::Route(t, _) | Msg::Rule(t, _) => *t,
        }
    }
    fn buffer_len(&self) -> usize {
        match self {
            Msg::Route(_, m) => m.buffer_len(),
            Msg::Rule(_, m) => m.buffer_len(),
        }
    }
    fn serialize(&self, buffer: &mut [u8]) {
        match self {
            Msg::Route(_, m) => m.emit(buffer),
            Msg::Rule(_, m) => m.emit(buffer),
        }
    }
}

impl NetlinkDeserializable for Msg {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        match header.message_type {
            RTM_NEWROUTE | RTM_DELROUTE => Ok(Msg::Route(
                header.message_type,
                RouteMessage::parse(payload)?,
            )),
            RTM_NEWRULE | RTM_DELRULE => {
                Ok(Msg::Rule(header.message_type, RuleMessage::parse(payload)?))
            }
            other => Err(DecodeError::from(format!(
                "unexpected rtnetlink message type {other}"
            ))),
        }
    }
}

/// A route connroute owns, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// The route in plan terms (device resolved to its name).
    pub route: Route,
    raw: RouteMessage,
}

/// An ip rule connroute owns, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRule {
    /// The rule in plan terms.
    pub rule: IpRule,
    raw: RuleMessage,
}

/// A synchronous rtnetlink connection.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

fn af(f: Family) -> AddressFamily {
    match f {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn family_of(a: AddressFamily) -> Option<Family> {
    match a {
        AddressFamily::Inet => Some(Family::V4),
        AddressFamily::Inet6 => Some(Family::V6),
        _ => None,
    }
}

/// `if_nametoindex`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "device name has NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("device {name} does not exist"),
        ))
    } else {
        Ok(idx)
    }
}

/// `if_indextoname`.
fn ifname(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

fn route_message(r: &Route) -> io::Result<RouteMessage> {
    let mut m = RouteMessage::default();
    m.header.address_family = af(r.family);
    m.header.table = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
    m.header.protocol = RouteProtocol::from(RTPROT_CONNROUTE);
    m.header.scope = if r.via.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Table(r.table));
    if let Some(via) = r.via {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
    }
    if let Some(dev) = &r.device {
        m.attributes.push(RouteAttribute::Oif(ifindex(dev)?));
    }
    Ok(m)
}

fn rule_message(r: &IpRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = af(r.family);
    m.header.table = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
    m.header.action = RuleAction::ToTable;
    m.attributes.push(RuleAttribute::Priority(r.priority));
    m.attributes.push(RuleAttribute::FwMark(r.mark));
    m.attributes.push(RuleAttribute::FwMask(r.mask));
    m.attributes.push(RuleAttribute::Table(r.table));
    if r.suppress_default {
        m.attributes.push(RuleAttribute::SuppressPrefixLen(0));
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(
            RTPROT_CONNROUTE,
        )));
    m
}

fn decode_route(m: RouteMessage) -> Option<KernelRoute> {
    if m.header.protocol != RouteProtocol::from(RTPROT_CONNROUTE)
        || m.header.destination_prefix_length != 0
    {
        return None;
    }
    let family = family_of(m.header.address_family)?;
    let mut table = u32::from(m.header.table);
    let (mut via, mut device) = (None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Gateway(RouteAddress::Inet(v)) => via = Some(IpAddr::V4(*v)),
            RouteAttribute::Gateway(RouteAddress::Inet6(v)) => via = Some(IpAddr::V6(*v)),
            RouteAttribute::Oif(i) => device = ifname(*i).or_else(|| Some(format!("if{i}"))),
            _ => {}
        }
    }
    Some(KernelRoute {
        route: Route {
            family,
            table,
            via,
            device,
        },
        raw: m,
    })
}

fn decode_rule(m: RuleMessage) -> Option<KernelRule> {
    let family = family_of(m.header.family)?;
    let mut rule = IpRule {
        family,
        priority: 0,
        mark: 0,
        mask: 0,
        table: u32::from(m.header.table),
        suppress_default: false,
    };
    let mut ours = false;
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::FwMark(v) => rule.mark = *v,
            RuleAttribute::FwMask(v) => rule.mask = *v,
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::SuppressPrefixLen(0) => rule.suppress_default = true,
            RuleAttribute::Protocol(p) => ours = *p == RouteProtocol::from(RTPROT_CONNROUTE),
            _ => {}
        }
    }
    ours.then_some(KernelRule { rule, raw: m })
}

impl Netlink {
    /// Opens an rtnetlink socket in the current network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0 })
    }

    fn send(&mut self, msg: Msg, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut nl =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
        nl.header.flags = flags;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Reads replies to `seq` until DONE (dumps) or the ACK/error.
    fn replies(&mut self, seq: u32) -> io::Result<Vec<Msg>> {
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.socket.recv_from_full()?;
            let mut off = 0;
            while off < buf.len() {
                let msg = NetlinkMessage::<Msg>::deserialize(&buf[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "zero-length netlink message",
                    ));
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(_) => return Err(e.to_io()),
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    fn request(&mut self, msg: Msg, flags: u16) -> io::Result<Vec<Msg>> {
        let seq = self.send(msg, NLM_F_REQUEST | flags)?;
        self.replies(seq)
    }

    /// Default routes tagged as connroute's, both families.
    pub fn routes(&mut self) -> io::Result<Vec<KernelRoute>> {
        let mut out = Vec::new();
        for f in Family::ALL {
            let mut m = RouteMessage::default();
            m.header.address_family = af(f);
            for msg in self.request(Msg::Route(RTM_GETROUTE, m), NLM_F_DUMP)? {
                if let Msg::Route(_, r) = msg {
                    out.extend(decode_route(r));
                }
            }
        }
        Ok(out)
    }

    /// ip rules tagged as connroute's, both families.
    pub fn rules(&mut self) -> io::Result<Vec<KernelRule>> {
        let mut out = Vec::new();
        for f in Family::ALL {
            let mut m = RuleMessage::default();
            m.header.family = af(f);
            for msg in self.request(Msg::Rule(RTM_GETRULE, m), NLM_F_DUMP)? {
                if let Msg::Rule(_, r) = msg {
                    out.extend(decode_rule(r));
                }
            }
        }
        Ok(out)
    }

    /// Installs the default route of `r.table`, replacing any there.
    pub fn replace_route(&mut self, r: &Route) -> io::Result<()> {
        let m = route_message(r)?;
        self.request(
            Msg::Route(RTM_NEWROUTE, m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(|_| ())
    }

    /// Deletes a route described in plan terms (rollback of an add).
    pub fn delete_planned_route(&mut self, r: &Route) -> io::Result<()> {
        let m = route_message(r)?;
        self.request(Msg::Route(RTM_DELROUTE, m), NLM_F_ACK)
            .map(|_| ())
    }

    /// Deletes a route read from the kernel.
    pub fn delete_route(&mut self, r: &KernelRoute) -> io::Result<()> {
        self.request(Msg::Route(RTM_DELROUTE, r.raw.clone()), NLM_F_ACK)
            .map(|_| ())
    }

    /// Puts back a route read from the kernel earlier (rollback).
    pub fn restore_route(&mut self, r: &KernelRoute) -> io::Result<()> {
        self.request(
            Msg::Route(RTM_NEWROUTE, r.raw.clone()),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(|_| ())
    }

    /// Adds an ip rule.
    pub fn add_rule(&mut self, r: &IpRule) -> io::Result<()> {
        self.request(
            Msg::Rule(RTM_NEWRULE, rule_message(r)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
    }

    /// Deletes an ip rule described in plan terms.
    pub fn delete_rule(&mut self, r: &IpRule) -> io::Result<()> {
        self.request(Msg::Rule(RTM_DELRULE, rule_message(r)), NLM_F_ACK)
            .map(|_| ())
    }

    /// Deletes an ip rule read from the kernel.
    pub fn delete_kernel_rule(&mut self, r: &KernelRule) -> io::Result<()> {
        self.request(Msg::Rule(RTM_DELRULE, r.raw.clone()), NLM_F_ACK)
            .map(|_| ())
    }
}
