//! The shaping queue engine: the thin effectful shell around the pure per-device shapers.
//!
//! This is the only part of `shaper` that touches the system. It owns one [`Queue`] per shaped
//! device (the queue number identifies the device: the plan gives each shaped device its own
//! queue, matched by its mark) and per `pad_all` tunnel, one [`Injector`] per tunnel device,
//! the held packets, and a `timerfd` armed at the earliest shaper deadline. The daemon polls
//! [`ShapingEngine::fds`] (the queue sockets and the timerfd) and calls
//! [`ShapingEngine::readable`]; everything else happens inside: packets are read until the socket
//! is empty, fed to their device's [`DeviceShaper`], and the returned actions are carried out
//! (verdict with the padded payload, verdict drop, cover packet injection).
//!
//! The timerfd (absolute `CLOCK_MONOTONIC`, microsecond resolution) wakes the loop exactly at a
//! slot, independent of the millisecond granularity of `poll`'s timeout.
//!
//! Failure behaviour: a queue that cannot be bound stays unbound, so the kernel drops its
//! packets (no fail-open). Malformed, truncated or oversized packets get a drop verdict; for an
//! oversized one the sender also gets an ICMP "fragmentation needed" (IPv4 with DF) or ICMPv6
//! "packet too big" naming `pad_to` as the MTU (at most 50 per second), exactly what a router
//! with a `pad_to`-sized link would send, so TCP (PMTU discovery; needed because the MSS clamp
//! only sees SYNs in one direction) and DF-setting UDP such as QUIC shrink their packets. Verdict
//! failures reported by the kernel are counted and logged.

use super::{Action, Config, Counters, DeviceShaper, Micros, OsRng, PacketId, Rng};
use crate::inject::Injector;
use crate::nfqueue::{Msg, Queue, QueueOptions, Verdict};
use crate::packet;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// One queue the engine should serve.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// NFQUEUE number.
    pub queue: u16,
    /// Label for logs and status (device name or `pad:<tunnel>`).
    pub label: String,
    /// Shaper configuration (pad size and mode).
    pub config: Config,
    /// Tunnel device cover packets are written to.
    pub tunnel_dev: String,
    /// Where cover packets are addressed; `None` = no cover packets (pad-only queues).
    pub cover_dst: Option<IpAddr>,
}

/// Engine-wide error counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Verdicts the kernel rejected.
    pub verdict_errors: u64,
    /// Verdicts that could not be sent.
    pub send_errors: u64,
    /// Receive errors (`ENOBUFS`: the kernel dropped packets because we were too slow).
    pub recv_errors: u64,
    /// Packets dropped as malformed or truncated.
    pub malformed: u64,
    /// Cover packets that could not be injected.
    pub inject_errors: u64,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" sent back for oversized packets.
    pub icmp_sent: u64,
    /// How late the timer woke the engine after the deadline it was armed for (µs).
    pub wake_late: super::DelayHistogram,
}

/// Hasher for kernel-assigned packet ids (sequential integers, not attacker-chosen): one
/// multiplication instead of SipHash.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Held packets by id: the bytes of the IP datagram, nothing more.
pub type HeldStore = HashMap<PacketId, Box<[u8]>, std::hash::BuildHasherDefault<IdHasher>>;

struct Dev {
    spec: QueueSpec,
    queue: Queue,
    shaper: DeviceShaper,
    held: HeldStore,
    cover: Option<(Vec<u8>, Injector)>,
}

/// The engine. See the module docs.
pub struct ShapingEngine {
    devs: Vec<Dev>,
    timer: OwnedFd,
    armed: Option<Micros>,
    rng: Box<dyn Rng + Send>,
    actions: Vec<Action>,
    stats: EngineStats,
    opts: QueueOptions,
    last_log: Micros,
    icmp4: Option<OwnedFd>,
    icmp6: Option<OwnedFd>,
    /// The queues asked for by the last [`ShapingEngine::set_queues`].
    wanted: Vec<QueueSpec>,
    /// When to retry opening queues that failed (e.g. still held by a dying predecessor).
    retry_at: Option<Micros>,
    /// Token bucket for ICMP errors: tokens (at most 50) and the time they were counted.
    icmp_tokens: (u32, Micros),
}

fn raw_socket(family: libc::c_int, proto: libc::c_int) -> Option<OwnedFd> {
    // SAFETY: plain socket(2); result checked and owned.
    let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        log::warn!(
            "raw ICMP socket: {}; oversized packets are dropped without an ICMP error",
            io::Error::last_os_error()
        );
        None
    } else {
        // SAFETY: fresh fd we own.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// How often opening a queue that failed is retried.
pub const RETRY_US: Micros = 5_000_000;

/// `CLOCK_MONOTONIC` in microseconds: the clock every shaper in the engine runs on.
pub fn monotonic_us() -> Micros {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Runs the calling process with real-time scheduling (`SCHED_FIFO` priority 1, the lowest;
/// children such as `nft` and `ip` start with normal scheduling: `SCHED_RESET_ON_FORK`) when `on`,
/// or back with normal scheduling when not. This is `option realtime` of the main section: it cuts
/// the slot timer's wake-up lateness under CPU contention (BENCHMARKS.md), at a price: a real-time
/// task is never preempted by normal tasks, so a bug that spins would starve the router. Guard:
/// `RLIMIT_RTTIME` - more than 200 ms of CPU without blocking sends SIGXCPU (which ends the daemon;
/// its queues then drop, fail closed), 1 s SIGKILL; the kernel's RT throttling
/// (`sched_rt_runtime_us`, 95 % by default) still leaves normal tasks a share.
pub fn set_realtime(on: bool) -> io::Result<()> {
    let (policy, prio) = if on { (libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, 1) } else { (libc::SCHED_OTHER, 0) };
    if on {
        let lim = libc::rlimit { rlim_cur: 200_000, rlim_max: 1_000_000 };
        // SAFETY: valid rlimit for this process.
        if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // The raw syscall: musl's sched_setscheduler() is a stub returning ENOSYS, and the kernel's
    // struct sched_param is just the priority (musl's has more fields).
    let param: libc::c_int = prio;
    // SAFETY: pid 0 = the calling thread; the kernel reads one int from a valid pointer.
    if unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0 as libc::pid_t, policy, &param as *const libc::c_int) }
        != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The first IPv4 (or IPv6, for `v6`) address of interface `dev`, if any.
pub fn interface_addr(dev: &str, v6: bool) -> Option<IpAddr> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut found = None;
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: p walks the list returned by getifaddrs.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string from the kernel.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != dev.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr is non-null; its family tells which sockaddr it is.
        let fam = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        if fam == libc::AF_INET && !v6 {
            // SAFETY: family AF_INET means sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            found = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
            break;
        }
        if fam == libc::AF_INET6 && v6 {
            // SAFETY: family AF_INET6 means sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            found = Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            break;
        }
    }
    // SAFETY: ifap came from getifaddrs.
    unsafe { libc::freeifaddrs(ifap) };
    found
}

fn cover_template(spec: &QueueSpec) -> io::Result<Option<(Vec<u8>, Injector)>> {
    let Some(dst) = spec.cover_dst else { return Ok(None) };
    let pkt = match dst {
        IpAddr::V4(d) => {
            let src = match interface_addr(&spec.tunnel_dev, false) {
                Some(IpAddr::V4(a)) => a,
                _ => {
                    log::warn!(
                        "{}: tunnel {} has no IPv4 address; cover packets use 0.0.0.0",
                        spec.label,
                        spec.tunnel_dev
                    );
                    Ipv4Addr::UNSPECIFIED
                }
            };
            packet::cover_ipv4(src, d, spec.config.pad_to)
        }
        IpAddr::V6(d) => {
            let src = match interface_addr(&spec.tunnel_dev, true) {
                Some(IpAddr::V6(a)) => a,
                _ => Ipv6Addr::UNSPECIFIED,
            };
            packet::cover_ipv6(src, d, spec.config.pad_to)
        }
    };
    Ok(Some((pkt, Injector::open(&spec.tunnel_dev, None)?)))
}

impl ShapingEngine {
    /// A new engine serving no queues yet, with the OS random source.
    pub fn new() -> io::Result<ShapingEngine> {
        Self::with_rng(Box::new(OsRng::new()))
    }

    /// A new engine with a given random source (benchmarks use a seeded one).
    pub fn with_rng(rng: Box<dyn Rng + Send>) -> io::Result<ShapingEngine> {
        // SAFETY: plain timerfd_create; result checked and owned.
        let t = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if t < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ShapingEngine {
            devs: Vec::new(),
            // SAFETY: fresh fd we own.
            timer: unsafe { OwnedFd::from_raw_fd(t) },
            armed: None,
            rng,
            actions: Vec::new(),
            stats: EngineStats::default(),
            opts: QueueOptions::default(),
            last_log: 0,
            icmp4: raw_socket(libc::AF_INET, libc::IPPROTO_ICMP),
            icmp6: raw_socket(libc::AF_INET6, libc::IPPROTO_ICMPV6),
            icmp_tokens: (50, 0),
            wanted: Vec::new(),
            retry_at: None,
        })
    }

    /// Serve exactly these queues. Queues whose spec did not change keep their state and held
    /// packets; changed or removed ones are flushed (held packets dropped) and closed. Returns the
    /// errors of queues that could not be opened (those stay unbound: their packets are dropped;
    /// opening them is retried every [`RETRY_US`]).
    pub fn set_queues(&mut self, specs: &[QueueSpec]) -> Vec<String> {
        let now = monotonic_us();
        self.wanted = specs.to_vec();
        let mut errors = Vec::new();
        let mut keep = Vec::new();
        for mut d in std::mem::take(&mut self.devs) {
            if specs.contains(&d.spec) {
                keep.push(d);
            } else {
                self.flush_dev(&mut d);
            }
        }
        self.devs = keep;
        for s in specs {
            if self.devs.iter().any(|d| d.spec == *s) {
                continue;
            }
            let opened = Queue::open(s.queue, &self.opts).and_then(|q| {
                q.set_nonblocking(true)?;
                Ok(q)
            });
            let queue = match opened {
                Ok(q) => q,
                Err(e) => {
                    errors.push(format!("queue {} ({}): {e}", s.queue, s.label));
                    continue;
                }
            };
            let cover = match cover_template(s) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("queue {} ({}): cover sender on {}: {e}", s.queue, s.label, s.tunnel_dev));
                    None
                }
            };
            let shaper = DeviceShaper::new(&s.config, now, self.rng.as_mut());
            let mode = match &s.config.mode {
                super::Mode::Constant(c) => format!("constant {} slots/s, queue {}", c.rate, c.queue_limit),
                super::Mode::Stochastic(c) => format!(
                    "stochastic {} decoys/h, cap {}/s, budget {} B/day",
                    c.decoys_per_hour, c.rate_cap, c.budget_bytes_per_day
                ),
                super::Mode::PadOnly => "pad only".to_string(),
            };
            log::info!("shaping {} on queue {} (pad to {} bytes, {mode})", s.label, s.queue, s.config.pad_to);
            self.devs.push(Dev { spec: s.clone(), queue, shaper, held: HeldStore::default(), cover });
        }
        let missing = self.wanted.iter().any(|w| !self.devs.iter().any(|d| d.spec == *w));
        self.retry_at = missing.then_some(now + RETRY_US);
        self.rearm();
        errors
    }

    /// The file descriptors to poll for readability: every queue socket and the timer.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = self.devs.iter().map(|d| d.queue.as_raw_fd()).collect();
        v.push(self.timer.as_raw_fd());
        v
    }

    /// `fd` (one of [`Self::fds`]) is readable.
    pub fn readable(&mut self, fd: RawFd) {
        let now = monotonic_us();
        if fd == self.timer.as_raw_fd() {
            let mut buf = [0u8; 8];
            // SAFETY: reading the 8-byte expiry count into our buffer (non-blocking fd).
            unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, 8) };
            if let Some(t) = self.armed {
                self.stats.wake_late.record(now.saturating_sub(t));
            }
            self.armed = None;
        } else if let Some(i) = self.devs.iter().position(|d| d.queue.as_raw_fd() == fd) {
            self.drain_queue(i, now);
        }
        self.tick(now);
    }

    /// Serve every deadline that has passed at `now` and re-arm the timer.
    pub fn tick(&mut self, now: Micros) {
        if self.retry_at.is_some_and(|t| t <= now) {
            let wanted = std::mem::take(&mut self.wanted);
            for e in self.set_queues(&wanted) {
                log::warn!("{e} (retrying every {} s)", RETRY_US / 1_000_000);
            }
        }
        for i in 0..self.devs.len() {
            if self.devs[i].shaper.next_wakeup().is_some_and(|t| t <= now) {
                // Packets that reached the queue before this wake-up (but whose socket was not
                // polled yet, e.g. the timer fired first) belong in this slot, not the next one:
                // one non-blocking recv, usually EAGAIN.
                self.drain_queue(i, now);
                let d = &mut self.devs[i];
                d.shaper.on_tick(now, self.rng.as_mut(), &mut self.actions);
                self.execute(i);
            }
        }
        if now >= self.last_log + 60_000_000 {
            self.last_log = now;
            for d in &self.devs {
                let c = d.shaper.counters();
                log::debug!(
                    "{}: real {} pkts/{} B, cover {} pkts/{} B, drops queue {} oversize {}, delay p50 {} p99 {} us",
                    d.spec.label,
                    c.real_packets,
                    c.real_bytes,
                    c.cover_packets,
                    c.cover_bytes,
                    c.queue_drops,
                    c.oversize_drops,
                    c.delay.quantile(0.5).unwrap_or(0),
                    c.delay.quantile(0.99).unwrap_or(0)
                );
            }
        }
        self.rearm();
    }

    fn drain_queue(&mut self, i: usize, now: Micros) {
        loop {
            let msg = match self.devs[i].queue.recv() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.stats.recv_errors += 1;
                    log::warn!("{}: receive: {e}", self.devs[i].spec.label);
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        continue;
                    }
                    break;
                }
            };
            match msg {
                Msg::Packet(p) => {
                    let d = &mut self.devs[i];
                    let len = match packet::ip_len(&p.payload) {
                        Ok(l) if !p.truncated() => l,
                        _ => {
                            self.stats.malformed += 1;
                            let _ = d.queue.verdict(p.id, Verdict::Drop, None, None);
                            continue;
                        }
                    };
                    let len16 = len.min(u16::MAX as usize) as u16;
                    let pad_to = d.spec.config.pad_to;
                    if len <= pad_to as usize {
                        let mut bytes = p.payload;
                        bytes.truncate(len);
                        d.held.insert(p.id, bytes.into_boxed_slice());
                    } else {
                        // Too big to leave at the constant size: it is dropped (below); tell the
                        // sender the path MTU like a router with a smaller link would, so TCP and
                        // DF-setting UDP (QUIC) shrink their packets.
                        self.icmp_too_big(&p.payload, pad_to, now);
                    }
                    let d = &mut self.devs[i];
                    d.shaper.on_packet(now, p.id, len16, self.rng.as_mut(), &mut self.actions);
                    self.execute(i);
                }
                Msg::Ack { .. } => {}
                Msg::Error { seq, errno } => {
                    self.stats.verdict_errors += 1;
                    log::warn!(
                        "{}: verdict {seq} rejected: {}",
                        self.devs[i].spec.label,
                        io::Error::from_raw_os_error(errno)
                    );
                }
            }
        }
    }

    fn icmp_too_big(&mut self, orig: &[u8], mtu: u16, now: Micros) {
        let (tokens, at) = self.icmp_tokens;
        let tokens = (tokens as u64 + now.saturating_sub(at) / 20_000).min(50) as u32; // 50/s
        if tokens == 0 {
            self.icmp_tokens = (0, at);
            return;
        }
        self.icmp_tokens = (tokens - 1, now);
        let sent = match packet::version(orig) {
            Some(4) if orig.len() >= 20 => {
                let (Some(fd), Some(msg)) = (&self.icmp4, packet::icmp_frag_needed(orig, mtu)) else { return };
                // SAFETY: zeroed sockaddr_in with family and address set.
                let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes([orig[12], orig[13], orig[14], orig[15]]);
                // SAFETY: valid buffer and address.
                unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        msg.as_ptr() as *const libc::c_void,
                        msg.len(),
                        0,
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                }
            }
            Some(6) if orig.len() >= 40 => {
                let (Some(fd), Some(msg)) = (&self.icmp6, packet::icmpv6_packet_too_big(orig, mtu.max(1280))) else {
                    return;
                };
                // SAFETY: zeroed sockaddr_in6 with family and address set.
                let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr.copy_from_slice(&orig[8..24]);
                // SAFETY: valid buffer and address.
                unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        msg.as_ptr() as *const libc::c_void,
                        msg.len(),
                        0,
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    )
                }
            }
            _ => return,
        };
        if sent >= 0 {
            self.stats.icmp_sent += 1;
        }
    }

    fn execute(&mut self, i: usize) {
        let d = &mut self.devs[i];
        for a in self.actions.drain(..) {
            let r = match a {
                Action::Release { id, pad_to } => match d.held.remove(&id) {
                    // held bytes end at the IP length; the zeros go past it
                    Some(b) => d.queue.accept_padded(id, &b, pad_to as usize).map(|_| ()),
                    None => Ok(()),
                },
                Action::Drop { id, .. } => {
                    d.held.remove(&id);
                    d.queue.verdict(id, Verdict::Drop, None, None).map(|_| ())
                }
                Action::Cover { .. } => {
                    if let Some((pkt, inj)) = &d.cover {
                        if let Err(e) = inj.send(pkt) {
                            self.stats.inject_errors += 1;
                            log::debug!("{}: cover packet: {e}", d.spec.label);
                        }
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.stats.send_errors += 1;
                log::warn!("{}: verdict: {e}", d.spec.label);
            }
        }
    }

    fn flush_dev(&mut self, d: &mut Dev) {
        d.shaper.flush(&mut self.actions);
        for a in self.actions.drain(..) {
            if let Action::Drop { id, .. } = a {
                let _ = d.queue.verdict(id, Verdict::Drop, None, None);
            }
        }
        d.held.clear();
    }

    /// The earliest shaper deadline or queue-open retry (µs of [`monotonic_us`]).
    pub fn next_deadline(&self) -> Option<Micros> {
        self.devs.iter().filter_map(|d| d.shaper.next_wakeup()).chain(self.retry_at).min()
    }

    fn rearm(&mut self) {
        let next = self.next_deadline();
        if next == self.armed {
            return;
        }
        self.armed = next;
        let t = next.unwrap_or(0); // 0 disarms
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (t / 1_000_000) as libc::time_t,
                tv_nsec: ((t % 1_000_000) * 1000) as libc::c_long,
            },
        };
        // SAFETY: valid itimerspec; our timerfd.
        unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) };
    }

    /// Drop every held packet and close every queue (daemon stop). Packets arriving afterwards
    /// are dropped by the kernel (no listener, no bypass).
    pub fn shutdown(&mut self) {
        self.wanted.clear();
        self.retry_at = None;
        for mut d in std::mem::take(&mut self.devs) {
            self.flush_dev(&mut d);
        }
        self.rearm();
    }

    /// Counters per served queue: (queue number, label, counters, packets held now).
    pub fn counters(&self) -> impl Iterator<Item = (u16, &str, &Counters, usize)> {
        self.devs.iter().map(|d| (d.spec.queue, d.spec.label.as_str(), d.shaper.counters(), d.held.len()))
    }

    /// Engine-wide error counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Counters as a JSON object text for `moat status`.
    pub fn status_json(&self) -> String {
        let mut s = String::from("{\"queues\":[");
        for (n, (q, label, c, held)) in self.counters().enumerate() {
            if n > 0 {
                s.push(',');
            }
            let p = |x: Option<u64>| x.map_or("null".to_string(), |v| v.to_string());
            s.push_str(&format!(
                "{{\"queue\":{q},\"label\":{},\"held\":{held},\"real_packets\":{},\"real_bytes\":{},\"padding_bytes\":{},\"cover_packets\":{},\"cover_bytes\":{},\"queue_drops\":{},\"oversize_drops\":{},\"flush_drops\":{},\"missed_slots\":{},\"decoy_periods\":{},\"decoys_skipped_budget\":{},\"delay_p50_us\":{},\"delay_p99_us\":{}}}",
                crate::json::string(label),
                c.real_packets,
                c.real_bytes,
                c.padding_bytes,
                c.cover_packets,
                c.cover_bytes,
                c.queue_drops,
                c.oversize_drops,
                c.flush_drops,
                c.missed_slots,
                c.decoy_periods,
                c.decoys_skipped_budget,
                p(c.delay.quantile(0.5)),
                p(c.delay.quantile(0.99)),
            ));
        }
        let st = &self.stats;
        s.push_str(&format!(
            "],\"verdict_errors\":{},\"send_errors\":{},\"recv_errors\":{},\"malformed\":{},\"inject_errors\":{},\"icmp_sent\":{}}}",
            st.verdict_errors, st.send_errors, st.recv_errors, st.malformed, st.inject_errors, st.icmp_sent
        ));
        s
    }
}

impl crate::daemon::Engine for ShapingEngine {
    fn fds(&self) -> Vec<RawFd> {
        ShapingEngine::fds(self)
    }
    fn readable(&mut self, fd: RawFd, _now: std::time::Instant) {
        ShapingEngine::readable(self, fd)
    }
    /// The engine wakes itself through its timerfd (one of its fds), with microsecond
    /// precision; it asks the loop for no millisecond timeout.
    fn next_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    fn tick(&mut self, _now: std::time::Instant) {
        ShapingEngine::tick(self, monotonic_us())
    }
    fn plan_applied(&mut self, plan: &crate::plan::Plan) -> Result<(), String> {
        let errors = self.set_queues(&specs_from_plan(plan));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
    fn shutdown(&mut self) {
        ShapingEngine::shutdown(self)
    }
    fn status_json(&self) -> Option<String> {
        Some(ShapingEngine::status_json(self))
    }
}

/// Queue specs for a plan: one per shaped device and per `pad_all` tunnel whose pad size is
/// known (a queue without a known pad size stays unbound, so its packets are dropped).
pub fn specs_from_plan(plan: &crate::plan::Plan) -> Vec<QueueSpec> {
    let mut v = Vec::new();
    for q in &plan.queues.shaped {
        if let Some(pad_to) = q.pad_to {
            v.push(QueueSpec {
                queue: q.queue,
                label: q.name.clone(),
                config: Config::from_model(&q.shaper.mode, pad_to),
                tunnel_dev: q.device.as_str().to_string(),
                cover_dst: q.cover_dst,
            });
        }
    }
    for q in &plan.queues.pad {
        if let Some(pad_to) = q.pad_to {
            v.push(QueueSpec {
                queue: q.queue,
                label: format!("pad:{}", q.tunnel),
                config: Config { pad_to, mode: super::Mode::PadOnly },
                tunnel_dev: q.device.as_str().to_string(),
                cover_dst: None,
            });
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_engine_has_only_the_timer_and_no_deadline() {
        let e = ShapingEngine::new().unwrap();
        assert_eq!(e.fds().len(), 1);
        assert_eq!(e.next_deadline(), None);
        assert!(e.status_json().starts_with("{\"queues\":[]"));
    }
}
