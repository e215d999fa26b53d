/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_future.c — coev_future_t (include/coev/future.h):
 * the return codes of complete, set and cancel (exactly once, -EALREADY,
 * -ECANCELED with the value left to the caller); who owns the value
 * (freed once when the last reference goes, never after a take); waiting
 * from tasks, plain threads and loop callbacks, with and without
 * deadlines, and cancellation of the waiter (wait leaves the future
 * alone, await cancels it); completions racing timeouts and cancels, and
 * several completers racing each other, over many rounds; completions
 * that arrive after their waiter left and after the runtime was freed
 * (also when the waiter was a task abandoned at shutdown); one completion
 * waking a thousand tasks and some threads; on_done callbacks; the abort
 * when the last reference goes while a task waits.
 *
 * Values are counted (val_new / val_free) so a leak or a double free of a
 * value fails a check, not only a sanitizer. Task and thread bodies
 * record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 *
 * Choices: the races run one long-lived waiter task against a long-lived
 * completer thread for the timeout rounds (so a round costs a hand-over,
 * not a spawn, and the plain build reaches 600k rounds in ~12 s; more
 * would break the 30 s budget on 2 shared cores), and a fresh
 * task per round where it is cancelled (cancellation is sticky). Loop
 * callbacks are reached through the public API (coev_submit's fn, a
 * coev_timer callback), not through sched/ internals. Not tested: -ENOMEM
 * (no allocation hook); rule 6's "at most one system call" (not
 * observable without counting syscalls); an await whose completion lands
 * between its give-up and its cancel on purpose (there is no suspension
 * point there to hold it: the race rounds reach it by chance, and their
 * invariant covers it).
 */
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <pthread.h>
#include <sched.h>

/* ---- counted values ------------------------------------------------------ */

#define VAL_MAGIC 0x5eed1234u
#define VAL_DEAD 0xdeadbeefu

typedef struct val {
	unsigned magic;
	long id;
} val_t;

static atomic_long val_allocs, val_frees;

static val_t *val_new(long id)
{
	val_t *v = malloc(sizeof *v);

	if (!v)
		abort();
	v->magic = VAL_MAGIC;
	v->id = id;
	atomic_fetch_add(&val_allocs, 1);
	return v;
}

/* The value_free of every completion here: checks the value is live. */
static void val_free(void *p)
{
	val_t *v = p;

	TU_CHECK_EQ(v->magic, VAL_MAGIC);
	v->magic = VAL_DEAD;
	atomic_fetch_add(&val_frees, 1);
	free(v);
}

static long vals_live(void)
{
	return atomic_load(&val_allocs) - atomic_load(&val_frees);
}

static void vals_reset(void)
{
	atomic_store(&val_allocs, 0);
	atomic_store(&val_frees, 0);
}

/* Tell the CPU this is a spin-wait loop. */
static void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* Spin-wait: pause, then give the CPU away (2 cores, more threads than
 * cores). */
static void relax(unsigned *n)
{
	if (++*n < 64)
		cpu_pause();
	else
		sched_yield();
}

/* ---- return codes -------------------------------------------------------- */

/* Proves: NULL arguments give -EINVAL (or NULL / 0) and nothing crashes. */
static void test_future_null_args(void **state)
{
	int res = 5;

	(void)state;
	assert_int_equal(coev_future_new(NULL), -EINVAL);
	assert_int_equal(coev_future_complete(NULL, 0, NULL, NULL), -EINVAL);
	assert_int_equal(coev_future_set(NULL, 0), -EINVAL);
	assert_int_equal(coev_future_cancel(NULL), -EINVAL);
	assert_int_equal(coev_future_poll(NULL, &res), -EINVAL);
	assert_int_equal(coev_future_wait(NULL, &res), -EINVAL);
	assert_int_equal(coev_future_wait_dl(NULL, COEV_FOREVER, &res),
			 -EINVAL);
	assert_int_equal(coev_future_await(NULL, &res), -EINVAL);
	assert_int_equal(coev_future_await_dl(NULL, 0, &res), -EINVAL);
	assert_int_equal(res, 5);
	assert_int_equal(coev_future_cancelled(NULL), 0);
	assert_null(coev_future_value(NULL));
	assert_null(coev_future_take(NULL));
	assert_null(coev_future_ref(NULL));
	coev_future_release(NULL);

	coev_future_t *f;
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_on_done(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(coev_future_on_done(f, NULL, NULL), -EINVAL);
	coev_future_release(f);
}

/* Proves: complete once; a second completion, a set and a cancel after it
 * give -EALREADY, change nothing and leave the refused value to its
 * caller. */
static void test_future_second_completion_is_refused(void **state)
{
	coev_future_t *f;
	val_t *v, *v2;
	int res = 0;

	(void)state;
	vals_reset();
	v = val_new(1);
	v2 = val_new(2);
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_poll(f, &res), -EAGAIN);
	assert_int_equal(coev_future_cancelled(f), 0);
	assert_null(coev_future_value(f));
	assert_null(coev_future_take(f));
	/* From the test thread (a plain thread); a past deadline only tries. */
	assert_int_equal(coev_future_wait_dl(f, coev_now() - 1, &res),
			 -ETIMEDOUT);
	assert_int_equal(coev_future_wait_dl(f, 0, &res), -ETIMEDOUT);
	assert_int_equal(coev_future_poll(f, NULL), -EAGAIN);

	assert_int_equal(coev_future_complete(f, 7, v, val_free), 0);
	assert_int_equal(coev_future_complete(f, 8, v2, val_free), -EALREADY);
	assert_int_equal(coev_future_set(f, 9), -EALREADY);
	assert_int_equal(coev_future_cancel(f), -EALREADY);
	assert_int_equal(coev_future_cancelled(f), 0);
	assert_int_equal(coev_future_poll(f, &res), 0);
	assert_int_equal(res, 7);
	assert_ptr_equal(coev_future_value(f), v);
	/* The refused v2 is ours and live. */
	assert_int_equal(v2->magic, VAL_MAGIC);
	assert_int_equal(atomic_load(&val_frees), 0);
	/* Every wait form returns at once with the result. */
	res = 0;
	assert_int_equal(coev_future_wait(f, &res), 0);
	assert_int_equal(res, 7);
	res = 0;
	assert_int_equal(coev_future_wait_dl(f, 0, &res), 0);
	assert_int_equal(res, 7);
	res = 0;
	assert_int_equal(coev_future_await(f, &res), 0);
	assert_int_equal(res, 7);
	res = 0;
	assert_int_equal(coev_future_await_dl(f, coev_now() - 1, &res), 0);
	assert_int_equal(res, 7);
	assert_int_equal(coev_future_wait(f, NULL), 0);
	coev_future_release(f);
	assert_int_equal(atomic_load(&val_frees), 1);
	val_free(v2);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
}

/* Proves: a completion after a cancel gets -ECANCELED and its value is not
 * freed (the caller keeps it); a second cancel gets -EALREADY; waits see
 * result -ECANCELED. */
static void test_future_completion_after_cancel(void **state)
{
	coev_future_t *f;
	val_t *v;
	int res = 0;

	(void)state;
	vals_reset();
	v = val_new(3);
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_cancel(f), 0);
	assert_int_equal(coev_future_cancelled(f), 1);
	assert_int_equal(coev_future_cancel(f), -EALREADY);
	assert_int_equal(coev_future_complete(f, 1, v, val_free), -ECANCELED);
	assert_int_equal(coev_future_set(f, 1), -ECANCELED);
	assert_int_equal(coev_future_cancelled(f), 1);
	assert_int_equal(coev_future_poll(f, &res), 0);
	assert_int_equal(res, -ECANCELED);
	assert_null(coev_future_value(f));
	assert_null(coev_future_take(f));
	res = 0;
	assert_int_equal(coev_future_wait(f, &res), 0);
	assert_int_equal(res, -ECANCELED);
	res = 0;
	assert_int_equal(coev_future_await_dl(f, 0, &res), 0);
	assert_int_equal(res, -ECANCELED);
	coev_future_release(f);
	assert_int_equal(atomic_load(&val_frees), 0);
	assert_int_equal(v->magic, VAL_MAGIC);
	val_free(v);

	/* A negative result is a result like any other, with its value. */
	v = val_new(4);
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_complete(f, -EIO, v, val_free), 0);
	assert_int_equal(coev_future_poll(f, &res), 0);
	assert_int_equal(res, -EIO);
	assert_int_equal(coev_future_cancelled(f), 0);
	assert_ptr_equal(coev_future_value(f), v);
	coev_future_release(f);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
}

/* ---- value ownership ----------------------------------------------------- */

/* Proves: value_free runs exactly once, when the last of several references
 * goes; never after a take; a NULL value_free frees nothing. */
static void test_future_value_ownership(void **state)
{
	coev_future_t *f;
	val_t *v;

	(void)state;
	vals_reset();
	v = val_new(1);
	assert_int_equal(coev_future_new(&f), 0);
	assert_ptr_equal(coev_future_ref(f), f);
	coev_future_ref(f);
	assert_int_equal(coev_future_complete(f, 0, v, val_free), 0);
	coev_future_release(f);
	coev_future_release(f);
	assert_int_equal(atomic_load(&val_frees), 0);
	assert_ptr_equal(coev_future_value(f), v);
	assert_int_equal(v->magic, VAL_MAGIC);
	coev_future_release(f);
	assert_int_equal(atomic_load(&val_frees), 1);

	/* Taken: ours; a second take and value() see NULL. */
	v = val_new(2);
	assert_int_equal(coev_future_new(&f), 0);
	coev_future_ref(f);
	assert_int_equal(coev_future_complete(f, 0, v, val_free), 0);
	assert_ptr_equal(coev_future_take(f), v);
	assert_null(coev_future_take(f));
	assert_null(coev_future_value(f));
	coev_future_release(f);
	coev_future_release(f);
	assert_int_equal(atomic_load(&val_frees), 1);
	assert_int_equal(v->magic, VAL_MAGIC);
	val_free(v);

	/* No value_free: the future never frees the value. */
	v = val_new(3);
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_complete(f, 0, v, NULL), 0);
	coev_future_release(f);
	assert_int_equal(v->magic, VAL_MAGIC);
	val_free(v);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
}

/* ---- waiting from tasks, threads and loop callbacks --------------------- */

typedef struct fw {
	coev_future_t *f;
	int await;	      /* coev_future_await[_dl] rather than wait */
	coev_time_t deadline; /* COEV_FOREVER: the forms without _dl */
	atomic_int arrived, finished;
	int rc, res;
	coev_time_t ended;
	const void *value;
	tu_thread_at_t at; /* fw_thread's, for tu_wait_thread_parked */
} fw_t;

static int fw_wait(fw_t *w)
{
	if (w->deadline == COEV_FOREVER)
		return w->await ? coev_future_await(w->f, &w->res)
				: coev_future_wait(w->f, &w->res);
	return w->await ? coev_future_await_dl(w->f, w->deadline, &w->res)
			: coev_future_wait_dl(w->f, w->deadline, &w->res);
}

static int fw_task(void *arg)
{
	fw_t *w = arg;

	w->res = 12345;
	atomic_store(&w->arrived, 1);
	w->rc = fw_wait(w);
	w->ended = coev_now();
	if (w->rc == 0)
		w->value = coev_future_value(w->f);
	atomic_store(&w->finished, 1);
	return w->rc;
}

static void *fw_thread(void *arg)
{
	fw_t *w = arg;

	TU_THREAD_AT(&w->at);
	fw_task(w);
	return NULL;
}

typedef struct wmain {
	/* for the loop-callback checks */
	coev_future_t *f;
	int rcs[4];
	int cancelled_after;
	int complete_rc;
	int worker;
	int self_null;
} wmain_t;

static int wait_task_main(void *arg)
{
	coev_future_t *f;
	coev_task_t *t;
	val_t *v = val_new(1);
	coev_time_t t0;
	int res = 0;

	(void)arg;
	/* No deadline: woken by a completion from another task. */
	TU_CHECK_EQ(coev_future_new(&f), 0);
	fw_t w = {.f = f, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn(fw_task, &w, &t), 0);
	parked(t, COEV_WAIT_FUTURE, f);
	TU_CHECK_EQ(atomic_load(&w.finished), 0);
	TU_CHECK_EQ(coev_future_complete(f, 42, v, val_free), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, 0);
	TU_CHECK_EQ(w.res, 42);
	TU_CHECK(w.value == v);
	coev_future_release(f);

	/* wait_dl: times out no earlier than the deadline, f left pending. */
	TU_CHECK_EQ(coev_future_new(&f), 0);
	t0 = coev_now();
	res = 99;
	TU_CHECK_EQ(coev_future_wait_dl(f, t0 + COEV_MSEC(20), &res),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() >= t0 + COEV_MSEC(20));
	TU_CHECK_EQ(res, 99);
	TU_CHECK_EQ(coev_future_poll(f, NULL), -EAGAIN);
	TU_CHECK_EQ(coev_future_cancelled(f), 0);
	/* A past deadline only tries, pending or complete. */
	TU_CHECK_EQ(coev_future_wait_dl(f, coev_now() - 1, &res), -ETIMEDOUT);
	TU_CHECK_EQ(coev_future_wait_dl(f, 0, &res), -ETIMEDOUT);
	TU_CHECK_EQ(coev_future_poll(f, NULL), -EAGAIN);
	/* Still completable after the give-up, and then a wait returns. */
	TU_CHECK_EQ(coev_future_set(f, 5), 0);
	TU_CHECK_EQ(coev_future_wait_dl(f, 0, &res), 0);
	TU_CHECK_EQ(res, 5);
	coev_future_release(f);

	/* await_dl: times out and cancels f; the producer learns it. */
	TU_CHECK_EQ(coev_future_new(&f), 0);
	t0 = coev_now();
	TU_CHECK_EQ(coev_future_await_dl(f, t0 + COEV_MSEC(20), &res),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() >= t0 + COEV_MSEC(20));
	TU_CHECK_EQ(coev_future_cancelled(f), 1);
	v = val_new(2);
	TU_CHECK_EQ(coev_future_complete(f, 1, v, val_free), -ECANCELED);
	val_free(v);
	coev_future_release(f);

	/* await_dl with a past deadline on a pending future: cancels it. */
	TU_CHECK_EQ(coev_future_new(&f), 0);
	TU_CHECK_EQ(coev_future_await_dl(f, coev_now() - 1, &res), -ETIMEDOUT);
	TU_CHECK_EQ(coev_future_cancelled(f), 1);
	coev_future_release(f);

	/* Waits of other tasks on one worker while this one sleeps: a
	 * deadline wait woken by the completion before the deadline. */
	TU_CHECK_EQ(coev_future_new(&f), 0);
	fw_t wd = {.f = f, .deadline = tu_guard()};
	fw_t ad = {.f = f, .deadline = tu_guard(), .await = 1};
	coev_task_t *td, *ta;
	TU_CHECK_EQ(coev_spawn(fw_task, &wd, &td), 0);
	TU_CHECK_EQ(coev_spawn(fw_task, &ad, &ta), 0);
	parked(td, COEV_WAIT_FUTURE, f);
	parked(ta, COEV_WAIT_FUTURE, f);
	TU_CHECK_EQ(coev_future_set(f, 3), 0);
	TU_CHECK_EQ(coev_join(td, NULL), 0);
	TU_CHECK_EQ(coev_join(ta, NULL), 0);
	TU_CHECK_EQ(wd.rc, 0);
	TU_CHECK_EQ(wd.res, 3);
	TU_CHECK_EQ(ad.rc, 0);
	TU_CHECK_EQ(ad.res, 3);
	TU_CHECK(wd.value == NULL);
	coev_future_release(f);
	return 0;
}

/* Proves: a task waits with and without a deadline (on 1 and 2 workers);
 * a deadline ends wait with f pending and await with f cancelled; a past
 * deadline only tries; a completed future is still waitable. */
static void test_future_wait_from_task(void **state)
{
	(void)state;
	vals_reset();
	assert_int_equal(tu_run_main(wait_task_main, NULL, 1), 0);
	assert_int_equal(tu_run_main(wait_task_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(vals_live(), 0);
}

static int complete_fw(void *arg)
{
	return coev_future_complete(arg, 77, val_new(77), val_free);
}

/* Proves: plain threads block in wait until a task completes f; their
 * deadline and await forms behave as a task's. */
static void test_future_wait_from_plain_thread(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_future_t *f;
	coev_task_t *t;
	pthread_t th[3];
	int r = -1;

	(void)state;
	vals_reset();
	assert_int_equal(coev_future_new(&f), 0);
	fw_t w[3] = {{.f = f, .deadline = COEV_FOREVER},
		     {.f = f, .deadline = tu_guard()},
		     {.f = f, .deadline = COEV_FOREVER, .await = 1}};
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fw_thread, &w[i]),
				 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tu_thread_wait_at_least(&w[i].arrived, 1), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tu_wait_thread_parked(&w[i].at), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&w[i].finished), 0);
	assert_int_equal(coev_rt_spawn(rt, "completer", complete_fw, f, &t), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		assert_int_equal(w[i].res, 77);
		assert_non_null(w[i].value);
		assert_ptr_equal(w[i].value, coev_future_value(f));
	}
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(r, 0);
	coev_future_release(f);

	/* A thread's deadline: -ETIMEDOUT, f pending; await: cancelled. */
	assert_int_equal(coev_future_new(&f), 0);
	coev_time_t t0 = coev_now();
	assert_int_equal(coev_future_wait_dl(f, t0 + COEV_MSEC(20), &r),
			 -ETIMEDOUT);
	assert_true(coev_now() >= t0 + COEV_MSEC(20));
	assert_int_equal(coev_future_cancelled(f), 0);
	assert_int_equal(coev_future_await_dl(f, coev_now() + COEV_MSEC(5), &r),
			 -ETIMEDOUT);
	assert_int_equal(coev_future_cancelled(f), 1);
	coev_future_release(f);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
}

/* In a loop callback: every wait form refuses (without cancelling f), and
 * a completion from there wakes the waiting task. */
static void loop_cb_body(wmain_t *m)
{
	m->rcs[0] = coev_future_wait(m->f, NULL);
	m->rcs[1] = coev_future_wait_dl(m->f, coev_now() + COEV_MSEC(5), NULL);
	m->rcs[2] = coev_future_await(m->f, NULL);
	m->rcs[3] = coev_future_await_dl(m->f, coev_now() - 1, NULL);
	m->cancelled_after = coev_future_cancelled(m->f);
	m->worker = coev_worker_id();
	m->self_null = coev_self() == NULL;
	m->complete_rc = coev_future_complete(m->f, 11, val_new(11), val_free);
}

static int submit_fn(void *arg)
{
	loop_cb_body(arg);
	return 0;
}

static void timer_cb(coev_timer_t *tm, void *arg)
{
	loop_cb_body(arg);
	coev_timer_free(tm);
}

static void check_loop_cb(wmain_t *m, fw_t *w, int worker)
{
	for (int i = 0; i < 4; i++)
		TU_CHECK_MSG(m->rcs[i] == COEV_ENOTCORO, "form %d: %d", i,
			     m->rcs[i]);
	TU_CHECK_EQ(m->cancelled_after, 0);
	TU_CHECK_EQ(m->worker, worker);
	TU_CHECK_EQ(m->self_null, 1);
	TU_CHECK_EQ(m->complete_rc, 0);
	TU_CHECK_EQ(w->rc, 0);
	TU_CHECK_EQ(w->res, 11);
}

static int loop_cb_main(void *arg)
{
	wmain_t m = {0};
	coev_task_t *t;
	coev_timer_t *tm;
	int r = -1;

	(void)arg;
	for (unsigned i = 0; i < 2; i++) {
		memset(&m, 0, sizeof m);
		TU_CHECK_EQ(coev_future_new(&m.f), 0);
		fw_t w = {.f = m.f, .deadline = COEV_FOREVER, .await = 1};
		TU_CHECK_EQ(coev_spawn(fw_task, &w, &t), 0);
		parked(t, COEV_WAIT_FUTURE, m.f);
		TU_CHECK_EQ(coev_submit_to(NULL, i, submit_fn, &m, &r), 0);
		TU_CHECK_EQ(r, 0);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		check_loop_cb(&m, &w, (int)i);
		coev_future_release(m.f);
	}

	/* A timer callback on a pinned task's worker. */
	memset(&m, 0, sizeof m);
	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(coev_future_new(&m.f), 0);
	fw_t w = {.f = m.f, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_timer_new(timer_cb, &m, &tm), 0);
	TU_CHECK_EQ(coev_timer_set(tm, coev_now() + COEV_MSEC(1)), 0);
	fw_task(&w); /* this task waits; the timer completes */
	check_loop_cb(&m, &w, coev_worker_id());
	TU_CHECK_EQ(coev_unpin(), 0);
	coev_future_release(m.f);
	return 0;
}

/* Proves: COEV_ENOTCORO from a loop callback (a coev_submit fn, a
 * coev_timer callback), and a completion there wakes a task. */
static void test_future_wait_from_loop_callback(void **state)
{
	(void)state;
	vals_reset();
	assert_int_equal(tu_run_main(loop_cb_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(vals_live(), 0);
}

static int cancel_task(void *arg)
{
	return coev_cancel(arg);
}

static void *cancel_thread(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

static int cancel_waiter_main(void *arg)
{
	(void)arg;
	for (int from_thread = 0; from_thread < 2; from_thread++) {
		for (int aw = 0; aw < 2; aw++) {
			coev_future_t *f;
			coev_task_t *t, *c;
			pthread_t th;

			TU_CHECK_EQ(coev_future_new(&f), 0);
			fw_t w = {.f = f,
				  .await = aw,
				  .deadline = from_thread ? tu_guard()
							  : COEV_FOREVER};
			TU_CHECK_EQ(coev_spawn(fw_task, &w, &t), 0);
			parked(t, COEV_WAIT_FUTURE, f);
			if (from_thread) {
				void *crc;
				TU_CHECK_EQ(pthread_create(&th, NULL,
							   cancel_thread, t),
					    0);
				pthread_join(th, &crc);
				TU_CHECK_EQ((intptr_t)crc, 0);
			} else {
				TU_CHECK_EQ(coev_spawn(cancel_task, t, &c), 0);
				TU_CHECK_EQ(coev_join(c, NULL), 0);
			}
			TU_CHECK_EQ(coev_join(t, NULL), 0);
			TU_CHECK_EQ(w.rc, -ECANCELED);
			TU_CHECK_EQ(w.res, 12345);
			TU_CHECK_EQ(coev_future_cancelled(f), aw);
			val_t *v = val_new(aw);
			int crc = coev_future_complete(f, 1, v, val_free);
			if (aw) {
				TU_CHECK_EQ(crc, -ECANCELED);
				val_free(v);
			} else {
				TU_CHECK_EQ(crc, 0);
			}
			coev_future_release(f);
		}
	}
	return 0;
}

/* Proves: cancelling a waiting task gives -ECANCELED; wait leaves f
 * pending (a later completion succeeds), await cancels it (a later
 * completion gets -ECANCELED); from a task and from a plain thread. */
static void test_future_cancel_of_the_waiting_task(void **state)
{
	(void)state;
	vals_reset();
	assert_int_equal(tu_run_main(cancel_waiter_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(vals_live(), 0);
}

/* ---- races: a completion against a timeout ------------------------------- */

#define TO_ROUNDS TU_SCALE(600000, 200000, 1200000)

typedef struct torace {
	coev_future_t *f; /* [go] the round's future; one ref for C */
	atomic_long go;	  /* round the completer may run */
	atomic_long done; /* round the completer finished */
	atomic_int quit;
	unsigned spin; /* [go] the completer's delay, in pauses */
	int crc;       /* [done] the completion's return code */
	long ok, to, ok_aw, to_aw;
} torace_t;

static void spin_pauses(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		cpu_pause();
}

static void *torace_completer(void *arg)
{
	torace_t *r = arg;

	for (long i = 1;; i++) {
		unsigned n = 0;

		while (atomic_load_explicit(&r->go, memory_order_acquire) < i) {
			if (atomic_load(&r->quit))
				return NULL;
			relax(&n);
		}
		spin_pauses(r->spin);
		val_t *v = val_new(i);
		int rc = coev_future_complete(r->f, (int)(i & 0xffff), v,
					      val_free);
		if (rc != 0)
			val_free(v); /* refused: still ours */
		r->crc = rc;
		coev_future_release(r->f);
		atomic_store_explicit(&r->done, i, memory_order_release);
	}
}

/* One round's checks, once the completer is done with it. */
static void torace_check(torace_t *r, coev_future_t *f, long i, int aw, int rc,
			 int res, const val_t *seen)
{
	int pres = 0;

	if (rc == 0) {
		/* Delivered: the result, the value, and the completer won. */
		TU_CHECK_MSG(res == (int)(i & 0xffff), "round %ld: res %d", i,
			     res);
		TU_CHECK_MSG(seen && seen->id == i, "round %ld: value", i);
		TU_CHECK_MSG(r->crc == 0, "round %ld: waited 0, crc %d", i,
			     r->crc);
		TU_CHECK(!coev_future_cancelled(f));
		if (aw)
			r->ok_aw++;
		else
			r->ok++;
		return;
	}
	TU_CHECK_MSG(rc == -ETIMEDOUT, "round %ld: rc %d", i, rc);
	if (aw) {
		/* Gave up first: f cancelled, the completion refused. */
		TU_CHECK_MSG(coev_future_cancelled(f), "round %ld", i);
		TU_CHECK_MSG(r->crc == -ECANCELED, "round %ld: crc %d", i,
			     r->crc);
		TU_CHECK_EQ(coev_future_poll(f, &pres), 0);
		TU_CHECK_EQ(pres, -ECANCELED);
		TU_CHECK(coev_future_value(f) == NULL);
		r->to_aw++;
	} else {
		/* Gave up, f left alone: the completion landed later. */
		TU_CHECK_MSG(r->crc == 0, "round %ld: crc %d", i, r->crc);
		TU_CHECK(!coev_future_cancelled(f));
		TU_CHECK_EQ(coev_future_poll(f, &pres), 0);
		TU_CHECK_EQ(pres, (int)(i & 0xffff));
		const val_t *v = coev_future_value(f);
		TU_CHECK(v && v->id == i);
		r->to++;
	}
}

static int torace_main(void *arg)
{
	torace_t *r = arg;
	unsigned seed = 0x9e3779b9u;
	pthread_t th;

	TU_CHECK_EQ(pthread_create(&th, NULL, torace_completer, r), 0);
	for (long i = 1; i <= TO_ROUNDS; i++) {
		unsigned x = rnd_next(&seed), n = 0;
		coev_future_t *f;
		int aw = (int)(x & 1), res = -1, rc;

		TU_CHECK_EQ(coev_future_new(&f), 0);
		r->f = coev_future_ref(f);
		r->spin = (x >> 1) % 512;
		/* Deadlines from already past to a few microseconds ahead,
		 * so both orders happen. */
		coev_time_t dl =
			coev_now() + (coev_time_t)((x >> 10) % 6000) - 1000;
		atomic_store_explicit(&r->go, i, memory_order_release);
		rc = aw ? coev_future_await_dl(f, dl, &res)
			: coev_future_wait_dl(f, dl, &res);
		const val_t *seen = rc == 0 ? coev_future_value(f) : NULL;
		while (atomic_load_explicit(&r->done, memory_order_acquire) < i)
			relax(&n);
		torace_check(r, f, i, aw, rc, res, seen);
		coev_future_release(f);
		if (atomic_load(&tu_failures) > 20)
			break;
	}
	atomic_store(&r->quit, 1);
	pthread_join(th, NULL);
	return 0;
}

/* Proves: a completion racing a timeout (wait and await) is delivered
 * exactly once or refused exactly once; no value leaks or is freed twice;
 * no waiter is left behind (the last release would abort). */
static void test_future_race_completion_vs_timeout(void **state)
{
	torace_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	vals_reset();
	assert_int_equal(tu_run_main(torace_main, r, 1), 0);
	print_message("wait: %ld delivered, %ld timed out; await: %ld "
		      "delivered, %ld timed out\n",
		      r->ok, r->to, r->ok_aw, r->to_aw);
	tu_assert_no_failures();
	assert_int_equal(r->ok + r->to + r->ok_aw + r->to_aw, TO_ROUNDS);
	assert_true(r->ok > 0 && r->to > 0 && r->ok_aw > 0 && r->to_aw > 0);
	assert_int_equal(vals_live(), 0);
	free(r);
}

/* ---- races: a completion against a cancel from a third thread ----------- */

#define CR_ROUNDS TU_SCALE(60000, 30000, 30000)

typedef struct crace {
	coev_future_t *f; /* [go] one ref for the completer */
	coev_task_t *t;	  /* [go] the waiter, for the canceller */
	atomic_long go, done_c, done_x;
	atomic_int started; /* the waiter runs: a task cancelled before its
			     * first run never runs at all */
	atomic_int quit;
	unsigned spin_c, spin_x;
	int crc;
	long ok, cancelled, ok_aw, cancelled_aw;
} crace_t;

typedef struct cw {
	coev_future_t *f;
	atomic_int *started;
	int aw, rc, res;
	const val_t *seen;
} cw_t;

static int crace_waiter(void *arg)
{
	cw_t *w = arg;

	atomic_store(w->started, 1);
	w->rc = w->aw ? coev_future_await(w->f, &w->res)
		      : coev_future_wait(w->f, &w->res);
	w->seen = w->rc == 0 ? coev_future_value(w->f) : NULL;
	return 0;
}

static void *crace_completer(void *arg)
{
	crace_t *r = arg;

	for (long i = 1;; i++) {
		unsigned n = 0;

		while (atomic_load_explicit(&r->go, memory_order_acquire) < i) {
			if (atomic_load(&r->quit))
				return NULL;
			relax(&n);
		}
		while (!atomic_load(&r->started))
			relax(&n);
		spin_pauses(r->spin_c);
		val_t *v = val_new(i);
		int rc = coev_future_complete(r->f, (int)(i & 0xffff), v,
					      val_free);
		if (rc != 0)
			val_free(v);
		r->crc = rc;
		coev_future_release(r->f);
		atomic_store_explicit(&r->done_c, i, memory_order_release);
	}
}

static void *crace_canceller(void *arg)
{
	crace_t *r = arg;

	for (long i = 1;; i++) {
		unsigned n = 0;

		while (atomic_load_explicit(&r->go, memory_order_acquire) < i) {
			if (atomic_load(&r->quit))
				return NULL;
			relax(&n);
		}
		while (!atomic_load(&r->started))
			relax(&n);
		spin_pauses(r->spin_x);
		TU_CHECK_EQ(coev_cancel(r->t), 0);
		atomic_store_explicit(&r->done_x, i, memory_order_release);
	}
}

/* Proves: a completion from one thread racing a cancel of the waiting task
 * from another: the wait returns 0 with the result, or -ECANCELED and then
 * (await) f is cancelled and the completion refused, or (wait) the
 * completion succeeds; values counted; no waiter left. */
static void test_future_race_completion_vs_cancel(void **state)
{
	crace_t *r = calloc(1, sizeof *r);
	coev_rt_t *rt = tu_new_rt(2);
	pthread_t thc, thx;
	unsigned seed = 0x2545f491u;

	(void)state;
	assert_non_null(r);
	vals_reset();
	assert_int_equal(pthread_create(&thc, NULL, crace_completer, r), 0);
	assert_int_equal(pthread_create(&thx, NULL, crace_canceller, r), 0);
	/* Under load one side may win for a long stretch: go on (up to ten
	 * times the rounds) until both outcomes were seen for both calls. */
	for (long i = 1;
	     i <= CR_ROUNDS ||
	     (i <= 10 * CR_ROUNDS &&
	      !(r->ok && r->cancelled && r->ok_aw && r->cancelled_aw));
	     i++) {
		unsigned x = rnd_next(&seed), n = 0;
		cw_t w = {.aw = (int)(x & 1), .res = -1, .rc = 1};
		int pres = 0;

		w.started = &r->started;
		atomic_store(&r->started, 0);

		assert_int_equal(coev_future_new(&w.f), 0);
		r->f = coev_future_ref(w.f);
		assert_int_equal(
			coev_rt_spawn(rt, "waiter", crace_waiter, &w, &r->t),
			0);
		r->spin_c = (x >> 1) % 2048;
		r->spin_x = (x >> 12) % 2048;
		atomic_store_explicit(&r->go, i, memory_order_release);
		while (atomic_load_explicit(&r->done_c, memory_order_acquire) <
			       i ||
		       atomic_load_explicit(&r->done_x, memory_order_acquire) <
			       i)
			relax(&n);
		assert_int_equal(coev_join(r->t, NULL), 0);
		if (w.rc == 0) {
			if (w.res != (int)(i & 0xffff) || !w.seen ||
			    w.seen->id != i || r->crc != 0)
				fail_msg("round %ld: 0 but res %d crc %d", i,
					 w.res, r->crc);
			w.aw ? r->ok_aw++ : r->ok++;
		} else if (w.rc != -ECANCELED) {
			fail_msg("round %ld: rc %d", i, w.rc);
		} else if (w.aw) {
			if (!coev_future_cancelled(w.f) || r->crc != -ECANCELED)
				fail_msg("round %ld: await gave up, crc %d", i,
					 r->crc);
			r->cancelled_aw++;
		} else {
			if (coev_future_cancelled(w.f) || r->crc != 0 ||
			    coev_future_poll(w.f, &pres) != 0 ||
			    pres != (int)(i & 0xffff))
				fail_msg("round %ld: wait gave up, crc %d", i,
					 r->crc);
			r->cancelled++;
		}
		coev_future_release(w.f);
	}
	atomic_store(&r->quit, 1);
	pthread_join(thc, NULL);
	pthread_join(thx, NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	print_message("wait: %ld delivered, %ld cancelled; await: %ld "
		      "delivered, %ld cancelled\n",
		      r->ok, r->cancelled, r->ok_aw, r->cancelled_aw);
	tu_assert_no_failures();
	assert_true(r->ok > 0 && r->cancelled > 0 && r->ok_aw > 0 &&
		    r->cancelled_aw > 0);
	assert_int_equal(vals_live(), 0);
	free(r);
}

/* ---- races: several completers ------------------------------------------ */

#define MC_ROUNDS TU_SCALE(200000, 60000, 40000)
#define MC_THREADS 3

typedef struct mcrace {
	coev_future_t *f; /* [go] */
	atomic_long go;
	atomic_long done[MC_THREADS];
	atomic_int quit;
	int rc[MC_THREADS]; /* [done] */
	unsigned spin[MC_THREADS];
} mcrace_t;

typedef struct mcarg {
	mcrace_t *r;
	int k;
} mcarg_t;

static void *mc_thread(void *arg)
{
	mcarg_t *a = arg;
	mcrace_t *r = a->r;

	for (long i = 1;; i++) {
		unsigned n = 0;

		while (atomic_load_explicit(&r->go, memory_order_acquire) < i) {
			if (atomic_load(&r->quit))
				return NULL;
			relax(&n);
		}
		spin_pauses(r->spin[a->k]);
		int rc;
		if (a->k == 0 && (i & 3) == 0) {
			rc = coev_future_cancel(r->f);
		} else {
			val_t *v = val_new(a->k);
			rc = coev_future_complete(r->f, a->k, v, val_free);
			if (rc != 0)
				val_free(v);
		}
		r->rc[a->k] = rc;
		atomic_store_explicit(&r->done[a->k], i, memory_order_release);
	}
}

/* Proves: of several threads completing (and sometimes cancelling) one
 * future at once, exactly one gets 0; the others -EALREADY, or -ECANCELED
 * after the cancel won; the result and value are the winner's. */
static void test_future_race_many_completers(void **state)
{
	mcrace_t *r = calloc(1, sizeof *r);
	mcarg_t a[MC_THREADS];
	pthread_t th[MC_THREADS];
	unsigned seed = 0x6c8e9cf5u;

	(void)state;
	assert_non_null(r);
	vals_reset();
	for (int k = 0; k < MC_THREADS; k++) {
		a[k] = (mcarg_t){r, k};
		assert_int_equal(pthread_create(&th[k], NULL, mc_thread, &a[k]),
				 0);
	}
	for (long i = 1; i <= MC_ROUNDS; i++) {
		unsigned n = 0;
		int winner = -1, res = -1;

		assert_int_equal(coev_future_new(&r->f), 0);
		for (int k = 0; k < MC_THREADS; k++)
			r->spin[k] = rnd_next(&seed) % 256;
		atomic_store_explicit(&r->go, i, memory_order_release);
		for (int k = 0; k < MC_THREADS; k++)
			while (atomic_load_explicit(&r->done[k],
						    memory_order_acquire) < i)
				relax(&n);
		for (int k = 0; k < MC_THREADS; k++) {
			if (r->rc[k] == 0) {
				if (winner >= 0)
					fail_msg("round %ld: %d and %d won", i,
						 winner, k);
				winner = k;
			}
		}
		if (winner < 0)
			fail_msg("round %ld: nobody won", i);
		int cancel_won = winner == 0 && (i & 3) == 0;
		for (int k = 0; k < MC_THREADS; k++)
			if (k != winner &&
			    r->rc[k] != (cancel_won ? -ECANCELED : -EALREADY))
				fail_msg("round %ld: loser %d got %d", i, k,
					 r->rc[k]);
		assert_int_equal(coev_future_poll(r->f, &res), 0);
		assert_int_equal(coev_future_cancelled(r->f), cancel_won);
		if (cancel_won) {
			assert_int_equal(res, -ECANCELED);
			assert_null(coev_future_value(r->f));
		} else {
			const val_t *v = coev_future_value(r->f);
			assert_int_equal(res, winner);
			assert_non_null(v);
			assert_int_equal(v->id, winner);
		}
		coev_future_release(r->f);
	}
	atomic_store(&r->quit, 1);
	for (int k = 0; k < MC_THREADS; k++)
		pthread_join(th[k], NULL);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
	free(r);
}

/* ---- late completions ------------------------------------------------------ */

typedef struct late {
	coev_future_t *fw, *fa; /* waited with wait / with await */
	coev_future_t *cb_f;	/* the future on_done saw */
	atomic_int cb_runs;
	pthread_t cb_thread;
	atomic_int arrived;
	int rc_w, rc_a;
} late_t;

static void late_cb(coev_future_t *f, void *arg)
{
	late_t *l = arg;
	int res = 0;

	/* f is alive here on the callback's reference. */
	TU_CHECK_EQ(coev_future_poll(f, &res), 0);
	TU_CHECK_EQ(res, 8);
	const val_t *v = coev_future_value(f);
	TU_CHECK(v && v->magic == VAL_MAGIC && v->id == 8);
	l->cb_f = f;
	l->cb_thread = pthread_self();
	atomic_fetch_add(&l->cb_runs, 1);
}

static int late_waiter_w(void *arg)
{
	late_t *l = arg;

	atomic_fetch_add(&l->arrived, 1);
	l->rc_w = coev_future_wait(l->fw, NULL);
	coev_future_release(l->fw); /* the waiter's reference */
	return 0;
}

static int late_waiter_a(void *arg)
{
	late_t *l = arg;

	TU_CHECK_EQ(coev_future_on_done(l->fw, late_cb, l), 0);
	atomic_fetch_add(&l->arrived, 1);
	l->rc_a = coev_future_await_dl(l->fa, coev_now() + COEV_MSEC(10), NULL);
	coev_future_release(l->fa);
	return 0;
}

typedef struct late_done {
	late_t *l;
	int rc_w, rc_a;
} late_done_t;

static void *late_completer(void *arg)
{
	late_done_t *d = arg;
	val_t *v = val_new(8);

	d->rc_w = coev_future_complete(d->l->fw, 8, v, val_free);
	if (d->rc_w != 0)
		val_free(v);
	v = val_new(9);
	d->rc_a = coev_future_complete(d->l->fa, 9, v, val_free);
	if (d->rc_a != 0)
		val_free(v);
	/* The callback's producer references; the last ones. */
	coev_future_release(d->l->fw);
	coev_future_release(d->l->fa);
	return NULL;
}

/* Proves: a completion from a thread that arrives after its waiters gave
 * up and released their references, and after the runtime was shut down
 * and freed, is safe: wait's future takes it (value freed once, on_done
 * callback run on the completing thread, holding f alive), await's
 * refuses it (-ECANCELED, value left to the caller). Run under ASan. */
static void test_future_late_completion_after_rt_free(void **state)
{
	late_t l = {0};
	late_done_t d = {.l = &l};
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *tw, *ta;
	pthread_t th;

	(void)state;
	vals_reset();
	assert_int_equal(coev_future_new(&l.fw), 0);
	assert_int_equal(coev_future_new(&l.fa), 0);
	/* One reference each for the tasks; ours go to the completer. */
	coev_future_ref(l.fw);
	coev_future_ref(l.fa);
	assert_int_equal(coev_rt_spawn(rt, "w", late_waiter_w, &l, &tw), 0);
	assert_int_equal(coev_rt_spawn(rt, "a", late_waiter_a, &l, &ta), 0);
	/* The await task has timed out and ended; the wait task waits. */
	assert_int_equal(coev_join(ta, NULL), 0);
	assert_int_equal(tu_wait_parked(rt, tw, COEV_WAIT_FUTURE, l.fw), 0);
	assert_int_equal(coev_detach(tw), 0);
	assert_int_equal(atomic_load(&l.arrived), 2);
	/* Cancels the wait task; the await one timed out already. */
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(l.rc_w, -ECANCELED);
	assert_int_equal(l.rc_a, -ETIMEDOUT);
	assert_int_equal(coev_future_cancelled(l.fw), 0);
	assert_int_equal(coev_future_cancelled(l.fa), 1);
	assert_int_equal(atomic_load(&l.cb_runs), 0);
	assert_int_equal(pthread_create(&th, NULL, late_completer, &d), 0);
	pthread_join(th, NULL);
	assert_int_equal(d.rc_w, 0);
	assert_int_equal(d.rc_a, -ECANCELED);
	assert_int_equal(atomic_load(&l.cb_runs), 1);
	assert_true(pthread_equal(l.cb_thread, th));
	/* Both futures are gone, and with them exactly the one value. */
	assert_int_equal(atomic_load(&val_allocs), 2);
	assert_int_equal(atomic_load(&val_frees), 2);
	tu_assert_no_failures();
}

/* A task still waiting (shielded) when the shutdown deadline passes is
 * abandoned, and coev_rt_free releases it: its wait must not be left in
 * the future for a late completion to find. */
static coev_future_t *aband_f;

static int aband_waiter(void *arg)
{
	(void)arg;
	coev_shield_begin();
	coev_future_wait(aband_f, NULL);
	coev_shield_end();
	return 0;
}

static void child_abandoned_waiter(void *arg)
{
	coev_config_t cfg;
	coev_rt_t *rt;
	coev_task_t *t;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	coev_rt_new(&cfg, &rt);
	coev_future_new(&aband_f);
	coev_rt_spawn(rt, "abandoned", aband_waiter, NULL, &t);
	fprintf(stderr, "parked: %d\n",
		tu_wait_parked(rt, t, COEV_WAIT_FUTURE, aband_f));
	coev_detach(t);
	fprintf(stderr, "left: %d\n",
		coev_rt_shutdown(rt, coev_now() + COEV_MSEC(30)));
	coev_rt_free(rt);
	fprintf(stderr, "late set: %d\n", coev_future_set(aband_f, 1));
	coev_future_release(aband_f);
	fprintf(stderr, "released\n");
}

/* Proves: a completion after coev_rt_free is safe even when the future's
 * waiter was a task abandoned at shutdown (still waiting, shielded, when
 * the deadline passed): the completion and the last release do not touch
 * the freed task or its stack. In a child: the failure is a crash. */
static void test_future_late_completion_abandoned_waiter(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_abandoned_waiter, NULL, res), 0);
	int ok = WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0 &&
		 strstr(res->out, "parked: 0") && strstr(res->out, "left: 1") &&
		 strstr(res->out, "late set: 0") &&
		 strstr(res->out, "released");
	if (!ok) {
		if (WIFSIGNALED(res->status))
			fprintf(stderr, "child killed by signal %d\n",
				WTERMSIG(res->status));
		tu_child_dump(res);
	}
	free(res);
	assert_true(ok);
}

/* ---- many waiters -------------------------------------------------------- */

#define MW_TASKS 1000
#define MW_THREADS 4
#define MW_ROUNDS TU_SCALE(5, 3, 2)

typedef struct mw {
	coev_future_t *f;
	atomic_int arrived, finished, bad;
	const void *value;
	int result;
} mw_t;

static int mw_wait(mw_t *m, int form)
{
	int res = -1, rc;

	atomic_fetch_add(&m->arrived, 1);
	switch (form & 3) {
	case 0: rc = coev_future_wait(m->f, &res); break;
	case 1: rc = coev_future_wait_dl(m->f, tu_guard(), &res); break;
	case 2: rc = coev_future_await(m->f, &res); break;
	default: rc = coev_future_await_dl(m->f, tu_guard(), &res); break;
	}
	if (rc != 0 || res != m->result || coev_future_value(m->f) != m->value)
		atomic_fetch_add(&m->bad, 1);
	atomic_fetch_add(&m->finished, 1);
	return rc;
}

static int mw_task(void *arg)
{
	mw_t *m = arg;

	return mw_wait(m, (int)(coev_task_id(coev_self()) & 3));
}

typedef struct mw_th {
	mw_t *m;
	tu_thread_at_t at;
} mw_th_t;

static void *mw_thread(void *arg)
{
	mw_th_t *w = arg;

	TU_THREAD_AT(&w->at);
	mw_wait(w->m, 1);
	return NULL;
}

/* Proves: one completion from a plain thread wakes 1000 tasks (on both
 * workers, every wait form) and some blocked threads; all see the same
 * result and borrowed value; the value is freed once, after all. */
static void test_future_many_waiters(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	mw_t *m = calloc(1, sizeof *m);
	coev_task_t **t = calloc(MW_TASKS, sizeof *t);
	pthread_t th[MW_THREADS];
	mw_th_t tw[MW_THREADS];

	(void)state;
	assert_non_null(m);
	assert_non_null(t);
	vals_reset();
	for (int round = 0; round < MW_ROUNDS; round++) {
		val_t *v = val_new(round);

		atomic_store(&m->arrived, 0);
		atomic_store(&m->finished, 0);
		m->result = 1000 + round;
		m->value = v;
		assert_int_equal(coev_future_new(&m->f), 0);
		for (int i = 0; i < MW_TASKS; i++)
			assert_int_equal(
				coev_rt_spawn(rt, "mw", mw_task, m, &t[i]), 0);
		for (int i = 0; i < MW_THREADS; i++) {
			tw[i].m = m;
			assert_int_equal(
				pthread_create(&th[i], NULL, mw_thread, &tw[i]),
				0);
		}
		assert_int_equal(tu_thread_wait_at_least(&m->arrived,
							 MW_TASKS + MW_THREADS),
				 0);
		/* Every waiter is queued on f before it is completed. */
		assert_int_equal(
			tu_wait_parked_n(rt, COEV_WAIT_FUTURE, m->f, MW_TASKS),
			0);
		for (int i = 0; i < MW_THREADS; i++)
			assert_int_equal(tu_wait_thread_parked(&tw[i].at), 0);
		assert_int_equal(atomic_load(&m->finished), 0);
		assert_int_equal(
			coev_future_complete(m->f, m->result, v, val_free), 0);
		for (int i = 0; i < MW_TASKS; i++) {
			int r = -1;
			assert_int_equal(coev_join(t[i], &r), 0);
			assert_int_equal(r, 0);
		}
		for (int i = 0; i < MW_THREADS; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(atomic_load(&m->finished),
				 MW_TASKS + MW_THREADS);
		assert_int_equal(atomic_load(&m->bad), 0);
		assert_int_equal(vals_live(), 1);
		coev_future_release(m->f);
		assert_int_equal(vals_live(), 0);
	}
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	free(t);
	free(m);
	tu_assert_no_failures();
}

/* ---- on_done callbacks ----------------------------------------------------- */

typedef struct cbrec {
	int order[8];
	atomic_int n;
	pthread_t thread[8];
	int res[8];
	int cancelled[8];
} cbrec_t;

typedef struct cbarg {
	cbrec_t *rec;
	int id;
} cbarg_t;

static void rec_cb(coev_future_t *f, void *arg)
{
	cbarg_t *a = arg;
	int k = atomic_fetch_add(&a->rec->n, 1);

	if (k >= 8)
		return;
	a->rec->order[k] = a->id;
	a->rec->thread[k] = pthread_self();
	TU_CHECK_EQ(coev_future_poll(f, &a->rec->res[k]), 0);
	a->rec->cancelled[k] = coev_future_cancelled(f);
	/* A completion from inside a callback is refused, not deadlocked. */
	TU_CHECK(coev_future_set(f, 0) != 0);
}

static void *complete_thread(void *arg)
{
	coev_future_set(arg, 21);
	return NULL;
}

/* Proves: callbacks run once each, in registration order, on the
 * completing thread after the completion; at once (before on_done returns)
 * on an already complete future; on a cancel too. */
static void test_future_on_done_order_and_threads(void **state)
{
	cbrec_t rec;
	cbarg_t a[4];
	coev_future_t *f;
	pthread_t th;

	(void)state;
	memset(&rec, 0, sizeof rec);
	for (int i = 0; i < 4; i++)
		a[i] = (cbarg_t){&rec, i};
	assert_int_equal(coev_future_new(&f), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(coev_future_on_done(f, rec_cb, &a[i]), 0);
	assert_int_equal(atomic_load(&rec.n), 0);
	assert_int_equal(pthread_create(&th, NULL, complete_thread, f), 0);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&rec.n), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rec.order[i], i);
		assert_true(pthread_equal(rec.thread[i], th));
		assert_int_equal(rec.res[i], 21);
		assert_int_equal(rec.cancelled[i], 0);
	}
	/* Complete already: at once, here. */
	assert_int_equal(coev_future_on_done(f, rec_cb, &a[3]), 0);
	assert_int_equal(atomic_load(&rec.n), 4);
	assert_int_equal(rec.order[3], 3);
	assert_true(pthread_equal(rec.thread[3], pthread_self()));
	/* Nothing runs twice on later completions. */
	assert_int_equal(coev_future_set(f, 1), -EALREADY);
	assert_int_equal(coev_future_cancel(f), -EALREADY);
	assert_int_equal(atomic_load(&rec.n), 4);
	coev_future_release(f);

	/* On a cancel. */
	memset(&rec, 0, sizeof rec);
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_on_done(f, rec_cb, &a[0]), 0);
	assert_int_equal(coev_future_on_done(f, rec_cb, &a[1]), 0);
	assert_int_equal(coev_future_cancel(f), 0);
	assert_int_equal(atomic_load(&rec.n), 2);
	assert_int_equal(rec.order[0], 0);
	assert_int_equal(rec.order[1], 1);
	assert_int_equal(rec.res[0], -ECANCELED);
	assert_int_equal(rec.cancelled[1], 1);
	coev_future_release(f);
	tu_assert_no_failures();
}

/* Callback 0 registers callback 2 while the completer runs 0 and 1. */
static void nesting_cb(coev_future_t *f, void *arg)
{
	cbarg_t *a = arg;

	rec_cb(f, a);
	TU_CHECK_EQ(coev_future_on_done(f, rec_cb, a + 2), 0);
	/* Queued behind callback 1, not run here. */
	TU_CHECK_EQ(atomic_load(&a->rec->n), 1);
}

/* Proves: a callback registered on a complete future while the completing
 * thread still runs the earlier ones (here: from one of them) runs after
 * them, in registration order, on that thread, not at once (the fuzz
 * future harness found a late registration passing a posted completion's
 * callbacks). */
static void test_future_on_done_while_callbacks_run(void **state)
{
	cbrec_t rec;
	cbarg_t a[3];
	coev_future_t *f;

	(void)state;
	memset(&rec, 0, sizeof rec);
	for (int i = 0; i < 3; i++)
		a[i] = (cbarg_t){&rec, i};
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_on_done(f, nesting_cb, &a[0]), 0);
	assert_int_equal(coev_future_on_done(f, rec_cb, &a[1]), 0);
	assert_int_equal(coev_future_set(f, 5), 0);
	assert_int_equal(atomic_load(&rec.n), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rec.order[i], i);
		assert_int_equal(rec.res[i], 5);
	}
	/* Done with its callbacks: a later one runs at once. */
	assert_int_equal(coev_future_on_done(f, rec_cb, &a[1]), 0);
	assert_int_equal(atomic_load(&rec.n), 4);
	coev_future_release(f);
	tu_assert_no_failures();
}

typedef struct keep {
	coev_future_t *drop; /* a reference the callback gives back */
	atomic_int runs;
	long frees_in_cb;
} keep_t;

static void keep_cb(coev_future_t *f, void *arg)
{
	keep_t *k = arg;
	int res = 0;

	/* The last reference but the callback's own. */
	coev_future_release(k->drop);
	/* Still alive: the value is not freed yet, the state readable. */
	k->frees_in_cb = atomic_load(&val_frees);
	TU_CHECK_EQ(coev_future_poll(f, &res), 0);
	TU_CHECK_EQ(res, 4);
	const val_t *v = coev_future_value(f);
	TU_CHECK(v && v->magic == VAL_MAGIC);
	atomic_fetch_add(&k->runs, 1);
}

/* Proves: the callback's reference keeps f (and its value) alive after
 * every other reference was released, even one released inside the
 * callback; the value is freed once the callback's reference goes. */
static void test_future_on_done_reference_keeps_f(void **state)
{
	keep_t k = {0};
	coev_future_t *f;

	(void)state;
	vals_reset();
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_on_done(f, keep_cb, &k), 0);
	k.drop = f; /* our reference: the callback releases it */
	assert_int_equal(coev_future_complete(f, 4, val_new(4), val_free), 0);
	/* f may be gone now: not touched again. */
	assert_int_equal(atomic_load(&k.runs), 1);
	assert_int_equal(k.frees_in_cb, 0);
	assert_int_equal(atomic_load(&val_frees), 1);
	assert_int_equal(vals_live(), 0);
	tu_assert_no_failures();
}

/* Registration racing completion. */
#define OD_ROUNDS TU_SCALE(20000, 10000, 10000)
#define OD_CBS 6

typedef struct odrace {
	coev_future_t *f;
	atomic_long go, done;
	atomic_int quit;
	atomic_int runs[OD_CBS];
	unsigned spin;
} odrace_t;

static void od_cb(coev_future_t *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void *od_completer(void *arg)
{
	odrace_t *r = arg;

	for (long i = 1;; i++) {
		unsigned n = 0;

		while (atomic_load_explicit(&r->go, memory_order_acquire) < i) {
			if (atomic_load(&r->quit))
				return NULL;
			relax(&n);
		}
		spin_pauses(r->spin);
		TU_CHECK_EQ(coev_future_complete(r->f, 1, val_new(i), val_free),
			    0);
		coev_future_release(r->f);
		atomic_store_explicit(&r->done, i, memory_order_release);
	}
}

/* Proves: callbacks registered while another thread completes the future
 * each run exactly once, and their references are all given back (the
 * value is freed). */
static void test_future_on_done_races_completion(void **state)
{
	odrace_t *r = calloc(1, sizeof *r);
	pthread_t th;
	unsigned seed = 0x1b873593u;

	(void)state;
	assert_non_null(r);
	vals_reset();
	assert_int_equal(pthread_create(&th, NULL, od_completer, r), 0);
	for (long i = 1; i <= OD_ROUNDS; i++) {
		coev_future_t *f;
		unsigned n = 0;

		assert_int_equal(coev_future_new(&f), 0);
		r->f = coev_future_ref(f);
		r->spin = rnd_next(&seed) % 1024;
		for (int k = 0; k < OD_CBS; k++)
			atomic_store(&r->runs[k], 0);
		atomic_store_explicit(&r->go, i, memory_order_release);
		for (int k = 0; k < OD_CBS; k++)
			assert_int_equal(
				coev_future_on_done(f, od_cb, &r->runs[k]), 0);
		coev_future_release(f);
		while (atomic_load_explicit(&r->done, memory_order_acquire) < i)
			relax(&n);
		for (int k = 0; k < OD_CBS; k++)
			if (atomic_load(&r->runs[k]) != 1)
				fail_msg("round %ld: callback %d ran %d times",
					 i, k, atomic_load(&r->runs[k]));
		if (vals_live() != 0)
			fail_msg("round %ld: %ld values live", i, vals_live());
	}
	atomic_store(&r->quit, 1);
	pthread_join(th, NULL);
	tu_assert_no_failures();
	free(r);
}

/* ---- misuse ---------------------------------------------------------------- */

static coev_future_t *misuse_f;

static int misuse_waiter(void *arg)
{
	(void)arg;
	coev_future_wait(misuse_f, NULL); /* holds no reference: a bug */
	return 0;
}

static int misuse_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	coev_future_new(&misuse_f);
	coev_spawn_named("stuck", misuse_waiter, NULL, &t);
	parked(t, COEV_WAIT_FUTURE, misuse_f);
	coev_future_release(misuse_f);
	fprintf(stderr, "release with a waiter returned\n");
	return 0;
}

static void child_release_with_waiter(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	coev_run(misuse_main, NULL, &cfg);
}

/* Proves: releasing the last reference while a task waits aborts with a
 * message naming the future. */
static void test_future_release_with_waiter_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_release_with_waiter, NULL, res),
			 0);
	if (!tu_child_signaled(res, SIGABRT) || !strstr(res->out, "future"))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "future"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_future_null_args),
		cmocka_unit_test(test_future_second_completion_is_refused),
		cmocka_unit_test(test_future_completion_after_cancel),
		cmocka_unit_test(test_future_value_ownership),
		cmocka_unit_test(test_future_wait_from_task),
		cmocka_unit_test(test_future_wait_from_plain_thread),
		cmocka_unit_test(test_future_wait_from_loop_callback),
		cmocka_unit_test(test_future_cancel_of_the_waiting_task),
		cmocka_unit_test(test_future_race_completion_vs_timeout),
		cmocka_unit_test(test_future_race_completion_vs_cancel),
		cmocka_unit_test(test_future_race_many_completers),
		cmocka_unit_test(test_future_late_completion_after_rt_free),
		cmocka_unit_test(test_future_late_completion_abandoned_waiter),
		cmocka_unit_test(test_future_many_waiters),
		cmocka_unit_test(test_future_on_done_order_and_threads),
		cmocka_unit_test(test_future_on_done_while_callbacks_run),
		cmocka_unit_test(test_future_on_done_reference_keeps_f),
		cmocka_unit_test(test_future_on_done_races_completion),
		cmocka_unit_test(test_future_release_with_waiter_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
