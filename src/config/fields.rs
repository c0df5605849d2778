//! Reads one section's options through the schema: unknown options,
//! empty values, oversized values, lists where one value belongs, and each
//! word's parser. Section loaders then only ask typed questions.

use super::model::{Criterion, LogLevel};
use super::schema::{self, Kind, OptSpec, Parser};
use super::values::{self, Family, PortRange, Prefix, Proto};
use super::{Diagnostic, Severity};
use crate::uci::{Document, Item, Section, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest value accepted where a name, address, port or number is
/// expected; anything longer is refused before it is parsed or copied.
pub const MAX_VALUE: usize = 64 * 1024;

/// Collects diagnostics for one file.
pub struct Loader<'a> {
    /// The file as named in messages.
    pub file: &'a str,
    /// Everything found so far, up to [`MAX_KEPT`].
    pub diags: Vec<Diagnostic>,
    /// How many more were found but not kept.
    pub dropped: usize,
    /// True when one of those was an error.
    pub dropped_error: bool,
    /// Errors found so far, kept or not.
    pub errors: usize,
}

/// Most diagnostics kept in memory for one file (a hostile file can have a
/// million bad lines); the rest are only counted.
pub const MAX_KEPT: usize = 1000;

impl Loader<'_> {
    /// Records a problem in `section`.
    pub fn push(
        &mut self,
        severity: Severity,
        line: usize,
        section: &Section,
        option: Option<&str>,
        message: String,
    ) {
        self.errors += usize::from(severity == Severity::Error);
        if self.diags.len() >= MAX_KEPT {
            self.dropped += 1;
            self.dropped_error |= severity == Severity::Error;
            return;
        }
        self.diags.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            line,
            section: section.label(),
            option: option.map(str::to_string),
            message,
        });
    }

    /// Records an error in `section`.
    pub fn error(&mut self, line: usize, section: &Section, option: Option<&str>, message: String) {
        self.push(Severity::Error, line, section, option, message);
    }

    /// Parses every option of `s` (a known section type) through the schema.
    pub fn fields<'s>(&mut self, doc: &Document, s: &'s Section, ctx: &Context) -> Fields<'s> {
        self.redeclarations(s);
        for (name, line) in &s.empty_options {
            self.error(
                *line,
                s,
                Some(name),
                "empty value: libuci drops the statement, so it would change nothing; \
                 remove the line or give a value"
                    .into(),
            );
        }
        let mut values = Vec::new();
        for o in &s.options {
            let Some(spec) = schema::lookup(&s.stype, &o.name) else {
                // Only counted once the loader is full: no hint to compute.
                let msg = match self.diags.len() < MAX_KEPT {
                    true => schema::unknown_option(&s.stype, &o.name),
                    false => String::new(),
                };
                self.error(o.line, s, Some(&o.name), msg);
                continue;
            };
            if spec.kind != Kind::List && matches!(o.value, Value::List(_)) {
                let line = o.value.items().first().map_or(o.line, |i| i.line);
                self.error(
                    line,
                    s,
                    Some(spec.name),
                    "must be a single option, not a list".into(),
                );
                continue;
            }
            let words = self.words(doc, s, spec, o.value.items(), ctx);
            values.push((spec.name, words));
        }
        Fields { section: s, values }
    }

    /// What libuci merges or overwrites without a word: a section named
    /// again (its options joined to the first one's, so a rule copied under
    /// the same name matches combinations neither asked for) and an
    /// `option` given again (only the last value kept, so a negation or a
    /// list can be lost). In connroute's own sections both are errors.
    fn redeclarations(&mut self, s: &Section) {
        for &line in &s.reopened {
            let m = format!(
                "section declared again (first at line {}): libuci would merge the two \
                 into one; give each its own name",
                s.line
            );
            self.error(line, s, None, m);
        }
        let reopened = s.reopened.first().copied().unwrap_or(usize::MAX);
        for r in &s.replaced {
            if r.earlier < reopened && r.line > reopened {
                continue; // a consequence of the merge reported above
            }
            let Some(spec) = schema::lookup(&s.stype, &r.name) else {
                continue; // the unknown option is reported on its own
            };
            let earlier = match r.was_list {
                true => "replaces the list started",
                false => "is set again (first",
            };
            let close = if r.was_list { "" } else { ")" };
            let fix = match spec.kind {
                Kind::List => format!("write each value as `list {}`", spec.name),
                Kind::Flag | Kind::Value => "remove one of the two lines".into(),
            };
            let m = format!(
                "{earlier} at line {}{close}: libuci keeps only the last value; {fix}",
                r.earlier
            );
            self.error(r.line, s, Some(spec.name), m);
        }
    }

    fn words(
        &mut self,
        doc: &Document,
        s: &Section,
        spec: &OptSpec,
        items: &[Item],
        ctx: &Context,
    ) -> Vec<Word> {
        // Usually one word an item: no doubling for a 100,000-item list.
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let text = match checked_text(doc, item) {
                Ok(t) => t,
                Err(m) => {
                    self.error(item.line, s, Some(spec.name), m);
                    continue;
                }
            };
            if text.trim().is_empty() {
                self.error(item.line, s, Some(spec.name), "empty value".into());
                continue;
            }
            let words: Vec<&str> = match spec.kind {
                Kind::List => text.split_ascii_whitespace().collect(),
                Kind::Flag | Kind::Value => vec![text.trim()],
            };
            for w in words {
                let (negated, body) = match w.strip_prefix('!') {
                    Some(rest) if spec.negatable => (true, rest),
                    Some(_) if spec.parser != Parser::Text => {
                        let w = crate::uci::clip(w);
                        let m = format!("'{w}': '!' (negation) is not supported by this option");
                        self.error(item.line, s, Some(spec.name), m);
                        continue;
                    }
                    _ => (false, w),
                };
                match parse(spec.parser, body, ctx) {
                    Ok(val) => {
                        // Only a one-digit length: a dropped digit (`/2`
                        // for `/24`) widens the match; `192.168.1.1/24`, a
                        // router's address with its LAN's length, is common
                        // and would warn on every hotplug event.
                        if let Val::Prefix(p) = &val
                            && p.len < 10
                            && values::has_host_bits(body, p)
                        {
                            let w = crate::uci::clip(w);
                            let m = format!("'{w}' has bits set past its length: read as {p}");
                            self.push(Severity::Warning, item.line, s, Some(spec.name), m);
                        }
                        out.push(Word { val, negated })
                    }
                    Err(m) => {
                        let m = m.replace(w, &crate::uci::clip(w));
                        self.error(item.line, s, Some(spec.name), m)
                    }
                }
            }
        }
        out
    }
}

/// The item's text, refused when too long or not ASCII.
fn checked_text<'d>(doc: &'d Document, item: &Item) -> Result<&'d str, String> {
    if item.len() > MAX_VALUE {
        return Err(format!(
            "value of {} bytes is longer than the {MAX_VALUE} bytes any name, address or port needs",
            item.len()
        ));
    }
    std::str::from_utf8(doc.bytes(item))
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| {
            format!(
                "'{}' contains non-ASCII bytes",
                crate::uci::clip(&doc.text(item))
            )
        })
}

/// What a value parser may need from sections read earlier.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// `globals.mark_mask`, for `mark`.
    pub mark_mask: u32,
}

/// One parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(u32),
    /// A name or free text.
    Text(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// A protocol.
    Proto(Proto),
    /// An address or prefix.
    Prefix(Prefix),
    /// A port range.
    Port(PortRange),
    /// A family, `None` for any.
    Family(Option<Family>),
    /// A log level.
    Level(LogLevel),
}

/// One word of an option, with its `!`.
#[derive(Debug, Clone)]
pub struct Word {
    /// The value.
    pub val: Val,
    /// True when written `!value`.
    pub negated: bool,
}

fn parse(p: Parser, w: &str, ctx: &Context) -> Result<Val, String> {
    Ok(match p {
        Parser::Bool => Val::Bool(values::boolean(w)?),
        Parser::MarkMask => Val::Num(values::mark_mask(w)?),
        Parser::RulePriority => Val::Num(values::rule_priority(w)?),
        Parser::TableBase => Val::Num(values::table_base(w)?),
        Parser::LogLevel => Val::Level(LogLevel::parse(w)?),
        Parser::Ipv4 => Val::V4(
            w.parse()
                .map_err(|_| format!("'{w}' is not an IPv4 address"))?,
        ),
        Parser::Ipv6 => Val::V6(
            w.parse()
                .map_err(|_| format!("'{w}' is not an IPv6 address"))?,
        ),
        Parser::Device => Val::Text(values::device(w)?),
        Parser::Interface => Val::Text(values::interface(w)?),
        Parser::Mark => Val::Num(values::mark(w, ctx.mark_mask)?),
        Parser::Table => Val::Num(values::table(w)?),
        Parser::GatewayRef | Parser::Text => Val::Text(w.to_string()),
        Parser::Family => Val::Family(values::family(w)?),
        Parser::Mac => Val::Text(values::mac(w)?),
        Parser::Proto => Val::Proto(values::proto(w)?),
        Parser::Prefix => Val::Prefix(values::prefix(w)?),
        Parser::Port => Val::Port(values::port_range(w)?),
    })
}

/// A section's parsed options.
pub struct Fields<'s> {
    /// The section they came from.
    pub section: &'s Section,
    values: Vec<(&'static str, Vec<Word>)>,
}

impl Fields<'_> {
    fn all(&self, name: &str) -> &[Word] {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, w)| w.as_slice())
    }

    fn each<T>(&self, name: &str, f: impl Fn(&Val) -> Option<T>) -> Vec<T> {
        self.all(name).iter().filter_map(|w| f(&w.val)).collect()
    }

    /// True when the file sets the option (even to a bad value).
    pub fn given(&self, name: &str) -> bool {
        self.section.option(name).is_some()
    }

    /// Line of the option, or of the section when absent.
    pub fn line(&self, name: &str) -> usize {
        self.section
            .option(name)
            .map_or(self.section.line, |o| o.line)
    }

    /// A boolean option.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.each(name, |v| match v {
            Val::Bool(b) => Some(*b),
            _ => None,
        })
        .pop()
    }

    /// A numeric option.
    pub fn num(&self, name: &str) -> Option<u32> {
        self.each(name, |v| match v {
            Val::Num(n) => Some(*n),
            _ => None,
        })
        .pop()
    }

    /// Every text value of an option.
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.each(name, |v| match v {
            Val::Text(t) => Some(t.clone()),
            _ => None,
        })
    }

    /// A single text value.
    pub fn text(&self, name: &str) -> Option<String> {
        self.texts(name).pop()
    }

    /// Every parsed value of an option.
    pub fn vals(&self, name: &str) -> Vec<Val> {
        self.each(name, |v| Some(v.clone()))
    }

    /// The option's values split into "any of" and "none of" (`!`).
    pub fn criterion<T>(&self, name: &str, f: impl Fn(&Val) -> Option<T>) -> Criterion<T> {
        let all = self.all(name);
        let negated = all.iter().filter(|w| w.negated).count();
        let (mut any, mut none) = (
            Vec::with_capacity(all.len() - negated),
            Vec::with_capacity(negated),
        );
        for w in all {
            if let Some(v) = f(&w.val) {
                if w.negated {
                    none.push(v);
                } else {
                    any.push(v);
                }
            }
        }
        Criterion {
            any: any.into(),
            none: none.into(),
        }
    }
}
