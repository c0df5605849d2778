//! Prints a batch of connroute's own objects in nft's text syntax
//! (`render --format nft`). Only the statement and expression forms the
//! ruleset builder uses are supported; anything else is an error, never a
//! silent omission. Every string printed goes through [`ident`], [`word`]
//! or [`quoted`], which refuse whatever could end a token early, so that
//! `render --format nft | nft -f -` can never gain a statement.

use nftables::expr::{
    BinaryOperation, Expression, MetaKey, NamedExpression, Payload, SetItem, Verdict,
};
use nftables::schema::{
    Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Set, SetType, SetTypeValue,
};
use nftables::stmt::{Counter, Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};
use std::fmt::Write;

/// How immediates next to a key are printed.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Hex,
    Quoted,
    /// A concatenation: bit i set quotes its i-th part.
    Concat(u32),
}

fn style_for(e: &Expression) -> Style {
    match e {
        Expression::Named(NamedExpression::Meta(m)) => match m.key {
            MetaKey::Mark => Style::Hex,
            MetaKey::Iifname | MetaKey::Oifname => Style::Quoted,
            _ => Style::Plain,
        },
        Expression::Named(NamedExpression::CT(c)) if c.key == "mark" => Style::Hex,
        Expression::Named(NamedExpression::Concat(v)) => Style::Concat(
            (v.iter().enumerate())
                .filter(|(_, x)| style_for(x) == Style::Quoted)
                .fold(0, |bits, (i, _)| bits | 1 << i),
        ),
        Expression::BinaryOperation(b) => match b.as_ref() {
            BinaryOperation::AND(l, _) => style_for(l),
            BinaryOperation::OR(v) => v.first().map_or(Style::Plain, style_for),
            _ => Style::Plain,
        },
        _ => Style::Plain,
    }
}

fn family(f: NfFamily) -> &'static str {
    match f {
        NfFamily::IP => "ip",
        NfFamily::IP6 => "ip6",
        NfFamily::INet => "inet",
        NfFamily::ARP => "arp",
        NfFamily::Bridge => "bridge",
        NfFamily::NetDev => "netdev",
    }
}

fn meta_key(k: MetaKey) -> Result<&'static str, String> {
    Ok(match k {
        MetaKey::Mark => "meta mark",
        MetaKey::Iifname => "iifname",
        MetaKey::Oifname => "oifname",
        MetaKey::L4proto => "meta l4proto",
        MetaKey::Nfproto => "meta nfproto",
        other => return Err(format!("meta key {other:?} has no text form here")),
    })
}

/// A name nft reads as one identifier (table, chain, counter, key).
fn ident(s: &str) -> Result<&str, String> {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        Ok(s)
    } else {
        Err(format!("{s:?} cannot be written as an nft identifier"))
    }
}

/// A bare value (keyword, address, MAC, protocol name) that nft reads as
/// one token.
fn word(s: &str) -> Result<&str, String> {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'))
    {
        Ok(s)
    } else {
        Err(format!("{s:?} cannot be written as a bare nft value"))
    }
}

/// A double-quoted nft string. nft's text syntax has no escape for `"`
/// and treats `\` specially, so those (and control characters) are refused.
fn quoted(s: &str) -> Result<String, String> {
    if s.bytes()
        .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
    {
        Ok(format!("\"{s}\""))
    } else {
        Err(format!("{s:?} cannot be written as an nft string"))
    }
}

fn expr(e: &Expression, style: Style) -> Result<String, String> {
    Ok(match e {
        Expression::String(v) if style == Style::Quoted => quoted(v)?,
        Expression::String(v) => word(v)?.to_string(),
        Expression::Number(v) if style == Style::Hex => format!("0x{v:08x}"),
        Expression::Number(v) => v.to_string(),
        Expression::Boolean(b) => b.to_string(),
        Expression::Range(r) => format!(
            "{}-{}",
            expr(&r.range[0], style)?,
            expr(&r.range[1], style)?
        ),
        Expression::BinaryOperation(b) => match b.as_ref() {
            BinaryOperation::AND(l, r) => format!("{} & {}", expr(l, style)?, expr(r, Style::Hex)?),
            BinaryOperation::OR(v) => v
                .iter()
                .map(|x| expr(x, Style::Hex))
                .collect::<Result<Vec<_>, _>>()?
                .join(" | "),
            other => return Err(format!("operator {other:?} has no text form here")),
        },
        Expression::Named(NamedExpression::Meta(m)) => meta_key(m.key)?.to_string(),
        Expression::Named(NamedExpression::CT(c)) => format!("ct {}", ident(&c.key)?),
        Expression::Named(NamedExpression::Payload(Payload::PayloadField(p))) => {
            format!("{} {}", ident(&p.protocol)?, ident(&p.field)?)
        }
        Expression::Named(NamedExpression::Concat(v)) => v
            .iter()
            .enumerate()
            .map(|(i, x)| match style {
                Style::Concat(bits) if bits & 1 << i != 0 => expr(x, Style::Quoted),
                _ => expr(x, Style::Plain),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(" . "),
        Expression::Named(NamedExpression::Prefix(p)) => {
            format!("{}/{}", expr(&p.addr, style)?, p.len)
        }
        Expression::Named(NamedExpression::Set(items)) => {
            let parts = items
                .iter()
                .map(|i| match i {
                    SetItem::Element(x) => expr(x, style),
                    SetItem::Mapping(k, v) => {
                        Ok(format!("{} : {}", expr(k, style)?, expr(v, style)?))
                    }
                    SetItem::MappingStatement(..) => {
                        Err("set element statements have no text form here".into())
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{ {} }}", parts.join(", "))
        }
        Expression::Verdict(Verdict::Goto(t)) => format!("goto {}", ident(&t.target)?),
        Expression::Verdict(Verdict::Jump(t)) => format!("jump {}", ident(&t.target)?),
        other => return Err(format!("expression {other:?} has no text form here")),
    })
}

/// `sets`: the named sets declared so far; `"@NAME"` refers to one of
/// them only (any other string is a value, quoted as its key wants).
fn stmt(st: &Statement, sets: &[String]) -> Result<String, String> {
    Ok(match st {
        Statement::Match(m) => {
            let style = style_for(&m.left);
            let op = match m.op {
                Operator::EQ | Operator::IN => "",
                Operator::NEQ => "!= ",
                other => return Err(format!("operator {other:?} has no text form here")),
            };
            let right = match &m.right {
                Expression::String(v)
                    if v.strip_prefix('@')
                        .is_some_and(|n| sets.iter().any(|s| s == n)) =>
                {
                    v.to_string()
                }
                r => expr(r, style)?,
            };
            format!("{} {op}{right}", expr(&m.left, style)?)
        }
        Statement::Mangle(m) => {
            let style = style_for(&m.key);
            format!("{} set {}", expr(&m.key, style)?, expr(&m.value, style)?)
        }
        Statement::Counter(Counter::Named(name)) => format!("counter name {}", quoted(name)?),
        Statement::Counter(Counter::Anonymous(_)) => "counter".into(),
        Statement::Log(Some(l)) => match &l.prefix {
            Some(p) => format!("log prefix {}", quoted(p)?),
            None => "log".into(),
        },
        Statement::Log(None) => "log".into(),
        Statement::Jump(t) => format!("jump {}", ident(&t.target)?),
        Statement::Goto(t) => format!("goto {}", ident(&t.target)?),
        Statement::Return(_) => "return".into(),
        Statement::Accept(_) => "accept".into(),
        Statement::VerdictMap(v) => {
            let style = style_for(&v.key);
            format!("{} vmap {}", expr(&v.key, style)?, expr(&v.data, style)?)
        }
        other => return Err(format!("statement {other:?} has no text form here")),
    })
}

fn rule(r: &Rule, sets: &[String]) -> Result<String, String> {
    let mut parts = (r.expr.iter())
        .map(|st| stmt(st, sets))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(c) = &r.comment {
        parts.push(format!("comment {}", quoted(c)?));
    }
    Ok(parts.join(" "))
}

fn chain_head(c: &Chain) -> Option<String> {
    let hook = match c.hook? {
        NfHook::Prerouting => "prerouting",
        NfHook::Output => "output",
        NfHook::Input => "input",
        NfHook::Forward => "forward",
        NfHook::Postrouting => "postrouting",
        NfHook::Ingress => "ingress",
        NfHook::Egress => "egress",
    };
    let ty = match c._type? {
        NfChainType::Filter => "filter",
        NfChainType::Route => "route",
        NfChainType::NAT => "nat",
    };
    Some(format!(
        "type {ty} hook {hook} priority {}; policy accept;",
        c.prio.unwrap_or(0)
    ))
}

/// `set NAME { type T; [flags interval;] elements = { … } }`.
fn named_set(set: &Set) -> Result<String, String> {
    let ty = match &set.set_type {
        SetTypeValue::Single(SetType::Ipv4Addr) => "ipv4_addr",
        SetTypeValue::Single(SetType::Ipv6Addr) => "ipv6_addr",
        SetTypeValue::Single(SetType::EtherAddr) => "ether_addr",
        SetTypeValue::Single(SetType::InetProto) => "inet_proto",
        SetTypeValue::Single(SetType::InetService) => "inet_service",
        SetTypeValue::Single(SetType::Ifname) => "ifname",
        other => return Err(format!("set type {other:?} has no text form here")),
    };
    let style = if ty == "ifname" {
        Style::Quoted
    } else {
        Style::Plain
    };
    let elems = (set.elem.iter().flat_map(|e| e.iter()))
        .map(|e| expr(e, style))
        .collect::<Result<Vec<_>, _>>()?;
    let flags = if set.flags.is_some() {
        " flags interval;"
    } else {
        ""
    };
    Ok(format!(
        "\tset {} {{\n\t\ttype {ty};{flags}\n\t\telements = {{ {} }}\n\t}}",
        ident(&set.name)?,
        elems.join(", ")
    ))
}

/// Renders the batch as one `table … { … }` block, preceded by the same
/// add/delete pair the JSON batch uses so that `nft -f` replaces the table.
pub fn render(batch: &Nftables) -> Result<String, String> {
    let mut out = String::new();
    let mut chains: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
    let mut counters = Vec::new();
    let mut sets = Vec::new();
    let mut set_names = Vec::new();
    let mut table = None;
    for obj in batch.objects.iter() {
        let NfObject::CmdObject(cmd) = obj else {
            return Err("list objects have no text form here".into());
        };
        match cmd {
            NfCmd::Add(NfListObject::Table(t)) => {
                table = Some((family(t.family), ident(&t.name)?.to_string()))
            }
            NfCmd::Delete(NfListObject::Table(_)) => {}
            NfCmd::Add(NfListObject::Counter(c)) => counters.push(ident(&c.name)?.to_string()),
            NfCmd::Add(NfListObject::Set(set)) => {
                sets.push(named_set(set)?);
                set_names.push(set.name.to_string());
            }
            NfCmd::Add(NfListObject::Chain(c)) => {
                chains.push((ident(&c.name)?.to_string(), chain_head(c), Vec::new()))
            }
            NfCmd::Add(NfListObject::Rule(r)) => {
                let text = rule(r, &set_names)?;
                // Rules mostly follow their chain: search from the end.
                match chains.iter().rposition(|c| c.0 == r.chain) {
                    Some(i) => chains[i].2.push(text),
                    None => return Err(format!("rule for unknown chain {}", r.chain)),
                }
            }
            other => return Err(format!("command {other:?} has no text form here")),
        }
    }
    let (fam, name) = table.ok_or("the batch adds no table")?;
    let _ = writeln!(out, "add table {fam} {name}\ndelete table {fam} {name}\n");
    let _ = writeln!(out, "table {fam} {name} {{");
    for c in &counters {
        let _ = writeln!(out, "\tcounter {c} {{\n\t}}\n");
    }
    for set in &sets {
        let _ = writeln!(out, "{set}\n");
    }
    for (i, (cname, head, rules)) in chains.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "\tchain {cname} {{");
        if let Some(h) = head {
            let _ = writeln!(out, "\t\t{h}");
        }
        for r in rules {
            let _ = writeln!(out, "\t\t{r}");
        }
        let _ = writeln!(out, "\t}}");
    }
    out.push_str("}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_could_end_a_token_are_refused() {
        assert_eq!(quoted("eth1").unwrap(), "\"eth1\"");
        assert_eq!(quoted("rule a b").unwrap(), "\"rule a b\"");
        for bad in ["x\";drop;#", "a\\b", "a\nb", "\u{e9}"] {
            assert!(quoted(bad).is_err(), "{bad:?}");
        }
        assert!(word("192.168.1.0").is_ok() && word("52:54:00:c2:a5:43").is_ok());
        for bad in ["a b", "x;", "{", "", "a\"b"] {
            assert!(word(bad).is_err(), "{bad:?}");
        }
        assert!(ident("pin_router2").is_ok());
        for bad in ["9x", "a;b", "a b", "", "a\"b"] {
            assert!(ident(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_hostile_device_fails_the_render_instead_of_injecting() {
        let config = crate::config::Config::parse(
            b"config gateway g\n\toption device eth1\nconfig rule r\n\toption gateway g\n\tlist in_device eth2\n",
            "c",
        )
        .unwrap();
        let p = crate::plan::plan(&config, &crate::facts::Facts::default());
        let json = String::from_utf8(p.ruleset.to_json()).unwrap();
        let evil = json.replace("\"eth2\"", "\"x\\\";drop;#\"");
        assert_ne!(json, evil);
        let typed: Nftables = serde_json::from_str(&evil).unwrap();
        let e = render(&typed).unwrap_err();
        assert!(e.contains("cannot be written as an nft string"), "{e}");
    }
}
