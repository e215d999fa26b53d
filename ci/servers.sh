#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The loopback servers the adapter tests (tests/adapters/) talk to, on 127.0.0.1:
#   redis  redis-server, port $COEV_REDIS_PORT (6390), no persistence
#   dns    dnsmasq, port $COEV_DNS_PORT (5353), UDP and TCP, serving only the
#          zone coev.test: www -> 127.0.0.1, v6 -> ::1, dual -> both,
#          h0 .. h999 -> 127.0.0.1, other names in it NXDOMAIN; names
#          outside it REFUSED (no upstream: nothing is forwarded)
#   http   tests/adapters/httpd.py, port $COEV_HTTP_PORT (8390)
# Usage: ci/servers.sh start|stop|status|env
#   start   starts those not running and waits (up to 10 s each) until each
#           answers; fails naming the port if another process holds it
#   stop    TERM, then KILL after 3 s, to the PIDs of our pid files only
#   status  what runs (exit 1 unless all three answer)
#   env     an export line with the ports
# State (pid files, logs, the zone's hosts file) in $COEV_SERVERS_DIR
# (default build/servers).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${COEV_SERVERS_DIR:-$root/build/servers}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
probe="python3 $root/ci/probe.py"
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
declare -A default=([redis]=6390 [dns]=5353 [http]=8390)
declare -A prog=([redis]=redis-server [dns]=dnsmasq [http]=httpd.py)

die() { echo "ci/servers.sh: $*" >&2; exit 1; }
var() { echo "COEV_${1^^}_PORT"; }
want() { local v; v=$(var "$1"); echo "${!v:-${default[$1]}}"; }
pid() { cat "$dir/$1.pid" 2>/dev/null; }

# Ours runs: the pid file names a live process running the server's program
# (so a recycled PID is never taken for ours).
alive() {
	local p; p=$(pid "$1") || return 1
	{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "${prog[$1]}"
}

# The port ours runs on, else the one asked for.
port() { if alive "$1"; then cat "$dir/$1.port"; else want "$1"; fi; }

ready() {
	local p; p=$(port "$1")
	case $1 in
	redis) [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null)" = PONG ] ;;
	dns) [ "$($probe dns "$p" www.coev.test 2>/dev/null)" = "NOERROR 127.0.0.1" ] ;;
	http) $probe http "$p" /hello >/dev/null 2>&1 ;;
	esac
}

zone() {
	printf '%s\n' "127.0.0.1 www.coev.test" "::1 v6.coev.test" \
		"127.0.0.1 dual.coev.test" "::1 dual.coev.test"
	printf '127.0.0.1 h%d.coev.test\n' $(seq 0 999)
}

launch() {
	local n=$1 p log="$dir/$1.log"; p=$(want "$1")
	case $n in
	redis) set -- redis-server --bind 127.0.0.1 --port "$p" --save '' \
		--appendonly no --daemonize no --dir "$dir" ;;
	# As root, dnsmasq would drop to nobody, who may not read $dir: it runs
	# as whoever runs this. COEV_DNS_LOG_QUERIES=1 logs every query.
	dns) zone >"$dir/coev.test.hosts"
		set -- "$dnsmasq" --keep-in-foreground --conf-file=/dev/null \
		--no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
		--port="$p" --local=/coev.test/ --addn-hosts="$dir/coev.test.hosts" \
		--pid-file= --log-facility="$log" --user="$(id -un)" \
		--group="$(id -gn)" ${COEV_DNS_LOG_QUERIES:+--log-queries} ;;
	http) set -- python3 "$root/tests/adapters/httpd.py" "$p" ;;
	esac
	"$@" </dev/null >>"$log" 2>&1 &
	echo $! >"$dir/$n.pid"
	echo "$p" >"$dir/$n.port"
}

start() {
	local n=$1 p what=started; p=$(want "$1")
	if alive "$n"; then
		[ "$(port "$n")" = "$p" ] || die "$n: ours runs on port $(port "$n"), not $p; stop it first"
		what="already running"
	else
		rm -f "$dir/$n.pid" "$dir/$n.port"
		$probe free tcp "$p" || die "$n: port $p (tcp) on 127.0.0.1 is taken by another process; set $(var "$n")"
		[ "$n" != dns ] || $probe free udp "$p" ||
			die "$n: port $p (udp) on 127.0.0.1 is taken by another process; set $(var "$n")"
		launch "$n"
	fi
	for _ in $(seq 100); do
		ready "$n" && { echo "$n: $what, pid $(pid "$n"), 127.0.0.1:$p"; return; }
		alive "$n" || break
		sleep 0.1
	done
	tail -n 5 "$dir/$n.log" >&2 || true
	die "$n: no answer on 127.0.0.1:$p (log: $dir/$n.log)"
}

stop() {
	local n=$1 p
	if alive "$n"; then
		p=$(pid "$n")
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 30); do alive "$n" || break; sleep 0.1; done
		! alive "$n" || kill -KILL "$p" 2>/dev/null || true
		echo "$n: stopped pid $p"
	else
		echo "$n: not running"
	fi
	rm -f "$dir/$n.pid" "$dir/$n.port"
}

status() {
	if alive "$1" && ready "$1"; then
		echo "$1: running, pid $(pid "$1"), 127.0.0.1:$(port "$1")"
	elif alive "$1"; then
		echo "$1: pid $(pid "$1") not answering on 127.0.0.1:$(port "$1")"; return 1
	else
		echo "$1: not running"; return 1
	fi
}

rc=0
case ${1:-} in
start) for n in redis dns http; do start "$n"; done ;;
stop) for n in http dns redis; do stop "$n"; done ;;
status) for n in redis dns http; do status "$n" || rc=1; done ;;
env) echo "export COEV_REDIS_PORT=$(port redis) COEV_DNS_PORT=$(port dns) COEV_HTTP_PORT=$(port http)" ;;
*) sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
exit $rc
