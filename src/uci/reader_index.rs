//! The reader's look-ups: sections by name (anonymous ones by their
//! generated id), option names and section types shared, and the options
//! of big sections indexed, so huge files parse in linear time without
//! a map entry per small section's option.

use super::{INDEX_FROM, Reader};
use std::rc::Rc;

impl Reader<'_> {
    /// The first section called `name`: a named one, or an anonymous one
    /// whose generated id (`cfg` + ordinal + type hash) it is.
    pub(super) fn find_section(&self, name: &str) -> Option<usize> {
        let named = self.sections.get(name).copied();
        let ordinal = name
            .strip_prefix("cfg")
            .filter(|hex| hex.len() >= 6 && hex.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|hex| usize::from_str_radix(&hex[..hex.len() - 4], 16).ok());
        let anonymous = ordinal.filter(|&n| {
            self.doc
                .sections
                .get(n.wrapping_sub(1))
                .is_some_and(|s| s.anonymous && &*s.name == name)
        });
        match (named, anonymous.map(|n| n - 1)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The shared copy of the name or type at `start` in the buffer.
    pub(super) fn intern(&mut self, start: usize) -> Rc<str> {
        let text = self.text(start);
        let text = String::from_utf8_lossy(&text);
        if let Some(&i) = self.names.get(&*text) {
            return self.interned[i].clone();
        }
        let name: Rc<str> = (*text).into();
        self.names.insert(text.into_owned(), self.interned.len());
        self.interned.push(name.clone());
        name
    }

    /// Index of option `name` in section `s`, if it exists.
    pub(super) fn find_option(&self, s: usize, name: &Rc<str>) -> Option<usize> {
        let options = &self.doc.sections[s].options;
        if options.len() <= INDEX_FROM {
            options.iter().position(|o| Rc::ptr_eq(&o.name, name))
        } else {
            self.options.get(&format!("{s}.{name}")).copied()
        }
    }

    /// Indexes a new option `i` of section `s` (all of them once the
    /// section grows past [`INDEX_FROM`]).
    pub(super) fn index_option(&mut self, s: usize, i: usize) {
        let options = &self.doc.sections[s].options;
        let from = match options.len() {
            n if n <= INDEX_FROM => return,
            n if n == INDEX_FROM + 1 => 0,
            _ => i,
        };
        for (j, o) in options.iter().enumerate().skip(from) {
            self.options.insert(format!("{s}.{}", o.name), j);
        }
    }
}
