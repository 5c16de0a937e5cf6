#!/usr/bin/env bash
# The project's ONE list of outside pieces (Debian packages, PyPI packages, cargo tools, rustup components) and the
# functions that install whatever is missing. Fast and silent when everything is present: `apt-get update` only
# runs when a package is actually missing.
#
#   scripts/install-deps.sh            install everything the tests and cross builds need
#   source scripts/install-deps.sh     (from another script) then call ensure_apt / ensure_pip / ensure_all
#
# Installs are quiet: one line per step on stderr (what is installed and why, then "ok" and the seconds); the
# installers' own output goes to $MOAT_DEPS_LOG (default target/deps.log), whose last lines are shown when a
# step fails.
#
# Add your package to the right list below, with a word on who needs it.

# Debian packages, one group per entry, "why: package...". Installed with --no-install-recommends
# (wireguard-tools would otherwise pull a kernel).
# - lab: the lab and its leak matrix (tests/lab/, scripts/lab.sh, scripts/bench-routing.sh) run the real kernel
#   and tools; procps gives sysctl and ps. tor 0.4.9.11 without its GeoIP files (tor-geoipdb, only a
#   Recommends) segfaults when it rejects a TransPort connection to a private address (lab_selftest
#   tor_accepts_redirect_targets, every time, on a fresh install).
# - package tests: busybox sh is OpenWrt's shell (tests/openwrt_scripts.rs, tests/ipk.rs).
# - cross builds (scripts/cross.sh): compiler + std sources for -Zbuild-std, llvm-objcopy (rust-web-llvm, only
#   recommended by rustc-web), qemu-user to run target binaries, ELF inspection.
# (A reason must not contain ": ": the first one separates it from the packages.)
MOAT_APT_GROUPS=(
	"lab: nftables iptables iproute2 wireguard-go wireguard-tools tor tor-geoipdb tcpdump dnsutils iputils-ping procps"
	"package tests: busybox-static"
	"discovery lab (tests/discover_lab.rs, a real DHCP server without a service to start) and the relay cells of tests/leak_lanside.rs: dnsmasq-base"
	"router-service leak cells (tests/leak_lanside.rs, a TCP forwarder on the router): socat"
	"browser test of the LuCI app (tests/luci_browser.rs, driven by playwright-core from npm): chromium"
	"server package test (tests/deb.rs, a Debian chroot booted with systemd-nspawn): debootstrap systemd-container"
	"cross builds: rustc-web cargo-web rust-web-src rust-web-llvm qemu-user-static file binutils"
)

# _apt_group WHY : the packages of one group.
_apt_group() {
	local g
	for g in "${MOAT_APT_GROUPS[@]}"; do
		[ "${g%%: *}" = "$1" ] && { echo "${g#*: }"; return 0; }
	done
	return 1
}
# shellcheck disable=SC2207 # package names have no spaces or globs
MOAT_APT_PACKAGES=($(for g in "${MOAT_APT_GROUPS[@]}"; do echo "${g#*: }"; done))
# The subset the lab needs (scripts/lab.sh, scripts/bench-routing.sh).
# shellcheck disable=SC2207,SC2034 # (used by the scripts that source this one)
MOAT_LAB_APT_PACKAGES=($(_apt_group lab))
# The subset scripts/cross.sh needs (so a cross build does not install the lab tools).
# shellcheck disable=SC2207,SC2034 # (used by the scripts that source this one)
MOAT_CROSS_APT_PACKAGES=($(_apt_group "cross builds"))

# PyPI packages, "name==version", for the cross builds (zig links against its own musl). The versions are the
# ones verified here; an already installed different version is used as it is (and named in the output).
MOAT_PIP_PACKAGES=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
# Only scripts/bench-privacy.sh (its activity classifier): not installed by ensure_all.
MOAT_BENCH_PIP_PACKAGES=(scikit-learn==1.9.1)

# npm packages, "name@version", installed into tests/browser/node_modules (project-local, git-ignored), never
# globally; node itself comes from the machine image, else Debian's nodejs + npm. Never `npx playwright install`:
# the browser is Debian's chromium.
MOAT_NPM_PACKAGES=(playwright-core@1.65.1)

# cargo tools, "binary:crate@version", installed with `cargo install --locked` when the binary is missing.
MOAT_CARGO_TOOLS=()

# rustup components of the host toolchain: the fmt + clippy stage of scripts/test.sh.
MOAT_RUSTUP_COMPONENTS=(rustfmt clippy)

MOAT_DEPS_LOG=${MOAT_DEPS_LOG:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/deps.log}

_deps_log() { printf 'deps: %s\n' "$*" >&2; }

# _deps_step WHAT CMD... : one line on stderr ("deps: WHAT ... ok (N s)"), CMD's output appended to
# $MOAT_DEPS_LOG; when CMD fails, the log's last 30 lines follow.
_deps_step() {
	local what=$1 start rc=0 from
	shift
	mkdir -p "$(dirname "$MOAT_DEPS_LOG")"
	printf 'deps: %s ... ' "$what" >&2
	printf '\n=== %s: %s\n' "$(date -u '+%F %T')" "$what" >>"$MOAT_DEPS_LOG"
	from=$(($(stat -c %s "$MOAT_DEPS_LOG") + 1)) # this step's output starts here
	start=$(date +%s)
	"$@" >>"$MOAT_DEPS_LOG" 2>&1 </dev/null || rc=$?
	if [ "$rc" -eq 0 ]; then
		printf 'ok (%s s)\n' "$(($(date +%s) - start))" >&2
		return 0
	fi
	printf 'FAILED (exit %s); its last lines in %s:\n' "$rc" "$MOAT_DEPS_LOG" >&2
	tail -c "+$from" "$MOAT_DEPS_LOG" | tail -n 30 | sed 's/^/  | /' >&2
	return "$rc"
}

# _apt_why PKG... : "pkg pkg (why), pkg (why)" from the groups above.
_apt_why() {
	local g why out="" p list
	for g in "${MOAT_APT_GROUPS[@]}"; do
		why=${g%%: *} list=""
		for p in "$@"; do
			case " ${g#*: } " in *" $p "*) list+=" $p" ;; esac
		done
		[ -n "$list" ] && out+="${out:+, }${list# } ($why)"
	done
	for p in "$@"; do # a package of no group (a caller's own list)
		case " ${MOAT_APT_PACKAGES[*]} " in *" $p "*) ;; *) out+="${out:+, }$p" ;; esac
	done
	echo "$out"
}

# The install itself (output goes to the log): noninteractive, keeping existing config files. Installing `tor`
# must not start the system tor service (it would contact the real Tor network; the lab runs its own tor inside a
# namespace): service starts are forbidden during the install unless a policy already exists.
_apt_install() {
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${_sudo[@]}" tee "$policy" >/dev/null && "${_sudo[@]}" chmod +x "$policy" &&
			made_policy=1
	fi
	"${_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || rc=$?
	[ "$made_policy" = 1 ] && "${_sudo[@]}" rm -f "$policy"
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tor 2>/dev/null; then
		"${_sudo[@]}" systemctl disable --now tor || true
	fi
	return "$rc"
}

# ensure_apt PKG... : install the Debian packages that are not installed yet.
ensure_apt() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	_sudo=()
	[ "$(id -u)" -eq 0 ] || _sudo=(sudo)
	_deps_step "apt-get update (${#missing[@]} Debian package(s) missing)" \
		"${_sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || return 1
	_deps_step "apt-get install $(_apt_why "${missing[@]}")" _apt_install "${missing[@]}"
}

# The directory pip puts console scripts in (pyenv shims appear only after `pyenv rehash`, so use it directly).
_pip_scripts_dir() { python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'; }

# ensure_pip [NAME==VERSION...] : install the PyPI packages that are not installed (any version counts).
ensure_pip() {
	[ $# -gt 0 ] || set -- "${MOAT_PIP_PACKAGES[@]}"
	command -v python3 >/dev/null || { _deps_log "python3 is missing (the machine image ships it)"; return 1; }
	local missing
	# one interpreter start for all of them (python is slow to start on a busy machine)
	mapfile -t missing < <(python3 - "$@" <<-'PY'
		import importlib.metadata as m, sys
		for spec in sys.argv[1:]:
		    try:
		        m.version(spec.split("==")[0])
		    except m.PackageNotFoundError:
		        print(spec)
		PY
	) || return 1
	if [ ${#missing[@]} -gt 0 ]; then
		_deps_step "pip install ${missing[*]} (cross builds: zig links against its own musl)" \
			python3 -m pip install --disable-pip-version-check "${missing[@]}" || return 1
		command -v pyenv >/dev/null && pyenv rehash 2>/dev/null
	fi
	local dir
	dir=$(_pip_scripts_dir) && case ":$PATH:" in *":$dir:"*) ;; *) PATH="$PATH:$dir"; export PATH ;; esac
	return 0
}

# ensure_cargo_tools ["bin:crate@ver"...] : cargo install the tools whose binary is missing.
ensure_cargo_tools() {
	[ $# -gt 0 ] || set -- ${MOAT_CARGO_TOOLS[@]+"${MOAT_CARGO_TOOLS[@]}"}
	local t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null && continue
		_deps_step "cargo install ${t#*:}" cargo install --locked "${t#*:}" || return 1
	done
}

# ensure_rustup_components [NAME...] : add the host toolchain's missing components (rustfmt, clippy).
ensure_rustup_components() {
	[ $# -gt 0 ] || set -- "${MOAT_RUSTUP_COMPONENTS[@]}"
	local c installed missing=()
	if ! command -v rustup >/dev/null; then # e.g. Debian's cargo: nothing to add, say what is absent
		for c in "$@"; do
			case "$c" in rustfmt) cargo fmt --version >/dev/null 2>&1 ;; clippy) cargo clippy --version >/dev/null 2>&1 ;;
				*) true ;; esac || missing+=("$c")
		done
		[ ${#missing[@]} -eq 0 ] || _deps_log "no rustup to add ${missing[*]}: the fmt + clippy stage will fail"
		return 0
	fi
	installed=$(rustup component list --installed 2>/dev/null) || installed=""
	for c in "$@"; do
		grep -q "^$c-" <<<"$installed" || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	_deps_step "rustup component add ${missing[*]} (the fmt + clippy stage of scripts/test.sh)" \
		rustup component add "${missing[@]}"
}

# ensure_npm [NAME@VERSION...] : install the npm packages missing from tests/browser/node_modules.
ensure_npm() {
	[ $# -gt 0 ] || set -- "${MOAT_NPM_PACKAGES[@]}"
	command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm || return 1
	local dir p missing=()
	dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
	for p in "$@"; do
		[ -f "$dir/node_modules/${p%@*}/package.json" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	mkdir -p "$dir" || return 1
	_deps_step "npm install ${missing[*]} into tests/browser (the LuCI browser test)" \
		npm install --prefix "$dir" --no-save --no-audit --no-fund --silent "${missing[@]}"
}

# ensure_all : everything the whole test suite and the cross builds need.
ensure_all() {
	local p
	for p in "${MOAT_APT_PACKAGES[@]}"; do # a reason with ": " in MOAT_APT_GROUPS would split into bogus names
		[[ "$p" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || { _deps_log "MOAT_APT_GROUPS: '$p' is no Debian package name"; return 1; }
	done
	command -v cargo >/dev/null || { _deps_log "cargo (rustup) is missing: the machine image ships it"; return 1; }
	ensure_apt "${MOAT_APT_PACKAGES[@]}" && ensure_pip && ensure_cargo_tools && ensure_rustup_components && ensure_npm
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	ensure_all
	_deps_log "all present"
fi
