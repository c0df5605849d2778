//! A tiny `log` backend: syslog datagrams to `/dev/log` (what OpenWrt's
//! logd and systemd-journald read; tag `connroute`), mirrored to stderr with
//! `-v` or when no syslog socket is there.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

struct Logger {
    socket: Option<UnixDatagram>,
    stderr: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn severity(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let sent = self.socket.as_ref().is_some_and(|s| {
            // facility daemon (3)
            let line = format!(
                "<{}>connroute[{}]: {}",
                3 * 8 + severity(r.level()),
                std::process::id(),
                r.args()
            );
            s.send(line.as_bytes()).is_ok()
        });
        if self.stderr || !sent {
            let _ = writeln!(
                std::io::stderr(),
                "connroute: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger. `path` is the syslog socket; `mirror` copies every
/// line to stderr.
pub fn init(path: &str, mirror: bool, level: LevelFilter) {
    let socket = UnixDatagram::unbound()
        .ok()
        .filter(|s| s.connect(path).is_ok());
    let logger = LOGGER.get_or_init(|| Logger {
        socket,
        stderr: mirror,
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}
