#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/demo_sync.sh — the middle of `make demo`: channels and a
# semaphore, after the tour and before the web server.
#
# Runs build/examples/pipeline (6,000,000 messages through fetch -> process
# -> store stages joined by bounded channels, about half a second) and
# build/examples/limit (100 jobs of 10-50 ms, at most 10 at a time under a
# coev_sem_t, about 0.3 s), each under a section title in the tour's
# style. Exits non-zero if either one's check fails.
#
#   examples/demo_sync.sh [BUILD_DIR]        (default: build)
set -u

B=${1:-build}
status=0

# section TITLE: a header line like tour.c's rule(), 76 columns wide.
section() {
	printf '\n== %s %s\n\n' "$1" "$(printf '=%.0s' $(seq $((76 - ${#1} - 4))))"
}

section "Channels: a pipeline of three stages"
cat <<'EOF2'
Two fetchers, four processors and two storers, joined by two channels of
256 messages each. A stage that gets ahead waits for room; when the
fetchers are done, main closes their channel, the processors drain it and
end, then the storers. The storers check that every message arrived once.

EOF2
echo "  \$ pipeline"
"$B/examples/pipeline" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || status=1

section "A semaphore: 100 requests, at most 10 at a time"
cat <<'EOF2'
asyncio.Semaphore(10) around 100 simulated requests of 10-50 ms: all 100
tasks start at once and 90 of them wait for a permit. The jobs count
themselves while they hold one; the peak must be exactly 10.

EOF2
echo "  \$ limit"
"$B/examples/limit" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ "$status" != 0 ]; then
	echo "demo: pipeline or limit reported a failed check" >&2
fi
exit "$status"
