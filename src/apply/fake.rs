//! An in-memory kernel for the engine's unit tests: routes (any owner),
//! connroute's ip rules, one nft table, the ruleset generation and links,
//! with failures injected per operation. Routes follow the kernel's rules
//! that matter here: NLM_F_REPLACE takes whatever default route the table
//! has (any owner), an exclusive add fails when one is there, deletion of
//! connroute's routes matches protocol 197 exactly.

use super::child::ChildError;
use super::fake_table::{self, FakeTable};
use super::kernel::{ForeignRoute, KResult, Kernel, KernelError, Link, TableState};
use crate::config::Family;
use crate::plan::{IpRule, RTPROT_CONNROUTE, Route};
use std::collections::BTreeMap;
use std::io;

/// One operation that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `Kernel::add_route`.
    AddRoute,
    /// `Kernel::replace_route` (also the rollback of a replaced route).
    ReplaceRoute,
    /// `Kernel::delete_route`.
    DeleteRoute,
    /// `Kernel::add_rule`.
    AddRule,
    /// `Kernel::delete_rule`.
    DeleteRule,
    /// nft refuses the batch; nothing commits.
    Load,
    /// nft is killed unfed (watch asked to stop); nothing commits.
    LoadStopped,
    /// nft hangs past its deadline and is killed; nothing commits.
    LoadTimesOut,
    /// nft exits 0 without committing anything.
    LoadNothing,
    /// nft commits the batch, then reports a failure.
    LoadCommits,
    /// nft refuses the batch, and another commit moves the generation.
    LoadBumps,
    /// nft commits the batch, another commit follows, nft reports a failure.
    LoadCommitsTwice,
    /// Reading the table fails.
    Table,
    /// `Kernel::delete_table`.
    DeleteTable,
}

/// A route and its owner's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRoute {
    /// The route.
    pub route: Route,
    /// Its owner's routing protocol (197: connroute).
    pub protocol: u8,
}

/// The fake kernel.
#[derive(Debug, Default)]
pub struct Fake {
    /// Every route, any owner.
    pub routes: Vec<FakeRoute>,
    /// connroute's ip rules, in the kernel's order: by family and priority,
    /// a new rule after those of its priority.
    pub rules: Vec<IpRule>,
    /// When set, the rule list after every rule added or deleted.
    pub trace: Option<Vec<Vec<IpRule>>>,
    /// connroute's nft table.
    pub table: Option<FakeTable>,
    /// The ruleset generation.
    pub generation: u32,
    /// Devices; absent ones are missing.
    pub links: BTreeMap<String, Link>,
    /// Other owners' ip rules: family and priority.
    pub foreign_rules: Vec<(Family, u32)>,
    /// Injected failures: each is consumed by the first call of its kind.
    pub fail: Vec<Op>,
    /// Calls of an injected kind that succeed before it fails.
    pub fail_after: usize,
    /// nft processes that would have run.
    pub nft_runs: usize,
    /// The last batch nft accepted (committed, or failed after commit).
    pub last_batch: Vec<u8>,
    /// Every batch given to `load`, in order, refused ones too.
    pub batches: Vec<Vec<u8>>,
    /// connroute-tagged non-default routes, as `ip route` prints them.
    pub strays: Vec<String>,
    /// Next hops not on a connected network: adding a route via one fails
    /// with ENETUNREACH.
    pub unreachable: Vec<std::net::IpAddr>,
    /// An nft started ahead ([`Kernel::prepare_load`]) and not yet fed or
    /// discarded: the real kernel's waiting process.
    pub prepared: bool,
    /// Routing calls and load hints in order: "routes", "rules",
    /// "route+", "route~", "route-", "rule+", "rule-", "prepare", "load"
    /// ("load*" when fed to a prepared nft), "discard" (one was dropped).
    pub calls: Vec<&'static str>,
}

/// nft refusing with `message` (exit 1), as the runner reports it.
fn nft_refused(message: &str) -> KernelError {
    KernelError::Nft(ChildError::Refused {
        program: "nft".into(),
        what: "-j -f -".into(),
        code: 1,
        message: message.into(),
    })
}

fn errno(what: &str, e: i32) -> KernelError {
    KernelError::netlink(what, io::Error::from_raw_os_error(e))
}

impl Fake {
    fn injected(&mut self, op: Op) -> bool {
        match self.fail.iter().position(|o| *o == op) {
            Some(_) if self.fail_after > 0 => {
                self.fail_after -= 1;
                false
            }
            Some(i) => {
                self.fail.remove(i);
                true
            }
            None => false,
        }
    }

    fn gate(&mut self, op: Op) -> KResult<()> {
        if self.injected(op) {
            Err(errno(&format!("injected {op:?}"), libc::EIO))
        } else {
            Ok(())
        }
    }

    fn traced(&mut self) {
        if let Some(t) = &mut self.trace {
            t.push(self.rules.clone());
        }
    }

    /// What a test compares before and after: routes, rules, table.
    pub fn snapshot(&self) -> (Vec<FakeRoute>, Vec<IpRule>, Option<FakeTable>) {
        (self.routes.clone(), self.rules.clone(), self.table.clone())
    }

    /// The live table's fingerprint.
    pub fn fingerprint(&self) -> Option<String> {
        self.table.as_ref().and_then(FakeTable::fingerprint)
    }
}

impl Kernel for Fake {
    fn routes(&mut self) -> KResult<Vec<Route>> {
        self.calls.push("routes");
        Ok(self
            .routes
            .iter()
            .filter(|r| r.protocol == RTPROT_CONNROUTE)
            .map(|r| r.route.clone())
            .collect())
    }

    fn foreign_defaults(
        &mut self,
        tables: &[(crate::config::Family, u32)],
    ) -> KResult<Vec<ForeignRoute>> {
        Ok(self
            .routes
            .iter()
            .filter(|r| r.protocol != RTPROT_CONNROUTE)
            .filter(|r| tables.contains(&(r.route.family, r.route.table)))
            .map(|r| ForeignRoute {
                family: r.route.family,
                table: r.route.table,
                text: format!("{} (proto {})", r.route, r.protocol),
            })
            .collect())
    }

    fn rules(&mut self) -> KResult<Vec<IpRule>> {
        self.calls.push("rules");
        Ok(self.rules.clone())
    }

    fn foreign_rules(&mut self) -> KResult<Vec<(Family, u32)>> {
        Ok(self.foreign_rules.clone())
    }

    fn dumped_rules(&mut self) -> KResult<Vec<IpRule>> {
        Ok(self.rules.clone())
    }

    fn strays(&mut self) -> KResult<Vec<String>> {
        Ok(self.strays.clone())
    }

    fn delete_stray(&mut self, text: &str) -> KResult<()> {
        self.gate(Op::DeleteRoute)?;
        let i = self.strays.iter().position(|s| s == text);
        let i = i.ok_or_else(|| errno("no such route", libc::ESRCH))?;
        self.strays.remove(i);
        Ok(())
    }

    fn add_route(&mut self, r: &Route) -> KResult<()> {
        self.calls.push("route+");
        self.gate(Op::AddRoute)?;
        if r.via.is_some_and(|v| self.unreachable.contains(&v)) {
            return Err(errno("add route", libc::ENETUNREACH));
        }
        if self
            .routes
            .iter()
            .any(|k| k.route.family == r.family && k.route.table == r.table)
        {
            return Err(errno("add route", libc::EEXIST));
        }
        self.routes.push(FakeRoute {
            route: r.clone(),
            protocol: RTPROT_CONNROUTE,
        });
        Ok(())
    }

    fn replace_route(&mut self, r: &Route) -> KResult<()> {
        self.calls.push("route~");
        self.gate(Op::ReplaceRoute)?;
        let new = FakeRoute {
            route: r.clone(),
            protocol: RTPROT_CONNROUTE,
        };
        match self
            .routes
            .iter_mut()
            .find(|k| k.route.family == r.family && k.route.table == r.table)
        {
            Some(k) => *k = new,
            None => self.routes.push(new),
        }
        Ok(())
    }

    fn delete_route(&mut self, r: &Route) -> KResult<()> {
        self.calls.push("route-");
        self.gate(Op::DeleteRoute)?;
        let i = self
            .routes
            .iter()
            .position(|k| k.protocol == RTPROT_CONNROUTE && k.route == *r)
            .ok_or_else(|| errno("delete route", libc::ESRCH))?;
        self.routes.remove(i);
        Ok(())
    }

    fn add_rule(&mut self, r: &IpRule) -> KResult<()> {
        self.calls.push("rule+");
        self.gate(Op::AddRule)?;
        if self.rules.contains(r) {
            return Err(errno("add rule", libc::EEXIST));
        }
        let at = (self.rules).partition_point(|k| (k.family, k.priority) <= (r.family, r.priority));
        self.rules.insert(at, r.clone());
        self.traced();
        Ok(())
    }

    fn delete_rule(&mut self, r: &IpRule) -> KResult<()> {
        self.calls.push("rule-");
        self.gate(Op::DeleteRule)?;
        let i = self
            .rules
            .iter()
            .position(|k| k == r)
            .ok_or_else(|| errno("delete rule", libc::ENOENT))?;
        self.rules.remove(i);
        self.traced();
        Ok(())
    }

    fn table(&mut self) -> KResult<Option<TableState>> {
        self.nft_runs += 1;
        if self.injected(Op::Table) {
            return Err(nft_refused("injected: nft list failed"));
        }
        Ok(self.table.as_ref().map(|t| t.state(self.generation)))
    }

    fn table_exists(&mut self) -> KResult<bool> {
        Ok(self.table.is_some())
    }

    fn prepare_load(&mut self) {
        if !self.prepared {
            self.prepared = true;
            self.calls.push("prepare");
        }
    }

    fn discard_load(&mut self) {
        if std::mem::take(&mut self.prepared) {
            self.calls.push("discard");
        }
    }

    fn load(&mut self, batch: &[&[u8]]) -> KResult<()> {
        let batch = &batch.concat()[..];
        let prepared = std::mem::take(&mut self.prepared);
        self.calls.push(if prepared { "load*" } else { "load" });
        self.nft_runs += 1;
        self.batches.push(batch.to_vec());
        if self.injected(Op::LoadNothing) {
            return Ok(());
        }
        if self.injected(Op::LoadStopped) {
            return Err(KernelError::Nft(ChildError::Stopped {
                program: "nft".into(),
                what: "loading the ruleset".into(),
            }));
        }
        if self.injected(Op::LoadTimesOut) {
            return Err(KernelError::Nft(ChildError::TimedOut {
                program: "nft".into(),
                what: "loading the ruleset".into(),
                after: std::time::Duration::from_secs(2),
                input: batch.len(),
            }));
        }
        if self.injected(Op::Load) {
            return Err(nft_refused("injected: nft refused the batch"));
        }
        if self.injected(Op::LoadBumps) {
            self.generation += 1;
            return Err(nft_refused("injected: nft refused, another commit"));
        }
        self.last_batch = batch.to_vec();
        self.table = fake_table::run(&self.table, batch).map_err(|e| nft_refused(&e))?;
        self.generation += 1;
        if self.injected(Op::LoadCommitsTwice) {
            self.generation += 1;
            return Err(nft_refused("injected: nft failed after commit"));
        }
        if self.injected(Op::LoadCommits) {
            return Err(nft_refused("injected: nft failed after commit"));
        }
        Ok(())
    }

    fn check(&mut self, batch: &[u8]) -> KResult<()> {
        self.nft_runs += 1;
        fake_table::run(&self.table, batch).map_err(|e| nft_refused(&e))?;
        Ok(())
    }

    fn delete_table(&mut self) -> KResult<()> {
        self.nft_runs += 1;
        self.gate(Op::DeleteTable)?;
        self.table = None;
        self.generation += 1;
        Ok(())
    }

    fn generation(&mut self) -> KResult<u32> {
        Ok(self.generation)
    }

    fn reaches(&mut self, via: std::net::IpAddr, _device: Option<&str>) -> bool {
        !self.unreachable.contains(&via)
    }

    fn link(&mut self, device: &str) -> Link {
        self.links.get(device).copied().unwrap_or(Link::Missing)
    }

    fn pinned(&mut self, mark: u32, _mask: u32) -> KResult<u64> {
        Ok(u64::from(mark >> 24))
    }

    fn counters(&mut self) -> KResult<Vec<(String, u64, u64)>> {
        if self.table.is_none() {
            return Ok(Vec::new());
        }
        self.nft_runs += 1;
        Ok(vec![
            (format!("rule_{}", "http_via_router2"), 3, 180),
            (crate::plan::gateway_counter_name("router2"), 40, 52_000),
        ])
    }
}
