//! ICMP "fragmentation needed" / ICMPv6 "packet too big" for oversized packets, rate-limited.

use crate::shaper::Micros;
use crate::sys;
use crate::wire;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

/// Raw ICMP sockets and a token bucket (at most 50 messages, refilled at 50 per second).
pub(super) struct Sender {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
    /// Tokens and the time they were counted.
    tokens: (u32, Micros),
}

fn raw(family: libc::c_int, proto: libc::c_int) -> Option<OwnedFd> {
    sys::raw_socket(family, proto)
        .map_err(|e| log::warn!("raw ICMP socket: {e}; oversized packets are dropped without an ICMP error"))
        .ok()
}

impl Sender {
    /// Open both sockets (a socket that cannot be opened is logged and skipped).
    pub(super) fn open() -> Sender {
        Sender {
            v4: raw(libc::AF_INET, libc::IPPROTO_ICMP),
            v6: raw(libc::AF_INET6, libc::IPPROTO_ICMPV6),
            tokens: (50, 0),
        }
    }

    /// Tell the sender of `orig` that the path MTU is `mtu` (IPv6: at least 1,280), if the
    /// rate limit allows. Returns whether a message was sent.
    pub(super) fn too_big(&mut self, orig: &[u8], mtu: u16, now: Micros) -> bool {
        let (tokens, at) = self.tokens;
        let tokens = (tokens as u64 + now.saturating_sub(at) / 20_000).min(50) as u32; // 50/s
        if tokens == 0 {
            self.tokens = (0, at);
            return false;
        }
        self.tokens = (tokens - 1, now);
        let sent = match wire::version(orig) {
            Some(4) if orig.len() >= 20 => {
                let (Some(fd), Some(msg)) = (&self.v4, wire::icmp_frag_needed(orig, mtu)) else { return false };
                let src = wire::Ipv4Packet::new_unchecked(orig).src_addr();
                sys::sendto_ip(fd.as_fd(), &msg, IpAddr::V4(src))
            }
            Some(6) if orig.len() >= 40 => {
                let (Some(fd), Some(msg)) = (&self.v6, wire::icmpv6_packet_too_big(orig, mtu.max(1280))) else {
                    return false;
                };
                let src = wire::Ipv6Packet::new_unchecked(orig).src_addr();
                sys::sendto_ip(fd.as_fd(), &msg, IpAddr::V6(src))
            }
            _ => return false,
        };
        sent.is_ok()
    }
}
