//! Issue 10's long gaps (points 1, 2, 5): boot with fw4 and moat's guard file but moat not (yet)
//! running, moat exiting on an invalid config, a stop longer than the hold, an `opkg
//! upgrade`-style restart, and a tunnel flap during the hold window. Every cell runs every
//! traffic kind of the leak matrix while the WAN is captured and judged the matrix's
//! default-deny way ([`WanReport`]): pass = zero packets of the device outside the tunnel.
//! Used by `tests/leak_boot.rs`.

use super::matrix::{assert_route_works, matrix_config, matrix_lab};
use super::*;

/// How long each gap's traffic runs.
const GAP: Duration = Duration::from_secs(4);
/// The hold these cells run moat with (seconds): short, so "longer than the hold" is quick.
const HOLD: &str = "2";

/// How the boot window looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// Kernel state gone; fw4 loaded with its ruleset-post include (the guard file); moat not
    /// running yet.
    NeverStarted,
    /// Kernel state gone; fw4 loaded with the include; moat started and SIGKILLed at once
    /// (before or just after its first apply: both must be closed).
    Killed,
    /// Kernel state gone; fw4 loaded *without* the include (the file appeared after the last
    /// firewall start); moat starts on an invalid config, loads the guard itself and exits 1;
    /// judged from its exit on.
    InvalidConfig,
}

impl Lab {
    /// Load fw4's ruleset the way `fw4 start` does on a router with moat's guard file in
    /// `ruleset-post/`: one transaction, the include at the top level after `inet fw4`.
    /// Without the file (a moat older than issue 10) it is fw4 alone.
    pub fn load_fw4_with_guard(&self) -> Result<String, String> {
        let mut text = FW4_TEMPLATE.replace("@WG@", &self.wg_router);
        if self.guard_file().is_file() {
            text.push_str(&format!("\ninclude \"{}\"\n", self.guard_file().display()));
        }
        fs::write(self.dir.join("fw4-boot.nft"), &text).unwrap();
        self.exec(
            &["ip", "netns", "exec", &self.router, "nft", "-f", &self.dir.join("fw4-boot.nft").to_string_lossy()],
            None,
        )
    }

    /// A reboot's kernel: moat killed, every nft table and moat's rules and routes gone (the
    /// guard file, on flash, stays).
    pub fn reboot_kernel(&self) {
        self.kill("moat", libc::SIGKILL);
        self.must(&self.router, &["nft", "flush", "ruleset"]);
        let bin = moat_bin();
        let none = self.dir.join("no-guard-file.nft");
        let mut args = vec![bin.to_string_lossy().to_string(), "cleanup".into()];
        if has_guard_flag(&bin) {
            args.extend(["--guard-file".into(), none.to_string_lossy().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.must(&self.router, &args);
        assert!(self.guard_file().is_file() || !has_guard_flag(&bin), "the reboot must keep the guard file");
    }

    /// `moat status` for the lab's daemon (stdout and exit code).
    pub fn moat_status(&self) -> (String, i32) {
        let o = Command::new(moat_bin())
            .args(["status", "--state-dir", &self.dir.join("moat-state").to_string_lossy()])
            .output()
            .expect("moat status");
        (String::from_utf8_lossy(&o.stdout).into_owned(), o.status.code().unwrap_or(-1))
    }
}

/// `cfg` with an error moat refuses (a device on a route that does not exist).
fn invalid(cfg: &str) -> String {
    format!(
        "{cfg}\nconfig device\n\toption name 'bad'\n\tlist mac '02:6d:61:62:00:99'\n\toption route 'nosuchtunnel'\n"
    )
}

/// Every traffic kind from the speaker for [`GAP`] while `during` runs; the WAN judged.
/// Returns a problem text if anything of the device left outside the tunnel.
fn gap(lab: &Lab, tag: &str, route: &str, during: impl FnOnce()) -> Option<String> {
    let d = lab.dev("speaker").clone();
    let cap = lab.capture_wan(tag);
    let traffic = lab.traffic(&d, &Traffic::ALL);
    let t = Instant::now();
    during();
    thread::sleep(GAP.saturating_sub(t.elapsed()).max(Duration::from_secs(1)));
    let counts = traffic.stop();
    lab.note(&format!("{tag}: traffic answered per kind: {counts:?}"));
    let rep = lab.analyze(&lab.stop_capture(cap), &d);
    lab.note(&format!("{tag}: {}", rep.summary()));
    (!rep.leaks.is_empty()).then(|| {
        format!(
            "LEAK: {} packet(s) of the {route} device outside the tunnel ({tag}):\n{}",
            rep.leaks.len(),
            rep.summary()
        )
    })
}

fn finish(lab: &Lab, what: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        panic!("{what} failed (lab dir {}):\n{}", lab.dir.display(), problems.join("\n"));
    }
}

/// The boot window: zero clear packets before moat runs; then moat starts and the route works.
pub fn boot(route: &str, how: Boot) {
    let label = format!("boot-{route}-{how:?}").to_lowercase();
    let lab = matrix_lab(&label, route == "tor");
    let cfg = matrix_config(&lab, route);
    // A previous boot: moat ran with this config and wrote its guard file.
    lab.start_moat(&cfg);
    assert_route_works(&lab, route);
    lab.reboot_kernel();
    lab.note(&format!("=== boot: {how:?} ==="));
    let mut problems = Vec::new();
    match how {
        Boot::NeverStarted | Boot::Killed => lab.load_fw4_with_guard().unwrap_or_else(|e| panic!("{e}")),
        Boot::InvalidConfig => lab.load_fw4().unwrap_or_else(|e| panic!("{e}")),
    };
    if how == Boot::InvalidConfig {
        // Until moat has loaded the guard this window is fw4's alone; it is judged from then on.
        lab.spawn_moat(&invalid(&cfg), &moat_bin(), &["--hold", HOLD]);
        lab.wait_for("moat exits on the invalid config", Duration::from_secs(10), || !lab.running("moat"));
    }
    if how == Boot::Killed {
        lab.spawn_moat(&cfg, &moat_bin(), &["--hold", HOLD]);
        thread::sleep(Duration::from_millis(30));
        lab.kill("moat", libc::SIGKILL);
    }
    let p = gap(&lab, &label, route, || {});
    problems.extend(p);
    if how == Boot::InvalidConfig {
        let (text, code) = lab.moat_status();
        if code != 3 || !text.contains("moat is not running: configuration invalid: ") {
            problems.push(format!("moat status does not say the config is invalid (exit {code}):\n{text}"));
        }
    }
    // moat comes up: the devices work.
    lab.start_moat_with(&cfg, &moat_bin(), &["--hold", HOLD]);
    assert_route_works(&lab, route);
    finish(&lab, &label, problems);
}

/// What happens between stopping moat and it running again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// `service moat stop`, left stopped longer than the hold.
    StopLongerThanHold,
    /// `service moat restart` with an invalid config: the new moat exits 1.
    RestartInvalid,
    /// `opkg upgrade`: stop (prerm), a new binary unpacked (slower than the hold on a router's
    /// flash), start (postinst).
    Upgrade,
}

/// A stop-start gap: zero clear packets while moat is not running; afterwards the route works.
pub fn stop_gap(route: &str, kind: Gap) {
    let label = format!("gap-{route}-{kind:?}").to_lowercase();
    let lab = matrix_lab(&label, route == "tor");
    let cfg = matrix_config(&lab, route);
    lab.start_moat_with(&cfg, &moat_bin(), &["--hold", HOLD]);
    assert_route_works(&lab, route);
    let mut problems = Vec::new();
    let newbin = lab.dir.join("moat-upgraded");
    let p = gap(&lab, &label, route, || {
        lab.note(&format!("=== {kind:?} ==="));
        lab.kill("moat", libc::SIGTERM);
        match kind {
            Gap::StopLongerThanHold => {}
            Gap::RestartInvalid => {
                lab.spawn_moat(&invalid(&cfg), &moat_bin(), &["--hold", HOLD]);
                lab.wait_for("moat exits on the invalid config", Duration::from_secs(10), || !lab.running("moat"));
            }
            Gap::Upgrade => {
                fs::copy(moat_bin(), &newbin).expect("copy the new binary");
            }
        }
    });
    problems.extend(p);
    if kind == Gap::RestartInvalid {
        let (text, code) = lab.moat_status();
        if code != 3 || !text.contains("moat is not running: configuration invalid: ") {
            problems.push(format!("moat status does not say the config is invalid (exit {code}):\n{text}"));
        }
    }
    let bin = if kind == Gap::Upgrade { newbin } else { moat_bin() };
    lab.start_moat_with(&cfg, &bin, &["--hold", HOLD]);
    assert_route_works(&lab, route);
    finish(&lab, &label, problems);
}

/// Point 5: the tunnel flaps while moat is stopped and its hold table is in force (the guard
/// table deleted, so the hold alone is judged); a server keeps sending on a connection made
/// through the tunnel. No packet from the router's tunnel
/// address (fw4's reject RSTs for the server's late packets) may leave by the WAN.
pub fn hold_tunnel_flap() {
    let label = "hold-flap";
    let lab = matrix_lab(label, false);
    let cfg = matrix_config(&lab, "vpn");
    lab.start_moat_with(&cfg, &moat_bin(), &["--hold", "60"]);
    assert_route_works(&lab, "vpn");
    let d = lab.dev("speaker").clone();
    let cap = lab.capture_wan(label);
    let held = lab.hold_connection(&d).expect("a connection through the tunnel");
    let traffic = lab.traffic(&d, &Traffic::ALL);
    thread::sleep(Duration::from_millis(800));
    lab.note("=== stop (hold), then tunnel down/up ===");
    lab.kill("moat", libc::SIGTERM);
    // The hold table alone is under test here (point 5), not the guard that also covers it.
    let _ = lab.ns(&lab.router, &["nft", "delete", "table", "inet", "moat_guard"]);
    lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "down"]);
    thread::sleep(Duration::from_millis(1000));
    lab.must(&lab.router, &["ip", "link", "set", &lab.wg_router, "up"]);
    thread::sleep(GAP);
    let got = held.received();
    drop(held);
    let counts = traffic.stop();
    lab.note(&format!("held connection got {got} bytes; traffic answered per kind: {counts:?}"));
    let rep = lab.analyze(&lab.stop_capture(cap), &d);
    let tunnel_src: Vec<&String> = rep.leaks.iter().filter(|l| l.contains(&ROUTER_TUNNEL4.to_string())).collect();
    let mut problems = Vec::new();
    if !rep.leaks.is_empty() {
        problems.push(format!(
            "LEAK: {} packet(s) outside the tunnel during the hold, {} from the tunnel address {ROUTER_TUNNEL4}:\n{}",
            rep.leaks.len(),
            tunnel_src.len(),
            rep.summary()
        ));
    }
    if got == 0 {
        problems.push("the held connection never received anything: the cell proves nothing".into());
    }
    finish(&lab, label, problems);
}
