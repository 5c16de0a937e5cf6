#!/usr/bin/env bash
# Run every test of the project (what CI runs, through .ci/run). Installs whatever is missing first: the
# apt/pip/cargo/rustup lists live in scripts/install-deps.sh (add your packages THERE); their output goes to
# target/deps.log, one line per step on screen.
#
# Lab tests (tests/lab_selftest.rs, tests/leak_*.rs: network namespaces, root) limit themselves to
# MOAT_LAB_PARALLEL labs at once per test binary (default 2, a semaphore in tests/lab/mod.rs). Every lab name is
# unique per process (namespaces, WireGuard interfaces and their global /var/run/wireguard sockets, temp dirs), so
# test binaries can run at the same time. MOAT_LAB_KEEP=1 keeps every lab's logs and captures under
# target/tmp/moat-lab.
#
# Stages, in this order:
#   lint            cargo fmt --check (also fuzz/), cargo clippy --all-targets -D warnings
#   build           every cross build of the run, once: static release binaries for mips, mipsel, aarch64, armv7,
#                   x86_64 (cross.sh checks static linking, float ABI, that it starts; prints the size) and the
#                   unit test binaries of the run's qemu stages; MOAT_BUILD_JOBS (default: the CPU count) at a
#                   time, each into target/test-logs/<job>.log. When all succeed, MOAT_PREBUILT_DIR names the release
#                   binaries for the later stages, which build nothing of them again (tests/ipk.rs packages
#                   them; without the variable, e.g. a stage list without `build`, it builds them itself).
#   host            cargo test's binaries (unit, integration, doc tests; the lab tests need root), built once
#                   (`cargo test --no-run`), then run MOAT_TEST_JOBS (default 3) at a time, the slowest first,
#                   each into target/test-logs/host/<binary>.log: one line per binary (PASS/FAIL, seconds, its
#                   `test result:` line), the failures' output of a failed one. The binaries that assert on
#                   timing (per-second CV <= 2 %, slot gaps: $timing_bins below) run after them, one at a
#                   time with nothing else running. Every binary runs even if one failed (--no-fail-fast);
#                   the slowest are named in the summary
#   mips            the unit tests under qemu-user for mips: big-endian, 32-bit, no 64-bit atomics, which the
#                   host's run cannot see. `mipsel` (the same, little-endian) is a stage too but not a default
#                   one: mips (32-bit) and the host (little-endian) check what it checks, and it cost ~110 s
#                   (its test build ~110 of the build stage's ~1,180 CPU-seconds on 2 CPUs, its run 56-85 s).
#                   The mipsel release binary is still built, size-checked and run (mipsel-release)
#   mips-release, mipsel-release   the release binary's `moat check` of the shipped example must print exactly
#                   what the host build prints
# Every stage runs even if an earlier one failed (except deps); the script exits non-zero if any failed. The
# summary gives each stage's seconds and the load average (the figures depend on what else the machine runs).
#
#   MOAT_TEST_STAGES="host mips"  run only these stages (deps always runs)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
export RUST_BACKTRACE=0

stages=${MOAT_TEST_STAGES:-"lint build host mips mips-release mipsel-release"}
log=$(mktemp "${TMPDIR:-/tmp}/moat-test.XXXXXX")
times=$(mktemp "${TMPDIR:-/tmp}/moat-test-times.XXXXXX")
trap 'rm -f "$log" "$times"' EXIT
summary=()
slowest=()
failed=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run_start=$(date +%s)
# Targets of the release builds (scripts/build-ipk.sh packages all five) and of the run's qemu unit test stages.
release_targets=(mips mipsel aarch64 armv7 x86_64)
test_targets=()
for s in $stages; do case $s in mips | mipsel) test_targets+=("$s") ;; esac; done

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

# lint : formatting and clippy, all checked even if one fails.
lint() {
	local rc=0
	cargo fmt --check || { echo "lint: cargo fmt --check failed (run cargo fmt)"; rc=1; }
	cargo fmt --check --manifest-path fuzz/Cargo.toml || { echo "lint: fuzz/ is not formatted"; rc=1; }
	cargo clippy --all-targets --locked -- -D warnings || { echo "lint: clippy failed"; rc=1; }
	[ "$rc" -eq 0 ] && echo "lint: cargo fmt --check (root and fuzz/) and cargo clippy --all-targets -D warnings clean"
	return "$rc"
}

# build_all : every cross build (release binaries, qemu test binaries), MOAT_BUILD_JOBS at a time; one line per
# job when it ends (cross.sh's own summary lines), the last 40 lines of its log when it fails.
build_all() {
	local max=${MOAT_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)} dir="$root/target/test-logs" rc=0 t
	local specs=() name
	local -A job_name=() job_start=()
	for t in "${release_targets[@]}"; do specs+=("$t-release:$t build"); done
	for t in "${test_targets[@]}"; do specs+=("$t-tests:$t test --no-run"); done
	mkdir -p "$dir"
	if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)); then
		echo "build: needs bash >= 5.1 (wait -n -p), this is $BASH_VERSION"
		return 1
	fi
	echo "build: ${#specs[@]} jobs, $max at a time, logs in ${dir#"$root"/}/"
	# finish_one : wait for any job, report it.
	finish_one() {
		local st=0 p
		wait -n -p p || st=$?
		name=${job_name[$p]}
		if [ "$st" -eq 0 ]; then
			echo "build: $name ok in $(($(date +%s) - ${job_start[$p]})) s"
			grep -E '^cross.sh: [a-z0-9_-]+: [0-9]+ bytes' "$dir/$name.log"
		else
			echo "build: $name FAILED (exit $st) after $(($(date +%s) - ${job_start[$p]})) s; the end of $dir/$name.log:"
			tail -n 40 "$dir/$name.log"
			rc=1
		fi
		unset "job_name[$p]"
	}
	for spec in "${specs[@]}"; do
		[ ${#job_name[@]} -lt "$max" ] || finish_one
		name=${spec%%:*}
		# shellcheck disable=SC2086 # the spec is "target action [args]"
		scripts/cross.sh ${spec#*:} >"$dir/$name.log" 2>&1 &
		job_name[$!]=$name job_start[$!]=$(date +%s)
	done
	while [ ${#job_name[@]} -gt 0 ]; do finish_one; done
	return "$rc"
}

# Host test binaries whose tests assert on timing (per-second counts within a 2 % CV, slot gaps, pacing): they run
# after the pool, one at a time, with nothing else running.
timing_bins=(shaper_nfqueue shaper_engine shaper_shared_lab shaper_lab companion_lab)
# The pool starts these first, slowest first (a clean-clone run on 2 CPUs, 2026-12-01: leak_block 97 s down to
# leak_positive 10 s), so the pool does not end waiting on one long binary; the others follow by name.
slow_first=(leak_block leak_tor leak_vpn leak_boot deb leak_lanside status_tor leak_vpnshaped leak_vpn6 luci_browser
	leak_positive)

# host_tests : build every host test binary once, run them (see the header), one line per binary. Its seconds go
# to $times as "SECONDS NAME".
host_tests() {
	local max=${MOAT_TEST_JOBS:-3} dir="$root/target/test-logs/host" rc=0 json n
	local -a order=() pool=() serial=()
	local -A exe=() label=() job_name=() job_start=() done_=()
	rm -rf "$dir"
	mkdir -p "$dir"
	json="$dir/build.json"
	cargo test --locked --no-run --message-format=json-render-diagnostics >"$json" || {
		echo "host: cargo test --no-run failed"; return 1; }
	# "NAME<TAB>LABEL<TAB>EXECUTABLE" per test binary: lib, bins, tests/*.rs by name
	while IFS=$'\t' read -r n l e; do
		order+=("$n") exe[$n]=$e label[$n]=$l
	done < <(python3 - "$json" "$root" <<-'PY'
		import json, os, sys
		rows = []
		for line in open(sys.argv[1]):
		    if not line.startswith("{"):
		        continue
		    m = json.loads(line)
		    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
		        continue
		    t = m["target"]
		    src = os.path.relpath(t["src_path"], sys.argv[2])
		    kind = t["kind"][0]
		    name = {"lib": "unittests-lib", "bin": "unittests-bin-" + t["name"]}.get(kind, t["name"])
		    label = ("unittests " if kind in ("lib", "bin") else "") + src
		    rows.append(({"lib": 0, "bin": 1}.get(kind, 2), name, label, m["executable"]))
		for _, name, label, exe in sorted(rows):
		    print(name, label, exe, sep="\t")
		PY
	)
	[ ${#order[@]} -gt 0 ] || { echo "host: cargo listed no test binaries"; return 1; }
	for n in "${slow_first[@]}"; do [ -n "${exe[$n]:-}" ] && pool+=("$n") && done_[$n]=1; done
	for n in "${timing_bins[@]}"; do [ -n "${exe[$n]:-}" ] && done_[$n]=1; done
	for n in "${order[@]}"; do
		[ -n "${done_[$n]:-}" ] || pool+=("$n")
	done
	pool+=(doctests)
	exe[doctests]=doctests label[doctests]="doc tests (cargo test --doc)"
	for n in "${timing_bins[@]}"; do [ -n "${exe[$n]:-}" ] && serial+=("$n"); done
	echo "host: ${#pool[@]} test binaries $max at a time, then ${#serial[@]} timing ones alone" \
		"(${serial[*]}); logs in ${dir#"$root"/}/"
	# start_one NAME : run it in the background, its output into its log.
	start_one() {
		local n=$1
		if [ "$n" = doctests ]; then
			cargo test --locked --doc >"$dir/$n.log" 2>&1 &
		else
			"${exe[$n]}" >"$dir/$n.log" 2>&1 &
		fi
		job_name[$!]=$n job_start[$!]=$EPOCHREALTIME
	}
	# finish_one : wait for any running binary, report it.
	finish_one() {
		local st=0 p n secs results
		wait -n -p p || st=$?
		n=${job_name[$p]}
		unset "job_name[$p]"
		secs=$(awk -v a="${job_start[$p]/,/.}" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')
		printf '%s %s\n' "$secs" "${label[$n]}" >>"$times"
		results=$(grep -E '^test result: ' "$dir/$n.log")
		if [ "$st" -eq 0 ]; then
			printf 'host: PASS %6s s  %s\n' "$secs" "${label[$n]}"
		else
			printf 'host: FAIL %6s s  %s (exit %s), log %s:\n' "$secs" "${label[$n]}" "$st" "${dir#"$root"/}/$n.log"
			# libtest's failure report (each failed test's output, then their names), else the log's end
			if grep -q '^failures:$' "$dir/$n.log"; then
				sed -n '/^failures:$/,$p' "$dir/$n.log" | grep -v '^test result: ' | head -n 300
			else
				tail -n 40 "$dir/$n.log"
			fi
			rc=1
		fi
		[ -z "$results" ] || printf '%s\n' "$results"
	}
	for n in "${pool[@]}"; do
		[ ${#job_name[@]} -lt "$max" ] || finish_one
		start_one "$n"
	done
	while [ ${#job_name[@]} -gt 0 ]; do finish_one; done
	for n in "${serial[@]}"; do
		start_one "$n"
		finish_one
	done
	return "$rc"
}

# release_check TARGET: its release binary's plan for the example must equal the host's. The binary is the
# build stage's when that ran (MOAT_PREBUILT_DIR), else it is built here.
release_check() {
	local t=$1 host target
	if [ -z "${MOAT_PREBUILT_DIR:-}" ]; then scripts/cross.sh "$t" build || return 1; fi
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
	echo "test.sh: installing the dependencies failed; nothing else ran (log: ${MOAT_DEPS_LOG#"$root"/})" >&2
	exit 1
fi

unset MOAT_PREBUILT_DIR # only this run's build stage may set it
for s in $stages; do
	case "$s" in
		lint) run_stage lint lint ;;
		build)
			if run_stage build build_all; then
				MOAT_PREBUILT_DIR=$(dirname "$(dirname "$(dirname "$(scripts/cross.sh mips path)")")")
				export MOAT_PREBUILT_DIR
			fi ;;
		host)
			: >"$times"
			run_stage host host_tests
			mapfile -t slowest < <(sort -rn "$times" | head -n 5 | awk '{ s = $1; sub(/^[^ ]+ /, ""); printf "%7.1f s  %s\n", s, $0 }') ;;
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
if [ ${#slowest[@]} -gt 0 ]; then
	echo "slowest host test binaries:"
	printf '  %s\n' "${slowest[@]}"
fi
echo "time: $(($(date +%s) - run_start)) s on $(nproc) CPUs; load average $load_start at the start," \
	"$(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "(tests: $ignored ignored, summed over all stages)"
echo "tests: $passed passed, $tfailed failed"
if [ "$failed" -ne 0 ]; then
	echo "test.sh: $failed stage(s) FAILED" >&2
	exit 1
fi
