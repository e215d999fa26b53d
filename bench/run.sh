#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh — coev against Go and tokio on the same workloads, in one run.
#
#   bench/run.sh                          every workload (what `make bench` runs)
#   WORKLOADS="spawn fib" bench/run.sh    a subset
#   WORKLOADS="http c10k" RUNS=3 bench/run.sh   the HTTP servers only
#   WORKLOADS=bridge RUNS=3 bench/run.sh    coev's futures against eventfd
#   WORKLOADS=trace-off RUNS=5 bench/run.sh the cost of tracing, off and on
#   WORKLOADS="ws-echo https" RUNS=3 bench/run.sh  WebSockets and TLS
#   SCALE=1 RUNS=3 bench/run.sh           the scaling curve (make bench-scale)
#
# Environment:
#   WORKLOADS      any of: spawn spawn-wg yield fib sleepers sleepers-cancel
#                  switch pingpong mutex pipeline trace-off bridge redis
#                  resolve http c10k ws-echo https (default: all)
#   RUNTIMES       any of: coev go tokio (default: all three); the runtimes
#                  of spawn, yield, fib, sleepers, pingpong, mutex, pipeline
#                  (bridge, redis and resolve always run coev and their own
#                  peer: eventfd, redis-benchmark, ares-blocking)
#   RUNS           runs per short workload and runtime (default 5; for http
#                  and c10k, default 3)
#   SLEEPER_RUNS   runs of sleepers and sleepers-cancel (default 3)
#   SLEEPERS       tasks of sleepers and sleepers-cancel (default 100,000
#                  and 1,000,000), read by the programs themselves
#   STRACE         1: after the runs of spawn, spawn-wg, sleepers and
#                  sleepers-cancel, one more run of each runtime under
#                  `strace -f -c`, for the system calls per task
#   SCALE          1: the scaling curve instead: spawn, yield and fib (or
#                  WORKLOADS, any of spawn spawn-wg yield fib) on 1, 2, ...
#                  SCALE_MAX workers (default: the online CPUs, nproc) for
#                  each runtime; saved as bench/results/scale-latest.txt
#   BENCH_TIMEOUT  seconds before one run is killed and counted failed (120)
#   HTTP_SERVERS   servers of the http workload (default: coev coev-hello
#                  epoll libuv go tokio uvloop aiohttp)
#   C10K_SERVERS   servers of the c10k workload (default: coev epoll go tokio)
#   HTTP_RUNS      rounds of http, c10k, ws-echo and https (default: RUNS
#                  if set, else 3)
#   HTTP_DURATION  seconds of each wrk run (default 10)
#   HTTP_BUSY_MAX  an http or c10k run during which other processes used
#                  this percentage of the CPUs or more is repeated (20),
#   HTTP_RETRIES   at most this many times (2)
#   TRACE_BUSY_MAX a trace-off run during which other processes used this
#                  percentage of the CPUs or more is repeated (10),
#   TRACE_RETRIES  at most this many times (2)
#   WS_SERVERS     servers of ws-echo (default: coev go python)
#   HTTPS_SERVERS  servers of https (default: coev coev-tls go go-tls epoll
#                  epoll-tls)
#   NET_DURATION   seconds of each ws-echo and https load run (default 10)
#   NET_CONNS      their connections (default 100)
#   WS_SIZE        bytes of each ws-echo message (default 32, at most 125)
#   NET_PIN        1: server on CPU 0, load client on CPU 1 (default on
#                  two or more CPUs)
#
# Builds into bench/build/ and bench/tokio/target/, runs the runtimes
# alternately (coev, go, tokio, coev, go, tokio, ...), and hands the raw
# lines to bench/report.py, which prints the RESULT lines, the table and the
# target verdicts and draws bench/results/latest.png. The report is saved
# as bench/results/latest.txt and bench/results/<UTC timestamp>.txt. The
# http and c10k workloads are driven by bench/http/run-http.sh, ws-echo and
# https by bench/net/run-net.sh.
#
# trace-off is coev against itself: the spawn workload of bench/coev/bench.c
# linked with build/libcoev.a (tracing compiled in, COEV_TRACE unset: "off")
# and with a libcoev built with -DCOEV_NO_TRACE into bench/build/notrace/
# (tracing compiled out: "notrace"), and, to show what tracing costs when it
# records, with COEV_TRACE set ("on"); report.py judges whether off stays
# within the run-to-run noise of notrace.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=$HERE/build
RESULTS=$HERE/results
LOGS=$BUILD/logs
TOKIO_DIR=$HERE/tokio
TOKIO_BIN=$TOKIO_DIR/target/release/tokio-bench

ALL_WORKLOADS="spawn spawn-wg yield fib sleepers sleepers-cancel switch pingpong mutex pipeline trace-off bridge redis resolve http c10k ws-echo https"
# The workloads of the scaling curve (SCALE=1), and what it runs by default.
SCALE_WORKLOADS="spawn spawn-wg yield fib"
SCALE=${SCALE:-0}
STRACE=${STRACE:-0}
# The workloads whose system calls STRACE=1 counts.
STRACE_WORKLOADS="spawn spawn-wg sleepers sleepers-cancel"
SCALE_MAX=${SCALE_MAX:-$(nproc)}
# The workloads of coev's channels, mutex and wait group, built from their
# own program.
SYNC_WORKLOADS="pingpong mutex pipeline spawn-wg"
# The workloads of the callback-library bridge: coev against a peer of
# their own (not Go or tokio); redis and resolve talk to the loopback
# servers of ci/servers.sh.
BRIDGE_WORKLOADS="bridge redis resolve"
if [ "$SCALE" = 1 ]; then
	WORKLOADS=${WORKLOADS:-spawn yield fib}
else
	WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
fi
RUNTIMES=${RUNTIMES:-coev go tokio}
# Each http or c10k run takes over 10 s, so those two default to 3 rounds
# unless RUNS is given.
HTTP_RUNS=${HTTP_RUNS:-${RUNS:-3}}
RUNS=${RUNS:-5}
SLEEPER_RUNS=${SLEEPER_RUNS:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
TRACE_BUSY_MAX=${TRACE_BUSY_MAX:-10}
TRACE_RETRIES=${TRACE_RETRIES:-2}
WORKERS=2

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

for w in $WORKLOADS; do
	case " $ALL_WORKLOADS " in
	*" $w "*) ;;
	*) die "unknown workload '$w' (known: $ALL_WORKLOADS)" ;;
	esac
done
if [ "$SCALE" = 1 ]; then
	for w in $WORKLOADS; do
		case " $SCALE_WORKLOADS " in
		*" $w "*) ;;
		*) die "SCALE=1 runs only $SCALE_WORKLOADS, not '$w'" ;;
		esac
	done
	[ "$SCALE_MAX" -ge 1 ] 2>/dev/null || die "SCALE_MAX must be a positive number"
fi
for r in $RUNTIMES; do
	case $r in coev | go | tokio) ;; *) die "unknown runtime '$r'" ;; esac
done
has_rt() { case " $RUNTIMES " in *" $1 "*) return 0 ;; esac; return 1; }
has_w() { case " $WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
is_sync() { case " $SYNC_WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
is_bridge() { case " $BRIDGE_WORKLOADS " in *" $1 "*) return 0 ;; esac; return 1; }
sync_wanted=0
for w in $SYNC_WORKLOADS; do has_w "$w" && sync_wanted=1; done
# switch measures coev's own context switch; Go and tokio have no
# equivalent. http and c10k have their own servers (HTTP_SERVERS), the
# bridge workloads their own peers; trace-off compares coev with itself.
peer_workloads=$(for w in $WORKLOADS; do
	case $w in switch | http | c10k | bridge | redis | resolve | trace-off | ws-echo | https) ;;
	*) echo "$w" ;;
	esac
done)
bridge_workloads=$(for w in $WORKLOADS; do is_bridge "$w" && echo "$w"; done)
http_workloads=""
has_w http && http_workloads="$http_workloads http"
has_w c10k && http_workloads="$http_workloads c10k"
net_workloads=""
has_w ws-echo && net_workloads="$net_workloads ws-echo"
has_w https && net_workloads="$net_workloads https"
if [ -n "$http_workloads$net_workloads" ]; then
	# shellcheck source=bench/http/run-http.sh
	. "$HERE/http/run-http.sh"
	http_validate
	[ "${HTTP_DURATION:-}" -ge 1 ] 2>/dev/null ||
		die "HTTP_DURATION must be a whole number of seconds"
fi
if [ -n "$net_workloads" ]; then
	# shellcheck source=bench/net/run-net.sh
	. "$HERE/net/run-net.sh"
	net_validate
fi

# ---- the loopback servers of redis and resolve ---------------------------
# ci/servers.sh runs redis-server, dnsmasq and an HTTP server on 127.0.0.1.
# servers_up starts them when they do not all answer yet (and then this
# script stops them again when it no longer needs them, or when it ends),
# and exports their ports (COEV_REDIS_PORT, COEV_DNS_PORT, COEV_HTTP_PORT)
# for the benchmark programs. Servers that were already running are left
# alone, unless only some of them were: then start starts the others and
# stop, at the end, stops all three.
SERVERS=$ROOT/ci/servers.sh
servers_started=0
servers_state="" # "up", or why they are not
servers_up() {
	[ "$servers_state" = up ] && return 0
	[ -n "$servers_state" ] && return 1
	if [ ! -f "$SERVERS" ]; then
		servers_state="ci/servers.sh is missing"
		return 1
	fi
	if ! bash "$SERVERS" status >"$LOGS/servers.log" 2>&1; then
		say "starting the loopback servers (ci/servers.sh start)"
		servers_started=1
		if ! bash "$SERVERS" start >>"$LOGS/servers.log" 2>&1; then
			servers_state="ci/servers.sh start failed: $(tail -n 1 "$LOGS/servers.log" | cut -c1-160)"
			return 1
		fi
	fi
	local env
	if ! env=$(bash "$SERVERS" env 2>>"$LOGS/servers.log"); then
		servers_state="ci/servers.sh env failed"
		return 1
	fi
	eval "$env" # export COEV_REDIS_PORT=... COEV_DNS_PORT=... ...
	servers_state=up
}
servers_down() {
	[ "$servers_started" = 1 ] || return 0
	servers_started=0
	servers_state=""
	say "stopping the loopback servers (ci/servers.sh stop)"
	bash "$SERVERS" stop >>"$LOGS/servers.log" 2>&1 ||
		say "ci/servers.sh stop failed (log: $LOGS/servers.log)"
}

# No HTTP server, idle client or wrk, and no loopback server this script
# started, outlives the session, even an interrupted one.
cleanup() {
	[ -n "$http_workloads$net_workloads" ] && http_cleanup
	servers_down
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

coev_needed=0
has_rt coev && [ -n "$peer_workloads$(has_w switch && echo x)" ] && coev_needed=1
[ -n "$bridge_workloads" ] && coev_needed=1
has_w trace-off && coev_needed=1
case " ${HTTP_SERVERS:-} ${C10K_SERVERS:-} " in
*" coev "* | *" coev-hello "*) [ -n "$http_workloads" ] && coev_needed=1 ;;
esac
case " $(has_w ws-echo && echo "${WS_SERVERS:-}") $(has_w https && echo "${HTTPS_SERVERS:-}") " in
*" coev "* | *" coev-tls "*) coev_needed=1 ;;
esac

start=$SECONDS
# cpu_busy: percent of all CPUs busy over one second, while we are idle;
# that is load from other processes competing with the benchmarks.
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
mkdir -p "$BUILD" "$LOGS" "$RESULTS"

# ---- tools -------------------------------------------------------------

# rustup installs cargo in ~/.cargo/bin, which a non-login shell may lack.
if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
	PATH=$PATH:${HOME:-/root}/.cargo/bin
fi
missing=""
if [ -n "$peer_workloads" ]; then
	has_rt go && ! command -v go >/dev/null && missing="$missing go"
	if has_rt tokio; then
		command -v cargo >/dev/null || missing="$missing cargo"
		ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1 ||
			missing="$missing tokio-sources"
	fi
fi
command -v gnuplot >/dev/null || missing="$missing gnuplot"
[ "$STRACE" = 1 ] && ! command -v strace >/dev/null &&
	die "STRACE=1 needs strace (apt-get install strace)"
if [ -n "$http_workloads" ]; then
	for m in $(http_missing); do missing="$missing $m"; done
	if ! command -v go >/dev/null; then
		case " $HTTP_SERVERS $C10K_SERVERS " in *" go "*) missing="$missing go" ;; esac
	fi
	case " $HTTP_SERVERS $C10K_SERVERS " in *" tokio "*)
		command -v cargo >/dev/null || missing="$missing cargo"
		ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1 ||
			missing="$missing tokio-sources"
		;;
	esac
fi
if [ -n "$net_workloads" ]; then
	for m in $(net_missing); do missing="$missing $m"; done
fi
if [ -n "$missing" ]; then
	say "missing:$missing; installing the Debian packages"
	"$ROOT/ci/install-deps.sh" --bench || die "ci/install-deps.sh --bench failed"
fi
if ! command -v python3 >/dev/null; then
	say "python3 missing; installing it"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
		--no-install-recommends python3 >&2 || die "cannot install python3"
fi

# ---- builds ------------------------------------------------------------
# A runtime that fails to build is left out of the runs and reported.

declare -A avail
build_fail() {
	say "$1 did not build; its runs are skipped (log: $2)"
	tail -n 15 "$2" | sed 's/^/    /' >&2
}

cflags="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I$ROOT/include -I$ROOT"
libs="$ROOT/build/libcoev.a -lev -lck -lpthread -lm"
# Why a bridge workload's program is missing (its runs are then FAIL lines
# saying so), by workload.
declare -A absent

# build_bridge NAME SOURCE BINARY [ARCHIVE LIB]: compile a bridge
# workload's coev program, with the adapter archive and its library when
# given; records avail[coev_NAME] or absent[NAME].
build_bridge() {
	local name=$1 src=$2 bin=$3 ar=${4:-} lib=${5:-}
	avail[coev_$name]=0
	if [ ! -f "$src" ]; then
		absent[$name]="not built: ${src#"$ROOT"/} is missing"
		return
	fi
	if [ -n "$ar" ] && [ ! -f "$ar" ]; then
		absent[$name]="not built: ${ar#"$ROOT"/} was not built (make lib; is its adapters/*.c there?)"
		return
	fi
	# shellcheck disable=SC2086
	if cc $cflags "$src" -o "$bin" $ar $libs $lib \
		>>"$LOGS/build-coev.log" 2>&1; then
		avail[coev_$name]=1
	else
		build_fail "${src#"$ROOT"/}" "$LOGS/build-coev.log"
	fi
}

# build_trace_off: the spawn benchmark twice, against build/libcoev.a
# (coev-bench-traced) and against a libcoev with tracing compiled out,
# built by the Makefile's own rules into bench/build/notrace/ with
# CFLAGS=-DCOEV_NO_TRACE (coev-bench-notrace); the same compiler flags
# otherwise, so that the one difference is the tracing code. Records
# avail[trace_traced] and avail[trace_notrace].
build_trace_off() {
	local log=$LOGS/build-trace-off.log
	avail[trace_traced]=1
	avail[trace_notrace]=1
	: >"$log"
	# shellcheck disable=SC2086
	if ! cc $cflags "$HERE/coev/bench.c" -o "$BUILD/coev-bench-traced" \
		$libs >>"$log" 2>&1; then
		avail[trace_traced]=0
		build_fail "bench/coev/bench.c (trace-off, traced)" "$log"
	fi
	# shellcheck disable=SC2086
	if ! make -s -C "$ROOT" B=bench/build/notrace CFLAGS=-DCOEV_NO_TRACE \
		bench/build/notrace/libcoev.a >>"$log" 2>&1 ||
		! cc $cflags "$HERE/coev/bench.c" -o "$BUILD/coev-bench-notrace" \
			"$BUILD/notrace/libcoev.a" -lev -lck -lpthread -lm \
			>>"$log" 2>&1; then
		avail[trace_notrace]=0
		build_fail "libcoev with -DCOEV_NO_TRACE (trace-off)" "$log"
	fi
}

if [ $coev_needed = 1 ]; then
	avail[coev]=1
	avail[coev_lib]=1
	if ! make -s -C "$ROOT" lib >"$LOGS/build-coev.log" 2>&1; then
		avail[coev]=0
		avail[coev_lib]=0
		build_fail "libcoev.a" "$LOGS/build-coev.log"
	elif ! has_rt coev || [ -z "$peer_workloads$(has_w switch && echo x)" ]; then
		: # only the http servers need the library
	else
		# shellcheck disable=SC2086
		if ! cc $cflags "$HERE/coev/bench.c" -o "$BUILD/coev-bench" $libs \
			>>"$LOGS/build-coev.log" 2>&1; then
			avail[coev]=0
			build_fail "bench/coev/bench.c" "$LOGS/build-coev.log"
		fi
		avail[coev_switch]=1
		# shellcheck disable=SC2086
		if ! cc $cflags "$HERE/coev/switch.c" -o "$BUILD/coev-switch" $libs \
			>>"$LOGS/build-coev.log" 2>&1; then
			avail[coev_switch]=0
			build_fail "bench/coev/switch.c" "$LOGS/build-coev.log"
		fi
		# Its own program, so that the other workloads still run when
		# the library's channels or mutex do not build or link.
		if [ $sync_wanted = 1 ]; then
			avail[coev_sync]=1
			# shellcheck disable=SC2086
			if ! cc $cflags "$HERE/coev/sync_bench.c" \
				-o "$BUILD/coev-sync-bench" $libs \
				>>"$LOGS/build-coev.log" 2>&1; then
				avail[coev_sync]=0
				build_fail "bench/coev/sync_bench.c" "$LOGS/build-coev.log"
			fi
		fi
	fi
	if [ "${avail[coev_lib]}" = 1 ]; then
		has_w bridge && build_bridge bridge "$HERE/coev/bridge_bench.c" \
			"$BUILD/coev-bridge-bench"
		has_w resolve && build_bridge resolve "$HERE/coev/resolve_bench.c" \
			"$BUILD/coev-resolve-bench" "$ROOT/build/libcoev_ares.a" -lcares
		# redis: bench/redis/run-redis.sh builds and runs both sides.
		if has_w redis && [ ! -f "$HERE/redis/run-redis.sh" ]; then
			absent[redis]="not built: bench/redis/run-redis.sh is missing"
		fi
		has_w trace-off && build_trace_off
	fi
fi

if has_rt go && [ -n "$peer_workloads" ]; then
	avail[go]=1
	say "building the Go benchmark"
	if ! (cd "$HERE/go" && GO111MODULE=on GOFLAGS=-mod=mod GOPROXY=off \
		GOCACHE="$BUILD/go-cache" GOPATH="$BUILD/gopath" \
		go build -o "$BUILD/go-bench" .) >"$LOGS/build-go.log" 2>&1; then
		avail[go]=0
		build_fail "bench/go" "$LOGS/build-go.log"
	fi
fi

if has_rt tokio && [ -n "$peer_workloads" ]; then
	avail[tokio]=1
	say "building the tokio benchmark (cargo, offline)"
	# cargo reads .cargo/config.toml from the working directory upwards.
	if ! (cd "$TOKIO_DIR" && cargo build --release --offline \
		--target-dir "$TOKIO_DIR/target") >"$LOGS/build-tokio.log" 2>&1; then
		avail[tokio]=0
		build_fail "bench/tokio" "$LOGS/build-tokio.log"
	fi
fi

if [ -n "$http_workloads" ]; then
	http_setup
	http_build
fi
[ -n "$net_workloads" ] && net_build

# ---- runs --------------------------------------------------------------

RAW=$BUILD/raw.txt
: >"$RAW"

# not_built WORKLOAD RUNTIME WORKERS [LOG]: count a run of an unbuilt
# program failed (LOG: the build log's name, build-RUNTIME by default).
not_built() {
	echo "FAIL $1 $2 workers=$3 rc=none why=not built, see bench/build/logs/${4:-build-$2}.log" >>"$RAW"
}

# why_failed RC LOG: why a run that exited with RC (and wrote its stderr
# to LOG) gave no result, in one line.
why_failed() {
	local rc=$1 why err
	case $rc in
	0) why="no BENCH line printed" ;;
	124 | 137) why="timed out after ${BENCH_TIMEOUT}s" ;;
	*)
		if [ "$rc" -gt 128 ]; then
			why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
		else
			why="exit status $rc"
		fi
		;;
	esac
	err=$(grep -v '^== ' "$2" | tail -n 1 | tr -s ' \t' ' ' | cut -c1-200)
	[ -n "$err" ] && why="$why; last stderr: $err"
	echo "$why"
}

# run_many WORKLOAD "RUNTIMES" CMD...: one process that prints the BENCH
# lines of several runtimes of WORKLOAD (a program and its peer, measured
# in one go). Every BENCH line of WORKLOAD goes into $RAW; each of
# RUNTIMES without one gets a FAIL line.
run_many() {
	local w=$1 rts=$2 log out rc line rt lines why
	shift 2
	log=$LOGS/$w.log
	echo "== $(date -u +%H:%M:%S) $*" >>"$log"
	out=$(timeout -k 5 "$BENCH_TIMEOUT" "$@" 2>>"$log")
	rc=$?
	lines=$(printf '%s\n' "$out" | grep "^BENCH $w ")
	[ -n "$lines" ] && printf '%s\n' "$lines" >>"$RAW"
	for rt in $rts; do
		line=$(printf '%s\n' "$lines" | grep "^BENCH $w $rt " | tail -n 1)
		if [ -n "$line" ]; then
			say "  $(echo "$line" | cut -d' ' -f2-)"
		else
			why=$(why_failed "$rc" "$log")
			[ "$rc" = 0 ] && why="no BENCH $w $rt line printed"
			echo "FAIL $w $rt workers=$WORKERS rc=$rc why=$why" >>"$RAW"
			say "  FAILED $w $rt: $why"
		fi
	done
	printf '%s\n' "$lines" | grep -v -E "^BENCH $w ($(echo "$rts" | tr ' ' '|')) " |
		grep . | while read -r line; do say "  $(echo "$line" | cut -d' ' -f2-)"; done
}

# strace_one WORKLOAD RUNTIME WORKERS CMD...: one extra run of CMD under
# strace -f -c (every thread; counts, no log of each call). Writes a
# STRACE line into $RAW: syscalls_per_op = every system call of the
# process, start-up included, / its tasks; calls, tasks, and the three
# most frequent calls with their counts. The run's own timings are
# thrown away: ptrace stops slow every call down.
strace_one() {
	local w=$1 rt=$2 n=$3 log=$LOGS/$1-$2-strace.log
	local st=$LOGS/strace-$1-$2.txt out rc tasks calls top
	shift 3
	echo "== $(date -u +%H:%M:%S) strace -f -c $*" >>"$log"
	out=$(timeout -k 5 "$BENCH_TIMEOUT" strace -f -c -o "$st" "$@" 2>>"$log")
	rc=$?
	tasks=$(printf '%s\n' "$out" | grep '^BENCH ' | tail -n 1 |
		grep -o ' tasks=[0-9]*' | cut -d= -f2)
	# strace -c's table: % time, seconds, usecs/call, calls, [errors,]
	# syscall; the last row is the total.
	calls=$(awk '$NF == "total" { print $4 }' "$st" 2>/dev/null)
	if [ "$rc" != 0 ] || [ -z "$tasks" ] || [ -z "$calls" ]; then
		echo "STRACE $w $rt workers=$n rc=$rc failed=1" >>"$RAW"
		say "  FAILED $w $rt under strace: $(why_failed "$rc" "$log")"
		return 0
	fi
	top=$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $4, $NF }' "$st" |
		sort -rn | head -n 3 | awk '{ printf "%s%s:%s", (NR > 1 ? "," : ""), $2, $1 }')
	line="STRACE $w $rt workers=$n syscalls_per_op=$(awk -v c="$calls" \
		-v t="$tasks" 'BEGIN { printf "%.4f", c / t }') calls=$calls tasks=$tasks top=$top"
	echo "$line" >>"$RAW"
	say "  ${line#STRACE }"
}

# run_one WORKLOAD RUNTIME WORKERS [strace]: one process, one BENCH line
# into $RAW (or a FAIL line when it crashes, times out or prints no BENCH
# line); with strace, one run under strace instead (strace_one).
run_one() {
	local w=$1 rt=$2 n=$3 mode=${4:-} log out rc line
	log=$LOGS/$w-$rt-w$n.log
	case $w:$rt in
	bridge:*)
		# Both sides of the bridge workload are one program.
		[ "${avail[coev_bridge]:-0}" = 1 ] || { not_built "$w" "$rt" "$n" build-coev; return 0; }
		set -- "$BUILD/coev-bridge-bench" "$rt" "$n"
		;;
	switch:coev)
		[ "${avail[coev_switch]:-0}" = 1 ] || { not_built "$w" coev "$n"; return 0; }
		set -- "$BUILD/coev-switch"
		;;
	*:coev)
		if is_sync "$w"; then
			[ "${avail[coev_sync]:-0}" = 1 ] || { not_built "$w" coev "$n"; return 0; }
			set -- "$BUILD/coev-sync-bench" "$w" "$n"
		else
			[ "${avail[coev]:-0}" = 1 ] || { not_built "$w" coev "$n"; return 0; }
			set -- "$BUILD/coev-bench" "$w" "$n"
		fi
		;;
	*:go)
		[ "${avail[go]:-0}" = 1 ] || { not_built "$w" go "$n"; return 0; }
		set -- env GOMAXPROCS="$n" "$BUILD/go-bench" "$w"
		;;
	*:tokio)
		[ "${avail[tokio]:-0}" = 1 ] || { not_built "$w" tokio "$n"; return 0; }
		set -- "$TOKIO_BIN" "$w" "$n"
		;;
	esac
	if [ "$mode" = strace ]; then
		strace_one "$w" "$rt" "$n" "$@"
		return 0
	fi
	echo "== $(date -u +%H:%M:%S) $*" >>"$log"
	out=$(timeout -k 5 "$BENCH_TIMEOUT" "$@" 2>>"$log")
	rc=$?
	line=$(printf '%s\n' "$out" | grep '^BENCH ' | tail -n 1)
	if [ $rc = 0 ] && [ -n "$line" ]; then
		echo "$line" >>"$RAW"
		say "  $(echo "$line" | cut -d' ' -f2-)"
		return 0
	fi
	local why
	why=$(why_failed "$rc" "$log")
	echo "FAIL $w $rt workers=$n rc=$rc why=$why" >>"$RAW"
	say "  FAILED $w $rt workers=$n: $why"
}

# bridge_runtimes WORKLOAD: the runtimes a bridge workload must report (its
# program's other BENCH lines of the workload are kept too).
bridge_runtimes() {
	case $1 in
	bridge) echo "coev eventfd" ;;
	redis) echo "coev redis-benchmark" ;;
	resolve) echo "coev ares-blocking" ;;
	esac
}

# bridge_round WORKLOAD: one run of each side of a bridge workload.
bridge_round() {
	case $1 in
	bridge)
		# coev's futures, then the plain-C eventfd handoff.
		run_one bridge coev "$WORKERS"
		run_one bridge eventfd "$WORKERS"
		;;
	resolve)
		run_many resolve "$(bridge_runtimes resolve)" \
			"$BUILD/coev-resolve-bench" "$WORKERS"
		;;
	redis)
		# The script runs coev's client and redis-benchmark in turn.
		run_many redis "$(bridge_runtimes redis)" \
			env BENCH_BUILD="$BUILD" WORKERS="$WORKERS" \
			bash "$HERE/redis/run-redis.sh"
		;;
	esac
}

# ---- trace-off: tracing compiled in but off, against compiled out ------

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NCPU=$(nproc)

# others_ticks: the CPU time, in clock ticks, that every process but this
# shell has used so far: utime + stime + cutime + cstime of each
# /proc/PID/stat (a process that ended during a run is counted in its
# parent's cutime and cstime; kernel threads are included). This shell's
# own counters are left out: they take in the benchmark's time when it is
# reaped. Rejected: busy time from /proc/stat minus the benchmark's own
# CPU time: /proc/stat's busy time is sampled by the tick, which a
# tickless idle CPU does not take, so a benchmark whose workers park
# often (spawn's do) looks busier than it is and the difference shows up
# as other processes' time.
others_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v me=$$ '$1 != me {
		sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 }
		END { printf "%d", t }'
}

# other_pct T0 T1 W0 W1: the share of all CPUs' time between wall-clock
# seconds W0 and W1 that other processes used (others_ticks T0 and T1).
other_pct() {
	echo "$@" | awk -v hz="$CLK_TCK" -v n="$NCPU" '{ w = $4 - $3
		o = w > 0 ? 100 * ($2 - $1) / (w * hz * n) : 0
		printf "%.0f", (o > 0 ? o : 0) }'
}

# trace_quiet: wait (at most 30 s) until other processes use less than
# TRACE_BUSY_MAX percent of the CPUs over a second.
trace_quiet() {
	local t0 w0 pct
	for _ in $(seq 30); do
		t0=$(others_ticks)
		w0=$EPOCHREALTIME
		sleep 1
		pct=$(other_pct "$t0" "$(others_ticks)" "$w0" "$EPOCHREALTIME")
		[ "$pct" -lt "$TRACE_BUSY_MAX" ] && return 0
	done
	say "  the machine stayed busy ($pct% of the CPUs); going on"
}

# trace_run VARIANT ATTEMPT: one run of the spawn benchmark as VARIANT
# (notrace, off or on). Its BENCH line goes into $RAW renamed "BENCH
# trace-off VARIANT" with other_cpu_pct added: the share of the machine's
# CPU time during the run that the benchmark did not use. A run with
# other_cpu_pct >= TRACE_BUSY_MAX is written as a DISCARD line and
# returns 1 (to be repeated) while ATTEMPT < TRACE_RETRIES.
trace_run() {
	local v=$1 attempt=$2 log=$LOGS/trace-off-$1.log bin out rc line
	local t0 t1 w0 w1 other trace=$BUILD/trace-on.json kind=traced
	[ "$v" = notrace ] && kind=notrace
	if [ "${avail[trace_$kind]:-0}" != 1 ]; then
		not_built trace-off "$v" "$WORKERS" build-trace-off
		return 0
	fi
	bin=$BUILD/coev-bench-$kind
	set -- env -u COEV_TRACE -u COEV_TRACE_EVENTS "$bin" spawn "$WORKERS"
	[ "$v" = on ] && set -- env -u COEV_TRACE_EVENTS COEV_TRACE="$trace" \
		"$bin" spawn "$WORKERS"
	echo "== $(date -u +%H:%M:%S) $*" >>"$log"
	t0=$(others_ticks)
	w0=$EPOCHREALTIME
	out=$(timeout -k 5 "$BENCH_TIMEOUT" "$@" 2>>"$log")
	rc=$?
	w1=$EPOCHREALTIME
	t1=$(others_ticks)
	rm -f "$trace"
	line=$(printf '%s\n' "$out" | grep '^BENCH spawn coev ' | tail -n 1)
	if [ $rc != 0 ] || [ -z "$line" ]; then
		line="FAIL trace-off $v workers=$WORKERS rc=$rc why=$(why_failed "$rc" "$log")"
		echo "$line" >>"$RAW"
		say "  FAILED trace-off $v: ${line#*why=}"
		return 0
	fi
	other=$(other_pct "$t0" "$t1" "$w0" "$w1")
	line="BENCH trace-off $v ${line#BENCH spawn coev } other_cpu_pct=$other"
	if [ "$other" -ge "$TRACE_BUSY_MAX" ] && [ "$attempt" -lt "$TRACE_RETRIES" ]; then
		echo "DISCARD $line" >>"$RAW"
		say "  other processes used $other% of the CPUs during trace-off $v; repeating it"
		trace_quiet
		return 1
	fi
	echo "$line" >>"$RAW"
	say "  $(echo "$line" | cut -d' ' -f2-)"
}

# trace_round: one run of each variant, in turn.
trace_round() {
	local v a
	for v in notrace off on; do
		for a in $(seq 0 "$TRACE_RETRIES"); do
			trace_run "$v" "$a" && break
		done
	done
}

for w in $WORKLOADS; do
	runs=$RUNS
	case $w in sleepers | sleepers-cancel) runs=$SLEEPER_RUNS ;; esac
	case $w in http | c10k | ws-echo | https) runs=$HTTP_RUNS ;; esac
	# A bridge workload whose program is missing, or whose servers do not
	# start, gets one FAIL line per runtime saying why, and is skipped.
	if is_bridge "$w"; then
		why=${absent[$w]:-}
		if [ -z "$why" ] && [ "$w" = resolve ] &&
			[ "${avail[coev_resolve]:-0}" != 1 ]; then
			why="not built, see bench/build/logs/build-coev.log"
		fi
		if [ -z "$why" ] && [ "$w" != bridge ] && ! servers_up; then
			why="not run: the loopback servers are not running ($servers_state)"
		fi
		if [ -n "$why" ]; then
			for rt in $(bridge_runtimes "$w"); do
				echo "FAIL $w $rt workers=$WORKERS rc=none why=$why" >>"$RAW"
			done
			say "$w: skipped: $why"
			continue
		fi
	fi
	for i in $(seq 1 "$runs"); do
		say "$w: run $i/$runs"
		if is_bridge "$w"; then
			bridge_round "$w"
			continue
		fi
		if [ "$w" = trace-off ]; then
			trace_round
			continue
		fi
		# One round: every server once, in turn, each a fresh process.
		if [ "$w" = http ]; then
			for srv in $HTTP_SERVERS; do http_round http "$srv"; done
			continue
		fi
		if [ "$w" = c10k ]; then
			for srv in $C10K_SERVERS; do http_round c10k "$srv"; done
			continue
		fi
		# ws-echo and https (bench/net/run-net.sh): the same rounds, each
		# server once in turn; https runs each plain server right before
		# its TLS twin, so that report.py can pair them.
		if [ "$w" = ws-echo ]; then
			for srv in $WS_SERVERS; do http_round ws_echo "$srv"; done
			continue
		fi
		if [ "$w" = https ]; then
			for srv in $HTTPS_SERVERS; do http_round https "$srv"; done
			continue
		fi
		# The scaling curve: every runtime on 1, 2, ... SCALE_MAX workers.
		if [ "$SCALE" = 1 ]; then
			for n in $(seq 1 "$SCALE_MAX"); do
				for rt in $RUNTIMES; do run_one "$w" "$rt" "$n"; done
			done
			continue
		fi
		for rt in $RUNTIMES; do
			if [ "$w" = switch ]; then
				[ "$rt" = coev ] && run_one switch coev 1
				continue
			fi
			run_one "$w" "$rt" "$WORKERS"
			# fib's speedup: the same tree on one worker, right after.
			[ "$w" = fib ] && run_one fib "$rt" 1
		done
	done
	# STRACE=1: one more run of each runtime, under strace.
	if [ "$STRACE" = 1 ] && [ "$SCALE" != 1 ]; then
		case " $STRACE_WORKLOADS " in *" $w "*)
			say "$w: one run of each runtime under strace -f -c"
			for rt in $RUNTIMES; do run_one "$w" "$rt" "$WORKERS" strace; done
			;;
		esac
	fi
	# The loopback servers stop once no later workload needs them.
	case $w in redis | resolve)
		case " ${WORKLOADS#*"$w"} " in
		*" redis "* | *" resolve "*) ;;
		*) servers_down ;;
		esac
		;;
	esac
done

# ---- report ------------------------------------------------------------

elapsed=$((SECONDS - start))
busy_end=$(cpu_busy)
stamp=$(date -u +%Y%m%d-%H%M%S)
HDR=$BUILD/header.txt
# A virtio balloon that reports free pages (feature bit 5,
# VIRTIO_BALLOON_F_REPORTING) lets the host drop free 2 MiB blocks of the
# guest, so memory that a run touches for the first time costs what the
# host takes to fill it again: up to 20 times more after a few idle
# seconds than right after another process freed it (docs/ARCHITECTURE.md,
# task blocks). Said in the header, since it makes spawn's and the
# sleepers' times vary from run to run.
mem_note() {
	local f thp
	thp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
	for f in /sys/bus/virtio/drivers/virtio_balloon/virtio*/features; do
		[ -r "$f" ] || continue
		if [ "$(cut -c6 "$f")" = 1 ]; then
			echo "memory: the host drops the guest's free pages (virtio-balloon free page reporting); fresh memory costs vary from run to run (transparent huge pages: ${thp:-unknown})"
			return
		fi
	done
}
{
	echo "coev benchmarks — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
	echo "coev: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo 'no commit') ($(cc --version | head -n1))"
	[ -n "$peer_workloads" ] && has_rt go && command -v go >/dev/null && echo "go: $(go version)"
	[ -n "$peer_workloads" ] && has_rt tokio && echo "tokio: $(ls -d /usr/share/cargo/registry/tokio-1.* 2>/dev/null | sed 's|.*/||' | tr '\n' ' ')($(rustc --version 2>/dev/null))"
	if [ "$SCALE" = 1 ]; then
		echo "scaling curve: workloads: $WORKLOADS; runtimes: $RUNTIMES; runs: $RUNS; workers: 1..$SCALE_MAX"
	else
		echo "workloads: $WORKLOADS; runtimes: $RUNTIMES; runs: $RUNS (sleepers $SLEEPER_RUNS); workers: $WORKERS"
	fi
	[ -n "${SLEEPERS:-}" ] && echo "SLEEPERS=$SLEEPERS"
	if has_w trace-off; then
		echo "trace-off: bench/coev/bench.c spawn, workers=$WORKERS: notrace (libcoev built with -DCOEV_NO_TRACE), off (build/libcoev.a, COEV_TRACE unset), on (COEV_TRACE set, default ring); runs repeated when other processes used ${TRACE_BUSY_MAX}% of the CPUs or more (at most $TRACE_RETRIES times)"
	fi
	if [ -n "$bridge_workloads" ]; then
		echo "bridge workloads:$(for w in $bridge_workloads; do printf ' %s (coev vs %s)' "$w" "$(bridge_runtimes "$w" | sed 's/^coev *//')"; done)"
	fi
	if [ -n "$http_workloads" ]; then
		echo "http/c10k: servers: $HTTP_SERVERS (c10k: $C10K_SERVERS); rounds: $HTTP_RUNS; one server thread; wrk -t1 -c$HTTP_CONNS -d${HTTP_DURATION}s; c10k idle connections: $C10K_IDLE; descriptor limit: $HTTP_NOFILE"
		echo "http peers: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-3); libuv $(dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null); $($HTTP_PY -c 'import sys, uvloop, aiohttp; print("python %s, uvloop %s, aiohttp %s" % (sys.version.split()[0], uvloop.__version__, aiohttp.__version__))' 2>/dev/null)"
	fi
	if [ -n "$net_workloads" ]; then
		echo "ws-echo/https: ws-echo servers: $WS_SERVERS; https servers: $HTTPS_SERVERS; rounds: $HTTP_RUNS; one server thread; ${NET_DURATION}s per run, $NET_CONNS connections; ws-echo: bench/net/ws_load.c, $WS_SIZE-byte messages, one outstanding per connection; https: wrk -t1; pinned (server CPU 0, client CPU 1): $NET_PIN; system calls: $([ "${NET_PERF:-0}" = 1 ] && echo "perf stat" || echo "not counted")"
		echo "ws-echo/https peers: $(go version 2>/dev/null | cut -d' ' -f3-4); gorilla/websocket $(dpkg-query -W -f='${Version}' golang-github-gorilla-websocket-dev 2>/dev/null); python3-websockets $(dpkg-query -W -f='${Version}' python3-websockets 2>/dev/null); $(openssl version 2>/dev/null)"
	fi
	mem_note
	echo "total time: ${elapsed}s (builds included)"
	echo "CPU busy with other processes (1 s sample): ${busy_start}% before the runs, ${busy_end}% after"
	if [ "$busy_start" -ge 15 ] || [ "$busy_end" -ge 15 ]; then
		echo "WARNING: other processes were using the CPUs; they compete with the workers and these numbers are unreliable"
	fi
	echo
} >"$HDR"

cat "$HDR"
# The scaling curve is saved apart, so that latest.txt stays the last
# ordinary session.
pre=""
[ "$SCALE" = 1 ] && pre=scale-
BENCH_SCALE=$SCALE python3 "$HERE/report.py" "$RAW" "$RESULTS/${pre}latest.txt" \
	"$BUILD/chart" "$RESULTS/${pre}latest.png" "$HDR" || die "report.py failed"
cp "$RESULTS/${pre}latest.txt" "$RESULTS/$pre$stamp.txt"
say "saved $RESULTS/${pre}latest.txt, $RESULTS/$pre$stamp.txt and $RESULTS/${pre}latest.png"
