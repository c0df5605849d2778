use super::*;

fn load(src: &str) -> Result<Config, ConfigError> {
    Config::parse(src.as_bytes(), "/etc/config/connroute")
}

fn first_error(src: &str) -> String {
    load(src).unwrap_err().diagnostics[0].to_string()
}

#[test]
fn seed_example_loads() {
    let c = Config::parse(include_bytes!("../../examples/seed.conf"), "seed.conf").unwrap();
    assert_eq!(c.gateways.len(), 1);
    let g = &c.gateways[0];
    assert_eq!((g.mark, g.table), (0x0100_0000, 5000));
    let r = &c.rules[0];
    assert_eq!(r.src_mac[..], ["52:54:00:c2:a5:43"]);
    assert_eq!(r.src_ip.none.len(), 1);
    assert_eq!(r.families[..], [Family::V4, Family::V6]);
    assert!(c.warnings.is_empty());
}

#[test]
fn marks_and_tables_skip_explicit_ones() {
    let c = load(
        "config gateway a\n\toption device eth1\nconfig gateway b\n\toption device eth2\n\toption mark 0x01000000\n\toption table 5000\n",
    )
    .unwrap();
    assert_eq!(
        (c.gateways[0].mark, c.gateways[0].table),
        (0x0200_0000, 5001)
    );
    assert_eq!(
        (c.gateways[1].mark, c.gateways[1].table),
        (0x0100_0000, 5000)
    );
}

#[test]
fn errors_name_file_line_section_option() {
    let e = first_error(
        "config gateway g\n\toption gateway 10.0.0.1\nconfig rule r\n\toption gateway g\n\tlist src_mac 'zz'\n",
    );
    assert_eq!(
        e,
        "/etc/config/connroute:5: rule 'r': option 'src_mac': 'zz' is not a MAC address (aa:bb:cc:dd:ee:ff)"
    );
}

#[test]
fn negated_v4_prefix_keeps_ipv6() {
    let c = load("config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption src_ip '!10.0.0.0/8'\n").unwrap();
    assert_eq!(c.rules[0].families[..], [Family::V4, Family::V6]);
    let e = first_error(
        "config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption src_ip 10.0.0.0/8\n\toption dest_ip 2001:db8::/32\n",
    );
    assert!(e.contains("can never match"), "{e}");
}

#[test]
fn ports_default_to_tcp_and_udp() {
    let c = load("config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption dest_port '80 443'\n").unwrap();
    assert_eq!(c.rules[0].proto[..], [Proto::Number(6), Proto::Number(17)]);
    assert_eq!(c.rules[0].dest_port.any.len(), 2);
}

#[test]
fn a_slip_in_a_section_type_is_an_error_a_foreign_type_a_warning() {
    for (stype, near) in [
        ("global", "globals"),
        ("Globals", "globals"),
        ("gatway", "gateway"),
        ("GATEWAY", "gateway"),
        ("rlue", "rule"),
        ("rules", "rule"),
        ("Rule", "rule"),
    ] {
        let e = load(&format!(
            "config {stype} x\nconfig gateway g\n\toption device eth1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!(
                ":1: {stype} 'x': unknown section type '{stype}'; did you mean '{near}'?"
            )),
            "{e}"
        );
    }
    for stype in ["route", "interface", "redirect", "zone", "luci"] {
        let c = load(&format!(
            "config {stype} x\nconfig gateway g\n\toption device eth1\n"
        ))
        .unwrap();
        assert!(c.warnings[0].to_string().contains("warning"), "{stype}");
    }
}

#[test]
fn what_libuci_merges_or_overwrites_is_refused_in_connroutes_sections() {
    // A list may start with an `option` (libuci makes it a list): nothing lost.
    let c = load("config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption dest_port 80\n\tlist dest_port 443\n").unwrap();
    assert_eq!(c.rules[0].dest_port.any.len(), 2);
    // A section named again: one error at its `config` line, not one per
    // option the merge overwrote.
    let e = load("config gateway g\n\toption device eth1\nconfig rule r\n\toption gateway g\n\toption family ipv4\nconfig rule r\n\toption gateway g\n\toption family ipv6\n")
        .unwrap_err();
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    assert!(
        e.to_string()
            .contains(":6: rule 'r': section declared again (first at line 3)"),
        "{e}"
    );
    // Given twice within one block, a single value is named with both lines.
    let e = load("config gateway g\n\toption device eth1\n\toption device eth2\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains(":3: gateway 'g': option 'device': is set again (first at line 2): libuci keeps only the last value; remove one of the two lines"), "{e}");
    // Foreign sections are left to their owner, as libuci leaves them.
    let c = load("config gateway g\n\toption device eth1\nconfig other o\n\toption a 1\n\toption a 2\nconfig other o\n").unwrap();
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn unknown_section_types_warn_and_show_with_errors() {
    let c = load("config gateway g\n\toption device eth1\nconfig frobnicate x\n").unwrap();
    let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
    assert!(
        w[0].contains(":3: warning: frobnicate 'x': unknown section type"),
        "{w:?}"
    );
    let e =
        load("config frobnicate x\nconfig gateway g\n\toption device eth1\n\toption colour blue\n")
            .unwrap_err()
            .to_string();
    assert!(
        e.contains(":1: warning: frobnicate 'x': unknown section type"),
        "{e}"
    );
    assert!(
        e.contains(":4: gateway 'g': option 'colour': unknown option"),
        "{e}"
    );
}

#[test]
fn unknown_options_are_errors_with_a_hint() {
    for (section, typo, hint) in [
        ("rule", "src_mca", "src_mac"),
        ("rule", "dest_prot", "dest_port"),
        ("gateway", "devcie", "device"),
        ("globals", "mark_msk", "mark_mask"),
    ] {
        let src = format!(
            "config gateway g\n\toption device eth1\nconfig {section} x\n\toption gateway g\n\tlist {typo} v\n"
        );
        let e = load(&src).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                ":5: {section} 'x': option '{typo}': unknown option; did you mean '{hint}'?"
            )),
            "{e}"
        );
    }
}

#[test]
fn empty_match_values_are_errors() {
    let base = "config gateway g\n\toption device eth1\nconfig rule r\n\toption gateway g\n";
    for (line, want) in [
        (
            "\toption dest_ip ''\n",
            "option 'dest_ip': empty value: libuci drops the statement",
        ),
        (
            "\toption dest_ip\n",
            "option 'dest_ip': empty value: libuci drops the statement",
        ),
        ("\tlist src_port ' '\n", "option 'src_port': empty value"),
        ("\tlist in_device ''\n", "option 'in_device': empty value"),
        ("\toption family ' '\n", "option 'family': empty value"),
    ] {
        let e = first_error(&format!("{base}{line}"));
        assert!(
            e.contains(&format!(":5: rule 'r': {want}")),
            "{line:?}: {e}"
        );
    }
}

#[test]
fn names_that_would_be_misread_are_refused() {
    for name in ["1", "254", "0x10", "main"] {
        let e = first_error(&format!("config gateway '{name}'\n\toption device eth1\n"));
        assert!(
            e.contains(&format!(":1: gateway '{name}': '{name}'")),
            "{e}"
        );
    }
    let e = first_error(
        "config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\tlist in_device 'x\";drop;#'\n",
    );
    assert!(
        e.contains("is not an interface name: '\"' is not allowed"),
        "{e}"
    );
    let e = first_error("config gateway g\n\tlist interface 'wan-2'\n");
    assert!(e.contains("is not an OpenWrt interface name"), "{e}");
}

#[test]
fn absurd_values_are_refused_before_parsing() {
    let big = "a".repeat(MAX_VALUE + 1);
    let e = first_error(&format!("config gateway g\n\toption device '{big}'\n"));
    assert!(
        e.starts_with(
            "/etc/config/connroute:2: gateway 'g': option 'device': value of 65537 bytes"
        ),
        "{}",
        &e[..200.min(e.len())]
    );
    assert!(e.len() < 300, "the value is not echoed");
}

#[test]
fn recorded_allocations_survive_an_insert_above() {
    let one = "config gateway b\n\toption device eth2\n";
    let c = load(one).unwrap();
    assert_eq!(
        (c.gateways[0].mark, c.gateways[0].table),
        (0x0100_0000, 5000)
    );
    let two = format!("config gateway a\n\toption device eth1\n{one}");
    let c2 = Config::parse_with_ids(two.as_bytes(), "f", &c.ids).unwrap();
    assert_eq!(
        (c2.gateways[1].mark, c2.gateways[1].table),
        (0x0100_0000, 5000)
    );
    assert_eq!(
        (c2.gateways[0].mark, c2.gateways[0].table),
        (0x0200_0000, 5001)
    );
    // Without the record the old, positional allocation moves b.
    assert_eq!(load(&two).unwrap().gateways[1].mark, 0x0200_0000);
}

#[test]
fn explicit_mark_on_a_recorded_one_names_both() {
    let c =
        load("config gateway a\n\toption device eth1\nconfig gateway b\n\toption device eth2\n")
            .unwrap();
    let e = Config::parse_with_ids(
        b"config gateway a\n\toption device eth1\nconfig gateway b\n\toption device eth2\n\toption table 5000\n",
        "f",
        &c.ids,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "f:5: gateway 'b': option 'table': table 5000 is recorded for gateway 'a' in the ids file; \
         choose another table (taking it would move that gateway's connections)"
    );
}

#[test]
fn a_rule_without_match_options_is_warned_about() {
    let gw = "config gateway g\n\toption gateway 192.168.1.2\n";
    let c = load(&format!(
        "{gw}config rule r\n\toption gateway g\n\toption proto all\n"
    ))
    .unwrap();
    assert_eq!(c.rules.len(), 1);
    assert_eq!(
        c.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        [
            "/etc/config/connroute:3: warning: rule 'r': matches every new connection, \
          also the router's own: add a match option (src_ip, in_device, …) to narrow it"
        ]
    );
    // family alone still takes every connection of that family.
    let c = load(&format!(
        "{gw}config rule r\n\toption gateway g\n\toption family ipv4\n"
    ))
    .unwrap();
    assert_eq!(c.warnings.len(), 1);
    for narrow in [
        "option proto tcp",
        "list dest_ip 10.0.0.0/8",
        "option enabled 0",
    ] {
        let c = load(&format!(
            "{gw}config rule r\n\toption gateway g\n\t{narrow}\n"
        ))
        .unwrap();
        assert!(c.warnings.is_empty(), "{narrow}: {:?}", c.warnings);
    }
}

#[test]
fn a_rule_narrowed_only_in_the_other_family_is_warned_about() {
    let warnings = |src: &str| -> Vec<String> {
        load(src)
            .unwrap()
            .warnings
            .iter()
            .map(|d| d.to_string())
            .collect()
    };
    // An IPv4 gateway: `!2001:db8::/32` excludes nothing from IPv4.
    let w = warnings(
        "config gateway g\n\toption gateway 192.168.1.2\nconfig rule x\n\toption gateway g\n\tlist src_ip '!2001:db8::/32'\n",
    );
    assert!(
        w.len() == 1 && w[0].contains(":3: warning: rule 'x': matches every new IPv4 connection"),
        "{w:?}"
    );
    // Dual stack: the IPv4 exclusion leaves IPv6 unnarrowed.
    let w = warnings(
        "config gateway g\n\toption gateway 192.168.1.2\n\toption gateway6 2001:db8::2\nconfig rule x\n\toption gateway g\n\tlist src_ip '!10.0.0.0/8'\n",
    );
    assert!(
        w.len() == 1 && w[0].contains("every new IPv6 connection"),
        "{w:?}"
    );
    assert!(
        w[0].ends_with("add an IPv6 match or set option family"),
        "{w:?}"
    );
    // family already set: no advice to set it.
    let w = warnings(
        "config gateway g\n\toption gateway 192.168.1.2\n\toption gateway6 2001:db8::2\nconfig rule x\n\toption gateway g\n\toption family ipv6\n\tlist src_ip '!10.0.0.0/8'\n",
    );
    assert!(w.len() == 1 && w[0].ends_with("add an IPv6 match"), "{w:?}");
    // Narrowed in both (a MAC), or the gateway routes IPv4 only: no warning.
    assert!(warnings("config gateway g\n\toption gateway 192.168.1.2\n\toption gateway6 2001:db8::2\nconfig rule x\n\toption gateway g\n\tlist src_ip '!10.0.0.0/8'\n\tlist src_mac 52:54:00:c2:a5:43\n").is_empty());
    assert!(warnings("config gateway g\n\toption gateway 192.168.1.2\nconfig rule x\n\toption gateway g\n\tlist src_ip '!10.0.0.0/8'\n").is_empty());
    // Interface-bound and device-only gateways may route either family:
    // an IPv6-only rule is theirs to take, no error.
    assert!(load("config gateway g\n\tlist interface wan2\nconfig rule x\n\toption gateway g\n\tlist src_ip 2001:db8::5\n").is_ok());
    assert!(load("config gateway g\n\toption device wg0\nconfig rule x\n\toption gateway g\n\tlist src_ip 2001:db8::5\n").is_ok());
}

#[test]
fn port_lists_are_bounded_where_the_kernel_is_quadratic() {
    let conf = |n: usize| {
        let mut s = String::from(
            "config gateway g\n\toption gateway 192.168.1.2\nconfig rule r\n\toption gateway g\n",
        );
        for p in 1..=n {
            s.push_str(&format!("\tlist dest_port {p}\n"));
        }
        s
    };
    assert!(load(&conf(rule::MAX_PORTS)).is_ok());
    // Each listed twice: still 4,096 ports.
    let twice = conf(rule::MAX_PORTS)
        + &conf(rule::MAX_PORTS)
            .lines()
            .skip(4)
            .map(|l| format!("{l}\n"))
            .collect::<String>();
    assert!(load(&twice).is_ok());
    let e = load(&conf(rule::MAX_PORTS + 1)).unwrap_err().to_string();
    assert!(
        e.contains(":5: rule 'r': option 'dest_port': more than 4096 ports"),
        "{e}"
    );
}

#[test]
fn next_hops_the_kernel_would_refuse_are_config_errors() {
    for (opt, hop) in [
        ("gateway", "255.255.255.255"),
        ("gateway6", "::ffff:192.168.1.2"),
    ] {
        let e = load(&format!("config gateway g\n\toption {opt} '{hop}'\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(":2: gateway 'g': option '{opt}': '")),
            "{e}"
        );
        assert!(e.contains("cannot be a next hop"), "{e}");
    }
}

#[test]
fn settings_reaching_into_other_packages_are_warned_about() {
    let c = load("config globals g\n\toption mark_mask 0xffff0000\n\toption rule_priority 1500\n\toption table_base 10\nconfig gateway a\n\toption device eth1\n").unwrap();
    let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].contains(":2: warning: globals 'g': option 'mark_mask': overlaps pbr's"),
        "{w:?}"
    );
    assert!(
        w[1].contains(":3: warning: globals 'g': option 'rule_priority': mwan3"),
        "{w:?}"
    );
    assert!(
        w[2].contains(":4: warning: globals 'g': option 'table_base': mwan3"),
        "{w:?}"
    );
    // The defaults, and the mask given as the default: nothing to say.
    let c = load(
        "config globals g\n\toption mark_mask 0xff000000\nconfig gateway a\n\toption device eth1\n",
    )
    .unwrap();
    assert!(c.warnings.is_empty());
}

#[test]
fn host_bits_are_warned_about_only_where_a_digit_was_dropped() {
    let warnings = |prefix: &str| -> Vec<String> {
        let src = format!(
            "config gateway g\n\toption gateway 192.168.1.2\nconfig rule r\n\toption gateway g\n\tlist src_ip '{prefix}'\n"
        );
        load(&src)
            .unwrap()
            .warnings
            .iter()
            .map(|d| d.to_string())
            .collect()
    };
    let w = warnings("192.168.1.77/2");
    assert!(
        w.len() == 1 && w[0].contains("read as 192.0.0.0/2"),
        "{w:?}"
    );
    // A router's address with its LAN's length: read as the LAN, quietly.
    assert!(warnings("192.168.1.1/24").is_empty());
    assert!(warnings("10.0.0.0/8").is_empty());
}
