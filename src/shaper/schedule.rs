//! One schedule: a single shaping clock serving N device queues ("lanes").
//!
//! The observer of a tunnel sees the tunnel, not the devices behind it, so every shaped device
//! of one tunnel that names the same `config shaper` section shares one [`Schedule`]: one slot
//! clock (constant mode) or one decoy process and cover budget (stochastic mode). N devices cost
//! what one does, and hide as well.
//!
//! Constant mode serves the lanes by deficit round robin with a quantum of one packet: each slot
//! goes to the next lane (after the one served last) that holds a packet, else to a cover
//! packet. A lane that always has packets (a camera upload) gets at most its 1/N share while the
//! others have traffic, and a packet arriving at an otherwise empty lane (a sleep monitor's
//! heartbeat) leaves within N slots. Each lane has its own bounded queue and counters; inside a
//! lane the flows (connections, named by the caller's hash) take turns the same way and a full
//! lane drops from its longest flow (`flows` module), which matters on a companion, where one
//! lane carries a whole home. Events of
//! the clock itself (cover packets, missed slots, decoys, activity periods) are counted once, in
//! the schedule's shared counters.
//!
//! The schedule does not know which side of the tunnel it runs on: the router runs one per
//! tunnel and shaper, a companion one per peer and direction.

use super::constant::Clock;
use super::flows::FlowQueue;
use super::profile::SMALL_LEN;
use super::stochastic::Stochastic;
use super::{Action, Config, Counters, DropReason, Micros, Mode, PacketId, Rng, MIN_PAD_TO};
/// Index of a device queue in its schedule (0-based, in the order given at creation).
pub type Lane = usize;

#[derive(Debug, Clone, Copy)]
struct Held {
    id: PacketId,
    len: u16,
    at: Micros,
}

struct LaneState {
    queue: FlowQueue<Held>,
    counters: Counters,
}

// One State per schedule, built once and never moved: boxing the big variant would only add an
// indirection on the per-packet path.
#[allow(clippy::large_enum_variant)]
enum State {
    Constant(Clock, usize),
    Stochastic(Stochastic),
    PadOnly,
}

/// One clock serving several device queues. Output actions come as `(lane, action)`; a
/// [`Action::Cover`] belongs to no lane and carries lane 0.
pub struct Schedule {
    pad_to: u16,
    state: State,
    lanes: Vec<LaneState>,
    shared: Counters,
    /// The lane after the one served last (round robin position).
    next_lane: usize,
    /// Constant mode: at least one slot in this many is a cover packet (0 = not forced).
    cover_every: u32,
    /// Slots served since the last cover packet.
    since_cover: u32,
}

impl Schedule {
    /// A schedule of `lanes` device queues (≥ 1) starting at virtual time `now`. Panics on an
    /// invalid config (the model validates ranges first): `pad_to` < 40, rate 0, empty queue.
    pub fn new(config: &Config, lanes: usize, now: Micros, rng: &mut dyn Rng) -> Schedule {
        assert!(config.pad_to >= MIN_PAD_TO, "pad_to below {MIN_PAD_TO}");
        assert!(lanes >= 1, "a schedule serves at least one queue");
        let state = match &config.mode {
            Mode::Constant(c) => State::Constant(Clock::new(c, now), c.queue_limit as usize),
            Mode::Stochastic(c) => State::Stochastic(Stochastic::new(c, config.pad_to, now, rng)),
            Mode::PadOnly => State::PadOnly,
        };
        let lanes = (0..lanes).map(|_| LaneState { queue: FlowQueue::new(), counters: Counters::default() });
        Schedule {
            pad_to: config.pad_to,
            state,
            lanes: lanes.collect(),
            shared: Counters::default(),
            next_lane: 0,
            cover_every: 0,
            since_cover: 0,
        }
    }

    /// The pad size.
    pub fn pad_to(&self) -> u16 {
        self.pad_to
    }

    /// Constant mode: make at least one slot in every `slots` a cover packet, also while the
    /// lanes hold packets (0 = never forced, the default). The engine asks for one per second
    /// on a schedule whose cover packets carry a control message (the companion's request and
    /// answer), so a saturated direction still carries them, at the size and in the slots of
    /// everything else; it costs 1/`slots` of the throughput only while saturated.
    pub fn set_cover_every(&mut self, slots: u32) {
        self.cover_every = slots;
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// A real packet of `len` bytes (its IP length) was queued on `lane` at `now`; all of the
    /// lane's packets are one flow (see [`Self::on_flow_packet`]).
    pub fn on_packet(&mut self, lane: Lane, now: Micros, id: PacketId, len: u16, out: &mut Vec<(Lane, Action)>) {
        self.on_flow_packet(lane, 0, now, id, len, out)
    }

    /// A real packet of `len` bytes of flow `flow` (a hash naming its connection) was queued on
    /// `lane` at `now`. In constant mode the flows of a lane take turns for the lane's slots and
    /// a full lane drops from its longest flow (see the `flows` module); other modes release at
    /// once and ignore the flow.
    pub fn on_flow_packet(
        &mut self,
        lane: Lane,
        flow: u32,
        now: Micros,
        id: PacketId,
        len: u16,
        out: &mut Vec<(Lane, Action)>,
    ) {
        let pad_to = self.pad_to;
        let l = &mut self.lanes[lane];
        if len > pad_to {
            l.counters.oversize_drops += 1;
            out.push((lane, Action::Drop { id, reason: DropReason::Oversize }));
            return;
        }
        match &mut self.state {
            State::Constant(_, limit) => {
                if let Some(victim) = l.queue.push(flow, Held { id, len, at: now }, *limit) {
                    l.counters.queue_drops += 1;
                    out.push((lane, Action::Drop { id: victim.id, reason: DropReason::QueueFull }));
                }
            }
            State::Stochastic(s) => {
                s.on_packet(now, len <= SMALL_LEN, &mut self.shared);
                release(&mut l.counters, lane, id, len, pad_to, 0, out);
            }
            State::PadOnly => release(&mut l.counters, lane, id, len, pad_to, 0, out),
        }
    }

    /// The clock reached `now`: emit whatever is due. Call at or soon after [`Self::next_wakeup`].
    pub fn on_tick(&mut self, now: Micros, rng: &mut dyn Rng, out: &mut Vec<(Lane, Action)>) {
        let pad_to = self.pad_to;
        match &mut self.state {
            State::Constant(clock, _) => {
                for _ in 0..clock.due(now, &mut self.shared.missed_slots) {
                    self.serve_slot(now, out);
                }
            }
            State::Stochastic(s) => s.on_tick(now, pad_to, rng, &mut self.shared, out),
            State::PadOnly => {}
        }
    }

    /// A cover packet of the far end's schedule arrived at `now` (a companion hears its router's),
    /// asking for `answers` answers (0: by the schedule's own rule): a stochastic schedule in
    /// follow mode answers it; other modes ignore it.
    pub fn on_peer_cover(&mut self, now: Micros, answers: u8) {
        if let State::Stochastic(s) = &mut self.state {
            s.on_peer_cover(now, answers);
        }
    }

    /// One slot: the next lane with a packet in round-robin order, else a cover packet.
    fn serve_slot(&mut self, now: Micros, out: &mut Vec<(Lane, Action)>) {
        let n = self.lanes.len();
        let forced = self.cover_every > 0 && self.since_cover + 1 >= self.cover_every;
        for k in (0..n).filter(|_| !forced) {
            let lane = (self.next_lane + k) % n;
            let l = &mut self.lanes[lane];
            if let Some(h) = l.queue.pop() {
                self.next_lane = (lane + 1) % n;
                self.since_cover += 1;
                release(&mut l.counters, lane, h.id, h.len, self.pad_to, now.saturating_sub(h.at), out);
                return;
            }
        }
        self.since_cover = 0;
        self.shared.cover_packets += 1;
        self.shared.cover_bytes += self.pad_to as u64;
        out.push((0, Action::Cover { len: self.pad_to, answers: 0 }));
    }

    /// When this schedule next needs [`Self::on_tick`], if ever.
    pub fn next_wakeup(&self) -> Option<Micros> {
        match &self.state {
            State::Constant(c, _) => Some(c.next_wakeup()),
            State::Stochastic(s) => s.next_wakeup(),
            State::PadOnly => None,
        }
    }

    /// Drop every held packet of every lane (reload or shutdown): nothing leaves unshaped.
    pub fn flush(&mut self, out: &mut Vec<(Lane, Action)>) {
        for (lane, l) in self.lanes.iter_mut().enumerate() {
            for h in l.queue.drain() {
                l.counters.flush_drops += 1;
                out.push((lane, Action::Drop { id: h.id, reason: DropReason::Flushed }));
            }
        }
    }

    /// Packets currently held on `lane`.
    pub fn held(&self, lane: Lane) -> usize {
        self.lanes[lane].queue.len()
    }

    /// A lane's own counters (its real packets, drops and delays).
    pub fn lane_counters(&self, lane: Lane) -> &Counters {
        &self.lanes[lane].counters
    }

    /// The schedule's own counters: cover packets, missed slots, decoys and activity periods
    /// (the lanes' real-packet fields stay zero here).
    pub fn shared_counters(&self) -> &Counters {
        &self.shared
    }

    /// A lane's counters with the schedule's shared figures filled in (what status shows per
    /// device: its own real traffic next to the cover of the clock it shares).
    pub fn counters(&self, lane: Lane) -> Counters {
        let mut c = self.lanes[lane].counters.clone();
        let s = &self.shared;
        c.cover_packets = s.cover_packets;
        c.cover_bytes = s.cover_bytes;
        c.missed_slots = s.missed_slots;
        c.decoy_periods = s.decoy_periods;
        c.decoys_skipped_budget = s.decoys_skipped_budget;
        c.real_periods = s.real_periods;
        c
    }
}

fn release(
    c: &mut Counters,
    lane: Lane,
    id: PacketId,
    len: u16,
    pad_to: u16,
    delay: Micros,
    out: &mut Vec<(Lane, Action)>,
) {
    c.real_packets += 1;
    c.real_bytes += len as u64;
    c.padding_bytes += (pad_to - len) as u64;
    c.delay.record(delay);
    out.push((lane, Action::Release { id, pad_to }));
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
