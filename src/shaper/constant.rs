//! `mode constant`: independent link padding on a slot clock.

use super::{Micros, SECOND};

/// Parameters of constant mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantConfig {
    /// Slots (packets) per second, ≥ 1.
    pub rate: u32,
    /// Most real packets held per device queue of the schedule; more are dropped (≥ 1).
    pub queue_limit: u16,
    /// A slot more than this many slot intervals in the past when the loop finally wakes is
    /// skipped instead of served late (so a stalled loop does not burst). Default 2.
    pub max_late_slots: u32,
}

impl ConstantConfig {
    /// Defaults for a rate: queue of 2 seconds' worth of slots (at least 8, at most 1,000),
    /// late slots skipped after 2 intervals.
    pub fn with_rate(rate: u32) -> ConstantConfig {
        ConstantConfig { rate, queue_limit: (rate.saturating_mul(2)).clamp(8, 1000) as u16, max_late_slots: 2 }
    }
}

/// The slot clock of constant mode: slot k is due at origin + k·10⁶/rate (no drift). It only
/// keeps time; which queue a slot serves is the [`super::Schedule`]'s business.
pub(super) struct Clock {
    rate: u64,
    origin: Micros,
    /// Index of the next slot to serve.
    next: u64,
    max_late: u64,
}

impl Clock {
    pub(super) fn new(c: &ConstantConfig, now: Micros) -> Clock {
        assert!(c.rate >= 1 && c.rate <= 1_000_000, "rate out of range");
        assert!(c.queue_limit >= 1, "queue_limit 0");
        Clock { rate: c.rate as u64, origin: now, next: 1, max_late: c.max_late_slots as u64 }
    }

    fn slot_time(&self, k: u64) -> Micros {
        // u64 arithmetic (cheap on 32-bit MIPS too); u128 only after ~570 years at 1000 slots/s.
        match k.checked_mul(SECOND) {
            Some(x) => self.origin + x / self.rate,
            None => self.origin + (k as u128 * SECOND as u128 / self.rate as u128) as u64,
        }
    }

    pub(super) fn next_wakeup(&self) -> Micros {
        self.slot_time(self.next)
    }

    /// Advance to `now`: returns how many due slots are to be served now; hopelessly late ones
    /// (the loop stalled: serving them now would burst) are skipped and counted in `missed`.
    pub(super) fn due(&mut self, now: Micros, missed: &mut u64) -> u32 {
        let interval_late = self.max_late * SECOND;
        let mut serve = 0;
        loop {
            let t = self.slot_time(self.next);
            if t > now {
                break;
            }
            self.next += 1;
            if (now - t) as u128 * self.rate as u128 > interval_late as u128 {
                *missed += 1;
                continue;
            }
            serve += 1;
        }
        serve
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn shaper(rate: u32, limit: u16) -> (DeviceShaper, SeededRng) {
        let mut rng = SeededRng::new(9);
        let cfg = Config {
            pad_to: 1408,
            mode: Mode::Constant(ConstantConfig { rate, queue_limit: limit, max_late_slots: 2 }),
        };
        (DeviceShaper::new(&cfg, 1_000_000, &mut rng), rng)
    }

    /// Drive the shaper like the event loop: wake exactly at each next_wakeup, feed packets that
    /// arrive in between. Returns (time, action) pairs.
    fn run(
        s: &mut DeviceShaper,
        rng: &mut SeededRng,
        until: Micros,
        arrivals: &[(Micros, u16)],
    ) -> Vec<(Micros, Action)> {
        let mut log = Vec::new();
        let mut out = Vec::new();
        let mut ai = 0;
        let mut id = 0;
        loop {
            let wake = s.next_wakeup().unwrap();
            while ai < arrivals.len() && arrivals[ai].0 <= wake.min(until) {
                let (t, len) = arrivals[ai];
                s.on_packet(t, id, len, rng, &mut out);
                id += 1;
                ai += 1;
                log.extend(out.drain(..).map(|a| (t, a)));
            }
            if wake > until {
                break;
            }
            s.on_tick(wake, rng, &mut out);
            log.extend(out.drain(..).map(|a| (wake, a)));
        }
        log
    }

    #[test]
    fn idle_emits_one_cover_per_slot_of_one_size() {
        let (mut s, mut rng) = shaper(50, 16);
        let log = run(&mut s, &mut rng, 1_000_000 + 60 * SECOND, &[]);
        assert_eq!(log.len(), 50 * 60);
        for (i, (t, a)) in log.iter().enumerate() {
            assert_eq!(*t, 1_000_000 + (i as u64 + 1) * 20_000, "slot {i} time");
            assert_eq!(*a, Action::Cover { len: 1408, answers: 0 });
        }
        assert_eq!(s.counters().cover_packets, 3000);
        assert_eq!(s.counters().cover_bytes, 3000 * 1408);
    }

    #[test]
    fn busy_and_idle_emit_exactly_one_packet_per_slot() {
        // 3 slots/s (interval 333333.3 µs: checks there is no rounding drift) for 30 s with a
        // burst of 20 real packets at t=5 s and a steady trickle later.
        let (mut s, mut rng) = shaper(3, 100);
        let t0 = 1_000_000;
        let mut arrivals: Vec<(Micros, u16)> = (0..20).map(|i| (t0 + 5 * SECOND + i, 60 + i as u16)).collect();
        arrivals.extend((0..10).map(|i| (t0 + 15 * SECOND + i * 700_000, 1408)));
        let log = run(&mut s, &mut rng, t0 + 30 * SECOND, &arrivals);
        // Every action happens exactly on a slot boundary, one per slot, and every slot has one.
        assert_eq!(log.len(), 90);
        for (k, (t, a)) in log.iter().enumerate() {
            let k = k as u64 + 1;
            assert_eq!(*t, t0 + k * 1_000_000 / 3);
            match a {
                Action::Release { pad_to, .. } => assert_eq!(*pad_to, 1408),
                Action::Cover { len, .. } => assert_eq!(*len, 1408),
                Action::Drop { .. } => panic!("unexpected drop"),
            }
        }
        let released: Vec<PacketId> =
            log.iter().filter_map(|(_, a)| if let Action::Release { id, .. } = a { Some(*id) } else { None }).collect();
        assert_eq!(released, (0..30).collect::<Vec<_>>(), "FIFO, nothing lost");
        let c = s.counters();
        assert_eq!(c.real_packets, 30);
        assert_eq!(c.cover_packets, 60);
        assert_eq!(c.real_bytes + c.padding_bytes, 30 * 1408);
        // The 20th packet of the burst waited ≈ 20 slots ≈ 6.7 s.
        let p99 = c.delay.quantile(1.0).unwrap();
        assert!((6_000_000..=8_400_000).contains(&p99), "max delay {p99}");
    }

    #[test]
    fn queue_bound_drops_and_counts() {
        let (mut s, mut rng) = shaper(10, 4);
        let mut out = Vec::new();
        for id in 0..7 {
            s.on_packet(1_000_001, id, 100, &mut rng, &mut out);
        }
        assert_eq!(s.held(), 4);
        assert_eq!(out, (4..7).map(|id| Action::Drop { id, reason: DropReason::QueueFull }).collect::<Vec<_>>());
        assert_eq!(s.counters().queue_drops, 3);
        out.clear();
        s.on_tick(1_100_000, &mut rng, &mut out);
        assert_eq!(out, vec![Action::Release { id: 0, pad_to: 1408 }]);
        s.on_packet(1_100_001, 7, 100, &mut rng, &mut out);
        assert_eq!(s.held(), 4);
        out.clear();
        s.flush(&mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|a| matches!(a, Action::Drop { reason: DropReason::Flushed, .. })));
        assert_eq!(s.held(), 0);
        assert_eq!(s.counters().flush_drops, 4);
    }

    #[test]
    fn late_wakeup_serves_recent_slots_and_skips_stale_ones() {
        let (mut s, mut rng) = shaper(10, 8);
        let mut out = Vec::new();
        // Loop stalls for 1 s: slots 1..=10 are due; only those ≤ 2 intervals old are served.
        s.on_tick(2_000_000, &mut rng, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(s.counters().missed_slots, 7);
        assert_eq!(s.next_wakeup().unwrap(), 2_100_000);
    }

    #[test]
    fn oversize_is_dropped_not_queued() {
        let (mut s, mut rng) = shaper(10, 8);
        let mut out = Vec::new();
        s.on_packet(1_000_001, 1, 1409, &mut rng, &mut out);
        assert_eq!(out, vec![Action::Drop { id: 1, reason: DropReason::Oversize }]);
        assert_eq!(s.held(), 0);
    }
}
