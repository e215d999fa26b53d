#!/usr/bin/env bash
# Runs every test binary in its own process under a timeout and prints one
# closing line: "N passed, N failed". Usage: ci/run-tests.sh BUILD_DIR BIN...
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
echo "test binaries: $pass passed, $fail failed"
[ -z "$failed" ] || echo "failed:$failed"
[ "$fail" = 0 ]
