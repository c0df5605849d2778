//! The one place that changes the system: compares the plan with what the
//! kernel has and makes them match, routes first, then ip rules, then the
//! nft table in one transaction, rolling back on failure.

pub mod child;
pub mod dump;
pub mod engine;
pub mod lock;
pub mod netlink;
pub mod nft;
pub mod rt_tables;
pub mod rtnl;
