//! Two questions to nf_tables over a `NETLINK_NETFILTER` socket, without
//! running nft: the ruleset generation (`NFT_MSG_GETGEN`, bumped by every
//! commit anywhere in the ruleset) and whether a table exists
//! (`NFT_MSG_GETTABLE`). Each costs one request and one reply.

use super::rtnl::{self, flags, kind};
use netlink_sys::{Socket, SocketAddr};
use std::io;

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFTA_GEN_ID: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;

fn msg_type(m: u16) -> u16 {
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

/// Sends `req` and returns the body of the reply of type `want`; `None`
/// when the kernel answers ENOENT.
fn ask(req: &[u8], seq: u32, want: u16) -> io::Result<Option<Vec<u8>>> {
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    s.send(req, 0)?;
    loop {
        let (buf, _) = s.recv_from_full()?;
        let msgs = rtnl::replies(&buf).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "malformed nfnetlink reply")
        })?;
        for m in msgs.into_iter().filter(|m| m.seq == seq) {
            if m.kind == msg_type(want) {
                return Ok(Some(m.body.to_vec()));
            }
            if m.kind == kind::ERROR {
                return match rtnl::error_code(m.body) {
                    Some(e) if e == -libc::ENOENT => Ok(None),
                    Some(e) if e < 0 => Err(io::Error::from_raw_os_error(-e)),
                    _ => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "nfnetlink: unexpected acknowledgement",
                    )),
                };
            }
        }
    }
}

/// The current nf_tables ruleset generation id.
pub fn generation() -> io::Result<u32> {
    let body = ask(&gen_request(1), 1, NFT_MSG_NEWGEN)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no generation"))?;
    decode_gen(&body)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "NEWGEN without an id"))
}

/// True when `table inet NAME` exists.
pub fn table_exists(name: &str) -> io::Result<bool> {
    Ok(ask(&table_request(1, name), 1, NFT_MSG_NEWTABLE)?.is_some())
}

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
