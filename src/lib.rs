//! connroute: connection-based policy routing for OpenWrt routers and Linux
//! gateways.
//!
//! A one-way pipeline of pure stages, then one place that touches the system:
//! [`uci`] (bytes → document) → [`config`] (document → validated model) →
//! [`plan`] (model + live facts → desired state) → `apply` (desired vs actual
//! → atomic changes). The CLI in [`cli`] only wires these together.

pub mod apply;
pub mod arena;
pub mod cli;
pub mod config;
pub mod facts;
pub mod hotplug;
pub mod ids;
pub mod kernel_facts;
pub mod nft;
pub mod plan;
pub mod service;
pub mod ubus;
pub mod uci;
pub mod watch;
