//! UCI: OpenWrt's configuration file format, read exactly as libuci reads it.
//!
//! [`parse`] turns the bytes of one file into a [`Document`]; the document
//! prints itself back in `uci export` and `uci show` formats.

mod document;
mod reader;

pub use document::{Document, Item, Opt, Replaced, Section, Value};
pub use reader::{Lenient, Mode, ParseError, parse, parse_lenient};

/// Longest piece of input echoed in a message; see [`clip`].
pub const ECHO_MAX: usize = 64;

/// `s` for a message: control characters escaped (`\u{1b}`, `\t`), so
/// a value cannot clear a terminal, recolour it or hide a byte, and at most
/// [`ECHO_MAX`] bytes, cut at a character boundary and marked with `…`, so
/// a huge name or value is not echoed whole.
pub fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    let escaped: std::borrow::Cow<'_, str> = match s.chars().any(char::is_control) {
        false => s.into(),
        true => s
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect::<String>()
            .into(),
    };
    if escaped.len() <= ECHO_MAX {
        return escaped;
    }
    let mut end = ECHO_MAX;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &escaped[..end]).into()
}

/// The package name libuci would give the file at `path`, made safe to
/// print in a `package` line that re-parses: the file name when it is a
/// valid package name, else its stem (`my.conf` → `my`), else `connroute`.
pub fn package_name(path: &std::path::Path) -> String {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    [path.file_name(), path.file_stem()]
        .into_iter()
        .flatten()
        .filter_map(|n| n.to_str())
        .find(|n| valid(n))
        .unwrap_or("connroute")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::package_name;
    use std::path::Path;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(super::clip("eth0"), "eth0");
        let long = "é".repeat(100);
        let c = super::clip(&long);
        assert_eq!(c.len(), 64 + "…".len());
        assert!(c.ends_with('…'));
        assert_eq!(
            super::clip("10.0.0.1\x1b[2J\x0b80\t\x7f"),
            "10.0.0.1\\u{1b}[2J\\u{b}80\\t\\u{7f}"
        );
    }

    #[test]
    fn package_names_reparse() {
        for (path, want) in [
            ("/etc/config/connroute", "connroute"),
            ("examples/my.conf", "my"),
            ("a b.conf", "connroute"),
            ("x.tar.gz", "connroute"),
            ("wan-2", "wan-2"),
            ("/", "connroute"),
        ] {
            assert_eq!(package_name(Path::new(path)), want, "{path}");
            assert!(super::parse(format!("package {want}\n").as_bytes(), want).is_ok());
        }
    }
}
