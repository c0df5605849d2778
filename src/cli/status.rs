//! `status`: gateways, rules, counters and drift from the config.

use super::args::Cli;
use super::{Run, facts, load, print, print_json, runtime, system};
use crate::apply::engine;
use crate::plan;

/// Prints the live state against the plan, as text or JSON.
pub fn run(cli: &Cli, json: bool) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    let v = engine::status(&p, &system(cli)).map_err(runtime)?;
    if json {
        print_json(&v)
    } else {
        print(&engine::status_text(&v))
    }
}
