//! The model's types: what each section of `/etc/config/moat` means once validated, defaults and limits.

use std::net::IpAddr;

use super::{Diagnostic, IfName, Mac, Name};

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
    /// time under CPU load (`sys::set_realtime` says what it costs).
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
    /// Line of `option device`: the plan's checks of the device against the running system
    /// (WAN uplink, a `lan_device`, link type) name it.
    pub device_line: usize,
    /// `companion` (wireguard only): the VPN server's `moat companion` address inside the
    /// tunnel, asked to shape the downstream; `companion_required` blocks the tunnel's shaped
    /// devices while it does not.
    pub companion: Option<Companion>,
    /// Line of `option dns`, or of the section's `config` statement when absent: the plan's
    /// checks of `dns` against the running system name it.
    pub dns_line: usize,
    /// Line of `option pad_to`, or of the section's `config` statement when absent (`auto`): the
    /// plan's checks of `pad_to` against the tunnel's MTU name it.
    pub pad_to_line: usize,
}

/// A tunnel's companion (`option companion`, `option companion_required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Companion {
    /// The companion's address inside the tunnel (cover packets and the request go there).
    pub addr: IpAddr,
    /// `companion_required` (default 0): block shaped devices while the downstream is not shaped.
    pub required: bool,
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
    /// `rate`: packets per second of the schedule, i.e. of all devices of one tunnel naming this
    /// shaper together (one clock per tunnel and shaper), upstream only (downloads are not shaped
    /// until a server-side companion exists).
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
    /// `pace`: seconds of decoy per 100 seconds of real activity in the last `pace_window` that
    /// the shaper tops decoys up to (0-1000, default 100; 0 = only `decoys` per idle hour).
    pub pace: u32,
    /// `pace_window`: the sliding window real activity and decoy time are summed over, seconds
    /// (60-86400, default 3600).
    pub pace_window: u32,
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

/// A configuration's sections as read, before (or without) the checks across sections. Anyone may
/// build one; nothing downstream takes one: only validation turns it into a [`Model`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The `main` section (defaults if absent).
    pub global: Global,
    /// Tunnels in file order.
    pub tunnels: Vec<Tunnel>,
    /// Shapers in file order.
    pub shapers: Vec<Shaper>,
    /// Devices in file order.
    pub devices: Vec<Device>,
}

impl Draft {
    /// Look a tunnel up by section name.
    pub fn tunnel(&self, name: &Name) -> Option<&Tunnel> {
        self.tunnels.iter().find(|t| &t.name == name)
    }
    /// Look a shaper up by section name.
    pub fn shaper(&self, name: &Name) -> Option<&Shaper> {
        self.shapers.iter().find(|s| &s.name == name)
    }
    /// The devices moat acts on (`enabled 1`), in file order.
    pub fn active_devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(|d| d.enabled)
    }
    /// The tunnel a device is routed into, if its route names one that exists.
    pub fn device_tunnel(&self, d: &Device) -> Option<&Tunnel> {
        match &d.route {
            Route::Tunnel(n) => self.tunnel(n),
            _ => None,
        }
    }
}

/// The whole validated configuration: a [`Draft`] that passed every check of this module.
///
/// Only validation produces one ([`validate`](super::validate) and the loaders built on it:
/// [`from_uci`](super::from_uci), [`load_file`](super::load_file), [`check_file`](super::check_file),
/// [`check_bytes`](super::check_bytes)): its one field is private, there is no public constructor
/// and no mutable access (it is read through `Deref<Target = Draft>`). So whoever holds a `Model`,
/// the plan above all, may trust what validation guarantees without checking it again: every value
/// is in its grammar and range, every reference names a valid section of the right type, MACs and
/// tunnel devices are unique, no tunnel is a LAN device, and the marks, tables and queues the model
/// needs fit `fwmark_mask`, `table_base` and `queue_base`. What needs the running system (an MTU,
/// the router's own addresses) cannot be checked here and is the plan's to check.
///
/// Unit tests of this crate (`cfg(test)` only) may build one with `Model::unchecked` and change
/// it in place, to give the plan exactly the model a test needs.
///
/// Neither building one nor changing one compiles outside this module:
/// ```compile_fail
/// fn forge(d: moat::config::Draft) -> moat::config::Model {
///     moat::config::Model(d)
/// }
/// ```
/// ```compile_fail
/// fn tamper(m: &mut moat::config::Model) {
///     m.devices.clear();
/// }
/// ```
/// Reading one does:
/// ```
/// fn count(m: &moat::config::Model) -> usize {
///     m.devices.len()
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model(Draft);

impl Model {
    /// Seal a draft that validation accepted. Only `checks.rs` calls this.
    pub(super) fn validated(draft: Draft) -> Model {
        Model(draft)
    }
    /// The sections, no longer vouched for.
    pub fn into_draft(self) -> Draft {
        self.0
    }
    /// TEST ONLY: a model that skipped validation (unit tests of the plan build models directly).
    #[cfg(test)]
    pub fn unchecked(draft: Draft) -> Model {
        Model(draft)
    }
}

impl std::ops::Deref for Model {
    type Target = Draft;
    fn deref(&self) -> &Draft {
        &self.0
    }
}

/// TEST ONLY: unit tests may change a model in place; no code outside `cfg(test)` can.
#[cfg(test)]
impl std::ops::DerefMut for Model {
    fn deref_mut(&mut self) -> &mut Draft {
        &mut self.0
    }
}

/// A successfully built model plus the warnings (options that do not apply, …) found on the way.
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
/// Smallest explicit `pad_to`: a multiple of 16 (WireGuard's padding unit) with room above the
/// shaper's floor [`crate::shaper::MIN_PAD_TO`] (an IPv6 header), which it must never go below.
pub const PAD_TO_MIN: u16 = 64;
const _: () = assert!(PAD_TO_MIN >= crate::shaper::MIN_PAD_TO && PAD_TO_MIN % 16 == 0);
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
            lan_devices: vec![IfName::new(DEFAULT_LAN_DEVICE).expect("the default LAN device is a valid name")],
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
