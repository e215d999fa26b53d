/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_wait.c — how long and where a channel operation
 * waits (include/coev/chan.h): deadlines (timing out at the deadline, a
 * past deadline that only tries, a pushed deadline, a storm of short
 * deadlines racing partners without losing a message), and the waiting
 * forms answering COEV_ENOTCORO in a loop callback, outside any task.
 */
/* tu_on_loop: a loop callback, the one context the public API gives no
 * hook for (white-box). */
#define TU_LOOP_CALLS
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

/* ---- deadlines ----------------------------------------------------------- */

/* Each blocked form with a deadline 20 ms ahead: -ETIMEDOUT, not before
 * the deadline, nothing sent or received; the channel works afterwards. */
static void deadline_checks(void)
{
	coev_chan_t *full, *empty, *rdv;
	uint64_t v = 1, out = 0xDEAD;
	coev_time_t dl;

	TU_CHECK_EQ(coev_chan_new(&full, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&empty, sizeof v, COEV_CHAN_UNBOUNDED), 0);
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	TU_CHECK_EQ(coev_chan_try_send(full, &v), 0);

	v = 2;
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_send_dl(full, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_recv_dl(empty, &out, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	dl = coev_now() + COEV_MSEC(20);
	TU_CHECK_EQ(coev_chan_recv_dl(rdv, &out, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(out, 0xDEAD);

	/* Nothing was left behind: the full channel holds its one message,
	 * the rendezvous channel has no sender or receiver queued. */
	TU_CHECK_EQ(coev_chan_len(full), 1);
	TU_CHECK_EQ(coev_chan_try_recv(full, &out), 0);
	TU_CHECK_EQ(out, 1);
	TU_CHECK_EQ(coev_chan_try_recv(full, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_recv(rdv, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(full, &v), 0);
	TU_CHECK_EQ(coev_chan_try_send(empty, &v), 0);
	TU_CHECK_EQ(coev_chan_try_recv(empty, &out), 0);
	TU_CHECK_EQ(out, 2);
	coev_chan_free(full);
	coev_chan_free(empty);
	coev_chan_free(rdv);
}

static int deadline_main(void *arg)
{
	(void)arg;
	deadline_checks();
	return 0;
}

static void test_chan_deadline_times_out_at_the_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
	/* A plain thread. */
	deadline_checks();
	tu_assert_no_failures();
}

/* A deadline at or before now only tries: it succeeds when it can at once
 * (a receiver is waiting on a rendezvous channel), and otherwise fails
 * without leaving anything queued. */
static int past_receiver(void *arg)
{
	qw_t *q = arg;

	atomic_store(&q->started, 1);
	q->rc = coev_chan_recv_dl(q->ch, &q->val, coev_now() + COEV_MSEC(30));
	return 0;
}

static int past_main(void *arg)
{
	coev_chan_t *rdv;
	coev_task_t *t;
	qw_t q;
	uint64_t v = 5;
	const coev_time_t past[] = {0, 1, coev_now() - 1, coev_now()};

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, past[i]), -ETIMEDOUT);
		TU_CHECK_EQ(coev_chan_recv_dl(rdv, &v, past[i]), -ETIMEDOUT);
	}
	/* No sender stayed queued: a receiver waiting now gets nothing. */
	q = (qw_t){.ch = rdv, .val = 0xDEAD};
	TU_CHECK_EQ(coev_spawn(past_receiver, &q, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(q.rc, -ETIMEDOUT);
	TU_CHECK_EQ(q.val, 0xDEAD);

	/* With a receiver waiting, a send with a past deadline succeeds. */
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		q = (qw_t){.ch = rdv, .val = 0xDEAD};
		TU_CHECK_EQ(coev_spawn_named("queued", qw_receiver, &q, &t), 0);
		TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_CHANNEL, rdv), 0);
		v = 10 + i;
		TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, past[i]), 0);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		TU_CHECK_EQ(q.rc, 0);
		TU_CHECK_EQ(q.val, 10 + i);
	}
	/* With a sender waiting, a receive with a past deadline succeeds. */
	q = (qw_t){.ch = rdv, .val = 99};
	TU_CHECK_EQ(coev_spawn_named("queued", qw_sender, &q, &t), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_CHANNEL, rdv), 0);
	v = 0;
	TU_CHECK_EQ(coev_chan_recv_dl(rdv, &v, coev_now() - 1), 0);
	TU_CHECK_EQ(v, 99);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(q.rc, 0);
	coev_chan_free(rdv);
	return 0;
}

static void test_chan_past_deadline_only_tries(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(past_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* A deadline pushed with coev_deadline_push bounds the forms without one. */
static int pushed_main(void *arg)
{
	coev_chan_t *rdv;
	uint64_t v = 1;

	(void)arg;
	TU_CHECK_EQ(coev_chan_new(&rdv, sizeof v, 0), 0);
	coev_time_t dl = coev_now() + COEV_MSEC(20);
	coev_time_t tok = coev_deadline_push(dl);
	TU_CHECK(tok >= 0);
	TU_CHECK_EQ(coev_chan_recv(rdv, &v), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(coev_chan_send(rdv, &v), -ETIMEDOUT);
	/* The earlier deadline wins over the call's own. */
	TU_CHECK_EQ(coev_chan_send_dl(rdv, &v, tu_guard()), -ETIMEDOUT);
	coev_deadline_pop(tok);
	TU_CHECK_EQ(coev_chan_try_send(rdv, &v), -EAGAIN);
	coev_chan_free(rdv);
	return 0;
}

static void test_chan_pushed_deadline_applies(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(pushed_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadlines racing partners ------------------------------------------- */

/* Every send and receive with a short random deadline, retried when it
 * times out: a waiter handed a message as its deadline passed must
 * report success, or the message is lost or doubled. Plain threads time
 * out precisely (a task's timer has the loop's granularity) and random
 * pauses between operations make deadlines pass while partners arrive. */
static void test_chan_deadline_storm_loses_nothing(void **state)
{
	static const size_t caps[] = {0, 1, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 4,
			      .thread_prod = 1,
			      .task_cons = 4,
			      .thread_cons = 1,
			      .per = TU_SCALE(30000, 20000, 15000),
			      .send_how = HOW_DL,
			      .recv_how = HOW_DL};
		mp_run_once(&c);
		mp_cfg_t j = {.cap = caps[i],
			      .task_prod = 1,
			      .thread_prod = 2,
			      .task_cons = 1,
			      .thread_cons = 2,
			      .per = TU_SCALE(20000, 10000, 8000),
			      .send_how = HOW_DL,
			      .recv_how = HOW_DL,
			      .jitter = SHORT_NS};
		mp_run_once(&j);
	}
}

/* ---- a worker thread outside a task ------------------------------------------ */

typedef struct cb_chans {
	coev_chan_t *empty, *full, *rdv, *unb;
} cb_chans_t;

static void must_wait_cb(void *arg)
{
	cb_chans_t *c = arg;
	uint64_t v = 3, out = SENTINEL;
	coev_time_t soon = coev_now() + COEV_MSEC(10);

	/* The _dl forms first, so that a broken check cannot block the
	 * worker for long; the forms without deadline only if they passed. */
	int a = coev_chan_recv_dl(c->empty, &out, soon);
	int b = coev_chan_send_dl(c->full, &v, soon);
	int d = coev_chan_send_dl(c->rdv, &v, soon);
	int e = coev_chan_recv_dl(c->rdv, &out, soon);
	TU_CHECK_EQ(a, COEV_ENOTCORO);
	TU_CHECK_EQ(b, COEV_ENOTCORO);
	TU_CHECK_EQ(d, COEV_ENOTCORO);
	TU_CHECK_EQ(e, COEV_ENOTCORO);
	if (a == COEV_ENOTCORO && b == COEV_ENOTCORO && d == COEV_ENOTCORO &&
	    e == COEV_ENOTCORO) {
		TU_CHECK_EQ(coev_chan_recv(c->empty, &out), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_send(c->full, &v), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_send(c->rdv, &v), COEV_ENOTCORO);
		TU_CHECK_EQ(coev_chan_recv(c->rdv, &out), COEV_ENOTCORO);
	}
	TU_CHECK(out == SENTINEL);
	/* The try forms, len and close work there. */
	TU_CHECK_EQ(coev_chan_try_recv(c->empty, &out), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(c->full, &v), -EAGAIN);
	TU_CHECK_EQ(coev_chan_try_send(c->empty, &v), 0);
	TU_CHECK_EQ(coev_chan_try_recv(c->empty, &out), 0);
	TU_CHECK_EQ(out, 3);
	TU_CHECK_EQ(coev_chan_try_send(c->unb, &v), 0);
	TU_CHECK_EQ(coev_chan_len(c->unb), 1);
	TU_CHECK_EQ(coev_chan_close(c->unb), 0);
	TU_CHECK_EQ(coev_chan_try_send(c->unb, &v), COEV_ECLOSED);
}

/* Rule 4 says the waiting forms return COEV_ENOTCORO there, even when they
 * would not have to wait; nothing may happen then. */
static void could_complete_cb(void *arg)
{
	cb_chans_t *c = arg;
	uint64_t v = 9, out = SENTINEL;

	TU_CHECK_EQ(coev_chan_send(c->empty, &v), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_send_dl(c->empty, &v, tu_guard()), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(c->empty), 0);
	TU_CHECK_EQ(coev_chan_send(c->unb, &v), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_len(c->unb), 0);
	TU_CHECK_EQ(coev_chan_recv(c->full, &out), COEV_ENOTCORO);
	TU_CHECK_EQ(coev_chan_recv_dl(c->full, &out, tu_guard()),
		    COEV_ENOTCORO);
	TU_CHECK(out == SENTINEL);
	TU_CHECK_EQ(coev_chan_len(c->full), 1);
}

static int loop_cb_main(void *arg)
{
	cb_chans_t c;
	uint64_t v = 1;
	bool ready = arg != NULL;

	TU_CHECK_EQ(coev_chan_new(&c.empty, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&c.full, sizeof v, 1), 0);
	TU_CHECK_EQ(coev_chan_new(&c.rdv, sizeof v, 0), 0);
	TU_CHECK_EQ(coev_chan_new(&c.unb, sizeof v, COEV_CHAN_UNBOUNDED), 0);
	TU_CHECK_EQ(coev_chan_try_send(c.full, &v), 0);
	TU_CHECK_EQ(tu_on_loop(ready ? could_complete_cb : must_wait_cb, &c),
		    0);
	coev_chan_free(c.empty);
	coev_chan_free(c.full);
	coev_chan_free(c.rdv);
	coev_chan_free(c.unb);
	return 0;
}

static void
test_chan_loop_callback_gets_enotcoro_from_waiting_forms(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void test_chan_loop_callback_gets_enotcoro_even_when_ready(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(loop_cb_main, (void *)1, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_deadline_times_out_at_the_deadline),
		TU_FD_TEST(test_chan_past_deadline_only_tries),
		TU_FD_TEST(test_chan_pushed_deadline_applies),
		TU_FD_TEST(test_chan_deadline_storm_loses_nothing),
		TU_FD_TEST(
			test_chan_loop_callback_gets_enotcoro_from_waiting_forms),
		TU_FD_TEST(
			test_chan_loop_callback_gets_enotcoro_even_when_ready),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
