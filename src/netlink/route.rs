//! rtnetlink (libc only): address dumps, policy-routing rules and routes, and a link/address
//! monitor socket for the daemon's event loop.
//!
//! Why netlink instead of running `ip`: OpenWrt's busybox `ip` has no `ip rule`, so the shell
//! route needs the ip-full package; netlink needs nothing, reports errors precisely, and the
//! same socket family already carries the link events the daemon waits for.
//!
//! Every rule and route moat adds carries the routing protocol number [`PROTO_MOAT`], so moat
//! can find and remove exactly its own entries (also those left by a previous run) without
//! remembering them. The `parse_*` functions are pure (bytes in, values out) and fuzzed.

use super::socket::Socket;
use super::{messages, ne_u32, Builder, Error, Message, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use std::io;
use std::net::IpAddr;

/// `rtm_protocol`/`FRA_PROTOCOL` value marking rules and routes as moat's own.
pub const PROTO_MOAT: u8 = 77;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;

const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;
const RT_TABLE_MAIN: u32 = 254;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_TABLE_UNSPEC: u8 = 0;
const FR_ACT_TO_TBL: u8 = 1;
const IFF_UP: u32 = 0x1;

/// Multicast groups for [`Socket::open`]: link changes.
pub const RTMGRP_LINK: u32 = 0x1;
/// IPv4 address changes.
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;
/// IPv6 address changes.
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface name.
    pub ifname: String,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// A link as reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: i32,
    /// Interface name.
    pub name: String,
    /// IFF_UP.
    pub up: bool,
    /// MTU.
    pub mtu: u32,
    /// Link type (`ifi_type`, ARPHRD_*: 1 Ethernet, 65534 none as WireGuard/tun, 512 PPP, …).
    pub link_type: u16,
}

/// A notification from a monitor socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link appeared or changed.
    Link(LinkInfo),
    /// A link disappeared.
    LinkGone(String),
    /// An address was added or removed somewhere.
    Addr,
}

/// A policy-routing rule: `fwmark mark/mask lookup table priority prio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// fwmark value.
    pub mark: u32,
    /// fwmark mask.
    pub mask: u32,
    /// Routing table.
    pub table: u32,
    /// Rule priority.
    pub priority: u32,
}

/// A default route in a table: via a device, or unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// Routing table.
    pub table: u32,
    /// Output interface index; `None` = unreachable route.
    pub oif: Option<i32>,
    /// Route metric.
    pub metric: u32,
}

/// A link message (`RTM_NEWLINK`/`RTM_DELLINK` body: `ifinfomsg` + attributes); `None` without a
/// complete header or a name.
pub fn parse_link(m: &Message<'_>) -> Option<LinkInfo> {
    let (h, a) = m.split(16).ok()?;
    let link_type = u16::from_ne_bytes([h[2], h[3]]);
    let index = ne_u32(h, 4)? as i32;
    let flags = ne_u32(h, 8)?;
    let mut name = None;
    let mut mtu = 0;
    for at in a.lenient() {
        match at.ty {
            IFLA_IFNAME => name = Some(super::cstr(at.data)),
            IFLA_MTU => mtu = at.ne_u32().unwrap_or(mtu),
            _ => {}
        }
    }
    Some(LinkInfo { index, name: name?, up: flags & IFF_UP != 0, mtu, link_type })
}

/// An address message (`RTM_NEWADDR` body: `ifaddrmsg` + attributes): (interface index,
/// address, prefix length). `IFA_LOCAL` (the local end of a point-to-point link) wins over
/// `IFA_ADDRESS`.
pub fn parse_addr(m: &Message<'_>) -> Option<(i32, IpAddr, u8)> {
    let (h, a) = m.split(8).ok()?;
    let (family, prefix, index) = (h[0], h[1], ne_u32(h, 4)? as i32);
    let mut addr = None;
    for at in a.lenient() {
        if at.ty == IFA_LOCAL || (at.ty == IFA_ADDRESS && addr.is_none()) {
            addr = parse_ip(family, at.data);
        }
    }
    Some((index, addr?, prefix))
}

/// A rule message (`fib_rule_hdr` + attributes), if it carries [`PROTO_MOAT`].
pub fn parse_moat_rule(m: &Message<'_>) -> Option<Rule> {
    let (h, a) = m.split(12).ok()?;
    let mut r = Rule { family: h[0], mark: 0, mask: 0xffff_ffff, table: h[4] as u32, priority: 0 };
    let mut proto = 0u8;
    for at in a.lenient() {
        let v = at.ne_u32();
        match at.ty {
            FRA_PRIORITY => r.priority = v.unwrap_or(r.priority),
            FRA_FWMARK => r.mark = v.unwrap_or(r.mark),
            FRA_FWMASK => r.mask = v.unwrap_or(r.mask),
            FRA_TABLE => r.table = v.unwrap_or(r.table),
            FRA_PROTOCOL => proto = at.data.first().copied().unwrap_or(proto),
            _ => {}
        }
    }
    (proto == PROTO_MOAT).then_some(r)
}

/// A route message (`rtmsg` + attributes), if it is a default route (dst_len 0) with protocol
/// [`PROTO_MOAT`].
pub fn parse_moat_route(m: &Message<'_>) -> Option<Route> {
    let (b, a) = m.split(12).ok()?;
    if b[5] != PROTO_MOAT || b[1] != 0 {
        return None;
    }
    let mut r = Route { family: b[0], table: b[4] as u32, oif: None, metric: 0 };
    for at in a.lenient() {
        let v = at.ne_u32();
        match at.ty {
            RTA_TABLE => r.table = v.unwrap_or(r.table),
            RTA_PRIORITY => r.metric = v.unwrap_or(r.metric),
            RTA_OIF => r.oif = v.map(|i| i as i32).or(r.oif),
            _ => {}
        }
    }
    if b[7] == RTN_UNREACHABLE {
        r.oif = None;
    }
    Some(r)
}

/// A route message's output interface if it is a unicast default route (dst_len 0) of the
/// main table (254), whoever added it. Multipath default routes (RTA_MULTIPATH, no RTA_OIF)
/// are not reported.
pub fn parse_main_default(m: &Message<'_>) -> Option<i32> {
    let (b, a) = m.split(12).ok()?;
    if b[1] != 0 || b[7] != RTN_UNICAST {
        return None;
    }
    let (mut table, mut oif) = (b[4] as u32, None);
    for at in a.lenient() {
        let v = at.ne_u32();
        match at.ty {
            RTA_TABLE => table = v.unwrap_or(table),
            RTA_OIF => oif = v.map(|i| i as i32).or(oif),
            _ => {}
        }
    }
    (table == RT_TABLE_MAIN).then_some(oif).flatten()
}

/// The link and address events in one datagram of a monitor socket.
pub fn parse_events(buf: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    for m in messages(buf).map_while(Result::ok) {
        match m.ty {
            RTM_NEWLINK => out.extend(parse_link(&m).map(Event::Link)),
            RTM_DELLINK => out.extend(parse_link(&m).map(|l| Event::LinkGone(l.name))),
            RTM_NEWADDR | RTM_DELADDR => out.push(Event::Addr),
            _ => {}
        }
    }
    out
}

fn parse_ip(family: u8, d: &[u8]) -> Option<IpAddr> {
    match family as i32 {
        libc::AF_INET => Some(IpAddr::from(<[u8; 4]>::try_from(d).ok()?)),
        libc::AF_INET6 => Some(IpAddr::from(<[u8; 16]>::try_from(d).ok()?)),
        _ => None,
    }
}

/// A dump request of type `ty` with fixed header `hdr`.
fn dump_req(ty: u16, hdr: &[u8]) -> impl FnOnce(&mut [u8], u32) -> Result<usize, Error> + '_ {
    move |buf, seq| Builder::new(buf, ty, NLM_F_DUMP, seq).bytes(hdr).finish()
}

fn rule_msg(ty: u16, flags: u16, r: &Rule) -> impl FnOnce(&mut [u8], u32) -> Result<usize, Error> + '_ {
    move |buf, seq| {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags (u32)
        let hdr = [r.family, 0, 0, 0, RT_TABLE_UNSPEC, 0, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
        Builder::new(buf, ty, flags, seq)
            .bytes(&hdr)
            .attr_ne_u32(FRA_PRIORITY, r.priority)
            .attr_ne_u32(FRA_FWMARK, r.mark)
            .attr_ne_u32(FRA_FWMASK, r.mask)
            .attr_ne_u32(FRA_TABLE, r.table)
            .attr(FRA_PROTOCOL, &[PROTO_MOAT])
            .finish()
    }
}

fn route_msg(ty: u16, flags: u16, r: &Route) -> impl FnOnce(&mut [u8], u32) -> Result<usize, Error> + '_ {
    move |buf, seq| {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags(u32)
        let (scope, rtype) =
            if r.oif.is_some() { (RT_SCOPE_LINK, RTN_UNICAST) } else { (RT_SCOPE_UNIVERSE, RTN_UNREACHABLE) };
        let hdr = [r.family, 0, 0, 0, RT_TABLE_UNSPEC, PROTO_MOAT, scope, rtype, 0, 0, 0, 0];
        let mut b = Builder::new(buf, ty, flags, seq);
        b.bytes(&hdr).attr_ne_u32(RTA_TABLE, r.table).attr_ne_u32(RTA_PRIORITY, r.metric);
        if let Some(oif) = r.oif {
            b.attr_ne_u32(RTA_OIF, oif as u32);
        }
        b.finish()
    }
}

impl Socket {
    /// Open a NETLINK_ROUTE socket subscribed to `groups` (0 for a request-only socket).
    pub fn open(groups: u32) -> io::Result<Socket> {
        Self::open_proto(libc::NETLINK_ROUTE, groups)
    }

    /// All links.
    pub fn links(&mut self) -> io::Result<Vec<LinkInfo>> {
        let mut out = Vec::new();
        self.dump(dump_req(RTM_GETLINK, &[0u8; 16]), |m| {
            if m.ty == RTM_NEWLINK {
                out.extend(parse_link(m));
            }
        })?;
        Ok(out)
    }

    /// All addresses (IPv4 and IPv6).
    pub fn addrs(&mut self) -> io::Result<Vec<AddrInfo>> {
        let links = self.links()?;
        let mut out = Vec::new();
        self.dump(dump_req(RTM_GETADDR, &[0u8; 8]), |m| {
            if m.ty != RTM_NEWADDR {
                return;
            }
            if let Some((index, addr, prefix)) = parse_addr(m) {
                if let Some(l) = links.iter().find(|l| l.index == index) {
                    out.push(AddrInfo { ifname: l.name.clone(), addr, prefix });
                }
            }
        })?;
        Ok(out)
    }

    /// Send a create request; an identical existing object (EEXIST) is not an error.
    fn create(&mut self, build: impl FnOnce(&mut [u8], u32) -> Result<usize, Error>) -> io::Result<()> {
        match self.request(build) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            x => x,
        }
    }

    /// Add a rule (an identical existing rule is not an error).
    pub fn add_rule(&mut self, r: &Rule) -> io::Result<()> {
        self.create(rule_msg(RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r))
    }

    /// Delete a rule.
    pub fn del_rule(&mut self, r: &Rule) -> io::Result<()> {
        self.request(rule_msg(RTM_DELRULE, NLM_F_ACK, r))
    }

    /// moat's rules currently installed (those carrying [`PROTO_MOAT`]) of one family.
    pub fn moat_rules(&mut self, family: u8) -> io::Result<Vec<Rule>> {
        let hdr = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        self.dump(dump_req(RTM_GETRULE, &hdr), |m| {
            if m.ty == RTM_NEWRULE {
                out.extend(parse_moat_rule(m));
            }
        })?;
        Ok(out)
    }

    /// Add a route (an identical existing route is not an error).
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        self.create(route_msg(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r))
    }

    /// Delete a route.
    pub fn del_route(&mut self, r: &Route) -> io::Result<()> {
        self.request(route_msg(RTM_DELROUTE, NLM_F_ACK, r))
    }

    /// moat's routes currently installed (protocol [`PROTO_MOAT`]) of one family.
    pub fn moat_routes(&mut self, family: u8) -> io::Result<Vec<Route>> {
        let hdr = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        self.dump(dump_req(RTM_GETROUTE, &hdr), |m| {
            if m.ty == RTM_NEWROUTE {
                out.extend(parse_moat_route(m));
            }
        })?;
        Ok(out)
    }

    /// Output interfaces of the main table's default routes of one family ([`parse_main_default`]).
    pub fn main_default_oifs(&mut self, family: u8) -> io::Result<Vec<i32>> {
        let hdr = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        self.dump(dump_req(RTM_GETROUTE, &hdr), |m| {
            if m.ty == RTM_NEWROUTE {
                out.extend(parse_main_default(m));
            }
        })?;
        Ok(out)
    }

    /// Read pending notifications from a monitor socket (non-blocking read of one datagram).
    pub fn events(&self) -> io::Result<Vec<Event>> {
        let mut buf = vec![0u8; 32768];
        let Some(n) = self.recv_nowait(&mut buf)? else { return Ok(Vec::new()) };
        Ok(parse_events(&buf[..n]))
    }
}

/// Dump all addresses with a fresh socket.
pub fn dump_addrs() -> io::Result<Vec<AddrInfo>> {
    Socket::open(0)?.addrs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_message_layout_is_aligned_and_native_endian() {
        let mut buf = [0u8; 128];
        let r = Rule { family: 2, mark: 0x0100_0000, mask: 0xff00_0000, table: 100, priority: 900 };
        let n = rule_msg(RTM_NEWRULE, NLM_F_ACK, &r)(&mut buf, 7).unwrap();
        assert_eq!(n, 16 + 12 + 4 * 8 + 8);
        let m = messages(&buf[..n]).next().unwrap().unwrap();
        assert_eq!((m.ty, m.seq, m.flags), (RTM_NEWRULE, 7, NLM_F_ACK | super::super::NLM_F_REQUEST));
        let (_, a) = m.split(12).unwrap();
        let a: Vec<_> = a.map(Result::unwrap).collect();
        assert_eq!(a.len(), 5);
        assert_eq!((a[1].ty, a[1].ne_u32()), (FRA_FWMARK, Some(0x0100_0000)));
        assert_eq!((a[4].ty, a[4].data), (FRA_PROTOCOL, &[PROTO_MOAT][..]));
        // what moat sends it reads back as its own rule
        assert_eq!(parse_moat_rule(&m), Some(r));
    }

    #[test]
    fn route_messages_round_trip_and_foreign_ones_are_skipped() {
        let mut buf = [0u8; 128];
        for r in [
            Route { family: 10, table: 1001, oif: Some(5), metric: 3 },
            Route { family: 2, table: 1002, oif: None, metric: 0 },
        ] {
            let n = route_msg(RTM_NEWROUTE, 0, &r)(&mut buf, 1).unwrap();
            let m = messages(&buf[..n]).next().unwrap().unwrap();
            assert_eq!(parse_moat_route(&m), Some(r));
            let mut other = buf;
            other[16 + 5] = 4; // protocol static: not moat's
            assert_eq!(parse_moat_route(&messages(&other[..n]).next().unwrap().unwrap()), None);
        }
        // a body shorter than rtmsg: nothing, no panic
        let short = Message { ty: RTM_NEWROUTE, flags: 0, seq: 0, pid: 0, body: &[2, 0, 0] };
        assert_eq!(parse_moat_route(&short), None);
        assert_eq!(parse_moat_rule(&short), None);
        assert_eq!(parse_link(&short), None);
        assert_eq!(parse_addr(&short), None);
    }

    #[test]
    fn main_default_routes_are_recognised() {
        let mut buf = [0u8; 128];
        // A unicast default route via ifindex 5 in table 254 (RTA_TABLE), as the kernel dumps it.
        let r = Route { family: 2, table: RT_TABLE_MAIN, oif: Some(5), metric: 0 };
        let n = route_msg(RTM_NEWROUTE, 0, &r)(&mut buf, 1).unwrap();
        assert_eq!(parse_main_default(&messages(&buf[..n]).next().unwrap().unwrap()), Some(5));
        // Another table, a non-default prefix, an unreachable route: not the uplink.
        let other = Route { table: 1001, ..r };
        let n = route_msg(RTM_NEWROUTE, 0, &other)(&mut buf, 1).unwrap();
        assert_eq!(parse_main_default(&messages(&buf[..n]).next().unwrap().unwrap()), None);
        let n = route_msg(RTM_NEWROUTE, 0, &r)(&mut buf, 1).unwrap();
        let mut prefix = buf;
        prefix[16 + 1] = 24;
        assert_eq!(parse_main_default(&messages(&prefix[..n]).next().unwrap().unwrap()), None);
        let u = Route { oif: None, ..r };
        let n = route_msg(RTM_NEWROUTE, 0, &u)(&mut buf, 1).unwrap();
        assert_eq!(parse_main_default(&messages(&buf[..n]).next().unwrap().unwrap()), None);
        let short = Message { ty: RTM_NEWROUTE, flags: 0, seq: 0, pid: 0, body: &[2, 0, 0] };
        assert_eq!(parse_main_default(&short), None);
    }

    #[test]
    fn events_parse_links_and_addresses() {
        let mut d = vec![0u8; 512];
        let mut n = 0;
        let mut hdr = [0u8; 16];
        hdr[4..8].copy_from_slice(&3u32.to_ne_bytes());
        hdr[8..12].copy_from_slice(&1u32.to_ne_bytes());
        n += Builder::new(&mut d[n..], RTM_NEWLINK, 0, 0)
            .bytes(&hdr)
            .attr(IFLA_IFNAME, b"wg0\0")
            .attr_ne_u32(IFLA_MTU, 1420)
            .finish()
            .unwrap();
        n += Builder::new(&mut d[n..], RTM_DELLINK, 0, 0).bytes(&hdr).attr(IFLA_IFNAME, b"wg1\0").finish().unwrap();
        n += Builder::new(&mut d[n..], RTM_NEWADDR, 0, 0).bytes(&[2, 24, 0, 0, 3, 0, 0, 0]).finish().unwrap();
        assert_eq!(
            parse_events(&d[..n]),
            vec![
                Event::Link(LinkInfo { index: 3, name: "wg0".into(), up: true, mtu: 1420, link_type: 0 }),
                Event::LinkGone("wg1".into()),
                Event::Addr,
            ]
        );
        assert_eq!(parse_events(&d[..n - 1]).len(), 2, "a cut last message is not read");
    }

    #[test]
    fn loopback_is_listed() {
        let mut s = Socket::open(0).expect("netlink socket");
        let links = s.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo" && l.index > 0), "{links:?}");
        let addrs = s.addrs().unwrap();
        assert!(addrs.iter().any(|a| a.ifname == "lo" && a.addr == IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
    }
}
