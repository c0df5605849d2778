//! The seam between the engine and the kernel: everything apply, flush and
//! status read or change goes through [`Kernel`]. [`System`] is the real
//! backend (rtnetlink, nfnetlink and the `nft` binary); unit tests use the
//! in-memory fake in `fake.rs`.

use super::child::ChildError;
use super::netlink::{self, Netlink};
use super::nfgen;
use super::nfnl::Nfnl;
use super::nft::{self, Nft};
use super::rtnl;
use crate::config::Family;
use crate::plan::{self, IpRule, Route};
use serde_json::Value;
use std::fmt;
use std::io;

/// A failed kernel read or change, with what was being done.
#[derive(Debug)]
pub enum KernelError {
    /// A netlink request was refused or could not be made.
    Netlink {
        /// What was being done (e.g. "cannot add `ip rule …`").
        what: String,
        /// The kernel's errno or the socket error.
        err: io::Error,
    },
    /// nft could not run, refused, was killed or timed out.
    Nft(ChildError),
}

impl KernelError {
    /// A netlink error with context.
    pub fn netlink(what: impl Into<String>, err: io::Error) -> KernelError {
        KernelError::Netlink {
            what: what.into(),
            err,
        }
    }

    /// True when the object to delete was already gone.
    pub fn is_missing(&self) -> bool {
        matches!(self, KernelError::Netlink { err, .. }
            if matches!(err.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)))
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Netlink { what, err } if err.raw_os_error() == Some(libc::EPERM) => {
                write!(f, "{what}: {err}; this needs root (CAP_NET_ADMIN)")
            }
            KernelError::Netlink { what, err } => write!(f, "{what}: {err}"),
            KernelError::Nft(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for KernelError {}

/// Shorthand for kernel results.
pub type KResult<T> = Result<T, KernelError>;

/// A default route connroute does not own, in a table it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRoute {
    /// Its family.
    pub family: Family,
    /// Its table.
    pub table: u32,
    /// The route as `ip route` prints it.
    pub text: String,
}

/// What the kernel holds of `table inet connroute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    /// The fingerprint stamped in its first rule, if readable.
    pub fingerprint: Option<String>,
    /// Hash of the whole table as the kernel dumps it, handles, use counts
    /// and counter values left out.
    pub digest: u64,
    /// Every rule's chain and handle, chain by chain in rule order (empty
    /// when a rule could not be decoded: nothing is then edited by handle).
    pub rules: Vec<(String, u64)>,
    /// The ruleset generation this is the table of.
    pub generation: u32,
}

/// Whether a device exists and is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No such device.
    Missing,
    /// Exists, administratively down.
    Down,
    /// Exists and is up.
    Up,
}

/// Everything the engine reads from or changes in the kernel. Routes and
/// rules are connroute's own (protocol 197) unless a method says otherwise.
pub trait Kernel {
    /// connroute's default routes, both families.
    fn routes(&mut self) -> KResult<Vec<Route>>;
    /// Default routes of other owners in `tables`.
    fn foreign_defaults(&mut self, tables: &[(Family, u32)]) -> KResult<Vec<ForeignRoute>>;
    /// connroute's ip rules, both families.
    fn rules(&mut self) -> KResult<Vec<IpRule>>;
    /// The family and priority of every ip rule others own (not 197), as
    /// the last [`Kernel::rules`] dump saw them (one dump if none yet).
    fn foreign_rules(&mut self) -> KResult<Vec<(Family, u32)>>;
    /// connroute's ip rules as the last [`Kernel::rules`] dump saw them
    /// (one dump if none yet).
    fn dumped_rules(&mut self) -> KResult<Vec<IpRule>>;
    /// Adds a route; fails if the table already has that default route.
    fn add_route(&mut self, r: &Route) -> KResult<()>;
    /// Replaces connroute's own default route of `r.table` with `r`.
    fn replace_route(&mut self, r: &Route) -> KResult<()>;
    /// connroute's routes (protocol 197) that are not default routes, as
    /// `ip route` prints them: strays connroute never makes.
    fn strays(&mut self) -> KResult<Vec<String>>;
    /// Deletes a stray listed by the last [`Kernel::strays`].
    fn delete_stray(&mut self, text: &str) -> KResult<()>;
    /// Deletes one of connroute's routes (exact key, protocol 197).
    fn delete_route(&mut self, r: &Route) -> KResult<()>;
    /// Adds an ip rule.
    fn add_rule(&mut self, r: &IpRule) -> KResult<()>;
    /// Deletes one of connroute's ip rules.
    fn delete_rule(&mut self, r: &IpRule) -> KResult<()>;
    /// connroute's nft table; `None` when absent.
    fn table(&mut self) -> KResult<Option<TableState>>;
    /// True when connroute's nft table exists (cheap: no nft process).
    fn table_exists(&mut self) -> KResult<bool>;
    /// A load follows in this run: the real kernel starts `nft -j -f -`
    /// now, so nft's own start overlaps the work before the load. nft reads
    /// all its input before doing anything: until [`Kernel::load`] feeds it,
    /// nothing commits. A failure to start shows at the load.
    fn prepare_load(&mut self);
    /// Drops a prepared load that [`Kernel::load`] did not use (killing the
    /// waiting nft, which commits nothing); nothing when there is none.
    fn discard_load(&mut self);
    /// Loads a JSON batch, given as pieces written in order, in one
    /// transaction (into the prepared nft, if any).
    fn load(&mut self, batch: &[&[u8]]) -> KResult<()>;
    /// Checks a JSON batch without loading it.
    fn check(&mut self, batch: &[u8]) -> KResult<()>;
    /// Deletes connroute's nft table.
    fn delete_table(&mut self) -> KResult<()>;
    /// The nf_tables ruleset generation: changes with every commit.
    fn generation(&mut self) -> KResult<u32>;
    /// Whether a device exists and is up.
    fn link(&mut self, device: &str) -> Link;
    /// Whether next hop `via` is on a connected network (of `device`) and
    /// one the kernel takes (for IPv6 not the host's own address, nor
    /// through a loopback device); true when it cannot be told.
    fn reaches(&mut self, via: std::net::IpAddr, device: Option<&str>) -> bool;
    /// Named counters of connroute's table: (name, packets, bytes).
    fn counters(&mut self) -> KResult<Vec<(String, u64, u64)>>;
    /// Tracked connections whose ct mark is `mark` under `mask`.
    fn pinned(&mut self, mark: u32, mask: u32) -> KResult<u64>;
}

/// The real kernel: rtnetlink for routes and rules, nfnetlink to read the
/// ruleset generation and connroute's table, the `nft` binary to load,
/// check and delete it and to read counters.
pub struct System {
    nl: Netlink,
    /// The nfnetlink connection, opened at its first use.
    nf: Option<Nfnl>,
    nft: Nft,
    /// `nft -j -f -` started ahead of its batch ([`Kernel::prepare_load`]).
    prepared: Option<nft::Load>,
    /// The last dumps, to delete entries by their kernel bytes.
    routes: Vec<netlink::KernelRoute>,
    rules: Vec<netlink::KernelRule>,
    /// Others' ip rules (family, priority) seen by the last rule dump.
    foreign: Option<Vec<(Family, u32)>>,
    strays: Vec<(String, Vec<u8>)>,
    /// Every route message of the last [`Kernel::routes`] dump, read again
    /// by `foreign_defaults` and `strays` (one dump per decision instead of
    /// three: its cost grows with the kernel's routing tables) until this
    /// process changes a route.
    snapshot: Option<Vec<Vec<u8>>>,
}

impl System {
    /// Opens the netlink socket; nft runs as `nft`.
    pub fn open(nft: Nft) -> KResult<System> {
        Ok(System {
            nl: Netlink::open().map_err(|e| KernelError::netlink("cannot open rtnetlink", e))?,
            nf: None,
            nft,
            prepared: None,
            routes: Vec::new(),
            rules: Vec::new(),
            foreign: None,
            strays: Vec::new(),
            snapshot: None,
        })
    }

    /// The nfnetlink connection (opened now if not yet).
    fn nf(&mut self) -> KResult<&mut Nfnl> {
        if self.nf.is_none() {
            let nf = Nfnl::open().map_err(|e| KernelError::netlink("cannot open nfnetlink", e))?;
            self.nf = Some(nf);
        }
        Ok(self.nf.as_mut().expect("opened above"))
    }

    /// Every route message, from the snapshot when there is one.
    fn all_routes(&mut self) -> KResult<Vec<Vec<u8>>> {
        match &self.snapshot {
            Some(all) => Ok(all.clone()),
            None => self
                .nl
                .dump_all_routes()
                .map_err(|e| KernelError::netlink("cannot list routes", e)),
        }
    }

    fn list(&self, what: &[&str]) -> KResult<Value> {
        let mut args = vec!["list"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["inet", plan::TABLE]);
        self.nft.list(&args).map_err(KernelError::Nft)
    }
}

/// FNV-1a, 64 bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The fingerprint stamped in a rule comment of a raw rule body.
pub(super) fn fingerprint(b: &[u8]) -> Option<String> {
    const TAG: &[u8] = b"connroute restore fp=";
    let at = b.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let fp = std::str::from_utf8(b.get(at..at + 16)?).ok()?;
    fp.bytes()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| fp.to_string())
}

fn counters_of(v: &Value) -> Vec<(String, u64, u64)> {
    let Some(a) = v.get("nftables").and_then(Value::as_array) else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|o| {
            let c = o.get("counter")?;
            Some((
                c.get("name")?.as_str()?.to_string(),
                c.get("packets")?.as_u64()?,
                c.get("bytes")?.as_u64()?,
            ))
        })
        .collect()
}

impl Kernel for System {
    fn routes(&mut self) -> KResult<Vec<Route>> {
        self.snapshot = None;
        let all = self.all_routes()?;
        self.routes = netlink::ours(&all);
        self.snapshot = Some(all);
        Ok(self.routes.iter().map(|k| k.route.clone()).collect())
    }

    fn foreign_defaults(&mut self, tables: &[(Family, u32)]) -> KResult<Vec<ForeignRoute>> {
        let all = self.all_routes()?;
        Ok(all
            .iter()
            .filter_map(|raw| rtnl::decode_default(raw))
            .filter(|d| !d.ours())
            .filter(|d| tables.contains(&(d.route.family, d.route.table)))
            .map(|d| ForeignRoute {
                family: d.route.family,
                table: d.route.table,
                text: rtnl::ip_route_text(&d, &|i| {
                    netlink::ifname(i).unwrap_or_else(|| format!("if{i}"))
                }),
            })
            .collect())
    }

    fn strays(&mut self) -> KResult<Vec<String>> {
        let all = self.all_routes()?;
        self.strays = all
            .into_iter()
            .filter_map(|raw| {
                let (mut text, oif) = rtnl::decode_stray(&raw)?;
                if let Some(i) = oif {
                    let name = netlink::ifname(i).unwrap_or_else(|| format!("if{i}"));
                    text = text.replacen(" table ", &format!(" dev {name} table "), 1);
                }
                Some((text, raw))
            })
            .collect();
        Ok(self.strays.iter().map(|s| s.0.clone()).collect())
    }

    fn delete_stray(&mut self, text: &str) -> KResult<()> {
        let raw = match self.strays.iter().find(|s| s.0 == text) {
            Some(s) => s.1.clone(),
            None => {
                return Err(KernelError::netlink(
                    text,
                    io::Error::from_raw_os_error(libc::ENOENT),
                ));
            }
        };
        self.snapshot = None;
        self.nl
            .delete_raw_route(&raw)
            .map_err(|e| KernelError::netlink(format!("cannot remove `{text}`"), e))
    }

    fn rules(&mut self) -> KResult<Vec<IpRule>> {
        let (ours, foreign) = self
            .nl
            .rules()
            .map_err(|e| KernelError::netlink("cannot list ip rules", e))?;
        self.rules = ours;
        self.foreign = Some(foreign);
        Ok(self.rules.iter().map(|k| k.rule.clone()).collect())
    }

    fn foreign_rules(&mut self) -> KResult<Vec<(Family, u32)>> {
        // The rule dump this run already made (connroute changes only its
        // own rules), or one now.
        if self.foreign.is_none() {
            self.rules()?;
        }
        Ok(self.foreign.clone().unwrap_or_default())
    }

    fn dumped_rules(&mut self) -> KResult<Vec<IpRule>> {
        if self.foreign.is_none() {
            return self.rules();
        }
        Ok(self.rules.iter().map(|k| k.rule.clone()).collect())
    }

    fn add_route(&mut self, r: &Route) -> KResult<()> {
        self.snapshot = None;
        self.nl
            .add_route(r)
            .map_err(|e| KernelError::netlink(format!("cannot add `{r}`"), e))
    }

    fn replace_route(&mut self, r: &Route) -> KResult<()> {
        self.snapshot = None;
        self.nl
            .replace_route(r)
            .map_err(|e| KernelError::netlink(format!("cannot install `{r}`"), e))
    }

    fn delete_route(&mut self, r: &Route) -> KResult<()> {
        self.snapshot = None;
        let res = match self.routes.iter().find(|k| k.route == *r) {
            Some(k) => self.nl.delete_route(k),
            None => self.nl.delete_planned_route(r),
        };
        res.map_err(|e| KernelError::netlink(format!("cannot remove `{r}`"), e))
    }

    fn add_rule(&mut self, r: &IpRule) -> KResult<()> {
        self.nl
            .add_rule(r)
            .map_err(|e| KernelError::netlink(format!("cannot add `{r}`"), e))
    }

    fn delete_rule(&mut self, r: &IpRule) -> KResult<()> {
        let res = match self.rules.iter().find(|k| k.rule == *r) {
            Some(k) => self.nl.delete_kernel_rule(k),
            None => self.nl.delete_rule(r),
        };
        res.map_err(|e| KernelError::netlink(format!("cannot remove `{r}`"), e))
    }

    fn table(&mut self) -> KResult<Option<TableState>> {
        // The dump's own table request tells whether it exists.
        let Some((d, generation)) = self
            .nf()?
            .table(plan::TABLE)
            .map_err(|e| KernelError::netlink("cannot read table inet connroute", e))?
        else {
            return Ok(None);
        };
        Ok(Some(TableState {
            fingerprint: d.fingerprint,
            digest: d.digest,
            rules: d.rules,
            generation,
        }))
    }

    fn table_exists(&mut self) -> KResult<bool> {
        self.nf()?
            .table_exists(plan::TABLE)
            .map_err(|e| KernelError::netlink("cannot read the nftables ruleset", e))
    }

    fn prepare_load(&mut self) {
        if self.prepared.is_none() {
            // Not started: the load starts it again and reports why.
            self.prepared = self.nft.start_load().ok();
            log::debug!("nft started ahead of the load: {}", self.prepared.is_some());
        }
    }

    fn discard_load(&mut self) {
        // Dropped unfed: killed and reaped before it read its input.
        self.prepared = None;
    }

    fn load(&mut self, batch: &[&[u8]]) -> KResult<()> {
        // One that died while it waited (killed by someone) is reaped
        // before a fresh one starts.
        let r = match self.prepared.take() {
            Some(l) if !l.exited() => l.feed(&self.nft, batch),
            stale => {
                drop(stale);
                self.nft.load(batch)
            }
        };
        r.map_err(KernelError::Nft)
    }

    fn check(&mut self, batch: &[u8]) -> KResult<()> {
        self.nft.check(batch).map_err(KernelError::Nft)
    }

    fn delete_table(&mut self) -> KResult<()> {
        self.nft
            .run(&["delete", "table", "inet", plan::TABLE], b"")
            .map(drop)
            .map_err(KernelError::Nft)
    }

    fn generation(&mut self) -> KResult<u32> {
        self.nf()?
            .generation()
            .map_err(|e| KernelError::netlink("cannot read the nftables generation", e))
    }

    fn link(&mut self, device: &str) -> Link {
        netlink::link_state(device)
    }

    fn reaches(&mut self, via: std::net::IpAddr, device: Option<&str>) -> bool {
        // An IPv6 link-local next hop is on its device's link by definition,
        // unless that device is loopback or the address the host's own:
        // the kernel refuses both (EINVAL).
        let link_local =
            matches!(via, std::net::IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
        if link_local {
            return !device.is_some_and(netlink::is_loopback) && !self.nl.is_local(via, device);
        }
        self.nl.reaches(via, device).unwrap_or(true)
    }

    fn pinned(&mut self, mark: u32, mask: u32) -> KResult<u64> {
        nfgen::pinned(self.nf()?, mark, mask)
            .map_err(|e| KernelError::netlink("cannot count connections", e))
    }

    fn counters(&mut self) -> KResult<Vec<(String, u64, u64)>> {
        if !self.table_exists()? {
            return Ok(Vec::new());
        }
        self.list(&["counters", "table"]).map(|v| counters_of(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_found_in_a_rule_comment_only_when_whole() {
        let mut rule = b"\x01\x00\x00\x00....connroute restore fp=0ec28984c47e2c65\x00".to_vec();
        assert_eq!(fingerprint(b"other"), None);
        assert_eq!(fingerprint(&rule).as_deref(), Some("0ec28984c47e2c65"));
        rule.truncate(rule.len() - 5);
        assert_eq!(fingerprint(&rule), None);
        assert_eq!(fingerprint(b"connroute restore fp=zzzzzzzzzzzzzzzz"), None);
    }
}
