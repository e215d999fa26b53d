/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_select_wait.c — how a select's wait ends
 * (include/coev/chan.h): at its deadline or a pushed one, with
 * -ECANCELED when cancelled by a task or a plain thread (no case taking
 * effect), consistently when a cancel or deadline races the matching
 * operation, and with COEV_ENOTCORO in a loop callback, outside any task.
 */
/* tu_on_loop: a loop callback, the one context the public API gives no
 * hook for (white-box). */
#define TU_LOOP_CALLS
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

/* ---- deadlines ---------------------------------------------------------------- */

static void select_deadline_checks(void)
{
	coev_chan_t *rs = chan(0), *rr = chan(0), *full = chan(1),
		    *empty = chan(COEV_CHAN_UNBOUNDED);
	uint64_t x = 8, br = SENTINEL, be = SENTINEL, v;

	put(full, 1);
	coev_sel_t c[4] = {sel_send(rs, &x), sel_recv(rr, &br),
			   sel_send(full, &x), sel_recv(empty, &be)};
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_select_dl(c, 4, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(br, SENTINEL);
	TU_CHECK_EQ(be, SENTINEL);
	/* Nothing stayed queued or went anywhere. */
	TU_CHECK_EQ(coev_chan_try_recv(rs, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(rr, &x), -EAGAIN);
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(coev_chan_len(empty), 0);
	/* A past deadline with a ready case: it is taken. */
	put(empty, 4);
	TU_CHECK_EQ(coev_select_dl(c, 4, coev_now() - 1), 3);
	TU_CHECK_EQ(be, 4);
	coev_chan_free(rs);
	coev_chan_free(rr);
	coev_chan_free(full);
	coev_chan_free(empty);
}

static int select_deadline_main(void *arg)
{
	(void)arg;
	select_deadline_checks();
	/* A pushed deadline bounds coev_select. */
	coev_chan_t *r = chan(0);
	uint64_t b = SENTINEL;
	coev_sel_t c[1] = {sel_recv(r, &b)};
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	coev_time_t tok = coev_deadline_push(dl);
	TU_CHECK(tok >= 0);
	TU_CHECK_EQ(coev_select(c, 1), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(coev_select_dl(c, 1, tu_guard()), -ETIMEDOUT);
	coev_deadline_pop(tok);
	TU_CHECK_EQ(b, SENTINEL);
	coev_chan_free(r);
	return 0;
}

static void test_select_deadline_times_out_at_the_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(select_deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
	select_deadline_checks(); /* a plain thread */
	tu_assert_no_failures();
}

/* ---- cancellation ------------------------------------------------------------- */

typedef struct blocked_sel {
	coev_chan_t *r, *full;
	uint64_t x, b;
	atomic_int started, finished;
	int rc;
} blocked_sel_t;

static int blocked_sel(void *arg)
{
	blocked_sel_t *s = arg;
	coev_sel_t c[3] = {sel_recv(s->r, &s->b), sel_send(s->full, &s->x),
			   sel_send(s->r, &s->x)};

	atomic_store(&s->started, 1);
	s->rc = coev_select(c, 3);
	atomic_store(&s->finished, 1);
	return 0;
}

static int cancel_sel_main(void *arg)
{
	blocked_sel_t *s = arg;
	coev_task_t *t;

	TU_CHECK_EQ(coev_spawn(blocked_sel, s, &t), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_SELECT, NULL), 0);
	TU_CHECK_EQ(atomic_load(&s->finished), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), NULL), 0);
	return 0;
}

/* A select blocked on a receive and two sends, cancelled by a task and by
 * a plain thread: -ECANCELED, no effect, no case left queued, and the
 * channels work afterwards. */
static void test_select_cancel_blocked_select(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);

	(void)state;
	for (int from_task = 0; from_task < 2; from_task++) {
		blocked_sel_t s = {
			.r = chan(0), .full = chan(1), .x = 9, .b = SENTINEL};
		coev_task_t *t;
		uint64_t v = 1;
		put(s.full, 1);
		if (from_task) {
			assert_int_equal(coev_rt_spawn(rt, "main",
						       cancel_sel_main, &s, &t),
					 0);
			assert_int_equal(coev_join(t, NULL), 0);
		} else {
			assert_int_equal(coev_rt_spawn(rt, "blocked",
						       blocked_sel, &s, &t),
					 0);
			assert_int_equal(
				tu_wait_parked(rt, t, COEV_WAIT_SELECT, NULL),
				0);
			assert_int_equal(atomic_load(&s.finished), 0);
			assert_int_equal(coev_cancel(t), 0);
			assert_int_equal(coev_join_dl(t, tu_guard(), NULL), 0);
		}
		assert_int_equal(s.rc, -ECANCELED);
		assert_true(s.b == SENTINEL);
		assert_int_equal(coev_chan_try_send(s.r, &v), -EAGAIN);
		assert_int_equal(coev_chan_try_recv(s.r, &v), -EAGAIN);
		assert_int_equal(coev_chan_len(s.full), 1);
		assert_int_equal(coev_chan_try_recv(s.full, &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(coev_chan_try_recv(s.full, &v), -EAGAIN);
		coev_chan_free(s.r);
		coev_chan_free(s.full);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* ---- cancels and deadlines racing a match --------------------------------------- */

#define X_VAL 0x1111ULL
#define Y_VAL 0x2222ULL

typedef struct sel_racer {
	coev_chan_t *rdv, *one;
	bool sender;
	coev_time_t dl;
	uint64_t b0, b1; /* receive buffers, or the messages X and Y */
	atomic_int started;
	int rc, result;
} sel_racer_t;

static int sel_racer_fn(void *arg)
{
	sel_racer_t *r = arg;
	coev_sel_t c[2];

	if (r->sender) {
		c[0] = sel_send(r->rdv, &r->b0);
		c[1] = sel_send(r->one, &r->b1);
	} else {
		c[0] = sel_recv(r->rdv, &r->b0);
		c[1] = sel_recv(r->one, &r->b1);
	}
	atomic_store(&r->started, 1);
	r->rc = coev_select_dl(c, 2, r->dl);
	if (r->rc >= 0 && r->rc < 2)
		r->result = c[r->rc].result;
	return 0;
}

/*
 * One round: W (a task) selects over [rdv, one] (receiving, or sending X
 * on rdv and Y on one, which is then full of A), while the main task does
 * the matching operation on one of the two channels and W is cancelled
 * (by the main task or the helper thread) or reaches a short deadline, in
 * a random order. W's outcome and the main task's must agree.
 */
static void sel_race_round(coev_chan_t *rdv, coev_chan_t *one, canceller_t *cn,
			   uint64_t *rng, race_stats_t *st)
{
	bool sender = rnd(rng) & 1, on_rdv = rnd(rng) & 1;
	int end = (int)(rnd(rng) % END_N);
	sel_racer_t r = {.rdv = rdv, .one = one, .sender = sender};
	coev_task_t *t;
	uint64_t got = SENTINEL, v;
	int crc = 0;

	r.b0 = sender ? X_VAL : SENTINEL;
	r.b1 = sender ? Y_VAL : SENTINEL;
	r.rc = 99;
	r.dl = end == END_DEADLINE
		       ? coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS)
		       : tu_guard();
	if (sender)
		put(one, A_VAL);
	TU_CHECK_EQ(coev_spawn_named("racer", sel_racer_fn, &r, &t), 0);
	switch (rnd(rng) % 4) {
	case 0: break;
	case 1: coev_yield(); break;
	case 2: tu_spin_ns((coev_time_t)(rnd(rng) % COEV_USEC(20))); break;
	default:
		TU_CHECK_EQ(tu_wait_at_least(&r.started, 1), 0);
		tu_spin_ns((coev_time_t)(rnd(rng) % COEV_USEC(20)));
		break;
	}
	bool end_first = rnd(rng) & 1;
	for (int step = 0; step < 2; step++) {
		if ((step == 0) == end_first) {
			if (end == END_CANCEL_TASK)
				TU_CHECK_EQ(coev_cancel(t), 0);
			else if (end == END_CANCEL_THREAD)
				canceller_post(cn, t);
			continue;
		}
		coev_time_t dl =
			coev_now() + (coev_time_t)(rnd(rng) % SHORT_NS);
		v = B_VAL;
		if (!sender)
			crc = on_rdv ? coev_chan_send_dl(rdv, &v, dl)
				     : coev_chan_try_send(one, &v);
		else
			crc = on_rdv ? coev_chan_recv_dl(rdv, &got, dl)
				     : coev_chan_try_recv(one, &got);
	}
	if (end == END_CANCEL_THREAD)
		canceller_wait(cn);
	int ret = 0;
	TU_CHECK_EQ(coev_join_dl(t, tu_guard(), &ret), 0);
	if (!atomic_load(&r.started)) {
		/* Cancelled before it first ran: it never ran. */
		TU_CHECK_EQ(ret, -ECANCELED);
		r.rc = -ECANCELED;
	}

	int want_fail = end == END_DEADLINE ? -ETIMEDOUT : -ECANCELED;
	TU_CHECK_MSG(r.rc == 0 || r.rc == 1 || r.rc == want_fail,
		     "select: %d (%s)", r.rc, coev_strerror(r.rc));
	if (r.rc >= 0) {
		TU_CHECK_EQ(r.result, 0);
		st->won++;
	} else {
		st->lost++;
	}
	if (!sender) {
		/* Only the chosen buffer is written. */
		TU_CHECK(r.rc == 0 || r.b0 == SENTINEL);
		TU_CHECK(r.rc == 1 || r.b1 == SENTINEL);
		if (on_rdv) {
			TU_CHECK(crc == 0 || crc == -ETIMEDOUT);
			TU_CHECK_MSG((crc == 0) == (r.rc == 0),
				     "select %d, send %d", r.rc, crc);
			TU_CHECK(r.rc != 0 || r.b0 == B_VAL);
			TU_CHECK(r.rc != 1);
		} else {
			TU_CHECK_EQ(crc, 0);
			TU_CHECK(r.rc != 0);
			int left = coev_chan_try_recv(one, &got);
			if (r.rc == 1) {
				TU_CHECK(r.b1 == B_VAL);
				TU_CHECK_EQ(left, -EAGAIN);
			} else {
				TU_CHECK_EQ(left, 0);
				TU_CHECK(got == B_VAL);
			}
		}
	} else if (on_rdv) {
		/* The main task received on rdv: X, if W chose rdv. */
		TU_CHECK(crc == 0 || crc == -ETIMEDOUT);
		TU_CHECK_MSG((crc == 0) == (r.rc == 0), "select %d, recv %d",
			     r.rc, crc);
		TU_CHECK(crc != 0 || got == X_VAL);
		TU_CHECK(r.rc != 1);
		TU_CHECK_EQ(coev_chan_try_recv(one, &got), 0);
		TU_CHECK(got == A_VAL);
	} else {
		/* The main task took A from one; Y went in after it iff W
		 * chose one. */
		TU_CHECK_EQ(crc, 0);
		TU_CHECK(got == A_VAL);
		TU_CHECK(r.rc != 0);
		int left = coev_chan_try_recv(one, &got);
		if (r.rc == 1) {
			TU_CHECK_EQ(left, 0);
			TU_CHECK(got == Y_VAL);
		} else {
			TU_CHECK_EQ(left, -EAGAIN);
		}
	}
	TU_CHECK_EQ(coev_chan_try_recv(one, &got), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_recv(rdv, &got), -EAGAIN);
	v = 0;
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
}

static int sel_race_main(void *arg)
{
	race_stats_t *st = arg;
	coev_chan_t *rdv = chan(0), *one = chan(1);
	canceller_t cn;
	uint64_t rng = seed(77, 1);
	unsigned rounds = TU_SCALE(10000, 6000, 4000);

	canceller_start(&cn);
	for (unsigned i = 0; i < rounds && atomic_load(&tu_failures) == 0; i++)
		sel_race_round(rdv, one, &cn, &rng, st);
	coev_chan_free(rdv);
	coev_chan_free(one);
	canceller_stop(&cn);
	return 0;
}

static void
test_select_cancel_or_deadline_racing_a_match_loses_nothing(void **state)
{
	race_stats_t st = {0};

	(void)state;
	assert_int_equal(tu_run_main(sel_race_main, &st, 2), 0);
	tu_assert_no_failures();
	assert_true(st.won > 0);
	assert_true(st.lost > 0);
}

/* ---- a worker thread outside a task ---------------------------------------------- */

static void select_cb(void *arg)
{
	coev_chan_t **ch = arg; /* [0] empty rendezvous, [1] one message */
	uint64_t b0 = SENTINEL, b1 = SENTINEL;
	coev_sel_t none[1] = {sel_recv(ch[0], &b0)};
	coev_sel_t ready[2] = {sel_recv(ch[0], &b0), sel_recv(ch[1], &b1)};

	int a = coev_select_dl(none, 1, coev_now() + COEV_MSEC(10));
	TU_CHECK_EQ(a, COEV_ENOTCORO);
	if (a == COEV_ENOTCORO)
		TU_CHECK_EQ(coev_select(none, 1), COEV_ENOTCORO);
	/* Rule 4: even with a ready case, only the try form works. */
	TU_CHECK_EQ(coev_select(ready, 2), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_select_dl(ready, 2, tu_guard()), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(ch[1]), 1);
	TU_CHECK_EQ(b1, SENTINEL);
	TU_CHECK_EQ(coev_try_select(none, 1), -EAGAIN);
	TU_CHECK_EQ(coev_try_select(ready, 2), 1);
	TU_CHECK_EQ(b1, 12);
	TU_CHECK_EQ(b0, SENTINEL);
}

static int loop_cb_main(void *arg)
{
	coev_chan_t *ch[2] = {chan(0), chan(1)};

	(void)arg;
	put(ch[1], 12);
	TU_CHECK_EQ(tu_on_loop(select_cb, ch), 0);
	coev_chan_free(ch[0]);
	coev_chan_free(ch[1]);
	return 0;
}

static void test_select_loop_callback_gets_enotcoro(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_select_deadline_times_out_at_the_deadline),
		TU_FD_TEST(test_select_cancel_blocked_select),
		TU_FD_TEST(
			test_select_cancel_or_deadline_racing_a_match_loses_nothing),
		TU_FD_TEST(test_select_loop_callback_gets_enotcoro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
