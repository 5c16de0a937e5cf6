//! `moat run`: the daemon.
//!
//! Three threads, no async runtime. The control thread (this module) runs one `poll(2)` loop
//! over: a signalfd (SIGHUP = reload, SIGTERM/SIGINT = stop), an rtnetlink monitor socket (link
//! up/down, addresses), an nftables monitor socket (someone else deleting or editing `table inet
//! moat`, e.g. `fw4 flush` from `service firewall stop`, is undone at once, without debounce),
//! and timers (event debounce, a periodic check that the kernel state is still what the plan
//! says). The packet thread ([`packet_path`]) serves the optional [`Engine`] (the shaping queue
//! engine: queue sockets, slot timer) and never waits for the control thread; the logger thread
//! ([`logging`]) does the writing of log lines.
//!
//! The daemon "converges": probe facts, build the plan from the current model, and make the
//! kernel match it ([`apply`]). Because the rules are kernel state, they stay in force if the
//! daemon is killed: protected devices stay marked and their packets keep meeting the kill
//! switch (and, for shaped devices, a queue nobody reads, which drops). `enabled '0'` removes
//! what moat added; SIGTERM removes it too but first swaps the table for a short-lived "hold"
//! ([`crate::plan::hold_script`]) so that a restart never lets protected devices out in the
//! clear, and the guard table ([`crate::plan::guard`], also written as an fw4 include by
//! [`guard_file`]) keeps them blocked after that until moat runs again; `moat cleanup` removes
//! everything at once (package removal).

pub mod apply;
pub mod engine;
pub mod error;
pub mod guard_file;
pub mod health;
pub mod logging;
pub mod mailbox;
pub mod packet_path;
pub mod persist;
pub mod probe;
pub mod series;
pub mod status;

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::log::{debug, error, info, warn};

use crate::config::Model;
use crate::netlink::{self, Event, NftWatch, Socket};
use crate::plan::facts::Facts;
use crate::plan::{self, Plan};
use error::{ApplyErrors, StepError};
use packet_path::PacketPath;

/// Default state directory (status file).
pub const DEFAULT_STATE_DIR: &str = "/var/run/moat";
/// How often the kernel state is re-checked without any event.
pub const VERIFY_EVERY: Duration = Duration::from_secs(30);
/// How often the status file is rewritten while moat is enabled (a tunnel's handshake, tor's
/// listeners and a companion's answer show within this, not only on events or re-checks).
pub const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Quiet time after a netlink event before converging (events come in bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Command-line options of `moat run`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Config file.
    pub config: String,
    /// Where `status.json` goes.
    pub state_dir: PathBuf,
    /// Log to stderr even if `/dev/log` exists.
    pub stderr: bool,
    /// Seconds protected devices stay blocked after SIGTERM ([`crate::plan::HOLD_SECS`]).
    pub hold_secs: u32,
    /// The boot-time guard's fw4 include ([`guard_file`]; default
    /// [`crate::plan::guard::DEFAULT_GUARD_FILE`]).
    pub guard_file: PathBuf,
}

/// A component driven by the packet thread's event loop — the shaping queue engine implements
/// this. It lives on that thread ([`packet_path`]), hence `Send`.
pub trait Engine: Send {
    /// File descriptors to poll for readability.
    fn fds(&self) -> Vec<RawFd>;
    /// One of [`Engine::fds`] is readable.
    fn readable(&mut self, fd: RawFd, now: Instant);
    /// The earliest instant the engine wants [`Engine::tick`], if any.
    fn next_deadline(&self) -> Option<Instant>;
    /// A deadline passed.
    fn tick(&mut self, now: Instant);
    /// A plan was applied (or re-applied): open/close queues to match `plan.queues`.
    /// An error is logged and shown in the status; the queues stay fail-closed regardless.
    fn plan_applied(&mut self, plan: &Plan) -> Result<(), String>;
    /// The daemon stops: release everything.
    fn shutdown(&mut self);
    /// Extra status (JSON object text) for `moat status`, e.g. per-device counters.
    fn status_json(&self) -> Option<String> {
        None
    }
}

struct Daemon {
    opts: Options,
    model: Model,
    nft_queue: bool,
    nl: Socket,
    facts: Facts,
    applied: Option<Plan>,
    last_error: Option<StepError>,
    applied_at: u64,
    engine: Option<PacketPath>,
    /// The engine's status after it shut down (for the "stopped" status file).
    engine_last: Option<String>,
    /// The owned, persistent kill-switch table (survives `fw4 flush`).
    persist: persist::Persist,
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Load the model once the file has settled (a file read while a writer rewrites it in place
/// is read again: `config::load_file_settled`); an invalid file gives `configuration invalid:
/// <first error>` (and how many more), every error logged.
fn load(config: &str) -> Result<Model, String> {
    match crate::config::load_file_settled(config, crate::config::SETTLE) {
        Ok(l) => {
            for w in &l.warnings {
                warn!("{w}");
            }
            Ok(l.model)
        }
        Err(errs) => {
            for e in &errs {
                error!("{e}");
            }
            let more = match errs.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            Err(format!(
                "configuration invalid: {}{more}",
                errs.first().map_or_else(|| config.to_string(), ToString::to_string)
            ))
        }
    }
}

impl Daemon {
    fn probe(&self, model: &Model) -> Facts {
        probe::probe_with(&plan::interface_names(model), self.nft_queue)
    }

    /// Build the plan for `model` on the current system and apply it. On a plan error nothing
    /// is touched. `force` re-loads the nft script even if unchanged.
    fn converge(&mut self, model: &Model, force: bool) -> Result<(), StepError> {
        let facts = self.probe(model);
        let plan =
            plan::build(model, &facts).map_err(|e| StepError::Plan(e.iter().map(ToString::to_string).collect()))?;
        let same_nft = self.applied.as_ref().is_some_and(|p| p.nft == plan.nft);
        let changed = self.applied.as_ref() != Some(&plan);
        let result = if !plan.enabled {
            if force || changed || self.last_error.is_some() {
                apply::remove_all(&mut self.nl)
            } else {
                Ok(())
            }
        } else if force || !same_nft || self.last_error.is_some() {
            apply::apply(&plan, &facts, &mut self.nl)
        } else {
            // Same ruleset: keep routes/rules/queue rules true (e.g. a tunnel came back up).
            let mut errs = ApplyErrors::default();
            if changed {
                if let Err(e) = apply::sync_queue_rules(&plan) {
                    errs.0.push(e);
                }
            }
            errs.note(apply::sync_rules(&mut self.nl, &apply::desired_rules(&plan)));
            errs.note(apply::sync_routes(&mut self.nl, &apply::desired_routes(&plan, &facts)));
            errs.into_result()
        };
        if force || changed {
            if let Some(e) = self.engine.as_mut() {
                if let Err(x) = e.plan_applied(&plan) {
                    error!("queue engine: {x}");
                }
            }
            for n in &plan.notes {
                info!("{n}");
            }
        }
        if result.is_ok() && (force || changed) {
            info!(
                "applied: {} device(s) protected, {} route(s), {} ip rule(s), {} shaped",
                plan.devices.iter().filter(|d| d.mark != 0).count(),
                plan.classes.len(),
                plan.rules.len(),
                plan.queues.shaped.len()
            );
            self.applied_at = now_unix();
        }
        // nft failing (or not even starting) leaves the old table: only remember the plan if
        // its nft part is in force.
        if !result.as_ref().is_err_and(ApplyErrors::nft_failed) {
            // The guard table is in force with this plan: the fw4 include follows it.
            let text = plan::guard::guard_script(&plan);
            match guard_file::sync(&self.opts.guard_file, text.as_deref()) {
                Ok(true) => info!(
                    "guard file {} {}",
                    self.opts.guard_file.display(),
                    if text.is_some() { "written" } else { "removed (nothing protected)" }
                ),
                Ok(false) => {}
                Err(e) => error!("guard file {}: {e}", self.opts.guard_file.display()),
            }
            self.persist.sync(&plan, &model.global.lan_devices, &facts);
            self.applied = Some(plan);
        }
        self.facts = facts;
        result.map_err(StepError::Apply)
    }

    fn write_status(&self, state: status::State) {
        let engine = match &self.engine {
            Some(p) => p.status_json(),
            None => self.engine_last.clone(),
        };
        let json = status::render(
            std::process::id(),
            &self.opts.config,
            state,
            self.applied.as_ref(),
            &self.facts,
            self.last_error.as_ref().map(|e| e.to_string()).as_deref(),
            self.applied_at,
            &health::Health::probe(self.applied.as_ref(), now_unix()),
            engine.as_deref(),
        );
        // The persistent kill switch's state (issue 10: say when the kernel lacks it), one key.
        let persist = format!("  \"persist_kill_switch\": {},\n", crate::json::string(&self.persist.state.describe()));
        let json = match json.find("  \"last_error\": ") {
            Some(at) => format!("{}{persist}{}", &json[..at], &json[at..]),
            None => json,
        };
        if let Err(e) = status::write(&self.opts.state_dir, &json) {
            warn!("cannot write status to {}: {e}", self.opts.state_dir.display());
        }
    }

    fn current_state(&self) -> status::State {
        match (&self.last_error, self.applied.as_ref().map(|p| p.enabled)) {
            (_, Some(false)) => status::State::Disabled,
            (Some(_), _) => status::State::Degraded,
            (None, _) => status::State::Running,
        }
    }

    fn step(&mut self, force: bool) {
        let model = self.model.clone();
        match self.converge(&model, force) {
            Ok(()) => {
                if self.last_error.take().is_some() {
                    info!("recovered: kernel state matches the plan");
                }
            }
            Err(e) => {
                error!("{e}");
                self.last_error = Some(e);
            }
        }
        self.write_status(self.current_state());
    }

    /// Someone else changed or deleted moat's table: load the last applied ruleset first (one
    /// `nft -f`, no probing, no iptables runs before it: every millisecond here is a window in
    /// which protected devices are unguarded), then converge normally.
    fn restore_table(&mut self) {
        // After a failed step the table in force may be a fallback: converge fully instead.
        if let Some(p) = self.applied.as_ref().filter(|p| p.enabled && self.last_error.is_none()) {
            if let Err(e) = apply::nft(&apply::with_guard(p, &p.nft)) {
                error!("restoring table inet moat: {e}");
                self.step(true);
                return;
            }
            // `fw4 flush` also deletes iptables-nft's mangle table (shaped devices' queue rules).
            if let Err(e) = apply::sync_queue_rules(p) {
                error!("{e}");
                self.step(true);
                return;
            }
            self.step(false);
        } else {
            self.step(true);
        }
    }

    fn reload(&mut self) {
        info!("reload: reading {}", self.opts.config);
        let Ok(model) = load(&self.opts.config) else {
            error!("reload: invalid configuration; the running state is unchanged");
            return;
        };
        self.nft_queue = probe::probe_nft_queue();
        let facts = self.probe(&model);
        if let Err(errs) = plan::build(&model, &facts) {
            for e in &errs {
                error!("{}: {e}", self.opts.config);
            }
            error!("reload: configuration cannot be applied; the running state is unchanged");
            return;
        }
        logging::set_level(model.global.log_level);
        scheduling(self.engine.as_ref(), model.global.realtime, self.model.global.realtime);
        self.model = model;
        self.step(true);
    }
}

/// Switches `option realtime` (see `sys::set_realtime`) when it changed: for the
/// packet thread, which serves the slots (without an engine, for this thread as before).
fn scheduling(packets: Option<&PacketPath>, on: bool, was: bool) {
    if on != was {
        let r = match packets {
            Some(p) => p.set_realtime(on),
            None => crate::sys::set_realtime(on),
        };
        match r {
            Ok(()) => info!("scheduling: {}", if on { "real-time (SCHED_FIFO 1)" } else { "normal" }),
            Err(e) => warn!("option realtime: {e}; scheduling unchanged"),
        }
    }
}

/// `poll(2)` over `fds` (`timeout_ms` -1 = no timeout). EINTR is `Ok(0)`.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> std::io::Result<usize> {
    match crate::sys::poll(fds, timeout_ms) {
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
        r => r,
    }
}

/// Milliseconds from `now` until `deadline` for `poll`, rounded up (never early).
pub(crate) fn timeout_ms(deadline: Instant, now: Instant) -> i32 {
    let timeout = deadline.saturating_duration_since(now);
    timeout.as_millis().min(i32::MAX as u128 - 1) as i32 + i32::from(timeout.subsec_micros() % 1000 != 0)
}

/// nftables tables whose changes by other processes the daemon undoes at once: its own table,
/// and iptables-nft's mangle tables (they hold the xt NFQUEUE rules of shaped devices; `fw4
/// flush` deletes them too).
///
/// The guard table (`inet moat_guard`, index 3) too: it is restored with moat's table.
const WATCHED: [(u8, &str); 4] =
    [(netlink::NFPROTO_INET, "moat"), (2, "mangle"), (10, "mangle"), (netlink::NFPROTO_INET, "moat_guard")];

/// Signals handled through the signalfd.
const SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

fn signalfd() -> std::io::Result<RawFd> {
    crate::sys::signalfd(&SIGNALS)
}

fn read_signals(fd: RawFd) -> Vec<u32> {
    crate::sys::read_signals(fd)
}

/// Run the daemon until SIGTERM/SIGINT. Returns the process exit code.
///
/// First thing, the guard file (if any) is loaded, so protected devices are blocked even if fw4
/// started without it. An invalid configuration at start then exits with 1 *without touching*
/// anything else: whatever a previous run left stays in force with the guard, so protected
/// devices stay blocked, and the status file says `configuration invalid: <file>:<line> …`.
pub fn run(opts: Options, engine: Option<Box<dyn Engine>>) -> u8 {
    // Block the signals first: an early SIGHUP (default action: terminate) must not kill us, and
    // the logger and packet threads inherit the mask (signals reach the signalfd only).
    let sfd = signalfd();
    logging::init(opts.stderr, crate::config::LogLevel::Info);
    let code = match sfd {
        Ok(sfd) => serve(opts, engine, sfd),
        Err(e) => {
            error!("signalfd: {e}");
            1
        }
    };
    logging::flush();
    code
}

/// The control thread's loop (see [`run`]).
fn serve(opts: Options, engine: Option<Box<dyn Engine>>, sfd: RawFd) -> u8 {
    match guard_file::load(&opts.guard_file) {
        Ok(true) => info!("guard loaded from {}", opts.guard_file.display()),
        Ok(false) => {}
        Err(e) => error!("{e} ({})", opts.guard_file.display()),
    }
    let model = match load(&opts.config) {
        Ok(m) => m,
        Err(why) => {
            error!("{why}; exiting: the last valid protection (guard and kernel state) stays in force");
            let json = status::render(
                std::process::id(),
                &opts.config,
                status::State::Invalid,
                None,
                &Facts::default(),
                Some(&why),
                0,
                &health::Health::default(),
                None,
            );
            if let Err(e) = status::write(&opts.state_dir, &json) {
                warn!("cannot write status to {}: {e}", opts.state_dir.display());
            }
            return 1;
        }
    };
    logging::set_level(model.global.log_level);
    let engine = match engine.map(PacketPath::spawn) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            error!("packet thread: {e}");
            return 1;
        }
    };
    scheduling(engine.as_ref(), model.global.realtime, false);
    let groups = netlink::RTMGRP_LINK | netlink::RTMGRP_IPV4_IFADDR | netlink::RTMGRP_IPV6_IFADDR;
    let (mon, nl) = match (Socket::open(groups), Socket::open(0)) {
        (Ok(m), Ok(n)) => (m, n),
        (Err(e), _) | (_, Err(e)) => {
            error!("netlink: {e}");
            return 1;
        }
    };
    let mut d = Daemon {
        opts,
        model,
        nft_queue: probe::probe_nft_queue(),
        nl,
        facts: Facts::default(),
        applied: None,
        last_error: None,
        applied_at: 0,
        engine,
        engine_last: None,
        persist: persist::Persist::default(),
    };
    info!(
        "starting (pid {}, config {}, nft queue statement: {})",
        std::process::id(),
        d.opts.config,
        if d.nft_queue { "yes" } else { "no, using xt NFQUEUE" }
    );
    // Opened before the first apply: moat's own transactions are told apart by the committing
    // pid (apply::is_own_pid).
    let nftmon = match Socket::open_nft_monitor() {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("nftables monitor: {e}; changes to table inet moat are found only every {}s", VERIFY_EVERY.as_secs());
            None
        }
    };
    let mut watch = NftWatch::default();
    d.step(true);

    let mut next_verify = Instant::now() + VERIFY_EVERY;
    let mut dirty_at: Option<Instant> = None;
    let mut series = series::Sampler::new(Instant::now());
    // While enabled the status file is refreshed often: a handshake, a stopped tor, "downstream
    // shaped / not shaped" must show within seconds, not at the next 30 s re-check.
    let mut next_status = Instant::now() + STATUS_EVERY;
    loop {
        let now = Instant::now();
        let mut deadline = next_verify.min(series.deadline());
        let refresh = d.applied.as_ref().is_some_and(|p| p.enabled);
        if refresh {
            deadline = deadline.min(next_status);
        }
        if let Some(t) = dirty_at {
            deadline = deadline.min(t);
        }
        let mut fds = [
            libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&mon), events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                // poll(2) ignores a negative fd.
                fd: nftmon.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Err(e) = poll(&mut fds, timeout_ms(deadline, now)) {
            error!("poll: {e}");
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let now = Instant::now();
        if fds[0].revents != 0 {
            for sig in read_signals(sfd) {
                match sig as libc::c_int {
                    libc::SIGHUP => d.reload(),
                    _ => {
                        info!(
                            "signal {sig}: stopping; removing moat's rules and routes, protected devices stay blocked for {}s (restart window)",
                            d.opts.hold_secs
                        );
                        if let Some(e) = d.engine.take() {
                            d.engine_last = e.shutdown();
                        }
                        let r = apply::stop(d.applied.as_ref(), d.opts.hold_secs, &mut d.nl);
                        if let Err(e) = &r {
                            error!("stop: {e}");
                        }
                        d.applied = None;
                        d.last_error = r.err().map(StepError::Apply);
                        d.write_status(status::State::Stopped);
                        info!("stopped");
                        return 0;
                    }
                }
            }
        }
        if fds[1].revents != 0 {
            match mon.events() {
                Ok(evs) => {
                    let names = plan::interface_names(&d.model);
                    for ev in &evs {
                        let relevant = match ev {
                            Event::Link(l) => names.iter().any(|n| n.as_str() == l.name),
                            Event::LinkGone(n) => names.iter().any(|x| x.as_str() == n),
                            Event::Addr => true,
                        };
                        if relevant {
                            debug!("netlink: {ev:?}");
                            dirty_at.get_or_insert(now + DEBOUNCE);
                        }
                    }
                }
                Err(e) => {
                    // ENOBUFS: events were lost; re-check everything.
                    warn!("netlink monitor: {e}; re-checking");
                    dirty_at.get_or_insert(now);
                }
            }
        }
        if let (Some(nm), true) = (nftmon.as_ref(), fds[2].revents != 0) {
            let enabled = d.applied.as_ref().is_some_and(|p| p.enabled);
            match nm.nft_events() {
                Ok(evs) => {
                    let (mut moat, mut mangle) = (None, None);
                    for ev in evs {
                        if let Some(c) = watch.feed(ev, &WATCHED) {
                            if !apply::is_own_pid(c.pid) {
                                if c.tables & (1 | 1 << 3) != 0 {
                                    let name = if c.tables & 1 != 0 { "moat" } else { "moat_guard" };
                                    moat = Some((c.pid, c.comm, name));
                                } else {
                                    mangle = Some(c.pid);
                                }
                            }
                        }
                    }
                    if let (Some((pid, comm, name)), true) = (moat, enabled) {
                        // No debounce: until the table is back, protected devices are unguarded.
                        warn!("table inet {name} changed by pid {pid} ({comm}); re-applying now");
                        d.restore_table();
                    } else if let (Some(pid), Some(p)) = (mangle, d.applied.as_ref().filter(|p| p.enabled)) {
                        // iptables-nft's mangle table (our xt NFQUEUE rules) was changed.
                        if p.queues.backend == plan::QueueBackend::Iptables && !p.queues.iptables.is_empty() {
                            debug!("mangle table changed by pid {pid}; re-checking the queue rules");
                            if let Err(e) = apply::sync_queue_rules(p) {
                                error!("{e}");
                            }
                        }
                    }
                }
                Err(e) => {
                    // ENOBUFS: notifications were lost; check the table now.
                    watch = NftWatch::default();
                    if enabled && !apply::nft_table_present() {
                        warn!("nftables monitor: {e}; table inet moat is missing; re-applying now");
                        d.restore_table();
                    } else {
                        debug!("nftables monitor: {e}");
                        dirty_at.get_or_insert(now);
                    }
                }
            }
        }
        if series.deadline() <= now {
            series.tick(now, d.engine.as_ref().and_then(|e| e.status_json()), d.applied.as_ref(), &d.opts.state_dir);
        }
        if dirty_at.is_some_and(|t| t <= now) {
            dirty_at = None;
            d.step(false);
        }
        if refresh && next_status <= now {
            next_status = now + STATUS_EVERY;
            d.write_status(d.current_state());
        }
        if next_verify <= now {
            next_verify = now + VERIFY_EVERY;
            // Someone may have deleted our table (`nft flush ruleset`) or rules: re-assert.
            let enabled = d.applied.as_ref().is_some_and(|p| p.enabled);
            let force = enabled && !apply::nft_table_present();
            if force {
                warn!("table inet moat is missing; re-applying");
            }
            d.step(force);
        }
    }
}
