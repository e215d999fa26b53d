/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_barrier.c — coev_barrier_t (include/coev/sync.h): rounds
 * reused many times by tasks on every worker and a plain thread, nobody
 * leaving a round before everyone arrived and exactly one
 * COEV_BARRIER_SERIAL per round; a party that gives up (deadline, cancel
 * from a task or a plain thread) takes its arrival back, so the round then
 * needs another party; a deadline or cancel racing the last arrival, with
 * the barrier reused across rounds; one party; calls from a loop callback
 * (which must not count as an arrival); destroying a barrier with waiters
 * aborts.
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

/* ---- rounds reused many times ------------------------------------------- */

#define PARTIES 5 /* 4 tasks and a plain thread, on two workers */
#define ROUNDS TU_SCALE(20000, 6000, 3000)

typedef struct rounds {
	coev_barrier_t b;
	int parties;
	atomic_int arrivals;
	atomic_int *serial; /* per round */
	atomic_int early, late, errors;
} rounds_t;

static void rounds_pass(rounds_t *r, int in_task, int id)
{
	for (int i = 0; i < ROUNDS; i++) {
		atomic_fetch_add(&r->arrivals, 1);
		int rc = (i + id) % 3 == 0
				 ? coev_barrier_wait_dl(&r->b, tu_guard())
				 : coev_barrier_wait(&r->b);
		if (rc < 0) {
			atomic_fetch_add(&r->errors, 1);
			return;
		}
		if (rc == COEV_BARRIER_SERIAL)
			atomic_fetch_add(&r->serial[i], 1);
		else if (rc != 0)
			atomic_fetch_add(&r->errors, 1);
		int a = atomic_load(&r->arrivals);
		/* Everyone arrived for this round; nobody got past the
		 * next one. */
		if (a < (i + 1) * r->parties)
			atomic_fetch_add(&r->early, 1);
		if (a > (i + 2) * r->parties)
			atomic_fetch_add(&r->late, 1);
		if ((i + id) % 7 == 0) {
			if (in_task)
				coev_yield();
			else
				sched_yield();
		}
	}
}

typedef struct party {
	rounds_t *r;
	int id;
} party_t;

static int rounds_task(void *arg)
{
	party_t *p = arg;

	rounds_pass(p->r, 1, p->id);
	return 0;
}

static void *rounds_thread(void *arg)
{
	party_t *p = arg;

	rounds_pass(p->r, 0, p->id);
	return NULL;
}

static void run_rounds(unsigned workers, int tasks, int threads)
{
	rounds_t *r = calloc(1, sizeof *r);
	coev_rt_t *rt = tu_new_rt(workers);
	party_t p[16];
	coev_task_t *t[16];
	pthread_t th[16];

	assert_non_null(r);
	r->parties = tasks + threads;
	r->serial = calloc(ROUNDS, sizeof *r->serial);
	assert_non_null(r->serial);
	assert_int_equal(coev_barrier_init(&r->b, (unsigned)r->parties), 0);
	for (int i = 0; i < r->parties; i++)
		p[i] = (party_t){.r = r, .id = i};
	for (int i = 0; i < tasks; i++)
		assert_int_equal(
			coev_rt_spawn(rt, "party", rounds_task, &p[i], &t[i]),
			0);
	for (int i = 0; i < threads; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rounds_thread,
						&p[tasks + i]),
				 0);
	for (int i = 0; i < tasks; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&r->errors), 0);
	assert_int_equal(atomic_load(&r->early), 0);
	assert_int_equal(atomic_load(&r->late), 0);
	assert_int_equal(atomic_load(&r->arrivals), ROUNDS * r->parties);
	for (int i = 0; i < ROUNDS; i++)
		if (atomic_load(&r->serial[i]) != 1)
			fail_msg("round %d: %d serial parties", i,
				 atomic_load(&r->serial[i]));
	coev_barrier_destroy(&r->b);
	free(r->serial);
	free(r);
}

static void test_barrier_rounds_reused_many_times(void **state)
{
	(void)state;
	run_rounds(2, PARTIES - 1, 1);
	run_rounds(2, 7, 0);
	run_rounds(3, 3, 2);
}

static void test_barrier_one_party_and_bad_arguments(void **state)
{
	coev_barrier_t b;

	(void)state;
	assert_int_equal(coev_barrier_init(NULL, 2), -EINVAL);
	assert_int_equal(coev_barrier_init(&b, 0), -EINVAL);
	assert_int_equal(coev_barrier_init(&b, 1), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(coev_barrier_wait(&b), COEV_BARRIER_SERIAL);
		assert_int_equal(coev_barrier_wait_dl(&b, coev_now() - 1),
				 COEV_BARRIER_SERIAL);
	}
	coev_barrier_destroy(&b);
	/* A plain thread alone at a barrier for two times out, and its
	 * arrival does not count afterwards. */
	assert_int_equal(coev_barrier_init(&b, 2), 0);
	assert_int_equal(coev_barrier_wait_dl(&b, coev_now() + COEV_MSEC(5)),
			 -ETIMEDOUT);
	assert_int_equal(coev_barrier_wait_dl(&b, coev_now() + COEV_MSEC(5)),
			 -ETIMEDOUT);
	coev_barrier_destroy(&b);
}

/* ---- a party that gives up takes its arrival back ----------------------- */

typedef struct bw {
	coev_barrier_t *b;
	coev_time_t deadline; /* COEV_FOREVER: coev_barrier_wait */
	coev_time_t push;
	int precancel, shield;
	atomic_int arrived, finished;
	int rc;
	coev_time_t ended;
} bw_t;

static int barrier_waiter(void *arg)
{
	bw_t *w = arg;
	coev_time_t tok = -1;

	if (w->precancel)
		coev_cancel(coev_self());
	if (w->shield)
		coev_shield_begin();
	if (w->push)
		tok = coev_deadline_push(w->push);
	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_barrier_wait(w->b)
			: coev_barrier_wait_dl(w->b, w->deadline);
	w->ended = coev_now();
	if (tok >= 0)
		coev_deadline_pop(tok);
	if (w->shield)
		coev_shield_end();
	atomic_store(&w->finished, 1);
	return w->rc;
}

static void *thread_barrier_waiter(void *arg)
{
	bw_t *w = arg;

	atomic_store(&w->arrived, 1);
	w->rc = w->deadline == COEV_FOREVER
			? coev_barrier_wait(w->b)
			: coev_barrier_wait_dl(w->b, w->deadline);
	w->ended = coev_now();
	atomic_store(&w->finished, 1);
	return NULL;
}

static int cancel_it(void *arg)
{
	return coev_cancel(arg);
}

static void *thread_cancel(void *arg)
{
	return (void *)(intptr_t)coev_cancel(arg);
}

/* Exactly one of the rcs is SERIAL, the others 0. */
static void check_round(const int *rc, int n, const char *what)
{
	int serial = 0;

	for (int i = 0; i < n; i++) {
		TU_CHECK_MSG(rc[i] == 0 || rc[i] == COEV_BARRIER_SERIAL,
			     "%s: party %d returned %d", what, i, rc[i]);
		serial += rc[i] == COEV_BARRIER_SERIAL;
	}
	TU_CHECK_MSG(serial == 1, "%s: %d serial parties", what, serial);
}

/*
 * Barrier for 3. A waits. Then, one after the other, parties come that
 * give up (each way in turn); after each, C arrives: with A and C only,
 * the round must not complete. C gives up too (a short deadline), and the
 * next way is tried. Finally two steady parties complete A's round.
 */
static int giveup_main(void *arg)
{
	coev_barrier_t b;
	bw_t a, w[6];
	coev_task_t *ta, *t[6], *c;
	pthread_t th;
	void *crc;

	(void)arg;
	TU_CHECK_EQ(coev_barrier_init(&b, 3), 0);
	a = (bw_t){.b = &b, .deadline = COEV_FOREVER};
	TU_CHECK_EQ(coev_spawn_named("A", barrier_waiter, &a, &ta), 0);
	parked(ta, COEV_WAIT_EVENT, &b);
	for (int i = 0; i < 6; i++)
		w[i] = (bw_t){.b = &b, .deadline = COEV_FOREVER};
	w[0].deadline = coev_now() + COEV_MSEC(30);
	w[1].push = coev_now() + COEV_MSEC(30);
	w[2].precancel = 1;
	for (int i = 0; i < 6; i++) {
		TU_CHECK_EQ(coev_spawn_named("quitter", barrier_waiter, &w[i],
					     &t[i]),
			    0);
		if (i >= 3) {
			parked(t[i], COEV_WAIT_EVENT, &b);
			if (i == 3)
				TU_CHECK_EQ(coev_cancel(t[i]), 0);
			if (i == 4) {
				TU_CHECK_EQ(coev_spawn(cancel_it, t[i], &c), 0);
				TU_CHECK_EQ(coev_join(c, NULL), 0);
			}
			if (i == 5) {
				TU_CHECK_EQ(pthread_create(&th, NULL,
							   thread_cancel, t[i]),
					    0);
				pthread_join(th, &crc);
				TU_CHECK_EQ((intptr_t)crc, 0);
			}
		}
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		int want = i < 2 ? -ETIMEDOUT : -ECANCELED;
		TU_CHECK_MSG(w[i].rc == want, "quitter %d returned %d", i,
			     w[i].rc);
		if (i < 2)
			TU_CHECK(w[i].ended >=
				 (i == 0 ? w[i].deadline : w[i].push));
		/* Had the quitter's arrival stayed, this one would make
		 * three. */
		bw_t cw = {.b = &b, .deadline = coev_now() + 2 * SETTLE};
		coev_task_t *tc;
		TU_CHECK_EQ(coev_spawn_named("C", barrier_waiter, &cw, &tc), 0);
		TU_CHECK_EQ(coev_join(tc, NULL), 0);
		TU_CHECK_MSG(cw.rc == -ETIMEDOUT,
			     "after quitter %d the round completed (%d)", i,
			     cw.rc);
		TU_CHECK_EQ(atomic_load(&a.finished), 0);
	}
	/* Two steady parties: one a task, one a plain thread. */
	bw_t d = {.b = &b, .deadline = COEV_FOREVER};
	bw_t e = {.b = &b, .deadline = tu_guard()};
	coev_task_t *td;
	TU_CHECK_EQ(coev_spawn_named("D", barrier_waiter, &d, &td), 0);
	parked(td, COEV_WAIT_EVENT, &b);
	TU_CHECK_EQ(atomic_load(&a.finished), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, thread_barrier_waiter, &e), 0);
	TU_CHECK_EQ(coev_join(ta, NULL), 0);
	TU_CHECK_EQ(coev_join(td, NULL), 0);
	pthread_join(th, NULL); /* after the tasks: it blocks this worker */
	int rcs[3] = {a.rc, d.rc, e.rc};
	check_round(rcs, 3, "A's round");
	/* A shielded, cancelled party waits for its round like anyone. */
	bw_t s = {
		.b = &b, .deadline = COEV_FOREVER, .precancel = 1, .shield = 1};
	bw_t f = {.b = &b, .deadline = COEV_FOREVER};
	coev_task_t *ts, *tf;
	TU_CHECK_EQ(coev_spawn_named("shielded", barrier_waiter, &s, &ts), 0);
	TU_CHECK_EQ(coev_spawn_named("F", barrier_waiter, &f, &tf), 0);
	parked(ts, COEV_WAIT_EVENT, &b);
	parked(tf, COEV_WAIT_EVENT, &b);
	TU_CHECK_EQ(atomic_load(&s.finished), 0);
	int r = coev_barrier_wait(&b);
	TU_CHECK_EQ(coev_join(ts, NULL), 0);
	TU_CHECK_EQ(coev_join(tf, NULL), 0);
	int rcs2[3] = {s.rc, f.rc, r};
	check_round(rcs2, 3, "the shielded round");
	coev_barrier_destroy(&b);
	return 0;
}

static void test_barrier_party_giving_up_takes_its_arrival_back(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(giveup_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- a give-up racing the last arrival ---------------------------------- */

/*
 * Barrier for 2, reused across rounds. A waits without a deadline; B
 * arrives with a deadline near, or is cancelled by a plain thread near,
 * the moment the round would complete... which is B's own arrival: so A's
 * round completes through B, or B gives up and then A must still wait, and
 * a third party C completes it. Either way each round has exactly two
 * successes and one SERIAL, and the barrier stays consistent.
 */
typedef struct brace {
	coev_barrier_t b;
	bw_t a, bb, c;
	coev_task_t *tb;
	sem_t go;
	atomic_int gone, quit;
	unsigned cancel_spin;
	long b_ok, b_to, b_cancelled;
} brace_t;

static void *brace_canceller(void *arg)
{
	brace_t *r = arg;

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

#define BRACE_ROUNDS TU_SCALE(10000, 3000, 1500)

static int brace_main(void *arg)
{
	brace_t *r = arg;
	unsigned seed = 0x3c6ef372u;
	pthread_t th;
	int sent = 0;

	TU_CHECK_EQ(coev_barrier_init(&r->b, 2), 0);
	TU_CHECK_EQ(pthread_create(&th, NULL, brace_canceller, r), 0);
	for (int round = 0; round < BRACE_ROUNDS; round++) {
		unsigned v = rnd_next(&seed);
		int by_cancel = round % 2;
		coev_task_t *ta;
		int ra = 0, rb = 0;

		r->a = (bw_t){.b = &r->b, .deadline = tu_guard()};
		r->bb = (bw_t){.b = &r->b, .deadline = COEV_FOREVER};
		if (!by_cancel)
			r->bb.deadline = coev_now() + (coev_time_t)(v % 40000);
		/* A first, most of the time; sometimes B first, and then
		 * sometimes with a deadline already past (it only tries:
		 * alone, it must give up). */
		int b_first = (v >> 20) % 4 == 0;
		int b_past = b_first && !by_cancel && (v >> 22) % 4 == 0;
		if (b_past)
			r->bb.deadline = coev_now() - 1;
		if (b_first) {
			TU_CHECK_EQ(coev_spawn(barrier_waiter, &r->bb, &r->tb),
				    0);
			TU_CHECK_EQ(spin_until(b_past ? &r->bb.finished
						      : &r->bb.arrived,
					       1),
				    0);
			tu_spin_ns((v >> 4) % 20000);
		}
		TU_CHECK_EQ(coev_spawn(barrier_waiter, &r->a, &ta), 0);
		if (!b_first) {
			if (v & 0x100)
				TU_CHECK_EQ(spin_until(&r->a.arrived, 1), 0);
			tu_spin_ns((v >> 4) % 20000);
			TU_CHECK_EQ(coev_spawn(barrier_waiter, &r->bb, &r->tb),
				    0);
		}
		if (by_cancel) {
			r->cancel_spin = (v >> 8) % 30000;
			sent++;
			sem_post(&r->go);
			TU_CHECK_EQ(spin_until(&r->gone, sent), 0);
		}
		if (b_past)
			TU_CHECK_EQ(r->bb.rc, -ETIMEDOUT);
		TU_CHECK_EQ(coev_join(r->tb, &rb), 0);
		if (rb < 0) {
			/* B gave up before its round completed (or never
			 * ran): its arrival does not count, A still waits
			 * and needs C. */
			TU_CHECK_EQ(atomic_load(&r->a.finished), 0);
			r->c = (bw_t){.b = &r->b, .deadline = tu_guard()};
			coev_task_t *tc;
			TU_CHECK_EQ(coev_spawn(barrier_waiter, &r->c, &tc), 0);
			TU_CHECK_EQ(coev_join(ta, &ra), 0);
			TU_CHECK_EQ(coev_join(tc, NULL), 0);
			int rcs[2] = {ra, r->c.rc};
			check_round(rcs, 2, "A and C");
			r->b_to += rb == -ETIMEDOUT;
			r->b_cancelled += rb == -ECANCELED;
			TU_CHECK_MSG(
				rb == (by_cancel ? -ECANCELED : -ETIMEDOUT),
				"round %d: B %d", round, rb);
		} else {
			TU_CHECK_EQ(coev_join(ta, &ra), 0);
			int rcs[2] = {ra, rb};
			check_round(rcs, 2, "A and B");
			r->b_ok++;
		}
		if (ra < 0)
			break;
	}
	/* Still consistent: two parties make a round at once. */
	bw_t last = {.b = &r->b, .deadline = tu_guard()};
	coev_task_t *tl;
	TU_CHECK_EQ(coev_spawn(barrier_waiter, &last, &tl), 0);
	int rl = coev_barrier_wait_dl(&r->b, tu_guard());
	TU_CHECK_EQ(coev_join(tl, NULL), 0);
	int rcs[2] = {rl, last.rc};
	check_round(rcs, 2, "after the races");
	atomic_store(&r->quit, 1);
	sem_post(&r->go);
	pthread_join(th, NULL);
	coev_barrier_destroy(&r->b);
	return 0;
}

static void test_barrier_give_up_races_last_arrival(void **state)
{
	brace_t *r = calloc(1, sizeof *r);

	(void)state;
	assert_non_null(r);
	assert_int_equal(sem_init(&r->go, 0, 0), 0);
	assert_int_equal(tu_run_main(brace_main, r, 2), 0);
	print_message("B made the round %ld times, timed out %ld, cancelled "
		      "%ld\n",
		      r->b_ok, r->b_to, r->b_cancelled);
	tu_assert_no_failures();
	assert_int_equal(r->b_ok + r->b_to + r->b_cancelled, BRACE_ROUNDS);
	assert_true(r->b_ok > 0);
	assert_true(r->b_to > 0);
	assert_true(r->b_cancelled > 0);
	sem_destroy(&r->go);
	free(r);
}

/* ---- a loop callback (a worker thread outside a task) ------------------- */

typedef struct cb {
	coev_barrier_t *b;
	int dl_rc, wait_rc;
} cb_t;

static void barrier_cb(void *arg)
{
	cb_t *c = arg;

	c->dl_rc = coev_barrier_wait_dl(c->b, coev_deadline(COEV_SEC(1)));
	c->wait_rc = c->dl_rc == COEV_ENOTCORO ? coev_barrier_wait(c->b) : 1;
}

static int cb_main(void *arg)
{
	coev_barrier_t b;
	cb_t c = {.b = &b};

	(void)arg;
	TU_CHECK_EQ(coev_barrier_init(&b, 2), 0);
	TU_CHECK_EQ(tu_on_loop(barrier_cb, &c), 0);
	TU_CHECK_EQ(c.dl_rc, COEV_ENOTCORO);
	TU_CHECK_EQ(c.wait_rc, COEV_ENOTCORO);
	/* The callback's calls were no arrivals: alone, this one waits. */
	TU_CHECK_EQ(coev_barrier_wait_dl(&b, coev_now() + COEV_MSEC(10)),
		    -ETIMEDOUT);
	bw_t w = {.b = &b, .deadline = tu_guard()};
	coev_task_t *t;
	TU_CHECK_EQ(coev_spawn(barrier_waiter, &w, &t), 0);
	int r = coev_barrier_wait_dl(&b, tu_guard());
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	int rcs[2] = {r, w.rc};
	check_round(rcs, 2, "after the callback");
	coev_barrier_destroy(&b);
	return 0;
}

static void test_barrier_from_loop_callback(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- destroy with waiters aborts ---------------------------------------- */

static coev_barrier_t misuse_b;

static int destroy_waiter(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	coev_barrier_wait(&misuse_b);
	return 0;
}

static int destroy_main(void *arg)
{
	atomic_int arrived = 0;
	coev_task_t *t;

	(void)arg;
	coev_barrier_init(&misuse_b, 2);
	coev_spawn(destroy_waiter, &arrived, &t);
	parked(t, COEV_WAIT_EVENT, &misuse_b);
	coev_barrier_destroy(&misuse_b);
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

static void test_barrier_destroy_with_waiters_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_destroy_with_waiter, NULL, res),
			 0);
	int ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "barrier");
	if (!ok)
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "barrier"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_barrier_rounds_reused_many_times),
		TU_FD_TEST(test_barrier_one_party_and_bad_arguments),
		TU_FD_TEST(test_barrier_party_giving_up_takes_its_arrival_back),
		TU_FD_TEST(test_barrier_give_up_races_last_arrival),
		TU_FD_TEST(test_barrier_from_loop_callback),
		TU_FD_TEST(test_barrier_destroy_with_waiters_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
