/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_broadcast.c — the broadcast channel (coev/broadcast.h):
 * many receivers (tasks on two workers with forced migration, and plain
 * threads) each see every value in order, or a COEV_ELAGGED whose count is
 * exactly the gap; a sender outside the runtime; exact lag counts and
 * pending counts; close drains kept values, then COEV_ECLOSED, and wakes
 * waiting receivers; the creator's free with receivers still waiting;
 * deadlines and cancellation lose nothing; late subscribers see only
 * later values; argument errors and unsubscribing a waiting receiver.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---- many receivers: in order, gaps exactly as reported ---------------- */

#define VALUES TU_SCALE(20000, 5000, 2000)
#define RX_TASKS 8
#define RX_THREADS 2

typedef struct fan {
	coev_bcast_t *b;
	coev_bcast_rx_t *rx[RX_TASKS + RX_THREADS];
	long long seen[RX_TASKS + RX_THREADS];	 /* values received */
	long long missed[RX_TASKS + RX_THREADS]; /* their COEV_ELAGGED counts */
	long long last[RX_TASKS + RX_THREADS];
	bool lossless; /* capacity >= VALUES: no receiver may lag */
	atomic_int ready;
} fan_t;

/* Receive until closed: each value is the one after the last (plus what a
 * COEV_ELAGGED just said was skipped). */
static void fan_drain(fan_t *f, int i)
{
	long long expect = 0, v;
	int r;

	for (;;) {
		r = i % 3 == 2 ? coev_bcast_recv_dl(f->rx[i], &v, tu_guard())
			       : coev_bcast_recv(f->rx[i], &v);
		if (r == COEV_ECLOSED)
			break;
		if (r == COEV_ELAGGED) {
			uint64_t m = coev_bcast_missed(f->rx[i]);
			TU_CHECK_MSG(!f->lossless, "receiver %d lagged", i);
			TU_CHECK_MSG(m > 0, "receiver %d: lagged by 0", i);
			f->missed[i] += (long long)m;
			expect += (long long)m;
			continue;
		}
		TU_CHECK_EQ(r, 0);
		if (r != 0)
			return;
		TU_CHECK_EQ(v, expect);
		expect = v + 1;
		f->seen[i]++;
		f->last[i] = v;
	}
	/* Closed and drained: stays so. */
	TU_CHECK_EQ(coev_bcast_try_recv(f->rx[i], &v), COEV_ECLOSED);
}

static int fan_task(void *arg)
{
	fan_t *f = arg;
	int i = atomic_fetch_add(&f->ready, 1);

	fan_drain(f, i);
	return 0;
}

static void *fan_thread(void *arg)
{
	fan_t *f = arg;
	int i = atomic_fetch_add(&f->ready, 1);

	fan_drain(f, i);
	return NULL;
}

static void *fan_send_thread(void *arg)
{
	fan_t *f = arg;

	for (long long v = 0; v < VALUES; v++) {
		int r = coev_bcast_send(f->b, &v);
		TU_CHECK_EQ(r, RX_TASKS + RX_THREADS);
		/* Some breathing room now and then, so that receivers both
		 * keep up and fall behind during the run. */
		if (v % 512 == 0)
			sched_yield();
	}
	TU_CHECK_EQ(coev_bcast_close(f->b), 0);
	return NULL;
}

static void fan_run(size_t cap, bool migrate)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	coev_task_t *t[RX_TASKS];
	pthread_t th[RX_THREADS], sender;
	fan_t *f = calloc(1, sizeof *f);

	assert_non_null(f);
	if (migrate)
		cfg.debug |= COEV_DEBUG_MIGRATE;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_bcast_new(&f->b, sizeof(long long), cap), 0);
	f->lossless = cap >= VALUES;
	for (int i = 0; i < RX_TASKS + RX_THREADS; i++)
		assert_int_equal(coev_bcast_subscribe(f->b, &f->rx[i]), 0);
	assert_int_equal(coev_bcast_receivers(f->b), RX_TASKS + RX_THREADS);
	for (int i = 0; i < RX_TASKS; i++)
		assert_int_equal(coev_rt_spawn(rt, "rx", fan_task, f, &t[i]),
				 0);
	for (int i = 0; i < RX_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fan_thread, f),
				 0);
	/* The sender is a plain thread outside the runtime. */
	assert_int_equal(pthread_create(&sender, NULL, fan_send_thread, f), 0);
	pthread_join(sender, NULL);
	for (int i = 0; i < RX_TASKS; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	for (int i = 0; i < RX_THREADS; i++)
		pthread_join(th[i], NULL);
	tu_assert_no_failures();
	for (int i = 0; i < RX_TASKS + RX_THREADS; i++) {
		/* Every value was either seen or counted as missed, and the
		 * last one was seen: close hands over all that is kept. */
		assert_int_equal(f->seen[i] + f->missed[i], VALUES);
		assert_int_equal(f->last[i], VALUES - 1);
		if (f->lossless)
			assert_int_equal(f->seen[i], VALUES);
		coev_bcast_unsubscribe(f->rx[i]);
	}
	coev_bcast_free(f->b);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	free(f);
}

static void test_broadcast_every_receiver_sees_every_value(void **state)
{
	(void)state;
	fan_run(VALUES, true);
}

static void test_broadcast_small_ring_lags_exactly(void **state)
{
	(void)state;
	fan_run(4, true);
	fan_run(64, false);
}

/* ---- lag and pending counts, one task ------------------------------- */

static int lag_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	int v;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 4), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &rx), 0);
	TU_CHECK_EQ(coev_bcast_missed(rx), 0);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), -EAGAIN);
	for (v = 0; v < 10; v++)
		TU_CHECK_EQ(coev_bcast_send(b, &v), 1);
	TU_CHECK_EQ(coev_bcast_pending(rx), 4);
	/* Ten sent, four kept: six missed, then the oldest kept. */
	v = -1;
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), COEV_ELAGGED);
	TU_CHECK_EQ(v, -1);
	TU_CHECK_EQ(coev_bcast_missed(rx), 6);
	for (int want = 6; want < 10; want++) {
		TU_CHECK_EQ(coev_bcast_recv(rx, &v), 0);
		TU_CHECK_EQ(v, want);
	}
	TU_CHECK_EQ(coev_bcast_pending(rx), 0);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), -EAGAIN);
	/* Exactly the capacity behind is not lagging. */
	for (v = 10; v < 14; v++)
		coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 10);
	/* Next is 11, kept 10..13; one more send keeps 11..14: still no
	 * lag. */
	TU_CHECK_EQ(coev_bcast_pending(rx), 3);
	v = 14;
	coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_pending(rx), 4);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 11);
	/* Next is 12; three more keep 14..17: 12 and 13 missed. */
	for (v = 15; v < 18; v++)
		coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_pending(rx), 4);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), COEV_ELAGGED);
	TU_CHECK_EQ(coev_bcast_missed(rx), 2);
	TU_CHECK_EQ(coev_bcast_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 14);
	coev_bcast_unsubscribe(rx);
	TU_CHECK_EQ(coev_bcast_receivers(b), 0);
	TU_CHECK_EQ(coev_bcast_send(b, &v), 0);
	coev_bcast_free(b);
	return 0;
}

static void test_broadcast_lag_counts(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(lag_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- close ------------------------------------------------------------ */

typedef struct waiter {
	coev_bcast_rx_t *rx;
	coev_time_t deadline;
	int rc;
	int v;
} waiter_t;

static int wait_task(void *arg)
{
	waiter_t *w = arg;

	w->v = -1;
	w->rc = coev_bcast_recv_dl(w->rx, &w->v, w->deadline);
	return 0;
}

static int close_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx, *idle[3], *late;
	coev_task_t *t[3];
	waiter_t w[3];
	int v;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 8), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &rx), 0);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_bcast_subscribe(b, &idle[i]), 0);
		w[i] = (waiter_t){idle[i], tu_guard(), 0, 0};
	}
	for (v = 0; v < 3; v++)
		coev_bcast_send(b, &v);
	/* The idle receivers drain, then wait. */
	for (int i = 0; i < 3; i++)
		for (int want = 0; want < 3; want++) {
			TU_CHECK_EQ(coev_bcast_recv(idle[i], &v), 0);
			TU_CHECK_EQ(v, want);
		}
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_spawn(wait_task, &w[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, b);
	}
	TU_CHECK_EQ(coev_bcast_close(b), 0);
	TU_CHECK_EQ(coev_bcast_close(b), COEV_ECLOSED);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, COEV_ECLOSED);
		TU_CHECK_EQ(w[i].v, -1);
		coev_bcast_unsubscribe(idle[i]);
	}
	TU_CHECK_EQ(coev_bcast_send(b, &v), COEV_ECLOSED);
	/* rx drains what was kept, then COEV_ECLOSED, and stays so. */
	for (int want = 0; want < 3; want++) {
		TU_CHECK_EQ(coev_bcast_recv(rx, &v), 0);
		TU_CHECK_EQ(v, want);
	}
	TU_CHECK_EQ(coev_bcast_recv(rx, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), COEV_ECLOSED);
	/* A subscriber of a closed channel is told at once. */
	TU_CHECK_EQ(coev_bcast_subscribe(b, &late), 0);
	TU_CHECK_EQ(coev_bcast_recv(late, &v), COEV_ECLOSED);
	coev_bcast_unsubscribe(late);
	coev_bcast_unsubscribe(rx);
	coev_bcast_free(b);
	return 0;
}

static void test_broadcast_close_drains_then_closed(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(close_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* The creator frees the channel while receivers wait: they are woken with
 * COEV_ECLOSED, drain what was kept, and the last unsubscribe frees it
 * (ASan and the leak check see the rest). */
static int free_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx[2], *lagging;
	coev_task_t *t[2];
	waiter_t w[2];
	int v = 7;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 2), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &lagging), 0);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_bcast_subscribe(b, &rx[i]), 0);
		w[i] = (waiter_t){rx[i], COEV_FOREVER, 0, 0};
		TU_CHECK_EQ(coev_spawn(wait_task, &w[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, b);
	}
	/* One send: each waiter gets it. */
	TU_CHECK_EQ(coev_bcast_send(b, &v), 3);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, 0);
		TU_CHECK_EQ(w[i].v, 7);
		TU_CHECK_EQ(coev_spawn(wait_task, &w[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, b);
	}
	for (v = 8; v < 11; v++)
		coev_bcast_send(b, &v);
	/* The two waiters got 8; the lagging receiver holds the rest. */
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].v, 8);
		TU_CHECK_EQ(coev_spawn(wait_task, &w[i], &t[i]), 0);
	}
	coev_bcast_free(b);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(w[i].rc, 0);
		TU_CHECK_EQ(w[i].v, 9);
		coev_bcast_unsubscribe(rx[i]);
	}
	TU_CHECK_EQ(coev_bcast_recv(lagging, &v), COEV_ELAGGED);
	TU_CHECK_EQ(coev_bcast_missed(lagging), 2);
	TU_CHECK_EQ(coev_bcast_recv(lagging, &v), 0);
	TU_CHECK_EQ(v, 9);
	TU_CHECK_EQ(coev_bcast_recv(lagging, &v), 0);
	TU_CHECK_EQ(v, 10);
	TU_CHECK_EQ(coev_bcast_recv(lagging, &v), COEV_ECLOSED);
	coev_bcast_unsubscribe(lagging);
	return 0;
}

static void test_broadcast_free_with_receivers(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(free_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadlines and cancellation lose nothing ------------------------- */

static int dl_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	coev_task_t *t;
	waiter_t w;
	coev_time_t dl;
	int v;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 4), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &rx), 0);
	dl = coev_deadline(COEV_MSEC(5));
	TU_CHECK_EQ(coev_bcast_recv_dl(rx, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	/* A deadline already passed only tries. */
	TU_CHECK_EQ(coev_bcast_recv_dl(rx, &v, 0), -ETIMEDOUT);
	v = 1;
	coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_recv_dl(rx, &v, 0), 0);
	TU_CHECK_EQ(v, 1);

	/* A cancelled waiter withdraws; its position did not move. */
	w = (waiter_t){rx, COEV_FOREVER, 0, 0};
	TU_CHECK_EQ(coev_spawn(wait_task, &w, &t), 0);
	parked(t, COEV_WAIT_CHANNEL, b);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, -ECANCELED);
	TU_CHECK_EQ(w.v, -1);
	TU_CHECK_EQ(coev_bcast_pending(rx), 0);
	v = 2;
	coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 2);

	/* A timed-out waiter too, on another worker. */
	w = (waiter_t){rx, coev_deadline(COEV_MSEC(2)), 0, 0};
	TU_CHECK_EQ(coev_spawn(wait_task, &w, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(w.rc, -ETIMEDOUT);
	v = 3;
	coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 3);
	coev_bcast_unsubscribe(rx);
	coev_bcast_free(b);
	return 0;
}

static void test_broadcast_deadline_and_cancel(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(dl_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* Cancels racing sends: a receiver cancelled while a send may be handing
 * it a value either got the value (0) or nothing (-ECANCELED), and its
 * next receive says which. */
#define RACES TU_SCALE(2000, 500, 200)

static int race_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	coev_task_t *t;
	waiter_t w;
	int v;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 4), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &rx), 0);
	for (int i = 0; i < RACES; i++) {
		/* rc 1: the task was cancelled before it ever ran. */
		w = (waiter_t){rx, COEV_FOREVER, 1, -1};
		TU_CHECK_EQ(coev_spawn(wait_task, &w, &t), 0);
		if (i % 2)
			coev_yield();
		coev_bcast_send(b, &i);
		coev_cancel(t);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		if (w.rc == 0) {
			TU_CHECK_EQ(w.v, i);
		} else {
			TU_CHECK_MSG(w.rc == -ECANCELED || w.rc == 1, "rc %d",
				     w.rc);
			TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), 0);
			TU_CHECK_EQ(v, i);
		}
		TU_CHECK_EQ(coev_bcast_try_recv(rx, &v), -EAGAIN);
	}
	coev_bcast_unsubscribe(rx);
	coev_bcast_free(b);
	return 0;
}

static void test_broadcast_cancel_races_send(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(race_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- late subscribers --------------------------------------------------- */

static int late_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *early, *late;
	int v;

	(void)arg;
	TU_CHECK_EQ(coev_bcast_new(&b, sizeof v, 16), 0);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &early), 0);
	for (v = 0; v < 5; v++)
		coev_bcast_send(b, &v);
	TU_CHECK_EQ(coev_bcast_subscribe(b, &late), 0);
	TU_CHECK_EQ(coev_bcast_pending(late), 0);
	TU_CHECK_EQ(coev_bcast_try_recv(late, &v), -EAGAIN);
	for (v = 5; v < 8; v++)
		TU_CHECK_EQ(coev_bcast_send(b, &v), 2);
	for (int want = 5; want < 8; want++) {
		TU_CHECK_EQ(coev_bcast_recv(late, &v), 0);
		TU_CHECK_EQ(v, want);
	}
	for (int want = 0; want < 8; want++) {
		TU_CHECK_EQ(coev_bcast_recv(early, &v), 0);
		TU_CHECK_EQ(v, want);
	}
	coev_bcast_unsubscribe(early);
	coev_bcast_unsubscribe(late);
	coev_bcast_free(b);
	return 0;
}

static void test_broadcast_late_subscriber(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(late_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- errors and misuse ------------------------------------------------ */

static void test_broadcast_bad_arguments(void **state)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	int v = 0;

	(void)state;
	assert_int_equal(coev_bcast_new(NULL, 4, 4), -EINVAL);
	assert_int_equal(coev_bcast_new(&b, 0, 4), -EINVAL);
	assert_int_equal(coev_bcast_new(&b, 65537, 4), -EINVAL);
	assert_int_equal(coev_bcast_new(&b, 4, 0), -EINVAL);
	assert_int_equal(coev_bcast_new(&b, 4, ((size_t)1 << 20) + 1), -EINVAL);
	assert_int_equal(coev_bcast_new(&b, sizeof v, 1), 0);
	assert_int_equal(coev_bcast_send(NULL, &v), -EINVAL);
	assert_int_equal(coev_bcast_send(b, NULL), -EINVAL);
	assert_int_equal(coev_bcast_subscribe(NULL, &rx), -EINVAL);
	assert_int_equal(coev_bcast_subscribe(b, NULL), -EINVAL);
	assert_int_equal(coev_bcast_close(NULL), -EINVAL);
	assert_int_equal(coev_bcast_subscribe(b, &rx), 0);
	assert_int_equal(coev_bcast_recv(NULL, &v), -EINVAL);
	assert_int_equal(coev_bcast_try_recv(rx, NULL), -EINVAL);
	/* A plain thread (this one) may receive: blocking, here with a
	 * deadline already passed. */
	assert_int_equal(coev_bcast_recv_dl(rx, &v, 0), -ETIMEDOUT);
	coev_bcast_unsubscribe(NULL);
	coev_bcast_free(NULL);
	coev_bcast_unsubscribe(rx);
	coev_bcast_free(b);
}

/* In a child: unsubscribing a receiver while a task waits on it aborts. */
static int unsub_main(void *arg)
{
	coev_bcast_t *b;
	coev_bcast_rx_t *rx;
	coev_task_t *t;
	waiter_t w;

	(void)arg;
	coev_bcast_new(&b, sizeof(int), 1);
	coev_bcast_subscribe(b, &rx);
	w = (waiter_t){rx, COEV_FOREVER, 0, 0};
	coev_spawn(wait_task, &w, &t);
	parked(t, COEV_WAIT_CHANNEL, b);
	coev_bcast_unsubscribe(rx);
	return 0;
}

static void child_unsubscribe_waiting(void *arg)
{
	(void)arg;
	tu_run_main(unsub_main, NULL, 1);
}

static void test_broadcast_unsubscribe_waiting_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_unsubscribe_waiting, NULL, res),
			 0);
	if (!tu_child_signaled(res, SIGABRT) ||
	    !strstr(res->out, "coev_bcast_unsubscribe"))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "coev_bcast_unsubscribe"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_broadcast_every_receiver_sees_every_value),
		TU_FD_TEST(test_broadcast_small_ring_lags_exactly),
		TU_FD_TEST(test_broadcast_lag_counts),
		TU_FD_TEST(test_broadcast_close_drains_then_closed),
		TU_FD_TEST(test_broadcast_free_with_receivers),
		TU_FD_TEST(test_broadcast_deadline_and_cancel),
		TU_FD_TEST(test_broadcast_cancel_races_send),
		TU_FD_TEST(test_broadcast_late_subscriber),
		TU_FD_TEST(test_broadcast_bad_arguments),
		TU_FD_TEST(test_broadcast_unsubscribe_waiting_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
