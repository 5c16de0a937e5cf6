#!/usr/bin/env bash
# Shaper benchmarks: prints figures (nothing here passes or fails on a number).
#   scripts/bench-shaper.sh [live-seconds]       (root: the live parts run in a throwaway netns)
#   default 30 s per live run; 8 live runs (4 arrival patterns, normal and real-time scheduling)
#   scripts/bench-shaper.sh --storm [seconds] [rounds] [moat-binary]
#   (root) only the daemon's slot lateness: `moat run` with one shaped device at 50 slots/s, idle and
#   under a reload storm (SIGHUP every 200 ms); default 20 s, 3 rounds, target/release/moat;
#   BENCH_REALTIME=1 sets `option realtime '1'`.
# Needs valgrind (callgrind), iproute2, iptables (iptables-nft). See BENCHMARKS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
# The daemon's slot lateness, idle and under a reload storm (--storm): `moat run` in a throwaway netns with
# one shaped device (constant mode, 50 slots/s) routed into a veth standing in for the tunnel, so every slot
# puts exactly one packet (cover or real) on the veth. tcpdump on the peer timestamps them; lateness of a
# packet = its timestamp - its slot on the grid, the grid's phase estimated from the run itself (the densest
# 0.5 ms window of arrival times modulo 20 ms; its earliest packet counts as 0 late, so the figures leave
# out the minimal wake-up + send time, tens of µs). Each round runs "idle" (no signals), then "storm"
# (SIGHUP every 200 ms: every reload re-reads the config, probes, and re-applies iptables-restore + nft +
# netlink). The binary is target/release/moat (built here) unless given.
storm() {
	secs=${2:-20}
	rounds=${3:-3}
	bin=${4:-}
	if [ -z "$bin" ]; then
		cargo build --release --bin moat -q
		bin="$CARGO_TARGET_DIR/release/moat"
	fi
	[ "$(id -u)" -eq 0 ] || { echo "bench-shaper --storm: needs root (network namespace)" >&2; exit 1; }
	ns="moat-storm-$$"
	tmp=$(mktemp -d)
	cleanup() {
		for p in ${dpid:-} ${cpid:-}; do kill "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
		if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
	}
	trap cleanup EXIT
	n() { ip netns exec "$ns" "$@"; }

	rt=${BENCH_REALTIME:-0}
	cat >"$tmp/moat.conf" <<CONF
config moat 'main'
	list lan_device 'br-lan'
	option realtime '$rt'

config tunnel 'vpn'
	option type 'wireguard'
	option device 'tnstorm'
	option dns '10.99.0.1'

config shaper 'steady'
	option mode 'constant'
	option rate '50'

config device 'speaker'
	list mac '02:00:00:00:00:51'
	option route 'vpn'
	option shaper 'steady'
CONF

	# Lateness in µs of every slot on the grid, one per line, from `tcpdump -tt` lines on stdin: the time from
	# the slot until the next slot packet left (a slot the daemon missed while blocked counts until it woke).
	lateness() {
		awk -v P=20000 '
		$2 == "IP" { split($1, a, "."); t[n++] = a[1] * 1000000 + a[2] }
		END {
			if (n < 10) exit
			for (i = 0; i < n; i++) r[i] = (t[i] - t[0]) % P
			best = -1
			for (i = 0; i < n; i++) {
				c = 0
				for (j = 0; j < n; j++) { d = (r[j] - r[i] + P) % P; if (d < 500) c++ }
				if (c > best) { best = c; phase = r[i] }
			}
			i = 0
			for (s = t[0] + phase; s <= t[n - 1]; s += P) {
				while (t[i] < s) i++
				print t[i] - s
			}
		}'
	}
	q() { # quantile of sorted numbers in file $1, p in percent
		awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }' "$1"
	}

	echo "== machine: $(nproc) cores, $(uname -r), binary $bin, option realtime '$rt'"
	for r in $(seq 1 "$rounds"); do
		for mode in idle storm; do
			ip netns add "$ns"
			n ip link set lo up
			n ip link add br-lan type bridge
			n ip link set br-lan up
			n ip link add tnstorm mtu 1420 type veth peer name tnpeer
			n ip addr add 10.99.0.2/24 dev tnstorm
			n ip link set tnpeer up
			n ip link set tnstorm up
			# `ip netns exec` execs the program: $! is moat (and below tcpdump) itself.
			ip netns exec "$ns" "$bin" run --stderr --config "$tmp/moat.conf" --state-dir "$tmp/state" --guard-file "$tmp/moat-guard.nft" --hold 0 2>"$tmp/log" &
			dpid=$!
			for _ in $(seq 100); do grep -q "shaping speaker" "$tmp/log" && break; sleep 0.1; done
			grep -q "shaping speaker" "$tmp/log" || { cat "$tmp/log"; exit 1; }
			ip netns exec "$ns" tcpdump -i tnpeer -nn -tt -l "ip dst 10.99.0.1" 2>/dev/null >"$tmp/cap" &
			cpid=$!
			sleep 1
			load=$(cut -d' ' -f1-3 /proc/loadavg)
			hups=0
			end=$(($(date +%s) + secs))
			while [ "$(date +%s)" -lt "$end" ]; do
				if [ $mode = storm ]; then kill -HUP "$dpid"; hups=$((hups + 1)); fi
				sleep 0.2
			done
			kill "$cpid"; wait "$cpid" 2>/dev/null || true
			kill "$dpid"; wait "$dpid" 2>/dev/null || true
			dpid= cpid=
			applied=$(grep -c "applied:" "$tmp/log" || true)
			lateness <"$tmp/cap" | sort -n >"$tmp/late"
			echo "round $r $mode: load $load, ${secs} s, $(wc -l <"$tmp/cap") slot packets over $(wc -l <"$tmp/late") slots," \
				"$hups SIGHUP, $applied applies; slot lateness p50 $(q "$tmp/late" 50) µs, p99 $(q "$tmp/late" 99) µs," \
				"max $(q "$tmp/late" 100) µs, $(awk '$1 >= 5000' "$tmp/late" | wc -l) slots >= 5 ms late"
			ip netns del "$ns"
		done
	done
}
if [ "${1:-}" = "--storm" ]; then
	storm "$@"
	exit 0
fi
secs=${1:-30}
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
