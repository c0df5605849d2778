//! Property tests of the pure stages (in CI; the coverage-guided fuzzers in
//! `fuzz/` go deeper, `make fuzz`): arbitrary bytes never panic the UCI
//! reader, the config model or the renderers; whatever parses exports to a
//! fixed point; generated connroute configs either load and render, or are
//! refused with a file:line diagnostic; the JSON re-indenter matches
//! serde_json's pretty printer byte for byte.

use connroute::cli::json_text;
use connroute::config::Config;
use connroute::facts::Facts;
use connroute::{nft, plan, uci};
use proptest::prelude::*;

/// Runs every stage after the reader; panics are the failures looked for.
fn whole_pipeline(bytes: &[u8]) {
    let _ = uci::parse_lenient(bytes, "connroute");
    match Config::parse(bytes, "/etc/config/connroute") {
        Ok(config) => {
            let p = plan::plan_typed(&config, &Facts::default());
            let json = p.ruleset.to_json();
            serde_json::from_slice::<serde_json::Value>(&json).expect("valid JSON");
            nft::text::render(&p.ruleset.typed().expect("typed")).expect("text render");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("/etc/config/connroute:"),
                "diagnostic without file:line: {text}"
            );
        }
    }
}

/// Pieces of UCI syntax, so random text reaches deep into the grammar.
const TOKENS: &[&str] = &[
    "config",
    "option",
    "list",
    "package",
    "gateway",
    "rule",
    "globals",
    "'",
    "\"",
    "\\",
    "#",
    " ",
    "\t",
    "\n",
    "\r\n",
    ";",
    "x",
    "wan2",
    "router2",
    "enabled",
    "1",
    "0",
    "mark",
    "0x02000000",
    "table",
    "200",
    "src_mac",
    "52:54:00:c2:a5:43",
    "dest_port",
    "80",
    "8000-8080",
    "proto",
    "tcp",
    "udp",
    "src_ip",
    "!192.168.1.0/24",
    "fe80::1",
    "192.168.1.2",
    "family",
    "ipv6",
    "any",
    "in_device",
    "eth1",
    "interface",
    "device",
    "br-lan",
    "gateway6",
    "\u{e9}",
    "\0",
    "'\\''",
];

fn uci_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat().into_bytes())
}

/// Plausible connroute configs: right keywords, values drawn from good and
/// bad ones, so both the model's acceptance and its errors are exercised.
fn connroute_like() -> impl Strategy<Value = Vec<u8>> {
    let value = prop::sample::select(vec![
        "1",
        "0",
        "yes",
        "router2",
        "wan2",
        "192.168.1.2",
        "10.0.0.256",
        "fe80::1",
        "0x02000000",
        "0x3",
        "200",
        "70000",
        "tcp",
        "udp",
        "icmp",
        "80",
        "0",
        "65536",
        "1000-2000",
        "2000-1000",
        "52:54:00:c2:a5:43",
        "52:54:00",
        "!10.0.0.0/8",
        "10.0.0.0/33",
        "ipv4",
        "ipv6",
        "any",
        "eth1",
        "",
        "a b",
    ]);
    let option = prop::sample::select(vec![
        "enabled",
        "gateway",
        "gateway6",
        "device",
        "interface",
        "mark",
        "table",
        "family",
        "src_mac",
        "in_device",
        "in_interface",
        "proto",
        "src_ip",
        "dest_ip",
        "src_port",
        "dest_port",
        "mark_mask",
        "rule_priority",
        "table_base",
        "log_level",
        "bogus",
    ]);
    let line = (prop::bool::ANY, option, value)
        .prop_map(|(list, o, v)| format!("\t{} {o} '{v}'\n", if list { "list" } else { "option" }));
    let section = (
        prop::sample::select(vec!["globals", "gateway", "rule", "other"]),
        prop::sample::select(vec!["", " 'router2'", " 'wan2'", " 'globals'", " 'r1'"]),
        prop::collection::vec(line, 0..6),
    )
        .prop_map(|(t, n, lines)| format!("config {t}{n}\n{}", lines.concat()));
    prop::collection::vec(section, 0..6).prop_map(|s| s.concat().into_bytes())
}

/// Strings heavy in the bytes a re-indenter must not take for structure.
fn json_string() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "\"", "\\", "\\\"", "{", "}", "[", "]", ":", ",", " ", "\n", "\t", "\u{1}", "\u{7f}", "é",
        "\u{2028}", "💡", "a", "null",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
    ]
}

/// Arbitrary JSON values, nested up to a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn json_text_pretty_is_serde_json_pretty(v in json_value()) {
        let compact = serde_json::to_vec(&v).unwrap();
        prop_assert_eq!(json_text::pretty(&compact), serde_json::to_string_pretty(&v).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        whole_pipeline(&bytes);
    }

    #[test]
    fn uci_like_text_never_panics(bytes in uci_like()) {
        whole_pipeline(&bytes);
    }

    #[test]
    fn export_is_a_fixed_point(bytes in uci_like()) {
        if let Ok(doc) = uci::parse(&bytes, "connroute") {
            let once = doc.export();
            let again = uci::parse(&once, "connroute").expect("export parses back");
            let twice = again.export();
            prop_assert_eq!(String::from_utf8_lossy(&twice), String::from_utf8_lossy(&once));
            prop_assert_eq!(again.show(false), doc.show(false));
        }
    }

    #[test]
    fn connroute_configs_load_or_name_the_line(bytes in connroute_like()) {
        whole_pipeline(&bytes);
    }
}
