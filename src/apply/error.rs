//! What can go wrong in apply, flush and status, each with its exit code.

use super::kernel::{ForeignRoute, KernelError};
use super::rt_tables::RtTablesError;
use std::fmt;

/// A failed apply, flush or status.
#[derive(Debug)]
pub enum ApplyError {
    /// A table connroute wants holds another owner's default route;
    /// nothing was changed (exit 2: fix the config or the other tool).
    Foreign(Vec<ForeignRoute>),
    /// The live state could not be read; nothing was changed.
    Read(KernelError),
    /// A change failed; what this run changed was undone. `rollback` lists
    /// what could not be undone (empty: the previous state is intact).
    Failed {
        /// The failure.
        error: KernelError,
        /// Undo steps that failed.
        rollback: Vec<KernelError>,
    },
    /// nft reported a failure but its transaction did commit: the new
    /// state is live (routes and rules kept to match it).
    CommittedDespite(KernelError),
    /// The new state is live, but removing what it no longer needs failed.
    Cleanup(Vec<KernelError>),
    /// flush could not remove everything connroute owns.
    Flush(Vec<KernelError>),
    /// The kernel refused a gateway's route because its next hop is not
    /// reachable (yet); nothing was changed. The caller makes that gateway
    /// inactive and applies again.
    Unreachable {
        /// The gateway.
        gateway: String,
        /// The kernel's refusal.
        why: String,
    },
    /// What had to be recorded before the first change could not be
    /// (the ids file's new allocations); nothing was changed.
    Prepare(String),
    /// The run-state file is not a regular file or cannot be read.
    State(String),
    /// The routing table names file could not be removed.
    RtTables(RtTablesError),
}

impl ApplyError {
    /// The process exit code: 2 for a refused config, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Foreign(_) => 2,
            ApplyError::RtTables(e) => e.exit_code(),
            _ => 1,
        }
    }
}

fn join(errs: &[KernelError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Foreign(routes) => {
                f.write_str("refusing to apply, nothing changed: ")?;
                let what: Vec<String> = routes
                    .iter()
                    .map(|r| {
                        format!(
                            "table {} ({}) already has a default route connroute did not create ({}); \
                             give the gateway another `option table` or remove that route",
                            r.table, r.family, r.text
                        )
                    })
                    .collect();
                f.write_str(&what.join("; "))
            }
            ApplyError::Read(e) => write!(f, "cannot read the current state: {e}"),
            ApplyError::Failed { error, rollback } if rollback.is_empty() => {
                write!(f, "apply failed, previous state kept: {error}")
            }
            ApplyError::Failed { error, rollback } => write!(
                f,
                "apply failed: {error}; rollback incomplete: {}",
                join(rollback)
            ),
            ApplyError::CommittedDespite(e) => write!(
                f,
                "nft reported a failure but the new table is live; routes and rules match it: {e}"
            ),
            ApplyError::Cleanup(errs) => write!(
                f,
                "the new state is live, but removing old entries failed: {}",
                join(errs)
            ),
            ApplyError::Flush(errs) => write!(f, "flush incomplete: {}", join(errs)),
            ApplyError::RtTables(e) => write!(f, "cannot remove {e}"),
            ApplyError::State(e) => write!(f, "run state: {e}"),
            ApplyError::Prepare(e) => write!(f, "refusing to apply, nothing changed: {e}"),
            ApplyError::Unreachable { gateway, why } => write!(f, "gateway {gateway}: {why}"),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<KernelError> for ApplyError {
    fn from(e: KernelError) -> Self {
        ApplyError::Read(e)
    }
}
