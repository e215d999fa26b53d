/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/sync_bench.c — coev side of the synchronisation workloads:
 * channels and the mutex. One binary, one workload per run.
 *
 *   coev-sync-bench <pingpong|mutex|pipeline|pipeline-batch|spawn-wg> <workers>
 *
 * Configured as bench.c is (coev_config_init(), then cfg.workers from the
 * command line); the workload runs in coev_run()'s main task, which spawns
 * the workload's tasks and joins them. Prints exactly one line on stdout:
 *   BENCH <workload> coev workers=<n> <metric>=<value> ...
 * and exits non-zero when a coev call fails or a self-check does not hold.
 * The extra keys are sums of coev_rt_worker_stats() over the workers, for
 * diagnosis: polls (task resumptions), parks (times a worker slept), stolen.
 *
 * spawn-wg is bench.c's spawn in Go's idiom: detached tasks counted down
 * on a wait group. It is here because it needs sync/'s wait group, and
 * prints the kernel's counters per task as bench.c's spawn does.
 *
 * It is a program of its own, not part of bench.c, so that the task
 * workloads still build and run when sync/ does not.
 *
 * A task that fails closes the channels it uses before it returns its
 * error, so that its partners' waits end (with COEV_ECLOSED) and every
 * join returns.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coev.h"
#include "common.h"

#define PINGPONG_ROUNDS 1000000L
#define MUTEX_TASKS 8
#define MUTEX_PAIRS 100000L /* lock/unlock pairs per task */
#define PIPELINE_MSGS 10000000ULL
#define PIPELINE_CAP 1024
#define MAX_TASKS 8 /* tasks of one workload */
#define SPAWN_TASKS 1000000

static char line[512];

/* Spawn n (at most MAX_TASKS) tasks running fns[i](arg), then join them
 * all. If a spawn fails, hang_up(arg) (when not NULL) makes the tasks
 * already running give up, so that they can be joined. Returns 0, or the
 * first error of a spawn, a join or a task. */
static int run_tasks(const coev_fn *fns, int n, void *arg,
		     void (*hang_up)(void *))
{
	coev_task_t *h[MAX_TASKS];
	int err = 0, spawned, rc, ret;

	for (spawned = 0; spawned < n && spawned < MAX_TASKS; spawned++) {
		if ((rc = coev_spawn(fns[spawned], arg, &h[spawned])) < 0) {
			err = fail("coev_spawn", rc);
			if (hang_up)
				hang_up(arg);
			break;
		}
	}
	for (int i = 0; i < spawned; i++) {
		if ((rc = coev_join(h[i], &ret)) < 0) {
			if (!err)
				err = fail("coev_join", rc);
		} else if (ret < 0 && !err) {
			err = fail("a workload task", ret);
		}
	}
	return err;
}

/* The kernel's counters around the measured section (common.h). */
static struct kcount kc_begin, kc_end;

/* The kernel's counters per op (round trip, pair, message) and the
 * diagnostic keys, appended to line at offset n. */
static void stats_keys(int n, long ops)
{
	coev_worker_stats_t st;
	char kc[160];

	rt_stats(&st);
	kcount_keys(kc, sizeof kc, &kc_begin, &kc_end, ops);
	snprintf(line + n, sizeof line - (size_t)n,
		 " %s polls=%llu parks=%llu stolen=%llu", kc,
		 (unsigned long long)st.polls, (unsigned long long)st.parks,
		 (unsigned long long)st.stolen);
}

/* ---- pingpong: a counter bounced through two channels of capacity 1 ---- */

struct pingpong {
	coev_chan_t *ab, *ba; /* ping to pong, pong to ping */
	uint64_t final;	      /* ping's counter after the last round */
};

static void pingpong_hang_up(void *arg)
{
	struct pingpong *p = arg;

	coev_chan_close(p->ab);
	coev_chan_close(p->ba);
}

/* Sends the counter, gets it back incremented, increments it. */
static int ping(void *arg)
{
	struct pingpong *p = arg;
	uint64_t c = 0;
	int rc = 0;

	for (long i = 0; i < PINGPONG_ROUNDS; i++) {
		if ((rc = coev_chan_send(p->ab, &c)) < 0 ||
		    (rc = coev_chan_recv(p->ba, &c)) < 0)
			break;
		c++;
	}
	if (rc < 0) {
		pingpong_hang_up(p);
		return rc;
	}
	p->final = c;
	return 0;
}

/* Receives the counter, increments it, sends it back. */
static int pong(void *arg)
{
	struct pingpong *p = arg;
	uint64_t c;
	int rc;

	for (long i = 0; i < PINGPONG_ROUNDS; i++) {
		if ((rc = coev_chan_recv(p->ab, &c)) < 0)
			goto out;
		c++;
		if ((rc = coev_chan_send(p->ba, &c)) < 0)
			goto out;
	}
	return 0;
out:
	pingpong_hang_up(p);
	return rc;
}

static int pingpong_bench(void)
{
	static const coev_fn fns[] = {ping, pong};
	struct pingpong p = {0};
	int rc;

	if ((rc = coev_chan_new(&p.ab, sizeof(uint64_t), 1)) < 0 ||
	    (rc = coev_chan_new(&p.ba, sizeof(uint64_t), 1)) < 0) {
		coev_chan_free(p.ab);
		return fail("coev_chan_new", rc);
	}
	kcount_read(&kc_begin);
	int64_t t0 = now_ns();
	rc = run_tasks(fns, 2, &p, pingpong_hang_up);
	int64_t t1 = now_ns();
	kcount_read(&kc_end);

	coev_chan_free(p.ab);
	coev_chan_free(p.ba);
	if (rc < 0)
		return rc;
	if (p.final != 2 * (uint64_t)PINGPONG_ROUNDS) {
		fprintf(stderr,
			"coev-sync-bench: pingpong: counter %llu, "
			"expected %llu\n",
			(unsigned long long)p.final,
			2 * (unsigned long long)PINGPONG_ROUNDS);
		return -1;
	}
	stats_keys(snprintf(line, sizeof line,
			    "roundtrips=%ld ns_per_roundtrip=%.2f",
			    PINGPONG_ROUNDS,
			    (double)(t1 - t0) / PINGPONG_ROUNDS),
		   PINGPONG_ROUNDS);
	return 0;
}

/* ---- mutex: 8 tasks x 100,000 lock/unlock pairs on one mutex ---- */

struct locked_counter {
	coev_mutex_t mu;
	uint64_t n; /* guarded by mu */
};

static int locker(void *arg)
{
	struct locked_counter *lc = arg;
	int rc;

	for (long i = 0; i < MUTEX_PAIRS; i++) {
		if ((rc = coev_mutex_lock(&lc->mu)) < 0)
			return rc;
		lc->n++;
		coev_mutex_unlock(&lc->mu);
	}
	return 0;
}

static int mutex_bench(void)
{
	static const coev_fn fns[MUTEX_TASKS] = {
		locker, locker, locker, locker, locker, locker, locker, locker,
	};
	struct locked_counter lc = {.n = 0};
	const uint64_t pairs = (uint64_t)MUTEX_TASKS * MUTEX_PAIRS;
	int rc;

	if ((rc = coev_mutex_init(&lc.mu, 0)) < 0)
		return fail("coev_mutex_init", rc);
	kcount_read(&kc_begin);
	int64_t t0 = now_ns();
	rc = run_tasks(fns, MUTEX_TASKS, &lc, NULL);
	int64_t t1 = now_ns();
	kcount_read(&kc_end);

	coev_mutex_destroy(&lc.mu);
	if (rc < 0)
		return rc;
	if (lc.n != pairs) {
		fprintf(stderr,
			"coev-sync-bench: mutex: counter %llu, expected %llu\n",
			(unsigned long long)lc.n, (unsigned long long)pairs);
		return -1;
	}
	stats_keys(snprintf(line, sizeof line,
			    "tasks=%d pairs=%llu ns_per_pair=%.2f", MUTEX_TASKS,
			    (unsigned long long)pairs,
			    (double)(t1 - t0) / (double)pairs),
		   (long)pairs);
	return 0;
}

/* ---- pipeline: producer -> A -> processor -> B -> consumer ---- */

struct pipeline {
	coev_chan_t *a, *b; /* bounded, PIPELINE_CAP messages each */
	uint64_t sum;	    /* the consumer's total */
};

static void pipeline_hang_up(void *arg)
{
	struct pipeline *p = arg;

	coev_chan_close(p->a);
	coev_chan_close(p->b);
}

/* A stage's end: its input closed and drained (rc COEV_ECLOSED), it closes
 * its output (if any) and returns 0; any other rc is a failure, which
 * makes the partners give up too. */
static int stage_end(struct pipeline *p, int rc, coev_chan_t *out)
{
	if (rc != COEV_ECLOSED) {
		pipeline_hang_up(p);
		return rc;
	}
	if (out)
		coev_chan_close(out);
	return 0;
}

/* Sends 0 .. PIPELINE_MSGS - 1 into A, then closes A. */
static int producer(void *arg)
{
	struct pipeline *p = arg;
	int rc;

	for (uint64_t i = 0; i < PIPELINE_MSGS; i++) {
		if ((rc = coev_chan_send(p->a, &i)) < 0) {
			pipeline_hang_up(p);
			return rc;
		}
	}
	coev_chan_close(p->a);
	return 0;
}

/* Receives x from A and sends x * 2 + 1 into B until A is closed and
 * drained (COEV_ECLOSED), then closes B. */
static int processor(void *arg)
{
	struct pipeline *p = arg;
	uint64_t x;
	int rc;

	while ((rc = coev_chan_recv(p->a, &x)) == 0) {
		x = x * 2 + 1;
		if ((rc = coev_chan_send(p->b, &x)) < 0)
			break;
	}
	return stage_end(p, rc, p->b);
}

/* Adds up what comes out of B until it is closed and drained. */
static int consumer(void *arg)
{
	struct pipeline *p = arg;
	uint64_t y, sum = 0;
	int rc;

	while ((rc = coev_chan_recv(p->b, &y)) == 0)
		sum += y;
	p->sum = sum;
	return stage_end(p, rc, NULL);
}

/* pipeline-batch: the processor and the consumer take what is ready in
 * batches (coev_chan_recv_batch); the messages and the producer are the
 * same. Not one of run.sh's workloads (Go's peer receives one at a
 * time): it shows what a batch receive saves. */
#define PIPELINE_BATCH 64

static int processor_batch(void *arg)
{
	struct pipeline *p = arg;
	uint64_t x[PIPELINE_BATCH];
	int rc, n;

	while ((n = rc = coev_chan_recv_batch(p->a, x, PIPELINE_BATCH,
					      COEV_FOREVER)) > 0) {
		for (int i = 0; i < n; i++) {
			x[i] = x[i] * 2 + 1;
			if ((rc = coev_chan_send(p->b, &x[i])) < 0)
				break;
		}
		if (rc < 0)
			break;
	}
	return stage_end(p, rc, p->b);
}

static int consumer_batch(void *arg)
{
	struct pipeline *p = arg;
	uint64_t y[PIPELINE_BATCH], sum = 0;
	int rc;

	while ((rc = coev_chan_recv_batch(p->b, y, PIPELINE_BATCH,
					  COEV_FOREVER)) > 0)
		for (int i = 0; i < rc; i++)
			sum += y[i];
	p->sum = sum;
	return stage_end(p, rc, NULL);
}

static int pipeline_bench(bool batch)
{
	static const coev_fn one[] = {producer, processor, consumer};
	static const coev_fn many[] = {producer, processor_batch,
				       consumer_batch};
	const coev_fn *fns = batch ? many : one;
	struct pipeline p = {0};
	/* The sum of 2x + 1 over x = 0 .. n - 1 is n * n. */
	const uint64_t want = PIPELINE_MSGS * PIPELINE_MSGS;
	int rc;

	if ((rc = coev_chan_new(&p.a, sizeof(uint64_t), PIPELINE_CAP)) < 0 ||
	    (rc = coev_chan_new(&p.b, sizeof(uint64_t), PIPELINE_CAP)) < 0) {
		coev_chan_free(p.a);
		return fail("coev_chan_new", rc);
	}
	kcount_read(&kc_begin);
	int64_t t0 = now_ns();
	rc = run_tasks(fns, 3, &p, pipeline_hang_up);
	int64_t t1 = now_ns();
	kcount_read(&kc_end);

	coev_chan_free(p.a);
	coev_chan_free(p.b);
	if (rc < 0)
		return rc;
	if (p.sum != want) {
		fprintf(stderr,
			"coev-sync-bench: pipeline: sum %llu, expected %llu\n",
			(unsigned long long)p.sum, (unsigned long long)want);
		return -1;
	}
	double s = (double)(t1 - t0) / 1e9;

	stats_keys(snprintf(line, sizeof line,
			    "msgs=%llu elapsed_ms=%.3f msgs_per_s=%.0f",
			    PIPELINE_MSGS, s * 1e3, (double)PIPELINE_MSGS / s),
		   (long)PIPELINE_MSGS);
	return 0;
}

/* ---- spawn-wg: 1M detached trivial tasks, counted down on a wait group ---- */

static int wg_done(void *arg)
{
	coev_wg_done(arg);
	return 0;
}

static int spawn_wg_bench(void)
{
	coev_wg_t wg;
	int rc;

	if ((rc = coev_wg_init(&wg)) < 0)
		return fail("coev_wg_init", rc);
	kcount_read(&kc_begin);
	int64_t t0 = now_ns();
	/* Added up front, as Go's wg.Add(n): a task that ends early cannot
	 * bring the count to zero before the last spawn. */
	coev_wg_add(&wg, SPAWN_TASKS);
	for (long i = 0; i < SPAWN_TASKS; i++) {
		if ((rc = coev_spawn(wg_done, &wg, NULL)) < 0) {
			/* The tasks not spawned will never count down. */
			coev_wg_add(&wg, -(SPAWN_TASKS - i));
			coev_wg_wait(&wg);
			coev_wg_destroy(&wg);
			return fail("coev_spawn", rc);
		}
	}
	if ((rc = coev_wg_wait(&wg)) < 0)
		return fail("coev_wg_wait", rc);
	int64_t t1 = now_ns();
	kcount_read(&kc_end);
	coev_wg_destroy(&wg);
	stats_keys(snprintf(line, sizeof line, "tasks=%d ns_per_task=%.2f",
			    SPAWN_TASKS, (double)(t1 - t0) / SPAWN_TASKS),
		   SPAWN_TASKS);
	return 0;
}

/* ---- driver ---- */

static int bench_main(void *arg)
{
	const char *w = arg;

	if (!strcmp(w, "pingpong"))
		return pingpong_bench();
	if (!strcmp(w, "mutex"))
		return mutex_bench();
	if (!strcmp(w, "pipeline"))
		return pipeline_bench(false);
	if (!strcmp(w, "pipeline-batch"))
		return pipeline_bench(true);
	if (!strcmp(w, "spawn-wg"))
		return spawn_wg_bench();
	fprintf(stderr, "coev-sync-bench: unknown workload %s\n", w);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	coev_config_t cfg;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: coev-sync-bench "
				"<pingpong|mutex|pipeline|pipeline-batch|spawn-"
				"wg> <workers>\n");
		return 2;
	}
	if ((rc = bench_config(&cfg, argv[2])) != 0)
		return rc;
	rc = coev_run(bench_main, argv[1], &cfg);
	if (rc < 0) {
		fprintf(stderr, "coev-sync-bench: %s failed: %s (%d)\n",
			argv[1], coev_strerror(rc), rc);
		return 1;
	}
	printf("BENCH %s coev workers=%u %s\n", argv[1], cfg.workers, line);
	return 0;
}
