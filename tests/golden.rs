//! Golden tests of `moat check`: `tests/golden/<case>.conf` (+ `<case>.facts`, default
//! `default.facts`; the router's firewall/network/pbr/mwan3 from `<case>.uci/` if present) must print
//! exactly `tests/golden/<case>.plan` (stdout, then stderr and the exit code). `UPDATE_GOLDEN=1` rewrites
//! the .plan files. A second test loads every golden nft script with `nft -c -f` (and the
//! iptables queue scripts with `iptables-restore --test`) in a fresh network namespace.

mod netns;

use netns::Netns;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".conf")).map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Run `moat check` for a case; the output is stdout, then stderr and the exit code.
fn run_check(case: &str) -> String {
    let dir = golden_dir();
    let facts =
        if dir.join(format!("{case}.facts")).exists() { format!("{case}.facts") } else { "default.facts".into() };
    // The router's other packages: `<case>.uci/` if present, else none installed.
    let uci = if dir.join(format!("{case}.uci")).is_dir() { format!("{case}.uci") } else { "no-such-dir".into() };
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .current_dir(&dir)
        .args(["check", "--config", &format!("{case}.conf"), "--facts", &facts, "--uci-dir", &uci])
        .output()
        .expect("run moat");
    let mut s = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    if !err.is_empty() {
        s.push_str("== stderr ==\n");
        s.push_str(&err);
    }
    s.push_str(&format!("== exit {} ==\n", out.status.code().unwrap_or(-1)));
    s
}

#[test]
fn readme_case_is_the_shipped_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/moat.conf")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(example.trim()), "README.md must show examples/moat.conf verbatim");
    let golden = std::fs::read_to_string(golden_dir().join("readme.conf")).unwrap();
    assert_eq!(
        golden, example,
        "tests/golden/readme.conf must be a copy of examples/moat.conf (cp it, UPDATE_GOLDEN=1)"
    );
}

#[test]
fn golden_check_output() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(cases.len() >= 7, "golden cases missing: {cases:?}");
    let mut failed = Vec::new();
    for case in &cases {
        let got = run_check(case);
        let path = golden_dir().join(format!("{case}.plan"));
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
        if got != want {
            eprintln!("--- {case}: expected\n{want}\n--- got\n{got}");
            failed.push(case.clone());
        }
    }
    assert!(failed.is_empty(), "golden mismatch: {failed:?} (UPDATE_GOLDEN=1 to accept)");
}

/// The text between a `== title ==` header line (prefix match) and the next `== ` header.
fn section<'a>(plan: &'a str, title: &str) -> Option<&'a str> {
    let start = plan.find(&format!("== {title}"))?;
    let body = &plan[start..];
    let body = &body[body.find('\n')? + 1..];
    let end = body.find("\n== ").map_or(body.len(), |e| e + 1);
    Some(&body[..end])
}

/// The iptables-restore scripts of a plan: (program, script).
fn ipt_scripts(plan: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = plan.lines();
    while let Some(l) = lines.next() {
        if let Some((prog, _)) = l.split_once(" --noflush <<EOF") {
            let mut body = String::new();
            for b in lines.by_ref() {
                if b == "EOF" {
                    break;
                }
                body.push_str(b);
                body.push('\n');
            }
            out.push((prog.to_string(), body));
        }
    }
    out
}

fn require(tool: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
            || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` is required by this test and is not installed (apt-get install nftables iptables iproute2)"
    );
}

#[test]
fn golden_nft_scripts_load_in_a_netns() {
    require("nft");
    require("ip");
    require("iptables-restore");
    let ns = Netns::new("gold", "nft");
    // Does this kernel have the nft queue statement? (It decides what a `queue num` line must do.)
    let probe = "table inet moat_probe { chain c { type filter hook postrouting priority 0; queue num 0; } }\n";
    let (kernel_has_queue, _) = ns.run("nft", &["-c", "-f", "-"], probe);
    let mut checked = 0;
    for case in cases() {
        let plan = std::fs::read_to_string(golden_dir().join(format!("{case}.plan"))).unwrap();
        let Some(script) = section(&plan, "nft script") else {
            assert!(plan.contains("== exit 1 =="), "{case}: no nft script but not an error case");
            continue;
        };
        let has_queue = script.contains(" queue num ");
        if has_queue && !kernel_has_queue {
            // Must fail exactly on the queue statement; everything else must load.
            let (ok, msg) = ns.run("nft", &["-c", "-f", "-"], script);
            assert!(!ok && msg.contains("queue num"), "{case}: expected only the queue statement to be refused: {msg}");
            let without: String =
                script.lines().filter(|l| !l.contains(" queue num ")).map(|l| format!("{l}\n")).collect();
            let (ok, msg) = ns.run("nft", &["-c", "-f", "-"], &without);
            assert!(ok, "{case}: nft script (queue lines removed) does not load: {msg}\n{without}");
        } else {
            let (ok, msg) = ns.run("nft", &["-c", "-f", "-"], script);
            assert!(ok, "{case}: nft script does not load: {msg}\n{script}");
        }
        // Load it for real twice (the create/delete/re-create dance must work on an existing table).
        if !has_queue || kernel_has_queue {
            for _ in 0..2 {
                let (ok, msg) = ns.run("nft", &["-f", "-"], script);
                assert!(ok, "{case}: nft -f failed: {msg}");
            }
            let (ok, listing) = ns.run("nft", &["list", "ruleset"], "");
            let creates = script.contains("table inet moat {");
            assert!(ok && listing.contains("table inet moat") == creates, "{case}: {listing}");
            let (ok, msg) = ns.run("nft", &["-f", "-"], "table inet moat\ndelete table inet moat\n");
            assert!(ok, "{msg}");
        }
        for (prog, body) in ipt_scripts(&plan) {
            let full = body.replace("COMMIT\n", "-I POSTROUTING 1 -j MOAT_QUEUE\nCOMMIT\n");
            let (ok, msg) = ns.run(&prog, &["--test", "--noflush"], &full);
            assert!(ok, "{case}: {prog} refuses the queue rules: {msg}\n{full}");
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} scripts checked");
}

#[test]
fn fallback_and_hold_scripts_load_in_a_netns() {
    require("nft");
    require("ip");
    let ns = Netns::new("gold", "fb");
    let dir = golden_dir();
    let model = moat::config::load_file(dir.join("shaped_wireguard.conf")).expect("golden config is valid").model;
    let facts =
        moat::plan::facts::Facts::parse("default.facts", &std::fs::read_to_string(dir.join("default.facts")).unwrap())
            .unwrap();
    let plan = moat::plan::build(&model, &facts).unwrap();
    let fallback = plan.nft_blocking_shaped().expect("shaped case has a fallback");
    let hold = moat::plan::hold_script(&plan, 15).expect("shaped case protects devices");
    for (what, script) in [("fallback", &fallback), ("hold", &hold), ("full", &plan.nft)] {
        let (ok, msg) = ns.run("nft", &["-f", "-"], script);
        assert!(ok, "{what} script does not load: {msg}\n{script}");
    }
    let (_, listing) = ns.run("nft", &["list", "table", "inet", "moat"], "");
    assert!(listing.contains("chain classify"), "the full script replaced the hold: {listing}");
}
