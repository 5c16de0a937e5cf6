//! Real-kernel tests of moat's nfnetlink_queue client and AF_PACKET injector.
//!
//! Two network namespaces created by the test (`a` sender, `b` receiver) joined by a veth pair,
//! addresses 10.201.x.0/24 only inside them. In `b` an iptables-nft rule sends UDP to port 5555
//! to an NFQUEUE (this kernel has no nft `queue` statement). Needs root, `ip`, `iptables-nft`.
//! Everything is removed by a Drop guard, also when a test panics.

use moat::netlink::queue::{Msg, Queue, QueueOptions, Verdict};
use moat::sys::Injector;
use moat::wire;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by veth; deleted on drop.
struct Pair {
    a: String,
    b: String,
    va: String,
    vb: String,
    net: u8,
}

impl Pair {
    fn new() -> Pair {
        assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root (network namespaces, NFQUEUE)");
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let p = Pair {
            a: format!("moat-shq-{pid}-{n}-a"),
            b: format!("moat-shq-{pid}-{n}-b"),
            va: format!("msa{}{n}", pid % 100_000),
            vb: format!("msb{}{n}", pid % 100_000),
            net: (n % 200) as u8,
        };
        // The guard exists before any setup step, so a failing step still cleans up.
        p.setup();
        p
    }

    fn setup(&self) {
        let p = self;
        run(&["ip", "netns", "add", &p.a]);
        run(&["ip", "netns", "add", &p.b]);
        run(&["ip", "link", "add", &p.va, "netns", &p.a, "type", "veth", "peer", "name", &p.vb, "netns", &p.b]);
        p.setup_links();
    }

    fn setup_links(&self) {
        let p = self;
        p.ns(&p.a, &["ip", "addr", "add", &format!("{}/24", p.ip_a()), "dev", &p.va]);
        p.ns(&p.b, &["ip", "addr", "add", &format!("{}/24", p.ip_b()), "dev", &p.vb]);
        for (ns, dev) in [(&p.a, &p.va), (&p.b, &p.vb)] {
            p.ns(ns, &["ip", "link", "set", dev, "up"]);
            p.ns(ns, &["ip", "link", "set", "lo", "up"]);
        }
    }

    fn ip_a(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.net, 1)
    }
    fn ip_b(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.net, 2)
    }

    fn ns(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Run `f` on a thread that has entered namespace `ns` (sockets it creates stay there).
    fn inside<T: Send, F: FnOnce() -> T + Send>(&self, ns: &str, f: F) -> T {
        let path = format!("/var/run/netns/{ns}");
        std::thread::scope(|s| {
            s.spawn(|| {
                let f_ns = std::fs::File::open(&path).expect("open netns");
                use std::os::fd::AsRawFd;
                // SAFETY: setns on this thread only, with a netns fd we just opened.
                let r = unsafe { libc::setns(f_ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread panicked")
        })
    }

    fn mac_b(&self) -> [u8; 6] {
        let s = self.ns(&self.b, &["cat", &format!("/sys/class/net/{}/address", self.vb)]);
        let v: Vec<u8> = s.trim().split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    fn snmp_ip(&self, ns: &str, field: &str) -> u64 {
        let text = self.ns(ns, &["cat", "/proc/net/snmp"]);
        let mut lines = text.lines().filter(|l| l.starts_with("Ip:"));
        let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let vals: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let i = names.iter().position(|n| *n == field).unwrap_or_else(|| panic!("no {field}"));
        vals[i].parse().unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

const QNUM: u16 = 4242;

fn queue_rule(p: &Pair) {
    p.ns(
        &p.b,
        &[
            "iptables-nft",
            "-t",
            "mangle",
            "-A",
            "PREROUTING",
            "-i",
            &p.vb,
            "-p",
            "udp",
            "--dport",
            "5555",
            "-j",
            "NFQUEUE",
            "--queue-num",
            &QNUM.to_string(),
        ],
    );
}

/// Receive until `n` packets are in hand (blocking socket; the kernel delivers them promptly).
fn recv_packets(q: &mut Queue, n: usize) -> (Vec<moat::netlink::queue::Packet>, Vec<Msg>) {
    let mut pkts = Vec::new();
    let mut other = Vec::new();
    while pkts.len() < n {
        match q.recv().expect("recv") {
            Msg::Packet(p) => pkts.push(p),
            m => other.push(m),
        }
    }
    (pkts, other)
}

fn collect_acks(q: &mut Queue, n: usize) -> Vec<Msg> {
    let mut v = Vec::new();
    while v.len() < n {
        match q.recv().expect("recv ack") {
            Msg::Packet(p) => panic!("unexpected packet {}", p.id),
            m => v.push(m),
        }
    }
    v
}

#[test]
fn held_packets_are_released_with_grown_payloads_and_arrive_intact() {
    let p = Pair::new();
    queue_rule(&p);
    let mut q = p.inside(&p.b, || Queue::open(QNUM, &QueueOptions::default()).expect("bind queue"));
    let rx = p.inside(&p.b, || UdpSocket::bind((p.ip_b(), 5555)).unwrap());
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx = p.inside(&p.a, || UdpSocket::bind((p.ip_a(), 0)).unwrap());

    // Ten datagrams of different sizes and contents.
    let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| (0..(20 + i as usize * 131)).map(|j| i ^ (j as u8)).collect()).collect();
    for m in &msgs {
        tx.send_to(m, (p.ip_b(), 5555)).unwrap();
    }
    let (pkts, other) = recv_packets(&mut q, 10);
    assert!(other.is_empty(), "{other:?}");
    // Nothing has reached the application while we hold them.
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    assert!(rx.recv_from(&mut buf).is_err(), "a held packet leaked past the queue");
    rx.set_nonblocking(false).unwrap();

    // Release in reverse order, each padded past its IP length to 1400 bytes.
    let mut seqs = Vec::new();
    for pk in pkts.iter().rev() {
        assert!(!pk.truncated());
        assert_eq!(pk.hw_protocol, 0x0800);
        let mut pl = pk.payload.clone();
        let ip_len = wire::ip_len(&pl).unwrap();
        assert_eq!(ip_len, pl.len(), "queue delivers exactly the datagram");
        wire::pad(&mut pl, 1400).unwrap();
        seqs.push(q.verdict(pk.id, Verdict::Accept, None, Some(&pl)).unwrap());
    }
    let acks = collect_acks(&mut q, 10);
    for s in &seqs {
        assert!(acks.contains(&Msg::Ack { seq: *s }), "no ack for verdict {s}: {acks:?}");
    }
    for m in msgs.iter().rev() {
        let (n, from) = rx.recv_from(&mut buf).expect("released datagram did not arrive");
        assert_eq!(from.ip(), p.ip_a());
        assert_eq!(&buf[..n], &m[..], "datagram changed in transit (padding not trimmed?)");
    }
}

#[test]
fn verdict_errors_are_reported_and_drop_verdicts_drop() {
    let p = Pair::new();
    queue_rule(&p);
    let mut q = p.inside(&p.b, || Queue::open(QNUM, &QueueOptions::default()).expect("bind queue"));
    // A second bind of the same queue number fails (another moat running).
    let second = p.inside(&p.b, || Queue::open(QNUM, &QueueOptions::default()));
    assert_eq!(second.err().and_then(|e| e.raw_os_error()), Some(libc::EPERM));

    let seq = q.verdict(0x7fff_fff0, Verdict::Accept, None, None).unwrap();
    assert_eq!(collect_acks(&mut q, 1), vec![Msg::Error { seq, errno: libc::ENOENT }]);

    let rx = p.inside(&p.b, || UdpSocket::bind((p.ip_b(), 5555)).unwrap());
    let rx2 = p.inside(&p.b, || UdpSocket::bind((p.ip_b(), 5556)).unwrap());
    rx2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx = p.inside(&p.a, || UdpSocket::bind((p.ip_a(), 0)).unwrap());
    tx.send_to(b"doomed", (p.ip_b(), 5555)).unwrap();
    let (pk, _) = recv_packets(&mut q, 1);
    let s = q.verdict(pk[0].id, Verdict::Drop, None, None).unwrap();
    assert_eq!(collect_acks(&mut q, 1), vec![Msg::Ack { seq: s }]);
    // A verdict for an id already decided is an error too.
    let s2 = q.verdict(pk[0].id, Verdict::Accept, None, None).unwrap();
    assert_eq!(collect_acks(&mut q, 1), vec![Msg::Error { seq: s2, errno: libc::ENOENT }]);
    // A datagram to an unqueued port sent after it arrives; the dropped one never does.
    tx.send_to(b"marker", (p.ip_b(), 5556)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = rx2.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"marker");
    rx.set_nonblocking(true).unwrap();
    assert!(rx.recv_from(&mut buf).is_err(), "dropped datagram was delivered");
}

#[test]
fn no_listener_means_dropped_not_bypassed() {
    let p = Pair::new();
    queue_rule(&p);
    let q = p.inside(&p.b, || Queue::open(QNUM, &QueueOptions::default()).expect("bind queue"));
    drop(q); // moat died
    let rx = p.inside(&p.b, || UdpSocket::bind((p.ip_b(), 5555)).unwrap());
    let rx2 = p.inside(&p.b, || UdpSocket::bind((p.ip_b(), 5556)).unwrap());
    rx2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx = p.inside(&p.a, || UdpSocket::bind((p.ip_a(), 0)).unwrap());
    for _ in 0..3 {
        tx.send_to(b"secret", (p.ip_b(), 5555)).unwrap();
    }
    tx.send_to(b"marker", (p.ip_b(), 5556)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = rx2.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"marker");
    rx.set_nonblocking(true).unwrap();
    assert!(rx.recv_from(&mut buf).is_err(), "queued traffic passed with nobody listening");
}

/// Wait (up to 5 s) for a counter to move; returns its final value.
fn wait_counter(p: &Pair, ns: &str, field: &str, above: u64) -> u64 {
    let start = Instant::now();
    loop {
        let v = p.snmp_ip(ns, field);
        if v > above || start.elapsed() > Duration::from_secs(5) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn injected_cover_packet_is_counted_as_header_error_and_ignored() {
    let p = Pair::new();
    let inj = p.inside(&p.a, || Injector::open(&p.va, Some(p.mac_b())).expect("AF_PACKET socket"));
    let before_err = p.snmp_ip(&p.b, "InHdrErrors");
    let before_unk = p.snmp_ip(&p.b, "InUnknownProtos");
    let before_out = p.snmp_ip(&p.b, "OutRequests");
    let cover = wire::cover_ipv4(p.ip_a(), p.ip_b(), 1400);
    inj.send(&cover).unwrap();
    let after_err = wait_counter(&p, &p.b, "InHdrErrors", before_err);
    assert_eq!(after_err, before_err + 1, "cover packet not counted as a header error");
    assert_eq!(p.snmp_ip(&p.b, "OutRequests"), before_out, "receiver answered a cover packet");
    // Control: the same packet with a correct checksum reaches protocol dispatch (unknown
    // protocol 253) — so the wrong checksum is what makes the receiver discard it.
    let mut good = cover.clone();
    wire::set_ipv4_checksum(&mut good);
    inj.send(&good).unwrap();
    let after_unk = wait_counter(&p, &p.b, "InUnknownProtos", before_unk);
    assert_eq!(after_unk, before_unk + 1);
    assert_eq!(p.snmp_ip(&p.b, "InHdrErrors"), before_err + 1);
}

#[test]
fn injector_follows_a_recreated_interface() {
    let p = Pair::new();
    let mac = p.mac_b();
    let inj = p.inside(&p.a, || Injector::open(&p.va, Some(mac)).expect("AF_PACKET socket"));
    let before = p.snmp_ip(&p.b, "InHdrErrors");
    let cover = wire::cover_ipv4(p.ip_a(), p.ip_b(), 600);
    inj.send(&cover).unwrap();
    assert_eq!(wait_counter(&p, &p.b, "InHdrErrors", before), before + 1);
    // Re-create the veth pair under the same names (as a restarted wireguard-go re-creates its
    // interface): the old index is gone. Same peer MAC, so only the index changes.
    let old = inj.ifindex();
    p.ns(&p.a, &["ip", "link", "del", &p.va]);
    run(&["ip", "link", "add", &p.va, "netns", &p.a, "type", "veth", "peer", "name", &p.vb, "netns", &p.b]);
    let mac_s: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    p.ns(&p.b, &["ip", "link", "set", &p.vb, "address", &mac_s.join(":")]);
    p.setup_links();
    // the name is looked up again in the calling thread's namespace: send from inside it
    let (inj, r) = p.inside(&p.a, || {
        let r = inj.send(&cover);
        (inj, r)
    });
    r.expect("send after the interface came back");
    assert_ne!(inj.ifindex(), old);
    assert_eq!(wait_counter(&p, &p.b, "InHdrErrors", before + 1), before + 2);
}

#[test]
fn engine_retries_a_queue_that_another_process_still_holds() {
    use moat::daemon::engine::{QueueSpec, ShapingEngine, RETRY_US};
    use moat::shaper::{Config, Mode};
    let p = Pair::new();
    p.inside(&p.b, || {
        // A dying predecessor still holds the queue when the engine starts.
        let old = Queue::open(QNUM, &QueueOptions::default()).expect("bind queue");
        let mut e = ShapingEngine::new().unwrap();
        let spec = QueueSpec {
            queue: QNUM,
            label: "dev".into(),
            config: Config { pad_to: 1400, mode: Mode::PadOnly },
            tunnel_dev: "lo".into(),
            cover_dst: None,
            schedule: String::new(),
            companion: None,
        };
        let errs = e.set_queues(&[spec]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(e.counters().count(), 0);
        assert!(e.next_deadline().is_some(), "a retry must be scheduled");
        drop(old);
        // Serve the engine's timer until the retry has happened (bounded wait, not a timing check).
        let deadline = Instant::now() + Duration::from_micros(3 * RETRY_US);
        while e.counters().count() == 0 && Instant::now() < deadline {
            let fds = e.fds();
            let mut pf: Vec<libc::pollfd> =
                fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(pf.as_mut_ptr(), pf.len() as libc::nfds_t, 100) };
            for (i, x) in pf.iter().enumerate() {
                if x.revents != 0 {
                    e.readable(fds[i]);
                }
            }
        }
        assert_eq!(e.counters().count(), 1, "queue not opened after the predecessor let go");
        assert_eq!(e.next_deadline(), None, "no retry left once everything is open");
    });
}
