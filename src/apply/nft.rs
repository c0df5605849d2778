//! Runs the `nft` binary: JSON batches in, output captured, each call under
//! one deadline ([`super::child`]) so a wedged nft can neither hold the lock
//! forever nor outlive connroute.

use super::child::{self, ChildError};
use std::path::PathBuf;
use std::time::Duration;

/// How to call nft.
#[derive(Debug, Clone)]
pub struct Nft {
    /// Binary to run (`nft` on PATH by default).
    pub program: PathBuf,
    /// Longest time a call may take (`--timeout`: exact).
    pub timeout: Duration,
    /// Add [`PER_100_KIB`] per 100 KiB of batch (the default timeout
    /// only; see [`Nft::deadline`]).
    pub scale: bool,
}

/// Default of [`Nft::timeout`] (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra time per 100 KiB of batch: nft's time grows with the ruleset
/// (a 10,000-rule check takes longer than 30 s on a small router).
pub const PER_100_KIB: Duration = Duration::from_secs(1);

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: PathBuf::from("nft"),
            timeout: DEFAULT_TIMEOUT,
            scale: true,
        }
    }
}

/// What one nft call printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
}

impl Nft {
    /// The deadline of a call fed `input` bytes: the timeout, plus
    /// [`PER_100_KIB`] for every started 100 KiB when `scale` is set.
    pub fn deadline(&self, input: usize) -> Duration {
        let blocks = if self.scale {
            input.div_ceil(100 * 1024) as u32
        } else {
            0
        };
        self.timeout
            .saturating_add(PER_100_KIB.saturating_mul(blocks))
    }

    /// Runs nft with stdin fed as `pieces`, written in order without
    /// joining them (none: stdin is `/dev/null`); the deadline counts
    /// their total length.
    fn call(&self, args: &[&str], pieces: &[&[u8]], what: &str) -> Result<Output, ChildError> {
        let len = pieces.iter().map(|p| p.len()).sum();
        let running = child::start(&self.program, args, len > 0, what)?;
        let out = running.finish(pieces, self.deadline(len))?;
        Ok(Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }

    /// Runs `nft ARGS`, feeding `stdin`; fails with nft's own error text.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Result<Output, ChildError> {
        self.call(args, &[stdin], &format!("running `nft {}`", args.join(" ")))
    }

    /// Loads a JSON batch (`nft -j -f -`) fed as pieces in order.
    pub fn load(&self, json: &[&[u8]]) -> Result<(), ChildError> {
        self.call(&["-j", "-f", "-"], json, "loading the ruleset")
            .map(drop)
    }

    /// Checks a JSON batch without applying it (`nft -c -j -f -`).
    pub fn check(&self, json: &[u8]) -> Result<(), ChildError> {
        self.call(&["-c", "-j", "-f", "-"], &[json], "checking the ruleset")
            .map(drop)
    }

    /// `nft -j ARGS` parsed as JSON.
    pub fn list(&self, args: &[&str]) -> Result<serde_json::Value, ChildError> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let what = format!("running `nft -j {}`", args.join(" "));
        let out = self.call(&all, &[], &what)?;
        serde_json::from_str(&out.stdout).map_err(|e| ChildError::BadOutput {
            program: self.program.display().to_string(),
            what,
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_batch() {
        let nft = Nft::default();
        assert_eq!(nft.deadline(0), Duration::from_secs(30));
        assert_eq!(nft.deadline(1), Duration::from_secs(31));
        assert_eq!(nft.deadline(100 * 1024), Duration::from_secs(31));
        assert_eq!(nft.deadline(128 * 1024), Duration::from_secs(32));
        let nft = Nft {
            timeout: Duration::from_secs(2),
            ..Nft::default()
        };
        assert_eq!(nft.deadline(10 * 1024 * 1024), Duration::from_secs(2 + 103));
        let exact = Nft {
            scale: false,
            ..nft
        };
        assert_eq!(exact.deadline(10 * 1024 * 1024), Duration::from_secs(2));
    }

    #[test]
    fn an_explicit_timeout_is_the_whole_deadline() {
        let dir = std::env::temp_dir().join(format!("connroute-nft-exact-{}", std::process::id()));
        let fake = dir.join("nft");
        child::tests::script(&fake, "#!/bin/sh\nexec sleep 60\n");
        let nft = Nft {
            program: fake.clone(),
            timeout: Duration::from_secs(1),
            scale: false,
        };
        let started = std::time::Instant::now();
        let e = nft.load(&[&vec![b' '; 300 * 1024]]).unwrap_err();
        let took = started.elapsed();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            e.to_string().contains("timed out after 1 s while loading"),
            "{e}"
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_millis(1800),
            "{took:?}"
        );
    }

    #[test]
    fn a_hung_load_names_the_step_and_the_batch_size() {
        let dir = std::env::temp_dir().join(format!("connroute-nft-test-{}", std::process::id()));
        let fake = dir.join("nft");
        child::tests::script(&fake, "#!/bin/sh\nexec sleep 60\n");
        let nft = Nft {
            program: fake.clone(),
            timeout: Duration::ZERO,
            scale: true,
        };
        let e = nft
            .load(&[&[b' '; 100 * 1024], &[b' '; 28 * 1024]])
            .unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            e.to_string(),
            format!(
                "{} timed out after 2 s while loading the ruleset (128 KiB)",
                fake.display()
            )
        );
        assert_eq!(e.exit_code(), 1);
    }
}
