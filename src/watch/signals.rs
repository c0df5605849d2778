//! SIGHUP, SIGTERM and SIGINT as readable events (signalfd), so the watcher
//! sees them in the same `poll` as the kernel's notifications and never
//! acts on them in the middle of an apply.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A signal the watcher acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: re-read the config and apply now.
    Reload,
    /// SIGTERM or SIGINT: exit (the service manager's stop flushes).
    Stop,
}

/// The blocked signals, readable from a descriptor.
pub struct Signals {
    fd: OwnedFd,
    /// Readable while SIGTERM or SIGINT is pending; never read (reading
    /// `fd` takes the signal).
    stop: OwnedFd,
}

/// The set of `signals`.
fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, filled by the libc calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// A non-blocking signalfd for `signals` (which must be blocked).
fn signalfd(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    // SAFETY: signalfd returns a new descriptor, ours on success.
    unsafe {
        let fd = libc::signalfd(-1, &sigset(signals), libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

impl Signals {
    /// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread (threads
    /// started later inherit the mask; helper programs start with an empty
    /// one) and opens non-blocking signalfds: one for all three, one for
    /// SIGTERM and SIGINT alone ([`Self::stop_fd`]). Call it before any
    /// thread is started.
    pub fn install() -> io::Result<Signals> {
        let all = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];
        // SAFETY: changes this thread's mask only.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigset(&all), std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Signals {
            fd: signalfd(&all)?,
            stop: signalfd(&[libc::SIGTERM, libc::SIGINT])?,
        })
    }

    /// Readable while a stop (SIGTERM, SIGINT) is pending, until [`Self::read`]
    /// takes it: for a helper program's poll loop to end early.
    pub fn stop_fd(&self) -> RawFd {
        self.stop.as_raw_fd()
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Every signal pending now, without blocking.
    pub fn read(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        loop {
            // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = unsafe { libc::read(self.fd(), (&raw mut info).cast(), size) };
            if n != size as isize {
                return out;
            }
            out.push(if info.ssi_signo == libc::SIGHUP as u32 {
                Signal::Reload
            } else {
                Signal::Stop
            });
        }
    }
}
