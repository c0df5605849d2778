//! Config-side behaviour seen through the CLI: the ids file (read by every
//! command, written only by `apply`), `globals.log_level`, and
//! `dump-config` output that re-parses whatever the file is called.

mod common;

use common::{have_nft_as_root, text, work};

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    run_in(dir, &[], args)
}

/// Runs the binary, optionally under a wrapper such as `unshare -n`.
fn run_in(dir: &Path, wrapper: &[&str], args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_connroute");
    let (program, pre) = match wrapper.split_first() {
        Some((p, rest)) => (*p, [rest, &[exe]].concat()),
        None => (exe, Vec::new()),
    };
    let lock = dir.join("lock");
    let rt = dir.join("rt_tables.conf");
    let state = dir.join("run.state");
    Command::new(program)
        .args(pre)
        .args(["--syslog", "/nonexistent", "--ubus", "/nonexistent/ubus"])
        .args(["--lock", lock.to_str().unwrap()])
        .args(["--state", state.to_str().unwrap()])
        .args(["--rt-tables", rt.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

/// A private network namespace with lo up: nothing of the host's changes.
const NETNS: [&str; 5] = [
    "unshare",
    "-n",
    "sh",
    "-c",
    "ip link set lo up && exec \"$0\" \"$@\"",
];

const TWO: &str = "config gateway a\n\toption device lo\nconfig gateway b\n\toption device lo\n";

#[test]
fn commands_read_the_ids_file_and_never_write_it() {
    let d = work("ids-read");
    let conf = d.join("connroute");
    fs::write(&conf, TWO).unwrap();
    let ids = d.join("ids");
    let c = conf.to_str().unwrap();
    let i = ids.to_str().unwrap();
    // No file: file order, and nothing is created.
    let out = run(&d, &["-c", c, "--ids", i, "render", "--routes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("lookup 5001"),
        "{}",
        text(&out.stdout)
    );
    assert!(!ids.exists());
    // A record wins over position.
    fs::write(&ids, "# test\nb mark 0x07000000 table 7000\n").unwrap();
    for cmd in [&["render", "--routes"][..], &["check"]] {
        let mut args = vec!["-c", c, "--ids", i];
        args.extend(cmd);
        let out = run(&d, &args);
        assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
        if cmd[0] == "render" {
            let routes = text(&out.stdout);
            assert!(
                routes.contains("fwmark 0x7000000/0xff000000 lookup 7000"),
                "{routes}"
            );
            assert!(
                routes.contains("fwmark 0x1000000/0xff000000 lookup 5000"),
                "{routes}"
            );
        }
    }
    assert_eq!(
        fs::read_to_string(&ids).unwrap(),
        "# test\nb mark 0x07000000 table 7000\n"
    );
    // An explicit value may not take another gateway's recorded one.
    fs::write(&conf, format!("{TWO}\toption table 5000\n")).unwrap();
    fs::write(&ids, "a mark 0x01000000 table 5000\n").unwrap();
    let out = run(&d, &["-c", c, "--ids", i, "check"]);
    assert_eq!(out.status.code(), Some(2));
    let want =
        format!("{c}:5: gateway 'b': option 'table': table 5000 is recorded for gateway 'a'");
    assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
    fs::write(&conf, TWO).unwrap();
    // A damaged file is refused, naming file and line.
    fs::write(&ids, "b mark 7 table 7000\n").unwrap();
    let out = run(&d, &["-c", c, "--ids", i, "render"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{i}:1: '7' is not a mark")),
        "{}",
        text(&out.stderr)
    );
    let _ = fs::remove_dir_all(&d);
}

fn can_unshare_with_nft() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    root && Command::new("unshare")
        .args(["-n", "nft", "list", "ruleset"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn apply_records_allocations_and_an_insert_above_moves_nobody() {
    if !can_unshare_with_nft() {
        eprintln!("skipped: needs root, unshare and nft");
        return;
    }
    let d = work("ids-apply");
    let conf = d.join("connroute");
    let ids = d.join("state/ids");
    let (c, i) = (conf.to_str().unwrap(), ids.to_str().unwrap());
    fs::write(&conf, TWO).unwrap();
    let apply = |d: &Path| run_in(d, &NETNS, &["-c", c, "--ids", i, "apply"]);
    let out = apply(&d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = fs::read_to_string(&ids).unwrap();
    assert!(
        first.contains("\na mark 0x01000000 table 5000\nb mark 0x02000000 table 5001\n"),
        "{first}"
    );
    // Unchanged allocations: the file is not rewritten.
    let before = fs::metadata(&ids).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(apply(&d).status.success());
    assert_eq!(fs::metadata(&ids).unwrap().modified().unwrap(), before);
    // A new gateway above b and a removed a: b keeps its mark and table.
    fs::write(
        &conf,
        "config gateway new\n\toption device lo\nconfig gateway b\n\toption device lo\n",
    )
    .unwrap();
    let out = apply(&d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let routes = text(&run(&d, &["-c", c, "--ids", i, "render", "--routes"]).stdout);
    assert!(
        routes.contains("fwmark 0x2000000/0xff000000 lookup 5001"),
        "{routes}"
    );
    assert!(
        routes.contains("fwmark 0x3000000/0xff000000 lookup 5002"),
        "{routes}"
    );
    let second = fs::read_to_string(&ids).unwrap();
    assert!(second.contains("\nnew mark 0x03000000 table 5002\nb mark 0x02000000 table 5001\na mark 0x01000000 table 5000 retired\n"), "{second}");
    // A failing apply (bad config) writes nothing.
    fs::write(
        &conf,
        "config gateway c\n\toption device lo\n\toption colour red\n",
    )
    .unwrap();
    assert_eq!(apply(&d).status.code(), Some(2));
    assert_eq!(fs::read_to_string(&ids).unwrap(), second);
    let _ = fs::remove_dir_all(&d);
}

/// In a private network namespace (lo up) with a read-only bind mount of
/// `ro`: runs the binary, then prints connroute's ip rules and nft tables
/// after it (the exit code is the binary's).
const NETNS_RO: &str = "ip link set lo up && mount --bind \"$RO\" \"$RO\" \
    && mount -o remount,bind,ro \"$RO\" \"$RO\" && { \"$0\" \"$@\"; rc=$?; \
    echo '--- after'; ip rule | grep 'proto 197'; nft list tables; exit $rc; }";

#[test]
fn new_allocations_are_recorded_before_they_can_be_live() {
    if !can_unshare_with_nft() {
        eprintln!("skipped: needs root, unshare and nft");
        return;
    }
    let d = work("ids-early");
    let conf = d.join("connroute");
    let ids = d.join("ids");
    let (c, i) = (conf.to_str().unwrap(), ids.to_str().unwrap());
    fs::write(&conf, TWO).unwrap();
    assert!(
        run_in(&d, &NETNS, &["-c", c, "--ids", i, "apply"])
            .status
            .success()
    );
    // nft commits, then reports a failure: exit 1, the new table live with
    // gateway n's mark. Its allocation must be on record all the same.
    let late = d.join("nft-late");
    fs::write(
        &late,
        "#!/bin/sh\ncase \"$*\" in *-f*) nft \"$@\"; echo 'Error: failure after commit' >&2; exit 1;; esac\nexec nft \"$@\"\n",
    )
    .unwrap();
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(&late, exec).unwrap();
    let with_n = format!("{TWO}config gateway n\n\toption device lo\n");
    fs::write(&conf, &with_n).unwrap();
    let nft = ["--nft", late.to_str().unwrap()];
    let out = run_in(
        &d,
        &NETNS,
        &[&nft[..], &["-c", c, "--ids", i, "apply"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the new table is live"),
        "{}",
        text(&out.stderr)
    );
    let recorded = fs::read_to_string(&ids).unwrap();
    assert!(
        recorded.contains("\nn mark 0x03000000 table 5002\n"),
        "{recorded}"
    );
    // An unrelated edit (a gateway added above n) moves n nowhere.
    fs::write(
        &conf,
        format!(
            "{TWO}config gateway other\n\toption device lo\nconfig gateway n\n\toption device lo\n"
        ),
    )
    .unwrap();
    let routes = text(&run(&d, &["-c", c, "--ids", i, "render", "--routes"]).stdout);
    assert!(
        routes.contains("fwmark 0x3000000/0xff000000 lookup 5002"),
        "{routes}"
    );
    assert!(
        routes.contains("fwmark 0x4000000/0xff000000 lookup 5003"),
        "{routes}"
    );

    // An ids file that cannot be written when a new allocation is needed:
    // exit 1 before anything changes.
    let ro = d.join("ro");
    fs::create_dir_all(&ro).unwrap();
    let ro_ids = ro.join("ids");
    fs::write(
        &ro_ids,
        "a mark 0x01000000 table 5000\nb mark 0x02000000 table 5001\n",
    )
    .unwrap();
    let r = ro_ids.to_str().unwrap();
    let netns_ro = [
        "env",
        &format!("RO={}", ro.display()),
        "unshare",
        "-n",
        "-m",
        "sh",
        "-c",
        NETNS_RO,
    ];
    fs::write(&conf, &with_n).unwrap();
    let out = run_in(&d, &netns_ro, &["-c", c, "--ids", r, "apply"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing changed: cannot record the new allocations"),
        "{stderr}"
    );
    assert!(stderr.contains(r), "names the file: {stderr}");
    assert!(
        stdout.ends_with("--- after\n"),
        "something changed: {stdout}"
    );
    // No new allocation needed (b removed: its line is retired later):
    // the same read-only file does not stop the apply.
    fs::write(&conf, "config gateway a\n\toption device lo\n").unwrap();
    let out = run_in(&d, &netns_ro, &["-c", c, "--ids", r, "apply"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("table inet connroute"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("the ids file is left as it was"),
        "{}",
        text(&out.stderr)
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn log_level_filters_what_is_logged() {
    let d = work("log-level");
    let conf = d.join("connroute");
    let c = conf.to_str().unwrap();
    let stderr_for = |level: &str, verbose: bool| {
        fs::write(
            &conf,
            format!(
                "config globals globals\n\toption log_level {level}\nconfig frobnicate x\n{TWO}"
            ),
        )
        .unwrap();
        let mut args = vec!["-c", c];
        if verbose {
            args.push("-v");
        }
        args.push("render");
        let out = run(&d, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let error = stderr_for("error", false);
    assert!(
        !error.contains("warning") && !error.contains("debug:"),
        "{error}"
    );
    let info = stderr_for("info", false);
    assert!(
        info.contains("unknown section type") && !info.contains("debug:"),
        "{info}"
    );
    let debug = stderr_for("debug", false);
    assert!(debug.contains("debug: peak RSS"), "{debug}");
    let verbose = stderr_for("error", true);
    assert!(
        verbose.contains("debug: peak RSS"),
        "-v forces debug: {verbose}"
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn dump_config_output_reparses_whatever_the_file_is_called() {
    let d = work("dump");
    let seed = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.conf")).unwrap();
    for (name, package) in [
        ("my.conf", "my"),
        ("connroute", "connroute"),
        ("a b.conf", "connroute"),
        ("x.y.z", "connroute"),
        ("wan-2", "wan-2"),
    ] {
        let f = d.join(name);
        fs::write(&f, &seed).unwrap();
        let out = run(&d, &["-c", f.to_str().unwrap(), "dump-config"]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let dumped = text(&out.stdout);
        assert!(
            dumped.starts_with(&format!("package {package}\n")),
            "{name}: {dumped}"
        );
        // The output, saved under the same name, loads and dumps to itself.
        let again = d.join("again");
        fs::create_dir_all(&again).unwrap();
        fs::write(again.join(name), &dumped).unwrap();
        let p = again.join(name);
        let check = run(&d, &["-c", p.to_str().unwrap(), "check"]);
        assert!(check.status.success(), "{name}: {}", text(&check.stderr));
        let out2 = run(&d, &["-c", p.to_str().unwrap(), "dump-config"]);
        assert_eq!(text(&out2.stdout), dumped, "{name}");
    }
    let _ = fs::remove_dir_all(&d);
}

mod text_render {
    use super::*;
    use proptest::prelude::*;

    /// Names built from characters that could end an nft token early.
    fn hostile() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "e", "t", "h", "0", "-", ".", "_", "\"", ";", "#", " ", "{", "}", "\\\\", "*", "$",
                ":", "/", "!", "@", "drop", "accept",
            ]),
            1..8,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever device names a config holds, it is either refused (exit
        /// 2) or its text render loads in `nft -c` with no extra statement.
        #[test]
        fn accepted_configs_render_text_nft_accepts(dev in hostile(), in_dev in hostile()) {
            if !have_nft_as_root() {
                return Ok(());
            }
            let d = work("text-prop");
            let conf = d.join("connroute");
            let src = format!(
                "config gateway g\n\toption device '{}'\nconfig rule r\n\toption gateway g\n\tlist in_device '{}'\n",
                dev.replace('\'', ""),
                in_dev.replace('\'', "")
            );
            fs::write(&conf, &src).unwrap();
            let out = run(&d, &["-c", conf.to_str().unwrap(), "render", "--format", "nft"]);
            match out.status.code() {
                Some(2) => {}
                Some(0) => {
                    let nft = d.join("out.nft");
                    fs::write(&nft, &out.stdout).unwrap();
                    let c = Command::new("nft").args(["-c", "-f"]).arg(&nft).output().unwrap();
                    prop_assert!(c.status.success(), "{src}\n{}", text(&c.stderr));
                    let body = text(&out.stdout);
                    prop_assert!(!body.contains(" drop"), "{body}");
                }
                other => prop_assert!(false, "exit {other:?}: {}", text(&out.stderr)),
            }
            let _ = fs::remove_dir_all(&d);
        }
    }
}

/// A typo in an interface name leaves a gateway or rule out, and its
/// connections to a later rule: `check` says so (it already reads netifd).
#[test]
fn check_names_interfaces_netifd_does_not_know() {
    if !can_unshare_with_nft() {
        eprintln!("skipped: needs root, unshare and nft");
        return;
    }
    let d = work("check-netifd");
    let conf = d.join("connroute");
    let ubus = d.join("ubus");
    let dump = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netifd/dump.json");
    fs::write(&ubus, format!("#!/bin/sh\ncat '{}'\n", dump.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ubus, fs::Permissions::from_mode(0o755)).unwrap();
    // One name of two misspelt (the shipped example's shape): the gateway
    // stays active through wan2, but wan2_6 was meant.
    fs::write(
        &conf,
        "config gateway typo\n\tlist interface wan2\n\tlist interface wan26\n\
         config gateway g\n\toption gateway 192.168.1.2\n\
         config rule r\n\toption gateway g\n\tlist in_interface wan2\n\tlist in_interface wna2\n",
    )
    .unwrap();
    let (c, u) = (conf.to_str().unwrap(), ubus.to_str().unwrap());
    let ids = d.join("ids");
    let check = |ubus: &str| {
        let args = [
            "-c",
            c,
            "--ids",
            ids.to_str().unwrap(),
            "--ubus",
            ubus,
            "check",
        ];
        let out = run_in(&d, &["unshare", "-n"], &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let err = check(u);
    let want = format!("{c}:1: gateway 'typo': option 'interface': 'wan26' unknown to netifd");
    assert!(err.contains(&want), "{err}");
    let want = format!("{c}:6: rule 'r': option 'in_interface': 'wna2' unknown to netifd");
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("'wan2' unknown"), "{err}");
    // netifd not reachable: no name is called a typo.
    let err = check("/nonexistent/ubus");
    assert!(!err.contains("unknown to netifd"), "{err}");
}
