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

/// `scripts/build-luci-ipk.sh` makes `luci-app-moat_<v>_all.ipk`: an ipkg tar.gz whose control says
/// it depends on `moat` and `luci-base` and `Architecture: all`, and whose data holds the views, menu, ACL and plugin.
#[test]
fn luci_ipk_builds_with_its_depends_and_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("luci-ipk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let st =
        std::process::Command::new(root.join("scripts/build-luci-ipk.sh")).arg("--out").arg(&out).status().unwrap();
    assert!(st.success());
    let ipk: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(ipk.len(), 1, "{ipk:?}");
    let name = ipk[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("luci-app-moat_") && name.ends_with("_all.ipk"), "{name}");
    let sh = |cmd: &str| {
        let o = std::process::Command::new("sh").arg("-c").arg(cmd).current_dir(&out).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    sh(&format!("tar -xzf '{name}'"));
    let control = sh("tar -xzOf control.tar.gz ./control");
    let depends = control.lines().find_map(|l| l.strip_prefix("Depends: ")).unwrap_or_default();
    let depends: Vec<&str> = depends.split(", ").collect();
    assert!(depends.contains(&"moat") && depends.contains(&"luci-base"), "{control}");
    assert!(control.lines().any(|l| l == "Architecture: all"), "{control}");
    let data = sh("tar -tzf data.tar.gz");
    for f in [
        "./www/luci-static/resources/view/moat/devices.js",
        "./www/luci-static/resources/view/moat/status.js",
        "./usr/share/luci/menu.d/luci-app-moat.json",
        "./usr/share/rpcd/acl.d/luci-app-moat.json",
        "./usr/libexec/rpcd/luci.moat",
    ] {
        assert!(data.lines().any(|l| l == f), "{f} missing from data.tar.gz:\n{data}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
