//! Stable identity: the marks and routing tables handed to gateways that do
//! not set them, persisted so that no edit ever moves another gateway.
//!
//! Connections are pinned by mark, and marks route through tables; were
//! they allocated by position, inserting a gateway above another would give
//! it the other's mark and re-point every connection already pinned. So an
//! allocation is made once, written to the ids file (default
//! [`DEFAULT_PATH`], one gateway a line) by `apply`, and kept as long as the
//! gateway's name exists; after the gateway is removed its line stays,
//! marked `retired`, so its mark and table are reused only when nothing else
//! is free. Explicit `mark`/`table` options win, but may not take a value
//! recorded for another existing gateway (that is an error naming both).
//! Without a file, allocation is in file order from the lowest free value.

mod alloc;
mod file;

pub use alloc::{AllocError, Assignment, Limits, Request, allocate, durable};
pub use file::{MAX_BYTES, parse, read_regular, remove_temporaries, render, stale_writer, write};

/// Where the ids file lives unless `--ids` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/connroute/ids";

/// One gateway's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Gateway (section) name.
    pub name: String,
    /// Its mark.
    pub mark: u32,
    /// Its routing table id.
    pub table: u32,
    /// True once the gateway is no longer in the config.
    pub retired: bool,
}

/// Every recorded allocation: current gateways in config order, then
/// retired ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    /// The records.
    pub records: Vec<Record>,
}

impl Ids {
    /// The record of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests;
