//! The `NETLINK_NETFILTER` connection [`super::nfgen`] asks its questions
//! over: one socket for a whole run (replaced after a dump left
//! unfinished on it), replies matched by sequence number,
//! each datagram read with one `recv` ([`super::netlink::recv_datagram`]),
//! every answer bounded ([`RECV_TIMEOUT`] per datagram, [`DEADLINE`] per
//! request).

use super::dump::Fault;
use super::netlink::{DEADLINE, RECV_TIMEOUT, connected, recv_datagram, reopen_if_stale};
use super::nfgen::{
    NFT_MSG_NEWGEN, NFT_MSG_NEWTABLE, decode_gen, dump_into, gen_request, keep, msg_type,
    table_request,
};
use super::rtnl::{self, kind};
use netlink_sys::Socket;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

const NETLINK_NETFILTER: isize = 12;

/// A `NETLINK_NETFILTER` connection kept for a whole run: every question
/// (generation, table, dumps) goes over one socket (replaced only after a
/// dump left unfinished on it), not a socket each
/// (opening one takes four system calls and closing it a fifth). Replies
/// are matched by sequence number, so a late answer to an earlier
/// question is never taken for the current one.
pub struct Nfnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// A dump was left unfinished on `socket`: the next question first
    /// opens a fresh one (as [`super::netlink::Netlink`] does; a new dump
    /// there is refused, other answers come behind the old dump's data).
    stale: bool,
}

impl Nfnl {
    /// Opens the connection in the current network namespace.
    pub fn open() -> io::Result<Nfnl> {
        Ok(Nfnl {
            socket: connected(NETLINK_NETFILTER)?,
            seq: 0,
            buf: Vec::new(),
            stale: false,
        })
    }

    /// Replaces the socket when a dump was left unfinished on it.
    fn refresh(&mut self) -> io::Result<()> {
        reopen_if_stale(
            &mut self.socket,
            &mut self.stale,
            NETLINK_NETFILTER,
            "nfnetlink",
        )
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// One reply datagram, by `deadline`; a timeout says so.
    fn recv(&mut self, deadline: Instant) -> io::Result<&[u8]> {
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nfnetlink timed out (no reply within {} s, or over {} s in all)",
                    RECV_TIMEOUT.as_secs(),
                    DEADLINE.as_secs()
                ),
            )
        };
        if Instant::now() > deadline {
            return Err(timed_out());
        }
        let wait = RECV_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        match recv_datagram(self.socket.as_raw_fd(), &mut self.buf, wait) {
            Ok(()) => Ok(&self.buf),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(timed_out()),
            Err(e) => Err(e),
        }
    }

    /// Sends the request `build(seq)` and returns the body of the reply of
    /// type `want`; `None` when the kernel answers ENOENT.
    fn ask(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        want: u16,
    ) -> io::Result<Option<Vec<u8>>> {
        self.refresh()?;
        let seq = self.next_seq();
        self.socket.send(&build(seq), 0)?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let buf = self.recv(deadline)?;
            let msgs = rtnl::replies(buf).ok_or_else(malformed)?;
            for m in msgs.into_iter().filter(|m| m.seq == seq) {
                if m.kind == msg_type(want) {
                    return Ok(Some(m.body.to_vec()));
                }
                if m.kind == kind::ERROR {
                    if rtnl::error_code(m.body) == Some(-libc::ENOENT) {
                        return Ok(None);
                    }
                    return Err(kernel_error(m.body));
                }
            }
        }
    }

    /// The current nf_tables ruleset generation id.
    pub fn generation(&mut self) -> io::Result<u32> {
        let body = self
            .ask(gen_request, NFT_MSG_NEWGEN)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no generation"))?;
        decode_gen(&body)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "NEWGEN without an id"))
    }

    /// The `NFT_MSG_NEWTABLE` body of `table inet NAME`; `None` when absent.
    pub fn get_table(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.ask(|seq| table_request(seq, name), NFT_MSG_NEWTABLE)
    }

    /// True when `table inet NAME` exists.
    pub fn table_exists(&mut self, name: &str) -> io::Result<bool> {
        Ok(self.get_table(name)?.is_some())
    }

    /// Every message body of one dump (`build(seq)`), under one deadline.
    pub(super) fn dump(&mut self, build: impl Fn(u32) -> Vec<u8>) -> io::Result<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        self.dump_into(build, &mut all, Vec::clear, keep)?;
        Ok(all)
    }

    /// One dump (`build(seq)`) under one deadline, each message body fed to
    /// `each` with `st` as it arrives ([`dump_into`]: restarts from
    /// `reset(st)`).
    pub(super) fn dump_into<S>(
        &mut self,
        build: impl Fn(u32) -> Vec<u8>,
        st: &mut S,
        reset: impl Fn(&mut S),
        each: impl FnMut(&mut S, &[u8]) -> Result<(), Fault>,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let req = build(seq);
        let deadline = Instant::now() + DEADLINE;
        let fault = |e: io::Error| match e.kind() {
            io::ErrorKind::TimedOut => Fault::TimedOut(e.to_string()),
            _ => Fault::Kernel(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        let cell = std::cell::RefCell::new(&mut *self);
        let r = dump_into(
            seq,
            st,
            reset,
            || {
                let mut nf = cell.borrow_mut();
                nf.refresh().map_err(fault)?;
                nf.socket.send(&req, 0).map(drop).map_err(fault)
            },
            || {
                let mut nf = cell.borrow_mut();
                match nf.recv(deadline) {
                    Ok(datagram) => Ok(datagram.to_vec()),
                    // Replies were dropped: the rest of the dump still runs
                    // on this socket: it starts again on a fresh one.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        nf.stale = true;
                        Err(Fault::Lost)
                    }
                    Err(e) => Err(fault(e)),
                }
            },
            each,
        );
        if r.is_err() {
            // A dump left half read keeps running on this socket: the next
            // question gets a new one.
            self.stale = true;
        }
        r
    }
}

fn kernel_error(body: &[u8]) -> io::Error {
    match rtnl::error_code(body) {
        Some(e) if e < 0 => io::Error::from_raw_os_error(-e),
        _ => io::Error::new(
            io::ErrorKind::InvalidData,
            "nfnetlink: unexpected acknowledgement",
        ),
    }
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed nfnetlink reply")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_answers_every_question_and_skips_stale_replies() {
        if crate::apply::tests::skipped_under_emulator("real nfnetlink") {
            return;
        }
        // Read-only questions to this namespace's ruleset.
        let mut nf = Nfnl::open().unwrap();
        let first = nf.generation().unwrap();
        let none = "connroute-test-no-such-table";
        assert!(!nf.table_exists(none).unwrap());
        assert!(nf.table(none).unwrap().is_none());
        // A question whose answer (ENOENT) is never read: the next question
        // skips it by its sequence number instead of taking it for its own.
        let stale = table_request(nf.next_seq(), none);
        nf.socket.send(&stale, 0).unwrap();
        assert!(nf.generation().unwrap().wrapping_sub(first) < 1000);
    }

    #[test]
    fn a_dump_that_lost_replies_is_read_again_on_a_fresh_socket() {
        use crate::apply::netlink::DUMP_TRIES;
        use crate::apply::netlink::tests::{
            fail_after, fail_next, in_own_netns, local_port, opened, run,
        };
        if crate::apply::tests::skipped_under_emulator("real nfnetlink") {
            return;
        }
        // A table whose chains fill several datagrams, so the dump still
        // runs when its first datagram is lost.
        let r = in_own_netns(|| {
            let chains: String = (0..1500).map(|i| format!("chain c{i} {{}}\n")).collect();
            let table = format!("table inet lost {{\n{chains}}}\n");
            if !run("nft", &["-f", "-"], &table) {
                return None;
            }
            // NFT_MSG_GETCHAIN of `inet lost`.
            let chains = |seq| super::super::nfgen::dump_request(seq, 4, &[(1, b"lost\0")]);
            let mut nf = Nfnl::open().unwrap();
            let whole = nf.dump(chains).unwrap();
            let before = local_port(nf.socket.as_raw_fd());
            let opened_before = opened();
            fail_after(0, libc::ENOBUFS);
            let again = nf.dump(chains);
            let after = local_port(nf.socket.as_raw_fd());
            let lost = opened() - opened_before;
            // A dump that fails otherwise is not restarted, but it leaves
            // no half-read dump in the way of the next one.
            fail_after(0, libc::EIO);
            let failed = nf.dump(chains).map(drop);
            let next = nf.dump(chains).map(|d| d.len());
            // Replies lost on every try: the dump fails having opened one
            // fresh socket per try after the first; the next question
            // (not a dump) opens one more and is answered.
            let opened_before = opened();
            fail_next(0, libc::ENOBUFS, DUMP_TRIES);
            let exhausted = nf.dump(chains).map(drop);
            let during = opened() - opened_before;
            let question = nf.table_exists("lost");
            let total = opened() - opened_before;
            let checks = (failed, next, exhausted, during, question, total);
            Some((whole, again, before, after, lost, checks))
        });
        let Some((whole, again, before, after, lost, checks)) = r else {
            return;
        };
        let (failed, next, exhausted, during, question, total) = checks;
        assert_eq!(whole.len(), 1500);
        assert_eq!(again.unwrap(), whole, "read again, in full");
        assert_ne!(
            before, after,
            "read again on the socket the lost dump still runs on"
        );
        assert_eq!(lost, 1, "one fresh socket for the one lost datagram");
        assert_eq!(failed.unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(next.unwrap(), 1500, "the next dump is refused");
        assert_eq!(exhausted.unwrap_err().raw_os_error(), Some(libc::ENOBUFS));
        assert_eq!(during, DUMP_TRIES - 1, "sockets opened by the failed dump");
        assert!(question.unwrap(), "the question after it is answered");
        assert_eq!(total, DUMP_TRIES, "one more, for the next question");
    }
}
