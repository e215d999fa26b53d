#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/test_examples.sh — integration tests of the examples: every
# program of examples/ runs here (make check).
#
# First build/examples/tour (make demo's first program, which checks what
# it narrates) on the default workers and on one. Then runs
# build/examples/pipeline and build/examples/limit with various
# sizes and checks their exit status and what they report (every message
# accounted for; the peak concurrency equal to the limit), including edge
# cases (no messages, more tasks than messages, rendezvous channels) and
# their deliberately broken modes (-x), which must fail. Then
# build/examples/wrap_callback: every caller of the wrapped callback library
# gets its answer or its error, the late answers of the timed-out and the
# cancelled caller are refused, and its broken mode (-x) fails.
#
# Then the debugging aids: build/examples/debug_slow must be reported on
# stderr as a slow task, with a backtrace naming the function it is busy
# in, while its heartbeat goes on (stdout); build/examples/debug_deadlock's
# task dump (stdout) must show both tasks waiting on the mutex the other
# holds and name the deadlock; build/examples/fib_trace must write a
# Chrome trace that build/examples/coev-trace-svg draws as an SVG; and
# examples/test_trace_svg.sh (the SVG tool's own tests) runs when present.
#
# Then build/examples/redis_counter against the loopback redis of
# ci/servers.sh (started here, and stopped at the end, unless it already
# runs or COEV_SERVERS=external, as ci/run-tests.sh does): every total
# right; without a server, exit 2.
#
# Then starts build/examples/http_hello and build/examples/echo on free ports of
# 127.0.0.1 (short timeouts, so the timeout tests are quick), talks to them
# with a small python3 socket client and with build/examples/fetch_many
# (libcurl: every greeting right, never more than -k in flight, a closed
# port refused), scrapes http_hello's GET /metrics and parses it with
# prometheus_client (/usr/bin/python3), stops them with SIGTERM and checks
# that they stop promptly and cleanly.
#
# Then build/examples/ws_echo, the WebSocket server: its own client mode (50
# connections x 5 messages in about 5 x 0.1 s), Python's websockets
# (/usr/bin/python3) as a client, and a clean stop on SIGINT.
#
# Last build/examples/tls_echo, with certificates made here by the openssl
# CLI: Python's ssl module (/usr/bin/python3) as its client (lines echoed,
# SNI logged, close_notify both ways), a client that does not trust the CA
# refused and the reason logged, the example's own client mode, and a
# clean stop on SIGTERM.
# Exits non-zero on any failure; never leaves a server running.
#
#   examples/test_examples.sh [BUILD_DIR]     BUILD_DIR: build (default),
#                                             build-asan, build-tsan, ...
# Needs python3 and the examples built (make examples, or
# make SAN=asan examples for build-asan).
set -u

B=${1:-build}
for bin in tour pipeline limit wrap_callback debug_slow debug_deadlock \
	fib_trace coev-trace-svg redis_counter http_hello echo fetch_many \
	tls_echo ws_echo; do
	if [ ! -x "$B/examples/$bin" ]; then
		echo "test_examples: $B/examples/$bin is missing (make examples)" >&2
		exit 2
	fi
done
if ! command -v python3 >/dev/null; then
	echo "test_examples: python3 is needed for the test client" >&2
	exit 2
fi

tmp=$(mktemp -d)
pids=()
servers="$(cd "$(dirname "$0")/.." && pwd)/ci/servers.sh"
servers_started=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	# The loopback servers started here, by the PIDs of their pid files.
	[ -z "$servers_started" ] || "$servers" stop >/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "${COEV_SERVERS:-}" != external ] && ! "$servers" status >/dev/null; then
	servers_started=1
	if ! "$servers" start >"$tmp/servers.log" 2>&1; then
		echo "test_examples: the loopback servers did not start:" >&2
		cat "$tmp/servers.log" >&2
		exit 1
	fi
fi
eval "$("$servers" env)"

failures=0
pass() { echo "ok   - $*"; }
fail() {
	echo "FAIL - $*"
	failures=$((failures + 1))
}

# start NAME ARGS...: run $B/examples/NAME ARGS in the background with its
# output in $tmp/NAME.log; set $pid and $port (read from its "listening on"
# line). Returns 1 if it does not say it listens within 10 s.
start() {
	local name=$1
	shift
	"$B/examples/$name" "$@" >"$tmp/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on [a-z:/]*127\.0\.0\.1:\([0-9]*\).*/\1/p' \
			"$tmp/$name.log")
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "test_examples: $name did not start:" >&2
	cat "$tmp/$name.log" >&2
	return 1
}

# stop_check NAME PID: wait (at most 5 s) for a server that was sent SIGTERM
# and check that it exited with status 0 and printed no sanitizer report.
stop_check() {
	local name=$1 p=$2 status
	for _ in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		fail "$name still running 5 s after SIGTERM"
		kill -KILL "$p" 2>/dev/null
	fi
	wait "$p"
	status=$?
	local q rest=()
	for q in "${pids[@]}"; do
		[ "$q" = "$p" ] || rest+=("$q")
	done
	pids=("${rest[@]}") # reaped: its pid may be reused, never kill it
	if [ "$status" = 0 ]; then
		pass "$name exited with status 0 after SIGTERM"
	else
		fail "$name exited with status $status after SIGTERM"
	fi
	if grep -q -E 'Sanitizer|runtime error:' "$tmp/$name.log"; then
		fail "$name: sanitizer report in its log"
	fi
}

# expect WHAT STATUS PATTERN NAME ARGS...: run $B/examples/NAME ARGS (at most
# 120 s) and check that it exits with STATUS, that its output has a line
# matching the extended regex PATTERN, and that it has no sanitizer report.
# WHAT describes the case for the ok/FAIL line. On failure, shows the output.
# The output stays in $tmp/run.log for also().
expect() {
	local what=$1 want=$2 pattern=$3 name=$4 status why=
	shift 4
	local log="$tmp/run.log"
	run_name="$name${*:+ $*}"
	timeout 120 "$B/examples/$name" "$@" >"$log" 2>&1
	status=$?
	if [ "$status" != "$want" ]; then
		why="exit status $status, expected $want"
	elif ! grep -q -E -- "$pattern" "$log"; then
		why="no line matches /$pattern/"
	elif grep -q -E 'Sanitizer|runtime error:' "$log"; then
		why="sanitizer report"
	fi
	if [ -z "$why" ]; then
		pass "$run_name: $what"
	else
		fail "$run_name: $what: $why"
		sed 's/^/    /' "$log"
	fi
}

# also WHAT PATTERN: check that the output of expect's last run has a line
# matching PATTERN too.
also() {
	if grep -q -E -- "$2" "$tmp/run.log"; then
		pass "$run_name: $1"
	else
		fail "$run_name: $1: no line matches /$2/"
		sed 's/^/    /' "$tmp/run.log"
	fi
}

# The tour: every check it makes passes (its timing checks compare the
# concurrent runs with the same steps one after the other, in the same run:
# they hold on a busy machine), on the default workers and on one.
expect "every check passed" 0 \
	'^Tour finished in [0-9.]+ s and every check passed\.$' tour
also "the coffee, one after the other and at once" \
	'^  One after the other: [0-9.]+ s\. Concurrently: [0-9.]+ s'
also "gather keeps each fetch's own result" \
	'^  coev_gather returned 2, the number of failed tasks'
also "fib(20) as a tree of tasks" 'Task tree: +fib\(20\) = 6765 in'
if grep -q 'UNEXPECTED' "$tmp/run.log"; then
	fail "tour: a check failed"
	sed 's/^/    /' "$tmp/run.log"
fi
COEV_WORKERS=1 expect "one worker: every check passed" 0 \
	'^Tour finished in [0-9.]+ s and every check passed\.$' tour
also "says it has one worker" '^The runtime has 1 worker thread\.'

# The pipeline: every message must reach the store stage exactly once,
# whatever the stage sizes, channel capacity and number of workers.
expect "all 100,000 accounted for" 0 \
	'^pipeline: OK: all 100,000 messages accounted for' pipeline -n 100000
also "2 fetchers sent 50,000 each" \
	'^  fetch +2 tasks +100,000 messages \(50,000\.\.50,000 per task\)'
also "4 processors passed every message on" '^  process +4 tasks +100,000 messages'
also "2 storers stored every message" '^  store +2 tasks +100,000 messages'
also "no id missing or twice" \
	'check: 100,000 of 100,000 ids stored, 0 missing, 0 duplicates, 0 unknown'
also "the payload sum is right" 'payload sum .*: equal'
also "a rate is printed" 'messages stored in [0-9.]+ s: [0-9,]+ messages/s'
expect "one task per stage" 0 'OK: all 20,000 messages accounted for' \
	pipeline -n 20000 -f 1 -p 1 -s 1
expect "more tasks in every stage than messages" 0 \
	'OK: all 5 messages accounted for' pipeline -n 5 -f 8 -p 16 -s 8
expect "a single message" 0 'OK: all 1 messages accounted for' \
	pipeline -n 1 -f 3 -p 2 -s 3
expect "no messages at all: every stage still ends" 0 \
	'OK: all 0 messages accounted for' pipeline -n 0
expect "rendezvous channels (capacity 0)" 0 \
	'OK: all 20,000 messages accounted for' pipeline -n 20000 -c 0
expect "capacity 1 on one worker" 0 'OK: all 20,000 messages accounted for' \
	pipeline -n 20000 -c 1 -w 1
expect "4 workers, 3/7/5 tasks" 0 'OK: all 50,000 messages accounted for' \
	pipeline -n 50000 -f 3 -p 7 -s 5 -w 4
expect "-x loses a message and the check sees it" 1 \
	'check: 2,999 of 3,000 ids stored, 1 missing' pipeline -n 3000 -x
expect "a stage without tasks is refused" 2 'out of range' pipeline -p 0

# limit: the semaphore must hold the jobs in flight at exactly the limit.
expect "the seeds' 100 jobs, 10 at a time: peak 10" 0 \
	'^  peak concurrency: 10 \(limit 10, expected 10\)' limit
also "the OK line" '^limit: OK: 100 jobs, never more than 10 in flight'
expect "30 jobs, 3 at a time" 0 '^  peak concurrency: 3 \(limit 3' \
	limit -n 30 -k 3
expect "fewer jobs than permits: peak 4" 0 \
	'^  peak concurrency: 4 \(limit 10, expected 4\)' limit -n 4
expect "a limit of 1 runs the jobs one by one" 0 \
	'^  peak concurrency: 1 \(limit 1' limit -n 8 -k 1 -w 4
expect "no jobs" 0 '^limit: OK: 0 jobs' limit -n 0
expect "-x gives the semaphore one permit too many: peak 11 fails" 1 \
	'^limit: FAILED: peak 11, expected 10' limit -x
expect "a limit of 0 is refused" 2 'out of range' limit -k 0
# 100 jobs of 30 ms on average, 10 at a time: the run takes about a tenth
# of the summed job time (the ratio printed as "(9.4x)"; at least 5x).
expect "wall time against job time" 0 'added up' limit
ratio=$(sed -n 's/.*added up (\([0-9.]*\)x).*/\1/p' "$tmp/run.log")
if [ -n "$ratio" ] && awk -v r="$ratio" 'BEGIN { exit !(r >= 5) }'; then
	pass "limit: the wall time is about a tenth of the job time (${ratio}x)"
else
	fail "limit: wall time against job time is '${ratio}x', expected >= 5x"
	sed 's/^/    /' "$tmp/run.log"
fi

# wrap_callback: 20 tasks call a callback library through a future each.
# Every task must get exactly its own result; both late callbacks must be
# told that nobody wants their answer (and neither may complete a future).
expect "20 callers, each with its answer or its error" 0 \
	'^wrap_callback: OK: every task got its answer or its error' wrap_callback
also "every caller's result is shown, 4 of them errors" \
	'^  gathered 20 tasks in [0-9]+ ms; 4 returned an error:'
also "an answer is copied out of the callback" '^  q0 +-> "Q0" after [0-9]+ ms$'
also "a library error reaches its caller" \
	'^  bad4 +-> error: no such file or directory after'
also "the 100 ms caller of a 400 ms query times out, not early" \
	'^  slow7 +-> error: timed out after (1[0-9]{2}|[23][0-9]{2}) ms$'
also "the cancelled caller returns" '^  slow13 +-> error: cancelled after [0-9]+ ms$'
also "the timed-out caller's late answer is refused" \
	'answer "SLOW7" is late; coev_future_complete refused it \(cancelled\)'
also "the cancelled caller's late answer is refused" \
	'answer "SLOW13" is late; coev_future_complete refused it \(cancelled\)'
also "18 answers delivered, 2 refused" \
	'^  callbacks: 18 delivered, 2 refused as too late'
if grep -q 'WRONG' "$tmp/run.log"; then
	fail "$run_name: a task is marked WRONG"
	sed 's/^/    /' "$tmp/run.log"
fi
expect "the same on one worker" 0 '^wrap_callback: OK' wrap_callback -w 1
expect "the same on four workers" 0 '^wrap_callback: OK' wrap_callback -w 4
expect "ignores the deadline, and the check sees it" 1 \
	'^  slow7 +-> "SLOW7" after [0-9]+ ms   <-- WRONG' wrap_callback -x
also "one late answer fewer" '^  callbacks: 19 delivered, 1 refused'
also "the FAILED line" '^wrap_callback: FAILED: 1 task\(s\) with the wrong result'
expect "a worker count of 0 is refused" 2 'out of range' wrap_callback -w 0

# streams NAME ARGS...: run $B/examples/NAME ARGS (at most 120 s) with its
# stdout in $tmp/NAME.out and its stderr in $tmp/NAME.err, for checks of
# each stream on its own; its exit status in $status. A sanitizer report
# in either is a failure.
streams() {
	local name=$1
	shift
	timeout 120 "$B/examples/$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	status=$?
	if grep -q -E 'Sanitizer|runtime error:' "$tmp/$name.out" "$tmp/$name.err"; then
		fail "$name: sanitizer report"
		sed 's/^/    /' "$tmp/$name.err"
	fi
}

# has WHAT FILE PATTERN: check that FILE has a line matching the extended
# regex PATTERN; on failure, show FILE.
has() {
	if grep -q -E -- "$3" "$2"; then
		pass "$1"
	else
		fail "$1: no line of ${2##*/} matches /$3/"
		sed 's/^/    /' "$2"
	fi
}

# debug_slow: 'crunch' computes for 400 ms without suspending. Debug mode
# (set in the program) must report it on stderr with a backtrace of where
# it is (count_primes), and then how long it ran; the heartbeat pinned to
# the other worker must keep printing meanwhile: at least 3 of its lines
# come before crunch's (it beats every 50 ms; a heartbeat held up behind
# crunch would print none before it).
streams debug_slow
if [ "$status" = 0 ]; then
	pass "debug_slow: exit status 0"
else
	fail "debug_slow: exit status $status"
fi
has "debug_slow: stderr reports the slow task" "$tmp/debug_slow.err" \
	"^coev: slow task: task #[0-9]+ 'crunch' has run for .* on worker 0 without suspending"
has "debug_slow: the backtrace names the busy function" "$tmp/debug_slow.err" \
	'^    #[0-9]+ count_primes'
has "debug_slow: then how long it ran" "$tmp/debug_slow.err" \
	'^coev: slow task: the task reported on worker 0 suspended after about'
has "debug_slow: crunch ran on worker 0" "$tmp/debug_slow.out" \
	'^crunch: [0-9]+ primes below [0-9]+: [0-9]+ ms without suspending, on worker 0$'
has "debug_slow: all 10 heartbeats" "$tmp/debug_slow.out" '^heartbeat: 10 beats'
beats=$(awk '/^crunch:/ { exit } /^heartbeat +[0-9]+ at .* on worker 1$/ { n++ }
	END { print n + 0 }' "$tmp/debug_slow.out")
if [ "$beats" -ge 3 ]; then
	pass "debug_slow: $beats heartbeats on worker 1 while crunch ran"
else
	fail "debug_slow: $beats heartbeats on worker 1 before crunch ended, expected 3 or more"
	sed 's/^/    /' "$tmp/debug_slow.out"
fi

# debug_deadlock: the dump on stdout must show each task waiting on the
# mutex the other holds, with backtraces, and the cycle; then both
# deadlines pass and the program ends normally.
streams debug_deadlock
if [ "$status" = 0 ]; then
	pass "debug_deadlock: exit status 0"
else
	fail "debug_deadlock: exit status $status"
	sed 's/^/    /' "$tmp/debug_deadlock.err"
fi
out=$tmp/debug_deadlock.out
has "debug_deadlock: 'left' waits on the mutex 'right' holds" "$out" \
	"^task #[0-9]+ 'left': waiting on mutex 0x[0-9a-f]+ held by task #[0-9]+ 'right'"
has "debug_deadlock: 'right' waits on the mutex 'left' holds" "$out" \
	"^task #[0-9]+ 'right': waiting on mutex 0x[0-9a-f]+ held by task #[0-9]+ 'left'"
has "debug_deadlock: the parked tasks' backtraces" "$out" \
	'^    #[0-9]+ take_both\+0x'
has "debug_deadlock: the deadlock line" "$out" \
	"^deadlock: task #[0-9]+ '(left|right)' waits for a mutex held by #[0-9]+ '(left|right)', which waits"
has "debug_deadlock: both time out and the program ends" "$out" \
	'^both deadlines passed: the deadlock ended'

# fib_trace: fib(18) with every call a task, traced; the trace must be
# complete (nothing dropped) Chrome JSON, and coev-trace-svg must draw it.
streams fib_trace "$tmp/fib.json"
if [ "$status" = 0 ]; then
	pass "fib_trace: exit status 0"
else
	fail "fib_trace: exit status $status"
	sed 's/^/    /' "$tmp/fib_trace.err"
fi
has "fib_trace: the result" "$tmp/fib_trace.out" '^fib\(18\) = 2584, 8361 tasks'
has "fib_trace: no event dropped" "$tmp/fib_trace.out" \
	'^trace: .*fib\.json, [0-9]+ events, 0 dropped$'
if [ "$(head -n 1 "$tmp/fib.json" 2>/dev/null)" = '{"traceEvents":[' ]; then
	pass "fib_trace: the trace starts as Chrome trace-event JSON"
else
	fail "fib_trace: the trace does not start with {\"traceEvents\":["
fi
has "fib_trace: the trace has task slices" "$tmp/fib.json" '"cat":"task"'
if timeout 60 "$B/examples/coev-trace-svg" "$tmp/fib.json" -o "$tmp/fib.svg" \
	>"$tmp/svg.log" 2>&1; then
	pass "coev-trace-svg: draws fib_trace's trace"
else
	fail "coev-trace-svg on fib_trace's trace:"
	sed 's/^/    /' "$tmp/svg.log"
fi
case $(head -c 5 "$tmp/fib.svg" 2>/dev/null) in
'<svg '* | '<?xml') pass "coev-trace-svg: the output is an SVG" ;;
*) fail "coev-trace-svg: the output does not start with <svg or <?xml" ;;
esac
has "coev-trace-svg: the legend names fib's tasks" "$tmp/fib.svg" 'fib\([0-9]+\)'
if [ -f "$(dirname "$0")/test_trace_svg.sh" ]; then
	echo "# examples/test_trace_svg.sh $B"
	bash "$(dirname "$0")/test_trace_svg.sh" "$B" || fail "examples/test_trace_svg.sh"
fi

# redis_counter: 100 tasks add to four fields of a hash through one shared
# connection; every field must hold its 25,000.
expect "100,000 HINCRBY over one connection, every total right" 0 \
	'^totals OK$' redis_counter
also "100 tasks, 100,000 commands" '^100 tasks, 100000 HINCRBY over one connection in'
also "each of the four fields holds 25,000" '^  f3 = 25000$'
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COEV_REDIS_PORT=$closed expect "no server: exit 2" 2 \
	"cannot reach redis-server on 127.0.0.1:$closed" redis_counter

# The test client: client.py tests|stop HELLO_PORT ECHO_PORT HELLO_PID ECHO_PID
cat >"$tmp/client.py" <<'EOF'
import os, signal, socket, sys, time

MODE = sys.argv[1]
HELLO, ECHO = int(sys.argv[2]), int(sys.argv[3])
HELLO_PID, ECHO_PID = int(sys.argv[4]), int(sys.argv[5])
failures = 0


def check(ok, what, detail=""):
    global failures
    if ok:
        print("ok   - " + what)
    else:
        failures += 1
        print("FAIL - %s%s" % (what, ": " + detail if detail else ""))
    sys.stdout.flush()


class Conn:
    """A client connection with a read buffer, for HTTP and echo."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout)
        self.s.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def fill(self):
        """Read more; False at end of stream (or reset)."""
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            d = b""
        self.buf += d
        return d != b""

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError("stream ended after %d of %d bytes" %
                               (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head=False):
        """One HTTP response: (status, headers dict, body)."""
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                raise EOFError("stream ended inside a response head: %r" %
                               self.buf)
        top, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = top.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = 0 if head else int(headers.get("content-length", "0"))
        return status, headers, self.read_exact(n)

    def at_eof(self, within):
        """True if the server closes (nothing more to read) within
        `within` seconds; ignores nothing: extra bytes count as not EOF."""
        self.s.settimeout(within)
        try:
            return not self.fill() and self.buf == b""
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def get(path, port=HELLO, extra=b""):
    c = Conn(port)
    c.send(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
    r = c.response()
    c.close()
    return r


def safe(name, fn):
    try:
        fn()
    except Exception as e:  # a crash of one test is that test's failure
        check(False, name, "%s: %s" % (type(e).__name__, e))


# --- http_hello: the routes ------------------------------------------------

def t_routes():
    for path, body in [(b"/", b"Hello, Anonymous!"), (b"/Ada", b"Hello, Ada!"),
                       (b"/Ada%20Lovelace", b"Hello, Ada Lovelace!"),
                       (b"/Ada?x=1", b"Hello, Ada!")]:
        st, _, got = get(path)
        check(st == 200 and got == body, "GET %s -> %s" % (path.decode(),
              body.decode()), "got %d %r" % (st, got))


def t_errors():
    for path, want in [(b"/a/b", 404), (b"/%01x", 400), (b"/%zz", 400),
                       (b"/" + b"x" * 201, 400), (b"/" + b"x" * 600, 414)]:
        st, _, _ = get(path)
        check(st == want, "GET %s... -> %d" % (path[:12].decode(), want),
              "got %d" % st)
    c = Conn(HELLO)
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
    st, h, _ = c.response()
    check(st == 405 and h.get("allow") == "GET, HEAD", "POST / -> 405 "
          "with Allow", "got %d %r" % (st, h))
    c.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
    st, _, body = c.response()
    check(st == 200 and body == b"Hello, again!",
          "the connection goes on after a 405", "got %d %r" % (st, body))
    c.close()
    c = Conn(HELLO)
    c.send(b"HEAD /Ada HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    st, h, _ = c.response(head=True)
    check(st == 200 and h.get("content-length") == "11" and c.at_eof(2),
          "HEAD /Ada -> 200, Content-Length 11, no body",
          "got %d %r %r" % (st, h, c.buf))
    c.close()


# --- http_hello: connections -----------------------------------------------

def t_pipelined():
    c = Conn(HELLO)
    c.send(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /three HTTP/1.1\r\nHost: t\r\n\r\n")
    got = [c.response()[2] for _ in range(3)]
    check(got == [b"Hello, one!", b"Hello, two!", b"Hello, three!"],
          "three pipelined requests answered in order", repr(got))
    c.close()


def t_keepalive():
    c = Conn(HELLO)
    bodies = []
    for name in (b"first", b"second", b"third"):
        c.send(b"GET /" + name + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        st, h, body = c.response()
        bodies.append(body)
        time.sleep(0.05)
    check(bodies == [b"Hello, first!", b"Hello, second!", b"Hello, third!"],
          "keep-alive: three requests one after the other on one "
          "connection", repr(bodies))
    c.close()

    c = Conn(HELLO)
    c.send(b"GET /Ada HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    st, h, _ = c.response()
    check(st == 200 and h.get("connection") == "close" and c.at_eof(2),
          "HTTP/1.1 Connection: close is honoured", repr(h))
    c.close()

    c = Conn(HELLO)
    c.send(b"GET /Ada HTTP/1.0\r\n\r\n")
    st, h, body = c.response()
    check(st == 200 and body == b"Hello, Ada!" and c.at_eof(2),
          "HTTP/1.0 is answered and closed", repr(h))
    c.close()

    c = Conn(HELLO)
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, _ = c.response()
    c.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st2, _, body = c.response()
    check(h.get("connection", "").lower() == "keep-alive" and
          body == b"Hello, b!", "HTTP/1.0 keep-alive keeps the connection",
          repr(h))
    c.close()


def still_serves(what):
    st, _, body = get(b"/Ada")
    check(st == 200 and body == b"Hello, Ada!",
          "the server still answers after " + what)


def closed_or_status(c, statuses):
    """Read what the server sends back: a response with one of `statuses`
    followed by the end of the stream, or the end of the stream at once."""
    try:
        st, _, _ = c.response()
    except EOFError:
        return True, "closed"
    return st in statuses and c.at_eof(3), "got %d" % st


def t_garbage():
    c = Conn(HELLO)
    c.send(b"\x01\x02 this is not HTTP\r\n\r\n")
    ok, got = closed_or_status(c, (400,))
    check(ok, "garbage -> 400 and close", got)
    c.close()
    still_serves("garbage")


def t_oversized():
    c = Conn(HELLO)
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
    try:
        for i in range(40):
            c.send(b"X-Padding-%d: %s\r\n" % (i, b"p" * 500))
        c.send(b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may have closed already
    ok, got = closed_or_status(c, (400, 431))
    check(ok, "20 KiB of headers -> 400/431 and close", got)
    c.close()
    still_serves("oversized headers")


def t_tiny_writes():
    c = Conn(HELLO)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for ch in b"GET /Tiny HTTP/1.1\r\nHost: t\r\n\r\n":
        c.send(bytes([ch]))
        time.sleep(0.01)
    st, _, body = c.response()
    check(st == 200 and body == b"Hello, Tiny!",
          "a request sent one byte at a time is answered", repr(body))
    c.close()


def t_slow_client():
    c = Conn(HELLO)
    t0 = time.monotonic()
    c.send(b"GET /Slow HTTP/1.1\r\nHo")
    ok, got = closed_or_status(c, (408,))
    took = time.monotonic() - t0
    check(ok and 0.8 < took < 4, "half a request -> 408 and close after "
          "the 1 s request timeout", "%s after %.2f s" % (got, took))
    c.close()


def t_idle():
    c = Conn(HELLO)
    t0 = time.monotonic()
    eof = c.at_eof(6)
    took = time.monotonic() - t0
    check(eof and 1.8 < took < 5, "an idle connection is closed after the "
          "2 s idle timeout", "eof=%s after %.2f s" % (eof, took))
    c.close()


# --- echo ------------------------------------------------------------------

def t_echo():
    c = Conn(ECHO)
    c.send(b"hello\nworld\n")
    got = c.read_exact(12)
    check(got == b"hello\nworld\n", "echo returns two lines", repr(got))
    c.send(b"spl")
    time.sleep(0.05)
    c.send(b"it line\n")
    got = c.read_exact(11)
    check(got == b"split line\n", "echo joins a line sent in two parts",
          repr(got))
    c.send(b"x" * 3000 + b"\n")
    got = c.read_exact(3001)
    check(got == b"x" * 3000 + b"\n", "echo returns a 3000-byte line")
    c.send(b"no newline")
    c.s.shutdown(socket.SHUT_WR)
    got = c.read_exact(10)
    check(got == b"no newline" and c.at_eof(2),
          "echo returns a last line without newline, then closes", repr(got))
    c.close()

    conns = [Conn(ECHO) for _ in range(20)]
    for i, c in enumerate(conns):
        c.send(b"client %d\n" % i)
    got = [c.read_exact(len(b"client %d\n" % i)) for i, c in enumerate(conns)]
    check(got == [b"client %d\n" % i for i in range(20)],
          "echo serves 20 clients at once")
    for c in conns:
        c.close()


def t_echo_idle():
    c = Conn(ECHO)
    t0 = time.monotonic()
    eof = c.at_eof(5)
    took = time.monotonic() - t0
    check(eof and 0.8 < took < 4, "echo closes a client silent for the 1 s "
          "idle timeout", "eof=%s after %.2f s" % (eof, took))
    c.close()


# --- stopping --------------------------------------------------------------

def t_stop():
    idle = [Conn(HELLO) for _ in range(20)] + [Conn(ECHO) for _ in range(5)]
    busy = Conn(HELLO)
    busy.send(b"GET /x HTTP/1.1\r\nHost")  # a request half sent
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(HELLO_PID, signal.SIGTERM)
    os.kill(ECHO_PID, signal.SIGTERM)
    closed = sum(1 for c in idle + [busy] if c.at_eof(3))
    took = time.monotonic() - t0
    check(closed == len(idle) + 1 and took < 2.5,
          "SIGTERM closes every connection promptly",
          "%d of %d closed in %.2f s" % (closed, len(idle) + 1, took))
    for c in idle + [busy]:
        c.close()


if MODE == "tests":
    for name, fn in [("routes", t_routes), ("errors", t_errors),
                     ("pipelined", t_pipelined), ("keep-alive", t_keepalive),
                     ("garbage", t_garbage), ("oversized", t_oversized),
                     ("tiny writes", t_tiny_writes),
                     ("slow client", t_slow_client), ("idle", t_idle),
                     ("echo", t_echo), ("echo idle", t_echo_idle)]:
        safe(name, fn)
else:
    safe("stop", t_stop)
sys.exit(min(failures, 100))
EOF
client() {
	python3 "$tmp/client.py" "$1" "$hello_port" "$echo_port" "$hello_pid" \
		"$echo_pid"
	failures=$((failures + $?))
}

start http_hello -r 1 -i 2 0 2 || exit 1
hello_pid=$pid hello_port=$port
start echo -i 1 0 2 || exit 1
echo_pid=$pid echo_port=$port
echo "# http_hello (pid $hello_pid) on port $hello_port," \
	"echo (pid $echo_pid) on port $echo_port"

client tests

# Many concurrent clients, with the example client (libcurl through
# coev/curl.h): 300 requests, at most 50 at a time by a semaphore.
if "$B/examples/fetch_many" -n 300 -k 50 "$hello_port" >"$tmp/fetch.log" 2>&1; then
	pass "fetch_many: 300 requests, 50 at a time, all answered"
else
	fail "fetch_many against http_hello:"
	sed 's/^/    /' "$tmp/fetch.log"
fi
peak=$(sed -n 's/^  peak in flight: \([0-9]*\) (limit 50)$/\1/p' "$tmp/fetch.log")
if [ -n "$peak" ] && [ "$peak" -ge 1 ] && [ "$peak" -le 50 ]; then
	pass "fetch_many: peak $peak in flight, never more than 50"
else
	fail "fetch_many: peak in flight '$peak', expected 1..50"
fi
if grep -q -E '^  fetched: 28 x "Hello, Anonymous!", 28 x "Hello, Ada!"' \
	"$tmp/fetch.log"; then
	pass "fetch_many: prints the greetings it fetched"
else
	fail "fetch_many: no 'fetched:' line with 28 of each of the first two"
fi
if grep -q -E 'Sanitizer|runtime error:' "$tmp/fetch.log"; then
	fail "fetch_many: sanitizer report"
	sed 's/^/    /' "$tmp/fetch.log"
fi
# GET /metrics after those requests: the Prometheus text, scraped over
# HTTP and parsed by the reference parser (Debian's
# python3-prometheus-client, hence /usr/bin/python3), with sane values.
cat >"$tmp/scrape.py" <<'PY'
import sys
import urllib.request
from prometheus_client.parser import text_string_to_metric_families

port, workers = sys.argv[1], int(sys.argv[2])
base = f"http://127.0.0.1:{port}"


def scrape():
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        ctype = r.headers["Content-Type"]
        text = r.read().decode("utf-8")
    want = "text/plain; version=0.0.4; charset=utf-8"
    assert ctype == want, f"Content-Type {ctype!r}, not {want!r}"
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for f in fams.values():
        assert f.type in ("counter", "gauge"), f"{f.name}: type {f.type}"
    return fams


def per_worker(fams, name):
    f = fams.get(name)
    assert f, f"no family {name}"
    got = sorted(s.labels.get("worker") for s in f.samples)
    assert got == [str(i) for i in range(workers)], f"{name}: workers {got}"
    return sum(s.value for s in f.samples)


# Counters lose their _total in the parser's family names.
before = scrape()
spawned = per_worker(before, "coev_tasks_spawned")
polls = per_worker(before, "coev_polls")
assert spawned > 0, f"{spawned} tasks spawned"
assert polls >= spawned, f"{polls} polls < {spawned} spawned"
assert per_worker(before, "coev_busy_seconds") > 0, "no busy time"
nw = before["coev_workers"].samples[0].value
assert nw == workers, f"coev_workers {nw}"
# urllib closes each connection: 10 greetings are 10 more connection
# tasks (11 with the second scrape's).
for _ in range(10):
    with urllib.request.urlopen(base + "/", timeout=10) as r:
        assert r.read() == b"Hello, Anonymous!"
more = per_worker(scrape(), "coev_tasks_spawned") - spawned
assert more >= 11, f"{more:.0f} tasks spawned for 11 connections"
print(f"{len(before)} families, {spawned:.0f} tasks spawned, then {more:.0f}"
      " more for 11 connections")
PY
if /usr/bin/python3 "$tmp/scrape.py" "$hello_port" 2 >"$tmp/scrape.log" 2>&1; then
	pass "GET /metrics: the Prometheus text parses, one sample per" \
		"worker, the tasks counted ($(cat "$tmp/scrape.log"))"
else
	fail "GET /metrics:"
	sed 's/^/    /' "$tmp/scrape.log"
fi

# Nobody listening: every request fails (connection refused), exit 1.
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect "a closed port: each request refused, exit 1" 1 \
	'#0 +GET / +failed after .*: [Cc]onnection refused' \
	fetch_many -n 5 -k 2 "$closed"
also "none answered" '^  0 answered with the right greeting, 5 failed'
expect "no requests at all is refused" 2 'out of range' fetch_many -n 0 "$hello_port"

# Stop both with connections open: the client sends SIGTERM and checks that
# every connection is closed promptly; then the servers' exit statuses.
client stop
stop_check http_hello "$hello_pid"
stop_check echo "$echo_pid"

# ws_echo: the seed's WebSocket server. Its own client (50 connections x 5
# messages, each answered after 0.1 s: about 0.5 s, not 25 s), then Python's
# websockets (/usr/bin/python3) as a client that is not coev; then SIGINT.
if start ws_echo server 0; then
	ws_pid=$pid
	out=$("$B/examples/ws_echo" client "$port" 50 5 2>&1)
	took=$(echo "$out" | sed -n 's/^50 clients x 5 messages in \([0-9.]*\) s.*/\1/p')
	if [ -n "$took" ] && awk -v t="$took" 'BEGIN { exit !(t >= 0.45 && t < 3) }'; then
		pass "ws_echo: 50 clients x 5 messages in $took s (about 5 x 0.1 s)"
	else
		fail "ws_echo client: $out"
	fi
	out=$(/usr/bin/python3 - "$port" 2>&1 <<'PY'
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/" % sys.argv[1]) as ws:
        for m in ("hello", "w\u00f6rld"):
            await ws.send(m)
            got = await ws.recv()
            if got != "Processed: " + m:
                print("got", repr(got))
                return
    print("python ok")
asyncio.run(main())
PY
	)
	if [ "$out" = "python ok" ]; then
		pass "ws_echo answers Python's websockets client"
	else
		fail "ws_echo with Python's websockets: $out"
	fi
	kill -INT "$ws_pid"
	stop_check ws_echo "$ws_pid"
else
	fail "ws_echo did not start"
fi

# --- tls_echo ----------------------------------------------------------------
mkdir "$tmp/tls"
if (cd "$tmp/tls" && exec 2>openssl.log &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -days 1 -subj /CN=coev-example-CA \
		-addext basicConstraints=critical,CA:TRUE &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key.pem -out req.pem -subj /CN=localhost &&
	printf 'subjectAltName=DNS:localhost\n' >ext &&
	openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 1 -extfile ext -out cert.pem); then
	start tls_echo server "$tmp/tls/cert.pem" "$tmp/tls/key.pem" 0 2 || exit 1
	tls_pid=$pid tls_port=$port
	cat >"$tmp/tls_client.py" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("127.0.0.1", port), 10) as raw:
    s = ctx.wrap_socket(raw, server_hostname="localhost",
                        suppress_ragged_eofs=False)
    s.sendall(b"first line\nsecond ")
    s.sendall(b"line\n")
    got = b""
    while got.count(b"\n") < 2:
        d = s.recv(4096)
        assert d, "end of stream before the echo"
        got += d
    assert got == b"first line\nsecond line\n", got
    s.unwrap()  # our close_notify, then the server's
print("ok")
PY
	if /usr/bin/python3 "$tmp/tls_client.py" "$tls_port" "$tmp/tls/ca.pem" \
		>"$tmp/tls_py.log" 2>&1; then
		pass "tls_echo: Python's ssl client gets its lines back, close_notify both ways"
	else
		fail "tls_echo with a Python ssl client:"
		sed 's/^/    /' "$tmp/tls_py.log"
	fi
	if /usr/bin/python3 "$tmp/tls_client.py" "$tls_port" "$tmp/tls/cert.pem" \
		>"$tmp/tls_py.log" 2>&1; then
		fail "tls_echo: a client that does not trust the CA got through"
	else
		pass "tls_echo: a client that does not trust the CA is refused"
	fi
	out=$("$B/examples/tls_echo" client -a "$tmp/tls/ca.pem" localhost \
		"$tls_port" hello "over tls" 2>&1)
	if [ "$out" = "$(printf 'hello\nover tls')" ]; then
		pass "tls_echo client: both lines echoed"
	else
		fail "tls_echo client: got '$out'"
	fi
	out=$("$B/examples/tls_echo" client localhost "$tls_port" hello 2>&1)
	case $out in
	*"peer certificate not trusted"*)
		pass "tls_echo client: without the CA, the certificate is not trusted" ;;
	*) fail "tls_echo client without the CA: got '$out'" ;;
	esac
	kill -TERM "$tls_pid"
	stop_check tls_echo "$tls_pid"
	if grep -q "TLSv1.3 client, SNI localhost" "$tmp/tls_echo.log" &&
		grep -q "handshake: .*unknown ca" "$tmp/tls_echo.log"; then
		pass "tls_echo: logs SNI, and the reason of a refused handshake"
	else
		fail "tls_echo: log lacks the SNI line or the handshake's reason:"
		sed 's/^/    /' "$tmp/tls_echo.log"
	fi
else
	fail "openssl could not make the example's certificates:"
	sed 's/^/    /' "$tmp/tls/openssl.log"
fi

if [ "$failures" = 0 ]; then
	echo "test_examples: all passed"
	exit 0
fi
echo "test_examples: $failures failure(s); server logs:"
for f in "$tmp"/http_hello.log "$tmp"/echo.log "$tmp"/tls_echo.log \
	"$tmp"/ws_echo.log; do
	echo "--- $f"
	cat "$f"
done
exit 1
