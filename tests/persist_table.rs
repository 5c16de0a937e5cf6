//! The owned, persistent nft table (netlink/nftables.rs) on this kernel, in a throwaway network
//! namespace: `nft delete table` and `nft flush ruleset` from another process leave it alone,
//! it survives its owner's SIGKILL, and the next process adopts, rewrites and removes it.
//! Needs root and Linux 6.9+ (skipped with a message on older kernels).

use moat::netlink::nftables::{Key, KillRule, NftError, OwnedTable, Unless};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHILD: &str = "MOAT_PERSIST_CHILD";

fn rules() -> Vec<KillRule> {
    vec![
        KillRule { key: Key::Mac([2, 0x6d, 0, 0, 0, 1]), unless: Unless::Oif(vec!["wgx0".into(), "br-lan".into()]) },
        KillRule { key: Key::Mac([2, 0x6d, 0, 0, 0, 2]), unless: Unless::Oif(vec![]) },
        KillRule { key: Key::Mac([2, 0x6d, 0, 0, 0, 2]), unless: Unless::Dport { l4proto: 17, ports: vec![67, 547] } },
        KillRule { key: Key::Source("10.64.0.2".parse().unwrap()), unless: Unless::Oif(vec!["wgx0".into()]) },
        KillRule { key: Key::Source("fd00::2".parse().unwrap()), unless: Unless::Oif(vec!["wgx0".into()]) },
    ]
}

/// Child mode: install, print "ready", then wait (to be killed) or, with "remove", remove and exit.
fn child(mode: &str) {
    let mut t = OwnedTable::open().unwrap();
    match t.install(&rules()) {
        Ok(()) => println!("ready"),
        Err(NftError::Unsupported(e)) => {
            println!("unsupported {e}");
            return;
        }
        Err(e) => panic!("install: {e}"),
    }
    if mode == "remove" {
        t.install(&rules()[..1]).unwrap();
        t.remove().unwrap();
        println!("removed");
        return;
    }
    std::thread::sleep(Duration::from_secs(60));
}

fn nft(ns: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("ip").args(["netns", "exec", ns, "nft"]).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

fn spawn(ns: &str, mode: &str) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", "owned_table_survives_flush_and_sigkill", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn read_until(c: &mut Child, word: &str) -> String {
    use std::io::{BufRead, BufReader};
    let out = c.stdout.as_mut().unwrap();
    let mut r = BufReader::new(out);
    let mut all = String::new();
    let mut l = String::new();
    while r.read_line(&mut l).unwrap() > 0 {
        all.push_str(&l);
        if l.contains(word) || l.contains("unsupported") {
            break;
        }
        l.clear();
    }
    all
}

#[test]
fn owned_table_survives_flush_and_sigkill() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode);
    }
    let ns = format!("moatpersist{}", std::process::id());
    assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = Del(ns.clone());
    let mut owner = spawn(&ns, "wait");
    let out = read_until(&mut owner, "ready");
    if out.contains("unsupported") {
        eprintln!("SKIPPED: {out}");
        let _ = owner.wait();
        return;
    }
    assert!(out.contains("ready"), "{out}");
    let (ok, listing) = nft(&ns, &["list", "table", "inet", "moat_persist"]);
    assert!(ok, "{listing}");
    eprintln!("{listing}");
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-9", &self.0.to_string()]).status();
        }
    }
    let _kill = Kill(owner.id());
    assert!(
        listing.contains("ether saddr 02:6d:00:00:00:01 oifname != \"wgx0\" oifname != \"br-lan\" drop"),
        "{listing}"
    );
    assert!(listing.contains("ether saddr 02:6d:00:00:00:02 drop"), "{listing}");
    assert!(listing.contains("ip saddr 10.64.0.2 oifname != \"wgx0\" drop"), "{listing}");
    // the tunnel-address check runs after srcnat (what NAT rewrites to the tunnel address counts)
    let post = listing.split("chain kill_postrouting {").nth(1).unwrap_or("");
    assert!(post.contains("type filter hook postrouting priority srcnat + 10;"), "{listing}");
    assert!(post.split('}').next().unwrap_or("").contains("ip saddr 10.64.0.2"), "{listing}");
    assert!(listing.contains("ip6 saddr fd00::2 oifname != \"wgx0\" drop"), "{listing}");
    assert!(listing.contains("type nat hook postrouting priority srcnat; policy accept;"), "{listing}");
    assert!(listing.contains("ether saddr 02:6d:00:00:00:02 udp dport != 67 udp dport != 547 drop"), "{listing}");
    let (ok, msg) = nft(&ns, &["delete", "table", "inet", "moat_persist"]);
    assert!(!ok, "another process deleted the owned table: {msg}");
    let (ok, msg) = nft(&ns, &["flush", "ruleset"]);
    assert!(ok, "flush ruleset: {msg}");
    assert!(nft(&ns, &["list", "table", "inet", "moat_persist"]).0, "flush ruleset removed the owned table");
    owner.kill().unwrap(); // SIGKILL
    owner.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (ok, listing) = nft(&ns, &["list", "table", "inet", "moat_persist"]);
    assert!(ok && listing.contains("ether saddr 02:6d:00:00:00:02 drop"), "gone after the owner's SIGKILL: {listing}");
    // the next process adopts, rewrites and removes it
    let mut next = spawn(&ns, "remove");
    let out = read_until(&mut next, "removed");
    next.wait().unwrap();
    assert!(out.contains("removed"), "{out}");
    assert!(!nft(&ns, &["list", "table", "inet", "moat_persist"]).0, "removed");
}
