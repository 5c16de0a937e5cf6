//! Validation: every section read in file order, then the checks across sections (one device per
//! tunnel, references, MAC uniqueness, redeclared names, budgets).

use std::net::IpAddr;

use super::budget::check_budgets;
use super::options::{Ctx, Sec};
use super::sections::*;
use super::suggest::did_you_mean;
use super::uci::Package;
use super::*;

/// Build the model from a parsed package, collecting every error and warning.
pub fn validate(file: &str, pkg: &Package) -> Report {
    let mut cx = Ctx { file, errors: Vec::new(), warnings: Vec::new() };
    check_redeclared(&mut cx, pkg);

    let mut global: Option<(Global, GlobalLines)> = None;
    let mut tunnels: Vec<Tunnel> = Vec::new();
    let mut tunnel_device_lines: Vec<usize> = Vec::new();
    let mut shapers: Vec<Shaper> = Vec::new();
    let mut devices: Vec<Device> = Vec::new();
    let mut device_refs: Vec<DeviceRefs> = Vec::new();
    let mut devices_ok = true;
    // Names of every tunnel/shaper section, valid or not, so that a reference to an invalid
    // section is not reported a second time as a reference to a missing one.
    let mut tunnel_names: Vec<String> = Vec::new();
    let mut shaper_names: Vec<String> = Vec::new();
    for (i, s) in pkg.sections.iter().enumerate() {
        let sec = Sec { s, addr: pkg.address(i) };
        match s.stype.as_str() {
            "moat" => {
                if let Some((_, first)) = &global {
                    let first_name = first.section.clone().unwrap_or_default();
                    let first_line = first.line;
                    cx.conflict(
                        s.line,
                        Some(&sec.addr),
                        None,
                        format!(
                            "a second 'moat' section; only one is allowed (the first is '{}' at line {})",
                            first_name, first_line
                        ),
                    );
                    continue;
                }
                global = Some(read_global(&mut cx, &sec));
            }
            "tunnel" => {
                tunnel_names.extend(s.name.clone());
                if let Some((t, dl)) = read_tunnel(&mut cx, &sec) {
                    tunnels.push(t);
                    tunnel_device_lines.push(dl);
                }
            }
            "shaper" => {
                shaper_names.extend(s.name.clone());
                if let Some(sh) = read_shaper(&mut cx, &sec) {
                    shapers.push(sh);
                }
            }
            "device" => {
                let (d, r) = read_device(&mut cx, &sec);
                devices_ok &= r.ok;
                devices.push(d);
                device_refs.push(r);
            }
            other => cx.refuse_unknown(
                s.line,
                Some(&sec.addr),
                None,
                format!(
                    "unknown section type '{}'{} (known: {})",
                    printable(other),
                    did_you_mean(other, SECTION_TYPES),
                    SECTION_TYPES.join(", ")
                ),
            ),
        }
    }

    let (global, glines) = global.unwrap_or_else(|| {
        (Global::default(), GlobalLines { section: None, line: 0, fwmark_mask: 0, queue_base: 0, table_base: 0 })
    });

    // Tunnels: one device per tunnel, and never a LAN device.
    for i in 0..tunnels.len() {
        let dev = match &tunnels[i].kind {
            TunnelKind::WireGuard(l) | TunnelKind::Interface(l) => &l.device,
            TunnelKind::Tor(_) => continue,
        };
        let line = tunnel_device_lines[i];
        let name = tunnels[i].name.to_string();
        for j in 0..i {
            if let TunnelKind::WireGuard(l) | TunnelKind::Interface(l) = &tunnels[j].kind {
                if &l.device == dev {
                    cx.conflict(
                        line,
                        Some(&name),
                        Some("device"),
                        format!(
                            "device '{}' is already used by tunnel '{}' (line {}); each tunnel needs its own device",
                            dev, tunnels[j].name, tunnel_device_lines[j]
                        ),
                    );
                }
            }
        }
        if global.lan_devices.contains(dev) {
            cx.conflict(
                line,
                Some(&name),
                Some("device"),
                format!("device '{}' is also a lan_device; a tunnel cannot be a LAN interface", dev),
            );
        }
    }

    // Devices: references and MAC uniqueness.
    let mut seen_macs: Vec<(Mac, String, usize)> = Vec::new();
    for (d, r) in devices.iter().zip(&device_refs) {
        let tunnel = match &d.route {
            _ if !r.route_ok => None,
            Route::Tunnel(n) => match tunnels.iter().find(|t| &t.name == n) {
                Some(t) => Some(t),
                None if tunnel_names.iter().any(|t| t == n.as_str()) => None, // invalid, reported
                None => {
                    let known: Vec<String> = tunnel_names.iter().map(|t| format!("'{}'", t)).collect();
                    cx.conflict(
                        r.route_line,
                        Some(&d.section),
                        Some("route"),
                        format!(
                            "route '{}' names no tunnel section (expected direct, block{}{})",
                            n,
                            if known.is_empty() { "" } else { " or one of " },
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
            _ => None,
        };
        if let Some(sn) = &d.shaper {
            if !shaper_names.iter().any(|s| s == sn.as_str()) {
                cx.conflict(
                    r.shaper_line,
                    Some(&d.section),
                    Some("shaper"),
                    format!("shaper '{}' names no shaper section", sn),
                );
            }
            match (&d.route, tunnel.map(|t| &t.kind)) {
                (_, Some(TunnelKind::WireGuard(l))) => {
                    if !matches!(l.cover_dst, Some(IpAddr::V4(_))) {
                        cx.conflict(
                            r.shaper_line,
                            Some(&d.section),
                            Some("shaper"),
                            format!(
                                "tunnel '{}' has no IPv4 cover_dst (nor an IPv4 dns to default to); shaped devices need one",
                                tunnel.map(|t| t.name.to_string()).unwrap_or_default()
                            ),
                        );
                    }
                }
                (Route::Tunnel(n), Some(kind)) => {
                    let ty = if matches!(kind, TunnelKind::Tor(_)) { "tor" } else { "interface" };
                    cx.conflict(
                        r.shaper_line,
                        Some(&d.section),
                        Some("shaper"),
                        format!("a shaper needs a wireguard tunnel route, but tunnel '{}' is of type {}", n, ty),
                    );
                }
                (Route::Tunnel(_), None) => {} // the missing or invalid tunnel is already reported
                _ if !r.route_ok => {}
                (Route::Direct, _) | (Route::Block, _) => cx.conflict(
                    r.shaper_line,
                    Some(&d.section),
                    Some("shaper"),
                    format!(
                        "a shaper needs a wireguard tunnel route, but the route is {}",
                        if d.route == Route::Direct { "direct" } else { "block" }
                    ),
                ),
            }
        }
        let mac_opt = d.section.clone();
        for (m, &line) in d.macs.iter().zip(&r.mac_lines) {
            if let Some((_, other, oline)) = seen_macs.iter().find(|(x, _, _)| x == m) {
                let msg = if *other == mac_opt {
                    format!("MAC {} is listed twice in this device (also line {})", m, oline)
                } else {
                    format!("MAC {} is already listed in device section '{}' (line {}); a MAC can belong to one device only", m, other, oline)
                };
                cx.conflict(line, Some(&d.section), Some("mac"), msg);
            } else {
                seen_macs.push((*m, mac_opt.clone(), line));
            }
        }
    }

    let valid_devices: Vec<Device> =
        devices.iter().zip(&device_refs).filter(|(_, r)| r.ok).map(|(d, _)| d.clone()).collect();
    let draft = Draft { global, tunnels, shapers, devices };
    check_budgets(&mut cx, &Draft { devices: valid_devices, ..draft.clone() }, &glines);

    cx.errors.sort_by_key(|d| d.line);
    cx.warnings.sort_by_key(|d| d.line);
    let ok = cx.errors.is_empty() && devices_ok;
    debug_assert!(ok || !cx.errors.is_empty(), "an invalid device must have reported an error");
    Report { model: ok.then(|| Model::validated(draft)), errors: cx.errors, warnings: cx.warnings }
}

/// A named section declared twice is merged by libuci (a second declaration with another type
/// is a UCI syntax error), which silently mixes two sections: the second `config tunnel 'vpn'`
/// of a file can turn a WireGuard tunnel into Tor. README says a name is declared once; every
/// later declaration is an error naming both lines.
fn check_redeclared(cx: &mut Ctx<'_>, pkg: &Package) {
    for (i, s) in pkg.sections.iter().enumerate() {
        let name = s.name.clone().unwrap_or_else(|| pkg.address(i));
        for &again in &s.redeclared {
            cx.conflict(
                again,
                Some(&name),
                None,
                format!(
                    "section name '{}' is declared more than once (first at line {}, again at line {}); \
                     UCI merges the declarations into one section, so give each section its own name",
                    name, s.line, again
                ),
            );
        }
    }
}
