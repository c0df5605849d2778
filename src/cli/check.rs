//! `check`: validate the config, and the ruleset with `nft -c` when root.

use super::args::Cli;
use super::{Error, Run, facts, is_root, load, runtime, system, table_names_free};
use crate::plan;

/// Validates the config and, as root, has nft check the ruleset.
pub fn run(cli: &Cli) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    table_names_free(cli, &p)?;
    let name = cli.config.display();
    if !is_root() {
        eprintln!("{name}: config ok; nft check skipped: needs root");
        return Ok(());
    }
    let json = serde_json::to_vec(&p.ruleset).map_err(|e| runtime(e.to_string()))?;
    match system(cli).nft.check(&json) {
        Ok(()) => {
            eprintln!("{name}: config ok; nft accepts the ruleset");
            Ok(())
        }
        Err(e) if e.not_started() => {
            eprintln!("{name}: config ok; nft check skipped: {e}");
            Ok(())
        }
        // nft refusing the ruleset is the config's fault; a timeout or a
        // crash is not.
        Err(e) if e.exit_code() == 2 => Err(Error::Config(format!("{name}: {e}"))),
        Err(e) => Err(runtime(format!("{name}: {e}"))),
    }
}
