//! Kernel change notifications the watcher reacts to: rtnetlink multicast
//! (links, IPv4/IPv6 routes and ip rules) and nftables' netlink group.
//!
//! Only the headers are read, never trusted: a message that does not parse
//! is counted as malformed and ignored. What connroute itself just did is
//! told apart from what others did by the routing protocol tag 197 on
//! routes and rules, and, for nftables, by scanning what arrived during its
//! own apply (see [`Scan`]).

use super::rtnl;
use crate::plan::{RTPROT_CONNROUTE, TABLE};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER, protocols::NETLINK_ROUTE};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_DELRULE: u16 = 33;
const RTA_TABLE: u16 = 15;
const FRA_PROTOCOL: u16 = 21;
const RT_TABLE_LOCAL: u32 = 255;

/// rtnetlink multicast groups: link, IPv4 route, IPv4 rule, IPv6 route, IPv6 rule.
const RTNL_GROUPS: [u32; 5] = [1, 7, 8, 11, 19];
/// `NFNLGRP_NFTABLES`.
const NFT_GROUP: u32 = 7;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_TRACE: u16 = 17;
const NFT_MSG_DESTROYTABLE: u16 = 26;
const NFPROTO_INET: u8 = 1;
/// Kernel-side receive buffer asked for: a `flush ruleset` on a big
/// ruleset sends thousands of messages at once.
const RCVBUF: usize = 1 << 20;

/// Why the watcher should re-plan.
pub type Reason = &'static str;

/// What the notifications read so far mean.
#[derive(Debug, Default)]
pub struct Scan {
    /// The first reason to re-plan, if any.
    pub reason: Option<Reason>,
    /// Messages that did not parse (ignored).
    pub malformed: u32,
    /// During an own apply: whether the last table-level nftables event for
    /// `inet connroute` was a deletion (`Some(true)`), a creation, or none.
    deleted_last: Option<bool>,
}

fn ne_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?))
}

impl Scan {
    /// Records one reason (the first one wins, for the log line).
    fn note(&mut self, r: Reason) {
        self.reason.get_or_insert(r);
    }

    /// Reads one rtnetlink datagram. `own`: it arrived during connroute's
    /// own apply, so deletions of connroute's routes are its own doing.
    pub fn rtnl(&mut self, buf: &[u8], own: bool) {
        let Some(msgs) = rtnl::replies(buf) else {
            self.malformed += 1;
            return;
        };
        for m in msgs {
            match m.kind {
                RTM_NEWLINK | RTM_DELLINK => self.note("a link changed"),
                RTM_NEWROUTE | RTM_DELROUTE => self.route(m.kind, m.body, own),
                RTM_DELRULE => self.rule(m.body, own),
                _ => {}
            }
        }
    }

    fn route(&mut self, kind: u16, body: &[u8], own: bool) {
        let Some(h) = body.get(0..12) else {
            self.malformed += 1;
            return;
        };
        let table = rtnl::attrs_after(body, 12)
            .find(|(k, _)| *k == RTA_TABLE)
            .and_then(|(_, v)| ne_u32(v))
            .unwrap_or(u32::from(h[4]));
        if h[5] == RTPROT_CONNROUTE {
            // Connroute's own route: written by this or another connroute
            // run; only a deletion by someone else needs healing.
            if kind == RTM_DELROUTE && !own {
                self.note("a connroute route was deleted");
            }
        } else if h[1] == 0 && table != RT_TABLE_LOCAL {
            self.note("a default route changed");
        }
    }

    fn rule(&mut self, body: &[u8], own: bool) {
        if body.len() < 12 {
            self.malformed += 1;
            return;
        }
        let ours = rtnl::attrs_after(body, 12)
            .any(|(k, v)| k == FRA_PROTOCOL && v.first() == Some(&RTPROT_CONNROUTE));
        if ours && !own {
            self.note("a connroute ip rule was deleted");
        }
    }

    /// Reads one nftables notification datagram.
    pub fn nft(&mut self, buf: &[u8], own: bool) {
        let Some(msgs) = rtnl::replies(buf) else {
            self.malformed += 1;
            return;
        };
        for m in msgs {
            if m.kind >> 8 != NFNL_SUBSYS_NFTABLES {
                continue;
            }
            let msg = m.kind & 0xff;
            if matches!(msg, NFT_MSG_NEWGEN | NFT_MSG_TRACE) {
                continue;
            }
            let Some(&family) = m.body.first() else {
                self.malformed += 1;
                continue;
            };
            // Attribute 1 is the table name in every object message.
            let ours = family == NFPROTO_INET
                && rtnl::attrs_after(m.body, 4)
                    .any(|(k, v)| k == 1 && v.split(|b| *b == 0).next() == Some(TABLE.as_bytes()));
            if !ours {
                continue;
            }
            let deleted = matches!(msg, NFT_MSG_DELTABLE | NFT_MSG_DESTROYTABLE);
            if own {
                if deleted || msg == NFT_MSG_NEWTABLE {
                    self.deleted_last = Some(deleted);
                }
            } else {
                self.note("table inet connroute changed");
            }
        }
    }

    /// Ends a scan of what arrived during an own apply: connroute's own
    /// transaction ends with its table in place, so a table deleted last
    /// was deleted by someone else meanwhile.
    pub fn finish_own(&mut self) {
        if self.deleted_last.take() == Some(true) {
            self.note("table inet connroute was deleted");
        }
    }
}

/// The two notification sockets.
pub struct Monitor {
    route: Socket,
    nft: Option<Socket>,
    buf: Vec<u8>,
}

fn subscribe(protocol: isize, groups: &[u32]) -> io::Result<Socket> {
    let mut s = Socket::new(protocol)?;
    s.bind_auto()?;
    for g in groups {
        s.add_membership(*g)?;
    }
    s.set_non_blocking(true)?;
    // Best effort: a smaller buffer only means an earlier overrun, which
    // is handled as "something changed".
    let _ = s.set_rx_buf_sz(RCVBUF);
    Ok(s)
}

/// What one [`Monitor::drain`] found.
#[derive(Debug, Default)]
pub struct Drained {
    /// What the messages mean.
    pub scan: Scan,
    /// Notifications were lost (receive buffer overrun).
    pub overrun: bool,
}

impl Monitor {
    /// Subscribes to the rtnetlink groups and, if nf_tables is available,
    /// to nftables notifications (without it table deletions go unseen:
    /// a warning is logged).
    pub fn open() -> io::Result<Monitor> {
        let route = subscribe(NETLINK_ROUTE, &RTNL_GROUPS)?;
        let nft = match subscribe(NETLINK_NETFILTER, &[NFT_GROUP]) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!(
                    "cannot subscribe to nftables notifications ({e}); deletions of the table are not seen"
                );
                None
            }
        };
        Ok(Monitor {
            route,
            nft,
            buf: vec![0; 64 * 1024],
        })
    }

    /// The descriptors to poll for input.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v = vec![self.route.as_raw_fd()];
        v.extend(self.nft.as_ref().map(AsRawFd::as_raw_fd));
        v
    }

    /// Reads everything queued on both sockets without blocking. `own`:
    /// it was queued during connroute's own apply.
    pub fn drain(&mut self, own: bool) -> Drained {
        let mut d = Drained::default();
        for (nft, sock) in [(false, Some(&self.route)), (true, self.nft.as_ref())] {
            let Some(sock) = sock else { continue };
            loop {
                // SAFETY: recv writes at most buf.len() bytes into buf.
                let n = unsafe {
                    libc::recv(
                        sock.as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.buf.len(),
                        libc::MSG_TRUNC,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => continue,
                        // Lost notifications: read on, then re-plan.
                        Some(libc::ENOBUFS) => {
                            d.overrun = true;
                            continue;
                        }
                        Some(libc::EAGAIN) => {}
                        _ => log::warn!("reading notifications: {e}"),
                    }
                    break;
                }
                let n = n as usize; // non-negative here
                if n > self.buf.len() {
                    d.overrun = true; // truncated: treat as lost
                    continue;
                }
                let msg = &self.buf[..n];
                if nft {
                    d.scan.nft(msg, own);
                } else {
                    d.scan.rtnl(msg, own);
                }
            }
        }
        if d.overrun {
            d.scan.note("notifications were lost");
        }
        if own {
            d.scan.finish_own();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        rtnl::message(kind, 0, 0, body)
    }

    fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
        let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(v);
        a.resize((a.len() + 3) & !3, 0);
        a
    }

    fn route(dst_len: u8, table: u8, proto: u8) -> Vec<u8> {
        vec![2, dst_len, 0, 0, table, proto, 0, 1, 0, 0, 0, 0]
    }

    fn nft(msg_type: u16, family: u8, table: &str) -> Vec<u8> {
        let mut body = vec![family, 0, 0, 0];
        body.extend(attr(1, format!("{table}\0").as_bytes()));
        msg((NFNL_SUBSYS_NFTABLES << 8) | msg_type, &body)
    }

    fn rtnl_scan(buf: &[u8], own: bool) -> Scan {
        let mut s = Scan::default();
        s.rtnl(buf, own);
        s
    }

    #[test]
    fn default_route_changes_count_own_routes_do_not() {
        assert!(
            rtnl_scan(&msg(RTM_NEWROUTE, &route(0, 254, 4)), false)
                .reason
                .is_some()
        );
        assert!(
            rtnl_scan(&msg(RTM_DELROUTE, &route(0, 254, 16)), true)
                .reason
                .is_some()
        );
        assert!(
            rtnl_scan(&msg(RTM_NEWROUTE, &route(24, 254, 2)), false)
                .reason
                .is_none()
        );
        assert!(
            rtnl_scan(&msg(RTM_NEWROUTE, &route(0, 255, 2)), false)
                .reason
                .is_none()
        );
        assert!(
            rtnl_scan(&msg(RTM_NEWROUTE, &route(0, 252, 197)), false)
                .reason
                .is_none()
        );
        assert!(
            rtnl_scan(&msg(RTM_DELROUTE, &route(0, 252, 197)), true)
                .reason
                .is_none()
        );
        assert!(
            rtnl_scan(&msg(RTM_DELROUTE, &route(0, 252, 197)), false)
                .reason
                .is_some()
        );
    }

    #[test]
    fn rta_table_overrides_the_header() {
        let mut body = route(0, 252, 4);
        body.extend(attr(RTA_TABLE, &255u32.to_ne_bytes()));
        assert!(rtnl_scan(&msg(RTM_NEWROUTE, &body), false).reason.is_none());
    }

    #[test]
    fn deleted_connroute_rules_and_links_count() {
        let mut ours = vec![2, 0, 0, 0, 252, 0, 0, 1, 0, 0, 0, 0];
        let foreign = ours.clone();
        ours.extend(attr(FRA_PROTOCOL, &[197]));
        assert!(rtnl_scan(&msg(RTM_DELRULE, &ours), false).reason.is_some());
        assert!(rtnl_scan(&msg(RTM_DELRULE, &ours), true).reason.is_none());
        assert!(
            rtnl_scan(&msg(RTM_DELRULE, &foreign), false)
                .reason
                .is_none()
        );
        assert!(
            rtnl_scan(&msg(RTM_NEWLINK, &[0; 16]), false)
                .reason
                .is_some()
        );
    }

    #[test]
    fn malformed_messages_are_counted_and_ignored() {
        for bad in [
            &[1u8, 2, 3][..],
            &msg(RTM_NEWROUTE, &[2, 0])[..],
            &[255; 40][..],
        ] {
            let s = rtnl_scan(bad, false);
            assert!(s.reason.is_none());
            assert_eq!(s.malformed, 1, "{bad:?}");
        }
        let mut s = Scan::default();
        s.nft(&msg(NFNL_SUBSYS_NFTABLES << 8, &[]), false);
        assert!(s.reason.is_none() && s.malformed == 1);
    }

    #[test]
    fn nft_events_on_our_table_only() {
        let mut s = Scan::default();
        s.nft(&nft(NFT_MSG_DELTABLE, NFPROTO_INET, "fw4"), false);
        s.nft(&nft(NFT_MSG_DELTABLE, 2, TABLE), false);
        s.nft(&nft(NFT_MSG_NEWGEN, NFPROTO_INET, TABLE), false);
        assert!(s.reason.is_none());
        s.nft(&nft(6, NFPROTO_INET, TABLE), false);
        assert!(s.reason.is_some());
    }

    #[test]
    fn own_transaction_is_ignored_unless_the_table_ends_deleted() {
        let mut own = Scan::default();
        for t in [NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE, 3, 6] {
            own.nft(&nft(t, NFPROTO_INET, TABLE), true);
        }
        own.finish_own();
        assert!(own.reason.is_none());
        own.nft(&nft(NFT_MSG_DELTABLE, NFPROTO_INET, TABLE), true);
        own.finish_own();
        assert!(own.reason.is_some());
    }
}
