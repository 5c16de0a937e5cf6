//! The pure plan: what moat would make the kernel look like for a [`Model`] on a system
//! described by [`Facts`].
//!
//! [`build`] is a pure function (no syscall, clock or file). Its [`Plan`] holds
//! - the complete nft script for `table inet moat` ([`ruleset`], built as a typed [`nft`]
//!   value: one `nft -f` transaction that creates, deletes and re-creates the table, so there is
//!   never a moment without rules),
//! - the `ip rule`/`ip route` operations per tunnel table ([`routes`]: default route via the
//!   tunnel plus an `unreachable` kill-switch route),
//! - the queue plan for shaped devices ([`queue`]: nft `queue` or xt `NFQUEUE` through
//!   `iptables-restore`),
//! - a human summary ([`Plan::render`] is the body of `moat check`).
//!
//! Every number (mark values, tables, queues) comes from [`layout`]. The plan trusts the
//! validated model; the only checks it makes need the system facts and live in [`checks`].

pub mod checks;
pub mod facts;
pub mod guard;
pub mod hold;
pub mod layout;
pub mod nft;
pub mod persist;
pub mod queue;
mod render;
pub mod routes;
pub mod ruleset;
pub mod services;

use std::net::IpAddr;

pub use checks::{PlanError, PlanErrorKind};
pub use hold::{hold_script, HOLD_SECS};
pub use layout::{deposit, MarkLayout};
pub use queue::{IptQueueRule, IptRestore, PadQueue, QueueBackend, QueuePlan, ShapedQueue, IPT_CHAIN};
pub use routes::{RouteOp, RuleOp, AF_INET, AF_INET6, UNREACHABLE_METRIC};
pub use ruleset::NFT_REMOVE;

use crate::config::{IfName, Mac, Model, Route, TunnelKind};
use facts::Facts;
use layout::{Layout, RouteUse};

/// What a route class does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassKind {
    /// `route block`: LAN only.
    Block,
    /// A `wireguard` or `interface` tunnel: policy-routed into `device`.
    L3 {
        /// Tunnel netdev.
        device: IfName,
        /// Routing table id (also the ip rule priority).
        table: u32,
        /// Whether IPv6 is routed into the tunnel.
        ipv6: bool,
        /// Resolver the device's DNS to the router is sent to.
        dns: Option<IpAddr>,
        /// WireGuard (shapeable) rather than a generic interface.
        wireguard: bool,
    },
    /// A Tor transparent proxy on the router.
    Tor {
        /// TransPort.
        trans_port: u16,
        /// DNSPort.
        dns_port: u16,
    },
}

/// A route in use and its mark values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteClass {
    /// `block` or the tunnel section name.
    pub label: String,
    /// The route's own mark value (unshaped devices), already placed in the mask bits.
    pub value: u32,
    /// Every mark value meaning "this route": `value` first, then its shaped devices' values.
    pub values: Vec<u32>,
    /// What the route does.
    pub kind: ClassKind,
}

/// One device as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// UCI section address.
    pub section: String,
    /// Human label (never placed in nft text).
    pub name: String,
    /// MAC addresses.
    pub macs: Vec<Mac>,
    /// Route label (`direct`, `block`, tunnel name); `disabled` devices are direct.
    pub route: String,
    /// Mark value (within the mask); 0 for direct.
    pub mark: u32,
    /// Whether the device's section is enabled.
    pub enabled: bool,
    /// Device index (1-based among shaped devices) if shaped.
    pub shaped_index: Option<u32>,
}

/// The complete plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `enabled` of the config: if false, the plan is "remove everything".
    pub enabled: bool,
    /// Mark bit split.
    pub marks: MarkLayout,
    /// Routes in use.
    pub classes: Vec<RouteClass>,
    /// Every device of the config.
    pub devices: Vec<DevicePlan>,
    /// The nft ruleset as a typed value.
    pub ruleset: nft::Script,
    /// `ruleset` rendered: the script fed to `nft -f -`.
    pub nft: String,
    /// Policy-routing rules.
    pub rules: Vec<RuleOp>,
    /// Routes in tunnel tables.
    pub routes: Vec<RouteOp>,
    /// Shaping queues.
    pub queues: QueuePlan,
    /// Facts worth telling the user (tunnel absent, lan device missing, …).
    pub notes: Vec<String>,
}

/// Build the plan. Pure: the same model and facts always give the same plan. The errors are the
/// ones only the facts can reveal ([`checks`]).
pub fn build(model: &Model, facts: &Facts) -> Result<Plan, Vec<PlanError>> {
    let g = &model.global;
    let layout = Layout::new(model);
    let mask = layout.marks.mask;
    let mut errors = Vec::new();
    let mut notes = Vec::new();

    // Routes in use, each with its own value, then its shaped devices' values.
    let mut classes: Vec<RouteClass> = layout
        .routes
        .iter()
        .map(|r| {
            let (label, kind) = match r.route {
                RouteUse::Block => ("block".to_string(), ClassKind::Block),
                RouteUse::Tunnel(t, table) => (
                    t.name.as_str().to_string(),
                    match &t.kind {
                        TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3) => ClassKind::L3 {
                            device: l3.device.clone(),
                            table: table.expect("an L3 tunnel has a table"),
                            ipv6: l3.ipv6,
                            dns: l3.dns,
                            wireguard: matches!(t.kind, TunnelKind::WireGuard(_)),
                        },
                        TunnelKind::Tor(tor) => ClassKind::Tor { trans_port: tor.trans_port, dns_port: tor.dns_port },
                    },
                ),
            };
            RouteClass { label, value: r.value, values: vec![r.value], kind }
        })
        .collect();
    for s in &layout.shaped {
        let i = layout.route_index(&s.device.route).expect("a shaped device's route is in use");
        classes[i].values.push(s.mark);
    }

    // Devices.
    let devices: Vec<DevicePlan> = model
        .devices
        .iter()
        .map(|d| {
            let route = match (&d.route, d.enabled) {
                (_, false) => "disabled".to_string(),
                (Route::Direct, _) => "direct".to_string(),
                (Route::Block, _) => "block".to_string(),
                (Route::Tunnel(n), _) => n.as_str().to_string(),
            };
            let shaped = layout.shaped.iter().find(|s| std::ptr::eq(s.device, d));
            let mark = match (shaped, d.enabled) {
                (Some(s), _) => s.mark,
                (None, true) => layout.route_index(&d.route).map_or(0, |i| classes[i].value),
                (None, false) => 0,
            };
            DevicePlan {
                section: d.section.clone(),
                name: d.name.clone(),
                macs: d.macs.clone(),
                route,
                mark,
                enabled: d.enabled,
                shaped_index: shaped.map(|s| s.index),
            }
        })
        .collect();

    // Facts about interfaces.
    for l in &g.lan_devices {
        if facts.iface(l).is_none() {
            notes.push(format!("lan_device {} does not exist now; its rules apply once it appears", l));
        }
    }
    // Every tunnel's device must be a tunnel (also one no device uses yet).
    for t in &model.tunnels {
        let (TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3)) = &t.kind else { continue };
        if let Err(e) = checks::device_is_tunnel(t, l3, facts) {
            errors.push(e);
        }
        notes.extend(checks::link_type_note(t, l3, facts));
    }
    for (c, r) in classes.iter().zip(&layout.routes) {
        let ClassKind::L3 { device, dns, .. } = &c.kind else { continue };
        match facts.iface(device) {
            None => notes.push(format!(
                "tunnel {}: {} does not exist now; its devices are blocked until it is up",
                c.label, device
            )),
            Some(i) if !i.up => {
                notes.push(format!("tunnel {}: {} is down; its devices are blocked until it is up", c.label, device))
            }
            _ => {}
        }
        match dns {
            None => notes.push(format!(
                "tunnel {}: no dns set; its devices' DNS to the router is rejected (set option dns)",
                c.label
            )),
            Some(dns) => {
                if dns.is_ipv6() {
                    notes.push(format!("tunnel {}: dns {} is IPv6, so its devices' IPv4 DNS to the router is rejected (no NAT46); they must resolve over IPv6", c.label, dns));
                }
                let RouteUse::Tunnel(t, _) = r.route else { unreachable!("an L3 class is a tunnel") };
                let (TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3)) = &t.kind else {
                    unreachable!("an L3 class is an L3 tunnel")
                };
                if let Err(e) = checks::dns_not_local(t, l3, facts) {
                    errors.push(e);
                }
            }
        }
    }

    // Queues: pad_to is resolved once per shaped tunnel.
    let backend = if facts.nft_queue { QueueBackend::Nft } else { QueueBackend::Iptables };
    let mut pads: Vec<(&crate::config::Name, Option<u16>)> = Vec::new();
    let mut shaped = Vec::new();
    for s in &layout.shaped {
        let mtu = facts.iface(&s.l3.device).map(|i| i.mtu);
        let pad_to = match pads.iter().find(|(n, _)| **n == s.tunnel.name) {
            Some((_, p)) => *p,
            None => {
                let p = checks::resolve_pad(s.tunnel, s.l3, mtu).unwrap_or_else(|e| {
                    errors.push(e);
                    None
                });
                pads.push((&s.tunnel.name, p));
                p
            }
        };
        shaped.push(ShapedQueue {
            queue: s.queue,
            index: s.index,
            section: s.device.section.clone(),
            name: s.device.name.clone(),
            mark: s.mark,
            mark_mask: mask,
            tunnel: s.tunnel.name.clone(),
            device: s.l3.device.clone(),
            pad_to,
            mtu,
            cover_dst: s.l3.cover_dst,
            companion: s.l3.companion,
            shaper: s.shaper.clone(),
        });
    }
    let pad: Vec<PadQueue> = layout
        .pad
        .iter()
        .map(|p| PadQueue {
            queue: p.queue,
            tunnel: p.tunnel.name.clone(),
            device: p.l3.device.clone(),
            pad_to: pads.iter().find(|(n, _)| **n == p.tunnel.name).and_then(|(_, v)| *v),
        })
        .collect();
    for s in &shaped {
        if s.pad_to.is_none() && s.mtu.is_none() {
            let n = format!(
                "tunnel {}: pad_to is not known until {} exists; shaped traffic is dropped until then",
                s.tunnel, s.device
            );
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }

    let (rules, routes) = routes::routing(&classes, mask);
    let queues = QueuePlan { backend, iptables: queue::iptables_scripts(backend, &shaped, &pad), shaped, pad };
    let mut plan = Plan {
        enabled: g.enabled,
        marks: layout.marks,
        classes,
        devices,
        ruleset: nft::Script::default(),
        nft: String::new(),
        rules,
        routes,
        queues,
        notes,
    };
    if !g.enabled {
        plan.ruleset = ruleset::remove();
        plan.rules.clear();
        plan.routes.clear();
        plan.queues.shaped.clear();
        plan.queues.pad.clear();
        plan.queues.iptables.clear();
        plan.notes.insert(0, "moat is disabled (enabled '0'): everything moat added is removed".into());
    } else {
        plan.ruleset = ruleset::ruleset(&plan, &g.lan_devices);
    }
    plan.nft = plan.ruleset.to_string();
    Ok(plan)
}

/// The interfaces whose facts the plan needs: the LAN devices and every L3 tunnel device.
pub fn interface_names(model: &Model) -> Vec<&IfName> {
    let mut v: Vec<&IfName> = model.global.lan_devices.iter().collect();
    for t in &model.tunnels {
        if let TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3) = &t.kind {
            if !v.contains(&&l3.device) {
                v.push(&l3.device);
            }
        }
    }
    v
}

impl Plan {
    /// The nft script with shaped devices' forwarding dropped — what the daemon loads when the
    /// xt NFQUEUE rules cannot be installed, so shaped traffic never leaves unshaped.
    /// `None` when there are no shaped devices.
    pub fn nft_blocking_shaped(&self) -> Option<String> {
        ruleset::blocking_shaped(self, &self.ruleset).map(|s| s.to_string())
    }
}

#[cfg(test)]
mod tests;
