//! The only checks the plan makes: the ones that need the system [`Facts`], which validation
//! cannot see (a tunnel's MTU, the router's own addresses). Everything else about the model was
//! checked by validation ([`crate::model`]) and is trusted here.

use std::fmt;
use std::net::IpAddr;

use super::facts::Facts;
use crate::model::{IfName, L3Tunnel, Name, PadTo};
use crate::shaper::MIN_PAD_TO;

/// A plan-time error: the model is valid, but not on this system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The resolved `pad_to` is below what the shaper can pad to ([`MIN_PAD_TO`]); only `auto`
    /// on a tiny MTU gets here (an explicit value below it is refused by validation).
    PadBelowMin {
        /// Tunnel section.
        tunnel: Name,
        /// Tunnel netdev.
        device: IfName,
        /// Resolved `pad_to`.
        pad_to: u32,
        /// The device's MTU, if it exists.
        mtu: Option<u32>,
    },
    /// An explicit `pad_to` above the tunnel device's MTU.
    PadAboveMtu {
        /// Tunnel section.
        tunnel: Name,
        /// Tunnel netdev.
        device: IfName,
        /// `pad_to`.
        pad_to: u32,
        /// The device's MTU.
        mtu: u32,
    },
    /// The tunnel's `dns` is one of the router's own addresses.
    DnsIsLocal {
        /// Tunnel section.
        tunnel: Name,
        /// `dns`.
        dns: IpAddr,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::PadBelowMin { tunnel, device, pad_to, mtu } => write!(
                f,
                "tunnel {tunnel}: pad_to {pad_to} is below the minimum {MIN_PAD_TO} (MTU of {device}: {})",
                mtu.map_or("unknown".into(), |m| m.to_string())
            ),
            PlanError::PadAboveMtu { tunnel, device, pad_to, mtu } => write!(
                f,
                "tunnel {tunnel}: pad_to {pad_to} is above the MTU {mtu} of {device}; padded packets would be dropped (use auto or at most {})",
                mtu & !15
            ),
            PlanError::DnsIsLocal { tunnel, dns } => write!(
                f,
                "tunnel {tunnel}: dns {dns} is an address of this router; it must be a resolver reached through the tunnel"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Resolve a wireguard tunnel's `pad_to` against its device's MTU (`None` while the device is
/// absent and `pad_to` is `auto`): `auto` is the MTU rounded down to a multiple of 16; the
/// result must be at least [`MIN_PAD_TO`] and, when the MTU is known, at most the MTU.
pub fn resolve_pad(tunnel: &Name, l3: &L3Tunnel, mtu: Option<u32>) -> Result<Option<u16>, PlanError> {
    let v = match (l3.pad_to, mtu) {
        (PadTo::Auto, None) => return Ok(None),
        (PadTo::Auto, Some(m)) => m & !15,
        (PadTo::Bytes(b), _) => b as u32,
    };
    if v < MIN_PAD_TO as u32 {
        return Err(PlanError::PadBelowMin { tunnel: tunnel.clone(), device: l3.device.clone(), pad_to: v, mtu });
    }
    if let Some(m) = mtu {
        if v > m {
            return Err(PlanError::PadAboveMtu {
                tunnel: tunnel.clone(),
                device: l3.device.clone(),
                pad_to: v,
                mtu: m,
            });
        }
    }
    Ok(Some(v.min(u16::MAX as u32) as u16))
}

/// A tunnel's resolver must be reached through the tunnel, so it cannot be an address of this
/// router.
pub fn dns_not_local(tunnel: &Name, dns: IpAddr, facts: &Facts) -> Result<(), PlanError> {
    if facts.interfaces.values().any(|i| i.addrs.iter().any(|(a, _)| *a == dns)) {
        return Err(PlanError::DnsIsLocal { tunnel: tunnel.clone(), dns });
    }
    Ok(())
}
