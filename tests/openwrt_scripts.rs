//! The OpenWrt shell parts of the package (init script, hotplug script, uci-defaults,
//! maintainer scripts) under busybox sh, OpenWrt's shell: syntax (`busybox sh -n`) and
//! behaviour in a chroot holding busybox and recorded stand-ins for procd's shell API,
//! `/lib/functions.sh`, `/etc/rc.common`, `uci` and the moat binary (`tests/pkg/fixtures`).
//! Needs root (chroot, mknod) and busybox-static.

mod pkg;

use pkg::*;
use std::fs;
use std::path::Path;

const MOAT_CONFIG: &str = "\
config moat 'main'
	option enabled '1'
	list lan_device 'br-lan'

config tunnel 'vpn'
	option type 'wireguard'
	option device 'wg0'
	option dns '10.64.0.1'

config tunnel 'corp'
	option type 'interface'
	option device 'tun0'

config tunnel 'tor'
	option type 'tor'

config tunnel 'evil'
	option type 'interface'
	option device 'x;touch /tmp/pwned'

config device
	option name 'Kitchen speaker'
	list mac 'aa:bb:cc:00:11:22'
	option route 'vpn'
";

const NETWORK_CONFIG: &str = "\
config interface 'lan'
	option device 'br-lan'
	option proto 'static'

config interface 'wan'
	option device 'eth1'
	option proto 'dhcp'

config interface 'wg0'
	option proto 'wireguard'

config interface 'corpvpn'
	option proto 'none'
	option device 'tun0'
";

/// The procd calls `start` must make for MOAT_CONFIG (without ujail).
const START_CALLS: &[&str] = &[
    "procd_open_service [moat] [/etc/init.d/moat]",
    "procd_open_instance",
    "procd_set_param [command] [/usr/sbin/moat] [run]",
    "procd_set_param [respawn] [3600] [5] [0]",
    "procd_set_param [term_timeout] [10]",
    "procd_set_param [file] [/usr/sbin/moat]",
    "procd_set_param [stdout] [1]",
    "procd_set_param [stderr] [1]",
    "procd_open_data",
    "json_add_string [config] [/etc/config/moat]",
    "json_add_string [status_file] [/var/run/moat/status.json]",
    "json_add_string [status] [moat status --json (or ubus call luci.moat status)]",
    "procd_close_data",
    "procd_close_instance",
    "procd_add_reload_trigger [moat]",
    "procd_add_interface_trigger [interface.*] [wg0] [/etc/init.d/moat] [reload]",
    "procd_add_interface_trigger [interface.*] [corpvpn] [/etc/init.d/moat] [reload]",
    "procd_close_service [set]",
];

/// A chroot with the package's scripts installed where the package puts them, stand-ins
/// for procd/uci/logger/moat, and the sample configs.
fn router() -> TempDir {
    let t = TempDir::new("owrt-scripts");
    let r = t.path();
    make_openwrt_root(r);
    install(&pkg_file("moat.init"), &r.join("etc/init.d/moat"), 0o755);
    install(&pkg_file("moat.hotplug"), &r.join("etc/hotplug.d/iface/70-moat"), 0o644);
    install(&pkg_file("moat.uci-defaults"), &r.join("etc/uci-defaults/90-moat"), 0o755);
    install(&fixture("stubs/moat"), &r.join("usr/sbin/moat"), 0o755);
    install(&fixture("stubs/logger"), &r.join("usr/bin/logger"), 0o755);
    install(&fixture("stubs/uci"), &r.join("sbin/uci"), 0o755);
    write(&r.join("etc/config/moat"), MOAT_CONFIG);
    write(&r.join("etc/config/network"), NETWORK_CONFIG);
    t
}

fn sh_ok(root: &Path, script: &str, env: &[(&str, &str)]) -> String {
    let out = chroot_sh(root, script, env);
    success_stdout(&format!("`{script}`"), &out)
}

fn procd_log(root: &Path) -> Vec<String> {
    lines(&root.join("tmp/procd.log"))
}

fn clear_logs(root: &Path) {
    for f in ["procd.log", "moat.log", "logger.log", "uci.log"] {
        let _ = fs::remove_file(root.join("tmp").join(f));
    }
}

#[test]
fn scripts_pass_busybox_sh_n() {
    let t = TempDir::new("sh-n");
    let mut scripts: Vec<(String, std::path::PathBuf)> =
        ["moat.init", "moat.hotplug", "moat.uci-defaults", "moat.config"]
            .iter()
            .map(|f| (f.to_string(), pkg_file(f)))
            .collect();
    for d in ["Package/moat/postinst", "Package/moat/prerm", "Package/moat/postrm"] {
        let p = t.path().join(d.replace('/', "_"));
        write(&p, &makefile_define(d));
        scripts.push((d.to_string(), p));
    }
    for (name, path) in scripts {
        let out = run(std::process::Command::new(busybox()).args(["sh", "-n"]).arg(&path));
        assert!(out.status.success(), "busybox sh -n {}: {}", name, String::from_utf8_lossy(&out.stderr));
    }
    // And a broken script is caught, so the check above can fail.
    let bad = t.path().join("bad");
    write(&bad, "if true; then\n  echo missing fi\n");
    assert!(!run(std::process::Command::new(busybox()).args(["sh", "-n"]).arg(&bad)).status.success());
}

#[test]
fn init_start_emits_the_procd_service_for_the_config() {
    let t = router();
    let r = t.path();
    sh_ok(r, "/etc/init.d/moat start", &[]);
    assert_eq!(procd_log(r), START_CALLS);
    // The hostile tunnel device reached no shell and no trigger.
    assert!(!r.join("tmp/pwned").exists());
}

#[test]
fn init_start_without_tunnels_has_only_the_config_trigger() {
    let t = router();
    let r = t.path();
    write(&r.join("etc/config/moat"), &fs::read_to_string(pkg_file("moat.config")).unwrap());
    sh_ok(r, "/etc/init.d/moat start", &[]);
    let log = procd_log(r);
    let triggers: Vec<&String> = log.iter().filter(|l| l.contains("trigger")).collect();
    assert_eq!(triggers, ["procd_add_reload_trigger [moat]"]);
    assert!(log.contains(&"procd_set_param [command] [/usr/sbin/moat] [run]".to_string()));
}

#[test]
fn init_start_with_ujail_limits_capabilities() {
    let t = router();
    let r = t.path();
    install(&fixture("stubs/ujail"), &r.join("sbin/ujail"), 0o755);
    install(&pkg_file("moat.capabilities.json"), &r.join("etc/capabilities/moat.json"), 0o644);
    sh_ok(r, "/etc/init.d/moat start", &[]);
    let log = procd_log(r);
    let jail: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .skip_while(|l| !l.starts_with("procd_add_jail "))
        .take_while(|l| *l != "procd_close_instance")
        .collect();
    assert_eq!(
        jail,
        [
            "procd_add_jail [moat] [log] [procfs] [sysfs]",
            "procd_add_jail_mount [/etc/config] [/usr/sbin] [/usr/bin] [/sbin] [/bin] [/usr/lib] [/lib]",
            "procd_add_jail_mount_rw [/var/run] [/tmp] [/usr/share/nftables.d/ruleset-post]",
            "procd_set_param [capabilities] [/etc/capabilities/moat.json]",
            "procd_set_param [no_new_privs] [1]",
        ]
    );
    // The guard's include directory exists, so the jail can mount it writable.
    assert!(r.join("usr/share/nftables.d/ruleset-post").is_dir());
    // The capability file grants exactly CAP_NET_ADMIN and CAP_NET_RAW in every set.
    let caps = fs::read_to_string(pkg_file("moat.capabilities.json")).unwrap();
    for set in ["bounding", "effective", "ambient", "permitted", "inheritable"] {
        let i = caps.find(&format!("\"{}\"", set)).unwrap_or_else(|| panic!("no {} set", set));
        let list = &caps[i..i + caps[i..].find(']').unwrap()];
        let names: Vec<&str> = list.split('"').filter(|s| s.starts_with("CAP_")).collect();
        assert_eq!(names, ["CAP_NET_ADMIN", "CAP_NET_RAW"], "set {}", set);
    }
}

#[test]
fn init_start_with_ujail_and_realtime_adds_cap_sys_nice() {
    let t = router();
    let r = t.path();
    install(&fixture("stubs/ujail"), &r.join("sbin/ujail"), 0o755);
    install(&pkg_file("moat.capabilities.json"), &r.join("etc/capabilities/moat.json"), 0o644);
    let cfg =
        MOAT_CONFIG.replace("\tlist lan_device 'br-lan'\n", "\tlist lan_device 'br-lan'\n\toption realtime '1'\n");
    write(&r.join("etc/config/moat"), &cfg);
    sh_ok(r, "/etc/init.d/moat start", &[]);
    let generated = "/var/run/moat/capabilities-realtime.json";
    assert!(procd_log(r).contains(&format!("procd_set_param [capabilities] [{generated}]")), "{:?}", procd_log(r));
    // The shipped file plus CAP_SYS_NICE in every set (SCHED_FIFO needs it), nothing else.
    let caps = fs::read_to_string(r.join(&generated[1..])).unwrap();
    for set in ["bounding", "effective", "ambient", "permitted", "inheritable"] {
        let i = caps.find(&format!("\"{}\"", set)).unwrap_or_else(|| panic!("no {} set", set));
        let list = &caps[i..i + caps[i..].find(']').unwrap()];
        let names: Vec<&str> = list.split('"').filter(|s| s.starts_with("CAP_")).collect();
        assert_eq!(names, ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_NICE"], "set {}", set);
    }
    // Realtime off again: back to the shipped file.
    write(&r.join("etc/config/moat"), &cfg.replace("option realtime '1'", "option realtime 'off'"));
    clear_logs(r);
    sh_ok(r, "/etc/init.d/moat start", &[]);
    assert!(procd_log(r).contains(&"procd_set_param [capabilities] [/etc/capabilities/moat.json]".to_string()));
}

#[test]
fn init_reload_sends_sighup_to_a_running_daemon() {
    let t = router();
    let r = t.path();
    write(&r.join("tmp/procd.running"), "");
    sh_ok(r, "/etc/init.d/moat reload", &[]);
    let log = procd_log(r);
    assert_eq!(log.first().map(String::as_str), Some("procd_running [moat]"));
    // Re-registered (the triggers follow the config), then SIGHUP: no restart, no kill.
    assert_eq!(&log[1..log.len() - 1], START_CALLS);
    assert_eq!(log.last().map(String::as_str), Some("procd_send_signal [moat] [*] [HUP]"));
    assert!(!log.iter().any(|l| l.starts_with("procd_kill")));
    assert_eq!(lines(&r.join("tmp/moat.log")), ["moat check --quiet --config /etc/config/moat"], "checked first");
}

/// The real `moat check --quiet` of `config` on the host (the chroot cannot run the glibc
/// binary): its stdout and exit code, for a replaying stand-in in the chroot.
fn real_check(config: &str) -> (String, i32) {
    // one file per call: the tests of this binary run in parallel threads of one process
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let f = std::env::temp_dir().join(format!("owrt-check-{}-{n}.conf", std::process::id()));
    write(&f, config);
    let out =
        run(std::process::Command::new(env!("CARGO_BIN_EXE_moat")).args(["check", "--quiet", "--config"]).arg(&f));
    let _ = fs::remove_file(&f);
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

/// Replace the moat stand-in by one that still records its arguments but answers `check`
/// with `out` and exit code `rc` (what the real binary printed for the same config).
fn replay_check(r: &Path, out: &str, rc: i32) {
    write(&r.join("tmp/check.out"), out);
    write(
        &r.join("usr/sbin/moat"),
        &format!(
            "#!/bin/sh\necho \"moat $*\" >>/tmp/moat.log\n[ \"$1\" = check ] || exit 0\ncat /tmp/check.out\nexit {rc}\n"
        ),
    );
}

#[test]
fn init_reload_of_an_invalid_config_prints_the_errors_and_keeps_the_daemon() {
    let t = router();
    let r = t.path();
    write(&r.join("tmp/procd.running"), "");
    let bad = MOAT_CONFIG.replace("option route 'vpn'", "option route 'vnp'");
    let (out, rc) = real_check(&bad);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("error: ") && out.contains("route 'vnp' names no tunnel"), "{out}");
    write(&r.join("etc/config/moat"), &bad);
    replay_check(r, &out, rc);
    let o = chroot_sh(r, "/etc/init.d/moat reload", &[]);
    assert_eq!(o.status.code(), Some(1), "reload must fail");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stdout, out, "the check's errors and verdict are shown as they are");
    assert!(stdout.lines().last().unwrap().starts_with("INVALID: "), "{stdout}");
    assert!(stderr.contains("invalid: not reloaded, the running state is unchanged"), "{stderr}");
    assert_eq!(lines(&r.join("tmp/moat.log")), ["moat check --quiet --config /etc/config/moat"]);
    // No signal, no re-registration, no restart: the running daemon keeps its state.
    assert!(procd_log(r).is_empty(), "{:?}", procd_log(r));
    // The same with the daemon stopped: it is not started on an invalid config.
    clear_logs(r);
    fs::remove_file(r.join("tmp/procd.running")).unwrap();
    assert_eq!(chroot_sh(r, "/etc/init.d/moat reload", &[]).status.code(), Some(1));
    assert!(procd_log(r).is_empty(), "{:?}", procd_log(r));
}

#[test]
fn init_reload_of_a_valid_config_prints_the_verdict_then_signals() {
    let t = router();
    let r = t.path();
    write(&r.join("tmp/procd.running"), "");
    // The shipped example (the test config has a hostile tunnel device the real check rejects).
    let good = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf")).unwrap();
    let (out, rc) = real_check(&good);
    assert_eq!(rc, 0, "{out}");
    replay_check(r, &out, rc);
    let o = sh_ok(r, "/etc/init.d/moat reload", &[]);
    assert!(o.lines().last().unwrap().starts_with("OK: 5 devices protected"), "{o}");
    assert_eq!(procd_log(r).last().map(String::as_str), Some("procd_send_signal [moat] [*] [HUP]"));
}

#[test]
fn init_reload_starts_a_stopped_daemon_without_a_signal() {
    let t = router();
    let r = t.path();
    sh_ok(r, "/etc/init.d/moat reload", &[]);
    let log = procd_log(r);
    assert_eq!(log[0], "procd_running [moat]");
    assert_eq!(&log[1..], START_CALLS);
}

#[test]
fn init_stop_asks_procd_to_stop_and_extra_commands_call_moat() {
    let t = router();
    let r = t.path();
    // Stop is SIGTERM through procd (the daemon holds protected devices briefly, so a restart
    // never leaks); it must not remove everything behind a restart's back.
    sh_ok(r, "/etc/init.d/moat stop", &[]);
    assert_eq!(procd_log(r), ["procd_kill [moat] []"]);
    assert!(lines(&r.join("tmp/moat.log")).is_empty());

    clear_logs(r);
    sh_ok(r, "/etc/init.d/moat check", &[]);
    sh_ok(r, "/etc/init.d/moat status", &[]);
    assert_eq!(lines(&r.join("tmp/moat.log")), ["moat check --config /etc/config/moat", "moat status"]);
    assert!(procd_log(r).is_empty(), "check/status must not touch procd");

    let help = chroot_sh(r, "/etc/init.d/moat help", &[]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Syntax: /etc/init.d/moat"), "{}", help);
    assert!(help.contains("check           Validate /etc/config/moat"), "{}", help);
    assert_eq!(help.lines().filter(|l| l.trim_start().starts_with("status ")).count(), 1, "{}", help);
}

#[test]
fn init_enable_disable_manage_rc_d_links() {
    let t = router();
    let r = t.path();
    sh_ok(r, "/etc/init.d/moat enable", &[]);
    assert_eq!(fs::read_link(r.join("etc/rc.d/S21moat")).unwrap().to_str(), Some("../init.d/moat"));
    assert_eq!(fs::read_link(r.join("etc/rc.d/K91moat")).unwrap().to_str(), Some("../init.d/moat"));
    sh_ok(r, "/etc/init.d/moat enabled", &[]);
    sh_ok(r, "/etc/init.d/moat disable", &[]);
    assert_eq!(fs::read_dir(r.join("etc/rc.d")).unwrap().count(), 0);
    assert!(!chroot_sh(r, "/etc/init.d/moat enabled", &[]).status.success());
}

fn hotplug(r: &Path, action: &str, interface: &str, device: &str) -> Vec<String> {
    clear_logs(r);
    sh_ok(r, ". /etc/hotplug.d/iface/70-moat", &[("ACTION", action), ("INTERFACE", interface), ("DEVICE", device)]);
    procd_log(r)
}

#[test]
fn hotplug_reloads_the_daemon_only_for_tunnel_interfaces() {
    let t = router();
    let r = t.path();
    write(&r.join("tmp/procd.running"), "");
    for (action, iface, dev) in [("ifup", "wg0", "wg0"), ("ifdown", "wg0", "wg0"), ("ifupdate", "corpvpn", "tun0")] {
        let log = hotplug(r, action, iface, dev);
        assert_eq!(
            log.iter().filter(|l| *l == "procd_send_signal [moat] [*] [HUP]").count(),
            1,
            "{} {}: {:?}",
            action,
            iface,
            log
        );
        let logged = lines(&r.join("tmp/logger.log"));
        assert_eq!(logged.len(), 1, "{:?}", logged);
        assert!(logged[0].contains(iface) && logged[0].contains(action), "{:?}", logged);
    }
    // Not a tunnel, not an interface event, or a hostile name: nothing reaches procd.
    for (action, iface, dev) in [
        ("ifup", "lan", "br-lan"),
        ("ifup", "wan", "eth1"),
        ("ifdown", "evil", "x;touch /tmp/pwned"),
        ("ifup", "$(touch /tmp/pwned)", "`touch /tmp/pwned`"),
        ("add", "wg0", "wg0"),
        ("", "wg0", "wg0"),
    ] {
        let log = hotplug(r, action, iface, dev);
        assert!(
            !log.iter().any(|l| l.contains("send_signal") || l.contains("open_service")),
            "{} {}: {:?}",
            action,
            iface,
            log
        );
    }
    assert!(!r.join("tmp/pwned").exists());
    // A tunnel event while moat is not running does not start it.
    fs::remove_file(r.join("tmp/procd.running")).unwrap();
    assert_eq!(hotplug(r, "ifup", "wg0", "wg0"), ["procd_running [moat]"]);
}

fn uci_defaults(r: &Path) -> (Vec<String>, Vec<String>) {
    clear_logs(r);
    sh_ok(r, "cd /etc/uci-defaults && . ./90-moat", &[]);
    let calls = lines(&r.join("tmp/uci.log"));
    let writes = calls
        .iter()
        .filter(|c| c.contains(" set ") || c.contains(" add_list ") || c.contains(" commit "))
        .cloned()
        .collect();
    (calls, writes)
}

#[test]
fn uci_defaults_fills_in_missing_settings_once_and_keeps_user_values() {
    let t = router();
    let r = t.path();
    // First install: nothing set yet.
    let (_, writes) = uci_defaults(r);
    assert_eq!(
        writes,
        [
            "uci -q set moat.main=moat",
            "uci -q set moat.main.enabled=1",
            "uci -q set moat.main.log_level=info",
            "uci -q set moat.main.fwmark_mask=0x0f000000",
            "uci -q set moat.main.queue_base=4200",
            "uci -q set moat.main.table_base=4200",
            "uci -q add_list moat.main.lan_device=br-lan",
            "uci -q commit moat",
        ]
    );
    // Run again (upgrade): nothing to add, nothing written.
    let (calls, writes) = uci_defaults(r);
    assert!(writes.is_empty(), "second run wrote {:?}", writes);
    assert!(!calls.is_empty());

    // A user's own values survive; only what is missing is added.
    write(
        &r.join("tmp/uci.state"),
        "moat.main=moat\nmoat.main.enabled=0\nmoat.main.log_level=debug\nmoat.main.lan_device=br-guest\n\
         moat.main.table_base=5000\n",
    );
    let (_, writes) = uci_defaults(r);
    assert_eq!(
        writes,
        ["uci -q set moat.main.fwmark_mask=0x0f000000", "uci -q set moat.main.queue_base=4200", "uci -q commit moat",]
    );
    let state = lines(&r.join("tmp/uci.state"));
    for kept in [
        "moat.main.enabled=0",
        "moat.main.log_level=debug",
        "moat.main.lan_device=br-guest",
        "moat.main.table_base=5000",
    ] {
        assert!(state.contains(&kept.to_string()), "{} lost: {:?}", kept, state);
    }
    assert!(!state.iter().any(|l| l == "moat.main.lan_device=br-lan"), "{:?}", state);
}

/// Issue 10 point 2: an upgrade must not turn a valid config invalid. A user's global section
/// that is anonymous (`config moat` without a name: uci stores it under a generated name and
/// addresses it as `@moat[0]`) or named otherwise gets the missing settings in that section; no
/// second `config moat` (which moat refuses) is added. `main` naming another section type is
/// left alone.
#[test]
fn uci_defaults_never_adds_a_second_global_section() {
    let t = router();
    let r = t.path();
    for name in ["cfg0a1b2c", "global"] {
        write(
            &r.join("tmp/uci.state"),
            &format!("moat.{name}=moat\nmoat.{name}.lan_device=br-guest\nmoat.{name}.enabled=1\n"),
        );
        let (_, writes) = uci_defaults(r);
        assert_eq!(
            writes,
            [
                "uci -q set moat.@moat[0].log_level=info",
                "uci -q set moat.@moat[0].fwmark_mask=0x0f000000",
                "uci -q set moat.@moat[0].queue_base=4200",
                "uci -q set moat.@moat[0].table_base=4200",
                "uci -q commit moat",
            ],
            "section {name}"
        );
        let state = lines(&r.join("tmp/uci.state"));
        assert_eq!(state.iter().filter(|l| l.ends_with("=moat")).count(), 1, "a second global section: {state:?}");
        assert!(state.contains(&format!("moat.{name}.table_base=4200")), "{state:?}");
        assert!(!state.iter().any(|l| l.starts_with("moat.main")), "{state:?}");
    }
    write(&r.join("tmp/uci.state"), "moat.main=device\nmoat.main.mac=02:00:00:00:00:01\n");
    let (_, writes) = uci_defaults(r);
    assert!(writes.is_empty(), "`main` of another type must be left alone: {writes:?}");
}

/// Store the maintainer scripts as opkg does for an installed package (live system).
fn opkg_info(r: &Path) {
    let info = r.join("usr/lib/opkg/info");
    write(&info.join("moat.postinst"), GENERIC_POSTINST);
    write(&info.join("moat.prerm"), GENERIC_PRERM);
    write(&info.join("moat.postinst-pkg"), &makefile_define("Package/moat/postinst"));
    write(&info.join("moat.prerm-pkg"), &makefile_define("Package/moat/prerm"));
    for f in ["moat.postinst", "moat.prerm", "moat.postinst-pkg", "moat.prerm-pkg"] {
        fs::set_permissions(info.join(f), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    write(
        &info.join("moat.list"),
        "/usr/sbin/moat\n/etc/config/moat\n/etc/init.d/moat\n/etc/hotplug.d/iface/70-moat\n\
         /etc/uci-defaults/90-moat\n/etc/capabilities/moat.json\n",
    );
}

#[test]
fn live_postinst_migrates_enables_starts_and_prerm_stops_and_cleans_up() {
    let t = router();
    let r = t.path();
    opkg_info(r);

    // opkg install on the router: postinst = default_postinst.
    let out = sh_ok(r, "/usr/lib/opkg/info/moat.postinst configure", &[]);
    assert!(!r.join("etc/uci-defaults/90-moat").exists(), "uci-defaults must run once and be deleted");
    assert!(lines(&r.join("tmp/uci.log")).iter().any(|l| l == "uci -q commit moat"));
    assert!(r.join("etc/rc.d/S21moat").exists(), "not enabled");
    assert_eq!(procd_log(r), START_CALLS, "not started");
    assert!(!out.contains("no device is protected"), "the sample config protects a device: {}", out);

    // opkg remove on the router: prerm = default_prerm.
    clear_logs(r);
    let out = sh_ok(r, "/usr/lib/opkg/info/moat.prerm remove", &[]);
    assert!(out.contains("moat: removed"), "{}", out);
    assert_eq!(lines(&r.join("tmp/moat.log")), ["moat cleanup"], "cleanup must run after the stop");
    let log = procd_log(r);
    assert_eq!(log.first().map(String::as_str), Some("procd_kill [moat] []"));
    assert!(log.iter().all(|l| l == "procd_kill [moat] []"), "{:?}", log);
    assert!(!r.join("etc/rc.d/S21moat").exists() && !r.join("etc/rc.d/K91moat").exists(), "not disabled");

    // With the shipped config (no device) the postinst says what to do next.
    write(&r.join("etc/config/moat"), &fs::read_to_string(pkg_file("moat.config")).unwrap());
    let out = sh_ok(r, ". /lib/functions.sh; . /usr/lib/opkg/info/moat.postinst-pkg", &[]);
    assert!(out.contains("no device is protected yet"), "{}", out);
}
