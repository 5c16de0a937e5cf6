#!/bin/bash
# How long is `table inet moat` absent after someone else deletes it (as `fw4 flush` /
# `service firewall stop` does)? Runs `moat run` in a throwaway network namespace with one
# protected device (route vpn, tunnel device absent), deletes the table N times with
# `nft delete table inet moat` (a separate process, like fw4 flush's loop), and timestamps the
# nftables notifications seen by `nft monitor`: window = first "add table inet moat" after the
# deletion - the "delete table inet moat" of the deletion (both as delivered to a listener). Prints every window and min/median/max.
# Each deletion also tries `nft delete table inet moat_persist` (as fw4 flush's loop does) and
# checks that the persistent kill switch (owned by the running daemon, Linux 6.9+) is still there
# while `inet moat` is absent: then the window above is covered and the unguarded window is 0.
#
#   sudo scripts/bench-table-restore.sh [runs] [path/to/moat]     # default 20, target/debug/moat
set -euo pipefail
runs=${1:-20}
moat=${2:-${CARGO_TARGET_DIR:-target}/debug/moat}
[ -x "$moat" ] || { echo "no moat binary at $moat (cargo build first)" >&2; exit 1; }
moat=$(readlink -f "$moat")
ns=moatbench$$
dir=$(mktemp -d)
cleanup() {
    [ -n "${mon:-}" ] && kill "$mon" 2>/dev/null || true
    [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br-lan type bridge
ip -n "$ns" link set br-lan up
cat >"$dir/moat.conf" <<'EOF'
config moat 'main'
	option enabled '1'
	list lan_device 'br-lan'

config tunnel 'vpn'
	option type 'wireguard'
	option device 'wgbench0'
	option dns '10.64.0.1'

config device
	option name 'speaker'
	list mac '02:6d:61:62:00:01'
	option route 'vpn'
EOF
ip netns exec "$ns" "$moat" run -c "$dir/moat.conf" --state-dir "$dir" --guard-file "$dir/moat-guard.nft" --stderr 2>"$dir/moat.log" &
daemon=$!
for _ in $(seq 100); do ip netns exec "$ns" nft list table inet moat >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$ns" nft list table inet moat >/dev/null
# Timestamp each notification line as it arrives (bash's $EPOCHREALTIME, no process per line).
ip netns exec "$ns" nft monitor | while IFS= read -r l; do echo "$EPOCHREALTIME $l"; done >"$dir/mon.log" &
mon=$!
sleep 0.5
persist_kept=0
persist_refused=0
for _ in $(seq "$runs"); do
    ip netns exec "$ns" nft delete table inet moat
    ip netns exec "$ns" nft delete table inet moat_persist 2>/dev/null || persist_refused=$((persist_refused + 1))
    ip netns exec "$ns" nft list table inet moat_persist >/dev/null 2>&1 && persist_kept=$((persist_kept + 1))
    for _ in $(seq 100); do ip netns exec "$ns" nft list table inet moat >/dev/null 2>&1 && break; sleep 0.02; done
    sleep 0.3
done
sleep 0.3
awk '
    # A deletion on its own (next line: its generation) is the foreign one; moat restores with
    # "add table; delete table; add table {...}" in one transaction.
    / delete table inet moat$/ { t = $1; del = 1; next }
    / # new generation / && del { open = 1; del = 0; next }
    { del = 0 }
    / add table inet moat/ && open { printf "%.1f\n", ($1 - t) * 1000; open = 0 }' "$dir/mon.log" >"$dir/w"
[ -s "$dir/w" ] || { echo "no restore seen" >&2; exit 1; }
nl -w1 -s': ' "$dir/w" | sed 's/^/window /; s/$/ ms/'
sort -n "$dir/w" | awk '{ w[NR] = $1 } END {
    printf "table absent after deletion: min %s ms, median %s ms, max %s ms (%d runs)\n", w[1], w[int((NR + 1) / 2)], w[NR], NR }'
grep -c "re-applying now" "$dir/moat.log" | sed 's/^/daemon restores logged: /'
echo "persistent kill switch (table inet moat_persist): deletion refused $persist_refused/$runs, present after the deletion $persist_kept/$runs"
if [ "$persist_kept" -eq "$runs" ]; then
    echo "unguarded window: 0 ms (the kill switch stayed in force through every deletion)"
else
    grep -m1 "persistent kill switch" "$dir/moat.log" || true
    echo "unguarded window: as above (no persistent kill switch on this kernel)"
fi
