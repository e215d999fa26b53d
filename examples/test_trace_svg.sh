#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/test_trace_svg.sh — tests of build/examples/coev-trace-svg, the
# trace-to-SVG tool.
#
# On examples/trace-sample.json (2 workers): exit status 0, an SVG on
# stdout (well-formed, by xmllint when it is installed), one lane label per
# worker, task boxes with <title>s naming the sample's tasks, names with
# " < > & escaped, -o writing the same picture, --from/--to leaving out what
# is outside the window. On a generated trace of 60,000 events: boxes under
# a pixel merged and flow arrows capped at 2,000, the legend saying so.
# Then the errors, each exit status 2 with a message: a malformed line
# (named by its number), a file that is not a coev trace, a missing file,
# bad options. Any sanitizer report fails the test.
#
#   examples/test_trace_svg.sh [BUILD_DIR]    BUILD_DIR: build (default),
#                                             build-asan, build-tsan, ...
# Exits non-zero on any failure.
set -u

B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
tool="$B/examples/coev-trace-svg"
sample="$here/trace-sample.json"
if [ ! -x "$tool" ]; then
	echo "test_trace_svg: $tool is missing (make $tool)" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { echo "ok   - $*"; }
fail() {
	echo "FAIL - $*"
	failures=$((failures + 1))
}

# run ARGS...: run the tool (at most 60 s), stdout in $tmp/out, stderr in
# $tmp/err, exit status in $status; a sanitizer report is a failure.
run() {
	timeout 60 "$tool" "$@" >"$tmp/out" 2>"$tmp/err"
	status=$?
	if grep -q -E 'Sanitizer|runtime error:' "$tmp/err"; then
		fail "coev-trace-svg $*: sanitizer report"
		sed 's/^/    /' "$tmp/err"
	fi
}

# check WHAT COMMAND...: ok if COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then
		pass "$what"
	else
		fail "$what"
	fi
}

# shellcheck disable=SC2317 # has, count and well_formed are run by check
has() { grep -q -F -- "$1" "$tmp/out"; }
count() { grep -c -F -- "$1" "$tmp/out"; }
# shellcheck disable=SC2317
well_formed() {
	if command -v xmllint >/dev/null; then
		xmllint --noout "$1"
	else
		# Without xmllint: at least one root element, opened and closed.
		head -c 100 "$1" | grep -q '<svg' && tail -n 1 "$1" | grep -q '^</svg>$'
	fi
}

# ---- the sample ----------------------------------------------------------
run "$sample"
check "the sample: exit status 0" [ "$status" = 0 ]
check "the output starts with <?xml or <svg" \
	grep -q -E '^(<\?xml|<svg)' <(head -n 1 "$tmp/out")
check "the SVG is well-formed" well_formed "$tmp/out"
cp "$tmp/out" "$tmp/sample.svg"
for w in 0 1; do
	check "one lane label for worker $w" [ "$(count ">worker $w</text>")" = 1 ]
done
check "no lane for a third worker" [ "$(count ">worker 2</text>")" = 0 ]
check "a task box's title names its task" \
	grep -q -E '<rect [^>]*><title>parse \(task 3\)' "$tmp/out"
check "the title gives start, duration and how the run ended" \
	has "$(printf 'start 6.050 \302\265s, duration 10.450 \302\265s\nend: yield')"
check "an idle box has a title too" grep -q '<rect [^>]*><title>idle' "$tmp/out"
check "quotes in a name are escaped" has 'http &quot;GET /&quot; (task 2)'
check "< > & in a name are escaped, \\u00e9 decoded" \
	has "caf$(printf '\303\251') &lt;menu&gt; &amp; co"
check "nothing unescaped" [ "$(count '<menu>')" = 0 ]
check "wake and steal arrows with arrowheads" \
	grep -q 'marker-end="url(#m0)"><title>wake 2: worker 1' "$tmp/out"
check "a steal arrow" grep -q '<title>steal 1: worker 0 at 5.900' "$tmp/out"
check "the sample's 4 flows drawn" has '4 flow arrows drawn of 4<'
check "the tiny runs of worker 1 are merged" \
	grep -q -E '<title>[0-9]+ runs merged' "$tmp/out"
check "a time axis in steps of 5 \u00b5s: 5" has "$(printf '>5 \302\265s</text>')"
check "a time axis in steps of 5 \u00b5s: 30" has "$(printf '>30 \302\265s</text>')"

run "$sample" -o "$tmp/o.svg" --width 800
check "-o: exit status 0" [ "$status" = 0 ]
check "-o: nothing on stdout" [ ! -s "$tmp/out" ]
check "-o: writes the SVG" grep -q 'width="800"' "$tmp/o.svg"

run "$sample" --from 20 --to 25
check "--from 20 --to 25: exit status 0" [ "$status" = 0 ]
check "the window: runs inside it are drawn" has 'main (task 1)'
check "the window: runs outside it are not" [ "$(count 'start 0.000')" = 0 ]
check "the window is well-formed" well_formed "$tmp/out"

# ---- a large trace: merging and the arrow cap ----------------------------
awk 'BEGIN {
	print "{\"traceEvents\":["
	for (i = 0; i < 20000; i++) {
		w = i % 2 + 1; t = i * 0.05
		printf "{\"ph\":\"X\",\"name\":\"t%d\",\"cat\":\"task\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":0.040,\"args\":{\"task\":%d,\"end\":\"park\"}},\n", i % 7, w, t, i
		printf "{\"ph\":\"s\",\"name\":\"wake\",\"cat\":\"wake\",\"id\":%d,\"pid\":1,\"tid\":%d,\"ts\":%.3f},\n", i, w, t + 0.01
		printf "{\"ph\":\"f\",\"name\":\"wake\",\"cat\":\"wake\",\"bp\":\"e\",\"id\":%d,\"pid\":1,\"tid\":%d,\"ts\":%.3f},\n", i, 3 - w, t + 0.02
	}
	print "{\"ph\":\"X\",\"name\":\"idle\",\"cat\":\"idle\",\"pid\":1,\"tid\":1,\"ts\":1000.000,\"dur\":1.000}"
	print "],\"displayTimeUnit\":\"ns\",\"otherData\":{\"version\":\"coev 0.1.0\",\"workers\":2,\"dropped\":7}}"
}' >"$tmp/big.json"
run "$tmp/big.json"
check "60,000 events: exit status 0" [ "$status" = 0 ]
check "60,000 events: well-formed" well_formed "$tmp/out"
boxes=$(count '<rect ')
check "20,000 runs drawn as at most 3,000 boxes ($boxes)" [ "$boxes" -le 3000 ]
check "the legend counts the merged runs" \
	grep -q -E '20000 task runs and 1 idle slices; [0-9]+ boxes \([0-9]+ runs under a pixel merged\)' "$tmp/out"
check "2,000 arrows drawn" \
	[ "$(count 'marker-end="url(#m0)"><title>')" = 2000 ]
check "the legend says how many arrows were omitted" \
	has '2000 flow arrows drawn of 20000 (18000 omitted: at most 2000); 7 events dropped'

# ---- errors --------------------------------------------------------------
sed '5s/"ts":/"ts" /' "$sample" >"$tmp/bad.json"
run "$tmp/bad.json"
check "a malformed line: exit status 2" [ "$status" = 2 ]
check "the message names the file and line 5" \
	grep -q 'bad.json:5: malformed event' "$tmp/err"
check "nothing written on stdout" [ ! -s "$tmp/out" ]

tail -n +2 "$sample" >"$tmp/nohead.json"
run "$tmp/nohead.json"
check "not a coev trace: exit status 2" [ "$status" = 2 ]
check "the message says so" grep -q 'nohead.json:1: not a coev trace' "$tmp/err"

run "$tmp/missing.json"
check "a missing file: exit status 2" [ "$status" = 2 ]
check "the message names it" grep -q 'missing.json: No such file' "$tmp/err"

run "$sample" --width 5
check "--width 5: exit status 2" [ "$status" = 2 ]
run "$sample" --from 9 --to 3
check "--to before --from: exit status 2" [ "$status" = 2 ]
run
check "no file: exit status 2" [ "$status" = 2 ]
check "no file: the usage is shown" grep -q usage "$tmp/err"

if [ "$failures" = 0 ]; then
	echo "test_trace_svg: all passed"
	exit 0
fi
echo "test_trace_svg: $failures failure(s)"
exit 1
