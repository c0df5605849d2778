//! `check`: validate the config, and the ruleset with `nft -c` when root;
//! with `--diff`, also decide everything apply would (devices, foreign
//! routes, the live state) and print the changes, changing nothing.

use super::args::Cli;
use super::table_names_free;
use super::{Error, Run, facts, is_root, live_plan, load, open_kernel, print, runtime, system};
use crate::apply::apply::{batch, decide};
use crate::apply::diff::TableChange;
use crate::apply::kernel::{Kernel, KernelError};
use crate::plan;

/// Validates the config and, as root, has nft check the ruleset.
pub fn run(cli: &Cli, diff: bool) -> Run {
    let config = load(cli)?;
    let name = cli.config.display();
    if !is_root() {
        if diff {
            return Err(runtime(format!(
                "{name}: config ok; check --diff needs root (CAP_NET_ADMIN) to read the live state"
            )));
        }
        table_names_free(cli, &plan::plan(&config, &facts(cli, &config, false)?))?;
        eprintln!("{name}: config ok; nft check skipped: needs root");
        return Ok(());
    }
    let mut k = open_kernel(cli)?;
    let p = live_plan(cli, &config, &mut k, diff)?;
    table_names_free(cli, &p)?;
    let changes = if diff {
        Some(decide(&mut k, &p, &system(cli), false)?.changes)
    } else {
        None
    };
    let create = matches!(
        changes.as_ref().and_then(|c| c.table.as_ref()),
        Some(TableChange::Create)
    );
    match k.check(&batch(&p, create)) {
        Ok(()) => eprintln!("{name}: config ok; nft accepts the ruleset"),
        Err(KernelError::Nft(e)) if e.not_started() && !diff => {
            eprintln!("{name}: config ok; nft check skipped: {e}");
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
