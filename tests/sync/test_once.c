/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_once.c — coev_once_t (include/coev/sync.h): the function
 * runs exactly once however many tasks (on every worker) and plain threads
 * ask at the same time, in the calling task, and everyone who returns 0
 * sees its effects; a failure is returned to the caller that ran it and
 * another caller retries; a runner cancelled in the middle fails and a
 * waiting caller takes over; deadlines and cancellation while waiting for
 * the runner (from a task, from a plain thread); calls from a loop
 * callback.
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

/* ---- exactly once, many callers ----------------------------------------- */

typedef struct init {
	coev_once_t once;
	atomic_int calls;
	long value;	     /* written by fn only; not atomic */
	coev_task_t *runner; /* the task fn ran in (NULL: a thread) */
	int fail_first;	     /* fail this many calls with -EIO */
	atomic_int in_fn;    /* runs of fn at once: never more than one */
	atomic_int overlaps;
	coev_event_t *gate; /* if not NULL: fn waits for it */
	int gate_rc;	    /* what the gate wait returned */
	unsigned spin_ns;   /* spin_fn: how long it takes */
} init_t;

static int init_fn(void *arg)
{
	init_t *in = arg;
	int n = atomic_fetch_add(&in->calls, 1);

	if (atomic_fetch_add(&in->in_fn, 1) != 0)
		atomic_fetch_add(&in->overlaps, 1);
	in->runner = coev_self();
	/* Take a while, so that the others come and wait. */
	if (in->gate) {
		in->gate_rc = coev_event_wait(in->gate);
		if (in->gate_rc != 0) {
			atomic_fetch_sub(&in->in_fn, 1);
			return in->gate_rc;
		}
	} else if (coev_self()) {
		for (int i = 0; i < 10; i++)
			coev_yield();
	} else {
		tu_nap_ms(0);
	}
	atomic_fetch_sub(&in->in_fn, 1);
	if (n < in->fail_first)
		return -EIO;
	in->value = 42;
	return n == in->fail_first ? 7 : 0; /* >= 0: success */
}

typedef struct caller {
	init_t *in;
	int rc;
	long seen;
	int done_seen;
	coev_task_t *self;
} caller_t;

static void caller_body(caller_t *c)
{
	c->self = coev_self();
	c->rc = c->self ? coev_once(&c->in->once, init_fn, c->in)
			: coev_once_dl(&c->in->once, init_fn, c->in,
				       tu_guard());
	if (c->rc == 0) {
		c->seen = c->in->value; /* fn's effects are visible */
		c->done_seen = coev_once_done(&c->in->once);
	}
}

static int caller_task(void *arg)
{
	caller_body(arg);
	return 0;
}

static void *caller_thread(void *arg)
{
	caller_body(arg);
	return NULL;
}

#define CALLERS 12
#define ONCE_ROUNDS TU_SCALE(5000, 1500, 800)

typedef struct rounds_cfg {
	int fail_first;
	long ok, failed;
} rounds_cfg_t;

static int rounds_main(void *arg)
{
	rounds_cfg_t *cfg = arg;

	for (int round = 0; round < ONCE_ROUNDS; round++) {
		init_t *in = calloc(1, sizeof *in);
		caller_t c[CALLERS + 1];
		coev_task_t *t[CALLERS];
		pthread_t th;
		int with_thread = round % 10 == 0;
		int ok = 0, failed = 0;

		TU_CHECK(in != NULL);
		in->fail_first = cfg->fail_first;
		/* calloc'ed: COEV_ONCE_INIT. */
		for (int i = 0; i <= CALLERS; i++)
			c[i] = (caller_t){.in = in, .seen = -1};
		for (int i = 0; i < CALLERS; i++)
			TU_CHECK_EQ(coev_spawn(caller_task, &c[i], &t[i]), 0);
		if (with_thread)
			TU_CHECK_EQ(pthread_create(&th, NULL, caller_thread,
						   &c[CALLERS]),
				    0);
		for (int i = 0; i < CALLERS; i++)
			TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		if (with_thread)
			pthread_join(th, NULL); /* after the tasks */
		for (int i = 0; i < CALLERS + with_thread; i++) {
			if (c[i].rc == 0) {
				ok++;
				TU_CHECK_EQ(c[i].seen, 42);
				TU_CHECK_EQ(c[i].done_seen, 1);
			} else {
				failed++;
				TU_CHECK_MSG(c[i].rc == -EIO,
					     "round %d caller %d: %d", round, i,
					     c[i].rc);
			}
		}
		TU_CHECK_EQ(atomic_load(&in->overlaps), 0);
		TU_CHECK_EQ(coev_once_done(&in->once), 1);
		/* Every failure was one run of fn, returned to its runner;
		 * then one run succeeded. */
		TU_CHECK_EQ(failed, cfg->fail_first);
		TU_CHECK_EQ(atomic_load(&in->calls), cfg->fail_first + 1);
		/* Done: later calls return 0 without running fn. */
		TU_CHECK_EQ(coev_once(&in->once, init_fn, in), 0);
		TU_CHECK_EQ(coev_once_dl(&in->once, init_fn, in, 0), 0);
		TU_CHECK_EQ(atomic_load(&in->calls), cfg->fail_first + 1);
		cfg->ok += ok;
		cfg->failed += failed;
		free(in);
	}
	return 0;
}

static void test_once_runs_exactly_once_with_many_callers(void **state)
{
	rounds_cfg_t cfg = {.fail_first = 0};

	(void)state;
	assert_int_equal(tu_run_main(rounds_main, &cfg, 2), 0);
	assert_int_equal(tu_run_main(rounds_main, &cfg, 4), 0);
	tu_assert_no_failures();
}

static void test_once_retry_after_failure(void **state)
{
	rounds_cfg_t cfg = {.fail_first = 3};

	(void)state;
	assert_int_equal(tu_run_main(rounds_main, &cfg, 2), 0);
	print_message("%ld calls returned 0, %ld returned the failure\n",
		      cfg.ok, cfg.failed);
	tu_assert_no_failures();
}

/* One caller at a time: a failure leaves it not done; the next call runs
 * fn again; a positive result counts as success. */
static void test_once_sequential_failure_then_success(void **state)
{
	init_t in = {.fail_first = 2};

	(void)state;
	assert_int_equal(coev_once_done(&in.once), 0);
	assert_int_equal(coev_once(&in.once, init_fn, &in), -EIO);
	assert_int_equal(coev_once_done(&in.once), 0);
	assert_int_equal(coev_once(&in.once, init_fn, &in), -EIO);
	assert_int_equal(coev_once(&in.once, init_fn, &in), 0); /* fn: 7 */
	assert_int_equal(coev_once_done(&in.once), 1);
	assert_int_equal(in.value, 42);
	assert_int_equal(coev_once(&in.once, init_fn, &in), 0);
	assert_int_equal(atomic_load(&in.calls), 3);
	assert_null(in.runner); /* ran in this plain thread */
}

/* fn runs in the calling task. */
static int runs_in_caller_main(void *arg)
{
	init_t *in = arg;

	TU_CHECK_EQ(coev_once(&in->once, init_fn, in), 0);
	TU_CHECK(in->runner == coev_self());
	return 0;
}

static void test_once_runs_in_the_calling_task(void **state)
{
	init_t in = {.fail_first = 0};

	(void)state;
	assert_int_equal(tu_run_main(runs_in_caller_main, &in, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&in.calls), 1);
}

/* ---- waiting for the runner: deadlines, cancellation, takeover ---------- */

typedef struct ow {
	init_t *in;
	coev_time_t deadline; /* COEV_FOREVER: coev_once */
	coev_time_t push;
	int precancel, shield;
	atomic_int arrived, finished;
	int rc;
	coev_time_t ended;
} ow_t;

static int once_waiter(void *arg)
{
	ow_t *w = arg;
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_once(&w->in->once, init_fn, w->in)
			: coev_once_dl(&w->in->once, init_fn, w->in,
				       w->deadline);
	w->ended = coev_now();
	if (tok >= 0)
		coev_deadline_pop(tok);
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return w->rc;
}

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

static int giveup_main(void *arg)
{
	coev_event_t gate;
	init_t in = {.gate = &gate};
	ow_t runner = {.in = &in, .deadline = COEV_FOREVER};
	ow_t w[8];
	coev_task_t *tr, *t[8], *c;
	pthread_t th;
	void *crc;

	(void)arg;
	TU_CHECK_EQ(coev_event_init(&gate), 0);
	TU_CHECK_EQ(coev_spawn_named("runner", once_waiter, &runner, &tr), 0);
	/* The runner is in fn, at the gate. */
	parked(tr, COEV_WAIT_EVENT, &gate);
	TU_CHECK_EQ(atomic_load(&in.calls), 1);
	for (int i = 0; i < 8; i++)
		w[i] = (ow_t){.in = &in, .deadline = COEV_FOREVER};
	w[0].deadline = coev_now() + COEV_MSEC(30);
	w[1].push = coev_now() + COEV_MSEC(30);
	w[2].deadline = coev_now() - 1; /* only tries */
	w[3].precancel = 1;
	w[4].precancel = 1;
	w[4].shield = 1;
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_spawn(once_waiter, &w[i], &t[i]), 0);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	TU_CHECK_EQ(w[0].rc, -ETIMEDOUT);
	TU_CHECK(w[0].ended >= w[0].deadline);
	TU_CHECK_EQ(w[1].rc, -ETIMEDOUT);
	TU_CHECK(w[1].ended >= w[1].push);
	TU_CHECK_EQ(w[2].rc, -ETIMEDOUT);
	TU_CHECK_EQ(w[3].rc, -ECANCELED);
	for (int i = 4; i < 8; i++) {
		TU_CHECK_EQ(coev_spawn(once_waiter, &w[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_EVENT, &in.once);
	}
	TU_CHECK_EQ(coev_cancel(t[5]), 0);
	TU_CHECK_EQ(coev_spawn(cancel_it, t[6], &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, thread_cancel, t[7]), 0);
	pthread_join(th, &crc);
	TU_CHECK_EQ((intptr_t)crc, 0);
	for (int i = 5; i < 8; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, -ECANCELED);
	}
	/* Nobody ran fn but the runner, and it still runs. */
	TU_CHECK_EQ(atomic_load(&in.calls), 1);
	TU_CHECK_EQ(coev_once_done(&in.once), 0);
	TU_CHECK_EQ(atomic_load(&w[4].finished), 0);
	coev_event_set(&gate);
	TU_CHECK_EQ(coev_join(tr, NULL), 0);
	TU_CHECK_EQ(coev_join(t[4], NULL), 0);
	TU_CHECK_EQ(runner.rc, 0);
	TU_CHECK_EQ(w[4].rc, 0);
	TU_CHECK_EQ(atomic_load(&in.calls), 1);
	TU_CHECK_EQ(coev_once_done(&in.once), 1);
	coev_event_destroy(&gate);
	return 0;
}

static void test_once_deadline_and_cancel_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* The runner is cancelled inside fn: fn fails with -ECANCELED, which its
 * caller gets; a caller that was waiting runs fn itself and succeeds. */
static int takeover_main(void *arg)
{
	coev_event_t gate;
	init_t in = {.gate = &gate};
	ow_t runner = {.in = &in, .deadline = COEV_FOREVER};
	ow_t w1 = {.in = &in, .deadline = COEV_FOREVER};
	ow_t w2 = {.in = &in, .deadline = tu_guard()};
	coev_task_t *tr, *t1, *t2;

	(void)arg;
	TU_CHECK_EQ(coev_event_init(&gate), 0);
	TU_CHECK_EQ(coev_spawn_named("runner", once_waiter, &runner, &tr), 0);
	parked(tr, COEV_WAIT_EVENT, &gate);
	TU_CHECK_EQ(coev_spawn_named("w1", once_waiter, &w1, &t1), 0);
	parked(t1, COEV_WAIT_EVENT, &in.once);
	TU_CHECK_EQ(coev_spawn_named("w2", once_waiter, &w2, &t2), 0);
	parked(t2, COEV_WAIT_EVENT, &in.once);
	TU_CHECK_EQ(coev_cancel(tr), 0);
	TU_CHECK_EQ(coev_join(tr, NULL), 0);
	TU_CHECK_EQ(runner.rc, -ECANCELED);
	TU_CHECK_EQ(in.gate_rc, -ECANCELED);
	/* One of the waiters took over and now waits at the gate itself. */
	TU_CHECK_EQ(tu_wait_at_least(&in.calls, 2), 0);
	coev_sleep(SETTLE);
	TU_CHECK_EQ(atomic_load(&in.calls), 2);
	TU_CHECK_EQ(coev_once_done(&in.once), 0);
	coev_event_set(&gate);
	TU_CHECK_EQ(coev_join(t1, NULL), 0);
	TU_CHECK_EQ(coev_join(t2, NULL), 0);
	TU_CHECK_EQ(w1.rc, 0);
	TU_CHECK_EQ(w2.rc, 0);
	TU_CHECK(in.runner == t1 || in.runner == t2);
	TU_CHECK_EQ(atomic_load(&in.calls), 2);
	TU_CHECK_EQ(in.value, 42);
	coev_event_destroy(&gate);
	return 0;
}

static void test_once_cancelled_runner_a_waiter_takes_over(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(takeover_main, NULL, 2), 0);
	assert_int_equal(tu_run_main(takeover_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* A plain thread waits for a task's run (and gives up with a deadline). */
typedef struct thr_once {
	init_t *in;
	coev_time_t timeout; /* 0: coev_once */
	atomic_int arrived;
	int rc;
	tu_thread_at_t at;
} thr_once_t;

static void *thread_once(void *arg)
{
	thr_once_t *a = arg;

	TU_THREAD_AT(&a->at);
	atomic_store(&a->arrived, 1);
	a->rc = a->timeout ? coev_once_dl(&a->in->once, init_fn, a->in,
					  coev_now() + a->timeout)
			   : coev_once(&a->in->once, init_fn, a->in);
	return NULL;
}

static void test_once_plain_thread_waits_for_a_task(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_event_t gate;
	init_t in = {.gate = &gate};
	ow_t runner = {.in = &in, .deadline = COEV_FOREVER};
	thr_once_t a = {.in = &in, .timeout = COEV_MSEC(30)};
	thr_once_t b = {.in = &in};
	coev_task_t *tr;
	pthread_t ta, tb;

	(void)state;
	assert_int_equal(coev_event_init(&gate), 0);
	assert_int_equal(coev_rt_spawn(rt, "runner", once_waiter, &runner, &tr),
			 0);
	assert_int_equal(tu_thread_wait_at_least(&in.calls, 1), 0);
	assert_int_equal(pthread_create(&ta, NULL, thread_once, &a), 0);
	pthread_join(ta, NULL);
	assert_int_equal(a.rc, -ETIMEDOUT);
	assert_int_equal(pthread_create(&tb, NULL, thread_once, &b), 0);
	assert_int_equal(tu_thread_wait_at_least(&b.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&b.at), 0);
	coev_event_set(&gate); /* from this plain thread */
	pthread_join(tb, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(coev_join(tr, NULL), 0);
	assert_int_equal(runner.rc, 0);
	assert_int_equal(atomic_load(&in.calls), 1);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_event_destroy(&gate);
	tu_assert_no_failures();
}

/* ---- a give-up racing the completion ------------------------------------ */

/*
 * Each round: R and W call coev_once on a fresh object at about the same
 * time; whichever comes first runs fn (which takes a little while), the
 * other waits, with a deadline near fn's end or cancelled by a plain thread
 * about then. fn runs exactly once; a caller that returns 0 sees fn's
 * effects; one that gave up got -ETIMEDOUT or -ECANCELED and fn still
 * completed for the other.
 */
typedef struct orace {
	init_t in;
	ow_t r, w;
	coev_task_t *tw;
	sem_t go;
	atomic_int gone, quit;
	unsigned cancel_spin;
	long w_ok, w_gave_up;
} orace_t;

static int spin_fn(void *arg)
{
	init_t *in = arg;

	atomic_fetch_add(&in->calls, 1);
	tu_spin_ns((coev_time_t)in->spin_ns);
	in->value = 42;
	return 0;
}

static int orace_caller(void *arg)
{
	ow_t *w = arg;

	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_once(&w->in->once, spin_fn, w->in)
			: coev_once_dl(&w->in->once, spin_fn, w->in,
				       w->deadline);
	if (w->rc == 0 && w->in->value != 42)
		w->rc = 12345; /* returned 0 without fn's effects */
	atomic_store(&w->finished, 1);
	return w->rc;
}

static void *orace_canceller(void *arg)
{
	orace_t *o = arg;

	for (;;) {
		while (sem_wait(&o->go) != 0) {
		}
		if (atomic_load(&o->quit))
			return NULL;
		tu_spin_ns(o->cancel_spin);
		TU_CHECK_EQ(coev_cancel(o->tw), 0);
		atomic_fetch_add(&o->gone, 1);
	}
}

#define ORACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int orace_main(void *arg)
{
	orace_t *o = arg;
	unsigned seed = 0x6a09e667u;
	pthread_t th;
	int sent = 0;

	TU_CHECK_EQ(pthread_create(&th, NULL, orace_canceller, o), 0);
	for (int round = 0; round < ORACE_ROUNDS; round++) {
		unsigned v = seed = seed * 1664525u + 1013904223u;
		int by_cancel = round % 2;
		coev_task_t *tr;
		int rr = 0, rw = 0;

		memset(&o->in, 0, sizeof o->in);
		o->in.spin_ns = (v >> 8) % 30000;
		o->r = (ow_t){.in = &o->in, .deadline = tu_guard()};
		o->w = (ow_t){.in = &o->in, .deadline = COEV_FOREVER};
		if (!by_cancel)
			o->w.deadline = coev_now() + (coev_time_t)(v % 40000);
		TU_CHECK_EQ(coev_spawn(orace_caller, &o->r, &tr), 0);
		TU_CHECK_EQ(coev_spawn(orace_caller, &o->w, &o->tw), 0);
		if (by_cancel) {
			o->cancel_spin = (v >> 12) % 30000;
			sent++;
			sem_post(&o->go);
			TU_CHECK_EQ(spin_until(&o->gone, sent), 0);
		}
		TU_CHECK_EQ(coev_join(tr, &rr), 0);
		TU_CHECK_EQ(coev_join(o->tw, &rw), 0);
		int want = by_cancel ? -ECANCELED : -ETIMEDOUT;
		TU_CHECK_MSG(rr == 0 || rr == want, "round %d: R %d", round,
			     rr);
		TU_CHECK_MSG(rw == 0 || rw == want, "round %d: W %d", round,
			     rw);
		/* Whoever ran fn succeeded: the object is done. */
		TU_CHECK_EQ(atomic_load(&o->in.calls), 1);
		TU_CHECK_EQ(coev_once_done(&o->in.once), 1);
		TU_CHECK(rr == 0 || rw == 0);
		o->w_ok += rw == 0;
		o->w_gave_up += rw != 0;
	}
	atomic_store(&o->quit, 1);
	sem_post(&o->go);
	pthread_join(th, NULL);
	return 0;
}

static void test_once_give_up_races_completion(void **state)
{
	orace_t *o = calloc(1, sizeof *o);

	(void)state;
	assert_non_null(o);
	assert_int_equal(sem_init(&o->go, 0, 0), 0);
	assert_int_equal(tu_run_main(orace_main, o, 2), 0);
	print_message("W returned 0 %ld times, gave up %ld times\n", o->w_ok,
		      o->w_gave_up);
	tu_assert_no_failures();
	assert_true(o->w_ok > 0);
	assert_true(o->w_gave_up > 0);
	sem_destroy(&o->go);
	free(o);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	init_t *in;
	int dl_rc, rc, done;
} cb_t;

static void once_cb(void *arg)
{
	cb_t *c = arg;

	c->done = coev_once_done(&c->in->once);
	c->dl_rc = coev_once_dl(&c->in->once, init_fn, c->in,
				coev_deadline(COEV_SEC(1)));
	c->rc = c->dl_rc == COEV_ENOTCORO
			? coev_once(&c->in->once, init_fn, c->in)
			: 1;
}

static void once_done_cb(void *arg)
{
	cb_t *c = arg;

	c->done = coev_once_done(&c->in->once);
	c->rc = coev_once(&c->in->once, init_fn, c->in);
}

static int cb_main(void *arg)
{
	coev_event_t gate;
	init_t in = {.gate = &gate};
	ow_t runner = {.in = &in, .deadline = COEV_FOREVER};
	cb_t c = {.in = &in};
	coev_task_t *tr;

	(void)arg;
	TU_CHECK_EQ(coev_event_init(&gate), 0);
	TU_CHECK_EQ(coev_spawn_named("runner", once_waiter, &runner, &tr), 0);
	parked(tr, COEV_WAIT_EVENT, &gate);
	/* fn runs: the callback would have to wait. */
	TU_CHECK_EQ(tu_on_loop(once_cb, &c), 0);
	TU_CHECK_EQ(c.done, 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.rc, COEV_ENOTCORO);
	coev_event_set(&gate);
	TU_CHECK_EQ(coev_join(tr, NULL), 0);
	TU_CHECK_EQ(runner.rc, 0);
	/* Done: no wait needed, fn does not run again. */
	c = (cb_t){.in = &in, .rc = 1};
	TU_CHECK_EQ(tu_on_loop(once_done_cb, &c), 0);
	TU_CHECK_EQ(c.done, 1);
	TU_CHECK_EQ(c.rc, 0);
	TU_CHECK_EQ(atomic_load(&in.calls), 1);
	coev_event_destroy(&gate);
	return 0;
}

static void test_once_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_once_runs_exactly_once_with_many_callers),
		TU_FD_TEST(test_once_retry_after_failure),
		TU_FD_TEST(test_once_sequential_failure_then_success),
		TU_FD_TEST(test_once_runs_in_the_calling_task),
		TU_FD_TEST(test_once_deadline_and_cancel_while_waiting),
		TU_FD_TEST(test_once_cancelled_runner_a_waiter_takes_over),
		TU_FD_TEST(test_once_plain_thread_waits_for_a_task),
		TU_FD_TEST(test_once_give_up_races_completion),
		TU_FD_TEST(test_once_from_loop_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
