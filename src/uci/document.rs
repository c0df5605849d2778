//! The in-memory form of one UCI package, with libuci's merge rules and its
//! `export` / `show` output formats.

use std::fmt;

/// One value of an option or one item of a list, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The raw bytes, exactly as libuci would store them (no NUL); boxed,
    /// not a `Vec`: 8 bytes less for each of a huge list's items.
    pub bytes: Box<[u8]>,
    /// 1-based line on which the statement that set this value started.
    pub line: usize,
}

impl Item {
    /// The value as text; invalid UTF-8 is replaced, which only matters for
    /// messages (the config model rejects non-ASCII where it needs text).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
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
    /// Option name (`[A-Za-z0-9_]+`).
    pub name: String,
    /// Its value.
    pub value: Value,
    /// Line of the statement that first created it.
    pub line: usize,
}

/// A `config` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section type (printable ASCII).
    pub stype: String,
    /// Its name: the given one, or the generated `cfgNNHHHH` id when anonymous.
    pub name: String,
    /// True when the section had no name in the file.
    pub anonymous: bool,
    /// Line of the `config` statement that created it.
    pub line: usize,
    /// Options in order of first appearance.
    pub options: Vec<Opt>,
    /// `option NAME ''` statements (name, line): libuci drops them, but a
    /// reader that must not silently widen a match wants to see them.
    pub empty_options: Vec<(String, usize)>,
}

impl Section {
    /// Looks an option up by name.
    pub fn option(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.name == name)
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

    #[cfg(test)]
    pub(crate) fn set_option(&mut self, name: &str, bytes: Vec<u8>, line: usize) {
        let at = self.options.iter().position(|o| o.name == name);
        self.set_option_at(at, name, bytes, line);
    }

    /// `option NAME VALUE`, with the option's index when the caller knows
    /// it exists (so huge sections stay linear); returns the index, if any.
    pub(crate) fn set_option_at(
        &mut self,
        at: Option<usize>,
        name: &str,
        bytes: Vec<u8>,
        line: usize,
    ) -> Option<usize> {
        // libuci: an empty value makes `option` a no-op.
        if bytes.is_empty() {
            self.empty_options.push((name.to_string(), line));
            return at;
        }
        let item = Item {
            bytes: bytes.into(),
            line,
        };
        match at {
            Some(i) => self.options[i].value = Value::Single(item),
            None => self.options.push(Opt {
                name: name.to_string(),
                value: Value::Single(item),
                line,
            }),
        }
        Some(at.unwrap_or(self.options.len() - 1))
    }

    #[cfg(test)]
    pub(crate) fn add_list_item(&mut self, name: &str, bytes: Vec<u8>, line: usize) {
        let at = self.options.iter().position(|o| o.name == name);
        self.add_list_item_at(at, name, bytes, line);
    }

    /// `list NAME VALUE`, like [`Section::set_option_at`].
    pub(crate) fn add_list_item_at(
        &mut self,
        at: Option<usize>,
        name: &str,
        bytes: Vec<u8>,
        line: usize,
    ) -> usize {
        let item = Item {
            bytes: bytes.into(),
            line,
        };
        match at {
            Some(i) => {
                let opt = &mut self.options[i];
                match &mut opt.value {
                    Value::List(items) => items.push(item),
                    Value::Single(old) => {
                        let old = std::mem::replace(
                            old,
                            Item {
                                bytes: Box::default(),
                                line: 0,
                            },
                        );
                        opt.value = Value::List(vec![old, item]);
                    }
                }
                i
            }
            None => {
                self.options.push(Opt {
                    name: name.to_string(),
                    value: Value::List(vec![item]),
                    line,
                });
                self.options.len() - 1
            }
        }
    }
}

/// A parsed UCI package.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Package name: the file name, as libuci names it.
    pub package: String,
    /// Sections in file order.
    pub sections: Vec<Section>,
    /// How many sections were ever created (libuci's `n_section`), for ids.
    pub(crate) created: usize,
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
        self.sections.iter().position(|s| s.name == name)
    }

    /// Sections of one type, in file order.
    pub fn of_type<'a>(&'a self, stype: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.stype == stype)
    }

    pub(crate) fn add_section(&mut self, stype: &str, name: Option<&str>, line: usize) -> usize {
        self.created += 1;
        let (name, anonymous) = match name {
            Some(n) => (n.to_string(), false),
            None => (
                format!("cfg{:02x}{:04x}", self.created, type_hash(stype) & 0xffff),
                true,
            ),
        };
        self.sections.push(Section {
            stype: stype.to_string(),
            name,
            anonymous,
            line,
            options: Vec::new(),
            empty_options: Vec::new(),
        });
        self.sections.len() - 1
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
                    push_escaped(&mut out, &item.bytes);
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
                s.name.clone()
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
                    push_escaped(&mut out, &item.bytes);
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
        let mut doc = Document::new("test");
        doc.add_section("rule", None, 1);
        doc.add_section("zone", Some("lan"), 2);
        doc.add_section("rule", None, 3);
        assert_eq!(doc.sections[0].name, "cfg0192bd");
        assert_eq!(doc.sections[2].name, "cfg0392bd");
        assert_eq!(type_hash("interface") & 0xffff, 0x6d96);
    }

    #[test]
    fn option_and_list_switch_in_place() {
        let mut s = Section {
            stype: "t".into(),
            name: "n".into(),
            anonymous: false,
            line: 1,
            options: vec![],
            empty_options: vec![],
        };
        s.set_option("a", b"1".to_vec(), 2);
        s.set_option("b", b"2".to_vec(), 3);
        s.add_list_item("a", b"x".to_vec(), 4);
        s.set_option("a", Vec::new(), 5);
        assert_eq!(s.empty_options, [("a".to_string(), 5)]);
        assert_eq!(s.options[0].name, "a");
        assert_eq!(s.options[0].value.items().len(), 2);
        s.set_option("a", b"y".to_vec(), 6);
        assert_eq!(
            s.options[0].value,
            Value::Single(Item {
                bytes: b"y".to_vec().into(),
                line: 6
            })
        );
    }
}
