//! The router's side of the companion control exchange (`option companion` on a tunnel).
//!
//! The request (what the companion must shape: the router's tunnel address, `pad_to`, mode and
//! parameters, exactly the upstream shaper's) is written into the body of the tunnel's cover
//! packets, so it travels in the schedule and at the size of every other packet; the engine
//! sends no other packet for it. The companion answers in its own cover packets, read here
//! from a [`Tap`] on the tunnel device (the kernel then drops them for their bad checksum).
//!
//! The link's state is what `moat status` reports per tunnel: "downstream shaped" while an
//! answer that echoes our request exactly (both ends agree on size and rate) arrived within
//! [`ANSWER_TIMEOUT_US`] ([`ANSWER_TIMEOUT_STOCHASTIC_US`] in stochastic mode, whose cover
//! packets come only in decoy periods), else "not shaped (no answer for N s)" or "not shaped (refused: …)".
//! With `companion_required` the tunnel's shaped devices are blocked (their packets dropped at
//! the queue, cover packets — and so the request — keep flowing) while it is not shaped.
//!
//! Requests and answers ride cover packets only; in constant mode the engine makes at least one
//! slot a second a cover packet on a schedule that carries a control message
//! ([`crate::shaper::Schedule::set_cover_every`]), so a saturated download or upload still
//! carries them (in stochastic mode they wait for the next decoy, hence its longer timeout).

use super::{monotonic_us, Micros};
use crate::shaper::{Config, Mode};
use crate::sys::Tap;
use crate::wire::control::{self, Message, ModeParams, Refusal, Request};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

/// How long an answer counts (µs) in constant mode: the status says "not shaped" after this
/// without one.
pub const ANSWER_TIMEOUT_US: Micros = 5_000_000;
/// The same in stochastic mode, where cover packets (and so requests and answers) exist only
/// in decoy periods: an answer counts for an hour.
pub const ANSWER_TIMEOUT_STOCHASTIC_US: Micros = 3_600_000_000;

/// A tunnel's companion as the plan gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionSpec {
    /// The companion's address inside the tunnel (where the request's cover packets go).
    pub addr: IpAddr,
    /// `companion_required`: block the tunnel's shaped devices while not shaped.
    pub required: bool,
}

/// The request for a shaper configuration, from the router's tunnel address `src`.
pub fn request_for(src: IpAddr, config: &Config) -> Option<Request> {
    let mode = match &config.mode {
        Mode::Constant(c) => ModeParams::Constant { rate: c.rate },
        Mode::Stochastic(s) => ModeParams::Stochastic {
            decoys_per_hour: s.decoys_per_hour.min(u16::MAX as u32) as u16,
            rate_cap: s.rate_cap.min(u16::MAX as u32) as u16,
            budget_mb: (s.budget_bytes_per_day / 1_000_000).min(u32::MAX as u64) as u32,
            decoy_rate: s.default_rate.min(u16::MAX as u32) as u16,
            decoy_duration_s: s.default_duration_s.min(u16::MAX as u32) as u16,
            max_duration_s: s.max_duration_s.min(u16::MAX as u32) as u16,
            idle_gap_s: (s.idle_gap / 1_000_000).min(u16::MAX as u64) as u16,
            pace_percent: s.pace_percent.min(1000) as u16,
        },
        Mode::PadOnly => return None,
    };
    Some(Request { seq: 1, addr: src, pad_to: config.pad_to, mode })
}

/// One tunnel's link to its companion.
pub struct Link {
    /// Tunnel device.
    pub device: String,
    /// The companion.
    pub spec: CompanionSpec,
    /// What we ask (None until a cover template with a source address exists).
    pub request: Option<Request>,
    tap: Option<Tap>,
    last_ok: Option<Micros>,
    refused: Option<(Refusal, Micros)>,
    since: Micros,
    /// Answers that did not echo our request or came from another address.
    pub mismatched: u64,
    /// Control messages that failed to parse.
    pub malformed: u64,
    /// Answers that matched.
    pub answers: u64,
}

impl Link {
    /// A link for `device`; the tap is opened at once (an error leaves it closed: no answers,
    /// so the status says "not shaped").
    pub fn new(device: &str, spec: CompanionSpec, request: Option<Request>) -> Link {
        let tap = match Tap::open(device, control::MAGIC) {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!("companion {} on {device}: cannot read answers: {e}", spec.addr);
                None
            }
        };
        Link {
            device: device.to_string(),
            spec,
            request,
            tap,
            last_ok: None,
            refused: None,
            since: monotonic_us(),
            mismatched: 0,
            malformed: 0,
            answers: 0,
        }
    }

    /// The tap's fd, if open.
    pub fn fd(&self) -> Option<RawFd> {
        self.tap.as_ref().map(|t| t.as_raw_fd())
    }

    /// Read every pending answer.
    pub fn readable(&mut self, now: Micros) {
        let Some(tap) = &self.tap else { return };
        let mut buf = [0u8; 2048];
        while let Ok(n) = tap.recv(&mut buf) {
            let pkt = &buf[..n.min(buf.len())];
            let src = match crate::wire::version(pkt) {
                Some(4) if pkt.len() >= 20 => IpAddr::from([pkt[12], pkt[13], pkt[14], pkt[15]]),
                Some(6) if pkt.len() >= 40 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&pkt[8..24]);
                    IpAddr::from(a)
                }
                _ => continue,
            };
            match control::parse(pkt) {
                Ok(Some(Message::Answer(a))) if src == self.spec.addr && Some(a.request) == self.request => {
                    self.answers += 1;
                    match a.refused {
                        None => {
                            self.last_ok = Some(now);
                            self.refused = None;
                        }
                        Some(r) => {
                            if self.refused.is_none() {
                                log::warn!("companion {} refused to shape: {}", self.spec.addr, r.as_str());
                            }
                            self.refused = Some((r, now));
                            self.last_ok = None;
                        }
                    }
                }
                Ok(Some(_)) => self.mismatched += 1,
                Ok(None) => {}
                Err(_) => self.malformed += 1,
            }
        }
    }

    fn timeout(&self) -> Micros {
        match self.request.map(|r| r.mode) {
            Some(ModeParams::Stochastic { .. }) => ANSWER_TIMEOUT_STOCHASTIC_US,
            _ => ANSWER_TIMEOUT_US,
        }
    }

    /// Whether the companion shapes our downstream now.
    pub fn shaped(&self, now: Micros) -> bool {
        self.last_ok.is_some_and(|t| now.saturating_sub(t) <= self.timeout())
    }

    /// Whether the tunnel's shaped devices must be blocked now.
    pub fn blocks(&self, now: Micros) -> bool {
        self.spec.required && !self.shaped(now)
    }

    /// "shaped" or "not shaped (why)".
    pub fn describe(&self, now: Micros) -> String {
        if self.shaped(now) {
            return "shaped".into();
        }
        if let Some((r, t)) = self.refused {
            if now.saturating_sub(t) <= self.timeout() {
                return format!("not shaped (refused: {})", r.as_str());
            }
        }
        if self.request.is_none() {
            return "not shaped (no request: the tunnel has no address or the mode sends no cover)".into();
        }
        if self.tap.is_none() {
            return "not shaped (cannot read answers on the tunnel device)".into();
        }
        let last = self.last_ok.unwrap_or(self.since);
        format!("not shaped (no answer for {} s)", now.saturating_sub(last) / 1_000_000)
    }

    /// The link as a JSON object text.
    pub fn json(&self, now: Micros) -> String {
        format!(
            "{{\"device\":{},\"companion\":{},\"required\":{},\"downstream\":{},\"blocking\":{},\"answers\":{},\"mismatched\":{},\"malformed\":{}}}",
            crate::json::string(&self.device),
            crate::json::string(&self.spec.addr.to_string()),
            self.spec.required,
            crate::json::string(&format!("downstream {}", self.describe(now))),
            self.blocks(now),
            self.answers,
            self.mismatched,
            self.malformed
        )
    }
}
