//! `moat companion`: the VPN server's half of two-way shaping.
//!
//! It runs next to a WireGuard server (kernel WireGuard or wireguard-go) and shapes what the
//! server sends to each home router that asks, exactly as the router shapes its upstream, with
//! the same code: the pure shaper core ([`crate::shaper`]) inside the router's queue engine
//! ([`crate::daemon::engine::ShapingEngine`]), one NFQUEUE per shaped peer.
//!
//! - Packets leaving `device` toward a shaped peer's tunnel address are queued
//!   ([`rules`]: nft `queue` or xt `NFQUEUE`, probed as on the router), padded past the IP
//!   length to the peer's `pad_to` (the router's WireGuard trims it), released in the peer's
//!   schedule (constant slots or stochastic decoys), with a bounded queue and drop counters.
//!   No bypass: if the companion dies the rules stay and the kernel drops the shaped downstream;
//!   nothing leaves unshaped. Stopping it (SIGTERM) also leaves the rules (a restart resumes
//!   from the state file at once); `moat companion --cleanup` removes them.
//! - Cover packets go to the peer's tunnel address with a bad IPv4 checksum, so the router's
//!   kernel drops them silently; the companion's answer to the peer's request rides in their
//!   body ([`crate::wire::control`]).
//! - Requests arrive in the router's cover packets, read from an `AF_PACKET` tap on `device`
//!   ([`crate::sys::Tap`]) before the server's kernel drops them. WireGuard authenticates
//!   them (see [`peers`]); a peer can only ask for its own address. A refused request gets one
//!   answer packet (at the request's size, at most one per second per peer). Every cover
//!   packet of a shaping router carries its request, so the tap also tells when the router runs
//!   a decoy: a stochastic peer's schedule follows them (`follow`, each router decoy answered
//!   by a downstream decoy at once) instead of drawing decoys of its own.
//!
//! Files in `--state-dir` (default `/run/moat-companion`): `peers` (the accepted requests, so a
//! restarted companion shapes at once, before the peers ask again) and `status.json` (rewritten
//! every second: peers, their counters, refusals).

pub mod config;
pub mod peers;
pub mod rules;
mod run;

pub use run::{cleanup, run, Options};
