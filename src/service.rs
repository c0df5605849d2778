//! Whether the service is enabled, asked the way OpenWrt does:
//! `/etc/init.d/connroute enabled` (its rc.d start link exists). Checked
//! after taking the lock, so a run that waited for the lock while the
//! package was being removed installs nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// True when `INIT enabled` exits 0 within `timeout`. A missing init
/// script (the package is being removed) or one that hangs counts as
/// disabled; a hanging one is killed and reaped.
pub fn enabled(init: &Path, timeout: Duration) -> bool {
    let child = Command::new(init)
        .arg("enabled")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log::info!(
                "{} enabled: cannot run ({e}); treating the service as disabled",
                init.display()
            );
            return false;
        }
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                log::warn!(
                    "{} enabled did not answer within {}s; treating the service as disabled",
                    init.display(),
                    timeout.as_secs()
                );
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn exit_status_missing_script_and_hang() {
        let dir = std::env::temp_dir().join(format!("connroute-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Duration::from_secs(2);
        assert!(enabled(&script(&dir, "yes", "[ \"$1\" = enabled ]"), t));
        assert!(!enabled(&script(&dir, "no", "exit 1"), t));
        assert!(!enabled(&dir.join("missing"), t));
        let started = Instant::now();
        assert!(!enabled(
            &script(&dir, "hang", "exec sleep 30"),
            Duration::from_millis(200)
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
