//! Serialises concurrent runs (hotplug events and reloads arrive together)
//! with an advisory `flock` on a lock file.
//!
//! The lock path is opened with `O_NOFOLLOW` (a symlink planted there,
//! dangling or not, is refused and its target never created) and
//! `O_NONBLOCK` (a FIFO there cannot block the open), then must be a regular
//! file. The wait polls a non-blocking `flock` with backoff, so the timeout
//! always bounds it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Held while alive; the kernel drops the lock when the file closes.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Why the lock could not be taken (all runtime failures, exit code 1).
#[derive(Debug)]
pub enum LockError {
    /// The lock path is a symbolic link.
    Symlink(PathBuf),
    /// The lock path is a FIFO, device, socket or directory.
    NotRegular(PathBuf, &'static str),
    /// Opening or locking failed.
    Io(PathBuf, io::Error),
    /// Another run held the lock for the whole timeout.
    TimedOut(PathBuf, Duration),
}

impl LockError {
    /// Process exit code: always 1 (a runtime failure).
    pub fn exit_code(&self) -> u8 {
        1
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Symlink(p) => write!(
                f,
                "lock file {} is a symbolic link; refusing to follow it",
                p.display()
            ),
            LockError::NotRegular(p, kind) => write!(
                f,
                "lock file {} is a {kind}, not a regular file",
                p.display()
            ),
            LockError::Io(p, e) => write!(f, "cannot lock {}: {e}", p.display()),
            LockError::TimedOut(p, t) => write!(
                f,
                "another connroute run holds {} for more than {} s; is one stuck?",
                p.display(),
                t.as_secs()
            ),
        }
    }
}

impl std::error::Error for LockError {}

impl From<LockError> for String {
    fn from(e: LockError) -> String {
        e.to_string()
    }
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "FIFO"
    } else if t.is_dir() {
        "directory"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

/// Opens (creating if missing) the lock file without following a symlink
/// or blocking on a FIFO, and checks it is a regular file.
fn open(path: &Path) -> Result<File, LockError> {
    // Refuse special files before opening them at all: opening some devices
    // has effects (a watchdog starts counting). fstat below closes the race.
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(LockError::Symlink(path.into())),
        Ok(m) if !m.file_type().is_file() => {
            return Err(LockError::NotRegular(path.into(), kind_name(m.file_type())));
        }
        _ => {}
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => LockError::Symlink(path.into()),
            // A FIFO without a reader (O_WRONLY|O_NONBLOCK), a directory.
            Some(libc::ENXIO) | Some(libc::EISDIR) => match std::fs::symlink_metadata(path) {
                Ok(m) => LockError::NotRegular(path.into(), kind_name(m.file_type())),
                Err(_) => LockError::Io(path.into(), e),
            },
            _ => LockError::Io(path.into(), e),
        })?;
    let t = file
        .metadata()
        .map_err(|e| LockError::Io(path.into(), e))?
        .file_type();
    if !t.is_file() {
        return Err(LockError::NotRegular(path.into(), kind_name(t)));
    }
    Ok(file)
}

impl Lock {
    /// Takes the lock, waiting at most `timeout` for another run to finish.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, LockError> {
        let held = Lock::acquire_unless(path, timeout, &mut || false)?;
        Ok(held.expect("never asked to stop"))
    }

    /// [`Lock::acquire`], giving up (`None`) as soon as `stop()` says so
    /// while it waits: `connroute watch` asked to stop does not wait out
    /// another run's lock (asked at every retry, at most 200 ms apart).
    pub fn acquire_unless(
        path: &Path,
        timeout: Duration,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Lock>, LockError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = open(path)?;
        // checked: a huge timeout means "about forever", not a panic.
        let start = Instant::now();
        let deadline = start
            .checked_add(timeout)
            .unwrap_or(start + Duration::from_secs(1 << 30));
        let mut pause = Duration::from_millis(5);
        loop {
            // SAFETY: flock on a file descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Some(Lock { _file: file }));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {}
                Some(libc::EINTR) => continue,
                _ => return Err(LockError::Io(path.into(), err)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::TimedOut(path.into(), timeout));
            }
            if stop() {
                return Ok(None);
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("connroute-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_dangling_symlink_is_refused_and_its_target_not_created() {
        let d = dir("symlink");
        let target = d.join("target");
        let link = d.join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Lock::acquire(&link, Duration::ZERO).unwrap_err();
        assert!(matches!(e, LockError::Symlink(_)), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!target.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_fifo_is_an_error_not_a_hang() {
        let d = dir("fifo");
        let fifo = d.join("lock");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = Lock::acquire(&fifo, Duration::from_secs(600)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("lock file {} is a FIFO, not a regular file", fifo.display())
        );
        assert_eq!(e.exit_code(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_stop_request_ends_the_wait_at_the_next_retry() {
        let d = dir("stop");
        let path = d.join("lock");
        let _held = Lock::acquire(&path, Duration::ZERO).unwrap();
        let mut asked = 0;
        let mut stop = || {
            asked += 1;
            asked == 3
        };
        let got = Lock::acquire_unless(&path, Duration::from_secs(600), &mut stop).unwrap();
        assert!(got.is_none());
        assert_eq!(asked, 3, "asked at every retry, given up at once");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_directory_is_an_error() {
        let d = dir("dir");
        let e = Lock::acquire(&d, Duration::ZERO).unwrap_err();
        assert!(matches!(e, LockError::NotRegular(_, "directory")), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_timeout_bounds_the_wait_and_the_lock_is_released_on_drop() {
        let d = dir("timeout");
        let path = d.join("lock");
        let held = Lock::acquire(&path, Duration::ZERO).unwrap();
        // A second open file description conflicts, even in this process.
        let e = Lock::acquire(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, LockError::TimedOut(..)), "{e}");
        assert!(e.to_string().contains("is one stuck?"), "{e}");
        drop(held);
        // Not ZERO: a child another test forks in this process shares the
        // lock's open file until its exec (long under qemu-user).
        assert!(Lock::acquire(&path, Duration::from_secs(10)).is_ok());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        let _ = std::fs::remove_dir_all(&d);
    }
}
