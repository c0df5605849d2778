use super::*;
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    mark_mask: 0xff00_0000,
    table_base: 5000,
};

fn req(name: &str) -> Request {
    Request {
        name: name.into(),
        mark: None,
        table: None,
    }
}

fn run(reqs: &[Request], prev: &Ids) -> (Vec<Assignment>, Ids) {
    allocate(reqs, LIMITS, prev).unwrap()
}

#[test]
fn without_a_file_allocation_is_in_file_order() {
    let mut b = req("b");
    b.mark = Some(0x0100_0000);
    b.table = Some(5000);
    let (got, ids) = run(&[req("a"), b, req("c")], &Ids::default());
    let pairs: Vec<(u32, u32)> = got.iter().map(|a| (a.mark, a.table)).collect();
    assert_eq!(
        pairs,
        [
            (0x0200_0000, 5001),
            (0x0100_0000, 5000),
            (0x0300_0000, 5002)
        ]
    );
    assert_eq!(ids.records.len(), 3);
}

#[test]
fn inserting_above_and_removing_moves_nobody() {
    let (_, ids) = run(&[req("r1"), req("r2")], &Ids::default());
    let (got, ids) = run(&[req("new"), req("r2")], &ids);
    assert_eq!((got[1].mark, got[1].table), (0x0200_0000, 5001));
    // r1 is retired; new got a fresh mark rather than r1's.
    assert_eq!((got[0].mark, got[0].table), (0x0300_0000, 5002));
    let r1 = ids.get("r1").unwrap();
    assert!(r1.retired && r1.mark == 0x0100_0000);
}

#[test]
fn retired_values_are_reused_only_when_nothing_else_is_free() {
    let limits = Limits {
        mark_mask: 0x0300_0000,
        table_base: 5000,
    };
    let (_, ids) = allocate(&[req("a"), req("b"), req("c")], limits, &Ids::default()).unwrap();
    let (got, ids) = allocate(&[req("b"), req("c"), req("d")], limits, &ids).unwrap();
    assert_eq!(got[2].mark, 0x0100_0000, "a's mark, the only one left");
    assert!(ids.get("a").is_none(), "a reused record is dropped");
    let e = allocate(&[req("b"), req("c"), req("d"), req("e")], limits, &ids).unwrap_err();
    assert_eq!(e[0].index, 3);
    assert!(
        e[0].message
            .contains("no free mark left inside mark_mask 0x03000000")
    );
}

#[test]
fn tables_handed_out_anew_come_from_table_base_up() {
    let (_, ids) = run(&[req("old"), req("kept")], &Ids::default());
    let high = Limits {
        mark_mask: 0xff00_0000,
        table_base: u32::MAX,
    };
    // kept keeps 5001 below the new base; old's retired 5000 is not reused.
    let e = allocate(&[req("kept"), req("x"), req("y")], high, &ids).unwrap_err();
    assert_eq!((e.len(), e[0].index), (1, 2));
    let (got, _) = allocate(&[req("kept"), req("x")], high, &ids).unwrap();
    assert_eq!((got[0].table, got[1].table), (5001, u32::MAX));
}

#[test]
fn explicit_value_taking_a_recorded_one_is_an_error_naming_both() {
    let (_, ids) = run(&[req("a"), req("b")], &Ids::default());
    let mut b = req("b");
    b.mark = Some(0x0100_0000);
    let e = allocate(&[req("a"), b], LIMITS, &ids).unwrap_err();
    assert_eq!((e[0].index, e[0].option), (1, Some("mark")));
    assert!(
        e[0].message
            .contains("0x01000000 is recorded for gateway 'a'")
    );
    // A retired record gives way to an explicit value.
    let mut c = req("c");
    c.table = Some(5000);
    let (got, ids) = run(&[req("b"), c], &ids);
    assert_eq!(got[1].table, 5000);
    assert!(ids.get("a").is_none());
}

#[test]
fn table_base_near_the_top_fails_with_an_error() {
    let limits = Limits {
        mark_mask: 0xffff_ffff,
        table_base: u32::MAX - 2,
    };
    let reqs: Vec<Request> = (0..5000).map(|i| req(&format!("g{i}"))).collect();
    // It returns at all: the unbounded loop it replaces spun forever.
    let e = allocate(&reqs, limits, &Ids::default()).unwrap_err();
    assert_eq!(e[0].index, 3);
    assert!(
        e[0].message
            .contains("no free routing table id left from table_base 4294967293")
    );
}

#[test]
fn file_round_trips_and_is_strict() {
    let (_, ids) = run(&[req("a"), req("b")], &Ids::default());
    let (_, ids) = run(&[req("b")], &ids);
    let text = render(&ids);
    assert!(
        text.contains("\nb mark 0x02000000 table 5001\na mark 0x01000000 table 5000 retired\n")
    );
    assert_eq!(parse(text.as_bytes(), "ids").unwrap(), ids);
    for (bad, why) in [
        ("a mark 1 table 5000\n", "ids:1: '1' is not a mark"),
        (
            "a mark 0x1 table 254\n",
            "ids:1: '254' is not a usable table id",
        ),
        (
            "a mark 0x1 table 5\n\na mark 0x2 table 6\n",
            "ids:3: gateway 'a' appears twice",
        ),
        (
            "a mark 0x1 table 5\nb mark 0x1 table 6\n",
            "ids:2: mark 0x00000001 appears twice",
        ),
        (
            "a-b mark 0x1 table 5\n",
            "ids:1: 'a-b' is not a gateway name",
        ),
        ("a mark 0x1 table 5 gone\n", "ids:1: expected"),
    ] {
        let e = parse(bad.as_bytes(), "ids").unwrap_err();
        assert!(e.starts_with(why), "{bad:?}: {e}");
    }
}

#[test]
fn write_is_atomic_and_refuses_a_planted_temp_file() {
    let dir = std::env::temp_dir().join(format!("connroute-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("ids");
    let (_, ids) = run(&[req("a")], &Ids::default());
    write(&path, &ids).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&ids));
    let planted = dir.join(format!(".ids.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(dir.join("target"), &planted).unwrap();
    assert!(write(&path, &Ids::default()).is_err());
    assert!(!dir.join("target").exists(), "the symlink was not followed");
    assert!(
        std::fs::symlink_metadata(&planted).is_ok(),
        "not ours: left alone"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&ids));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A pid no process has, counting down from `from`.
pub(crate) fn unused_pid(from: u32) -> u32 {
    (1..=from).rev().find(|&p| file::gone(p)).unwrap()
}

#[test]
fn temporaries_of_killed_writes_are_removed_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("connroute-ids-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".ids.5.tmp")).unwrap();
    let path = dir.join("ids");
    let mine = format!(".ids.{}.tmp", std::process::id());
    let mut running = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let live = format!(".ids.{}.tmp", running.id());
    let dead = format!(".ids.{}.tmp", unused_pid(4_194_303));
    let stale = [dead.as_str(), mine.as_str()];
    let kept = [
        ".ids..tmp",
        ".ids.12a.tmp",
        ".idsx.1.tmp",
        ".ids.1.tmp.x",
        "ids.1.tmp",
        "..ids.1.tmp",
        ".other.1.tmp",
        // Names no write makes: not canonical, no pid, beyond any pid.
        ".ids.04194303.tmp",
        ".ids.+4194303.tmp",
        ".ids.0.tmp",
        ".ids.4194305.tmp",
        // A process that still runs: possibly a write under another lock.
        live.as_str(),
    ];
    for f in stale.iter().chain(&kept) {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    std::os::unix::fs::symlink(dir.join("target"), dir.join(".ids.77.tmp")).unwrap();
    // A write removes them first: even one left by a killed run that had
    // this pid no longer blocks every later write.
    let (_, ids) = run(&[req("a")], &Ids::default());
    write(&path, &ids).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&ids));
    let left = |f: &str| std::fs::symlink_metadata(dir.join(f)).is_ok();
    assert!(!stale.iter().any(|f| left(f)), "a stale temporary is left");
    assert!(kept.iter().all(|f| left(f)), "another file was removed");
    assert!(
        left(".ids.77.tmp") && left(".ids.5.tmp"),
        "not a regular file: not ours"
    );
    // And on their own (flush), the ids file itself untouched.
    let dead = format!(".ids.{}.tmp", unused_pid(4_194_303));
    std::fs::write(dir.join(&dead), "x").unwrap();
    remove_temporaries(&path);
    assert!(!left(&dead) && left("ids") && left(".ids.12a.tmp"));
    // A path naming no file (`D/.`, `D/`): nothing removed, one level up
    // included, and nothing written.
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(dir.join(".sub.4194302.tmp"), "x").unwrap();
    for odd in ["sub/.", "sub/", "sub/.."] {
        let p = std::path::PathBuf::from(format!("{}/{odd}", dir.display()));
        remove_temporaries(&p);
        assert!(
            write(&p, &ids).unwrap_err().contains("not a file path"),
            "{odd}"
        );
    }
    assert!(
        left(".sub.4194302.tmp"),
        "removed beside the directory named"
    );
    let _ = running.kill();
    let _ = running.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durable_records_new_allocations_and_drops_nothing_else_early() {
    let (_, prev) = run(&[req("a"), req("b")], &Ids::default());
    // Nothing new (same, reordered, or a gateway removed): no early write.
    let (_, now) = run(&[req("b"), req("a")], &prev);
    assert_eq!(durable(&prev, &now), None);
    let (_, now) = run(&[req("b")], &prev);
    assert!(now.get("a").unwrap().retired);
    assert_eq!(durable(&prev, &now), None);
    // A new gateway, and one removed: the new one recorded, the removed
    // one kept as it was (retired only after success).
    let (_, now) = run(&[req("n"), req("b")], &prev);
    let d = durable(&prev, &now).unwrap();
    assert_eq!(d.get("n"), now.get("n"));
    assert_eq!(d.get("b"), prev.get("b"));
    assert_eq!(d.get("a"), prev.get("a"), "not retired early");
    assert_eq!(parse(render(&d).as_bytes(), "ids").unwrap(), d);
    // What the failed run left is what the next one starts from: the new
    // gateway keeps its values whatever is added above it.
    let (got, _) = run(&[req("other"), req("n"), req("b")], &d);
    let n = now.get("n").unwrap();
    assert_eq!((got[1].mark, got[1].table), (n.mark, n.table));
    assert_ne!((got[0].mark, got[0].table), (n.mark, n.table));
    // A recorded gateway's new explicit value waits for success (the
    // option keeps it; a rolled-back run must not move the record).
    let mut b = req("b");
    b.mark = Some(0x0900_0000);
    let (_, now) = run(&[req("a"), b], &prev);
    assert_eq!(durable(&prev, &now), None);
    // A new gateway taking a removed one's value explicitly: the new one
    // is kept (it may be live), the file stays valid.
    let mut n = req("n");
    n.mark = Some(0x0100_0000);
    let (_, now) = run(&[n, req("b")], &prev);
    let d = durable(&prev, &now).unwrap();
    assert_eq!(d.get("n").unwrap().mark, 0x0100_0000);
    assert_eq!(d.get("a"), None);
    assert_eq!(parse(render(&d).as_bytes(), "ids").unwrap(), d);
}

#[test]
fn durable_never_drops_a_gateway_that_is_still_configured() {
    // rev20 H1: with three marks, b given a new explicit mark frees its
    // old one, and the new gateway n is handed it. Written early, n's
    // record would replace b's, and a rolled-back run would leave b, still
    // live with its old mark, unrecorded: a later apply moved it.
    let limits = Limits {
        mark_mask: 0x0300_0000,
        table_base: 5000,
    };
    let (_, prev) = allocate(&[req("a"), req("b")], limits, &Ids::default()).unwrap();
    let mut b = req("b");
    b.mark = Some(0x0300_0000);
    let (got, now) = allocate(&[req("a"), b, req("n")], limits, &prev).unwrap();
    assert_eq!(got[2].mark, 0x0200_0000, "n takes b's old mark");
    // n cannot be recorded before success without dropping b: not early.
    assert_eq!(durable(&prev, &now), None);
    // Another new gateway that collides with nobody still is.
    let (_, prev) = run(&[req("a"), req("b")], &Ids::default());
    let mut b = req("b");
    b.mark = Some(0x0900_0000);
    let (_, now) = run(&[req("a"), b, req("m")], &prev);
    let d = durable(&prev, &now).unwrap();
    assert_eq!((d.get("a"), d.get("b")), (prev.get("a"), prev.get("b")));
    assert_eq!(d.get("m"), now.get("m"));
}

/// An edit of the gateway list.
#[derive(Debug, Clone)]
enum Edit {
    Add(usize),
    Remove(usize),
    Swap(usize, usize),
    RenameOther(usize),
    Explicit(usize, u32),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..8usize).prop_map(Edit::Add),
        (0..8usize).prop_map(Edit::Remove),
        (0..8usize, 0..8usize).prop_map(|(a, b)| Edit::Swap(a, b)),
        (0..8usize).prop_map(Edit::RenameOther),
        (0..8usize, 1..40u32).prop_map(|(i, m)| Edit::Explicit(i, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the edits, a gateway present before and after an edit
    /// keeps its mark and table; explicit values are honoured or refused.
    #[test]
    fn edits_never_move_an_existing_gateway(edits in prop::collection::vec(edit(), 1..30)) {
        let limits = Limits { mark_mask: 0x3f00_0000, table_base: 100 };
        let mut reqs = vec![req("g0"), req("g1")];
        let mut counter = 2;
        let (mut got, mut ids) = allocate(&reqs, limits, &Ids::default()).unwrap();
        for e in edits {
            let mut next = reqs.clone();
            let n = next.len();
            match e {
                Edit::Add(i) => { next.insert(i.min(n), req(&format!("g{counter}"))); counter += 1; }
                Edit::Remove(i) if n > 0 => { next.remove(i % n); }
                Edit::Swap(a, b) if n > 0 => next.swap(a % n, b % n),
                Edit::RenameOther(i) if n > 0 => { next[i % n].name = format!("g{counter}"); counter += 1; }
                Edit::Explicit(i, m) if n > 0 => next[i % n].mark = Some(m << 24),
                _ => {}
            }
            let Ok((new_got, new_ids)) = allocate(&next, limits, &ids) else {
                // Refused (an explicit value hits a recorded one): nothing changes.
                continue;
            };
            for (r, a) in next.iter().zip(&new_got) {
                if let Some(m) = r.mark {
                    prop_assert_eq!(a.mark, m);
                }
                if let Some(i) = reqs.iter().position(|p| p.name == r.name) {
                    if r.mark.is_none() && reqs[i].mark.is_none() {
                        prop_assert_eq!(a.mark, got[i].mark, "{} moved", r.name);
                    }
                    prop_assert_eq!(a.table, got[i].table, "{} table moved", r.name);
                }
            }
            let mut marks: Vec<u32> = new_got.iter().map(|a| a.mark).collect();
            marks.sort();
            marks.dedup();
            prop_assert_eq!(marks.len(), new_got.len(), "marks unique");
            prop_assert_eq!(parse(render(&new_ids).as_bytes(), "ids").unwrap(), new_ids.clone());
            (reqs, got, ids) = (next, new_got, new_ids);
        }
    }
}

#[test]
fn the_reader_refuses_a_fifo_or_symlink_without_blocking() {
    let dir = std::env::temp_dir().join(format!("cr-ids-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("ids");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let link = dir.join("link");
    std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
    let got = (
        crate::ids::read_regular(&fifo),
        crate::ids::read_regular(&link),
        crate::ids::read_regular(&dir.join("none")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(got.0.unwrap_err().ends_with("/ids: not a regular file"));
    assert!(got.1.unwrap_err().contains("/link: cannot read"));
    assert_eq!(got.2, Ok(None));
}
