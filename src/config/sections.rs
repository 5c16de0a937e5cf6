//! Section readers: `config moat`, `tunnel`, `shaper` and `device`, each read on its own (the checks
//! across sections are in `checks.rs`).

use std::net::IpAddr;

use super::options::{Ctx, Sec};
use super::*;

/// Where the global options that take part in cross-checks were set.
pub(super) struct GlobalLines {
    pub(super) section: Option<String>,
    pub(super) line: usize,
    pub(super) fwmark_mask: usize,
    pub(super) queue_base: usize,
    pub(super) table_base: usize,
}

/// Per-device references checked after all sections are read.
pub(super) struct DeviceRefs {
    /// All options of the device were valid.
    pub(super) ok: bool,
    /// `route` was present and valid.
    pub(super) route_ok: bool,
    pub(super) route_line: usize,
    pub(super) shaper_line: usize,
    /// Line of each entry of [`Device::macs`].
    pub(super) mac_lines: Vec<usize>,
}

pub(super) const MAIN_OPTIONS: &[&str] =
    &["enabled", "log_level", "lan_device", "fwmark_mask", "queue_base", "table_base", "realtime"];
pub(super) const TUNNEL_TYPES: &str = "wireguard, interface or tor";
pub(super) const TUNNEL_OPTIONS: &[&str] =
    &["type", "device", "dns", "ipv6", "pad_to", "cover_dst", "pad_all", "trans_port", "dns_port"];
pub(super) const WIREGUARD_OPTIONS: &[&str] =
    &["type", "device", "dns", "ipv6", "pad_to", "cover_dst", "pad_all", "companion", "companion_required"];
pub(super) const INTERFACE_OPTIONS: &[&str] = &["type", "device", "dns", "ipv6"];
pub(super) const TOR_OPTIONS: &[&str] = &["type", "trans_port", "dns_port"];
pub(super) const SHAPER_OPTIONS: &[&str] = &["mode", "rate"];
pub(super) const STOCHASTIC_OPTIONS: &[&str] =
    &["mode", "rate", "decoys", "budget", "decoy_rate", "decoy_duration", "idle_gap", "pace", "pace_window"];
/// The section types of moat's configuration.
pub(super) const SECTION_TYPES: &[&str] = &["moat", "tunnel", "shaper", "device"];
pub(super) const DEVICE_OPTIONS: &[&str] = &["name", "mac", "route", "shaper", "enabled"];

pub(super) fn read_global(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> (Global, GlobalLines) {
    cx.unknown_options(sec, MAIN_OPTIONS, |_| None);
    let d = Global::default();
    let mut lines = GlobalLines {
        section: Some(sec.addr.clone()),
        line: sec.s.line,
        fwmark_mask: sec.s.line,
        queue_base: sec.s.line,
        table_base: sec.s.line,
    };
    let enabled = cx.get_or(sec, "enabled", d.enabled, parse_bool);
    let log_level = cx.get_or(sec, "log_level", d.log_level, parse_log_level);
    let lan_devices = match cx.list(sec, "lan_device", IfName::new) {
        None => d.lan_devices.clone(),
        Some(items) => {
            let mut out: Vec<IfName> = Vec::new();
            for (n, line) in items {
                if out.contains(&n) {
                    cx.warn(line, Some(&sec.addr), Some("lan_device"), format!("'{}' is listed twice", n));
                } else {
                    out.push(n);
                }
            }
            // `list lan_device ''` gives one empty item, which IfName rejects: the list can only
            // end up empty when that error has been reported.
            out
        }
    };
    let fwmark_mask = match cx.get(sec, "fwmark_mask", parse_mask) {
        Ok(Some((v, l))) => {
            lines.fwmark_mask = l;
            v
        }
        _ => d.fwmark_mask,
    };
    let queue_base = match cx.get(sec, "queue_base", |s| parse_uint(s, u16::MAX as u64)) {
        Ok(Some((v, l))) => {
            lines.queue_base = l;
            v as u16
        }
        _ => d.queue_base,
    };
    let table_base = match cx.get(sec, "table_base", |s| parse_uint(s, u32::MAX as u64)) {
        Ok(Some((v, l))) => {
            lines.table_base = l;
            v as u32
        }
        _ => d.table_base,
    };
    let realtime = cx.get_or(sec, "realtime", d.realtime, parse_bool);
    (Global { enabled, log_level, lan_devices, fwmark_mask, queue_base, table_base, realtime }, lines)
}

/// The section name of a `tunnel`/`shaper` section, validated.
pub(super) fn section_name(cx: &mut Ctx<'_>, sec: &Sec<'_>, kind: &str, referrer: &str) -> Option<Name> {
    let Some(n) = &sec.s.name else {
        cx.error(
            sec.s.line,
            Some(&sec.addr),
            None,
            format!("a {} section needs a name (devices refer to it in '{}')", kind, referrer),
        );
        return None;
    };
    match Name::new(n) {
        Ok(n) => Some(n),
        Err(m) => {
            cx.error(sec.s.line, Some(&sec.addr), None, m);
            None
        }
    }
}

pub(super) fn read_tunnel(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> Option<(Tunnel, usize)> {
    let name = section_name(cx, sec, "tunnel", "route");
    if let Some(n) = &name {
        if n.as_str() == "direct" || n.as_str() == "block" {
            cx.error(
                sec.s.line,
                Some(&sec.addr),
                None,
                format!("'{}' is a reserved route name; call the tunnel something else", n),
            );
        }
    }
    let ty = cx.required(sec, "type", &format!("the tunnel type ({})", TUNNEL_TYPES), |s| match s {
        "wireguard" | "interface" | "tor" => Ok(s.to_string()),
        _ => Err(format!("'{}' is not a tunnel type (expected {})", printable(s), TUNNEL_TYPES)),
    });
    let Some((ty, _)) = ty else {
        cx.unknown_options(sec, TUNNEL_OPTIONS, |_| None);
        return None;
    };
    let allowed = match ty.as_str() {
        "wireguard" => WIREGUARD_OPTIONS,
        "interface" => INTERFACE_OPTIONS,
        _ => TOR_OPTIONS,
    };
    cx.unknown_options(sec, allowed, |o| {
        TUNNEL_OPTIONS.contains(&o).then(|| format!("option does not apply to a tunnel of type {} (ignored)", ty))
    });
    let mut device_line = sec.s.line;
    let kind = if ty == "tor" {
        let d = TorTunnel::default();
        let tp = cx.get(sec, "trans_port", parse_port);
        let dp = cx.get(sec, "dns_port", parse_port);
        let (Ok(tp), Ok(dp)) = (tp, dp) else { return None };
        let t = TorTunnel {
            trans_port: tp.map(|(v, _)| v).unwrap_or(d.trans_port),
            dns_port: dp.map(|(v, _)| v).unwrap_or(d.dns_port),
        };
        if t.trans_port == t.dns_port {
            let line = dp.map(|(_, l)| l).or(tp.map(|(_, l)| l)).unwrap_or(sec.s.line);
            cx.error(
                line,
                Some(&sec.addr),
                Some("dns_port"),
                format!("dns_port and trans_port are both {}; Tor needs two different ports", t.dns_port),
            );
            return None;
        }
        TunnelKind::Tor(t)
    } else {
        let wg = ty == "wireguard";
        let device = cx.required(sec, "device", "the tunnel's network device (e.g. wg0)", IfName::new);
        let ipv6 = cx.get_or(sec, "ipv6", false, parse_bool);
        let mut dns_line = sec.s.line;
        let dns = match cx.get(sec, "dns", |s| parse_ip(s).and_then(unicast_peer)) {
            Ok(Some((ip, line))) => {
                dns_line = line;
                if ip.is_ipv6() && !ipv6 {
                    cx.error(
                        line,
                        Some(&sec.addr),
                        Some("dns"),
                        format!(
                            "{} is IPv6 but the tunnel does not carry IPv6 (ipv6 '0'); use an IPv4 resolver or set ipv6 '1'",
                            ip
                        ),
                    );
                    None
                } else {
                    Some(ip)
                }
            }
            Ok(None) => None,
            Err(()) => return None,
        };
        let mut pad_to_line = sec.s.line;
        let (pad_to, cover_dst, pad_all, companion) = if wg {
            let pad_to = cx.get(sec, "pad_to", parse_pad_to);
            let cover = cx.get(sec, "cover_dst", |s| {
                let ip = parse_ip(s).and_then(unicast_peer)?;
                if ip.is_ipv4() {
                    Ok(ip)
                } else {
                    Err(format!("{} is IPv6; cover packets are IPv4 (expected an IPv4 address)", ip))
                }
            });
            let pad_all = cx.get(sec, "pad_all", parse_bool);
            let comp = cx.get(sec, "companion", |s| {
                let ip = parse_ip(s).and_then(unicast_peer)?;
                if ip.is_ipv4() {
                    Ok(ip)
                } else {
                    Err(format!("{} is IPv6; cover packets are IPv4 (expected an IPv4 address)", ip))
                }
            });
            let required = cx.get(sec, "companion_required", parse_bool);
            let (Ok(pad_to), Ok(cover), Ok(pad_all), Ok(comp), Ok(required)) = (pad_to, cover, pad_all, comp, required)
            else {
                return None;
            };
            let required = required.map(|(v, _)| v).unwrap_or(false);
            if let (Some((_, line)), true) = (comp, ipv6) {
                let msg = "the companion shapes what comes back to the router's IPv4 tunnel address only: \
                           this tunnel's IPv6 (ipv6 '1') comes back unshaped, in its own sizes and times";
                cx.warn(line, Some(&sec.addr), Some("companion"), msg.into());
            }
            let companion = match comp {
                Some((addr, _)) => Some(Companion { addr, required }),
                None if required => {
                    let line = sec.s.get("companion_required").map_or(sec.s.line, |o| o.line);
                    let msg = "companion_required '1' needs option companion (the companion's tunnel address)";
                    cx.error(line, Some(&sec.addr), Some("companion_required"), msg.into());
                    return None;
                }
                None => None,
            };
            let cover_dst = cover.map(|(ip, _)| ip).or(dns.filter(IpAddr::is_ipv4));
            if let Some((_, l)) = pad_to {
                pad_to_line = l;
            }
            (
                pad_to.map(|(v, _)| v).unwrap_or(PadTo::Auto),
                cover_dst,
                pad_all.map(|(v, _)| v).unwrap_or(true),
                companion,
            )
        } else {
            (PadTo::Auto, None, false, None)
        };
        let (device, dl) = device?;
        device_line = dl;
        let l = L3Tunnel {
            device,
            dns,
            ipv6,
            pad_to,
            cover_dst,
            pad_all,
            companion,
            device_line: dl,
            dns_line,
            pad_to_line,
        };
        if wg {
            TunnelKind::WireGuard(l)
        } else {
            TunnelKind::Interface(l)
        }
    };
    Some((Tunnel { name: name?, kind, line: sec.s.line }, device_line))
}

pub(super) fn read_shaper(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> Option<Shaper> {
    let name = section_name(cx, sec, "shaper", "shaper");
    let mode = cx.required(sec, "mode", "the shaping mode (constant or stochastic)", |s| match s {
        "constant" | "stochastic" => Ok(s.to_string()),
        _ => Err(format!("'{}' is not a shaping mode (expected constant or stochastic)", printable(s))),
    });
    let rate = cx.required(sec, "rate", "the rate in packets per second (1-1000)", parse_rate);
    let Some((mode, _)) = mode else {
        cx.unknown_options(sec, STOCHASTIC_OPTIONS, |_| None);
        return None;
    };
    let mode = if mode == "constant" {
        cx.unknown_options(sec, SHAPER_OPTIONS, |o| {
            STOCHASTIC_OPTIONS
                .contains(&o)
                .then(|| "option does not apply to a shaper of mode constant (ignored)".into())
        });
        ShaperMode::Constant(ConstantParams { rate: rate?.0 })
    } else {
        ShaperMode::Stochastic(read_stochastic(cx, sec, rate?.0)?)
    };
    Some(Shaper { name: name?, mode, line: sec.s.line })
}

/// The options of `mode stochastic`. Extension point: the shaping work adds its parameters
/// here (and to the known-option list) as further fields of [`StochasticParams`].
pub(super) fn read_stochastic(cx: &mut Ctx<'_>, sec: &Sec<'_>, rate: u32) -> Option<StochasticParams> {
    cx.unknown_options(sec, STOCHASTIC_OPTIONS, |_| None);
    let range = |name: &'static str, lo: u64, hi: u64, unit: &'static str| {
        move |s: &str| match parse_uint(s, u32::MAX as u64) {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v as u32),
            _ => Err(format!("'{}' is not a valid {} (expected {}-{} {})", printable(s), name, lo, hi, unit)),
        }
    };
    let mut ok = true;
    let mut get = |cx: &mut Ctx<'_>, name: &str, default: u32, parse: &dyn Fn(&str) -> Result<u32, String>| match cx
        .get(sec, name, parse)
    {
        Ok(Some((v, line))) => (v, Some(line)),
        Ok(None) => (default, None),
        Err(()) => {
            ok = false;
            (default, None)
        }
    };
    let (decoys, _) = get(cx, "decoys", 6, &range("decoy count", 0, 360, "per idle hour"));
    let (budget_mb, _) = get(cx, "budget", 50, &range("budget", 0, 100_000, "MB per day"));
    let (decoy_rate, rate_line) =
        get(cx, "decoy_rate", rate.min(5), &range("decoy rate", 1, RATE_MAX as u64, "packets per second"));
    let (decoy_duration, dur_line) = get(cx, "decoy_duration", 20, &range("decoy duration", 1, 3600, "seconds"));
    let (idle_gap, _) = get(cx, "idle_gap", 5, &range("idle gap", 1, 600, "seconds"));
    let (pace, _) = get(cx, "pace", 100, &range("pace", 0, 1000, "seconds of decoy per 100 s of real activity"));
    let (pace_window, _) = get(cx, "pace_window", 3600, &range("pace window", 60, 86_400, "seconds"));
    if decoy_rate > rate {
        let line = rate_line.unwrap_or(sec.s.line);
        cx.error(
            line,
            Some(&sec.addr),
            Some("decoy_rate"),
            format!("decoy_rate {} is above the rate cap {}", decoy_rate, rate),
        );
        ok = false;
    }
    if decoys as u64 * decoy_duration as u64 >= 3600 {
        let line = dur_line.unwrap_or(sec.s.line);
        cx.error(
            line,
            Some(&sec.addr),
            Some("decoy_duration"),
            format!(
                "{} decoys of {} s do not fit in an idle hour (decoys × decoy_duration must be below 3600)",
                decoys, decoy_duration
            ),
        );
        ok = false;
    }
    ok.then_some(StochasticParams { rate, decoys, budget_mb, decoy_rate, decoy_duration, idle_gap, pace, pace_window })
}

/// Read a device section. Always returns what could be read, so that cross-checks (MAC
/// uniqueness, references) also cover devices with errors; `DeviceRefs::ok` tells.
pub(super) fn read_device(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> (Device, DeviceRefs) {
    cx.unknown_options(sec, DEVICE_OPTIONS, |_| None);
    let mut ok = true;
    if let Some(n) = &sec.s.name {
        if let Err(m) = Name::new(n) {
            cx.error(sec.s.line, Some(&sec.addr), None, m);
            ok = false;
        }
    }
    let name = match cx.get(sec, "name", parse_display_name) {
        Ok(Some((n, _))) => n,
        Ok(None) => sec.addr.clone(),
        Err(()) => {
            ok = false;
            String::new()
        }
    };
    let macs: Vec<(Mac, usize)> = match cx.list(sec, "mac", Mac::parse) {
        None => {
            cx.error(
                sec.s.line,
                Some(&sec.addr),
                Some("mac"),
                "missing: at least one MAC address (list mac 'aa:bb:cc:dd:ee:ff')".to_string(),
            );
            ok = false;
            Vec::new()
        }
        Some(items) => {
            if items.len() != sec.s.get("mac").map(|o| o.values().len()).unwrap_or(0) {
                ok = false;
            }
            items
        }
    };
    let route =
        cx.required(sec, "route", "where the traffic goes (direct, block or a tunnel section name)", |s| match s {
            "direct" => Ok(Route::Direct),
            "block" => Ok(Route::Block),
            _ => Name::new(s).map(Route::Tunnel).map_err(|_| {
                format!("'{}' is not a route (expected direct, block or a tunnel section name)", printable(s))
            }),
        });
    let shaper = match cx.get(sec, "shaper", Name::new) {
        Ok(s) => s,
        Err(()) => {
            ok = false;
            None
        }
    };
    let enabled = match cx.get(sec, "enabled", parse_bool) {
        Ok(v) => v.map(|(b, _)| b).unwrap_or(true),
        Err(()) => {
            ok = false;
            true
        }
    };
    let route_ok = route.is_some();
    let (route, route_line) = route.unwrap_or((Route::Block, sec.s.line));
    let shaper_line = shaper.as_ref().map(|(_, l)| *l).unwrap_or(sec.s.line);
    (
        Device {
            section: sec.addr.clone(),
            name,
            macs: macs.iter().map(|(m, _)| *m).collect(),
            route,
            shaper: shaper.map(|(s, _)| s),
            enabled,
            line: sec.s.line,
        },
        DeviceRefs {
            ok: ok && route_ok,
            route_ok,
            route_line,
            shaper_line,
            mac_lines: macs.iter().map(|(_, l)| *l).collect(),
        },
    )
}
