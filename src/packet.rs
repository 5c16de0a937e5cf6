//! IPv4/IPv6 packet handling for the shaped path: header reading, padding past the IP length,
//! cover packet construction and TCP MSS clamping.
//!
//! All multi-byte fields are read and written explicitly as big-endian byte pairs, so the code
//! is correct on big-endian MIPS and little-endian targets alike (the unit tests run on both).
//!
//! Padding appends zero bytes *after* the IP datagram (past IPv4 `tot_len` / IPv6
//! `40 + payload_len`); the header is never changed, so the far end's WireGuard trims the
//! padding off again and the receiver sees the original packet.

use std::net::{Ipv4Addr, Ipv6Addr};

/// IPv6 "No Next Header": a receiver discards such a packet silently.
pub const IPPROTO_NONE: u8 = 59;
/// IP protocol number for TCP.
pub const IPPROTO_TCP: u8 = 6;

/// Why a buffer could not be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its headers claim, or not IPv4/IPv6.
    Malformed,
    /// The IP datagram is longer than the pad target.
    Oversize,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PacketError::Malformed => "malformed IP packet",
            PacketError::Oversize => "IP packet longer than the pad size",
        })
    }
}

impl std::error::Error for PacketError {}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// IP version of a packet (4 or 6), from its first nibble.
pub fn version(buf: &[u8]) -> Option<u8> {
    match buf.first().map(|b| b >> 4) {
        Some(4) => Some(4),
        Some(6) => Some(6),
        _ => None,
    }
}

/// The length of the IP datagram at the start of `buf` (IPv4 `tot_len`, IPv6 40 + `payload_len`),
/// checked against the buffer and the header's own minimum. Bytes past it are trailer (padding).
pub fn ip_len(buf: &[u8]) -> Result<usize, PacketError> {
    let len = match version(buf) {
        Some(4) => {
            if buf.len() < 20 {
                return Err(PacketError::Malformed);
            }
            let ihl = (buf[0] & 0x0f) as usize * 4;
            let tot = be16(buf, 2) as usize;
            if ihl < 20 || tot < ihl {
                return Err(PacketError::Malformed);
            }
            tot
        }
        Some(6) => {
            if buf.len() < 40 {
                return Err(PacketError::Malformed);
            }
            40 + be16(buf, 4) as usize
        }
        _ => return Err(PacketError::Malformed),
    };
    if len > buf.len() {
        return Err(PacketError::Malformed);
    }
    Ok(len)
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

/// Whether an IPv4 header (with options, `ihl` words) carries a valid checksum.
pub fn ipv4_header_ok(buf: &[u8]) -> bool {
    if buf.len() < 20 || buf[0] >> 4 != 4 {
        return false;
    }
    let ihl = (buf[0] & 0x0f) as usize * 4;
    ihl >= 20 && buf.len() >= ihl && ones_sum(&buf[..ihl], 0) == 0xffff
}

/// Fill in the correct IPv4 header checksum.
pub fn set_ipv4_checksum(buf: &mut [u8]) {
    let ihl = (buf[0] & 0x0f) as usize * 4;
    put16(buf, 10, 0);
    let c = checksum(&buf[..ihl]);
    put16(buf, 10, c);
}

/// A cover packet for an IPv4 tunnel: `len` bytes (≥ 20), protocol 253 (RFC 3692 experimental),
/// zero payload, DF set, TTL 64, and a header checksum that is deliberately wrong, so the far
/// end's IP layer counts it in `IpInHdrErrors` and drops it without any reply.
///
/// The wrong value is the correct checksum with its lowest bit flipped: that can never be the
/// other representation of one's-complement zero (0x0000 vs 0xffff), so it is always invalid.
pub fn cover_ipv4(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> Vec<u8> {
    assert!(len >= 20, "cover packet shorter than an IPv4 header");
    let mut p = vec![0u8; len as usize];
    p[0] = 0x45;
    put16(&mut p, 2, len);
    put16(&mut p, 6, 0x4000); // DF
    p[8] = 64;
    p[9] = 253;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    set_ipv4_checksum(&mut p);
    let wrong = be16(&p, 10) ^ 0x0001;
    put16(&mut p, 10, wrong);
    p
}

/// A cover packet for an IPv6-only tunnel: `len` bytes (≥ 40), next header 59 (no next header),
/// hop limit 64: the far end discards it silently.
pub fn cover_ipv6(src: Ipv6Addr, dst: Ipv6Addr, len: u16) -> Vec<u8> {
    assert!(len >= 40, "cover packet shorter than an IPv6 header");
    let mut p = vec![0u8; len as usize];
    p[0] = 0x60;
    put16(&mut p, 4, len - 40);
    p[6] = IPPROTO_NONE;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

/// An ICMP "fragmentation needed" message (type 3 code 4, RFC 1191) telling the sender of
/// `orig` that the path MTU is `mtu`: the ICMP part only (the kernel adds the IP header when it
/// is sent on a raw ICMP socket), checksum filled in. `None` unless `orig` is an IPv4 packet with
/// DF set (without DF the sender does no path MTU discovery; such a packet is just dropped) and
/// not itself an ICMP error.
pub fn icmp_frag_needed(orig: &[u8], mtu: u16) -> Option<Vec<u8>> {
    if version(orig)? != 4 || orig.len() < 20 || be16(orig, 6) & 0x4000 == 0 {
        return None;
    }
    let ihl = (orig[0] & 0x0f) as usize * 4;
    if ihl < 20 || orig.len() < ihl {
        return None;
    }
    if orig[9] == 1 && orig.len() > ihl && ![0u8, 8, 13, 15, 17].contains(&orig[ihl]) {
        return None; // never answer an ICMP error with an error
    }
    let quoted = &orig[..(ihl + 8).min(orig.len())];
    let mut m = vec![0u8; 8 + quoted.len()];
    m[0] = 3;
    m[1] = 4;
    put16(&mut m, 6, mtu);
    m[8..].copy_from_slice(quoted);
    let c = checksum(&m);
    put16(&mut m, 2, c);
    Some(m)
}

/// An ICMPv6 "Packet Too Big" message (type 2, RFC 4443) for `orig` with MTU `mtu`: the ICMPv6
/// part only, as much of `orig` quoted as keeps the reply within 1,280 bytes. The checksum is
/// left 0: the kernel computes it for raw ICMPv6 sockets. `None` unless `orig` is IPv6.
pub fn icmpv6_packet_too_big(orig: &[u8], mtu: u16) -> Option<Vec<u8>> {
    if version(orig)? != 6 || orig.len() < 40 {
        return None;
    }
    if orig[6] == 58 && orig.len() > 40 && orig[40] < 128 {
        return None; // an ICMPv6 error: never answered
    }
    let quoted = &orig[..orig.len().min(1280 - 40 - 8)];
    let mut m = vec![0u8; 8 + quoted.len()];
    m[0] = 2;
    m[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
    m[8..].copy_from_slice(quoted);
    Some(m)
}

/// The largest TCP MSS that keeps a segment (without IP or TCP options) within `pad_to`:
/// `pad_to − 40` for IPv4, `pad_to − 60` for IPv6.
pub fn mss_for(pad_to: u16, ipv6: bool) -> u16 {
    pad_to.saturating_sub(if ipv6 { 60 } else { 40 })
}

/// Locate the TCP header of a non-fragmented IPv4/IPv6 packet: (offset, end of datagram).
fn tcp_header(buf: &[u8]) -> Option<(usize, usize)> {
    let len = ip_len(buf).ok()?;
    let off = match version(buf)? {
        4 => {
            let frag = be16(buf, 6) & 0x3fff; // MF flag or offset: not a first whole segment
            if buf[9] != IPPROTO_TCP || frag != 0 || !ipv4_header_ok(buf) {
                return None;
            }
            (buf[0] & 0x0f) as usize * 4
        }
        6 => {
            // Only a TCP header directly after the fixed header (no extension headers).
            if buf[6] != IPPROTO_TCP {
                return None;
            }
            40
        }
        _ => return None,
    };
    if off + 20 > len {
        return None;
    }
    Some((off, len))
}

/// If `buf` is a TCP SYN whose MSS option exceeds `max_mss`, lower it to `max_mss` and fix the TCP
/// checksum incrementally (RFC 1624). Returns whether the packet was changed. A SYN without an MSS
/// option is left alone (its implied MSS, 536/1220, is below any sensible pad size).
pub fn clamp_tcp_mss(buf: &mut [u8], max_mss: u16) -> bool {
    let Some((t, end)) = tcp_header(buf) else { return false };
    let flags = buf[t + 13];
    if flags & 0x02 == 0 {
        return false; // not SYN
    }
    let doff = (buf[t + 12] >> 4) as usize * 4;
    if doff < 20 || t + doff > end {
        return false;
    }
    let mut i = t + 20;
    while i < t + doff {
        match buf[i] {
            0 => break,  // end of options
            1 => i += 1, // NOP
            kind => {
                if i + 1 >= t + doff {
                    break;
                }
                let olen = buf[i + 1] as usize;
                if olen < 2 || i + olen > t + doff {
                    break;
                }
                if kind == 2 && olen == 4 {
                    let old = be16(buf, i + 2);
                    if old <= max_mss {
                        return false;
                    }
                    put16(buf, i + 2, max_mss);
                    // RFC 1624: HC' = ~(~HC + ~m + m'). The MSS field sits at an even offset
                    // from the TCP header start (i - t is even for kind/len at an even offset), but
                    // be correct for odd positions too by summing aligned words.
                    let ck = be16(buf, t + 16);
                    let new_ck = if (i + 2 - t) % 2 == 0 {
                        !ones_sum(&[], (!ck) as u32 + (!old) as u32 + max_mss as u32)
                    } else {
                        // Odd alignment: recompute from scratch.
                        return recompute_tcp_checksum(buf, t, end);
                    };
                    put16(buf, t + 16, new_ck);
                    return true;
                }
                i += olen;
            }
        }
    }
    false
}

fn recompute_tcp_checksum(buf: &mut [u8], t: usize, end: usize) -> bool {
    put16(buf, t + 16, 0);
    let seg_len = (end - t) as u32;
    let pseudo = match version(buf) {
        Some(4) => ones_sum(&buf[12..20], IPPROTO_TCP as u32 + seg_len) as u32,
        _ => ones_sum(&buf[8..40], IPPROTO_TCP as u32 + seg_len) as u32,
    };
    let c = !ones_sum(&buf[t..end], pseudo);
    put16(buf, t + 16, c);
    true
}

/// Verify the TCP checksum of an IPv4/IPv6 TCP packet (for tests and diagnostics).
pub fn tcp_checksum_ok(buf: &[u8]) -> bool {
    let Some((t, end)) = tcp_header(buf) else { return false };
    let seg_len = (end - t) as u32;
    let pseudo = match version(buf) {
        Some(4) => ones_sum(&buf[12..20], IPPROTO_TCP as u32 + seg_len) as u32,
        _ => ones_sum(&buf[8..40], IPPROTO_TCP as u32 + seg_len) as u32,
    };
    ones_sum(&buf[t..end], pseudo) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real IPv4 header from RFC 1071 / Wikipedia's worked example: checksum 0xb861.
    const V4_HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    fn v4_packet(payload: usize) -> Vec<u8> {
        let mut p = V4_HDR.to_vec();
        let tot = 20 + payload as u16;
        p[2..4].copy_from_slice(&tot.to_be_bytes());
        p.resize(20 + payload, 0xab);
        set_ipv4_checksum(&mut p);
        p
    }

    #[test]
    fn checksum_known_vector() {
        assert!(ipv4_header_ok(&V4_HDR));
        let mut h = V4_HDR;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
        // RFC 1071 §3 example bytes: sum 0xddf2 → checksum 0x220d.
        assert_eq!(ones_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0), 0xddf2);
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        // odd length pads with a zero byte
        assert_eq!(ones_sum(&[0x12], 0), 0x1200);
    }

    #[test]
    fn ip_len_reads_both_versions_and_rejects_garbage() {
        let p = v4_packet(100);
        assert_eq!(ip_len(&p), Ok(120));
        let mut q = p.clone();
        q.extend_from_slice(&[0; 30]);
        assert_eq!(ip_len(&q), Ok(120), "trailer is not part of the datagram");
        assert_eq!(ip_len(&p[..100]), Err(PacketError::Malformed));
        let c6 = cover_ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 300);
        assert_eq!(ip_len(&c6), Ok(300));
        assert_eq!(ip_len(&[0x45; 10]), Err(PacketError::Malformed));
        assert_eq!(ip_len(&[0x00; 60]), Err(PacketError::Malformed));
        let mut bad_ihl = p.clone();
        bad_ihl[0] = 0x44;
        assert_eq!(ip_len(&bad_ihl), Err(PacketError::Malformed));
    }

    #[test]
    fn pad_appends_past_the_ip_length_without_touching_the_header() {
        let orig = v4_packet(100);
        let mut p = orig.clone();
        pad(&mut p, 1408).unwrap();
        assert_eq!(p.len(), 1408);
        assert_eq!(&p[..120], &orig[..]);
        assert!(p[120..].iter().all(|&b| b == 0));
        assert_eq!(ip_len(&p), Ok(120));
        assert!(ipv4_header_ok(&p));
        // re-padding a padded packet to a smaller size cuts the old trailer first
        pad(&mut p, 200).unwrap();
        assert_eq!(p.len(), 200);
        assert_eq!(&p[..120], &orig[..]);
        // exactly at the limit is fine, above is oversize and leaves the packet alone
        let mut q = orig.clone();
        pad(&mut q, 120).unwrap();
        assert_eq!(q, orig);
        let mut r = orig.clone();
        assert_eq!(pad(&mut r, 119), Err(PacketError::Oversize));
        assert_eq!(r, orig);
        // IPv6
        let mut s = cover_ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 64);
        pad(&mut s, 1280).unwrap();
        assert_eq!((s.len(), ip_len(&s)), (1280, Ok(64)));
    }

    #[test]
    fn cover_ipv4_has_a_wrong_checksum_always() {
        let src: Ipv4Addr = "10.64.0.2".parse().unwrap();
        let dst: Ipv4Addr = "10.64.0.1".parse().unwrap();
        let p = cover_ipv4(src, dst, 1408);
        assert_eq!(p.len(), 1408);
        assert_eq!(ip_len(&p), Ok(1408));
        assert_eq!(&p[12..16], &[10, 64, 0, 2]);
        assert_eq!(&p[16..20], &[10, 64, 0, 1]);
        assert_eq!(p[9], 253);
        assert_eq!(&p[2..4], &[0x05, 0x80], "tot_len big-endian");
        assert!(!ipv4_header_ok(&p));
        // Fixing the checksum makes it valid: only the checksum is wrong.
        let mut fixed = p.clone();
        set_ipv4_checksum(&mut fixed);
        assert!(ipv4_header_ok(&fixed));
        assert_eq!(be16(&fixed, 10) ^ 1, be16(&p, 10));
        // Exhaustively over sizes and many addresses: never accidentally valid (covers the
        // 0x0000/0xffff one's-complement zero ambiguity).
        for len in (20..1500u16).step_by(7) {
            for a in 0..64u32 {
                let p = cover_ipv4(Ipv4Addr::from(0x0a00_0000 + a * 7919), Ipv4Addr::from(0xffff_fff0 - a), len);
                assert!(!ipv4_header_ok(&p), "valid cover at len {len} a {a}");
            }
        }
    }

    #[test]
    fn cover_ipv6_is_no_next_header() {
        let p = cover_ipv6("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap(), 1280);
        assert_eq!(p.len(), 1280);
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(p[6], IPPROTO_NONE);
        assert_eq!(&p[4..6], &[0x04, 0xd8], "payload_len 1240 big-endian");
        assert_eq!(p[39], 1);
    }

    /// An IPv4 TCP SYN with options MSS=1460, NOP, NOP, SACK-permitted, correct checksums.
    fn syn_v4(mss: u16) -> Vec<u8> {
        let mut p = vec![0u8; 20 + 28];
        p[0] = 0x45;
        put16(&mut p, 2, 48);
        p[8] = 64;
        p[9] = IPPROTO_TCP;
        p[12..16].copy_from_slice(&[192, 168, 1, 10]);
        p[16..20].copy_from_slice(&[203, 0, 113, 5]);
        set_ipv4_checksum(&mut p);
        let t = 20;
        put16(&mut p, t, 40000);
        put16(&mut p, t + 2, 443);
        p[t + 4..t + 8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        p[t + 12] = 7 << 4; // 28-byte header
        p[t + 13] = 0x02; // SYN
        put16(&mut p, t + 14, 64240);
        p[t + 20..t + 28].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8, 1, 1, 4, 2]);
        recompute_tcp_checksum(&mut p, t, 48);
        p
    }

    #[test]
    fn mss_clamp_rewrites_and_keeps_checksum_valid() {
        let mut p = syn_v4(1460);
        assert!(tcp_checksum_ok(&p));
        assert!(clamp_tcp_mss(&mut p, mss_for(1408, false)));
        assert_eq!(be16(&p, 42), 1368);
        assert!(tcp_checksum_ok(&p), "incremental checksum update");
        let mut full = p.clone();
        recompute_tcp_checksum(&mut full, 20, 48);
        assert_eq!(full, p, "incremental == full recomputation");
        // already small enough: untouched
        let mut q = syn_v4(1200);
        let before = q.clone();
        assert!(!clamp_tcp_mss(&mut q, 1368));
        assert_eq!(q, before);
        // not a SYN: untouched
        let mut r = syn_v4(1460);
        r[20 + 13] = 0x10;
        recompute_tcp_checksum(&mut r, 20, 48);
        assert!(!clamp_tcp_mss(&mut r, 1368));
        // many MSS values: checksum stays valid (exercises carries in the incremental update)
        for mss in [0xffffu16, 0x8000, 1441, 65000, 9000] {
            let mut s = syn_v4(mss);
            assert!(clamp_tcp_mss(&mut s, 1368));
            assert!(tcp_checksum_ok(&s), "mss {mss}");
        }
        // truncated options do not panic
        let mut t = syn_v4(1460);
        t[20 + 21] = 40;
        assert!(!clamp_tcp_mss(&mut t, 1368));
    }

    #[test]
    fn frag_needed_quotes_the_header_and_checksums() {
        let mut p = v4_packet(1400);
        p[6] &= !0x40;
        set_ipv4_checksum(&mut p);
        assert_eq!(icmp_frag_needed(&p, 1408), None, "no DF: no PMTU discovery, no ICMP");
        p[6] |= 0x40;
        set_ipv4_checksum(&mut p);
        let m = icmp_frag_needed(&p, 1408).unwrap();
        assert_eq!(&m[..2], &[3, 4]);
        assert_eq!(&m[6..8], &[0x05, 0x80], "next-hop MTU big-endian");
        assert_eq!(&m[8..], &p[..28]);
        assert_eq!(ones_sum(&m, 0), 0xffff, "valid ICMP checksum");
        // an ICMP error is never answered; an echo request is
        let mut e = p.clone();
        e[9] = 1;
        e[20] = 3;
        assert_eq!(icmp_frag_needed(&e, 1408), None);
        e[20] = 8;
        assert!(icmp_frag_needed(&e, 1408).is_some());
        let mut big6 = cover_ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 1500);
        big6[6] = 17;
        let m6 = icmpv6_packet_too_big(&big6, 1408).unwrap();
        assert_eq!((m6[0], &m6[4..8]), (2, &[0u8, 0, 0x05, 0x80][..]));
        assert_eq!(m6.len(), 1280 - 40);
        assert_eq!(icmpv6_packet_too_big(&p, 1408), None);
    }

    #[test]
    fn mss_clamp_ipv6() {
        let mut p = vec![0u8; 40 + 24];
        p[0] = 0x60;
        put16(&mut p, 4, 24);
        p[6] = IPPROTO_TCP;
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 2;
        p[24] = 0xfd;
        p[39] = 1;
        let t = 40;
        put16(&mut p, t + 2, 80);
        p[t + 12] = 6 << 4;
        p[t + 13] = 0x02;
        p[t + 20..t + 24].copy_from_slice(&[2, 4, 0x05, 0xa0]);
        recompute_tcp_checksum(&mut p, t, 64);
        assert!(tcp_checksum_ok(&p));
        assert!(clamp_tcp_mss(&mut p, mss_for(1408, true)));
        assert_eq!(be16(&p, t + 22), 1348);
        assert!(tcp_checksum_ok(&p));
    }
}
