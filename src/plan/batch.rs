//! The nft batch as the plan holds it: one compact JSON text per command
//! (`{"add":{"rule":{…}}}`), in load order. Each object is serialized the
//! moment the ruleset builder makes it, so the typed `nftables` values of
//! a 10,000-rule batch never all live at once, and apply can compare two
//! batches object by object (an incremental load touches only what
//! changed). The texts are kept back to back in one block ([`Texts`]).
//! The typed objects are kept too only when asked for (the nft text
//! printer reads them).

use nftables::schema::{NfCmd, NfObject, Nftables};
use std::ops::{Index, Range};

/// Command texts, by position.
pub trait Commands {
    /// How many there are.
    fn count(&self) -> usize;
    /// The text of command `i` (`i < count()`).
    fn text(&self, i: usize) -> &str;
}

impl<S: AsRef<str>> Commands for [S] {
    fn count(&self) -> usize {
        self.len()
    }

    fn text(&self, i: usize) -> &str {
        self[i].as_ref()
    }
}

impl<S: AsRef<str>> Commands for Vec<S> {
    fn count(&self) -> usize {
        self.len()
    }

    fn text(&self, i: usize) -> &str {
        self[i].as_ref()
    }
}

impl<S: AsRef<str>, const N: usize> Commands for [S; N] {
    fn count(&self) -> usize {
        N
    }

    fn text(&self, i: usize) -> &str {
        self[i].as_ref()
    }
}

/// A batch's command texts stored back to back in one string, with where
/// each ends. One block instead of one per command: 10,000 rules make
/// 30,000 commands, and each block costs the allocator a header and
/// rounding besides its 16-byte pointer in the list (about 1 MB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts {
    all: String,
    ends: Vec<usize>,
}

impl Texts {
    /// How many texts.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Where text `i` is in `all`.
    fn span(&self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    /// Text `i`, if there are that many.
    pub fn get(&self, i: usize) -> Option<&str> {
        (i < self.len()).then(|| &self.all[self.span(i)])
    }

    /// The last text.
    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The texts in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| &self.all[self.span(i)])
    }

    /// Appends a text.
    pub fn push(&mut self, text: &str) {
        self.append(text);
        self.ends.push(self.all.len());
    }

    /// Replaces the last text (none: nothing happens).
    pub(super) fn set_last(&mut self, text: &str) {
        if let Some(i) = self.len().checked_sub(1) {
            self.all.truncate(self.span(i).start);
            self.append(text);
            self.ends[i] = self.all.len();
        }
    }

    /// Appends `text` to `all`, growing it by a quarter when full, not
    /// doubling it: the spare capacity of a 4 MB batch would be up to 4 MB
    /// (a big block is moved by remapping its pages, not copied, so this
    /// costs no time where it counts).
    fn append(&mut self, text: &str) {
        if self.all.capacity() - self.all.len() < text.len() {
            self.all
                .reserve_exact(text.len().max(self.all.len() / 4).max(256));
        }
        self.all.push_str(text);
    }

    /// Overwrites the bytes at `at` of text `i` with `with`, as long (the
    /// positions of all texts stay). False, and nothing changed, when
    /// `at` is not within the text or `with` is not as long.
    pub(super) fn overwrite(&mut self, i: usize, at: Range<usize>, with: &str) -> bool {
        let span = self.span(i);
        let ok = at.len() == with.len()
            && at.end <= span.len()
            && self.all.is_char_boundary(span.start + at.start)
            && self.all.is_char_boundary(span.start + at.end);
        if ok {
            self.all
                .replace_range(span.start + at.start..span.start + at.end, with);
        }
        ok
    }

    /// Gives back the spare capacity grown while pushing.
    pub(super) fn shrink_to_fit(&mut self) {
        self.all.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

impl Index<usize> for Texts {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        &self.all[self.span(i)]
    }
}

impl Commands for Texts {
    fn count(&self) -> usize {
        self.len()
    }

    fn text(&self, i: usize) -> &str {
        &self[i]
    }
}

impl<S: AsRef<str>> FromIterator<S> for Texts {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Texts {
        let mut t = Texts::default();
        for s in iter {
            t.push(s.as_ref());
        }
        t
    }
}

/// An nft batch: `{"nftables":[OBJECT,…]}` kept as its objects' texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    objects: Texts,
    typed: Option<Vec<NfObject<'static>>>,
}

impl Ruleset {
    /// An empty batch; `typed` keeps the typed objects as well.
    pub fn new(typed: bool) -> Ruleset {
        Ruleset {
            objects: Texts::default(),
            typed: typed.then(Vec::new),
        }
    }

    /// Appends one command.
    pub fn push(&mut self, cmd: NfCmd<'static>) {
        let obj = NfObject::CmdObject(cmd);
        // These types serialize infallibly (string keys, finite numbers).
        let text = serde_json::to_string(&obj).unwrap_or_default();
        self.objects.push(&text);
        if let Some(t) = &mut self.typed {
            t.push(obj);
        }
    }

    /// The commands' compact JSON texts, in order.
    pub fn objects(&self) -> &Texts {
        &self.objects
    }

    /// Mutable access to the texts (the fingerprint is stamped into them,
    /// long element lists are put into the last one).
    pub(super) fn objects_mut(&mut self) -> &mut Texts {
        &mut self.objects
    }

    /// Mutable access to the typed objects, when kept.
    pub(super) fn typed_mut(&mut self) -> Option<&mut Vec<NfObject<'static>>> {
        self.typed.as_mut()
    }

    /// True when the batch holds no command.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The batch as nft reads it: `{"nftables":[…]}`, compact, byte for
    /// byte what `serde_json::to_vec` writes for the typed batch.
    pub fn to_json(&self) -> Vec<u8> {
        let len = self.objects.all.len() + self.objects.len();
        let mut out = Vec::with_capacity(len + 16);
        out.extend_from_slice(b"{\"nftables\":[");
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(o.as_bytes());
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The batch as nft reads it, as pieces to write in order (the command
    /// texts themselves, no copy of the batch): `{"nftables":[`, the
    /// commands with `,` between them, `]}`. With `swap = (old, new)`, a
    /// command starting with `old` starts with `new` instead.
    pub fn pieces<'a>(&'a self, swap: Option<(&str, &'a str)>) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(2 * self.objects.len() + 2);
        out.push(&b"{\"nftables\":["[..]);
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push(b",");
            }
            match swap.and_then(|(old, new)| Some((new, o.strip_prefix(old)?))) {
                Some((new, rest)) => out.extend([new.as_bytes(), rest.as_bytes()]),
                None => out.push(o.as_bytes()),
            }
        }
        out.push(b"]}");
        out
    }

    /// The typed batch, when it was kept ([`Ruleset::new`] with `typed`).
    pub fn typed(&self) -> Option<Nftables<'static>> {
        self.typed.as_ref().map(|t| Nftables {
            objects: t.clone().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nftables::schema::{NfListObject, Table};
    use nftables::types::NfFamily;

    fn table() -> NfListObject<'static> {
        NfListObject::Table(Table {
            family: NfFamily::INet,
            name: "t".into(),
            handle: None,
        })
    }

    #[test]
    fn json_is_what_serde_writes_for_the_typed_batch() {
        let mut r = Ruleset::new(true);
        assert_eq!(r.to_json(), br#"{"nftables":[]}"#);
        r.push(NfCmd::Add(table()));
        r.push(NfCmd::Delete(table()));
        let typed = serde_json::to_vec(&r.typed().unwrap()).unwrap();
        assert_eq!(r.to_json(), typed);
        assert_eq!(r.objects().len(), 2);
        assert_eq!(r.pieces(None).concat(), r.to_json());
        let swapped = r.pieces(Some(("{\"delete\":", "{\"flush\":"))).concat();
        assert_eq!(
            String::from_utf8(swapped).unwrap(),
            r#"{"nftables":[{"add":{"table":{"family":"inet","name":"t"}}},{"flush":{"table":{"family":"inet","name":"t"}}}]}"#
        );
        assert_eq!(
            &r.objects()[1],
            r#"{"delete":{"table":{"family":"inet","name":"t"}}}"#
        );
    }

    #[test]
    fn texts_are_found_again_by_position_after_edits() {
        let mut t: Texts = ["ab", "", "cde"].into_iter().collect();
        assert_eq!(t.iter().collect::<Vec<_>>(), ["ab", "", "cde"]);
        assert_eq!((t.len(), t.get(3), t.last()), (3, None, Some("cde")));
        t.set_last("xy");
        assert!(t.overwrite(0, 1..2, "Z"));
        assert!(!t.overwrite(0, 1..2, "ZZ") && !t.overwrite(0, 1..3, "ZZ"));
        assert_eq!((&t[0], &t[1], &t[2]), ("aZ", "", "xy"));
        t.push("é");
        assert!(!t.overwrite(3, 0..1, "e"), "not at a character boundary");
        t.shrink_to_fit();
        assert_eq!(t.count(), 4);
        assert_eq!(t.text(3), "é");
        assert_eq!(Texts::default().last(), None);
    }

    #[test]
    fn typed_objects_are_kept_only_when_asked() {
        let mut r = Ruleset::new(false);
        r.push(NfCmd::Add(table()));
        assert!(r.typed().is_none());
        assert!(!r.is_empty());
    }
}
