//! The libuci-exact reader: bytes in, [`Document`] out.
//!
//! libuci parses each logical line in place: tokens are compacted inside the
//! line buffer, terminators overwrite delimiters, and quoted strings or
//! backslash-newlines pull the next physical line into the buffer. Error
//! positions (`line`, `byte`) and several quirks (`x;` dropping the rest of a
//! line, a glued `#` ending the line) fall out of that mechanism, so this
//! reader keeps the same buffer discipline instead of tokenising up front.
//! The small grammars (keywords, name/type charsets) are nom parsers.

use super::document::Document;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::combinator::{all_consuming, value};
use nom::{IResult, Parser};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// Strict (libuci default, every OpenWrt service) or non-strict (`uci -S`,
/// the shell's `config_load`) parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first error stops the load.
    Strict,
    /// Errors are collected; parsing resumes on the next physical line.
    Lenient,
}

/// A parse error with libuci's reason text and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// libuci's reason, e.g. `invalid command`.
    pub reason: &'static str,
    /// libuci's line number (physical lines read so far).
    pub line: usize,
    /// libuci's byte: cursor position in the logical line buffer.
    pub byte: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (byte {})", self.reason, self.byte)
    }
}

/// Result of a non-strict parse: the document plus every error met.
#[derive(Debug, Clone)]
pub struct Lenient {
    /// What was read.
    pub document: Document,
    /// Errors, in file order.
    pub errors: Vec<ParseError>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Package,
    Config,
    Option,
    List,
}

fn keyword(word: &[u8]) -> IResult<&[u8], Command> {
    all_consuming(alt((
        value(
            Command::Package,
            alt((tag(&b"package"[..]), tag(&b"p"[..]))),
        ),
        value(Command::Config, alt((tag(&b"config"[..]), tag(&b"c"[..])))),
        value(Command::Option, alt((tag(&b"option"[..]), tag(&b"o"[..])))),
        value(Command::List, alt((tag(&b"list"[..]), tag(&b"l"[..])))),
    )))
    .parse(word)
}

#[derive(Clone, Copy)]
enum Charset {
    /// Option and section names: `[A-Za-z0-9_]+`.
    Name,
    /// `package` line names: `[A-Za-z0-9_-]+`.
    Package,
    /// Section types: printable ASCII without space.
    Type,
}

fn valid(s: &[u8], charset: Charset) -> bool {
    let accept = move |c: u8| match charset {
        Charset::Name => c.is_ascii_alphanumeric() || c == b'_',
        Charset::Package => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
        Charset::Type => (33..=126).contains(&c),
    };
    let r: IResult<&[u8], &[u8]> = all_consuming(take_while1(accept)).parse(s);
    r.is_ok()
}

/// Most sections read from one file: libuci has no limit, but a million
/// empty sections would take hundreds of MB (connroute needs a few hundred).
pub const MAX_SECTIONS: usize = 65536;

/// Most distinct options in one section (a list counts once, however
/// long): connroute knows a dozen; 900,000 took 190 MB and 43 s to check.
pub const MAX_OPTIONS: usize = 65536;

/// C `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

struct Reader<'a> {
    input: &'a [u8],
    next: usize,
    buf: Vec<u8>,
    filled: usize,
    pos: usize,
    line: usize,
    /// 1-based line where the current logical line started.
    start_line: usize,
    mode: Mode,
    doc: Document,
    section: Option<usize>,
    /// Name → first named section of that name (anonymous sections are
    /// found by their generated id: [`Reader::find_section`]).
    sections: BTreeMap<String, usize>,
    /// Every section type and option name met → its index in `interned`.
    names: BTreeMap<String, usize>,
    /// The one shared copy of each of those names.
    interned: Vec<Rc<str>>,
    /// `SECTION.OPTION` (section index, option name) → option index, for
    /// sections of more than [`INDEX_FROM`] options only: keeps huge files
    /// fast without a map entry for every small section's options. One
    /// map type for all three (and for src/ids) keeps the binary small: a
    /// `BTreeMap`, as `HashMap` links SipHash and a seed.
    options: BTreeMap<String, usize>,
}

/// Sections with more options than this get their options indexed.
const INDEX_FROM: usize = 16;

type Step<T> = Result<T, ParseError>;

impl<'a> Reader<'a> {
    fn package(&mut self) -> Step<()> {
        self.past_word("package without name")?;
        self.arg(true, Some(Charset::Package))?;
        // A config file's package is always named after the file.
        self.assert_eol()
    }

    fn config(&mut self) -> Step<()> {
        self.past_word("config without name")?;
        let type_at = self.arg(true, None)?;
        if !valid(&self.text(type_at), Charset::Type) {
            return Err(self.error("invalid character in type field"));
        }
        let name_at = self.arg(false, Some(Charset::Name))?;
        self.assert_eol()?;
        let stype = self.intern(type_at);
        let name = String::from_utf8_lossy(&self.text(name_at)).into_owned();
        let line = self.start_line;
        let found = self.find_section(&name);
        if self.doc.sections.len() >= MAX_SECTIONS && found.is_none() {
            return Err(self.error("more than 65536 sections"));
        }
        if name.is_empty() {
            self.section = Some(self.doc.add_section(stype, None, line));
            return Ok(());
        }
        match found {
            Some(i) => {
                if self.doc.sections[i].stype != stype {
                    if self.mode == Mode::Strict {
                        return Err(self.error(
                            "section of different type overwrites prior section with same name",
                        ));
                    }
                    self.doc.sections[i].stype = stype;
                }
                self.doc.sections[i].reopened.push(line);
                self.section = Some(i);
            }
            None => {
                let i = self.doc.add_section(stype, Some(&name), line);
                self.sections.insert(name, i);
                self.section = Some(i);
            }
        }
        Ok(())
    }

    fn option(&mut self, list: bool) -> Step<()> {
        let Some(section) = self.section else {
            return Err(self.error("option/list command found before the first section"));
        };
        self.past_word("option without name")?;
        let name_at = self.arg(true, Some(Charset::Name))?;
        let value_at = self.arg(false, None)?;
        self.assert_eol()?;
        let name = self.intern(name_at);
        let line = self.start_line;
        let at = self.find_option(section, &name);
        if at.is_none() && self.doc.sections[section].options.len() >= MAX_OPTIONS {
            return Err(self.error("more than 65536 options in one section"));
        }
        let len = self.strlen(value_at);
        let value = self.buf.get(value_at..value_at + len).unwrap_or_default();
        let now = if list {
            Some(self.doc.add_list_item(section, at, &name, value, line))
        } else {
            self.doc.set_option(section, at, &name, value, line)
        };
        if let (None, Some(i)) = (at, now) {
            self.index_option(section, i);
        }
        Ok(())
    }

    /// strtok(cur, " \t"): the next command word, terminated in place.
    fn command_word(&mut self) -> Option<Vec<u8>> {
        let mut start = self.pos;
        while matches!(self.at(start), b' ' | b'\t') {
            start += 1;
        }
        if self.at(start) == 0 {
            return None;
        }
        let mut end = start;
        while !matches!(self.at(end), 0 | b' ' | b'\t') {
            end += 1;
        }
        if self.at(end) != 0 {
            self.put(end, 0);
        }
        Some(self.buf[start..end].to_vec())
    }

    fn logical_line(&mut self) -> Step<()> {
        self.skip_whitespace();
        while let Some(word) = self.command_word() {
            if word.first() == Some(&b'#') {
                return Ok(());
            }
            match keyword(&word) {
                Ok((_, Command::Package)) => self.package()?,
                Ok((_, Command::Config)) => self.config()?,
                Ok((_, Command::Option)) => self.option(false)?,
                Ok((_, Command::List)) => self.option(true)?,
                Err(_) => return Err(self.error("invalid command")),
            }
        }
        Ok(())
    }
}

/// Rejects NUL bytes: libuci's behaviour with them depends on its buffer size.
fn check_nul(input: &[u8]) -> Step<()> {
    match input.iter().position(|&c| c == 0) {
        None => Ok(()),
        Some(at) => {
            let line = input[..at].iter().filter(|&&c| c == b'\n').count() + 1;
            let line_start = input[..at]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1);
            Err(ParseError {
                reason: "NUL byte in file",
                line,
                byte: at - line_start,
            })
        }
    }
}

fn run(input: &[u8], package: &str, mode: Mode, errors: &mut Vec<ParseError>) -> Step<Document> {
    check_nul(input)?;
    let mut r = Reader {
        input,
        next: 0,
        buf: Vec::new(),
        filled: 0,
        pos: 0,
        line: 0,
        start_line: 1,
        mode,
        doc: Document::new(package),
        section: None,
        sections: BTreeMap::new(),
        names: BTreeMap::new(),
        interned: Vec::new(),
        options: BTreeMap::new(),
    };
    while r.next < input.len() {
        r.pos = 0;
        r.start_line = r.line + 1;
        r.getln(0);
        if r.at(0) == 0 {
            continue;
        }
        if let Err(e) = r.logical_line() {
            if mode == Mode::Strict {
                return Err(e);
            }
            errors.push(e);
        }
    }
    r.doc.shrink();
    Ok(r.doc)
}

/// Parses a whole file in strict mode, as libuci and OpenWrt's services do.
pub fn parse(input: &[u8], package: &str) -> Result<Document, ParseError> {
    run(input, package, Mode::Strict, &mut Vec::new())
}

/// Parses in non-strict mode (`uci -S`): keeps what every line did before
/// its error. NUL bytes are still refused.
pub fn parse_lenient(input: &[u8], package: &str) -> Result<Lenient, ParseError> {
    let mut errors = Vec::new();
    let document = run(input, package, Mode::Lenient, &mut errors)?;
    Ok(Lenient { document, errors })
}

#[path = "reader_index.rs"]
mod index;
#[path = "reader_lex.rs"]
mod lex;

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
