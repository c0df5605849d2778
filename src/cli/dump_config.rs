//! `dump-config`: print the parsed config in `uci export` form.

use super::args::Cli;
use super::{Error, Run, read_config, runtime};
use std::io::Write;

/// Parses the config file as UCI and prints it back as `uci export` would.
pub fn run(cli: &Cli) -> Run {
    let name = cli.config.display().to_string();
    let bytes = read_config(cli)?;
    let package = cli
        .config
        .file_name()
        .map_or("connroute".into(), |n| n.to_string_lossy().into_owned());
    let doc = crate::uci::parse(&bytes, &package)
        .map_err(|e| Error::Config(format!("{name}:{}: {e}", e.line)))?;
    std::io::stdout()
        .write_all(&doc.export())
        .map_err(|e| runtime(e.to_string()))
}
