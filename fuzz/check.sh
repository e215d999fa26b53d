#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz/check.sh BIN — the simulation's model tests, run by make check:
# every harness under PCT (depth 3) and under random schedules, 10,000
# runs each by default (COEV_SIM_RUNS), then every committed input
# (fuzz/corpus/ and the regression inputs in fuzz/regress/) replayed; a
# regression named NAME.seed holds the arguments of one run of a series
# (coev-fuzz HARNESS --one ARGS).
set -eu
bin=$1
runs=${COEV_SIM_RUNS:-10000}
dir=$(dirname "$0")
for h in $("$bin" --list | awk '{print $1}'); do
	"$bin" "$h" --pct "$runs" --depth 3 --seed 1
	"$bin" "$h" --random "$runs" --seed 2
	for d in "$dir/corpus/$h" "$dir/regress/$h"; do
		[ -d "$d" ] || continue
		n=0
		for f in "$d"/*; do
			[ "$(basename "$f")" = README ] && continue
			[ -f "$f" ] || continue
			args=("$f")
			case $f in *.seed) read -r -a args <"$f" && args=(--one "${args[@]}") ;; esac
			"$bin" "$h" "${args[@]}" 2>/dev/null || {
				echo "fuzz/check.sh: $f fails; replay it with fuzz/replay $f" >&2
				exit 1
			}
			n=$((n + 1))
		done
		echo "coev-fuzz $h: $n inputs of $d replayed" >&2
	done
done
