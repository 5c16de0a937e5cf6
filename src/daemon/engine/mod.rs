//! The shaping queue engine: the thin effectful shell around the pure per-device shapers
//! ([`crate::shaper`]), run inside the daemon's poll loop.
//!
//! It owns one [`Queue`] per shaped
//! device (the queue number identifies the device: the plan gives each shaped device its own
//! queue, matched by its mark) and per `pad_all` tunnel, grouped into schedules: the queues of
//! the devices of one tunnel naming one shaper share one [`Schedule`] (one slot clock, served
//! round robin) and one [`Injector`] for its cover packets,
//! the held packets, and a `timerfd` armed at the earliest shaper deadline. The daemon polls
//! [`ShapingEngine::fds`] (the queue sockets and the timerfd) and calls
//! [`ShapingEngine::readable`]; everything else happens inside: packets are read until the socket
//! is empty, fed to their device's lane of its [`Schedule`], and the returned actions are carried out
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

mod control;
mod icmp;
mod link;
mod rng;
mod spec;
mod status;

/// `CLOCK_MONOTONIC` in microseconds: the clock every shaper in the engine runs on.
pub use crate::sys::monotonic_us;
/// Real-time scheduling for `option realtime`.
pub use crate::sys::set_realtime;
pub use link::{request_for, CompanionSpec, Link, ANSWER_TIMEOUT_STOCHASTIC_US, ANSWER_TIMEOUT_US};
pub use rng::OsRng;
pub use spec::{shaper_config, specs_from_plan, QueueSpec};

use crate::netlink::queue::{Msg, Queue, QueueOptions, Verdict};
use crate::shaper::{self, Action, Counters, Lane, Micros, Mode, PacketId, Rng, Schedule};
use crate::sys::{Injector, Timer};
use crate::wire;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

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
    /// Packets of shaped devices dropped because their tunnel's companion is required but does
    /// not shape (`companion_required`).
    pub companion_blocked: u64,
    /// How late the timer woke the engine after the deadline it was armed for (µs).
    pub wake_late: shaper::DelayHistogram,
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
    held: HeldStore,
}

/// One schedule: a clock (and cover sender) shared by the queues of its devices; a device's
/// lane in the [`Schedule`] is its index in `devs`.
struct Sched {
    /// The specs it was built from, in lane order (all opened).
    specs: Vec<QueueSpec>,
    devs: Vec<Dev>,
    schedule: Schedule,
    cover: Option<(Vec<u8>, Injector)>,
}

/// The engine. See the module docs.
pub struct ShapingEngine {
    scheds: Vec<Sched>,
    timer: Timer,
    armed: Option<Micros>,
    rng: Box<dyn Rng + Send>,
    actions: Vec<(Lane, Action)>,
    stats: EngineStats,
    opts: QueueOptions,
    last_log: Micros,
    icmp: icmp::Sender,
    /// The queues asked for by the last [`ShapingEngine::set_queues`].
    wanted: Vec<QueueSpec>,
    /// When to retry opening queues that failed (e.g. still held by a dying predecessor).
    retry_at: Option<Micros>,
    /// Companion links, one per tunnel device whose queues name a companion.
    links: Vec<Link>,
    /// Secret salt of [`wire::flow_hash`] (the flows of a queue take turns for its slots).
    flow_salt: u32,
}

/// How often opening a queue that failed is retried.
pub const RETRY_US: Micros = 5_000_000;

/// Group specs into schedules: specs with the same non-empty [`QueueSpec::schedule`], tunnel
/// device, shaper config and cover address share one; every other spec is its own.
fn group(specs: &[QueueSpec]) -> Vec<Vec<QueueSpec>> {
    let mut groups: Vec<Vec<QueueSpec>> = Vec::new();
    for s in specs {
        let same = |g: &&mut Vec<QueueSpec>| {
            let f = &g[0];
            !s.schedule.is_empty()
                && f.schedule == s.schedule
                && f.tunnel_dev == s.tunnel_dev
                && f.config == s.config
                && f.cover_dst == s.cover_dst
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.push(s.clone()),
            None => groups.push(vec![s.clone()]),
        }
    }
    groups
}

impl ShapingEngine {
    /// A new engine serving no queues yet, with the OS random source.
    pub fn new() -> io::Result<ShapingEngine> {
        Self::with_rng(Box::new(OsRng::new()))
    }

    /// A new engine with a given random source (benchmarks use a seeded one).
    pub fn with_rng(mut rng: Box<dyn Rng + Send>) -> io::Result<ShapingEngine> {
        let flow_salt = rng.next_u32();
        Ok(ShapingEngine {
            scheds: Vec::new(),
            timer: Timer::new()?,
            armed: None,
            rng,
            actions: Vec::new(),
            stats: EngineStats::default(),
            opts: QueueOptions::default(),
            last_log: 0,
            icmp: icmp::Sender::open(),
            wanted: Vec::new(),
            retry_at: None,
            links: Vec::new(),
            flow_salt,
        })
    }

    /// Serve exactly these queues, grouped into schedules (see [`QueueSpec::schedule`]).
    /// Schedules whose specs did not change keep their state and held packets; changed or
    /// removed ones are flushed (held packets dropped) and closed. Returns the errors of queues
    /// that could not be opened (those stay unbound: their packets are dropped; opening them is
    /// retried every [`RETRY_US`], rebuilding their schedule).
    pub fn set_queues(&mut self, specs: &[QueueSpec]) -> Vec<String> {
        let now = monotonic_us();
        self.wanted = specs.to_vec();
        let groups = group(specs);
        let mut errors = Vec::new();
        let mut keep = Vec::new();
        for mut s in std::mem::take(&mut self.scheds) {
            if groups.contains(&s.specs) {
                keep.push(s);
            } else {
                self.flush_sched(&mut s);
            }
        }
        self.scheds = keep;
        let mut missing = false;
        for g in groups {
            if self.scheds.iter().any(|s| s.specs == g) {
                continue;
            }
            let mut devs = Vec::new();
            for s in &g {
                let opened = Queue::open(s.queue, &self.opts).and_then(|q| {
                    q.set_nonblocking(true)?;
                    Ok(q)
                });
                match opened {
                    Ok(queue) => devs.push(Dev { spec: s.clone(), queue, held: HeldStore::default() }),
                    Err(e) => {
                        missing = true;
                        errors.push(format!("queue {} ({}): {e}", s.queue, s.label));
                    }
                }
            }
            if devs.is_empty() {
                continue;
            }
            let first = &devs[0].spec;
            let cover = match spec::cover_template(first) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!(
                        "queue {} ({}): cover sender on {}: {e}",
                        first.queue, first.label, first.tunnel_dev
                    ));
                    None
                }
            };
            let schedule = Schedule::new(&first.config, devs.len(), now, self.rng.as_mut());
            let mode = spec::describe(&first.config.mode);
            for d in &devs {
                log::info!(
                    "shaping {} on queue {} (pad to {} bytes, {mode}, schedule {})",
                    d.spec.label,
                    d.spec.queue,
                    d.spec.config.pad_to,
                    if d.spec.schedule.is_empty() { &d.spec.label } else { &d.spec.schedule }
                );
            }
            let specs = devs.iter().map(|d| d.spec.clone()).collect();
            self.scheds.push(Sched { specs, devs, schedule, cover });
        }
        self.set_links();
        self.retry_at = missing.then_some(now + RETRY_US);
        self.rearm();
        errors
    }

    /// The file descriptors to poll for readability: every queue socket and the timer.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = self.scheds.iter().flat_map(|s| s.devs.iter().map(|d| d.queue.as_raw_fd())).collect();
        v.extend(self.links.iter().filter_map(Link::fd));
        v.push(self.timer.as_raw_fd());
        v
    }

    /// `fd` (one of [`Self::fds`]) is readable.
    pub fn readable(&mut self, fd: RawFd) {
        let now = monotonic_us();
        if fd == self.timer.as_raw_fd() {
            self.timer.read();
            if let Some(t) = self.armed {
                self.stats.wake_late.record(now.saturating_sub(t));
            }
            self.armed = None;
        } else {
            let found = self
                .scheds
                .iter()
                .enumerate()
                .find_map(|(si, s)| s.devs.iter().position(|d| d.queue.as_raw_fd() == fd).map(|lane| (si, lane)));
            if let Some((si, lane)) = found {
                self.drain_queue(si, lane, now);
            } else if let Some(l) = self.links.iter_mut().find(|l| l.fd() == Some(fd)) {
                l.readable(now);
            }
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
        for si in 0..self.scheds.len() {
            if self.scheds[si].schedule.next_wakeup().is_some_and(|t| t <= now) {
                // Packets that reached a queue before this wake-up (but whose socket was not
                // polled yet, e.g. the timer fired first) belong in this slot, not the next one:
                // one non-blocking recv per queue, usually EAGAIN.
                for lane in 0..self.scheds[si].devs.len() {
                    self.drain_queue(si, lane, now);
                }
                let s = &mut self.scheds[si];
                s.schedule.on_tick(now, self.rng.as_mut(), &mut self.actions);
                self.execute(si);
            }
        }
        if now >= self.last_log + 60_000_000 {
            self.last_log = now;
            for (_, label, c, _) in self.counters() {
                log::debug!(
                    "{}: real {} pkts/{} B, cover {} pkts/{} B, drops queue {} oversize {}, delay p50 {} p99 {} us",
                    label,
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

    fn drain_queue(&mut self, si: usize, lane: Lane, now: Micros) {
        loop {
            let msg = match self.scheds[si].devs[lane].queue.recv() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.stats.recv_errors += 1;
                    log::warn!("{}: receive: {e}", self.scheds[si].devs[lane].spec.label);
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        continue;
                    }
                    break;
                }
            };
            match msg {
                Msg::Packet(p) => {
                    let s = &mut self.scheds[si];
                    let d = &mut s.devs[lane];
                    let len = match wire::ip_len(&p.payload) {
                        Ok(l) if !p.truncated() => l,
                        _ => {
                            self.stats.malformed += 1;
                            let _ = d.queue.verdict(p.id, Verdict::Drop, None, None);
                            continue;
                        }
                    };
                    if self.links.iter().any(|l| l.device == d.spec.tunnel_dev && l.blocks(now)) {
                        self.stats.companion_blocked += 1;
                        let _ = d.queue.verdict(p.id, Verdict::Drop, None, None);
                        continue;
                    }
                    let len16 = len.min(u16::MAX as usize) as u16;
                    // only constant mode queues, and so tells flows apart
                    let queued = matches!(d.spec.config.mode, Mode::Constant(_));
                    let flow = if queued { wire::flow_hash(&p.payload, self.flow_salt) } else { 0 };
                    let pad_to = d.spec.config.pad_to;
                    if len <= pad_to as usize {
                        let mut bytes = p.payload;
                        bytes.truncate(len);
                        d.held.insert(p.id, bytes.into_boxed_slice());
                    } else {
                        // Too big to leave at the constant size: it is dropped (below); tell the
                        // sender the path MTU like a router with a smaller link would, so TCP and
                        // DF-setting UDP (QUIC) shrink their packets.
                        self.stats.icmp_sent += self.icmp.too_big(&p.payload, pad_to, now) as u64;
                    }
                    self.scheds[si].schedule.on_flow_packet(lane, flow, now, p.id, len16, &mut self.actions);
                    self.execute(si);
                }
                Msg::Ack { .. } => {}
                Msg::Error { seq, errno } => {
                    self.stats.verdict_errors += 1;
                    log::warn!(
                        "{}: verdict {seq} rejected: {}",
                        self.scheds[si].devs[lane].spec.label,
                        io::Error::from_raw_os_error(errno)
                    );
                }
            }
        }
    }

    fn execute(&mut self, si: usize) {
        let s = &mut self.scheds[si];
        for (lane, a) in self.actions.drain(..) {
            let r = match a {
                Action::Release { id, pad_to } => {
                    let d = &mut s.devs[lane];
                    match d.held.remove(&id) {
                        // held bytes end at the IP length; the zeros go past it
                        Some(b) => d.queue.accept_padded(id, &b, pad_to as usize).map(|_| ()),
                        None => Ok(()),
                    }
                }
                Action::Drop { id, .. } => {
                    let d = &mut s.devs[lane];
                    d.held.remove(&id);
                    d.queue.verdict(id, Verdict::Drop, None, None).map(|_| ())
                }
                Action::Cover { answers, .. } => {
                    if let Some((pkt, inj)) = &mut s.cover {
                        // the packet's control request (if any) asks the far end for `answers`
                        crate::wire::control::set_answers(pkt, answers);
                        if let Err(e) = inj.send(pkt) {
                            self.stats.inject_errors += 1;
                            log::debug!("{}: cover packet: {e}", s.devs[0].spec.label);
                        }
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.stats.send_errors += 1;
                log::warn!("{}: verdict: {e}", s.devs[lane].spec.label);
            }
        }
    }

    fn flush_sched(&mut self, s: &mut Sched) {
        s.schedule.flush(&mut self.actions);
        for (lane, a) in self.actions.drain(..) {
            if let Action::Drop { id, .. } = a {
                let _ = s.devs[lane].queue.verdict(id, Verdict::Drop, None, None);
            }
        }
        for d in &mut s.devs {
            d.held.clear();
        }
    }

    /// The earliest shaper deadline or queue-open retry (µs of [`monotonic_us`]).
    pub fn next_deadline(&self) -> Option<Micros> {
        self.scheds.iter().filter_map(|s| s.schedule.next_wakeup()).chain(self.retry_at).min()
    }

    fn rearm(&mut self) {
        let next = self.next_deadline();
        if next == self.armed {
            return;
        }
        self.armed = next;
        // Cannot fail for a valid timerfd and time (as before, a failure would only leave the
        // timer as it was; the poll loop's other wake-ups still serve the shapers).
        let _ = self.timer.set(next);
    }

    /// Drop every held packet and close every queue (daemon stop). Packets arriving afterwards
    /// are dropped by the kernel (no listener, no bypass).
    pub fn shutdown(&mut self) {
        self.wanted.clear();
        self.retry_at = None;
        self.links.clear();
        for mut s in std::mem::take(&mut self.scheds) {
            self.flush_sched(&mut s);
        }
        self.rearm();
    }

    /// Counters per served queue: (queue number, label, counters, packets held now). The
    /// counters are the device's own real traffic with its schedule's shared figures (cover,
    /// missed slots, decoys, activity periods) filled in; see [`Schedule::counters`].
    pub fn counters(&self) -> impl Iterator<Item = (u16, &str, Counters, usize)> {
        self.scheds.iter().flat_map(|s| {
            s.devs
                .iter()
                .enumerate()
                .map(|(lane, d)| (d.spec.queue, d.spec.label.as_str(), s.schedule.counters(lane), d.held.len()))
        })
    }

    /// Schedules served: (schedule label, queue numbers in lane order).
    pub fn schedules(&self) -> impl Iterator<Item = (&str, Vec<u16>)> {
        self.scheds.iter().map(|s| {
            let f = &s.devs[0].spec;
            let label = if f.schedule.is_empty() { f.label.as_str() } else { f.schedule.as_str() };
            (label, s.devs.iter().map(|d| d.spec.queue).collect())
        })
    }

    /// Engine-wide error counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(queue: u16, schedule: &str, dev: &str, rate: u32) -> QueueSpec {
        QueueSpec {
            queue,
            label: format!("d{queue}"),
            config: shaper::Config {
                pad_to: 1000,
                mode: shaper::Mode::Constant(shaper::ConstantConfig::with_rate(rate)),
            },
            tunnel_dev: dev.into(),
            cover_dst: None,
            schedule: schedule.into(),
            companion: None,
        }
    }

    #[test]
    fn specs_group_by_schedule_key_tunnel_and_config() {
        let specs = [
            spec(1, "vpn/home", "wg0", 20),
            spec(2, "vpn/home", "wg0", 20),
            spec(3, "", "wg0", 20),
            spec(4, "", "wg0", 20),
            spec(5, "vpn/home", "wg1", 20),
            spec(6, "vpn/home", "wg0", 10),
            spec(7, "vpn/home", "wg0", 20),
        ];
        let groups: Vec<Vec<u16>> = group(&specs).iter().map(|g| g.iter().map(|s| s.queue).collect()).collect();
        assert_eq!(groups, vec![vec![1, 2, 7], vec![3], vec![4], vec![5], vec![6]]);
    }

    #[test]
    fn empty_engine_has_only_the_timer_and_no_deadline() {
        let e = ShapingEngine::new().unwrap();
        assert_eq!(e.fds().len(), 1);
        assert_eq!(e.next_deadline(), None);
        assert!(e.status_json().starts_with("{\"queues\":[]"));
    }
}
