//! Conformance of `moat::config::uci` with OpenWrt's real `uci` tool.
//!
//! For every `tests/uci-vectors/NAME.conf` (see that directory's README.md): when `uci` accepted the file
//! (`NAME.rc` = 0), our `show`/`export` output must be byte-identical to `NAME.show`/`NAME.export`; when it
//! rejected it (`NAME.rc` = 1), we must reject it too, at the line (and byte) `NAME.err` names.

use std::fs;
use std::path::{Path, PathBuf};

fn vectors() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/uci-vectors");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/uci-vectors")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    v
}

/// `uci: Parse error (REASON) at line L, byte B` -> (L, B).
fn err_position(err: &str) -> (usize, usize) {
    let rest = &err[err.rfind(" at line ").expect("'at line' in .err") + " at line ".len()..];
    let (l, b) = rest.trim().split_once(", byte ").expect("', byte' in .err");
    (l.parse().unwrap(), b.parse().unwrap())
}

fn show(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

#[test]
fn every_vector_matches_uci() {
    let files = vectors();
    assert!(files.len() >= 50, "expected the full vector set, found {}", files.len());
    let mut failures = Vec::new();
    let (mut ok, mut rejected) = (0, 0);
    for conf in &files {
        let name = conf.file_stem().unwrap().to_string_lossy().into_owned();
        let with = |ext: &str| conf.with_extension(ext);
        let input = fs::read(conf).unwrap();
        let rc: i32 = fs::read_to_string(with("rc")).unwrap().trim().parse().unwrap();
        let got = moat::config::uci::parse_bytes(&name, &input);
        match (rc, got) {
            (0, Ok(pkg)) => {
                let want_show = fs::read(with("show")).unwrap();
                let want_export = fs::read(with("export")).unwrap();
                let (s, e) = (pkg.show_bytes("cfg"), pkg.export_bytes("cfg"));
                if s != want_show {
                    failures.push(format!("{name}: show differs\n--- want\n{}--- got\n{}", show(&want_show), show(&s)));
                }
                if e != want_export {
                    failures.push(format!(
                        "{name}: export differs\n--- want\n{}--- got\n{}",
                        show(&want_export),
                        show(&e)
                    ));
                }
                ok += 1;
            }
            (0, Err(e)) => failures.push(format!("{name}: uci accepts it, we reject it: {e}")),
            (1, Ok(pkg)) => failures.push(format!("{name}: uci rejects it, we accept it:\n{}", pkg.show("cfg"))),
            (1, Err(e)) => {
                let (line, byte) = err_position(&fs::read_to_string(with("err")).unwrap());
                if (e.line, e.byte) != (line, byte) {
                    failures.push(format!(
                        "{name}: error at line {} byte {}, uci says line {line} byte {byte}: {e}",
                        e.line, e.byte
                    ));
                }
                assert!(e.to_string().starts_with(&format!("{name}:{}: ", e.line)), "error names file and line: {e}");
                rejected += 1;
            }
            (rc, _) => panic!("{name}: unexpected rc {rc}"),
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors fail:\n{}", failures.len(), files.len(), failures.join("\n"));
    eprintln!("{ok} accepted and {rejected} rejected vectors match uci");
}

/// Exporting a package and reading the export back gives the same package (uci's own export files
/// re-read identically), for every accepted vector.
#[test]
fn export_of_every_vector_rereads_identically() {
    for conf in vectors() {
        let input = fs::read(&conf).unwrap();
        let Ok(pkg) = moat::config::uci::parse_bytes("v", &input) else {
            continue;
        };
        let again = moat::config::uci::parse_bytes("export", &pkg.export_bytes("cfg")).unwrap();
        assert_eq!(again.show_bytes("cfg"), pkg.show_bytes("cfg"), "{}", conf.display());
    }
}
