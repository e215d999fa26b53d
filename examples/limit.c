/* SPDX-License-Identifier: MIT */
/*
 * examples/limit.c — 100 jobs, at most 10 at a time: the asyncio posts'
 * semaphore example, with coev_sem_t.
 *
 *   async def fetch(url, semaphore):
 *       async with semaphore:
 *           ...                        # the request
 *
 *   semaphore = asyncio.Semaphore(10)  # limit to 10 concurrent requests
 *   urls = [f'http://example.com/{i}' for i in range(100)]
 *   results = await asyncio.gather(*[fetch(u, semaphore) for u in urls])
 *
 * In coev the same is coev_sem_init(&sem, 10), then in each job
 * coev_sem_acquire(&sem) ... coev_sem_release(&sem), and coev_gather over
 * the jobs' tasks. All 100 tasks start at once; 10 get a permit and the
 * other 90 wait in the semaphore's queue (first in, first out), each
 * released permit going straight to the longest waiter.
 *
 * Each job simulates a request by sleeping a random 10-50 ms. While it
 * holds its permit, it counts itself in an atomic in-flight counter and
 * raises an atomic maximum; the program prints that peak and exits
 * non-zero unless it is exactly the limit (it cannot be more if the
 * semaphore works, and all 10 permits are in use at once as soon as 10
 * jobs have started). It also prints the wall time against the summed
 * job time: with K jobs in flight the run takes about 1/K of the sum.
 *
 * Usage: limit [-n JOBS] [-k LIMIT] [-w WORKERS] [-r SEED] [-x]
 *   -n JOBS   jobs to run (default 100)
 *   -k LIMIT  at most LIMIT in flight (default 10)
 *   -w N      worker threads (default 2)
 *   -r SEED   seed of the job durations (default 1)
 *   -x        start the semaphore with one permit too many, to see the
 *             check fail
 * The expected peak is min(JOBS, LIMIT). Exit status: 0 when the peak is
 * as expected and every job succeeded, 1 otherwise, 2 for bad arguments.
 */
#include <coev.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define JOB_MIN_MS 10
#define JOB_MAX_MS 50

/* One job: how long its "request" takes, and what it measured. The task
 * writes the times; main reads them after coev_gather joined it. */
struct job {
	struct limit *lim;
	coev_time_t duration;
	coev_time_t waited; /* for a permit */
	coev_time_t held;   /* from taking the permit to giving it back */
};

/* The run: the semaphore and the two counters every job updates. */
struct limit {
	coev_sem_t sem;
	atomic_uint in_flight; /* jobs holding a permit now */
	atomic_uint peak;      /* the most in_flight has been */
	unsigned n, k;	       /* jobs, and the limit they must keep to */
	unsigned permits; /* the semaphore's initial count: k, or k + 1 (-x) */
	struct job *jobs;
};

/* A job's duration: JOB_MIN_MS..JOB_MAX_MS from a splitmix64 hash of the
 * seed and the job's number, so a seed gives the same run every time. */
static coev_time_t job_duration(uint64_t seed, unsigned i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15u + i;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	z ^= z >> 31;
	return COEV_MSEC(JOB_MIN_MS) +
	       (coev_time_t)(z % (uint64_t)COEV_MSEC(JOB_MAX_MS - JOB_MIN_MS));
}

/* Raise *max to at least v. */
static void atomic_max(atomic_uint *max, unsigned v)
{
	unsigned cur = atomic_load_explicit(max, memory_order_relaxed);

	while (cur < v && !atomic_compare_exchange_weak_explicit(
				  max, &cur, v, memory_order_relaxed,
				  memory_order_relaxed))
		;
}

/* async with semaphore: the "request". The in-flight counter goes up only
 * after the permit is taken and down before it is given back, so it counts
 * permit holders. Relaxed is enough: the semaphore orders a release before
 * the acquire that receives its permit, and a counter's read-modify-writes
 * follow that order, so the counter never exceeds the holders. */
static int job_task(void *arg)
{
	struct job *job = arg;
	struct limit *lim = job->lim;
	coev_time_t asked = coev_now(), got;
	unsigned now;
	int r;

	if ((r = coev_sem_acquire(&lim->sem)) < 0)
		return r;
	got = coev_now();
	now = atomic_fetch_add_explicit(&lim->in_flight, 1,
					memory_order_relaxed) +
	      1;
	atomic_max(&lim->peak, now);
	r = coev_sleep(job->duration);
	atomic_fetch_sub_explicit(&lim->in_flight, 1, memory_order_relaxed);
	job->waited = got - asked;
	job->held = coev_now() - got;
	coev_sem_release(&lim->sem);
	return r;
}

/* Seconds, for printing. */
static double secs(coev_time_t ns)
{
	return (double)ns / 1e9;
}

/* The first task: start every job at once, gather them, print the peak
 * and the times. Returns 0 when every job succeeded and the peak is the
 * expected one, 1 otherwise, or a negative error. */
static int limit_main(void *arg)
{
	struct limit *lim = arg;
	coev_task_t **tasks = calloc(lim->n + 1, sizeof *tasks);
	int *rets = calloc(lim->n + 1, sizeof *rets);
	unsigned expect = lim->n < lim->k ? lim->n : lim->k, peak, started;
	coev_time_t start, wall, sum = 0, waited = 0;
	int r = 0, nfailed = 0;

	if (tasks == NULL || rets == NULL) {
		free(tasks);
		free(rets);
		return -ENOMEM;
	}
	start = coev_now();
	for (started = 0; started < lim->n; started++) {
		r = coev_spawn_named("job", job_task, &lim->jobs[started],
				     &tasks[started]);
		if (r < 0) {
			fprintf(stderr, "limit: spawn: %s\n", coev_strerror(r));
			break;
		}
	}
	nfailed = coev_gather(tasks, started, rets);
	wall = coev_now() - start;
	if (nfailed < 0) {
		fprintf(stderr, "limit: gather: %s\n", coev_strerror(nfailed));
		r = nfailed;
	}
	for (unsigned i = 0; i < started && nfailed > 0; i++)
		if (rets[i] < 0)
			fprintf(stderr, "limit: job %u failed: %s\n", i,
				coev_strerror(rets[i]));
	free(tasks);
	free(rets);
	if (r < 0)
		return r;

	for (unsigned i = 0; i < lim->n; i++) {
		sum += lim->jobs[i].held;
		waited += lim->jobs[i].waited;
	}
	peak = atomic_load(&lim->peak);
	printf("  peak concurrency: %u (limit %u, expected %u)\n", peak, lim->k,
	       expect);
	printf("  wall time %.3f s; the jobs took %.3f s added up (%.1fx)\n",
	       secs(wall), secs(sum),
	       wall > 0 ? (double)sum / (double)wall : 0.0);
	printf("  %u at a time, the run cannot take less than the sum / %u "
	       "= %.3f s;\n  the jobs spent %.3f s in all waiting for a "
	       "permit\n",
	       expect, expect ? expect : 1, secs(sum / (expect ? expect : 1)),
	       secs(waited));
	if (nfailed == 0 && peak == expect &&
	    coev_sem_value(&lim->sem) == lim->permits) {
		printf("limit: OK: %u jobs, never more than %u in flight\n",
		       lim->n, peak);
		return 0;
	}
	printf("limit: FAILED: peak %u, expected %u; %d job(s) failed; %u "
	       "permits left of %u\n",
	       peak, expect, nfailed, coev_sem_value(&lim->sem), lim->permits);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: limit [-n JOBS] [-k LIMIT] [-w WORKERS] "
			"[-r SEED] [-x]\n");
	exit(2);
}

/* A whole number in [lo, hi] from the command line; exits on a bad one. */
static unsigned long number_arg(const char *s, unsigned long lo,
				unsigned long hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "limit: %s: out of range (%lu..%lu)\n", s, lo,
			hi);
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	static struct limit lim = {.n = 100, .k = 10};
	unsigned long seed = 1;
	bool extra_permit = false;
	coev_config_t cfg;
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr, "limit: a COEV_* variable is malformed (%s)\n",
			coev_strerror(r));
	cfg.workers = 2;
	while ((opt = getopt(argc, argv, "n:k:w:r:xh")) != -1) {
		switch (opt) {
		case 'n':
			lim.n = (unsigned)number_arg(optarg, 0, 100000);
			break;
		case 'k':
			lim.k = (unsigned)number_arg(optarg, 1, 100000);
			break;
		case 'w':
			cfg.workers = (unsigned)number_arg(optarg, 1,
							   COEV_WORKERS_MAX);
			break;
		case 'r': seed = number_arg(optarg, 0, ULONG_MAX); break;
		case 'x': extra_permit = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	lim.jobs = calloc(lim.n + 1, sizeof *lim.jobs);
	if (lim.jobs == NULL) {
		fprintf(stderr, "limit: out of memory\n");
		return EXIT_FAILURE;
	}
	for (unsigned i = 0; i < lim.n; i++)
		lim.jobs[i] = (struct job){&lim, job_duration(seed, i), 0, 0};
	lim.permits = lim.k + extra_permit;
	if ((r = coev_sem_init(&lim.sem, lim.permits)) < 0) {
		fprintf(stderr, "limit: coev_sem_init: %s\n", coev_strerror(r));
		return EXIT_FAILURE;
	}
	printf("limit: %u jobs of %d-%d ms, at most %u at a time, %u worker "
	       "threads\n",
	       lim.n, JOB_MIN_MS, JOB_MAX_MS, lim.k, cfg.workers);

	r = coev_run(limit_main, &lim, &cfg);
	if (r < 0)
		fprintf(stderr, "limit: %s\n", coev_strerror(r));
	coev_sem_destroy(&lim.sem);
	free(lim.jobs);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
