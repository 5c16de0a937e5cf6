//! Stochastic mode on the virtual clock: decoy counts, the budget, copied shapes.

use super::super::*;
use super::{ACK_ANSWERS, ACK_ANSWERS_MAX};

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
pub(super) fn drive(s: &mut DeviceShaper, rng: &mut dyn Rng, until: Micros, real: &[Micros]) -> Vec<(Micros, Action)> {
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
        assert!(log.iter().all(|(_, a)| *a == Action::Cover { len: 1000, answers: 0 }));
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
    let cover_after: usize = log.iter().filter(|(t, a)| *t > 80 * SECOND && matches!(a, Action::Cover { .. })).count();
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
    let real: Vec<Micros> = (1..=20).map(|i| i * SECOND / 10).collect();
    let log = drive(&mut s, &mut rng, 2 * HOUR, &real);
    assert_eq!(log.len(), 20);
    assert_eq!(s.counters().cover_packets, 0);
    assert_eq!(s.counters().real_periods, 1);
}

#[test]
fn heartbeats_are_background_not_activity() {
    // A heartbeat (2 packets) every 8 s: never 5 s of silence for long, but no activity either.
    // They neither count as real periods nor fill the ring with their shape nor hold decoys back:
    // an idle hour at 12 decoys/h still has about 12 decoys of the default shape.
    let mut total = 0;
    for seed in 0..20 {
        let mut rng = SeededRng::new(seed);
        let mut s = DeviceShaper::new(&cfg(12, 1_000_000_000), 0, &mut rng);
        let real: Vec<Micros> = (0..450).flat_map(|i| [i * 8 * SECOND, i * 8 * SECOND + 30_000]).collect();
        let log = drive(&mut s, &mut rng, HOUR, &real);
        let c = s.counters();
        assert_eq!(c.real_periods, 0, "seed {seed}: heartbeats counted as activity");
        total += c.decoy_periods;
        let cover = log.iter().filter(|(_, a)| matches!(a, Action::Cover { .. })).count() as f64;
        let per = cover / c.decoy_periods.max(1) as f64;
        assert!((60.0..=140.0).contains(&per), "seed {seed}: {per} packets per decoy: not the default shape");
    }
    let mean = total as f64 / 20.0;
    assert!((9.0..=15.0).contains(&mean), "{mean} decoys per hour among heartbeats, configured 12");
}

#[test]
fn a_decoy_replays_the_bursts_of_a_real_period() {
    // One real period: 10 bursts of 30 packets (1 ms apart), 500 ms apart. Every later decoy
    // sends its packets in bursts at the same offsets: ≥ 25 cover packets within 30 ms of each
    // burst's start, none in the pauses between bursts.
    let mut rng = SeededRng::new(9);
    let c = Config {
        pad_to: 1000,
        mode: Mode::Stochastic(StochasticConfig {
            decoys_per_hour: 60,
            rate_cap: 1000,
            budget_bytes_per_day: 10_000_000_000,
            ..StochasticConfig::default()
        }),
    };
    let mut s = DeviceShaper::new(&c, 0, &mut rng);
    let t0 = 2 * SECOND;
    let real: Vec<Micros> = (0..10).flat_map(|b| (0..30).map(move |i| t0 + b * 500_000 + i * 1000)).collect();
    let log = drive(&mut s, &mut rng, 2 * HOUR, &real);
    // decoys: runs of cover packets apart by > 1 s, after the real period and the decoy that
    // may have run through it
    let cover: Vec<Micros> =
        log.iter().filter(|(t, a)| *t > 30 * SECOND && matches!(a, Action::Cover { .. })).map(|(t, _)| *t).collect();
    let mut decoys: Vec<Vec<Micros>> = Vec::new();
    for t in cover {
        match decoys.last_mut() {
            Some(d) if t - d[d.len() - 1] <= SECOND => d.push(t),
            _ => decoys.push(vec![t]),
        }
    }
    assert!(decoys.len() >= 50, "{} decoys: {:?}", decoys.len(), s.counters());
    // (the last one may be cut by the end of the run)
    for decoy in &decoys[..decoys.len() - 1] {
        assert_eq!(decoy.len(), 300, "a decoy without the period's 300 packets");
        let start = decoy[0];
        for (b, burst) in decoy.chunks(30).enumerate() {
            let at = start + b as u64 * 500_000;
            assert!(burst.iter().all(|&t| t >= at && t < at + 35_000), "burst {b} of a decoy at {start}: {burst:?}");
        }
    }
}

#[test]
fn follow_mode_answers_the_far_ends_flights_as_tcp_answers_an_upload() {
    let mut rng = SeededRng::new(4);
    let c = Config {
        pad_to: 1000,
        mode: Mode::Stochastic(StochasticConfig {
            decoys_per_hour: 60,
            budget_bytes_per_day: 10_000_000_000,
            follow: true,
            ..StochasticConfig::default()
        }),
    };
    let mut s = Schedule::new(&c, 1, 0, &mut rng);
    let mut out = Vec::new();
    // one real period of 40 packets 100 ms apart, then an hour without a decoy of its own
    for i in 0..40 {
        s.on_packet(0, SECOND + i * 100_000, i as PacketId, 100, &mut out);
    }
    out.clear();
    s.on_tick(HOUR, &mut rng, &mut out);
    assert_eq!(s.next_wakeup(), None, "a follower draws no decoy of its own");
    assert_eq!(s.shared_counters().real_periods, 1);
    // the far end's decoy: 30 cover packets in 3 flights of 10; each flight is answered at the
    // next tick, one answer per two packets (as ACKs answer an upload)
    let mut answered = Vec::new();
    for b in 0..3u64 {
        let t = HOUR + b * SECOND;
        for i in 0..10 {
            s.on_peer_cover(t + i * 100, 0);
        }
        assert_eq!(s.next_wakeup(), Some(t));
        s.on_tick(t + 1000, &mut rng, &mut out);
        answered.push(out.drain(..).filter(|(_, a)| matches!(a, Action::Cover { .. })).count());
    }
    assert_eq!(answered, [5, 5, 5]);
    assert_eq!(s.shared_counters().decoy_periods, 1, "one run of answers, one decoy period");
    // a copied recording: two packets back to back every 200 ms get one answer each time; a
    // flight of three gets two; lone packets 10 ms apart get one each
    let mut n = 0;
    let t0 = HOUR + 10 * SECOND;
    for k in 0..10u64 {
        s.on_peer_cover(t0 + k * 200_000, 0);
        s.on_peer_cover(t0 + k * 200_000 + 300, 0);
        s.on_tick(t0 + k * 200_000 + 1000, &mut rng, &mut out);
        n += out.drain(..).filter(|(_, a)| matches!(a, Action::Cover { .. })).count();
    }
    assert_eq!(n, 10, "one answer per pair");
    let t1 = t0 + 3 * SECOND;
    (0..3).for_each(|i| s.on_peer_cover(t1 + i * 500, 0));
    (0..4).for_each(|i| s.on_peer_cover(t1 + 100_000 + i * 10_000, 0));
    s.on_tick(t1 + 200_000, &mut rng, &mut out);
    assert_eq!(out.drain(..).filter(|(_, a)| matches!(a, Action::Cover { .. })).count(), 2 + 4);
    // a copied download: each copied acknowledgement asks for two answers and gets them (the
    // flight rule is for the packets that ask for none), whatever else it asks is capped
    let t2 = t1 + 3 * SECOND;
    (0..10).for_each(|i| s.on_peer_cover(t2 + i * 300, ACK_ANSWERS));
    s.on_peer_cover(t2 + 3500, 200);
    s.on_tick(t2 + 5000, &mut rng, &mut out);
    let down = out.drain(..).filter(|(_, a)| matches!(a, Action::Cover { .. })).count();
    assert_eq!(down, 10 * ACK_ANSWERS as usize + ACK_ANSWERS_MAX as usize);
    // while the tunnel is active here, the far end's cover is not answered
    for i in 0..20 {
        s.on_packet(0, 2 * HOUR + i * 1000, i as PacketId, 100, &mut out);
    }
    s.on_peer_cover(2 * HOUR + 30_000, 0);
    assert_eq!(s.next_wakeup(), Some(2 * HOUR + 19_000 + 5 * SECOND), "only the period's end is due");
}

#[test]
fn a_copied_download_asks_the_far_end_for_the_data_its_acks_acknowledged() {
    let mut rng = SeededRng::new(6);
    let c = Config {
        pad_to: 1000,
        mode: Mode::Stochastic(StochasticConfig {
            decoys_per_hour: 60,
            budget_bytes_per_day: 10_000_000_000,
            rate_cap: 1000, // not thinned
            ..StochasticConfig::default()
        }),
    };
    let mut s = Schedule::new(&c, 1, 0, &mut rng);
    let mut out = Vec::new();
    // one real period: a 400-byte request, then 60 acknowledgements (52 bytes) of a download,
    // in bins of three 20 ms apart
    s.on_packet(0, SECOND, 0, 400, &mut out);
    for i in 0..60u64 {
        s.on_packet(0, SECOND + 50_000 + (i / 3) * 20_000 + (i % 3) * 100, 1 + i as PacketId, 52, &mut out);
    }
    out.clear();
    // the decoys that follow copy it: of every 61 cover packets, 60 ask for two answers
    let mut asks = [0usize; 2];
    let mut t = 3 * SECOND;
    while t < 2 * HOUR {
        s.on_tick(t, &mut rng, &mut out);
        for (_, a) in out.drain(..) {
            if let Action::Cover { answers, .. } = a {
                asks[(answers == ACK_ANSWERS) as usize] += 1;
                assert!(answers == 0 || answers == ACK_ANSWERS, "{answers}");
            }
        }
        t = s.next_wakeup().unwrap_or(t + SECOND).max(t + 1);
    }
    assert!(asks[1] >= 60 * 20, "decoys ran: {asks:?}");
    assert_eq!(asks[1], asks[0] * 60, "one request bin, twenty bins of acknowledgements: {asks:?}");
}
