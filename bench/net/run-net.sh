# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# bench/net/run-net.sh — the ws-echo and https workloads; sourced by
# bench/run.sh after bench/http/run-http.sh (whose helpers it uses:
# listening, stop, cpu_ticks, cpu_stat, child_ticks, parse_wrk,
# wrk_metrics, emit, wait_quiet, http_round and HTTP_PIDS). run.sh
# provides say, die, build_fail, the avail array and ROOT, HERE, BUILD,
# LOGS and RAW, and calls net_build, then http_round ws_echo SERVER and
# http_round https SERVER for each round.
#
# ws-echo: one WebSocket echo server process (one thread for tasks) on
#   127.0.0.1, loaded by bench/net/ws_load.c: NET_CONNS connections, each
#   with one WS_SIZE-byte text message outstanding, for NET_DURATION
#   seconds. Metrics: messages per second (ws_load's count), the server's
#   CPU time per message (utime + stime from /proc/PID/stat over the
#   client's whole run, divided by every message it echoed), its user time
#   alone, and its system calls per message (perf stat -e
#   raw_syscalls:sys_enter attached to the server over the same span,
#   every thread; left out when perf is missing or refused).
# https: the same hello server as the http workload, over plain TCP
#   (SERVER) and over TLS (SERVER-tls), each a fresh process, loaded by
#   wrk -t1 -c$NET_CONNS -d${NET_DURATION}s. Metrics: requests per second,
#   the server's user and CPU time per request; report.py derives what
#   TLS adds per request from consecutive plain/TLS runs. epoll and
#   epoll-tls (bench/net/epoll_https.c) are the floor: a bare epoll loop
#   calling OpenSSL directly, with adapters/tls.c's settings.
#
# With NET_PIN=1 (the default on two or more CPUs) the server runs on CPU
# 0 and the load client on CPU 1 (taskset), so that neither takes the
# other's CPU; the client's own CPU share is reported (client_cpu_pct:
# near 100, the client was the limit, not the server).

WS_ALL_SERVERS="coev go python"
HTTPS_ALL_SERVERS="coev coev-tls go go-tls epoll epoll-tls"
WS_SERVERS=${WS_SERVERS:-$WS_ALL_SERVERS}
HTTPS_SERVERS=${HTTPS_SERVERS:-$HTTPS_ALL_SERVERS}
NET_DURATION=${NET_DURATION:-10}
NET_CONNS=${NET_CONNS:-100}
WS_SIZE=${WS_SIZE:-32}
NET_PORT=${NET_PORT:-21600}
NET_PIN=${NET_PIN:-$([ "$(nproc)" -ge 2 ] && echo 1 || echo 0)}
NET_BUILD=$BUILD/net
GOCODE=/usr/share/gocode
net_port_next=$NET_PORT

net_validate() {
	local s
	for s in $WS_SERVERS; do
		case " $WS_ALL_SERVERS " in *" $s "*) ;;
		*) die "unknown ws-echo server '$s' (known: $WS_ALL_SERVERS)" ;;
		esac
	done
	for s in $HTTPS_SERVERS; do
		case " $HTTPS_ALL_SERVERS " in *" $s "*) ;;
		*) die "unknown https server '$s' (known: $HTTPS_ALL_SERVERS)" ;;
		esac
	done
	[ "$NET_DURATION" -ge 1 ] 2>/dev/null ||
		die "NET_DURATION must be a whole number of seconds"
	if ! [ "$WS_SIZE" -ge 16 ] 2>/dev/null || [ "$WS_SIZE" -gt 125 ]; then
		die "WS_SIZE must be 16..125 bytes"
	fi
}

# net_missing: what the two workloads need that is absent, as words for
# run.sh's "missing" list (perf is optional: without it the system calls
# are left out).
net_missing() {
	command -v wrk >/dev/null || echo wrk
	command -v go >/dev/null || echo go
	command -v openssl >/dev/null || echo openssl
	[ -f /usr/include/openssl/sha.h ] || echo libssl-dev
	[ -d "$GOCODE/src/github.com/gorilla/websocket" ] ||
		echo golang-github-gorilla-websocket-dev
	/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
		echo python3-websockets
}

# ---- builds ------------------------------------------------------------

declare -A net_avail

net_build_one() { # NAME LOG COMMAND...: build, record availability
	local name=$1 log=$2
	shift 2
	net_avail[$name]=1
	if ! "$@" >>"$log" 2>&1; then
		net_avail[$name]=0
		build_fail "$name (ws-echo/https)" "$log"
	fi
}

# net_coev_build NAME SOURCE HEADER ARCHIVE LIBS: a coev server, when its
# header is in include/coev/ and its adapter archive was built (make lib);
# otherwise recorded as not built, saying why.
net_coev_build() {
	local name=$1 src=$2 hdr=$3 ar=$4 libs=$5 log=$LOGS/build-net.log
	net_avail[$name]=0
	if [ "${avail[coev_lib]:-0}" != 1 ]; then
		echo "$name: libcoev.a did not build" >>"$log"
	elif [ ! -f "$ROOT/include/coev/$hdr" ]; then
		echo "$name: include/coev/$hdr does not exist in this tree" >>"$log"
		say "$name: include/coev/$hdr does not exist; not built"
	elif [ -n "$ar" ] && [ ! -f "$ROOT/build/$ar" ]; then
		echo "$name: build/$ar was not built by make lib" >>"$log"
		say "$name: build/$ar was not built; not built"
	else
		# shellcheck disable=SC2086
		net_build_one "$name" "$log" cc -O2 -std=c11 -Wall \
			-Wextra -Werror -I"$ROOT/include" -I"$ROOT" "$src" \
			-o "$NET_BUILD/$name" ${ar:+"$ROOT/build/$ar"} \
			"$ROOT/build/libcoev.a" $libs -lev -lck -lpthread -lm
	fi
}

net_build() {
	local log=$LOGS/build-net.log
	local ws tls
	ws=" $(has_w ws-echo && echo "$WS_SERVERS") "
	tls=" $(has_w https && echo "$HTTPS_SERVERS") "
	mkdir -p "$NET_BUILD"
	: >"$log"
	say "building the ws-echo and https servers and load client"
	has_w ws-echo && net_build_one ws_load "$log" cc -O2 -std=c11 -Wall \
		-Wextra -Werror "$HERE/net/ws_load.c" -o "$NET_BUILD/ws_load" \
		-lcrypto
	case "$ws$tls" in *" go "* | *" go-tls "*)
		# GOPATH mode: gorilla/websocket comes from Debian's
		# /usr/share/gocode; the build cache and any output stay in
		# bench/build.
		net_build_one go "$log" env -C "$HERE/net/go" GO111MODULE=off \
			GOPATH="$GOCODE" GOCACHE="$BUILD/go-cache" GOFLAGS= \
			go build -o "$NET_BUILD/go-net" .
		;;
	esac
	case $ws in *" python "*)
		net_avail[python]=1
		if ! /usr/bin/python3 -c 'import websockets' >>"$log" 2>&1; then
			net_avail[python]=0
			build_fail "python (python3-websockets not importable)" "$log"
		fi
		;;
	esac
	case $ws in *" coev "*)
		net_coev_build coev-ws "$HERE/coev/ws_echo.c" ws.h \
			libcoev_ws.a "-lwslay -lhttp_parser -lcrypto"
		;;
	esac
	case $tls in *" coev "* | *" coev-tls "*)
		net_coev_build coev-https "$HERE/coev/https_hello.c" tls.h \
			libcoev_tls.a "-lssl -lcrypto"
		;;
	esac
	case $tls in *" epoll "* | *" epoll-tls "*)
		net_build_one epoll-https "$log" cc -O2 -std=c11 -Wall -Wextra \
			-Werror "$HERE/net/epoll_https.c" \
			-o "$NET_BUILD/epoll_https" -lssl -lcrypto
		;;
	esac
	if [ -n "${tls// /}" ]; then
		# A throw-away P-256 certificate for 127.0.0.1 (wrk does not
		# verify it; the servers only need one to present).
		net_avail[cert]=1
		if ! openssl req -x509 -newkey ec \
			-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
			-keyout "$NET_BUILD/key.pem" -out "$NET_BUILD/cert.pem" \
			>>"$log" 2>&1; then
			net_avail[cert]=0
			build_fail "the test certificate (openssl req)" "$log"
		fi
	fi
	NET_PERF=0
	if command -v perf >/dev/null &&
		perf stat -x, -e raw_syscalls:sys_enter -o /dev/null true \
			>>"$log" 2>&1; then
		NET_PERF=1
	else
		say "perf stat cannot count system calls here; syscalls_per_msg is left out"
	fi
}

# ---- one run -----------------------------------------------------------

# pin CPU: the taskset prefix for CPU (nothing when NET_PIN is 0).
pin() {
	[ "$NET_PIN" = 1 ] && echo "taskset -c $1"
}

# net_cmd WORKLOAD SERVER PORT: the server's command line, in the array CMD
# (empty when it was not built; WHY says which part).
net_cmd() {
	local c=$NET_BUILD/cert.pem k=$NET_BUILD/key.pem need
	CMD=()
	case $1:$2 in
	ws-echo:coev) need=coev-ws CMD=("$NET_BUILD/coev-ws" "$3") ;;
	ws-echo:go) need=go CMD=(env GOMAXPROCS=1 "$NET_BUILD/go-net" ws "$3") ;;
	ws-echo:python) need=python CMD=(/usr/bin/python3 "$HERE/net/ws_echo.py" "$3") ;;
	https:coev) need=coev-https CMD=("$NET_BUILD/coev-https" "$3") ;;
	https:coev-tls) need=coev-https CMD=("$NET_BUILD/coev-https" "$3" "$c" "$k") ;;
	https:go) need=go CMD=(env GOMAXPROCS=1 "$NET_BUILD/go-net" http "$3") ;;
	https:go-tls) need=go CMD=(env GOMAXPROCS=1 "$NET_BUILD/go-net" https "$3" "$c" "$k") ;;
	https:epoll) need=epoll-https CMD=("$NET_BUILD/epoll_https" "$3") ;;
	https:epoll-tls) need=epoll-https CMD=("$NET_BUILD/epoll_https" "$3" "$c" "$k") ;;
	esac
	if [ "${net_avail[$need]:-0}" != 1 ]; then
		CMD=()
		WHY="not built, see bench/build/logs/build-net.log"
	elif [ "$1" = https ] && [ "${2%-tls}" != "$2" ] &&
		[ "${net_avail[cert]:-0}" != 1 ]; then
		CMD=()
		WHY="not built: no certificate, see bench/build/logs/build-net.log"
	fi
}

# net_start WORKLOAD SERVER LOG: start it, pinned, on a fresh port of
# the NET_PORT range, and wait until the port listens. Sets SRV_PID and
# PORT; returns 1 with WHY when it is not built, exits, or does not listen
# within 20 s.
net_start() {
	while listening "$net_port_next"; do
		net_port_next=$((net_port_next + 1))
	done
	PORT=$net_port_next
	net_port_next=$((net_port_next + 1))
	SRV_PID=""
	net_cmd "$1" "$2" "$PORT"
	[ ${#CMD[@]} -gt 0 ] || return 1
	# shellcheck disable=SC2046
	set -- "$3" $(pin 0) "${CMD[@]}"
	echo "== $(date -u +%H:%M:%S) ${*:2}" >>"$1"
	# taskset, env and python3 exec in place: the PID is the server's.
	"${@:2}" >>"$1" 2>&1 </dev/null &
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

net_fail() { # WORKLOAD SERVER WHY
	echo "FAIL $1 $2 workers=1 rc=1 why=$3" >>"$RAW"
	say "  FAILED $1 $2: $3"
}

# other_pct_of S0 S1 T0 T1 C0 C1: the share of all CPUs' time between the
# /proc/stat samples S0 and S1 that neither the server (ticks T0..T1) nor
# this shell's children reaped in between (C0..C1) used.
other_pct_of() {
	echo "$@" | awk '{ busy = $3 - $1; total = $4 - $2
		own = ($7 + $8 - $5 - $6) + ($10 - $9)
		o = total > 0 ? 100 * (busy - own) / total : 0
		printf "%.0f", (o > 0 ? o : 0) }'
}

# net_perf_start PID LOG: count the server's system calls, context
# switches and page faults (perf stat on every thread) until
# net_perf_stop; nothing when perf cannot count system calls here.
net_perf_start() {
	PERF_PID="" PERF_OUT=$2.perf
	[ "$NET_PERF" = 1 ] || return 0
	perf stat -x, -e raw_syscalls:sys_enter,context-switches,page-faults \
		-p "$1" -o "$PERF_OUT" >>"$2" 2>&1 &
	PERF_PID=$!
	HTTP_PIDS="$HTTP_PIDS $PERF_PID"
	# perf needs a moment to attach to every thread; the server does
	# nothing until the client starts, so nothing is missed.
	sleep 0.3
}

# net_perf_stop N UNIT: stop the count; KERN gets the counts per
# operation (N of them, named UNIT: msg, req) as BENCH fields, or "".
net_perf_stop() {
	KERN=""
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" 2>/dev/null
	HTTP_PIDS=$(echo "$HTTP_PIDS" | tr ' ' '\n' | grep -vx "$PERF_PID" | tr '\n' ' ')
	KERN=$(awk -F, -v n="$1" -v u="$2" '
		$3 ~ /raw_syscalls:sys_enter/ { k["syscalls"] = $1 }
		$3 ~ /context-switches/ { k["csw"] = $1 }
		$3 ~ /page-faults/ { k["minflt"] = $1 }
		END { if (n <= 0) exit
			for (m in k) if (k[m] ~ /^[0-9]+$/)
				printf " %s_per_%s=%.4f", m, u, k[m] / n }' \
		"$PERF_OUT")
}

# ws_echo_run_one SERVER: one ws-echo run; one BENCH or FAIL line.
ws_echo_run_one() {
	local srv=$1 log=$LOGS/ws-echo-$1.log out=$LOGS/ws-echo-$1.out
	local tf=$BUILD/times.txt s0 s1 t0 t1 c0 c1 rc line
	if [ "${net_avail[ws_load]:-0}" != 1 ]; then
		echo "FAIL ws-echo $srv workers=1 rc=none why=not built: bench/net/ws_load.c, see bench/build/logs/build-net.log" >>"$RAW"
		return 0
	fi
	if ! net_start ws-echo "$srv" "$log"; then
		[ -n "$SRV_PID" ] && stop "$SRV_PID"
		case $WHY in
		"not built"*) echo "FAIL ws-echo $srv workers=1 rc=none why=$WHY" >>"$RAW" ;;
		*) net_fail ws-echo "$srv" "$WHY" ;;
		esac
		return 0
	fi
	net_perf_start "$SRV_PID" "$log"
	times >"$tf"
	c0=$(child_ticks "$tf")
	s0=$(cpu_stat)
	t0=$(cpu_ticks "$SRV_PID")
	# shellcheck disable=SC2046
	timeout -k 5 $((NET_DURATION + 60)) $(pin 1) "$NET_BUILD/ws_load" \
		"$PORT" "$NET_CONNS" "$NET_DURATION" "$WS_SIZE" >"$out" 2>>"$log"
	rc=$?
	t1=$(cpu_ticks "$SRV_PID")
	s1=$(cpu_stat)
	times >"$tf"
	c1=$(child_ticks "$tf")
	cat "$out" >>"$log"
	if [ -z "$t1" ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
		stop "$SRV_PID"
		net_fail ws-echo "$srv" "server died during the run (see $log)"
		return 0
	fi
	stop "$SRV_PID"
	line=$(grep '^WSLOAD ' "$out" | tail -n 1)
	if [ $rc != 0 ] || [ -z "$line" ]; then
		net_fail ws-echo "$srv" "ws_load status $rc: $(grep -v '^== ' "$log" | tail -n 1 | cut -c1-160)"
		return 0
	fi
	local total u0 st0 u1 st1
	total=$(echo "$line" | grep -o ' msgs_total=[0-9]*' | cut -d= -f2)
	read -r u0 st0 <<<"$t0"
	read -r u1 st1 <<<"$t1"
	OTHER_PCT=$(other_pct_of "$s0" "$s1" "$t0" "$t1" "$c0" "$c1")
	local per
	per=$(awk -v u=$((u1 - u0)) -v s=$((st1 - st0)) -v n="$total" \
		-v hz="$CLK_TCK" 'BEGIN {
		printf "cpu_us_per_msg=%.3f user_us_per_msg=%.3f sys_us_per_msg=%.3f",
			(u + s) / hz * 1e6 / n, u / hz * 1e6 / n, s / hz * 1e6 / n }')
	net_perf_stop "$total" msg
	emit "BENCH ws-echo $srv workers=1 ${line#WSLOAD } $per$KERN other_cpu_pct=$OTHER_PCT pinned=$NET_PIN"
}

# https_run_one SERVER: one https run (plain or -tls); one BENCH or FAIL
# line. The TLS servers' negotiated suite is read first with one
# openssl s_client connection (it offers what wrk offers: both are
# OpenSSL with its defaults).
https_run_one() {
	local srv=$1 log=$LOGS/https-$1.log out=$LOGS/wrk-https-$1.txt
	local scheme=http cipher="" tf=$BUILD/times.txt s0 s1 t0 t1 c0 c1 rc w
	if ! net_start https "$srv" "$log"; then
		[ -n "$SRV_PID" ] && stop "$SRV_PID"
		case $WHY in
		"not built"*) echo "FAIL https $srv workers=1 rc=none why=$WHY" >>"$RAW" ;;
		*) net_fail https "$srv" "$WHY" ;;
		esac
		return 0
	fi
	if [ "${srv%-tls}" != "$srv" ]; then
		scheme=https
		cipher=$(openssl s_client -connect "127.0.0.1:$PORT" -brief \
			</dev/null 2>&1 | sed -n 's/^Ciphersuite: *//p' | head -n 1)
		cipher=" cipher=${cipher:-unknown}"
	fi
	net_perf_start "$SRV_PID" "$log"
	times >"$tf"
	c0=$(child_ticks "$tf")
	s0=$(cpu_stat)
	t0=$(cpu_ticks "$SRV_PID")
	# shellcheck disable=SC2046
	$(pin 1) wrk -t1 -c"$NET_CONNS" -d"${NET_DURATION}s" --latency \
		"$scheme://127.0.0.1:$PORT/" >"$out" 2>&1 &
	w=$!
	HTTP_PIDS="$HTTP_PIDS $w"
	wait "$w"
	rc=$?
	HTTP_PIDS=$(echo "$HTTP_PIDS" | tr ' ' '\n' | grep -vx "$w" | tr '\n' ' ')
	t1=$(cpu_ticks "$SRV_PID")
	s1=$(cpu_stat)
	times >"$tf"
	c1=$(child_ticks "$tf")
	cat "$out" >>"$log"
	wrk_metrics "$out" "$t0" "$t1"
	net_perf_stop "${REQS:-0}" req
	if [ -z "$t1" ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
		stop "$SRV_PID"
		net_fail https "$srv" "server died during the wrk run (see $log)"
		return 0
	fi
	stop "$SRV_PID"
	if [ $rc != 0 ] || [ "$REQ_PER_S" = NA ] || [ "${REQS:-0}" = 0 ]; then
		net_fail https "$srv" "wrk status $rc, $REQS requests (see $log)"
		return 0
	fi
	# A run where over 1 % of the requests met socket errors (timed-out
	# handshakes on a starved CPU, say) measured something else; as a
	# failure it stays out of the medians and of the plain/TLS pairs.
	if [ $((ERRS * 100)) -gt "$REQS" ]; then
		net_fail https "$srv" "wrk saw $ERRS socket errors in $REQS requests (see $log)"
		return 0
	fi
	OTHER_PCT=$(other_pct_of "$s0" "$s1" "$t0" "$t1" "$c0" "$c1")
	emit "BENCH https $srv workers=1 req_per_s=$REQ_PER_S p99_ms=$P99 cpu_us_per_req=$CPU_US user_us_per_req=$USER_US$KERN requests=$REQS socket_errors=$ERRS non2xx=$NON2XX$cipher other_cpu_pct=$OTHER_PCT pinned=$NET_PIN"
}
