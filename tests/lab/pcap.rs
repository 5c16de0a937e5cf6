//! A small reader for the classic pcap files tcpdump writes (`-w`), and a decoder for the
//! few headers the leak analysis needs: Ethernet, ARP, IPv4, IPv6, TCP, UDP, ICMP and the
//! question of a DNS message. No external tools, so a capture can be analysed the moment
//! tcpdump has exited.

use moat::wire;
use std::fmt;
use std::net::IpAddr;

/// One captured frame, decoded as far as the analysis needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Index in the capture (0-based).
    pub index: usize,
    /// Seconds since the capture's first frame.
    pub time: f64,
    /// What kind of frame it is.
    pub kind: Kind,
    /// The raw frame (for byte searches such as DNS names inside TCP payloads).
    pub raw: Vec<u8>,
}

/// The decoded network/transport layer of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An ARP frame (link-layer housekeeping, never device data).
    Arp,
    /// An IP packet.
    Ip {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
        /// Transport protocol number (after IPv6 extension headers).
        proto: u8,
        /// Source port (TCP/UDP) or 0.
        sport: u16,
        /// Destination port (TCP/UDP) or 0.
        dport: u16,
        /// Transport payload (TCP/UDP payload, or everything after the IP header otherwise).
        payload: Vec<u8>,
    },
    /// Anything else: the ethertype.
    Other(u16),
}

/// Protocol numbers used below.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// ICMP.
pub const ICMP: u8 = 1;
/// ICMPv6.
pub const ICMPV6: u8 = 58;

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Arp => write!(f, "#{} ARP", self.index),
            Kind::Other(t) => write!(f, "#{} ethertype {:#06x} ({} bytes)", self.index, t, self.raw.len()),
            Kind::Ip { src, dst, proto, sport, dport, payload } => {
                let p = match *proto {
                    TCP => "TCP".to_string(),
                    UDP => "UDP".to_string(),
                    ICMP => "ICMP".to_string(),
                    ICMPV6 => "ICMPv6".to_string(),
                    n => format!("proto {n}"),
                };
                write!(f, "#{} {} {}:{} -> {}:{} len {}", self.index, p, src, sport, dst, dport, payload.len())?;
                if let Some(q) = self.dns_question() {
                    write!(f, " DNS question '{q}'")?;
                }
                Ok(())
            }
        }
    }
}

impl Packet {
    /// The question name if this is a DNS message over UDP or TCP port 53 (either direction).
    pub fn dns_question(&self) -> Option<String> {
        if let Kind::Ip { proto, sport, dport, payload, .. } = &self.kind {
            if *sport != 53 && *dport != 53 {
                return None;
            }
            match *proto {
                UDP => dns_qname(payload),
                TCP if payload.len() > 2 => dns_qname(&payload[2..]),
                _ => None,
            }
        } else {
            None
        }
    }

    /// Whether the raw frame contains `needle` anywhere (case-insensitive ASCII), either as
    /// plain text or as DNS wire-format labels.
    pub fn contains_name(&self, needle: &str) -> bool {
        let lower: Vec<u8> = self.raw.iter().map(|b| b.to_ascii_lowercase()).collect();
        let plain = needle.to_ascii_lowercase().into_bytes();
        if find(&lower, &plain) {
            return true;
        }
        // DNS wire format: labels prefixed by their length instead of dots.
        let mut wire = Vec::new();
        for label in needle.to_ascii_lowercase().split('.') {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        // Compare ignoring the first length byte's case-folding (length bytes are < 64, unaffected).
        find(&lower, &wire[1..])
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Parse the first question name of a DNS message.
pub fn dns_qname(msg: &[u8]) -> Option<String> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
        return None;
    }
    let (name, _) = read_name(msg, 12)?;
    Some(name)
}

/// Read an uncompressed DNS name at `pos`; returns the dotted name and the position after it.
pub fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len >= 64 {
            return None; // compression pointers do not occur in questions
        }
        let l = msg.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        pos += len;
        if labels.len() > 127 {
            return None;
        }
    }
    Some((labels.join("."), pos))
}

/// Read a whole pcap file (microsecond or nanosecond, either byte order, Ethernet link type).
pub fn read_pcap(data: &[u8]) -> Result<Vec<Packet>, String> {
    if data.len() < 24 {
        return Err(format!("pcap too short ({} bytes)", data.len()));
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(format!("not a pcap file (magic {magic:02x?})")),
    };
    let u32_at = |p: usize| -> u32 {
        let b = [data[p], data[p + 1], data[p + 2], data[p + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(20);
    if linktype != 1 {
        return Err(format!("pcap link type {linktype}, expected 1 (Ethernet)"));
    }
    let mut pos = 24;
    let mut out = Vec::new();
    let mut t0 = None;
    while pos + 16 <= data.len() {
        let frac = if nanos { 1e9 } else { 1e6 };
        let t = u32_at(pos) as f64 + u32_at(pos + 4) as f64 / frac;
        let time = t - *t0.get_or_insert(t);
        let incl = u32_at(pos + 8) as usize;
        pos += 16;
        if pos + incl > data.len() {
            break; // truncated last record (capture killed mid-write)
        }
        let frame = &data[pos..pos + incl];
        out.push(Packet { index: out.len(), time, kind: decode_ethernet(frame), raw: frame.to_vec() });
        pos += incl;
    }
    Ok(out)
}

/// (seconds since the capture's first frame, first payload byte = WireGuard message type, payload
/// length = message length) of the UDP datagrams `src` → `dst` (to `port`, if given) in the pcap
/// file: what the WAN observer sees of a tunnel.
pub fn wg_messages(file: &std::path::Path, src: IpAddr, dst: IpAddr, port: Option<u16>) -> Vec<(f64, u8, usize)> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let packets = read_pcap(&data).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    packets
        .iter()
        .filter_map(|p| match &p.kind {
            Kind::Ip { src: s, dst: d, proto: UDP, dport, payload, .. }
                if *s == src && *d == dst && port.is_none_or(|w| w == *dport) && !payload.is_empty() =>
            {
                Some((p.time, payload[0], payload.len()))
            }
            _ => None,
        })
        .collect()
}

/// Decode an Ethernet frame.
pub fn decode_ethernet(f: &[u8]) -> Kind {
    if f.len() < 14 {
        return Kind::Other(0);
    }
    let mut ethertype = u16::from_be_bytes([f[12], f[13]]);
    let mut off = 14;
    if ethertype == 0x8100 && f.len() >= 18 {
        ethertype = u16::from_be_bytes([f[16], f[17]]);
        off = 18;
    }
    let l3 = &f[off..];
    match ethertype {
        0x0806 => Kind::Arp,
        0x0800 => decode_ipv4(l3).unwrap_or(Kind::Other(ethertype)),
        0x86dd => decode_ipv6(l3).unwrap_or(Kind::Other(ethertype)),
        t => Kind::Other(t),
    }
}

/// IPv4 through moat's wire view. A capture may be cut short (snaplen), so the datagram is
/// read up to `min(tot_len, captured)` rather than refused like `new_checked` would.
fn decode_ipv4(p: &[u8]) -> Option<Kind> {
    if p.len() < 20 || wire::version(p) != Some(4) {
        return None;
    }
    let ip = wire::Ipv4Packet::new_unchecked(p); // 20 bytes: every fixed field is there
    let total = (ip.total_len() as usize).min(p.len());
    let l4 = p.get(ip.header_len()..total)?;
    Some(transport(ip.src_addr().into(), ip.dst_addr().into(), ip.protocol(), l4, ip.frag_offset() != 0))
}

/// IPv6 through moat's wire view (fixed header), then the extension headers.
fn decode_ipv6(p: &[u8]) -> Option<Kind> {
    if p.len() < 40 || wire::version(p) != Some(6) {
        return None;
    }
    let ip = wire::Ipv6Packet::new_unchecked(p); // 40 bytes: every fixed field is there
    let mut next = ip.next_header();
    let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
    let end = ip.total_len().min(p.len());
    let mut off = 40;
    let mut fragmented = false;
    // Skip extension headers: hop-by-hop 0, routing 43, fragment 44, destination options 60.
    while matches!(next, 0 | 43 | 44 | 60) && off + 8 <= end {
        let hdr_len = if next == 44 {
            fragmented = true;
            8
        } else {
            (p[off + 1] as usize + 1) * 8
        };
        next = p[off];
        off += hdr_len;
    }
    let l4 = p.get(off.min(end)..end)?;
    Some(transport(src, dst, next, l4, fragmented))
}

fn transport(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8], later_fragment: bool) -> Kind {
    let (mut sport, mut dport, mut payload) = (0, 0, l4.to_vec());
    if !later_fragment {
        match proto {
            UDP if l4.len() >= 8 => {
                sport = u16::from_be_bytes([l4[0], l4[1]]);
                dport = u16::from_be_bytes([l4[2], l4[3]]);
                payload = l4[8..].to_vec();
            }
            TCP if l4.len() >= 20 => {
                sport = u16::from_be_bytes([l4[0], l4[1]]);
                dport = u16::from_be_bytes([l4[2], l4[3]]);
                let doff = ((l4[12] >> 4) as usize) * 4;
                payload = l4.get(doff..).unwrap_or(&[]).to_vec();
            }
            _ => {}
        }
    }
    Kind::Ip { src, dst, proto, sport, dport, payload }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_with(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        for f in frames {
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn decodes_udp_dns_question() {
        let mut dns = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        dns.extend_from_slice(b"\x07speaker\x06vendor\x04test\x00\x00\x01\x00\x01");
        let mut udp = vec![0x30, 0x39, 0, 53];
        udp.extend_from_slice(&((8 + dns.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&dns);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, UDP, 0, 0, 198, 51, 100, 2, 203, 0, 113, 53];
        let tl = (20 + udp.len()) as u16;
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let pkts = read_pcap(&pcap_with(&[eth, vec![0; 12].into_iter().chain([0x08, 0x06]).collect()])).unwrap();
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].dns_question().as_deref(), Some("speaker.vendor.test"));
        assert!(pkts[0].contains_name("speaker.vendor.test"));
        assert!(!pkts[0].contains_name("camera.vendor.test"));
        assert_eq!(pkts[1].kind, Kind::Arp);
        match &pkts[0].kind {
            Kind::Ip { dst, dport, .. } => {
                assert_eq!(*dst, "203.0.113.53".parse::<IpAddr>().unwrap());
                assert_eq!(*dport, 53);
            }
            k => panic!("decoded as {k:?}"),
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(read_pcap(b"hello").is_err());
        assert!(read_pcap(&[0u8; 40]).is_err());
    }
}
