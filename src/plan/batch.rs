//! The nft batch as the plan holds it: one compact JSON text per command
//! (`{"add":{"rule":{…}}}`), in load order. Each object is serialized the
//! moment the ruleset builder makes it, so the typed `nftables` values of
//! a 10,000-rule batch never all live at once, and apply can compare two
//! batches object by object (an incremental load touches only what
//! changed). The typed objects are kept too only when asked for (the nft
//! text printer reads them).

use nftables::schema::{NfCmd, NfObject, Nftables};

/// An nft batch: `{"nftables":[OBJECT,…]}` kept as its objects' texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    objects: Vec<Box<str>>,
    typed: Option<Vec<NfObject<'static>>>,
}

impl Ruleset {
    /// An empty batch; `typed` keeps the typed objects as well.
    pub fn new(typed: bool) -> Ruleset {
        Ruleset {
            objects: Vec::new(),
            typed: typed.then(Vec::new),
        }
    }

    /// Appends one command.
    pub fn push(&mut self, cmd: NfCmd<'static>) {
        let obj = NfObject::CmdObject(cmd);
        // These types serialize infallibly (string keys, finite numbers).
        let text = serde_json::to_string(&obj).unwrap_or_default();
        self.objects.push(text.into_boxed_str());
        if let Some(t) = &mut self.typed {
            t.push(obj);
        }
    }

    /// The commands' compact JSON texts, in order.
    pub fn objects(&self) -> &[Box<str>] {
        &self.objects
    }

    /// Mutable access to the texts (the fingerprint is stamped into them).
    pub(super) fn objects_mut(&mut self) -> &mut [Box<str>] {
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
        let len: usize = self.objects.iter().map(|o| o.len() + 1).sum();
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
            &*r.objects()[1],
            r#"{"delete":{"table":{"family":"inet","name":"t"}}}"#
        );
    }

    #[test]
    fn typed_objects_are_kept_only_when_asked() {
        let mut r = Ruleset::new(false);
        r.push(NfCmd::Add(table()));
        assert!(r.typed().is_none());
        assert!(!r.is_empty());
    }
}
