//! The boot-time guard: `table inet moat_guard`, a static kill switch for the protected MACs that
//! the firewall itself loads (fw4 includes `/usr/share/nftables.d/ruleset-post/*.nft` in its one
//! transaction on every start, restart and reload), so protected devices are blocked from the
//! moment fw4 forwards at boot until moat's full table is in force, and whenever moat is stopped
//! longer than the hold, killed, or exits on an invalid configuration.
//!
//! The guard is *derived from the running ruleset* ([`super::ruleset`]): every drop/reject rule
//! of moat's guard chains (`guard_input`, `guard_forward`, the Tor input chains, `reject_fast`)
//! with its `meta mark` match replaced by the MACs of the devices carrying those marks, plus the
//! tunnel-side ct mark and `guard_output` (the router's replies to tunnel-side flows). So it only
//! ever drops what the running ruleset also drops, and never conflicts with it: rules that change
//! packets (marks, MSS clamp, redirects, queues) are not copied. It matches MACs on every
//! interface, not only `lan_device`. Its chains sit at `filter - 4`, right after moat's own
//! (`filter - 5`: moat's faster rejects win) and before fw4's. A separate table: moat's own
//! `table inet moat` transactions never touch it except to replace it with a new guard.

use super::nft::{Base, Chain, ChainType, Command, Hook, Line, Match, Priority, Rule, Script, Stmt, Table, TableId};
use super::ruleset::MOAT;
use super::Plan;
use crate::config::Mac;

/// The guard's table.
pub const GUARD: TableId = TableId { family: "inet", name: "moat_guard" };

/// Where fw4 finds the guard (its top-level include directory, loaded after `inet fw4`).
pub const DEFAULT_GUARD_FILE: &str = "/usr/share/nftables.d/ruleset-post/moat-guard.nft";

/// The script that removes the guard table (works whether or not it exists).
pub fn remove() -> Script {
    Script { comments: Vec::new(), commands: vec![Command::Add(GUARD), Command::Delete(GUARD)] }
}

/// Whether a statement only decides a packet's fate (or passes control) and changes nothing:
/// safe to copy into the guard. Exhaustive on purpose: a new statement kind must be decided here.
fn copyable(s: &Stmt) -> bool {
    match s {
        Stmt::Drop | Stmt::Return | Stmt::Jump(_) | Stmt::RejectTcpReset | Stmt::RejectAdminProhibited => true,
        Stmt::MarkSet { .. }
        | Stmt::CtMarkSet { .. }
        | Stmt::MssSet(_)
        | Stmt::Dnat(_)
        | Stmt::Redirect(_)
        | Stmt::Queue(_) => false,
    }
}

/// Whether a rule only ever drops or rejects (or passes control): safe to copy into the guard.
fn verdict_only(r: &Rule) -> bool {
    !r.stmts.is_empty() && r.stmts.iter().all(copyable)
}

/// The MACs of the enabled devices whose mark (within `mask`) is one of `values`, sorted.
fn macs_of(plan: &Plan, mask: u32, values: &[u32]) -> Vec<Mac> {
    let mut v: Vec<Mac> = plan
        .devices
        .iter()
        .filter(|d| d.mark != 0 && values.contains(&(d.mark & mask)))
        .flat_map(|d| d.macs.iter().copied())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// `rule` with its `meta mark` match replaced by `ether saddr { MACs }`; `None` if it matches a
/// mark no device carries.
fn by_mac(plan: &Plan, rule: &Rule) -> Option<Rule> {
    let mut r = rule.clone();
    for m in &mut r.matches {
        if let Match::Mark { mask, values } = m {
            let macs = macs_of(plan, *mask, values);
            if macs.is_empty() {
                return None;
            }
            *m = Match::EtherSaddr(macs);
        }
    }
    Some(r)
}

/// Chain bodies of moat's full table (`None` for a disabled plan).
fn moat_table(plan: &Plan) -> Option<&Table> {
    plan.ruleset.commands.iter().find_map(|c| match c {
        Command::Define(t) if t.id == MOAT => Some(t),
        _ => None,
    })
}

/// The tunnel-side rules of the running ruleset: `classify`'s rules that give flows started
/// from a tunnel their route's ct mark, and `guard_output` (the router's own packets of such
/// flows never leave by another interface). Shared with the hold table ([`super::hold`]).
pub fn tunnel_side(plan: &Plan) -> (Vec<Line>, Vec<Line>) {
    let Some(t) = moat_table(plan) else { return (Vec::new(), Vec::new()) };
    let rules = |name: &str, keep: &dyn Fn(&Rule) -> bool| -> Vec<Line> {
        t.chains
            .iter()
            .filter(|c| c.name == name)
            .flat_map(|c| c.body.iter())
            .filter_map(|l| match l {
                Line::Rule(r) if keep(r) => Some(Line::Rule(r.clone())),
                _ => None,
            })
            .collect()
    };
    let ct = rules("classify", &|r| r.stmts.iter().all(|s| matches!(s, Stmt::CtMarkSet { .. })) && !r.stmts.is_empty());
    let out = rules("guard_output", &|r| verdict_only(r) && !r.matches.iter().any(|m| matches!(m, Match::Mark { .. })));
    (ct, out)
}

fn base(kind: ChainType, hook: Hook, name: &'static str, offset: i32) -> Option<Base> {
    Some(Base { kind, hook, priority: Priority { name, offset } })
}

/// The guard ruleset for a valid, enabled plan that protects at least one device; `None`
/// otherwise (then the guard is removed). Loads whether or not its table exists.
pub fn guard(plan: &Plan) -> Option<Script> {
    if !plan.enabled || !plan.devices.iter().any(|d| d.mark != 0 && !d.macs.is_empty()) {
        return None;
    }
    let t = moat_table(plan)?;
    let copy = |c: &Chain| -> Vec<Line> {
        c.body
            .iter()
            .filter_map(|l| match l {
                Line::Rule(r) if verdict_only(r) => by_mac(plan, r).map(Line::Rule),
                _ => None,
            })
            .collect()
    };
    let mut chains = Vec::new();
    let (ct, out) = tunnel_side(plan);
    if !ct.is_empty() {
        chains.push(Chain {
            name: "tunnel_side".into(),
            base: base(ChainType::Filter, Hook::Prerouting, "mangle", 10),
            body: ct,
        });
    }
    for (name, hook) in [("guard_input", Hook::Input), ("guard_forward", Hook::Forward)] {
        if let Some(c) = t.chains.iter().find(|c| c.name == name) {
            chains.push(Chain { name: name.into(), base: base(ChainType::Filter, hook, "filter", -4), body: copy(c) });
        }
    }
    chains.push(Chain {
        name: "guard_output".into(),
        base: base(ChainType::Filter, Hook::Output, "filter", -4),
        body: out,
    });
    // Regular chains the copied rules jump to (Tor input chains, reject_fast).
    for c in t.chains.iter().filter(|c| c.base.is_none()) {
        chains.push(Chain { name: c.name.clone(), base: None, body: copy(c) });
    }
    Some(Script {
        comments: vec![
            "moat guard (written by moat from the last valid configuration; loaded by fw4 from".into(),
            "ruleset-post/ and by moat at start): protected devices are blocked unless moat routes them.".into(),
            "Removed by `moat cleanup` or a valid config that protects nobody.".into(),
        ],
        commands: vec![
            Command::Add(GUARD),
            Command::Delete(GUARD),
            Command::Define(Table { id: GUARD, sets: Vec::new(), chains }),
        ],
    })
}

/// The guard as text (`None`: nothing protected, the guard is removed).
pub fn guard_script(plan: &Plan) -> Option<String> {
    guard(plan).map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conf: &str) -> Plan {
        let model = crate::config::check_bytes("moat.conf", conf.as_bytes()).into_result().unwrap().model;
        super::super::build(&model, &super::super::facts::Facts::default()).unwrap()
    }

    const CONF: &str = "config moat 'main'\n\tlist lan_device 'br-lan'\n\
config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\
config tunnel 'tor'\n\toption type 'tor'\n\
config device\n\toption name 'a'\n\tlist mac '02:00:00:00:00:01'\n\toption route 'vpn'\n\
config device\n\toption name 'b'\n\tlist mac '02:00:00:00:00:02'\n\toption route 'tor'\n\
config device\n\toption name 'c'\n\tlist mac '02:00:00:00:00:03'\n\toption route 'block'\n\
config device\n\toption name 'd'\n\tlist mac '02:00:00:00:00:04'\n\toption route 'direct'\n";

    #[test]
    fn guard_drops_by_mac_what_the_ruleset_drops_and_nothing_else() {
        let p = plan(CONF);
        let g = guard_script(&p).expect("devices are protected");
        assert!(g.starts_with("# moat guard"), "{g}");
        assert!(g.contains("table inet moat_guard\ndelete table inet moat_guard\ntable inet moat_guard {"), "{g}");
        assert!(!g.contains("meta mark"), "no rule may depend on moat's marks: {g}");
        assert!(!g.contains("02:00:00:00:00:04"), "a direct device is not guarded: {g}");
        for l in [
            "ether saddr { 02:00:00:00:00:01 } oifname != \"wg0\" drop",
            "ether saddr { 02:00:00:00:00:02 } drop",
            "ether saddr { 02:00:00:00:00:03 } oifname != { \"br-lan\" } drop",
            "ether saddr { 02:00:00:00:00:01, 02:00:00:00:00:02, 02:00:00:00:00:03 } jump protected_input",
            "ether saddr { 02:00:00:00:00:02 } meta nfproto ipv4 tcp dport 9040 return",
            "jump reject_fast comment \"no other router service\"",
            "iifname \"wg0\" ct state new ct mark set",
            "oifname != \"wg0\" drop",
            "type filter hook forward priority filter - 4; policy accept;",
        ] {
            assert!(g.contains(l), "missing `{l}`:\n{g}");
        }
        for l in ["dnat", "redirect", "meta mark set", "queue", "maxseg"] {
            assert!(!g.contains(l), "the guard must not change packets (`{l}`):\n{g}");
        }
    }

    #[test]
    fn no_guard_when_nobody_is_protected_or_disabled() {
        let direct = "config moat 'main'\n\tlist lan_device 'br-lan'\n\
config device\n\toption name 'd'\n\tlist mac '02:00:00:00:00:04'\n\toption route 'direct'\n";
        assert_eq!(guard_script(&plan(direct)), None);
        let disabled = CONF.replace("config moat 'main'\n", "config moat 'main'\n\toption enabled '0'\n");
        assert_eq!(guard_script(&plan(&disabled)), None);
        assert_eq!(remove().to_string(), "table inet moat_guard\ndelete table inet moat_guard\n");
    }
}
