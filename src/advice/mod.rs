//! Checks of the router's other configuration that would silently defeat moat, with concrete advice.
//!
//! Pure: it takes the validated moat [`Model`] and the parsed `/etc/config/firewall`, `network`, `pbr` and
//! `mwan3` packages (each optional: a package that is not installed is `None`) and returns warnings. Each
//! warning says what is wrong, why it matters to moat, and the exact `uci` commands that fix it. Three things
//! are checked:
//!
//! 1. **Zones.** fw4's forward chain drops (or rejects) traffic from the LAN zone to a device that is in no
//!    zone the LAN zone may forward to: a `config forwarding` from the LAN zone to the device's zone, or the
//!    device in the LAN zone itself with that zone's `forward` policy `ACCEPT`. A tunnel device of moat
//!    (`type wireguard`/`interface`) that fails this would carry nothing: the fail-closed rules keep devices
//!    safe, but they are cut off. Zones name `network` interfaces (`list network`, or the older
//!    space-separated `option network`) and raw devices (`list device`, `+`/`*` wildcards); interfaces map to
//!    devices through `/etc/config/network` (`option device`, legacy `ifname`/bridges, `proto wireguard`
//!    interfaces whose netdev is the section name, `pppoe-<iface>`-style protocol devices, `@alias`).
//!    The LAN zone is the zone holding moat's `lan_device` (default `br-lan`), or failing that the zone
//!    named `lan`.
//! 2. **Flow offloading.** With `flow_offloading` (or `flow_offloading_hw`) on in fw4's `defaults`, an
//!    established TCP/UDP flow is moved to the flowtable and its packets no longer pass the forward and
//!    postrouting hooks, where moat marks, drops (kill switch, `block`) and queues packets for shaping.
//! 3. **Mark bits.** moat's `fwmark_mask` must not share bits with pbr's (`fw_mask`, default `0x00ff0000`)
//!    or mwan3's (`mmx_mask`, default `0x3f00`): each package rewrites its own bits of the packet mark and
//!    routes by them, so shared bits make one package's traffic follow the other's rules.
//!
//! Also: LAN-side interfaces (devices of a zone that does not masquerade and holds no moat tunnel) that are
//! not a `lan_device`; and when the tunnel's zone is reachable but does not masquerade (`masq`, and `masq6` for a tunnel with
//! `ipv6 '1'`): a VPN provider's server accepts only the tunnel's own address, so un-NATed LAN addresses
//! get no replies.

use std::fmt;

use crate::config::uci::{Package, Section};
use crate::config::{parse_bool, Model};

mod marks;
mod offload;
#[cfg(test)]
mod tests;
mod zones;

use marks::check_marks;
use offload::check_offload;
use zones::{check_lan_side, check_zones};

/// One finding: what is wrong and the commands that fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What is wrong and why it matters to moat (one paragraph).
    pub message: String,
    /// Shell commands (mostly `uci …`) that fix it, in order; empty when no safe fix can be given.
    pub fix: Vec<String>,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix:")?;
            for c in &self.fix {
                write!(f, "\n    {}", c)?;
            }
        }
        Ok(())
    }
}

/// All warnings, rendered as text (message, then the fix commands indented), for `moat check`.
pub fn warnings(
    model: &Model,
    firewall: Option<&Package>,
    network: Option<&Package>,
    pbr: Option<&Package>,
    mwan3: Option<&Package>,
) -> Vec<String> {
    check(model, firewall, network, pbr, mwan3).iter().map(|w| w.to_string()).collect()
}

/// The warnings for the packages found in a configuration directory (normally `/etc/config`): reads
/// `firewall`, `network`, `pbr` and `mwan3` there (a missing file means the package is not installed) and
/// calls [`warnings`]. A file that exists but cannot be read or parsed gives a warning of its own. This is
/// the only function of the module that touches the file system.
pub fn warnings_for_dir(model: &Model, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut load = |name: &str| -> Option<Package> {
        let path = dir.join(name);
        let shown = path.display().to_string();
        match std::fs::read(&path) {
            Ok(bytes) => match crate::config::uci::parse_bytes(&shown, &bytes) {
                Ok(p) => Some(p),
                Err(e) => {
                    out.push(format!("{e}: not checked against moat (uci cannot read it either)"));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                out.push(format!("{shown}: cannot be read ({e}); not checked against moat"));
                None
            }
        }
    };
    let (fw, net, pbr, mwan3) = (load("firewall"), load("network"), load("pbr"), load("mwan3"));
    out.extend(warnings(model, fw.as_ref(), net.as_ref(), pbr.as_ref(), mwan3.as_ref()));
    out
}

/// All warnings, structured. See the module documentation for what is checked.
pub fn check(
    model: &Model,
    firewall: Option<&Package>,
    network: Option<&Package>,
    pbr: Option<&Package>,
    mwan3: Option<&Package>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(fw) = firewall {
        check_zones(model, fw, network, &mut out);
        check_lan_side(model, fw, network, &mut out);
        check_offload(model, fw, &mut out);
    }
    check_marks(model, pbr, mwan3, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// UCI boolean true (`1`, `yes`, `on`, `true`, `enabled`), by the model's one boolean grammar.
pub(super) fn truthy(s: &str) -> bool {
    parse_bool(s) == Ok(true)
}

/// UCI boolean false (`0`, `no`, `off`, `false`, `disabled`), by the model's one boolean grammar.
pub(super) fn falsy(s: &str) -> bool {
    parse_bool(s) == Ok(false)
}

/// A section counts unless it says `option enabled '0'` (fw4 skips disabled zones and forwardings).
pub(super) fn section_enabled(s: &Section) -> bool {
    !s.get_str("enabled").is_some_and(falsy)
}

/// Every word of an option or list (fw4 also splits a space-separated `option network 'lan lan6'`).
pub(super) fn words(s: &Section, name: &str) -> Vec<String> {
    s.get(name)
        .map(|o| o.values().iter().flat_map(|v| v.text.split_whitespace().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Quote a value for a shell command line (uci's own quoting: `'` becomes `'\''`).
pub(super) fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether a name is plain enough to put into a suggested command (no quoting surprises, no terminal
/// control characters): the characters fw4/netifd allow in zone, interface and device names.
pub(super) fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-@+*".contains(&b))
}

/// The `uci` address of section `idx` of package `pkg` (`firewall.@zone[2]` or `firewall.lan`).
pub(super) fn addr(pkg_name: &str, pkg: &Package, idx: usize) -> String {
    format!("{}.{}", pkg_name, pkg.address(idx))
}

/// fw4 device patterns: exact, or a prefix ending in `+` or `*`.
pub(super) fn dev_matches(pattern: &str, dev: &str) -> bool {
    match pattern.strip_suffix('+').or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => dev.starts_with(prefix),
        None => pattern == dev,
    }
}
