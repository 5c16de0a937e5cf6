//! Fuzz target for nfnetlink_queue datagrams: packets, acks and errors parse or are refused
//! without a panic; a parsed packet's payload then goes through the wire views as the engine's
//! does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::netlink::queue::{self, Msg};
use std::collections::VecDeque;

fuzz_target!(|data: &[u8]| {
    let mut out = VecDeque::new();
    let _ = queue::parse_datagram(data, &mut out);
    for m in out {
        if let Msg::Packet(p) = m {
            let _ = p.truncated();
            if let Ok(len) = moat::wire::ip_len(&p.payload) {
                assert!(len <= p.payload.len());
            }
        }
    }
});
