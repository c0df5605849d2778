//! The typed status as aligned text tables (the CLI prints it).

use crate::apply::status::Status;
use crate::plan;
use std::fmt::Write as _;

/// The status as aligned tables, then one line per drift.
pub fn render(st: &Status) -> String {
    let mut out = String::new();
    let on = if st.enabled { "enabled" } else { "disabled" };
    let _ = writeln!(
        out,
        "connroute {on}; table inet {}: {}",
        plan::TABLE,
        st.nft_table
    );
    let head = [
        "GATEWAY",
        "STATE",
        "MARK",
        "TABLE",
        "NEXT HOPS",
        "ROUTES",
        "RULES",
        "CONNS",
        "PACKETS",
        "BYTES",
        "WHY",
    ];
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    let ok = |active: bool, b: bool| match (active, b) {
        (false, false) => "-".to_string(),
        (false, true) => "STALE".into(),
        (true, true) => "ok".into(),
        (true, false) => "MISSING".into(),
    };
    for g in &st.gateways {
        rows.push(vec![
            g.name.clone(),
            if g.active { "active" } else { "inactive" }.into(),
            g.mark.clone(),
            g.table.to_string(),
            g.next_hops.join(" "),
            ok(g.active, g.routes_present),
            ok(g.active, g.rules_present),
            g.connections.map_or("-".into(), |n| n.to_string()),
            g.packets.to_string(),
            g.bytes.to_string(),
            g.reason.clone(),
        ]);
    }
    table(&mut out, &rows);
    out.push('\n');
    rules(&mut out, st);
    out.push('\n');
    if st.drift.is_empty() {
        out.push_str("drift: none\n");
    }
    for d in &st.drift {
        let _ = writeln!(out, "drift: {d}");
    }
    out
}

fn rules(out: &mut String, st: &Status) {
    let head = ["RULE", "GATEWAY", "FAMILIES", "PACKETS", "BYTES", "WHY"];
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for r in &st.rules {
        let fams = r.families.join(",");
        rows.push(vec![
            r.name.clone(),
            r.gateway.clone(),
            if fams.is_empty() { "-".into() } else { fams },
            r.packets.to_string(),
            r.bytes.to_string(),
            r.reason.clone(),
        ]);
    }
    table(out, &rows);
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::status::{GatewayStatus, RuleStatus};

    #[test]
    fn columns_line_up_and_drift_is_listed() {
        let st = Status {
            enabled: true,
            nft_table: "stale",
            fingerprint: "f".into(),
            gateways: vec![GatewayStatus {
                name: "lte".into(),
                active: false,
                reason: "device wwan0 does not exist".into(),
                mark: "0x02000000".into(),
                table: 5001,
                next_hops: vec![],
                routes_present: true,
                rules_present: true,
                connections: Some(7),
                packets: 12,
                bytes: 3400,
            }],
            rules: vec![RuleStatus {
                name: "r".into(),
                gateway: "lte".into(),
                families: vec![],
                installed: false,
                reason: "gateway lte inactive".into(),
                packets: 0,
                bytes: 0,
            }],
            drift: vec!["table inet connroute changed outside connroute".into()],
        };
        let text = render(&st);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "connroute enabled; table inet connroute: stale");
        let conns = lines[1].find("CONNS").unwrap();
        assert_eq!(&lines[2][conns..conns + 1], "7", "{text}");
        let bytes = lines[1].find("BYTES").unwrap();
        assert_eq!(&lines[2][bytes..bytes + 4], "3400", "{text}");
        assert!(lines[2].contains("inactive") && lines[2].ends_with("device wwan0 does not exist"));
        // An inactive gateway's left-overs in the kernel (the same flags as
        // `--json`) are shown, not hidden behind `-`.
        assert_eq!(lines[2].matches("STALE").count(), 2, "{text}");
        assert!(text.ends_with("drift: table inet connroute changed outside connroute\n"));
    }
}
