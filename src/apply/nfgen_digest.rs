//! The digest of one table's dump (part of [`super`]): every object
//! without its volatile attributes, fed message by message as the replies
//! arrive, so nothing of the dump is held but each rule's chain and handle.

use super::*;

/// Attributes that change without anyone changing the table: handles, use
/// counts, rule positions, counter values (by message kind).
fn volatile(m: u16, attr: u16) -> bool {
    match m {
        NFT_MSG_GETCHAIN => matches!(attr, 2 | 6 | 8), // HANDLE, USE, COUNTERS
        NFT_MSG_GETRULE => matches!(attr, 3 | 6),      // HANDLE, POSITION
        NFT_MSG_GETSET => attr == 16,                  // HANDLE
        NFT_MSG_GETOBJ => (4..=6).contains(&attr),     // DATA, USE, HANDLE
        _ => false,
    }
}

fn feed(h: &mut u64, b: &[u8]) {
    for &c in b {
        *h = (*h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
    }
}

/// Feeds one dumped object into the digest; false if malformed.
pub(super) fn absorb(h: &mut u64, m: u16, body: &[u8]) -> bool {
    let Some(list) = attrs(body) else {
        return false;
    };
    feed(h, &m.to_ne_bytes());
    for (k, v) in list.into_iter().filter(|(k, _)| !volatile(m, *k)) {
        feed(h, &k.to_ne_bytes());
        feed(h, &(v.len() as u32).to_ne_bytes());
        feed(h, v);
    }
    true
}

/// Feeds the table's flags (`NFTA_TABLE_FLAGS` of its `NFT_MSG_NEWTABLE`
/// body) into the digest: a foreign `flags dormant` switches every hook
/// off. No flag set feeds nothing, so a plain table digests as it always
/// did. False if malformed.
pub(super) fn absorb_flags(h: &mut u64, body: &[u8]) -> bool {
    let Some(list) = attrs(body) else {
        return false;
    };
    let flags = list.iter().find(|(k, _)| *k == NFTA_TABLE_FLAGS);
    if let Some((k, v)) = flags.filter(|(_, v)| v.iter().any(|&b| b != 0)) {
        feed(h, &NFT_MSG_GETTABLE.to_ne_bytes());
        feed(h, &k.to_ne_bytes());
        feed(h, v);
    }
    true
}

/// The table's contents as the kernel has them, read message by message
/// as the replies arrive (no message kept): a digest (FNV-1a over every
/// object without its volatile attributes), the fingerprint stamped in a
/// rule comment, and every rule's chain and handle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// The digest.
    pub digest: u64,
    /// The first fingerprint found in a rule comment, in dump order.
    pub fingerprint: Option<String>,
    /// Every rule's chain and handle in dump order; empty when a rule
    /// could not be decoded (nothing is then edited by handle).
    pub rules: Vec<(String, u64)>,
    /// A rule could not be decoded.
    pub(super) undecoded: bool,
}

impl Dump {
    /// Takes one dumped rule body (after the digest took it).
    pub(super) fn rule(&mut self, body: &[u8]) {
        if self.fingerprint.is_none() {
            self.fingerprint = super::super::kernel::fingerprint(body);
        }
        match rule_handle(body) {
            Some(r) if !self.undecoded => self.rules.push(r),
            _ => {
                self.undecoded = true;
                self.rules = Vec::new();
            }
        }
    }
}

/// A dumped rule's chain and handle (`NFTA_RULE_CHAIN`, `NFTA_RULE_HANDLE`).
pub fn rule_handle(body: &[u8]) -> Option<(String, u64)> {
    let list = attrs(body)?;
    let chain = list.iter().find(|(k, _)| *k == 2)?.1;
    let chain = std::str::from_utf8(chain.strip_suffix(&[0])?).ok()?;
    let handle = list.iter().find(|(k, _)| *k == 3)?.1;
    Some((
        chain.to_string(),
        u64::from_be_bytes(handle.try_into().ok()?),
    ))
}

fn bad_object() -> Fault {
    Fault::Malformed("malformed nf_tables object".into())
}

/// Feeds one dumped object of kind `m` into `d` if it is of `table`
/// (chains are dumped for every table).
fn take(d: &mut Dump, m: u16, table: &[u8], body: &[u8]) -> Result<(), Fault> {
    let list = attrs(body).ok_or_else(bad_object)?;
    if !list.iter().any(|(k, v)| *k == ATTR_TABLE && *v == table) {
        return Ok(());
    }
    if !absorb(&mut d.digest, m, body) {
        return Err(bad_object());
    }
    if m == NFT_MSG_GETRULE {
        d.rule(body);
    }
    Ok(())
}

/// The state to restart a dump from: `d` as it was before it.
pub(super) fn restart_from(d: &Dump) -> impl Fn(&mut Dump) + use<> {
    let (digest, fingerprint, n, undecoded) =
        (d.digest, d.fingerprint.clone(), d.rules.len(), d.undecoded);
    move |d: &mut Dump| {
        d.digest = digest;
        d.fingerprint.clone_from(&fingerprint);
        d.rules.truncate(n);
        d.undecoded = undecoded;
    }
}

/// Dumps `table inet NAME` once.
pub(super) fn dump_table(s: &Socket, name: &str) -> io::Result<Dump> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    let table: &[(u16, &[u8])] = &[(ATTR_TABLE, &n)];
    let mut d = Dump {
        digest: 0xcbf2_9ce4_8422_2325u64,
        ..Dump::default()
    };
    let mut seq = 10;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed nf_tables object");
    if let Some(t) = ask(&table_request(seq, name), seq, NFT_MSG_NEWTABLE)? {
        if !absorb_flags(&mut d.digest, &t) {
            return Err(bad());
        }
    }
    for m in [
        NFT_MSG_GETCHAIN,
        NFT_MSG_GETRULE,
        NFT_MSG_GETSET,
        NFT_MSG_GETOBJ,
    ] {
        seq += 1;
        let req = dump_request(seq, m, table);
        if m == NFT_MSG_GETSET {
            // Few: kept, each followed by its elements (a second dump).
            for b in dump(s, seq, &req)? {
                take(&mut d, m, &n, &b).map_err(|_| bad())?;
                seq = dump_elements(s, seq, &n, &b, &mut d.digest)?;
            }
            continue;
        }
        let (send, next) = over(s, &req);
        let reset = restart_from(&d);
        dump_into(seq, &mut d, reset, send, next, |d, b| take(d, m, &n, b))?;
    }
    d.rules.shrink_to_fit();
    Ok(d)
}

/// Feeds the elements of the set whose body is `set` (of `table`) into
/// the digest `h`, message by message; returns the last sequence number.
fn dump_elements(
    s: &Socket,
    mut seq: u32,
    table: &[u8],
    set: &[u8],
    h: &mut u64,
) -> io::Result<u32> {
    let list = attrs(set).unwrap_or_default();
    if !list.iter().any(|(k, v)| *k == ATTR_TABLE && *v == table) {
        return Ok(seq);
    }
    let name = list
        .iter()
        .find(|(k, _)| *k == ATTR_SET_NAME)
        .map(|(_, v)| *v);
    let name = name
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed nf_tables object"))?;
    seq += 1;
    let req = dump_request(
        seq,
        NFT_MSG_GETSETELEM,
        &[(ATTR_TABLE, table), (ATTR_SET_NAME, name)],
    );
    let (send, next) = over(s, &req);
    let h0 = *h;
    let feed = |h: &mut u64, e: &[u8]| {
        absorb(h, NFT_MSG_GETSETELEM, e);
        Ok(())
    };
    dump_into(seq, h, move |h: &mut u64| *h = h0, send, next, feed)?;
    Ok(seq)
}
