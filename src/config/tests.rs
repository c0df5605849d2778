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
    assert_eq!(r.src_mac, ["52:54:00:c2:a5:43"]);
    assert_eq!(r.src_ip.none.len(), 1);
    assert_eq!(r.families, [Family::V4, Family::V6]);
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
    assert_eq!(c.rules[0].families, [Family::V4, Family::V6]);
    let e = first_error(
        "config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption src_ip 10.0.0.0/8\n\toption dest_ip 2001:db8::/32\n",
    );
    assert!(e.contains("can never match"), "{e}");
}

#[test]
fn ports_default_to_tcp_and_udp() {
    let c = load("config gateway g\n\toption device eth1\nconfig rule\n\toption gateway g\n\toption dest_port '80 443'\n").unwrap();
    assert_eq!(c.rules[0].proto, [Proto::Number(6), Proto::Number(17)]);
    assert_eq!(c.rules[0].dest_port.any.len(), 2);
}

#[test]
fn unknown_things_are_warnings() {
    let c =
        load("config gateway g\n\toption device eth1\n\toption colour blue\nconfig frobnicate x\n")
            .unwrap();
    let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
    assert!(
        w[0].contains(":3: warning: gateway 'g': option 'colour': unknown option"),
        "{w:?}"
    );
    assert!(
        w[1].contains(":4: warning: frobnicate 'x': unknown section type"),
        "{w:?}"
    );
}
