//! moat: per-device privacy routing and traffic shaping for OpenWrt routers.
//!
//! The folders are the stages of the pipeline (see ARCHITECTURE.md). Control path: UCI text
//! ([`config::uci`]) → typed, validated [`config::Model`] → pure [`plan`] (nft ruleset, routes, queue
//! and shaper parameters; [`advice`] for the rest of the router) → [`daemon`] (effects). Packet path:
//! [`netlink::queue`] → [`wire`] views → pure [`shaper`] → verdict / cover injection ([`daemon::engine`]).
//! Lower layers never import higher ones: `sys < netlink < wire < shaper < config < plan < advice <
//! daemon`; every `unsafe` system call is in [`sys`].

pub mod advice;
pub mod companion;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod json;
pub mod netlink;
pub mod plan;
pub mod rpc;
pub mod shaper;
pub mod sys;
pub mod wire;
