/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_rwlock.c — coev_rwlock_t (include/coev/sync.h): readers
 * share and writers exclude, counted under contention from tasks on every
 * worker and plain threads; waiters are served in order, a waiting writer
 * holds back later readers and consecutive readers at the head enter
 * together; a waiting writer that gives up (cancel, deadline) lets the
 * readers behind it in; deadlines and cancellation at rdlock and wrlock
 * (from a task, from a plain thread); cancels and timeouts racing the
 * unlock; -EDEADLK on a writer's relock; try forms; calls from a loop
 * callback; and the misuse that aborts (unlock not held that way, destroy
 * with waiters).
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

/* As a task: spin without yielding until *v >= n, for at most ns; then
 * yield until it is. */
static int busy_until(atomic_int *v, int n, coev_time_t ns)
{
	coev_time_t end = coev_now() + ns;

	while (atomic_load(v) < n && coev_now() < end) {
	}
	return spin_until(v, n);
}

/* ---- exclusion, counted ------------------------------------------------- */

typedef struct rwx {
	coev_rwlock_t *rw;
	long iters;
	long value;	       /* written by writers only; not atomic */
	atomic_long writes;    /* write sections */
	atomic_long reads;     /* read sections */
	atomic_int readers;    /* readers inside now */
	atomic_int writers;    /* writers inside now */
	atomic_int violations; /* exclusion broken */
	atomic_int max_readers;
	atomic_long timeouts, busy;
} rwx_t;

typedef struct rwx_arg {
	rwx_t *x;
	int writer;
	int kind; /* 0 plain, 1 _dl with short deadlines, 2 try first */
} rwx_arg_t;

static int rwx_lock(rwx_t *x, int writer, int kind, long i)
{
	int rc;

	switch (kind) {
	case 0:
		return writer ? coev_rwlock_wrlock(x->rw)
			      : coev_rwlock_rdlock(x->rw);
	case 1:
		for (;;) {
			coev_time_t dl = coev_now() + COEV_USEC(5 + i % 40);
			rc = writer ? coev_rwlock_wrlock_dl(x->rw, dl)
				    : coev_rwlock_rdlock_dl(x->rw, dl);
			if (rc != -ETIMEDOUT)
				return rc;
			atomic_fetch_add_explicit(&x->timeouts, 1,
						  memory_order_relaxed);
		}
	default:
		rc = writer ? coev_rwlock_trywrlock(x->rw)
			    : coev_rwlock_tryrdlock(x->rw);
		if (rc == 0)
			return 0;
		TU_CHECK_EQ(rc, -EBUSY);
		atomic_fetch_add_explicit(&x->busy, 1, memory_order_relaxed);
		return writer ? coev_rwlock_wrlock(x->rw)
			      : coev_rwlock_rdlock(x->rw);
	}
}

/* One section; in_task: may yield inside. */
static int rwx_section(rwx_arg_t *a, long i, int in_task)
{
	rwx_t *x = a->x;
	int rc = rwx_lock(x, a->writer, a->kind, i);

	if (rc != 0) {
		TU_CHECK_MSG(rc == 0, "%s lock (kind %d): %s",
			     a->writer ? "write" : "read", a->kind,
			     coev_strerror(rc));
		return rc;
	}
	if (a->writer) {
		if (atomic_fetch_add(&x->writers, 1) != 0 ||
		    atomic_load(&x->readers) != 0)
			atomic_fetch_add(&x->violations, 1);
		x->value++;
		atomic_fetch_add_explicit(&x->writes, 1, memory_order_relaxed);
		if (i % 31 == 0) {
			if (in_task)
				coev_yield();
			else
				sched_yield();
		}
		if (atomic_load(&x->readers) != 0)
			atomic_fetch_add(&x->violations, 1);
		atomic_fetch_sub(&x->writers, 1);
		coev_rwlock_wrunlock(x->rw);
	} else {
		int n = atomic_fetch_add(&x->readers, 1) + 1;
		int m = atomic_load(&x->max_readers);
		while (n > m &&
		       !atomic_compare_exchange_weak(&x->max_readers, &m, n)) {
		}
		if (atomic_load(&x->writers) != 0)
			atomic_fetch_add(&x->violations, 1);
		long v = x->value;
		if (i % 7 == 0) {
			if (in_task)
				coev_yield();
			else
				sched_yield();
		}
		/* No writer may have run meanwhile. */
		if (x->value != v || atomic_load(&x->writers) != 0)
			atomic_fetch_add(&x->violations, 1);
		atomic_fetch_add_explicit(&x->reads, 1, memory_order_relaxed);
		atomic_fetch_sub(&x->readers, 1);
		coev_rwlock_rdunlock(x->rw);
	}
	return 0;
}

static int rwx_task(void *arg)
{
	rwx_arg_t *a = arg;

	for (long i = 0; i < a->x->iters; i++) {
		int rc = rwx_section(a, i, 1);
		if (rc != 0)
			return rc;
		if (i % 13 == 0)
			coev_yield();
	}
	return 0;
}

static void *rwx_thread(void *arg)
{
	rwx_arg_t *a = arg;

	for (long i = 0; i < a->x->iters; i++)
		if (rwx_section(a, i, 0) != 0)
			break;
	return NULL;
}

#define RWX_MAX 32

static void run_rwx(unsigned workers, int readers, int writers, int threads,
		    long iters)
{
	coev_rwlock_t rw = COEV_RWLOCK_INIT;
	coev_rt_t *rt = tu_new_rt(workers);
	rwx_t x = {.rw = &rw, .iters = iters};
	rwx_arg_t args[RWX_MAX];
	coev_task_t *t[RWX_MAX];
	pthread_t th[RWX_MAX];
	int ntasks = readers + writers;

	assert_true(ntasks + threads <= RWX_MAX);
	for (int i = 0; i < ntasks + threads; i++)
		args[i] = (rwx_arg_t){.x = &x,
				      .writer = i < ntasks ? i >= readers
							   : i % 2 == 0,
				      .kind = i % 3};
	for (int i = 0; i < ntasks; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "rwx", rwx_task, &args[i], &t[i]), 0);
	for (int i = 0; i < threads; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rwx_thread,
						&args[ntasks + i]),
				 0);
	for (int i = 0; i < ntasks; i++) {
		int r = -1;
		assert_int_equal(coev_join(t[i], &r), 0);
		assert_int_equal(r, 0);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	long nwriters = writers + threads / 2 + threads % 2;
	print_message("%u workers, %d readers, %d writers, %d threads: %ld "
		      "reads, %ld writes, up to %d readers at once, %ld "
		      "timeouts, %ld busy\n",
		      workers, readers, writers, threads, atomic_load(&x.reads),
		      atomic_load(&x.writes), atomic_load(&x.max_readers),
		      atomic_load(&x.timeouts), atomic_load(&x.busy));
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&x.violations), 0);
	assert_int_equal(x.value, nwriters * iters);
	assert_int_equal(atomic_load(&x.writes), nwriters * iters);
	assert_int_equal(atomic_load(&x.reads),
			 (ntasks + threads - nwriters) * iters);
	/* Free again. */
	assert_int_equal(coev_rwlock_trywrlock(&rw), 0);
	coev_rwlock_wrunlock(&rw);
	coev_rwlock_destroy(&rw);
}

#define RWX_ITERS TU_SCALE(60000, 20000, 10000)

static void test_rwlock_exclusion_under_contention(void **state)
{
	(void)state;
	run_rwx(2, 6, 3, 0, RWX_ITERS);
	run_rwx(4, 8, 4, 0, RWX_ITERS / 4);
	run_rwx(2, 4, 2, 3, RWX_ITERS / 2);
}

/* ---- order: writer preference, readers together ------------------------- */

/* A holder: takes the lock (read or write), logs its turn, and keeps the
 * lock until told to let go. */
typedef struct holder {
	coev_rwlock_t *rw;
	int write;
	int id;
	coev_time_t deadline; /* COEV_FOREVER: no deadline */
	int *log;
	atomic_int *logn;
	atomic_int arrived, granted, release, finished;
	int rc;
} holder_t;

static int holder(void *arg)
{
	holder_t *h = arg;

	atomic_store(&h->arrived, 1);
	if (h->deadline == COEV_FOREVER)
		h->rc = h->write ? coev_rwlock_wrlock(h->rw)
				 : coev_rwlock_rdlock(h->rw);
	else
		h->rc = h->write ? coev_rwlock_wrlock_dl(h->rw, h->deadline)
				 : coev_rwlock_rdlock_dl(h->rw, h->deadline);
	if (h->rc == 0) {
		h->log[atomic_fetch_add(h->logn, 1)] = h->id;
		atomic_store(&h->granted, 1);
		TU_CHECK_EQ(tu_wait_at_least(&h->release, 1), 0);
		if (h->write)
			coev_rwlock_wrunlock(h->rw);
		else
			coev_rwlock_rdunlock(h->rw);
	}
	atomic_store(&h->finished, 1);
	return h->rc;
}

typedef struct tries {
	coev_rwlock_t *rw;
	int rd, wr;
} tries_t;

/* Another task: what the try forms say now (giving back what they got). */
static int try_both(void *arg)
{
	tries_t *t = arg;

	t->rd = coev_rwlock_tryrdlock(t->rw);
	if (t->rd == 0)
		coev_rwlock_rdunlock(t->rw);
	t->wr = coev_rwlock_trywrlock(t->rw);
	if (t->wr == 0)
		coev_rwlock_wrunlock(t->rw);
	return 0;
}

static tries_t probe(coev_rwlock_t *rw)
{
	tries_t t = {.rw = rw, .rd = 1, .wr = 1};
	coev_task_t *p;

	TU_CHECK_EQ(coev_spawn(try_both, &t, &p), 0);
	TU_CHECK_EQ(coev_join(p, NULL), 0);
	return t;
}

#define ORD_N 6

static int granted_set(holder_t *h, int n)
{
	int mask = 0;

	for (int i = 0; i < n; i++)
		if (atomic_load(&h[i].granted))
			mask |= 1 << i;
	return mask;
}

/* Queue: W0 R1 R2 R3 W4 R5 behind this task's read hold. */
static int order_main(void *arg)
{
	coev_rwlock_t rw;
	holder_t h[ORD_N];
	coev_task_t *t[ORD_N];
	int log[ORD_N];
	atomic_int logn = 0;
	static const int writes[ORD_N] = {1, 0, 0, 0, 1, 0};
	tries_t tr;

	(void)arg;
	TU_CHECK_EQ(coev_rwlock_init(&rw), 0);
	TU_CHECK_EQ(coev_rwlock_rdlock(&rw), 0);
	/* Readers share. */
	tr = probe(&rw);
	TU_CHECK_EQ(tr.rd, 0);
	TU_CHECK_EQ(tr.wr, -EBUSY);
	for (int i = 0; i < ORD_N; i++) {
		h[i] = (holder_t){.rw = &rw,
				  .write = writes[i],
				  .id = i,
				  .deadline = COEV_FOREVER,
				  .log = log,
				  .logn = &logn};
		TU_CHECK_EQ(coev_spawn_named("holder", holder, &h[i], &t[i]),
			    0);
		parked(t[i], COEV_WAIT_SEM, &rw);
		if (i == 0) {
			/* A writer waits: a new reader must wait too,
			 * although only readers hold the lock. */
			tr = probe(&rw);
			TU_CHECK_EQ(tr.rd, -EBUSY);
			TU_CHECK_EQ(tr.wr, -EBUSY);
		}
	}
	/* R1..R5 queue behind W0 although the lock is read-held. */
	TU_CHECK_EQ(granted_set(h, ORD_N), 0);

	coev_rwlock_rdunlock(&rw);
	TU_CHECK_EQ(tu_wait_at_least(&h[0].granted, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(granted_set(h, ORD_N), 1 << 0);
	tr = probe(&rw);
	TU_CHECK_EQ(tr.rd, -EBUSY);
	TU_CHECK_EQ(tr.wr, -EBUSY);

	/* The writer leaves: the three readers at the head enter together;
	 * W4 waits, and so does R5 behind it. */
	atomic_store(&h[0].release, 1);
	for (int i = 1; i <= 3; i++)
		TU_CHECK_EQ(tu_wait_at_least(&h[i].granted, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(granted_set(h, ORD_N), 0xf);
	tr = probe(&rw);
	TU_CHECK_EQ(tr.rd, -EBUSY); /* W4 waits */
	TU_CHECK_EQ(tr.wr, -EBUSY);

	atomic_store(&h[1].release, 1);
	atomic_store(&h[2].release, 1);
	TU_CHECK_EQ(tu_wait_at_least(&h[1].finished, 1), 0);
	TU_CHECK_EQ(tu_wait_at_least(&h[2].finished, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&h[4].granted), 0); /* R3 still reads */
	atomic_store(&h[3].release, 1);
	TU_CHECK_EQ(tu_wait_at_least(&h[4].granted, 1), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&h[5].granted), 0);
	atomic_store(&h[4].release, 1);
	TU_CHECK_EQ(tu_wait_at_least(&h[5].granted, 1), 0);
	atomic_store(&h[5].release, 1);
	for (int i = 0; i < ORD_N; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(h[i].rc, 0);
	}
	TU_CHECK_EQ(atomic_load(&logn), ORD_N);
	TU_CHECK_EQ(log[0], 0);
	TU_CHECK_EQ(log[4], 4);
	TU_CHECK_EQ(log[5], 5);
	tr = probe(&rw);
	TU_CHECK_EQ(tr.rd, 0);
	TU_CHECK_EQ(tr.wr, 0);
	coev_rwlock_destroy(&rw);
	return 0;
}

static void test_rwlock_writer_preference_and_fifo_order(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(order_main, NULL, 1), 0);
	assert_int_equal(tu_run_main(order_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* A writer waiting behind readers gives up (cancel, deadline): the readers
 * queued behind it enter at once, while the lock is still read-held.
 * arg: 0 for a cancel, else the writer's deadline in ms from its start.
 * Returns 1 when the deadline passed before both readers were in line
 * behind the writer (a machine that slow: the caller runs it again with a
 * later deadline), else 0. */
static int writer_gives_up_main(void *arg)
{
	long dl_ms = (long)(intptr_t)arg;
	int by_deadline = dl_ms != 0;
	coev_rwlock_t rw;
	holder_t w, r1, r2;
	coev_task_t *tw, *t1, *t2;
	int log[3], late = 0;
	atomic_int logn = 0;

	TU_CHECK_EQ(coev_rwlock_init(&rw), 0);
	TU_CHECK_EQ(coev_rwlock_rdlock(&rw), 0);
	w = (holder_t){.rw = &rw,
		       .write = 1,
		       .id = 0,
		       .deadline = by_deadline ? coev_now() + COEV_MSEC(dl_ms)
					       : COEV_FOREVER,
		       .log = log,
		       .logn = &logn};
	r1 = (holder_t){.rw = &rw,
			.id = 1,
			.deadline = COEV_FOREVER,
			.log = log,
			.logn = &logn};
	r2 = (holder_t){.rw = &rw,
			.id = 2,
			.deadline = COEV_FOREVER,
			.log = log,
			.logn = &logn};
	/* Each in line before the next comes; a reader that comes after the
	 * writer's deadline passed enters at once (granted). */
	TU_CHECK_EQ(coev_spawn_named("writer", holder, &w, &tw), 0);
	int r = tu_wait_parked(NULL, tw, COEV_WAIT_SEM, &rw);
	TU_CHECK(r == 0 || (by_deadline && r == -ESRCH));
	late |= r != 0;
	TU_CHECK_EQ(coev_spawn_named("r1", holder, &r1, &t1), 0);
	r = tu_wait_parked_unless(NULL, t1, COEV_WAIT_SEM, &rw, &r1.granted);
	TU_CHECK(r == 0 || (by_deadline && r == 1));
	late |= r != 0;
	TU_CHECK_EQ(coev_spawn_named("r2", holder, &r2, &t2), 0);
	r = tu_wait_parked_unless(NULL, t2, COEV_WAIT_SEM, &rw, &r2.granted);
	TU_CHECK(r == 0 || (by_deadline && r == 1));
	late |= r != 0;
	/* Seen parked, each reader waited behind the waiting writer (only a
	 * waiting writer holds readers back while readers hold the lock).
	 * The writer that gives up by its deadline may do so at any moment
	 * from now on; the one to be cancelled still waits. */
	if (!by_deadline) {
		TU_CHECK_EQ(atomic_load(&r1.granted), 0);
		TU_CHECK_EQ(atomic_load(&r2.granted), 0);
	}
	if (!by_deadline)
		TU_CHECK_EQ(coev_cancel(tw), 0);
	TU_CHECK_EQ(coev_join(tw, NULL), 0);
	TU_CHECK_EQ(w.rc, by_deadline ? -ETIMEDOUT : -ECANCELED);
	/* This task still holds its read lock. */
	TU_CHECK_EQ(tu_wait_at_least(&r1.granted, 1), 0);
	TU_CHECK_EQ(tu_wait_at_least(&r2.granted, 1), 0);
	atomic_store(&r1.release, 1);
	atomic_store(&r2.release, 1);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	coev_rwlock_rdunlock(&rw);
	TU_CHECK_EQ(coev_rwlock_trywrlock(&rw), 0);
	coev_rwlock_wrunlock(&rw);
	coev_rwlock_destroy(&rw);
	return late;
}

static void test_rwlock_waiting_writer_gives_up_readers_enter(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(writer_gives_up_main, (void *)0, 2), 0);
	/* By deadline: 40 ms, doubled while a round found the deadline
	 * passed before both readers were in line (a stalled machine). */
	for (long ms = 40;; ms *= 2) {
		int r = tu_run_main(writer_gives_up_main, (void *)ms, 2);
		if (r == 0)
			break;
		assert_int_equal(r, 1);
		print_message("the writer's %ld ms passed before the readers "
			      "were in line; again\n",
			      ms);
		assert_true(ms < 1000L * TU_GUARD_S);
	}
	assert_int_equal(tu_run_main(writer_gives_up_main, (void *)0, 1), 0);
	tu_assert_no_failures();
}

/* ---- deadlines and cancellation at rdlock and wrlock -------------------- */

typedef struct lw {
	coev_rwlock_t *rw;
	int write;
	coev_time_t deadline;
	coev_time_t push;
	int precancel, shield;
	atomic_int arrived, finished;
	int rc, after_rc;
	coev_time_t ended;
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
	int rc;
	if (w->deadline == COEV_FOREVER)
		rc = w->write ? coev_rwlock_wrlock(w->rw)
			      : coev_rwlock_rdlock(w->rw);
	else
		rc = w->write ? coev_rwlock_wrlock_dl(w->rw, w->deadline)
			      : coev_rwlock_rdlock_dl(w->rw, w->deadline);
	w->ended = coev_now();
	if (tok >= 0)
		coev_deadline_pop(tok);
	w->rc = rc;
	if (rc == 0) {
		if (w->write)
			coev_rwlock_wrunlock(w->rw);
		else
			coev_rwlock_rdunlock(w->rw);
	} else {
		w->after_rc = coev_sleep(COEV_MSEC(1));
	}
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return rc;
}

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

/* held_write: this task holds the lock for writing (else for reading; then
 * only writers wait). */
static int giveup_main(void *arg)
{
	int held_write = (int)(intptr_t)arg;
	coev_rwlock_t rw;
	int wr = !held_write; /* the kind that must wait */
	coev_task_t *t[8], *c;

	TU_CHECK_EQ(coev_rwlock_init(&rw), 0);
	TU_CHECK_EQ(held_write ? coev_rwlock_wrlock(&rw)
			       : coev_rwlock_rdlock(&rw),
		    0);
	lw_t w[8] = {
		{.rw = &rw,
		 .write = wr,
		 .deadline = coev_now() + COEV_MSEC(40)},
		{.rw = &rw,
		 .write = 1,
		 .deadline = COEV_FOREVER,
		 .push = coev_now() + COEV_MSEC(30)},
		{.rw = &rw, .write = wr, .deadline = coev_now() - 1},
		{.rw = &rw, .write = 1, .deadline = COEV_FOREVER},
		{.rw = &rw,
		 .write = wr,
		 .deadline = coev_deadline(COEV_SEC(60))},
		{.rw = &rw,
		 .write = wr,
		 .deadline = COEV_FOREVER,
		 .precancel = 1},
		{.rw = &rw,
		 .write = 1,
		 .deadline = COEV_FOREVER,
		 .precancel = 1,
		 .shield = 1},
		{.rw = &rw, .write = wr, .deadline = COEV_FOREVER},
	};
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn_named("w", lock_waiter, &w[i], &t[i]),
			    0);
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	TU_CHECK_EQ(w[0].rc, -ETIMEDOUT);
	TU_CHECK(w[0].ended >= w[0].deadline);
	TU_CHECK_EQ(w[0].after_rc, 0);
	TU_CHECK_EQ(w[1].rc, -ETIMEDOUT);
	TU_CHECK(w[1].ended >= w[1].push);
	TU_CHECK_EQ(w[2].rc, -ETIMEDOUT);
	for (int i = 3; i < 8; i++) {
		TU_CHECK_EQ(coev_spawn_named("w", lock_waiter, &w[i], &t[i]),
			    0);
		/* 5 was cancelled before it came: it never waits. */
		if (i == 5)
			parked_or_ended(t[i], COEV_WAIT_SEM, &rw);
		else
			parked(t[i], COEV_WAIT_SEM, &rw);
	}
	TU_CHECK_EQ(coev_join(t[5], NULL), 0);
	TU_CHECK_EQ(w[5].rc, -ECANCELED);
	TU_CHECK_EQ(coev_cancel(t[3]), 0);
	TU_CHECK_EQ(coev_spawn(cancel_it, t[4], &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(coev_join(t[3], NULL), 0);
	TU_CHECK_EQ(coev_join(t[4], NULL), 0);
	TU_CHECK_EQ(w[3].rc, -ECANCELED);
	TU_CHECK_EQ(w[3].after_rc, -ECANCELED);
	TU_CHECK_EQ(w[4].rc, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&w[6].finished), 0);
	TU_CHECK_EQ(atomic_load(&w[7].finished), 0);
	/* The ones still waiting get the lock. */
	if (held_write)
		coev_rwlock_wrunlock(&rw);
	else
		coev_rwlock_rdunlock(&rw);
	TU_CHECK_EQ(coev_join(t[6], NULL), 0);
	TU_CHECK_EQ(coev_join(t[7], NULL), 0);
	TU_CHECK_EQ(w[6].rc, 0);
	TU_CHECK_EQ(w[7].rc, 0);
	TU_CHECK_EQ(coev_rwlock_trywrlock(&rw), 0);
	coev_rwlock_wrunlock(&rw);
	coev_rwlock_destroy(&rw);
	return 0;
}

static void test_rwlock_deadline_and_cancel_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, (void *)1, 2), 0);
	assert_int_equal(tu_run_main(giveup_main, (void *)0, 2), 0);
	tu_assert_no_failures();
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

typedef struct thr_lock {
	coev_rwlock_t *rw;
	int write;
	coev_time_t timeout; /* 0: no deadline */
	atomic_int arrived;
	int rc;
	coev_time_t took;
	tu_thread_at_t at;
} thr_lock_t;

static void *thread_lock(void *arg)
{
	thr_lock_t *a = arg;
	coev_time_t t0 = coev_now();

	TU_THREAD_AT(&a->at);
	atomic_store(&a->arrived, 1);
	if (a->timeout)
		a->rc = a->write
				? coev_rwlock_wrlock_dl(a->rw, t0 + a->timeout)
				: coev_rwlock_rdlock_dl(a->rw, t0 + a->timeout);
	else
		a->rc = a->write ? coev_rwlock_wrlock(a->rw)
				 : coev_rwlock_rdlock(a->rw);
	a->took = coev_now() - t0;
	if (a->rc == 0) {
		if (a->write)
			coev_rwlock_wrunlock(a->rw);
		else
			coev_rwlock_rdunlock(a->rw);
	}
	return NULL;
}

/* A plain thread holds the write lock, cancels a waiting task, and
 * releases to the next; plain threads wait for a task's hold. */
static void test_rwlock_cancel_from_thread_and_thread_waiters(void **state)
{
	coev_rwlock_t rw;
	coev_rt_t *rt = tu_new_rt(2);
	lw_t w1, w2;
	coev_task_t *t1, *t2;
	pthread_t th, ta, tb;
	void *crc;

	(void)state;
	assert_int_equal(coev_rwlock_init(&rw), 0);
	assert_int_equal(coev_rwlock_wrlock(&rw), 0);
	assert_int_equal(coev_rwlock_wrlock(&rw), -EDEADLK);
	w1 = (lw_t){.rw = &rw, .write = 1, .deadline = COEV_FOREVER};
	w2 = (lw_t){.rw = &rw, .write = 0, .deadline = COEV_FOREVER};
	assert_int_equal(coev_rt_spawn(rt, "w1", lock_waiter, &w1, &t1), 0);
	assert_int_equal(tu_wait_parked(rt, t1, COEV_WAIT_SEM, &rw), 0);
	assert_int_equal(coev_rt_spawn(rt, "w2", lock_waiter, &w2, &t2), 0);
	assert_int_equal(tu_wait_parked(rt, t2, COEV_WAIT_SEM, &rw), 0);
	assert_int_equal(pthread_create(&th, NULL, thread_cancel, t1), 0);
	pthread_join(th, &crc);
	assert_int_equal((intptr_t)crc, 0);
	assert_int_equal(coev_join(t1, NULL), 0);
	assert_int_equal(w1.rc, -ECANCELED);
	assert_int_equal(atomic_load(&w2.finished), 0);
	coev_rwlock_wrunlock(&rw);
	assert_int_equal(coev_join(t2, NULL), 0);
	assert_int_equal(w2.rc, 0);

	/* Threads wait for a read hold (a writer) and a write hold. */
	thr_lock_t a = {.rw = &rw, .write = 1, .timeout = COEV_MSEC(30)};
	thr_lock_t b = {.rw = &rw, .write = 1};
	assert_int_equal(coev_rwlock_rdlock(&rw), 0);
	assert_int_equal(pthread_create(&ta, NULL, thread_lock, &a), 0);
	pthread_join(ta, NULL);
	assert_int_equal(a.rc, -ETIMEDOUT);
	assert_true(a.took >= COEV_MSEC(30));
	assert_int_equal(pthread_create(&tb, NULL, thread_lock, &b), 0);
	assert_int_equal(tu_thread_wait_at_least(&b.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&b.at), 0);
	coev_rwlock_rdunlock(&rw);
	pthread_join(tb, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(coev_rwlock_trywrlock(&rw), 0);
	coev_rwlock_wrunlock(&rw);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_rwlock_destroy(&rw);
	tu_assert_no_failures();
}

/* ---- relock, try forms, arguments --------------------------------------- */

static int relock_main(void *arg)
{
	coev_rwlock_t *rw = arg;
	tries_t tr;

	TU_CHECK_EQ(coev_rwlock_wrlock(rw), 0);
	TU_CHECK_EQ(coev_rwlock_wrlock(rw), -EDEADLK);
	TU_CHECK_EQ(coev_rwlock_wrlock_dl(rw, coev_deadline(COEV_SEC(1))),
		    -EDEADLK);
	TU_CHECK_EQ(coev_rwlock_trywrlock(rw), -EBUSY);
	for (int i = 0; i < 20; i++)
		coev_yield();
	TU_CHECK_EQ(coev_rwlock_wrlock(rw), -EDEADLK);
	tr = probe(rw);
	TU_CHECK_EQ(tr.rd, -EBUSY);
	TU_CHECK_EQ(tr.wr, -EBUSY);
	coev_rwlock_wrunlock(rw);
	tr = probe(rw);
	TU_CHECK_EQ(tr.rd, 0);
	TU_CHECK_EQ(tr.wr, 0);
	/* Several read holds at once, from one task. */
	TU_CHECK_EQ(coev_rwlock_tryrdlock(rw), 0);
	TU_CHECK_EQ(coev_rwlock_rdlock(rw), 0);
	TU_CHECK_EQ(coev_rwlock_trywrlock(rw), -EBUSY);
	TU_CHECK_EQ(coev_rwlock_wrlock_dl(rw, coev_now() + COEV_MSEC(5)),
		    -ETIMEDOUT);
	coev_rwlock_rdunlock(rw);
	TU_CHECK_EQ(coev_rwlock_trywrlock(rw), -EBUSY);
	coev_rwlock_rdunlock(rw);
	TU_CHECK_EQ(coev_rwlock_wrlock_dl(rw, coev_now() - 1), 0);
	coev_rwlock_wrunlock(rw);
	return 0;
}

static void test_rwlock_relock_try_and_arguments(void **state)
{
	coev_rwlock_t rw;

	(void)state;
	assert_int_equal(coev_rwlock_init(NULL), -EINVAL);
	assert_int_equal(coev_rwlock_init(&rw), 0);
	assert_int_equal(tu_run_main(relock_main, &rw, 2), 0);
	tu_assert_no_failures();
	/* A plain thread. */
	assert_int_equal(coev_rwlock_wrlock(&rw), 0);
	assert_int_equal(coev_rwlock_wrlock(&rw), -EDEADLK);
	assert_int_equal(coev_rwlock_tryrdlock(&rw), -EBUSY);
	coev_rwlock_wrunlock(&rw);
	assert_int_equal(coev_rwlock_rdlock(&rw), 0);
	assert_int_equal(coev_rwlock_rdlock_dl(&rw, coev_now()), 0);
	coev_rwlock_rdunlock(&rw);
	coev_rwlock_rdunlock(&rw);
	coev_rwlock_destroy(&rw);
}

/* ---- cancels and timeouts racing the unlock ----------------------------- */

/*
 * Each round: this task write-holds the lock; A queues (read or write,
 * with a deadline or cancelled by a plain thread), B (a reader) queues
 * behind it. The unlock races A's deadline or cancel. B must always get
 * in, A holds the lock exactly when it returned 0, and the lock ends free.
 */
typedef struct race {
	coev_rwlock_t rw;
	int a_write, a_dl;
	coev_time_t deadline;
	coev_task_t *a;
	atomic_int a_arrived;
	int rc_a, rc_b;
	atomic_int inside_w, inside_r, violations;
	sem_t go;
	atomic_int gone, quit;
	unsigned thread_spin;
	long ok, timedout, cancelled, unstarted;
} race_t;

static void race_hold(race_t *r, int write)
{
	if (write) {
		if (atomic_fetch_add(&r->inside_w, 1) != 0 ||
		    atomic_load(&r->inside_r) != 0)
			atomic_fetch_add(&r->violations, 1);
		atomic_fetch_sub(&r->inside_w, 1);
		coev_rwlock_wrunlock(&r->rw);
	} else {
		atomic_fetch_add(&r->inside_r, 1);
		if (atomic_load(&r->inside_w) != 0)
			atomic_fetch_add(&r->violations, 1);
		atomic_fetch_sub(&r->inside_r, 1);
		coev_rwlock_rdunlock(&r->rw);
	}
}

static int race_a(void *arg)
{
	race_t *r = arg;
	int rc;

	atomic_store(&r->a_arrived, 1);
	if (r->a_dl)
		rc = r->a_write ? coev_rwlock_wrlock_dl(&r->rw, r->deadline)
				: coev_rwlock_rdlock_dl(&r->rw, r->deadline);
	else
		rc = r->a_write ? coev_rwlock_wrlock(&r->rw)
				: coev_rwlock_rdlock(&r->rw);
	r->rc_a = rc;
	if (rc == 0)
		race_hold(r, r->a_write);
	return 0;
}

static int race_b(void *arg)
{
	race_t *r = arg;

	r->rc_b = coev_rwlock_rdlock_dl(&r->rw, tu_guard());
	if (r->rc_b == 0)
		race_hold(r, 0);
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
	unsigned seed = 0x51ed270bu;
	pthread_t th;
	int sent = 0;

	TU_CHECK_EQ(pthread_create(&th, NULL, race_thread, r), 0);
	for (int it = 0; it < RACE_ITERS; it++) {
		unsigned v = rnd_next(&seed);
		unsigned spin = v % 30000;
		coev_task_t *b;
		int ra = 0;

		r->a_write = (v >> 20) & 1;
		r->a_dl = it % 2;
		r->rc_a = r->rc_b = 1;
		atomic_store(&r->a_arrived, 0);
		TU_CHECK_EQ(coev_rwlock_wrlock(&r->rw), 0);
		r->deadline = coev_now() + COEV_USEC(5) + (coev_time_t)spin;
		TU_CHECK_EQ(coev_spawn(race_a, r, &r->a), 0);
		TU_CHECK_EQ(coev_spawn(race_b, r, &b), 0);
		if ((v >> 16) % 4 == 1)
			TU_CHECK_EQ(spin_until(&r->a_arrived, 1), 0);
		else if ((v >> 16) % 4 > 1)
			TU_CHECK_EQ(busy_until(&r->a_arrived, 1, COEV_MSEC(2)),
				    0);
		if (!r->a_dl) {
			r->thread_spin = (v >> 8) % 30000;
			sent++;
			sem_post(&r->go);
		}
		tu_spin_ns(spin);
		coev_rwlock_wrunlock(&r->rw);
		if (!r->a_dl)
			TU_CHECK_EQ(spin_until(&r->gone, sent), 0);
		TU_CHECK_EQ(coev_join(r->a, &ra), 0);
		TU_CHECK_EQ(coev_join(b, NULL), 0);
		if (r->rc_a == 1 && ra == -ECANCELED) {
			r->unstarted++;
			r->rc_a = -ECANCELED;
		}
		int want = r->a_dl ? -ETIMEDOUT : -ECANCELED;
		TU_CHECK_MSG(r->rc_a == 0 || r->rc_a == want,
			     "round %d: A (%s) returned %d", it,
			     r->a_write ? "writer" : "reader", r->rc_a);
		r->ok += r->rc_a == 0;
		r->timedout += r->rc_a == -ETIMEDOUT;
		r->cancelled += r->rc_a == -ECANCELED;
		TU_CHECK_MSG(r->rc_b == 0, "round %d: B returned %d", it,
			     r->rc_b);
		int trc = coev_rwlock_trywrlock(&r->rw);
		TU_CHECK_MSG(trc == 0, "round %d: the lock leaked", it);
		if (trc == 0)
			coev_rwlock_wrunlock(&r->rw);
		if (r->rc_b != 0 || trc != 0)
			break;
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	return 0;
}

static void test_rwlock_cancel_and_timeout_race_unlock(void **state)
{
	race_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(coev_rwlock_init(&r->rw), 0);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(tu_run_main(race_main, r, 2), 0);
	print_message("A got the lock %ld times, timed out %ld, cancelled "
		      "%ld (%ld before it ran)\n",
		      r->ok, r->timedout, r->cancelled, r->unstarted);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&r->violations), 0);
	assert_int_equal(r->ok + r->timedout + r->cancelled, RACE_ITERS);
	assert_true(r->ok > 0);
	assert_true(r->timedout > 0);
	assert_true(r->cancelled - r->unstarted > 0);
	coev_rwlock_destroy(&r->rw);
	sem_destroy(&r->go);
	free(r);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_rwlock_t *wheld, *rheld;
	int rd_dl_rc, rd_rc, wr_dl_rc, wr_rc, tryrd_w, trywr_w, tryrd_r,
		trywr_r;
} cb_t;

static void rwlock_cb(void *arg)
{
	cb_t *c = arg;

	c->rd_dl_rc =
		coev_rwlock_rdlock_dl(c->wheld, coev_deadline(COEV_SEC(1)));
	c->rd_rc =
		c->rd_dl_rc == COEV_ENOTCORO ? coev_rwlock_rdlock(c->wheld) : 1;
	c->wr_dl_rc =
		coev_rwlock_wrlock_dl(c->rheld, coev_deadline(COEV_SEC(1)));
	c->wr_rc =
		c->wr_dl_rc == COEV_ENOTCORO ? coev_rwlock_wrlock(c->rheld) : 1;
	c->tryrd_w = coev_rwlock_tryrdlock(c->wheld);
	c->trywr_w = coev_rwlock_trywrlock(c->wheld);
	c->tryrd_r = coev_rwlock_tryrdlock(c->rheld);
	if (c->tryrd_r == 0)
		coev_rwlock_rdunlock(c->rheld);
	c->trywr_r = coev_rwlock_trywrlock(c->rheld);
}

static int cb_main(void *arg)
{
	coev_rwlock_t wheld, rheld;
	cb_t c = {.wheld = &wheld, .rheld = &rheld};

	(void)arg;
	TU_CHECK_EQ(coev_rwlock_init(&wheld), 0);
	TU_CHECK_EQ(coev_rwlock_init(&rheld), 0);
	TU_CHECK_EQ(coev_rwlock_wrlock(&wheld), 0);
	TU_CHECK_EQ(coev_rwlock_rdlock(&rheld), 0);
	TU_CHECK_EQ(tu_on_loop(rwlock_cb, &c), 0);
	TU_CHECK_EQ(c.rd_dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.rd_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wr_dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wr_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.tryrd_w, -EBUSY);
	TU_CHECK_EQ(c.trywr_w, -EBUSY);
	TU_CHECK_EQ(c.tryrd_r, 0);
	TU_CHECK_EQ(c.trywr_r, -EBUSY);
	coev_rwlock_wrunlock(&wheld);
	coev_rwlock_rdunlock(&rheld);
	TU_CHECK_EQ(coev_rwlock_trywrlock(&wheld), 0);
	TU_CHECK_EQ(coev_rwlock_trywrlock(&rheld), 0);
	coev_rwlock_wrunlock(&wheld);
	coev_rwlock_wrunlock(&rheld);
	coev_rwlock_destroy(&wheld);
	coev_rwlock_destroy(&rheld);
	return 0;
}

static void test_rwlock_from_loop_callback(void **state)
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
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "rwlock");
	if (!ok) {
		fprintf(stderr, "%s:\n", what);
		tu_child_dump(res);
	}
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "rwlock"));
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

static coev_rwlock_t misuse_rw;

static void child_wrunlock_free(void *arg)
{
	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_wrunlock(&misuse_rw);
}

static void child_rdunlock_free(void *arg)
{
	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_rdunlock(&misuse_rw);
}

static void child_wrunlock_read_held(void *arg)
{
	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_rdlock(&misuse_rw);
	coev_rwlock_wrunlock(&misuse_rw);
}

static void child_rdunlock_write_held(void *arg)
{
	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_wrlock(&misuse_rw);
	coev_rwlock_rdunlock(&misuse_rw);
}

static int wrunlocker(void *arg)
{
	(void)arg;
	coev_rwlock_wrunlock(&misuse_rw);
	return 0;
}

static int wrunlock_by_other_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_wrlock(&misuse_rw);
	coev_spawn(wrunlocker, NULL, &t);
	coev_join(t, NULL);
	return 0;
}

static void child_wrunlock_by_other_task(void *arg)
{
	(void)arg;
	run_two_workers(wrunlock_by_other_main);
}

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_rwlock_rdlock(&misuse_rw);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_rwlock_init(&misuse_rw);
	coev_rwlock_wrlock(&misuse_rw);
	coev_spawn(destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_SEM, &misuse_rw);
	coev_rwlock_destroy(&misuse_rw);
	fprintf(stderr, "destroy with a waiter returned\n");
	return 0;
}

static void child_destroy_with_waiter(void *arg)
{
	(void)arg;
	run_two_workers(destroy_main);
}

static void test_rwlock_unlock_not_held_that_way_aborts(void **state)
{
	(void)state;
	expect_abort(child_wrunlock_free, "wrunlock of a free rwlock");
	expect_abort(child_rdunlock_free, "rdunlock of a free rwlock");
	expect_abort(child_wrunlock_read_held, "wrunlock of a read hold");
	expect_abort(child_rdunlock_write_held, "rdunlock of a write hold");
	expect_abort(child_wrunlock_by_other_task, "wrunlock by a non-writer");
}

static void test_rwlock_destroy_with_waiters_aborts(void **state)
{
	(void)state;
	expect_abort(child_destroy_with_waiter, "destroy with a waiter");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_rwlock_exclusion_under_contention),
		TU_FD_TEST(test_rwlock_writer_preference_and_fifo_order),
		TU_FD_TEST(test_rwlock_waiting_writer_gives_up_readers_enter),
		TU_FD_TEST(test_rwlock_deadline_and_cancel_while_waiting),
		TU_FD_TEST(test_rwlock_cancel_from_thread_and_thread_waiters),
		TU_FD_TEST(test_rwlock_relock_try_and_arguments),
		TU_FD_TEST(test_rwlock_cancel_and_timeout_race_unlock),
		TU_FD_TEST(test_rwlock_from_loop_callback),
		TU_FD_TEST(test_rwlock_unlock_not_held_that_way_aborts),
		TU_FD_TEST(test_rwlock_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
