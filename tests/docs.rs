//! The option reference in README.md, man/connroute.8 and the installed
//! files/etc/config/connroute is rendered from the option schema; this test
//! fails when a checked-in copy disagrees. `CONNROUTE_BLESS=1` rewrites them.

use connroute::config::reference::{default_config, reference_markdown, reference_roff};
use std::fs;
use std::path::PathBuf;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn bless() -> bool {
    std::env::var_os("CONNROUTE_BLESS").is_some_and(|v| v == "1")
}

/// `text` with the lines strictly between the `begin` and `end` marker
/// lines replaced by `body`.
fn splice(text: &str, begin: &str, end: &str, body: &str) -> Result<String, String> {
    let start = text
        .find(&format!("{begin}\n"))
        .ok_or(format!("no line '{begin}'"))?
        + begin.len()
        + 1;
    let stop = text[start..]
        .find(&format!("{end}\n"))
        .ok_or(format!("no line '{end}' after '{begin}'"))?
        + start;
    Ok(format!("{}{body}{}", &text[..start], &text[stop..]))
}

/// Compares (or with bless, rewrites) one file; returns a failure message.
fn check(rel: &str, want: String) -> Option<String> {
    let p = path(rel);
    let have = fs::read_to_string(&p).unwrap_or_default();
    if have == want {
        return None;
    }
    if bless() {
        fs::write(&p, &want).unwrap();
        return None;
    }
    let line = have
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(have.lines().count().min(want.lines().count()));
    Some(format!(
        "{rel} disagrees with the option schema from line {} on (CONNROUTE_BLESS=1 cargo test --test docs rewrites it)",
        line + 1
    ))
}

fn spliced(rel: &str, begin: &str, end: &str, body: &str) -> String {
    let text = fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    splice(&text, begin, end, body).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn documentation_matches_the_schema() {
    let readme = spliced(
        "README.md",
        "<!-- BEGIN options -->",
        "<!-- END options -->",
        &reference_markdown(),
    );
    let man = spliced(
        "man/connroute.8",
        ".\\\" BEGIN options",
        ".\\\" END options",
        &reference_roff(),
    );
    let failures: Vec<String> = [
        check("README.md", readme),
        check("man/connroute.8", man),
        check("files/etc/config/connroute", default_config()),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn splice_replaces_only_between_the_markers() {
    let t = "a\n<!-- B -->\nold\nlines\n<!-- E -->\nz\n";
    assert_eq!(
        splice(t, "<!-- B -->", "<!-- E -->", "new\n").unwrap(),
        "a\n<!-- B -->\nnew\n<!-- E -->\nz\n"
    );
    assert!(splice("a\n", "<!-- B -->", "<!-- E -->", "").is_err());
}
