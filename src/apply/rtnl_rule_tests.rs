//! Byte-level tests of the ip rule actions connroute's block uses: goto
//! (with its target also in suppress_ifgroup), nop and the invert flag, as
//! the kernel takes and dumps them. Host byte order throughout, so they run
//! on big-endian MIPS too.

use super::*;

fn attr_bytes(kind: u16, v: &[u8]) -> Vec<u8> {
    let mut out = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(v);
    out
}

#[test]
fn goto_and_nop_rules_encode_as_the_kernel_expects() {
    let goto = IpRule {
        family: Family::V4,
        priority: 5000,
        mark: 0,
        mask: 0xff00_0000,
        invert: false,
        action: RuleAction::Goto(5003),
    };
    let mut want = vec![AF_INET, 0, 0, 0, 0, 0, 0, FR_ACT_GOTO, 0, 0, 0, 0];
    for (k, v) in [
        (FRA_PRIORITY, 5000u32),
        (FRA_FWMARK, 0),
        (FRA_FWMASK, 0xff00_0000),
        (FRA_GOTO, 5003),
        (FRA_SUPPRESS_IFGROUP, 5003),
    ] {
        want.extend(attr_bytes(k, &v.to_ne_bytes()));
    }
    want.extend(attr_bytes(FRA_PROTOCOL, &[RTPROT_CONNROUTE]));
    want.resize(align4(want.len()), 0);
    assert_eq!(rule_body(&goto).bytes(), &want[..]);
    assert_eq!(decode_rule(&want), Some(goto));

    let nop = IpRule {
        family: Family::V6,
        priority: 5003,
        mark: 0,
        mask: 0,
        invert: false,
        action: RuleAction::Nop,
    };
    let b = rule_body(&nop);
    assert_eq!(b.bytes()[7], FR_ACT_NOP);
    assert_eq!(b.bytes().len(), 12 + 8 + 8, "priority and protocol only");
    assert_eq!(decode_rule(b.bytes()), Some(nop));
}

#[test]
fn kernel_dump_of_an_inverted_unresolved_rule_decodes() {
    // As the kernel dumps `not fwmark 0/MASK lookup main suppress_prefixlength 0`
    // and an unresolved goto: no FRA_FWMARK for mark 0, FRA_TABLE and
    // FRA_SUPPRESS_PREFIXLEN always present, FIB_RULE_UNRESOLVED (4) set.
    let mut body = vec![AF_INET, 0, 0, 0, 254, 0, 0, FR_ACT_TO_TBL];
    body.extend_from_slice(&FIB_RULE_INVERT.to_ne_bytes());
    for (k, v) in [
        (FRA_TABLE, 254u32),
        (FRA_SUPPRESS_PREFIXLEN, 0),
        (FRA_PRIORITY, 5001),
        (FRA_FWMASK, 0xff00_0000),
    ] {
        body.extend(attr_bytes(k, &v.to_ne_bytes()));
    }
    body.extend(attr_bytes(FRA_PROTOCOL, &[RTPROT_CONNROUTE]));
    body.resize(align4(body.len()), 0);
    let r = decode_rule(&body).unwrap();
    assert!(r.invert && r.mark == 0 && r.mask == 0xff00_0000);
    assert_eq!(
        r.action,
        RuleAction::Lookup {
            table: 254,
            suppress_default: true
        }
    );
    body[7] = FR_ACT_GOTO;
    body[8..12].copy_from_slice(&4u32.to_ne_bytes());
    body.extend(attr_bytes(FRA_GOTO, &5010u32.to_ne_bytes()));
    body.extend(attr_bytes(FRA_SUPPRESS_PREFIXLEN, &u32::MAX.to_ne_bytes()));
    let r = decode_rule(&body).unwrap();
    assert!(!r.invert);
    assert_eq!(r.action, RuleAction::Goto(5010));
    body[7] = 6; // blackhole: not a rule connroute makes
    assert_eq!(decode_rule(&body), None);
}

#[test]
fn foreign_rules_are_told_by_their_protocol() {
    // Tailscale's `5270: from all lookup 52` (protocol boot: 3).
    let mut ts = vec![AF_INET, 0, 0, 0, 52, 3, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
    ts.extend(attr_bytes(FRA_PRIORITY, &5270u32.to_ne_bytes()));
    ts.extend(attr_bytes(FRA_PROTOCOL, &[3]));
    assert_eq!(foreign_rule(&ts), Some((Family::V4, 5270)));
    let ours = IpRule {
        family: Family::V6,
        priority: 5000,
        mark: 0,
        mask: 0,
        invert: false,
        action: RuleAction::Nop,
    };
    assert_eq!(foreign_rule(rule_body(&ours).bytes()), None);
}
