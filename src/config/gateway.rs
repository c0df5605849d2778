//! `config gateway 'NAME'` sections: next hops, devices, interfaces, and the
//! mark and table each gets (explicit, recorded in the ids file, or new).

use super::fields::{Context, Fields, Loader, Val};
use super::model::{Gateway, Globals};
use super::values;
use crate::ids::{self, Ids, Request};
use crate::uci::{Document, Section};
use std::net::IpAddr;

/// Loads every gateway and allocates marks and tables against `previous`;
/// returns them with the records to persist.
pub(super) fn load(
    l: &mut Loader,
    doc: &Document,
    globals: &Globals,
    previous: &Ids,
) -> (Vec<Gateway>, Ids) {
    let ctx = Context {
        mark_mask: globals.mark_mask,
    };
    let mut sections: Vec<&Section> = Vec::new();
    let mut gateways = Vec::new();
    let mut requests = Vec::new();
    for s in doc.of_type("gateway") {
        if s.anonymous {
            let msg = "a gateway section must be named: config gateway 'NAME'";
            l.error(s.line, s, None, msg.into());
            continue;
        }
        if let Some(problem) = values::gateway_name_problem(&s.name) {
            let problem = problem.replace(&*s.name, &crate::uci::clip(&s.name));
            l.error(s.line, s, None, problem);
        }
        let f = l.fields(doc, s, &ctx);
        if ["gateway", "gateway6", "device", "interface"]
            .iter()
            .all(|o| !f.given(o))
        {
            let msg = "needs a next hop (gateway, gateway6), a device or an interface";
            l.error(s.line, s, None, msg.into());
        }
        let gw = gateway(&f, gateways.len());
        next_hops(l, s, &gw, |o| f.line(o));
        requests.push(Request {
            name: gw.name.clone(),
            mark: f.num("mark"),
            table: f.num("table"),
        });
        gateways.push(gw);
        sections.push(s);
    }
    let limits = ids::Limits {
        mark_mask: globals.mark_mask,
        table_base: globals.table_base,
    };
    let records = assign(l, &sections, &mut gateways, &requests, limits, previous);
    band(l, doc, globals, gateways.len());
    (gateways, records)
}

/// The gateway a section describes, with mark and table still 0.
fn gateway(f: &Fields, index: usize) -> Gateway {
    let s = f.section;
    Gateway {
        name: s.name.to_string(),
        enabled: f.flag("enabled").unwrap_or(true),
        gateway: f.vals("gateway").into_iter().find_map(|v| match v {
            Val::V4(a) => Some(a),
            _ => None,
        }),
        gateway6: f.vals("gateway6").into_iter().find_map(|v| match v {
            Val::V6(a) => Some(a),
            _ => None,
        }),
        device: f.text("device"),
        interfaces: f.texts("interface"),
        mark: 0,
        table: 0,
        index,
        line: s.line,
    }
}

/// Runs the allocation; its errors become diagnostics on the sections.
fn assign(
    l: &mut Loader,
    sections: &[&Section],
    gateways: &mut [Gateway],
    requests: &[Request],
    limits: ids::Limits,
    previous: &Ids,
) -> Ids {
    match ids::allocate(requests, limits, previous) {
        Ok((got, records)) => {
            for (g, a) in gateways.iter_mut().zip(got) {
                (g.mark, g.table) = (a.mark, a.table);
            }
            records
        }
        Err(errors) => {
            for e in errors {
                let s = sections[e.index];
                let line = e
                    .option
                    .map_or(s.line, |o| s.option(o).map_or(s.line, |o| o.line));
                l.error(line, s, e.option, e.message);
            }
            Ids::default()
        }
    }
}

/// Next hops must be unicast (not the limited broadcast, not an IPv4 address
/// written as IPv6, `::ffff:a.b.c.d`, which the kernel refuses as a route's
/// next hop); a link-local one needs a device.
fn next_hops(l: &mut Loader, s: &Section, gw: &Gateway, line: impl Fn(&str) -> usize) {
    for (a, opt) in [
        (gw.gateway.map(IpAddr::V4), "gateway"),
        (gw.gateway6.map(IpAddr::V6), "gateway6"),
    ] {
        if let Some(a) = a {
            let broadcast = a == IpAddr::V4(std::net::Ipv4Addr::BROADCAST);
            let mapped = matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() || broadcast || mapped {
                l.error(
                    line(opt),
                    s,
                    Some(opt),
                    format!("'{a}' cannot be a next hop"),
                );
            }
        }
    }
    if let Some(g6) = gw.gateway6 {
        if (g6.segments()[0] & 0xffc0) == 0xfe80 && gw.device.is_none() && gw.interfaces.is_empty()
        {
            l.error(
                line("gateway6"),
                s,
                Some("gateway6"),
                format!("link-local next hop '{g6}' needs a device or interface"),
            );
        }
    }
}

/// Each of the two ip rule banks (`plan::Layout`, at most as large as
/// mark_mask and rule_priority allow) must hold every gateway.
fn band(l: &mut Loader, doc: &Document, globals: &Globals, count: usize) {
    let most = crate::plan::Layout::most(globals.rule_priority, globals.mark_mask);
    if count as u64 <= u64::from(most) {
        return;
    }
    let msg = format!(
        "{count} gateways, but the ip rule banks from {} hold at most {} (both end below the main table's 32766; at most {})",
        globals.rule_priority,
        most,
        crate::plan::MAX_BANK
    );
    if let Some(s) = doc.of_type("globals").next() {
        let line = s.option("rule_priority").map_or(s.line, |o| o.line);
        l.error(line, s, Some("rule_priority"), msg);
    } else if let Some(s) = doc.of_type("gateway").last() {
        l.error(s.line, s, None, msg);
    }
}
