# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# bench/http/run-http.sh — the http and c10k workloads; sourced by
# bench/run.sh, which provides say, die, build_fail, the avail array and
# the ROOT, HERE, BUILD, LOGS and RAW variables, and calls http_setup,
# http_build, then http_run_one and c10k_run_one for each round.
#
# http: one server process (one worker thread) on 127.0.0.1, loaded by
#   wrk -t1 -c$HTTP_CONNS -d${HTTP_DURATION}s --latency. Metrics: wrk's
#   Requests/sec, its 99th percentile latency, and the server's CPU time
#   (utime + stime from /proc/PID/stat, over the wrk run) per request, and
#   its user time (utime) alone per request.
# c10k: the same server holding $C10K_IDLE idle keep-alive connections
#   (bench/http/idle_conns.c, each answered once) while wrk loads it as
#   above. Metrics: (VmRSS with the idle connections open - VmRSS after
#   start-up, before any connection) / $C10K_IDLE, and wrk's Requests/sec.
#
# Every run is a fresh server process on a port of its own; the script
# waits until the port listens (read from /proc/net/tcp, so that no probe
# connection touches the server before the c10k baseline), and kills the
# server by PID afterwards. http_cleanup (run.sh's EXIT trap) kills
# whatever is still running when the script is interrupted.

HTTP_ALL_SERVERS="coev coev-hello epoll libuv go tokio uvloop aiohttp"
HTTP_SERVERS=${HTTP_SERVERS:-$HTTP_ALL_SERVERS}
C10K_SERVERS=${C10K_SERVERS:-coev epoll go tokio}
HTTP_DURATION=${HTTP_DURATION:-10}
HTTP_CONNS=${HTTP_CONNS:-100}
C10K_IDLE=${C10K_IDLE:-10000}
HTTP_PORT=${HTTP_PORT:-18100}
# A run during which other processes used HTTP_BUSY_MAX percent of the
# machine's CPU time or more is repeated, up to HTTP_RETRIES times.
HTTP_BUSY_MAX=${HTTP_BUSY_MAX:-20}
HTTP_RETRIES=${HTTP_RETRIES:-2}
HTTP_BUILD=$BUILD/http
# Debian's interpreter: the python3-uvloop and python3-aiohttp packages
# are installed for it, not for a python3 that pyenv or a venv puts first
# on PATH.
HTTP_PY=/usr/bin/python3
CLK_TCK=$(getconf CLK_TCK)

# PIDs of what is running now (server, idle client, wrk), for the trap.
HTTP_PIDS=""
http_port_next=$HTTP_PORT
HTTP_ATTEMPT=0
OTHER_PCT=0

http_cleanup() {
	local p
	for p in $HTTP_PIDS; do
		kill -KILL "$p" 2>/dev/null
	done
	HTTP_PIDS=""
}

http_validate() {
	local s
	for s in $HTTP_SERVERS $C10K_SERVERS; do
		case " $HTTP_ALL_SERVERS " in
		*" $s "*) ;;
		*) die "unknown http server '$s' (known: $HTTP_ALL_SERVERS)" ;;
		esac
	done
}

# http_missing: the tools and packages the two workloads need that are
# absent, as words for run.sh's "missing" list.
http_missing() {
	command -v wrk >/dev/null || echo wrk
	[ -f /usr/include/uv.h ] || echo libuv1-dev
	[ -x "$HTTP_PY" ] && "$HTTP_PY" -c 'import uvloop' 2>/dev/null ||
		echo python3-uvloop
	[ -x "$HTTP_PY" ] && "$HTTP_PY" -c 'import aiohttp' 2>/dev/null ||
		echo python3-aiohttp
}

# http_setup: raise this shell's soft descriptor limit to the hard one, so
# that the servers (which inherit it) can hold the c10k connections.
http_setup() {
	local hard need=$((C10K_IDLE + HTTP_CONNS + 256))
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] && hard=1048576
	if [ "$hard" -lt "$need" ] && [ "$(id -u)" = 0 ]; then
		ulimit -Hn "$need" 2>/dev/null && hard=$need
	fi
	ulimit -Sn "$hard" 2>/dev/null
	HTTP_NOFILE=$(ulimit -Sn)
	if [ "$HTTP_NOFILE" -lt "$need" ]; then
		say "descriptor limit $HTTP_NOFILE < $need: c10k cannot hold $C10K_IDLE connections"
	fi
}

# ---- builds ------------------------------------------------------------

declare -A http_avail

http_build_one() { # NAME LOG COMMAND...: build, record availability
	local name=$1 log=$2
	shift 2
	http_avail[$name]=1
	if ! "$@" >>"$log" 2>&1; then
		http_avail[$name]=0
		build_fail "$name (http server)" "$log"
	fi
}

http_build() {
	local cflags="-O2 -std=c11 -Wall -Wextra" log=$LOGS/build-http.log s
	local need=" $HTTP_SERVERS $C10K_SERVERS "
	mkdir -p "$HTTP_BUILD"
	: >"$log"
	say "building the http servers"
	case $need in *" coev "*)
		if [ "${avail[coev_lib]:-0}" = 1 ]; then
			# shellcheck disable=SC2086
			http_build_one coev "$log" cc $cflags -I"$ROOT/include" \
				-I"$ROOT" "$HERE/http/coev_http.c" \
				-o "$HTTP_BUILD/coev_http" "$ROOT/build/libcoev.a" \
				-lev -lck -lpthread -lm
		else
			http_avail[coev]=0
		fi
		;;
	esac
	case $need in *" coev-hello "*)
		# Someone else's example; built by the Makefile's own rule.
		http_avail[coev-hello]=0
		if [ ! -f "$ROOT/examples/http_hello.c" ]; then
			say "coev-hello: examples/http_hello.c does not exist; not built"
		elif [ "${avail[coev_lib]:-0}" = 1 ]; then
			make -s -k -C "$ROOT" examples >>"$log" 2>&1
			if [ -x "$ROOT/build/examples/http_hello" ]; then
				http_avail[coev-hello]=1
			else
				build_fail "coev-hello (examples/http_hello.c)" "$log"
			fi
		fi
		;;
	esac
	case $need in *" epoll "*)
		# shellcheck disable=SC2086
		http_build_one epoll "$log" cc $cflags "$HERE/http/epoll_http.c" \
			-o "$HTTP_BUILD/epoll_http"
		;;
	esac
	case $need in *" libuv "*)
		# shellcheck disable=SC2086
		http_build_one libuv "$log" cc $cflags "$HERE/http/uv_http.c" \
			-o "$HTTP_BUILD/uv_http" -luv
		;;
	esac
	case $need in *" go "*)
		http_build_one go "$log" env -C "$HERE/http/go" GO111MODULE=on \
			GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$BUILD/go-cache" \
			GOPATH="$BUILD/gopath" go build -o "$HTTP_BUILD/go-http" .
		;;
	esac
	case $need in *" tokio "*)
		# cargo reads .cargo/config.toml from the working directory up.
		http_build_one tokio "$log" env -C "$HERE/http/tokio" cargo build \
			--release --offline --target-dir "$BUILD/http-tokio-target"
		[ "${http_avail[tokio]}" = 1 ] && cp \
			"$BUILD/http-tokio-target/release/tokio-http" "$HTTP_BUILD/"
		;;
	esac
	for s in uvloop aiohttp; do
		case $need in *" $s "*)
			http_avail[$s]=1
			if ! "$HTTP_PY" -c "import $s" >>"$log" 2>&1; then
				http_avail[$s]=0
				build_fail "$s (python3-$s not importable)" "$log"
			fi
			;;
		esac
	done
	# shellcheck disable=SC2086
	http_build_one idle_conns "$log" cc $cflags "$HERE/http/idle_conns.c" \
		-o "$HTTP_BUILD/idle_conns"
}

# ---- one server --------------------------------------------------------

# http_cmd SERVER PORT: the server's command line, in the array CMD.
http_cmd() {
	case $1 in
	coev) CMD=("$HTTP_BUILD/coev_http" "$2") ;;
	coev-hello) CMD=("$ROOT/build/examples/http_hello" "$2" 1) ;;
	epoll) CMD=("$HTTP_BUILD/epoll_http" "$2") ;;
	libuv) CMD=("$HTTP_BUILD/uv_http" "$2") ;;
	go) CMD=(env GOMAXPROCS=1 "$HTTP_BUILD/go-http" "$2") ;;
	tokio) CMD=("$HTTP_BUILD/tokio-http" "$2") ;;
	uvloop) CMD=("$HTTP_PY" "$HERE/http/uvloop_http.py" "$2") ;;
	aiohttp) CMD=("$HTTP_PY" "$HERE/http/aiohttp_http.py" "$2") ;;
	esac
}

# listening PORT: true when some socket listens on 127.0.0.1:PORT or on
# any address with that port (/proc/net/tcp and tcp6; state 0A = LISTEN).
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p \
		{ f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: the next port of the session that nothing listens on.
free_port() {
	while listening "$http_port_next"; do
		http_port_next=$((http_port_next + 1))
	done
	PORT=$http_port_next
	http_port_next=$((http_port_next + 1))
}

# start_server SERVER LOG: start it on a fresh port and wait until the port
# listens. Sets SRV_PID and PORT; returns 1 (with WHY) when it exits or
# does not listen within 20 s.
start_server() {
	free_port
	http_cmd "$1" "$PORT"
	echo "== $(date -u +%H:%M:%S) ${CMD[*]}" >>"$2"
	# The server is this shell's child, so its PID is the one we read
	# /proc of and kill; env and python3 exec in place.
	"${CMD[@]}" >>"$2" 2>&1 </dev/null &
	SRV_PID=$!
	HTTP_PIDS="$HTTP_PIDS $SRV_PID"
	for _ in $(seq 200); do
		if ! kill -0 "$SRV_PID" 2>/dev/null; then
			wait "$SRV_PID" 2>/dev/null
			WHY="exited with status $? before listening"
			return 1
		fi
		listening "$PORT" && return 0
		sleep 0.1
	done
	WHY="did not listen on port $PORT within 20 s"
	return 1
}

# stop PID: TERM, then KILL after 3 s; reaps it.
stop() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	HTTP_PIDS=$(echo "$HTTP_PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

# cpu_ticks PID: "utime stime" in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12, $13 }'
}

rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null
}

# run_wrk PORT PATH OUT: wrk in the background (so that the trap can kill
# it), waited for. Returns wrk's status.
run_wrk() {
	wrk -t1 -c"$HTTP_CONNS" -d"${HTTP_DURATION}s" --latency \
		"http://127.0.0.1:$1$2" >"$3" 2>&1 &
	local w=$!
	HTTP_PIDS="$HTTP_PIDS $w"
	wait "$w"
	local rc=$?
	HTTP_PIDS=$(echo "$HTTP_PIDS" | tr ' ' '\n' | grep -vx "$w" | tr '\n' ' ')
	return $rc
}

# cpu_stat: "busy total" jiffies of all CPUs from /proc/stat (busy: all
# but idle and iowait; guest time is already inside user time).
cpu_stat() {
	awk '$1 == "cpu" { t = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
		print t - $5 - $6, t; exit }' /proc/stat
}

# child_ticks FILE: user + system ticks of this shell's reaped children,
# from the output of the times builtin in FILE. times itself must run in
# this shell: a subshell ($(...)) has no reaped children of its own.
child_ticks() {
	awk -v hz="$CLK_TCK" 'NR == 2 { s = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] }
		printf "%d", s * hz + 0.5 }' "$1"
}

# measure_wrk PORT OUT: one wrk run against the server SRV_PID. Sets
# WRK_RC, T0 and T1 (the server's "utime stime" before and after), and
# OTHER_PCT: the share of the machine's CPU time, during the run, used by
# neither the server nor wrk (other processes competing with them).
measure_wrk() {
	local tf=$BUILD/times.txt c0 c1 s0 s1
	times >"$tf"
	c0=$(child_ticks "$tf")
	s0=$(cpu_stat)
	T0=$(cpu_ticks "$SRV_PID")
	run_wrk "$1" / "$2"
	WRK_RC=$?
	T1=$(cpu_ticks "$SRV_PID")
	s1=$(cpu_stat)
	times >"$tf"
	c1=$(child_ticks "$tf")
	OTHER_PCT=$(echo "$s0 $s1 $T0 $T1 $c0 $c1" | awk '{
		busy = $3 - $1; total = $4 - $2
		own = ($7 + $8 - $5 - $6) + ($10 - $9)
		printf "%.0f", (total > 0 ? 100 * (busy - own) / total : 0) }')
	[ "${OTHER_PCT#-}" = "$OTHER_PCT" ] || OTHER_PCT=0
}

# parse_wrk FILE: "req_per_s p99_ms requests socket_errors non2xx" from
# wrk's report; latencies are printed in us, ms or s.
parse_wrk() {
	awk '
	function ms(v) {
		if (v ~ /us$/) return v / 1000
		if (v ~ /ms$/) return v + 0
		if (v ~ /m$/) return v * 60000
		if (v ~ /s$/) return v * 1000
		return v
	}
	$1 == "99%" { p99 = sprintf("%.3f", ms($2)) }
	/requests in/ { req = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { non = $5 }
	END { printf "%s %s %s %d %d\n", (rps == "" ? "NA" : rps),
		(p99 == "" ? "NA" : p99), (req == "" ? 0 : req), err, non }
	' "$1"
}

# http_fail WORKLOAD SERVER WHY
http_fail() {
	echo "FAIL $1 $2 workers=1 rc=1 why=$3" >>"$RAW"
	say "  FAILED $1 $2: $3"
}

# wrk_metrics OUT T0 T1: sets REQ_PER_S P99 REQS ERRS NON2XX CPU_US USER_US
# from wrk's report and the server's CPU ticks before (T0) and after (T1).
wrk_metrics() {
	read -r REQ_PER_S P99 REQS ERRS NON2XX <<<"$(parse_wrk "$1")"
	local u0 s0 u1 s1
	read -r u0 s0 <<<"$2"
	read -r u1 s1 <<<"$3"
	CPU_US=NA
	USER_US=NA
	if [ "${REQS:-0}" -gt 0 ]; then
		CPU_US=$(awk -v d=$((u1 + s1 - u0 - s0)) -v n="$REQS" \
			-v hz="$CLK_TCK" 'BEGIN { printf "%.3f", d / hz * 1e6 / n }')
		USER_US=$(awk -v d=$((u1 - u0)) -v n="$REQS" \
			-v hz="$CLK_TCK" 'BEGIN { printf "%.3f", d / hz * 1e6 / n }')
	fi
}

# emit LINE: record a run's BENCH line, unless other processes were busy
# during it and it may still be repeated: then it goes into $RAW as a
# DISCARD line (kept for the record, ignored by report.py) and REPEAT=1.
emit() {
	if [ "$OTHER_PCT" -ge "$HTTP_BUSY_MAX" ] &&
		[ "$HTTP_ATTEMPT" -lt "$HTTP_RETRIES" ]; then
		echo "DISCARD $1" >>"$RAW"
		say "  other processes used $OTHER_PCT% of the CPUs during the run; repeating it"
		REPEAT=1
		return 0
	fi
	echo "$1" >>"$RAW"
	say "  $(echo "$1" | cut -d' ' -f2-)"
}

# wait_quiet: wait (at most 30 s) until other processes use less than
# HTTP_BUSY_MAX percent of the CPUs over 2 s.
wait_quiet() {
	local a b pct
	for _ in $(seq 15); do
		a=$(cpu_stat)
		sleep 2
		b=$(cpu_stat)
		pct=$(echo "$a $b" | awk '{ t = $4 - $2
			printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0) }')
		[ "$pct" -lt "$HTTP_BUSY_MAX" ] && return 0
	done
	say "  the machine stayed busy ($pct% of the CPUs); going on"
}

# http_round WORKLOAD SERVER: one run of http or c10k, repeated while other
# processes disturb it (see emit).
http_round() {
	for HTTP_ATTEMPT in $(seq 0 "$HTTP_RETRIES"); do
		REPEAT=0
		"${1}_run_one" "$2"
		[ "$REPEAT" = 1 ] || return 0
		wait_quiet
	done
}

# http_run_one SERVER: one http run; one BENCH or FAIL line into $RAW.
http_run_one() {
	local srv=$1 log=$LOGS/http-$1.log out
	if [ "${http_avail[$srv]:-0}" != 1 ]; then
		echo "FAIL http $srv workers=1 rc=none why=not built, see bench/build/logs/build-http.log" >>"$RAW"
		return 0
	fi
	if ! start_server "$srv" "$log"; then
		stop "$SRV_PID"
		http_fail http "$srv" "$WHY"
		return 0
	fi
	out=$LOGS/wrk-http-$srv.txt
	measure_wrk "$PORT" "$out"
	local rc=$WRK_RC t0=$T0 t1=$T1
	cat "$out" >>"$log"
	if [ -z "$t1" ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
		stop "$SRV_PID"
		http_fail http "$srv" "server died during the wrk run (see $log)"
		return 0
	fi
	stop "$SRV_PID"
	wrk_metrics "$out" "$t0" "$t1"
	if [ $rc != 0 ] || [ "$REQ_PER_S" = NA ] || [ "${REQS:-0}" = 0 ]; then
		http_fail http "$srv" "wrk status $rc, $REQS requests (see $log)"
		return 0
	fi
	local line="BENCH http $srv workers=1 req_per_s=$REQ_PER_S p99_ms=$P99 cpu_us_per_req=$CPU_US user_us_per_req=$USER_US requests=$REQS socket_errors=$ERRS non2xx=$NON2XX other_cpu_pct=$OTHER_PCT"
	emit "$line"
}

# c10k_run_one SERVER: one c10k run; one BENCH or FAIL line into $RAW.
c10k_run_one() {
	local srv=$1 log=$LOGS/c10k-$1.log out idle_out rss0 rss1 rss2
	local idle
	if [ "${http_avail[$srv]:-0}" != 1 ] ||
		[ "${http_avail[idle_conns]:-0}" != 1 ]; then
		echo "FAIL c10k $srv workers=1 rc=none why=not built, see bench/build/logs/build-http.log" >>"$RAW"
		return 0
	fi
	if ! start_server "$srv" "$log"; then
		stop "$SRV_PID"
		http_fail c10k "$srv" "$WHY"
		return 0
	fi
	# Let start-up finish (a runtime's lazy initialisation, Python's
	# imports) before the baseline.
	sleep 0.5
	rss0=$(rss_kib "$SRV_PID")
	idle_out=$LOGS/idle-c10k-$srv.txt
	"$HTTP_BUILD/idle_conns" "$PORT" "$C10K_IDLE" / \
		>"$idle_out" 2>>"$log" &
	idle=$!
	HTTP_PIDS="$HTTP_PIDS $idle"
	for _ in $(seq 600); do
		grep -q '^READY' "$idle_out" && break
		kill -0 "$idle" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^READY' "$idle_out"; then
		stop "$idle"
		stop "$SRV_PID"
		http_fail c10k "$srv" "could not open $C10K_IDLE connections: $(tail -n 1 "$log" | cut -c1-160)"
		return 0
	fi
	# The last responses were read; give the server a moment to finish
	# the bookkeeping after its writes before reading its RSS.
	sleep 0.5
	rss1=$(rss_kib "$SRV_PID")
	out=$LOGS/wrk-c10k-$srv.txt
	measure_wrk "$PORT" "$out"
	local rc=$WRK_RC t0=$T0 t1=$T1
	rss2=$(rss_kib "$SRV_PID")
	cat "$out" >>"$log"
	kill -TERM "$idle" 2>/dev/null
	wait "$idle" 2>/dev/null
	HTTP_PIDS=$(echo "$HTTP_PIDS" | tr ' ' '\n' | grep -vx "$idle" | tr '\n' ' ')
	local held open_ms closed
	held=$(grep '^HELD' "$idle_out")
	open_ms=$(sed -n 's/^READY.*open_ms=\([0-9.]*\).*/\1/p' "$idle_out")
	closed=$(echo "$held" | sed -n 's/.*closed=\([0-9]*\).*/\1/p')
	if [ -z "$t1" ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
		stop "$SRV_PID"
		http_fail c10k "$srv" "server died during the wrk run (see $log)"
		return 0
	fi
	stop "$SRV_PID"
	wrk_metrics "$out" "$t0" "$t1"
	if [ $rc != 0 ] || [ "$REQ_PER_S" = NA ] || [ "${REQS:-0}" = 0 ]; then
		http_fail c10k "$srv" "wrk status $rc, $REQS requests (see $log)"
		return 0
	fi
	local kib
	kib=$(awk -v a="$rss0" -v b="$rss1" -v n="$C10K_IDLE" \
		'BEGIN { printf "%.3f", (b - a) / n }')
	local line="BENCH c10k $srv workers=1 kib_per_conn=$kib req_per_s=$REQ_PER_S p99_ms=$P99 cpu_us_per_req=$CPU_US rss0_kib=$rss0 rss_idle_kib=$rss1 rss_after_wrk_kib=$rss2 idle=$C10K_IDLE idle_closed=${closed:-NA} open_ms=${open_ms:-NA} requests=$REQS socket_errors=$ERRS non2xx=$NON2XX other_cpu_pct=$OTHER_PCT"
	emit "$line"
}
