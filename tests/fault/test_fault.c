/* SPDX-License-Identifier: MIT */
/*
 * tests/fault/test_fault.c — allocation and resource failures on the real
 * platform, SQLite's way: every public operation that allocates or creates
 * a resource is run again and again, failing its 1st, 2nd, 3rd ... call of
 * one kind (fault.h: the heap, mmap, mprotect, pthread_create, the calls
 * that make fds, ev_loop_new), once for that call only (transient) and
 * once for it and every later one (persistent), until a run hits no
 * injected failure.
 *
 * Each run (a trial) passes when
 *   - the operation succeeded, correctly (a transient failure may have
 *     been absorbed by a fallback), or returned one of the clean errors
 *     its header documents, having done nothing;
 *   - nothing leaked once its runtime is gone: the same fds open
 *     (tu_fd_count), threads running (tu_thread_count), and heap blocks
 *     and mappings live (fault_live, through the wrappers) as before; the
 *     ASan build's LeakSanitizer checks the heap again at exit;
 *   - nothing is stuck: the task running the operation returns within
 *     STUCK_S, every task it spawned is joined or seen to end, and
 *     coev_rt_shutdown reports no task left.
 * The sweep of an operation ends with the first trial that hits nothing;
 * the calls that trial counted are the operation's sites of that kind
 * (printed at the end). Operations whose headers say they never allocate
 * are run with every call failing from the first, and must make none.
 *
 * Beside the single operations: a busy runtime (tasks on two workers
 * spawning, joining, sending, completing futures, submitting and opening
 * scopes at once) swept a few times, since its calls interleave
 * differently each run; a wait that grows a worker's fd table while
 * another task waits; and test_fault_fd_limit_rt_new, which runs
 * coev_rt_new in forked children whose RLIMIT_NOFILE leaves 0, 1, 2, ...
 * fds free: a real exhaustion, which also reaches the fds libev makes for
 * itself.
 *
 * Stacks: with guard regions (Linux 6.13) a new stack's guard is an
 * madvise, which is not wrapped, so no mprotect is made; in the fallback
 * (sched/stack.c) each stack's guard is an mprotect. main runs the suite
 * once as the library chooses and once more with COEV_STACK_GUARD=
 * mprotect (tu_rerun_fallback), where the operations that map stacks
 * must reach mprotect too (stack_kinds), so both paths meet failures.
 *
 * Task bodies record failures with TU_CHECK; the sweep checks
 * tu_assert_no_failures() after every trial.
 */
#include "tests/testutil.h"
#include "tests/fault/fault.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

/* ---- trials and sweeps -------------------------------------------------- */

#define SWEEP_MAX 2000
#define STUCK_S TU_SCALE(10, 20, 30)
#define KIND(k) (1u << (k))
#define ALL_KINDS (KIND(FAULT_KINDS) - 1)

typedef struct trial {
	enum fault_kind kind;
	long nth;
	bool persistent;
	enum fault_kind force; /* fails throughout, or FAULT_KINDS */
	coev_rt_t *rt;	       /* the runtime of in_rt() */
	unsigned workers;      /* 0: the operation's own choice */
} trial_t;

typedef struct op {
	const char *name;
	int (*run)(trial_t *tr); /* 0, or the error the operation gave */
	unsigned sites;		 /* kinds the operation must make calls of */
	unsigned never;		 /* kinds it must make no call of */
	int errs[4];		 /* its clean errors, 0-terminated */
	enum fault_kind force;	 /* for trial_t.force; 0 (FAULT_ALLOC) never */
	unsigned workers;	 /* for trial_t.workers */
} op_t;

static char trial_name[160];

/* The kinds of call a new stack makes: an mmap (its arena's, one per
 * stack here: ARENA_STACK), and in the fallback its guard's mprotect.
 * Set by main. */
static unsigned stack_kinds;

/* Sites and trials per operation and kind, for the closing table. */
#define OPS_MAX 40
static struct {
	const char *name;
	long sites[FAULT_KINDS];
	long trials[FAULT_KINDS];
	unsigned swept;
} table[OPS_MAX];
static int table_len;

static void arm(const trial_t *tr)
{
	fault_arm(tr->kind, tr->nth, tr->persistent);
	fault_force(tr->force);
}

static void disarm(void)
{
	fault_disarm();
}

/* /proc/self/task may list a joined thread for a moment longer; give the
 * count that moment. */
static int threads_settle(int want)
{
	int n = tu_thread_count();

	for (int i = 0; i < 1000 && n != want; i++) {
		tu_nap_ms(1);
		n = tu_thread_count();
	}
	return n;
}

static bool clean_error(const op_t *op, int r)
{
	for (int i = 0; i < 4 && op->errs[i]; i++)
		if (r == op->errs[i])
			return true;
	return false;
}

/* One trial; returns whether it hit an injected failure, and in *calls
 * the calls it counted. */
static bool trial(const op_t *op, enum fault_kind kind, long n, bool persistent,
		  long *calls)
{
	trial_t tr = {.kind = kind,
		      .nth = n,
		      .persistent = persistent,
		      .force = op->force ? op->force : FAULT_KINDS,
		      .workers = op->workers};
	fault_live_t before, after;
	int fds = tu_fd_count(), threads = tu_thread_count(), r;
	long hits;

	snprintf(trial_name, sizeof trial_name, "%s: %s call %ld failing (%s)",
		 op->name, fault_kind_name(kind), n,
		 persistent ? "and every later one" : "that one only");
	fault_live(&before);
	r = op->run(&tr);
	disarm();
	hits = fault_hits();
	*calls = fault_calls();
	if (atomic_load(&tu_failures))
		fprintf(stderr, "  in trial: %s (result %d)\n", trial_name, r);
	tu_assert_no_failures();
	if (r != 0 && !clean_error(op, r))
		fail_msg("%s: result %d (%s) is not a documented error",
			 trial_name, r, coev_strerror(r));
	if (hits == 0 && r != 0)
		fail_msg("%s: nothing was injected, yet the operation failed "
			 "with %d (%s)",
			 trial_name, r, coev_strerror(r));
	if (tu_fd_count() != fds) {
		tu_fd_dump(trial_name);
		fail_msg("%s: %d fds open before, %d after", trial_name, fds,
			 tu_fd_count());
	}
	if (threads_settle(threads) != threads)
		fail_msg("%s: %d threads before, %d after", trial_name, threads,
			 tu_thread_count());
	fault_live(&after);
	if (after.blocks != before.blocks || after.maps != before.maps)
		fail_msg("%s: heap blocks %ld -> %ld, mappings %ld -> %ld",
			 trial_name, before.blocks, after.blocks, before.maps,
			 after.maps);
	return hits > 0;
}

/* Fail call 1, 2, ... of kind until a trial hits nothing; returns the
 * calls that trial counted (the operation's sites of that kind). */
static long sweep(const op_t *op, enum fault_kind kind, bool persistent,
		  long *trials)
{
	long calls = 0;

	for (long n = 1; n <= SWEEP_MAX; n++) {
		++*trials;
		if (!trial(op, kind, n, persistent, &calls))
			return calls;
	}
	fail_msg("%s: %s still failing after %d trials", op->name,
		 fault_kind_name(kind), SWEEP_MAX);
	return -1;
}

/* Sweep every kind op names, transient then persistent, and check the
 * sites against op->sites and op->never. */
static void sweep_op(const op_t *op)
{
	int row = table_len < OPS_MAX ? table_len++ : OPS_MAX - 1;

	table[row].name = op->name;
	for (int k = 0; k < FAULT_KINDS; k++) {
		long sites[2];

		if (!((op->sites | op->never) & KIND(k)))
			continue;
		table[row].swept |= KIND(k);
		for (int p = 0; p < 2; p++)
			sites[p] = sweep(op, (enum fault_kind)k, p == 1,
					 &table[row].trials[k]);
		table[row].sites[k] = sites[1] > sites[0] ? sites[1] : sites[0];
		if ((op->never & KIND(k)) && table[row].sites[k] != 0)
			fail_msg("%s: made %ld %s calls; it never should",
				 op->name, table[row].sites[k],
				 fault_kind_name((enum fault_kind)k));
		if ((op->sites & KIND(k)) && table[row].sites[k] == 0)
			fail_msg("%s: made no %s call to fail", op->name,
				 fault_kind_name((enum fault_kind)k));
	}
}

/* ---- running an operation inside a runtime -------------------------------- */

typedef struct body {
	trial_t *tr;
	int (*fn)(trial_t *tr);
} body_t;

static int body_main(void *arg)
{
	body_t *b = arg;

	return b->fn(b->tr);
}

/* Stacks are carved from 32 MiB arenas (sched/stack.c), so most new stacks
 * cost no system call at all. A stack this large fills an arena of its
 * own: every new stack maps one (and allocates its record), so the stack's
 * failure sites stay reachable from every operation that runs a task. */
#define ARENA_STACK ((size_t)32 * 1024 * 1024)

/* Runs fn(tr) as the main task of a new runtime of `workers` workers
 * (made before anything is armed; fn arms around the operation), then
 * checks that it returns in time and that the runtime stops with no task
 * left. Returns fn's result. */
static int in_rt(trial_t *tr, unsigned workers, int (*fn)(trial_t *tr))
{
	coev_config_t cfg = tu_config(workers);
	body_t b = {tr, fn};
	coev_task_t *t;
	coev_rt_t *rt;
	int ret = 0, r, left;

	cfg.stack_size = ARENA_STACK;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	tr->rt = rt;
	assert_int_equal(coev_rt_spawn(rt, "op", body_main, &b, &t), 0);
	r = coev_join_dl(t, coev_deadline(COEV_SEC(STUCK_S)), &ret);
	disarm();
	if (r != 0)
		fail_msg("%s: the operation did not return within %d s (%s)",
			 trial_name, STUCK_S, coev_strerror(r));
	left = coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5)));
	coev_rt_free(rt);
	if (left != 0)
		fail_msg("%s: %d tasks still live at shutdown", trial_name,
			 left);
	return ret;
}

/* A child task: counts its run and returns 42. */
static int child(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 42;
}

/* A child that says it has started (its stack is mapped), then sleeps a
 * little, so that it is still running when its parent waits for it. */
typedef struct nap {
	atomic_int started, ran;
} nap_t;

static int napper(void *arg)
{
	nap_t *n = arg;

	atomic_fetch_add(&n->started, 1);
	coev_sleep(COEV_MSEC(2));
	atomic_fetch_add(&n->ran, 1);
	return 42;
}

/* Join t (if spawned: r == 0) and check what came back: 42 after one run,
 * or COEV_ESTACKMAP with no run (no stack could be mapped for it). Returns
 * 0 or COEV_ESTACKMAP. */
static int join_child(int r, coev_task_t *t, atomic_int *ran)
{
	int ret = 0;

	if (r != 0) {
		TU_CHECK_EQ(atomic_load(ran), 0);
		return 0;
	}
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), &ret), 0);
	if (ret == COEV_ESTACKMAP) {
		TU_CHECK_EQ(atomic_load(ran), 0);
		return ret;
	}
	TU_CHECK_EQ(ret, 42);
	TU_CHECK_EQ(atomic_load(ran), 1);
	return 0;
}

static int first_error(int a, int b)
{
	return a < 0 ? a : b;
}

/* ---- starting and stopping a runtime --------------------------------------- */

/* On each worker in turn: the worker has its alternate signal stack (the
 * stack on which a stack overflow is named). */
static int check_workers(void *arg)
{
	unsigned n = coev_rt_workers(coev_rt_current());
	stack_t ss;

	(void)arg;
	for (unsigned i = 0; i < n; i++) {
		TU_CHECK_EQ(coev_pin_to(i), 0);
		TU_CHECK_EQ(coev_worker_id(), (int)i);
		TU_CHECK_EQ(sigaltstack(NULL, &ss), 0);
		TU_CHECK_MSG(!(ss.ss_flags & SS_DISABLE) && ss.ss_sp &&
				     ss.ss_size >= 16384,
			     "worker %u runs without its alternate signal "
			     "stack",
			     i);
		TU_CHECK_EQ(coev_unpin(), 0);
	}
	return 42;
}

static int op_rt_new(trial_t *tr)
{
	coev_config_t cfg = tu_config(tr->workers);
	coev_rt_t *rt = (coev_rt_t *)&cfg;
	coev_task_t *t;
	int r, ret = 0;

	arm(tr);
	r = coev_rt_new(&cfg, &rt);
	disarm();
	if (r < 0) {
		TU_CHECK(rt == NULL);
		return r;
	}
	r = coev_rt_spawn(rt, "check", check_workers, NULL, &t);
	TU_CHECK_EQ(r, 0);
	if (r == 0) {
		TU_CHECK_EQ(coev_join_dl(t, tu_guard(), &ret), 0);
		TU_CHECK_EQ(ret, 42);
	}
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5))), 0);
	coev_rt_free(rt);
	return 0;
}

/* coev_run's main: one child, joined, and a sleep (a timer). */
static int run_main(void *arg)
{
	atomic_int ran = 0;
	coev_task_t *t;
	int r;

	(void)arg;
	r = coev_spawn(child, &ran, &t);
	r = first_error(r, join_child(r, t, &ran));
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0);
	return r < 0 ? r : 42;
}

static int op_run(trial_t *tr)
{
	coev_config_t cfg = tu_config(2);
	int r;

	cfg.stack_size = ARENA_STACK;
	arm(tr);
	r = coev_run(run_main, NULL, &cfg);
	disarm();
	return r == 42 ? 0 : r;
}

/* coev_rt_shutdown and coev_rt_free with tasks still asleep in it. */
static int sleeper(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	coev_sleep(COEV_FOREVER);
	return 0;
}

static int op_rt_stop(trial_t *tr)
{
	coev_config_t cfg = tu_config(2);
	atomic_int started = 0;
	coev_rt_t *rt;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(
			coev_rt_spawn(rt, NULL, sleeper, &started, NULL), 0);
	TU_CHECK_EQ(tu_thread_wait_at_least(&started, 4), 0);
	arm(tr);
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5))), 0);
	coev_rt_free(rt);
	disarm();
	return 0;
}

static void test_fault_rt_new(void **state)
{
	static const unsigned workers[3] = {1, 2, 4};
	static const char *const names[3] = {"coev_rt_new (1 worker)",
					     "coev_rt_new (2 workers)",
					     "coev_rt_new (4 workers)"};

	(void)state;
	for (int i = 0; i < 3; i++) {
		const op_t op = {.name = names[i],
				 .run = op_rt_new,
				 .sites = KIND(FAULT_ALLOC) | KIND(FAULT_MMAP) |
					  KIND(FAULT_THREAD) | KIND(FAULT_FD) |
					  KIND(FAULT_LOOP),
				 .never = KIND(FAULT_MPROTECT),
				 .errs = {-ENOMEM, -EAGAIN, -EMFILE, 0},
				 .workers = workers[i]};
		sweep_op(&op);
	}
}

static void test_fault_run(void **state)
{
	const op_t op = {.name = "coev_run (2 workers, a child, a sleep)",
			 .run = op_run,
			 .sites = (ALL_KINDS & ~KIND(FAULT_MPROTECT)) |
				  stack_kinds,
			 .errs = {-ENOMEM, -EAGAIN, -EMFILE, COEV_ESTACKMAP}};

	(void)state;
	sweep_op(&op);
}

static void test_fault_rt_stop_never_allocates(void **state)
{
	static const op_t op = {.name = "coev_rt_shutdown + coev_rt_free",
				.run = op_rt_stop,
				.never = ALL_KINDS};

	(void)state;
	sweep_op(&op);
}

/* ---- tasks -------------------------------------------------------------------- */

static int op_rt_spawn(trial_t *tr)
{
	coev_config_t cfg = tu_config(1);
	atomic_int ran = 0;
	coev_task_t *t = NULL;
	coev_rt_t *rt;
	int r, rj;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	arm(tr);
	r = coev_rt_spawn(rt, "outside", child, &ran, &t);
	disarm();
	/* Faults count calls of every thread: a worker that runs the child
	 * at once maps its stack inside the window, and the child then ends
	 * with COEV_ESTACKMAP without running (join_child checks that), as
	 * documented; seen under TSan. */
	rj = join_child(r, t, &ran);
	TU_CHECK(rj == 0 || rj == COEV_ESTACKMAP);
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5))), 0);
	coev_rt_free(rt);
	TU_CHECK_EQ(atomic_load(&ran), r == 0 && rj == 0 ? 1 : 0);
	return r;
}

/* coev_spawn, coev_spawn_named and a detached coev_spawn from a task. */
static int spawn_body(trial_t *tr)
{
	atomic_int ran[3] = {0, 0, 0};
	coev_task_t *t[2] = {NULL, NULL};
	int r[3], e = 0;

	arm(tr);
	r[0] = coev_spawn(child, &ran[0], &t[0]);
	r[1] = coev_spawn_named("named", child, &ran[1], &t[1]);
	r[2] = coev_spawn(child, &ran[2], NULL);
	disarm();
	if (r[1] == 0)
		TU_CHECK(strcmp(coev_task_name(t[1]), "named") == 0);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(join_child(r[i], t[i], &ran[i]), 0);
		e = first_error(e, r[i]);
	}
	if (r[2] == 0)
		TU_CHECK_EQ(tu_wait_at_least(&ran[2], 1), 0);
	coev_sleep(COEV_MSEC(1)); /* a negative check: no run, or one */
	TU_CHECK_EQ(atomic_load(&ran[2]), r[2] == 0 ? 1 : 0);
	return first_error(e, r[2]);
}

static int op_spawn(trial_t *tr)
{
	return in_rt(tr, 1, spawn_body);
}

/* The first run of two children spawned before: each maps a stack. */
static int first_run_body(trial_t *tr)
{
	atomic_int ran[2] = {0, 0};
	coev_task_t *t[2];
	int e = 0;

	for (int i = 0; i < 2; i++)
		TU_CHECK_EQ(coev_spawn(child, &ran[i], &t[i]), 0);
	arm(tr);
	for (int i = 0; i < 2; i++)
		e = first_error(e, join_child(0, t[i], &ran[i]));
	disarm();
	return e;
}

static int op_first_run(trial_t *tr)
{
	return in_rt(tr, 1, first_run_body);
}

/* coev_wait_for: spawn, wait, join. */
static int wait_for_body(trial_t *tr)
{
	atomic_int ran = 0;
	int r, ret = 0;

	arm(tr);
	r = coev_wait_for(child, &ran, tu_guard(), &ret);
	disarm();
	if (r < 0) {
		TU_CHECK_EQ(atomic_load(&ran), 0);
		return r;
	}
	if (ret == COEV_ESTACKMAP) {
		TU_CHECK_EQ(atomic_load(&ran), 0);
		return ret;
	}
	TU_CHECK_EQ(ret, 42);
	TU_CHECK_EQ(atomic_load(&ran), 1);
	return 0;
}

static int op_wait_for(trial_t *tr)
{
	return in_rt(tr, 1, wait_for_body);
}

/* Joins of every kind (join, gather, wait-any) of children that have
 * started and are still running. */
static int join_body(trial_t *tr)
{
	nap_t naps[5];
	coev_task_t *t[5];
	int rets[2], ret, i;

	memset(naps, 0, sizeof naps);
	for (i = 0; i < 5; i++)
		TU_CHECK_EQ(coev_spawn(napper, &naps[i], &t[i]), 0);
	/* Their stacks are mapped before anything is armed. */
	for (i = 0; i < 5; i++)
		TU_CHECK_EQ(tu_wait_at_least(&naps[i].started, 1), 0);
	arm(tr);
	TU_CHECK_EQ(coev_join(t[0], &ret), 0);
	TU_CHECK_EQ(ret, 42);
	TU_CHECK_EQ(coev_gather(&t[1], 2, rets), 0);
	TU_CHECK_EQ(rets[0], 42);
	TU_CHECK_EQ(rets[1], 42);
	t[0] = t[1] = t[2] = NULL;
	while ((i = coev_wait_any(t, 5, tu_guard())) >= 0) {
		TU_CHECK_EQ(coev_join(t[i], &ret), 0);
		TU_CHECK_EQ(ret, 42);
		t[i] = NULL;
	}
	TU_CHECK_EQ(i, -ENOENT);
	disarm();
	for (i = 0; i < 5; i++)
		TU_CHECK_EQ(atomic_load(&naps[i].ran), 1);
	return 0;
}

static int op_join(trial_t *tr)
{
	return in_rt(tr, 2, join_body);
}

/* coev_join from a plain thread (a thread waiter). */
static int op_join_thread(trial_t *tr)
{
	coev_config_t cfg = tu_config(1);
	nap_t nap = {0, 0};
	coev_task_t *t;
	coev_rt_t *rt;
	int ret = 0;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, NULL, napper, &nap, &t), 0);
	/* Its stack is mapped before anything is armed. */
	TU_CHECK_EQ(tu_thread_wait_at_least(&nap.started, 1), 0);
	arm(tr);
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	disarm();
	TU_CHECK_EQ(ret, 42);
	TU_CHECK_EQ(atomic_load(&nap.ran), 1);
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5))), 0);
	coev_rt_free(rt);
	return 0;
}

static void test_fault_rt_spawn(void **state)
{
	/* The task block comes from a chunk the first spawn maps
	 * (sched/block.c); no spawn calls malloc. */
	static const op_t op = {.name = "coev_rt_spawn from a plain thread",
				.run = op_rt_spawn,
				.sites = KIND(FAULT_MMAP),
				.never = KIND(FAULT_ALLOC),
				.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
}

static void test_fault_spawn(void **state)
{
	static const op_t op = {
		.name = "coev_spawn, coev_spawn_named, detached",
		.run = op_spawn,
		.sites = KIND(FAULT_MMAP),
		.never = KIND(FAULT_ALLOC),
		.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
}

static void test_fault_first_run_maps_a_stack(void **state)
{
	/* Each stack fills an arena of its own here (ARENA_STACK), whose
	 * record is in the mapping; its guard is an madvise (and then no
	 * mprotect is made), or in the fallback an mprotect (stack_kinds). */
	const op_t op = {.name = "first run of two tasks (stacks)",
			 .run = op_first_run,
			 .sites = stack_kinds,
			 .never = KIND(FAULT_THREAD) | KIND(FAULT_FD) |
				  (KIND(FAULT_MPROTECT) & ~stack_kinds),
			 .errs = {COEV_ESTACKMAP, 0}};
	/* The fallback with every mprotect failing: stacks come from
	 * unguarded arenas, whose mapping may fail. (With guard regions
	 * there is no mprotect to fail: that run is the one above.) */
	static const op_t slab = {
		.name = "first run, mprotect failing (unguarded arenas)",
		.run = op_first_run,
		.sites = KIND(FAULT_MMAP),
		.errs = {COEV_ESTACKMAP, 0},
		.force = FAULT_MPROTECT};

	(void)state;
	sweep_op(&op);
	if (stack_kinds & KIND(FAULT_MPROTECT))
		sweep_op(&slab);
}

static void test_fault_wait_for(void **state)
{
	const op_t op = {.name = "coev_wait_for",
			 .run = op_wait_for,
			 .sites = KIND(FAULT_MMAP) | stack_kinds,
			 .errs = {-ENOMEM, COEV_ESTACKMAP, 0}};

	(void)state;
	sweep_op(&op);
}

static void test_fault_join_never_allocates(void **state)
{
	static const op_t task = {.name = "join, gather, wait_any from a task",
				  .run = op_join,
				  .never = ALL_KINDS};
	static const op_t thread = {.name = "coev_join from a plain thread",
				    .run = op_join_thread,
				    .never = ALL_KINDS};

	(void)state;
	sweep_op(&task);
	sweep_op(&thread);
}

/* ---- scopes ----------------------------------------------------------------------- */

typedef struct scope_run {
	atomic_int ran;	    /* children and grandchildren that ran */
	atomic_int running; /* of those, not yet returned */
	atomic_int spawned; /* spawns that succeeded */
} scope_run_t;

static int scope_leaf(void *arg)
{
	scope_run_t *sr = arg;

	atomic_fetch_add(&sr->running, 1);
	coev_sleep(COEV_MSEC(1));
	atomic_fetch_add(&sr->ran, 1);
	atomic_fetch_sub(&sr->running, 1);
	return 0;
}

/* Spawns n leaves into s; returns the first spawn error. */
static int spawn_leaves(coev_scope_t *s, scope_run_t *sr, int n)
{
	for (int i = 0; i < n; i++) {
		int r = coev_scope_spawn(s, "leaf", scope_leaf, sr);
		if (r < 0)
			return r;
		atomic_fetch_add(&sr->spawned, 1);
	}
	return 0;
}

/* A child that opens a scope of its own (nested under its parent's). */
static int scope_nest(void *arg)
{
	scope_run_t *sr = arg;
	coev_scope_t *s;
	int r;

	atomic_fetch_add(&sr->running, 1);
	atomic_fetch_add(&sr->ran, 1);
	if ((r = coev_scope_open(0, &s)) == 0) {
		r = spawn_leaves(s, sr, 2);
		r = first_error(r, coev_scope_close(s));
	}
	atomic_fetch_sub(&sr->running, 1);
	return r;
}

static int scope_body(trial_t *tr)
{
	scope_run_t sr = {0, 0, 0};
	coev_scope_t *s = NULL;
	int r, rc;

	arm(tr);
	if ((r = coev_scope_open(COEV_SCOPE_FAIL_FAST, &s)) < 0) {
		disarm();
		return r;
	}
	r = spawn_leaves(s, &sr, 3);
	if (r == 0) {
		r = coev_scope_spawn(s, "nest", scope_nest, &sr);
		if (r == 0)
			atomic_fetch_add(&sr.spawned, 1);
	}
	rc = coev_scope_close(s);
	disarm();
	/* No child outlives the close; and with stacks to be had and no
	 * failure to cancel the scope, every child spawned ran. */
	TU_CHECK_EQ(atomic_load(&sr.running), 0);
	if (tr->kind == FAULT_ALLOC && tr->force == FAULT_KINDS && rc == 0)
		TU_CHECK_EQ(atomic_load(&sr.ran), atomic_load(&sr.spawned));
	else
		TU_CHECK(atomic_load(&sr.ran) <= atomic_load(&sr.spawned));
	return first_error(r, rc);
}

static int op_scope(trial_t *tr)
{
	return in_rt(tr, 2, scope_body);
}

static void test_fault_scope(void **state)
{
	const op_t op = {.name = "scope open, spawn (nested), close",
			 .run = op_scope,
			 .sites = KIND(FAULT_ALLOC) | stack_kinds,
			 .errs = {-ENOMEM, COEV_ESTACKMAP, -ECANCELED, 0}};

	(void)state;
	sweep_op(&op);
}

/* ---- the blocking pool ------------------------------------------------------------ */

static int job(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 7;
}

static int blocking_body(trial_t *tr)
{
	atomic_int ran = 0;
	int r, ret = 0;

	arm(tr);
	r = coev_blocking(job, &ran, tu_guard(), &ret);
	disarm();
	TU_CHECK_EQ(atomic_load(&ran), r == 0 ? 1 : 0);
	if (r == 0)
		TU_CHECK_EQ(ret, 7);
	return r;
}

static int op_blocking(trial_t *tr)
{
	return in_rt(tr, 1, blocking_body);
}

#define FILE_BYTES 10000
static char file_path[128];

static int read_all_body(trial_t *tr)
{
	char *data = (char *)&data;
	size_t len = 0;
	int r;

	arm(tr);
	r = coev_file_read_all(file_path, &data, &len, tu_guard());
	disarm();
	if (r < 0) {
		TU_CHECK(data == (char *)&data);
		return r;
	}
	TU_CHECK_EQ(len, FILE_BYTES);
	for (size_t i = 0; i < len; i++)
		if (data[i] != (char)('a' + i % 26)) {
			TU_CHECK_MSG(0, "byte %zu differs", i);
			break;
		}
	TU_CHECK_EQ(data[len], '\0');
	free(data);
	return 0;
}

static int op_read_all(trial_t *tr)
{
	return in_rt(tr, 1, read_all_body);
}

static void test_fault_blocking(void **state)
{
	static const op_t op = {
		.name = "coev_blocking (starts the pool's thread)",
		.run = op_blocking,
		.sites = KIND(FAULT_ALLOC) | KIND(FAULT_THREAD),
		.errs = {-ENOMEM, -EAGAIN, 0}};
	static const op_t read_all = {.name = "coev_file_read_all",
				      .run = op_read_all,
				      .sites = KIND(FAULT_ALLOC) |
					       KIND(FAULT_THREAD),
				      .errs = {-ENOMEM, -EAGAIN, 0}};
	char dir[96];
	FILE *f;

	(void)state;
	sweep_op(&op);
	assert_int_equal(tu_mkdtemp(dir, sizeof dir), 0);
	snprintf(file_path, sizeof file_path, "%s/data", dir);
	assert_non_null(f = fopen(file_path, "w"));
	for (int i = 0; i < FILE_BYTES; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	sweep_op(&read_all);
	tu_rmtree(dir);
}

/* ---- synchronisation (never allocates) ------------------------------------------- */

typedef struct sync_run {
	coev_event_t go;
	atomic_int ready;
	coev_mutex_t mu, fair;
	coev_cond_t cond;
	coev_sem_t sem;
	coev_rwlock_t rw;
	coev_wg_t wg;
	coev_barrier_t bar;
	coev_once_t once;
	long count;  /* [mu] */
	int arrived; /* [mu] */
	atomic_int onced;
} sync_run_t;

#define SYNC_PARTIES 4 /* three tasks and a plain thread */
#define SYNC_ROUNDS 20

static int once_fn(void *arg)
{
	atomic_fetch_add(&((sync_run_t *)arg)->onced, 1);
	return 0;
}

/* One party: every primitive, contended by the others. */
static int sync_party(void *arg)
{
	sync_run_t *s = arg;

	atomic_fetch_add(&s->ready, 1);
	TU_CHECK_EQ(coev_event_wait(&s->go), 0);
	TU_CHECK(coev_barrier_wait(&s->bar) >= 0);
	TU_CHECK_EQ(coev_once(&s->once, once_fn, s), 0);
	for (int i = 0; i < SYNC_ROUNDS; i++) {
		TU_CHECK_EQ(coev_mutex_lock(&s->mu), 0);
		s->count++;
		coev_mutex_unlock(&s->mu);
		TU_CHECK_EQ(coev_mutex_lock_dl(&s->fair, tu_guard()), 0);
		coev_mutex_unlock(&s->fair);
		TU_CHECK_EQ(coev_sem_acquire(&s->sem), 0);
		coev_sem_release(&s->sem);
		TU_CHECK_EQ(coev_rwlock_rdlock(&s->rw), 0);
		coev_rwlock_rdunlock(&s->rw);
		TU_CHECK_EQ(coev_rwlock_wrlock(&s->rw), 0);
		coev_rwlock_wrunlock(&s->rw);
	}
	/* The last to arrive signals the rest, who wait on the condition. */
	TU_CHECK_EQ(coev_mutex_lock(&s->mu), 0);
	if (++s->arrived == SYNC_PARTIES)
		coev_cond_broadcast(&s->cond);
	while (s->arrived < SYNC_PARTIES)
		TU_CHECK_EQ(coev_cond_wait_dl(&s->cond, &s->mu, tu_guard()), 0);
	coev_mutex_unlock(&s->mu);
	coev_wg_done(&s->wg);
	return 0;
}

static void *sync_thread(void *arg)
{
	sync_party(arg);
	return NULL;
}

static int sync_body(trial_t *tr)
{
	sync_run_t *s = calloc(1, sizeof *s);
	coev_task_t *t[SYNC_PARTIES - 1];
	pthread_t th;
	int ret;

	if (!s)
		return -ENOMEM;
	TU_CHECK_EQ(coev_event_init(&s->go), 0);
	for (int i = 0; i < SYNC_PARTIES - 1; i++)
		TU_CHECK_EQ(coev_spawn(sync_party, s, &t[i]), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, sync_thread, s), 0);
	TU_CHECK_EQ(tu_wait_at_least(&s->ready, SYNC_PARTIES), 0);
	arm(tr);
	TU_CHECK_EQ(coev_mutex_init(&s->mu, 0), 0);
	TU_CHECK_EQ(coev_mutex_init(&s->fair, COEV_MUTEX_FAIR), 0);
	TU_CHECK_EQ(coev_cond_init(&s->cond), 0);
	TU_CHECK_EQ(coev_sem_init(&s->sem, 1), 0);
	TU_CHECK_EQ(coev_rwlock_init(&s->rw), 0);
	TU_CHECK_EQ(coev_wg_init(&s->wg), 0);
	coev_wg_add(&s->wg, SYNC_PARTIES);
	TU_CHECK_EQ(coev_barrier_init(&s->bar, SYNC_PARTIES), 0);
	memset(&s->once, 0, sizeof s->once);
	coev_event_set(&s->go);
	TU_CHECK_EQ(coev_wg_wait_dl(&s->wg, tu_guard()), 0);
	TU_CHECK_EQ(s->count, SYNC_PARTIES * SYNC_ROUNDS);
	TU_CHECK_EQ(atomic_load(&s->onced), 1);
	coev_mutex_destroy(&s->mu);
	coev_mutex_destroy(&s->fair);
	coev_cond_destroy(&s->cond);
	coev_sem_destroy(&s->sem);
	coev_rwlock_destroy(&s->rw);
	coev_wg_destroy(&s->wg);
	coev_barrier_destroy(&s->bar);
	disarm();
	for (int i = 0; i < SYNC_PARTIES - 1; i++) {
		TU_CHECK_EQ(coev_join(t[i], &ret), 0);
		TU_CHECK_EQ(ret, 0);
	}
	pthread_join(th, NULL);
	coev_event_destroy(&s->go);
	free(s);
	return 0;
}

static int op_sync(trial_t *tr)
{
	return in_rt(tr, 2, sync_body);
}

static void test_fault_sync_never_allocates(void **state)
{
	static const op_t op = {
		.name = "mutex, cond, sem, rwlock, wg, barrier, once",
		.run = op_sync,
		.never = ALL_KINDS};

	(void)state;
	sweep_op(&op);
}

/* ---- channels ------------------------------------------------------------------------ */

#define NOT_SET ((coev_chan_t *)&table)

/* coev_chan_new of each capacity kind, from a plain thread. */
static int op_chan_new(trial_t *tr)
{
	static const size_t caps[3] = {0, 4, COEV_CHAN_UNBOUNDED};
	coev_chan_t *ch[3] = {NOT_SET, NOT_SET, NOT_SET};
	int r = 0, i;
	long v;

	arm(tr);
	for (i = 0; i < 3 && r == 0; i++)
		r = coev_chan_new(&ch[i], sizeof(long), caps[i]);
	disarm();
	if (r < 0)
		TU_CHECK(ch[i - 1] == NOT_SET); /* *out untouched */
	for (int k = 0; k < 3; k++) {
		if (ch[k] == NOT_SET)
			continue;
		v = k;
		/* A rendezvous has no room; the others take one message. */
		TU_CHECK_EQ(coev_chan_try_send(ch[k], &v), k ? 0 : -EAGAIN);
		if (k) {
			TU_CHECK_EQ(coev_chan_try_recv(ch[k], &v), 0);
			TU_CHECK_EQ(v, k);
		}
		coev_chan_free(ch[k]);
	}
	return r;
}

/* Sends that grow an unbounded channel: coev_chan_send, then
 * coev_select's send case. A send that fails sent nothing; everything
 * sent is received in order. */
#define CHAN_MSGS 50

static int chan_grow_body(trial_t *tr)
{
	coev_chan_t *ch, *idle;
	coev_sel_t cases[2];
	long v, got;
	int r = 0, sent = 0, w;

	TU_CHECK_EQ(coev_chan_new(&ch, sizeof(long), COEV_CHAN_UNBOUNDED), 0);
	TU_CHECK_EQ(coev_chan_new(&idle, sizeof(long), 1), 0);
	arm(tr);
	for (; sent < 30 && r == 0; sent += r == 0) {
		v = sent;
		r = coev_chan_send(ch, &v);
		TU_CHECK_EQ(coev_chan_len(ch), (size_t)(sent + (r == 0)));
	}
	for (; sent < CHAN_MSGS && r == 0; sent += r == 0) {
		v = sent;
		cases[0] = (coev_sel_t){ch, COEV_SEL_SEND, &v, 1};
		cases[1] = (coev_sel_t){idle, COEV_SEL_RECV, &got, 1};
		w = coev_select(cases, 2);
		TU_CHECK_EQ(w, 0);
		r = cases[0].result;
		TU_CHECK_EQ(coev_chan_len(ch), (size_t)(sent + (r == 0)));
	}
	for (int i = 0; i < sent; i++) {
		TU_CHECK_EQ(coev_chan_try_recv(ch, &got), 0);
		TU_CHECK_EQ(got, i);
	}
	TU_CHECK_EQ(coev_chan_try_recv(ch, &got), -EAGAIN);
	disarm();
	coev_chan_free(ch);
	coev_chan_free(idle);
	return r;
}

static int op_chan_grow(trial_t *tr)
{
	return in_rt(tr, 1, chan_grow_body);
}

/* Bounded and rendezvous channels between two tasks, send, receive and
 * select: never allocate. */
typedef struct chan_pair {
	coev_chan_t *rv, *bounded;
	atomic_int started;
} chan_pair_t;

static int echo(void *arg)
{
	chan_pair_t *p = arg;
	long v;

	atomic_store(&p->started, 1);
	for (int i = 0; i < CHAN_MSGS; i++) {
		TU_CHECK_EQ(coev_chan_recv_dl(p->rv, &v, tu_guard()), 0);
		TU_CHECK_EQ(coev_chan_send_dl(p->bounded, &v, tu_guard()), 0);
	}
	return 0;
}

static int chan_echo_body(trial_t *tr)
{
	chan_pair_t p;
	coev_task_t *t;
	coev_sel_t cases[2];
	long v, got;
	int ret, w;

	TU_CHECK_EQ(coev_chan_new(&p.rv, sizeof(long), 0), 0);
	TU_CHECK_EQ(coev_chan_new(&p.bounded, sizeof(long), 2), 0);
	atomic_init(&p.started, 0);
	TU_CHECK_EQ(coev_spawn(echo, &p, &t), 0);
	/* Its stack is mapped before anything is armed. */
	TU_CHECK_EQ(tu_wait_at_least(&p.started, 1), 0);
	arm(tr);
	for (int i = 0; i < CHAN_MSGS; i++) {
		v = i;
		if (i % 2) {
			TU_CHECK_EQ(coev_chan_send(p.rv, &v), 0);
			TU_CHECK_EQ(coev_chan_recv(p.bounded, &got), 0);
		} else {
			cases[0] = (coev_sel_t){p.rv, COEV_SEL_SEND, &v, 1};
			cases[1] = (coev_sel_t){NULL, COEV_SEL_RECV, &got, 1};
			TU_CHECK_EQ(coev_select_dl(cases, 2, tu_guard()), 0);
			cases[0] = (coev_sel_t){NULL, COEV_SEL_SEND, &v, 1};
			cases[1] =
				(coev_sel_t){p.bounded, COEV_SEL_RECV, &got, 1};
			w = coev_select_dl(cases, 2, tu_guard());
			TU_CHECK_EQ(w, 1);
		}
		TU_CHECK_EQ(got, i);
	}
	disarm();
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	TU_CHECK_EQ(ret, 0);
	coev_chan_free(p.rv);
	coev_chan_free(p.bounded);
	return 0;
}

static int op_chan_echo(trial_t *tr)
{
	return in_rt(tr, 2, chan_echo_body);
}

static void test_fault_chan(void **state)
{
	static const op_t op_new = {.name = "coev_chan_new (0, 4, unbounded)",
				    .run = op_chan_new,
				    .sites = KIND(FAULT_ALLOC),
				    .errs = {-ENOMEM, 0}};
	static const op_t op_grow = {
		.name = "unbounded send and select (grows)",
		.run = op_chan_grow,
		.sites = KIND(FAULT_ALLOC),
		.errs = {-ENOMEM, 0}};
	static const op_t op_echo = {
		.name = "bounded/rendezvous send, recv, select",
		.run = op_chan_echo,
		.never = ALL_KINDS};

	(void)state;
	sweep_op(&op_new);
	sweep_op(&op_grow);
	sweep_op(&op_echo);
}

/* ---- futures -------------------------------------------------------------------------- */

typedef struct fut_run {
	coev_event_t go;
	coev_future_t *f; /* NULL when coev_future_new failed */
	atomic_int started, cbs, late_cbs;
} fut_run_t;

static int fut_value = 5;

static void on_done(coev_future_t *f, void *arg)
{
	int res = 0;

	TU_CHECK_EQ(coev_future_poll(f, &res), 0);
	TU_CHECK_EQ(res, 5);
	atomic_fetch_add((atomic_int *)arg, 1);
}

static int completer(void *arg)
{
	fut_run_t *fr = arg;

	atomic_store(&fr->started, 1);
	TU_CHECK_EQ(coev_event_wait(&fr->go), 0);
	if (fr->f)
		TU_CHECK_EQ(coev_future_complete(fr->f, 5, &fut_value, NULL),
			    0);
	return 0;
}

static int future_body(trial_t *tr)
{
	fut_run_t fr = {0};
	coev_task_t *t;
	int r, rd = 0, res = 0, ret;

	TU_CHECK_EQ(coev_event_init(&fr.go), 0);
	TU_CHECK_EQ(coev_spawn(completer, &fr, &t), 0);
	/* Its stack is mapped before anything is armed. */
	TU_CHECK_EQ(tu_wait_at_least(&fr.started, 1), 0);
	arm(tr);
	r = coev_future_new(&fr.f);
	if (r < 0)
		fr.f = NULL;
	if (fr.f)
		rd = coev_future_on_done(fr.f, on_done, &fr.cbs);
	coev_event_set(&fr.go);
	if (fr.f) {
		TU_CHECK_EQ(coev_future_await_dl(fr.f, tu_guard(), &res), 0);
		TU_CHECK_EQ(res, 5);
		TU_CHECK(coev_future_value(fr.f) == &fut_value);
		/* Complete already: runs at once, allocates nothing. */
		TU_CHECK_EQ(coev_future_on_done(fr.f, on_done, &fr.late_cbs),
			    0);
		TU_CHECK_EQ(atomic_load(&fr.late_cbs), 1);
		coev_future_release(fr.f);
	}
	disarm();
	/* Callbacks run on the completing task after it woke us. */
	TU_CHECK_EQ(coev_join(t, &ret), 0);
	TU_CHECK_EQ(atomic_load(&fr.cbs), fr.f && rd == 0 ? 1 : 0);
	coev_event_destroy(&fr.go);
	return first_error(r, rd);
}

static int op_future(trial_t *tr)
{
	return in_rt(tr, 2, future_body);
}

static void test_fault_future(void **state)
{
	static const op_t op = {.name = "future new, on_done, complete, await",
				.run = op_future,
				.sites = KIND(FAULT_ALLOC),
				.never = KIND(FAULT_MMAP) | KIND(FAULT_THREAD) |
					 KIND(FAULT_FD),
				.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
}

/* ---- coev_submit ------------------------------------------------------------------------ */

static int posted(void *arg)
{
	TU_CHECK(coev_self() == NULL); /* a loop callback */
	atomic_fetch_add((atomic_int *)arg, 1);
	return 9;
}

static int submit_body(trial_t *tr)
{
	atomic_int ran[2] = {0, 0};
	coev_future_t *f = NULL;
	int r, r2, res = 0;

	arm(tr);
	r = coev_submit(tr->rt, 1, posted, &ran[0], &f);
	if (r == 0) {
		TU_CHECK_EQ(coev_future_wait_dl(f, tu_guard(), &res), 0);
		TU_CHECK_EQ(res, 9);
		coev_future_release(f);
	}
	res = 0;
	r2 = coev_submit_to(tr->rt, 0, posted, &ran[1], &res);
	disarm();
	TU_CHECK_EQ(atomic_load(&ran[0]), r == 0 ? 1 : 0);
	TU_CHECK_EQ(atomic_load(&ran[1]), r2 == 0 ? 1 : 0);
	if (r2 == 0)
		TU_CHECK_EQ(res, 9);
	return first_error(r, r2);
}

static int op_submit(trial_t *tr)
{
	return in_rt(tr, 2, submit_body);
}

static int op_submit_thread(trial_t *tr)
{
	coev_config_t cfg = tu_config(1);
	atomic_int ran = 0;
	coev_rt_t *rt;
	int r, res = 0;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	arm(tr);
	r = coev_submit_to(rt, 0, posted, &ran, &res);
	disarm();
	TU_CHECK_EQ(atomic_load(&ran), r == 0 ? 1 : 0);
	if (r == 0)
		TU_CHECK_EQ(res, 9);
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(5))), 0);
	coev_rt_free(rt);
	return r;
}

static void test_fault_submit(void **state)
{
	static const op_t op = {
		.name = "coev_submit, coev_submit_to from a task",
		.run = op_submit,
		.sites = KIND(FAULT_ALLOC),
		.errs = {-ENOMEM, 0}};
	static const op_t thread = {
		.name = "coev_submit_to from a plain thread",
		.run = op_submit_thread,
		.sites = KIND(FAULT_ALLOC),
		.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
	sweep_op(&thread);
}

/* ---- watches, timers, socket sets -------------------------------------------------------- */

typedef struct watch_run {
	coev_event_t fired;
	int rfd;
} watch_run_t;

static void drain(int fd)
{
	char b[16];

	while (read(fd, b, sizeof b) > 0) {
	}
}

static void watch_cb(coev_watch_t *wa, int fd, unsigned events, void *arg)
{
	TU_CHECK(events & COEV_READ);
	drain(fd);
	TU_CHECK_EQ(coev_watch_set(wa, 0), 0);
	coev_event_set(&((watch_run_t *)arg)->fired);
}

static void timer_cb(coev_timer_t *tm, void *arg)
{
	(void)tm;
	coev_event_set(&((watch_run_t *)arg)->fired);
}

static void sockset_cb(coev_sockset_t *ss, int fd, unsigned events, void *arg)
{
	watch_run_t *wr = arg;

	TU_CHECK_EQ(fd, wr->rfd);
	TU_CHECK(events & COEV_READ);
	drain(fd);
	TU_CHECK_EQ(coev_sockset_watch(ss, fd, 0), 0);
	coev_event_set(&wr->fired);
}

/* Wait for a callback after making the pipe readable. */
static void poke_and_wait(watch_run_t *wr, int wfd)
{
	TU_CHECK_EQ(write(wfd, "x", 1), 1);
	TU_CHECK_EQ(coev_event_wait_dl(&wr->fired, tu_guard()), 0);
	coev_event_clear(&wr->fired);
}

static int watch_body(trial_t *tr)
{
	watch_run_t wr;
	coev_watch_t *wa;
	coev_timer_t *tm;
	coev_sockset_t *ss;
	int p[2], r;

	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	TU_CHECK_EQ(coev_event_init(&wr.fired), 0);
	wr.rfd = p[0];
	arm(tr);
	if ((r = coev_watch_new(p[0], watch_cb, &wr, &wa)) < 0)
		goto out;
	if ((r = coev_watch_set(wa, COEV_READ)) == 0)
		poke_and_wait(&wr, p[1]);
	coev_watch_free(wa);
	if (r < 0)
		goto out;
	if ((r = coev_timer_new(timer_cb, &wr, &tm)) < 0)
		goto out;
	TU_CHECK_EQ(coev_timer_set(tm, coev_now()), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&wr.fired, tu_guard()), 0);
	coev_event_clear(&wr.fired);
	coev_timer_free(tm);
	if ((r = coev_sockset_new(sockset_cb, &wr, &ss)) < 0)
		goto out;
	if ((r = coev_sockset_watch(ss, p[0], COEV_READ)) == 0)
		poke_and_wait(&wr, p[1]);
	coev_sockset_free(ss);
out:
	disarm();
	/* A failed set or watch left nothing armed: no callback comes. */
	drain(p[0]);
	TU_CHECK_EQ(write(p[1], "y", 1), 1);
	coev_sleep(COEV_MSEC(1));
	TU_CHECK_EQ(coev_event_is_set(&wr.fired), 0);
	coev_event_destroy(&wr.fired);
	close(p[0]);
	close(p[1]);
	TU_CHECK_EQ(coev_unpin(), 0);
	return r;
}

static int op_watch(trial_t *tr)
{
	return in_rt(tr, 1, watch_body);
}

static void test_fault_watch_timer_sockset(void **state)
{
	static const op_t op = {
		.name = "watch, timer, sockset (new, set, fire)",
		.run = op_watch,
		.sites = KIND(FAULT_ALLOC),
		.never = KIND(FAULT_MMAP) | KIND(FAULT_THREAD) | KIND(FAULT_FD),
		.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
}

/* ---- TCP on the loopback ------------------------------------------------------------------ */

static const char *tcp_host;

static int tcp_body(trial_t *tr)
{
	int lfd, fd = -1, afd = -1, r = 0, port;
	char buf[4];

	arm(tr);
	lfd = coev_tcp_listen("127.0.0.1", 0, 16, 0);
	if (lfd < 0) {
		disarm();
		return lfd;
	}
	port = coev_sock_port(lfd);
	TU_CHECK(port > 0);
	fd = coev_tcp_connect(tcp_host, (unsigned)port, tu_guard());
	if (fd < 0) {
		r = fd;
		goto out;
	}
	afd = coev_accept(lfd, NULL, NULL, tu_guard());
	if (afd < 0) {
		r = afd;
		goto out;
	}
	TU_CHECK_EQ(coev_write_all(fd, "ping", 4, NULL, tu_guard()), 4);
	r = (int)coev_read_full(afd, buf, 4, NULL, tu_guard());
	if (r == 4) {
		TU_CHECK(memcmp(buf, "ping", 4) == 0);
		r = 0;
	}
out:
	disarm();
	if (afd >= 0)
		TU_CHECK_EQ(coev_close(afd), 0);
	if (fd >= 0)
		TU_CHECK_EQ(coev_close(fd), 0);
	TU_CHECK_EQ(coev_close(lfd), 0);
	return r;
}

static int op_tcp(trial_t *tr)
{
	return in_rt(tr, 1, tcp_body);
}

static void test_fault_tcp(void **state)
{
	/* Sockets coev creates are owned: their state blocks sit in a table
	 * whose pages live as long as the process (sched/fd.c). A first run,
	 * failing nothing, allocates the page of these fd numbers; from then
	 * on listen, connect and accept allocate nothing at all. */
	static const op_t op = {
		.name = "tcp listen, connect, accept on 127.0.0.1",
		.run = op_tcp,
		.sites = KIND(FAULT_FD),
		.never = KIND(FAULT_THREAD) | KIND(FAULT_ALLOC),
		.errs = {-EMFILE, 0}};
	trial_t warm = {.kind = FAULT_ALLOC, .nth = 0, .force = FAULT_KINDS};
	/* A name: resolved with getaddrinfo on the blocking pool. */
	static const op_t name = {
		.name = "tcp connect to \"localhost\" (resolved)",
		.run = op_tcp,
		.sites =
			KIND(FAULT_ALLOC) | KIND(FAULT_FD) | KIND(FAULT_THREAD),
		.errs = {-ENOMEM, -EMFILE, -EAGAIN, 0}};

	(void)state;
	tcp_host = "127.0.0.1";
	assert_int_equal(op_tcp(&warm), 0);
	sweep_op(&op);
	tcp_host = "localhost";
	sweep_op(&name);
}

/* ---- a busy runtime ---- */

/* Tasks on two workers that spawn, join, send on unbounded channels,
 * complete futures with callbacks, submit to workers and open scopes, all
 * at once, while the Nth call fails (or it and every later one): failures
 * land in the middle of concurrent work. A task that meets an error
 * stops and returns it; the others go on. */
#define BUSY_TASKS 6
#define BUSY_ROUNDS 3
#define BUSY_SWEEPS TU_SCALE(4, 3, 3)

static void count_cb(coev_future_t *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

static int busy_chan(void)
{
	coev_chan_t *ch;
	long v, got;
	int r, sent = 0;

	if ((r = coev_chan_new(&ch, sizeof(long), COEV_CHAN_UNBOUNDED)) < 0)
		return r;
	for (v = 0; v < 40 && r == 0; v++)
		if ((r = coev_chan_send(ch, &v)) == 0)
			sent++;
	for (int i = 0; i < sent; i++) {
		TU_CHECK_EQ(coev_chan_try_recv(ch, &got), 0);
		TU_CHECK_EQ(got, i);
	}
	coev_chan_free(ch);
	return r;
}

static int busy_future(unsigned worker)
{
	atomic_int cbs = 0, ran = 0;
	coev_future_t *f, *g;
	int r, rd, res = 0;

	if ((r = coev_future_new(&f)) < 0)
		return r;
	rd = coev_future_on_done(f, count_cb, &cbs);
	r = coev_submit(NULL, worker, posted, &ran, &g);
	if (r == 0) {
		TU_CHECK_EQ(coev_future_wait_dl(g, tu_guard(), &res), 0);
		TU_CHECK_EQ(res, 9);
		coev_future_release(g);
	}
	TU_CHECK_EQ(atomic_load(&ran), r == 0 ? 1 : 0);
	TU_CHECK_EQ(coev_future_set(f, 1), 0);
	TU_CHECK_EQ(atomic_load(&cbs), rd == 0 ? 1 : 0);
	coev_future_release(f);
	return first_error(rd, r);
}

static int busy_scope(void)
{
	scope_run_t sr = {0, 0, 0};
	coev_scope_t *s;
	int r;

	if ((r = coev_scope_open(0, &s)) < 0)
		return r;
	r = spawn_leaves(s, &sr, 2);
	r = first_error(r, coev_scope_close(s));
	TU_CHECK_EQ(atomic_load(&sr.running), 0);
	return r;
}

static int busy(void *arg)
{
	atomic_int ran = 0;
	coev_task_t *t;
	int r = 0;

	for (int i = 0; i < BUSY_ROUNDS && r == 0; i++) {
		atomic_store(&ran, 0);
		r = coev_spawn(child, &ran, &t);
		r = first_error(r, join_child(r, t, &ran));
		if (r == 0)
			r = busy_chan();
		if (r == 0)
			r = busy_future((unsigned)(uintptr_t)arg % 2);
		if (r == 0)
			r = busy_scope();
	}
	return r;
}

static int busy_body(trial_t *tr)
{
	coev_task_t *t[BUSY_TASKS];
	int r[BUSY_TASKS], ret, e = 0;

	arm(tr);
	for (int i = 0; i < BUSY_TASKS; i++)
		r[i] = coev_spawn(busy, (void *)(uintptr_t)i, &t[i]);
	for (int i = 0; i < BUSY_TASKS; i++) {
		if (r[i] == 0) {
			TU_CHECK_EQ(coev_join_dl(t[i], tu_guard(), &ret), 0);
			r[i] = ret;
		}
		e = first_error(e, r[i]);
	}
	disarm();
	return e;
}

static int op_busy(trial_t *tr)
{
	return in_rt(tr, 2, busy_body);
}

static void test_fault_busy_runtime(void **state)
{
	const op_t op = {.name = "a busy runtime (6 tasks, 2 workers)",
			 .run = op_busy,
			 .sites = KIND(FAULT_ALLOC) | stack_kinds,
			 .errs = {-ENOMEM, COEV_ESTACKMAP, 0}};

	(void)state;
	/* The calls interleave differently each time: sweep again. */
	for (int i = 0; i < BUSY_SWEEPS; i++)
		sweep_op(&op);
}

/* ---- a worker's fd table ---------------------------------------------------------------------- */

/* A worker keeps its waits in a table indexed by fd, grown on demand: a
 * wait on a high fd grows it while another task waits on a low one. The
 * growth either fails (-ENOMEM, nothing armed) or succeeds, and the other
 * task's wait goes on either way. */
#define HIGH_FD 1100

typedef struct fd_run {
	int low[2], high[2];
	atomic_int parked;
} fd_run_t;

static int low_reader(void *arg)
{
	fd_run_t *fr = arg;
	char c = 0;

	atomic_store(&fr->parked, 1);
	TU_CHECK_EQ(coev_read(fr->low[0], &c, 1, tu_guard()), 1);
	TU_CHECK_EQ(c, 'l');
	return 0;
}

static int fd_table_body(trial_t *tr)
{
	fd_run_t fr;
	coev_task_t *t;
	int r, ret;

	TU_CHECK_EQ(pipe2(fr.low, O_NONBLOCK | O_CLOEXEC), 0);
	TU_CHECK_EQ(pipe2(fr.high, O_NONBLOCK | O_CLOEXEC), 0);
	r = fcntl(fr.high[0], F_DUPFD_CLOEXEC, HIGH_FD);
	TU_CHECK(r >= HIGH_FD);
	close(fr.high[0]);
	fr.high[0] = r;
	atomic_init(&fr.parked, 0);
	TU_CHECK_EQ(coev_spawn(low_reader, &fr, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&fr.parked, 1), 0);
	/* The reader waits on its low fd. */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FD, NULL), 0);
	TU_CHECK_EQ(write(fr.high[1], "h", 1), 1);
	arm(tr);
	r = coev_wait_fd(fr.high[0], COEV_READ, tu_guard());
	disarm();
	if (r >= 0) {
		TU_CHECK_EQ(r, COEV_READ);
		r = 0;
	}
	TU_CHECK_EQ(write(fr.low[1], "l", 1), 1);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), &ret), 0);
	for (int i = 0; i < 2; i++) {
		close(fr.low[i]);
		close(fr.high[i]);
	}
	return r;
}

static int op_fd_table(trial_t *tr)
{
	return in_rt(tr, 1, fd_table_body);
}

static void test_fault_fd_table_growth(void **state)
{
	static const op_t op = {
		.name = "a wait on fd 1100 beside a wait on a low fd",
		.run = op_fd_table,
		.sites = KIND(FAULT_ALLOC),
		.errs = {-ENOMEM, 0}};

	(void)state;
	sweep_op(&op);
}

/* ---- real fd exhaustion ----------------------------------------------------------------- */

/* Sets RLIMIT_NOFILE so that exactly `spare` fd numbers are free below
 * it. */
static int leave_fds(int spare)
{
	struct rlimit rl;
	int fd = 0;

	for (int free_seen = 0;; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			if (free_seen == spare)
				break;
			free_seen++;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	rl.rlim_cur = (rlim_t)fd;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

static int nap_task(void *arg)
{
	(void)arg;
	return coev_sleep(COEV_MSEC(1)) == 0 ? 42 : -1;
}

static void rt_new_with_fds(void *arg)
{
	coev_config_t cfg;
	coev_rt_t *rt;
	coev_task_t *t;
	int r, ret = 0;

	coev_config_init(&cfg);
	cfg.workers = 2;
	if (leave_fds((int)(intptr_t)arg) != 0) {
		fprintf(stderr, "setrlimit failed\n");
		return;
	}
	r = coev_rt_new(&cfg, &rt);
	if (r == 0) {
		if (coev_rt_spawn(rt, NULL, nap_task, NULL, &t) == 0)
			coev_join(t, &ret);
		coev_rt_free(rt);
	}
	fprintf(stderr, "coev_rt_new: %d, task: %d\n", r, ret);
}

/* Each child leaves `spare` fds: coev_rt_new either fails cleanly with
 * -EMFILE or starts a runtime that works; it never aborts (libev aborts
 * when it cannot make a loop's wake-up fd). */
static void test_fault_fd_limit_rt_new(void **state)
{
	tu_child_t *res = malloc(sizeof *res);
	int spare, r, ret, started = 0;

	(void)state;
	assert_non_null(res);
	for (spare = 0; spare <= 8; spare++) {
		assert_int_equal(tu_run_in_child(rt_new_with_fds,
						 (void *)(intptr_t)spare, res),
				 0);
		if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0 ||
		    sscanf(res->out, "coev_rt_new: %d, task: %d", &r, &ret) !=
			    2) {
			tu_child_dump(res);
			fail_msg("with %d fds free the child did not end "
				 "cleanly",
				 spare);
		}
		if (r == 0) {
			assert_int_equal(ret, 42);
			started++;
		} else if (r != -EMFILE) {
			tu_child_dump(res);
			fail_msg("with %d fds free: %d (%s)", spare, r,
				 coev_strerror(r));
		}
	}
	/* Enough fds for both workers' loops by the end. */
	assert_true(started > 0);
	assert_int_equal(r, 0);
	free(res);
}

/* ---- setup and the table ------------------------------------------------------------------------------- */

static void *nothing(void *arg)
{
	return arg;
}

/* Room for the fd-table test's high fd; and ThreadSanitizer starts a
 * thread of its own at the first pthread_create and keeps it: start it
 * before any trial counts threads. */
static int group_setup(void **state)
{
	pthread_t th;

	(void)state;
	assert_int_equal(tu_raise_nofile(2 * HIGH_FD, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, nothing, NULL), 0);
	pthread_join(th, NULL);
	return 0;
}

static int print_table(void **state)
{
	(void)state;
	printf("fault sites per operation (calls of each kind on the "
	       "success path; trials run):\n");
	for (int i = 0; i < table_len; i++) {
		printf("  %-44s", table[i].name);
		for (int k = 0; k < FAULT_KINDS; k++)
			if (table[i].swept & KIND(k))
				printf(" %s %ld (%ld)",
				       fault_kind_name((enum fault_kind)k),
				       table[i].sites[k], table[i].trials[k]);
		printf("\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_fault_rt_new),
		TU_FD_TEST(test_fault_run),
		TU_FD_TEST(test_fault_rt_stop_never_allocates),
		TU_FD_TEST(test_fault_rt_spawn),
		TU_FD_TEST(test_fault_spawn),
		TU_FD_TEST(test_fault_first_run_maps_a_stack),
		TU_FD_TEST(test_fault_wait_for),
		TU_FD_TEST(test_fault_join_never_allocates),
		TU_FD_TEST(test_fault_scope),
		TU_FD_TEST(test_fault_blocking),
		TU_FD_TEST(test_fault_sync_never_allocates),
		TU_FD_TEST(test_fault_chan),
		TU_FD_TEST(test_fault_future),
		TU_FD_TEST(test_fault_submit),
		TU_FD_TEST(test_fault_watch_timer_sockset),
		TU_FD_TEST(test_fault_tcp),
		TU_FD_TEST(test_fault_fd_table_growth),
		TU_FD_TEST(test_fault_busy_runtime),
		TU_FD_TEST(test_fault_fd_limit_rt_new),
	};
	int rc;

	(void)argc;
	stack_kinds = KIND(FAULT_MMAP) |
		      (tu_stack_guard_regions() ? 0 : KIND(FAULT_MPROTECT));
	printf("stacks guarded by %s\n", stack_kinds & KIND(FAULT_MPROTECT)
						 ? "the fallback (mprotect)"
						 : "guard regions (madvise)");
	rc = cmocka_run_group_tests(tests, group_setup, print_table);
	return tu_rerun_fallback(argv, rc);
}
