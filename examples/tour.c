/* SPDX-License-Identifier: MIT */
/*
 * examples/tour.c — a guided tour of coev, built and run by `make demo`.
 *
 * coev grew out of a handful of blog posts about Python's asyncio. This
 * program retells their examples in C, one section each, and checks as it
 * goes that the runtime behaved as the text says, so the tour doubles as a
 * smoke test (it exits non-zero when something is off; make check runs
 * it). Its timing checks hold on a loaded machine too: they compare what
 * ran at once with the same steps one after the other, as measured in the
 * same run, and never hold a step to a wall-clock limit.
 *
 *   asyncio                                coev
 *   -------------------------------------  ---------------------------------
 *   asyncio.run(main())                    coev_run(tour_main, NULL, &cfg)
 *   async def f(): ...                     int f(void *arg) run as a task
 *   await asyncio.sleep(0.3)               coev_sleep(COEV_MSEC(300))
 *   t = asyncio.create_task(f())           coev_spawn(f, arg, &t)
 *   r = await t                            coev_join(t, &r)
 *   await asyncio.gather(*ts,              coev_gather(ts, n, rets)
 *                        return_exceptions=True)
 *   raise ConnectionRefusedError           return -ECONNREFUSED
 *
 *   1. The coffee shop: grind the beans (0.3 s) and heat the water (0.2 s)
 *      as two tasks joined with coev_gather — 0.3 s, not 0.5 s.
 *   2. Create a task now, await it later: main does other work while the
 *      task runs, and the timestamps show the overlap.
 *   3. Fetching six URLs at once, two of which fail: coev_gather reports
 *      every task's own status, like return_exceptions=True.
 *   4. What asyncio cannot do: a fork-join fib(20) of ~22,000 tasks that
 *      spreads over every worker thread, shown by per-worker counters
 *      (coev_rt_worker_stats) and by where each leaf ran (coev_worker_id).
 *
 * Unlike asyncio's single thread, coev runs tasks on several worker threads
 * (one per CPU by default) and idle workers steal queued tasks from busy
 * ones; every line below says which worker printed it.
 */
#include <coev.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state of the whole tour: when it started and how many checks failed. */
struct tour {
	coev_time_t t0;
	atomic_int problems;
};

static struct tour tour;

/* Seconds since the tour started, for timestamps a reader can follow. */
static double since_start(void)
{
	return (double)(coev_now() - tour.t0) / 1e9;
}

/* Seconds between two coev_now() readings. */
static double secs(coev_time_t from, coev_time_t to)
{
	return (double)(to - from) / 1e9;
}

/* Print one narrated line, stamped with the time, the worker and the task,
 * formatted first and written with one call so lines printed by tasks on
 * different workers never interleave. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char msg[256];
	const char *name = coev_task_name(NULL);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("  [%5.3f s] worker %d  %-11s %s\n", since_start(),
	       coev_worker_id(), name[0] ? name : "-", msg);
}

/* Record a failed check on stderr; the tour goes on so that one problem
 * does not hide the next, and the exit status reports them all. */
__attribute__((format(printf, 2, 3))) static bool check(bool ok,
							const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	fflush(stdout);
	fputs("tour: UNEXPECTED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	atomic_fetch_add(&tour.problems, 1);
	return false;
}

/* Report a coev call that failed, with its message; returns r unchanged so
 * that callers can pass the error on. */
static int failed(const char *what, int r)
{
	check(false, "%s failed: %s (%d)", what, coev_strerror(r), r);
	return r;
}

/* A header line "== title =====", 76 columns wide, that makes each part
 * of the tour easy to find when scrolling back. */
static void rule(const char *title)
{
	printf("\n== %s ", title);
	for (size_t i = strlen(title) + 4; i < 76; i++)
		putchar('=');
	putchar('\n');
}

/* A section header with a few lines of explanation under it. */
static void section(const char *title, const char *text)
{
	rule(title);
	printf("\n%s\n", text);
}

/* --- 1. the coffee shop -------------------------------------------------- */

/* One step of making coffee: what it does, how long it takes, and the start
 * and end times it measured itself. The task writes them; its spawner reads
 * them after the join, which orders the accesses. */
struct step {
	const char *what;
	coev_time_t takes;
	coev_time_t began, ended;
};

/* async def grind_coffee(beans): the grinder runs while we wait. */
static int grind_coffee(void *arg)
{
	struct step *s = arg;
	int r;

	s->began = coev_now();
	say("Starting to grind %s", s->what);
	if ((r = coev_sleep(s->takes)) < 0)
		return r;
	s->ended = coev_now();
	say("Finished grinding %s", s->what);
	return 0;
}

/* async def heat_water(): the kettle needs no attention either. */
static int heat_water(void *arg)
{
	struct step *s = arg;
	int r;

	s->began = coev_now();
	say("Starting to heat %s", s->what);
	if ((r = coev_sleep(s->takes)) < 0)
		return r;
	s->ended = coev_now();
	say("The %s is hot", s->what);
	return 0;
}

/* Make the coffee twice: first awaiting each step at once (the "mere
 * mortal" way of the first blog post), then with both steps as tasks under
 * one gather, and compare the two timings. */
static void coffee_shop(void)
{
	struct step grind = {"arabica", COEV_MSEC(300), 0, 0};
	struct step water = {"water", COEV_MSEC(200), 0, 0};
	coev_task_t *tasks[2];
	int rets[2], r;
	coev_time_t start;
	double seq_s, conc_s, grind_s, water_s;

	section("1. The coffee shop",
		"Grinding takes 0.3 s and heating the water 0.2 s. A task "
		"body is a plain C\nfunction, so calling it directly is "
		"asyncio's `await grind_coffee()`: main\nstands still until "
		"it returns. First the slow way, one step after the other:\n");
	start = coev_now();
	if ((r = grind_coffee(&grind)) < 0 || (r = heat_water(&water)) < 0) {
		failed("coev_sleep", r);
		return;
	}
	seq_s = secs(start, coev_now());
	say("Coffee done the slow way in %.3f s", seq_s);

	printf("\nNow both steps as tasks (asyncio.create_task), awaited "
	       "together\n(asyncio.gather): the kettle heats while the "
	       "grinder grinds.\n\n");
	start = coev_now();
	if ((r = coev_spawn_named("grinder", grind_coffee, &grind, &tasks[0])) <
	    0) {
		failed("coev_spawn", r);
		return;
	}
	if ((r = coev_spawn_named("kettle", heat_water, &water, &tasks[1])) <
	    0) {
		failed("coev_spawn", r);
		(void)coev_join(tasks[0], NULL); /* already failing */
		return;
	}
	r = coev_gather(tasks, 2, rets);
	conc_s = secs(start, coev_now());
	if (r < 0) {
		failed("coev_gather", r);
		return;
	}
	if (!check(r == 0, "coffee steps failed: grinder: %s, kettle: %s",
		   coev_strerror(rets[0]), coev_strerror(rets[1])))
		return;
	say("Combining ingredients... Fresh coffee!");

	grind_s = secs(grind.began, grind.ended);
	water_s = secs(water.began, water.ended);
	printf("\n  The grinder took %.3f s and the kettle %.3f s: %.3f s "
	       "of waiting in all.\n"
	       "  One after the other: %.3f s. Concurrently: %.3f s, the "
	       "longer step alone.\n",
	       grind_s, water_s, grind_s + water_s, seq_s, conc_s);
	check(seq_s >= 0.5,
	      "the sequential coffee took %.3f s, under the "
	      "0.5 s its steps sleep",
	      seq_s);
	check(conc_s >= 0.3,
	      "the concurrent coffee took %.3f s, under the 0.3 s of its "
	      "longer step",
	      conc_s);
	/* Concurrent: each step began before the other ended, and the two
	 * together took well under the slow way's time in this same run
	 * (0.3 s against 0.5 s, plus whatever a busy machine adds to both). */
	check(water.began < grind.ended && grind.began < water.ended,
	      "the grinder ran over +%.3f..+%.3f s and the kettle over "
	      "+%.3f..+%.3f s: one after the other, not at once",
	      secs(start, grind.began), secs(start, grind.ended),
	      secs(start, water.began), secs(start, water.ended));
	check(conc_s < 0.9 * seq_s,
	      "the concurrent coffee took %.3f s, not much less than the "
	      "%.3f s of the slow way",
	      conc_s, seq_s);
}

/* --- 2. create a task now, await it later -------------------------------- */

/* A download started in the background: its URL, and what it measured and
 * produced, read by main after the join. Results bigger than an int travel
 * through the argument, as coev_fn's contract says. */
struct download {
	const char *url;
	coev_time_t began, ended;
	char body[64];
};

/* async def fetch_data(): pretend the network takes 0.2 s. Returns the
 * length of the body it "received". */
static int fetch_data(void *arg)
{
	struct download *d = arg;
	int r;

	d->began = coev_now();
	say("Fetching %s ...", d->url);
	if ((r = coev_sleep(COEV_MSEC(200))) < 0)
		return r;
	snprintf(d->body, sizeof d->body, "Data from %s", d->url);
	d->ended = coev_now();
	say("... got %zu bytes", strlen(d->body));
	return (int)strlen(d->body);
}

/* task = create_task(fetch_data()); do other work; result = await task —
 * and show with timestamps that the task ran during the other work. */
static void create_then_await(void)
{
	static const char *const chores[] = {"wiping the counter",
					     "stacking the cups",
					     "greeting a customer"};
	struct download d = {"http://example.com/", 0, 0, ""};
	coev_task_t *t;
	coev_time_t start, work_done, end;
	int r, ret;

	section("2. Create a task now, await it later",
		"main starts fetch_data() as a task and does not wait for "
		"it: it does three\n50 ms chores first and only then joins "
		"the task (`result = await task`).\n");
	start = coev_now();
	if ((r = coev_spawn_named("fetch", fetch_data, &d, &t)) < 0) {
		failed("coev_spawn", r);
		return;
	}
	say("Task created; on with other work meanwhile");
	for (size_t i = 0; i < sizeof chores / sizeof chores[0]; i++) {
		say("Other work: %s", chores[i]);
		if ((r = coev_sleep(COEV_MSEC(50))) < 0) {
			failed("coev_sleep", r);
			(void)coev_join(t, NULL); /* already failing */
			return;
		}
	}
	work_done = coev_now();
	say("Chores done; now awaiting the task");
	if ((r = coev_join(t, &ret)) < 0) {
		failed("coev_join", r);
		return;
	}
	end = coev_now();
	if (!check(ret >= 0, "fetch_data failed: %s", coev_strerror(ret)))
		return;
	say("Result: \"%s\"", d.body);

	printf("\n  The task ran over +%.3f..+%.3f s, main's chores over "
	       "+0.000..+%.3f s.\n"
	       "  It started when main first paused (its first coev_sleep), "
	       "as an asyncio task\n  starts at main's first await. The "
	       "await itself waited only %.3f s:\n  %.3f s in all, not "
	       "%.3f s one after the other.\n",
	       secs(start, d.began), secs(start, d.ended),
	       secs(start, work_done), secs(work_done, end), secs(start, end),
	       0.2 + secs(start, work_done));
	check(ret == (int)strlen(d.body), "fetch_data returned %d", ret);
	check(d.began < work_done,
	      "the task did not start until main's chores were done");
	/* Overlapped: well under the chores and the fetch one after the
	 * other, as measured in this run (about 0.2 s against 0.35 s). */
	check(secs(start, end) <
		      0.9 * (secs(start, work_done) + secs(d.began, d.ended)),
	      "create-then-await took %.3f s, not much less than the chores "
	      "and the fetch one after the other (%.3f s)",
	      secs(start, end),
	      secs(start, work_done) + secs(d.began, d.ended));
}

/* --- 3. gather with failures --------------------------------------------- */

/* A pretend web site: how slowly it answers, whether it refuses
 * connections, and what a fetch of it should return: its page size, or
 * the error the fetch must fail with. */
struct site {
	const char *host;
	int latency_ms;
	bool refuses;
	int expect;
};

/* One fetch in flight: its site, the client's timeout, and what it
 * measured. */
struct fetch {
	const struct site *site;
	coev_time_t timeout;
	coev_time_t took;
};

#define CLIENT_TIMEOUT_MS 250

/* async def fetch(url): a refused connection fails at once, a server slower
 * than the client's timeout fails when the timeout expires, any other
 * returns the page size after its latency. Failures are plain negative
 * return values — coev's "exceptions". */
static int fetch_url(void *arg)
{
	struct fetch *f = arg;
	const struct site *s = f->site;
	coev_time_t start = coev_now();
	int r, result;

	say("GET http://%s/", s->host);
	if (s->refuses) {
		r = coev_sleep(COEV_MSEC(10)); /* the RST comes back fast */
		result = -ECONNREFUSED;
	} else if (COEV_MSEC(s->latency_ms) > f->timeout) {
		r = coev_sleep(f->timeout);
		result = -ETIMEDOUT;
	} else {
		r = coev_sleep(COEV_MSEC(s->latency_ms));
		result = s->expect; /* the page size */
	}
	if (r < 0)
		return r;
	f->took = coev_now() - start;
	if (result < 0)
		say("failed: %s", coev_strerror(result));
	else
		say("200 OK, %d bytes", result);
	return result;
}

/* asyncio.gather(*[fetch(u) for u in urls], return_exceptions=True): every
 * fetch runs at once, and each one's own status comes back in rets[]. */
static void fetch_all(void)
{
	static const struct site sites[] = {
		{"example.com", 120, false, 1256},
		{"example.org", 80, false, 1256},
		{"example.net", 0, true, -ECONNREFUSED},
		{"news1.com", 200, false, 48210},
		{"news2.com", 900, false, -ETIMEDOUT},
		{"news3.com", 150, false, 31877},
	};
	enum { N = sizeof sites / sizeof sites[0], EXPECT_FAILED = 2 };
	struct fetch fetches[N];
	coev_task_t *tasks[N];
	int rets[N], r, nfailed;
	size_t n;
	coev_time_t start;
	double total_s, sum_s = 0;

	section("3. Fetching many URLs, some of which fail",
		"Six fetches start at once; example.net refuses the "
		"connection and news2.com\nanswers after 0.9 s, past the "
		"client's 0.25 s timeout. coev_gather waits for\nall of them "
		"and keeps each task's own result, like asyncio.gather(...,\n"
		"return_exceptions=True): one failure does not hide the "
		"others.\n");
	start = coev_now();
	for (n = 0; n < N; n++) {
		fetches[n] = (struct fetch){&sites[n],
					    COEV_MSEC(CLIENT_TIMEOUT_MS), 0};
		r = coev_spawn_named(sites[n].host, fetch_url, &fetches[n],
				     &tasks[n]);
		if (r < 0) {
			failed("coev_spawn", r);
			break;
		}
	}
	nfailed = coev_gather(tasks, n, rets);
	total_s = secs(start, coev_now());
	if (nfailed < 0) {
		failed("coev_gather", nfailed);
		return;
	}
	if (n < N)
		return;

	printf("\n  coev_gather returned %d, the number of failed tasks. "
	       "Each task's own result:\n\n",
	       nfailed);
	for (n = 0; n < N; n++) {
		const struct site *s = &sites[n];
		double took = secs(0, fetches[n].took);

		sum_s += took;
		if (rets[n] >= 0)
			printf("    http://%-13s %.3f s  ok, %d bytes\n",
			       s->host, took, rets[n]);
		else
			printf("    http://%-13s %.3f s  error %d: %s\n",
			       s->host, took, rets[n], coev_strerror(rets[n]));
		check(rets[n] == s->expect,
		      "the fetch of %s returned %d (%s), expected %d", s->host,
		      rets[n], coev_strerror(rets[n]), s->expect);
	}
	printf("\n  Six fetches that waited %.3f s in all finished in %.3f "
	       "s, the slowest one.\n",
	       sum_s, total_s);
	check(nfailed == EXPECT_FAILED,
	      "coev_gather counted %d failures, expected %d", nfailed,
	      EXPECT_FAILED);
	/* At once: far less than the fetches' own waits added up (about
	 * 0.25 s against 0.8 s), both measured in this run. */
	check(total_s < 0.6 * sum_s,
	      "the six fetches took %.3f s, not much less than the %.3f s "
	      "they waited in all",
	      total_s, sum_s);
}

/* --- 4. fork-join over every worker -------------------------------------- */

#define FIB_N 20
#define LEAF_ROUNDS 4000

/* Leaves of the fib tree counted per worker, parents that woke up on a
 * different worker than the one they started on, and a checksum of the
 * leaves' work. Relaxed atomics: only the totals matter, read after the
 * root task is joined. */
static atomic_ulong leaves_on[COEV_WORKERS_MAX];
static atomic_ulong parents_moved;
static atomic_ullong leaf_checksum;

/* A leaf's "little arithmetic": LEAF_ROUNDS steps of a xorshift generator,
 * some microseconds of CPU so that the tree is worth spreading over the
 * workers (with bare fib leaves the whole tree takes a few milliseconds,
 * over before a second worker has woken up), and a value the checksum
 * uses to prove that every leaf ran exactly once. */
static unsigned long long leaf_work(int n)
{
	unsigned long long x = 0x9e3779b97f4a7c15ull + (unsigned)n;

	for (int i = 0; i < LEAF_ROUNDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

/* fib(n) the plain way, on one thread: the baseline time, and the calls,
 * leaves and checksum that the task tree must reproduce. */
static int fib_plain(int n, unsigned long *calls, unsigned long *leaves,
		     unsigned long long *sum)
{
	++*calls;
	if (n < 2) {
		++*leaves;
		*sum += leaf_work(n);
		return n;
	}
	return fib_plain(n - 1, calls, leaves, sum) +
	       fib_plain(n - 2, calls, leaves, sum);
}

/* fib(n) as a task: a leaf does its work and notes which worker ran it;
 * any other call spawns both halves as tasks and gathers them. The
 * children's arguments live on this task's stack, which outlives them
 * because it joins them. */
static int fib_task(void *arg)
{
	const int n = *(const int *)arg;
	int kids[2] = {n - 1, n - 2}, rets[2], r, w;
	coev_task_t *t[2];

	w = coev_worker_id();
	if (n < 2) {
		atomic_fetch_add_explicit(&leaf_checksum, leaf_work(n),
					  memory_order_relaxed);
		if (w >= 0 && w < COEV_WORKERS_MAX)
			atomic_fetch_add_explicit(&leaves_on[w], 1,
						  memory_order_relaxed);
		return n;
	}
	if ((r = coev_spawn(fib_task, &kids[0], &t[0])) < 0)
		return r;
	if ((r = coev_spawn(fib_task, &kids[1], &t[1])) < 0) {
		(void)coev_join(t[0], NULL); /* r is the error to report */
		return r;
	}
	r = coev_gather(t, 2, rets);
	if (r < 0)
		return r;
	if (coev_worker_id() != w)
		atomic_fetch_add_explicit(&parents_moved, 1,
					  memory_order_relaxed);
	if (r > 0)
		return rets[0] < 0 ? rets[0] : rets[1];
	return rets[0] + rets[1];
}

/* Copy every worker's counters into st[0..n); false if one can't be read. */
static bool snapshot(coev_rt_t *rt, unsigned n, coev_worker_stats_t *st)
{
	int r;

	for (unsigned i = 0; i < n; i++)
		if ((r = coev_rt_worker_stats(rt, i, &st[i])) < 0) {
			failed("coev_rt_worker_stats", r);
			return false;
		}
	return true;
}

/* Print the per-worker counter deltas of the fib run; sum[] gets the
 * column totals (leaves, finished, polls, stolen, steal ops, stacks). */
static void print_worker_table(unsigned nw, const coev_worker_stats_t *before,
			       const coev_worker_stats_t *after,
			       unsigned long sum[6])
{
	printf("\n  What each worker did during the tree (deltas of "
	       "coev_rt_worker_stats):\n\n"
	       "    worker   leaves   finished    polls   stolen  steal ops  "
	       "new stacks\n");
	for (unsigned i = 0; i < nw; i++) {
		unsigned long d[6] = {
			i < COEV_WORKERS_MAX ? atomic_load(&leaves_on[i]) : 0,
			after[i].finished - before[i].finished,
			after[i].polls - before[i].polls,
			after[i].stolen - before[i].stolen,
			after[i].steal_ops - before[i].steal_ops,
			after[i].stacks_mapped - before[i].stacks_mapped};

		printf("    %6u %8lu %10lu %8lu %8lu %10lu %11lu\n", i, d[0],
		       d[1], d[2], d[3], d[4], d[5]);
		for (int k = 0; k < 6; k++)
			sum[k] += d[k];
	}
	printf("     total %8lu %10lu %8lu %8lu %10lu %11lu\n", sum[0], sum[1],
	       sum[2], sum[3], sum[4], sum[5]);
	printf("\n  leaves: fib(0) and fib(1) calls run there "
	       "(coev_worker_id()); finished: tasks\n  that ended there; "
	       "polls: times a task was resumed there; stolen: tasks taken\n"
	       "  from another worker's queue, in `steal ops` batches; new "
	       "stacks: coroutine\n  stacks mapped (every other task reused "
	       "a pooled one).\n");
}

/* Run fib(FIB_N) once plainly and once as a tree of tasks, and show from
 * the workers' own counters how the tree spread over every worker. */
static void fork_join(void)
{
	coev_rt_t *rt = coev_rt_current();
	unsigned nw = coev_rt_workers(rt), idle = 0;
	coev_worker_stats_t *before = NULL, *after = NULL;
	unsigned long calls = 0, leaves = 0, sum[6] = {0};
	unsigned long long expect_sum = 0;
	int root_n = FIB_N, expect, ret, r;
	coev_task_t *root;
	coev_time_t start;
	double plain_s, tree_s;

	section("4. Fork-join on every core",
		"asyncio runs every task on one thread. coev has a worker "
		"thread per CPU and an\nidle worker steals queued tasks "
		"from a busy one. Here fib(20) is computed with\nevery call "
		"spawning both halves as tasks and joining them: a tree of "
		"21,891\ntasks whose 10,946 leaves each do a few microseconds "
		"of arithmetic.\n");
	if (!check(rt != NULL && nw > 0, "coev_rt_current() gave no runtime"))
		return;
	start = coev_now();
	expect = fib_plain(FIB_N, &calls, &leaves, &expect_sum);
	plain_s = secs(start, coev_now());
	say("Plain recursion: fib(%d) = %d in %.3f s", FIB_N, expect, plain_s);

	before = calloc(nw, sizeof *before);
	after = calloc(nw, sizeof *after);
	if (!check(before && after, "out of memory"))
		goto out;
	for (unsigned i = 0; i < nw && i < COEV_WORKERS_MAX; i++)
		atomic_store(&leaves_on[i], 0);
	atomic_store(&parents_moved, 0);
	atomic_store(&leaf_checksum, 0);

	if (!snapshot(rt, nw, before))
		goto out;
	start = coev_now();
	if ((r = coev_spawn_named("fib", fib_task, &root_n, &root)) < 0) {
		failed("coev_spawn", r);
		goto out;
	}
	if ((r = coev_join(root, &ret)) < 0) {
		failed("coev_join", r);
		goto out;
	}
	tree_s = secs(start, coev_now());
	if (!snapshot(rt, nw, after))
		goto out;
	if (!check(ret >= 0, "the fib tree failed: %s (%d)", coev_strerror(ret),
		   ret))
		goto out;
	say("Task tree:       fib(%d) = %d in %.3f s", FIB_N, ret, tree_s);
	if (nw > 1)
		printf("\n  The tree ran %.1fx as fast as plain recursion on "
		       "one worker (how much faster\n  depends on what else "
		       "the machine is running).\n",
		       plain_s / tree_s);
	else
		printf("\n  With a single worker the tree cannot beat plain "
		       "recursion: there is no one\n  to share with, and it "
		       "pays for %lu spawns (COEV_WORKERS=1?).\n",
		       calls);

	print_worker_table(nw, before, after, sum);
	printf("  %lu of the %lu parent tasks woke from their join on "
	       "another worker than they\n  started on: a task can move "
	       "whenever it is queued.\n",
	       (unsigned long)atomic_load(&parents_moved), calls - leaves);
	for (unsigned i = 0; i < nw && i < COEV_WORKERS_MAX; i++)
		if (atomic_load(&leaves_on[i]) == 0)
			idle++;

	check(ret == expect, "fib(%d) came out as %d, expected %d", FIB_N, ret,
	      expect);
	check(sum[0] == leaves, "%lu leaves were counted, expected %lu", sum[0],
	      leaves);
	check(atomic_load(&leaf_checksum) == expect_sum,
	      "the leaves' checksum is %#llx, expected %#llx",
	      (unsigned long long)atomic_load(&leaf_checksum), expect_sum);
	check(sum[1] == calls, "the workers finished %lu tasks, expected %lu",
	      sum[1], calls);
	if (nw > 1 && (idle > 0 || sum[3] == 0))
		printf("\n  NOTE: %u worker(s) ran no leaf and %lu tasks were "
		       "stolen; was the machine busy?\n",
		       idle, sum[3]);
out:
	free(before);
	free(after);
}

/* --- the tour ------------------------------------------------------------ */

/* asyncio.run(main()): the first task of the runtime runs the sections in
 * order and returns the number of failed checks. */
static int tour_main(void *arg)
{
	coev_rt_t *rt = coev_rt_current();

	(void)arg;
	tour.t0 = coev_now();
	printf("coev tour: asyncio's examples as C coroutines.\n"
	       "The runtime has %u worker thread%s. Each line shows the time "
	       "since the tour\nstarted, the worker that printed it, and the "
	       "name of the task that printed it.\n",
	       coev_rt_workers(rt), coev_rt_workers(rt) == 1 ? "" : "s");
	coffee_shop();
	create_then_await();
	fetch_all();
	fork_join();
	rule("The end");
	printf("\nTour finished in %.3f s ", since_start());
	if (atomic_load(&tour.problems) == 0)
		printf("and every check passed.\n");
	else
		printf("with %d failed check(s).\n",
		       atomic_load(&tour.problems));
	return atomic_load(&tour.problems);
}

/* Set up the runtime's configuration and run the whole tour in one
 * coev_run; the exit status is what a smoke test needs. */
int main(void)
{
	coev_config_t cfg;
	int r;

	/* Line-buffered, so the narration and any error on stderr come out
	 * in order even when piped. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"tour: COEV_WORKERS or COEV_STACK_SIZE is "
			"malformed (%s); using the defaults\n",
			coev_strerror(r));
	r = coev_run(tour_main, NULL, &cfg);
	if (r < 0) {
		fprintf(stderr, "tour: coev_run failed: %s (%d)\n",
			coev_strerror(r), r);
		return EXIT_FAILURE;
	}
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
