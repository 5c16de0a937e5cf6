//! Shaper benchmarks (figures, not tests). Run through `scripts/bench-shaper.sh`, which builds
//! this in release mode, runs the real-kernel parts inside a throwaway network namespace and the
//! replay under callgrind.
//!
//!   shaper_bench replay N        pure path per queued packet (core + held store + padding)
//!   shaper_bench rss             64 constant-mode devices holding 1,000 packets: VmRSS
//!   shaper_bench queueing        constant-mode queueing delay (virtual clock) under Poisson load
//!   shaper_bench live SECS RATE  real engine on loopback: NFQUEUE + timerfd slots; slot jitter,
//!                                added latency of UDP datagrams at half the rate (needs root, run
//!                                in a fresh netns: it installs an iptables-nft rule there)
//!   shaper_bench pps SECS        real engine at 1,000 slots/s, saturated: packets/s released
//!   shaper_bench rss-live        real engine, 64 queues (NFQUEUE --queue-balance), 1,000 packets
//!                                held: process VmRSS (needs root, fresh netns)

use moat::packet;
use moat::shaper::engine::{monotonic_us, HeldStore, QueueSpec, ShapingEngine};
use moat::shaper::{Action, Config, ConstantConfig, DelayHistogram, DeviceShaper, Micros, Mode, Rng, SeededRng};
use std::net::UdpSocket;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("replay") => replay(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000)),
        Some("rss") => rss(),
        Some("queueing") => queueing(),
        Some("live") => live(arg(&args, 1, 30), arg(&args, 2, 50) as u32),
        Some("pps") => pps(arg(&args, 1, 10)),
        Some("rss-live") => rss_live(),
        _ => {
            eprintln!("usage: shaper_bench replay N | rss | queueing | live SECS RATE | pps SECS");
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
    packet::set_ipv4_checksum(&mut p);
    p
}

/// What the engine does per queued packet, minus the syscalls: header check, held store, shaper
/// event, slot tick, padding of the released copy.
fn replay(n: u64) {
    let mut rng = SeededRng::new(7);
    let cfg = Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig::with_rate(1000)) };
    let mut sh = DeviceShaper::new(&cfg, 0, &mut rng);
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
        let len = packet::ip_len(p).unwrap();
        held.insert(id, p[..len].to_vec().into_boxed_slice());
        sh.on_packet(now, id, len as u16, &mut rng, &mut actions);
        while let Some(t) = sh.next_wakeup().filter(|&t| t <= now) {
            sh.on_tick(t, &mut rng, &mut actions);
        }
        for a in actions.drain(..) {
            if let Action::Release { id, pad_to } = a {
                let b = held.remove(&id).unwrap();
                // what Queue::accept_padded does into its send buffer
                verdict_buf.clear();
                verdict_buf.extend_from_slice(&b);
                packet::extend_zeros(&mut verdict_buf, pad_to as usize - b.len());
                out_bytes += verdict_buf.len() as u64;
            }
        }
    }
    let c = sh.counters();
    println!("replay: {n} packets, released {}, cover {}, bytes out {out_bytes}", c.real_packets, c.cover_packets);
}

fn vm_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
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
    println!("rss: 64 devices, {held} held packets: VmRSS {after} KB (process before: {base} KB; heap growth {} KB)", after - base);
}

/// Queueing delay added by constant mode (virtual clock) for Poisson arrivals at 25 %, 50 % and
/// 90 % of the slot rate, 50 slots/s.
fn queueing() {
    for load in [0.25f64, 0.5, 0.9] {
        let mut rng = SeededRng::new(3);
        let cfg = Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig::with_rate(50)) };
        let mut sh = DeviceShaper::new(&cfg, 0, &mut rng);
        let mut out = Vec::new();
        let mut t = 0f64;
        let mut id = 0;
        while t < 3600e6 {
            t += rng.exp(1e6 / (50.0 * load));
            while let Some(w) = sh.next_wakeup().filter(|&w| w as f64 <= t) {
                sh.on_tick(w, &mut rng, &mut out);
            }
            sh.on_packet(t as Micros, id, 100, &mut rng, &mut out);
            id += 1;
            out.clear();
        }
        let d = &sh.counters().delay;
        println!(
            "queueing: 50 slots/s, Poisson load {:.0} %: {} packets, added delay p50 {} µs, p99 {} µs (slot = 20000 µs), queue drops {}",
            load * 100.0,
            d.count(),
            d.quantile(0.5).unwrap(),
            d.quantile(0.99).unwrap(),
            sh.counters().queue_drops
        );
    }
}

const QNUM: u16 = 4999;

fn ipt(args: &[&str]) {
    let st = std::process::Command::new("iptables-nft").args(args).status().expect("iptables-nft");
    assert!(st.success(), "iptables-nft {args:?}");
}

fn setup_loopback_queue() {
    let _ = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    ipt(&["-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", &QNUM.to_string()]);
}

fn engine(rate: u32) -> ShapingEngine {
    let mut e = ShapingEngine::new().unwrap();
    let spec = QueueSpec {
        queue: QNUM,
        label: "bench".into(),
        config: Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig { rate, queue_limit: 1000, max_late_slots: 2 }) },
        tunnel_dev: "lo".into(),
        cover_dst: None, // cover slots are still scheduled; nothing is injected
    };
    let errs = e.set_queues(&[spec]);
    assert!(errs.is_empty(), "{errs:?}");
    e
}

fn poll_once(e: &mut ShapingEngine, timeout_ms: i32) {
    let fds = e.fds();
    let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: valid pollfd array.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if n > 0 {
        for (i, pf) in p.iter().enumerate() {
            if pf.revents != 0 {
                e.readable(fds[i]);
            }
        }
    }
}

/// Real engine on loopback: slot timer lateness and end-to-end added latency.
fn live(secs: u64, rate: u32) {
    setup_loopback_queue();
    let mut e = engine(rate);
    let rx = UdpSocket::bind("127.0.0.1:9999").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let end = monotonic_us() + secs * 1_000_000;
    let sender = std::thread::spawn(move || {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rng = SeededRng::new(11);
        let mut sent = 0u64;
        while monotonic_us() < end {
            std::thread::sleep(Duration::from_micros(rng.exp(2e6 / rate as f64) as u64));
            let mut m = [0u8; 100];
            m[..8].copy_from_slice(&monotonic_us().to_be_bytes());
            tx.send_to(&m, "127.0.0.1:9999").unwrap();
            sent += 1;
        }
        sent
    });
    let receiver = std::thread::spawn(move || {
        let mut h = DelayHistogram::default();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            if n >= 8 {
                let t = u64::from_be_bytes(buf[..8].try_into().unwrap());
                h.record(monotonic_us().saturating_sub(t));
            }
        }
        h
    });
    while monotonic_us() < end + 1_000_000 {
        poll_once(&mut e, 50);
    }
    let sent = sender.join().unwrap();
    e.shutdown();
    let lat = receiver.join().unwrap();
    let st = e.stats();
    println!(
        "live: {rate} slots/s for {secs} s, {sent} datagrams at ~{:.0}/s: slot timer lateness p50 {:?} µs p99 {:?} µs ({} wakes); \
         added latency send->receive p50 {:?} µs p99 {:?} µs ({} received; slot = {} µs)",
        rate as f64 / 2.0,
        st.wake_late.quantile(0.5).unwrap_or(0),
        st.wake_late.quantile(0.99).unwrap_or(0),
        st.wake_late.count(),
        lat.quantile(0.5).unwrap_or(0),
        lat.quantile(0.99).unwrap_or(0),
        lat.count(),
        1_000_000 / rate
    );
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
        poll_once(&mut e, 50);
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
    ipt(&["-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-balance", &format!("{}:{}", QNUM - 63, QNUM)]);
    let mut e = ShapingEngine::new().unwrap();
    let specs: Vec<QueueSpec> = (0..64u16)
        .map(|i| QueueSpec {
            queue: QNUM - 63 + i,
            label: format!("device {i}"),
            // one slot every 1000 s: everything queued stays held
            config: Config { pad_to: 1408, mode: Mode::Constant(ConstantConfig { rate: 1, queue_limit: 1000, max_late_slots: 2 }) },
            tunnel_dev: "lo".into(),
            cover_dst: None,
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
        poll_once(&mut e, 50);
    }
    let held: usize = e.counters().map(|c| c.3).sum();
    let busy = e.counters().filter(|c| c.3 > 0).count();
    let after = vm_rss_kb();
    println!(
        "rss-live: 64 queues ({busy} holding packets), {sent} datagrams sent, {held} held: VmRSS {after} KB (start {base} KB, after binding 64 queues {with_queues} KB)"
    );
    e.shutdown();
}
