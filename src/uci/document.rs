//! The in-memory form of one UCI package, with libuci's merge rules and its
//! `export` / `show` output formats.
//!
//! Kept small for big files (10,000 sections, 100,000-item lists): values
//! live in one byte arena of the document and an [`Item`] is a span of it;
//! section types and option names are shared (`Rc<str>`, one per distinct
//! name), so a section of three options costs about 300 bytes.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;

/// One value of an option or one item of a list, with the line it came
/// from; its bytes are in the document ([`Document::bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    start: u32,
    len: u32,
    /// 1-based line on which the statement that set this value started.
    pub line: usize,
}

impl Item {
    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an empty value (never stored: libuci drops those).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The value of an option: a single string or a list of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Set by `option`.
    Single(Item),
    /// Built by one or more `list` lines.
    List(Vec<Item>),
}

impl Value {
    /// Every item of the value, one for a single option.
    pub fn items(&self) -> &[Item] {
        match self {
            Value::Single(item) => std::slice::from_ref(item),
            Value::List(items) => items,
        }
    }
}

/// A named option of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// Option name (`[A-Za-z0-9_]+`), shared by every option of that name.
    pub name: Rc<str>,
    /// Its value.
    pub value: Value,
    /// Line of the statement that first created it.
    pub line: usize,
}

/// A `config` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section type (printable ASCII), shared by every section of that type.
    pub stype: Rc<str>,
    /// Its name: the given one, or the generated `cfgNNHHHH` id when anonymous.
    pub name: Box<str>,
    /// True when the section had no name in the file.
    pub anonymous: bool,
    /// Line of the `config` statement that created it.
    pub line: usize,
    /// Options in order of first appearance.
    pub options: Vec<Opt>,
    /// `option NAME ''` statements (name, line): libuci drops them, but a
    /// reader that must not silently widen a match wants to see them.
    pub empty_options: Vec<(Rc<str>, usize)>,
    /// Lines of later `config` statements that named this section again:
    /// libuci merges them into it.
    pub reopened: Vec<usize>,
    /// Values an `option` statement threw away: libuci keeps only the last.
    pub replaced: Vec<Replaced>,
}

/// An `option` statement that replaced an earlier value of its option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The option's name.
    pub name: Rc<str>,
    /// Line of the value thrown away (a list's first item).
    pub earlier: usize,
    /// True when that value was a list.
    pub was_list: bool,
    /// Line of the replacing statement.
    pub line: usize,
}

impl Section {
    /// Looks an option up by name.
    pub fn option(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| &*o.name == name)
    }

    /// How the section is called in messages: `'name'` or `@type[N]`-style id.
    pub fn label(&self) -> String {
        let stype = super::clip(&self.stype);
        if self.anonymous {
            format!("anonymous {stype} section")
        } else {
            format!("{stype} '{}'", super::clip(&self.name))
        }
    }
}

/// A parsed UCI package.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Package name: the file name, as libuci names it.
    pub package: String,
    /// Sections in file order.
    pub sections: Vec<Section>,
    /// How many sections were ever created (libuci's `n_section`), for ids.
    pub(crate) created: usize,
    /// Every value's bytes, one after the other ([`Item`] spans).
    text: Vec<u8>,
}

/// djb2 over the type, as libuci hashes it for anonymous section ids.
fn type_hash(stype: &str) -> u32 {
    let h = stype.bytes().fold(5381u32, |h, b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    });
    h & 0x7fff_ffff
}

impl Document {
    /// An empty package called `package`.
    pub fn new(package: &str) -> Self {
        Document {
            package: package.to_string(),
            ..Default::default()
        }
    }

    /// Index of the first section called `name` (generated ids included).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| &*s.name == name)
    }

    /// Sections of one type, in file order.
    pub fn of_type<'a>(&'a self, stype: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| &*s.stype == stype)
    }

    /// The bytes of a value of this document.
    pub fn bytes(&self, item: &Item) -> &[u8] {
        let start = item.start as usize;
        &self.text[start..start + item.len()]
    }

    /// A value as text; invalid UTF-8 is replaced, which only matters for
    /// messages (the config model rejects non-ASCII where it needs text).
    pub fn text(&self, item: &Item) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes(item))
    }

    /// The generated id of the anonymous section created `ordinal`-th.
    pub(crate) fn anonymous_id(ordinal: usize, stype: &str) -> String {
        format!("cfg{ordinal:02x}{:04x}", type_hash(stype) & 0xffff)
    }

    pub(crate) fn add_section(&mut self, stype: Rc<str>, name: Option<&str>, line: usize) -> usize {
        self.created += 1;
        let (name, anonymous) = match name {
            Some(n) => (n.into(), false),
            None => (Self::anonymous_id(self.created, &stype).into(), true),
        };
        self.sections.push(Section {
            stype,
            name,
            anonymous,
            line,
            options: Vec::new(),
            empty_options: Vec::new(),
            reopened: Vec::new(),
            replaced: Vec::new(),
        });
        self.sections.len() - 1
    }

    /// Stores a value's bytes; the item that refers to them.
    fn item(&mut self, bytes: &[u8], line: usize) -> Item {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        Item {
            start,
            len: bytes.len() as u32,
            line,
        }
    }

    /// `option NAME VALUE` in section `s`, with the option's index when the
    /// caller knows it exists (so huge sections stay linear); returns the
    /// index, if any.
    pub(crate) fn set_option(
        &mut self,
        s: usize,
        at: Option<usize>,
        name: &Rc<str>,
        bytes: &[u8],
        line: usize,
    ) -> Option<usize> {
        // libuci: an empty value makes `option` a no-op.
        if bytes.is_empty() {
            self.sections[s].empty_options.push((name.clone(), line));
            return at;
        }
        let value = Value::Single(self.item(bytes, line));
        let Section {
            options, replaced, ..
        } = &mut self.sections[s];
        match at {
            Some(i) => {
                let old = std::mem::replace(&mut options[i].value, value);
                replaced.push(Replaced {
                    name: name.clone(),
                    earlier: old.items().first().map_or(options[i].line, |i| i.line),
                    was_list: matches!(old, Value::List(_)),
                    line,
                });
            }
            None => options.push(Opt {
                name: name.clone(),
                value,
                line,
            }),
        }
        Some(at.unwrap_or(options.len() - 1))
    }

    /// `list NAME VALUE`, like [`Document::set_option`].
    pub(crate) fn add_list_item(
        &mut self,
        s: usize,
        at: Option<usize>,
        name: &Rc<str>,
        bytes: &[u8],
        line: usize,
    ) -> usize {
        let item = self.item(bytes, line);
        let options = &mut self.sections[s].options;
        let Some(i) = at else {
            options.push(Opt {
                name: name.clone(),
                value: Value::List(vec![item]),
                line,
            });
            return options.len() - 1;
        };
        let opt = &mut options[i];
        match &mut opt.value {
            Value::List(items) => items.push(item),
            Value::Single(old) => opt.value = Value::List(vec![old.clone(), item]),
        }
        i
    }

    /// Gives back the spare capacity growth left (sections, options,
    /// lists, the value arena): the document is read-only from here.
    pub(crate) fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.sections.shrink_to_fit();
        for s in &mut self.sections {
            s.options.shrink_to_fit();
            for o in &mut s.options {
                if let Value::List(items) = &mut o.value {
                    items.shrink_to_fit();
                }
            }
        }
    }

    /// `uci export` output, byte for byte.
    pub fn export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"package ");
        push_escaped(&mut out, self.package.as_bytes());
        out.push(b'\n');
        for s in &self.sections {
            out.extend_from_slice(b"\nconfig ");
            push_escaped(&mut out, s.stype.as_bytes());
            if !s.anonymous {
                out.extend_from_slice(b" '");
                push_escaped(&mut out, s.name.as_bytes());
                out.push(b'\'');
            }
            out.push(b'\n');
            for o in &s.options {
                let keyword: &[u8] = match o.value {
                    Value::Single(_) => b"\toption ",
                    Value::List(_) => b"\tlist ",
                };
                for item in o.value.items() {
                    out.extend_from_slice(keyword);
                    push_escaped(&mut out, o.name.as_bytes());
                    out.extend_from_slice(b" '");
                    push_escaped(&mut out, self.bytes(item));
                    out.extend_from_slice(b"'\n");
                }
            }
        }
        out.push(b'\n');
        out
    }

    /// `uci show` output (`ids` = true gives `show -X`), byte for byte.
    pub fn show(&self, ids: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, s) in self.sections.iter().enumerate() {
            let reference = if s.anonymous && !ids {
                let n = self.sections[..i]
                    .iter()
                    .filter(|p| p.stype == s.stype)
                    .count();
                format!("@{}[{}]", s.stype, n)
            } else {
                s.name.to_string()
            };
            out.extend_from_slice(
                format!("{}.{}={}\n", self.package, reference, s.stype).as_bytes(),
            );
            for o in &s.options {
                out.extend_from_slice(
                    format!("{}.{}.{}=", self.package, reference, o.name).as_bytes(),
                );
                for (n, item) in o.value.items().iter().enumerate() {
                    if n > 0 {
                        out.push(b' ');
                    }
                    out.push(b'\'');
                    push_escaped(&mut out, self.bytes(item));
                    out.push(b'\'');
                }
                out.push(b'\n');
            }
        }
        out
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.export()))
    }
}

/// Appends `bytes` with every `'` written as `'\''`, as libuci's exporter does.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_ids_follow_ordinal_and_type_hash() {
        let mut doc = Document::default();
        doc.add_section("rule".into(), None, 1);
        doc.add_section("zone".into(), Some("lan"), 2);
        doc.add_section("rule".into(), None, 3);
        assert_eq!(&*doc.sections[0].name, "cfg0192bd");
        assert_eq!(&*doc.sections[2].name, "cfg0392bd");
        assert_eq!(type_hash("interface") & 0xffff, 0x6d96);
    }

    #[test]
    fn option_and_list_switch_in_place() {
        let mut doc = Document::default();
        let s = doc.add_section("t".into(), Some("n"), 1);
        let (a, b): (Rc<str>, Rc<str>) = ("a".into(), "b".into());
        let at = doc.set_option(s, None, &a, b"1", 2);
        doc.set_option(s, None, &b, b"2", 3);
        doc.add_list_item(s, at, &a, b"x", 4);
        doc.set_option(s, at, &a, b"", 5);
        let sec = &doc.sections[s];
        assert_eq!(sec.empty_options, [(a.clone(), 5)]);
        assert_eq!(&*sec.options[0].name, "a");
        let items = sec.options[0].value.items();
        assert_eq!(items.len(), 2);
        assert_eq!(
            (doc.text(&items[0]), doc.text(&items[1])),
            ("1".into(), "x".into())
        );
        doc.set_option(s, at, &a, b"y", 6);
        let v = &doc.sections[s].options[0].value;
        assert!(matches!(v, Value::Single(i) if doc.bytes(i) == b"y" && i.line == 6));
    }
}
