//! Starts a helper program without copying connroute: `clone` with
//! `CLONE_VM | CLONE_VFORK` (what `posix_spawn` does) instead of the `fork`
//! that `std::process::Command` needs for a `pre_exec` hook. A fork copies
//! the page tables of the whole process (0.4 ms for a 4 MiB connroute on a
//! 2-core VM, 7 ms more at the 60 MiB of a 10,000-rule config) only for
//! the child to throw them away at exec. Unlike `posix_spawn`, the child
//! still gets what [`super::child`] promises before it execs: its own
//! process group and `SIGKILL` when connroute dies (`PR_SET_PDEATHSIG`).
//!
//! The child runs on a stack of its own in connroute's memory until it
//! execs. It makes raw system calls only (`libc::syscall`, never a libc
//! wrapper that may take a lock: musl's `sigaction` locks for `SIGABRT`)
//! on data the parent prepared (and libc's `environ`, which nothing in
//! connroute changes: clippy.toml forbids the calls that would), and
//! allocates nothing: under qemu-user,
//! `CLONE_VFORK` is a plain fork, and a fork taken while another thread
//! holds a libc lock would leave the child waiting for it forever. All
//! signals stay blocked from before the clone until the child has reset to
//! the default every signal the parent found handled (plus `SIGPIPE`, as
//! `Command` does), so no handler of connroute's ever runs in it; it execs
//! with an empty signal mask. An exec failure comes back through a
//! close-on-exec pipe (as musl's `posix_spawn` does). Where the clone was
//! a real `CLONE_VM | CLONE_VFORK` (the child marks the shared context just
//! before its exec), the parent resumes only once the exec is past its
//! point of no return or the child has written its errno and exited: one
//! look at the pipe tells which, and the parent goes on while the kernel
//! finishes loading the program. Where `CLONE_VFORK` is emulated by a fork
//! (qemu-user: the mark never reaches the parent), the parent waits for the
//! report until the caller's deadline, then kills and reaps the child.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A started child: its pid and the parent's ends of its pipes.
pub struct Spawned {
    /// Process id (also its process group id).
    pub pid: libc::pid_t,
    /// Its standard input, when it was asked for (else `/dev/null`).
    pub stdin: Option<File>,
    /// Its standard output.
    pub stdout: File,
    /// Its standard error.
    pub stderr: File,
}

/// Where a bare program name is looked for when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of stack the child runs on until it execs.
const STACK: usize = 64 * 1024;

/// The kernel's signal set size (`_NSIG / 8`), the last argument of
/// `rt_sigaction` and `rt_sigprocmask`: 128 signals on MIPS, 64 elsewhere.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const SIGSET_SIZE: c_long = 16;
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
const SIGSET_SIZE: c_long = 8;

/// Highest signal number the kernel has (`_NSIG`).
const NSIG: usize = SIGSET_SIZE as usize * 8;

/// All zero: an empty kernel signal set, and a kernel `struct sigaction`
/// meaning `SIG_DFL`, no flags, empty mask whatever the field order (MIPS
/// puts `sa_flags` first). 64 bytes, more than either is on any target
/// (x86_64 and mips64: 32).
static ZEROES: [u64; 8] = [0; 8];

/// `program` as exec will find it: as given when it has a slash, else the
/// first executable regular file of that name in `PATH` (looked up once
/// here, not by failed execs in the child).
pub fn resolve(program: &Path) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        let Ok(c) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a valid C string; access only reads it.
        let executable = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
        if executable && candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOENT))
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The signals the child must set to the default before it unblocks
/// signals: every one with a handler, those libc will not tell about (its
/// own, 32-34), and `SIGPIPE` (ignored by Rust's runtime; an ignored
/// signal stays ignored across exec). Bit `n - 1` is signal `n`. Asked in
/// the parent, through libc, before the clone.
fn handled_signals() -> [u64; 2] {
    let mut set = [0u64; 2];
    for sig in 1..=NSIG.min(libc::SIGRTMAX() as usize) {
        let s = sig as c_int;
        if s == libc::SIGKILL || s == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction only fills `old`, plain data.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        let known = unsafe { libc::sigaction(s, ptr::null(), &mut old) } == 0;
        let default = old.sa_sigaction == libc::SIG_DFL;
        let ignored = old.sa_sigaction == libc::SIG_IGN && s != libc::SIGPIPE;
        if !known || !(default || ignored) {
            set[(sig - 1) / 64] |= 1 << ((sig - 1) % 64);
        }
    }
    set
}

/// What the child needs, prepared by the parent (no allocation after
/// clone); `envp` is libc's `environ`.
struct Ctx {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// Become the child's descriptors 0, 1 and 2.
    fds: [c_int; 3],
    /// Write end of the error pipe (close-on-exec).
    report: c_int,
    parent: libc::pid_t,
    /// Signals to reset to the default ([`handled_signals`]).
    reset: [u64; 2],
    /// Set by the child just before its exec; seen by the parent only when
    /// the two share memory (a real `CLONE_VM`).
    execing: AtomicBool,
    /// Test only: block before exec (reading stdin) so the deadline ends
    /// the wait.
    #[cfg(test)]
    stall: bool,
}

/// The child: prepares and execs; on failure reports errno and exits 127.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Ctx`, alive until the child execs or
    // exits (the parent waits for either on the error pipe).
    let c = unsafe { &*(arg as *const Ctx) };
    // SAFETY: see `exec`.
    let err = unsafe { exec(c) };
    let bytes = err.to_ne_bytes();
    // SAFETY: writes 4 bytes from a local buffer, then exits (`_exit` is
    // the exit_group system call on musl and glibc).
    unsafe {
        sys(
            libc::SYS_write,
            [c.report as c_long, bytes.as_ptr() as c_long, 4],
        );
        libc::_exit(127)
    }
}

/// A raw system call (no lock, no cancellation point); sets errno on error.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn sys<const N: usize>(nr: c_long, a: [c_long; N]) -> c_long {
    let a = |i: usize| a.get(i).copied().unwrap_or(0);
    // SAFETY: the caller's.
    unsafe { libc::syscall(nr, a(0), a(1), a(2), a(3), a(4)) }
}

fn errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Runs in the child with every signal blocked: default handlers, own
/// process group, death signal, descriptors 0-2, empty mask, exec. Returns
/// errno when a step fails. Raw system calls only (see the module docs).
///
/// # Safety
/// Only from [`child`], on the context the parent prepared.
unsafe fn exec(c: &Ctx) -> c_int {
    let zero = ZEROES.as_ptr() as c_long;
    // SAFETY (whole body): system calls on the prepared context and on
    // `ZEROES`, which the kernel only reads.
    unsafe {
        for sig in 1..=NSIG {
            if c.reset[(sig - 1) / 64] >> ((sig - 1) % 64) & 1 != 0 {
                sys(
                    libc::SYS_rt_sigaction,
                    [sig as c_long, zero, 0, SIGSET_SIZE],
                );
            }
        }
        let death = [libc::PR_SET_PDEATHSIG as c_long, libc::SIGKILL as c_long];
        if sys(libc::SYS_setpgid, [0, 0]) != 0 || sys(libc::SYS_prctl, death) != 0 {
            return errno();
        }
        // The parent may have died before the death signal was armed.
        if sys(libc::SYS_getppid, []) != c.parent as c_long {
            return libc::ESRCH;
        }
        #[cfg(test)]
        if c.stall {
            let mut b = 0u8;
            sys(
                libc::SYS_read,
                [c.fds[0] as c_long, &raw mut b as c_long, 1],
            );
        }
        for (to, &fd) in c.fds.iter().enumerate() {
            let (fd, to) = (fd as c_long, to as c_long);
            let ok = if fd == to {
                sys(libc::SYS_fcntl, [fd, libc::F_SETFD as c_long, 0]) == 0
            } else {
                sys(libc::SYS_dup3, [fd, to, 0]) == to
            };
            if !ok {
                return errno();
            }
        }
        let unblock = [libc::SIG_SETMASK as c_long, zero, 0, SIGSET_SIZE];
        sys(libc::SYS_rt_sigprocmask, unblock);
        let (path, argv, envp) = (c.path as c_long, c.argv as c_long, c.envp as c_long);
        c.execing.store(true, Ordering::Release);
        sys(libc::SYS_execve, [path, argv, envp]);
        errno()
    }
}

/// Program path and argv as C strings, with the null-terminated pointer
/// array exec takes (pointing into them).
struct Exec {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
}

unsafe extern "C" {
    /// The process environment (libc's). Passed to the child as it is, not
    /// copied: nothing in connroute changes its environment (clippy.toml
    /// disallows `set_var`, `remove_var` and libc's setters), so the array
    /// stays as libc made it. Mutable as libc sees it (std declares it so).
    static mut environ: *const *const c_char;
}

fn prepare(program: &Path, args: &[&str]) -> io::Result<Exec> {
    let path = cstring(resolve(program)?.as_os_str())?;
    let mut strings = vec![cstring(program.as_os_str())?];
    for a in args {
        strings.push(cstring(OsStr::new(a))?);
    }
    let argv = strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([ptr::null()])
        .collect();
    Ok(Exec {
        path,
        _strings: strings,
        argv,
    })
}

/// Starts `program` with `args`; stdin is a pipe when `piped_stdin`, else
/// `/dev/null`; stdout and stderr are pipes. Errors: the program cannot be
/// found or executed (the exec's errno), pipes/clone failed, or the child
/// did not reach exec by `deadline` (`TimedOut`; it was killed and reaped).
pub fn spawn(
    program: &Path,
    args: &[&str],
    piped_stdin: bool,
    deadline: Instant,
) -> io::Result<Spawned> {
    let exec = prepare(program, args)?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (in_r, in_w) = if piped_stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (OwnedFd::from(File::open("/dev/null")?), None)
    };
    let (report_r, report_w) = pipe()?;
    let ctx = Ctx {
        path: exec.path.as_ptr(),
        argv: exec.argv.as_ptr(),
        // SAFETY: reads libc's pointer by value; see `environ`.
        envp: unsafe { environ },
        fds: [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        report: report_w.as_raw_fd(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        reset: handled_signals(),
        execing: AtomicBool::new(false),
        #[cfg(test)]
        stall: tests::stalling(),
    };
    let pid = clone_child(&ctx)?;
    drop((in_r, out_w, err_w, report_w));
    match ctx.execing.load(Ordering::Acquire) {
        true => exec_outcome(report_r, pid)?,
        false => await_exec(report_r, pid, deadline)?,
    }
    Ok(Spawned {
        pid,
        stdin: in_w.map(File::from),
        stdout: File::from(out_r),
        stderr: File::from(err_r),
    })
}

/// After a real `CLONE_VFORK` of a child that reached its exec: the exec
/// failed when the child's errno is in the pipe (written before it
/// exited, which is what let this thread resume); else it is past its
/// point of no return. Kills and reaps the child on failure.
fn exec_outcome(report: OwnedFd, pid: libc::pid_t) -> io::Result<()> {
    #[cfg(test)]
    tests::FAST_PATH.with(|n| n.set(n.get() + 1));
    let mut fd = libc::pollfd {
        fd: report.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    if unsafe { libc::poll(&mut fd, 1, 0) } <= 0 || fd.revents & libc::POLLIN == 0 {
        return Ok(());
    }
    let mut buf = [0u8; 4];
    // SAFETY: reads into a local buffer; the pipe holds all it will.
    let n = unsafe { libc::read(fd.fd, buf.as_mut_ptr().cast(), 4) };
    let err = match n {
        0 => return Ok(()),
        4 => io::Error::from_raw_os_error(i32::from_ne_bytes(buf)),
        _ => io::Error::from_raw_os_error(libc::EIO),
    };
    kill_and_reap(pid, KILL_GRACE);
    Err(err)
}

/// Waits for the child's exec report: end of file when it exec'd (the
/// pipe is close-on-exec), or its errno when it failed. Kills and reaps
/// the child on failure and when `deadline` passes first.
fn await_exec(report: OwnedFd, pid: libc::pid_t, deadline: Instant) -> io::Result<()> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    let err = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let why = "did not reach exec before the deadline (killed)";
            break io::Error::new(io::ErrorKind::TimedOut, why);
        }
        let mut fd = libc::pollfd {
            fd: report.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut fd, 1, ms) } <= 0 {
            continue; // timeout, EINTR: the deadline is checked above
        }
        // SAFETY: reads into the rest of a local buffer.
        let n = unsafe { libc::read(fd.fd, buf[got..].as_mut_ptr().cast(), 4 - got) };
        match n {
            0 if got == 0 => return Ok(()),
            0 => break io::Error::from_raw_os_error(libc::EIO),
            n if n > 0 => got += n as usize,
            _ if errno() == libc::EINTR => {}
            _ => break io::Error::last_os_error(),
        }
        if got == 4 {
            break io::Error::from_raw_os_error(i32::from_ne_bytes(buf));
        }
    };
    kill_and_reap(pid, KILL_GRACE);
    Err(err)
}

/// How long a killed child is waited for before it is left to init.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// Kills the process group led by our child `pid` and the child itself,
/// then reaps it, waiting at most `grace` (SIGKILL lands at once unless
/// the child is stuck in the kernel; then init reaps it once connroute
/// exits). The group id is safe to use until the child is reaped: the
/// kernel does not reuse a pid that still names a process or a group.
/// Returns the wait status, `None` when it was not reaped.
pub fn kill_and_reap(pid: libc::pid_t, grace: Duration) -> Option<c_int> {
    // SAFETY: kill has no memory effects; group and pid are our child's.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    let mut pause = Duration::from_micros(50);
    let give_up = Instant::now() + grace;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child without blocking.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 if Instant::now() < give_up => {}
            -1 if errno() == libc::EINTR => continue,
            p if p == pid => return Some(status),
            _ => return None,
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Clones the child with every signal blocked in this thread meanwhile.
fn clone_child(ctx: &Ctx) -> io::Result<libc::pid_t> {
    // Left uninitialised: the child writes its stack before reading it,
    // and only the pages it touches (one or two) are faulted in, not the
    // sixteen a zero fill would touch.
    let mut stack: Vec<u8> = Vec::with_capacity(STACK);
    // The stack grows down on every Linux target connroute builds for.
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
    #[cfg(not(test))]
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // A stalling test child is forked, as qemu-user does: with
    // CLONE_VFORK this thread would wait for it inside clone.
    #[cfg(test)]
    let flags = match ctx.stall {
        true => libc::SIGCHLD,
        false => libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
    };
    // SAFETY: sigset_t is plain data; the masks are valid for the calls.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: as above; the child gets `ctx`, which outlives it (the
    // caller reads the error pipe before returning) and a stack that
    // outlives its use (CLONE_VFORK: this thread resumes after exec).
    let pid = unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            top as *mut c_void,
            flags,
            ctx as *const Ctx as *mut c_void,
        );
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        if pid < 0 {
            return Err(err);
        }
        pid
    };
    drop(stack);
    Ok(pid)
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
