//! Interface facts: what the system looks like, as far as the plan needs to know.
//!
//! [`Facts`] is plain data. It comes either from probing the live system read-only
//! ([`Facts::probe`]: rtnetlink link and address dumps, a `nft -c` check for the `queue`
//! statement) or from a small `key=value` file ([`Facts::parse`]) so that `moat check`
//! and the golden tests are deterministic.
//!
//! Facts file format (one record per line, `#` comments, blank lines ignored):
//! ```text
//! nft_queue=0
//! interface=br-lan state=up mtu=1500 addr=192.168.1.1/24,fd00::1/64
//! interface=wg0 state=down mtu=1420
//! ```
//! An interface that is not listed does not exist.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::IfName;

/// One network interface as seen on the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with prefix length.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// What the system looks like (input of [`crate::plan::build`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Existing interfaces by name.
    pub interfaces: BTreeMap<String, Iface>,
    /// Whether the kernel accepts the nft `queue` statement (CONFIG_NFT_QUEUE).
    pub nft_queue: bool,
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
            let mut iface = Iface { up: false, mtu: 1500, addrs: Vec::new() };
            let mut is_iface = false;
            for kv in line.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| err(format!("expected key=value, got '{}'", crate::model::printable(kv))))?;
                match k {
                    "nft_queue" => {
                        facts.nft_queue = parse_bool(v).ok_or_else(|| err("nft_queue must be 0 or 1".into()))?
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
                        iface.mtu = v.parse().map_err(|_| err(format!("bad mtu '{}'", crate::model::printable(v))))?
                    }
                    "addr" => {
                        for a in v.split(',') {
                            iface.addrs.push(
                                parse_cidr(a)
                                    .ok_or_else(|| err(format!("bad address '{}'", crate::model::printable(a))))?,
                            );
                        }
                    }
                    _ => return Err(err(format!("unknown key '{}'", crate::model::printable(k)))),
                }
            }
            if is_iface {
                let n = name.expect("set with is_iface");
                facts.interfaces.insert(n.as_str().to_string(), iface);
            } else if line.contains("state=") || line.contains("mtu=") || line.contains("addr=") {
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
            s.push('\n');
        }
        s
    }

    /// Probe the live system read-only for the given interfaces (others are not looked at).
    ///
    /// Interface state (IFF_UP), MTU and addresses come from rtnetlink dumps, `nft_queue` from
    /// a `nft -c` (check only, nothing is changed) of a throwaway table holding a `queue` rule.
    pub fn probe(names: &[&IfName]) -> Facts {
        Facts::probe_with(names, probe_nft_queue())
    }

    /// [`Facts::probe`] with the `nft_queue` answer supplied (the daemon probes it once).
    pub fn probe_with(names: &[&IfName], nft_queue: bool) -> Facts {
        let mut facts = Facts { nft_queue, ..Facts::default() };
        // rtnetlink answers for the caller's network namespace even where /sys was not
        // remounted (e.g. `nsenter --net`), so links come from netlink, not /sys/class/net.
        let Ok(mut nl) = crate::netlink::Socket::open(0) else {
            return facts;
        };
        let links = nl.links().unwrap_or_default();
        let addrs = nl.addrs().unwrap_or_default();
        for n in names {
            let Some(l) = links.iter().find(|l| l.name == n.as_str()) else {
                continue;
            };
            let ifaddrs = addrs.iter().filter(|a| a.ifname == n.as_str()).map(|a| (a.addr, a.prefix)).collect();
            facts.interfaces.insert(n.as_str().to_string(), Iface { up: l.up, mtu: l.mtu, addrs: ifaddrs });
        }
        facts
    }
}

/// Does the running kernel accept the nft `queue` statement? Checked with `nft -c` (no change).
pub fn probe_nft_queue() -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = "table inet moat_probe_queue {\n\tchain c {\n\t\ttype filter hook postrouting priority 0; policy accept;\n\t\tmeta mark 0x1 queue num 0\n\t}\n}\n";
    let child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    matches!(child.wait(), Ok(s) if s.success())
}

fn parse_bool(v: &str) -> Option<bool> {
    crate::config::parse_bool(v).ok()
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
        let text = "# lab\nnft_queue=1\ninterface=br-lan state=up mtu=1500 addr=192.168.1.1/24,fd00::1/64\ninterface=wg0 state=down mtu=1420\n";
        let f = Facts::parse("f", text).unwrap();
        assert!(f.nft_queue);
        let lan = f.iface(&IfName::new("br-lan").unwrap()).unwrap();
        assert!(lan.up);
        assert_eq!(lan.mtu, 1500);
        assert_eq!(lan.addrs.len(), 2);
        assert_eq!(lan.addrs[1], ("fd00::1".parse().unwrap(), 64));
        let wg = f.iface(&IfName::new("wg0").unwrap()).unwrap();
        assert!(!wg.up);
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
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn probe_sees_loopback_and_not_a_missing_interface() {
        let lo = IfName::new("lo").unwrap();
        let none = IfName::new("moatnone0").unwrap();
        let f = Facts::probe_with(&[&lo, &none], false);
        let l = f.iface(&lo).expect("lo exists");
        assert!(l.up && l.mtu > 0);
        assert!(l.addrs.iter().any(|(a, _)| a.is_loopback()), "{l:?}");
        assert!(f.iface(&none).is_none());
    }
}
