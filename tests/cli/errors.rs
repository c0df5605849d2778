//! Errors are shown once on stderr (with or without `-v`, with or without a
//! syslog reader) and runs that change the system also log them to syslog.

use super::{bin, text};
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch directory unique to one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("connroute-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs connroute (`wrap` is a command put in front, e.g. `unshare -n`)
/// with scratch files under `dir`, syslog at `syslog`.
fn run_in(dir: &Path, wrap: &[&str], syslog: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = std::process::Command::new(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_connroute"));
            c
        }
        None => bin(),
    };
    let files = ["--lock", "lock", "--ids", "ids", "--state", "state"];
    for (i, f) in files.iter().enumerate() {
        c.arg(if i % 2 == 0 {
            f.to_string()
        } else {
            dir.join(f).display().to_string()
        });
    }
    c.arg("--no-rt-tables").arg("--syslog").arg(syslog);
    c.args(args).envs(env.iter().copied()).output().unwrap()
}

/// Every datagram waiting at the reader.
fn drain(r: &UnixDatagram) -> String {
    r.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut all = String::new();
    while let Ok(n) = r.recv(&mut buf) {
        all.push_str(&String::from_utf8_lossy(&buf[..n]));
        all.push('\n');
    }
    all
}

/// Runs `args` with and without `-v`, with no syslog and with a reader:
/// `needle` is on stderr exactly once each time; the reader got it iff
/// `logged`.
fn once_each_way(
    dir: &Path,
    wrap: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
    needle: &str,
    logged: bool,
) {
    let sock = dir.join("log");
    for verbose in [false, true] {
        for reader in [false, true] {
            let _ = fs::remove_file(&sock);
            let r = reader.then(|| UnixDatagram::bind(&sock).unwrap());
            let mut a: Vec<&str> = if verbose { vec!["-v"] } else { vec![] };
            a.extend_from_slice(args);
            let out = run_in(dir, wrap, &sock, &a, env);
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{a:?}: {err}");
            let what = format!("{a:?} (syslog reader: {reader})");
            assert_eq!(err.matches(needle).count(), 1, "{what}: {err}");
            if let Some(r) = r {
                let log = drain(&r);
                assert_eq!(
                    log.matches(needle).count(),
                    usize::from(logged),
                    "{what}: {log}"
                );
                assert!(!logged || log.contains("<27>connroute["), "{what}: {log}");
            }
        }
    }
}

#[test]
fn bad_config_in_apply_and_hotplug_is_shown_once_and_logged() {
    let dir = scratch("err-config");
    let conf = dir.join("c");
    fs::write(
        &conf,
        "config gateway g\n\tlist interface wan\n\toption mark 'x'\n",
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let hotplug = [("ACTION", "ifup"), ("INTERFACE", "wan")];
    let needle = "option 'mark'";
    once_each_way(&dir, &[], &["-c", c, "apply"], &[], needle, true);
    once_each_way(&dir, &[], &["-c", c, "hotplug"], &hotplug, needle, true);
    // Commands that change nothing print only to stderr.
    once_each_way(&dir, &[], &["-c", c, "check"], &[], needle, false);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn apply_failure_is_shown_once_and_logged() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let unshare = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status();
    if !root
        || !unshare.is_ok_and(|s| s.success())
        || std::env::var_os("CONNROUTE_RUNNER").is_some()
    {
        eprintln!("skipped: needs root and unshare -n (apply runs in a new network namespace)");
        return;
    }
    let dir = scratch("err-apply");
    let conf = dir.join("c");
    let src = "config gateway g\n\toption device lo\n\toption gateway 10.9.0.1\n\
               config rule\n\toption gateway g\n\toption src_ip 10.1.0.0/24\n";
    fs::write(&conf, src).unwrap();
    // An nft that fails: the apply fails at runtime (exit 1) in an empty
    // network namespace, touching nothing of the host's.
    let args = [
        "-c",
        conf.to_str().unwrap(),
        "--nft",
        "/bin/false",
        "--ubus",
        "/bin/false",
        "apply",
    ];
    once_each_way(&dir, &["unshare", "-n"], &args, &[], "apply failed", true);
    let _ = fs::remove_dir_all(&dir);
}
