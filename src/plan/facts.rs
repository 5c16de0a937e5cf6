//! Interface facts: what the system looks like, as far as the plan needs to know.
//!
//! [`Facts`] is plain data. It comes either from probing the live system read-only
//! (`crate::daemon::probe`: rtnetlink link and address dumps, a `nft -c` check for the `queue`
//! statement) or from a small `key=value` file ([`Facts::parse`]) so that `moat check`
//! and the golden tests are deterministic.
//!
//! Facts file format (one record per line, `#` comments, blank lines ignored):
//! ```text
//! nft_queue=0
//! interface=br-lan state=up mtu=1500 addr=192.168.1.1/24,fd00::1/64
//! interface=wg0 state=down mtu=1420 link=none
//! default_route=pppoe-wan
//! ```
//! An interface that is not listed does not exist. `link` is the interface's link type
//! (`ether`, `none` as WireGuard/tun, `ppp`, `loopback`, `ieee80211`, or the ARPHRD number;
//! absent = unknown); `default_route` lists the devices carrying a default route of the main
//! table (IPv4 or IPv6), i.e. the WAN uplink(s).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::config::IfName;

/// One network interface as seen on the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with prefix length.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Link type (ARPHRD_*), if known.
    pub link: Option<u16>,
}

/// ARPHRD_* names the facts file uses for [`Iface::link`].
const LINK_NAMES: &[(&str, u16)] =
    &[("ether", 1), ("ppp", 512), ("loopback", 772), ("ieee80211", 801), ("none", 65534)];

/// Link types that are not a tunnel's: Ethernet (also bridges, VLANs, veth; a `tap` tunnel
/// too), loopback and 802.11.
pub fn non_tunnel_link(link: u16) -> Option<&'static str> {
    match link {
        1 => Some("ether"),
        772 => Some("loopback"),
        801..=803 => Some("ieee80211"),
        _ => None,
    }
}

/// What the system looks like (input of [`crate::plan::build`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Existing interfaces by name.
    pub interfaces: BTreeMap<String, Iface>,
    /// Whether the kernel accepts the nft `queue` statement (CONFIG_NFT_QUEUE).
    pub nft_queue: bool,
    /// Devices carrying a default route of the main table (the WAN uplinks), sorted.
    pub default_route: Vec<String>,
}

impl Facts {
    /// Look up an interface; `None` = does not exist.
    pub fn iface(&self, name: &IfName) -> Option<&Iface> {
        self.interfaces.get(name.as_str())
    }

    /// Parse a facts file (see the module docs). Errors name the line.
    pub fn parse(file: &str, text: &str) -> Result<Facts, String> {
        let mut facts = Facts::default();
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: String| format!("{file}:{lineno}: {m}");
            let mut name: Option<IfName> = None;
            let mut iface = Iface { up: false, mtu: 1500, addrs: Vec::new(), link: None };
            let mut is_iface = false;
            for kv in line.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| err(format!("expected key=value, got '{}'", crate::config::printable(kv))))?;
                match k {
                    "nft_queue" => {
                        facts.nft_queue =
                            crate::config::parse_bool(v).map_err(|_| err("nft_queue must be 0 or 1".into()))?
                    }
                    "default_route" => {
                        for n in v.split(',') {
                            facts.default_route.push(IfName::new(n).map_err(err)?.as_str().to_string());
                        }
                        facts.default_route.sort();
                        facts.default_route.dedup();
                    }
                    "link" => {
                        iface.link = Some(match LINK_NAMES.iter().find(|(n, _)| *n == v) {
                            Some((_, t)) => *t,
                            None => v
                                .parse()
                                .map_err(|_| err(format!("bad link type '{}'", crate::config::printable(v))))?,
                        })
                    }
                    "interface" => {
                        is_iface = true;
                        name = Some(IfName::new(v).map_err(err)?);
                    }
                    "state" => {
                        iface.up = match v {
                            "up" => true,
                            "down" => false,
                            _ => return Err(err("state must be up or down".into())),
                        }
                    }
                    "mtu" => {
                        iface.mtu = v.parse().map_err(|_| err(format!("bad mtu '{}'", crate::config::printable(v))))?
                    }
                    "addr" => {
                        for a in v.split(',') {
                            iface.addrs.push(
                                parse_cidr(a)
                                    .ok_or_else(|| err(format!("bad address '{}'", crate::config::printable(a))))?,
                            );
                        }
                    }
                    _ => return Err(err(format!("unknown key '{}'", crate::config::printable(k)))),
                }
            }
            if is_iface {
                let n = name.expect("set with is_iface");
                facts.interfaces.insert(n.as_str().to_string(), iface);
            } else if line.contains("state=")
                || line.contains("mtu=")
                || line.contains("addr=")
                || line.contains("link=")
            {
                return Err(err("interface attributes need interface=NAME on the same line".into()));
            }
        }
        Ok(facts)
    }

    /// Render in the facts file format (round-trips through [`Facts::parse`]).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "nft_queue={}", u8::from(self.nft_queue));
        for (name, i) in &self.interfaces {
            let _ = write!(s, "interface={} state={} mtu={}", name, if i.up { "up" } else { "down" }, i.mtu);
            if !i.addrs.is_empty() {
                let a: Vec<String> = i.addrs.iter().map(|(a, p)| format!("{a}/{p}")).collect();
                let _ = write!(s, " addr={}", a.join(","));
            }
            if let Some(l) = i.link {
                match LINK_NAMES.iter().find(|(_, t)| *t == l) {
                    Some((n, _)) => {
                        let _ = write!(s, " link={n}");
                    }
                    None => {
                        let _ = write!(s, " link={l}");
                    }
                }
            }
            s.push('\n');
        }
        if !self.default_route.is_empty() {
            let _ = writeln!(s, "default_route={}", self.default_route.join(","));
        }
        s
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: IpAddr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_round_trip() {
        let text = "# lab\nnft_queue=1\ninterface=br-lan state=up mtu=1500 addr=192.168.1.1/24,fd00::1/64 link=ether\ninterface=wg0 state=down mtu=1420 link=none\ninterface=tun9 link=776\ndefault_route=pppoe-wan,eth1\n";
        let f = Facts::parse("f", text).unwrap();
        assert!(f.nft_queue);
        let lan = f.iface(&IfName::new("br-lan").unwrap()).unwrap();
        assert!(lan.up);
        assert_eq!(lan.mtu, 1500);
        assert_eq!(lan.addrs.len(), 2);
        assert_eq!(lan.addrs[1], ("fd00::1".parse().unwrap(), 64));
        let wg = f.iface(&IfName::new("wg0").unwrap()).unwrap();
        assert!(!wg.up);
        assert_eq!(wg.link, Some(65534));
        assert_eq!(lan.link, Some(1));
        assert_eq!(f.iface(&IfName::new("tun9").unwrap()).unwrap().link, Some(776));
        assert_eq!(f.default_route, vec!["eth1".to_string(), "pppoe-wan".to_string()]);
        assert!(f.iface(&IfName::new("eth9").unwrap()).is_none());
        assert_eq!(Facts::parse("f", &f.render()).unwrap(), f);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = Facts::parse("x.facts", "nft_queue=0\ninterface=wg0 state=sideways\n").unwrap_err();
        assert!(e.starts_with("x.facts:2:"), "{e}");
        let e = Facts::parse("x.facts", "interface=bad;name\n").unwrap_err();
        assert!(e.starts_with("x.facts:1:"), "{e}");
        let e = Facts::parse("x.facts", "mtu=1500\n").unwrap_err();
        assert!(e.contains("interface=NAME"), "{e}");
        assert!(Facts::parse("x", "interface=a addr=10.0.0.1/33").is_err());
        assert!(Facts::parse("x", "bogus").is_err());
        assert!(Facts::parse("x", "interface=a link=sideways").is_err());
        assert!(Facts::parse("x", "link=ether").is_err());
        assert!(Facts::parse("x", "default_route=bad;name").is_err());
    }
}
