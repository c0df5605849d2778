//! Command-line arguments: the `lexopt` crate splits them, this module
//! holds the grammar, the help text and every error message.
//!
//! Why lexopt: measured on mipsel (static, opt-level z, LTO), it adds
//! 8.4 KB to the binary, where clap adds 223 KB (a third of the 700 KiB
//! budget; see README, "Embedded builds"). lexopt only tokenises
//! (`--name value`, `--name=value`, `-c value`, `-cvalue`, `-vc FILE`,
//! `--`), so each error here names its option in our own words. Global
//! options may appear before or after the command; non-UTF-8 arguments are
//! refused (exit 2) rather than silently mangled.

use super::help::{COMMANDS, help};
use lexopt::{Arg, Parser};
use std::ffi::OsString;
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
    Check {
        /// Also decide everything apply would and print the changes.
        diff: bool,
    },
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
    /// Run-state file: what the last apply loaded.
    pub state: PathBuf,
    /// File naming connroute's routing tables.
    pub rt_tables: PathBuf,
    /// Do not write the routing table names file.
    pub no_rt_tables: bool,
    /// syslog socket path.
    pub syslog: String,
    /// File recording mark/table allocations (read by all, written by apply).
    pub ids: PathBuf,
    /// Deadline in seconds for each exchange with an external program
    /// (nft, ubus); `None`: each runner's default.
    pub timeout: Option<u64>,
    /// Init script whose `enabled` every apply checks after taking the
    /// lock; `None`: no check.
    pub init_script: Option<PathBuf>,
    /// What to do.
    pub command: Command,
}

impl Default for Cli {
    /// The documented defaults, with `check` as the command.
    fn default() -> Self {
        Cli {
            config: "/etc/config/connroute".into(),
            verbose: false,
            nft: "nft".into(),
            ubus: "ubus".into(),
            lock: "/var/run/connroute.lock".into(),
            lock_timeout: 30,
            state: "/var/run/connroute.state".into(),
            rt_tables: "/etc/iproute2/rt_tables.d/connroute.conf".into(),
            no_rt_tables: false,
            syslog: "/dev/log".into(),
            ids: "/etc/connroute/ids".into(),
            timeout: None,
            init_script: None,
            command: Command::Check { diff: false },
        }
    }
}

/// What parsing decided instead of a runnable command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run this.
    Run(Box<Cli>),
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

/// The option's name as typed (`-c`, `--config`), or the positional word.
enum Token {
    Option(String),
    Word(OsString),
}

fn token(arg: Arg<'_>) -> Token {
    match arg {
        Arg::Short(c) => Token::Option(format!("-{c}")),
        Arg::Long(l) => Token::Option(format!("--{l}")),
        Arg::Value(v) => Token::Word(v),
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Our own wording for lexopt's errors (its `Display` would pull in the
/// `OsStr` Debug escaper, about 1.3 KB on mipsel).
fn lexopt_error(e: lexopt::Error) -> UsageError {
    UsageError(match e {
        lexopt::Error::UnexpectedValue { option, .. } => {
            format!("option '{option}' takes no value")
        }
        lexopt::Error::MissingValue { option } => {
            format!("option '{}' needs a value", option.unwrap_or_default())
        }
        lexopt::Error::UnexpectedOption(o) => format!("unexpected argument '{o}'"),
        lexopt::Error::UnexpectedArgument(a) | lexopt::Error::NonUnicodeValue(a) => {
            format!("unexpected argument '{}'", a.to_string_lossy())
        }
        lexopt::Error::ParsingFailed { value, .. } => format!("cannot parse '{value}'"),
        lexopt::Error::Custom(_) => "invalid arguments".into(),
    })
}

/// An argument as text; not UTF-8 is a usage error rather than a path
/// silently mangled.
fn utf8(v: OsString) -> Result<String, UsageError> {
    v.into_string()
        .or_else(|a| err(format!("argument {} is not UTF-8", a.to_string_lossy())))
}

/// The value of option `name` (`--name value`, `--name=value`, `-nvalue`).
fn value(p: &mut Parser, name: &str, what: &str) -> Result<String, UsageError> {
    match p.value() {
        Ok(v) => utf8(v),
        Err(_) => err(format!("option '{name}' needs a value ({what})")),
    }
}

fn seconds(p: &mut Parser, name: &str) -> Result<u64, UsageError> {
    let v = value(p, name, "seconds")?;
    match v.parse() {
        Ok(n) if n <= MAX_SECONDS => Ok(n),
        Ok(_) => err(format!(
            "option '{name}': '{v}' is over {MAX_SECONDS} seconds"
        )),
        Err(_) => err(format!("option '{name}': '{v}' is not a number of seconds")),
    }
}

/// Longest `--timeout` / `--lock-timeout` (a day): any deadline computed
/// from them stays far from `Instant`'s limits.
pub const MAX_SECONDS: u64 = 86_400;

/// Applies a global option; false when `name` is not one.
fn global(p: &mut Parser, name: &str, cli: &mut Cli) -> Result<bool, UsageError> {
    match name {
        "-c" | "--config" => cli.config = value(p, name, "a file")?.into(),
        "--nft" => cli.nft = value(p, name, "a program")?.into(),
        "--ubus" => cli.ubus = value(p, name, "a program")?.into(),
        "--lock" => cli.lock = value(p, name, "a file")?.into(),
        "--state" => cli.state = value(p, name, "a file")?.into(),
        "--rt-tables" => cli.rt_tables = value(p, name, "a file")?.into(),
        "--ids" => cli.ids = value(p, name, "a file")?.into(),
        "--syslog" => cli.syslog = value(p, name, "a socket path")?,
        "--lock-timeout" => cli.lock_timeout = seconds(p, name)?,
        "--timeout" => cli.timeout = Some(seconds(p, name)?),
        "--init-script" => cli.init_script = Some(value(p, name, "a file")?.into()),
        "-v" | "--verbose" => cli.verbose = true,
        "--no-rt-tables" => cli.no_rt_tables = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Applies an option of the command given so far; false when it has none
/// by that name.
fn local(p: &mut Parser, name: &str, command: Option<&mut Command>) -> Result<bool, UsageError> {
    match (name, command) {
        ("--format", Some(Command::Render { format, .. })) => {
            *format = match value(p, name, "json or nft")?.as_str() {
                "json" => Format::Json,
                "nft" => Format::Nft,
                other => {
                    return err(format!(
                        "option '--format': '{other}' is not one of json, nft"
                    ));
                }
            }
        }
        ("--routes", Some(Command::Render { routes, .. })) => *routes = true,
        ("--force", Some(Command::Apply { force })) => *force = true,
        ("--diff", Some(Command::Check { diff })) => *diff = true,
        ("--json", Some(Command::Status { json })) => *json = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The command a word names.
fn command_word(word: OsString, given: Option<Command>) -> Result<Command, UsageError> {
    let word = utf8(word)?;
    if given.is_some() || word.starts_with('-') {
        return err(format!("unexpected argument '{word}'"));
    }
    match COMMANDS.iter().find(|c| c.name == word) {
        Some(c) => Ok(c.default),
        None => err(format!("unknown command '{word}'")),
    }
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut p = Parser::from_args(args);
    let mut cli = Cli::default();
    let mut command: Option<Command> = None;
    let mut want_help = false;
    while let Some(arg) = p.next().map_err(lexopt_error)? {
        let name = match token(arg) {
            Token::Word(w) => {
                command = Some(command_word(w, command)?);
                continue;
            }
            Token::Option(name) => name,
        };
        match name.as_str() {
            "-h" | "--help" => want_help = true,
            "-V" | "--version" => {
                if p.optional_value().is_some() {
                    return err(format!("option '{name}' takes no value"));
                }
                let version = format!("connroute {}\n", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Print(version));
            }
            _ if global(&mut p, &name, &mut cli)? => {}
            _ if local(&mut p, &name, command.as_mut())? => {}
            _ => return err(format!("unexpected argument '{name}'")),
        }
    }
    if want_help {
        return Ok(Parsed::Print(help(command.as_ref())));
    }
    cli.command = match command {
        Some(c) => c,
        None => return err(format!("a command is required\n\n{}", help(None))),
    };
    Ok(Parsed::Run(Box::new(cli)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Cli {
        match parse(args.iter().copied()) {
            Ok(Parsed::Run(cli)) => *cli,
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
        assert_eq!(cli.ids, PathBuf::from("/etc/connroute/ids"));
        assert_eq!(cli.timeout, None);
        assert!(!cli.verbose && !cli.no_rt_tables);
        assert_eq!(cli.command, Command::Check { diff: false });
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
        let e = run(&["-vc/x", "render", "--format=nft"]);
        assert_eq!(a, e);
        let t = run(&["--ids", "/w/ids", "check", "--timeout=5"]);
        assert_eq!((t.ids, t.timeout), (PathBuf::from("/w/ids"), Some(5)));
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
        assert!(fails(&["-vx", "check"]).contains("unexpected argument '-x'"));
        assert!(fails(&["--frob=1", "check"]).contains("unexpected argument '--frob'"));
        assert!(fails(&["-v=1", "check"]).contains("option '-v' takes no value"));
        assert!(fails(&["--version=1"]).contains("option '--version' takes no value"));
        assert!(fails(&["check", "-"]).contains("unexpected argument '-'"));
        assert!(fails(&["--timeout", "soon", "check"]).contains("'--timeout': 'soon' is not"));
        let huge = "18446744073709551615";
        assert!(fails(&["--timeout", huge, "check"]).contains("is over 86400 seconds"));
        assert!(fails(&["--lock-timeout", huge, "apply"]).contains("is over 86400 seconds"));
        assert!(fails(&["--timeout=86401", "check"]).contains("is over 86400 seconds"));
        assert_eq!(run(&["--timeout=86400", "check"]).timeout, Some(86_400));
        assert!(fails(&["check", "--ids"]).contains("option '--ids' needs a value"));
    }

    #[test]
    fn non_utf8_is_refused_wherever_it_is() {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xffx");
        for args in [vec!["check".as_ref(), "-c".as_ref(), bad], vec![bad]] {
            match parse(args) {
                Err(UsageError(m)) => assert!(m.contains("is not UTF-8"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
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
