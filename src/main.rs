//! The `moat` command: `moat run` (the daemon), `moat check`, …

use std::process::ExitCode;

const USAGE: &str = "usage: moat <command> [options]

commands:
  check [--config FILE] [--facts FILE] [--uci-dir DIR] [--quiet]
                          validate the configuration and print the plan it would apply,
                          then a verdict line: OK (exit 0) or INVALID (exit 1); --quiet prints
                          only warnings, errors, notes and the verdict
                          (interfaces are probed read-only, or read from a facts file;
                          firewall/network/pbr/mwan3 in DIR, default the config's directory,
                          are checked for settings that would defeat moat)
  run [--config FILE] [--state-dir DIR] [--stderr] [--hold SECONDS] [--guard-file PATH]
                          the daemon: apply the plan and keep it true (SIGHUP reloads;
                          SIGTERM removes moat's rules and routes, keeping protected devices
                          blocked for --hold seconds, default 15, so a restart never leaks);
                          writes the boot-time guard (protected devices stay blocked while moat
                          is not running) to PATH, an fw4 include, default
                          /usr/share/nftables.d/ruleset-post/moat-guard.nft
  cleanup [--guard-file PATH]
                          remove everything moat added, guard included, at once (package removal)
  status [--state-dir DIR] [--json | --raw]
                          what the daemon does per device and tunnel, as a table (exit 0 running,
                          3 not running); --json: the same as the web UI gets; --raw: the status file
  devices [--config FILE] [--leases FILE] [--odhcpd FILE] [--no-neigh] [--json]
                          the LAN clients the router knows (DHCP leases, odhcpd, neighbours)
                          and how moat treats each
  rpc list | rpc call METHOD
                          the rpcd plugin luci.moat (JSON arguments on stdin, JSON answer)
  companion [--config FILE] [--state-dir DIR] [--stderr] [--cleanup]
                          on the VPN server: shape what it sends to the routers that ask
                          (config default /etc/moat/companion, state /run/moat-companion;
                          --cleanup removes its queue rules and exits)
  help                    show this text
  version                 print the version

The configuration file defaults to /etc/config/moat.";

fn main() -> ExitCode {
    moat::sys::report_crashes(); // the only trace of a panic (the release builds use immediate-abort)
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("status") => status(&args[1..]),
        Some("cleanup") => cleanup(&args[1..]),
        Some("devices") => ExitCode::from(moat::discover::cli(&args[1..])),
        Some("rpc") => ExitCode::from(moat::rpc::main(&args[1..])),
        Some("companion") => companion(&args[1..]),
        Some("version") | Some("--version") | Some("-V") => {
            println!("moat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &[String]) -> ExitCode {
    let mut config = "/etc/config/moat".to_string();
    let mut facts_file: Option<String> = None;
    let mut uci_dir: Option<std::path::PathBuf> = None;
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quiet" | "-q" => quiet = true,
            "--config" | "-c" | "--facts" | "--uci-dir" => match it.next() {
                Some(f) if a == "--facts" => facts_file = Some(f.clone()),
                Some(f) if a == "--uci-dir" => uci_dir = Some(f.into()),
                Some(f) => config = f.clone(),
                None => {
                    eprintln!("moat check: {a} needs a file\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("moat check: unknown argument '{other}'\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // Everything a user must read goes to stdout, in order, so `moat check | less` shows it all.
    let report = moat::config::check_file(&config);
    let mut warnings: Vec<String> = report.warnings.iter().map(|w| format!("warning: {w}")).collect();
    for w in &warnings {
        println!("{w}");
    }
    for e in &report.errors {
        println!("error: {e}");
    }
    let loaded = match report.into_result() {
        Ok(l) => l,
        Err(errors) => {
            println!("{}", invalid(errors.len()));
            return ExitCode::from(1);
        }
    };
    // The router's other packages (firewall, network, pbr, mwan3) next to moat's config.
    let uci_dir = uci_dir.unwrap_or_else(|| {
        std::path::Path::new(&config)
            .parent()
            .map_or_else(|| ".".into(), |p| if p.as_os_str().is_empty() { ".".into() } else { p.to_path_buf() })
    });
    for w in moat::advice::warnings_for_dir(&loaded.model, &uci_dir) {
        let w = format!("warning: {w}");
        println!("{w}");
        warnings.push(w);
    }
    let facts = match &facts_file {
        Some(f) => match std::fs::read_to_string(f)
            .map_err(|e| format!("{f}: {e}"))
            .and_then(|t| moat::plan::facts::Facts::parse(f, &t))
        {
            Ok(x) => x,
            Err(e) => {
                eprintln!("moat check: facts: {e}");
                return ExitCode::from(2);
            }
        },
        None => moat::daemon::probe::probe(&moat::plan::interface_names(&loaded.model)),
    };
    match moat::plan::build(&loaded.model, &facts) {
        Ok(plan) => {
            if quiet {
                for n in &plan.notes {
                    println!("note: {n}");
                }
            } else {
                // The plan, then the warnings again: the verdict is the last thing on the screen.
                print!("{}", plan.render());
                println!("\n== verdict ==");
                for w in &warnings {
                    println!("{w}");
                }
            }
            println!("{}", verdict(&plan, &facts, warnings.len()));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                println!("error: {}", e.at(&config));
            }
            println!("{}", invalid(errors.len()));
            ExitCode::from(1)
        }
    }
}

/// `n thing` / `n things`.
fn count(n: usize, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

/// The last line of `moat check` for an invalid configuration.
fn invalid(errors: usize) -> String {
    format!("INVALID: {} (a running moat keeps its current state on reload)", count(errors, "error"))
}

/// The last line of `moat check` for a valid configuration: how many devices are protected,
/// per route, how many of them are blocked for now (tunnel down or absent), and how many
/// warnings were printed above.
fn verdict(plan: &moat::plan::Plan, facts: &moat::plan::facts::Facts, warnings: usize) -> String {
    let warned = if warnings == 0 { String::new() } else { format!("; {} above", count(warnings, "warning")) };
    if !plan.enabled {
        return format!("OK: moat is disabled (option enabled '0'): no device is protected{warned}");
    }
    // Routes in order of first use.
    let mut per_route: Vec<(&str, usize)> = Vec::new();
    for d in plan.devices.iter().filter(|d| d.mark != 0) {
        match per_route.iter_mut().find(|(r, _)| *r == d.route) {
            Some((_, n)) => *n += 1,
            None => per_route.push((&d.route, 1)),
        }
    }
    let protected: usize = per_route.iter().map(|(_, n)| n).sum();
    let routes: Vec<String> = per_route.iter().map(|(r, n)| format!("{n} {r}")).collect();
    let mut s = format!("OK: {} protected", count(protected, "device"));
    if !routes.is_empty() {
        s.push_str(&format!(" ({})", routes.join(", ")));
    }
    let down = |route: &str| {
        plan.classes.iter().any(|c| {
            c.label == route
                && matches!(&c.kind, moat::plan::ClassKind::L3 { device, .. } if !facts.iface(device).is_some_and(|i| i.up))
        })
    };
    let blocked = plan.devices.iter().filter(|d| d.mark != 0 && down(&d.route)).count();
    if blocked > 0 {
        s.push_str(&format!(", {blocked} of them blocked until their tunnel is up"));
    }
    let direct = plan.devices.len() - protected;
    if direct > 0 {
        s.push_str(&format!(", {direct} direct or disabled"));
    }
    s.push_str(&warned);
    s
}

/// Parse `--config`, `--state-dir`, `--stderr` for `run`/`status`.
fn daemon_options(cmd: &str, args: &[String], allow_config: bool) -> Result<moat::daemon::Options, ExitCode> {
    let mut o = moat::daemon::Options {
        config: "/etc/config/moat".to_string(),
        state_dir: moat::daemon::DEFAULT_STATE_DIR.into(),
        stderr: false,
        hold_secs: moat::plan::HOLD_SECS,
        guard_file: moat::plan::guard::DEFAULT_GUARD_FILE.into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" if allow_config => match it.next() {
                Some(f) => o.config = f.clone(),
                None => return Err(usage_error(cmd, "--config needs a file")),
            },
            "--state-dir" => match it.next() {
                Some(d) => o.state_dir = d.into(),
                None => return Err(usage_error(cmd, "--state-dir needs a directory")),
            },
            "--stderr" if allow_config => o.stderr = true,
            "--guard-file" if allow_config => match it.next() {
                Some(f) => o.guard_file = f.into(),
                None => return Err(usage_error(cmd, "--guard-file needs a path")),
            },
            "--hold" if allow_config => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => o.hold_secs = v,
                None => return Err(usage_error(cmd, "--hold needs a number of seconds")),
            },
            other => return Err(usage_error(cmd, &format!("unknown argument '{other}'"))),
        }
    }
    Ok(o)
}

fn usage_error(cmd: &str, msg: &str) -> ExitCode {
    eprintln!("moat {cmd}: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn run(args: &[String]) -> ExitCode {
    match daemon_options("run", args, true) {
        Ok(o) => {
            // Without the engine shaped devices' queues stay unbound: their packets are dropped.
            let engine: Option<Box<dyn moat::daemon::Engine>> = match moat::daemon::engine::ShapingEngine::new() {
                Ok(e) => Some(Box::new(e)),
                Err(e) => {
                    eprintln!("moat run: shaping engine unavailable ({e}); shaped devices' traffic will be dropped");
                    None
                }
            };
            ExitCode::from(moat::daemon::run(o, engine))
        }
        Err(c) => c,
    }
}

fn status(args: &[String]) -> ExitCode {
    if let Some(code) = moat::rpc::table::status_cli(args) {
        return ExitCode::from(code);
    }
    let args: Vec<String> = args.iter().filter(|a| *a != "--raw").cloned().collect();
    match daemon_options("status", &args, false) {
        Ok(o) => ExitCode::from(moat::daemon::status::show(&o.state_dir)),
        Err(c) => c,
    }
}

fn cleanup(args: &[String]) -> ExitCode {
    let guard_file = match args {
        [] => std::path::PathBuf::from(moat::plan::guard::DEFAULT_GUARD_FILE),
        [flag, path] if flag == "--guard-file" => path.into(),
        [flag] if flag == "--guard-file" => return usage_error("cleanup", "--guard-file needs a path"),
        [a, ..] => return usage_error("cleanup", &format!("unknown argument '{a}'")),
    };
    // The file first: once it is gone no firewall reload brings the guard back.
    let file = moat::daemon::guard_file::sync(&guard_file, None).map_err(|e| format!("{}: {e}", guard_file.display()));
    let kernel = moat::netlink::Socket::open(0)
        .map_err(|e| format!("netlink: {e}"))
        .and_then(|mut nl| moat::daemon::apply::remove_all(&mut nl).map_err(|e| e.to_string()))
        .and_then(|()| moat::daemon::persist::remove_orphan().map_err(|e| e.to_string()));
    let errors: Vec<String> = [file.err(), kernel.err()].into_iter().flatten().collect();
    for e in &errors {
        eprintln!("moat cleanup: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

const COMPANION_USAGE: &str = "usage: moat companion [--config FILE] [--state-dir DIR] [--stderr] [--cleanup]

Runs on the WireGuard server: shapes what the server sends to each home router whose moat
asks for it (option companion on the router's tunnel), at the router's size and rate.
  --config FILE     configuration (default /etc/moat/companion); the minimum is
                        config companion 'main'
                        \toption device 'wg0'
  --state-dir DIR   state and status.json (default /run/moat-companion)
  --stderr          log to stderr instead of syslog
  --cleanup         remove the companion's queue rules and exit (while they exist and no
                    companion runs, shaped peers' downstream is dropped)";

fn companion(args: &[String]) -> ExitCode {
    let mut o = moat::companion::Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => {
                println!("{COMPANION_USAGE}");
                return ExitCode::SUCCESS;
            }
            "--stderr" => o.stderr = true,
            "--cleanup" => {
                moat::companion::cleanup();
                return ExitCode::SUCCESS;
            }
            "--config" | "-c" | "--state-dir" => match it.next() {
                Some(v) if a == "--state-dir" => o.state_dir = v.into(),
                Some(v) => o.config = v.clone(),
                None => {
                    eprintln!("moat companion: {a} needs a value\n\n{COMPANION_USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("moat companion: unknown argument '{other}'\n\n{COMPANION_USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match moat::companion::run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            for e in errors {
                eprintln!("moat companion: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
