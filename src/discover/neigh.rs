//! The router's neighbours (ARP / NDP) for discovery: [`crate::netlink::neigh`]'s dump with
//! interface names and MACs as model types.

use crate::config::Mac;
use crate::netlink::neigh;

/// One neighbour entry that has a link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: i32,
    /// Neighbour's IP address.
    pub addr: std::net::IpAddr,
    /// Its MAC.
    pub mac: Mac,
    /// NUD state name (`reachable`, `stale`, …).
    pub state: &'static str,
    /// Seconds since the kernel last confirmed or used the entry, if it says.
    pub age_secs: Option<u64>,
}

/// Dump the neighbour table (IPv4 and IPv6), with interface names; loopback left out.
pub fn dump() -> std::io::Result<Vec<(Neighbour, String)>> {
    let mut nl = crate::netlink::Socket::open(0)?;
    let links = nl.links()?;
    Ok(nl
        .neighbours()?
        .into_iter()
        .map(|n: neigh::Neighbour| {
            let name = links.iter().find(|l| l.index == n.ifindex).map_or_else(String::new, |l| l.name.clone());
            let n = Neighbour {
                ifindex: n.ifindex,
                addr: n.addr,
                mac: Mac(n.lladdr),
                state: n.state,
                age_secs: n.age_secs,
            };
            (n, name)
        })
        .filter(|(_, name)| name != "lo")
        .collect())
}
