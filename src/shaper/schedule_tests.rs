use super::super::*;

fn constant(rate: u32, limit: u16, lanes: usize) -> (Schedule, SeededRng) {
    let mut rng = SeededRng::new(3);
    let cfg =
        Config { pad_to: 1000, mode: Mode::Constant(ConstantConfig { rate, queue_limit: limit, max_late_slots: 2 }) };
    (Schedule::new(&cfg, lanes, 0, &mut rng), rng)
}

/// Wake exactly at each slot; arrivals `(time, lane)` are fed in between. Returns (time, lane,
/// action) for every action.
fn run(
    s: &mut Schedule,
    rng: &mut SeededRng,
    until: Micros,
    arrivals: &[(Micros, Lane)],
) -> Vec<(Micros, Lane, Action)> {
    let mut log = Vec::new();
    let mut out = Vec::new();
    let mut ai = 0;
    let mut id = 0;
    loop {
        let wake = s.next_wakeup().unwrap();
        while ai < arrivals.len() && arrivals[ai].0 <= wake.min(until) {
            let (t, lane) = arrivals[ai];
            s.on_packet(lane, t, id, 100, &mut out);
            id += 1;
            ai += 1;
            log.extend(out.drain(..).map(|(l, a)| (t, l, a)));
        }
        if wake > until {
            break;
        }
        s.on_tick(wake, rng, &mut out);
        log.extend(out.drain(..).map(|(l, a)| (wake, l, a)));
    }
    log
}

#[test]
fn three_lanes_share_one_clock_exactly_one_packet_per_slot() {
    // 3 devices on one 20 slots/s clock, each sending 5 packets/s: 20 slots/s in total, not 60.
    let (mut s, mut rng) = constant(20, 64, 3);
    let arrivals: Vec<(Micros, Lane)> =
        (0..300u64).map(|i| (i * SECOND / 15 + 7 + (i % 3) * 11, (i % 3) as Lane)).collect();
    let log = run(&mut s, &mut rng, 20 * SECOND, &arrivals);
    let slots: Vec<Micros> = log.iter().filter(|(_, _, a)| !matches!(a, Action::Drop { .. })).map(|x| x.0).collect();
    assert_eq!(slots.len(), 400, "20 s × 20 slots/s");
    for (k, t) in slots.iter().enumerate() {
        assert_eq!(*t, (k as u64 + 1) * 50_000, "slot {k}");
    }
    assert!(log.iter().all(|(_, _, a)| match a {
        Action::Release { pad_to, .. } => *pad_to == 1000,
        Action::Cover { len, .. } => *len == 1000,
        Action::Drop { .. } => false,
    }));
    let real: u64 = (0..3).map(|l| s.lane_counters(l).real_packets).sum();
    assert_eq!(real + s.shared_counters().cover_packets, 400);
    for l in 0..3 {
        assert!(s.lane_counters(l).real_packets >= 99, "lane {l}: {:?}", s.lane_counters(l));
        assert_eq!(s.lane_counters(l).cover_packets, 0, "cover is the schedule's, not a lane's");
        assert_eq!(s.counters(l).cover_packets, s.shared_counters().cover_packets);
    }
}

#[test]
fn a_hog_does_not_starve_a_heartbeat() {
    // Lane 0 uploads in bulk (far more than the clock serves), lane 1 sends one heartbeat per
    // second. Round robin: the heartbeat leaves within 2 slots of its arrival (N = 2 lanes).
    let (mut s, mut rng) = constant(10, 50, 2);
    let mut arrivals: Vec<(Micros, Lane)> = (0..4000u64).map(|i| (i * 5_000 + 1, 0)).collect();
    arrivals.extend((1..20u64).map(|i| (i * SECOND + 3, 1)));
    arrivals.sort();
    let log = run(&mut s, &mut rng, 20 * SECOND, &arrivals);
    let hb = s.lane_counters(1);
    assert_eq!(hb.real_packets, 19, "every heartbeat left");
    assert_eq!(hb.queue_drops, 0);
    let worst = hb.delay.quantile(1.0).unwrap();
    assert!(worst <= 2 * 100_000, "heartbeat waited {worst} µs, more than 2 slots");
    // The hog gets the remaining slots and its overflow is dropped and counted, on its lane.
    let hog = s.lane_counters(0);
    assert_eq!(hog.real_packets + hb.real_packets, 200, "every slot served a real packet");
    assert!(hog.queue_drops > 3000, "{hog:?}");
    assert_eq!(s.shared_counters().cover_packets, 0);
    assert!(log.iter().filter(|(_, l, a)| *l == 1 && matches!(a, Action::Drop { .. })).count() == 0);
}

#[test]
fn queues_are_bounded_per_lane_and_flushed_per_lane() {
    let (mut s, _) = constant(10, 4, 2);
    let mut out = Vec::new();
    for id in 0..7 {
        s.on_packet(0, 1, id, 100, &mut out);
    }
    s.on_packet(1, 1, 100, 100, &mut out);
    assert_eq!((s.held(0), s.held(1)), (4, 1));
    assert_eq!(out, (4..7).map(|id| (0, Action::Drop { id, reason: DropReason::QueueFull })).collect::<Vec<_>>());
    assert_eq!((s.lane_counters(0).queue_drops, s.lane_counters(1).queue_drops), (3, 0));
    out.clear();
    s.on_packet(1, 2, 101, 1001, &mut out);
    assert_eq!(out, vec![(1, Action::Drop { id: 101, reason: DropReason::Oversize })]);
    out.clear();
    s.flush(&mut out);
    assert_eq!(out.len(), 5);
    assert_eq!(out.iter().filter(|(l, _)| *l == 1).count(), 1);
    assert_eq!((s.lane_counters(0).flush_drops, s.lane_counters(1).flush_drops), (4, 1));
}

#[test]
fn round_robin_alternates_between_backlogged_lanes() {
    let (mut s, mut rng) = constant(10, 16, 3);
    let mut out = Vec::new();
    // lane 0: ids 0..6, lane 2: ids 10..12; lane 1 empty
    for id in 0..6 {
        s.on_packet(0, 1, id, 100, &mut out);
    }
    for id in 10..12 {
        s.on_packet(2, 1, id, 100, &mut out);
    }
    s.on_tick(SECOND, &mut rng, &mut out);
    let order: Vec<(Lane, PacketId)> = out
        .iter()
        .filter_map(|(l, a)| if let Action::Release { id, .. } = a { Some((*l, *id)) } else { None })
        .collect();
    // at 1 s ten slots are due, but only those ≤ 2 intervals late are served: 3 slots
    assert_eq!(order, vec![(0, 0), (2, 10), (0, 1)]);
}

#[test]
fn stochastic_schedule_releases_every_lane_at_once_and_counts_periods_once() {
    let mut rng = SeededRng::new(1);
    let cfg = Config { pad_to: 1000, mode: Mode::Stochastic(StochasticConfig::default()) };
    let mut s = Schedule::new(&cfg, 2, 0, &mut rng);
    let mut out = Vec::new();
    s.on_packet(0, SECOND, 1, 100, &mut out);
    s.on_packet(1, SECOND + 1, 1, 200, &mut out);
    assert_eq!(out, vec![(0, Action::Release { id: 1, pad_to: 1000 }), (1, Action::Release { id: 1, pad_to: 1000 })]);
    // enough packets of both lanes for one activity period (fewer would be background)
    for i in 2..super::super::stochastic::ACTIVE_PACKETS {
        s.on_packet(i as usize % 2, SECOND + i as u64, i, 100, &mut out);
    }
    s.on_tick(30 * SECOND, &mut rng, &mut out);
    assert_eq!(s.shared_counters().real_periods, 1, "one activity period of the tunnel, not one per device");
}

#[test]
fn a_small_flow_overtakes_a_bulk_flow_on_the_same_lane() {
    // a companion's one lane per home: a 40-packet answer fills the lane, then a heartbeat of
    // another connection arrives: it gets in (the bulk flow loses its newest packet) and leaves
    // in the next slot but one, not after the whole answer.
    let (mut s, mut rng) = constant(20, 40, 1);
    let mut out = Vec::new();
    for id in 0..41 {
        s.on_flow_packet(0, 1, 0, id, 100, &mut out);
    }
    assert_eq!(out, vec![(0, Action::Drop { id: 40, reason: DropReason::QueueFull })]);
    out.clear();
    s.on_flow_packet(0, 2, 0, 99, 100, &mut out);
    assert_eq!(out, vec![(0, Action::Drop { id: 39, reason: DropReason::QueueFull })]);
    out.clear();
    let mut released = Vec::new();
    while released.len() < 3 {
        let t = s.next_wakeup().unwrap();
        s.on_tick(t, &mut rng, &mut out);
        released.extend(out.drain(..).filter_map(|(_, a)| match a {
            Action::Release { id, .. } => Some(id),
            _ => None,
        }));
    }
    assert_eq!(released, vec![0, 99, 1]);
    assert_eq!(s.lane_counters(0).queue_drops, 2);
    assert_eq!(s.held(0), 37);
}

#[test]
fn a_forced_cover_slot_gets_through_a_saturated_schedule() {
    // A control message rides cover packets: with cover_every 10 one slot in ten is cover even
    // while the lane always holds packets; without it a saturated lane never sends cover.
    for (every, covers) in [(0, 0), (10, 10)] {
        let (mut s, mut rng) = constant(20, 1000, 1);
        s.set_cover_every(every);
        let mut out = Vec::new();
        for id in 0..200 {
            s.on_packet(0, 0, id, 100, &mut out);
        }
        let mut n_cover = 0;
        for _ in 0..100 {
            let t = s.next_wakeup().unwrap();
            s.on_tick(t, &mut rng, &mut out);
            n_cover += out.drain(..).filter(|(_, a)| matches!(a, Action::Cover { .. })).count();
        }
        assert_eq!(n_cover, covers, "cover_every {every}");
    }
}
