//! The commands of README's "First configuration" do what it says: its `uci` blocks are run, in
//! order, by a small emulation of `uci set/add/add_list/commit` (new sections only: a command
//! naming a section the blocks did not create fails the test) on the installed
//! `/etc/config/moat` and OpenWrt's default firewall; before the firewall block `moat check`
//! warns that `wg0` is in no zone, after it the check is clean and its verdict is the one the
//! README shows. (`uci` itself, the router and tor are not here: what the emulation cannot
//! show is listed in the lead's report.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The indented command lines of the README part between `## First configuration` and the next
/// `## ` heading, as written (comments after `#` removed).
fn first_configuration_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("\n## First configuration\n").expect("README has a First configuration part");
    let part = &readme[start + 1..];
    let part = &part[..part[3..].find("\n## ").map_or(part.len(), |e| e + 3)];
    part.lines()
        .filter_map(|l| l.strip_prefix("    "))
        .map(|l| l.split(" #").next().unwrap().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[derive(Default)]
struct Section {
    kind: String,
    name: Option<String>,
    lines: Vec<String>,
}

/// New sections per package, in creation order.
#[derive(Default)]
struct Uci {
    packages: Vec<(String, Vec<Section>)>,
}

fn unquote(v: &str) -> String {
    v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v).to_string()
}

impl Uci {
    fn pkg(&mut self, p: &str) -> &mut Vec<Section> {
        if !self.packages.iter().any(|(n, _)| n == p) {
            self.packages.push((p.to_string(), Vec::new()));
        }
        &mut self.packages.iter_mut().find(|(n, _)| n == p).unwrap().1
    }
    /// `name` or `@type[-1]`/`@type[N]` among the sections created here.
    fn section<'a>(secs: &'a mut [Section], s: &str) -> &'a mut Section {
        if let Some(rest) = s.strip_prefix('@') {
            let (kind, idx) = rest.strip_suffix(']').and_then(|r| r.split_once('[')).expect("@type[n]");
            let mut of: Vec<&mut Section> = secs.iter_mut().filter(|x| x.kind == kind).collect();
            let i: i64 = idx.parse().unwrap();
            let i = if i < 0 { of.len() as i64 + i } else { i };
            of.remove(usize::try_from(i).unwrap_or_else(|_| panic!("no section {s}")))
        } else {
            secs.iter_mut().find(|x| x.name.as_deref() == Some(s)).unwrap_or_else(|| panic!("no section {s}"))
        }
    }
    fn run(&mut self, cmd: &str) -> Option<String> {
        // `uci <op> <argument>`: the argument may hold quoted blanks.
        let mut words: Vec<&str> = cmd.splitn(3, ' ').collect();
        if words.get(1).is_some_and(|w| *w == "add") {
            words = cmd.split_whitespace().collect();
        }
        match words.as_slice() {
            ["uci", "add", p, kind] => {
                self.pkg(p).push(Section { kind: kind.to_string(), ..Default::default() });
            }
            ["uci", op @ ("set" | "add_list"), arg] => {
                let (path, value) = arg.split_once('=').expect("uci set needs =");
                let value = unquote(value);
                let parts: Vec<&str> = path.splitn(3, '.').collect();
                let secs = self.pkg(parts[0]);
                match (parts.len(), *op) {
                    (2, "set") => secs.push(Section { kind: value, name: Some(parts[1].into()), ..Default::default() }),
                    (3, _) => {
                        let kw = if *op == "set" { "option" } else { "list" };
                        Uci::section(secs, parts[1]).lines.push(format!("\t{kw} {} '{value}'", parts[2]));
                    }
                    _ => panic!("unsupported: {cmd}"),
                }
            }
            ["uci", "commit", p] => {
                let secs = std::mem::take(self.pkg(p));
                let mut text = String::new();
                for s in secs {
                    text.push_str(&format!("\nconfig {}", s.kind));
                    if let Some(n) = &s.name {
                        text.push_str(&format!(" '{n}'"));
                    }
                    text.push('\n');
                    for l in &s.lines {
                        text.push_str(l);
                        text.push('\n');
                    }
                }
                return Some(text);
            }
            _ => panic!("not a uci command this emulation knows: {cmd}"),
        }
        None
    }
}

fn check(dir: &Path, facts: &Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["check", "--quiet", "--config"])
        .arg(dir.join("moat"))
        .arg("--facts")
        .arg(facts)
        .arg("--uci-dir")
        .arg(dir)
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A router as installed: the shipped moat config, OpenWrt's default firewall, a network with
/// `wg0`, and interface facts (br-lan and wg0 up).
fn fresh_router(tag: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("openwrt/moat/files/moat.config"), dir.join("moat")).unwrap();
    std::fs::copy(root().join("tests/fwcheck/firewall-default.conf"), dir.join("firewall")).unwrap();
    std::fs::copy(root().join("tests/fwcheck/network-wg.conf"), dir.join("network")).unwrap();
    let facts = dir.join("facts");
    std::fs::write(
        &facts,
        "nft_queue=1\ninterface=br-lan state=up mtu=1500 addr=192.168.1.1/24\ninterface=wg0 state=up mtu=1420 addr=10.64.0.2/32\n",
    )
    .unwrap();
    (dir, facts)
}

/// Run the README's `uci` commands whose package passes `which`; returns how many commits.
fn run_uci(dir: &Path, cmds: &[String], which: impl Fn(&str) -> bool) -> usize {
    let mut uci = Uci::default();
    let mut commits = 0;
    for c in cmds.iter().filter(|c| c.starts_with("uci ")) {
        let pkg = c.split_whitespace().nth(2).unwrap().split('.').next().unwrap();
        if !which(pkg) {
            continue;
        }
        if let Some(text) = uci.run(c) {
            let mut f = std::fs::read_to_string(dir.join(pkg)).unwrap();
            f.push_str(&text);
            std::fs::write(dir.join(pkg), f).unwrap();
            commits += 1;
        }
    }
    commits
}

#[test]
fn without_the_firewall_step_moat_check_prints_the_readme_fix() {
    let cmds = first_configuration_commands();
    let (dir, facts) = fresh_router("nofw");
    assert_eq!(run_uci(&dir, &cmds, |p| p == "moat"), 1);
    let (code, out) = check(&dir, &facts);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: tunnel 'vpn' (wireguard device wg0): the device is in no firewall zone"), "{out}");
    // Every firewall command of the README is a line of the fix moat prints, in the same order.
    let fw: Vec<&String> = cmds.iter().filter(|c| c.contains("firewall")).collect();
    assert!(fw.len() >= 10, "{fw:?}");
    let mut at = 0;
    for c in fw {
        let l = format!("    {c}\n");
        let pos =
            out[at..].find(&l).unwrap_or_else(|| panic!("README's '{c}' is not (in order) in moat's fix:\n{out}"));
        at += pos + l.len();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn first_configuration_commands_give_the_verdict_shown() {
    let cmds = first_configuration_commands();
    let (dir, facts) = fresh_router("all");
    assert_eq!(run_uci(&dir, &cmds, |_| true), 2, "firewall and moat commits: {cmds:?}");
    let (code, out) = check(&dir, &facts);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("warning:"), "the README's configuration still warns:\n{out}");
    let shown = cmds.iter().find(|c| c.starts_with("moat check --quiet")).expect("README shows `moat check --quiet`");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let shown = readme
        .lines()
        .find(|l| l.trim_start().starts_with(shown.as_str()) && l.contains("the verdict: "))
        .and_then(|l| l.split("the verdict: ").nth(1))
        .expect("README shows the verdict after `moat check --quiet`");
    assert_eq!(out.lines().last(), Some(shown.trim()), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
