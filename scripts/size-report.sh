#!/usr/bin/env bash
# Print the stripped size of the static release binary per router target, building (incrementally, through
# scripts/cross.sh) whatever is missing or out of date first.
#
#   scripts/size-report.sh [--no-build] [target...]     default: all five targets
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mips mipsel aarch64 armv7 x86_64)
goal_kb=700 # the goal for the finished daemon on mipsel (issue 2)

rows=()
status=0
for t in "${targets[@]}"; do
	bin=$(scripts/cross.sh "$t" path)
	triple=$(basename "$(dirname "$(dirname "$bin")")")
	secs="-"
	if [ "$build" = 1 ]; then
		out=$(mktemp)
		start=$(date +%s)
		if ! scripts/cross.sh "$t" build >"$out" 2>&1; then
			tail -n 30 "$out" >&2
			rm -f "$out"
			echo "size-report: building $t failed" >&2
			rows+=("$(printf '%-32s %10s %8s %7s  %s' "$triple" "-" "-" "-" "BUILD FAILED")")
			status=1
			continue
		fi
		secs=$(($(date +%s) - start))
		rm -f "$out"
	fi
	if [ ! -f "$bin" ]; then
		rows+=("$(printf '%-32s %10s %8s %7s  %s' "$triple" "-" "-" "-" "not built")")
		status=1
		continue
	fi
	bytes=$(stat -c %s "$bin")
	note=""
	case "$bin" in */mipsel-unknown-linux-musl/*)
		if [ $((bytes / 1000)) -le $goal_kb ]; then note="goal <= $goal_kb KB: met"; else note="goal <= $goal_kb KB: MISSED"; fi ;;
	esac
	rows+=("$(printf '%-32s %10d %8.1f %7s  %s' "$triple" "$bytes" "$(awk -v b="$bytes" 'BEGIN{print b/1024}')" "$secs" "$note")")
done

printf '%-32s %10s %8s %7s\n' "target" "bytes" "KiB" "build s"
printf '%s\n' "${rows[@]}"
echo "(static, stripped release binaries; git $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
exit "$status"
