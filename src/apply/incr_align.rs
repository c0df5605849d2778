//! Aligning two rule lists: which rules an incremental update keeps.

/// Middles of two rule lists longer than this (product) are not aligned
/// rule by rule: every rule of the middle is replaced.
const ALIGN_MAX: usize = 1 << 18;

/// Pairs `(i, j)` of equal rules kept from `old` to `new`, ascending: the
/// common prefix and suffix, and a longest common subsequence between.
pub fn align<T: PartialEq>(old: &[T], new: &[T]) -> Vec<(usize, usize)> {
    let pre = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (o, n) = (&old[pre..], &new[pre..]);
    let suf = o
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (o, n) = (&o[..o.len() - suf], &n[..n.len() - suf]);
    let mut kept: Vec<(usize, usize)> = (0..pre).map(|i| (i, i)).collect();
    if o.len().saturating_mul(n.len()) <= ALIGN_MAX {
        kept.extend(lcs(o, n).into_iter().map(|(i, j)| (i + pre, j + pre)));
    }
    let (a, b) = (old.len() - suf, new.len() - suf);
    kept.extend((0..suf).map(|k| (a + k, b + k)));
    kept
}

/// A longest common subsequence of `o` and `n` as index pairs.
fn lcs<T: PartialEq>(o: &[T], n: &[T]) -> Vec<(usize, usize)> {
    let w = n.len() + 1;
    let mut t = vec![0u32; (o.len() + 1) * w];
    for i in (0..o.len()).rev() {
        for j in (0..n.len()).rev() {
            t[i * w + j] = if o[i] == n[j] {
                t[(i + 1) * w + j + 1] + 1
            } else {
                t[(i + 1) * w + j].max(t[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < o.len() && j < n.len() {
        if o[i] == n[j] {
            out.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if t[(i + 1) * w + j] >= t[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}
