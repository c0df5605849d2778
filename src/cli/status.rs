//! `status`: gateways, rules, counters and drift from the config. Exit 0
//! current, 3 drift, 4 current but an enabled gateway inactive, 1 the state
//! could not be read.

use super::args::Cli;
use super::{
    Error, Run, live_facts, load, need_root, open_kernel, plan_without_refused, print, print_json,
    status_text, system,
};
use crate::apply::status::status;

/// Prints the live state against the plan, as text or JSON.
pub fn run(cli: &Cli, json: bool) -> Run {
    let config = load(cli)?;
    need_root("status")?;
    let mut k = open_kernel(cli)?;
    // Strict: without netifd's state every interface gateway would look
    // inactive and the good state would be reported as drift.
    let mut f = live_facts(cli, &config, &mut k, true)?;
    // What apply made inactive because the kernel refused the next hop.
    let p = crate::plan::plan(&config, &f);
    let p = plan_without_refused(&config, &mut f, &mut k, p)?;
    let st = status(&mut k, &p, &system(cli), config.globals.mark_mask)
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let names = (!cli.no_rt_tables).then_some(cli.rt_tables.as_path());
    if let Some(note) = names.and_then(crate::apply::rt_tables::foreign_note) {
        eprintln!("connroute: warning: {note}");
    }
    if json {
        print_json(&st)?;
    } else {
        print(&status_text::render(&st))?;
    }
    match st.exit_code() {
        0 => Ok(()),
        3 => Err(Error::Code(
            3,
            "status: the live state differs from the config (drift)".into(),
        )),
        c => Err(Error::Code(
            c,
            "status: an enabled gateway is inactive".into(),
        )),
    }
}
