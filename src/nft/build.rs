//! Short constructors for the `nftables` crate's expression and statement
//! types, so the ruleset code reads like the rules it makes.

use nftables::expr::{
    BinaryOperation, CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
    Range, SetItem, Verdict,
};
use nftables::stmt::{Counter, JumpTarget, Log, Mangle, Match, Operator, Statement, VerdictMap};
use std::borrow::Cow;

/// An owned expression.
pub type Expr = Expression<'static>;
/// An owned statement.
pub type Stmt = Statement<'static>;

/// `meta KEY`.
pub fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

/// `ct KEY`.
pub fn ct(key: &'static str) -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

/// `PROTO FIELD` packet payload, e.g. `ether saddr`, `th dport`.
pub fn payload(protocol: &'static str, field: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

/// A string immediate.
pub fn s(v: impl Into<Cow<'static, str>>) -> Expr {
    Expression::String(v.into())
}

/// A number immediate.
pub fn n(v: u32) -> Expr {
    Expression::Number(v)
}

/// `ADDR/LEN`.
pub fn prefix(addr: String, len: u32) -> Expr {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(addr)),
        len,
    }))
}

/// `FROM-TO`.
pub fn range(from: u32, to: u32) -> Expr {
    Expression::Range(Box::new(Range {
        range: [n(from), n(to)],
    }))
}

/// `a & b`.
pub fn and(a: Expr, b: Expr) -> Expr {
    Expression::BinaryOperation(Box::new(BinaryOperation::AND(a, b)))
}

/// `a | b`.
pub fn or(a: Expr, b: Expr) -> Expr {
    Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![a, b])))
}

/// An anonymous set, or the single value when there is only one.
pub fn one_or_set(mut items: Vec<Expr>) -> Expr {
    if items.len() == 1 {
        items.remove(0)
    } else {
        Expression::Named(NamedExpression::Set(
            items.into_iter().map(SetItem::Element).collect(),
        ))
    }
}

/// `left == right` (or `left != right` when `negate`).
pub fn matches(left: Expr, right: Expr, negate: bool) -> Stmt {
    let op = if negate { Operator::NEQ } else { Operator::EQ };
    Statement::Match(Match { left, right, op })
}

/// `left in right` (flag tests such as `ct state new`).
pub fn flag(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::IN,
    })
}

/// `KEY set VALUE`.
pub fn set(key: Expr, value: Expr) -> Stmt {
    Statement::Mangle(Mangle { key, value })
}

/// `KEY set KEY & keep | value`: changes only the bits outside `keep`.
pub fn set_masked(key: fn() -> Expr, keep: u32, value: u32) -> Stmt {
    set(key(), or(and(key(), n(keep)), n(value)))
}

/// `counter name NAME`.
pub fn counter(name: String) -> Stmt {
    Statement::Counter(Counter::Named(name.into()))
}

/// `log prefix PREFIX`.
pub fn log(prefix: String) -> Stmt {
    Statement::Log(Some(Log {
        prefix: Some(prefix.into()),
        group: None,
        snaplen: None,
        queue_threshold: None,
        level: None,
        flags: None,
    }))
}

/// `return`.
pub fn ret() -> Stmt {
    Statement::Return(None)
}

/// `jump CHAIN`.
pub fn jump(chain: String) -> Stmt {
    Statement::Jump(JumpTarget {
        target: chain.into(),
    })
}

/// `goto CHAIN`.
pub fn goto(chain: String) -> Stmt {
    Statement::Goto(JumpTarget {
        target: chain.into(),
    })
}

/// `KEY vmap { K : goto CHAIN, … }`.
pub fn vmap_goto(key: Expr, entries: Vec<(Expr, String)>) -> Stmt {
    let items = entries.into_iter().map(|(k, c)| goto_item(k, c)).collect();
    vmap(key, items)
}

/// `K : goto CHAIN`, an element of a verdict map.
pub fn goto_item(k: Expr, chain: String) -> SetItem<'static> {
    SetItem::Mapping(
        k,
        Expression::Verdict(Verdict::Goto(JumpTarget {
            target: chain.into(),
        })),
    )
}

/// `KEY vmap { ITEMS }`.
pub fn vmap(key: Expr, items: Vec<SetItem<'static>>) -> Stmt {
    Statement::VerdictMap(VerdictMap {
        key,
        data: Expression::Named(NamedExpression::Set(items)),
    })
}
