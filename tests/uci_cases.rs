//! Table test: every UCI case must give the real `uci` tool's output byte for
//! byte, and fail where it fails with the same reason, line and byte.
//!
//! The cases and libuci's output for them are in `tests/fixtures/uci/cases/`.
//! The corpus of real OpenWrt config files (other projects' files, not in
//! this repository) is read from `$CONNROUTE_SHARED/uci/corpus` (default
//! `../shared` next to the repository); without it that test says so on one
//! line and passes.

use connroute::uci;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/uci/cases")
}

/// The corpus folder, or `None` (after one line on stderr) when it is absent.
fn corpus_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("CONNROUTE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("uci/corpus");
    if dir.is_dir() {
        return Some(dir);
    }
    // Straight to stderr: the harness would swallow eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: UCI corpus test, {} is absent (set CONNROUTE_SHARED)",
        dir.display()
    );
    None
}

/// Splits a `.expected` file into its `### label` blocks.
fn blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&c| c == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if let Some(label) = line.strip_prefix(b"### ") {
            let label = String::from_utf8_lossy(label).trim_end().to_string();
            out.push((label, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.extend_from_slice(line);
        }
    }
    out
}

fn block<'a>(bs: &'a [(String, Vec<u8>)], label: &str) -> &'a [u8] {
    &bs.iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no block {label}"))
        .1
}

/// `uci: Parse error (REASON) at line L, byte B` → (reason, line, byte).
fn libuci_error(stderr: &[u8]) -> (String, usize, usize) {
    let s = String::from_utf8_lossy(stderr);
    let s = s.lines().next().expect("error line");
    let inner = s.split_once("Parse error (").expect("parse error text").1;
    let (reason, pos) = inner.rsplit_once(") at line ").expect("position");
    let (line, byte) = pos.split_once(", byte ").expect("byte");
    (
        reason.to_string(),
        line.parse().unwrap(),
        byte.trim().parse().unwrap(),
    )
}

fn check_strict(name: &str, input: &[u8], bs: &[(String, Vec<u8>)]) -> Result<(), String> {
    let rc_label = bs
        .iter()
        .find(|(l, _)| l.starts_with("export rc="))
        .unwrap()
        .0
        .clone();
    let ok = rc_label == "export rc=0";
    match uci::parse(input, "test") {
        Ok(doc) if ok => {
            let want = [
                ("export rc=0", doc.export()),
                ("show rc=0", doc.show(false)),
                ("show -X rc=0", doc.show(true)),
            ];
            for (label, got) in want {
                if block(bs, label) != got.as_slice() {
                    return Err(format!(
                        "{name}: {label} differs\n--- want\n{}\n--- got\n{}",
                        String::from_utf8_lossy(block(bs, label)),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
            Ok(())
        }
        Err(e) if !ok => {
            if input.contains(&0) {
                // libuci's NUL handling depends on its buffer size; we refuse NUL.
                return if e.reason == "NUL byte in file" {
                    Ok(())
                } else {
                    Err(format!("{name}: {e:?}"))
                };
            }
            let want = libuci_error(block(bs, "export stderr"));
            let got = (e.reason.to_string(), e.line, e.byte);
            if want == got {
                Ok(())
            } else {
                Err(format!("{name}: want {want:?}, got {got:?}"))
            }
        }
        Ok(_) => Err(format!("{name}: parsed, but libuci fails")),
        Err(e) => Err(format!("{name}: libuci parses it, we fail: {e:?}")),
    }
}

fn check_lenient(name: &str, input: &[u8], bs: &[(String, Vec<u8>)]) -> Result<(), String> {
    if input.contains(&0) {
        return Ok(());
    }
    let label = "export -S (non-strict) rc=0";
    let got = uci::parse_lenient(input, "test").map_err(|e| format!("{name}: -S failed {e:?}"))?;
    if block(bs, label) != got.document.export().as_slice() {
        return Err(format!(
            "{name}: -S export differs\n--- want\n{}\n--- got\n{}",
            String::from_utf8_lossy(block(bs, label)),
            String::from_utf8_lossy(&got.document.export())
        ));
    }
    let want: Vec<String> = String::from_utf8_lossy(block(bs, "export -S (non-strict) stderr"))
        .lines()
        .map(str::to_string)
        .collect();
    let errs: Vec<String> = got
        .errors
        .iter()
        .map(|e| {
            format!(
                "Parse error ({}) at line {}, byte {}",
                e.reason, e.line, e.byte
            )
        })
        .collect();
    if want != errs {
        return Err(format!("{name}: -S errors: want {want:?}, got {errs:?}"));
    }
    Ok(())
}

#[test]
fn cases_match_libuci() {
    let dir = cases_dir();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "uci"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "expected the UCI cases in {}, found {}",
        dir.display(),
        names.len()
    );
    let mut failures = Vec::new();
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let input = fs::read(path).unwrap();
        let expected = fs::read(path.with_extension("expected")).unwrap();
        let bs = blocks(&expected);
        if let Err(e) = check_strict(&name, &input, &bs) {
            failures.push(e);
        }
        if let Err(e) = check_lenient(&name, &input, &bs) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn shared_corpus_matches_libuci() {
    let Some(dir) = corpus_dir() else { return };
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.with_file_name(format!(
                "{}.export",
                p.file_name().unwrap().to_string_lossy()
            ))
            .exists()
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 200,
        "expected the shared corpus, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let input = fs::read(path).unwrap();
        let export = fs::read(path.with_file_name(format!("{name}.export"))).unwrap();
        let show = fs::read(path.with_file_name(format!("{name}.show"))).unwrap();
        match uci::parse(&input, "test") {
            Ok(doc) => {
                if doc.export() != export {
                    failures.push(format!("{name}: export differs"));
                }
                if doc.show(false) != show {
                    failures.push(format!("{name}: show differs"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files fail:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
