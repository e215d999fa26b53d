#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test binary in its own process under a timeout and closes with
# "binaries: N passed, N failed" and "tests: N passed, N failed, N skipped"
# (the cmocka tests inside them). Usage: ci/run-tests.sh BUILD_DIR BIN...
# A skipped test (cmocka's "[  SKIPPED ]", which still exits 0) fails its
# binary unless ci/skips.txt lists it with a reason ("binary test reason");
# every skip is shown in the summary, with its reason when allowed.
# Binaries under tests/adapters/ talk to the loopback servers of ci/servers.sh:
# started here (and stopped on exit) unless they already run or
# COEV_SERVERS=external; their ports reach the tests as COEV_*_PORT.
# COEV_TEST_WRAPPER: a command each binary runs under (e.g. valgrind).
set -u
build=$1; shift
servers="$(dirname "$0")/servers.sh"
limit=${COEV_TEST_TIMEOUT:-600}
skips_file="$(dirname "$0")/skips.txt"
pass=0; fail=0; failed=""; logs=(); skipped=()
mkdir -p "$build/test-logs"
for t in "$@"; do rm -f "$build/test-logs/$(basename "$t").log"; done
case " $* " in
*tests/adapters/*)
	if [ "${COEV_SERVERS:-}" != external ] && ! "$servers" status >/dev/null; then
		trap '"$servers" stop' EXIT
		trap 'exit 130' INT TERM
		"$servers" start || exit 1
	fi
	eval "$("$servers" env)"
	;;
esac
# allowed BINARY TEST: the reason ci/skips.txt gives for that skip, or
# nothing.
allowed() {
	[ -f "$skips_file" ] || return 0
	awk -v b="$1" -v t="$2" '!/^[ \t]*(#|$)/ && $1 == b && $2 == t {
		$1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$skips_file"
}

for t in "$@"; do
	name=$(basename "$t")
	log="$build/test-logs/$name.log"
	logs+=("$log")
	start=$(date +%s)
	# shellcheck disable=SC2086 # the wrapper is a command and its options
	timeout -k 10 "$limit" ${COEV_TEST_WRAPPER:-} "$t" >"$log" 2>&1
	rc=$?
	# This binary's skipped tests: cmocka names each one twice (when it
	# skips, and in the closing list).
	mapfile -t skips < <(sed -n 's/^\[  SKIPPED \] \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' "$log" | sort -u)
	unlisted=""
	for s in "${skips[@]}"; do
		reason=$(allowed "$name" "$s")
		if [ -n "$reason" ]; then
			skipped+=("$name $s: $reason")
		else
			skipped+=("$name $s: NOT ALLOWED (no line in ci/skips.txt)")
			unlisted="$unlisted $s"
		fi
	done
	if [ "$rc" = 0 ] && [ -z "$unlisted" ]; then
		pass=$((pass + 1)); status=ok
		[ "${#skips[@]}" = 0 ] || status="ok (${#skips[@]} skipped, allowed)"
	elif [ "$rc" = 0 ]; then
		fail=$((fail + 1)); status="FAIL (skipped:$unlisted)"; failed="$failed $name"
	else
		fail=$((fail + 1)); status="FAIL (exit $rc)"; failed="$failed $name"
	fi
	printf '%-40s %s  %ss\n' "$name" "$status" "$(( $(date +%s) - start ))"
	case $status in FAIL*) tail -n 40 "$log" | sed 's/^/    /' ;; esac
done
# Individual cmocka tests, summed from this run's logs ("[  PASSED  ] N
# test(s).", "[  FAILED  ] N test(s), listed below:" and "[  SKIPPED ] N
# test(s), listed below:"); logs of binaries not run now are left out.
tpass=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
tfail=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
tskip=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
[ -z "$failed" ] || echo "failed binaries:$failed"
for s in "${skipped[@]}"; do echo "skipped: $s"; done
echo "binaries: $pass passed, $fail failed"
echo "tests: $tpass passed, $tfail failed, $tskip skipped"
[ "$fail" = 0 ]
