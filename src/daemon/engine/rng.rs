//! The engine's random source: the kernel's CSPRNG.

use crate::shaper::Rng;
use crate::sys;

/// The kernel's CSPRNG through [`sys::getrandom`], buffered 256 bytes at a time. What the
/// daemon's shapers draw their schedules from (a seeded generator would make them predictable
/// from what an observer sees).
pub struct OsRng {
    buf: [u8; 256],
    pos: usize,
}

impl OsRng {
    /// A new generator; the first draw fills the buffer.
    pub fn new() -> OsRng {
        OsRng { buf: [0; 256], pos: 256 }
    }
}

impl Default for OsRng {
    fn default() -> Self {
        OsRng::new()
    }
}

impl Rng for OsRng {
    fn next_u32(&mut self) -> u32 {
        if self.pos + 4 > self.buf.len() {
            // No entropy source at all would make the schedule predictable: refuse to go on.
            if let Err(e) = sys::getrandom(&mut self.buf) {
                panic!("getrandom failed: {e}");
            }
            self.pos = 0;
        }
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_rng_returns_varied_values() {
        let mut r = OsRng::new();
        let xs: Vec<u32> = (0..200).map(|_| r.next_u32()).collect();
        let distinct = xs.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 190, "only {distinct} distinct values from the OS");
        assert!(r.below(10) < 10);
    }
}
