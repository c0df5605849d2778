//! Policy routing over rtnetlink, synchronously: list, add, replace and
//! delete the default routes and ip rules connroute owns.
//!
//! Ownership is the routing protocol tag ([`RTPROT_CONNROUTE`]) on every
//! route and rule connroute creates; entries without it are never touched.
//! The wire format lives in [`super::rtnl`], reply checking in
//! [`super::dump`]; this module only does the I/O, bounded: each reply
//! datagram must arrive within [`RECV_TIMEOUT`] and each request, dump
//! restarts included, must finish within [`DEADLINE`]. A dump the kernel
//! flags inconsistent (`NLM_F_DUMP_INTR`, the table changed while it was
//! read) is restarted, at most [`DUMP_TRIES`] times in all.

use super::dump::{Collector, Fault, Progress, wait_readable, with_restarts};
use super::kernel::Link;
use super::rtnl::{self, Body, flags, kind};
use crate::config::Family;
#[cfg(doc)]
use crate::plan::RTPROT_CONNROUTE;
use crate::plan::{IpRule, Route};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Longest wait for one reply datagram (poll before each read).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time one request may take, dump restarts included.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How many times a dump is read before an inconsistent one is an error.
pub const DUMP_TRIES: u32 = 4;

/// A route connroute owns, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// The route in plan terms (device resolved to its name).
    pub route: Route,
    /// The message body as dumped, sent back verbatim to delete or restore
    /// it (what `ip route flush` and `ip route restore` do).
    raw: Vec<u8>,
}

/// Family and priority of each ip rule another owner made.
pub type ForeignRules = Vec<(Family, u32)>;

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
    /// The datagram being read (see [`recv_datagram`]).
    buf: Vec<u8>,
    /// A dump was left unfinished on `socket` (replies lost, or it failed
    /// half read): the kernel goes on with it there, refuses a new dump
    /// (EBUSY) and would put any other answer behind the old dump's data,
    /// so the next request first opens a fresh socket. Only then: a run
    /// that stops after the failure opens none.
    stale: bool,
}

/// A netlink socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`),
/// bound to a port of its own and connected to the kernel.
pub(crate) fn connected(protocol: isize) -> io::Result<Socket> {
    let mut socket = Socket::new(protocol)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    #[cfg(test)]
    tests::count_open();
    Ok(socket)
}

/// Replaces `socket` with a fresh one of `protocol` when `stale` says a
/// dump was left unfinished on it (the kernel goes on with that dump there
/// and refuses a new one, EBUSY); `what` names the socket in the error.
pub(super) fn reopen_if_stale(
    socket: &mut Socket,
    stale: &mut bool,
    protocol: isize,
    what: &str,
) -> io::Result<()> {
    if *stale {
        *socket = connected(protocol).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reopen the {what} socket after an unfinished dump: {e}"),
            )
        })?;
        *stale = false;
    }
    Ok(())
}

/// Room for the largest datagram read: the kernel fills dump datagrams
/// up to 32 KiB (`SKB_WITH_OVERHEAD(32768)`), other replies are smaller.
const DATAGRAM: usize = 64 << 10;

/// Reads one datagram from the netlink socket `fd` into `buf`, waiting at
/// most `wait`. Read at once when it is there (the kernel answers a request,
/// and fills the next datagram of a dump, before the call that asked for it
/// returns), and only then after poll(2): one system call per datagram
/// instead of poll, a peek for its size and the read. A datagram larger than
/// [`DATAGRAM`] is an error, never cut short.
pub fn recv_datagram(fd: RawFd, buf: &mut Vec<u8>, wait: Duration) -> io::Result<()> {
    #[cfg(test)]
    if let Some(errno) = tests::fail_this_one() {
        return Err(io::Error::from_raw_os_error(errno));
    }
    let end = Instant::now() + wait;
    buf.clear();
    buf.reserve(DATAGRAM);
    loop {
        // SAFETY: recv writes at most DATAGRAM bytes into `buf`'s spare
        // capacity, reserved above; MSG_TRUNC makes it return the whole
        // datagram's length, checked before `set_len`.
        let n = unsafe {
            let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
            libc::recv(fd, buf.as_mut_ptr().cast(), DATAGRAM, flags)
        };
        if let Ok(n) = usize::try_from(n) {
            if n > DATAGRAM {
                let what = format!("netlink reply of {n} bytes (at most {DATAGRAM} expected)");
                return Err(io::Error::new(io::ErrorKind::InvalidData, what));
            }
            // SAFETY: the kernel wrote these `n` bytes.
            unsafe { buf.set_len(n) };
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => {
                wait_readable(fd, end.saturating_duration_since(Instant::now()))?
            }
            _ => return Err(e),
        }
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

/// What a request of message type `kind` does, for error messages.
fn request_name(kind: u16) -> &'static str {
    match kind {
        kind::GETROUTE => "dumping routes",
        kind::GETRULE => "dumping ip rules",
        kind::NEWROUTE => "installing a route",
        kind::DELROUTE => "deleting a route",
        kind::NEWRULE => "adding an ip rule",
        kind::DELRULE => "deleting an ip rule",
        _ => "rtnetlink request",
    }
}

fn route_body(r: &Route) -> io::Result<Body> {
    let oif = r.device.as_deref().map(ifindex).transpose()?;
    Ok(rtnl::route_body(r, oif))
}

/// connroute's default routes among route messages (a [`Netlink::dump_all_routes`]).
pub fn ours(dump: &[Vec<u8>]) -> Vec<KernelRoute> {
    // Each interface named once (a name lookup is three system calls).
    let mut names: Vec<(u32, String)> = Vec::new();
    let mut name = |i: u32| match names.iter().find(|n| n.0 == i) {
        Some(n) => n.1.clone(),
        None => {
            let n = ifname(i).unwrap_or_else(|| format!("if{i}"));
            names.push((i, n.clone()));
            n
        }
    };
    dump.iter()
        .filter_map(|raw| {
            let (mut route, oif) = rtnl::decode_route(raw)?;
            route.device = oif.map(&mut name);
            Some(KernelRoute {
                route,
                raw: raw.clone(),
            })
        })
        .collect()
}

impl Netlink {
    /// Opens an rtnetlink socket in the current network namespace.
    pub fn open() -> io::Result<Netlink> {
        Ok(Netlink {
            socket: connected(NETLINK_ROUTE)?,
            seq: 0,
            buf: Vec::new(),
            stale: false,
        })
    }

    /// Sends one request and collects the bodies of its replies until the
    /// end of the dump or the ACK, by `deadline`.
    fn exchange(
        &mut self,
        kind: u16,
        extra: u16,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Vec<Vec<u8>>, Fault> {
        reopen_if_stale(
            &mut self.socket,
            &mut self.stale,
            NETLINK_ROUTE,
            "rtnetlink",
        )
        .map_err(|e| Fault::Kernel(e.raw_os_error().unwrap_or(libc::EIO)))?;
        self.seq = self.seq.wrapping_add(1);
        let mut replies = Collector::new(self.seq);
        let msg = rtnl::message(kind, flags::REQUEST | extra, self.seq, body);
        self.socket
            .send(&msg, 0)
            .map_err(|e| Fault::Kernel(e.raw_os_error().unwrap_or(libc::EIO)))?;
        loop {
            if Instant::now() >= deadline {
                let limit = DEADLINE.as_secs();
                return Err(Fault::TimedOut(format!(
                    "no complete answer within {limit} s"
                )));
            }
            let wait = RECV_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
            let fd = self.socket.as_raw_fd();
            if let Err(e) = recv_datagram(fd, &mut self.buf, wait) {
                return Err(match e.raw_os_error() {
                    _ if e.kind() == io::ErrorKind::TimedOut => {
                        Fault::TimedOut(format!("no reply within {} s", RECV_TIMEOUT.as_secs()))
                    }
                    // Replies were dropped: the dump is incomplete, and
                    // the rest of it still runs on this socket: it is read
                    // again on a fresh one.
                    Some(libc::ENOBUFS) => {
                        self.stale = true;
                        Fault::Lost
                    }
                    Some(e) => Fault::Kernel(e),
                    None => Fault::Malformed(e.to_string()),
                });
            }
            if replies.feed(&self.buf)? == Progress::Done {
                return Ok(replies.bodies);
            }
        }
    }

    /// [`Self::exchange`] with dump restarts and errors worded for the log.
    fn request(&mut self, kind: u16, extra: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + DEADLINE;
        // Only a dump is safe to send again; a change might apply twice.
        let tries = if extra & flags::DUMP != 0 {
            DUMP_TRIES
        } else {
            1
        };
        let r = with_restarts(request_name(kind), tries, || {
            self.exchange(kind, extra, body, deadline)
        });
        if r.is_err() && extra & flags::DUMP != 0 {
            // A dump left half read keeps running on this socket: the next
            // request gets a new one.
            self.stale = true;
        }
        r
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
        Ok(ours(&self.dump(kind::GETROUTE)?))
    }

    /// One dump of the ip rules of both families: those tagged as
    /// connroute's, and the family and priority of those others own.
    pub fn rules(&mut self) -> io::Result<(Vec<KernelRule>, ForeignRules)> {
        let mut ours = Vec::new();
        let mut foreign = Vec::new();
        for raw in self.dump(kind::GETRULE)? {
            if let Some(rule) = rtnl::decode_rule(&raw) {
                ours.push(KernelRule { rule, raw });
            } else if let Some(f) = rtnl::foreign_rule(&raw) {
                foreign.push(f);
            }
        }
        Ok((ours, foreign))
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

    /// Deletes a route by the message body the kernel dumped.
    pub fn delete_raw_route(&mut self, raw: &[u8]) -> io::Result<()> {
        self.request(kind::DELROUTE, flags::ACK, raw).map(drop)
    }

    /// Puts back a route read from the kernel earlier (rollback).
    pub fn restore_route(&mut self, r: &KernelRoute) -> io::Result<()> {
        let f = flags::ACK | flags::CREATE | flags::REPLACE;
        self.request(kind::NEWROUTE, f, &r.raw).map(drop)
    }

    /// Whether `via` is on a connected network (of `device`, if given), as
    /// `ip route get VIA` answers: the kernel's test for a next hop.
    pub fn reaches(&mut self, via: std::net::IpAddr, device: Option<&str>) -> io::Result<bool> {
        let oif = device.map(ifindex).transpose()?;
        let body = rtnl::get_request(via, None);
        match self.request(kind::GETROUTE, flags::ACK, body.bytes()) {
            Ok(replies) => Ok(replies.iter().any(|b| rtnl::on_link(b, oif))),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `via` is one of the host's own addresses (`ip route get`
    /// answers with a local route); `false` when the kernel does not say.
    /// With `device`, asked through it: a link-local address is the host's
    /// only on the link that holds it (`fe80::1` on another link does not
    /// stop `via fe80::1 dev DEVICE`).
    pub fn is_local(&mut self, via: std::net::IpAddr, device: Option<&str>) -> bool {
        let Ok(oif) = device.map(ifindex).transpose() else {
            return false;
        };
        let body = rtnl::get_request(via, oif);
        self.request(kind::GETROUTE, flags::ACK, body.bytes())
            .is_ok_and(|replies| replies.iter().any(|b| rtnl::local(b)))
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

/// Whether `device` exists and is administratively up (`SIOCGIFFLAGS`).
pub fn link_state(device: &str) -> Link {
    if ifindex(device).is_err() {
        return Link::Missing;
    }
    match if_flags(device) {
        None => Link::Missing,
        Some(f) if f & libc::IFF_UP as libc::c_short != 0 => Link::Up,
        Some(_) => Link::Down,
    }
}

/// Whether `device` is a loopback device (`lo`): the kernel refuses it as
/// the device of an IPv6 route with a next hop.
pub fn is_loopback(device: &str) -> bool {
    if_flags(device).is_some_and(|f| f & libc::IFF_LOOPBACK as libc::c_short != 0)
}

/// The interface flags of `device` (`SIOCGIFFLAGS`); `None` when it is
/// missing. All set (so "up", not "loopback") when they cannot be asked.
fn if_flags(device: &str) -> Option<libc::c_short> {
    // SAFETY: an ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(device.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    // SAFETY: a plain datagram socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        // Cannot tell: let the kernel decide when routing.
        return Some(libc::IFF_UP as libc::c_short);
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    Some(unsafe { req.ifr_ifru.ifru_flags })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::Write;

    thread_local! {
        /// The [`recv_datagram`]s of this thread that fail: after how many
        /// more, with which errno, and how many in a row.
        static FAIL_AFTER: Cell<Option<(u32, i32, u32)>> = const { Cell::new(None) };
        /// Netlink sockets this thread opened (rtnetlink and nfnetlink).
        static OPENED: Cell<u32> = const { Cell::new(0) };
    }

    /// Makes this thread's receive after `n` more fail with `errno`
    /// (ENOBUFS: as when the kernel dropped replies).
    pub(crate) fn fail_after(n: u32, errno: i32) {
        fail_next(n, errno, 1);
    }

    /// Makes `times` receives in a row, after `n` more, fail with `errno`.
    pub(crate) fn fail_next(n: u32, errno: i32, times: u32) {
        FAIL_AFTER.with(|l| l.set(Some((n, errno, times))));
    }

    /// The errno this receive fails with ([`fail_next`]), if it is one.
    pub(super) fn fail_this_one() -> Option<i32> {
        FAIL_AFTER.with(|l| match l.get() {
            Some((0, errno, times)) => {
                l.set((times > 1).then_some((0, errno, times - 1)));
                Some(errno)
            }
            Some((n, errno, times)) => {
                l.set(Some((n - 1, errno, times)));
                None
            }
            None => None,
        })
    }

    /// Counts a netlink socket opened by this thread.
    pub(crate) fn count_open() {
        OPENED.with(|c| c.set(c.get() + 1));
    }

    /// Netlink sockets this thread has opened so far.
    pub(crate) fn opened() -> u32 {
        OPENED.with(Cell::get)
    }

    #[test]
    fn a_dump_that_lost_replies_is_read_again_on_a_fresh_socket() {
        if crate::apply::tests::skipped_under_emulator("real rtnetlink") {
            return;
        }
        // A routing table too big for one datagram: the dump is still
        // running when its first datagram is lost.
        let r = in_own_netns(|| {
            let routes: String = (0..1500)
                .map(|i| {
                    format!(
                        "route add 10.{}.{}.0/24 dev lo table 100\n",
                        i / 256,
                        i % 256
                    )
                })
                .collect();
            if !run("ip", &["link", "set", "lo", "up"], "") {
                return None;
            }
            run("ip", &["-batch", "-"], &routes);
            let mut nl = Netlink::open().unwrap();
            let whole = nl.dump_all_routes().unwrap();
            let port = |nl: &Netlink| nl.socket.as_raw_fd();
            let before = local_port(port(&nl));
            let first = opened();
            fail_after(0, libc::ENOBUFS);
            let again = nl.dump_all_routes();
            let after = local_port(port(&nl));
            let lost = opened() - first;
            // A dump that fails otherwise is not restarted, but it leaves
            // no half-read dump in the way of the next request.
            fail_after(0, libc::EIO);
            let failed = nl.dump_all_routes().map(drop);
            let next = nl.dump_all_routes();
            // Replies lost on every try: one fresh socket per try after
            // the first, then one for the next request, not two each.
            let first = opened();
            fail_next(0, libc::ENOBUFS, DUMP_TRIES);
            let exhausted = nl.dump_all_routes().map(drop);
            let during = opened() - first;
            let last = nl.dump_all_routes();
            let checks = (failed, next, exhausted, during, last, opened() - first);
            Some((whole, again, before, after, lost, checks))
        });
        let Some((whole, again, before, after, lost, checks)) = r else {
            return;
        };
        let (failed, next, exhausted, during, last, exhausted_opened) = checks;
        assert!(whole.len() > 1500, "{} routes", whole.len());
        assert_eq!(again.unwrap(), whole, "read again, in full");
        assert_ne!(
            before, after,
            "read again on the socket the lost dump still runs on"
        );
        assert_eq!(lost, 1, "one fresh socket for the one lost datagram");
        assert_eq!(failed.unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(next.unwrap(), whole, "the next dump is refused");
        assert_eq!(exhausted.unwrap_err().raw_os_error(), Some(libc::ENOBUFS));
        assert_eq!(during, DUMP_TRIES - 1, "sockets opened by the failed dump");
        assert_eq!(last.unwrap(), whole, "the dump after it is refused");
        assert_eq!(exhausted_opened, DUMP_TRIES, "one more, for the next dump");
    }

    /// Runs `f` on a thread of its own in a network namespace of its own
    /// (commands it starts run there too; the namespace goes away with the
    /// thread); `None`, with a line saying so, where that is not allowed.
    pub(crate) fn in_own_netns<T: Send + 'static>(
        f: impl FnOnce() -> Option<T> + Send + 'static,
    ) -> Option<T> {
        let t = std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                eprintln!("skipped: no network namespace of its own (needs root)");
                return None;
            }
            f()
        });
        t.join().unwrap()
    }

    /// Runs `program ARGS` with `input` on its stdin; it must succeed.
    /// False, with a line saying so, when the program is not installed.
    pub(crate) fn run(program: &str, args: &[&str], input: &str) -> bool {
        let started = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .spawn();
        let mut c = match started {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("skipped: {program} is not installed");
                return false;
            }
            started => started.unwrap(),
        };
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "{program} {args:?}");
        true
    }

    /// The netlink port id a socket is bound to.
    pub(crate) fn local_port(fd: RawFd) -> u32 {
        // SAFETY: sockaddr_nl is plain data that getsockname fills.
        let mut a: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `a` and `len` are valid for the call.
        let r = unsafe { libc::getsockname(fd, (&raw mut a).cast(), &mut len) };
        assert_eq!(r, 0);
        a.nl_pid
    }

    #[test]
    fn a_link_local_address_is_the_hosts_only_on_its_own_link() {
        if crate::apply::tests::skipped_under_emulator("real rtnetlink") {
            return;
        }
        let r = in_own_netns(|| {
            let script = "link set lo up\n\
                link add d0 type veth peer name d0p\n\
                link add d1 type veth peer name d1p\n\
                link set d0 up\nlink set d0p up\nlink set d1 up\nlink set d1p up\n\
                addr add fe80::1/64 dev d1 nodad\n";
            if !run("ip", &["-batch", "-"], script) {
                return None;
            }
            let mut nl = Netlink::open().unwrap();
            let via = "fe80::1".parse().unwrap();
            // The address is the host's once veth's carrier is up, which
            // the kernel reports a moment after `link set up`.
            for _ in 0..100 {
                if nl.is_local(via, Some("d1")) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some((
                nl.is_local(via, None),
                nl.is_local(via, Some("d1")),
                nl.is_local(via, Some("d0")),
            ))
        });
        let Some((anywhere, own_link, other_link)) = r else {
            return;
        };
        assert!(anywhere && own_link, "fe80::1 is d1's");
        // The kernel takes `default via fe80::1 dev d0`: not local there.
        assert!(!other_link, "fe80::1 on d0 is a neighbour's");
    }

    #[test]
    fn every_receive_is_bounded_and_a_real_dump_decodes() {
        // qemu-user translates only part of rtnetlink (it refuses this
        // socket on big-endian MIPS): the byte-level tests cover MIPS.
        if crate::apply::tests::skipped_under_emulator("real rtnetlink") {
            return;
        }
        let mut nl = Netlink::open().unwrap();
        // Nothing was asked: the wait for a reply ends at its bound.
        let e = wait_readable(nl.socket.as_raw_fd(), Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let fd = nl.socket.as_raw_fd();
        let e = recv_datagram(fd, &mut nl.buf, Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // Read-only dumps of this namespace: every reply passes the checks.
        assert!(nl.dump(kind::GETROUTE).is_ok());
        assert!(nl.dump(kind::GETRULE).unwrap().len() >= 3);
    }
}
