//! ICMP "fragmentation needed" and ICMPv6 "packet too big" replies.

use super::{checksum, put16, Ipv4Packet, Ipv6Packet, IPPROTO_ICMP, IPPROTO_ICMPV6};

/// An ICMP "fragmentation needed" message (type 3 code 4, RFC 1191) telling the sender of
/// `orig` that the path MTU is `mtu`: the ICMP part only (the kernel adds the IP header when it
/// is sent on a raw ICMP socket), checksum filled in. `None` unless `orig` is an IPv4 packet with
/// DF set (without DF the sender does no path MTU discovery; such a packet is just dropped) and
/// not itself an ICMP error. Never panics.
pub fn icmp_frag_needed(orig: &[u8], mtu: u16) -> Option<Vec<u8>> {
    if orig.len() < 20 || orig[0] >> 4 != 4 {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(orig); // 20 bytes: every fixed field is there
    let ihl = ip.header_len();
    if !ip.dont_frag() || ihl < 20 || orig.len() < ihl {
        return None;
    }
    if ip.protocol() == IPPROTO_ICMP && orig.len() > ihl && ![0u8, 8, 13, 15, 17].contains(&orig[ihl]) {
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
/// Never panics.
pub fn icmpv6_packet_too_big(orig: &[u8], mtu: u16) -> Option<Vec<u8>> {
    if orig.len() < 40 || orig[0] >> 4 != 6 {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(orig); // 40 bytes: every fixed field is there
    if ip.next_header() == IPPROTO_ICMPV6 && orig.len() > 40 && orig[40] < 128 {
        return None; // an ICMPv6 error: never answered
    }
    let quoted = &orig[..orig.len().min(1280 - 40 - 8)];
    let mut m = vec![0u8; 8 + quoted.len()];
    m[0] = 2;
    m[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
    m[8..].copy_from_slice(quoted);
    Some(m)
}
