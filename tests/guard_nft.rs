//! The boot-time guard (`table inet moat_guard`, src/plan/guard.rs) and the hold table load in
//! a network namespace for every golden config: on their own, inside one transaction with a
//! fw4-like ruleset (as fw4 includes ruleset-post/*.nft), twice in a row (the table exists
//! then), and next to moat's full table and its hold. Needs root, `ip` and `nft`.

mod netns;

use netns::Netns;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A stand-in for fw4's rendered script (its first lines and a forward chain).
const FW4: &str = "table inet fw4\nflush table inet fw4\ntable inet fw4 {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n\t}\n}\n";

#[test]
fn guard_and_hold_scripts_load_for_every_golden_config() {
    let ns = Netns::new("guard", "all");
    let dir = golden_dir();
    let facts =
        moat::plan::facts::Facts::parse("default.facts", &std::fs::read_to_string(dir.join("default.facts")).unwrap())
            .unwrap();
    let mut guarded = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "conf") {
            continue;
        }
        let Ok(loaded) = moat::config::load_file(&p) else { continue };
        let Ok(plan) = moat::plan::build(&loaded.model, &facts) else { continue };
        let Some(guard) = moat::plan::guard::guard_script(&plan) else {
            assert!(
                !plan.enabled || plan.devices.iter().all(|d| d.mark == 0),
                "{}: protected devices but no guard",
                p.display()
            );
            continue;
        };
        guarded += 1;
        let name = p.display();
        // As fw4 loads it: one transaction with fw4's script, table absent, then present.
        for round in 0..2 {
            let (ok, msg) = ns.run("nft", &["-f", "-"], &format!("{FW4}{guard}"));
            assert!(ok, "{name}: guard inside fw4's transaction (round {round}): {msg}\n{guard}");
        }
        // Next to moat's full table, then its hold, and in one transaction with the full table.
        let hold = moat::plan::hold_script(&plan, 15).expect("protected devices have a hold");
        let tunnels = plan.classes.iter().any(|c| matches!(c.kind, moat::plan::ClassKind::L3 { .. }));
        // guard_output: no DHCP relay of protected devices (always), and for tunnels the router's
        // replies to tunnel-side flows stay in the tunnel.
        assert!(hold.contains("chain guard_output"), "{name}: the hold keeps guard_output:\n{hold}");
        assert_eq!(
            hold.contains("replies to tunnel-side flows stay in the tunnel"),
            tunnels,
            "{name}: the hold keeps the tunnel-side guard:\n{hold}"
        );
        for (what, s) in
            [("full", plan.nft.clone()), ("hold", hold.clone()), ("full+guard", format!("{}{guard}", plan.nft))]
        {
            let (ok, msg) = ns.run("nft", &["-f", "-"], &s);
            assert!(ok, "{name}: {what} with the guard loaded: {msg}\n{s}");
        }
        let (_, listing) = ns.run("nft", &["list", "table", "inet", "moat_guard"], "");
        assert!(listing.contains("chain guard_forward"), "{name}: {listing}");
        let (ok, msg) = ns.run("nft", &["-f", "-"], &moat::plan::guard::remove().to_string());
        assert!(ok, "{name}: removal: {msg}");
        let (ok, msg) = ns.run("nft", &["-f", "-"], &moat::plan::guard::remove().to_string());
        assert!(ok, "{name}: removal of an absent guard: {msg}");
        let (present, _) = ns.run("nft", &["list", "table", "inet", "moat_guard"], "");
        assert!(!present, "{name}: guard still present after removal");
        let _ = ns.run("nft", &["-f", "-"], "table inet moat\ndelete table inet moat\n");
    }
    assert!(guarded >= 5, "only {guarded} golden configs protect devices");
}
