//! `mode stochastic`: stochastic traffic padding after STP (Apthorpe et al., PoPETs 2019).
//!
//! Real packets are padded and released at once (no delay). The tunnel's real traffic is cut
//! into *periods*: a period starts with a packet after at least `idle_gap` of silence and ends
//! when `idle_gap` passes without a packet. Only a period of at least [`ACTIVE_PACKETS`]
//! packets is *activity*; fewer (heartbeats and keepalives of the devices sharing the schedule,
//! which alone would cut the tunnel's time into many tiny periods) is background: it neither
//! joins the shapes nor counts for the pace, and it does not hold a decoy back. Each finished
//! activity period's *profile* (its packets per 5 ms bin from its first packet, `profile`
//! module) goes into a ring of [`SHAPES`] recent profiles (a full ring drops the busiest of
//! its older half).
//!
//! Decoy periods start at random times while the tunnel has no activity: after each period
//! (real or decoy) ends, the shaper draws the next decoy's profile — from the ring, each
//! profile in proportion to its seconds per packet (the calmest real periods buy the most
//! decoy time for the budget), or Poisson packets at the configured default rate and duration
//! while the ring is empty — and waits an exponentially distributed gap with mean
//! `3600 s / decoys_per_hour − duration` (at least [`MIN_GAP_S`]), so an idle hour holds
//! `decoys_per_hour` decoys in expectation. A decoy *replays* its profile: cover packets of
//! `pad_to` bytes leave bin by bin at the recorded offsets, so it has the real period's bursts
//! and pauses (a profile whose mean rate is above `rate_cap` is thinned to it, bin by bin).
//! Activity cancels a pending decoy start; a running decoy runs to its end.
//!
//! The decoy is copied from real use, so an observer cannot tell a real period from a decoy by
//! its rate, length or burst pattern (STP's argument: an observer who flags active-looking time
//! is right at most real / (real + decoy) of it). That bound only helps if decoys keep pace
//! with real use *in time*: a device busy 30 % of the hour hides nothing behind six 20-second
//! decoys. So the shaper sums the real activity time and the decoy time of a sliding window
//! (`pace_window`, default an hour) and aims at `pace_percent`/100 seconds of decoy per second
//! of activity: the target plus the time still owed is spread over the idle time of the window
//! (decoy cycles of `duration × idle / (target + owed)`, when shorter than the
//! `decoys_per_hour` cycle; at most [`COVER_MAX`] of the idle time). With the default 100 % an
//! observer who flags every active-looking stretch is right at most about half the time; an
//! observer of 5 s windows who must also be right about the idle ones (balanced accuracy)
//! needs decoys on the same share of the idle time as activity has of the whole, `pace` ≈
//! 100 × idle / busy (BENCHMARKS.md, "Privacy"). The price: the amount of use shows, not when
//! it happened; and decoys still only run while the tunnel is idle.
//!
//! Two-way: the router draws the decoys; a companion's schedule runs in *follow* mode, draws
//! none and answers the router's cover packets as they arrive, while its own direction has no
//! activity, as TCP answers data: one answer per two packets of a flight (packets less than
//! [`FLIGHT_GAP`] apart; a lone packet gets one), so a decoy moves both ways at once as every
//! real exchange does, and a copied upload (a recording: two segments, then an ACK, every
//! 200 ms) gets the downstream of a real one (independent decoys at the two ends gave the
//! observer one-way windows; answers at a random 0.5-1.5 per packet, bunched per tick, gave it
//! a downstream no real exchange has). A download runs the other way round: its real upstream
//! is acknowledgements, one per two data segments. So the profile counts each bin's small
//! packets (`profile::SMALL_LEN`), and a decoy's cover packet that copies one asks the far end,
//! in its control message, for [`ACK_ANSWERS`] answers instead of the flight rule: a copied
//! answer of 200 KB comes down as 200 KB, not as the ACKs of an upload.
//!
//! Cover bytes are limited by a token bucket sized so that any 24 hours spend at most
//! `budget_bytes_per_day`: capacity one hour's share (B/24), refilled at 23/24·B per day.
//! A decoy only starts when the bucket holds its expected size; a running decoy stops early
//! when the bucket runs dry.

use super::profile::Profile;
use super::{Action, Counters, Lane, Micros, Rng, SECOND};
use std::collections::VecDeque;

/// Recent real activity profiles kept per schedule.
pub const SHAPES: usize = 8;
/// Shortest gap before a decoy, seconds.
pub const MIN_GAP_S: u32 = 1;
/// Packets a period needs to count as activity: fewer (a heartbeat, a keepalive, a few of them
/// in a row) is background, which neither shapes nor paces the decoys nor holds one back.
pub const ACTIVE_PACKETS: u32 = 16;
const DAY: u128 = 86_400 * SECOND as u128;

/// Parameters of stochastic mode.
#[derive(Debug, Clone, PartialEq)]
pub struct StochasticConfig {
    /// Expected decoy periods per idle hour (0 = none, only padding).
    pub decoys_per_hour: u32,
    /// Highest mean cover packet rate of a decoy, packets/s (≥ 1); a busier profile is thinned.
    pub rate_cap: u32,
    /// Cover budget: bytes of cover packets per 24 hours.
    pub budget_bytes_per_day: u64,
    /// Decoy packet rate while no real activity has been seen, packets/s.
    pub default_rate: u32,
    /// Decoy duration while no real activity has been seen, seconds.
    pub default_duration_s: u32,
    /// Longest decoy, seconds (longer real periods are copied shortened to this).
    pub max_duration_s: u32,
    /// Silence that ends an activity period, microseconds.
    pub idle_gap: Micros,
    /// Keep pace: seconds of decoy per 100 seconds of real activity in the last `pace_window`
    /// (0 = decoys only at `decoys_per_hour`). See the module docs.
    pub pace_percent: u32,
    /// The sliding window real activity and decoy time are summed over, microseconds (≥ 1 s).
    pub pace_window: Micros,
    /// Follow the far end's decoys instead of drawing its own: the far end's cover packets
    /// ([`super::Schedule::on_peer_cover`]) are answered at once while the tunnel has no
    /// activity here, one answer per two packets of a flight, as a server's ACKs answer a
    /// router's upload (a companion answering its router's decoys).
    pub follow: bool,
}

impl Default for StochasticConfig {
    /// 6 decoys per idle hour, cap 50 packets/s, 50 MB/day, default shape 5 packets/s for 20 s,
    /// decoys at most 5 minutes, periods split by 5 s of silence, as much decoy time as real
    /// activity time in the last hour.
    fn default() -> Self {
        StochasticConfig {
            decoys_per_hour: 6,
            rate_cap: 50,
            budget_bytes_per_day: 50_000_000,
            default_rate: 5,
            default_duration_s: 20,
            max_duration_s: 300,
            idle_gap: 5 * SECOND,
            pace_percent: 100,
            pace_window: 3600 * SECOND,
            follow: false,
        }
    }
}

/// A running decoy: the profile it replays, from `start`.
#[derive(Debug, Clone)]
struct Decoy {
    start: Micros,
    profile: Profile,
    /// Next bin of the profile to send.
    next: usize,
    /// Share of each bin's packets sent (< 1 when the profile's mean rate is above the cap),
    /// and the fraction carried between bins.
    keep: f64,
    carry: f64,
}

impl Decoy {
    fn end(&self) -> Micros {
        self.start + self.profile.duration()
    }
    fn next_at(&self) -> Option<Micros> {
        (self.next < self.profile.len()).then(|| self.start + self.profile.event(self.next).0)
    }
}

pub(super) struct Stochastic {
    cfg: StochasticConfig,
    // real activity: the current period (its start, packets and profile)
    last_real: Option<Micros>,
    period_start: Micros,
    period_packets: u32,
    current: Profile,
    shapes: VecDeque<Profile>,
    // keep pace: end times and lengths of recent real periods, start times and lengths of
    // recent decoys (pruned to the window, at most PACE_MAX each)
    real_ends: VecDeque<(Micros, Micros)>,
    decoy_starts: VecDeque<(Micros, Micros)>,
    started: Micros,
    // decoys
    pending: Option<(Micros, Profile)>,
    decoy: Option<Decoy>,
    // follow mode: cover packets owed to the far end's, due at `mirror_at`; the current flight
    // of far-end packets (its last arrival and length)
    mirror: u32,
    mirror_at: Micros,
    last_mirror: Option<Micros>,
    flight_last: Option<Micros>,
    flight_len: u32,
    // budget (bytes, with a remainder in byte·µs units so refills lose nothing)
    tokens: u64,
    capacity: u64,
    refill_per_day: u64,
    refill_rem: u128,
    refilled_at: Micros,
}

impl Stochastic {
    pub(super) fn new(cfg: &StochasticConfig, pad_to: u16, now: Micros, rng: &mut dyn Rng) -> Stochastic {
        assert!(cfg.rate_cap >= 1 && cfg.default_rate >= 1 && cfg.default_duration_s >= 1 && cfg.max_duration_s >= 1);
        let _ = pad_to;
        let capacity = cfg.budget_bytes_per_day / 24;
        let mut s = Stochastic {
            cfg: cfg.clone(),
            last_real: None,
            period_start: 0,
            period_packets: 0,
            current: Profile::default(),
            shapes: VecDeque::with_capacity(SHAPES),
            real_ends: VecDeque::new(),
            started: now,
            decoy_starts: VecDeque::new(),
            pending: None,
            decoy: None,
            mirror: 0,
            mirror_at: 0,
            last_mirror: None,
            flight_last: None,
            flight_len: 0,
            tokens: capacity,
            capacity,
            refill_per_day: cfg.budget_bytes_per_day - capacity,
            refill_rem: 0,
            refilled_at: now,
        };
        s.schedule(now, rng);
        s
    }

    fn max_duration(&self) -> Micros {
        self.cfg.max_duration_s as u64 * SECOND
    }

    /// Draw the next decoy (profile and start) after activity ended at `now`.
    fn schedule(&mut self, now: Micros, rng: &mut dyn Rng) {
        self.pending = None;
        if self.cfg.decoys_per_hour == 0 || self.cfg.follow {
            return;
        }
        let shape = self.draw(rng);
        let duration = shape.duration() as f64;
        let mut cycle = 3600.0 * SECOND as f64 / self.cfg.decoys_per_hour as f64;
        let (target, deficit, idle) = self.pace(now);
        if target > 0 {
            // Cover the idle time the window had at the rate that reaches target + deficit decoy
            // time there: decoys run only while the tunnel is idle, so that is the time they have.
            let share = ((target + deficit) as f64 / idle as f64).min(COVER_MAX);
            cycle = cycle.min(duration / share);
        }
        let mean_gap = (cycle - duration).max(MIN_GAP_S as f64 * SECOND as f64);
        let gap = rng.exp(mean_gap).min(cycle * 20.0) as Micros;
        self.pending = Some((now + gap, shape));
    }

    /// A decoy's profile: one of the ring's, or the default shape while it is empty. The ring's
    /// profiles are drawn in proportion to their seconds per packet: a cover budget buys the most
    /// decoy time, the observer's windows, from the calmest real periods (a recording session at
    /// 15 packets/s, not a 200 KB answer within a second), and every kind still comes up.
    fn draw(&self, rng: &mut dyn Rng) -> Profile {
        if self.shapes.is_empty() {
            let d = (self.cfg.default_duration_s as u64 * SECOND).min(self.max_duration());
            return Profile::poisson(self.cfg.default_rate as f64, d, rng);
        }
        let total: f64 = self.shapes.iter().map(Profile::seconds_per_packet).sum();
        let mut x = rng.unit() * total;
        for p in &self.shapes {
            x -= p.seconds_per_packet();
            if x < 0.0 {
                return p.clone();
            }
        }
        self.shapes[self.shapes.len() - 1].clone()
    }

    /// A cover packet of the far end asking for `answers` arrived at `now`: in follow mode,
    /// answer it (at the next tick) with what it asks for (at most [`ACK_ANSWERS_MAX`]) or, if it
    /// asks for none, with one if it opens a flight or is its third, fifth, … packet; unless the
    /// tunnel is active here.
    pub(super) fn on_peer_cover(&mut self, now: Micros, answers: u8) {
        if !self.cfg.follow || self.cfg.decoys_per_hour == 0 {
            return;
        }
        let owed = if answers > 0 {
            // the far end copies an acknowledgement: answer with the data it acknowledged
            answers.min(ACK_ANSWERS_MAX) as u32
        } else {
            let same_flight = self.flight_last.is_some_and(|t| now.saturating_sub(t) < FLIGHT_GAP);
            self.flight_len = if same_flight { self.flight_len.saturating_add(1) } else { 1 };
            self.flight_last = Some(now);
            (self.flight_len % 2 == 1) as u32
        };
        if owed > 0 && !self.active() {
            if self.mirror == 0 {
                self.mirror_at = now;
            }
            self.mirror = self.mirror.saturating_add(owed);
        }
    }

    fn refill(&mut self, now: Micros) {
        if now <= self.refilled_at {
            return;
        }
        let acc = self.refill_rem + (now - self.refilled_at) as u128 * self.refill_per_day as u128;
        self.refilled_at = now;
        let add = (acc / DAY) as u64;
        self.refill_rem = acc % DAY;
        self.tokens = (self.tokens.saturating_add(add)).min(self.capacity);
        if self.tokens == self.capacity {
            self.refill_rem = 0;
        }
    }

    fn idle(&self, now: Micros) -> bool {
        match self.last_real {
            Some(t) => now >= t + self.cfg.idle_gap,
            None => true,
        }
    }

    /// The current period has enough packets to be activity.
    fn active(&self) -> bool {
        self.period_packets >= ACTIVE_PACKETS
    }

    /// A real packet at `now` (`small`: at most `profile::SMALL_LEN` bytes).
    pub(super) fn on_packet(&mut self, now: Micros, small: bool, c: &mut Counters) {
        if self.idle(now) {
            // the loop did not tick between the end of the last period and this packet
            self.close_real_period(c);
            // a new period begins (the previous one, if any, was closed by on_tick)
            self.period_start = now;
            self.period_packets = 0;
            self.current = Profile::default();
        }
        self.period_packets += 1;
        let max = self.max_duration();
        self.current.record(now - self.period_start, max, small);
        self.last_real = Some(now);
        if self.active() {
            // real activity holds back a pending decoy (a running one runs to its end)
            self.pending = None;
        }
    }

    /// The pace at `now` over the window, in µs: (target = pace × real activity time / 100,
    /// decoy time still owed = target − decoy time started, idle time of the window, at least
    /// a minute).
    fn pace(&mut self, now: Micros) -> (Micros, Micros, Micros) {
        let from = now.saturating_sub(self.cfg.pace_window);
        while self.real_ends.front().is_some_and(|&(t, _)| t < from) {
            self.real_ends.pop_front();
        }
        while self.decoy_starts.front().is_some_and(|&(t, _)| t < from) {
            self.decoy_starts.pop_front();
        }
        let real: Micros = self.real_ends.iter().map(|&(_, d)| d).sum();
        let target = (real as u128 * self.cfg.pace_percent as u128 / 100) as Micros;
        let decoys: Micros = self.decoy_starts.iter().map(|&(_, d)| d).sum();
        // every real period is followed by the idle_gap that ended it
        let busy = real + self.real_ends.len() as Micros * self.cfg.idle_gap;
        let span = now.saturating_sub(self.started).min(self.cfg.pace_window);
        let idle = span.saturating_sub(busy).max(60 * SECOND);
        (target, target.saturating_sub(decoys), idle)
    }

    /// Close the current period: an activity period's profile joins the ring and the pace.
    /// True if it was activity.
    fn close_real_period(&mut self, c: &mut Counters) -> bool {
        let Some(last) = self.last_real else { return false };
        let active = self.active();
        self.period_packets = 0;
        let profile = std::mem::take(&mut self.current);
        if !active {
            return false;
        }
        if self.shapes.len() >= SHAPES {
            // Make room: the busiest (packets a second) of the older half goes, so a rare calm
            // kind (a recording session among many short answers) stays drawable.
            let calm = |i: usize| self.shapes[i].seconds_per_packet();
            // (the least calm; max_by keeps the newer of equals, as before)
            let evict = (0..SHAPES / 2).max_by(|&a, &b| calm(b).total_cmp(&calm(a)));
            self.shapes.remove(evict.unwrap_or(0));
        }
        self.shapes.push_back(profile);
        if self.real_ends.len() >= PACE_MAX {
            self.real_ends.pop_front();
        }
        self.real_ends.push_back((last, last - self.period_start));
        c.real_periods += 1;
        true
    }

    pub(super) fn on_tick(
        &mut self,
        now: Micros,
        pad_to: u16,
        rng: &mut dyn Rng,
        c: &mut Counters,
        out: &mut Vec<(Lane, Action)>,
    ) {
        self.refill(now);
        // Answers to the far end's cover (follow mode)
        if self.mirror > 0 && self.mirror_at <= now {
            // a run of answers after idle_gap without one counts as a decoy period
            if self.last_mirror.is_none_or(|t| self.mirror_at >= t + self.cfg.idle_gap) {
                c.decoy_periods += 1;
            }
            for _ in 0..std::mem::take(&mut self.mirror) {
                if self.tokens < pad_to as u64 {
                    break;
                }
                self.tokens -= pad_to as u64;
                c.cover_packets += 1;
                c.cover_bytes += pad_to as u64;
                out.push((0, Action::Cover { len: pad_to, answers: 0 }));
            }
            self.last_mirror = Some(now);
        }
        // End of a real period?
        if self.period_packets > 0 && self.idle(now) {
            let end = self.last_real.unwrap_or(now) + self.cfg.idle_gap;
            let active = self.close_real_period(c);
            if self.decoy.is_none() && (active || self.pending.is_none()) {
                self.schedule(end, rng);
            }
        }
        // A decoy is running: send its due bins.
        if let Some(mut d) = self.decoy.take() {
            let mut dry = false;
            while let Some(at) = d.next_at().filter(|&t| t <= now) {
                let _ = at;
                let (_, n) = d.profile.event(d.next);
                // the share of the bin's packets that were acknowledgements asks for answers
                let acks = d.profile.small(d.next) as f64 / n.max(1) as f64;
                d.next += 1;
                d.carry += n as f64 * d.keep;
                let send = d.carry.floor();
                d.carry -= send;
                let small = (send * acks).round() as u64;
                for i in 0..send as u64 {
                    if self.tokens < pad_to as u64 {
                        dry = true; // budget dry: stop early
                        break;
                    }
                    self.tokens -= pad_to as u64;
                    c.cover_packets += 1;
                    c.cover_bytes += pad_to as u64;
                    let answers = if i < small { ACK_ANSWERS } else { 0 };
                    out.push((0, Action::Cover { len: pad_to, answers }));
                }
                if dry {
                    break;
                }
            }
            if dry || (d.next_at().is_none() && now >= d.end()) {
                let end = if dry { now } else { d.end() };
                if !self.active() {
                    self.schedule(end, rng);
                }
            } else {
                self.decoy = Some(d);
            }
        }
        // A decoy is due to start?
        if self.decoy.is_none() {
            if let Some((start, _)) = &self.pending {
                if *start <= now {
                    let (start, profile) = self.pending.take().expect("pending");
                    let cap = self.cfg.rate_cap as f64 * profile.duration() as f64 / SECOND as f64;
                    let keep = (cap / profile.packets().max(1) as f64).min(1.0);
                    let expected = (profile.packets() as f64 * keep).ceil() as u64 * pad_to as u64;
                    if self.tokens >= expected.max(pad_to as u64) {
                        c.decoy_periods += 1;
                        push_bounded(&mut self.decoy_starts, (start, profile.duration()));
                        self.decoy = Some(Decoy { start, profile, next: 0, keep, carry: 0.0 });
                        // send what is already due
                        self.on_tick(now, pad_to, rng, c, out);
                    } else {
                        c.decoys_skipped_budget += 1;
                        let end = start + profile.duration();
                        self.schedule(end, rng);
                    }
                }
            }
        }
    }

    pub(super) fn next_wakeup(&self) -> Option<Micros> {
        let mut t: Option<Micros> = None;
        let mut consider = |x: Micros| t = Some(t.map_or(x, |y| y.min(x)));
        if self.period_packets > 0 {
            if let Some(l) = self.last_real {
                consider(l + self.cfg.idle_gap);
            }
        }
        if self.mirror > 0 {
            consider(self.mirror_at);
        }
        if let Some(d) = &self.decoy {
            consider(d.next_at().unwrap_or(d.end()).min(d.end()));
        } else if let Some((s, _)) = &self.pending {
            consider(*s);
        }
        t
    }
}

/// Far-end packets closer than this are one flight (follow mode), µs.
pub const FLIGHT_GAP: Micros = 2_000;

/// Answers a decoy asks for per copied acknowledgement: a receiver acknowledges every second
/// full-sized segment (delayed ACKs, RFC 1122 / RFC 5681).
pub const ACK_ANSWERS: u8 = 2;

/// Most answers a follow-mode schedule sends for one far-end cover packet, whatever it asks.
pub const ACK_ANSWERS_MAX: u8 = 4;

/// Most of the idle time decoys are scheduled to cover (the rest stays quiet).
const COVER_MAX: f64 = 0.95;

/// Most timestamps kept per pace ring (beyond it the counts saturate: 1,000 periods per window).
const PACE_MAX: usize = 1000;

fn push_bounded(q: &mut VecDeque<(Micros, Micros)>, t: (Micros, Micros)) {
    if q.len() >= PACE_MAX {
        q.pop_front();
    }
    q.push_back(t);
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod pace_tests;

#[cfg(test)]
#[path = "stochastic_tests.rs"]
mod tests;
