//! Route messages beyond connroute's own default routes: multipath next
//! hops, `ip route get` probes of a next hop, and strays (non-default
//! routes tagged 197).
//! A child of [`super`] to share its wire helpers.

use super::*;

/// The body of an `ip route get ADDR [oif DEV]` request.
pub fn get_request(to: IpAddr, oif: Option<u32>) -> Body {
    let (af, len, bytes) = match to {
        IpAddr::V4(a) => (AF_INET, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, 128, a.octets().to_vec()),
    };
    let mut h = [0u8; BODY_HDRLEN];
    (h[0], h[1]) = (af, len);
    let mut b = Body::new(h);
    b.attr(RTA_DST, &bytes);
    if let Some(i) = oif {
        b.u32(RTA_OIF, i);
    }
    b
}

/// Whether an `ip route get` answer reaches its address on-link: a
/// unicast route without a gateway, through `oif` if given; for IPv4 a
/// local one too (the kernel takes the host's own address as an IPv4
/// next hop, and refuses it as an IPv6 one: "Gateway can not be a local
/// address").
pub fn on_link(body: &[u8], oif: Option<u32>) -> bool {
    let Some(d) = decode_any(body) else {
        return false;
    };
    let kind = match d.route.family {
        Family::V4 => matches!(d.kind, RTN_UNICAST | RTN_LOCAL),
        Family::V6 => d.kind == RTN_UNICAST,
    };
    kind && d.route.via.is_none() && (oif.is_none() || d.oif == oif)
}

/// Whether an `ip route get` answer says its address is the host's own.
pub fn local(body: &[u8]) -> bool {
    decode_any(body).is_some_and(|d| d.kind == RTN_LOCAL)
}

const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;

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

/// A default route as `ip route` prints it (`ip -6 route` for IPv6),
/// devices named by `name`.
pub fn ip_route_text(d: &DefaultRoute, name: &dyn Fn(u32) -> String) -> String {
    let r = &d.route;
    let mut t = String::from(if r.family == Family::V6 {
        "ip -6 route: "
    } else {
        "ip route: "
    });
    match d.kind {
        1 => {}
        6 => t.push_str("blackhole "),
        7 => t.push_str("unreachable "),
        8 => t.push_str("prohibit "),
        k => t.push_str(&format!("type {k} ")),
    }
    t.push_str("default");
    if let Some(v) = r.via {
        t.push_str(&format!(" via {v}"));
    }
    if let Some(i) = d.oif {
        t.push_str(&format!(" dev {}", name(i)));
    }
    let proto = match d.protocol {
        2 => "kernel".to_string(),
        3 => "boot".to_string(),
        4 => "static".to_string(),
        16 => "dhcp".to_string(),
        p => p.to_string(),
    };
    t.push_str(&format!(" table {} proto {proto}", r.table));
    if let Some(m) = d.metric {
        t.push_str(&format!(" metric {m}"));
    }
    for (via, i) in &d.nexthops {
        let name = name(*i);
        match via {
            Some(v) => t.push_str(&format!(" nexthop via {v} dev {name}")),
            None => t.push_str(&format!(" nexthop dev {name}")),
        }
    }
    t
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

    #[test]
    fn foreign_routes_print_like_ip_route() {
        let d = |family, via: &str, protocol, kind, metric| DefaultRoute {
            route: Route {
                family,
                table: 200,
                via: Some(via.parse().unwrap()),
                device: None,
            },
            oif: None,
            protocol,
            kind,
            metric,
            nexthops: Vec::new(),
        };
        assert_eq!(
            ip_route_text(&d(Family::V4, "192.168.1.1", 3, 1, None), &|i| format!(
                "if{i}"
            )),
            "ip route: default via 192.168.1.1 table 200 proto boot"
        );
        assert_eq!(
            ip_route_text(&d(Family::V6, "fe80::1", 99, 7, Some(1024)), &|i| format!(
                "if{i}"
            )),
            "ip -6 route: unreachable default via fe80::1 table 200 proto 99 metric 1024"
        );
    }
}

#[cfg(test)]
mod next_hop_tests {
    use super::*;

    /// An `ip route get` answer: family, route type, output device.
    fn answer(af: u8, kind: u8, oif: u32) -> Vec<u8> {
        let mut h = [0u8; BODY_HDRLEN];
        (h[0], h[1], h[4], h[7]) = (af, if af == AF_INET { 32 } else { 128 }, 254, kind);
        let mut b = Body::new(h);
        b.u32(RTA_OIF, oif);
        b.bytes().to_vec()
    }

    #[test]
    fn the_hosts_own_address_is_a_next_hop_for_ipv4_only() {
        // The kernel takes `via` the host's own IPv4 address, and refuses
        // an IPv6 one (EINVAL: "Gateway can not be a local address").
        assert!(on_link(&answer(AF_INET, RTN_UNICAST, 3), Some(3)));
        assert!(!on_link(&answer(AF_INET, RTN_UNICAST, 3), Some(4)));
        assert!(on_link(&answer(AF_INET, RTN_LOCAL, 1), None));
        assert!(on_link(&answer(AF_INET6, RTN_UNICAST, 3), None));
        assert!(!on_link(&answer(AF_INET6, RTN_LOCAL, 1), None));
        assert!(local(&answer(AF_INET6, RTN_LOCAL, 1)));
        assert!(!local(&answer(AF_INET6, RTN_UNICAST, 3)));
        // Broadcast, multicast: never.
        assert!(!on_link(&answer(AF_INET, 3, 3), None));
        assert!(!on_link(&answer(AF_INET6, 5, 3), None));
    }
}
