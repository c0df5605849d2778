//! The validated model of `/etc/config/connroute`.
//!
//! [`Config::from_document`] checks every section and option and reports
//! problems as [`Diagnostic`]s naming file, line, section and option. Unknown
//! section types and options are warnings (as in firewall4); everything else
//! is an error, and any error means nothing is applied.

pub mod values;

use crate::uci::{self, Document, Item, Section};
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
pub use values::{Family, PortRange, Prefix, Proto};

/// Severity of a [`Diagnostic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ignored input; the config still loads.
    Warning,
    /// The config is refused.
    Error,
}

/// One problem found in the config, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as given on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The section, as `type 'name'` (empty for file-level errors).
    pub section: String,
    /// The option, when one is to blame.
    pub option: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error => "",
        };
        write!(f, "{}:{}: {kind}", self.file, self.line)?;
        if !self.section.is_empty() {
            write!(f, "{}: ", self.section)?;
        }
        if let Some(o) = &self.option {
            write!(f, "option '{o}': ")?;
        }
        f.write_str(&self.message)
    }
}

/// A config that could not be loaded: every error found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

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
    pub any: Vec<T>,
    /// None of these may match.
    pub none: Vec<T>,
}

impl<T> Criterion<T> {
    /// True when the criterion constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.none.is_empty()
    }
}

/// `config rule`: which new connections are pinned to which gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Section name, or libuci's generated id for an anonymous section.
    pub name: String,
    /// `type 'name'` for messages and comments.
    pub label: String,
    /// Index of the target gateway in [`Config::gateways`].
    pub gateway: usize,
    /// Families the rule may match (from `family`, addresses and icmp).
    pub families: Vec<Family>,
    /// Source MACs.
    pub src_mac: Vec<String>,
    /// Input devices.
    pub in_device: Vec<String>,
    /// Input OpenWrt interfaces, resolved to devices at plan time.
    pub in_interface: Vec<String>,
    /// Protocols (empty: any).
    pub proto: Vec<Proto>,
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
}

const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];
const RESERVED_NAMES: [&str; 5] = ["main", "local", "default", "unspec", "all"];
/// Longest section name connroute accepts (it names nft objects and tables).
pub const MAX_NAME: usize = 64;

struct Loader<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl<'a> Loader<'a> {
    fn push(
        &mut self,
        severity: Severity,
        line: usize,
        section: &Section,
        option: Option<&str>,
        message: String,
    ) {
        self.diags.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            line,
            section: section.label(),
            option: option.map(str::to_string),
            message,
        });
    }

    fn error(&mut self, line: usize, section: &Section, option: Option<&str>, message: String) {
        self.push(Severity::Error, line, section, option, message);
    }

    /// Warns about options not in `known`.
    fn check_known(&mut self, s: &Section, known: &[&str]) {
        for o in &s.options {
            if !known.contains(&o.name.as_str()) {
                self.push(
                    Severity::Warning,
                    o.line,
                    s,
                    Some(&o.name),
                    "unknown option, ignored".into(),
                );
            }
        }
    }

    /// The option's single value, parsed; a list where one value is expected is an error.
    fn single<T>(
        &mut self,
        s: &Section,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let o = s.option(name)?;
        let item = match &o.value {
            uci::Value::Single(item) => item,
            uci::Value::List(items) => {
                let line = items.first().map_or(o.line, |i| i.line);
                self.error(
                    line,
                    s,
                    Some(name),
                    "must be a single option, not a list".into(),
                );
                return None;
            }
        };
        let text = match ascii(item) {
            Ok(t) => t,
            Err(m) => {
                self.error(item.line, s, Some(name), m);
                return None;
            }
        };
        match parse(text.trim()) {
            Ok(v) => Some(v),
            Err(m) => {
                self.error(item.line, s, Some(name), m);
                None
            }
        }
    }

    /// Every whitespace-separated word of an option or list, parsed, with its line.
    fn words<T>(
        &mut self,
        s: &Section,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<(T, usize)> {
        let Some(o) = s.option(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in o.value.items() {
            let text = match ascii(item) {
                Ok(t) => t,
                Err(m) => {
                    self.error(item.line, s, Some(name), m);
                    continue;
                }
            };
            if text.trim().is_empty() {
                self.error(item.line, s, Some(name), "empty value".into());
            }
            for word in text.split_ascii_whitespace() {
                match parse(word) {
                    Ok(v) => out.push((v, item.line)),
                    Err(m) => self.error(item.line, s, Some(name), m),
                }
            }
        }
        out
    }

    /// Like [`Loader::words`], with a leading `!` sorting values into "none of".
    fn criterion<T>(
        &mut self,
        s: &Section,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Criterion<T> {
        let mut c = Criterion {
            any: Vec::new(),
            none: Vec::new(),
        };
        let tagged = self.words(s, name, |w| match w.strip_prefix('!') {
            Some(rest) => parse(rest).map(|v| (true, v)),
            None => parse(w).map(|v| (false, v)),
        });
        for ((negated, v), _) in tagged {
            if negated {
                c.none.push(v)
            } else {
                c.any.push(v)
            }
        }
        c
    }

    fn enabled(&mut self, s: &Section) -> bool {
        self.single(s, "enabled", values::boolean).unwrap_or(true)
    }
}

fn ascii(item: &Item) -> Result<&str, String> {
    std::str::from_utf8(&item.bytes)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| format!("'{}' contains non-ASCII bytes", item.text()))
}

fn option_line(s: &Section, name: &str) -> usize {
    s.option(name).map_or(s.line, |o| o.line)
}

impl Config {
    /// Parses and validates a config file's bytes. `file` is used in messages.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Config, ConfigError> {
        let package = std::path::Path::new(file)
            .file_name()
            .map_or("connroute".into(), |n| n.to_string_lossy().into_owned());
        let doc = uci::parse(bytes, &package).map_err(|e| ConfigError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_string(),
                line: e.line,
                section: String::new(),
                option: None,
                message: e.to_string(),
            }],
        })?;
        Config::from_document(&doc, file)
    }

    /// Validates a parsed document.
    pub fn from_document(doc: &Document, file: &str) -> Result<Config, ConfigError> {
        let mut l = Loader {
            file,
            diags: Vec::new(),
        };
        let mut globals = Globals::default();
        let mut seen_globals = false;
        for s in &doc.sections {
            if !["globals", "gateway", "rule"].contains(&s.stype.as_str()) {
                l.push(
                    Severity::Warning,
                    s.line,
                    s,
                    None,
                    format!("unknown section type '{}', ignored", s.stype),
                );
            }
            if s.stype != "rule" && !s.anonymous && s.name.len() > MAX_NAME {
                l.error(
                    s.line,
                    s,
                    None,
                    format!("section name longer than {MAX_NAME} bytes"),
                );
            }
        }
        for s in doc.of_type("globals") {
            if seen_globals {
                l.error(
                    s.line,
                    s,
                    None,
                    "only one globals section is allowed".into(),
                );
                continue;
            }
            seen_globals = true;
            globals = load_globals(&mut l, s);
        }
        let gateways = load_gateways(&mut l, doc, &globals);
        let rules = load_rules(&mut l, doc, &gateways);
        l.diags.sort_by_key(|d| d.line);
        let (errors, warnings): (Vec<_>, Vec<_>) = l
            .diags
            .into_iter()
            .partition(|d| d.severity == Severity::Error);
        if errors.is_empty() {
            Ok(Config {
                globals,
                gateways,
                rules,
                warnings,
            })
        } else {
            Err(ConfigError {
                diagnostics: errors,
            })
        }
    }

    /// Enabled gateways.
    pub fn enabled_gateways(&self) -> impl Iterator<Item = &Gateway> {
        self.gateways.iter().filter(|g| g.enabled)
    }
}

fn load_globals(l: &mut Loader, s: &Section) -> Globals {
    l.check_known(
        s,
        &[
            "enabled",
            "mark_mask",
            "rule_priority",
            "table_base",
            "log_level",
        ],
    );
    let d = Globals::default();
    let mark_mask = l
        .single(s, "mark_mask", |v| {
            let m = values::number(v)?;
            let shifted = m.checked_shr(m.trailing_zeros()).unwrap_or(0);
            if m == 0 {
                Err("must not be 0".into())
            } else if shifted & shifted.wrapping_add(1) != 0 {
                Err(format!("'{v}' is not one contiguous run of bits"))
            } else {
                Ok(m)
            }
        })
        .unwrap_or(d.mark_mask);
    let rule_priority = l
        .single(s, "rule_priority", |v| {
            values::number(v).and_then(|n| {
                if (1..32000).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("'{v}' must be between 1 and 31999"))
                }
            })
        })
        .unwrap_or(d.rule_priority);
    let table_base = l
        .single(s, "table_base", |v| {
            values::number(v).and_then(|n| {
                if n == 0 || n >= u32::MAX - 1024 {
                    Err(format!("'{v}' is not a usable table id"))
                } else {
                    Ok(n)
                }
            })
        })
        .unwrap_or(d.table_base);
    let log_level = l
        .single(s, "log_level", |v| match v {
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(format!("'{v}' is not one of error, warn, info, debug")),
        })
        .unwrap_or(d.log_level);
    Globals {
        enabled: l.enabled(s),
        mark_mask,
        rule_priority,
        table_base,
        log_level,
    }
}

fn load_gateways(l: &mut Loader, doc: &Document, globals: &Globals) -> Vec<Gateway> {
    let mask = globals.mark_mask;
    let shift = mask.trailing_zeros();
    // First pass: explicit marks and tables, so allocation can skip them.
    struct Pending<'s> {
        s: &'s Section,
        mark: Option<u32>,
        table: Option<u32>,
        gw: Gateway,
    }
    let mut pending = Vec::new();
    for s in doc.of_type("gateway") {
        l.check_known(
            s,
            &[
                "enabled",
                "gateway",
                "gateway6",
                "device",
                "interface",
                "mark",
                "table",
            ],
        );
        if s.anonymous {
            l.error(
                s.line,
                s,
                None,
                "a gateway section must be named: config gateway 'NAME'".into(),
            );
            continue;
        }
        if RESERVED_NAMES.contains(&s.name.as_str()) {
            l.error(
                s.line,
                s,
                None,
                format!("'{}' is a reserved routing table name", s.name),
            );
        }
        if pending.iter().any(|p: &Pending| p.gw.name == s.name) {
            continue;
        }
        let enabled = l.enabled(s);
        let gateway = l.single(s, "gateway", |v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| format!("'{v}' is not an IPv4 address"))
        });
        let gateway6 = l.single(s, "gateway6", |v| {
            v.parse::<Ipv6Addr>()
                .map_err(|_| format!("'{v}' is not an IPv6 address"))
        });
        let device = l.single(s, "device", values::ifname);
        let interfaces: Vec<String> = l
            .words(s, "interface", values::ifname)
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        if ["gateway", "gateway6", "device", "interface"]
            .iter()
            .all(|o| s.option(o).is_none())
        {
            l.error(
                s.line,
                s,
                None,
                "needs a next hop (gateway, gateway6), a device or an interface".into(),
            );
        }
        for (a, opt) in [
            (gateway.map(IpAddr::V4), "gateway"),
            (gateway6.map(IpAddr::V6), "gateway6"),
        ] {
            if let Some(a) = a {
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    l.error(
                        option_line(s, opt),
                        s,
                        Some(opt),
                        format!("'{a}' cannot be a next hop"),
                    );
                }
            }
        }
        if let Some(g6) = gateway6 {
            if (g6.segments()[0] & 0xffc0) == 0xfe80 && device.is_none() && interfaces.is_empty() {
                l.error(
                    option_line(s, "gateway6"),
                    s,
                    Some("gateway6"),
                    format!("link-local next hop '{g6}' needs a device or interface"),
                );
            }
        }
        let mark = l.single(s, "mark", |v| {
            let m = values::number(v)?;
            if m == 0 {
                Err("must not be 0".into())
            } else if m & !mask != 0 {
                Err(format!("'{v}' has bits outside mark_mask 0x{mask:08x}"))
            } else {
                Ok(m)
            }
        });
        let table = l.single(s, "table", |v| {
            let t = values::number(v)?;
            if RESERVED_TABLES.contains(&t) {
                Err(format!(
                    "table {t} is reserved by the kernel (0, 253, 254, 255)"
                ))
            } else {
                Ok(t)
            }
        });
        let gw = Gateway {
            name: s.name.clone(),
            enabled,
            gateway,
            gateway6,
            device,
            interfaces,
            mark: 0,
            table: 0,
            index: pending.len(),
            line: s.line,
        };
        pending.push(Pending { s, mark, table, gw });
    }
    let mut marks = BTreeSet::new();
    let mut tables = BTreeSet::new();
    for p in &pending {
        if let Some(m) = p.mark {
            if !marks.insert(m) {
                l.error(
                    option_line(p.s, "mark"),
                    p.s,
                    Some("mark"),
                    format!("mark 0x{m:08x} is used by another gateway"),
                );
            }
        }
        if let Some(t) = p.table {
            if !tables.insert(t) {
                l.error(
                    option_line(p.s, "table"),
                    p.s,
                    Some("table"),
                    format!("table {t} is used by another gateway"),
                );
            }
        }
    }
    let mut next_mark: u64 = 1;
    let mut next_table = globals.table_base;
    let mut result = Vec::new();
    for p in pending {
        let mut gw = p.gw;
        gw.mark = match p.mark {
            Some(m) => m,
            None => loop {
                let candidate = next_mark << shift;
                next_mark += 1;
                if candidate & !u64::from(mask) != 0 {
                    l.error(
                        p.s.line,
                        p.s,
                        None,
                        format!("no free mark left inside mark_mask 0x{mask:08x}"),
                    );
                    break 0;
                }
                if marks.insert(candidate as u32) {
                    break candidate as u32;
                }
            },
        };
        gw.table = match p.table {
            Some(t) => t,
            None => loop {
                let t = next_table;
                next_table = next_table.saturating_add(1);
                if !RESERVED_TABLES.contains(&t) && tables.insert(t) {
                    break t;
                }
            },
        };
        result.push(gw);
    }
    // The ip rule block: entry, main, dispatch and leaves, end (plan::band_size).
    let band = u64::from(globals.rule_priority) + 2 * result.len() as u64 + 1;
    if band >= 32766 {
        if let Some(s) = doc.of_type("globals").next() {
            l.error(
                option_line(s, "rule_priority"),
                s,
                Some("rule_priority"),
                format!(
                    "{} gateways need priorities up to {band}, past the main table's 32766",
                    result.len()
                ),
            );
        }
    }
    result
}

fn load_rules(l: &mut Loader, doc: &Document, gateways: &[Gateway]) -> Vec<Rule> {
    let mut out = Vec::new();
    for s in doc.of_type("rule") {
        l.check_known(
            s,
            &[
                "enabled",
                "gateway",
                "family",
                "src_mac",
                "in_device",
                "in_interface",
                "proto",
                "src_ip",
                "dest_ip",
                "src_port",
                "dest_port",
                "log",
                "name",
            ],
        );
        if !s.anonymous && s.name.len() > MAX_NAME {
            l.error(
                s.line,
                s,
                None,
                format!("section name longer than {MAX_NAME} bytes"),
            );
        }
        let enabled = l.enabled(s);
        let gateway_name = l.single(s, "gateway", |v| Ok::<_, String>(v.to_string()));
        let family = l.single(s, "family", |v| match v {
            "any" | "" => Ok(None),
            "ipv4" | "inet4" => Ok(Some(Family::V4)),
            "ipv6" | "inet6" => Ok(Some(Family::V6)),
            _ => Err(format!("'{v}' is not one of any, ipv4, ipv6")),
        });
        let src_mac: Vec<String> = l
            .words(s, "src_mac", values::mac)
            .into_iter()
            .map(|v| v.0)
            .collect();
        let in_device: Vec<String> = l
            .words(s, "in_device", values::ifname)
            .into_iter()
            .map(|v| v.0)
            .collect();
        let in_interface: Vec<String> = l
            .words(s, "in_interface", values::ifname)
            .into_iter()
            .map(|v| v.0)
            .collect();
        let mut proto: Vec<Proto> = l
            .words(s, "proto", values::proto)
            .into_iter()
            .map(|v| v.0)
            .collect();
        let src_ip = l.criterion(s, "src_ip", values::prefix);
        let dest_ip = l.criterion(s, "dest_ip", values::prefix);
        let src_port = l.criterion(s, "src_port", values::port_range);
        let dest_port = l.criterion(s, "dest_port", values::port_range);
        let log = l.single(s, "log", values::boolean).unwrap_or(false);

        let gateway = match gateway_name {
            None if s.option("gateway").is_none() => {
                l.error(
                    s.line,
                    s,
                    None,
                    "needs option gateway: the gateway its connections are pinned to".into(),
                );
                None
            }
            None => None,
            Some(name) => match gateways.iter().find(|g| g.name == name) {
                None => {
                    l.error(
                        option_line(s, "gateway"),
                        s,
                        Some("gateway"),
                        format!("no gateway section named '{name}'"),
                    );
                    None
                }
                Some(g) if !g.enabled && enabled => {
                    l.error(
                        option_line(s, "gateway"),
                        s,
                        Some("gateway"),
                        format!("gateway '{name}' is disabled"),
                    );
                    None
                }
                Some(g) => Some(g.index),
            },
        };

        // Ports need port protocols; without proto, ports mean tcp and udp (as in fw4).
        let has_ports = !src_port.is_empty() || !dest_port.is_empty();
        if has_ports {
            if proto.is_empty() {
                proto = vec![Proto::Number(6), Proto::Number(17)];
            } else if let Some(p) = proto.iter().find(|p| !p.has_ports()) {
                let opt = if !dest_port.is_empty() {
                    "dest_port"
                } else {
                    "src_port"
                };
                l.error(
                    option_line(s, opt),
                    s,
                    Some(opt),
                    format!("ports need a protocol with ports, but proto has '{p}'"),
                );
            }
        }
        if proto.contains(&Proto::All) {
            if proto.len() > 1 {
                l.error(
                    option_line(s, "proto"),
                    s,
                    Some("proto"),
                    "'all' cannot be combined with other protocols".into(),
                );
            }
            proto.clear();
        }
        proto.sort();
        proto.dedup();

        // Which families can this rule match at all?
        let mut families: Vec<Family> = match family.flatten() {
            Some(f) => vec![f],
            None => Family::ALL.to_vec(),
        };
        let mut why = Vec::new();
        for (name, c) in [("src_ip", &src_ip), ("dest_ip", &dest_ip)] {
            if !c.any.is_empty() {
                families.retain(|f| c.any.iter().any(|p| p.family() == *f));
                why.push(name);
            }
        }
        if !proto.is_empty() && proto.iter().all(|p| p.family().is_some()) {
            families.retain(|f| proto.iter().any(|p| p.family() == Some(*f)));
            why.push("proto");
        }
        if families.is_empty() {
            let opt = why.last().copied().unwrap_or("family");
            l.error(
                option_line(s, opt),
                s,
                Some(opt),
                format!(
                    "the rule can never match: {} and family select no common address family",
                    why.join(", ")
                ),
            );
        }
        if let (true, Some(g)) = (enabled, gateway) {
            out.push(Rule {
                name: s.name.clone(),
                label: s.label(),
                gateway: g,
                families,
                src_mac,
                in_device,
                in_interface,
                proto,
                src_ip,
                dest_ip,
                src_port,
                dest_port,
                log,
                line: s.line,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
