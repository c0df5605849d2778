//! Unit tests of the names file: ownership, atomic writes, collisions.

use super::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// A fresh `…/iproute2` directory with an empty `rt_tables.d`.
fn iproute2(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("connroute-rtt-{name}-{}", std::process::id()))
        .join("iproute2");
    let _ = std::fs::remove_dir_all(d.parent().unwrap());
    std::fs::create_dir_all(d.join("rt_tables.d")).unwrap();
    d
}

fn cleanup(d: &Path) {
    let _ = std::fs::remove_dir_all(d.parent().unwrap());
}

fn names() -> Vec<(u32, String)> {
    vec![(5000, "router1".into()), (5001, "router2".into())]
}

/// Every entry of a directory, for "nothing else was created" checks.
fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_then_leaves_an_identical_file_alone_then_removes_it() {
    let d = iproute2("own");
    let path = d.join("rt_tables.d/connroute.conf");
    assert_eq!(write(&path, &names()).unwrap(), Change::Written);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{MARKER}\n5000\trouter1\n5001\trouter2\n"));
    assert_eq!(write(&path, &names()).unwrap(), Change::Unchanged);
    assert_eq!(write(&path, &names()[..1]).unwrap(), Change::Written);
    assert_eq!(listing(&d.join("rt_tables.d")), ["connroute.conf"]); // no temp left
    assert_eq!(remove(&path).unwrap(), Change::Removed);
    assert!(!path.exists());
    assert_eq!(remove(&path).unwrap(), Change::Unchanged);
    cleanup(&d);
}

#[test]
fn a_foreign_file_is_neither_rewritten_nor_removed() {
    let d = iproute2("foreign");
    let path = d.join("rt_tables.d/connroute.conf");
    let theirs = "# mine\n100\tisp\n";
    std::fs::write(&path, theirs).unwrap();
    assert!(matches!(
        write(&path, &names()).unwrap(),
        Change::Foreign(_)
    ));
    assert!(matches!(remove(&path).unwrap(), Change::Foreign(_)));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
    assert!(
        foreign_note(&path)
            .unwrap()
            .contains("not written by connroute")
    );
    cleanup(&d);
}

#[test]
fn a_planted_symlink_is_never_followed() {
    let d = iproute2("symlink");
    let path = d.join("rt_tables.d/connroute.conf");
    let target = d.join("target");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_eq!(
        write(&path, &names()).unwrap(),
        Change::Foreign("a symbolic link".into())
    );
    assert!(!target.exists(), "dangling target created");
    // Pointing at a file connroute wrote does not make the link ours.
    std::fs::write(&target, render(&names())).unwrap();
    assert!(matches!(remove(&path).unwrap(), Change::Foreign(_)));
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(target.exists());
    cleanup(&d);
}

#[test]
fn a_fifo_at_the_path_is_foreign_not_a_hang() {
    let d = iproute2("fifo");
    let path = d.join("rt_tables.d/connroute.conf");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(
        write(&path, &names()).unwrap(),
        Change::Foreign("not a regular file".into())
    );
    // Another names file being a FIFO does not hang the collision check.
    let other = d.join("rt_tables.d/other.conf");
    let c = CString::new(other.as_os_str().as_bytes()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(collisions(&d, &d.join("rt_tables.d/x.conf"), &names()).is_ok());
    cleanup(&d);
}

#[test]
fn without_an_iproute2_directory_nothing_is_written() {
    let d = iproute2("none");
    let path = d.join("missing/rt_tables.d/connroute.conf");
    assert_eq!(write(&path, &names()).unwrap(), Change::Skipped);
    assert!(!d.join("missing").exists());
    cleanup(&d);
}

#[test]
fn names_defined_elsewhere_for_another_table_are_refused_with_file_and_line() {
    let d = iproute2("collide");
    let own = d.join("rt_tables.d/connroute.conf");
    std::fs::write(
        d.join("rt_tables"),
        "#\n# reserved values\n255\tlocal\n254\tmain\n0x64 router2 # hex id\n",
    )
    .unwrap();
    let e = collisions(&d, &own, &names()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:5: table name 'router2' already means table 100; gateway 'router2' (table 5001) needs another name",
            d.join("rt_tables").display()
        )
    );
    // The same name for the same table is no ambiguity.
    std::fs::write(d.join("rt_tables"), "5001 router2\n").unwrap();
    assert!(collisions(&d, &own, &names()).is_ok());
    // rt_tables.d/*.conf count; other extensions and our own files do not.
    std::fs::write(d.join("rt_tables.d/mwan3.conf"), "# x\n7 router1\n").unwrap();
    std::fs::write(d.join("rt_tables.d/notes.txt"), "8 router2\n").unwrap();
    std::fs::write(&own, "9 router2\n").unwrap();
    std::fs::write(
        d.join("rt_tables.d/old.conf"),
        render(&[(3, "router2".into())]),
    )
    .unwrap();
    let e = collisions(&d, &own, &names()).unwrap_err();
    assert!(
        e.to_string()
            .contains("mwan3.conf:2: table name 'router1' already means table 7"),
        "{e}"
    );
    std::fs::remove_file(d.join("rt_tables.d/mwan3.conf")).unwrap();
    assert!(collisions(&d, &own, &names()).is_ok());
    cleanup(&d);
}

#[test]
fn the_iproute2_directory_is_found_from_the_names_file() {
    assert_eq!(
        iproute2_dir(Path::new("/etc/iproute2/rt_tables.d/connroute.conf")),
        Path::new("/etc/iproute2")
    );
    assert_eq!(
        iproute2_dir(Path::new("/tmp/w/names.conf")),
        Path::new("/tmp/w")
    );
}
