//! Reads the hostile fixtures' `# expect: line N option NAME` headers (shared by
//! tests/model_hostile.rs and tests/check_cli.rs).

use std::path::{Path, PathBuf};

/// (path, expected line, expected option) of every fixture.
pub fn fixtures() -> Vec<(PathBuf, usize, Option<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/hostile exists") {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("conf") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        let exp = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: line "))
            .unwrap_or_else(|| panic!("{} has no '# expect:' header", p.display()));
        let mut it = exp.split(" option ");
        let line: usize = it.next().unwrap().parse().unwrap();
        let opt = it.next().unwrap().trim();
        out.push((p, line, (opt != "-").then(|| opt.to_string())));
    }
    out.sort();
    out
}
