//! Parsers for single option values: booleans, numbers, MACs, prefixes,
//! ports and protocols. Each returns a plain message on failure; the caller
//! adds file, line, section and option.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The families of `of` that `keep` keeps, in order, as a shared
    /// slice: a list of families is never worth an allocation.
    pub fn subset(of: &[Family], keep: impl Fn(Family) -> bool) -> &'static [Family] {
        let has = |f: Family| of.contains(&f) && keep(f);
        match (has(Family::V4), has(Family::V6)) {
            (true, true) => &Family::ALL,
            (true, false) => &Family::ALL[..1],
            (false, true) => &Family::ALL[1..],
            (false, false) => &[],
        }
    }

    /// `ipv4` / `ipv6`, as nft's `meta nfproto` names them.
    pub fn nfproto(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.nfproto())
    }
}

/// UCI boolean, as OpenWrt's shell helpers and fw4 read them.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (use 1 or 0)")),
    }
}

/// Refuses `017`: ip(8) reads it as octal 15, a decimal reading as 17, so
/// the table or mark meant is anyone's guess.
fn not_octal(s: &str) -> Result<(), String> {
    match s.len() > 1 && s.starts_with('0') && s[1..].bytes().all(|b| b.is_ascii_digit()) {
        true => Err(format!(
            "'{s}': ip reads a number with a leading 0 as octal; write it without the 0, \
             or in hex (0x…)"
        )),
        false => Ok(()),
    }
}

/// A 32-bit number, decimal or `0x` hexadecimal.
pub fn number(s: &str) -> Result<u32, String> {
    not_octal(s)?;
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16),
        _ => s.parse::<u32>(),
    };
    parsed.map_err(|_| format!("'{s}' is not a number between 0 and 4294967295"))
}

/// `globals.mark_mask`: a non-zero, contiguous run of bits.
pub fn mark_mask(v: &str) -> Result<u32, String> {
    let m = number(v)?;
    let shifted = m.checked_shr(m.trailing_zeros()).unwrap_or(0);
    if m == 0 {
        Err("must not be 0".into())
    } else if shifted & shifted.wrapping_add(1) != 0 {
        Err(format!("'{v}' is not one contiguous run of bits"))
    } else {
        Ok(m)
    }
}

/// `globals.rule_priority`: 1 to 31999, below the main table's rule.
pub fn rule_priority(v: &str) -> Result<u32, String> {
    not_octal(v)?;
    match number(v).unwrap_or(0) {
        n @ 1..32000 => Ok(n),
        _ => Err(format!("'{v}' must be between 1 and 31999")),
    }
}

/// `globals.table_base`: a table id that is not 0.
pub fn table_base(v: &str) -> Result<u32, String> {
    match number(v)? {
        0 => Err(format!("'{v}' is not a usable table id")),
        n => Ok(n),
    }
}

/// Routing tables the kernel reserves: unspec, default, main, local.
pub const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// `gateway.table`: any id but the reserved ones.
pub fn table(v: &str) -> Result<u32, String> {
    let t = number(v)?;
    if RESERVED_TABLES.contains(&t) {
        Err(format!(
            "table {t} is reserved by the kernel (0, 253, 254, 255)"
        ))
    } else {
        Ok(t)
    }
}

/// `gateway.mark`: non-zero, inside `mask`.
pub fn mark(v: &str, mask: u32) -> Result<u32, String> {
    let m = number(v)?;
    if m == 0 {
        Err("must not be 0".into())
    } else if m & !mask != 0 {
        Err(format!("'{v}' has bits outside mark_mask 0x{mask:08x}"))
    } else {
        Ok(m)
    }
}

/// `rule.family`: `None` for any.
pub fn family(v: &str) -> Result<Option<Family>, String> {
    match v {
        "any" => Ok(None),
        "ipv4" | "inet4" => Ok(Some(Family::V4)),
        "ipv6" | "inet6" => Ok(Some(Family::V6)),
        _ => Err(format!("'{v}' is not one of any, ipv4, ipv6")),
    }
}

/// An Ethernet address, `aa:bb:cc:dd:ee:ff`, normalised to lower case.
pub fn mac(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)"))
    }
}

/// An address with a prefix length; host bits are cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for a single address).
    pub len: u8,
}

impl Prefix {
    /// The prefix's family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// True when the prefix names a single address.
    pub fn is_host(&self) -> bool {
        self.len == self.family_bits()
    }

    fn family_bits(&self) -> u8 {
        match self.family() {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// `ADDR` or `ADDR/LEN`, IPv4 or IPv6.
pub fn prefix(s: &str) -> Result<Prefix, String> {
    let bad = || format!("'{s}' is not an IP address or prefix");
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => bits,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= bits && !l.starts_with('+') => n,
            _ => return Err(format!("'{s}': prefix length must be 0 to {bits}")),
        },
    };
    if len == 0 && !addr.is_unspecified() {
        let all = if addr.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        return Err(format!(
            "'{s}': a /0 prefix is every address, whatever address is written; \
             write {all} if that is meant, else the length meant"
        ));
    }
    let addr = match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok(Prefix { addr, len })
}

/// True when `s` (a prefix [`prefix`] read as `p`) has bits set past its
/// length: `192.168.1.7/24` is read as `192.168.1.0/24`, which may not be
/// what a mistyped length (`/2` for `/24`) meant.
pub fn has_host_bits(s: &str, p: &Prefix) -> bool {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    addr.parse::<IpAddr>().is_ok_and(|a| a != p.addr)
}

/// A port or an inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port (equal to `from` for a single port).
    pub to: u16,
}

/// `PORT` or `FROM-TO`.
pub fn port_range(s: &str) -> Result<PortRange, String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0 && !p.starts_with('+'))
            .ok_or_else(|| format!("'{s}' is not a port (1-65535) or range (FROM-TO)"))
    };
    let (from, to) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if from > to {
        return Err(format!("'{s}': range start is above its end"));
    }
    Ok(PortRange { from, to })
}

/// An IP protocol selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// Any protocol (`all`).
    All,
    /// A protocol number; well-known ones print by name.
    Number(u8),
}

impl Proto {
    /// True for protocols with ports (tcp, udp, udplite, sctp, dccp).
    pub fn has_ports(self) -> bool {
        matches!(self, Proto::Number(6 | 17 | 33 | 132 | 136))
    }

    /// The family this protocol is limited to (icmp, icmpv6), if any.
    pub fn family(self) -> Option<Family> {
        match self {
            Proto::Number(1) => Some(Family::V4),
            Proto::Number(58) => Some(Family::V6),
            _ => None,
        }
    }

    /// The name nft uses, or the number.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Proto::All => "all",
            Proto::Number(1) => "icmp",
            Proto::Number(6) => "tcp",
            Proto::Number(17) => "udp",
            Proto::Number(33) => "dccp",
            Proto::Number(58) => "ipv6-icmp",
            Proto::Number(132) => "sctp",
            Proto::Number(136) => "udplite",
            Proto::Number(_) => return None,
        })
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(n), _) => f.write_str(n),
            (None, Proto::Number(n)) => write!(f, "{n}"),
            (None, Proto::All) => f.write_str("all"),
        }
    }
}

/// `tcp|udp|udplite|sctp|dccp|icmp|icmpv6|all|NUMBER`.
pub fn proto(s: &str) -> Result<Proto, String> {
    Ok(match s {
        "all" => Proto::All,
        "icmp" => Proto::Number(1),
        "tcp" => Proto::Number(6),
        "udp" => Proto::Number(17),
        "dccp" => Proto::Number(33),
        "icmpv6" | "ipv6-icmp" => Proto::Number(58),
        "sctp" => Proto::Number(132),
        "udplite" => Proto::Number(136),
        _ => match s.parse::<u8>() {
            Ok(n) if !s.starts_with('+') => Proto::Number(n),
            _ => {
                return Err(format!(
                    "'{s}' is not a protocol (tcp, udp, udplite, sctp, dccp, icmp, icmpv6, all or 0-255)"
                ));
            }
        },
    })
}

/// A character for a message: quoted when printable, escaped otherwise.
fn shown(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("'{c}'")
    } else {
        format!("'{}'", c.escape_default())
    }
}

/// A kernel network device name, checked as the kernel's `dev_valid_name`
/// does (1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace), and
/// stricter where nft would read more into it: no quotes or backslashes
/// (nft text cannot hold them) and no `*` (a wildcard in nft).
pub fn device(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("'{s}' is not an interface name (1 to 15 bytes)"));
    }
    if s == "." || s == ".." {
        return Err(format!("'{s}' is not an interface name"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | ':' | '"' | '\\' | '\'' | '*') || !c.is_ascii_graphic())
    {
        return Err(format!(
            "'{s}' is not an interface name: {} is not allowed",
            shown(c)
        ));
    }
    nft_plain(s)?;
    Ok(s.to_string())
}

/// Words nft's JSON parser reads as constants, not strings (nftables
/// `parser_json.c`, `constant_tbl`).
const NFT_CONSTANTS: [&str; 11] = [
    "tcp", "udp", "udplite", "esp", "ah", "icmp", "icmpv6", "comp", "dccp", "sctp", "redirect",
];

/// Refuses a string nft's JSON parser would not read as plain text: a
/// leading `@` is a set reference, `$` a variable, and a few words are
/// constants. (`*` and `\` are refused by the callers' charsets.)
fn nft_plain(s: &str) -> Result<(), String> {
    let why = match s.as_bytes().first() {
        Some(b'@') => "nft reads a leading '@' as a set reference",
        Some(b'$') => "nft reads a leading '$' as a variable",
        _ if NFT_CONSTANTS.contains(&s) => "nft reads it as a protocol constant",
        _ => return Ok(()),
    };
    Err(format!("'{s}' is not usable as an interface name: {why}"))
}

/// An OpenWrt logical interface name: a UCI section name (`[A-Za-z0-9_]`)
/// of 1 to 15 bytes.
pub fn interface(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("'{s}' is not an interface name (1 to 15 bytes)"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "'{s}' is not an OpenWrt interface name: {} is not allowed (A-Z, a-z, 0-9, _)",
            shown(c)
        ));
    }
    Ok(s.to_string())
}

/// Routing table names iproute2 and the kernel reserve.
pub const RESERVED_NAMES: [&str; 5] = ["main", "local", "default", "unspec", "all"];

/// Why a gateway name cannot name a routing table, if it cannot: iproute2
/// reads decimal, octal and `0x` hexadecimal as table numbers (strtoul
/// base 0), and a few names are reserved.
pub fn gateway_name_problem(name: &str) -> Option<String> {
    let hex = name
        .strip_prefix("0x")
        .or_else(|| name.strip_prefix("0X"))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())) {
        return Some(format!(
            "'{name}' reads as a table number to ip(8); give the gateway a name with a letter"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Some(format!("'{name}' is a reserved routing table name"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(
            prefix("192.168.1.7/24").unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert_eq!(
            prefix("2001:db8::1/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(prefix("10.0.0.1").unwrap().to_string(), "10.0.0.1");
        assert!(prefix("10.0.0.1/33").is_err());
        assert!(prefix("10.0.0/8").is_err());
        assert_eq!(prefix("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(prefix("::/0").unwrap().to_string(), "::/0");
        // A /0 with an address is a typo (`/0` for `/30`), not "all".
        assert!(
            prefix("10.0.0.1/0")
                .unwrap_err()
                .contains("write 0.0.0.0/0")
        );
        assert!(prefix("2001:db8::/0").unwrap_err().contains("write ::/0"));
        let p = prefix("192.168.1.77/2").unwrap();
        assert!(has_host_bits("192.168.1.77/2", &p) && p.to_string() == "192.0.0.0/2");
        let p = prefix("2001:DB8::/32").unwrap();
        assert!(!has_host_bits("2001:DB8::/32", &p));
        assert!(!has_host_bits("10.0.0.1", &prefix("10.0.0.1").unwrap()));
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(port_range("80").unwrap(), PortRange { from: 80, to: 80 });
        assert_eq!(
            port_range("1024-65535").unwrap(),
            PortRange {
                from: 1024,
                to: 65535
            }
        );
        assert!(port_range("0").is_err());
        assert!(port_range("90-80").is_err());
        assert!(port_range("65536").is_err());
    }

    #[test]
    fn numbers_and_macs() {
        assert_eq!(number("0xff000000").unwrap(), 0xff00_0000);
        assert_eq!(number("5000").unwrap(), 5000);
        assert!(number("0x").is_err());
        assert_eq!(number("0").unwrap(), 0);
        assert!(number("017").unwrap_err().contains("octal"));
        assert_eq!(number("0x017").unwrap(), 0x17);
        assert_eq!(
            rule_priority("-1").unwrap_err(),
            "'-1' must be between 1 and 31999"
        );
        assert_eq!(mac("52:54:00:C2:A5:43").unwrap(), "52:54:00:c2:a5:43");
        assert!(mac("52:54:00:c2:a5").is_err());
        assert!(device("averyveryverylongname").is_err());
    }

    #[test]
    fn names_as_the_kernel_and_iproute2_read_them() {
        for bad in [
            "x\";drop;#",
            "a b",
            "a/b",
            "eth0:1",
            ".",
            "..",
            "eth*",
            "a\\b",
            "",
            "@x",
            "$x",
            "tcp",
            "redirect",
        ] {
            assert!(device(bad).is_err(), "{bad}");
        }
        for good in [
            "eth0",
            "br-lan",
            "wg0.100",
            "pppoe-wan",
            "abcdefghijklmno",
            "x@",
            "tcp0",
        ] {
            assert_eq!(device(good).unwrap(), good);
        }
        assert!(interface("wan-2").is_err());
        assert!(interface("wan2_6").is_ok());
        for numeric in ["1", "254", "0x10", "0XfF", "017"] {
            assert!(
                gateway_name_problem(numeric)
                    .unwrap()
                    .contains("table number"),
                "{numeric}"
            );
        }
        for reserved in RESERVED_NAMES {
            assert!(gateway_name_problem(reserved).unwrap().contains("reserved"));
        }
        for fine in ["router2", "0x", "0xg", "wan_1", "1a"] {
            assert_eq!(gateway_name_problem(fine), None, "{fine}");
        }
    }
}
