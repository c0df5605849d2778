//! Runs the `nft` binary: JSON batches in, stdout and stderr captured, with
//! a timeout so a wedged nft cannot hold the lock forever.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How to call nft.
#[derive(Debug, Clone)]
pub struct Nft {
    /// Binary to run (`nft` on PATH by default).
    pub program: PathBuf,
    /// Longest time one call may take.
    pub timeout: Duration,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: PathBuf::from("nft"),
            timeout: Duration::from_secs(30),
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
    /// Runs `nft ARGS`, feeding `stdin`; fails with nft's own error text.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Result<Output, String> {
        let name = self.program.display().to_string();
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {name}: {e}"))?;
        let mut stdout = child.stdout.take().ok_or("nft stdout")?;
        let mut stderr = child.stderr.take().ok_or("nft stderr")?;
        let out_reader = thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err_reader = thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        if let Some(mut input) = child.stdin.take() {
            // A failed write shows up as nft's error or exit status below.
            let _ = input.write_all(stdin);
        }
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{name} {} did not finish within {:?}",
                        args.join(" "),
                        self.timeout
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("waiting for {name}: {e}")),
            }
        };
        let out = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
        let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        if status.success() {
            Ok(Output { stdout: out })
        } else {
            let text = err.trim();
            let text = if text.is_empty() { out.trim() } else { text };
            Err(format!(
                "{name} {} failed ({status}): {text}",
                args.join(" ")
            ))
        }
    }

    /// Loads a JSON batch (`nft -j -f -`).
    pub fn load(&self, json: &[u8]) -> Result<(), String> {
        self.run(&["-j", "-f", "-"], json).map(|_| ())
    }

    /// Checks a JSON batch without applying it (`nft -c -j -f -`).
    pub fn check(&self, json: &[u8]) -> Result<(), String> {
        self.run(&["-c", "-j", "-f", "-"], json).map(|_| ())
    }

    /// `nft -j ARGS` parsed as JSON.
    pub fn list(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.run(&all, b"")?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("nft -j {}: unreadable JSON: {e}", args.join(" ")))
    }
}
