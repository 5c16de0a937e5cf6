//! The companion's configuration: a UCI file (default `/etc/moat/companion`), read with the
//! router's libuci-exact reader ([`crate::config::uci`]) and a strict grammar of its own.
//!
//! ```text
//! config companion 'main'
//!     option device 'wg0'          # required: the server's WireGuard interface
//!     list allow_peer '10.0.0.2'   # optional: addresses/prefixes that may ask (default any peer)
//!     option max_rate '100'        # optional: highest constant rate / stochastic cap a peer may ask
//!     option max_peers '64'        # optional: most peers shaped at once
//!     option log_level 'info'
//! ```
//! Exactly one `companion` section; any other section type, unknown option, repeated value or
//! bad value is an error naming `file:line: section option`.

use crate::config::uci::{self, OptionValue, Section};
use crate::config::{parse_ip, parse_log_level, parse_uint, Diagnostic, IfName, Kind, LogLevel};
use std::net::IpAddr;

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/moat/companion";
/// Default `max_rate` (packets per second a peer may ask for).
pub const DEFAULT_MAX_RATE: u32 = 100;
/// Default `max_peers`.
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Highest `max_peers` (queue numbers are `QUEUE_BASE + index`).
pub const MAX_PEERS_LIMIT: usize = 1024;

/// An address prefix (`10.0.0.0/24`, `fd00::2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Prefix {
    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = if self.len == 0 { 0 } else { u32::MAX << (32 - self.len) };
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = if self.len == 0 { 0 } else { u128::MAX << (128 - self.len) };
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }

    fn parse(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr = parse_ip(a)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => parse_uint(l, max as u64).map_err(|e| format!("prefix length: {e}"))? as u8,
        };
        Ok(Prefix { addr, len })
    }
}

/// A validated companion configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanionConfig {
    /// The WireGuard interface.
    pub device: IfName,
    /// Who may ask; empty = any peer of the interface.
    pub allow_peer: Vec<Prefix>,
    /// Highest rate a peer may ask.
    pub max_rate: u32,
    /// Most peers shaped at once.
    pub max_peers: usize,
    /// Log level.
    pub log_level: LogLevel,
}

const OPTIONS: &[&str] = &["device", "allow_peer", "max_rate", "max_peers", "log_level"];

fn err(file: &str, line: usize, sec: Option<&str>, opt: Option<&str>, msg: impl Into<String>) -> Diagnostic {
    Diagnostic {
        kind: Kind::Value,
        file: file.into(),
        line,
        section: sec.map(str::to_string),
        option: opt.map(str::to_string),
        message: msg.into(),
    }
}

/// Read the configuration from a file.
pub fn load(path: &str) -> Result<CompanionConfig, Vec<Diagnostic>> {
    match std::fs::read(path) {
        Ok(b) => from_bytes(path, &b),
        Err(e) => Err(vec![Diagnostic {
            kind: Kind::File,
            file: path.into(),
            line: 0,
            section: None,
            option: None,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Read the configuration from bytes (`file` names it in diagnostics).
pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<CompanionConfig, Vec<Diagnostic>> {
    let pkg = uci::parse_bytes(file, bytes).map_err(|e| {
        vec![Diagnostic {
            kind: Kind::Syntax,
            file: file.into(),
            line: e.line,
            section: None,
            option: None,
            message: e.message.clone(),
        }]
    })?;
    let mut errors = Vec::new();
    let mut main: Option<(usize, &Section)> = None;
    for (i, s) in pkg.sections.iter().enumerate() {
        if s.stype != "companion" {
            errors.push(err(
                file,
                s.line,
                Some(&pkg.address(i)),
                None,
                format!("unknown section type '{}' (expected companion)", crate::config::printable(&s.stype)),
            ));
        } else if main.is_some() {
            errors.push(err(file, s.line, Some(&pkg.address(i)), None, "a second companion section (one is allowed)"));
        } else {
            main = Some((i, s));
        }
    }
    let Some((idx, s)) = main else {
        errors.push(err(file, 0, None, None, "no 'config companion' section"));
        return Err(errors);
    };
    let addr = pkg.address(idx);
    let sec = Some(addr.as_str());
    for &l in &s.redeclared {
        errors.push(err(file, l, sec, None, "section declared again (write its options once)"));
    }
    for o in &s.options {
        if !OPTIONS.contains(&o.name.as_str()) {
            let m = format!("unknown option (known: {})", OPTIONS.join(", "));
            errors.push(err(file, o.line, sec, Some(&o.name), m));
        } else if o.is_list() != (o.name == "allow_peer") {
            let m = if o.is_list() { "is a single option, not a list" } else { "is a list: write 'list allow_peer'" };
            errors.push(err(file, o.line, sec, Some(&o.name), m));
        }
    }
    let single = |name: &str| -> Option<(String, usize)> {
        match s.get(name).map(|o| &o.value) {
            Some(OptionValue::Single(v)) => Some((v.text.clone(), v.line)),
            _ => None,
        }
    };
    let device = match single("device") {
        None => {
            errors.push(err(
                file,
                s.line,
                sec,
                Some("device"),
                "missing: the server's WireGuard interface, e.g. option device 'wg0'",
            ));
            None
        }
        Some((v, l)) => IfName::new(&v).map_err(|e| errors.push(err(file, l, sec, Some("device"), e))).ok(),
    };
    let num = |name: &str, max: u64, default: u64, errors: &mut Vec<Diagnostic>| match single(name) {
        None => default,
        Some((v, l)) => match parse_uint(&v, max) {
            Ok(0) => {
                errors.push(err(file, l, sec, Some(name), "must be at least 1"));
                default
            }
            Ok(n) => n,
            Err(e) => {
                errors.push(err(file, l, sec, Some(name), e));
                default
            }
        },
    };
    let max_rate = num("max_rate", crate::config::RATE_MAX as u64, DEFAULT_MAX_RATE as u64, &mut errors) as u32;
    let max_peers = num("max_peers", MAX_PEERS_LIMIT as u64, DEFAULT_MAX_PEERS as u64, &mut errors) as usize;
    let log_level = match single("log_level") {
        None => LogLevel::Info,
        Some((v, l)) => parse_log_level(&v).unwrap_or_else(|e| {
            errors.push(err(file, l, sec, Some("log_level"), e));
            LogLevel::Info
        }),
    };
    let mut allow_peer = Vec::new();
    if let Some(o) = s.get("allow_peer") {
        for v in o.values() {
            match Prefix::parse(&v.text) {
                Ok(p) => allow_peer.push(p),
                Err(e) => errors.push(err(file, v.line, sec, Some("allow_peer"), e)),
            }
        }
    }
    match (device, errors.is_empty()) {
        (Some(device), true) => Ok(CompanionConfig { device, allow_peer, max_rate, max_peers, log_level }),
        _ => Err(errors),
    }
}
