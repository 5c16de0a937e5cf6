//! One schedule per tunnel, end to end with `moat run` in the lab (tests/lab): two shaped
//! devices of one tunnel naming one `config shaper` share its slot clock.
//!
//! The camera uploads in bulk (TCP, echoed back) while the sleep monitor sends a small UDP
//! heartbeat every 500 ms. Asserted: every WireGuard transport message from the router to the
//! VPN endpoint has one size (32 + pad_to); the tunnel's message rate is ONE clock's rate (20/s,
//! not 2 × 20/s); both devices' data come back intact; the heartbeat's round trip stays bounded
//! while the camera saturates the clock (round robin: it waits at most 2 slots, not behind the
//! camera's queue). Needs root; see tests/lab/mod.rs for the topology.

mod lab;

use lab::*;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// wireguard-go's default MTU 1420 rounded down to 16 (`pad_to 'auto'`).
const PAD_TO: usize = 1408;
/// The shared clock's rate.
const RATE: f64 = 20.0;

/// (seconds since capture start, message length) of every WireGuard transport message from
/// the router's WAN address to the VPN endpoint, read from the pcap file.
fn transport_messages(file: &std::path::Path) -> Vec<(f64, usize)> {
    let all = pcap::wg_messages(file, ROUTER_WAN4.into(), VPN_PUBLIC4.into(), Some(WG_PORT));
    all.into_iter().filter(|m| m.1 == 4).map(|(t, _, len)| (t, len)).collect()
}

#[test]
fn two_devices_of_one_tunnel_share_one_clock_and_a_hog_does_not_starve_the_heartbeat() {
    require_root();
    let l = Lab::start(
        "shaper-shared",
        Options { devices: vec![DeviceSpec::new("camera"), DeviceSpec::new("sleepmon")], tor: false, fw4: true },
    );
    let cam = l.dev("camera").clone();
    let mon = l.dev("sleepmon").clone();
    let cfg = format!(
        "config moat 'main'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n\n\
         config shaper 'home'\n\toption mode 'constant'\n\toption rate '{}'\n\n\
         config device\n\toption name 'camera'\n\tlist mac '{}'\n\toption route 'vpn'\n\toption shaper 'home'\n\n\
         config device\n\toption name 'sleepmon'\n\tlist mac '{}'\n\toption route 'vpn'\n\toption shaper 'home'\n",
        l.wg_router, RATE as u32, cam.mac, mon.mac
    );
    l.start_moat(&cfg);
    assert!(
        l.wait_for("moat shaping", Duration::from_secs(10), || {
            let log = l.proc_log("moat");
            log.contains("shaping camera") && log.contains("shaping sleepmon")
        }),
        "moat did not start shaping; log:\n{}",
        l.proc_log("moat")
    );
    let log = l.proc_log("moat");
    assert!(log.contains("schedule vpn/home"), "devices not on the shared schedule; log:\n{log}");
    let cap = l.capture_wan("shared");
    let file = cap.file.clone();
    std::thread::sleep(Duration::from_secs(8)); // idle: cover only
    let echo = SocketAddr::new(IpAddr::V4(INTERNET4), 7);
    let mut rtts = Vec::new();
    let upload = std::thread::scope(|s| {
        let up = s.spawn(|| {
            let t = Instant::now();
            let r = l.tcp_echo(&cam, echo, 250_000, Duration::from_secs(120));
            (r, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(1500)); // let the upload fill the camera's queue
        while !up.is_finished() {
            let t = Instant::now();
            l.udp_echo(&mon, echo, 60, Duration::from_secs(5)).unwrap_or_else(|e| panic!("heartbeat: {e}"));
            rtts.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(500));
        }
        up.join().unwrap()
    });
    upload.0.expect("camera's TCP upload through the shared schedule");
    std::thread::sleep(Duration::from_secs(8)); // idle again
    let pkts = l.stop_capture(cap);
    for d in [&cam, &mon] {
        let report = l.analyze(&pkts, d);
        assert!(report.leaks.is_empty(), "{}: traffic outside the tunnel: {:#?}", d.label, report.leaks);
    }

    let msgs = transport_messages(&file);
    let mut sizes = std::collections::BTreeMap::new();
    for m in &msgs {
        *sizes.entry(m.1).or_insert(0u32) += 1;
    }
    assert_eq!(sizes.keys().copied().collect::<Vec<_>>(), vec![32 + PAD_TO], "transport sizes router->VPN: {sizes:?}");
    let span = msgs.last().unwrap().0 - msgs[0].0;
    let rate = (msgs.len() - 1) as f64 / span;
    rtts.sort();
    let worst = *rtts.last().expect("no heartbeat during the upload");
    eprintln!(
        "shared schedule lab: {} transport messages in {span:.1} s = {rate:.2}/s (one clock: {RATE}/s); upload {:.1} s; \
         {} heartbeats during it, RTT median {:?} worst {worst:?}",
        msgs.len(),
        upload.1.as_secs_f64(),
        rtts.len(),
        rtts[rtts.len() / 2]
    );
    assert!((rate - RATE).abs() <= RATE * 0.05, "tunnel rate {rate:.2}/s is not one clock's {RATE}/s");
    assert!(rtts.len() >= 3, "upload too short to test fairness ({} heartbeats)", rtts.len());
    // Round robin over 2 queues: ≤ 2 slots (100 ms) of added delay plus the lab's round trip.
    // Behind the camera's queue (40 packets at 20/s) it would be ~2 s.
    assert!(worst <= Duration::from_millis(400), "heartbeat RTT {worst:?} while the camera uploads");
}
