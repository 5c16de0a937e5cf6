//! What a protected device may reach on the router itself, and the router's DHCP relays
//! (issue 10, point 4: router services cannot relay for a protected device).
//!
//! Every protected route (tunnel, Tor, block) shares one input allow-list chain,
//! `protected_input`, jumped to from `guard_input` for every protected mark. It lets through what the device needs on its
//! link and nothing else: DHCPv4 (UDP 67) and DHCPv6 (UDP 547) to the router's server, the
//! ICMP/ICMPv6 of the link ([`ICMP_TYPES`], [`ICMPV6_TYPES`]: echo, errors, router
//! solicitation, neighbour discovery, multicast listener messages), and for Tor its TransPort
//! and DNSPort (IPv4, where `redirect_nat` sends the device). A tunnel's DNS for the router was
//! already sent to the tunnel's resolver by `redirect_nat`, so it never reaches input. Anything
//! else to the router (a proxy, DoH, DNS or DoT not redirected, UPnP/SSDP, IGMP for igmpproxy,
//! SSH and its port forwards, mDNS, …) is rejected, so no router service can carry the device's
//! data or names out in the clear. Allowed packets `return`: fw4's own input rules still apply.
//!
//! DHCP relay: the router's relay (dnsmasq `dhcp-relay`, odhcpd relay mode) receives the
//! device's DHCP as allowed above and sends it on to a server, with the device's MAC, DUID and
//! hostname. `guard_output` drops such packets the router itself sends ([`relay_rules`]):
//! - DHCPv4: a BOOTREQUEST (op 1) to UDP 67 whose `chaddr` is a protected MAC (exact: every
//!   relayed request carries the client's hardware address at a fixed offset);
//! - DHCPv6: a Relay-Forward (type 12) to UDP 547 whose peer-address is the protected MAC's
//!   EUI-64 link-local address. Limit: a client that uses a random or stable-privacy link-local
//!   address is not recognised (its DUID sits at a variable offset nft cannot match). Relays
//!   that send through packet sockets (relayd) bypass netfilter entirely.

use super::nft::{Chain, Ip, Line, Match, Proto, Rule, Stmt};
use super::{ClassKind, RouteClass};
use crate::config::Mac;

/// ICMP types a protected device may send to the router.
pub const ICMP_TYPES: &[&str] = &["echo-request", "destination-unreachable", "time-exceeded", "parameter-problem"];

/// ICMPv6 types a protected device may send to the router (link housekeeping and errors).
pub const ICMPV6_TYPES: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "echo-request",
    "mld-listener-query",
    "mld-listener-report",
    "mld-listener-done",
    "nd-router-solicit",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "mld2-listener-report",
];

/// The name of the input allow-list chain.
pub const PROTECTED_INPUT: &str = "protected_input";

/// The input allow-list chain shared by every protected route (see the module docs); `mask` is
/// the mark mask. `guard_input` jumps here for every protected mark value.
pub fn input_chain(classes: &[RouteClass], mask: u32) -> Chain {
    let ret = |matches: Vec<Match>| -> Line { Rule::new(matches, vec![Stmt::Return]).into() };
    let mut body = Vec::new();
    for c in classes {
        if let ClassKind::Tor { trans_port, dns_port } = &c.kind {
            let m = || Match::Mark { mask, values: c.values.clone() };
            body.push(ret(vec![
                m(),
                Match::Nfproto(Ip::V4),
                Match::Dport { proto: Some(Proto::Tcp), ports: vec![*trans_port] },
            ]));
            body.push(ret(vec![
                m(),
                Match::Nfproto(Ip::V4),
                Match::Dport { proto: Some(Proto::Udp), ports: vec![*dns_port] },
            ]));
        }
    }
    body.push(ret(vec![Match::Nfproto(Ip::V4), Match::Dport { proto: Some(Proto::Udp), ports: vec![67] }]));
    body.push(ret(vec![Match::Nfproto(Ip::V6), Match::Dport { proto: Some(Proto::Udp), ports: vec![547] }]));
    body.push(ret(vec![Match::IcmpType(ICMP_TYPES.to_vec())]));
    body.push(ret(vec![Match::Icmpv6Type(ICMPV6_TYPES.to_vec())]));
    body.push(Rule::new(vec![], vec![Stmt::Jump("reject_fast".into())]).comment("no other router service").into());
    Chain { name: PROTECTED_INPUT.into(), base: None, body }
}

/// `guard_output` rules dropping the router's DHCP relay packets for `macs` (sorted, deduplicated
/// protected MACs; no rules when empty). See the module docs for what is matched.
pub fn relay_rules(macs: &[Mac]) -> Vec<Line> {
    if macs.is_empty() {
        return Vec::new();
    }
    let chaddr: Vec<u128> = macs.iter().map(|m| m.0.iter().fold(0u128, |a, b| a << 8 | *b as u128)).collect();
    let peers: Vec<u128> = macs.iter().map(|m| eui64_link_local(*m)).collect();
    vec![
        Rule::new(
            vec![
                Match::Dport { proto: Some(Proto::Udp), ports: vec![67] },
                Match::ThBits { offset: 64, len: 8, values: vec![1] },
                Match::ThBits { offset: 288, len: 48, values: chaddr },
            ],
            vec![Stmt::Drop],
        )
        .comment("no DHCP relay of protected devices")
        .into(),
        Rule::new(
            vec![
                Match::Dport { proto: Some(Proto::Udp), ports: vec![547] },
                Match::ThBits { offset: 64, len: 8, values: vec![12] },
                Match::ThBits { offset: 208, len: 128, values: peers },
            ],
            vec![Stmt::Drop],
        )
        .comment("no DHCPv6 relay of protected devices")
        .into(),
    ]
}

/// `fe80::` plus the modified EUI-64 interface identifier of `m` (U/L bit flipped, `ff:fe` in
/// the middle), as a 128-bit number.
pub fn eui64_link_local(m: Mac) -> u128 {
    let b = m.0;
    let iid = [b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
    let mut v: u128 = 0;
    for x in iid {
        v = v << 8 | x as u128;
    }
    v | 0xfe80u128 << 112
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_of_a_mac() {
        let m = Mac::parse("02:6d:61:62:00:01").unwrap();
        let a = std::net::Ipv6Addr::from(eui64_link_local(m));
        assert_eq!(a, "fe80::6d:61ff:fe62:1".parse::<std::net::Ipv6Addr>().unwrap());
    }

    #[test]
    fn relay_rules_render_chaddr_and_peer() {
        let m = Mac::parse("02:6d:61:62:00:01").unwrap();
        let r: Vec<String> = relay_rules(&[m])
            .into_iter()
            .map(|l| match l {
                Line::Rule(r) => r.to_string(),
                Line::Comment(c) => c,
            })
            .collect();
        assert_eq!(
            r[0],
            "udp dport 67 @th,64,8 0x01 @th,288,48 0x026d61620001 drop comment \"no DHCP relay of protected devices\""
        );
        assert!(r[1].contains("@th,208,128 0xfe80000000000000006d61fffe620001"), "{}", r[1]);
        assert!(relay_rules(&[]).is_empty());
    }
}
