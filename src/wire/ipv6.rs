//! IPv6 header view and cover packets.

use super::{be16, put16, PacketError, IPPROTO_NONE};
use std::net::Ipv6Addr;

/// A view of an IPv6 packet. After [`Ipv6Packet::new_checked`]: at least 40 bytes, version 6,
/// `40 + payload_len ≤ buffer length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap without any check (see the accessors' contracts).
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wrap and [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, PacketError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` if every accessor is safe to call: see the type's invariant.
    pub fn check_len(&self) -> Result<(), PacketError> {
        let b = self.buffer.as_ref();
        if b.len() < 40 || b[0] >> 4 != 6 || self.total_len() > b.len() {
            return Err(PacketError::Malformed);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble. Fixed field: panics on an empty buffer.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// `payload_len`. Fixed field: panics below 6 bytes.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    /// Datagram length: 40 + `payload_len`. Fixed field: panics below 6 bytes.
    pub fn total_len(&self) -> usize {
        40 + self.payload_len() as usize
    }
    /// Next header. Fixed field: panics below 7 bytes.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    /// Hop limit. Fixed field: panics below 8 bytes.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    /// Source address. Fixed field: panics below 24 bytes.
    pub fn src_addr(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.buffer.as_ref()[8..24].try_into().expect("16 bytes");
        Ipv6Addr::from(a)
    }
    /// Destination address. Fixed field: panics below 40 bytes.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.buffer.as_ref()[24..40].try_into().expect("16 bytes");
        Ipv6Addr::from(a)
    }
    /// The payload after the fixed header (`40..total_len`). Panics if not checked.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[40..self.total_len()]
    }
}

/// A cover packet for an IPv6-only tunnel: `len` bytes (≥ 40), next header 59 (no next header),
/// hop limit 64: the far end discards it silently. Panics if `len` < 40.
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
