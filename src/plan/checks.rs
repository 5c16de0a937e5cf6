//! The only checks the plan makes: the ones that need the system [`Facts`], which validation
//! cannot see (a tunnel's MTU, the router's own addresses). Everything else about the model was
//! checked by validation ([`crate::config`]) and is trusted here.

use std::fmt;
use std::net::IpAddr;

use super::facts::Facts;
use crate::config::{IfName, L3Tunnel, Name, PadTo, Tunnel};
use crate::shaper::MIN_PAD_TO;

/// A plan-time error: the model is valid, but not on this system. It names the tunnel section,
/// the option and the option's line (the section's `config` line when the option is absent and
/// its default is at fault, e.g. `pad_to` `auto` on a tiny MTU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Tunnel section.
    pub tunnel: Name,
    /// Line of the option ([`L3Tunnel::dns_line`], [`L3Tunnel::pad_to_line`]).
    pub line: usize,
    /// What is wrong.
    pub kind: PlanErrorKind,
}

/// What a [`PlanError`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// The resolved `pad_to` is below what the shaper can pad to ([`MIN_PAD_TO`]); only `auto`
    /// on a tiny MTU gets here (an explicit value below it is refused by validation).
    PadBelowMin {
        /// Tunnel netdev.
        device: IfName,
        /// Resolved `pad_to`.
        pad_to: u32,
        /// The device's MTU, if it exists.
        mtu: Option<u32>,
    },
    /// An explicit `pad_to` above the tunnel device's MTU.
    PadAboveMtu {
        /// Tunnel netdev.
        device: IfName,
        /// `pad_to`.
        pad_to: u32,
        /// The device's MTU.
        mtu: u32,
    },
    /// The tunnel's `dns` is one of the router's own addresses.
    DnsIsLocal {
        /// `dns`.
        dns: IpAddr,
    },
    /// The tunnel's `device` carries a default route of the main table (the WAN uplink): its
    /// "kill switch" would let everything out in the clear.
    DeviceIsUplink {
        /// `device`.
        device: IfName,
    },
}

impl PlanError {
    /// The option the error is about.
    pub fn option(&self) -> &'static str {
        match self.kind {
            PlanErrorKind::PadBelowMin { .. } | PlanErrorKind::PadAboveMtu { .. } => "pad_to",
            PlanErrorKind::DnsIsLocal { .. } => "dns",
            PlanErrorKind::DeviceIsUplink { .. } => "device",
        }
    }

    /// The message without the position.
    pub fn message(&self) -> String {
        match &self.kind {
            PlanErrorKind::PadBelowMin { device, pad_to, mtu } => format!(
                "pad_to {pad_to} is below the minimum {MIN_PAD_TO} (MTU of {device}: {})",
                mtu.map_or("unknown".into(), |m| m.to_string())
            ),
            PlanErrorKind::PadAboveMtu { device, pad_to, mtu } => format!(
                "pad_to {pad_to} is above the MTU {mtu} of {device}; padded packets would be dropped (use auto or at most {})",
                mtu & !15
            ),
            PlanErrorKind::DnsIsLocal { dns } => {
                format!("dns {dns} is an address of this router; it must be a resolver reached through the tunnel")
            }
            PlanErrorKind::DeviceIsUplink { device } => format!(
                "device {device} carries the main table's default route (the WAN uplink); routing protected devices there sends them out in the clear"
            ),
        }
    }

    /// `file:line: section 'vpn' option 'pad_to': message`, the form of the model's diagnostics.
    pub fn at(&self, file: &str) -> String {
        format!("{file}:{}: {}", self.line, self.unplaced())
    }

    /// `section 'vpn' option 'pad_to': message`.
    fn unplaced(&self) -> String {
        format!("section '{}' option '{}': {}", self.tunnel, self.option(), self.message())
    }
}

impl fmt::Display for PlanError {
    /// `line N: section 'vpn' option 'pad_to': message` (what the daemon logs after the file
    /// name; [`PlanError::at`] is the `file:N:` form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.unplaced())
    }
}

impl std::error::Error for PlanError {}

/// Resolve a wireguard tunnel's `pad_to` against its device's MTU (`None` while the device is
/// absent and `pad_to` is `auto`): `auto` is the MTU rounded down to a multiple of 16; the
/// result must be at least [`MIN_PAD_TO`] and, when the MTU is known, at most the MTU.
pub fn resolve_pad(tunnel: &Tunnel, l3: &L3Tunnel, mtu: Option<u32>) -> Result<Option<u16>, PlanError> {
    let err = |kind| PlanError { tunnel: tunnel.name.clone(), line: l3.pad_to_line, kind };
    let v = match (l3.pad_to, mtu) {
        (PadTo::Auto, None) => return Ok(None),
        (PadTo::Auto, Some(m)) => m & !15,
        (PadTo::Bytes(b), _) => b as u32,
    };
    if v < MIN_PAD_TO as u32 {
        return Err(err(PlanErrorKind::PadBelowMin { device: l3.device.clone(), pad_to: v, mtu }));
    }
    if let Some(m) = mtu {
        if v > m {
            return Err(err(PlanErrorKind::PadAboveMtu { device: l3.device.clone(), pad_to: v, mtu: m }));
        }
    }
    Ok(Some(v.min(u16::MAX as u32) as u16))
}

/// A tunnel's resolver (`dns`, if set) must be reached through the tunnel, so it cannot be an
/// address of this router.
pub fn dns_not_local(tunnel: &Tunnel, l3: &L3Tunnel, facts: &Facts) -> Result<(), PlanError> {
    let Some(dns) = l3.dns else { return Ok(()) };
    if facts.interfaces.values().any(|i| i.addrs.iter().any(|(a, _)| *a == dns)) {
        return Err(PlanError {
            tunnel: tunnel.name.clone(),
            line: l3.dns_line,
            kind: PlanErrorKind::DnsIsLocal { dns },
        });
    }
    Ok(())
}

/// A tunnel's `device` must be a tunnel: not a device carrying the main table's default route
/// (the WAN uplink, from the facts). That it is no `lan_device` is a model check
/// (validation refuses it).
pub fn device_is_tunnel(tunnel: &Tunnel, l3: &L3Tunnel, facts: &Facts) -> Result<(), PlanError> {
    if facts.default_route.iter().any(|d| d == l3.device.as_str()) {
        return Err(PlanError {
            tunnel: tunnel.name.clone(),
            line: l3.device_line,
            kind: PlanErrorKind::DeviceIsUplink { device: l3.device.clone() },
        });
    }
    Ok(())
}

/// A warning when the tunnel's `device` exists with a link type no tunnel has (Ethernet,
/// loopback, 802.11; an OpenVPN `tap` device is Ethernet too, hence a warning, not an error).
pub fn link_type_note(tunnel: &Tunnel, l3: &L3Tunnel, facts: &Facts) -> Option<String> {
    let kind = facts.iface(&l3.device)?.link.and_then(super::facts::non_tunnel_link)?;
    Some(format!(
        "tunnel {}: device {} has link type {kind}, not a tunnel's (WireGuard, tun, PPP, GRE, …); check option device (line {})",
        tunnel.name, l3.device, l3.device_line
    ))
}
