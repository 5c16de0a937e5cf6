//! `moat check` as a user runs it: exit codes 0 (valid), 1 (invalid: every error listed),
//! 2 (usage), the error lines for the hostile fixtures, and the verdict line (`OK: …` or
//! `INVALID: …`, always last, everything on stdout; `--quiet` leaves the plan out).

use std::path::Path;
use std::process::{Command, Output};

#[path = "hostile/fixtures.rs"]
mod hostile;

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat")).args(args).output().expect("run moat")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout: the plan, warnings, errors and the verdict all go there (usage errors to stderr).
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stdout and stderr together.
fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The last line of stdout.
fn last_line(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

fn golden(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name).display().to_string()
}

fn tmp_config(name: &str, text: &str) -> String {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("check_cli-{}-{}", std::process::id(), name));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn valid_example_exits_0() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf");
    let o = moat(&["check", "--config", ex.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!all_output(&o).contains("error:"), "{}", all_output(&o));
    assert!(!all_output(&o).contains("warning:"), "{}", all_output(&o));
}

#[test]
fn warnings_are_printed_but_do_not_fail() {
    // The router's firewall puts the tunnel in no zone and turns offloading on: two warnings.
    let (conf, uci) = (golden("fw_warnings.conf"), golden("fw_warnings.uci"));
    let o = moat(&["check", "-c", &conf, "--facts", &golden("default.facts"), "--uci-dir", &uci]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let out = stdout(&o);
    let zone = "warning: tunnel 'vpn' (wireguard device wg0): the device is in no firewall zone";
    let offload = "warning: fw4 software and hardware flow offloading are enabled";
    // Once before the plan, once again above the verdict.
    assert_eq!(out.matches(zone).count(), 2, "{out}");
    assert_eq!(out.matches(offload).count(), 2, "{out}");
    let verdict_at = out.find("== verdict ==").expect("verdict section");
    assert!(out[verdict_at..].contains(zone) && out[verdict_at..].contains(offload), "{out}");
    assert!(out.find("== nft script").unwrap() < verdict_at, "{out}");
    assert_eq!(last_line(&o), "OK: 1 device protected (1 vpn); 2 warnings above");
}

#[test]
fn verdict_counts_protected_devices_per_route() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf");
    let o = moat(&["check", "--config", ex.to_str().unwrap(), "--facts", &golden("default.facts")]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert_eq!(last_line(&o), "OK: 5 devices protected (2 vpn, 1 office, 1 tor, 1 block), 1 of them blocked until their tunnel is up, 1 direct or disabled");
    let f = tmp_config(
        "one.conf",
        "config moat 'main'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'block'\n",
    );
    let o = moat(&["check", "--config", &f, "--facts", &golden("default.facts"), "--uci-dir", "/nonexistent"]);
    assert_eq!(last_line(&o), "OK: 1 device protected (1 block)", "{}", all_output(&o));
    let f = tmp_config("off.conf", "config moat 'main'\n\toption enabled '0'\n");
    let o = moat(&["check", "--config", &f, "--facts", &golden("default.facts"), "--uci-dir", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(last_line(&o).starts_with("OK: moat is disabled"), "{}", all_output(&o));
}

#[test]
fn quiet_prints_only_problems_and_the_verdict() {
    let (conf, uci) = (golden("fw_warnings.conf"), golden("fw_warnings.uci"));
    let o = moat(&["check", "--quiet", "-c", &conf, "--facts", &golden("default.facts"), "--uci-dir", &uci]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let out = stdout(&o);
    assert!(!out.contains("== "), "no plan with --quiet: {out}");
    assert_eq!(out.matches("warning: ").count(), 2, "each warning once: {out}");
    assert_eq!(last_line(&o), "OK: 1 device protected (1 vpn); 2 warnings above");
    // The shipped example on the lab facts: nothing to say but the tunnel that is down, and the verdict.
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moat.conf");
    let o = moat(&["check", "-q", "--config", ex.to_str().unwrap(), "--facts", &golden("default.facts")]);
    let out = stdout(&o);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "note: tunnel office: tun0 is down; its devices are blocked until it is up",
            "OK: 5 devices protected (2 vpn, 1 office, 1 tor, 1 block), 1 of them blocked until their tunnel is up, 1 direct or disabled"
        ],
        "{out}"
    );
    // Invalid: the errors and the verdict, nothing else.
    let f = tmp_config("quietbad.conf", "config moat 'main'\n\toption enabled 'maybe'\n");
    let o = moat(&["check", "--quiet", "--config", &f]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with(&format!("error: {f}:2: section 'main' option 'enabled': ")), "{out}");
    assert_eq!(last_line(&o), "INVALID: 1 error (a running moat keeps its current state on reload)");
}

#[test]
fn unknown_options_and_section_types_exit_1_with_a_suggestion() {
    let f = tmp_config(
        "typo.conf",
        "config moat 'main'\n\toption colour 'blue'\nconfig devices\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'block'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:33'\n\toption route 'block'\n\toption rotue 'direct'\n",
    );
    let o = moat(&["check", "-c", &f]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    let e = all_output(&o);
    assert!(e.contains(&format!("error: {f}:2: section 'main' option 'colour': unknown option (known here: ")), "{e}");
    assert!(
        e.contains(&format!(
            "error: {f}:3: section '@devices[0]': unknown section type 'devices'; did you mean 'device'?"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: {f}:9: section '@device[0]' option 'rotue': unknown option; did you mean 'route'?"
        )),
        "{e}"
    );
    assert_eq!(last_line(&o), "INVALID: 3 errors (a running moat keeps its current state on reload)");
    assert!(!e.contains("warning:"), "{e}");
}

/// Fixtures with a `# expect-message: TEXT` header: the error line also carries TEXT (the
/// suggestion of a typo fixture, both lines of a redeclared section).
#[test]
fn fixture_errors_carry_their_expected_message() {
    let mut seen = 0;
    for (path, line, _) in hostile::fixtures() {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let Some(want) = text.lines().find_map(|l| l.strip_prefix("# expect-message: ")) else { continue };
        let p = path.to_str().unwrap();
        let o = moat(&["check", "--config", p]);
        assert_eq!(o.status.code(), Some(1), "{p}");
        let e = stdout(&o);
        let head = format!("error: {p}:{line}: ");
        assert!(e.lines().any(|l| l.starts_with(&head) && l.contains(want)), "{p}: no '{head}…{want}' in {e}");
        seen += 1;
    }
    assert!(seen >= 2, "the typo fixtures are missing");
}

#[test]
fn invalid_config_exits_1_listing_every_error() {
    let f = tmp_config(
        "bad.conf",
        "config moat 'main'\n\toption enabled 'maybe'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'nowhere'\n",
    );
    let o = moat(&["check", "--config", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).is_empty(), "errors go to stdout: {}", stderr(&o));
    let e = stdout(&o);
    assert!(e.contains(&format!("error: {f}:2: section 'main' option 'enabled': ")), "{e}");
    assert!(
        e.contains(&format!("error: {f}:5: section '@device[0]' option 'route': route 'nowhere' names no tunnel")),
        "{e}"
    );
    assert_eq!(last_line(&o), "INVALID: 2 errors (a running moat keeps its current state on reload)");
}

#[test]
fn plan_errors_name_the_option_and_its_line() {
    // Valid as configuration, invalid on this system (default.facts: wg0 has MTU 1420, the router
    // is 192.168.1.1): each error names the line of the option at fault, not the section's.
    let f = tmp_config(
        "plan.conf",
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption pad_to '1440'\n\toption dns '192.168.1.1'\n\
         config shaper 'steady'\n\toption mode 'constant'\n\toption rate '20'\n\
         config device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n\toption shaper 'steady'\n",
    );
    let o = moat(&["check", "-c", &f, "--facts", &golden("default.facts"), "--uci-dir", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    let e = stdout(&o);
    assert!(
        e.contains(&format!(
            "error: {f}:4: section 'vpn' option 'pad_to': pad_to 1440 is above the MTU 1420 of wg0; padded packets \
             would be dropped (use auto or at most 1408)\n"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: {f}:5: section 'vpn' option 'dns': dns 192.168.1.1 is an address of this router; it must be a \
             resolver reached through the tunnel\n"
        )),
        "{e}"
    );
    assert_eq!(last_line(&o), "INVALID: 2 errors (a running moat keeps its current state on reload)");
}

#[test]
fn pad_to_and_ipv6_dns_errors_say_what_to_write() {
    let f = tmp_config(
        "hints.conf",
        "config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption pad_to '1420'\n\
         config tunnel 'vpn6'\n\toption type 'interface'\n\toption device 'tun0'\n\toption dns 'fd00:64::1'\n",
    );
    let o = moat(&["check", "-c", &f]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    let e = stdout(&o);
    assert!(
        e.contains(&format!(
            "error: {f}:4: section 'vpn' option 'pad_to': pad_to 1420 is not a multiple of 16 (try 1408 or auto)\n"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: {f}:8: section 'vpn6' option 'dns': fd00:64::1 is IPv6 but the tunnel does not carry IPv6 \
             (ipv6 '0'); use an IPv4 resolver or set ipv6 '1'\n"
        )),
        "{e}"
    );
    assert_eq!(last_line(&o), "INVALID: 2 errors (a running moat keeps its current state on reload)");
}

#[test]
fn syntax_error_exits_1_naming_the_line() {
    let f = tmp_config("syntax.conf", "config moat 'main'\n\toption enabled '1\n");
    let o = moat(&["check", "--config", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&format!("error: {f}:2: ")), "{}", all_output(&o));
    assert!(last_line(&o).starts_with("INVALID: 1 error"), "{}", all_output(&o));
}

#[test]
fn unreadable_file_exits_1() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_cli-does-not-exist.conf");
    let o = moat(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("cannot read"), "{}", all_output(&o));
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["frobnicate"][..], &["check", "--bogus"][..], &["check", "--config"][..]] {
        let o = moat(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("usage: moat"), "{args:?}");
    }
}

#[test]
fn hostile_fixtures_exit_1_with_an_error_naming_line_and_option() {
    let all = hostile::fixtures();
    assert!(all.len() >= 20);
    for (path, line, option) in all {
        let p = path.to_str().unwrap();
        let o = moat(&["check", "--config", p]);
        assert_eq!(o.status.code(), Some(1), "{p}");
        let e = stdout(&o);
        let head = format!("error: {p}:{line}: ");
        let l = e.lines().find(|l| l.starts_with(&head)).unwrap_or_else(|| panic!("{p}: no '{head}' in {e}"));
        if let Some(opt) = option {
            assert!(l.contains(&format!("option '{opt}': ")), "{p}: {l}");
        }
        assert_eq!(e.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{p}: {e}");
    }
}
