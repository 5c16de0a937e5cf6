//! Per-device counters and a compact delay histogram.
//!
//! Plain integers owned by the single-threaded event loop: no atomics (32-bit MIPS has no
//! 64-bit atomics), and `u64` fields are fine there as ordinary integers.

/// Sub-buckets per power of two in [`DelayHistogram`] (relative bucket width ≤ 25 %).
const SUB: u32 = 4;
/// Powers of two covered: 1 µs … 2^32 µs (≈ 71 minutes).
const POWERS: u32 = 32;
const BUCKETS: usize = (POWERS * SUB) as usize + 1;

/// Log-linear histogram of delays in microseconds: 129 `u32` buckets (516 bytes).
///
/// Bucket 0 holds delay 0; above that each power of two is split in four equal sub-buckets.
/// Quantiles report the upper bound of the bucket they fall in, so they over-estimate by at most
/// 25 % (and never under-estimate).
#[derive(Clone, PartialEq, Eq)]
pub struct DelayHistogram {
    buckets: [u32; BUCKETS],
    count: u32,
}

impl std::fmt::Debug for DelayHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DelayHistogram {{ n: {}, p50: {:?}, p99: {:?} }}",
            self.count,
            self.quantile(0.5),
            self.quantile(0.99)
        )
    }
}

impl Default for DelayHistogram {
    fn default() -> Self {
        DelayHistogram { buckets: [0; BUCKETS], count: 0 }
    }
}

fn bucket_of(us: u64) -> usize {
    if us == 0 {
        return 0;
    }
    let us = us.min((1u64 << POWERS) - 1);
    let p = 63 - us.leading_zeros(); // floor(log2), 0..=31
    let sub = if p >= 2 { ((us >> (p - 2)) & 3) as u32 } else { ((us << (2 - p)) & 3) as u32 };
    (1 + p * SUB + sub) as usize
}

fn upper_bound(bucket: usize) -> u64 {
    if bucket == 0 {
        return 0;
    }
    let b = bucket as u32 - 1;
    let p = b / SUB;
    let sub = (b % SUB) as u64;
    // bucket covers [2^p * (4+sub)/4, 2^p * (5+sub)/4); report the last value inside it.
    let hi = ((1u64 << p) * (5 + sub)).div_ceil(4);
    hi.saturating_sub(1).max(1u64 << p)
}

impl DelayHistogram {
    /// Record one delay.
    pub fn record(&mut self, us: u64) {
        let b = bucket_of(us);
        self.buckets[b] = self.buckets[b].saturating_add(1);
        self.count = self.count.saturating_add(1);
    }

    /// Number of recorded delays (saturating).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The `q`-quantile (0 < q ≤ 1) in microseconds, or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n as u64;
            if seen >= rank {
                return Some(upper_bound(i));
            }
        }
        Some(upper_bound(BUCKETS - 1))
    }
}

/// What a device's shaper has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Real packets released.
    pub real_packets: u64,
    /// Bytes of those packets before padding.
    pub real_bytes: u64,
    /// Zero bytes appended to real packets.
    pub padding_bytes: u64,
    /// Cover packets emitted.
    pub cover_packets: u64,
    /// Bytes of cover packets (each `pad_to` long).
    pub cover_bytes: u64,
    /// Real packets dropped because the device's queue was full.
    pub queue_drops: u64,
    /// Real packets dropped because they were longer than `pad_to`.
    pub oversize_drops: u64,
    /// Real packets dropped when the shaper was flushed (reload, shutdown).
    pub flush_drops: u64,
    /// Constant mode: slots skipped because the event loop woke up too late to serve them.
    pub missed_slots: u64,
    /// Stochastic mode: decoy activity periods started.
    pub decoy_periods: u64,
    /// Stochastic mode: decoys not started because the daily cover budget was short.
    pub decoys_skipped_budget: u64,
    /// Stochastic mode: real activity periods seen.
    pub real_periods: u64,
    /// Time real packets spent held by the shaper.
    pub delay: DelayHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        for us in [0u64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 100, 1000, 20_000, 1 << 31, u64::MAX] {
            let b = bucket_of(us);
            assert!(b >= last, "bucket order at {us}");
            last = b;
            assert!(b < BUCKETS);
            if us < (1u64 << 32) {
                let ub = upper_bound(b);
                assert!(ub >= us, "upper bound {ub} below {us}");
                assert!(ub as f64 <= us as f64 * 1.25 + 1.0, "upper bound {ub} too far above {us}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..98 {
            h.record(1000);
        }
        h.record(50_000);
        h.record(50_000);
        let p50 = h.quantile(0.5).unwrap();
        assert!((1000..=1250).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((50_000..=62_500).contains(&p99), "p99 {p99}");
        assert_eq!(h.count(), 100);
    }
}
