//! Shared support for the packaging tests (`tests/ipk.rs`, `tests/openwrt_scripts.rs`):
//! temporary directories, a busybox root with recorded stand-ins for OpenWrt's shell
//! libraries (`fixtures/`), a reader for the tar.gz members of an .ipk, and an ELF header
//! reader. No crates: everything here is std plus the host's `gzip`, `chroot`, `mknod`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `openwrt/moat/files/<name>`.
pub fn pkg_file(name: &str) -> PathBuf {
    repo().join("openwrt/moat/files").join(name)
}

/// `tests/pkg/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/pkg/fixtures").join(rel)
}

/// A directory removed (recursively) when dropped, also when the test panics.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "moat-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Run a command, panicking with its output if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {:?}: {}", cmd, e))
}

/// Run a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    success_stdout(&format!("{:?}", cmd), &out)
}

/// The stdout of `out`, which must come from a successful run of `what` (else a panic showing
/// the exit status, stdout and stderr).
pub fn success_stdout(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        what,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The statically linked busybox (Debian `busybox-static`), needed to run OpenWrt's shell.
pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox is not installed (apt-get install busybox-static; scripts/test.sh does it)");
}

/// Body of `define <name>` … `endef` in `openwrt/moat/Makefile`, with make's `$$` as `$`.
pub fn makefile_define(name: &str) -> String {
    let mk = fs::read_to_string(repo().join("openwrt/moat/Makefile")).unwrap();
    let start = format!("define {}\n", name);
    let i = mk.find(&start).unwrap_or_else(|| panic!("no `define {}` in the Makefile", name)) + start.len();
    let end = mk[i..].find("\nendef\n").expect("unterminated define") + i;
    mk[i..end].replace("$$", "$") + "\n"
}

/// The postinst OpenWrt puts in every ipk (package-pack.mk).
pub const GENERIC_POSTINST: &str = "#!/bin/sh
[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
";

/// The prerm OpenWrt puts in every ipk (package-pack.mk).
pub const GENERIC_PRERM: &str = "#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
";

/// Copy a file, keeping `mode`.
pub fn install(src: &Path, dst: &Path, mode: u32) {
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let _ = fs::remove_file(dst); // never write through a busybox applet symlink
    fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {:?} -> {:?}: {}", src, dst, e));
    fs::set_permissions(dst, fs::Permissions::from_mode(mode)).unwrap();
}

/// Write a file (creating its directory).
pub fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A minimal OpenWrt-like root in `dir`: busybox and its applets, /dev/null, the stand-ins
/// for /lib/functions.sh, /lib/functions/procd.sh, /lib/functions/service.sh and
/// /etc/rc.common from `fixtures/root`, and the directories base-files provides.
pub fn make_openwrt_root(dir: &Path) {
    let bb = busybox();
    install(&bb, &dir.join("bin/busybox"), 0o755);
    let list = run_ok(Command::new(&bb).arg("--list-full"));
    for applet in list.lines().filter(|l| !l.is_empty()) {
        let link = dir.join(applet);
        if link.exists() || applet == "bin/busybox" {
            continue;
        }
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &link).unwrap();
    }
    for d in [
        "dev",
        "tmp",
        "var/lock",
        "var/run",
        "etc/rc.d",
        "etc/config",
        "etc/init.d",
        "etc/hotplug.d/iface",
        "etc/uci-defaults",
        "usr/lib/opkg/info",
        "usr/sbin",
        "sbin",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    run_ok(Command::new("mknod").args(["-m", "666"]).arg(dir.join("dev/null")).args(["c", "1", "3"]));
    run_ok(Command::new("cp").arg("-R").arg(fixture("root").join(".")).arg(dir));
    // The base system's hotplug script, so /etc/hotplug.d/iface is not empty (as on a router).
    write(&dir.join("etc/hotplug.d/iface/00-netstate"), "# base-files\n");
}

/// Run `script` with busybox sh inside `root` (chroot), a clean environment plus `env`.
pub fn chroot_sh(root: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("chroot");
    cmd.arg(root).args(["/bin/sh", "-c", script]).env_clear();
    cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// Lines of a file, or nothing when it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// tar.gz

/// One member of a tar archive.
#[derive(Debug, Clone)]
pub struct TarEntry {
    /// Name as stored (e.g. `./etc/config/moat`).
    pub name: String,
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner and group.
    pub uid: u64,
    pub gid: u64,
    /// Owner and group names.
    pub uname: String,
    pub gname: String,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Type flag: b'0' file, b'5' directory, b'2' symlink.
    pub kind: u8,
    /// Contents (files).
    pub data: Vec<u8>,
    /// The ustar magic+version field (GNU format: `ustar  \0`).
    pub magic: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
    let s = s.trim();
    if s.is_empty() {
        0
    } else {
        u64::from_str_radix(s, 8).unwrap_or_else(|_| panic!("bad octal field {:?}", s))
    }
}

fn cstr(field: &[u8]) -> String {
    String::from_utf8_lossy(&field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())]).into_owned()
}

/// Decompress gzip data with the host's `gzip -dc`.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip").arg("-dc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc failed: not gzip data");
    out.stdout
}

/// The members of an uncompressed tar archive, in archive order (checks header checksums).
pub fn read_tar(tar: &[u8]) -> Vec<TarEntry> {
    let mut out = Vec::new();
    let mut off = 0;
    let mut long_name: Option<String> = None;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let sum: u64 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 }).sum();
        assert_eq!(sum, octal(&h[148..156]), "bad tar header checksum at offset {}", off);
        let size = octal(&h[124..136]) as usize;
        let kind = h[156];
        let data = tar[off + 512..off + 512 + size].to_vec();
        off += 512 + size.div_ceil(512) * 512;
        if kind == b'L' {
            long_name = Some(cstr(&data));
            continue;
        }
        out.push(TarEntry {
            name: long_name.take().unwrap_or_else(|| cstr(&h[0..100])),
            mode: octal(&h[100..108]) as u32,
            uid: octal(&h[108..116]),
            gid: octal(&h[116..124]),
            mtime: octal(&h[136..148]),
            kind,
            uname: cstr(&h[265..297]),
            gname: cstr(&h[297..329]),
            magic: h[257..265].to_vec(),
            data,
        });
    }
    out
}

/// The members of a tar.gz archive.
pub fn read_tar_gz(data: &[u8]) -> Vec<TarEntry> {
    read_tar(&gunzip(data))
}

/// Look a member up by name.
pub fn member<'a>(entries: &'a [TarEntry], name: &str) -> &'a TarEntry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no member {} in {:?}", name, entries.iter().map(|e| &e.name).collect::<Vec<_>>()))
}

/// `Key: value` fields of a control file (continuation lines appended to the previous field).
pub fn control_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') {
            let last = fields.last_mut().expect("continuation line before any field");
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (k, v) = line.split_once(':').unwrap_or_else(|| panic!("bad control line {:?}", line));
            fields.push((k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()));
        }
    }
    fields
}

/// Extract a tar's members into `dir` (files and directories with their modes).
pub fn extract(entries: &[TarEntry], dir: &Path) {
    for e in entries {
        let rel = e.name.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        let p = dir.join(rel);
        match e.kind {
            b'5' => {
                fs::create_dir_all(&p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(e.mode)).unwrap();
            }
            b'0' => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, &e.data).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(e.mode)).unwrap();
            }
            k => panic!("unexpected tar member type {:?} for {}", k as char, e.name),
        }
    }
}

/// Every path under `dir` with what it is: mode, and contents for files, target for links.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for q in names {
            let rel = q.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let md = fs::symlink_metadata(&q).unwrap();
            let mode = md.permissions().mode() & 0o7777;
            if md.file_type().is_symlink() {
                out.insert(rel, format!("link -> {}", fs::read_link(&q).unwrap().display()));
            } else if md.is_dir() {
                out.insert(rel.clone(), format!("dir {:o}", mode));
                walk(base, &q, out);
            } else if md.file_type().is_file() {
                let data = fs::read(&q).unwrap();
                out.insert(rel, format!("file {:o} {} bytes {:x}", mode, data.len(), fnv(&data)));
            } else {
                out.insert(rel, format!("special {:o}", mode));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// FNV-1a, to tell file contents apart in a snapshot.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

// ---------------------------------------------------------------------------------------
// ELF

/// What an ELF header says about a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// 32 or 64.
    pub bits: u8,
    /// true for big-endian.
    pub big_endian: bool,
    /// e_machine (8 MIPS, 40 ARM, 62 x86-64, 183 AArch64).
    pub machine: u16,
    /// e_type (2 executable, 3 shared object / PIE).
    pub etype: u16,
    /// e_flags.
    pub flags: u32,
    /// Has a PT_INTERP program header (needs a dynamic loader).
    pub has_interp: bool,
    /// Number of DT_NEEDED entries (shared libraries it needs).
    pub needed: usize,
    /// MIPS only: the fp_abi byte of PT_MIPS_ABIFLAGS (3 = soft float).
    pub mips_fp_abi: Option<u8>,
}

/// Parse the ELF header, program headers and dynamic section of `data`.
pub fn read_elf(data: &[u8]) -> ElfInfo {
    assert!(data.len() > 64 && &data[0..4] == b"\x7fELF", "not an ELF file");
    let bits = match data[4] {
        1 => 32,
        2 => 64,
        c => panic!("bad ELF class {}", c),
    };
    let big_endian = match data[5] {
        1 => false,
        2 => true,
        d => panic!("bad ELF data encoding {}", d),
    };
    let u16_at = |o: usize| -> u16 {
        let b = [data[o], data[o + 1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |o: usize| -> u32 {
        let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_at = |o: usize| -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[o..o + 8]);
        if big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    };
    let word = |o: usize| -> u64 {
        if bits == 64 {
            u64_at(o)
        } else {
            u32_at(o) as u64
        }
    };
    let etype = u16_at(16);
    let machine = u16_at(18);
    let (phoff, flags, phentsize, phnum) = if bits == 64 {
        (u64_at(32) as usize, u32_at(48), u16_at(54) as usize, u16_at(56) as usize)
    } else {
        (u32_at(28) as usize, u32_at(36), u16_at(42) as usize, u16_at(44) as usize)
    };
    let mut has_interp = false;
    let mut needed = 0;
    let mut mips_fp_abi = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let ptype = u32_at(ph);
        let (offset, filesz) = if bits == 64 {
            (u64_at(ph + 8) as usize, u64_at(ph + 32) as usize)
        } else {
            (u32_at(ph + 4) as usize, u32_at(ph + 16) as usize)
        };
        match ptype {
            3 => has_interp = true,
            2 => {
                // PT_DYNAMIC: (tag, value) pairs of words, DT_NULL-terminated.
                let step = if bits == 64 { 16 } else { 8 };
                let mut o = offset;
                while o + step <= offset + filesz {
                    let tag = word(o);
                    if tag == 0 {
                        break;
                    }
                    if tag == 1 {
                        needed += 1;
                    }
                    o += step;
                }
            }
            0x7000_0003 => mips_fp_abi = Some(data[offset + 7]), // PT_MIPS_ABIFLAGS
            _ => {}
        }
    }
    ElfInfo { bits, big_endian, machine, etype, flags, has_interp, needed, mips_fp_abi }
}
