//! `moat status --table` / `--json`: the plugin's `status` answer on the command line.

use std::fmt::Write as _;

use super::Context;
use crate::json::value::Value;

/// A value for a terminal: control characters (from hostile names) become `?`.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s),
        other => other.to_string(),
    }
}

fn bytes(n: Option<u64>) -> String {
    match n {
        None => "-".into(),
        Some(n) if n >= 10_000_000 => format!("{} MB", n / 1_000_000),
        Some(n) if n >= 10_000 => format!("{} KB", n / 1000),
        Some(n) => format!("{n} B"),
    }
}

/// Microseconds as milliseconds with one decimal, rounded half up. Integer arithmetic: float
/// formatting is the only user of core's float-to-decimal code (~15 KB on mipsel).
fn ms(us: u64) -> String {
    let tenths = us.saturating_add(50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The status object as a readable table.
pub fn render(st: &Value) -> String {
    let mut s = String::new();
    if st["state"].as_str() == Some("not running") {
        return "moat is not running (no status file)\n".into();
    }
    if st["state"].as_str() == Some("invalid") {
        // It exited at start on an invalid configuration; the guard keeps protected devices blocked.
        let _ = writeln!(s, "moat is not running: {}", text(&st["last_error"]));
        s.push_str("(protected devices stay blocked until the configuration is fixed and moat restarted)\n");
        return s;
    }
    let _ =
        writeln!(s, "moat: {} (pid {}), last error: {}", text(&st["state"]), text(&st["pid"]), text(&st["last_error"]));
    if st["running"] == Value::Bool(false) && st["state"].as_str() != Some("stopped") {
        s.push_str(
            "moat is not running: this status is stale; the kernel rules it left keep protected devices blocked\n",
        );
    }
    let rows: Vec<[String; 8]> = st["devices"]
        .items()
        .iter()
        .map(|d| {
            let c = &d["counters"];
            let macs: Vec<String> = d["macs"].items().iter().map(text).collect();
            let shaping = match (d["shaper"].as_str(), d["shaping_mode"].as_str()) {
                (Some(sh), Some(m)) => format!("{sh} ({m})"),
                (Some(sh), None) => sh.to_string(),
                _ => "-".into(),
            };
            let delay = match (c["delay_p50_us"].as_u64(), c["delay_p99_us"].as_u64()) {
                (Some(a), Some(b)) => format!("{}/{} ms", ms(a), ms(b)),
                _ => "-".into(),
            };
            [
                text(&d["name"]),
                macs.join(","),
                text(&d["route"]),
                text(&d["state"]),
                shaping,
                format!("{} / {}", bytes(c["real_bytes_up"].as_u64()), bytes(c["wire_bytes_up"].as_u64())),
                c["queue_drops"].as_u64().map_or("-".into(), |n| n.to_string()),
                delay,
            ]
        })
        .collect();
    let head = ["DEVICE", "MACS", "ROUTE", "STATE", "SHAPING", "REAL / WIRE UP", "DROPS", "DELAY p50/p99"];
    table(&mut s, &head, &rows);
    for d in st["devices"].items() {
        if let Some(r) = d["blocked_reason"].as_str() {
            let _ = writeln!(s, "  {}: {}", text(&d["name"]), clean(r));
        }
    }
    let rows: Vec<[String; 6]> = st["tunnels"]
        .items()
        .iter()
        .map(|t| {
            [
                text(&t["name"]),
                text(&t["type"]),
                text(&t["device"]),
                text(&t["up"]),
                t["handshake_age"].as_u64().map_or("-".into(), |a| format!("{a} s ago")),
                t["downstream"].as_str().map_or("upstream only".into(), clean),
            ]
        })
        .collect();
    s.push('\n');
    table(&mut s, &["TUNNEL", "TYPE", "DEVICE", "UP", "HANDSHAKE", "DOWNSTREAM"], &rows);
    s
}

fn table<const N: usize>(s: &mut String, head: &[&str; N], rows: &[[String; N]]) {
    let mut w: [usize; N] = head.map(|h| h.chars().count());
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |s: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            let _ = write!(l, "{c:<0$}  ", w[i]);
        }
        let _ = writeln!(s, "{}", l.trim_end());
    };
    line(s, &mut head.iter().copied());
    for r in rows {
        line(s, &mut r.iter().map(String::as_str));
    }
}

/// `moat status [--table|--json] [--state-dir DIR]` (the table is the default): `None` for `--raw`
/// (the status file as the daemon wrote it is then printed); else the exit code (0 running, 3 not
/// running, 2 usage error).
pub fn status_cli(args: &[String]) -> Option<u8> {
    let json = args.iter().any(|a| a == "--json");
    if args.iter().any(|a| a == "--raw") {
        return None;
    }
    let mut ctx = Context::from_env();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" | "--table" => {}
            "--state-dir" => match it.next() {
                Some(d) => ctx.state_dir = d.into(),
                None => {
                    eprintln!("moat status: --state-dir needs a directory");
                    return Some(2);
                }
            },
            other => {
                eprintln!("moat status: unknown argument '{other}'");
                return Some(2);
            }
        }
    }
    let st = super::methods::status(&ctx);
    if json {
        println!("{st}");
    } else {
        print!("{}", render(&st));
    }
    Some(if st["running"] == Value::Bool(true) { 0 } else { 3 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_print_as_ms_with_one_decimal() {
        assert_eq!(
            [ms(0), ms(49), ms(50), ms(1500), ms(9049), ms(123_456)],
            ["0.0", "0.0", "0.1", "1.5", "9.0", "123.5"]
        );
    }

    #[test]
    fn a_status_renders_as_aligned_rows() {
        let st = crate::json::value::parse(
            br#"{"state":"running","pid":7,"last_error":null,"devices":[{"name":"cam","macs":["02:00:00:00:00:01"],
            "route":"vpn","state":"blocked (tunnel down)","shaper":"s","shaping_mode":"constant","blocked_reason":"tunnel 'vpn' is down",
            "counters":{"real_bytes_up":12000,"wire_bytes_up":20000000,"queue_drops":3,"delay_p50_us":1500,"delay_p99_us":9000}}],
            "tunnels":[{"name":"vpn","type":"wireguard","device":"wg0","up":false,"handshake_age":null}]}"#,
        )
        .unwrap();
        let t = render(&st);
        assert!(t.starts_with("moat: running (pid 7), last error: -\n"), "{t}");
        assert!(t.contains("cam     02:00:00:00:00:01  vpn    blocked (tunnel down)  s (constant)  12 KB / 20 MB   3      1.5/9.0 ms"), "{t}");
        assert!(t.contains("  cam: tunnel 'vpn' is down"), "{t}");
        assert!(t.contains("vpn     wireguard  wg0     false  -          upstream only"), "{t}");
    }
}
