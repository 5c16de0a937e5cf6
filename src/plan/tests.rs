//! Unit tests of the pure plan (models built directly).

use super::*;
use crate::facts::{Facts, Iface};
use crate::model::*;

fn ifn(s: &str) -> IfName {
    IfName::new(s).unwrap()
}
fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn global() -> Global {
    Global {
        enabled: true,
        log_level: LogLevel::Info,
        lan_devices: vec![ifn("br-lan")],
        fwmark_mask: 0x0f00_0000,
        queue_base: 4200,
        table_base: 4200,
        realtime: false,
    }
}

fn wg(dev: &str, ipv6: bool) -> L3Tunnel {
    L3Tunnel {
        device: ifn(dev),
        dns: Some("10.64.0.1".parse().unwrap()),
        ipv6,
        pad_to: PadTo::Auto,
        cover_dst: None,
        pad_all: true,
    }
}

fn device(i: usize, mac: &str, route: Route, shaper: Option<&str>) -> Device {
    Device {
        section: format!("@device[{i}]"),
        name: format!("dev {i}"),
        macs: vec![Mac::parse(mac).unwrap()],
        route,
        shaper: shaper.map(name),
        enabled: true,
        line: 10 + i,
    }
}

fn readme_model() -> Model {
    Model::unchecked(Draft {
        global: global(),
        tunnels: vec![
            Tunnel { name: name("vpn"), kind: TunnelKind::WireGuard(wg("wg0", false)), line: 9 },
            Tunnel {
                name: name("tor"),
                kind: TunnelKind::Tor(TorTunnel { trans_port: 9040, dns_port: 9053 }),
                line: 17,
            },
        ],
        shapers: vec![Shaper {
            name: name("steady"),
            mode: ShaperMode::Constant(ConstantParams { rate: 20 }),
            line: 22,
        }],
        devices: vec![
            device(0, "aa:bb:cc:00:11:22", Route::Tunnel(name("vpn")), Some("steady")),
            device(1, "aa:bb:cc:00:11:33", Route::Tunnel(name("tor")), None),
            device(2, "aa:bb:cc:00:11:44", Route::Block, None),
            device(3, "aa:bb:cc:00:11:55", Route::Direct, None),
        ],
    })
}

fn facts(nft_queue: bool) -> Facts {
    let mut f = Facts { nft_queue, ..Facts::default() };
    f.interfaces
        .insert("br-lan".into(), Iface { up: true, mtu: 1500, addrs: vec![("192.168.1.1".parse().unwrap(), 24)] });
    f.interfaces.insert("wg0".into(), Iface { up: true, mtu: 1420, addrs: vec![] });
    f
}

#[test]
fn deposit_spreads_bits_over_the_mask() {
    assert_eq!(deposit(0x0f00_0000, 1), 0x0100_0000);
    assert_eq!(deposit(0x0f00_0000, 0b1010), 0x0a00_0000);
    assert_eq!(deposit(0x0000_0f0f, 0b1_0011), 0x0000_0103); // bit 4 of v lands past bit 3 of the mask
    assert_eq!(deposit(0x8000_0001, 0b11), 0x8000_0001);
    assert_eq!(deposit(0x0f00_0000, 0b1_0000), 0); // more bits than the mask has: dropped
}

#[test]
fn readme_example_layout_marks_and_routing() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    // 3 routes in use (vpn, tor, block) = values 1..3, then the shaped device = 4.
    assert_eq!((p.marks.capacity, p.marks.used), (15, 4));
    let labels: Vec<_> = p.classes.iter().map(|c| (c.label.as_str(), c.values.clone())).collect();
    assert_eq!(
        labels,
        vec![("vpn", vec![0x0100_0000, 0x0400_0000]), ("tor", vec![0x0200_0000]), ("block", vec![0x0300_0000])]
    );
    let marks: Vec<_> = p.devices.iter().map(|d| d.mark).collect();
    assert_eq!(marks, vec![0x0400_0000, 0x0200_0000, 0x0300_0000, 0]);
    let rule = |mark| RuleOp { family: AF_INET, mark, mask: 0x0f00_0000, table: 4200, priority: 4200 };
    assert_eq!(p.rules, vec![rule(0x0100_0000), rule(0x0400_0000)]);
    assert_eq!(p.routes.len(), 2);
    assert_eq!(p.routes[0].device, Some(ifn("wg0")));
    assert_eq!(p.routes[1], RouteOp { family: AF_INET, table: 4200, device: None, metric: 9999 });
    // Every device mark stays inside the mask, and route values are distinct.
    for d in &p.devices {
        assert_eq!(d.mark & !0x0f00_0000, 0);
    }
}

#[test]
fn nft_script_replaces_the_table_in_one_transaction_and_only_drops() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    let lines: Vec<&str> = p.nft.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(&lines[..3], &["table inet moat", "delete table inet moat", "table inet moat {"]);
    assert!(!p.nft.contains("accept\n") || p.nft.lines().all(|l| !l.trim_start().starts_with("accept")));
    assert!(!p.nft.contains(" accept comment"), "moat must never accept on fw4's behalf");
    assert!(p.nft.contains("ether saddr { aa:bb:cc:00:11:22 } meta mark set meta mark & 0xf0ffffff | 0x04000000"));
    assert!(p.nft.contains("meta mark & 0x0f000000 { 0x01000000, 0x04000000 } oifname != \"wg0\" drop"));
    assert!(p.nft.contains("meta mark & 0x0f000000 { 0x01000000, 0x04000000 } meta nfproto ipv6 jump reject_fast"));
    assert!(p.nft.contains("dnat ip to 10.64.0.1"));
    assert!(p.nft.contains("redirect to :9040"));
    assert!(p.nft.contains("redirect to :9053"));
    assert!(p.nft.contains("meta mark & 0x0f000000 == 0x03000000 oifname != { \"br-lan\" } drop"));
    // MSS clamp for the shaped device: auto pad 1420 -> 1408, minus 40.
    assert!(p.nft.contains("tcp option maxseg size > 1368 tcp option maxseg size set 1368"));
    // The direct device's MAC appears nowhere.
    assert!(!p.nft.contains("aa:bb:cc:00:11:55"));
    // iptables backend: no nft queue statement.
    assert!(!p.nft.contains("queue num"));
    assert!(p.nft.ends_with("}\n"));
}

#[test]
fn queue_backends() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    assert_eq!(p.queues.backend, QueueBackend::Iptables);
    assert_eq!(p.queues.shaped.len(), 1);
    let q = &p.queues.shaped[0];
    assert_eq!((q.queue, q.index, q.mark, q.mark_mask, q.pad_to), (4200, 1, 0x0400_0000, 0x0f00_0000, Some(1408)));
    assert_eq!(q.cover_dst, Some("10.64.0.1".parse().unwrap()));
    assert_eq!(p.queues.pad.len(), 1);
    assert_eq!(p.queues.pad[0].queue, 4201);
    let (prog, body) = &p.queues.iptables[0];
    assert_eq!(prog, "iptables-restore");
    assert!(body.contains("-A MOAT_QUEUE -o wg0 -m mark --mark 0x04000000/0x0f000000 -j NFQUEUE --queue-num 4200\n"));
    assert!(body.contains("-A MOAT_QUEUE -o wg0 -j NFQUEUE --queue-num 4201\n"));
    assert!(!body.contains("bypass"));

    let p = build(&readme_model(), &facts(true)).unwrap();
    assert_eq!(p.queues.backend, QueueBackend::Nft);
    assert!(p.queues.iptables.is_empty());
    assert!(p.nft.contains("oifname \"wg0\" meta mark & 0x0f000000 == 0x04000000 queue num 4200\n"));
    assert!(p.nft.contains("oifname \"wg0\" queue num 4201\n"));
    assert!(!p.nft.contains("bypass"));
}

#[test]
fn pad_to_resolution() {
    let mut m = readme_model();
    let mut f = facts(false);
    f.interfaces.get_mut("wg0").unwrap().mtu = 1419;
    assert_eq!(build(&m, &f).unwrap().queues.shaped[0].pad_to, Some(1408));
    if let TunnelKind::WireGuard(l3) = &mut m.tunnels[0].kind {
        l3.pad_to = PadTo::Bytes(1420);
    }
    let e = build(&m, &f).unwrap_err();
    assert!(e[0].contains("pad_to 1420 is above the MTU 1419 of wg0"), "{e:?}");
    if let TunnelKind::WireGuard(l3) = &mut m.tunnels[0].kind {
        l3.pad_to = PadTo::Bytes(1000);
    }
    assert_eq!(build(&m, &f).unwrap().queues.shaped[0].pad_to, Some(1000));
    // Tunnel absent: auto is unknown, the plan still fails closed (queue rule present).
    f.interfaces.remove("wg0");
    if let TunnelKind::WireGuard(l3) = &mut m.tunnels[0].kind {
        l3.pad_to = PadTo::Auto;
    }
    let p = build(&m, &f).unwrap();
    assert_eq!(p.queues.shaped[0].pad_to, None);
    assert!(p.queues.iptables[0].1.contains("--queue-num 4200"));
    assert!(p.notes.iter().any(|n| n.contains("wg0 does not exist")));
    assert!(!p.nft.contains("maxseg"));
}

#[test]
fn too_few_mark_bits_is_an_error() {
    let mut m = readme_model();
    m.global.fwmark_mask = 0x0300_0000; // 2 bits = 3 values; 4 are needed
    let e = build(&m, &facts(false)).unwrap_err();
    assert!(e[0].contains("holds 3 mark values") && e[0].contains("widen fwmark_mask"), "{e:?}");
    // 3 bits suffice; values are placed in the mask's bits.
    m.global.fwmark_mask = 0x0000_7000;
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!(p.devices[0].mark, 0x0000_4000);
    assert_eq!(p.classes[2].value, 0x0000_3000);
}

#[test]
fn ipv6_tunnel_gets_v6_rules_and_no_v6_reject() {
    let mut m = readme_model();
    m.tunnels[0].kind = TunnelKind::WireGuard(L3Tunnel { dns: Some("fd00:64::1".parse().unwrap()), ..wg("wg0", true) });
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!(p.rules.len(), 4); // (route + shaped device) x (v4, v6)
    assert_eq!(p.rules[2].family, AF_INET6);
    assert_eq!(p.routes.len(), 4);
    assert!(!p.nft.contains("0x04000000 } meta nfproto ipv6 jump reject_fast"));
    assert!(p.nft.contains("dnat ip6 to fd00:64::1"));
    // An IPv6 resolver on a tunnel without IPv6 is refused.
    m.tunnels[0].kind =
        TunnelKind::WireGuard(L3Tunnel { dns: Some("fd00:64::1".parse().unwrap()), ..wg("wg0", false) });
    assert!(build(&m, &facts(false)).unwrap_err()[0].contains("is IPv6"));
}

#[test]
fn disabled_config_removes_everything() {
    let mut m = readme_model();
    m.global.enabled = false;
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!(p.nft, NFT_REMOVE);
    assert!(p.rules.is_empty() && p.routes.is_empty() && p.queues.iptables.is_empty());
}

#[test]
fn disabled_and_direct_devices_are_not_marked() {
    let mut m = readme_model();
    m.devices[0].enabled = false;
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!(p.devices[0].mark, 0);
    assert_eq!(p.devices[0].route, "disabled");
    assert!(!p.nft.contains("aa:bb:cc:00:11:22"));
    // vpn unused now: no ip rule, 2 routes in use (tor, block), no shaping.
    assert!(p.rules.is_empty());
    assert_eq!(p.classes.len(), 2);
    assert!(p.queues.shaped.is_empty());
}

#[test]
fn shaper_on_non_wireguard_route_is_refused() {
    let mut m = readme_model();
    m.devices[1].shaper = Some(name("steady"));
    let e = build(&m, &facts(false)).unwrap_err();
    assert!(e.iter().any(|x| x.contains("needs a wireguard tunnel route")), "{e:?}");
}

#[test]
fn dns_on_the_router_itself_is_refused() {
    let mut m = readme_model();
    m.tunnels[0].kind =
        TunnelKind::WireGuard(L3Tunnel { dns: Some("192.168.1.1".parse().unwrap()), ..wg("wg0", false) });
    let e = build(&m, &facts(false)).unwrap_err();
    assert!(e[0].contains("address of this router"), "{e:?}");
}

#[test]
fn plan_is_deterministic() {
    let a = build(&readme_model(), &facts(false)).unwrap();
    let b = build(&readme_model(), &facts(false)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.render(), b.render());
}

#[test]
fn hold_script_blocks_only_protected_macs_with_a_timeout() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    let h = hold_script(&p, 15).unwrap();
    let lines: Vec<&str> = h.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(&lines[..3], &["table inet moat", "delete table inet moat", "table inet moat {"]);
    for mac in ["aa:bb:cc:00:11:22 timeout 15s", "aa:bb:cc:00:11:33 timeout 15s", "aa:bb:cc:00:11:44 timeout 15s"] {
        assert!(h.contains(mac), "{mac} missing:\n{h}");
    }
    assert!(!h.contains("aa:bb:cc:00:11:55"), "direct device must not be held");
    assert!(h.contains("ether saddr @hold drop"));
    let mut m = readme_model();
    for d in &mut m.devices {
        d.route = Route::Direct;
        d.shaper = None;
    }
    assert_eq!(hold_script(&build(&m, &facts(false)).unwrap(), 15), None);
}

#[test]
fn blocking_shaped_fallback_drops_exactly_the_shaped_devices() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    let b = p.nft_blocking_shaped().unwrap();
    assert!(
        b.contains(
            "\t\tmeta mark & 0x0f000000 == 0x04000000 drop comment \"shaped: queue rules missing, fail closed\"\n"
        ),
        "{b}"
    );
    assert_eq!(b.len(), p.nft.len() + b.lines().find(|l| l.contains("queue rules missing")).unwrap().len() + 1);
    let mut m = readme_model();
    m.devices[0].shaper = None;
    assert_eq!(build(&m, &facts(false)).unwrap().nft_blocking_shaped(), None);
}
