//! Command-line arguments: a small hand-written parser.
//!
//! clap was the first choice; on mipsel it cost about 180 KiB of the 700 KiB
//! budget (see README, "Embedded builds"), more than the whole ruleset
//! renderer. The grammar here is fixed and small: global options may appear
//! before or after the subcommand, long options take `--name value` or
//! `--name=value`, short ones `-c value` or `-cvalue`.

use std::fmt;
use std::path::PathBuf;

/// Output format of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Exactly what is fed to `nft -j -f -`.
    Json,
    /// nft's text syntax.
    Nft,
}

/// The subcommand and its own flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Print the nftables batch or the routing plan.
    Render {
        /// Ruleset format.
        format: Format,
        /// Print routes and ip rules instead of the ruleset.
        routes: bool,
    },
    /// Validate the config (and the ruleset with `nft -c`).
    Check,
    /// Print the config in `uci export` form.
    DumpConfig,
    /// Make the system match the config.
    Apply {
        /// Reload the nft table even when identical.
        force: bool,
    },
    /// Remove everything connroute owns.
    Flush,
    /// Show gateways, rules, counters and drift.
    Status {
        /// Machine-readable output.
        json: bool,
    },
    /// Handle a netifd hotplug event.
    Hotplug,
    /// Apply, then follow the kernel and re-apply on changes.
    Watch,
}

/// Everything the command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Config file.
    pub config: PathBuf,
    /// Mirror log lines to stderr, with debug detail.
    pub verbose: bool,
    /// nft binary.
    pub nft: PathBuf,
    /// ubus binary.
    pub ubus: PathBuf,
    /// Lock file serialising runs.
    pub lock: PathBuf,
    /// Seconds to wait for another run's lock.
    pub lock_timeout: u64,
    /// File naming connroute's routing tables.
    pub rt_tables: PathBuf,
    /// Do not write the routing table names file.
    pub no_rt_tables: bool,
    /// syslog socket path.
    pub syslog: String,
    /// Init script whose `enabled` is checked after taking the lock.
    pub init_script: Option<PathBuf>,
    /// What to do.
    pub command: Command,
}

/// What parsing decided instead of a runnable command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run this.
    Run(Cli),
    /// Print this text on stdout and exit 0 (`--help`, `--version`).
    Print(String),
}

/// A usage error (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nTry 'connroute --help'.", self.0)
    }
}

/// A subcommand: its word, help text, own options' help, and the command
/// with its flags at their defaults.
struct Spec {
    name: &'static str,
    about: &'static str,
    options: &'static str,
    default: Command,
}

const COMMANDS: &[Spec] = &[
    Spec {
        name: "render",
        about: "Print the nftables batch (or routing plan) apply would use; changes nothing",
        options: "      --format <json|nft>  json: what is fed to `nft -j -f -`; nft: nft's text syntax [default: json]\n      --routes             Print the routes and ip rules instead\n",
        default: Command::Render {
            format: Format::Json,
            routes: false,
        },
    },
    Spec {
        name: "check",
        about: "Validate the config, and the ruleset with `nft -c` when possible",
        options: "",
        default: Command::Check,
    },
    Spec {
        name: "dump-config",
        about: "Print the parsed config in `uci export` format",
        options: "",
        default: Command::DumpConfig,
    },
    Spec {
        name: "apply",
        about: "Make the system match the config (idempotent, atomic, rolled back on failure)",
        options: "      --force              Reload the nft table even when it is identical\n",
        default: Command::Apply { force: false },
    },
    Spec {
        name: "flush",
        about: "Remove connroute's nft table, ip rules and routes, and nothing else",
        options: "",
        default: Command::Flush,
    },
    Spec {
        name: "status",
        about: "Show gateways, rules, counters and drift from the config",
        options: "      --json               Machine-readable output\n",
        default: Command::Status { json: false },
    },
    Spec {
        name: "hotplug",
        about: "Handle a netifd hotplug event (ACTION, INTERFACE from the environment)",
        options: "",
        default: Command::Hotplug,
    },
    Spec {
        name: "watch",
        about: "Apply, then follow the kernel: re-apply within 2 s when routes, links or the table change",
        options: "",
        default: Command::Watch,
    },
];

const GLOBAL_HELP: &str = "\
Options (before or after the command):
  -c, --config <FILE>        Config file [default: /etc/config/connroute]
  -v, --verbose              Also print log lines on stderr, with debug detail
      --nft <FILE>           nft binary [default: nft]
      --ubus <FILE>          ubus binary (netifd interface state) [default: ubus]
      --lock <FILE>          Lock file serialising runs [default: /var/run/connroute.lock]
      --lock-timeout <SECS>  Seconds to wait for another run's lock [default: 30]
      --rt-tables <FILE>     File naming connroute's routing tables
                             [default: /etc/iproute2/rt_tables.d/connroute.conf]
      --no-rt-tables         Do not write the routing table names file
  -h, --help                 Print help
  -V, --version              Print version
";

fn help(command: Option<&Command>) -> String {
    let mut out = String::new();
    let spec = command.and_then(|c| {
        let kind = std::mem::discriminant(c);
        COMMANDS
            .iter()
            .find(|s| std::mem::discriminant(&s.default) == kind)
    });
    match spec {
        Some(Spec {
            name,
            about,
            options,
            ..
        }) => {
            out.push_str(&format!("{about}\n\nUsage: connroute [OPTIONS] {name}"));
            if !options.is_empty() {
                out.push_str(&format!(" [{name} OPTIONS]\n\n{name} options:\n{options}"));
            } else {
                out.push('\n');
            }
        }
        None => {
            out.push_str(
                "Connection-based policy routing for OpenWrt and Linux gateways\n\n\
                 Usage: connroute [OPTIONS] <COMMAND>\n\nCommands:\n",
            );
            for s in COMMANDS {
                out.push_str(&format!("  {:<12} {}\n", s.name, s.about));
            }
        }
    }
    out.push('\n');
    out.push_str(GLOBAL_HELP);
    out
}

/// Flags that never take a value (for a precise error on `--flag=value`).
fn known_flag(name: &str) -> bool {
    matches!(
        name,
        "--verbose" | "--no-rt-tables" | "--routes" | "--force" | "--json" | "--help" | "--version"
    )
}

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut cli = Cli {
        config: "/etc/config/connroute".into(),
        verbose: false,
        nft: "nft".into(),
        ubus: "ubus".into(),
        lock: "/var/run/connroute.lock".into(),
        lock_timeout: 30,
        rt_tables: "/etc/iproute2/rt_tables.d/connroute.conf".into(),
        no_rt_tables: false,
        syslog: "/dev/log".into(),
        init_script: None,
        command: Command::Check, // replaced by the command word below
    };
    let mut command: Option<Command> = None;
    let mut want_help = false;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "--" || arg == "-" || !arg.starts_with('-') {
            if command.is_some() || arg.starts_with('-') {
                return err(format!("unexpected argument '{arg}'"));
            }
            match COMMANDS.iter().find(|c| c.name == arg) {
                Some(c) => command = Some(c.default),
                None => return err(format!("unknown command '{arg}'")),
            }
            continue;
        }
        // Split `--name=value` and `-cvalue`; remember whether a value came inline.
        let (name, mut inline) = match arg.strip_prefix("--") {
            Some(long) => match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.clone(), None),
            },
            None => {
                let mut chars = arg.chars();
                chars.next();
                let flag: String = chars.next().map(String::from).unwrap_or_default();
                let rest: String = chars.collect();
                (format!("-{flag}"), (!rest.is_empty()).then_some(rest))
            }
        };
        let flag = inline.is_none();
        let mut value = |what: &str| -> Result<String, UsageError> {
            match inline.take().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => err(format!("option '{name}' needs a value ({what})")),
            }
        };
        match (name.as_str(), &mut command) {
            ("-c" | "--config", _) => cli.config = value("a file")?.into(),
            ("--nft", _) => cli.nft = value("a program")?.into(),
            ("--ubus", _) => cli.ubus = value("a program")?.into(),
            ("--lock", _) => cli.lock = value("a file")?.into(),
            ("--rt-tables", _) => cli.rt_tables = value("a file")?.into(),
            ("--syslog", _) => cli.syslog = value("a socket path")?,
            ("--init-script", _) => cli.init_script = Some(value("a file")?.into()),
            ("--lock-timeout", _) => {
                let v = value("seconds")?;
                cli.lock_timeout = v.parse().map_err(|_| {
                    UsageError(format!(
                        "option '--lock-timeout': '{v}' is not a number of seconds"
                    ))
                })?;
            }
            ("--format", Some(Command::Render { format, .. })) => {
                *format = match value("json or nft")?.as_str() {
                    "json" => Format::Json,
                    "nft" => Format::Nft,
                    other => {
                        return err(format!(
                            "option '--format': '{other}' is not one of json, nft"
                        ));
                    }
                }
            }
            ("-v" | "--verbose", _) if flag => cli.verbose = true,
            ("--no-rt-tables", _) if flag => cli.no_rt_tables = true,
            ("--routes", Some(Command::Render { routes, .. })) if flag => *routes = true,
            ("--force", Some(Command::Apply { force })) if flag => *force = true,
            ("--json", Some(Command::Status { json })) if flag => *json = true,
            ("-h" | "--help", _) if flag => want_help = true,
            ("-V" | "--version", _) if flag => {
                return Ok(Parsed::Print(format!(
                    "connroute {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            _ if !flag && arg.starts_with("--") && known_flag(&name) => {
                return err(format!("option '{name}' takes no value"));
            }
            _ => return err(format!("unexpected argument '{arg}'")),
        }
    }
    if want_help {
        return Ok(Parsed::Print(help(command.as_ref())));
    }
    cli.command = match command {
        Some(c) => c,
        None => return err(format!("a command is required\n\n{}", help(None))),
    };
    Ok(Parsed::Run(cli))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Cli {
        match parse(args.iter().copied()) {
            Ok(Parsed::Run(cli)) => cli,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn fails(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(UsageError(m)) => m,
            other => panic!("{args:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let cli = run(&["check"]);
        assert_eq!(cli.config, PathBuf::from("/etc/config/connroute"));
        assert_eq!(cli.lock_timeout, 30);
        assert!(!cli.verbose && !cli.no_rt_tables);
        assert_eq!(cli.command, Command::Check);
    }

    #[test]
    fn globals_anywhere_and_both_value_spellings() {
        let a = run(&["-c", "/x", "render", "--format", "nft", "-v"]);
        let b = run(&["render", "--config=/x", "--format=nft", "--verbose"]);
        let c = run(&["-c/x", "-v", "render", "--format", "nft"]);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a.command,
            Command::Render {
                format: Format::Nft,
                routes: false
            }
        );
        let d = run(&["--lock-timeout", "0", "--no-rt-tables", "apply", "--force"]);
        assert_eq!(d.lock_timeout, 0);
        assert!(d.no_rt_tables);
        assert_eq!(d.command, Command::Apply { force: true });
        assert_eq!(
            run(&["status", "--json"]).command,
            Command::Status { json: true }
        );
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert!(fails(&[]).contains("a command is required"));
        assert!(fails(&["frobnicate"]).contains("unknown command 'frobnicate'"));
        assert!(fails(&["check", "apply"]).contains("unexpected argument 'apply'"));
        assert!(fails(&["check", "--force"]).contains("unexpected argument '--force'"));
        assert!(fails(&["render", "--format", "xml"]).contains("not one of json, nft"));
        assert!(fails(&["check", "-c"]).contains("'-c' needs a value"));
        assert!(fails(&["--lock-timeout=x", "check"]).contains("not a number"));
        assert!(fails(&["apply", "--force=yes"]).contains("takes no value"));
        assert!(fails(&["-vx", "check"]).contains("unexpected argument '-vx'"));
    }

    #[test]
    fn help_and_version() {
        let Ok(Parsed::Print(top)) = parse(["--help"]) else {
            panic!()
        };
        for c in COMMANDS {
            assert!(top.contains(c.name), "{} missing from help", c.name);
        }
        let Ok(Parsed::Print(sub)) = parse(["render", "-h"]) else {
            panic!()
        };
        assert!(sub.contains("--format") && sub.contains("--config"));
        let Ok(Parsed::Print(v)) = parse(["-V"]) else {
            panic!()
        };
        assert_eq!(v, format!("connroute {}\n", env!("CARGO_PKG_VERSION")));
    }
}
