//! moat: per-device privacy routing and traffic shaping for OpenWrt routers.
//!
//! The pipeline (see ARCHITECTURE.md): UCI text ([`uci`]) → typed, validated model →
//! pure plan (nft ruleset text, routes, shaper parameters) → apply (effects).
//! Everything except the apply/daemon layer is pure and unit-tested.

pub mod daemon;
pub mod discover;
pub mod facts;
pub mod fwcheck;
pub mod inject;
pub mod json;
pub mod json_value;
pub mod model;
pub mod netlink;
pub mod nfqueue;
pub mod packet;
pub mod plan;
pub mod rpc;
pub mod shaper;
pub mod uci;
