//! Two-way shaping in the lab (tests/lab): `moat run` on the router with `option companion`,
//! `moat companion` in the VPN server's namespace (wireguard-go on both ends), the WAN watched
//! by tcpdump.
//!
//! Asserted: the companion starts from the two-line minimum config; the router's status says
//! "downstream shaped" within seconds; every WireGuard transport message has one size in both
//! directions and the per-second counts are constant both ways; cover packets are discarded by
//! both kernels (header-error counters); TCP and UDP data come back intact; with the companion
//! SIGKILLed the shaped downstream stops (nothing of another size on the WAN), the router says
//! "not shaped" within 10 s, and with `companion_required` the device is blocked; restarted,
//! the companion shapes again without the router being touched. A request for another
//! address is refused and counted. Needs root; see tests/lab/mod.rs for the topology.

mod lab;

use lab::pcap::wg_messages;
use lab::*;
use moat::shaper::ACTIVE_PACKETS;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// wireguard-go's default MTU 1420 rounded down to 16 (`pad_to 'auto'`).
const PAD_TO: usize = 1408;
const RATE: usize = 50;

/// Per-second counts of whole seconds between `from` and `to` (capture seconds).
fn per_second(msgs: &[(f64, u8, usize)], from: usize, to: usize) -> Vec<u32> {
    let mut v = vec![0u32; to.saturating_sub(from)];
    for m in msgs {
        let s = m.0 as usize;
        if (from..to).contains(&s) {
            v[s - from] += 1;
        }
    }
    v
}

fn start_companion(l: &Lab, config: &Path, state: &Path) {
    let bin = moat_bin();
    l.spawn(
        "companion",
        &l.vpn,
        &[
            &bin.to_string_lossy(),
            "companion",
            "--config",
            &config.to_string_lossy(),
            "--state-dir",
            &state.to_string_lossy(),
            "--stderr",
        ],
        &[("RUST_BACKTRACE", "1")],
    );
}

fn router_status(l: &Lab) -> String {
    std::fs::read_to_string(l.dir.join("moat-state/status.json")).unwrap_or_default()
}

fn companion_status(state: &Path) -> String {
    std::fs::read_to_string(state.join("status.json")).unwrap_or_default()
}

fn moat_cfg(l: &Lab, dev: &Device, required: bool) -> String {
    format!(
        "config moat 'main'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n\
         \toption companion '{VPN_TUNNEL4}'\n\toption companion_required '{}'\n\n\
         config shaper 'steady'\n\toption mode 'constant'\n\toption rate '{RATE}'\n\n\
         config device\n\toption name 'sleepmon'\n\tlist mac '{}'\n\toption route 'vpn'\n\toption shaper 'steady'\n",
        l.wg_router, required as u8, dev.mac
    )
}

/// The minimum a user writes: two lines.
fn companion_config(l: &Lab) -> PathBuf {
    let p = l.dir.join("companion.conf");
    std::fs::write(&p, format!("config companion 'main'\n\toption device '{}'\n", l.wg_server)).unwrap();
    p
}

const SHAPED: &str = "\"downstream\":\"downstream shaped\"";

#[test]
fn two_way_constant_one_size_both_ways_kill_stops_downstream_restart_resumes() {
    require_root();
    let l = Lab::start_alone(
        "companion-2way",
        Options { devices: vec![DeviceSpec::new("sleepmon")], tor: false, fw4: true },
    );
    let dev = l.dev("sleepmon").clone();
    let cstate = l.dir.join("companion-state");
    let cconf = companion_config(&l);
    start_companion(&l, &cconf, &cstate);
    let hdr_vpn = l.snmp_ip(&l.vpn, "InHdrErrors");
    let hdr_router = l.snmp_ip(&l.router, "InHdrErrors");
    l.start_moat(&moat_cfg(&l, &dev, false));
    let t = Instant::now();
    assert!(
        l.wait_for("downstream shaped", Duration::from_secs(15), || router_status(&l).contains(SHAPED)),
        "router never saw the companion's answer; router status:\n{}\ncompanion log:\n{}\nmoat log:\n{}",
        router_status(&l),
        l.proc_log("companion"),
        l.proc_log("moat")
    );
    eprintln!("companion lab: downstream shaped {:.1} s after moat started", t.elapsed().as_secs_f64());
    // The table a user reads: the tunnel's DOWNSTREAM column (its live counters are at most a
    // second older than status.json).
    let table = || {
        l.ns(
            &l.router,
            &[&moat_bin().to_string_lossy(), "status", "--state-dir", &l.dir.join("moat-state").to_string_lossy()],
        )
        .unwrap_or_default()
    };
    assert!(
        l.wait_for("moat status: downstream shaped", Duration::from_secs(3), || table().contains("downstream shaped")),
        "moat status: {}",
        table()
    );

    let cap = l.capture_wan("two-way");
    let file = cap.file.clone();
    std::thread::sleep(Duration::from_secs(12)); // idle
    let busy_at = Instant::now();
    let echo = SocketAddr::new(IpAddr::V4(INTERNET4), 7);
    // Does the status flip to "not shaped" while the transfer fills every slot both ways?
    let status_file = l.dir.join("moat-state/status.json");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut n, mut not) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = std::fs::read_to_string(&status_file).unwrap_or_default();
                n += 1;
                not += s.contains("downstream not shaped") as u32;
                std::thread::sleep(Duration::from_millis(500));
            }
            (n, not)
        })
    };
    l.tcp_echo(&dev, echo, 1_000_000, Duration::from_secs(120)).expect("TCP through the two-way shaped tunnel");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, not) = sampler.join().unwrap();
    eprintln!("companion lab: during the 1 MB transfer the status said 'not shaped' in {not} of {n} samples");
    // Both directions saturated: a forced cover slot a second still carries request and answer.
    assert_eq!(not, 0, "the status said 'not shaped' during a saturated transfer in {not} of {n} samples");
    l.udp_echoes(&dev, echo, 20).unwrap_or_else(|e| panic!("{e}"));
    let busy_s = busy_at.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(12)); // idle again
    let pkts = l.stop_capture(cap);
    let report = l.analyze(&pkts, &dev);
    assert!(report.leaks.is_empty(), "device traffic outside the tunnel: {:#?}", report.leaks);

    let up: Vec<_> =
        wg_messages(&file, ROUTER_WAN4.into(), VPN_PUBLIC4.into(), None).into_iter().filter(|m| m.1 == 4).collect();
    let down: Vec<_> =
        wg_messages(&file, VPN_PUBLIC4.into(), ROUTER_WAN4.into(), None).into_iter().filter(|m| m.1 == 4).collect();
    for (name, msgs) in [("up", &up), ("down", &down)] {
        let sizes: std::collections::BTreeMap<usize, usize> = msgs.iter().fold(Default::default(), |mut m, x| {
            *m.entry(x.2).or_insert(0) += 1;
            m
        });
        assert_eq!(sizes.keys().copied().collect::<Vec<_>>(), vec![32 + PAD_TO], "{name}: transport sizes {sizes:?}");
    }
    let end = up.last().unwrap().0.min(down.last().unwrap().0) as usize;
    let idle: Vec<(usize, usize)> = vec![(1, 11), (end.saturating_sub(10), end)];
    for (name, msgs) in [("up", &up), ("down", &down)] {
        let all = per_second(msgs, 1, end);
        let idle_counts: Vec<u32> = idle.iter().flat_map(|&(a, b)| per_second(msgs, a, b)).collect();
        let (mi, ci) = cv(&idle_counts);
        let (ma, ca) = cv(&all);
        eprintln!(
            "companion lab {name}: {} messages of {} B; per-second {all:?}; all: mean {ma:.2} CV {ca:.2}%; idle: mean {mi:.2} CV {ci:.2}%; busy {busy_s:.1} s",
            msgs.len(),
            32 + PAD_TO
        );
        assert!((mi - RATE as f64).abs() < RATE as f64 * 0.05, "{name}: idle mean {mi:.1}/s, not the rate {RATE}");
        assert!(ci <= 2.0, "{name}: idle per-second CV {ci:.2}% > 2% ({idle_counts:?})");
        assert!(ca <= 5.0, "{name}: whole-run per-second CV {ca:.2}% ({all:?})");
    }
    let hv = l.snmp_ip(&l.vpn, "InHdrErrors") - hdr_vpn;
    let hr = l.snmp_ip(&l.router, "InHdrErrors") - hdr_router;
    eprintln!("companion lab: header errors (cover packets dropped) vpn {hv}, router {hr}");
    assert!(hv > 0 && hv < up.len() as u64 * 3, "server kernel header errors {hv}");
    assert!(hr > 0 && hr < down.len() as u64 * 3, "router kernel header errors {hr}");

    // A request for someone else's address (10.64.0.3 from the router's 10.64.0.2): refused.
    forged_request(&l, Ipv4Addr::new(10, 64, 0, 3));
    assert!(
        l.wait_for("refusal counted", Duration::from_secs(5), || companion_status(&cstate)
            .contains("\"address_mismatch\":1")
            || companion_status(&cstate).contains("\"address_mismatch\":2")),
        "forged request not refused; companion status:\n{}",
        companion_status(&cstate)
    );
    assert!(!companion_status(&cstate).contains("10.64.0.3"), "forged address shaped: {}", companion_status(&cstate));

    // Companion SIGKILLed: the shaped downstream is dropped (rules stay, no listener). The
    // router does not block (companion_required 0), so the device's requests go out and
    // their answers reach the server: they must not come back unshaped.
    let cap = l.capture_wan("companion-killed");
    let file = cap.file.clone();
    let killed = Instant::now();
    assert!(l.kill("companion", libc::SIGKILL));
    for i in 0..3 {
        assert!(
            l.udp_echo(&dev, echo, 100 + i, Duration::from_millis(800)).is_err(),
            "echo {i} with the companion dead"
        );
    }
    assert!(l.tcp_echo(&dev, echo, 2000, Duration::from_secs(3)).is_err(), "TCP got through with the companion dead");
    assert!(
        l.wait_for("not shaped", Duration::from_secs(10), || router_status(&l).contains("downstream not shaped")),
        "router status still says shaped 10 s after the companion died:\n{}",
        router_status(&l)
    );
    eprintln!("companion lab: 'not shaped' {:.1} s after SIGKILL", killed.elapsed().as_secs_f64());
    assert!(router_status(&l).contains("\"blocking\":false"), "{}", router_status(&l));
    let pkts = l.stop_capture(cap);
    assert!(l.analyze(&pkts, &dev).leaks.is_empty());
    // (the kill lands a few ms after the capture starts: a message in flight before it is fine)
    let down: Vec<_> = wg_messages(&file, VPN_PUBLIC4.into(), ROUTER_WAN4.into(), None)
        .into_iter()
        .filter(|m| m.1 == 4 && m.0 > 0.3)
        .collect();
    assert!(down.iter().all(|m| m.2 == 32), "downstream data with the companion dead: {down:?}");

    // companion_required: the shaped device is blocked while the companion does not answer.
    l.write_moat_config(&moat_cfg(&l, &dev, true));
    l.signal("moat", libc::SIGHUP);
    assert!(
        l.wait_for("blocking", Duration::from_secs(10), || router_status(&l).contains("\"blocking\":true")),
        "companion_required does not block: {}",
        router_status(&l)
    );
    assert!(l.udp_echo(&dev, echo, 120, Duration::from_millis(800)).is_err());
    assert!(
        l.wait_for("blocked counted", Duration::from_secs(5), || !router_status(&l)
            .contains("\"companion_blocked\":0")),
        "no packet counted as blocked: {}",
        router_status(&l)
    );

    // Restarted: shaping resumes, the router is not touched.
    let restarted = Instant::now();
    start_companion(&l, &cconf, &cstate);
    assert!(
        l.wait_for("shaped again", Duration::from_secs(15), || router_status(&l).contains(SHAPED)),
        "not shaped again after restart:\n{}\n{}",
        router_status(&l),
        l.proc_log("companion")
    );
    eprintln!("companion lab: shaped again {:.1} s after restart", restarted.elapsed().as_secs_f64());
    assert!(router_status(&l).contains("\"blocking\":false"), "{}", router_status(&l));
    l.udp_echo(&dev, echo, 300, Duration::from_secs(5)).expect("echo after the companion restarted");
    l.tcp_echo(&dev, echo, 100_000, Duration::from_secs(30)).expect("TCP after the companion restarted");
}

/// Write a request claiming `addr` into a cover packet from the router's tunnel address, on the
/// router's WireGuard device (as a hostile home would).
fn forged_request(l: &Lab, addr: Ipv4Addr) {
    use moat::wire::control::{self, Message, ModeParams, Request};
    let mut pkt = moat::wire::cover_ipv4(ROUTER_TUNNEL4, VPN_TUNNEL4, PAD_TO as u16);
    let r = Request { seq: 9, addr: IpAddr::V4(addr), pad_to: PAD_TO as u16, mode: ModeParams::Constant { rate: 10 } };
    control::write_into(&mut pkt, Some(&Message::Request(r))).unwrap();
    let w = l.wg_router.clone();
    in_ns(&l.router, move || {
        let inj = moat::sys::Injector::open(&w, None).unwrap();
        for _ in 0..2 {
            inj.send(&pkt).unwrap();
        }
    });
}

#[test]
fn companion_two_line_config_starts_and_bad_configs_name_the_line() {
    require_root();
    let l = Lab::start("companion-min", Options { devices: vec![], tor: false, fw4: false });
    let cstate = l.dir.join("companion-state");
    let cconf = companion_config(&l);
    start_companion(&l, &cconf, &cstate);
    assert!(
        l.wait_for("companion status", Duration::from_secs(10), || companion_status(&cstate).contains("\"peers\":[]")),
        "companion did not start from the two-line config; log:\n{}",
        l.proc_log("companion")
    );
    assert!(l.running("companion"));
    let bad = l.dir.join("bad.conf");
    std::fs::write(&bad, "config companion 'main'\n\toption device 'wg0'\n\toption max_rate 'lots'\n").unwrap();
    let out = std::process::Command::new(moat_bin()).args(["companion", "--config"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("bad.conf:3: section 'main' option 'max_rate'"), "{err}");
}

#[test]
fn two_homes_on_one_companion_each_shaped_by_its_own_request() {
    use moat::daemon::engine::{monotonic_us, CompanionSpec, QueueSpec, ShapingEngine};
    use moat::shaper::{Config, ConstantConfig, Mode};
    require_root();
    let l =
        Lab::start("companion-homes", Options { devices: vec![DeviceSpec::new("sleepmon")], tor: false, fw4: true });
    let dev = l.dev("sleepmon").clone();
    let cstate = l.dir.join("companion-state");
    start_companion(&l, &companion_config(&l), &cstate);
    l.start_moat(&moat_cfg(&l, &dev, false));
    assert!(
        l.wait_for("home 1 shaped", Duration::from_secs(15), || router_status(&l).contains(SHAPED)),
        "home 1 not shaped: {}",
        router_status(&l)
    );
    // Home 2: the router's queue engine (what `moat run` drives) with a companion link, at
    // another rate, from 10.64.0.3 over its own WireGuard peer.
    let (h, w) = l.add_home();
    let (answer_after, said) = in_ns(&h, move || {
        let mut e = ShapingEngine::new().unwrap();
        let spec = QueueSpec {
            queue: 4242,
            label: "home2".into(),
            config: Config { pad_to: PAD_TO as u16, mode: Mode::Constant(ConstantConfig::with_rate(20)) },
            tunnel_dev: w,
            cover_dst: Some(IpAddr::V4(VPN_TUNNEL4)),
            schedule: String::new(),
            companion: Some(CompanionSpec { addr: IpAddr::V4(VPN_TUNNEL4), required: false }),
        };
        assert!(e.set_queues(&[spec]).is_empty());
        let t0 = Instant::now();
        let mut first = None;
        while t0.elapsed() < Duration::from_secs(12) {
            let mut fds: Vec<libc::pollfd> =
                e.fds().into_iter().map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            let _ = moat::sys::poll(&mut fds, 50);
            for p in fds.iter().filter(|p| p.revents != 0) {
                e.readable(p.fd);
            }
            e.tick(monotonic_us());
            if first.is_none() && e.links()[0].shaped(monotonic_us()) {
                first = Some(t0.elapsed());
            }
        }
        let said = e.links()[0].describe(monotonic_us());
        e.shutdown();
        (first, said)
    });
    let status = companion_status(&cstate);
    eprintln!("companion lab two homes: home 2 answered after {answer_after:?}, says '{said}'; companion: {status}");
    assert!(answer_after.is_some() && said == "shaped", "home 2 not shaped: {said}\n{status}");
    assert!(
        status.contains("\"addr\":\"10.64.0.2\",\"queue\":7000,\"pad_to\":1408,\"mode\":\"constant 50/s\""),
        "{status}"
    );
    assert!(
        status.contains("\"addr\":\"10.64.0.3\",\"queue\":7001,\"pad_to\":1408,\"mode\":\"constant 20/s\""),
        "{status}"
    );
    assert!(router_status(&l).contains(SHAPED), "home 1 lost its shaping: {}", router_status(&l));
    // Home 1's downstream still runs at its own rate (home 2's clock is not mixed in).
    let cap = l.capture_wan("homes");
    let file = cap.file.clone();
    std::thread::sleep(Duration::from_secs(6));
    l.stop_capture(cap);
    let down: Vec<_> =
        wg_messages(&file, VPN_PUBLIC4.into(), ROUTER_WAN4.into(), None).into_iter().filter(|m| m.1 == 4).collect();
    let counts = per_second(&down, 1, 5);
    assert!(counts.iter().all(|&c| (48..=52).contains(&c)), "home 1 downstream per second {counts:?}");
}

#[test]
fn two_way_stochastic_decoys_both_ways_one_size() {
    require_root();
    let l = Lab::start("companion-stoch", Options { devices: vec![DeviceSpec::new("camera")], tor: false, fw4: true });
    let dev = l.dev("camera").clone();
    let cstate = l.dir.join("companion-state");
    start_companion(&l, &companion_config(&l), &cstate);
    // 360 decoys per idle hour (one per 10 s on average), 10 packets/s for 2 s each, and after
    // the activity 10 s of decoy per second of it (`pace 1000`). Only a period of
    // `ACTIVE_PACKETS` real packets counts for the pace (10 echoes did not, and a CI run saw no
    // decoy in the 30 s after them). The pace then owes 10 times the activity's length over the
    // next idle minute (at least), replayed in copies of it: a decoy cycle of ~3 s whatever the
    // echoes' length, so the 28 s after the activity miss a decoy with negligible probability.
    // (Without pace: gaps of 8 s on average, exponential, and no decoy in those 28 s with
    // probability e^(-3.5) ≈ 3 %.)
    let cfg = format!(
        "config moat 'main'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n\
         \toption companion '{VPN_TUNNEL4}'\n\n\
         config shaper 'stp'\n\toption mode 'stochastic'\n\toption rate '20'\n\toption decoys '360'\n\
         \toption decoy_rate '10'\n\toption decoy_duration '2'\n\toption idle_gap '2'\n\toption budget '100'\n\toption pace '1000'\n\n\
         config device\n\toption name 'camera'\n\tlist mac '{}'\n\toption route 'vpn'\n\toption shaper 'stp'\n",
        l.wg_router, dev.mac
    );
    l.start_moat(&cfg);
    let cap = l.capture_wan("stochastic");
    let file = cap.file.clone();
    let t = Instant::now();
    // The request rides the router's first decoy; the answer the companion's cover packets.
    let shaped = l.wait_for("downstream shaped", Duration::from_secs(60), || router_status(&l).contains(SHAPED));
    eprintln!("companion lab stochastic: shaped {shaped} after {:.1} s", t.elapsed().as_secs_f64());
    let echo = SocketAddr::new(IpAddr::V4(INTERNET4), 7);
    l.udp_echoes(&dev, echo, ACTIVE_PACKETS as usize + 4).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(30));
    let pkts = l.stop_capture(cap);
    assert!(l.analyze(&pkts, &dev).leaks.is_empty());
    assert!(shaped, "no answer from the companion in 60 s: {}\n{}", router_status(&l), companion_status(&cstate));
    let down: Vec<_> =
        wg_messages(&file, VPN_PUBLIC4.into(), ROUTER_WAN4.into(), None).into_iter().filter(|m| m.1 == 4).collect();
    let up: Vec<_> =
        wg_messages(&file, ROUTER_WAN4.into(), VPN_PUBLIC4.into(), None).into_iter().filter(|m| m.1 == 4).collect();
    for (name, msgs) in [("up", &up), ("down", &down)] {
        let sizes: std::collections::BTreeSet<usize> = msgs.iter().map(|m| m.2).collect();
        let data: Vec<f64> = msgs.iter().filter(|m| m.2 != 32).map(|m| m.0).collect();
        let bursts = 1 + data.windows(2).filter(|w| w[1] - w[0] > 1.5).count();
        eprintln!("companion lab stochastic {name}: {} data messages in {bursts} bursts, sizes {sizes:?}", data.len());
        assert!(sizes.iter().all(|&s| s == 32 || s == 32 + PAD_TO), "{name}: transport sizes {sizes:?}");
        // (on failure, the longest gaps and the span of the data tell a quiet decoy process from a
        // capture that missed the start or end)
        let mut gaps: Vec<f64> = data.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(|a, b| b.total_cmp(a));
        gaps.truncate(5);
        let span = (data.first().copied().unwrap_or(0.0), data.last().copied().unwrap_or(0.0));
        assert!(
            bursts >= 2,
            "{name}: no decoy burst apart from the real activity: longest gaps {gaps:?} s, data from {:.1} to {:.1} s",
            span.0,
            span.1
        );
    }
}

/// A pad size below TCP's usual segments (a low-rate home's `pad_to 384`): the MSS is clamped in
/// both directions (the device's SYN leaving through the tunnel and the server's SYN-ACK coming
/// out of it), so a TCP echo of 100 KB goes through intact both ways while every transport
/// message of the tunnel has the one size, and a small UDP exchange started during the bulk
/// transfer (another flow on the companion's one lane for this home) completes.
#[test]
fn two_way_small_pad_clamps_mss_both_ways_and_flows_share_the_lane() {
    const SMALL: usize = 384;
    require_root();
    let l = Lab::start("companion-pad", Options { devices: vec![DeviceSpec::new("sleepmon")], tor: false, fw4: true });
    let dev = l.dev("sleepmon").clone();
    let cstate = l.dir.join("companion-state");
    start_companion(&l, &companion_config(&l), &cstate);
    let cfg = moat_cfg(&l, &dev, false)
        .replace("\toption companion ", &format!("\toption pad_to '{SMALL}'\n\toption companion "));
    l.start_moat(&cfg);
    assert!(
        l.wait_for("downstream shaped", Duration::from_secs(15), || router_status(&l).contains(SHAPED)),
        "router never saw the companion's answer: {}\n{}",
        router_status(&l),
        l.proc_log("companion")
    );
    let cap = l.capture_wan("small-pad");
    let file = cap.file.clone();
    let echo = SocketAddr::new(IpAddr::V4(INTERNET4), 7);
    let bulk = std::thread::scope(|s| {
        let bulk = s.spawn(|| l.tcp_echo(&dev, echo, 100_000, Duration::from_secs(90)));
        std::thread::sleep(Duration::from_secs(2));
        l.udp_echo(&dev, echo, 100, Duration::from_secs(10)).expect("small UDP exchange during the bulk transfer");
        bulk.join().unwrap()
    });
    bulk.expect("TCP echo of 100 KB with pad_to 384 (MSS clamped both ways)");
    let pkts = l.stop_capture(cap);
    assert!(l.analyze(&pkts, &dev).leaks.is_empty());
    for (name, from, to) in [("up", ROUTER_WAN4, VPN_PUBLIC4), ("down", VPN_PUBLIC4, ROUTER_WAN4)] {
        let sizes: std::collections::BTreeSet<usize> =
            wg_messages(&file, from.into(), to.into(), None).into_iter().filter(|m| m.1 == 4).map(|m| m.2).collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![32 + SMALL], "{name}: transport sizes");
    }
    let status = router_status(&l);
    let oversize: Vec<&str> = status.split("\"oversize_drops\":").skip(1).filter(|r| !r.starts_with('0')).collect();
    assert!(status.contains("\"oversize_drops\":") && oversize.is_empty(), "a packet did not fit pad_to: {status}");
}
