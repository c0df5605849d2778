//! Runs a helper program (nft, ubus) under one deadline that covers the
//! whole exchange: writing its input, reading its output and waiting for it
//! to exit. All three happen in one `poll` loop (module `exchange`), so a child
//! that never reads its stdin (a batch larger than the 64 KiB pipe buffer)
//! or never exits cannot stall the caller past the deadline; the loop also
//! sees the child exit while a grandchild still holds its output, and a
//! stop request ([`stop_when_readable`]).
//!
//! The child cannot outlive connroute: it runs in its own process group,
//! whose members are killed on every path out of [`run`] or
//! [`Running::finish`], success included (before the child is reaped, so
//! the group id is still its own), and when a [`Running`] is dropped
//! unfinished (deadline, I/O error, unwinding: the guard's `Drop`; the
//! child is then reaped, waiting at most 2 s), and it asks the kernel for
//! `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), so a `kill -9` of
//! connroute does not leave an `nft` behind to commit a stale table later.
//! The death signal is tied to the thread that started the child
//! ([`super::spawn`], without copying connroute): [`start`] starts it from
//! the calling thread, which must outlive the [`Running`] (connroute is
//! single-threaded).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::spawn::spawn;

#[path = "exchange.rs"]
mod exchange;
use exchange::{Cut, Guard, Pipes};

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
    /// connroute was asked to stop ([`stop_when_readable`]); the program
    /// was killed.
    Stopped {
        /// The program.
        program: String,
        /// What it was doing.
        what: String,
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
                let (after, input) = (seconds(*after), *input);
                write!(f, "{program} timed out after {after} while {what}")?;
                match input {
                    0 => Ok(()),
                    n => write!(f, " ({})", size(n)),
                }
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
            ChildError::Stopped { program, what } => {
                write!(
                    f,
                    "{program} was killed while {what}: connroute is stopping"
                )
            }
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

/// A helper program started ahead of its input: [`start`] it as soon as
/// it is known to be needed, [`Running::finish`] it once its input is
/// ready. A program that reads its whole input before acting (nft) does
/// nothing until then, so its start-up overlaps connroute's own work.
/// Dropping it unfinished kills its process group and reaps it: an nft
/// that never saw the end of its input commits nothing.
pub struct Running {
    // First: fields drop in order, so the child is killed before its stdin
    // closes; it never sees the end of an input it was not fed.
    guard: Guard,
    program: String,
    what: String,
    started: Instant,
    stdin: Option<File>,
    stdout: File,
    stderr: File,
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
        guard: Guard::new(child.pid),
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
    /// Whether the child has already exited (or cannot be asked): one
    /// started ahead of its input that died while it waited.
    pub fn exited(&self) -> bool {
        self.guard.exited().unwrap_or(true)
    }

    /// Counts [`Running::finish`]'s deadline from now instead of from the
    /// start: for a child started ahead that waited for its input.
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

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
            guard,
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
        let mut pipes = Pipes::new(stdin, input, stdout, stderr);
        // Bound after the pipes, so dropped before them on every way out:
        // the child is killed before its stdin closes (a cut input must not
        // reach it as a complete one).
        let mut guard = guard;
        let status = match pipes.run(&mut guard, end) {
            Ok(status) => status,
            Err(Cut::Io(error)) => return Err(io_err(error)),
            Err(Cut::TimedOut) => {
                return Err(ChildError::TimedOut {
                    program,
                    what,
                    after: deadline,
                    input: len,
                });
            }
            Err(Cut::Stopped) => return Err(ChildError::Stopped { program, what }),
            Err(Cut::TooLong(stream, limit)) => {
                return Err(ChildError::TooLong {
                    program,
                    what,
                    stream,
                    limit,
                });
            }
        };
        outcome(status, pipes.out, program, &what)
    }
}

/// Makes every helper this thread runs end early while `fd` is readable
/// (-1: never): its process group is killed and the call fails with
/// [`ChildError::Stopped`]. `connroute watch` passes a signalfd of SIGTERM
/// and SIGINT, readable while one is pending (nothing here reads it).
pub fn stop_when_readable(fd: RawFd) {
    exchange::set_stop(fd);
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
