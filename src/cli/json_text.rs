//! Pretty-printing of compact JSON text.
//!
//! Byte-identical to `serde_json::to_string_pretty`, but works on the compact
//! bytes `serde_json::to_vec` already produced. The ruleset types then need
//! only one serializer instantiation instead of two (compact for nft,
//! pretty for humans): on mipsel the second copy cost about 60 KiB, which
//! is why this stays hand-written. tests/props.rs checks the byte parity
//! on random JSON values.

/// Re-indents compact JSON (as serde_json writes it) with two spaces.
pub fn pretty(compact: &[u8]) -> String {
    let mut out = Vec::with_capacity(compact.len() * 2);
    // Writing into a Vec cannot fail.
    let _ = pretty_to(compact, 0, &mut out);
    // Only whole bytes of valid UTF-8 input were copied.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes `compact` re-indented as if it sat `depth` levels deep (its
/// first line is not indented: the caller places it), through a small
/// buffer: a value of many megabytes is never held indented whole.
pub fn pretty_to(compact: &[u8], depth: usize, w: &mut impl std::io::Write) -> std::io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    let mut out = Vec::with_capacity(CHUNK.min(compact.len() * 2) + 256);
    let mut depth = depth;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while let Some(&b) = compact.get(i) {
        i += 1;
        if out.len() >= CHUNK {
            w.write_all(&out)?;
            out.clear();
        }
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                let close = if b == b'{' { b'}' } else { b']' };
                if compact.get(i) == Some(&close) {
                    out.push(close);
                    i += 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
    w.write_all(&out)
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b' ', depth * 2));
}

#[cfg(test)]
mod tests {
    use super::pretty;
    use serde_json::json;

    #[test]
    fn matches_serde_json_pretty() {
        let cases = [
            json!({}),
            json!([]),
            json!({"a": [], "b": {}, "c": [1, {"d": null}], "e": "x,{}[]:\"\\"}),
            json!([[[]], [{}], "\u{e9}\n\t", -1.5, true]),
            json!("plain"),
        ];
        for v in cases {
            let compact = serde_json::to_vec(&v).unwrap();
            assert_eq!(pretty(&compact), serde_json::to_string_pretty(&v).unwrap());
        }
    }

    #[test]
    fn ruleset_matches_serde_json_pretty() {
        let src = include_bytes!("../../examples/multiwan.conf");
        let config = crate::config::Config::parse(src, "multiwan.conf").unwrap();
        let p = crate::plan::plan_typed(&config, &crate::facts::Facts::default());
        let typed = p.ruleset.typed().unwrap();
        assert_eq!(serde_json::to_vec(&typed).unwrap(), p.ruleset.to_json());
        assert_eq!(
            pretty(&p.ruleset.to_json()),
            serde_json::to_string_pretty(&typed).unwrap()
        );
    }
}
