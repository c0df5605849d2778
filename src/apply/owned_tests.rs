//! Regression tests for the hostile tester's findings: the run-state file,
//! flush order, foreign next hops and tagged strays in connroute's tables.

use super::System;
use super::apply::apply;
use super::error::ApplyError;
use super::fake::{Fake, Op};
use super::flush::flush;
use super::nft::Nft;
use crate::config::Config;
use crate::facts::Facts;
use crate::plan::{self, Plan};
use std::path::PathBuf;

const SEED: &str = "config globals 'globals'
	option table_base '5000'
config gateway 'a'
	option gateway '192.168.1.2'
";

fn plan_of(text: &str) -> Plan {
    plan::plan(
        &Config::parse(text.as_bytes(), "t.conf").unwrap(),
        &Facts::default(),
    )
}

fn sys(name: &str) -> (System, PathBuf) {
    let dir = std::env::temp_dir().join(format!("cr-owned-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = System {
        nft: Nft::default(),
        rt_tables: None,
        state: Some(dir.join("state")),
    };
    (s, dir)
}

#[test]
fn a_fifo_at_the_state_path_is_refused_not_waited_on() {
    let (s, dir) = sys("fifo");
    let path = s.state.clone().unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut k = Fake::default();
    let e = apply(&mut k, &plan_of(SEED), &s, false).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(e, ApplyError::State(_)), "{e}");
    assert!(e.to_string().contains("state: not a regular file"), "{e}");
    assert_eq!(e.exit_code(), 1);
    assert!(k.routes.is_empty() && k.rules.is_empty() && k.table.is_none());
}

#[test]
fn flush_keeps_rules_and_routes_when_the_table_cannot_be_deleted() {
    let (s, dir) = sys("flushorder");
    let mut k = Fake::default();
    apply(&mut k, &plan_of(SEED), &s, false).unwrap();
    let before = k.snapshot();
    k.fail.push(Op::DeleteTable);
    let e = flush(&mut k, &s).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(e, ApplyError::Flush(_)), "{e}");
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("injected DeleteTable"), "{e}");
    assert_eq!(k.snapshot(), before);
}

#[test]
fn a_tagged_non_default_route_is_drift_and_apply_and_flush_remove_it() {
    let (s, dir) = sys("strays");
    let p = plan_of(SEED);
    let stray = "ip route 10.1.0.0/16 via 192.168.1.5 table 5000 proto 197".to_string();
    let mut k = Fake::default();
    apply(&mut k, &p, &s, false).unwrap();
    k.strays.push(stray.clone());
    let st = super::status::status(&mut k, &p, &s, 0xff00_0000).unwrap();
    assert_eq!(st.exit_code(), 3);
    assert!(
        st.drift.iter().any(|d| d.contains(&stray)),
        "{:?}",
        st.drift
    );
    let report = apply(&mut k, &p, &s, false).unwrap();
    assert!(k.strays.is_empty());
    assert_eq!(report.changes, vec![format!("removed stray route {stray}")]);
    k.strays.push(stray);
    flush(&mut k, &s).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(k.strays.is_empty() && k.routes.is_empty() && k.rules.is_empty());
}

#[test]
fn an_unreachable_next_hop_makes_only_that_gateway_inactive() {
    let (s, dir) = sys("unreach");
    let text =
        format!("{SEED}config gateway 'lte'\n\toption device 'd1'\n\toption gateway '10.64.0.1'\n");
    let c = Config::parse(text.as_bytes(), "t.conf").unwrap();
    let mut k = Fake::default();
    k.links.insert("d1".into(), super::kernel::Link::Up);
    k.unreachable.push("10.64.0.1".parse().unwrap());
    let mut f = Facts::default();
    let p = plan::plan(&c, &f);
    let e = apply(&mut k, &p, &s, false).unwrap_err();
    let ApplyError::Unreachable { gateway, why } = e else {
        panic!("{e}")
    };
    assert_eq!(gateway, "lte");
    // The libc's own wording (glibc and musl differ).
    let text = std::io::Error::from_raw_os_error(libc::ENETUNREACH).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    assert!(why.contains(text), "{why}");
    assert!(k.routes.is_empty() && k.rules.is_empty() && k.table.is_none());
    // What `connroute apply` does next: plan without it, apply the rest.
    f.refused.insert(gateway, why);
    let p = plan::plan(&c, &f);
    apply(&mut k, &p, &s, false).unwrap();
    assert_eq!(k.routes.len(), 1, "gateway a applied");
    // status finds the same reason without changing anything.
    let full = plan::plan(&c, &Facts::default());
    let have = k.routes.iter().map(|r| r.route.clone()).collect::<Vec<_>>();
    let refused = super::devices::unreachable(&mut k, &full, &have);
    assert_eq!(
        refused.get("lte").map(String::as_str),
        Some("next hop not reachable: 10.64.0.1")
    );
    let st = super::status::status(&mut k, &p, &s, 0xff00_0000).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(st.exit_code(), 4, "{:?}", st.drift);
}

#[test]
fn an_interface_whose_l3_device_is_missing_makes_only_that_gateway_inactive() {
    let text = format!("{SEED}config gateway 'w'\n\tlist interface 'wan'\n");
    let c = Config::parse(text.as_bytes(), "t.conf").unwrap();
    let dump = r#"{"interface":[{"interface":"wan","up":true,"l3_device":"wwan0",
        "route":[{"target":"0.0.0.0","mask":0,"nexthop":"10.0.0.1"}]}]}"#;
    let mut f = Facts::from_dump(dump).unwrap();
    let mut k = Fake::default();
    f.unusable_devices = super::devices::unusable(&mut k, &c, &f);
    let p = plan::plan(&c, &f);
    let w = p.gateways.iter().find(|g| g.name == "w").unwrap();
    assert!(!w.active, "{}", w.reason);
    assert_eq!(w.reason, "device wwan0 does not exist");
    assert_eq!(p.routes.len(), 1, "gateway a still planned");
}
