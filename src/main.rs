//! The `connroute` command line: parses arguments and wires the pipeline
//! stages together. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.

use connroute::apply::engine::{self, System};
use connroute::apply::lock::Lock;
use connroute::apply::nft::Nft;
use connroute::args::{self, Cli, Command, Format, Parsed};
use connroute::config::Config;
use connroute::facts::Facts;
use connroute::json_text::pretty;
use connroute::watch::{self, Applied};
use connroute::{hotplug, plan, service, syslog, ubus};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

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

/// netifd facts for the interfaces the config names, and the kernel's
/// main-table next hops for device-only gateways; strict: both must work.
fn facts(cli: &Cli, config: &Config, strict: bool) -> Result<Facts, Fail> {
    let mut facts = netifd_facts(cli, config, strict)?;
    if let Err(e) = connroute::kernel_facts::learn(config, &mut facts) {
        if strict {
            return Err(runtime(format!(
                "cannot read the main table's default routes: {e}"
            )));
        }
        log::warn!("main table's default routes unknown: {e}");
    }
    Ok(facts)
}

fn netifd_facts(cli: &Cli, config: &Config, strict: bool) -> Result<Facts, Fail> {
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

/// `v` as indented JSON and a newline (one compact serializer, re-indented).
fn print_json<T: serde::Serialize>(v: &T) -> Run {
    let compact = serde_json::to_vec(v).map_err(|e| runtime(e.to_string()))?;
    print(&(pretty(&compact) + "\n"))
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
        Format::Json => print_json(&p.ruleset),
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
    apply_locked(cli, force, &mut || false).map(drop)
}

/// Takes the lock, then — unless a stop came in (`stop`) or the service is
/// disabled — loads the config and netifd state and applies.
fn apply_locked(cli: &Cli, force: bool, stop: &mut dyn FnMut() -> bool) -> Result<Applied, Fail> {
    let _lock = Lock::acquire(&cli.lock, Duration::from_secs(cli.lock_timeout)).map_err(runtime)?;
    if stop() {
        return Ok(Applied::Skipped);
    }
    if let Some(init) = &cli.init_script {
        if !service::enabled(init, Duration::from_secs(10)) {
            log::info!("{} is disabled: nothing applied", init.display());
            return Ok(Applied::Skipped);
        }
    }
    let config = load(cli)?;
    let p = plan::plan(&config, &facts(cli, &config, true)?);
    for g in p.gateways.iter().filter(|g| !g.active) {
        log::info!("gateway {} inactive: {}", g.name, g.reason);
    }
    match engine::apply(&p, &system(cli), force) {
        Ok(report) => {
            log::info!("apply: {}", report.summary());
            Ok(if report.changes.is_empty() {
                Applied::Unchanged
            } else {
                Applied::Changed(report.summary())
            })
        }
        Err(e) => {
            log::error!("apply failed, previous state kept: {e}");
            Err(runtime(format!("apply failed, previous state kept: {e}")))
        }
    }
}

struct Watched<'a>(&'a Cli);

impl watch::Target for Watched<'_> {
    fn apply(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<Applied, String> {
        apply_locked(self.0, false, stop).map_err(|Fail(_, e)| e)
    }
}

fn run_watch(cli: &Cli) -> Run {
    let signals = watch::signals::Signals::install()
        .map_err(|e| runtime(format!("cannot set up signal handling: {e}")))?;
    load(cli)?; // a bad config at start is a usage error (exit 2)
    watch::run(&mut Watched(cli), signals, watch::Timing::default()).map_err(runtime)
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
        print_json(&v)
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

/// This process's peak resident set size (children such as nft excluded).
fn peak_rss_kib() -> libc::c_long {
    // SAFETY: getrusage fills the zeroed struct we pass; no other effects.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
        usage.ru_maxrss
    } else {
        -1
    }
}

fn main() -> ExitCode {
    // Not UTF-8: a usage error, rather than a path silently mangled.
    let argv: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let parsed = argv
        .map_err(|a| args::UsageError(format!("argument {} is not UTF-8", a.to_string_lossy())))
        .and_then(args::parse);
    let cli = match parsed {
        Ok(Parsed::Run(cli)) => cli,
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
    let result = match &cli.command {
        Command::Render { format, routes } => render(&cli, *format, *routes),
        Command::Check => check(&cli),
        Command::DumpConfig => dump_config(&cli),
        Command::Apply { force } => apply(&cli, *force),
        Command::Flush => flush(&cli),
        Command::Status { json } => status(&cli, *json),
        Command::Hotplug => run_hotplug(&cli),
        Command::Watch => run_watch(&cli),
    };
    log::debug!("peak RSS {} KiB", peak_rss_kib());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("connroute: {msg}");
            ExitCode::from(code)
        }
    }
}
