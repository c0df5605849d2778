//! `render`: print the nftables batch (or the routing plan) apply would use.

use super::args::{Cli, Format};
use super::{Run, facts, load, print, print_json, runtime};
use crate::plan;

/// Prints the ruleset as JSON or nft text, or the routes and ip rules.
pub fn run(cli: &Cli, format: Format, routes: bool) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    if routes {
        let mut text = String::new();
        for r in &p.routes {
            text.push_str(&format!("{r}\n"));
        }
        for r in &p.ip_rules {
            text.push_str(&format!("{r}\n"));
        }
        return print(&text);
    }
    match format {
        Format::Json => print_json(&p.ruleset),
        Format::Nft => print(&crate::nft::text::render(&p.ruleset).map_err(runtime)?),
    }
}
