//! The LuCI app's files: every JS file passes `node --check`, every JSON file parses, the views
//! declare the LuCI modules they use, and the plugin script answers `list` with the binary's list.

use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt/luci-app-moat")
}

#[test]
fn js_files_pass_node_check() {
    let mut js = Vec::new();
    files(&app(), "js", &mut js);
    files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/harness"), "js", &mut js);
    js.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/run.js"));
    assert!(js.len() >= 7, "{js:?}");
    for f in &js {
        let out =
            std::process::Command::new("node").arg("--check").arg(f).output().expect("node (scripts/install-deps.sh)");
        assert!(out.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(f).unwrap();
        if f.to_string_lossy().contains("/view/moat/") {
            for m in ["'use strict';", "'require view';", "return view.extend({"] {
                assert!(text.contains(m), "{}: missing {m}", f.display());
            }
        }
    }
}

#[test]
fn json_files_parse() {
    let mut json = Vec::new();
    files(&app(), "json", &mut json);
    assert_eq!(json.len(), 2, "{json:?}");
    for f in &json {
        let t = std::fs::read_to_string(f).unwrap();
        serde_json::from_str::<serde_json::Value>(&t).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn plugin_script_lists_the_binarys_methods() {
    let out = std::process::Command::new(app().join("root/usr/libexec/rpcd/luci.moat"))
        .arg("list")
        .env("MOAT_BIN", env!("CARGO_BIN_EXE_moat"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for m in ["status", "devices", "check", "series"] {
        assert!(v[m].is_object(), "{v}");
    }
    let acl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(app().join("root/usr/share/rpcd/acl.d/luci-app-moat.json")).unwrap(),
    )
    .unwrap();
    let granted: Vec<&str> = acl["luci-app-moat"]["read"]["ubus"]["luci.moat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    let listed: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut g = granted.clone();
    g.sort();
    assert_eq!(g, listed, "the ACL grants exactly the plugin's methods");
}
