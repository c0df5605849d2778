//! The nfnetlink dump against crafted reply buffers: restarts while the
//! kernel flags it inconsistent, bounded.

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
