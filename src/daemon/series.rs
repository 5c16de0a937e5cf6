//! Per-second byte series for the web interface's graph (`<state-dir>/series.json`).
//!
//! Once a second the daemon samples the shaping engine's per-queue counters (real bytes, and
//! real + padding + cover = what leaves the router for the device on the wire) and each tunnel
//! netdev's kernel counters (tx/rx bytes), and keeps the last [`SAMPLES`] per-second deltas in a
//! [`Ring`]. The file also carries the engine's latest counters, so readers (the rpcd plugin) see
//! live numbers although `status.json` is only rewritten on apply.
//!
//! Devices without a queue (unshaped) have no per-device byte counter and no series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::json;
use crate::plan::{ClassKind, Plan};

/// Samples kept: five minutes at one per second.
pub const SAMPLES: usize = 300;
/// Sampling interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A fixed-capacity ring of `u64`, oldest dropped first. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    buf: Vec<u64>,
    head: usize,
    cap: usize,
}

impl Ring {
    /// An empty ring holding at most `cap` values (`cap` ≥ 1).
    pub fn new(cap: usize) -> Ring {
        Ring { buf: Vec::with_capacity(cap.max(1)), head: 0, cap: cap.max(1) }
    }
    /// Append `v`, dropping the oldest value when full.
    pub fn push(&mut self, v: u64) {
        if self.buf.len() < self.cap {
            self.buf.push(v);
        } else {
            self.buf[self.head] = v;
            self.head = (self.head + 1) % self.cap;
        }
    }
    /// Number of values held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// No value yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.buf[self.head..].iter().chain(self.buf[..self.head].iter()).copied()
    }
}

/// Two counters sampled together and the rings of their per-interval deltas.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Deltas of the first counter (real bytes, or tunnel tx).
    pub a: Ring,
    /// Deltas of the second counter (wire bytes, or tunnel rx).
    pub b: Ring,
    last: Option<(u64, u64)>,
    seen: bool,
}

impl Pair {
    fn new() -> Pair {
        Pair { a: Ring::new(SAMPLES), b: Ring::new(SAMPLES), last: None, seen: false }
    }
    /// Feed the counters' current totals. The first call only sets the baseline; a counter that
    /// went backwards (queue re-created, interface re-made) counts from zero.
    pub fn feed(&mut self, a: u64, b: u64) {
        if let Some((la, lb)) = self.last {
            self.a.push(if a >= la { a - la } else { a });
            self.b.push(if b >= lb { b - lb } else { b });
        }
        self.last = Some((a, b));
        self.seen = true;
    }
}

/// The daemon's sampler: call [`Sampler::tick`] when [`Sampler::deadline`] has passed.
#[derive(Debug)]
pub struct Sampler {
    next: Instant,
    devices: BTreeMap<String, Pair>,
    tunnels: BTreeMap<String, Pair>,
}

/// Per-queue totals from the engine's status JSON: label → (real bytes, wire bytes).
pub fn engine_totals(engine_json: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let Ok(v) = crate::json::value::parse(engine_json.as_bytes()) else {
        return out;
    };
    for q in v["queues"].items() {
        let n = |k: &str| q.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        if let Some(label) = q.get("label").and_then(|l| l.as_str()) {
            let real = n("real_bytes");
            let wire = real.saturating_add(n("padding_bytes")).saturating_add(n("cover_bytes"));
            out.insert(label.to_string(), (real, wire));
        }
    }
    out
}

fn sysfs_counter(dev: &str, name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/statistics/{name}")).ok()?.trim().parse().ok()
}

fn ring_json(r: &Ring) -> String {
    let v: Vec<String> = r.iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(","))
}

impl Sampler {
    /// A sampler whose first tick is due at `now`.
    pub fn new(now: Instant) -> Sampler {
        Sampler { next: now, devices: BTreeMap::new(), tunnels: BTreeMap::new() }
    }

    /// When the next sample is due.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Feed one sample: engine queue totals by label and tunnel totals by tunnel name. Series
    /// whose source disappeared are dropped. Pure (no clock, no file).
    pub fn feed(&mut self, queues: &BTreeMap<String, (u64, u64)>, tunnels: &BTreeMap<String, (u64, u64)>) {
        for (map, src) in [(&mut self.devices, queues), (&mut self.tunnels, tunnels)] {
            map.retain(|k, _| src.contains_key(k));
            for (k, &(a, b)) in src {
                map.entry(k.clone()).or_insert_with(Pair::new).feed(a, b);
            }
        }
    }

    /// Sample now and rewrite `<dir>/series.json`. `engine_json` is the engine's status object.
    pub fn tick(&mut self, now: Instant, engine_json: Option<String>, plan: Option<&Plan>, dir: &Path) {
        // Keep a steady 1 Hz grid; after a long stall start again from now.
        self.next += INTERVAL;
        if self.next <= now {
            self.next = now + INTERVAL;
        }
        let queues = engine_json.as_deref().map(engine_totals).unwrap_or_default();
        let mut tunnels = BTreeMap::new();
        for c in plan.map(|p| p.classes.as_slice()).unwrap_or_default() {
            if let ClassKind::L3 { device, .. } = &c.kind {
                if let (Some(tx), Some(rx)) =
                    (sysfs_counter(device.as_str(), "tx_bytes"), sysfs_counter(device.as_str(), "rx_bytes"))
                {
                    tunnels.insert(c.label.clone(), (tx, rx));
                }
            }
        }
        self.feed(&queues, &tunnels);
        let text = self.render(super::now_unix(), engine_json.as_deref());
        let tmp = dir.join("series.json.tmp");
        if std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&tmp, text)).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join("series.json"));
        }
    }

    /// The file's JSON text: `{"interval":1,"time":T,"devices":{label:{"real":[..],"wire":[..]}},
    /// "tunnels":{label:{"tx":[..],"rx":[..]}},"engine":{..}|null}` (series oldest first, bytes per
    /// interval; the last value is the second that ended at `time`).
    pub fn render(&self, time: u64, engine_json: Option<&str>) -> String {
        let mut s = String::new();
        let _ = write!(s, "{{\"interval\":{},\"time\":{time},\"devices\":{{", INTERVAL.as_secs());
        for (i, (k, p)) in self.devices.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(s, "{sep}{}:{{\"real\":{},\"wire\":{}}}", json::string(k), ring_json(&p.a), ring_json(&p.b));
        }
        s.push_str("},\"tunnels\":{");
        for (i, (k, p)) in self.tunnels.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(s, "{sep}{}:{{\"tx\":{},\"rx\":{}}}", json::string(k), ring_json(&p.a), ring_json(&p.b));
        }
        // The engine's object is our own JSON; embed it only if it parses.
        let engine = engine_json.filter(|e| crate::json::value::parse(e.as_bytes()).is_ok()).unwrap_or("null");
        let _ = write!(s, "}},\"engine\":{engine}}}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_in_order() {
        let mut r = Ring::new(3);
        assert!(r.is_empty());
        for v in 1..=5 {
            r.push(v);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![3, 4, 5]);
        let mut one = Ring::new(0);
        one.push(7);
        one.push(8);
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![8]);
    }

    #[test]
    fn pair_records_deltas_and_survives_a_reset() {
        let mut p = Pair::new();
        p.feed(100, 150);
        p.feed(300, 450);
        p.feed(50, 60); // counters restarted
        assert_eq!(p.a.iter().collect::<Vec<_>>(), vec![200, 50]);
        assert_eq!(p.b.iter().collect::<Vec<_>>(), vec![300, 60]);
    }

    #[test]
    fn engine_totals_add_padding_and_cover_to_the_wire() {
        let j = r#"{"queues":[{"queue":1,"label":"cam","real_bytes":10,"padding_bytes":5,"cover_bytes":100}],"x":1}"#;
        assert_eq!(engine_totals(j).get("cam"), Some(&(10, 115)));
        assert!(engine_totals("not json").is_empty());
    }

    #[test]
    fn render_is_json_and_drops_gone_sources() {
        let mut s = Sampler::new(Instant::now());
        let mut q = BTreeMap::new();
        q.insert("cam \"1\"".to_string(), (0, 0));
        let t = BTreeMap::from([("vpn".to_string(), (1000u64, 10u64))]);
        s.feed(&q, &t);
        q.insert("cam \"1\"".to_string(), (40, 90));
        s.feed(&q, &t);
        let v: serde_json::Value = serde_json::from_str(&s.render(5, Some("{\"queues\":[]}"))).unwrap();
        assert_eq!(v["devices"]["cam \"1\""]["wire"], serde_json::json!([90]));
        assert_eq!(v["tunnels"]["vpn"]["tx"], serde_json::json!([0]));
        assert_eq!(v["engine"]["queues"], serde_json::json!([]));
        s.feed(&BTreeMap::new(), &t);
        let v: serde_json::Value = serde_json::from_str(&s.render(6, Some("{broken"))).unwrap();
        assert!(v["devices"].as_object().unwrap().is_empty());
        assert!(v["engine"].is_null());
    }
}
