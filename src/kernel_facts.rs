//! Facts learned from the kernel rather than netifd: the main table's
//! default routes. A gateway given only a `device` follows the next hop of
//! the main-table default route through that device, so whatever manages
//! it — dhclient, NetworkManager, systemd-networkd, a script — is followed
//! (and `connroute watch` re-plans whenever that route changes).

use crate::apply::dump::wait_readable;
use crate::apply::netlink::{connected, ifindex};
use crate::apply::rtnl::{self, flags, kind};
use crate::config::{Config, Family};
use crate::facts::Facts;
use crate::plan::MAIN_TABLE;
use netlink_sys::protocols::NETLINK_ROUTE;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTN_UNICAST: u8 = 1;

/// One default route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainDefault {
    /// Address family.
    pub family: Family,
    /// Next hop, if any.
    pub via: Option<IpAddr>,
    /// Output device index.
    pub oif: u32,
    /// Metric (lower wins).
    pub metric: u32,
}

/// True when some enabled gateway has a `device` and nothing else to find
/// its next hop from (no `gateway`, `gateway6` or `interface`).
pub fn needed(config: &Config) -> bool {
    config.enabled_gateways().any(|g| {
        g.device.is_some() && g.gateway.is_none() && g.gateway6.is_none() && g.interfaces.is_empty()
    })
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(0..4)?.try_into().ok()?))
}

/// Decodes a route message body if it is a unicast default route of the
/// main table with an output device.
pub fn decode(body: &[u8]) -> Option<MainDefault> {
    let h = body.get(0..12)?;
    let family = match h[0] {
        2 => Family::V4,
        10 => Family::V6,
        _ => return None,
    };
    if h[1] != 0 || h[7] != RTN_UNICAST {
        return None;
    }
    let (mut table, mut via, mut oif, mut metric) = (u32::from(h[4]), None, None, 0);
    for (k, v) in rtnl::attrs_after(body, 12) {
        match (k, v.len()) {
            (RTA_TABLE, _) => table = u32_of(v)?,
            (RTA_OIF, _) => oif = u32_of(v),
            (RTA_PRIORITY, _) => metric = u32_of(v)?,
            (RTA_GATEWAY, 4) => via = Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
            (RTA_GATEWAY, 16) => via = Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
            _ => {}
        }
    }
    (table == MAIN_TABLE).then_some(MainDefault {
        family,
        via,
        oif: oif?,
        metric,
    })
}

/// The main table's default routes, both families; the whole dump must
/// finish within `deadline`.
pub fn main_defaults(deadline: Duration) -> io::Result<Vec<MainDefault>> {
    let s = connected(NETLINK_ROUTE)?;
    let start = Instant::now();
    let mut out = Vec::new();
    for (seq, f) in (1u32..).zip(Family::ALL) {
        let req = rtnl::message(
            kind::GETROUTE,
            flags::REQUEST | flags::DUMP,
            seq,
            rtnl::dump_request(f).bytes(),
        );
        s.send(&req, 0)?;
        'dump: loop {
            if start.elapsed() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "route dump timed out",
                ));
            }
            let left = deadline.saturating_sub(start.elapsed());
            wait_readable(std::os::fd::AsRawFd::as_raw_fd(&s), left)
                .map_err(|e| io::Error::new(e.kind(), format!("route dump: {e}")))?;
            let (buf, _) = s.recv_from_full()?;
            let msgs = rtnl::replies(&buf).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply")
            })?;
            for m in msgs.into_iter().filter(|m| m.seq == seq) {
                match m.kind {
                    kind::DONE => break 'dump,
                    kind::ERROR => match rtnl::error_code(m.body) {
                        Some(0) => break 'dump,
                        Some(e) => return Err(io::Error::from_raw_os_error(e.saturating_neg())),
                        None => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "truncated netlink error",
                            ));
                        }
                    },
                    _ => out.extend(decode(m.body)),
                }
            }
        }
    }
    Ok(out)
}

/// Adds to `facts` the next hops of the main table's default routes
/// through the devices of gateways that have only a `device`.
pub fn learn(config: &Config, facts: &mut Facts) -> io::Result<()> {
    if !needed(config) {
        return Ok(());
    }
    let defaults = main_defaults(Duration::from_secs(5))?;
    for g in config.enabled_gateways() {
        let Some(dev) = &g.device else { continue };
        let Ok(oif) = ifindex(dev) else { continue };
        for f in Family::ALL {
            if let Some(via) = next_hop(&defaults, f, oif) {
                facts.kernel_next_hops.insert((dev.clone(), f), via);
            }
        }
    }
    Ok(())
}

/// The next hop of the lowest-metric main-table default route of `family`
/// through device `oif`.
pub fn next_hop(defaults: &[MainDefault], family: Family, oif: u32) -> Option<IpAddr> {
    defaults
        .iter()
        .filter(|d| d.family == family && d.oif == oif && d.via.is_some())
        .min_by_key(|d| d.metric)
        .and_then(|d| d.via)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
        let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(v);
        a.resize((a.len() + 3) & !3, 0);
        a
    }

    fn route(family: u8, dst_len: u8, table: u8, gw: &[u8], oif: u32, metric: u32) -> Vec<u8> {
        let mut b = vec![family, dst_len, 0, 0, table, 3, 0, RTN_UNICAST, 0, 0, 0, 0];
        b.extend(attr(RTA_TABLE, &u32::from(table).to_ne_bytes()));
        if !gw.is_empty() {
            b.extend(attr(RTA_GATEWAY, gw));
        }
        b.extend(attr(RTA_OIF, &oif.to_ne_bytes()));
        b.extend(attr(RTA_PRIORITY, &metric.to_ne_bytes()));
        b
    }

    #[test]
    fn main_table_defaults_only() {
        let d = decode(&route(2, 0, 254, &[10, 3, 0, 1], 7, 30)).unwrap();
        assert_eq!(d.via, Some("10.3.0.1".parse().unwrap()));
        assert_eq!((d.family, d.oif, d.metric), (Family::V4, 7, 30));
        assert!(decode(&route(2, 24, 254, &[10, 3, 0, 1], 7, 0)).is_none());
        assert!(decode(&route(2, 0, 100, &[10, 3, 0, 1], 7, 0)).is_none());
        assert!(decode(&[2, 0, 0]).is_none(), "truncated");
        let v6 = decode(&route(
            10,
            0,
            254,
            &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            3,
            1024,
        ));
        assert_eq!(v6.unwrap().via, Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn lowest_metric_through_the_device_wins() {
        let d = |via: &str, oif, metric| MainDefault {
            family: Family::V4,
            via: Some(via.parse().unwrap()),
            oif,
            metric,
        };
        let all = [
            d("10.0.0.1", 2, 10),
            d("10.0.0.2", 3, 5),
            d("10.0.0.3", 3, 1),
        ];
        assert_eq!(
            next_hop(&all, Family::V4, 3),
            Some("10.0.0.3".parse().unwrap())
        );
        assert_eq!(next_hop(&all, Family::V6, 3), None);
        assert_eq!(next_hop(&all, Family::V4, 9), None);
    }

    #[test]
    fn a_device_only_gateway_follows_the_learned_next_hop() {
        let text = b"config gateway 'up2'\n\toption device 'eth2'\nconfig gateway 'up3'\n\toption device 'eth3'\n\toption gateway '10.3.0.9'\n";
        let config = Config::parse(text, "c").unwrap();
        assert!(needed(&config));
        let mut facts = Facts::default();
        let via: IpAddr = "10.2.0.254".parse().unwrap();
        facts
            .kernel_next_hops
            .insert(("eth2".into(), Family::V4), via);
        facts
            .kernel_next_hops
            .insert(("eth3".into(), Family::V4), "10.3.0.1".parse().unwrap());
        let p = crate::plan::plan(&config, &facts);
        let shown: Vec<String> = p.routes.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|r| r.starts_with("ip route default via 10.2.0.254 dev eth2")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|r| r.starts_with("ip -6 route default dev eth2")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|r| r.starts_with("ip route default via 10.3.0.9")),
            "explicit wins: {shown:?}"
        );
        assert!(!needed(
            &Config::parse(b"config gateway 'g'\n\toption gateway '10.0.0.1'\n", "c").unwrap()
        ));
    }
}
