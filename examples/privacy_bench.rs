//! One run of the privacy benchmark (`scripts/bench-privacy.sh` drives it and scores the runs
//! with `scripts/privacy/classify.py`): the lab of tests/lab with three emulated smart-home
//! devices (tests/lab/devices.rs) behind the router, the router (and, for the two-way
//! configurations, the VPN server) set up as a benchmark configuration asks, the WAN link
//! captured while the devices follow their seeded schedules.
//!
//! ```text
//! privacy_bench run CONFIG SEED SECONDS OUTDIR   one run; writes OUTDIR/{meta,packets,truth,exchanges}.tsv
//! privacy_bench available CONFIG                 exit 0 if this moat build can run CONFIG, else 1 (reason on stdout)
//! privacy_bench configs                          the known configurations, one a line
//! privacy_bench cleanup PID                      remove what the (dead) run PID left: its namespaces, processes, sockets
//! privacy_bench sweep                            remove namespaces left by any lab process that died
//! ```
//! The release profile aborts on panic, so a failed run cannot tear its lab down itself: the
//! script calls `cleanup` with the run's process id after every run. Needs root. The `moat` binary is taken from `MOAT_BIN` or found next to this example.

#[path = "../tests/lab/mod.rs"]
mod lab;

use lab::devices::{self, DeviceKind, Record};
use lab::*;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The benchmark configurations, in table order.
const CONFIGS: [&str; 7] =
    ["none", "vpn", "up-constant", "up-stochastic", "two-constant", "two-stochastic", "two-padded"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", config, seed, secs, out] => {
            let seed: u64 = seed.parse().unwrap_or_else(|_| usage());
            let secs: f64 = secs.parse().unwrap_or_else(|_| usage());
            if let Err(e) = available(config) {
                println!("{config}: {e}");
                std::process::exit(3);
            }
            run(config, seed, secs, Path::new(out));
        }
        ["available", config] => match available(config) {
            Ok(()) => println!("{config}: available"),
            Err(e) => {
                println!("{config}: {e}");
                std::process::exit(1);
            }
        },
        ["configs"] => CONFIGS.iter().for_each(|c| println!("{c}")),
        ["cleanup", pid] => cleanup(pid.parse().unwrap_or_else(|_| usage())),
        ["sweep"] => sweep_stale(),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: privacy_bench run CONFIG SEED SECONDS OUTDIR | available CONFIG | configs | cleanup PID | sweep");
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------
// Configuration -> what runs on the router and on the VPN server
// ---------------------------------------------------------------------------------------------

/// What a benchmark configuration asks of the lab.
struct Setup {
    /// The router's moat config (`moat run`); None = no moat at all (devices go direct).
    router: Option<String>,
    /// The companion's config on the VPN server (`moat companion`); None = stock server.
    companion: Option<String>,
}

/// Whether `moat companion` exists in this build (`moat companion --help` exits 0).
fn has_companion() -> bool {
    Command::new(moat_bin())
        .args(["companion", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `config` can run with this moat build.
fn available(config: &str) -> Result<(), String> {
    if !CONFIGS.contains(&config) {
        return Err(format!("unknown configuration (known: {})", CONFIGS.join(", ")));
    }
    if config.starts_with("two-") && !has_companion() {
        return Err("not available in this build (`moat companion --help` does not exit 0)".into());
    }
    Ok(())
}

/// The router's moat config: every device of the home routed into the WireGuard tunnel `vpn`,
/// with `shaper` (a `config shaper` body) on each device if given, `tunnel_extra` lines added to
/// the tunnel section.
fn router_config(lab: &Lab, shaper: Option<&str>, tunnel_extra: &str) -> String {
    let mut s = String::from(
        "config moat 'main'\n\toption enabled '1'\n\toption log_level 'info'\n\tlist lan_device 'br-lan'\n\n",
    );
    let _ = write!(
        s,
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device '{}'\n\toption dns '{VPN_TUNNEL4}'\n{tunnel_extra}\n",
        lab.wg_router
    );
    if let Some(body) = shaper {
        let _ = write!(s, "config shaper 'home'\n{body}\n");
    }
    for d in &lab.devices {
        let _ = write!(s, "config device\n\toption name '{}'\n\tlist mac '{}'\n\toption route 'vpn'\n", d.label, d.mac);
        if shaper.is_some() {
            s.push_str("\toption shaper 'home'\n");
        }
        s.push('\n');
    }
    s
}

/// THE mapping from a benchmark configuration to moat configs. Every shaped configuration
/// uses one `config shaper` section (one clock or decoy process per tunnel and direction, shared
/// by the three devices) and the low-rate home's settings: packets padded to 384 bytes
/// (`option pad_to` on the tunnel; TCP's MSS is clamped to fit) and, in constant mode, 24
/// slots/s each way: 2 × 24 × 458 B frames ≈ 22 KB/s on the WAN for the whole home. The
/// stochastic rows pad to 560 bytes (it pays per real packet, see below) and set `budget 200`
/// (MB/day, a user's setting: the default 50 MB/day would cut decoys short in 10-minute runs of
/// this busy home, whose real traffic is ~350 MB/day).
///
/// `PRIVACY_BENCH_STOCHASTIC` (e.g. `pace=300 decoys=0`) adds or overrides options of the
/// stochastic rows' `config shaper` section, for trying other settings; the table's rows run
/// without it.
fn setup_for(config: &str, lab: &Lab) -> Setup {
    const CONSTANT: &str = "\toption mode 'constant'\n\toption rate '24'\n";
    let stochastic = stochastic_shaper(&std::env::var("PRIVACY_BENCH_STOCHASTIC").unwrap_or_default());
    let stochastic = stochastic.as_str();
    const PAD: &str = "\toption pad_to '384'\n";
    // Stochastic mode pays per real packet: at 560 bytes (MSS 520) the devices' 1000-byte
    // messages take two packets, not three or four.
    const STOCHASTIC_PAD: &str = "\toption pad_to '560'\n";
    let companion = || Some(format!("config companion 'main'\n\toption device '{}'\n", lab.wg_server));
    let via_companion = format!("{PAD}\toption companion '{VPN_TUNNEL4}'\n");
    let stochastic_via_companion = format!("{STOCHASTIC_PAD}\toption companion '{VPN_TUNNEL4}'\n");
    match config {
        "none" => Setup { router: None, companion: None },
        "vpn" => Setup { router: Some(router_config(lab, None, "")), companion: None },
        "up-constant" => Setup { router: Some(router_config(lab, Some(CONSTANT), PAD)), companion: None },
        "up-stochastic" => {
            Setup { router: Some(router_config(lab, Some(stochastic), STOCHASTIC_PAD)), companion: None }
        }
        "two-constant" => {
            Setup { router: Some(router_config(lab, Some(CONSTANT), &via_companion)), companion: companion() }
        }
        "two-stochastic" => Setup {
            router: Some(router_config(lab, Some(stochastic), &stochastic_via_companion)),
            companion: companion(),
        },
        // The stochastic rows' padding without any decoy (what padding alone costs and buys;
        // the real traffic's share of the stochastic rows' overhead, the base of the decoy floor)
        "two-padded" => Setup {
            router: Some(router_config(lab, Some(&stochastic_shaper("decoys=0 pace=0")), &stochastic_via_companion)),
            companion: companion(),
        },
        other => panic!("unknown configuration {other}"),
    }
}

/// The stochastic rows' shaper body: mode, rate 50, budget 200, then `name=value` pairs of
/// `extra` (space separated; a name given twice keeps the last value).
fn stochastic_shaper(extra: &str) -> String {
    let mut opts: Vec<(String, String)> =
        vec![("mode".into(), "stochastic".into()), ("rate".into(), "50".into()), ("budget".into(), "200".into())];
    for kv in extra.split_whitespace() {
        let Some((k, v)) = kv.split_once('=') else { panic!("PRIVACY_BENCH_STOCHASTIC: {kv:?} is not name=value") };
        assert!(
            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && v.bytes().all(|b| b.is_ascii_alphanumeric()),
            "PRIVACY_BENCH_STOCHASTIC: {kv:?}"
        );
        opts.retain(|(n, _)| n != k);
        opts.push((k.into(), v.into()));
    }
    opts.iter().map(|(k, v)| format!("\toption {k} '{v}'\n")).collect()
}

/// Start what `setup` asks for: the companion first (so the router finds it), then moat.
fn apply(lab: &Lab, setup: &Setup) {
    if let Some(text) = &setup.companion {
        let p = lab.dir.join("companion.conf");
        std::fs::write(&p, text).unwrap();
        let state = lab.dir.join("companion-state");
        std::fs::create_dir_all(&state).unwrap();
        let bin = moat_bin();
        lab.spawn(
            "companion",
            &lab.vpn,
            &[
                &bin.to_string_lossy(),
                "companion",
                "--config",
                &p.to_string_lossy(),
                "--state-dir",
                &state.to_string_lossy(),
                "--stderr",
            ],
            &[("RUST_BACKTRACE", "1")],
        );
        std::thread::sleep(Duration::from_secs(1));
        assert!(lab.running("companion"), "moat companion exited; log:\n{}", lab.proc_log("companion"));
    }
    if let Some(text) = &setup.router {
        lab.start_moat(text);
    }
}

// ---------------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------------

fn device_bytes(lab: &Lab) -> u64 {
    let mut total = 0;
    for d in &lab.devices {
        for f in ["tx_bytes", "rx_bytes"] {
            let v = lab.must(&d.ns, &["cat", &format!("/sys/class/net/eth0/statistics/{f}")]);
            total += v.trim().parse::<u64>().unwrap_or(0);
        }
    }
    total
}

fn run(config: &str, seed: u64, secs: f64, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let opts = Options {
        devices: DeviceKind::HOME.iter().map(|k| DeviceSpec::new(k.label())).collect(),
        tor: false,
        fw4: true,
    };
    let lab = Lab::start(&format!("privacy-{config}-{seed}"), opts);
    let cloud_addr = SocketAddr::new(IpAddr::V4(INTERNET4), devices::CLOUD_PORT);
    let cloud = in_ns(&lab.inet, || devices::serve_cloud(SocketAddr::new(IpAddr::V4(INTERNET4), devices::CLOUD_PORT)))
        .expect("cloud server");
    let setup = setup_for(config, &lab);
    apply(&lab, &setup);
    // The path works for every device before the capture starts (handshake, ARP, conntrack).
    for d in &lab.devices {
        let ok = lab.wait_for(&format!("{} reaches its cloud", d.label), Duration::from_secs(30), || {
            lab.tcp_echo(d, SocketAddr::new(IpAddr::V4(INTERNET4), 7), 64, Duration::from_secs(3)).is_ok()
        });
        assert!(ok, "{} cannot reach the internet host under {config}; moat log:\n{}", d.label, lab.proc_log("moat"));
    }
    std::thread::sleep(Duration::from_secs(2));
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cap = lab.capture_wan("wan");
    let bytes0 = device_bytes(&lab);
    let t_start = devices::unix_now();
    let stop = Arc::new(AtomicBool::new(false));
    let rec = Arc::new(Mutex::new(Record::default()));
    let threads: Vec<_> = DeviceKind::HOME
        .iter()
        .map(|k| devices::run_device(*k, &lab.dev(k.label()).ns, cloud_addr, seed, secs, stop.clone(), rec.clone()))
        .collect();
    for t in threads {
        t.join().expect("device thread");
    }
    let t_end = devices::unix_now();
    let bytes1 = device_bytes(&lab);
    let file: PathBuf = cap.file.clone();
    let _ = lab.stop_capture(cap);
    let load1 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let data = std::fs::read(&file).expect("read capture");
    let pkts = devices::wan_packets(&data, &[IpAddr::V4(ROUTER_WAN4), IpAddr::V6(ROUTER_WAN6)]).expect("capture");
    let pkts: Vec<_> = pkts.into_iter().filter(|p| p.0 >= t_start && p.0 <= t_end).collect();
    let mut s = String::from("t\tdir\tlen\n");
    for (t, up, len) in &pkts {
        let _ = writeln!(s, "{t:.6}\t{}\t{len}", if *up { "up" } else { "down" });
    }
    std::fs::write(out.join("packets.tsv"), s).unwrap();
    let rec = rec.lock().unwrap();
    rec.write(out).unwrap();
    let wan_bytes: usize = pkts.iter().map(|p| p.2).sum();
    let shaper_status = if setup.router.is_some() {
        let state = lab.dir.join("moat-state");
        lab.ns(&lab.router, &[&moat_bin().to_string_lossy(), "status", "--state-dir", &state.to_string_lossy()])
            .unwrap_or_else(|e| e)
    } else {
        String::new()
    };
    std::fs::write(out.join("moat-status.txt"), &shaper_status).unwrap();
    // What ran: the router's config (a run's settings are in its directory, not only in the table)
    if let Some(text) = &setup.router {
        std::fs::write(out.join("router.conf"), text).unwrap();
    }
    let meta = format!(
        "config\t{config}\nseed\t{seed}\nseconds\t{secs}\nstart\t{t_start:.6}\nend\t{t_end:.6}\n\
         device_bytes\t{}\napp_bytes\t{}\nwan_bytes\t{wan_bytes}\nwan_packets\t{}\nload_start\t{}\nload_end\t{}\n",
        bytes1 - bytes0,
        rec.app_bytes,
        pkts.len(),
        load0.trim(),
        load1.trim()
    );
    std::fs::write(out.join("meta.tsv"), &meta).unwrap();
    if setup.router.is_some() && !lab.running("moat") {
        panic!("moat died during the run; log:\n{}", lab.proc_log("moat"));
    }
    drop(cloud);
    println!(
        "{config} seed {seed}: {:.0} s, {} WAN packets, {} activities, {} exchanges ({} failed)",
        t_end - t_start,
        pkts.len(),
        rec.activities.len(),
        rec.exchanges.len(),
        rec.exchanges.iter().filter(|e| e.3.is_none()).count()
    );
}

/// Remove what the lab of process `pid` left (it must be gone): its namespaces (`moat-lab-<pid>-…`,
/// after killing the processes inside them) and its WireGuard control sockets. Touches nothing else.
fn cleanup(pid: i32) {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        eprintln!("process {pid} is still running; not cleaning up");
        std::process::exit(1);
    }
    let prefix = format!("moat-lab-{pid}-");
    let out = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    for line in String::from_utf8_lossy(&out).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if !name.starts_with(&prefix) {
            continue;
        }
        let pids = Command::new("ip").args(["netns", "pids", name]).output().map(|o| o.stdout).unwrap_or_default();
        for p in String::from_utf8_lossy(&pids).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: plain kill(2) of a process inside a namespace the dead run created.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        eprintln!("cleanup: removed namespace {name}");
    }
    if let Ok(rd) = std::fs::read_dir("/var/run/wireguard") {
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().to_string();
            if f.starts_with(&format!("mwr{pid}n")) || f.starts_with(&format!("mws{pid}n")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
