//! The leak matrix (issue 3, "Proof — leak matrix"): for a protected route (`vpn`, `tor`,
//! `block`) and a fault, a device generates every kind of traffic ([`Traffic::ALL`]: TCP, UDP,
//! ICMP, DNS to the router / to an outside resolver / over TCP, DoT, QUIC, IPv6) to the
//! internet host's addresses and names while the observer captures the WAN link and the fault
//! is applied. Pass = zero packets on the WAN that belong to the device outside the tunnel
//! ([`WanReport`]). Used by `tests/leak_*.rs`.

use super::*;

/// A fault applied while the protected device's traffic runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: steady state.
    None,
    /// `ip link set <wg> down`, wait, `up` again.
    TunnelDownUp,
    /// wireguard-go SIGKILLed (its interface disappears), then started and configured again.
    WireguardKilled,
    /// moat SIGKILLed; traffic keeps running while it is dead; then started again.
    MoatSigkill,
    /// moat stopped (SIGTERM) and started right away, as `service moat restart` does.
    MoatRestart,
    /// The config changes (another device changes route) and moat gets SIGHUP.
    ReloadChanged,
    /// The config becomes invalid and moat gets SIGHUP: nothing may change.
    ReloadInvalid,
    /// fw4's ruleset is loaded again (`fw4 reload` replaces `inet fw4`).
    Fw4Reload,
    /// Beyond issue 3's list: the protected device itself moves to another protected route
    /// (vpn -> tor -> block -> vpn) by a reload, and back.
    ReloadSwitchRoute,
    /// Beyond issue 3's list: six SIGHUPs 100 ms apart, alternating two valid configs.
    ReloadStorm,
    /// Beyond issue 3's list: three times, the config is truncated in place, moat gets SIGHUP
    /// while the file is empty, and the same config is written 30 ms later (a slow `>`
    /// redirect): no reload may apply the empty file.
    ReloadTornWrite,
    /// Beyond issue 3's list (the boot race pbr users hit): the tunnel interface does not exist
    /// yet when moat starts; it appears later.
    TunnelAbsentAtStart,
    /// Beyond issue 3's list: moat SIGKILLed, then the tunnel goes down and up while nobody
    /// re-adds its route; then moat is started again.
    MoatDeadTunnelFlap,
    /// Beyond issue 3's list: `fw4 restart` (LuCI's firewall restart): `nft delete table inet
    /// fw4`, then fw4's ruleset again. While fw4 is gone every hook accepts: only moat's own
    /// guards stand between the protected device and the WAN.
    Fw4Restart,
    /// Beyond issue 3's list: `service firewall stop` + `start` on OpenWrt. firewall4's init
    /// script stops with `fw4 flush`, which deletes EVERY nft table (moat's too), then `fw4
    /// start` loads fw4's ruleset again.
    FirewallStopStart,
    /// Issue 10 point 7: twenty firewall flushes in a row while the device sends, alternating
    /// fw4's table-by-table deletion and `nft flush ruleset`, each followed by fw4's ruleset;
    /// only `table inet moat_persist` (owned by the running daemon, Linux 6.9+) is left standing.
    FirewallFlush20,
}

/// `fw4 flush`: `nft list tables | while read dummy family table; do nft delete table …` (an
/// owned table refuses with EPERM, which fw4's loop ignores too).
fn fw4_flush(lab: &Lab) {
    let tables = lab.must(&lab.router, &["nft", "list", "tables"]);
    for l in tables.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 && f[0] == "table" {
            let _ = lab.ns(&lab.router, &["nft", "delete", "table", f[1], f[2]]);
        }
    }
}

/// Whether `route` is the WireGuard route (`vpn`; `vpn6`: the same tunnel with `ipv6 '1'`;
/// `vpnshaped`: the same route with a constant-rate shaper on the device).
pub fn is_vpn(route: &str) -> bool {
    matches!(route, "vpn" | "vpn6" | "vpnshaped")
}

/// The moat config for the speaker on `speaker` and the laptop on `laptop` (`vpn6` = route
/// `vpn` with the tunnel's `ipv6 '1'`; `vpnshaped` = route `vpn` with shaper `lab`, constant
/// 200 packets/s, so the device's tunnel traffic goes through moat's queue).
pub fn config_for(lab: &Lab, speaker: &str, laptop: &str) -> String {
    let map = |r: &str| if is_vpn(r) { "vpn".to_string() } else { r.to_string() };
    let (s, l) = (map(speaker), map(laptop));
    let mut text = moat_config_v6(
        lab,
        &[(lab.dev("speaker"), &s), (lab.dev("laptop"), &l)],
        speaker == "vpn6" || laptop == "vpn6",
    );
    if speaker == "vpnshaped" {
        let mac = format!("\tlist mac '{}'\n\toption route 'vpn'\n", lab.dev("speaker").mac);
        assert!(text.contains(&mac));
        text = text.replace(&mac, &format!("{mac}\toption shaper 'lab'\n"));
        text.push_str("config shaper 'lab'\n\toption mode 'constant'\n\toption rate '200'\n");
    }
    text
}

/// Bytes of the TCP echo that proves the vpn path works (several full-size segments).
fn probe_len(_route: &str) -> usize {
    4096
}

/// The next protected route (for [`Fault::ReloadSwitchRoute`]).
fn other_route(route: &str) -> &'static str {
    match route {
        "vpn" | "vpn6" | "vpnshaped" => "tor",
        "tor" => "block",
        _ => "vpn",
    }
}

/// Time the device's traffic runs before and after a fault.
const SETTLE: Duration = Duration::from_millis(1200);
/// How long a fault's "broken" phase lasts (tunnel down, moat dead, …).
const BROKEN: Duration = Duration::from_millis(2000);
/// Functional wait for recovery (a tunnel back up, moat restarted); not a performance figure.
const RECOVER: Duration = Duration::from_secs(20);

/// The device under test and a bystander (a `direct` laptop); tor runs when `tor`.
pub fn matrix_lab(label: &str, tor: bool) -> Lab {
    Lab::start(label, Options { devices: vec![DeviceSpec::new("speaker"), DeviceSpec::new("laptop")], tor, fw4: true })
}

/// The config of the matrix: speaker on `route`, laptop direct.
pub fn matrix_config(lab: &Lab, route: &str) -> String {
    config_for(lab, route, "direct")
}

/// Proof that the protected path works before a fault is applied, so a matrix cell can not
/// pass just because nothing worked at all.
pub fn assert_route_works(lab: &Lab, route: &str) {
    let d = lab.dev("speaker").clone();
    match route {
        "vpn" | "vpn6" | "vpnshaped" => {
            let ok = lab.wait_for("vpn device reaches the internet host through the tunnel", RECOVER, || {
                lab.tcp_echo(&d, SocketAddr::new(IpAddr::V4(INTERNET4), 7), probe_len(route), Duration::from_secs(2))
                    .is_ok()
            });
            assert!(
                ok,
                "vpn device cannot reach the internet host through the tunnel (moat log:\n{})",
                lab.proc_log("moat")
            );
            if route == "vpn6" {
                lab.tcp_echo(&d, SocketAddr::new(IpAddr::V6(INTERNET6), 80), 64 * 1024, Duration::from_secs(3))
                    .expect("with ipv6 '1' the device's IPv6 goes through the tunnel");
            }
        }
        "tor" => {
            let r = in_ns(&d.ns, || {
                TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(INTERNET4), 80), Duration::from_secs(3))
            });
            assert!(r.is_ok(), "tor device's TCP connection was not accepted (by tor): {r:?}");
        }
        "block" => {
            lab.ns(&d.ns, &["ping", "-n", "-c", "1", "-W", "2", &ROUTER_LAN4.to_string()])
                .expect("block device can ping the router");
        }
        _ => {}
    }
}

/// Run one cell of the matrix and assert it is leak-free.
pub fn run(route: &str, fault: Fault) {
    let label = format!("{route}-{fault:?}").to_lowercase();
    let switching = fault == Fault::ReloadSwitchRoute;
    let lab = matrix_lab(&label, route == "tor" || (switching && other_route(route) == "tor"));
    let cfg = matrix_config(&lab, route);
    if fault == Fault::TunnelAbsentAtStart {
        lab.kill_wg_router();
        lab.start_moat(&cfg);
    } else {
        lab.start_moat(&cfg);
        assert_route_works(&lab, route);
    }
    let d = lab.dev("speaker").clone();

    let cap = lab.capture_wan(&label);
    // A persistent connection (through the tunnel for vpn, to tor for tor, none for block) whose
    // server keeps sending across the fault: its late packets test the router's own replies.
    let held = lab.hold_connection(&d);
    let traffic = lab.traffic(&d, &Traffic::ALL);
    thread::sleep(SETTLE);
    lab.note(&format!("=== fault {fault:?} ==="));
    let mut problems: Vec<String> = Vec::new();
    match fault {
        Fault::None => thread::sleep(BROKEN),
        Fault::TunnelDownUp => {
            lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "down"]);
            thread::sleep(BROKEN);
            lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "up"]);
        }
        Fault::WireguardKilled => {
            lab.kill_wg_router();
            thread::sleep(BROKEN);
            lab.start_wg_router();
        }
        Fault::MoatSigkill => {
            let before = lab.moat_ruleset();
            lab.kill("moat", libc::SIGKILL);
            thread::sleep(BROKEN);
            if lab.moat_ruleset() != before {
                problems.push("moat's table changed after SIGKILL".into());
            }
            lab.start_moat(&cfg);
        }
        Fault::MoatRestart => {
            lab.kill("moat", libc::SIGTERM);
            lab.start_moat(&cfg);
        }
        Fault::ReloadChanged => {
            let before = lab.moat_ruleset();
            let changed = config_for(&lab, route, "block");
            lab.write_moat_config(&changed);
            lab.signal("moat", libc::SIGHUP);
            let ok = lab.wait_for("ruleset changed by reload", RECOVER, || {
                lab.moat_ruleset().is_some() && lab.moat_ruleset() != before
            });
            if !ok {
                problems.push(format!(
                    "reload with a changed config did not change the ruleset (moat log:\n{})",
                    lab.proc_log("moat")
                ));
            }
        }
        Fault::ReloadInvalid => {
            let before = (lab.moat_ruleset(), lab.routing_state());
            let broken = format!("{cfg}\nconfig device\n\toption name 'bad'\n\tlist mac '02:6d:61:62:00:99'\n\toption route 'nosuchtunnel'\n");
            lab.write_moat_config(&broken);
            lab.signal("moat", libc::SIGHUP);
            thread::sleep(BROKEN);
            if !lab.running("moat") {
                problems.push("moat exited on an invalid reload".into());
            }
            if (lab.moat_ruleset(), lab.routing_state()) != before {
                problems.push("an invalid config changed the running state".into());
            }
        }
        Fault::Fw4Reload => {
            lab.load_fw4().unwrap_or_else(|e| panic!("{e}"));
            thread::sleep(BROKEN);
        }
        Fault::ReloadSwitchRoute => {
            let other = config_for(&lab, other_route(route), "direct");
            for (text, what) in [(&other, other_route(route)), (&cfg, route)] {
                let before = lab.moat_ruleset();
                lab.write_moat_config(text);
                lab.signal("moat", libc::SIGHUP);
                let ok = lab.wait_for(&format!("ruleset switched to {what}"), RECOVER, || {
                    lab.moat_ruleset().is_some() && lab.moat_ruleset() != before
                });
                if !ok {
                    problems.push(format!("reload to route {what} did not change the ruleset"));
                }
                thread::sleep(BROKEN);
            }
        }
        Fault::ReloadStorm => {
            let changed = config_for(&lab, route, "block");
            for i in 0..6 {
                lab.write_moat_config(if i % 2 == 0 { &changed } else { &cfg });
                lab.signal("moat", libc::SIGHUP);
                thread::sleep(Duration::from_millis(100));
            }
            thread::sleep(BROKEN);
            if !lab.running("moat") {
                problems.push(format!("moat exited during a reload storm; log:\n{}", lab.proc_log("moat")));
            }
        }
        Fault::ReloadTornWrite => {
            for _ in 0..3 {
                lab.write_moat_config_torn(&cfg, libc::SIGHUP, Duration::from_millis(30));
                thread::sleep(BROKEN / 2);
            }
            let log = lab.proc_log("moat");
            if log.contains("0 device(s) protected") {
                problems.push(format!("a reload applied the torn (empty) config; log:\n{log}"));
            }
        }
        Fault::TunnelAbsentAtStart => {
            thread::sleep(BROKEN);
            lab.start_wg_router();
        }
        Fault::MoatDeadTunnelFlap => {
            lab.kill("moat", libc::SIGKILL);
            lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "down"]);
            thread::sleep(BROKEN / 2);
            lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "up"]);
            thread::sleep(BROKEN);
            lab.start_moat(&cfg);
        }
        Fault::Fw4Restart => {
            lab.must(&lab.router, &["nft", "delete", "table", "inet", "fw4"]);
            thread::sleep(BROKEN);
            lab.load_fw4().unwrap_or_else(|e| panic!("{e}"));
        }
        Fault::FirewallStopStart => {
            fw4_flush(&lab);
            thread::sleep(Duration::from_millis(1000));
            lab.load_fw4().unwrap_or_else(|e| panic!("{e}"));
            let ok = lab.wait_for("moat's table back after the flush", RECOVER, || lab.moat_ruleset().is_some());
            if !ok {
                problems.push("moat did not restore its table after fw4 flush".into());
            }
        }
        Fault::FirewallFlush20 => {
            for i in 0..20 {
                if i % 2 == 0 {
                    fw4_flush(&lab);
                } else {
                    lab.must(&lab.router, &["nft", "flush", "ruleset"]);
                }
                thread::sleep(Duration::from_millis(300));
                lab.load_fw4().unwrap_or_else(|e| panic!("{e}"));
                if !lab.wait_for("moat's table back after the flush", RECOVER, || lab.moat_ruleset().is_some()) {
                    problems.push(format!("moat did not restore its table after flush {}", i + 1));
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    lab.note("=== fault applied; waiting for recovery ===");
    if !matches!(fault, Fault::None | Fault::ReloadInvalid) {
        // The protected path must come back by itself (routes re-added, rules in place).
        let d2 = d.clone();
        let recovered = match route {
            "vpn" | "vpn6" | "vpnshaped" => lab.wait_for("vpn path recovered", RECOVER, || {
                lab.tcp_echo(&d2, SocketAddr::new(IpAddr::V4(INTERNET4), 7), probe_len(route), Duration::from_secs(2))
                    .is_ok()
            }),
            _ => true,
        };
        if !recovered {
            problems
                .push(format!("the vpn path did not recover after {fault:?} (moat log:\n{})", lab.proc_log("moat")));
        }
    }
    thread::sleep(SETTLE);
    drop(held);
    let counts = traffic.stop();
    lab.note(&format!("traffic answered per kind: {counts:?}"));
    let pkts = lab.stop_capture(cap);
    let rep = lab.analyze(&pkts, &d);
    if is_vpn(route) {
        let tcp_ok = counts.iter().find(|(k, _)| *k == Traffic::Tcp).map(|c| c.1).unwrap_or(0);
        if tcp_ok == 0 {
            problems.push(
                "no vpn TCP attempt got through the tunnel during the run: the matrix cell proves nothing".into(),
            );
        }
        if rep.wireguard == 0 {
            problems.push("no WireGuard packets on the WAN during the run".into());
        }
    }
    if !rep.leaks.is_empty() {
        problems.insert(
            0,
            format!(
                "LEAK: {} packet(s) of the {route} device outside the tunnel during {fault:?}:\n{}",
                rep.leaks.len(),
                rep.summary()
            ),
        );
    }
    if !problems.is_empty() {
        panic!("{route} x {fault:?} failed (lab dir {}):\n{}", lab.dir.display(), problems.join("\n"));
    }
}

/// Traffic kinds named separately by the issue, each captured on its own so a failure names it.
pub const KINDS: &[(&str, &[Traffic])] = &[
    ("IPv6", &[Traffic::Tcp6, Traffic::Udp6, Traffic::DnsRouter6]),
    ("DNS to the router", &[Traffic::DnsRouter]),
    ("DNS to an outside resolver", &[Traffic::DnsOutside]),
    ("DNS over TCP", &[Traffic::DnsRouterTcp, Traffic::DnsOutsideTcp]),
    ("DoT (TCP 853)", &[Traffic::Dot]),
    ("QUIC (UDP 443)", &[Traffic::Quic]),
];

/// Each traffic kind alone, steady state: zero packets outside the tunnel for each.
pub fn run_kinds(route: &str) {
    let label = format!("{route}-kinds");
    let lab = matrix_lab(&label, route == "tor");
    lab.start_moat(&matrix_config(&lab, route));
    assert_route_works(&lab, route);
    let d = lab.dev("speaker").clone();
    let mut failures = Vec::new();
    for (name, kinds) in KINDS {
        let cap = lab.capture_wan(&format!("kind-{}", name.split(' ').next().unwrap().to_lowercase()));
        let mut answered = Vec::new();
        for _ in 0..3 {
            for k in *kinds {
                if lab.attempt(&d, *k, Duration::from_millis(1500)).is_ok() {
                    answered.push(*k);
                }
            }
        }
        let pkts = lab.stop_capture(cap);
        let rep = lab.analyze(&pkts, &d);
        lab.note(&format!("{name}: answered {answered:?}"));
        if route == "vpn6" && *name == "IPv6" && !answered.contains(&Traffic::Tcp6) {
            failures.push("with ipv6 '1' the device's IPv6 TCP did not get through the tunnel".into());
        }
        if !rep.leaks.is_empty() {
            failures.push(format!("LEAK with {name}:\n{}", rep.summary()));
        }
    }
    // Names the device asked for must never have reached the outside resolver in the clear;
    // for vpn they must have reached the tunnel's resolver instead.
    if is_vpn(route) && !lab.tunnel_dns.lock().unwrap().iter().any(|n| d.names.contains(n)) {
        failures.push("the vpn device's DNS (to the router) never reached the tunnel resolver".into());
    }
    if !failures.is_empty() {
        panic!("{route}: (lab dir {})\n{}", lab.dir.display(), failures.join("\n"));
    }
}

/// The leak-matrix cells shared by `tests/leak_{vpn,tor,block}.rs`: every kind of traffic, then
/// one `#[test]` per fault, in a module named after the route (`leak_cells!(tor)` gives the
/// tests `tor::traffic_kinds_ipv6_dns_dot_quic`, `tor::steady`, `tor::moat_sigkill`, ...).
#[allow(unused_macros)]
macro_rules! leak_cells {
    ($route:ident) => {
        mod $route {
            use $crate::lab::matrix::{run, run_kinds, Fault};

            const ROUTE: &str = stringify!($route);

            #[test]
            fn traffic_kinds_ipv6_dns_dot_quic() {
                run_kinds(ROUTE);
            }

            #[test]
            fn steady() {
                run(ROUTE, Fault::None);
            }

            #[test]
            fn tunnel_down_and_up() {
                run(ROUTE, Fault::TunnelDownUp);
            }

            #[test]
            fn wireguard_go_killed_and_restarted() {
                run(ROUTE, Fault::WireguardKilled);
            }

            #[test]
            fn moat_sigkill() {
                run(ROUTE, Fault::MoatSigkill);
            }

            #[test]
            fn moat_restart() {
                run(ROUTE, Fault::MoatRestart);
            }

            #[test]
            fn reload_changed_config() {
                run(ROUTE, Fault::ReloadChanged);
            }

            #[test]
            fn reload_invalid_config() {
                run(ROUTE, Fault::ReloadInvalid);
            }

            #[test]
            fn fw4_reload() {
                run(ROUTE, Fault::Fw4Reload);
            }

            #[test]
            fn reload_switches_the_device_to_another_protected_route_and_back() {
                run(ROUTE, Fault::ReloadSwitchRoute);
            }

            #[test]
            fn reload_storm() {
                run(ROUTE, Fault::ReloadStorm);
            }

            #[test]
            fn tunnel_absent_when_moat_starts() {
                run(ROUTE, Fault::TunnelAbsentAtStart);
            }

            #[test]
            fn fw4_restart_leaves_moat_alone_while_fw4_is_gone() {
                run(ROUTE, Fault::Fw4Restart);
            }

            /// `service firewall stop` + `start`: `fw4 flush` deletes every nft table it can.
            /// Before issue 10 this leaked (moat's table was gone 8-21 ms until the daemon restored
            /// it: 2-6 packets in about 1 run in 3); now `table inet moat_persist`, owned by the
            /// running daemon (Linux 6.9+), survives the flush and holds the kill switch meanwhile.
            #[test]
            fn firewall_stop_start_flushes_every_table() {
                run(ROUTE, Fault::FirewallStopStart);
            }

            /// Issue 10 point 7: twenty flushes while the device sends, zero clear packets.
            #[test]
            fn firewall_flush_20_times() {
                run(ROUTE, Fault::FirewallFlush20);
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use leak_cells;
