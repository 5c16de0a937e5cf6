//! Lease file parsers (pure): dnsmasq's `/tmp/dhcp.leases` and odhcpd's state file.
//!
//! Both files are written by other daemons and read here as untrusted text: lines that do not
//! fit the format are skipped, hostnames are kept only if printable and short.

use std::net::IpAddr;

use crate::config::Mac;

/// One address lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Client MAC (for odhcpd IPv6 leases: taken from a link-layer DUID, when it holds one).
    pub mac: Option<Mac>,
    /// Leased address.
    pub addr: IpAddr,
    /// Client's hostname, if it sent a usable one.
    pub hostname: Option<String>,
    /// Unix time the lease expires; `None` = never (static lease).
    pub expires: Option<u64>,
    /// DHCPv6 DUID (hex), for leases that carry one.
    pub duid: Option<String>,
}

/// Longest hostname kept (DNS label limits: 253 for a name).
const MAX_HOSTNAME: usize = 253;

fn hostname(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s != "*"
        && s != "-"
        && s.len() <= MAX_HOSTNAME
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_string())
}

/// dnsmasq's lease file. IPv4 lines: `EXPIRY MAC IP HOSTNAME CLIENTID`; its IPv6 lines
/// (`EXPIRY IAID IP6 HOSTNAME DUID`, after a `duid SERVERDUID` line) have no MAC and are kept
/// with the DUID. `EXPIRY` 0 means infinite.
pub fn parse_dnsmasq(text: &str) -> Vec<Lease> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 4 || f[0] == "duid" {
            continue;
        }
        let (Ok(exp), Ok(addr)) = (f[0].parse::<u64>(), f[2].parse::<IpAddr>()) else {
            continue;
        };
        let mac = Mac::parse(f[1]).ok();
        let duid = match (&mac, f.get(4)) {
            (None, Some(d)) if d.len() <= 260 && d.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') => {
                Some(d.replace(':', "").to_ascii_lowercase())
            }
            _ => None,
        };
        if mac.is_none() && !addr.is_ipv6() {
            continue;
        }
        let mac = mac.or_else(|| duid.as_deref().and_then(mac_from_duid));
        out.push(Lease { mac, addr, hostname: hostname(f[3]), expires: (exp != 0).then_some(exp), duid });
    }
    out
}

/// The MAC inside a link-layer DUID (hex): DUID-LLT (type 1) or DUID-LL (type 3) over Ethernet
/// (hardware type 1). Other DUIDs (vendor, UUID) hold none.
pub fn mac_from_duid(hex: &str) -> Option<Mac> {
    let b = unhex(hex)?;
    let mac = match b.as_slice() {
        [0, 1, 0, 1, _, _, _, _, m @ ..] if m.len() == 6 => m,
        [0, 3, 0, 1, m @ ..] if m.len() == 6 => m,
        _ => return None,
    };
    Some(Mac([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 260 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// odhcpd's state file (`option leasefile`, default `/tmp/hosts/odhcpd`): per lease a comment
/// line `# IFACE DUID IAID HOSTNAME VALID_UNTIL HOSTID PREFIXLEN ADDR/LEN...` (IAID `ipv4` and
/// DUID = the MAC in hex for odhcpd's own DHCPv4 leases; VALID_UNTIL -1 = infinite, 0 =
/// expired), then hosts-file lines for the named ones, which carry nothing new and are skipped.
pub fn parse_odhcpd(text: &str) -> Vec<Lease> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# ") else { continue };
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let (duid, iaid, name) = (f[1], f[2], f[3]);
        let Ok(valid) = f[4].parse::<i64>() else { continue };
        if valid == 0 {
            continue;
        }
        let mac = if iaid == "ipv4" {
            unhex(duid).filter(|b| b.len() == 6).map(|b| Mac([b[0], b[1], b[2], b[3], b[4], b[5]]))
        } else {
            mac_from_duid(duid)
        };
        let duid = (iaid != "ipv4" && unhex(duid).is_some()).then(|| duid.to_ascii_lowercase());
        for a in &f[7..] {
            let Some(addr) = a.split('/').next().and_then(|x| x.parse::<IpAddr>().ok()) else { continue };
            out.push(Lease {
                mac,
                addr,
                hostname: hostname(name),
                expires: u64::try_from(valid).ok(),
                duid: duid.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsmasq_v4_and_v6_lines() {
        let t = "1764620000 02:00:00:00:01:0a 192.168.1.10 cam 01:02:00:00:00:01:0a\n\
                 0 02:00:00:00:01:0b 192.168.1.11 * *\n\
                 duid 00:01:00:01:2c:00:00:00:02:00:00:00:00:01\n\
                 1764620001 12345 fd00::10 laptop 00:03:00:01:02:00:00:00:01:0c\n\
                 garbage line\n\
                 1 zz:00 192.168.1.12 x *\n\
                 1 02:00:00:00:01:0d 192.168.1.13 bad\x01name *\n";
        let l = parse_dnsmasq(t);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].mac.unwrap().to_string(), "02:00:00:00:01:0a");
        assert_eq!(l[0].hostname.as_deref(), Some("cam"));
        assert_eq!(l[0].expires, Some(1764620000));
        assert_eq!(l[1].hostname, None);
        assert_eq!(l[1].expires, None);
        assert_eq!(l[2].addr.to_string(), "fd00::10");
        assert_eq!(l[2].mac.unwrap().to_string(), "02:00:00:00:01:0c");
        assert_eq!(l[3].hostname, None);
    }

    #[test]
    fn odhcpd_state_lines() {
        let t = "# br-lan 000100012c0000000200000001aa 1 phone 1764620100 2a 128 fd00::2a/128 fd00::2b/128\n\
                 fd00::2a\tphone\n\
                 # br-lan 0002000012345678 7 - -1 3 128 fd00::3/128\n\
                 # br-lan 020000000155 ipv4 tv 1764620200 c0a8010b 32 192.168.1.11/32\n\
                 # br-lan 000300010200000001bb 2 gone 0 4 128 fd00::4/128\n\
                 # short line\n";
        let l = parse_odhcpd(t);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].mac.unwrap().to_string(), "02:00:00:00:01:aa");
        assert_eq!(l[1].addr.to_string(), "fd00::2b");
        assert_eq!(l[2].mac, None);
        assert_eq!(l[2].expires, None);
        assert_eq!(l[2].hostname, None);
        assert_eq!(l[3].mac.unwrap().to_string(), "02:00:00:00:01:55");
        assert_eq!(l[3].duid, None);
    }

    #[test]
    fn hostile_lines_never_panic() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 90) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let alphabet = b"# 0123456789abcdef:./-ipv4 \n\t*zf";
                s.push(alphabet[(seed >> 16) as usize % alphabet.len()] as char);
            }
            let _ = parse_dnsmasq(&s);
            let _ = parse_odhcpd(&s);
        }
    }
}
