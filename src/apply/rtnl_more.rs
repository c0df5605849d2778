//! Route messages beyond connroute's own default routes: multipath next
//! hops, `ip route get` probes of a next hop, and strays (non-default
//! routes tagged 197).
//! A child of [`super`] to share its wire helpers.

use super::*;

/// The body of an `ip route get ADDR` request.
pub fn get_request(to: IpAddr) -> Body {
    let (af, len, bytes) = match to {
        IpAddr::V4(a) => (AF_INET, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, 128, a.octets().to_vec()),
    };
    let mut h = [0u8; BODY_HDRLEN];
    (h[0], h[1]) = (af, len);
    let mut b = Body::new(h);
    b.attr(RTA_DST, &bytes);
    b
}

/// Whether an `ip route get` answer reaches its address on-link: a
/// unicast or local route without a gateway, through `oif` if given.
pub fn on_link(body: &[u8], oif: Option<u32>) -> bool {
    let Some(d) = decode_any(body) else {
        return false;
    };
    matches!(d.kind, 1 | 2) && d.route.via.is_none() && (oif.is_none() || d.oif == oif)
}

/// The family and priority of an ip rule body, if another owner's (its
/// protocol is not 197).
pub fn foreign_rule(body: &[u8]) -> Option<(Family, u32)> {
    let family = family_of(*body.first()?)?;
    let (mut priority, mut ours) = (0, false);
    for (kind, v) in attrs(body) {
        match kind {
            FRA_PRIORITY => priority = ne_u32(v)?,
            FRA_PROTOCOL => ours = v.first() == Some(&RTPROT_CONNROUTE),
            _ => {}
        }
    }
    (!ours).then_some((family, priority))
}

/// A route tagged as connroute's (protocol 197, one next hop) that is not
/// a default route: connroute never makes one, so it is a stray to remove.
/// Returned as `ip route` prints it, the device as its index.
pub fn decode_stray(body: &[u8]) -> Option<(String, Option<u32>)> {
    let h = body.get(0..BODY_HDRLEN)?;
    let family = family_of(h[0])?;
    if h[1] == 0 || h[5] != RTPROT_CONNROUTE {
        return None;
    }
    let (mut dst, mut via, mut oif, mut table) = (None, None, None, u32::from(h[4]));
    for (kind, v) in attrs(body) {
        match kind {
            RTA_DST => dst = Some(addr(v)?),
            RTA_GATEWAY => via = Some(addr(v)?),
            RTA_OIF => oif = Some(ne_u32(v)?),
            RTA_TABLE => table = ne_u32(v)?,
            RTA_MULTIPATH => return None,
            _ => {}
        }
    }
    let ip = if family == Family::V6 { "ip -6" } else { "ip" };
    let mut t = format!("{ip} route {}/{}", dst?, h[1]);
    if let Some(v) = via {
        t.push_str(&format!(" via {v}"));
    }
    t.push_str(&format!(" table {table} proto {RTPROT_CONNROUTE}"));
    Some((t, oif))
}

/// The next hops in an `RTA_MULTIPATH` value (`struct rtnexthop` list).
pub(super) fn nexthops(mut v: &[u8]) -> Option<Vec<(Option<IpAddr>, u32)>> {
    let mut out = Vec::new();
    while v.len() >= 8 {
        let len = usize::from(ne_u16(v.get(0..2)?)?);
        let index = ne_u32(v.get(4..8)?)?;
        let mut via = None;
        let mut rest = v.get(8..len)?;
        while rest.len() >= 4 {
            let alen = usize::from(ne_u16(rest.get(0..2)?)?);
            if ne_u16(rest.get(2..4)?)? & 0x3fff == RTA_GATEWAY {
                via = Some(addr(rest.get(4..alen)?)?);
            }
            rest = rest.get(align4(alen.max(4)).min(rest.len())..)?;
        }
        out.push((via, index));
        v = v.get(align4(len.max(8)).min(v.len())..)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipath_route_with_connroute_protocol_is_not_ours() {
        // IPv6 `ip route append … proto static` to connroute's default
        // route: one message, connroute's protocol, RTA_MULTIPATH.
        let r = Route {
            family: Family::V6,
            table: 5000,
            via: None,
            device: None,
        };
        let mut b = route_body(&r, None);
        let mut hops = Vec::new();
        for (gw, i) in [("2001:db8::2", 3u32), ("2001:db8::3", 3)] {
            let a: Ipv6Addr = gw.parse().unwrap();
            hops.extend_from_slice(&28u16.to_ne_bytes());
            hops.extend_from_slice(&[0, 0]);
            hops.extend_from_slice(&i.to_ne_bytes());
            hops.extend_from_slice(&20u16.to_ne_bytes());
            hops.extend_from_slice(&RTA_GATEWAY.to_ne_bytes());
            hops.extend_from_slice(&a.octets());
        }
        b.attr(RTA_MULTIPATH, &hops);
        let d = decode_default(b.bytes()).unwrap();
        assert_eq!(d.protocol, RTPROT_CONNROUTE);
        assert_eq!(
            d.nexthops,
            vec![
                (Some("2001:db8::2".parse().unwrap()), 3),
                (Some("2001:db8::3".parse().unwrap()), 3)
            ]
        );
        assert!(!d.ours());
        assert_eq!(decode_route(b.bytes()), None);
    }
}
