/*
 * tests/sched/test_worker.c — workers: work stealing, wakes across workers
 * (sched/internal.h: coev__park / coev__wake), per-worker statistics.
 *
 * A lost wake shows up as a task parked forever; the joins below use a
 * generous deadline so that it fails with a message rather than only by the
 * binary's timeout.
 */
#include "tests/testutil.h"

#include <pthread.h>

#include "sched/internal.h"

/* How long a stress test may take before it is declared stuck. */
#define STUCK_AFTER COEV_SEC(TU_SCALE(120, 150, 170))

static coev_rt_t *new_rt(unsigned workers)
{
	coev_config_t cfg = tu_config(workers);
	coev_rt_t *rt = NULL;

	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_non_null(rt);
	assert_int_equal(coev_rt_workers(rt), workers);
	return rt;
}

static void sum_stats(coev_rt_t *rt, coev_worker_stats_t *sum)
{
	memset(sum, 0, sizeof *sum);
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t st;
		assert_int_equal(coev_rt_worker_stats(rt, i, &st), 0);
		sum->polls += st.polls;
		sum->spawned += st.spawned;
		sum->finished += st.finished;
		sum->stolen += st.stolen;
		sum->steal_ops += st.steal_ops;
		sum->parks += st.parks;
		sum->inject_pops += st.inject_pops;
		sum->stacks_mapped += st.stacks_mapped;
		sum->stacks_pooled += st.stacks_pooled;
	}
}

/* Joins t from the test thread with a deadline; on a timeout detaches it,
 * so that coev_rt_free can still release everything, and fails. */
static int join_or_fail(coev_task_t *t, int *ret, const char *what)
{
	int rc = coev_join_dl(t, coev_deadline(STUCK_AFTER), ret);
	if (rc == -ETIMEDOUT) {
		coev_detach(t);
		fprintf(stderr, "%s: still not finished (a lost wake?)\n", what);
	}
	return rc;
}

/* ---- stealing ----------------------------------------------------------- */

#define STEAL_CHILDREN 200

typedef struct steal_child {
	int spawned_on;  /* the parent's worker when it spawned the child */
	int finished_on; /* the child's worker as it ends */
} steal_child_t;

static int steal_child_body(void *arg)
{
	steal_child_t *c = arg;

	/* Busy work without suspending: the child cannot move while it
	 * runs, so where it ends is where it started. */
	tu_spin_ns(COEV_USEC(TU_SCALE(500, 500, 1000)));
	c->finished_on = coev_worker_id();
	return 0;
}

static int steal_parent(void *arg)
{
	steal_child_t *c = arg;
	coev_task_t *t[STEAL_CHILDREN];
	int moved = 0;

	/* Spawning never suspends, so the parent stays on one worker and
	 * every child is queued there. */
	for (int i = 0; i < STEAL_CHILDREN; i++) {
		c[i].spawned_on = coev_worker_id();
		TU_CHECK_EQ(coev_spawn(steal_child_body, &c[i], &t[i]), 0);
	}
	for (int i = 0; i < STEAL_CHILDREN; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		if (c[i].finished_on != c[i].spawned_on)
			moved++;
	}
	return moved;
}

static void test_worker_stealing_moves_tasks(void **state)
{
	coev_rt_t *rt = new_rt(2);
	steal_child_t *c = calloc(STEAL_CHILDREN, sizeof *c);
	coev_task_t *t;
	int moved = -1;
	coev_worker_stats_t sum;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "steal-parent", steal_parent, c, &t),
			 0);
	assert_int_equal(join_or_fail(t, &moved, "steal-parent"), 0);
	sum_stats(rt, &sum);
	coev_rt_free(rt);
	tu_assert_no_failures();
	for (int i = 0; i < STEAL_CHILDREN; i++) {
		assert_in_range(c[i].spawned_on, 0, 1);
		assert_in_range(c[i].finished_on, 0, 1);
	}
	free(c);
	print_message("moved %d of %d; stolen %llu in %llu steals\n", moved,
		      STEAL_CHILDREN, (unsigned long long)sum.stolen,
		      (unsigned long long)sum.steal_ops);
	assert_true(moved > 0);
	assert_true(sum.stolen > 0);
	assert_true(sum.steal_ops > 0);
	assert_true(sum.stolen >= sum.steal_ops);
}

/* ---- no lost wakes ------------------------------------------------------ */

/*
 * Two tasks bounce a token: A waits for turn == 0, sets it to 1 and wakes
 * B; B waits for turn == 1, sets it to 0 and wakes A. Each wait is
 * "while (turn != mine) park()". A lost wake leaves both parked.
 * At the end each side waits (yielding) until the other has left its loop,
 * so that no wake is ever made on a task that has already ended.
 */
typedef struct pingpong {
	atomic_int turn;
	_Atomic(coev_task_t *) a, b;
	atomic_int a_out, b_out;
	long rounds;
	long a_count, b_count;
	long parks;
} pingpong_t;

static coev_task_t *wait_ptr(_Atomic(coev_task_t *) *p)
{
	coev_task_t *t;

	while ((t = atomic_load(p)) == NULL)
		coev_yield();
	return t;
}

static int pp_side(pingpong_t *p, int me)
{
	coev_task_t *peer = wait_ptr(me == 0 ? &p->b : &p->a);
	long parks = 0, count = 0;

	for (long i = 0; i < p->rounds; i++) {
		while (atomic_load_explicit(&p->turn, memory_order_acquire) !=
		       me) {
			coev__park();
			parks++;
		}
		count++;
		atomic_store_explicit(&p->turn, 1 - me, memory_order_release);
		coev__wake(peer);
	}
	atomic_store(me == 0 ? &p->a_out : &p->b_out, 1);
	while (!atomic_load(me == 0 ? &p->b_out : &p->a_out))
		coev_yield();
	if (me == 0)
		p->a_count = count;
	else
		p->b_count = count;
	return (int)(parks > INT32_MAX ? INT32_MAX : parks);
}

static int pp_a(void *arg)
{
	return pp_side(arg, 0);
}

static int pp_b(void *arg)
{
	return pp_side(arg, 1);
}

static void run_pairs(unsigned workers, int pairs, long rounds)
{
	coev_rt_t *rt = new_rt(workers);
	pingpong_t *p = calloc((size_t)pairs, sizeof *p);
	coev_task_t **ta = calloc((size_t)pairs, sizeof *ta);
	coev_task_t **tb = calloc((size_t)pairs, sizeof *tb);
	int stuck = 0;

	for (int i = 0; i < pairs; i++) {
		p[i].rounds = rounds;
		assert_int_equal(coev_rt_spawn(rt, "ping", pp_a, &p[i], &ta[i]),
				 0);
		assert_int_equal(coev_rt_spawn(rt, "pong", pp_b, &p[i], &tb[i]),
				 0);
		atomic_store(&p[i].a, ta[i]);
		atomic_store(&p[i].b, tb[i]);
	}
	for (int i = 0; i < pairs; i++) {
		int ra = -1, rb = -1;
		if (join_or_fail(ta[i], &ra, "ping") != 0 ||
		    join_or_fail(tb[i], &rb, "pong") != 0) {
			stuck++;
			break;
		}
		assert_true(ra >= 0 && rb >= 0);
		assert_int_equal(p[i].a_count, rounds);
		assert_int_equal(p[i].b_count, rounds);
		/* Both made every transition: the final turn is A's again. */
		assert_int_equal(atomic_load(&p[i].turn), 0);
	}
	/* After a timeout the stuck tasks are left to coev_rt_free. */
	coev_rt_free(rt);
	assert_int_equal(stuck, 0);
	free(p);
	free(ta);
	free(tb);
}

static void test_worker_no_lost_wakes_one_pair(void **state)
{
	(void)state;
	run_pairs(2, 1, TU_SCALE(1000000, 200000, 50000));
}

static void test_worker_no_lost_wakes_many_pairs(void **state)
{
	(void)state;
	run_pairs(2, 16, TU_SCALE(100000, 20000, 5000));
}

static void test_worker_no_lost_wakes_more_workers_than_cores(void **state)
{
	(void)state;
	run_pairs(4, 8, TU_SCALE(50000, 10000, 2500));
}

/* A foreign thread and a task bounce a token: the thread wakes the task
 * with coev__wake, the task answers through an atomic the thread polls. */
typedef struct foreign_pp {
	atomic_long to_task;   /* rounds handed to the task */
	atomic_long to_thread; /* rounds the task answered */
	_Atomic(coev_task_t *) task;
	long rounds;
} foreign_pp_t;

static int foreign_pp_task(void *arg)
{
	foreign_pp_t *f = arg;

	for (long i = 1; i <= f->rounds; i++) {
		while (atomic_load(&f->to_task) < i)
			coev__park();
		atomic_store(&f->to_thread, i);
	}
	return 0;
}

static void test_worker_wake_from_foreign_thread(void **state)
{
	coev_rt_t *rt = new_rt(2);
	foreign_pp_t f;
	coev_task_t *t;
	long rounds = TU_SCALE(200000, 50000, 10000);
	int lost = 0;

	(void)state;
	memset(&f, 0, sizeof f);
	f.rounds = rounds;
	assert_int_equal(coev_rt_spawn(rt, "foreign-pp", foreign_pp_task, &f,
				       &t),
			 0);
	coev_time_t give_up = coev_deadline(STUCK_AFTER);
	for (long i = 1; i <= rounds && !lost; i++) {
		atomic_store(&f.to_task, i);
		coev__wake(t);
		unsigned spins = 0;
		while (atomic_load(&f.to_thread) < i) {
			if (++spins % 1024 == 0) {
				sched_yield();
				if (coev_now() > give_up)
					lost = 1;
			}
		}
	}
	if (!lost)
		assert_int_equal(join_or_fail(t, NULL, "foreign-pp"), 0);
	else
		coev_detach(t);
	coev_rt_free(rt);
	assert_int_equal(lost, 0);
	assert_int_equal(atomic_load(&f.to_thread), rounds);
}

/* ---- the permit --------------------------------------------------------- */

static int wake_self_then_park(void *arg)
{
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++) {
		coev__wake(coev_self());
		coev__park(); /* must return: the wake left a permit */
	}
	/* Waking twice still leaves (at least) one permit. */
	coev__wake(coev_self());
	coev__wake(coev_self());
	coev__park();
	return n;
}

static void test_worker_wake_before_park_is_kept(void **state)
{
	/* One worker and no other task: nothing else could wake it. */
	coev_rt_t *rt = new_rt(1);
	coev_task_t *t;
	int r = -1;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "self-waker", wake_self_then_park,
				       (void *)(intptr_t)1000, &t),
			 0);
	int rc = coev_join_dl(t, coev_deadline(COEV_SEC(30)), &r);
	if (rc != 0)
		coev_detach(t);
	coev_rt_free(rt);
	assert_int_equal(rc, 0);
	assert_int_equal(r, 1000);
}

/* A wake from another task that arrives while the target still runs (it
 * has published "about to wait" but not parked yet) is kept too. */
typedef struct late_park {
	_Atomic(coev_task_t *) sleeper;
	atomic_int armed;  /* the sleeper will park next */
	atomic_int fired;  /* the waker has called coev__wake */
	atomic_int rounds_done;
	int rounds;
} late_park_t;

static int late_park_sleeper(void *arg)
{
	late_park_t *l = arg;

	for (int i = 0; i < l->rounds; i++) {
		atomic_store(&l->armed, 1);
		/* Keep running until the wake has certainly been made. */
		while (!atomic_load(&l->fired))
			;
		atomic_store(&l->fired, 0);
		coev__park(); /* the permit makes this return */
		atomic_store(&l->rounds_done, i + 1);
	}
	return 0;
}

static int late_park_waker(void *arg)
{
	late_park_t *l = arg;
	coev_task_t *s = wait_ptr(&l->sleeper);

	for (int i = 0; i < l->rounds; i++) {
		while (!atomic_load(&l->armed))
			;
		atomic_store(&l->armed, 0);
		coev__wake(s);
		atomic_store(&l->fired, 1);
		while (atomic_load(&l->rounds_done) != i + 1)
			;
	}
	return 0;
}

static void test_worker_wake_while_running_is_kept(void **state)
{
	/* Two workers, each running one of the tasks, both spinning: the
	 * only way for the sleeper to get past park is the kept permit. */
	coev_rt_t *rt = new_rt(2);
	late_park_t l;
	coev_task_t *ts, *tw;

	(void)state;
	memset(&l, 0, sizeof l);
	l.rounds = TU_SCALE(2000, 1000, 300);
	assert_int_equal(coev_rt_spawn(rt, "sleeper", late_park_sleeper, &l,
				       &ts),
			 0);
	atomic_store(&l.sleeper, ts);
	assert_int_equal(coev_rt_spawn(rt, "waker", late_park_waker, &l, &tw),
			 0);
	int rs = join_or_fail(ts, NULL, "sleeper");
	int rw = rs == 0 ? join_or_fail(tw, NULL, "waker") : -1;
	if (rs != 0)
		coev_detach(tw);
	coev_rt_free(rt);
	assert_int_equal(rs, 0);
	assert_int_equal(rw, 0);
	assert_int_equal(atomic_load(&l.rounds_done), l.rounds);
}

/* Parking outside a task aborts. */
static void park_outside_task(void *arg)
{
	(void)arg;
	coev__park();
	fprintf(stderr, "coev__park returned outside a task\n");
}

static void test_worker_park_outside_task_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_int_equal(tu_run_in_child(park_outside_task, NULL, res), 0);
	if (!tu_child_signaled(res, SIGABRT))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	free(res);
}

/* ---- statistics --------------------------------------------------------- */

#define STATS_TASKS 2000

static int stats_leaf(void *arg)
{
	(void)arg;
	coev_yield();
	return 0;
}

static int stats_main(void *arg)
{
	coev_task_t **t = calloc(STATS_TASKS, sizeof *t);

	(void)arg;
	for (int i = 0; i < STATS_TASKS; i++)
		TU_CHECK_EQ(coev_spawn(stats_leaf, NULL, &t[i]), 0);
	TU_CHECK_EQ(coev_gather(t, STATS_TASKS, (int[STATS_TASKS]){0}), 0);
	free(t);
	return 0;
}

static void test_worker_stats_count_work(void **state)
{
	coev_rt_t *rt = new_rt(2);
	coev_task_t *t;
	coev_worker_stats_t st, sum;

	(void)state;
	/* Bad arguments. */
	assert_int_equal(coev_rt_workers(NULL), 0);
	assert_int_equal(coev_rt_worker_stats(NULL, 0, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 2, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 100000, &st), -EINVAL);
	assert_int_equal(coev_rt_worker_stats(rt, 0, NULL), -EINVAL);

	assert_int_equal(coev_rt_spawn(rt, "stats-main", stats_main, NULL, &t),
			 0);
	assert_int_equal(join_or_fail(t, NULL, "stats-main"), 0);
	sum_stats(rt, &sum);
	coev_rt_free(rt);
	tu_assert_no_failures();

	/* Every task ran to its end on some worker: main and its children.
	 * Each ran at least twice (the leaves yield once). */
	assert_true(sum.finished >= STATS_TASKS + 1);
	assert_true(sum.spawned >= STATS_TASKS);
	assert_true(sum.polls >= (uint64_t)STATS_TASKS + 1);
	assert_true(sum.polls >= sum.finished);
	/* The main task came from outside: through the inject queue. */
	assert_true(sum.inject_pops >= 1);
	assert_true(sum.stacks_mapped >= 1);
	assert_true(sum.stacks_pooled <= sum.stacks_mapped);
	assert_true(sum.stolen >= sum.steal_ops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_park_outside_task_aborts),
		cmocka_unit_test(test_worker_stealing_moves_tasks),
		cmocka_unit_test(test_worker_no_lost_wakes_one_pair),
		cmocka_unit_test(test_worker_no_lost_wakes_many_pairs),
		cmocka_unit_test(
			test_worker_no_lost_wakes_more_workers_than_cores),
		cmocka_unit_test(test_worker_wake_from_foreign_thread),
		cmocka_unit_test(test_worker_wake_before_park_is_kept),
		cmocka_unit_test(test_worker_wake_while_running_is_kept),
		cmocka_unit_test(test_worker_stats_count_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
