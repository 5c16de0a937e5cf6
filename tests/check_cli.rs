//! `moat check` as a user runs it: exit codes 0 (valid), 1 (invalid: every error listed),
//! 2 (usage), and the error lines for the hostile fixtures.

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

/// stdout and stderr together (warnings may go to either; the plan goes to stdout).
fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
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
    let f = tmp_config(
        "warn.conf",
        "config moat 'main'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-lan'\nconfig tunnel 'o'\n\toption type 'interface'\n\toption device 'tun0'\n\toption pad_to '128'\n",
    );
    let o = moat(&["check", "-c", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let e = all_output(&o);
    assert!(
        e.contains(&format!("warning: {f}:3: section 'main' option 'lan_device': 'br-lan' is listed twice")),
        "{e}"
    );
    assert!(e.contains(&format!("warning: {f}:7: section 'o' option 'pad_to': option does not apply")), "{e}");
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
    assert!(e.contains("3 error(s)"), "{e}");
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
        let e = stderr(&o);
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
        "config moat 'main'\n\toption enabled 'maybe'\nconfig device\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'nowhere'\n\toption typo 'x'\n",
    );
    let o = moat(&["check", "--config", &f]);
    assert_eq!(o.status.code(), Some(1));
    let e = all_output(&o);
    assert!(e.contains(&format!("error: {f}:2: section 'main' option 'enabled': ")), "{e}");
    assert!(
        e.contains(&format!("error: {f}:5: section '@device[0]' option 'route': route 'nowhere' names no tunnel")),
        "{e}"
    );
    assert!(e.contains(&format!("error: {f}:6: section '@device[0]' option 'typo': unknown option")), "{e}");
    assert!(e.contains("3 error(s)"), "{e}");
}

#[test]
fn syntax_error_exits_1_naming_the_line() {
    let f = tmp_config("syntax.conf", "config moat 'main'\n\toption enabled '1\n");
    let o = moat(&["check", "--config", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("error: {f}:2: ")), "{}", stderr(&o));
}

#[test]
fn unreadable_file_exits_1() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_cli-does-not-exist.conf");
    let o = moat(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
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
        let e = stderr(&o);
        let head = format!("error: {p}:{line}: ");
        let l = e.lines().find(|l| l.starts_with(&head)).unwrap_or_else(|| panic!("{p}: no '{head}' in {e}"));
        if let Some(opt) = option {
            assert!(l.contains(&format!("option '{opt}': ")), "{p}: {l}");
        }
        assert_eq!(e.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{p}: {e}");
    }
}
