//! Keeps `table inet moat_persist` (owned and persistent: [`crate::netlink::nftables`]) equal to
//! the applied plan's kill switch ([`crate::plan::persist`]). While the daemon runs only it can
//! change the table, so `fw4 flush` / `service firewall stop` cannot remove it; it stays when
//! the daemon exits or is killed (the next start adopts it) and goes with `moat cleanup` or a
//! plan that protects nobody. Kernels before 6.9 refuse the flags: then it is off, said once in
//! the log and in the status, and moat's fast table restore is the only cover of a flush.

use crate::config::IfName;
use crate::netlink::nftables::{KillRule, NftError, OwnedTable, PERSIST_TABLE};
use crate::plan::facts::Facts;
use crate::plan::{persist::kill_rules, Plan};
use log::{error, info, warn};

/// Where the persistent kill switch stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum State {
    /// Not written yet (or nothing to protect).
    #[default]
    Off,
    /// In force with this many rules.
    Active(usize),
    /// The kernel cannot own/persist tables (the reason).
    Unsupported(String),
    /// Writing it failed (the reason); retried at the next apply.
    Failed(String),
}

impl State {
    /// One line for the status.
    pub fn describe(&self) -> String {
        match self {
            State::Off => "off".into(),
            State::Active(n) => format!("table inet {PERSIST_TABLE}: {n} rule(s), survives fw4 flush"),
            State::Unsupported(e) => format!("unavailable ({e}): fw4 flush leaves a window of milliseconds"),
            State::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// The owner socket and what it last wrote.
#[derive(Default)]
pub struct Persist {
    table: Option<OwnedTable>,
    written: Option<Vec<KillRule>>,
    /// Current state.
    pub state: State,
}

impl Persist {
    /// Make the table hold `plan`'s kill switch (remove it if that is empty). Cheap when unchanged.
    pub fn sync(&mut self, plan: &Plan, lan_devices: &[IfName], facts: &Facts) {
        if matches!(self.state, State::Unsupported(_)) {
            return;
        }
        let rules = kill_rules(plan, lan_devices, facts);
        if self.written.as_ref() == Some(&rules) {
            return;
        }
        let t = match self.table.as_mut() {
            Some(t) => t,
            None => match OwnedTable::open() {
                Ok(t) => self.table.insert(t),
                Err(e) => return self.fail(NftError::Io(e)),
            },
        };
        let r = if rules.is_empty() { t.remove().or_else(gone_ok) } else { t.install(&rules) };
        match r {
            Ok(()) => {
                if rules.is_empty() {
                    self.state = State::Off;
                } else {
                    if self.state != State::Active(rules.len()) {
                        info!("persistent kill switch: {}", State::Active(rules.len()).describe());
                    }
                    self.state = State::Active(rules.len());
                }
                self.written = Some(rules);
            }
            Err(NftError::Unsupported(e)) => {
                warn!(
                    "persistent kill switch unavailable (needs Linux 6.9+: {e}); a firewall stop (fw4 flush) \
                     leaves protected devices unguarded until moat restores its table, milliseconds"
                );
                self.state = State::Unsupported(e.to_string());
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: NftError) {
        error!("persistent kill switch: {e}");
        self.state = State::Failed(e.to_string());
        self.written = None;
    }
}

/// Removing a table that is not there is success.
fn gone_ok(e: NftError) -> Result<(), NftError> {
    match &e {
        NftError::Io(io) if io.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        _ => Err(e),
    }
}

/// Remove the table from a process that does not own it (`moat cleanup`, or the daemon's "remove
/// everything"): works once its owner has exited; absent is success; `NotOwner` while a running
/// moat owns it.
pub fn remove_orphan() -> Result<(), NftError> {
    OwnedTable::open().map_err(NftError::Io)?.remove().or_else(gone_ok)
}
