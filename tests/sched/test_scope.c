/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_scope.c — task scopes, wait-any and as-completed order
 * (include/coev/scope.h): close waits for every child and returns the
 * first error, FAIL_FAST, cancelling a scope from a task and from a plain
 * thread, nesting, spawning into a cancelled scope, close with a deadline,
 * the owner cancelled in close, thousands of children on two workers, and
 * coev_wait_any.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <pthread.h>

/* ---- helpers ------------------------------------------------------------ */

#define LONG_WAIT COEV_SEC(60)
#define PROMPT COEV_SEC(5)

static int thread_wait_at_least(atomic_int *v, int n)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(v) < n) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		tu_nap_ms(1);
	}
	return 0;
}

/*
 * A child: counts its start, sleeps (sleep_ms > 0; < 0 for a long wait
 * only a cancel ends; 0 not at all), on a cancel optionally cleans up
 * under a shield, counts its end, and returns `result`, or the sleep's
 * error.
 */
typedef struct kid {
	int sleep_ms;
	int result;
	int cleanup_ms;
	int cancel_result; /* if not 0: returned after a cancelled sleep */
	atomic_int *started;
	atomic_int *ended;
	int sleep_rc; /* the sleep's result */
	atomic_int ran;
	atomic_int *hold; /* if set: after a cancelled sleep, shielded, until
			   * *hold is set (keeps the scope open) */
} kid_t;

static int kid(void *arg)
{
	kid_t *k = arg;

	atomic_store(&k->ran, 1);
	if (k->started)
		atomic_fetch_add(k->started, 1);
	k->sleep_rc = 0;
	if (k->sleep_ms != 0)
		k->sleep_rc = coev_sleep(
			k->sleep_ms < 0 ? LONG_WAIT : COEV_MSEC(k->sleep_ms));
	if (k->sleep_rc != 0 && k->cleanup_ms > 0) {
		coev_shield_begin();
		coev_sleep(COEV_MSEC(k->cleanup_ms));
		coev_shield_end();
	}
	if (k->sleep_rc != 0 && k->hold) {
		coev_shield_begin();
		TU_CHECK_EQ(tu_wait_at_least(k->hold, 1), 0);
		coev_shield_end();
	}
	if (k->ended)
		atomic_fetch_add(k->ended, 1);
	if (k->sleep_rc != 0 && k->cancel_result != 0)
		return k->cancel_result;
	return k->sleep_rc != 0 ? k->sleep_rc : k->result;
}

/* n kids sharing counters, with the given sleep and result. */
static kid_t *kids_new(int n, int sleep_ms, int result, atomic_int *started,
		       atomic_int *ended)
{
	kid_t *k = calloc((size_t)n, sizeof *k);

	for (int i = 0; k && i < n; i++) {
		k[i].sleep_ms = sleep_ms;
		k[i].result = result;
		k[i].started = started;
		k[i].ended = ended;
	}
	return k;
}

static int spawn_kids(coev_scope_t *s, kid_t *k, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = coev_scope_spawn(s, "kid", kid, &k[i]);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "scope_spawn %d: %s", i,
				     coev_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* Every kid's sleep ended with want. */
static void check_sleeps(kid_t *k, int n, int want, const char *what)
{
	int bad = 0;

	for (int i = 0; i < n; i++)
		if (k[i].sleep_rc != want && bad++ < 3)
			TU_CHECK_MSG(0, "%s kid %d: sleep returned %d, want %d",
				     what, i, k[i].sleep_rc, want);
}

/* ---- close waits, close returns the first error ------------------------- */

#define WAITED 200

static int close_waits_main(void *arg)
{
	atomic_int ended = 0;
	coev_scope_t *s = NULL;
	kid_t *k = kids_new(WAITED, 0, 1, NULL, &ended);

	(void)arg;
	for (int i = 0; i < WAITED; i++)
		k[i].sleep_ms = 1 + i % 20;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK(s != NULL);
	TU_CHECK_EQ(spawn_kids(s, k, WAITED), 0);
	TU_CHECK(coev_scope_live(s) <= WAITED);
	/* Positive results are not errors. */
	TU_CHECK_EQ(coev_scope_close(s), 0);
	TU_CHECK_EQ(atomic_load(&ended), WAITED);
	check_sleeps(k, WAITED, 0, "waited");
	free(k);
	return 0;
}

static void test_scope_close_waits_for_every_child(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(close_waits_main, NULL, 2), 0);
	assert_int_equal(tu_run_main(close_waits_main, NULL, 1), 0);
	tu_assert_no_failures();
}

static int first_error_main(void *arg)
{
	atomic_int ended = 0;
	coev_scope_t *s;
	kid_t k[4] = {
		{.sleep_ms = 60, .result = -EPERM, .ended = &ended},
		{.sleep_ms = 10, .result = -EIO, .ended = &ended},
		{.sleep_ms = 90, .result = 3, .ended = &ended},
		{.sleep_ms = 30, .result = -ENOSPC, .ended = &ended},
	};

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, 4), 0);
	/* The first failure in time, not in spawn order. */
	TU_CHECK_EQ(coev_scope_close(s), -EIO);
	TU_CHECK_EQ(atomic_load(&ended), 4);
	check_sleeps(k, 4, 0, "first-error");
	return 0;
}

static void test_scope_close_returns_first_error(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(first_error_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- FAIL_FAST ---------------------------------------------------------- */

#define SIBLINGS 6

static int fail_fast_main(void *arg)
{
	atomic_int started = 0, ended = 0;
	coev_scope_t *s;
	kid_t *k = kids_new(SIBLINGS, -1, 0, &started, &ended);
	kid_t bad = {.sleep_ms = 20, .result = -EIO, .ended = &ended};
	kid_t late = {
		.sleep_ms = -1, .result = 0, .ended = &ended, .cleanup_ms = 10};

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(COEV_SCOPE_FAIL_FAST, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, "late", kid, &late), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, "bad", kid, &bad), 0);
	coev_time_t t0 = coev_now();
	/* The failure, not the siblings' -ECANCELED that followed it. */
	TU_CHECK_EQ(coev_scope_close(s), -EIO);
	coev_time_t took = coev_now() - t0;
	TU_CHECK_MSG(took < PROMPT, "close took %lld ns", (long long)took);
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS + 2);
	check_sleeps(k, SIBLINGS, -ECANCELED, "fail-fast");
	TU_CHECK_EQ(late.sleep_rc, -ECANCELED);
	free(k);
	return 0;
}

static void test_scope_fail_fast_cancels_siblings(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(fail_fast_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int no_fail_fast_main(void *arg)
{
	atomic_int ended = 0;
	coev_scope_t *s;
	kid_t *k = kids_new(SIBLINGS, 50, 0, NULL, &ended);
	kid_t bad = {.sleep_ms = 0, .result = -EIO, .ended = &ended};

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, "bad", kid, &bad), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_scope_close(s), -EIO);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(40));
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS + 1);
	/* Nobody was cancelled: every sibling slept its full time. */
	check_sleeps(k, SIBLINGS, 0, "no-fail-fast");
	free(k);
	return 0;
}

static void test_scope_without_fail_fast_siblings_complete(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(no_fail_fast_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- coev_scope_cancel from a task, from a thread ----------------------- */

typedef struct canceller {
	coev_scope_t *s;
	coev_task_t *owner; /* s's */
	atomic_int *started;
	int want_started;
	int cancel_rc, spawn_rc;
	kid_t never;
	atomic_int spawned; /* the spawn into s was tried */
} canceller_t;

static int scope_canceller(void *arg)
{
	canceller_t *c = arg;

	TU_CHECK_EQ(tu_wait_at_least(c->started, c->want_started), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, c->owner, COEV_WAIT_SCOPE, c->s), 0);
	c->cancel_rc = coev_scope_cancel(c->s);
	/* s is still open (its owner is in close, a child holds on until
	 * we are done) but cancelled. */
	c->spawn_rc = coev_scope_spawn(c->s, "never", kid, &c->never);
	atomic_store(&c->spawned, 1);
	return 0;
}

static int cancel_task_main(void *arg)
{
	atomic_int started = 0, ended = 0;
	coev_scope_t *s;
	coev_task_t *ct;
	kid_t *k = kids_new(SIBLINGS, -1, 0, &started, &ended);

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	canceller_t c = {.s = s,
			 .owner = coev_self(),
			 .started = &started,
			 .want_started = SIBLINGS};
	k[0].hold = &c.spawned;
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	/* The canceller is not in the scope. */
	TU_CHECK_EQ(coev_spawn_named("canceller", scope_canceller, &c, &ct), 0);
	coev_time_t t0 = coev_now();
	/* The children's -ECANCELED is the first negative result. */
	TU_CHECK_EQ(coev_scope_close(s), -ECANCELED);
	TU_CHECK(coev_now() - t0 < PROMPT + COEV_MSEC(20));
	TU_CHECK_EQ(coev_join(ct, NULL), 0);
	TU_CHECK_EQ(c.cancel_rc, 0);
	TU_CHECK_EQ(c.spawn_rc, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&c.never.ran), 0);
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS);
	check_sleeps(k, SIBLINGS, -ECANCELED, "cancelled");
	/* Cancelling the scope did not cancel its owner. */
	TU_CHECK_EQ(coev_cancelled(), 0);
	TU_CHECK_EQ(coev_sleep(COEV_MSEC(1)), 0);
	TU_CHECK_EQ(coev_scope_cancel(NULL), -EINVAL);
	free(k);
	return 0;
}

static void test_scope_cancel_from_another_task(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cancel_task_main, NULL, 2), 0);
	tu_assert_no_failures();
}

typedef struct owner {
	_Atomic(coev_scope_t *) scope;
	atomic_int started, ended;
	atomic_int in_close;
	kid_t *k;
	int n;
	int close_rc;
	int pre_close_sleep;   /* sleep before close (rule 4) */
	int kid_cancel_result; /* what the children return when cancelled */
	int pre_rc;
} owner_t;

static int scope_owner(void *arg)
{
	owner_t *o = arg;
	coev_scope_t *s;

	o->k = kids_new(o->n, -1, 0, &o->started, &o->ended);
	for (int i = 0; i < o->n; i++)
		o->k[i].cancel_result = o->kid_cancel_result;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, o->k, o->n), 0);
	atomic_store(&o->scope, s);
	if (o->pre_close_sleep)
		o->pre_rc = coev_sleep(LONG_WAIT);
	atomic_store(&o->in_close, 1);
	o->close_rc = coev_scope_close(s);
	return o->close_rc;
}

static void *thread_cancel_scope(void *arg)
{
	owner_t *o = arg;

	return (void *)(intptr_t)coev_scope_cancel(atomic_load(&o->scope));
}

static void test_scope_cancel_from_foreign_thread(void **state)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt;
	coev_task_t *t;
	owner_t o = {.n = SIBLINGS};
	pthread_t th;
	void *rc = (void *)1;
	int r = 1;

	(void)state;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, "owner", scope_owner, &o, &t), 0);
	assert_int_equal(thread_wait_at_least(&o.started, SIBLINGS), 0);
	assert_int_equal(thread_wait_at_least(&o.in_close, 1), 0);
	/* The owner waits in close for its children, which sleep. */
	assert_int_equal(
		tu_wait_parked(rt, t, COEV_WAIT_SCOPE, atomic_load(&o.scope)),
		0);
	assert_int_equal(tu_wait_parked_n(rt, COEV_WAIT_TIMER, NULL, SIBLINGS),
			 0);
	coev_time_t t0 = coev_now();
	assert_int_equal(pthread_create(&th, NULL, thread_cancel_scope, &o), 0);
	pthread_join(th, &rc);
	assert_int_equal(coev_join(t, &r), 0);
	coev_time_t took = coev_now() - t0;
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal((intptr_t)rc, 0);
	assert_int_equal(r, -ECANCELED);
	assert_int_equal(atomic_load(&o.ended), SIBLINGS);
	for (int i = 0; i < SIBLINGS; i++)
		assert_int_equal(o.k[i].sleep_rc, -ECANCELED);
	assert_true(took < PROMPT);
	free(o.k);
}

/* ---- nested scopes ------------------------------------------------------ */

#define GRANDKIDS 3

typedef struct nest {
	coev_scope_t *outer;
	atomic_int started, ended;
	kid_t grand[GRANDKIDS];
	kid_t pkids[GRANDKIDS];
	int inner_close_rc;
	int p_close_rc;
} nest_t;

/* A child of the outer scope that opens its own scope. */
static int nest_child(void *arg)
{
	nest_t *n = arg;
	coev_scope_t *inner;

	TU_CHECK_EQ(coev_scope_open(0, &inner), 0);
	TU_CHECK_EQ(spawn_kids(inner, n->grand, GRANDKIDS), 0);
	n->inner_close_rc = coev_scope_close(inner);
	return n->inner_close_rc;
}

static int nest_canceller(void *arg)
{
	nest_t *n = arg;

	TU_CHECK_EQ(tu_wait_at_least(&n->started, 2 * GRANDKIDS), 0);
	/* The owner waits in p's close and the child in its inner close,
	 * over sleeping grandchildren. */
	TU_CHECK_EQ(tu_wait_parked_n(NULL, COEV_WAIT_SCOPE, NULL, 2), 0);
	TU_CHECK_EQ(
		tu_wait_parked_n(NULL, COEV_WAIT_TIMER, NULL, 2 * GRANDKIDS),
		0);
	TU_CHECK_EQ(coev_scope_cancel(n->outer), 0);
	return 0;
}

static int nested_main(void *arg)
{
	nest_t *n = calloc(1, sizeof *n);
	coev_scope_t *p;
	coev_task_t *ct;

	(void)arg;
	for (int i = 0; i < GRANDKIDS; i++) {
		n->grand[i] = (kid_t){.sleep_ms = -1,
				      .started = &n->started,
				      .ended = &n->ended};
		n->pkids[i] = n->grand[i];
	}
	TU_CHECK_EQ(coev_scope_open(0, &n->outer), 0);
	/* Grandchildren: in a scope opened by a child of the outer scope. */
	TU_CHECK_EQ(coev_scope_spawn(n->outer, "child", nest_child, n), 0);
	/* And a scope the owner opens while it holds the outer one open. */
	TU_CHECK_EQ(coev_scope_open(0, &p), 0);
	TU_CHECK_EQ(spawn_kids(p, n->pkids, GRANDKIDS), 0);
	TU_CHECK_EQ(coev_spawn_named("canceller", nest_canceller, n, &ct), 0);
	coev_time_t t0 = coev_now();
	n->p_close_rc = coev_scope_close(p);
	int outer_rc = coev_scope_close(n->outer);
	coev_time_t took = coev_now() - t0;
	TU_CHECK_EQ(coev_join(ct, NULL), 0);
	TU_CHECK_MSG(took < PROMPT, "took %lld ns", (long long)took);
	TU_CHECK_EQ(atomic_load(&n->ended), 2 * GRANDKIDS);
	check_sleeps(n->grand, GRANDKIDS, -ECANCELED, "grandchild");
	check_sleeps(n->pkids, GRANDKIDS, -ECANCELED, "nested");
	TU_CHECK_EQ(n->inner_close_rc, -ECANCELED);
	TU_CHECK_EQ(n->p_close_rc, -ECANCELED);
	TU_CHECK_EQ(outer_rc, -ECANCELED);
	free(n);
	return 0;
}

static void test_scope_nested_cancel_reaches_grandchildren(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(nested_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- spawning into a cancelled scope ------------------------------------ */

typedef struct late_open {
	atomic_int started;
	int sleep_rc, open_rc, spawn_rc, close_rc;
	kid_t never;
} late_open_t;

/* A child of a scope that gets cancelled: it then opens a scope, which
 * starts cancelled. */
static int late_opener(void *arg)
{
	late_open_t *l = arg;
	coev_scope_t *j;

	atomic_store(&l->started, 1);
	l->sleep_rc = coev_sleep(LONG_WAIT);
	l->open_rc = coev_scope_open(0, &j);
	if (l->open_rc != 0)
		return l->open_rc;
	l->spawn_rc = coev_scope_spawn(j, "never", kid, &l->never);
	l->close_rc = coev_scope_close(j);
	return -ECANCELED;
}

static int spawn_cancelled_main(void *arg)
{
	coev_scope_t *s, *inner;
	kid_t never = {0}, never2 = {0};
	late_open_t l = {0};

	(void)arg;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, "late-opener", late_opener, &l), 0);
	TU_CHECK_EQ(tu_wait_at_least(&l.started, 1), 0);
	TU_CHECK_EQ(coev_scope_cancel(s), 0);
	TU_CHECK_EQ(coev_scope_cancel(s), 0); /* twice is harmless */
	TU_CHECK_EQ(coev_scope_spawn(s, "never", kid, &never), -ECANCELED);
	/* A scope opened under a cancelled scope starts cancelled. */
	TU_CHECK_EQ(coev_scope_open(0, &inner), 0);
	TU_CHECK_EQ(coev_scope_spawn(inner, "never", kid, &never2), -ECANCELED);
	TU_CHECK_EQ(coev_scope_live(inner), 0);
	/* Nothing ran in it, so nothing failed. */
	TU_CHECK_EQ(coev_scope_close(inner), 0);
	TU_CHECK_EQ(coev_scope_close(s), -ECANCELED);
	TU_CHECK_EQ(l.sleep_rc, -ECANCELED);
	TU_CHECK_EQ(l.open_rc, 0);
	TU_CHECK_EQ(l.spawn_rc, -ECANCELED);
	TU_CHECK_EQ(l.close_rc, 0);
	coev_sleep(COEV_MSEC(10)); /* a negative check: time to run wrongly */
	TU_CHECK_EQ(atomic_load(&never.ran), 0);
	TU_CHECK_EQ(atomic_load(&never2.ran), 0);
	TU_CHECK_EQ(atomic_load(&l.never.ran), 0);
	/* Bad input. */
	TU_CHECK_EQ(coev_scope_open(0, NULL), -EINVAL);
	TU_CHECK_EQ(coev_scope_open(0x80u, &s), -EINVAL);
	TU_CHECK_EQ(coev_scope_spawn(NULL, NULL, kid, &never), -EINVAL);
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, NULL, NULL, &never), -EINVAL);
	TU_CHECK_EQ(coev_scope_close(s), 0);
	return 0;
}

static void test_scope_spawn_into_cancelled_scope(void **state)
{
	coev_scope_t *s = NULL;

	(void)state;
	assert_int_equal(tu_run_main(spawn_cancelled_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(coev_scope_open(0, &s), COEV_ENOTCORO);
}

/* ---- close with a deadline ---------------------------------------------- */

static int close_dl_main(void *arg)
{
	atomic_int started = 0, ended = 0;
	coev_scope_t *s;
	kid_t *k = kids_new(SIBLINGS, -1, 0, &started, &ended);

	(void)arg;
	/* Children that take 30 ms to clean up after a cancel: close waits
	 * for them even though its deadline has passed. */
	for (int i = 0; i < SIBLINGS; i++)
		k[i].cleanup_ms = 30;
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_scope_close_dl(s, t0 + COEV_MSEC(50)), -ETIMEDOUT);
	coev_time_t took = coev_now() - t0;
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS);
	TU_CHECK_MSG(took >= COEV_MSEC(80) && took < PROMPT, "took %lld ns",
		     (long long)took);
	check_sleeps(k, SIBLINGS, -ECANCELED, "close_dl");

	/* The same when the children answer the cancel with an error of
	 * their own: the timeout caused it, and close says so. */
	atomic_store(&ended, 0);
	for (int i = 0; i < SIBLINGS; i++)
		k[i] = (kid_t){.sleep_ms = -1,
			       .cancel_result = -EINTR,
			       .ended = &ended};
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	TU_CHECK_EQ(coev_scope_close_dl(s, coev_now() + COEV_MSEC(20)),
		    -ETIMEDOUT);
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS);

	/* Everything done in time: 0. */
	atomic_store(&ended, 0);
	for (int i = 0; i < SIBLINGS; i++)
		k[i] = (kid_t){.sleep_ms = 5, .result = 1, .ended = &ended};
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	TU_CHECK_EQ(coev_scope_close_dl(s, coev_now() + COEV_SEC(20)), 0);
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS);

	/* A child that failed before the deadline wins over the timeout. */
	atomic_store(&ended, 0);
	for (int i = 0; i < SIBLINGS; i++)
		k[i] = (kid_t){.sleep_ms = -1, .ended = &ended};
	k[0] = (kid_t){.sleep_ms = 5, .result = -EIO, .ended = &ended};
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(spawn_kids(s, k, SIBLINGS), 0);
	TU_CHECK_EQ(coev_scope_close_dl(s, coev_now() + COEV_MSEC(50)), -EIO);
	TU_CHECK_EQ(atomic_load(&ended), SIBLINGS);
	check_sleeps(k + 1, SIBLINGS - 1, -ECANCELED, "close_dl after EIO");
	free(k);
	return 0;
}

static void test_scope_close_dl_cancels_and_waits(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(close_dl_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- the owner cancelled ------------------------------------------------ */

static int owner_cancel_main(void *arg)
{
	int how = (int)(intptr_t)arg;
	int pre = how == 1;
	/* how 2: the children answer the cancel with their own error, which
	 * must not hide the cancellation that cut the close short. */
	owner_t o = {.n = SIBLINGS,
		     .pre_close_sleep = pre,
		     .kid_cancel_result = how == 2 ? -EINTR : 0};
	coev_task_t *t;
	int r = 1;

	TU_CHECK_EQ(coev_spawn_named("owner", scope_owner, &o, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&o.started, SIBLINGS), 0);
	if (!pre)
		TU_CHECK_EQ(tu_wait_at_least(&o.in_close, 1), 0);
	/* The owner waits: in its sleep before close, or in close. */
	TU_CHECK_EQ(tu_wait_parked(NULL, t,
				   pre ? COEV_WAIT_TIMER : COEV_WAIT_SCOPE,
				   NULL),
		    0);
	TU_CHECK_EQ(atomic_load(&o.ended), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, &r), 0);
	TU_CHECK(coev_now() - t0 < PROMPT);
	/* Cut short by the owner's cancellation, no child failed before. */
	TU_CHECK_EQ(r, -ECANCELED);
	TU_CHECK_EQ(o.close_rc, -ECANCELED);
	if (pre)
		TU_CHECK_EQ(o.pre_rc, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&o.ended), SIBLINGS);
	check_sleeps(o.k, SIBLINGS, -ECANCELED, "owner-cancelled");
	free(o.k);
	return 0;
}

static void test_scope_owner_cancelled_in_close(void **state)
{
	(void)state;
	/* Cancelled while in close... */
	assert_int_equal(tu_run_main(owner_cancel_main, (void *)0, 2), 0);
	/* ...and before it (rule 4: the close then cancels the children). */
	assert_int_equal(tu_run_main(owner_cancel_main, (void *)1, 2), 0);
	/* Children returning their own error once cancelled. */
	assert_int_equal(tu_run_main(owner_cancel_main, (void *)2, 2), 0);
	tu_assert_no_failures();
}

/* ---- thousands of children on two workers ------------------------------- */

#define THOUSANDS TU_SCALE(5000, 3000, 1000)
#define SPAWNERS 500

typedef struct crowd {
	coev_scope_t *s;
	atomic_int started, ended, gate;
	atomic_int on_worker[2];
	atomic_int sibling_spawns;
} crowd_t;

static int crowd_sibling(void *arg)
{
	crowd_t *c = arg;

	atomic_fetch_add(&c->ended, 1);
	return 0;
}

typedef struct crowd_kid {
	crowd_t *c;
	int i;
} crowd_kid_t;

static int crowd_kid(void *arg)
{
	crowd_kid_t *k = arg;
	crowd_t *c = k->c;

	atomic_fetch_add(&c->started, 1);
	while (!atomic_load(&c->gate))
		coev_sleep(COEV_MSEC(2));
	int w = coev_worker_id();
	if (w >= 0 && w < 2)
		atomic_fetch_add(&c->on_worker[w], 1);
	/* Children may spawn siblings into their own scope. */
	if (k->i < SPAWNERS) {
		int rc = coev_scope_spawn(c->s, "sibling", crowd_sibling, c);
		TU_CHECK_EQ(rc, 0);
		if (rc == 0)
			atomic_fetch_add(&c->sibling_spawns, 1);
	}
	tu_spin_ns(COEV_USEC(20));
	atomic_fetch_add(&c->ended, 1);
	return 0;
}

static int crowd_main(void *arg)
{
	crowd_t *c = arg;
	crowd_kid_t *k = calloc(THOUSANDS, sizeof *k);

	TU_CHECK_EQ(coev_scope_open(0, &c->s), 0);
	for (int i = 0; i < THOUSANDS; i++) {
		k[i] = (crowd_kid_t){.c = c, .i = i};
		TU_CHECK_EQ(coev_scope_spawn(c->s, "crowd", crowd_kid, &k[i]),
			    0);
	}
	TU_CHECK_EQ(tu_wait_at_least(&c->started, THOUSANDS), 0);
	/* All started, none can finish before the gate opens. */
	TU_CHECK_EQ(coev_scope_live(c->s), THOUSANDS);
	atomic_store(&c->gate, 1);
	TU_CHECK_EQ(coev_scope_close(c->s), 0);
	TU_CHECK_EQ(atomic_load(&c->ended), THOUSANDS + SPAWNERS);
	TU_CHECK_EQ(atomic_load(&c->sibling_spawns), SPAWNERS);
	free(k);
	return 0;
}

static void test_scope_thousands_of_children_two_workers(void **state)
{
	crowd_t *c = calloc(1, sizeof *c);

	(void)state;
	assert_int_equal(tu_run_main(crowd_main, c, 2), 0);
	print_message("children ran on worker 0: %d, worker 1: %d\n",
		      atomic_load(&c->on_worker[0]),
		      atomic_load(&c->on_worker[1]));
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&c->on_worker[0]) +
				 atomic_load(&c->on_worker[1]),
			 THOUSANDS);
	assert_true(atomic_load(&c->on_worker[0]) > 0);
	assert_true(atomic_load(&c->on_worker[1]) > 0);
	free(c);
}

/* ---- coev_wait_any ------------------------------------------------------ */

static int sleep_ms_return(void *arg)
{
	int ms = (int)(intptr_t)arg;

	coev_sleep(COEV_MSEC(ms));
	return ms;
}

/*
 * Three tasks that end in the order 1, 2, 0: each waits for its own event
 * (released one at a time by the test, which a loaded machine cannot
 * reorder, unlike sleeps of different lengths) and returns its value.
 */
typedef struct gated {
	coev_event_t go;
	int value;
} gated_t;

static const int order_end[3] = {1, 2, 0};

static int gated_return(void *arg)
{
	gated_t *g = arg;
	int r = coev_event_wait(&g->go);

	return r ? r : g->value;
}

static void gated_init(gated_t g[3])
{
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_event_init(&g[i].go), 0);
		g[i].value = 100 + i;
	}
}

static void gated_destroy(gated_t g[3])
{
	for (int i = 0; i < 3; i++)
		coev_event_destroy(&g[i].go);
}

static int wait_any_main(void *arg)
{
	coev_task_t *t[3];
	gated_t g[3];
	int r = 0;

	(void)arg;
	/* The first to finish. */
	gated_init(g);
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn(gated_return, &g[i], &t[i]), 0);
	TU_CHECK_EQ(coev_wait_any(t, 3, coev_now() + COEV_MSEC(10)),
		    -ETIMEDOUT);
	coev_event_set(&g[1].go);
	int first = coev_wait_any(t, 3, tu_guard());
	TU_CHECK_EQ(first, 1);
	/* It consumed nothing: every handle is still ours. */
	coev_event_set(&g[0].go);
	coev_event_set(&g[2].go);
	TU_CHECK_EQ(coev_gather(t, 3, (int[3]){0}), 0);
	gated_destroy(g);

	/* As completed: 1, 2, 0. */
	gated_init(g);
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn(gated_return, &g[i], &t[i]), 0);
	int order[3] = {-1, -1, -1}, n = 0, i;
	for (;;) {
		if (n < 3)
			coev_event_set(&g[order_end[n]].go);
		if ((i = coev_wait_any(t, 3, tu_guard())) < 0)
			break;
		TU_CHECK(n < 3);
		if (n >= 3)
			break;
		order[n++] = i;
		TU_CHECK_EQ(coev_join(t[i], &r), 0);
		TU_CHECK_EQ(r, g[i].value);
		t[i] = NULL;
	}
	gated_destroy(g);
	TU_CHECK_EQ(i, -ENOENT); /* the loop ends when all are NULL */
	TU_CHECK_EQ(n, 3);
	TU_CHECK_MSG(order[0] == 1 && order[1] == 2 && order[2] == 0,
		     "order %d %d %d", order[0], order[1], order[2]);

	/* Finished tasks: the lowest index, without waiting. */
	for (int k = 0; k < 3; k++)
		TU_CHECK_EQ(
			coev_spawn(sleep_ms_return, (void *)(intptr_t)0, &t[k]),
			0);
	/* All three end (a wait for one does not consume its handle). */
	for (int k = 0; k < 3; k++)
		TU_CHECK_EQ(coev_wait_any(&t[k], 1, tu_guard()), 0);
	TU_CHECK_EQ(coev_wait_any(t, 3, coev_now()), 0);
	TU_CHECK_EQ(coev_wait_any(t + 1, 2, coev_now()), 0);
	TU_CHECK_EQ(coev_gather(t, 3, (int[3]){0}), 0);
	return 0;
}

static void test_scope_wait_any_first_and_as_completed(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(wait_any_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int wait_any_errors_main(void *arg)
{
	coev_task_t *t[3] = {NULL, NULL, NULL};
	int r = 0;

	(void)arg;
	TU_CHECK_EQ(coev_wait_any(t, 3, tu_guard()), -ENOENT);
	TU_CHECK_EQ(coev_wait_any(t, 0, tu_guard()), -ENOENT);
	TU_CHECK_EQ(coev_wait_any(NULL, 0, tu_guard()), -ENOENT);
	TU_CHECK_EQ(coev_wait_any(NULL, 2, tu_guard()), -EINVAL);
	/* A slow one (until its event): -ETIMEDOUT after the deadline,
	 * handle still ours. */
	gated_t g[3];
	gated_init(g);
	TU_CHECK_EQ(coev_spawn(gated_return, &g[1], &t[1]), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_wait_any(t, 3, t0 + COEV_MSEC(30)), -ETIMEDOUT);
	coev_time_t took = coev_now() - t0;
	TU_CHECK(took >= COEV_MSEC(30) && took < PROMPT);
	TU_CHECK_EQ(coev_wait_any(t, 3, coev_now()), -ETIMEDOUT);
	/* The caller among the tasks. */
	coev_task_t *self[2] = {t[1], coev_self()};
	TU_CHECK_EQ(coev_wait_any(self, 2, tu_guard()), -EDEADLK);
	/* Cancelled caller. */
	TU_CHECK_EQ(coev_cancel(coev_self()), 0);
	TU_CHECK_EQ(coev_wait_any(t, 3, tu_guard()), -ECANCELED);
	TU_CHECK_EQ(coev_shield_begin(), 0);
	coev_event_set(&g[1].go);
	TU_CHECK_EQ(coev_wait_any(t, 3, tu_guard()), 1);
	TU_CHECK_EQ(coev_join(t[1], &r), 0);
	TU_CHECK_EQ(coev_shield_end(), 0);
	TU_CHECK_EQ(r, g[1].value);
	gated_destroy(g);
	return 0;
}

static void test_scope_wait_any_errors(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(wait_any_errors_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* From a plain thread, which blocks. */
static void test_scope_wait_any_from_a_thread(void **state)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt;
	coev_task_t *t[3];
	gated_t g[3];
	int order[3], n = 0, i, r;

	(void)state;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	gated_init(g);
	for (int k = 0; k < 3; k++)
		assert_int_equal(
			coev_rt_spawn(rt, NULL, gated_return, &g[k], &t[k]), 0);
	assert_int_equal(coev_wait_any(t, 3, coev_now() + COEV_MSEC(10)),
			 -ETIMEDOUT);
	for (;;) {
		if (n < 3)
			coev_event_set(&g[order_end[n]].go);
		if ((i = coev_wait_any(t, 3, tu_guard())) < 0 || n >= 3)
			break;
		order[n++] = i;
		assert_int_equal(coev_join(t[i], &r), 0);
		assert_int_equal(r, g[i].value);
		t[i] = NULL;
	}
	assert_int_equal(i, -ENOENT);
	gated_destroy(g);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(PROMPT)), 0);
	coev_rt_free(rt);
	assert_int_equal(n, 3);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 0);
}

/* ---- misuse aborts ------------------------------------------------------ */

static int close_other(void *arg)
{
	return coev_scope_close(arg);
}

static int close_by_non_owner(void *arg)
{
	coev_scope_t *s;
	coev_task_t *t;

	(void)arg;
	coev_scope_open(0, &s);
	coev_spawn(close_other, s, &t);
	coev_join(t, NULL);
	return 0;
}

static int close_out_of_order(void *arg)
{
	coev_scope_t *a, *b;

	(void)arg;
	coev_scope_open(0, &a);
	coev_scope_open(0, &b);
	coev_scope_close(a);
	return 0;
}

static void run_one_worker(void *fn)
{
	coev_config_t cfg;

	coev_config_init(&cfg);
	cfg.workers = 1;
	coev_run((coev_fn)fn, NULL, &cfg);
}

static void expect_abort(coev_fn fn)
{
	tu_child_t *res = malloc(sizeof *res);

	assert_int_equal(tu_run_in_child(run_one_worker, (void *)fn, res), 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "scope");
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "scope"));
	free(res);
}

static void test_scope_close_misuse_aborts(void **state)
{
	(void)state;
	expect_abort(close_by_non_owner);
	expect_abort(close_out_of_order);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_scope_close_waits_for_every_child),
		TU_FD_TEST(test_scope_close_returns_first_error),
		TU_FD_TEST(test_scope_fail_fast_cancels_siblings),
		TU_FD_TEST(test_scope_without_fail_fast_siblings_complete),
		TU_FD_TEST(test_scope_cancel_from_another_task),
		TU_FD_TEST(test_scope_cancel_from_foreign_thread),
		TU_FD_TEST(test_scope_nested_cancel_reaches_grandchildren),
		TU_FD_TEST(test_scope_spawn_into_cancelled_scope),
		TU_FD_TEST(test_scope_close_dl_cancels_and_waits),
		TU_FD_TEST(test_scope_owner_cancelled_in_close),
		TU_FD_TEST(test_scope_thousands_of_children_two_workers),
		TU_FD_TEST(test_scope_wait_any_first_and_as_completed),
		TU_FD_TEST(test_scope_wait_any_errors),
		TU_FD_TEST(test_scope_wait_any_from_a_thread),
		TU_FD_TEST(test_scope_close_misuse_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
