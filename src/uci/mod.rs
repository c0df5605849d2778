//! UCI: OpenWrt's configuration file format, read exactly as libuci reads it.
//!
//! [`parse`] turns the bytes of one file into a [`Document`]; the document
//! prints itself back in `uci export` and `uci show` formats.

mod document;
mod reader;

pub use document::{Document, Item, Opt, Section, Value};
pub use reader::{Lenient, Mode, ParseError, parse, parse_lenient};
