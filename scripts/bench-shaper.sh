#!/usr/bin/env bash
# Shaper benchmarks: prints figures (nothing here passes or fails on a number).
#   scripts/bench-shaper.sh [live-seconds]       (root: the live parts run in a throwaway netns)
#   default 30 s per live run; 8 live runs (4 arrival patterns, normal and real-time scheduling)
# Needs valgrind (callgrind), iproute2, iptables (iptables-nft). See BENCHMARKS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs=${1:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --example shaper_bench -q
bin="$CARGO_TARGET_DIR/release/examples/shaper_bench"
echo "== machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== callgrind: instructions per queued packet (replay harness, release build)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; ip netns del "moat-bench-$$" 2>/dev/null || true' EXIT
ir() { # total instructions of `shaper_bench replay N`
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" "$bin" replay "$1" >/dev/null 2>"$tmp/vg.$1"
	grep -E '^summary:' "$tmp/cg.$1" | awk '{print $2}'
}
a=$(ir 20000); b=$(ir 120000)
echo "replay: 20000 packets $a Ir, 120000 packets $b Ir => $(( (b - a) / 100000 )) instructions per queued packet (marginal)"

echo "== memory"
"$bin" rss
echo "== constant-mode queueing delay (virtual clock, pure core)"
"$bin" queueing

if [ "$(id -u)" -eq 0 ]; then
	ns="moat-bench-$$"
	ip netns add "$ns"
	# Added latency under the rate: periodic arrivals (design target 1 slot + 2 ms) and Poisson
	# arrivals at the same mean rates (queueing beyond one slot is inherent: M/D/1 line printed).
	# Each run also prints the slot timer lateness; then the same with `option realtime`'s
	# scheduling (BENCH_REALTIME=1).
	for rt in 0 1; do
		for p in "periodic 25" "periodic 45" "poisson 25" "poisson 45"; do
			echo "== live engine on loopback in netns $ns (NFQUEUE + timerfd), ${secs} s at 50 slots/s, $p/s, realtime $rt, load $(cut -d' ' -f1-3 /proc/loadavg)"
			# shellcheck disable=SC2086 # $p is two words on purpose
			BENCH_REALTIME=$rt ip netns exec "$ns" "$bin" live "$secs" 50 $p
			ip netns del "$ns"; ip netns add "$ns"
		done
	done
	echo "== live engine, saturated at 1000 slots/s"
	ip netns exec "$ns" "$bin" pps 10
	ip netns del "$ns"; ip netns add "$ns"
	echo "== live engine: 64 queues, 1000 held packets"
	ip netns exec "$ns" "$bin" rss-live
else
	echo "== live parts skipped: not root"
fi
