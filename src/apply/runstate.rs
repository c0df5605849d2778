//! The run-state file: what the last apply left in the kernel, so the next
//! run can tell "nothing changed" without running nft. One line:
//! `NETNS GENERATION FINGERPRINT DIGEST`: the network namespace it was
//! recorded in, the nf_tables generation after the load, the plan's
//! fingerprint and the hash of the table as listed right after the load
//! (`-` when it could not be taken without a race).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The recorded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    /// Inode of the network namespace (`/proc/self/ns/net`).
    pub netns: u64,
    /// nf_tables generation after the last load (or verification).
    pub generation: u32,
    /// The plan fingerprint loaded.
    pub fingerprint: String,
    /// Hash of the normalized table listing right after the load.
    pub digest: Option<u64>,
}

/// This process's network namespace inode (0 if unreadable).
pub fn netns() -> u64 {
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}

/// The run state recorded at `sys.state`, if any; refuses a path that is
/// not a regular file.
pub fn recorded(sys: &super::System) -> Result<Option<RunState>, super::error::ApplyError> {
    match &sys.state {
        Some(p) => RunState::load(p).map_err(super::error::ApplyError::State),
        None => Ok(None),
    }
}

impl RunState {
    /// Reads the file; `None` when absent or unreadable (nothing is trusted).
    pub fn read(path: &Path) -> Option<RunState> {
        RunState::load(path).ok().flatten()
    }

    /// Reads the file (`None` when absent or not parseable); an error
    /// naming the path when it is not a regular file or cannot be read.
    pub fn load(path: &Path) -> Result<Option<RunState>, String> {
        let bytes = crate::ids::read_regular(path)?;
        Ok(bytes.and_then(|b| RunState::parse(&String::from_utf8_lossy(&b))))
    }

    /// Parses the one line.
    pub fn parse(text: &str) -> Option<RunState> {
        let mut w = text.split_whitespace();
        let s = RunState {
            netns: w.next()?.parse().ok()?,
            generation: w.next()?.parse().ok()?,
            fingerprint: w.next()?.to_string(),
            digest: match w.next()? {
                "-" => None,
                d => Some(u64::from_str_radix(d, 16).ok()?),
            },
        };
        w.next().is_none().then_some(s)
    }

    /// The one line.
    pub fn line(&self) -> String {
        let digest = self
            .digest
            .map_or_else(|| "-".to_string(), |d| format!("{d:016x}"));
        format!(
            "{} {} {} {digest}\n",
            self.netns, self.generation, self.fingerprint
        )
    }

    /// True when nothing is at `path` or it holds a run-state line: only
    /// then may connroute write or remove it (a foreign file, a symlink or
    /// a FIFO put there by mistake is left alone).
    pub fn is_ours_or_absent(path: &Path) -> bool {
        match crate::ids::read_regular(path) {
            Ok(None) => true,
            Ok(Some(bytes)) => RunState::parse(&String::from_utf8_lossy(&bytes)).is_some(),
            Err(_) => false,
        }
    }

    /// Removes the file if it is connroute's (see [`Self::is_ours_or_absent`]).
    pub fn remove(path: &Path) {
        if path.exists() && Self::is_ours_or_absent(path) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Writes the file atomically (same-dir temp, no symlink followed);
    /// refuses to replace a file that is not connroute's run state.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if !Self::is_ours_or_absent(path) {
            return Err(std::io::Error::other(format!(
                "{} is not connroute's run state: left alone",
                path.display()
            )));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&tmp)?;
        let res = f.write_all(self.line().as_bytes());
        drop(f);
        match res.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let s = RunState {
            netns: 4026531992,
            generation: 17,
            fingerprint: "0ec28984c47e2c65".into(),
            digest: Some(0xabc),
        };
        assert_eq!(RunState::parse(&s.line()), Some(s.clone()));
        let none = RunState { digest: None, ..s };
        assert_eq!(RunState::parse(&none.line()), Some(none));
        for bad in ["", "1 2 fp", "1 2 fp zz", "x 2 fp -", "1 2 fp - extra"] {
            assert_eq!(RunState::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn writes_atomically() {
        let dir = std::env::temp_dir().join(format!("cr-runstate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state");
        let s = RunState {
            netns: 1,
            generation: 2,
            fingerprint: "f".into(),
            digest: None,
        };
        s.write(&p).unwrap();
        s.write(&p).unwrap();
        assert_eq!(RunState::read(&p), Some(s.clone()));
        // A foreign file there is neither replaced nor removed.
        let other = dir.join("foreign");
        std::fs::write(&other, "keep\n").unwrap();
        assert!(s.write(&other).is_err());
        RunState::remove(&other);
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep\n");
        RunState::remove(&p);
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
