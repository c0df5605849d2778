//! The nfnetlink dump against crafted reply buffers: restarts while the
//! kernel flags it inconsistent, bounded; what the table digest takes and leaves out.

use super::digest::*;
use super::*;

#[test]
fn an_interrupted_table_dump_is_restarted_and_bounded() {
    let data = |f: u16, seq| rtnl::message(msg_type(NFT_MSG_NEWGEN), f, seq, &[2, 0, 0, 0]);
    let done = |seq| rtnl::message(kind::DONE, flags::MULTI, seq, &0i32.to_ne_bytes());
    let intr = flags::MULTI | flags::DUMP_INTR;
    // First attempt flagged inconsistent, the second clean.
    let mut script: Vec<Vec<u8>> = vec![
        [data(intr, 7), data(flags::MULTI, 6)].concat(),
        done(7),
        [data(flags::MULTI, 7), data(flags::MULTI, 7)].concat(),
        done(7),
    ];
    script.reverse();
    let mut sent = 0;
    let got = dump_with(
        7,
        || {
            sent += 1;
            Ok(())
        },
        || script.pop().ok_or(Fault::TimedOut("no more".into())),
    )
    .unwrap();
    assert_eq!((sent, got.len()), (2, 2));
    // Always inconsistent: an error after DUMP_TRIES attempts.
    let mut sent = 0;
    let e = dump_with(
        7,
        || {
            sent += 1;
            Ok(())
        },
        || Ok([data(intr, 7), done(7)].concat()),
    )
    .unwrap_err();
    assert_eq!(sent, DUMP_TRIES);
    assert!(e.to_string().contains("NLM_F_DUMP_INTR"), "{e}");
    // ENOENT: nothing to dump.
    let enoent = rtnl::message(kind::ERROR, 0, 7, &(-libc::ENOENT).to_ne_bytes());
    let got = dump_with(7, || Ok(()), || Ok(enoent.clone())).unwrap();
    assert!(got.is_empty());
}

#[test]
fn digest_takes_the_table_flags() {
    let table = |flags: Option<u32>| {
        let mut b = vec![NFPROTO_INET, 0, 0, 7];
        let f = flags.map(u32::to_be_bytes);
        let mut list = vec![(NFTA_TABLE_NAME, &b"connroute\0"[..])];
        list.extend(f.as_ref().map(|f| (NFTA_TABLE_FLAGS, &f[..])));
        list.push((4, &[0, 0, 0, 0, 0, 0, 0, 9][..])); // handle
        for (k, v) in list {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize((b.len() + 3) & !3, 0);
        }
        b
    };
    let d = |b: &[u8]| {
        let mut h = 7;
        assert!(absorb_flags(&mut h, b));
        h
    };
    // No flags (or none set) leaves the digest as it was; dormant does not.
    assert_eq!(d(&table(None)), 7);
    assert_eq!(d(&table(Some(0))), 7);
    assert_ne!(d(&table(Some(1))), 7);
    assert_ne!(d(&table(Some(1))), d(&table(Some(2))));
}

#[test]
fn digest_ignores_handles_and_counter_values_only() {
    let obj = |handle: u8, data: u8, name: &[u8]| {
        let mut b = vec![NFPROTO_INET, 0, 0, 7];
        for (k, v) in [
            (ATTR_TABLE, &b"t\0"[..]),
            (2, name),
            (4, &[data][..]),
            (6, &[handle][..]),
        ] {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize((b.len() + 3) & !3, 0);
        }
        b
    };
    let d = |b: &[u8]| {
        let mut h = 0;
        assert!(absorb(&mut h, NFT_MSG_GETOBJ, b));
        h
    };
    assert_eq!(d(&obj(1, 5, b"c1\0")), d(&obj(9, 6, b"c1\0")));
    assert_ne!(d(&obj(1, 5, b"c1\0")), d(&obj(1, 5, b"c2\0")));
    let mut h = 0;
    assert!(!absorb(&mut h, NFT_MSG_GETOBJ, &obj(1, 5, b"c1\0")[..9]));
}

#[test]
fn a_restarted_table_dump_starts_again_from_the_state_before_it() {
    let mut d = Dump {
        digest: 7,
        ..Dump::default()
    };
    d.rules.push(("prerouting".into(), 1));
    let before = d.clone();
    let reset = restart_from(&d);
    // What an interrupted attempt left: more rules, a digest, a fingerprint.
    d.digest = 99;
    d.rules.push(("classify".into(), 2));
    d.fingerprint = Some("0123456789abcdef".into());
    d.undecoded = true;
    reset(&mut d);
    assert_eq!(d, before);
}

#[test]
fn dumped_rules_keep_chain_and_handle_only_while_all_decode() {
    let rule = |chain: &[u8], handle: u64| {
        let mut b = vec![NFPROTO_INET, 0, 0, 7];
        for (k, v) in [(2u16, chain), (3, &handle.to_be_bytes()[..])] {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize((b.len() + 3) & !3, 0);
        }
        b
    };
    let mut d = Dump::default();
    d.rule(&rule(b"classify\0", 5));
    assert_eq!(d.rules, vec![("classify".to_string(), 5)]);
    // One rule without a readable chain: nothing is edited by handle.
    d.rule(&rule(b"bad", 6));
    d.rule(&rule(b"classify\0", 7));
    assert!(d.rules.is_empty());
}
