//! A throwaway network namespace for the tests that load rule sets into a real kernel (golden,
//! guard_nft): `moat-<kind>-<pid>-<tag>`, deleted when dropped, also on panic.

use std::process::{Command, Stdio};

/// A network namespace deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// Create `moat-<kind>-<pid>-<tag>`. Panics without `ip` or when it fails.
    pub fn new(kind: &str, tag: &str) -> Netns {
        let name = format!("moat-{kind}-{}-{tag}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("`ip` (iproute2) is required for this test");
        assert!(st.success(), "ip netns add {name} failed");
        Netns(name)
    }

    /// Run `prog args` inside with `stdin`: (exit success, stdout then stderr).
    pub fn run(&self, prog: &str, args: &[&str], stdin: &str) -> (bool, String) {
        use std::io::Write;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.0, prog])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
