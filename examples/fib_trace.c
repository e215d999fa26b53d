/* SPDX-License-Identifier: MIT */
/*
 * examples/fib_trace.c — a trace of fork-join work: recursive fib where
 * every call with n >= 2 spawns both halves as tasks and joins them (the
 * benchmark's fib, smaller), recorded with coev's tracer.
 *
 * cfg.trace names the file: at shutdown the runtime writes what each
 * worker ran as Chrome trace-event JSON (coev/debug.h): a slice per task
 * run, idle time, and arrows from each wake to the run it caused and for
 * each steal. cfg.trace_events is each worker's ring; it is sized here
 * from the number of tasks so that nothing is dropped (the ring keeps the
 * newest events when it is too small, and the file says how many were
 * dropped, which this program prints). Each task is named after its call,
 * "fib(7)", so that a viewer colours and labels the tree's levels.
 *
 *   build/examples/fib_trace [TRACE.json [N]]   (make examples)
 *       TRACE.json: where the trace goes (default fib-trace.json)
 *       N: fib(N), 1..22 (default 18: 8,361 tasks)
 *   then open TRACE.json in https://ui.perfetto.dev or chrome://tracing,
 *   or draw it: build/examples/coev-trace-svg TRACE.json -o fib.svg
 * Exit status 0, 1 when the run or the trace failed, 2 for bad arguments.
 */
#include <coev.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A call of fib: spawns both children as named tasks and joins them. */
static int fib(void *arg)
{
	intptr_t n = (intptr_t)arg;
	coev_task_t *a, *b;
	char name[16];
	int ra, rb, rc;

	if (n < 2)
		return (int)n;
	snprintf(name, sizeof name, "fib(%d)", (int)(n - 1));
	if ((rc = coev_spawn_named(name, fib, (void *)(n - 1), &a)) < 0)
		return rc;
	snprintf(name, sizeof name, "fib(%d)", (int)(n - 2));
	if ((rc = coev_spawn_named(name, fib, (void *)(n - 2), &b)) < 0) {
		coev_join(a, NULL);
		return rc;
	}
	if ((rc = coev_join(a, &ra)) < 0 || ra < 0)
		ra = rc < 0 ? rc : ra;
	if ((rc = coev_join(b, &rb)) < 0 || rb < 0)
		rb = rc < 0 ? rc : rb;
	return ra < 0 ? ra : rb < 0 ? rb : ra + rb;
}

/* Calls of fib(n), the root included: 2 fib(n + 1) - 1. */
static long calls(long n)
{
	long x = 0, y = 1;

	for (long i = 0; i < n + 1; i++) {
		long z = x + y;
		x = y;
		y = z;
	}
	return 2 * x - 1;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "fib-trace.json";
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 18;
	unsigned long long events = 0, dropped = 0;
	coev_config_t cfg;
	char line[512];
	FILE *f;
	int r;

	if (argc > 3 || n < 1 || n > 22) {
		fprintf(stderr, "usage: fib_trace [TRACE.json [N]], N 1..22\n");
		return 2;
	}
	coev_config_init(&cfg);
	cfg.trace = path;
	/* At most a spawn, three runs, two wakes and an idle slice or steal
	 * per task, on one worker if it came to that. */
	cfg.trace_events = (size_t)calls(n) * 8 + 1024;
	r = coev_run(fib, (void *)(intptr_t)n, &cfg);
	if (r < 0) {
		fprintf(stderr, "fib_trace: %s\n", coev_strerror(r));
		return 1;
	}
	printf("fib(%ld) = %d, %ld tasks on %u workers\n", n, r, calls(n),
	       cfg.workers);
	/* The trace is written by now: one event per line, then a closing
	 * line with otherData's count of dropped events. */
	if (!(f = fopen(path, "r"))) {
		perror(path);
		return 1;
	}
	while (fgets(line, sizeof line, f)) {
		const char *d = strstr(line, "\"dropped\":");

		events += strncmp(line, "{\"ph\":", 6) == 0;
		if (line[0] == ']' && d)
			dropped = strtoull(d + 10, NULL, 10);
	}
	fclose(f);
	printf("trace: %s, %llu events, %llu dropped\n", path, events, dropped);
	return 0;
}
