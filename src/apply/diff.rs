//! The difference between the plan and what the kernel has: routes and
//! ip rules compared exactly (whole values, any number per gateway), the
//! nft table by fingerprint and by a digest of its full contents.

use super::banks::{self, RuleStep};
use super::incr::{self, Update};
use super::kernel::{KResult, Kernel, TableState};
use super::runstate::{self, Batch, RunState};
use crate::plan::{IpRule, Plan, Route};
use std::fmt;

/// True when the kernel's `actual` route is what `want` asks for.
pub fn same_route(actual: &Route, want: &Route) -> bool {
    actual.family == want.family
        && actual.table == want.table
        && actual.via == want.via
        && (want.device.is_none() || actual.device == want.device)
}

/// What to do with connroute's nft table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableChange {
    /// It is current.
    Keep,
    /// It is absent: load with an add-only batch.
    Create,
    /// It is there but differs (why): replace it in one transaction.
    Replace(String),
    /// It differs, and is verifiably what connroute loaded last: load only
    /// the difference (one transaction, no table or hook deleted).
    Update(Box<Update>),
    /// connroute is disabled: delete it.
    Delete,
}

/// Everything apply would change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Routes to add (no route of connroute's in that table yet).
    pub add_routes: Vec<Route>,
    /// connroute's routes to replace: (current, wanted).
    pub replace_routes: Vec<(Route, Route)>,
    /// connroute's routes no longer wanted.
    pub remove_routes: Vec<Route>,
    /// ip rules to add and remove before the table is loaded, in order
    /// (see `banks`: the new block, then the switch to it).
    pub rule_steps: Vec<RuleStep>,
    /// connroute's ip rules no longer wanted, removed after the load
    /// (the old block, strays and duplicates).
    pub remove_rules: Vec<IpRule>,
    /// Non-default routes tagged as connroute's (never made by it).
    pub remove_strays: Vec<String>,
    /// The nft table.
    pub table: Option<TableChange>,
}

impl Changes {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.add_routes.is_empty()
            && self.replace_routes.is_empty()
            && self.remove_routes.is_empty()
            && self.rule_steps.is_empty()
            && self.remove_rules.is_empty()
            && self.remove_strays.is_empty()
            && matches!(self.table, None | Some(TableChange::Keep))
    }
}

impl fmt::Display for Changes {
    /// One line per change: `+` add, `~` change, `-` remove.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.add_routes {
            writeln!(f, "+ {r}")?;
        }
        for (old, new) in &self.replace_routes {
            writeln!(f, "~ {new} (was: {old})")?;
        }
        for s in &self.rule_steps {
            match s {
                RuleStep::Add(r) => writeln!(f, "+ {r}")?,
                RuleStep::Remove(r) => writeln!(f, "- {r}")?,
            }
        }
        let t = crate::plan::TABLE;
        match &self.table {
            Some(TableChange::Create) => writeln!(f, "+ table inet {t}")?,
            Some(TableChange::Replace(why)) => writeln!(f, "~ table inet {t} ({why})")?,
            Some(TableChange::Update(u)) => writeln!(f, "~ table inet {t}: {}", u.touched)?,
            Some(TableChange::Delete) => writeln!(f, "- table inet {t}")?,
            Some(TableChange::Keep) | None => {}
        }
        for r in &self.remove_rules {
            writeln!(f, "- {r}")?;
        }
        for r in &self.remove_routes {
            writeln!(f, "- {r}")?;
        }
        for r in &self.remove_strays {
            writeln!(f, "- {r}")?;
        }
        Ok(())
    }
}

/// Routes and rules: what to add, replace and remove so that the kernel's
/// (connroute-owned) `routes` and `rules` become the plan's.
pub fn routing(plan: &Plan, routes: &[Route], rules: &[IpRule]) -> Changes {
    let mut c = Changes::default();
    let mut used = vec![false; routes.len()];
    let mut pending = Vec::new();
    for want in &plan.routes {
        match routes
            .iter()
            .enumerate()
            .find(|(i, k)| !used[*i] && same_route(k, want))
        {
            Some((i, _)) => used[i] = true,
            None => pending.push(want),
        }
    }
    for want in pending {
        let slot = routes
            .iter()
            .enumerate()
            .find(|(i, k)| !used[*i] && k.family == want.family && k.table == want.table);
        match slot {
            Some((i, k)) => {
                used[i] = true;
                c.replace_routes.push((k.clone(), want.clone()));
            }
            None => c.add_routes.push(want.clone()),
        }
    }
    c.remove_routes = routes
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(r, _)| r.clone())
        .collect();
    (c.rule_steps, c.remove_rules) = banks::changes(&plan.ip_rules, rules);
    c
}

/// The nft table's verdict, and a refreshed run state when the table was
/// verified unchanged under a newer ruleset generation. With `state` (the
/// run-state file, the batch recorded beside it), a changed config whose
/// live table is verifiably the last load becomes an incremental update.
pub fn table(
    k: &mut dyn Kernel,
    plan: &Plan,
    recorded: Option<&RunState>,
    state: Option<&std::path::Path>,
    force: bool,
) -> KResult<(TableChange, Option<RunState>)> {
    let exists = k.table_exists()?;
    if !plan.enabled {
        let c = if exists {
            TableChange::Delete
        } else {
            TableChange::Keep
        };
        return Ok((c, None));
    }
    if !exists {
        return Ok((TableChange::Create, None));
    }
    if force {
        return Ok((TableChange::Replace("forced".into()), None));
    }
    let recorded = recorded.filter(|s| s.netns == runstate::netns());
    let generation = k.generation()?;
    if let Some(s) = recorded {
        if s.generation == generation && s.fingerprint == plan.fingerprint && s.digest.is_some() {
            return Ok((TableChange::Keep, None));
        }
    }
    let Some(live) = k.table()? else {
        return Ok((TableChange::Create, None));
    };
    // A verified record says what the table holds; the table's comment
    // does not (an add-only update keeps the older fingerprint).
    let verified = recorded.filter(|s| s.digest.is_some());
    match verified {
        Some(s) if s.fingerprint == plan.fingerprint && s.digest == Some(live.digest) => {
            let refreshed = RunState {
                generation,
                ..s.clone()
            };
            Ok((TableChange::Keep, Some(refreshed)))
        }
        Some(s) if s.fingerprint == plan.fingerprint => Ok((
            TableChange::Replace("changed outside connroute".into()),
            None,
        )),
        None if live.fingerprint.as_deref() == Some(plan.fingerprint.as_str()) => Ok((
            TableChange::Replace("contents not verifiable: no record of the last load".into()),
            None,
        )),
        _ => Ok((changed(plan, recorded, state, live, generation), None)),
    }
}

/// A config that changed: an incremental update when it can be made,
/// else a whole replace.
fn changed(
    plan: &Plan,
    recorded: Option<&RunState>,
    state: Option<&std::path::Path>,
    live: TableState,
    generation: u32,
) -> TableChange {
    match state.and_then(|p| incremental(p, plan, recorded, live)) {
        Some(u) => TableChange::Update(Box::new(Update {
            generation: Some(generation),
            ..u
        })),
        None => TableChange::Replace("differs from the config".into()),
    }
}

/// The incremental update from the recorded batch to the plan's, when the
/// live table is exactly what that batch loaded: the run state's digest is
/// the live table's, the recorded batch is whole and of the run state's
/// fingerprint, and its rules line up with the live handles (the live
/// table is freed once they are taken).
fn incremental(
    state: &std::path::Path,
    plan: &Plan,
    recorded: Option<&RunState>,
    live: TableState,
) -> Option<Update> {
    let s = recorded?;
    if s.digest != Some(live.digest) {
        return None;
    }
    let prev = Batch::read_shape(state, &s.fingerprint)?;
    let u = incr::diff_shapes(&prev, plan.ruleset.objects(), live.rules)?;
    (!u.commands.is_empty()).then_some(u)
}
