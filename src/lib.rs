//! moat: per-device privacy routing and traffic shaping for OpenWrt routers.
//!
//! The pipeline (see ARCHITECTURE.md): UCI text ([`config::uci`]) → typed, validated model →
//! pure plan (nft ruleset text, routes, shaper parameters) → apply (effects).
//! Everything except the apply/daemon layer is pure and unit-tested; every `unsafe` system call
//! is in [`sys`].

pub mod advice;
pub mod companion;
pub mod config;
pub mod daemon;
pub mod json;
pub mod netlink;
pub mod plan;
pub mod shaper;
pub mod sys;
pub mod wire;
