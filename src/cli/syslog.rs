//! A tiny `log` backend: syslog datagrams to `/dev/log` (what OpenWrt's
//! logd and systemd-journald read; tag `connroute`), mirrored to stderr with
//! `-v` or when no syslog socket is there.
//!
//! Hand-written (about 100 lines, no crate) rather than a syslog crate: a
//! connected datagram socket is all it takes, and the crates measured for
//! issue 14 were over the size budget. When logd or journald restarts, the
//! socket we connected to is gone (`ECONNREFUSED`); [`Sink`] then connects
//! to the new one and resends the line there (lines that find no reader at
//! all go to stderr).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A datagram connection to a syslog socket that survives the reader's
/// restart.
pub struct Sink {
    path: String,
    socket: Mutex<Option<UnixDatagram>>,
}

/// A socket connected to `path`; a stuck reader cannot block us past 1 s.
fn connect(path: &str) -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    Some(s)
}

/// The reader's socket is closed (it restarted, or is restarting).
fn reader_gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOTCONN))
}

impl Sink {
    /// Connects to the syslog socket at `path` (later, if it is not there yet).
    pub fn new(path: &str) -> Sink {
        Sink {
            path: path.to_string(),
            socket: Mutex::new(connect(path)),
        }
    }

    /// Sends one datagram; false when it was not delivered. A reader that
    /// went away (`ECONNREFUSED`, `ENOTCONN`) or was never there gets one
    /// reconnect and one retry.
    pub fn send(&self, line: &[u8]) -> bool {
        let mut socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = socket.as_ref() {
            match s.send(line) {
                Ok(_) => return true,
                Err(e) if !reader_gone(&e) => return false,
                Err(_) => {}
            }
        }
        *socket = connect(&self.path);
        socket.as_ref().is_some_and(|s| s.send(line).is_ok())
    }
}

struct Logger {
    sink: Sink,
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

impl Logger {
    /// Sends one line to syslog (facility daemon); false when undelivered.
    fn send(&self, level: Level, msg: &dyn std::fmt::Display) -> bool {
        let line = format!(
            "<{}>connroute[{}]: {msg}",
            3 * 8 + severity(level),
            std::process::id(),
        );
        self.sink.send(line.as_bytes())
    }
}

/// Logs an error to syslog only, never to stderr: for the error `main`
/// prints itself, so that it shows once there. Nothing before [`init`].
pub fn error_to_syslog(msg: &dyn std::fmt::Display) {
    if let Some(l) = LOGGER.get() {
        l.send(Level::Error, msg);
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
        let sent = self.send(r.level(), r.args());
        if self.stderr || !sent {
            // One write (stderr is unbuffered: writeln! makes one per piece).
            let level = r.level().as_str().to_lowercase();
            let line = format!("connroute: {level}: {}\n", r.args());
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger. `path` is the syslog socket; `mirror` copies every
/// line to stderr.
pub fn init(path: &str, mirror: bool, level: LevelFilter) {
    let logger = LOGGER.get_or_init(|| Logger {
        sink: Sink::new(path),
        stderr: mirror,
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::Sink;
    use std::os::unix::net::UnixDatagram;
    use std::path::Path;
    use std::time::Duration;

    fn reader(path: &Path) -> UnixDatagram {
        let _ = std::fs::remove_file(path);
        let r = UnixDatagram::bind(path).unwrap();
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        r
    }

    fn got(r: &UnixDatagram) -> String {
        let mut buf = [0u8; 64];
        let n = r.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn reconnects_after_the_reader_restarts() {
        let dir = std::env::temp_dir().join(format!("connroute-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let first = reader(&path);
        let sink = Sink::new(path.to_str().unwrap());
        assert!(sink.send(b"one"));
        assert_eq!(got(&first), "one");
        // logd restarts: its socket closes, a new one is bound at the path.
        drop(first);
        let second = reader(&path);
        assert!(sink.send(b"two"));
        assert_eq!(got(&second), "two");
        // logd gone for good: not delivered, and no panic.
        drop(second);
        std::fs::remove_file(&path).unwrap();
        assert!(!sink.send(b"lost"));
        // ... and back: the next line reaches it.
        let third = reader(&path);
        assert!(sink.send(b"three"));
        assert_eq!(got(&third), "three");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_socket_is_not_delivered() {
        assert!(!Sink::new("/nonexistent/log").send(b"x"));
    }
}
