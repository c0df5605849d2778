//! The validated configuration model: what the planner consumes.

use super::Diagnostic;
use super::list::{List, Rare};
use super::values::{Family, PortRange, Prefix, Proto};
use crate::ids::Ids;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Log verbosity from `globals.log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also one line per apply.
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// Reads `error|warn|warning|info|debug`.
    pub fn parse(v: &str) -> Result<LogLevel, String> {
        match v {
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(format!("'{v}' is not one of error, warn, info, debug")),
        }
    }

    /// As a `log` filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// `config globals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// `0` makes `apply` remove everything connroute installed.
    pub enabled: bool,
    /// The mark bits connroute owns, in both ct mark and meta mark.
    pub mark_mask: u32,
    /// First ip rule priority of connroute's band.
    pub rule_priority: u32,
    /// First routing table id handed out.
    pub table_base: u32,
    /// Log verbosity.
    pub log_level: LogLevel,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            enabled: true,
            mark_mask: 0xff00_0000,
            rule_priority: 5000,
            table_base: 5000,
            log_level: LogLevel::Info,
        }
    }
}

/// `config gateway 'NAME'`: where pinned connections leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Section name; names chains, counters and the routing table.
    pub name: String,
    /// Disabled gateways keep their mark and table but install nothing.
    pub enabled: bool,
    /// IPv4 next hop.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 next hop.
    pub gateway6: Option<Ipv6Addr>,
    /// Device of the default route.
    pub device: Option<String>,
    /// OpenWrt logical interfaces that supply device and next hops.
    pub interfaces: Vec<String>,
    /// Mark inside `mark_mask` (given or allocated).
    pub mark: u32,
    /// Routing table id (given or allocated).
    pub table: u32,
    /// Position among all gateways: picks the ip rule priorities.
    pub index: usize,
    /// Line of the section.
    pub line: usize,
}

/// A list criterion split into values that must match and values that must not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Criterion<T> {
    /// Any of these must match (empty: no constraint).
    pub any: List<T>,
    /// None of these may match (rarely any).
    pub none: Rare<T>,
}

impl<T> Criterion<T> {
    /// True when the criterion constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.none.is_empty()
    }
}

/// `config rule`: which new connections are pinned to which gateway.
/// Lists are boxed slices, not `Vec`s, and those most rules leave empty
/// one word ([`Rare`]): 10,000 rules are kept through the whole plan, at
/// the peak of every command, and every spare word counts (see
/// tests/config_memory.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Section name, or libuci's generated id for an anonymous section.
    pub name: String,
    /// Index of the target gateway in [`Config::gateways`].
    pub gateway: usize,
    /// Families the rule may match (from `family`, addresses and icmp).
    pub families: &'static [Family],
    /// Source MACs.
    pub src_mac: Rare<String>,
    /// Input devices.
    pub in_device: Rare<String>,
    /// Input OpenWrt interfaces, resolved to devices at plan time.
    pub in_interface: Rare<String>,
    /// Protocols (empty: any).
    pub proto: List<Proto>,
    /// Source addresses.
    pub src_ip: Criterion<Prefix>,
    /// Destination addresses.
    pub dest_ip: Criterion<Prefix>,
    /// Source ports.
    pub src_port: Criterion<PortRange>,
    /// Destination ports.
    pub dest_port: Criterion<PortRange>,
    /// Log the first packet of each pinned connection.
    pub log: bool,
    /// Line of the section.
    pub line: usize,
}

impl Rule {
    /// True when the rule looks at how a packet arrived, so it can never
    /// match locally generated traffic.
    pub fn needs_input(&self) -> bool {
        !self.src_mac.is_empty() || !self.in_device.is_empty() || !self.in_interface.is_empty()
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Global settings.
    pub globals: Globals,
    /// Every gateway, in file order (disabled ones included).
    pub gateways: Vec<Gateway>,
    /// Enabled rules, in file order.
    pub rules: Vec<Rule>,
    /// Warnings met while loading.
    pub warnings: Vec<Diagnostic>,
    /// The mark and table allocations to persist in the ids file.
    pub ids: Ids,
}
