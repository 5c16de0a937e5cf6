//! What a WAN capture shows: [`WanReport`] (leaks, sizes, counts) and per-second statistics.

use super::*;

// ---------------------------------------------------------------------------------------------
// WAN analysis
// ---------------------------------------------------------------------------------------------

/// What the observer on the WAN link saw, judged for one device.
///
/// Only the device under test generates traffic during a leak test, and the lab's WAN link is
/// otherwise silent (both ends forward so nobody sends router solicitations, tor is
/// blackholed, no WireGuard keepalives), so every packet that is neither ARP, IPv6 neighbour
/// discovery/MLD not involving the device, nor the WireGuard flow between the router and the
/// VPN server (including ICMP errors about that flow) is counted as the device's leak, with the
/// reason it matters:
/// it touches the internet host's addresses in the clear, carries one of the device's DNS
/// names, comes from the device's IPv6 address, or is otherwise unexplained.
#[derive(Debug, Clone, Default)]
pub struct WanReport {
    /// Frames captured.
    pub total: usize,
    /// ARP frames.
    pub arp: usize,
    /// IPv6 neighbour discovery / multicast listener frames not involving the device.
    pub link: usize,
    /// Frames of the WireGuard flow router <-> VPN server.
    pub wireguard: usize,
    /// Everything else, one described line per packet.
    pub leaks: Vec<String>,
    /// DNS question names seen in the clear.
    pub dns_names: BTreeSet<String>,
    /// Clear destinations (`addr:port/proto`) with packet counts (either direction, keyed by
    /// the far end).
    pub destinations: BTreeMap<String, usize>,
}

impl WanReport {
    /// Judge `pkts` for `dev`.
    pub fn new(pkts: &[pcap::Packet], dev: &Device) -> WanReport {
        let mut r = WanReport { total: pkts.len(), ..Default::default() };
        let wg_peer = IpAddr::V4(VPN_PUBLIC4);
        let router = IpAddr::V4(ROUTER_WAN4);
        let internet: [IpAddr; 3] = [IpAddr::V4(INTERNET4), IpAddr::V4(RESOLVER4), IpAddr::V6(INTERNET6)];
        for p in pkts {
            let (src, dst, proto, sport, dport, payload) = match &p.kind {
                pcap::Kind::Arp => {
                    r.arp += 1;
                    continue;
                }
                pcap::Kind::Other(_) => {
                    r.leaks.push(format!("{p} [unexplained frame]"));
                    continue;
                }
                pcap::Kind::Ip { src, dst, proto, sport, dport, payload } => {
                    (*src, *dst, *proto, *sport, *dport, payload)
                }
            };
            let wg = proto == pcap::UDP
                && ((src == router && dst == wg_peer && dport == WG_PORT)
                    || (src == wg_peer && dst == router && sport == WG_PORT));
            // ICMP errors about the WireGuard flow (e.g. port unreachable while wireguard-go
            // restarts) quote it: IPv4 header (20) + UDP ports.
            let wg_icmp = proto == pcap::ICMP && payload.len() >= 8 + 20 + 4 && {
                let inner = &payload[8..];
                let isrc = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
                let idst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
                let ports = [u16::from_be_bytes([inner[20], inner[21]]), u16::from_be_bytes([inner[22], inner[23]])];
                inner[9] == pcap::UDP
                    && ((IpAddr::V4(isrc) == router && IpAddr::V4(idst) == wg_peer && ports[1] == WG_PORT)
                        || (IpAddr::V4(isrc) == wg_peer && IpAddr::V4(idst) == router && ports[0] == WG_PORT))
            };
            if wg || wg_icmp {
                r.wireguard += 1;
                continue;
            }
            // IPv6 neighbour discovery and multicast listener reports (ICMPv6 130-137, 143):
            // link housekeeping like ARP, unless the device's own address is involved.
            let dev6 = IpAddr::V6(dev.ip6);
            if proto == pcap::ICMPV6
                && matches!(payload.first(), Some(130..=137) | Some(143))
                && src != dev6
                && dst != dev6
                && !payload.windows(16).any(|w| w == dev.ip6.octets())
            {
                r.link += 1;
                continue;
            }
            let inside = |a: IpAddr| match a {
                IpAddr::V4(a) => a == ROUTER_WAN4 || a.octets()[0] == 10 || a.octets()[..2] == [192, 168],
                IpAddr::V6(a) => a == ROUTER_WAN6 || a.segments()[..3] == [0xfd6d, 0x6f61, 0x7400],
            };
            let far = if inside(src) { (dst, dport) } else { (src, sport) };
            let pname = match proto {
                pcap::TCP => "tcp",
                pcap::UDP => "udp",
                pcap::ICMP => "icmp",
                pcap::ICMPV6 => "icmpv6",
                _ => "ip",
            };
            let key = match far.0 {
                IpAddr::V6(a) => format!("[{a}]:{}/{pname}", far.1),
                IpAddr::V4(a) => format!("{a}:{}/{pname}", far.1),
            };
            *r.destinations.entry(key).or_default() += 1;
            let mut why = Vec::new();
            if internet.contains(&src) || internet.contains(&dst) {
                why.push("internet host in the clear".to_string());
            }
            if let Some(q) = p.dns_question() {
                r.dns_names.insert(q.clone());
                if dev.names.iter().any(|n| n.eq_ignore_ascii_case(&q)) {
                    why.push(format!("DNS question for the device's name {q}"));
                }
            }
            for n in &dev.names {
                if p.contains_name(n) && !why.iter().any(|w| w.contains(n.as_str())) {
                    why.push(format!("carries the device's name {n}"));
                }
            }
            if src == IpAddr::V6(dev.ip6) || dst == IpAddr::V6(dev.ip6) {
                why.push("IPv6 of the device".to_string());
            }
            if why.is_empty() {
                why.push("unexplained".to_string());
            }
            r.leaks.push(format!("{p} [{}]", why.join("; ")));
        }
        r
    }

    /// A readable multi-line summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} frames: {} WireGuard (router<->VPN server), {} ARP, {} IPv6 ND/MLD, {} outside the tunnel\n",
            self.total,
            self.wireguard,
            self.arp,
            self.link,
            self.leaks.len()
        );
        if !self.destinations.is_empty() {
            s.push_str("  clear destinations:\n");
            for (d, n) in &self.destinations {
                s.push_str(&format!("    {d:<32} {n} packets\n"));
            }
        }
        if !self.dns_names.is_empty() {
            s.push_str("  DNS names in the clear:\n");
            for n in &self.dns_names {
                s.push_str(&format!("    {n}\n"));
            }
        }
        for l in self.leaks.iter().take(25) {
            s.push_str(&format!("  {l}\n"));
        }
        if self.leaks.len() > 25 {
            s.push_str(&format!("  … {} more\n", self.leaks.len() - 25));
        }
        s
    }
}

/// Mean and coefficient of variation (percent) of per-second packet counts.
pub fn cv(counts: &[u32]) -> (f64, f64) {
    let n = counts.len().max(1) as f64;
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    let var = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, if mean > 0.0 { 100.0 * var.sqrt() / mean } else { f64::INFINITY })
}
