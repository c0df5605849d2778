//! Checks and collects the replies to one rtnetlink request, datagram by
//! datagram; pure, so the unit tests feed it crafted byte buffers.
//!
//! A reply is trusted only whole: a message or attribute that does not fit
//! its container, or an attribute connroute reads with the wrong size, is an
//! error ([`Fault::Malformed`]), never a silent end of decoding that would
//! make an owned route look absent. A dump the kernel flags as changed while
//! being read (`NLM_F_DUMP_INTR`) is reported as [`Fault::Interrupted`] so
//! the caller restarts it. Lengths and integers are host byte order
//! (`from_ne_bytes`), as everywhere in [`super::rtnl`].

use super::rtnl::{self, flags, kind};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until the netlink socket `fd` has a datagram to read, at most
/// `wait`; a timeout is [`io::ErrorKind::TimedOut`]. poll(2) rather than
/// `SO_RCVTIMEO`: no `timeval` to size (32-bit musl's 64-bit `time_t`
/// selects `SO_RCVTIMEO_NEW`, which qemu-user refuses), and the wait can
/// never outlast the caller's deadline.
pub fn wait_readable(fd: RawFd, wait: Duration) -> io::Result<()> {
    let end = std::time::Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, its count, a finite timeout.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            n if n > 0 => return Ok(()),
            0 => return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply")),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Why the replies cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The kernel answered with this errno.
    Kernel(i32),
    /// The dump changed while it was read; restart it.
    Interrupted,
    /// The kernel dropped replies (ENOBUFS); restart the request (on a
    /// fresh socket: the rest of a dump still runs on the old one).
    Lost,
    /// The bytes do not parse; says what is wrong.
    Malformed(String),
    /// No answer in time; says which limit passed.
    TimedOut(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kernel(e) => write!(f, "{}", std::io::Error::from_raw_os_error(*e)),
            Fault::Interrupted => write!(f, "the kernel flagged the dump inconsistent"),
            Fault::Lost => write!(f, "the kernel dropped replies (ENOBUFS)"),
            Fault::Malformed(what) => write!(f, "malformed netlink reply: {what}"),
            Fault::TimedOut(what) => write!(f, "netlink timed out: {what}"),
        }
    }
}

/// Whether the request is answered completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More datagrams are to come.
    More,
    /// DONE or ACK received.
    Done,
}

/// The replies to request `seq` gathered so far.
#[derive(Debug, Default)]
pub struct Collector {
    /// Sequence number of the request; other messages are ignored.
    pub seq: u32,
    /// Bodies of the data messages, in order.
    pub bodies: Vec<Vec<u8>>,
    interrupted: bool,
}

const BODY_HDRLEN: usize = 12;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Attribute types connroute reads, with the exact size it expects.
fn expected_len(msg: u16, family: u8, attr: u16) -> Option<&'static [usize]> {
    const U32: &[usize] = &[4];
    match (msg, attr) {
        // RTA_OIF, RTA_PRIORITY, RTA_TABLE
        (kind::NEWROUTE, 4 | 6 | 15) => Some(U32),
        // RTA_GATEWAY
        (kind::NEWROUTE, 5) if family == AF_INET => Some(&[4]),
        (kind::NEWROUTE, 5) if family == AF_INET6 => Some(&[16]),
        // FRA_PRIORITY, FRA_FWMARK, FRA_SUPPRESS_PREFIXLEN, FRA_TABLE, FRA_FWMASK
        (kind::NEWRULE, 6 | 10 | 14 | 15 | 16) => Some(U32),
        // FRA_PROTOCOL
        (kind::NEWRULE, 21) => Some(&[1]),
        _ => None,
    }
}

fn malformed(what: String) -> Fault {
    Fault::Malformed(what)
}

/// Checks a route or rule body: its 12-byte header, that every attribute
/// lies inside the body, and the sizes of the attributes connroute reads.
pub fn validate(msg: u16, body: &[u8]) -> Result<(), Fault> {
    let name = if msg == kind::NEWROUTE {
        "route"
    } else {
        "rule"
    };
    if body.len() < BODY_HDRLEN {
        return Err(malformed(format!("{name} message of {} bytes", body.len())));
    }
    let family = body[0];
    let mut at = BODY_HDRLEN;
    while at < body.len() {
        let hdr = body
            .get(at..at + 4)
            .ok_or_else(|| malformed(format!("{name} attribute header cut short at byte {at}")))?;
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let attr = u16::from_ne_bytes([hdr[2], hdr[3]]) & 0x3fff;
        if len < 4 || at + len > body.len() {
            return Err(malformed(format!(
                "{name} attribute {attr} at byte {at} claims {len} bytes, {} left",
                body.len() - at
            )));
        }
        if let Some(sizes) = expected_len(msg, family, attr) {
            if !sizes.contains(&(len - 4)) {
                return Err(malformed(format!(
                    "{name} attribute {attr} has {} bytes, expected {}",
                    len - 4,
                    sizes[0]
                )));
            }
        }
        at += (len + 3) & !3;
    }
    Ok(())
}

impl Collector {
    /// A collector for the replies to request `seq`.
    pub fn new(seq: u32) -> Collector {
        Collector {
            seq,
            ..Collector::default()
        }
    }

    /// Takes one datagram. `Done` once the request is answered; an error
    /// when the datagram is malformed, the kernel refused, or the dump was
    /// flagged inconsistent (reported at its end, so the stream is drained).
    pub fn feed(&mut self, datagram: &[u8]) -> Result<Progress, Fault> {
        let mut got = Vec::new();
        let r = self.feed_with(datagram, |b| {
            got.push(b.to_vec());
            Ok(())
        });
        self.bodies.append(&mut got);
        r
    }

    /// [`Collector::feed`] handing each data message body to `each` as it
    /// is read instead of keeping it (a table dump is digested message by
    /// message); an error from `each` stops the dump.
    pub fn feed_with(
        &mut self,
        datagram: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), Fault>,
    ) -> Result<Progress, Fault> {
        let msgs = rtnl::replies(datagram)
            .ok_or_else(|| malformed("a message does not fit its datagram".into()))?;
        for m in msgs.into_iter().filter(|m| m.seq == self.seq) {
            self.interrupted |= m.flags & flags::DUMP_INTR != 0;
            match m.kind {
                kind::DONE => {
                    // Since Linux 4.x DONE carries the dump's error, if any.
                    if let Some(e) = rtnl::error_code(m.body).filter(|e| *e < 0) {
                        return Err(Fault::Kernel(e.saturating_neg()));
                    }
                    return self.finish();
                }
                kind::ERROR => {
                    return match rtnl::error_code(m.body) {
                        Some(0) => self.finish(),
                        Some(e) => Err(Fault::Kernel(e.saturating_neg())),
                        None => Err(malformed("truncated error message".into())),
                    };
                }
                k @ (kind::NEWROUTE | kind::NEWRULE) => {
                    validate(k, m.body)?;
                    each(m.body)?;
                }
                _ => each(m.body)?,
            }
        }
        Ok(Progress::More)
    }

    fn finish(&self) -> Result<Progress, Fault> {
        if self.interrupted {
            Err(Fault::Interrupted)
        } else {
            Ok(Progress::Done)
        }
    }
}

/// Runs `attempt` (one whole request) until it succeeds, restarting it
/// while the dump is interrupted, `tries` attempts in all; the last fault
/// becomes an `io::Error` saying what was being done (a kernel errno keeps
/// its code, so callers can tell ENOENT from the rest).
pub fn with_restarts<T>(
    what: &str,
    tries: u32,
    mut attempt: impl FnMut() -> Result<T, Fault>,
) -> io::Result<T> {
    let mut n = 0;
    loop {
        n += 1;
        let fault = match attempt() {
            Ok(v) => return Ok(v),
            Err(Fault::Interrupted | Fault::Lost) if n < tries => continue,
            Err(f) => f,
        };
        let kind = match fault {
            Fault::Kernel(e) => return Err(io::Error::from_raw_os_error(e)),
            Fault::Lost => return Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
            Fault::Interrupted => {
                let msg = format!(
                    "{what}: the kernel's tables kept changing during the dump \
                     ({n} attempts, NLM_F_DUMP_INTR)"
                );
                return Err(io::Error::other(msg));
            }
            Fault::Malformed(_) => io::ErrorKind::InvalidData,
            Fault::TimedOut(_) => io::ErrorKind::TimedOut,
        };
        return Err(io::Error::new(kind, format!("{what}: {fault}")));
    }
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
