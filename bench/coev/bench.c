/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/bench.c — coev side of the benchmarks: one binary, one
 * workload per run.
 *
 *   coev-bench <spawn|yield|fib|sleepers|sleepers-cancel> <workers>
 *
 * The runtime is configured with coev_config_init() and cfg.workers set
 * from the command line; everything else keeps its defaults (COEV_* in the
 * environment still applies). The workload runs in coev_run()'s main task.
 * Prints exactly one line on stdout:
 *   BENCH <workload> coev workers=<n> <metric>=<value> ...
 * and exits non-zero when a coev call fails or a self-check does not hold.
 * Extra keys (stacks_mapped, stolen) come from coev_rt_worker_stats() and
 * are there for diagnosis only; so are spawn's ended_before_join (the
 * share of its tasks that had ended when the last spawn returned: the rest
 * were still queued, each holding its task block) and hwm_kib (the peak
 * resident set, nearly all of it task blocks while the handles are kept).
 * spawn, sleepers and sleepers-cancel also print the kernel's counters per
 * task over the measured section (minflt_per_op, csw_per_op,
 * sys_ns_per_op, user_ns_per_op; see common.h). SLEEPERS in the
 * environment sets the number of sleepers (default 100,000 for sleepers,
 * 1,000,000 for sleepers-cancel).
 *
 * The detached + wait group form of spawn (spawn-wg) is in sync_bench.c,
 * as it needs sync/'s wait group.
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
#define CANCEL_SLEEPERS 1000000
#define CANCEL_SLEEP_NS COEV_SEC(3600) /* cancelled long before */

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

	struct kcount k0, k1;
	char kc[160];
	coev_worker_stats_t st;
	uint64_t ended;
	long rss, hwm;

	if (!h)
		return fail("calloc", -ENOMEM);
	rt_stats(&st);
	ended = st.finished;
	kcount_read(&k0);
	int64_t t0 = now_ns();
	for (long i = 0; i < SPAWN_TASKS; i++)
		if ((rc = coev_spawn(trivial, NULL, &h[i])) < 0)
			return fail("coev_spawn", rc);
	rt_stats(&st);
	ended = st.finished - ended;
	for (long i = 0; i < SPAWN_TASKS; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0)
			return fail("coev_join", rc);
		if (ret != 0)
			return fail("trivial task result", ret);
	}
	int64_t t1 = now_ns();
	kcount_read(&k1);
	kcount_keys(kc, sizeof kc, &k0, &k1, SPAWN_TASKS);
	mem_kib(&rss, &hwm);
	rt_stats(&st);
	free(h);
	snprintf(line, sizeof line,
		 "tasks=%d ns_per_task=%.2f %s stacks_mapped=%llu stolen=%llu "
		 "ended_before_join=%.3f hwm_kib=%ld",
		 SPAWN_TASKS, (double)(t1 - t0) / SPAWN_TASKS, kc,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen, (double)ended / SPAWN_TASKS,
		 hwm);
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

/* ---- sleepers: many tasks asleep at once ---- */

static atomic_long sleepers_started;
static coev_time_t sleep_for;

static int sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&sleepers_started, 1, memory_order_relaxed);
	return coev_sleep(sleep_for);
}

/* The number of sleepers: SLEEPERS from the environment, else dflt. */
static long sleepers_count(long dflt)
{
	const char *e = getenv("SLEEPERS");
	char *end;
	long n;

	if (!e || !*e)
		return dflt;
	n = strtol(e, &end, 10);
	if (*end || n < 1) {
		fprintf(stderr, "coev-bench: bad SLEEPERS=%s\n", e);
		return -1;
	}
	return n;
}

/* A crowd of sleepers, from the spawn of the first to all of them asleep. */
struct crowd {
	long n;
	coev_task_t **h;
	long rss0, rss1, hwm1; /* KiB: before spawning, with all asleep */
	int64_t t0, t_asleep;  /* first spawn; every task started */
	struct kcount k0;      /* the kernel's counters before spawning */
};

/* Spawn c->n sleepers (sleeping ns each) and wait until all have started.
 * Returns 0 or an error (after saying so). */
static int crowd_start(struct crowd *c, coev_time_t ns)
{
	long hwm0;
	int rc;

	sleep_for = ns;
	c->h = calloc((size_t)c->n, sizeof *c->h);
	if (!c->h)
		return fail("calloc", -ENOMEM);
	memset(c->h, 0xff, (size_t)c->n * sizeof *c->h); /* fault it in now */
	mem_kib(&c->rss0, &hwm0);
	if (c->rss0 < 0) {
		fprintf(stderr, "coev-bench: cannot read /proc/self/status\n");
		return -1;
	}
	kcount_read(&c->k0);
	c->t0 = now_ns();
	for (long i = 0; i < c->n; i++)
		if ((rc = coev_spawn(sleeper, NULL, &c->h[i])) < 0)
			return fail("coev_spawn", rc);
	/* Peak: every task has started and is asleep. */
	while (atomic_load(&sleepers_started) < c->n)
		if ((rc = coev_sleep(COEV_MSEC(5))) < 0)
			return fail("coev_sleep", rc);
	c->t_asleep = now_ns();
	mem_kib(&c->rss1, &c->hwm1);
	return 0;
}

/* The growth of RSS per task, in KiB, at the peak. */
static double crowd_kib_per_task(const struct crowd *c)
{
	long peak = c->rss1 > c->hwm1 ? c->rss1 : c->hwm1;
	long grow = peak > c->rss0 ? peak - c->rss0 : 0;

	return (double)grow / (double)c->n;
}

/* Join every sleeper, each of which must return want. */
static int crowd_join(struct crowd *c, int want)
{
	int rc, ret;

	for (long i = 0; i < c->n; i++) {
		if ((rc = coev_join(c->h[i], &ret)) < 0)
			return fail("coev_join", rc);
		if (ret != want)
			return fail("coev_sleep in a sleeper", ret);
	}
	return 0;
}

/* sleepers: SLEEPERS (100,000) tasks each sleep 2 s, all at once. */
static int sleepers_bench(void)
{
	struct crowd c = {.n = sleepers_count(SLEEPERS)};
	struct kcount k1;
	char kc[160];
	int rc;

	if (c.n < 0)
		return -EINVAL;
	if ((rc = crowd_start(&c, SLEEP_NS)) < 0 ||
	    (rc = crowd_join(&c, 0)) < 0)
		return rc;
	int64_t t1 = now_ns();
	kcount_read(&k1);
	kcount_keys(kc, sizeof kc, &c.k0, &k1, c.n);
	coev_worker_stats_t st;

	rt_stats(&st);
	free(c.h);
	snprintf(line, sizeof line,
		 "tasks=%ld rss0_kib=%ld rss_kib=%ld hwm_kib=%ld "
		 "all_asleep_s=%.3f kib_per_task=%.3f wall_s=%.3f %s "
		 "stacks_mapped=%llu stolen=%llu",
		 c.n, c.rss0, c.rss1, c.hwm1, (double)(c.t_asleep - c.t0) / 1e9,
		 crowd_kib_per_task(&c), (double)(t1 - c.t0) / 1e9, kc,
		 (unsigned long long)st.stacks_mapped,
		 (unsigned long long)st.stolen);
	return 0;
}

/* sleepers-cancel: SLEEPERS (1,000,000) tasks go to sleep for an hour;
 * once all are asleep, each is cancelled (coev_cancel on every handle) and
 * then joined. start_s: first spawn to all asleep; cancel_s: first cancel
 * to the last join, which frees the last task. */
static int sleepers_cancel_bench(void)
{
	struct crowd c = {.n = sleepers_count(CANCEL_SLEEPERS)};
	struct kcount k1;
	char kc[160];
	int rc;

	if (c.n < 0)
		return -EINVAL;
	if ((rc = crowd_start(&c, CANCEL_SLEEP_NS)) < 0)
		return rc;
	int64_t tc = now_ns();
	for (long i = 0; i < c.n; i++)
		if ((rc = coev_cancel(c.h[i])) < 0)
			return fail("coev_cancel", rc);
	if ((rc = crowd_join(&c, -ECANCELED)) < 0)
		return rc;
	int64_t t1 = now_ns();
	kcount_read(&k1);
	kcount_keys(kc, sizeof kc, &c.k0, &k1, c.n);
	coev_worker_stats_t st;

	rt_stats(&st);
	free(c.h);
	snprintf(line, sizeof line,
		 "tasks=%ld rss0_kib=%ld rss_kib=%ld hwm_kib=%ld start_s=%.3f "
		 "cancel_s=%.3f kib_per_task=%.3f %s stacks_mapped=%llu "
		 "stolen=%llu",
		 c.n, c.rss0, c.rss1, c.hwm1, (double)(c.t_asleep - c.t0) / 1e9,
		 (double)(t1 - tc) / 1e9, crowd_kib_per_task(&c), kc,
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
	if (!strcmp(w, "sleepers-cancel"))
		return sleepers_cancel_bench();
	fprintf(stderr, "coev-bench: unknown workload %s\n", w);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	coev_config_t cfg;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: coev-bench <spawn|yield|fib|sleepers|"
				"sleepers-cancel> <workers>\n");
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
