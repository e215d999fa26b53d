#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/ab.sh — coev at two revisions on its own workloads, in one run.
#
#   bench/ab.sh BASE_REV                  BASE_REV against this checkout as it is
#   bench/ab.sh BASE_REV NEW_REV          two revisions
#   WORKLOADS=spawn RUNS=11 bench/ab.sh HEAD~3
#
# Environment:
#   WORKLOADS      any of: spawn spawn-wg yield fib pingpong mutex
#                  (default: spawn yield pingpong)
#   RUNS           runs per workload and build (default 7)
#   BENCH_TIMEOUT  seconds before one run is killed and counted failed (120)
#
# For a change that should not cost anything (files moved between folders,
# code reorganised), a comparison with an old report is not enough: the
# machine's speed drifts between sessions by more than the change may cost.
# This script measures both trees in the same session instead. It exports
# BASE_REV (and NEW_REV, if given) with `git archive` into a temporary
# directory, builds each tree's libcoev.a with its own Makefile (`make lib`,
# B= a build directory of its own, nothing written into the trees), and
# compiles the benchmark programs of the NEW tree (bench/coev/bench.c,
# sync_bench.c) against each tree's include/ and libcoev.a: the same
# benchmark source on both sides, so that only the library differs. They
# use the public API alone; when it changed so that they do not build
# against BASE, the script says so and stops.
#
# The two builds then run alternately, the first of each pair swapping
# every round (base, new, new, base, base, new, ...), each run a fresh
# process on 2 workers as in bench/run.sh, so that slow drifts of the
# machine and the place within a pair hit both alike. Per workload it
# prints each build's median, min..max and spread ((max - min) / median,
# as bench/report.py computes it), the ratio new/base of the medians, the
# ratios of the runs that ran back to back, and a verdict: "within spread" when the new median lies in
# base's min..max or |new/base - 1| is no more than the larger spread, else
# "SLOWER" or "faster". One more run of each build per workload under
# `perf stat -e page-faults,context-switches` shows those kernel counters,
# when perf is installed and permitted. The temporary directory is removed
# on exit.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WORKLOADS=${WORKLOADS:-spawn yield pingpong}
RUNS=${RUNS:-7}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
WORKERS=2

say() { echo "ab: $*" >&2; }
die() {
	say "$*"
	exit 1
}
usage() {
	echo "usage: bench/ab.sh BASE_REV [NEW_REV]  (env: WORKLOADS, RUNS, BENCH_TIMEOUT)" >&2
	exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
case $1 in -h | --help) usage ;; esac
[ "$RUNS" -ge 1 ] 2>/dev/null || die "RUNS must be a whole number >= 1"

# metric_of WORKLOAD: the key of its BENCH line that is compared (every
# one lower-is-better). pipeline is left out: its throughput swings
# several-fold within a session with where its stages land.
metric_of() {
	case $1 in
	spawn | spawn-wg | fib) echo ns_per_task ;;
	yield) echo ns_per_yield ;;
	pingpong) echo ns_per_roundtrip ;;
	mutex) echo ns_per_pair ;;
	esac
}
# prog_of WORKLOAD: the benchmark program that runs it, as bench/run.sh
# builds them.
prog_of() {
	case $1 in
	spawn | yield | fib) echo bench ;;
	spawn-wg | pingpong | mutex) echo sync_bench ;;
	esac
}
for w in $WORKLOADS; do
	[ -n "$(metric_of "$w")" ] || die "unknown workload '$w' (known: spawn spawn-wg yield fib pingpong mutex)"
done

# Revisions are resolved once, so that a commit made meanwhile in this
# checkout does not change what is measured.
base=$(git -C "$ROOT" rev-parse --verify -q "$1^{commit}") || die "not a revision: $1"
new=""
if [ $# = 2 ]; then
	new=$(git -C "$ROOT" rev-parse --verify -q "$2^{commit}") || die "not a revision: $2"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/coev-ab.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu_busy: percent of all CPUs busy over one second while this script is
# idle: load from other processes, which competes with the benchmarks.
cpu_busy() {
	local a b
	a=$(head -n1 /proc/stat)
	sleep 1
	b=$(head -n1 /proc/stat)
	echo "$a $b" | awk '{ n = (NF - 2) / 2; t = 0; i = 0
		for (k = 2; k <= 1 + n; k++) { d = $(k + n + 1) - $k; t += d
			if (k == 5 || k == 6) i += d }
		printf "%d", (t > 0 ? 100 * (t - i) / t + 0.5 : 0) }'
}
busy_start=$(cpu_busy)

# ---- the two trees and their builds --------------------------------------

# export REV DIR: the tree of REV, as committed, in DIR.
export_rev() {
	mkdir -p "$2" || die "cannot create $2"
	git -C "$ROOT" archive -o "$2.tar" "$1" || die "git archive $1 failed"
	tar -x -C "$2" -f "$2.tar" || die "cannot unpack the tree of $1"
}
export_rev "$base" "$TMP/base/src"
if [ -n "$new" ]; then
	export_rev "$new" "$TMP/new/src"
	new_src=$TMP/new/src
	new_name=$(git -C "$ROOT" log -1 --format='%h %s' "$new" | cut -c1-72)
else
	new_src=$ROOT
	new_name="working tree at $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
fi
base_name=$(git -C "$ROOT" log -1 --format='%h %s' "$base" | cut -c1-72)

progs=""
for w in $WORKLOADS; do
	case " $progs " in *" $(prog_of "$w") "*) ;; *) progs="$progs $(prog_of "$w")" ;; esac
done
cflags="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror"

# show_log LOG: the first errors of a failed build, else its last lines.
show_log() {
	{ grep -m 10 -E 'error|undefined reference' "$1" || tail -n 15 "$1"; } |
		sed 's/^/    /' >&2
}

# build SIDE SRC: libcoev.a of the tree SRC into $TMP/SIDE/lib with its own
# Makefile, then the NEW tree's benchmark programs against it.
build() {
	local side=$1 src=$2 log=$TMP/$1/build.log p
	say "building $side ($src)"
	mkdir -p "$TMP/$side"
	if ! make -s -C "$src" -j"$(nproc)" B="$TMP/$side/lib" lib >"$log" 2>&1; then
		show_log "$log"
		die "libcoev of $side did not build"
	fi
	for p in $progs; do
		# shellcheck disable=SC2086
		if ! cc $cflags -I"$src/include" -I"$src" "$new_src/bench/coev/$p.c" \
			-o "$TMP/$side/$p" "$TMP/$side/lib/libcoev.a" \
			-lev -lck -lpthread -lm >>"$log" 2>&1; then
			show_log "$log"
			die "bench/coev/$p.c of new does not build against $side's public API (include/) and libcoev.a"
		fi
	done
}
build base "$TMP/base/src"
build new "$new_src"
api_note=""
diff -rq "$TMP/base/src/include" "$new_src/include" >/dev/null 2>&1 ||
	api_note="note: include/ differs between base and new; the benchmarks built against both"

# ---- runs ----------------------------------------------------------------

# run SIDE WORKLOAD: one run; prints the metric's value, or "-" when the
# run failed (and says why on stderr).
run() {
	local side=$1 w=$2 metric out rc v
	metric=$(metric_of "$w")
	out=$(timeout -k 5 "$BENCH_TIMEOUT" "$TMP/$side/$(prog_of "$w")" "$w" "$WORKERS" \
		2>>"$TMP/$side/run.log")
	rc=$?
	v=$(printf '%s\n' "$out" | grep "^BENCH $w coev " | tail -n 1 |
		sed -n "s/.* $metric=\([^ ]*\).*/\1/p")
	if [ $rc != 0 ] || [ -z "$v" ]; then
		say "  $w $side FAILED (exit status $rc; $(tail -n 1 "$TMP/$side/run.log"))"
		echo -
		return
	fi
	echo "$v"
}

# perf is optional: without it, or when perf_event_paranoid forbids even
# counting one's own processes, the counters are left out with a note.
perf_ok=0
perf_note=""
if ! command -v perf >/dev/null; then
	perf_note="perf is not installed: kernel counters skipped"
elif ! perf stat -x, -e page-faults,context-switches -o /dev/null -- true >/dev/null 2>&1; then
	perf_note="perf is not permitted here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)): kernel counters skipped"
else
	perf_ok=1
fi

# perf_run SIDE WORKLOAD: one more run under perf stat; prints
# "page-faults=N context-switches=N" (threads included).
perf_run() {
	local side=$1 w=$2 csv=$TMP/perf.csv
	timeout -k 5 "$BENCH_TIMEOUT" perf stat -x, -e page-faults,context-switches \
		-o "$csv" -- "$TMP/$side/$(prog_of "$w")" "$w" "$WORKERS" >/dev/null 2>&1 ||
		{ echo "failed"; return; }
	awk -F, '$3 ~ /^(page-faults|context-switches)/ { sub(/:.*/, "", $3)
		printf "%s%s=%s", sep, $3, $1; sep = " " } END { print "" }' "$csv"
}

# summarize WORKLOAD "BASE VALUES" "NEW VALUES": the report line of a
# workload. The k-th values of each list ran back to back ("-": failed).
summarize() {
	awk -v w="$1" -v m="$(metric_of "$1")" -v b="$2" -v n="$3" '
	function sortv(v, k, i, j, t) {
		for (i = 2; i <= k; i++) {
			t = v[i]
			for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
			v[j + 1] = t
		}
	}
	function med(v, k) { return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }
	function fmt(x) { return sprintf(x >= 100 ? "%.1f" : x >= 10 ? "%.2f" : "%.3f", x) }
	BEGIN {
		k = split(b, B, " "); split(n, N, " ")
		for (i = 1; i <= k; i++) {
			if (B[i] != "-") bv[++kb] = B[i] + 0
			if (N[i] != "-") nv[++kn] = N[i] + 0
			if (B[i] != "-" && N[i] != "-") rv[++kr] = N[i] / B[i]
		}
		if (!kb || !kn) {
			printf "%-9s %-17s %s\n", w, m, "FAILED: " (kb ? "new" : "base") " has no successful run"
			exit
		}
		sortv(bv, kb); sortv(nv, kn); sortv(rv, kr)
		mb = med(bv, kb); mn = med(nv, kn); r = mn / mb
		sb = (bv[kb] - bv[1]) / mb; sn = (nv[kn] - nv[1]) / mn
		wide = sb > sn ? sb : sn
		d = r > 1 ? r - 1 : 1 - r
		if ((mn >= bv[1] && mn <= bv[kb]) || d <= wide) verdict = "within spread"
		else verdict = r > 1 ? "SLOWER" : "faster"
		printf "%-9s %-17s %-32s %-32s %-8s %-21s %s\n", w, m,
			fmt(mb) " [" fmt(bv[1]) ".." fmt(bv[kb]) "] " sprintf("%.1f%%", 100 * sb),
			fmt(mn) " [" fmt(nv[1]) ".." fmt(nv[kn]) "] " sprintf("%.1f%%", 100 * sn),
			sprintf("%.3f", r),
			sprintf("%.3f [%.3f..%.3f]", med(rv, kr), rv[1], rv[kr]), verdict
	}'
}

start=$SECONDS
report=$TMP/report.txt
perf_lines=$TMP/perf.txt
: >"$report"
: >"$perf_lines"
for w in $WORKLOADS; do
	bvals=""
	nvals=""
	for i in $(seq 1 "$RUNS"); do
		# The build that goes first swaps every round: a run's place
		# in its pair can matter (what the run before it left behind,
		# the CPU's clock), and a fixed order would charge that to
		# one build.
		if [ $((i % 2)) = 1 ]; then
			b=$(run base "$w")
			n=$(run new "$w")
		else
			n=$(run new "$w")
			b=$(run base "$w")
		fi
		say "$w run $i/$RUNS: base $b new $n $(metric_of "$w")"
		bvals="$bvals $b"
		nvals="$nvals $n"
	done
	summarize "$w" "$bvals" "$nvals" >>"$report"
	if [ $perf_ok = 1 ]; then
		for side in base new; do
			printf '%-9s %-5s %s\n' "$w" "$side" "$(perf_run "$side" "$w")" >>"$perf_lines"
		done
	fi
done
busy_end=$(cpu_busy)

# ---- report --------------------------------------------------------------

echo "coev A/B — $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -srm), $(nproc) CPUs, $(cc --version | head -n1)"
echo "base: $base_name"
echo "new:  $new_name"
echo "workloads: $WORKLOADS; runs: $RUNS each, in pairs (base, new, new, base, ...); workers: $WORKERS; the runs took $((SECONDS - start))s"
echo "CPU busy with other processes (1 s sample): ${busy_start}% before the builds, ${busy_end}% after the runs"
[ -n "$api_note" ] && echo "$api_note"
echo
printf '%-9s %-17s %-32s %-32s %-8s %-21s %s\n' workload metric \
	"base: median [min..max] spread" "new: median [min..max] spread" \
	new/base "round by round" verdict
cat "$report"
echo "spread: (max - min) / median; round by round: median [min..max] of new/base over the runs that ran back to back"
echo "within spread: new's median in base's min..max, or |new/base - 1| <= the larger spread"
echo
if [ $perf_ok = 1 ]; then
	echo "perf stat, one more run of each build per workload:"
	cat "$perf_lines"
else
	echo "$perf_note"
fi
