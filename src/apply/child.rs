//! Runs a helper program (nft, ubus) under one deadline that covers the
//! whole exchange: writing its input, reading its output and waiting for it
//! to exit. All three happen in one `poll` loop, so a child that never reads
//! its stdin (a batch larger than the 64 KiB pipe buffer) or never exits
//! cannot stall the caller past the deadline.
//!
//! The child cannot outlive connroute: it runs in its own process group,
//! whose members are killed on every path out of [`run`] or
//! [`Running::finish`], and when a [`Running`] is dropped unfinished
//! (deadline, I/O error, unwinding: the guard's `Drop`; the child is then
//! reaped, waiting at most 2 s), and it asks the kernel for `SIGKILL` when its
//! parent dies (`PR_SET_PDEATHSIG`), so a `kill -9` of connroute does not
//! leave an `nft` behind to commit a stale table later. The death signal is
//! tied to the thread that started the child ([`super::spawn`], without
//! copying connroute): [`start`] starts it from the calling thread, which
//! must outlive the [`Running`] (connroute is single-threaded).

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::spawn::spawn;

/// One call of a helper program.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The program, as configured (`nft`, `/usr/sbin/nft`).
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [&'a str],
    /// Bytes fed to its stdin (stdin is `/dev/null` when empty).
    pub input: &'a [u8],
    /// Longest time the whole exchange may take.
    pub deadline: Duration,
    /// What the call does, for error messages ("loading the ruleset").
    pub what: &'a str,
}

/// What a successful call printed.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error (warnings of a successful run).
    pub stderr: Vec<u8>,
}

/// Why a call failed. Every variant names the program and what it was doing.
#[derive(Debug)]
pub enum ChildError {
    /// The program could not be started (missing, not executable).
    Spawn {
        /// The program.
        program: String,
        /// The `exec` error.
        error: io::Error,
    },
    /// The deadline passed; the child was killed and reaped.
    TimedOut {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// The deadline it missed.
        after: Duration,
        /// Size of its input in bytes.
        input: usize,
    },
    /// The program ran and exited non-zero: it refused its input.
    Refused {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// Its exit code.
        code: i32,
        /// Its stderr (or stdout when stderr is empty), trimmed.
        message: String,
    },
    /// The program died from a signal.
    Killed {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// The signal number.
        signal: i32,
    },
    /// Talking to the program failed (pipes, poll, wait).
    Io {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// The error.
        error: io::Error,
    },
    /// The program printed more than connroute keeps; it was killed.
    TooLong {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// "output" or "error output".
        stream: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The program succeeded but its output could not be understood.
    BadOutput {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
        /// What is wrong with the output.
        detail: String,
    },
}

impl ChildError {
    /// Exit code for a command that checks user input with this program:
    /// 2 when the program looked at the input and said no ([`Self::Refused`]),
    /// 1 (runtime failure) for everything else, timeouts included. Callers
    /// that feed a program their own data (apply) report every failure as 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ChildError::Refused { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the program could not be found or executed at all (not: it
    /// was started but did not reach exec in time).
    pub fn not_started(&self) -> bool {
        matches!(self, ChildError::Spawn { error, .. } if error.kind() != io::ErrorKind::TimedOut)
    }
}

/// `30 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        // Integer arithmetic: float formatting costs ~12 KiB of binary.
        format!("{}.{} s", d.as_secs(), d.subsec_millis() / 100)
    }
}

/// `900 B`, `128 KiB`, `16 MiB`.
fn size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n < 1024 {
        format!("{n} B")
    } else {
        format!("{} KiB", n.div_ceil(1024))
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Spawn { program, error } => write!(f, "cannot run {program}: {error}"),
            ChildError::TimedOut {
                program,
                what,
                after,
                input,
            } => {
                write!(
                    f,
                    "{program} timed out after {} while {what}",
                    seconds(*after)
                )?;
                if *input > 0 {
                    write!(f, " ({})", size(*input))?;
                }
                Ok(())
            }
            ChildError::Refused {
                program,
                what,
                code,
                message,
            } => write!(
                f,
                "{program} failed (exit status {code}) while {what}: {message}"
            ),
            ChildError::Killed {
                program,
                what,
                signal,
            } => write!(f, "{program} was killed by signal {signal} while {what}"),
            ChildError::Io {
                program,
                what,
                error,
            } => write!(f, "{program}: I/O error while {what}: {error}"),
            ChildError::TooLong {
                program,
                what,
                stream,
                limit,
            } => write!(
                f,
                "{program}: {stream} exceeds {} while {what}",
                size(*limit)
            ),
            ChildError::BadOutput {
                program,
                what,
                detail,
            } => write!(
                f,
                "{program} printed unreadable output while {what}: {detail}"
            ),
        }
    }
}

impl std::error::Error for ChildError {}

impl From<ChildError> for String {
    fn from(e: ChildError) -> String {
        e.to_string()
    }
}

/// Owns the running child: kills its process group and reaps it unless it
/// was reaped already, whatever way [`run`] is left.
struct Guard {
    pid: libc::pid_t,
    reaped: bool,
}

impl Guard {
    /// The exit status if the child has exited (reaping it), else `None`.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child without blocking.
            match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
                0 => return Ok(None),
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                -1 => return Err(io::Error::last_os_error()),
                _ => {
                    self.reaped = true;
                    return Ok(Some(ExitStatus::from_raw(status)));
                }
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Unreaped, the child's pid still names its process group.
        // SAFETY: kill has no memory effects; group and pid are our child's.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            libc::kill(self.pid, libc::SIGKILL);
        }
        // SIGKILL lands at once unless the child is stuck in the kernel
        // (D state); do not wait for that forever: it is reaped by init
        // once connroute exits.
        let mut pause = Duration::from_millis(1);
        let give_up = Instant::now() + KILL_GRACE;
        while matches!(self.try_wait(), Ok(None)) && Instant::now() < give_up {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// How long a killed child is waited for before it is left to init.
const KILL_GRACE: Duration = Duration::from_secs(2);

fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Most standard output kept from one child (a full `nft list` of a big
/// ruleset is far below); more and the child is killed.
pub const MAX_STDOUT: usize = 16 << 20;
/// Most standard error kept from one child.
pub const MAX_STDERR: usize = 64 << 10;

/// Pipes still open towards and from the child, with what was read.
struct Pipes<'a> {
    stdin: Option<File>,
    /// Input not yet written: the pieces left, the first from `at` on.
    input: &'a [&'a [u8]],
    at: usize,
    stdout: Option<File>,
    stderr: Option<File>,
    out: Output,
    /// The stream that went over its cap, if any.
    overflow: Option<(&'static str, usize)>,
}

/// Reads what is there, at most `limit` bytes in all; `false` at end of
/// file, `Err(None)` past the limit.
fn drain(r: &mut impl Read, into: &mut Vec<u8>, limit: usize) -> Result<bool, Option<io::Error>> {
    let mut buf = [0u8; 16 * 1024];
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

impl Pipes<'_> {
    fn open(&self) -> bool {
        self.stdin.is_some() || self.stdout.is_some() || self.stderr.is_some()
    }

    /// One `poll` round, waiting at most `left`; `Ok(false)` when it timed out.
    fn step(&mut self, left: Duration) -> io::Result<bool> {
        let fd = |f: Option<i32>, events| libc::pollfd {
            fd: f.unwrap_or(-1), // negative: ignored by poll
            events,
            revents: 0,
        };
        let mut fds = [
            fd(self.stdin.as_ref().map(AsRawFd::as_raw_fd), libc::POLLOUT),
            fd(self.stdout.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
            fd(self.stderr.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
        ];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of 3 pollfd for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(true)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(false);
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
        Ok(true)
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

/// Waits for the exit of a child whose pipes are closed, until `deadline`.
/// A child that closed them by exiting is a zombie within microseconds:
/// the first pauses are short, so connroute does not sleep a whole
/// millisecond (or two) after nearly every nft run.
fn wait(g: &mut Guard, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_micros(25);
    loop {
        if let Some(status) = g.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A helper program started ahead of its input: [`start`] it as soon as
/// it is known to be needed, [`Running::finish`] it once its input is
/// ready. A program that reads its whole input before acting (nft) does
/// nothing until then, so its start-up overlaps connroute's own work.
/// Dropping it unfinished kills its process group and reaps it: an nft
/// that never saw the end of its input commits nothing.
pub struct Running {
    program: String,
    what: String,
    started: Instant,
    stdin: Option<File>,
    stdout: File,
    stderr: File,
    guard: Guard,
}

/// Longest wait for a child started by [`start`] to reach exec (it takes
/// microseconds; the exchange's own deadline is not known yet).
const EXEC_LIMIT: Duration = Duration::from_secs(10);

/// Starts `program` with `args` (stdin a pipe when `piped_stdin`, else
/// `/dev/null`) for `what` (error messages); see [`Running`]. A child that
/// does not reach exec within 10 s is killed.
pub fn start(
    program: &Path,
    args: &[&str],
    piped_stdin: bool,
    what: &str,
) -> Result<Running, ChildError> {
    let started = Instant::now();
    start_by(program, args, piped_stdin, what, started + EXEC_LIMIT)
}

/// [`start`], killing a child that has not reached exec by `exec_by`.
fn start_by(
    program: &Path,
    args: &[&str],
    piped_stdin: bool,
    what: &str,
    exec_by: Instant,
) -> Result<Running, ChildError> {
    let started = Instant::now();
    let name = program.display().to_string();
    let child = spawn(program, args, piped_stdin, exec_by).map_err(|error| ChildError::Spawn {
        program: name.clone(),
        error,
    })?;
    let running = Running {
        program: name,
        what: what.to_string(),
        started,
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        guard: Guard {
            pid: child.pid,
            reaped: false,
        },
    };
    let nonblocking = [
        running.stdin.as_ref().map(set_nonblocking),
        Some(set_nonblocking(&running.stdout)),
        Some(set_nonblocking(&running.stderr)),
    ];
    for r in nonblocking.into_iter().flatten() {
        r.map_err(|error| ChildError::Io {
            program: running.program.clone(),
            what: running.what.clone(),
            error,
        })?;
    }
    Ok(running)
}

impl Running {
    /// Feeds `input` (its pieces in order, then end of file), reads the
    /// output and waits for the exit, all within `deadline` counted from
    /// [`start`]; see the module docs. Input for a child started without
    /// a stdin pipe is an error.
    pub fn finish(self, input: &[&[u8]], deadline: Duration) -> Result<Output, ChildError> {
        let Running {
            program,
            what,
            started,
            stdin,
            stdout,
            stderr,
            mut guard,
        } = self;
        let len: usize = input.iter().map(|p| p.len()).sum();
        let io_err = |error| ChildError::Io {
            program: program.clone(),
            what: what.clone(),
            error,
        };
        if stdin.is_none() && len > 0 {
            return Err(io_err(io::Error::from_raw_os_error(libc::EPIPE)));
        }
        // checked: a huge timeout means "about forever", not a panic.
        let end = started
            .checked_add(deadline)
            .unwrap_or(started + Duration::from_secs(1 << 30));
        let mut pipes = Pipes {
            stdin,
            input,
            at: 0,
            stdout: Some(stdout),
            stderr: Some(stderr),
            out: Output::default(),
            overflow: None,
        };
        let timed_out = || ChildError::TimedOut {
            program: program.clone(),
            what: what.clone(),
            after: deadline,
            input: len,
        };
        while pipes.open() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || !pipes.step(left).map_err(io_err)? {
                return Err(timed_out());
            }
            if let Some((stream, limit)) = pipes.overflow {
                // The guard kills and reaps the child.
                return Err(ChildError::TooLong {
                    program,
                    what,
                    stream,
                    limit,
                });
            }
        }
        let Some(status) = wait(&mut guard, end).map_err(io_err)? else {
            return Err(timed_out());
        };
        outcome(status, pipes.out, program, &what)
    }
}

/// Runs `req` to completion or to its deadline: [`start`], then
/// [`Running::finish`] with its input as one piece.
pub fn run(req: &Request) -> Result<Output, ChildError> {
    let piped = !req.input.is_empty();
    let now = Instant::now();
    let exec_by = now.checked_add(req.deadline).unwrap_or(now + EXEC_LIMIT);
    start_by(req.program, req.args, piped, req.what, exec_by)?.finish(&[req.input], req.deadline)
}

/// The result of a call from the child's exit status and output.
fn outcome(
    status: ExitStatus,
    out: Output,
    program: String,
    what: &str,
) -> Result<Output, ChildError> {
    if status.success() {
        return Ok(out);
    }
    let what = what.to_string();
    let Some(code) = status.code() else {
        let signal = status.signal().unwrap_or(0);
        return Err(ChildError::Killed {
            program,
            what,
            signal,
        });
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let message = match err.trim() {
        "" => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        t => t.to_string(),
    };
    Err(ChildError::Refused {
        program,
        what,
        code,
        message,
    })
}

#[cfg(test)]
#[path = "child_tests.rs"]
pub(crate) mod tests;
