#!/usr/bin/env bash
# Run every test of the project (what CI runs, through .ci/run). Installs whatever is missing first: the
# apt/pip/cargo lists live in scripts/install-deps.sh (add your packages THERE).
#
# Lab tests (tests/lab_selftest.rs, tests/leak_*.rs: network namespaces, root) limit themselves to
# MOAT_LAB_PARALLEL labs at once per test binary (default 2, a semaphore in tests/lab/mod.rs); cargo runs the
# binaries one after another. MOAT_LAB_KEEP=1 keeps every lab's logs and captures under target/tmp/moat-lab.
#
# Stages: deps, host `cargo test` (unit + integration tests; the lab tests need root), then the unit tests
# cross-compiled and run under qemu-user for mips (big-endian) and mipsel, then static release builds for
# mips and mipsel (cross.sh checks static linking, soft-float, prints the size) whose `moat check` of the
# shipped example must print exactly what the host build prints. Every stage runs even if an earlier one
# failed (except deps); the script exits non-zero if any failed.
#
#   MOAT_TEST_STAGES="host mips"  run only these stages (deps always runs)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export RUST_BACKTRACE=0

stages=${MOAT_TEST_STAGES:-"host mips mipsel mips-release mipsel-release"}
log=$(mktemp "${TMPDIR:-/tmp}/moat-test.XXXXXX")
trap 'rm -f "$log"' EXIT
summary=()
failed=0

# run_stage NAME CMD... : run, tee the output into $log, record "PASS/FAIL NAME (seconds)".
run_stage() {
	local name=$1 start rc
	shift
	echo "=== stage $name: $*"
	start=$(date +%s)
	"$@" 2>&1 | tee -a "$log"
	rc=${PIPESTATUS[0]}
	local line
	line=$(printf '%-15s %4s s  %s' "$name" "$(($(date +%s) - start))" "$*")
	if [ "$rc" -eq 0 ]; then
		summary+=("PASS  $line")
	else
		summary+=("FAIL  $line (exit $rc)")
		failed=$((failed + 1))
	fi
	return "$rc"
}

# release_check TARGET: build the release binary, then its plan for the example must equal the host's.
release_check() {
	local t=$1 host target
	scripts/cross.sh "$t" build || return 1
	host=$(cargo run -q --locked -- check --config examples/moat.conf 2>&1) || { echo "host moat check failed"; return 1; }
	target=$(scripts/cross.sh "$t" run check --config examples/moat.conf 2>&1) || {
		echo "release_check: $t moat check failed:"; echo "$target"; return 1; }
	if [ "$host" != "$target" ]; then
		echo "release_check: $t release binary prints a different plan than the host build:"
		diff <(echo "$host") <(echo "$target")
		return 1
	fi
	echo "release_check: $t release binary under qemu prints the host's plan for examples/moat.conf ($(echo "$target" | wc -l) lines)"
}

# shellcheck source=install-deps.sh
source "$root/scripts/install-deps.sh"
if ! run_stage deps ensure_all; then
	printf '%s\n' "${summary[@]}"
	echo "test.sh: installing the dependencies failed; nothing else ran" >&2
	exit 1
fi

for s in $stages; do
	case "$s" in
		host) run_stage host cargo test --locked --no-fail-fast ;;
		mips | mipsel) run_stage "$s" scripts/cross.sh "$s" test ;;
		mips-release | mipsel-release) run_stage "$s" release_check "${s%-release}" ;;
		*) echo "test.sh: unknown stage '$s'" >&2; summary+=("FAIL  unknown stage $s"); failed=$((failed + 1)) ;;
	esac
done

# Test counts over all stages, from cargo's own "test result:" lines.
read -r passed tfailed ignored < <(grep -E '^test result: ' "$log" | awk '{
	for (i = 2; i <= NF; i++) {
		if ($i ~ /^passed;?$/) p += $(i - 1); if ($i ~ /^failed;?$/) f += $(i - 1); if ($i ~ /^ignored;?$/) g += $(i - 1)
	}} END {print p + 0, f + 0, g + 0}')

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
grep -E '^cross.sh: [a-z0-9_-]+: [0-9]+ bytes' "$log" | sed 's/^cross.sh: /size: /'
echo "(tests: $ignored ignored, summed over all stages)"
echo "tests: $passed passed, $tfailed failed"
if [ "$failed" -ne 0 ]; then
	echo "test.sh: $failed stage(s) FAILED" >&2
	exit 1
fi
