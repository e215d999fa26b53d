#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/redis/run-redis.sh — the redis workload, both sides: redis-benchmark
# and coev's hiredis client (bench/coev/redis_bench.c), in turn, against the
# redis-server on 127.0.0.1:$COEV_REDIS_PORT (default 6390; ci/servers.sh
# start runs one). bench/run.sh calls it once per round; it also runs alone:
#
#   bench/redis/run-redis.sh                 one round
#   ROUNDS=5 bench/redis/run-redis.sh        five rounds
#   REDIS_MODES=all bench/redis/run-redis.sh every mode of coev-redis-bench
#
# Environment:
#   COEV_REDIS_PORT  the server's port (6390)
#   WORKERS          coev's workers (2)
#   REDIS_REQUESTS   requests per test, SET and GET each (100000)
#   REDIS_CLIENTS    clients: connections of redis-benchmark, tasks of coev (50)
#   REDIS_MODES      coev-redis-bench's modes (conn_per_task shared; all)
#   ROUNDS           rounds (1)
#   BENCH_BUILD      where coev-redis-bench is built (bench/build)
#
# Each round prints, on stdout:
#   BENCH redis redis-benchmark workers=1 ops_per_s=<mean of SET and GET>
#       set_per_s=... get_per_s=... clients=50 requests=N
#   BENCH redis coev workers=2 ops_per_s=... mode=conn_per_task ...
#   BENCH redis coev-shared workers=2 ops_per_s=... mode=shared ...
# redis-benchmark runs `-t set,get -c 50 -n N -d 3 -P 1 --csv` (one thread:
# workers=1); coev runs the same requests with one connection per task
# (runtime "coev", the comparison) and, as extra lines, its other modes.
# The two sides alternate, redis-benchmark first. Exits non-zero when a
# side fails or the server does not answer; messages go to stderr.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${COEV_REDIS_PORT:-6390}
WORKERS=${WORKERS:-2}
N=${REDIS_REQUESTS:-100000}
CLIENTS=${REDIS_CLIENTS:-50}
MODES=${REDIS_MODES:-conn_per_task shared}
ROUNDS=${ROUNDS:-1}
BUILD=${BENCH_BUILD:-$HERE/../build}
BIN=$BUILD/coev-redis-bench

die() {
	echo "run-redis.sh: $*" >&2
	exit 1
}

command -v redis-benchmark >/dev/null || die "redis-benchmark is missing (apt-get install redis-tools)"
[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ] ||
	die "no redis-server answers on 127.0.0.1:$PORT (ci/servers.sh start)"

# The coev side, built from the library's archives (make lib builds the
# adapter archive libcoev_redis.a when adapters/redis.c exists).
mkdir -p "$BUILD"
make -s -C "$ROOT" lib >&2 || die "make lib failed"
[ -f "$ROOT/build/libcoev_redis.a" ] || die "build/libcoev_redis.a is missing"
# shellcheck disable=SC2086
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT/include" \
	-I"$ROOT" "$ROOT/bench/coev/redis_bench.c" -o "$BIN" \
	"$ROOT/build/libcoev_redis.a" "$ROOT/build/libcoev.a" \
	-lhiredis -lev -lck -lpthread -lm >&2 ||
	die "cannot build bench/coev/redis_bench.c"

# One redis-benchmark run: its CSV rows "SET","<rps>",... and "GET",...
peer() {
	local csv set get
	csv=$(redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CLIENTS" -n "$N" \
		-d 3 -P 1 -t set,get --csv 2>/dev/null) || return 1
	set=$(printf '%s\n' "$csv" | awk -F'"' '$2 == "SET" { print $4 }')
	get=$(printf '%s\n' "$csv" | awk -F'"' '$2 == "GET" { print $4 }')
	[ -n "$set" ] && [ -n "$get" ] || return 1
	awk -v s="$set" -v g="$get" -v c="$CLIENTS" -v n="$N" 'BEGIN {
		printf "BENCH redis redis-benchmark workers=1 ops_per_s=%.0f " \
			"set_per_s=%.0f get_per_s=%.0f clients=%d requests=%d\n",
			(s + g) / 2, s, g, c, n }'
}

rc=0
for _ in $(seq 1 "$ROUNDS"); do
	peer || {
		echo "run-redis.sh: redis-benchmark failed" >&2
		rc=1
	}
	# shellcheck disable=SC2086
	"$BIN" -p "$PORT" -n "$N" -c "$CLIENTS" "$WORKERS" $MODES || {
		echo "run-redis.sh: coev-redis-bench failed" >&2
		rc=1
	}
done
exit $rc
