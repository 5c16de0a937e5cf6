//! The engine's counters as JSON for `moat status`.

use super::ShapingEngine;

impl ShapingEngine {
    /// Counters as a JSON object text for `moat status`: one entry per queue (device), with the
    /// schedule it shares; the cover, slot and decoy figures are the schedule's.
    pub fn status_json(&self) -> String {
        let mut s = String::from("{\"queues\":[");
        let queues = self.scheds.iter().flat_map(|s| {
            let f = &s.devs[0].spec;
            let sched = if f.schedule.is_empty() { f.label.as_str() } else { f.schedule.as_str() };
            s.devs.iter().enumerate().map(move |(lane, d)| {
                (d.spec.queue, d.spec.label.as_str(), sched, s.schedule.counters(lane), d.held.len())
            })
        });
        for (n, (q, label, sched, c, held)) in queues.enumerate() {
            if n > 0 {
                s.push(',');
            }
            let p = |x: Option<u64>| x.map_or("null".to_string(), |v| v.to_string());
            s.push_str(&format!(
                "{{\"queue\":{q},\"label\":{},\"schedule\":{},\"held\":{held},\"real_packets\":{},\"real_bytes\":{},\"padding_bytes\":{},\"cover_packets\":{},\"cover_bytes\":{},\"queue_drops\":{},\"oversize_drops\":{},\"flush_drops\":{},\"missed_slots\":{},\"decoy_periods\":{},\"decoys_skipped_budget\":{},\"delay_p50_us\":{},\"delay_p99_us\":{}}}",
                crate::json::string(label),
                crate::json::string(sched),
                c.real_packets,
                c.real_bytes,
                c.padding_bytes,
                c.cover_packets,
                c.cover_bytes,
                c.queue_drops,
                c.oversize_drops,
                c.flush_drops,
                c.missed_slots,
                c.decoy_periods,
                c.decoys_skipped_budget,
                p(c.delay.quantile(0.5)),
                p(c.delay.quantile(0.99)),
            ));
        }
        s.push_str("],\"companions\":[");
        let now = super::monotonic_us();
        for (n, l) in self.links().iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push_str(&l.json(now));
        }
        let st = &self.stats;
        s.push_str(&format!(
            "],\"companion_blocked\":{},\"verdict_errors\":{},\"send_errors\":{},\"recv_errors\":{},\"malformed\":{},\"inject_errors\":{},\"icmp_sent\":{}}}",
            st.companion_blocked, st.verdict_errors, st.send_errors, st.recv_errors, st.malformed, st.inject_errors, st.icmp_sent
        ));
        s
    }
}
