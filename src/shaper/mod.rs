//! The shaping core: pure per-device state machines driven by a virtual clock.
//!
//! Like maybenot's framework, a [`Schedule`] (one clock serving the queues of several devices of
//! one tunnel; [`DeviceShaper`] is the one-device case) has no runtime: the event loop feeds it events
//! ("a real packet of this device was queued at time t", "it is now time t") and carries out the
//! [`Action`]s it returns (release a held packet padded to `pad_to`, send a cover packet of
//! `pad_to` bytes, drop a held packet). Time is a plain microsecond count ([`Micros`]) supplied
//! by the caller, so unit tests run an hour of virtual time in milliseconds. The shaper never
//! sees packet bytes; it tracks packets by the queue's packet id and length.
//!
//! Everything in this module is pure: no syscall, clock or file, and no import of the config,
//! plan or daemon layers. The effectful shell that runs these shapers (queue sockets, timer,
//! cover injection) is `daemon::engine`, which also maps the configuration's shaper sections
//! to [`Config`].
//!
//! Modes:
//! - [`Mode::Constant`] — independent link padding: a slot clock at `rate` slots/s; every slot
//!   emits exactly one packet of `pad_to` bytes, the oldest held real packet or a cover packet.
//!   Real packets wait in a bounded queue. Throughput is therefore capped at
//!   `rate × pad_to` bytes/s of inner packets (e.g. 20 slots/s × 1408 B ≈ 28 KB/s ≈ 225 kbit/s),
//!   and the cover cost is the same figure whether the device is busy or idle.
//! - [`Mode::Stochastic`] — stochastic traffic padding after STP (Apthorpe et al., PoPETs 2019):
//!   real packets are padded and released at once; while the tunnel has no activity, decoy
//!   periods start at random times, each replaying the packet timing of one of its recent real
//!   activity periods (or configured defaults), under a rate cap and a daily cover budget.
//! - [`Mode::PadOnly`] — pad and release at once, no cover (other traffic in a `pad_all` tunnel).
//!
//! In every mode a real packet longer than `pad_to` is dropped (counted in
//! [`Counters::oversize_drops`]): sending it would show a second size on the wire. TCP is kept
//! below the limit by MSS clamping (in the nft ruleset); oversized non-TCP
//! packets (large UDP datagrams, e.g. QUIC Initials above the pad size) are lost, which QUIC and
//! DNS handle by falling back to smaller packets.

pub mod rng;
pub mod stats;

mod constant;
mod flows;
mod profile;
mod schedule;
mod stochastic;

pub use constant::ConstantConfig;
pub use flows::BUCKETS as FLOW_BUCKETS;
pub use rng::{Rng, SeededRng};
pub use schedule::{Lane, Schedule};
pub use stats::{Counters, DelayHistogram};
pub use stochastic::{StochasticConfig, ACTIVE_PACKETS};

/// Virtual time in microseconds since an arbitrary origin (the daemon uses `CLOCK_MONOTONIC`).
pub type Micros = u64;

/// A queued packet's identifier (the nfnetlink_queue packet id).
pub type PacketId = u32;

/// One microsecond count per second.
pub const SECOND: Micros = 1_000_000;

/// Why a real packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The device's queue was full (constant mode).
    QueueFull,
    /// The packet is longer than `pad_to`.
    Oversize,
    /// The shaper was flushed (reload/shutdown): fail closed.
    Flushed,
}

/// What the event loop must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Accept held packet `id` with its payload zero-padded past the IP length to `pad_to` bytes.
    Release {
        /// The packet.
        id: PacketId,
        /// Total length of the padded payload.
        pad_to: u16,
    },
    /// Inject one cover packet of `len` bytes into the device's tunnel.
    Cover {
        /// Total length of the cover packet.
        len: u16,
        /// Answers the far end's follow-mode schedule should send for it (0: by its own rule):
        /// a decoy copying a download's acknowledgements asks for the data they acknowledged.
        answers: u8,
    },
    /// Drop held packet `id`.
    Drop {
        /// The packet.
        id: PacketId,
        /// Why.
        reason: DropReason,
    },
}

/// The shaping mode and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Constant-rate slots.
    Constant(ConstantConfig),
    /// Stochastic decoy periods.
    Stochastic(StochasticConfig),
    /// Padding only.
    PadOnly,
}

/// Everything a device's shaper needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Inner packet size every packet leaves with (≥ 40, ≤ the tunnel MTU).
    pub pad_to: u16,
    /// Mode and parameters.
    pub mode: Mode,
}

/// Minimum sensible `pad_to`: an IPv6 header. The single source of this bound (the config
/// grammar and the plan refer to it).
pub const MIN_PAD_TO: u16 = 40;

/// One device's shaper: a [`Schedule`] with a single lane (the per-device API the tests and
/// benchmarks drive; the engine runs [`Schedule`]s directly).
pub struct DeviceShaper {
    schedule: Schedule,
    scratch: Vec<(Lane, Action)>,
}

impl DeviceShaper {
    /// A new shaper starting at virtual time `now`. Panics on an invalid config (the model
    /// validates ranges first): `pad_to` < 40, rate 0, empty queue.
    pub fn new(config: &Config, now: Micros, rng: &mut dyn Rng) -> DeviceShaper {
        DeviceShaper { schedule: Schedule::new(config, 1, now, rng), scratch: Vec::new() }
    }

    /// The pad size.
    pub fn pad_to(&self) -> u16 {
        self.schedule.pad_to()
    }

    /// A real packet of `len` bytes (its IP length) was queued at `now`. (`_rng` is for modes
    /// that draw on packet events; the current ones do not.)
    pub fn on_packet(&mut self, now: Micros, id: PacketId, len: u16, _rng: &mut dyn Rng, out: &mut Vec<Action>) {
        self.schedule.on_packet(0, now, id, len, &mut self.scratch);
        out.extend(self.scratch.drain(..).map(|(_, a)| a));
    }

    /// The clock reached `now`: emit whatever is due. Call at or soon after [`Self::next_wakeup`].
    pub fn on_tick(&mut self, now: Micros, rng: &mut dyn Rng, out: &mut Vec<Action>) {
        self.schedule.on_tick(now, rng, &mut self.scratch);
        out.extend(self.scratch.drain(..).map(|(_, a)| a));
    }

    /// When this shaper next needs [`Self::on_tick`], if ever.
    pub fn next_wakeup(&self) -> Option<Micros> {
        self.schedule.next_wakeup()
    }

    /// Drop every held packet (reload or shutdown): nothing leaves unshaped.
    pub fn flush(&mut self, out: &mut Vec<Action>) {
        self.schedule.flush(&mut self.scratch);
        out.extend(self.scratch.drain(..).map(|(_, a)| a));
    }

    /// Packets currently held.
    pub fn held(&self) -> usize {
        self.schedule.held(0)
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.schedule.counters(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_only_releases_at_once_and_drops_oversize() {
        let mut rng = SeededRng::new(1);
        let mut s = DeviceShaper::new(&Config { pad_to: 1000, mode: Mode::PadOnly }, 0, &mut rng);
        let mut out = Vec::new();
        s.on_packet(5, 1, 100, &mut rng, &mut out);
        s.on_packet(6, 2, 1001, &mut rng, &mut out);
        s.on_packet(7, 3, 1000, &mut rng, &mut out);
        assert_eq!(
            out,
            vec![
                Action::Release { id: 1, pad_to: 1000 },
                Action::Drop { id: 2, reason: DropReason::Oversize },
                Action::Release { id: 3, pad_to: 1000 },
            ]
        );
        assert_eq!(s.next_wakeup(), None);
        let c = s.counters();
        assert_eq!((c.real_packets, c.real_bytes, c.padding_bytes, c.oversize_drops), (2, 1100, 900, 1));
    }
}
