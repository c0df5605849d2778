//! Unit tests of the bounded child runner, with `sh`/`bash` stand-ins.

use super::*;
use std::cell::Cell;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

thread_local! {
    static NO_PIDFD: Cell<bool> = const { Cell::new(false) };
}

/// Whether children started from this thread are watched without a pidfd
/// (as on kernels before 5.3).
pub(crate) fn without_pidfd() -> bool {
    NO_PIDFD.with(Cell::get)
}

/// Runs `f` with a pidfd, then without; `f` gets which, for messages.
fn both_ways(f: impl Fn(&str)) {
    for (no, how) in [(false, "with a pidfd"), (true, "without a pidfd")] {
        NO_PIDFD.with(|c| c.set(no));
        f(how);
    }
    NO_PIDFD.with(|c| c.set(false));
}

/// Live (non-zombie) processes in process group `pgid`.
fn group(pgid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // After the command name in parentheses: state, ppid, pgrp.
            let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.len() > 2 && f[0] != "Z" && f[2] == pgid
        })
        .collect()
}

/// A command-line marker unique to this test process and call.
fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "connroute-child-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a live (non-zombie) process has `marker` in its command line.
fn alive(marker: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

/// Waits (bounded) for a process carrying `marker` to show: a spawn
/// returns once the exec is past its point of no return, before the
/// kernel has set up the new program's arguments.
fn shows(marker: &str) -> bool {
    (0..500).any(|_| {
        let seen = alive(marker);
        if !seen {
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    })
}

/// Waits (bounded) for every process carrying `marker` to be gone.
fn gone(marker: &str) -> bool {
    for _ in 0..500 {
        if !alive(marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn bash(script: &str, input: &[u8], deadline: Duration) -> Result<Output, ChildError> {
    run(&Request {
        program: Path::new("bash"),
        args: &["-c", script],
        input,
        deadline,
        what: "testing",
    })
}

#[test]
fn input_and_output_flow_concurrently() {
    // 300 KiB through `cat`: writing all of it before reading would deadlock.
    let input: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let out = bash("cat; echo warn >&2", &input, Duration::from_secs(60)).unwrap();
    assert_eq!(out.stdout, input);
    assert_eq!(out.stderr, b"warn\n");
}

#[test]
fn a_child_that_never_reads_a_big_batch_is_killed_at_the_deadline() {
    let m = marker();
    let input = vec![b'x'; 200 * 1024];
    let script = format!("exec -a {m} sleep 60");
    let e = bash(&script, &input, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, ChildError::TimedOut { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "bash timed out after 0.3 s while testing (200 KiB)"
    );
    assert_eq!(e.exit_code(), 1);
    assert!(gone(&m), "{m} still running");
}

#[test]
fn a_child_that_closes_its_output_and_hangs_is_killed() {
    let m = marker();
    let script = format!("exec >&- 2>&- <&-; exec -a {m} sleep 60");
    let e = bash(&script, b"", Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, ChildError::TimedOut { input: 0, .. }), "{e}");
    assert!(!e.to_string().contains('('), "{e}");
    assert!(gone(&m), "{m} still running");
}

#[test]
fn grandchildren_in_the_process_group_are_killed_too() {
    let m = marker();
    let script = format!("(exec -a {m} sleep 60) & wait");
    let e = bash(&script, b"", Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, ChildError::TimedOut { .. }), "{e}");
    assert!(gone(&m), "{m} still running");
}

#[test]
fn non_zero_exit_is_a_refusal_with_the_child_message() {
    let e = bash(
        "cat >/dev/null; echo 'Error: nope' >&2; exit 3",
        b"batch",
        Duration::from_secs(60),
    )
    .unwrap_err();
    assert!(matches!(e, ChildError::Refused { code: 3, .. }), "{e}");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "bash failed (exit status 3) while testing: Error: nope"
    );
    // Without stderr, stdout is the message.
    let e = bash("echo only-stdout; exit 1", b"", Duration::from_secs(60)).unwrap_err();
    assert!(e.to_string().ends_with(": only-stdout"), "{e}");
}

#[test]
fn death_by_signal_and_missing_programs_are_runtime_failures() {
    let e = bash("kill -9 $$", b"", Duration::from_secs(60)).unwrap_err();
    assert!(matches!(e, ChildError::Killed { signal: 9, .. }), "{e}");
    assert!(e.to_string().contains("signal 9"), "{e}");
    assert_eq!(e.exit_code(), 1);
    let e = run(&Request {
        program: Path::new("/nonexistent/nft"),
        args: &[],
        input: b"x",
        deadline: Duration::from_secs(60),
        what: "testing",
    })
    .unwrap_err();
    assert!(e.not_started());
    assert!(
        e.to_string().starts_with("cannot run /nonexistent/nft: "),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn a_child_that_exits_without_reading_its_input_is_not_a_write_error() {
    // The child exits at once; writing the rest hits a closed pipe (EPIPE),
    // and the exit status decides.
    let input = vec![b'x'; 200 * 1024];
    assert!(bash("exit 0", &input, Duration::from_secs(60)).is_ok());
    let e = bash("exit 4", &input, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(e, ChildError::Refused { code: 4, .. }), "{e}");
}

#[test]
fn the_child_is_its_own_process_group_with_a_death_signal() {
    // Field 5 of /proc/self/stat is the process group; PDEATHSIG is not
    // visible in /proc, so the e2e test kills connroute to prove it.
    let out = bash(
        "read -r _ _ _ _ pgrp _ < /proc/self/stat; echo \"$$ $pgrp\"",
        b"",
        Duration::from_secs(60),
    )
    .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "{text}");
    assert_eq!(ids[0], ids[1], "not a group leader: {text}");
}

/// Test support: writes an executable script from a separate process, so
/// no descriptor open for writing can leak into a concurrent test's fork
/// (which would make exec fail with ETXTBSY).
pub(crate) fn script(path: &Path, body: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let ok = Command::new("sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\""])
        .args(["sh", body])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot write {}", path.display());
}

#[test]
fn a_child_flooding_its_output_is_killed_at_the_cap() {
    for (script, cap, stream) in [
        ("exec -a {m} yes", MAX_STDOUT, "output"),
        ("exec -a {m} yes >&2", MAX_STDERR, "error output"),
    ] {
        let m = marker();
        let started = Instant::now();
        let e = bash(&script.replace("{m}", &m), b"", Duration::from_secs(60)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(30), "{e}");
        assert!(
            matches!(e, ChildError::TooLong { limit, .. } if limit == cap),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("bash: {stream} exceeds {} while testing", size(cap))
        );
        assert_eq!(e.exit_code(), 1);
        assert!(gone(&m), "{m} still running");
    }
    assert_eq!(size(MAX_STDOUT), "16 MiB");
}

#[test]
fn pieces_arrive_in_order_across_many_writes() {
    // More pieces than one writev takes, and more bytes than a pipe holds.
    let pieces: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| format!("{i:05}|").repeat(i as usize % 7 + 1).into_bytes())
        .chain([Vec::new(), vec![b'x'; 200 * 1024]])
        .collect();
    let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let running = start(Path::new("cat"), &[], true, "testing").unwrap();
    let out = running.finish(&refs, Duration::from_secs(60)).unwrap();
    assert_eq!(out.stdout, pieces.concat());
}

#[test]
fn a_started_child_dropped_before_its_input_ends_does_nothing_and_is_gone() {
    let m = marker();
    let dir = std::env::temp_dir().join(&m);
    let done = dir.with_extension("done");
    let script = format!("cat >/dev/null; : > {}; : {m}", done.display());
    let running = start(Path::new("bash"), &["-c", &script], true, "testing").unwrap();
    assert!(shows(&m), "the child runs before its input is ready");
    drop(running);
    assert!(gone(&m), "dropping an unfinished child kills it");
    assert!(
        !done.exists(),
        "a child that never saw end of input did not act"
    );
}

#[test]
fn the_deadline_counts_from_the_start() {
    let m = marker();
    let script = format!("cat >/dev/null; : {m}");
    let running = start(Path::new("bash"), &["-c", &script], true, "testing").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let e = running
        .finish(&[b"abc"], Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, ChildError::TimedOut { input: 3, .. }), "{e}");
    assert!(gone(&m));
}

#[test]
fn input_for_a_child_without_a_stdin_pipe_is_refused() {
    let running = start(Path::new("true"), &[], false, "testing").unwrap();
    let e = running
        .finish(&[b"x"], Duration::from_secs(10))
        .unwrap_err();
    assert!(matches!(e, ChildError::Io { .. }), "{e}");
}

#[test]
fn a_grandchild_holding_the_output_does_not_turn_success_into_a_timeout() {
    both_ways(|how| {
        let m = marker();
        // The sleeper keeps stdout and stderr open after bash exited 0.
        let script = format!("(exec -a {m} sleep 600) & echo $$; exit 0");
        let out = bash(&script, b"", Duration::from_secs(20));
        let out = out.unwrap_or_else(|e| panic!("{how}: {e}"));
        let pgid = String::from_utf8(out.stdout).unwrap();
        assert!(gone(&m), "{how}: {m} still running");
        assert_eq!(group(pgid.trim()), Vec::<String>::new(), "{how}");
    });
}

#[test]
fn a_successful_child_leaves_no_process_of_its_group_behind() {
    both_ways(|how| {
        let m = marker();
        // Detached from the pipes, but in the child's process group.
        let script = format!("(exec -a {m} sleep 600 </dev/null >/dev/null 2>&1 &); echo $$");
        let out = bash(&script, b"", Duration::from_secs(20));
        let pgid = String::from_utf8(out.unwrap().stdout).unwrap();
        assert!(gone(&m), "{how}: {m} still running");
        assert_eq!(group(pgid.trim()), Vec::<String>::new(), "{how}");
    });
}

#[test]
fn a_child_that_exits_late_after_closing_its_output_is_waited_for() {
    both_ways(|how| {
        let out = bash(
            "exec >&- 2>&-; sleep 0.3; exit 5",
            b"",
            Duration::from_secs(20),
        );
        let e = out.unwrap_err();
        assert!(
            matches!(e, ChildError::Refused { code: 5, .. }),
            "{how}: {e}"
        );
    });
}

#[test]
fn a_stop_request_kills_the_running_child_at_once() {
    let m = marker();
    let (r, mut w) = std::io::pipe().unwrap();
    stop_when_readable(r.as_raw_fd());
    let script = format!("exec -a {m} sleep 600");
    let running = start(Path::new("bash"), &["-c", &script], true, "testing").unwrap();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        w.write_all(b"x").unwrap();
        w
    });
    let e = running
        .finish(&[b"x"], Duration::from_secs(60))
        .unwrap_err();
    stop_when_readable(-1);
    drop(stopper.join());
    assert!(matches!(e, ChildError::Stopped { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "bash was killed while testing: connroute is stopping"
    );
    assert_eq!(e.exit_code(), 1);
    assert!(gone(&m), "{m} still running");
}
