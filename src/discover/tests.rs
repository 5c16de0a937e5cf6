//! Discovery tests on files of the test's own (never the host's lease files).

use super::*;

const CONFIG: &str = "config moat 'main'\n\tlist lan_device 'br-lan'\n\
config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\
config device 'cam'\n\toption name 'Camera'\n\tlist mac '02:00:00:00:01:0a'\n\toption route 'vpn'\n\
config device 'plug'\n\toption name 'Plug'\n\tlist mac '02:00:00:00:01:0b'\n\toption route 'block'\n\toption enabled '0'\n";

fn model() -> Model {
    crate::config::check_bytes("t", CONFIG.as_bytes()).into_result().unwrap().model
}

fn sources(dir: &std::path::Path) -> Sources {
    std::fs::write(
        dir.join("leases"),
        "1764620000 02:00:00:00:01:0a 192.168.1.10 cam *\n0 02:00:00:00:01:0c 192.168.1.12 laptop *\n",
    )
    .unwrap();
    std::fs::write(dir.join("odhcpd"), "# br-lan 00030001020000000 1 x 1 1 128 fd00::1/128\n# br-lan 00030001020000000a0a 1 cam6 -1 1 128 fd00::a/128\n").unwrap();
    Sources { dnsmasq: dir.join("leases"), odhcpd: dir.join("odhcpd"), neighbours: false, lan: vec![] }
}

#[test]
fn leases_merge_by_mac_with_protection() {
    let dir = std::env::temp_dir().join(format!("moat-discover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (clients, notes) = collect(&sources(&dir), 1_764_600_000);
    assert!(notes.is_empty(), "{notes:?}");
    let macs: Vec<String> = clients.iter().map(|c| c.mac.to_string()).collect();
    assert_eq!(macs, ["02:00:00:00:01:0a", "02:00:00:00:01:0c", "02:00:00:00:0a:0a"]);
    assert_eq!(clients[0].hostname.as_deref(), Some("cam"));
    assert_eq!(clients[0].sources, ["dhcp"]);
    let m = model();
    let p = protection(&m, &clients[0].mac).unwrap();
    assert_eq!((p.section.as_str(), p.route.as_str(), p.protects()), ("cam", "vpn", true));
    assert!(protection(&m, &clients[1].mac).is_none());
    let plug = protection(&m, &Mac::parse("02:00:00:00:01:0b").unwrap()).unwrap();
    assert!(!plug.protects());
    let j: serde_json::Value = serde_json::from_str(&render_json(&clients, &notes, Some(&m))).unwrap();
    assert_eq!(j["devices"][0]["protected"], true);
    assert_eq!(j["devices"][0]["protection"]["route"], "vpn");
    assert_eq!(j["devices"][1]["protection"], serde_json::Value::Null);
    let t = table(&clients, Some(&m), 1_764_600_000);
    assert!(t.contains("Camera -> vpn") && t.contains("laptop"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_sources_are_notes_not_errors() {
    let s =
        Sources { dnsmasq: "/nonexistent/a".into(), odhcpd: "/nonexistent/b".into(), neighbours: false, lan: vec![] };
    let (c, notes) = collect(&s, 0);
    assert!(c.is_empty());
    assert_eq!(notes.len(), 2);
}
