//! The queue plan for shaped devices: which queues exist and, for the xt backend, the
//! `iptables-restore` scripts as a typed value ([`IptRestore`], rendered by `Display`).

use std::fmt;
use std::net::IpAddr;

use super::nft::hex;
use crate::config::{IfName, Name, Shaper};

/// Name of the iptables chain holding the xt NFQUEUE rules (mangle table).
pub const IPT_CHAIN: &str = "MOAT_QUEUE";

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
    /// Where cover packets go (validation guarantees an IPv4 address for a shaped tunnel).
    pub cover_dst: Option<IpAddr>,
    /// The tunnel's companion (`option companion`).
    pub companion: Option<crate::config::Companion>,
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
    /// For [`QueueBackend::Iptables`]: the IPv4 and IPv6 restore scripts (empty otherwise).
    pub iptables: Vec<IptRestore>,
}

/// One `iptables-restore --noflush` input: declares (and so flushes) [`IPT_CHAIN`] in the
/// mangle table and fills it with NFQUEUE rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptRestore {
    /// `iptables-restore` or `ip6tables-restore`.
    pub restore: &'static str,
    /// The matching `iptables`/`ip6tables` (to look for the hook with `-C`).
    pub tool: &'static str,
    /// The rules of [`IPT_CHAIN`] in order.
    pub rules: Vec<IptQueueRule>,
}

/// `-A MOAT_QUEUE -o DEV [-m mark --mark V/M] -j NFQUEUE --queue-num N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptQueueRule {
    /// Outgoing interface.
    pub out: IfName,
    /// `(value, mask)` the mark must have; `None` = all traffic (pad queue).
    pub mark: Option<(u32, u32)>,
    /// Queue number.
    pub queue: u16,
}

impl IptRestore {
    /// The script; with `hook` it also inserts `-I POSTROUTING 1 -j MOAT_QUEUE` (the daemon asks
    /// for it when the hook is not present yet).
    pub fn script(&self, hook: bool) -> String {
        Restore { r: self, hook }.to_string()
    }
}

struct Restore<'a> {
    r: &'a IptRestore,
    hook: bool,
}

impl fmt::Display for Restore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "*mangle")?;
        writeln!(f, ":{IPT_CHAIN} - [0:0]")?;
        for r in &self.r.rules {
            write!(f, "-A {IPT_CHAIN} -o {}", r.out)?;
            if let Some((v, m)) = r.mark {
                write!(f, " -m mark --mark {}/{}", hex(v), hex(m))?;
            }
            writeln!(f, " -j NFQUEUE --queue-num {}", r.queue)?;
        }
        if self.hook {
            writeln!(f, "-I POSTROUTING 1 -j {IPT_CHAIN}")?;
        }
        writeln!(f, "COMMIT")
    }
}

impl fmt::Display for IptRestore {
    /// The script without the hook line (what `moat check` shows).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Restore { r: self, hook: false }.fmt(f)
    }
}

/// The restore scripts for the xt backend: the same rules for IPv4 and IPv6.
pub fn iptables_scripts(backend: QueueBackend, shaped: &[ShapedQueue], pad: &[PadQueue]) -> Vec<IptRestore> {
    if backend != QueueBackend::Iptables || (shaped.is_empty() && pad.is_empty()) {
        return Vec::new();
    }
    let rules: Vec<IptQueueRule> = shaped
        .iter()
        .map(|s| IptQueueRule { out: s.device.clone(), mark: Some((s.mark, s.mark_mask)), queue: s.queue })
        .chain(pad.iter().map(|p| IptQueueRule { out: p.device.clone(), mark: None, queue: p.queue }))
        .collect();
    vec![
        IptRestore { restore: "iptables-restore", tool: "iptables", rules: rules.clone() },
        IptRestore { restore: "ip6tables-restore", tool: "ip6tables", rules },
    ]
}
