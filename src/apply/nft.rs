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

/// `nft -j -f -` started ahead of its batch ([`Nft::start_load`]). nft
/// reads all of its input before it acts: until [`Load::feed`] ends that
/// input nothing commits, and dropping it kills and reaps nft.
pub struct Load(child::Running);

const LOAD_ARGS: &[&str] = &["-j", "-f", "-"];
const LOADING: &str = "loading the ruleset";

impl Load {
    /// Feeds the batch, given as pieces written in order, and waits for
    /// nft's verdict, under the deadline of a batch that size
    /// ([`Nft::deadline`]) counted from now: however long nft waited for
    /// its batch (another run's lock, a slow netifd), the load has the
    /// whole of it. The wait itself is bounded by what the run waits for.
    pub fn feed(self, nft: &Nft, json: &[&[u8]]) -> Result<(), ChildError> {
        let len = json.iter().map(|p| p.len()).sum();
        let mut running = self.0;
        running.restart_clock();
        running.finish(json, nft.deadline(len)).map(drop)
    }

    /// Whether nft has exited while it waited (killed, say): then it
    /// cannot load, and a fresh one is started instead.
    pub fn exited(&self) -> bool {
        self.0.exited()
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

    /// Starts `nft -j -f -` before its batch is ready (see [`Load`]).
    pub fn start_load(&self) -> Result<Load, ChildError> {
        child::start(&self.program, LOAD_ARGS, true, LOADING).map(Load)
    }

    /// Loads a JSON batch (`nft -j -f -`) fed as pieces in order.
    pub fn load(&self, json: &[&[u8]]) -> Result<(), ChildError> {
        self.call(LOAD_ARGS, json, LOADING).map(drop)
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

    /// A fake nft that records its start and whether its input ended.
    fn recording(dir: &std::path::Path) -> Nft {
        let fake = dir.join("nft");
        let d = dir.display();
        let body = format!("#!/bin/sh\ntouch {d}/started\ncat > {d}/in\ntouch {d}/committed\n");
        child::tests::script(&fake, &body);
        Nft {
            program: fake,
            timeout: Duration::from_secs(5),
            scale: false,
        }
    }

    fn appears(path: &std::path::Path) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while !path.exists() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        path.exists()
    }

    #[test]
    fn a_load_started_ahead_commits_only_when_fed() {
        let dir = std::env::temp_dir().join(format!("connroute-nft-ahead-{}", std::process::id()));
        let nft = recording(&dir);
        // Started, then dropped unfed: killed before its input ended.
        let load = nft.start_load().unwrap();
        assert!(appears(&dir.join("started")));
        drop(load);
        std::thread::sleep(Duration::from_millis(100));
        assert!(!dir.join("committed").exists());
        // Started, then fed: gets the whole batch and finishes.
        let _ = std::fs::remove_file(dir.join("started"));
        let load = nft.start_load().unwrap();
        assert!(appears(&dir.join("started")));
        load.feed(&nft, &[b"{\"nftables\":[]}"]).unwrap();
        assert!(dir.join("committed").exists());
        let fed = std::fs::read(dir.join("in")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(fed, b"{\"nftables\":[]}");
    }

    #[test]
    fn a_load_started_ahead_is_timed_from_its_feed() {
        let dir =
            std::env::temp_dir().join(format!("connroute-nft-ahead-t-{}", std::process::id()));
        let nft = Nft {
            timeout: Duration::from_millis(600),
            ..recording(&dir)
        };
        // Waited longer than its whole timeout for the batch: still loads.
        let load = nft.start_load().unwrap();
        std::thread::sleep(Duration::from_millis(900));
        assert!(!load.exited());
        let r = load.feed(&nft, &[b"{}"]);
        let committed = dir.join("committed").exists();
        let _ = std::fs::remove_dir_all(&dir);
        r.unwrap();
        assert!(committed);
    }

    #[test]
    fn a_load_started_ahead_that_died_waiting_is_seen_as_gone() {
        let dir = std::env::temp_dir().join(format!("connroute-nft-died-{}", std::process::id()));
        let fake = dir.join("nft");
        child::tests::script(
            &fake,
            "#!/bin/sh
exit 0
",
        );
        let nft = Nft {
            program: fake,
            ..Nft::default()
        };
        let load = nft.start_load().unwrap();
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            load.exited()
        });
        drop(load);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(gone, "an nft that exited unfed still looks usable");
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
