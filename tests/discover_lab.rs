//! Device discovery and the rpcd plugin in the lab (root, namespaces): a real dnsmasq hands a
//! DHCP lease to one device (busybox udhcpc, with a hostname), another device pings the router
//! and so becomes a kernel neighbour; `moat devices --json` and the plugin script run inside the
//! router namespace exactly as rpcd runs it (`list`, then `call devices` with JSON on stdin) must
//! report both with the right MAC, address, hostname, source and protection.

mod lab;

use lab::*;
use std::path::Path;

fn plugin() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("openwrt/luci-app-moat/root/usr/libexec/rpcd/luci.moat")
        .display()
        .to_string()
}

#[test]
fn leases_and_neighbours_are_discovered_with_their_protection() {
    let lab = Lab::start(
        "discover",
        Options { devices: vec![DeviceSpec::new("speaker"), DeviceSpec::new("laptop")], tor: false, fw4: false },
    );
    let (speaker, laptop) = (lab.dev("speaker").clone(), lab.dev("laptop").clone());
    let leases = lab.dhcp_server();
    let leases_s = leases.display().to_string();
    let got_lease = lab.dhcp_lease(&speaker, "speaker", &leases);
    assert!(got_lease, "no lease from dnsmasq: {}", lab.proc_log("dnsmasq"));
    lab.must(&laptop.ns, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &ROUTER_LAN4.to_string()]);

    let config = lab.dir.join("moat.config");
    std::fs::write(
        &config,
        format!(
            "config moat 'main'\n\tlist lan_device 'br-lan'\n\
             config device 'spk'\n\toption name 'Speaker'\n\tlist mac '{}'\n\toption route 'block'\n",
            speaker.mac
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let bin = moat_bin().display().to_string();
    let out = lab.must(
        &lab.router,
        &[&bin, "devices", "--json", "--leases", &leases_s, "--odhcpd", "/nonexistent", "--config", &cfg],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let find = |v: &serde_json::Value, mac: &str| {
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"] == mac)
            .cloned()
            .unwrap_or_else(|| panic!("{mac} not found in {v}"))
    };
    let s = find(&v, &speaker.mac);
    assert_eq!(s["hostname"], "speaker", "{s}");
    assert!(s["sources"].as_array().unwrap().contains(&"dhcp".into()), "{s}");
    let lease_ip = s["addresses"][0].as_str().unwrap().to_string();
    assert!(lease_ip.starts_with("192.168.77.1") && lease_ip != speaker.ip4.to_string(), "{s}");
    assert_eq!(s["protected"], true, "{s}");
    assert_eq!(s["protection"]["route"], "block", "{s}");
    let l = find(&v, &laptop.mac);
    assert!(l["sources"].as_array().unwrap().contains(&"neigh".into()), "{l}");
    assert!(l["addresses"].as_array().unwrap().contains(&laptop.ip4.to_string().into()), "{l}");
    assert_eq!(l["interface"], "br-lan", "{l}");
    assert_eq!(l["protected"], false, "{l}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(l["last_seen"].as_u64().is_some_and(|t| t + 60 >= now && t <= now + 1), "{l}");

    // The plugin, as rpcd runs it: `list` with stdin from /dev/null, then `call METHOD` with JSON on stdin.
    let vars = [
        format!("MOAT_BIN={bin}"),
        format!("MOAT_CONFIG={cfg}"),
        format!("MOAT_DHCP_LEASES={leases_s}"),
        "MOAT_ODHCPD_LEASES=/nonexistent".to_string(),
        format!("MOAT_STATE_DIR={}", lab.dir.join("state").display()),
    ];
    let p = plugin();
    let run = |tail: &[&str], stdin: Option<&str>| {
        let mut full = vec!["ip", "netns", "exec", lab.router.as_str(), "env"];
        full.extend(vars.iter().map(String::as_str));
        full.push(p.as_str());
        full.extend_from_slice(tail);
        let out = lab.exec(&full, stdin).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let list = run(&["list"], None);
    assert!(list["devices"].is_object() && list["status"].is_object(), "{list}");
    let v = run(&["call", "devices"], Some("{}"));
    assert_eq!(find(&v, &speaker.mac)["hostname"], "speaker");
    assert!(find(&v, &laptop.mac)["sources"].as_array().unwrap().contains(&"neigh".into()));
    assert_eq!(v["configured"][0]["seen"], true, "{v}");
    let st = run(&["call", "status"], Some("{}"));
    assert_eq!(st["running"], false, "no daemon runs in this test: {st}");
    let bad = run(&["call", "devices"], Some("{\"devices\": ["));
    assert_eq!(bad["code"], "invalid_json", "{bad}");
}
