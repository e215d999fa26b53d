#!/usr/bin/env bash
# Runs every test binary in its own process under a timeout and closes with
# "binaries: N passed, N failed" and "tests: N passed, N failed" (the cmocka
# tests inside them). Usage: ci/run-tests.sh BUILD_DIR BIN...
# Binaries under tests/adapters/ talk to the loopback servers of ci/servers.sh:
# started here (and stopped on exit) unless they already run or
# COEV_SERVERS=external; their ports reach the tests as COEV_*_PORT.
# COEV_TEST_WRAPPER: a command each binary runs under (e.g. valgrind).
set -u
build=$1; shift
servers="$(dirname "$0")/servers.sh"
limit=${COEV_TEST_TIMEOUT:-600}
pass=0; fail=0; failed=""; logs=()
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
for t in "$@"; do
	name=$(basename "$t")
	log="$build/test-logs/$name.log"
	logs+=("$log")
	start=$(date +%s)
	# shellcheck disable=SC2086 # the wrapper is a command and its options
	timeout -k 10 "$limit" ${COEV_TEST_WRAPPER:-} "$t" >"$log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); status=ok
	else
		fail=$((fail + 1)); status="FAIL (exit $rc)"; failed="$failed $name"
	fi
	printf '%-40s %s  %ss\n' "$name" "$status" "$(( $(date +%s) - start ))"
	if [ "$status" != ok ]; then tail -n 40 "$log" | sed 's/^/    /'; fi
done
# Individual cmocka tests, summed from this run's logs ("[  PASSED  ] N
# test(s)." and "[  FAILED  ] N test(s), listed below:"); logs of binaries
# not run now are left out.
tpass=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
tfail=$(cat /dev/null "${logs[@]}" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
[ -z "$failed" ] || echo "failed binaries:$failed"
echo "binaries: $pass passed, $fail failed"
echo "tests: $tpass passed, $tfail failed"
[ "$fail" = 0 ]
