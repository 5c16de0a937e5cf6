//! Unit tests of the pure plan (models built by validation from UCI text, as everywhere).

use super::facts::{Facts, Iface};
use super::*;
use crate::config::IfName;

fn ifn(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

/// The README-like example: a shaped device on WireGuard `vpn`, one on Tor, one blocked, one
/// direct. `main`, `vpn` and `dev0` are extra option lines for those sections.
fn conf(main: &str, vpn: &str, dev0: &str) -> Model {
    let text = format!(
        "config moat 'main'\n{main}\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n{vpn}\n\
         config tunnel 'tor'\n\toption type 'tor'\n\n\
         config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n\n\
         config device\n\toption name 'dev 0'\n\tlist mac 'aa:bb:cc:00:11:22'\n{dev0}\n\
         config device\n\toption name 'dev 1'\n\tlist mac 'aa:bb:cc:00:11:33'\n\toption route 'tor'\n\n\
         config device\n\toption name 'dev 2'\n\tlist mac 'aa:bb:cc:00:11:44'\n\toption route 'block'\n\n\
         config device\n\toption name 'dev 3'\n\tlist mac 'aa:bb:cc:00:11:55'\n\toption route 'direct'\n"
    );
    match crate::config::check_bytes("t.conf", text.as_bytes()).into_result() {
        Ok(l) => l.model,
        Err(e) => panic!("test config must be valid: {e:#?}\n{text}"),
    }
}

const DNS4: &str = "\toption dns '10.64.0.1'";
const SHAPED: &str = "\toption route 'vpn'\n\toption shaper 'steady'";

fn readme_model() -> Model {
    conf("", DNS4, SHAPED)
}

fn facts(nft_queue: bool) -> Facts {
    let mut f = Facts { nft_queue, ..Facts::default() };
    f.interfaces.insert(
        "br-lan".into(),
        Iface { up: true, mtu: 1500, addrs: vec![("192.168.1.1".parse().unwrap(), 24)], link: Some(1) },
    );
    f.interfaces.insert("wg0".into(), Iface { up: true, mtu: 1420, addrs: vec![], link: Some(65534) });
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
    let r = &p.queues.iptables[0];
    assert_eq!((r.restore, r.tool), ("iptables-restore", "iptables"));
    let body = &r.to_string();
    assert!(body.starts_with("*mangle\n:MOAT_QUEUE - [0:0]\n") && body.ends_with("\nCOMMIT\n"), "{body}");
    let hooked = r.script(true);
    assert!(hooked.ends_with("--queue-num 4201\n-I POSTROUTING 1 -j MOAT_QUEUE\nCOMMIT\n"), "{hooked}");
    assert_eq!(hooked.len(), body.len() + "-I POSTROUTING 1 -j MOAT_QUEUE\n".len());
    assert_eq!(p.queues.iptables[1].restore, "ip6tables-restore");
    assert_eq!(p.queues.iptables[1].rules, r.rules);
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
    let mut f = facts(false);
    f.interfaces.get_mut("wg0").unwrap().mtu = 1419;
    assert_eq!(build(&readme_model(), &f).unwrap().queues.shaped[0].pad_to, Some(1408));
    let above = conf("", &format!("{DNS4}\n\toption pad_to '1424'"), SHAPED);
    let e = build(&above, &f).unwrap_err();
    assert_eq!(e.len(), 1, "one error per tunnel: {e:?}");
    assert!(e[0].to_string().contains("pad_to 1424 is above the MTU 1419 of wg0"), "{e:?}");
    // Named like the model's errors: the pad_to line (7; the section is line 3), the section and
    // the option.
    assert_eq!(
        e[0].at("t.conf"),
        "t.conf:7: section 'vpn' option 'pad_to': pad_to 1424 is above the MTU 1419 of wg0; padded packets would be \
         dropped (use auto or at most 1408)"
    );
    assert!(e[0].to_string().starts_with("line 7: section 'vpn' option 'pad_to': pad_to 1424 is above"), "{}", e[0]);
    assert!(
        matches!(&e[0], PlanError { line: 7, kind: PlanErrorKind::PadAboveMtu { pad_to: 1424, mtu: 1419, .. }, .. }),
        "{e:?}"
    );
    let small = conf("", &format!("{DNS4}\n\toption pad_to '1008'"), SHAPED);
    assert_eq!(build(&small, &f).unwrap().queues.shaped[0].pad_to, Some(1008));
    // auto on a tiny MTU: below what the shaper can pad to. No pad_to line: the default is at
    // fault, so the error names the section's config line.
    f.interfaces.get_mut("wg0").unwrap().mtu = 32;
    let e = build(&readme_model(), &f).unwrap_err();
    assert!(
        matches!(&e[0], PlanError { line: 3, kind: PlanErrorKind::PadBelowMin { pad_to: 32, mtu: Some(32), .. }, .. }),
        "{e:?}"
    );
    assert!(e[0].at("t.conf").starts_with("t.conf:3: section 'vpn' option 'pad_to': pad_to 32 is below"), "{e:?}");
    assert!(e[0].to_string().contains("below the minimum 40"), "{e:?}");
    // Tunnel absent: auto is unknown, the plan still fails closed (queue rule present).
    f.interfaces.remove("wg0");
    let p = build(&readme_model(), &f).unwrap();
    assert_eq!(p.queues.shaped[0].pad_to, None);
    assert!(p.queues.iptables[0].to_string().contains("--queue-num 4200"));
    assert!(p.notes.iter().any(|n| n.contains("wg0 does not exist")));
    assert!(p.notes.iter().any(|n| n.contains("pad_to is not known until wg0 exists")));
    assert!(!p.nft.contains("maxseg"));
}

#[test]
fn mark_values_are_placed_in_the_mask_bits() {
    // 3 bits suffice for 4 values.
    let m = conf("\toption fwmark_mask '0x70000000'", DNS4, SHAPED);
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!((p.marks.capacity, p.marks.used), (7, 4));
    assert_eq!(p.devices[0].mark, 0x4000_0000);
    assert_eq!(p.classes[2].value, 0x3000_0000);
}

#[test]
fn ipv6_tunnel_gets_v6_rules_and_no_v6_reject() {
    let m = conf("", "\toption dns 'fd00:64::1'\n\toption ipv6 '1'\n\toption cover_dst '10.64.0.1'", SHAPED);
    let p = build(&m, &facts(false)).unwrap();
    assert_eq!(p.rules.len(), 4); // (route + shaped device) x (v4, v6)
    assert_eq!(p.rules[2].family, AF_INET6);
    assert_eq!(p.routes.len(), 4);
    assert!(!p.nft.contains("0x04000000 } meta nfproto ipv6 jump reject_fast"));
    assert!(p.nft.contains("dnat ip6 to fd00:64::1"));
    assert!(p.notes.iter().any(|n| n.contains("dns fd00:64::1 is IPv6")), "{:?}", p.notes);
}

#[test]
fn disabled_config_removes_everything() {
    let p = build(&conf("\toption enabled '0'", DNS4, SHAPED), &facts(false)).unwrap();
    assert_eq!(p.nft, NFT_REMOVE);
    assert_eq!(p.ruleset, ruleset::remove());
    assert!(p.rules.is_empty() && p.routes.is_empty() && p.queues.iptables.is_empty());
}

#[test]
fn disabled_and_direct_devices_are_not_marked() {
    let p = build(&conf("", DNS4, &format!("{SHAPED}\n\toption enabled '0'")), &facts(false)).unwrap();
    assert_eq!(p.devices[0].mark, 0);
    assert_eq!(p.devices[0].route, "disabled");
    assert!(!p.nft.contains("aa:bb:cc:00:11:22"));
    // vpn unused now: no ip rule, 2 routes in use (tor, block), no shaping.
    assert!(p.rules.is_empty());
    assert_eq!(p.classes.len(), 2);
    assert!(p.queues.shaped.is_empty());
}

#[test]
fn dns_on_the_router_itself_is_refused() {
    let m = conf("", "\toption dns '192.168.1.1'", SHAPED);
    let e = build(&m, &facts(false)).unwrap_err();
    assert!(e[0].to_string().contains("address of this router"), "{e:?}");
    assert!(matches!(&e[0], PlanError { kind: PlanErrorKind::DnsIsLocal { .. }, .. }));
    assert_eq!(e[0].option(), "dns");
    // The dns line (6: after type and device of the section on line 3).
    assert!(e[0].at("t.conf").starts_with("t.conf:6: section 'vpn' option 'dns': dns 192.168.1.1 is"), "{e:?}");
    // Wherever the option is: a dns after pad_to.
    let m = conf("", "\toption pad_to '1024'\n\toption dns '192.168.1.1'", SHAPED);
    let e = build(&m, &facts(false)).unwrap_err();
    assert_eq!(e[0].line, 7, "{e:?}");
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
    let text = "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n";
    let m = crate::config::check_bytes("t.conf", text.as_bytes()).into_result().unwrap().model;
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
    let m = conf("", DNS4, "\toption route 'vpn'");
    assert_eq!(build(&m, &facts(false)).unwrap().nft_blocking_shaped(), None);
}

#[test]
fn tunnel_device_must_be_a_tunnel() {
    // device = a lan_device is refused by validation already (not a plan check).
    let lan = "config moat 'main'\n\tlist lan_device 'br-lan'\n\nconfig tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'br-lan'\n";
    assert!(crate::config::check_bytes("t.conf", lan.as_bytes()).into_result().is_err());
    // device = the WAN uplink (carries the main table's default route): refused.
    let mut f = facts(false);
    f.default_route = vec!["wg0".into()];
    let e = build(&readme_model(), &f).unwrap_err();
    assert!(matches!(&e[0], PlanError { kind: PlanErrorKind::DeviceIsUplink { .. }, .. }), "{e:?}");
    assert_eq!(e[0].option(), "device");
    assert!(e[0].message().contains("default route"), "{e:?}");
    // Another device carries it: fine.
    f.default_route = vec!["pppoe-wan".into()];
    assert!(build(&readme_model(), &f).is_ok());
    // An Ethernet link type: a warning only (a tap tunnel is Ethernet too).
    let mut f = facts(false);
    f.interfaces.get_mut("wg0").unwrap().link = Some(1);
    let p = build(&readme_model(), &f).unwrap();
    assert!(p.notes.iter().any(|n| n.contains("wg0 has link type ether, not a tunnel's")), "{:?}", p.notes);
    assert!(!build(&readme_model(), &facts(false)).unwrap().notes.iter().any(|n| n.contains("link type")));
}

#[test]
fn protected_macs_are_marked_on_every_interface_and_reach_only_link_services() {
    let p = build(&readme_model(), &facts(false)).unwrap();
    // classify: by MAC alone, no iifname (guest bridges, VLANs, Wi-Fi outside br-lan).
    assert!(p.nft.contains("\t\tether saddr { aa:bb:cc:00:11:22 } meta mark set"), "{}", p.nft);
    assert!(!p.nft.contains("iifname { \"br-lan\" } ether saddr"));
    // The direct device is never matched.
    assert!(!p.nft.contains("aa:bb:cc:00:11:55"));
    // One allow-list for every protected mark, ending in a reject.
    assert!(p.nft.contains("jump protected_input"));
    let chain = p.nft.split("chain protected_input {").nth(1).unwrap().split("\t}").next().unwrap();
    assert!(chain.contains("meta nfproto ipv4 udp dport 67 return"));
    assert!(chain.contains("meta nfproto ipv6 udp dport 547 return"));
    assert!(chain.contains("nd-neighbor-solicit"));
    assert!(chain.trim_end().ends_with("jump reject_fast comment \"no other router service\""), "{chain}");
    assert!(!chain.contains("dport 53 ") && !chain.contains("853"));
    // Relay packets for the protected MACs only.
    assert!(p.nft.contains("@th,288,48 { 0xaabbcc001122, 0xaabbcc001133, 0xaabbcc001144 } drop"), "{}", p.nft);
}
