//! An owned, persistent nftables table written over nftables netlink (the `nft` program cannot
//! set these table flags): [`OwnedTable`] holds the NETLINK_NETFILTER socket that owns the table.
//!
//! Kernel semantics (net/netfilter/nf_tables_api.c, Linux 6.9+): a table created with
//! `NFT_TABLE_F_OWNER` can be changed or deleted only through its creator's socket (others get
//! `EPERM`; `nft flush ruleset` skips it); with `NFT_TABLE_F_PERSIST` as well it is not deleted
//! when that socket closes (the process exits or is killed): the kernel only clears `OWNER`, and
//! the next socket that sends `NEWTABLE` with `OWNER | PERSIST` adopts it. While orphaned it is an
//! ordinary table (anyone may delete it). Older kernels refuse the unknown flag with
//! `EOPNOTSUPP` ([`Unsupported`](NftError::Unsupported)).
//!
//! The table is a kill switch only: base chains at the forward and input hooks whose rules drop
//! a source MAC's packets unless they leave by an allowed interface or go to an allowed port of
//! the router, and at the output hook for the router's own packets from a tunnel address
//! ([`KillRule`]); plus two empty nat chains that keep established NAT working. Every change is
//! one nfnetlink batch (one transaction): the table is created or adopted, the chain created or
//! kept, its rules flushed and re-added, so the old rules stay until the commit.

use super::socket::Socket;
use super::{messages, Builder, Error, NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE};
use crate::sys;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NLM_F_APPEND: u16 = 0x800;
/// `NFT_TABLE_F_OWNER`.
pub const NFT_TABLE_F_OWNER: u32 = 0x2;
/// `NFT_TABLE_F_PERSIST` (Linux 6.9).
pub const NFT_TABLE_F_PERSIST: u32 = 0x4;
const NFPROTO_INET: u8 = 1;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const IFNAMSIZ: usize = 16;

/// The persistent table's name (`table inet moat_persist`).
pub const PERSIST_TABLE: &str = "moat_persist";
/// Its forward chain (hook forward).
pub const FORWARD_CHAIN: &str = "kill_forward";
/// Its input chain (hook input).
pub const INPUT_CHAIN: &str = "kill_input";
/// Its postrouting chain (filter, after srcnat): a packet from a tunnel address leaves only by
/// the tunnel. After NAT, not at output: an ICMP error the router sends from its LAN address
/// about a reply of a flow masqueraded into the tunnel is related to that flow, and srcnat
/// rewrites it to the tunnel address only after the output hook (seen leaving by the WAN in the
/// lab's 20-flush cell while `inet moat` and fw4 were deleted).
pub const POST_CHAIN: &str = "kill_postrouting";
/// Its priority: after srcnat (100).
pub const POST_PRIORITY: i32 = 110;
/// An empty nat chain at prerouting (dstnat): while any nat chain exists the kernel keeps
/// applying the NAT of existing connections; without one (`fw4 flush` deleted every other table)
/// the replies of a flow masqueraded into the tunnel are no longer translated back, reach the
/// router itself, and its RSTs from the tunnel address left by the WAN (seen in the lab).
pub const NAT_PRE_CHAIN: &str = "keep_nat_pre";
/// The same at postrouting (srcnat): established flows keep their masquerade.
pub const NAT_POST_CHAIN: &str = "keep_nat_post";
/// The filter chains' priority: filter − 5, as `guard_forward`/`guard_input` of `inet moat`.
pub const PERSIST_PRIORITY: i32 = -5;

/// One kill-switch rule: packets matching `key` are dropped unless `unless` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillRule {
    /// Which packets.
    pub key: Key,
    /// What still passes.
    pub unless: Unless,
}

/// What a [`KillRule`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Source MAC (`ether saddr`, on Ethernet-framed input interfaces): a protected device,
    /// in chain `kill_forward` (with [`Unless::Oif`]) or `kill_input` (with [`Unless::Dport`]).
    Mac([u8; 6]),
    /// Source address (chain `kill_postrouting`, after NAT): a tunnel's address.
    Source(IpAddr),
}

/// The exception of a [`KillRule`] (an empty list: nothing passes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unless {
    /// Chain `forward`: packets leaving by one of these interfaces (each shorter than 16 bytes).
    Oif(Vec<String>),
    /// Chain `input`: packets of IP protocol `l4proto` (6 TCP, 17 UDP) to one of these ports;
    /// other protocols are not matched by the rule.
    Dport {
        /// IP protocol number.
        l4proto: u8,
        /// Destination ports that pass.
        ports: Vec<u16>,
    },
}

impl KillRule {
    fn chain(&self) -> &'static str {
        match (&self.key, &self.unless) {
            (Key::Source(_), _) => POST_CHAIN,
            (Key::Mac(_), Unless::Oif(_)) => FORWARD_CHAIN,
            (Key::Mac(_), Unless::Dport { .. }) => INPUT_CHAIN,
        }
    }
}

/// Why the owned table could not be written.
#[derive(Debug)]
pub enum NftError {
    /// The kernel does not know the owner/persist flags (before Linux 6.9): `EOPNOTSUPP`/`EINVAL`.
    Unsupported(io::Error),
    /// Another process owns the table (`EPERM`), e.g. a second moat.
    NotOwner,
    /// Any other failure (socket, encoding, a kernel error).
    Io(io::Error),
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Unsupported(e) => write!(f, "kernel lacks owned persistent nft tables (Linux 6.9+): {e}"),
            NftError::NotOwner => write!(f, "table inet {PERSIST_TABLE} is owned by another process"),
            NftError::Io(e) => write!(f, "table inet {PERSIST_TABLE}: {e}"),
        }
    }
}

impl std::error::Error for NftError {}

impl From<io::Error> for NftError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => NftError::Unsupported(e),
            Some(libc::EPERM) => NftError::NotOwner,
            _ => NftError::Io(e),
        }
    }
}

impl From<Error> for NftError {
    fn from(e: Error) -> Self {
        NftError::Io(e.into())
    }
}

/// The socket owning `table inet moat_persist`; keep it open for as long as the table must be
/// changeable only by this process.
pub struct OwnedTable {
    sock: Socket,
}

impl OwnedTable {
    /// Open the NETLINK_NETFILTER socket (no table is touched yet).
    pub fn open() -> io::Result<OwnedTable> {
        Ok(OwnedTable { sock: Socket::open_proto(libc::NETLINK_NETFILTER, 0)? })
    }

    /// Create (or adopt, after a previous owner exited) the table and make its chain hold exactly
    /// `rules`, in one transaction.
    pub fn install(&mut self, rules: &[KillRule]) -> Result<(), NftError> {
        let mut buf = vec![0u8; 2048 + rules.len() * 512];
        let seq0 = self.sock.next_seq();
        let (n, count) = encode_install(&mut buf, seq0, rules)?;
        for _ in 1..count + 2 {
            self.sock.next_seq();
        }
        self.exchange(&buf[..n], seq0, count)
    }

    /// Delete the table (this socket must own it, or nobody may).
    pub fn remove(&mut self) -> Result<(), NftError> {
        let mut buf = [0u8; 256];
        let seq0 = self.sock.next_seq();
        let n = encode_delete(&mut buf, seq0)?;
        for _ in 0..3 {
            self.sock.next_seq();
        }
        self.exchange(&buf[..n], seq0, 1)
    }

    /// Send a batch whose `count` requests have sequence numbers `seq0 + 1 ..= seq0 + count`, and
    /// wait (at most 2 s per datagram) for an acknowledgement of each; the first error wins.
    fn exchange(&mut self, batch: &[u8], seq0: u32, count: u32) -> Result<(), NftError> {
        self.sock.send_bytes(batch)?;
        let mut seen = 0u32;
        let mut first_err = None;
        let mut buf = vec![0u8; 16384];
        while seen < count {
            let mut p = [libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            if sys::poll(&mut p, 2000)? == 0 {
                return Err(NftError::Io(io::Error::new(io::ErrorKind::TimedOut, "no netlink acknowledgement")));
            }
            let n = self.sock.recv(&mut buf)?;
            for a in parse_acks(&buf[..n.min(buf.len())], seq0, count) {
                let a = a?;
                seen += 1;
                if a != 0 && first_err.is_none() {
                    first_err = Some(io::Error::from_raw_os_error(a));
                }
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }
}

/// The errnos (0 = success) of the acknowledgements in `buf` that answer requests
/// `seq0 + 1 ..= seq0 + count`; other messages are skipped, a malformed one is an error.
pub fn parse_acks(buf: &[u8], seq0: u32, count: u32) -> Vec<Result<i32, Error>> {
    let mut out = Vec::new();
    for m in messages(buf) {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        };
        if m.ty != NLMSG_ERROR || m.seq.wrapping_sub(seq0).wrapping_sub(1) >= count {
            continue;
        }
        let ack = m.ack().map(|a| a.errno);
        let bad = ack.is_err();
        out.push(ack);
        if bad {
            // A truncated acknowledgement: nothing after it in this datagram is trusted.
            break;
        }
    }
    out
}

/// Append one message of a batch at `buf[*at..]`.
fn push(
    buf: &mut [u8],
    at: &mut usize,
    ty: u16,
    flags: u16,
    (seq, family, res_id): (u32, u8, u16),
    body: impl FnOnce(&mut Builder<'_>),
) -> Result<(), Error> {
    let mut b = Builder::new(buf.get_mut(*at..).ok_or(Error::NoSpace)?, ty, flags, seq);
    let id = res_id.to_be_bytes();
    b.bytes(&[family, 0, id[0], id[1]]);
    body(&mut b);
    *at += b.finish()?;
    Ok(())
}

fn nft_ty(msg: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | msg
}

fn table_body(b: &mut Builder<'_>) {
    b.attr_str(1, PERSIST_TABLE).attr_be_u32(2, NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST);
}

fn expr(b: &mut Builder<'_>, name: &str, data: impl FnOnce(&mut Builder<'_>)) {
    let el = b.nest_begin(1); // NFTA_LIST_ELEM
    b.attr_str(1, name); // NFTA_EXPR_NAME
    let d = b.nest_begin(2); // NFTA_EXPR_DATA
    data(b);
    b.nest_end(d);
    b.nest_end(el);
}

/// `cmp` of register 1 (`op`: 0 eq, 1 neq) with `value`.
fn cmp(b: &mut Builder<'_>, op: u32, value: &[u8]) {
    expr(b, "cmp", |b| {
        b.attr_be_u32(1, 1).attr_be_u32(2, op);
        let d = b.nest_begin(3); // NFTA_CMP_DATA
        b.attr(1, value); // NFTA_DATA_VALUE
        b.nest_end(d);
    });
}

/// The expressions of one rule: `ether saddr MAC [oifname != X ...] drop`, `ether saddr MAC
/// meta l4proto P [th dport != N ...] drop` (with the `meta iiftype ether` nft adds before an
/// `ether` match in an inet table) or `ip[6] saddr A [oifname != X ...] drop`.
fn rule_exprs(b: &mut Builder<'_>, r: &KillRule) {
    let list = b.nest_begin(4); // NFTA_RULE_EXPRESSIONS
    match r.key {
        Key::Mac(mac) => {
            // meta iiftype == ARPHRD_ETHER (host-order u16), as nft puts before `ether saddr`
            expr(b, "meta", |b| {
                b.attr_be_u32(1, 1).attr_be_u32(2, 8); // dreg 1, NFT_META_IIFTYPE
            });
            cmp(b, 0, &1u16.to_ne_bytes());
            // payload: link-layer header, offset 6, 6 bytes -> reg 1
            expr(b, "payload", |b| {
                b.attr_be_u32(1, 1).attr_be_u32(2, 0).attr_be_u32(3, 6).attr_be_u32(4, 6);
            });
            cmp(b, 0, &mac);
        }
        Key::Source(ip) => {
            let (proto, off, bytes): (u8, u32, Vec<u8>) = match ip {
                IpAddr::V4(a) => (2, 12, a.octets().to_vec()),
                IpAddr::V6(a) => (10, 8, a.octets().to_vec()),
            };
            expr(b, "meta", |b| {
                b.attr_be_u32(1, 1).attr_be_u32(2, 15); // dreg 1, NFT_META_NFPROTO
            });
            cmp(b, 0, &[proto]);
            expr(b, "payload", |b| {
                // network header, source address -> reg 1
                b.attr_be_u32(1, 1).attr_be_u32(2, 1).attr_be_u32(3, off).attr_be_u32(4, bytes.len() as u32);
            });
            cmp(b, 0, &bytes);
        }
    }
    match &r.unless {
        Unless::Oif(names) => {
            for name in names {
                expr(b, "meta", |b| {
                    b.attr_be_u32(1, 1).attr_be_u32(2, 7); // dreg 1, NFT_META_OIFNAME
                });
                let mut v = [0u8; IFNAMSIZ];
                let n = name.len().min(IFNAMSIZ - 1);
                v[..n].copy_from_slice(&name.as_bytes()[..n]);
                cmp(b, 1, &v);
            }
        }
        Unless::Dport { l4proto, ports } => {
            expr(b, "meta", |b| {
                b.attr_be_u32(1, 1).attr_be_u32(2, 16); // dreg 1, NFT_META_L4PROTO
            });
            cmp(b, 0, &[*l4proto]);
            expr(b, "payload", |b| {
                // transport header, offset 2 (destination port), 2 bytes -> reg 1
                b.attr_be_u32(1, 1).attr_be_u32(2, 2).attr_be_u32(3, 2).attr_be_u32(4, 2);
            });
            for p in ports {
                cmp(b, 1, &p.to_be_bytes());
            }
        }
    }
    expr(b, "immediate", |b| {
        b.attr_be_u32(1, 0); // NFT_REG_VERDICT
        let d = b.nest_begin(2); // NFTA_IMMEDIATE_DATA
        let v = b.nest_begin(2); // NFTA_DATA_VERDICT
        b.attr_be_u32(1, NF_DROP);
        b.nest_end(v);
        b.nest_end(d);
    });
    b.nest_end(list);
}

/// Encode the install batch into `buf` (requests numbered `seq0 + 1 ..`): BEGIN, NEWTABLE (create
/// or adopt), per chain (forward, input, output, the two empty nat chains) NEWCHAIN (create or keep) and
/// DELRULE (flush it), a NEWRULE per rule, END.
/// Returns the length and the number of acknowledged requests.
pub fn encode_install(buf: &mut [u8], seq0: u32, rules: &[KillRule]) -> Result<(usize, u32), Error> {
    let bad_name = |n: &String| n.is_empty() || n.len() >= IFNAMSIZ;
    if rules.iter().any(|r| matches!(&r.unless, Unless::Oif(v) if v.iter().any(bad_name))) {
        return Err(Error::NoSpace);
    }
    let mut at = 0;
    let mut seq = seq0;
    let mut next = || {
        seq = seq.wrapping_add(1);
        seq
    };
    let ack = NLM_F_ACK;
    push(buf, &mut at, NFNL_MSG_BATCH_BEGIN, 0, (seq0, 0, NFNL_SUBSYS_NFTABLES), |_| {})?;
    push(buf, &mut at, nft_ty(NFT_MSG_NEWTABLE), ack | NLM_F_CREATE, (next(), NFPROTO_INET, 0), table_body)?;
    let chains = [
        (FORWARD_CHAIN, NF_INET_FORWARD, "filter", PERSIST_PRIORITY),
        (INPUT_CHAIN, NF_INET_LOCAL_IN, "filter", PERSIST_PRIORITY),
        (POST_CHAIN, NF_INET_POST_ROUTING, "filter", POST_PRIORITY),
        (NAT_PRE_CHAIN, NF_INET_PRE_ROUTING, "nat", -100),
        (NAT_POST_CHAIN, NF_INET_POST_ROUTING, "nat", 100),
    ];
    for (chain, hook, kind, prio) in chains {
        push(buf, &mut at, nft_ty(NFT_MSG_NEWCHAIN), ack | NLM_F_CREATE, (next(), NFPROTO_INET, 0), |b| {
            b.attr_str(1, PERSIST_TABLE).attr_str(3, chain);
            let h = b.nest_begin(4); // NFTA_CHAIN_HOOK
            b.attr_be_u32(1, hook).attr_be_u32(2, prio as u32);
            b.nest_end(h);
            b.attr_be_u32(5, NF_ACCEPT).attr_str(7, kind); // policy, type
        })?;
        push(buf, &mut at, nft_ty(NFT_MSG_DELRULE), ack, (next(), NFPROTO_INET, 0), |b| {
            b.attr_str(1, PERSIST_TABLE).attr_str(2, chain);
        })?;
    }
    for r in rules {
        push(
            buf,
            &mut at,
            nft_ty(NFT_MSG_NEWRULE),
            ack | NLM_F_CREATE | NLM_F_APPEND,
            (next(), NFPROTO_INET, 0),
            |b| {
                b.attr_str(1, PERSIST_TABLE).attr_str(2, r.chain());
                rule_exprs(b, r);
            },
        )?;
    }
    let count = seq.wrapping_sub(seq0);
    push(buf, &mut at, NFNL_MSG_BATCH_END, 0, (seq.wrapping_add(1), 0, NFNL_SUBSYS_NFTABLES), |_| {})?;
    Ok((at, count))
}

/// Encode the delete batch (BEGIN, DELTABLE numbered `seq0 + 1`, END) into `buf`; its length.
pub fn encode_delete(buf: &mut [u8], seq0: u32) -> Result<usize, Error> {
    let mut at = 0;
    push(buf, &mut at, NFNL_MSG_BATCH_BEGIN, 0, (seq0, 0, NFNL_SUBSYS_NFTABLES), |_| {})?;
    push(buf, &mut at, nft_ty(NFT_MSG_DELTABLE), NLM_F_ACK, (seq0.wrapping_add(1), NFPROTO_INET, 0), |b| {
        b.attr_str(1, PERSIST_TABLE);
    })?;
    push(buf, &mut at, NFNL_MSG_BATCH_END, 0, (seq0.wrapping_add(2), 0, NFNL_SUBSYS_NFTABLES), |_| {})?;
    Ok(at)
}

#[cfg(test)]
#[path = "nftables_tests.rs"]
mod tests;
