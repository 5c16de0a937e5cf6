//! TCP header view and checksum.

use super::{be16, ones_sum, put16, version, Ipv4Packet, Ipv6Packet, PacketError, IPPROTO_TCP};
use std::net::IpAddr;

/// A view of a TCP segment (header and data). After [`TcpPacket::new_checked`]: at least 20
/// bytes, `20 ≤ header_len ≤ buffer length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap without any check (see the accessors' contracts).
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wrap and [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, PacketError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` if every accessor is safe to call: see the type's invariant.
    pub fn check_len(&self) -> Result<(), PacketError> {
        let b = self.buffer.as_ref();
        if b.len() < 20 || self.header_len() < 20 || self.header_len() > b.len() {
            return Err(PacketError::Malformed);
        }
        Ok(())
    }

    /// Source port. Fixed field: panics below 2 bytes.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    /// Destination port. Fixed field: panics below 4 bytes.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    /// Header length (data offset × 4). Fixed field: panics below 13 bytes.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[12] >> 4) as usize * 4
    }
    /// The flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10). Fixed field: panics
    /// below 14 bytes.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
    /// The checksum field. Fixed field: panics below 18 bytes.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 16)
    }
    /// The data after the header. Panics if not checked.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Whether the checksum over the pseudo-header of `src`→`dst` and the whole segment is
    /// valid. Never panics.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        ones_sum(self.buffer.as_ref(), pseudo_sum(src, dst, self.buffer.as_ref().len())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Compute and store the checksum for `src`→`dst`. Fixed field: panics below 18 bytes.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let len = self.buffer.as_ref().len();
        let b = self.buffer.as_mut();
        put16(b, 16, 0);
        let c = !ones_sum(b, pseudo_sum(src, dst, len));
        put16(b, 16, c);
    }
}

/// The one's-complement sum of the TCP pseudo-header (addresses, protocol, segment length).
fn pseudo_sum(src: IpAddr, dst: IpAddr, seg_len: usize) -> u32 {
    let init = IPPROTO_TCP as u32 + seg_len as u32;
    let s = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ones_sum(&d.octets(), ones_sum(&s.octets(), init) as u32),
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            ones_sum(&v6(d), ones_sum(&v6(s), init) as u32)
        }
    };
    s as u32
}

/// The TCP segment of a non-fragmented IPv4 packet (valid header checksum) or an IPv6 packet
/// with TCP right after the fixed header: (source, destination, segment bytes). Never panics.
pub(super) fn tcp_segment(buf: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    match version(buf)? {
        4 => {
            let ip = Ipv4Packet::new_checked(buf).ok()?;
            if ip.protocol() != IPPROTO_TCP || ip.more_frags() || ip.frag_offset() != 0 || !ip.verify_checksum() {
                return None;
            }
            Some((ip.src_addr().into(), ip.dst_addr().into(), &buf[ip.header_len()..ip.total_len() as usize]))
        }
        _ => {
            let ip = Ipv6Packet::new_checked(buf).ok()?;
            if ip.next_header() != IPPROTO_TCP {
                return None;
            }
            Some((ip.src_addr().into(), ip.dst_addr().into(), &buf[40..ip.total_len()]))
        }
    }
}

/// Verify the TCP checksum of an IPv4/IPv6 TCP packet (for tests and diagnostics). Never panics.
pub fn tcp_checksum_ok(buf: &[u8]) -> bool {
    let Some((src, dst, seg)) = tcp_segment(buf) else { return false };
    TcpPacket::new_checked(seg).is_ok_and(|t| t.verify_checksum(src, dst))
}
