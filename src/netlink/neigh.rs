//! The kernel's neighbour table (ARP / NDP) over rtnetlink, on the common message layer: an
//! `RTM_GETNEIGH` dump and a length-checked parser of its `RTM_NEWNEIGH` replies.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::socket::Socket;
use super::{ne_u16, ne_u32, Builder, Message, NLM_F_DUMP};

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// `struct ndmsg`: family, pad1, pad2 (u16), ifindex (i32), state (u16), flags, type.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_CACHEINFO: u16 = 3;
/// Kernel clock_t ticks per second in `nda_cacheinfo` (USER_HZ).
const USER_HZ: u64 = 100;

const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;

/// One neighbour entry with a unicast 6-byte link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: i32,
    /// The neighbour's IP address.
    pub addr: IpAddr,
    /// Its link-layer (MAC) address.
    pub lladdr: [u8; 6],
    /// NUD state name (`reachable`, `stale`, `delay`, `probe`, `permanent`, `other`).
    pub state: &'static str,
    /// Seconds since the kernel last confirmed or used the entry, if it says.
    pub age_secs: Option<u64>,
}

fn state_name(s: u16) -> &'static str {
    match s {
        0x02 => "reachable",
        0x04 => "stale",
        0x08 => "delay",
        0x10 => "probe",
        0x80 => "permanent",
        _ => "other",
    }
}

/// Parse one `RTM_NEWNEIGH` message. Entries without a 6-byte link-layer address, incomplete,
/// failed or no-ARP ones, multicast and all-zero MACs give `None`; so does any short field.
pub fn parse_neigh(m: &Message<'_>) -> Option<Neighbour> {
    if m.ty != RTM_NEWNEIGH {
        return None;
    }
    let (h, attrs) = m.split(NDMSG_LEN).ok()?;
    let family = i32::from(h[0]);
    let ifindex = ne_u32(h, 4)? as i32;
    let state = ne_u16(h, 8)?;
    if state == 0 || state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP) != 0 {
        return None;
    }
    let (mut addr, mut lladdr, mut age) = (None, None, None);
    for a in attrs.lenient() {
        match a.ty {
            NDA_DST => {
                addr = match (family, a.data.len()) {
                    (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(a.data[0], a.data[1], a.data[2], a.data[3]))),
                    (libc::AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a.data).ok()?))),
                    _ => None,
                }
            }
            NDA_LLADDR if a.data.len() == 6 => lladdr = <[u8; 6]>::try_from(a.data).ok(),
            NDA_CACHEINFO if a.data.len() >= 12 => {
                // ndm_confirmed, ndm_used, ndm_updated: clock ticks ago.
                let (c, u) = (ne_u32(a.data, 0)?, ne_u32(a.data, 4)?);
                age = Some(u64::from(c.min(u)) / USER_HZ);
            }
            _ => {}
        }
    }
    let lladdr = lladdr.filter(|m| m[0] & 1 == 0 && *m != [0; 6])?;
    Some(Neighbour { ifindex, addr: addr?, lladdr, state: state_name(state), age_secs: age })
}

impl Socket {
    /// The neighbour table (IPv4 and IPv6 entries that have a usable MAC).
    pub fn neighbours(&mut self) -> io::Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        let hdr = [0u8; NDMSG_LEN];
        self.dump(
            |buf, seq| Builder::new(buf, RTM_GETNEIGH, NLM_F_DUMP, seq).bytes(&hdr).finish(),
            |m| out.extend(parse_neigh(m)),
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::messages;

    /// The first neighbour parsed from a datagram (none if the datagram is cut short).
    fn first(d: &[u8]) -> Option<Neighbour> {
        messages(d).map_while(Result::ok).find_map(|m| parse_neigh(&m))
    }

    fn msg(family: u8, state: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; 16];
        m[4..6].copy_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        let mut h = [0u8; NDMSG_LEN];
        h[0] = family;
        h[4..8].copy_from_slice(&3i32.to_ne_bytes());
        h[8..10].copy_from_slice(&state.to_ne_bytes());
        m.extend_from_slice(&h);
        for (t, d) in attrs {
            m.extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
            m.extend_from_slice(&t.to_ne_bytes());
            m.extend_from_slice(d);
            m.resize((m.len() + 3) & !3, 0);
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn a_reachable_ipv4_neighbour() {
        let mac = [2, 0, 0, 0, 1, 10];
        let mut ci = Vec::new();
        for v in [250u32, 500, 700, 1] {
            ci.extend_from_slice(&v.to_ne_bytes());
        }
        let m =
            msg(libc::AF_INET as u8, 0x02, &[(NDA_DST, &[192, 168, 1, 10]), (NDA_LLADDR, &mac), (NDA_CACHEINFO, &ci)]);
        let n = first(&m).unwrap();
        assert_eq!(n.addr.to_string(), "192.168.1.10");
        assert_eq!(n.lladdr, [2, 0, 0, 0, 1, 10]);
        assert_eq!(n.state, "reachable");
        assert_eq!(n.age_secs, Some(2));
        assert_eq!(n.ifindex, 3);
    }

    #[test]
    fn failed_multicast_and_truncated_entries_are_skipped() {
        let mac = [2, 0, 0, 0, 1, 10];
        let dst: &[u8] = &[10, 0, 0, 1];
        assert!(first(&msg(libc::AF_INET as u8, NUD_FAILED, &[(NDA_DST, dst), (NDA_LLADDR, &mac)])).is_none());
        let mc = [1, 0, 0x5e, 0, 0, 1];
        assert!(first(&msg(libc::AF_INET as u8, 0x04, &[(NDA_DST, dst), (NDA_LLADDR, &mc)])).is_none());
        let good = msg(libc::AF_INET as u8, 0x04, &[(NDA_DST, dst), (NDA_LLADDR, &mac)]);
        for cut in 0..good.len() {
            let _ = first(&good[..cut]);
        }
        assert!(first(&good).is_some());
    }
}
