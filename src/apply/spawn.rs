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
//! execs; it calls only async-signal-safe system calls on data prepared
//! beforehand and allocates nothing. All signals stay blocked from before
//! the clone until the child has reset every handler to the default, so no
//! handler of connroute's ever runs in it; then, as `Command` does, it
//! execs with an empty signal mask and `SIGPIPE` at its default. An exec
//! failure comes back through a close-on-exec pipe (as musl's
//! `posix_spawn` does), which also works where `CLONE_VFORK` is emulated
//! by a plain fork (qemu-user).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;

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

/// What the child needs, prepared by the parent (no allocation after clone).
struct Ctx {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// Become the child's descriptors 0, 1 and 2.
    fds: [c_int; 3],
    /// Write end of the error pipe (close-on-exec).
    report: c_int,
    parent: libc::pid_t,
}

/// The child: prepares and execs; on failure reports errno and exits 127.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Ctx`, alive until the child execs or
    // exits (the parent waits for either on the error pipe).
    let c = unsafe { &*(arg as *const Ctx) };
    // SAFETY: see `exec`.
    let err = unsafe { exec(c) };
    let bytes = err.to_ne_bytes();
    // SAFETY: writes 4 bytes from a local buffer, then exits.
    unsafe {
        libc::write(c.report, bytes.as_ptr() as *const c_void, 4);
        libc::_exit(127)
    }
}

fn errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Runs in the child with every signal blocked: default handlers, own
/// process group, death signal, descriptors 0-2, empty mask, exec. Returns
/// errno when a step fails.
///
/// # Safety
/// Only from [`child`], on the context the parent prepared.
unsafe fn exec(c: &Ctx) -> c_int {
    // SAFETY (whole body): plain system calls on the prepared context.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if sig == libc::SIGKILL
                || sig == libc::SIGSTOP
                || libc::sigaction(sig, ptr::null(), &mut old) != 0
            {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0
            || libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
        {
            return errno();
        }
        // The parent may have died before the death signal was armed.
        if libc::getppid() != c.parent {
            return libc::ESRCH;
        }
        for (to, &fd) in c.fds.iter().enumerate() {
            let to = to as c_int;
            let ok = if fd == to {
                libc::fcntl(fd, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, to) == to
            };
            if !ok {
                return errno();
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, ptr::null_mut());
        libc::execve(c.path, c.argv, c.envp);
        errno()
    }
}

/// Starts `program` with `args`; stdin is a pipe when `piped_stdin`, else
/// `/dev/null`; stdout and stderr are pipes. Errors: the program cannot be
/// found or executed (the exec's errno), or pipes/clone failed.
pub fn spawn(program: &Path, args: &[&str], piped_stdin: bool) -> io::Result<Spawned> {
    let path = cstring(resolve(program)?.as_os_str())?;
    let mut strings = vec![cstring(program.as_os_str())?];
    for a in args {
        strings.push(cstring(OsStr::new(a))?);
    }
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut b = k.into_encoded_bytes();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).ok()
        })
        .collect();
    let ptrs = |v: &[CString]| -> Vec<*const c_char> {
        v.iter().map(|s| s.as_ptr()).chain([ptr::null()]).collect()
    };
    let (argv, envp) = (ptrs(&strings), ptrs(&env));
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
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        fds: [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        report: report_w.as_raw_fd(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
    };
    let pid = clone_child(&ctx)?;
    drop((in_r, out_w, err_w, report_w));
    // Exec closed the error pipe (close-on-exec) unless it failed.
    let mut buf = [0u8; 4];
    let mut report = File::from(report_r);
    let n = loop {
        match report.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => break r.unwrap_or(0),
        }
    };
    if n > 0 {
        let mut status = 0;
        // SAFETY: reaps our own child, which has exited (or is exiting).
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let code = if n == 4 {
            i32::from_ne_bytes(buf)
        } else {
            libc::EIO
        };
        return Err(io::Error::from_raw_os_error(code));
    }
    Ok(Spawned {
        pid,
        stdin: in_w.map(File::from),
        stdout: File::from(out_r),
        stderr: File::from(err_r),
    })
}

/// Clones the child with every signal blocked in this thread meanwhile.
fn clone_child(ctx: &Ctx) -> io::Result<libc::pid_t> {
    let mut stack = vec![0u8; STACK];
    // The stack grows down on every Linux target connroute builds for.
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
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
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
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
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_looked_up_in_path_once() {
        let sh = resolve(Path::new("sh")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        let given = Path::new("./relative/nft");
        assert_eq!(resolve(given).unwrap(), given);
        let e = resolve(Path::new("connroute-no-such-program")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = spawn(Path::new("connroute-no-such-program"), &[], false).err();
        assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn the_child_starts_with_no_blocked_signals_and_default_sigpipe() {
        // This thread blocks SIGUSR1 (the test harness ignores SIGPIPE):
        // neither may reach the program.
        // SAFETY: sigset_t is plain data; only this thread's mask changes.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
        }
        let mut c = spawn(Path::new("cat"), &["/proc/self/status"], false).unwrap();
        let mut text = String::new();
        c.stdout.read_to_string(&mut text).unwrap();
        let mut status = 0;
        // SAFETY: reaps our own child.
        assert_eq!(unsafe { libc::waitpid(c.pid, &mut status, 0) }, c.pid);
        assert_eq!(status, 0);
        let field = |name: &str| {
            let hex = text.lines().find_map(|l| l.strip_prefix(name)).unwrap();
            u64::from_str_radix(hex.trim(), 16).unwrap()
        };
        assert_eq!(field("SigBlk:"), 0, "{text}");
        assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
        assert!(text.contains(&format!("PPid:\t{}\n", std::process::id())));
    }
}
