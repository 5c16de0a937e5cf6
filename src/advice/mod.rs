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
//! Also, when the tunnel's zone is reachable but does not masquerade (`masq`, and `masq6` for a tunnel with
//! `ipv6 '1'`): a VPN provider's server accepts only the tunnel's own address, so un-NATed LAN addresses
//! get no replies.

use std::fmt;

use crate::model::{printable, Model, Route, TunnelKind, MWAN3_MARK_MASK, PBR_MARK_MASK};
use crate::uci::{Package, Section};

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
            Ok(bytes) => match crate::uci::parse_bytes(&shown, &bytes) {
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
        check_offload(model, fw, &mut out);
    }
    check_marks(model, pbr, mwan3, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// UCI boolean true (`1`, `yes`, `on`, `true`, `enabled`).
fn truthy(s: &str) -> bool {
    matches!(s, "1" | "yes" | "on" | "true" | "enabled")
}

/// UCI boolean false (`0`, `no`, `off`, `false`, `disabled`).
fn falsy(s: &str) -> bool {
    matches!(s, "0" | "no" | "off" | "false" | "disabled")
}

/// A section counts unless it says `option enabled '0'` (fw4 skips disabled zones and forwardings).
fn section_enabled(s: &Section) -> bool {
    !s.get_str("enabled").is_some_and(falsy)
}

/// Every word of an option or list (fw4 also splits a space-separated `option network 'lan lan6'`).
fn words(s: &Section, name: &str) -> Vec<String> {
    s.get(name)
        .map(|o| o.values().iter().flat_map(|v| v.text.split_whitespace().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Quote a value for a shell command line (uci's own quoting: `'` becomes `'\''`).
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether a name is plain enough to put into a suggested command (no quoting surprises, no terminal
/// control characters): the characters fw4/netifd allow in zone, interface and device names.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-@+*".contains(&b))
}

/// The `uci` address of section `idx` of package `pkg` (`firewall.@zone[2]` or `firewall.lan`).
fn addr(pkg_name: &str, pkg: &Package, idx: usize) -> String {
    format!("{}.{}", pkg_name, pkg.address(idx))
}

/// fw4 device patterns: exact, or a prefix ending in `+` or `*`.
fn dev_matches(pattern: &str, dev: &str) -> bool {
    match pattern.strip_suffix('+').or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => dev.starts_with(prefix),
        None => pattern == dev,
    }
}

// ---------------------------------------------------------------------------------------------
// Network interfaces -> devices
// ---------------------------------------------------------------------------------------------

/// The netdevs a `config interface` section stands for: its L3 device and the device it runs on.
fn iface_devices(network: &Package, iface: &str, depth: u8) -> Vec<String> {
    let Some(s) = network.sections.iter().find(|s| s.stype == "interface" && s.name.as_deref() == Some(iface)) else {
        return Vec::new();
    };
    let proto = s.get_str("proto").unwrap_or("");
    let bridge = s.get_str("type") == Some("bridge");
    let mut devs = Vec::new();
    match proto {
        "wireguard" => devs.push(iface.to_string()),
        "pppoe" | "pppoa" | "l2tp" | "pptp" | "6in4" | "6to4" | "6rd" | "dslite" | "map" | "vti" | "xfrm" => {
            devs.push(format!("{}-{}", proto, iface))
        }
        "gre" | "gretap" => devs.push(format!("{}4-{}", proto, iface)),
        "grev6" | "grev6tap" => devs.push(format!("{}-{}", proto, iface)),
        _ => {}
    }
    if let Some(d) = s.get_str("device") {
        if let Some(alias) = d.strip_prefix('@') {
            if depth < 4 {
                devs.extend(iface_devices(network, alias, depth + 1));
            }
        } else {
            devs.push(d.to_string());
        }
    } else if bridge {
        devs.push(format!("br-{}", iface));
    } else if let Some(first) = words(s, "ifname").first() {
        devs.push(first.clone());
    }
    devs
}

/// The `config interface` section names whose devices include `dev`.
fn ifaces_of_device(network: &Package, dev: &str) -> Vec<String> {
    network
        .sections
        .iter()
        .filter(|s| s.stype == "interface")
        .filter_map(|s| s.name.clone())
        .filter(|n| iface_devices(network, n, 0).iter().any(|d| d == dev))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

/// A `config zone` of the firewall, as fw4 reads it.
struct Zone {
    /// Index of the section in the firewall package.
    idx: usize,
    name: String,
    networks: Vec<String>,
    devices: Vec<String>,
    /// `forward` policy, upper case (zone option, else the defaults' `forward`, else DROP as fw4 does).
    forward: String,
    /// `masq` (IPv4 masquerading of traffic leaving by the zone's devices).
    masq: bool,
    /// `masq6` (the same for IPv6).
    masq6: bool,
}

impl Zone {
    /// Whether the zone holds `dev`. Without `/etc/config/network`, a network entry is taken to name the
    /// device of the same name (true of `proto wireguard` interfaces, the usual tunnel setup).
    fn covers(&self, network: Option<&Package>, dev: &str) -> bool {
        self.devices.iter().any(|p| dev_matches(p, dev))
            || match network {
                Some(n) => self.networks.iter().any(|i| iface_devices(n, i, 0).iter().any(|d| d == dev)),
                None => self.networks.iter().any(|i| i == dev),
            }
    }
}

fn zones(fw: &Package) -> Vec<Zone> {
    let default_forward =
        fw.sections_of("defaults").find_map(|s| s.get_str("forward")).unwrap_or("DROP").to_ascii_uppercase();
    fw.sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stype == "zone" && section_enabled(s))
        .filter_map(|(idx, s)| {
            let name = s.get_str("name")?.to_string();
            Some(Zone {
                idx,
                name,
                networks: words(s, "network"),
                devices: words(s, "device"),
                forward: s.get_str("forward").map(str::to_ascii_uppercase).unwrap_or_else(|| default_forward.clone()),
                masq: s.get_str("masq").is_some_and(truthy),
                masq6: s.get_str("masq6").is_some_and(truthy),
            })
        })
        .collect()
}

/// The enabled `config forwarding` sections from `src` to `dest` (index, enabled).
fn forwardings(fw: &Package, src: &str, dest: &str) -> Vec<(usize, bool)> {
    fw.sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stype == "forwarding" && s.get_str("src") == Some(src) && s.get_str("dest") == Some(dest))
        .map(|(i, s)| (i, section_enabled(s)))
        .collect()
}

/// A zone name for a new tunnel zone: the tunnel's name if free (fw3-compatible length), else a variant.
fn new_zone_name(zones: &[Zone], tunnel: &str) -> String {
    let base: String = tunnel.chars().take(11).collect();
    if !zones.iter().any(|z| z.name == base) {
        return base;
    }
    (1..100)
        .map(|n| format!("{}{}", base.chars().take(9).collect::<String>(), n))
        .find(|c| !zones.iter().any(|z| &z.name == c))
        .unwrap_or_else(|| "moat_vpn".to_string())
}

fn check_zones(model: &Model, fw: &Package, network: Option<&Package>, out: &mut Vec<Warning>) {
    let zones = zones(fw);
    let lan_devs: Vec<&str> = model.global.lan_devices.iter().map(|d| d.as_str()).collect();
    let mut lan_zones: Vec<&Zone> = zones.iter().filter(|z| lan_devs.iter().any(|d| z.covers(network, d))).collect();
    if lan_zones.is_empty() {
        lan_zones = zones.iter().filter(|z| z.name == "lan").collect();
    }
    let reload = ["uci commit firewall".to_string(), "/etc/init.d/firewall reload".to_string()];

    for t in &model.tunnels {
        let (kind, dev, ipv6) = match &t.kind {
            TunnelKind::WireGuard(l3) => ("wireguard", l3.device.as_str(), l3.ipv6),
            TunnelKind::Interface(l3) => ("interface", l3.device.as_str(), l3.ipv6),
            TunnelKind::Tor(_) => continue,
        };
        let head = format!("tunnel '{}' ({} device {})", t.name, kind, dev);
        if lan_zones.is_empty() {
            out.push(Warning {
                message: format!(
                    "{head}: no firewall zone contains the LAN device{} {} and there is no zone named 'lan', so it \
                     cannot be checked that LAN clients may forward into the tunnel.",
                    if lan_devs.len() > 1 { "s" } else { "" },
                    lan_devs.join(", ")
                ),
                fix: Vec::new(),
            });
            continue;
        }
        let dev_zones: Vec<&Zone> = zones.iter().filter(|z| z.covers(network, dev)).collect();
        let reachable = dev_zones.iter().copied().find(|z| {
            lan_zones.iter().any(|l| {
                (l.name == z.name && l.forward == "ACCEPT") || forwardings(fw, &l.name, &z.name).iter().any(|f| f.1)
            })
        });
        if let Some(z) = reachable {
            check_masq(fw, &zones, network, (t.name.as_str(), dev, ipv6), &head, z, &lan_zones, out);
            continue;
        }
        let lan = lan_zones[0];
        let why = "fw4's forward chain drops LAN traffic to it, so devices routed into this tunnel are cut off \
                   (moat keeps them from leaking, but they get no connectivity)";
        if !plain(&lan.name) || dev_zones.iter().any(|z| !plain(&z.name)) {
            out.push(Warning {
                message: format!(
                    "{head}: is not in a firewall zone that the LAN zone may forward to; {why}. \
                                  (Zone names are unusual; no commands suggested.)"
                ),
                fix: Vec::new(),
            });
            continue;
        }
        if dev_zones.is_empty() {
            let (iface, mut fix) = new_zone_commands(&zones, t.name.as_str(), network, dev, None, &lan.name);
            fix.extend(reload.iter().cloned());
            out.push(Warning {
                message: format!(
                    "{head}: the device is in no firewall zone{}; {why}. Put it in a zone of its own (with \
                     masquerading, as the tunnel's far end only accepts the tunnel address) and let zone '{}' \
                     forward to it:",
                    match &iface {
                        Some(i) => format!(" (network interface '{}' is not listed in any zone)", i),
                        None => String::new(),
                    },
                    lan.name
                ),
                fix,
            });
            continue;
        }
        // The device has a zone, but LAN may not forward to it.
        let z = dev_zones[0];
        let mut fix = Vec::new();
        let message;
        if z.name == lan.name {
            message = format!(
                "{head}: the device is in the LAN zone '{}' itself, whose forward policy is {}; {why}. Move the \
                 tunnel into a zone of its own{}",
                z.name,
                z.forward,
                move_to_own_zone(fw, &zones, z, t.name.as_str(), network, dev, &mut fix)
            );
        } else if let Some((i, _)) = forwardings(fw, &lan.name, &z.name).into_iter().next() {
            fix.push(format!("uci set {}.enabled='1'", addr("firewall", fw, i)));
            message = format!(
                "{head}: the device is in zone '{}' but the forwarding from '{}' to '{}' is disabled; {why}. \
                 Enable it:",
                z.name, lan.name, z.name
            );
        } else {
            fix.push("uci add firewall forwarding".to_string());
            fix.push(format!("uci set firewall.@forwarding[-1].src={}", q(&lan.name)));
            fix.push(format!("uci set firewall.@forwarding[-1].dest={}", q(&z.name)));
            message = format!(
                "{head}: the device is in zone '{}' but there is no forwarding from zone '{}' to it; {why}. Add one:",
                z.name, lan.name
            );
        }
        if !fix.is_empty() {
            fix.extend(reload.iter().cloned());
        }
        out.push(Warning { message, fix });
    }
}

/// Commands that create a zone of its own for a tunnel device (masquerading, MSS clamping, inbound
/// rejected) and a forwarding from the LAN zone to it. The zone lists the device's network interface
/// (`iface`, else the one found in `network`) or, failing that, the device. Returns the interface used.
fn new_zone_commands(
    zones: &[Zone],
    tunnel: &str,
    network: Option<&Package>,
    dev: &str,
    iface: Option<String>,
    lan: &str,
) -> (Option<String>, Vec<String>) {
    let zname = new_zone_name(zones, tunnel);
    let iface =
        iface.or_else(|| network.map(|n| ifaces_of_device(n, dev)).unwrap_or_default().into_iter().find(|i| plain(i)));
    let member = match &iface {
        Some(i) => format!("uci add_list firewall.@zone[-1].network={}", q(i)),
        None => format!("uci add_list firewall.@zone[-1].device={}", q(dev)),
    };
    let fix = vec![
        "uci add firewall zone".to_string(),
        format!("uci set firewall.@zone[-1].name={}", q(&zname)),
        member,
        "uci set firewall.@zone[-1].input='REJECT'".to_string(),
        "uci set firewall.@zone[-1].output='ACCEPT'".to_string(),
        "uci set firewall.@zone[-1].forward='REJECT'".to_string(),
        "uci set firewall.@zone[-1].masq='1'".to_string(),
        "uci set firewall.@zone[-1].mtu_fix='1'".to_string(),
        "uci add firewall forwarding".to_string(),
        format!("uci set firewall.@forwarding[-1].src={}", q(lan)),
        format!("uci set firewall.@forwarding[-1].dest={}", q(&zname)),
    ];
    (iface, fix)
}

/// Fill `fix` with the commands that take `dev` out of the LAN zone `z` (rewriting the zone's `network` /
/// `device` entries that name it) and give it a zone of its own; returns the end of the sentence that
/// introduces them. No commands when the zone reaches the device through a wildcard or odd names.
fn move_to_own_zone(
    fw: &Package,
    zones: &[Zone],
    z: &Zone,
    tunnel: &str,
    network: Option<&Package>,
    dev: &str,
    fix: &mut Vec<String>,
) -> &'static str {
    let nets_hit: Vec<&String> = z
        .networks
        .iter()
        .filter(|n| network.is_some_and(|p| iface_devices(p, n, 0).iter().any(|d| d == dev)))
        .collect();
    let devs_hit: Vec<&String> = z.devices.iter().filter(|p| dev_matches(p, dev)).collect();
    let all_plain = z.networks.iter().chain(&z.devices).all(|n| plain(n)) && plain(&z.name);
    if devs_hit.iter().any(|p| p.as_str() != dev) || !all_plain {
        return " (it reaches the device by a wildcard or unusual names: edit the zone by hand).";
    }
    let a = addr("firewall", fw, z.idx);
    for (opt, all, hit) in [("network", &z.networks, &nets_hit), ("device", &z.devices, &devs_hit)] {
        if hit.is_empty() {
            continue;
        }
        fix.push(format!("uci delete {a}.{opt}"));
        for keep in all.iter().filter(|n| !hit.contains(n)) {
            fix.push(format!("uci add_list {a}.{opt}={}", q(keep)));
        }
    }
    let iface = nets_hit.first().map(|n| n.to_string());
    let (_, cmds) = new_zone_commands(zones, tunnel, network, dev, iface, &z.name);
    fix.extend(cmds);
    ":"
}

/// The tunnel's zone is reachable from the LAN; without masquerading, LAN source addresses enter the tunnel
/// and a VPN provider's end (which accepts only the tunnel address) drops them.
#[allow(clippy::too_many_arguments)]
fn check_masq(
    fw: &Package,
    zones: &[Zone],
    network: Option<&Package>,
    (tunnel, dev, ipv6): (&str, &str, bool),
    head: &str,
    z: &Zone,
    lan_zones: &[&Zone],
    out: &mut Vec<Warning>,
) {
    let need6 = ipv6 && !z.masq6;
    if z.masq && !need6 {
        return;
    }
    let what = match (z.masq, need6) {
        (false, true) => "masquerading (masq, masq6)",
        (false, false) => "masquerading (masq)",
        (true, _) => "IPv6 masquerading (masq6) although the tunnel carries IPv6",
    };
    let effect = "so protected devices' LAN addresses enter the tunnel unchanged and a VPN provider's server, which \
                  accepts only the tunnel's own address, drops them (fine only if the far end routes your LAN \
                  subnet back, as in a site-to-site VPN)";
    if lan_zones.iter().any(|l| l.name == z.name) {
        let mut fix = Vec::new();
        let how = move_to_own_zone(fw, zones, z, tunnel, network, dev, &mut fix);
        if !fix.is_empty() {
            fix.push("uci commit firewall".to_string());
            fix.push("/etc/init.d/firewall reload".to_string());
        }
        out.push(Warning {
            message: format!(
                "{head}: the device is in the LAN zone '{}' itself, which has no {what}, {effect}. Move the \
                 tunnel into a zone of its own with masquerading{how}",
                printable(&z.name)
            ),
            fix,
        });
        return;
    }
    if !plain(&z.name) {
        return;
    }
    let a = addr("firewall", fw, z.idx);
    let mut fix = Vec::new();
    if !z.masq {
        fix.push(format!("uci set {a}.masq='1'"));
    }
    if need6 {
        fix.push(format!("uci set {a}.masq6='1'"));
    }
    fix.push("uci commit firewall".to_string());
    fix.push("/etc/init.d/firewall reload".to_string());
    out.push(Warning { message: format!("{head}: its zone '{}' has no {what}, {effect}. Turn it on:", z.name), fix });
}

// ---------------------------------------------------------------------------------------------
// Flow offloading
// ---------------------------------------------------------------------------------------------

fn check_offload(model: &Model, fw: &Package, out: &mut Vec<Warning>) {
    let affected: Vec<&str> = model
        .devices
        .iter()
        .filter(|d| d.enabled && (d.route != Route::Direct || d.shaper.is_some()))
        .map(|d| d.name.as_str())
        .collect();
    if affected.is_empty() {
        return;
    }
    for (idx, s) in fw.sections.iter().enumerate().filter(|(_, s)| s.stype == "defaults") {
        let sw = s.get_str("flow_offloading").is_some_and(truthy);
        let hw = s.get_str("flow_offloading_hw").is_some_and(truthy);
        if !sw && !hw {
            continue;
        }
        let a = addr("firewall", fw, idx);
        let which = match (sw, hw) {
            (true, true) => "software and hardware flow offloading are enabled",
            (true, false) => "software flow offloading is enabled",
            (false, _) => "hardware flow offloading is set (it takes effect together with flow_offloading)",
        };
        let mut fix = Vec::new();
        if sw {
            fix.push(format!("uci set {}.flow_offloading='0'", a));
        }
        if hw {
            fix.push(format!("uci set {}.flow_offloading_hw='0'", a));
        }
        fix.push("uci commit firewall".to_string());
        fix.push("/etc/init.d/firewall reload".to_string());
        let names: Vec<String> = affected.iter().take(5).map(|n| format!("'{}'", printable(n))).collect();
        out.push(Warning {
            message: format!(
                "fw4 {which} ({a}): once a TCP/UDP connection is offloaded, its packets skip the forward and \
                 postrouting hooks where moat marks, drops and shapes them, so the kill switch, blocking and shaping \
                 stop applying to established connections of the {} protected device{} ({}{}). Turn offloading off:",
                affected.len(),
                if affected.len() == 1 { "" } else { "s" },
                names.join(", "),
                if affected.len() > 5 { ", …" } else { "" }
            ),
            fix,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Mark bits
// ---------------------------------------------------------------------------------------------

/// Parse a mark mask as pbr/mwan3 write it: hex with or without `0x` (`00ff0000`, `0x3F00`).
fn parse_mask(s: &str) -> Option<u32> {
    let h = s.trim();
    let h = h.strip_prefix("0x").or_else(|| h.strip_prefix("0X")).unwrap_or(h);
    if h.is_empty() || h.len() > 8 {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

/// A contiguous mask of `width` bits, as high as possible, sharing no bit with `taken`.
fn free_mask(width: u32, taken: u32) -> Option<u32> {
    if width == 0 || width > 31 {
        return None;
    }
    let ones = (1u64 << width) - 1;
    (0..=(32 - width)).rev().map(|sh| (ones << sh) as u32).find(|m| m & taken == 0)
}

/// The mark mask another package uses: `(what, mask)`, or a warning if its value cannot be read.
fn other_mask(
    pkg: &Package,
    pkg_name: &str,
    stypes: &[&str],
    option: &str,
    default: u32,
    out: &mut Vec<Warning>,
) -> Option<(String, u32)> {
    let (idx, s) = pkg.sections.iter().enumerate().find(|(_, s)| stypes.contains(&s.stype.as_str()))?;
    if pkg_name == "pbr" && !section_enabled(s) {
        return None;
    }
    match s.get_str(option) {
        None => Some((format!("{}'s default {} 0x{:08x}", pkg_name, option, default), default)),
        Some(v) => match parse_mask(v) {
            Some(m) => Some((format!("{}'s {} 0x{:08x} ({})", pkg_name, option, m, addr(pkg_name, pkg, idx)), m)),
            None => {
                out.push(Warning {
                    message: format!(
                        "{}.{} = '{}' is not a hexadecimal mark mask; cannot check it against moat's fwmark_mask.",
                        addr(pkg_name, pkg, idx),
                        option,
                        printable(v)
                    ),
                    fix: Vec::new(),
                });
                None
            }
        },
    }
}

fn check_marks(model: &Model, pbr: Option<&Package>, mwan3: Option<&Package>, out: &mut Vec<Warning>) {
    let mine = model.global.fwmark_mask;
    let mut others = Vec::new();
    if let Some(p) = pbr {
        others.extend(other_mask(p, "pbr", &["pbr", "vpn-policy-routing"], "fw_mask", PBR_MARK_MASK, out));
    }
    if let Some(m) = mwan3 {
        others.extend(other_mask(m, "mwan3", &["globals"], "mmx_mask", MWAN3_MARK_MASK, out));
    }
    let taken = others.iter().fold(PBR_MARK_MASK | MWAN3_MARK_MASK, |acc, (_, m)| acc | m);
    for (what, mask) in &others {
        let shared = mine & mask;
        if shared == 0 {
            continue;
        }
        let suggestion = free_mask(mine.count_ones().max(1), taken);
        let fix = match suggestion {
            Some(m) => vec![
                format!("uci set moat.@moat[0].fwmark_mask='0x{:08x}'", m),
                "uci commit moat".to_string(),
                "/etc/init.d/moat reload".to_string(),
            ],
            None => Vec::new(),
        };
        out.push(Warning {
            message: format!(
                "moat's fwmark_mask 0x{:08x} shares bits 0x{:08x} with {}: both rewrite those packet-mark bits and \
                 route by them, so one package's traffic would follow the other's rules. Give moat bits of its own{}",
                mine,
                shared,
                what,
                if suggestion.is_some() { ":" } else { " (no free contiguous range of the same width)." }
            ),
            fix,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uci::{parse, OptionValue, UciOption, Value};

    const FW_DEFAULT: &str = include_str!("../../tests/fwcheck/firewall-default.conf");
    const FW_VPN_ZONE: &str = include_str!("../../tests/fwcheck/firewall-vpn-zone.conf");
    const FW_OFFLOAD: &str = include_str!("../../tests/fwcheck/firewall-offload.conf");
    const NET_DEFAULT: &str = include_str!("../../tests/fwcheck/network-default.conf");
    const NET_WG: &str = include_str!("../../tests/fwcheck/network-wg.conf");
    const NET_LEGACY: &str = include_str!("../../tests/fwcheck/network-legacy.conf");
    const PBR: &str = include_str!("../../tests/fwcheck/pbr.conf");
    const MWAN3: &str = include_str!("../../tests/fwcheck/mwan3.conf");

    fn pkg(text: &str) -> Package {
        parse("fixture", text).unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    /// A moat model from configuration text (through the real reader and validator).
    fn model(text: &str) -> Model {
        crate::model::from_uci("moat", &pkg(text)).unwrap_or_else(|e| panic!("moat config: {e:#?}")).model
    }

    /// A home with one wireguard tunnel `vpn` on `wg0`, a tor tunnel and one device per route.
    fn home(extra_main: &str) -> Model {
        model(&format!(
            "config moat 'main'\n\tlist lan_device 'br-lan'\n{extra_main}\
             config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\
             config tunnel 'tor'\n\toption type 'tor'\n\
             config device\n\toption name 'Kitchen speaker'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n\
             config device\n\toption name 'Sleep monitor'\n\tlist mac 'aa:bb:cc:00:11:33'\n\toption route 'tor'\n"
        ))
    }

    /// Only `direct` devices: nothing for offloading to defeat.
    fn direct_only() -> Model {
        model(
            "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\
             config device\n\toption name 'TV'\n\tlist mac 'aa:bb:cc:00:11:44'\n\toption route 'direct'\n",
        )
    }

    /// The section a uci address (`@type[N]`, `@type[-1]`, or a name) points to.
    fn section_index(pk: &Package, s: &str) -> usize {
        if let Some(at) = s.strip_prefix('@') {
            let (t, n) = at.trim_end_matches(']').split_once('[').unwrap();
            let of: Vec<usize> = (0..pk.sections.len()).filter(|&i| pk.sections[i].stype == t).collect();
            let n: i64 = n.parse().unwrap();
            of[if n < 0 { (of.len() as i64 + n) as usize } else { n as usize }]
        } else {
            pk.sections.iter().position(|x| x.name.as_deref() == Some(s)).unwrap()
        }
    }

    /// Carry out the `uci add/set/add_list/delete` commands of a fix on the packages, as the uci tool would.
    fn apply(fix: &[String], pkgs: &mut [(&str, &mut Package)]) {
        for cmd in fix {
            let Some(rest) = cmd.strip_prefix("uci ") else { continue };
            let (verb, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            if verb == "commit" {
                continue;
            }
            if verb == "delete" {
                let (p, rest) = arg.split_once('.').unwrap();
                let (s, o) = rest.split_once('.').unwrap();
                let pk = &mut pkgs.iter_mut().find(|(n, _)| *n == p).unwrap().1;
                let idx = section_index(pk, s);
                pk.sections[idx].options.retain(|x| x.name != o);
                continue;
            }
            if verb == "add" {
                let (p, t) = arg.split_once(' ').unwrap();
                let pk = &mut pkgs.iter_mut().find(|(n, _)| *n == p).unwrap().1;
                pk.sections.push(Section { stype: t.to_string(), name: None, line: 0, options: Vec::new() });
                continue;
            }
            // PKG.SECTION.OPTION=VALUE, VALUE shell-quoted the way uci's own parser reads it.
            let (path, value) = arg.split_once('=').unwrap();
            let value = pkg(&format!("config x\n\toption v {value}\n")).sections[0].get_str("v").unwrap().to_string();
            let mut it = path.splitn(3, '.');
            let (p, s, o) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            let pk = &mut pkgs.iter_mut().find(|(n, _)| *n == p).unwrap().1;
            let idx = section_index(pk, s);
            let sec = &mut pk.sections[idx];
            let v = Value::new(value, 0);
            let pos = sec.options.iter().position(|x| x.name == o);
            match (verb, pos) {
                ("set", Some(i)) => sec.options[i].value = OptionValue::Single(v),
                ("set", None) => sec.options.push(UciOption { name: o.into(), line: 0, value: OptionValue::Single(v) }),
                ("add_list", Some(i)) => {
                    let old = sec.options[i].values().into_iter().cloned().collect::<Vec<_>>();
                    sec.options[i].value = OptionValue::List(old.into_iter().chain([v]).collect());
                }
                ("add_list", None) => {
                    sec.options.push(UciOption { name: o.into(), line: 0, value: OptionValue::List(vec![v]) })
                }
                _ => panic!("unexpected command {cmd}"),
            }
        }
    }

    #[test]
    fn stock_router_with_new_wireguard_interface_gets_zone_and_forwarding_commands() {
        let m = home("");
        let mut fw = pkg(FW_DEFAULT);
        let net = pkg(NET_WG);
        let w = check(&m, Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.contains("tunnel 'vpn' (wireguard device wg0)"), "{}", w[0]);
        assert!(w[0].message.contains("network interface 'wg0' is not listed in any zone"), "{}", w[0]);
        assert_eq!(
            w[0].fix,
            [
                "uci add firewall zone",
                "uci set firewall.@zone[-1].name='vpn'",
                "uci add_list firewall.@zone[-1].network='wg0'",
                "uci set firewall.@zone[-1].input='REJECT'",
                "uci set firewall.@zone[-1].output='ACCEPT'",
                "uci set firewall.@zone[-1].forward='REJECT'",
                "uci set firewall.@zone[-1].masq='1'",
                "uci set firewall.@zone[-1].mtu_fix='1'",
                "uci add firewall forwarding",
                "uci set firewall.@forwarding[-1].src='lan'",
                "uci set firewall.@forwarding[-1].dest='vpn'",
                "uci commit firewall",
                "/etc/init.d/firewall reload",
            ]
        );
        // Carrying the advice out silences the warning.
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&m, Some(&fw), Some(&net), None, None), []);
    }

    #[test]
    fn guide_style_vpn_zone_passes() {
        let w = check(&home(""), Some(&pkg(FW_VPN_ZONE)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w, []);
    }

    #[test]
    fn device_without_network_interface_is_added_by_device_name() {
        // wg0 not in /etc/config/network at all (e.g. created by a script): the zone lists the device.
        let m = home("");
        let mut fw = pkg(FW_DEFAULT);
        let w = check(&m, Some(&fw), Some(&pkg(NET_DEFAULT)), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].fix.contains(&"uci add_list firewall.@zone[-1].device='wg0'".to_string()), "{}", w[0]);
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&m, Some(&fw), Some(&pkg(NET_DEFAULT)), None, None), []);
    }

    #[test]
    fn zone_without_forwarding_gets_a_forwarding() {
        let text = FW_VPN_ZONE.replace("config forwarding\n\toption src\t\tlan\n\toption dest\t\tvpn\n", "");
        assert_ne!(text, FW_VPN_ZONE);
        let mut fw = pkg(&text);
        let (m, net) = (home(""), pkg(NET_WG));
        let w = check(&m, Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("in zone 'vpn' but there is no forwarding from zone 'lan'"), "{}", w[0]);
        assert_eq!(
            w[0].fix[..3],
            [
                "uci add firewall forwarding",
                "uci set firewall.@forwarding[-1].src='lan'",
                "uci set firewall.@forwarding[-1].dest='vpn'"
            ]
        );
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&m, Some(&fw), Some(&net), None, None), []);
    }

    #[test]
    fn disabled_forwarding_is_enabled_by_its_address() {
        let text = format!("{FW_VPN_ZONE}\toption enabled '0'\n");
        let mut fw = pkg(&text);
        let (m, net) = (home(""), pkg(NET_WG));
        let w = check(&m, Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].fix[0], "uci set firewall.@forwarding[1].enabled='1'");
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&m, Some(&fw), Some(&net), None, None), []);
    }

    #[test]
    fn disabled_zone_does_not_count() {
        let text = FW_VPN_ZONE.replace("\toption name\t\tvpn\n", "\toption name\t\tvpn\n\toption enabled\t0\n");
        let w = check(&home(""), Some(&pkg(&text)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("in no firewall zone"), "{}", w[0]);
    }

    #[test]
    fn tunnel_inside_the_lan_zone_is_moved_to_a_zone_of_its_own() {
        // `option network 'lan wg0'`: LAN may forward to wg0 (intra-zone ACCEPT) but nothing masquerades.
        let text = FW_DEFAULT.replace("\tlist   network\t\t'lan'\n", "\toption network\t\t'lan wg0'\n");
        assert_ne!(text, FW_DEFAULT);
        let net = pkg(NET_WG);
        let mut fw = pkg(&text);
        let w = check(&home(""), Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.contains("in the LAN zone 'lan' itself, which has no masquerading (masq)"), "{}", w[0]);
        assert_eq!(
            w[0].fix[..4],
            [
                "uci delete firewall.@zone[0].network",
                "uci add_list firewall.@zone[0].network='lan'",
                "uci add firewall zone",
                "uci set firewall.@zone[-1].name='vpn'",
            ]
        );
        assert!(w[0].fix.contains(&"uci add_list firewall.@zone[-1].network='wg0'".to_string()));
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&home(""), Some(&fw), Some(&net), None, None), []);
        // With intra-zone forwarding rejected, LAN cannot reach the tunnel at all: same remedy.
        let strict = text.replacen("\toption forward\t\tACCEPT\n", "\toption forward\t\tREJECT\n", 1);
        let mut fw = pkg(&strict);
        let w = check(&home(""), Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("in the LAN zone 'lan' itself, whose forward policy is REJECT"), "{}", w[0]);
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&home(""), Some(&fw), Some(&net), None, None), []);
        // Reached through a wildcard device entry: no commands, the zone must be edited by hand.
        let wild = FW_DEFAULT.replace("\tlist   network\t\t'lan'\n", "\tlist network 'lan'\n\tlist device 'wg+'\n");
        let w = check(&home(""), Some(&pkg(&wild)), Some(&net), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].fix.is_empty() && w[0].message.contains("wildcard"), "{}", w[0]);
    }

    #[test]
    fn tunnel_zone_without_masquerading_gets_masq() {
        let text = FW_VPN_ZONE.replace(
            "\toption masq\t\t1\n\toption mtu_fix\t\t1\n\nconfig forwarding\n\toption src\t\tlan\n\toption dest\t\tvpn",
            "\nconfig forwarding\n\toption src\t\tlan\n\toption dest\t\tvpn",
        );
        assert_ne!(text, FW_VPN_ZONE);
        let net = pkg(NET_WG);
        let mut fw = pkg(&text);
        let w = check(&home(""), Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.contains("its zone 'vpn' has no masquerading (masq)"), "{}", w[0]);
        assert_eq!(
            w[0].fix,
            ["uci set firewall.@zone[2].masq='1'", "uci commit firewall", "/etc/init.d/firewall reload"]
        );
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&home(""), Some(&fw), Some(&net), None, None), []);
        // A tunnel that carries IPv6 also needs masq6.
        let v6 = model(
            "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\
             \toption ipv6 '1'\nconfig device\n\toption name 'Phone'\n\tlist mac 'aa:bb:cc:00:11:66'\n\toption route 'vpn'\n",
        );
        let w = check(&v6, Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert_eq!(w[0].fix[0], "uci set firewall.@zone[2].masq6='1'");
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&v6, Some(&fw), Some(&net), None, None), []);
    }

    #[test]
    fn warnings_for_dir_reads_what_is_installed() {
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!("moat-fwcheck-{}", std::process::id()));
        let _guard = Cleanup(dir.clone());
        std::fs::create_dir_all(&dir).unwrap();
        // Nothing installed: nothing to say.
        assert_eq!(warnings_for_dir(&home(""), &dir), Vec::<String>::new());
        std::fs::write(dir.join("firewall"), FW_DEFAULT).unwrap();
        std::fs::write(dir.join("network"), NET_WG).unwrap();
        std::fs::write(dir.join("mwan3"), "config globals 'globals'\n\toption mmx_mask 'x y'\n").unwrap();
        let w = warnings_for_dir(&home(""), &dir);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(w[0].contains("in no firewall zone") && w[1].contains("mwan3.globals.mmx_mask"), "{w:#?}");
        std::fs::write(dir.join("pbr"), "config pbr 'config'\n\toption fw_mask 'unterminated\n").unwrap();
        let w = warnings_for_dir(&home(""), &dir);
        assert!(w[0].contains("/pbr:") && w[0].contains("not checked against moat"), "{w:#?}");
    }

    #[test]
    fn zone_device_wildcards_cover_the_tunnel() {
        let text = format!(
            "{FW_DEFAULT}\nconfig zone\n\toption name 'vpn'\n\tlist device 'wg+'\n\toption masq '1'\n\
             config forwarding\n\toption src 'lan'\n\toption dest 'vpn'\n"
        );
        assert_eq!(check(&home(""), Some(&pkg(&text)), None, None, None), []);
        let other = text.replace("'wg+'", "'tun*'");
        assert_eq!(check(&home(""), Some(&pkg(&other)), None, None, None).len(), 1);
    }

    #[test]
    fn legacy_bridge_pppoe_and_openvpn_interfaces_map_to_their_devices() {
        let net = pkg(NET_LEGACY);
        assert_eq!(iface_devices(&net, "lan", 0), ["br-lan"]);
        assert_eq!(iface_devices(&net, "wan", 0), ["pppoe-wan", "eth0.2"]);
        assert_eq!(iface_devices(&net, "vpn", 0), ["tun0"]);
        assert_eq!(iface_devices(&pkg(NET_WG), "wg0", 0), ["wg0"]);
        // An `interface` tunnel on OpenVPN's tun0, in zone 'vpn' via the network name.
        let m = model(
            "config tunnel 'ovpn'\n\toption type 'interface'\n\toption device 'tun0'\n\toption dns '10.8.0.1'\n\
             config device\n\toption name 'Laptop'\n\tlist mac 'aa:bb:cc:00:11:55'\n\toption route 'ovpn'\n",
        );
        let fw = pkg(&FW_VPN_ZONE.replace("'wg0'", "'vpn'"));
        assert_eq!(check(&m, Some(&fw), Some(&net), None, None), []);
        let w = check(&m, Some(&pkg(FW_DEFAULT)), Some(&net), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].fix.contains(&"uci add_list firewall.@zone[-1].network='vpn'".to_string()), "{}", w[0]);
        // 'vpn' is taken by no zone in the default firewall, so the new zone is named after the tunnel.
        assert!(w[0].fix.contains(&"uci set firewall.@zone[-1].name='ovpn'".to_string()), "{}", w[0]);
    }

    #[test]
    fn new_zone_name_avoids_existing_zones() {
        let fw = pkg(&format!("{FW_DEFAULT}\nconfig zone\n\toption name 'vpn'\n\tlist network 'other'\n"));
        let w = check(&home(""), Some(&fw), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].fix.contains(&"uci set firewall.@zone[-1].name='vpn1'".to_string()), "{}", w[0]);
    }

    #[test]
    fn no_lan_zone_is_reported_without_a_guess() {
        let text =
            FW_DEFAULT.replace("\toption name\t\tlan\n", "\toption name\t\tinside\n").replace("'lan'", "'inside_net'");
        let w = check(&home(""), Some(&pkg(&text)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("no firewall zone contains the LAN device br-lan"), "{}", w[0]);
        assert!(w[0].fix.is_empty());
    }

    #[test]
    fn hostile_zone_names_get_no_commands() {
        let text = FW_DEFAULT.replace("\toption name\t\tlan\n", "\toption name\t\t'lan;reboot'\n");
        let w = check(&home(""), Some(&pkg(&text)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].fix.is_empty(), "{}", w[0]);
    }

    #[test]
    fn flow_offloading_with_protected_devices_is_warned_with_commands() {
        let mut fw = pkg(FW_OFFLOAD);
        let net = pkg(NET_WG);
        // The zone warning is not what this test is about: give wg0 its zone.
        let zone_fix = check(&home(""), Some(&fw), Some(&net), None, None)
            .into_iter()
            .find(|w| w.message.contains("in no firewall zone"))
            .unwrap()
            .fix;
        apply(&zone_fix, &mut [("firewall", &mut fw)]);
        let w = check(&home(""), Some(&fw), Some(&net), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].message.contains("software and hardware flow offloading are enabled (firewall.@defaults[0])"),
            "{}",
            w[0]
        );
        assert!(w[0].message.contains("2 protected devices ('Kitchen speaker', 'Sleep monitor')"), "{}", w[0]);
        assert_eq!(
            w[0].fix,
            [
                "uci set firewall.@defaults[0].flow_offloading='0'",
                "uci set firewall.@defaults[0].flow_offloading_hw='0'",
                "uci commit firewall",
                "/etc/init.d/firewall reload"
            ]
        );
        apply(&w[0].fix, &mut [("firewall", &mut fw)]);
        assert_eq!(check(&home(""), Some(&fw), Some(&net), None, None), []);
    }

    #[test]
    fn hardware_offloading_alone_is_warned_too() {
        let text = FW_VPN_ZONE.replacen(
            "\toption forward\t\tREJECT\n",
            "\toption forward\t\tREJECT\n\toption flow_offloading_hw 1\n",
            1,
        );
        let w = check(&home(""), Some(&pkg(&text)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.starts_with("fw4 hardware flow offloading is set (it takes effect together with flow_offloading) (firewall.@defaults[0]): once"), "{}", w[0]);
        assert_eq!(w[0].fix[0], "uci set firewall.@defaults[0].flow_offloading_hw='0'");
    }

    #[test]
    fn without_network_config_zone_networks_name_devices() {
        // The guide-style zone lists network 'wg0'; with no /etc/config/network that still means device wg0.
        assert_eq!(check(&home(""), Some(&pkg(FW_VPN_ZONE)), None, None, None), []);
        let w = check(&home(""), Some(&pkg(FW_DEFAULT)), None, None, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].fix.contains(&"uci add_list firewall.@zone[-1].device='wg0'".to_string()), "{}", w[0]);
    }

    #[test]
    fn flow_offloading_with_only_direct_devices_is_fine() {
        let fw = pkg(&format!("{FW_OFFLOAD}\nconfig zone\n\toption name 'vpn'\n\tlist device 'wg0'\n\toption masq 1\nconfig forwarding\n\toption src 'lan'\n\toption dest 'vpn'\n"));
        assert_eq!(check(&direct_only(), Some(&fw), None, None, None), []);
        assert_eq!(check(&home(""), Some(&fw), None, None, None).len(), 1);
    }

    #[test]
    fn stock_pbr_and_mwan3_do_not_clash_with_moat_defaults() {
        let w = check(&home(""), None, None, Some(&pkg(PBR)), Some(&pkg(MWAN3)));
        assert_eq!(w, []);
    }

    #[test]
    fn configured_pbr_mask_overlapping_moat_is_warned_with_a_free_mask() {
        let text = PBR.replace("\toption enabled '1'\n", "\toption enabled '1'\n\toption fw_mask '0f000000'\n");
        let w = check(&home(""), None, None, Some(&pkg(&text)), Some(&pkg(MWAN3)));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.contains("shares bits 0x0f000000 with pbr's fw_mask 0x0f000000 (pbr.config)"), "{}", w[0]);
        assert_eq!(
            w[0].fix,
            ["uci set moat.@moat[0].fwmark_mask='0xf0000000'", "uci commit moat", "/etc/init.d/moat reload"]
        );
        // The suggested mask is accepted by moat and clashes with nobody.
        let fixed = home("\toption fwmark_mask '0xf0000000'\n");
        assert_eq!(check(&fixed, None, None, Some(&pkg(&text)), Some(&pkg(MWAN3))), []);
        // A disabled pbr does not count.
        let off = text.replace("\toption enabled '1'\n", "\toption enabled '0'\n");
        assert_eq!(check(&home(""), None, None, Some(&pkg(&off)), None), []);
    }

    #[test]
    fn configured_mwan3_mask_overlapping_moat_is_warned() {
        let text = MWAN3.replace("'0x3F00'", "'0x3F000000'");
        let w = check(&home(""), None, None, None, Some(&pkg(&text)));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].message.contains("mwan3's mmx_mask 0x3f000000 (mwan3.globals)"), "{}", w[0]);
        // The suggestion avoids mwan3's configured bits and the defaults of both packages.
        let m = u32::from_str_radix(w[0].fix[0].split("'0x").nth(1).unwrap().trim_end_matches('\''), 16).unwrap();
        assert_eq!(m & (0x3f00_0000 | PBR_MARK_MASK | MWAN3_MARK_MASK), 0);
        assert_eq!(m.count_ones(), 4);
    }

    #[test]
    fn unreadable_mask_is_reported() {
        let text = MWAN3.replace("'0x3F00'", "'lots'");
        let w = check(&home(""), None, None, None, Some(&pkg(&text)));
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("mwan3.globals.mmx_mask = 'lots' is not a hexadecimal mark mask"), "{}", w[0]);
    }

    #[test]
    fn rendered_warnings_carry_the_commands() {
        let s = warnings(&home(""), Some(&pkg(FW_DEFAULT)), Some(&pkg(NET_WG)), None, None);
        assert_eq!(s.len(), 1);
        assert!(s[0].contains("\n  fix:\n    uci add firewall zone\n"), "{}", s[0]);
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_mask("00ff0000"), Some(0x00ff_0000));
        assert_eq!(parse_mask("0x3F00"), Some(0x3f00));
        assert_eq!(parse_mask("0x"), None);
        assert_eq!(parse_mask("123456789"), None);
        assert_eq!(free_mask(4, PBR_MARK_MASK | MWAN3_MARK_MASK), Some(0xf000_0000));
        assert_eq!(free_mask(8, 0xff00_0000 | PBR_MARK_MASK), Some(0x0000_ff00));
        assert_eq!(free_mask(32, 0), None);
        assert_eq!(q("it's"), "'it'\\''s'");
        assert!(dev_matches("wg+", "wg0") && dev_matches("wg*", "wg") && !dev_matches("wg0", "wg01"));
    }
}
