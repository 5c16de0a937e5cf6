//! `moat status` tells what it knows (issue 12): the status JSON of a plan with a `tor` route
//! calls the route up and its devices protected only if tor listens on its TransPort and
//! DNSPort (socket tables from a fixture directory standing in for `/proc/net`); otherwise the
//! devices are shown blocked, with the port. The lab test `status_tor` does it on a real tor.

use std::path::{Path, PathBuf};

use moat::daemon::health::Health;
use moat::daemon::status::{self, State};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn plan() -> (moat::plan::Plan, moat::plan::facts::Facts) {
    let model = moat::config::load_file(golden("tor_only.conf")).expect("golden config is valid").model;
    let text = std::fs::read_to_string(golden("default.facts")).unwrap();
    let facts = moat::plan::facts::Facts::parse("default.facts", &text).unwrap();
    (moat::plan::build(&model, &facts).unwrap(), facts)
}

/// `<tmp>/<tag>/{tcp,udp}` holding the given (proto, a.b.c.d, port) sockets, kernel format.
fn proc_net(tag: &str, sockets: &[(&str, [u8; 4], u16)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("status_health-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for proto in ["tcp", "udp"] {
        let mut t = String::from(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        );
        for (i, (p, a, port)) in sockets.iter().filter(|s| s.0 == proto).enumerate() {
            let st = if *p == "tcp" { "0A" } else { "07" };
            t.push_str(&format!(
                "{i:4}: {:08X}:{port:04X} 00000000:0000 {st} 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000\n",
                u32::from_ne_bytes(*a)
            ));
        }
        std::fs::write(dir.join(proto), t).unwrap();
    }
    dir
}

fn render(proc_net: &Path) -> String {
    let (plan, facts) = plan();
    let health = Health::probe_at(Some(&plan), proc_net, Path::new("/nonexistent"), 1_000_000);
    status::render(1, "moat.conf", State::Running, Some(&plan), &facts, None, 0, &health, None)
}

#[test]
fn tor_listening_on_both_ports_is_up() {
    let j = render(&proc_net("up", &[("tcp", [0, 0, 0, 0], 9040), ("udp", [192, 168, 1, 1], 9053)]));
    assert!(
        j.contains("{\"name\": \"tor\", \"type\": \"tor\", \"device\": null, \"up\": true, \"note\": null}"),
        "{j}"
    );
    assert!(j.contains("\"state\": \"protected (tor listening)\""), "{j}");
}

#[test]
fn tor_not_listening_shows_the_devices_blocked_with_the_port() {
    // tor stopped: nothing on either port (another service on 9041 does not count).
    let j = render(&proc_net("down", &[("tcp", [0, 0, 0, 0], 9041)]));
    let why = "tor is not listening on 9040 (TransPort); tor is not listening on 9053 (DNSPort)";
    assert!(j.contains(&format!("\"up\": false, \"note\": \"{why}\"")), "{j}");
    assert!(j.contains(&format!("\"state\": \"blocked: {why}\"")), "{j}");
    // Only the DNSPort missing.
    let j = render(&proc_net("nodns", &[("tcp", [0, 0, 0, 0], 9040)]));
    assert!(j.contains("\"state\": \"blocked: tor is not listening on 9053 (DNSPort)\""), "{j}");
    // Listening on loopback only: the redirect (to the LAN address) does not reach it.
    let j = render(&proc_net("lo", &[("tcp", [127, 0, 0, 1], 9040), ("udp", [127, 0, 0, 1], 9053)]));
    assert!(j.contains("\"state\": \"blocked: tor listens on 9040 (TransPort) only on 127.0.0.1"), "{j}");
}

#[test]
fn unreadable_socket_tables_are_not_reported_as_up() {
    let j = render(Path::new("/nonexistent/proc/net"));
    assert!(j.contains("\"up\": false, \"note\": \"cannot tell whether tor is listening ("), "{j}");
    assert!(j.contains("\"state\": \"unknown: cannot tell whether tor is listening ("), "{j}");
}
