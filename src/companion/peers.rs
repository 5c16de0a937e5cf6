//! Which peers the companion shapes, pure: a request is checked against its source and the
//! configuration's limits, then accepted (new or changed shaping: the rules and queues must be
//! updated), refreshed (nothing changes) or refused with a [`Refusal`] the peer is told.
//!
//! Authentication is WireGuard's: a decrypted packet on the companion's device whose source is
//! X came from the peer whose allowed-ips contain X (WireGuard drops anything else), so "the
//! request's source" identifies the peer, and a peer may only ask for traffic addressed to
//! that source. A peer that stops asking is dropped after [`expire_after`] (its rule with it).

use super::config::CompanionConfig;
use super::rules::{PeerRule, QUEUE_BASE};
use crate::shaper::{Config, ConstantConfig, Micros, Mode, StochasticConfig, MIN_PAD_TO, SECOND};
use crate::wire::control::{ModeParams, Refusal, Request, MIN_PACKET};
use std::net::IpAddr;

/// A constant-mode peer that has not repeated its request for this long is no longer shaped
/// (its cover packets, which carry the request, come many times a second).
pub const EXPIRE_US: Micros = 120 * SECOND;
/// The same for a stochastic peer: its cover packets come only in decoy periods, hours apart.
pub const EXPIRE_STOCHASTIC_US: Micros = 24 * 3600 * SECOND;

/// How long a peer asking `r` stays shaped without asking again.
pub fn expire_after(r: &Request) -> Micros {
    match r.mode {
        ModeParams::Constant { .. } => EXPIRE_US,
        ModeParams::Stochastic { .. } => EXPIRE_STOCHASTIC_US,
    }
}

/// One shaped peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its tunnel address (source of its requests, destination of its shaped downstream).
    pub addr: IpAddr,
    /// Its NFQUEUE.
    pub queue: u16,
    /// What it asked for.
    pub request: Request,
    /// When it last asked.
    pub last_seen: Micros,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Shaped as before.
    Refreshed,
    /// New or changed shaping: rules and queues must be applied.
    Changed,
    /// Refused.
    Refused(Refusal),
}

/// Counters of refused requests by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Address not the request's source.
    pub address_mismatch: u64,
    /// Not in `allow_peer`.
    pub not_allowed: u64,
    /// Above `max_rate`.
    pub rate_too_high: u64,
    /// `max_peers` reached.
    pub too_many_peers: u64,
    /// Parameters out of range.
    pub bad_params: u64,
    /// Set-up failed.
    pub internal: u64,
}

impl Refused {
    /// Count one refusal.
    pub fn count(&mut self, r: Refusal) {
        *match r {
            Refusal::AddressMismatch => &mut self.address_mismatch,
            Refusal::NotAllowed => &mut self.not_allowed,
            Refusal::RateTooHigh => &mut self.rate_too_high,
            Refusal::TooManyPeers => &mut self.too_many_peers,
            Refusal::BadParams => &mut self.bad_params,
            Refusal::Internal => &mut self.internal,
        } += 1;
    }
}

/// The shaper configuration a request asks for (both ends run the same one).
pub fn shaper_config(r: &Request) -> Config {
    let mode = match r.mode {
        ModeParams::Constant { rate } => Mode::Constant(ConstantConfig::with_rate(rate)),
        ModeParams::Stochastic {
            decoys_per_hour,
            rate_cap,
            budget_mb,
            decoy_rate,
            decoy_duration_s,
            max_duration_s,
            idle_gap_s,
            pace_percent,
        } => Mode::Stochastic(StochasticConfig {
            decoys_per_hour: decoys_per_hour as u32,
            rate_cap: rate_cap as u32,
            budget_bytes_per_day: budget_mb as u64 * 1_000_000,
            default_rate: decoy_rate as u32,
            default_duration_s: decoy_duration_s as u32,
            max_duration_s: max_duration_s as u32,
            idle_gap: idle_gap_s as u64 * SECOND,
            pace_percent: pace_percent as u32,
            pace_window: StochasticConfig::default().pace_window,
            // the router draws the decoys; the companion answers each with a downstream one
            follow: true,
        }),
    };
    Config { pad_to: r.pad_to, mode }
}

/// Check a request from `src` against the configuration and the device's `mtu`.
pub fn check(cfg: &CompanionConfig, mtu: Option<u32>, src: IpAddr, r: &Request) -> Result<(), Refusal> {
    if r.addr != src {
        return Err(Refusal::AddressMismatch);
    }
    if !cfg.allow_peer.is_empty() && !cfg.allow_peer.iter().any(|p| p.contains(src)) {
        return Err(Refusal::NotAllowed);
    }
    let max_pad = mtu.unwrap_or(0).min(u16::MAX as u32) as u16;
    if r.pad_to < MIN_PAD_TO.max(MIN_PACKET as u16) || r.pad_to > max_pad {
        return Err(Refusal::BadParams);
    }
    match r.mode {
        ModeParams::Constant { rate } => {
            if rate == 0 {
                return Err(Refusal::BadParams);
            }
            if rate > cfg.max_rate {
                return Err(Refusal::RateTooHigh);
            }
        }
        ModeParams::Stochastic { rate_cap, decoy_rate, decoy_duration_s, max_duration_s, idle_gap_s, .. } => {
            if rate_cap == 0 || decoy_rate == 0 || decoy_duration_s == 0 || max_duration_s == 0 || idle_gap_s == 0 {
                return Err(Refusal::BadParams);
            }
            if rate_cap as u32 > cfg.max_rate || decoy_rate as u32 > cfg.max_rate {
                return Err(Refusal::RateTooHigh);
            }
        }
    }
    Ok(())
}

/// The shaped peers.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// In queue order.
    pub peers: Vec<Peer>,
    /// Refusals by reason.
    pub refused: Refused,
}

impl Peers {
    /// Handle a request from `src` at `now`.
    pub fn request(
        &mut self,
        cfg: &CompanionConfig,
        mtu: Option<u32>,
        src: IpAddr,
        r: Request,
        now: Micros,
    ) -> Outcome {
        if let Err(e) = check(cfg, mtu, src, &r) {
            self.refused.count(e);
            return Outcome::Refused(e);
        }
        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == src) {
            p.last_seen = now;
            if p.request == r {
                return Outcome::Refreshed;
            }
            p.request = r;
            return Outcome::Changed;
        }
        if self.peers.len() >= cfg.max_peers {
            self.refused.count(Refusal::TooManyPeers);
            return Outcome::Refused(Refusal::TooManyPeers);
        }
        let queue = (QUEUE_BASE..).find(|q| !self.peers.iter().any(|p| p.queue == *q)).unwrap_or(QUEUE_BASE);
        self.peers.push(Peer { addr: src, queue, request: r, last_seen: now });
        self.peers.sort_by_key(|p| p.queue);
        Outcome::Changed
    }

    /// Forget the peer at `src` (its set-up failed).
    pub fn remove(&mut self, src: IpAddr) {
        self.peers.retain(|p| p.addr != src);
    }

    /// Drop peers silent for [`expire_after`] their request; true if any was dropped.
    pub fn expire(&mut self, now: Micros) -> bool {
        let n = self.peers.len();
        self.peers.retain(|p| now.saturating_sub(p.last_seen) < expire_after(&p.request));
        n != self.peers.len()
    }

    /// The queue rules for the shaped peers.
    pub fn rules(&self) -> Vec<PeerRule> {
        self.peers.iter().map(|p| PeerRule { addr: p.addr, queue: p.queue }).collect()
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;
