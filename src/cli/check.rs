//! `check`: validate the config, and the ruleset with `nft -c`.

use super::args::Cli;
use super::{Error, Run, facts, load, need_root, print, runtime, system, table_names_free};
use crate::plan;

/// Validates the config and has nft check the ruleset. "config ok" goes to
/// stdout; without root the nft part cannot run, which is an error (exit 1).
pub fn run(cli: &Cli) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    table_names_free(cli, &p)?;
    let name = cli.config.display();
    if let Err(e) = need_root("the nft check of the ruleset") {
        print(&format!("{name}: config ok; nft check not run\n"))?;
        return Err(e);
    }
    let json = serde_json::to_vec(&p.ruleset).map_err(|e| runtime(e.to_string()))?;
    match system(cli).nft.check(&json) {
        Ok(()) => print(&format!("{name}: config ok; nft accepts the ruleset\n")),
        Err(e) if e.not_started() => print(&format!("{name}: config ok; nft check skipped: {e}\n")),
        // nft refusing the ruleset is the config's fault; a timeout or a
        // crash is not.
        Err(e) if e.exit_code() == 2 => Err(Error::Config(format!("{name}: {e}"))),
        Err(e) => Err(runtime(format!("{name}: {e}"))),
    }
}
