/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_wg.c — coev_wg_t (include/coev/sync.h): reaching zero
 * wakes every waiter (tasks on every worker and plain threads), and not
 * before; reuse round after round; a tree of tasks that add for their own
 * children; deadlines and cancellation while waiting (from a task, from a
 * plain thread); done racing a waiter's cancel or deadline; calls from a
 * loop callback; and the misuse that aborts (a count below zero, destroy
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

/* A waiter: waits once and records how it ended and what it saw. */
typedef struct ww {
	coev_wg_t *wg;
	coev_time_t deadline; /* COEV_FOREVER: coev_wg_wait */
	coev_time_t push;
	int precancel, shield;
	atomic_int *completed; /* if not NULL: must be `want` at a 0 */
	int want;
	atomic_int arrived, finished;
	int rc, early, after_rc;
	coev_time_t ended;
	tu_thread_at_t at; /* a plain thread's, for tu_wait_thread_parked */
} ww_t;

static void ww_body(ww_t *w, int in_task)
{
	coev_time_t tok = -1;

	if (in_task && w->precancel)
		coev_cancel(coev_self());
	if (in_task && w->shield)
		coev_shield_begin();
	if (in_task && w->push)
		tok = coev_deadline_push(w->push);
	if (!in_task)
		TU_THREAD_AT(&w->at);
	atomic_store(&w->arrived, 1);
	int rc = w->deadline == COEV_FOREVER
			 ? coev_wg_wait(w->wg)
			 : coev_wg_wait_dl(w->wg, w->deadline);
	w->ended = coev_now();
	if (rc == 0 && w->completed && atomic_load(w->completed) < w->want)
		w->early = 1;
	if (tok >= 0)
		coev_deadline_pop(tok);
	w->rc = rc;
	if (in_task && rc != 0)
		w->after_rc = coev_sleep(COEV_MSEC(1));
	if (in_task && w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
}

static int wg_waiter(void *arg)
{
	ww_t *w = arg;

	ww_body(w, 1);
	return w->rc;
}

static void *thread_wg_waiter(void *arg)
{
	ww_body(arg, 0);
	return NULL;
}

/* ---- zero wakes everyone, round after round ----------------------------- */

#define JOBS 4
#define WAITERS 4 /* tasks, plus one plain thread */
#define WG_ROUNDS TU_SCALE(10000, 3000, 1500)

typedef struct job {
	coev_wg_t *wg;
	atomic_int *completed;
	int spins;
} job_t;

static int job(void *arg)
{
	job_t *j = arg;

	for (int i = 0; i < j->spins; i++)
		coev_yield();
	atomic_fetch_add(j->completed, 1);
	coev_wg_done(j->wg);
	return 0;
}

static void *thread_job(void *arg)
{
	job_t *j = arg;

	for (int i = 0; i < j->spins; i++)
		sched_yield();
	atomic_fetch_add(j->completed, 1);
	coev_wg_done(j->wg);
	return NULL;
}

static int rounds_main(void *arg)
{
	coev_wg_t wg = COEV_WG_INIT;
	unsigned seed = 0xdeadbeefu;

	(void)arg;
	for (int round = 0; round < WG_ROUNDS; round++) {
		atomic_int completed = 0;
		job_t jobs[JOBS + 1];
		ww_t w[WAITERS + 1];
		coev_task_t *jt[JOBS], *wt[WAITERS];
		pthread_t jth, wth;
		int with_threads = round % 10 == 0;

		coev_wg_add(&wg, JOBS + with_threads);
		for (int i = 0; i <= WAITERS; i++)
			w[i] = (ww_t){.wg = &wg,
				      .deadline =
					      i % 2 ? tu_guard() : COEV_FOREVER,
				      .completed = &completed,
				      .want = JOBS + with_threads};
		for (int i = 0; i < WAITERS; i++)
			TU_CHECK_EQ(coev_spawn(wg_waiter, &w[i], &wt[i]), 0);
		if (with_threads)
			TU_CHECK_EQ(pthread_create(&wth, NULL, thread_wg_waiter,
						   &w[WAITERS]),
				    0);
		for (int i = 0; i <= JOBS; i++)
			jobs[i] = (job_t){.wg = &wg,
					  .completed = &completed,
					  .spins = (int)(rnd_next(&seed) % 4)};
		for (int i = 0; i < JOBS; i++)
			TU_CHECK_EQ(coev_spawn(job, &jobs[i], &jt[i]), 0);
		if (with_threads)
			TU_CHECK_EQ(pthread_create(&jth, NULL, thread_job,
						   &jobs[JOBS]),
				    0);
		for (int i = 0; i < JOBS; i++)
			TU_CHECK_EQ(coev_join(jt[i], NULL), 0);
		for (int i = 0; i < WAITERS; i++) {
			TU_CHECK_EQ(coev_join(wt[i], NULL), 0);
			TU_CHECK_MSG(w[i].rc == 0, "round %d waiter %d: %d",
				     round, i, w[i].rc);
			TU_CHECK_MSG(!w[i].early,
				     "round %d waiter %d returned before zero",
				     round, i);
		}
		if (with_threads) {
			/* After the tasks: pthread_join blocks this worker. */
			pthread_join(jth, NULL);
			pthread_join(wth, NULL);
			TU_CHECK_EQ(w[WAITERS].rc, 0);
			TU_CHECK_EQ(w[WAITERS].early, 0);
		}
		/* At zero a wait returns at once. */
		TU_CHECK_EQ(coev_wg_wait_dl(&wg, coev_now() - 1), 0);
	}
	coev_wg_destroy(&wg);
	return 0;
}

static void test_wg_zero_wakes_every_waiter_each_round(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(rounds_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- a tree of tasks that add for their own children -------------------- */

#define FANOUT 4
#define DEPTH TU_SCALE(8, 7, 6) /* 4^8 = 65,536 leaves */

typedef struct tree {
	coev_wg_t wg;
	atomic_int nodes;
} tree_t;

typedef struct node {
	tree_t *t;
	int depth;
} node_t;

static int tree_node(void *arg)
{
	node_t *n = arg;
	tree_t *t = n->t;

	atomic_fetch_add(&t->nodes, 1);
	if (n->depth > 0) {
		/* Add before spawning: the count never touches zero while
		 * the tree still grows. */
		coev_wg_add(&t->wg, FANOUT);
		for (int i = 0; i < FANOUT; i++) {
			node_t *c = malloc(sizeof *c);
			TU_CHECK(c != NULL);
			*c = (node_t){.t = t, .depth = n->depth - 1};
			TU_CHECK_EQ(coev_spawn(tree_node, c, NULL), 0);
		}
	}
	if (n->depth % 2)
		coev_yield();
	free(n);
	coev_wg_done(&t->wg);
	return 0;
}

static int tree_main(void *arg)
{
	tree_t *t = arg;
	node_t *root = malloc(sizeof *root);
	int expect = 0;

	for (int d = 0, p = 1; d <= DEPTH; d++, p *= FANOUT)
		expect += p;
	TU_CHECK(root != NULL);
	*root = (node_t){.t = t, .depth = DEPTH};
	TU_CHECK_EQ(coev_wg_init(&t->wg), 0);
	coev_wg_add(&t->wg, 1);
	TU_CHECK_EQ(coev_spawn(tree_node, root, NULL), 0);
	TU_CHECK_EQ(coev_wg_wait(&t->wg), 0);
	TU_CHECK_EQ(atomic_load(&t->nodes), expect);
	coev_wg_destroy(&t->wg);
	return 0;
}

static void test_wg_tree_of_tasks_adding_for_children(void **state)
{
	tree_t t = {.nodes = 0};

	(void)state;
	assert_int_equal(tu_run_main(tree_main, &t, 2), 0);
	tu_assert_no_failures();
	atomic_store(&t.nodes, 0);
	assert_int_equal(tu_run_main(tree_main, &t, 4), 0);
	tu_assert_no_failures();
}

/* ---- add with n > 1 and n < 0, zero at once ----------------------------- */

static void test_wg_add_counts_and_negative_add(void **state)
{
	coev_wg_t wg;
	ww_t w;
	pthread_t th;

	(void)state;
	assert_int_equal(coev_wg_init(NULL), -EINVAL);
	assert_int_equal(coev_wg_init(&wg), 0);
	assert_int_equal(coev_wg_wait(&wg), 0); /* zero: at once */
	coev_wg_add(&wg, 0);
	assert_int_equal(coev_wg_wait_dl(&wg, coev_now()), 0);
	coev_wg_add(&wg, 5);
	assert_int_equal(coev_wg_wait_dl(&wg, coev_now() + COEV_MSEC(5)),
			 -ETIMEDOUT);
	w = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	assert_int_equal(pthread_create(&th, NULL, thread_wg_waiter, &w), 0);
	assert_int_equal(tu_thread_wait_at_least(&w.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&w.at), 0);
	coev_wg_done(&wg);
	coev_wg_add(&wg, -3); /* one left */
	/* A negative check: time for a wrong wake to show itself (SETTLE). */
	tu_nap_ms((long)(SETTLE / COEV_MSEC(1)));
	assert_int_equal(atomic_load(&w.finished), 0);
	coev_wg_add(&wg, 2);
	coev_wg_add(&wg, -3); /* zero */
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(coev_wg_wait(&wg), 0);
	coev_wg_destroy(&wg);
}

/* ---- deadlines and cancellation ----------------------------------------- */

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

static void *thread_done(void *arg)
{
	coev_wg_done(arg);
	return NULL;
}

static int giveup_main(void *arg)
{
	coev_wg_t wg;
	coev_task_t *t[8], *c;
	pthread_t th;
	void *crc;
	ww_t w[8];

	(void)arg;
	TU_CHECK_EQ(coev_wg_init(&wg), 0);
	coev_wg_add(&wg, 1);
	for (int i = 0; i < 8; i++)
		w[i] = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	w[0].deadline = coev_now() + COEV_MSEC(30);
	w[1].push = coev_now() + COEV_MSEC(30);
	w[2].deadline = coev_now() - 1;
	w[3].precancel = 1;
	w[4].precancel = 1;
	w[4].shield = 1;
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_spawn(wg_waiter, &w[i], &t[i]), 0);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	TU_CHECK_EQ(w[0].rc, -ETIMEDOUT);
	TU_CHECK(w[0].ended >= w[0].deadline);
	TU_CHECK_EQ(w[0].after_rc, 0);
	TU_CHECK_EQ(w[1].rc, -ETIMEDOUT);
	TU_CHECK(w[1].ended >= w[1].push);
	TU_CHECK_EQ(w[2].rc, -ETIMEDOUT);
	TU_CHECK_EQ(w[3].rc, -ECANCELED);
	for (int i = 4; i < 8; i++) {
		TU_CHECK_EQ(coev_spawn(wg_waiter, &w[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_EVENT, &wg);
	}
	TU_CHECK_EQ(coev_cancel(t[5]), 0);
	TU_CHECK_EQ(coev_spawn(cancel_it, t[6], &c), 0);
	TU_CHECK_EQ(coev_join(c, NULL), 0);
	TU_CHECK_EQ(coev_join(t[5], NULL), 0);
	TU_CHECK_EQ(coev_join(t[6], NULL), 0);
	TU_CHECK_EQ(w[5].rc, -ECANCELED);
	TU_CHECK_EQ(w[5].after_rc, -ECANCELED);
	TU_CHECK_EQ(w[6].rc, -ECANCELED);
	TU_CHECK_EQ(atomic_load(&w[4].finished), 0);
	TU_CHECK_EQ(atomic_load(&w[7].finished), 0);
	/* A plain thread's done wakes the rest. */
	TU_CHECK_EQ(pthread_create(&th, NULL, thread_done, &wg), 0);
	TU_CHECK_EQ(coev_join(t[4], NULL), 0);
	TU_CHECK_EQ(coev_join(t[7], NULL), 0);
	pthread_join(th, &crc);
	TU_CHECK_EQ(w[4].rc, 0);
	TU_CHECK_EQ(w[7].rc, 0);
	coev_wg_destroy(&wg);
	return 0;
}

static void test_wg_deadline_and_cancel_while_waiting(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void test_wg_cancel_from_thread_and_thread_waiters(void **state)
{
	coev_wg_t wg;
	coev_rt_t *rt = tu_new_rt(2);
	ww_t w1, w2, td, tf;
	coev_task_t *t1, *t2;
	pthread_t th, ta, tb;
	void *crc;

	(void)state;
	assert_int_equal(coev_wg_init(&wg), 0);
	coev_wg_add(&wg, 2);
	w1 = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	w2 = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	assert_int_equal(coev_rt_spawn(rt, "w1", wg_waiter, &w1, &t1), 0);
	assert_int_equal(coev_rt_spawn(rt, "w2", wg_waiter, &w2, &t2), 0);
	assert_int_equal(tu_wait_parked(rt, t1, COEV_WAIT_EVENT, &wg), 0);
	assert_int_equal(tu_wait_parked(rt, t2, COEV_WAIT_EVENT, &wg), 0);
	assert_int_equal(pthread_create(&th, NULL, thread_cancel, t1), 0);
	pthread_join(th, &crc);
	assert_int_equal((intptr_t)crc, 0);
	assert_int_equal(coev_join(t1, NULL), 0);
	assert_int_equal(w1.rc, -ECANCELED);
	td = (ww_t){.wg = &wg, .deadline = coev_now() + COEV_MSEC(30)};
	tf = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	assert_int_equal(pthread_create(&ta, NULL, thread_wg_waiter, &td), 0);
	assert_int_equal(pthread_create(&tb, NULL, thread_wg_waiter, &tf), 0);
	pthread_join(ta, NULL);
	assert_int_equal(td.rc, -ETIMEDOUT);
	assert_true(td.ended >= td.deadline);
	assert_int_equal(tu_thread_wait_at_least(&tf.arrived, 1), 0);
	assert_int_equal(tu_wait_thread_parked(&tf.at), 0);
	coev_wg_done(&wg);
	/* A negative check: time for a wrong wake to show itself (SETTLE). */
	tu_nap_ms((long)(SETTLE / COEV_MSEC(1)));
	assert_int_equal(atomic_load(&tf.finished), 0);
	assert_int_equal(atomic_load(&w2.finished), 0);
	coev_wg_done(&wg);
	pthread_join(tb, NULL);
	assert_int_equal(tf.rc, 0);
	assert_int_equal(coev_join(t2, NULL), 0);
	assert_int_equal(w2.rc, 0);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	coev_wg_destroy(&wg);
	tu_assert_no_failures();
}

/* ---- done racing a waiter's cancel or deadline -------------------------- */

typedef struct wrace {
	coev_wg_t wg;
	atomic_int completed;
	ww_t a, b, c;
	coev_task_t *tb;
	sem_t go;
	atomic_int gone, quit;
	unsigned cancel_spin;
	long a_ok, a_to, b_ok, b_cancelled;
} wrace_t;

static void *wrace_canceller(void *arg)
{
	wrace_t *r = arg;

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

#define WRACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int wrace_main(void *arg)
{
	wrace_t *r = arg;
	unsigned seed = 0xa5a5a5a5u;
	pthread_t th;

	TU_CHECK_EQ(pthread_create(&th, NULL, wrace_canceller, r), 0);
	for (int round = 0; round < WRACE_ROUNDS; round++) {
		unsigned v = rnd_next(&seed);
		coev_task_t *ta, *tc;
		int ra = 0, rb = 0, rc = 0;

		TU_CHECK_EQ(coev_wg_init(&r->wg), 0);
		atomic_store(&r->completed, 0);
		coev_wg_add(&r->wg, 1);
		r->a = (ww_t){.wg = &r->wg,
			      .deadline = coev_now() + (coev_time_t)(v % 40000),
			      .completed = &r->completed,
			      .want = 1};
		r->b = r->a;
		r->b.deadline = COEV_FOREVER;
		r->c = r->a;
		r->c.deadline = tu_guard();
		TU_CHECK_EQ(coev_spawn(wg_waiter, &r->a, &ta), 0);
		TU_CHECK_EQ(coev_spawn(wg_waiter, &r->b, &r->tb), 0);
		TU_CHECK_EQ(coev_spawn(wg_waiter, &r->c, &tc), 0);
		if (v & 0x100)
			TU_CHECK_EQ(spin_until(&r->b.arrived, 1), 0);
		r->cancel_spin = (v >> 9) % 30000;
		sem_post(&r->go);
		tu_spin_ns((v >> 3) % 30000);
		atomic_store(&r->completed, 1);
		coev_wg_done(&r->wg);
		TU_CHECK_EQ(spin_until(&r->gone, round + 1), 0);
		TU_CHECK_EQ(coev_join(ta, &ra), 0);
		TU_CHECK_EQ(coev_join(r->tb, &rb), 0);
		TU_CHECK_EQ(coev_join(tc, &rc), 0);
		TU_CHECK_MSG(ra == 0 || ra == -ETIMEDOUT, "round %d: A %d",
			     round, ra);
		TU_CHECK_MSG(rb == 0 || rb == -ECANCELED, "round %d: B %d",
			     round, rb);
		TU_CHECK_MSG(rc == 0, "round %d: C %d", round, rc);
		TU_CHECK(!r->a.early && !r->b.early && !r->c.early);
		r->a_ok += ra == 0;
		r->a_to += ra == -ETIMEDOUT;
		r->b_ok += rb == 0;
		r->b_cancelled += rb == -ECANCELED;
		coev_wg_destroy(&r->wg);
		if (rc != 0)
			break;
	}
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	return 0;
}

static void test_wg_done_races_cancel_and_timeout(void **state)
{
	wrace_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(tu_run_main(wrace_main, r, 2), 0);
	print_message("A: %ld woken, %ld timed out; B: %ld woken, %ld "
		      "cancelled\n",
		      r->a_ok, r->a_to, r->b_ok, r->b_cancelled);
	tu_assert_no_failures();
	assert_int_equal(r->a_ok + r->a_to, WRACE_ROUNDS);
	assert_int_equal(r->b_ok + r->b_cancelled, WRACE_ROUNDS);
	assert_true(r->a_ok > 0 && r->a_to > 0);
	assert_true(r->b_ok > 0 && r->b_cancelled > 0);
	sem_destroy(&r->go);
	free(r);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_wg_t *wg;
	int dl_rc, wait_rc;
} cb_t;

static void wg_cb(void *arg)
{
	cb_t *c = arg;

	c->dl_rc = coev_wg_wait_dl(c->wg, coev_deadline(COEV_SEC(1)));
	c->wait_rc = c->dl_rc == COEV_ENOTCORO ? coev_wg_wait(c->wg) : 1;
	coev_wg_done(c->wg); /* zero: wakes the waiting task */
}

static int cb_main(void *arg)
{
	coev_wg_t wg;
	cb_t c = {.wg = &wg};
	ww_t w;
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_wg_init(&wg), 0);
	coev_wg_add(&wg, 1);
	w = (ww_t){.wg = &wg, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn(wg_waiter, &w, &t), 0);
	parked(t, COEV_WAIT_EVENT, &wg);
	TU_CHECK_EQ(tu_on_loop(wg_cb, &c), 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wait_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, 0);
	coev_wg_destroy(&wg);
	return 0;
}

static void test_wg_from_loop_callback(void **state)
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
	int named = strstr(res->out, "wait group") || strstr(res->out, "wg");
	if (!tu_child_signaled(res, SIGABRT) || !named) {
		fprintf(stderr, "%s:\n", what);
		tu_child_dump(res);
	}
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_true(named);
	free(res);
}

static coev_wg_t misuse_wg;

static void child_done_at_zero(void *arg)
{
	(void)arg;
	coev_wg_init(&misuse_wg);
	coev_wg_done(&misuse_wg);
	fprintf(stderr, "done at zero returned\n");
}

static void child_add_below_zero(void *arg)
{
	(void)arg;
	coev_wg_init(&misuse_wg);
	coev_wg_add(&misuse_wg, 2);
	coev_wg_add(&misuse_wg, -3);
	fprintf(stderr, "add below zero returned\n");
}

static int done_twice(void *arg)
{
	(void)arg;
	coev_wg_done(&misuse_wg);
	return 0;
}

static int below_zero_main(void *arg)
{
	coev_task_t *t[3];

	(void)arg;
	coev_wg_init(&misuse_wg);
	coev_wg_add(&misuse_wg, 2);
	for (int i = 0; i < 3; i++)
		coev_spawn(done_twice, NULL, &t[i]);
	for (int i = 0; i < 3; i++)
		coev_join(t[i], NULL);
	fprintf(stderr, "three dones on a count of two returned\n");
	return 0;
}

static void run_two_workers(coev_fn fn)
{
	coev_config_t cfg;

	coev_config_init(&cfg);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	coev_run(fn, NULL, &cfg);
}

static void child_done_below_zero_in_tasks(void *arg)
{
	(void)arg;
	run_two_workers(below_zero_main);
}

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_wg_wait(&misuse_wg);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_wg_init(&misuse_wg);
	coev_wg_add(&misuse_wg, 1);
	coev_spawn(destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_EVENT, &misuse_wg);
	coev_wg_destroy(&misuse_wg);
	fprintf(stderr, "destroy with a waiter returned\n");
	return 0;
}

static void child_destroy_with_waiter(void *arg)
{
	(void)arg;
	run_two_workers(destroy_main);
}

static void test_wg_count_below_zero_aborts(void **state)
{
	(void)state;
	expect_abort(child_done_at_zero, "done at zero");
	expect_abort(child_add_below_zero, "add below zero");
	expect_abort(child_done_below_zero_in_tasks, "done by tasks");
}

static void test_wg_destroy_with_waiters_aborts(void **state)
{
	(void)state;
	expect_abort(child_destroy_with_waiter, "destroy with a waiter");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_wg_zero_wakes_every_waiter_each_round),
		TU_FD_TEST(test_wg_tree_of_tasks_adding_for_children),
		TU_FD_TEST(test_wg_add_counts_and_negative_add),
		TU_FD_TEST(test_wg_deadline_and_cancel_while_waiting),
		TU_FD_TEST(test_wg_cancel_from_thread_and_thread_waiters),
		TU_FD_TEST(test_wg_done_races_cancel_and_timeout),
		TU_FD_TEST(test_wg_from_loop_callback),
		TU_FD_TEST(test_wg_count_below_zero_aborts),
		TU_FD_TEST(test_wg_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
