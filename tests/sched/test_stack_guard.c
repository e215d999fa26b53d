/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_stack_guard.c — stack guards (sched/stack.c): a frame
 * larger than the stack and deep recursion of large frames die with a
 * message naming the task and its function, a neighbour task's stack
 * stays intact, a stack taken after a trim gave stacks back is guarded,
 * 200,000 live stacks all have guards without running out of kernel
 * mappings, and a runtime freed with tasks parked frees them.
 *
 * Each test asserts the promise of the mechanism in use (regions: the
 * library's probe and COEV_STACK_GUARD, tu_stack_guard_regions). With
 * guard regions, stacks are slots of arenas; in the fallback, each stack
 * is a mapping of its own with an mprotect'ed guard up to the
 * vm.max_map_count budget, and unguarded (counted) past it. main runs the
 * suite again with the fallback forced (tu_rerun_fallback), so both are
 * tested on any kernel.
 *
 * The death tests run in children (tu_run_in_child) with one worker, so
 * that the stacks are taken one after another: carved upwards from one
 * arena, or, in the fallback, mapped downwards by mmap.
 */
#include "tests/testutil.h"

#include "sched/internal.h"
#include "sched/sched.h"

#define STACK_BYTES (256 * 1024)

/* Guard regions (1) or the fallback (0): set by main. */
static int regions;

static coev_config_t child_config(void)
{
	coev_config_t cfg;

	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 1;
	cfg.stack_size = STACK_BYTES;
	return cfg;
}

/* The child died of its overflow, with a message naming the task, its
 * function and (when given) the function that faulted. */
static void expect_named_death(tu_child_t *res, const char *task,
			       const char *fn, const char *at)
{
	int died = tu_child_signaled(res, SIGSEGV);
#if defined(COEV_ASAN)
	/* ASan's own handler may end the process with exit status 1. */
	died = died ||
	       (WIFEXITED(res->status) && WEXITSTATUS(res->status) != 0);
#endif
	int named = strstr(res->out, "stack overflow") != NULL &&
		    strstr(res->out, task) != NULL &&
		    strstr(res->out, fn) != NULL &&
		    (!at || strstr(res->out, at) != NULL);
	if (!died || !named || res->timed_out)
		tu_child_dump(res);
	assert_false(res->timed_out);
	assert_true(died);
	assert_true(named);
}

/* ---- a frame larger than the stack -------------------------------------- */

#define BIG_ARRAY (300 * 1024)

static TU_NOINLINE int big_array_task(void *arg)
{
	volatile char big[BIG_ARRAY];

	/* Written from the bottom up, as a careless program would. */
	for (size_t i = 0; i < sizeof big; i += 512)
		big[i] = (char)i;
	return big[(uintptr_t)arg % sizeof big];
}

static int big_array_main(void *arg)
{
	coev_task_t *t;
	int r = 0;

	(void)arg;
	if (coev_spawn_named("big-array", big_array_task, NULL, &t) != 0)
		return -1;
	coev_join(t, &r);
	return -2; /* not reached: the overflow kills the process */
}

static void run_big_array(void *arg)
{
	coev_config_t cfg = child_config();

	(void)arg;
	int rc = coev_run(big_array_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no overflow detected\n", rc);
}

static void test_stack_guard_names_big_frame(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(run_big_array, NULL, res), 0);
	expect_named_death(res, "big-array", "big_array_task", NULL);
	free(res);
}

/* ---- recursion with ~150 KB frames -------------------------------------- */

#define FRAME_BYTES (150 * 1000)

static volatile int stop_recursing;

static TU_NOINLINE int large_frames(int depth)
{
	volatile char frame[FRAME_BYTES];

	frame[0] = (char)depth;
	frame[FRAME_BYTES - 1] = (char)depth;
	if (stop_recursing)
		return depth;
	int r = large_frames(depth + 1);
	/* Work after the call: no tail call, the frames stay. */
	return r + frame[0] + frame[FRAME_BYTES - 1];
}

static int recurse_task(void *arg)
{
	(void)arg;
	return large_frames(0);
}

static int recurse_main(void *arg)
{
	coev_task_t *t;
	int r = 0;

	(void)arg;
	if (coev_spawn_named("frame-recurser", recurse_task, NULL, &t) != 0)
		return -1;
	coev_join(t, &r);
	return -2;
}

static void run_recurse(void *arg)
{
	coev_config_t cfg = child_config();

	(void)arg;
	int rc = coev_run(recurse_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no overflow detected\n", rc);
}

static void test_stack_guard_names_large_frame_recursion(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(run_recurse, NULL, res), 0);
	expect_named_death(res, "frame-recurser", "recurse_task",
			   "large_frames");
	free(res);
}

/* ---- a neighbour's stack stays intact ----------------------------------- */

/*
 * Two neighbours take their stacks just before and just after the
 * overflowing task, so that one of them lies right below its guard:
 * the one before when stacks are carved upwards from an arena, the one
 * after in the fallback, where mmap places each new mapping below the
 * last (valgrind's address space manager may place them upwards). Each
 * puts a canary near its top. The overflowing task's frame is larger than
 * its stack and its guard together: written from the bottom up without
 * probes, it would overwrite the canary below before reaching the guard.
 * A SIGSEGV handler installed over coev's checks the canaries at the
 * fault, says whether the frame would have covered one, and hands the
 * fault to coev's handler.
 */
#define CANARY_BYTES 4096
#define CANARY_BYTE 0xc5
#define HUGE_FRAME (400 * 1024)

static coev_event_t canary_ready[2] = {COEV_EVENT_INIT, COEV_EVENT_INIT};
static coev_event_t overflower_ready = COEV_EVENT_INIT;
static coev_event_t overflow_go = COEV_EVENT_INIT;
static coev_event_t never = COEV_EVENT_INIT;
static unsigned char *volatile canary_at[2];
static volatile uintptr_t huge_top; /* near the top of the overflower */
static struct sigaction coev_segv;

static int neighbour_task(void *arg)
{
	unsigned char canary[CANARY_BYTES];
	uintptr_t i = (uintptr_t)arg;

	memset(canary, CANARY_BYTE, sizeof canary);
	canary_at[i] = canary;
	coev_event_set(&canary_ready[i]);
	coev_event_wait(&never);
	return canary[i];
}

static TU_NOINLINE int huge_frame(uintptr_t seed)
{
	volatile char frame[HUGE_FRAME];

	for (size_t i = 0; i < sizeof frame; i += 256)
		frame[i] = (char)(i + seed);
	return frame[seed % sizeof frame];
}

static int overflower_task(void *arg)
{
	volatile char mark = 0;

	huge_top = (uintptr_t)&mark;
	coev_event_set(&overflower_ready);
	if (coev_event_wait(&overflow_go) != 0)
		return -1;
	return huge_frame((uintptr_t)arg) + mark;
}

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		_exit(91);
}

static void verdict_handler(int sig, siginfo_t *si, void *uc)
{
	int intact = 1, reach = 0;

	for (int k = 0; k < 2; k++) {
		const unsigned char *c = canary_at[k];
		uintptr_t at = (uintptr_t)c;

		intact &= c != NULL;
		for (size_t i = 0; c && i < CANARY_BYTES; i++)
			intact &= c[i] == CANARY_BYTE;
		/* The frame spans [huge_top - HUGE_FRAME, huge_top): a
		 * canary below the overflower's stack and inside that span
		 * was at risk. */
		reach |= c && at < huge_top &&
			 at + CANARY_BYTES > huge_top - HUGE_FRAME;
	}
	say(intact ? "verdict: canary intact\n" : "verdict: canary broken\n");
	if (reach)
		say("verdict: canary within the frame's reach\n");
	coev_segv.sa_sigaction(sig, si, uc);
}

/* Spawns a neighbour and waits until its canary is in place. */
static int neighbour_spawn(uintptr_t i)
{
	if (coev_spawn_named("neighbour", neighbour_task, (void *)i, NULL) != 0)
		return -1;
	return coev_event_wait(&canary_ready[i]);
}

static int canary_main(void *arg)
{
	struct sigaction sa;
	coev_task_t *o;
	int r = 0;

	(void)arg;
	/* Each task has its stack once it says it is ready. */
	if (neighbour_spawn(0) != 0 ||
	    coev_spawn_named("overflower", overflower_task, NULL, &o) != 0 ||
	    coev_event_wait(&overflower_ready) != 0 || neighbour_spawn(1) != 0)
		return -1;
	/* coev's handler is installed by now (the runtime runs). */
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = verdict_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &coev_segv) != 0 ||
	    !(coev_segv.sa_flags & SA_SIGINFO))
		return -3;
	coev_event_set(&overflow_go);
	coev_join(o, &r);
	return -2;
}

static void run_canary(void *arg)
{
	coev_config_t cfg = child_config();

	(void)arg;
	int rc = coev_run(canary_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no overflow detected\n", rc);
}

static void test_stack_guard_neighbour_intact(void **state)
{
	tu_child_t *res = malloc(sizeof *res);
	bool intact, broken, reach;

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(run_canary, NULL, res), 0);
	expect_named_death(res, "overflower", "overflower_task", NULL);
	intact = strstr(res->out, "verdict: canary intact") != NULL;
	broken = strstr(res->out, "canary broken") != NULL;
	reach = strstr(res->out, "within the frame's reach") != NULL;
	if (!intact || broken || (regions && !reach))
		tu_child_dump(res);
	free(res);
	assert_true(intact);
	assert_false(broken);
	/* With guard regions the arena puts a neighbour right below the
	 * overflower's guard, so the frame would have reached it. In the
	 * fallback each stack is a mapping of its own, placed by the kernel,
	 * and other mappings (a sanitizer's, the allocator's) may lie in
	 * between: the guard catching the frame before it writes is the
	 * promise there, and the intact canaries show it. */
	if (regions)
		assert_true(reach);
}

/* ---- a stack taken after a trim is guarded ------------------------------ */

/*
 * A worker that parks trims the stacks beyond its pools (sched/stack.c).
 * With guard regions they give their pages back with MADV_DONTNEED and
 * stay on the runtime's free list, and the guard must survive that; in
 * the fallback, guarded stacks are mappings of their own and are
 * unmapped, and the next one is mapped afresh with its guard. Here the
 * pools are emptied and a task overflows the next stack (with regions,
 * the head of that free list), and a handler over coev's checks that the
 * fault lies in that stack's guard (64 KiB below its lowest byte).
 */
#define RECYCLE_BURST 400
#define GUARD_BYTES (64 * 1024)

static coev_event_t burst_go = COEV_EVENT_INIT;
static coev_event_t fillers_never = COEV_EVENT_INIT;
static coev_wg_t burst_started = COEV_WG_INIT;
static coev_wg_t fillers_started = COEV_WG_INIT;
static volatile uintptr_t recycled_lo, released_lo;
static uintptr_t burst_lo[RECYCLE_BURST];
static int burst_rets[RECYCLE_BURST];

static uintptr_t own_stack_lo(void)
{
	return (uintptr_t)coev_self()->stack->lo;
}

static int burst_task(void *arg)
{
	burst_lo[(uintptr_t)arg] = own_stack_lo();
	coev_wg_done(&burst_started);
	return coev_event_wait(&burst_go);
}

static int filler_task(void *arg)
{
	(void)arg;
	coev_wg_done(&fillers_started);
	return coev_event_wait(&fillers_never);
}

static void recycled_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, lo = recycled_lo;

	if (lo && a >= lo - GUARD_BYTES && a < lo &&
	    (!released_lo || released_lo == lo))
		say("verdict: fault in the recycled stack's guard\n");
	coev_segv.sa_sigaction(sig, si, uc);
}

/* The head of rt's free list of released stacks, and how many idle stacks
 * the pools hold before it would be reached. */
static struct coev_stack *released_head(struct coev_rt *rt, long *pooled)
{
	struct coev_stack *s;

	pthread_mutex_lock(&rt->arena_mu);
	s = rt->arena_free;
	pthread_mutex_unlock(&rt->arena_mu);
	pthread_mutex_lock(&rt->stack_mu);
	*pooled = (long)rt->stack_pool_len +
		  (long)atomic_load(&rt->workers[0]->stack_pool_len);
	pthread_mutex_unlock(&rt->stack_mu);
	return s;
}

/* How many of the burst's stacks are no longer mapped. */
static long burst_unmapped(void)
{
	unsigned char v;
	long n = 0;

	for (int i = 0; i < RECYCLE_BURST; i++)
		n += mincore((void *)burst_lo[i], 1, &v) != 0 &&
		     errno == ENOMEM;
	return n;
}

static int recycled_task(void *arg)
{
	recycled_lo = own_stack_lo();
	return big_array_task(arg);
}

static int recycle_main(void *arg)
{
	struct coev_rt *rt = coev_rt_current();
	coev_task_t *t[RECYCLE_BURST], *o;
	struct coev_stack *head = NULL;
	struct sigaction sa;
	long pooled = 0;
	int r = 0;

	(void)arg;
	coev_wg_add(&burst_started, RECYCLE_BURST);
	for (int i = 0; i < RECYCLE_BURST; i++)
		if (coev_spawn(burst_task, (void *)(uintptr_t)i, &t[i]) != 0)
			return -1;
	coev_wg_wait(&burst_started);
	coev_event_set(&burst_go);
	if (coev_gather(t, RECYCLE_BURST, burst_rets) != 0)
		return -7;
	/* Let the only worker park (it trims then, never while this task
	 * runs), until stacks were released; bounded, and the condition
	 * itself is checked. */
	for (int i = 0; i < 5000; i++) {
		coev_sleep(COEV_MSEC(1));
		head = released_head(rt, &pooled);
		if (regions ? head != NULL : pooled <= 2 * COEV_STACK_CACHE)
			break;
	}
	if (regions ? !head : head || pooled > 2 * COEV_STACK_CACHE)
		return -4;
	/* Regions: released stacks stay mapped. Fallback: every stack not
	 * pooled was unmapped (none kept without its guard). */
	if (burst_unmapped() != (regions ? 0 : RECYCLE_BURST - pooled))
		return -6;
	/* Empty the pools, so that the next stack is the released one. */
	coev_wg_add(&fillers_started, pooled);
	for (long i = 0; i < pooled; i++)
		if (coev_spawn(filler_task, NULL, NULL) != 0)
			return -1;
	coev_wg_wait(&fillers_started);
	if (released_head(rt, &pooled) != head || pooled != 0)
		return -5;
	released_lo = head ? (uintptr_t)head->lo : 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = recycled_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &coev_segv) != 0 ||
	    !(coev_segv.sa_flags & SA_SIGINFO))
		return -3;
	if (coev_spawn_named("recycled", recycled_task, NULL, &o) != 0)
		return -1;
	coev_join(o, &r);
	return -2;
}

static void run_recycle(void *arg)
{
	coev_config_t cfg = child_config();

	(void)arg;
	int rc = coev_run(recycle_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no overflow detected\n", rc);
}

static void test_stack_guard_survives_release(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(run_recycle, NULL, res), 0);
	expect_named_death(res, "recycled", "recycled_task", NULL);
	if (!strstr(res->out, "verdict: fault in the recycled stack's guard"))
		tu_child_dump(res);
	assert_non_null(strstr(res->out,
			       "verdict: fault in the recycled stack's guard"));
	free(res);
}

/* ---- many live stacks, guarded within the kernel's budget --------------- */

/*
 * With guard regions every stack is guarded and mappings stay few. In the
 * fallback each guarded stack costs two mappings, so stacks are guarded
 * up to (vm.max_map_count - 4096) / 2 live at once (sched/stack.c), and
 * those beyond go unguarded: counted in stacks_unguarded, and never
 * mentioned in the runtime's log outside debug mode; a debug runtime's
 * log mentions them once.
 */

#define LIVE_TASKS TU_SCALE(200000, 200000, 20000)
/* valgrind's address space manager tracks a bounded number of segments
 * (VG_N_SEGMENTS), and TSan needs mappings of its own for each fiber
 * (about 35,000 for 20,000 stacks) within vm.max_map_count: 20,000
 * fallback stacks of two mappings each exceed either. */
#if defined(COEV_VALGRIND) || defined(COEV_TSAN)
#define LIVE_FALLBACK 5000
#else
#define LIVE_FALLBACK LIVE_TASKS
#endif

static coev_wg_t live_started = COEV_WG_INIT;
static coev_event_t live_go = COEV_EVENT_INIT;

static int parked_task(void *arg)
{
	(void)arg;
	coev_wg_done(&live_started);
	return coev_event_wait(&live_go);
}

/* Kernel mappings of this process (/proc/self/maps lines). */
static long map_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* The fallback's budget of guarded stacks, as sched/stack.c computes it. */
static long guard_budget(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long max = 65530;

	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	return max > 2 * 4096 ? (max - 4096) / 2 : 0;
}

static atomic_int unguarded_said;

static void live_log(void *arg, const char *text)
{
	(void)arg;
	if (strstr(text, "no guard region"))
		atomic_fetch_add(&unguarded_said, 1);
}

static void stack_sums(coev_rt_t *rt, uint64_t *mapped, uint64_t *unguarded)
{
	*mapped = *unguarded = 0;
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t st;

		assert_int_equal(coev_rt_worker_stats(rt, i, &st), 0);
		*mapped += st.stacks_mapped;
		*unguarded += st.stacks_unguarded;
	}
}

static int quick_task(void *arg)
{
	(void)arg;
	return 7;
}

/* While the live tasks hold their stacks: a debug runtime's one task
 * takes a new stack, unguarded when the budget is spent (expect 1), and
 * then its log says so, once. */
static void debug_runtime_says(uint64_t expect)
{
	coev_config_t cfg = tu_config(1);
	coev_rt_t *rt = NULL;
	coev_task_t *t;
	uint64_t mapped, unguarded;
	int r = 0;

	cfg.stack_size = STACK_BYTES;
	cfg.debug = COEV_DEBUG_CHECKS;
	cfg.log = live_log;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, NULL, quick_task, NULL, &t), 0);
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(r, 7);
	stack_sums(rt, &mapped, &unguarded);
	coev_rt_free(rt);
	assert_int_equal(mapped, 1);
	assert_int_equal(unguarded, expect);
	assert_int_equal(atomic_load(&unguarded_said), expect);
}

static void test_stack_guard_many_live_stacks(void **state)
{
	long n = regions ? LIVE_TASKS : LIVE_FALLBACK;
	coev_config_t cfg = tu_config(2);
	coev_task_t **t = calloc((size_t)n, sizeof *t);
	coev_rt_t *rt = NULL;
	uint64_t mapped, unguarded, guarded;
	long maps, budget = guard_budget();

	(void)state;
	assert_non_null(t);
	cfg.stack_size = STACK_BYTES;
	cfg.log = live_log;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	coev_wg_add(&live_started, n);
	for (long i = 0; i < n; i++)
		assert_int_equal(
			coev_rt_spawn(rt, NULL, parked_task, NULL, &t[i]), 0);
	/* Every task has run up to its wait: each holds its own stack. */
	assert_int_equal(coev_wg_wait(&live_started), 0);
	stack_sums(rt, &mapped, &unguarded);
	maps = map_count();
	guarded = mapped - unguarded;
	print_message("%ld live tasks: %llu stacks, %llu unguarded, %ld "
		      "mappings (%s)\n",
		      n, (unsigned long long)mapped,
		      (unsigned long long)unguarded, maps,
		      regions ? "guard regions" : "fallback");
	assert_true(mapped >= (uint64_t)n);
	assert_true(unguarded <= mapped);
	assert_int_equal(atomic_load(&unguarded_said), 0);
	if (regions) {
		assert_int_equal(unguarded, 0);
#if !defined(COEV_TSAN)
		/* Guards inside arenas cost no mapping each: far fewer
		 * mappings than stacks (the per-stack scheme needed two per
		 * stack). TSan maps memory of its own for every fiber, so its
		 * count says nothing about coev's. */
		assert_true(maps < n / 20 + 1000);
#endif
	} else {
		/* Guarded up to the budget, the rest unguarded; each
		 * guarded stack is two mappings of its own. */
		assert_int_equal(guarded, n < budget ? n : budget);
		assert_int_equal(unguarded, (uint64_t)n - guarded);
		assert_true(n <= budget || unguarded > 0);
		assert_true(maps >= 2 * (long)guarded);
	}
	debug_runtime_says(!regions && n >= budget);

	coev_event_set(&live_go);
	for (long i = 0; i < n; i++) {
		int r = -1;

		assert_int_equal(coev_join(t[i], &r), 0);
		assert_int_equal(r, 0);
	}
	coev_rt_free(rt);
	free(t);
}

/* ---- a runtime freed with tasks parked ---------------------------------- */

/* 5,000 stacks of 256 KiB and their guards: 1.6 GB of address space, far
 * more than anything else a runtime maps. */
#define PARKED_TASKS 5000
#define PARKED_ARENA_BYTES ((long)PARKED_TASKS * STACK_BYTES)

static coev_wg_t parked_started = COEV_WG_INIT;
static coev_event_t parked_never = COEV_EVENT_INIT;
static atomic_int parked_cancelled;

static int parked_forever(void *arg)
{
	(void)arg;
	coev_wg_done(&parked_started);
	int r = coev_event_wait(&parked_never);
	if (r == -ECANCELED)
		atomic_fetch_add(&parked_cancelled, 1);
	return r;
}

/* The process's virtual size in bytes (VmSize of /proc/self/status). */
static long vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib > 0);
	return kib * 1024;
}

static void test_stack_guard_free_with_tasks_parked(void **state)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	uint64_t mapped, unguarded;
	long before = vm_size(), during, after;

	(void)state;
	cfg.stack_size = STACK_BYTES;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	coev_wg_add(&parked_started, PARKED_TASKS);
	for (long i = 0; i < PARKED_TASKS; i++)
		assert_int_equal(
			coev_rt_spawn(rt, NULL, parked_forever, NULL, NULL), 0);
	assert_int_equal(coev_wg_wait(&parked_started), 0);
	stack_sums(rt, &mapped, &unguarded);
	assert_true(mapped >= (uint64_t)PARKED_TASKS);
	assert_int_equal(unguarded, 0);
	during = vm_size();
	/* Shutdown cancels every parked task and waits for all to end;
	 * free then unmaps their arenas. ASan's and valgrind's leak checks
	 * see any heap left behind, the virtual size any arena. */
	assert_int_equal(
		coev_rt_shutdown(rt, coev_now() + COEV_SEC(TU_GUARD_S)), 0);
	coev_rt_free(rt);
	after = vm_size();
	print_message("virtual size: %ld MiB before, %ld with %d tasks "
		      "parked, %ld after the free\n",
		      before >> 20, during >> 20, PARKED_TASKS, after >> 20);
	assert_int_equal(atomic_load(&parked_cancelled), PARKED_TASKS);
	assert_true(during - before >= PARKED_ARENA_BYTES);
#if !defined(COEV_TSAN)
	/* TSan keeps the shadow and fiber memory of the freed stacks. */
	assert_true(after - before < PARKED_ARENA_BYTES / 2);
#endif
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		/* The death tests first, while the process has one thread. */
		cmocka_unit_test(test_stack_guard_names_big_frame),
		cmocka_unit_test(test_stack_guard_names_large_frame_recursion),
		cmocka_unit_test(test_stack_guard_neighbour_intact),
		cmocka_unit_test(test_stack_guard_survives_release),
		cmocka_unit_test(test_stack_guard_many_live_stacks),
		cmocka_unit_test(test_stack_guard_free_with_tasks_parked),
	};
	int rc;

	(void)argc;
	regions = tu_stack_guard_regions();
	printf("stacks guarded by %s\n",
	       regions ? "guard regions (MADV_GUARD_INSTALL)"
		       : "the fallback (a mapping per stack, then unguarded)");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return tu_rerun_fallback(argv, rc);
}
