//! Typed, validated model of `/etc/config/moat` (schema v1).
//!
//! Built from a parsed [`crate::uci::Package`] by [`from_uci`]. Every value that can later
//! reach an nft script or a command line is held in a type whose constructor checks a strict
//! grammar ([`IfName`], [`Name`], [`Mac`], `IpAddr`), so code downstream never has to quote.
//!
//! Unknown options and section types become warnings ([`Loaded::warnings`]); wrong values and
//! failed cross-checks become errors, all of them collected, each naming file, line, section
//! and option. The rules are listed in README.md, section "Configuration reference".

pub mod uci;

use std::fmt;
use std::net::IpAddr;

/// A problem found while building the model: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Config file path.
    pub file: String,
    /// 1-based line of the offending statement (the section's `config` line for missing options);
    /// 0 when the problem is about the whole file (unreadable).
    pub line: usize,
    /// UCI address of the section (`vpn`, `@device[0]`), if the problem is inside one.
    pub section: Option<String>,
    /// Option name, if the problem is about one option.
    pub option: Option<String>,
    /// What is wrong and, where possible, what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line: section 'x' option 'y': message` (parts that are unknown are left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line != 0 {
            write!(f, ":{}", self.line)?;
        }
        let mut sep = ": ";
        if let Some(s) = &self.section {
            write!(f, "{}section '{}'", sep, s)?;
            sep = " ";
        }
        if let Some(o) = &self.option {
            write!(f, "{}option '{}'", sep, o)?;
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
        if m == [0u8; 6] {
            return Err(format!("'{}' is the all-zero address, not a device", printable(s)));
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
    /// `realtime` (default 0): run the daemon with real-time scheduling so shaping slots leave on
    /// time under CPU load (`shaper::engine::set_realtime` says what it costs).
    pub realtime: bool,
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

/// Parameters of `mode stochastic` (STP-style decoy periods; see `crate::shaper`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StochasticParams {
    /// `rate`: rate cap for cover packets, packets per second.
    pub rate: u32,
    /// `decoys`: expected decoy activity periods per idle hour (0-360, default 6; 0 = pad only).
    pub decoys: u32,
    /// `budget`: cover traffic budget in MB (10^6 bytes) per day (0-100000, default 50).
    pub budget_mb: u32,
    /// `decoy_rate`: decoy packet rate until the device's own activity has been seen, packets/s
    /// (1-`rate`, default min(5, rate)).
    pub decoy_rate: u32,
    /// `decoy_duration`: decoy length until the device's own activity has been seen, seconds
    /// (1-3600, default 20). `decoys` × `decoy_duration` must stay below an hour.
    pub decoy_duration: u32,
    /// `idle_gap`: seconds of silence that end an activity period (1-600, default 5).
    pub idle_gap: u32,
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

// ---------------------------------------------------------------------------------------------
// Defaults and limits
// ---------------------------------------------------------------------------------------------

/// Default `fwmark_mask`: bits 24–27.
pub const DEFAULT_FWMARK_MASK: u32 = 0x0f00_0000;
/// Default `queue_base`.
pub const DEFAULT_QUEUE_BASE: u16 = 4200;
/// Default `table_base`.
pub const DEFAULT_TABLE_BASE: u32 = 4200;
/// Default `lan_device`.
pub const DEFAULT_LAN_DEVICE: &str = "br-lan";
/// Default Tor `trans_port`.
pub const DEFAULT_TOR_TRANS_PORT: u16 = 9040;
/// Default Tor `dns_port`.
pub const DEFAULT_TOR_DNS_PORT: u16 = 9053;
/// The fwmark bits OpenWrt's pbr package uses; moat's mask must not touch them.
pub const PBR_MARK_MASK: u32 = 0x00ff_0000;
/// The fwmark bits OpenWrt's mwan3 package uses (its default `mmx_mask`); moat's mask must not touch them.
pub const MWAN3_MARK_MASK: u32 = 0x3f00;
/// Smallest explicit `pad_to`.
pub const PAD_TO_MIN: u16 = 64;
/// Largest explicit `pad_to` (the largest multiple of 16 not above 1500).
pub const PAD_TO_MAX: u16 = 1488;
/// Highest shaper `rate` in packets per second.
pub const RATE_MAX: u32 = 1000;
/// Longest device display name, in characters.
pub const DISPLAY_NAME_MAX: usize = 64;
/// Highest routing table id / ip rule priority moat may use: priority 32766 is the kernel's
/// `lookup main` rule, and moat's rules must come before it.
pub const RULE_PRIORITY_MAX: u32 = 32765;
/// Largest configuration file `load_file` reads (a UCI file is a few KB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

impl Default for Global {
    fn default() -> Global {
        Global {
            enabled: true,
            log_level: LogLevel::Info,
            lan_devices: vec![IfName(DEFAULT_LAN_DEVICE.to_string())],
            fwmark_mask: DEFAULT_FWMARK_MASK,
            queue_base: DEFAULT_QUEUE_BASE,
            table_base: DEFAULT_TABLE_BASE,
            realtime: false,
        }
    }
}

impl Default for TorTunnel {
    fn default() -> TorTunnel {
        TorTunnel { trans_port: DEFAULT_TOR_TRANS_PORT, dns_port: DEFAULT_TOR_DNS_PORT }
    }
}

impl Model {
    /// The devices moat acts on (`enabled 1`), in file order.
    pub fn active_devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(|d| d.enabled)
    }
    /// Mark values the plan uses inside `fwmark_mask` (its layout: one value per route in use -
    /// each tunnel an enabled device is routed into, and `block` if an enabled device uses it -
    /// then one per enabled shaped device). Validation guarantees the mask holds this many
    /// non-zero values.
    pub fn mark_values_needed(&self) -> u32 {
        let routes = self
            .tunnels
            .iter()
            .filter(|t| self.active_devices().any(|d| d.route == Route::Tunnel(t.name.clone())))
            .count()
            + usize::from(self.active_devices().any(|d| d.route == Route::Block));
        (routes + self.active_devices().filter(|d| d.shaper.is_some()).count()) as u32
    }
    /// Routing tables (= ip rule priorities) the plan uses from `table_base`: one per
    /// `wireguard`/`interface` tunnel. Validation guarantees `table_base .. table_base +
    /// max(1, tables_needed())` avoids 0 and 253–255 and ends at [`RULE_PRIORITY_MAX`] at most.
    pub fn tables_needed(&self) -> u32 {
        self.tunnels.iter().filter(|t| !matches!(t.kind, TunnelKind::Tor(_))).count() as u32
    }
    /// NFQUEUE numbers the plan uses from `queue_base`: one per enabled shaped device, plus one
    /// pad queue per wireguard tunnel with `pad_all 1` that has an enabled shaped device.
    /// Validation guarantees they all fit in 0..=65535.
    pub fn queues_needed(&self) -> u32 {
        let shaped: Vec<&Device> = self.active_devices().filter(|d| d.shaper.is_some()).collect();
        let pad = self
            .tunnels
            .iter()
            .filter(|t| matches!(&t.kind, TunnelKind::WireGuard(l) if l.pad_all))
            .filter(|t| shaped.iter().any(|d| d.route == Route::Tunnel(t.name.clone())))
            .count();
        (shaped.len() + pad) as u32
    }
    /// The tunnel a device is routed into, if its route names one that exists.
    pub fn device_tunnel(&self, d: &Device) -> Option<&Tunnel> {
        match &d.route {
            Route::Tunnel(n) => self.tunnel(n),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Value grammars (pure; also usable by other modules)
// ---------------------------------------------------------------------------------------------

/// A UCI boolean: `0/1`, `no/yes`, `off/on`, `false/true`, `disabled/enabled`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err(format!(
            "'{}' is not a boolean (expected 0/1, no/yes, off/on, false/true or disabled/enabled)",
            printable(s)
        )),
    }
}

/// A strict unsigned decimal integer `0..=max`: digits only (no sign, blanks or leading zeros),
/// at most 10 digits.
pub fn parse_uint(s: &str, max: u64) -> Result<u64, String> {
    let ok =
        !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) && !(s.len() > 1 && s.starts_with('0'));
    if !ok {
        return Err(format!("'{}' is not a decimal integer (digits only, no sign or leading zeros)", printable(s)));
    }
    let v: u64 = s.parse().map_err(|_| format!("'{}' is not a decimal integer", printable(s)))?;
    if v > max {
        return Err(format!("{} is too large (at most {})", v, max));
    }
    Ok(v)
}

/// A 32-bit mask: strict decimal, or `0x` followed by 1–8 hex digits.
pub fn parse_mask(s: &str) -> Result<u32, String> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if !h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u32::from_str_radix(h, 16).map_err(|_| format!("'{}' is not a 32-bit mask", printable(s)));
        }
        return Err(format!(
            "'{}' is not a 32-bit mask (expected 0x followed by 1-8 hex digits, or decimal)",
            printable(s)
        ));
    }
    parse_uint(s, u32::MAX as u64).map(|v| v as u32).map_err(|_| {
        format!("'{}' is not a 32-bit mask (expected 0x followed by 1-8 hex digits, or decimal)", printable(s))
    })
}

/// A TCP/UDP port `1..=65535` (strict decimal).
pub fn parse_port(s: &str) -> Result<u16, String> {
    match parse_uint(s, 65535) {
        Ok(0) => Err("port 0 is not usable (expected 1-65535)".to_string()),
        Ok(v) => Ok(v as u16),
        Err(_) => Err(format!("'{}' is not a port (expected 1-65535)", printable(s))),
    }
}

/// An IPv4 or IPv6 address in the standard textual form (no zone id, brackets, prefix or port).
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>().map_err(|_| {
        let hint = if s.contains('%') {
            " (zone ids are not allowed)"
        } else if s.contains('[') || s.contains(']') {
            " (write it without brackets)"
        } else if s.contains('/') {
            " (an address, not a prefix)"
        } else {
            ""
        };
        format!("'{}' is not an IPv4 or IPv6 address{}", printable(s), hint)
    })
}

/// An address that can be a real peer: not unspecified, loopback, multicast or broadcast.
fn unicast_peer(ip: IpAddr) -> Result<IpAddr, String> {
    let bad = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_loopback() || v6.is_multicast(),
    };
    if bad {
        Err(format!("{} is not a unicast address of a remote host (unspecified, loopback, multicast or broadcast)", ip))
    } else {
        Ok(ip)
    }
}

/// Bidirectional-text control characters (invisible reordering in terminals and UIs).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A device display name: 1–64 printable characters (no control or bidi-control characters,
/// not only blanks). It is only ever shown to people, never put into nft text or commands.
pub fn parse_display_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a device name must not be empty".to_string());
    }
    if s.chars().count() > DISPLAY_NAME_MAX {
        return Err(format!(
            "'{}' is too long for a device name (at most {} characters)",
            printable(s),
            DISPLAY_NAME_MAX
        ));
    }
    if s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(format!("'{}' contains control characters (device names must be printable)", printable(s)));
    }
    Ok(s.to_string())
}

/// `pad_to`: `auto` or a multiple of 16 in `PAD_TO_MIN..=PAD_TO_MAX` (WireGuard pads its
/// plaintext to 16 bytes anyway, so other sizes would only waste bytes).
pub fn parse_pad_to(s: &str) -> Result<PadTo, String> {
    if s == "auto" {
        return Ok(PadTo::Auto);
    }
    let v =
        parse_uint(s, u32::MAX as u64).map_err(|_| format!("'{}' is not 'auto' or a size in bytes", printable(s)))?;
    if v < PAD_TO_MIN as u64 || v > PAD_TO_MAX as u64 || v % 16 != 0 {
        return Err(format!(
            "pad_to {} is out of range (expected auto or a multiple of 16 from {} to {})",
            v, PAD_TO_MIN, PAD_TO_MAX
        ));
    }
    Ok(PadTo::Bytes(v as u16))
}

fn parse_log_level(s: &str) -> Result<LogLevel, String> {
    match s {
        "error" => Ok(LogLevel::Error),
        "warn" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        _ => Err(format!("'{}' is not a log level (expected error, warn, info or debug)", printable(s))),
    }
}

fn parse_rate(s: &str) -> Result<u32, String> {
    match parse_uint(s, u32::MAX as u64) {
        Ok(v) if (1..=RATE_MAX as u64).contains(&v) => Ok(v as u32),
        Ok(v) => Err(format!("rate {} is out of range (expected 1-{} packets per second)", v, RATE_MAX)),
        Err(_) => Err(format!("'{}' is not a rate (expected 1-{} packets per second)", printable(s), RATE_MAX)),
    }
}

/// Is `m` a single run of consecutive one bits?
fn contiguous(m: u32) -> bool {
    if m == 0 {
        return false;
    }
    let shifted = m >> m.trailing_zeros();
    shifted & shifted.wrapping_add(1) == 0
}

// ---------------------------------------------------------------------------------------------
// Building the model
// ---------------------------------------------------------------------------------------------

use crate::uci::{OptionValue, Package, Section, Value};

/// A section being read, with its UCI address.
struct Sec<'s> {
    s: &'s Section,
    addr: String,
}

/// Collects diagnostics while the model is built.
struct Ctx<'a> {
    file: &'a str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn diag(&self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line,
            section: sec.map(str::to_string),
            option: opt.map(str::to_string),
            message: msg,
        }
    }
    fn error(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(line, sec, opt, msg);
        self.errors.push(d);
    }
    fn warn(&mut self, line: usize, sec: Option<&str>, opt: Option<&str>, msg: String) {
        let d = self.diag(line, sec, opt, msg);
        self.warnings.push(d);
    }

    /// The value of a single-valued option; `None` if absent or given as a list (an error).
    fn single<'s>(&mut self, sec: &Sec<'s>, name: &str) -> Option<&'s Value> {
        let o = sec.s.get(name)?;
        match &o.value {
            OptionValue::Single(v) => Some(v),
            OptionValue::List(_) => {
                self.error(
                    o.line,
                    Some(&sec.addr),
                    Some(name),
                    format!("takes a single value: write `option {} '...'`, not `list`", name),
                );
                None
            }
        }
    }

    /// A parsed single-valued option: `Ok(None)` if absent, `Err(())` if invalid (error recorded).
    fn get<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<(T, usize)>, ()> {
        let present = sec.s.get(name).is_some();
        match self.single(sec, name) {
            None if present => Err(()),
            None => Ok(None),
            Some(v) if !v.is_utf8() => {
                self.error(v.line, Some(&sec.addr), Some(name), format!("'{}' is not valid UTF-8", printable(&v.text)));
                Err(())
            }
            Some(v) => match parse(&v.text) {
                Ok(t) => Ok(Some((t, v.line))),
                Err(m) => {
                    self.error(v.line, Some(&sec.addr), Some(name), m);
                    Err(())
                }
            },
        }
    }

    /// A parsed option with a default: the default when absent or invalid (error recorded).
    fn get_or<T>(&mut self, sec: &Sec<'_>, name: &str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> T {
        match self.get(sec, name, parse) {
            Ok(Some((v, _))) => v,
            _ => default,
        }
    }

    /// A required option: error naming the section's `config` line when absent.
    fn required<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<(T, usize)> {
        match self.get(sec, name, parse) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.error(sec.s.line, Some(&sec.addr), Some(name), format!("missing: {}", what));
                None
            }
            Err(()) => None,
        }
    }

    /// Every item of an option that may be given as `list` (or a single `option`), each parsed;
    /// `None` if absent. Invalid items are reported and left out.
    fn list<T>(
        &mut self,
        sec: &Sec<'_>,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<(T, usize)>> {
        let o = sec.s.get(name)?;
        let mut out = Vec::new();
        for v in o.values() {
            if !v.is_utf8() {
                self.error(v.line, Some(&sec.addr), Some(name), format!("'{}' is not valid UTF-8", printable(&v.text)));
                continue;
            }
            match parse(&v.text) {
                Ok(t) => out.push((t, v.line)),
                Err(mut m) => {
                    let parts: Vec<&str> = v.text.split_whitespace().collect();
                    if parts.len() > 1 && parts.iter().all(|p| parse(p).is_ok()) {
                        m.push_str(&format!("; write one `list {} '...'` line per value", name));
                    }
                    self.error(v.line, Some(&sec.addr), Some(name), m)
                }
            }
        }
        Some(out)
    }

    /// Warn about options not in `known`; `other(name)` may explain a known-elsewhere option.
    fn unknown_options(&mut self, sec: &Sec<'_>, known: &[&str], other: impl Fn(&str) -> Option<String>) {
        for o in &sec.s.options {
            if known.contains(&o.name.as_str()) {
                continue;
            }
            let msg =
                other(&o.name).unwrap_or_else(|| format!("unknown option ignored (known here: {})", known.join(", ")));
            self.warn(o.line, Some(&sec.addr), Some(&o.name), msg);
        }
    }
}

/// Where the global options that take part in cross-checks were set.
struct GlobalLines {
    section: Option<String>,
    line: usize,
    fwmark_mask: usize,
    queue_base: usize,
    table_base: usize,
}

/// Per-device references checked after all sections are read.
struct DeviceRefs {
    /// All options of the device were valid.
    ok: bool,
    /// `route` was present and valid.
    route_ok: bool,
    route_line: usize,
    shaper_line: usize,
    /// Line of each entry of [`Device::macs`].
    mac_lines: Vec<usize>,
}

const MAIN_OPTIONS: &[&str] =
    &["enabled", "log_level", "lan_device", "fwmark_mask", "queue_base", "table_base", "realtime"];
const TUNNEL_TYPES: &str = "wireguard, interface or tor";
const TUNNEL_OPTIONS: &[&str] =
    &["type", "device", "dns", "ipv6", "pad_to", "cover_dst", "pad_all", "trans_port", "dns_port"];
const WIREGUARD_OPTIONS: &[&str] = &["type", "device", "dns", "ipv6", "pad_to", "cover_dst", "pad_all"];
const INTERFACE_OPTIONS: &[&str] = &["type", "device", "dns", "ipv6"];
const TOR_OPTIONS: &[&str] = &["type", "trans_port", "dns_port"];
const SHAPER_OPTIONS: &[&str] = &["mode", "rate"];
const DEVICE_OPTIONS: &[&str] = &["name", "mac", "route", "shaper", "enabled"];

/// Everything validation found: the model (if there were no errors), the errors and the warnings.
#[derive(Debug, Clone)]
pub struct Report {
    /// The model; `None` when there are errors.
    pub model: Option<Model>,
    /// Errors, in line order.
    pub errors: Vec<Diagnostic>,
    /// Warnings, in line order (also collected when there are errors).
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    /// The model and warnings, or the errors (the warnings are dropped in that case).
    pub fn into_result(self) -> Result<Loaded, Vec<Diagnostic>> {
        match self.model {
            Some(model) if self.errors.is_empty() => Ok(Loaded { model, warnings: self.warnings }),
            _ => Err(self.errors),
        }
    }
}

/// Build the model from a parsed package. On failure, every error found is returned.
///
/// `file` is used in diagnostics only. Warnings (unknown options and section types, options
/// that do not apply) never make loading fail. Use [`validate`] to get the warnings too when
/// there are errors.
pub fn from_uci(file: &str, pkg: &Package) -> Result<Loaded, Vec<Diagnostic>> {
    validate(file, pkg).into_result()
}

/// Build the model from a parsed package, collecting every error and warning.
pub fn validate(file: &str, pkg: &Package) -> Report {
    let mut cx = Ctx { file, errors: Vec::new(), warnings: Vec::new() };
    check_redeclared(&mut cx, pkg);

    let mut global: Option<(Global, GlobalLines)> = None;
    let mut tunnels: Vec<Tunnel> = Vec::new();
    let mut tunnel_device_lines: Vec<usize> = Vec::new();
    let mut shapers: Vec<Shaper> = Vec::new();
    let mut devices: Vec<Device> = Vec::new();
    let mut device_refs: Vec<DeviceRefs> = Vec::new();
    let mut devices_ok = true;
    // Names of every tunnel/shaper section, valid or not, so that a reference to an invalid
    // section is not reported a second time as a reference to a missing one.
    let mut tunnel_names: Vec<String> = Vec::new();
    let mut shaper_names: Vec<String> = Vec::new();
    for (i, s) in pkg.sections.iter().enumerate() {
        let sec = Sec { s, addr: pkg.address(i) };
        match s.stype.as_str() {
            "moat" => {
                if let Some((_, first)) = &global {
                    let first_name = first.section.clone().unwrap_or_default();
                    let first_line = first.line;
                    cx.error(
                        s.line,
                        Some(&sec.addr),
                        None,
                        format!(
                            "a second 'moat' section; only one is allowed (the first is '{}' at line {})",
                            first_name, first_line
                        ),
                    );
                    continue;
                }
                global = Some(read_global(&mut cx, &sec));
            }
            "tunnel" => {
                tunnel_names.extend(s.name.clone());
                if let Some((t, dl)) = read_tunnel(&mut cx, &sec) {
                    tunnels.push(t);
                    tunnel_device_lines.push(dl);
                }
            }
            "shaper" => {
                shaper_names.extend(s.name.clone());
                if let Some(sh) = read_shaper(&mut cx, &sec) {
                    shapers.push(sh);
                }
            }
            "device" => {
                let (d, r) = read_device(&mut cx, &sec);
                devices_ok &= r.ok;
                devices.push(d);
                device_refs.push(r);
            }
            other => cx.warn(
                s.line,
                Some(&sec.addr),
                None,
                format!("unknown section type '{}' ignored (known: moat, tunnel, shaper, device)", printable(other)),
            ),
        }
    }

    let (global, glines) = global.unwrap_or_else(|| {
        (Global::default(), GlobalLines { section: None, line: 0, fwmark_mask: 0, queue_base: 0, table_base: 0 })
    });

    // Tunnels: one device per tunnel, and never a LAN device.
    for i in 0..tunnels.len() {
        let dev = match &tunnels[i].kind {
            TunnelKind::WireGuard(l) | TunnelKind::Interface(l) => &l.device,
            TunnelKind::Tor(_) => continue,
        };
        let line = tunnel_device_lines[i];
        let name = tunnels[i].name.to_string();
        for j in 0..i {
            if let TunnelKind::WireGuard(l) | TunnelKind::Interface(l) = &tunnels[j].kind {
                if &l.device == dev {
                    cx.error(
                        line,
                        Some(&name),
                        Some("device"),
                        format!(
                            "device '{}' is already used by tunnel '{}' (line {}); each tunnel needs its own device",
                            dev, tunnels[j].name, tunnel_device_lines[j]
                        ),
                    );
                }
            }
        }
        if global.lan_devices.contains(dev) {
            cx.error(
                line,
                Some(&name),
                Some("device"),
                format!("device '{}' is also a lan_device; a tunnel cannot be a LAN interface", dev),
            );
        }
    }

    // Devices: references and MAC uniqueness.
    let mut seen_macs: Vec<(Mac, String, usize)> = Vec::new();
    for (d, r) in devices.iter().zip(&device_refs) {
        let tunnel = match &d.route {
            _ if !r.route_ok => None,
            Route::Tunnel(n) => match tunnels.iter().find(|t| &t.name == n) {
                Some(t) => Some(t),
                None if tunnel_names.iter().any(|t| t == n.as_str()) => None, // invalid, reported
                None => {
                    let known: Vec<String> = tunnel_names.iter().map(|t| format!("'{}'", t)).collect();
                    cx.error(
                        r.route_line,
                        Some(&d.section),
                        Some("route"),
                        format!(
                            "route '{}' names no tunnel section (expected direct, block{}{})",
                            n,
                            if known.is_empty() { "" } else { " or one of " },
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
            _ => None,
        };
        if let Some(sn) = &d.shaper {
            if !shaper_names.iter().any(|s| s == sn.as_str()) {
                cx.error(
                    r.shaper_line,
                    Some(&d.section),
                    Some("shaper"),
                    format!("shaper '{}' names no shaper section", sn),
                );
            }
            match (&d.route, tunnel.map(|t| &t.kind)) {
                (_, Some(TunnelKind::WireGuard(l))) => {
                    if !matches!(l.cover_dst, Some(IpAddr::V4(_))) {
                        cx.error(
                            r.shaper_line,
                            Some(&d.section),
                            Some("shaper"),
                            format!(
                                "tunnel '{}' has no IPv4 cover_dst (nor an IPv4 dns to default to); shaped devices need one",
                                tunnel.map(|t| t.name.to_string()).unwrap_or_default()
                            ),
                        );
                    }
                }
                (Route::Tunnel(n), Some(kind)) => {
                    let ty = if matches!(kind, TunnelKind::Tor(_)) { "tor" } else { "interface" };
                    cx.error(
                        r.shaper_line,
                        Some(&d.section),
                        Some("shaper"),
                        format!("a shaper needs a wireguard tunnel route, but tunnel '{}' is of type {}", n, ty),
                    );
                }
                (Route::Tunnel(_), None) => {} // the missing or invalid tunnel is already reported
                _ if !r.route_ok => {}
                (Route::Direct, _) | (Route::Block, _) => cx.error(
                    r.shaper_line,
                    Some(&d.section),
                    Some("shaper"),
                    format!(
                        "a shaper needs a wireguard tunnel route, but the route is {}",
                        if d.route == Route::Direct { "direct" } else { "block" }
                    ),
                ),
            }
        }
        let mac_opt = d.section.clone();
        for (m, &line) in d.macs.iter().zip(&r.mac_lines) {
            if let Some((_, other, oline)) = seen_macs.iter().find(|(x, _, _)| x == m) {
                let msg = if *other == mac_opt {
                    format!("MAC {} is listed twice in this device (also line {})", m, oline)
                } else {
                    format!("MAC {} is already listed in device section '{}' (line {}); a MAC can belong to one device only", m, other, oline)
                };
                cx.error(line, Some(&d.section), Some("mac"), msg);
            } else {
                seen_macs.push((*m, mac_opt.clone(), line));
            }
        }
    }

    let valid_devices: Vec<Device> =
        devices.iter().zip(&device_refs).filter(|(_, r)| r.ok).map(|(d, _)| d.clone()).collect();
    let model = Model { global, tunnels, shapers, devices };
    check_budgets(&mut cx, &Model { devices: valid_devices, ..model.clone() }, &glines);

    cx.errors.sort_by_key(|d| d.line);
    cx.warnings.sort_by_key(|d| d.line);
    let ok = cx.errors.is_empty() && devices_ok;
    debug_assert!(ok || !cx.errors.is_empty(), "an invalid device must have reported an error");
    Report { model: ok.then_some(model), errors: cx.errors, warnings: cx.warnings }
}

/// A named section declared twice is merged by UCI (a second declaration with another type is a
/// UCI syntax error), which silently mixes two sections. Detect it: an option set after a later
/// section began. (A redeclaration right after the first, or one without options, is invisible
/// in the parsed package and harmless.)
fn check_redeclared(cx: &mut Ctx<'_>, pkg: &Package) {
    for (i, s) in pkg.sections.iter().enumerate() {
        let Some(name) = &s.name else { continue };
        let Some(next) = pkg.sections.get(i + 1) else { continue };
        let late = s.options.iter().flat_map(|o| o.values()).map(|v| v.line).filter(|&l| l > next.line).min();
        if let Some(l) = late {
            cx.error(
                l,
                Some(name),
                None,
                format!(
                    "section name '{}' is declared more than once (first at line {}, again before line {}); \
                     UCI merges the declarations into one section, so give each section its own name",
                    name, s.line, l
                ),
            );
        }
    }
}

fn read_global(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> (Global, GlobalLines) {
    cx.unknown_options(sec, MAIN_OPTIONS, |_| None);
    let d = Global::default();
    let mut lines = GlobalLines {
        section: Some(sec.addr.clone()),
        line: sec.s.line,
        fwmark_mask: sec.s.line,
        queue_base: sec.s.line,
        table_base: sec.s.line,
    };
    let enabled = cx.get_or(sec, "enabled", d.enabled, parse_bool);
    let log_level = cx.get_or(sec, "log_level", d.log_level, parse_log_level);
    let lan_devices = match cx.list(sec, "lan_device", IfName::new) {
        None => d.lan_devices.clone(),
        Some(items) => {
            let mut out: Vec<IfName> = Vec::new();
            for (n, line) in items {
                if out.contains(&n) {
                    cx.warn(line, Some(&sec.addr), Some("lan_device"), format!("'{}' is listed twice", n));
                } else {
                    out.push(n);
                }
            }
            // `list lan_device ''` gives one empty item, which IfName rejects: the list can only
            // end up empty when that error has been reported.
            out
        }
    };
    let fwmark_mask = match cx.get(sec, "fwmark_mask", parse_mask) {
        Ok(Some((v, l))) => {
            lines.fwmark_mask = l;
            v
        }
        _ => d.fwmark_mask,
    };
    let queue_base = match cx.get(sec, "queue_base", |s| parse_uint(s, u16::MAX as u64)) {
        Ok(Some((v, l))) => {
            lines.queue_base = l;
            v as u16
        }
        _ => d.queue_base,
    };
    let table_base = match cx.get(sec, "table_base", |s| parse_uint(s, u32::MAX as u64)) {
        Ok(Some((v, l))) => {
            lines.table_base = l;
            v as u32
        }
        _ => d.table_base,
    };
    let realtime = cx.get_or(sec, "realtime", d.realtime, parse_bool);
    (Global { enabled, log_level, lan_devices, fwmark_mask, queue_base, table_base, realtime }, lines)
}

/// The section name of a `tunnel`/`shaper` section, validated.
fn section_name(cx: &mut Ctx<'_>, sec: &Sec<'_>, kind: &str, referrer: &str) -> Option<Name> {
    let Some(n) = &sec.s.name else {
        cx.error(
            sec.s.line,
            Some(&sec.addr),
            None,
            format!("a {} section needs a name (devices refer to it in '{}')", kind, referrer),
        );
        return None;
    };
    match Name::new(n) {
        Ok(n) => Some(n),
        Err(m) => {
            cx.error(sec.s.line, Some(&sec.addr), None, m);
            None
        }
    }
}

fn read_tunnel(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> Option<(Tunnel, usize)> {
    let name = section_name(cx, sec, "tunnel", "route");
    if let Some(n) = &name {
        if n.as_str() == "direct" || n.as_str() == "block" {
            cx.error(
                sec.s.line,
                Some(&sec.addr),
                None,
                format!("'{}' is a reserved route name; call the tunnel something else", n),
            );
        }
    }
    let ty = cx.required(sec, "type", &format!("the tunnel type ({})", TUNNEL_TYPES), |s| match s {
        "wireguard" | "interface" | "tor" => Ok(s.to_string()),
        _ => Err(format!("'{}' is not a tunnel type (expected {})", printable(s), TUNNEL_TYPES)),
    });
    let Some((ty, _)) = ty else {
        cx.unknown_options(sec, TUNNEL_OPTIONS, |_| None);
        return None;
    };
    let allowed = match ty.as_str() {
        "wireguard" => WIREGUARD_OPTIONS,
        "interface" => INTERFACE_OPTIONS,
        _ => TOR_OPTIONS,
    };
    cx.unknown_options(sec, allowed, |o| {
        TUNNEL_OPTIONS.contains(&o).then(|| format!("option does not apply to a tunnel of type {} (ignored)", ty))
    });
    let mut device_line = sec.s.line;
    let kind = if ty == "tor" {
        let d = TorTunnel::default();
        let tp = cx.get(sec, "trans_port", parse_port);
        let dp = cx.get(sec, "dns_port", parse_port);
        let (Ok(tp), Ok(dp)) = (tp, dp) else { return None };
        let t = TorTunnel {
            trans_port: tp.map(|(v, _)| v).unwrap_or(d.trans_port),
            dns_port: dp.map(|(v, _)| v).unwrap_or(d.dns_port),
        };
        if t.trans_port == t.dns_port {
            let line = dp.map(|(_, l)| l).or(tp.map(|(_, l)| l)).unwrap_or(sec.s.line);
            cx.error(
                line,
                Some(&sec.addr),
                Some("dns_port"),
                format!("dns_port and trans_port are both {}; Tor needs two different ports", t.dns_port),
            );
            return None;
        }
        TunnelKind::Tor(t)
    } else {
        let wg = ty == "wireguard";
        let device = cx.required(sec, "device", "the tunnel's network device (e.g. wg0)", IfName::new);
        let ipv6 = cx.get_or(sec, "ipv6", false, parse_bool);
        let dns = match cx.get(sec, "dns", |s| parse_ip(s).and_then(unicast_peer)) {
            Ok(Some((ip, line))) => {
                if ip.is_ipv6() && !ipv6 {
                    cx.error(
                        line,
                        Some(&sec.addr),
                        Some("dns"),
                        format!("{} is IPv6 but the tunnel does not carry IPv6 (ipv6 '0')", ip),
                    );
                    None
                } else {
                    Some(ip)
                }
            }
            Ok(None) => None,
            Err(()) => return None,
        };
        let (pad_to, cover_dst, pad_all) = if wg {
            let pad_to = cx.get(sec, "pad_to", parse_pad_to);
            let cover = cx.get(sec, "cover_dst", |s| {
                let ip = parse_ip(s).and_then(unicast_peer)?;
                if ip.is_ipv4() {
                    Ok(ip)
                } else {
                    Err(format!("{} is IPv6; cover packets are IPv4 (expected an IPv4 address)", ip))
                }
            });
            let pad_all = cx.get(sec, "pad_all", parse_bool);
            let (Ok(pad_to), Ok(cover), Ok(pad_all)) = (pad_to, cover, pad_all) else { return None };
            let cover_dst = cover.map(|(ip, _)| ip).or(dns.filter(IpAddr::is_ipv4));
            (pad_to.map(|(v, _)| v).unwrap_or(PadTo::Auto), cover_dst, pad_all.map(|(v, _)| v).unwrap_or(true))
        } else {
            (PadTo::Auto, None, false)
        };
        let (device, dl) = device?;
        device_line = dl;
        let l = L3Tunnel { device, dns, ipv6, pad_to, cover_dst, pad_all };
        if wg {
            TunnelKind::WireGuard(l)
        } else {
            TunnelKind::Interface(l)
        }
    };
    Some((Tunnel { name: name?, kind, line: sec.s.line }, device_line))
}

fn read_shaper(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> Option<Shaper> {
    let name = section_name(cx, sec, "shaper", "shaper");
    let mode = cx.required(sec, "mode", "the shaping mode (constant or stochastic)", |s| match s {
        "constant" | "stochastic" => Ok(s.to_string()),
        _ => Err(format!("'{}' is not a shaping mode (expected constant or stochastic)", printable(s))),
    });
    let rate = cx.required(sec, "rate", "the rate in packets per second (1-1000)", parse_rate);
    let Some((mode, _)) = mode else {
        cx.unknown_options(sec, SHAPER_OPTIONS, |_| None);
        return None;
    };
    let mode = if mode == "constant" {
        cx.unknown_options(sec, SHAPER_OPTIONS, |_| None);
        ShaperMode::Constant(ConstantParams { rate: rate?.0 })
    } else {
        ShaperMode::Stochastic(read_stochastic(cx, sec, rate?.0)?)
    };
    Some(Shaper { name: name?, mode, line: sec.s.line })
}

/// The options of `mode stochastic`. Extension point: the shaping work adds its parameters
/// here (and to the known-option list) as further fields of [`StochasticParams`].
fn read_stochastic(cx: &mut Ctx<'_>, sec: &Sec<'_>, rate: u32) -> Option<StochasticParams> {
    const STOCHASTIC_OPTIONS: &[&str] =
        &["mode", "rate", "decoys", "budget", "decoy_rate", "decoy_duration", "idle_gap"];
    cx.unknown_options(sec, STOCHASTIC_OPTIONS, |_| None);
    let range = |name: &'static str, lo: u64, hi: u64, unit: &'static str| {
        move |s: &str| match parse_uint(s, u32::MAX as u64) {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v as u32),
            _ => Err(format!("'{}' is not a valid {} (expected {}-{} {})", printable(s), name, lo, hi, unit)),
        }
    };
    let mut ok = true;
    let mut get = |cx: &mut Ctx<'_>, name: &str, default: u32, parse: &dyn Fn(&str) -> Result<u32, String>| match cx
        .get(sec, name, parse)
    {
        Ok(Some((v, line))) => (v, Some(line)),
        Ok(None) => (default, None),
        Err(()) => {
            ok = false;
            (default, None)
        }
    };
    let (decoys, _) = get(cx, "decoys", 6, &range("decoy count", 0, 360, "per idle hour"));
    let (budget_mb, _) = get(cx, "budget", 50, &range("budget", 0, 100_000, "MB per day"));
    let (decoy_rate, rate_line) =
        get(cx, "decoy_rate", rate.min(5), &range("decoy rate", 1, RATE_MAX as u64, "packets per second"));
    let (decoy_duration, dur_line) = get(cx, "decoy_duration", 20, &range("decoy duration", 1, 3600, "seconds"));
    let (idle_gap, _) = get(cx, "idle_gap", 5, &range("idle gap", 1, 600, "seconds"));
    if decoy_rate > rate {
        let line = rate_line.unwrap_or(sec.s.line);
        cx.error(
            line,
            Some(&sec.addr),
            Some("decoy_rate"),
            format!("decoy_rate {} is above the rate cap {}", decoy_rate, rate),
        );
        ok = false;
    }
    if decoys as u64 * decoy_duration as u64 >= 3600 {
        let line = dur_line.unwrap_or(sec.s.line);
        cx.error(
            line,
            Some(&sec.addr),
            Some("decoy_duration"),
            format!(
                "{} decoys of {} s do not fit in an idle hour (decoys × decoy_duration must be below 3600)",
                decoys, decoy_duration
            ),
        );
        ok = false;
    }
    ok.then_some(StochasticParams { rate, decoys, budget_mb, decoy_rate, decoy_duration, idle_gap })
}

/// Read a device section. Always returns what could be read, so that cross-checks (MAC
/// uniqueness, references) also cover devices with errors; `DeviceRefs::ok` tells.
fn read_device(cx: &mut Ctx<'_>, sec: &Sec<'_>) -> (Device, DeviceRefs) {
    cx.unknown_options(sec, DEVICE_OPTIONS, |_| None);
    let mut ok = true;
    if let Some(n) = &sec.s.name {
        if let Err(m) = Name::new(n) {
            cx.error(sec.s.line, Some(&sec.addr), None, m);
            ok = false;
        }
    }
    let name = match cx.get(sec, "name", parse_display_name) {
        Ok(Some((n, _))) => n,
        Ok(None) => sec.addr.clone(),
        Err(()) => {
            ok = false;
            String::new()
        }
    };
    let macs: Vec<(Mac, usize)> = match cx.list(sec, "mac", Mac::parse) {
        None => {
            cx.error(
                sec.s.line,
                Some(&sec.addr),
                Some("mac"),
                "missing: at least one MAC address (list mac 'aa:bb:cc:dd:ee:ff')".to_string(),
            );
            ok = false;
            Vec::new()
        }
        Some(items) => {
            if items.len() != sec.s.get("mac").map(|o| o.values().len()).unwrap_or(0) {
                ok = false;
            }
            items
        }
    };
    let route =
        cx.required(sec, "route", "where the traffic goes (direct, block or a tunnel section name)", |s| match s {
            "direct" => Ok(Route::Direct),
            "block" => Ok(Route::Block),
            _ => Name::new(s).map(Route::Tunnel).map_err(|_| {
                format!("'{}' is not a route (expected direct, block or a tunnel section name)", printable(s))
            }),
        });
    let shaper = match cx.get(sec, "shaper", Name::new) {
        Ok(s) => s,
        Err(()) => {
            ok = false;
            None
        }
    };
    let enabled = match cx.get(sec, "enabled", parse_bool) {
        Ok(v) => v.map(|(b, _)| b).unwrap_or(true),
        Err(()) => {
            ok = false;
            true
        }
    };
    let route_ok = route.is_some();
    let (route, route_line) = route.unwrap_or((Route::Block, sec.s.line));
    let shaper_line = shaper.as_ref().map(|(_, l)| *l).unwrap_or(sec.s.line);
    (
        Device {
            section: sec.addr.clone(),
            name,
            macs: macs.iter().map(|(m, _)| *m).collect(),
            route,
            shaper: shaper.map(|(s, _)| s),
            enabled,
            line: sec.s.line,
        },
        DeviceRefs {
            ok: ok && route_ok,
            route_ok,
            route_line,
            shaper_line,
            mac_lines: macs.iter().map(|(_, l)| *l).collect(),
        },
    )
}

/// Check the mark, table and queue ranges against what the model needs.
/// Uses the valid sections only: with invalid ones there are errors already, and the
/// budgets are checked exactly once they are fixed.
fn check_budgets(cx: &mut Ctx<'_>, m: &Model, gl: &GlobalLines) {
    let g = &m.global;
    let marks_needed = m.mark_values_needed() as u64;
    let tables_needed = (m.tables_needed() as u64).max(1);
    let queues_needed = m.queues_needed() as u64;
    let sec = gl.section.as_deref();
    let mask = g.fwmark_mask;
    if mask == 0 {
        cx.error(gl.fwmark_mask, sec, Some("fwmark_mask"), "the mask is zero; moat needs some mark bits".to_string());
    } else if !contiguous(mask) {
        cx.error(
            gl.fwmark_mask,
            sec,
            Some("fwmark_mask"),
            format!("0x{:08x} is not one contiguous run of bits (e.g. 0x0f000000)", mask),
        );
    } else {
        if mask & PBR_MARK_MASK != 0 {
            cx.error(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!("0x{:08x} overlaps the bits pbr uses (0x{:08x})", mask, PBR_MARK_MASK),
            );
        }
        if mask & MWAN3_MARK_MASK != 0 {
            cx.error(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!("0x{:08x} overlaps the bits mwan3 uses (0x{:08x})", mask, MWAN3_MARK_MASK),
            );
        }
        let bits = mask.count_ones();
        let values: u64 = (1u64 << bits) - 1;
        let need = marks_needed;
        if values < need {
            cx.error(
                gl.fwmark_mask,
                sec,
                Some("fwmark_mask"),
                format!(
                    "0x{:08x} has {} bits ({} non-zero values) but the routes in use and the shaped devices need {} mark values; widen the mask",
                    mask, bits, values, need
                ),
            );
        }
    }
    let tb = g.table_base as u64;
    let tlast = tb + tables_needed - 1;
    if tb == 0 {
        cx.error(
            gl.table_base,
            sec,
            Some("table_base"),
            "table 0 is reserved (expected 1-32765, avoiding 253-255)".to_string(),
        );
    } else if tlast > RULE_PRIORITY_MAX as u64 {
        cx.error(
            gl.table_base,
            sec,
            Some("table_base"),
            format!(
                "tables/priorities {}-{} would reach past {}: moat's ip rules must come before the main table's rule (32766)",
                tb, tlast, RULE_PRIORITY_MAX
            ),
        );
    } else if tb <= 255 && tlast >= 253 {
        cx.error(
            gl.table_base,
            sec,
            Some("table_base"),
            format!("tables {}-{} would include 253-255 (the kernel's default, main and local tables)", tb, tlast),
        );
    }
    let qn = queues_needed;
    if qn > 0 && g.queue_base as u64 + qn - 1 > u16::MAX as u64 {
        cx.error(
            gl.queue_base,
            sec,
            Some("queue_base"),
            format!(
                "queues {}-{} would pass 65535 (shaped devices and their tunnels' pad queues need {})",
                g.queue_base,
                g.queue_base as u64 + qn - 1,
                qn
            ),
        );
    }
}

/// Read, parse and validate a configuration file.
///
/// A file that cannot be read, is larger than [`MAX_FILE_BYTES`], holds a NUL byte or is not
/// valid UCI syntax gives exactly one diagnostic.
pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Loaded, Vec<Diagnostic>> {
    check_file(path).into_result()
}

/// Like [`load_file`], but returns the warnings also when there are errors (for `moat check`).
pub fn check_file(path: impl AsRef<std::path::Path>) -> Report {
    use std::io::Read;
    let path = path.as_ref();
    let file = path.display().to_string();
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return whole_file(&file, 0, format!("cannot read the configuration: {}", e));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return whole_file(
            &file,
            0,
            format!("the file is larger than {} bytes; not a moat configuration", MAX_FILE_BYTES),
        );
    }
    check_bytes(&file, &bytes)
}

/// Parse and validate the bytes of a configuration file (`file` names it in diagnostics).
///
/// A NUL byte anywhere is refused first, naming its line: libuci silently drops the rest of a
/// line after a NUL, so such a file would not mean what it shows. A UCI syntax error gives one
/// diagnostic. Values that are not valid UTF-8 are errors of their option (see [`validate`]).
pub fn check_bytes(file: &str, bytes: &[u8]) -> Report {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        return whole_file(
            file,
            line,
            "NUL byte in the file (UCI would silently drop the rest of this line)".to_string(),
        );
    }
    match crate::uci::parse_bytes(file, bytes) {
        Ok(pkg) => validate(file, &pkg),
        Err(e) => whole_file(file, e.line, e.message),
    }
}

fn whole_file(file: &str, line: usize, message: String) -> Report {
    Report {
        model: None,
        errors: vec![Diagnostic { file: file.to_string(), line, section: None, option: None, message }],
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> Report {
        let pkg = crate::uci::parse("t.conf", text).expect("test config must be valid UCI");
        validate("t.conf", &pkg)
    }

    fn ok(text: &str) -> Loaded {
        match report(text).into_result() {
            Ok(l) => l,
            Err(e) => panic!("expected a valid model, got errors: {:#?}", e),
        }
    }

    /// Exactly one error, on `line`, about `option`, whose message contains `needle`.
    fn one_error(text: &str, line: usize, option: Option<&str>, needle: &str) -> Diagnostic {
        let r = report(text);
        assert!(r.model.is_none(), "model must be refused");
        assert_eq!(r.errors.len(), 1, "expected one error, got {:#?}", r.errors);
        let e = r.errors[0].clone();
        assert_eq!(e.line, line, "{e}");
        assert_eq!(e.option.as_deref(), option, "{e}");
        assert!(e.message.contains(needle), "message {:?} lacks {:?}", e.message, needle);
        e
    }

    const WG: &str =
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n";

    // ----- grammars -----

    #[test]
    fn booleans_accept_every_uci_spelling() {
        for t in ["1", "yes", "on", "true", "enabled"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "no", "off", "false", "disabled"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "2", "Yes", "TRUE", " 1", "1 ", "y", "1;"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn integers_are_strict_decimal() {
        assert_eq!(parse_uint("0", 10), Ok(0));
        assert_eq!(parse_uint("4200", 65535), Ok(4200));
        assert_eq!(parse_uint("4294967295", u32::MAX as u64), Ok(u32::MAX as u64));
        for bad in ["", "+1", "-1", " 1", "1 ", "01", "1_000", "1e3", "0x10", "12345678901", "１"] {
            assert!(parse_uint(bad, u64::MAX).is_err(), "{bad:?}");
        }
        assert!(parse_uint("65536", 65535).unwrap_err().contains("too large"));
    }

    #[test]
    fn masks_accept_hex_and_decimal() {
        assert_eq!(parse_mask("0x0f000000"), Ok(0x0f00_0000));
        assert_eq!(parse_mask("0XF"), Ok(0xf));
        assert_eq!(parse_mask("251658240"), Ok(0x0f00_0000));
        for bad in ["0x", "0x123456789", "0x0f00 0000", "-0x1", "0xg", "0x0f000000;", "4294967296"] {
            assert!(parse_mask(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_are_1_to_65535() {
        assert_eq!(parse_port("1"), Ok(1));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["0", "65536", "-1", "9040 ", "80;", ""] {
            assert!(parse_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_use_std_grammar_without_zones_or_brackets() {
        assert!(parse_ip("10.64.0.1").unwrap().is_ipv4());
        assert!(parse_ip("fd00::53").unwrap().is_ipv6());
        assert!(parse_ip("fe80::1%br-lan").unwrap_err().contains("zone"));
        assert!(parse_ip("[fd00::53]").unwrap_err().contains("brackets"));
        assert!(parse_ip("10.0.0.0/8").unwrap_err().contains("prefix"));
        for bad in ["", "10.64.0", "10.64.0.1 ", "010.64.0.1", "10.64.0.1:53", "$(reboot)", "::ffff:1.2.3.4;"] {
            assert!(parse_ip(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn interface_names() {
        assert!(IfName::new("wg0").is_ok());
        assert!(IfName::new("br-lan.10").is_ok());
        assert!(IfName::new("a23456789012345").is_ok(), "15 bytes is the kernel's limit");
        for bad in ["", ".", "..", "a234567890123456", "wg/0", "wg 0", "wg0;", "wg0'", "wg\u{0}0", "wg0\n", "wgö"] {
            assert!(IfName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn section_names() {
        assert!(Name::new("vpn_2").is_ok());
        assert!(Name::new(&"a".repeat(32)).is_ok());
        for bad in ["", "vp-n", "a b", &"a".repeat(33)] {
            assert!(Name::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(Mac::parse("AA:bb:CC:00:11:22").unwrap().to_string(), "aa:bb:cc:00:11:22");
        assert_eq!(Mac::parse("aa-bb-cc-00-11-22").unwrap(), Mac([0xaa, 0xbb, 0xcc, 0, 0x11, 0x22]));
        assert!(Mac::parse("01:00:5e:00:00:01").unwrap_err().contains("multicast"));
        assert!(Mac::parse("ff:ff:ff:ff:ff:ff").unwrap_err().contains("multicast"));
        assert!(Mac::parse("00:00:00:00:00:00").unwrap_err().contains("all-zero"));
        for bad in [
            "aa:bb:cc:00:11:22:33",
            "aa:bb:cc:00:11",
            "aa:bb:cc:00:11:2",
            "aa:bb-cc:00:11:22",
            "aabbcc001122",
            "aa:bb:cc:00:11:2g",
            " aa:bb:cc:00:11:22",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(parse_display_name("Bob's \"sleep\" monitor ☾").unwrap(), "Bob's \"sleep\" monitor ☾");
        assert!(parse_display_name(&"é".repeat(64)).is_ok(), "64 characters, not bytes");
        assert!(parse_display_name(&"a".repeat(65)).unwrap_err().contains("too long"));
        assert!(parse_display_name("a\tb").unwrap_err().contains("control"));
        assert!(parse_display_name("a\u{0}b").unwrap_err().contains("control"));
        assert!(parse_display_name("evil\u{202e}gpj.exe").unwrap_err().contains("control"));
        assert!(parse_display_name("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn pad_to_grammar() {
        assert_eq!(parse_pad_to("auto"), Ok(PadTo::Auto));
        assert_eq!(parse_pad_to("64"), Ok(PadTo::Bytes(64)));
        assert_eq!(parse_pad_to("1488"), Ok(PadTo::Bytes(1488)));
        for bad in ["48", "1000", "1500", "1504", "Auto", "", "0x400"] {
            assert!(parse_pad_to(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contiguous_masks() {
        for m in [1u32, 0x0f00_0000, 0xff00_0000, 0x8000_0000, u32::MAX, 0x3f00] {
            assert!(contiguous(m), "{m:#x}");
        }
        for m in [0u32, 0x0f0f_0000, 0x8000_0001, 0x5] {
            assert!(!contiguous(m), "{m:#x}");
        }
    }

    #[test]
    fn printable_escapes_and_caps() {
        assert_eq!(printable("a\nb\u{0}"), "a\\nb\\0");
        let long = printable(&"x".repeat(4096));
        assert!(long.chars().count() <= 65 && long.ends_with('…'));
    }

    #[test]
    fn whole_file_diagnostics_have_no_line() {
        let d = Diagnostic { file: "f".into(), line: 0, section: None, option: None, message: "m".into() };
        assert_eq!(d.to_string(), "f: m");
        let d = Diagnostic { file: "f".into(), line: 2, section: None, option: None, message: "m".into() };
        assert_eq!(d.to_string(), "f:2: m");
        let d = Diagnostic { file: "f".into(), line: 2, section: None, option: Some("o".into()), message: "m".into() };
        assert_eq!(d.to_string(), "f:2: option 'o': m");
        let d = Diagnostic {
            file: "f".into(),
            line: 3,
            section: Some("vpn".into()),
            option: Some("dns".into()),
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "f:3: section 'vpn' option 'dns': m");
    }

    // ----- defaults -----

    #[test]
    fn empty_file_gives_defaults() {
        let l = ok("");
        assert_eq!(l.model.global, Global::default());
        assert!(l.model.tunnels.is_empty() && l.model.devices.is_empty());
        let g = &l.model.global;
        assert!(g.enabled);
        assert_eq!(g.log_level, LogLevel::Info);
        assert_eq!(g.lan_devices, vec![IfName::new("br-lan").unwrap()]);
        assert_eq!((g.fwmark_mask, g.queue_base, g.table_base), (0x0f00_0000, 4200, 4200));
        assert!(!g.realtime, "real-time scheduling is opt-in");
    }

    #[test]
    fn tunnel_and_device_defaults() {
        let l = ok(&format!(
            "{WG}config tunnel 'tor'\n\toption type 'tor'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n"
        ));
        let m = &l.model;
        let TunnelKind::WireGuard(w) = &m.tunnels[0].kind else { panic!() };
        assert_eq!(w.pad_to, PadTo::Auto);
        assert!(!w.ipv6);
        assert!(w.pad_all);
        assert_eq!(w.cover_dst, Some("10.64.0.1".parse().unwrap()), "cover_dst defaults to dns");
        assert_eq!(m.tunnels[1].kind, TunnelKind::Tor(TorTunnel { trans_port: 9040, dns_port: 9053 }));
        let d = &m.devices[0];
        assert!(d.enabled);
        assert_eq!(d.name, "@device[0]", "an unnamed device is shown by its section address");
        assert_eq!(d.route, Route::Tunnel(Name::new("vpn").unwrap()));
        assert_eq!(d.shaper, None);
        assert_eq!(m.device_tunnel(d).unwrap().name.as_str(), "vpn");
    }

    #[test]
    fn every_global_option_is_read() {
        let l = ok("config moat 'main'\n\toption enabled 'off'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-iot'\n\toption fwmark_mask '0xf0000000'\n\toption queue_base '100'\n\toption table_base '300'\n\toption realtime '1'\n");
        let g = &l.model.global;
        assert!(!g.enabled);
        assert!(g.realtime);
        assert_eq!(g.log_level, LogLevel::Debug);
        assert_eq!(g.lan_devices.len(), 2);
        assert_eq!((g.fwmark_mask, g.queue_base, g.table_base), (0xf000_0000, 100, 300));
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn shaper_modes() {
        let l = ok("config shaper 'a'\n\toption mode 'constant'\n\toption rate '1'\nconfig shaper 'b'\n\toption mode 'stochastic'\n\toption rate '1000'\n");
        assert_eq!(l.model.shapers[0].mode, ShaperMode::Constant(ConstantParams { rate: 1 }));
        assert!(matches!(l.model.shapers[1].mode, ShaperMode::Stochastic(StochasticParams { rate: 1000, .. })));
        one_error("config shaper 'a'\n\toption mode 'constant'\n\toption rate '1001'\n", 3, Some("rate"), "1-1000");
        one_error("config shaper 'a'\n\toption mode 'constant'\n\toption rate '0'\n", 3, Some("rate"), "1-1000");
        one_error(
            "config shaper 'a'\n\toption mode 'cbr'\n\toption rate '5'\n",
            2,
            Some("mode"),
            "constant or stochastic",
        );
        one_error("config shaper 'a'\n\toption mode 'constant'\n", 1, Some("rate"), "missing");
        one_error("config shaper\n\toption mode 'constant'\n\toption rate '5'\n", 1, None, "needs a name");
    }

    // ----- warnings -----

    #[test]
    fn unknown_options_and_types_are_warnings() {
        let l = ok(&format!("{WG}\toption mtu '1420'\nconfig frob 'x'\n\toption y '1'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption colour 'red'\n"));
        let w: Vec<(usize, Option<&str>)> = l.warnings.iter().map(|d| (d.line, d.option.as_deref())).collect();
        assert_eq!(w, vec![(5, Some("mtu")), (6, None), (11, Some("colour"))]);
        assert!(l.warnings[1].message.contains("unknown section type 'frob'"));
    }

    #[test]
    fn options_of_another_tunnel_type_are_warnings() {
        let l = ok("config tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n\toption pad_to '128'\n\toption trans_port '1'\n");
        assert_eq!(l.warnings.len(), 2);
        assert!(l.warnings.iter().all(|w| w.message.contains("does not apply to a tunnel of type interface")));
    }

    #[test]
    fn warnings_survive_errors() {
        let r = report("config moat 'main'\n\toption typo '1'\n\toption log_level 'loud'\n");
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].option.as_deref(), Some("typo"));
    }

    // ----- errors -----

    #[test]
    fn wrong_values_name_line_section_and_option() {
        let e = one_error("config moat 'main'\n\toption enabled 'maybe'\n", 2, Some("enabled"), "not a boolean");
        assert_eq!(e.section.as_deref(), Some("main"));
        assert_eq!(e.file, "t.conf");
        one_error(
            "config moat 'main'\n\toption log_level 'loud'\n",
            2,
            Some("log_level"),
            "error, warn, info or debug",
        );
        one_error("config moat 'main'\n\tlist lan_device ''\n", 2, Some("lan_device"), "interface name");
        one_error(
            "config moat 'main'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br lan'\n",
            3,
            Some("lan_device"),
            "interface name",
        );
        one_error(
            "config moat 'main'\n\toption lan_device 'br-lan br-iot'\n",
            2,
            Some("lan_device"),
            "one `list lan_device '...'` line per value",
        );
        one_error(
            "config device\n\toption mac 'aa:bb:cc:00:11:22 aa:bb:cc:00:11:23'\n\toption route 'direct'\n",
            2,
            Some("mac"),
            "one `list mac",
        );
    }

    #[test]
    fn all_errors_are_collected() {
        let r = report("config moat 'main'\n\toption enabled 'x'\n\toption queue_base '-1'\nconfig tunnel 'vpn'\n\toption type 'gre'\nconfig device\n\tlist mac 'zz'\n\toption route 'block'\n");
        let lines: Vec<usize> = r.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 7]);
    }

    #[test]
    fn single_options_given_as_list() {
        one_error("config moat 'main'\n\tlist log_level 'info'\n", 2, Some("log_level"), "single value");
    }

    #[test]
    fn two_main_sections() {
        one_error("config moat 'main'\nconfig moat 'other'\n", 2, None, "only one is allowed");
        one_error("config moat\nconfig moat\n", 2, None, "only one is allowed");
    }

    #[test]
    fn same_name_with_another_type_is_refused_by_the_reader() {
        let r =
            check_bytes("f", b"config tunnel 'x'\n\toption type 'tor'\nconfig shaper 'x'\n\toption mode 'constant'\n");
        assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
        assert_eq!(r.errors[0].line, 3);
    }

    #[test]
    fn redeclared_section_name_of_the_same_type() {
        let e = one_error(
            "config tunnel 'vpn'\n\toption type 'tor'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig tunnel 'vpn'\n\toption trans_port '9100'\n",
            7,
            None,
            "declared more than once",
        );
        assert_eq!(e.section.as_deref(), Some("vpn"));
    }

    #[test]
    fn tunnel_rules() {
        one_error("config tunnel 'vpn'\n\toption device 'wg0'\n", 1, Some("type"), "missing");
        one_error("config tunnel 'vpn'\n\toption type 'gre'\n", 2, Some("type"), "wireguard, interface or tor");
        one_error("config tunnel 'vpn'\n\toption type 'wireguard'\n", 1, Some("device"), "missing");
        one_error("config tunnel\n\toption type 'tor'\n", 1, None, "needs a name");
        one_error("config tunnel 'direct'\n\toption type 'tor'\n", 1, None, "reserved");
        one_error("config tunnel 'block'\n\toption type 'tor'\n", 1, None, "reserved");
        one_error(&format!("config tunnel '{}'\n\toption type 'tor'\n", "t".repeat(33)), 1, None, "1-32");
    }

    #[test]
    fn dns_and_cover_dst() {
        one_error(
            &format!("{WG}\toption ipv6 '0'\n").replace("10.64.0.1", "fd00::53"),
            4,
            Some("dns"),
            "does not carry IPv6",
        );
        let l = ok(&format!("{WG}\toption ipv6 '1'\n").replace("10.64.0.1", "fd00::53"));
        let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
        assert_eq!(w.cover_dst, None, "an IPv6 dns is no cover destination");
        one_error(&WG.replace("10.64.0.1", "127.0.0.1"), 4, Some("dns"), "unicast");
        one_error(&WG.replace("10.64.0.1", "0.0.0.0"), 4, Some("dns"), "unicast");
        one_error(&WG.replace("10.64.0.1", "224.0.0.251"), 4, Some("dns"), "unicast");
        one_error(&format!("{WG}\toption cover_dst 'fd00::1'\n"), 5, Some("cover_dst"), "IPv4");
        one_error(&format!("{WG}\toption cover_dst '255.255.255.255'\n"), 5, Some("cover_dst"), "unicast");
        let l = ok(&format!("{WG}\toption cover_dst '10.64.0.9'\n"));
        let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
        assert_eq!(w.cover_dst, Some("10.64.0.9".parse().unwrap()));
    }

    #[test]
    fn pad_to_in_config() {
        one_error(&format!("{WG}\toption pad_to '1500'\n"), 5, Some("pad_to"), "multiple of 16");
        one_error(&format!("{WG}\toption pad_to '32'\n"), 5, Some("pad_to"), "multiple of 16");
        let l = ok(&format!("{WG}\toption pad_to '1280'\n\toption pad_all '0'\n"));
        let TunnelKind::WireGuard(w) = &l.model.tunnels[0].kind else { panic!() };
        assert_eq!((w.pad_to, w.pad_all), (PadTo::Bytes(1280), false));
    }

    #[test]
    fn tor_ports() {
        one_error(
            "config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '9053'\n",
            3,
            Some("dns_port"),
            "different ports",
        );
        one_error(
            "config tunnel 'tor'\n\toption type 'tor'\n\toption dns_port '9040'\n",
            3,
            Some("dns_port"),
            "different ports",
        );
        one_error("config tunnel 'tor'\n\toption type 'tor'\n\toption dns_port '0'\n", 3, Some("dns_port"), "port");
        let l = ok("config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '9140'\n\toption dns_port '9153'\n");
        assert_eq!(l.model.tunnels[0].kind, TunnelKind::Tor(TorTunnel { trans_port: 9140, dns_port: 9153 }));
    }

    #[test]
    fn two_tunnels_on_one_device() {
        let e = one_error(
            &format!("{WG}config tunnel 'vpn2'\n\toption type 'interface'\n\toption device 'wg0'\n"),
            7,
            Some("device"),
            "already used by tunnel 'vpn' (line 3)",
        );
        assert_eq!(e.section.as_deref(), Some("vpn2"));
    }

    #[test]
    fn tunnel_on_a_lan_device() {
        one_error(
            "config tunnel 'x'\n\toption type 'interface'\n\toption device 'br-lan'\n",
            3,
            Some("device"),
            "lan_device",
        );
    }

    #[test]
    fn mac_in_two_devices_names_both() {
        let e = one_error(
            "config device 'a'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig device\n\toption name 'B'\n\tlist mac 'AA-BB-CC-00-11-22'\n\toption route 'block'\n",
            6,
            Some("mac"),
            "already listed in device section 'a' (line 2)",
        );
        assert_eq!(e.section.as_deref(), Some("@device[1]"));
        one_error(
            "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n",
            3,
            Some("mac"),
            "twice",
        );
    }

    #[test]
    fn mac_clash_is_found_even_if_the_device_has_other_errors() {
        let r = report("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption enabled 'perhaps'\n");
        let got: Vec<(usize, Option<&str>)> = r.errors.iter().map(|e| (e.line, e.option.as_deref())).collect();
        assert_eq!(got, vec![(4, Some("route")), (5, Some("mac")), (6, Some("enabled"))]);
    }

    #[test]
    fn device_rules() {
        one_error("config device\n\toption route 'direct'\n", 1, Some("mac"), "missing");
        one_error("config device\n\tlist mac 'aa:bb:cc:00:11:22'\n", 1, Some("route"), "missing");
        one_error(
            "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n",
            3,
            Some("route"),
            "names no tunnel section",
        );
        one_error(
            "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'v p n'\n",
            3,
            Some("route"),
            "not a route",
        );
        one_error(
            "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption enabled '2'\n",
            4,
            Some("enabled"),
            "boolean",
        );
        let l = ok("config device\n\toption mac 'aa:bb:cc:00:11:22'\n\toption route 'direct'\n\toption enabled 'no'\n");
        assert!(!l.model.devices[0].enabled);
        assert_eq!(l.model.devices[0].macs.len(), 1, "a single `option mac` is accepted too");
    }

    #[test]
    fn references_to_an_invalid_tunnel_are_not_reported_twice() {
        let r = report("config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0;'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n\toption shaper 's'\nconfig shaper 's'\n\toption mode 'constant'\n\toption rate '9999'\n");
        let got: Vec<(usize, Option<&str>)> = r.errors.iter().map(|e| (e.line, e.option.as_deref())).collect();
        assert_eq!(got, vec![(3, Some("device")), (10, Some("rate"))]);
    }

    #[test]
    fn shaper_references() {
        let dev = |route: &str, shaper: &str| {
            format!(
                "config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route '{route}'\n\toption shaper '{shaper}'\n"
            )
        };
        let sh = "config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n";
        // fine: wireguard route with a shaper; device lines start at 8
        let l = ok(&format!("{WG}{sh}{}", dev("vpn", "steady")));
        assert_eq!(l.model.devices[0].shaper, Some(Name::new("steady").unwrap()));
        one_error(&format!("{WG}{sh}{}", dev("vpn", "nope")), 11, Some("shaper"), "names no shaper section");
        one_error(&format!("{WG}{sh}{}", dev("direct", "steady")), 11, Some("shaper"), "route is direct");
        one_error(&format!("{WG}{sh}{}", dev("block", "steady")), 11, Some("shaper"), "route is block");
        let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
        one_error(&format!("{tor}{sh}{}", dev("tor", "steady")), 9, Some("shaper"), "type tor");
        let ifc = "config tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n";
        one_error(&format!("{ifc}{sh}{}", dev("o", "steady")), 10, Some("shaper"), "type interface");
        let nodns = "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n";
        one_error(&format!("{nodns}{sh}{}", dev("vpn", "steady")), 10, Some("shaper"), "cover_dst");
        // a disabled device is still checked
        one_error(
            &format!("{WG}{sh}{}\toption enabled '0'\n", dev("direct", "steady")),
            11,
            Some("shaper"),
            "route is direct",
        );
    }

    // ----- marks, tables, queues -----

    fn main_with(opt: &str, val: &str) -> String {
        format!("config moat 'main'\n\toption {opt} '{val}'\n")
    }

    const SH: &str = "config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n";

    /// A device section with MAC number `i`.
    fn dev(i: usize, route: &str, shaper: Option<&str>) -> String {
        let mut t = format!(
            "config device\n\tlist mac 'aa:bb:cc:00:{:02x}:{:02x}'\n\toption route '{route}'\n",
            i / 256,
            i % 256
        );
        if let Some(s) = shaper {
            t += &format!("\toption shaper '{s}'\n");
        }
        t
    }

    #[test]
    fn fwmark_mask_rules() {
        one_error(&main_with("fwmark_mask", "0"), 2, Some("fwmark_mask"), "zero");
        one_error(&main_with("fwmark_mask", "0x0f0f0000"), 2, Some("fwmark_mask"), "contiguous");
        one_error(&main_with("fwmark_mask", "0x00f00000"), 2, Some("fwmark_mask"), "pbr");
        one_error(&main_with("fwmark_mask", "0x00000f00"), 2, Some("fwmark_mask"), "mwan3");
        ok(&main_with("fwmark_mask", "0xf0000000"));
        ok(&main_with("fwmark_mask", "0x000000ff"));
        ok(&main_with("fwmark_mask", "0x0000c000"));
        // One bit = one value: enough for one route in use, not for a route and a shaped device.
        ok(&format!("{}{WG}{}", main_with("fwmark_mask", "0x01000000"), dev(1, "vpn", None)));
        one_error(
            &format!("{}{WG}{SH}{}", main_with("fwmark_mask", "0x01000000"), dev(1, "vpn", Some("steady"))),
            2,
            Some("fwmark_mask"),
            "need 2 mark values",
        );
        // Two bits = three values: vpn, block, one shaped device; a second shaped device is too many.
        let three = format!(
            "{}{WG}{SH}{}{}",
            main_with("fwmark_mask", "0x03000000"),
            dev(1, "vpn", Some("steady")),
            dev(2, "block", None)
        );
        ok(&three);
        one_error(&format!("{three}{}", dev(3, "vpn", Some("steady"))), 2, Some("fwmark_mask"), "need 4 mark values");
        // Disabled devices use no marks.
        ok(&format!("{three}{}\toption enabled '0'\n", dev(3, "vpn", Some("steady"))));
    }

    #[test]
    fn default_mask_holds_15_values() {
        let mut text = format!("{WG}{SH}");
        for i in 0..14 {
            text += &dev(i, "vpn", Some("steady"));
        }
        let l = ok(&text);
        assert_eq!(l.model.mark_values_needed(), 15);
        text += &dev(14, "vpn", Some("steady"));
        let e = one_error(&text, 0, Some("fwmark_mask"), "need 16 mark values");
        assert_eq!(e.section, None, "no main section: the default mask is at fault");
    }

    #[test]
    fn table_base_rules() {
        let ifc = |n: usize| format!("config tunnel 't{n}'\n\toption type 'interface'\n\toption device 'tun{n}'\n");
        let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
        one_error(&main_with("table_base", "0"), 2, Some("table_base"), "reserved");
        one_error(&main_with("table_base", "253"), 2, Some("table_base"), "253-255");
        one_error(&main_with("table_base", "255"), 2, Some("table_base"), "253-255");
        ok(&main_with("table_base", "252"));
        ok(&format!("{}{}{tor}", main_with("table_base", "252"), ifc(0))); // tor needs no table
        one_error(&format!("{}{}{}", main_with("table_base", "252"), ifc(0), ifc(1)), 2, Some("table_base"), "253-255");
        ok(&main_with("table_base", "256"));
        ok(&format!("{}{}", main_with("table_base", "32765"), ifc(0)));
        one_error(&format!("{}{}{}", main_with("table_base", "32765"), ifc(0), ifc(1)), 2, Some("table_base"), "32766");
        one_error(&main_with("table_base", "4294967295"), 2, Some("table_base"), "32766");
        one_error(&main_with("table_base", "4294967296"), 2, Some("table_base"), "too large");
    }

    #[test]
    fn queue_base_rules() {
        ok(&main_with("queue_base", "0"));
        ok(&main_with("queue_base", "65535"));
        one_error(&main_with("queue_base", "65536"), 2, Some("queue_base"), "too large");
        // One shaped device on a pad_all tunnel: its queue and the tunnel's pad queue.
        let shaped = format!("{WG}{SH}{}", dev(1, "vpn", Some("steady")));
        ok(&format!("{}{shaped}", main_with("queue_base", "65534")));
        one_error(&format!("{}{shaped}", main_with("queue_base", "65535")), 2, Some("queue_base"), "65535");
        let no_pad = format!("{WG}\toption pad_all '0'\n{SH}{}", dev(1, "vpn", Some("steady")));
        ok(&format!("{}{no_pad}", main_with("queue_base", "65535")));
    }

    #[test]
    fn budgets_follow_the_plan_layout() {
        let tor = "config tunnel 'tor'\n\toption type 'tor'\n";
        let unused = "config tunnel 'spare'\n\toption type 'interface'\n\toption device 'tun9'\n";
        let l = ok(&format!(
            "{WG}{tor}{unused}{SH}{}{}{}{}{}",
            dev(1, "vpn", Some("steady")),
            dev(2, "vpn", Some("steady")),
            dev(3, "tor", None),
            dev(4, "block", None),
            dev(5, "direct", None)
        ));
        // routes in use: vpn, tor, block (not spare); plus two shaped devices
        assert_eq!(l.model.mark_values_needed(), 5);
        // vpn and spare have tables; tor has none
        assert_eq!(l.model.tables_needed(), 2);
        // two shaped devices and vpn's pad queue
        assert_eq!(l.model.queues_needed(), 3);
        assert_eq!(l.model.active_devices().count(), 5);
    }

    #[test]
    fn nul_bytes_are_refused_at_their_line() {
        let r = check_bytes("f", b"config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg\x000'\n");
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, 3);
        assert!(r.errors[0].message.contains("NUL"));
        // even in a comment: libuci would drop the rest of the line, so the file is not what it shows
        assert_eq!(check_bytes("f", b"# x\x00\nconfig moat 'main'\n").errors[0].line, 1);
    }

    #[test]
    fn non_utf8_values_are_errors_of_their_option() {
        let r = check_bytes("f", b"config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg\xff'\n");
        assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
        assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (3, Some("device")));
        assert!(r.errors[0].message.contains("UTF-8"));
        let r = check_bytes("f", b"config device\n\tlist mac '\xfe'\n\toption route 'direct'\n");
        assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (2, Some("mac")));
        // bytes in a comment are nobody's value
        assert!(check_bytes("f", b"# caf\xe9\nconfig moat 'main'\n").errors.is_empty());
    }

    #[test]
    fn syntax_errors_are_one_diagnostic() {
        let r = check_bytes("f", b"config moat 'main'\n\toption enabled '1\n");
        assert_eq!(r.errors.len(), 1);
        assert!(r.model.is_none());
        assert_eq!(r.errors[0].option, None);
    }

    #[test]
    fn hostile_values_never_reach_the_model() {
        for v in ["wg0'", "wg0;", "wg0\n", "{wg0}", "$(id)", "`id`", "wg0 ", "wg/0", "wg\u{7f}"] {
            let text = format!(
                "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device \"{}\"\n",
                v.replace('"', "\\\"")
            );
            let r = report(&text);
            assert_eq!(r.errors.len(), 1, "{v:?}: {:#?}", r.errors);
            assert_eq!((r.errors[0].line, r.errors[0].option.as_deref()), (3, Some("device")), "{v:?}");
        }
    }
}
