//! Self-checks of the lab itself, without moat: the topology carries traffic, the observer
//! sees clear traffic (so the leak analysis can fail), hand-made routing into WireGuard works
//! with intact data, tor accepts redirected clients, and teardown leaves nothing behind even
//! when a test panics. Needs root. See scripts/test.sh for how lab tests are run.

mod lab;

use lab::*;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

#[test]
fn direct_device_reaches_the_internet_and_the_observer_sees_it() {
    let lab = Lab::start("selftest-direct", Options { tor: false, ..Default::default() });
    let d = lab.dev("laptop").clone();
    let cap = lab.capture_wan("direct");
    lab.tcp_echo(&d, sa(INTERNET4, 7), 256 * 1024, T).expect("tcp echo v4");
    lab.udp_echo(&d, sa(INTERNET4, 7), 1200, T).expect("udp echo v4");
    lab.tcp_echo(&d, sa(INTERNET6, 80), 32 * 1024, T).expect("tcp echo v6");
    assert_eq!(lab.dig(&d, RESOLVER4.into(), 53, &d.names[0], false).unwrap(), vec![IpAddr::from(INTERNET4)]);
    assert_eq!(
        lab.dig(&d, ROUTER_LAN4.into(), 53, &d.names[1], true).unwrap(),
        vec![IpAddr::from(INTERNET4)],
        "router forwarder over tcp"
    );
    let pkts = lab.stop_capture(cap);
    let rep = lab.analyze(&pkts, &d);
    // The observer must see all of it in the clear: this is what a leak looks like.
    assert!(rep.destinations.contains_key("203.0.113.10:7/tcp"), "{}", rep.summary());
    assert!(rep.destinations.contains_key("203.0.113.10:7/udp"), "{}", rep.summary());
    assert!(rep.destinations.contains_key("[2001:db8:ffff::10]:80/tcp"), "{}", rep.summary());
    assert!(rep.dns_names.contains(&d.names[0]) && rep.dns_names.contains(&d.names[1]), "{}", rep.summary());
    assert!(rep.leaks.iter().any(|l| l.contains("IPv6 of the device")), "{}", rep.summary());
    assert!(lab.router_dns.lock().unwrap().contains(&d.names[1]));
    assert!(lab.outside_dns.lock().unwrap().contains(&d.names[1]), "router forwarded upstream");
}

#[test]
fn hand_routed_device_goes_through_wireguard_and_leaks_without_a_kill_switch() {
    let lab = Lab::start("selftest-wg", Options { tor: false, ..Default::default() });
    let d = lab.dev("speaker").clone();
    lab.route_by_hand(&d);
    let cap = lab.capture_wan("tunnel");
    lab.tcp_echo(&d, sa(INTERNET4, 7), 300 * 1024, T).expect("tcp echo through wg");
    lab.udp_echo(&d, sa(INTERNET4, 443), 1200, T).expect("udp echo through wg");
    assert_eq!(lab.dig(&d, VPN_TUNNEL4.into(), 53, &d.names[0], false).unwrap(), vec![IpAddr::from(INTERNET4)]);
    assert_eq!(
        lab.dig(&d, RESOLVER4.into(), 53, &d.names[1], true).unwrap(),
        vec![IpAddr::from(INTERNET4)],
        "outside resolver via tunnel, tcp"
    );
    let pkts = lab.stop_capture(cap);
    let rep = lab.analyze(&pkts, &d);
    assert!(rep.wireguard > 100, "the transfer should be WireGuard packets: {}", rep.summary());
    assert!(rep.leaks.is_empty(), "hand routing (v4 only, no DNS to router) should be clean:\n{}", rep.summary());
    assert!(lab.tunnel_dns.lock().unwrap().contains(&d.names[0]));
    assert!(lab.outside_dns.lock().unwrap().contains(&d.names[1]), "reached through the VPN server");

    // Take the tunnel down: without a kill switch the device's packets leave in the clear.
    lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "down"]);
    let cap = lab.capture_wan("down");
    let _ = lab.attempt(&d, Traffic::Tcp, Duration::from_secs(1));
    let _ = lab.attempt(&d, Traffic::DnsOutside, Duration::from_secs(1));
    let pkts = lab.stop_capture(cap);
    let rep = lab.analyze(&pkts, &d);
    assert!(rep.leaks.iter().any(|l| l.contains("internet host in the clear")), "{}", rep.summary());
    assert!(rep.dns_names.contains(Traffic::DnsOutside.name_of(&d.names)), "{}", rep.summary());
}

#[test]
fn tor_accepts_redirect_targets() {
    let lab = Lab::start("selftest-tor", Options::default());
    let d = lab.dev("speaker").clone();
    // Direct to tor's ports on the router (moat would redirect there): tor accepts the TCP
    // connection and logs the DNS question with its name.
    let r = lab::in_ns(&d.ns, || std::net::TcpStream::connect_timeout(&sa(ROUTER_LAN4, TOR_TRANS_PORT), T).map(|_| ()));
    r.expect("connect to tor's TransPort");
    let _ = lab.dig(&d, ROUTER_LAN4.into(), TOR_DNS_PORT, &d.names[0], false);
    let ok = lab.wait_for("tor logs the DNS request", T, || lab.tor_log().contains(&d.names[0]));
    assert!(ok, "tor log:\n{}", lab.tor_log());
}

#[test]
fn teardown_removes_everything_even_on_panic() {
    let mut ids = Vec::new();
    let r = std::panic::catch_unwind(|| {
        let lab = Lab::start("selftest-panic", Options { tor: true, devices: vec![DeviceSpec::new("x")], fw4: true });
        let id = (lab.id.clone(), lab.wg_router.clone(), lab.wg_server.clone());
        std::fs::write("/tmp/.moat-lab-selftest-id", format!("{}\n{}\n{}", id.0, id.1, id.2)).unwrap();
        panic!("deliberate panic inside a lab test");
    });
    assert!(r.is_err());
    let s = std::fs::read_to_string("/tmp/.moat-lab-selftest-id").unwrap();
    let _ = std::fs::remove_file("/tmp/.moat-lab-selftest-id");
    ids.extend(s.lines().map(String::from));
    let list =
        String::from_utf8(std::process::Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    assert!(!list.contains(&ids[0]), "namespaces left behind:\n{list}");
    for w in &ids[1..] {
        assert!(!std::path::Path::new(&format!("/var/run/wireguard/{w}.sock")).exists(), "{w} socket left behind");
    }
    let ps =
        String::from_utf8(std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap().stdout).unwrap();
    for w in &ids[1..] {
        assert!(!ps.lines().any(|l| l.contains(w.as_str())), "wireguard-go {w} still running");
    }
    assert!(!ps.lines().any(|l| l.contains(&ids[0])), "a process of {} still running", ids[0]);
}
