//! The moat lab: a small home network built from Linux network namespaces, for tests, the
//! demo (`scripts/lab.sh demo`) and the routing benchmark.
//!
//! ```text
//!  device ns (d0, d1, …)          router ns                       internet ns ("i")          vpn ns ("v")
//!  eth0 02:6d:61:62:00:0k ──veth── lanK ┐                          wan0 198.51.100.1          eth0 192.0.2.2
//!  192.168.77.1k, fd6d:…::1k           br-lan 192.168.77.1  pppoe-wan ───veth─── (observer:   wireguard-go peer
//!                                      fd6d:6f61:7400:77::1  198.51.100.2      tcpdump here)  10.64.0.1, DNS,
//!                                      fw4 ruleset, moat,                      lo: 203.0.113.10 masquerade
//!                                      tor, dns forwarder,                     203.0.113.53   onward to the
//!                                      wireguard-go 10.64.0.2                  2001:db8:ffff::10 internet host
//!                                      (+ fd00:64::2)                          vpn0 192.0.2.1 ──veth── eth0
//! ```
//! The internet host serves TCP echo (7, 80, 443, 853, 5222), a TCP sink (9), a TCP push server
//! (5223, a byte every 100 ms), UDP echo (7, 123, 443) and DNS (203.0.113.53:53); the VPN server
//! answers DNS on 10.64.0.1 and NATs IPv4 and IPv6 (tunnel fd00:64::/64) onward. Servers are
//! std sockets created inside the namespaces ([`in_ns`]), the router's resolver is a forwarder
//! to 203.0.113.53 (a stand-in for dnsmasq).
//! Only documentation/test addresses, only inside these namespaces. Every name is unique per
//! lab (`moat-lab-<pid>-<n>-…`, WireGuard interfaces `mwr<pid>n<n>`/`mws<pid>n<n>` because
//! wireguard-go's control socket path is global), and [`Lab`]'s `Drop` kills every process it
//! started and deletes every namespace, also when the test panics. Namespaces left behind by
//! a dead process are swept when the first lab of a process starts.
//!
//! Every command the lab runs is appended, with its exit status and output, to
//! `<dir>/commands.log`; processes write to `<dir>/<tag>.log`. The directory is kept when the
//! test fails (or with `MOAT_LAB_KEEP=1`) and its path printed.
//!
//! At most `MOAT_LAB_PARALLEL` (default 2) labs run at once in one test binary.
#![allow(dead_code)]

pub mod boot;
pub mod devices;
pub mod dns;
pub mod lanside;
pub mod matrix;
mod network;
pub mod pcap;
mod report;
pub mod servers;
mod traffic;

pub use network::*;
pub use report::*;
pub use traffic::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Addresses (all inside the lab's own namespaces)
// ---------------------------------------------------------------------------------------------

/// The router's LAN address.
pub const ROUTER_LAN4: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The router's LAN IPv6 (ULA) address.
pub const ROUTER_LAN6: Ipv6Addr = Ipv6Addr::new(0xfd6d, 0x6f61, 0x7400, 0x77, 0, 0, 0, 1);
/// The LAN's IPv6 (ULA) prefix.
pub const LAN6_PREFIX: &str = "fd6d:6f61:7400::/48";
/// The router's WAN address (what masqueraded traffic leaves with).
pub const ROUTER_WAN4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The router's WAN IPv6 address.
pub const ROUTER_WAN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2);
/// The internet side of the WAN link (the router's gateway).
pub const GATEWAY4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The internet side of the WAN link, IPv6.
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
/// The internet host: TCP echo on 7, 80, 443, 853, 5222; UDP echo on 7, 123, 443; TCP sink on 9.
pub const INTERNET4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The internet host's IPv6 address.
pub const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x10);
/// The internet host's push port: a server that sends a byte every 100 ms on every connection.
pub const PUSH_PORT: u16 = 5223;
/// An outside resolver on the internet (UDP/TCP 53) that also "serves" DoT on 853 (echo).
pub const RESOLVER4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);
/// The VPN server's public address (WireGuard endpoint, UDP [`WG_PORT`]).
pub const VPN_PUBLIC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The internet side of the link to the VPN server.
pub const VPN_GATEWAY4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The VPN server's public IPv6 address (on its link to the internet namespace).
pub const VPN_PUBLIC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 2);
/// The internet side of the link to the VPN server, IPv6.
pub const VPN_GATEWAY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1);
/// The VPN server's tunnel IPv6 address (the tunnel carries IPv6; moat uses it only with `ipv6 '1'`).
pub const VPN_TUNNEL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x64, 0, 0, 0, 0, 0, 1);
/// The router's tunnel IPv6 address.
pub const ROUTER_TUNNEL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x64, 0, 0, 0, 0, 0, 2);
/// WireGuard listen port of the VPN server.
pub const WG_PORT: u16 = 51820;
/// The VPN server's tunnel address; also the VPN provider's resolver (UDP/TCP 53).
pub const VPN_TUNNEL4: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
/// The router's tunnel address.
pub const ROUTER_TUNNEL4: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
/// Tor's TransPort on the router's LAN address.
pub const TOR_TRANS_PORT: u16 = 9040;
/// Tor's DNSPort on the router's LAN address.
pub const TOR_DNS_PORT: u16 = 9053;
/// Where the lab's tor looks for its (fake) directory authority; blackholed on the router.
pub const TOR_DIRAUTH_NET: &str = "10.255.255.0/24";
/// The internal DNS name of the internet host (`*.test` all resolve to it).
pub const INTERNET_NAME: &str = "internet.test";

const FW4_TEMPLATE: &str = include_str!("../fixtures/fw4-lab.nft");
const TORRC_TEMPLATE: &str = include_str!("../fixtures/torrc.in");

// ---------------------------------------------------------------------------------------------
// Devices and options
// ---------------------------------------------------------------------------------------------

/// A device to create on the LAN.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Short label (`speaker`, `sleepmon`, …), `[a-z0-9]`, used in namespace names.
    pub label: String,
    /// The DNS names this device looks up (its "vendor cloud"), all under `.test`.
    pub names: Vec<String>,
}

impl DeviceSpec {
    /// A device whose names are `<label>-cloud.vendor.test` and `<label>-telemetry.vendor.test`.
    pub fn new(label: &str) -> DeviceSpec {
        assert!(
            !label.is_empty()
                && label.len() <= 12
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        DeviceSpec {
            label: label.to_string(),
            names: vec![format!("{label}-cloud.vendor.test"), format!("{label}-telemetry.vendor.test")],
        }
    }
}

/// A device on the LAN, as created.
#[derive(Debug, Clone)]
pub struct Device {
    /// Label from the spec.
    pub label: String,
    /// Its namespace.
    pub ns: String,
    /// Its MAC address (`02:6d:61:62:00:0k`).
    pub mac: String,
    /// Its IPv4 address.
    pub ip4: Ipv4Addr,
    /// Its IPv6 (ULA) address.
    pub ip6: Ipv6Addr,
    /// The names it looks up.
    pub names: Vec<String>,
}

/// What to bring up besides the bare topology.
#[derive(Debug, Clone)]
pub struct Options {
    /// LAN devices.
    pub devices: Vec<DeviceSpec>,
    /// Start tor on the router.
    pub tor: bool,
    /// Load the fw4 ruleset on the router (on by default: that is what users run).
    pub fw4: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { devices: vec![DeviceSpec::new("speaker"), DeviceSpec::new("laptop")], tor: true, fw4: true }
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency limit and stale sweep
// ---------------------------------------------------------------------------------------------

static ACTIVE: Mutex<usize> = Mutex::new(0);
static ACTIVE_CV: Condvar = Condvar::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A lab's share of the `MOAT_LAB_PARALLEL` labs that may run at once in this test binary.
struct Permit(usize);

impl Permit {
    /// One share; `alone`: all of them (no other lab of this binary runs beside it).
    fn acquire(alone: bool) -> Permit {
        let max: usize = std::env::var("MOAT_LAB_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(2).max(1);
        let want = if alone { max } else { 1 };
        let mut n = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        while *n + want > max {
            n = ACTIVE_CV.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += want;
        Permit(want)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut n = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        *n -= self.0;
        ACTIVE_CV.notify_all();
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

/// Delete namespaces and WireGuard sockets left by lab processes that no longer exist.
pub fn sweep_stale() {
    let out = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(out) = out {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("moat-lab-") else { continue };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
            if pid_alive(pid) {
                continue;
            }
            eprintln!("lab: removing stale namespace {name} (process {pid} is gone)");
            kill_ns_processes(name);
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
    if let Ok(rd) = fs::read_dir("/var/run/wireguard") {
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().to_string();
            for prefix in ["mwr", "mws"] {
                if let Some(rest) = f.strip_prefix(prefix) {
                    if let Some(pid) = rest.split('n').next().and_then(|p| p.parse::<i32>().ok()) {
                        if !pid_alive(pid) {
                            let _ = fs::remove_file(e.path());
                        }
                    }
                }
            }
        }
    }
}

fn kill_ns_processes(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = p.parse::<i32>() {
                // SAFETY: plain kill(2) of a process living in a namespace this lab created.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Run `f` on a new thread that has entered network namespace `ns`. Sockets created by `f`
/// belong to that namespace (and keep working from any thread afterwards).
pub fn in_ns<T: Send, F: FnOnce() -> T + Send>(ns: &str, f: F) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::scope(|s| {
        let h = s.spawn(move || {
            enter_ns(&path).unwrap_or_else(|e| panic!("cannot enter namespace {path}: {e}"));
            f()
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// Move the calling thread into the network namespace at `path`.
pub fn enter_ns(path: &str) -> std::io::Result<()> {
    let f = File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns on an open namespace fd; affects only the calling thread's network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The lab
// ---------------------------------------------------------------------------------------------

struct Proc {
    tag: String,
    child: Child,
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    /// Unique prefix of every name (`moat-lab-<pid>-<n>`).
    pub id: String,
    /// Per-lab directory: logs, keys, configs, captures.
    pub dir: PathBuf,
    /// Router namespace.
    pub router: String,
    /// Internet namespace (observer, echo servers, outside resolver).
    pub inet: String,
    /// VPN server namespace.
    pub vpn: String,
    /// LAN devices.
    pub devices: Vec<Device>,
    /// Router's WireGuard interface name.
    pub wg_router: String,
    /// VPN server's WireGuard interface name.
    pub wg_server: String,
    /// Questions the outside resolver (203.0.113.53) received.
    pub outside_dns: dns::QueryLog,
    /// Questions the VPN provider's resolver (10.64.0.1, through the tunnel) received.
    pub tunnel_dns: dns::QueryLog,
    /// Questions the router's own resolver (the dnsmasq stand-in) received.
    pub router_dns: dns::QueryLog,
    t0: Instant,
    log: Mutex<File>,
    namespaces: Mutex<Vec<String>>,
    procs: Mutex<Vec<Proc>>,
    servers: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
    moat_config: Mutex<Option<PathBuf>>,
    opts: Options,
    _permit: Permit,
}

/// Where lab directories go.
fn base_dir() -> PathBuf {
    if let Ok(d) = std::env::var("MOAT_LAB_DIR") {
        return PathBuf::from(d);
    }
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(d) => PathBuf::from(d).join("moat-lab"),
        None => std::env::temp_dir().join("moat-lab"),
    }
}

/// The `moat` binary under test: `MOAT_BIN`, else the one cargo built for this test, else
/// the `moat` next to the running executable's directory (for the `lab` example).
pub fn moat_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MOAT_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_moat") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    for dir in exe.ancestors().skip(1).take(3) {
        let cand = dir.join("moat");
        if cand.is_file() {
            return cand;
        }
    }
    panic!("cannot find the moat binary; set MOAT_BIN")
}

/// Whether `bin` knows `--guard-file` (issue 10); older binaries write no guard.
pub fn has_guard_flag(bin: &Path) -> bool {
    Command::new(bin).arg("help").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--guard-file"))
}

/// Require root (the lab creates namespaces). Panics with a clear message otherwise: a lab
/// test that cannot run must fail, not pass silently.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("the lab needs root (network namespaces, nft); run scripts/test.sh as root");
    }
}

impl Lab {
    /// Build a lab for the test `label` (used in the directory name) and bring up the
    /// topology, the servers, WireGuard, fw4 and (if asked) tor. Moat is not started.
    pub fn start(label: &str, opts: Options) -> Lab {
        Lab::start_permitted(label, opts, false)
    }

    /// [`Lab::start`] with no other lab of this test binary running beside it, for a test that
    /// asserts on timing (per-second counts within a 2 % CV): on the 2-CPU CI machine a second
    /// lab's wireguard-go and transfers stalled the companion's slot loop past its 40 ms of
    /// lateness (7 missed slots, one second at 45 of 50).
    pub fn start_alone(label: &str, opts: Options) -> Lab {
        Lab::start_permitted(label, opts, true)
    }

    fn start_permitted(label: &str, opts: Options, alone: bool) -> Lab {
        require_root();
        SWEEP.call_once(sweep_stale);
        let permit = Permit::acquire(alone);
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("moat-lab-{pid}-{n}");
        let dir = base_dir().join(format!("{id}-{label}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create lab dir");
        let log = File::create(dir.join("commands.log")).expect("create command log");
        let lab = Lab {
            router: format!("{id}-r"),
            inet: format!("{id}-i"),
            vpn: format!("{id}-v"),
            wg_router: format!("mwr{pid}n{n}"),
            wg_server: format!("mws{pid}n{n}"),
            devices: Vec::new(),
            outside_dns: Default::default(),
            tunnel_dns: Default::default(),
            router_dns: Default::default(),
            id,
            dir,
            t0: Instant::now(),
            log: Mutex::new(log),
            namespaces: Mutex::new(Vec::new()),
            procs: Mutex::new(Vec::new()),
            servers: Mutex::new(Vec::new()),
            moat_config: Mutex::new(None),
            opts: opts.clone(),
            _permit: permit,
        };
        let mut lab = lab;
        lab.build(&opts);
        lab
    }

    // ----- logging and commands -----

    /// Append a line to the lab's command log.
    pub fn note(&self, msg: &str) {
        let t = self.t0.elapsed().as_secs_f64();
        let mut f = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "[{t:8.3}] {msg}");
    }

    /// Run a command on the host (not in a namespace); returns stdout, or an error with the
    /// exit status and stderr. Logged.
    pub fn host(&self, args: &[&str]) -> Result<String, String> {
        self.exec(args, None)
    }

    /// Like [`Lab::host`] with `stdin` fed to the command.
    pub fn exec(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let started = Instant::now();
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => {
                self.note(&format!("$ {} -> spawn failed: {e}", args.join(" ")));
                return Err(format!("{}: {e}", args[0]));
            }
        };
        if let Some(s) = stdin {
            let mut i = child.stdin.take().unwrap();
            let s = s.to_string();
            thread::spawn(move || {
                let _ = i.write_all(s.as_bytes());
            });
        }
        let out = child.wait_with_output().expect("wait");
        let so = String::from_utf8_lossy(&out.stdout).to_string();
        let se = String::from_utf8_lossy(&out.stderr).to_string();
        let mut entry = format!("$ {} -> {} ({} ms)", args.join(" "), out.status, started.elapsed().as_millis());
        for l in so.lines().chain(se.lines()).take(60) {
            entry.push_str("\n    ");
            entry.push_str(l);
        }
        self.note(&entry);
        if out.status.success() {
            Ok(so)
        } else {
            Err(format!("`{}` failed ({}): {}{}", args.join(" "), out.status, se.trim(), so.trim()))
        }
    }

    /// Run a command inside namespace `ns` (`ip netns exec`).
    pub fn ns(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        self.exec(&full, None)
    }

    /// Run a command inside `ns`; panic with its error if it fails.
    pub fn must(&self, ns: &str, args: &[&str]) -> String {
        self.ns(ns, args).unwrap_or_else(|e| panic!("lab {}: {e}", self.id))
    }

    /// Load an nft script in `ns`.
    pub fn nft(&self, ns: &str, script: &str) -> Result<String, String> {
        self.exec(&["ip", "netns", "exec", ns, "nft", "-f", "-"], Some(script))
    }

    // ----- processes -----

    /// Start a background process in `ns`, output to `<dir>/<tag>.log` (appended).
    pub fn spawn(&self, tag: &str, ns: &str, args: &[&str], env: &[(&str, &str)]) -> u32 {
        let logf = OpenOptions::new().create(true).append(true).open(self.dir.join(format!("{tag}.log"))).unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).stdout(logf.try_clone().unwrap()).stderr(logf);
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", args.join(" ")));
        let pid = child.id();
        self.note(&format!("spawn [{tag}] pid {pid} in {ns}: {}", args.join(" ")));
        self.procs.lock().unwrap().push(Proc { tag: tag.to_string(), child });
        pid
    }

    /// Send `sig` to the running process `tag`, wait for it to exit (up to 5 s) and forget it.
    /// Returns false if no such process was running.
    pub fn kill(&self, tag: &str, sig: i32) -> bool {
        let p = {
            let mut procs = self.procs.lock().unwrap();
            match procs.iter().position(|p| p.tag == tag) {
                Some(i) => procs.remove(i),
                None => return false,
            }
        };
        let mut p = p;
        self.note(&format!("kill [{tag}] pid {} with signal {sig}", p.child.id()));
        // SAFETY: kill(2) of our own child.
        unsafe {
            libc::kill(p.child.id() as i32, sig);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(st)) = p.child.try_wait() {
                self.note(&format!("[{tag}] exited: {st}"));
                return true;
            }
            if Instant::now() > deadline {
                let _ = p.child.kill();
                let _ = p.child.wait();
                self.note(&format!("[{tag}] did not exit within 5 s of signal {sig}; killed"));
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal without waiting (e.g. SIGHUP for a reload).
    pub fn signal(&self, tag: &str, sig: i32) {
        let procs = self.procs.lock().unwrap();
        let p = procs.iter().find(|p| p.tag == tag).unwrap_or_else(|| panic!("no process {tag}"));
        self.note(&format!("signal {sig} -> [{tag}] pid {}", p.child.id()));
        // SAFETY: kill(2) of our own child.
        unsafe {
            libc::kill(p.child.id() as i32, sig);
        }
    }

    /// Whether process `tag` is still running (reaps it if it exited).
    pub fn running(&self, tag: &str) -> bool {
        let mut procs = self.procs.lock().unwrap();
        match procs.iter_mut().find(|p| p.tag == tag) {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The log file of process `tag`.
    pub fn proc_log(&self, tag: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{tag}.log"))).unwrap_or_default()
    }

    /// Poll `cond` every 50 ms until it holds or `timeout` passes (a functional wait, not a
    /// performance assertion). Returns whether it held.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                self.note(&format!(
                    "wait: {what}: ok after {} ms",
                    (timeout - deadline.saturating_duration_since(Instant::now())).as_millis()
                ));
                return true;
            }
            if Instant::now() > deadline {
                self.note(&format!("wait: {what}: NOT within {} ms", timeout.as_millis()));
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn keep_server<T: Send + 'static>(&self, s: T) {
        self.servers.lock().unwrap().push(Box::new(s));
    }

    // ----- topology -----

    fn add_ns(&self, name: &str) {
        self.host(&["ip", "netns", "add", name]).unwrap_or_else(|e| panic!("{e}"));
        self.namespaces.lock().unwrap().push(name.to_string());
        self.must(name, &["ip", "link", "set", "lo", "up"]);
        // No duplicate address detection: addresses (also link-local) are usable at once.
        self.sysctl(name, "net.ipv6.conf.default.accept_dad=0");
        self.sysctl(name, "net.ipv6.conf.all.accept_dad=0");
    }

    fn sysctl(&self, ns: &str, kv: &str) {
        self.must(ns, &["sysctl", "-q", "-w", kv]);
    }
}

// ---------------------------------------------------------------------------------------------
// Teardown
// ---------------------------------------------------------------------------------------------

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = thread::panicking();
        self.note(if failed { "teardown (test failed)" } else { "teardown" });
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let tags: Vec<String> =
            self.procs.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|p| p.tag.clone()).collect();
        for t in tags {
            self.kill(&t, libc::SIGTERM);
        }
        let nss: Vec<String> = self.namespaces.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ns in nss.iter().rev() {
            kill_ns_processes(ns);
            let _ = self.host(&["ip", "netns", "del", ns]);
        }
        for w in [&self.wg_router, &self.wg_server] {
            let _ = fs::remove_file(format!("/var/run/wireguard/{w}.sock"));
        }
        let keep = failed || std::env::var_os("MOAT_LAB_KEEP").is_some();
        if keep {
            eprintln!("lab {}: logs kept in {}", self.id, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
