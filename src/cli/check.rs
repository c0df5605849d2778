//! `check`: validate the config (another owner's default route in a table
//! it wants too, as apply refuses it), and the ruleset with `nft -c`; with
//! `--diff`, also decide everything apply would (devices, foreign routes,
//! the live state) and print the changes, changing nothing. "config ok"
//! and the changes go to stdout, errors to stderr.

use super::args::Cli;
use super::{Error, Run, facts, live_facts, load, need_root, open_kernel, print, runtime, system};
use super::{foreign_refusal, plan_without_refused, table_names_free};
use crate::apply::apply::{batch, decide};
use crate::apply::child::ChildError;
use crate::apply::diff::TableChange;
use crate::apply::kernel::{Kernel, KernelError};
use crate::plan;

/// Validates the config and has nft check the ruleset. Without root
/// (CAP_NET_ADMIN) the nft part cannot run: "config ok" and exit 1.
pub fn run(cli: &Cli, diff: bool) -> Run {
    let config = load(cli)?;
    let name = cli.config.display();
    let needs = if diff {
        "check --diff"
    } else {
        "the nft check of the ruleset"
    };
    if let Err(e) = need_root(needs) {
        table_names_free(cli, &plan::plan(&config, &facts(cli, &config, false)?))?;
        print(&format!("{name}: config ok; nft check not run\n"))?;
        return Err(e);
    }
    let mut k = open_kernel(cli)?;
    let mut f = live_facts(cli, &config, &mut k, diff)?;
    let mut p = plan::plan(&config, &f);
    if diff {
        // As status does: a gateway whose missing route's next hop the
        // kernel would refuse is inactive, not a change apply would make.
        p = plan_without_refused(&config, &mut f, &mut k, p)?;
        for (g, why) in &f.refused {
            log::warn!("gateway {g} inactive: {why}");
        }
    }
    unknown_interfaces(cli, &config, &f);
    table_names_free(cli, &p)?;
    // Another owner's default route in a wanted table: apply refuses the
    // config (exit 2), so check does too.
    let wanted: Vec<_> = p.routes.iter().map(|r| (r.family, r.table)).collect();
    let foreign = k
        .foreign_defaults(&wanted)
        .map_err(|e| runtime(e.to_string()))?;
    if !foreign.is_empty() {
        let verdict = "apply refuses this config";
        return Err(foreign_refusal(cli, &p, &foreign, verdict));
    }
    let changes = if diff {
        Some(decide(&mut k, &p, &system(cli), false)?.changes)
    } else {
        None
    };
    // After decide: its rule dump serves the warning too.
    crate::apply::status::warn_foreign(&mut k, &p);
    // `nft -c` on the batch apply would load: the incremental update (checked
    // against the live table, handles and all) when it would use one.
    let (json, update) = match changes.as_ref().and_then(|c| c.table.as_ref()) {
        Some(TableChange::Update(u)) => (u.to_json(p.ruleset.objects()), true),
        t => (batch(&p, matches!(t, Some(TableChange::Create))), false),
    };
    let res = match k.check(&json) {
        // A timeout is the answer, as in apply: no second `nft -c` (the
        // whole check is bounded by one --timeout).
        Err(e @ KernelError::Nft(ChildError::TimedOut { .. })) => Err(e),
        // The config's fault only when nft refuses the whole batch too.
        Err(e) if update => match k.check(&batch(&p, false)) {
            Ok(()) => {
                let why = "apply would replace the whole table (counters reset)";
                let msg = format!("{name}: nft refuses the incremental update ({e}); {why}");
                return Err(runtime(msg));
            }
            full => full,
        },
        r => r,
    };
    match res {
        Ok(()) => print(&format!("{name}: config ok; nft accepts the ruleset\n"))?,
        Err(KernelError::Nft(e)) if e.not_started() && !diff => {
            print(&format!("{name}: config ok; nft check skipped: {e}\n"))?;
        }
        // nft refusing the ruleset is the config's fault; a timeout or a
        // crash is not.
        Err(KernelError::Nft(e)) if e.exit_code() == 2 => {
            return Err(Error::Config(format!("{name}: {e}")));
        }
        Err(e) => return Err(runtime(format!("{name}: {e}"))),
    }
    match changes {
        Some(c) if c.is_empty() => print("apply would change nothing\n"),
        Some(c) => print(&c.to_string()),
        None => Ok(()),
    }
}

/// Warns about each interface name netifd does not know, most likely a
/// typo: the gateway or the rule's input would miss it, and connections
/// fall to a later rule. Only when netifd was asked (without it, no name
/// is known and none is a typo).
fn unknown_interfaces(cli: &Cli, config: &crate::config::Config, f: &crate::facts::Facts) {
    if !f.netifd {
        return;
    }
    let file = cli.config.display();
    let gateways = config.enabled_gateways().map(|g| {
        (
            g.line,
            format!("gateway '{}'", g.name),
            "interface",
            &g.interfaces[..],
        )
    });
    let rules = config.rules.iter().map(|r| {
        (
            r.line,
            format!("rule '{}'", r.name),
            "in_interface",
            &r.in_interface[..],
        )
    });
    for (line, section, option, names) in gateways.chain(rules) {
        for n in names.iter().filter(|n| !f.interfaces.contains_key(*n)) {
            log::warn!("{file}:{line}: {section}: option '{option}': '{n}' unknown to netifd");
        }
    }
}
