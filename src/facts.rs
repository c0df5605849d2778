//! Live facts the plan depends on: the state of OpenWrt logical interfaces as
//! netifd reports them (`ubus call network.interface.NAME status`). This
//! module only parses; fetching is the backends' job.

use crate::config::Family;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A default route netifd installed: next hop, or none on point-to-point links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The next hop; `None` for a device route (PPPoE, WireGuard, LTE).
    pub via: Option<IpAddr>,
}

/// One logical interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// netifd's `up`.
    pub up: bool,
    /// `l3_device`: the device traffic uses (e.g. `pppoe-wan`); `None` when
    /// netifd reported none or a name that is not a valid device name.
    pub device: Option<String>,
    /// netifd reported an `l3_device` that is not a valid device name
    /// (control bytes, quotes, too long): the interface has no usable device.
    pub bad_device: bool,
    /// The IPv4 default route, if any.
    pub route4: Option<DefaultRoute>,
    /// The IPv6 default route, if any.
    pub route6: Option<DefaultRoute>,
}

/// Everything known about the system that the plan needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// True when netifd's state was read (`interfaces` is what it knows).
    pub netifd: bool,
    /// Interfaces by logical name. Missing: unknown to netifd.
    pub interfaces: BTreeMap<String, Interface>,
    /// Next hops of the main table's default routes by output device and
    /// family, learned from the kernel (`kernel_facts`), for gateways
    /// given only a `device`.
    pub kernel_next_hops: BTreeMap<(String, Family), IpAddr>,
    /// Static gateway devices that cannot carry a route, with why
    /// ("does not exist", "is down"); absent devices are assumed usable.
    pub unusable_devices: BTreeMap<String, String>,
    /// Gateways whose route the kernel refused at apply time (next hop
    /// not reachable), by name, with why: inactive.
    pub refused: BTreeMap<String, String>,
}

fn default_route(routes: Option<&Value>, v6: bool) -> Option<DefaultRoute> {
    routes?.as_array()?.iter().find_map(|r| {
        let target = r.get("target")?.as_str()?;
        let mask = r.get("mask")?.as_u64()?;
        let any = if v6 {
            target == "::"
        } else {
            target == "0.0.0.0"
        };
        if !any || mask != 0 {
            return None;
        }
        let via = r.get("nexthop").and_then(Value::as_str).and_then(|h| {
            let ip: IpAddr = if v6 {
                IpAddr::V6(h.parse::<Ipv6Addr>().ok()?)
            } else {
                IpAddr::V4(h.parse::<Ipv4Addr>().ok()?)
            };
            (!ip.is_unspecified()).then_some(ip)
        });
        Some(DefaultRoute { via })
    })
}

impl Interface {
    /// Reads one `network.interface.NAME status` object.
    pub fn from_status(v: &Value) -> Interface {
        let up = v.get("up").and_then(Value::as_bool).unwrap_or(false);
        let reported = v
            .get("l3_device")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty());
        // Checked like the config's `device`: the name ends up in log lines,
        // the status table and nft rules.
        let bad_device = reported.is_some_and(|d| crate::config::values::device(d).is_err());
        let device = reported.filter(|_| !bad_device).map(str::to_string);
        let routes = v.get("route");
        Interface {
            up,
            device,
            bad_device,
            route4: if up {
                default_route(routes, false)
            } else {
                None
            },
            route6: if up {
                default_route(routes, true)
            } else {
                None
            },
        }
    }

    /// The device to use, only while up.
    pub fn live_device(&self) -> Option<&str> {
        self.device.as_deref().filter(|_| self.up)
    }

    /// Up, with a usable device (or none reported): routes may use it.
    pub fn usable(&self) -> bool {
        self.up && !self.bad_device
    }
}

impl Facts {
    /// Reads `ubus call network.interface dump` output.
    pub fn from_dump(text: &str) -> Result<Facts, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("netifd dump is not JSON: {e}"))?;
        let list = v
            .get("interface")
            .and_then(Value::as_array)
            .ok_or("netifd dump has no \"interface\" list")?;
        let mut facts = Facts {
            netifd: true,
            ..Facts::default()
        };
        for obj in list {
            if let Some(name) = obj.get("interface").and_then(Value::as_str) {
                facts
                    .interfaces
                    .insert(name.to_string(), Interface::from_status(obj));
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file under `tests/fixtures/netifd/` (part of the repository).
    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/netifd")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn status(name: &str) -> Interface {
        Interface::from_status(&serde_json::from_str(&fixture(name)).unwrap())
    }

    #[test]
    fn dhcp_uplink() {
        let i = status("wan2.status.json");
        assert!(i.up);
        assert_eq!(i.device.as_deref(), Some("eth2"));
        assert_eq!(
            i.route4,
            Some(DefaultRoute {
                via: Some("10.2.0.1".parse().unwrap())
            })
        );
        assert_eq!(i.route6, None);
    }

    #[test]
    fn dhcpv6_link_local_next_hop() {
        let i = status("wan2_6.status.json");
        assert_eq!(
            i.route6,
            Some(DefaultRoute {
                via: Some("fe80::1".parse().unwrap())
            })
        );
    }

    #[test]
    fn pppoe_uses_l3_device_and_wireguard_has_no_next_hop() {
        assert_eq!(
            status("wan3-pppoe.status.json").device.as_deref(),
            Some("pppoe-wan3")
        );
        assert_eq!(
            status("wg0.status.json").route4,
            Some(DefaultRoute { via: None })
        );
    }

    #[test]
    fn down_interface_has_nothing() {
        let i = status("wan2-down.status.json");
        assert!(!i.up && i.live_device().is_none() && i.route4.is_none());
    }

    #[test]
    fn dump_lists_every_interface() {
        let f = Facts::from_dump(&fixture("dump.json")).unwrap();
        let names: Vec<&str> = f.interfaces.keys().map(String::as_str).collect();
        assert_eq!(names, ["wan2", "wan2_6", "wan3", "wg0"]);
    }

    #[test]
    fn real_netifd_boot_dump() {
        let f = Facts::from_dump(&fixture("real/dump-full-boot.json")).unwrap();
        let names: Vec<&str> = f.interfaces.keys().map(String::as_str).collect();
        assert_eq!(names, ["loopback", "wan", "wan2", "wan3"]);
        let wan3 = &f.interfaces["wan3"];
        assert_eq!(wan3.live_device(), Some("eth3"));
        assert_eq!(wan3.route4.unwrap().via, Some("10.3.0.1".parse().unwrap()));
        assert_eq!(f.interfaces["loopback"].route4, None);
    }

    #[test]
    fn real_netifd_static_ifdown_and_dhcp_renew() {
        let down = status("real/dump-wan2-static-down-after-ifdown.json");
        assert!(!down.up && down.live_device().is_none() && down.route4.is_none());
        let up = status("real/dump-wan2-static-up.json");
        assert_eq!(up.route4.unwrap().via, Some("10.2.0.1".parse().unwrap()));
        let renewed = status("real/dump-wan3-dhcp-after-renew.json");
        assert_eq!(
            renewed.route4.unwrap().via,
            Some("10.3.0.254".parse().unwrap())
        );
    }

    #[test]
    fn invalid_l3_device_is_not_used() {
        let dump = r#"{"interface":[
            {"interface":"wan","up":true,"l3_device":"eth0\nconnroute: forged",
             "route":[{"target":"0.0.0.0","mask":0,"nexthop":"10.0.0.1"}]},
            {"interface":"wan2","up":true,"l3_device":"eth\u0000",
             "route":[{"target":"0.0.0.0","mask":0}]},
            {"interface":"wan3","up":true,"l3_device":"eth3",
             "route":[{"target":"0.0.0.0","mask":0,"nexthop":"10.3.0.1"}]}]}"#;
        let f = Facts::from_dump(dump).unwrap();
        for name in ["wan", "wan2"] {
            let i = &f.interfaces[name];
            assert!(i.bad_device && !i.usable(), "{name}");
            assert_eq!((i.device.as_deref(), i.live_device()), (None, None));
        }
        assert!(f.interfaces["wan3"].usable());
        assert_eq!(f.interfaces["wan3"].live_device(), Some("eth3"));
        // A gateway on it is inactive with a reason naming the interface,
        // never the raw bytes.
        let src = "config gateway g\n\tlist interface wan\n";
        let c = crate::config::Config::parse(src.as_bytes(), "test").unwrap();
        let p = crate::plan::plan(&c, &f);
        let g = &p.gateways[0];
        assert!(!g.active);
        assert_eq!(g.reason, "wan has an invalid device name");
        assert!(p.routes.is_empty());
    }
}
