#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz/plants.sh — proof that the simulation finds races: build the
# simulation once per planted bug (a test-only flag, COEV_PLANT_*, never in
# a release build, in its own directory build-plant-BUG) and measure how
# long PCT, the random scheduler and, with --afl, an AFL++ campaign take to
# find each one, each within a budget of wall-clock seconds.
#   fuzz/plants.sh [--afl] [--budget SECONDS] [--only BUG]
# Prints one line per bug and finder: the run (or executions) and seconds
# to the first failure, "OVER BUDGET" for a find that took longer, or "not
# found". A bug passes when some finder found it within the budget (60 s,
# the issue's bar); the script exits 1 when any bug did not.
set -u
cd "$(dirname "$0")/.."
afl=0; budget=60; only=""
while [ $# -gt 0 ]; do
	case $1 in
	--afl) afl=1 ;;
	--budget) budget=$2; shift ;;
	--only) only=$2; shift ;;
	*) echo "usage: $0 [--afl] [--budget SECONDS] [--only BUG]" >&2; exit 2 ;;
	esac
	shift
done
# One line per planted bug: BUG:HARNESS (the flag is COEV_PLANT_BUG; what
# it breaks is said where the flag is used). fuzz/replay reads this list.
plants="
LOST_WAKEUP:sched
STEAL_TWICE:sched
FUTURE_TWICE:future
SEM_FORGET:sync
COND_UNLOCK_EARLY:lock
FAIR_TWICE:lock
BARRIER_KEEP:lock
RWLOCK_LATE:lock
RWLOCK_BARGE:lock
SEM_LIFO:lock
COND_LATE:lock
SCOPE_CUT:scope
POOL_IDLE_EXIT:life
FD_EDGE_NOWAITER:io
IO_LATE_TIMEOUT:io
IO_EOF_DRAIN:io
IO_TRY_DRAIN:io
SELECT_CLAIM:select
SELECT_STALE:select
FUTURE_DL_LATE:future
WAITANY_GAVE_UP:waitany
ANY_CLAIM_IGNORED:any
ANY_DL_EARLY:any
PARK_NO_RECHECK:sched
WAKE_TWICE:sched
BCAST_RECHECK:bcast
LATEST_RECHECK:latest
"
failed=""
for p in $plants; do
	bug=${p%%:*}; h=${p##*:}
	[ -z "$only" ] || [ "$only" = "$bug" ] || continue
	b=build-plant-$bug
	nice -n 10 make -s SIM=1 B=$b SANFLAGS="-DCOEV_SIM=1 -DCOEV_PLANT_$bug=1" \
		$b/fuzz/coev-fuzz >/dev/null || exit 1
	ok=0
	for mode in pct random; do
		# --secs stops the series at the budget; timeout is the guard
		# for a run that hangs outside the simulation's step budget.
		out=$(timeout $((budget + 30)) nice -n 10 $b/fuzz/coev-fuzz "$h" \
			--$mode 100000000 --secs "$budget" --seed 7 2>&1 |
			grep -E "failed at run|runs/s")
		case $out in
		*"failed at run"*)
			run=$(echo "$out" | sed -n 's/.*failed at run \([0-9]*\) after.*/\1/p')
			s=$(echo "$out" | sed -n 's/.*failed at run [0-9]* after \([0-9.]*\) s.*/\1/p')
			if awk -v s="$s" -v b="$budget" 'BEGIN{exit !(s <= b)}'; then
				ok=1; verdict=""
			else
				verdict=" OVER BUDGET"
			fi
			echo "$bug ($h) $mode: found at run $run after $s s$verdict" ;;
		*) echo "$bug ($h) $mode: not found in $budget s ($(echo "$out" | sed -n 's/.*: \([0-9]*\) runs,.*/\1/p') runs)" ;;
		esac
	done
	if [ "$afl" = 1 ]; then
		out=$(ci/fuzz.sh --plant "$bug" --only "$h" "$budget" 2>&1 | grep -E "^(found|not found)")
		echo "$bug ($h) afl: $out"
		case $out in
		found*)
			s=$(echo "$out" | sed -n 's/^found after \([0-9.]*\) s.*/\1/p')
			awk -v s="$s" -v b="$budget" 'BEGIN{exit !(s <= b)}' && ok=1 ;;
		esac
	fi
	[ $ok = 1 ] || failed="$failed $bug"
	# Its regression inputs (fuzz/regress/HARNESS/plant-BUG...) must
	# still fail on its build: an input that passes there tests nothing
	# any more (the harness's program changed); find it again.
	low=$(echo "$bug" | tr 'A-Z_' 'a-z-')
	for f in fuzz/regress/"$h"/plant-"$low" fuzz/regress/"$h"/plant-"$low"[-.@]*; do
		[ -f "$f" ] || continue
		args=("$f")
		case $f in *.seed) read -r -a args <"$f" && args=(--one "${args[@]}") ;; esac
		if ($b/fuzz/coev-fuzz "$h" "${args[@]}"; exit $?) >/dev/null 2>&1; then
			echo "$bug ($h): $f passes on the planted build: stale, find it again"
			failed="$failed $bug(stale)"
		fi
	done
done
if [ -n "$failed" ]; then
	echo "fuzz/plants.sh: not found within $budget s:$failed" >&2
	exit 1
fi
echo "fuzz/plants.sh: every planted bug found within $budget s"
