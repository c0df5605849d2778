//! Policy routing over rtnetlink, synchronously: list, add, replace and
//! delete the default routes and ip rules connroute owns.
//!
//! Ownership is the routing protocol tag ([`RTPROT_CONNROUTE`]) on every
//! route and rule connroute creates; entries without it are never touched.
//! The wire format lives in [`super::rtnl`]; this module only does the I/O.

use super::rtnl::{self, Body, flags, kind};
use crate::config::Family;
#[cfg(doc)]
use crate::plan::RTPROT_CONNROUTE;
use crate::plan::{IpRule, Route};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::ffi::{CStr, CString};
use std::io;

/// A route connroute owns, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// The route in plan terms (device resolved to its name).
    pub route: Route,
    /// The message body as dumped, sent back verbatim to delete or restore
    /// it (what `ip route flush` and `ip route restore` do).
    raw: Vec<u8>,
}

/// An ip rule connroute owns, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRule {
    /// The rule in plan terms.
    pub rule: IpRule,
    raw: Vec<u8>,
}

/// A synchronous rtnetlink connection.
pub struct Netlink {
    socket: Socket,
    seq: u32,
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

/// `if_indextoname`: the name of a device index, if it exists.
pub fn ifname(index: u32) -> Option<String> {
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

fn route_body(r: &Route) -> io::Result<Body> {
    let oif = r.device.as_deref().map(ifindex).transpose()?;
    Ok(rtnl::route_body(r, oif))
}

impl Netlink {
    /// Opens an rtnetlink socket in the current network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends one request and collects the bodies of its replies until the
    /// end of the dump or the ACK; a kernel error becomes an `io::Error`.
    fn request(&mut self, kind: u16, extra: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.socket
            .send(&rtnl::message(kind, flags::REQUEST | extra, seq, body), 0)?;
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.socket.recv_from_full()?;
            let msgs = rtnl::replies(&buf).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply")
            })?;
            for m in msgs.into_iter().filter(|m| m.seq == seq) {
                match m.kind {
                    kind::DONE => return Ok(out),
                    kind::ERROR => {
                        return match rtnl::error_code(m.body) {
                            Some(0) => Ok(out),
                            Some(e) => Err(io::Error::from_raw_os_error(e.saturating_neg())),
                            None => Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "truncated netlink error",
                            )),
                        };
                    }
                    _ => out.push(m.body.to_vec()),
                }
            }
        }
    }

    /// Every message body of a dump (`kind`: GETROUTE or GETRULE), both families.
    fn dump(&mut self, kind: u16) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for f in Family::ALL {
            out.extend(self.request(kind, flags::DUMP, rtnl::dump_request(f).bytes())?);
        }
        Ok(out)
    }

    /// Default routes tagged as connroute's, both families.
    pub fn routes(&mut self) -> io::Result<Vec<KernelRoute>> {
        let dump = self.dump(kind::GETROUTE)?;
        Ok(dump
            .into_iter()
            .filter_map(|raw| {
                let (mut route, oif) = rtnl::decode_route(&raw)?;
                route.device = oif.map(|i| ifname(i).unwrap_or_else(|| format!("if{i}")));
                Some(KernelRoute { route, raw })
            })
            .collect())
    }

    /// ip rules tagged as connroute's, both families.
    pub fn rules(&mut self) -> io::Result<Vec<KernelRule>> {
        let dump = self.dump(kind::GETRULE)?;
        Ok(dump
            .into_iter()
            .filter_map(|raw| {
                Some(KernelRule {
                    rule: rtnl::decode_rule(&raw)?,
                    raw,
                })
            })
            .collect())
    }

    /// Every route message body of both families, unfiltered (the caller
    /// decodes; used to find other owners' default routes).
    pub fn dump_all_routes(&mut self) -> io::Result<Vec<Vec<u8>>> {
        self.dump(kind::GETROUTE)
    }

    /// Adds the default route of `r.table`; fails (EEXIST) if one is there.
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        let body = route_body(r)?;
        let f = flags::ACK | flags::CREATE | flags::EXCL;
        self.request(kind::NEWROUTE, f, body.bytes()).map(drop)
    }

    /// Installs the default route of `r.table`, replacing any there.
    pub fn replace_route(&mut self, r: &Route) -> io::Result<()> {
        let body = route_body(r)?;
        let f = flags::ACK | flags::CREATE | flags::REPLACE;
        self.request(kind::NEWROUTE, f, body.bytes()).map(drop)
    }

    /// Deletes a route described in plan terms (rollback of an add).
    pub fn delete_planned_route(&mut self, r: &Route) -> io::Result<()> {
        let body = route_body(r)?;
        self.request(kind::DELROUTE, flags::ACK, body.bytes())
            .map(drop)
    }

    /// Deletes a route read from the kernel.
    pub fn delete_route(&mut self, r: &KernelRoute) -> io::Result<()> {
        self.request(kind::DELROUTE, flags::ACK, &r.raw).map(drop)
    }

    /// Puts back a route read from the kernel earlier (rollback).
    pub fn restore_route(&mut self, r: &KernelRoute) -> io::Result<()> {
        let f = flags::ACK | flags::CREATE | flags::REPLACE;
        self.request(kind::NEWROUTE, f, &r.raw).map(drop)
    }

    /// Adds an ip rule.
    pub fn add_rule(&mut self, r: &IpRule) -> io::Result<()> {
        let f = flags::ACK | flags::CREATE | flags::EXCL;
        self.request(kind::NEWRULE, f, rtnl::rule_body(r).bytes())
            .map(drop)
    }

    /// Deletes an ip rule described in plan terms.
    pub fn delete_rule(&mut self, r: &IpRule) -> io::Result<()> {
        self.request(kind::DELRULE, flags::ACK, rtnl::rule_body(r).bytes())
            .map(drop)
    }

    /// Deletes an ip rule read from the kernel.
    pub fn delete_kernel_rule(&mut self, r: &KernelRule) -> io::Result<()> {
        self.request(kind::DELRULE, flags::ACK, &r.raw).map(drop)
    }
}
