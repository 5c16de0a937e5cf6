//! Contract between the model and the plan: every configuration the model accepts builds a plan
//! (on a router with no interfaces yet), and the model's budgets (`mark_values_needed`,
//! `queues_needed`, `tables_needed`), which validation checks against `fwmark_mask`,
//! `queue_base` and `table_base`, are exactly what the plan uses.

use moat::config::*;
use moat::plan::facts::Facts;
use std::path::{Path, PathBuf};

fn configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![root.join("examples/moat.conf")];
    for e in std::fs::read_dir(root.join("tests/golden")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("conf") {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn assert_budgets_match(m: &Model, what: &str) {
    let plan = moat::plan::build(m, &Facts::default())
        .unwrap_or_else(|e| panic!("{what}: accepted model, plan refused: {e:#?}"));
    assert_eq!(plan.marks.used, m.mark_values_needed(), "{what}: marks");
    assert_eq!((plan.queues.shaped.len() + plan.queues.pad.len()) as u32, m.queues_needed(), "{what}: queues");
    let g = &m.global;
    for r in &plan.rules {
        assert!(r.table >= g.table_base && r.table < g.table_base + m.tables_needed(), "{what}: table {}", r.table);
    }
}

#[test]
fn budgets_equal_the_plans_use_for_shipped_and_golden_configs() {
    let mut n = 0;
    for p in configs() {
        match load_file(&p) {
            Ok(l) => {
                assert_budgets_match(&l.model, &p.display().to_string());
                n += 1;
            }
            Err(_) => continue, // golden cases of refused configs
        }
    }
    assert!(n >= 5, "only {n} accepted configs");
}

#[test]
fn budgets_equal_the_plans_use_for_generated_configs() {
    // Devices spread over routes and shapers by a fixed pattern, with some disabled.
    for n in 0..40usize {
        let mut t = String::from("config moat 'main'\n\toption fwmark_mask '0xff000000'\n");
        t += "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n";
        t += &format!("\toption pad_all '{}'\n", n % 2);
        t += "config tunnel 'vpn2'\n\toption type 'wireguard'\n\toption device 'wg1'\n\toption cover_dst '10.65.0.1'\n";
        t += "config tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n";
        t += "config tunnel 'tor'\n\toption type 'tor'\n";
        t += "config shaper 's'\n\toption mode 'constant'\n\toption rate '10'\n";
        for i in 0..n {
            let (route, shaped) = match (i * 7 + n) % 6 {
                0 => ("vpn", true),
                1 => ("vpn2", i % 2 == 0),
                2 => ("o", false),
                3 => ("tor", false),
                4 => ("block", false),
                _ => ("direct", false),
            };
            t += &format!("config device\n\tlist mac '02:00:00:00:{:02x}:{:02x}'\n\toption route '{route}'\n", n, i);
            if shaped {
                t += "\toption shaper 's'\n";
            }
            if i % 5 == 4 {
                t += "\toption enabled '0'\n";
            }
        }
        let r = check_bytes("gen.conf", t.as_bytes());
        let m = r.model.unwrap_or_else(|| panic!("generated config {n} refused: {:#?}", r.errors));
        assert_budgets_match(&m, &format!("generated config {n}"));
    }
}
