//! The kernel's neighbour table (ARP / NDP) over rtnetlink: an `RTM_GETNEIGH` dump through
//! [`crate::netlink::Socket::dump_raw`], parsed here with bounds checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Mac;

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_HDRLEN: usize = 16;
/// struct ndmsg: family, pad1, pad2 (u16), ifindex (i32), state (u16), flags, type.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_CACHEINFO: u16 = 3;
/// Kernel clock_t ticks per second in `nda_cacheinfo` (USER_HZ).
const USER_HZ: u64 = 100;

const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;

/// One neighbour entry that has a link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: i32,
    /// Neighbour's IP address.
    pub addr: IpAddr,
    /// Its MAC.
    pub mac: Mac,
    /// NUD state name (`reachable`, `stale`, …).
    pub state: &'static str,
    /// Seconds since the kernel last confirmed or used the entry, if it says.
    pub age_secs: Option<u64>,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
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

/// Parse one `RTM_NEWNEIGH` message (whole netlink message). Entries without a 6-byte link-layer
/// address, incomplete/failed/no-ARP ones and multicast MACs give `None`.
pub fn parse(msg: &[u8]) -> Option<Neighbour> {
    let h = msg.get(NLMSG_HDRLEN..NLMSG_HDRLEN + NDMSG_LEN)?;
    let family = h[0];
    let ifindex = i32::from_ne_bytes(h[4..8].try_into().ok()?);
    let state = u16::from_ne_bytes(h[8..10].try_into().ok()?);
    if state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP) != 0 || state == 0 {
        return None;
    }
    let (mut addr, mut mac, mut age) = (None, None, None);
    let mut off = NLMSG_HDRLEN + NDMSG_LEN;
    while let (Some(len), Some(ty)) = (u16_at(msg, off), u16_at(msg, off + 2)) {
        let len = len as usize;
        if len < 4 {
            break;
        }
        let Some(data) = msg.get(off + 4..off + len) else { break };
        match ty & 0x3fff {
            NDA_DST => {
                addr = match (family as i32, data.len()) {
                    (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
                    (libc::AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
                    _ => None,
                }
            }
            NDA_LLADDR if data.len() == 6 => mac = Some(Mac(data.try_into().ok()?)),
            NDA_CACHEINFO if data.len() >= 12 => {
                // ndm_confirmed, ndm_used, ndm_updated: clock ticks ago.
                let (c, u) = (u32_at(data, 0)?, u32_at(data, 4)?);
                age = Some(u64::from(c.min(u)) / USER_HZ);
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    let mac = mac.filter(|m| m.0[0] & 1 == 0 && m.0 != [0; 6])?;
    Some(Neighbour { ifindex, addr: addr?, mac, state: state_name(state), age_secs: age })
}

/// Dump the neighbour table (IPv4 and IPv6), with interface names.
pub fn dump() -> std::io::Result<Vec<(Neighbour, String)>> {
    let mut nl = crate::netlink::Socket::open(0)?;
    let links = nl.links()?;
    let msgs = nl.dump_raw(RTM_GETNEIGH, &[0u8; NDMSG_LEN])?;
    Ok(msgs
        .iter()
        .filter(|(t, _)| *t == RTM_NEWNEIGH)
        .filter_map(|(_, m)| parse(m))
        .map(|n| {
            let name = links.iter().find(|l| l.index == n.ifindex).map_or_else(String::new, |l| l.name.clone());
            (n, name)
        })
        .filter(|(_, name)| name != "lo")
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(family: u8, state: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN];
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
        let n = parse(&m).unwrap();
        assert_eq!(n.addr.to_string(), "192.168.1.10");
        assert_eq!(n.mac.to_string(), "02:00:00:00:01:0a");
        assert_eq!(n.state, "reachable");
        assert_eq!(n.age_secs, Some(2));
        assert_eq!(n.ifindex, 3);
    }

    #[test]
    fn failed_multicast_and_truncated_entries_are_skipped() {
        let mac = [2, 0, 0, 0, 1, 10];
        let dst: &[u8] = &[10, 0, 0, 1];
        assert!(parse(&msg(libc::AF_INET as u8, NUD_FAILED, &[(NDA_DST, dst), (NDA_LLADDR, &mac)])).is_none());
        let mc = [1, 0, 0x5e, 0, 0, 1];
        assert!(parse(&msg(libc::AF_INET as u8, 0x04, &[(NDA_DST, dst), (NDA_LLADDR, &mc)])).is_none());
        let good = msg(libc::AF_INET as u8, 0x04, &[(NDA_DST, dst), (NDA_LLADDR, &mac)]);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        assert!(parse(&good).is_some());
    }
}
