//! Helpers shared by the CLI test crates (each test crate compiles this
//! module on its own and uses part of it).
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// A fresh, empty scratch directory for test `name`, unique per process.
pub fn work(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("connroute-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// True when running as root with a working `nft`: the tests that load or
/// check rulesets need both.
pub fn have_nft_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    root && Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Bytes as text, lossily (for messages and comparisons).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
