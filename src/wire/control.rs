//! The companion control protocol: what a router asks its VPN server's `moat companion` to
//! shape, and the answer, carried inside cover packets.
//!
//! A control message lives in the body of a cover packet (right after its 20-byte IPv4 or
//! 40-byte IPv6 header); the packet keeps its bad IPv4 checksum / IPv6 next header 59, its size
//! (`pad_to`) and its slot in the schedule, so on the wire it is one more cover packet and the
//! receiving kernel drops it silently. The receiver reads it from an `AF_PACKET` tap on the
//! WireGuard device before the IP layer drops it. WireGuard authenticates the peer and protects
//! integrity, so the format carries no MAC; it is parsed strictly anyway (hostile peers exist).
//!
//! Layout (big-endian), at the start of the packet body:
//! ```text
//! 0  4  magic "MOAT"
//! 4  1  version (1)
//! 5  1  kind: 1 request (router -> companion), 2 answer (companion -> router)
//! 6  2  body length L (exactly the kind's length)
//! 8  L  body
//! ..    zero bytes to the end of the packet (anything else is refused)
//! request body (44): seq u32 | family u8 (4|6) | answers u8 (0-15) | pad_to u16 | addr [16]
//!     (IPv4 in the first 4, the rest 0) | params (20, see below)
//! answer body (48): the request body echoed (what is shaped / refused) | status u8 (0 shaped,
//!     1 refused) | reason u8 | 0 u16
//! params: mode u8 (1 constant, 2 stochastic) | 0 u8 | constant: rate u32, 14 zero bytes;
//!     stochastic: decoys/h u16 | rate cap u16 | budget MB/day u32 | decoy rate u16 |
//!     decoy duration s u16 | max duration s u16 | idle gap s u16
//! ```
//! A packet without the magic at the body's start is an ordinary cover packet ([`parse`] says
//! `Ok(None)`); one with the magic but anything else wrong is an error (counted by the caller).
//!
//! `answers` is not part of the [`Request`] (it changes from packet to packet, the request does
//! not): it is how many answers this one cover packet asks of a follow-mode schedule (a decoy
//! copying a download's acknowledgements asks for the data they acknowledged), 0 meaning "by
//! your own rule". [`set_answers`] writes it into a packet, [`answers`] reads it; an answer
//! message echoes the request with 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The magic at the start of a control body.
pub const MAGIC: [u8; 4] = *b"MOAT";
/// The protocol version this code speaks.
pub const VERSION: u8 = 1;
const HDR: usize = 8;
const REQ_LEN: usize = 44;
const ANS_LEN: usize = 48;
/// The smallest cover packet that can carry an answer over IPv6 (40 + 8 + 48).
pub const MIN_PACKET: usize = 40 + HDR + ANS_LEN;
/// Most answers one cover packet may ask for.
pub const MAX_ANSWERS: u8 = 15;
/// Offset of the `answers` byte in a control body.
const ANSWERS_AT: usize = HDR + 5;

/// Shaping mode parameters, as both ends run them (mirrors the shaper's modes; kept here so
/// the wire layer stays below the shaper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeParams {
    /// Constant-rate slots, `rate` per second.
    Constant {
        /// Slots per second (1-65535 on the wire as u32, checked by the receiver's limits).
        rate: u32,
    },
    /// Stochastic decoy periods.
    Stochastic {
        /// Decoy periods per idle hour.
        decoys_per_hour: u16,
        /// Rate cap, packets per second.
        rate_cap: u16,
        /// Cover budget, MB (10^6 bytes) per day.
        budget_mb: u32,
        /// Decoy rate before any real activity was learnt, packets per second.
        decoy_rate: u16,
        /// Decoy duration before any real activity was learnt, seconds.
        decoy_duration_s: u16,
        /// Longest decoy period, seconds.
        max_duration_s: u16,
        /// Idle gap that ends an activity period, seconds.
        idle_gap_s: u16,
        /// Seconds of decoy per 100 s of real activity (`pace`, 0-1000), so both ends keep pace
        /// the same way (the pace window is not carried: the companion uses the default).
        pace_percent: u16,
    },
}

/// What a router asks for: shape traffic to `addr` at `pad_to` with `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Sequence number (the router increments it when the request changes).
    pub seq: u32,
    /// The address whose downstream is to be shaped (must be the request's source).
    pub addr: IpAddr,
    /// Inner packet size.
    pub pad_to: u16,
    /// Mode and parameters.
    pub mode: ModeParams,
}

/// Why a companion refused a request (the reason byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The requested address is not the request's source address.
    AddressMismatch = 1,
    /// The peer is not in the companion's `allow_peer` list.
    NotAllowed = 2,
    /// The rate is above the companion's `max_rate`.
    RateTooHigh = 3,
    /// The companion already shapes `max_peers` peers.
    TooManyPeers = 4,
    /// `pad_to` or another parameter is out of range (e.g. above the companion's MTU).
    BadParams = 5,
    /// The companion could not set up shaping (queue rule or queue failed).
    Internal = 6,
}

impl Refusal {
    fn from_u8(b: u8) -> Option<Refusal> {
        use Refusal::*;
        [AddressMismatch, NotAllowed, RateTooHigh, TooManyPeers, BadParams, Internal]
            .into_iter()
            .find(|r| *r as u8 == b)
    }

    /// A short reason for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AddressMismatch => "address is not the request's source",
            Refusal::NotAllowed => "peer not allowed",
            Refusal::RateTooHigh => "rate above the companion's max_rate",
            Refusal::TooManyPeers => "companion has max_peers peers",
            Refusal::BadParams => "parameters out of range",
            Refusal::Internal => "companion could not set up shaping",
        }
    }
}

/// The companion's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The request answered (echoed, so the router sees both ends agree).
    pub request: Request,
    /// `None`: shaped as asked; `Some`: refused.
    pub refused: Option<Refusal>,
}

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Router to companion.
    Request(Request),
    /// Companion to router.
    Answer(Answer),
}

/// Why a control body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// The packet is not an IPv4/IPv6 packet carrying a body.
    NotIp,
    /// Another protocol version.
    Version(u8),
    /// Unknown message kind.
    Kind(u8),
    /// Wrong body length for the kind, or the packet is too short.
    Length,
    /// A field is out of range (family, mode, reserved bytes, zero rate, …).
    Field(&'static str),
    /// Bytes after the message are not zero.
    Trailer,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::NotIp => f.write_str("not an IP packet"),
            ControlError::Version(v) => write!(f, "control version {v} (this moat speaks {VERSION})"),
            ControlError::Kind(k) => write!(f, "unknown control message kind {k}"),
            ControlError::Length => f.write_str("control message length wrong"),
            ControlError::Field(n) => write!(f, "control field {n} out of range"),
            ControlError::Trailer => f.write_str("bytes after the control message are not zero"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Offset of the body in an IP packet (20 for IPv4 — cover packets have no options — 40 for
/// IPv6), checked against the buffer. Never panics.
pub fn body_offset(pkt: &[u8]) -> Result<usize, ControlError> {
    let off = match super::version(pkt) {
        Some(4) if pkt[0] == 0x45 => 20,
        Some(6) => 40,
        _ => return Err(ControlError::NotIp),
    };
    if pkt.len() < off {
        return Err(ControlError::NotIp);
    }
    Ok(off)
}

/// Parse the control message in an IP packet's body: `Ok(None)` if the body does not start
/// with [`MAGIC`] (not a control packet). Never panics.
pub fn parse(pkt: &[u8]) -> Result<Option<Message>, ControlError> {
    let off = body_offset(pkt)?;
    let b = &pkt[off..];
    if b.len() < 4 || b[..4] != MAGIC {
        return Ok(None);
    }
    parse_body(b).map(Some)
}

/// Parse a control body (starting with the magic). Never panics.
pub fn parse_body(b: &[u8]) -> Result<Message, ControlError> {
    if b.len() < HDR || b[..4] != MAGIC {
        return Err(ControlError::Length);
    }
    if b[4] != VERSION {
        return Err(ControlError::Version(b[4]));
    }
    let len = super::be16(b, 6) as usize;
    let want = match b[5] {
        1 => REQ_LEN,
        2 => ANS_LEN,
        k => return Err(ControlError::Kind(k)),
    };
    if len != want || b.len() < HDR + len {
        return Err(ControlError::Length);
    }
    if b[HDR + len..].iter().any(|&x| x != 0) {
        return Err(ControlError::Trailer);
    }
    let body = &b[HDR..HDR + len];
    let request = parse_request(&body[..REQ_LEN])?;
    if b[5] == 1 {
        return Ok(Message::Request(request));
    }
    let a = &body[REQ_LEN..];
    if body[5] != 0 {
        return Err(ControlError::Field("answers")); // an echoed request asks for nothing
    }
    if a[2] != 0 || a[3] != 0 {
        return Err(ControlError::Field("reserved"));
    }
    let refused = match (a[0], a[1]) {
        (0, 0) => None,
        (1, r) => Some(Refusal::from_u8(r).ok_or(ControlError::Field("reason"))?),
        _ => return Err(ControlError::Field("status")),
    };
    Ok(Message::Answer(Answer { request, refused }))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_request(r: &[u8]) -> Result<Request, ControlError> {
    let seq = be32(r, 0);
    if r[5] > MAX_ANSWERS {
        return Err(ControlError::Field("answers"));
    }
    let a = &r[8..24];
    let addr = match r[4] {
        4 if a[4..].iter().all(|&x| x == 0) => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return Err(ControlError::Field("family")),
    };
    let pad_to = super::be16(r, 6);
    let p = &r[24..44];
    if p[1] != 0 {
        return Err(ControlError::Field("reserved"));
    }
    let mode = match p[0] {
        1 if p[6..].iter().all(|&x| x == 0) => ModeParams::Constant { rate: be32(p, 2) },
        2 => ModeParams::Stochastic {
            decoys_per_hour: super::be16(p, 2),
            rate_cap: super::be16(p, 4),
            budget_mb: be32(p, 6),
            decoy_rate: super::be16(p, 10),
            decoy_duration_s: super::be16(p, 12),
            max_duration_s: super::be16(p, 14),
            idle_gap_s: super::be16(p, 16),
            pace_percent: super::be16(p, 18),
        },
        _ => return Err(ControlError::Field("mode")),
    };
    if let ModeParams::Stochastic { pace_percent, .. } = mode {
        if pace_percent > 1000 {
            return Err(ControlError::Field("pace"));
        }
    }
    Ok(Request { seq, addr, pad_to, mode })
}

fn put_request(out: &mut Vec<u8>, r: &Request) {
    out.extend_from_slice(&r.seq.to_be_bytes());
    let mut a = [0u8; 16];
    let fam = match r.addr {
        IpAddr::V4(v) => {
            a[..4].copy_from_slice(&v.octets());
            4
        }
        IpAddr::V6(v) => {
            a = v.octets();
            6
        }
    };
    out.extend_from_slice(&[fam, 0]);
    out.extend_from_slice(&r.pad_to.to_be_bytes());
    out.extend_from_slice(&a);
    let mut p = [0u8; 20];
    match r.mode {
        ModeParams::Constant { rate } => {
            p[0] = 1;
            p[2..6].copy_from_slice(&rate.to_be_bytes());
        }
        ModeParams::Stochastic {
            decoys_per_hour,
            rate_cap,
            budget_mb,
            decoy_rate,
            decoy_duration_s,
            max_duration_s,
            idle_gap_s,
            pace_percent,
        } => {
            p[0] = 2;
            p[2..4].copy_from_slice(&decoys_per_hour.to_be_bytes());
            p[4..6].copy_from_slice(&rate_cap.to_be_bytes());
            p[6..10].copy_from_slice(&budget_mb.to_be_bytes());
            p[10..12].copy_from_slice(&decoy_rate.to_be_bytes());
            p[12..14].copy_from_slice(&decoy_duration_s.to_be_bytes());
            p[14..16].copy_from_slice(&max_duration_s.to_be_bytes());
            p[16..18].copy_from_slice(&idle_gap_s.to_be_bytes());
            p[18..20].copy_from_slice(&pace_percent.to_be_bytes());
        }
    }
    out.extend_from_slice(&p);
}

/// Encode a message into a control body (header + body, no trailing zeros).
pub fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(HDR + ANS_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let (kind, len) = match m {
        Message::Request(_) => (1, REQ_LEN),
        Message::Answer(_) => (2, ANS_LEN),
    };
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    match m {
        Message::Request(r) => put_request(&mut out, r),
        Message::Answer(a) => {
            put_request(&mut out, &a.request);
            match a.refused {
                None => out.extend_from_slice(&[0, 0, 0, 0]),
                Some(r) => out.extend_from_slice(&[1, r as u8, 0, 0]),
            }
        }
    }
    out
}

/// Write `m` into the body of cover packet `pkt` (IPv4 or IPv6 as built by `cover_ipv4` /
/// `cover_ipv6`), zeroing the rest of the body; `None` (no message) zeroes the body. The IP
/// header (and so its deliberately bad checksum) is not touched. Fails if the packet is too
/// short to hold the message.
pub fn write_into(pkt: &mut [u8], m: Option<&Message>) -> Result<(), ControlError> {
    let off = body_offset(pkt)?;
    let body = &mut pkt[off..];
    body.fill(0);
    if let Some(m) = m {
        let e = encode(m);
        if e.len() > body.len() {
            return Err(ControlError::Length);
        }
        body[..e.len()].copy_from_slice(&e);
    }
    Ok(())
}

/// Where the `answers` byte of cover packet `pkt` is, if its body starts a request (magic,
/// request kind, room for the body); the rest of the request is not checked (that is
/// [`parse`]'s work, which a receiver does first).
fn answers_at(pkt: &[u8]) -> Option<usize> {
    let off = body_offset(pkt).ok()?;
    let b = &pkt[off..];
    (b.len() >= HDR + REQ_LEN && b[..4] == MAGIC && b[5] == 1).then_some(off + ANSWERS_AT)
}

/// The answers the request in cover packet `pkt` asks for (see the module docs): 0 if `pkt`
/// carries no request or asks for more than [`MAX_ANSWERS`]. Reads one byte: call it on a packet
/// [`parse`] accepted. Never panics.
pub fn answers(pkt: &[u8]) -> u8 {
    answers_at(pkt).map(|i| pkt[i]).filter(|&n| n <= MAX_ANSWERS).unwrap_or(0)
}

/// Make the request in cover packet `pkt` ask for `n` answers (at most [`MAX_ANSWERS`]). False
/// (and nothing written) if `pkt` carries no request.
pub fn set_answers(pkt: &mut [u8], n: u8) -> bool {
    let at = answers_at(pkt);
    if let Some(i) = at {
        pkt[i] = n.min(MAX_ANSWERS);
    }
    at.is_some()
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
