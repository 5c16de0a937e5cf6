use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A real IPv4 header from RFC 1071 / Wikipedia's worked example: checksum 0xb861.
const V4_HDR: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00,
    0xc7,
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

/// An IPv4 TCP SYN with options MSS=1460, NOP, NOP, SACK-permitted, correct checksums.
fn syn_v4() -> Vec<u8> {
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
    p[t + 20..t + 28].copy_from_slice(&[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
    let (s, d) = (IpAddr::from([192, 168, 1, 10]), IpAddr::from([203, 0, 113, 5]));
    TcpPacket::new_unchecked(&mut p[t..]).fill_checksum(s, d);
    p
}

#[test]
fn views_read_the_fields_of_checked_packets() {
    let p = syn_v4();
    let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
    assert_eq!((ip.version(), ip.header_len(), ip.total_len(), ip.ttl()), (4, 20, 48, 64));
    assert_eq!((ip.protocol(), ip.dont_frag(), ip.more_frags(), ip.frag_offset()), (IPPROTO_TCP, false, false, 0));
    assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(203, 0, 113, 5)));
    assert!(ip.verify_checksum());
    assert_eq!(ip.header(), &p[..20]);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.header_len(), tcp.flags()), (40000, 443, 28, 0x02));
    assert!(tcp.payload().is_empty());
    assert!(tcp_checksum_ok(&p));
    let mut bad = p.clone();
    bad[47] ^= 1;
    assert!(!tcp_checksum_ok(&bad));
    // a trailer is outside the payload
    let mut padded = p.clone();
    pad(&mut padded, 100).unwrap();
    assert_eq!(Ipv4Packet::new_checked(&padded[..]).unwrap().payload().len(), 28);
    assert!(tcp_checksum_ok(&padded));

    let c6 = cover_ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 100);
    let v6 = Ipv6Packet::new_checked(&c6[..]).unwrap();
    assert_eq!((v6.version(), v6.payload_len(), v6.next_header(), v6.hop_limit()), (6, 60, IPPROTO_NONE, 64));
    assert_eq!(v6.src_addr(), "fd00::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v6.payload().len(), 60);
    assert!(!tcp_checksum_ok(&c6), "not TCP");
}

#[test]
fn new_checked_refuses_what_the_accessors_could_not_read() {
    let p = syn_v4();
    for n in 0..p.len() {
        assert_eq!(Ipv4Packet::new_checked(&p[..n]), Err(PacketError::Malformed), "{n} bytes");
    }
    let mut q = p.clone();
    q[0] = 0x44; // ihl 16
    assert!(Ipv4Packet::new_checked(&q[..]).is_err());
    q[0] = 0x4f; // ihl 60 > tot_len 48
    assert!(Ipv4Packet::new_checked(&q[..]).is_err());
    q[0] = 0x65;
    assert!(Ipv4Packet::new_checked(&q[..]).is_err(), "IPv6 nibble");
    let c6 = cover_ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 64);
    for n in 0..c6.len() {
        assert!(Ipv6Packet::new_checked(&c6[..n]).is_err(), "{n} bytes");
    }
    assert!(TcpPacket::new_checked(&p[20..39]).is_err());
    let mut t = p[20..].to_vec();
    t[12] = 4 << 4; // data offset 16
    assert!(TcpPacket::new_checked(&t[..]).is_err());
    t[12] = 15 << 4; // 60 > 28 bytes
    assert!(TcpPacket::new_checked(&t[..]).is_err());
    assert!(!ipv4_header_ok(&[]) && !tcp_checksum_ok(&[]) && version(&[]).is_none());
}

#[test]
fn flow_hash_tells_connections_apart_and_survives_garbage() {
    let mut a = cover_ipv4("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 60);
    a[9] = IPPROTO_TCP;
    a[20..24].copy_from_slice(&[0x01, 0xbb, 0x9c, 0x40]); // 443 -> 40000
    let mut b = a.clone();
    b[23] = 0x41; // 443 -> 40001
    assert_eq!(flow_hash(&a, 7), flow_hash(&a.clone(), 7));
    assert_ne!(flow_hash(&a, 7), flow_hash(&b, 7));
    assert_ne!(flow_hash(&a, 7), flow_hash(&a, 8), "the salt changes the hash");
    // a non-first fragment has no ports: it hashes like its addresses and protocol alone
    let mut frag = a.clone();
    frag[6] = 0x00;
    frag[7] = 0x10;
    let mut frag2 = b.clone();
    frag2[6..8].copy_from_slice(&[0x00, 0x10]);
    assert_eq!(flow_hash(&frag, 7), flow_hash(&frag2, 7));
    for n in 0..a.len() {
        let _ = flow_hash(&a[..n], 1);
    }
    assert_eq!(flow_hash(&[0xff; 30], 1), 0);
}
