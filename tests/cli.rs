//! The CLI as users run it: golden renders of the example configs, `nft -c`
//! on every render (when root and nft are here), and every bad config in
//! `tests/bad/` refused with its file:line message and exit code 2.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test; with `CONNROUTE_RUNNER` (`make test-cross`) it
/// runs under that emulator, e.g. `qemu-mips-static`, without binfmt_misc.
fn bin() -> Command {
    let exe = env!("CARGO_BIN_EXE_connroute");
    match std::env::var("CONNROUTE_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(exe);
            c
        }
        _ => Command::new(exe),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args([
            "--syslog",
            "/nonexistent",
            "--lock",
            "/tmp/connroute-cli-test.lock",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn golden(name: &str, got: &[u8]) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, got).unwrap();
    }
    let want = fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        want == got,
        "{name} differs from golden:\n{}",
        String::from_utf8_lossy(got)
    );
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.push(root().join("files/etc/config/connroute"));
    v.sort();
    v
}

#[test]
fn renders_match_golden() {
    for ex in examples() {
        let stem = ex
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".conf", "");
        let p = ex.to_str().unwrap();
        for (suffix, args) in [
            ("json", vec!["render"]),
            ("nft", vec!["render", "--format", "nft"]),
            ("routes", vec!["render", "--routes"]),
        ] {
            let mut all = vec!["-c", p, "--ubus", "/nonexistent/ubus"];
            all.extend(args);
            let out = run(&all);
            assert!(
                out.status.success(),
                "{p} {suffix}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            golden(&format!("{stem}.{suffix}"), &out.stdout);
        }
    }
}

fn have_nft_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    root && Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn nft_accepts_every_render() {
    if !have_nft_as_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root with nft installed"
        );
        eprintln!("skipped: needs root and nft");
        return;
    }
    for ex in examples() {
        let p = ex.to_str().unwrap();
        let out = run(&["-c", p, "--ubus", "/nonexistent/ubus", "check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.contains("nft accepts the ruleset"),
            "{p}: {err}"
        );
        // The text form must load too.
        let text = run(&[
            "-c",
            p,
            "--ubus",
            "/nonexistent/ubus",
            "render",
            "--format",
            "nft",
        ])
        .stdout;
        let f = std::env::temp_dir().join(format!("connroute-{}.nft", std::process::id()));
        fs::write(&f, text).unwrap();
        let c = Command::new("nft")
            .args(["-c", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "{p} text: {}",
            String::from_utf8_lossy(&c.stderr)
        );
    }
}

#[test]
fn dump_config_is_uci_export() {
    let out = run(&["-c", "examples/seed.conf", "dump-config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("package seed\n\nconfig globals 'globals'\n"),
        "{text}"
    );
    assert!(text.contains("\tlist src_ip '!192.168.1.0/24'\n"), "{text}");
}

#[test]
fn bad_configs_exit_2_with_file_line_and_reason() {
    let dir = root().join("tests/bad");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "tests/bad holds {} configs", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = fs::read(f).unwrap();
        let first =
            String::from_utf8_lossy(text.split(|&c| c == b'\n').next().unwrap()).to_string();
        let expect = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: no '# expect:' line", f.display()));
        let p = f.to_str().unwrap();
        for cmd in ["check", "render", "apply"] {
            let out = run(&["-c", p, "--nft", "/nonexistent/nft", cmd]);
            let err = String::from_utf8_lossy(&out.stderr);
            let want = format!("{p}:{expect}");
            if out.status.code() != Some(2) || !err.contains(&want) {
                failures.push(format!(
                    "{cmd} {}: exit {:?}, want `{want}` in:\n{err}",
                    f.display(),
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run(&["-c", "/nonexistent/connroute", "check"])
            .status
            .code(),
        Some(2)
    );
    assert!(run(&["--help"]).status.success());
    assert!(run(&["apply", "--help"]).status.success());
    // A path that is not UTF-8 is refused, not silently mangled.
    use std::os::unix::ffi::OsStrExt;
    let out = bin()
        .args(["check", "-c"])
        .arg(std::ffi::OsStr::from_bytes(b"/tmp/\xffconnroute"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not UTF-8"));
}

#[test]
fn interfaces_without_ubus_are_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("connroute-ubus-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connroute");
    fs::write(&conf, "config gateway wan2\n\tlist interface wan2\n").unwrap();
    let out = run(&[
        "-c",
        conf.to_str().unwrap(),
        "--ubus",
        "/nonexistent/ubus",
        "apply",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uses OpenWrt interfaces (wan2), but netifd state is not available"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn status_without_netifd_state_is_a_read_failure_not_drift() {
    let dir = std::env::temp_dir().join(format!("connroute-ubus-st-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connroute");
    fs::write(&conf, "config gateway wan2\n\tlist interface wan2\n").unwrap();
    let (ids, state) = (dir.join("ids"), dir.join("state"));
    let out = run(&[
        "-c",
        conf.to_str().unwrap(),
        "--ids",
        ids.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--no-rt-tables",
        "--ubus",
        "/bin/false",
        "status",
    ]);
    let _ = fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("netifd state is not available"), "{err}");
    assert!(!err.contains("drift"), "{err}");
}
