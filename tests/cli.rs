//! The CLI as users run it: golden renders of the example configs, `nft -c`
//! on every render (when root and nft are here), and every bad config in
//! `tests/bad/` refused with its file:line message and exit code 2.

mod common;

use common::{have_nft_as_root, text};

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
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said == format!("{p}: config ok; nft accepts the ruleset\n"),
            "{p}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
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
fn help_for_every_command_both_ways() {
    let top = run(&["help"]);
    assert!(top.status.success());
    assert_eq!(top.stdout, run(&["--help"]).stdout);
    let top = text(&top.stdout);
    for name in [
        "render",
        "check",
        "dump-config",
        "apply",
        "flush",
        "status",
        "hotplug",
        "watch",
    ] {
        assert!(
            top.contains(&format!("\n  {name} ")),
            "{name} not in:\n{top}"
        );
        let word = run(&["help", name]);
        let flag = run(&[name, "--help"]);
        assert!(word.status.success() && flag.status.success(), "{name}");
        assert_eq!(word.stdout, flag.stdout, "{name}");
        let help = text(&word.stdout);
        assert!(help.starts_with(&format!("connroute {name}: ")), "{help}");
        assert!(help.contains(&format!("Usage: connroute [OPTIONS] {name}")));
        for option in ["--syslog <SOCKET>", "--ids <FILE>", "--timeout <SECS>"] {
            assert!(help.contains(option), "{name} --help lacks {option}");
        }
    }
    let none = run(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("a command is required\n\nConnection-based"));
    let bad = run(&["help", "frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("unknown command 'frobnicate'"));
}

#[test]
fn render_when_disabled_shows_nothing_to_install() {
    let dir = std::env::temp_dir().join(format!("connroute-off-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("connroute");
    let seed = fs::read_to_string(root().join("examples/seed.conf")).unwrap();
    let off = seed.replacen("\toption enabled '1'\n", "\toption enabled '0'\n", 1);
    assert_ne!(off, seed, "seed.conf has no globals.enabled '1'");
    fs::write(&conf, off).unwrap();
    let c = conf.to_str().unwrap();
    let note = "globals.enabled is 0: apply installs nothing";
    for (args, want) in [
        (vec!["render"], "{\n  \"nftables\": []\n}\n"),
        (vec!["render", "--format", "nft"], ""),
        (vec!["render", "--routes"], ""),
    ] {
        let mut all = vec!["-c", c];
        all.extend(&args);
        let out = run(&all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want, "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(note) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The binary run as user nobody, without capabilities; `None` when this
/// test process cannot switch users (not root, or no setpriv).
fn as_nobody(args: &[&str], env: &[(&str, &str)]) -> Option<Output> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || std::env::var_os("CONNROUTE_RUNNER").is_some() {
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_connroute"))
        .args(["--syslog", "/nonexistent", "--lock", "/nonexistent/lock"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .ok()?;
    Some(out)
}

/// Environment variables for one run.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn non_root_is_told_root_is_needed() {
    let seed = root().join("examples/seed.conf");
    let seed = seed.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("connroute-nobody-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let uses_wan2 = dir.join("connroute");
    fs::write(&uses_wan2, "config gateway wan2\n\tlist interface wan2\n").unwrap();
    let hot = [("ACTION", "ifup"), ("INTERFACE", "wan2")];
    let cases: [(&str, &[&str], Env); 7] = [
        ("apply", &["-c", seed, "apply"], &[]),
        ("flush", &["flush"], &[]),
        ("status", &["-c", seed, "status"], &[]),
        (
            "hotplug",
            &["-c", uses_wan2.to_str().unwrap(), "hotplug"],
            &hot,
        ),
        ("the nft check of the ruleset", &["-c", seed, "check"], &[]),
        ("check --diff", &["-c", seed, "check", "--diff"], &[]),
        ("watch", &["-c", seed, "watch"], &[]),
    ];
    for (what, args, env) in cases {
        let Some(out) = as_nobody(args, env) else {
            eprintln!("skipped: needs root and setpriv to drop to nobody");
            return;
        };
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let want = format!("connroute: {what} needs root (CAP_NET_ADMIN); run it as root\n");
        assert!(err.ends_with(&want), "{args:?}: {err}");
    }
    // check still validates the config, and says so on stdout.
    let out = as_nobody(&["-c", seed, "check"], &[]).unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("{seed}: config ok; nft check not run\n")
    );
    // A bad config is still a config error (2), root or not.
    let bad = root().join("tests/bad/bad_ip.conf");
    let out = as_nobody(&["-c", bad.to_str().unwrap(), "apply"], &[]).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn timeout_option_bounds_the_nft_exchange() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: check runs nft only as root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("connroute-timeout-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let nft = dir.join("nft");
    fs::write(&nft, "#!/bin/sh\nexec sleep 30\n").unwrap();
    fs::set_permissions(&nft, fs::Permissions::from_mode(0o755)).unwrap();
    let seed = root().join("examples/seed.conf");
    let started = std::time::Instant::now();
    let out = run(&[
        "-c",
        seed.to_str().unwrap(),
        "--nft",
        nft.to_str().unwrap(),
        "--timeout",
        "1",
        "check",
    ]);
    let err = text(&out.stderr);
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
    // A timeout is a runtime failure (1), never a config error (2).
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

/// Every option in `--help` (global and per command) is in the man page
/// and the bash completion, so neither falls behind the parser.
#[test]
fn man_page_and_completion_know_every_option() {
    let man = fs::read_to_string(root().join("man/connroute.8")).unwrap();
    let completion = fs::read_to_string(root().join("completion/connroute.bash")).unwrap();
    let mut help = text(&run(&["--help"]).stdout);
    for name in ["render", "check", "apply", "status"] {
        help.push_str(&text(&run(&[name, "--help"]).stdout));
    }
    let mut options: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    options.sort();
    options.dedup();
    assert!(options.len() >= 17, "{options:?}");
    for o in options {
        assert!(man.contains(&o.replace('-', "\\-")), "man page lacks {o}");
        assert!(completion.contains(o), "completion lacks {o}");
    }
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

#[path = "cli/errors.rs"]
mod errors;
