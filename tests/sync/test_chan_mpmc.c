/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_chan_mpmc.c — channels (include/coev/chan.h) with many
 * producers and consumers: tasks and plain threads (and plain threads
 * without a runtime) on bounded, unbounded and rendezvous channels losing
 * and duplicating nothing, every call form mixed, each sender's messages
 * seen in order, and waiters served first come, first served.
 *
 * mp_run (chan_util.h) runs one exchange and checks it with the ledger:
 * what was reported sent is received, once.
 */
#include "tests/testutil.h"
#include "tests/sync/chan_util.h"

/* ---- many producers and consumers ----------------------------------------- */

static void test_chan_bounded_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	/* Capacity 1: every message contends. */
	mp_cfg_t c1 = {.cap = 1,
		       .task_prod = 6,
		       .task_cons = 6,
		       .per = MP_TOTAL / 2 / 6,
		       .send_how = HOW_BLOCK,
		       .recv_how = HOW_BLOCK};
	mp_run_once(&c1);
	/* A larger buffer, more producers than consumers. */
	mp_cfg_t c64 = {.cap = 64,
			.task_prod = 8,
			.task_cons = 3,
			.per = MP_TOTAL / 2 / 8,
			.send_how = HOW_BLOCK,
			.recv_how = HOW_BLOCK};
	mp_run_once(&c64);
}

static void test_chan_unbounded_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	mp_cfg_t c = {.cap = COEV_CHAN_UNBOUNDED,
		      .task_prod = 8,
		      .task_cons = 8,
		      .per = MP_TOTAL / 8,
		      .send_how = HOW_BLOCK,
		      .recv_how = HOW_BLOCK};
	mp_run_once(&c);
}

static void test_chan_rendezvous_mpmc_loses_and_duplicates_nothing(void **state)
{
	(void)state;
	mp_cfg_t c = {.cap = 0,
		      .task_prod = 8,
		      .task_cons = 8,
		      .per = MP_TOTAL / 8,
		      .send_how = HOW_BLOCK,
		      .recv_how = HOW_BLOCK};
	mp_run_once(&c);
}

/* One consumer sees each producer's messages strictly consecutively. */
static void test_chan_single_consumer_sees_each_sender_in_order(void **state)
{
	static const size_t caps[] = {0, 4, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 4,
			      .thread_prod = 2,
			      .task_cons = i != 1,
			      .thread_cons = i == 1,
			      .per = TU_SCALE(40000, 30000, 20000),
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .consecutive = true};
		mp_run_once(&c);
	}
}

/* Tasks and plain threads on both sides, each call taking a random form
 * (blocking, try, short deadline), with a thread watching len <= cap. */
static void test_chan_tasks_and_threads_mixed_with_every_call_form(void **state)
{
	static const size_t caps[] = {0, 3, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .task_prod = 3,
			      .thread_prod = 2,
			      .task_cons = 3,
			      .thread_cons = 2,
			      .per = TU_SCALE(60000, 40000, 30000),
			      .send_how = HOW_MIX,
			      .recv_how = HOW_MIX,
			      .monitor_len = true};
		mp_run_once(&c);
	}
}

/* No runtime at all: plain threads block on the channel by themselves. */
static void test_chan_plain_threads_without_a_runtime(void **state)
{
	static const size_t caps[] = {0, 3, COEV_CHAN_UNBOUNDED};

	(void)state;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		mp_cfg_t c = {.cap = caps[i],
			      .thread_prod = 3,
			      .thread_cons = 3,
			      .per = TU_SCALE(40000, 30000, 20000),
			      .send_how = i == 1 ? HOW_MIX : HOW_BLOCK,
			      .recv_how = i == 1 ? HOW_BLOCK : HOW_MIX};
		mp_run_once(&c);
	}
}

/* ---- order of waiters ---------------------------------------------------- */

#define QN 6

/* Spawns fn for q[0..QN), each after the previous one is in the channel's
 * queue (seen parked on it). */
static void queue_up(coev_chan_t *ch, coev_fn fn, qw_t *q, coev_task_t **t,
		     uint64_t base)
{
	for (int i = 0; i < QN; i++) {
		q[i] = (qw_t){.ch = ch, .val = base + (uint64_t)i};
		TU_CHECK_EQ(coev_spawn_named("queued", fn, &q[i], &t[i]), 0);
		TU_CHECK_EQ(tu_wait_parked(NULL, t[i], COEV_WAIT_CHANNEL, ch),
			    0);
	}
}

static void join_all(coev_task_t **t, int n)
{
	for (int i = 0; i < n; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
}

static int order_main(void *arg)
{
	coev_chan_t *ch;
	coev_task_t *t[QN];
	qw_t q[QN];
	uint64_t v;

	(void)arg;
	/* Senders waiting on a rendezvous channel are served in order. */
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 0), 0);
	queue_up(ch, qw_sender, q, t, 0);
	for (int i = 0; i < QN; i++) {
		TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), 0);
		TU_CHECK_EQ(v, i);
	}
	join_all(t, QN);
	for (int i = 0; i < QN; i++)
		TU_CHECK_EQ(q[i].rc, 0);

	/* Receivers waiting on it too; sends follow each other at once. */
	queue_up(ch, qw_receiver, q, t, 1000);
	for (int i = 0; i < QN; i++) {
		v = (uint64_t)i;
		TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
	}
	join_all(t, QN);
	for (int i = 0; i < QN; i++) {
		TU_CHECK_EQ(q[i].rc, 0);
		TU_CHECK_EQ(q[i].val, i);
	}
	coev_chan_free(ch);

	/* Senders waiting on a full bounded channel: the buffered messages
	 * first, then the waiters' in the order they came. */
	TU_CHECK_EQ(coev_chan_new(&ch, sizeof v, 2), 0);
	v = 100;
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
	v = 101;
	TU_CHECK_EQ(coev_chan_try_send(ch, &v), 0);
	queue_up(ch, qw_sender, q, t, 0);
	TU_CHECK_EQ(coev_chan_len(ch), 2);
	for (int i = 0; i < QN + 2; i++) {
		TU_CHECK_EQ(coev_chan_recv_dl(ch, &v, tu_guard()), 0);
		TU_CHECK_EQ(v, i < 2 ? 100 + i : i - 2);
	}
	join_all(t, QN);

	/* Receivers waiting on an empty bounded channel, and on an
	 * unbounded one: the first to wait gets the first message. */
	for (int k = 0; k < 2; k++) {
		if (k == 1) {
			coev_chan_free(ch);
			TU_CHECK_EQ(coev_chan_new(&ch, sizeof v,
						  COEV_CHAN_UNBOUNDED),
				    0);
		}
		queue_up(ch, qw_receiver, q, t, 1000);
		for (int i = 0; i < QN; i++) {
			v = (uint64_t)i;
			TU_CHECK_EQ(coev_chan_send_dl(ch, &v, tu_guard()), 0);
		}
		join_all(t, QN);
		for (int i = 0; i < QN; i++) {
			TU_CHECK_EQ(q[i].rc, 0);
			TU_CHECK_MSG(q[i].val == (uint64_t)i,
				     "%s: receiver %d (queued %d-th) got %llu",
				     k ? "unbounded" : "bounded", i, i,
				     (unsigned long long)q[i].val);
		}
	}
	coev_chan_free(ch);
	return 0;
}

static void test_chan_waiters_are_served_in_order(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(order_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_chan_bounded_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(
			test_chan_unbounded_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(
			test_chan_rendezvous_mpmc_loses_and_duplicates_nothing),
		TU_FD_TEST(test_chan_single_consumer_sees_each_sender_in_order),
		TU_FD_TEST(
			test_chan_tasks_and_threads_mixed_with_every_call_form),
		TU_FD_TEST(test_chan_plain_threads_without_a_runtime),
		TU_FD_TEST(test_chan_waiters_are_served_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
