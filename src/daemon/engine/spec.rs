//! What the engine serves: queue specs from the plan, the configuration's shaper mode mapped
//! to the pure shaper's [`Config`], and cover packet templates.

use crate::config::ShaperMode;
use crate::shaper::{Config, ConstantConfig, Mode, StochasticConfig, SECOND};
use crate::sys::{interface_addr, Injector};
use crate::wire;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One queue the engine should serve.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// NFQUEUE number.
    pub queue: u16,
    /// Label for logs and status (device name or `pad:<tunnel>`).
    pub label: String,
    /// Shaper configuration (pad size and mode).
    pub config: Config,
    /// Tunnel device cover packets are written to.
    pub tunnel_dev: String,
    /// Where cover packets are addressed; `None` = no cover packets (pad-only queues).
    pub cover_dst: Option<IpAddr>,
    /// Schedule key: queues with the same non-empty key (and the same tunnel device, config and
    /// cover address) share one clock; empty = a schedule of its own. The router uses
    /// `<tunnel>/<shaper>`.
    pub schedule: String,
    /// The tunnel's companion (`option companion`): cover packets go to it and carry the
    /// request; `None` = upstream-only shaping.
    pub companion: Option<super::CompanionSpec>,
}

/// The shaper configuration for a validated `config shaper` section and a resolved pad size
/// (the mapping from the configuration's types to the shaper's own, kept out of the pure core).
pub fn shaper_config(mode: &ShaperMode, pad_to: u16) -> Config {
    let mode = match mode {
        ShaperMode::Constant(c) => Mode::Constant(ConstantConfig::with_rate(c.rate)),
        ShaperMode::Stochastic(p) => Mode::Stochastic(StochasticConfig {
            decoys_per_hour: p.decoys,
            rate_cap: p.rate,
            budget_bytes_per_day: p.budget_mb as u64 * 1_000_000,
            default_rate: p.decoy_rate,
            default_duration_s: p.decoy_duration,
            max_duration_s: StochasticConfig::default().max_duration_s,
            idle_gap: p.idle_gap as u64 * SECOND,
            pace_percent: p.pace,
            pace_window: p.pace_window as u64 * SECOND,
            follow: false,
        }),
    };
    Config { pad_to, mode }
}

/// A mode for the log line of a newly served queue.
pub(super) fn describe(mode: &Mode) -> String {
    match mode {
        Mode::Constant(c) => format!("constant {} slots/s, queue {}", c.rate, c.queue_limit),
        Mode::Stochastic(c) => format!(
            "stochastic {} decoys/h, cap {}/s, budget {} B/day",
            c.decoys_per_hour, c.rate_cap, c.budget_bytes_per_day
        ),
        Mode::PadOnly => "pad only".to_string(),
    }
}

pub(super) fn cover_template(spec: &QueueSpec) -> io::Result<Option<(Vec<u8>, Injector)>> {
    let Some(dst) = spec.cover_dst else { return Ok(None) };
    let pkt = match dst {
        IpAddr::V4(d) => {
            let src = match interface_addr(&spec.tunnel_dev, false) {
                Some(IpAddr::V4(a)) => a,
                _ => {
                    log::warn!(
                        "{}: tunnel {} has no IPv4 address; cover packets use 0.0.0.0",
                        spec.label,
                        spec.tunnel_dev
                    );
                    Ipv4Addr::UNSPECIFIED
                }
            };
            wire::cover_ipv4(src, d, spec.config.pad_to)
        }
        IpAddr::V6(d) => {
            let src = match interface_addr(&spec.tunnel_dev, true) {
                Some(IpAddr::V6(a)) => a,
                _ => Ipv6Addr::UNSPECIFIED,
            };
            wire::cover_ipv6(src, d, spec.config.pad_to)
        }
    };
    Ok(Some((pkt, Injector::open(&spec.tunnel_dev, None)?)))
}

/// Queue specs for a plan: one per shaped device (devices of one tunnel naming one shaper
/// share the schedule `<tunnel>/<shaper>`) and per `pad_all` tunnel whose pad size is known (a queue without a known pad size stays unbound, so its packets are dropped).
pub fn specs_from_plan(plan: &crate::plan::Plan) -> Vec<QueueSpec> {
    let mut v = Vec::new();
    for q in &plan.queues.shaped {
        if let Some(pad_to) = q.pad_to {
            v.push(QueueSpec {
                queue: q.queue,
                label: q.name.clone(),
                config: shaper_config(&q.shaper.mode, pad_to),
                tunnel_dev: q.device.as_str().to_string(),
                cover_dst: q.companion.map(|c| c.addr).or(q.cover_dst),
                schedule: format!("{}/{}", q.tunnel, q.shaper.name),
                companion: q.companion.map(|c| super::CompanionSpec { addr: c.addr, required: c.required }),
            });
        }
    }
    for q in &plan.queues.pad {
        if let Some(pad_to) = q.pad_to {
            v.push(QueueSpec {
                queue: q.queue,
                label: format!("pad:{}", q.tunnel),
                config: Config { pad_to, mode: Mode::PadOnly },
                tunnel_dev: q.device.as_str().to_string(),
                cover_dst: None,
                schedule: String::new(),
                companion: None,
            });
        }
    }
    v
}
