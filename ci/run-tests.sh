#!/usr/bin/env bash
# Runs every test binary in its own process under a timeout and closes with
# "binaries: N passed, N failed" and "tests: N passed, N failed" (the cmocka
# tests inside them). Usage: ci/run-tests.sh BUILD_DIR BIN...
set -u
build=$1; shift
limit=${COEV_TEST_TIMEOUT:-600}
pass=0; fail=0; failed=""
mkdir -p "$build/test-logs"
for t in "$@"; do
	name=$(basename "$t")
	log="$build/test-logs/$name.log"
	start=$(date +%s)
	timeout -k 10 "$limit" "$t" >"$log" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); status=ok
	else
		fail=$((fail + 1)); status="FAIL (exit $rc)"; failed="$failed $name"
	fi
	printf '%-40s %s  %ss\n' "$name" "$status" "$(( $(date +%s) - start ))"
	if [ "$status" != ok ]; then tail -n 40 "$log" | sed 's/^/    /'; fi
done
# Individual cmocka tests, summed from the logs ("[  PASSED  ] N test(s)."
# and "[  FAILED  ] N test(s), listed below:").
tpass=$(cat "$build"/test-logs/*.log | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
tfail=$(cat "$build"/test-logs/*.log | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' |
	awk '{n += $1} END {print n + 0}')
[ -z "$failed" ] || echo "failed binaries:$failed"
echo "binaries: $pass passed, $fail failed"
echo "tests: $tpass passed, $tfail failed"
[ "$fail" = 0 ]
