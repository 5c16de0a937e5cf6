//! Every fixture in tests/hostile/ holds one hostile value in an otherwise valid configuration.
//! Its header says where: `# expect: line N option NAME` (`-` when the UCI reader itself
//! rejects the statement). The model must refuse the file with exactly that one error.

use std::path::Path;

#[path = "hostile/fixtures.rs"]
mod fixtures;
use fixtures::fixtures;

#[test]
fn every_hostile_fixture_is_refused_at_its_line_and_option() {
    let all = fixtures();
    assert!(all.len() >= 20, "expected the full hostile set, found {}", all.len());
    for (path, line, option) in all {
        let r = moat::config::check_file(&path);
        assert!(r.model.is_none(), "{}: accepted", path.display());
        assert_eq!(r.errors.len(), 1, "{}: {:#?}", path.display(), r.errors);
        let e = &r.errors[0];
        assert_eq!(e.line, line, "{}: {}", path.display(), e);
        assert_eq!(e.option, option, "{}: {}", path.display(), e);
        assert_eq!(e.file, path.display().to_string());
        // The message shows the value escaped: no raw control characters reach a terminal.
        assert!(!e.to_string().chars().any(|c| c.is_control()), "{}: {:?}", path.display(), e.to_string());
    }
}

#[test]
fn the_nul_fixture_really_contains_a_nul_byte() {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/nul-device.conf")).unwrap();
    assert!(bytes.contains(&0));
}

#[test]
fn the_long_fixtures_really_are_4_kb() {
    for f in ["long-device.conf", "long-name.conf"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile").join(f)).unwrap();
        assert!(text.lines().any(|l| l.len() > 4096), "{f}");
    }
}
