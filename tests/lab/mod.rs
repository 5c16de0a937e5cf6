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
pub mod pcap;
pub mod servers;

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

struct Permit;

impl Permit {
    fn acquire() -> Permit {
        let max: usize = std::env::var("MOAT_LAB_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(2).max(1);
        let mut n = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max {
            n = ACTIVE_CV.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut n = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        ACTIVE_CV.notify_one();
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
        require_root();
        SWEEP.call_once(sweep_stale);
        let permit = Permit::acquire();
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

    fn build(&mut self, opts: &Options) {
        let (r, i, v) = (self.router.clone(), self.inet.clone(), self.vpn.clone());
        self.note(&format!("building lab {} in {}", self.id, self.dir.display()));
        for ns in [&r, &i, &v] {
            self.add_ns(ns);
        }
        // Router: forwarding on, as OpenWrt.
        self.sysctl(&r, "net.ipv4.ip_forward=1");
        self.sysctl(&r, "net.ipv6.conf.all.forwarding=1");
        self.sysctl(&i, "net.ipv4.ip_forward=1");
        self.sysctl(&i, "net.ipv6.conf.all.forwarding=1");
        self.sysctl(&v, "net.ipv4.ip_forward=1");
        self.sysctl(&v, "net.ipv6.conf.all.forwarding=1");

        // LAN bridge.
        self.must(&r, &["ip", "link", "add", "br-lan", "type", "bridge"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_LAN4}/24"), "dev", "br-lan"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_LAN6}/64"), "dev", "br-lan", "nodad"]);
        self.must(&r, &["ip", "link", "set", "br-lan", "up"]);
        for (k, spec) in opts.devices.iter().enumerate() {
            let ns = format!("{}-d{k}-{}", self.id, spec.label);
            self.add_ns(&ns);
            let mac = format!("02:6d:61:62:00:{:02x}", k + 1);
            let ip4 = Ipv4Addr::new(192, 168, 77, 10 + k as u8);
            let ip6 = Ipv6Addr::new(0xfd6d, 0x6f61, 0x7400, 0x77, 0, 0, 0, 0x10 + k as u16);
            let port = format!("lan{k}");
            self.must(&r, &["ip", "link", "add", "name", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            self.must(&r, &["ip", "link", "set", &port, "master", "br-lan", "up"]);
            self.must(&ns, &["ip", "link", "set", "eth0", "address", &mac]);
            self.must(&ns, &["ip", "addr", "add", &format!("{ip4}/24"), "dev", "eth0"]);
            self.must(&ns, &["ip", "addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"]);
            self.must(&ns, &["ip", "link", "set", "eth0", "up"]);
            self.must(&ns, &["ip", "route", "add", "default", "via", &ROUTER_LAN4.to_string()]);
            self.must(&ns, &["ip", "-6", "route", "add", "default", "via", &ROUTER_LAN6.to_string()]);
            self.devices.push(Device { label: spec.label.clone(), ns, mac, ip4, ip6, names: spec.names.clone() });
        }

        // WAN link: router pppoe-wan <-> internet wan0. Both ends forward, so neither sends
        // router solicitations; what remains is ARP/ND/MLD housekeeping, which the analysis
        // tells apart (IPv6 neighbour discovery needs the link-local addresses).
        self.must(&r, &["ip", "link", "add", "name", "pppoe-wan", "type", "veth", "peer", "name", "wan0", "netns", &i]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_WAN4}/24"), "dev", "pppoe-wan"]);
        self.must(&r, &["ip", "addr", "add", &format!("{ROUTER_WAN6}/64"), "dev", "pppoe-wan", "nodad"]);
        self.must(&i, &["ip", "addr", "add", &format!("{GATEWAY4}/24"), "dev", "wan0"]);
        self.must(&i, &["ip", "addr", "add", &format!("{GATEWAY6}/64"), "dev", "wan0", "nodad"]);
        self.must(&r, &["ip", "link", "set", "pppoe-wan", "up"]);
        self.must(&i, &["ip", "link", "set", "wan0", "up"]);
        self.must(&r, &["ip", "route", "add", "default", "via", &GATEWAY4.to_string()]);
        self.must(&r, &["ip", "-6", "route", "add", "default", "via", &GATEWAY6.to_string()]);
        // Tor's fake directory authority: unreachable, so tor never sends anything on the WAN.
        self.must(&r, &["ip", "route", "add", "blackhole", TOR_DIRAUTH_NET]);
        // The internet host's addresses.
        for a in [INTERNET4, RESOLVER4] {
            self.must(&i, &["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        self.must(&i, &["ip", "addr", "add", &format!("{INTERNET6}/128"), "dev", "lo", "nodad"]);
        // Replies to LAN IPv6 (not NATed by fw4) go back to the router.
        self.must(&i, &["ip", "-6", "route", "add", LAN6_PREFIX, "via", &ROUTER_WAN6.to_string()]);

        // VPN server, reached through the internet namespace.
        self.must(&i, &["ip", "link", "add", "name", "vpn0", "type", "veth", "peer", "name", "eth0", "netns", &v]);
        self.must(&i, &["ip", "addr", "add", &format!("{VPN_GATEWAY4}/24"), "dev", "vpn0"]);
        self.must(&v, &["ip", "addr", "add", &format!("{VPN_PUBLIC4}/24"), "dev", "eth0"]);
        self.must(&i, &["ip", "link", "set", "vpn0", "up"]);
        self.must(&v, &["ip", "link", "set", "eth0", "up"]);
        self.must(&v, &["ip", "route", "add", "default", "via", &VPN_GATEWAY4.to_string()]);
        self.must(&i, &["ip", "addr", "add", &format!("{VPN_GATEWAY6}/64"), "dev", "vpn0", "nodad"]);
        self.must(&v, &["ip", "addr", "add", &format!("{VPN_PUBLIC6}/64"), "dev", "eth0", "nodad"]);
        self.must(&v, &["ip", "-6", "route", "add", "default", "via", &VPN_GATEWAY6.to_string()]);
        // The VPN provider NATs its clients (IPv4 and IPv6) onward to the internet.
        self.nft(&v, "table inet labvpn {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"eth0\" masquerade\n }\n}\n")
            .unwrap_or_else(|e| panic!("{e}"));

        self.start_servers();
        self.keygen();
        self.start_wg_server();
        self.start_wg_router();
        if opts.fw4 {
            self.load_fw4().unwrap_or_else(|e| panic!("{e}"));
        }
        if opts.tor {
            self.start_tor();
        }
        self.note("lab is up");
    }

    fn start_servers(&mut self) {
        use servers::TcpKind::*;
        let any6 = |p: u16| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), p);
        let inet_servers = in_ns(&self.inet, || {
            let mut v: Vec<servers::Server> = Vec::new();
            for p in [7, 80, 443, 853, 5222] {
                v.push(servers::serve_tcp(any6(p), Echo).expect("tcp echo"));
            }
            v.push(servers::serve_tcp(any6(9), Sink).expect("tcp sink"));
            v.push(servers::serve_tcp(any6(PUSH_PORT), Push).expect("tcp push"));
            // UDP servers bind each address: a wildcard socket would answer from the
            // interface's primary address and the client's connected socket would drop it.
            for p in [7, 123, 443] {
                v.push(servers::serve_udp_echo(SocketAddr::new(IpAddr::V4(INTERNET4), p)).expect("udp echo"));
                v.push(servers::serve_udp_echo(SocketAddr::new(IpAddr::V6(INTERNET6), p)).expect("udp echo v6"));
            }
            let d = dns::serve(
                SocketAddr::new(IpAddr::V4(RESOLVER4), 53),
                dns::Mode::Answer { v4: INTERNET4, v6: INTERNET6 },
            )
            .expect("dns");
            (v, d)
        });
        let (v, d) = inet_servers;
        let outside = d.log.clone();
        self.keep_server(v);
        self.keep_server(d);
        let d = in_ns(&self.vpn, || {
            dns::serve(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 53),
                dns::Mode::Answer { v4: INTERNET4, v6: INTERNET6 },
            )
            .expect("vpn dns")
        });
        let tunnel = d.log.clone();
        self.keep_server(d);
        // The router's resolver (OpenWrt runs dnsmasq): answers the LAN by asking the outside
        // resolver across the WAN.
        let d = in_ns(&self.router, || {
            dns::serve(
                SocketAddr::new(IpAddr::V4(ROUTER_LAN4), 53),
                dns::Mode::Forward(SocketAddr::new(IpAddr::V4(RESOLVER4), 53)),
            )
            .expect("router dns")
        });
        let router = d.log.clone();
        self.keep_server(d);
        self.outside_dns = outside;
        self.tunnel_dns = tunnel;
        self.router_dns = router;
        self.note("servers up: internet tcp echo 7,80,443,853,5222 sink 9 push 5223, udp echo 7,123,443, dns 53; vpn dns 53; router dns forwarder 53");
    }

    fn keygen(&self) {
        for who in ["router", "server"] {
            let key = self.host(&["wg", "genkey"]).unwrap_or_else(|e| panic!("{e}"));
            let public = self.exec(&["wg", "pubkey"], Some(&key)).unwrap_or_else(|e| panic!("{e}"));
            fs::write(self.dir.join(format!("wg-{who}.key")), key.trim()).unwrap();
            fs::write(self.dir.join(format!("wg-{who}.pub")), public.trim()).unwrap();
        }
    }

    fn key_path(&self, who: &str) -> String {
        self.dir.join(format!("wg-{who}.key")).to_string_lossy().to_string()
    }

    fn public_key(&self, who: &str) -> String {
        fs::read_to_string(self.dir.join(format!("wg-{who}.pub"))).unwrap().trim().to_string()
    }

    fn wireguard_go(&self, tag: &str, ns: &str, ifname: &str) {
        let _ = fs::remove_file(format!("/var/run/wireguard/{ifname}.sock"));
        self.spawn(tag, ns, &["wireguard-go", ifname], &[("WG_PROCESS_FOREGROUND", "1"), ("LOG_LEVEL", "error")]);
        let sock = format!("/var/run/wireguard/{ifname}.sock");
        let ok = self.wait_for(&format!("{ifname} control socket"), Duration::from_secs(10), || {
            Path::new(&sock).exists() && self.ns(ns, &["ip", "link", "show", ifname]).is_ok()
        });
        assert!(ok, "wireguard-go {ifname} did not come up; log:\n{}", self.proc_log(tag));
    }

    /// Start the VPN server's wireguard-go and configure it (peer = the router).
    pub fn start_wg_server(&self) {
        let (v, w) = (&self.vpn, &self.wg_server);
        self.wireguard_go("wg-server", v, w);
        let rpub = self.public_key("router");
        // The router does not masquerade IPv6 into the tunnel (fw4 masq is IPv4), so the LAN's ULA
        // prefix is among the router peer's allowed IPs and routed back through the tunnel.
        let allowed = format!("{ROUTER_TUNNEL4}/32,{ROUTER_TUNNEL6}/128,{LAN6_PREFIX}");
        self.must(
            v,
            &[
                "wg",
                "set",
                w,
                "private-key",
                &self.key_path("server"),
                "listen-port",
                &WG_PORT.to_string(),
                "peer",
                &rpub,
                "allowed-ips",
                &allowed,
            ],
        );
        // Like a kernel WireGuard device: no IPv6 link-local, no multicast (no stray
        // MLD/IGMP packets inside the tunnel).
        self.must(v, &["ip", "link", "set", w, "addrgenmode", "none", "multicast", "off"]);
        self.must(v, &["ip", "addr", "add", &format!("{VPN_TUNNEL4}/24"), "dev", w]);
        self.must(v, &["ip", "addr", "add", &format!("{VPN_TUNNEL6}/64"), "dev", w, "nodad"]);
        self.must(v, &["ip", "link", "set", w, "up"]);
        self.must(v, &["ip", "-6", "route", "add", LAN6_PREFIX, "dev", w]);
    }

    /// A second home (for the companion's two-peer test): namespace `<id>-h2` reaching the
    /// internet namespace over a veth (198.18.0.2/30), with its own wireguard-go `<wg>h` peered
    /// to the VPN server as 10.64.0.3 (a second peer of the server). Returns (namespace, wg device).
    pub fn add_home(&self) -> (String, String) {
        let (i, v) = (&self.inet, &self.vpn);
        let h = format!("{}-h2", self.id);
        self.add_ns(&h);
        self.must(i, &["ip", "link", "add", "name", "home2", "type", "veth", "peer", "name", "eth0", "netns", &h]);
        self.must(i, &["ip", "addr", "add", "198.18.0.1/30", "dev", "home2"]);
        self.must(i, &["ip", "link", "set", "home2", "up"]);
        self.must(&h, &["ip", "addr", "add", "198.18.0.2/30", "dev", "eth0"]);
        self.must(&h, &["ip", "link", "set", "eth0", "up"]);
        self.must(&h, &["ip", "route", "add", "default", "via", "198.18.0.1"]);
        let key = self.host(&["wg", "genkey"]).unwrap_or_else(|e| panic!("{e}"));
        let public = self.exec(&["wg", "pubkey"], Some(&key)).unwrap_or_else(|e| panic!("{e}"));
        fs::write(self.dir.join("wg-home2.key"), key.trim()).unwrap();
        let w = format!("{}h", self.wg_router);
        self.wireguard_go("wg-home2", &h, &w);
        let spub = self.public_key("server");
        let endpoint = format!("{VPN_PUBLIC4}:{WG_PORT}");
        let kp = self.key_path("home2");
        self.must(
            &h,
            &["wg", "set", &w, "private-key", &kp, "peer", &spub, "endpoint", &endpoint, "allowed-ips", "0.0.0.0/0"],
        );
        self.must(&h, &["ip", "link", "set", &w, "addrgenmode", "none", "multicast", "off"]);
        self.must(&h, &["ip", "addr", "add", "10.64.0.3/24", "dev", &w]);
        self.must(&h, &["ip", "link", "set", &w, "up"]);
        self.must(v, &["wg", "set", &self.wg_server, "peer", public.trim(), "allowed-ips", "10.64.0.3/32"]);
        (h, w)
    }

    /// Start (or restart) the router's wireguard-go and configure it (peer = the VPN server).
    /// No route uses it: routing into the tunnel is moat's job (or [`Lab::route_by_hand`]'s).
    pub fn start_wg_router(&self) {
        let (r, w) = (&self.router, &self.wg_router);
        self.wireguard_go("wg-router", r, w);
        let spub = self.public_key("server");
        self.must(
            r,
            &[
                "wg",
                "set",
                w,
                "private-key",
                &self.key_path("router"),
                "peer",
                &spub,
                "endpoint",
                &format!("{VPN_PUBLIC4}:{WG_PORT}"),
                "allowed-ips",
                "0.0.0.0/0,::/0",
            ],
        );
        // Like a kernel WireGuard device: no IPv6 link-local, no multicast (no stray
        // MLD/IGMP packets inside the tunnel).
        self.must(r, &["ip", "link", "set", w, "addrgenmode", "none", "multicast", "off"]);
        self.must(r, &["ip", "addr", "add", &format!("{ROUTER_TUNNEL4}/24"), "dev", w]);
        self.must(r, &["ip", "addr", "add", &format!("{ROUTER_TUNNEL6}/64"), "dev", w, "nodad"]);
        self.must(r, &["ip", "link", "set", w, "up"]);
    }

    /// Kill the router's wireguard-go (SIGKILL): its interface disappears.
    pub fn kill_wg_router(&self) {
        self.kill("wg-router", libc::SIGKILL);
        let w = self.wg_router.clone();
        let gone = self.wait_for("router wg interface gone", Duration::from_secs(5), || {
            self.ns(&self.router, &["ip", "link", "show", &w]).is_err()
        });
        assert!(gone, "{w} still exists after killing wireguard-go");
        let _ = fs::remove_file(format!("/var/run/wireguard/{w}.sock"));
    }

    /// (Re)load the fw4 ruleset fixture in the router (= `fw4 reload`).
    pub fn load_fw4(&self) -> Result<String, String> {
        assert!(valid_ifname(&self.wg_router));
        let text = FW4_TEMPLATE.replace("@WG@", &self.wg_router);
        fs::write(self.dir.join("fw4.nft"), &text).unwrap();
        self.exec(
            &["ip", "netns", "exec", &self.router, "nft", "-f", &self.dir.join("fw4.nft").to_string_lossy()],
            None,
        )
    }

    fn start_tor(&self) {
        let dir = self.dir.to_string_lossy().to_string();
        let data = self.dir.join("tor-data");
        fs::create_dir_all(&data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        let rc = TORRC_TEMPLATE
            .replace("@DIR@", &dir)
            .replace("@LAN@", &ROUTER_LAN4.to_string())
            .replace("@TRANS@", &TOR_TRANS_PORT.to_string())
            .replace("@DNS@", &TOR_DNS_PORT.to_string());
        let path = self.dir.join("torrc");
        fs::write(&path, rc).unwrap();
        self.spawn("tor", &self.router, &["tor", "-f", &path.to_string_lossy()], &[]);
        let ok = self.wait_for("tor listeners", Duration::from_secs(20), || {
            let l = self.proc_log("tor");
            l.contains("Opened Transparent pf/netfilter listener connection (ready)")
                && l.contains("Opened DNS listener connection (ready)")
        });
        assert!(ok, "tor did not open its listeners; log:\n{}", self.proc_log("tor"));
    }

    /// Tor's info log (accepted connections, DNS requests with names: `SafeLogging 0`).
    pub fn tor_log(&self) -> String {
        fs::read_to_string(self.dir.join("tor-info.log")).unwrap_or_default()
    }

    // ----- routing a device into the tunnel by hand (no moat) -----

    /// Route `dev` into the WireGuard tunnel with plain nft + ip rule, the way the lab facts
    /// describe it, without moat (for lab self-checks and the benchmark baseline).
    pub fn route_by_hand(&self, dev: &Device) {
        let r = &self.router;
        let script = format!(
            "table inet labroute {{\n chain pre {{\n  type filter hook prerouting priority mangle; policy accept;\n  iifname \"br-lan\" ether saddr {} meta mark set 0x100\n }}\n}}\n",
            dev.mac
        );
        self.nft(r, &script).unwrap_or_else(|e| panic!("{e}"));
        self.must(r, &["ip", "rule", "add", "fwmark", "0x100", "lookup", "100", "priority", "100"]);
        self.must(r, &["ip", "route", "add", "default", "dev", &self.wg_router, "table", "100"]);
    }

    /// Undo [`Lab::route_by_hand`].
    pub fn unroute_by_hand(&self) {
        let r = &self.router;
        let _ = self.ns(r, &["nft", "delete", "table", "inet", "labroute"]);
        let _ = self.ns(r, &["ip", "rule", "del", "fwmark", "0x100", "lookup", "100", "priority", "100"]);
        let _ = self.ns(r, &["ip", "route", "flush", "table", "100"]);
    }

    // ----- moat -----

    /// Write `text` as moat's config file (`<dir>/moat.conf`) and return its path.
    pub fn write_moat_config(&self, text: &str) -> PathBuf {
        let p = self.dir.join("moat.conf");
        fs::write(&p, text).unwrap();
        self.note(&format!("moat config written:\n{text}"));
        *self.moat_config.lock().unwrap() = Some(p.clone());
        p
    }

    /// Start `moat run` in the router with `config` and wait until its table is in place.
    pub fn start_moat(&self, config: &str) {
        self.start_moat_with(config, &moat_bin(), &[]);
    }

    /// [`Lab::start_moat`] with another binary and extra `moat run` arguments.
    pub fn start_moat_with(&self, config: &str, bin: &Path, extra: &[&str]) {
        self.spawn_moat(config, bin, extra);
        let ok = self.wait_for("moat table present", Duration::from_secs(15), || {
            !self.running("moat") || self.moat_ruleset().is_some()
        });
        assert!(
            ok && self.running("moat"),
            "moat run did not come up (running: {}); log:\n{}",
            self.running("moat"),
            self.proc_log("moat")
        );
        assert!(
            self.moat_ruleset().is_some(),
            "moat is running but `inet moat` is missing; log:\n{}",
            self.proc_log("moat")
        );
    }

    /// Spawn `moat run` (tag `moat`) on `config` without waiting for anything. The guard file
    /// is the lab's own ([`Lab::guard_file`]; a binary without `--guard-file`, i.e. older than
    /// issue 10, is run without it, for before/after figures).
    pub fn spawn_moat(&self, config: &str, bin: &Path, extra: &[&str]) {
        let p = self.write_moat_config(config);
        let state = self.dir.join("moat-state");
        fs::create_dir_all(&state).unwrap();
        let (p, state, guard, bin) = (
            p.to_string_lossy().to_string(),
            state.to_string_lossy().to_string(),
            self.guard_file().to_string_lossy().to_string(),
            bin.to_string_lossy().to_string(),
        );
        let mut args = vec![bin.as_str(), "run", "--config", &p, "--state-dir", &state];
        if has_guard_flag(Path::new(&bin)) {
            args.extend(["--guard-file", guard.as_str()]);
        }
        args.extend(extra);
        // Forget a moat that exited (e.g. on an invalid config), so `running("moat")` is this one.
        if !self.running("moat") {
            self.kill("moat", 0);
        }
        self.spawn("moat", &self.router, &args, &[("RUST_BACKTRACE", "1")]);
    }

    /// Where the lab's moat writes its boot-time guard (never the host's /usr/share).
    pub fn guard_file(&self) -> PathBuf {
        self.dir.join("moat-guard.nft")
    }

    /// `nft list table inet moat` in the router, if the table exists.
    pub fn moat_ruleset(&self) -> Option<String> {
        self.ns(&self.router, &["nft", "list", "table", "inet", "moat"]).ok()
    }

    /// The router's policy routing state (`ip rule` + every table's routes), for comparisons.
    pub fn routing_state(&self) -> String {
        let rules = self.ns(&self.router, &["ip", "rule"]).unwrap_or_default();
        let routes = self.ns(&self.router, &["ip", "route", "show", "table", "all"]).unwrap_or_default();
        let routes6 = self.ns(&self.router, &["ip", "-6", "route", "show", "table", "all"]).unwrap_or_default();
        format!("{rules}\n{routes}\n{routes6}")
    }

    // ----- capture -----

    /// Start capturing the router's WAN link (tcpdump on the internet side of the veth).
    pub fn capture_wan(&self, tag: &str) -> Capture {
        let file = self.dir.join(format!("{tag}.pcap"));
        let _ = fs::remove_file(&file);
        let ptag = format!("tcpdump-{tag}");
        self.spawn(
            &ptag,
            &self.inet,
            &[
                "tcpdump",
                "-i",
                "wan0",
                "-n",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "-s",
                "0",
                "-w",
                &file.to_string_lossy(),
            ],
            &[],
        );
        let ok = self
            .wait_for("tcpdump listening", Duration::from_secs(10), || self.proc_log(&ptag).contains("listening on"));
        assert!(ok, "tcpdump did not start; log:\n{}", self.proc_log(&ptag));
        Capture { tag: ptag, file }
    }

    /// Stop a capture and decode it.
    pub fn stop_capture(&self, cap: Capture) -> Vec<pcap::Packet> {
        thread::sleep(Duration::from_millis(300)); // let packets in flight arrive
        self.kill(&cap.tag, libc::SIGINT);
        let data = fs::read(&cap.file).unwrap_or_else(|e| panic!("read {}: {e}", cap.file.display()));
        let pkts = pcap::read_pcap(&data).unwrap_or_else(|e| panic!("{}: {e}", cap.file.display()));
        self.note(&format!("capture {} : {} packets", cap.file.display(), pkts.len()));
        pkts
    }

    // ----- traffic -----

    /// Look up a device by label.
    pub fn dev(&self, label: &str) -> &Device {
        self.devices.iter().find(|d| d.label == label).unwrap_or_else(|| panic!("no device {label}"))
    }

    /// One attempt of traffic `kind` from `dev`; Ok(detail) when an answer came back intact.
    pub fn attempt(&self, dev: &Device, kind: Traffic, timeout: Duration) -> Result<String, String> {
        let name = kind.name_of(&dev.names).to_string();
        let r = if kind == Traffic::Icmp {
            self.ns(
                &dev.ns,
                &["ping", "-n", "-c", "1", "-W", &timeout.as_secs().max(1).to_string(), &INTERNET4.to_string()],
            )
            .map(|_| "pong".to_string())
        } else {
            in_ns(&dev.ns, || attempt_in_ns(kind, &name, timeout))
        };
        self.note(&format!("attempt {kind:?} from {}: {r:?}", dev.label));
        r
    }

    /// TCP echo through whatever path `dev` has: `len` pseudo-random bytes to `addr`, all of
    /// them must come back unchanged.
    pub fn tcp_echo(&self, dev: &Device, addr: SocketAddr, len: usize, timeout: Duration) -> Result<(), String> {
        let r = in_ns(&dev.ns, || tcp_echo(addr, &pattern(len, addr.port() as u64), timeout));
        self.note(&format!("tcp echo {len} bytes from {} to {addr}: {r:?}", dev.label));
        r
    }

    /// UDP echo: one datagram of `len` bytes must come back unchanged.
    pub fn udp_echo(&self, dev: &Device, addr: SocketAddr, len: usize, timeout: Duration) -> Result<(), String> {
        let payload = pattern(len, 7);
        let r = in_ns(&dev.ns, || {
            udp_roundtrip(addr, &payload, timeout).and_then(|back| {
                if back == payload {
                    Ok(())
                } else {
                    Err("datagram changed".into())
                }
            })
        });
        self.note(&format!("udp echo {len} bytes from {} to {addr}: {r:?}", dev.label));
        r
    }

    /// `dig` from `dev`: the A records for `name` from `server` (`+tcp` if `tcp`).
    pub fn dig(&self, dev: &Device, server: IpAddr, port: u16, name: &str, tcp: bool) -> Result<Vec<IpAddr>, String> {
        let at = format!("@{server}");
        let p = port.to_string();
        let mut args = vec!["dig", "+short", "+tries=1", "+time=2", &at, "-p", &p, name, "A"];
        if tcp {
            args.push("+tcp");
        }
        let out = self.ns(&dev.ns, &args)?;
        let addrs: Vec<IpAddr> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if addrs.is_empty() {
            Err(format!("no answer: {}", out.trim()))
        } else {
            Ok(addrs)
        }
    }

    /// Generate traffic of `kinds` from `dev` continuously (one thread per kind, new sockets
    /// each round) until the returned handle is stopped.
    pub fn traffic(&self, dev: &Device, kinds: &[Traffic]) -> TrafficRun {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let ok = Arc::new(AtomicUsize::new(0));
        let tried = Arc::new(AtomicUsize::new(0));
        let path = format!("/var/run/netns/{}", dev.ns);
        for &k in kinds {
            let (stop, ok, tried, name, path) =
                (stop.clone(), ok.clone(), tried.clone(), k.name_of(&dev.names).to_string(), path.clone());
            let ns = dev.ns.clone();
            threads.push(thread::spawn(move || {
                enter_ns(&path).expect("enter device namespace");
                let mut okk = 0;
                while !stop.load(Ordering::SeqCst) {
                    let r = if k == Traffic::Icmp {
                        Command::new("ip")
                            .args(["netns", "exec", &ns, "ping", "-n", "-c", "1", "-W", "1", &INTERNET4.to_string()])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .map(|s| s.success())
                            .unwrap_or(false)
                    } else {
                        attempt_in_ns(k, &name, Duration::from_millis(400)).is_ok()
                    };
                    tried.fetch_add(1, Ordering::Relaxed);
                    if r {
                        ok.fetch_add(1, Ordering::Relaxed);
                        okk += 1;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                (k, okk)
            }));
        }
        self.note(&format!("traffic from {} started: {kinds:?}", dev.label));
        TrafficRun { stop, threads, ok, tried }
    }

    /// Open a long-lived connection from `dev` to the internet host's push port and keep
    /// reading it on a thread until the handle is dropped (a device's persistent cloud
    /// connection: the server's packets keep coming during faults). None if it cannot connect.
    pub fn hold_connection(&self, dev: &Device) -> Option<HeldConnection> {
        let addr = SocketAddr::new(IpAddr::V4(INTERNET4), PUSH_PORT);
        let c = in_ns(&dev.ns, || TcpStream::connect_timeout(&addr, Duration::from_secs(2)));
        self.note(&format!("persistent connection from {} to {addr}: {:?}", dev.label, c.as_ref().map(|_| ())));
        let c = c.ok()?;
        c.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(AtomicUsize::new(0));
        let (s2, g2, mut r) = (stop.clone(), got.clone(), c.try_clone().ok()?);
        let t = thread::spawn(move || {
            let mut b = [0u8; 256];
            while !s2.load(Ordering::SeqCst) {
                match r.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => {
                        g2.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        });
        Some(HeldConnection { stream: c, stop, got, thread: Some(t) })
    }

    /// Analyse captured WAN packets (see [`WanReport`]).
    pub fn analyze(&self, pkts: &[pcap::Packet], dev: &Device) -> WanReport {
        let r = WanReport::new(pkts, dev);
        self.note(&format!("analysis for {}:\n{}", dev.label, r.summary()));
        r
    }
}

/// Interface-name grammar (same as moat's `IfName`).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// A running capture.
pub struct Capture {
    tag: String,
    /// The pcap file.
    pub file: PathBuf,
}

/// A persistent connection held open by [`Lab::hold_connection`]; closed when dropped.
pub struct HeldConnection {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    got: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HeldConnection {
    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.got.load(Ordering::Relaxed)
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Running background traffic.
pub struct TrafficRun {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<(Traffic, usize)>>,
    ok: Arc<AtomicUsize>,
    tried: Arc<AtomicUsize>,
}

impl TrafficRun {
    /// Attempts that got an intact answer so far.
    pub fn successes(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }
    /// Stop and return, per kind, how many attempts got an answer.
    pub fn stop(mut self) -> Vec<(Traffic, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.drain(..).map(|t| t.join().expect("traffic thread")).collect()
    }
}

impl Drop for TrafficRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Kinds of device traffic the leak matrix generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Traffic {
    /// TCP to the internet host, port 80, an HTTP-like request naming the device's host.
    Tcp,
    /// UDP to the internet host, port 7, payload naming the device's host.
    Udp,
    /// DNS over UDP to the router's LAN address.
    DnsRouter,
    /// DNS over TCP to the router's LAN address.
    DnsRouterTcp,
    /// DNS over UDP to an outside resolver (203.0.113.53).
    DnsOutside,
    /// DNS over TCP to the outside resolver.
    DnsOutsideTcp,
    /// DNS-over-TLS port: TCP to 203.0.113.53:853.
    Dot,
    /// QUIC: UDP to the internet host's port 443.
    Quic,
    /// TCP over IPv6 to the internet host.
    Tcp6,
    /// UDP over IPv6 to the internet host.
    Udp6,
    /// DNS over UDP to the router's IPv6 LAN address.
    DnsRouter6,
    /// ICMP echo (ping) to the internet host.
    Icmp,
}

impl Traffic {
    /// Which of a device's names this kind of traffic carries: the first for DNS to the router
    /// and TCP, the second (if any) for the outside resolver, UDP and QUIC.
    pub fn name_of(self, names: &[String]) -> &str {
        let i = match self {
            Traffic::DnsOutside | Traffic::DnsOutsideTcp | Traffic::Udp | Traffic::Quic | Traffic::Udp6 => 1,
            _ => 0,
        };
        &names[i % names.len()]
    }

    /// Every kind.
    pub const ALL: [Traffic; 12] = [
        Traffic::Tcp,
        Traffic::Udp,
        Traffic::DnsRouter,
        Traffic::DnsRouterTcp,
        Traffic::DnsOutside,
        Traffic::DnsOutsideTcp,
        Traffic::Dot,
        Traffic::Quic,
        Traffic::Tcp6,
        Traffic::Udp6,
        Traffic::DnsRouter6,
        Traffic::Icmp,
    ];
}

/// A DNS query message for `name` (type A, recursion desired).
pub fn dns_query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn attempt_in_ns(kind: Traffic, name: &str, timeout: Duration) -> Result<String, String> {
    let v4 = |ip: Ipv4Addr, p: u16| SocketAddr::new(IpAddr::V4(ip), p);
    let v6 = |ip: Ipv6Addr, p: u16| SocketAddr::new(IpAddr::V6(ip), p);
    let http = format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n").into_bytes();
    let id = (std::process::id() as u16) ^ (Instant::now().elapsed().subsec_nanos() as u16);
    let q = dns_query(name, id);
    let dns_ok = |r: Vec<u8>| {
        if r.len() >= 12 && r[0..2] == q[0..2] {
            Ok(format!("dns answer {} bytes", r.len()))
        } else {
            Err("bad dns answer".to_string())
        }
    };
    match kind {
        Traffic::Tcp => tcp_echo(v4(INTERNET4, 80), &http, timeout).map(|_| "echo".into()),
        Traffic::Udp => udp_roundtrip(v4(INTERNET4, 7), &http, timeout).map(|_| "echo".into()),
        Traffic::Quic => udp_roundtrip(v4(INTERNET4, 443), &http, timeout).map(|_| "echo".into()),
        Traffic::Dot => tcp_echo(v4(RESOLVER4, 853), &http, timeout).map(|_| "echo".into()),
        Traffic::Tcp6 => tcp_echo(v6(INTERNET6, 80), &http, timeout).map(|_| "echo".into()),
        Traffic::Udp6 => udp_roundtrip(v6(INTERNET6, 7), &http, timeout).map(|_| "echo".into()),
        Traffic::DnsRouter => udp_roundtrip(v4(ROUTER_LAN4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsRouter6 => udp_roundtrip(v6(ROUTER_LAN6, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsOutside => udp_roundtrip(v4(RESOLVER4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsRouterTcp => tcp_dns(v4(ROUTER_LAN4, 53), &q, timeout).and_then(dns_ok),
        Traffic::DnsOutsideTcp => tcp_dns(v4(RESOLVER4, 53), &q, timeout).and_then(dns_ok),
        Traffic::Icmp => Err("icmp is sent with ping".into()),
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn tcp_echo(addr: SocketAddr, data: &[u8], timeout: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let writer = {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let d = data.to_vec();
        thread::spawn(move || {
            let r = w.write_all(&d);
            let _ = w.shutdown(Shutdown::Write);
            r
        })
    };
    let mut back = Vec::with_capacity(data.len());
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) => {
                let _ = s.shutdown(Shutdown::Both);
                let _ = writer.join();
                return Err(format!("read from {addr} after {} of {} bytes: {e}", back.len(), data.len()));
            }
        }
    }
    writer.join().map_err(|_| "writer panicked".to_string())?.map_err(|e| format!("write to {addr}: {e}"))?;
    if back == data {
        Ok(())
    } else {
        Err(format!("echo from {addr} differs: sent {} bytes, got {}", data.len(), back.len()))
    }
}

fn udp_roundtrip(addr: SocketAddr, data: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    s.connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.send(data).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).map_err(|e| format!("recv from {addr}: {e}"))?;
    Ok(buf[..n].to_vec())
}

fn tcp_dns(addr: SocketAddr, q: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(q);
    s.write_all(&msg).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| format!("read from {addr}: {e}"))?;
    let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut r).map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(r)
}

/// TCP throughput: send `bytes` to the internet host's sink (port 9); returns bytes/second.
pub fn tcp_throughput(bytes: u64, timeout: Duration) -> Result<f64, String> {
    let addr = SocketAddr::new(IpAddr::V4(INTERNET4), 9);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(timeout)).ok();
    s.set_read_timeout(Some(timeout)).ok();
    let chunk = pattern(128 * 1024, 9);
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = chunk.len().min((bytes - sent) as usize);
        s.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    let mut got = [0u8; 8];
    s.read_exact(&mut got).map_err(|e| format!("sink count: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let counted = u64::from_be_bytes(got);
    if counted != bytes {
        return Err(format!("sink counted {counted} of {bytes} bytes"));
    }
    Ok(bytes as f64 / secs)
}

// ---------------------------------------------------------------------------------------------
// WAN analysis
// ---------------------------------------------------------------------------------------------

/// What the observer on the WAN link saw, judged for one device.
///
/// Only the device under test generates traffic during a leak test, and the lab's WAN link is
/// otherwise silent (both ends forward so nobody sends router solicitations, tor is
/// blackholed, no WireGuard keepalives), so every packet that is neither ARP, IPv6 neighbour
/// discovery/MLD not involving the device, nor the WireGuard flow between the router and the
/// VPN server (including ICMP errors about that flow) is counted as the device's leak, with the
/// reason it matters:
/// it touches the internet host's addresses in the clear, carries one of the device's DNS
/// names, comes from the device's IPv6 address, or is otherwise unexplained.
#[derive(Debug, Clone, Default)]
pub struct WanReport {
    /// Frames captured.
    pub total: usize,
    /// ARP frames.
    pub arp: usize,
    /// IPv6 neighbour discovery / multicast listener frames not involving the device.
    pub link: usize,
    /// Frames of the WireGuard flow router <-> VPN server.
    pub wireguard: usize,
    /// Everything else, one described line per packet.
    pub leaks: Vec<String>,
    /// DNS question names seen in the clear.
    pub dns_names: BTreeSet<String>,
    /// Clear destinations (`addr:port/proto`) with packet counts (either direction, keyed by
    /// the far end).
    pub destinations: BTreeMap<String, usize>,
}

impl WanReport {
    /// Judge `pkts` for `dev`.
    pub fn new(pkts: &[pcap::Packet], dev: &Device) -> WanReport {
        let mut r = WanReport { total: pkts.len(), ..Default::default() };
        let wg_peer = IpAddr::V4(VPN_PUBLIC4);
        let router = IpAddr::V4(ROUTER_WAN4);
        let internet: [IpAddr; 3] = [IpAddr::V4(INTERNET4), IpAddr::V4(RESOLVER4), IpAddr::V6(INTERNET6)];
        for p in pkts {
            let (src, dst, proto, sport, dport, payload) = match &p.kind {
                pcap::Kind::Arp => {
                    r.arp += 1;
                    continue;
                }
                pcap::Kind::Other(_) => {
                    r.leaks.push(format!("{p} [unexplained frame]"));
                    continue;
                }
                pcap::Kind::Ip { src, dst, proto, sport, dport, payload } => {
                    (*src, *dst, *proto, *sport, *dport, payload)
                }
            };
            let wg = proto == pcap::UDP
                && ((src == router && dst == wg_peer && dport == WG_PORT)
                    || (src == wg_peer && dst == router && sport == WG_PORT));
            // ICMP errors about the WireGuard flow (e.g. port unreachable while wireguard-go
            // restarts) quote it: IPv4 header (20) + UDP ports.
            let wg_icmp = proto == pcap::ICMP && payload.len() >= 8 + 20 + 4 && {
                let inner = &payload[8..];
                let isrc = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
                let idst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
                let ports = [u16::from_be_bytes([inner[20], inner[21]]), u16::from_be_bytes([inner[22], inner[23]])];
                inner[9] == pcap::UDP
                    && ((IpAddr::V4(isrc) == router && IpAddr::V4(idst) == wg_peer && ports[1] == WG_PORT)
                        || (IpAddr::V4(isrc) == wg_peer && IpAddr::V4(idst) == router && ports[0] == WG_PORT))
            };
            if wg || wg_icmp {
                r.wireguard += 1;
                continue;
            }
            // IPv6 neighbour discovery and multicast listener reports (ICMPv6 130-137, 143):
            // link housekeeping like ARP, unless the device's own address is involved.
            let dev6 = IpAddr::V6(dev.ip6);
            if proto == pcap::ICMPV6
                && matches!(payload.first(), Some(130..=137) | Some(143))
                && src != dev6
                && dst != dev6
                && !payload.windows(16).any(|w| w == dev.ip6.octets())
            {
                r.link += 1;
                continue;
            }
            let inside = |a: IpAddr| match a {
                IpAddr::V4(a) => a == ROUTER_WAN4 || a.octets()[0] == 10 || a.octets()[..2] == [192, 168],
                IpAddr::V6(a) => a == ROUTER_WAN6 || a.segments()[..3] == [0xfd6d, 0x6f61, 0x7400],
            };
            let far = if inside(src) { (dst, dport) } else { (src, sport) };
            let pname = match proto {
                pcap::TCP => "tcp",
                pcap::UDP => "udp",
                pcap::ICMP => "icmp",
                pcap::ICMPV6 => "icmpv6",
                _ => "ip",
            };
            let key = match far.0 {
                IpAddr::V6(a) => format!("[{a}]:{}/{pname}", far.1),
                IpAddr::V4(a) => format!("{a}:{}/{pname}", far.1),
            };
            *r.destinations.entry(key).or_default() += 1;
            let mut why = Vec::new();
            if internet.contains(&src) || internet.contains(&dst) {
                why.push("internet host in the clear".to_string());
            }
            if let Some(q) = p.dns_question() {
                r.dns_names.insert(q.clone());
                if dev.names.iter().any(|n| n.eq_ignore_ascii_case(&q)) {
                    why.push(format!("DNS question for the device's name {q}"));
                }
            }
            for n in &dev.names {
                if p.contains_name(n) && !why.iter().any(|w| w.contains(n.as_str())) {
                    why.push(format!("carries the device's name {n}"));
                }
            }
            if src == IpAddr::V6(dev.ip6) || dst == IpAddr::V6(dev.ip6) {
                why.push("IPv6 of the device".to_string());
            }
            if why.is_empty() {
                why.push("unexplained".to_string());
            }
            r.leaks.push(format!("{p} [{}]", why.join("; ")));
        }
        r
    }

    /// A readable multi-line summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} frames: {} WireGuard (router<->VPN server), {} ARP, {} IPv6 ND/MLD, {} outside the tunnel\n",
            self.total,
            self.wireguard,
            self.arp,
            self.link,
            self.leaks.len()
        );
        if !self.destinations.is_empty() {
            s.push_str("  clear destinations:\n");
            for (d, n) in &self.destinations {
                s.push_str(&format!("    {d:<32} {n} packets\n"));
            }
        }
        if !self.dns_names.is_empty() {
            s.push_str("  DNS names in the clear:\n");
            for n in &self.dns_names {
                s.push_str(&format!("    {n}\n"));
            }
        }
        for l in self.leaks.iter().take(25) {
            s.push_str(&format!("  {l}\n"));
        }
        if self.leaks.len() > 25 {
            s.push_str(&format!("  … {} more\n", self.leaks.len() - 25));
        }
        s
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

/// Render a moat UCI config for this lab: the WireGuard tunnel `vpn`, the tor tunnel `tor`,
/// and one `config device` per `(device, route)`.
pub fn moat_config(lab: &Lab, routes: &[(&Device, &str)]) -> String {
    moat_config_v6(lab, routes, false)
}

/// Like [`moat_config`], with the `vpn` tunnel's `ipv6` option set to `ipv6`.
pub fn moat_config_v6(lab: &Lab, routes: &[(&Device, &str)], ipv6: bool) -> String {
    let mut s = String::from(
        "config moat 'main'\n\toption enabled '1'\n\toption log_level 'debug'\n\tlist lan_device 'br-lan'\n\n",
    );
    s.push_str(&format!(
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n\toption ipv6 '{}'\n\n",
        lab.wg_router,
        ipv6 as u8
    ));
    s.push_str(&format!("config tunnel 'tor'\n\toption type 'tor'\n\toption trans_port '{TOR_TRANS_PORT}'\n\toption dns_port '{TOR_DNS_PORT}'\n\n"));
    for (d, route) in routes {
        s.push_str(&format!(
            "config device\n\toption name '{}'\n\tlist mac '{}'\n\toption route '{route}'\n\n",
            d.label, d.mac
        ));
    }
    s
}

impl Lab {
    /// One `Ip:` counter of `/proc/net/snmp` in namespace `ns` (e.g. `InHdrErrors`, where the
    /// receiving kernel counts the cover packets it drops).
    pub fn snmp_ip(&self, ns: &str, field: &str) -> u64 {
        let text = self.must(ns, &["cat", "/proc/net/snmp"]);
        let mut lines = text.lines().filter(|x| x.starts_with("Ip:"));
        let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let vals: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        vals[names.iter().position(|n| *n == field).unwrap()].parse().unwrap()
    }
}

/// Mean and coefficient of variation (percent) of per-second packet counts.
pub fn cv(counts: &[u32]) -> (f64, f64) {
    let n = counts.len().max(1) as f64;
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    let var = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, if mean > 0.0 { 100.0 * var.sqrt() / mean } else { f64::INFINITY })
}
