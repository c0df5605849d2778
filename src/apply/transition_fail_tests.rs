//! The transition property with failures injected: any single rule add
//! or delete failing, in an apply or a flush, leaves every rule list
//! routing as the old or the new plan; the next apply converges.

use super::*;

/// Applies `plan` with the call after the first `nth` calls of the kinds
/// `ops` failing (then the next call of each other kind too), recording
/// every rule list; also whether a failure was hit.
fn failing_apply(k: &mut Fake, plan: &Plan, ops: &[Op], nth: usize) -> (bool, Vec<Vec<IpRule>>) {
    let start = k.rules.clone();
    (k.fail, k.fail_after, k.trace) = (ops.to_vec(), nth, Some(Vec::new()));
    // A disabled plan flushes.
    let _ = apply(k, plan, &sys(), false);
    let hit = k.fail.len() < ops.len();
    (k.fail, k.fail_after) = (Vec::new(), 0);
    let mut trace = vec![start];
    trace.extend(k.trace.take().unwrap_or_default());
    (hit, trace)
}

/// A rule add or delete failing at any point of an apply or a flush
/// (before the switch: rolled back; in the clean-up after the load: the
/// rest of that family's removals stop), or a rollback's delete failing
/// too (the rest of that family's undo stops), leaves every rule list routing
/// as the old or the new plan, and the next apply converges the same
/// way. Fails when a failed delete does not stop the removals after it
/// (a leaf left behind, then the main rule deleted before it).
#[test]
fn a_failed_rule_operation_anywhere_keeps_old_or_new() {
    let mut rng = Rng(0x1234_5678);
    let mut serial = 0;
    let (mut hits, mut cleanups, mut grown) = (0, 0, 0);
    // Fewer under an emulator (`make test-cross` sets the variable).
    let cases = std::env::var("CONNROUTE_TRANSITION_FAIL_CASES").map_or(5, |v| v.parse().unwrap());
    for case in 0..cases {
        let n = 1 + rng.below(8) as usize;
        let mut gws: Vec<Gw> = (0..n).map(|_| new_gw(&mut rng, &mut serial)).collect();
        let mut old = loop {
            match plan_of(&gws) {
                Some(p) => break p,
                None => gws = mutate(&mut rng, &gws, &mut serial),
            }
        };
        let mut base = Fake::default();
        apply(&mut base, &old, &sys(), false).unwrap();
        for step in 0..5 {
            // The last step flushes (every rule removed, in order).
            let next = mutate(&mut rng, &gws, &mut serial);
            let new = if step == 4 {
                let mut off = old.clone();
                (off.enabled, off.ip_rules, off.routes) = (false, vec![], vec![]);
                off
            } else {
                match plan_of(&next) {
                    Some(p) => p,
                    None => continue,
                }
            };
            grown += usize::from(grows(&old, &new));
            let mut after = copy(&base);
            apply(&mut after, &new, &sys(), false).unwrap();
            let done = after.rules.clone();
            // The pair: an add fails, then a delete undoing one (rollback).
            let both = [Op::AddRule, Op::DeleteRule];
            for ops in [&both[..1], &both[1..], &both[..]] {
                for nth in 0.. {
                    let mut k = copy(&base);
                    let (hit, trace) = failing_apply(&mut k, &new, ops, nth);
                    if !hit {
                        break;
                    }
                    let what = format!("case {case} step {step}: {ops:?} after {nth}");
                    hits += 1;
                    cleanups += usize::from(k.rules != base.rules && k.rules != done);
                    check(&trace, &old, &new, &what);
                    let (_, retry) = failing_apply(&mut k, &new, &[Op::Load], usize::MAX);
                    check(&retry, &old, &new, &format!("{what}, then again"));
                    assert_eq!(k.rules, done, "{what}: converges");
                }
            }
            if step < 4 {
                (gws, old, base) = (next, new, after);
            }
        }
    }
    assert!(
        hits >= 100 * cases && cleanups >= 40 * cases,
        "{hits} failures, {cleanups} in the clean-up"
    );
    // Not vacuous for banks that grow (4 of the 5 default chains grow).
    assert!(grown >= cases / 2, "{grown} growths in {cases} chains");
}

/// A fake kernel in the state of `k`.
fn copy(k: &Fake) -> Fake {
    let mut c = Fake::default();
    (c.routes, c.rules, c.table) = k.snapshot();
    c.generation = k.generation;
    c
}
