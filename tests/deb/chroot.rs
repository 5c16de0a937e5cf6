//! The Debian chroot the .deb tests install into: a cached debootstrap minbase, an overlay per
//! test so the cache stays pristine, and what apt and dpkg leave behind.

use super::*;

/// The host's Debian mirror (its apt sources), or MOAT_DEB_MIRROR, or deb.debian.org.
pub(super) fn mirror() -> String {
    if let Ok(m) = std::env::var("MOAT_DEB_MIRROR") {
        return m;
    }
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let from_deb822 =
        deb822.lines().filter_map(|l| l.strip_prefix("URIs:")).map(str::trim).find(|u| u.ends_with("/debian"));
    let legacy = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    let from_legacy = legacy.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 3 && w[0] == "deb" && w[1].ends_with("/debian")).then(|| w[1].to_string())
    });
    from_deb822.map(str::to_string).or(from_legacy).unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The cached minbase chroot (made by debootstrap on the first run; FAILS when it cannot be made).
pub(super) fn base_chroot() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deb-chroot");
        let dir = cache.join(format!("{}-minbase-nftables-systemd", suite()));
        let done = cache.join(format!("{}-minbase-nftables-systemd.done", suite()));
        if done.exists() && dir.join("usr/bin/dpkg").exists() {
            eprintln!("deb: reusing the Debian chroot {}", dir.display());
            return dir;
        }
        let deps = format!("source '{}' && ensure_apt debootstrap", repo().join("scripts/install-deps.sh").display());
        run_ok(Command::new("bash").args(["-c", &deps]));
        let partial = cache.join("partial");
        let _ = fs::remove_dir_all(&partial);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&cache).unwrap();
        let m = mirror();
        eprintln!("deb: debootstrap {} from {} into {} (first run only: ~2 min, ~240 MB)", suite(), m, dir.display());
        let start = std::time::Instant::now();
        let out = run(Command::new("debootstrap")
            .args(["--variant=minbase", "--include=nftables,systemd", &suite()])
            .arg(&partial)
            .arg(&m));
        assert!(
            out.status.success(),
            "debootstrap could not make a Debian {} chroot from {} (is the mirror reachable? set MOAT_DEB_MIRROR): {}\n{}",
            suite(),
            m,
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 20)
        );
        fs::rename(&partial, &dir).unwrap();
        write(&done, "");
        eprintln!("deb: chroot made in {} s", start.elapsed().as_secs());
        dir
    })
}

pub(super) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A writable overlay over the cached chroot, unmounted and removed when dropped.
pub(super) struct Overlay {
    dir: PathBuf,
}

impl Overlay {
    pub(super) fn new(lower: &Path) -> Overlay {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "deb-run-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        for d in ["upper", "work", "root"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        run_ok(Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(dir.join("root")));
        Overlay { dir }
    }
    pub(super) fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub(super) fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        // Right after a container's exit the mount can be busy for a moment.
        let unmounted = (0..10).any(|i| {
            if i > 0 {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            run(Command::new("umount").arg(self.root())).status.success()
        });
        if unmounted {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("deb: could not unmount {}; left in place", self.root().display());
        }
    }
}

/// Run `script` with the chroot's /bin/sh; it must succeed. Returns stdout.
pub(super) fn in_chroot(root: &Path, script: &str) -> String {
    let out = chroot_sh(root, script, &[("LC_ALL", "C"), ("DEBIAN_FRONTEND", "noninteractive")]);
    success_stdout(&format!("in the chroot: {}", script), &out)
}

/// Every path under `dir`, relative, with whether it is a directory, an overlay whiteout, or else.
pub(super) fn walk(dir: &Path) -> Vec<(String, char)> {
    fn go(base: &Path, p: &Path, out: &mut Vec<(String, char)>) {
        let mut names: Vec<PathBuf> = fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for q in names {
            let rel = q.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let md = fs::symlink_metadata(&q).unwrap();
            if md.is_dir() {
                out.push((rel, 'd'));
                go(base, &q, out);
            } else if md.file_type().is_char_device() && md.rdev() == 0 {
                out.push((rel, 'w'));
            } else {
                out.push((rel, 'f'));
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out
}

/// Files apt and dpkg keep (databases, caches, logs) and what `systemd-analyze verify` leaves in /run.
pub(super) const BOOKKEEPING: &[&str] = &[
    "var/cache/apt/archives/lock",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/cache/debconf/config.dat",
    "var/cache/debconf/passwords.dat",
    "var/cache/debconf/templates.dat",
    "var/lib/apt/extended_states",
    "var/lib/apt/lists/auxfiles", // (a directory: apt's place for local .deb files' indexes)
    "var/log/apt/eipp.log.xz",
    "var/log/apt/history.log",
    "var/log/apt/term.log",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/lock-frontend",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/triggers/Lock",
    "var/log/dpkg.log",
    "run/systemd/systemd-units-load",
];
