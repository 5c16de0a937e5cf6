//! The human-readable plan printed by `moat check` ([`Plan::render`]).

use std::fmt::Write as _;

use super::nft::hex;
use super::queue::IPT_CHAIN;
use super::{ClassKind, Plan, QueueBackend};
use crate::config::{Shaper, ShaperMode};

fn shaper_text(s: &Shaper) -> String {
    match &s.mode {
        ShaperMode::Constant(p) => format!("{}: constant, {} packets/s upstream", s.name, p.rate),
        ShaperMode::Stochastic(p) => format!(
            "{}: stochastic, rate cap {} packets/s, {} decoys/idle hour, budget {} MB/day, decoy {} packets/s for {} s until learned, idle gap {} s, pace {} % of the real periods of the last {} s",
            s.name, p.rate, p.decoys, p.budget_mb, p.decoy_rate, p.decoy_duration, p.idle_gap, p.pace, p.pace_window
        ),
    }
}

impl Plan {
    /// The human-readable plan printed by `moat check`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "== summary ==");
        let _ = writeln!(w, "enabled: {}", if self.enabled { "yes" } else { "no" });
        let _ = writeln!(
            w,
            "marks: fwmark_mask {}, {} of {} values in use",
            hex(self.marks.mask),
            self.marks.used,
            self.marks.capacity
        );
        for c in &self.classes {
            let what = match &c.kind {
                ClassKind::Block => "LAN only".to_string(),
                ClassKind::L3 { device, table, ipv6, dns, wireguard } => format!(
                    "{} {device}, table {table}, dns {}, ipv6 {}",
                    if *wireguard { "wireguard" } else { "interface" },
                    dns.map_or("none".into(), |d| d.to_string()),
                    if *ipv6 { "routed" } else { "rejected" }
                ),
                ClassKind::Tor { trans_port, dns_port } => format!("tor, TransPort {trans_port}, DNSPort {dns_port}"),
            };
            let v: Vec<String> = c.values.iter().map(|&x| hex(x)).collect();
            let _ = writeln!(w, "route {}: mark {} ({})", c.label, v.join(" "), what);
        }
        if self.devices.is_empty() {
            let _ = writeln!(w, "devices: none");
        }
        for d in &self.devices {
            let macs: Vec<String> = d.macs.iter().map(|m| m.to_string()).collect();
            let _ = write!(
                w,
                "device {} '{}' [{}] -> {}",
                d.section,
                crate::config::printable(&d.name),
                macs.join(" "),
                d.route
            );
            if d.mark != 0 {
                let _ = write!(w, ", mark {}", hex(d.mark));
            }
            if let Some(i) = d.shaped_index {
                let _ = write!(w, ", shaped (device index {i})");
            }
            let _ = writeln!(w);
        }
        for n in &self.notes {
            let _ = writeln!(w, "note: {n}");
        }
        let _ = writeln!(w, "\n== nft script (nft -f -, one transaction) ==");
        let _ = write!(w, "{}", self.nft);
        let _ = writeln!(w, "\n== ip rules ==");
        if self.rules.is_empty() {
            let _ = writeln!(w, "(none)");
        }
        for r in &self.rules {
            let _ = writeln!(w, "{}", r.to_command());
        }
        let _ = writeln!(w, "\n== ip routes ==");
        if self.routes.is_empty() {
            let _ = writeln!(w, "(none)");
        }
        for r in &self.routes {
            let _ = writeln!(w, "{}", r.to_command());
        }
        let _ = writeln!(w, "\n== queues and shapers ==");
        let q = &self.queues;
        if q.shaped.is_empty() && q.pad.is_empty() {
            let _ = writeln!(w, "(none)");
        } else {
            let _ = writeln!(
                w,
                "backend: {}",
                match q.backend {
                    QueueBackend::Nft => "nft queue statement (chain shape_queue above)",
                    QueueBackend::Iptables =>
                        "xt NFQUEUE through iptables-restore --noflush (the probe found no nft queue statement)",
                }
            );
        }
        let pad = |p: Option<u16>, mtu: Option<u32>| match (p, mtu) {
            (Some(p), Some(m)) => format!("pad_to {p} (MTU {m})"),
            (Some(p), None) => format!("pad_to {p} (MTU unknown)"),
            (None, _) => "pad_to unknown until the tunnel exists".to_string(),
        };
        for sq in &q.shaped {
            let _ = writeln!(
                w,
                "queue {}: device index {} {} '{}', mark {}/{}, leaving {} (tunnel {}), {}, cover_dst {}, shaper {}{}",
                sq.queue,
                sq.index,
                sq.section,
                crate::config::printable(&sq.name),
                hex(sq.mark),
                hex(sq.mark_mask),
                sq.device,
                sq.tunnel,
                pad(sq.pad_to, sq.mtu),
                sq.companion.map_or(sq.cover_dst, |c| Some(c.addr)).map_or("none".into(), |a| a.to_string()),
                shaper_text(&sq.shaper),
                sq.companion.map_or(String::new(), |c| format!(
                    "; downstream shaped by the companion at {} (asked in cover packets{})",
                    c.addr,
                    if c.required { "; device blocked while it does not answer" } else { "" }
                ))
            );
        }
        // Devices of one tunnel naming one shaper share one schedule (one clock): say so.
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for sq in &q.shaped {
            let key = (sq.tunnel.as_str(), sq.shaper.name.as_str());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let members: Vec<String> = q
                .shaped
                .iter()
                .filter(|o| o.tunnel == sq.tunnel && o.shaper.name == sq.shaper.name)
                .map(|o| o.queue.to_string())
                .collect();
            if members.len() > 1 {
                let _ = writeln!(
                    w,
                    "schedule {}/{}: one shaper clock shared by the {} devices of queues {} (served in turn)",
                    sq.tunnel,
                    sq.shaper.name,
                    members.len(),
                    members.join(", ")
                );
            }
        }
        for p in &q.pad {
            let _ = writeln!(
                w,
                "queue {}: pad only, all other traffic leaving {} (tunnel {}), {}",
                p.queue,
                p.device,
                p.tunnel,
                pad(p.pad_to, None)
            );
        }
        for r in &q.iptables {
            let _ = writeln!(
                w,
                "{} --noflush <<EOF   (plus '-I POSTROUTING 1 -j {IPT_CHAIN}' when the hook is missing)",
                r.restore
            );
            let _ = write!(w, "{r}");
            let _ = writeln!(w, "EOF");
        }
        s
    }
}
