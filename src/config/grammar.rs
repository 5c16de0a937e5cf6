//! Value grammars: every value that can reach nft text or a command line is parsed here into a
//! type whose constructor checks a strict grammar. Pure; usable by other modules.

use std::fmt;
use std::net::IpAddr;

use super::{printable, LogLevel, PadTo, DISPLAY_NAME_MAX, PAD_TO_MAX, PAD_TO_MIN, RATE_MAX};

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
pub(super) fn unicast_peer(ip: IpAddr) -> Result<IpAddr, String> {
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
pub(super) fn is_bidi_control(c: char) -> bool {
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
    if v < PAD_TO_MIN as u64 || v > PAD_TO_MAX as u64 {
        return Err(format!(
            "pad_to {} is out of range (expected auto or a multiple of 16 from {} to {})",
            v, PAD_TO_MIN, PAD_TO_MAX
        ));
    }
    if v % 16 != 0 {
        // In range, so the multiple of 16 below it is too (PAD_TO_MIN is one).
        return Err(format!("pad_to {} is not a multiple of 16 (try {} or auto)", v, v & !15));
    }
    Ok(PadTo::Bytes(v as u16))
}

pub fn parse_log_level(s: &str) -> Result<LogLevel, String> {
    match s {
        "error" => Ok(LogLevel::Error),
        "warn" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        _ => Err(format!("'{}' is not a log level (expected error, warn, info or debug)", printable(s))),
    }
}

pub(super) fn parse_rate(s: &str) -> Result<u32, String> {
    match parse_uint(s, u32::MAX as u64) {
        Ok(v) if (1..=RATE_MAX as u64).contains(&v) => Ok(v as u32),
        Ok(v) => Err(format!("rate {} is out of range (expected 1-{} packets per second)", v, RATE_MAX)),
        Err(_) => Err(format!("'{}' is not a rate (expected 1-{} packets per second)", printable(s), RATE_MAX)),
    }
}

/// Is `m` a single run of consecutive one bits?
pub(super) fn contiguous(m: u32) -> bool {
    if m == 0 {
        return false;
    }
    let shifted = m >> m.trailing_zeros();
    shifted & shifted.wrapping_add(1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostic, Kind};

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
        // In range but not a multiple of 16: the multiple below it is offered.
        assert_eq!(parse_pad_to("1420"), Err("pad_to 1420 is not a multiple of 16 (try 1408 or auto)".into()));
        assert_eq!(parse_pad_to("65"), Err("pad_to 65 is not a multiple of 16 (try 64 or auto)".into()));
        assert_eq!(parse_pad_to("1487"), Err("pad_to 1487 is not a multiple of 16 (try 1472 or auto)".into()));
        // Out of range, multiple of 16 or not: the bounds.
        let range = "is out of range (expected auto or a multiple of 16 from 64 to 1488)";
        for bad in ["48", "63", "1489", "1500", "1504", "0"] {
            assert_eq!(parse_pad_to(bad), Err(format!("pad_to {bad} {range}")), "{bad:?}");
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
        let d = Diagnostic {
            kind: Kind::Value,
            file: "f".into(),
            line: 0,
            section: None,
            option: None,
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "f: m");
        let d = Diagnostic {
            kind: Kind::Value,
            file: "f".into(),
            line: 2,
            section: None,
            option: None,
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "f:2: m");
        let d = Diagnostic {
            kind: Kind::Value,
            file: "f".into(),
            line: 2,
            section: None,
            option: Some("o".into()),
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "f:2: option 'o': m");
        let d = Diagnostic {
            kind: Kind::Conflict,
            file: "f".into(),
            line: 3,
            section: Some("vpn".into()),
            option: Some("dns".into()),
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "f:3: section 'vpn' option 'dns': m");
    }
}
