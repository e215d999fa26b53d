/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_close.c — closing a channel (include/coev/chan.h):
 * the buffered messages drain, then every form reports COEV_ECLOSED; of
 * many concurrent closes exactly one succeeds; a close wakes every blocked
 * sender and receiver; a close racing senders and receivers in every form
 * loses and duplicates nothing.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

/* ---- close --------------------------------------------------------------- */

/* Close with messages buffered: sends fail, the buffered messages come out
 * in order, then COEV_ECLOSED from every receive form. */
static void close_drain(size_t cap)
{
	coev_chan_t *ch;
	uint64_t v;
	unsigned n = cap == 0 ? 0 : 3;

	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, cap), 0);
	for (unsigned i = 0; i < n; i++) {
		v = i;
		TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
	}
	TU_CHECK_EQ(coev_chan_close(ch), 0);
	TU_CHECK_EQ(coev_chan_closed(ch), 1);
	TU_CHECK_EQ(coev_chan_len(ch), n);
	v = 500;
	TU_CHECK_EQ(coev_chan_send(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_send_dl(ch, &v, 0), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(v, 500);
	TU_CHECK_EQ(coev_chan_len(ch), n);
	for (unsigned i = 0; i < n; i++) {
		v = 999;
		int rc = i == 0	  ? coev_chan_recv(ch, &v)
			 : i == 1 ? coev_chan_try_recv(ch, &v)
				  : coev_chan_recv_dl(ch, &v, tu_guard());
		TU_CHECK_EQ(rc, 0);
		TU_CHECK_EQ(v, i);
	}
	v = 999;
	TU_CHECK_EQ(coev_chan_recv(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, 0), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_try_recv(ch, &v), COEV_ECLOSED);
	TU_CHECK_EQ(v, 999);
	TU_CHECK_EQ(coev_chan_close(ch), COEV_ECLOSED);
	TU_CHECK_EQ(coev_chan_closed(ch), 1);
	coev_chan_free(ch);
}

static int close_drain_main(void *arg)
{
	(void)arg;
	close_drain(0);
	close_drain(3);
	close_drain(8);
	close_drain(COEV_CHAN_UNBOUNDED);
	return 0;
}

static void test_chan_close_drains_then_reports_closed(void **state)
{
	(void)state;
	/* From a plain thread, then from a task. */
	close_drain_main(NULL);
	tu_assert_no_failures();
	assert_int_equal(tu_run_main(close_drain_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* Many closers at once: exactly one gets 0. */
typedef struct closer {
	coev_chan_t *ch;
	atomic_int *go, *zero, *closed;
} closer_t;

static int closer_fn(void *arg)
{
	closer_t *c = arg;

	while (!atomic_load(c->go))
		relax();
	int rc = coev_chan_close(c->ch);
	if (rc == 0)
		atomic_fetch_add(c->zero, 1);
	else if (rc == COEV_ECLOSED)
		atomic_fetch_add(c->closed, 1);
	else
		TU_CHECK_MSG(0, "close: %s", coev_strerror(rc));
	return 0;
}

static void *closer_thread(void *arg)
{
	closer_fn(arg);
	return NULL;
}

static void test_chan_close_twice_returns_closed(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(300, 200, 150);

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		atomic_int go = 0, zero = 0, closed = 0;
		coev_task_t *t[3];
		pthread_t th[3];
		coev_chan_t *ch;
		closer_t c;
		assert_int_equal(coev_chan_new(&ch, 4, r % 3), 0);
		c = (closer_t){
			.ch = ch, .go = &go, .zero = &zero, .closed = &closed};
		for (int i = 0; i < 3; i++) {
			assert_int_equal(coev_rt_spawn(rt, "closer", closer_fn,
						       &c, &t[i]),
					 0);
			assert_int_equal(
				pthread_create(&th[i], NULL, closer_thread, &c),
				0);
		}
		atomic_store(&go, 1);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(coev_join(t[i], NULL), 0);
			pthread_join(th[i], NULL);
		}
		assert_int_equal(atomic_load(&zero), 1);
		assert_int_equal(atomic_load(&closed), 5);
		assert_int_equal(coev_chan_close(ch), COEV_ECLOSED);
		coev_chan_free(ch);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/*
 * Close while tasks and threads are blocked: senders on a full bounded
 * channel and on a rendezvous channel, receivers on an empty bounded,
 * unbounded and rendezvous channel. Every one of them returns
 * COEV_ECLOSED; the full channel's buffered messages still drain.
 */
enum { CW_FULL, CW_RDV_SEND, CW_EMPTY, CW_UNB, CW_RDV_RECV, CW_N };

typedef struct cw {
	coev_chan_t *ch;
	bool sender;
	bool forever; /* no deadline: only the close can end it */
	atomic_int started;
	atomic_int finished;
	uint64_t val;
	int rc;
	tu_thread_at_t at; /* a plain thread's, for tu_wait_thread_parked */
} cw_t;

static int cw_fn(void *arg)
{
	cw_t *w = arg;
	coev_time_t dl = w->forever ? COEV_FOREVER : tu_guard();

	w->val = 4242;
	if (!coev_self())
		TU_THREAD_AT(&w->at);
	atomic_store(&w->started, 1);
	w->rc = w->sender ? coev_chan_send_dl(w->ch, &w->val, dl)
			  : coev_chan_recv_dl(w->ch, &w->val, dl);
	atomic_store(&w->finished, 1);
	return 0;
}

static void *cw_thread(void *arg)
{
	cw_fn(arg);
	return NULL;
}

static void test_chan_close_wakes_every_blocked_waiter(void **state)
{
	enum { TASKS = 3, THREADS = 1, PER = TASKS + THREADS };
	static const size_t caps[CW_N] = {2, 0, 2, COEV_CHAN_UNBOUNDED, 0};
	coev_rt_t *rt = tu_new_rt(2);
	coev_chan_t *ch[CW_N];
	cw_t w[CW_N][PER];
	coev_task_t *t[CW_N][TASKS];
	pthread_t th[CW_N][THREADS];
	uint64_t v;

	(void)state;
	for (int k = 0; k < CW_N; k++) {
		assert_int_equal(coev_chan_new(&ch[k], sizeof v, caps[k]), 0);
		if (k == CW_FULL) {
			for (v = 1; v <= 2; v++)
				assert_int_equal(coev_chan_try_send(ch[k], &v),
						 0);
		}
		for (int i = 0; i < PER; i++) {
			w[k][i] = (cw_t){.ch = ch[k],
					 .sender = k == CW_FULL ||
						   k == CW_RDV_SEND,
					 .forever = i == 0};
			if (i < TASKS)
				assert_int_equal(coev_rt_spawn(rt, "blocked",
							       cw_fn, &w[k][i],
							       &t[k][i]),
						 0);
			else
				assert_int_equal(
					pthread_create(&th[k][i - TASKS], NULL,
						       cw_thread, &w[k][i]),
					0);
		}
	}
	/* Every one in its wait before the close. */
	for (int k = 0; k < CW_N; k++)
		for (int i = 0; i < PER; i++) {
			assert_int_equal(
				tu_thread_wait_at_least(&w[k][i].started, 1),
				0);
			if (i < TASKS)
				assert_int_equal(
					tu_wait_parked(rt, t[k][i],
						       COEV_WAIT_CHANNEL,
						       ch[k]),
					0);
			else
				assert_int_equal(
					tu_wait_thread_parked(&w[k][i].at), 0);
		}
	for (int k = 0; k < CW_N; k++)
		for (int i = 0; i < PER; i++)
			assert_int_equal(atomic_load(&w[k][i].finished), 0);
	for (int k = 0; k < CW_N; k++)
		assert_int_equal(coev_chan_close(ch[k]), 0);
	for (int k = 0; k < CW_N; k++) {
		for (int i = 0; i < PER; i++) {
			if (i < TASKS) {
				int rc =
					coev_join_dl(t[k][i], tu_guard(), NULL);
				if (rc != 0) {
					fail_msg("kind %d waiter %d not woken "
						 "by the close",
						 k, i);
				}
			} else {
				pthread_join(th[k][i - TASKS], NULL);
			}
			if (w[k][i].rc != COEV_ECLOSED)
				fail_msg("kind %d waiter %d: %d (%s)", k, i,
					 w[k][i].rc, coev_strerror(w[k][i].rc));
			/* A receiver got nothing. */
			assert_int_equal(w[k][i].val, 4242);
		}
	}
	/* The full channel still hands out what it held. */
	for (uint64_t i = 1; i <= 2; i++) {
		assert_int_equal(coev_chan_recv(ch[CW_FULL], &v), 0);
		assert_int_equal(v, i);
	}
	for (int k = 0; k < CW_N; k++) {
		assert_int_equal(coev_chan_try_recv(ch[k], &v), COEV_ECLOSED);
		coev_chan_free(ch[k]);
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* Close at a random moment while tasks and threads send and receive in
 * every form: what was reported sent is received, once; what failed with
 * COEV_ECLOSED never shows up. */
static void test_chan_close_racing_senders_loses_nothing(void **state)
{
	static const size_t caps[] = {0, 1, 4, COEV_CHAN_UNBOUNDED};
	coev_rt_t *rt = tu_new_rt(2);
	unsigned rounds = TU_SCALE(400, 200, 150);
	long long sent_total = 0, closed_early = 0;

	(void)state;
	for (unsigned r = 0; r < rounds; r++) {
		mp_cfg_t c = {.cap = caps[r % 4],
			      .task_prod = 2,
			      .thread_prod = 1,
			      .task_cons = 2,
			      .thread_cons = 1,
			      .per = 2000,
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .close_early = true,
			      .close_within =
				      COEV_USEC(TU_SCALE(2000, 4000, 8000))};
		long long sent = mp_run(&c, rt, r);
		sent_total += sent;
		closed_early += sent < 3 * 2000;
		tu_assert_no_failures();
	}
	/* The closes did land in the middle of the traffic. */
	assert_true(closed_early > 0);
	(void)sent_total;
	coev_rt_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_close_drains_then_reports_closed),
		TU_FD_TEST(test_chan_close_twice_returns_closed),
		TU_FD_TEST(test_chan_close_wakes_every_blocked_waiter),
		TU_FD_TEST(test_chan_close_racing_senders_loses_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
