/*
 * bench/coev/bench.c — coev side of the benchmarks: one binary, one
 * workload per run.
 *
 *   coev-bench <spawn|yield|fib|sleepers> <workers>
 *
 * The runtime is configured with coev_config_init() and cfg.workers set
 * from the command line; everything else keeps its defaults (COEV_* in the
 * environment still applies). The workload runs in coev_run()'s main task.
 * Prints exactly one line on stdout:
 *   BENCH <workload> coev workers=<n> <metric>=<value> ...
 * and exits non-zero when a coev call fails or a self-check does not hold.
 * Extra keys (stacks_mapped, stolen) come from coev_rt_worker_stats() and
 * are there for diagnosis only.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coev.h"
#include "common.h"

#define SPAWN_TASKS 1000000
#define YIELD_TASKS 1000
#define YIELDS_PER_TASK 1000
#define FIB_N 25
#define FIB_TASKS 242785 /* calls of fib(25), the root included */
#define FIB_RESULT 75025
#define SLEEPERS 100000
#define SLEEP_NS COEV_SEC(2)

static char line[512];

/* VmRSS and VmHWM of this process in KiB; -1 when unreadable. */
static void mem_kib(long *rss, long *hwm)
{
	char buf[256];
	FILE *f = fopen("/proc/self/status", "r");

	*rss = *hwm = -1;
	if (!f)
		return;
	while (fgets(buf, sizeof buf, f)) {
		if (!strncmp(buf, "VmRSS:", 6))
			*rss = strtol(buf + 6, NULL, 10);
		else if (!strncmp(buf, "VmHWM:", 6))
			*hwm = strtol(buf + 6, NULL, 10);
	}
	fclose(f);
}

/* ---- spawn: 1M trivial tasks, spawned by one task, then joined ---- */

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

static int spawn_bench(void)
{
	coev_task_t **h = calloc(SPAWN_TASKS, sizeof *h);
	int rc, ret;

	if (!h)
		return fail("calloc", -ENOMEM);
	int64_t t0 = now_ns();
	for (long i = 0; i < SPAWN_TASKS; i++)
		if ((rc = coev_spawn(trivial, NULL, &h[i])) < 0)
			return fail("coev_spawn", rc);
	for (long i = 0; i < SPAWN_TASKS; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0)
			return fail("coev_join", rc);
		if (ret != 0)
			return fail("trivial task result", ret);
	}
	int64_t t1 = now_ns();
	coev_worker_stats_t st;

	rt_stats(&st);
	free(h);
	snprintf(line, sizeof line,
		 "tasks=%d ns_per_task=%.2f stacks_mapped=%llu stolen=%llu",
		 SPAWN_TASKS, (double)(t1 - t0) / SPAWN_TASKS,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen);
	return 0;
}

/* ---- yield: 1000 tasks x 1000 yields ---- */

static atomic_long yields_done;

static int yielder(void *arg)
{
	(void)arg;
	for (int i = 0; i < YIELDS_PER_TASK; i++) {
		int rc = coev_yield();

		if (rc < 0)
			return rc;
	}
	atomic_fetch_add_explicit(&yields_done, YIELDS_PER_TASK,
				  memory_order_relaxed);
	return 0;
}

static int yield_bench(void)
{
	coev_task_t *h[YIELD_TASKS];
	int rc, ret;

	int64_t t0 = now_ns();
	for (int i = 0; i < YIELD_TASKS; i++)
		if ((rc = coev_spawn(yielder, NULL, &h[i])) < 0)
			return fail("coev_spawn", rc);
	for (int i = 0; i < YIELD_TASKS; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0)
			return fail("coev_join", rc);
		if (ret < 0)
			return fail("coev_yield", ret);
	}
	int64_t t1 = now_ns();
	long n = (long)YIELD_TASKS * YIELDS_PER_TASK;

	if (atomic_load(&yields_done) != n) {
		fprintf(stderr, "coev-bench: yield: %ld yields, expected %ld\n",
			atomic_load(&yields_done), n);
		return -1;
	}
	coev_worker_stats_t st;

	rt_stats(&st);
	snprintf(line, sizeof line,
		 "yields=%ld ns_per_yield=%.2f stacks_mapped=%llu stolen=%llu",
		 n, (double)(t1 - t0) / (double)n,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen);
	return 0;
}

/* ---- fib: every call with n >= 2 spawns both children and joins them ---- */

static int fib(void *arg)
{
	intptr_t n = (intptr_t)arg;
	coev_task_t *a, *b;
	int ra, rb, rc;

	if (n < 2)
		return (int)n;
	if ((rc = coev_spawn(fib, (void *)(n - 1), &a)) < 0)
		return rc;
	if ((rc = coev_spawn(fib, (void *)(n - 2), &b)) < 0) {
		coev_join(a, NULL);
		return rc;
	}
	if ((rc = coev_join(a, &ra)) < 0)
		ra = rc;
	if ((rc = coev_join(b, &rb)) < 0)
		rb = rc;
	if (ra < 0)
		return ra;
	if (rb < 0)
		return rb;
	return ra + rb;
}

static int fib_bench(void)
{
	coev_task_t *root;
	int rc, r;

	int64_t t0 = now_ns();
	if ((rc = coev_spawn(fib, (void *)(intptr_t)FIB_N, &root)) < 0)
		return fail("coev_spawn", rc);
	if ((rc = coev_join(root, &r)) < 0)
		return fail("coev_join", rc);
	int64_t t1 = now_ns();

	if (r < 0)
		return fail("fib task", r);
	if (r != FIB_RESULT) {
		fprintf(stderr, "coev-bench: fib(%d) = %d, expected %d\n",
			FIB_N, r, FIB_RESULT);
		return -1;
	}
	coev_worker_stats_t st;

	rt_stats(&st);
	snprintf(line, sizeof line,
		 "tasks=%d elapsed_ms=%.3f ns_per_task=%.2f stacks_mapped=%llu "
		 "stolen=%llu",
		 FIB_TASKS, (double)(t1 - t0) / 1e6,
		 (double)(t1 - t0) / FIB_TASKS,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen);
	return 0;
}

/* ---- sleepers: 100k tasks asleep for 2 s at once ---- */

static atomic_long sleepers_started;

static int sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&sleepers_started, 1, memory_order_relaxed);
	return coev_sleep(SLEEP_NS);
}

static int sleepers_bench(void)
{
	coev_task_t **h = calloc(SLEEPERS, sizeof *h);
	long rss0, hwm0, rss1, hwm1;
	int rc, ret;

	if (!h)
		return fail("calloc", -ENOMEM);
	memset(h, 0xff, SLEEPERS * sizeof *h); /* fault the array in now */
	mem_kib(&rss0, &hwm0);
	if (rss0 < 0) {
		fprintf(stderr, "coev-bench: cannot read /proc/self/status\n");
		return -1;
	}
	int64_t t0 = now_ns();
	for (long i = 0; i < SLEEPERS; i++)
		if ((rc = coev_spawn(sleeper, NULL, &h[i])) < 0)
			return fail("coev_spawn", rc);
	/* Peak: every task has started and is asleep. */
	while (atomic_load(&sleepers_started) < SLEEPERS)
		if ((rc = coev_sleep(COEV_MSEC(5))) < 0)
			return fail("coev_sleep", rc);
	int64_t t_asleep = now_ns();
	mem_kib(&rss1, &hwm1);
	coev_worker_stats_t st;

	rt_stats(&st);
	for (long i = 0; i < SLEEPERS; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0)
			return fail("coev_join", rc);
		if (ret < 0)
			return fail("coev_sleep in a sleeper", ret);
	}
	int64_t t1 = now_ns();
	long peak = rss1 > hwm1 ? rss1 : hwm1;
	long grow = peak > rss0 ? peak - rss0 : 0;

	free(h);
	snprintf(line, sizeof line,
		 "tasks=%d rss0_kib=%ld rss_kib=%ld hwm_kib=%ld "
		 "all_asleep_s=%.3f kib_per_task=%.3f wall_s=%.3f "
		 "stacks_mapped=%llu stolen=%llu",
		 SLEEPERS, rss0, rss1, hwm1, (double)(t_asleep - t0) / 1e9,
		 (double)grow / SLEEPERS, (double)(t1 - t0) / 1e9,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen);
	return 0;
}

/* ---- driver ---- */

static int bench_main(void *arg)
{
	const char *w = arg;

	if (!strcmp(w, "spawn"))
		return spawn_bench();
	if (!strcmp(w, "yield"))
		return yield_bench();
	if (!strcmp(w, "fib"))
		return fib_bench();
	if (!strcmp(w, "sleepers"))
		return sleepers_bench();
	fprintf(stderr, "coev-bench: unknown workload %s\n", w);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	coev_config_t cfg;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: coev-bench <spawn|yield|fib|sleepers> "
				"<workers>\n");
		return 2;
	}
	if ((rc = bench_config(&cfg, argv[2])) != 0)
		return rc;
	rc = coev_run(bench_main, argv[1], &cfg);
	if (rc < 0) {
		fprintf(stderr, "coev-bench: %s failed: %s (%d)\n", argv[1],
			coev_strerror(rc), rc);
		return 1;
	}
	printf("BENCH %s coev workers=%u %s\n", argv[1], cfg.workers, line);
	return 0;
}
