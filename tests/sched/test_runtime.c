/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_runtime.c — creating, running and stopping a runtime
 * (include/coev/runtime.h): foreign threads, shutdown with pending tasks,
 * coev_run, configuration from the environment, and bad input.
 */
#include "tests/testutil.h"

#include <limits.h>
#include <pthread.h>

#include "sched/internal.h" /* white-box: joiner slots, rt->stop */

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int sleep_then_return(void *arg)
{
	coev_sleep(COEV_MSEC(2));
	return (int)(intptr_t)arg;
}

/* ---- foreign threads ---------------------------------------------------- */

#define FOREIGN_THREADS 4
#define FOREIGN_TASKS TU_SCALE(2000, 2000, 1000)

typedef struct foreign {
	coev_rt_t *rt;
	int index;
	int ok;
	int timed_out_ok;
	atomic_int *detached_ran;
} foreign_t;

static int count_and_return(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

static void *foreign_thread(void *arg)
{
	foreign_t *f = arg;
	enum { BATCH = 50 };
	coev_task_t *t[BATCH];

	for (int base = 0; base < FOREIGN_TASKS; base += BATCH) {
		for (int j = 0; j < BATCH; j++) {
			int v = f->index * 1000000 + base + j;
			int rc = coev_rt_spawn(f->rt, "from-thread",
					       j % 2 ? return_arg
						     : sleep_then_return,
					       (void *)(intptr_t)v, &t[j]);
			TU_CHECK_EQ(rc, 0);
			if (rc != 0)
				return NULL;
		}
		/* Joins block this thread until each task ends. */
		for (int j = 0; j < BATCH; j++) {
			int r = -1;
			TU_CHECK_EQ(coev_join(t[j], &r), 0);
			if (r == f->index * 1000000 + base + j)
				f->ok++;
		}
	}
	/* A join with a deadline from a thread times out too, and the
	 * handle stays valid. */
	coev_task_t *slow;
	TU_CHECK_EQ(coev_rt_spawn(f->rt, NULL, sleep_then_return,
				  (void *)(intptr_t)5, &slow),
		    0);
	int r = -1;
	int rc = coev_join_dl(slow, coev_now() - 1, &r);
	/* It may have finished already on a fast machine: both are right,
	 * but a timeout must leave the handle joinable. */
	TU_CHECK(rc == -ETIMEDOUT || rc == 0);
	if (rc == -ETIMEDOUT) {
		TU_CHECK_EQ(coev_join(slow, &r), 0);
	}
	TU_CHECK_EQ(r, 5);
	f->timed_out_ok = 1;
	/* Detached spawns from a thread. */
	for (int j = 0; j < 10; j++)
		TU_CHECK_EQ(coev_rt_spawn(f->rt, "fire-and-forget",
					  count_and_return, f->detached_ran,
					  NULL),
			    0);
	return NULL;
}

static void test_runtime_foreign_threads_spawn_and_join(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pthread_t th[FOREIGN_THREADS];
	foreign_t f[FOREIGN_THREADS];
	atomic_int detached_ran = 0;

	(void)state;
	for (int i = 0; i < FOREIGN_THREADS; i++) {
		f[i] = (foreign_t){
			.rt = rt, .index = i, .detached_ran = &detached_ran};
		assert_int_equal(
			pthread_create(&th[i], NULL, foreign_thread, &f[i]), 0);
	}
	for (int i = 0; i < FOREIGN_THREADS; i++)
		pthread_join(th[i], NULL);
	/* shutdown would cancel detached tasks that have not started yet
	 * (they would never run): let them run first. */
	for (int i = 0;
	     i < 60000 && atomic_load(&detached_ran) < 10 * FOREIGN_THREADS;
	     i++)
		tu_nap_ms(1);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(60))), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	for (int i = 0; i < FOREIGN_THREADS; i++) {
		assert_int_equal(f[i].ok, FOREIGN_TASKS);
		assert_int_equal(f[i].timed_out_ok, 1);
	}
	assert_int_equal(atomic_load(&detached_ran), 10 * FOREIGN_THREADS);
}

/* ---- shutdown ----------------------------------------------------------- */

typedef struct pending {
	atomic_int started;
	atomic_int resumed;
	atomic_int quick;
	atomic_int cancelled;
} pending_t;

/* Ignores cancellation: a shield hides it from the sleep, so shutdown can
 * only abandon it. */
static int sleep_ten_seconds(void *arg)
{
	pending_t *p = arg;

	coev_shield_begin();
	atomic_fetch_add(&p->started, 1);
	coev_sleep(COEV_SEC(10));
	atomic_fetch_add(&p->resumed, 1); /* must never happen */
	coev_shield_end();
	return 0;
}

/* Honours cancellation: shutdown ends its sleep. */
static int sleep_until_cancelled(void *arg)
{
	pending_t *p = arg;

	atomic_fetch_add(&p->started, 1);
	if (coev_sleep(COEV_SEC(60)) == -ECANCELED)
		atomic_fetch_add(&p->cancelled, 1);
	return -ECANCELED;
}

static int quick(void *arg)
{
	pending_t *p = arg;

	atomic_fetch_add(&p->quick, 1);
	return 0;
}

/* A stuck runtime fails the test after the guard instead of hanging it. */
static void wait_until_at_least(atomic_int *v, int n)
{
	assert_int_equal(tu_thread_wait_at_least(v, n), 0);
}

static void test_runtime_shutdown_reports_pending_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pending_t *p = calloc(1, sizeof *p);
	coev_task_t *held[2];

	(void)state;
	/* Five sleepers: three detached, two with handles never joined
	 * (coev_rt_free releases them); and some tasks that just finish. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(coev_rt_spawn(rt, "sleeper", sleep_ten_seconds,
					       p, NULL),
				 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(coev_rt_spawn(rt, "held-sleeper",
					       sleep_ten_seconds, p, &held[i]),
				 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(coev_rt_spawn(rt, NULL, quick, p, NULL), 0);
	/* Four that shutdown's cancel ends: they are not counted. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(coev_rt_spawn(rt, "cancellable",
					       sleep_until_cancelled, p, NULL),
				 0);
	wait_until_at_least(&p->started, 9);
	wait_until_at_least(&p->quick, 20);

	coev_time_t dl = coev_deadline(COEV_MSEC(100));
	int left = coev_rt_shutdown(rt, dl);
	coev_time_t back = coev_now();
	assert_int_equal(left, 5);
	assert_true(back >= dl); /* it waited for the deadline */
	/* Again: the same count, without waiting for anything. */
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(100))), 5);
	/* No new work once shut down. */
	coev_task_t *t = NULL;
	assert_int_equal(coev_rt_spawn(rt, NULL, quick, p, &t), -ESHUTDOWN);
	assert_int_equal(coev_rt_spawn(rt, NULL, quick, p, NULL), -ESHUTDOWN);
	/* Releases the tasks, their stacks and the workers; ASan's leak
	 * checker sees anything left. */
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&p->resumed), 0);
	assert_int_equal(atomic_load(&p->quick), 20);
	assert_int_equal(atomic_load(&p->cancelled), 4);
	free(p);
}

static void test_runtime_shutdown_when_idle_returns_zero(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pending_t p;
	coev_task_t *t;

	(void)state;
	memset(&p, 0, sizeof p);
	assert_int_equal(coev_rt_spawn(rt, NULL, quick, &p, &t), 0);
	assert_int_equal(coev_join(t, NULL), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(60))), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(60))), 0);
	coev_rt_free(rt);
	/* A runtime that never ran anything, freed without a shutdown. */
	rt = tu_new_rt(3);
	coev_rt_free(rt);
	coev_rt_free(NULL);
}

/* A task that runs, without suspending, when the deadline passes and ends
 * before its worker stops is not one of the tasks left unfinished: the
 * count is of the tasks the shutdown abandons, and its join succeeds. */
static int busy_50ms(void *arg)
{
	pending_t *p = arg;
	coev_time_t end = coev_deadline(COEV_MSEC(50));

	atomic_fetch_add(&p->started, 1);
	while (coev_now() < end)
		; /* never suspends: the cancel cannot reach it */
	return 42;
}

static void test_runtime_shutdown_counts_only_abandoned(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pending_t p;
	coev_task_t *t;
	int ret = 0;

	(void)state;
	memset(&p, 0, sizeof p);
	assert_int_equal(coev_rt_spawn(rt, "busy", busy_50ms, &p, &t), 0);
	wait_until_at_least(&p.started, 1);
	/* The deadline has passed at once; the task ends meanwhile. */
	assert_int_equal(coev_rt_shutdown(rt, coev_now()), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 42);
	coev_rt_free(rt);
}

static void test_runtime_free_without_shutdown_releases_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pending_t *p = calloc(1, sizeof *p);
	coev_task_t *t;

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(coev_rt_spawn(rt, "sleeper", sleep_ten_seconds,
					       p, i % 2 ? &t : NULL),
				 0);
	wait_until_at_least(&p->started, 8);
	coev_rt_free(rt); /* deadline now */
	assert_int_equal(atomic_load(&p->resumed), 0);
	free(p);
}

/* Shutdown waits for tasks that do finish before the deadline. */
static int sleep_short(void *arg)
{
	pending_t *p = arg;

	atomic_fetch_add(&p->started, 1);
	coev_sleep(COEV_MSEC(30));
	atomic_fetch_add(&p->resumed, 1);
	return 0;
}

static void test_runtime_shutdown_waits_for_finishing_tasks(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	pending_t p;

	(void)state;
	memset(&p, 0, sizeof p);
	for (int i = 0; i < 6; i++)
		assert_int_equal(coev_rt_spawn(rt, NULL, sleep_short, &p, NULL),
				 0);
	wait_until_at_least(&p.started, 6);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_SEC(60))), 0);
	assert_int_equal(atomic_load(&p.resumed), 6);
	coev_rt_free(rt);
}

/* ---- shutdown while spawns are refused ---------------------------------- */

/* A spawn refused by a shutdown counts as live for a moment (its increment
 * is undone after it sees the runtime closed). If the last task ends in
 * that moment, the undo must wake the shutdown waiting for the count to
 * reach 0: otherwise it sleeps until its deadline. */
typedef struct spawner {
	coev_rt_t *rt;
	atomic_int stop;
	atomic_int refused;
} spawner_t;

static void *spawn_until_stopped(void *arg)
{
	spawner_t *s = arg;

	while (!atomic_load(&s->stop)) {
		int rc = coev_rt_spawn(s->rt, "late", return_arg, NULL, NULL);
		if (rc == -ESHUTDOWN)
			atomic_store(&s->refused, 1);
		else
			TU_CHECK_EQ(rc, 0);
	}
	return NULL;
}

#define REFUSED_TRIALS TU_SCALE(200, 100, 30)

static void test_runtime_shutdown_wakes_after_refused_spawns(void **state)
{
	(void)state;
	for (int trial = 0; trial < REFUSED_TRIALS; trial++) {
		coev_rt_t *rt = tu_new_rt(2);
		pending_t p;
		spawner_t s = {.rt = rt};
		pthread_t th;

		memset(&p, 0, sizeof p);
		for (int i = 0; i < 8; i++)
			assert_int_equal(coev_rt_spawn(rt, "sleeper",
						       sleep_until_cancelled,
						       &p, NULL),
					 0);
		wait_until_at_least(&p.started, 8);
		assert_int_equal(
			pthread_create(&th, NULL, spawn_until_stopped, &s), 0);
		/* The deadline is a guard: the sleepers end as soon as they
		 * are cancelled, so the shutdown returns at once; 5 s is a
		 * quarter of the deadline, far beyond any stall of a loaded
		 * machine. */
		coev_time_t t0 = coev_now();
		int left = coev_rt_shutdown(rt, coev_deadline(COEV_SEC(20)));
		coev_time_t took = coev_now() - t0;
		atomic_store(&s.stop, 1);
		pthread_join(th, NULL);
		coev_rt_free(rt);
		assert_int_equal(left, 0);
		assert_int_equal(atomic_load(&p.cancelled), 8);
		if (took > COEV_SEC(5))
			fail_msg("trial %d: shutdown took %.1f s with every "
				 "task ended (deadline 20 s)",
				 trial, (double)took / 1e9);
	}
	tu_assert_no_failures();
}

/* ---- shutdown and the waiters it leaves ------------------------------- */

/* Tasks that ignore cancellation (shielded sleepers) are abandoned by a
 * shutdown with a short deadline. Plain threads waiting for their end, a
 * task of another runtime joining one, and a later join of such a handle
 * all return -ESHUTDOWN; coev_rt_free waits for the released threads to
 * leave their calls. */
typedef struct waiting {
	coev_task_t *t[6]; /* 0: join; 1, 2: wait_any; 3, 4: gather; 5 */
	coev_task_t *quick;
	int join_rc, any_rc, gather_rc, gather_rets[2];
	atomic_int done;
} waiting_t;

static void *join_abandoned(void *arg)
{
	waiting_t *w = arg;
	int r = 12345;

	w->join_rc = coev_join(w->t[0], &r);
	TU_CHECK_EQ(r, 12345); /* no result for a task that never ended */
	atomic_fetch_add(&w->done, 1);
	return NULL;
}

static void *wait_any_abandoned(void *arg)
{
	waiting_t *w = arg;

	w->any_rc = coev_wait_any(&w->t[1], 2, COEV_FOREVER);
	atomic_fetch_add(&w->done, 1);
	return NULL;
}

static void *gather_abandoned(void *arg)
{
	waiting_t *w = arg;
	coev_task_t *g[2] = {w->quick, w->t[3]};

	w->gather_rc = coev_gather(g, 2, w->gather_rets);
	atomic_fetch_add(&w->done, 1);
	return NULL;
}

/* A task of another runtime joining t[4]. */
static int join_from_other_rt(void *arg)
{
	waiting_t *w = arg;

	return coev_join(w->t[4], NULL);
}

/* From the test thread: until t's joiner slot holds a waiter (someone
 * waits for its end). */
static void wait_joined(coev_task_t *t)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(&t->joiner) == NULL) {
		assert_true(coev_now() < dl);
		tu_nap_ms(1);
	}
}

static void test_runtime_shutdown_releases_waiters_of_abandoned(void **state)
{
	coev_rt_t *rt = tu_new_rt(2), *other = tu_new_rt(1);
	pending_t *p = calloc(1, sizeof *p);
	waiting_t *w = calloc(1, sizeof *w);
	pthread_t th[3];
	coev_task_t *joiner;
	int r = 0;

	(void)state;
	for (int i = 0; i < 6; i++)
		assert_int_equal(coev_rt_spawn(rt, "stubborn",
					       sleep_ten_seconds, p, &w->t[i]),
				 0);
	assert_int_equal(coev_rt_spawn(rt, "quick", return_arg,
				       (void *)(intptr_t)7, &w->quick),
			 0);
	wait_until_at_least(&p->started, 6);
	assert_int_equal(pthread_create(&th[0], NULL, join_abandoned, w), 0);
	assert_int_equal(pthread_create(&th[1], NULL, wait_any_abandoned, w),
			 0);
	assert_int_equal(pthread_create(&th[2], NULL, gather_abandoned, w), 0);
	assert_int_equal(
		coev_rt_spawn(other, "joiner", join_from_other_rt, w, &joiner),
		0);
	for (int i = 0; i < 5; i++)
		wait_joined(w->t[i]);
	/* The shield hides the cancel: the six are abandoned. */
	TU_CHECK_EQ(coev_rt_shutdown(rt, coev_deadline(COEV_MSEC(20))), 6);
	/* The task of the other runtime is released. */
	TU_CHECK_EQ(coev_join_dl(joiner, tu_guard(), &r), 0);
	TU_CHECK_EQ(r, -ESHUTDOWN);
	/* A join after the shutdown returns at once, with or without a
	 * deadline; the handle stays valid (a detach is allowed) until
	 * coev_rt_free. */
	r = 12345;
	int rc = coev_join_dl(w->t[5], tu_guard(), &r);
	TU_CHECK_EQ(rc, -ESHUTDOWN);
	if (rc == -ESHUTDOWN)
		TU_CHECK_EQ(coev_join(w->t[5], &r), -ESHUTDOWN);
	TU_CHECK_EQ(r, 12345);
	TU_CHECK_EQ(coev_detach(w->t[5]), 0);
	coev_rt_free(rt);
	/* Released by the shutdown; the free waited for them to leave their
	 * calls. */
	if (tu_thread_wait_at_least(&w->done, 3) == 0) {
		for (int i = 0; i < 3; i++)
			pthread_join(th[i], NULL);
	} else {
		TU_CHECK_MSG(0,
			     "%d of 3 threads waiting for abandoned tasks "
			     "returned",
			     atomic_load(&w->done));
		for (int i = 0; i < 3; i++)
			pthread_detach(th[i]);
	}
	TU_CHECK_EQ(w->join_rc, -ESHUTDOWN);
	TU_CHECK_EQ(w->any_rc, -ESHUTDOWN);
	/* gather joined the quick task, then stopped at the abandoned one. */
	TU_CHECK_EQ(w->gather_rc, -ESHUTDOWN);
	TU_CHECK_EQ(w->gather_rets[0], 7);
	TU_CHECK_EQ(coev_rt_shutdown(other, tu_guard()), 0);
	coev_rt_free(other);
	TU_CHECK_EQ(atomic_load(&p->resumed), 0);
	tu_assert_no_failures();
	free(w);
	free(p);
}

/* A task that never ran, queued behind one that keeps its only worker
 * until the workers are told to stop: abandoned without ever starting (its
 * block is freed by coev_rt_free). A thread joining it is released too. */
typedef struct never_ran {
	coev_rt_t *rt;
	coev_task_t *queued;
	atomic_int spinning;
	atomic_int done;
	int rc;
} never_ran_t;

static int spin_until_stop(void *arg)
{
	never_ran_t *n = arg;

	atomic_store(&n->spinning, 1);
	while (!atomic_load_explicit(&n->rt->stop, memory_order_acquire))
		tu_spin_ns(COEV_USEC(20));
	return 0;
}

static void *join_never_ran(void *arg)
{
	never_ran_t *n = arg;

	n->rc = coev_join(n->queued, NULL);
	atomic_store(&n->done, 1);
	return NULL;
}

static void test_runtime_shutdown_releases_joiner_of_never_run(void **state)
{
	never_ran_t n = {0};
	pthread_t th;

	(void)state;
	n.rt = tu_new_rt(1);
	assert_int_equal(
		coev_rt_spawn(n.rt, "spinner", spin_until_stop, &n, NULL), 0);
	while (!atomic_load(&n.spinning))
		tu_nap_ms(1);
	assert_int_equal(
		coev_rt_spawn(n.rt, "queued", return_arg, NULL, &n.queued), 0);
	assert_int_equal(pthread_create(&th, NULL, join_never_ran, &n), 0);
	wait_joined(n.queued);
	/* The spinner ends as its worker is told to stop, before the worker
	 * leaves: only the queued task is abandoned. */
	assert_int_equal(coev_rt_shutdown(n.rt, coev_now()), 1);
	coev_rt_free(n.rt);
	if (tu_thread_wait_at_least(&n.done, 1) != 0) {
		pthread_detach(th);
		fail_msg("the thread joining a task that never ran did not "
			 "return");
	}
	pthread_join(th, NULL);
	assert_int_equal(n.rc, -ESHUTDOWN);
}

/* coev does not complete a future for an abandoned task: a thread waiting
 * on one without a deadline waits until someone completes or cancels it. */
typedef struct fut_wait {
	coev_future_t *f;
	atomic_int started, done;
	int rc, result;
} fut_wait_t;

static int complete_later(void *arg)
{
	fut_wait_t *fw = arg;

	coev_shield_begin();
	atomic_store(&fw->started, 1);
	coev_sleep(COEV_SEC(10)); /* abandoned here */
	coev_shield_end();
	coev_future_set(fw->f, 1);
	return 0;
}

static void *wait_future(void *arg)
{
	fut_wait_t *fw = arg;

	fw->rc = coev_future_wait(fw->f, &fw->result);
	atomic_store(&fw->done, 1);
	return NULL;
}

static void test_runtime_future_of_abandoned_task_waits_for_cancel(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	fut_wait_t fw = {0};
	pthread_t th;

	(void)state;
	assert_int_equal(coev_future_new(&fw.f), 0);
	assert_int_equal(
		coev_rt_spawn(rt, "completer", complete_later, &fw, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, wait_future, &fw), 0);
	/* Started, and shielded: a task the shutdown cancels before its
	 * first run never runs, and is not abandoned. */
	assert_int_equal(tu_thread_wait_at_least(&fw.started, 1), 0);
	assert_int_equal(coev_rt_shutdown(rt, coev_deadline(COEV_MSEC(20))), 1);
	coev_rt_free(rt);
	assert_int_equal(atomic_load(&fw.done), 0);
	/* The program cancels what only an abandoned task would complete. */
	assert_int_equal(coev_future_cancel(fw.f), 0);
	assert_int_equal(tu_thread_wait_at_least(&fw.done, 1), 0);
	pthread_join(th, NULL);
	assert_int_equal(fw.rc, 0);
	assert_int_equal(fw.result, -ECANCELED);
	coev_future_release(fw.f);
}

/* ---- shutdown from a blocking job --------------------------------------- */

/* A job on rt's blocking pool that shuts rt down would wait for its own
 * task (which waits for the job) and abandon it: refused. */
typedef struct from_job {
	coev_rt_t *rt;
	atomic_int done;
	int rc;
} from_job_t;

static int shutdown_in_job(void *arg)
{
	from_job_t *j = arg;

	j->rc = coev_rt_shutdown(j->rt, coev_deadline(COEV_MSEC(50)));
	atomic_store(&j->done, 1);
	return 0;
}

static int run_shutdown_job(void *arg)
{
	int r = -1;

	TU_CHECK_EQ(coev_blocking(shutdown_in_job, arg, COEV_FOREVER, &r), 0);
	return r;
}

static void test_runtime_shutdown_from_blocking_job_refused(void **state)
{
	from_job_t j = {0};
	coev_task_t *t;
	int r = -1;

	(void)state;
	j.rt = tu_new_rt(2);
	assert_int_equal(coev_rt_spawn(j.rt, "job", run_shutdown_job, &j, &t),
			 0);
	assert_int_equal(tu_thread_wait_at_least(&j.done, 1), 0);
	assert_int_equal(j.rc, COEV_ENOTRT);
	assert_int_equal(coev_join(t, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(coev_rt_shutdown(j.rt, tu_guard()), 0);
	coev_rt_free(j.rt);
	tu_assert_no_failures();
}

/* ---- coev_run ----------------------------------------------------------- */

static int main_returns_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int run_inside_run(void *arg)
{
	(void)arg;
	return coev_run(main_returns_arg, (void *)(intptr_t)1, NULL);
}

static atomic_int main_ran;

static int main_marks(void *arg)
{
	(void)arg;
	atomic_store(&main_ran, 1);
	return 0;
}

static void test_runtime_run_returns_main_result(void **state)
{
	(void)state;
	assert_int_equal(coev_run(main_returns_arg, (void *)(intptr_t)42, NULL),
			 42);
	assert_int_equal(coev_run(main_returns_arg, (void *)(intptr_t)0, NULL),
			 0);
	assert_int_equal(
		coev_run(main_returns_arg, (void *)(intptr_t)-EIO, NULL), -EIO);
	coev_config_t cfg = tu_config(1);
	assert_int_equal(coev_run(main_returns_arg, (void *)(intptr_t)7, &cfg),
			 7);
	/* Not from inside a runtime. */
	assert_int_equal(coev_run(run_inside_run, NULL, NULL), COEV_ENOTRT);
	/* A bad configuration: main does not run. */
	cfg.workers = 0;
	atomic_store(&main_ran, 0);
	assert_int_equal(coev_run(main_marks, NULL, &cfg), -EINVAL);
	assert_int_equal(atomic_load(&main_ran), 0);
	assert_int_equal(coev_run(NULL, NULL, NULL), -EINVAL);
}

static int main_leaves_sleepers(void *arg)
{
	pending_t *p = arg;

	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn_named("left-behind", sleep_ten_seconds,
					     p, NULL),
			    0);
	while (atomic_load(&p->started) < 3)
		coev_sleep(COEV_MSEC(1));
	return 42;
}

static void run_leaving_sleepers(void *arg)
{
	coev_config_t cfg;
	pending_t p;

	(void)arg;
	memset(&p, 0, sizeof p);
	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_MSEC(50);
	int rc = coev_run(main_leaves_sleepers, &p, &cfg);
	fprintf(stderr, "\nmain-result=%d resumed=%d\n", rc,
		atomic_load(&p.resumed));
}

/* True when text holds n as a whole number (not part of a longer one). */
static int has_number(const char *text, int n)
{
	char want[16];
	snprintf(want, sizeof want, "%d", n);
	size_t len = strlen(want);
	for (const char *s = strstr(text, want); s; s = strstr(s + 1, want)) {
		int before = s > text && s[-1] >= '0' && s[-1] <= '9';
		int after = s[len] >= '0' && s[len] <= '9';
		if (!before && !after)
			return 1;
	}
	return 0;
}

static void test_runtime_run_reports_tasks_left(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_int_equal(tu_run_in_child(run_leaving_sleepers, NULL, res), 0);
	char *mine = strstr(res->out, "\nmain-result=");
	if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0 || !mine)
		tu_child_dump(res);
	assert_true(WIFEXITED(res->status));
	assert_int_equal(WEXITSTATUS(res->status), 0);
	assert_non_null(mine);
	assert_non_null(strstr(mine, "main-result=42 resumed=0"));
	/* coev_run's own report, before our line, says how many were left. */
	*mine = '\0';
	if (!has_number(res->out, 3))
		tu_child_dump(res);
	assert_true(has_number(res->out, 3));
	free(res);
}

/* ---- bad input ---------------------------------------------------------- */

static void test_runtime_new_rejects_bad_config(void **state)
{
	coev_rt_t *rt = (coev_rt_t *)&rt;
	coev_config_t cfg;

	(void)state;
	static const unsigned bad_workers[] = {0, COEV_WORKERS_MAX + 1, 100000,
					       UINT_MAX};
	for (size_t i = 0; i < sizeof bad_workers / sizeof bad_workers[0];
	     i++) {
		cfg = tu_config(2);
		cfg.workers = bad_workers[i];
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
	}
	static const size_t bad_stacks[] = {0, 1, COEV_STACK_MIN - 1,
					    COEV_STACK_MAX + 1, SIZE_MAX};
	for (size_t i = 0; i < sizeof bad_stacks / sizeof bad_stacks[0]; i++) {
		cfg = tu_config(2);
		cfg.stack_size = bad_stacks[i];
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
	}
	cfg = tu_config(2);
	assert_int_equal(coev_rt_new(&cfg, NULL), -EINVAL);
	/* A good one still works after all that. */
	rt = NULL;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_workers(rt), 2);
	coev_rt_free(rt);
}

static void test_runtime_new_with_defaults(void **state)
{
	coev_rt_t *rt = NULL;

	(void)state;
	unsetenv("COEV_WORKERS");
	unsetenv("COEV_STACK_SIZE");
	assert_int_equal(coev_rt_new(NULL, &rt), 0);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(coev_rt_workers(rt), (unsigned)cpus);
	coev_rt_free(rt);
	/* The most workers allowed on this small machine would be silly;
	 * a few more than the cores is fine. */
	coev_config_t cfg = tu_config(8);
	rt = NULL;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_workers(rt), 8);
	coev_rt_free(rt);
}

static void test_runtime_config_from_environment(void **state)
{
	coev_config_t cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	unsetenv("COEV_WORKERS");
	unsetenv("COEV_STACK_SIZE");
	memset(&cfg, 0xab, sizeof cfg);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.workers, (unsigned)cpus);
	assert_int_equal(cfg.stack_size, COEV_STACK_DEFAULT);
	assert_int_equal(cfg.shutdown_timeout, COEV_SEC(5));

	setenv("COEV_WORKERS", "3", 1);
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.workers, 3);

	static const char *const bad[] = {
		"0", "abc", "100000", "-2", "3x", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("COEV_WORKERS", bad[i], 1);
		memset(&cfg, 0xab, sizeof cfg);
		int rc = coev_config_init(&cfg);
		if (rc != -EINVAL)
			fprintf(stderr, "COEV_WORKERS=%s gave %d\n", bad[i],
				rc);
		assert_int_equal(rc, -EINVAL);
		/* That field keeps its default; the others are set. */
		assert_int_equal(cfg.workers, (unsigned)cpus);
		assert_int_equal(cfg.stack_size, COEV_STACK_DEFAULT);
		assert_int_equal(cfg.shutdown_timeout, COEV_SEC(5));
	}
	unsetenv("COEV_WORKERS");

	/* A runtime built from the environment. */
	setenv("COEV_WORKERS", "3", 1);
	coev_rt_t *rt = NULL;
	assert_int_equal(coev_rt_new(NULL, &rt), 0);
	assert_int_equal(coev_rt_workers(rt), 3);
	coev_rt_free(rt);
	unsetenv("COEV_WORKERS");
}

static int spawn_null_fn(void *arg)
{
	coev_task_t *t = (coev_task_t *)&t;

	(void)arg;
	TU_CHECK_EQ(coev_spawn(NULL, NULL, &t), -EINVAL);
	TU_CHECK_EQ(coev_spawn_named("x", NULL, NULL, &t), -EINVAL);
	TU_CHECK_EQ(coev_spawn(NULL, NULL, NULL), -EINVAL);
	TU_CHECK_EQ(coev_rt_spawn(coev_rt_current(), NULL, NULL, NULL, &t),
		    -EINVAL);
	/* Joining oneself. */
	int r = 0;
	TU_CHECK_EQ(coev_join(coev_self(), &r), -EDEADLK);
	/* Shutting down from inside the runtime. */
	TU_CHECK_EQ(coev_rt_shutdown(coev_rt_current(), coev_now()),
		    COEV_ENOTRT);
	TU_CHECK_EQ(coev_rt_shutdown(coev_rt_current(), COEV_FOREVER),
		    COEV_ENOTRT);
	return 0;
}

static void test_runtime_bad_input_inside_tasks(void **state)
{
	(void)state;
	assert_int_equal(coev_run(spawn_null_fn, NULL, NULL), 0);
	tu_assert_no_failures();
}

static void check_not_in_coroutine(void)
{
	coev_task_t *t = (coev_task_t *)&t;

	assert_int_equal(coev_yield(), COEV_ENOTCORO);
	assert_int_equal(coev_sleep(COEV_MSEC(1)), COEV_ENOTCORO);
	assert_int_equal(coev_sleep_until(coev_now() + COEV_MSEC(1)),
			 COEV_ENOTCORO);
	assert_int_equal(coev_spawn(return_arg, NULL, &t), COEV_ENOTCORO);
	assert_int_equal(coev_spawn(return_arg, NULL, NULL), COEV_ENOTCORO);
	assert_int_equal(coev_spawn_named("n", return_arg, NULL, &t),
			 COEV_ENOTCORO);
}

static void test_runtime_coroutine_calls_outside_coroutine(void **state)
{
	(void)state;
	/* No runtime at all. */
	check_not_in_coroutine();
	/* A runtime running, the test thread outside it. */
	coev_rt_t *rt = tu_new_rt(2);
	check_not_in_coroutine();
	coev_task_t *t = NULL;
	assert_int_equal(coev_rt_spawn(NULL, NULL, return_arg, NULL, &t),
			 -EINVAL);
	assert_int_equal(coev_rt_spawn(rt, NULL, NULL, NULL, &t), -EINVAL);
	assert_int_equal(coev_rt_shutdown(NULL, coev_now()), -EINVAL);
	int r = -1;
	assert_int_equal(coev_join(NULL, &r), -EINVAL);
	coev_rt_free(rt);
}

/* ---- misuse that aborts (in a child process) ---------------------------- */

static int join_twice_main(void *arg)
{
	coev_task_t *t;
	int r;

	(void)arg;
	if (coev_spawn(return_arg, (void *)(intptr_t)3, &t) != 0)
		return -1;
	if (coev_join(t, &r) != 0 || r != 3)
		return -2;
	coev_join(t, &r); /* must abort */
	return -3;
}

static void run_join_twice(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	int rc = coev_run(join_twice_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d after a double join\n", rc);
}

static void expect_abort_naming(void (*fn)(void *), const char *word)
{
	tu_child_t *res = malloc(sizeof *res);

	assert_int_equal(tu_run_in_child(fn, NULL, res), 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, word);
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, word));
	free(res);
}

static void test_runtime_join_twice_aborts(void **state)
{
	(void)state;
	expect_abort_naming(run_join_twice, "join");
}

typedef struct gate {
	atomic_int open;
} gate_t;

static int wait_gate(void *arg)
{
	gate_t *g = arg;

	while (!atomic_load(&g->open))
		coev_sleep(COEV_MSEC(1));
	return 0;
}

static int join_after_detach_main(void *arg)
{
	static gate_t g;
	coev_task_t *t;

	(void)arg;
	if (coev_spawn(wait_gate, &g, &t) != 0)
		return -1;
	coev_detach(t);
	coev_join(t, NULL); /* the task still runs: detectable, must abort */
	return -3;
}

static void run_join_after_detach(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	coev_config_init(&cfg);
	cfg.workers = 2;
	int rc = coev_run(join_after_detach_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d after join of a detached task\n",
		rc);
}

static void test_runtime_join_after_detach_aborts(void **state)
{
	(void)state;
	expect_abort_naming(run_join_after_detach, "join");
}

static int free_from_worker_main(void *arg)
{
	(void)arg;
	coev_rt_free(coev_rt_current()); /* must abort */
	return -3;
}

static void run_free_from_worker(void *arg)
{
	(void)arg;
	int rc = coev_run(free_from_worker_main, NULL, NULL);
	fprintf(stderr, "coev_run returned %d after coev_rt_free in a task\n",
		rc);
}

static void test_runtime_free_from_worker_aborts(void **state)
{
	(void)state;
	expect_abort_naming(run_free_from_worker, "coev_rt_free");
}

/* coev_rt_free in a job of the runtime's own blocking pool: the pool's
 * teardown would wait for that job forever. */
static int free_in_job(void *arg)
{
	coev_rt_free(arg); /* must abort */
	return -3;
}

static int free_from_job_main(void *arg)
{
	int r = 0;

	(void)arg;
	coev_blocking(free_in_job, coev_rt_current(), COEV_FOREVER, &r);
	return r;
}

static void run_free_from_job(void *arg)
{
	(void)arg;
	int rc = coev_run(free_from_job_main, NULL, NULL);
	fprintf(stderr,
		"coev_run returned %d after coev_rt_free in a blocking job\n",
		rc);
}

static void test_runtime_free_from_blocking_job_aborts(void **state)
{
	(void)state;
	expect_abort_naming(run_free_from_job, "coev_rt_free called from a "
					       "coev_blocking job");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* Death tests first, while the process has one thread. */
		cmocka_unit_test(test_runtime_join_twice_aborts),
		cmocka_unit_test(test_runtime_join_after_detach_aborts),
		cmocka_unit_test(test_runtime_free_from_worker_aborts),
		cmocka_unit_test(test_runtime_free_from_blocking_job_aborts),
		cmocka_unit_test(test_runtime_run_reports_tasks_left),
		cmocka_unit_test(test_runtime_foreign_threads_spawn_and_join),
		cmocka_unit_test(test_runtime_shutdown_reports_pending_tasks),
		cmocka_unit_test(test_runtime_shutdown_when_idle_returns_zero),
		cmocka_unit_test(test_runtime_shutdown_counts_only_abandoned),
		cmocka_unit_test(
			test_runtime_free_without_shutdown_releases_tasks),
		cmocka_unit_test(
			test_runtime_shutdown_waits_for_finishing_tasks),
		cmocka_unit_test(
			test_runtime_shutdown_wakes_after_refused_spawns),
		cmocka_unit_test(
			test_runtime_shutdown_releases_waiters_of_abandoned),
		cmocka_unit_test(
			test_runtime_shutdown_releases_joiner_of_never_run),
		cmocka_unit_test(
			test_runtime_future_of_abandoned_task_waits_for_cancel),
		cmocka_unit_test(
			test_runtime_shutdown_from_blocking_job_refused),
		cmocka_unit_test(test_runtime_run_returns_main_result),
		cmocka_unit_test(test_runtime_new_rejects_bad_config),
		cmocka_unit_test(test_runtime_new_with_defaults),
		cmocka_unit_test(test_runtime_config_from_environment),
		cmocka_unit_test(test_runtime_bad_input_inside_tasks),
		cmocka_unit_test(
			test_runtime_coroutine_calls_outside_coroutine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
