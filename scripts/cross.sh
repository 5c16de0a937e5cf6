#!/usr/bin/env bash
# Cross-build moat for router SoCs, or run its unit tests there under qemu-user.
#
#   scripts/cross.sh <target> build   static, stripped release binary; prints its path last
#   scripts/cross.sh <target> test    cargo test --lib --bins for <target>, run under qemu-user
#   scripts/cross.sh <target> path    print where `build` puts the binary (builds nothing)
#   scripts/cross.sh <target> run ARGS  run that binary under qemu-user (e.g. `run check --config FILE`)
#
# <target>: mips | mipsel | aarch64 | armv7 | x86_64, or the full Rust triple. Extra build/test arguments go
# to cargo.
#
# Toolchain (installed if missing, see scripts/install-deps.sh): Debian rustc-web/cargo-web/rust-web-src
# (compiler + std sources; std is built for the target with -Zbuild-std, allowed by RUSTC_BOOTSTRAP=1),
# PyPI ziglang + cargo-zigbuild (zig links against its own musl), Debian qemu-user-static (runs tests with
# the CPU of the OpenWrt target). Per-target rustflags are in .cargo/config.toml.
#
# Output goes to ${MOAT_CROSS_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/cross}/<triple>/release/moat: a target
# dir of its own, so the Debian toolchain never invalidates the host (rustup) build's artifacts. Cargo works in
# <that dir>/<triple>/cargo, one cargo target dir per triple: cargo locks a target dir for the whole build, so
# builds for two triples can run at the same time only in different dirs (scripts/test.sh runs two at once: a
# build is mostly the serial core -> alloc -> std chain, which leaves the second core idle).
#
# `build` makes the one binary of the target: the router's daemon (the .ipk packages) and the VPN server's
# `moat companion` (the .deb) alike. It panics with -Cpanic=immediate-abort: a trap instruction at the panic,
# no message (-111 KB on mipsel, 2026-12-01, docs/DESIGN.md "Build"). sys/crash.rs turns the trap into one
# line on stderr (procd and systemd send it to the log): signal, thread name, address of the trap (the
# function: `llvm-symbolizer --obj=<binary>.syms ADDR`, the unstripped twin kept below).
# MOAT_CROSS_PANIC=abort builds with std's panic message and location instead.
#
# `test --no-run` only builds the test binaries (scripts/test.sh builds them next to the release builds).
#
# Release std is built without its `backtrace` feature: a stripped binary cannot symbolize a backtrace anyway,
# and dropping it saved 268 KB on mipsel (515 -> 247 KB for the early skeleton) while panics still print their
# message and location. It is built with `optimize_for_size` (smaller sort, string and formatting code paths,
# same results; -32 KB on mipsel, 2026-12-01).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() {
	echo "usage: scripts/cross.sh <mips|mipsel|aarch64|armv7|x86_64|TRIPLE> <build|test|path|run> [args...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
target_arg=$1 action=$2
shift 2

# triple, qemu-user runner (CPU of the OpenWrt target), what `file` says about the machine, ELF class, endianness
case "$target_arg" in
	mips | mips-unknown-linux-musl)
		triple=mips-unknown-linux-musl qemu=(qemu-mips-static -cpu 24Kc) machine=", MIPS," bits=32 endian=MSB ;;
	mipsel | mipsel-unknown-linux-musl)
		triple=mipsel-unknown-linux-musl qemu=(qemu-mipsel-static -cpu 24Kc) machine=", MIPS," bits=32 endian=LSB ;;
	aarch64 | arm64 | aarch64-unknown-linux-musl)
		triple=aarch64-unknown-linux-musl qemu=(qemu-aarch64-static -cpu cortex-a53) machine=", ARM aarch64,"
		bits=64 endian=LSB ;;
	armv7 | arm | armv7-unknown-linux-musleabihf)
		triple=armv7-unknown-linux-musleabihf qemu=(qemu-arm-static -cpu cortex-a7) machine=", ARM, EABI5"
		bits=32 endian=LSB ;;
	x86_64 | x86-64 | amd64 | x86_64-unknown-linux-musl)
		triple=x86_64-unknown-linux-musl qemu=() machine=", x86-64," bits=64 endian=LSB ;; # runs natively
	*) echo "cross.sh: unknown target '$target_arg'" >&2; usage ;;
esac

target_dir="${MOAT_CROSS_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/cross}"
bin="$target_dir/$triple/release/moat"
cargo_dir="$target_dir/$triple/cargo"
case "$action" in
	path) echo "$bin"; exit 0 ;;
	run)
		[ -x "$bin" ] || { echo "cross.sh: $bin is not built yet: scripts/cross.sh $target_arg build" >&2; exit 1; }
		exec ${qemu[@]+"${qemu[@]}"} "$bin" "$@" ;;
	build | test) ;;
	*) usage ;;
esac

# --- toolchain -------------------------------------------------------------------------------------------------
# shellcheck source=install-deps.sh
source "$root/scripts/install-deps.sh"
ensure_apt "${MOAT_CROSS_APT_PACKAGES[@]}"
ensure_pip

rustc_pkg=$(dpkg-query -W -f='${Version}' rustc-web)
src_pkg=$(dpkg-query -W -f='${Version}' rust-web-src)
if [ "$rustc_pkg" != "$src_pkg" ]; then
	echo "cross.sh: rustc-web $rustc_pkg and rust-web-src $src_pkg differ; -Zbuild-std needs matching std sources" >&2
	exit 1
fi
zig_ver=$(python3 -m ziglang version)
czb_ver=$(cargo-zigbuild --version | awk '{print $2}')
qemu_ver=$(qemu-mips-static --version | awk 'NR==1{print $3}')
echo "cross.sh: toolchain: $(/usr/bin/rustc --version) [Debian rustc-web $rustc_pkg, unpinnable]," \
	"zig $zig_ver, cargo-zigbuild $czb_ver, qemu-user $qemu_ver" >&2

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo
export PATH="/usr/bin:$PATH"        # cargo-zigbuild runs `cargo`: make it Debian's, not rustup's proxy
export RUSTC_BOOTSTRAP=1            # allows -Zbuild-std on the stable Debian compiler
export RUST_BACKTRACE=0             # backtraces under qemu make panicking tests ~10x slower
export CARGO_TARGET_DIR="$cargo_dir"
if [ ${#qemu[@]} -gt 0 ]; then  # cargo test runs the test binaries through this
	runner_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUNNER"
	export "$runner_var=${qemu[*]}"
fi

start=$(date +%s)
if [ "$action" = test ]; then
	# Unit tests only: the integration tests need root, namespaces and the host's tools.
	cargo-zigbuild test --locked --no-fail-fast --target "$triple" -Zbuild-std --lib --bins "$@"
	case " $* " in
		*" --no-run "*) echo "cross.sh: $triple unit test binaries built in $(($(date +%s) - start)) s" >&2 ;;
		*) echo "cross.sh: $triple unit tests passed under qemu in $(($(date +%s) - start)) s" >&2 ;;
	esac
	exit 0
fi

# Release-only rustflags, appended to the per-target ones of .cargo/config.toml (an env var would replace them).
# No unwind tables: with panic=abort they serve only backtrace capture, which a stripped binary cannot
# symbolize (-27 KB on mipsel; panics still print message and location). Test builds unwind and keep them.
release_flags="'-Cforce-unwind-tables=no'"
panic=${MOAT_CROSS_PANIC:-}
[ -n "$panic" ] || panic=immediate-abort
case "$panic" in
	abort) ;;
	immediate-abort) release_flags+=", '-Zunstable-options', '-Cpanic=immediate-abort'" ;;
	*) echo "cross.sh: MOAT_CROSS_PANIC must be empty, abort or immediate-abort" >&2; exit 2 ;;
esac
cargo-zigbuild zigbuild --locked --release --target "$triple" \
	-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size --config "target.$triple.rustflags=[$release_flags]" \
	--config profile.release.strip=false "$@"

# cargo's binary is linked unstripped (profile.release.strip=false above) and stays as cargo made it, also
# copied to $bin.syms: the same layout as $bin, so the trap address of a crash line (sys/crash.rs) names the
# function (`llvm-symbolizer --obj=$bin.syms ADDR`). A separately built unstripped binary would not do: the
# profile is part of cargo's symbol hashes, which change the function order. $bin is stripped here.
mkdir -p "$(dirname "$bin")"
objcopy_bin="$(/usr/bin/rustc --print sysroot)/lib/rustlib/$(/usr/bin/rustc -vV | sed -n 's/^host: //p')/bin/rust-objcopy"
strip_args=(--strip-all)
# LLVM writes a .pdr on MIPS (procedure descriptors, for old debuggers; never loaded) that strip keeps: ~12% of
# the file. llvm-objcopy from Debian's rust-web-llvm removes it.
case "$triple" in mips*) strip_args+=(--remove-section=.pdr) ;; esac
cp "$cargo_dir/$triple/release/moat" "$bin.syms.tmp"
"$objcopy_bin" "${strip_args[@]}" "$cargo_dir/$triple/release/moat" "$bin.tmp"
mv -f "$bin.syms.tmp" "$bin.syms"
mv -f "$bin.tmp" "$bin"

# --- verify the artifact ---------------------------------------------------------------------------------------
fail() { echo "cross.sh: $bin: $*" >&2; exit 1; }
desc=$(file -b "$bin")
case "$desc" in "ELF $bits-bit $endian "*) ;; *) fail "expected ELF $bits-bit $endian, got: $desc" ;; esac
case "$desc" in *"$machine"*) ;; *) fail "expected machine '$machine', got: $desc" ;; esac
case "$desc" in *"statically linked"* | *"static-pie linked"*) ;; *) fail "not static: $desc" ;; esac
# (outputs captured first: `readelf | grep -q` can die of SIGPIPE under pipefail)
phdrs=$(readelf -lW "$bin") dyn=$(readelf -dW "$bin") sects=$(readelf -SW "$bin") attrs=$(readelf -A "$bin")
[[ $phdrs != *INTERP* ]] || fail "has a program interpreter (dynamic)"
[[ $dyn != *NEEDED* ]] || fail "needs shared libraries"
[[ $sects != *.symtab* && $sects != *.pdr* ]] || fail "not stripped"
abi=""
case "$triple" in
	mips*)
		[[ $attrs == *"FP ABI: Soft float"* ]] || fail "not soft-float (OpenWrt's 24kc targets need soft-float)"
		abi=", soft-float" ;;
	armv7*)
		[[ $attrs == *"Tag_ABI_VFP_args: VFP registers"* ]] || fail "not hard-float (musleabihf)"
		abi=", hard-float" ;;
esac
# it must also start on the target CPU
ver=$(${qemu[@]+"${qemu[@]}"} "$bin" version) || fail "does not run under ${qemu[*]:-the host}"
[[ $ver == "moat "* ]] || fail "'moat version' printed '$ver'"
# the same binary is the router's daemon and the VPN server's companion (.ipk and .deb)
comp=$(${qemu[@]+"${qemu[@]}"} "$bin" companion --help 2>&1) || fail "'moat companion --help' failed: $comp"
[[ $comp == "usage: moat companion"* ]] || fail "'moat companion --help' printed '$comp'"
size=$(stat -c %s "$bin")
echo "cross.sh: $triple: $size bytes ($((size / 1024)) KiB) static, stripped$abi, panic=$panic, built in $(($(date +%s) - start)) s" >&2
echo "cross.sh: $desc; runs: $ver" >&2
echo "$bin"
