//! The shaping engine on real parts: a router namespace and a VPN-server namespace joined by a
//! veth "WAN", a real wireguard-go tunnel between them, an iptables-nft NFQUEUE rule on packets
//! leaving the router's tunnel device, and moat's [`ShapingEngine`] in constant mode serving that
//! queue. The test watches the WAN from the server side with an AF_PACKET socket.
//!
//! Proves: every WireGuard transport message from the router has one size; exactly one message
//! per shaper slot leaves (real + cover = messages seen); the server receives every datagram
//! intact; its kernel counts each cover packet as an IP header error (and nothing else).
//! Needs root, `ip`, `iptables-nft`, `wireguard-go`, `wg`. Addresses 10.202.x/10.203.x only
//! inside the test's own namespaces; everything is removed on drop (also on panic).

use moat::daemon::engine::{QueueSpec, ShapingEngine};
use moat::shaper::{Config, ConstantConfig, Mode, SeededRng};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const WG_PORT: u16 = 51820;
const QNUM: u16 = 4343;
const PAD_TO: u16 = 1408; // wireguard-go MTU 1420 rounded down to 16
const RATE: u32 = 50;

struct Lab {
    r: String,
    s: String,
    vr: String,
    vs: String,
    wr: String,
    ws: String,
    dir: std::path::PathBuf,
    procs: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        Lab::new_named("c")
    }

    /// A lab whose names carry `tag` (tests in one binary run in parallel).
    fn new_named(tag: &str) -> Lab {
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (namespaces, NFQUEUE, wireguard-go)");
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("moat-she-{pid}-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Lab {
            r: format!("moat-she-{pid}-{tag}-r"),
            s: format!("moat-she-{pid}-{tag}-s"),
            vr: format!("mer{}{tag}", pid % 1_000_000),
            vs: format!("mes{}{tag}", pid % 1_000_000),
            wr: format!("mwr{}e{tag}", pid % 1_000_000),
            ws: format!("mws{}e{tag}", pid % 1_000_000),
            dir,
            procs: Vec::new(),
        };
        l.setup();
        l
    }

    fn ns(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        run(&v)
    }

    fn key(&self, name: &str) -> (String, String) {
        let path = self.dir.join(name);
        let k = run(&["wg", "genkey"]);
        std::fs::write(&path, k.trim()).unwrap();
        let mut c = Command::new("wg").arg("pubkey").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(k.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (path.to_string_lossy().into_owned(), String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn wireguard_go(&mut self, ns: &str, ifname: &str) {
        let log = std::fs::File::create(self.dir.join(format!("{ifname}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "wireguard-go", ifname])
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "error")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("wireguard-go");
        self.procs.push(child);
        let sock = format!("/var/run/wireguard/{ifname}.sock");
        let start = Instant::now();
        while !std::path::Path::new(&sock).exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "wireguard-go {ifname} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn setup(&mut self) {
        let (r, s) = (self.r.clone(), self.s.clone());
        run(&["ip", "netns", "add", &r]);
        run(&["ip", "netns", "add", &s]);
        run(&["ip", "link", "add", &self.vr, "netns", &r, "type", "veth", "peer", "name", &self.vs, "netns", &s]);
        self.ns(&r, &["ip", "addr", "add", "10.202.0.1/24", "dev", &self.vr]);
        self.ns(&s, &["ip", "addr", "add", "10.202.0.2/24", "dev", &self.vs]);
        for (ns, dev) in [(&r, &self.vr), (&s, &self.vs)] {
            self.ns(ns, &["ip", "link", "set", dev, "up"]);
            self.ns(ns, &["ip", "link", "set", "lo", "up"]);
        }
        let (rkey, rpub) = self.key("router.key");
        let (skey, spub) = self.key("server.key");
        let (wr, ws) = (self.wr.clone(), self.ws.clone());
        self.wireguard_go(&s, &ws);
        self.ns(
            &s,
            &[
                "wg",
                "set",
                &ws,
                "private-key",
                &skey,
                "listen-port",
                &WG_PORT.to_string(),
                "peer",
                &rpub,
                "allowed-ips",
                "10.203.0.2/32",
            ],
        );
        self.wireguard_go(&r, &wr);
        self.ns(
            &r,
            &[
                "wg",
                "set",
                &wr,
                "private-key",
                &rkey,
                "peer",
                &spub,
                "endpoint",
                &format!("10.202.0.2:{WG_PORT}"),
                "allowed-ips",
                "10.203.0.0/24",
            ],
        );
        for (ns, w, a) in [(&s, &ws, "10.203.0.1/24"), (&r, &wr, "10.203.0.2/24")] {
            self.ns(ns, &["ip", "link", "set", w, "addrgenmode", "none", "multicast", "off"]);
            self.ns(ns, &["ip", "addr", "add", a, "dev", w]);
            self.ns(ns, &["ip", "link", "set", w, "up"]);
        }
        self.ns(
            &r,
            &[
                "iptables-nft",
                "-t",
                "mangle",
                "-A",
                "POSTROUTING",
                "-o",
                &wr,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &QNUM.to_string(),
            ],
        );
    }

    fn inside<T: Send, F: FnOnce() -> T + Send>(&self, ns: &str, f: F) -> T {
        let path = format!("/var/run/netns/{ns}");
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let f_ns = std::fs::File::open(&path).expect("open netns");
                // SAFETY: setns on this thread only.
                assert_eq!(unsafe { libc::setns(f_ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
                f()
            })
            .join()
            .expect("netns thread panicked")
        })
    }

    fn snmp_ip(&self, ns: &str, field: &str) -> u64 {
        let text = self.ns(ns, &["cat", "/proc/net/snmp"]);
        let mut lines = text.lines().filter(|l| l.starts_with("Ip:"));
        let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let vals: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        vals[names.iter().position(|n| *n == field).unwrap()].parse().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.r, &self.s] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for w in [&self.wr, &self.ws] {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{w}.sock"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An AF_PACKET capture of IPv4 packets on one interface, in its own thread.
fn capture(fd: OwnedFd, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(Instant, Vec<u8>)>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: recv into our buffer; the socket has a 100 ms receive timeout.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n > 0 {
                out.push((Instant::now(), buf[..n as usize].to_vec()));
            }
        }
        out
    })
}

fn open_capture(ifname: &str) -> OwnedFd {
    let idx = moat::sys::ifindex(ifname).unwrap();
    // SAFETY: socket/bind/setsockopt with valid arguments; results checked.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, (libc::ETH_P_IP as u16).to_be() as i32);
        assert!(fd >= 0);
        let fd = OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_ll = std::mem::zeroed();
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        sa.sll_ifindex = idx;
        assert_eq!(
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32
            ),
            0
        );
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let rb: libc::c_int = 8 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &rb as *const _ as *const libc::c_void,
            4,
        );
        fd
    }
}

fn poll_engine(e: &mut ShapingEngine, until: Instant) {
    while Instant::now() < until {
        let fds = e.fds();
        let mut p: Vec<libc::pollfd> =
            fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: valid pollfd array.
        let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, 50) };
        if n > 0 {
            for (i, pf) in p.iter().enumerate() {
                if pf.revents != 0 {
                    e.readable(fds[i]);
                }
            }
        }
    }
}

#[test]
fn constant_mode_through_wireguard_one_size_one_message_per_slot_data_intact() {
    let lab = Lab::new();
    let cap_fd = lab.inside(&lab.s, || open_capture(&lab.vs));
    let stop = Arc::new(AtomicBool::new(false));
    let cap = capture(cap_fd, stop.clone());
    let rx = lab.inside(&lab.s, || UdpSocket::bind("10.203.0.1:5555").unwrap());
    // Read while the test runs: the tunnel's skbs are large, a 180-datagram backlog would
    // overflow the socket buffer (RcvbufErrors), which is not what this test is about.
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
            if got.len() == 180 {
                break;
            }
        }
        got
    });
    let tx = lab.inside(&lab.r, || UdpSocket::bind("10.203.0.2:0").unwrap());
    let hdr_err_before = lab.snmp_ip(&lab.s, "InHdrErrors");

    let spec = QueueSpec {
        queue: QNUM,
        label: "test device".into(),
        config: Config { pad_to: PAD_TO, mode: Mode::Constant(ConstantConfig::with_rate(RATE)) },
        tunnel_dev: lab.wr.clone(),
        cover_dst: Some("10.203.0.1".parse().unwrap()),
        schedule: String::new(),
        companion: None,
    };
    let mut engine = lab.inside(&lab.r, || {
        let mut e = ShapingEngine::with_rng(Box::new(SeededRng::new(1))).unwrap();
        let errs = e.set_queues(std::slice::from_ref(&spec));
        assert!(errs.is_empty(), "{errs:?}");
        e
    });

    // Idle 2 s, then bursts of datagrams of many sizes (≤ 1380 bytes payload so they fit), idle
    // between them, and idle again at the end: 6 bursts × 30 datagrams.
    let datagrams: Vec<Vec<u8>> =
        (0..180u32).map(|i| (0..(1 + (i * 97) % 1370)).map(|j| (i * 7 + j) as u8).collect()).collect();
    let sender = {
        let d = datagrams.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            for burst in d.chunks(30) {
                for m in burst {
                    tx.send_to(m, "10.203.0.1:5555").unwrap();
                }
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
    };
    let t0 = Instant::now();
    poll_engine(&mut engine, t0 + Duration::from_secs(14));
    sender.join().unwrap();
    let (_, _, c, held) = engine.counters().next().map(|(q, l, c, h)| (q, l.to_string(), c.clone(), h)).unwrap();
    let stats = engine.stats().clone();
    engine.shutdown();
    std::thread::sleep(Duration::from_millis(300)); // let the last messages cross the veth
    stop.store(true, Ordering::SeqCst);
    let pkts = cap.join().unwrap();

    eprintln!("counters {c:?}\nengine {stats:?}");
    // Data intact and complete at the server, in order.
    let got = receiver.join().unwrap();
    assert_eq!(got.len(), datagrams.len(), "datagrams received");
    for (i, m) in datagrams.iter().enumerate() {
        assert_eq!(&got[i][..], &m[..], "datagram {i} altered");
    }
    assert_eq!(c.queue_drops + c.oversize_drops, 0, "{c:?}");
    assert_eq!(held, 0);
    assert_eq!(c.real_packets, 180);

    // WireGuard transport messages (type 4) from the router: one size, one per slot.
    let mut sizes = std::collections::BTreeMap::new();
    let mut times = Vec::new();
    for (t, p) in &pkts {
        let ihl = (p[0] & 0x0f) as usize * 4;
        if p.len() < ihl + 9 || p[9] != 17 || p[12..16] != [10, 202, 0, 1] {
            continue;
        }
        let udp = &p[ihl..];
        if u16::from_be_bytes([udp[2], udp[3]]) != WG_PORT || udp[8] != 4 {
            continue;
        }
        *sizes.entry(udp.len() - 8).or_insert(0u64) += 1;
        times.push(*t);
    }
    assert_eq!(
        sizes.keys().copied().collect::<Vec<_>>(),
        vec![32 + PAD_TO as usize],
        "transport message sizes: {sizes:?}"
    );
    let msgs: u64 = sizes.values().sum();
    assert_eq!(msgs, c.real_packets + c.cover_packets, "one message per served slot ({c:?})");

    // Every cover packet was discarded by the server's IP layer as a header error.
    let hdr_err = lab.snmp_ip(&lab.s, "InHdrErrors") - hdr_err_before;
    assert_eq!(hdr_err, c.cover_packets, "server header errors vs cover packets");
    assert_eq!(stats.verdict_errors + stats.send_errors + stats.inject_errors, 0, "{stats:?}");

    // Figures (printed, not asserted: timing on a shared machine).
    let first = times[0];
    let secs = (times.last().unwrap().duration_since(first).as_secs()) as usize;
    let mut per_sec = vec![0u32; secs.max(1)];
    for t in &times {
        let s = t.duration_since(first).as_secs() as usize;
        if s < per_sec.len() {
            per_sec[s] += 1;
        }
    }
    let mean = per_sec.iter().sum::<u32>() as f64 / per_sec.len() as f64;
    let var = per_sec.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / per_sec.len() as f64;
    eprintln!(
        "constant {RATE}/s through wireguard-go: {msgs} messages of {} B, per-second counts {per_sec:?}, mean {mean:.2}, CV {:.2}%, \
         missed slots {}, delay p50 {:?} µs p99 {:?} µs, timer lateness p50 {:?} µs p99 {:?} µs",
        32 + PAD_TO as usize,
        100.0 * var.sqrt() / mean,
        c.missed_slots,
        c.delay.quantile(0.5),
        c.delay.quantile(0.99),
        stats.wake_late.quantile(0.5),
        stats.wake_late.quantile(0.99),
    );
}

#[test]
fn stochastic_mode_through_wireguard_pads_without_delay_and_keeps_the_budget() {
    use moat::shaper::StochasticConfig;
    let lab = Lab::new_named("t");
    let cap_fd = lab.inside(&lab.s, || open_capture(&lab.vs));
    let stop = Arc::new(AtomicBool::new(false));
    let cap = capture(cap_fd, stop.clone());
    let rx = lab.inside(&lab.s, || UdpSocket::bind("10.203.0.1:5555").unwrap());
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx = lab.inside(&lab.r, || UdpSocket::bind("10.203.0.2:0").unwrap());
    let hdr_err_before = lab.snmp_ip(&lab.s, "InHdrErrors");
    // A decoy every 10 s on average (360/h), 10 packets/s for 2 s each (~28 KB); budget
    // 1.44 MB/day = a bucket of 60,000 bytes (one hour's share), refilled at ~16 B/s.
    let budget = 1_440_000u64;
    let cfg = StochasticConfig {
        decoys_per_hour: 360,
        rate_cap: 50,
        budget_bytes_per_day: budget,
        default_rate: 10,
        default_duration_s: 2,
        max_duration_s: 300,
        idle_gap: 3_000_000,
        pace_percent: 0,
        pace_window: 3_600_000_000,
        follow: false,
    };
    let spec = QueueSpec {
        queue: QNUM,
        label: "stochastic device".into(),
        config: Config { pad_to: PAD_TO, mode: Mode::Stochastic(cfg) },
        tunnel_dev: lab.wr.clone(),
        cover_dst: Some("10.203.0.1".parse().unwrap()),
        schedule: String::new(),
        companion: None,
    };
    let mut engine = lab.inside(&lab.r, || {
        let mut e = ShapingEngine::with_rng(Box::new(SeededRng::new(4))).unwrap();
        assert!(e.set_queues(std::slice::from_ref(&spec)).is_empty());
        e
    });
    let datagrams: Vec<Vec<u8>> = (0..5u32).map(|i| vec![i as u8; 100 + 200 * i as usize]).collect();
    let sender = {
        let d = datagrams.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            for m in &d {
                tx.send_to(m, "10.203.0.1:5555").unwrap();
            }
        })
    };
    poll_engine(&mut engine, Instant::now() + Duration::from_secs(40));
    sender.join().unwrap();
    let c = engine.counters().next().unwrap().2.clone();
    engine.shutdown();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let pkts = cap.join().unwrap();

    let mut buf = [0u8; 2048];
    for (i, m) in datagrams.iter().enumerate() {
        let (n, _) = rx.recv_from(&mut buf).unwrap_or_else(|e| panic!("datagram {i}: {e}"));
        assert_eq!(&buf[..n], &m[..]);
    }
    assert_eq!(c.real_packets, 5);
    assert_eq!(c.delay.quantile(1.0), Some(0), "stochastic mode delayed a real packet");
    let mut sizes = std::collections::BTreeMap::new();
    for (_, p) in &pkts {
        let ihl = (p[0] & 0x0f) as usize * 4;
        if p.len() > ihl + 8 && p[9] == 17 && p[12..16] == [10, 202, 0, 1] && p[ihl + 8] == 4 {
            *sizes.entry(p.len() - ihl - 8).or_insert(0u64) += 1;
        }
    }
    assert_eq!(sizes.keys().copied().collect::<Vec<_>>(), vec![32 + PAD_TO as usize], "{sizes:?}");
    assert_eq!(sizes.values().sum::<u64>(), c.real_packets + c.cover_packets);
    assert!(c.decoy_periods >= 1, "no decoy in 40 s at 360/h: {c:?}");
    // The bucket holds one hour's share (budget/24) and refills ~16 B/s: 40 s cannot exceed it.
    let allowed = budget / 24 + budget * 23 / 24 * 40 / 86_400;
    assert!(c.cover_bytes <= allowed, "cover {} B above the budget's {allowed} B", c.cover_bytes);
    assert_eq!(lab.snmp_ip(&lab.s, "InHdrErrors") - hdr_err_before, c.cover_packets);
    eprintln!(
        "stochastic through wireguard-go, 40 s: {} decoys, {} skipped for budget, {} cover packets ({} B of {allowed} B allowed), real periods {}",
        c.decoy_periods, c.decoys_skipped_budget, c.cover_packets, c.cover_bytes, c.real_periods
    );
}
