//! apply: make the kernel match the plan. Order: refuse if another owner's
//! default route sits in a table connroute wants; add or replace routes,
//! build the new ip rule block and switch to it (see `banks`); load the
//! nft table in one transaction; only then remove
//! what the new state no longer needs. A failure before the table is live
//! undoes this run's changes; after any nft failure the kernel is asked
//! whether the transaction committed before anything is undone.

use super::banks::RuleStep;
use super::child::ChildError;
use super::diff::{self, Changes, TableChange};
use super::error::ApplyError;
use super::flush;
use super::incr;
use super::kernel::{KResult, Kernel, KernelError, TableState};
use super::runstate::{self, Batch, RunState};
use super::{Report, System};
use crate::config::Family;
use crate::plan::{self, IpRule, Plan, Route};

/// What apply would do, and the run state to record if nothing changes.
pub struct Decision {
    /// The changes.
    pub changes: Changes,
    /// A run state refreshed by verifying the table (write it back).
    pub refreshed: Option<RunState>,
}

/// Reads the live state and decides every change, changing nothing.
/// Refuses (exit 2) when a wanted table holds another owner's default route.
pub fn decide(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    force: bool,
) -> Result<Decision, ApplyError> {
    read_live(k, plan, sys, force, false)
}

/// [`decide`], the table judged first; with `prepare`, a load it needs is
/// announced before any route or rule work ([`Kernel::prepare_load`]).
fn read_live(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    force: bool,
    prepare: bool,
) -> Result<Decision, ApplyError> {
    let recorded = runstate::recorded(sys)?;
    let state = sys.state.as_deref();
    let (table, refreshed) = diff::table(k, plan, recorded.as_ref(), state, force)?;
    if prepare && loads(&table) {
        k.prepare_load();
    }
    let routes = k.routes()?;
    let rules = k.rules()?;
    let wanted: Vec<(Family, u32)> = plan.routes.iter().map(|r| (r.family, r.table)).collect();
    let foreign = k.foreign_defaults(&wanted)?;
    if !foreign.is_empty() {
        return Err(ApplyError::Foreign(foreign));
    }
    let mut changes = diff::routing(plan, &routes, &rules);
    changes.remove_strays = k.strays()?;
    changes.table = Some(table);
    Ok(Decision { changes, refreshed })
}

/// The earliest load hint, before the plan: an absent table of an enabled
/// config will be loaded, so nft starts while the facts (netifd's) are
/// gathered and the plan made. [`apply`] drops it if not needed after all.
/// Only a hint: a ruleset that cannot be read here is not an error yet
/// (the facts' own errors come first; apply reports it in its turn).
pub fn prepare_if_absent(k: &mut dyn Kernel, enabled: bool) {
    if enabled && matches!(k.table_exists(), Ok(false)) {
        k.prepare_load();
    }
}

/// Makes the system match `plan`. On failure before the new nft table is
/// live, what this run changed is undone and the previous state keeps running.
pub fn apply(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    force: bool,
) -> Result<Report, ApplyError> {
    apply_with(k, plan, sys, force, &mut || Ok(()))
}

/// [`apply`], calling `before_change` after every refusal (a foreign
/// default route) and before the first change: what must be on disk
/// before the new state can be live (the ids file's new allocations: a
/// run killed or failing after nft's commit leaves them in use). Its error
/// ends the run, nothing changed ([`ApplyError::Prepare`]). Not called for
/// a disabled config, which only removes.
pub fn apply_with(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    force: bool,
    before_change: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Report, ApplyError> {
    let result = if plan.enabled {
        apply_enabled(k, plan, sys, force, before_change)
    } else {
        flush::flush(k, sys)
    };
    // Every way out: an nft started ahead and not fed is killed unfed.
    k.discard_load();
    result
}

fn apply_enabled(
    k: &mut dyn Kernel,
    plan: &Plan,
    sys: &System,
    force: bool,
    before_change: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Report, ApplyError> {
    let d = read_live(k, plan, sys, force, true)?;
    super::status::warn_foreign(k, plan);
    before_change().map_err(ApplyError::Prepare)?;
    let mut report = Report::default();
    let (result, loaded) = execute(k, plan, &d.changes, &mut report);
    if let Some(path) = &sys.state {
        if let Some(s) = &loaded {
            record_batch(path, plan, s);
        }
        if let Some(Err(e)) = loaded.or(d.refreshed).map(|s| s.write(path)) {
            log::warn!("cannot record the run state in {}: {e}", path.display());
        }
    }
    result?;
    if let Some(path) = &sys.rt_tables {
        match super::rt_tables::write(path, &plan.table_names) {
            Ok(change) => report.changes.extend(change.summary(path)),
            Err(e) => log::warn!("could not write {e}"),
        }
    }
    Ok(report)
}

enum Undo {
    Restore(Route),
    DeleteRoute(Route),
    DeleteRule(IpRule),
    AddRule(IpRule),
}

/// Undoes in reverse. A rule step that cannot be undone stops the undo
/// of its family's rules: the rules are then as some step of the apply
/// left them, which routes as the old or the new plan; undoing a later
/// step with an earlier one still in place might not.
fn rollback(k: &mut dyn Kernel, undo: Vec<Undo>) -> Vec<KernelError> {
    let mut problems = Vec::new();
    let mut stuck: Vec<Family> = Vec::new();
    for u in undo.into_iter().rev() {
        let family = match &u {
            Undo::DeleteRule(r) | Undo::AddRule(r) => Some(r.family),
            _ => None,
        };
        if family.is_some_and(|f| stuck.contains(&f)) {
            continue;
        }
        let r = match &u {
            Undo::Restore(old) => k.replace_route(old),
            Undo::DeleteRoute(r) => k.delete_route(r),
            Undo::DeleteRule(r) => k.delete_rule(r),
            Undo::AddRule(r) => k.add_rule(r),
        };
        if let Err(e) = r {
            stuck.extend(family);
            problems.push(e);
        }
    }
    problems
}

/// Runs `changes`; also returns the run state to record when a table was
/// loaded (even if removing old entries failed afterwards).
pub(super) fn execute(
    k: &mut dyn Kernel,
    plan: &Plan,
    changes: &Changes,
    report: &mut Report,
) -> (Result<(), ApplyError>, Option<RunState>) {
    let mut undo = Vec::new();
    if let Err(error) = routing_steps(k, changes, report, &mut undo) {
        let failed = failed_route(changes, undo.len());
        let rollback = rollback(k, undo);
        let gateway = failed
            .filter(|_| rollback.is_empty() && unreachable(&error))
            .and_then(|r| plan.gateways.iter().find(|g| g.routes.contains(r)));
        if let Some(g) = gateway {
            let why = format!("next hop not reachable: {error}");
            let gateway = g.name.clone();
            return (Err(ApplyError::Unreachable { gateway, why }), None);
        }
        return (Err(ApplyError::Failed { error, rollback }), None);
    }
    let mut loaded = None;
    let mut despite = None;
    if let Some(change) = changes.table.as_ref().filter(|c| loads(c)) {
        match load_table(k, plan, change, report) {
            Ok((state, error)) => (loaded, despite) = (Some(state), error),
            Err(error) => {
                let rollback = rollback(k, undo);
                return (Err(ApplyError::Failed { error, rollback }), None);
            }
        }
    }
    // The new state is live; now remove what it no longer needs.
    let mut problems = remove(k, &changes.remove_rules, &changes.remove_routes, report);
    problems.extend(remove_strays(k, &changes.remove_strays, report));
    let result = if let Some(e) = despite {
        Err(ApplyError::CommittedDespite(e))
    } else if !problems.is_empty() {
        Err(ApplyError::Cleanup(problems))
    } else {
        Ok(())
    };
    (result, loaded)
}

/// The route whose step failed after `done` steps of [`routing_steps`].
fn failed_route(c: &Changes, done: usize) -> Option<&Route> {
    let replaced = c.replace_routes.iter().map(|(_, new)| new);
    replaced.chain(&c.add_routes).nth(done)
}

/// Whether the kernel refused a route for its next hop: not on a
/// connected network (`ENETUNREACH`, `EHOSTUNREACH`), "Nexthop has invalid
/// gateway" (`EINVAL`), or its device gone (`ENODEV`).
fn unreachable(e: &KernelError) -> bool {
    matches!(e, KernelError::Netlink { err, .. } if matches!(err.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EINVAL | libc::ENODEV)))
}

fn routing_steps(
    k: &mut dyn Kernel,
    c: &Changes,
    report: &mut Report,
    undo: &mut Vec<Undo>,
) -> KResult<()> {
    for (old, new) in &c.replace_routes {
        k.replace_route(new)?;
        report.changes.push(format!("route {new}"));
        undo.push(Undo::Restore(old.clone()));
    }
    for r in &c.add_routes {
        k.add_route(r)?;
        report.changes.push(format!("route {r}"));
        undo.push(Undo::DeleteRoute(r.clone()));
    }
    // In order (see `banks`): undone in reverse, each state on the way
    // back routes as before or as planned too.
    for s in &c.rule_steps {
        match s {
            RuleStep::Add(r) => {
                k.add_rule(r)?;
                report.changes.push(format!("rule {r}"));
                undo.push(Undo::DeleteRule(r.clone()));
            }
            RuleStep::Remove(r) => match k.delete_rule(r) {
                Ok(()) => {
                    report.changes.push(format!("removed rule {r}"));
                    undo.push(Undo::AddRule(r.clone()));
                }
                Err(e) if e.is_missing() => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(())
}

/// Removes connroute's `rules` (in `banks`' removal order) then `routes`;
/// a missing one is not an error. Shared by apply (old entries) and flush
/// (all of them). A rule that cannot be deleted stops its family's
/// removal: every prefix of the order routes as before or as planned,
/// but deleting the main rule or END past a leaf left behind would not;
/// the next apply or flush finishes the job.
pub(super) fn remove(
    k: &mut dyn Kernel,
    rules: &[IpRule],
    routes: &[Route],
    report: &mut Report,
) -> Vec<KernelError> {
    let mut problems = Vec::new();
    let mut stuck: Vec<Family> = Vec::new();
    for r in rules {
        if stuck.contains(&r.family) {
            continue;
        }
        match k.delete_rule(r) {
            Ok(()) => report.changes.push(format!("removed rule {r}")),
            Err(e) if e.is_missing() => {}
            Err(e) => {
                stuck.push(r.family);
                problems.push(e);
            }
        }
    }
    for r in routes {
        match k.delete_route(r) {
            Ok(()) => report.changes.push(format!("removed route {r}")),
            Err(e) if e.is_missing() => {}
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// Removes non-default routes tagged as connroute's; a missing one is not
/// an error. Shared by apply and flush.
pub(super) fn remove_strays(
    k: &mut dyn Kernel,
    strays: &[String],
    report: &mut Report,
) -> Vec<KernelError> {
    let mut problems = Vec::new();
    for s in strays {
        match k.delete_stray(s) {
            Ok(()) => report.changes.push(format!("removed stray route {s}")),
            Err(e) if e.is_missing() => {}
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// The plan's batch; when the table is absent, without the `delete table`
/// (a batch that destroys objects waits for an RCU grace period): the
/// delete becomes a flush, so a table created meanwhile is still replaced
/// rule for rule.
pub fn batch(plan: &Plan, create: bool) -> Vec<u8> {
    batch_pieces(plan, create).concat()
}

/// [`batch`] as pieces to feed nft in order: the plan's command texts
/// themselves, no copy of the batch.
pub fn batch_pieces(plan: &Plan, create: bool) -> Vec<&[u8]> {
    let swap = ("{\"delete\":{\"table\":", "{\"flush\":{\"table\":");
    plan.ruleset.pieces(create.then_some(swap))
}

/// Keeps the plan's batch beside the run state when the load was verified
/// (its digest recorded): the next changed config loads only the
/// difference from it.
fn record_batch(path: &std::path::Path, plan: &Plan, loaded: &RunState) {
    let res = match loaded.digest {
        Some(_) => Batch::write(path, &plan.fingerprint, plan.ruleset.objects()),
        None => {
            Batch::remove(path);
            Ok(())
        }
    };
    if let Err(e) = res {
        log::warn!("cannot record the loaded batch: {e}");
    }
}

/// Whether `change` loads the table.
fn loads(change: &TableChange) -> bool {
    matches!(
        change,
        TableChange::Create | TableChange::Replace(_) | TableChange::Update(_)
    )
}

/// Loads the table as `change` says and returns the run state to record,
/// with nft's error when it failed after committing. An incremental update
/// that nft refuses falls back to replacing the whole table; one that
/// timed out (or was stopped) is the error.
fn load_table(
    k: &mut dyn Kernel,
    plan: &Plan,
    change: &TableChange,
    report: &mut Report,
) -> KResult<(RunState, Option<KernelError>)> {
    let (t, fp) = (plan::TABLE, &plan.fingerprint);
    if let TableChange::Update(u) = change {
        // Handles are only good for the table as it was read.
        let before = k.generation().ok();
        let mark = match u.touched.add_only() {
            true => Mark::Counts(u.counts),
            false => Mark::Fingerprint,
        };
        if before.is_none() || before != u.generation {
            log::info!("the ruleset changed since it was read: replacing the whole table");
        } else {
            match attempt(k, plan, u.pieces(plan.ruleset.objects()), before, mark) {
                Ok(r) => {
                    let what = &u.touched;
                    let line = format!("updated table inet {t} ({fp}): {what}");
                    report.changes.push(line);
                    return Ok(r);
                }
                // Asked to stop (watch got SIGTERM), or nft timed out: no
                // second nft. A full load under the same conditions would
                // not do better, and would hold the lock for another
                // `--timeout` (that is the bound of the whole load).
                Err(
                    e @ KernelError::Nft(ChildError::Stopped { .. } | ChildError::TimedOut { .. }),
                ) => {
                    return Err(e);
                }
                Err(e) => log::warn!("incremental update failed ({e}); replacing the whole table"),
            }
        }
    }
    let pieces = batch_pieces(plan, *change == TableChange::Create);
    // Needed: `record` trusts the digest only after exactly one commit.
    let before = k.generation().ok();
    let r = attempt(k, plan, pieces, before, Mark::Fingerprint)?;
    report.changes.push(format!("loaded table inet {t} ({fp})"));
    Ok(r)
}

/// How a load is recognised in the live table after it.
#[derive(Clone, Copy)]
enum Mark {
    /// It stamps the plan's fingerprint (full loads, updates that refresh it).
    Fingerprint,
    /// An add-only update: it keeps the older fingerprint and leaves these
    /// rule counts per chain, as [`incr::rule_counts`] sums them (all or
    /// nothing, and always a changed count).
    Counts(u64),
}

impl Mark {
    /// Whether the live table shows the load.
    fn shows(self, plan: &Plan, live: &TableState) -> bool {
        match self {
            Mark::Fingerprint => live.fingerprint.as_deref() == Some(plan.fingerprint.as_str()),
            Mark::Counts(c) => incr::live_counts(&live.rules) == c,
        }
    }
}

/// One load of the batch `json`, in pieces (`before`: the ruleset
/// generation just before),
/// recognised by `mark`: the run state to record (and nft's error when it
/// failed but the transaction committed); an error when nothing committed
/// or the kernel cannot tell.
fn attempt(
    k: &mut dyn Kernel,
    plan: &Plan,
    json: Vec<&[u8]>,
    before: Option<u32>,
    mark: Mark,
) -> KResult<(RunState, Option<KernelError>)> {
    match load(k, plan, json, before, mark) {
        Ok(state) => Ok((state, None)),
        Err(error) => match committed(k, plan, before, mark) {
            Ok(Some(state)) => Ok((state, Some(error))),
            _ => Err(error),
        },
    }
}

/// Loads `json` (pieces) and returns the run state to record: the
/// generation after the load, and the table's digest when no other commit
/// raced it (`before`: the generation before the load). The list of pieces
/// is freed before the table is read back (60,000 of them for 10,000 rules).
fn load(
    k: &mut dyn Kernel,
    plan: &Plan,
    json: Vec<&[u8]>,
    before: Option<u32>,
    mark: Mark,
) -> KResult<RunState> {
    k.load(&json)?;
    drop(json);
    // Committed: from here on nothing may fail the load, only the record.
    let live = k.table().ok().flatten();
    // The generation the table was read at; asked only without a table.
    let after = match &live {
        Some(t) => Some(t.generation),
        None => k.generation().ok(),
    };
    if before.is_some() && after == before {
        // Every batch connroute loads makes at least one change.
        let why = "nft exited 0, but the nf_tables generation did not move: nothing was committed";
        let err = std::io::Error::other(why);
        return Err(KernelError::netlink("loading table inet connroute", err));
    }
    Ok(record(plan, live, before, after, mark))
}

/// After an nft failure: did the transaction commit anyway? Yes when the
/// ruleset generation moved and the table shows `mark`: the plan's
/// fingerprint, or (add-only update) the generation moved by exactly one
/// and every chain holds the rules the update leaves; then the run state
/// to record. `None` or an error when it did not or the kernel cannot tell
/// (then the caller replaces the table or rolls back).
fn committed(
    k: &mut dyn Kernel,
    plan: &Plan,
    before: Option<u32>,
    mark: Mark,
) -> KResult<Option<RunState>> {
    let after = k.generation().ok();
    if before.is_some() && after == before {
        return Ok(None);
    }
    let live = k.table()?;
    if !live.as_ref().is_some_and(|t| mark.shows(plan, t)) {
        return Ok(None);
    }
    let state = record(plan, live, before, after, mark);
    let known = matches!(mark, Mark::Fingerprint) || state.digest.is_some();
    Ok(known.then_some(state))
}

/// The run state after a load: the digest is trusted only when exactly one
/// commit (ours) happened between `before` and `after` and the table
/// shows `mark`.
fn record(
    plan: &Plan,
    live: Option<TableState>,
    before: Option<u32>,
    after: Option<u32>,
    mark: Mark,
) -> RunState {
    let exact = before.is_some_and(|b| Some(b.wrapping_add(1)) == after);
    let digest = live
        .filter(|t| exact && mark.shows(plan, t))
        .map(|t| t.digest);
    RunState {
        netns: runstate::netns(),
        generation: after.unwrap_or(0),
        fingerprint: plan.fingerprint.clone(),
        digest,
    }
}
