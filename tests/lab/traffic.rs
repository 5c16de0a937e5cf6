//! Traffic from the lab's devices: WAN captures, echo and DNS exchanges, held connections,
//! background traffic runs and throughput.

use super::*;

impl Lab {
    // ----- capture -----

    /// Start capturing the router's WAN link (tcpdump on the internet side of the veth).
    pub fn capture_wan(&self, tag: &str) -> Capture {
        let file = self.dir.join(format!("{tag}.pcap"));
        let _ = fs::remove_file(&file);
        let ptag = format!("tcpdump-{tag}");
        self.spawn(
            &ptag,
            &self.inet,
            &[
                "tcpdump",
                "-i",
                "wan0",
                "-n",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "-s",
                "0",
                "-w",
                &file.to_string_lossy(),
            ],
            &[],
        );
        let ok = self
            .wait_for("tcpdump listening", Duration::from_secs(10), || self.proc_log(&ptag).contains("listening on"));
        assert!(ok, "tcpdump did not start; log:\n{}", self.proc_log(&ptag));
        Capture { tag: ptag, file }
    }

    /// Stop a capture and decode it.
    pub fn stop_capture(&self, cap: Capture) -> Vec<pcap::Packet> {
        thread::sleep(Duration::from_millis(300)); // let packets in flight arrive
        self.kill(&cap.tag, libc::SIGINT);
        let data = fs::read(&cap.file).unwrap_or_else(|e| panic!("read {}: {e}", cap.file.display()));
        let pkts = pcap::read_pcap(&data).unwrap_or_else(|e| panic!("{}: {e}", cap.file.display()));
        self.note(&format!("capture {} : {} packets", cap.file.display(), pkts.len()));
        pkts
    }

    // ----- traffic -----

    /// Look up a device by label.
    pub fn dev(&self, label: &str) -> &Device {
        self.devices.iter().find(|d| d.label == label).unwrap_or_else(|| panic!("no device {label}"))
    }

    /// One attempt of traffic `kind` from `dev`; Ok(detail) when an answer came back intact.
    pub fn attempt(&self, dev: &Device, kind: Traffic, timeout: Duration) -> Result<String, String> {
        let name = kind.name_of(&dev.names).to_string();
        let r = if kind == Traffic::Icmp {
            self.ns(
                &dev.ns,
                &["ping", "-n", "-c", "1", "-W", &timeout.as_secs().max(1).to_string(), &INTERNET4.to_string()],
            )
            .map(|_| "pong".to_string())
        } else {
            in_ns(&dev.ns, || attempt_in_ns(kind, &name, timeout))
        };
        self.note(&format!("attempt {kind:?} from {}: {r:?}", dev.label));
        r
    }

    /// TCP echo through whatever path `dev` has: `len` pseudo-random bytes to `addr`, all of
    /// them must come back unchanged.
    pub fn tcp_echo(&self, dev: &Device, addr: SocketAddr, len: usize, timeout: Duration) -> Result<(), String> {
        let r = in_ns(&dev.ns, || tcp_echo(addr, &pattern(len, addr.port() as u64), timeout));
        self.note(&format!("tcp echo {len} bytes from {} to {addr}: {r:?}", dev.label));
        r
    }

    /// UDP echo: one datagram of `len` bytes must come back unchanged.
    pub fn udp_echo(&self, dev: &Device, addr: SocketAddr, len: usize, timeout: Duration) -> Result<(), String> {
        let payload = pattern(len, 7);
        let r = in_ns(&dev.ns, || {
            udp_roundtrip(addr, &payload, timeout).and_then(|back| {
                if back == payload {
                    Ok(())
                } else {
                    Err("datagram changed".into())
                }
            })
        });
        self.note(&format!("udp echo {len} bytes from {} to {addr}: {r:?}", dev.label));
        r
    }

    /// `n` UDP echoes from `dev` to `addr`, one after another (20, 81, … up to 1,179 bytes), each
    /// of which must come back unchanged: a burst of `n` real packets each way. The error names
    /// the echo that failed.
    pub fn udp_echoes(&self, dev: &Device, addr: SocketAddr, n: usize) -> Result<(), String> {
        (0..n).try_for_each(|i| {
            self.udp_echo(dev, addr, 20 + (i % 20) * 61, Duration::from_secs(5)).map_err(|e| format!("udp {i}: {e}"))
        })
    }

    /// `dig` from `dev`: the A records for `name` from `server` (`+tcp` if `tcp`).
    pub fn dig(&self, dev: &Device, server: IpAddr, port: u16, name: &str, tcp: bool) -> Result<Vec<IpAddr>, String> {
        let at = format!("@{server}");
        let p = port.to_string();
        let mut args = vec!["dig", "+short", "+tries=1", "+time=2", &at, "-p", &p, name, "A"];
        if tcp {
            args.push("+tcp");
        }
        let out = self.ns(&dev.ns, &args)?;
        let addrs: Vec<IpAddr> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if addrs.is_empty() {
            Err(format!("no answer: {}", out.trim()))
        } else {
            Ok(addrs)
        }
    }

    /// Generate traffic of `kinds` from `dev` continuously (one thread per kind, new sockets
    /// each round) until the returned handle is stopped.
    pub fn traffic(&self, dev: &Device, kinds: &[Traffic]) -> TrafficRun {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let ok = Arc::new(AtomicUsize::new(0));
        let tried = Arc::new(AtomicUsize::new(0));
        let path = format!("/var/run/netns/{}", dev.ns);
        for &k in kinds {
            let (stop, ok, tried, name, path) =
                (stop.clone(), ok.clone(), tried.clone(), k.name_of(&dev.names).to_string(), path.clone());
            let ns = dev.ns.clone();
            threads.push(thread::spawn(move || {
                enter_ns(&path).expect("enter device namespace");
                let mut okk = 0;
                while !stop.load(Ordering::SeqCst) {
                    let r = if k == Traffic::Icmp {
                        Command::new("ip")
                            .args(["netns", "exec", &ns, "ping", "-n", "-c", "1", "-W", "1", &INTERNET4.to_string()])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .map(|s| s.success())
                            .unwrap_or(false)
                    } else {
                        attempt_in_ns(k, &name, Duration::from_millis(400)).is_ok()
                    };
                    tried.fetch_add(1, Ordering::Relaxed);
                    if r {
                        ok.fetch_add(1, Ordering::Relaxed);
                        okk += 1;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                (k, okk)
            }));
        }
        self.note(&format!("traffic from {} started: {kinds:?}", dev.label));
        TrafficRun { stop, threads, ok, tried }
    }

    /// Open a long-lived connection from `dev` to the internet host's push port and keep
    /// reading it on a thread until the handle is dropped (a device's persistent cloud
    /// connection: the server's packets keep coming during faults). None if it cannot connect.
    pub fn hold_connection(&self, dev: &Device) -> Option<HeldConnection> {
        let addr = SocketAddr::new(IpAddr::V4(INTERNET4), PUSH_PORT);
        let c = in_ns(&dev.ns, || TcpStream::connect_timeout(&addr, Duration::from_secs(2)));
        self.note(&format!("persistent connection from {} to {addr}: {:?}", dev.label, c.as_ref().map(|_| ())));
        let c = c.ok()?;
        c.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(AtomicUsize::new(0));
        let (s2, g2, mut r) = (stop.clone(), got.clone(), c.try_clone().ok()?);
        let t = thread::spawn(move || {
            let mut b = [0u8; 256];
            while !s2.load(Ordering::SeqCst) {
                match r.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        g2.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        });
        Some(HeldConnection { stream: c, stop, got, thread: Some(t) })
    }

    /// Analyse captured WAN packets (see [`WanReport`]).
    pub fn analyze(&self, pkts: &[pcap::Packet], dev: &Device) -> WanReport {
        let r = WanReport::new(pkts, dev);
        self.note(&format!("analysis for {}:\n{}", dev.label, r.summary()));
        r
    }
}

/// Interface-name grammar (same as moat's `IfName`).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// A running capture.
pub struct Capture {
    tag: String,
    /// The pcap file.
    pub file: PathBuf,
}

/// A persistent connection held open by [`Lab::hold_connection`]; closed when dropped.
pub struct HeldConnection {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    got: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HeldConnection {
    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.got.load(Ordering::Relaxed)
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Running background traffic.
pub struct TrafficRun {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<(Traffic, usize)>>,
    ok: Arc<AtomicUsize>,
    tried: Arc<AtomicUsize>,
}

impl TrafficRun {
    /// Attempts that got an intact answer so far.
    pub fn successes(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }
    /// Stop and return, per kind, how many attempts got an answer.
    pub fn stop(mut self) -> Vec<(Traffic, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.drain(..).map(|t| t.join().expect("traffic thread")).collect()
    }
}

impl Drop for TrafficRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Kinds of device traffic the leak matrix generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Traffic {
    /// TCP to the internet host, port 80, an HTTP-like request naming the device's host.
    Tcp,
    /// UDP to the internet host, port 7, payload naming the device's host.
    Udp,
    /// DNS over UDP to the router's LAN address.
    DnsRouter,
    /// DNS over TCP to the router's LAN address.
    DnsRouterTcp,
    /// DNS over UDP to an outside resolver (203.0.113.53).
    DnsOutside,
    /// DNS over TCP to the outside resolver.
    DnsOutsideTcp,
    /// DNS-over-TLS port: TCP to 203.0.113.53:853.
    Dot,
    /// QUIC: UDP to the internet host's port 443.
    Quic,
    /// TCP over IPv6 to the internet host.
    Tcp6,
    /// UDP over IPv6 to the internet host.
    Udp6,
    /// DNS over UDP to the router's IPv6 LAN address.
    DnsRouter6,
    /// ICMP echo (ping) to the internet host.
    Icmp,
}

impl Traffic {
    /// Which of a device's names this kind of traffic carries: the first for DNS to the router
    /// and TCP, the second (if any) for the outside resolver, UDP and QUIC.
    pub fn name_of(self, names: &[String]) -> &str {
        let i = match self {
            Traffic::DnsOutside | Traffic::DnsOutsideTcp | Traffic::Udp | Traffic::Quic | Traffic::Udp6 => 1,
            _ => 0,
        };
        &names[i % names.len()]
    }

    /// Every kind.
    pub const ALL: [Traffic; 12] = [
        Traffic::Tcp,
        Traffic::Udp,
        Traffic::DnsRouter,
        Traffic::DnsRouterTcp,
        Traffic::DnsOutside,
        Traffic::DnsOutsideTcp,
        Traffic::Dot,
        Traffic::Quic,
        Traffic::Tcp6,
        Traffic::Udp6,
        Traffic::DnsRouter6,
        Traffic::Icmp,
    ];
}

/// A DNS query message for `name` (type A, recursion desired).
pub fn dns_query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

pub(super) fn attempt_in_ns(kind: Traffic, name: &str, timeout: Duration) -> Result<String, String> {
    let v4 = |ip: Ipv4Addr, p: u16| SocketAddr::new(IpAddr::V4(ip), p);
    let v6 = |ip: Ipv6Addr, p: u16| SocketAddr::new(IpAddr::V6(ip), p);
    let http = format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n").into_bytes();
    let id = (std::process::id() as u16) ^ (Instant::now().elapsed().subsec_nanos() as u16);
    let q = dns_query(name, id);
    let dns_ok = |r: Vec<u8>| {
        if r.len() >= 12 && r[0..2] == q[0..2] {
            Ok(format!("dns answer {} bytes", r.len()))
        } else {
            Err("bad dns answer".to_string())
        }
    };
    match kind {
        Traffic::Tcp => tcp_echo(v4(INTERNET4, 80), &http, timeout).map(|_| "echo".into()),
        Traffic::Udp => udp_roundtrip(v4(INTERNET4, 7), &http, timeout).map(|_| "echo".into()),
        Traffic::Quic => udp_roundtrip(v4(INTERNET4, 443), &http, timeout).map(|_| "echo".into()),
        Traffic::Dot => tcp_echo(v4(RESOLVER4, 853), &http, timeout).map(|_| "echo".into()),
        Traffic::Tcp6 => tcp_echo(v6(INTERNET6, 80), &http, timeout).map(|_| "echo".into()),
        Traffic::Udp6 => udp_roundtrip(v6(INTERNET6, 7), &http, timeout).map(|_| "echo".into()),
        Traffic::DnsRouter => udp_roundtrip(v4(ROUTER_LAN4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsRouter6 => udp_roundtrip(v6(ROUTER_LAN6, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsOutside => udp_roundtrip(v4(RESOLVER4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsRouterTcp => tcp_dns(v4(ROUTER_LAN4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsOutsideTcp => tcp_dns(v4(RESOLVER4, 53), &q, timeout).and_then(dns_ok),
        Traffic::Icmp => Err("icmp is sent with ping".into()),
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(super) fn tcp_echo(addr: SocketAddr, data: &[u8], timeout: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let writer = {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let d = data.to_vec();
        thread::spawn(move || {
            let r = w.write_all(&d);
            let _ = w.shutdown(Shutdown::Write);
            r
        })
    };
    let mut back = Vec::with_capacity(data.len());
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) => {
                let _ = s.shutdown(Shutdown::Both);
                let _ = writer.join();
                return Err(format!("read from {addr} after {} of {} bytes: {e}", back.len(), data.len()));
            }
        }
    }
    writer.join().map_err(|_| "writer panicked".to_string())?.map_err(|e| format!("write to {addr}: {e}"))?;
    if back == data {
        Ok(())
    } else {
        Err(format!("echo from {addr} differs: sent {} bytes, got {}", data.len(), back.len()))
    }
}

pub(super) fn udp_roundtrip(addr: SocketAddr, data: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    s.connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.send(data).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).map_err(|e| format!("recv from {addr}: {e}"))?;
    Ok(buf[..n].to_vec())
}

pub(super) fn tcp_dns(addr: SocketAddr, q: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(q);
    s.write_all(&msg).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| format!("read from {addr}: {e}"))?;
    let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut r).map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(r)
}

/// TCP throughput: send `bytes` to the internet host's sink (port 9); returns bytes/second.
pub fn tcp_throughput(bytes: u64, timeout: Duration) -> Result<f64, String> {
    let addr = SocketAddr::new(IpAddr::V4(INTERNET4), 9);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(timeout)).ok();
    s.set_read_timeout(Some(timeout)).ok();
    let chunk = pattern(128 * 1024, 9);
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = chunk.len().min((bytes - sent) as usize);
        s.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    let mut got = [0u8; 8];
    s.read_exact(&mut got).map_err(|e| format!("sink count: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let counted = u64::from_be_bytes(got);
    if counted != bytes {
        return Err(format!("sink counted {counted} of {bytes} bytes"));
    }
    Ok(bytes as f64 / secs)
}
