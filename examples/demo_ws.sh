#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/demo_ws.sh — the WebSocket part of `make demo`: the asyncio
# post's WebSocket server (examples/ws_echo.c) and many clients at once.
#
# Starts build/examples/ws_echo on a free port of 127.0.0.1, runs its client
# mode with 100 connections of 5 messages each (each answered after 100 ms:
# about 0.5 s in all, not 50 s), then stops the server with SIGINT, as
# Ctrl-C would. Exits non-zero if a message went wrong or the server did
# not stop cleanly; the server never outlives the script.
#
#   examples/demo_ws.sh [BUILD_DIR]        (default: build)
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

title="Encore: a WebSocket server" # tour.c's rule(), 76 wide
printf '\n== %s %s\n\n' "$title" \
	"$(printf '=%.0s' $(seq $((76 - ${#title} - 4))))"
cat <<'EOF'
The WebSocket server of the asyncio post, as examples/ws_echo.c: one task
per client reads its messages in a loop (async for message in websocket),
works 100 ms on each, and answers "Processed: <message>". The client mode
opens 100 connections and sends 5 messages on each, one after another:
while one connection's task sleeps, the workers serve the others, so the
500 answers take about 5 x 0.1 s.

EOF

"$B/examples/ws_echo" server 0 >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "demo: ws_echo did not start:" >&2
	cat "$log" >&2
	exit 1
fi
sed 's/^/  /' "$log"

echo "  \$ ws_echo client $port 100 5"
"$B/examples/ws_echo" client "$port" 100 5 | sed 's/^/  /'
client_status=${PIPESTATUS[0]}

kill -INT "$pid"
wait "$pid"
server_status=$?
pid=
sed -n '2,$s/^/  /p' "$log"
if [ "$client_status" != 0 ] || [ "$server_status" != 0 ]; then
	echo "demo: the client exited with $client_status, ws_echo with" \
		"$server_status" >&2
	exit 1
fi
echo
echo "The WebSocket demo finished and every message was answered."
