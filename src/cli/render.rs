//! `render`: print the nftables batch (or the routing plan) apply would use.

use super::args::{Cli, Format};
use super::{Run, facts, json_text, load, print, print_json, runtime};
use crate::plan;
use nftables::schema::Nftables;
use std::io::Write;

/// Prints the ruleset as JSON or nft text, or the routes and ip rules.
/// With `globals.enabled '0'` apply installs nothing, so neither does this:
/// an empty batch (JSON) or no text, and a note on stderr.
pub fn run(cli: &Cli, format: Format, routes: bool) -> Run {
    let config = load(cli)?;
    let facts = facts(cli, &config, false)?;
    let p = match format {
        Format::Nft => plan::plan_typed(&config, &facts),
        Format::Json => plan::plan(&config, &facts),
    };
    if !p.enabled {
        eprintln!(
            "connroute: globals.enabled is 0: apply installs nothing (it removes what connroute installed)"
        );
        return match (format, routes) {
            (Format::Json, false) => print_json(&Nftables {
                objects: Default::default(),
            }),
            _ => Ok(()),
        };
    }
    if routes {
        let mut text = String::new();
        for r in &p.routes {
            text.push_str(&format!("{r}\n"));
        }
        for r in &p.ip_rules {
            text.push_str(&format!("{r}\n"));
        }
        return print(&text);
    }
    match format {
        Format::Json => print_batch(&p.ruleset),
        Format::Nft => {
            let typed = p.ruleset.typed().ok_or_else(|| runtime("no typed batch"))?;
            print(&crate::nft::text::render(&typed).map_err(runtime)?)
        }
    }
}

/// Prints the batch as indented JSON one object at a time (byte for byte
/// what pretty-printing the whole batch gives), so a big batch is never
/// held twice.
fn print_batch(batch: &plan::Ruleset) -> Run {
    let out = std::io::stdout().lock();
    write_batch(batch, &mut std::io::BufWriter::new(out))
        .map_err(|e| runtime(format!("stdout: {e}")))
}

fn write_batch(batch: &plan::Ruleset, out: &mut impl Write) -> std::io::Result<()> {
    if batch.is_empty() {
        return out.write_all(b"{\n  \"nftables\": []\n}\n");
    }
    out.write_all(b"{\n  \"nftables\": [\n")?;
    for (i, obj) in batch.objects().iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        out.write_all(b"    ")?;
        json_text::pretty_to(obj.as_bytes(), 2, out)?;
    }
    out.write_all(b"\n  ]\n}\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_printed_object_by_object_is_the_whole_batch_pretty_printed() {
        for src in [
            &include_bytes!("../../examples/multiwan.conf")[..],
            b"config globals g\n",
        ] {
            let config = crate::config::Config::parse(src, "c").unwrap();
            let p = plan::plan(&config, &crate::facts::Facts::default());
            let mut out = Vec::new();
            write_batch(&p.ruleset, &mut out).unwrap();
            let whole = json_text::pretty(&p.ruleset.to_json()) + "\n";
            assert_eq!(String::from_utf8(out).unwrap(), whole);
        }
        let mut out = Vec::new();
        write_batch(&plan::Ruleset::new(false), &mut out).unwrap();
        assert_eq!(out, b"{\n  \"nftables\": []\n}\n");
    }
}
