//! Builds connroute's nftables table: one batch that replaces
//! `table inet connroute` atomically.
//!
//! ```text
//! prerouting (filter, mangle) / output (route, mangle):
//!     ct mark & MASK vmap { MARK_g : goto restore_g, … }   # O(1) for pinned traffic
//!     ct state new jump classify(_local)
//! classify:        one rule per config rule and family, first match wins:
//!     MATCHES counter name "rule_R" [log] goto pin_g
//! pin_g:           ct mark set ct mark & ~MASK | MARK_g; meta mark set meta mark & ~MASK | MARK_g
//! restore_g:       meta mark set meta mark & ~MASK | MARK_g
//! ```
//! nft cannot OR two runtime values, so marks are restored through the
//! verdict map into per-gateway chains that OR a constant; bits outside the
//! mask are never touched.

use super::GatewayState;
use super::batch::Ruleset;
use super::classify::{self, CHAIN_CLASSIFY, CHAIN_CLASSIFY_LOCAL};
use crate::config::{Family, Rule};
use crate::nft::build::{self as b, Expr, Stmt};
use nftables::expr::MetaKey;
use nftables::schema::{Chain, Counter, NfCmd, NfListObject, NfObject, Rule as NftRule, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

/// connroute's table (family inet).
pub const TABLE: &str = "connroute";
/// The prerouting base chain; its first rule carries the fingerprint.
pub const CHAIN_PREROUTING: &str = "prerouting";
const CHAIN_OUTPUT: &str = "output";
const PRIO_MANGLE: i32 = -150;
const FINGERPRINT_TAG: &str = "connroute restore fp=";

/// A rule that is installed, with what the plan resolved for it.
pub(super) struct Placed<'a> {
    pub rule: &'a Rule,
    pub families: &'static [Family],
    pub in_devices: Vec<String>,
    pub gateway: &'a GatewayState,
}

/// Name of a rule's counter (connections it pinned: first packets).
pub fn counter_name(rule: &Rule) -> String {
    rule_counter_name(&rule.name)
}

/// Name of the counter of the rule named `name`.
pub fn rule_counter_name(name: &str) -> String {
    format!("rule_{name}")
}

/// Name of a gateway's counter: every packet and byte of the connections
/// pinned to it, both directions, forwarded and local.
pub fn gateway_counter_name(gateway: &str) -> String {
    format!("gw_{gateway}")
}

pub(super) fn pin_chain(gw: &GatewayState) -> String {
    format!("pin_{}", gw.name)
}

fn restore_chain(gw: &GatewayState) -> String {
    format!("restore_{}", gw.name)
}

fn meta_mark() -> Expr {
    b::meta(MetaKey::Mark)
}

fn ct_mark() -> Expr {
    b::ct("mark")
}

/// The batch being built: each object is serialized as it is added.
pub(super) struct Builder {
    batch: Ruleset,
}

impl Builder {
    /// The batch, for objects partly written as text (src/plan/vmap.rs).
    pub(super) fn batch(&mut self) -> &mut Ruleset {
        &mut self.batch
    }

    /// Adds an object to the batch.
    pub(super) fn add(&mut self, obj: NfListObject<'static>) {
        self.batch.push(NfCmd::Add(obj));
    }

    /// Adds a chain (a base chain when `base` says its type and hook).
    pub(super) fn chain(&mut self, name: &str, base: Option<(NfChainType, NfHook)>) {
        let (ty, hook) = base.unzip();
        self.add(NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.to_string().into(),
            newname: None,
            handle: None,
            _type: ty,
            hook,
            prio: base.map(|_| PRIO_MANGLE),
            dev: None,
            policy: base.map(|_| NfChainPolicy::Accept),
        }));
    }

    /// Adds a rule at the end of `chain`.
    pub(super) fn rule(&mut self, chain: &str, mut expr: Vec<Stmt>, comment: Option<String>) {
        expr.shrink_to_fit();
        self.add(NfListObject::Rule(NftRule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: chain.to_string().into(),
            expr: expr.into(),
            handle: None,
            index: None,
            comment: comment.map(|c| truncate(c).into()),
        }));
    }
}

/// nft keeps at most 127 bytes of a comment.
pub(super) fn truncate(mut c: String) -> String {
    if c.len() > 127 {
        let mut end = 127;
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
    }
    c
}

/// Builds the batch (with the fingerprint in the first prerouting rule);
/// `typed` keeps the typed objects too (for the nft text printer).
pub(super) fn build(
    mask: u32,
    gateways: &[GatewayState],
    placed: &[Placed],
    typed: bool,
) -> Ruleset {
    let mut bd = Builder {
        batch: Ruleset::new(typed),
    };
    let active: Vec<&GatewayState> = gateways.iter().filter(|g| g.active).collect();
    table_and_counters(&mut bd, &active, placed);
    bd.chain(
        CHAIN_PREROUTING,
        Some((NfChainType::Filter, NfHook::Prerouting)),
    );
    bd.chain(CHAIN_OUTPUT, Some((NfChainType::Route, NfHook::Output)));
    for gw in &active {
        gateway_chains(&mut bd, gw, !mask);
    }
    bd.chain(CHAIN_CLASSIFY, None);
    // Without rules on how a packet arrived, local traffic walks the same
    // chain: classify_local would be a copy.
    let separate = placed.iter().any(|p| p.rule.needs_input());
    if separate {
        bd.chain(CHAIN_CLASSIFY_LOCAL, None);
    }
    classify::build(&mut bd, placed, separate);
    hook_rules(&mut bd, mask, &active, placed, separate);
    let mut batch = bd.batch;
    let fp = fingerprint_of(&batch);
    stamp(&mut batch, &fp);
    batch
}

/// The table (add, delete, add: a clean replace in one transaction) and
/// the named counters of the gateways and rules, each once.
fn table_and_counters(bd: &mut Builder, active: &[&GatewayState], placed: &[Placed]) {
    let table = || {
        NfListObject::Table(Table {
            family: NfFamily::INet,
            name: TABLE.into(),
            handle: None,
        })
    };
    bd.add(table());
    bd.batch.push(NfCmd::Delete(table()));
    bd.add(table());
    let mut counters = std::collections::BTreeSet::new();
    let gw_counters = active.iter().map(|g| gateway_counter_name(&g.name));
    for name in gw_counters.chain(placed.iter().map(|p| counter_name(p.rule))) {
        if counters.insert(name.clone()) {
            bd.add(NfListObject::Counter(Counter {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.into(),
                handle: None,
                packets: None,
                bytes: None,
            }));
        }
    }
}

/// A gateway's two chains: `restore_GW` (meta mark from the connection)
/// and `pin_GW` (ct mark and meta mark for a new connection); both count
/// into the gateway's counter and keep the bits outside the mask (`keep`).
fn gateway_chains(bd: &mut Builder, gw: &GatewayState, keep: u32) {
    bd.chain(&restore_chain(gw), None);
    bd.rule(
        &restore_chain(gw),
        vec![
            b::counter(gateway_counter_name(&gw.name)),
            b::set_masked(meta_mark, keep, gw.mark),
        ],
        Some(format!("gateway {}", gw.name)),
    );
    bd.chain(&pin_chain(gw), None);
    bd.rule(
        &pin_chain(gw),
        vec![
            b::counter(gateway_counter_name(&gw.name)),
            b::set_masked(ct_mark, keep, gw.mark),
            b::set_masked(meta_mark, keep, gw.mark),
        ],
        Some(format!("gateway {}", gw.name)),
    );
}

/// The base chains' rules: restore a pinned connection's mark through one
/// verdict-map lookup, then send new connections to classification.
fn hook_rules(
    bd: &mut Builder,
    mask: u32,
    active: &[&GatewayState],
    placed: &[Placed],
    separate: bool,
) {
    let has_local = placed.iter().any(|p| !p.rule.needs_input());
    let local_chain = if separate {
        CHAIN_CLASSIFY_LOCAL
    } else {
        CHAIN_CLASSIFY
    };
    for (chain, classify, any) in [
        (CHAIN_PREROUTING, CHAIN_CLASSIFY, !placed.is_empty()),
        (CHAIN_OUTPUT, local_chain, has_local),
    ] {
        let restore = if active.is_empty() {
            // An empty verdict map is not valid nft: nothing to restore, so
            // connections marked by a gateway that went away just return.
            vec![
                b::matches(b::and(ct_mark(), b::n(mask)), b::n(0), true),
                b::ret(),
            ]
        } else {
            let entries = active
                .iter()
                .map(|g| (b::n(g.mark), restore_chain(g)))
                .collect();
            vec![b::vmap_goto(b::and(ct_mark(), b::n(mask)), entries)]
        };
        bd.rule(
            chain,
            restore,
            Some(format!("{FINGERPRINT_TAG}0000000000000000")),
        );
        if any {
            bd.rule(
                chain,
                vec![
                    b::flag(b::ct("state"), b::s("new")),
                    b::jump(classify.to_string()),
                ],
                Some("classify new connections".into()),
            );
        }
    }
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3))
}

/// FNV-1a over the batch's compact JSON, as 16 hex digits. The comments
/// holding a fingerprint are hashed with their placeholder, so stamping
/// keeps it valid.
pub fn fingerprint_of(batch: &Ruleset) -> String {
    let placeholder = placeholder();
    let mut h = fnv(0xcbf2_9ce4_8422_2325, b"{\"nftables\":[");
    for (i, obj) in batch.objects().iter().enumerate() {
        if i > 0 {
            h = fnv(h, b",");
        }
        match stamped_at(obj) {
            Some(at) => {
                h = fnv(h, &obj.as_bytes()[..at]);
                h = fnv(h, placeholder.as_bytes());
                h = fnv(h, &obj.as_bytes()[at + placeholder.len()..]);
            }
            None => h = fnv(h, obj.as_bytes()),
        }
    }
    format!("{:016x}", fnv(h, b"]}"))
}

/// The comment text a fingerprint replaces.
fn placeholder() -> String {
    format!("{FINGERPRINT_TAG}{}", "0".repeat(16))
}

/// Where the fingerprint comment starts in an added rule's JSON text.
fn stamped_at(obj: &str) -> Option<usize> {
    if !obj.starts_with("{\"add\":{\"rule\":") {
        return None;
    }
    let key = format!("\"comment\":\"{FINGERPRINT_TAG}");
    let at = obj.find(&key)? + "\"comment\":\"".len();
    (obj.len() >= at + FINGERPRINT_TAG.len() + 16).then_some(at)
}

fn stamp(batch: &mut Ruleset, fp: &str) {
    let comment = format!("{FINGERPRINT_TAG}{fp}");
    let objects = batch.objects_mut();
    for i in 0..objects.len() {
        if let Some(at) = stamped_at(&objects[i]) {
            objects.overwrite(i, at..at + comment.len(), &comment);
        }
    }
    for obj in batch.typed_mut().into_iter().flatten() {
        if let NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(r))) = obj {
            if r.comment
                .as_deref()
                .is_some_and(|c| c.starts_with(FINGERPRINT_TAG))
            {
                r.comment = Some(comment.clone().into());
            }
        }
    }
}

/// Reads the fingerprint out of a rule comment found in the kernel's table.
pub fn fingerprint_in_comment(comment: &str) -> Option<&str> {
    comment.strip_prefix(FINGERPRINT_TAG)
}
