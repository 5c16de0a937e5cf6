//! Zero-copy, checked views over IPv4/IPv6/TCP packets in the smoltcp style, and what the
//! shaped path builds from them: padding past the IP length, cover packets, ICMP "too big".
//!
//! A view ([`Ipv4Packet`], [`Ipv6Packet`], [`TcpPacket`]) wraps any `T: AsRef<[u8]>` without
//! copying. `new_checked` validates every length the accessors rely on and returns
//! [`PacketError::Malformed`] otherwise; `new_unchecked` skips that, and each accessor documents
//! what it needs: *fixed-field* accessors need only the fixed header's bytes, the others
//! "panic if not checked" on a buffer `new_checked` would have refused. Nothing here panics on a
//! checked view.
//!
//! All multi-byte fields are read and written explicitly as big-endian byte pairs, so the code
//! is correct on big-endian MIPS and little-endian targets alike (the unit tests run on both).
//!
//! Padding appends zero bytes *after* the IP datagram (past IPv4 `tot_len` / IPv6
//! `40 + payload_len`); the header is never changed, so the far end's WireGuard trims the
//! padding off again and the receiver sees the original packet. (TCP MSS clamping is done by
//! the nft ruleset, not here.)

pub mod control;
mod icmp;
mod ipv4;
mod ipv6;
mod tcp;

pub use icmp::{icmp_frag_needed, icmpv6_packet_too_big};
pub use ipv4::{cover_ipv4, ipv4_header_ok, set_ipv4_checksum, Ipv4Packet};
pub use ipv6::{cover_ipv6, Ipv6Packet};
pub use tcp::{tcp_checksum_ok, TcpPacket};

/// IPv6 "No Next Header": a receiver discards such a packet silently.
pub const IPPROTO_NONE: u8 = 59;
/// IP protocol number for TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number for ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number for ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Why a buffer could not be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its headers claim, or not IPv4/IPv6.
    Malformed,
    /// The IP datagram is longer than the pad target.
    Oversize,
}

/// The wire layer's error (the name used by views).
pub type Error = PacketError;

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PacketError::Malformed => "malformed IP packet",
            PacketError::Oversize => "IP packet longer than the pad size",
        })
    }
}

impl std::error::Error for PacketError {}

/// A big-endian u16 at `at`. Panics if `b` is shorter than `at + 2`.
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Write a big-endian u16 at `at`. Panics if `b` is shorter than `at + 2`.
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// IP version of a packet (4 or 6), from its first nibble. Never panics.
pub fn version(buf: &[u8]) -> Option<u8> {
    match buf.first().map(|b| b >> 4) {
        Some(4) => Some(4),
        Some(6) => Some(6),
        _ => None,
    }
}

/// The length of the IP datagram at the start of `buf` (IPv4 `tot_len`, IPv6 40 + `payload_len`),
/// checked against the buffer and the header's own minimum. Bytes past it are trailer (padding).
/// Never panics.
pub fn ip_len(buf: &[u8]) -> Result<usize, PacketError> {
    match version(buf) {
        Some(4) => Ok(Ipv4Packet::new_checked(buf)?.total_len() as usize),
        Some(6) => Ok(Ipv6Packet::new_checked(buf)?.total_len()),
        _ => Err(PacketError::Malformed),
    }
}

/// IP protocol number for UDP.
pub const IPPROTO_UDP: u8 = 17;

/// A salted hash naming the flow (connection) of the packet at the start of `buf`: addresses,
/// protocol and, for unfragmented TCP/UDP (IPv6: directly after the fixed header), the ports.
/// The shaper uses it to let the flows of one queue take turns; the secret `salt` keeps a
/// sender from aiming its flows at a victim's bucket. Malformed packets hash to 0. Never panics.
pub fn flow_hash(buf: &[u8], salt: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ salt;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
    };
    let (proto, l4) = match version(buf) {
        Some(4) => match Ipv4Packet::new_checked(buf) {
            Ok(p) => {
                eat(&p.src_addr().octets());
                eat(&p.dst_addr().octets());
                let first = !p.more_frags() && p.frag_offset() == 0;
                (p.protocol(), if first { p.header_len() } else { buf.len() })
            }
            Err(_) => return 0,
        },
        Some(6) => match Ipv6Packet::new_checked(buf) {
            Ok(p) => {
                eat(&p.src_addr().octets());
                eat(&p.dst_addr().octets());
                (p.next_header(), 40)
            }
            Err(_) => return 0,
        },
        _ => return 0,
    };
    eat(&[proto]);
    if let Some(ports) = buf.get(l4..l4 + 4).filter(|_| proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        eat(ports);
    }
    // final avalanche (FNV's low bits mix poorly; the bucket is taken modulo a power of two)
    h ^= h >> 16;
    h = h.wrapping_mul(0x045d_9f3b);
    h ^ (h >> 16)
}

static ZEROS: [u8; 512] = [0; 512];

/// Append `n` zero bytes. (`Vec::resize` compiles to a byte-at-a-time loop at opt-level "z";
/// copying from a zero block uses memcpy: ~10x fewer instructions per padded packet.)
pub fn extend_zeros(buf: &mut Vec<u8>, mut n: usize) {
    buf.reserve(n);
    while n > 0 {
        let k = n.min(ZEROS.len());
        buf.extend_from_slice(&ZEROS[..k]);
        n -= k;
    }
}

/// Make `buf` exactly `pad_to` bytes: any old trailer is cut, then zeros are appended past the IP
/// length. The IP header is not touched. Fails if the datagram is longer than `pad_to`.
pub fn pad(buf: &mut Vec<u8>, pad_to: usize) -> Result<(), PacketError> {
    let len = ip_len(buf)?;
    if len > pad_to {
        return Err(PacketError::Oversize);
    }
    buf.truncate(len);
    extend_zeros(buf, pad_to - len);
    Ok(())
}

/// One's-complement sum of `data` folded into 16 bits, starting from `initial` (not inverted).
pub fn ones_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum (RFC 1071) of `data`: the inverted one's-complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data, 0)
}

#[cfg(test)]
mod tests;
