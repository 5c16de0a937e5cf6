//! Policy routing: one `ip rule fwmark V/mask lookup T` per mark value of an L3 tunnel's route,
//! and in each tunnel table a default route via the tunnel plus an `unreachable` kill-switch
//! route behind it.

use super::nft::hex;
use super::{ClassKind, RouteClass};
use crate::config::IfName;

/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;
/// Metric of the kill-switch route in each tunnel table.
pub const UNREACHABLE_METRIC: u32 = 9999;

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

/// The rules and routes for the routes in use (IPv6 only for tunnels that carry it).
pub fn routing(classes: &[RouteClass], mask: u32) -> (Vec<RuleOp>, Vec<RouteOp>) {
    let mut rules = Vec::new();
    let mut routes = Vec::new();
    for c in classes {
        if let ClassKind::L3 { device, table, ipv6, .. } = &c.kind {
            let fams: &[u8] = if *ipv6 { &[AF_INET, AF_INET6] } else { &[AF_INET] };
            for &family in fams {
                for &v in &c.values {
                    rules.push(RuleOp { family, mark: v, mask, table: *table, priority: *table });
                }
                routes.push(RouteOp { family, table: *table, device: Some(device.clone()), metric: 0 });
                routes.push(RouteOp { family, table: *table, device: None, metric: UNREACHABLE_METRIC });
            }
        }
    }
    (rules, routes)
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
