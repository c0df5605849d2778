//! The validated model of `/etc/config/connroute`.
//!
//! [`Config::from_document`] checks every section and option against the
//! option [`schema`] and reports problems as [`Diagnostic`]s naming file,
//! line, section and option. In connroute's own section types (globals,
//! gateway, rule) an unknown option, an empty value or a bad value is an
//! error, and any error means nothing is applied. So are a section named
//! twice and an option set twice (libuci merges and overwrites them). An
//! unknown section type is an error when it is a near miss of one of
//! connroute's (a case or spelling slip), otherwise a warning.

mod fields;
mod gateway;
mod globals;
mod list;
mod model;
pub mod reference;
mod rule;
pub mod schema;
pub mod source;
pub mod values;

use crate::ids::Ids;
use crate::uci::{self, Document};
pub use fields::MAX_VALUE;
use fields::{Context, Loader};
pub use list::{List, Rare};
pub use model::{Config, Criterion, Gateway, Globals, LogLevel, Rule};
use std::fmt;
pub use values::{Family, PortRange, Prefix, Proto};

/// Severity of a [`Diagnostic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ignored input; the config still loads.
    Warning,
    /// The config is refused.
    Error,
}

/// One problem found in the config, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as given on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The section, as `type 'name'` (empty for file-level errors).
    pub section: String,
    /// The option, when one is to blame.
    pub option: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// The diagnostic without its `warning: ` word, for a logger that
    /// names the level itself (`warn: FILE:LINE: …`, not `warn: FILE:LINE:
    /// warning: …`).
    pub fn unlabelled(&self) -> impl fmt::Display + '_ {
        Unlabelled(self)
    }

    /// `FILE:LINE: KIND[SECTION: ][option 'O': ]MESSAGE`.
    fn write(&self, f: &mut fmt::Formatter<'_>, kind: &str) -> fmt::Result {
        write!(f, "{}:{}: {kind}", self.file, self.line)?;
        if !self.section.is_empty() {
            write!(f, "{}: ", self.section)?;
        }
        if let Some(o) = &self.option {
            write!(f, "option '{}': ", crate::uci::clip(o))?;
        }
        f.write_str(&self.message)
    }
}

/// [`Diagnostic::unlabelled`].
struct Unlabelled<'a>(&'a Diagnostic);

impl fmt::Display for Unlabelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, "")
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error => "",
        };
        self.write(f, kind)
    }
}

/// A config that could not be loaded: every error found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// How many more were found (not kept, not printed).
    pub more: usize,
}

/// Most diagnostics printed for one file; the rest are counted.
pub const MAX_SHOWN: usize = 20;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        let more = self.diagnostics.len().saturating_sub(MAX_SHOWN) + self.more;
        if more > 0 {
            write!(f, "\n… and {more} more errors and warnings")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Longest section name connroute accepts (it names nft objects and tables).
pub const MAX_NAME: usize = 64;

impl Config {
    /// Parses and validates a config file's bytes with no ids file (marks
    /// and tables allocated in file order). `file` is used in messages.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Config, ConfigError> {
        Config::parse_with_ids(bytes, file, &Ids::default())
    }

    /// Like [`Config::parse`], keeping the allocations recorded in `ids`.
    pub fn parse_with_ids(bytes: &[u8], file: &str, ids: &Ids) -> Result<Config, ConfigError> {
        Config::from_document_with_ids(&Config::document(bytes, file)?, file, ids)
    }

    /// The UCI document of a config file's bytes (package named after
    /// `file`), its syntax error as a diagnostic. With it the bytes can be
    /// freed before validation.
    pub fn document(bytes: &[u8], file: &str) -> Result<Document, ConfigError> {
        let package = uci::package_name(std::path::Path::new(file));
        uci::parse(bytes, &package).map_err(|e| ConfigError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_string(),
                line: e.line,
                section: String::new(),
                option: None,
                message: e.to_string(),
            }],
            more: 0,
        })
    }

    /// Validates a parsed document (no ids file).
    pub fn from_document(doc: &Document, file: &str) -> Result<Config, ConfigError> {
        Config::from_document_with_ids(doc, file, &Ids::default())
    }

    /// Validates a parsed document, keeping the allocations in `previous`.
    pub fn from_document_with_ids(
        doc: &Document,
        file: &str,
        previous: &Ids,
    ) -> Result<Config, ConfigError> {
        let mut l = Loader {
            file,
            diags: Vec::new(),
            dropped: 0,
            dropped_error: false,
            errors: 0,
        };
        for s in &doc.sections {
            if !schema::SECTION_TYPES.contains(&&*s.stype) {
                match schema::near_section_type(&s.stype) {
                    // A misspelt `globals` or `rule` must not be skipped:
                    // `enabled '0'` or a rule's exclusion would be lost.
                    Some(near) => {
                        let msg = format!(
                            "unknown section type '{}'; did you mean '{near}'?",
                            uci::clip(&s.stype)
                        );
                        l.error(s.line, s, None, msg);
                    }
                    None => {
                        let msg =
                            format!("unknown section type '{}', ignored", uci::clip(&s.stype));
                        l.push(Severity::Warning, s.line, s, None, msg);
                    }
                }
            }
            if !s.anonymous && s.name.len() > MAX_NAME {
                let msg = format!("section name longer than {MAX_NAME} bytes");
                l.error(s.line, s, None, msg);
            }
        }
        let globals = globals::load(&mut l, doc);
        let (gateways, ids) = gateway::load(&mut l, doc, &globals, previous);
        let ctx = Context {
            mark_mask: globals.mark_mask,
        };
        let rules = rule::load(&mut l, doc, &gateways, &ctx);
        l.diags.sort_by_key(|d| d.line);
        if l.dropped_error || l.diags.iter().any(|d| d.severity == Severity::Error) {
            // Warnings stay in, in line order, so they are seen with the errors.
            return Err(ConfigError {
                diagnostics: l.diags,
                more: l.dropped,
            });
        }
        Ok(Config {
            globals,
            gateways,
            rules,
            warnings: l.diags,
            ids,
        })
    }

    /// Enabled gateways.
    pub fn enabled_gateways(&self) -> impl Iterator<Item = &Gateway> {
        self.gateways.iter().filter(|g| g.enabled)
    }

    /// Every OpenWrt interface name the enabled gateways and the rules
    /// refer to, sorted, each once: what netifd must be asked about.
    pub fn interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .enabled_gateways()
            .flat_map(|g| g.interfaces.iter().cloned())
            .chain(
                self.rules
                    .iter()
                    .flat_map(|r| r.in_interface.iter().cloned()),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests;
