//! The help text: one table of commands (word, summary, own options) and
//! the global options, shared by `--help`, `help CMD` and usage errors.

use super::args::{Command, Format};

/// A subcommand: its word, one-line summary, what it does in detail, its
/// own options' help, and the command with its flags at their defaults.
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) about: &'static str,
    pub(super) details: &'static str,
    pub(super) options: &'static str,
    pub(super) default: Command,
}

pub(super) const COMMANDS: &[Spec] = &[
    Spec {
        name: "render",
        about: "Print the nftables batch (or routing plan) apply would use; changes nothing",
        details: "Reads the config (and netifd state when it names interfaces) and prints what\napply would install; needs no privileges. With globals.enabled '0' apply\ninstalls nothing: the output is empty and a note says so on stderr.\n",
        options: "      --format <json|nft>  json: what is fed to `nft -j -f -`; nft: nft's text syntax [default: json]\n      --routes             Print the routes and ip rules instead\n",
        default: Command::Render {
            format: Format::Json,
            routes: false,
        },
    },
    Spec {
        name: "check",
        about: "Validate the config and its ruleset (`nft -c`); changes nothing",
        details: "Validates the config (exit 2 with file, line and option on an error) and has\n`nft -c` check the ruleset. Prints \"FILE: config ok; ...\" on stdout.\nThe nft part (and --diff) needs root (CAP_NET_ADMIN): without it, exit 1.\n",
        options: "      --diff               Also decide everything apply would (devices, foreign\n                           routes, drift) and print what it would add (+),\n                           change (~) and remove (-); changes nothing\n",
        default: Command::Check { diff: false },
    },
    Spec {
        name: "dump-config",
        about: "Print the parsed config in `uci export` format",
        details: "Parses the config as UCI and prints it back as `uci export` would;\nneeds no privileges.\n",
        options: "",
        default: Command::DumpConfig,
    },
    Spec {
        name: "apply",
        about: "Make the system match the config (idempotent, atomic, rolled back on failure)",
        details: "Installs the nft table `inet connroute`, ip rules and routes (protocol 197)\nfrom the config; changes nothing connroute did not create. Gateways that are\ndown or lack a device are skipped with a warning (exit 0). Needs root\n(CAP_NET_ADMIN). Exit 1 when the system cannot be changed (previous state kept).\n",
        options: "      --force              Reload the nft table even when it is identical\n",
        default: Command::Apply { force: false },
    },
    Spec {
        name: "flush",
        about: "Remove connroute's nft table, ip rules and routes, and nothing else",
        details: "Deletes connroute's nft table, its ip rules and routes (protocol 197),\nand temporary files killed runs left beside its run state and ids file\n(the allocations stay); reads no config. Needs root (CAP_NET_ADMIN).\n",
        options: "",
        default: Command::Flush,
    },
    Spec {
        name: "status",
        about: "Show gateways, rules, counters and drift from the config",
        details: "Compares the live nft table, ip rules and routes with the config. Needs root\n(CAP_NET_ADMIN). Exit 0 current, 1 state unreadable, 3 drift (live state\ndiffers), 4 current but an enabled gateway is inactive (drift wins).\n",
        options: "      --json               Machine-readable output\n",
        default: Command::Status { json: false },
    },
    Spec {
        name: "hotplug",
        about: "Handle a netifd hotplug event (ACTION, INTERFACE from the environment)",
        details: "Run by netifd's hotplug.d with ACTION and INTERFACE set: re-applies when an\ninterface the config uses goes up, down or changes; ignores other events.\nNeeds root (CAP_NET_ADMIN) when it re-applies.\n",
        options: "",
        default: Command::Hotplug,
    },
    Spec {
        name: "watch",
        about: "Apply, then follow the kernel: re-apply within about 1 s when routes, links or the table change",
        details: "Applies, then waits on rtnetlink and nftables notifications and re-applies\n(through the same path as apply) when a default route, a link or connroute's\nown state changes, after 300 ms without further events (at most 1 s after the\nfirst); its own changes are ignored, repairs that keep being undone back off.\nSIGHUP re-applies at once; SIGTERM or SIGINT stop it (exit 0).\nA bad config at start exits 2; later failures are logged. Needs root\n(CAP_NET_ADMIN).\n",
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
        Some(s) => {
            out.push_str(&format!("connroute {}: {}\n\n", s.name, s.about));
            out.push_str(s.details);
            out.push_str(&format!("\nUsage: connroute [OPTIONS] {}", s.name));
            if s.options.is_empty() {
                out.push('\n');
            } else {
                let n = s.name;
                out.push_str(&format!(" [{n} OPTIONS]\n\n{n} options:\n{}", s.options));
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
            out.push_str(
                "  help [CMD]   Print this help, or a command's (also: connroute CMD --help)\n\n\
                 Exit codes: 0 ok, 1 runtime failure (or not root), 2 bad config or usage;\n\
                 status also 3 (drift) and 4 (a gateway inactive).\n",
            );
        }
    }
    out.push('\n');
    out.push_str(GLOBAL_HELP);
    out
}
