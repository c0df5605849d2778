//! Hostile inputs are refused quickly and without echoing or storing them
//! whole: special files and oversized configs, FIFOs, floods of errors,
//! huge names, absurd timeouts.

mod common;

use common::work;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary; a run that takes over 20 s is killed and fails the test.
fn run(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connroute"))
        .args(["--syslog", "/nonexistent", "--ubus", "/nonexistent/ubus"])
        .args(["--nft", "/nonexistent/nft", "--no-rt-tables"])
        .arg("--lock")
        .arg(dir.join("lock"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

const GOOD: &str = "config gateway g\n\toption gateway 192.168.1.2\n";

#[test]
fn special_and_oversized_configs_are_refused_before_reading() {
    let d = work("limits-special");
    let ids = d.join("ids");
    let i = ids.to_str().unwrap();
    let big = d.join("big");
    fs::File::create(&big).unwrap().set_len(17 << 20).unwrap();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    for (path, want) in [
        ("/dev/zero", "/dev/zero: cannot read: not a regular file"),
        (
            fifo.to_str().unwrap(),
            "fifo: cannot read: not a regular file",
        ),
        (
            big.to_str().unwrap(),
            "big: cannot read: 17825792 bytes, more than the 16777216 bytes allowed",
        ),
    ] {
        for cmd in ["check", "render", "dump-config"] {
            let out = run(&d, &["-c", path, "--ids", i, cmd]);
            assert_eq!(out.status.code(), Some(2), "{cmd} {path}: {}", err(&out));
            assert!(err(&out).contains(want), "{cmd} {path}: {}", err(&out));
        }
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_fifo_ids_file_is_refused_not_waited_on() {
    let d = work("limits-ids");
    let conf = d.join("connroute");
    fs::write(&conf, GOOD).unwrap();
    let fifo = d.join("ids");
    mkfifo(&fifo);
    let c = conf.to_str().unwrap();
    for cmd in ["check", "render", "apply"] {
        let out = run(&d, &["-c", c, "--ids", fifo.to_str().unwrap(), cmd]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", err(&out));
        assert!(
            err(&out).contains("ids: cannot read: not a regular file"),
            "{cmd}: {}",
            err(&out)
        );
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_flood_of_errors_prints_the_first_twenty_and_a_count() {
    let d = work("limits-flood");
    let conf = d.join("connroute");
    fs::write(&conf, format!("{GOOD}{}", "config rule\n".repeat(5000))).unwrap();
    let ids = d.join("ids");
    let out = run(
        &d,
        &[
            "-c",
            conf.to_str().unwrap(),
            "--ids",
            ids.to_str().unwrap(),
            "check",
        ],
    );
    let e = err(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert_eq!(e.lines().count(), 21, "{e}");
    assert!(
        e.contains(":3: anonymous rule section: needs option gateway"),
        "{e}"
    );
    assert!(e.ends_with("… and 4980 more errors and warnings\n"), "{e}");
    // Past 65536 sections the reader stops: memory stays bounded.
    fs::write(&conf, "config rule\n".repeat(70_000)).unwrap();
    let out = run(&d, &["-c", conf.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(
        err(&out).contains("connroute:65537: more than 65536 sections"),
        "{}",
        err(&out)
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn huge_names_are_not_echoed_whole() {
    let d = work("limits-echo");
    let conf = d.join("connroute");
    let name = "n".repeat(100_000);
    fs::write(
        &conf,
        format!("{GOOD}config rule {name}\n\toption gateway g\n"),
    )
    .unwrap();
    let ids = d.join("ids");
    let out = run(
        &d,
        &[
            "-c",
            conf.to_str().unwrap(),
            "--ids",
            ids.to_str().unwrap(),
            "check",
        ],
    );
    let e = err(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    let want = format!(
        ":3: rule '{}…': section name longer than 64 bytes",
        "n".repeat(64)
    );
    assert!(e.contains(&want), "{}", &e[..e.len().min(300)]);
    assert!(e.len() < 1000, "{} bytes of errors", e.len());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn absurd_timeouts_are_usage_errors_not_panics() {
    let d = work("limits-timeout");
    for opt in ["--timeout", "--lock-timeout"] {
        let out = run(&d, &[opt, "18446744073709551615", "apply"]);
        assert_eq!(out.status.code(), Some(2), "{opt}: {}", err(&out));
        assert!(err(&out).contains("is over 86400 seconds"), "{}", err(&out));
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn huge_values_are_not_echoed_whole() {
    let d = work("limits-values");
    let conf = d.join("connroute");
    let digits = "1".repeat(50_000);
    let long = "x".repeat(60_000);
    fs::write(
        &conf,
        format!("config gateway '{digits}'\n\toption device lo\nconfig rule r\n\toption gateway '{long}'\n\tlist in_device '{long}'\n"),
    )
    .unwrap();
    let out = run(&d, &["-c", conf.to_str().unwrap(), "check"]);
    let e = err(&out);
    assert_eq!(out.status.code(), Some(2), "{}", &e[..e.len().min(300)]);
    assert!(e.len() < 2000, "{} bytes of errors", e.len());
    let x64 = "x".repeat(64);
    for want in [
        format!(":4: rule 'r': option 'gateway': no gateway section named '{x64}…'"),
        format!(":5: rule 'r': option 'in_device': '{x64}…' is not an interface name"),
        format!("'{}…' reads as a table number", "1".repeat(64)),
    ] {
        assert!(e.contains(&want), "{want} in {e}");
    }
    let _ = fs::remove_dir_all(&d);
}
