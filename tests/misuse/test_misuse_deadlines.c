/* SPDX-License-Identifier: MIT */
/*
 * tests/misuse/test_misuse_deadlines.c — extreme deadlines and timeouts:
 * past, zero, negative and INT64_MIN deadlines only try, from tasks and
 * from plain threads; far ones (INT64_MAX - 1, COEV_FOREVER) wait and do
 * not wrap; relative timeouts saturate; coev_timer_set and coev_blocking
 * at the edges. Rows of docs/GUARANTEES.md.
 *
 * The plain-thread waits run in a child under an alarm: a wait that
 * ignored its past deadline would block until the object was released,
 * which here is never.
 */
#include "tests/misuse/misuse_util.h"

/* ---- deadlines --------------------------------------------------------------- */

/* Proves: coev_deadline saturates at COEV_FOREVER instead of overflowing,
 * and treats zero and negative timeouts (INT64_MIN included) as "now". */
static void test_misuse_deadline_from_extreme_timeouts(void **state)
{
	static const coev_time_t huge[] = {INT64_MAX, INT64_MAX - 1,
					   INT64_MAX - 1000};
	static const coev_time_t none[] = {0, -1, INT64_MIN, INT64_MIN + 1};

	(void)state;
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
		assert_true(coev_deadline(huge[i]) == COEV_FOREVER);
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		coev_time_t before = coev_now();
		coev_time_t d = coev_deadline(none[i]);
		assert_true(d >= before && d <= coev_now());
	}
	coev_time_t d = coev_deadline(COEV_SEC(1));
	assert_true(d > coev_now() && d < COEV_FOREVER);
}

/* Objects that are not ready, for the waits below. */
typedef struct blocked {
	coev_mutex_t m, cm; /* m held by someone else; cm for the cond */
	coev_rwlock_t rw;   /* write-held by someone else */
	coev_sem_t sem;	    /* no permit */
	coev_event_t ev;    /* clear */
	coev_cond_t cond;
	coev_wg_t wg;	    /* count 1 */
	coev_barrier_t bar; /* two parties */
	coev_once_t once;   /* being run by someone else */
	coev_chan_t *ch;    /* rendezvous, nobody on the other side */
	coev_future_t *fut; /* pending */
	coev_task_t *task;  /* waiting at the gate */
	int pipe[2];	    /* nothing to read */
	atomic_int once_running;
} blocked_t;

static int once_blocker(void *arg)
{
	blocked_t *b = arg;

	atomic_store(&b->once_running, 1);
	return wait_gate(NULL);
}

static int run_once_blocker(void *arg)
{
	blocked_t *b = arg;

	return coev_once(&b->once, once_blocker, b);
}

static int never_fn(void *arg)
{
	(void)arg;
	return 0;
}

/* Every wait with deadline dl on b's objects: -ETIMEDOUT, promptly.
 * From a task or a plain thread. */
static void check_waits_time_out(blocked_t *b, coev_time_t dl)
{
	coev_time_t t0 = coev_now();
	int v = 0, r = 0;
	coev_task_t *tasks[1] = {b->task};
	coev_sel_t sel[2] = {{b->ch, COEV_SEL_SEND, &v, 0},
			     {b->ch, COEV_SEL_RECV, &v, 0}};

	TU_CHECK_EQ(coev_mutex_lock_dl(&b->m, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_rwlock_rdlock_dl(&b->rw, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_rwlock_wrlock_dl(&b->rw, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_sem_acquire_dl(&b->sem, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_event_wait_dl(&b->ev, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_mutex_lock(&b->cm), 0);
	TU_CHECK_EQ(coev_cond_wait_dl(&b->cond, &b->cm, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_mutex_trylock(&b->cm), -EBUSY); /* still ours */
	coev_mutex_unlock(&b->cm);
	TU_CHECK_EQ(coev_wg_wait_dl(&b->wg, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_barrier_wait_dl(&b->bar, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_once_dl(&b->once, never_fn, NULL, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_chan_send_dl(b->ch, &v, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_chan_recv_dl(b->ch, &v, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_select_dl(sel, 2, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_future_wait_dl(b->fut, dl, &r), -ETIMEDOUT);
	TU_CHECK_EQ(coev_join_dl(b->task, dl, &r), -ETIMEDOUT);
	TU_CHECK_EQ(coev_wait_any(tasks, 1, dl), -ETIMEDOUT);
	TU_CHECK_EQ(coev_gather_dl(tasks, 1, &r, dl), -ETIMEDOUT);
	TU_CHECK(tasks[0] == b->task); /* not consumed */
	TU_CHECK_EQ(coev_future_poll(b->fut, NULL), -EAGAIN);
	TU_CHECK_MSG(coev_now() - t0 < PROMPT, "deadline %lld took %lld ns",
		     (long long)dl, (long long)(coev_now() - t0));
}

/* Sets up b; the caller holds m and rw (the waits come from another
 * task or thread). */
static void blocked_init(blocked_t *b)
{
	memset(b, 0, sizeof *b);
	TU_CHECK_EQ(coev_mutex_init(&b->m, 0), 0);
	TU_CHECK_EQ(coev_mutex_init(&b->cm, 0), 0);
	TU_CHECK_EQ(coev_rwlock_init(&b->rw), 0);
	TU_CHECK_EQ(coev_sem_init(&b->sem, 0), 0);
	TU_CHECK_EQ(coev_event_init(&b->ev), 0);
	TU_CHECK_EQ(coev_cond_init(&b->cond), 0);
	TU_CHECK_EQ(coev_wg_init(&b->wg), 0);
	coev_wg_add(&b->wg, 1);
	TU_CHECK_EQ(coev_barrier_init(&b->bar, 2), 0);
	TU_CHECK_EQ(coev_chan_new(&b->ch, sizeof(int), 0), 0);
	TU_CHECK_EQ(coev_future_new(&b->fut), 0);
	TU_CHECK_EQ(pipe(b->pipe), 0);
	coev_fd_nonblock(b->pipe[0]);
	TU_CHECK_EQ(coev_mutex_lock(&b->m), 0);
	TU_CHECK_EQ(coev_rwlock_wrlock(&b->rw), 0);
}

static void blocked_fini(blocked_t *b)
{
	coev_mutex_unlock(&b->m);
	coev_rwlock_wrunlock(&b->rw);
	coev_mutex_destroy(&b->m);
	coev_mutex_destroy(&b->cm);
	coev_rwlock_destroy(&b->rw);
	coev_sem_destroy(&b->sem);
	coev_event_destroy(&b->ev);
	coev_cond_destroy(&b->cond);
	coev_wg_done(&b->wg);
	coev_wg_destroy(&b->wg);
	coev_barrier_destroy(&b->bar);
	coev_chan_free(b->ch);
	coev_future_release(b->fut);
	close(b->pipe[0]);
	close(b->pipe[1]);
}

static const coev_time_t past_deadlines[] = {0, -1, INT64_MIN, 1};
#define N_PAST (sizeof past_deadlines / sizeof past_deadlines[0])

static int past_checker(void *arg)
{
	blocked_t *b = arg;
	char c;

	for (size_t i = 0; i < N_PAST; i++) {
		coev_time_t dl = past_deadlines[i];
		check_waits_time_out(b, dl);
		/* Task-only waits. */
		TU_CHECK_EQ(coev_read(b->pipe[0], &c, 1, dl), -ETIMEDOUT);
		TU_CHECK_EQ(coev_wait_fd(b->pipe[0], COEV_READ, dl),
			    -ETIMEDOUT);
		/* A sleep until a past time is over at once. */
		TU_CHECK_EQ(coev_sleep_until(dl), 0);
		TU_CHECK_EQ(coev_sleep(dl), 0);
		/* A pushed past deadline ends every wait at once. */
		coev_time_t tok = coev_deadline_push(dl);
		TU_CHECK(tok >= 0);
		TU_CHECK_EQ(coev_event_wait(&b->ev), -ETIMEDOUT);
		TU_CHECK_EQ(coev_sleep(COEV_SEC(100)), -ETIMEDOUT);
		coev_deadline_pop(tok);
	}
	/* Last: an await that gives up also cancels the future. */
	TU_CHECK_EQ(coev_future_await_dl(b->fut, INT64_MIN, NULL), -ETIMEDOUT);
	return 0;
}

static int past_main(void *arg)
{
	blocked_t b;
	coev_task_t *c, *o;
	int r = 0;

	(void)arg;
	atomic_store(&gate_open, 0);
	blocked_init(&b);
	TU_CHECK_EQ(coev_spawn(wait_gate, NULL, &b.task), 0);
	TU_CHECK_EQ(coev_spawn(run_once_blocker, &b, &o), 0);
	TU_CHECK_EQ(tu_wait_at_least(&b.once_running, 1), 0);
	TU_CHECK_EQ(coev_spawn(past_checker, &b, &c), 0);
	TU_CHECK_EQ(coev_join(c, &r), 0);
	/* The future was cancelled by the await that gave up. */
	TU_CHECK_EQ(coev_future_cancelled(b.fut), 1);
	atomic_store(&gate_open, 1);
	TU_CHECK_EQ(coev_join(b.task, &r), 0);
	TU_CHECK_EQ(coev_join(o, &r), 0);
	blocked_fini(&b);

	/* A scope closed with a past deadline cancels its children and
	 * still waits for them. */
	coev_scope_t *s;
	atomic_store(&gate_open, 0);
	TU_CHECK_EQ(coev_scope_open(0, &s), 0);
	TU_CHECK_EQ(coev_scope_spawn(s, NULL, wait_gate, NULL), 0);
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_scope_close_dl(s, INT64_MIN), -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 < PROMPT);
	return 0;
}

/* Proves: from a task, a deadline of 0, -1, INT64_MIN or 1 (all past)
 * makes every wait only try: -ETIMEDOUT at once from the locks,
 * semaphore, event, condition variable (which returns holding its
 * mutex), wait group, barrier, once, channel send, receive and select,
 * future wait and await, join, wait_any, gather_dl (nothing consumed),
 * read and wait_fd; a sleep until such a deadline returns 0 at once; a
 * pushed past deadline ends waits at once; and scope_close_dl with
 * INT64_MIN cancels the children and waits for them. */
static void test_misuse_past_deadlines_only_try_in_tasks(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(past_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void *plain_checker(void *arg)
{
	blocked_t *b = arg;

	for (size_t i = 0; i < N_PAST; i++)
		check_waits_time_out(b, past_deadlines[i]);
	return NULL;
}

static void plain_past_body(void *arg)
{
	blocked_t b;
	coev_task_t *o;
	pthread_t th;
	int r = 0;

	(void)arg;
	coev_rt_t *rt = child_rt(1);
	atomic_store(&gate_open, 0);
	blocked_init(&b); /* this thread holds m and rw */
	TU_CHECK_EQ(coev_rt_spawn(rt, "gate", wait_gate, NULL, &b.task), 0);
	TU_CHECK_EQ(coev_rt_spawn(rt, "once", run_once_blocker, &b, &o), 0);
	TU_CHECK_EQ(tu_thread_wait_at_least(&b.once_running, 1), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, plain_checker, &b), 0);
	pthread_join(th, NULL);
	atomic_store(&gate_open, 1);
	TU_CHECK_EQ(coev_join(b.task, &r), 0);
	TU_CHECK_EQ(coev_join(o, &r), 0);
	blocked_fini(&b);
	coev_rt_free(rt);
}

/* Proves: the same waits from a plain thread, which blocks rather than
 * suspends, also only try with a past deadline (0, -1, INT64_MIN, 1):
 * -ETIMEDOUT at once, never a hang or a busy wait until the object is
 * released. In a child under an alarm. */
static void test_misuse_past_deadlines_only_try_in_plain_threads(void **state)
{
	(void)state;
	expect_clean_child(plain_past_body, NULL);
}

/* ---- deadlines far away -------------------------------------------------- */

#define FAR (INT64_MAX - 1)

typedef struct far {
	coev_event_t ev;
	atomic_int waiting;
	int rc_far, rc_forever;
	coev_time_t took;
} far_t;

static int far_waiter(void *arg)
{
	far_t *f = arg;
	coev_time_t t0 = coev_now();

	atomic_fetch_add(&f->waiting, 1);
	f->rc_far = coev_event_wait_dl(&f->ev, FAR);
	f->rc_forever = coev_event_wait_dl(&f->ev, COEV_FOREVER);
	f->took = coev_now() - t0;
	return 0;
}

static int far_sleeper(void *arg)
{
	intptr_t how = (intptr_t)arg;

	switch (how) {
	case 0: return coev_sleep_until(FAR);
	case 1: return coev_sleep(INT64_MAX);
	default: return coev_sleep(FAR);
	}
}

static int far_main(void *arg)
{
	far_t f;
	coev_task_t *w, *s[3];
	int r = 0;

	(void)arg;
	memset(&f, 0, sizeof f);
	TU_CHECK_EQ(coev_event_init(&f.ev), 0);
	TU_CHECK_EQ(coev_spawn(far_waiter, &f, &w), 0);
	for (intptr_t i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn(far_sleeper, (void *)i, &s[i]), 0);
	TU_CHECK_EQ(tu_wait_at_least(&f.waiting, 1), 0);
	/* A negative check: time for a wrong timeout to show itself. */
	coev_sleep(COEV_MSEC(30));
	/* Nothing timed out: the deadlines are far, not past. */
	int rc = coev_join_dl(w, coev_now(), &r);
	TU_CHECK_EQ(rc, -ETIMEDOUT);
	coev_event_set(&f.ev);
	if (rc == -ETIMEDOUT)
		TU_CHECK_EQ(coev_join_dl(w, tu_guard(), &r), 0);
	TU_CHECK_EQ(f.rc_far, 0);
	TU_CHECK_EQ(f.rc_forever, 0);
	TU_CHECK(f.took >= COEV_MSEC(30));
	for (int i = 0; i < 3; i++) {
		int rc = coev_join_dl(s[i], coev_now(), &r);
		TU_CHECK_EQ(rc, -ETIMEDOUT);
		if (rc != -ETIMEDOUT)
			continue; /* joined already: the handle is spent */
		TU_CHECK_EQ(coev_cancel(s[i]), 0);
		TU_CHECK_EQ(coev_join_dl(s[i], tu_guard(), &r), 0);
		TU_CHECK_EQ(r, -ECANCELED);
	}
	coev_event_destroy(&f.ev);
	return 0;
}

typedef struct far_thread {
	coev_event_t ev;
	coev_task_t *t;
	atomic_int waiting; /* 1: in the event wait, 2: in the join */
	int rc_ev, rc_join, r;
	tu_thread_at_t at;
} far_thread_t;

static void *far_thread(void *arg)
{
	far_thread_t *f = arg;

	TU_THREAD_AT(&f->at);
	atomic_store(&f->waiting, 1);
	f->rc_ev = coev_event_wait_dl(&f->ev, FAR);
	atomic_store(&f->waiting, 2);
	f->rc_join = coev_join_dl(f->t, FAR, &f->r);
	return NULL;
}

/* Proves: a deadline of INT64_MAX - 1 (far, not forever) and COEV_FOREVER
 * do not overflow into a past deadline: from a task, an event wait lasts
 * until the event is set and sleeps until FAR, for INT64_MAX and for FAR
 * nanoseconds last until cancelled; from a plain thread an event wait and
 * a join with deadline FAR last until the event and the task's end. */
static void test_misuse_far_deadlines_wait(void **state)
{
	far_thread_t f;
	pthread_t th;

	(void)state;
	assert_int_equal(tu_run_main(far_main, NULL, 2), 0);
	tu_assert_no_failures();

	memset(&f, 0, sizeof f);
	atomic_store(&gate_open, 0);
	coev_rt_t *rt = tu_new_rt(1);
	assert_int_equal(coev_event_init(&f.ev), 0);
	assert_int_equal(coev_rt_spawn(rt, NULL, wait_gate, NULL, &f.t), 0);
	assert_int_equal(pthread_create(&th, NULL, far_thread, &f), 0);
	/* Each wait blocks (a past deadline would return at once) and
	 * lasts until its event. */
	assert_int_equal(tu_thread_wait_at_least(&f.waiting, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&f.at), 0);
	assert_int_equal(atomic_load(&f.waiting), 1);
	coev_event_set(&f.ev);
	assert_int_equal(tu_thread_wait_at_least(&f.waiting, 2), 0);
	assert_int_equal(tu_wait_thread_parked(&f.at), 0);
	atomic_store(&gate_open, 1);
	pthread_join(th, NULL);
	assert_int_equal(f.rc_ev, 0);
	assert_int_equal(f.rc_join, 0);
	assert_int_equal(f.r, 0);
	coev_event_destroy(&f.ev);
	coev_rt_free(rt);
}

/* ---- bridge: timers ---------------------------------------------------------- */

typedef struct tfire {
	atomic_int fired;
} tfire_t;

static void tfire_cb(coev_timer_t *tm, void *arg)
{
	(void)tm;
	atomic_fetch_add(&((tfire_t *)arg)->fired, 1);
}

static int timer_main(void *arg)
{
	tfire_t f = {0};
	coev_timer_t *tm;

	(void)arg;
	TU_CHECK_EQ(coev_pin(), 0);
	TU_CHECK_EQ(coev_timer_new(tfire_cb, &f, &tm), 0);
	TU_CHECK_EQ(coev_timer_set(tm, -1), -EINVAL);
	TU_CHECK_EQ(coev_timer_set(tm, INT64_MIN), -EINVAL);
	/* Far: armed, does not fire. */
	TU_CHECK_EQ(coev_timer_set(tm, FAR), 0);
	coev_sleep(COEV_MSEC(30)); /* a negative check: time to fire wrongly */
	TU_CHECK_EQ(atomic_load(&f.fired), 0);
	/* Past (but not negative): fires at the loop's next turn. */
	TU_CHECK_EQ(coev_timer_set(tm, 1), 0);
	TU_CHECK_EQ(tu_wait_at_least(&f.fired, 1), 0);
	/* COEV_FOREVER disarms. */
	TU_CHECK_EQ(coev_timer_set(tm, coev_now() + COEV_MSEC(10)), 0);
	TU_CHECK_EQ(coev_timer_set(tm, COEV_FOREVER), 0);
	coev_sleep(COEV_MSEC(30)); /* a negative check: the old 10 ms passes */
	TU_CHECK_EQ(atomic_load(&f.fired), 1);
	coev_timer_free(tm);
	TU_CHECK_EQ(coev_unpin(), 0);
	return 0;
}

/* Proves: coev_timer_set refuses negative deadlines with -EINVAL, arms a
 * far one (INT64_MAX - 1) without firing it, fires a past positive one at
 * once, and disarms on COEV_FOREVER. */
static void test_misuse_timer_extreme_deadlines(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(timer_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- blocking pool with a past deadline ------------------------------------- */

static atomic_int pool_ran;

static int pool_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&pool_ran, 1);
	return 9;
}

static int pool_past_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++) {
		int r = -1, before = atomic_load(&pool_ran);
		int rc = coev_blocking(pool_job, NULL, i % 2 ? -1 : INT64_MIN,
				       &r);
		int ran = atomic_load(&pool_ran) - before;
		/* Either it never ran, or it ran and we have its result. */
		TU_CHECK_MSG(rc == -ETIMEDOUT || rc == 0, "rc %d", rc);
		if (rc == 0) {
			TU_CHECK_EQ(r, 9);
			TU_CHECK_EQ(ran, 1);
		} else {
			TU_CHECK_EQ(r, -1);
			/* A job never started is never run later. */
			coev_sleep(COEV_MSEC(1));
			TU_CHECK_EQ(atomic_load(&pool_ran) - before, 0);
		}
	}
	return 0;
}

/* Proves: coev_blocking with a past deadline either runs the job and
 * returns its result (a pool thread took it at once) or returns
 * -ETIMEDOUT and the job never runs; never both, never a lost result. */
static void test_misuse_blocking_past_deadline(void **state)
{
	(void)state;
	atomic_store(&pool_ran, 0);
	assert_int_equal(tu_run_main(pool_past_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Children first, while the process has one thread. */
		cmocka_unit_test(
			test_misuse_past_deadlines_only_try_in_plain_threads),
		TU_FD_TEST(test_misuse_deadline_from_extreme_timeouts),
		TU_FD_TEST(test_misuse_past_deadlines_only_try_in_tasks),
		TU_FD_TEST(test_misuse_far_deadlines_wait),
		TU_FD_TEST(test_misuse_timer_extreme_deadlines),
		TU_FD_TEST(test_misuse_blocking_past_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
