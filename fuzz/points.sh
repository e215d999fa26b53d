#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz/points.sh [BIN] [RUNS] — which scheduling points (COEV__POINT
# sites, sched/platform.h) each harness reaches in RUNS random and RUNS
# PCT runs (default 2000), and which points of the build no harness
# reaches. One line per point: hits per harness, then kind and file:line.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build-sim/fuzz/coev-fuzz}
runs=${2:-2000}
[ -n "${1:-}" ] || make -s SIM=1 "$bin" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hs=$("$bin" --list | awk '{print $1}')
for h in $hs; do
	"$bin" "$h" --random "$runs" --seed 5 --points 2>/dev/null >"$tmp/r.$h"
	"$bin" "$h" --pct "$runs" --seed 6 --points 2>/dev/null >"$tmp/p.$h"
	# hits of both series, per point (the lines are in the same order)
	paste "$tmp/r.$h" "$tmp/p.$h" | awk '{print $1 + $4, $2, $3}' >"$tmp/$h"
done
printf '%s ' $hs
echo "point"
set -- $hs
paste -d' ' $(for h in $hs; do echo "$tmp/$h"; done) |
	awk -v n=$# '{ s = ""; for (i = 0; i < n; i++) s = s $(3 * i + 1) " ";
		print s $2 " " $3 }' | column -t >"$tmp/all"
cat "$tmp/all"
echo
echo "reached by no harness:"
awk -v n=$# '{ z = 1; for (i = 1; i <= n; i++) if ($i != 0) z = 0;
	if (z) print "  " $(n + 1) " " $(n + 2) }' "$tmp/all"
