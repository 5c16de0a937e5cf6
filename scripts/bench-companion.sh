#!/bin/sh
# CPU and RSS of `moat companion` shaping N peers (default 64) at RATE slots/s each (default 20),
# every slot a cover packet (idle peers: the companion's steady-state cost).
# The peers are pre-loaded from the state file (the restart path), so no WireGuard is needed:
# the companion runs in a throwaway network namespace on a TUN device without a reader (its
# cover packets are written and discarded by the kernel, as the home's kernel would).
# Prints figures; asserts nothing. Needs root, iptables (xt NFQUEUE), a built moat binary.
# Usage: scripts/bench-companion.sh [N] [RATE] [SECONDS]    (MOAT_BIN overrides the binary)
set -eu
N=${1:-64}
RATE=${2:-20}
SECS=${3:-30}
BIN=${MOAT_BIN:-$(dirname "$0")/../target/release/moat}
[ -x "$BIN" ] || { echo "no moat binary at $BIN (cargo build --release, or set MOAT_BIN)" >&2; exit 1; }
NS=moat-cbench-$$
DIR=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add mode tun name cbt0
ip -n "$NS" link set cbt0 mtu 1420 up
ip -n "$NS" addr add 10.99.0.1/16 dev cbt0
printf "config companion 'main'\n\toption device 'cbt0'\n\toption max_peers '%s'\n\toption log_level 'warn'\n" "$N" > "$DIR/companion"
mkdir -p "$DIR/state"
# One request per peer: version 1, kind 1, length 44; seq 1, IPv4, pad_to 1408, addr, constant RATE.
i=0
while [ "$i" -lt "$N" ]; do
	a=$((i / 250)); b=$((i % 250 + 2))
	printf '10.99.%d.%d 4d4f41540101002c0000000104000580%02x63%02x%02x000000000000000000000000010000%s0000000000000000000000000000\n' \
		"$a" "$b" 10 "$a" "$b" "$(printf '%06x' "$RATE")" >> "$DIR/state/peers"
	i=$((i + 1))
done
ip netns exec "$NS" "$BIN" companion --config "$DIR/companion" --state-dir "$DIR/state" --stderr 2> "$DIR/log" &
PID=$!
sleep 3
HZ=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
sleep "$SECS"
t1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
peers=$(grep -o '"queue":[0-9]*,"pad_to"' "$DIR/state/status.json" | wc -l)
cover=$(grep -o '"cover_packets":[0-9]*' "$DIR/state/status.json" | awk -F: '{s += $2} END {print s + 0}')
inj=$(grep -o '"inject_errors":[0-9]*' "$DIR/state/status.json" | head -1 | cut -d: -f2)
echo "companion: $peers of $N peers shaped at $RATE slots/s for ${SECS} s: CPU $(awk "BEGIN {printf \"%.1f\", 100 * ($t1 - $t0) / $HZ / $SECS}") % of one core, RSS ${rss} kB (peak ${hwm} kB), cover packets sent $cover, inject errors ${inj:-?}"
[ -s "$DIR/log" ] && { echo "companion log:"; head -5 "$DIR/log"; }
exit 0
