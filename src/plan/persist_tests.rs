use super::*;
use crate::netlink::nftables::{Key, Unless};
use crate::plan::facts::{Facts, Iface};

fn plan(extra: &str) -> Plan {
    let text = format!(
        "config moat 'main'\n\tlist lan_device 'br-lan'\n{extra}\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\n\
         config tunnel 'tor'\n\toption type 'tor'\n\n\
         config device\n\toption name 'a'\n\tlist mac '02:00:00:00:00:01'\n\toption route 'vpn'\n\n\
         config device\n\toption name 'b'\n\tlist mac '02:00:00:00:00:02'\n\toption route 'tor'\n\n\
         config device\n\toption name 'c'\n\tlist mac '02:00:00:00:00:03'\n\toption route 'block'\n\n\
         config device\n\toption name 'd'\n\tlist mac '02:00:00:00:00:04'\n\toption route 'direct'\n"
    );
    let model = crate::config::check_bytes("t.conf", text.as_bytes()).into_result().unwrap().model;
    crate::plan::build(&model, &facts()).unwrap()
}

fn facts() -> Facts {
    let mut f = Facts::default();
    f.interfaces.insert("br-lan".into(), Iface { up: true, mtu: 1500, addrs: vec![], link: Some(1) });
    let wg = Iface { up: true, mtu: 1420, addrs: vec![("10.64.0.2".parse().unwrap(), 32)], link: Some(65534) };
    f.interfaces.insert("wg0".into(), wg);
    f
}

#[test]
fn every_protected_mac_gets_the_same_exits_as_inet_moat() {
    let lans = [IfName::new("br-lan").unwrap()];
    let r = kill_rules(&plan(""), &lans, &facts());
    let for_mac = |last: u8| -> Vec<&Unless> {
        r.iter().filter(|k| k.key == Key::Mac([2, 0, 0, 0, 0, last])).map(|k| &k.unless).collect()
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let dhcp = Unless::Dport { l4proto: 17, ports: vec![67, 547] };
    let no_tcp = Unless::Dport { l4proto: 6, ports: vec![] };
    assert_eq!(for_mac(1), [&Unless::Oif(s(&["wg0"])), &no_tcp, &dhcp], "vpn: the tunnel only");
    let tor = for_mac(2);
    assert_eq!(tor[0], &Unless::Oif(vec![]), "tor forwards nothing");
    assert!(matches!(tor[1], Unless::Dport { l4proto: 6, ports } if ports.len() == 1), "TransPort");
    assert!(matches!(tor[2], Unless::Dport { l4proto: 17, ports } if ports.len() == 3), "DHCP + DNSPort");
    assert_eq!(for_mac(3), [&Unless::Oif(s(&["br-lan"])), &no_tcp, &dhcp], "block: LAN only");
    assert!(for_mac(4).is_empty(), "direct devices are not touched");
    let out: Vec<_> = r.iter().filter(|k| matches!(k.key, Key::Source(_))).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, Key::Source("10.64.0.2".parse().unwrap()));
    assert_eq!(out[0].unless, Unless::Oif(s(&["wg0", "lo", "br-lan"])));
}

#[test]
fn nothing_protected_or_disabled_means_no_table() {
    let lans = [IfName::new("br-lan").unwrap()];
    assert!(kill_rules(&plan("\toption enabled '0'"), &lans, &facts()).is_empty());
}
