//! The kill switch of `table inet moat_persist` (the owned, persistent table the daemon writes
//! over netlink, [`crate::netlink::nftables`]): per protected MAC, forwarded packets are dropped
//! unless they leave by an interface `guard_forward` of `inet moat` also lets them use (the
//! tunnel device; a block device's `lan_device`s; nothing for Tor), and its TCP and UDP to the
//! router are dropped unless `protected_input` also lets them in (DHCP 67/547; Tor's TransPort
//! and DNSPort), so no router service (e.g. the DNS forwarder) relays for it while `inet moat` is
//! gone. ICMP and other protocols are left to `inet moat`. Packets from a tunnel's address
//! (checked after NAT) leave only by the tunnel, loopback or a `lan_device` (with every nat chain
//! gone, replies of flows masqueraded into the tunnel were no longer translated back and the
//! router's RSTs from the tunnel address went out of the WAN: found by the lab's 20-flush cell).
//! It never drops what `inet moat` allows, and it stays in force when `fw4 flush` deletes every
//! other table.

use super::facts::Facts;
use super::{ClassKind, Plan};
use crate::config::IfName;
use crate::netlink::nftables::{Key, KillRule, Unless};

/// The rules for `plan` (empty: nothing protected, the table is removed).
pub fn kill_rules(plan: &Plan, lan_devices: &[IfName], facts: &Facts) -> Vec<KillRule> {
    if !plan.enabled {
        return Vec::new();
    }
    let mut out: Vec<KillRule> = Vec::new();
    for d in plan.devices.iter().filter(|d| d.mark != 0) {
        let Some(c) = plan.classes.iter().find(|c| c.label == d.route) else { continue };
        let (oif, tcp, udp): (Vec<String>, Vec<u16>, Vec<u16>) = match &c.kind {
            ClassKind::L3 { device, .. } => (vec![device.to_string()], vec![], vec![67, 547]),
            ClassKind::Tor { trans_port, dns_port } => (vec![], vec![*trans_port], vec![67, 547, *dns_port]),
            ClassKind::Block => (lan_devices.iter().map(ToString::to_string).collect(), vec![], vec![67, 547]),
        };
        for m in &d.macs {
            if out.iter().any(|r| r.key == Key::Mac(m.0)) {
                continue;
            }
            out.push(KillRule { key: Key::Mac(m.0), unless: Unless::Oif(oif.clone()) });
            out.push(KillRule { key: Key::Mac(m.0), unless: Unless::Dport { l4proto: 6, ports: tcp.clone() } });
            out.push(KillRule { key: Key::Mac(m.0), unless: Unless::Dport { l4proto: 17, ports: udp.clone() } });
        }
    }
    if out.is_empty() {
        return out;
    }
    for c in &plan.classes {
        let ClassKind::L3 { device, .. } = &c.kind else { continue };
        // the tunnel, loopback (the router talking to itself) and the LAN (replies to a LAN host
        // that addressed the tunnel address) stay allowed: only the way out is closed.
        let mut oif = vec![device.to_string(), "lo".to_string()];
        oif.extend(lan_devices.iter().map(ToString::to_string));
        for (a, _) in facts.iface(device).map(|i| i.addrs.as_slice()).unwrap_or_default() {
            out.push(KillRule { key: Key::Source(*a), unless: Unless::Oif(oif.clone()) });
        }
    }
    out
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
