//! nftables output: constructors for the `nftables` crate's types and a
//! printer for nft's text syntax.

pub mod build;
pub mod text;
