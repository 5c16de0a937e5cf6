//! The companion's queue rules, pure: every packet leaving the WireGuard device toward a peer
//! that asked for shaping goes to that peer's NFQUEUE, without `bypass`, so while no companion
//! listens (killed, crashed, restarting) the kernel drops those packets instead of sending
//! them unshaped. Two backends, chosen by probing as on the router: nft `queue` (own table
//! `inet moat_companion`) or the xt `NFQUEUE` target (own mangle chain `MOAT_COMPANION`).
//!
//! The companion's own cover and answer packets are written with `AF_PACKET` and skip
//! netfilter, so they never enter these queues.

use std::fmt::Write;
use std::net::IpAddr;

/// nft table of the nft backend.
pub const NFT_TABLE: &str = "moat_companion";
/// iptables mangle chain of the xt backend.
pub const IPT_CHAIN: &str = "MOAT_COMPANION";
/// Queue number of the first peer (peer `i` uses `QUEUE_BASE + i`).
pub const QUEUE_BASE: u16 = 7000;

/// One shaped peer's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRule {
    /// The peer's tunnel address (packets to it are queued).
    pub addr: IpAddr,
    /// Its queue.
    pub queue: u16,
}

/// The nft script replacing the companion's table with exactly these rules (atomic).
pub fn nft_script(device: &str, rules: &[PeerRule]) -> String {
    let mut s = format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\ntable inet {NFT_TABLE} {{\n");
    s.push_str("\tchain out {\n\t\ttype filter hook postrouting priority mangle; policy accept;\n");
    for r in rules {
        let fam = if r.addr.is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(s, "\t\toifname \"{device}\" {fam} daddr {} queue num {}", r.addr, r.queue);
    }
    s.push_str("\t}\n}\n");
    s
}

/// The nft script removing the companion's table.
pub fn nft_remove() -> String {
    format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n")
}

/// The `iptables-restore --noflush` input (`v6`: for ip6tables) replacing the chain's rules.
pub fn ipt_restore(device: &str, rules: &[PeerRule], v6: bool) -> String {
    let mut s = format!("*mangle\n:{IPT_CHAIN} - [0:0]\n-F {IPT_CHAIN}\n");
    for r in rules.iter().filter(|r| r.addr.is_ipv6() == v6) {
        let _ = writeln!(s, "-A {IPT_CHAIN} -o {device} -d {} -j NFQUEUE --queue-num {}", r.addr, r.queue);
    }
    s.push_str("COMMIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_queue_each_peer_without_bypass() {
        let r = [
            PeerRule { addr: "10.0.0.2".parse().unwrap(), queue: 7000 },
            PeerRule { addr: "fd00::3".parse().unwrap(), queue: 7001 },
        ];
        let n = nft_script("wg0", &r);
        assert!(n.contains("oifname \"wg0\" ip daddr 10.0.0.2 queue num 7000\n"), "{n}");
        assert!(n.contains("ip6 daddr fd00::3 queue num 7001"), "{n}");
        assert!(!n.contains("bypass"));
        let x = ipt_restore("wg0", &r, false);
        assert_eq!(
            x,
            "*mangle\n:MOAT_COMPANION - [0:0]\n-F MOAT_COMPANION\n-A MOAT_COMPANION -o wg0 -d 10.0.0.2 -j NFQUEUE --queue-num 7000\nCOMMIT\n"
        );
        assert!(ipt_restore("wg0", &r, true).contains("-d fd00::3 -j NFQUEUE --queue-num 7001"));
    }
}
