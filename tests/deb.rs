//! The .deb packages made by `scripts/build-deb.sh` for the WireGuard server side.
//!
//! Both packages (amd64, arm64) are built once per run: from `$MOAT_PREBUILT_DIR/<triple>/release/moat`
//! when scripts/test.sh's build stage set it, else from `scripts/cross.sh` (which rebuilds only what
//! changed; without the cross toolchain this test FAILS, it does not skip). Checked: the deb layout,
//! control fields (Version from Cargo.toml, Installed-Size recomputed), conffiles, md5sums, maintainer
//! scripts, owners, modes and mtimes of every file, that /usr/bin/moat is a static ELF of the right
//! machine that runs (arm64 under qemu-user), that the build is byte-for-byte reproducible, and the
//! unit's settings.
//!
//! Then the amd64 package goes into a Debian chroot (debootstrap minbase with nftables and systemd,
//! cached under target/tmp/deb-chroot; an overlay per test keeps the cache pristine):
//! - chroot: `apt-get install ./moat_<v>_amd64.deb` (README's way), `systemd-analyze verify` (must print nothing) and `security --offline` on the installed
//!   unit, the binary runs, the unit is not enabled, a reinstall keeps an edited conffile and an
//!   admin's `systemctl enable`, remove keeps only the conffile, purge leaves nothing (every file the
//!   overlay's upper layer holds afterwards is apt's and dpkg's own bookkeeping);
//! - the same chroot booted with systemd as PID 1 (`systemd-nspawn -b`, its own network namespace):
//!   installing starts nothing; the unit's sandbox seen from its main process (capabilities, no new
//!   privileges, seccomp, read-only /etc and /usr, writable state and runtime dirs, hidden /home,
//!   private /tmp, address families); the shipped unit runs moat and restarts it; a reinstall
//!   restarts a running service, removal stops it.
//!
//! Costs: the first run's debootstrap 50-115 s and 241 MB (bookworm, 2 busy cores); later runs ~10 s
//! (the boot ~8 s). Needs root (chroot, mount, nspawn), debootstrap and systemd-container (installed
//! through scripts/install-deps.sh when missing), a reachable Debian mirror on the first run
//! (MOAT_DEB_MIRROR, default the host's apt mirror; MOAT_DEB_SUITE, default bookworm),
//! qemu-user-static, binutils (ar), md5sum.

#[path = "deb/chroot.rs"]
mod chroot;
mod pkg;

use chroot::*;
use pkg::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// (Debian arch, Rust target, ELF e_machine, qemu-user runner or none).
const ARCHS: &[(&str, &str, u16, Option<&str>)] = &[
    ("amd64", "x86_64-unknown-linux-musl", 62, None),
    ("arm64", "aarch64-unknown-linux-musl", 183, Some("qemu-aarch64-static")),
];

/// The Debian release of the test chroot (MOAT_DEB_SUITE).
fn suite() -> String {
    std::env::var("MOAT_DEB_SUITE").unwrap_or_else(|_| "bookworm".into())
}

/// The binaries' directory: `$MOAT_PREBUILT_DIR`, else the cross builds, made now.
fn prebuilt_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MOAT_PREBUILT_DIR") {
        eprintln!("deb: packaging the prebuilt binaries under {} (MOAT_PREBUILT_DIR)", d.to_string_lossy());
        return PathBuf::from(d);
    }
    eprintln!(
        "deb: MOAT_PREBUILT_DIR is not set: building the x86_64 and aarch64 release binaries with scripts/cross.sh"
    );
    let mut dir = None;
    for &(_, triple, _, _) in ARCHS {
        let out = run_ok(Command::new(repo().join("scripts/cross.sh")).args([triple, "build"]));
        let bin = PathBuf::from(out.lines().last().expect("cross.sh printed no path"));
        // <dir>/<triple>/release/moat
        dir = Some(bin.parent().unwrap().parent().unwrap().parent().unwrap().to_path_buf());
    }
    dir.unwrap()
}

/// Run scripts/build-deb.sh into `out` with the binaries of `bins`; `prefix` is a shell prefix.
fn build_debs(out: &Path, bins: &Path, prefix: &str) {
    let script = format!("{} exec \"$0\" --out \"$1\"", prefix);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).arg(repo().join("scripts/build-deb.sh")).arg(out).env("MOAT_PREBUILT_DIR", bins);
    eprint!("{}", run_ok(&mut cmd));
}

/// (output dir, binaries dir): both packages, built once per test run.
fn built() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let bins = prebuilt_dir();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deb");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        build_debs(&dir, &bins, "");
        (dir, bins)
    })
}

fn deb_path(dir: &Path, arch: &str) -> PathBuf {
    dir.join(format!("moat_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch))
}

fn dpkg_deb(args: &[&str], deb: &Path) -> Vec<u8> {
    let out = run(Command::new("dpkg-deb").args(args).arg(deb));
    success_stdout(&format!("dpkg-deb {:?} {}", args, deb.display()), &out);
    out.stdout
}

/// data.tar members in archive order: (name, mode, source in packaging/debian, or the binary).
const DATA: &[(&str, u32, Option<&str>)] = &[
    ("./", 0o755, None),
    ("./etc/", 0o755, None),
    ("./etc/moat/", 0o755, None),
    ("./etc/moat/companion", 0o644, Some("companion")),
    ("./usr/", 0o755, None),
    ("./usr/bin/", 0o755, None),
    ("./usr/bin/moat", 0o755, None),
    ("./usr/lib/", 0o755, None),
    ("./usr/lib/systemd/", 0o755, None),
    ("./usr/lib/systemd/system/", 0o755, None),
    ("./usr/lib/systemd/system/moat-companion.service", 0o644, Some("moat-companion.service")),
    ("./usr/share/", 0o755, None),
    ("./usr/share/doc/", 0o755, None),
    ("./usr/share/doc/moat/", 0o755, None),
    ("./usr/share/doc/moat/copyright", 0o644, Some("copyright")),
];

fn packaging(name: &str) -> Vec<u8> {
    let p = repo().join("packaging/debian").join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {}", p.display(), e))
}

#[test]
fn every_deb_has_its_fields_files_modes_and_static_binary() {
    let (dir, _) = built();
    let epoch: u64 =
        String::from_utf8(run(Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(repo())).stdout)
            .unwrap()
            .trim()
            .parse()
            .expect("commit time of HEAD");
    for &(arch, _, machine, qemu) in ARCHS {
        let deb = deb_path(dir, arch);
        // ar members, in the order dpkg requires.
        let members = run_ok(Command::new("ar").arg("t").arg(&deb));
        assert_eq!(members.lines().collect::<Vec<_>>(), ["debian-binary", "control.tar.xz", "data.tar.xz"], "{}", arch);

        let data = read_tar(&dpkg_deb(&["--fsys-tarfile"], &deb));
        let control = read_tar(&dpkg_deb(&["--ctrl-tarfile"], &deb));
        for e in data.iter().chain(&control) {
            assert_eq!(
                (e.uid, e.gid, e.uname.as_str(), e.gname.as_str()),
                (0, 0, "root", "root"),
                "{} {}",
                arch,
                e.name
            );
            assert_eq!(e.mtime, epoch, "{} {}: mtime is not SOURCE_DATE_EPOCH (the commit time)", arch, e.name);
        }
        let got: Vec<(&str, u32)> = data.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        let want: Vec<(&str, u32)> = DATA.iter().map(|&(n, m, _)| (n, m)).collect();
        assert_eq!(got, want, "{}: data members", arch);
        for &(name, _, src) in DATA {
            let e = member(&data, name);
            assert_eq!(e.kind, if name.ends_with('/') { b'5' } else { b'0' }, "{} {}", arch, name);
            if let Some(src) = src {
                assert!(e.data == packaging(src), "{} {}: not packaging/debian/{}", arch, name, src);
            }
        }

        // The binary: static ELF of this architecture, and it runs.
        let bin = &member(&data, "./usr/bin/moat").data;
        let elf = read_elf(bin);
        assert_eq!((elf.machine, elf.bits, elf.big_endian), (machine, 64, false), "{}: {:?}", arch, elf);
        assert!(!elf.has_interp && elf.needed == 0, "{}: not static: {:?}", arch, elf);
        let scratch = TempDir::new("deb-bin");
        let exe = scratch.path().join("moat");
        install_bytes(bin, &exe, 0o755);
        let mut cmd = match qemu {
            Some(q) => {
                let mut c = Command::new(q);
                c.arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let ver = run_ok(cmd.arg("version"));
        assert_eq!(ver.trim(), format!("moat {}", env!("CARGO_PKG_VERSION")), "{}", arch);

        // Control archive and fields.
        let cnames: Vec<(&str, u32)> = control.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            cnames,
            [
                ("./", 0o755),
                ("./conffiles", 0o644),
                ("./control", 0o644),
                ("./md5sums", 0o644),
                ("./postinst", 0o755),
                ("./postrm", 0o755),
                ("./prerm", 0o755),
            ],
            "{}",
            arch
        );
        assert_eq!(member(&control, "./conffiles").data, b"/etc/moat/companion\n", "{}", arch);
        for s in ["postinst", "postrm", "prerm"] {
            assert!(
                member(&control, &format!("./{}", s)).data == packaging(s),
                "{}: {} is not packaging/debian/{}",
                arch,
                s,
                s
            );
        }
        let fields = control_fields(&String::from_utf8(member(&control, "./control").data.clone()).unwrap());
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Package",
                "Version",
                "Architecture",
                "Maintainer",
                "Installed-Size",
                "Depends",
                "Section",
                "Priority",
                "Description"
            ],
            "{}",
            arch
        );
        let field = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(field("Package"), "moat");
        assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(field("Architecture"), arch);
        assert_eq!(field("Depends"), "nftables");
        assert!(field("Maintainer").contains('<') && field("Maintainer").ends_with('>'), "{}", field("Maintainer"));
        // Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory.
        let kib: u64 = data
            .iter()
            .filter(|e| e.name != "./")
            .map(|e| if e.kind == b'0' { (e.data.len() as u64).div_ceil(1024) } else { 1 })
            .sum();
        assert_eq!(field("Installed-Size"), kib.to_string(), "{}", arch);
        let desc = field("Description");
        assert!(desc.lines().count() > 3 && desc.contains("moat companion"), "{}: {}", arch, desc);
        // dpkg-deb's own reading of the fields agrees.
        assert_eq!(
            String::from_utf8(dpkg_deb(&["-f"], &deb)).unwrap(),
            String::from_utf8(member(&control, "./control").data.clone()).unwrap()
        );

        // md5sums: every file but the conffile, each sum right.
        let sums = String::from_utf8(member(&control, "./md5sums").data.clone()).unwrap();
        let listed: Vec<&str> = sums.lines().map(|l| l.split_once("  ").expect("md5sum line").1).collect();
        let files: Vec<&str> = DATA
            .iter()
            .filter(|(n, _, _)| !n.ends_with('/') && *n != "./etc/moat/companion")
            .map(|(n, _, _)| n.trim_start_matches("./"))
            .collect();
        assert_eq!(listed, files, "{}: md5sums", arch);
        let root = TempDir::new("deb-data");
        extract(&data, root.path());
        write(&root.path().join("md5sums"), &sums);
        run_ok(Command::new("md5sum").args(["--quiet", "-c", "md5sums"]).current_dir(root.path()));

        eprintln!("deb: {}: {} bytes, Installed-Size {} KiB", arch, fs::metadata(&deb).unwrap().len(), kib);
    }
}

fn install_bytes(data: &[u8], dst: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::write(dst, data).unwrap();
    fs::set_permissions(dst, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_build_is_reproducible() {
    let (dir, bins) = built();
    let again = TempDir::new("deb-again");
    // A different umask and a later wall clock must not change a byte.
    build_debs(again.path(), bins, "umask 077;");
    for &(arch, ..) in ARCHS {
        let a = fs::read(deb_path(dir, arch)).unwrap();
        let b = fs::read(deb_path(again.path(), arch)).unwrap();
        assert!(a == b, "{}: two builds of the same inputs differ", arch);
    }
}

/// `Key=value` lines of the unit's `[Service]` section.
fn service_settings() -> Vec<(String, String)> {
    let text = String::from_utf8(packaging("moat-companion.service")).unwrap();
    let mut in_service = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').expect("Key=value");
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

#[test]
fn the_unit_restarts_always_and_keeps_two_capabilities() {
    let s = service_settings();
    let get = |k: &str| -> Vec<&str> { s.iter().filter(|(f, _)| f == k).map(|(_, v)| v.as_str()).collect() };
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(exec[0].starts_with("/usr/bin/moat companion"), "{}", exec[0]);
    assert_eq!(get("Restart"), ["always"]);
    for k in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        assert_eq!(get(k), ["CAP_NET_ADMIN CAP_NET_RAW"], "{}", k);
    }
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "moat"),
        ("RuntimeDirectory", "moat"),
        ("RestrictAddressFamilies", "AF_NETLINK AF_PACKET AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(get(k), [v], "{}", k);
    }
    // The state dir it is told to use is the one systemd makes writable.
    assert!(exec[0].contains("--state-dir /run/moat"), "{}", exec[0]);
    // Nothing in the maintainer scripts enables or starts it on a first install.
    let postinst = String::from_utf8(packaging("postinst")).unwrap();
    for line in postinst.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("systemctl enable") && !line.contains("invoke start"), "postinst: {}", line);
    }
}

#[test]
fn installs_reinstalls_removes_and_purges_cleanly_in_a_debian_chroot() {
    let (dir, _) = built();
    let lower = base_chroot();
    let start = std::time::Instant::now();
    let ov = Overlay::new(lower);
    let root = ov.root();
    let deb_name = format!("moat_{}_amd64.deb", env!("CARGO_PKG_VERSION"));
    fs::copy(deb_path(dir, "amd64"), root.join("tmp").join(&deb_name)).unwrap();
    let unit = "/usr/lib/systemd/system/moat-companion.service";

    // README's way: apt installs the file (nftables, its dependency, is in the chroot already).
    let log = in_chroot(&root, &format!("apt-get install -y /tmp/{} 2>&1", deb_name));
    eprint!("{}", log);
    assert_eq!(
        in_chroot(&root, "dpkg-query -W -f='${Status} ${Version}' moat"),
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(in_chroot(&root, "moat version").trim(), format!("moat {}", env!("CARGO_PKG_VERSION")));
    let usage = in_chroot(&root, "moat help");
    if usage.contains("companion") {
        let help = in_chroot(&root, "moat companion --help");
        assert!(help.contains("companion"), "moat companion --help: {}", help);
    } else {
        eprintln!("deb: this moat has no `companion` command yet: checked `moat version` only");
    }
    let conffiles = in_chroot(&root, "dpkg-query -W -f='${Conffiles}' moat");
    assert!(conffiles.trim().starts_with("/etc/moat/companion "), "{}", conffiles);
    assert!(fs::read(root.join("etc/moat/companion")).unwrap() == packaging("companion"));

    // The installed unit, as systemd on this Debian reads it.
    let verify = chroot_sh(&root, &format!("systemd-analyze verify {}", unit), &[]);
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{}",
        unit,
        verify.status,
        said
    );
    let security = in_chroot(&root, &format!("systemd-analyze security --offline=yes --no-pager {} 2>&1", unit));
    let level = security
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for moat-companion.service: "))
        .and_then(|(_, v)| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{}", security));
    eprintln!("deb: systemd-analyze security: exposure {} (0 safest, 10 unsafe)", level);
    assert!(level <= 3.0, "exposure {} above 3.0:\n{}", level, security);

    // Not enabled, nothing started by the package.
    assert_eq!(chroot_sh(&root, "systemctl is-enabled moat-companion.service", &[]).stdout, b"disabled\n");

    // An admin configures and enables it; a reinstall (the upgrade path) keeps both.
    let edited = "config companion 'main'\n\toption device 'wg7'\n";
    write(&root.join("etc/moat/companion"), edited);
    in_chroot(&root, "systemctl enable moat-companion.service 2>&1");
    in_chroot(&root, &format!("dpkg -i /tmp/{}", deb_name));
    assert_eq!(
        fs::read_to_string(root.join("etc/moat/companion")).unwrap(),
        edited,
        "reinstall replaced the edited conffile"
    );
    assert!(!root.join("etc/moat/companion.dpkg-dist").exists());
    assert_eq!(chroot_sh(&root, "systemctl is-enabled moat-companion.service", &[]).stdout, b"enabled\n");
    // What the service would leave behind (StateDirectory=moat).
    write(&root.join("var/lib/moat/state"), "x\n");

    // remove: the binary and unit go, the edited conffile stays.
    in_chroot(&root, "apt-get remove -y moat 2>&1");
    assert_eq!(in_chroot(&root, "dpkg-query -W -f='${Status}' moat"), "deinstall ok config-files");
    for gone in ["usr/bin/moat", &unit[1..], "usr/share/doc/moat"] {
        assert!(!root.join(gone).exists(), "{} left after dpkg -r", gone);
    }
    assert_eq!(fs::read_to_string(root.join("etc/moat/companion")).unwrap(), edited);

    // purge: nothing left but dpkg's own records.
    in_chroot(&root, "apt-get purge -y moat 2>&1");
    fs::remove_file(root.join("tmp").join(&deb_name)).unwrap();
    let status = chroot_sh(&root, "dpkg-query -W -f='${Status}' moat", &[]);
    let states = fs::read_to_string(root.join("var/lib/apt/extended_states")).unwrap_or_default();
    assert!(!states.contains("Package: moat"), "apt still remembers moat:\n{}", states);
    assert!(!status.status.success() || status.stdout.is_empty(), "still known to dpkg: {:?}", status);
    let mut left = Vec::new();
    for (path, kind) in walk(&ov.upper()) {
        match kind {
            'd' if lower.join(&path).is_dir() => {} // copied up because something inside changed
            'f' | 'd' if BOOKKEEPING.contains(&path.as_str()) => {}
            'd' => left.push(format!("new directory /{}", path)),
            'w' => left.push(format!("deleted system file /{}", path)),
            _ => left.push(format!("/{}", path)),
        }
    }
    assert!(left.is_empty(), "after purge, the chroot differs from before the install:\n{}", left.join("\n"));
    eprintln!("deb: install, reinstall, remove, purge in the chroot: {} ms", start.elapsed().as_millis());
}

// ---------------------------------------------------------------------------------------------
// The service under systemd: the chroot booted as a container

/// Run by `moat-probe.service` at the container's boot: installs the package and drives the unit
/// through systemd, writing `key=value` lines to /probe.out; then powers the container off.
const PROBE: &str = r#"#!/bin/sh
out=/probe.out
u=moat-companion.service
say() { echo "$1=$2" >>$out; }
show() { systemctl show -p "$1" --value $u; }
dropin() { mkdir -p /run/systemd/system/$u.d; printf '[Service]\nExecStart=\nExecStart=%s\n%s\n' "$1" "$2" >/run/systemd/system/$u.d/probe.conf; systemctl daemon-reload; }
# wait_state STATE: up to 10 s
wait_state() { i=0; while [ "$(show ActiveState)" != "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; }
: >$out
dpkg -i /root/moat.deb >/probe.dpkg 2>&1; say install $?
say enabled "$(systemctl is-enabled $u)"
say active "$(systemctl is-active $u)"

# The sandbox seen from inside: the unit with a shell in moat's place.
perl -e 'socket(my $s, 40, 1, 0) ? print "vsock_outside=allowed\n" : print "vsock_outside=denied\n"' >>$out
echo marker >/tmp/outside-marker
dropin "/bin/sh /usr/local/lib/moat-probe/sandbox.sh" "Restart=no"
systemctl start $u; sleep 0.5; wait_state inactive
say sandbox_result "$(show Result)"
sed 's/^/sandbox_/' /var/lib/moat/sandbox.out >>$out

# The unit as shipped: systemd sets up its sandbox and runs moat (exit codes 200-243 would be
# systemd's own failures to do so), and restarts it when it exits.
rm -r /run/systemd/system/$u.d; systemctl daemon-reload
systemctl start $u; sleep 5
say real_state "$(show ActiveState)"
say real_code "$(show ExecMainCode)"
say real_status "$(show ExecMainStatus)"
say real_restarts "$(show NRestarts)"
systemctl stop $u

# A running service: an upgrade (reinstall) restarts it, removal stops it.
dropin "/bin/sleep 600" ""
systemctl start $u; wait_state active
pid1=$(show MainPID)
dpkg -i /root/moat.deb >>/probe.dpkg 2>&1; say reinstall $?
wait_state active
pid2=$(show MainPID)
[ "$pid1" != "$pid2" ] && [ -d /proc/$pid2 ] && ! [ -d /proc/$pid1 ] && say upgrade_restarted yes || say upgrade_restarted "no ($pid1 -> $pid2)"
dpkg -r moat >>/probe.dpkg 2>&1; say remove $?
[ -d /proc/$pid2 ] && say removal_stopped no || say removal_stopped yes
rm -r /run/systemd/system/$u.d; systemctl daemon-reload
dpkg -P moat >>/probe.dpkg 2>&1; say purge $?
say done yes
systemctl --no-block poweroff
"#;

/// What the unit's main process finds (run in moat's place, under the unit's settings).
const SANDBOX: &str = r#"#!/bin/sh
o=/var/lib/moat/sandbox.out
{
	grep -E '^(CapBnd|CapEff|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
	echo "uid=$(id -u)"
	for d in /etc /usr /var/lib/moat /run/moat; do
		touch "$d/probe" 2>/dev/null && echo "write$d=yes" || echo "write$d=no"
	done
	ls /root >/dev/null 2>&1 && echo home=visible || echo home=hidden
	[ -e /tmp/outside-marker ] && echo tmp=shared || echo tmp=private
	perl -e 'socket(my $s, 40, 1, 0) ? print "vsock=allowed\n" : print "vsock=denied\n"'
	perl -e 'socket(my $s, 16, 3, 0) ? print "netlink=allowed\n" : print "netlink=denied\n"'
} >$o 2>&1
"#;

#[test]
fn the_service_starts_sandboxed_restarts_and_stops_under_systemd() {
    let (dir, _) = built();
    let lower = base_chroot();
    let deps = format!("source '{}' && ensure_apt systemd-container", repo().join("scripts/install-deps.sh").display());
    run_ok(Command::new("bash").args(["-c", &deps]));
    let start = std::time::Instant::now();
    let ov = Overlay::new(lower);
    let root = ov.root();
    fs::copy(deb_path(dir, "amd64"), root.join("root/moat.deb")).unwrap();
    install_bytes(PROBE.as_bytes(), &root.join("usr/local/lib/moat-probe/probe.sh"), 0o755);
    install_bytes(SANDBOX.as_bytes(), &root.join("usr/local/lib/moat-probe/sandbox.sh"), 0o755);
    write(
        &root.join("etc/systemd/system/moat-probe.service"),
        "[Unit]\nAfter=multi-user.target\n[Service]\nType=oneshot\nExecStart=/usr/local/lib/moat-probe/probe.sh\n",
    );
    fs::create_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/moat-probe.service",
        root.join("etc/systemd/system/multi-user.target.wants/moat-probe.service"),
    )
    .unwrap();

    // Its own network namespace: nothing the service does reaches the host's network.
    let out = run(Command::new("timeout")
        .args(["120", "systemd-nspawn", "-q", "--register=no", "--keep-unit", "--private-network", "-b", "-D"])
        .arg(&root));
    let console = String::from_utf8_lossy(&out.stdout);
    let probe = fs::read_to_string(root.join("probe.out")).unwrap_or_default();
    let dpkg_log = fs::read_to_string(root.join("probe.dpkg")).unwrap_or_default();
    let got: std::collections::BTreeMap<&str, &str> = probe.lines().filter_map(|l| l.split_once('=')).collect();
    let ctx = format!(
        "systemd-nspawn: {}\nprobe:\n{}\ndpkg:\n{}\nconsole (end):\n{}\n{}",
        out.status,
        probe,
        dpkg_log,
        tail(&console, 30),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(got.get("done"), Some(&"yes"), "the probe did not finish\n{}", ctx);
    let want = [
        ("install", "0"),
        ("enabled", "disabled"),
        ("active", "inactive"),
        ("sandbox_result", "success"),
        // CAP_NET_ADMIN (12) and CAP_NET_RAW (13), nothing else, also in what it can pass on.
        ("sandbox_CapBnd", "0000000000003000"),
        ("sandbox_CapEff", "0000000000003000"),
        ("sandbox_CapAmb", "0000000000003000"),
        ("sandbox_NoNewPrivs", "1"),
        ("sandbox_Seccomp", "2"),
        ("sandbox_uid", "0"),
        ("sandbox_write/etc", "no"),
        ("sandbox_write/usr", "no"),
        ("sandbox_write/var/lib/moat", "yes"),
        ("sandbox_write/run/moat", "yes"),
        ("sandbox_home", "hidden"),
        ("sandbox_tmp", "private"),
        // AF_VSOCK works outside the unit and is refused inside (RestrictAddressFamilies).
        ("vsock_outside", "allowed"),
        ("sandbox_vsock", "denied"),
        ("sandbox_netlink", "allowed"),
        ("reinstall", "0"),
        ("upgrade_restarted", "yes"),
        ("remove", "0"),
        ("removal_stopped", "yes"),
        ("purge", "0"),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k).copied(), Some(v), "{}\n{}", k, ctx);
    }
    // The unit as shipped ran moat itself (ExecMainCode 1: exited; 200-243 are systemd's own
    // failures to set up the sandbox) and restarted it, or moat is still running.
    let status: u32 = got.get("real_status").and_then(|s| s.parse().ok()).unwrap_or(999);
    let restarts: u32 = got.get("real_restarts").and_then(|s| s.parse().ok()).unwrap_or(0);
    if got.get("real_state") != Some(&"active") {
        assert!(got.get("real_code") == Some(&"1") && status < 200, "moat did not run under the unit\n{}", ctx);
        assert!(restarts >= 1, "moat exited and was not restarted\n{}", ctx);
    }
    eprintln!(
        "deb: under systemd: shipped unit {} (exit status {}, {} restarts in 5 s); boot, probe, poweroff in {} ms",
        got.get("real_state").unwrap_or(&"?"),
        status,
        restarts,
        start.elapsed().as_millis()
    );
}
