//! flush: remove connroute's nft table, ip rules and routes, and nothing
//! else (everything removed is found by its protocol tag or table name).

use super::apply::remove;
use super::error::ApplyError;
use super::kernel::Kernel;
use super::rt_tables;
use super::{Report, System};
use crate::plan;

/// Removes connroute's table, ip rules and routes; other owners' entries,
/// even in connroute's tables, stay.
pub fn flush(k: &mut dyn Kernel, sys: &System) -> Result<Report, ApplyError> {
    let mut report = Report::default();
    let mut problems = Vec::new();
    if k.table_exists()? {
        match k.delete_table() {
            Ok(()) => report
                .changes
                .push(format!("deleted table inet {}", plan::TABLE)),
            Err(e) => problems.push(e),
        }
    }
    let rules = k.rules()?;
    let routes = k.routes()?;
    problems.extend(remove(k, &rules, &routes, &mut report));
    if let Some(p) = &sys.state {
        let _ = std::fs::remove_file(p);
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
