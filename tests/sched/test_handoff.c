/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_handoff.c — the hand-off (sched/task.c): a task that
 * parks right after waking another switches straight to it, and the bound
 * on that (coev__worker_handoff in sched/worker.c): two tasks handing off
 * to each other forever on one worker must still let the ring, the inject
 * queue and a timer run.
 *
 * One worker, so nothing but the bound can run the other work: no thief
 * takes it, and the monitor has no sleeper to wake. A starved task shows
 * up as a join that times out.
 */
#include "tests/testutil.h"

#include "sched/sched.h"

#define STUCK_AFTER COEV_SEC(TU_SCALE(30, 60, 90))

typedef struct pair {
	_Atomic(coev_task_t *) a, b;
	atomic_bool stop;
	atomic_long turns; /* wake-then-park turns, both sides */
	atomic_int out;	   /* sides that returned */
	long spawned_at;   /* turns when the stopper was spawned */
} pair_t;

static int stopper(void *arg)
{
	atomic_store((atomic_bool *)arg, true);
	return 0;
}

/* Wake the peer and park, until told to stop: every park follows a wake
 * of a task parked on this worker, so each one may hand off. With
 * spawn_at, spawn the stopper at that turn: its entry lands in the LIFO
 * slot and is pushed to the ring by the wake that follows, behind the
 * hand-offs. */
static int side(pair_t *p, _Atomic(coev_task_t *) *peer_slot, long spawn_at)
{
	coev_task_t *peer = tu_wait_task_ptr(peer_slot), *t = NULL;
	int r, ret = -1;

	for (long i = 0; !atomic_load(&p->stop); i++) {
		if (i == spawn_at) {
			p->spawned_at = atomic_load(&p->turns);
			if ((r = coev_spawn(stopper, (void *)&p->stop, &t)) < 0)
				return r;
		}
		atomic_fetch_add(&p->turns, 1);
		coev__wake(peer);
		coev__park();
	}
	coev__wake(peer); /* it may be parked: let it see stop */
	/* The last touch of peer: the test joins (and so frees) the tasks
	 * only once both sides are out. */
	atomic_fetch_add(&p->out, 1);
	if (t && (coev_join(t, &ret) < 0 || ret != 0))
		return -1;
	return 0;
}

static int side_a(void *arg)
{
	pair_t *p = arg;
	return side(p, &p->b, -1);
}

static int side_b(void *arg)
{
	pair_t *p = arg;
	return side(p, &p->a, -1);
}

static int spawn_in_ring(void *arg)
{
	pair_t *p = arg;
	return side(p, &p->b, 1000);
}

static int sleep_then_stop(void *arg)
{
	int r = coev_sleep(COEV_MSEC(20));

	atomic_store((atomic_bool *)arg, true);
	return r;
}

enum { VIA_RING, VIA_INJECT, VIA_TIMER };

static void run_pair(int via)
{
	coev_rt_t *rt = tu_new_rt(1);
	pair_t *p = calloc(1, sizeof *p);
	coev_task_t *ta, *tb, *ts = NULL;
	int ra = -1, rb = -1, rs = 0;

	assert_non_null(p);
	assert_int_equal(coev_rt_spawn(rt, "a",
				       via == VIA_RING ? spawn_in_ring : side_a,
				       p, &ta),
			 0);
	assert_int_equal(coev_rt_spawn(rt, "b", side_b, p, &tb), 0);
	atomic_store(&p->a, ta);
	atomic_store(&p->b, tb);
	if (via == VIA_TIMER)
		assert_int_equal(coev_rt_spawn(rt, "sleeper", sleep_then_stop,
					       (void *)&p->stop, &ts),
				 0);
	/* From this plain thread: the entry goes to the inject queue, which
	 * the worker looks at only on its fairness tick. */
	if (via == VIA_INJECT) {
		while (atomic_load(&p->turns) < 1000)
			sched_yield();
		assert_int_equal(coev_rt_spawn(rt, "stopper", stopper,
					       (void *)&p->stop, &ts),
				 0);
	}
	assert_int_equal(tu_thread_wait_at_least(&p->out, 2), 0);
	assert_int_equal(coev_join_dl(ta, coev_deadline(STUCK_AFTER), &ra), 0);
	assert_int_equal(coev_join_dl(tb, coev_deadline(STUCK_AFTER), &rb), 0);
	if (ts)
		assert_int_equal(
			coev_join_dl(ts, coev_deadline(STUCK_AFTER), &rs), 0);
	assert_int_equal(ra, 0);
	assert_int_equal(rb, 0);
	assert_int_equal(rs, 0);
	assert_int_equal(atomic_load(&p->out), 2);
	print_message("%ld turns before the other work stopped the pair\n",
		      atomic_load(&p->turns));
	/* The ring's turn comes after at most COEV_LIFO_MAX wakes in a row
	 * (the fairness tick, every 61, would come later): the pushed
	 * stopper runs within a few turns. */
	if (via == VIA_RING)
		assert_in_range(atomic_load(&p->turns) - p->spawned_at, 1,
				COEV_LIFO_MAX + 3);
	coev_rt_free(rt);
	free(p);
}

static void test_handoff_pair_lets_the_ring_run(void **state)
{
	(void)state;
	run_pair(VIA_RING);
}

static void test_handoff_pair_lets_the_inject_queue_run(void **state)
{
	(void)state;
	run_pair(VIA_INJECT);
}

static void test_handoff_pair_lets_a_timer_fire(void **state)
{
	(void)state;
	run_pair(VIA_TIMER);
}

/* A wake of the task that handed off, made by the task it handed off to
 * before that one parks: the permit of a task not yet published parked.
 * Each side wakes the other twice per turn; none may be lost. */
typedef struct counted {
	_Atomic(coev_task_t *) t[2];
	atomic_long seen[2];
	atomic_int out; /* sides done touching their peer */
	long rounds;
} counted_t;

static int counted_side(counted_t *c, int me)
{
	coev_task_t *peer = tu_wait_task_ptr(&c->t[1 - me]);

	for (long i = 1; i <= c->rounds; i++) {
		atomic_store(&c->seen[me], i);
		coev__wake(peer);
		coev__wake(peer);
		while (atomic_load(&c->seen[1 - me]) < i)
			coev__park();
	}
	coev__wake(peer);
	atomic_fetch_add(&c->out, 1); /* the last touch of peer */
	return 0;
}

static int counted_a(void *arg)
{
	return counted_side(arg, 0);
}

static int counted_b(void *arg)
{
	return counted_side(arg, 1);
}

static void test_handoff_no_lost_wakes(void **state)
{
	coev_rt_t *rt;
	counted_t c = {.rounds = TU_SCALE(200000, 100000, 20000)};
	coev_task_t *t[2];
	int r[2] = {-1, -1};

	(void)state;
	for (unsigned workers = 1; workers <= 2; workers++) {
		rt = tu_new_rt(workers);
		atomic_store(&c.t[0], NULL);
		atomic_store(&c.t[1], NULL);
		atomic_store(&c.seen[0], 0);
		atomic_store(&c.seen[1], 0);
		atomic_store(&c.out, 0);
		assert_int_equal(coev_rt_spawn(rt, "a", counted_a, &c, &t[0]),
				 0);
		assert_int_equal(coev_rt_spawn(rt, "b", counted_b, &c, &t[1]),
				 0);
		atomic_store(&c.t[0], t[0]);
		atomic_store(&c.t[1], t[1]);
		assert_int_equal(tu_thread_wait_at_least(&c.out, 2), 0);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(
				coev_join_dl(t[i], coev_deadline(STUCK_AFTER),
					     &r[i]),
				0);
			assert_int_equal(r[i], 0);
			assert_int_equal(atomic_load(&c.seen[i]), c.rounds);
		}
		coev_rt_free(rt);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handoff_pair_lets_the_ring_run),
		cmocka_unit_test(test_handoff_pair_lets_the_inject_queue_run),
		cmocka_unit_test(test_handoff_pair_lets_a_timer_fire),
		cmocka_unit_test(test_handoff_no_lost_wakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
