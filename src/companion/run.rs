//! The companion's poll loop and its effects (rules, queues, state files).

use super::config::{self, CompanionConfig};
use super::peers::{shaper_config, Outcome, Peers};
use super::rules;
use crate::daemon::apply::run_with_stdin;
use crate::daemon::engine::{monotonic_us, QueueSpec, ShapingEngine};
use crate::shaper::{Micros, SECOND};
use crate::sys::{Injector, Tap};
use crate::wire::control::{self, Answer, Message, Request};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--config FILE`.
    pub config: String,
    /// `--state-dir DIR`.
    pub state_dir: PathBuf,
    /// `--stderr`: log to stderr, not syslog.
    pub stderr: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { config: config::DEFAULT_CONFIG.into(), state_dir: "/run/moat-companion".into(), stderr: false }
    }
}

struct Companion {
    cfg: CompanionConfig,
    nft: bool,
    engine: ShapingEngine,
    peers: Peers,
    tap: Option<Tap>,
    injector: Option<Injector>,
    mtu: Option<u32>,
    own: Option<IpAddr>,
    refusal_sent: HashMap<IpAddr, Micros>,
    malformed: u64,
    foreign: u64,
    state_dir: PathBuf,
}

/// Remove the companion's queue rules (package removal, or to stop shaping for good).
pub fn cleanup() {
    let _ = run_with_stdin("nft", &["-f", "-"], &rules::nft_remove());
    for ipt in ["iptables", "ip6tables"] {
        let _ = std::process::Command::new(ipt)
            .args(["-w", "-t", "mangle", "-D", "POSTROUTING", "-j", rules::IPT_CHAIN])
            .stderr(std::process::Stdio::null())
            .status();
        for a in ["-F", "-X"] {
            let _ = std::process::Command::new(ipt)
                .args(["-w", "-t", "mangle", a, rules::IPT_CHAIN])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Run the companion until SIGTERM/SIGINT. Errors: the configuration (each diagnostic) or a
/// set-up failure.
pub fn run(opts: &Options) -> Result<(), Vec<String>> {
    let cfg = config::load(&opts.config).map_err(|d| d.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    crate::daemon::logging::init(opts.stderr, cfg.log_level);
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| vec![format!("{}: {e}", opts.state_dir.display())])?;
    let engine = ShapingEngine::new().map_err(|e| vec![format!("queue engine: {e}")])?;
    let sig = crate::sys::signalfd(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .map_err(|e| vec![format!("signalfd: {e}")])?;
    let nft = crate::daemon::probe::probe_nft_queue();
    log::info!(
        "companion on {} (queue backend {}, max_rate {}, max_peers {})",
        cfg.device.as_str(),
        if nft { "nft" } else { "xt NFQUEUE" },
        cfg.max_rate,
        cfg.max_peers
    );
    let mut c = Companion {
        cfg,
        nft,
        engine,
        peers: Peers::default(),
        tap: None,
        injector: None,
        mtu: None,
        own: None,
        refusal_sent: HashMap::new(),
        malformed: 0,
        foreign: 0,
        state_dir: opts.state_dir.clone(),
    };
    c.probe_device();
    c.load_state();
    let mut next_house = 0;
    loop {
        let now = monotonic_us();
        if now >= next_house {
            next_house = now + SECOND;
            c.housekeeping(now);
        }
        let mut fds: Vec<libc::pollfd> = c.engine.fds().into_iter().map(pfd).collect();
        fds.extend(c.tap.as_ref().map(|t| pfd(t.as_raw_fd())));
        fds.push(pfd(sig));
        let timeout = ((next_house.saturating_sub(now)) / 1000 + 1).min(1000) as i32;
        if crate::sys::poll(&mut fds, timeout).is_err() {
            continue;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == sig {
                let s = crate::sys::read_signals(sig);
                if s.iter().any(|&s| s == libc::SIGTERM as u32 || s == libc::SIGINT as u32) {
                    log::info!("stopping; queue rules stay (shaped peers' downstream is dropped until restart)");
                    c.engine.shutdown();
                    c.write_status();
                    crate::daemon::logging::flush();
                    return Ok(());
                }
            } else if c.tap.as_ref().is_some_and(|t| t.as_raw_fd() == p.fd) {
                c.read_requests(monotonic_us());
            } else {
                c.engine.readable(p.fd);
            }
        }
    }
}

fn pfd(fd: i32) -> libc::pollfd {
    libc::pollfd { fd, events: libc::POLLIN, revents: 0 }
}

impl Companion {
    fn probe_device(&mut self) {
        let dev = self.cfg.device.clone();
        let f = crate::daemon::probe::probe_with(&[&dev], self.nft);
        let i = f.iface(&dev);
        self.mtu = i.map(|i| i.mtu);
        let own = i.and_then(|i| i.addrs.iter().map(|(a, _)| *a).find(IpAddr::is_ipv4));
        if i.is_none() {
            if self.tap.take().is_some() {
                log::warn!("{} is gone; waiting for it", dev.as_str());
            }
            self.injector = None;
        } else if self.tap.is_none() {
            match Tap::open(dev.as_str(), control::MAGIC) {
                Ok(t) => self.tap = Some(t),
                Err(e) => log::warn!("{}: cannot read requests: {e}", dev.as_str()),
            }
            self.injector = Injector::open(dev.as_str(), None).ok();
        }
        if own != self.own && !self.peers.peers.is_empty() {
            self.own = own;
            self.apply(); // cover packets' source address changed
        }
        self.own = own;
    }

    fn housekeeping(&mut self, now: Micros) {
        self.probe_device();
        if self.peers.expire(now) {
            log::info!("a peer stopped asking; no longer shaped");
            self.apply();
        }
        self.write_status();
    }

    fn read_requests(&mut self, now: Micros) {
        let mut buf = [0u8; 2048];
        let mut changed = false;
        while let Some(Ok(n)) = self.tap.as_ref().map(|t| t.recv(&mut buf)) {
            let n = n.min(buf.len());
            let pkt = &buf[..n];
            let Some(src) = source(pkt) else { continue };
            let r = match control::parse(pkt) {
                Ok(Some(Message::Request(r))) => r,
                Ok(Some(Message::Answer(_))) => {
                    self.foreign += 1;
                    continue;
                }
                Ok(None) => continue,
                Err(_) => {
                    self.malformed += 1;
                    continue;
                }
            };
            let outcome = self.peers.request(&self.cfg, self.mtu, src, r, now);
            // every cover packet of a shaping router carries its request: a decoy there is
            // answered by one here (stochastic mode; constant mode ignores it)
            if let Some(p) = self.peers.peers.iter().find(|p| p.addr == src) {
                if !matches!(outcome, Outcome::Refused(_)) {
                    self.engine.peer_cover(p.queue, now, control::answers(pkt));
                }
            }
            match outcome {
                Outcome::Refreshed => {}
                Outcome::Changed => {
                    log::info!("shaping downstream to {src}: pad_to {}, {:?}", r.pad_to, r.mode);
                    changed = true;
                }
                Outcome::Refused(why) => {
                    if self.refusal_sent.get(&src).is_none_or(|t| now.saturating_sub(*t) >= SECOND) {
                        log::warn!("refused a request from {src} (for {}): {}", r.addr, why.as_str());
                        self.refusal_sent.insert(src, now);
                        self.send_refusal(src, r, why);
                    }
                }
            }
        }
        if changed {
            self.apply();
        }
    }

    fn send_refusal(&self, to: IpAddr, r: Request, why: control::Refusal) {
        let (Some(inj), Some(IpAddr::V4(own)), IpAddr::V4(dst)) = (&self.injector, self.own, to) else { return };
        let max = self.mtu.unwrap_or(1280).min(1500) as u16;
        let len = r.pad_to.clamp(control::MIN_PACKET as u16, max.max(control::MIN_PACKET as u16));
        let mut pkt = crate::wire::cover_ipv4(own, dst, len);
        let m = Message::Answer(Answer { request: r, refused: Some(why) });
        if control::write_into(&mut pkt, Some(&m)).is_ok() {
            let _ = inj.send(&pkt);
        }
    }

    /// Make rules, queues and answers match the peer table.
    fn apply(&mut self) {
        let dev = self.cfg.device.as_str().to_string();
        if let Err(e) = self.apply_rules(&dev) {
            log::error!("queue rules: {e}; refusing the new requests");
            // Shaping already set up keeps its rules (the old ruleset is still loaded).
            let served: Vec<u16> = self.engine.counters().map(|(q, ..)| q).collect();
            let failed: Vec<IpAddr> =
                self.peers.peers.iter().filter(|p| !served.contains(&p.queue)).map(|p| p.addr).collect();
            for a in failed {
                self.peers.refused.count(control::Refusal::Internal);
                self.peers.remove(a);
            }
        }
        let specs: Vec<QueueSpec> = self
            .peers
            .peers
            .iter()
            .map(|p| QueueSpec {
                queue: p.queue,
                label: p.addr.to_string(),
                config: shaper_config(&p.request),
                tunnel_dev: dev.clone(),
                cover_dst: Some(p.addr),
                // One schedule per peer: each home's downstream has its own clock.
                schedule: String::new(),
                companion: None,
            })
            .collect();
        for e in self.engine.set_queues(&specs) {
            log::warn!("{e}");
        }
        for p in &self.peers.peers {
            let m = Message::Answer(Answer { request: p.request, refused: None });
            self.engine.set_control(p.queue, Some(&m));
        }
        self.save_state();
    }

    fn apply_rules(&self, dev: &str) -> Result<(), String> {
        let r = self.peers.rules();
        if self.nft {
            return run_with_stdin("nft", &["-f", "-"], &rules::nft_script(dev, &r)).map_err(|e| e.to_string());
        }
        for (ipt, v6) in [("iptables", false), ("ip6tables", true)] {
            if v6 && !r.iter().any(|r| r.addr.is_ipv6()) {
                continue;
            }
            run_with_stdin(&format!("{ipt}-restore"), &["-w", "--noflush"], &rules::ipt_restore(dev, &r, v6))
                .map_err(|e| e.to_string())?;
            let jump = ["-w", "-t", "mangle", "-C", "POSTROUTING", "-j", rules::IPT_CHAIN];
            let ok = std::process::Command::new(ipt)
                .args(jump)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let mut ins = jump;
                ins[3] = "-I";
                run_with_stdin(ipt, &ins, "").map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    fn save_state(&self) {
        let mut s = String::new();
        for p in &self.peers.peers {
            let hex: String =
                control::encode(&Message::Request(p.request)).iter().map(|b| format!("{b:02x}")).collect();
            s.push_str(&format!("{} {hex}\n", p.addr));
        }
        let path = self.state_dir.join("peers");
        let tmp = self.state_dir.join("peers.tmp");
        if std::fs::write(&tmp, s).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
            log::warn!("cannot write {}", path.display());
        }
    }

    /// Restore the peers of a previous run (each line re-checked as a fresh request).
    fn load_state(&mut self) {
        let Ok(text) = std::fs::read_to_string(self.state_dir.join("peers")) else { return };
        let now = monotonic_us();
        for line in text.lines() {
            let Some((a, hex)) = line.split_once(' ') else { continue };
            let (Ok(src), Some(bytes)) = (a.parse::<IpAddr>(), unhex(hex)) else { continue };
            if let Ok(Message::Request(r)) = control::parse_body(&bytes) {
                if self.peers.request(&self.cfg, self.mtu, src, r, now) == Outcome::Changed {
                    log::info!("resuming shaping of {src} from the state file");
                }
            }
        }
        if !self.peers.peers.is_empty() {
            self.apply();
        }
    }

    fn write_status(&self) {
        let mut s = format!(
            "{{\"device\":{},\"mtu\":{},\"peers\":[",
            crate::json::string(self.cfg.device.as_str()),
            self.mtu.map_or("null".into(), |m| m.to_string())
        );
        for (n, p) in self.peers.peers.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"addr\":{},\"queue\":{},\"pad_to\":{},\"mode\":{}}}",
                crate::json::string(&p.addr.to_string()),
                p.queue,
                p.request.pad_to,
                crate::json::string(&match p.request.mode {
                    control::ModeParams::Constant { rate } => format!("constant {rate}/s"),
                    control::ModeParams::Stochastic { rate_cap, decoys_per_hour, .. } => {
                        format!("stochastic {decoys_per_hour} decoys/h, cap {rate_cap}/s")
                    }
                })
            ));
        }
        let r = &self.peers.refused;
        s.push_str(&format!(
            "],\"refused\":{{\"address_mismatch\":{},\"not_allowed\":{},\"rate_too_high\":{},\"too_many_peers\":{},\"bad_params\":{},\"internal\":{}}},\"malformed\":{},\"foreign\":{},\"engine\":{}}}\n",
            r.address_mismatch, r.not_allowed, r.rate_too_high, r.too_many_peers, r.bad_params, r.internal,
            self.malformed, self.foreign, self.engine.status_json()
        ));
        let _ = crate::daemon::status::write(&self.state_dir, &s);
    }
}

fn source(pkt: &[u8]) -> Option<IpAddr> {
    match crate::wire::version(pkt)? {
        4 if pkt.len() >= 20 => Some(IpAddr::from([pkt[12], pkt[13], pkt[14], pkt[15]])),
        6 if pkt.len() >= 40 => <[u8; 16]>::try_from(&pkt[8..24]).ok().map(IpAddr::from),
        _ => None,
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 256 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}
