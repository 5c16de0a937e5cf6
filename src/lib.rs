//! moat: per-device privacy routing and traffic shaping for OpenWrt routers.
//!
//! The pipeline (see ARCHITECTURE.md): UCI text ([`uci`]) → typed, validated model →
//! pure plan (nft ruleset text, routes, shaper parameters) → apply (effects).
//! Everything except the apply/daemon layer is pure and unit-tested; every `unsafe` system call
//! is in [`sys`].

pub mod daemon;
pub mod facts;
pub mod fwcheck;
pub mod json;
pub mod model;
pub mod netlink;
pub mod plan;
pub mod shaper;
pub mod sys;
pub mod uci;
pub mod wire;

/// TRANSITION: the old path of [`wire`] (the lead removes this after merging).
pub mod packet {
    pub use crate::wire::*;
}
/// TRANSITION: the old path of [`netlink::queue`].
pub mod nfqueue {
    pub use crate::netlink::queue::*;
}
/// TRANSITION: the old path of the `AF_PACKET` sender and the ifindex lookup, now in [`sys`].
pub mod inject {
    pub use crate::sys::{ifindex, Injector};
}
