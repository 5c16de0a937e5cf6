#!/usr/bin/env bash
# Benchmark (prints figures, asserts nothing): TCP throughput through the lab router for a `direct` device and
# for a `vpn` device's kernel path (WireGuard via wireguard-go), each without and with moat loaded; the vpn
# baseline is the same MAC mark + ip rule + route made by hand. Prints per-round figures, medians and the ratios
# with/without (issue 3's goal: moat's rules cost <= 3%).
#
#   scripts/bench-routing.sh [ROUNDS] [MIB_PER_RUN]      (defaults 5 and 64)
#
# Needs root. Uses a release build of the lab driver so the sender is not the bottleneck.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=install-deps.sh
source scripts/install-deps.sh
if [ "$(id -u)" != 0 ]; then echo "bench-routing: needs root" >&2; exit 1; fi
ensure_apt "${MOAT_LAB_APT_PACKAGES[@]}"
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --locked --release --bin moat --example lab
export MOAT_BIN="$target/release/moat"
lab="$target/release/examples/lab"
trap '"$lab" sweep' EXIT
trap 'exit 130' INT TERM
nproc_=$(nproc)
echo "machine: $(uname -r), $nproc_ cores; wireguard-go $(wireguard-go --version 2>/dev/null | head -1 | awk '{print $2}')"
"$lab" bench "${1:-5}" "${2:-64}"
