/* SPDX-License-Identifier: MIT */
/*
 * tests/observe/test_reports.c — debug mode's reports (include/coev/debug.h,
 * observe/report.c) appear when they should, and only then: a slow task (with
 * its backtrace, then how long it ran), a failed task nobody joined, tasks
 * alive at shutdown and those that outlive its deadline, a stack used past
 * 75%, a task that ends holding a coev mutex, the SIGUSR1 dump; and none of
 * them outside debug mode but the failed task nobody joined, which is
 * reported by default unless coev_config_t.report_unjoined (or
 * COEV_UNJOINED) turns it off.
 *
 * Design choices:
 *  - Reports are captured through coev_config_t.log into a buffer guarded
 *    by a mutex (the log is called from workers, the monitor thread and
 *    the thread that frees a runtime), never by reading stderr: the text
 *    is then exact, and coev_run's own stderr line does not interfere.
 *  - Every positive case has a negative twin in the same shape, and the
 *    negative waits for what would have produced the report: the task's
 *    end is awaited through coev_rt_stats().alive reaching 0 (the live
 *    count drops after task_finish has made its reports), and the
 *    monitor's reports (slow task, SIGUSR1) through a few of its periods.
 *  - The slow-task limit is 20 ms so that a 5x run stays short; one test
 *    keeps the default (100 ms). A slow-task report measures wall time,
 *    so a worker descheduled by a loaded machine in the middle of a short
 *    run is rightly reported too. The slow-task negatives therefore
 *    bracket every run of their task between clock readings taken where
 *    it cannot run, and fail only on a report that claims more than the
 *    longest bracket (see brackets_t): no stall can make a right report
 *    fail or the test skip. Every other test sets a 10 s limit, which no
 *    stall reaches, and counts all reports exactly. Rejected: a larger
 *    limit for the negatives alone (it only makes a stall rarer), running
 *    again until a round without a stall (a loaded machine stalls every
 *    round: the test skipped), and bounding how long a run may take
 *    (speed is never asserted: a report is held to what happened).
 *  - Task bodies never end in a tail call to the function whose frame a
 *    backtrace must show, so that frame is still on the stack.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <pthread.h>
#include <stdbool.h>

#define SLOW_MS 20

/* ---- the captured log --------------------------------------------------- */

typedef struct cap {
	pthread_mutex_t mu;
	char *p; /* NUL-terminated; NULL before the first report */
	size_t n, size;
	int calls;
} cap_t;

static void cap_log(void *arg, const char *text)
{
	cap_t *c = arg;
	size_t k = strlen(text);

	pthread_mutex_lock(&c->mu);
	c->calls++;
	if (c->n + k + 1 > c->size) {
		size_t ns = c->size ? c->size : 4096;
		char *np;

		while (ns < c->n + k + 1)
			ns *= 2;
		np = realloc(c->p, ns);
		if (!np) {
			pthread_mutex_unlock(&c->mu);
			TU_CHECK(!"no memory for the captured log");
			return;
		}
		c->p = np;
		c->size = ns;
	}
	memcpy(c->p + c->n, text, k + 1);
	c->n += k;
	pthread_mutex_unlock(&c->mu);
}

static void cap_init(cap_t *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
}

static void cap_fini(cap_t *c)
{
	free(c->p);
	pthread_mutex_destroy(&c->mu);
}

/* Occurrences of needle in the log. */
static int cap_count(cap_t *c, const char *needle)
{
	int n = 0;

	pthread_mutex_lock(&c->mu);
	for (const char *s = c->p; s && (s = strstr(s, needle)) != NULL;
	     s += strlen(needle))
		n++;
	pthread_mutex_unlock(&c->mu);
	return n;
}

static int cap_calls(cap_t *c)
{
	pthread_mutex_lock(&c->mu);
	int n = c->calls;
	pthread_mutex_unlock(&c->mu);
	return n;
}

static void cap_print(cap_t *c, const char *why)
{
	pthread_mutex_lock(&c->mu);
	fprintf(stderr, "---- captured log (%s) ----\n%s---- end ----\n", why,
		c->p ? c->p : "");
	pthread_mutex_unlock(&c->mu);
}

/* From the test thread: nap until needle appears n times, up to ms. */
static void cap_wait(cap_t *c, const char *needle, int n, long ms)
{
	for (long waited = 0; waited < ms && cap_count(c, needle) < n; waited++)
		tu_nap_ms(1);
}

static void cap_expect(cap_t *c, const char *needle, int want, int at_least,
		       const char *file, int line)
{
	int got = cap_count(c, needle);

	if (at_least ? got < want : got != want) {
		cap_print(c, "on failure");
		fail_msg("%s:%d: \"%s\" occurs %d times in the log; expected "
			 "%s%d",
			 file, line, needle, got, at_least ? "at least " : "",
			 want);
	}
}

/* The log holds needle exactly n times / at least once. */
#define LOG_COUNT(c, needle, n) cap_expect(c, needle, n, 0, __FILE__, __LINE__)
#define LOG_HAS(c, needle) cap_expect(c, needle, 1, 1, __FILE__, __LINE__)

/* ---- runtimes ------------------------------------------------------------ */

static coev_config_t cap_config(cap_t *c, unsigned workers, unsigned debug)
{
	coev_config_t cfg = tu_config(workers);

	cfg.debug = debug;
	/* Tests of the slow-task report set their own limit; the others
	 * count every report, and a machine that stalls a worker for this
	 * long has other problems. */
	cfg.slow_task = COEV_SEC(10);
	cfg.log = cap_log;
	cfg.log_arg = c;
	return cfg;
}

static coev_rt_t *cap_rt_cfg(const coev_config_t *cfg)
{
	coev_rt_t *rt = NULL;

	assert_int_equal(coev_rt_new(cfg, &rt), 0);
	return rt;
}

static coev_rt_t *cap_rt(cap_t *c, unsigned workers, unsigned debug)
{
	coev_config_t cfg = cap_config(c, workers, debug);

	return cap_rt_cfg(&cfg);
}

/* From the test thread: run fn(arg) as a task named name, join it and
 * return its result. */
static int run_task(coev_rt_t *rt, const char *name, coev_fn fn, void *arg)
{
	coev_task_t *t;
	int ret = -1;

	assert_int_equal(coev_rt_spawn(rt, name, fn, arg, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	return ret;
}

/* Until every task of rt has ended (and made its reports). */
static void rt_quiet(coev_rt_t *rt)
{
	coev_rt_stats_t st;
	coev_time_t dl = tu_guard();

	for (;;) {
		assert_int_equal(coev_rt_stats(rt, &st), 0);
		if (st.alive == 0)
			return;
		assert_true(coev_now() < dl);
		tu_nap_ms(1);
	}
}

static void rt_end(coev_rt_t *rt)
{
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
}

/* Finds the task named name in rt's registries. */
static bool find_task(coev_rt_t *rt, const char *name, coev_task_info_t *out)
{
	coev_task_info_t a[64];
	int n = coev_rt_tasks(rt, a, 64);

	for (int i = 0; i < n && i < 64; i++)
		if (strcmp(a[i].name, name) == 0) {
			*out = a[i];
			return true;
		}
	return false;
}

/* From the test thread: until the task named name is parked. */
static void wait_parked(coev_rt_t *rt, const char *name)
{
	coev_task_info_t in;
	coev_time_t dl = tu_guard();

	while (!find_task(rt, name, &in) || in.state != COEV_TASK_WAITING) {
		assert_true(coev_now() < dl);
		tu_nap_ms(1);
	}
}

/* As a task: until the task named name (in the caller's runtime) is
 * parked. */
static void task_wait_parked(const char *name)
{
	coev_task_info_t in;
	coev_time_t dl = tu_guard();

	while (!find_task(coev_rt_current(), name, &in) ||
	       in.state != COEV_TASK_WAITING) {
		if (coev_now() > dl) {
			TU_CHECK_MSG(0, "%s never parked", name);
			return;
		}
		coev_sleep(COEV_MSEC(1));
	}
}

/* ---- tasks --------------------------------------------------------------- */

static int return_zero(void *arg)
{
	(void)arg;
	return 0;
}

static int return_eio(void *arg)
{
	(void)arg;
	return -EIO;
}

static int return_ecanceled(void *arg)
{
	(void)arg;
	return -ECANCELED;
}

/* Sleeps until cancelled. An hour rather than coev_sleep_until(
 * COEV_FOREVER): a sleep without a deadline parks without a wait note,
 * and dumps show it as "a bare park", not a timer. */
static int sleep_an_hour(void *arg)
{
	atomic_int *started = arg;
	int r;

	if (started)
		atomic_fetch_add(started, 1);
	r = coev_sleep(COEV_SEC(3600));
	TU_CHECK_EQ(r, -ECANCELED);
	return r;
}

/* ---- slow task ----------------------------------------------------------- */

typedef struct hog {
	coev_time_t spin; /* how long to run without suspending */
	int worker;
	uint64_t id;
} hog_t;

/*
 * The frame a slow-task backtrace must show. The backtrace is taken by the
 * worker itself, in a SIGURG handler that walks the frame-pointer chain
 * from the interrupted registers: the interrupted pc names the innermost
 * function, and the chain starts at the frame pointer, which belongs to
 * the innermost function that set up a frame. So when the signal lands
 * in a function that has none (a libc or vDSO leaf, or TSan's
 * __tsan_read4/__tsan_write4, which instrument every access to memory),
 * the function that called it is missing: a loop incrementing a volatile
 * counter showed "#0 __tsan_write4, #1 hog_task" under TSan, most of its
 * time being in __tsan_write4. Hence the loop works in registers only
 * (about 100 us a round) and calls coev_now() once a round: the signal
 * lands in this function's own code nearly always.
 *
 * Under TSan the signal is not lost either: TSan queues an asynchronous
 * signal and runs the handler at the thread's next intercepted call (here
 * the clock_gettime under coev_now(), within a round), with the registers
 * saved when it arrived, and this frame is still on the stack then; so the
 * backtrace is asserted in every build.
 */
static TU_NOINLINE void hog_spins_in_here(coev_time_t ns)
{
	coev_time_t end = coev_now() + ns;
	unsigned x = 1;

	while (coev_now() < end)
		for (unsigned i = 0; i < 100000; i++) {
			x = x * 1103515245u + 12345u;
			__asm__ volatile("" : "+r"(x));
		}
}

static int hog_task(void *arg)
{
	hog_t *h = arg;

	h->worker = coev_worker_id();
	h->id = coev_task_id(coev_self());
	hog_spins_in_here(h->spin);
	/* The run reported slow ends here. */
	TU_CHECK_EQ(coev_yield(), 0);
	return 0;
}

/* Runs a hog on a runtime made from cfg, and checks the report of its
 * run: one slow-task report naming it, its id and worker, with limit in
 * it and a backtrace through hog_spins_in_here; then, once it yielded,
 * one "suspended after about" line. The runtime is gone before the first
 * assertion, so that a failure leaves no debug runtime behind. */
static void check_hog(cap_t *c, const coev_config_t *cfg, coev_time_t spin,
		      const char *limit)
{
	hog_t h = {.spin = spin, .worker = -1};
	coev_rt_t *rt = cap_rt_cfg(cfg);
	char want[160];

	assert_int_equal(run_task(rt, "hog", hog_task, &h), 0);
	cap_wait(c, "suspended after about", 1, TU_GUARD_S * 1000L);
	/* A negative check: a few of the monitor's periods, for a second
	 * report that must not come. */
	tu_nap_ms(4 * SLOW_MS);
	rt_end(rt);
	tu_assert_no_failures();
	assert_true(h.worker >= 0);
	LOG_COUNT(c, "coev: slow task: task #", 1);
	snprintf(want, sizeof want,
		 "coev: slow task: task #%llu 'hog' has run for ",
		 (unsigned long long)h.id);
	LOG_HAS(c, want);
	snprintf(want, sizeof want,
		 " on worker %d without suspending (debug mode's limit: %s)\n",
		 h.worker, limit);
	LOG_HAS(c, want);
	LOG_COUNT(c, "suspended after about", 1);
	snprintf(want, sizeof want,
		 "coev: slow task: the task reported on worker %d suspended "
		 "after about ",
		 h.worker);
	LOG_HAS(c, want);
	LOG_COUNT(c, "(no backtrace", 0);
	LOG_COUNT(c, "  where it is now:\n    #0 ", 1);
	LOG_HAS(c, " hog_spins_in_here+0x");
	LOG_HAS(c, " hog_task+0x");
	assert_int_equal(cap_calls(c), 2);
}

static void test_reports_slow_task(void **state)
{
	cap_t c;
	coev_config_t cfg;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	cfg.slow_task = COEV_MSEC(SLOW_MS);
	check_hog(&c, &cfg, COEV_MSEC(5 * SLOW_MS), "20.0 ms");
	cap_fini(&c);
}

/* The default limit, 100 ms (coev_config_t.slow_task 0), on one worker. */
static void test_reports_slow_task_default_limit(void **state)
{
	cap_t c;
	coev_config_t cfg;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 1, COEV_DEBUG_CHECKS);
	cfg.slow_task = 0;
	check_hog(&c, &cfg, COEV_MSEC(500), "100.0 ms");
	cap_fini(&c);
}

/*
 * The negatives below must tell a library that reports a run wrongly from
 * a machine that really stalled a run: a worker thread descheduled for
 * longer than the limit in the middle of a 200 us piece makes a run that
 * long in wall time, and its report is right. So every run of the task is
 * bracketed between two clock readings taken where the task cannot be
 * running (brackets_t): for a run that follows a yield, the task's last
 * reading before that yield and its first reading after the next one; for
 * a run around a sleep, the test thread's snapshots (coev_rt_tasks) that
 * showed the task parked before and after it; the spawn before the first
 * run and the join after the last. A stall inside a run or in its switches
 * lengthens the run's bracket as much as the run, so a report may claim
 * (its "has run for") at most the longest bracket: a right report always
 * passes, however loaded the machine, and one round always concludes. A
 * sleep or yields counted as running claim the limit or more while no
 * bracket comes near it, unless the machine stalled a run that long then.
 */
typedef struct brackets {
	coev_time_t ns;	     /* how long the task goes on */
	coev_time_t lower;   /* a reading before the current run began */
	coev_time_t longest; /* the longest bracket so far */
} brackets_t;

/* A run began after b->lower and ended before upper. */
static void bracket(brackets_t *b, coev_time_t upper)
{
	if (upper - b->lower > b->longest)
		b->longest = upper - b->lower;
}

/* Two runs: one before the sleep, one after (the test thread brackets
 * them). */
static int sleep_long(void *arg)
{
	brackets_t *b = arg;

	TU_CHECK_EQ(coev_sleep(b->ns), 0);
	return 0;
}

/* Runs in 200 us pieces with a yield between, bracketing each run. */
static int yield_often(void *arg)
{
	brackets_t *b = arg;
	coev_time_t end = coev_now() + b->ns;

	while (coev_now() < end) {
		tu_spin_ns(COEV_USEC(200));
		coev_time_t before = coev_now(); /* this run goes on */
		TU_CHECK_EQ(coev_yield(), 0);
		bracket(b, coev_now()); /* the run before the yield ended */
		b->lower = before;	/* this run began after that */
	}
	return 0;
}

/* From the test thread: runs fn(b) as a task named name and joins it,
 * with b->lower its spawn time. watch: brackets its runs from outside,
 * from snapshots that show it parked (a run lies between two such, or the
 * spawn and the first, or the last and the join). Either way the last run
 * is bracketed by the join. */
static void run_bracketed(coev_rt_t *rt, const char *name, coev_fn fn,
			  brackets_t *b, bool watch)
{
	coev_time_t dl = tu_guard(), parked_before = coev_now();
	coev_task_info_t in = {.state = COEV_TASK_READY};
	coev_task_t *t;
	int ret = -1;

	b->lower = parked_before;
	assert_int_equal(coev_rt_spawn(rt, name, fn, b, &t), 0);
	while (watch) {
		coev_time_t pre = coev_now();
		assert_int_equal(tu_task_info(rt, t, &in), 1);
		coev_time_t post = coev_now();
		if (in.state == COEV_TASK_DONE)
			break;
		if (in.state == COEV_TASK_WAITING) {
			if (post - parked_before > b->longest)
				b->longest = post - parked_before;
			parked_before = pre;
		}
		assert_true(coev_now() < dl);
		tu_nap_ms(1);
	}
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 0);
	coev_time_t end = coev_now();
	if (watch) {
		if (end - parked_before > b->longest)
			b->longest = end - parked_before;
	} else {
		bracket(b, end);
	}
}

/* The durations of the captured slow-task reports ("has run for D"): the
 * longest, in ns, or -1 when there is none. */
static coev_time_t cap_longest_report(cap_t *c)
{
	static const char key[] = "has run for ";
	coev_time_t longest = -1;

	pthread_mutex_lock(&c->mu);
	for (const char *p = c->p; p && (p = strstr(p, key)) != NULL;) {
		double v;
		char unit[3] = "";

		p += sizeof key - 1;
		if (sscanf(p, "%lf %2s", &v, unit) != 2)
			continue;
		double mul = strcmp(unit, "ns") == 0   ? 1
			     : strcmp(unit, "us") == 0 ? 1e3
			     : strcmp(unit, "ms") == 0 ? 1e6
						       : 1e9;
		if ((coev_time_t)(v * mul) > longest)
			longest = (coev_time_t)(v * mul);
	}
	pthread_mutex_unlock(&c->mu);
	return longest;
}

/* Runs fn for 5x the limit in a debug runtime and checks that no slow-task
 * report claims a run longer than the longest bracket (a report is
 * printed to 0.1 ms: that much more is allowed). */
static void check_not_slow(coev_fn fn, const char *name, bool watch)
{
	coev_time_t limit = COEV_MSEC(SLOW_MS);
	brackets_t b = {.ns = 5 * limit};
	coev_config_t cfg;
	coev_rt_t *rt;
	cap_t c;

	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	cfg.slow_task = limit;
	rt = cap_rt_cfg(&cfg);
	run_bracketed(rt, name, fn, &b, watch);
	/* A few of the monitor's periods, for a report of a run that
	 * wrongly goes on after the task ended. */
	tu_nap_ms(4 * SLOW_MS);
	rt_end(rt);
	tu_assert_no_failures();
	coev_time_t claimed = cap_longest_report(&c);
	print_message("'%s': %d report(s), the longest claiming %lld ns; the "
		      "longest bracket of a run %lld ns\n",
		      name, cap_count(&c, "has run for "), (long long)claimed,
		      (long long)b.longest);
	if (claimed > b.longest + COEV_USEC(100)) {
		cap_print(&c, "on failure");
		fail_msg("a report claims a run of '%s' of %lld ns, but none "
			 "of its runs can have taken over %lld ns",
			 name, (long long)claimed, (long long)b.longest);
	}
	cap_fini(&c);
}

/* Sleeping 5x the limit is not a slow run. */
static void test_reports_slow_task_not_for_sleep(void **state)
{
	(void)state;
	check_not_slow(sleep_long, "sleeper", true);
}

/* Nor is running 5x the limit in 200 us pieces with a yield between. */
static void test_reports_slow_task_not_for_yields(void **state)
{
	(void)state;
	check_not_slow(yield_often, "yielder", false);
}

/* ---- a slow task blocked in a system call ------------------------------ */

/*
 * A task that blocks its worker in a system call (libc's sleep, nanosleep,
 * poll) is a slow run too, and is reported; but the report must not change
 * what the task sees. A signal with a handler ends nanosleep, poll and
 * epoll_wait early with EINTR, SA_RESTART or not, so the backtrace of a
 * worker blocked in the kernel is read from outside, without a signal.
 * Each call sits in a function of its own that does work after it (no
 * tail call), so the report can show who made the call.
 */
#define BLOCK_MS 300

typedef struct blocked {
	int rc[3], err[3];
	coev_time_t took[3];
} blocked_t;

static TU_NOINLINE void blocked_in_sleep(blocked_t *b)
{
	coev_time_t t0 = coev_now();

	b->rc[0] = (int)sleep(1);
	b->err[0] = errno;
	b->took[0] = coev_now() - t0;
}

static TU_NOINLINE void blocked_in_nanosleep(blocked_t *b)
{
	struct timespec ts = {0, BLOCK_MS * 1000000L}, rem;
	coev_time_t t0 = coev_now();

	b->rc[1] = nanosleep(&ts, &rem);
	b->err[1] = errno;
	b->took[1] = coev_now() - t0;
}

static TU_NOINLINE void blocked_in_poll(blocked_t *b)
{
	coev_time_t t0 = coev_now();

	b->rc[2] = poll(NULL, 0, BLOCK_MS);
	b->err[2] = errno;
	b->took[2] = coev_now() - t0;
}

/* Three runs, each blocked in one call; a yield ends each run. */
static int blocked_task(void *arg)
{
	blocked_t *b = arg;

	blocked_in_sleep(b);
	TU_CHECK_EQ(coev_yield(), 0);
	blocked_in_nanosleep(b);
	TU_CHECK_EQ(coev_yield(), 0);
	blocked_in_poll(b);
	TU_CHECK_EQ(coev_yield(), 0);
	return 0;
}

static void test_reports_slow_task_blocked_in_syscall(void **state)
{
	static const char *const what[3] = {"sleep(1)", "nanosleep(300 ms)",
					    "poll(300 ms)"};
	static const coev_time_t want[3] = {COEV_SEC(1), COEV_MSEC(BLOCK_MS),
					    COEV_MSEC(BLOCK_MS)};
	blocked_t b = {{-1, -1, -1}, {0}, {0}};
	coev_config_t cfg;
	coev_rt_t *rt;
	cap_t c;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	cfg.slow_task = COEV_MSEC(50);
	rt = cap_rt_cfg(&cfg);
	assert_int_equal(run_task(rt, "blocker", blocked_task, &b), 0);
	cap_wait(&c, "suspended after about", 3, TU_GUARD_S * 1000L);
	rt_end(rt);
	tu_assert_no_failures();
	/* Behaviour first: every call slept its whole time. sleep returns
	 * the seconds left, nanosleep and poll -1 with EINTR when cut. */
	for (int i = 0; i < 3; i++)
		if (b.rc[i] != 0 || b.took[i] < want[i]) {
			cap_print(&c, "on failure");
			fail_msg("%s in a slow task returned %d (errno %d) "
				 "after %.3f s: debug mode's report cut it "
				 "short",
				 what[i], b.rc[i], b.err[i],
				 (double)b.took[i] / 1e9);
		}
	/* Then the reports: one per blocked run, each naming the call and
	 * where the task made it. (A machine that stalls one of the short
	 * runs between the calls past the limit adds a report of its own,
	 * rightly: hence "at least" for the totals.) */
	LOG_COUNT(&c, " is blocked in system call ", 3);
	cap_expect(&c, "coev: slow task: task #", 3, 1, __FILE__, __LINE__);
	cap_expect(&c, "suspended after about", 3, 1, __FILE__, __LINE__);
	LOG_HAS(&c, "nanosleep (");
	LOG_HAS(&c, "poll (");
	LOG_HAS(&c, " blocked_in_sleep+0x");
	LOG_HAS(&c, " blocked_in_nanosleep+0x");
	LOG_HAS(&c, " blocked_in_poll+0x");
	cap_expect(&c, " blocked_task+0x", 3, 1, __FILE__, __LINE__);
	cap_fini(&c);
}

/* ---- a failed task nobody joined --------------------------------------- */

static void test_reports_unjoined_error_detached(void **state)
{
	cap_t c;
	coev_rt_t *rt;
	coev_task_t *t;
	int ret = 0;

	(void)state;
	cap_init(&c);
	rt = cap_rt(&c, 2, COEV_DEBUG_CHECKS);
	assert_int_equal(coev_rt_spawn(rt, "failer", return_eio, NULL, NULL),
			 0);
	rt_quiet(rt);
	LOG_COUNT(&c, "failed with", 1);
	LOG_HAS(&c, "'failer' failed with -5 (");
	LOG_HAS(&c, "and nobody joined it: ended detached\n");

	/* Joined: its joiner has the error. */
	assert_int_equal(coev_rt_spawn(rt, "joined", return_eio, NULL, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, -EIO);
	/* Cancelled, or returning -ECANCELED: not a failure to report. */
	assert_int_equal(
		coev_rt_spawn(rt, "cancelled", sleep_an_hour, NULL, &t), 0);
	wait_parked(rt, "cancelled");
	assert_int_equal(coev_cancel(t), 0);
	assert_int_equal(coev_detach(t), 0);
	assert_int_equal(
		coev_rt_spawn(rt, "ecanceled", return_ecanceled, NULL, NULL),
		0);
	/* Success, detached. */
	assert_int_equal(coev_rt_spawn(rt, "fine", return_zero, NULL, NULL), 0);
	rt_quiet(rt);
	rt_end(rt);
	LOG_COUNT(&c, "failed with", 1);
	assert_int_equal(cap_calls(&c), 1);
	tu_assert_no_failures();
	cap_fini(&c);
}

/* coev_detach of a handle whose task already failed reports it then. */
static void test_reports_unjoined_error_detached_after_end(void **state)
{
	cap_t c;
	coev_rt_t *rt;
	coev_task_t *t, *ok;
	char want[96];

	(void)state;
	cap_init(&c);
	rt = cap_rt(&c, 2, COEV_DEBUG_CHECKS);
	assert_int_equal(coev_rt_spawn(rt, "late", return_eio, NULL, &t), 0);
	assert_int_equal(coev_rt_spawn(rt, "late_ok", return_zero, NULL, &ok),
			 0);
	/* alive 0: both ended, their ends published (task_finish). */
	rt_quiet(rt);
	assert_int_equal(cap_calls(&c), 0);
	snprintf(want, sizeof want, "task #%llu 'late' failed with -5 (",
		 (unsigned long long)coev_task_id(t));
	assert_int_equal(coev_detach(t), 0);
	assert_int_equal(coev_detach(ok), 0);
	LOG_COUNT(&c, "failed with", 1);
	LOG_HAS(&c, want);
	LOG_HAS(&c, "and nobody joined it: detached after it ended\n");
	rt_end(rt);
	assert_int_equal(cap_calls(&c), 1);
	cap_fini(&c);
}

/* A handle never used when the runtime is freed. */
static void test_reports_unjoined_error_never_joined(void **state)
{
	cap_t c;
	coev_rt_t *rt;
	coev_task_t *t, *ok;

	(void)state;
	cap_init(&c);
	rt = cap_rt(&c, 2, COEV_DEBUG_CHECKS);
	assert_int_equal(coev_rt_spawn(rt, "orphan", return_eio, NULL, &t), 0);
	assert_int_equal(coev_rt_spawn(rt, "orphan_ok", return_zero, NULL, &ok),
			 0);
	rt_quiet(rt);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	assert_int_equal(cap_calls(&c), 0);
	coev_rt_free(rt); /* releases t and ok */
	LOG_COUNT(&c, "failed with", 1);
	LOG_HAS(&c, "'orphan' failed with -5 (");
	LOG_HAS(&c, "and nobody joined it: never joined; its runtime was "
		    "freed\n");
	assert_int_equal(cap_calls(&c), 1);
	cap_fini(&c);
}

/* ---- tasks alive at shutdown ------------------------------------------- */

typedef struct leaver {
	atomic_int started;
	int leave; /* 1: detach the two sleepers, 0: cancel and join them */
} leaver_t;

static int main_with_sleepers(void *arg)
{
	leaver_t *l = arg;
	coev_task_t *t[2];
	int rets[2];

	TU_CHECK_EQ(
		coev_spawn_named("left_a", sleep_an_hour, &l->started, &t[0]),
		0);
	TU_CHECK_EQ(
		coev_spawn_named("left_b", sleep_an_hour, &l->started, &t[1]),
		0);
	TU_CHECK_EQ(tu_wait_at_least(&l->started, 2), 0);
	task_wait_parked("left_a");
	task_wait_parked("left_b");
	if (l->leave) {
		coev_detach(t[0]);
		coev_detach(t[1]);
		return 0;
	}
	coev_cancel(t[0]);
	coev_cancel(t[1]);
	TU_CHECK_EQ(coev_gather(t, 2, rets), 2);
	return 0;
}

static void test_reports_alive_at_shutdown(void **state)
{
	cap_t c;
	coev_config_t cfg;
	static leaver_t l;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	l.leave = 1;
	atomic_store(&l.started, 0);
	assert_int_equal(coev_run(main_with_sleepers, &l, &cfg), 0);
	LOG_COUNT(&c, "coev: shutdown: ", 1);
	LOG_HAS(&c, "coev: shutdown: 2 tasks still alive, now cancelled:\n");
	LOG_HAS(&c, "'left_a': waiting on a timer due in ");
	LOG_HAS(&c, "'left_b': waiting on a timer due in ");
	/* They honoured the cancel: nothing left, nothing failed. */
	LOG_COUNT(&c, "did not end by the deadline", 0);
	LOG_COUNT(&c, "failed with", 0);
	assert_int_equal(cap_calls(&c), 1);
	cap_fini(&c);

	/* Nothing left over: no report. */
	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	l.leave = 0;
	atomic_store(&l.started, 0);
	assert_int_equal(coev_run(main_with_sleepers, &l, &cfg), 0);
	assert_int_equal(cap_calls(&c), 0);
	tu_assert_no_failures();
	cap_fini(&c);
}

static atomic_int stubborn_started;

/* Ignores cancellation: shutdown can only abandon it. It never resumes, so
 * it touches nothing after the sleep. */
static TU_NOINLINE int stubborn_sleeps_shielded(void *arg)
{
	int r;

	(void)arg;
	coev_shield_begin();
	atomic_fetch_add(&stubborn_started, 1);
	r = coev_sleep(COEV_SEC(10));
	coev_shield_end();
	return r;
}

static int main_leaves_stubborn(void *arg)
{
	(void)arg;
	TU_CHECK_EQ(coev_spawn_named("stubborn", stubborn_sleeps_shielded, NULL,
				     NULL),
		    0);
	TU_CHECK_EQ(tu_wait_at_least(&stubborn_started, 1), 0);
	task_wait_parked("stubborn");
	return 0;
}

/* coev_run also prints a line of its own on stderr for the abandoned
 * task; it is expected. */
static void test_reports_shutdown_deadline_missed(void **state)
{
	cap_t c;
	coev_config_t cfg;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 2, COEV_DEBUG_CHECKS);
	cfg.shutdown_timeout = COEV_MSEC(100);
	assert_int_equal(coev_run(main_leaves_stubborn, NULL, &cfg), 0);
	LOG_HAS(&c, "coev: shutdown: 1 task still alive, now cancelled:\n");
	LOG_COUNT(&c,
		  "coev: shutdown: 1 task did not end by the deadline "
		  "and will not run again:\ncoev: dump of runtime ",
		  1);
	LOG_COUNT(&c, "'stubborn': waiting on a timer due in ", 2);
	/* The dump's backtrace of the parked task. */
	LOG_HAS(&c, "stubborn_sleeps_shielded");
	tu_assert_no_failures();
	cap_fini(&c);
}

/* ---- stack high-water --------------------------------------------------- */

#define STACK_KIB 64

/* Recurses until the frames below top span bytes, writing a buffer in
 * every frame so that each page of the stack is touched; returns the
 * deepest frame's address. The frame address, not a local's, measures
 * depth: under ASan a local may live on a fake stack. */
static TU_NOINLINE uintptr_t stack_dig(uintptr_t top, size_t bytes, int depth)
{
	volatile char buf[1024];
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);

	for (size_t i = 0; i < sizeof buf; i += 64)
		buf[i] = (char)i;
	if (top - here < bytes && depth < 4096)
		here = stack_dig(top, bytes, depth + 1);
	buf[1] = buf[0]; /* after the call: no tail call, buf stays live */
	return here;
}

static int deep_task(void *arg)
{
	size_t bytes = *(size_t *)arg;
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);
	uintptr_t low = stack_dig(top, bytes, 0);

	TU_CHECK(top - low >= bytes);
	return 0;
}

/* The report on the task named name, which dug bytes deep: how much of
 * the stack it used, of how much. The size reported is the configured
 * one less the stack's 64-byte header (sched/stack.c), floored to KiB. */
static void check_stack_report(cap_t *c, const char *name, size_t bytes)
{
	char pat[96];
	const char *at;
	size_t used = 0, size = 0, pct = 0;

	snprintf(pat, sizeof pat, "'%s' used ", name);
	pthread_mutex_lock(&c->mu);
	at = c->p ? strstr(c->p, pat) : NULL;
	if (at)
		sscanf(at + strlen(pat), "%zu KiB of its %zu KiB stack (%zu%%)",
		       &used, &size, &pct);
	pthread_mutex_unlock(&c->mu);
	if (!at || size < STACK_KIB - 1 || size > STACK_KIB ||
	    used * 1024 < bytes || used > size || pct <= 75 ||
	    pct > used * 100 / size + 2 || pct + 2 < used * 100 / size) {
		cap_print(c, "on failure");
		fail_msg("no stack report on '%s' (or a wrong one): used %zu "
			 "KiB of %zu KiB (%zu%%)",
			 name, used, size, pct);
	}
}

/* One worker, so the same stack is reused: small, big, small, and only the
 * big one is reported. */
static void test_reports_stack_high_water(void **state)
{
	cap_t c;
	coev_config_t cfg;
	coev_rt_t *rt;
	coev_worker_stats_t ws;
	size_t small = 8 * 1024, big = 56 * 1024;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 1, COEV_DEBUG_CHECKS);
	cfg.stack_size = STACK_KIB * 1024;
	rt = cap_rt_cfg(&cfg);
	assert_int_equal(run_task(rt, "small_1", deep_task, &small), 0);
	assert_int_equal(cap_calls(&c), 0);
	assert_int_equal(run_task(rt, "big", deep_task, &big), 0);
	assert_int_equal(run_task(rt, "small_2", deep_task, &small), 0);
	assert_int_equal(run_task(rt, "small_3", deep_task, &small), 0);
	assert_int_equal(coev_rt_worker_stats(rt, 0, &ws), 0);
	rt_end(rt);
	/* One stack served all four. */
	assert_int_equal(ws.stacks_mapped, 1);
	LOG_COUNT(&c, "KiB stack (", 1);
	LOG_HAS(&c, "raise coev_config_t.stack_size or COEV_STACK_SIZE");
	check_stack_report(&c, "big", big);
	assert_int_equal(cap_calls(&c), 1);
	tu_assert_no_failures();
	cap_fini(&c);
}

/* ---- a mutex held at a task's end -------------------------------------- */

static int lock_and_leave(void *arg)
{
	coev_mutex_t *m = arg;

	TU_CHECK_EQ(coev_mutex_lock(&m[0]), 0);
	return 0;
}

static int lock_two_and_leave(void *arg)
{
	coev_mutex_t *m = arg;

	TU_CHECK_EQ(coev_mutex_lock(&m[0]), 0);
	TU_CHECK_EQ(coev_mutex_lock(&m[1]), 0);
	return 0;
}

static int lock_and_unlock(void *arg)
{
	coev_mutex_t *m = arg;

	TU_CHECK_EQ(coev_mutex_lock(&m[0]), 0);
	coev_mutex_unlock(&m[0]);
	return 0;
}

/*
 * A mutex left locked by a task that ended stays locked: only its holder
 * could unlock it, and the holder is gone. Destroying it is allowed
 * (coev_mutex_destroy: "it may still be held"), so each case takes fresh
 * mutexes and destroys them.
 */
static void test_reports_mutex_held_at_end(void **state)
{
	cap_t c;
	coev_rt_t *rt;
	coev_mutex_t m1[1] = {COEV_MUTEX_INIT}, m2[2] = {COEV_MUTEX_INIT};
	coev_mutex_t m3[1] = {COEV_MUTEX_INIT};
	char want[160];

	(void)state;
	cap_init(&c);
	rt = cap_rt(&c, 2, COEV_DEBUG_CHECKS);
	assert_int_equal(run_task(rt, "tidy", lock_and_unlock, m3), 0);
	assert_int_equal(cap_calls(&c), 0);
	assert_int_equal(run_task(rt, "leaver", lock_and_leave, m1), 0);
	snprintf(want, sizeof want,
		 "'leaver' ended holding 1 coev mutex; no other task can "
		 "take it\n");
	LOG_COUNT(&c, "ended holding", 1);
	LOG_HAS(&c, want);
	assert_int_equal(coev_mutex_trylock(&m1[0]), -EBUSY);
	assert_int_equal(run_task(rt, "leaver2", lock_two_and_leave, m2), 0);
	snprintf(want, sizeof want,
		 "'leaver2' ended holding 2 coev mutexes; no other task can "
		 "take them\n");
	LOG_HAS(&c, want);
	assert_int_equal(run_task(rt, "tidy", lock_and_unlock, m3), 0);
	rt_end(rt);
	LOG_COUNT(&c, "ended holding", 2);
	assert_int_equal(cap_calls(&c), 2);
	coev_mutex_destroy(&m1[0]);
	coev_mutex_destroy(&m2[0]);
	coev_mutex_destroy(&m2[1]);
	coev_mutex_destroy(&m3[0]);
	tu_assert_no_failures();
	cap_fini(&c);
}

/* ---- SIGUSR1 ---------------------------------------------------------- */

static int wait_event(void *arg)
{
	int r = coev_event_wait(arg);

	TU_CHECK_EQ(r, 0);
	return r;
}

static bool usr1_is_default(void)
{
	struct sigaction sa;

	assert_int_equal(sigaction(SIGUSR1, NULL, &sa), 0);
	return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

static void test_reports_sigusr1_dump(void **state)
{
	cap_t c;
	coev_rt_t *rt;
	coev_event_t ev;
	coev_task_t *t;
	coev_task_info_t in;
	char want[96];

	(void)state;
	/* Debug mode takes SIGUSR1 only when the program left it alone. */
	if (!usr1_is_default())
		skip();
	cap_init(&c);
	assert_int_equal(coev_event_init(&ev), 0);

	/* Outside debug mode SIGUSR1 is left as it is. */
	rt = cap_rt(&c, 2, 0);
	assert_int_equal(coev_rt_spawn(rt, "quiet", wait_event, &ev, &t), 0);
	wait_parked(rt, "quiet");
	assert_true(usr1_is_default());
	coev_event_set(&ev);
	assert_int_equal(coev_join(t, NULL), 0);
	rt_end(rt);
	coev_event_clear(&ev);

	rt = cap_rt(&c, 2, COEV_DEBUG_CHECKS);
	/* Its handler is in (raising SIGUSR1 at SIG_DFL would end us). */
	assert_false(usr1_is_default());
	assert_int_equal(coev_rt_spawn(rt, "usr1_waiter", wait_event, &ev, &t),
			 0);
	wait_parked(rt, "usr1_waiter");
	assert_true(find_task(rt, "usr1_waiter", &in));
	assert_int_equal(cap_calls(&c), 0);
	assert_int_equal(raise(SIGUSR1), 0);
	cap_wait(&c, "coev: SIGUSR1: ", 1, TU_SCALE(1000, 1000, 2000));
	LOG_COUNT(&c, "coev: SIGUSR1: coev: dump of runtime ", 1);
	snprintf(want, sizeof want,
		 "task #%llu 'usr1_waiter': waiting on event",
		 (unsigned long long)in.id);
	LOG_HAS(&c, want);
	coev_event_set(&ev);
	assert_int_equal(coev_join(t, NULL), 0);
	rt_end(rt);
	/* Given back when the last debug runtime went. */
	assert_true(usr1_is_default());
	assert_int_equal(cap_calls(&c), 1);
	coev_event_destroy(&ev);
	tu_assert_no_failures();
	cap_fini(&c);
}

/* ---- outside debug mode: failed tasks nobody joined ------------------- */

/* A task whose scope has a failing child: the scope takes the error. */
static int scope_with_failer(void *arg)
{
	coev_scope_t *s;

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, "scoped", return_eio, NULL), 0);
	TU_CHECK_EQ(coev_scope_close(s), -EIO);
	return 0;
}

/* Spawns the three kinds of failed task nobody joins (ended detached,
 * detached after it ended, never joined when the runtime is freed) and the
 * tasks that must never be reported (joined, -ECANCELED, success, a
 * scope's child), then frees the runtime. */
static void unjoined_cases(coev_rt_t *rt)
{
	coev_task_t *late, *orphan, *t;
	int ret = 0;

	assert_int_equal(coev_rt_spawn(rt, "failer", return_eio, NULL, NULL),
			 0);
	assert_int_equal(coev_rt_spawn(rt, "late", return_eio, NULL, &late), 0);
	assert_int_equal(coev_rt_spawn(rt, "orphan", return_eio, NULL, &orphan),
			 0);
	assert_int_equal(coev_rt_spawn(rt, "joined", return_eio, NULL, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, -EIO);
	assert_int_equal(
		coev_rt_spawn(rt, "ecanceled", return_ecanceled, NULL, NULL),
		0);
	assert_int_equal(coev_rt_spawn(rt, "fine", return_zero, NULL, NULL), 0);
	assert_int_equal(
		coev_rt_spawn(rt, "scope", scope_with_failer, NULL, NULL), 0);
	rt_quiet(rt);
	assert_int_equal(coev_detach(late), 0);
	rt_end(rt); /* orphan's handle never used */
}

/* Reported once each without debug mode, unless the configuration (or
 * COEV_UNJOINED=0) turns the report off. */
static void test_reports_unjoined_error_by_default(void **state)
{
	cap_t c;
	coev_config_t cfg;

	(void)state;
	unsetenv("COEV_UNJOINED");
	cap_init(&c);
	cfg = cap_config(&c, 2, 0);
	assert_int_equal(cfg.report_unjoined, 1);
	unjoined_cases(cap_rt_cfg(&cfg));
	LOG_COUNT(&c, "failed with", 3);
	LOG_HAS(&c, "'failer' failed with -5 (");
	LOG_HAS(&c, "and nobody joined it: ended detached\n");
	LOG_HAS(&c, "'late' failed with -5 (");
	LOG_HAS(&c, "and nobody joined it: detached after it ended\n");
	LOG_HAS(&c, "'orphan' failed with -5 (");
	LOG_HAS(&c, "and nobody joined it: never joined; its runtime was "
		    "freed\n");
	assert_int_equal(cap_calls(&c), 3);
	tu_assert_no_failures();
	cap_fini(&c);

	/* Turned off. */
	cap_init(&c);
	cfg = cap_config(&c, 2, 0);
	cfg.report_unjoined = 0;
	unjoined_cases(cap_rt_cfg(&cfg));
	assert_int_equal(cap_calls(&c), 0);
	cap_fini(&c);

	/* From the environment: 0 or 1, anything else refused (the field
	 * keeps its default). */
	setenv("COEV_UNJOINED", "0", 1);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.report_unjoined, 0);
	setenv("COEV_UNJOINED", "1", 1);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.report_unjoined, 1);
	static const char *const bad[] = {"", "2", "no", "01", "-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("COEV_UNJOINED", bad[i], 1);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		assert_int_equal(cfg.report_unjoined, 1);
	}
	setenv("COEV_UNJOINED", "0", 1);
	cap_init(&c);
	cfg = cap_config(&c, 2, 0);
	unjoined_cases(cap_rt_cfg(&cfg));
	assert_int_equal(cap_calls(&c), 0);
	cap_fini(&c);
	unsetenv("COEV_UNJOINED");
}

/* ---- outside debug mode: silence ---------------------------------------- */

static void test_reports_none_without_debug_mode(void **state)
{
	cap_t c;
	coev_config_t cfg;
	coev_rt_t *rt;
	hog_t h = {.spin = COEV_MSEC(5 * SLOW_MS)};
	coev_mutex_t m[1] = {COEV_MUTEX_INIT};
	size_t big = 56 * 1024;
	coev_task_t *t;

	(void)state;
	cap_init(&c);
	cfg = cap_config(&c, 2, 0);
	cfg.slow_task = COEV_MSEC(SLOW_MS);
	cfg.stack_size = STACK_KIB * 1024;
	cfg.report_unjoined = 0; /* on by default: see the test above */
	rt = cap_rt_cfg(&cfg);
	assert_int_equal(run_task(rt, "hog", hog_task, &h), 0);
	assert_int_equal(coev_rt_spawn(rt, "failer", return_eio, NULL, NULL),
			 0);
	assert_int_equal(coev_rt_spawn(rt, "late", return_eio, NULL, &t), 0);
	assert_int_equal(run_task(rt, "leaver", lock_and_leave, m), 0);
	assert_int_equal(run_task(rt, "big", deep_task, &big), 0);
	rt_quiet(rt);
	assert_int_equal(coev_detach(t), 0);
	assert_int_equal(coev_rt_spawn(rt, "orphan", return_eio, NULL, &t), 0);
	assert_int_equal(coev_rt_spawn(rt, "left", sleep_an_hour, NULL, NULL),
			 0);
	wait_parked(rt, "left");
	/* A negative check: a few periods in which no report may come. */
	tu_nap_ms(4 * SLOW_MS);
	rt_end(rt);
	assert_int_equal(cap_calls(&c), 0);
	coev_mutex_destroy(&m[0]);
	tu_assert_no_failures();
	cap_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reports_slow_task),
		cmocka_unit_test(test_reports_slow_task_default_limit),
		cmocka_unit_test(test_reports_slow_task_not_for_sleep),
		cmocka_unit_test(test_reports_slow_task_not_for_yields),
		cmocka_unit_test(test_reports_slow_task_blocked_in_syscall),
		cmocka_unit_test(test_reports_unjoined_error_detached),
		cmocka_unit_test(
			test_reports_unjoined_error_detached_after_end),
		cmocka_unit_test(test_reports_unjoined_error_never_joined),
		cmocka_unit_test(test_reports_alive_at_shutdown),
		cmocka_unit_test(test_reports_shutdown_deadline_missed),
		cmocka_unit_test(test_reports_stack_high_water),
		cmocka_unit_test(test_reports_mutex_held_at_end),
		cmocka_unit_test(test_reports_sigusr1_dump),
		cmocka_unit_test(test_reports_unjoined_error_by_default),
		cmocka_unit_test(test_reports_none_without_debug_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
