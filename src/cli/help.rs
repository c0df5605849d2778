//! The help text: one table of commands (word, summary, own options) and
//! the global options, shared by `--help`, `help CMD` and usage errors.

use super::args::{Command, Format};

/// A subcommand: its word, help text, own options' help, and the command
/// with its flags at their defaults.
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) about: &'static str,
    pub(super) options: &'static str,
    pub(super) default: Command,
}

pub(super) const COMMANDS: &[Spec] = &[
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
        options: "      --diff               Also decide everything apply would (devices, foreign\n                           routes, drift) and print what it would add (+),\n                           change (~) and remove (-); changes nothing\n",
        default: Command::Check { diff: false },
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
      --state <FILE>         What the last apply loaded, so an unchanged apply runs
                             no nft [default: /var/run/connroute.state]
      --rt-tables <FILE>     File naming connroute's routing tables
                             [default: /etc/iproute2/rt_tables.d/connroute.conf]
      --no-rt-tables         Do not write the routing table names file
      --ids <FILE>           Persisted mark/table allocations (written by apply)
                             [default: /etc/connroute/ids]
      --timeout <SECS>       Whole deadline of each nft or ubus call, exact [default:
                             30 for nft plus 1 s per 100 KiB of batch; 10 for ubus]
      --syslog <SOCKET>      syslog socket for log lines [default: /dev/log]
      --init-script <FILE>   Apply only while `FILE enabled` succeeds, checked after
                             taking the lock (OpenWrt: /etc/init.d/connroute)
  -h, --help                 Print help
  -V, --version              Print version
";

/// Help for `command`, or the whole program.
pub(super) fn help(command: Option<&Command>) -> String {
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
