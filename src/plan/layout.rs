//! Where everything lands in moat's number ranges: the single source of the mark values, routing
//! table ids and NFQUEUE numbers the rest of the plan uses.
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
//! # Tables and queues
//! Each `wireguard`/`interface` tunnel (used or not, file order) gets table `table_base + i`,
//! which is also its ip rules' priority. Shaped device `n` (1-based, file order) gets queue
//! `queue_base + n - 1`; the pad queues of shaped tunnels with `pad_all` follow, in the order
//! the tunnels first appear among the shaped devices.
//!
//! Validation ([`crate::config`]) counts the same things (`mark_values_needed`, `tables_needed`,
//! `queues_needed`) and guarantees they fit; `tests/model_budgets.rs` checks both agree.

use crate::config::{Device, L3Tunnel, Model, Route, Shaper, Tunnel, TunnelKind};

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

/// A route in use, in mark order.
#[derive(Debug, Clone, Copy)]
pub enum RouteUse<'m> {
    /// A tunnel some enabled device is routed into, with its routing table (L3 tunnels only).
    Tunnel(&'m Tunnel, Option<u32>),
    /// `route block`.
    Block,
}

/// A route in use and its own mark value.
#[derive(Debug, Clone, Copy)]
pub struct RouteSlot<'m> {
    /// Which route.
    pub route: RouteUse<'m>,
    /// Its mark value (placed in the mask bits).
    pub value: u32,
}

/// An enabled shaped device: its mark value and queue.
#[derive(Debug, Clone, Copy)]
pub struct ShapedSlot<'m> {
    /// The device.
    pub device: &'m Device,
    /// Its wireguard tunnel.
    pub tunnel: &'m Tunnel,
    /// That tunnel's parameters.
    pub l3: &'m L3Tunnel,
    /// Its shaper.
    pub shaper: &'m Shaper,
    /// 1-based index among shaped devices.
    pub index: u32,
    /// Its own mark value.
    pub mark: u32,
    /// Its NFQUEUE number.
    pub queue: u16,
}

/// A pad-only queue of a shaped tunnel with `pad_all`.
#[derive(Debug, Clone, Copy)]
pub struct PadSlot<'m> {
    /// The tunnel.
    pub tunnel: &'m Tunnel,
    /// Its parameters.
    pub l3: &'m L3Tunnel,
    /// Its NFQUEUE number.
    pub queue: u16,
}

/// Every number the plan hands out, for one model.
#[derive(Debug, Clone)]
pub struct Layout<'m> {
    /// Mark bits and how many values are used.
    pub marks: MarkLayout,
    /// Routes in use in value order (tunnels in file order, then block).
    pub routes: Vec<RouteSlot<'m>>,
    /// Enabled shaped devices in file order.
    pub shaped: Vec<ShapedSlot<'m>>,
    /// Pad queues.
    pub pad: Vec<PadSlot<'m>>,
}

impl<'m> Layout<'m> {
    /// Lay out a validated model. Validation guarantees what is relied on here: a shaped device
    /// is routed into an existing wireguard tunnel and names an existing shaper, and every
    /// number fits its range.
    pub fn new(model: &'m Model) -> Layout<'m> {
        let g = &model.global;
        let mask = g.fwmark_mask;
        let uses = |r: &Route| model.active_devices().any(|d| &d.route == r);
        let mut routes = Vec::new();
        let mut l3_index = 0;
        for t in &model.tunnels {
            let table = match &t.kind {
                TunnelKind::WireGuard(_) | TunnelKind::Interface(_) => {
                    l3_index += 1;
                    Some(g.table_base + l3_index - 1)
                }
                TunnelKind::Tor(_) => None,
            };
            if uses(&Route::Tunnel(t.name.clone())) {
                routes.push(RouteUse::Tunnel(t, table));
            }
        }
        if uses(&Route::Block) {
            routes.push(RouteUse::Block);
        }
        let routes: Vec<RouteSlot<'m>> = routes
            .into_iter()
            .enumerate()
            .map(|(i, route)| RouteSlot { route, value: deposit(mask, i as u32 + 1) })
            .collect();
        let n_routes = routes.len() as u32;

        let mut shaped = Vec::new();
        for device in model.active_devices() {
            let Some(sn) = &device.shaper else { continue };
            let tunnel = model.device_tunnel(device).expect("validated: a shaped device's route names a tunnel");
            let TunnelKind::WireGuard(l3) = &tunnel.kind else {
                unreachable!("validated: a shaped device is routed into a wireguard tunnel")
            };
            let shaper = model.shaper(sn).expect("validated: a device's shaper names a shaper section");
            let index = shaped.len() as u32 + 1;
            let queue = (g.queue_base as u32 + index - 1) as u16;
            shaped.push(ShapedSlot { device, tunnel, l3, shaper, index, mark: deposit(mask, n_routes + index), queue });
        }

        let mut pad: Vec<PadSlot<'m>> = Vec::new();
        for s in &shaped {
            if s.l3.pad_all && !pad.iter().any(|p| p.tunnel.name == s.tunnel.name) {
                let queue = (g.queue_base as u32 + (shaped.len() + pad.len()) as u32) as u16;
                pad.push(PadSlot { tunnel: s.tunnel, l3: s.l3, queue });
            }
        }

        let capacity = (1u64 << mask.count_ones()) - 1;
        let marks = MarkLayout { mask, capacity, used: n_routes + shaped.len() as u32 };
        Layout { marks, routes, shaped, pad }
    }

    /// Index in [`Layout::routes`] of a device's route (`None` for direct).
    pub fn route_index(&self, route: &Route) -> Option<usize> {
        self.routes.iter().position(|r| match (r.route, route) {
            (RouteUse::Block, Route::Block) => true,
            (RouteUse::Tunnel(t, _), Route::Tunnel(n)) => &t.name == n,
            _ => false,
        })
    }
}
