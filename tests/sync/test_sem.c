/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_sem.c — coev_sem_t (include/coev/sync.h): the count of
 * permits in use never exceeds the semaphore's count under contention
 * from tasks on every worker and plain threads; waiters are served first
 * in, first out and a release goes straight to the longest waiter;
 * deadlines and cancellation (from a task, from a plain thread) leave the
 * count intact; cancels and timeouts racing releases lose and duplicate
 * nothing (successes + permits left == permits released); ping-pong
 * between a plain thread and a task; -EOVERFLOW at COEV_SEM_MAX; calls
 * from a loop callback; destroying a semaphore with waiters aborts.
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

/* ---- the count is never exceeded ---------------------------------------- */

#define SEM_COUNT 3

typedef struct bound {
	coev_sem_t *s;
	long iters;
	atomic_int inflight;
	atomic_int max_inflight;
	atomic_long sections;
	atomic_long timeouts, busy;
} bound_t;

typedef struct bound_arg {
	bound_t *b;
	int kind; /* 0 acquire, 1 acquire_dl with short deadlines, 2 try */
} bound_arg_t;

static void bound_enter(bound_t *b)
{
	int n = atomic_fetch_add(&b->inflight, 1) + 1;
	int m = atomic_load(&b->max_inflight);

	while (n > m &&
	       !atomic_compare_exchange_weak(&b->max_inflight, &m, n)) {
	}
	atomic_fetch_add_explicit(&b->sections, 1, memory_order_relaxed);
}

static void bound_leave(bound_t *b)
{
	atomic_fetch_sub(&b->inflight, 1);
}

static int bound_acquire(bound_t *b, int kind, long i)
{
	int rc;

	switch (kind) {
	case 0: return coev_sem_acquire(b->s);
	case 1:
		for (;;) {
			rc = coev_sem_acquire_dl(
				b->s, coev_now() + COEV_USEC(5 + i % 40));
			if (rc != -ETIMEDOUT)
				return rc;
			atomic_fetch_add_explicit(&b->timeouts, 1,
						  memory_order_relaxed);
		}
	default:
		rc = coev_sem_tryacquire(b->s);
		if (rc == 0)
			return 0;
		TU_CHECK_EQ(rc, -EAGAIN);
		atomic_fetch_add_explicit(&b->busy, 1, memory_order_relaxed);
		return coev_sem_acquire(b->s);
	}
}

static int bound_task(void *arg)
{
	bound_arg_t *a = arg;
	bound_t *b = a->b;

	for (long i = 0; i < b->iters; i++) {
		int rc = bound_acquire(b, a->kind, i);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "acquire (kind %d): %s", a->kind,
				     coev_strerror(rc));
			return rc;
		}
		bound_enter(b);
		if (i % 7 == 0)
			coev_yield(); /* hold it across a switch */
		bound_leave(b);
		TU_CHECK_EQ(coev_sem_release(b->s), 0);
	}
	return 0;
}

static void *bound_thread(void *arg)
{
	bound_arg_t *a = arg;
	bound_t *b = a->b;

	for (long i = 0; i < b->iters; i++) {
		int rc = bound_acquire(b, a->kind, i);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "thread acquire (kind %d): %s",
				     a->kind, coev_strerror(rc));
			return NULL;
		}
		bound_enter(b);
		if (i % 7 == 0)
			sched_yield();
		bound_leave(b);
		TU_CHECK_EQ(coev_sem_release(b->s), 0);
	}
	return NULL;
}

#define BOUND_MAX 32

static void run_bound(unsigned workers, int ntasks, int nthreads, long iters)
{
	coev_sem_t s;
	coev_rt_t *rt = tu_new_rt(workers);
	bound_t b = {.s = &s, .iters = iters};
	bound_arg_t args[BOUND_MAX];
	coev_task_t *t[BOUND_MAX];
	pthread_t th[BOUND_MAX];

	assert_int_equal(coev_sem_init(&s, SEM_COUNT), 0);
	assert_true(ntasks + nthreads <= BOUND_MAX);
	for (int i = 0; i < ntasks + nthreads; i++)
		args[i] = (bound_arg_t){.b = &b, .kind = i % 3};
	for (int i = 0; i < ntasks; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "bound", bound_task, &args[i], &t[i]),
			0);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(pthread_create(&th[i], NULL, bound_thread,
						&args[ntasks + i]),
				 0);
	for (int i = 0; i < ntasks; i++) {
		int r = -1;
		assert_int_equal(coev_join(t[i], &r), 0);
		assert_int_equal(r, 0);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	print_message("%u workers, %d tasks, %d threads: %ld sections, at "
		      "most %d at once, %ld timeouts, %ld busy\n",
		      workers, ntasks, nthreads, atomic_load(&b.sections),
		      atomic_load(&b.max_inflight), atomic_load(&b.timeouts),
		      atomic_load(&b.busy));
	tu_assert_no_failures();
	assert_true(atomic_load(&b.max_inflight) <= SEM_COUNT);
	assert_int_equal(atomic_load(&b.inflight), 0);
	assert_int_equal(atomic_load(&b.sections),
			 (long)(ntasks + nthreads) * iters);
	/* Every permit came back. */
	assert_int_equal(coev_sem_value(&s), SEM_COUNT);
	coev_sem_destroy(&s);
}

#define BOUND_ITERS TU_SCALE(100000, 30000, 15000)

static void test_sem_never_exceeds_its_count(void **state)
{
	(void)state;
	run_bound(2, 12, 0, BOUND_ITERS);
	run_bound(4, 12, 0, BOUND_ITERS / 4);
	run_bound(2, 8, 3, BOUND_ITERS / 2);
}

/* ---- FIFO: releases go to the longest waiter ---------------------------- */

typedef struct sw {
	coev_sem_t *s;
	coev_time_t deadline; /* COEV_FOREVER: coev_sem_acquire */
	coev_time_t push;     /* if not 0: a pushed deadline */
	int precancel;
	int shield;
	int id;
	int *log; /* ids in the order they got a permit */
	atomic_int *logn;
	atomic_int arrived;
	atomic_int finished;
	int rc;
	coev_time_t ended;
	int after_rc;
} sw_t;

static int sem_waiter(void *arg)
{
	sw_t *w = arg;
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	atomic_store(&w->arrived, 1);
	int rc = w->deadline == COEV_FOREVER
			 ? coev_sem_acquire(w->s)
			 : coev_sem_acquire_dl(w->s, w->deadline);
	w->ended = coev_now();
	if (tok >= 0)
		coev_deadline_pop(tok);
	w->rc = rc;
	if (rc == 0 && w->log)
		w->log[atomic_fetch_add(w->logn, 1)] = w->id;
	if (rc != 0)
		w->after_rc = coev_sleep(COEV_MSEC(1));
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return rc;
}

#define FIFO_N 8

static int fifo_main(void *arg)
{
	coev_sem_t s;
	sw_t w[FIFO_N];
	coev_task_t *t[FIFO_N];
	int log[FIFO_N];
	atomic_int logn = 0;

	(void)arg;
	TU_CHECK_EQ(coev_sem_init(&s, 0), 0);
	for (int i = 0; i < FIFO_N; i++) {
		w[i] = (sw_t){.s = &s,
			      .deadline = COEV_FOREVER,
			      .id = i,
			      .log = log,
			      .logn = &logn};
		if (i == 5)
			w[i].deadline = coev_now() + SETTLE;
		TU_CHECK_EQ(coev_spawn_named("fifo", sem_waiter, &w[i], &t[i]),
			    0);
		/* In line before the next one comes (waiter 5 may have
		 * timed out already: it leaves the line either way). */
		if (i == 5)
			parked_or_ended(t[i], COEV_WAIT_SEM, &s);
		else
			parked(t[i], COEV_WAIT_SEM, &s);
	}
	TU_CHECK_EQ(tu_wait_at_least(&w[5].finished, 1), 0);
	TU_CHECK_EQ(w[5].rc, -ETIMEDOUT);
	TU_CHECK_EQ(coev_cancel(t[2]), 0);
	TU_CHECK_EQ(tu_wait_at_least(&w[2].finished, 1), 0);
	TU_CHECK_EQ(w[2].rc, -ECANCELED);
	TU_CHECK_EQ(coev_sem_value(&s), 0);

	/* One permit at a time: each goes to the longest waiter, straight
	 * away (nothing is left for a tryacquire in between). */
	static const int want[] = {0, 1, 3, 4, 6, 7};
	for (int k = 0; k < 6; k++) {
		TU_CHECK_EQ(coev_sem_release(&s), 0);
		TU_CHECK_EQ(coev_sem_tryacquire(&s), -EAGAIN);
		TU_CHECK_EQ(coev_sem_value(&s), 0);
		TU_CHECK_EQ(tu_wait_at_least(&logn, k + 1), 0);
		coev_sleep(COEV_MSEC(2)); /* a negative check: one grant only */
		TU_CHECK_EQ(atomic_load(&logn), k + 1);
		TU_CHECK_MSG(log[k] == want[k],
			     "permit %d went to waiter %d, want %d", k, log[k],
			     want[k]);
	}
	for (int i = 0; i < FIFO_N; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	/* Nobody waits now: a release stays in the semaphore. */
	TU_CHECK_EQ(coev_sem_release(&s), 0);
	TU_CHECK_EQ(coev_sem_value(&s), 1);
	TU_CHECK_EQ(coev_sem_tryacquire(&s), 0);
	TU_CHECK_EQ(coev_sem_tryacquire(&s), -EAGAIN);
	coev_sem_destroy(&s);
	return 0;
}

static void test_sem_waiters_served_in_fifo_order(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(fifo_main, NULL, 1), 0);
	assert_int_equal(tu_run_main(fifo_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* Several permits at once: the first waiters in line take them. */
static int batch_main(void *arg)
{
	coev_sem_t s;
	sw_t w[FIFO_N];
	coev_task_t *t[FIFO_N];
	int log[FIFO_N];
	atomic_int logn = 0;

	(void)arg;
	TU_CHECK_EQ(coev_sem_init(&s, 0), 0);
	for (int i = 0; i < FIFO_N; i++) {
		w[i] = (sw_t){.s = &s,
			      .deadline = COEV_FOREVER,
			      .id = i,
			      .log = log,
			      .logn = &logn};
		TU_CHECK_EQ(coev_spawn_named("batch", sem_waiter, &w[i], &t[i]),
			    0);
		parked(t[i], COEV_WAIT_SEM, &s);
	}
	for (int k = 0; k < 3; k++)
		TU_CHECK_EQ(coev_sem_release(&s), 0);
	TU_CHECK_EQ(tu_wait_at_least(&logn, 3), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&logn), 3);
	for (int i = 0; i < FIFO_N; i++)
		TU_CHECK_EQ(atomic_load(&w[i].finished), i < 3);
	for (int k = 3; k < FIFO_N; k++)
		TU_CHECK_EQ(coev_sem_release(&s), 0);
	for (int i = 0; i < FIFO_N; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, 0);
	}
	TU_CHECK_EQ(coev_sem_value(&s), 0);
	coev_sem_destroy(&s);
	return 0;
}

static void test_sem_release_wakes_the_first_waiters(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(batch_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadlines and cancellation ----------------------------------------- */

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static int giveup_main(void *arg)
{
	coev_sem_t s;
	coev_task_t *t1, *t2, *t3, *t4, *t5, *t6, *t7, *c;

	(void)arg;
	TU_CHECK_EQ(coev_sem_init(&s, 0), 0);
	sw_t w1 = {.s = &s, .deadline = coev_now() + COEV_MSEC(40)};
	sw_t w2 = {.s = &s,
		   .deadline = COEV_FOREVER,
		   .push = coev_now() + COEV_MSEC(30)};
	sw_t w3 = {.s = &s, .deadline = coev_now() - 1};
	sw_t w4 = {.s = &s, .deadline = COEV_FOREVER};
	sw_t w5 = {.s = &s, .deadline = coev_deadline(COEV_SEC(60))};
	sw_t w6 = {.s = &s, .deadline = COEV_FOREVER, .precancel = 1};
	sw_t w7 = {
		.s = &s, .deadline = COEV_FOREVER, .precancel = 1, .shield = 1};
	TU_CHECK_EQ(coev_spawn_named("dl", sem_waiter, &w1, &t1), 0);
	TU_CHECK_EQ(coev_spawn_named("push", sem_waiter, &w2, &t2), 0);
	TU_CHECK_EQ(coev_spawn_named("past", sem_waiter, &w3, &t3), 0);
	TU_CHECK_EQ(coev_spawn_named("cancel-me", sem_waiter, &w4, &t4), 0);
	TU_CHECK_EQ(coev_spawn_named("cancel-me-2", sem_waiter, &w5, &t5), 0);
	TU_CHECK_EQ(coev_spawn_named("precancelled", sem_waiter, &w6, &t6), 0);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	TU_CHECK_EQ(coev_join(t3, NULL), 0);
	TU_CHECK_EQ(coev_join(t6, NULL), 0);
	TU_CHECK_EQ(w1.rc, -ETIMEDOUT);
	TU_CHECK(w1.ended >= w1.deadline);
	TU_CHECK_EQ(w1.after_rc, 0);
	TU_CHECK_EQ(w2.rc, -ETIMEDOUT);
	TU_CHECK(w2.ended >= w2.push);
	TU_CHECK_EQ(w3.rc, -ETIMEDOUT);
	TU_CHECK_EQ(w6.rc, -ECANCELED);
	parked(t4, COEV_WAIT_SEM, &s);
	parked(t5, COEV_WAIT_SEM, &s);
	TU_CHECK_EQ(coev_cancel(t4), 0);
	TU_CHECK_EQ(coev_spawn(cancel_it, t5, &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(coev_join(t4, NULL), 0);
	TU_CHECK_EQ(coev_join(t5, NULL), 0);
	TU_CHECK_EQ(w4.rc, -ECANCELED);
	TU_CHECK_EQ(w4.after_rc, -ECANCELED);
	TU_CHECK_EQ(w5.rc, -ECANCELED);
	/* None of them took anything: a release stays in the semaphore. */
	TU_CHECK_EQ(coev_sem_value(&s), 0);
	TU_CHECK_EQ(coev_sem_release(&s), 0);
	TU_CHECK_EQ(coev_sem_value(&s), 1);
	/* A deadline already past only tries: a free permit is taken. */
	TU_CHECK_EQ(coev_sem_acquire_dl(&s, coev_now() - 1), 0);
	TU_CHECK_EQ(coev_sem_value(&s), 0);
	/* A shielded, cancelled task waits and gets the next permit. */
	TU_CHECK_EQ(coev_spawn_named("shielded", sem_waiter, &w7, &t7), 0);
	parked(t7, COEV_WAIT_SEM, &s);
	TU_CHECK_EQ(atomic_load(&w7.finished), 0);
	TU_CHECK_EQ(coev_sem_release(&s), 0);
	TU_CHECK_EQ(coev_join(t7, NULL), 0);
	TU_CHECK_EQ(w7.rc, 0);
	TU_CHECK_EQ(coev_sem_value(&s), 0);
	coev_sem_destroy(&s);
	return 0;
}

static void test_sem_deadline_and_cancel_leave_the_count_intact(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

typedef struct thr_acq {
	coev_sem_t *s;
	coev_time_t timeout; /* 0: coev_sem_acquire */
	atomic_int arrived;
	int rc;
	coev_time_t took;
	tu_thread_at_t at;
} thr_acq_t;

static void *thread_acquire(void *arg)
{
	thr_acq_t *a = arg;

	TU_THREAD_AT(&a->at);
	atomic_store(&a->arrived, 1);
	coev_time_t t0 = coev_now();
	a->rc = a->timeout ? coev_sem_acquire_dl(a->s, t0 + a->timeout)
			   : coev_sem_acquire(a->s);
	a->took = coev_now() - t0;
	return NULL;
}

/* A plain thread cancels a task waiting at acquire; a plain thread waits
 * (with and without a deadline) and a task's release wakes it. */
static void test_sem_cancel_from_thread_and_thread_waiters(void **state)
{
	coev_sem_t s;
	coev_rt_t *rt = tu_new_rt(2);
	sw_t w1, w2;
	coev_task_t *t1, *t2;
	pthread_t th, ta, tb;
	void *crc;
	thr_acq_t ab = {.s = &s};
	thr_acq_t ad = {.s = &s, .timeout = COEV_MSEC(30)};

	(void)state;
	assert_int_equal(coev_sem_init(&s, 0), 0);
	w1 = (sw_t){.s = &s, .deadline = COEV_FOREVER};
	w2 = (sw_t){.s = &s, .deadline = COEV_FOREVER};
	assert_int_equal(coev_rt_spawn(rt, "w1", sem_waiter, &w1, &t1), 0);
	assert_int_equal(tu_wait_parked(rt, t1, COEV_WAIT_SEM, &s), 0);
	assert_int_equal(coev_rt_spawn(rt, "w2", sem_waiter, &w2, &t2), 0);
	assert_int_equal(tu_wait_parked(rt, t2, COEV_WAIT_SEM, &s), 0);
	assert_int_equal(pthread_create(&th, NULL, thread_cancel, t1), 0);
	pthread_join(th, &crc);
	assert_int_equal((intptr_t)crc, 0);
	assert_int_equal(coev_join(t1, NULL), 0);
	assert_int_equal(w1.rc, -ECANCELED);
	assert_int_equal(coev_sem_value(&s), 0);
	/* A thread's release goes to the task still waiting. */
	assert_int_equal(coev_sem_release(&s), 0);
	assert_int_equal(coev_join(t2, NULL), 0);
	assert_int_equal(w2.rc, 0);
	assert_int_equal(coev_sem_value(&s), 0);

	/* Plain threads waiting: one times out, one is woken. */
	assert_int_equal(pthread_create(&ta, NULL, thread_acquire, &ad), 0);
	pthread_join(ta, NULL);
	assert_int_equal(ad.rc, -ETIMEDOUT);
	assert_true(ad.took >= COEV_MSEC(30));
	assert_int_equal(pthread_create(&tb, NULL, thread_acquire, &ab), 0);
	assert_int_equal(tu_thread_wait_at_least(&ab.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&ab.at), 0);
	assert_int_equal(coev_sem_value(&s), 0);
	assert_int_equal(coev_sem_release(&s), 0);
	pthread_join(tb, NULL);
	assert_int_equal(ab.rc, 0);
	assert_int_equal(coev_sem_value(&s), 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_sem_destroy(&s);
	tu_assert_no_failures();
}

/* ---- cancels and timeouts racing releases ------------------------------- */

/*
 * Each round: RW waiters queue at an empty semaphore, some with deadlines
 * near the releases, some cancelled (by this task, by a plain thread) at
 * about the time of the releases; a releaser task gives RP permits at
 * varying moments, and a plain thread waits with a deadline too. In the
 * end the permits taken plus the permits left must equal those released:
 * nothing lost, nothing given twice.
 */
#define RW 8
#define RP 5

typedef struct rround {
	coev_sem_t s;
	sw_t w[RW];
	coev_task_t *t[RW];
	unsigned release_spin[RP];
	atomic_int released;
	/* the thread that cancels */
	sem_t go;
	atomic_int gone, quit;
	int cancel_idx;
	unsigned cancel_spin;
	/* the thread that waits */
	sem_t tgo;
	atomic_int tdone;
	coev_time_t t_deadline;
	int t_rc;
	/* totals */
	long taken, left, timedout, cancelled, thread_taken;
} rround_t;

static int releaser(void *arg)
{
	rround_t *r = arg;

	for (int i = 0; i < RP; i++) {
		tu_spin_ns(r->release_spin[i]);
		TU_CHECK_EQ(coev_sem_release(&r->s), 0);
		atomic_fetch_add(&r->released, 1);
		if (r->release_spin[i] & 1)
			coev_yield();
	}
	return 0;
}

static void *rr_canceller(void *arg)
{
	rround_t *r = arg;

	for (;;) {
		while (sem_wait(&r->go) != 0) {
		}
		if (atomic_load(&r->quit))
			return NULL;
		tu_spin_ns(r->cancel_spin);
		TU_CHECK_EQ(coev_cancel(r->t[r->cancel_idx]), 0);
		atomic_fetch_add(&r->gone, 1);
	}
}

static void *rr_thread_waiter(void *arg)
{
	rround_t *r = arg;

	for (;;) {
		while (sem_wait(&r->tgo) != 0) {
		}
		if (atomic_load(&r->quit))
			return NULL;
		r->t_rc = coev_sem_acquire_dl(&r->s, r->t_deadline);
		atomic_fetch_add(&r->tdone, 1);
	}
}

#define RACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int race_main(void *arg)
{
	rround_t *r = arg;
	unsigned seed = 0x2545f491u;
	pthread_t canc, tw;
	int sent = 0;

	TU_CHECK_EQ(pthread_create(&canc, NULL, rr_canceller, r), 0);
	TU_CHECK_EQ(pthread_create(&tw, NULL, rr_thread_waiter, r), 0);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		coev_task_t *rel;
		coev_time_t now = coev_now();

		TU_CHECK_EQ(coev_sem_init(&r->s, 0), 0);
		atomic_store(&r->released, 0);
		for (int i = 0; i < RW; i++) {
			unsigned v = rnd_next(&seed);
			r->w[i] = (sw_t){.s = &r->s, .deadline = COEV_FOREVER};
			/* Waiters 0-3: deadlines around the releases; 4-7:
			 * no deadline (cancelled at the end if still
			 * waiting, or during the releases). */
			if (i < 4)
				r->w[i].deadline =
					now + (coev_time_t)(v % 80000);
			TU_CHECK_EQ(coev_spawn(sem_waiter, &r->w[i], &r->t[i]),
				    0);
		}
		for (int i = 0; i < RP; i++)
			r->release_spin[i] = rnd_next(&seed) % 15000;
		r->t_deadline = now + (coev_time_t)(rnd_next(&seed) % 80000);
		sem_post(&r->tgo);
		unsigned v = rnd_next(&seed);
		if (v & 1)
			coev_yield(); /* let some queue first */
		TU_CHECK_EQ(coev_spawn(releaser, r, &rel), 0);
		/* Cancels during the releases: one by a thread, one by this
		 * task. */
		r->cancel_idx = 4 + (int)(v >> 4) % 2;
		r->cancel_spin = (v >> 8) % 40000;
		sent++;
		sem_post(&r->go);
		tu_spin_ns((v >> 12) % 40000);
		TU_CHECK_EQ(coev_cancel(r->t[6 + (int)(v >> 5) % 2]), 0);
		TU_CHECK_EQ(coev_join(rel, NULL), 0);
		TU_CHECK_EQ(spin_until(&r->gone, sent), 0);
		TU_CHECK_EQ(spin_until(&r->tdone, round + 1), 0);
		/* Whoever still waits gets nothing more: cancel them. */
		for (int i = 0; i < RW; i++)
			TU_CHECK_EQ(coev_cancel(r->t[i]), 0);
		long taken = 0;
		for (int i = 0; i < RW; i++) {
			int ret = 0;
			TU_CHECK_EQ(coev_join(r->t[i], &ret), 0);
			if (ret == 0 && r->w[i].rc == 0)
				taken++;
			else if (ret == -ETIMEDOUT)
				r->timedout++;
			else if (ret == -ECANCELED)
				r->cancelled++;
			else
				TU_CHECK_MSG(0, "waiter %d: %d", i, ret);
		}
		TU_CHECK_MSG(r->t_rc == 0 || r->t_rc == -ETIMEDOUT,
			     "thread waiter: %d", r->t_rc);
		if (r->t_rc == 0) {
			taken++;
			r->thread_taken++;
		}
		long left = (long)coev_sem_value(&r->s);
		TU_CHECK_MSG(taken + left == RP,
			     "round %d: %ld taken + %ld left != %d released",
			     round, taken, left, RP);
		r->taken += taken;
		r->left += left;
		coev_sem_destroy(&r->s);
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	sem_post(&r->tgo);
	pthread_join(canc, NULL);
	pthread_join(tw, NULL);
	return 0;
}

static void test_sem_cancel_and_timeout_race_release(void **state)
{
	rround_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(sem_init(&r->tgo, 0, 0), 0);
	assert_int_equal(tu_run_main(race_main, r, 2), 0);
	print_message("%d rounds: %ld permits taken (%ld by the thread), "
		      "%ld left; %ld waits timed out, %ld cancelled\n",
		      RACE_ROUNDS, r->taken, r->thread_taken, r->left,
		      r->timedout, r->cancelled);
	tu_assert_no_failures();
	assert_int_equal(r->taken + r->left, (long)RP * RACE_ROUNDS);
	assert_true(r->taken > 0);
	assert_true(r->timedout > 0);
	assert_true(r->cancelled > 0);
	sem_destroy(&r->go);
	sem_destroy(&r->tgo);
	free(r);
}

/* ---- plain thread <-> task ping-pong ------------------------------------ */

#define PINGS TU_SCALE(100000, 30000, 15000)

typedef struct pp {
	coev_sem_t ping, pong;
	long rounds;
	long seen; /* written by the task between ping and pong */
} pp_t;

static int pong_task(void *arg)
{
	pp_t *p = arg;

	for (long i = 0; i < p->rounds; i++) {
		int rc = coev_sem_acquire(&p->ping);
		if (rc != 0) {
			TU_CHECK_EQ(rc, 0);
			return rc;
		}
		p->seen = i;
		TU_CHECK_EQ(coev_sem_release(&p->pong), 0);
	}
	return 0;
}

static void test_sem_ping_pong_thread_and_task(void **state)
{
	pp_t p = {.rounds = PINGS};
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	int r = -1;

	(void)state;
	assert_int_equal(coev_sem_init(&p.ping, 0), 0);
	assert_int_equal(coev_sem_init(&p.pong, 0), 0);
	assert_int_equal(coev_rt_spawn(rt, "pong", pong_task, &p, &t), 0);
	for (long i = 0; i < p.rounds; i++) {
		assert_int_equal(coev_sem_release(&p.ping), 0);
		int rc = coev_sem_acquire_dl(&p.pong, tu_guard());
		if (rc != 0)
			fail_msg("round %ld: %s", i, coev_strerror(rc));
		if (p.seen != i)
			fail_msg("round %ld: the task saw %ld", i, p.seen);
	}
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(coev_sem_value(&p.ping), 0);
	assert_int_equal(coev_sem_value(&p.pong), 0);
	coev_sem_destroy(&p.ping);
	coev_sem_destroy(&p.pong);
	tu_assert_no_failures();
}

/* ---- limits and arguments ----------------------------------------------- */

static void test_sem_overflow_and_bad_arguments(void **state)
{
	coev_sem_t s;

	(void)state;
	assert_int_equal(coev_sem_init(NULL, 0), -EINVAL);
	assert_int_equal(coev_sem_init(&s, COEV_SEM_MAX + 1u), -EINVAL);
	assert_int_equal(coev_sem_init(&s, COEV_SEM_MAX), 0);
	assert_int_equal(coev_sem_value(&s), COEV_SEM_MAX);
	assert_int_equal(coev_sem_release(&s), -EOVERFLOW);
	assert_int_equal(coev_sem_value(&s), COEV_SEM_MAX);
	assert_int_equal(coev_sem_tryacquire(&s), 0);
	assert_int_equal(coev_sem_value(&s), COEV_SEM_MAX - 1);
	assert_int_equal(coev_sem_release(&s), 0);
	assert_int_equal(coev_sem_release(&s), -EOVERFLOW);
	coev_sem_destroy(&s);

	/* From this plain thread: try, acquire, release, value. */
	assert_int_equal(coev_sem_init(&s, 2), 0);
	assert_int_equal(coev_sem_tryacquire(&s), 0);
	assert_int_equal(coev_sem_acquire(&s), 0);
	assert_int_equal(coev_sem_tryacquire(&s), -EAGAIN);
	assert_int_equal(coev_sem_acquire_dl(&s, coev_now()), -ETIMEDOUT);
	assert_int_equal(coev_sem_value(&s), 0);
	assert_int_equal(coev_sem_release(&s), 0);
	assert_int_equal(coev_sem_release(&s), 0);
	assert_int_equal(coev_sem_value(&s), 2);
	coev_sem_destroy(&s);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_sem_t *s;
	int dl_rc, acq_rc, try_rc, rel_rc;
} cb_t;

static void sem_cb(void *arg)
{
	cb_t *c = arg;

	/* A waiting call: COEV_ENOTCORO (the _dl form first, so that a
	 * wrong implementation cannot hang the test). */
	c->dl_rc = coev_sem_acquire_dl(c->s, coev_deadline(COEV_SEC(1)));
	c->acq_rc = c->dl_rc == COEV_ENOTCORO ? coev_sem_acquire(c->s) : 1;
	c->try_rc = coev_sem_tryacquire(c->s);
	/* A release from here wakes the waiting task. */
	c->rel_rc = coev_sem_release(c->s);
}

static int cb_main(void *arg)
{
	coev_sem_t s;
	cb_t c = {.s = &s};
	sw_t w;
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_sem_init(&s, 0), 0);
	w = (sw_t){.s = &s, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn_named("waiter", sem_waiter, &w, &t), 0);
	parked(t, COEV_WAIT_SEM, &s);
	TU_CHECK_EQ(tu_on_loop(sem_cb, &c), 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.acq_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.try_rc, -EAGAIN);
	TU_CHECK_EQ(c.rel_rc, 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, 0);
	TU_CHECK_EQ(coev_sem_value(&s), 0);
	coev_sem_destroy(&s);
	return 0;
}

static void test_sem_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- destroy with waiters aborts ---------------------------------------- */

static coev_sem_t misuse_s;

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_sem_acquire(&misuse_s);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_sem_init(&misuse_s, 0);
	coev_spawn(destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_SEM, &misuse_s);
	coev_sem_destroy(&misuse_s);
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

static void test_sem_destroy_with_waiters_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_destroy_with_waiter, NULL, res),
			 0);
	int ok = tu_child_signaled(res, SIGABRT) &&
		 strstr(res->out, "semaphore");
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "semaphore"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_sem_never_exceeds_its_count),
		TU_FD_TEST(test_sem_waiters_served_in_fifo_order),
		TU_FD_TEST(test_sem_release_wakes_the_first_waiters),
		TU_FD_TEST(test_sem_deadline_and_cancel_leave_the_count_intact),
		TU_FD_TEST(test_sem_cancel_from_thread_and_thread_waiters),
		TU_FD_TEST(test_sem_cancel_and_timeout_race_release),
		TU_FD_TEST(test_sem_ping_pong_thread_and_task),
		TU_FD_TEST(test_sem_overflow_and_bad_arguments),
		TU_FD_TEST(test_sem_from_loop_callback),
		TU_FD_TEST(test_sem_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
