#!/usr/bin/env bash
# Privacy benchmark: can an observer of the WAN link tell WHEN a smart-home device is used?
# Prints figures; asserts nothing (see BENCHMARKS.md, "Privacy").
#
#   scripts/bench-privacy.sh [--minutes M] [--seeds 1,2] [--configs none,vpn,...] [--parallel N] [--out DIR]
#
# Per configuration and seed: the lab (tests/lab) with an emulated smart speaker, sleep monitor and plug
# (tests/lab/devices.rs) behind the router, activities from a seeded schedule logged as ground truth, the
# WAN link captured (examples/privacy_bench.rs). Then scripts/privacy/classify.py trains a random forest on
# 5 s windows of the other seeds' runs and scores it on each run (so >= 2 seeds for a classifier figure),
# and prints balanced accuracy, AUC, overhead (WAN bytes / device bytes) and request/answer latency, which
# kinds of window (idle, each activity) the observer flags, then the decoy floor: the least overhead at
# which any defence that only adds packets can hold an observer to a balanced accuracy
# (scripts/privacy/classify.py --help).
# Configurations: none (no moat), vpn (WireGuard, no shaping), up-constant / up-stochastic (today's shaper,
# router -> server only), two-constant / two-stochastic (with `moat companion` on the VPN server: run only
# when the moat binary has it), two-padded (two-stochastic's padding, no decoys). PRIVACY_BENCH_STOCHASTIC
# ("pace=250 budget=400") changes the stochastic rows' shaper options for a trial. Default: 10 minutes per run (the issue's goals), seeds 1,2, all configurations,
# one run at a time; --parallel N runs up to N labs at once (each lab is its own set of namespaces; the runs
# then share the CPU, which the printed load averages show).
# Needs root (network namespaces), the lab's Debian packages and scikit-learn (installed through
# scripts/install-deps.sh). Every run's namespaces are removed when it ends, also when it fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
minutes=10 seeds=1,2 configs=none,vpn,up-constant,up-stochastic,two-constant,two-stochastic,two-padded
out="" parallel=1
while [ $# -gt 0 ]; do
	case "$1" in
	--minutes) minutes=$2; shift 2 ;;
	--seeds) seeds=$2; shift 2 ;;
	--configs) configs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--parallel) parallel=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$minutes" in '' | *[!0-9.]*) echo "--minutes wants a number" >&2; exit 2 ;; esac
case "$parallel" in '' | 0 | *[!0-9]*) echo "--parallel wants a whole number >= 1" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

# shellcheck source=install-deps.sh
source "$root/scripts/install-deps.sh"
ensure_apt "${MOAT_LAB_APT_PACKAGES[@]}" >&2
ensure_pip "${MOAT_BENCH_PIP_PACKAGES[@]}" >&2

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q --bin moat --example privacy_bench
export MOAT_BIN="$CARGO_TARGET_DIR/release/moat"
bench="$CARGO_TARGET_DIR/release/examples/privacy_bench"
[ -n "$out" ] || out=$(mktemp -d /tmp/moat-privacy.XXXXXX)
mkdir -p "$out"
# The release build aborts on panic (no teardown in the process): after every run, and when this script is
# interrupted, remove what that run's process left (its own namespaces only).
declare -A run_dir=()
cleanup() {
	local p
	for p in "${!run_dir[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
		"$bench" cleanup "$p" || true
	done
	run_dir=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

echo "== privacy benchmark: ${minutes} min per run, seeds $seeds, $parallel at a time, $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== runs in $out${PRIVACY_BENCH_STOCHASTIC:+ (stochastic rows with: $PRIVACY_BENCH_STOCHASTIC)}"
dirs=()
# The run of process $1 ended with status $2: clean up after it and report it.
finish() {
	local p=$1 rc=$2 d=${run_dir[$1]}
	"$bench" cleanup "$p" 2>>"$d.log" || true
	unset "run_dir[$p]"
	if [ "$rc" -eq 0 ]; then
		echo "   $(basename "$d"): $(tail -n 1 "$d.log")"
		dirs+=("$d")
	else
		echo "   $(basename "$d"): run failed (exit $rc): see $d.log"
		grep -m 3 -A 3 panicked "$d.log" | sed 's/^/   /' || tail -n 5 "$d.log" | sed 's/^/   /'
	fi
}
IFS=, read -r -a cfgs <<<"$configs"
IFS=, read -r -a sds <<<"$seeds"
for c in "${cfgs[@]}"; do
	if ! why=$("$bench" available "$c"); then
		echo "$why"
		continue
	fi
	for s in "${sds[@]}"; do
		while [ "${#run_dir[@]}" -ge "$parallel" ]; do
			rc=0
			wait -n -p done_pid "${!run_dir[@]}" || rc=$?
			finish "$done_pid" "$rc"
		done
		d="$out/$c-seed$s"
		echo "-- $c seed $s ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
		"$bench" run "$c" "$s" "$secs" "$d" >"$d.log" 2>&1 &
		run_dir[$!]=$d
	done
done
for p in "${!run_dir[@]}"; do
	rc=0
	wait "$p" || rc=$?
	finish "$p" "$rc"
done
echo "== after the runs: load $(cut -d' ' -f1-3 /proc/loadavg)"
[ ${#dirs[@]} -gt 0 ] || { echo "no run finished"; exit 1; }
echo "== scores (5 s windows; classifier trained on the other seeds, scored on each run)"
python3 "$root/scripts/privacy/classify.py" "${dirs[@]}"
python3 "$root/scripts/privacy/classify.py" --markdown "${dirs[@]}" >"$out/table.md"
echo "== markdown table: $out/table.md"
