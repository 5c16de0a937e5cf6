//! Probing the live system, read-only, for the [`Facts`] the plan needs.
//!
//! The plan stays pure: it takes [`Facts`] as data; this is where they come from on a router
//! (`moat check` without `--facts`, and the daemon).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::config::IfName;
use crate::plan::facts::{Facts, Iface};

/// Probe the live system read-only for the given interfaces (others are not looked at).
///
/// Interface state (IFF_UP), MTU, link type and addresses, and the devices of the main table's
/// default routes (the WAN uplinks) come from rtnetlink dumps, `nft_queue` from
/// a `nft -c` (check only, nothing is changed) of a throwaway table holding a `queue` rule.
pub fn probe(names: &[&IfName]) -> Facts {
    probe_with(names, probe_nft_queue())
}

/// [`probe`] with the `nft_queue` answer supplied (the daemon probes it once).
pub fn probe_with(names: &[&IfName], nft_queue: bool) -> Facts {
    let mut facts = Facts { nft_queue, ..Facts::default() };
    // rtnetlink answers for the caller's network namespace even where /sys was not
    // remounted (e.g. `nsenter --net`), so links come from netlink, not /sys/class/net.
    let Ok(mut nl) = crate::netlink::Socket::open(0) else {
        return facts;
    };
    let links = nl.links().unwrap_or_default();
    let addrs = nl.addrs().unwrap_or_default();
    for n in names {
        let Some(l) = links.iter().find(|l| l.name == n.as_str()) else {
            continue;
        };
        let ifaddrs = addrs.iter().filter(|a| a.ifname == n.as_str()).map(|a| (a.addr, a.prefix)).collect();
        facts
            .interfaces
            .insert(n.as_str().to_string(), Iface { up: l.up, mtu: l.mtu, addrs: ifaddrs, link: Some(l.link_type) });
    }
    for family in [crate::plan::AF_INET, crate::plan::AF_INET6] {
        for oif in nl.main_default_oifs(family).unwrap_or_default() {
            if let Some(l) = links.iter().find(|l| l.index == oif) {
                facts.default_route.push(l.name.clone());
            }
        }
    }
    facts.default_route.sort();
    facts.default_route.dedup();
    facts
}

/// Does the running kernel accept the nft `queue` statement? Checked with `nft -c` (no change).
pub fn probe_nft_queue() -> bool {
    let script = "table inet moat_probe_queue {\n\tchain c {\n\t\ttype filter hook postrouting priority 0; policy accept;\n\t\tmeta mark 0x1 queue num 0\n\t}\n}\n";
    let child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    matches!(child.wait(), Ok(s) if s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sees_loopback_and_not_a_missing_interface() {
        // lo: ARPHRD_LOOPBACK.
        let lo = IfName::new("lo").unwrap();
        let none = IfName::new("moatnone0").unwrap();
        let f = probe_with(&[&lo, &none], false);
        let l = f.iface(&lo).expect("lo exists");
        assert!(l.up && l.mtu > 0);
        assert_eq!(l.link, Some(772));
        assert!(l.addrs.iter().any(|(a, _)| a.is_loopback()), "{l:?}");
        assert!(f.iface(&none).is_none());
    }
}
