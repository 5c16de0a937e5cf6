//! The .ipk packages made by `scripts/build-ipk.sh` from the static cross builds.
//!
//! One build of every architecture (cross binaries come from `scripts/cross.sh`, which
//! rebuilds only what changed; without them this test FAILS, it does not skip) is unpacked
//! and checked. With `MOAT_PREBUILT_DIR` set (scripts/test.sh sets it after its build stage
//! made every release binary of the run), `scripts/build-ipk.sh` packages
//! `$MOAT_PREBUILT_DIR/<triple>/release/moat` and builds nothing; without it, it builds them.
//! Checked: the OpenWrt ipkg-build layout, control fields, conffiles, maintainer
//! scripts, file modes and owners, that `/usr/sbin/moat` is a static ELF of the right
//! machine, word size, endianness and float ABI, and that Installed-Size is right. Also:
//! the build is byte-for-byte reproducible, the SDK feed Makefile installs the same files,
//! the x86_64 package installs into and removes from a scratch root leaving it as it was,
//! the mips_24kc binary runs `moat check` on the default config under qemu, and the
//! removal sequence (SIGTERM, exit, `moat cleanup`) run with the packaged x86_64 binary in a
//! network namespace leaves no nft table, ip rule or route behind.
//! Needs root (mknod, netns), busybox-static, qemu-user-static, nftables, iproute2 and the
//! cross toolchain.

mod pkg;

use pkg::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// (OpenWrt arch, ELF e_machine, word size, big-endian).
const ARCHS: &[(&str, u16, u8, bool)] = &[
    ("mips_24kc", 8, 32, true),
    ("mipsel_24kc", 8, 32, false),
    ("aarch64_cortex-a53", 183, 64, false),
    ("aarch64_generic", 183, 64, false),
    ("arm_cortex-a7_neon-vfpv4", 40, 32, false),
    ("x86_64", 62, 64, false),
];

/// `<version>-r<release>` as the package names it.
fn version() -> String {
    let mk = fs::read_to_string(repo().join("openwrt/moat/Makefile")).unwrap();
    let release = mk.lines().find_map(|l| l.strip_prefix("PKG_RELEASE:=")).expect("PKG_RELEASE");
    format!("{}-r{}", env!("CARGO_PKG_VERSION"), release)
}

/// Run scripts/build-ipk.sh into `out`; `prefix` is a shell prefix (umask, env).
fn build_ipks(out: &Path, archs: &[&str], prefix: &str) {
    let script = format!("{} exec \"$0\" --out \"$1\" {}", prefix, archs.join(" "));
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).arg(repo().join("scripts/build-ipk.sh")).arg(out);
    let log = run_ok(&mut cmd);
    eprint!("{}", log);
}

/// The packages of every architecture, built once per test run.
fn built() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ipk");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let archs: Vec<&str> = ARCHS.iter().map(|a| a.0).collect();
        match std::env::var_os("MOAT_PREBUILT_DIR") {
            Some(d) => {
                eprintln!("ipk: packaging the prebuilt binaries under {} (MOAT_PREBUILT_DIR)", d.to_string_lossy())
            }
            None => eprintln!("ipk: MOAT_PREBUILT_DIR is not set: building every release binary with scripts/cross.sh"),
        }
        build_ipks(&dir, &archs, "");
        dir
    })
}

fn ipk_path(dir: &Path, arch: &str) -> PathBuf {
    dir.join(format!("moat_{}_{}.ipk", version(), arch))
}

/// The three members of an ipk: (outer entries, control entries, data entries).
fn unpack(path: &Path) -> (Vec<TarEntry>, Vec<TarEntry>, Vec<TarEntry>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {}", path.display(), e));
    let outer = read_tar_gz(&bytes);
    let control = read_tar_gz(&member(&outer, "./control.tar.gz").data);
    let data = read_tar_gz(&member(&outer, "./data.tar.gz").data);
    (outer, control, data)
}

/// data.tar.gz members in archive order: (name, mode, source file in openwrt/moat/files).
const DATA: &[(&str, u32, Option<&str>)] = &[
    ("./", 0o755, None),
    ("./etc/", 0o755, None),
    ("./etc/capabilities/", 0o755, None),
    ("./etc/capabilities/moat.json", 0o644, Some("moat.capabilities.json")),
    ("./etc/config/", 0o755, None),
    ("./etc/config/moat", 0o600, Some("moat.config")),
    ("./etc/hotplug.d/", 0o755, None),
    ("./etc/hotplug.d/iface/", 0o755, None),
    ("./etc/hotplug.d/iface/70-moat", 0o644, Some("moat.hotplug")),
    ("./etc/init.d/", 0o755, None),
    ("./etc/init.d/moat", 0o755, Some("moat.init")),
    ("./etc/uci-defaults/", 0o755, None),
    ("./etc/uci-defaults/90-moat", 0o755, Some("moat.uci-defaults")),
    ("./usr/", 0o755, None),
    ("./usr/sbin/", 0o755, None),
    ("./usr/sbin/moat", 0o755, None),
];

fn check_owner_and_time(what: &str, entries: &[TarEntry], epoch: u64) {
    for e in entries {
        assert_eq!((e.uid, e.gid), (0, 0), "{} {}: owner", what, e.name);
        assert_eq!((e.uname.as_str(), e.gname.as_str()), ("root", "root"), "{} {}: owner names", what, e.name);
        assert_eq!(e.mtime, epoch, "{} {}: mtime", what, e.name);
        assert_eq!(e.magic, b"ustar  \0", "{} {}: not GNU tar format", what, e.name);
    }
}

#[test]
fn every_ipk_has_the_openwrt_layout_fields_files_and_binary() {
    let dir = built();
    let mut sizes = Vec::new();
    let mut aarch64_bins = Vec::new();
    for &(arch, machine, bits, big_endian) in ARCHS {
        let path = ipk_path(dir, arch);
        let (outer, control, data) = unpack(&path);

        // Outer archive: exactly what ipkg-build writes, in its order.
        let names: Vec<&str> = outer.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["./debian-binary", "./data.tar.gz", "./control.tar.gz"], "{}", arch);
        assert_eq!(member(&outer, "./debian-binary").data, b"2.0\n");
        let epoch = member(&outer, "./debian-binary").mtime;
        assert!(epoch > 1_500_000_000, "{}: mtime {} is not a source date", arch, epoch);
        check_owner_and_time(arch, &outer, epoch);
        check_owner_and_time(arch, &control, epoch);
        check_owner_and_time(arch, &data, epoch);

        // Control archive.
        let cnames: Vec<(&str, u32)> = control.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            cnames,
            [
                ("./", 0o755),
                ("./conffiles", 0o644),
                ("./control", 0o644),
                ("./postinst", 0o755),
                ("./postinst-pkg", 0o755),
                ("./postrm", 0o755),
                ("./prerm", 0o755),
                ("./prerm-pkg", 0o755),
            ],
            "{}",
            arch
        );
        assert_eq!(member(&control, "./conffiles").data, b"/etc/config/moat\n");
        assert_eq!(String::from_utf8_lossy(&member(&control, "./postinst").data), GENERIC_POSTINST);
        assert_eq!(String::from_utf8_lossy(&member(&control, "./prerm").data), GENERIC_PRERM);
        for (m, d) in [
            ("./postinst-pkg", "Package/moat/postinst"),
            ("./prerm-pkg", "Package/moat/prerm"),
            ("./postrm", "Package/moat/postrm"),
        ] {
            assert_eq!(String::from_utf8_lossy(&member(&control, m).data), makefile_define(d), "{} {}", arch, m);
        }

        // Control fields, in the order OpenWrt's package-pack.mk writes them.
        let text = String::from_utf8(member(&control, "./control").data.clone()).unwrap();
        let fields = control_fields(&text);
        let keys: Vec<&str> = fields.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Package",
                "Version",
                "Depends",
                "Source",
                "SourceName",
                "License",
                "Section",
                "SourceDateEpoch",
                "Architecture",
                "Installed-Size",
                "Description"
            ],
            "{}",
            arch
        );
        let field = |k: &str| fields.iter().find(|f| f.0 == k).unwrap().1.clone();
        assert_eq!(field("Package"), "moat");
        assert_eq!(field("Version"), version());
        assert_eq!(field("Depends"), "nftables, kmod-nft-core, kmod-nft-nat, kmod-nft-queue, kmod-nfnetlink-queue");
        assert_eq!(field("Source"), "feeds/moat/moat");
        assert_eq!(field("SourceName"), "moat");
        assert_eq!(field("License"), "GPL-2.0-only");
        assert_eq!(field("Section"), "net");
        assert_eq!(field("SourceDateEpoch"), epoch.to_string());
        assert_eq!(field("Architecture"), arch);
        let desc = makefile_define("Package/moat/description");
        let want: Vec<String> = desc.lines().map(|l| format!(" {}", l.trim_start())).collect();
        // "Description:  first line" and " next line"s, as package-pack.mk writes them.
        assert_eq!(field("Description"), want.join("\n"), "{}", arch);

        // Installed-Size is the size of the uncompressed data tar (ipkg-build's definition).
        let data_tar = gunzip(&member(&outer, "./data.tar.gz").data);
        assert_eq!(field("Installed-Size"), data_tar.len().to_string(), "{}", arch);

        // Data: the files, in sorted order, with their modes and the sources' contents.
        let got: Vec<(&str, u32)> = data.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        let want: Vec<(&str, u32)> = DATA.iter().map(|d| (d.0, d.1)).collect();
        assert_eq!(got, want, "{}", arch);
        for &(name, _, src) in DATA {
            let e = member(&data, name);
            assert_eq!(e.kind, if name.ends_with('/') { b'5' } else { b'0' }, "{} {}", arch, name);
            if let Some(src) = src {
                assert_eq!(e.data, fs::read(pkg_file(src)).unwrap(), "{} {}", arch, name);
            }
        }

        // The binary: static, the router's machine, word size, endianness and float ABI.
        let bin = &member(&data, "./usr/sbin/moat").data;
        let elf = read_elf(bin);
        assert_eq!((elf.machine, elf.bits, elf.big_endian), (machine, bits, big_endian), "{}: {:?}", arch, elf);
        assert!(!elf.has_interp && elf.needed == 0, "{}: not static: {:?}", arch, elf);
        if machine == 8 {
            assert_eq!(elf.mips_fp_abi, Some(3), "{}: OpenWrt's 24kc targets are soft-float", arch);
        }
        if machine == 40 {
            assert_eq!(elf.flags >> 24, 5, "{}: not EABI5", arch);
            assert_ne!(elf.flags & 0x400, 0, "{}: not hard-float (EF_ARM_ABI_FLOAT_HARD)", arch);
        }
        if machine == 183 {
            aarch64_bins.push(bin.clone());
        }
        sizes.push((arch, fs::metadata(&path).unwrap().len(), data_tar.len(), bin.len()));
    }
    assert_eq!(aarch64_bins.len(), 2);
    assert_eq!(aarch64_bins[0], aarch64_bins[1], "both aarch64 packages carry the same aarch64 build");

    println!("{:<26} {:>10} {:>15} {:>12}", "package", "ipk bytes", "Installed-Size", "moat bytes");
    for (arch, ipk, installed, bin) in sizes {
        println!("{:<26} {:>10} {:>15} {:>12}", arch, ipk, installed, bin);
    }
}

#[test]
fn ipk_build_is_reproducible() {
    let dir = built();
    let again = TempDir::new("ipk-again");
    // Different umask, time zone, locale and output directory: the same bytes.
    build_ipks(
        again.path(),
        &["x86_64", "mips_24kc"],
        "umask 077; TZ=Pacific/Chatham LC_ALL=C.UTF-8; export TZ LC_ALL;",
    );
    for arch in ["x86_64", "mips_24kc"] {
        let a = ipk_path(dir, arch);
        let b = ipk_path(again.path(), arch);
        let sums = run_ok(Command::new("sha256sum").arg(&a).arg(&b));
        println!("{}", sums.trim_end());
        let hashes: Vec<&str> = sums.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(hashes[0], hashes[1], "{}: two builds differ", arch);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    }
    // A different source date gives different bytes: the date really is in the package.
    let other = TempDir::new("ipk-epoch");
    build_ipks(other.path(), &["x86_64"], "SOURCE_DATE_EPOCH=1700000000; export SOURCE_DATE_EPOCH;");
    assert_ne!(fs::read(ipk_path(dir, "x86_64")).unwrap(), fs::read(ipk_path(other.path(), "x86_64")).unwrap());
}

#[test]
fn feed_makefile_installs_the_same_files() {
    let mk = fs::read_to_string(repo().join("openwrt/moat/Makefile")).unwrap();
    let install = makefile_define("Package/moat/install");
    let mut from_makefile: Vec<(String, u32, String)> = Vec::new();
    for line in install.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        let mode = match w.next() {
            Some("$(INSTALL_BIN)") => 0o755,
            Some("$(INSTALL_CONF)") => 0o600,
            Some("$(INSTALL_DATA)") => 0o644,
            Some("$(INSTALL_DIR)") | None => continue,
            Some(other) => panic!("unexpected install line {:?} ({})", line, other),
        };
        let (src, dst) = (w.next().unwrap(), w.next().unwrap());
        let dst = dst.strip_prefix("$(1)").expect("destination under $(1)");
        from_makefile.push((format!(".{}", dst), mode, src.to_string()));
    }
    assert!(mk.contains("include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk"));
    assert!(
        mk.contains(&format!("PKG_VERSION:={}\n", env!("CARGO_PKG_VERSION"))),
        "PKG_VERSION differs from Cargo.toml"
    );
    assert!(mk.contains("define Package/moat/conffiles\n/etc/config/moat\nendef"));

    let (_, _, data) = unpack(&ipk_path(built(), "x86_64"));
    let files: Vec<(&str, u32)> = data.iter().filter(|e| e.kind == b'0').map(|e| (e.name.as_str(), e.mode)).collect();
    let mut listed: Vec<(&str, u32)> = from_makefile.iter().map(|(d, m, _)| (d.as_str(), *m)).collect();
    listed.sort();
    assert_eq!(files, listed, "the ipk and Package/moat/install differ");
    for (dst, _, src) in &from_makefile {
        match src.strip_prefix("./files/") {
            Some(f) => assert_eq!(member(&data, dst).data, fs::read(pkg_file(f)).unwrap(), "{}", dst),
            None => assert_eq!((dst.as_str(), src.as_str()), ("./usr/sbin/moat", "$(PKG_INSTALL_DIR)/bin/moat")),
        }
    }
}

/// What `opkg install` does with an offline root (IPKG_INSTROOT): unpack the data, store the
/// control files and the file list under /usr/lib/opkg/info, run the postinst.
fn opkg_install_offline(root: &Path, ipk: &Path) {
    let (_, control, data) = unpack(ipk);
    extract(&data, root);
    let info = root.join("usr/lib/opkg/info");
    for e in control.iter().filter(|e| e.kind == b'0') {
        let p = info.join(format!("moat.{}", e.name.trim_start_matches("./")));
        fs::write(&p, &e.data).unwrap();
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(e.mode)).unwrap();
    }
    let list: Vec<String> =
        data.iter().filter(|e| e.kind == b'0').map(|e| e.name.trim_start_matches('.').to_string()).collect();
    fs::write(info.join("moat.list"), list.join("\n") + "\n").unwrap();
    maintainer_script(root, "postinst", "configure");
}

/// What `opkg remove` does with an offline root: prerm, delete the listed files (keeping a
/// conffile the user changed), postrm, drop the package's info files.
fn opkg_remove_offline(root: &Path, ipk: &Path) {
    let (_, _, data) = unpack(ipk);
    maintainer_script(root, "prerm", "remove");
    let info = root.join("usr/lib/opkg/info");
    for path in lines(&info.join("moat.list")) {
        let p = root.join(path.trim_start_matches('/'));
        let shipped = &member(&data, &format!(".{}", path)).data;
        if lines(&info.join("moat.conffiles")).contains(&path) && fs::read(&p).ok().as_ref() != Some(shipped) {
            continue; // "Not deleting modified conffile"
        }
        fs::remove_file(&p).unwrap_or_else(|e| panic!("{}: {}", p.display(), e));
    }
    maintainer_script(root, "postrm", "remove");
    for e in fs::read_dir(&info).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("moat.") {
            fs::remove_file(e.path()).unwrap();
        }
    }
}

fn maintainer_script(root: &Path, name: &str, arg: &str) {
    let script = root.join(format!("usr/lib/opkg/info/moat.{}", name));
    let out = run(Command::new(busybox()).arg("sh").arg(&script).arg(arg).env("IPKG_INSTROOT", root));
    assert!(
        out.status.success(),
        "{} {} failed: {}\n{}",
        name,
        arg,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn x86_64_payload_installs_into_a_scratch_root_and_removes_cleanly() {
    let ipk = ipk_path(built(), "x86_64");
    let t = TempDir::new("scratch-root");
    let root = t.path();
    make_openwrt_root(root);
    write(&root.join("etc/config/network"), "config interface 'lan'\n\toption device 'br-lan'\n");
    let before = snapshot(root);

    opkg_install_offline(root, &ipk);
    // Enabled for boot through rc.common, migration left for the first boot.
    assert_eq!(fs::read_link(root.join("etc/rc.d/S21moat")).unwrap().to_str(), Some("../init.d/moat"));
    assert_eq!(fs::read_link(root.join("etc/rc.d/K91moat")).unwrap().to_str(), Some("../init.d/moat"));
    assert!(root.join("etc/uci-defaults/90-moat").exists());
    assert!(root.join("usr/sbin/moat").exists() && root.join("etc/config/moat").exists());
    assert!(!root.join("tmp/procd.log").exists(), "an offline install must not talk to procd");

    opkg_remove_offline(root, &ipk);
    let after = snapshot(root);
    assert_eq!(before, after, "the scratch root differs after install + remove");

    // With a configured device, the user's /etc/config/moat stays; nothing else does.
    opkg_install_offline(root, &ipk);
    let cfg = root.join("etc/config/moat");
    let mut text = fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\nconfig device\n\toption name 'Kitchen speaker'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'block'\n",
    );
    fs::write(&cfg, &text).unwrap();
    opkg_remove_offline(root, &ipk);
    let mut after = snapshot(root);
    let kept = after.remove("etc/config/moat").expect("the modified conffile must be kept");
    assert!(kept.starts_with("file 600 "), "{}", kept);
    assert_eq!(fs::read_to_string(&cfg).unwrap(), text);
    assert_eq!(before, after, "the scratch root differs (apart from the conffile) after install + remove");
}

#[test]
fn mips_24kc_binary_checks_the_default_config_under_qemu() {
    let (_, _, data) = unpack(&ipk_path(built(), "mips_24kc"));
    let t = TempDir::new("qemu-mips");
    extract(&data, t.path());
    let bin = t.path().join("usr/sbin/moat");
    let cfg = t.path().join("etc/config/moat");
    let out =
        run(Command::new("qemu-mips-static").args(["-cpu", "24Kc"]).arg(&bin).arg("check").arg("--config").arg(&cfg));
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "moat check on the default config failed under qemu-mips: {}", out.status);

    // The same binary rejects a broken config (exit 1, naming the line): it really read the file.
    let bad = t.path().join("bad");
    write(&bad, "config moat 'main'\n\toption enabled '1\n");
    let out =
        run(Command::new("qemu-mips-static").args(["-cpu", "24Kc"]).arg(&bin).arg("check").arg("--config").arg(&bad));
    let err = String::from_utf8_lossy(&out.stdout); // `moat check` prints its errors on stdout
    assert_eq!(out.status.code(), Some(1), "{}", err);
    assert!(err.contains(":2"), "error does not name line 2: {}", err);
}

/// A network namespace deleted when dropped (also on panic).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("moat-pkg-{}", std::process::id());
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        Netns(name)
    }
    /// Run a command inside the namespace.
    fn cmd(&self, prog: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).arg(prog).args(args);
        c
    }
    /// Everything moat could leave behind: nft ruleset, ip rules and routes (v4 and v6).
    fn kernel_state(&self) -> String {
        let mut s = run_ok(&mut self.cmd(Path::new("nft"), &["list", "ruleset"]));
        for args in [
            &["-4", "rule"][..],
            &["-6", "rule"],
            &["-4", "route", "show", "table", "all"],
            &["-6", "route", "show", "table", "all"],
        ] {
            s += &run_ok(&mut self.cmd(Path::new("ip"), args));
        }
        s
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// A child process killed when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `ok` every 100 ms for up to `secs` seconds (readiness, not a timing assertion).
fn wait_for(secs: u64, mut ok: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 10 {
        if ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ok()
}

#[test]
fn package_removal_sequence_leaves_no_kernel_state() {
    // The x86_64 package's own binary, run as procd would run it, in a namespace of its own.
    let (_, _, data) = unpack(&ipk_path(built(), "x86_64"));
    let t = TempDir::new("removal");
    extract(&data, t.path());
    let bin = t.path().join("usr/sbin/moat");
    let cfg = t.path().join("moat.conf");
    write(
        &cfg,
        "config moat 'main'\n\tlist lan_device 'br-lan'\n\n\
         config tunnel 'vpn'\n\toption type 'wireguard'\n\toption device 'wg0'\n\toption dns '10.64.0.1'\n\n\
         config device\n\toption name 'Speaker'\n\tlist mac 'aa:bb:cc:00:11:22'\n\toption route 'vpn'\n\n\
         config device\n\toption name 'Camera'\n\tlist mac 'aa:bb:cc:00:11:33'\n\toption route 'block'\n",
    );
    let state = t.path().join("state");
    let guard = t.path().join("moat-guard.nft");
    let ns = Netns::new();
    run_ok(&mut ns.cmd(Path::new("ip"), &["link", "set", "lo", "up"]));
    run_ok(&mut ns.cmd(Path::new("ip"), &["link", "add", "br-lan", "type", "bridge"]));
    let before = ns.kernel_state();

    let log = fs::File::create(t.path().join("daemon.log")).unwrap();
    let child = ns
        .cmd(
            &bin,
            &[
                "run",
                "--config",
                cfg.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
                "--guard-file",
                guard.to_str().unwrap(),
                "--stderr",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let applied = wait_for(20, || {
        let s = ns.kernel_state();
        s.contains("table inet moat") && s.contains("proto 77") && s.contains("unreachable default table")
    });
    let daemon_log = || fs::read_to_string(t.path().join("daemon.log")).unwrap_or_default();
    assert!(applied, "the daemon did not apply its table, rule and route:\n{}\n{}", ns.kernel_state(), daemon_log());

    // prerm-pkg: `/etc/init.d/moat stop` (procd sends SIGTERM), wait for the exit, `moat cleanup`.
    run_ok(Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]));
    assert!(wait_for(20, || daemon.0.try_wait().unwrap().is_some()), "the daemon did not exit on SIGTERM");
    let held = ns.kernel_state();
    assert!(held.contains("set hold"), "stop should hold the protected devices:\n{}", held);
    assert!(guard.exists(), "the daemon did not write its guard file:\n{}", daemon_log());
    run_ok(&mut ns.cmd(&bin, &["cleanup", "--guard-file", guard.to_str().unwrap()]));
    assert!(!guard.exists(), "cleanup left the guard file");
    assert_eq!(ns.kernel_state(), before, "kernel state left after removal:\n{}", daemon_log());
}
