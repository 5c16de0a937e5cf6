//! Is a tunnel's far side really there? What `moat status` may claim beyond "the link is up".
//!
//! - `tor`: tor must listen on its TransPort (TCP) and DNSPort (UDP) on an address the
//!   `redirect` reaches (not only loopback). Read from `/proc/net/{tcp,tcp6,udp,udp6}`, which
//!   describe the network namespace of the reading process — the daemon's, where the redirect
//!   happens. Parsed strictly: a line that does not have the kernel's format is an error, and
//!   an error is reported as "unknown", never as "up".
//! - `wireguard`: the latest handshake of any peer, from wireguard-go's UAPI socket
//!   (`/var/run/wireguard/<dev>.sock`, `get=1`). Kernel WireGuard (OpenWrt's default) is
//!   asked through generic netlink, which is not done here: its handshake is not reported.
//!
//! The parsers are pure; [`Health::probe_at`] takes the directories, so tests use fixtures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use crate::plan::{ClassKind, Plan};

/// Transport protocol of a socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `/proc/net/tcp`, `tcp6`: listening sockets (state `0A`).
    Tcp,
    /// `/proc/net/udp`, `udp6`: bound, unconnected sockets (state `07`, no remote address).
    Udp,
}

/// A socket accepting traffic on `addr:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Protocol.
    pub proto: Proto,
    /// Local address (`0.0.0.0`/`::` for any).
    pub addr: IpAddr,
    /// Local port.
    pub port: u16,
}

const TCP_LISTEN: u8 = 0x0a;
const UDP_UNCONNECTED: u8 = 0x07;

/// One `ADDR:PORT` field: the address is the kernel's `__be32` words printed as native
/// integers (`%08X` each), the port a plain number.
fn parse_endpoint(field: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (a, p) = field.split_once(':')?;
    let hex_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if p.len() != 4 || !hex_ok(p) || a.len() != if v6 { 32 } else { 8 } || !hex_ok(a) {
        return None;
    }
    let port = u16::from_str_radix(p, 16).ok()?;
    let mut bytes = [0u8; 16];
    for (i, chunk) in a.as_bytes().chunks(8).enumerate() {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    let addr = if v6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    };
    Some((addr, port))
}

/// Parse one of `/proc/net/{tcp,tcp6,udp,udp6}` (`v6` for the `6` ones) and return the sockets
/// that accept traffic. `name` is used in errors. Every line must have the kernel's format.
pub fn parse_proc_net(name: &str, text: &str, proto: Proto, v6: bool) -> Result<Vec<Listener>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| format!("{name}: empty"))?;
    let mut h = header.split_whitespace();
    // tcp6 and udp6 spell the third column `remote_address`.
    let cols = (h.next(), h.next(), h.next(), h.next());
    if !matches!(cols, (Some("sl"), Some("local_address"), Some("rem_address" | "remote_address"), Some("st"))) {
        return Err(format!("{name}: unexpected header '{}'", header.trim()));
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let bad = || format!("{name}:{}: unexpected line '{}'", i + 2, line.trim());
        let mut f = line.split_whitespace();
        let sl = f.next().ok_or_else(bad)?;
        if !sl.strip_suffix(':').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        let (addr, port) = f.next().and_then(|x| parse_endpoint(x, v6)).ok_or_else(bad)?;
        let (raddr, rport) = f.next().and_then(|x| parse_endpoint(x, v6)).ok_or_else(bad)?;
        let st = f.next().filter(|s| s.len() == 2).and_then(|s| u8::from_str_radix(s, 16).ok()).ok_or_else(bad)?;
        // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, inode: present in every line.
        if f.count() < 6 {
            return Err(bad());
        }
        let accepting = match proto {
            Proto::Tcp => st == TCP_LISTEN,
            Proto::Udp => st == UDP_UNCONNECTED && raddr.is_unspecified() && rport == 0,
        };
        if accepting {
            out.push(Listener { proto, addr, port });
        }
    }
    Ok(out)
}

/// Read the four socket tables under `dir` (normally `/proc/net`). `tcp6`/`udp6` may be
/// missing (IPv6 disabled); `tcp`/`udp` may not.
pub fn read_listeners(dir: &Path) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    for (file, proto, v6) in
        [("tcp", Proto::Tcp, false), ("tcp6", Proto::Tcp, true), ("udp", Proto::Udp, false), ("udp6", Proto::Udp, true)]
    {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(parse_proc_net(&path.display().to_string(), &text, proto, v6)?),
            Err(e) if v6 && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(out)
}

/// Why tor cannot take the redirected traffic, or `None` if it listens on both ports on an
/// address the redirect reaches (any address but loopback: `redirect` rewrites the destination
/// to the address of the LAN interface the packet came in on).
pub fn tor_problem(listeners: &[Listener], trans_port: u16, dns_port: u16) -> Option<String> {
    let check = |proto: Proto, port: u16, what: &str| -> Option<String> {
        let on_port: Vec<&Listener> = listeners.iter().filter(|l| l.proto == proto && l.port == port).collect();
        if on_port.is_empty() {
            return Some(format!("tor is not listening on {port} ({what})"));
        }
        if on_port.iter().all(|l| l.addr.is_loopback()) {
            return Some(format!(
                "tor listens on {port} ({what}) only on {}, which redirected LAN traffic does not reach (use the LAN address or 0.0.0.0)",
                on_port[0].addr
            ));
        }
        None
    };
    let problems: Vec<String> = [check(Proto::Tcp, trans_port, "TransPort"), check(Proto::Udp, dns_port, "DNSPort")]
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        None
    } else {
        Some(problems.join("; "))
    }
}

/// The most recent `last_handshake_time_sec` of any peer in a wireguard-go UAPI `get=1`
/// answer (`key=value` lines ending with `errno=0`); `Some(0)` if no peer ever completed one.
pub fn parse_uapi_handshake(text: &str) -> Result<u64, String> {
    let mut latest = 0u64;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            if line.is_empty() {
                continue;
            }
            return Err(format!("UAPI: unexpected line '{line}'"));
        };
        match k {
            "last_handshake_time_sec" => {
                latest = latest.max(v.parse().map_err(|_| format!("UAPI: bad {k} '{v}'"))?);
            }
            "errno" if v != "0" => return Err(format!("UAPI: errno {v}")),
            "errno" => return Ok(latest),
            _ => {}
        }
    }
    Err("UAPI: answer without errno".into())
}

/// The status note for a WireGuard tunnel whose latest handshake was at `latest` (Unix
/// seconds; 0 = never): `None` while it is recent (WireGuard re-handshakes every 2 minutes and
/// drops keys older than 3).
pub fn handshake_note(latest: u64, now: u64) -> Option<String> {
    const STALE_SECS: u64 = 180;
    if latest == 0 {
        return Some("up, no handshake yet".into());
    }
    let age = now.saturating_sub(latest);
    (age >= STALE_SECS).then(|| format!("up, no handshake for {} min", age / 60))
}

/// Ask wireguard-go's UAPI socket `<run_dir>/<dev>.sock` for the latest handshake (Unix
/// seconds, 0 = never). `None` if there is no such socket (kernel WireGuard, or not
/// wireguard-go).
pub fn uapi_handshake(run_dir: &Path, dev: &str) -> Option<Result<u64, String>> {
    use std::io::{Read, Write};
    let path = run_dir.join(format!("{dev}.sock"));
    if !path.exists() {
        return None;
    }
    let ask = || -> Result<u64, String> {
        let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let t = Some(Duration::from_millis(500));
        s.set_read_timeout(t).and_then(|_| s.set_write_timeout(t)).map_err(|e| e.to_string())?;
        s.write_all(b"get=1\n\n").map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = String::new();
        // The answer ends with "errno=N\n\n"; wireguard-go then waits for the next request.
        let mut buf = [0u8; 4096];
        while !text.contains("errno=") || !text.ends_with("\n\n") {
            let n = s.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 || text.len() > 1 << 20 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        parse_uapi_handshake(&text)
    };
    Some(ask())
}

/// What the daemon found out about each tunnel route of the applied plan, beyond link state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// (route label, note): tor's listener problem, or a WireGuard handshake note.
    notes: Vec<(String, Note)>,
}

/// A finding about one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Its devices' traffic cannot pass (they are dropped, never leaked): why.
    Blocked(String),
    /// The link is up but something is off (no recent handshake).
    Degraded(String),
    /// It could not be found out (never reported as up).
    Unknown(String),
}

impl Note {
    /// The text of the finding.
    pub fn text(&self) -> &str {
        match self {
            Note::Blocked(t) | Note::Degraded(t) | Note::Unknown(t) => t,
        }
    }
}

impl Health {
    /// Probe the live system: `/proc/net` (this process's network namespace) and
    /// `/var/run/wireguard`.
    pub fn probe(plan: Option<&Plan>, now_unix: u64) -> Health {
        Health::probe_at(plan, Path::new("/proc/net"), Path::new("/var/run/wireguard"), now_unix)
    }

    /// [`Health::probe`] with the socket tables in `proc_net` and the UAPI sockets in `wg_run`.
    pub fn probe_at(plan: Option<&Plan>, proc_net: &Path, wg_run: &Path, now_unix: u64) -> Health {
        let mut notes = Vec::new();
        let Some(plan) = plan.filter(|p| p.enabled) else { return Health { notes } };
        let mut listeners: Option<Result<Vec<Listener>, String>> = None;
        for c in &plan.classes {
            match &c.kind {
                ClassKind::Tor { trans_port, dns_port } => {
                    let l = listeners.get_or_insert_with(|| read_listeners(proc_net));
                    let note = match l {
                        Ok(l) => tor_problem(l, *trans_port, *dns_port).map(Note::Blocked),
                        Err(e) => Some(Note::Unknown(format!("cannot tell whether tor is listening ({e})"))),
                    };
                    if let Some(n) = note {
                        notes.push((c.label.clone(), n));
                    }
                }
                ClassKind::L3 { device, wireguard: true, .. } => match uapi_handshake(wg_run, device.as_str()) {
                    Some(Ok(latest)) => {
                        if let Some(n) = handshake_note(latest, now_unix) {
                            notes.push((c.label.clone(), Note::Degraded(n)));
                        }
                    }
                    Some(Err(e)) => notes.push((c.label.clone(), Note::Unknown(format!("handshake unknown ({e})")))),
                    None => {}
                },
                _ => {}
            }
        }
        Health { notes }
    }

    /// The finding about route `label`, if any.
    pub fn note(&self, label: &str) -> Option<&Note> {
        self.notes.iter().find(|(l, _)| l == label).map(|(_, n)| n)
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
