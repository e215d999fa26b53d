/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_event.c — coev_event_t (include/coev/sync.h): a set
 * wakes every waiter (tasks on every worker and plain threads), round
 * after round; a waiter woken by a set returns 0 even when the event was
 * cleared before it ran; clear makes later waits wait; deadlines and
 * cancellation (from a task, from a plain thread) while waiting; cancels
 * and timeouts racing a set; ping-pong between a plain thread and a task;
 * calls from a loop callback; destroying an event with waiters aborts.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#define TU_LOOP_CALLS 1
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <pthread.h>
#include <semaphore.h>

/* ---- helpers ------------------------------------------------------------ */

/* A waiter: waits once and records how it ended. */
typedef struct ew {
	coev_event_t *e;
	coev_time_t deadline; /* COEV_FOREVER: coev_event_wait */
	coev_time_t push;
	int precancel;
	int shield;
	atomic_int *setting; /* if not NULL: must be 1 when the wait is 0 */
	atomic_int arrived;
	atomic_int finished;
	int rc;
	int set_seen; /* *setting when the wait returned */
	coev_time_t ended;
	int after_rc;
	tu_thread_at_t at; /* a plain thread's, for tu_wait_thread_parked */
} ew_t;

static int event_waiter(void *arg)
{
	ew_t *w = arg;
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	atomic_store(&w->arrived, 1);
	int rc = w->deadline == COEV_FOREVER
			 ? coev_event_wait(w->e)
			 : coev_event_wait_dl(w->e, w->deadline);
	w->ended = coev_now();
	if (w->setting)
		w->set_seen = atomic_load(w->setting);
	if (tok >= 0)
		coev_deadline_pop(tok);
	w->rc = rc;
	if (rc != 0)
		w->after_rc = coev_sleep(COEV_MSEC(1));
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return rc;
}

static void *thread_waiter(void *arg)
{
	ew_t *w = arg;

	TU_THREAD_AT(&w->at);
	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_event_wait(w->e)
			: coev_event_wait_dl(w->e, w->deadline);
	w->ended = coev_now();
	atomic_store(&w->finished, 1);
	return NULL;
}

/* ---- a set wakes everyone, round after round ---------------------------- */

#define ROUNDS TU_SCALE(3000, 1000, 500)
#define RW_TASKS 10
#define RW_THREADS 2

typedef struct rounds {
	coev_event_t *ev; /* ROUNDS events, one per round */
	atomic_int arrived[ROUNDS];
	atomic_int sets;  /* rounds set so far */
	atomic_int early; /* waits that returned before their set */
	atomic_int errors;
} rounds_t;

static void rounds_pass(rounds_t *r)
{
	for (int i = 0; i < ROUNDS; i++) {
		atomic_fetch_add(&r->arrived[i], 1);
		int rc = i % 4 == 3 ? coev_event_wait_dl(&r->ev[i], tu_guard())
				    : coev_event_wait(&r->ev[i]);
		if (rc != 0) {
			atomic_fetch_add(&r->errors, 1);
			return;
		}
		if (atomic_load(&r->sets) < i + 1)
			atomic_fetch_add(&r->early, 1);
		if (!coev_event_is_set(&r->ev[i]))
			atomic_fetch_add(&r->early, 1);
	}
}

static int rounds_task(void *arg)
{
	rounds_pass(arg);
	return 0;
}

static void *rounds_thread(void *arg)
{
	rounds_pass(arg);
	return NULL;
}

static void test_event_set_wakes_every_waiter(void **state)
{
	rounds_t *r = calloc(1, sizeof *r);
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t[RW_TASKS];
	pthread_t th[RW_THREADS];

	(void)state;
	assert_non_null(r);
	r->ev = calloc(ROUNDS, sizeof *r->ev);
	assert_non_null(r->ev);
	/* Half zero-initialised (COEV_EVENT_INIT), half init'ed. */
	for (int i = 0; i < ROUNDS; i += 2)
		assert_int_equal(coev_event_init(&r->ev[i]), 0);
	for (int i = 0; i < RW_TASKS; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "waiter", rounds_task, r, &t[i]), 0);
	for (int i = 0; i < RW_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rounds_thread, r),
				 0);
	/* This plain thread sets each round's event once everybody has
	 * arrived there (some already wait, some are on their way). */
	for (int i = 0; i < ROUNDS; i++) {
		assert_int_equal(tu_thread_wait_at_least(&r->arrived[i],
							 RW_TASKS + RW_THREADS),
				 0);
		atomic_store(&r->sets, i + 1);
		coev_event_set(&r->ev[i]);
	}
	for (int i = 0; i < RW_TASKS; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	for (int i = 0; i < RW_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&r->errors), 0);
	assert_int_equal(atomic_load(&r->early), 0);
	for (int i = 0; i < ROUNDS; i++) {
		assert_int_equal(coev_event_is_set(&r->ev[i]), 1);
		coev_event_destroy(&r->ev[i]);
	}
	free(r->ev);
	free(r);
	tu_assert_no_failures();
}

/* ---- set then clear at once: the waiters still wake --------------------- */

#define SC_WAITERS 6

typedef struct sc {
	coev_event_t e;
	atomic_int setting;
	int rounds;
	int with_thread;
} sc_t;

static int set_clear_main(void *arg)
{
	sc_t *s = arg;

	TU_CHECK_EQ(coev_event_init(&s->e), 0);
	for (int round = 0; round < s->rounds; round++) {
		ew_t w[SC_WAITERS], tw;
		coev_task_t *t[SC_WAITERS];
		pthread_t th;

		atomic_store(&s->setting, 0);
		for (int i = 0; i < SC_WAITERS; i++) {
			w[i] = (ew_t){.e = &s->e,
				      .deadline = tu_guard(),
				      .setting = &s->setting};
			TU_CHECK_EQ(coev_spawn(event_waiter, &w[i], &t[i]), 0);
		}
		tw = (ew_t){.e = &s->e, .deadline = tu_guard()};
		if (s->with_thread)
			TU_CHECK_EQ(
				pthread_create(&th, NULL, thread_waiter, &tw),
				0);
		/* Every waiter in the queue before the set: one that came
		 * after the clear would wait on. */
		for (int i = 0; i < SC_WAITERS; i++)
			parked(t[i], COEV_WAIT_EVENT, &s->e);
		if (s->with_thread) {
			TU_CHECK_EQ(tu_wait_at_least(&tw.arrived, 1), 0);
			TU_CHECK_EQ(tu_wait_thread_parked(&tw.at), 0);
		}
		atomic_store(&s->setting, 1);
		coev_event_set(&s->e);
		coev_event_clear(&s->e);
		TU_CHECK_EQ(coev_event_is_set(&s->e), 0);
		for (int i = 0; i < SC_WAITERS; i++) {
			TU_CHECK_EQ(coev_join(t[i], NULL), 0);
			TU_CHECK_MSG(w[i].rc == 0,
				     "round %d waiter %d: %d after set+clear",
				     round, i, w[i].rc);
			TU_CHECK_EQ(w[i].set_seen, 1);
		}
		if (s->with_thread) {
			pthread_join(th, NULL);
			TU_CHECK_EQ(tw.rc, 0);
		}
	}
	/* Cleared: a new wait waits. */
	TU_CHECK_EQ(coev_event_wait_dl(&s->e, coev_now() + COEV_MSEC(5)),
		    -ETIMEDOUT);
	coev_event_destroy(&s->e);
	return 0;
}

static void test_event_set_then_clear_still_wakes_waiters(void **state)
{
	sc_t s = {.rounds = TU_SCALE(10, 5, 3)};

	(void)state;
	assert_int_equal(tu_run_main(set_clear_main, &s, 1), 0);
	s.with_thread = 1;
	assert_int_equal(tu_run_main(set_clear_main, &s, 2), 0);
	tu_assert_no_failures();
}

/* ---- clear, is_set, try-like waits -------------------------------------- */

static int clear_main(void *arg)
{
	coev_event_t e = COEV_EVENT_INIT;
	coev_time_t t0;

	(void)arg;
	TU_CHECK_EQ(coev_event_is_set(&e), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&e, coev_now() - 1), -ETIMEDOUT);
	t0 = coev_now();
	TU_CHECK_EQ(coev_event_wait_dl(&e, t0 + COEV_MSEC(20)), -ETIMEDOUT);
	TU_CHECK(coev_now() >= t0 + COEV_MSEC(20));
	coev_event_set(&e);
	coev_event_set(&e); /* idempotent */
	TU_CHECK_EQ(coev_event_is_set(&e), 1);
	TU_CHECK_EQ(coev_event_wait(&e), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&e, coev_now() - 1), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&e, 0), 0);
	coev_event_clear(&e);
	TU_CHECK_EQ(coev_event_is_set(&e), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&e, coev_now() + COEV_MSEC(10)),
		    -ETIMEDOUT);
	coev_event_clear(&e); /* idempotent */
	coev_event_set(&e);
	TU_CHECK_EQ(coev_event_wait(&e), 0);
	coev_event_destroy(&e);
	return 0;
}

static void test_event_clear_makes_later_waits_wait(void **state)
{
	coev_event_t e;

	(void)state;
	assert_int_equal(tu_run_main(clear_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(coev_event_init(NULL), -EINVAL);
	/* From this plain thread. */
	assert_int_equal(coev_event_init(&e), 0);
	assert_int_equal(coev_event_wait_dl(&e, coev_now() + COEV_MSEC(5)),
			 -ETIMEDOUT);
	coev_event_set(&e);
	assert_int_equal(coev_event_wait(&e), 0);
	coev_event_destroy(&e);
}

/* ---- deadlines and cancellation ----------------------------------------- */

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static int giveup_main(void *arg)
{
	coev_event_t e;
	coev_task_t *t1, *t2, *t3, *t4, *t5, *t6, *c;

	(void)arg;
	TU_CHECK_EQ(coev_event_init(&e), 0);
	ew_t w1 = {.e = &e, .deadline = coev_now() + COEV_MSEC(40)};
	ew_t w2 = {.e = &e,
		   .deadline = COEV_FOREVER,
		   .push = coev_now() + COEV_MSEC(30)};
	ew_t w3 = {.e = &e, .deadline = COEV_FOREVER};
	ew_t w4 = {.e = &e, .deadline = coev_deadline(COEV_SEC(60))};
	ew_t w5 = {.e = &e, .deadline = COEV_FOREVER, .precancel = 1};
	ew_t w6 = {
		.e = &e, .deadline = COEV_FOREVER, .precancel = 1, .shield = 1};
	ew_t w7 = {.e = &e, .deadline = COEV_FOREVER};
	coev_task_t *t7;
	TU_CHECK_EQ(coev_spawn_named("dl", event_waiter, &w1, &t1), 0);
	TU_CHECK_EQ(coev_spawn_named("push", event_waiter, &w2, &t2), 0);
	TU_CHECK_EQ(coev_spawn_named("cancel-me", event_waiter, &w3, &t3), 0);
	TU_CHECK_EQ(coev_spawn_named("cancel-me-2", event_waiter, &w4, &t4), 0);
	TU_CHECK_EQ(coev_spawn_named("precancelled", event_waiter, &w5, &t5),
		    0);
	TU_CHECK_EQ(coev_spawn_named("shielded", event_waiter, &w6, &t6), 0);
	TU_CHECK_EQ(coev_spawn_named("stays", event_waiter, &w7, &t7), 0);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	TU_CHECK_EQ(coev_join(t5, NULL), 0);
	TU_CHECK_EQ(w1.rc, -ETIMEDOUT);
	TU_CHECK(w1.ended >= w1.deadline);
	TU_CHECK_EQ(w1.after_rc, 0);
	TU_CHECK_EQ(w2.rc, -ETIMEDOUT);
	TU_CHECK(w2.ended >= w2.push);
	TU_CHECK_EQ(w5.rc, -ECANCELED);
	parked(t3, COEV_WAIT_EVENT, &e);
	parked(t4, COEV_WAIT_EVENT, &e);
	TU_CHECK_EQ(coev_cancel(t3), 0);
	TU_CHECK_EQ(coev_spawn(cancel_it, t4, &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(coev_join(t3, NULL), 0);
	TU_CHECK_EQ(coev_join(t4, NULL), 0);
	TU_CHECK_EQ(w3.rc, -ECANCELED);
	TU_CHECK_EQ(w3.after_rc, -ECANCELED);
	TU_CHECK_EQ(w4.rc, -ECANCELED);
	/* Those that gave up did not disturb the others. */
	parked(t6, COEV_WAIT_EVENT, &e);
	parked(t7, COEV_WAIT_EVENT, &e);
	TU_CHECK_EQ(atomic_load(&w6.finished), 0);
	TU_CHECK_EQ(atomic_load(&w7.finished), 0);
	TU_CHECK_EQ(coev_event_is_set(&e), 0);
	coev_event_set(&e);
	TU_CHECK_EQ(coev_join(t6, NULL), 0);
	TU_CHECK_EQ(coev_join(t7, NULL), 0);
	TU_CHECK_EQ(w6.rc, 0);
	TU_CHECK_EQ(w7.rc, 0);
	coev_event_destroy(&e);
	return 0;
}

static void test_event_deadline_and_cancel_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

static void test_event_cancel_from_thread_and_thread_waiters(void **state)
{
	coev_event_t e;
	coev_rt_t *rt = tu_new_rt(2);
	ew_t w1, w2, td, tf;
	coev_task_t *t1, *t2;
	pthread_t th, ta, tb;
	void *crc;

	(void)state;
	assert_int_equal(coev_event_init(&e), 0);
	w1 = (ew_t){.e = &e, .deadline = COEV_FOREVER};
	w2 = (ew_t){.e = &e, .deadline = COEV_FOREVER};
	assert_int_equal(coev_rt_spawn(rt, "w1", event_waiter, &w1, &t1), 0);
	assert_int_equal(coev_rt_spawn(rt, "w2", event_waiter, &w2, &t2), 0);
	assert_int_equal(tu_wait_parked(rt, t1, COEV_WAIT_EVENT, &e), 0);
	assert_int_equal(tu_wait_parked(rt, t2, COEV_WAIT_EVENT, &e), 0);
	assert_int_equal(pthread_create(&th, NULL, thread_cancel, t1), 0);
	pthread_join(th, &crc);
	assert_int_equal((intptr_t)crc, 0);
	assert_int_equal(coev_join(t1, NULL), 0);
	assert_int_equal(w1.rc, -ECANCELED);
	assert_int_equal(atomic_load(&w2.finished), 0);

	/* Plain threads waiting: one with a deadline, one without. */
	td = (ew_t){.e = &e, .deadline = coev_now() + COEV_MSEC(30)};
	tf = (ew_t){.e = &e, .deadline = COEV_FOREVER};
	assert_int_equal(pthread_create(&ta, NULL, thread_waiter, &td), 0);
	assert_int_equal(pthread_create(&tb, NULL, thread_waiter, &tf), 0);
	pthread_join(ta, NULL);
	assert_int_equal(td.rc, -ETIMEDOUT);
	assert_true(td.ended >= td.deadline);
	assert_int_equal(tu_thread_wait_at_least(&tf.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&tf.at), 0);
	assert_int_equal(atomic_load(&tf.finished), 0);
	/* A set from this plain thread wakes the thread and the task. */
	coev_event_set(&e);
	pthread_join(tb, NULL);
	assert_int_equal(tf.rc, 0);
	assert_int_equal(coev_join(t2, NULL), 0);
	assert_int_equal(w2.rc, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_event_destroy(&e);
	tu_assert_no_failures();
}

/* ---- cancels and timeouts racing a set ---------------------------------- */

/*
 * Each round: A waits with a deadline near the set, B without one and is
 * cancelled by a plain thread near the set, C waits and is not disturbed.
 * A and B end with 0 (only once the set has begun) or their error; C ends
 * with 0. No wait is lost, none returns 0 before a set.
 */
typedef struct erace {
	coev_event_t e;
	atomic_int setting;
	ew_t a, b, c;
	coev_task_t *tb;
	sem_t go;
	atomic_int gone, quit;
	unsigned cancel_spin;
	long a_ok, a_to, b_ok, b_cancelled;
} erace_t;

static void *erace_canceller(void *arg)
{
	erace_t *r = arg;

	for (;;) {
		while (sem_wait(&r->go) != 0) {
		}
		if (atomic_load(&r->quit))
			return NULL;
		tu_spin_ns(r->cancel_spin);
		TU_CHECK_EQ(coev_cancel(r->tb), 0);
		atomic_fetch_add(&r->gone, 1);
	}
}

#define ERACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int erace_main(void *arg)
{
	erace_t *r = arg;
	unsigned seed = 0x1234567u;
	pthread_t th;

	TU_CHECK_EQ(pthread_create(&th, NULL, erace_canceller, r), 0);
	for (int round = 0; round < ERACE_ROUNDS; round++) {
		unsigned v = rnd_next(&seed);
		coev_task_t *ta, *tc;

		TU_CHECK_EQ(coev_event_init(&r->e), 0);
		atomic_store(&r->setting, 0);
		r->a = (ew_t){.e = &r->e,
			      .deadline = coev_now() + (coev_time_t)(v % 40000),
			      .setting = &r->setting};
		r->b = (ew_t){.e = &r->e,
			      .deadline = COEV_FOREVER,
			      .setting = &r->setting};
		r->c = (ew_t){.e = &r->e,
			      .deadline = tu_guard(),
			      .setting = &r->setting};
		TU_CHECK_EQ(coev_spawn(event_waiter, &r->a, &ta), 0);
		TU_CHECK_EQ(coev_spawn(event_waiter, &r->b, &r->tb), 0);
		TU_CHECK_EQ(coev_spawn(event_waiter, &r->c, &tc), 0);
		if (v & 0x100)
			TU_CHECK_EQ(spin_until(&r->b.arrived, 1), 0);
		r->cancel_spin = (v >> 9) % 30000;
		sem_post(&r->go);
		tu_spin_ns((v >> 3) % 30000);
		atomic_store(&r->setting, 1);
		coev_event_set(&r->e);
		TU_CHECK_EQ(spin_until(&r->gone, round + 1), 0);
		int ra = 0, rb = 0, rc = 0;
		TU_CHECK_EQ(coev_join(ta, &ra), 0);
		TU_CHECK_EQ(coev_join(r->tb, &rb), 0);
		TU_CHECK_EQ(coev_join(tc, &rc), 0);
		TU_CHECK_MSG(ra == 0 || ra == -ETIMEDOUT, "round %d: A %d",
			     round, ra);
		TU_CHECK_MSG(rb == 0 || rb == -ECANCELED, "round %d: B %d",
			     round, rb);
		TU_CHECK_MSG(rc == 0, "round %d: C %d", round, rc);
		if (ra == 0)
			TU_CHECK_EQ(r->a.set_seen, 1);
		if (rb == 0)
			TU_CHECK_EQ(r->b.set_seen, 1);
		if (rc == 0)
			TU_CHECK_EQ(r->c.set_seen, 1);
		r->a_ok += ra == 0;
		r->a_to += ra == -ETIMEDOUT;
		r->b_ok += rb == 0;
		r->b_cancelled += rb == -ECANCELED;
		coev_event_destroy(&r->e);
		if (rc != 0)
			break;
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	return 0;
}

static void test_event_cancel_and_timeout_race_set(void **state)
{
	erace_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(tu_run_main(erace_main, r, 2), 0);
	print_message("A: %ld woken, %ld timed out; B: %ld woken, %ld "
		      "cancelled\n",
		      r->a_ok, r->a_to, r->b_ok, r->b_cancelled);
	tu_assert_no_failures();
	assert_int_equal(r->a_ok + r->a_to, ERACE_ROUNDS);
	assert_int_equal(r->b_ok + r->b_cancelled, ERACE_ROUNDS);
	assert_true(r->a_ok > 0 && r->a_to > 0);
	assert_true(r->b_ok > 0 && r->b_cancelled > 0);
	sem_destroy(&r->go);
	free(r);
}

/* ---- plain thread <-> task ping-pong ------------------------------------ */

#define PINGS TU_SCALE(100000, 30000, 15000)

typedef struct pp {
	coev_event_t ping, pong;
	long rounds;
	long seen;
} pp_t;

static int pong_task(void *arg)
{
	pp_t *p = arg;

	for (long i = 0; i < p->rounds; i++) {
		int rc = coev_event_wait(&p->ping);
		if (rc != 0) {
			TU_CHECK_EQ(rc, 0);
			return rc;
		}
		coev_event_clear(&p->ping);
		p->seen = i;
		coev_event_set(&p->pong);
	}
	return 0;
}

static void test_event_ping_pong_thread_and_task(void **state)
{
	pp_t p = {.rounds = PINGS};
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	int r = -1;

	(void)state;
	assert_int_equal(coev_event_init(&p.ping), 0);
	assert_int_equal(coev_event_init(&p.pong), 0);
	assert_int_equal(coev_rt_spawn(rt, "pong", pong_task, &p, &t), 0);
	for (long i = 0; i < p.rounds; i++) {
		coev_event_set(&p.ping);
		int rc = coev_event_wait_dl(&p.pong, tu_guard());
		if (rc != 0)
			fail_msg("round %ld: %s", i, coev_strerror(rc));
		coev_event_clear(&p.pong);
		if (p.seen != i)
			fail_msg("round %ld: the task saw %ld", i, p.seen);
	}
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_event_destroy(&p.ping);
	coev_event_destroy(&p.pong);
	tu_assert_no_failures();
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_event_t *e;
	int dl_rc, wait_rc, set_before, set_after;
} cb_t;

static void event_cb(void *arg)
{
	cb_t *c = arg;

	c->dl_rc = coev_event_wait_dl(c->e, coev_deadline(COEV_SEC(1)));
	c->wait_rc = c->dl_rc == COEV_ENOTCORO ? coev_event_wait(c->e) : 1;
	c->set_before = coev_event_is_set(c->e);
	coev_event_set(c->e); /* wakes the waiting task */
	c->set_after = coev_event_is_set(c->e);
}

static void clear_cb(void *arg)
{
	coev_event_clear(arg);
}

static int cb_main(void *arg)
{
	coev_event_t e;
	cb_t c = {.e = &e};
	ew_t w;
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_event_init(&e), 0);
	w = (ew_t){.e = &e, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn_named("waiter", event_waiter, &w, &t), 0);
	parked(t, COEV_WAIT_EVENT, &e);
	TU_CHECK_EQ(tu_on_loop(event_cb, &c), 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wait_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.set_before, 0);
	TU_CHECK_EQ(c.set_after, 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, 0);
	TU_CHECK_EQ(tu_on_loop(clear_cb, &e), 0);
	TU_CHECK_EQ(coev_event_is_set(&e), 0);
	coev_event_destroy(&e);
	return 0;
}

static void test_event_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- destroy with waiters aborts ---------------------------------------- */

static coev_event_t misuse_e;

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_event_wait(&misuse_e);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_event_init(&misuse_e);
	coev_spawn_named("stuck", destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_EVENT, &misuse_e);
	coev_event_destroy(&misuse_e);
	fprintf(stderr, "destroy with a waiter returned\n");
	return 0;
}

static void child_destroy_with_waiter(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	coev_run(destroy_main, NULL, &cfg);
}

static void test_event_destroy_with_waiters_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_destroy_with_waiter, NULL, res),
			 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "event");
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "event"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_event_set_wakes_every_waiter),
		TU_FD_TEST(test_event_set_then_clear_still_wakes_waiters),
		TU_FD_TEST(test_event_clear_makes_later_waits_wait),
		TU_FD_TEST(test_event_deadline_and_cancel_while_waiting),
		TU_FD_TEST(test_event_cancel_from_thread_and_thread_waiters),
		TU_FD_TEST(test_event_cancel_and_timeout_race_set),
		TU_FD_TEST(test_event_ping_pong_thread_and_task),
		TU_FD_TEST(test_event_from_loop_callback),
		TU_FD_TEST(test_event_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
