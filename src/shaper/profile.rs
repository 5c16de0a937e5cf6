//! Activity profiles: when a real activity period's packets left, to replay as a decoy.
//!
//! A [`Profile`] is a period's packets counted in bins of [`BIN`] from its first packet, stored
//! sparsely (only bins with packets, each a `u32`: 20 bits of bin index, 12 of count; at most
//! [`MAX_EVENTS`] of them, 16 KB). Replaying it
//! sends each bin's packets together at the bin's offset from the decoy's start, so a decoy has
//! the real period's bursts (a TCP flight, an answer of 200 KB within a second or two) and its
//! pauses, not a Poisson stream at the period's mean rate. Each bin also counts its *small*
//! packets (at most [`SMALL_LEN`] bytes: a pure TCP or QUIC acknowledgement), which tell the far
//! end of a two-way schedule that this stretch was a download (`stochastic` module).

use super::{Micros, Rng, SECOND};

/// Bin width of a profile, microseconds.
pub const BIN: Micros = 5_000;
/// Most bins with packets kept per profile (a longer period is cut there).
pub const MAX_EVENTS: usize = 4096;
/// Largest IP length of a *small* packet, bytes: an IPv6 TCP ACK with timestamps is 72, a QUIC
/// ACK-only packet about 60-90; a data segment of a device is larger.
pub const SMALL_LEN: u16 = 96;
const COUNT_BITS: u32 = 12;
const COUNT_MAX: u32 = (1 << COUNT_BITS) - 1;
const BIN_MAX: u64 = (1 << (32 - COUNT_BITS)) - 1;

/// Packets per bin of one activity period (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Profile {
    /// Bin index from the first packet << COUNT_BITS | packets in it, in increasing bin order.
    events: Vec<u32>,
    /// Small packets per bin with packets (same length as `events`).
    small: Vec<u16>,
    packets: u32,
}

impl Profile {
    /// Count a packet (`small`: at most [`SMALL_LEN`] bytes) `offset` µs after the period's
    /// first packet. False (and not counted) when the profile is full or the offset is beyond
    /// `max`.
    pub(super) fn record(&mut self, offset: Micros, max: Micros, small: bool) -> bool {
        let bin = offset / BIN;
        if offset >= max || bin > BIN_MAX {
            return false;
        }
        let full = self.events.len() >= MAX_EVENTS;
        match self.events.last_mut() {
            Some(e) if (*e >> COUNT_BITS) as u64 == bin => {
                if *e & COUNT_MAX == COUNT_MAX {
                    return false;
                }
                *e += 1;
            }
            _ if full => return false,
            _ => {
                self.events.push(((bin as u32) << COUNT_BITS) | 1);
                self.small.push(0);
            }
        }
        if let (true, Some(k)) = (small, self.small.last_mut()) {
            *k += 1; // at most the bin's count, which is at most COUNT_MAX
        }
        self.packets += 1;
        true
    }

    /// A synthetic profile: Poisson packets at `rate`/s for `duration` µs (the decoy shape
    /// before any real activity has been seen).
    pub(super) fn poisson(rate: f64, duration: Micros, rng: &mut dyn Rng) -> Profile {
        let mut p = Profile::default();
        let mean = SECOND as f64 / rate.max(1e-3);
        let mut t = 0.0;
        while (t as Micros) < duration && p.record(t as Micros, duration, false) {
            t += rng.exp(mean).max(1.0);
        }
        p
    }

    /// Packets in the profile.
    pub(super) fn packets(&self) -> u32 {
        self.packets
    }

    /// From the first packet to the end of the last bin, µs (at least one second).
    pub(super) fn duration(&self) -> Micros {
        self.events.last().map_or(0, |&e| ((e >> COUNT_BITS) as u64 + 1) * BIN).max(SECOND)
    }

    /// Seconds per packet over the profile's duration (how calm it is; an empty profile counts
    /// as one packet).
    pub(super) fn seconds_per_packet(&self) -> f64 {
        self.duration() as f64 / SECOND as f64 / self.packets.max(1) as f64
    }

    /// Number of bins with packets.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// The `i`-th bin with packets: (offset from the start in µs, packets).
    pub(super) fn event(&self, i: usize) -> (Micros, u32) {
        let e = self.events[i];
        ((e >> COUNT_BITS) as u64 * BIN, e & COUNT_MAX)
    }

    /// Small packets among the `i`-th bin's.
    pub(super) fn small(&self, i: usize) -> u32 {
        self.small[i] as u32
    }
}

#[cfg(test)]
mod tests {
    use super::super::SeededRng;
    use super::*;

    #[test]
    fn records_bins_sparsely_and_stops_when_full() {
        let mut p = Profile::default();
        assert!(p.record(0, SECOND, true));
        assert!(p.record(BIN - 1, SECOND, false));
        assert!(p.record(3 * BIN, SECOND, true));
        assert!(!p.record(SECOND, SECOND, true), "past max");
        assert_eq!((p.len(), p.packets()), (2, 3));
        assert_eq!((p.event(0), p.small(0)), ((0, 2), 1));
        assert_eq!((p.event(1), p.small(1)), ((3 * BIN, 1), 1));
        assert_eq!(p.duration(), SECOND, "at least a second");
        let mut q = Profile::default();
        for i in 0..MAX_EVENTS as u64 + 10 {
            q.record(i * BIN, Micros::MAX, false);
        }
        assert_eq!((q.len(), q.packets() as usize), (MAX_EVENTS, MAX_EVENTS));
        assert_eq!(q.duration(), MAX_EVENTS as u64 * BIN);
    }

    #[test]
    fn poisson_profile_has_about_rate_times_duration_packets() {
        let mut rng = SeededRng::new(3);
        let p = Profile::poisson(10.0, 100 * SECOND, &mut rng);
        assert!((850..=1150).contains(&p.packets()), "{}", p.packets());
        assert!(p.duration() <= 100 * SECOND);
    }
}
