/* SPDX-License-Identifier: MIT */
/*
 * tests/observe/test_metrics.c — a runtime's metrics (include/coev/debug.h,
 * observe/metrics.c): coev_rt_stats, coev_rt_worker_stats and the
 * Prometheus text of coev_rt_metrics.
 *
 * What is checked:
 *   - after a known workload on 2 workers (tasks that yield, sleepers,
 *     blocking-pool jobs), the totals count exactly what ran, the
 *     per-worker figures add up to the totals, busy plus idle time is the
 *     workers' lifetime, and idle workers have parked;
 *   - the gauges while tasks wait: armed timers while tasks sleep, fd
 *     waits while tasks read empty pipes, live tasks, and all back to 0
 *     once the waits end;
 *   - coev_rt_metrics' text parsed by the reference parser, Debian's
 *     python3-prometheus-client (tests/observe/prom_parse.py, run as
 *     /usr/bin/python3, which also refuses what that parser would let
 *     through: samples without HELP and TYPE, a family in two groups or
 *     with two HELP lines, labels other than worker, timestamps, values
 *     that are not finite or negative, names not prefixed coev_, counters
 *     not named _total), and its values equal to coev_rt_stats /
 *     coev_rt_worker_stats read right after;
 *   - snprintf semantics (the needed length, truncation with a NUL, no
 *     byte written past len) and -EINVAL for bad arguments.
 *
 * Design choices. Counters are compared while the runtime idles, where
 * only the time figures move (busy time is derived from the clock), and
 * again after coev_rt_shutdown, when the workers have stopped and every
 * figure but busy time is frozen; so the comparisons are exact without
 * retries. Timing checks are bounds from clocks read around the calls
 * (busy + idle lies between the inner and outer elapsed times), never
 * speed assertions. Waits for a state (timers armed, workers parked) poll
 * with a generous guard instead of sleeping a fixed time; so does the
 * wait for alive == 0 after the last join, because the joiner may return
 * a moment before the ended task leaves the live count (task_finish in
 * sched/task.c wakes the joiner first). The workload task is spawned
 * from the test thread: it is counted as finished on a worker but as
 * spawned by none, and in the runtime's alive but in no worker's share
 * (it counts among the tasks spawned from outside); the checks spell
 * that out.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <math.h>

#define WORKERS 2

/* ---- helpers ------------------------------------------------------------ */

/* A runtime with WORKERS workers whose blocking threads outlive the test
 * (so the pool's gauges stay put while they are compared). */
static coev_rt_t *new_rt(void)
{
	coev_config_t cfg = tu_config(WORKERS);
	coev_rt_t *rt = NULL;

	cfg.blocking_idle = COEV_SEC(120);
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	return rt;
}

/* The per-worker figures of rt added up (alive is a long). */
static void sum_workers(const coev_rt_t *rt, coev_worker_stats_t *sum,
			long *alive)
{
	memset(sum, 0, sizeof *sum);
	*alive = 0;
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t w;

		assert_int_equal(coev_rt_worker_stats(rt, i, &w), 0);
		sum->polls += w.polls;
		sum->unparks += w.unparks;
		sum->busy_ns += w.busy_ns;
		sum->idle_ns += w.idle_ns;
		sum->local_depth += w.local_depth;
		sum->lifo += w.lifo;
		sum->inbox_depth += w.inbox_depth;
		sum->timers += w.timers;
		sum->fds += w.fds;
		sum->spawned += w.spawned;
		sum->finished += w.finished;
		sum->stolen += w.stolen;
		sum->steal_ops += w.steal_ops;
		sum->parks += w.parks;
		sum->inject_pops += w.inject_pops;
		*alive += w.alive;
	}
}

/* Polls (from the test thread) until pred(rt, arg) holds; fails after the
 * guard. */
static void await(coev_rt_t *rt, int (*pred)(coev_rt_t *, long), long arg,
		  const char *what)
{
	coev_time_t dl = tu_guard();

	while (!pred(rt, arg)) {
		if (coev_now() > dl)
			fail_msg("still not true after %d s: %s", TU_GUARD_S,
				 what);
		tu_nap_ms(1);
	}
}

static int alive_is(coev_rt_t *rt, long n)
{
	coev_rt_stats_t st;

	assert_int_equal(coev_rt_stats(rt, &st), 0);
	return st.alive == n;
}

static int timers_are(coev_rt_t *rt, long n)
{
	coev_rt_stats_t st;

	assert_int_equal(coev_rt_stats(rt, &st), 0);
	return st.timers == (uint64_t)n;
}

static int fds_are(coev_rt_t *rt, long n)
{
	coev_rt_stats_t st;

	assert_int_equal(coev_rt_stats(rt, &st), 0);
	return st.fds == (uint64_t)n;
}

/* Every worker has parked at least once. */
static int all_parked(coev_rt_t *rt, long unused)
{
	(void)unused;
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t w;

		assert_int_equal(coev_rt_worker_stats(rt, i, &w), 0);
		if (w.parks == 0 || w.idle_ns == 0)
			return 0;
	}
	return 1;
}

/* ---- a known workload ----------------------------------------------------- */

#define LEAVES TU_SCALE(400, 200, 100)
#define LEAF_YIELDS 3
#define SLEEPERS 8
#define JOBS 3

typedef struct workload {
	atomic_int leaf_runs; /* leaf bodies that reached their end */
	atomic_int jobs;      /* blocking jobs run */
} workload_t;

static int leaf(void *arg)
{
	workload_t *wl = arg;

	for (int k = 0; k < LEAF_YIELDS; k++)
		TU_CHECK_EQ(coev_yield(), 0);
	atomic_fetch_add(&wl->leaf_runs, 1);
	return 0;
}

static int short_sleeper(void *arg)
{
	(void)arg;
	return coev_sleep(COEV_MSEC(2));
}

static int job(void *arg)
{
	workload_t *wl = arg;

	atomic_fetch_add(&wl->jobs, 1);
	tu_nap_ms(1);
	return 7;
}

/* LEAVES tasks that yield LEAF_YIELDS times, SLEEPERS short sleepers,
 * JOBS blocking jobs one after another, then two idle sleeps. */
static int workload_main(void *arg)
{
	enum { N = LEAVES + SLEEPERS };
	coev_task_t **t = calloc(N, sizeof *t);
	int *rets = calloc(N, sizeof *rets);
	int ret = -1;

	TU_CHECK(t && rets);
	if (!t || !rets) {
		free(t);
		free(rets);
		return -ENOMEM;
	}
	for (int i = 0; i < N; i++)
		TU_CHECK_EQ(coev_spawn(i < LEAVES ? leaf : short_sleeper, arg,
				       &t[i]),
			    0);
	TU_CHECK_EQ(coev_gather(t, N, rets), 0);
	for (int i = 0; i < N; i++)
		TU_CHECK_EQ(rets[i], 0);
	for (int j = 0; j < JOBS; j++) {
		TU_CHECK_EQ(coev_blocking(job, arg, COEV_FOREVER, &ret), 0);
		TU_CHECK_EQ(ret, 7);
	}
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(5)), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(5)), 0);
	free(t);
	free(rets);
	return 0;
}

/* Runs the workload as a task spawned from this thread (so one task came
 * from outside the workers) and joins it. */
static void run_workload(coev_rt_t *rt, workload_t *wl)
{
	coev_task_t *t;
	int ret = -1;

	assert_int_equal(coev_rt_spawn(rt, "workload", workload_main, wl, &t),
			 0);
	assert_int_equal(coev_join_dl(t, tu_guard(), &ret), 0);
	assert_int_equal(ret, 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&wl->leaf_runs), LEAVES);
	assert_int_equal(atomic_load(&wl->jobs), JOBS);
}

static void test_metrics_totals_after_known_workload(void **state)
{
	workload_t wl = {0};
	coev_rt_stats_t st, st2;
	coev_worker_stats_t sum;
	coev_time_t t0, t1, t2, t3;
	long alive_sum;
	coev_rt_t *rt;

	(void)state;
	t0 = coev_now();
	rt = new_rt();
	t1 = coev_now();
	run_workload(rt, &wl);
	/* The joiner may return a moment before the ended task leaves the
	 * live count: wait for it rather than read once. */
	await(rt, alive_is, 0, "alive == 0 after the workload was joined");
	await(rt, all_parked, 0, "every worker parked and idled");

	/* Counters that cannot move while the runtime idles. */
	t2 = coev_now();
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	sum_workers(rt, &sum, &alive_sum);
	t3 = coev_now();
	assert_int_equal(st.workers, WORKERS);
	/* Spawned counts spawns by tasks; the workload task came from this
	 * thread, so it ended (finished) without being spawned by one. */
	assert_int_equal(st.spawned, LEAVES + SLEEPERS);
	assert_int_equal(st.finished, LEAVES + SLEEPERS + 1);
	assert_int_equal(st.alive, 0);
	assert_true(st.polls >=
		    (uint64_t)LEAVES * (LEAF_YIELDS + 1) + 2 * SLEEPERS + 1);
	assert_true(st.stolen >= st.steal_ops);
	assert_true(st.inject_pops >= 1); /* the workload task */
	assert_true(st.parks >= WORKERS);
	assert_true(st.idle_ns > 0);
	assert_int_equal(st.local_depth, 0);
	assert_int_equal(st.lifo, 0);
	assert_int_equal(st.inbox_depth, 0);
	assert_int_equal(st.inject_depth, 0);
	assert_int_equal(st.timers, 0);
	assert_int_equal(st.fds, 0);

	assert_int_equal(sum.spawned, st.spawned);
	assert_int_equal(sum.finished, st.finished);
	assert_int_equal(sum.polls, st.polls);
	assert_int_equal(sum.stolen, st.stolen);
	assert_int_equal(sum.steal_ops, st.steal_ops);
	assert_int_equal(sum.inject_pops, st.inject_pops);
	assert_int_equal(sum.local_depth, st.local_depth);
	assert_int_equal(sum.lifo, st.lifo);
	assert_int_equal(sum.inbox_depth, st.inbox_depth);
	assert_int_equal(sum.timers, st.timers);
	assert_int_equal(sum.fds, st.fds);
	/* A worker's alive is the tasks its tasks spawned that have not
	 * ended; the one task from outside (still alive here or not) is in
	 * no worker's share. */
	assert_int_equal(alive_sum, 0);

	/* Busy plus idle is each worker's time since coev_rt_new: between
	 * the elapsed times measured inside and outside the calls (1 ms of
	 * slack for the clocks' granularity). */
	assert_true(st.busy_ns + st.idle_ns + COEV_MSEC(1) >=
		    (uint64_t)WORKERS * (uint64_t)(t2 - t1));
	assert_true(st.busy_ns + st.idle_ns <=
		    (uint64_t)WORKERS * (uint64_t)(t3 - t0) + COEV_MSEC(1));
	for (unsigned i = 0; i < WORKERS; i++) {
		coev_worker_stats_t w;

		assert_int_equal(coev_rt_worker_stats(rt, i, &w), 0);
		assert_true(w.parks > 0);
		assert_true(w.idle_ns > 0);
		assert_true(w.busy_ns + w.idle_ns <=
			    (uint64_t)(coev_now() - t0) + COEV_MSEC(1));
	}

	/* The blocking pool: its threads stay (blocking_idle is long). */
	assert_true(st.blocking_threads >= 1);
	assert_true(st.blocking_idle <= st.blocking_threads);
	assert_int_equal(st.blocking_queued, 0);
	assert_int_equal(st.blocking_run, JOBS);

	/* After the shutdown every figure but the time ones is frozen. */
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	assert_int_equal(coev_rt_stats(rt, &st2), 0);
	sum_workers(rt, &sum, &alive_sum);
	assert_int_equal(st2.alive, 0);
	assert_int_equal(alive_sum, 0);
	assert_int_equal(st2.spawned, st.spawned);
	assert_int_equal(st2.finished, st.finished);
	assert_int_equal(st2.polls, st.polls);
	assert_int_equal(sum.parks, st2.parks);
	assert_int_equal(sum.unparks, st2.unparks);
	assert_int_equal(sum.idle_ns, st2.idle_ns);
	assert_true(st2.parks >= st.parks);
	print_message(
		"workload: %llu polls, %llu stolen in %llu steals, "
		"%llu parks, %llu unparks, busy %.1f ms, idle %.1f ms\n",
		(unsigned long long)st2.polls, (unsigned long long)st2.stolen,
		(unsigned long long)st2.steal_ops,
		(unsigned long long)st2.parks, (unsigned long long)st2.unparks,
		(double)st2.busy_ns / 1e6, (double)st2.idle_ns / 1e6);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- gauges while tasks wait ------------------------------------------- */

#define LONG_SLEEPERS 10
#define READERS 5

static int long_sleeper(void *arg)
{
	atomic_int *started = arg;

	atomic_fetch_add(started, 1);
	return coev_sleep(COEV_SEC(10));
}

typedef struct reader {
	int fd;
	ssize_t got;
	char c;
} reader_t;

static int pipe_reader(void *arg)
{
	reader_t *r = arg;

	r->got = coev_read(r->fd, &r->c, 1, COEV_FOREVER);
	return 0;
}

/* Reads the totals 10 times, 1 ms apart: field stays v. */
#define STEADY(rt, field, v)                                         \
	do {                                                         \
		for (int i_ = 0; i_ < 10; i_++) {                    \
			coev_rt_stats_t s_;                          \
			assert_int_equal(coev_rt_stats(rt, &s_), 0); \
			assert_int_equal(s_.field, v);               \
			tu_nap_ms(1);                                \
		}                                                    \
	} while (0)

static void test_metrics_gauges_count_waiting_tasks(void **state)
{
	coev_rt_t *rt = new_rt();
	coev_task_t *t[LONG_SLEEPERS], *rtask[READERS];
	reader_t rd[READERS];
	int fds[READERS][2];
	atomic_int started = 0;
	coev_rt_stats_t st;
	coev_worker_stats_t sum;
	long alive_sum;
	int ret;

	(void)state;
	/* Sleepers on timers: one armed timer each, wherever they run. */
	for (int i = 0; i < LONG_SLEEPERS; i++)
		assert_int_equal(coev_rt_spawn(rt, "sleeper", long_sleeper,
					       &started, &t[i]),
				 0);
	assert_int_equal(tu_thread_wait_at_least(&started, LONG_SLEEPERS), 0);
	await(rt, timers_are, LONG_SLEEPERS, "every sleeper's timer armed");
	STEADY(rt, timers, LONG_SLEEPERS);
	STEADY(rt, alive, LONG_SLEEPERS);
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	sum_workers(rt, &sum, &alive_sum);
	assert_int_equal(sum.timers, LONG_SLEEPERS);
	assert_int_equal(st.fds, 0);
	assert_int_equal(st.spawned, 0); /* all from this thread */
	for (int i = 0; i < LONG_SLEEPERS; i++)
		assert_int_equal(coev_cancel(t[i]), 0);
	for (int i = 0; i < LONG_SLEEPERS; i++) {
		assert_int_equal(coev_join_dl(t[i], tu_guard(), &ret), 0);
		assert_int_equal(ret, -ECANCELED);
	}
	/* Each sleeper took its timer down before it ended. */
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	assert_int_equal(st.timers, 0);
	await(rt, alive_is, 0, "alive == 0 after the sleepers were joined");

	/* Readers of empty pipes: one fd wait each and, waiting forever,
	 * no timer. */
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(pipe2(fds[i], O_NONBLOCK | O_CLOEXEC), 0);
		rd[i] = (reader_t){.fd = fds[i][0], .got = -1};
		assert_int_equal(coev_rt_spawn(rt, "reader", pipe_reader,
					       &rd[i], &rtask[i]),
				 0);
	}
	await(rt, fds_are, READERS, "every reader's fd wait armed");
	STEADY(rt, fds, READERS);
	STEADY(rt, alive, READERS);
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	sum_workers(rt, &sum, &alive_sum);
	assert_int_equal(sum.fds, READERS);
	assert_int_equal(st.timers, 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(write(fds[i][1], "x", 1), 1);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(coev_join_dl(rtask[i], tu_guard(), &ret), 0);
		assert_int_equal(ret, 0);
		assert_int_equal(rd[i].got, 1);
		assert_int_equal(rd[i].c, 'x');
	}
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	assert_int_equal(st.fds, 0);
	assert_int_equal(st.timers, 0);
	await(rt, alive_is, 0, "alive == 0 after the readers were joined");
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	assert_int_equal(st.finished, LONG_SLEEPERS + READERS);
	coev_rt_free(rt);
	for (int i = 0; i < READERS; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	tu_assert_no_failures();
}

/* ---- the Prometheus text ------------------------------------------------ */

#define PROM_FAMILIES 64
#define PROM_SAMPLES 512
#define PROM_NAME 64

typedef struct prom_family {
	char name[PROM_NAME];
	char type[8]; /* "counter" or "gauge" */
	int help, samples;
} prom_family_t;

typedef struct prom_sample {
	char name[PROM_NAME];
	int worker; /* the worker label, or -1 without one */
	double value;
} prom_sample_t;

typedef struct prom {
	prom_family_t fam[PROM_FAMILIES];
	size_t nfam;
	prom_sample_t smp[PROM_SAMPLES];
	size_t nsmp;
} prom_t;

static prom_family_t *family(prom_t *pr, const char *name)
{
	for (size_t i = 0; i < pr->nfam; i++)
		if (strcmp(pr->fam[i].name, name) == 0)
			return &pr->fam[i];
	return NULL;
}

/* The parser's script, next to this file. */
static void script_path(char *buf, size_t size)
{
	const char *slash = strrchr(__FILE__, '/');
	int dir = slash ? (int)(slash - __FILE__) : 0;

	snprintf(buf, size, "%.*s%sprom_parse.py", dir, __FILE__,
		 slash ? "/" : "");
	if (access(buf, R_OK) != 0)
		fail_msg("%s is missing (run the test from the source tree)",
			 buf);
}

/* Runs prom_parse.py on text (through a file in a private directory)
 * and returns its output, or fails the test with the parser's message. */
static char *run_parser(const char *text)
{
	char dir[128], path[160], script[256], cmd[512], *out = NULL;
	size_t cap = 0, len = 0, n;
	FILE *f, *p;
	int status;

	script_path(script, sizeof script);
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/metrics.txt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0 && fclose(f) == 0, 1);
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 2>&1", script,
		 path);
	p = popen(cmd, "r");
	assert_non_null(p);
	do {
		out = realloc(out, cap += 4096);
		assert_non_null(out);
		n = fread(out + len, 1, cap - len - 1, p);
		len += n;
	} while (n > 0);
	out[len] = '\0';
	status = pclose(p);
	tu_rmtree(dir);
	if (status != 0)
		fail_msg("the Prometheus parser rejects the text (exit %d): "
			 "%s\n%s",
			 status, out, text);
	return out;
}

/* "F name type help": a family, in the order of the text. */
static void add_family(prom_t *pr, const char *name, const char *type,
		       const char *line)
{
	prom_family_t *f;

	if (!type || strlen(name) >= PROM_NAME || strlen(type) >= 8)
		fail_msg("the parser's report: a bad family line: %s", line);
	assert_true(pr->nfam < PROM_FAMILIES);
	f = &pr->fam[pr->nfam++];
	strcpy(f->name, name);
	strcpy(f->type, type);
	f->help = 1;
}

/* "S name worker value": a sample of the last family. */
static void add_sample(prom_t *pr, const char *name, const char *worker,
		       const char *value, unsigned workers, const char *line)
{
	prom_family_t *f = pr->nfam ? &pr->fam[pr->nfam - 1] : NULL;
	prom_sample_t *s;
	char *end;

	if (!f || !value || strcmp(f->name, name) != 0)
		fail_msg("the parser's report: a stray sample: %s", line);
	assert_true(pr->nsmp < PROM_SAMPLES);
	s = &pr->smp[pr->nsmp++];
	strcpy(s->name, name);
	s->worker = -1;
	if (strcmp(worker, "-") != 0) {
		s->worker = (int)strtol(worker, &end, 10);
		if (end == worker || *end || s->worker < 0 ||
		    (unsigned)s->worker >= workers)
			fail_msg("no such worker: %s", line);
	}
	s->value = strtod(value, &end);
	if (end == value || *end != '\0')
		fail_msg("the parser's report: a bad value: %s", line);
	f->samples++;
}

/*
 * Parses text with the reference parser: prom_parse.py runs
 * prometheus_client's and refuses what it would let through or what coev
 * does not write (see the script: samples without HELP and TYPE, a family
 * in two groups, labels other than worker, timestamps, values that are
 * not finite or negative, names not prefixed coev_, counters not named
 * _total and gauges that are), and pr is filled from its report. A text
 * the script refuses fails the test with its message. Checked here: the
 * text ends with a newline and has no empty line (the parser skips them).
 */
static void prom_parse(const char *text, prom_t *pr, unsigned workers)
{
	size_t len = strlen(text);
	char *out, *line, *save = NULL;

	memset(pr, 0, sizeof *pr);
	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	if (strstr(text, "\n\n") || text[0] == '\n')
		fail_msg("an empty line in the text");
	out = run_parser(text);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char copy[512], *f[4] = {NULL}, *fs = NULL;
		int k = 0;

		snprintf(copy, sizeof copy, "%s", line);
		for (char *t = strtok_r(line, "\t", &fs); t && k < 4;
		     t = strtok_r(NULL, "\t", &fs))
			f[k++] = t;
		if (k >= 2 && strcmp(f[0], "F") == 0)
			add_family(pr, f[1], f[2], copy);
		else if (k == 4 && strcmp(f[0], "S") == 0)
			add_sample(pr, f[1], f[2], f[3], workers, copy);
		else
			fail_msg("the parser's report: %s", copy);
	}
	free(out);
}

/* The value of name (with worker label w, or -1 for none); fails when
 * the sample is missing. */
static double prom_value(const prom_t *pr, const char *name, int w)
{
	for (size_t i = 0; i < pr->nsmp; i++)
		if (strcmp(pr->smp[i].name, name) == 0 &&
		    pr->smp[i].worker == w)
			return pr->smp[i].value;
	fail_msg("no sample %s{worker=%d}", name, w);
	return 0;
}

/* The per-worker series and the field each shows. */
enum { F_COUNT, F_PARKS, F_TIME, F_LONG };

static const struct {
	const char *name;
	size_t off;
	int kind; /* F_COUNT exact; F_PARKS exact once frozen; F_TIME
		   * nanoseconds shown as seconds; F_LONG a signed count */
} per_worker[] = {
#define W(name, field, kind)                                     \
	{                                                        \
		name, offsetof(coev_worker_stats_t, field), kind \
	}
	W("coev_tasks_spawned_total", spawned, F_COUNT),
	W("coev_tasks_finished_total", finished, F_COUNT),
	W("coev_polls_total", polls, F_COUNT),
	W("coev_steals_total", stolen, F_COUNT),
	W("coev_steal_operations_total", steal_ops, F_COUNT),
	W("coev_parks_total", parks, F_PARKS),
	W("coev_unparks_total", unparks, F_PARKS),
	W("coev_inject_pops_total", inject_pops, F_COUNT),
	W("coev_local_queue_depth", local_depth, F_COUNT),
	W("coev_lifo_slot_depth", lifo, F_COUNT),
	W("coev_inbox_depth", inbox_depth, F_COUNT),
	W("coev_busy_seconds_total", busy_ns, F_TIME),
	W("coev_idle_seconds_total", idle_ns, F_TIME),
	W("coev_timers_armed", timers, F_COUNT),
	W("coev_fd_waits_armed", fds, F_COUNT),
	W("coev_tasks_alive", alive, F_LONG),
	W("coev_stacks_mapped_total", stacks_mapped, F_PARKS),
	W("coev_stacks_pooled", stacks_pooled, F_PARKS),
	W("coev_stacks_unguarded_total", stacks_unguarded, F_COUNT),
#undef W
};

#define N_PER_WORKER (sizeof per_worker / sizeof per_worker[0])
/* The runtime-wide series (checked one by one in check_values). */
#define N_RUNTIME 8

/* Renders rt's metrics into a fresh buffer (freed by the caller). */
static char *render(coev_rt_t *rt)
{
	int need = coev_rt_metrics(rt, NULL, 0);
	/* Room to spare: the time figures may print longer a moment later. */
	size_t len = (size_t)need + 256;
	char *buf = malloc(len);
	int n;

	assert_true(need > 0);
	assert_non_null(buf);
	n = coev_rt_metrics(rt, buf, len);
	assert_true(n > 0 && (size_t)n < len);
	assert_int_equal(strlen(buf), (size_t)n);
	return buf;
}

/* One per-worker sample against the stats of that worker read after it. */
static void check_sample(const char *name, unsigned i, int kind, double v,
			 const coev_worker_stats_t *w, size_t off, int frozen)
{
	const char *p = (const char *)w + off;
	double x = kind == F_LONG ? (double)*(const long *)(const void *)p
				  : (double)*(const uint64_t *)(const void *)p;

	if (kind == F_TIME) {
		/* Shown as seconds; busy time grows even after a shutdown,
		 * idle time while a worker sleeps. */
		x *= 1e-9;
		if (frozen && strcmp(name, "coev_idle_seconds_total") == 0) {
			if (v != x)
				fail_msg("%s{worker=\"%u\"} is %.17g, the "
					 "stats say %.17g",
					 name, i, v, x);
		} else if (!(v > 0 && v <= x)) {
			fail_msg("%s{worker=\"%u\"} is %.17g, the stats "
				 "read after it %.17g",
				 name, i, v, x);
		}
		return;
	}
	if (kind == F_PARKS && !frozen) {
		/* An idle worker's doorbell may still ring (a late notify):
		 * the text is never ahead of the stats read after it. */
		if (v > x)
			fail_msg("%s{worker=\"%u\"} is %.17g > %.17g", name, i,
				 v, x);
		return;
	}
	if (v != x)
		fail_msg("%s{worker=\"%u\"} is %.17g, the stats say %.17g",
			 name, i, v, x);
}

/*
 * Checks the text against the stats read right after it. frozen: the
 * workers have stopped, so parks, unparks and idle time are exact too;
 * busy time only grows. external: tasks spawned from outside the workers
 * and still alive (they count in the runtime's alive, in no worker's
 * share).
 */
static void check_values(coev_rt_t *rt, const prom_t *pr, int frozen,
			 long external)
{
	coev_worker_stats_t ws[WORKERS];
	coev_rt_stats_t st;
	double alive_sum = 0;

	for (unsigned i = 0; i < WORKERS; i++)
		assert_int_equal(coev_rt_worker_stats(rt, i, &ws[i]), 0);
	assert_int_equal(coev_rt_stats(rt, &st), 0);
	/* Every family is accounted for. */
	assert_int_equal(pr->nfam, N_PER_WORKER + N_RUNTIME);
	for (size_t k = 0; k < N_PER_WORKER; k++) {
		const prom_family_t *f =
			family((prom_t *)pr, per_worker[k].name);

		if (!f)
			fail_msg("no family %s", per_worker[k].name);
		assert_int_equal(f->samples, WORKERS);
		for (unsigned i = 0; i < WORKERS; i++)
			check_sample(per_worker[k].name, i, per_worker[k].kind,
				     prom_value(pr, per_worker[k].name, (int)i),
				     &ws[i], per_worker[k].off, frozen);
	}
	for (unsigned i = 0; i < WORKERS; i++)
		alive_sum += prom_value(pr, "coev_tasks_alive", (int)i);
	assert_true(alive_sum == (double)(st.alive - external));
	assert_true(prom_value(pr, "coev_workers", -1) == st.workers);
	assert_true(prom_value(pr, "coev_runtime_tasks_alive", -1) ==
		    (double)st.alive);
	assert_true(prom_value(pr, "coev_inject_queue_depth", -1) ==
		    (double)st.inject_depth);
	assert_true(prom_value(pr, "coev_stuck_worker_wakes_total", -1) ==
		    (double)st.stuck_kicks);
	assert_true(prom_value(pr, "coev_blocking_threads", -1) ==
		    st.blocking_threads);
	assert_true(prom_value(pr, "coev_blocking_threads_idle", -1) ==
		    st.blocking_idle);
	assert_true(prom_value(pr, "coev_blocking_queue_depth", -1) ==
		    (double)st.blocking_queued);
	assert_true(prom_value(pr, "coev_blocking_jobs_total", -1) ==
		    (double)st.blocking_run);
}

static void test_metrics_prometheus_text(void **state)
{
	coev_rt_t *rt = new_rt();
	workload_t wl = {0};
	prom_t *pr = malloc(sizeof *pr);
	char *text;

	(void)state;
	assert_non_null(pr);
	run_workload(rt, &wl);
	await(rt, alive_is, 0, "alive == 0 after the workload was joined");
	await(rt, all_parked, 0, "every worker parked and idled");

	text = render(rt);
	prom_parse(text, pr, WORKERS);
	check_values(rt, pr, 0, 0);
	/* Counts that the workload fixes. */
	assert_true(prom_value(pr, "coev_runtime_tasks_alive", -1) == 0);
	assert_true(prom_value(pr, "coev_blocking_jobs_total", -1) == JOBS);
	assert_true(prom_value(pr, "coev_workers", -1) == WORKERS);
	assert_true(prom_value(pr, "coev_tasks_spawned_total", 0) +
			    prom_value(pr, "coev_tasks_spawned_total", 1) ==
		    LEAVES + SLEEPERS);
	assert_true(prom_value(pr, "coev_tasks_finished_total", 0) +
			    prom_value(pr, "coev_tasks_finished_total", 1) ==
		    LEAVES + SLEEPERS + 1);
	free(text);

	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	text = render(rt);
	prom_parse(text, pr, WORKERS);
	check_values(rt, pr, 1, 0);
	free(text);
	free(pr);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- snprintf semantics and bad arguments -------------------------------- */

static void test_metrics_snprintf_semantics(void **state)
{
	coev_rt_t *rt = new_rt();
	coev_rt_stats_t st;
	coev_worker_stats_t ws;
	char small[32], *full, *buf;
	int need, n, complete = 0;

	(void)state;
	assert_int_equal(coev_rt_metrics(NULL, small, sizeof small), -EINVAL);
	assert_int_equal(coev_rt_metrics(NULL, NULL, 0), -EINVAL);
	assert_int_equal(coev_rt_stats(NULL, &st), -EINVAL);
	assert_int_equal(coev_rt_stats(rt, NULL), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 99, &ws), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, WORKERS, &ws), -EINVAL);

	full = render(rt);

	/* len L+1 gives the whole text. The busy and idle figures change
	 * between calls and may print a digit longer or shorter, so the
	 * length is asked again until one call finds the text as long as
	 * the one before said; whatever happens the result is snprintf's:
	 * strlen(buf) == min(returned, len - 1). */
	for (int tries = 0; tries < 1000 && !complete; tries++) {
		need = coev_rt_metrics(rt, NULL, 0);
		assert_true(need > 0);
		buf = malloc((size_t)need + 1);
		assert_non_null(buf);
		n = coev_rt_metrics(rt, buf, (size_t)need + 1);
		assert_true(n > 0);
		assert_int_equal(strlen(buf), (size_t)(n < need ? n : need));
		if (n == need) {
			complete = 1;
			assert_int_equal(buf[need - 1], '\n');
			assert_int_equal(buf[need], '\0');
		}
		free(buf);
	}
	assert_true(complete);

	/* A small buffer: a NUL-terminated prefix, nothing written past
	 * len, and the needed length returned. */
	memset(small, 'Z', sizeof small);
	n = coev_rt_metrics(rt, small, 10);
	assert_true(n > 100);
	assert_int_equal(strlen(small), 9);
	assert_memory_equal(small, full, 9);
	for (size_t i = 10; i < sizeof small; i++)
		assert_int_equal(small[i], 'Z');

	/* len 1: only the NUL; len 0 with a buffer: nothing written. */
	memset(small, 'Z', sizeof small);
	n = coev_rt_metrics(rt, small, 1);
	assert_true(n > 100);
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], 'Z');
	memset(small, 'Z', sizeof small);
	n = coev_rt_metrics(rt, small, 0);
	assert_true(n > 100);
	assert_int_equal(small[0], 'Z');

	free(full);
	coev_rt_free(rt);
}

/* ---- a worker's alive is a gauge ------------------------------------------ */

#define MOVERS 48

static atomic_int movers_moved, movers_go;

/* Spawned on worker 0, runs and ends on worker 1. */
static int mover(void *arg)
{
	(void)arg;
	TU_CHECK_EQ(coev_pin_to(1), 0);
	atomic_fetch_add(&movers_moved, 1);
	TU_CHECK_EQ(tu_wait_at_least(&movers_go, 1), 0);
	return 0;
}

static int movers_main(void *arg)
{
	coev_rt_t *rt = arg;
	coev_task_t *t[MOVERS];
	coev_worker_stats_t w0, w1;
	int rets[MOVERS];

	TU_CHECK_EQ(coev_pin_to(0), 0);
	for (int i = 0; i < MOVERS; i++)
		TU_CHECK_EQ(coev_spawn(mover, NULL, &t[i]), 0);
	TU_CHECK_EQ(tu_wait_at_least(&movers_moved, MOVERS), 0);
	/* All alive on worker 1, all spawned by a task on worker 0. */
	TU_CHECK_EQ(coev_rt_worker_stats(rt, 0, &w0), 0);
	TU_CHECK_EQ(coev_rt_worker_stats(rt, 1, &w1), 0);
	TU_CHECK_EQ(w0.alive, MOVERS);
	TU_CHECK_EQ(w1.alive, 0);
	atomic_store(&movers_go, 1);
	TU_CHECK_EQ(coev_gather(t, MOVERS, rets), 0);
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

/* Proves: a worker's alive figure (coev_worker_stats_t.alive, the
 * coev_tasks_alive{worker} gauge) counts the tasks spawned on that worker
 * and not yet ended, wherever they end: MOVERS tasks spawned on worker 0
 * that end on worker 1 leave both at 0, never one at +MOVERS and the
 * other at -MOVERS (a gauge that went negative). */
static void test_metrics_worker_alive_is_a_gauge(void **state)
{
	coev_rt_t *rt = new_rt();
	prom_t *pr = malloc(sizeof *pr);
	coev_worker_stats_t w[WORKERS];
	coev_task_t *t;
	int ret = -1;
	char *text;

	(void)state;
	assert_non_null(pr);
	atomic_store(&movers_moved, 0);
	atomic_store(&movers_go, 0);
	assert_int_equal(coev_rt_spawn(rt, "main", movers_main, rt, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 0);
	await(rt, alive_is, 0, "alive == 0 after the movers were joined");
	assert_int_equal(coev_rt_worker_stats(rt, 0, &w[0]), 0);
	assert_int_equal(coev_rt_worker_stats(rt, 1, &w[1]), 0);
	if (w[0].alive != 0 || w[1].alive != 0)
		fail_msg("alive %ld on worker 0, %ld on worker 1 after every "
			 "task ended",
			 w[0].alive, w[1].alive);
	text = render(rt);
	prom_parse(text, pr, WORKERS);
	for (unsigned i = 0; i < WORKERS; i++)
		assert_true(prom_value(pr, "coev_tasks_alive", (int)i) == 0);
	free(text);
	free(pr);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_metrics_totals_after_known_workload),
		TU_FD_TEST(test_metrics_gauges_count_waiting_tasks),
		TU_FD_TEST(test_metrics_prometheus_text),
		TU_FD_TEST(test_metrics_snprintf_semantics),
		TU_FD_TEST(test_metrics_worker_alive_is_a_gauge),
	};

	unsetenv("COEV_TRACE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
