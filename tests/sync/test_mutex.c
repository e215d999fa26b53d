/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_mutex.c — coev_mutex_t (include/coev/sync.h): mutual
 * exclusion under contention from tasks on every worker (more tasks than
 * workers, holders that yield and move while they hold) and from plain
 * threads, the fair mutex's FIFO hand-off, the default mutex not starving
 * a waiter, -EDEADLK on relock, trylock, deadlines and cancellation of a
 * waiter (from a task and from a plain thread) with the lock still working
 * afterwards, cancels and timeouts racing the unlock, calls from a loop
 * callback, and the misuse that aborts (unlock by a non-owner or of a free
 * mutex, destroy with waiters).
 *
 * Exclusion is counted: a plain counter incremented inside the critical
 * section must add up, and an atomic count of holders must never exceed
 * one. Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#define TU_LOOP_CALLS 1
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <pthread.h>
#include <semaphore.h>

/* ---- helpers ------------------------------------------------------------ */

/* As a task: spin without yielding until *v >= n, for at most ns; then
 * yield until it is. Without yielding, a task just spawned (and pushed to
 * the ring by a later spawn) starts on the other worker. */
static int busy_until(atomic_int *v, int n, coev_time_t ns)
{
	coev_time_t end = coev_now() + ns;

	while (atomic_load(v) < n && coev_now() < end) {
	}
	return spin_until(v, n);
}

/* ---- exclusion, counted ------------------------------------------------- */

typedef struct excl {
	coev_mutex_t *m;
	long iters;		/* per task or thread */
	long counter;		/* protected by m; deliberately not atomic */
	atomic_int inside;	/* holders now: never more than one */
	atomic_int overlaps;	/* holders that found another one inside */
	atomic_long migrations; /* holders resumed on another worker */
	atomic_long timeouts;	/* lock_dl attempts that timed out */
	atomic_long busy;	/* trylock attempts that found it held */
} excl_t;

typedef struct excl_arg {
	excl_t *x;
	int kind; /* 0 lock, 1 lock_dl with short deadlines, 2 trylock first */
} excl_arg_t;

static void excl_enter(excl_t *x)
{
	if (atomic_fetch_add(&x->inside, 1) != 0)
		atomic_fetch_add(&x->overlaps, 1);
	x->counter++;
}

static void excl_leave(excl_t *x)
{
	atomic_fetch_sub(&x->inside, 1);
}

static int excl_lock(excl_t *x, int kind, long i)
{
	int rc;

	switch (kind) {
	case 0: return coev_mutex_lock(x->m);
	case 1:
		for (;;) {
			coev_time_t dl = coev_now() + COEV_USEC(5 + i % 40);
			rc = coev_mutex_lock_dl(x->m, dl);
			if (rc != -ETIMEDOUT)
				return rc;
			atomic_fetch_add_explicit(&x->timeouts, 1,
						  memory_order_relaxed);
		}
	default:
		rc = coev_mutex_trylock(x->m);
		if (rc == 0)
			return 0;
		TU_CHECK_EQ(rc, -EBUSY);
		atomic_fetch_add_explicit(&x->busy, 1, memory_order_relaxed);
		return coev_mutex_lock(x->m);
	}
}

static int excl_task(void *arg)
{
	excl_arg_t *a = arg;
	excl_t *x = a->x;

	for (long i = 0; i < x->iters; i++) {
		int rc = excl_lock(x, a->kind, i);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "lock (kind %d): %s", a->kind,
				     coev_strerror(rc));
			return rc;
		}
		excl_enter(x);
		if (i % 61 == 0) {
			/* Hold it across a switch: the holder may resume
			 * on another worker and unlock there. */
			int w = coev_worker_id();
			coev_yield();
			if (coev_worker_id() != w)
				atomic_fetch_add_explicit(&x->migrations, 1,
							  memory_order_relaxed);
		}
		excl_leave(x);
		coev_mutex_unlock(x->m);
		if (i % 17 == 0)
			coev_yield();
	}
	return 0;
}

static void *excl_thread(void *arg)
{
	excl_arg_t *a = arg;
	excl_t *x = a->x;

	for (long i = 0; i < x->iters; i++) {
		int rc = excl_lock(x, a->kind, i);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "thread lock (kind %d): %s",
				     a->kind, coev_strerror(rc));
			return NULL;
		}
		excl_enter(x);
		if (i % 61 == 0)
			sched_yield();
		excl_leave(x);
		coev_mutex_unlock(x->m);
	}
	return NULL;
}

#define EXCL_MAX 32

/* ntasks tasks (spawned from this plain thread into a runtime with
 * `workers` workers) and nthreads plain threads each take m iters times. */
static void run_exclusion(coev_mutex_t *m, unsigned workers, int ntasks,
			  int nthreads, long iters)
{
	coev_rt_t *rt = tu_new_rt(workers);
	excl_t x = {.m = m, .iters = iters};
	excl_arg_t args[EXCL_MAX];
	coev_task_t *t[EXCL_MAX];
	pthread_t th[EXCL_MAX];

	assert_true(ntasks + nthreads <= EXCL_MAX);
	for (int i = 0; i < ntasks + nthreads; i++)
		args[i] = (excl_arg_t){.x = &x, .kind = i % 3};
	for (int i = 0; i < ntasks; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "excl", excl_task, &args[i], &t[i]),
			0);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(pthread_create(&th[i], NULL, excl_thread,
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
	print_message("%u workers, %d tasks, %d threads: %ld sections, %ld "
		      "migrations, %ld timeouts, %ld busy\n",
		      workers, ntasks, nthreads, x.counter,
		      atomic_load(&x.migrations), atomic_load(&x.timeouts),
		      atomic_load(&x.busy));
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&x.overlaps), 0);
	assert_int_equal(atomic_load(&x.inside), 0);
	assert_int_equal(x.counter, (long)(ntasks + nthreads) * iters);
	/* Free again: nobody kept it. */
	assert_int_equal(coev_mutex_trylock(m), 0);
	coev_mutex_unlock(m);
}

/* 8 tasks x 250,000 = 2 million lock/unlock pairs on two workers. */
#define EXCL_ITERS TU_SCALE(250000, 60000, 30000)

static void test_mutex_exclusion_two_workers(void **state)
{
	static coev_mutex_t m = COEV_MUTEX_INIT; /* zero: a default mutex */

	(void)state;
	run_exclusion(&m, 2, 8, 0, EXCL_ITERS);
	/* More workers than cores: holders are preempted in the section. */
	run_exclusion(&m, 4, 12, 0, EXCL_ITERS / 4);
	run_exclusion(&m, 1, 6, 0, EXCL_ITERS / 4);
	coev_mutex_destroy(&m);
}

#define FAIR_ITERS TU_SCALE(40000, 12000, 6000)

static void test_mutex_exclusion_fair(void **state)
{
	coev_mutex_t m;

	(void)state;
	assert_int_equal(coev_mutex_init(&m, COEV_MUTEX_FAIR), 0);
	run_exclusion(&m, 2, 8, 0, FAIR_ITERS);
	run_exclusion(&m, 3, 10, 0, FAIR_ITERS / 4);
	coev_mutex_destroy(&m);
}

#define MIXED_ITERS TU_SCALE(60000, 20000, 10000)

static void test_mutex_exclusion_tasks_and_threads(void **state)
{
	coev_mutex_t m;

	(void)state;
	assert_int_equal(coev_mutex_init(&m, 0), 0);
	run_exclusion(&m, 2, 6, 3, MIXED_ITERS);
	coev_mutex_destroy(&m);
	assert_int_equal(coev_mutex_init(&m, COEV_MUTEX_FAIR), 0);
	run_exclusion(&m, 2, 6, 3, MIXED_ITERS / 4);
	coev_mutex_destroy(&m);
}

/* ---- relock, trylock, ownership ----------------------------------------- */

typedef struct probe {
	coev_mutex_t *m;
	int try_rc;
	int dl_rc;
	int lock_rc;
} probe_t;

/* Another task: trylock and a short lock_dl must both fail while m is
 * held by someone else. */
static int probe_held(void *arg)
{
	probe_t *p = arg;

	p->try_rc = coev_mutex_trylock(p->m);
	p->dl_rc = coev_mutex_lock_dl(p->m, coev_now() + COEV_MSEC(10));
	return 0;
}

static int probe_free(void *arg)
{
	probe_t *p = arg;

	p->lock_rc = coev_mutex_lock_dl(p->m, tu_guard());
	if (p->lock_rc == 0)
		coev_mutex_unlock(p->m);
	return 0;
}

static int relock_main(void *arg)
{
	coev_mutex_t *m = arg;
	probe_t p = {.m = m};
	coev_task_t *t;

	TU_CHECK_EQ(coev_mutex_lock(m), 0);
	TU_CHECK_EQ(coev_mutex_lock(m), -EDEADLK);
	TU_CHECK_EQ(coev_mutex_lock_dl(m, coev_deadline(COEV_SEC(1))),
		    -EDEADLK);
	TU_CHECK_EQ(coev_mutex_trylock(m), -EBUSY);
	/* The relock attempts changed nothing: still held, by us. */
	TU_CHECK_EQ(coev_spawn(probe_held, &p, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(p.try_rc, -EBUSY);
	TU_CHECK_EQ(p.dl_rc, -ETIMEDOUT);
	/* Ownership follows the task, whichever worker it runs on. */
	for (int i = 0; i < 50; i++)
		coev_yield();
	coev_sleep(COEV_MSEC(1));
	TU_CHECK_EQ(coev_mutex_lock(m), -EDEADLK);
	coev_mutex_unlock(m);
	TU_CHECK_EQ(coev_spawn(probe_free, &p, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(p.lock_rc, 0);
	return 0;
}

static void test_mutex_relock_returns_edeadlk(void **state)
{
	coev_mutex_t m;

	(void)state;
	for (unsigned flags = 0; flags <= COEV_MUTEX_FAIR; flags++) {
		assert_int_equal(coev_mutex_init(&m, flags), 0);
		assert_int_equal(tu_run_main(relock_main, &m, 2), 0);
		assert_int_equal(tu_run_main(relock_main, &m, 1), 0);
		tu_assert_no_failures();
		/* A plain thread too. */
		assert_int_equal(coev_mutex_lock(&m), 0);
		assert_int_equal(coev_mutex_lock(&m), -EDEADLK);
		assert_int_equal(
			coev_mutex_lock_dl(&m, coev_deadline(COEV_MSEC(5))),
			-EDEADLK);
		assert_int_equal(coev_mutex_trylock(&m), -EBUSY);
		coev_mutex_unlock(&m);
		coev_mutex_destroy(&m);
	}
}

/* Two tasks on one worker thread: the mutex is held by the task, so the
 * other task on the same thread must wait, not get it or -EDEADLK. */
static int same_thread_main(void *arg)
{
	coev_mutex_t *m = arg;
	probe_t p = {.m = m};
	coev_task_t *t;

	TU_CHECK_EQ(coev_mutex_lock(m), 0);
	TU_CHECK_EQ(coev_spawn(probe_held, &p, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(p.try_rc, -EBUSY);
	TU_CHECK_EQ(p.dl_rc, -ETIMEDOUT);
	coev_mutex_unlock(m);
	return 0;
}

typedef struct thr_probe {
	coev_mutex_t *m;
	int try_rc, dl_rc, lock_rc;
	coev_time_t took;
} thr_probe_t;

static void *thread_probe(void *arg)
{
	thr_probe_t *p = arg;

	p->try_rc = coev_mutex_trylock(p->m);
	coev_time_t t0 = coev_now();
	p->dl_rc = coev_mutex_lock_dl(p->m, t0 + COEV_MSEC(30));
	p->took = coev_now() - t0;
	return NULL;
}

static void test_mutex_held_by_task_not_by_thread(void **state)
{
	coev_mutex_t m;
	pthread_t th;
	thr_probe_t p;

	(void)state;
	assert_int_equal(coev_mutex_init(&m, 0), 0);
	assert_int_equal(tu_run_main(same_thread_main, &m, 1), 0);
	tu_assert_no_failures();
	/* Plain threads: another thread waits for the holder. */
	p = (thr_probe_t){.m = &m};
	assert_int_equal(coev_mutex_lock(&m), 0);
	assert_int_equal(pthread_create(&th, NULL, thread_probe, &p), 0);
	pthread_join(th, NULL);
	assert_int_equal(p.try_rc, -EBUSY);
	assert_int_equal(p.dl_rc, -ETIMEDOUT);
	assert_true(p.took >= COEV_MSEC(30));
	coev_mutex_unlock(&m);
	/* A deadline already past only tries: a free mutex is taken. */
	assert_int_equal(coev_mutex_lock_dl(&m, coev_now() - 1), 0);
	coev_mutex_unlock(&m);
	assert_int_equal(coev_mutex_trylock(&m), 0);
	coev_mutex_unlock(&m);
	coev_mutex_destroy(&m);
}

static void test_mutex_init_rejects_bad_arguments(void **state)
{
	coev_mutex_t m;

	(void)state;
	assert_int_equal(coev_mutex_init(NULL, 0), -EINVAL);
	assert_int_equal(coev_mutex_init(&m, 2), -EINVAL);
	assert_int_equal(coev_mutex_init(&m, ~0u), -EINVAL);
	assert_int_equal(coev_mutex_init(&m, COEV_MUTEX_FAIR), 0);
	coev_mutex_destroy(&m);
	/* Destroying a mutex that is still held (without waiters) is fine. */
	assert_int_equal(coev_mutex_init(&m, 0), 0);
	assert_int_equal(coev_mutex_lock(&m), 0);
	coev_mutex_destroy(&m);
}

/* ---- waiters: deadlines, cancellation, order ---------------------------- */

typedef struct lw {
	coev_mutex_t *m;
	coev_time_t deadline; /* COEV_FOREVER: coev_mutex_lock */
	coev_time_t push;     /* if not 0: a pushed deadline */
	int id;
	int *log; /* ids in the order they got the lock */
	int *logn;
	int precancel; /* the task cancels itself before locking */
	int shield;    /* and locks shielded */
	atomic_int arrived;
	atomic_int finished;
	int rc;
	int after_rc;	   /* the next wait, after a failed lock */
	coev_time_t ended; /* when the lock call returned */
} lw_t;

static int lock_waiter(void *arg)
{
	lw_t *w = arg;
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	atomic_store(&w->arrived, 1);
	int rc = w->deadline == COEV_FOREVER
			 ? coev_mutex_lock(w->m)
			 : coev_mutex_lock_dl(w->m, w->deadline);
	w->ended = coev_now();
	if (tok >= 0)
		coev_deadline_pop(tok);
	w->rc = rc;
	if (rc == 0) {
		if (w->log)
			w->log[(*w->logn)++] = w->id; /* under the lock */
		coev_mutex_unlock(w->m);
	} else {
		w->after_rc = coev_sleep(COEV_MSEC(1));
	}
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return rc;
}

static int deadline_main(void *arg)
{
	coev_mutex_t *m = arg;
	coev_task_t *t1, *t2, *t3, *t4;

	TU_CHECK_EQ(coev_mutex_lock(m), 0);
	lw_t w1 = {.m = m, .deadline = coev_now() + COEV_MSEC(50)};
	lw_t w2 = {.m = m,
		   .deadline = COEV_FOREVER,
		   .push = coev_now() + COEV_MSEC(40)};
	lw_t w3 = {.m = m, .deadline = coev_now() - 1}; /* only tries */
	lw_t w4 = {.m = m, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn_named("dl", lock_waiter, &w1, &t1), 0);
	parked_or_ended(t1, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(coev_spawn_named("push", lock_waiter, &w2, &t2), 0);
	parked_or_ended(t2, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(coev_spawn_named("past", lock_waiter, &w3, &t3), 0);
	TU_CHECK_EQ(coev_join(t3, NULL), 0);
	TU_CHECK_EQ(w3.rc, -ETIMEDOUT);
	TU_CHECK_EQ(coev_spawn_named("forever", lock_waiter, &w4, &t4), 0);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	TU_CHECK_EQ(w1.rc, -ETIMEDOUT);
	TU_CHECK_EQ(w2.rc, -ETIMEDOUT);
	/* Never before the deadline. */
	TU_CHECK(w1.ended >= w1.deadline);
	TU_CHECK(w2.ended >= w2.push);
	TU_CHECK_EQ(w1.after_rc, 0);
	TU_CHECK_EQ(w2.after_rc, 0);
	/* The waiters that gave up left the queue: the one behind them
	 * gets the lock at the unlock. */
	TU_CHECK_EQ(atomic_load(&w4.finished), 0);
	coev_mutex_unlock(m);
	TU_CHECK_EQ(coev_join(t4, NULL), 0);
	TU_CHECK_EQ(w4.rc, 0);
	TU_CHECK_EQ(coev_mutex_trylock(m), 0);
	coev_mutex_unlock(m);
	return 0;
}

/* Run main_fn(m) on two workers for a default and a fair mutex m. */
static void run_main_each_kind(int (*main_fn)(void *))
{
	coev_mutex_t m;

	for (unsigned flags = 0; flags <= COEV_MUTEX_FAIR; flags++) {
		assert_int_equal(coev_mutex_init(&m, flags), 0);
		assert_int_equal(tu_run_main(main_fn, &m, 2), 0);
		tu_assert_no_failures();
		coev_mutex_destroy(&m);
	}
}

static void test_mutex_lock_deadline(void **state)
{
	(void)state;
	run_main_each_kind(deadline_main);
}

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static int cancel_main(void *arg)
{
	coev_mutex_t *m = arg;
	coev_task_t *t1, *t2, *t3, *t4, *c;

	TU_CHECK_EQ(coev_mutex_lock(m), 0);
	lw_t w1 = {.m = m, .deadline = COEV_FOREVER};
	lw_t w2 = {.m = m, .deadline = COEV_FOREVER};
	lw_t w3 = {.m = m, .deadline = coev_deadline(COEV_SEC(60))};
	lw_t w4 = {.m = m, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn_named("w1", lock_waiter, &w1, &t1), 0);
	parked(t1, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(coev_spawn_named("w2", lock_waiter, &w2, &t2), 0);
	parked(t2, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(coev_spawn_named("w3", lock_waiter, &w3, &t3), 0);
	parked(t3, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(coev_spawn_named("w4", lock_waiter, &w4, &t4), 0);
	parked(t4, COEV_WAIT_MUTEX, m);

	/* The head waiter, cancelled by this task. */
	TU_CHECK_EQ(coev_cancel(t1), 0);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(w1.rc, -ECANCELED);
	TU_CHECK_EQ(w1.after_rc, -ECANCELED);
	/* One in the middle with a deadline, cancelled by another task. */
	TU_CHECK_EQ(coev_spawn(cancel_it, t3, &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(coev_join(t3, NULL), 0);
	TU_CHECK_EQ(w3.rc, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&w2.finished), 0);
	TU_CHECK_EQ(atomic_load(&w4.finished), 0);

	/* A task already cancelled gets -ECANCELED at once; a shielded one
	 * waits and gets the lock. */
	lw_t w5 = {.m = m, .deadline = COEV_FOREVER, .precancel = 1};
	lw_t w6 = {
		.m = m, .deadline = COEV_FOREVER, .precancel = 1, .shield = 1};
	coev_task_t *t5, *t6;
	TU_CHECK_EQ(coev_spawn_named("w5", lock_waiter, &w5, &t5), 0);
	TU_CHECK_EQ(coev_join(t5, NULL), 0);
	TU_CHECK_EQ(w5.rc, -ECANCELED);
	TU_CHECK_EQ(coev_spawn_named("w6", lock_waiter, &w6, &t6), 0);
	parked(t6, COEV_WAIT_MUTEX, m);
	TU_CHECK_EQ(atomic_load(&w6.finished), 0);

	/* Nothing went to the ones that gave up: the rest get the lock. */
	coev_mutex_unlock(m);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	TU_CHECK_EQ(coev_join(t4, NULL), 0);
	TU_CHECK_EQ(coev_join(t6, NULL), 0);
	TU_CHECK_EQ(w2.rc, 0);
	TU_CHECK_EQ(w4.rc, 0);
	TU_CHECK_EQ(w6.rc, 0);
	TU_CHECK_EQ(coev_mutex_trylock(m), 0);
	coev_mutex_unlock(m);
	return 0;
}

static void test_mutex_waiter_cancelled_from_task(void **state)
{
	(void)state;
	run_main_each_kind(cancel_main);
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

static void test_mutex_waiter_cancelled_from_thread(void **state)
{
	coev_mutex_t m;

	(void)state;
	for (unsigned flags = 0; flags <= COEV_MUTEX_FAIR; flags++) {
		coev_rt_t *rt = tu_new_rt(2);
		lw_t w1 = {.m = &m, .deadline = COEV_FOREVER};
		lw_t w2 = {.m = &m, .deadline = COEV_FOREVER};
		coev_task_t *t1, *t2;
		pthread_t th;
		void *crc;

		assert_int_equal(coev_mutex_init(&m, flags), 0);
		/* This plain thread holds the mutex. */
		assert_int_equal(coev_mutex_lock(&m), 0);
		assert_int_equal(coev_rt_spawn(rt, "w1", lock_waiter, &w1, &t1),
				 0);
		assert_int_equal(tu_wait_parked(rt, t1, COEV_WAIT_MUTEX, &m),
				 0);
		assert_int_equal(coev_rt_spawn(rt, "w2", lock_waiter, &w2, &t2),
				 0);
		assert_int_equal(tu_wait_parked(rt, t2, COEV_WAIT_MUTEX, &m),
				 0);
		assert_int_equal(pthread_create(&th, NULL, thread_cancel, t1),
				 0);
		pthread_join(th, &crc);
		assert_int_equal((intptr_t)crc, 0);
		assert_int_equal(coev_join(t1, NULL), 0);
		assert_int_equal(w1.rc, -ECANCELED);
		assert_int_equal(atomic_load(&w2.finished), 0);
		/* A thread's unlock hands the lock to the task behind. */
		coev_mutex_unlock(&m);
		assert_int_equal(coev_join(t2, NULL), 0);
		assert_int_equal(w2.rc, 0);
		assert_int_equal(coev_mutex_lock_dl(&m, tu_guard()), 0);
		coev_mutex_unlock(&m);
		assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
		coev_rt_free(rt);
		coev_mutex_destroy(&m);
		tu_assert_no_failures();
	}
}

/* Waiters queue in spawn order behind the holder; two of them give up (a
 * cancel, a deadline); the others must get the lock in order. */
#define FIFO_N 8

typedef struct fifo_cfg {
	coev_mutex_t *m;
	int fair;
} fifo_cfg_t;

static int fifo_main(void *arg)
{
	fifo_cfg_t *f = arg;
	lw_t w[FIFO_N];
	coev_task_t *t[FIFO_N];
	int log[FIFO_N], logn = 0;

	TU_CHECK_EQ(coev_mutex_lock(f->m), 0);
	for (int i = 0; i < FIFO_N; i++) {
		w[i] = (lw_t){.m = f->m,
			      .deadline = COEV_FOREVER,
			      .id = i,
			      .log = log,
			      .logn = &logn};
		if (i == 5)
			w[i].deadline = coev_now() + SETTLE;
		TU_CHECK_EQ(coev_spawn_named("fifo", lock_waiter, &w[i], &t[i]),
			    0);
		/* In line before the next one comes (waiter 5 may have
		 * timed out already: it leaves the line either way). */
		if (i == 5)
			parked_or_ended(t[i], COEV_WAIT_MUTEX, f->m);
		else
			parked(t[i], COEV_WAIT_MUTEX, f->m);
	}
	TU_CHECK_EQ(tu_wait_at_least(&w[5].finished, 1), 0);
	TU_CHECK_EQ(w[5].rc, -ETIMEDOUT);
	TU_CHECK_EQ(coev_cancel(t[2]), 0);
	TU_CHECK_EQ(tu_wait_at_least(&w[2].finished, 1), 0);
	TU_CHECK_EQ(w[2].rc, -ECANCELED);
	coev_mutex_unlock(f->m);
	/* A fair unlock hands the lock over at once: it is not free while
	 * any waiter has yet to have its turn (on two workers they may all
	 * have had it by now, on the other worker). */
	if (f->fair) {
		int r = coev_mutex_trylock(f->m);
		if (r == 0) {
			TU_CHECK_EQ(logn, 6);
			coev_mutex_unlock(f->m);
		} else {
			TU_CHECK_EQ(r, -EBUSY);
		}
	}
	for (int i = 0; i < FIFO_N; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	static const int want[] = {0, 1, 3, 4, 6, 7};
	TU_CHECK_EQ(logn, 6);
	for (int i = 0; i < 6 && i < logn; i++)
		TU_CHECK_MSG(log[i] == want[i],
			     "position %d: waiter %d got the lock, want %d", i,
			     log[i], want[i]);
	return 0;
}

static void test_mutex_waiters_served_in_fifo_order(void **state)
{
	coev_mutex_t m;

	(void)state;
	/* Nobody barges in (the unlocker does not lock again), so the
	 * default mutex serves its waiters in order too. */
	for (int fair = 0; fair <= 1; fair++) {
		fifo_cfg_t f = {.m = &m, .fair = fair};
		assert_int_equal(
			coev_mutex_init(&m, fair ? COEV_MUTEX_FAIR : 0), 0);
		assert_int_equal(tu_run_main(fifo_main, &f, 1), 0);
		assert_int_equal(tu_run_main(fifo_main, &f, 2), 0);
		tu_assert_no_failures();
		coev_mutex_destroy(&m);
	}
}

/* ---- the default mutex does not starve a waiter ------------------------- */

typedef struct starve {
	coev_mutex_t *m;
	atomic_int held;
	atomic_int waiting;
	atomic_int got;
	long rounds;
	int gave_up;
} starve_t;

/* How long the holder keeps re-locking before it declares the waiter
 * starved: thousands of times the 1 ms after which the waiter is owed the
 * lock. */
#define STARVE_LIMIT COEV_SEC(5)

/* Holds the lock until the waiter waits, then unlocks and relocks it in a
 * loop without ever suspending except in lock itself: a woken waiter that
 * only competes would lose nearly every time. */
static int starve_holder(void *arg)
{
	starve_t *s = arg;

	TU_CHECK_EQ(coev_mutex_lock(s->m), 0);
	atomic_store(&s->held, 1);
	TU_CHECK_EQ(spin_until(&s->waiting, 1), 0);
	coev_time_t dl = coev_deadline(STARVE_LIMIT);
	while (!atomic_load(&s->got)) {
		coev_mutex_unlock(s->m);
		TU_CHECK_EQ(coev_mutex_lock(s->m), 0);
		s->rounds++;
		tu_spin_ns(COEV_USEC(20));
		if (coev_now() > dl) {
			s->gave_up = 1;
			break;
		}
	}
	coev_mutex_unlock(s->m);
	return 0;
}

static int starve_waiter(void *arg)
{
	starve_t *s = arg;

	atomic_store(&s->waiting, 1);
	int rc = coev_mutex_lock(s->m);
	TU_CHECK_EQ(rc, 0);
	atomic_store(&s->got, 1);
	if (rc == 0)
		coev_mutex_unlock(s->m);
	return 0;
}

static int starve_main(void *arg)
{
	starve_t *s = arg;
	coev_task_t *h, *w;

	TU_CHECK_EQ(coev_spawn_named("holder", starve_holder, s, &h), 0);
	/* The holder first (yielding: it may share this worker). */
	TU_CHECK_EQ(spin_until(&s->held, 1), 0);
	TU_CHECK_EQ(coev_spawn_named("waiter", starve_waiter, s, &w), 0);
	/* Joins without a timer: this task's worker may be the busy one. */
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	TU_CHECK_EQ(coev_join(h, NULL), 0);
	return 0;
}

static void test_mutex_default_does_not_starve_a_waiter(void **state)
{
	coev_mutex_t m;

	(void)state;
	/* COEV_DEBUG_MIGRATE stays off: it can resume the woken waiter on
	 * the holder's worker, where it could never run to claim its turn. */
	coev_config_t cfg = tu_config(2);
	cfg.debug = 0;
	for (int i = 0; i < TU_SCALE(5, 3, 2); i++) {
		starve_t s = {.m = &m};
		assert_int_equal(coev_mutex_init(&m, 0), 0);
		assert_int_equal(coev_run(starve_main, &s, &cfg), 0);
		tu_assert_no_failures();
		print_message("the holder re-locked %ld times\n", s.rounds);
		if (s.gave_up)
			fail_msg("round %d: the waiter did not get the lock "
				 "while the holder re-locked it %ld times",
				 i, s.rounds);
		assert_int_equal(atomic_load(&s.got), 1);
		coev_mutex_destroy(&m);
	}
}

/* ---- cancels and timeouts racing the unlock ----------------------------- */

/*
 * Each round: this task holds the lock; A queues for it (with a deadline,
 * or without one and then cancelled), B queues behind A. The unlock races
 * A's deadline or its cancel, sent by this task (before or after the
 * unlock) or by a plain thread at the same moment. Whatever A's result,
 * B must get the lock (a turn given to A that A gave up reaches B), A
 * holds the lock exactly when its call returned 0, and the lock ends free.
 */
typedef struct race {
	coev_mutex_t *m;
	excl_t x;
	/* this round */
	int mode; /* 0 deadline, 1 cancel by this task, 2 by a thread */
	coev_time_t deadline;
	coev_task_t *a;
	atomic_int a_arrived;
	int rc_a, rc_b;
	/* the cancelling thread */
	sem_t go;
	atomic_int gone, quit;
	unsigned thread_spin;
	/* totals */
	int ok, timedout, cancelled, unstarted;
} race_t;

static int race_a(void *arg)
{
	race_t *r = arg;

	atomic_store(&r->a_arrived, 1);
	int rc = r->mode == 0 ? coev_mutex_lock_dl(r->m, r->deadline)
			      : coev_mutex_lock(r->m);

	r->rc_a = rc;
	if (rc == 0) {
		excl_enter(&r->x);
		excl_leave(&r->x);
		coev_mutex_unlock(r->m);
	}
	return 0;
}

static int race_b(void *arg)
{
	race_t *r = arg;
	int rc = coev_mutex_lock_dl(r->m, tu_guard());

	r->rc_b = rc;
	if (rc == 0) {
		excl_enter(&r->x);
		excl_leave(&r->x);
		coev_mutex_unlock(r->m);
	}
	return 0;
}

static void *race_thread(void *arg)
{
	race_t *r = arg;

	for (;;) {
		while (sem_wait(&r->go) != 0) {
		}
		if (atomic_load(&r->quit))
			return NULL;
		tu_spin_ns(r->thread_spin);
		TU_CHECK_EQ(coev_cancel(r->a), 0);
		atomic_fetch_add(&r->gone, 1);
	}
}

#define RACE_ITERS TU_SCALE(20000, 6000, 3000)

static int race_main(void *arg)
{
	race_t *r = arg;
	unsigned seed = 0x9e3779b9u;
	pthread_t th;
	int sent = 0;

	TU_CHECK_EQ(pthread_create(&th, NULL, race_thread, r), 0);
	for (int it = 0; it < RACE_ITERS; it++) {
		unsigned v = rnd_next(&seed);
		unsigned spin = v % 30000;
		coev_task_t *b;

		r->mode = it % 3;
		r->rc_a = r->rc_b = 1;
		atomic_store(&r->a_arrived, 0);
		TU_CHECK_EQ(coev_mutex_lock(r->m), 0);
		r->deadline = coev_now() + COEV_USEC(5) + (coev_time_t)spin;
		TU_CHECK_EQ(coev_spawn(race_a, r, &r->a), 0);
		TU_CHECK_EQ(coev_spawn(race_b, r, &b), 0);
		/* Mostly while A waits, on this worker or the other one;
		 * sometimes before it even started. */
		switch ((v >> 16) % 8) {
		case 0: break;
		case 1:
		case 2: TU_CHECK_EQ(spin_until(&r->a_arrived, 1), 0); break;
		default:
			TU_CHECK_EQ(busy_until(&r->a_arrived, 1, COEV_MSEC(2)),
				    0);
			tu_spin_ns(COEV_USEC(1));
			break;
		}
		if (r->mode == 2) {
			r->thread_spin = (v >> 8) % 30000;
			sent++;
			sem_post(&r->go);
		}
		if (r->mode == 1 && (v & 0x10000000)) {
			TU_CHECK_EQ(coev_cancel(r->a), 0);
			tu_spin_ns(spin);
			coev_mutex_unlock(r->m);
		} else {
			tu_spin_ns(spin);
			coev_mutex_unlock(r->m);
			if (r->mode == 1) {
				tu_spin_ns(spin / 8);
				TU_CHECK_EQ(coev_cancel(r->a), 0);
			}
		}
		/* The handle stays ours until the thread's cancel is done. */
		if (r->mode == 2)
			TU_CHECK_EQ(spin_until(&r->gone, sent), 0);
		int ra = 0;
		TU_CHECK_EQ(coev_join(r->a, &ra), 0);
		TU_CHECK_EQ(coev_join(b, NULL), 0);
		if (r->rc_a == 1 && ra == -ECANCELED) {
			/* Cancelled before it first ran: no lock call. */
			r->unstarted++;
			r->rc_a = -ECANCELED;
		}
		int want = r->mode == 0 ? -ETIMEDOUT : -ECANCELED;
		TU_CHECK_MSG(r->rc_a == 0 || r->rc_a == want,
			     "round %d mode %d: A's lock returned %d", it,
			     r->mode, r->rc_a);
		r->ok += r->rc_a == 0;
		r->timedout += r->rc_a == -ETIMEDOUT;
		r->cancelled += r->rc_a == -ECANCELED;
		TU_CHECK_MSG(r->rc_b == 0, "round %d mode %d: B's lock: %d", it,
			     r->mode, r->rc_b);
		/* Nobody kept it. */
		int trc = coev_mutex_trylock(r->m);
		TU_CHECK_MSG(trc == 0, "round %d: the lock leaked", it);
		if (trc == 0)
			coev_mutex_unlock(r->m);
		if (r->rc_b != 0 || trc != 0)
			break;
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	return 0;
}

static void test_mutex_cancel_and_timeout_race_unlock(void **state)
{
	coev_mutex_t m;

	(void)state;
	for (unsigned flags = 0; flags <= COEV_MUTEX_FAIR; flags++) {
		race_t r = {.m = &m};
		r.x.m = &m;
		assert_int_equal(sem_init(&r.go, 0, 0), 0);
		assert_int_equal(coev_mutex_init(&m, flags), 0);
		assert_int_equal(tu_run_main(race_main, &r, 2), 0);
		print_message("%s: A got the lock %d times, timed out %d, "
			      "cancelled %d (%d before it ran)\n",
			      flags ? "fair" : "default", r.ok, r.timedout,
			      r.cancelled, r.unstarted);
		tu_assert_no_failures();
		assert_int_equal(r.ok + r.timedout + r.cancelled, RACE_ITERS);
		assert_int_equal(atomic_load(&r.x.overlaps), 0);
		assert_int_equal(r.x.counter, r.ok + RACE_ITERS);
		assert_true(r.ok > 0);
		assert_true(r.timedout > 0);
		assert_true(r.cancelled - r.unstarted > 0);
		sem_destroy(&r.go);
		coev_mutex_destroy(&m);
	}
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_mutex_t *held, *free_m;
	int dl_rc, lock_rc, try_held_rc, try_free_rc;
} cb_t;

static void mutex_cb(void *arg)
{
	cb_t *c = arg;

	/* A waiting call would block the worker: COEV_ENOTCORO. (lock_dl
	 * first, so that a wrong implementation cannot hang the test.) */
	c->dl_rc = coev_mutex_lock_dl(c->held, coev_deadline(COEV_SEC(1)));
	c->lock_rc = c->dl_rc == COEV_ENOTCORO ? coev_mutex_lock(c->held) : 1;
	/* What never waits works. */
	c->try_held_rc = coev_mutex_trylock(c->held);
	c->try_free_rc = coev_mutex_trylock(c->free_m);
	if (c->try_free_rc == 0)
		coev_mutex_unlock(c->free_m);
}

static int cb_main(void *arg)
{
	coev_mutex_t held, free_m;
	cb_t c = {.held = &held, .free_m = &free_m};

	(void)arg;
	TU_CHECK_EQ(coev_mutex_init(&held, 0), 0);
	TU_CHECK_EQ(coev_mutex_init(&free_m, COEV_MUTEX_FAIR), 0);
	TU_CHECK_EQ(coev_mutex_lock(&held), 0);
	TU_CHECK_EQ(tu_on_loop(mutex_cb, &c), 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.lock_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.try_held_rc, -EBUSY);
	TU_CHECK_EQ(c.try_free_rc, 0);
	/* Still ours; and the other was given back. */
	TU_CHECK_EQ(coev_mutex_lock(&held), -EDEADLK);
	coev_mutex_unlock(&held);
	TU_CHECK_EQ(coev_mutex_trylock(&free_m), 0);
	coev_mutex_unlock(&free_m);
	coev_mutex_destroy(&held);
	coev_mutex_destroy(&free_m);
	return 0;
}

static void test_mutex_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- misuse aborts ------------------------------------------------------ */

static void expect_abort(void (*fn)(void *), const char *what)
{
	tu_child_t *res = malloc(sizeof *res);

	assert_non_null(res);
	assert_int_equal(tu_run_in_child(fn, NULL, res), 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "mutex");
	if (!ok) {
		fprintf(stderr, "%s:\n", what);
		tu_child_dump(res);
	}
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "mutex"));
	free(res);
}

static void run_two_workers(coev_fn fn)
{
	coev_config_t cfg;

	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	int rc = coev_run(fn, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no abort\n", rc);
}

static coev_mutex_t misuse_m;

static int unlocker(void *arg)
{
	(void)arg;
	coev_mutex_unlock(&misuse_m);
	return 0;
}

static int unlock_by_other_task_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	coev_mutex_init(&misuse_m, 0);
	coev_mutex_lock(&misuse_m);
	coev_spawn(unlocker, NULL, &t);
	coev_join(t, NULL);
	return 0;
}

static void child_unlock_by_other_task(void *arg)
{
	(void)arg;
	run_two_workers(unlock_by_other_task_main);
}

static void child_unlock_free(void *arg)
{
	coev_mutex_t m;

	(void)arg;
	coev_mutex_init(&m, COEV_MUTEX_FAIR);
	coev_mutex_unlock(&m);
	fprintf(stderr, "unlock of a free mutex returned\n");
}

static void *thread_unlocker(void *arg)
{
	coev_mutex_unlock(arg);
	return NULL;
}

static void child_unlock_by_other_thread(void *arg)
{
	coev_mutex_t m;
	pthread_t th;

	(void)arg;
	coev_mutex_init(&m, 0);
	coev_mutex_lock(&m);
	pthread_create(&th, NULL, thread_unlocker, &m);
	pthread_join(th, NULL);
	fprintf(stderr, "unlock by another thread returned\n");
}

/* A task holds it; this plain thread unlocks it. */
static int hold_forever(void *arg)
{
	coev_mutex_lock(&misuse_m);
	atomic_store((atomic_int *)arg, 1);
	coev_sleep(COEV_SEC(60));
	return 0;
}

static void child_unlock_task_held_by_thread(void *arg)
{
	coev_rt_t *rt;
	coev_config_t cfg;
	atomic_int held = 0;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	coev_mutex_init(&misuse_m, 0);
	if (coev_rt_new(&cfg, &rt) != 0)
		return;
	coev_rt_spawn(rt, "holder", hold_forever, &held, NULL);
	while (!atomic_load(&held))
		tu_nap_ms(1);
	coev_mutex_unlock(&misuse_m);
	fprintf(stderr, "unlock of a task's mutex by a thread returned\n");
	coev_rt_free(rt);
}

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_mutex_lock(&misuse_m);
	return 0;
}

static unsigned misuse_flags;

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_mutex_init(&misuse_m, misuse_flags);
	coev_mutex_lock(&misuse_m);
	coev_spawn(destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_MUTEX, &misuse_m);
	coev_mutex_destroy(&misuse_m);
	fprintf(stderr, "destroy with a waiter returned\n");
	return 0;
}

static void child_destroy_with_waiter(void *arg)
{
	(void)arg;
	run_two_workers(destroy_main);
}

static void test_mutex_unlock_by_non_owner_aborts(void **state)
{
	(void)state;
	expect_abort(child_unlock_by_other_task, "unlock by another task");
	expect_abort(child_unlock_free, "unlock of a free mutex");
	expect_abort(child_unlock_by_other_thread, "unlock by another thread");
	expect_abort(child_unlock_task_held_by_thread,
		     "unlock of a task's mutex by a thread");
}

/* A waiter on another worker than the holder: only trying fails at once
 * on a held mutex and takes a free one; parked, it is woken by the
 * holder's unlock on the other worker (a lost wake would hang the join),
 * and the holder then finds the mutex free again. */
struct cross {
	coev_mutex_t *m;
	coev_event_t freed, held, tried;
	int free_rc, try_rc, wait_rc;
};

static int cross_locker(void *arg)
{
	struct cross *a = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	a->free_rc = coev_mutex_lock_dl(a->m, coev_now());
	if (a->free_rc == 0)
		coev_mutex_unlock(a->m);
	coev_event_set(&a->freed);
	TU_CHECK_EQ(coev_event_wait(&a->held), 0);
	a->try_rc = coev_mutex_lock_dl(a->m, coev_now());
	coev_event_set(&a->tried);
	a->wait_rc = coev_mutex_lock(a->m);
	if (a->wait_rc == 0)
		coev_mutex_unlock(a->m);
	return 0;
}

static int cross_main(void *arg)
{
	struct cross a = {.m = arg};
	coev_task_t *t;

	TU_CHECK_EQ(coev_event_init(&a.freed), 0);
	TU_CHECK_EQ(coev_event_init(&a.held), 0);
	TU_CHECK_EQ(coev_event_init(&a.tried), 0);
	TU_CHECK_EQ(coev_pin_to(0), 0);
	TU_CHECK_EQ(coev_mutex_lock(a.m), 0);
	coev_mutex_unlock(a.m);
	TU_CHECK_EQ(coev_spawn_named("cross", cross_locker, &a, &t), 0);
	TU_CHECK_EQ(coev_event_wait(&a.freed), 0);
	TU_CHECK_EQ(a.free_rc, 0);
	TU_CHECK_EQ(coev_mutex_lock(a.m), 0);
	coev_event_set(&a.held);
	TU_CHECK_EQ(coev_event_wait(&a.tried), 0);
	TU_CHECK_EQ(a.try_rc, -ETIMEDOUT);
	parked(t, COEV_WAIT_MUTEX, a.m);
	coev_mutex_unlock(a.m);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(a.wait_rc, 0);
	TU_CHECK_EQ(coev_mutex_trylock(a.m), 0);
	coev_mutex_unlock(a.m);
	return 0;
}

static void test_mutex_waiter_on_other_worker_is_woken(void **state)
{
	(void)state;
	run_main_each_kind(cross_main);
}

static void test_mutex_destroy_with_waiters_aborts(void **state)
{
	(void)state;
	misuse_flags = 0;
	expect_abort(child_destroy_with_waiter, "destroy with a waiter");
	misuse_flags = COEV_MUTEX_FAIR;
	expect_abort(child_destroy_with_waiter, "destroy with a fair waiter");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_mutex_exclusion_two_workers),
		TU_FD_TEST(test_mutex_exclusion_fair),
		TU_FD_TEST(test_mutex_exclusion_tasks_and_threads),
		TU_FD_TEST(test_mutex_relock_returns_edeadlk),
		TU_FD_TEST(test_mutex_held_by_task_not_by_thread),
		TU_FD_TEST(test_mutex_init_rejects_bad_arguments),
		TU_FD_TEST(test_mutex_lock_deadline),
		TU_FD_TEST(test_mutex_waiter_cancelled_from_task),
		TU_FD_TEST(test_mutex_waiter_cancelled_from_thread),
		TU_FD_TEST(test_mutex_waiters_served_in_fifo_order),
		TU_FD_TEST(test_mutex_default_does_not_starve_a_waiter),
		TU_FD_TEST(test_mutex_cancel_and_timeout_race_unlock),
		TU_FD_TEST(test_mutex_from_loop_callback),
		TU_FD_TEST(test_mutex_waiter_on_other_worker_is_woken),
		TU_FD_TEST(test_mutex_unlock_by_non_owner_aborts),
		TU_FD_TEST(test_mutex_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
