//! [`List`]: the values of one rule option, with a single value kept
//! inline. Most options of most rules hold one value (`proto tcp`, one
//! address, one port); 10,000 rules would otherwise hold 30,000 tiny heap
//! blocks, each costing the allocator a header and rounding besides its
//! bytes (tests/config_memory.rs counts them).

use std::ops::{Deref, DerefMut};

/// Values of an option in file order; reads as a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List<T> {
    /// Exactly one value, no heap block.
    One(T),
    /// None, or two and more.
    Many(Box<[T]>),
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::Many(Box::default())
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(mut v: Vec<T>) -> Self {
        match v.len() {
            1 => List::One(v.remove(0)),
            _ => List::Many(v.into()),
        }
    }
}

impl<T> Deref for List<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            List::One(v) => std::slice::from_ref(v),
            List::Many(v) => v,
        }
    }
}

impl<T> DerefMut for List<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            List::One(v) => std::slice::from_mut(v),
            List::Many(v) => v,
        }
    }
}

/// Values of an option most rules leave empty (negated values, input
/// matches): one word, no heap block, when empty; a block holding the
/// slice otherwise. A boxed slice is two words: 10,000 rules with seven
/// such options held 560 KB of empty ones.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Rare<T>(Option<Box<Box<[T]>>>);

impl<T> From<Vec<T>> for Rare<T> {
    fn from(v: Vec<T>) -> Self {
        Rare((!v.is_empty()).then(|| Box::new(v.into_boxed_slice())))
    }
}

impl<T> Deref for Rare<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], |v| v)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Rare<T> {
    /// As the slice.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.deref().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::{List, Rare};

    #[test]
    fn rare_is_one_word_and_reads_as_its_slice() {
        assert_eq!(size_of::<Rare<String>>(), size_of::<usize>());
        let r = Rare::from(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(*r, ["a", "b"]);
        assert_eq!(format!("{r:?}"), r#"["a", "b"]"#);
        assert!(Rare::<u8>::from(Vec::new()).is_empty() && Rare::<u8>::default().0.is_none());
    }

    #[test]
    fn reads_as_the_slice_it_was_made_from() {
        for n in 0..4u16 {
            let v: Vec<u16> = (0..n).collect();
            let mut l = List::from(v.clone());
            assert_eq!(*l, *v);
            assert_eq!(matches!(l, List::One(_)), n == 1);
            if let Some(x) = l.first_mut() {
                *x = 9;
            }
            assert_eq!(l.first().copied(), (n > 0).then_some(9));
        }
        assert!(List::<u8>::default().is_empty());
    }
}
