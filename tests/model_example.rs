//! The shipped example (examples/moat.conf) is the complete reference configuration: it must
//! load with no error and no warning, every option it shows must be read as written, and the
//! README must carry it verbatim.

use moat::config::*;
use std::path::Path;

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf")
}

#[test]
fn example_loads_without_errors_or_warnings() {
    let l = load_file(example_path()).unwrap_or_else(|e| panic!("{:#?}", e));
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
    let m = &l.model;

    let g = &m.global;
    assert!(g.enabled);
    assert_eq!(g.log_level, LogLevel::Info);
    let lan: Vec<&str> = g.lan_devices.iter().map(IfName::as_str).collect();
    assert_eq!(lan, ["br-lan", "br-iot"]);
    assert_eq!((g.fwmark_mask, g.queue_base, g.table_base), (0x0f00_0000, 4200, 4200));

    let names: Vec<&str> = m.tunnels.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["vpn", "office", "tor"]);
    let TunnelKind::WireGuard(vpn) = &m.tunnels[0].kind else { panic!("vpn is wireguard") };
    assert_eq!(vpn.device.as_str(), "wg0");
    assert_eq!(vpn.dns, Some("10.64.0.1".parse().unwrap()));
    assert_eq!(vpn.cover_dst, Some("10.64.0.1".parse().unwrap()));
    assert_eq!((vpn.ipv6, vpn.pad_to, vpn.pad_all), (false, PadTo::Auto, true));
    let TunnelKind::Interface(office) = &m.tunnels[1].kind else { panic!("office is interface") };
    assert_eq!(office.device.as_str(), "tun0");
    assert!(office.ipv6);
    assert_eq!(m.tunnels[2].kind, TunnelKind::Tor(TorTunnel { trans_port: 9040, dns_port: 9053 }));

    assert_eq!(m.shapers.len(), 2);
    assert_eq!(m.shapers[0].mode, ShaperMode::Constant(ConstantParams { rate: 20 }));
    assert_eq!(
        m.shapers[1].mode,
        ShaperMode::Stochastic(StochasticParams {
            rate: 50,
            decoys: 6,
            budget_mb: 50,
            decoy_rate: 5,
            decoy_duration: 20,
            idle_gap: 5,
            pace: 100,
            pace_window: 3600
        })
    );

    let routes: Vec<String> = m
        .devices
        .iter()
        .map(|d| match &d.route {
            Route::Direct => "direct".to_string(),
            Route::Block => "block".to_string(),
            Route::Tunnel(n) => n.to_string(),
        })
        .collect();
    assert_eq!(routes, ["vpn", "vpn", "office", "tor", "block", "direct"]);
    assert_eq!(m.devices[0].macs.len(), 2);
    assert_eq!(m.devices[0].name, "Kitchen speaker");
    assert_eq!(m.devices[1].section, "camera");
    assert_eq!(m.devices[1].shaper.as_ref().map(Name::as_str), Some("bursty"));
    assert!(!m.devices[5].enabled);
}

#[test]
fn example_shows_every_option_of_the_schema() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    for opt in [
        "enabled",
        "log_level",
        "lan_device",
        "fwmark_mask",
        "queue_base",
        "table_base",
        "realtime",
        "type",
        "device",
        "dns",
        "ipv6",
        "pad_to",
        "cover_dst",
        "pad_all",
        "trans_port",
        "dns_port",
        "mode",
        "rate",
        "decoys",
        "budget",
        "decoy_rate",
        "decoy_duration",
        "idle_gap",
        "name",
        "mac",
        "route",
        "shaper",
    ] {
        assert!(
            text.lines().any(|l| {
                let mut w = l.split_whitespace();
                matches!(w.next(), Some("option") | Some("list")) && w.next() == Some(opt)
            }),
            "examples/moat.conf does not show option {opt}"
        );
    }
}

#[test]
fn readme_carries_the_example_verbatim() {
    let example = std::fs::read_to_string(example_path()).unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(&example), "README.md must include examples/moat.conf verbatim");
}
