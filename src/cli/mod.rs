//! The `connroute` command line: parses arguments, runs one command (one
//! file each) and turns its result into an exit code: 0 ok, 1 runtime
//! failure, 2 bad config or usage.

pub mod args;
pub mod json_text;
pub mod syslog;

mod apply;
mod check;
mod dump_config;
mod flush;
mod help;
mod hotplug;
mod render;
mod status;
mod status_text;
mod watch;

use crate::apply::System;
use crate::apply::error::ApplyError;
use crate::apply::nft::Nft;
use crate::apply::{devices, kernel};
use crate::config::Config;
use crate::facts::Facts;
use args::{Cli, Command, Parsed};
use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Why a command failed; each kind carries its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The config cannot be read or is invalid (exit 2).
    Config(String),
    /// The system could not be read or changed (exit 1).
    Runtime(String),
    /// apply, flush or status with their own exit code (2 refused, 3 drift,
    /// 4 gateway inactive, 1 the rest).
    Code(u8, String),
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::Runtime(_) => 1,
            Error::Code(c, _) => *c,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) | Error::Runtime(m) | Error::Code(_, m) => f.write_str(m),
        }
    }
}

/// What a command returns.
type Run = Result<(), Error>;

fn runtime(e: impl Into<String>) -> Error {
    Error::Runtime(e.into())
}

/// The config file's bytes; unreadable is a config error.
fn read_config(cli: &Cli) -> Result<Vec<u8>, Error> {
    crate::config::source::read_regular(&cli.config, crate::config::source::MAX_CONFIG_BYTES, true)
        .map_err(|e| Error::Config(format!("{}: cannot read: {e}", cli.config.display())))
}

/// The recorded mark/table allocations (`--ids`); none when the file does
/// not exist. A damaged file is a config error naming file and line.
fn read_ids(cli: &Cli) -> Result<crate::ids::Ids, Error> {
    use std::io::ErrorKind::{InvalidData, InvalidInput};
    let name = cli.ids.display().to_string();
    match crate::config::source::read_regular(&cli.ids, crate::ids::MAX_BYTES as u64, false) {
        Ok(bytes) => crate::ids::parse(&bytes, &name).map_err(Error::Config),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) if matches!(e.kind(), InvalidInput | InvalidData) => {
            Err(Error::Config(format!("{name}: cannot read: {e}")))
        }
        Err(e) => Err(runtime(format!("{name}: cannot read: {e}"))),
    }
}

/// The validated config, allocations kept as recorded in `ids`; from here
/// on `globals.log_level` filters the log (unless `-v`). Its warnings go
/// to the log.
fn load_with(cli: &Cli, ids: &crate::ids::Ids) -> Result<Config, Error> {
    parse_config(cli, read_config(cli)?, ids)
}

/// [`load_with`] on the config file's `bytes`, already read.
fn parse_config(cli: &Cli, bytes: Vec<u8>, ids: &crate::ids::Ids) -> Result<Config, Error> {
    let name = cli.config.display().to_string();
    let invalid = |e: crate::config::ConfigError| Error::Config(e.to_string());
    let doc = Config::document(&bytes, &name).map_err(invalid)?;
    // The file's bytes are freed once parsed: less at the peak.
    drop(bytes);
    let config = Config::from_document_with_ids(&doc, &name, ids).map_err(invalid)?;
    drop(doc);
    if !cli.verbose {
        log::set_max_level(config.globals.log_level.filter());
    }
    for w in config.warnings.iter().take(crate::config::MAX_SHOWN) {
        log::warn!("{}", w.unlabelled());
    }
    if let Some(more) = config
        .warnings
        .len()
        .checked_sub(crate::config::MAX_SHOWN + 1)
    {
        log::warn!("… and {} more warnings", more + 1);
    }
    Ok(config)
}

/// The validated config with the allocations recorded in the ids file.
fn load(cli: &Cli) -> Result<Config, Error> {
    load_with(cli, &read_ids(cli)?)
}

fn system(cli: &Cli) -> System {
    System {
        nft: Nft {
            program: cli.nft.clone(),
            timeout: cli
                .timeout
                .map_or(crate::apply::nft::DEFAULT_TIMEOUT, Duration::from_secs),
            scale: cli.timeout.is_none(),
        },
        rt_tables: (!cli.no_rt_tables).then(|| cli.rt_tables.clone()),
        state: Some(cli.state.clone()),
    }
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        Error::Code(e.exit_code(), e.to_string())
    }
}

/// The real kernel (netlink sockets; nft as configured).
fn open_kernel(cli: &Cli) -> Result<kernel::System, Error> {
    kernel::System::open(system(cli).nft).map_err(|e| runtime(e.to_string()))
}

/// The facts [`live_plan`] plans from.
fn live_facts(
    cli: &Cli,
    config: &Config,
    k: &mut dyn kernel::Kernel,
    strict: bool,
) -> Result<Facts, Error> {
    let mut f = facts(cli, config, strict)?;
    f.unusable_devices = devices::unusable(k, config, &f);
    Ok(f)
}

/// Marks inactive, in `f`, the gateways whose missing route's next hop the
/// kernel would refuse (as apply does when it meets the refusal), and plans
/// again without them: what status reports and check --diff predicts.
fn plan_without_refused(
    config: &Config,
    f: &mut Facts,
    k: &mut dyn kernel::Kernel,
    p: crate::plan::Plan,
) -> Result<crate::plan::Plan, Error> {
    let have = k.routes().map_err(|e| runtime(e.to_string()))?;
    f.refused = devices::unreachable(k, &p, &have);
    Ok(match f.refused.is_empty() {
        true => p,
        false => crate::plan::plan(config, f),
    })
}

/// netifd facts for the interfaces the config names, and the kernel's
/// main-table next hops for device-only gateways; strict: both must work.
fn facts(cli: &Cli, config: &Config, strict: bool) -> Result<Facts, Error> {
    let mut facts = netifd_facts(cli, config, strict)?;
    if let Err(e) = crate::kernel_facts::learn(config, &mut facts) {
        let msg = format!("cannot read the main table's default routes: {e}");
        if strict {
            return Err(runtime(msg));
        }
        log::warn!("{msg}");
    }
    Ok(facts)
}

fn netifd_facts(cli: &Cli, config: &Config, strict: bool) -> Result<Facts, Error> {
    let names = config.interfaces();
    if names.is_empty() {
        return Ok(Facts::default());
    }
    let timeout = cli
        .timeout
        .map_or(crate::ubus::DEFAULT_TIMEOUT, Duration::from_secs);
    match crate::ubus::dump(&cli.ubus, timeout) {
        Ok(f) => Ok(f),
        Err(e) if strict => Err(runtime(format!(
            "the config uses OpenWrt interfaces ({}), but netifd state is not available: {e}",
            names.join(", ")
        ))),
        Err(e) => {
            log::warn!("treating interfaces {} as down: {e}", names.join(", "));
            Ok(Facts::default())
        }
    }
}

/// This process's effective capability set (low 32 bits: CAP_NET_ADMIN
/// is bit 12), by one `capget` (reading `/proc/self/status` took a dozen
/// reads); `None` when the kernel refuses.
fn effective_caps() -> Option<u32> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522; // two Data, 64 capabilities
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget reads the header and writes two Data for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    (rc == 0).then_some(d[0].effective)
}

/// Refuses gateway names iproute2 already gives to other tables (exit 2).
fn table_names_free(cli: &Cli, p: &crate::plan::Plan) -> Run {
    use crate::apply::rt_tables;
    if cli.no_rt_tables {
        return Ok(());
    }
    let dir = rt_tables::iproute2_dir(&cli.rt_tables);
    rt_tables::collisions(&dir, &cli.rt_tables, &p.table_names).map_err(|e| match e.exit_code() {
        2 => Error::Config(e.to_string()),
        _ => Error::Runtime(e.to_string()),
    })
}

/// Whether this process may change nft tables, ip rules and routes:
/// CAP_NET_ADMIN in its effective set (root when that cannot be read).
fn may_admin_network() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    match effective_caps() {
        Some(caps) => caps & (1 << CAP_NET_ADMIN) != 0,
        // SAFETY: geteuid has no preconditions.
        None => unsafe { libc::geteuid() == 0 },
    }
}

/// Refuses `what` plainly (exit 1) without CAP_NET_ADMIN, before nft or
/// netlink answer with a bare "Operation not permitted".
fn need_root(what: &str) -> Run {
    if may_admin_network() {
        return Ok(());
    }
    Err(runtime(format!(
        "{what} needs root (CAP_NET_ADMIN); run it as root"
    )))
}

/// Writes `text` to stdout.
fn print(text: &str) -> Run {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| runtime(format!("stdout: {e}")))
}

/// `v` as indented JSON and a newline (one compact serializer, re-indented).
fn print_json<T: serde::Serialize>(v: &T) -> Run {
    let compact = serde_json::to_vec(v).map_err(|e| runtime(e.to_string()))?;
    print(&(json_text::pretty(&compact) + "\n"))
}

/// This process's peak resident set size (children such as nft excluded).
fn peak_rss_kib() -> i64 {
    // VmHWM belongs to this process's own memory map. getrusage's ru_maxrss
    // is not: exec keeps the high-water mark of the map it replaced, so a
    // run started by a big parent would report the parent's size.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

fn dispatch(cli: &Cli) -> Run {
    match &cli.command {
        Command::Render { format, routes } => render::run(cli, *format, *routes),
        Command::Check { diff } => check::run(cli, *diff),
        Command::DumpConfig => dump_config::run(cli),
        Command::Apply { force } => apply::run(cli, *force),
        Command::Flush => flush::run(cli),
        Command::Status { json } => status::run(cli, *json),
        Command::Hotplug => hotplug::run(cli),
        Command::Watch => watch::run(cli),
    }
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Print(text)) => {
            return match print(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            };
        }
        Err(e) => {
            eprintln!("connroute: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if cli.verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    syslog::init(&cli.syslog, cli.verbose, level);
    let result = dispatch(&cli);
    log::debug!("peak RSS {} KiB", peak_rss_kib());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Runs that change the system (often started by hotplug or
            // procd, with no one reading stderr) also leave the error in the
            // log; stderr gets it once, here.
            let unattended = matches!(
                cli.command,
                Command::Apply { .. } | Command::Flush | Command::Hotplug | Command::Watch
            );
            if unattended {
                syslog::error_to_syslog(&e);
            }
            eprintln!("connroute: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The refusal (exit 2) of other owners' default routes in tables the
/// plan wants, each naming where the config gives that table: `FILE:LINE:
/// gateway 'NAME': option 'table': …` for an explicit option, the
/// gateway's section line for an allocated table. The config is read
/// again for the lines (only on this path); where it cannot be, the
/// refusal says what it can. `verdict` ends the message.
fn foreign_refusal(
    cli: &Cli,
    plan: &crate::plan::Plan,
    routes: &[kernel::ForeignRoute],
    verdict: &str,
) -> Error {
    let file = cli.config.display().to_string();
    let doc = read_config(cli)
        .ok()
        .and_then(|bytes| Config::document(&bytes, &file).ok());
    let lines: Vec<String> = routes
        .iter()
        .map(|r| {
            let what = format!(
                "table {} ({}) already has a default route connroute did not create ({})",
                r.table, r.family, r.text
            );
            let Some(g) = plan.gateways.iter().find(|g| g.table == r.table) else {
                return format!("{what}; remove that route");
            };
            let section = doc.as_ref().and_then(|d| {
                d.of_type("gateway")
                    .find(|s| !s.anonymous && *s.name == *g.name)
            });
            let name = crate::uci::clip(&g.name);
            match section.map(|s| (s, s.option("table"))) {
                Some((_, Some(o))) => format!(
                    "{file}:{}: gateway '{name}': option 'table': {what}; give the gateway \
                     another table or remove that route",
                    o.line
                ),
                Some((s, None)) => format!(
                    "{file}:{}: gateway '{name}': its allocated {what}; remove that route or \
                     give the gateway an `option table`",
                    s.line
                ),
                None => format!(
                    "gateway '{name}': {what}; give the gateway another `option table` or \
                     remove that route"
                ),
            }
        })
        .collect();
    Error::Config(format!("{} ({verdict})", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::{effective_caps, may_admin_network};

    #[test]
    fn capget_reads_the_effective_set_proc_shows() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let Some(hex) = status.lines().find_map(|l| l.strip_prefix("CapEff:")) else {
            eprintln!("skipped: no CapEff in /proc/self/status (emulator)");
            return;
        };
        let caps = u64::from_str_radix(hex.trim(), 16).unwrap();
        assert_eq!(effective_caps(), Some(caps as u32));
        assert_eq!(may_admin_network(), caps & (1 << 12) != 0);
    }
}
