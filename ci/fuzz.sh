#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ci/fuzz.sh — an AFL++ campaign on the simulation harnesses (coev-fuzz
# --list).
#   ci/fuzz.sh [SECONDS]          total budget (default 300), split evenly
#                                 between the harnesses
#   --long                        the nightly campaign: 30 minutes over all
#                                 harnesses (ci/fuzz.sh --long; as
#                                 ci/fuzz.sh 1800)
#   --only HARNESS                one harness with the whole budget
#   --plant BUG                   fuzz a build with a planted bug
#                                 (fuzz/plants.sh) and stop at the first
#                                 crash: prints "found after S s, E execs"
#   --update-corpus               copy the minimised corpus into
#                                 fuzz/corpus/ (to commit it)
# Builds coev-fuzz with afl-clang-fast and ASan+UBSan on the simulation
# platform (build-fuzz/), runs one main and one secondary instance per
# harness (the machine's two cores), without the UI, from fuzz/corpus/.
# Afterwards each harness's queue is minimised with afl-cmin into
# build-fuzz/corpus/HARNESS (--update-corpus copies it to fuzz/corpus/).
# Any crash or hang fails the script, and each is kept as a regression
# input at once: fuzz/regress/HARNESS/afl-DATE-crash-N (or -hang-N), which
# fuzz/check.sh replays (so make check fails until the bug is fixed) and
# fuzz/replay shows; the input is its own seed (program and schedule).
# Commit it with the fix. A planted campaign keeps its first crash as
# build-fuzz-plant-BUG/plant-BUG-afl (fuzz/replay rebuilds the plant).
# Prints executions per second and edge coverage per harness.
set -u
cd "$(dirname "$0")/.."
budget=300; only=""; plant=""; update=0
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift ;;
	--plant) plant=$2; shift ;;
	--update-corpus) update=1 ;;
	--long) budget=1800 ;;
	[0-9]*) budget=$1 ;;
	*) echo "usage: $0 [SECONDS | --long] [--only HARNESS] [--plant BUG] [--update-corpus]" >&2; exit 2 ;;
	esac
	shift
done
command -v afl-fuzz >/dev/null || {
	echo "ci/fuzz.sh: installing afl++" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y -q --no-install-recommends afl++ >&2 || exit 1
}
b=build-fuzz
flags="-DCOEV_SIM=1"
if [ -n "$plant" ]; then
	b=build-fuzz-plant-$plant
	flags="$flags -DCOEV_PLANT_$plant=1"
fi
# SANFLAGS of the asan build, and the simulation's: set here because B and
# the flags are given on the command line.
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DCOEV_ASAN=1"
mkdir -p $b
make -s SIM=1 CC=afl-clang-fast B=$b SANFLAGS="$san $flags" $b/fuzz/coev-fuzz \
	>$b/make.log 2>&1 || { cat $b/make.log; exit 1; }
bin=$b/fuzz/coev-fuzz
harnesses=${only:-$($bin --list | awk '{print $1}')}
n=$(echo $harnesses | wc -w)
per=$((budget / n))
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1 AFL_QUIET=1
export ASAN_OPTIONS=abort_on_error=1:symbolize=0:detect_leaks=0
fail=0
for h in $harnesses; do
	out=$b/out/$h
	rm -rf "$out"
	mkdir -p "$out"
	extra=""
	# A planted bug is hunted from the first seeds, not from the corpus
	# (which may already hold inputs that reach it), until the first
	# crash.
	in=fuzz/corpus/$h
	if [ -n "$plant" ]; then
		export AFL_BENCH_UNTIL_CRASH=1
		in=fuzz/seeds/$h
	fi
	t0=$(date +%s.%N)
	afl-fuzz -i $in -o "$out" -M main -V "$per" -m none -t 2000 \
		-- $bin "$h" >"$out/main.log" 2>&1 &
	main=$!
	if [ -z "$plant" ]; then
		afl-fuzz -i fuzz/corpus/$h -o "$out" -S second -V "$per" -m none \
			-t 2000 -- $bin "$h" >"$out/second.log" 2>&1 &
		second=$!
		wait $second
	fi
	wait $main
	wall=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{print a - b}')
	stats=$out/main/fuzzer_stats
	if [ ! -f "$stats" ]; then
		echo "ci/fuzz.sh: $h: afl-fuzz did not start:" >&2
		tail -n 20 "$out/main.log" >&2
		fail=1
		continue
	fi
	get() { sed -n "s/^$1 *: *//p" "$stats"; }
	execs=0; for s in "$out"/*/fuzzer_stats; do
		execs=$((execs + $(sed -n 's/^execs_done *: *//p' "$s")))
	done
	echo "$h: $execs executions in ${per} s ($((execs / (per > 0 ? per : 1))) per s over" \
		"$(ls -d "$out"/*/ | wc -l) instances), edges $(get edges_found) of" \
		"$(get total_edges), bitmap $(get bitmap_cvg), corpus $(get corpus_count)"
	found=$(ls "$out"/*/crashes/id:* "$out"/*/hangs/id:* 2>/dev/null)
	if [ -n "$plant" ]; then
		first=$(ls "$out"/main/crashes/id:* 2>/dev/null | head -n 1)
		if [ -n "$first" ]; then
			e=$(echo "$first" | sed -n 's/.*execs:\([0-9]*\).*/\1/p')
			low=$(echo "$plant" | tr 'A-Z_' 'a-z-')
			cp "$first" "$b/plant-$low-afl"
			printf 'found after %.1f s (wall, afl-fuzz start included), %s execs: %s (fuzz/replay %s %s)\n' \
				"$wall" "${e:-?}" "$first" "$b/plant-$low-afl" "$h"
		else
			echo "not found in $per s"
		fi
		continue
	fi
	if [ -n "$found" ]; then
		fail=1
		mkdir -p $b/findings/$h fuzz/regress/$h
		cp $found $b/findings/$h/
		echo "ci/fuzz.sh: $h: $(echo "$found" | wc -l) crashes or hangs, kept in fuzz/regress/$h/ (and $b/findings/$h):" >&2
		stamp=$(date -u +%Y%m%d-%H%M%S)
		k=0
		for f in $found; do
			k=$((k + 1))
			case $f in */hangs/*) kind=hang ;; *) kind=crash ;; esac
			keep=fuzz/regress/$h/afl-$stamp-$kind-$k
			cp "$f" "$keep"
			echo "--- $keep (from $f; fuzz/replay $keep)" >&2
			$bin "$h" "$f" 2>&1 | tail -n 60 >&2
		done
	fi
	# Minimise the corpus from what both instances found.
	rm -rf $b/corpus/$h
	mkdir -p $b/corpus
	# AFL_ALLOW_TMP: afl-cmin refuses directories under /tmp (a guard
	# against other users' symlinks there); ours are inside this clone's
	# own build directory, which a clone under /tmp (as CI's) still owns.
	AFL_ALLOW_TMP=1 afl-cmin -i "$out/main/queue" -o $b/corpus/$h -m none -t 2000 -- $bin "$h" \
		>"$out/cmin.log" 2>&1 || echo "ci/fuzz.sh: $h: afl-cmin failed (see $out/cmin.log)" >&2
	if [ $update = 1 ] && [ -d $b/corpus/$h ]; then
		rm -f fuzz/corpus/$h/*
		cp $b/corpus/$h/* fuzz/corpus/$h/
	fi
	echo "$h: minimised corpus $(ls $b/corpus/$h 2>/dev/null | wc -l) inputs"
done
exit $fail
