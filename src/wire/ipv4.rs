//! IPv4 header view and cover packets.

use super::{be16, checksum, ones_sum, put16, PacketError};
use std::net::Ipv4Addr;

/// A view of an IPv4 packet. After [`Ipv4Packet::new_checked`]: at least 20 bytes, version 4,
/// `20 ≤ header_len ≤ total_len ≤ buffer length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without any check (see the accessors' contracts).
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wrap and [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, PacketError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` if every accessor is safe to call: see the type's invariant.
    pub fn check_len(&self) -> Result<(), PacketError> {
        let b = self.buffer.as_ref();
        if b.len() < 20 || b[0] >> 4 != 4 {
            return Err(PacketError::Malformed);
        }
        let (ihl, tot) = (self.header_len(), self.total_len() as usize);
        if ihl < 20 || tot < ihl || tot > b.len() {
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
    /// Header length in bytes (`ihl × 4`). Fixed field: panics on an empty buffer.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[0] & 0x0f) as usize * 4
    }
    /// `tot_len`. Fixed field: panics below 4 bytes.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    /// The DF flag. Fixed field: panics below 8 bytes.
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), 6) & 0x4000 != 0
    }
    /// The MF flag. Fixed field: panics below 8 bytes.
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), 6) & 0x2000 != 0
    }
    /// Fragment offset in 8-byte units. Fixed field: panics below 8 bytes.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), 6) & 0x1fff
    }
    /// TTL. Fixed field: panics below 9 bytes.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    /// Protocol number. Fixed field: panics below 10 bytes.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }
    /// Header checksum field. Fixed field: panics below 12 bytes.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }
    /// Source address. Fixed field: panics below 16 bytes.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    /// Destination address. Fixed field: panics below 20 bytes.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// Whether the header checksum is valid. Never panics (false if the header is not there).
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let ihl = self.header_len();
        ihl >= 20 && b.len() >= ihl && ones_sum(&b[..ihl], 0) == 0xffff
    }
    /// The header bytes (with options). Panics if not checked.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
    /// The payload (`header_len..total_len`; trailer excluded). Panics if not checked.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Compute and store the header checksum. Panics if the buffer is shorter than
    /// `header_len` (or 12 bytes).
    pub fn fill_checksum(&mut self) {
        let ihl = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, 10, 0);
        let c = checksum(&b[..ihl]);
        put16(b, 10, c);
    }
    /// Store `v` as the header checksum. Fixed field: panics below 12 bytes.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 10, v)
    }
}

/// Whether an IPv4 header (with options, `ihl` words) carries a valid checksum. Never panics.
pub fn ipv4_header_ok(buf: &[u8]) -> bool {
    buf.len() >= 20 && buf[0] >> 4 == 4 && Ipv4Packet::new_unchecked(buf).verify_checksum()
}

/// Fill in the correct IPv4 header checksum. Panics if `buf` is shorter than its header.
pub fn set_ipv4_checksum(buf: &mut [u8]) {
    Ipv4Packet::new_unchecked(buf).fill_checksum()
}

/// A cover packet for an IPv4 tunnel: `len` bytes (≥ 20), protocol 253 (RFC 3692 experimental),
/// zero payload, DF set, TTL 64, and a header checksum that is deliberately wrong, so the far
/// end's IP layer counts it in `IpInHdrErrors` and drops it without any reply.
///
/// The wrong value is the correct checksum with its lowest bit flipped: that can never be the
/// other representation of one's-complement zero (0x0000 vs 0xffff), so it is always invalid.
/// Panics if `len` < 20.
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
    let mut v = Ipv4Packet::new_unchecked(&mut p[..]);
    v.fill_checksum();
    let wrong = v.checksum() ^ 0x0001;
    v.set_checksum(wrong);
    p
}
