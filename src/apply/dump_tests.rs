//! Crafted datagrams for the reply collector. Every integer is written with
//! `to_ne_bytes`, so the same bytes mean the same on big-endian MIPS.

use super::*;
use std::io;

/// A 12-byte header of `family`, then `(type, value)` attributes, padded.
fn body(family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    b[0] = family;
    for (t, v) in attrs {
        b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&t.to_ne_bytes());
        b.extend_from_slice(v);
        b.resize((b.len() + 3) & !3, 0);
    }
    b
}

/// A rule body as the kernel sends it for one of connroute's rules.
fn rule() -> Vec<u8> {
    body(
        2,
        &[
            (6, &5000u32.to_ne_bytes()),
            (10, &0x0100_0000u32.to_ne_bytes()),
            (16, &0xff00_0000u32.to_ne_bytes()),
            (15, &5000u32.to_ne_bytes()),
            (21, &[197]),
        ],
    )
}

/// A route body with an IPv4 gateway and output device.
fn route() -> Vec<u8> {
    body(
        2,
        &[
            (15, &5000u32.to_ne_bytes()),
            (5, &[10, 2, 0, 1]),
            (4, &7u32.to_ne_bytes()),
        ],
    )
}

fn msg(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = rtnl::message(kind, flags, seq, body);
    m.resize((m.len() + 3) & !3, 0);
    m
}

fn done(seq: u32, flags: u16, error: i32) -> Vec<u8> {
    msg(kind::DONE, flags, seq, &error.to_ne_bytes())
}

#[test]
fn a_multipart_dump_is_collected_until_done() {
    let mut c = Collector::new(9);
    let mut first = msg(kind::NEWRULE, flags::MULTI, 9, &rule());
    first.extend(msg(kind::NEWROUTE, flags::MULTI, 9, &route()));
    assert_eq!(c.feed(&first), Ok(Progress::More));
    // A stale reply to an earlier request is ignored.
    let mut second = msg(kind::NEWRULE, flags::MULTI, 8, &rule());
    second.extend(done(9, flags::MULTI, 0));
    assert_eq!(c.feed(&second), Ok(Progress::Done));
    assert_eq!(c.bodies, vec![rule(), route()]);
}

#[test]
fn an_interrupted_dump_is_drained_then_reported() {
    let mut c = Collector::new(3);
    let intr = flags::MULTI | flags::DUMP_INTR;
    assert_eq!(
        c.feed(&msg(kind::NEWRULE, intr, 3, &rule())),
        Ok(Progress::More)
    );
    assert_eq!(c.feed(&done(3, flags::MULTI, 0)), Err(Fault::Interrupted));
    // The flag on the DONE message alone counts too.
    let mut c = Collector::new(4);
    assert_eq!(c.feed(&done(4, intr, 0)), Err(Fault::Interrupted));
}

#[test]
fn kernel_errors_and_acks() {
    let ack = |e: i32| {
        let mut b = e.to_ne_bytes().to_vec();
        b.extend_from_slice(&[0; 16]);
        msg(kind::ERROR, 0, 5, &b)
    };
    assert_eq!(Collector::new(5).feed(&ack(0)), Ok(Progress::Done));
    assert_eq!(
        Collector::new(5).feed(&ack(-libc::EEXIST)),
        Err(Fault::Kernel(libc::EEXIST))
    );
    assert_eq!(
        Collector::new(5).feed(&done(5, flags::MULTI, -libc::EBUSY)),
        Err(Fault::Kernel(libc::EBUSY))
    );
    let e = Collector::new(5)
        .feed(&msg(kind::ERROR, 0, 5, &[0, 0]))
        .unwrap_err();
    assert!(matches!(e, Fault::Malformed(_)), "{e}");
}

#[test]
fn a_truncated_datagram_is_an_error() {
    let m = msg(kind::NEWRULE, flags::MULTI, 1, &rule());
    for n in 1..m.len() {
        let got = Collector::new(1).feed(&m[..n]);
        assert!(
            matches!(got, Err(Fault::Malformed(_))),
            "cut at {n}: {got:?}"
        );
    }
}

#[test]
fn attributes_that_overrun_or_underrun_are_errors() {
    let mut b = rule();
    // Last attribute (FRA_PROTOCOL at byte 12 + 4 * 8) claims 64 bytes.
    let last = 12 + 4 * 8;
    b[last..last + 2].copy_from_slice(&64u16.to_ne_bytes());
    let e = validate(kind::NEWRULE, &b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed netlink reply: rule attribute 21 at byte 44 claims 64 bytes, 8 left"
    );
    b[last..last + 2].copy_from_slice(&2u16.to_ne_bytes());
    assert!(validate(kind::NEWRULE, &b).is_err());
    // A header cut short after the last whole attribute.
    let mut b = route();
    b.extend_from_slice(&[8, 0]);
    let e = validate(kind::NEWROUTE, &b).unwrap_err();
    assert!(e.to_string().contains("cut short"), "{e}");
    assert!(validate(kind::NEWROUTE, &route()[..11]).is_err());
}

#[test]
fn attributes_connroute_reads_must_have_their_size() {
    let short_mark = body(2, &[(10, &[1, 0]), (21, &[197])]);
    let e = validate(kind::NEWRULE, &short_mark).unwrap_err();
    assert!(
        e.to_string()
            .contains("attribute 10 has 2 bytes, expected 4"),
        "{e}"
    );
    let v6_gateway_in_v4 = body(2, &[(5, &[0xfe; 16])]);
    assert!(validate(kind::NEWROUTE, &v6_gateway_in_v4).is_err());
    assert!(validate(kind::NEWROUTE, &body(10, &[(5, &[0xfe; 16])])).is_ok());
    // Attributes connroute does not read may have any size; the nested
    // and byte-order bits of the type are ignored.
    assert!(validate(kind::NEWROUTE, &body(2, &[(0x8000 | 12, &[1, 2, 3])])).is_ok());
    let e = validate(kind::NEWROUTE, &body(2, &[(0x8000 | 4, &[1])])).unwrap_err();
    assert!(e.to_string().contains("attribute 4 has 1 bytes"), "{e}");
}

#[test]
fn whatever_the_encoder_builds_validates() {
    assert!(validate(kind::NEWRULE, &rule()).is_ok());
    assert!(validate(kind::NEWROUTE, &route()).is_ok());
    // A final attribute without its padding (nlmsg_len excludes it) is fine.
    let b = body(2, &[(21, &[197])]);
    assert!(validate(kind::NEWRULE, &b[..b.len() - 3]).is_ok());
}

#[test]
fn interrupted_dumps_are_restarted_a_bounded_number_of_times() {
    let mut calls = 0;
    let got = with_restarts("dumping routes", 4, || {
        calls += 1;
        if calls < 3 {
            Err(Fault::Interrupted)
        } else {
            Ok(calls)
        }
    });
    assert_eq!(got.unwrap(), 3);
    let mut calls = 0;
    let e = with_restarts("dumping routes", 4, || -> Result<(), Fault> {
        calls += 1;
        Err(Fault::Interrupted)
    })
    .unwrap_err();
    assert_eq!(calls, 4);
    assert!(
        e.to_string()
            .starts_with("dumping routes: the kernel's tables kept changing"),
        "{e}"
    );
}

#[test]
fn other_faults_are_not_retried_and_keep_their_kind() {
    for (fault, kind) in [
        (Fault::Kernel(libc::ENOENT), io::ErrorKind::NotFound),
        (Fault::Malformed("x".into()), io::ErrorKind::InvalidData),
        (
            Fault::TimedOut("no reply within 5 s".into()),
            io::ErrorKind::TimedOut,
        ),
    ] {
        let mut calls = 0;
        let e = with_restarts("dumping ip rules", 4, || -> Result<(), Fault> {
            calls += 1;
            Err(fault.clone())
        })
        .unwrap_err();
        assert_eq!((calls, e.kind()), (1, kind), "{e}");
    }
    let e = with_restarts("dumping ip rules", 4, || -> Result<(), Fault> {
        Err(Fault::TimedOut("no reply within 5 s".into()))
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dumping ip rules: netlink timed out: no reply within 5 s"
    );
}

#[test]
fn lost_replies_restart_the_request_and_end_as_enobufs() {
    let mut n = 0;
    let r = with_restarts("dumping", 4, || {
        n += 1;
        if n < 3 { Err(Fault::Lost) } else { Ok(n) }
    });
    assert_eq!(r.unwrap(), 3);
    // Still lost at the last attempt (or the only one, for a change):
    // the errno, not a dump that "kept changing".
    for tries in [1, 4] {
        let e = with_restarts("adding", tries, || Err::<(), _>(Fault::Lost)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "{e}");
    }
    assert!(Fault::Lost.to_string().contains("ENOBUFS"));
}
