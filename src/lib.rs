//! moat: per-device privacy routing and traffic shaping for OpenWrt routers.
//!
//! The pipeline (see ARCHITECTURE.md): UCI text ([`config::uci`]) → typed, validated model →
//! pure plan (nft ruleset text, routes, shaper parameters) → apply (effects).
//! Everything except the apply/daemon layer is pure and unit-tested.

pub mod advice;
pub mod config;
pub mod daemon;
pub mod inject;
pub mod json;
pub mod netlink;
pub mod nfqueue;
pub mod packet;
pub mod plan;
pub mod shaper;
/// TRANSITION: the facts type moved to [`plan::facts`], the probe to [`daemon::probe`].
pub mod facts {
    pub use crate::daemon::probe::probe_nft_queue;
    pub use crate::plan::facts::*;
} // TRANSITION

/// TRANSITION: the old path of [`config`]; removed once every branch is merged.
pub mod model {
    pub use crate::config::*;
}
/// TRANSITION: the old path of [`config::uci`].
pub mod uci {
    pub use crate::config::uci::*;
}
/// TRANSITION: the old path of [`advice`].
pub mod fwcheck {
    pub use crate::advice::*;
}
