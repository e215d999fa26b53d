#!/usr/bin/env bash
# fuzz/plants.sh — proof that the simulation finds races: build the
# simulation once per planted bug (a test-only flag, COEV_PLANT_*, never in
# a release build) and report how long PCT, the random scheduler and, with
# --afl SECONDS, an AFL++ campaign take to find each one.
#   fuzz/plants.sh [--afl SECONDS] [--runs N]
# Prints one line per bug and finder: runs (or executions) and seconds to
# the first failure, or "not found" within the budget.
set -u
cd "$(dirname "$0")/.."
afl=0; runs=200000
while [ $# -gt 0 ]; do
	case $1 in
	--afl) afl=$2; shift ;;
	--runs) runs=$2; shift ;;
	*) echo "usage: $0 [--afl SECONDS] [--runs N]" >&2; exit 2 ;;
	esac
	shift
done
# One line per planted bug: BUG:HARNESS (the flag is COEV_PLANT_BUG; what
# it breaks is said where the flag is used).
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
SELECT_CLAIM:select
SELECT_STALE:select
FUTURE_DL_LATE:future
WAITANY_GAVE_UP:waitany
"
for p in $plants; do
	bug=${p%%:*}; h=${p##*:}
	b=build-plant-$bug
	make -s SIM=1 B=$b SANFLAGS="-DCOEV_SIM=1 -DCOEV_PLANT_$bug=1" \
		$b/fuzz/coev-fuzz >/dev/null || exit 1
	for mode in pct random; do
		out=$(timeout 600 $b/fuzz/coev-fuzz $h --$mode $runs --seed 7 2>&1 |
			grep -E "failed at run|runs/s")
		case $out in
		*"failed at run"*)
			echo "$bug ($h) $mode: $(echo "$out" | sed -n 's/.*failed at run \([0-9]*\) after \([0-9.]*\) s.*/found at run \1 after \2 s/p')" ;;
		*) echo "$bug ($h) $mode: not found in $runs runs" ;;
		esac
	done
	if [ "$afl" != 0 ]; then
		ci/fuzz.sh --plant "$bug" --only "$h" "$afl" 2>&1 | grep -E "^(found|not found)" |
			sed "s/^/$bug ($h) afl: /"
	fi
done
