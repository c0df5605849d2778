//! flush: remove connroute's nft table, ip rules and routes, and nothing
//! else (everything removed is found by its protocol tag or table name).
//! The table goes first: if it cannot be deleted, the rules and routes it
//! steers marked packets into stay, so the system stays consistent.

use super::apply::{remove, remove_strays};
use super::error::ApplyError;
use super::kernel::Kernel;
use super::rt_tables;
use super::{Report, System};
use crate::plan;

/// Removes connroute's table, ip rules and routes; other owners' entries,
/// even in connroute's tables, stay.
pub fn flush(k: &mut dyn Kernel, sys: &System) -> Result<Report, ApplyError> {
    let mut report = Report::default();
    if k.table_exists()? {
        // Rules and routes are kept when this fails: packets the table
        // still marks keep their routes.
        k.delete_table().map_err(|e| ApplyError::Flush(vec![e]))?;
        report
            .changes
            .push(format!("deleted table inet {}", plan::TABLE));
    }
    let rules = super::banks::removal(&k.rules()?);
    let routes = k.routes()?;
    let strays = k.strays()?;
    let mut problems = remove(k, &rules, &routes, &mut report);
    problems.extend(remove_strays(k, &strays, &mut report));
    if let Some(p) = &sys.state {
        super::runstate::RunState::remove(p);
    }
    if !problems.is_empty() {
        return Err(ApplyError::Flush(problems));
    }
    if let Some(path) = &sys.rt_tables {
        let change = rt_tables::remove(path).map_err(ApplyError::RtTables)?;
        report.changes.extend(change.summary(path));
    }
    Ok(report)
}
