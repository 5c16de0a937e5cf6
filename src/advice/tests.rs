//! Unit tests of the advice, on the fixtures in `tests/fwcheck/`.

use super::marks::{free_mask, parse_mask};
use super::zones::iface_devices;
use super::*;
use crate::config::uci::{parse, OptionValue, UciOption, Value};
use crate::config::{MWAN3_MARK_MASK, PBR_MARK_MASK};

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
    crate::config::from_uci("moat", &pkg(text)).unwrap_or_else(|e| panic!("moat config: {e:#?}")).model
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
            pk.sections.push(Section {
                stype: t.to_string(),
                name: None,
                line: 0,
                options: Vec::new(),
                redeclared: Vec::new(),
            });
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
    assert_eq!(w[0].fix, ["uci set firewall.@zone[2].masq='1'", "uci commit firewall", "/etc/init.d/firewall reload"]);
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

#[test]
fn lan_side_interfaces_not_in_lan_device_are_named() {
    let fw = format!(
        "{FW_DEFAULT}\nconfig zone\n\toption name 'guest'\n\tlist network 'guest'\n\toption input 'REJECT'\n\
         \toption forward 'REJECT'\n\nconfig forwarding\n\toption src 'guest'\n\toption dest 'wan'\n"
    );
    let net = format!(
        "{NET_DEFAULT}\nconfig device\n\toption name 'br-guest'\n\toption type 'bridge'\n\n\
         config interface 'guest'\n\toption device 'br-guest'\n\toption proto 'static'\n"
    );
    let w = check(&home(""), Some(&pkg(&fw)), Some(&pkg(&net)), None, None);
    let hit: Vec<&Warning> = w.iter().filter(|w| w.message.contains("not a lan_device")).collect();
    assert_eq!(hit.len(), 1, "{w:#?}");
    assert!(hit[0].message.starts_with("interface br-guest (firewall zone 'guest') is on the LAN side"), "{hit:?}");
    assert_eq!(hit[0].fix[0], "uci add_list moat.@moat[0].lan_device='br-guest'");
    // Listed: no warning; the default firewall alone: none either (br-lan is the lan_device).
    let listed = home("\tlist lan_device 'br-guest'\n");
    let w = check(&listed, Some(&pkg(&fw)), Some(&pkg(&net)), None, None);
    assert!(!w.iter().any(|w| w.message.contains("not a lan_device")), "{w:#?}");
    let w = check(&home(""), Some(&pkg(FW_DEFAULT)), Some(&pkg(NET_DEFAULT)), None, None);
    assert!(!w.iter().any(|w| w.message.contains("not a lan_device")), "{w:#?}");
}
