//! The plugin's methods.
//!
//! - `status`: the daemon's state and last error, per device (route, state, why blocked, shaper
//!   and mode, the engine's live counters) and per tunnel (device, up, WireGuard handshake age),
//!   from `<state-dir>/status.json` and the fresher counters in `series.json`.
//! - `devices`: discovery ([`crate::discover`]) with each client's protection, plus the
//!   configured devices no source has seen.
//! - `check {config?}`: the checks of `moat check` on a staged configuration text (or the file).
//! - `series {name?}`: the per-second byte series the daemon keeps ([`crate::daemon::series`]).

use std::path::Path;

use crate::jobj;
use crate::json::value::Value;

use super::input::{opt_str, InputError};
use super::Context;
use crate::config::{Model, ShaperMode};

/// Largest state file read (status.json, series.json).
const MAX_STATE_FILE: u64 = 4 << 20;

fn read_json(p: &Path) -> Option<Value> {
    use std::io::Read;
    let mut b = Vec::new();
    std::fs::File::open(p).ok()?.take(MAX_STATE_FILE).read_to_end(&mut b).ok()?;
    crate::json::value::parse(&b).ok().filter(Value::is_object)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn model(ctx: &Context) -> Option<Model> {
    crate::config::load_file(&ctx.config).ok().map(|l| l.model)
}

fn mode_name(m: &ShaperMode) -> &'static str {
    match m {
        ShaperMode::Constant(_) => "constant",
        ShaperMode::Stochastic(_) => "stochastic",
    }
}

/// Seconds since the newest WireGuard handshake on `dev` (`wg show DEV latest-handshakes`);
/// `None` if `wg` is missing, the device is not WireGuard, or no handshake happened yet.
fn handshake_age(dev: &str, now: u64) -> Option<u64> {
    let out = std::process::Command::new("wg").args(["show", dev, "latest-handshakes"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let newest = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .filter(|&t| t > 0)
        .max()?;
    Some(now.saturating_sub(newest))
}

/// `status`.
pub fn status(ctx: &Context) -> Value {
    let Some(st) = read_json(&ctx.state_dir.join("status.json")) else {
        return jobj! { "running" => false, "state" => "not running", "last_error" => Value::Null,
        "devices" => Value::Array(vec![]), "tunnels" => Value::Array(vec![]) };
    };
    let pid = st["pid"].as_u64().unwrap_or(0);
    let state = st["state"].as_str().unwrap_or("unknown");
    let alive = pid > 0 && Path::new(&format!("/proc/{pid}")).exists();
    let running = alive && state != "stopped";
    // The daemon rewrites series.json every second with the engine's live counters.
    let series = read_json(&ctx.state_dir.join("series.json"));
    let engine = series
        .as_ref()
        .filter(|s| running && s["engine"].is_object())
        .map(|s| s["engine"].clone())
        .unwrap_or_else(|| st["engine"].clone());
    let queues = engine["queues"].items();
    // The configuration the daemon runs (its status file names it), else the context's.
    let model = st["config"]
        .as_str()
        .and_then(|c| crate::config::load_file(Path::new(c)).ok().map(|l| l.model))
        .or_else(|| model(ctx));
    let now = now_unix();
    let mut devices = Vec::new();
    for d in st["devices"].items() {
        let mut o = d.clone();
        let name = d["name"].as_str().unwrap_or("");
        let section = d["section"].as_str().unwrap_or("");
        let shaper = model
            .as_ref()
            .and_then(|m| {
                m.devices.iter().find(|x| x.section == section).and_then(|x| x.shaper.clone()).map(|s| (m, s))
            })
            .map(|(m, s)| (s.as_str().to_string(), m.shaper(&s).map(|x| mode_name(&x.mode))));
        o.set("shaper", shaper.as_ref().map(|s| s.0.as_str()).into());
        o.set("shaping_mode", shaper.as_ref().and_then(|s| s.1).into());
        let st_text = d["state"].as_str().unwrap_or("");
        let blocked = st_text.starts_with("blocked").then(|| match st_text {
            "blocked (LAN only)" => "route 'block': the device may reach the LAN only".to_string(),
            "blocked (tunnel down)" => format!(
                "tunnel '{}' is down: the kill switch drops its traffic until the tunnel is back",
                d["route"].as_str().unwrap_or("?")
            ),
            other => other.to_string(),
        });
        o.set("blocked_reason", blocked.into());
        let counters = queues.iter().find(|q| q["label"].as_str() == Some(name)).map(|q| {
            let n = |k: &str| q[k].as_u64().unwrap_or(0);
            jobj! {
                "real_packets_up" => n("real_packets"), "real_bytes_up" => n("real_bytes"),
                "cover_packets_up" => n("cover_packets"), "cover_bytes_up" => n("cover_bytes"),
                "padding_bytes_up" => n("padding_bytes"),
                "wire_bytes_up" => n("real_bytes").saturating_add(n("padding_bytes")).saturating_add(n("cover_bytes")),
                "queue_drops" => n("queue_drops").saturating_add(n("oversize_drops")).saturating_add(n("flush_drops")),
                "delay_p50_us" => q["delay_p50_us"].clone(), "delay_p99_us" => q["delay_p99_us"].clone(),
                "held" => q["held"].clone(),
            }
        });
        o.set("counters", counters.into());
        devices.push(o);
    }
    let mut tunnels = Vec::new();
    for t in st["tunnels"].items() {
        let mut o = t.clone();
        let hs = match (t["type"].as_str(), t["device"].as_str()) {
            (Some("wireguard"), Some(dev)) if running => handshake_age(dev, now),
            _ => None,
        };
        o.set("handshake_age", hs.into());
        // Two-way shaping: what the router's link to the tunnel's companion says, if it has one.
        let link =
            engine["companions"].items().iter().find(|c| c["device"].as_str().is_some() && c["device"] == t["device"]);
        o.set("downstream", link.and_then(|c| c["downstream"].as_str()).into());
        tunnels.push(o);
    }
    let engine_errors = engine.is_object().then(|| {
        Value::object(engine.members().iter().filter(|(k, _)| k != "queues").map(|(k, v)| (k.as_str(), v.clone())))
    });
    jobj! {
        "running" => running,
        "state" => if running || state == "stopped" || state == "invalid" { state } else { "not running (stale status)" },
        "pid" => pid,
        "config" => st["config"].clone(),
        "applied_at" => st["applied_at"].clone(),
        "last_error" => st["last_error"].clone(),
        "devices" => devices,
        "tunnels" => tunnels,
        "engine_errors" => engine_errors,
    }
}

/// `devices`.
pub fn devices(ctx: &Context) -> Value {
    let now = now_unix();
    let loaded = crate::config::load_file(&ctx.config);
    let bad =
        loaded.as_ref().err().map(|e| format!("{}: {} error(s); protection unknown", ctx.config.display(), e.len()));
    let model = loaded.ok().map(|l| l.model);
    let (clients, mut notes) = crate::discover::collect(&ctx.sources.clone().lan_of(model.as_ref()), now);
    notes.extend(bad);
    let list: Vec<Value> = clients.iter().map(|c| crate::discover::client_json(c, model.as_ref())).collect();
    let configured: Vec<Value> = model
        .iter()
        .flat_map(|m| m.devices.iter())
        .map(|d| {
            let seen = d.macs.iter().any(|m| clients.iter().any(|c| c.mac == *m));
            jobj! {
                "section" => &d.section, "name" => &d.name,
                "macs" => d.macs.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                "route" => match &d.route {
                    crate::config::Route::Direct => "direct",
                    crate::config::Route::Block => "block",
                    crate::config::Route::Tunnel(t) => t.as_str(),
                },
                "shaper" => d.shaper.as_ref().map(|s| s.as_str()), "enabled" => d.enabled, "seen" => seen,
            }
        })
        .collect();
    jobj! { "time" => now, "devices" => list, "configured" => configured, "notes" => notes }
}

fn diag(d: &crate::config::Diagnostic) -> Value {
    jobj! { "line" => d.line, "section" => d.section.as_deref(), "option" => d.option.as_deref(),
    "message" => &d.message, "text" => d.to_string() }
}

/// `check {config?}`: `ok` is what `moat check` would exit 0 for.
pub fn check(ctx: &Context, args: &Value) -> Result<Value, InputError> {
    let staged = opt_str(args, "config", crate::config::MAX_FILE_BYTES as usize)?;
    let file = ctx.config.display().to_string();
    let report = match staged {
        Some(text) => crate::config::check_bytes(&file, text.as_bytes()),
        None => crate::config::check_file(&ctx.config),
    };
    let mut warnings: Vec<Value> = report.warnings.iter().map(diag).collect();
    let mut errors: Vec<Value> = report.errors.iter().map(diag).collect();
    let mut plan = None;
    if let Ok(loaded) = report.into_result() {
        let dir = ctx.config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        for w in crate::advice::warnings_for_dir(&loaded.model, dir) {
            warnings.push(jobj! { "line" => 0u32, "section" => Value::Null, "option" => Value::Null, "message" => &w, "text" => &w });
        }
        let facts = crate::daemon::probe::probe(&crate::plan::interface_names(&loaded.model));
        match crate::plan::build(&loaded.model, &facts) {
            Ok(p) => plan = Some(p.render()),
            Err(es) => {
                for e in es {
                    errors.push(jobj! { "line" => e.line, "section" => e.tunnel.to_string(), "option" => e.option(),
                    "message" => e.message(), "text" => e.at(&file) });
                }
            }
        }
    }
    Ok(jobj! { "ok" => errors.is_empty(), "errors" => errors, "warnings" => warnings, "plan" => plan })
}

/// `series {name?}`: all series, or only the device or tunnel labelled `name`.
pub fn series(ctx: &Context, args: &Value) -> Result<Value, InputError> {
    let name = opt_str(args, "name", 256)?;
    let Some(mut s) = read_json(&ctx.state_dir.join("series.json")) else {
        return Ok(
            jobj! { "interval" => 1u32, "time" => Value::Null, "devices" => Value::Object(vec![]), "tunnels" => Value::Object(vec![]) },
        );
    };
    if let Value::Object(m) = &mut s {
        m.retain(|(k, _)| k != "engine");
        for (k, v) in m.iter_mut() {
            if let (Some(n), "devices" | "tunnels", Value::Object(series)) = (name, k.as_str(), v) {
                series.retain(|(key, _)| key == n);
            }
        }
    }
    Ok(s)
}
