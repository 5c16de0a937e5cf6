//! `moat run` lifecycle on the real kernel, inside a throwaway network namespace: start,
//! tunnel link down/up (route re-added), SIGHUP with an invalid config (state unchanged),
//! SIGHUP with a changed config, SIGKILL (state stays: fail closed), restart (stale entries
//! replaced), SIGTERM (everything removed). Traffic-level leak tests live in the lab tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (apt-get install iproute2 nftables iptables)"));
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A namespace (deleted on drop) with a LAN bridge and a veth standing in for the tunnel.
struct Lab {
    ns: String,
    dir: PathBuf,
    tun: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let ns = format!("moatd-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&ns);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        sh(&["ip", "netns", "add", &ns]);
        let lab = Lab { ns, dir, tun: format!("tn{}", std::process::id() % 100000) };
        lab.ip(&["link", "set", "lo", "up"]);
        lab.ip(&["link", "add", "br-lan", "type", "bridge"]);
        lab.ip(&["link", "set", "br-lan", "up"]);
        lab.ip(&["link", "add", &lab.tun, "mtu", "1420", "type", "veth", "peer", "name", "tunpeer"]);
        lab.ip(&["link", "set", "tunpeer", "up"]);
        lab.ip(&["link", "set", &lab.tun, "up"]);
        lab
    }
    fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.ns];
        v.extend_from_slice(args);
        sh(&v)
    }
    fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.ns];
        v.extend_from_slice(args);
        sh(&v)
    }
    fn write_config(&self, text: &str) -> String {
        let p = self.dir.join("moat.conf");
        std::fs::write(&p, text.replace("TUN", &self.tun)).unwrap();
        p.to_string_lossy().into_owned()
    }
    /// `moat run` on the current config, waiting for its first apply (a hold of 3 s at stop).
    fn start(&self) -> Daemon {
        let d = self.launch("3");
        self.wait_log("applied:", 1);
        d
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("moat.log")).unwrap_or_default()
    }
    /// Wait until `needle` occurs at least `count` times in the log (no timing assertion: the
    /// limit only turns a hang into a failure with the log shown).
    fn wait_log(&self, needle: &str, count: usize) {
        let t = Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(t.elapsed() < Duration::from_secs(20), "'{needle}' x{count} never logged:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(20), "{what} never happened:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn rules(&self) -> Vec<String> {
        self.ip(&["rule"])
            .lines()
            .filter(|l| l.contains("fwmark"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }
    fn table(&self) -> String {
        self.ip(&["route", "show", "table", "4200"])
    }
    fn has_moat_table(&self) -> bool {
        self.has_table("moat")
    }
    fn has_table(&self, name: &str) -> bool {
        self.exec(&["nft", "list", "tables"]).lines().any(|l| l.trim() == format!("table inet {name}"))
    }
    fn guard_file(&self) -> PathBuf {
        self.dir.join("guard.nft")
    }
    /// `moat run` on the current config, not waiting for anything (a hold of 1 s at stop).
    fn spawn(&self) -> Daemon {
        self.launch("1")
    }
    fn launch(&self, hold: &str) -> Daemon {
        let log = std::fs::File::create(self.dir.join("moat.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_moat"), "run", "--stderr", "--config"])
            .arg(self.dir.join("moat.conf"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--guard-file")
            .arg(self.guard_file())
            .args(["--hold", hold])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon { child: Some(child) }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The daemon process; killed on drop.
struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        // `ip netns exec` execs the program, so the child pid is moat itself.
        sh(&["kill", &format!("-{sig}"), &pid]);
    }
    fn wait(&mut self) -> i32 {
        self.child.take().unwrap().wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const CONFIG: &str = "config moat 'main'
	list lan_device 'br-lan'

config tunnel 'vpn'
	option type 'wireguard'
	option device 'TUN'
	option dns '10.64.0.1'

config device 'speaker'
	list mac '02:00:00:00:00:51'
	option route 'vpn'

config device 'plug'
	list mac '02:00:00:00:00:52'
	option route 'block'
";

#[test]
fn daemon_lifecycle_keeps_state_true_and_fails_closed() {
    let lab = Lab::new("life");
    lab.write_config(CONFIG);
    let mut d = lab.start();

    // Started: table, one rule for vpn, dev route + unreachable fallback.
    assert!(lab.has_moat_table());
    assert_eq!(lab.rules(), vec!["4200: from all fwmark 0x1000000/0xf000000 lookup 4200 proto 77"]);
    let t = lab.table();
    assert!(
        t.contains(&format!("default dev {} proto 77", lab.tun))
            && t.contains("unreachable default proto 77 metric 9999"),
        "{t}"
    );
    let status = std::fs::read_to_string(lab.dir.join("state/status.json")).unwrap();
    assert!(status.contains("\"state\": \"running\"") && status.contains("protected (tunnel up)"), "{status}");

    // Tunnel down: the kernel drops the dev route, the unreachable route stays.
    lab.ip(&["link", "set", &lab.tun, "down"]);
    lab.wait_for("dev route gone", || !lab.table().contains("default dev"));
    assert!(lab.table().contains("unreachable default"));
    // Tunnel up again: moat re-adds the dev route.
    lab.ip(&["link", "set", &lab.tun, "up"]);
    lab.wait_for("dev route re-added", || lab.table().contains(&format!("default dev {}", lab.tun)));

    // Someone else deletes moat's table (`fw4 flush` does, from `service firewall stop`), then
    // deletes one of its chains: both are undone on the nftables notification, not at the 30 s
    // re-check (the log line comes only from the notification path; wait_log gives up at 20 s).
    let full = lab.exec(&["nft", "list", "table", "inet", "moat"]);
    lab.exec(&["nft", "delete", "table", "inet", "moat"]);
    lab.wait_log("table inet moat changed by pid", 1);
    lab.wait_for("table restored", || lab.has_moat_table());
    assert_eq!(lab.exec(&["nft", "list", "table", "inet", "moat"]), full);
    lab.exec(&["nft", "delete", "chain", "inet", "moat", "guard_forward"]);
    lab.wait_log("table inet moat changed by pid", 2);
    lab.wait_for("chain restored", || lab.exec(&["nft", "list", "table", "inet", "moat"]) == full);

    // Reload with an invalid config: nothing changes.
    let before = (lab.rules(), lab.exec(&["nft", "list", "table", "inet", "moat"]));
    lab.write_config(&format!("{CONFIG}\nconfig device\n\tlist mac 'zz'\n\toption route 'nowhere'\n"));
    d.signal("HUP");
    lab.wait_log("running state is unchanged", 1);
    assert_eq!(before, (lab.rules(), lab.exec(&["nft", "list", "table", "inet", "moat"])));

    // Reload with a changed config: the plug now goes through the vpn too.
    lab.write_config(&CONFIG.replace("option route 'block'", "option route 'vpn'"));
    d.signal("HUP");
    lab.wait_log("applied:", 2);
    // moat's own transactions (this reload) are not mistaken for someone else's.
    assert_eq!(lab.log().matches("table inet moat changed by pid").count(), 2, "{}", lab.log());
    assert_eq!(
        lab.rules(),
        vec!["4200: from all fwmark 0x1000000/0xf000000 lookup 4200 proto 77"],
        "block route gone, vpn still value 1"
    );
    let nft = lab.exec(&["nft", "list", "table", "inet", "moat"]);
    assert!(nft.contains("02:00:00:00:00:52") && !nft.contains("block: LAN only"), "{nft}");

    // SIGKILL: everything stays in the kernel (fail closed).
    d.signal("KILL");
    d.wait();
    assert!(lab.has_moat_table());
    assert_eq!(lab.rules().len(), 1);
    assert!(lab.table().contains("unreachable default"));

    // Restart with the original config: stale state replaced, not duplicated.
    lab.write_config(CONFIG);
    std::fs::write(lab.dir.join("moat.log"), "").unwrap();
    let mut d = lab.start();
    assert_eq!(lab.rules(), vec!["4200: from all fwmark 0x1000000/0xf000000 lookup 4200 proto 77"]);
    assert_eq!(lab.table().matches("unreachable").count(), 1);

    // SIGTERM: rules and routes removed; the table is swapped for the hold (protected MACs
    // blocked, expiring), so a restart has no gap.
    d.signal("TERM");
    assert_eq!(d.wait(), 0);
    assert!(lab.rules().is_empty());
    assert_eq!(lab.table().trim(), "");
    let status = std::fs::read_to_string(lab.dir.join("state/status.json")).unwrap();
    assert!(status.contains("\"state\": \"stopped\""), "{status}");
    let hold = lab.exec(&["nft", "list", "table", "inet", "moat"]);
    assert!(!hold.contains("classify") && hold.contains("ether saddr @hold drop"), "{hold}");
    assert!(hold.contains("02:00:00:00:00:51") && hold.contains("02:00:00:00:00:52"), "{hold}");

    // A new start replaces the hold with the full table in one transaction.
    std::fs::write(lab.dir.join("moat.log"), "").unwrap();
    let mut d = lab.start();
    let nft = lab.exec(&["nft", "list", "table", "inet", "moat"]);
    assert!(nft.contains("chain classify") && !nft.contains("@hold"), "{nft}");
    d.signal("TERM");
    assert_eq!(d.wait(), 0);

    // Without a new start the hold elements expire (3 s here) and the devices are released.
    lab.wait_for("hold expiry", || !lab.exec(&["nft", "list", "set", "inet", "moat", "hold"]).contains("02:00:00"));

    // `moat cleanup` removes the rest.
    lab.exec(&[env!("CARGO_BIN_EXE_moat"), "cleanup", "--guard-file", &lab.dir.join("guard.nft").to_string_lossy()]);
    assert!(!lab.has_moat_table());
}

#[test]
fn disabled_config_removes_state_and_invalid_start_touches_nothing() {
    let lab = Lab::new("dis");
    lab.write_config(CONFIG);
    let mut d = lab.start();
    assert!(lab.has_moat_table());
    lab.write_config(&CONFIG.replace("config moat 'main'\n", "config moat 'main'\n\toption enabled '0'\n"));
    d.signal("HUP");
    lab.wait_for("removal", || !lab.has_moat_table());
    assert!(lab.rules().is_empty());
    assert_eq!(lab.table().trim(), "");
    d.signal("KILL");
    d.wait();

    // Kernel state left by a killed run + an invalid config at start: moat exits 1, touches nothing.
    lab.write_config(CONFIG);
    let mut d = lab.start();
    d.signal("KILL");
    d.wait();
    lab.write_config("config device\n\tlist mac 'zz'\n");
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns, env!("CARGO_BIN_EXE_moat"), "run", "--stderr", "--config"])
        .arg(lab.dir.join("moat.conf"))
        .arg("--state-dir")
        .arg(lab.dir.join("state"))
        .arg("--guard-file")
        .arg(lab.dir.join("guard.nft"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(lab.has_moat_table());
    assert_eq!(lab.rules().len(), 1);
}

#[test]
fn ipv6_tunnel_gets_v6_rules_and_routes() {
    let lab = Lab::new("v6");
    lab.write_config(&CONFIG.replace("option dns '10.64.0.1'", "option dns '10.64.0.1'\n\toption ipv6 '1'"));
    let mut d = lab.start();
    let rules6: Vec<String> =
        lab.ip(&["-6", "rule"]).lines().filter(|l| l.contains("fwmark")).map(str::to_string).collect();
    assert_eq!(rules6.len(), 1, "{rules6:?}");
    assert!(rules6[0].contains("fwmark 0x1000000/0xf000000 lookup 4200"), "{rules6:?}");
    let t6 = lab.ip(&["-6", "route", "show", "table", "4200"]);
    assert!(t6.contains(&format!("default dev {} proto 77", lab.tun)) && t6.contains("unreachable default"), "{t6}");
    let nft = lab.exec(&["nft", "list", "table", "inet", "moat"]);
    assert!(!nft.contains("tunnel carries no IPv6"), "{nft}");
    d.signal("TERM");
    assert_eq!(d.wait(), 0);
    assert!(lab.ip(&["-6", "rule"]).lines().all(|l| !l.contains("fwmark")));
    assert_eq!(lab.ip(&["-6", "route", "show", "table", "4200"]).trim(), "");
}

/// `nft` present but not executable (PATH holds only a directory with a mode-0644 `nft`): the
/// plan is never recorded as applied, so the status shows no device as protected and no apply
/// time, and the state is degraded, not running. (The error text "cannot run nft: …" once did
/// not count as an nft failure because it does not start with "nft ".)
#[test]
fn nft_that_cannot_run_is_not_recorded_as_applied() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new("nonft");
    lab.write_config(CONFIG);
    let bin = lab.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("nft"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(bin.join("nft"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = std::fs::File::create(lab.dir.join("moat.log")).unwrap();
    let path = format!("PATH={}", bin.display());
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns, "env", &path, env!("CARGO_BIN_EXE_moat"), "run", "--stderr", "--config"])
        .arg(lab.dir.join("moat.conf"))
        .arg("--state-dir")
        .arg(lab.dir.join("state"))
        .arg("--guard-file")
        .arg(lab.dir.join("guard.nft"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // `env` execs moat: the child pid is moat itself.
    let mut d = Daemon { child: Some(child) };
    lab.wait_log("cannot run nft", 1);
    let path = lab.dir.join("state/status.json");
    lab.wait_for("status written", || path.exists());
    let status = std::fs::read_to_string(&path).unwrap();
    assert!(status.contains("\"state\": \"degraded\"") && status.contains("\"applied_at\": 0,"), "{status}");
    assert!(status.contains("cannot run nft"), "{status}");
    assert!(!status.contains("protected") && !status.contains("\"section\": \"speaker\""), "{status}");
    assert!(!lab.log().contains("applied:"), "{}", lab.log());
    assert!(!lab.has_moat_table());
    d.signal("TERM");
    assert_eq!(d.wait(), 0);
}

/// Issue 10 points 1 and 2: the guard file follows the last valid config, the guard table
/// outlives stop and the hold, an invalid config at start re-loads the guard, says so in the
/// status and exits 1; a stop without an applied plan leaves a killed run's table; a config
/// that protects nobody removes the guard, and `moat cleanup` removes file and table.
#[test]
fn guard_outlives_stop_and_invalid_starts_and_follows_the_config() {
    let lab = Lab::new("guard");
    let cfg = lab.write_config(CONFIG);
    let mut d = lab.start();
    // The guard file is written right after the apply that the "applied:" line announces.
    lab.wait_for("guard file", || lab.guard_file().exists());
    let guard = std::fs::read_to_string(lab.guard_file()).expect("guard file written after the apply");
    assert!(guard.contains("02:00:00:00:00:51") && guard.contains("table inet moat_guard {"), "{guard}");
    assert!(lab.has_table("moat_guard"));

    // Stop, hold expires (1 s): moat's table is inert or gone, the guard stays.
    d.signal("TERM");
    assert_eq!(d.wait(), 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(lab.has_table("moat_guard"), "the guard must outlive stop and the hold");
    assert!(lab.guard_file().exists());

    // Boot: kernel state gone. An invalid config at start loads the guard file first, exits 1
    // and says where the config is wrong.
    lab.exec(&["nft", "flush", "ruleset"]);
    lab.write_config(&format!("{CONFIG}\nconfig device\n\tlist mac 'zz'\n"));
    let mut d = lab.spawn();
    assert_eq!(d.wait(), 1, "{}", lab.log());
    assert!(lab.has_table("moat_guard"), "moat must load the guard file at start:\n{}", lab.log());
    let st = Command::new(env!("CARGO_BIN_EXE_moat"))
        .arg("status")
        .arg("--state-dir")
        .arg(lab.dir.join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(3), "{text}");
    let raw = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["status", "--raw", "--state-dir"])
        .arg(lab.dir.join("state"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&raw.stdout).contains("\"state\": \"invalid\""), "{raw:?}");
    let want = format!("moat is not running: configuration invalid: {cfg}:");
    assert!(text.lines().any(|l| l.starts_with(&want)), "no `{want}` line:\n{text}");

    // A killed run leaves its full table; a run whose plan cannot be applied (dns on the
    // router itself) is stopped: the table must stay.
    lab.write_config(CONFIG);
    let mut d = lab.start();
    d.signal("KILL");
    d.wait();
    lab.ip(&["addr", "add", "10.64.0.1/32", "dev", "br-lan"]);
    let mut d = lab.spawn();
    lab.wait_log("is an address of this router", 1);
    d.signal("TERM");
    assert_eq!(d.wait(), 0, "{}", lab.log());
    assert!(
        lab.exec(&["nft", "list", "table", "inet", "moat"]).contains("chain classify"),
        "a stop without an applied plan deleted the killed run's table:\n{}",
        lab.log()
    );
    lab.ip(&["addr", "del", "10.64.0.1/32", "dev", "br-lan"]);

    // A valid config that protects nobody removes the guard (file and table).
    lab.write_config(
        &CONFIG
            .replace("option route 'vpn'", "option route 'direct'")
            .replace("option route 'block'", "option route 'direct'"),
    );
    let mut d = lab.start();
    assert!(!lab.guard_file().exists(), "{}", lab.log());
    assert!(!lab.has_table("moat_guard"));
    d.signal("KILL");
    d.wait();

    // cleanup removes file and table.
    lab.write_config(CONFIG);
    let mut d = lab.start();
    d.signal("KILL");
    d.wait();
    assert!(lab.guard_file().exists() && lab.has_table("moat_guard"));
    lab.exec(&[env!("CARGO_BIN_EXE_moat"), "cleanup", "--guard-file", &lab.guard_file().to_string_lossy()]);
    assert!(!lab.guard_file().exists() && !lab.has_table("moat_guard") && !lab.has_moat_table());
}
