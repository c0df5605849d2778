//! Questions to nf_tables over a `NETLINK_NETFILTER` socket ([`super::nfnl`]), without
//! running nft: the ruleset generation (`NFT_MSG_GETGEN`, bumped by every
//! commit anywhere in the ruleset), whether a table exists
//! (`NFT_MSG_GETTABLE`), and a digest of one table's whole contents (its
//! flags, chains, rules, sets with their elements and objects, as the
//! kernel dumps them, without handles, use counts and counter values).

use super::dump::{Collector, Fault, Progress, with_restarts};
use super::netlink::DUMP_TRIES;
use super::nfnl::Nfnl;
use super::rtnl::{self, flags};
use std::io;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(super) const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_GETSETELEM: u16 = 13;
pub(super) const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFT_MSG_GETOBJ: u16 = 19;
/// `NFTA_{CHAIN,RULE,SET,SET_ELEM_LIST,OBJ}_TABLE`: all 1.
const ATTR_TABLE: u16 = 1;
/// `NFTA_SET_NAME`, `NFTA_SET_ELEM_LIST_SET`.
const ATTR_SET_NAME: u16 = 2;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFTA_GEN_ID: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;
/// `NFTA_TABLE_FLAGS` (be32: dormant, owner).
const NFTA_TABLE_FLAGS: u16 = 2;

pub(super) fn msg_type(m: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | m
}

/// `struct nfgenmsg` for `family`, then attributes.
fn body(family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = vec![family, 0, 0, 0];
    for (k, v) in attrs {
        let len = 4 + v.len();
        // Attribute values here are table names (< 256 bytes).
        b.extend_from_slice(&(len as u16).to_ne_bytes());
        b.extend_from_slice(&k.to_ne_bytes());
        b.extend_from_slice(v);
        b.resize((b.len() + 3) & !3, 0);
    }
    b
}

/// The `NFT_MSG_GETGEN` request.
pub fn gen_request(seq: u32) -> Vec<u8> {
    rtnl::message(
        msg_type(NFT_MSG_GETGEN),
        flags::REQUEST,
        seq,
        &body(NFPROTO_UNSPEC, &[]),
    )
}

/// The `NFT_MSG_GETTABLE` request for `inet NAME`.
pub fn table_request(seq: u32, name: &str) -> Vec<u8> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    rtnl::message(
        msg_type(NFT_MSG_GETTABLE),
        flags::REQUEST,
        seq,
        &body(NFPROTO_INET, &[(NFTA_TABLE_NAME, &n)]),
    )
}

/// The generation id in a `NFT_MSG_NEWGEN` body (after `nfgenmsg`).
pub fn decode_gen(body: &[u8]) -> Option<u32> {
    let mut rest = body.get(4..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes(rest.get(0..2)?.try_into().ok()?));
        let k = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        let v = rest.get(4..len)?;
        if k == NFTA_GEN_ID {
            return Some(u32::from_be_bytes(v.try_into().ok()?));
        }
        rest = rest.get(((len + 3) & !3).min(rest.len())..)?;
    }
    None
}

/// A dump request of `inet` objects of kind `m`, filtered by `attrs`.
pub fn dump_request(seq: u32, m: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    rtnl::message(
        msg_type(m),
        flags::REQUEST | flags::DUMP,
        seq,
        &body(NFPROTO_INET, attrs),
    )
}

/// One dump: `send` the request, then each data message body answering
/// request `seq` (one datagram per call of `next`) goes to `each` with the
/// state `st` as it arrives, nothing kept; restarted while the kernel
/// flags it inconsistent (`NLM_F_DUMP_INTR`), [`DUMP_TRIES`] attempts in
/// all, each from `reset(st)`. ENOENT (nothing to dump) leaves `reset(st)`.
pub(super) fn dump_into<S>(
    seq: u32,
    st: &mut S,
    reset: impl Fn(&mut S),
    mut send: impl FnMut() -> Result<(), Fault>,
    mut next: impl FnMut() -> Result<Vec<u8>, Fault>,
    mut each: impl FnMut(&mut S, &[u8]) -> Result<(), Fault>,
) -> io::Result<()> {
    with_restarts("dumping nf_tables", DUMP_TRIES, || {
        reset(st);
        send()?;
        let mut c = Collector::new(seq);
        loop {
            match c.feed_with(&next()?, |b| each(st, b)) {
                Ok(Progress::Done) => return Ok(()),
                Ok(Progress::More) => {}
                Err(Fault::Kernel(libc::ENOENT)) => {
                    reset(st);
                    return Ok(());
                }
                Err(f) => return Err(f),
            }
        }
    })
}

/// The `each` of a [`dump_into`] that keeps every message body.
pub(super) fn keep(all: &mut Vec<Vec<u8>>, body: &[u8]) -> Result<(), Fault> {
    all.push(body.to_vec());
    Ok(())
}

/// [`dump_into`] keeping every message body.
#[cfg(test)]
pub(super) fn dump_with(
    seq: u32,
    send: impl FnMut() -> Result<(), Fault>,
    next: impl FnMut() -> Result<Vec<u8>, Fault>,
) -> io::Result<Vec<Vec<u8>>> {
    let mut all = Vec::new();
    dump_into(seq, &mut all, Vec::clear, send, next, keep)?;
    Ok(all)
}

/// The top-level attributes of an nf_tables body (after `nfgenmsg`).
pub fn attrs(body: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut rest = body.get(4..)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = usize::from(u16::from_ne_bytes(rest.get(0..2)?.try_into().ok()?));
        let k = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        out.push((k, rest.get(4..len)?));
        rest = rest.get(((len + 3) & !3).min(rest.len())..)?;
    }
    Some(out)
}

#[path = "nfgen_digest.rs"]
mod digest;
pub use digest::{Dump, rule_handle};

impl Nfnl {
    /// The contents of `table inet NAME` (`None` when absent) and the
    /// ruleset generation they belong to, read consistently: retried (up to
    /// 5 times) while another commit lands during the dump.
    pub fn table(&mut self, name: &str) -> io::Result<Option<(Dump, u32)>> {
        for _ in 0..5 {
            let before = self.generation()?;
            let d = self.dump_table(name)?;
            if self.generation()? == before {
                return Ok(d.map(|d| (d, before)));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the nftables ruleset kept changing while it was read",
        ))
    }
}

/// `ctnetlink`: dump request for connections whose `ct mark & mask == mark`.
pub fn conntrack_request(seq: u32, mark: u32, mask: u32) -> Vec<u8> {
    const NFNL_SUBSYS_CTNETLINK: u16 = 1;
    const IPCTNL_MSG_CT_GET: u16 = 1;
    const CTA_MARK: u16 = 8;
    const CTA_MARK_MASK: u16 = 21;
    let (m, k) = (mark.to_be_bytes(), mask.to_be_bytes());
    rtnl::message(
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        flags::REQUEST | flags::DUMP,
        seq,
        &body(NFPROTO_UNSPEC, &[(CTA_MARK, &m), (CTA_MARK_MASK, &k)]),
    )
}

/// How many tracked connections (both families) carry `mark` under `mask`;
/// the kernel filters, so only matching entries cross the socket.
pub fn pinned(nf: &mut Nfnl, mark: u32, mask: u32) -> io::Result<u64> {
    Ok(nf.dump(|seq| conntrack_request(seq, mark, mask))?.len() as u64)
}

#[cfg(test)]
#[path = "nfgen_tests.rs"]
mod restart_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_request_layout() {
        let m = gen_request(9);
        assert_eq!(m.len(), 20);
        assert_eq!(&m[0..4], &20u32.to_ne_bytes());
        assert_eq!(&m[4..6], &0x0a10u16.to_ne_bytes());
        assert_eq!(&m[6..8], &flags::REQUEST.to_ne_bytes());
        assert_eq!(&m[8..12], &9u32.to_ne_bytes());
        assert_eq!(&m[16..20], &[0, 0, 0, 0]);
    }

    #[test]
    fn table_request_names_the_table_nul_terminated_and_padded() {
        let m = table_request(3, "connroute");
        assert_eq!(&m[4..6], &0x0a01u16.to_ne_bytes());
        assert_eq!(m[16], NFPROTO_INET);
        assert_eq!(&m[20..22], &14u16.to_ne_bytes()); // 4 + "connroute\0"
        assert_eq!(&m[22..24], &NFTA_TABLE_NAME.to_ne_bytes());
        assert_eq!(&m[24..34], b"connroute\0");
        assert_eq!(m.len(), 36);
        assert_eq!(&m[0..4], &36u32.to_ne_bytes());
    }

    #[test]
    fn dump_request_is_a_dump_filtered_by_table() {
        let m = dump_request(4, NFT_MSG_GETRULE, &[(ATTR_TABLE, b"t\0")]);
        assert_eq!(&m[4..6], &0x0a07u16.to_ne_bytes());
        assert_eq!(&m[6..8], &(flags::REQUEST | flags::DUMP).to_ne_bytes());
        assert_eq!(attrs(&m[16..]), Some(vec![(ATTR_TABLE, &b"t\0"[..])]));
    }

    #[test]
    fn a_dumped_rule_gives_its_chain_and_handle() {
        let mut b = vec![NFPROTO_INET, 0, 0, 7];
        for (k, v) in [
            (ATTR_TABLE, &b"connroute\0"[..]),
            (2, &b"classify\0"[..]),
            (3, &0x0102u64.to_be_bytes()[..]),
        ] {
            b.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(v);
            b.resize((b.len() + 3) & !3, 0);
        }
        assert_eq!(rule_handle(&b), Some(("classify".into(), 0x0102)));
        assert_eq!(rule_handle(&b[..24]), None);
    }

    #[test]
    fn conntrack_request_filters_by_mark_in_network_order() {
        let m = conntrack_request(2, 0x0100_0000, 0xff00_0000);
        assert_eq!(&m[4..6], &0x0101u16.to_ne_bytes());
        assert_eq!(m[16], NFPROTO_UNSPEC);
        let a = attrs(&m[16..]).unwrap();
        assert_eq!(a, vec![(8, &[1, 0, 0, 0][..]), (21, &[0xff, 0, 0, 0][..])]);
    }

    #[test]
    fn decodes_the_generation_in_network_order() {
        let mut b = vec![0, 0, 0, 0];
        // NFTA_GEN_PROC_PID first, then the id: order must not matter.
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&77u32.to_be_bytes());
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&NFTA_GEN_ID.to_ne_bytes());
        b.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        assert_eq!(decode_gen(&b), Some(0x0102_0304));
        assert_eq!(decode_gen(&b[..b.len() - 1]), None);
        assert_eq!(decode_gen(&b[..12]), None);
        assert_eq!(decode_gen(&[]), None);
    }
}
