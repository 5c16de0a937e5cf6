//! Device discovery: the LAN clients the router knows, for `moat devices` and the web UI.
//!
//! Sources, merged by MAC: dnsmasq's leases, odhcpd's state file (IPv6 and its own DHCPv4
//! leases), and the kernel's neighbour table (devices that talked to the router recently). Each
//! client is matched against the configuration's `device` sections to say whether and how moat
//! protects it. Every path is a [`Sources`] field (tests point them at their own files).

pub mod leases;
pub mod neigh;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::{Mac, Model, Route};
use crate::jobj;
use crate::json::value::Value;

/// Where discovery looks.
#[derive(Debug, Clone)]
pub struct Sources {
    /// dnsmasq lease file (`/tmp/dhcp.leases`; env `MOAT_DHCP_LEASES`).
    pub dnsmasq: PathBuf,
    /// odhcpd state file (`/tmp/hosts/odhcpd`; env `MOAT_ODHCPD_LEASES`).
    pub odhcpd: PathBuf,
    /// Read the kernel neighbour table (env `MOAT_NO_NEIGH=1` turns it off).
    pub neighbours: bool,
    /// Keep only neighbours on these interfaces (the config's `lan_device`s; empty = all, except
    /// `lo`): the router's WAN gateway and VPN peers are neighbours too, not LAN clients.
    pub lan: Vec<String>,
}

/// Largest lease file read (bigger ones are read up to this size).
pub const MAX_LEASE_FILE: u64 = 4 << 20;

impl Sources {
    /// The OpenWrt defaults, overridden by the environment variables named on the fields.
    pub fn from_env() -> Sources {
        let env = |k: &str, d: &str| std::env::var_os(k).map_or_else(|| PathBuf::from(d), PathBuf::from);
        Sources {
            dnsmasq: env("MOAT_DHCP_LEASES", "/tmp/dhcp.leases"),
            odhcpd: env("MOAT_ODHCPD_LEASES", "/tmp/hosts/odhcpd"),
            neighbours: std::env::var("MOAT_NO_NEIGH").map_or(true, |v| v != "1"),
            lan: Vec::new(),
        }
    }

    /// Restrict neighbours to `model`'s LAN devices.
    pub fn lan_of(mut self, model: Option<&Model>) -> Sources {
        if let Some(m) = model {
            self.lan = m.global.lan_devices.iter().map(|d| d.as_str().to_string()).collect();
        }
        self
    }
}

/// One LAN client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its MAC.
    pub mac: Mac,
    /// Addresses seen for it (leases and neighbour entries), sorted.
    pub addrs: Vec<IpAddr>,
    /// Hostname from a lease.
    pub hostname: Option<String>,
    /// Unix time the kernel last confirmed it as a neighbour.
    pub last_seen: Option<u64>,
    /// Latest lease expiry (unix time); `None` with a lease = infinite, or no lease.
    pub lease_expires: Option<u64>,
    /// Interface it was seen on (neighbour table).
    pub ifname: Option<String>,
    /// Where it was found: `dhcp`, `dhcpv6`, `neigh`.
    pub sources: Vec<&'static str>,
}

/// How the configuration treats a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// The device section's address.
    pub section: String,
    /// Its label.
    pub name: String,
    /// `direct`, `block` or the tunnel section's name.
    pub route: String,
    /// Shaper section, if any.
    pub shaper: Option<String>,
    /// `enabled`.
    pub enabled: bool,
}

impl Protection {
    /// True when moat changes this device's traffic (enabled and not direct).
    pub fn protects(&self) -> bool {
        self.enabled && self.route != "direct"
    }
}

/// The device section listing `mac`, if any.
pub fn protection(model: &Model, mac: &Mac) -> Option<Protection> {
    model.devices.iter().find(|d| d.macs.contains(mac)).map(|d| Protection {
        section: d.section.clone(),
        name: d.name.clone(),
        route: match &d.route {
            Route::Direct => "direct".into(),
            Route::Block => "block".into(),
            Route::Tunnel(t) => t.as_str().into(),
        },
        shaper: d.shaper.as_ref().map(|s| s.as_str().to_string()),
        enabled: d.enabled,
    })
}

fn read_limited(p: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut b = Vec::new();
    std::fs::File::open(p).ok()?.take(MAX_LEASE_FILE).read_to_end(&mut b).ok()?;
    Some(String::from_utf8_lossy(&b).into_owned())
}

fn slot(m: &mut BTreeMap<[u8; 6], Client>, mac: Mac) -> &mut Client {
    m.entry(mac.0).or_insert_with(|| Client {
        mac,
        addrs: Vec::new(),
        hostname: None,
        last_seen: None,
        lease_expires: None,
        ifname: None,
        sources: Vec::new(),
    })
}

/// Merge the sources into clients sorted by MAC. `now` is the unix time (for `last_seen`).
/// Unreadable sources are skipped and named in the returned notes.
pub fn collect(src: &Sources, now: u64) -> (Vec<Client>, Vec<String>) {
    let mut notes = Vec::new();
    let mut by_mac: BTreeMap<[u8; 6], Client> = BTreeMap::new();
    let add_lease = |m: &mut BTreeMap<[u8; 6], Client>, l: leases::Lease, tag: &'static str| {
        let Some(mac) = l.mac else { return };
        let c = slot(m, mac);
        if !c.addrs.contains(&l.addr) {
            c.addrs.push(l.addr);
        }
        if c.hostname.is_none() {
            c.hostname = l.hostname;
        }
        c.lease_expires = c.lease_expires.max(l.expires);
        if !c.sources.contains(&tag) {
            c.sources.push(tag);
        }
    };
    match read_limited(&src.dnsmasq) {
        Some(t) => leases::parse_dnsmasq(&t).into_iter().for_each(|l| add_lease(&mut by_mac, l, "dhcp")),
        None => notes.push(format!("{}: not readable", src.dnsmasq.display())),
    }
    match read_limited(&src.odhcpd) {
        Some(t) => leases::parse_odhcpd(&t).into_iter().for_each(|l| add_lease(&mut by_mac, l, "dhcpv6")),
        None => notes.push(format!("{}: not readable", src.odhcpd.display())),
    }
    if src.neighbours {
        match neigh::dump() {
            Ok(ns) => {
                for (n, ifname) in ns {
                    if !src.lan.is_empty() && !src.lan.contains(&ifname) {
                        continue;
                    }
                    let c = slot(&mut by_mac, n.mac);
                    if !c.addrs.contains(&n.addr) {
                        c.addrs.push(n.addr);
                    }
                    if let Some(age) = n.age_secs {
                        c.last_seen = c.last_seen.max(Some(now.saturating_sub(age)));
                    }
                    c.ifname.get_or_insert(ifname);
                    if !c.sources.contains(&"neigh") {
                        c.sources.push("neigh");
                    }
                }
            }
            Err(e) => notes.push(format!("neighbour table: {e}")),
        }
    }
    let mut out: Vec<Client> = by_mac.into_values().collect();
    for c in &mut out {
        c.addrs.sort();
    }
    (out, notes)
}

/// One client as a JSON object (with its protection, if the model is known).
pub fn client_json(c: &Client, model: Option<&Model>) -> Value {
    let p = model.and_then(|m| protection(m, &c.mac));
    jobj! {
        "mac" => c.mac.to_string(),
        "hostname" => c.hostname.as_deref(),
        "addresses" => c.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "last_seen" => c.last_seen,
        "lease_expires" => c.lease_expires,
        "interface" => c.ifname.as_deref(),
        "sources" => c.sources.clone(),
        "protected" => p.as_ref().is_some_and(Protection::protects),
        "protection" => p.map(|p| jobj! {
            "section" => p.section, "name" => p.name, "route" => p.route, "shaper" => p.shaper, "enabled" => p.enabled,
        }),
    }
}

/// `moat devices`: a readable table.
pub fn table(clients: &[Client], model: Option<&Model>, now: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<17}  {:<20}  {:<28}  {:<9}  PROTECTION", "MAC", "HOSTNAME", "ADDRESSES", "SEEN");
    for c in clients {
        let addrs: Vec<String> = c.addrs.iter().map(|a| a.to_string()).collect();
        let seen = c.last_seen.map_or_else(|| "-".into(), |t| format!("{}s ago", now.saturating_sub(t)));
        let prot = match model.and_then(|m| protection(m, &c.mac)) {
            None => "none".to_string(),
            Some(p) => {
                let mut t = format!("{} -> {}", crate::config::printable(&p.name), p.route);
                if let Some(sh) = &p.shaper {
                    let _ = write!(t, ", shaper {sh}");
                }
                if !p.enabled {
                    t.push_str(" (disabled)");
                }
                t
            }
        };
        let host = c.hostname.as_deref().unwrap_or("-");
        let _ = writeln!(s, "{:<17}  {:<20}  {:<28}  {:<9}  {prot}", c.mac.to_string(), host, addrs.join(","), seen);
    }
    s
}

/// `moat devices --json`: `{"devices":[...],"notes":[...]}`.
pub fn render_json(clients: &[Client], notes: &[String], model: Option<&Model>) -> String {
    let v: Vec<Value> = clients.iter().map(|c| client_json(c, model)).collect();
    jobj! { "devices" => v, "notes" => notes.to_vec() }.to_string()
}

/// `moat devices [--config FILE] [--leases FILE] [--odhcpd FILE] [--no-neigh] [--json]`; returns
/// the exit code (0, or 2 for a usage error).
pub fn cli(args: &[String]) -> u8 {
    let usage = |m: &str| {
        eprintln!("moat devices: {m}\nusage: moat devices [--config FILE] [--leases FILE] [--odhcpd FILE] [--no-neigh] [--json]");
        2
    };
    let mut src = Sources::from_env();
    let mut config = std::env::var("MOAT_CONFIG").unwrap_or_else(|_| "/etc/config/moat".into());
    let mut as_json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => as_json = true,
            "--no-neigh" => src.neighbours = false,
            "--config" | "-c" | "--leases" | "--odhcpd" => match it.next() {
                Some(f) if a == "--leases" => src.dnsmasq = f.into(),
                Some(f) if a == "--odhcpd" => src.odhcpd = f.into(),
                Some(f) => config = f.clone(),
                None => return usage(&format!("{a} needs a file")),
            },
            other => return usage(&format!("unknown argument '{other}'")),
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let model = crate::config::load_file(&config).ok().map(|l| l.model);
    let (clients, notes) = collect(&src.lan_of(model.as_ref()), now);
    if as_json {
        println!("{}", render_json(&clients, &notes, model.as_ref()));
    } else {
        print!("{}", table(&clients, model.as_ref(), now));
        for n in &notes {
            eprintln!("note: {n}");
        }
        if model.is_none() {
            eprintln!("note: {config} does not load; protection unknown (moat check says why)");
        }
    }
    0
}

#[cfg(test)]
mod tests;
