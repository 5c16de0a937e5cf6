//! The pure plan: what moat would make the kernel look like for a [`Model`] on a system
//! described by [`Facts`].
//!
//! [`build`] is a pure function. Its [`Plan`] holds
//! - the complete nft script for `table inet moat` (one `nft -f` transaction that creates,
//!   deletes and re-creates the table, so there is never a moment without rules),
//! - the `ip rule`/`ip route` operations per tunnel table (default route via the tunnel plus an
//!   `unreachable` kill-switch route),
//! - the queue plan for shaped devices (nft `queue` or xt `NFQUEUE` through `iptables-restore`),
//! - a human summary ([`Plan::render`] is the body of `moat check`).
//!
//! # Mark layout
//! moat owns the bits of `fwmark_mask` (default `0x0f000000`, 15 usable values). The masked
//! mark is one number (placed in the mask's bits, lowest first), not separate bit fields, so a
//! small mask goes far: value 0 = not moat's; values 1..=r are the **routes in use** (each
//! `wireguard`/`interface`/`tor` tunnel some enabled device uses, in file order, then `block`);
//! values r+1..=r+s are the **shaped devices** (file order), each its own value. A device's
//! route is therefore "its value is in the route's value set": the route value plus the values
//! of the shaped devices on that route. Policy routing has one `ip rule fwmark V/mask` per value
//! of an L3 tunnel's set (all to the tunnel's table); route-level nft rules match the set
//! (`meta mark & mask { … }`); a queue rule matches exactly one shaped device's value, so the
//! device a queued packet belongs to follows from its mark (and its queue number). Bit fields
//! (route field + device field) were rejected: the shipped example (4 routes, 2 shaped
//! devices) would need 5 bits where the enumeration needs 6 of 15 values.
//!
//! # Ruleset (see docs/DESIGN.md)
//! `classify` (prerouting, mangle) sets the mark from the source MAC on every packet of every
//! flow (no conntrack dependency); `redirect_nat` (prerouting, dstnat − 5, before fw4 and any
//! "force DNS" redirect) sends tunnel devices' DNS for the router to the tunnel's resolver and
//! Tor devices' TCP/DNS to Tor; `guard_input`/`guard_forward` (filter − 5, before fw4) only ever
//! drop or reject: a tunnel device's packet leaving by any other interface is dropped, IPv6 of a
//! tunnel without IPv6 is rejected, Tor devices forward nothing, block devices reach the LAN
//! only, and DNS/DoT to the router itself that was not redirected is rejected. `classify` also
//! gives flows that start on a tunnel's side a ct mark, and `guard_output` (output, filter − 5)
//! drops the router's own packets of such flows leaving by another interface (fw4's reject RSTs
//! for a server's late packets after a tunnel flap went out of the WAN with the tunnel address:
//! found by the lab's leak matrix). Everything is kernel state, so it stays in force if the
//! daemon dies.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::facts::Facts;
use crate::model::{IfName, Mac, Model, Name, PadTo, Route, Shaper, ShaperMode, TunnelKind};

/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;
/// Metric of the kill-switch route in each tunnel table.
pub const UNREACHABLE_METRIC: u32 = 9999;
/// Smallest accepted `pad_to` (the model's limit).
pub const MIN_PAD_TO: u32 = crate::model::PAD_TO_MIN as u32;
/// Name of the iptables chain holding the xt NFQUEUE rules (mangle table).
pub const IPT_CHAIN: &str = "MOAT_QUEUE";

/// How moat uses its fwmark bits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLayout {
    /// All bits moat owns (`fwmark_mask`); every comparison is `mark & mask == value`.
    pub mask: u32,
    /// Number of non-zero values the mask can hold (2^bits − 1).
    pub capacity: u64,
    /// Values in use (routes + shaped devices).
    pub used: u32,
}

/// Spread the low bits of `v` over the set bits of `mask`, lowest first (a software `pdep`).
pub fn deposit(mask: u32, mut v: u32) -> u32 {
    let mut out = 0;
    let mut m = mask;
    while m != 0 && v != 0 {
        let bit = m & m.wrapping_neg();
        if v & 1 == 1 {
            out |= bit;
        }
        v >>= 1;
        m &= m - 1;
    }
    out
}

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

/// An `ip rule` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleOp {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// fwmark value.
    pub mark: u32,
    /// fwmark mask (`fwmark_mask`).
    pub mask: u32,
    /// Table to look up.
    pub table: u32,
    /// Rule priority.
    pub priority: u32,
}

/// An `ip route` operation in a tunnel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOp {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// Table.
    pub table: u32,
    /// `default dev <device>`; `None` = `unreachable default`.
    pub device: Option<IfName>,
    /// Metric.
    pub metric: u32,
}

/// Which kernel mechanism queues shaped packets to userspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBackend {
    /// nft `queue num N` in moat's table (OpenWrt with kmod-nft-queue).
    Nft,
    /// xt `NFQUEUE` target in the mangle table, loaded with `iptables-restore --noflush`.
    Iptables,
}

/// The queue of one shaped device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedQueue {
    /// NFQUEUE number.
    pub queue: u16,
    /// Device index (1-based among shaped devices, file order).
    pub index: u32,
    /// Device section address.
    pub section: String,
    /// Device label.
    pub name: String,
    /// The device's own mark value.
    pub mark: u32,
    /// Mask the mark is compared under.
    pub mark_mask: u32,
    /// Tunnel section.
    pub tunnel: Name,
    /// Tunnel netdev.
    pub device: IfName,
    /// Resolved inner packet size; `None` while the tunnel's MTU is unknown (tunnel absent).
    pub pad_to: Option<u16>,
    /// Tunnel MTU if known.
    pub mtu: Option<u32>,
    /// Where cover packets go.
    pub cover_dst: Option<IpAddr>,
    /// Shaper parameters.
    pub shaper: Shaper,
}

/// A pad-only queue for the other traffic of a shaped tunnel (`pad_all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PadQueue {
    /// NFQUEUE number.
    pub queue: u16,
    /// Tunnel section.
    pub tunnel: Name,
    /// Tunnel netdev.
    pub device: IfName,
    /// Resolved inner packet size (see [`ShapedQueue::pad_to`]).
    pub pad_to: Option<u16>,
}

/// Everything about queueing shaped traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlan {
    /// Mechanism used for the queue rules.
    pub backend: QueueBackend,
    /// One queue per shaped device.
    pub shaped: Vec<ShapedQueue>,
    /// One pad-only queue per shaped tunnel with `pad_all`.
    pub pad: Vec<PadQueue>,
    /// For [`QueueBackend::Iptables`]: (`iptables-restore`|`ip6tables-restore`, script) to run
    /// with `--noflush`. The script declares (and so flushes) [`IPT_CHAIN`]; the daemon adds the
    /// `-I POSTROUTING 1 -j MOAT_QUEUE` hook line when it is not present yet.
    pub iptables: Vec<(String, String)>,
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
    /// The nft script (fed to `nft -f -`).
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

/// The nft script that removes moat's table (works whether or not it exists).
pub const NFT_REMOVE: &str = "table inet moat\ndelete table inet moat\n";

/// Seconds protected devices stay blocked after the daemon stops (SIGTERM), so that a restart
/// (stop, then start) never lets their packets out in the clear.
pub const HOLD_SECS: u32 = 15;

/// The "hold" ruleset loaded when the daemon stops: it replaces the full table in one
/// transaction and only drops forwarded packets (and rejects DNS/DoT to the router) from the
/// protected devices' MACs, through a set whose elements expire after `secs` seconds. A new
/// daemon replaces it atomically with the full table (no gap); if none comes, the elements
/// expire and the table is inert (`moat cleanup` deletes it). `None` if nothing is protected.
pub fn hold_script(plan: &Plan, secs: u32) -> Option<String> {
    let mut macs: Vec<String> =
        plan.devices.iter().filter(|d| d.mark != 0).flat_map(|d| d.macs.iter().map(|m| m.to_string())).collect();
    if !plan.enabled || macs.is_empty() {
        return None;
    }
    macs.sort();
    macs.dedup();
    let elems: Vec<String> = macs.iter().map(|m| format!("{m} timeout {secs}s")).collect();
    let mut s = String::new();
    let _ = writeln!(s, "# moat stopped: protected devices stay blocked for {secs}s (restart window), then released.");
    let _ = writeln!(s, "table inet moat");
    let _ = writeln!(s, "delete table inet moat");
    let _ = writeln!(s, "table inet moat {{");
    let _ = writeln!(
        s,
        "	set hold {{
		type ether_addr; flags timeout;
		elements = {{ {} }}
	}}",
        elems.join(", ")
    );
    let _ = writeln!(
        s,
        "	chain hold_forward {{
		type filter hook forward priority filter - 5; policy accept;
		ether saddr @hold drop
	}}"
    );
    let _ = writeln!(
        s,
        "	chain hold_input {{
		type filter hook input priority filter - 5; policy accept;
		ether saddr @hold meta l4proto {{ tcp, udp }} th dport {{ 53, 853 }} drop
	}}"
    );
    let _ = writeln!(s, "}}");
    Some(s)
}

fn hex(v: u32) -> String {
    format!("0x{v:08x}")
}

/// Characters allowed from a section address into an nft comment line.
fn safe_section(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '[' | ']')).take(48).collect()
}

fn quoted_set(names: &[IfName]) -> String {
    let v: Vec<String> = names.iter().map(|n| format!("\"{}\"", n.as_str())).collect();
    format!("{{ {} }}", v.join(", "))
}

/// Build the plan. Pure: the same model and facts always give the same plan.
pub fn build(model: &Model, facts: &Facts) -> Result<Plan, Vec<String>> {
    let g = &model.global;
    let mut errors = Vec::new();
    let mut notes = Vec::new();

    // Route classes in use (tunnels in file order, then block).
    let active: Vec<_> = model.devices.iter().filter(|d| d.enabled).collect();
    let mut classes: Vec<RouteClass> = Vec::new();
    let mut l3_index = 0u32;
    for t in &model.tunnels {
        let used = active.iter().any(|d| d.route == Route::Tunnel(t.name.clone()));
        let kind = match &t.kind {
            TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3) => {
                let idx = l3_index;
                l3_index += 1;
                let table = match g.table_base.checked_add(idx) {
                    Some(x) if !matches!(x, 0 | 253..=255) => x,
                    _ => {
                        errors.push(format!(
                            "table_base {} + {} gives a reserved or invalid routing table id",
                            g.table_base, idx
                        ));
                        continue;
                    }
                };
                if let Some(dns) = l3.dns {
                    if dns.is_ipv6() && !l3.ipv6 {
                        errors.push(format!(
                            "tunnel '{}': dns {} is IPv6 but the tunnel does not carry IPv6 (ipv6 '0'); use an IPv4 resolver or set ipv6 '1'",
                            t.name, dns
                        ));
                    }
                }
                ClassKind::L3 {
                    device: l3.device.clone(),
                    table,
                    ipv6: l3.ipv6,
                    dns: l3.dns,
                    wireguard: matches!(t.kind, TunnelKind::WireGuard(_)),
                }
            }
            TunnelKind::Tor(tor) => ClassKind::Tor { trans_port: tor.trans_port, dns_port: tor.dns_port },
        };
        if used {
            classes.push(RouteClass { label: t.name.as_str().to_string(), value: 0, values: Vec::new(), kind });
        }
    }
    if active.iter().any(|d| d.route == Route::Block) {
        classes.push(RouteClass { label: "block".into(), value: 0, values: Vec::new(), kind: ClassKind::Block });
    }

    // Shaped devices (file order) and the mark layout.
    let shaped_devs: Vec<_> = active.iter().filter(|d| d.shaper.is_some()).collect();
    let capacity = (1u64 << g.fwmark_mask.count_ones()) - 1;
    let used = (classes.len() + shaped_devs.len()) as u32;
    if used as u64 > capacity {
        errors.push(format!(
            "fwmark_mask {} holds {} mark values, but {} route(s) in use and {} shaped device(s) need {}; widen fwmark_mask",
            hex(g.fwmark_mask),
            capacity,
            classes.len(),
            shaped_devs.len(),
            used
        ));
    }
    let marks = MarkLayout { mask: g.fwmark_mask, capacity, used };
    for (i, c) in classes.iter_mut().enumerate() {
        c.value = deposit(g.fwmark_mask, i as u32 + 1);
        c.values.push(c.value);
    }
    let n_classes = classes.len() as u32;
    let class_of = |classes: &[RouteClass], route: &Route| -> Option<u32> {
        class_index(classes, route).map(|i| classes[i].value)
    };

    // Devices.
    let mut devices = Vec::new();
    let mut shaped_index = 0u32;
    for d in &model.devices {
        let route_label = match (&d.route, d.enabled) {
            (_, false) => "disabled".to_string(),
            (Route::Direct, _) => "direct".to_string(),
            (Route::Block, _) => "block".to_string(),
            (Route::Tunnel(n), _) => n.as_str().to_string(),
        };
        let mut mark = 0;
        let mut idx = None;
        if d.enabled {
            if let Route::Tunnel(n) = &d.route {
                if model.tunnel(n).is_none() {
                    errors.push(format!("device {}: route '{}' names no tunnel section", d.section, n));
                }
            }
            if let Some(v) = class_of(&classes, &d.route) {
                mark = v;
            }
            if let Some(s) = &d.shaper {
                shaped_index += 1;
                idx = Some(shaped_index);
                mark = deposit(g.fwmark_mask, n_classes + shaped_index);
                if let Some(ci) = class_index(&classes, &d.route) {
                    classes[ci].values.push(mark);
                }
                let is_wg = matches!(&d.route, Route::Tunnel(n) if matches!(model.tunnel(n).map(|t| &t.kind), Some(TunnelKind::WireGuard(_))));
                if !is_wg {
                    errors.push(format!("device {}: shaper '{}' needs a wireguard tunnel route", d.section, s));
                }
                if model.shaper(s).is_none() {
                    errors.push(format!("device {}: shaper '{}' names no shaper section", d.section, s));
                }
            }
        }
        devices.push(DevicePlan {
            section: d.section.clone(),
            name: d.name.clone(),
            macs: d.macs.clone(),
            route: route_label,
            mark,
            enabled: d.enabled,
            shaped_index: idx,
        });
    }

    // Facts about interfaces.
    for l in &g.lan_devices {
        if facts.iface(l).is_none() {
            notes.push(format!("lan_device {} does not exist now; its rules apply once it appears", l));
        }
    }
    for c in &classes {
        if let ClassKind::L3 { device, .. } = &c.kind {
            match facts.iface(device) {
                None => notes.push(format!(
                    "tunnel {}: {} does not exist now; its devices are blocked until it is up",
                    c.label, device
                )),
                Some(i) if !i.up => notes
                    .push(format!("tunnel {}: {} is down; its devices are blocked until it is up", c.label, device)),
                _ => {}
            }
        }
        if let ClassKind::L3 { dns: None, .. } = &c.kind {
            notes.push(format!(
                "tunnel {}: no dns set; its devices' DNS to the router is rejected (set option dns)",
                c.label
            ));
        }
        if let ClassKind::L3 { dns: Some(dns), .. } = &c.kind {
            if dns.is_ipv6() {
                notes.push(format!("tunnel {}: dns {} is IPv6, so its devices' IPv4 DNS to the router is rejected (no NAT46); they must resolve over IPv6", c.label, dns));
            }
            if facts.interfaces.values().any(|i| i.addrs.iter().any(|(a, _)| a == dns)) {
                errors.push(format!(
                    "tunnel {}: dns {} is an address of this router; it must be a resolver reached through the tunnel",
                    c.label, dns
                ));
            }
        }
    }

    // Queues.
    let backend = if facts.nft_queue { QueueBackend::Nft } else { QueueBackend::Iptables };
    let mut shaped = Vec::new();
    let mut pad = Vec::new();
    let mut shaped_tunnels: Vec<&crate::model::Tunnel> = Vec::new();
    for d in &devices {
        let Some(index) = d.shaped_index else { continue };
        let src = model.devices.iter().find(|x| x.section == d.section).expect("same list");
        let (Route::Tunnel(tn), Some(sn)) = (&src.route, &src.shaper) else {
            continue;
        };
        let (Some(t), Some(sh)) = (model.tunnel(tn), model.shaper(sn)) else {
            continue;
        };
        let TunnelKind::WireGuard(l3) = &t.kind else { continue };
        let mtu = facts.iface(&l3.device).map(|i| i.mtu);
        let pad_to = match resolve_pad(t.name.as_str(), &l3.device, l3.pad_to, mtu) {
            Ok(p) => p,
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
                None
            }
        };
        let queue = g.queue_base as u32 + index - 1;
        if queue > u16::MAX as u32 {
            errors.push(format!(
                "queue_base {} + {} shaped devices exceeds queue number 65535",
                g.queue_base,
                shaped_devs.len()
            ));
            continue;
        }
        if !shaped_tunnels.iter().any(|x| x.name == t.name) {
            shaped_tunnels.push(t);
        }
        shaped.push(ShapedQueue {
            queue: queue as u16,
            index,
            section: d.section.clone(),
            name: d.name.clone(),
            mark: d.mark,
            mark_mask: marks.mask,
            tunnel: t.name.clone(),
            device: l3.device.clone(),
            pad_to,
            mtu,
            cover_dst: l3.cover_dst.or(l3.dns),
            shaper: sh.clone(),
        });
    }
    let mut next_queue = g.queue_base as u32 + shaped.len() as u32;
    for t in &shaped_tunnels {
        let TunnelKind::WireGuard(l3) = &t.kind else { continue };
        if !l3.pad_all {
            continue;
        }
        if next_queue > u16::MAX as u32 {
            errors
                .push(format!("queue_base {} leaves no queue number for tunnel {}'s pad queue", g.queue_base, t.name));
            break;
        }
        let pad_to = shaped.iter().find(|s| s.tunnel == t.name).and_then(|s| s.pad_to);
        pad.push(PadQueue { queue: next_queue as u16, tunnel: t.name.clone(), device: l3.device.clone(), pad_to });
        next_queue += 1;
    }
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
        if s.cover_dst.is_none() {
            let n = format!("tunnel {}: neither cover_dst nor dns is set; no cover packets can be sent", s.tunnel);
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }

    // Routing.
    let mut rules = Vec::new();
    let mut routes = Vec::new();
    for c in &classes {
        if let ClassKind::L3 { device, table, ipv6, .. } = &c.kind {
            let fams: &[u8] = if *ipv6 { &[AF_INET, AF_INET6] } else { &[AF_INET] };
            for &family in fams {
                for &v in &c.values {
                    rules.push(RuleOp { family, mark: v, mask: marks.mask, table: *table, priority: *table });
                }
                routes.push(RouteOp { family, table: *table, device: Some(device.clone()), metric: 0 });
                routes.push(RouteOp { family, table: *table, device: None, metric: UNREACHABLE_METRIC });
            }
        }
    }

    let queues = QueuePlan { backend, iptables: iptables_scripts(backend, &shaped, &pad), shaped, pad };
    let mut plan =
        Plan { enabled: g.enabled, marks, classes, devices, nft: String::new(), rules, routes, queues, notes };
    if !g.enabled {
        plan.nft = NFT_REMOVE.to_string();
        plan.rules.clear();
        plan.routes.clear();
        plan.queues.shaped.clear();
        plan.queues.pad.clear();
        plan.queues.iptables.clear();
        plan.notes.insert(0, "moat is disabled (enabled '0'): everything moat added is removed".into());
    } else {
        plan.nft = nft_script(model, &plan);
    }
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

fn class_index(classes: &[RouteClass], route: &Route) -> Option<usize> {
    match route {
        Route::Direct => None,
        Route::Block => classes.iter().position(|c| c.kind == ClassKind::Block),
        Route::Tunnel(n) => classes.iter().position(|c| c.label == n.as_str()),
    }
}

/// `meta mark & MASK == V` or `meta mark & MASK { V1, V2 }`.
fn mark_match(mask: u32, values: &[u32]) -> String {
    if values.len() == 1 {
        format!("meta mark & {} == {}", hex(mask), hex(values[0]))
    } else {
        let v: Vec<String> = values.iter().map(|&x| hex(x)).collect();
        format!("meta mark & {} {{ {} }}", hex(mask), v.join(", "))
    }
}

fn resolve_pad(tunnel: &str, dev: &IfName, pad: PadTo, mtu: Option<u32>) -> Result<Option<u16>, String> {
    let v = match (pad, mtu) {
        (PadTo::Auto, None) => return Ok(None),
        (PadTo::Auto, Some(m)) => m & !15,
        (PadTo::Bytes(b), _) => b as u32,
    };
    if v < MIN_PAD_TO {
        return Err(format!(
            "tunnel {tunnel}: pad_to {v} is below the minimum {MIN_PAD_TO} (MTU of {dev}: {})",
            mtu.map_or("unknown".into(), |m| m.to_string())
        ));
    }
    if let Some(m) = mtu {
        if v > m {
            return Err(format!("tunnel {tunnel}: pad_to {v} is above the MTU {m} of {dev}; padded packets would be dropped (use auto or at most {})", m & !15));
        }
    }
    Ok(Some(v.min(u16::MAX as u32) as u16))
}

fn iptables_scripts(backend: QueueBackend, shaped: &[ShapedQueue], pad: &[PadQueue]) -> Vec<(String, String)> {
    if backend != QueueBackend::Iptables || (shaped.is_empty() && pad.is_empty()) {
        return Vec::new();
    }
    let mut body = String::new();
    let _ = writeln!(body, "*mangle");
    let _ = writeln!(body, ":{IPT_CHAIN} - [0:0]");
    for s in shaped {
        let _ = writeln!(
            body,
            "-A {IPT_CHAIN} -o {} -m mark --mark {}/{} -j NFQUEUE --queue-num {}",
            s.device,
            hex(s.mark),
            hex(s.mark_mask),
            s.queue
        );
    }
    for p in pad {
        let _ = writeln!(body, "-A {IPT_CHAIN} -o {} -j NFQUEUE --queue-num {}", p.device, p.queue);
    }
    let _ = writeln!(body, "COMMIT");
    vec![("iptables-restore".into(), body.clone()), ("ip6tables-restore".into(), body)]
}

fn nft_script(model: &Model, plan: &Plan) -> String {
    let g = &model.global;
    let mask = plan.marks.mask;
    let lans = quoted_set(&g.lan_devices);
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# moat ruleset, loaded with `nft -f` as ONE transaction: the first two lines make sure the");
    let _ = writeln!(w, "# table exists, then it is deleted and re-created, so the old rules stay until the commit.");
    let _ = writeln!(
        w,
        "# fwmark_mask {}: {} of {} mark values in use (routes, then shaped devices)",
        hex(mask),
        plan.marks.used,
        plan.marks.capacity
    );
    let _ = writeln!(w, "table inet moat");
    let _ = writeln!(w, "delete table inet moat");
    let _ = writeln!(w, "table inet moat {{");

    // classify
    let _ = writeln!(w, "\tchain classify {{");
    // mangle + 10: after other packages' mark restores at mangle (pbr, mwan3), which may
    // rewrite the whole mark; still long before NAT (dstnat) and the routing decision.
    let _ = writeln!(w, "\t\ttype filter hook prerouting priority mangle + 10; policy accept;");
    let keep = hex(!plan.marks.mask);
    for d in &plan.devices {
        if d.mark == 0 {
            continue;
        }
        let macs: Vec<String> = d.macs.iter().map(|m| m.to_string()).collect();
        let _ = writeln!(w, "\t\t# {} -> {}", safe_section(&d.section), d.route);
        let _ = writeln!(
            w,
            "\t\tiifname {lans} ether saddr {{ {} }} meta mark set meta mark & {keep} | {}",
            macs.join(", "),
            hex(d.mark)
        );
    }
    // Flows whose first packet arrives from a tunnel (e.g. a server's late packets after a
    // tunnel flap flushed the masquerade entries) get the route's ct mark, so anything the
    // router generates in reply (fw4's reject RSTs/ICMP carry the offending packet's conntrack)
    // is held in the tunnel by guard_output instead of being routed out of the WAN in the clear.
    for c in &plan.classes {
        if let ClassKind::L3 { device, .. } = &c.kind {
            let _ = writeln!(
                w,
                "\t\tiifname \"{device}\" ct state new ct mark set ct mark & {keep} | {} comment \"{}: flows started from the tunnel side\"",
                hex(c.value),
                c.label
            );
        }
    }
    let _ = writeln!(w, "\t}}");

    // redirect_nat
    let _ = writeln!(w, "\tchain redirect_nat {{");
    let _ = writeln!(w, "\t\ttype nat hook prerouting priority dstnat - 5; policy accept;");
    for c in &plan.classes {
        let m = mark_match(mask, &c.values);
        match &c.kind {
            ClassKind::L3 { dns: Some(IpAddr::V4(d)), .. } => {
                let _ = writeln!(w, "\t\t{m} meta nfproto ipv4 fib daddr type local meta l4proto {{ tcp, udp }} th dport 53 dnat ip to {d} comment \"{}: DNS for the router goes to the tunnel resolver\"", c.label);
            }
            ClassKind::L3 { dns: Some(IpAddr::V6(d)), .. } => {
                let _ = writeln!(w, "\t\t{m} meta nfproto ipv6 fib daddr type local meta l4proto {{ tcp, udp }} th dport 53 dnat ip6 to {d} comment \"{}: DNS for the router goes to the tunnel resolver\"", c.label);
            }
            ClassKind::Tor { trans_port, dns_port } => {
                let _ = writeln!(
                    w,
                    "\t\t{m} meta nfproto ipv4 udp dport 53 redirect to :{dns_port} comment \"{}: DNS to Tor DNSPort\"",
                    c.label
                );
                let _ = writeln!(w, "\t\t{m} meta nfproto ipv4 meta l4proto tcp redirect to :{trans_port} comment \"{}: TCP to Tor TransPort\"", c.label);
            }
            _ => {}
        }
    }
    let _ = writeln!(w, "\t}}");

    // guard_input
    let _ = writeln!(w, "\tchain guard_input {{");
    let _ = writeln!(w, "\t\ttype filter hook input priority filter - 5; policy accept;");
    for c in &plan.classes {
        let m = mark_match(mask, &c.values);
        match &c.kind {
            ClassKind::L3 { .. } | ClassKind::Block => {
                let _ = writeln!(w, "\t\t{m} meta l4proto {{ tcp, udp }} th dport {{ 53, 853 }} jump reject_fast comment \"{}: no DNS through the router resolver\"", c.label);
            }
            ClassKind::Tor { .. } => {
                let _ = writeln!(w, "\t\t{m} jump tor_{}_input", c.label);
            }
        }
    }
    let _ = writeln!(w, "\t}}");
    for c in &plan.classes {
        if let ClassKind::Tor { trans_port, dns_port } = &c.kind {
            let _ = writeln!(w, "\tchain tor_{}_input {{", c.label);
            let _ = writeln!(w, "\t\tmeta nfproto ipv4 tcp dport {trans_port} return");
            let _ = writeln!(w, "\t\tmeta nfproto ipv4 udp dport {{ 67, {dns_port} }} return");
            let _ = writeln!(w, "\t\tdrop");
            let _ = writeln!(w, "\t}}");
        }
    }

    // guard_output: the router's own packets belonging to tunnel-side flows never leave by
    // another interface (found by the lab: RSTs from the tunnel address on the WAN after a flap).
    let _ = writeln!(w, "\tchain guard_output {{");
    let _ = writeln!(w, "\t\ttype filter hook output priority filter - 5; policy accept;");
    for c in &plan.classes {
        if let ClassKind::L3 { device, .. } = &c.kind {
            let _ = writeln!(
                w,
                "\t\tct mark & {} == {} oifname != \"{device}\" drop comment \"{}: replies to tunnel-side flows stay in the tunnel\"",
                hex(mask),
                hex(c.value),
                c.label
            );
        }
    }
    let _ = writeln!(w, "\t}}");

    // guard_forward
    let _ = writeln!(w, "\tchain guard_forward {{");
    let _ = writeln!(w, "\t\ttype filter hook forward priority filter - 5; policy accept;");
    for c in &plan.classes {
        let m = mark_match(mask, &c.values);
        match &c.kind {
            ClassKind::L3 { device, ipv6, .. } => {
                if !ipv6 {
                    let _ = writeln!(
                        w,
                        "\t\t{m} meta nfproto ipv6 jump reject_fast comment \"{}: tunnel carries no IPv6\"",
                        c.label
                    );
                }
                let _ = writeln!(w, "\t\t{m} oifname != \"{device}\" drop comment \"{}: kill switch\"", c.label);
            }
            ClassKind::Tor { .. } => {
                let _ = writeln!(w, "\t\t{m} drop comment \"{}: only TCP and DNS, through Tor\"", c.label);
            }
            ClassKind::Block => {
                let _ = writeln!(w, "\t\t{m} oifname != {lans} drop comment \"block: LAN only\"");
            }
        }
    }
    for q in &plan.queues.shaped {
        if let Some(p) = q.pad_to {
            let qm = format!("meta mark & {} == {}", hex(q.mark_mask), hex(q.mark));
            let (m4, m6) = (p as u32 - 40, p as u32 - 60);
            let _ = writeln!(w, "\t\t{qm} meta nfproto ipv4 tcp flags syn / syn,rst tcp option maxseg size > {m4} tcp option maxseg size set {m4}");
            let _ = writeln!(w, "\t\t{qm} meta nfproto ipv6 tcp flags syn / syn,rst tcp option maxseg size > {m6} tcp option maxseg size set {m6}");
        }
    }
    let _ = writeln!(w, "\t}}");

    // queue (nft backend)
    if plan.queues.backend == QueueBackend::Nft && !(plan.queues.shaped.is_empty() && plan.queues.pad.is_empty()) {
        let _ = writeln!(w, "\tchain shape_queue {{");
        let _ = writeln!(w, "\t\ttype filter hook postrouting priority mangle; policy accept;");
        for q in &plan.queues.shaped {
            let _ = writeln!(
                w,
                "\t\toifname \"{}\" meta mark & {} == {} queue num {}",
                q.device,
                hex(q.mark_mask),
                hex(q.mark),
                q.queue
            );
        }
        for p in &plan.queues.pad {
            let _ = writeln!(w, "\t\toifname \"{}\" queue num {}", p.device, p.queue);
        }
        let _ = writeln!(w, "\t}}");
    }

    let _ = writeln!(w, "\tchain reject_fast {{");
    let _ = writeln!(w, "\t\tmeta l4proto tcp reject with tcp reset");
    let _ = writeln!(w, "\t\treject with icmpx admin-prohibited");
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    s
}

fn fam(f: u8) -> &'static str {
    if f == AF_INET6 {
        "-6"
    } else {
        "-4"
    }
}

impl RuleOp {
    /// The equivalent `ip rule add` command line (for humans; the daemon uses netlink).
    pub fn to_command(&self) -> String {
        format!(
            "ip {} rule add fwmark {}/{} lookup {} priority {}",
            fam(self.family),
            hex(self.mark),
            hex(self.mask),
            self.table,
            self.priority
        )
    }
}

impl RouteOp {
    /// The equivalent `ip route add` command line (for humans; the daemon uses netlink).
    pub fn to_command(&self) -> String {
        match &self.device {
            Some(d) => format!("ip {} route add default dev {} table {}", fam(self.family), d, self.table),
            None => format!(
                "ip {} route add unreachable default table {} metric {}",
                fam(self.family),
                self.table,
                self.metric
            ),
        }
    }
}

impl Plan {
    /// The nft script with shaped devices' forwarding dropped — what the daemon loads when the
    /// xt NFQUEUE rules cannot be installed, so shaped traffic never leaves unshaped.
    /// `None` when there are no shaped devices.
    pub fn nft_blocking_shaped(&self) -> Option<String> {
        if self.queues.shaped.is_empty() {
            return None;
        }
        let values: Vec<u32> = self.queues.shaped.iter().map(|q| q.mark).collect();
        let rule = format!(
            "\t\t{} drop comment \"shaped: queue rules missing, fail closed\"\n",
            mark_match(self.marks.mask, &values)
        );
        let anchor = "\t\ttype filter hook forward priority filter - 5; policy accept;\n";
        let pos = self.nft.find(anchor)? + anchor.len();
        let mut s = self.nft.clone();
        s.insert_str(pos, &rule);
        Some(s)
    }
}

fn shaper_text(s: &Shaper) -> String {
    match &s.mode {
        ShaperMode::Constant(p) => format!("{}: constant, {} packets/s per direction", s.name, p.rate),
        ShaperMode::Stochastic(p) => format!(
            "{}: stochastic, rate cap {} packets/s, {} decoys/idle hour, budget {} MB/day, decoy {} packets/s for {} s until learned, idle gap {} s",
            s.name, p.rate, p.decoys, p.budget_mb, p.decoy_rate, p.decoy_duration, p.idle_gap
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
                crate::model::printable(&d.name),
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
                "queue {}: device index {} {} '{}', mark {}/{}, leaving {} (tunnel {}), {}, cover_dst {}, shaper {}",
                sq.queue,
                sq.index,
                sq.section,
                crate::model::printable(&sq.name),
                hex(sq.mark),
                hex(sq.mark_mask),
                sq.device,
                sq.tunnel,
                pad(sq.pad_to, sq.mtu),
                sq.cover_dst.map_or("none".into(), |a| a.to_string()),
                shaper_text(&sq.shaper)
            );
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
        for (prog, body) in &q.iptables {
            let _ = writeln!(
                w,
                "{prog} --noflush <<EOF   (plus '-I POSTROUTING 1 -j {IPT_CHAIN}' when the hook is missing)"
            );
            let _ = write!(w, "{body}");
            let _ = writeln!(w, "EOF");
        }
        s
    }
}

#[cfg(test)]
mod tests;
