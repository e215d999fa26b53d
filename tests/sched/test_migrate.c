/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_migrate.c — the COEV_DEBUG_MIGRATE debug option
 * (sched/worker.c, schedule_migrate): with it on, a task resumed after a
 * yield, a park or a sleep runs on the worker after the one it last ran
 * on; pinned tasks stay; with it off nothing is forced.
 *
 * Every runtime here sets cfg.debug itself, so the file gives the same
 * results when the whole suite runs with COEV_DEBUG_MIGRATE=1 exported.
 */
#include "tests/testutil.h"

#include <pthread.h>

#include "sched/internal.h"

/* Resumes checked per test. */
#define ROUNDS TU_SCALE(1000, 500, 200)

static coev_config_t migrate_config(unsigned workers, unsigned debug)
{
	coev_config_t cfg = tu_config(workers);

	cfg.debug = debug;
	return cfg;
}

/* Runs fn(arg) as main with `workers` workers and migration on. */
static int run_migrating(coev_fn fn, void *arg, unsigned workers)
{
	coev_config_t cfg = migrate_config(workers, COEV_DEBUG_MIGRATE);

	return coev_run(fn, arg, &cfg);
}

/* Checks that the caller now runs on the worker after *last and records
 * where it is. */
#define CHECK_MOVED(last, n)                                                \
	do {                                                                \
		int here_ = coev_worker_id();                               \
		TU_CHECK_MSG(here_ == (*(last) + 1) % (int)(n),             \
			     "resumed on worker %d, last ran on %d", here_, \
			     *(last));                                      \
		*(last) = here_;                                            \
	} while (0)

/* ---- configuration ------------------------------------------------------ */

static void test_migrate_config_from_environment(void **state)
{
	const char *was = getenv("COEV_DEBUG_MIGRATE");
	char *saved = was ? strdup(was) : NULL;
	coev_config_t cfg;

	(void)state;
	unsetenv("COEV_DEBUG_MIGRATE");
	memset(&cfg, 0xab, sizeof cfg);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.debug, 0);

	setenv("COEV_DEBUG_MIGRATE", "1", 1);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.debug, COEV_DEBUG_MIGRATE);

	setenv("COEV_DEBUG_MIGRATE", "0", 1);
	memset(&cfg, 0xab, sizeof cfg);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.debug, 0);

	static const char *const bad[] = {"", "2", "yes", "1x", "-1", "01"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("COEV_DEBUG_MIGRATE", bad[i], 1);
		memset(&cfg, 0xab, sizeof cfg);
		assert_int_equal(coev_config_init(&cfg), -EINVAL);
		/* That field keeps its default; the others are set. */
		assert_int_equal(cfg.debug, 0);
		assert_int_equal(cfg.stack_size, COEV_STACK_DEFAULT);
	}

	if (saved)
		setenv("COEV_DEBUG_MIGRATE", saved, 1);
	else
		unsetenv("COEV_DEBUG_MIGRATE");
	free(saved);
}

static void test_migrate_rejects_unknown_debug_flags(void **state)
{
	static const unsigned bad[] = {4, 5, 0x100, 0x80000000u, ~0u};
	coev_rt_t *rt = (coev_rt_t *)&rt;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		coev_config_t cfg = migrate_config(2, bad[i]);
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
	}
	coev_config_t cfg = migrate_config(2, COEV_DEBUG_MIGRATE);
	rt = NULL;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	coev_rt_free(rt);
}

/* ---- yields ------------------------------------------------------------- */

static int yield_main(void *arg)
{
	unsigned n = *(unsigned *)arg;
	int last = coev_worker_id();

	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		CHECK_MOVED(&last, n);
	}
	return 0;
}

static void test_migrate_yield_moves_every_resume(void **state)
{
	(void)state;
	for (unsigned n = 2; n <= 3; n++) {
		assert_int_equal(run_migrating(yield_main, &n, n), 0);
		tu_assert_no_failures();
	}
}

/* ---- parks and wakes ---------------------------------------------------- */

/*
 * Two tasks bounce a token: each waits with "while (turn != me) park()",
 * then passes the turn and wakes the other. Every return from a park is a
 * resume, spurious or not, and must land on the next worker.
 */
typedef struct pair {
	atomic_int turn;
	_Atomic(coev_task_t *) side[2];
	atomic_int out[2];
	unsigned workers;
	long parks[2];
} pair_t;

static int pair_side(pair_t *p, int me)
{
	coev_task_t *peer;
	int last = coev_worker_id();
	long parks = 0;

	while ((peer = atomic_load(&p->side[1 - me])) == NULL) {
		coev_yield();
		CHECK_MOVED(&last, p->workers);
	}
	for (int i = 0; i < ROUNDS; i++) {
		while (atomic_load(&p->turn) != me) {
			coev__park();
			CHECK_MOVED(&last, p->workers);
			parks++;
		}
		atomic_store(&p->turn, 1 - me);
		coev__wake(peer);
	}
	/* No wake may reach a task that has ended: leave together. */
	atomic_store(&p->out[me], 1);
	while (!atomic_load(&p->out[1 - me])) {
		coev_yield();
		CHECK_MOVED(&last, p->workers);
	}
	p->parks[me] = parks;
	return 0;
}

static int pair_a(void *arg)
{
	return pair_side(arg, 0);
}

static int pair_b(void *arg)
{
	return pair_side(arg, 1);
}

static int pair_main(void *arg)
{
	pair_t *p = arg;
	coev_task_t *a, *b;

	TU_CHECK_EQ(coev_spawn(pair_a, p, &a), 0);
	TU_CHECK_EQ(coev_spawn(pair_b, p, &b), 0);
	atomic_store(&p->side[0], a);
	atomic_store(&p->side[1], b);
	TU_CHECK_EQ(coev_join(a, NULL), 0);
	TU_CHECK_EQ(coev_join(b, NULL), 0);
	return 0;
}

static void test_migrate_park_and_wake_move(void **state)
{
	(void)state;
	for (unsigned n = 2; n <= 3; n++) {
		pair_t p = {.workers = n};
		assert_int_equal(run_migrating(pair_main, &p, n), 0);
		tu_assert_no_failures();
		/* Every turn but the first of each side waits for the
		 * other side's wake. */
		assert_true(p.parks[0] + p.parks[1] >= ROUNDS);
	}
}

/* A plain thread wakes a parked task: the wake, not the waker's worker,
 * decides where the task resumes. */
typedef struct foreign {
	_Atomic(coev_task_t *) task;
	atomic_int go, done;
	long parks;
} foreign_t;

static int foreign_task(void *arg)
{
	foreign_t *f = arg;
	int last = coev_worker_id();

	for (int i = 0; i < ROUNDS; i++) {
		while (atomic_load(&f->go) <= i) {
			coev__park();
			CHECK_MOVED(&last, 2);
			f->parks++;
		}
		atomic_store(&f->done, i + 1);
	}
	return 0;
}

static void *foreign_waker(void *arg)
{
	foreign_t *f = arg;
	coev_task_t *t;

	while ((t = atomic_load(&f->task)) == NULL)
		tu_nap_ms(1);
	for (int i = 0; i < ROUNDS; i++) {
		atomic_store(&f->go, i + 1);
		coev__wake(t);
		if (tu_thread_wait_at_least(&f->done, i + 1) != 0) {
			TU_CHECK_MSG(0, "round %d never finished", i);
			break;
		}
	}
	return NULL;
}

static void test_migrate_foreign_wake_moves(void **state)
{
	coev_config_t cfg = migrate_config(2, COEV_DEBUG_MIGRATE);
	foreign_t f = {.parks = 0};
	coev_rt_t *rt = NULL;
	coev_task_t *t;
	pthread_t th;

	(void)state;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(pthread_create(&th, NULL, foreign_waker, &f), 0);
	assert_int_equal(coev_rt_spawn(rt, "parker", foreign_task, &f, &t), 0);
	atomic_store(&f.task, t);
	pthread_join(th, NULL);
	assert_int_equal(coev_join(t, NULL), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_true(f.parks >= 1);
}

/* ---- timed waits -------------------------------------------------------- */

/* Task resumptions on worker i so far (coev_rt_worker_stats' polls). */
static uint64_t polls_of(int i)
{
	coev_worker_stats_t st;

	TU_CHECK_EQ(coev_rt_worker_stats(coev_rt_current(), (unsigned)i, &st),
		    0);
	return st.polls;
}

/*
 * A sleep whose deadline has passed by the time it would arm its timer
 * returns at once, without parking (a thread preempted for 20 us does
 * that): such a round resumes nothing and has nothing to move. It is told
 * apart by the polls of the worker the task is on after the sleep: that
 * worker counts each resumption before it switches in (sched/task.c), so a
 * sleep that parked and resumed here, wherever it went, shows as a higher
 * count, while one that never parked leaves the count of a worker busy
 * running this task unchanged. The first reading is exact for the worker
 * the task was on, and may lag for the other one, which only makes a
 * resumption there look certain, as it is.
 */
static int sleep_main(void *arg)
{
	int last = coev_worker_id(), *parked = arg;
	uint64_t before[2];

	for (int i = 0; i < ROUNDS / 10; i++) {
		before[0] = polls_of(0);
		before[1] = polls_of(1);
		TU_CHECK_EQ(coev_sleep(COEV_USEC(20)), 0);
		if (polls_of(coev_worker_id()) == before[coev_worker_id()])
			continue;
		(*parked)++;
		CHECK_MOVED(&last, 2);
	}
	return 0;
}

/* The timer's own wake unpins the task, which then migrates. */
static void test_migrate_sleep_moves(void **state)
{
	int parked = 0;

	(void)state;
	assert_int_equal(run_migrating(sleep_main, &parked, 2), 0);
	tu_assert_no_failures();
	/* Nearly every 20 us sleep parks; a run where none did checked
	 * nothing. */
	assert_true(parked >= ROUNDS / 20);
}

/*
 * A task in a timed wait is pinned to its worker until the wait ends: a
 * wake from another task resumes it there, where its timer is armed.
 */
typedef struct timed {
	atomic_int ready, go, done;
	long wakes;
	int woken_parked; /* rounds whose wake found the waiter parked */
} timed_t;

static int timed_waiter(void *arg)
{
	timed_t *tw = arg;

	for (int i = 0; i < ROUNDS / 10; i++) {
		while (atomic_load(&tw->go) <= i) {
			int before = coev_worker_id();
			atomic_store(&tw->ready, i + 1);
			int r = coev__park_until(tu_guard());
			TU_CHECK_EQ(r, 0);
			TU_CHECK_EQ(coev_worker_id(), before);
			tw->wakes++;
		}
		atomic_store(&tw->done, i + 1);
	}
	return 0;
}

static int timed_main(void *arg)
{
	timed_t *tw = arg;
	coev_task_t *t;

	TU_CHECK_EQ(coev_spawn(timed_waiter, tw, &t), 0);
	for (int i = 0; i < ROUNDS / 10; i++) {
		/* The wake must find the waiter parked in its timed wait, or
		 * it only leaves a permit and nothing resumes it pinned. */
		TU_CHECK_EQ(tu_wait_at_least(&tw->ready, i + 1), 0);
		int r = tu_wait_parked(NULL, t, COEV_WAIT_TIMER, NULL);
		TU_CHECK_EQ(r, 0);
		tw->woken_parked += r == 0;
		atomic_store(&tw->go, i + 1);
		coev__wake(t);
		TU_CHECK_EQ(tu_wait_at_least(&tw->done, i + 1), 0);
	}
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	return 0;
}

static void test_migrate_timed_wait_stays_pinned(void **state)
{
	timed_t tw = {0};

	(void)state;
	assert_int_equal(run_migrating(timed_main, &tw, 2), 0);
	tu_assert_no_failures();
	/* Every round resumed a parked waiter through its pinned worker. */
	assert_int_equal(tw.woken_parked, ROUNDS / 10);
	assert_true(tw.wakes >= ROUNDS / 10);
}

/* ---- pinned tasks ------------------------------------------------------- */

static int pinned_main(void *arg)
{
	int last;

	(void)arg;
	TU_CHECK_EQ(coev_pin(), 0);
	last = coev_worker_id();
	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		TU_CHECK_EQ(coev_worker_id(), last);
	}
	TU_CHECK_EQ(coev_unpin(), 0);
	/* Pinned to the other worker, it goes there and stays. */
	TU_CHECK_EQ(coev_pin_to(1 - (unsigned)last), 0);
	TU_CHECK_EQ(coev_worker_id(), 1 - last);
	last = coev_worker_id();
	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		TU_CHECK_EQ(coev_worker_id(), last);
	}
	TU_CHECK_EQ(coev_unpin(), 0);
	/* Unpinned, it moves again. */
	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		CHECK_MOVED(&last, 2);
	}
	return 0;
}

static void test_migrate_pinned_task_stays(void **state)
{
	(void)state;
	assert_int_equal(run_migrating(pinned_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- one worker, and off ------------------------------------------------ */

static int one_worker_main(void *arg)
{
	pair_t *p = arg;
	coev_task_t *a, *b;

	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		TU_CHECK_EQ(coev_worker_id(), 0);
	}
	TU_CHECK_EQ(coev_sleep(COEV_USEC(20)), 0);
	TU_CHECK_EQ(coev_worker_id(), 0);
	TU_CHECK_EQ(coev_spawn(pair_a, p, &a), 0);
	TU_CHECK_EQ(coev_spawn(pair_b, p, &b), 0);
	atomic_store(&p->side[0], a);
	atomic_store(&p->side[1], b);
	TU_CHECK_EQ(coev_join(a, NULL), 0);
	TU_CHECK_EQ(coev_join(b, NULL), 0);
	return 0;
}

/* With one worker there is nowhere to go: the option changes nothing. */
static void test_migrate_one_worker_stays(void **state)
{
	pair_t p = {.workers = 1};

	(void)state;
	assert_int_equal(run_migrating(one_worker_main, &p, 1), 0);
	tu_assert_no_failures();
	assert_true(p.parks[0] + p.parks[1] >= ROUNDS);
}

static int count_moves_main(void *arg)
{
	int *moves = arg, last = coev_worker_id();

	for (int i = 0; i < ROUNDS; i++) {
		TU_CHECK_EQ(coev_yield(), 0);
		if (coev_worker_id() != last)
			(*moves)++;
		last = coev_worker_id();
	}
	return 0;
}

/* Off, a yield goes to the back of its own worker's ring and is popped
 * there at once; only a rare steal by the idle worker moves it. The count
 * comes back through the argument: coev_run's result is main's or an
 * error, and a count cannot tell them apart. */
static void test_migrate_off_forces_nothing(void **state)
{
	coev_config_t cfg = migrate_config(2, 0);
	int moves = 0;

	(void)state;
	assert_int_equal(coev_run(count_moves_main, &moves, &cfg), 0);
	tu_assert_no_failures();
	print_message("moved on %d of %d yields\n", moves, ROUNDS);
	assert_true(moves < ROUNDS / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_config_from_environment),
		cmocka_unit_test(test_migrate_rejects_unknown_debug_flags),
		cmocka_unit_test(test_migrate_yield_moves_every_resume),
		cmocka_unit_test(test_migrate_park_and_wake_move),
		cmocka_unit_test(test_migrate_foreign_wake_moves),
		cmocka_unit_test(test_migrate_sleep_moves),
		cmocka_unit_test(test_migrate_timed_wait_stays_pinned),
		cmocka_unit_test(test_migrate_pinned_task_stays),
		cmocka_unit_test(test_migrate_one_worker_stays),
		cmocka_unit_test(test_migrate_off_forces_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
