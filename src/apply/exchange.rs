//! The exchange with one running child, for [`super`]: a single `poll`
//! loop writes its input, reads its output, watches for its exit and for a
//! stop request, until the deadline. The child's exit is seen even while
//! its pipes are still open (a grandchild may hold them): through a pidfd
//! (Linux ≥ 5.3), else by looking every few milliseconds. Once it has
//! exited, it stays a zombie until its process group has been killed, so
//! the group id cannot have been reused by then; then it is reaped.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::super::spawn::{KILL_GRACE, kill_and_reap};
use super::{MAX_STDERR, MAX_STDOUT, Output};

thread_local! {
    /// A descriptor that is readable while a stop is requested, or -1.
    static STOP: Cell<RawFd> = const { Cell::new(-1) };
}

/// See [`super::stop_when_readable`].
pub(super) fn set_stop(fd: RawFd) {
    STOP.with(|s| s.set(fd));
}

/// Owns the running child: kills its process group and reaps it unless it
/// was reaped already, whatever way the call is left.
pub(super) struct Guard {
    pid: libc::pid_t,
    /// Readable once the child has exited; `None` on kernels before 5.3.
    pidfd: Option<OwnedFd>,
    reaped: bool,
}

impl Guard {
    /// Takes charge of our child `pid`.
    pub(super) fn new(pid: libc::pid_t) -> Guard {
        // SAFETY: pidfd_open only reads its arguments; the pid is our
        // unreaped child, so it cannot name another process.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        #[cfg(test)]
        let fd = if super::tests::without_pidfd() {
            -1
        } else {
            fd
        };
        Guard {
            pid,
            // SAFETY: a new descriptor (close-on-exec), ours.
            pidfd: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            reaped: false,
        }
    }

    /// Whether the child has exited, leaving it unreaped (a zombie).
    pub(super) fn exited(&self) -> io::Result<bool> {
        loop {
            // SAFETY: siginfo_t is plain data that waitid fills.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            // SAFETY: waits for our own child without blocking or reaping.
            if unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) } == 0 {
                // SAFETY: waitid filled `info` (si_pid stays 0 when the
                // child is still running).
                return Ok(unsafe { info.si_pid() } != 0);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// For a child that has exited: kills what is left of its process
    /// group (grandchildren), then reaps it.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        // SAFETY: kill has no memory effects; the unreaped child's pid
        // still names its group.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        let mut status = 0;
        loop {
            // SAFETY: reaps our own child, a zombie: returns at once.
            match unsafe { libc::waitpid(self.pid, &mut status, 0) } {
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                -1 => return Err(io::Error::last_os_error()),
                _ => break,
            }
        }
        self.reaped = true;
        Ok(ExitStatus::from_raw(status))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.reaped {
            kill_and_reap(self.pid, KILL_GRACE);
        }
    }
}

/// Why an exchange ended before the child exited; the guard kills and
/// reaps it.
pub(super) enum Cut {
    /// The deadline passed.
    TimedOut,
    /// The stop descriptor became readable.
    Stopped,
    /// A stream went over its cap: its name and the cap.
    TooLong(&'static str, usize),
    /// Pipes, poll or wait failed.
    Io(io::Error),
}

impl From<io::Error> for Cut {
    fn from(e: io::Error) -> Cut {
        Cut::Io(e)
    }
}

/// Pipes still open towards and from the child, with what was read.
pub(super) struct Pipes<'a> {
    stdin: Option<File>,
    /// Input not yet written: the pieces left, the first from `at` on.
    input: &'a [&'a [u8]],
    at: usize,
    stdout: Option<File>,
    stderr: Option<File>,
    /// What the child printed so far.
    pub(super) out: Output,
    /// The stream that went over its cap, if any.
    overflow: Option<(&'static str, usize)>,
}

/// Reads what is there, at most `limit` bytes in all; `false` at end of
/// file, `Err(None)` past the limit.
fn drain(r: &mut impl Read, into: &mut Vec<u8>, limit: usize) -> Result<bool, Option<io::Error>> {
    // One page: a 16 KiB buffer made each call probe and fault in three
    // more pages of stack, for output that is empty on most runs.
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) if into.len() + n > limit => return Err(None),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Drains `r` into `into`; closes it at end of file; records `cap` in
/// `over` when the stream went past it.
fn read_into<R: Read>(
    r: &mut Option<R>,
    into: &mut Vec<u8>,
    cap: (usize, &'static str),
    over: &mut Option<(&'static str, usize)>,
) -> io::Result<()> {
    match r.as_mut().map(|r| drain(r, into, cap.0)) {
        Some(Ok(false)) => *r = None,
        Some(Err(Some(e))) => return Err(e),
        Some(Err(None)) => *over = Some((cap.1, cap.0)),
        _ => {}
    }
    Ok(())
}

/// Descriptors that became ready in one round besides the pipes.
struct Ready {
    exited: bool,
    stop: bool,
}

/// The first wait for the exit where there is no pidfd; it doubles up to
/// [`TICK`]. A child that closed its pipes by exiting is a zombie within
/// microseconds: connroute does not sleep a whole millisecond (or two)
/// after nearly every nft run.
const FIRST_TICK: Duration = Duration::from_micros(25);
/// How often the exit is looked for without a pidfd.
const TICK: Duration = Duration::from_millis(25);

impl<'a> Pipes<'a> {
    /// The child's pipes (non-blocking), with its input to write.
    pub(super) fn new(
        stdin: Option<File>,
        input: &'a [&'a [u8]],
        stdout: File,
        stderr: File,
    ) -> Pipes<'a> {
        Pipes {
            stdin,
            input,
            at: 0,
            stdout: Some(stdout),
            stderr: Some(stderr),
            out: Output::default(),
            overflow: None,
        }
    }

    fn open(&self) -> bool {
        self.stdin.is_some() || self.stdout.is_some() || self.stderr.is_some()
    }

    /// Runs the exchange until the child exits, `end` passes or a stop is
    /// requested. Once the child has exited: no more input, what its pipes
    /// hold is read, its process group is killed and it is reaped.
    pub(super) fn run(&mut self, guard: &mut Guard, end: Instant) -> Result<ExitStatus, Cut> {
        let mut tick = FIRST_TICK;
        let mut was_open = true;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Cut::TimedOut);
            }
            if was_open != self.open() {
                (was_open, tick) = (false, FIRST_TICK);
            }
            let pidfd = guard.pidfd.as_ref().map(AsRawFd::as_raw_fd);
            let wait = if pidfd.is_some() {
                left
            } else {
                left.min(tick)
            };
            let ready = self.step(wait, pidfd)?;
            if ready.stop {
                return Err(Cut::Stopped);
            }
            if let Some((stream, limit)) = self.overflow {
                return Err(Cut::TooLong(stream, limit));
            }
            if (pidfd.is_none() || ready.exited) && guard.exited()? {
                self.stdin = None;
                let over = &mut self.overflow;
                read_into(
                    &mut self.stdout,
                    &mut self.out.stdout,
                    (MAX_STDOUT, "output"),
                    over,
                )?;
                let err = (MAX_STDERR, "error output");
                read_into(&mut self.stderr, &mut self.out.stderr, err, over)?;
                if let Some((stream, limit)) = self.overflow {
                    return Err(Cut::TooLong(stream, limit));
                }
                return Ok(guard.reap()?);
            }
            tick = (tick * 2).min(TICK);
        }
    }

    /// One `poll` round over the pipes, `pidfd` and the stop descriptor,
    /// waiting at most `wait`.
    fn step(&mut self, wait: Duration, pidfd: Option<RawFd>) -> io::Result<Ready> {
        let fd = |f: Option<RawFd>, events| libc::pollfd {
            fd: f.unwrap_or(-1), // negative: ignored by poll
            events,
            revents: 0,
        };
        let stop = STOP.with(Cell::get);
        let mut fds = [
            fd(self.stdin.as_ref().map(AsRawFd::as_raw_fd), libc::POLLOUT),
            fd(self.stdout.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
            fd(self.stderr.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
            fd(pidfd, libc::POLLIN),
            fd((stop >= 0).then_some(stop), libc::POLLIN),
        ];
        // SAFETY: timespec is plain data (with padding on some targets).
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        ts.tv_sec = wait.as_secs().min(1 << 30) as _;
        ts.tv_nsec = wait.subsec_nanos() as _;
        // SAFETY: `fds` is a valid array of 5 pollfd for the whole call.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 5, &ts, std::ptr::null()) };
        let mut ready = Ready {
            exited: false,
            stop: false,
        };
        if n <= 0 {
            let e = io::Error::last_os_error();
            return match n < 0 && e.kind() != io::ErrorKind::Interrupted {
                true => Err(e),
                false => Ok(ready), // timeout or EINTR: the caller loops
            };
        }
        if fds[0].revents != 0 {
            self.write_some()?;
        }
        let over = &mut self.overflow;
        if fds[1].revents != 0 {
            let out = &mut self.out.stdout;
            read_into(&mut self.stdout, out, (MAX_STDOUT, "output"), over)?;
        }
        if fds[2].revents != 0 {
            let out = &mut self.out.stderr;
            read_into(&mut self.stderr, out, (MAX_STDERR, "error output"), over)?;
        }
        ready.exited = fds[3].revents != 0;
        ready.stop = fds[4].revents != 0;
        Ok(ready)
    }

    /// Writes as much input as the pipe takes, up to [`IOV`] pieces per
    /// system call; closes stdin when all is written or the child closed
    /// its end (its exit status tells why).
    fn write_some(&mut self) -> io::Result<()> {
        let Some(mut w) = self.stdin.take() else {
            return Ok(());
        };
        loop {
            while self.input.first().is_some_and(|p| self.at == p.len()) {
                self.input = &self.input[1..];
                self.at = 0;
            }
            let Some(first) = self.input.first() else {
                break;
            };
            let rest = self.input[1..].iter().take(IOV - 1);
            let slices: Vec<IoSlice> = std::iter::once(IoSlice::new(&first[self.at..]))
                .chain(rest.map(|p| IoSlice::new(p)))
                .collect();
            match w.write_vectored(&slices) {
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stdin = Some(w);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves past `n` written bytes.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let left = self.input[0].len() - self.at;
            if n < left {
                self.at += n;
                return;
            }
            n -= left;
            self.input = &self.input[1..];
            self.at = 0;
        }
    }
}

/// Most input pieces handed to one `writev`.
const IOV: usize = 256;
