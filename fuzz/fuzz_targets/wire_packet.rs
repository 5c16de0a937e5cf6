//! Fuzz target for the packet views and what the engine derives from a queued packet: checked
//! views never panic, their accessors agree with `ip_len`, the flow hash never panics (and is 0
//! for what `ip_len` refuses), padding keeps the datagram, and the ICMP replies are well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::wire::{self, Ipv4Packet, Ipv6Packet, TcpPacket};

fuzz_target!(|data: &[u8]| {
    let len = wire::ip_len(data);
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        assert_eq!(len, Ok(ip.total_len() as usize));
        let _ = (ip.header(), ip.src_addr(), ip.dst_addr(), ip.protocol(), ip.verify_checksum());
        if let Ok(t) = TcpPacket::new_checked(ip.payload()) {
            let _ = (t.src_port(), t.dst_port(), t.flags(), t.payload());
        }
    }
    if let Ok(ip) = Ipv6Packet::new_checked(data) {
        assert_eq!(len, Ok(ip.total_len()));
        let _ = (ip.payload(), ip.src_addr(), ip.dst_addr(), ip.next_header());
    }
    // the engine's flow key: never panics, and a malformed packet is one flow
    let f = wire::flow_hash(data, 0x5eed);
    if len.is_err() {
        assert_eq!(f, 0);
    }
    let _ = wire::tcp_checksum_ok(data);
    let _ = wire::ipv4_header_ok(data);
    if let Some(m) = wire::icmp_frag_needed(data, 1280) {
        assert_eq!(wire::ones_sum(&m, 0), 0xffff, "ICMP checksum");
        assert!(m.len() <= 8 + 60 + 8);
    }
    if let Some(m) = wire::icmpv6_packet_too_big(data, 1280) {
        assert!(m.len() <= 1280 - 40);
    }
    let mut v = data.to_vec();
    match wire::pad(&mut v, 1408) {
        Ok(()) => {
            assert_eq!(v.len(), 1408);
            assert_eq!(wire::ip_len(&v), len);
            let l = len.unwrap();
            assert_eq!(&v[..l], &data[..l]);
        }
        Err(wire::PacketError::Oversize) => assert!(len.unwrap() > 1408),
        Err(wire::PacketError::Malformed) => assert!(len.is_err()),
    }
});
