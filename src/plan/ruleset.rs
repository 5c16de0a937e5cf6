//! The `table inet moat` ruleset as a typed [`Script`] (see docs/DESIGN.md).
//!
//! `classify` (prerouting, mangle + 10) sets the mark from the source MAC on every packet of
//! every flow (no conntrack dependency), whatever interface it arrives on: `ether saddr` only
//! matches Ethernet-framed interfaces (a bridge, a VLAN sub-interface like `br-lan.1`, Wi-Fi
//! outside the bridge, a guest bridge), so a protected MAC is protected on every LAN-side
//! interface, not only on `lan_device`, while L3 tunnels never match. `redirect_nat`
//! (prerouting, dstnat − 5, before fw4 and any "force DNS" redirect) sends tunnel devices' DNS
//! for the router to the tunnel's resolver and Tor devices' TCP/DNS to Tor;
//! `guard_input`/`guard_forward` (filter − 5, before fw4) only ever drop or reject: a tunnel
//! device's packet leaving by any other interface is dropped, IPv6 of a tunnel without IPv6 is
//! rejected, Tor devices forward nothing, block devices reach the `lan_device`s only, and every
//! protected device reaches only its link's services on the router (DHCP, ICMP, Tor's ports:
//! the input allow-list of [`super::services`]). `classify` also gives flows that start on a
//! tunnel's side a ct mark, and `guard_output` (output, filter − 5) drops the router's own
//! packets of such flows leaving by another interface (fw4's reject RSTs for a server's late
//! packets after a tunnel flap went out of the WAN with the tunnel address: found by the lab's
//! leak matrix) and the router's DHCP relay packets for protected devices. Everything is kernel
//! state, so it stays in force if the daemon dies.

use super::nft::{
    hex, Base, Chain, ChainType, Command, Hook, Ifaces, Ip, Line, Match, Priority, Proto, Rule, Script, Stmt, Table,
    TableId,
};
use super::{services, ClassKind, Plan, QueueBackend};
use crate::config::IfName;
use crate::config::Mac;

/// moat's table.
pub const MOAT: TableId = TableId { family: "inet", name: "moat" };

/// The nft script that removes moat's table (works whether or not it exists).
pub const NFT_REMOVE: &str = "table inet moat\ndelete table inet moat\n";

/// [`NFT_REMOVE`] as a typed value.
pub fn remove() -> Script {
    Script { comments: Vec::new(), commands: vec![Command::Add(MOAT), Command::Delete(MOAT)] }
}

/// Every protected device's MACs (devices with a mark), sorted and deduplicated.
pub fn protected_macs(plan: &Plan) -> Vec<Mac> {
    let mut macs: Vec<Mac> = plan.devices.iter().filter(|d| d.mark != 0).flat_map(|d| d.macs.iter().copied()).collect();
    macs.sort();
    macs.dedup();
    macs
}

/// Characters allowed from a section address into an nft comment line.
fn safe_section(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '[' | ']')).take(48).collect()
}

fn base(kind: ChainType, hook: Hook, name: &'static str, offset: i32) -> Option<Base> {
    Some(Base { kind, hook, priority: Priority { name, offset } })
}

fn chain(name: impl Into<String>, base: Option<Base>, body: Vec<Line>) -> Chain {
    Chain { name: name.into(), base, body }
}

fn mark(mask: u32, values: &[u32]) -> Match {
    Match::Mark { mask, values: values.to_vec() }
}

/// The full ruleset for an enabled plan (one transaction: make sure the table exists, delete it,
/// re-create it, so the old rules stay until the commit).
pub fn ruleset(plan: &Plan, lan_devices: &[IfName]) -> Script {
    let mask = plan.marks.mask;
    let keep = !mask;
    let lans = || Ifaces::Set(lan_devices.to_vec());
    let l3 = || {
        plan.classes.iter().filter_map(|c| {
            if let ClassKind::L3 { device, .. } = &c.kind {
                Some((c, device))
            } else {
                None
            }
        })
    };

    // classify
    let mut classify = Vec::new();
    for d in plan.devices.iter().filter(|d| d.mark != 0) {
        classify.push(Line::Comment(format!("{} -> {}", safe_section(&d.section), d.route)));
        classify.push(
            Rule::new(vec![Match::EtherSaddr(d.macs.clone())], vec![Stmt::MarkSet { keep, value: d.mark }]).into(),
        );
    }
    // Flows whose first packet arrives from a tunnel (e.g. a server's late packets after a
    // tunnel flap flushed the masquerade entries) get the route's ct mark, so anything the
    // router generates in reply (fw4's reject RSTs/ICMP carry the offending packet's conntrack)
    // is held in the tunnel by guard_output instead of being routed out of the WAN in the clear.
    for (c, device) in l3() {
        classify.push(
            Rule::new(
                vec![Match::Iif(Ifaces::One(device.clone())), Match::CtStateNew],
                vec![Stmt::CtMarkSet { keep, value: c.value }],
            )
            .comment(format!("{}: flows started from the tunnel side", c.label))
            .into(),
        );
    }

    // redirect_nat
    let mut nat = Vec::new();
    for c in &plan.classes {
        let m = || mark(mask, &c.values);
        match &c.kind {
            ClassKind::L3 { dns: Some(d), .. } => {
                let ip = if d.is_ipv4() { Ip::V4 } else { Ip::V6 };
                let mut matches = vec![m(), Match::Nfproto(ip), Match::FibDaddrLocal];
                matches.extend([
                    Match::L4proto(vec![Proto::Tcp, Proto::Udp]),
                    Match::Dport { proto: None, ports: vec![53] },
                ]);
                nat.push(
                    Rule::new(matches, vec![Stmt::Dnat(*d)])
                        .comment(format!("{}: DNS for the router goes to the tunnel resolver", c.label))
                        .into(),
                );
            }
            ClassKind::Tor { trans_port, dns_port } => {
                nat.push(
                    Rule::new(
                        vec![m(), Match::Nfproto(Ip::V4), Match::Dport { proto: Some(Proto::Udp), ports: vec![53] }],
                        vec![Stmt::Redirect(*dns_port)],
                    )
                    .comment(format!("{}: DNS to Tor DNSPort", c.label))
                    .into(),
                );
                nat.push(
                    Rule::new(
                        vec![m(), Match::Nfproto(Ip::V4), Match::L4proto(vec![Proto::Tcp])],
                        vec![Stmt::Redirect(*trans_port)],
                    )
                    .comment(format!("{}: TCP to Tor TransPort", c.label))
                    .into(),
                );
            }
            _ => {}
        }
    }

    // guard_input: every protected route jumps to its input allow-list (services.rs).
    let mut input = Vec::new();
    let mut input_chains = Vec::new();
    let protected: Vec<u32> = plan.classes.iter().flat_map(|c| c.values.iter().copied()).collect();
    if !protected.is_empty() {
        input.push(
            Rule::new(vec![mark(mask, &protected)], vec![Stmt::Jump(services::PROTECTED_INPUT.into())])
                .comment("protected devices reach only their link's services on the router")
                .into(),
        );
        input_chains.push(services::input_chain(&plan.classes, mask));
    }

    // guard_output: the router's own packets belonging to tunnel-side flows never leave by
    // another interface (found by the lab: RSTs from the tunnel address on the WAN after a flap).
    let mut output = services::relay_rules(&protected_macs(plan));
    for (c, device) in l3() {
        output.push(
            Rule::new(
                vec![
                    Match::CtMark { mask, value: c.value },
                    Match::Oif { not: true, names: Ifaces::One(device.clone()) },
                ],
                vec![Stmt::Drop],
            )
            .comment(format!("{}: replies to tunnel-side flows stay in the tunnel", c.label))
            .into(),
        );
    }

    // guard_forward
    let mut forward = Vec::new();
    for c in &plan.classes {
        let m = || mark(mask, &c.values);
        let drop_unless = |names| Rule::new(vec![m(), Match::Oif { not: true, names }], vec![Stmt::Drop]);
        match &c.kind {
            ClassKind::L3 { device, ipv6, .. } => {
                if !ipv6 {
                    forward.push(
                        Rule::new(vec![m(), Match::Nfproto(Ip::V6)], vec![Stmt::Jump("reject_fast".into())])
                            .comment(format!("{}: tunnel carries no IPv6", c.label))
                            .into(),
                    );
                }
                forward
                    .push(drop_unless(Ifaces::One(device.clone())).comment(format!("{}: kill switch", c.label)).into());
            }
            ClassKind::Tor { .. } => {
                forward.push(
                    Rule::new(vec![m()], vec![Stmt::Drop])
                        .comment(format!("{}: only TCP and DNS, through Tor", c.label))
                        .into(),
                );
            }
            ClassKind::Block => forward.push(drop_unless(lans()).comment("block: LAN only").into()),
        }
    }
    // MSS clamp: a full-size TCP segment through a padded tunnel fits pad_to (IPv4/IPv6 + TCP
    // headers), in both directions: the SYN leaving through the tunnel (what the far end may send)
    // and the SYN-ACK coming out of it (what the devices may send; path-MTU discovery cannot help
    // below Linux's 552-byte minimum PMTU). Every flow of the tunnel, since its pad-only queue
    // pads (and drops what is too big for) all of them.
    let mut clamps: Vec<(&IfName, u16)> = Vec::new();
    let padded = plan.queues.shaped.iter().map(|q| (&q.device, q.pad_to));
    for (dev, pad) in padded.chain(plan.queues.pad.iter().map(|q| (&q.device, q.pad_to))) {
        if let Some(p) = pad {
            if !clamps.contains(&(dev, p)) {
                clamps.push((dev, p));
            }
        }
    }
    for (dev, p) in clamps {
        for (ip, mss) in [(Ip::V4, p as u32 - 40), (Ip::V6, p as u32 - 60)] {
            for way in
                [Match::Oif { not: false, names: Ifaces::One(dev.clone()) }, Match::Iif(Ifaces::One(dev.clone()))]
            {
                forward.push(
                    Rule::new(
                        vec![way, Match::Nfproto(ip), Match::TcpSyn, Match::MssAbove(mss)],
                        vec![Stmt::MssSet(mss)],
                    )
                    .into(),
                );
            }
        }
    }

    let mut chains = vec![
        chain("classify", base(ChainType::Filter, Hook::Prerouting, "mangle", 10), classify),
        chain("redirect_nat", base(ChainType::Nat, Hook::Prerouting, "dstnat", -5), nat),
        chain("guard_input", base(ChainType::Filter, Hook::Input, "filter", -5), input),
    ];
    chains.extend(input_chains);
    chains.push(chain("guard_output", base(ChainType::Filter, Hook::Output, "filter", -5), output));
    chains.push(chain("guard_forward", base(ChainType::Filter, Hook::Forward, "filter", -5), forward));

    // queue (nft backend)
    let q = &plan.queues;
    if q.backend == QueueBackend::Nft && !(q.shaped.is_empty() && q.pad.is_empty()) {
        let mut body: Vec<Line> = Vec::new();
        for s in &q.shaped {
            body.push(
                Rule::new(
                    vec![Match::Oif { not: false, names: Ifaces::One(s.device.clone()) }, mark(s.mark_mask, &[s.mark])],
                    vec![Stmt::Queue(s.queue)],
                )
                .into(),
            );
        }
        for p in &q.pad {
            body.push(
                Rule::new(
                    vec![Match::Oif { not: false, names: Ifaces::One(p.device.clone()) }],
                    vec![Stmt::Queue(p.queue)],
                )
                .into(),
            );
        }
        chains.push(chain("shape_queue", base(ChainType::Filter, Hook::Postrouting, "mangle", 0), body));
    }

    chains.push(chain(
        "reject_fast",
        None,
        vec![
            Rule::new(vec![Match::L4proto(vec![Proto::Tcp])], vec![Stmt::RejectTcpReset]).into(),
            Rule::new(vec![], vec![Stmt::RejectAdminProhibited]).into(),
        ],
    ));

    Script {
        comments: vec![
            "moat ruleset, loaded with `nft -f` as ONE transaction: the first two lines make sure the".into(),
            "table exists, then it is deleted and re-created, so the old rules stay until the commit.".into(),
            format!(
                "fwmark_mask {}: {} of {} mark values in use (routes, then shaped devices)",
                hex(mask),
                plan.marks.used,
                plan.marks.capacity
            ),
        ],
        commands: vec![
            Command::Add(MOAT),
            Command::Delete(MOAT),
            Command::Define(Table { id: MOAT, sets: Vec::new(), chains }),
        ],
    }
}

/// `ruleset` with the shaped devices' forwarding dropped first thing in `guard_forward` — what
/// the daemon loads when the xt NFQUEUE rules cannot be installed, so shaped traffic never
/// leaves unshaped. `None` when there are no shaped devices (or no full ruleset).
pub fn blocking_shaped(plan: &Plan, ruleset: &Script) -> Option<Script> {
    if plan.queues.shaped.is_empty() {
        return None;
    }
    let values: Vec<u32> = plan.queues.shaped.iter().map(|q| q.mark).collect();
    let rule = Rule::new(vec![mark(plan.marks.mask, &values)], vec![Stmt::Drop])
        .comment("shaped: queue rules missing, fail closed");
    let mut s = ruleset.clone();
    let table = s.commands.iter_mut().find_map(|c| if let Command::Define(t) = c { Some(t) } else { None })?;
    table.chain_mut("guard_forward")?.body.insert(0, rule.into());
    Some(s)
}
