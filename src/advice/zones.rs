//! Zones: is each tunnel device in a zone the LAN zone may forward to, and does that zone masquerade?

use super::{addr, dev_matches, plain, q, section_enabled, truthy, words, Warning};
use crate::config::uci::Package;
use crate::config::{printable, Model, TunnelKind};

// ---------------------------------------------------------------------------------------------
// Network interfaces -> devices
// ---------------------------------------------------------------------------------------------

/// The netdevs a `config interface` section stands for: its L3 device and the device it runs on.
pub(super) fn iface_devices(network: &Package, iface: &str, depth: u8) -> Vec<String> {
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
pub(super) fn ifaces_of_device(network: &Package, dev: &str) -> Vec<String> {
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
pub(super) struct Zone {
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

pub(super) fn zones(fw: &Package) -> Vec<Zone> {
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
pub(super) fn forwardings(fw: &Package, src: &str, dest: &str) -> Vec<(usize, bool)> {
    fw.sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stype == "forwarding" && s.get_str("src") == Some(src) && s.get_str("dest") == Some(dest))
        .map(|(i, s)| (i, section_enabled(s)))
        .collect()
}

/// A zone name for a new tunnel zone: the tunnel's name if free (fw3-compatible length), else a variant.
pub(super) fn new_zone_name(zones: &[Zone], tunnel: &str) -> String {
    let base: String = tunnel.chars().take(11).collect();
    if !zones.iter().any(|z| z.name == base) {
        return base;
    }
    (1..100)
        .map(|n| format!("{}{}", base.chars().take(9).collect::<String>(), n))
        .find(|c| !zones.iter().any(|z| &z.name == c))
        .unwrap_or_else(|| "moat_vpn".to_string())
}

pub(super) fn check_zones(model: &Model, fw: &Package, network: Option<&Package>, out: &mut Vec<Warning>) {
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
pub(super) fn new_zone_commands(
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
pub(super) fn move_to_own_zone(
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
pub(super) fn check_masq(
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

/// LAN-side interfaces that are not a `lan_device`: the devices of every zone that does not
/// masquerade (uplink zones do) and holds no moat tunnel device. moat marks protected MACs on
/// every interface, so a protected device there is still tunnelled or blocked; but `block`
/// devices reach only the `lan_device`s, and the interface is not counted as LAN.
pub(super) fn check_lan_side(model: &Model, fw: &Package, network: Option<&Package>, out: &mut Vec<Warning>) {
    let lan: Vec<&str> = model.global.lan_devices.iter().map(|d| d.as_str()).collect();
    let tunnels: Vec<&str> = model
        .tunnels
        .iter()
        .filter_map(|t| match &t.kind {
            TunnelKind::WireGuard(l3) | TunnelKind::Interface(l3) => Some(l3.device.as_str()),
            TunnelKind::Tor(_) => None,
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    for z in zones(fw).iter().filter(|z| !z.masq && !z.masq6) {
        if tunnels.iter().any(|t| z.covers(network, t)) {
            continue;
        }
        let mut devs: Vec<String> = z.devices.clone();
        // Without /etc/config/network the zone's interfaces cannot be resolved to devices.
        if let Some(p) = network {
            for n in &z.networks {
                devs.extend(iface_devices(p, n, 0));
            }
        }
        for d in devs {
            if lan.iter().any(|l| dev_matches(&d, l) && !d.ends_with(['+', '*'])) || seen.contains(&d) {
                continue;
            }
            seen.push(d.clone());
            let wildcard = d.ends_with(['+', '*']);
            let head = format!(
                "interface {} (firewall zone '{}') is on the LAN side but not a lan_device of moat",
                printable(&d),
                printable(&z.name)
            );
            let why = "moat protects a protected MAC on every interface (tunnelled or blocked), but 'block' \
                       devices reach only the lan_devices and this interface is not counted as LAN";
            let fix = if plain(&d) && !wildcard {
                vec![
                    format!("uci add_list moat.@moat[0].lan_device={}", q(&d)),
                    "uci commit moat".to_string(),
                    "/etc/init.d/moat reload".to_string(),
                ]
            } else {
                Vec::new()
            };
            out.push(Warning {
                message: if fix.is_empty() {
                    format!("{head}; {why}. (A wildcard or unusual name: list its devices in lan_device by hand.)")
                } else {
                    format!("{head}; {why}. If it is a LAN (a guest or IoT network), list it:")
                },
                fix,
            });
        }
    }
}
