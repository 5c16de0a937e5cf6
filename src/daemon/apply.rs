//! Effects: make the kernel match a [`Plan`], or remove everything moat added.
//!
//! - nft: the plan's script goes to `nft -f -` on stdin, one transaction (the old table stays
//!   in force until the new one commits, or stays entirely if the script fails).
//! - ip rules/routes: rtnetlink ([`crate::netlink`]); every entry carries moat's protocol
//!   number, so syncing is "add what is missing, then delete what is moat's and not wanted",
//!   which also cleans up after a previous run that was killed.
//! - xt NFQUEUE rules (when the kernel has no nft `queue`): `iptables-restore --noflush` of the
//!   plan's `MOAT_QUEUE` chain, plus the jump from mangle POSTROUTING when missing.
//!
//! Order on apply: queue rules, nft, rules, routes — at every step a protected device's packets
//! are either handled by the new plan or dropped (marked packets with no rule yet go to the
//! main table and meet the nft kill switch). Order on removal: nft first (marking stops), then
//! rules, routes, queue rules.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::error::{ApplyError, ApplyErrors, RunError};
use crate::netlink::{Route, Rule, Socket};
use crate::plan::facts::Facts;
use crate::plan::{guard, hold_script, Plan, QueueBackend, AF_INET, AF_INET6, IPT_CHAIN, NFT_REMOVE};

/// Process ids of the last few programs moat ran (ring): nftables notifications name the
/// committing pid, so the daemon can tell its own transactions from others'.
static OWN_PIDS: Mutex<[u32; 8]> = Mutex::new([0; 8]);

/// Whether `pid` is one of the programs moat ran recently.
pub fn is_own_pid(pid: u32) -> bool {
    pid != 0 && OWN_PIDS.lock().is_ok_and(|p| p.contains(&pid))
}

fn remember_pid(pid: u32) {
    if let Ok(mut p) = OWN_PIDS.lock() {
        p.rotate_right(1);
        p[0] = pid;
    }
}

/// Run a program with `input` on stdin; Ok(()) on exit status 0.
pub fn run_with_stdin(prog: &str, args: &[&str], input: &str) -> Result<(), RunError> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| RunError::Spawn { prog: prog.into(), err })?;
    remember_pid(child.id());
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(err) = stdin.write_all(input.as_bytes()) {
            // Reap it; whatever it read of a truncated script, its exit status is not trusted.
            drop(stdin);
            let _ = child.wait();
            return Err(RunError::Stdin { prog: prog.into(), err });
        }
    }
    let out = child.wait_with_output().map_err(|err| RunError::Wait { prog: prog.into(), err })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RunError::Failed {
            prog: prog.into(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn run_quiet(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Load an nft script in one transaction. Any error means the script is not in force.
pub fn nft(script: &str) -> Result<(), ApplyError> {
    run_with_stdin("nft", &["-f", "-"], script).map_err(ApplyError::Nft)
}

/// `script` followed by the plan's guard table ([`guard::guard`]; its removal when the plan
/// protects nobody): both change in the same transaction, so the guard always matches the
/// ruleset in force.
pub fn with_guard(plan: &Plan, script: &str) -> String {
    let g = guard::guard(plan).unwrap_or_else(guard::remove);
    format!("{script}{g}")
}

/// Whether `table inet moat` exists.
pub fn nft_table_present() -> bool {
    run_quiet("nft", &["list", "table", "inet", "moat"])
}

/// The desired netlink rules of a plan.
pub fn desired_rules(plan: &Plan) -> Vec<Rule> {
    plan.rules
        .iter()
        .map(|r| Rule { family: r.family, mark: r.mark, mask: r.mask, table: r.table, priority: r.priority })
        .collect()
}

/// The desired netlink routes of a plan, given which tunnel devices are up now (a `dev` route
/// can only exist while its device is up; the unreachable route is always there).
pub fn desired_routes(plan: &Plan, facts: &Facts) -> Vec<Route> {
    let mut out = Vec::new();
    for r in &plan.routes {
        match &r.device {
            None => out.push(Route { family: r.family, table: r.table, oif: None, metric: r.metric }),
            Some(d) => {
                if facts.iface(d).is_some_and(|i| i.up) {
                    if let Ok(idx) = crate::sys::ifindex(d.as_str()) {
                        out.push(Route { family: r.family, table: r.table, oif: Some(idx), metric: r.metric });
                    }
                }
            }
        }
    }
    out
}

/// Make moat's rules equal `want` (add missing first, then delete stale).
pub fn sync_rules(nl: &mut Socket, want: &[Rule]) -> Result<(), ApplyErrors> {
    sync(nl, want)
}

/// Make moat's routes equal `want` (add missing first, then delete stale).
pub fn sync_routes(nl: &mut Socket, want: &[Route]) -> Result<(), ApplyErrors> {
    sync(nl, want)
}

/// One kind of netlink entry moat owns (ip rules, routes): how to list, add and delete it,
/// and how to name it in an error.
trait Entry: PartialEq + Sized {
    /// Plural noun for "listing ...: error".
    const KIND: &'static str;
    fn family(&self) -> u8;
    fn list(nl: &mut Socket, family: u8) -> std::io::Result<Vec<Self>>;
    fn add(&self, nl: &mut Socket) -> std::io::Result<()>;
    fn del(&self, nl: &mut Socket) -> std::io::Result<()>;
    /// Error text for a failed add.
    fn adding(&self) -> String;
    /// Error text for a failed delete.
    fn deleting(&self) -> String;
    /// Whether a failed delete is expected and not an error.
    fn gone(_e: &std::io::Error) -> bool {
        false
    }
}

impl Entry for Rule {
    const KIND: &'static str = "rules";
    fn family(&self) -> u8 {
        self.family
    }
    fn list(nl: &mut Socket, family: u8) -> std::io::Result<Vec<Self>> {
        nl.moat_rules(family)
    }
    fn add(&self, nl: &mut Socket) -> std::io::Result<()> {
        nl.add_rule(self)
    }
    fn del(&self, nl: &mut Socket) -> std::io::Result<()> {
        nl.del_rule(self)
    }
    fn adding(&self) -> String {
        format!("adding rule fwmark 0x{:08x}/0x{:08x} table {}", self.mark, self.mask, self.table)
    }
    fn deleting(&self) -> String {
        format!("deleting rule fwmark 0x{:08x} table {}", self.mark, self.table)
    }
}

impl Entry for Route {
    const KIND: &'static str = "routes";
    fn family(&self) -> u8 {
        self.family
    }
    fn list(nl: &mut Socket, family: u8) -> std::io::Result<Vec<Self>> {
        nl.moat_routes(family)
    }
    fn add(&self, nl: &mut Socket) -> std::io::Result<()> {
        nl.add_route(self)
    }
    fn del(&self, nl: &mut Socket) -> std::io::Result<()> {
        nl.del_route(self)
    }
    fn adding(&self) -> String {
        format!(
            "adding route in table {} ({})",
            self.table,
            self.oif.map_or("unreachable".into(), |i| format!("oif {i}"))
        )
    }
    fn deleting(&self) -> String {
        format!("deleting route in table {}", self.table)
    }
    /// A dev route vanishes by itself when its link goes down; not an error.
    fn gone(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(libc::ESRCH)
    }
}

/// Make moat's entries of one kind equal `want`, per address family: add the missing ones
/// first, then delete moat's that are not wanted. A family that cannot be listed is an error
/// only for IPv4 or when entries of that family are wanted (IPv6 may be compiled out).
fn sync<E: Entry>(nl: &mut Socket, want: &[E]) -> Result<(), ApplyErrors> {
    let mut errs = Vec::new();
    for fam in [AF_INET, AF_INET6] {
        let have = match E::list(nl, fam) {
            Ok(h) => h,
            Err(err) => {
                if fam == AF_INET || want.iter().any(|r| r.family() == fam) {
                    errs.push(ApplyError::Netlink { what: format!("listing {}", E::KIND), err });
                }
                continue;
            }
        };
        for r in want.iter().filter(|r| r.family() == fam) {
            if !have.contains(r) {
                if let Err(err) = r.add(nl) {
                    errs.push(ApplyError::Netlink { what: r.adding(), err });
                }
            }
        }
        for r in have.iter().filter(|r| !want.contains(r)) {
            if let Err(err) = r.del(nl) {
                if !E::gone(&err) {
                    errs.push(ApplyError::Netlink { what: r.deleting(), err });
                }
            }
        }
    }
    ApplyErrors(errs).into_result()
}

/// Install the plan's xt NFQUEUE rules (iptables backend) or remove ours (otherwise).
pub fn sync_queue_rules(plan: &Plan) -> Result<(), ApplyError> {
    if plan.queues.backend != QueueBackend::Iptables || plan.queues.iptables.is_empty() {
        remove_queue_rules();
        return Ok(());
    }
    for r in &plan.queues.iptables {
        let hooked = run_quiet(r.tool, &["-w", "-t", "mangle", "-C", "POSTROUTING", "-j", IPT_CHAIN]);
        run_with_stdin(r.restore, &["-w", "--noflush"], &r.script(!hooked))
            .map_err(|err| ApplyError::QueueRules { err, blocked: false })?;
    }
    Ok(())
}

/// Remove moat's xt NFQUEUE chain and its hook (best effort; absent is fine).
pub fn remove_queue_rules() {
    for ipt in ["iptables", "ip6tables"] {
        // Read-only look first (listing with `iptables -L` may create the mangle table).
        let present =
            Command::new(format!("{ipt}-save")).args(["-t", "mangle"]).stderr(Stdio::null()).output().is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with(&format!(":{IPT_CHAIN} ")))
            });
        if !present {
            continue;
        }
        while run_quiet(ipt, &["-w", "-t", "mangle", "-D", "POSTROUTING", "-j", IPT_CHAIN]) {}
        run_quiet(ipt, &["-w", "-t", "mangle", "-F", IPT_CHAIN]);
        run_quiet(ipt, &["-w", "-t", "mangle", "-X", IPT_CHAIN]);
    }
}

/// Apply a whole plan. Returns the errors (the nft step failing leaves the old table intact, and
/// then it is the only error returned: nothing after it ran).
pub fn apply(plan: &Plan, facts: &Facts, nl: &mut Socket) -> Result<(), ApplyErrors> {
    if !plan.enabled {
        return remove_all(nl);
    }
    let mut errs = ApplyErrors::default();
    let mut script = &plan.nft;
    let fallback;
    if let Err(e) = sync_queue_rules(plan) {
        let err = match e {
            ApplyError::QueueRules { err, .. } => err,
            other => return Err(other.into()),
        };
        errs.0.push(ApplyError::QueueRules { err, blocked: true });
        if let Some(f) = plan.nft_blocking_shaped() {
            fallback = f;
            script = &fallback;
        }
    }
    nft(&with_guard(plan, script))?;
    errs.note(sync_rules(nl, &desired_rules(plan)));
    errs.note(sync_routes(nl, &desired_routes(plan, facts)));
    errs.into_result()
}

/// Remove everything moat added: its nft table and the guard table, rules, routes and queue
/// rules (`enabled '0'`, `moat cleanup`; the guard file is the caller's).
pub fn remove_all(nl: &mut Socket) -> Result<(), ApplyErrors> {
    let mut errs = ApplyErrors::default();
    if let Err(e) = nft(&format!("{NFT_REMOVE}{}", guard::remove())) {
        errs.0.push(e);
    }
    errs.note(sync_rules(nl, &[]));
    errs.note(sync_routes(nl, &[]));
    remove_queue_rules();
    errs.into_result()
}

/// Stop: swap the full table for the hold table ([`hold_script`]: protected MACs stay blocked
/// for `hold_secs`, so a restart never lets them out in the clear), then remove moat's rules,
/// routes and queue rules. The guard table stays: once the hold has expired it keeps
/// protected devices blocked until moat runs again. With nothing protected (or `hold_secs` 0)
/// the table is deleted instead of held. If the hold cannot be loaded the full table stays
/// (never "remove everything"). Without an applied plan (this run never got its table in),
/// nothing is touched: a protective table a killed run left behind stays in force.
pub fn stop(plan: Option<&Plan>, hold_secs: u32, nl: &mut Socket) -> Result<(), ApplyErrors> {
    let Some(plan) = plan else { return Ok(()) };
    let hold = if hold_secs == 0 { None } else { hold_script(plan, hold_secs) };
    let mut errs = ApplyErrors::default();
    if let Err(e) = nft(hold.as_deref().unwrap_or(NFT_REMOVE)) {
        errs.0.push(e);
    }
    errs.note(sync_rules(nl, &[]));
    errs.note(sync_routes(nl, &[]));
    remove_queue_rules();
    errs.into_result()
}
