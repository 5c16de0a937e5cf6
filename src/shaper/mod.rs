//! The shaping core: pure per-device state machines driven by a virtual clock.
//!
//! Like maybenot's framework, a [`DeviceShaper`] has no runtime: the event loop feeds it events
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
//!   real packets are padded and released at once; while the device is idle, decoy activity
//!   periods start at random times, each shaped (rate, duration) like one of the device's recent
//!   real activity periods (or configured defaults), under a rate cap and a daily cover budget.
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
mod stochastic;

pub use constant::ConstantConfig;
pub use rng::{Rng, SeededRng};
pub use stats::{Counters, DelayHistogram};
pub use stochastic::StochasticConfig;

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

// One State per shaped device, built once and never moved: boxing the big variant would only add an indirection
// on the per-packet path.
#[allow(clippy::large_enum_variant)]
enum State {
    Constant(constant::Constant),
    Stochastic(stochastic::Stochastic),
    PadOnly,
}

/// One device's shaper.
pub struct DeviceShaper {
    pad_to: u16,
    state: State,
    counters: Counters,
}

impl DeviceShaper {
    /// A new shaper starting at virtual time `now`. Panics on an invalid config (the model
    /// validates ranges first): `pad_to` < 40, rate 0, empty queue.
    pub fn new(config: &Config, now: Micros, rng: &mut dyn Rng) -> DeviceShaper {
        assert!(config.pad_to >= MIN_PAD_TO, "pad_to below {MIN_PAD_TO}");
        let state = match &config.mode {
            Mode::Constant(c) => State::Constant(constant::Constant::new(c, now)),
            Mode::Stochastic(c) => State::Stochastic(stochastic::Stochastic::new(c, config.pad_to, now, rng)),
            Mode::PadOnly => State::PadOnly,
        };
        DeviceShaper { pad_to: config.pad_to, state, counters: Counters::default() }
    }

    /// The pad size.
    pub fn pad_to(&self) -> u16 {
        self.pad_to
    }

    /// A real packet of `len` bytes (its IP length) was queued at `now`. (`_rng` is for modes
    /// that draw on packet events; the current ones do not.)
    pub fn on_packet(&mut self, now: Micros, id: PacketId, len: u16, _rng: &mut dyn Rng, out: &mut Vec<Action>) {
        if len > self.pad_to {
            self.counters.oversize_drops += 1;
            out.push(Action::Drop { id, reason: DropReason::Oversize });
            return;
        }
        let pad_to = self.pad_to;
        match &mut self.state {
            State::Constant(c) => c.on_packet(now, id, len, &mut self.counters, out),
            State::Stochastic(s) => {
                s.on_packet(now, &mut self.counters);
                release_now(&mut self.counters, id, len, pad_to, out);
            }
            State::PadOnly => release_now(&mut self.counters, id, len, pad_to, out),
        }
    }

    /// The clock reached `now`: emit whatever is due. Call at or soon after [`Self::next_wakeup`].
    pub fn on_tick(&mut self, now: Micros, rng: &mut dyn Rng, out: &mut Vec<Action>) {
        let pad_to = self.pad_to;
        match &mut self.state {
            State::Constant(c) => c.on_tick(now, pad_to, &mut self.counters, out),
            State::Stochastic(s) => s.on_tick(now, pad_to, rng, &mut self.counters, out),
            State::PadOnly => {}
        }
    }

    /// When this shaper next needs [`Self::on_tick`], if ever.
    pub fn next_wakeup(&self) -> Option<Micros> {
        match &self.state {
            State::Constant(c) => Some(c.next_wakeup()),
            State::Stochastic(s) => s.next_wakeup(),
            State::PadOnly => None,
        }
    }

    /// Drop every held packet (reload or shutdown): nothing leaves unshaped.
    pub fn flush(&mut self, out: &mut Vec<Action>) {
        if let State::Constant(c) = &mut self.state {
            c.flush(&mut self.counters, out);
        }
    }

    /// Packets currently held.
    pub fn held(&self) -> usize {
        match &self.state {
            State::Constant(c) => c.held(),
            _ => 0,
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

fn release_now(c: &mut Counters, id: PacketId, len: u16, pad_to: u16, out: &mut Vec<Action>) {
    c.real_packets += 1;
    c.real_bytes += len as u64;
    c.padding_bytes += (pad_to - len) as u64;
    c.delay.record(0);
    out.push(Action::Release { id, pad_to });
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
