//! A small typed nft representation: a [`Script`] of commands on [`Table`]s holding [`Set`]s and
//! [`Chain`]s of [`Rule`]s, rendered by `Display` in the exact text moat has always loaded
//! (tabs, one statement per line). Only what moat's rulesets use is modelled; every value is a
//! typed one ([`IfName`], [`Mac`], `IpAddr`, numbers), so nothing here ever needs quoting.

use std::fmt;
use std::net::IpAddr;

use crate::config::{IfName, Mac};

/// `0x%08x`, the form every mark and mask is written in.
pub fn hex(v: u32) -> String {
    format!("0x{v:08x}")
}

/// Writes `{ a, b }` with `item` for each element.
fn set_of<T>(
    f: &mut fmt::Formatter<'_>,
    v: &[T],
    item: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_str("{ ")?;
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, x)?;
    }
    f.write_str(" }")
}

/// An nft script: comment lines, then commands, fed to `nft -f` as one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `# ` comment lines at the top.
    pub comments: Vec<String>,
    /// Commands in order.
    pub commands: Vec<Command>,
}

/// One top-level nft command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `table inet moat` (create it empty if absent, so the delete that follows cannot fail).
    Add(TableId),
    /// `delete table inet moat`.
    Delete(TableId),
    /// `table inet moat { … }`: the table with its sets and chains.
    Define(Table),
}

/// A table's family and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableId {
    /// Address family (`inet`).
    pub family: &'static str,
    /// Table name.
    pub name: &'static str,
}

/// A table with its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Which table.
    pub id: TableId,
    /// Named sets (written before the chains).
    pub sets: Vec<Set>,
    /// Chains in order.
    pub chains: Vec<Chain>,
}

impl Table {
    /// The chain called `name`, if any.
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chains.iter_mut().find(|c| c.name == name)
    }
}

/// A named set of MAC addresses with per-element timeouts (the only kind moat uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Set name.
    pub name: &'static str,
    /// Elements: a MAC and its timeout in seconds.
    pub elements: Vec<(Mac, u32)>,
}

/// A chain: a base chain (hooked) or a regular one (jumped to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Chain name.
    pub name: String,
    /// Hook, type, priority and policy of a base chain; `None` for a regular chain.
    pub base: Option<Base>,
    /// Rules and comment lines in order.
    pub body: Vec<Line>,
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// `filter` or `nat`.
    pub kind: ChainType,
    /// Netfilter hook.
    pub hook: Hook,
    /// Priority: a standard name plus an offset.
    pub priority: Priority,
}

/// Chain type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// `filter`.
    Filter,
    /// `nat`.
    Nat,
}

/// Netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `prerouting`.
    Prerouting,
    /// `input`.
    Input,
    /// `forward`.
    Forward,
    /// `output`.
    Output,
    /// `postrouting`.
    Postrouting,
}

/// A chain priority: standard name plus offset (`mangle + 10`, `filter - 5`, `dstnat - 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// `mangle`, `filter` or `dstnat`.
    pub name: &'static str,
    /// Offset from it.
    pub offset: i32,
}

/// A line in a chain body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `# text` (for humans reading the script).
    Comment(String),
    /// A rule.
    Rule(Rule),
}

/// A rule: matches, then statements, then an optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// What happens to a matching packet.
    pub stmts: Vec<Stmt>,
    /// `comment "…"` (plain text; callers pass only safe characters).
    pub comment: Option<String>,
}

/// An interface name match operand: one name or a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ifaces {
    /// `"wg0"`.
    One(IfName),
    /// `{ "br-lan", "br-guest" }`.
    Set(Vec<IfName>),
}

/// IP family for `meta nfproto` and `dnat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    /// `ipv4`.
    V4,
    /// `ipv6`.
    V6,
}

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

/// A rule condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `meta mark & MASK == V` (one value) or `meta mark & MASK { V1, V2 }`.
    Mark {
        /// Mask.
        mask: u32,
        /// Accepted values (at least one).
        values: Vec<u32>,
    },
    /// `ct mark & MASK == V`.
    CtMark {
        /// Mask.
        mask: u32,
        /// Value.
        value: u32,
    },
    /// `ct state new`.
    CtStateNew,
    /// `iifname …`.
    Iif(Ifaces),
    /// `oifname …` / `oifname != …`.
    Oif {
        /// `!=`.
        not: bool,
        /// Names.
        names: Ifaces,
    },
    /// `ether saddr { MACs }`.
    EtherSaddr(Vec<Mac>),
    /// `ether saddr @set`.
    EtherSaddrIn(&'static str),
    /// `meta nfproto ipv4|ipv6`.
    Nfproto(Ip),
    /// `meta l4proto tcp` or `meta l4proto { tcp, udp }`.
    L4proto(Vec<Proto>),
    /// `fib daddr type local`.
    FibDaddrLocal,
    /// `th dport …` (`proto` None) or `tcp|udp dport …`; one port or a set.
    Dport {
        /// Protocol header the port is read from; `None` = `th`.
        proto: Option<Proto>,
        /// Ports (one or more).
        ports: Vec<u16>,
    },
    /// `tcp flags syn / syn,rst` (a SYN without RST).
    TcpSyn,
    /// `tcp option maxseg size > N`.
    MssAbove(u32),
    /// `icmp type { … }` (nft's type names, e.g. `echo-request`).
    IcmpType(Vec<&'static str>),
    /// `icmpv6 type { … }` (nft's type names, e.g. `nd-neighbor-solicit`).
    Icmpv6Type(Vec<&'static str>),
    /// `@th,OFFSET,LEN V` or `@th,OFFSET,LEN { V1, V2 }`: raw bits of the transport header and
    /// what follows it (`LEN` at most 128; each value written as `LEN / 4` hex digits).
    ThBits {
        /// Offset in bits from the start of the transport header.
        offset: u32,
        /// Length in bits (a multiple of 8, at most 128).
        len: u32,
        /// Accepted values (at least one).
        values: Vec<u128>,
    },
}

/// A rule statement (action or verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `meta mark set meta mark & KEEP | V`.
    MarkSet {
        /// Bits kept from the old mark.
        keep: u32,
        /// Bits set.
        value: u32,
    },
    /// `ct mark set ct mark & KEEP | V`.
    CtMarkSet {
        /// Bits kept from the old ct mark.
        keep: u32,
        /// Bits set.
        value: u32,
    },
    /// `tcp option maxseg size set N`.
    MssSet(u32),
    /// `dnat ip to A` / `dnat ip6 to A`.
    Dnat(IpAddr),
    /// `redirect to :PORT`.
    Redirect(u16),
    /// `queue num N`.
    Queue(u16),
    /// `jump CHAIN`.
    Jump(String),
    /// `return`.
    Return,
    /// `drop`.
    Drop,
    /// `reject with tcp reset`.
    RejectTcpReset,
    /// `reject with icmpx admin-prohibited`.
    RejectAdminProhibited,
}

impl Rule {
    /// A rule from its parts.
    pub fn new(matches: Vec<Match>, stmts: Vec<Stmt>) -> Rule {
        Rule { matches, stmts, comment: None }
    }
    /// The same rule with `comment "text"`.
    pub fn comment(mut self, text: impl Into<String>) -> Rule {
        self.comment = Some(text.into());
        self
    }
}

impl From<Rule> for Line {
    fn from(r: Rule) -> Line {
        Line::Rule(r)
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.comments {
            writeln!(f, "# {c}")?;
        }
        for c in &self.commands {
            match c {
                Command::Add(id) => writeln!(f, "{id}")?,
                Command::Delete(id) => writeln!(f, "delete {id}")?,
                Command::Define(t) => write!(f, "{t}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {} {}", self.family, self.name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {{", self.id)?;
        for s in &self.sets {
            write!(f, "{s}")?;
        }
        for c in &self.chains {
            write!(f, "{c}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tset {} {{", self.name)?;
        writeln!(f, "\t\ttype ether_addr; flags timeout;")?;
        f.write_str("\t\telements = ")?;
        set_of(f, &self.elements, |f, (m, t)| write!(f, "{m} timeout {t}s"))?;
        writeln!(f)?;
        writeln!(f, "\t}}")
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tchain {} {{", self.name)?;
        if let Some(b) = &self.base {
            writeln!(f, "\t\t{b}")?;
        }
        for l in &self.body {
            match l {
                Line::Comment(c) => writeln!(f, "\t\t# {c}")?,
                Line::Rule(r) => writeln!(f, "\t\t{r}")?,
            }
        }
        writeln!(f, "\t}}")
    }
}

impl fmt::Display for Base {
    /// `type filter hook forward priority filter - 5; policy accept;` (moat's base chains only
    /// ever drop, so the policy is always accept).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        };
        let hook = match self.hook {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        };
        write!(f, "type {kind} hook {hook} priority {}; policy accept;", self.priority)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        match self.offset {
            0 => Ok(()),
            o if o > 0 => write!(f, " + {o}"),
            o => write!(f, " - {}", o.unsigned_abs()),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if !std::mem::take(&mut first) {
                f.write_str(" ")?;
            }
            Ok(())
        };
        for m in &self.matches {
            sep(f)?;
            write!(f, "{m}")?;
        }
        for s in &self.stmts {
            sep(f)?;
            write!(f, "{s}")?;
        }
        if let Some(c) = &self.comment {
            sep(f)?;
            write!(f, "comment \"{c}\"")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ifaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ifaces::One(n) => write!(f, "\"{n}\""),
            Ifaces::Set(v) => set_of(f, v, |f, n| write!(f, "\"{n}\"")),
        }
    }
}

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ip::V4 => "ipv4",
            Ip::V6 => "ipv6",
        })
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One element bare, several as `{ a, b }`.
fn one_or_set<T: fmt::Display>(f: &mut fmt::Formatter<'_>, v: &[T]) -> fmt::Result {
    match v {
        [one] => write!(f, "{one}"),
        _ => set_of(f, v, |f, x| write!(f, "{x}")),
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Mark { mask, values } => match values.as_slice() {
                [one] => write!(f, "meta mark & {} == {}", hex(*mask), hex(*one)),
                _ => {
                    write!(f, "meta mark & {} ", hex(*mask))?;
                    set_of(f, values, |f, v| f.write_str(&hex(*v)))
                }
            },
            Match::CtMark { mask, value } => write!(f, "ct mark & {} == {}", hex(*mask), hex(*value)),
            Match::CtStateNew => f.write_str("ct state new"),
            Match::Iif(n) => write!(f, "iifname {n}"),
            Match::Oif { not, names } => write!(f, "oifname {}{names}", if *not { "!= " } else { "" }),
            Match::EtherSaddr(macs) => {
                f.write_str("ether saddr ")?;
                set_of(f, macs, |f, m| write!(f, "{m}"))
            }
            Match::EtherSaddrIn(set) => write!(f, "ether saddr @{set}"),
            Match::Nfproto(ip) => write!(f, "meta nfproto {ip}"),
            Match::L4proto(p) => {
                f.write_str("meta l4proto ")?;
                one_or_set(f, p)
            }
            Match::FibDaddrLocal => f.write_str("fib daddr type local"),
            Match::Dport { proto, ports } => {
                match proto {
                    Some(p) => write!(f, "{p} dport ")?,
                    None => f.write_str("th dport ")?,
                }
                one_or_set(f, ports)
            }
            Match::TcpSyn => f.write_str("tcp flags syn / syn,rst"),
            Match::MssAbove(n) => write!(f, "tcp option maxseg size > {n}"),
            Match::IcmpType(t) => {
                f.write_str("icmp type ")?;
                one_or_set(f, t)
            }
            Match::Icmpv6Type(t) => {
                f.write_str("icmpv6 type ")?;
                one_or_set(f, t)
            }
            Match::ThBits { offset, len, values } => {
                let w = (*len as usize).div_ceil(4);
                write!(f, "@th,{offset},{len} ")?;
                match values.as_slice() {
                    [one] => write!(f, "0x{one:0w$x}"),
                    _ => set_of(f, values, |f, v| write!(f, "0x{v:0w$x}")),
                }
            }
        }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::MarkSet { keep, value } => write!(f, "meta mark set meta mark & {} | {}", hex(*keep), hex(*value)),
            Stmt::CtMarkSet { keep, value } => write!(f, "ct mark set ct mark & {} | {}", hex(*keep), hex(*value)),
            Stmt::MssSet(n) => write!(f, "tcp option maxseg size set {n}"),
            Stmt::Dnat(IpAddr::V4(a)) => write!(f, "dnat ip to {a}"),
            Stmt::Dnat(IpAddr::V6(a)) => write!(f, "dnat ip6 to {a}"),
            Stmt::Redirect(p) => write!(f, "redirect to :{p}"),
            Stmt::Queue(n) => write!(f, "queue num {n}"),
            Stmt::Jump(c) => write!(f, "jump {c}"),
            Stmt::Return => f.write_str("return"),
            Stmt::Drop => f.write_str("drop"),
            Stmt::RejectTcpReset => f.write_str("reject with tcp reset"),
            Stmt::RejectAdminProhibited => f.write_str("reject with icmpx admin-prohibited"),
        }
    }
}
