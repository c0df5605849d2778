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

    /// Appends `text` to `all` (growing it as [`Appender`] does).
    fn append(&mut self, text: &str) {
        if let Some(n) = reserve(self.all.len(), self.all.capacity(), text.len()) {
            self.all.reserve_exact(n);
        }
        self.all.push_str(text);
    }

    /// Where text `i` starts among the bytes an [`Appender`] sees.
    pub(super) fn start(&self, i: usize) -> usize {
        self.span(i).start
    }

    /// Inserts at byte `at` of the last text what `write` appends (the
    /// rest of that text moved after it), in place: a list of 100,000
    /// elements is written once, not written and then copied in. Returns
    /// where the inserted bytes are in the last text; nothing is inserted
    /// when `at` is not a character boundary within it.
    pub(super) fn insert_in_last(
        &mut self,
        at: usize,
        write: impl FnOnce(&mut Appender<'_>),
    ) -> Range<usize> {
        let Some(i) = self.len().checked_sub(1) else {
            return 0..0;
        };
        let start = self.span(i).start;
        if at > self.span(i).len() || !self.all.is_char_boundary(start + at) {
            return 0..0;
        }
        let mut bytes = std::mem::take(&mut self.all).into_bytes();
        let rest = bytes.split_off(start + at);
        write(&mut Appender { bytes: &mut bytes });
        let end = bytes.len() - start;
        Appender { bytes: &mut bytes }.extend(&rest);
        // Only the bytes from `start + at` on are new: those before were a
        // `String` cut at a character boundary. Checking the whole block
        // at every insertion made a plan quadratic in its lists (40,000
        // rules of alternating shapes: 14.5 s). The writers write JSON
        // text; anything else would be replaced, never shift another
        // command's text.
        self.all = match std::str::from_utf8(&bytes[start + at..]) {
            // SAFETY: valid UTF-8 up to a character boundary, then valid
            // UTF-8: the whole is valid UTF-8.
            Ok(_) => unsafe { String::from_utf8_unchecked(bytes) },
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        self.ends[i] = self.all.len();
        at..end
    }

    /// Overwrites the bytes at `at` of text `i` with `with`, as long (the
    /// positions of all texts stay). False, and nothing changed, when
    /// `at` is not within the text or `with` is not as long.
    pub(super) fn overwrite(&mut self, i: usize, at: Range<usize>, with: &str) -> bool {
        let span = self.span(i);
        let ok = at.start <= at.end
            && at.len() == with.len()
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

/// How much to reserve for `n` more bytes after `len` of `cap`, if any:
/// growth by a quarter, not doubling, as the texts of a 10,000-rule batch
/// (4 MB) would otherwise hold up to 4 MB of spare capacity (a big block
/// grows by remapping its pages, not by copying them).
fn reserve(len: usize, cap: usize, n: usize) -> Option<usize> {
    (cap - len < n).then(|| n.max(len / 4).max(256))
}

/// Appends to the bytes of a [`Texts`] ([`Texts::insert_in_last`]).
pub(super) struct Appender<'a> {
    bytes: &'a mut Vec<u8>,
}

impl Appender<'_> {
    /// Appends the bytes `b`.
    pub(super) fn extend(&mut self, b: &[u8]) {
        if let Some(n) = reserve(self.bytes.len(), self.bytes.capacity(), b.len()) {
            self.bytes.reserve_exact(n);
        }
        self.bytes.extend_from_slice(b);
    }

    /// Appends bytes `r` of those already there (from [`Texts::start`]);
    /// the part of `r` past them is left out.
    pub(super) fn copy_within(&mut self, r: Range<usize>) {
        let r = r.start.min(self.bytes.len())..r.end.min(self.bytes.len());
        if let Some(n) = reserve(self.bytes.len(), self.bytes.capacity(), r.len()) {
            self.bytes.reserve_exact(n);
        }
        self.bytes.extend_from_within(r);
    }
}

impl std::io::Write for Appender<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.extend(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
        assert_eq!(t.insert_in_last(1, |out| out.copy_within(0..1)), 1..2);
        assert_eq!(t.insert_in_last(9, |out| out.copy_within(0..1)), 0..0);
        assert!(t.overwrite(0, 1..2, "Z"));
        assert!(!t.overwrite(0, 1..2, "ZZ") && !t.overwrite(0, 1..3, "ZZ"));
        assert_eq!((&t[0], &t[1], &t[2]), ("aZ", "", "cade"));
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
