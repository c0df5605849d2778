//! Unit tests of the reader (the libuci table tests are in tests/uci_cases.rs).

use super::*;

fn export(src: &str) -> String {
    String::from_utf8(parse(src.as_bytes(), "t").unwrap().export()).unwrap()
}

#[test]
fn quoting_pieces_join() {
    let out = export("config s 'x'\n\toption a 'it'\\''s'\n\toption b pre'mid dle'post\n");
    assert!(out.contains("option a 'it'\\''s'"), "{out}");
    assert!(out.contains("option b 'premid dlepost'"), "{out}");
}

#[test]
fn glued_semicolon_drops_rest_of_line() {
    let out = export("config t 'r'\n\toption c x; option d y\n\toption e x ; option f y\n");
    assert!(
        out.contains("option c 'x'") && !out.contains("option d"),
        "{out}"
    );
    assert!(out.contains("option f 'y'"), "{out}");
}

#[test]
fn positions_match_libuci() {
    let e = parse(b"config s\n\toption bad-name 2\n", "t").unwrap_err();
    assert_eq!(
        (e.reason, e.line, e.byte),
        ("invalid character in name field", 2, 17)
    );
    let e = parse(b"config \n", "t").unwrap_err();
    assert_eq!((e.reason, e.line, e.byte), ("insufficient arguments", 1, 8));
}

#[test]
fn nul_is_refused_with_position() {
    let e = parse(b"config s\n\toption a 'x\0y'\n", "t").unwrap_err();
    assert_eq!((e.reason, e.line, e.byte), ("NUL byte in file", 2, 12));
}

#[test]
fn statement_lines_are_start_lines() {
    let doc = parse(
        b"\nconfig s 'n'\n\toption a 'multi\nline'\n\toption b 1",
        "t",
    )
    .unwrap();
    let s = &doc.sections[0];
    assert_eq!(s.line, 2);
    assert_eq!(s.options[0].line, 3);
    assert_eq!(s.options[1].line, 5);
}

#[test]
fn re_entered_sections_and_options_merge_through_the_index() {
    let src = "config t a\n\toption x 1\nconfig t b\n\toption x 2\nconfig t\n\
               config t a\n\toption y 3\n\tlist x 4\n\toption x 5\nconfig u cfg03e4f6\n";
    let doc = parse(src.as_bytes(), "p").unwrap();
    assert_eq!(doc.sections.len(), 4);
    let a = &doc.sections[0];
    assert_eq!(a.options.len(), 2);
    assert_eq!(doc.text(&a.option("x").unwrap().value.items()[0]), "5");
    assert_eq!(
        doc.text(&doc.sections[1].option("x").unwrap().value.items()[0]),
        "2"
    );
    // A name equal to an anonymous section's generated id reuses it, as libuci does.
    let anon = &doc.sections[2];
    assert!(anon.anonymous);
    let same = format!("config t {}\n\toption z 1\n", anon.name);
    let doc2 = parse(format!("{src}{same}").as_bytes(), "p").unwrap();
    assert_eq!(doc2.sections.len(), 4);
    assert!(doc2.sections[2].option("z").is_some());
}

/// 20,000 sections, and 20,000 options in one section, parse whole (linear
/// lookups made them take ~20 s and ~9 s in a debug build; indexed, about
/// 2 s together). Speed is not asserted: tests never time themselves, and
/// under qemu this takes ~30 s; `make bench` measures render scaling.
#[test]
fn huge_files_parse_whole() {
    let mut many_sections = String::new();
    let mut many_options = String::from("config t one\n");
    for i in 0..20_000 {
        many_sections.push_str(&format!("config t s{i}\n\toption o v\n\tlist l {i}\n"));
        many_options.push_str(&format!("\toption o{i} v\n\tlist l x\n"));
    }
    let a = parse(many_sections.as_bytes(), "p").unwrap();
    let b = parse(many_options.as_bytes(), "p").unwrap();
    assert_eq!(
        (a.sections.len(), b.sections[0].options.len()),
        (20_000, 20_001)
    );
    assert_eq!(
        b.sections[0].option("l").unwrap().value.items().len(),
        20_000
    );
}

/// A million empty sections took 465 MB: past 65536 the file is refused,
/// naming the line; reopening an existing section is still fine.
#[test]
fn sections_are_capped() {
    let mut src = "config t\n".repeat(super::MAX_SECTIONS);
    src.push_str("config t named\n");
    let e = parse(src.as_bytes(), "p").unwrap_err();
    assert_eq!(
        (e.reason, e.line),
        ("more than 65536 sections", super::MAX_SECTIONS + 1)
    );
    let mut ok = "config t\n".repeat(super::MAX_SECTIONS - 1);
    ok.push_str("config t named\nconfig t named\n");
    assert_eq!(parse(ok.as_bytes(), "p").unwrap().sections.len(), 65536);
}

/// 900,000 distinct options in one section took 190 MB and 43 s to
/// check: past 65536 the file is refused; a long list is one option.
#[test]
fn options_per_section_are_capped() {
    let mut src = String::from("config t s\n");
    for i in 0..super::MAX_OPTIONS {
        src.push_str(&format!("\toption o{i} v\n"));
    }
    let mut ok = src.clone();
    ok.push_str("\toption o0 again\n\tlist o1 more\n");
    assert_eq!(
        parse(ok.as_bytes(), "p").unwrap().sections[0].options.len(),
        65536
    );
    src.push_str("\toption one_more v\n");
    let e = parse(src.as_bytes(), "p").unwrap_err();
    assert_eq!(
        (e.reason, e.line),
        (
            "more than 65536 options in one section",
            super::MAX_OPTIONS + 2
        )
    );
}
