//! The LuCI app in a real browser (Debian's chromium, driven by playwright-core from npm) against
//! a real lab: `moat run` in the router namespace with a shaped device sending through the real
//! WireGuard tunnel, a real dnsmasq lease for a second device and a real neighbour entry for a
//! third. The views are the app's own files, loaded into the project's harness of LuCI's client
//! API (tests/browser/harness/); every `rpc` call is answered by the real plugin script, `uci` is
//! the lab's real config file. The driver (tests/browser/run.js) screenshots every page into
//! `target/luci-screenshots/`, clicks "Protect" on the leased device, saves and applies; then
//! this test checks that the config holds a valid device section (`moat check` exit 0) and,
//! after the reload procd's trigger would send (SIGHUP), that the daemon's status protects it.
//! Needs root, chromium and tests/browser/node_modules (scripts/install-deps.sh installs both).

mod lab;

use lab::*;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

#[test]
fn protect_a_discovered_device_in_the_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = root.join("tests/browser/run.js");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && root.join("tests/browser/node_modules/playwright-core").exists(),
        "chromium ({chromium}) or tests/browser/node_modules/playwright-core is missing: run scripts/install-deps.sh"
    );
    let lab = Lab::start(
        "luci",
        Options {
            devices: vec![DeviceSpec::new("speaker"), DeviceSpec::new("laptop"), DeviceSpec::new("camera")],
            tor: false,
            fw4: true,
        },
    );
    let (speaker, laptop, camera) = (lab.dev("speaker").clone(), lab.dev("laptop").clone(), lab.dev("camera").clone());

    // Discovery sources: a DHCP lease for the camera, a neighbour entry for the laptop.
    let leases = lab.dhcp_server();
    let leases_s = leases.display().to_string();
    let leased = lab.dhcp_lease(&camera, "camera", &leases);
    assert!(leased, "no lease: {}", lab.proc_log("dnsmasq"));
    lab.must(&laptop.ns, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &ROUTER_LAN4.to_string()]);

    // The daemon: the speaker protected through the tunnel and shaped (constant 50 packets/s).
    let mut config = moat_config(&lab, &[(&speaker, "vpn")]);
    let mac_line = format!("\tlist mac '{}'\n\toption route 'vpn'\n", speaker.mac);
    config = config.replace(&mac_line, &format!("{mac_line}\toption shaper 'steady'\n"));
    config.push_str("config shaper 'steady'\n\toption mode 'constant'\n\toption rate '50'\n");
    lab.start_moat(&config);
    let cfg_path = lab.dir.join("moat.conf");
    let state = lab.dir.join("moat-state");
    let bin = moat_bin().display().to_string();
    let plugin = root.join("openwrt/luci-app-moat/root/usr/libexec/rpcd/luci.moat").display().to_string();
    let env = [
        format!("MOAT_BIN={bin}"),
        format!("MOAT_CONFIG={}", cfg_path.display()),
        format!("MOAT_STATE_DIR={}", state.display()),
        format!("MOAT_DHCP_LEASES={leases_s}"),
        "MOAT_ODHCPD_LEASES=/nonexistent".to_string(),
    ];
    // The plugin as rpcd runs it (`call METHOD`, JSON on stdin), in the router namespace.
    let call = |method: &str| -> serde_json::Value {
        let mut a = vec!["ip", "netns", "exec", lab.router.as_str(), "env"];
        a.extend(env.iter().map(String::as_str));
        a.extend([plugin.as_str(), "call", method]);
        let o = lab.exec(&a, Some("{}")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&o).unwrap_or_else(|e| panic!("{e}: {o}"))
    };
    let speaker_counters = |st: &serde_json::Value| {
        let d = st["devices"].as_array().unwrap().iter().find(|d| d["name"] == "speaker").cloned().unwrap();
        (d["counters"]["real_bytes_up"].as_u64().unwrap_or(0), d["counters"]["wire_bytes_up"].as_u64().unwrap_or(0), d)
    };
    // The constant shaper's first cover packets make WireGuard's first handshake; the daemon
    // rewrites its status every STATUS_EVERY (2 s), so until then it rightly says "no handshake
    // yet". Wait a few rewrites for the handshake to show (a daemon that never reports it fails).
    let handshaken = || {
        let st = call("status");
        st["devices"]
            .as_array()
            .is_some_and(|ds| ds.iter().any(|d| d["name"] == "speaker" && d["state"] == "protected (tunnel up)"))
    };
    lab.wait_for("the first handshake in the plugin's status", moat::daemon::STATUS_EVERY * 5, handshaken);
    let st0 = call("status");
    assert_eq!(st0["running"], true, "{st0}");
    let (real0, wire0, d0) = speaker_counters(&st0);
    assert_eq!(d0["state"], "protected (tunnel up)", "{d0}");
    assert_eq!((d0["shaper"].as_str(), d0["shaping_mode"].as_str()), (Some("steady"), Some("constant")), "{d0}");
    // Real traffic from the shaped device, so the graph has spikes over the constant wire rate.
    for _ in 0..3 {
        let _ = lab.tcp_echo(&speaker, SocketAddr::new(IpAddr::V4(INTERNET4), 7), 20_000, Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(700));
    }
    let st1 = call("status");
    let (real1, wire1, _) = speaker_counters(&st1);
    assert!(real1 > real0 && wire1 > wire0 && wire1 >= real1, "counters move: {real0}/{wire0} -> {real1}/{wire1}");
    let tun = &st1["tunnels"].as_array().unwrap().iter().find(|t| t["name"] == "vpn").cloned().unwrap();
    assert_eq!(tun["up"], true, "{tun}");
    assert!(tun["handshake_age"].as_u64().is_some_and(|a| a < 180), "a WireGuard handshake happened: {tun}");
    let series = call("series");
    let real: u64 = series["devices"]["speaker"]["real"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).sum();
    let wire: u64 = series["devices"]["speaker"]["wire"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).sum();
    assert!(real > 0 && wire > real, "series: {series}");
    let cfg_env = format!("MOAT_CONFIG={}", cfg_path.display());
    let state_s = state.display().to_string();
    let table = lab.must(&lab.router, &["env", &cfg_env, &bin, "status", "--table", "--state-dir", &state_s]);
    assert!(
        table.lines().any(|l| l.starts_with("speaker")
            && l.contains("protected (tunnel up)")
            && l.contains("steady (constant)")),
        "{table}"
    );
    eprintln!("{table}");
    eprintln!(
        "plugin: speaker real {real1} B, on the wire {wire1} B; series sums real {real} wire {wire}; tunnel {tun}"
    );

    let out = root.join("target/luci-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let vars = [
        format!("MOAT_BIN={bin}"),
        format!("MOAT_CONFIG={}", cfg_path.display()),
        format!("MOAT_STATE_DIR={}", state.display()),
        format!("MOAT_DHCP_LEASES={leases_s}"),
        "MOAT_ODHCPD_LEASES=/nonexistent".to_string(),
        format!("MOAT_BROWSER_OUT={}", out.display()),
        format!("MOAT_PROTECT_MAC={}", camera.mac),
        format!("CHROMIUM={chromium}"),
        "HOME=/tmp".to_string(),
    ];
    let d = driver.display().to_string();
    let mut args = vec!["ip", "netns", "exec", lab.router.as_str(), "env"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(["timeout", "100", "node", d.as_str()]);
    let res =
        lab.exec(&args, None).unwrap_or_else(|e| panic!("browser driver failed: {e}\nlab dir {}", lab.dir.display()));
    let r: serde_json::Value =
        serde_json::from_str(res.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {res}"));
    eprintln!("browser: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["prefilled"]["name"], "camera", "{r}");
    assert_eq!(r["prefilled"]["mac"], camera.mac.as_str(), "{r}");
    assert!(r["status_devices"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["polled"].as_u64().unwrap() >= 2, "poll refreshed the status: {r}");
    let pts = r["status_graph_points"].as_array().unwrap();
    assert!(!pts.is_empty() && pts[0].as_u64().unwrap() >= 2, "a live graph with data: {r}");
    assert!(r["overview_rows"].as_array().unwrap().iter().any(|x| x.as_str().unwrap().contains("speaker")), "{r}");
    for s in r["screenshots"].as_array().unwrap() {
        assert!(std::fs::metadata(s.as_str().unwrap()).unwrap().len() > 5000, "{s}");
    }

    // The config now holds a valid device section for the camera...
    let loaded = moat::config::load_file(&cfg_path).unwrap_or_else(|e| panic!("{e:?}"));
    let dev = loaded.model.devices.iter().find(|d| d.macs.iter().any(|m| m.to_string() == camera.mac));
    let dev = dev.unwrap_or_else(|| {
        panic!("no device section for {}: {}", camera.mac, std::fs::read_to_string(&cfg_path).unwrap())
    });
    assert_eq!(dev.name, "camera");
    assert_eq!(dev.route, moat::config::Route::Tunnel(moat::config::Name::new("vpn").unwrap()));
    lab.must(&lab.router, &[&bin, "check", "--config", &cfg_path.display().to_string()]);

    // ...and after the reload procd would trigger, the running daemon protects it.
    lab.signal("moat", libc::SIGHUP);
    let protected = lab.wait_for("the daemon protects the camera", Duration::from_secs(15), || {
        let st = std::fs::read_to_string(state.join("status.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_default();
        v["devices"].as_array().into_iter().flatten().any(|d| {
            d["macs"].as_array().is_some_and(|m| m.iter().any(|x| x == camera.mac.as_str()))
                && d["state"] == "protected (tunnel up)"
        })
    });
    assert!(protected, "status: {}", std::fs::read_to_string(state.join("status.json")).unwrap_or_default());
}
