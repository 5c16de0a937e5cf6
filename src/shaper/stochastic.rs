//! `mode stochastic`: stochastic traffic padding after STP (Apthorpe et al., PoPETs 2019).
//!
//! Real packets are padded and released at once (no delay). The device's real activity is cut
//! into *periods*: a period starts with a packet after at least `idle_gap` of silence and ends
//! when `idle_gap` passes without a packet. Each finished period's shape (packet rate, duration)
//! goes into a ring of the last [`SHAPES`] shapes.
//!
//! While the device is idle, decoy periods start at random times: after each period (real or
//! decoy) ends, the shaper draws the next decoy's shape — uniformly from the ring, or the
//! configured defaults while the ring is empty — and waits an exponentially distributed gap with
//! mean `3600 s / decoys_per_hour − duration` (at least [`MIN_GAP_S`]). Every gap+decoy cycle
//! therefore lasts `3600 / decoys_per_hour` seconds on average, so an idle hour holds
//! `decoys_per_hour` decoys in expectation. During a decoy, cover packets of `pad_to` bytes
//! leave with exponentially distributed gaps at the shape's rate (capped at `rate_cap`).
//! Real activity cancels a pending decoy start; a running decoy runs to its end.
//!
//! The decoy *shape* is copied from real use, so an observer cannot tell a real period from a
//! decoy by its rate or length (STP's argument: its precision is bounded by real / (real +
//! decoy) periods). That bound only helps if decoys are as frequent as real use: a device with
//! 30 real periods an hour hides nothing behind 6 decoys. So decoys **keep pace**: the shaper
//! counts the real periods that ended and the decoys that started in a sliding window
//! (`pace_window`, default an hour) and aims at `pace_percent`/100 decoys per real period: the
//! target plus the decoys still owed are spread over the idle time of the window (decoy cycles
//! of idle / (target + owed) + duration, when shorter than the `decoys_per_hour` cycle). With the default
//! 100 % an observer who flags every activity period is right at most about half the time. The
//! price: the count of periods (real + decoy) now follows the real count, so the *amount* of
//! use shows, but not *when* it happened; and decoys still only run while the device is idle.
//!
//! Cover bytes are limited by a token bucket sized so that any 24 hours spend at most
//! `budget_bytes_per_day`: capacity one hour's share (B/24), refilled at 23/24·B per day.
//! A decoy only starts when the bucket holds its expected size; a running decoy stops early
//! when the bucket runs dry.

use super::{Action, Counters, Lane, Micros, Rng, SECOND};
use std::collections::VecDeque;

/// Recent real activity shapes kept per device.
pub const SHAPES: usize = 8;
/// Shortest gap before a decoy, seconds.
pub const MIN_GAP_S: u32 = 1;
const DAY: u128 = 86_400 * SECOND as u128;

/// Parameters of stochastic mode.
#[derive(Debug, Clone, PartialEq)]
pub struct StochasticConfig {
    /// Expected decoy periods per idle hour (0 = none, only padding).
    pub decoys_per_hour: u32,
    /// Highest cover packet rate during a decoy, packets/s (≥ 1).
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
    /// Keep pace: decoy periods per 100 real activity periods of the last `pace_window`
    /// (0 = decoys only at `decoys_per_hour`). See the module docs.
    pub pace_percent: u32,
    /// The sliding window real periods and decoys are counted in, microseconds (≥ 1 s).
    pub pace_window: Micros,
}

impl Default for StochasticConfig {
    /// 6 decoys per idle hour, cap 50 packets/s, 50 MB/day, default shape 5 packets/s for 20 s,
    /// decoys at most 5 minutes, periods split by 5 s of silence, at least one decoy per real
    /// period of the last hour.
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    /// Packets per second.
    rate: f64,
    /// Microseconds.
    duration: Micros,
}

#[derive(Debug, Clone, Copy)]
struct Decoy {
    end: Micros,
    next_packet: Micros,
    mean_gap_us: f64,
}

pub(super) struct Stochastic {
    cfg: StochasticConfig,
    // real activity
    last_real: Option<Micros>,
    period_start: Micros,
    period_packets: u32,
    shapes: [Shape; SHAPES],
    n_shapes: usize,
    next_shape: usize,
    // keep pace: end times of recent real periods, start times of recent decoys (pruned to
    // the window, at most PACE_MAX each)
    real_ends: VecDeque<(Micros, Micros)>,
    decoy_starts: VecDeque<Micros>,
    started: Micros,
    // decoys
    pending: Option<(Micros, Shape)>,
    decoy: Option<Decoy>,
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
            shapes: [Shape { rate: 0.0, duration: 0 }; SHAPES],
            n_shapes: 0,
            next_shape: 0,
            real_ends: VecDeque::new(),
            started: now,
            decoy_starts: VecDeque::new(),
            pending: None,
            decoy: None,
            tokens: capacity,
            capacity,
            refill_per_day: cfg.budget_bytes_per_day - capacity,
            refill_rem: 0,
            refilled_at: now,
        };
        s.schedule(now, rng);
        s
    }

    fn cap(&self, sh: Shape) -> Shape {
        Shape {
            rate: sh.rate.clamp(1.0 / 60.0, self.cfg.rate_cap as f64),
            duration: sh.duration.clamp(SECOND, self.cfg.max_duration_s as u64 * SECOND),
        }
    }

    /// Draw the next decoy (shape and start) after activity ended at `now`.
    fn schedule(&mut self, now: Micros, rng: &mut dyn Rng) {
        self.pending = None;
        if self.cfg.decoys_per_hour == 0 {
            return;
        }
        let shape = if self.n_shapes == 0 {
            Shape { rate: self.cfg.default_rate as f64, duration: self.cfg.default_duration_s as u64 * SECOND }
        } else {
            self.shapes[rng.below(self.n_shapes as u32) as usize]
        };
        let shape = self.cap(shape);
        let mut cycle = 3600.0 * SECOND as f64 / self.cfg.decoys_per_hour as f64;
        let (target, deficit, idle) = self.pace(now);
        if target > 0 {
            // Spread target + deficit decoys over the idle time the window had: decoys run only
            // while the device is idle, so that, not the window, is the time they have.
            cycle = cycle.min(idle as f64 / (target + deficit) as f64 + shape.duration as f64);
        }
        let mean_gap = (cycle - shape.duration as f64).max(MIN_GAP_S as f64 * SECOND as f64);
        let gap = rng.exp(mean_gap).min(cycle * 20.0) as Micros;
        self.pending = Some((now + gap, shape));
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

    pub(super) fn on_packet(&mut self, now: Micros, c: &mut Counters) {
        if self.idle(now) {
            // the loop did not tick between the end of the last period and this packet
            self.close_real_period(c);
            // a new real period begins (the previous one, if any, was closed by on_tick)
            self.period_start = now;
            self.period_packets = 0;
            self.pending = None;
        }
        self.period_packets += 1;
        self.last_real = Some(now);
    }

    /// The pace at `now` over the window: (target = ⌈pace × real periods / 100⌉, decoys still
    /// owed = target − decoys started, idle time in the window in µs (at least a minute)).
    fn pace(&mut self, now: Micros) -> (u64, u64, Micros) {
        let from = now.saturating_sub(self.cfg.pace_window);
        while self.real_ends.front().is_some_and(|&(t, _)| t < from) {
            self.real_ends.pop_front();
        }
        while self.decoy_starts.front().is_some_and(|&t| t < from) {
            self.decoy_starts.pop_front();
        }
        let target = (self.real_ends.len() as u64 * self.cfg.pace_percent as u64).div_ceil(100);
        let busy: Micros = self.real_ends.iter().map(|&(_, d)| d + self.cfg.idle_gap).sum();
        let span = now.saturating_sub(self.started).min(self.cfg.pace_window);
        let idle = span.saturating_sub(busy).max(60 * SECOND);
        (target, target.saturating_sub(self.decoy_starts.len() as u64), idle)
    }

    fn close_real_period(&mut self, c: &mut Counters) {
        let Some(last) = self.last_real else { return };
        if self.period_packets == 0 {
            return;
        }
        let dur = (last - self.period_start).max(SECOND);
        let rate = self.period_packets as f64 * SECOND as f64 / dur as f64;
        self.shapes[self.next_shape] = Shape { rate, duration: dur };
        self.next_shape = (self.next_shape + 1) % SHAPES;
        self.n_shapes = (self.n_shapes + 1).min(SHAPES);
        self.period_packets = 0;
        if self.real_ends.len() >= PACE_MAX {
            self.real_ends.pop_front();
        }
        self.real_ends.push_back((last, last - self.period_start));
        c.real_periods += 1;
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
        // End of a real period?
        if self.period_packets > 0 && self.idle(now) {
            let end = self.last_real.unwrap_or(now) + self.cfg.idle_gap;
            self.close_real_period(c);
            if self.decoy.is_none() {
                self.schedule(end, rng);
            }
        }
        // A decoy is running: emit its due packets.
        if let Some(mut d) = self.decoy {
            while d.next_packet <= now && d.next_packet < d.end {
                if self.tokens < pad_to as u64 {
                    d.end = d.next_packet; // budget dry: stop early
                    break;
                }
                self.tokens -= pad_to as u64;
                c.cover_packets += 1;
                c.cover_bytes += pad_to as u64;
                out.push((0, Action::Cover { len: pad_to }));
                d.next_packet += (rng.exp(d.mean_gap_us).max(1.0)) as Micros;
            }
            if d.next_packet >= d.end && now >= d.end.min(d.next_packet) {
                self.decoy = None;
                let end = d.end;
                if self.idle(now) && self.period_packets == 0 {
                    self.schedule(end, rng);
                }
            } else {
                self.decoy = Some(d);
            }
        }
        // A decoy is due to start?
        if self.decoy.is_none() {
            if let Some((start, shape)) = self.pending {
                if start <= now {
                    self.pending = None;
                    let expected = (shape.rate * shape.duration as f64 / SECOND as f64).ceil() as u64 * pad_to as u64;
                    if self.tokens >= expected.max(pad_to as u64) {
                        c.decoy_periods += 1;
                        push_bounded(&mut self.decoy_starts, start);
                        self.decoy = Some(Decoy {
                            end: start + shape.duration,
                            next_packet: start,
                            mean_gap_us: SECOND as f64 / shape.rate,
                        });
                        // emit what is already due
                        self.on_tick(now, pad_to, rng, c, out);
                    } else {
                        c.decoys_skipped_budget += 1;
                        let end = start + shape.duration;
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
        if let Some(d) = &self.decoy {
            consider(d.next_packet.min(d.end));
        } else if let Some((s, _)) = &self.pending {
            consider(*s);
        }
        t
    }
}

/// Most timestamps kept per pace ring (beyond it the counts saturate: 1,000 periods per window).
const PACE_MAX: usize = 1000;

fn push_bounded(q: &mut VecDeque<Micros>, t: Micros) {
    if q.len() >= PACE_MAX {
        q.pop_front();
    }
    q.push_back(t);
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod pace_tests;

#[cfg(test)]
mod tests {
    use super::super::*;

    const HOUR: Micros = 3600 * SECOND;

    fn cfg(decoys: u32, budget: u64) -> Config {
        Config {
            pad_to: 1000,
            mode: Mode::Stochastic(StochasticConfig {
                decoys_per_hour: decoys,
                budget_bytes_per_day: budget,
                ..StochasticConfig::default()
            }),
        }
    }

    /// Discrete-event run from the shaper's start to `until`: the next event is whichever comes
    /// first, a real packet (of 100 bytes) or the shaper's wakeup. Returns (time, action) pairs.
    /// Run `s` on the virtual clock until `until`, feeding the real packets at `real`; every
    /// action with its time. Shared with the keep-pace tests.
    pub(super) fn drive(
        s: &mut DeviceShaper,
        rng: &mut dyn Rng,
        until: Micros,
        real: &[Micros],
    ) -> Vec<(Micros, Action)> {
        let mut log = Vec::new();
        let mut out = Vec::new();
        let mut ri = 0;
        loop {
            let wake = s.next_wakeup().unwrap_or(Micros::MAX);
            let pkt = real.get(ri).copied().unwrap_or(Micros::MAX);
            let t = wake.min(pkt);
            if t > until {
                break;
            }
            if pkt <= wake {
                s.on_packet(pkt, ri as PacketId, 100, rng, &mut out);
                ri += 1;
            } else {
                s.on_tick(wake, rng, &mut out);
            }
            log.extend(out.drain(..).map(|a| (t, a)));
        }
        log
    }

    #[test]
    fn idle_hour_has_the_configured_number_of_decoys() {
        // 12 decoys per idle hour with the default shape (5 pkt/s for 20 s, ~100 cover packets
        // each). Gap+decoy cycles have mean 300 s (gap exponential, mean and std 280 s), so the
        // count in one hour is a renewal count with std ≈ sqrt(12 · 280²/300²) ≈ 3.2.
        // Bound: each seeded hour within [1, 30] (catches gross errors), and the mean over 40
        // seeded hours within 12 ± 0.9 (4σ of a 200-sample mean: 4 · 3.2/√200 ≈ 0.9). A cycle
        // that forgot to subtract the decoy's duration (mean 320 s → 11.25/h) would fail.
        let mut counts = Vec::new();
        for seed in 0..200 {
            let mut rng = SeededRng::new(seed);
            let mut s = DeviceShaper::new(&cfg(12, 1_000_000_000), 0, &mut rng);
            let log = drive(&mut s, &mut rng, HOUR, &[]);
            let c = s.counters();
            counts.push(c.decoy_periods as f64);
            assert!((1..=30).contains(&c.decoy_periods), "seed {seed}: {} decoys", c.decoy_periods);
            assert_eq!(c.real_packets, 0);
            assert_eq!(c.cover_packets as usize, log.len());
            assert!(log.iter().all(|(_, a)| *a == Action::Cover { len: 1000 }));
            // about 100 packets per decoy (Poisson within a 20 s window)
            let per = c.cover_packets as f64 / c.decoy_periods as f64;
            assert!((60.0..=140.0).contains(&per), "seed {seed}: {per} packets per decoy");
        }
        let mean = counts.iter().sum::<f64>() / counts.len() as f64;
        eprintln!("mean decoys per idle hour over 200 seeds: {mean}");
        assert!((mean - 12.0).abs() <= 0.9, "mean decoys per idle hour {mean}");
    }

    #[test]
    fn budget_is_never_exceeded_in_any_day() {
        // Demand far above budget: 60 decoys/h × 100 packets × 1000 B = 6 MB/h; budget 24 MB/day.
        let budget = 24_000_000;
        let mut rng = SeededRng::new(42);
        let mut s = DeviceShaper::new(&cfg(60, budget), 0, &mut rng);
        let log = drive(&mut s, &mut rng, 3 * 24 * HOUR, &[]);
        let times: Vec<Micros> = log.iter().map(|(t, _)| *t).collect();
        let mut worst = 0u64;
        let mut j = 0;
        for i in 0..times.len() {
            while times[i] - times[j] >= 24 * HOUR {
                j += 1;
            }
            worst = worst.max((i - j + 1) as u64 * 1000);
        }
        assert!(worst <= budget, "{worst} cover bytes in 24 h, budget {budget}");
        // and the budget is actually used (not trivially satisfied): > 90 % of it per day
        assert!(s.counters().cover_bytes >= 3 * budget * 9 / 10, "{}", s.counters().cover_bytes);
        assert!(s.counters().decoys_skipped_budget > 0);
    }

    #[test]
    fn real_packets_are_released_at_once_and_shape_the_decoys() {
        let mut rng = SeededRng::new(5);
        let c = Config {
            pad_to: 1000,
            mode: Mode::Stochastic(StochasticConfig {
                decoys_per_hour: 30,
                default_rate: 5,
                default_duration_s: 20,
                budget_bytes_per_day: 10_000_000_000,
                ..StochasticConfig::default()
            }),
        };
        let mut s = DeviceShaper::new(&c, 0, &mut rng);
        // One real period: 40 packets/s for 60 s (2,400 packets) starting at 10 s.
        // (With this seed the first decoy starts later than 70 s, checked below.)
        let real: Vec<Micros> = (0..2400).map(|i| 10 * SECOND + i * 25_000).collect();
        let log = drive(&mut s, &mut rng, 4 * HOUR, &real);
        let c = s.counters();
        assert_eq!(c.real_packets, 2400);
        assert_eq!(c.real_periods, 1);
        assert_eq!(c.delay.quantile(1.0), Some(0), "stochastic mode never delays");
        for (i, t) in real.iter().enumerate() {
            assert!(log.contains(&(*t, Action::Release { id: i as u32, pad_to: 1000 })));
        }
        // After the real period every decoy copies its shape: ≈ 40 pkt/s × 60 s = 2,400 packets.
        let decoys_after = c.decoy_periods as f64;
        assert!(decoys_after >= 80.0, "{decoys_after} decoys in ~4 h at 30/h");
        let cover_after: usize =
            log.iter().filter(|(t, a)| *t > 80 * SECOND && matches!(a, Action::Cover { .. })).count();
        let per = cover_after as f64 / (decoys_after - 1.0);
        assert!((2200.0..=2600.0).contains(&per), "{per} cover packets per decoy, real period had 2400");
        // no decoy started or ran while the device was really active (10 s .. 75 s)
        assert!(
            !log.iter().any(|(t, a)| matches!(a, Action::Cover { .. }) && *t < 75 * SECOND),
            "decoy during real activity"
        );
    }

    #[test]
    fn zero_decoys_means_padding_only() {
        let mut rng = SeededRng::new(1);
        let mut s = DeviceShaper::new(&cfg(0, 1_000_000), 0, &mut rng);
        let log = drive(&mut s, &mut rng, 2 * HOUR, &[SECOND, 2 * SECOND]);
        assert_eq!(log.len(), 2);
        assert_eq!(s.counters().cover_packets, 0);
        assert_eq!(s.counters().real_periods, 1);
    }
}
