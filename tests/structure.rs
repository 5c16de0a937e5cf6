//! The tree's structural rules (ARCHITECTURE.md), checked on the sources so they cannot drift:
//! lower stages never import higher ones, every `unsafe` is in `src/sys/`, no source file over
//! ~600 lines (unit-test files beside the code excepted; tests/, examples/ and fuzz/ included).

use std::path::{Path, PathBuf};

/// The stages, lowest first.
const ORDER: [&str; 11] =
    ["json", "sys", "netlink", "wire", "shaper", "config", "plan", "advice", "daemon", "discover", "rpc"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `.rs` file under `dir` of the crate, sorted: (path relative to `dir`, text).
fn rs_files(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn src_files() -> Vec<(String, String)> {
    let files = rs_files("src");
    assert!(files.len() > 20, "found only {} files under src", files.len());
    files
}

/// Code lines only: comments (`//`, `///`, `//!`) are prose and may name any module.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")).map(|(n, l)| (n + 1, l))
}

fn stage(rel: &str) -> Option<usize> {
    let first = rel.split('/').next()?;
    ORDER.iter().position(|s| *s == first)
}

#[test]
fn lower_stages_never_import_higher_ones() {
    let mut bad = Vec::new();
    for (rel, text) in src_files() {
        let Some(me) = stage(&rel) else { continue };
        for (n, line) in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let name: String =
                    line[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if let Some(them) = ORDER.iter().position(|s| *s == name) {
                    if them > me {
                        bad.push(format!("src/{rel}:{n}: {} imports {}: {}", ORDER[me], name, line.trim()));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn unsafe_lives_only_in_sys() {
    let mut bad = Vec::new();
    for (rel, text) in src_files() {
        if rel.starts_with("sys/") {
            continue;
        }
        for (n, line) in code_lines(&text) {
            if line.contains("unsafe ") || line.contains("unsafe{") {
                bad.push(format!("src/{rel}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "unsafe outside src/sys/:\n{}", bad.join("\n"));
}

#[test]
fn every_unsafe_block_in_sys_has_a_safety_comment() {
    let mut bad = Vec::new();
    for (rel, text) in src_files().into_iter().filter(|(r, _)| r.starts_with("sys/")) {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap();
            if !(code.contains("unsafe {") || code.contains("unsafe{")) {
                continue;
            }
            // The SAFETY comment is on one of the few lines above (a multi-line comment may precede).
            let from = i.saturating_sub(6);
            if !lines[from..=i].iter().any(|l| l.contains("SAFETY")) {
                bad.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "unsafe without a SAFETY comment:\n{}", bad.join("\n"));
}

#[test]
fn no_source_file_over_about_600_lines() {
    let mut bad = Vec::new();
    for (rel, text) in src_files() {
        let is_tests = rel.ends_with("tests.rs") || rel.ends_with("_tests.rs");
        let n = text.lines().count();
        if !is_tests && n > 650 {
            bad.push(format!("src/{rel}: {n} lines"));
        }
    }
    // The integration tests, their lab and the examples are code too (no unit-test exception).
    for dir in ["tests", "examples", "fuzz/fuzz_targets"] {
        let files = rs_files(dir);
        assert!(!files.is_empty(), "no .rs files under {dir}");
        for (rel, text) in files {
            let n = text.lines().count();
            if n > 650 {
                bad.push(format!("{dir}/{rel}: {n} lines"));
            }
        }
    }
    assert!(bad.is_empty(), "files over ~600 lines:\n{}", bad.join("\n"));
}
