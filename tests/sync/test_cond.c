/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_cond.c — coev_cond_t with coev_mutex_t (include/coev/
 * sync.h): a bounded buffer with producers and consumers (tasks on every
 * worker and plain threads) that loses and duplicates nothing; a signal
 * wakes the longest waiter, in order; broadcast wakes every waiter; every
 * return holds the mutex again, also after a deadline or a cancel (and
 * waits for it as long as it must); a signal racing a waiter's cancel or
 * deadline wakes exactly one waiter; calls from a loop callback; and the
 * misuse that aborts (wait without holding the mutex, destroy with
 * waiters).
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

/* ---- a bounded buffer --------------------------------------------------- */

#define BUF_CAP 4
#define PRODUCERS 4			   /* tasks, plus one plain thread */
#define CONSUMERS 4			   /* tasks, plus one plain thread */
#define ITEMS TU_SCALE(40000, 12000, 6000) /* per producer */

typedef struct buf {
	coev_mutex_t m;
	coev_cond_t not_empty, not_full;
	long items[BUF_CAP];	     /* [m] */
	int head, count;	     /* [m] */
	long produced_sum;	     /* [m] */
	long consumed, consumed_sum; /* [m] */
	long total;		     /* [init] items overall */
	atomic_int bad;		     /* invariants broken */
	atomic_long timeouts;	     /* wait_dl attempts that timed out */
} buf_t;

typedef struct buf_arg {
	buf_t *b;
	int id;
} buf_arg_t;

/* A wait on c that sometimes uses a short deadline (the caller loops on
 * its predicate anyway). Either way m is held again on return. */
static int buf_wait(buf_t *b, coev_cond_t *c, long i)
{
	int rc;

	if (i % 5 == 0) {
		rc = coev_cond_wait_dl(c, &b->m,
				       coev_now() + COEV_USEC(10 + i % 50));
		if (rc == -ETIMEDOUT) {
			atomic_fetch_add_explicit(&b->timeouts, 1,
						  memory_order_relaxed);
			rc = 0;
		}
	} else {
		rc = coev_cond_wait(c, &b->m);
	}
	return rc;
}

static int produce(buf_t *b, int id)
{
	for (long i = 0; i < ITEMS; i++) {
		long v = (long)id * ITEMS + i + 1;
		int rc = coev_mutex_lock(&b->m);
		if (rc != 0)
			return rc;
		while (b->count == BUF_CAP) {
			rc = buf_wait(b, &b->not_full, i);
			if (rc != 0) {
				coev_mutex_unlock(&b->m);
				return rc;
			}
		}
		if (b->count < 0 || b->count >= BUF_CAP)
			atomic_fetch_add(&b->bad, 1);
		b->items[(b->head + b->count) % BUF_CAP] = v;
		b->count++;
		b->produced_sum += v;
		coev_cond_signal(&b->not_empty);
		coev_mutex_unlock(&b->m);
	}
	return 0;
}

static int consume(buf_t *b)
{
	long i = 0;
	int rc = coev_mutex_lock(&b->m);

	if (rc != 0)
		return rc;
	for (;;) {
		while (b->count == 0 && b->consumed < b->total) {
			rc = buf_wait(b, &b->not_empty, i++);
			if (rc != 0) {
				coev_mutex_unlock(&b->m);
				return rc;
			}
		}
		if (b->consumed == b->total) {
			/* All taken: let the other consumers see it. */
			coev_cond_broadcast(&b->not_empty);
			break;
		}
		if (b->count <= 0 || b->count > BUF_CAP)
			atomic_fetch_add(&b->bad, 1);
		long v = b->items[b->head];
		b->head = (b->head + 1) % BUF_CAP;
		b->count--;
		b->consumed++;
		b->consumed_sum += v;
		coev_cond_signal(&b->not_full);
		if (i % 3 == 0) {
			/* Sometimes give way with the mutex released. */
			coev_mutex_unlock(&b->m);
			if (coev_self())
				coev_yield();
			rc = coev_mutex_lock(&b->m);
			if (rc != 0)
				return rc;
		}
		i++;
	}
	coev_mutex_unlock(&b->m);
	return 0;
}

static int producer_task(void *arg)
{
	buf_arg_t *a = arg;
	int rc = produce(a->b, a->id);

	TU_CHECK_EQ(rc, 0);
	return rc;
}

static int consumer_task(void *arg)
{
	buf_arg_t *a = arg;
	int rc = consume(a->b);

	TU_CHECK_EQ(rc, 0);
	return rc;
}

static void *producer_thread(void *arg)
{
	buf_arg_t *a = arg;

	TU_CHECK_EQ(produce(a->b, a->id), 0);
	return NULL;
}

static void *consumer_thread(void *arg)
{
	buf_arg_t *a = arg;

	TU_CHECK_EQ(consume(a->b), 0);
	return NULL;
}

static void run_buffer(unsigned workers, int fair)
{
	buf_t *b = calloc(1, sizeof *b);
	coev_rt_t *rt = tu_new_rt(workers);
	buf_arg_t pa[PRODUCERS + 1], ca[CONSUMERS + 1];
	coev_task_t *pt[PRODUCERS], *ct[CONSUMERS];
	pthread_t pth, cth;

	assert_non_null(b);
	assert_int_equal(coev_mutex_init(&b->m, fair ? COEV_MUTEX_FAIR : 0), 0);
	assert_int_equal(coev_cond_init(&b->not_empty), 0);
	/* not_full stays zero-initialised (COEV_COND_INIT). */
	b->total = (long)(PRODUCERS + 1) * ITEMS;
	for (int i = 0; i <= PRODUCERS; i++)
		pa[i] = (buf_arg_t){.b = b, .id = i};
	for (int i = 0; i <= CONSUMERS; i++)
		ca[i] = (buf_arg_t){.b = b, .id = i};
	for (int i = 0; i < CONSUMERS; i++)
		assert_int_equal(coev_rt_spawn(rt, "consumer", consumer_task,
					       &ca[i], &ct[i]),
				 0);
	assert_int_equal(
		pthread_create(&cth, NULL, consumer_thread, &ca[CONSUMERS]), 0);
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(coev_rt_spawn(rt, "producer", producer_task,
					       &pa[i], &pt[i]),
				 0);
	assert_int_equal(
		pthread_create(&pth, NULL, producer_thread, &pa[PRODUCERS]), 0);
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(coev_join(pt[i], NULL), 0);
	for (int i = 0; i < CONSUMERS; i++)
		assert_int_equal(coev_join(ct[i], NULL), 0);
	pthread_join(pth, NULL);
	pthread_join(cth, NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	print_message("%u workers%s: %ld items, %ld short waits timed out\n",
		      workers, fair ? " (fair mutex)" : "", b->consumed,
		      atomic_load(&b->timeouts));
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&b->bad), 0);
	assert_int_equal(b->consumed, b->total);
	assert_int_equal(b->count, 0);
	long n = b->total;
	assert_true(b->produced_sum == n * (n + 1) / 2);
	assert_true(b->consumed_sum == b->produced_sum);
	coev_cond_destroy(&b->not_empty);
	coev_cond_destroy(&b->not_full);
	coev_mutex_destroy(&b->m);
	free(b);
}

static void test_cond_bounded_buffer_loses_nothing(void **state)
{
	(void)state;
	run_buffer(2, 0);
	run_buffer(2, 1);
	run_buffer(3, 0);
}

/* ---- a waiter: waits once, records, proves it holds the mutex ----------- */

typedef struct cw {
	coev_cond_t *c;
	coev_mutex_t *m;
	coev_time_t deadline; /* COEV_FOREVER: coev_cond_wait */
	coev_time_t push;
	int precancel, shield;
	int id;
	int *log; /* ids in wake order [m] */
	int *logn;
	int *signals;	     /* signals sent so far [m] */
	int *woken;	     /* waits that returned 0 so far [m] */
	atomic_int *inside;  /* holders of m: never more than one */
	atomic_int arrived;  /* set while holding m, before the wait */
	atomic_int returned; /* the wait returned (m held) */
	atomic_int may_go;   /* if hold: unlock only once this is set */
	atomic_int finished;
	int hold;
	int rc;
	int over; /* woken > signals seen at return */
	coev_time_t ended;
} cw_t;

static void cw_body(cw_t *w)
{
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	int lrc = coev_mutex_lock(w->m);
	TU_CHECK_EQ(lrc, 0);
	atomic_store(&w->arrived, 1);
	int rc = w->deadline == COEV_FOREVER
			 ? coev_cond_wait(w->c, w->m)
			 : coev_cond_wait_dl(w->c, w->m, w->deadline);
	w->ended = coev_now();
	if (tok >= 0) {
		coev_deadline_pop(tok);
		tok = -1;
	}
	/* Held again, whatever rc is. */
	if (w->inside && atomic_fetch_add(w->inside, 1) != 0)
		TU_CHECK_MSG(0, "waiter %d: another holder inside", w->id);
	w->rc = rc;
	if (rc == 0) {
		if (w->woken) {
			(*w->woken)++;
			w->over = w->signals && *w->woken > *w->signals;
		}
		if (w->log)
			w->log[(*w->logn)++] = w->id;
	}
	atomic_store(&w->returned, 1);
	if (w->hold) {
		/* Shielded: a cancelled task's sleeps would not sleep. */
		coev_shield_begin();
		TU_CHECK_EQ(tu_wait_at_least(&w->may_go, 1), 0);
		coev_shield_end();
	}
	if (w->inside)
		atomic_fetch_sub(w->inside, 1);
	coev_mutex_unlock(w->m);
	if (tok >= 0)
		coev_deadline_pop(tok);
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
}

static int cond_waiter(void *arg)
{
	cw_t *w = arg;

	cw_body(w);
	return w->rc;
}

static void *thread_cond_waiter(void *arg)
{
	cw_t *w = arg;
	int rc = coev_mutex_lock(w->m);

	TU_CHECK_EQ(rc, 0);
	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_cond_wait(w->c, w->m)
			: coev_cond_wait_dl(w->c, w->m, w->deadline);
	w->ended = coev_now();
	if (w->inside && atomic_fetch_add(w->inside, 1) != 0)
		TU_CHECK_MSG(0, "thread waiter: another holder inside");
	if (w->rc == 0 && w->log)
		w->log[(*w->logn)++] = w->id;
	if (w->rc == 0 && w->woken) {
		(*w->woken)++;
		w->over = w->signals && *w->woken > *w->signals;
	}
	atomic_store(&w->returned, 1);
	if (w->inside)
		atomic_fetch_sub(w->inside, 1);
	coev_mutex_unlock(w->m);
	atomic_store(&w->finished, 1);
	return NULL;
}

/* As a task: once w announced its wait (holding m), taking m proves that
 * it is queued: cond_wait releases m only after queueing. */
static void wait_queued(cw_t *w, coev_mutex_t *m)
{
	TU_CHECK_EQ(spin_until(&w->arrived, 1), 0);
	TU_CHECK_EQ(coev_mutex_lock(m), 0);
	coev_mutex_unlock(m);
}

/* ---- signal order, broadcast -------------------------------------------- */

#define ORD_N 8
#define ORD_THREAD 3 /* this one is a plain thread */

static int order_main(void *arg)
{
	coev_cond_t c;
	coev_mutex_t m;
	cw_t w[ORD_N];
	coev_task_t *t[ORD_N];
	pthread_t th;
	int logn = 0, signals = 0, woken = 0;
	atomic_int inside = 0;

	(void)arg;
	TU_CHECK_EQ(coev_cond_init(&c), 0);
	TU_CHECK_EQ(coev_mutex_init(&m, 0), 0);
	for (int i = 0; i < ORD_N; i++) {
		w[i] = (cw_t){.c = &c,
			      .m = &m,
			      .deadline = COEV_FOREVER,
			      .id = i,
			      .logn = &logn,
			      .signals = &signals,
			      .woken = &woken,
			      .inside = &inside};
		if (i == ORD_THREAD)
			TU_CHECK_EQ(pthread_create(&th, NULL,
						   thread_cond_waiter, &w[i]),
				    0);
		else
			TU_CHECK_EQ(coev_spawn_named("waiter", cond_waiter,
						     &w[i], &t[i]),
				    0);
		wait_queued(&w[i], &m);
	}
	for (int k = 0; k < ORD_N; k++) {
		TU_CHECK_EQ(coev_mutex_lock(&m), 0);
		signals++;
		coev_cond_signal(&c);
		coev_mutex_unlock(&m);
		TU_CHECK_EQ(tu_wait_at_least(&w[k].returned, 1), 0);
		coev_sleep(COEV_MSEC(2)); /* a negative check: no other wakes */
		for (int i = 0; i < ORD_N; i++)
			TU_CHECK_MSG(atomic_load(&w[i].returned) == (i <= k),
				     "after signal %d: waiter %d returned=%d",
				     k, i, atomic_load(&w[i].returned));
		TU_CHECK_EQ(w[k].rc, 0);
		TU_CHECK_EQ(w[k].over, 0);
	}
	/* The tasks first: pthread_join blocks this worker. */
	for (int i = 0; i < ORD_N; i++)
		if (i != ORD_THREAD)
			TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	pthread_join(th, NULL);
	/* Nobody waits: a signal is not remembered. */
	coev_cond_signal(&c);
	coev_cond_broadcast(&c);
	TU_CHECK_EQ(coev_mutex_lock(&m), 0);
	TU_CHECK_EQ(coev_cond_wait_dl(&c, &m, coev_now() + COEV_MSEC(10)),
		    -ETIMEDOUT);
	coev_mutex_unlock(&m);
	coev_cond_destroy(&c);
	coev_mutex_destroy(&m);
	return 0;
}

static void test_cond_signal_wakes_the_longest_waiter(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(order_main, NULL, 1), 0);
	assert_int_equal(tu_run_main(order_main, NULL, 2), 0);
	tu_assert_no_failures();
}

#define BC_N 12

static int broadcast_main(void *arg)
{
	coev_cond_t c = COEV_COND_INIT;
	coev_mutex_t m = COEV_MUTEX_INIT;
	cw_t w[BC_N];
	coev_task_t *t[BC_N];
	pthread_t th;
	atomic_int inside = 0;
	int signals = 0, woken = 0, logn = 0;

	(void)arg;
	for (int i = 0; i < BC_N; i++) {
		w[i] = (cw_t){.c = &c,
			      .m = &m,
			      .deadline = i % 2 ? tu_guard() : COEV_FOREVER,
			      .id = i,
			      .logn = &logn,
			      .signals = &signals,
			      .woken = &woken,
			      .inside = &inside};
		if (i == 0)
			TU_CHECK_EQ(pthread_create(&th, NULL,
						   thread_cond_waiter, &w[i]),
				    0);
		else
			TU_CHECK_EQ(coev_spawn(cond_waiter, &w[i], &t[i]), 0);
		wait_queued(&w[i], &m);
	}
	TU_CHECK_EQ(coev_mutex_lock(&m), 0);
	signals = BC_N;
	coev_cond_broadcast(&c);
	/* They need the mutex to return. */
	coev_sleep(SETTLE);
	for (int i = 0; i < BC_N; i++)
		TU_CHECK_EQ(atomic_load(&w[i].returned), 0);
	coev_mutex_unlock(&m);
	/* The tasks first: pthread_join blocks this worker. */
	for (int i = 1; i < BC_N; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	pthread_join(th, NULL);
	for (int i = 0; i < BC_N; i++)
		TU_CHECK_EQ(w[i].rc, 0);
	TU_CHECK_EQ(woken, BC_N);
	coev_cond_destroy(&c);
	coev_mutex_destroy(&m);
	return 0;
}

static void test_cond_broadcast_wakes_every_waiter(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(broadcast_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadlines and cancellation: the mutex is held on return ------------ */

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

/* As a task: w returned holding m (m is busy for us) and then let go. */
static void check_returned_holding(cw_t *w, coev_mutex_t *m)
{
	TU_CHECK_EQ(tu_wait_at_least(&w->returned, 1), 0);
	TU_CHECK_EQ(coev_mutex_trylock(m), -EBUSY);
	atomic_store(&w->may_go, 1);
	TU_CHECK_EQ(tu_wait_at_least(&w->finished, 1), 0);
}

static int giveup_main(void *arg)
{
	coev_cond_t c;
	coev_mutex_t m;
	coev_task_t *t[9], *k;
	pthread_t th;
	void *crc;
	atomic_int inside = 0;

	(void)arg;
	TU_CHECK_EQ(coev_cond_init(&c), 0);
	TU_CHECK_EQ(coev_mutex_init(&m, 0), 0);
	cw_t w[9];
	for (int i = 0; i < 9; i++)
		w[i] = (cw_t){.c = &c,
			      .m = &m,
			      .deadline = COEV_FOREVER,
			      .id = i,
			      .inside = &inside,
			      .hold = 1};
	w[0].deadline = coev_now() + COEV_MSEC(30);
	w[1].push = coev_now() + COEV_MSEC(30);
	w[2].deadline = coev_now() - 1; /* already past: only tries */
	w[3].precancel = 1;
	w[4].precancel = 1;
	w[4].shield = 1; /* waits for a signal */
	w[8].hold = 0;	 /* the one that stays */

	/* Deadlines: -ETIMEDOUT, never early, holding m. */
	for (int i = 0; i < 4; i++) {
		TU_CHECK_EQ(coev_spawn(cond_waiter, &w[i], &t[i]), 0);
		check_returned_holding(&w[i], &m);
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	}
	TU_CHECK_EQ(w[0].rc, -ETIMEDOUT);
	TU_CHECK(w[0].ended >= w[0].deadline);
	TU_CHECK_EQ(w[1].rc, -ETIMEDOUT);
	TU_CHECK(w[1].ended >= w[1].push);
	TU_CHECK_EQ(w[2].rc, -ETIMEDOUT);
	TU_CHECK_EQ(w[3].rc, -ECANCELED);

	/* The shielded one and the one that stays wait; three more are
	 * cancelled: by this task, by another task, by a plain thread. */
	TU_CHECK_EQ(coev_spawn(cond_waiter, &w[4], &t[4]), 0);
	wait_queued(&w[4], &m);
	for (int i = 5; i < 9; i++) {
		TU_CHECK_EQ(coev_spawn(cond_waiter, &w[i], &t[i]), 0);
		wait_queued(&w[i], &m);
	}
	TU_CHECK_EQ(coev_cancel(t[5]), 0);
	check_returned_holding(&w[5], &m);
	TU_CHECK_EQ(coev_spawn(cancel_it, t[6], &k), 0);
	TU_CHECK_EQ(coev_join(k, NULL), 0);
	check_returned_holding(&w[6], &m);
	TU_CHECK_EQ(pthread_create(&th, NULL, thread_cancel, t[7]), 0);
	pthread_join(th, &crc);
	TU_CHECK_EQ((intptr_t)crc, 0);
	check_returned_holding(&w[7], &m);
	for (int i = 5; i < 8; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, -ECANCELED);
	}
	TU_CHECK_EQ(atomic_load(&w[4].returned), 0);
	TU_CHECK_EQ(atomic_load(&w[8].returned), 0);

	/* Two signals: the two left (the shielded one first: FIFO). */
	TU_CHECK_EQ(coev_mutex_lock(&m), 0);
	coev_cond_signal(&c);
	coev_mutex_unlock(&m);
	check_returned_holding(&w[4], &m);
	TU_CHECK_EQ(w[4].rc, 0);
	TU_CHECK_EQ(atomic_load(&w[8].returned), 0);
	TU_CHECK_EQ(coev_mutex_lock(&m), 0);
	coev_cond_signal(&c);
	coev_mutex_unlock(&m);
	TU_CHECK_EQ(coev_join(t[4], NULL), 0);
	TU_CHECK_EQ(coev_join(t[8], NULL), 0);
	TU_CHECK_EQ(w[8].rc, 0);
	coev_cond_destroy(&c);
	coev_mutex_destroy(&m);
	return 0;
}

static void test_cond_deadline_and_cancel_return_holding_mutex(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* A deadline or a cancel while someone else holds the mutex: the waiter
 * returns only once it has the mutex again, however long that takes. */
static int relock_main(void *arg)
{
	int by_cancel = (int)(intptr_t)arg;
	coev_cond_t c;
	coev_mutex_t m;
	coev_task_t *t;
	atomic_int inside = 0;
	cw_t w;

	TU_CHECK_EQ(coev_cond_init(&c), 0);
	TU_CHECK_EQ(coev_mutex_init(&m, 0), 0);
	w = (cw_t){.c = &c,
		   .m = &m,
		   .deadline = by_cancel ? COEV_FOREVER
					 : coev_now() + COEV_MSEC(20),
		   .inside = &inside};
	TU_CHECK_EQ(coev_spawn(cond_waiter, &w, &t), 0);
	wait_queued(&w, &m);
	TU_CHECK_EQ(coev_mutex_lock(&m), 0);
	if (by_cancel)
		TU_CHECK_EQ(coev_cancel(t), 0);
	/* Out of the condition's queue (deadline or cancel), it waits for
	 * the mutex, and cannot return before it has it. */
	parked(t, COEV_WAIT_MUTEX, &m);
	TU_CHECK_EQ(atomic_load(&w.returned), 0);
	coev_mutex_unlock(&m);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, by_cancel ? -ECANCELED : -ETIMEDOUT);
	coev_cond_destroy(&c);
	coev_mutex_destroy(&m);
	return 0;
}

static void test_cond_wait_relocks_as_long_as_it_must(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(relock_main, (void *)0, 2), 0);
	assert_int_equal(tu_run_main(relock_main, (void *)1, 2), 0);
	assert_int_equal(tu_run_main(relock_main, (void *)1, 1), 0);
	tu_assert_no_failures();
}

/* ---- a signal racing a cancel or a deadline ----------------------------- */

/*
 * Each round: A then B wait. One signal races A's cancel (by a plain
 * thread) or A's deadline. Exactly one of them is woken by it: if A
 * returned 0, B still waits and needs a second signal; if A gave up, the
 * signal reached B. No return of 0 outnumbers the signals sent.
 */
typedef struct crace {
	coev_cond_t c;
	coev_mutex_t m;
	cw_t a, b;
	coev_task_t *ta;
	int signals, woken; /* [m] */
	atomic_int inside;
	sem_t go;
	atomic_int gone, quit;
	unsigned cancel_spin;
	long a_ok, a_gave_up, b_needed_second;
} crace_t;

static void *crace_canceller(void *arg)
{
	crace_t *r = arg;

	for (;;) {
		while (sem_wait(&r->go) != 0) {
		}
		if (atomic_load(&r->quit))
			return NULL;
		tu_spin_ns(r->cancel_spin);
		TU_CHECK_EQ(coev_cancel(r->ta), 0);
		atomic_fetch_add(&r->gone, 1);
	}
}

#define CRACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int crace_main(void *arg)
{
	crace_t *r = arg;
	unsigned seed = 0x7f4a7c15u;
	pthread_t th;
	int sent = 0;

	TU_CHECK_EQ(coev_cond_init(&r->c), 0);
	TU_CHECK_EQ(coev_mutex_init(&r->m, 0), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, crace_canceller, r), 0);
	for (int round = 0; round < CRACE_ROUNDS; round++) {
		unsigned v = rnd_next(&seed);
		int by_cancel = round % 2;
		coev_task_t *tb;

		r->signals = r->woken = 0;
		r->a = (cw_t){.c = &r->c,
			      .m = &r->m,
			      .deadline = COEV_FOREVER,
			      .signals = &r->signals,
			      .woken = &r->woken,
			      .inside = &r->inside};
		r->b = r->a;
		r->b.deadline = tu_guard();
		if (!by_cancel)
			r->a.deadline = coev_now() + COEV_USEC(20) +
					(coev_time_t)(v % 30000);
		TU_CHECK_EQ(coev_spawn(cond_waiter, &r->a, &r->ta), 0);
		wait_queued(&r->a, &r->m);
		TU_CHECK_EQ(coev_spawn(cond_waiter, &r->b, &tb), 0);
		wait_queued(&r->b, &r->m);
		if (by_cancel) {
			r->cancel_spin = (v >> 8) % 20000;
			sent++;
			sem_post(&r->go);
		}
		tu_spin_ns((v >> 4) % 20000);
		TU_CHECK_EQ(coev_mutex_lock(&r->m), 0);
		r->signals++;
		coev_cond_signal(&r->c);
		coev_mutex_unlock(&r->m);
		if (by_cancel)
			TU_CHECK_EQ(spin_until(&r->gone, sent), 0);
		TU_CHECK_EQ(spin_until(&r->a.finished, 1), 0);
		int ra = r->a.rc;
		int want = by_cancel ? -ECANCELED : -ETIMEDOUT;
		TU_CHECK_MSG(ra == 0 || ra == want, "round %d: A %d", round,
			     ra);
		if (ra == 0) {
			/* The signal was A's: B waits for another one. */
			r->a_ok++;
			coev_time_t end = coev_now() + COEV_USEC(50);
			while (coev_now() < end)
				coev_yield();
			TU_CHECK_MSG(!atomic_load(&r->b.returned),
				     "round %d: one signal woke A and B",
				     round);
			TU_CHECK_EQ(coev_mutex_lock(&r->m), 0);
			r->signals++;
			coev_cond_signal(&r->c);
			coev_mutex_unlock(&r->m);
			r->b_needed_second++;
		} else {
			r->a_gave_up++;
		}
		TU_CHECK_EQ(coev_join(r->ta, NULL), 0);
		TU_CHECK_EQ(coev_join(tb, NULL), 0);
		TU_CHECK_MSG(r->b.rc == 0, "round %d (A %d): B %d", round, ra,
			     r->b.rc);
		TU_CHECK_EQ(r->a.over, 0);
		TU_CHECK_EQ(r->b.over, 0);
		TU_CHECK_EQ(r->woken, r->signals);
		if (r->b.rc != 0)
			break;
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	coev_cond_destroy(&r->c);
	coev_mutex_destroy(&r->m);
	return 0;
}

static void test_cond_signal_races_cancel_and_timeout(void **state)
{
	crace_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(tu_run_main(crace_main, r, 2), 0);
	print_message("A woken %ld times, gave up %ld times\n", r->a_ok,
		      r->a_gave_up);
	tu_assert_no_failures();
	assert_int_equal(r->a_ok + r->a_gave_up, CRACE_ROUNDS);
	assert_true(r->a_ok > 0);
	assert_true(r->a_gave_up > 0);
	sem_destroy(&r->go);
	free(r);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_cond_t *c;
	coev_mutex_t *m;
	int lock_rc, dl_rc, wait_rc, still_held;
} cb_t;

static void cond_cb(void *arg)
{
	cb_t *x = arg;

	x->lock_rc = coev_mutex_trylock(x->m);
	if (x->lock_rc != 0)
		return;
	x->dl_rc = coev_cond_wait_dl(x->c, x->m, coev_deadline(COEV_SEC(1)));
	x->wait_rc = x->dl_rc == COEV_ENOTCORO ? coev_cond_wait(x->c, x->m) : 1;
	/* COEV_ENOTCORO: m was not released. */
	x->still_held = coev_mutex_trylock(x->m) == -EBUSY;
	coev_cond_signal(x->c); /* wakes the waiting task */
	coev_mutex_unlock(x->m);
}

static int cb_main(void *arg)
{
	coev_cond_t c;
	coev_mutex_t m;
	cb_t x = {.c = &c, .m = &m};
	cw_t w;
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_cond_init(&c), 0);
	TU_CHECK_EQ(coev_mutex_init(&m, 0), 0);
	w = (cw_t){.c = &c, .m = &m, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn(cond_waiter, &w, &t), 0);
	wait_queued(&w, &m);
	TU_CHECK_EQ(tu_on_loop(cond_cb, &x), 0);
	TU_CHECK_EQ(x.lock_rc, 0);
	TU_CHECK_EQ(x.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(x.wait_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(x.still_held, 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, 0);
	TU_CHECK_EQ(coev_mutex_trylock(&m), 0);
	coev_mutex_unlock(&m);
	coev_cond_destroy(&c);
	coev_mutex_destroy(&m);
	return 0;
}

static void test_cond_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(coev_cond_init(NULL), -EINVAL);
}

/* ---- misuse aborts ------------------------------------------------------ */

static void expect_abort(void (*fn)(void *), const char *what)
{
	tu_child_t *res = malloc(sizeof *res);

	assert_non_null(res);
	assert_int_equal(tu_run_in_child(fn, NULL, res), 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "cond");
	if (!ok) {
		fprintf(stderr, "%s:\n", what);
		tu_child_dump(res);
	}
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "cond"));
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

static coev_cond_t misuse_c;
static coev_mutex_t misuse_m;

static int wait_unlocked_main(void *arg)
{
	(void)arg;
	coev_cond_init(&misuse_c);
	coev_mutex_init(&misuse_m, 0);
	coev_cond_wait_dl(&misuse_c, &misuse_m, coev_deadline(COEV_MSEC(50)));
	fprintf(stderr, "cond wait without the mutex returned\n");
	return 0;
}

static void child_wait_without_mutex(void *arg)
{
	(void)arg;
	run_two_workers(wait_unlocked_main);
}

static void child_thread_wait_without_mutex(void *arg)
{
	(void)arg;
	coev_cond_init(&misuse_c);
	coev_mutex_init(&misuse_m, 0);
	coev_cond_wait_dl(&misuse_c, &misuse_m, coev_deadline(COEV_MSEC(50)));
	fprintf(stderr, "cond wait without the mutex returned\n");
}

static int hold_it(void *arg)
{
	(void)arg;
	coev_mutex_lock(&misuse_m);
	return 0; /* and keep it */
}

static int wait_others_mutex_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	coev_cond_init(&misuse_c);
	coev_mutex_init(&misuse_m, 0);
	coev_spawn(hold_it, NULL, &t);
	coev_join(t, NULL);
	coev_cond_wait_dl(&misuse_c, &misuse_m, coev_deadline(COEV_MSEC(50)));
	fprintf(stderr, "cond wait with another's mutex returned\n");
	return 0;
}

static void child_wait_with_others_mutex(void *arg)
{
	(void)arg;
	run_two_workers(wait_others_mutex_main);
}

static int destroy_waiter(void *arg)
{
	coev_mutex_lock(&misuse_m);
	atomic_store((atomic_int *)arg, 1);
	coev_cond_wait(&misuse_c, &misuse_m);
	coev_mutex_unlock(&misuse_m);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;

	(void)arg;
	coev_cond_init(&misuse_c);
	coev_mutex_init(&misuse_m, 0);
	coev_spawn(destroy_waiter, &arrived, NULL);
	tu_wait_at_least(&arrived, 1);
	coev_mutex_lock(&misuse_m); /* it is queued now */
	coev_mutex_unlock(&misuse_m);
	coev_cond_destroy(&misuse_c);
	fprintf(stderr, "destroy with a waiter returned\n");
	return 0;
}

static void child_destroy_with_waiter(void *arg)
{
	(void)arg;
	run_two_workers(destroy_main);
}

static void test_cond_wait_without_holding_mutex_aborts(void **state)
{
	(void)state;
	expect_abort(child_wait_without_mutex, "task, mutex not held");
	expect_abort(child_thread_wait_without_mutex, "thread, not held");
	expect_abort(child_wait_with_others_mutex, "another task's mutex");
}

static void test_cond_destroy_with_waiters_aborts(void **state)
{
	(void)state;
	expect_abort(child_destroy_with_waiter, "destroy with a waiter");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_cond_bounded_buffer_loses_nothing),
		TU_FD_TEST(test_cond_signal_wakes_the_longest_waiter),
		TU_FD_TEST(test_cond_broadcast_wakes_every_waiter),
		TU_FD_TEST(test_cond_deadline_and_cancel_return_holding_mutex),
		TU_FD_TEST(test_cond_wait_relocks_as_long_as_it_must),
		TU_FD_TEST(test_cond_signal_races_cancel_and_timeout),
		TU_FD_TEST(test_cond_from_loop_callback),
		TU_FD_TEST(test_cond_wait_without_holding_mutex_aborts),
		TU_FD_TEST(test_cond_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
