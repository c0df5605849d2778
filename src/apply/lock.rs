//! Serialises concurrent runs (hotplug events and reloads arrive together)
//! with an advisory `flock` on a lock file.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// Held while alive; the kernel drops the lock when the file closes.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, waiting at most `timeout` for another run to finish.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock, String> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
        let start = Instant::now();
        loop {
            // SAFETY: flock on a file descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(format!("cannot lock {}: {err}", path.display()));
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "another connroute run holds {} for more than {}s; is one stuck?",
                    path.display(),
                    timeout.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}
