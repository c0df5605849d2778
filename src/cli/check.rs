//! `check`: validate the config, and the ruleset with `nft -c` when root.

use super::args::Cli;
use super::{Error, Run, facts, is_root, load, runtime, system};
use crate::plan;

/// Validates the config and, as root, has nft check the ruleset.
pub fn run(cli: &Cli) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
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
        Err(e) if e.starts_with("cannot run") => {
            eprintln!("{name}: config ok; nft check skipped: {e}");
            Ok(())
        }
        Err(e) => Err(Error::Config(format!("{name}: {e}"))),
    }
}
