//! `status` presence flags against the fake kernel.

use super::super::apply::apply;
use super::super::fake::{Fake, FakeRoute};
use super::super::{System, devices};
use super::status;
use crate::config::Config;
use crate::facts::Facts;
use crate::plan::{self, IpRule, RuleAction};

const CONF: &str = "config gateway 'router2'
	option gateway '192.168.1.2'
config gateway 'lte'
	option device 'nodev'
	option gateway '10.64.0.1'
config rule 'r1'
	option gateway 'router2'
	list proto 'tcp'
config rule 'r2'
	option gateway 'lte'
	list proto 'udp'
";

#[test]
fn an_inactive_gateway_reports_what_the_kernel_holds_not_the_plan() {
    let sys = System {
        nft: Default::default(),
        rt_tables: None,
        state: None,
    };
    let c = Config::parse(CONF.as_bytes(), "t").unwrap();
    let mut k = Fake::default();
    let facts = Facts {
        unusable_devices: devices::unusable(&mut k, &c, &Facts::default()),
        ..Facts::default()
    };
    let p = plan::plan(&c, &facts);
    apply(&mut k, &p, &sys, false).unwrap();
    let present = |k: &mut Fake| {
        let st = status(k, &p, &sys, 0xff00_0000).unwrap();
        let g = st
            .gateways
            .iter()
            .find(|g| g.name == "lte")
            .unwrap()
            .clone();
        assert!(!g.active, "{}", g.reason);
        let r2 = st.gateways.iter().find(|g| g.name == "router2").unwrap();
        assert!(r2.active && r2.routes_present && r2.rules_present);
        (g.routes_present, g.rules_present)
    };
    // It installs nothing: nothing is present (the text view shows `-`).
    assert_eq!(present(&mut k), (false, false));
    // Left-overs in its table are reported as present (stale).
    let lte = p.gateways.iter().find(|g| g.name == "lte").unwrap();
    let mut route = p.routes[0].clone();
    route.table = lte.table;
    k.routes.push(FakeRoute {
        route,
        protocol: plan::RTPROT_CONNROUTE,
    });
    let mut rule: IpRule = p.ip_rules[0].clone();
    rule.action = RuleAction::Lookup {
        table: lte.table,
        suppress_default: false,
    };
    k.rules.push(rule);
    assert_eq!(present(&mut k), (true, true));
}

/// Other owners' rules inside P … END (one gateway: 5000 … 5035) are
/// reported, one line each with the priority and the range; those
/// outside (Tailscale's 5210 … 5270) or of the other family are not.
#[test]
fn foreign_rules_inside_the_block_are_reported() {
    let config = Config::parse(CONF.as_bytes(), "t").unwrap();
    let p = plan::plan(&config, &Facts::default());
    let mut k = Fake {
        foreign_rules: vec![
            (crate::config::Family::V4, 4999),
            (crate::config::Family::V4, 5010),
            (crate::config::Family::V4, 5210),
            (crate::config::Family::V4, 5270),
            (crate::config::Family::V6, 5020),
        ],
        ..Fake::default()
    };
    let lines = super::foreign_in_range(&mut k, &p).unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("priority 5010") && lines[0].contains("5000-5035"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("rule_priority"), "{}", lines[0]);
    // A live block kept larger (64 gateways' banks: END 5259) reaches over
    // Tailscale's first rule.
    k.rules.push(IpRule {
        priority: 5259,
        ..p.ip_rules.last().unwrap().clone()
    });
    let lines = super::foreign_in_range(&mut k, &p).unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("priority 5210") && lines[1].contains("5000-5259"));
}
