//! Shaper benchmarks (figures, not tests). Run through `scripts/bench-shaper.sh`, which builds
//! this in release mode, runs the real-kernel parts inside a throwaway network namespace and the
//! replay under callgrind.
//!
//!   shaper_bench replay N        pure path per queued packet (schedule + held store + padding)
//!   shaper_bench rss             64 constant-mode devices holding 1,000 packets: VmRSS
//!   shaper_bench queueing        constant-mode queueing delay (virtual clock) under Poisson load
//!   shaper_bench live SECS RATE PATTERN PPS
//!                                real engine on loopback: NFQUEUE + timerfd slots; slot timer
//!                                lateness, added latency of UDP datagrams sent `periodic` or
//!                                `poisson` at PPS/s, next to an ideal slot server fed the same
//!                                send times (needs root, run in a fresh netns: it installs an
//!                                iptables-nft rule there). BENCH_TIMERSLACK_NS=N sets the timer
//!                                slack first (A/B check); BENCH_REALTIME=1 switches the engine
//!                                thread to real-time scheduling like `option realtime '1'`.
//!   shaper_bench pps SECS        real engine at 1,000 slots/s, saturated: packets/s released
//!   shaper_bench rss-live        real engine, 64 queues (NFQUEUE --queue-balance), 1,000 packets
//!                                held: process VmRSS (needs root, fresh netns)

use moat::daemon::engine::{monotonic_us, HeldStore, QueueSpec, ShapingEngine};
use moat::shaper::{Action, Config, ConstantConfig, DeviceShaper, Micros, Mode, Rng, Schedule, SeededRng};
use moat::wire;
use std::net::UdpSocket;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") => replay(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000)),
        Some("rss") => rss(),
        Some("queueing") => queueing(),
        Some("live") => live(
            arg(&args, 1, 30),
            arg(&args, 2, 50) as u32,
            args.get(3).map_or("poisson", String::as_str),
            args.get(4).and_then(|s| s.parse().ok()).unwrap_or(25.0),
        ),
        Some("pps") => pps(arg(&args, 1, 10)),
        Some("rss-live") => rss_live(),
        _ => {
            eprintln!("usage: shaper_bench replay N | rss | queueing | live SECS RATE periodic|poisson PPS | pps SECS | rss-live");
            std::process::exit(2);
        }
    }
}

fn arg(a: &[String], i: usize, d: u64) -> u64 {
    a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d)
}

fn sample_packet(len: usize, seed: u32) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 2]);
    p[16..20].copy_from_slice(&[10, 0, 0, 1]);
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = (i as u32 ^ seed) as u8;
    }
    wire::set_ipv4_checksum(&mut p);
    p
}

/// What the engine does per queued packet, minus the syscalls: header check, held store, shaper
/// event, slot tick, padding of the released copy.
fn replay(n: u64) {
    let mut rng = SeededRng::new(7);
    let cfg = Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig::with_rate(1000)) };
    // the engine's path: a Schedule (here of one lane), actions tagged with their lane
    let mut sh = Schedule::new(&cfg, 1, 0, &mut rng);
    let mut held = HeldStore::default();
    let mut actions = Vec::new();
    let pkts: Vec<Vec<u8>> = (0..16).map(|i| sample_packet(60 + i * 80, i as u32)).collect();
    let mut now: Micros = 0;
    let mut out_bytes = 0u64;
    let mut verdict_buf: Vec<u8> = Vec::with_capacity(2048);
    for id in 0..n as u32 {
        // arrivals at ~half the slot rate: one packet every 2 ms, a slot every 1 ms
        now += 2000;
        let p = &pkts[(id % 16) as usize];
        let len = wire::ip_len(p).unwrap();
        held.insert(id, p[..len].to_vec().into_boxed_slice());
        sh.on_packet(0, now, id, len as u16, &mut actions);
        while let Some(t) = sh.next_wakeup().filter(|&t| t <= now) {
            sh.on_tick(t, &mut rng, &mut actions);
        }
        for (_, a) in actions.drain(..) {
            if let Action::Release { id, pad_to } = a {
                let b = held.remove(&id).unwrap();
                // what Queue::accept_padded does into its send buffer
                verdict_buf.clear();
                verdict_buf.extend_from_slice(&b);
                wire::extend_zeros(&mut verdict_buf, pad_to as usize - b.len());
                out_bytes += verdict_buf.len() as u64;
            }
        }
    }
    let c = sh.counters(0);
    println!("replay: {n} packets, released {}, cover {}, bytes out {out_bytes}", c.real_packets, c.cover_packets);
}

fn vm_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 64 constant-mode shapers and 1,000 held packets stored like the engine stores them.
fn rss() {
    let base = vm_rss_kb();
    let mut rng = SeededRng::new(1);
    let cfg = Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig::with_rate(50)) };
    let mut devs: Vec<(DeviceShaper, HeldStore)> =
        (0..64).map(|_| (DeviceShaper::new(&cfg, 0, &mut rng), HeldStore::default())).collect();
    let mut actions = Vec::new();
    for id in 0..1000u32 {
        let len = 60 + (rng.below(1340) as usize);
        let p = sample_packet(len, id);
        let (sh, held) = &mut devs[(id % 64) as usize];
        held.insert(id, p.into_boxed_slice());
        sh.on_packet(1, id, len as u16, &mut rng, &mut actions);
    }
    let held: usize = devs.iter().map(|(s, _)| s.held()).sum();
    let after = vm_rss_kb();
    println!(
        "rss: 64 devices, {held} held packets: VmRSS {after} KB (process before: {base} KB; heap growth {} KB)",
        after - base
    );
}

/// Queueing delay added by constant mode (virtual clock, pure core) at 50 slots/s for periodic
/// and Poisson arrivals at 25 %, 50 %, 90 % of the slot rate, next to an ideal slot server fed the
/// same arrivals and, for Poisson, the slotted M/D/1 mean.
fn queueing() {
    for poisson in [false, true] {
        for load in [0.25f64, 0.5, 0.9] {
            let mut rng = SeededRng::new(3);
            let cfg = Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig::with_rate(50)) };
            let mut sh = DeviceShaper::new(&cfg, 0, &mut rng);
            let mut out = Vec::new();
            let gap = 1e6 / (50.0 * load);
            // periodic: start at an odd phase (7.3 ms) relative to the slot grid
            let mut t = if poisson { 0.0 } else { 7_300.0 - gap };
            let mut id = 0;
            let mut arrivals = Vec::new();
            while t < 3600e6 {
                t += if poisson { rng.exp(gap) } else { gap };
                while let Some(w) = sh.next_wakeup().filter(|&w| w as f64 <= t) {
                    sh.on_tick(w, &mut rng, &mut out);
                }
                sh.on_packet(t as Micros, id, 100, &mut rng, &mut out);
                arrivals.push(t as Micros);
                id += 1;
                out.clear();
            }
            let d = &sh.counters().delay;
            let mut ideal: Vec<u64> =
                ideal_departures(&arrivals, 0, 50).iter().zip(&arrivals).map(|(d, a)| d - a).collect();
            let md1 = 10.0 + load * 20.0 / (2.0 * (1.0 - load));
            println!(
                "queueing: 50 slots/s, {} load {:.0} %: {} packets; core added delay p50 ≤{} µs p99 ≤{} µs (histogram bucket bounds), queue drops {}; ideal slot server {}{}",
                if poisson { "Poisson" } else { "periodic" },
                load * 100.0,
                d.count(),
                d.quantile(0.5).unwrap(),
                d.quantile(0.99).unwrap(),
                sh.counters().queue_drops,
                fmt_ms(&mut ideal),
                if poisson { format!("; slotted M/D/1 mean {md1:.2} ms") } else { String::new() }
            );
        }
    }
}

const QNUM: u16 = 4999;

fn ipt(args: &[&str]) {
    let st = std::process::Command::new("iptables-nft").args(args).status().expect("iptables-nft");
    assert!(st.success(), "iptables-nft {args:?}");
}

fn setup_loopback_queue() {
    let _ = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    ipt(&[
        "-t",
        "mangle",
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "udp",
        "--dport",
        "9999",
        "-j",
        "NFQUEUE",
        "--queue-num",
        &QNUM.to_string(),
    ]);
}

fn engine(rate: u32) -> ShapingEngine {
    let mut e = ShapingEngine::new().unwrap();
    let spec = QueueSpec {
        queue: QNUM,
        label: "bench".into(),
        config: Config {
            pad_to: 1408,
            mode: Mode::Constant(ConstantConfig { rate, queue_limit: 1000, max_late_slots: 2 }),
        },
        tunnel_dev: "lo".into(),
        cover_dst: None, // cover slots are still scheduled; nothing is injected
        schedule: String::new(),
        companion: None,
    };
    let errs = e.set_queues(&[spec]);
    assert!(errs.is_empty(), "{errs:?}");
    e
}

fn poll_once(e: &mut ShapingEngine, timeout_ms: i32, late: Option<&mut Vec<u64>>) {
    let fds = e.fds();
    let deadline = e.next_deadline();
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: valid pollfd array.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    let now = monotonic_us();
    if n > 0 {
        // the timerfd is the last fd: lateness = wake-up time − the deadline it was armed for
        // (measured here, exactly, rather than from the engine's bucketed histogram)
        if let (Some(l), Some(d), Some(last)) = (late, deadline, p.last()) {
            if last.revents != 0 {
                l.push(now.saturating_sub(d));
            }
        }
        for (i, pf) in p.iter().enumerate() {
            if pf.revents != 0 {
                e.readable(fds[i]);
            }
        }
    }
}

/// Exact quantile of sorted samples (nearest rank).
fn q(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}

fn fmt_ms(v: &mut [u64]) -> String {
    v.sort_unstable();
    format!(
        "p50 {:.2} p99 {:.2} max {:.2} mean {:.2} ms",
        q(v, 0.5) as f64 / 1e3,
        q(v, 0.99) as f64 / 1e3,
        q(v, 1.0) as f64 / 1e3,
        mean(v) / 1e3
    )
}

/// Departure times of an ideal constant-rate server (one packet per slot, slots at
/// `origin + k·1e6/rate`, FIFO, no lateness) for the given arrival times (sorted): the delay a
/// perfect engine would add. Independent of the shaper core.
fn ideal_departures(arrivals: &[u64], origin: u64, rate: u64) -> Vec<u64> {
    let slot = |k: u64| origin + k * 1_000_000 / rate;
    let mut next_k = 1u64; // first slot the server may use
    arrivals
        .iter()
        .map(|&t| {
            // first slot at or after t, but not one already used
            let mut k = ((t.saturating_sub(origin)) * rate).div_ceil(1_000_000).max(next_k);
            while slot(k) < t {
                k += 1;
            }
            next_k = k + 1;
            slot(k)
        })
        .collect()
}

/// Real engine on loopback: slot timer lateness and end-to-end added latency of UDP datagrams
/// sent `periodic` (fixed interval) or `poisson` (exponential gaps) at `pps` per second.
fn live(secs: u64, rate: u32, pattern: &str, pps: f64) {
    let poisson = match pattern {
        "periodic" => false,
        "poisson" => true,
        _ => panic!("pattern: periodic or poisson"),
    };
    if let Ok(ns) = std::env::var("BENCH_TIMERSLACK_NS") {
        // A/B switch for the hypothesis that timer slack delays the timerfd wake-up.
        let ns: libc::c_ulong = ns.parse().expect("BENCH_TIMERSLACK_NS");
        // SAFETY: plain prctl on this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
    }
    if std::env::var("BENCH_REALTIME").is_ok_and(|v| v == "1") {
        // what `option realtime '1'` does in the daemon (threads spawned below stay normal)
        moat::daemon::engine::set_realtime(true).expect("set_realtime");
    }
    setup_loopback_queue();
    // The constant shaper's slot grid starts when set_queues runs (origin + k·interval); this
    // reading is taken just before it (tens of µs early at most).
    let origin = monotonic_us();
    let mut e = engine(rate);
    let rx = UdpSocket::bind("127.0.0.1:9999").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = monotonic_us() + 100_000;
    let end = start + secs * 1_000_000;
    let sender = std::thread::spawn(move || {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rng = SeededRng::new(11);
        let gap = 1e6 / pps;
        // absolute targets: sleep overshoot does not lower the rate or shift later arrivals
        let mut target = start as f64;
        let mut sent = 0u64;
        loop {
            target += if poisson { rng.exp(gap) } else { gap };
            if target as u64 >= end {
                break;
            }
            let now = monotonic_us();
            if (target as u64) > now {
                std::thread::sleep(Duration::from_micros(target as u64 - now));
            }
            let mut m = [0u8; 100];
            m[..8].copy_from_slice(&monotonic_us().to_be_bytes());
            tx.send_to(&m, "127.0.0.1:9999").unwrap();
            sent += 1;
        }
        sent
    });
    let receiver = std::thread::spawn(move || {
        let mut v = Vec::new(); // (sent, received)
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            if n >= 8 {
                v.push((u64::from_be_bytes(buf[..8].try_into().unwrap()), monotonic_us()));
            }
        }
        v
    });
    let mut late = Vec::with_capacity((secs as usize + 2) * rate as usize);
    while monotonic_us() < end + 1_000_000 {
        poll_once(&mut e, 50, Some(&mut late));
    }
    let sent = sender.join().unwrap();
    e.shutdown();
    let mut got = receiver.join().unwrap();
    got.sort_unstable();
    let arrivals: Vec<u64> = got.iter().map(|g| g.0).collect();
    let ideal = ideal_departures(&arrivals, origin, rate as u64);
    let mut added: Vec<u64> = got.iter().map(|&(s, r)| r.saturating_sub(s)).collect();
    let mut ideal_delay: Vec<u64> = ideal.iter().zip(&arrivals).map(|(d, a)| d - a).collect();
    // how much later than the ideal schedule each datagram arrived (negative = earlier: the
    // origin estimate is a little early, clamped to 0)
    let mut excess: Vec<u64> = got.iter().zip(&ideal).map(|(&(_, r), &d)| r.saturating_sub(d)).collect();
    let c = e.counters().next().map(|c| c.2.clone());
    let rho = pps / rate as f64;
    let slot_ms = 1e3 / rate as f64;
    println!(
        "live {pattern} {pps}/s into {rate} slots/s (load {:.0} %), {secs} s: {sent} sent, {} received, missed slots {}",
        rho * 100.0,
        got.len(),
        c.map_or(0, |c| c.missed_slots)
    );
    // SAFETY: plain syscall on the calling thread.
    let policy = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0 as libc::pid_t) };
    println!(
        "  engine thread scheduling: {} (reset on fork: {})",
        match policy & 0xff {
            0 => "normal",
            1 => "SCHED_FIFO",
            2 => "SCHED_RR",
            _ => "other",
        },
        policy & libc::SCHED_RESET_ON_FORK as libc::c_long != 0
    );
    println!("  slot timer lateness ({} wakes): {}", late.len(), fmt_us(&mut late));
    println!("  added latency send->receive:   {}", fmt_ms(&mut added));
    println!("  ideal slot server, same sends: {}", fmt_ms(&mut ideal_delay));
    println!("  receive - ideal departure:     {}", fmt_ms(&mut excess));
    if poisson {
        // M/D/1 with service time = 1 slot gives the mean queueing wait rho·D/(2(1−rho)); a slotted
        // server adds the wait for the next slot boundary (mean D/2) and the slot itself is the
        // service, so mean delay ≈ D/2 + rho·D/(2(1−rho)) for this slotted variant.
        println!(
            "  M/D/1 expectation (slotted): mean delay ≈ D/2 + ρD/(2(1−ρ)) = {:.2} ms (D = {slot_ms:.0} ms, ρ = {rho:.2})",
            slot_ms / 2.0 + rho * slot_ms / (2.0 * (1.0 - rho))
        );
    } else {
        println!("  design target (periodic, under the rate): added ≤ 1 slot + 2 ms = {:.0} ms", slot_ms + 2.0);
    }
}

fn fmt_us(v: &mut [u64]) -> String {
    v.sort_unstable();
    format!("p50 {} p99 {} p99.9 {} max {} µs", q(v, 0.5), q(v, 0.99), q(v, 0.999), q(v, 1.0))
}

/// Saturated: 1,000 slots/s with a sender far above it; released packets per second.
fn pps(secs: u64) {
    setup_loopback_queue();
    let mut e = engine(1000);
    let rx = UdpSocket::bind("127.0.0.1:9999").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let end = monotonic_us() + secs * 1_000_000;
    let sender = std::thread::spawn(move || {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Held packets are charged to this socket's send buffer: never block on it.
        tx.set_nonblocking(true).unwrap();
        while monotonic_us() < end {
            for _ in 0..20 {
                let _ = tx.send_to(&[0u8; 100], "127.0.0.1:9999");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let receiver = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut buf = [0u8; 2048];
        while rx.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    let start = monotonic_us();
    while monotonic_us() < end {
        poll_once(&mut e, 50, None);
    }
    let elapsed = (monotonic_us() - start) as f64 / 1e6;
    sender.join().unwrap();
    let c = e.counters().next().unwrap().2.clone();
    e.shutdown();
    let got = receiver.join().unwrap();
    println!(
        "pps: 1000 slots/s saturated for {elapsed:.1} s: {:.0} real packets/s released ({} total, {} received), queue drops {}, missed slots {}",
        c.real_packets as f64 / elapsed,
        c.real_packets,
        got,
        c.queue_drops,
        c.missed_slots
    );
}

/// Real engine: 64 bound queues (one per "device"), 1,000 datagrams held, VmRSS of the process.
fn rss_live() {
    let _ = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    let base = vm_rss_kb();
    ipt(&[
        "-t",
        "mangle",
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "udp",
        "--dport",
        "9999",
        "-j",
        "NFQUEUE",
        "--queue-balance",
        &format!("{}:{}", QNUM - 63, QNUM),
    ]);
    let mut e = ShapingEngine::new().unwrap();
    let specs: Vec<QueueSpec> = (0..64u16)
        .map(|i| QueueSpec {
            queue: QNUM - 63 + i,
            label: format!("device {i}"),
            // one slot every 1000 s: everything queued stays held
            config: Config {
                pad_to: 1408,
                mode: Mode::Constant(ConstantConfig { rate: 1, queue_limit: 1000, max_late_slots: 2 }),
            },
            tunnel_dev: "lo".into(),
            cover_dst: None,
            schedule: String::new(),
            companion: None,
        })
        .collect();
    let errs = e.set_queues(&specs);
    assert!(errs.is_empty(), "{errs:?}");
    let with_queues = vm_rss_kb();
    // 1,000 datagrams of 1,000 bytes to 200 loopback addresses (--queue-balance hashes the
    // addresses, spreading them over the 64 queues).
    let socks: Vec<UdpSocket> = (0..50).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for s in &socks {
        s.set_nonblocking(true).unwrap();
    }
    let mut sent = 0;
    for i in 0..1000usize {
        let dst = std::net::SocketAddr::from(([127, 0, (i % 200) as u8, 1], 9999));
        if socks[i % 50].send_to(&[0x5a; 1000], dst).is_ok() {
            sent += 1;
        }
    }
    let t_end = monotonic_us() + 2_000_000;
    while monotonic_us() < t_end {
        poll_once(&mut e, 50, None);
    }
    let held: usize = e.counters().map(|c| c.3).sum();
    let busy = e.counters().filter(|c| c.3 > 0).count();
    let after = vm_rss_kb();
    println!(
        "rss-live: 64 queues ({busy} holding packets), {sent} datagrams sent, {held} held: VmRSS {after} KB (start {base} KB, after binding 64 queues {with_queues} KB)"
    );
    e.shutdown();
}
