#!/usr/bin/env bash
# The moat lab on this machine: a simulated home network in network namespaces (nothing leaves the machine).
#
#   scripts/lab.sh demo    builds moat, brings up the lab, protects an emulated smart speaker (vpn) and a sleep
#                          monitor (tor), shows side by side what an observer on the WAN link sees with moat off
#                          and on (destinations, DNS names, packet counts), tears everything down.
#   scripts/lab.sh sweep   removes namespaces left behind by an interrupted lab.
#
# Needs root (namespaces, nftables). Installs missing tools with apt (the lab subset of scripts/install-deps.sh).
# The lab itself is tests/lab/ (shared with the leak tests), driven here through examples/lab.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=install-deps.sh
source scripts/install-deps.sh

cmd=${1:-demo}
if [ "$(id -u)" != 0 ]; then
  echo "scripts/lab.sh: needs root (network namespaces, nftables); try: sudo $0 $*" >&2
  exit 1
fi

ensure_apt "${MOAT_LAB_APT_PACKAGES[@]}"
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  ensure_apt cargo-web rustc-web # Debian's compiler (the cross build's), when the machine has no rustup
fi

target=${CARGO_TARGET_DIR:-target}
echo "lab: building moat and the lab driver (debug build)..." >&2
cargo build --quiet --locked --bin moat --example lab
export MOAT_BIN="${MOAT_BIN:-$target/debug/moat}"
lab="$target/debug/examples/lab"

# Whatever happens (Ctrl-C included), remove what an interrupted lab left behind.
trap '"$lab" sweep' EXIT
trap 'exit 130' INT TERM

case "$cmd" in
  demo) "$lab" demo ;;
  sweep) "$lab" sweep ;;
  *) echo "usage: scripts/lab.sh demo|sweep" >&2; exit 2 ;;
esac
