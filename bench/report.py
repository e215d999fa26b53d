#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/report.py — turn the raw lines of one bench/run.sh session into
RESULT lines, a table, target verdicts and a gnuplot chart.

    report.py RAW OUT_TXT CHART_DIR PNG [HEADER_FILE]

RAW holds, in run order, the lines the benchmark programs printed
("BENCH <workload> <runtime> workers=<n> key=value ...") and the lines
run.sh wrote for runs that failed ("FAIL <workload> <runtime> workers=<n>
rc=<code> why=<text>"), and with STRACE=1 the system call counts of one
extra run ("STRACE <workload> <runtime> workers=<n> syscalls_per_op=<x>
calls=<n> tasks=<n> top=<call>:<count>,..."). The report goes to stdout and to OUT_TXT (preceded
by HEADER_FILE's text when given, followed by the raw lines); the chart is
drawn by gnuplot into PNG from a script and data files written to CHART_DIR.

With BENCH_SCALE=1 in the environment (run.sh's SCALE=1), the report also
has the scaling curve: the spawn, spawn-wg, yield and fib runs at each
worker count, per runtime, with the speed-up over one worker.
"""
import math
import os
import statistics
import subprocess
import sys

RUNTIMES = ["coev", "go", "tokio"]
PEERS = ["go", "tokio"]
# The servers of the http and c10k workloads (bench/http/), in the order of
# the tables and charts.
HTTP_RUNTIMES = ["coev", "coev-hello", "epoll", "libuv", "go", "tokio",
                 "uvloop", "aiohttp"]
# The workloads of the callback-library bridge, each against its own peer:
# bridge: a foreign thread completing futures vs the plain-C eventfd
# handoff; redis: coev's hiredis client vs redis-benchmark (coev-shared:
# one pipelined connection per worker, shown for reference); resolve: c-ares
# through coev vs plain c-ares on one thread driven by poll().
BRIDGE_RUNTIMES = {"bridge": ["coev", "eventfd"],
                   "redis": ["coev", "coev-shared", "redis-benchmark"],
                   "resolve": ["coev", "ares-blocking"]}
# trace-off: coev's spawn workload against itself: linked with a libcoev
# built with -DCOEV_NO_TRACE (notrace), with the usual one and COEV_TRACE
# unset (off), and with COEV_TRACE set (on).
TRACE_RUNTIMES = {"trace-off": ["notrace", "off", "on"]}
# ws-echo and https (bench/net/): WebSocket echo servers of coev, Go
# (gorilla/websocket) and Python (websockets); hello servers of coev, Go
# and a bare epoll loop calling OpenSSL directly (the floor: OpenSSL's own
# cost) over plain TCP and over TLS ("-tls"), each plain run followed by
# its TLS twin's.
NET_RUNTIMES = {"ws-echo": ["coev", "go", "python"],
                "https": ["coev", "coev-tls", "go", "go-tls", "epoll",
                          "epoll-tls"]}
# Workloads with runtimes of their own, each its own table.
OWN_RUNTIMES = {**BRIDGE_RUNTIMES, **TRACE_RUNTIMES, **NET_RUNTIMES}
WORKLOADS = ["spawn", "spawn-wg", "yield", "fib", "sleepers",
             "sleepers-cancel", "switch", "pingpong",
             "mutex", "pipeline", "trace-off", "bridge", "redis", "resolve",
             "http", "c10k", "ws-echo", "https"]
WORKERS = 2
# Workloads run with one worker thread (the rest use WORKERS).
ONE_WORKER = {"switch", "http", "c10k", "ws-echo", "https"}


def runtimes_of(w):
    if w in OWN_RUNTIMES:
        return OWN_RUNTIMES[w]
    return HTTP_RUNTIMES if w in ("http", "c10k") else RUNTIMES


def workers_of(w, metric):
    return 1 if w in ONE_WORKER or metric == "ns_per_task_1w" else WORKERS


# The kernel's counters per operation (getrusage deltas around the
# measured section, whole process) that the task-lifecycle and hand-off
# workloads print: per task, round trip, lock/unlock pair or message.
KCOUNT_WORKLOADS = ["spawn", "spawn-wg", "sleepers", "sleepers-cancel",
                    "pingpong", "mutex", "pipeline"]
KCOUNT_METRICS = [("minflt_per_op", "page faults per {}"),
                  ("csw_per_op", "context switches per {}"),
                  ("sys_ns_per_op", "system time ns per {}")]


def kcount_rows(w, op="task"):
    return [(w, m, m, unit.format(op), True) for m, unit in KCOUNT_METRICS]


# (workload, metric, source key, unit shown on the chart, lower is better)
METRICS = [
    ("spawn", "ns_per_task", "ns_per_task", "ns per task", True),
    *kcount_rows("spawn"),
    ("spawn-wg", "ns_per_task", "ns_per_task", "ns per task", True),
    *kcount_rows("spawn-wg"),
    ("yield", "ns_per_yield", "ns_per_yield", "ns per yield", True),
    ("fib", "ns_per_task", "ns_per_task", "ns per task", True),
    ("fib", "speedup", None, "speedup 2 workers / 1", False),
    ("fib", "ns_per_task_1w", "ns_per_task", "ns per task, 1 worker", True),
    ("sleepers", "kib_per_task", "kib_per_task", "KiB RSS per task", True),
    ("sleepers", "wall_s", "wall_s", "wall s", True),
    ("sleepers", "overhead_s", None, "wall s minus the 2 s sleep", True),
    *kcount_rows("sleepers"),
    ("sleepers-cancel", "start_s", "start_s", "s to put all to sleep", True),
    ("sleepers-cancel", "cancel_s", "cancel_s", "s to cancel and free all",
     True),
    ("sleepers-cancel", "kib_per_task", "kib_per_task", "KiB RSS per task",
     True),
    *kcount_rows("sleepers-cancel"),
    ("switch", "ns_per_switch", "ns_per_switch", "ns per switch", True),
    ("pingpong", "ns_per_roundtrip", "ns_per_roundtrip", "ns per round trip",
     True),
    *kcount_rows("pingpong", "round trip"),
    ("mutex", "ns_per_pair", "ns_per_pair", "ns per lock/unlock pair", True),
    *kcount_rows("mutex", "pair"),
    ("pipeline", "msgs_per_s", "msgs_per_s", "messages/s through 3 stages",
     False),
    *kcount_rows("pipeline", "message"),
    ("trace-off", "ns_per_task", "ns_per_task", "ns per task (spawn)", True),
    ("bridge", "completions_per_s", "completions_per_s",
     "completions/s", False),
    ("bridge", "p99_us", "p99_us", "p99 us, completion to resume", True),
    ("bridge", "syscalls_per_completion", "syscalls_per_completion",
     "syscalls per completion", True),
    ("redis", "ops_per_s", "ops_per_s", "redis commands/s", False),
    ("resolve", "names_per_s", "names_per_s", "names resolved/s", False),
    ("resolve", "p99_us", "p99_us", "p99 us per lookup", True),
    ("http", "req_per_s", "req_per_s", "requests/s", False),
    ("http", "p99_ms", "p99_ms", "p99 latency ms", True),
    ("http", "cpu_us_per_req", "cpu_us_per_req", "server CPU us per request",
     True),
    ("http", "user_us_per_req", "user_us_per_req",
     "server user CPU us per request", True),
    ("c10k", "kib_per_conn", "kib_per_conn", "KiB RSS per idle connection",
     True),
    ("c10k", "req_per_s", "req_per_s", "requests/s, 10k idle held", False),
    ("ws-echo", "msgs_per_s", "msgs_per_s", "messages/s echoed", False),
    ("ws-echo", "cpu_us_per_msg", "cpu_us_per_msg",
     "server CPU us per message", True),
    ("ws-echo", "user_us_per_msg", "user_us_per_msg",
     "server user CPU us per message", True),
    ("ws-echo", "syscalls_per_msg", "syscalls_per_msg",
     "server system calls per message", True),
    ("ws-echo", "csw_per_msg", "csw_per_msg",
     "server context switches per message", True),
    ("ws-echo", "minflt_per_msg", "minflt_per_msg",
     "server page faults per message", True),
    ("ws-echo", "p99_us", "p99_us", "p99 round trip us", True),
    ("ws-echo", "client_cpu_pct", "client_cpu_pct",
     "load client CPU, % of one CPU", True),
    ("https", "req_per_s", "req_per_s", "requests/s", False),
    ("https", "user_us_per_req", "user_us_per_req",
     "server user CPU us per request", True),
    ("https", "cpu_us_per_req", "cpu_us_per_req",
     "server CPU us per request", True),
    ("https", "syscalls_per_req", "syscalls_per_req",
     "server system calls per request", True),
    ("https", "csw_per_req", "csw_per_req",
     "server context switches per request", True),
    ("https", "minflt_per_req", "minflt_per_req",
     "server page faults per request", True),
    # What TLS adds: the -tls twin's value minus the plain server's, run
    # by run (computed by collect; shown in the plain server's column).
    ("https", "tls_user_us_per_req", None,
     "user CPU us per request that TLS adds", True),
    ("https", "tls_cpu_us_per_req", None,
     "CPU us per request that TLS adds", True),
]
# The derived TLS metrics of https: metric -> the key they difference.
TLS_EXTRA = {"tls_user_us_per_req": "user_us_per_req",
             "tls_cpu_us_per_req": "cpu_us_per_req"}
CHART_SKIP = {("fib", "ns_per_task_1w"), ("ws-echo", "client_cpu_pct"),
              ("ws-echo", "p99_us"), ("https", "cpu_us_per_req"),
              ("https", "tls_cpu_us_per_req"), ("ws-echo", "csw_per_msg"),
              ("ws-echo", "minflt_per_msg"), ("https", "syscalls_per_req"),
              ("https", "csw_per_req"), ("https", "minflt_per_req")} | {
    (w, m) for w in KCOUNT_WORKLOADS for m, _ in KCOUNT_METRICS}
LOWER_IS_BETTER = {(w, m): lower for w, m, _, _, lower in METRICS}

COLORS = {"coev": 0xD95F02, "go": 0x1B9E77, "tokio": 0x7570B3,
          "coev-hello": 0xF4A261, "epoll": 0x666666, "libuv": 0x999999,
          "uvloop": 0x377EB8, "aiohttp": 0xA6CEE3, "eventfd": 0x666666,
          "redis-benchmark": 0xE7298A, "coev-shared": 0xF4A261, "ares-blocking": 0x999999,
          "notrace": 0x999999, "off": 0xD95F02, "on": 0xF4A261,
          "python": 0x377EB8, "coev-tls": 0xF4A261, "go-tls": 0x66C2A5,
          "epoll-tls": 0xBBBBBB}


def parse(raw_path):
    """{(workload, runtime, workers): [dict per successful run, in order]},
    {(workload, runtime, workers): [failure text, ...]}"""
    ok, failed = {}, {}
    with open(raw_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or parts[0] not in ("BENCH", "FAIL"):
                continue
            kv = {}
            for p in parts[3:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    kv[k] = v
            try:
                workers = int(kv.get("workers", "0"))
            except ValueError:
                workers = 0
            key = (parts[1], parts[2], workers)
            if parts[0] == "BENCH":
                ok.setdefault(key, []).append(kv)
            else:
                why = line.split("why=", 1)[1].strip() if "why=" in line else ""
                failed.setdefault(key, []).append(
                    "rc=%s %s" % (kv.get("rc", "?"), why))
    return ok, failed


def num(kv, key):
    try:
        v = float(kv[key])
    except (KeyError, ValueError):
        return None
    return v if math.isfinite(v) else None


class Stat:
    def __init__(self, values, reasons):
        self.values = values
        self.reasons = reasons
        self.failed = len(reasons)
        if values:
            self.median = statistics.median(values)
            self.min = min(values)
            self.max = max(values)

    @property
    def ok(self):
        return bool(self.values)


def collect(ok, failed):
    """{(workload, metric, runtime): Stat} for every series with any run."""
    stats = {}
    for w, metric, src, _, _ in METRICS:
        for rt in runtimes_of(w):
            workers = workers_of(w, metric)
            if metric == "speedup":
                runs2 = ok.get((w, rt, WORKERS), [])
                runs1 = ok.get((w, rt, 1), [])
                # Pair the k-th 1-worker run with the k-th 2-worker run
                # (run.sh runs them back to back).
                vals = []
                for a, b in zip(runs1, runs2):
                    t1, t2 = num(a, "ns_per_task"), num(b, "ns_per_task")
                    if t1 and t2:
                        vals.append(t1 / t2)
                f2 = failed.get((w, rt, WORKERS), [])
                f1 = failed.get((w, rt, 1), [])
                reasons = f2 if len(f2) >= len(f1) else f1
                if vals or reasons:
                    stats[(w, metric, rt)] = Stat(vals, reasons)
                continue
            if metric in TLS_EXTRA:
                # TLS's share: each run of the -tls twin against the plain
                # run right before it (run.sh runs them back to back).
                twin = rt + "-tls"
                if twin not in runtimes_of(w):
                    continue
                src2 = TLS_EXTRA[metric]
                vals = []
                for a, b in zip(ok.get((w, rt, workers), []),
                                ok.get((w, twin, workers), [])):
                    p, t = num(a, src2), num(b, src2)
                    if p is not None and t is not None:
                        vals.append(t - p)
                fp = failed.get((w, rt, workers), [])
                ft = failed.get((w, twin, workers), [])
                reasons = ft if len(ft) >= len(fp) else fp
                if vals or reasons:
                    stats[(w, metric, rt)] = Stat(vals, reasons)
                continue
            if metric == "overhead_s":
                # What the runtime adds to the sleep: wall time minus
                # the 2 s every sleeper sleeps.
                runs = ok.get((w, rt, workers), [])
                vals = [num(r, "wall_s") - SLEEP_S for r in runs
                        if num(r, "wall_s")]
                reasons = failed.get((w, rt, workers), [])
                if vals or reasons:
                    stats[(w, metric, rt)] = Stat(vals, reasons)
                continue
            if w in BRIDGE_RUNTIMES:
                # A peer such as redis-benchmark may say how many threads
                # it used in its workers key: every line of the runtime
                # counts, whatever it says.
                runs = [r for k in sorted(ok) if k[:2] == (w, rt)
                        for r in ok[k]]
                fails = [r for k in sorted(failed) if k[:2] == (w, rt)
                         for r in failed[k]]
            else:
                runs = ok.get((w, rt, workers), [])
                fails = failed.get((w, rt, workers), [])
            vals = [v for v in (num(r, src) for r in runs) if v is not None]
            reasons = fails + \
                ["no %s in output" % src] * (len(runs) - len(vals))
            if vals or reasons:
                stats[(w, metric, rt)] = Stat(vals, reasons)
                stats[(w, metric, rt)].tasks = {r.get("tasks") for r in runs}
    return stats


def fmt(v):
    if v is None:
        return "NA"
    a = abs(v)
    if a >= 100:
        return "%.1f" % v
    if a >= 10:
        return "%.2f" % v
    return "%.3f" % v


def result_lines(stats):
    out = []
    for w, metric, _, _, _ in METRICS:
        for rt in runtimes_of(w):
            s = stats.get((w, metric, rt))
            if s is None:
                continue
            if s.ok:
                line = "RESULT %s %s %s=%s min=%s max=%s runs=%d" % (
                    w, rt, metric, fmt(s.median), fmt(s.min), fmt(s.max),
                    len(s.values))
            else:
                line = "RESULT %s %s %s=NA runs=0" % (w, rt, metric)
            if s.failed:
                line += " failed=%d" % s.failed
            out.append(line)
    return out


def table(stats, runtimes, workloads):
    """One table: a row per metric of workloads, a column per runtime."""
    rows = [("workload", "metric") + tuple(runtimes)]
    for w, metric, _, _, _ in METRICS:
        if w not in workloads:
            continue
        cells = []
        for rt in runtimes:
            s = stats.get((w, metric, rt))
            if s is None:
                cells.append("-")
            elif not s.ok:
                if all("not built" in r for r in s.reasons):
                    cells.append("NOT BUILT")
                else:
                    cells.append("FAILED x%d" % s.failed)
            else:
                c = "%s [%s..%s]" % (fmt(s.median), fmt(s.min), fmt(s.max))
                if s.failed:
                    c += " +%d failed" % s.failed
                cells.append(c)
        if all(c == "-" for c in cells):
            continue
        rows.append((w, metric) + tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j])
                     for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    return lines


def tables(stats, workloads):
    """The benchmark's tables: one for the task workloads (coev, Go,
    tokio), one per bridge workload (coev and its peers) and for
    trace-off, and one for the HTTP servers."""
    lines = []
    groups = [([w for w in workloads if w not in ("http", "c10k")
                and w not in OWN_RUNTIMES], RUNTIMES)]
    groups += [([w], OWN_RUNTIMES[w]) for w in workloads
               if w in OWN_RUNTIMES]
    groups += [([w for w in workloads if w in ("http", "c10k")],
                HTTP_RUNTIMES)]
    for ws, rts in groups:
        if not ws:
            continue
        # Leave out the columns of servers that were not run at all.
        rts = [rt for rt in rts
               if any(k[0] in ws and k[2] == rt for k in stats)]
        if lines:
            lines.append("")
        lines += table(stats, rts, ws)
    lines.append("cells: median [min..max] over the runs; workers=2 "
                 "unless the metric says otherwise; http and c10k: one "
                 "server thread; redis-benchmark and ares-blocking: one "
                 "thread; ws-echo and https: one server thread; "
                 "https's tls_* rows: the -tls server's value minus the "
                 "plain one's, run by run")
    return lines


SLEEP_S = 2.0  # each sleeper of the sleepers workload sleeps 2 s

# Targets from the issues: (workload, metric, kind, limit, op, peers).
# ratio: coev / the best of peers (by median) op limit; abs: coev's own
# median op limit (the best peer is shown for reference).
TARGETS = [
    ("spawn", "ns_per_task", "ratio", 1 / 3, "<=", PEERS),
    ("spawn-wg", "ns_per_task", "ratio", 1 / 3, "<=", PEERS),
    # Issue 15: system time per task no higher than Go's.
    ("spawn", "sys_ns_per_op", "ratio", 1.0, "<=", ["go"]),
    ("spawn-wg", "sys_ns_per_op", "ratio", 1.0, "<=", ["go"]),
    ("yield", "ns_per_yield", "ratio", 1 / 2, "<=", PEERS),
    ("fib", "ns_per_task", "ratio", 1 / 2, "<=", PEERS),
    ("fib", "speedup", "abs", 1.8, ">=", PEERS),
    # Issue 15: at the page floor (one resident page of stack per task).
    ("sleepers", "kib_per_task", "abs", 4.4, "<=", PEERS),
    ("sleepers", "overhead_s", "ratio", 1 / 2, "<=", PEERS),
    # Issue 15: 1M sleepers started in <= 2 s, cancelled and freed in <= 2 s
    # (with SLEEPERS at its default of 1,000,000).
    ("sleepers-cancel", "start_s", "abs", 2.0, "<=", PEERS),
    ("sleepers-cancel", "cancel_s", "abs", 2.0, "<=", PEERS),
    ("switch", "ns_per_switch", "abs", 10.0, "<", PEERS),
    ("pingpong", "ns_per_roundtrip", "ratio", 1 / 3, "<=", PEERS),
    ("mutex", "ns_per_pair", "ratio", 1 / 2, "<=", PEERS),
    ("pipeline", "msgs_per_s", "ratio", 2.0, ">=", PEERS),
    ("pipeline", "msgs_per_s", "abs", 1e7, ">=", PEERS),
    # future.h rule 6: at most one system call per completion (a doorbell
    # when the waiter's worker sleeps). The count covers the whole process,
    # the request queue's futex calls included, so it is an upper bound.
    ("bridge", "syscalls_per_completion", "abs", 1.0, "<=", ["eventfd"]),
    ("redis", "ops_per_s", "ratio", 0.9, ">=", ["redis-benchmark"]),
    ("http", "req_per_s", "ratio", 0.95, ">=", ["epoll"]),
    ("http", "user_us_per_req", "ratio", 1.5, "<=", ["epoll"]),
    ("http", "user_us_per_req", "ratio", 1.0, "<", ["go"]),
    ("http", "user_us_per_req", "ratio", 1.0, "<", ["tokio"]),
    ("c10k", "kib_per_conn", "abs", 8.0, "<=", ["epoll", "go", "tokio"]),
    # Issue 19: WebSocket echo at least as fast as Go's gorilla/websocket,
    # and TLS costing coev no more user time per request than it costs Go.
    ("ws-echo", "msgs_per_s", "ratio", 1.0, ">=", ["go"]),
    ("https", "tls_user_us_per_req", "ratio", 1.0, "<=", ["go"]),
    # Tracing compiled in but off costs nothing measurable: see noise().
    ("trace-off", "ns_per_task", "noise", None, None, ["notrace"]),
]


# Targets that hold for one size of the workload only (SLEEPERS can change
# it): workload -> the task count they are stated for.
TARGET_TASKS = {"sleepers-cancel": 1000000}


def holds(v, op, limit):
    return {"<=": v <= limit, "<": v < limit, ">=": v >= limit,
            ">": v > limit}[op]


def faster_peer(stats, w, metric, peers=PEERS):
    """The peer with the best median (lowest, or highest for metrics where
    higher is better), or None."""
    lower = LOWER_IS_BETTER.get((w, metric), True)
    best = None
    for p in peers:
        s = stats.get((w, metric, p))
        if s is None or not s.ok:
            continue
        b = stats[(w, metric, best)].median if best else None
        if b is None or (s.median < b if lower else s.median > b):
            best = p
    return best


def spread(s):
    """A series' run-to-run spread: (max - min) / median."""
    return (s.max - s.min) / s.median if s.median else float("inf")


def noise(stats, w, metric, rt, base):
    """Whether rt's median is within the run-to-run noise of base's: the
    ratio's distance from 1 is no more than the larger of the two relative
    spreads (a difference smaller than the runs' own scatter cannot be told
    from it). Returns the TARGET line and the verdict's explanation."""
    a, b = stats.get((w, metric, rt)), stats.get((w, metric, base))
    goal = "%s/%s within noise" % (rt, base)
    if a is None or b is None or not a.ok or not b.ok:
        missing = " and ".join(x for x, st in ((rt, a), (base, b))
                               if st is None or not st.ok)
        return ("TARGET %-8s %-16s %-26s %s has no result  -> UNKNOWN"
                % (w, metric, goal, missing), "")
    r = a.median / b.median
    sa, sb = spread(a), spread(b)
    wide, who = (sa, rt) if sa >= sb else (sb, base)
    if abs(r - 1) <= wide:
        verdict = "MET (within noise)"
        why = ("|%s - 1| = %.1f%% is no more than the larger run-to-run "
               "spread, %.1f%% (%s's): within noise"
               % (fmt(r), 100 * abs(r - 1), 100 * wide, who))
    else:
        verdict = "MISSED (%s beyond noise)" % (
            "slower" if r > 1 else "faster")
        why = ("|%s - 1| = %.1f%% is more than the larger run-to-run "
               "spread, %.1f%% (%s's): %s beyond noise"
               % (fmt(r), 100 * abs(r - 1), 100 * wide, who,
                  "slower" if r > 1 else "faster"))
    line = ("TARGET %-8s %-16s %-26s ratio=%s (%s %s, spread %.1f%%; %s "
            "%s, spread %.1f%%)  -> %s" % (
                w, metric, goal, fmt(r), rt, fmt(a.median), 100 * sa, base,
                fmt(b.median), 100 * sb, verdict))
    return line, why


def trace_off_lines(stats):
    """The trace-off section: each variant's median, min..max and spread,
    the off/notrace verdict, and what tracing costs when on."""
    w, m = "trace-off", "ns_per_task"
    what = {"notrace": "libcoev built with -DCOEV_NO_TRACE: tracing "
                       "compiled out",
            "off": "build/libcoev.a, COEV_TRACE unset: compiled in, off",
            "on": "build/libcoev.a, COEV_TRACE set: recording"}
    base = stats.get((w, m, "notrace"))
    lines = []
    for rt in TRACE_RUNTIMES[w]:
        s = stats.get((w, m, rt))
        if s is None or not s.ok:
            lines.append("%-8s %s=NA (no successful run)  (%s)"
                         % (rt, m, what[rt]))
            continue
        ratio = ""
        if rt != "notrace" and base is not None and base.ok:
            ratio = "; %s/notrace=%s" % (rt, fmt(s.median / base.median))
        lines.append("%-8s %s=%s min..max=%s..%s spread=%.1f%% runs=%d%s"
                     "  (%s)" % (rt, m, fmt(s.median), fmt(s.min),
                                 fmt(s.max), 100 * spread(s), len(s.values),
                                 ratio, what[rt]))
    # The rounds run notrace, off and on back to back, so the k-th runs
    # of each met the same machine: their ratios, for reference (a failed
    # run shifts the pairing after it).
    off = stats.get((w, m, "off"))
    if base is not None and base.ok and off is not None and off.ok:
        pairs = [a / b for a, b in zip(off.values, base.values)]
        lines.append("off/notrace round by round (for reference): median "
                     "%s, min..max %s..%s over %d rounds" % (
                         fmt(statistics.median(pairs)), fmt(min(pairs)),
                         fmt(max(pairs)), len(pairs)))
    line, why = noise(stats, w, m, "off", "notrace")
    lines.append("verdict: " + (why or line))
    lines.append("(spread: (max - min) / median over the runs; within "
                 "noise: |off/notrace - 1| <= the larger spread)")
    return lines


def target_lines(stats, workloads):
    """Lines of the verdict section, and {(w, metric): target value on the
    chart's scale} for the dashed target lines."""
    lines, marks = [], {}
    for w, metric, kind, limit, op, peers in TARGETS:
        if w not in workloads:
            continue
        if kind == "noise":
            lines.append(noise(stats, w, metric, "off", peers[0])[0])
            continue
        c = stats.get((w, metric, "coev"))
        peer = faster_peer(stats, w, metric, peers)
        if c is None:
            lines.append("TARGET %-8s %-16s coev was not run  -> N/A"
                         % (w, metric))
            continue
        ps = stats.get((w, metric, peer)) if peer else None
        want = TARGET_TASKS.get(w)
        if want and c.ok and getattr(c, "tasks", set()) != {str(want)}:
            lines.append("TARGET %-8s %-16s stated for tasks=%d, run with "
                         "tasks=%s  -> N/A" % (
                             w, metric, want,
                             ",".join(sorted(t for t in c.tasks if t))))
            continue
        if kind == "ratio":
            goal = "coev/%s %s %s" % (peer or "/".join(peers), op,
                                      fmt(limit))
            if c is None or not c.ok:
                lines.append("TARGET %-8s %-16s %-26s coev has no result"
                             "  -> MISSED" % (w, metric, goal))
                continue
            if ps is None:
                lines.append("TARGET %-8s %-16s %-26s no peer result"
                             "  -> UNKNOWN" % (w, metric, goal))
                continue
            r = c.median / ps.median
            # The pairings of runs that give the lowest and the highest
            # ratio; the worst of them for coev decides "not in every run".
            lo, hi = c.min / ps.max, c.max / ps.min
            worst = lo if op in (">=", ">") else hi
            verdict = "MET" if holds(r, op, limit) else "MISSED"
            if verdict == "MET" and not holds(worst, op, limit):
                verdict += " (not in every run)"
            lines.append(
                "TARGET %-8s %-16s %-26s ratio=%s (coev %s vs %s %s; "
                "range %s..%s)  -> %s" % (
                    w, metric, goal, fmt(r), fmt(c.median), peer,
                    fmt(ps.median), fmt(lo), fmt(hi), verdict))
            # The chart has one dashed line per panel: the first target.
            marks.setdefault((w, metric), ps.median * limit)
        else:
            goal = "coev %s %s" % (op, fmt(limit))
            marks.setdefault((w, metric), limit)
            if c is None or not c.ok:
                lines.append("TARGET %-8s %-16s %-26s coev has no result"
                             "  -> MISSED" % (w, metric, goal))
                continue
            verdict = "MET" if holds(c.median, op, limit) else "MISSED"
            lo_better = op in ("<=", "<")
            worst = c.max if lo_better else c.min
            if verdict == "MET" and not holds(worst, op, limit):
                verdict += " (not in every run)"
            extra = ""
            if ps is not None:
                extra = "; %s %s, coev/%s=%s" % (
                    peer, fmt(ps.median), peer, fmt(c.median / ps.median))
            lines.append(
                "TARGET %-8s %-16s %-26s value=%s (range %s..%s%s)  -> %s"
                % (w, metric, goal, fmt(c.median), fmt(c.min), fmt(c.max),
                   extra, verdict))
    return lines, marks


def chart(stats, marks, workloads, chart_dir, png):
    panels = [(w, m, unit, lower) for w, m, _, unit, lower in METRICS
              if w in workloads and (w, m) not in CHART_SKIP
              and any((w, m, rt) in stats for rt in runtimes_of(w))]
    if not panels:
        return "no data to chart"
    os.makedirs(chart_dir, exist_ok=True)
    # The bars of a panel: the runtimes that ran its workload.
    bars = {}
    for w, m, _, _ in panels:
        bars[(w, m)] = [rt for rt in runtimes_of(w)
                        if any(k[0] == w and k[2] == rt for k in stats)]
    widest = max(len(b) for b in bars.values())
    pw = max(420, 70 * widest + 120)
    ncols = min(4, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    gp = [
        "set terminal pngcairo size %d,%d font 'Sans,10'" % (
            pw * ncols, 380 * nrows),
        "set output '%s'" % png,
        "set multiplot layout %d,%d title 'coev and its peers "
        "(task workloads: 2 workers; http, c10k, ws-echo, https: one "
        "server thread; "
        "bar = median, whisker = min..max; dashed = target)' "
        "font 'Sans,13'" % (nrows, ncols),
        "set style fill solid 0.85 border lc rgb '#333333'",
        "set boxwidth 0.6",
        "set grid ytics lc rgb '#dddddd'",
        "set border 3",
        "set tics nomirror",
        "unset key",
    ]
    for k, (w, m, unit, lower) in enumerate(panels):
        rts = bars[(w, m)]
        # At least three slots, so that a lone bar keeps its width.
        n = max(len(rts), 3)
        dat = os.path.join(chart_dir, "panel%d.dat" % k)
        done = [(i, rt, stats[(w, m, rt)]) for i, rt in enumerate(rts)
                if (w, m, rt) in stats and stats[(w, m, rt)].ok]
        highs = sorted((st.max for _, _, st in done), reverse=True)
        mark = marks.get((w, m))
        # One bar far above the rest (aiohttp's CPU time) would flatten
        # them all: the axis then stops at 2.5 times the next highest, and
        # the tall bar is cut off with its value written at the top.
        clip = None
        if len(highs) > 1 and highs[0] > 6 * highs[1]:
            clip = max(2.5 * highs[1], mark or 0)
        top = max(highs[0] if highs and clip is None else clip or 0,
                  mark or 0)
        top = top * 1.22 if top > 0 else 1
        with open(dat, "w") as f:
            for i, rt, st in done:
                # Column 7: where the value label goes (inside the axis,
                # below the target's legend); column 8: 1 for a cut bar.
                cut = clip is not None and st.max > top
                f.write("%d %s %.6g %.6g %.6g %d %.6g %d\n" % (
                    i, rt, st.median, st.min, st.max, COLORS[rt],
                    top * 0.7 if cut else st.max, cut))
        gp.append("set xrange [-0.6:%g]" % (n - 0.4))
        gp.append("set xtics (%s)%s" % (
            ", ".join("'%s' %d" % (rt, i) for i, rt in enumerate(rts)),
            " rotate by -30" if n > 4 else ""))
        gp.append("unset label")
        gp.append("unset arrow")
        for i, rt in enumerate(rts):
            s = stats.get((w, m, rt))
            if s is not None and not s.ok:
                built = not all("not built" in r for r in s.reasons)
                gp.append("set label '%s' at %d,%g center tc rgb "
                          "'red'" % ("FAILED" if built else "not built", i,
                                     top * 0.06))
        if w == "switch":
            gp.append("set label 'no equivalent in Go or tokio' at "
                      "graph 0.5, graph 0.6 center tc rgb '#888888'")
        if mark is not None:
            gp.append("set arrow from -0.6,%g to %g,%g nohead dt 2 lw 1.5 "
                      "lc rgb 'red' front" % (mark, n - 0.4, mark))
            gp.append("set label 'dashed: target %s' at graph 0.98, "
                      "graph 0.97 right tc rgb 'red' font 'Sans,9' front"
                      % ("%.0f" % mark if mark >= 10000 else "%.4g" % mark))
        gp.append("set yrange [0:%g]" % top)
        gp.append("set title '%s: %s (%s is better)'" % (
            w, unit, "lower" if lower else "higher"))
        if os.path.getsize(dat) == 0:
            # Nothing to draw but the labels: plot an invisible point.
            gp.append("plot 1/0 notitle")
            continue
        gp.append(
            "plot '%s' using 1:3:6 with boxes lc rgb variable, "
            "'' using 1:3:4:5 with yerrorbars lc rgb '#222222' pt 7 ps 0.3 "
            "lw 1.3, "
            "'' using 1:7:($8 > 0 ? sprintf('%%.4g (cut)', $3) : "
            "$3 >= 10000 ? sprintf('%%.0f', $3) : "
            "sprintf('%%.4g', $3)) with labels offset 0,0.8 "
            "font 'Sans,9'" % dat)
    gp.append("unset multiplot")
    script = os.path.join(chart_dir, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    try:
        r = subprocess.run(["gnuplot", script], capture_output=True,
                           text=True)
    except OSError as e:
        return "gnuplot: %s" % e
    if r.returncode != 0:
        return "gnuplot failed (%d): %s" % (r.returncode, r.stderr.strip())
    return "chart: %s" % png


# A run during which other processes used this share of the machine's CPU
# time or more is flagged: they competed with the server and wrk (or with
# the bridge workload's threads, or the trace-off workload's workers).
OTHER_CPU_FLAG = 10
# The workloads whose lines carry other_cpu_pct and the keys below.
NOTED = ("http", "c10k", "bridge", "trace-off", "ws-echo", "https")
# A ws-echo load client that used this share of its CPU or more may have
# been the limit instead of the server.
CLIENT_CPU_FLAG = 90


# The scaling curve (BENCH_SCALE=1): workload -> the metric of its runs.
SCALE_METRICS = {"spawn": "ns_per_task", "spawn-wg": "ns_per_task",
                 "yield": "ns_per_yield", "fib": "ns_per_task"}


def scale_lines(ok, workloads):
    """The scaling curve: for each workload, a row per runtime with the
    median of its metric at each worker count and, in brackets, the
    speed-up over the same runtime on one worker (median at 1 / median at
    n: for these fixed amounts of work, how much faster the whole job
    got)."""
    lines = []
    for w in workloads:
        m = SCALE_METRICS.get(w)
        if m is None:
            continue
        counts = sorted({k[2] for k in ok if k[0] == w})
        if not counts:
            continue
        rows = [("runtime",) + tuple("%d worker%s" % (n, "" if n == 1
                                                       else "s")
                                     for n in counts)]
        for rt in RUNTIMES:
            meds = {}
            for n in counts:
                vals = [v for v in (num(r, m) for r in ok.get((w, rt, n), []))
                        if v is not None]
                if vals:
                    meds[n] = statistics.median(vals)
            if not meds:
                continue
            base = meds.get(1)
            cells = []
            for n in counts:
                if n not in meds:
                    cells.append("-")
                elif base:
                    cells.append("%s (x%.2f)" % (fmt(meds[n]),
                                                 base / meds[n]))
                else:
                    cells.append(fmt(meds[n]))
            rows.append((rt,) + tuple(cells))
        if len(rows) == 1:
            continue
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        if lines:
            lines.append("")
        lines.append("%s: %s, median (speed-up over 1 worker)" % (w, m))
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[j])
                                   for j, c in enumerate(r)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * wd for wd in widths))
        for rt in RUNTIMES:
            pts = " ".join("%d:%s" % (n, fmt(statistics.median(vs)))
                           for n in counts
                           for vs in [[v for v in (num(r, m) for r in
                                                   ok.get((w, rt, n), []))
                                       if v is not None]] if vs)
            if pts:
                lines.append("SCALE %s %s %s %s" % (w, rt, m, pts))
    return lines


def strace_lines(raw_path, workloads):
    """The STRACE=1 section: system calls per task of each runtime, from
    one extra run under strace -f -c (run.sh's STRACE lines), with the
    three most frequent calls."""
    got = {}
    with open(raw_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or parts[0] != "STRACE":
                continue
            kv = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            got[(parts[1], parts[2])] = kv
    if not got:
        return []
    rows = [("workload",) + tuple(RUNTIMES)]
    for w in workloads:
        cells = []
        for rt in RUNTIMES:
            kv = got.get((w, rt))
            if kv is None:
                cells.append("-")
            elif "syscalls_per_op" not in kv:
                cells.append("FAILED (rc=%s)" % kv.get("rc", "?"))
            else:
                cells.append("%s (%s)" % (
                    fmt(num(kv, "syscalls_per_op")),
                    kv.get("top", "").replace(",", " ")))
        if any(c != "-" for c in cells):
            rows.append((w,) + tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j])
                               for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    lines.append("cells: system calls per task, every thread, start-up "
                 "included (most frequent calls: name:count)")
    return lines


def http_notes(ok):
    """Runs of http, c10k, bridge or trace-off whose numbers need a
    caveat: socket errors or non-2xx responses in wrk's report, idle
    connections the server closed, other processes busy during the run."""
    notes = []
    for (w, rt, _), runs in sorted(ok.items()):
        if w not in NOTED:
            continue
        for i, kv in enumerate(runs, 1):
            bad = []
            for key in ("socket_errors", "non2xx", "idle_closed",
                        "unclean_close"):
                v = num(kv, key)
                if v:
                    bad.append("%s=%d" % (key, v))
            v = num(kv, "other_cpu_pct")
            if v is not None and v >= OTHER_CPU_FLAG:
                bad.append("other processes used %d%% of the CPUs" % v)
            v = num(kv, "client_cpu_pct")
            if v is not None and v >= CLIENT_CPU_FLAG:
                bad.append("the load client used %d%% of its CPU: it may "
                           "have been the limit" % v)
            if bad:
                if "msgs" in kv:
                    what = "%s messages" % kv["msgs"]
                elif "requests" in kv:
                    what = "%s requests" % kv["requests"]
                elif "tasks" in kv:
                    what = "%s tasks" % kv["tasks"]
                else:
                    what = "%s completions" % kv.get("completions", "?")
                notes.append("NOTE %s %s run %d (%s): %s" % (
                    w, rt, i, what, "; ".join(bad)))
    return notes


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    raw, out_txt, chart_dir, png = sys.argv[1:5]
    header = ""
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as f:
            header = f.read()
    ok, failed = parse(raw)
    seen = {k[0] for k in ok} | {k[0] for k in failed}
    workloads = [w for w in WORKLOADS if w in seen]
    stats = collect(ok, failed)
    tlines, marks = target_lines(stats, workloads)

    report = result_lines(stats)
    report += ["", "== table =="] + tables(stats, workloads)
    if os.environ.get("BENCH_SCALE") == "1":
        report += ["", "== scaling curve (workers = 1 .. N) =="]
        report += scale_lines(ok, workloads)
    if "trace-off" in workloads:
        report += ["", "== trace-off: spawn with tracing compiled out "
                   "(notrace), compiled in but off (off), on (on) =="]
        report += trace_off_lines(stats)
    slines = strace_lines(raw, workloads)
    if slines:
        report += ["", "== system calls per task (STRACE=1: one more run "
                   "under strace -f -c) =="] + slines
    report += ["", "== targets (coev vs the named peer, or the better of "
               "the peers; medians) =="] + tlines
    notes = http_notes(ok)
    with open(raw) as f:
        discarded = [ln.split()[2:5] for ln in f if ln.startswith("DISCARD ")]
    for w, rt, _ in discarded:
        notes.append("NOTE %s %s: one run repeated because other processes "
                     "were busy during it (DISCARD in the raw lines)"
                     % (w, rt))
    if notes:
        report += ["", "== runs to read with care =="] + notes
    fails = []
    for (w, rt, wk), whys in sorted(failed.items()):
        for why in whys:
            fails.append("FAILED %s %s workers=%d %s" % (w, rt, wk, why))
    if fails:
        report += ["", "== failed runs =="] + fails
    report.append("")
    report.append(chart(stats, marks, workloads, chart_dir, png))

    text = "\n".join(report) + "\n"
    sys.stdout.write(text)
    with open(raw) as f:
        raw_text = f.read()
    with open(out_txt, "w") as f:
        f.write(header)
        f.write(text)
        f.write("\n== raw lines, in run order ==\n")
        f.write(raw_text)


if __name__ == "__main__":
    main()
