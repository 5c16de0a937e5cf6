//! Property test: random hostile mutations of the shipped example never panic the validator,
//! every diagnostic points into the file, and whenever a mutated file is still accepted, no
//! value that can reach nft text or a command line carries a character outside its grammar,
//! and the plan builds from it.
//! Deterministic (fixed seeds, the shaper's `SeededRng`), no dependencies; the run count is printed (default 5000,
//! `MOAT_MODEL_FUZZ_RUNS=N` for more).

use moat::config::*;
use moat::shaper::rng::{Rng as _, SeededRng};
use std::path::Path;

/// The mutations' draws, from the shaper's deterministic SplitMix64 (one PRNG for every test).
struct Rng(SeededRng);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n.max(1) as u32) as usize
    }
}

const HOSTILE: &[&str] = &[
    "'",
    "\"",
    ";",
    "\n",
    "{",
    "}",
    "$",
    "`",
    "$(reboot)",
    " ",
    "\t",
    "\\",
    "#",
    "/",
    "%",
    "[",
    "]",
    ":",
    "-",
    ".",
    "0",
    "9",
    "x",
    "é",
    "\u{202e}",
    "\r",
    "0x",
    "-1",
    "+",
    "::",
    "%eth0",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(lines.len());
        match rng.below(5) {
            // insert a hostile piece somewhere in a line
            0 | 1 => {
                let l = &lines[i];
                let cut = l.char_indices().map(|(k, _)| k).nth(rng.below(l.chars().count() + 1)).unwrap_or(l.len());
                let piece = HOSTILE[rng.below(HOSTILE.len())];
                lines[i] = format!("{}{}{}", &l[..cut], piece, &l[cut..]);
            }
            // replace a quoted value by a random hostile string
            2 => {
                if let (Some(a), Some(b)) = (lines[i].find('\''), lines[i].rfind('\'')) {
                    if b > a {
                        let n = 1 + rng.below(6);
                        let v: String = (0..n).map(|_| HOSTILE[rng.below(HOSTILE.len())]).collect();
                        lines[i] = format!("{}{}{}", &lines[i][..=a], v, &lines[i][b..]);
                    }
                }
            }
            // duplicate a line elsewhere
            3 => {
                let l = lines[i].clone();
                let j = rng.below(lines.len());
                lines.insert(j, l);
            }
            // delete a line
            _ => {
                lines.remove(i);
                if lines.is_empty() {
                    lines.push(String::new());
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

fn ifname_ok(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}
fn name_ok(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
fn addr_ok(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':') && s.parse::<std::net::IpAddr>().is_ok()
}

fn check_model(m: &Model, text: &str) {
    for l in &m.global.lan_devices {
        assert!(ifname_ok(l.as_str()), "lan_device {:?} in\n{}", l, text);
    }
    for t in &m.tunnels {
        assert!(name_ok(t.name.as_str()), "tunnel {:?}", t.name);
        if let TunnelKind::WireGuard(l) | TunnelKind::Interface(l) = &t.kind {
            assert!(ifname_ok(l.device.as_str()), "device {:?} in\n{}", l.device, text);
            for a in l.dns.iter().chain(l.cover_dst.iter()) {
                assert!(addr_ok(&a.to_string()), "{a}");
            }
        }
    }
    for s in &m.shapers {
        assert!(name_ok(s.name.as_str()));
    }
    for d in &m.devices {
        // the section address is `@device[N]` or a section name
        assert!(name_ok(&d.section) || d.section.starts_with("@device["), "{:?}", d.section);
        assert!(!d.name.chars().any(|c| c.is_control()), "{:?}", d.name);
        assert!(!d.macs.is_empty());
        if let Route::Tunnel(n) = &d.route {
            assert!(m.tunnel(n).is_some(), "dangling route {n}");
        }
        if let Some(s) = &d.shaper {
            assert!(m.shaper(s).is_some(), "dangling shaper {s}");
        }
    }
}

#[test]
fn mutated_examples_never_panic_and_never_leak_hostile_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf");
    let example = std::fs::read_to_string(path).unwrap();
    // MOAT_MODEL_FUZZ_RUNS overrides the default count for longer runs.
    let runs: u32 = std::env::var("MOAT_MODEL_FUZZ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let (mut accepted, mut refused) = (0, 0);
    for seed in 1..=runs {
        let mut rng = Rng(SeededRng::new(seed as u64));
        let text = mutate(&mut rng, &example);
        let n_lines = text.lines().count();
        let r = check_bytes("fuzz.conf", text.as_bytes());
        for d in r.errors.iter().chain(&r.warnings) {
            assert!(d.line <= n_lines + 1, "line {} of {} lines: {}\n{}", d.line, n_lines, d, text);
            assert!(!d.to_string().chars().any(|c| c.is_control()), "raw control character in {:?}", d.to_string());
        }
        match r.model {
            Some(m) => {
                assert!(r.errors.is_empty());
                check_model(&m, &text);
                // The plan must agree: an accepted model always builds a plan using exactly the
                // budgets validation checked.
                let plan = moat::plan::build(&m, &moat::plan::facts::Facts::default())
                    .unwrap_or_else(|e| panic!("accepted, but the plan refuses: {e:#?}\n{text}"));
                // (`enabled 0` plans to remove everything; the budgets still hold for `enabled 1`.)
                if plan.enabled {
                    assert_eq!(plan.marks.used, m.mark_values_needed(), "marks:\n{text}");
                    let queues = (plan.queues.shaped.len() + plan.queues.pad.len()) as u32;
                    assert_eq!(queues, m.queues_needed(), "queues:\n{text}");
                }
                accepted += 1;
            }
            None => {
                assert!(!r.errors.is_empty(), "refused without an error:\n{text}");
                refused += 1;
            }
        }
    }
    println!("model fuzz: {runs} mutated configurations, {accepted} accepted, {refused} refused");
    // Both outcomes must occur, or the mutations are not exercising the validator.
    assert!(accepted > runs / 20 && refused > runs / 4, "accepted {accepted}, refused {refused}");
}
