//! Unit tests of the raw spawn: lookup, the child's signal state, the
//! bounded wait for exec, and spawning beside another thread that forks.

use super::*;
use std::cell::Cell;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static STALL: Cell<bool> = const { Cell::new(false) };
    /// How many spawns from this thread judged their exec without waiting.
    pub(super) static FAST_PATH: Cell<usize> = const { Cell::new(0) };
}

/// Whether children spawned from this thread stall before exec.
pub(super) fn stalling() -> bool {
    STALL.with(Cell::get)
}

fn later(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Reaps `pid`, which must exit 0.
fn reap_ok(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: reaps our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0);
}

#[test]
fn bare_names_are_looked_up_in_path_once() {
    let sh = resolve(Path::new("sh")).unwrap();
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
    let given = Path::new("./relative/nft");
    assert_eq!(resolve(given).unwrap(), given);
    let e = resolve(Path::new("connroute-no-such-program")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e = spawn(
        Path::new("connroute-no-such-program"),
        &[],
        false,
        later(60),
    )
    .err();
    assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    // Found, but exec fails: the child's errno comes back.
    let e = spawn(Path::new("/dev/null"), &[], false, later(60)).err();
    assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::PermissionDenied));
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
    let args = ["/proc/self/status"];
    let mut c = spawn(Path::new("cat"), &args, false, later(60)).unwrap();
    let mut text = String::new();
    c.stdout.read_to_string(&mut text).unwrap();
    reap_ok(c.pid);
    let field = |name: &str| {
        let hex = text.lines().find_map(|l| l.strip_prefix(name)).unwrap();
        u64::from_str_radix(hex.trim(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{text}");
    assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
    assert!(text.contains(&format!("PPid:\t{}\n", std::process::id())));
}

#[test]
fn the_child_gets_this_process_environment_byte_for_byte() {
    // libc's `environ` is passed as it is: the program's environment is
    // this process's array, entry by entry, including any that std's
    // `vars_os` would skip (no `=`).
    let mut mine = Vec::new();
    // SAFETY: reads libc's null-terminated array of C strings, which
    // nothing changes (see `environ`).
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            mine.extend_from_slice(std::ffi::CStr::from_ptr(*p).to_bytes_with_nul());
            p = p.add(1);
        }
    }
    let args = ["/proc/self/environ"];
    let mut c = spawn(Path::new("cat"), &args, false, later(60)).unwrap();
    let mut theirs = Vec::new();
    c.stdout.read_to_end(&mut theirs).unwrap();
    reap_ok(c.pid);
    assert_eq!(theirs, mine);
}

#[test]
fn handled_signals_are_the_ones_with_a_handler_and_sigpipe() {
    let set = handled_signals();
    let has = |s: c_int| set[(s as usize - 1) / 64] >> ((s as usize - 1) % 64) & 1 != 0;
    // Rust's runtime ignores SIGPIPE and handles SIGSEGV (stack
    // overflows); nothing handles SIGUSR2 or SIGCHLD.
    assert!(has(libc::SIGPIPE) && has(libc::SIGSEGV));
    assert!(!has(libc::SIGUSR2) && !has(libc::SIGCHLD) && !has(libc::SIGKILL));
}

#[test]
fn after_a_real_vfork_the_exec_is_judged_without_waiting() {
    // qemu-user emulates CLONE_VFORK by a fork: the wait is tested by the
    // stalled child below.
    if crate::apply::tests::skipped_under_emulator("a real vfork") {
        return;
    }
    let fast = || FAST_PATH.with(Cell::get);
    let before = fast();
    let mut c = spawn(Path::new("echo"), &["ran"], false, later(60)).unwrap();
    let mut out = String::new();
    c.stdout.read_to_string(&mut out).unwrap();
    reap_ok(c.pid);
    assert_eq!((out.as_str(), fast()), ("ran\n", before + 1));
    // A failed exec is still told apart: its errno was written before
    // the child exited, which is what let the parent go on.
    let e = spawn(Path::new("/dev/null"), &[], false, later(60)).err();
    assert_eq!(e.map(|e| e.kind()), Some(io::ErrorKind::PermissionDenied));
    assert_eq!(fast(), before + 2);
    let children = std::fs::read_to_string("/proc/thread-self/children").unwrap();
    assert_eq!(children.trim(), "", "left behind");
}

#[test]
fn a_child_that_does_not_reach_exec_is_killed_at_the_deadline() {
    // The child stalls before exec (forked, as under qemu-user): the
    // parent must not wait for its report past the deadline.
    STALL.with(|s| s.set(true));
    let deadline = Instant::now() + Duration::from_millis(300);
    let e = spawn(Path::new("true"), &[], true, deadline).err();
    STALL.with(|s| s.set(false));
    let e = e.expect("a stalled child was reported started");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("did not reach exec"), "{e}");
    // Killed and reaped: this thread has no child left.
    let children = std::fs::read_to_string("/proc/thread-self/children").unwrap();
    assert_eq!(children.trim(), "", "left behind");
}

#[test]
fn spawning_while_another_thread_forks_never_hangs() {
    // Another thread keeps starting programs the ordinary way (fork or
    // posix_spawn, holding libc's locks meanwhile). Under qemu-user,
    // where this clone is a fork, a child that called a locking libc
    // function (musl's sigaction for SIGABRT) hung forever before exec.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|t| {
        t.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let s = std::process::Command::new("true").status().unwrap();
                assert!(s.success());
            }
        });
        // Also when an assertion fails: the scope waits for the thread.
        let _done = Done(&done);
        for i in 0..300 {
            let c = spawn(Path::new("true"), &[], false, later(20));
            reap_ok(c.unwrap_or_else(|e| panic!("spawn {i}: {e}")).pid);
        }
    });
}
