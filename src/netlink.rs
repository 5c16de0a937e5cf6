//! A small rtnetlink client (libc only): address dumps, policy-routing rules and routes, and a
//! link/address monitor socket for the daemon's event loop; plus a NETLINK_NETFILTER monitor of
//! nftables changes ([`parse_nft`], [`NftWatch`]) so the daemon sees at once when someone else
//! (e.g. `fw4 flush`) deletes or edits `table inet moat`.
//!
//! Why netlink instead of running `ip`: OpenWrt's busybox `ip` has no `ip rule`, so the shell
//! route needs the ip-full package; netlink needs nothing, reports errors precisely, and the
//! same socket family already carries the link events the daemon waits for.
//!
//! Every rule and route moat adds carries the routing protocol number [`PROTO_MOAT`], so moat
//! can find and remove exactly its own entries (also those left by a previous run) without
//! remembering them.
//!
//! Netlink headers and integer attributes are in host byte order; addresses are raw bytes in
//! network order — both handled with `to_ne_bytes`/octets so the code is endian-correct.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `rtm_protocol`/`FRA_PROTOCOL` value marking rules and routes as moat's own.
pub const PROTO_MOAT: u8 = 77;

const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

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
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_TABLE_UNSPEC: u8 = 0;
const FR_ACT_TO_TBL: u8 = 1;

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

/// nfnetlink multicast group of nftables change notifications.
pub const NFNLGRP_NFTABLES: u32 = 7;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u8 = 15;
const NFT_MSG_TRACE: u8 = 17;
/// `NFPROTO_INET`, the nfgenmsg family of an `inet` table.
pub const NFPROTO_INET: u8 = 1;

/// One nftables notification (NETLINK_NETFILTER, group [`NFNLGRP_NFTABLES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftEvent {
    /// An object (table, chain, rule, set, element, object, flowtable) of `table` in `family`
    /// was added or deleted; `msg` is the `NFT_MSG_*` type.
    Change {
        /// `NFT_MSG_*` message type (e.g. 2 = DELTABLE).
        msg: u8,
        /// nfgenmsg family (`NFPROTO_*`).
        family: u8,
        /// Table name.
        table: String,
    },
    /// A transaction committed (`NFT_MSG_NEWGEN`, sent after the transaction's changes).
    Gen {
        /// Process that committed it (0 if not reported).
        pid: u32,
        /// Its command name.
        comm: String,
    },
}

/// Parse one datagram from an nftables monitor socket. Pure: bytes in, events out.
///
/// Layout: nlmsghdr (host order), nfgenmsg {family u8, version u8, res_id be16}, then
/// attributes (host-order headers). Attribute 1 is the table name in every object message
/// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...); in NEWGEN it is
/// the generation id, and NFTA_GEN_PROC_PID (2) is a big-endian u32.
pub fn parse_nft(buf: &[u8]) -> Vec<NftEvent> {
    let mut out = Vec::new();
    for (ty, m) in messages(buf) {
        if ty >> 8 != NFNL_SUBSYS_NFTABLES || m.len() < NLMSG_HDRLEN + 4 {
            continue;
        }
        let msg = (ty & 0xff) as u8;
        let family = m[NLMSG_HDRLEN];
        let a = attrs(m, 4);
        match msg {
            NFT_MSG_NEWGEN => {
                let mut pid = 0;
                let mut comm = String::new();
                for (at, d) in a {
                    match at {
                        2 if d.len() >= 4 => pid = u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
                        3 => comm = cstr(d),
                        _ => {}
                    }
                }
                out.push(NftEvent::Gen { pid, comm });
            }
            NFT_MSG_TRACE => {}
            _ => {
                if let Some((_, d)) = a.iter().find(|(at, _)| *at == 1) {
                    out.push(NftEvent::Change { msg, family, table: cstr(d) });
                }
            }
        }
    }
    out
}

/// Folds nftables notifications into "a transaction touched some of these tables": a pure
/// state machine over a list of watched `(family, table)` pairs.
#[derive(Debug, Clone, Default)]
pub struct NftWatch {
    touched: u32,
}

/// A committed transaction that changed watched tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftCommit {
    /// Committing process (0 if not reported).
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// Bit `i` set: the transaction changed `watched[i]`.
    pub tables: u32,
}

impl NftWatch {
    /// Feed one event. Returns the commit when a transaction that changed one of `watched`
    /// (at most 32 `(family, table)` pairs) has committed (its NEWGEN arrived).
    pub fn feed(&mut self, ev: NftEvent, watched: &[(u8, &str)]) -> Option<NftCommit> {
        match ev {
            NftEvent::Change { family, table, .. } => {
                for (i, (f, t)) in watched.iter().enumerate().take(32) {
                    if *f == family && *t == table {
                        self.touched |= 1 << i;
                    }
                }
                None
            }
            NftEvent::Gen { pid, comm } => {
                let tables = std::mem::take(&mut self.touched);
                (tables != 0).then_some(NftCommit { pid, comm, tables })
            }
        }
    }
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

/// A NETLINK_ROUTE socket.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, payload: &[u8]) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(payload);
        buf.resize(align4(buf.len()), 0);
        Msg { buf }
    }
    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }
    fn u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }
    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

fn rd_u16(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn rd_u32(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Iterate over netlink messages in a datagram: (type, whole message).
fn messages(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = rd_u32(buf, off) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            break;
        }
        out.push((rd_u16(buf, off + 4), &buf[off..off + len]));
        off += align4(len);
    }
    out
}

/// Iterate over attributes after a fixed header of `hdr` bytes: (type, data).
fn attrs(msg: &[u8], hdr: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = NLMSG_HDRLEN + align4(hdr);
    while off + 4 <= msg.len() {
        let len = rd_u16(msg, off) as usize;
        if len < 4 || off + len > msg.len() {
            break;
        }
        out.push((rd_u16(msg, off + 2) & 0x3fff, &msg[off + 4..off + len]));
        off += align4(len);
    }
    out
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Socket {
    /// Open a NETLINK_ROUTE socket subscribed to `groups` (0 for a request-only socket).
    pub fn open(groups: u32) -> io::Result<Socket> {
        Self::open_proto(libc::NETLINK_ROUTE, groups)
    }

    /// Open a NETLINK_NETFILTER socket subscribed to nftables notifications
    /// ([`NFNLGRP_NFTABLES`]), with a large receive buffer (loading fw4 sends hundreds).
    pub fn open_nft_monitor() -> io::Result<Socket> {
        let s = Self::open_proto(libc::NETLINK_NETFILTER, 1 << (NFNLGRP_NFTABLES - 1))?;
        let sz: libc::c_int = 1 << 20;
        // SAFETY: setsockopt with a valid int; failure only leaves the default size.
        unsafe {
            libc::setsockopt(
                s.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &sz as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        Ok(s)
    }

    /// Read every pending nftables notification (non-blocking). An error (ENOBUFS: some were
    /// lost) means the caller must re-check the state itself.
    pub fn nft_events(&self) -> io::Result<Vec<NftEvent>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match self.recv_nowait(&mut buf)? {
                Some(n) => out.extend(parse_nft(&buf[..n])),
                None => return Ok(out),
            }
        }
    }

    fn recv_nowait(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: MSG_DONTWAIT recv into a buffer we own.
        let n = unsafe {
            libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_DONTWAIT)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        Ok(Some(n as usize))
    }

    fn open_proto(proto: libc::c_int, groups: u32) -> io::Result<Socket> {
        // SAFETY: plain socket(2)/bind(2) calls with a zeroed sockaddr_nl.
        unsafe {
            let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            sa.nl_groups = groups;
            if libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(Socket { fd, seq: 1 })
        }
    }

    fn send(&mut self, msg: &mut Msg) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let b = msg.finish(seq);
        // SAFETY: sending an initialised buffer of b.len() bytes.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), b.as_ptr() as *const libc::c_void, b.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(seq)
    }

    /// Receive one datagram (blocking unless the socket is non-blocking).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: receiving into a buffer we own.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Send a request with NLM_F_ACK and wait for its ack; a netlink error becomes an io::Error.
    fn request(&mut self, mut msg: Msg) -> io::Result<()> {
        let seq = self.send(&mut msg)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            for (ty, m) in messages(&buf[..n]) {
                if rd_u32(m, 8) != seq {
                    continue;
                }
                if ty == NLMSG_ERROR && m.len() >= NLMSG_HDRLEN + 4 {
                    let err = rd_u32(m, NLMSG_HDRLEN) as i32;
                    return if err == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-err)) };
                }
            }
        }
    }

    /// Send a dump request and collect every reply message (type, bytes).
    fn dump(&mut self, mut msg: Msg) -> io::Result<Vec<(u16, Vec<u8>)>> {
        let seq = self.send(&mut msg)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32768];
        loop {
            let n = self.recv(&mut buf)?;
            for (ty, m) in messages(&buf[..n]) {
                if rd_u32(m, 8) != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = rd_u32(m, NLMSG_HDRLEN) as i32;
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                    }
                    _ => out.push((ty, m.to_vec())),
                }
            }
        }
    }

    /// Dump request `ty` with fixed header `hdr`: every reply message (type, whole message), for
    /// protocols parsed outside this module (the neighbour table in [`crate::discover`]).
    pub fn dump_raw(&mut self, ty: u16, hdr: &[u8]) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.dump(Msg::new(ty, NLM_F_DUMP, hdr))
    }

    /// All links.
    pub fn links(&mut self) -> io::Result<Vec<LinkInfo>> {
        let ifi = [0u8; 16];
        let msgs = self.dump(Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifi))?;
        Ok(msgs.iter().filter(|(t, _)| *t == RTM_NEWLINK).filter_map(|(_, m)| parse_link(m)).collect())
    }

    /// All addresses (IPv4 and IPv6).
    pub fn addrs(&mut self) -> io::Result<Vec<AddrInfo>> {
        let links = self.links()?;
        let ifa = [0u8; 8];
        let msgs = self.dump(Msg::new(RTM_GETADDR, NLM_F_DUMP, &ifa))?;
        let mut out = Vec::new();
        for (ty, m) in &msgs {
            if *ty != RTM_NEWADDR || m.len() < NLMSG_HDRLEN + 8 {
                continue;
            }
            let family = m[NLMSG_HDRLEN];
            let prefix = m[NLMSG_HDRLEN + 1];
            let index = rd_u32(m, NLMSG_HDRLEN + 4) as i32;
            let mut addr = None;
            for (at, d) in attrs(m, 8) {
                // IFA_LOCAL is the local address on point-to-point links; prefer it.
                if at == IFA_LOCAL || (at == IFA_ADDRESS && addr.is_none()) {
                    addr = parse_ip(family, d);
                }
            }
            let name = links.iter().find(|l| l.index == index).map(|l| l.name.clone());
            if let (Some(addr), Some(ifname)) = (addr, name) {
                out.push(AddrInfo { ifname, addr, prefix });
            }
        }
        Ok(out)
    }

    fn rule_msg(ty: u16, flags: u16, r: &Rule) -> Msg {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags (u32)
        let hdr = [r.family, 0, 0, 0, RT_TABLE_UNSPEC, 0, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
        let mut m = Msg::new(ty, flags, &hdr);
        m.u32(FRA_PRIORITY, r.priority).u32(FRA_FWMARK, r.mark).u32(FRA_FWMASK, r.mask).u32(FRA_TABLE, r.table);
        m.attr(FRA_PROTOCOL, &[PROTO_MOAT]);
        m
    }

    /// Send a create request; an identical existing object (EEXIST) is not an error.
    fn create(&mut self, m: Msg) -> io::Result<()> {
        match self.request(m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            x => x,
        }
    }

    /// Add a rule (an identical existing rule is not an error).
    pub fn add_rule(&mut self, r: &Rule) -> io::Result<()> {
        self.create(Self::rule_msg(RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r))
    }

    /// Delete a rule.
    pub fn del_rule(&mut self, r: &Rule) -> io::Result<()> {
        self.request(Self::rule_msg(RTM_DELRULE, NLM_F_ACK, r))
    }

    /// moat's rules currently installed (those carrying [`PROTO_MOAT`]) of one family.
    pub fn moat_rules(&mut self, family: u8) -> io::Result<Vec<Rule>> {
        let hdr = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let msgs = self.dump(Msg::new(RTM_GETRULE, NLM_F_DUMP, &hdr))?;
        let mut out = Vec::new();
        for (ty, m) in &msgs {
            if *ty != RTM_NEWRULE || m.len() < NLMSG_HDRLEN + 12 {
                continue;
            }
            let mut r = Rule {
                family: m[NLMSG_HDRLEN],
                mark: 0,
                mask: 0xffff_ffff,
                table: m[NLMSG_HDRLEN + 4] as u32,
                priority: 0,
            };
            let mut proto = 0u8;
            for (at, d) in attrs(m, 12) {
                match at {
                    FRA_PRIORITY if d.len() >= 4 => r.priority = rd_u32(d, 0),
                    FRA_FWMARK if d.len() >= 4 => r.mark = rd_u32(d, 0),
                    FRA_FWMASK if d.len() >= 4 => r.mask = rd_u32(d, 0),
                    FRA_TABLE if d.len() >= 4 => r.table = rd_u32(d, 0),
                    FRA_PROTOCOL if !d.is_empty() => proto = d[0],
                    _ => {}
                }
            }
            if proto == PROTO_MOAT {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn route_msg(ty: u16, flags: u16, r: &Route) -> Msg {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags(u32)
        let (scope, rtype) =
            if r.oif.is_some() { (RT_SCOPE_LINK, RTN_UNICAST) } else { (RT_SCOPE_UNIVERSE, RTN_UNREACHABLE) };
        let hdr = [r.family, 0, 0, 0, RT_TABLE_UNSPEC, PROTO_MOAT, scope, rtype, 0, 0, 0, 0];
        let mut m = Msg::new(ty, flags, &hdr);
        m.u32(RTA_TABLE, r.table).u32(RTA_PRIORITY, r.metric);
        if let Some(oif) = r.oif {
            m.u32(RTA_OIF, oif as u32);
        }
        m
    }

    /// Add a route (an identical existing route is not an error).
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        self.create(Self::route_msg(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r))
    }

    /// Delete a route.
    pub fn del_route(&mut self, r: &Route) -> io::Result<()> {
        self.request(Self::route_msg(RTM_DELROUTE, NLM_F_ACK, r))
    }

    /// moat's routes currently installed (protocol [`PROTO_MOAT`]) of one family.
    pub fn moat_routes(&mut self, family: u8) -> io::Result<Vec<Route>> {
        let hdr = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let msgs = self.dump(Msg::new(RTM_GETROUTE, NLM_F_DUMP, &hdr))?;
        let mut out = Vec::new();
        for (ty, m) in &msgs {
            if *ty != RTM_NEWROUTE || m.len() < NLMSG_HDRLEN + 12 {
                continue;
            }
            let b = &m[NLMSG_HDRLEN..];
            if b[5] != PROTO_MOAT || b[1] != 0 {
                continue;
            }
            let mut r = Route { family: b[0], table: b[4] as u32, oif: None, metric: 0 };
            for (at, d) in attrs(m, 12) {
                match at {
                    RTA_TABLE if d.len() >= 4 => r.table = rd_u32(d, 0),
                    RTA_PRIORITY if d.len() >= 4 => r.metric = rd_u32(d, 0),
                    RTA_OIF if d.len() >= 4 => r.oif = Some(rd_u32(d, 0) as i32),
                    _ => {}
                }
            }
            if b[7] == RTN_UNREACHABLE {
                r.oif = None;
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Read pending notifications from a monitor socket (non-blocking read of one datagram).
    pub fn events(&self) -> io::Result<Vec<Event>> {
        let mut buf = vec![0u8; 32768];
        let Some(n) = self.recv_nowait(&mut buf)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (ty, m) in messages(&buf[..n]) {
            match ty {
                RTM_NEWLINK => out.extend(parse_link(m).map(Event::Link)),
                RTM_DELLINK => out.extend(parse_link(m).map(|l| Event::LinkGone(l.name))),
                RTM_NEWADDR | RTM_DELADDR => out.push(Event::Addr),
                _ => {}
            }
        }
        Ok(out)
    }
}

fn parse_link(m: &[u8]) -> Option<LinkInfo> {
    if m.len() < NLMSG_HDRLEN + 16 {
        return None;
    }
    let index = rd_u32(m, NLMSG_HDRLEN + 4) as i32;
    let flags = rd_u32(m, NLMSG_HDRLEN + 8);
    let mut name = None;
    let mut mtu = 0;
    for (at, d) in attrs(m, 16) {
        match at {
            IFLA_IFNAME => name = Some(cstr(d)),
            IFLA_MTU if d.len() >= 4 => mtu = rd_u32(d, 0),
            _ => {}
        }
    }
    Some(LinkInfo { index, name: name?, up: flags & libc::IFF_UP as u32 != 0, mtu })
}

fn parse_ip(family: u8, d: &[u8]) -> Option<IpAddr> {
    match (family as i32, d.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from([d[0], d[1], d[2], d[3]])),
        (libc::AF_INET6, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(d);
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

/// Dump all addresses with a fresh socket.
pub fn dump_addrs() -> io::Result<Vec<AddrInfo>> {
    Socket::open(0)?.addrs()
}

/// Interface index by name (`None` if it does not exist).
pub fn ifindex(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_aligned_and_native_endian() {
        let mut m = Msg::new(RTM_NEWRULE, NLM_F_ACK, &[2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        m.u32(FRA_FWMARK, 0x0100_0000).attr(FRA_PROTOCOL, &[PROTO_MOAT]);
        let b = m.finish(7).to_vec();
        assert_eq!(b.len(), 16 + 12 + 8 + 8);
        assert_eq!(rd_u32(&b, 0) as usize, b.len());
        assert_eq!(rd_u16(&b, 4), RTM_NEWRULE);
        assert_eq!(rd_u32(&b, 8), 7);
        let a = attrs(&b, 12);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0, FRA_FWMARK);
        assert_eq!(rd_u32(a[0].1, 0), 0x0100_0000);
        assert_eq!(a[1], (FRA_PROTOCOL, &[PROTO_MOAT][..]));
    }

    /// An nfnetlink message as the kernel builds it: host-order headers, be16 res_id.
    fn nft_msg(msg: u8, family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg as u16;
        let mut m = Msg::new(ty, 0, &[family, 0, 0x12, 0x34]);
        for (t, d) in attrs {
            m.attr(*t, d);
        }
        m.finish(0).to_vec()
    }

    #[test]
    fn nft_notifications_parse_table_and_committing_pid() {
        let mut dgram = nft_msg(2, NFPROTO_INET, &[(1, b"moat\0"), (3, &[0, 0, 0, 0, 0, 0, 0, 9])]);
        dgram.extend(nft_msg(6, 2, &[(1, b"fw4\0"), (2, b"input\0")]));
        dgram.extend(nft_msg(
            NFT_MSG_NEWGEN,
            0,
            &[(1, &77u32.to_be_bytes()), (2, &0x0001_e240u32.to_be_bytes()), (3, b"nft\0")],
        ));
        dgram.extend(nft_msg(17, NFPROTO_INET, &[(1, b"moat\0")])); // trace: ignored
        let mut other = Msg::new(RTM_NEWLINK, 0, &[0; 16]); // not nftables: ignored
        dgram.extend(other.finish(1));
        let ev = parse_nft(&dgram);
        assert_eq!(
            ev,
            vec![
                NftEvent::Change { msg: 2, family: NFPROTO_INET, table: "moat".into() },
                NftEvent::Change { msg: 6, family: 2, table: "fw4".into() },
                NftEvent::Gen { pid: 123_456, comm: "nft".into() },
            ]
        );
        // Truncated datagram: no panic, the complete messages still parse.
        assert_eq!(parse_nft(&dgram[..dgram.len() - 3]).len(), 3);
        assert!(parse_nft(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn nft_watch_reports_a_committed_transaction_touching_the_table() {
        let mut w = NftWatch::default();
        let ch = |fam: u8, t: &str| NftEvent::Change { msg: 2, family: fam, table: t.into() };
        let gen = |pid| NftEvent::Gen { pid, comm: "nft".into() };
        let watched = [(NFPROTO_INET, "moat"), (2, "mangle")];
        assert_eq!(w.feed(ch(2, "moat"), &watched), None); // ip moat: another table
        assert_eq!(w.feed(ch(NFPROTO_INET, "fw4"), &watched), None);
        assert_eq!(w.feed(gen(5), &watched), None);
        assert_eq!(w.feed(ch(NFPROTO_INET, "moat"), &watched), None);
        assert_eq!(w.feed(gen(6), &watched), Some(NftCommit { pid: 6, comm: "nft".into(), tables: 1 }));
        assert_eq!(w.feed(gen(7), &watched), None);
        w.feed(ch(2, "mangle"), &watched);
        w.feed(ch(NFPROTO_INET, "moat"), &watched);
        assert_eq!(w.feed(gen(8), &watched).map(|c| c.tables), Some(3));
    }

    #[test]
    fn loopback_is_listed() {
        let mut s = Socket::open(0).expect("netlink socket");
        let links = s.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo" && l.index > 0), "{links:?}");
    }
}
