//! The daemon's status file (`<state-dir>/status.json`) and `moat status`.
//!
//! The file is rewritten atomically (temp file + rename) after every apply and on stop. It is
//! small hand-written JSON (no serde: one flat schema, strings escaped by [`crate::json`]). The
//! daemon keeps its state in memory and only writes the file; `moat status`, another process,
//! reads back just the [`Header`] (pid and state), whose lines [`render`] writes at fixed places.

use std::fmt::Write as _;
use std::path::Path;

use crate::json;
use crate::plan::facts::Facts;
use crate::plan::{ClassKind, Plan};

use super::health::{Health, Note};

/// What the daemon is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The plan is applied.
    Running,
    /// The last apply failed (see `last_error`); the previous kernel state may be partly in force.
    Degraded,
    /// `enabled '0'`: nothing applied.
    Disabled,
    /// Stopped cleanly, everything removed.
    Stopped,
    /// Exited at start on an invalid configuration (`last_error` says where); the last valid
    /// protection (guard and kernel state) stays in force.
    Invalid,
}

impl State {
    const ALL: [State; 5] = [State::Running, State::Degraded, State::Disabled, State::Stopped, State::Invalid];

    /// The name in the status file.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Degraded => "degraded",
            State::Disabled => "disabled",
            State::Stopped => "stopped",
            State::Invalid => "invalid",
        }
    }

    /// The state named `s` ([`State::as_str`]).
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What `moat status` needs from the file: the daemon's pid and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Process id of the daemon that wrote the file.
    pub pid: u32,
    /// Its state when it wrote it.
    pub state: State,
}

impl Header {
    /// Read the header from a file [`render`] wrote: line 2 is `  "pid": N,`, line 4 is
    /// `  "state": "name",`. Anything else (a foreign or truncated file) is `None`.
    pub fn parse(json: &str) -> Option<Header> {
        let mut lines = json.lines();
        let (open, pid, _config, state) = (lines.next()?, lines.next()?, lines.next()?, lines.next()?);
        if open != "{" {
            return None;
        }
        let pid = pid.strip_prefix("  \"pid\": ")?.strip_suffix(',')?.parse().ok()?;
        let state = state.strip_prefix("  \"state\": \"")?.strip_suffix("\",")?;
        Some(Header { pid, state: State::parse(state)? })
    }
}

/// Render the status JSON; `engine` (a JSON object text) becomes the last field. `health` says what the
/// daemon found beyond link state (tor's listeners, WireGuard handshakes, [`super::health`]): a route is
/// not called up on faith.
#[allow(clippy::too_many_arguments)] // one flat schema: every argument is one field
pub fn render(
    pid: u32,
    config: &str,
    state: State,
    plan: Option<&Plan>,
    facts: &Facts,
    last_error: Option<&str>,
    applied_at: u64,
    health: &Health,
    engine: Option<&str>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(s, "  \"pid\": {pid},");
    let _ = writeln!(s, "  \"config\": {},", json::string(config));
    let _ = writeln!(s, "  \"state\": \"{}\",", state.as_str());
    let _ = writeln!(s, "  \"applied_at\": {applied_at},");
    let _ = writeln!(s, "  \"last_error\": {},", last_error.map_or("null".into(), json::string));
    let mut tunnels = Vec::new();
    let mut devices = Vec::new();
    if let Some(p) = plan {
        for c in &p.classes {
            let note = health.note(&c.label);
            let (kind, dev, up) = match &c.kind {
                ClassKind::L3 { device, wireguard, .. } => {
                    let up = facts.iface(device).is_some_and(|i| i.up);
                    (if *wireguard { "wireguard" } else { "interface" }, Some(device.as_str()), up)
                }
                ClassKind::Tor { .. } => ("tor", None, note.is_none()),
                ClassKind::Block => continue,
            };
            tunnels.push(format!(
                "    {{\"name\": {}, \"type\": \"{kind}\", \"device\": {}, \"up\": {up}, \"note\": {}}}",
                json::string(&c.label),
                dev.map_or("null".into(), json::string),
                note.map_or("null".into(), |n| json::string(n.text()))
            ));
        }
        for d in &p.devices {
            let class = if d.mark == 0 { None } else { p.classes.iter().find(|c| c.label == d.route) };
            let st = match (class.map(|c| &c.kind), health.note(&d.route)) {
                (None, _) if !d.enabled => "direct (device disabled)".into(),
                (None, _) => "direct".into(),
                (Some(ClassKind::Block), _) => "blocked (LAN only)".into(),
                (Some(ClassKind::Tor { .. }), Some(Note::Blocked(why))) => format!("blocked: {why}"),
                (Some(ClassKind::Tor { .. }), Some(n)) => format!("unknown: {}", n.text()),
                (Some(ClassKind::Tor { .. }), _) => "protected (tor listening)".into(),
                (Some(ClassKind::L3 { device, .. }), note) => {
                    if facts.iface(device).is_none_or(|i| !i.up) {
                        "blocked (tunnel down)".into()
                    } else if let Some(Note::Degraded(n)) = note {
                        format!("protected (tunnel {n})")
                    } else {
                        "protected (tunnel up)".to_string()
                    }
                }
            };
            let st = if p.enabled { st } else { "direct (moat disabled)".to_string() };
            let macs: Vec<String> = d.macs.iter().map(|m| json::string(&m.to_string())).collect();
            devices.push(format!(
                "    {{\"section\": {}, \"name\": {}, \"macs\": [{}], \"route\": {}, \"mark\": {}, \"shaped\": {}, \"state\": {}}}",
                json::string(&d.section),
                json::string(&d.name),
                macs.join(", "),
                json::string(&d.route),
                d.mark,
                d.shaped_index.is_some(),
                json::string(&st)
            ));
        }
    }
    let _ = writeln!(s, "  \"tunnels\": [\n{}\n  ],", tunnels.join(",\n"));
    let _ = write!(s, "  \"devices\": [\n{}\n  ]", devices.join(",\n"));
    if let Some(e) = engine {
        let _ = write!(s, ",\n  \"engine\": {e}");
    }
    let _ = writeln!(s, "\n}}");
    s
}

/// Write the status file atomically.
pub fn write(dir: &Path, json: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("status.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join("status.json"))
}

/// `moat status`: print the status file; exit code 0 = daemon running, 3 = not running.
pub fn show(dir: &Path) -> u8 {
    let path = dir.join("status.json");
    let Ok(json) = std::fs::read_to_string(&path) else {
        println!("moat is not running (no {})", path.display());
        return 3;
    };
    let header = Header::parse(&json);
    let pid = header.map_or(0, |h| h.pid as i32);
    let stopped = header.is_some_and(|h| h.state == State::Stopped);
    let alive = crate::sys::process_alive(pid);
    print!("{json}");
    if header.is_some_and(|h| h.state == State::Invalid) {
        println!(
            "moat is not running: {} (protected devices stay blocked until it is fixed)",
            last_error(&json).unwrap_or_else(|| "configuration invalid".into())
        );
        return 3;
    }
    if stopped || !alive {
        println!(
            "moat is not running{}",
            if !stopped { " (stale status: the kernel rules it left keep protected devices blocked)" } else { "" }
        );
        3
    } else {
        0
    }
}

/// The `last_error` string of a file [`render`] wrote (line 6), unescaped.
fn last_error(json: &str) -> Option<String> {
    let v = json.lines().nth(5)?.strip_prefix("  \"last_error\": \"")?.strip_suffix("\",")?;
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next()? {
            'u' => {
                let hex: String = it.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            e => out.push(e),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_engine_is_the_last_field() {
        for state in State::ALL {
            let j = render(
                42,
                "/etc/config/moat",
                state,
                None,
                &Facts::default(),
                Some("x \"y\""),
                7,
                &Health::default(),
                None,
            );
            assert_eq!(Header::parse(&j), Some(Header { pid: 42, state }));
            assert!(j.ends_with("  \"devices\": [\n\n  ]\n}\n"), "{j}");
        }
        let j = render(
            1,
            "c\"\n",
            State::Running,
            None,
            &Facts::default(),
            None,
            0,
            &Health::default(),
            Some("{\"queues\":[]}"),
        );
        assert!(j.ends_with("\n  ],\n  \"engine\": {\"queues\":[]}\n}\n"), "{j}");
        assert_eq!(Header::parse(&j).map(|h| h.state), Some(State::Running));
        assert_eq!(Header::parse("{\n  \"pid\": 1,\n"), None);
        let inv = render(
            1,
            "c",
            State::Invalid,
            None,
            &Facts::default(),
            Some("configuration invalid: /etc/config/moat:7: a \"b\"\\\u{1}"),
            0,
            &Health::default(),
            None,
        );
        assert_eq!(last_error(&inv).as_deref(), Some("configuration invalid: /etc/config/moat:7: a \"b\"\\\u{1}"));
        assert_eq!(Header::parse(&j.replace("running", "sleeping")), None);
    }
}
