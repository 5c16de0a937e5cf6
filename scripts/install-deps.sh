#!/usr/bin/env bash
# The project's ONE list of outside pieces (Debian packages, PyPI packages, cargo tools) and the functions that
# install whatever is missing. Fast and silent when everything is present: `apt-get update` only runs when a
# package is actually missing.
#
#   scripts/install-deps.sh            install everything the tests and cross builds need
#   source scripts/install-deps.sh     (from another script) then call ensure_apt / ensure_pip / ensure_all
#
# Add your package to the right list below, with a word on who needs it.

# Debian packages. Installed with --no-install-recommends (wireguard-tools would otherwise pull a kernel).
MOAT_APT_PACKAGES=(
	# lab / integration tests (real kernel, real tools)
	nftables iptables iproute2 wireguard-go wireguard-tools tor tcpdump tshark socat dnsutils iputils-ping procps
	busybox-static
	# tor 0.4.9.11 without its GeoIP files (only a Recommends) segfaults when it rejects a TransPort connection
	# to a private address (lab_selftest tor_accepts_redirect_targets, every time, on a fresh install)
	tor-geoipdb
	# cross builds: compiler + std sources for -Zbuild-std, llvm-objcopy (rust-web-llvm, only recommended by
	# rustc-web), qemu-user to run target binaries, ELF inspection
	rustc-web cargo-web rust-web-src rust-web-llvm qemu-user-static file binutils
)

# The subset the lab needs (tests/lab/, scripts/lab.sh, scripts/bench-routing.sh); procps gives sysctl and ps.
MOAT_LAB_APT_PACKAGES=(nftables iptables iproute2 wireguard-go wireguard-tools tor tor-geoipdb tcpdump dnsutils iputils-ping
	procps)

# The subset scripts/cross.sh needs (so a cross build does not install the lab tools).
MOAT_CROSS_APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm qemu-user-static file binutils)

# PyPI packages, "name==version". The versions are the ones verified here; an already installed different
# version is used as it is (and named in the output).
MOAT_PIP_PACKAGES=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
# Only scripts/bench-privacy.sh (its activity classifier): not installed by ensure_all.
MOAT_BENCH_PIP_PACKAGES=(scikit-learn==1.9.1)

# cargo tools, "binary:crate@version", installed with `cargo install --locked` when the binary is missing.
MOAT_CARGO_TOOLS=()

_deps_log() { printf 'deps: %s\n' "$*" >&2; }

# ensure_apt PKG... : install the Debian packages that are not installed yet.
ensure_apt() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	_deps_log "apt: installing ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
	# Installing `tor` must not start the system tor service (it would contact the real Tor network; the lab runs
	# its own tor inside a namespace): forbid service starts during the install unless a policy already exists.
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod +x "$policy" && made_policy=1
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" || rc=1
	[ "$made_policy" = 1 ] && "${sudo[@]}" rm -f "$policy"
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tor 2>/dev/null; then
		"${sudo[@]}" systemctl disable --now tor >/dev/null 2>&1 || true
	fi
	return "$rc"
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
		_deps_log "pip: installing ${missing[*]}"
		python3 -m pip install -q --disable-pip-version-check "${missing[@]}" || return 1
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
		_deps_log "cargo: installing ${t#*:}"
		cargo install --locked "${t#*:}" || return 1
	done
}

# ensure_all : everything the whole test suite and the cross builds need.
ensure_all() {
	command -v cargo >/dev/null || { _deps_log "cargo (rustup) is missing: the machine image ships it"; return 1; }
	ensure_apt "${MOAT_APT_PACKAGES[@]}" && ensure_pip && ensure_cargo_tools
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	ensure_all
	_deps_log "all present"
fi
