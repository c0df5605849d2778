//! The `connroute` command line: parses arguments and wires the pipeline
//! stages together. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.

use clap::{Parser, Subcommand, ValueEnum};
use connroute::apply::engine::{self, System};
use connroute::apply::lock::Lock;
use connroute::apply::nft::Nft;
use connroute::config::Config;
use connroute::facts::Facts;
use connroute::{hotplug, plan, syslog, ubus};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "connroute",
    version,
    about = "Connection-based policy routing for OpenWrt and Linux gateways"
)]
struct Cli {
    /// Config file
    #[arg(short, long, global = true, default_value = "/etc/config/connroute")]
    config: PathBuf,
    /// Also print log lines on stderr, with debug detail
    #[arg(short, long, global = true)]
    verbose: bool,
    /// nft binary
    #[arg(long, global = true, default_value = "nft")]
    nft: PathBuf,
    /// ubus binary (netifd interface state)
    #[arg(long, global = true, default_value = "ubus")]
    ubus: PathBuf,
    /// Lock file serialising runs
    #[arg(long, global = true, default_value = "/var/run/connroute.lock")]
    lock: PathBuf,
    /// Seconds to wait for another run's lock
    #[arg(long, global = true, default_value_t = 30)]
    lock_timeout: u64,
    /// File naming connroute's routing tables
    #[arg(
        long,
        global = true,
        default_value = "/etc/iproute2/rt_tables.d/connroute.conf"
    )]
    rt_tables: PathBuf,
    /// Do not write the routing table names file
    #[arg(long, global = true)]
    no_rt_tables: bool,
    /// syslog socket
    #[arg(long, global = true, default_value = "/dev/log", hide = true)]
    syslog: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Nft,
}

#[derive(Subcommand)]
enum Command {
    /// Print the nftables batch (or routing plan) apply would use; changes nothing
    Render {
        /// json: exactly what is fed to `nft -j -f -`; nft: nft's text syntax
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Print the routes and ip rules instead
        #[arg(long)]
        routes: bool,
    },
    /// Validate the config, and the ruleset with `nft -c` when possible
    Check,
    /// Print the parsed config in `uci export` format
    DumpConfig,
    /// Make the system match the config (idempotent, atomic, rolled back on failure)
    Apply {
        /// Reload the nft table even when it is identical
        #[arg(long)]
        force: bool,
    },
    /// Remove connroute's nft table, ip rules and routes, and nothing else
    Flush,
    /// Show gateways, rules, counters and drift from the config
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Handle a netifd hotplug event (ACTION, INTERFACE from the environment)
    Hotplug,
}

/// A failure with its exit code.
struct Fail(u8, String);

type Run = Result<(), Fail>;

fn runtime(e: String) -> Fail {
    Fail(1, e)
}

fn load(cli: &Cli) -> Result<Config, Fail> {
    let name = cli.config.display().to_string();
    let bytes =
        std::fs::read(&cli.config).map_err(|e| Fail(2, format!("{name}: cannot read: {e}")))?;
    let config = Config::parse(&bytes, &name).map_err(|e| Fail(2, e.to_string()))?;
    for w in &config.warnings {
        log::warn!("{w}");
    }
    Ok(config)
}

fn system(cli: &Cli) -> System {
    System {
        nft: Nft {
            program: cli.nft.clone(),
            timeout: Duration::from_secs(30),
        },
        rt_tables: (!cli.no_rt_tables).then(|| cli.rt_tables.clone()),
    }
}

/// netifd facts for the interfaces the config names; strict: ubus must work.
fn facts(cli: &Cli, config: &Config, strict: bool) -> Result<Facts, Fail> {
    let names = ubus::referenced(config);
    if names.is_empty() {
        return Ok(Facts::default());
    }
    match ubus::dump(&cli.ubus) {
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

fn print(text: &str) -> Run {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| runtime(format!("stdout: {e}")))
}

fn render(cli: &Cli, format: Format, routes: bool) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    if routes {
        let mut text = String::new();
        for r in &p.routes {
            text.push_str(&format!("{r}\n"));
        }
        for r in &p.ip_rules {
            text.push_str(&format!("{r}\n"));
        }
        return print(&text);
    }
    match format {
        Format::Json => {
            let json =
                serde_json::to_string_pretty(&p.ruleset).map_err(|e| runtime(e.to_string()))?;
            print(&(json + "\n"))
        }
        Format::Nft => print(&connroute::nft::text::render(&p.ruleset).map_err(runtime)?),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn check(cli: &Cli) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    let name = cli.config.display();
    if !is_root() {
        eprintln!("{name}: config ok; nft check skipped: needs root");
        return Ok(());
    }
    let json = serde_json::to_vec(&p.ruleset).map_err(|e| runtime(e.to_string()))?;
    match system(cli).nft.check(&json) {
        Ok(()) => {
            eprintln!("{name}: config ok; nft accepts the ruleset");
            Ok(())
        }
        Err(e) if e.starts_with("cannot run") => {
            eprintln!("{name}: config ok; nft check skipped: {e}");
            Ok(())
        }
        Err(e) => Err(Fail(2, format!("{name}: {e}"))),
    }
}

fn dump_config(cli: &Cli) -> Run {
    let name = cli.config.display().to_string();
    let bytes =
        std::fs::read(&cli.config).map_err(|e| Fail(2, format!("{name}: cannot read: {e}")))?;
    let package = cli
        .config
        .file_name()
        .map_or("connroute".into(), |n| n.to_string_lossy().into_owned());
    let doc = connroute::uci::parse(&bytes, &package)
        .map_err(|e| Fail(2, format!("{name}:{}: {e}", e.line)))?;
    std::io::stdout()
        .write_all(&doc.export())
        .map_err(|e| runtime(e.to_string()))
}

fn apply(cli: &Cli, force: bool) -> Run {
    let config = load(cli)?;
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let p = plan::plan(&config, &facts(cli, &config, true)?);
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    match engine::apply(&p, &system(cli), force) {
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            Ok(())
        }
        Err(e) => {
            log::error!("apply failed, previous state kept: {e}");
            Err(runtime(format!("apply failed, previous state kept: {e}")))
        }
    }
}

fn flush(cli: &Cli) -> Run {
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    let report = engine::flush(&system(cli)).map_err(runtime)?;
    log::info!("flush: {}", report.summary());
    Ok(())
}

fn status(cli: &Cli, json: bool) -> Run {
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, false)?);
    let v = engine::status(&p, &system(cli)).map_err(runtime)?;
    if json {
        print(&(serde_json::to_string_pretty(&v).map_err(|e| runtime(e.to_string()))? + "\n"))
    } else {
        print(&engine::status_text(&v))
    }
}

fn run_hotplug(cli: &Cli) -> Run {
    let action = std::env::var("ACTION").unwrap_or_default();
    let iface = std::env::var("INTERFACE").unwrap_or_default();
    if !hotplug::handles(&action) {
        return Ok(());
    }
    let config = load(cli)?;
    if !hotplug::concerns(&config, &iface) {
        return Ok(());
    }
    log::debug!("hotplug {action} {iface}: re-applying");
    apply(cli, false)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    syslog::init(&cli.syslog, cli.verbose, level);
    let result = match &cli.command {
        Command::Render { format, routes } => render(&cli, *format, *routes),
        Command::Check => check(&cli),
        Command::DumpConfig => dump_config(&cli),
        Command::Apply { force } => apply(&cli, *force),
        Command::Flush => flush(&cli),
        Command::Status { json } => status(&cli, *json),
        Command::Hotplug => run_hotplug(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("connroute: {msg}");
            ExitCode::from(code)
        }
    }
}
