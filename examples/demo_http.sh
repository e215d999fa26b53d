#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/demo_http.sh — the last part of `make demo`: the hello web
# server and a client fetching from it, many requests at once.
#
# Starts build/examples/http_hello on a free port of 127.0.0.1, answering
# every greeting after 100 ms (as if a slow backend were behind it), runs
# build/examples/fetch_many against it (libcurl through coev/curl.h; 40
# requests, at most 10 at a time by a semaphore: about 0.4 s instead of
# 4 s), then stops the server with SIGTERM. Exits
# non-zero if a fetch failed or the server did not stop cleanly; the
# server never outlives the script.
#
#   examples/demo_http.sh [BUILD_DIR]        (default: build)
set -u

B=${1:-build}
log=$(mktemp)
pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

title="Epilogue: a web server and its clients" # tour.c's rule(), 76 wide
printf '\n== %s %s\n\n' "$title" \
	"$(printf '=%.0s' $(seq $((76 - ${#title} - 4))))"
cat <<'EOF'
The "Hello, {name}!" server of the aiohttp post, as examples/http_hello.c:
one task per connection. Each greeting takes 100 ms here (-d 100), as if
it waited on a database; examples/fetch_many.c, a libcurl client on coev's
adapter, then asks for 40 greetings, one task each, at most 10 at a time
(a coev_sem_t of 10: asyncio's Semaphore(10)). While a connection's task
sleeps, the server's workers run the others, so the 40 requests take about
0.4 s, not 4 s.

EOF

"$B/examples/http_hello" -d 100 0 2 >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "demo: http_hello did not start:" >&2
	cat "$log" >&2
	exit 1
fi
sed 's/^/  /' "$log"

echo "  \$ fetch_many -n 40 -k 10 127.0.0.1:$port"
"$B/examples/fetch_many" -n 40 -k 10 "127.0.0.1:$port" | sed 's/^/  /'
fetch_status=${PIPESTATUS[0]}

kill -TERM "$pid"
wait "$pid"
server_status=$?
pid=
sed -n '2,$s/^/  /p' "$log"
if [ "$fetch_status" != 0 ] || [ "$server_status" != 0 ]; then
	echo "demo: fetch_many exited with $fetch_status, http_hello with" \
		"$server_status" >&2
	exit 1
fi
echo
echo "The web server demo finished and every request was answered."
