use super::*;
use crate::facts::{DefaultRoute, Interface};

fn config(src: &str) -> Config {
    Config::parse(src.as_bytes(), "test").unwrap()
}

fn seed() -> Config {
    Config::parse(include_bytes!("../../examples/seed.conf"), "seed.conf").unwrap()
}

#[test]
fn seed_routes_and_rules() {
    let p = plan(&seed(), &Facts::default());
    assert_eq!(p.routes.len(), 1);
    assert_eq!(
        p.routes[0].to_string(),
        "ip route default via 192.168.1.2 table 5000 proto 197"
    );
    let rules: Vec<String> = p.ip_rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        rules,
        [
            "ip rule priority 5000 fwmark 0x0/0xff000000 goto 5035 proto 197",
            "ip rule priority 5001 not fwmark 0x0/0xff000000 lookup main suppress_prefixlength 0 proto 197",
            "ip rule priority 5003 fwmark 0x1000000/0xff000000 lookup 5000 proto 197",
            "ip rule priority 5004 goto 5035 proto 197",
            "ip rule priority 5035 nop proto 197",
        ]
    );
    assert_eq!(p.rules[0].families, [Family::V4]);
}

#[test]
fn fingerprint_is_stable_and_changes_with_input() {
    let a = plan(&seed(), &Facts::default());
    let b = plan(&seed(), &Facts::default());
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(fingerprint_of(&a.ruleset), a.fingerprint);
    let mut other = seed();
    other.rules[0].dest_port.any[0].from = 81;
    other.rules[0].dest_port.any[0].to = 81;
    assert_ne!(plan(&other, &Facts::default()).fingerprint, a.fingerprint);
}

#[test]
fn interface_gateway_follows_netifd() {
    let c = config(
        "config gateway wan2\n\tlist interface wan2\n\tlist interface wan2_6\nconfig rule\n\toption gateway wan2\n\toption in_interface wan2\n",
    );
    let mut facts = Facts::default();
    let down = plan(&c, &facts);
    assert!(!down.gateways[0].active);
    assert_eq!(
        down.gateways[0].reason,
        "wan2 unknown to netifd, wan2_6 unknown to netifd"
    );
    assert!(down.routes.is_empty() && down.ip_rules.is_empty());
    facts.interfaces.insert(
        "wan2".into(),
        Interface {
            up: true,
            device: Some("eth2".into()),
            bad_device: false,
            route4: Some(DefaultRoute {
                via: Some("10.2.0.1".parse().unwrap()),
            }),
            route6: None,
        },
    );
    facts.interfaces.insert(
        "wan2_6".into(),
        Interface {
            up: true,
            device: Some("eth2".into()),
            bad_device: false,
            route4: None,
            route6: Some(DefaultRoute {
                via: Some("fe80::1".parse().unwrap()),
            }),
        },
    );
    let up = plan(&c, &facts);
    let routes: Vec<String> = up.routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        routes,
        [
            "ip route default via 10.2.0.1 dev eth2 table 5000 proto 197",
            "ip -6 route default via fe80::1 dev eth2 table 5000 proto 197"
        ]
    );
    assert_eq!(up.rules[0].families, [Family::V4, Family::V6]);
    let json = String::from_utf8(up.ruleset.to_json()).unwrap();
    assert!(
        json.contains("\"iifname\"") && json.contains("\"eth2\""),
        "{json}"
    );
}

#[test]
fn disabled_globals_plan_nothing() {
    let mut c = seed();
    c.globals.enabled = false;
    let p = plan(&c, &Facts::default());
    assert!(!p.enabled && p.routes.is_empty() && p.ip_rules.is_empty());
}

#[test]
fn device_only_gateway_routes_both_families() {
    let c = config("config gateway wg\n\toption device wg0\n");
    let p = plan(&c, &Facts::default());
    let routes: Vec<String> = p.routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        routes,
        [
            "ip route default dev wg0 table 5000 proto 197",
            "ip -6 route default dev wg0 table 5000 proto 197"
        ]
    );
}

#[test]
fn gateway_counters_count_pin_and_restore() {
    let p = super::plan_typed(&seed(), &Facts::default());
    let text = crate::nft::text::render(&p.ruleset.typed().unwrap()).unwrap();
    let name = gateway_counter_name("router2");
    assert_eq!(name, "gw_router2");
    assert!(text.contains(&format!("counter {name} {{")), "{text}");
    for chain in ["pin_router2", "restore_router2"] {
        let body = text.split(&format!("chain {chain} {{")).nth(1).unwrap();
        let first = body.lines().nth(1).unwrap();
        assert!(
            first.contains(&format!("counter name \"{name}\"")),
            "{chain}: {first}"
        );
    }
}

#[test]
fn named_sets_of_two_rules_never_share_a_name() {
    // Rule `a`'s negated ports and rule `a_not`'s ports were both
    // `r_a_not_dport4`: nft merged them into one set of 64 ports.
    let ports = |base: u32, neg: &str| -> String {
        (base..base + 32)
            .map(|p| format!("{neg}{p}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let c = config(&format!(
        "config gateway r2\n\toption gateway 192.168.1.2\nconfig gateway r3\n\toption gateway 192.168.1.3\n\
         config rule a\n\toption gateway r2\n\tlist src_ip 10.0.0.0/8\n\toption dest_port '{}'\n\
         config rule a_not\n\toption gateway r3\n\tlist src_ip 10.0.0.0/8\n\toption dest_port '{}'\n",
        ports(1001, "!"),
        ports(2001, "")
    ));
    let p = super::plan_typed(&c, &Facts::default());
    let text = crate::nft::text::render(&p.ruleset.typed().unwrap()).unwrap();
    let sets: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("set "))
        .filter_map(|l| l.strip_suffix(" {"))
        .collect();
    assert_eq!(sets, ["n_dport4_a", "s_dport4_a_not"], "{text}");
    assert!(text.contains("th dport != @n_dport4_a"), "{text}");
    assert!(text.contains("th dport @s_dport4_a_not"), "{text}");
}
