//! Typed, validated model of `/etc/config/moat` (schema v1).
//!
//! Built from a parsed [`crate::uci::Package`] by [`from_uci`]. Every value that can later
//! reach an nft script or a command line is held in a type whose constructor checks a strict
//! grammar ([`IfName`], [`Name`], [`Mac`], `IpAddr`), so code downstream never has to quote.
//!
//! STATUS: types fixed; `from_uci` is being written (see the model issue work).

use std::fmt;
use std::net::IpAddr;

/// A problem found while building the model: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Config file path.
    pub file: String,
    /// 1-based line of the offending statement (the section's `config` line for missing options).
    pub line: usize,
    /// UCI address of the section (`vpn`, `@device[0]`), if the problem is inside one.
    pub section: Option<String>,
    /// Option name, if the problem is about one option.
    pub option: Option<String>,
    /// What is wrong and, where possible, what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.file, self.line)?;
        if let Some(s) = &self.section {
            write!(f, " section '{}'", s)?;
        }
        if let Some(o) = &self.option {
            write!(f, " option '{}'", o)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A Linux network interface name: 1–15 bytes of `[A-Za-z0-9_.-]`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    /// Validate an interface name.
    pub fn new(s: &str) -> Result<IfName, String> {
        let ok = !s.is_empty()
            && s.len() <= 15
            && s != "."
            && s != ".."
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if ok {
            Ok(IfName(s.to_string()))
        } else {
            Err(format!("'{}' is not a valid interface name (1-15 characters of A-Z a-z 0-9 _ . -)", printable(s)))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UCI section name used as an identifier (tunnel, shaper): `[A-Za-z0-9_]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validate an identifier.
    pub fn new(s: &str) -> Result<Name, String> {
        if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            Ok(Name(s.to_string()))
        } else {
            Err(format!("'{}' is not a valid name (1-32 characters of A-Z a-z 0-9 _)", printable(s)))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ethernet MAC address (unicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parse `aa:bb:cc:dd:ee:ff` (also `-` separated, any case).
    pub fn parse(s: &str) -> Result<Mac, String> {
        let bad = || format!("'{}' is not a MAC address (expected aa:bb:cc:dd:ee:ff)", printable(s));
        let parts: Vec<&str> = if s.contains(':') { s.split(':').collect() } else { s.split('-').collect() };
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut m = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if m[0] & 1 == 1 {
            return Err(format!("'{}' is a multicast/broadcast address, not a device", printable(s)));
        }
        Ok(Mac(m))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// Render a hostile string safely for an error message (control characters escaped, length capped).
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(|c| c.escape_debug()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// `option log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal operation messages (default).
    Info,
    /// Everything, including per-device counters.
    Debug,
}

/// The `config moat 'main'` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `enabled` (default 1).
    pub enabled: bool,
    /// `log_level` (default info).
    pub log_level: LogLevel,
    /// `lan_device` list (default `br-lan`).
    pub lan_devices: Vec<IfName>,
    /// `fwmark_mask` (default 0x0f000000): the mark bits moat owns.
    pub fwmark_mask: u32,
    /// `queue_base` (default 4200): first NFQUEUE number.
    pub queue_base: u16,
    /// `table_base` (default 4200): first routing table id and ip rule priority.
    pub table_base: u32,
}

/// `option pad_to` of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// Tunnel MTU rounded down to a multiple of 16 (resolved when the MTU is known).
    Auto,
    /// An explicit inner packet size in bytes.
    Bytes(u16),
}

/// A layer-3 tunnel (`type wireguard` or `type interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L3Tunnel {
    /// `device`: the kernel netdev.
    pub device: IfName,
    /// `dns`: resolver reached through the tunnel.
    pub dns: Option<IpAddr>,
    /// `ipv6`: whether the tunnel carries IPv6 (default 0: protected IPv6 is rejected).
    pub ipv6: bool,
    /// `pad_to` (wireguard only; default auto).
    pub pad_to: PadTo,
    /// `cover_dst` (wireguard only; default `dns`): where cover packets are addressed.
    pub cover_dst: Option<IpAddr>,
    /// `pad_all` (wireguard only; default 1): pad other traffic in this tunnel too.
    pub pad_all: bool,
}

/// A Tor transparent proxy (`type tor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TorTunnel {
    /// `trans_port` (default 9040).
    pub trans_port: u16,
    /// `dns_port` (default 9053).
    pub dns_port: u16,
}

/// What kind of tunnel a `config tunnel` section is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelKind {
    /// A WireGuard interface: can be shaped.
    WireGuard(L3Tunnel),
    /// Any other L3 tunnel device: routed, never shaped.
    Interface(L3Tunnel),
    /// Tor's TransPort/DNSPort on the router.
    Tor(TorTunnel),
}

/// A `config tunnel '<name>'` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// Section name (devices refer to it in `route`).
    pub name: Name,
    /// Type and its parameters.
    pub kind: TunnelKind,
    /// Line of the `config` statement.
    pub line: usize,
}

/// Parameters of `mode constant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantParams {
    /// `rate`: packets per second per direction.
    pub rate: u32,
}

/// Parameters of `mode stochastic` (defined by the shaping work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StochasticParams {
    /// `rate`: rate cap, packets per second.
    pub rate: u32,
}

/// The shaping mode of a `config shaper` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShaperMode {
    /// Independent link padding on a constant slot clock.
    Constant(ConstantParams),
    /// Stochastic traffic padding (fake activity periods).
    Stochastic(StochasticParams),
}

/// A `config shaper '<name>'` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaper {
    /// Section name (devices refer to it in `shaper`).
    pub name: Name,
    /// Mode and parameters.
    pub mode: ShaperMode,
    /// Line of the `config` statement.
    pub line: usize,
}

/// Where a device's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Untouched by moat.
    Direct,
    /// LAN only: nothing forwarded beyond the LAN.
    Block,
    /// Through the named tunnel section.
    Tunnel(Name),
}

/// A `config device` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// UCI address of the section (`@device[0]` or its name).
    pub section: String,
    /// `name`: human label (printable, no control characters, ≤ 64 characters). Never put in nft text.
    pub name: String,
    /// `mac` list: one or more.
    pub macs: Vec<Mac>,
    /// `route`.
    pub route: Route,
    /// `shaper`: a shaper section (only with a wireguard route).
    pub shaper: Option<Name>,
    /// `enabled` (default 1). Disabled devices are treated as `direct`.
    pub enabled: bool,
    /// Line of the `config` statement.
    pub line: usize,
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The `main` section (defaults if absent).
    pub global: Global,
    /// Tunnels in file order.
    pub tunnels: Vec<Tunnel>,
    /// Shapers in file order.
    pub shapers: Vec<Shaper>,
    /// Devices in file order.
    pub devices: Vec<Device>,
}

impl Model {
    /// Look a tunnel up by section name.
    pub fn tunnel(&self, name: &Name) -> Option<&Tunnel> {
        self.tunnels.iter().find(|t| &t.name == name)
    }
    /// Look a shaper up by section name.
    pub fn shaper(&self, name: &Name) -> Option<&Shaper> {
        self.shapers.iter().find(|s| &s.name == name)
    }
}

/// A successfully built model plus the warnings (unknown options, …) found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
}

/// Build the model from a parsed package. On failure, every error found is returned.
pub fn from_uci(_file: &str, _pkg: &crate::uci::Package) -> Result<Loaded, Vec<Diagnostic>> {
    unimplemented!("model::from_uci is being written")
}
