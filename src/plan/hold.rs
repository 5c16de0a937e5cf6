//! The "hold" ruleset loaded when the daemon stops (see [`hold_script`]).

use super::nft::{Base, Chain, ChainType, Command, Hook, Match, Priority, Proto, Rule, Script, Set, Stmt, Table};
use super::{ruleset::MOAT, Plan};

/// Seconds protected devices stay blocked after the daemon stops (SIGTERM), so that a restart
/// (stop, then start) never lets their packets out in the clear.
pub const HOLD_SECS: u32 = 15;

/// The "hold" ruleset loaded when the daemon stops: it replaces the full table in one
/// transaction and only drops forwarded packets (and DNS/DoT to the router) from the
/// protected devices' MACs, through a set whose elements expire after `secs` seconds. It keeps
/// the running table's tunnel-side ct mark and `guard_output` ([`super::guard::tunnel_side`]),
/// so a tunnel flap during a restart cannot send fw4's reject RSTs for a server's late packets
/// out of the WAN with the tunnel address. A new daemon replaces it atomically with the full
/// table (no gap); if none comes, the elements expire and the guard table
/// ([`super::guard`]) keeps the devices blocked (`moat cleanup` deletes both). `None` if
/// nothing is protected.
pub fn hold_script(plan: &Plan, secs: u32) -> Option<String> {
    hold_ruleset(plan, secs).map(|s| s.to_string())
}

/// [`hold_script`] as a typed value.
pub fn hold_ruleset(plan: &Plan, secs: u32) -> Option<Script> {
    let mut macs: Vec<_> = plan.devices.iter().filter(|d| d.mark != 0).flat_map(|d| d.macs.iter().copied()).collect();
    if !plan.enabled || macs.is_empty() {
        return None;
    }
    // Byte order, which is also the text order (fixed-width lowercase hex).
    macs.sort();
    macs.dedup();
    let base = |hook| Some(Base { kind: ChainType::Filter, hook, priority: Priority { name: "filter", offset: -5 } });
    let forward = Chain {
        name: "hold_forward".into(),
        base: base(Hook::Forward),
        body: vec![Rule::new(vec![Match::EtherSaddrIn("hold")], vec![Stmt::Drop]).into()],
    };
    let input = Chain {
        name: "hold_input".into(),
        base: base(Hook::Input),
        body: vec![Rule::new(
            vec![
                Match::EtherSaddrIn("hold"),
                Match::L4proto(vec![Proto::Tcp, Proto::Udp]),
                Match::Dport { proto: None, ports: vec![53, 853] },
            ],
            vec![Stmt::Drop],
        )
        .into()],
    };
    let mut chains = vec![forward, input];
    let (ct, out) = super::guard::tunnel_side(plan);
    if !out.is_empty() {
        let prerouting = Some(Base {
            kind: ChainType::Filter,
            hook: Hook::Prerouting,
            priority: Priority { name: "mangle", offset: 10 },
        });
        chains.push(Chain { name: "tunnel_side".into(), base: prerouting, body: ct });
        chains.push(Chain { name: "guard_output".into(), base: base(Hook::Output), body: out });
    }
    let table = Table {
        id: MOAT,
        sets: vec![Set { name: "hold", elements: macs.into_iter().map(|m| (m, secs)).collect() }],
        chains,
    };
    Some(Script {
        comments: vec![format!(
            "moat stopped: protected devices stay blocked for {secs}s (restart window), then by inet moat_guard until moat runs."
        )],
        commands: vec![Command::Add(MOAT), Command::Delete(MOAT), Command::Define(table)],
    })
}
