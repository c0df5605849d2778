//! Runs: consecutive classify entries of the same shape gathered into one
//! verdict map, as long as no element of a new entry overlaps one already
//! in the run (so at most one rule of a run can match a packet, and the
//! map lookup picks what first-match-wins order would).

use super::classify::{Element, Entry, Key, Val, elements, entry, is_point};
use super::ruleset::Placed;
use crate::config::Family;
use std::collections::BTreeSet;

/// The shape of an entry: family and matched options, in order.
type Shape = (Option<Family>, Vec<Key>);

/// Consecutive same-shape entries being gathered into one map. Only what
/// the overlap test needs is kept (a hash per point element, the low ends
/// of point elements, the spans of range elements): the values themselves
/// are read again from the config when the map is made, so a run of
/// 10,000 rules holds tens of bytes per rule, not its expressions.
#[derive(Default)]
pub(super) struct Run<'a> {
    /// The shape of every entry, once there is one.
    pub shape: Option<Shape>,
    /// Its entries: each a rule for a family (`None`: both).
    pub entries: Vec<(&'a Placed<'a>, Option<Family>)>,
    /// Hashes of the point elements (a collision only splits the run).
    hashes: BTreeSet<u32>,
    /// The point elements' values, one per part, element after element;
    /// only once a range element needs them (a run of points, the usual
    /// case, never does: it is read again from the rules when one does).
    points: Option<Vec<u128>>,
    /// The range elements' spans, one per part, element after element.
    ranges: Vec<(u128, u128)>,
    /// How many elements the run's map has.
    pub elements: usize,
}

fn spans_hash(el: &[&Val]) -> u32 {
    el.iter().fold(0x811c_9dc5u32, |h, v| {
        let bytes = [v.span.0.to_le_bytes(), v.span.1.to_le_bytes()].concat();
        (bytes.iter()).fold(h, |h, &c| (h ^ u32::from(c)).wrapping_mul(0x0100_0193))
    })
}

fn shape(e: &Entry) -> Shape {
    (e.family, e.parts.iter().map(|p| p.key).collect())
}

/// True when the spans (one per part) overlap element `el`.
fn overlaps<'s>(mut spans: impl Iterator<Item = (u128, u128)> + 's, el: &[&Val]) -> bool {
    el.iter().all(|v| {
        spans
            .next()
            .is_some_and(|s| s.0 <= v.span.1 && v.span.0 <= s.1)
    })
}

impl<'a> Run<'a> {
    /// Takes the entry if it has this run's shape and overlaps nothing in it.
    pub fn accepts(&mut self, e: &Entry, els: &[Element]) -> bool {
        let Some(shape_now) = &self.shape else {
            return true;
        };
        if *shape_now != shape(e) {
            return false;
        }
        if els.iter().any(|el| !is_point(el)) {
            self.keep_points();
        }
        let points = self.points.as_deref().unwrap_or_default();
        let width = e.parts.len();
        els.iter().all(|el| {
            !self.hashes.contains(&spans_hash(el))
                && self
                    .ranges
                    .chunks(width)
                    .all(|r| !overlaps(r.iter().copied(), el))
                && (is_point(el)
                    || (points.chunks(width)).all(|p| !overlaps(p.iter().map(|&x| (x, x)), el)))
        })
    }

    /// Adds an entry it accepts.
    pub fn push(&mut self, e: &Entry<'a>, els: &[Element]) {
        if self.shape.is_none() {
            self.shape = Some(shape(e));
        }
        for el in els {
            if is_point(el) {
                self.hashes.insert(spans_hash(el));
                if let Some(points) = &mut self.points {
                    points.extend(el.iter().map(|v| v.span.0));
                }
            } else {
                self.ranges.extend(el.iter().map(|v| v.span));
            }
        }
        self.elements += els.len();
        self.entries.push((e.placed, e.family));
    }

    /// Starts keeping the point elements' values, from the entries so far.
    fn keep_points(&mut self) {
        if self.points.is_some() {
            return;
        }
        let mut points = Vec::new();
        for &(p, family) in &self.entries {
            let e = entry(p, family);
            for el in elements(&e).unwrap_or_default() {
                if is_point(&el) {
                    points.extend(el.iter().map(|v| v.span.0));
                }
            }
        }
        self.points = Some(points);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::facts::Facts;

    /// The classify chain's rules of a config: each rule's comment.
    fn classify(src: &str) -> Vec<String> {
        let config = Config::parse(src.as_bytes(), "t").unwrap();
        let batch = super::super::plan(&config, &Facts::default()).ruleset;
        let rules = batch
            .objects()
            .iter()
            .filter(|o| o.contains("\"chain\":\"classify\""));
        let comment = |o: &str| {
            o.split("\"comment\":\"")
                .nth(1)?
                .split('"')
                .next()
                .map(String::from)
        };
        rules.filter_map(comment).collect()
    }

    fn rule(name: &str, ports: &str) -> String {
        format!(
            "config rule {name}\n\toption gateway g\n\tlist proto tcp\n\tlist dest_port '{ports}'\n"
        )
    }

    /// A range after a run of points is checked against those points, which
    /// the run only keeps from then on: overlapping ones split the run,
    /// others join it, and points after it are checked against it.
    #[test]
    fn ranges_after_points_split_only_when_they_overlap() {
        let gw = "config gateway g\n\toption gateway 10.0.0.1\n";
        let joined = [
            gw,
            &rule("a", "80"),
            &rule("b", "81"),
            &rule("c", "100-110"),
        ]
        .concat();
        assert_eq!(classify(&joined), ["3 rules"]);
        let split = [gw, &rule("a", "80"), &rule("b", "81"), &rule("c", "70-90")].concat();
        assert_eq!(classify(&split), ["2 rules", "rule c"]);
        let after = [
            gw,
            &rule("a", "80"),
            &rule("c", "100-110"),
            &rule("d", "105"),
            &rule("e", "82"),
        ];
        assert_eq!(classify(&after.concat()), ["2 rules", "2 rules"]);
    }
}
