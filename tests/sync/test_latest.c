/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/test_latest.c — the latest-value channel (coev/latest.h):
 * many receivers (tasks on two workers with forced migration, and plain
 * threads) see versions only grow, each value matching its version, and
 * end on the final value; a sender outside the runtime; the initial
 * value, borrow, get and subscription semantics; versions skipped
 * between receives; close hands over an unseen value first and wakes
 * waiters; the creator's free with receivers waiting; deadlines and
 * cancellation lose nothing; late subscribers; argument errors and
 * unsubscribing a waiting receiver.
 *
 * Task bodies record failures with TU_CHECK; the test thread checks
 * tu_assert_no_failures().
 */
#include "tests/testutil.h"
#include "tests/sync/sync_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---- many receivers: versions only grow, the last is final ------------ */

#define VALUES TU_SCALE(20000, 5000, 2000)
#define RX_TASKS 8
#define RX_THREADS 2

typedef struct fan {
	coev_latest_t *w;
	coev_latest_rx_t *rx[RX_TASKS + RX_THREADS];
	long long last[RX_TASKS + RX_THREADS];
	long long seen[RX_TASKS + RX_THREADS]; /* receives that returned 0 */
	atomic_int ready;
} fan_t;

/* Value v is sent as version v + 1 (the initial value -1 is version 0). */
static void fan_drain(fan_t *f, int i)
{
	long long prev = -1, v;
	int r;

	for (;;) {
		r = i % 3 == 2 ? coev_latest_recv_dl(f->rx[i], &v, tu_guard())
			       : coev_latest_recv(f->rx[i], &v);
		if (r == COEV_ECLOSED)
			break;
		TU_CHECK_EQ(r, 0);
		if (r != 0)
			return;
		TU_CHECK_MSG(v > prev, "receiver %d: %lld after %lld", i, v,
			     prev);
		TU_CHECK_EQ(coev_latest_seen(f->rx[i]), v + 1);
		prev = v;
		f->seen[i]++;
	}
	f->last[i] = prev;
	TU_CHECK_EQ(coev_latest_try_recv(f->rx[i], &v), COEV_ECLOSED);
}

static int fan_task(void *arg)
{
	fan_t *f = arg;

	fan_drain(f, atomic_fetch_add(&f->ready, 1));
	return 0;
}

static void *fan_thread(void *arg)
{
	fan_t *f = arg;

	fan_drain(f, atomic_fetch_add(&f->ready, 1));
	return NULL;
}

static void *fan_send_thread(void *arg)
{
	fan_t *f = arg;

	for (long long v = 0; v < VALUES; v++) {
		TU_CHECK_EQ(coev_latest_send(f->w, &v), 0);
		if (v % 512 == 0)
			sched_yield();
	}
	TU_CHECK_EQ(coev_latest_close(f->w), 0);
	return NULL;
}

static void fan_run(bool migrate)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	coev_task_t *t[RX_TASKS];
	pthread_t th[RX_THREADS], sender;
	fan_t *f = calloc(1, sizeof *f);
	long long init = -1, v;

	assert_non_null(f);
	if (migrate)
		cfg.debug |= COEV_DEBUG_MIGRATE;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_latest_new(&f->w, sizeof init, &init), 0);
	for (int i = 0; i < RX_TASKS + RX_THREADS; i++)
		assert_int_equal(coev_latest_subscribe(f->w, &f->rx[i]), 0);
	for (int i = 0; i < RX_TASKS; i++)
		assert_int_equal(coev_rt_spawn(rt, "rx", fan_task, f, &t[i]),
				 0);
	for (int i = 0; i < RX_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fan_thread, f),
				 0);
	assert_int_equal(pthread_create(&sender, NULL, fan_send_thread, f), 0);
	pthread_join(sender, NULL);
	for (int i = 0; i < RX_TASKS; i++)
		assert_int_equal(coev_join(t[i], NULL), 0);
	for (int i = 0; i < RX_THREADS; i++)
		pthread_join(th[i], NULL);
	tu_assert_no_failures();
	for (int i = 0; i < RX_TASKS + RX_THREADS; i++) {
		/* After the last send and the close, every receiver ended
		 * on the final value. */
		assert_int_equal(f->last[i], VALUES - 1);
		assert_true(f->seen[i] >= 1 && f->seen[i] <= VALUES);
		coev_latest_unsubscribe(f->rx[i]);
	}
	assert_int_equal(coev_latest_get(f->w, &v), 0);
	assert_int_equal(v, VALUES - 1);
	coev_latest_free(f->w);
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	free(f);
}

static void test_latest_receivers_end_on_final_value(void **state)
{
	(void)state;
	fan_run(true);
	fan_run(false);
}

/* ---- versions, borrow, get ---------------------------------------------- */

static int version_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx;
	int v, init = 42;

	(void)arg;
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, &init), 0);
	TU_CHECK_EQ(coev_latest_subscribe(w, &rx), 0);
	/* The initial value counts as seen. */
	TU_CHECK_EQ(coev_latest_seen(rx), 0);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), -EAGAIN);
	TU_CHECK_EQ(coev_latest_borrow(rx, &v), 0);
	TU_CHECK_EQ(v, 42);
	v = 1;
	TU_CHECK_EQ(coev_latest_send(w, &v), 0);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 1);
	TU_CHECK_EQ(coev_latest_seen(rx), 1);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), -EAGAIN);
	/* Versions in between are skipped: only the latest counts. */
	for (v = 2; v <= 4; v++)
		coev_latest_send(w, &v);
	TU_CHECK_EQ(coev_latest_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 4);
	TU_CHECK_EQ(coev_latest_seen(rx), 4);
	/* Borrow marks the current version seen. */
	v = 5;
	coev_latest_send(w, &v);
	TU_CHECK_EQ(coev_latest_borrow(rx, &v), 0);
	TU_CHECK_EQ(v, 5);
	TU_CHECK_EQ(coev_latest_seen(rx), 5);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), -EAGAIN);
	/* get touches no receiver. */
	v = 6;
	coev_latest_send(w, &v);
	v = 0;
	TU_CHECK_EQ(coev_latest_get(w, &v), 0);
	TU_CHECK_EQ(v, 6);
	TU_CHECK_EQ(coev_latest_seen(rx), 5);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 6);
	coev_latest_unsubscribe(rx);
	coev_latest_free(w);
	/* NULL init: zero bytes. */
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, NULL), 0);
	v = 9;
	TU_CHECK_EQ(coev_latest_get(w, &v), 0);
	TU_CHECK_EQ(v, 0);
	coev_latest_free(w);
	return 0;
}

static void test_latest_versions_borrow_get(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(version_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- close ------------------------------------------------------------ */

typedef struct waiter {
	coev_latest_rx_t *rx;
	coev_time_t deadline;
	int rc;
	int v;
} waiter_t;

static int wait_task(void *arg)
{
	waiter_t *w = arg;

	w->v = -1;
	w->rc = coev_latest_recv_dl(w->rx, &w->v, w->deadline);
	return 0;
}

static int close_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx, *idle[3], *late;
	coev_task_t *t[3];
	waiter_t wt[3];
	int v = 0;

	(void)arg;
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, &v), 0);
	TU_CHECK_EQ(coev_latest_subscribe(w, &rx), 0);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_latest_subscribe(w, &idle[i]), 0);
		wt[i] = (waiter_t){idle[i], tu_guard(), 0, 0};
		TU_CHECK_EQ(coev_spawn(wait_task, &wt[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, w);
	}
	/* One send wakes every waiter with it. */
	v = 1;
	TU_CHECK_EQ(coev_latest_send(w, &v), 0);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(wt[i].rc, 0);
		TU_CHECK_EQ(wt[i].v, 1);
		TU_CHECK_EQ(coev_spawn(wait_task, &wt[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, w);
	}
	v = 2;
	coev_latest_send(w, &v);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(wt[i].v, 2);
		TU_CHECK_EQ(coev_spawn(wait_task, &wt[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, w);
	}
	TU_CHECK_EQ(coev_latest_close(w), 0);
	TU_CHECK_EQ(coev_latest_close(w), COEV_ECLOSED);
	for (int i = 0; i < 3; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(wt[i].rc, COEV_ECLOSED);
		TU_CHECK_EQ(wt[i].v, -1);
		coev_latest_unsubscribe(idle[i]);
	}
	TU_CHECK_EQ(coev_latest_send(w, &v), COEV_ECLOSED);
	/* rx has not seen version 2: it gets it, then COEV_ECLOSED. */
	TU_CHECK_EQ(coev_latest_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 2);
	TU_CHECK_EQ(coev_latest_recv(rx, &v), COEV_ECLOSED);
	TU_CHECK_EQ(coev_latest_try_recv(rx, &v), COEV_ECLOSED);
	/* The value stays readable. */
	v = 0;
	TU_CHECK_EQ(coev_latest_borrow(rx, &v), 0);
	TU_CHECK_EQ(v, 2);
	TU_CHECK_EQ(coev_latest_subscribe(w, &late), 0);
	TU_CHECK_EQ(coev_latest_recv(late, &v), COEV_ECLOSED);
	coev_latest_unsubscribe(late);
	coev_latest_unsubscribe(rx);
	coev_latest_free(w);
	return 0;
}

static void test_latest_close_hands_unseen_value_then_closed(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(close_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* The creator frees the channel while receivers wait: they get
 * COEV_ECLOSED; an unseen value still reaches the receiver that has not
 * seen it; the last unsubscribe frees the channel. */
static int free_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx[2], *behind;
	coev_task_t *t[2];
	waiter_t wt[2];
	int v = 0;

	(void)arg;
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, &v), 0);
	TU_CHECK_EQ(coev_latest_subscribe(w, &behind), 0);
	v = 3;
	coev_latest_send(w, &v);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_latest_subscribe(w, &rx[i]), 0);
		wt[i] = (waiter_t){rx[i], COEV_FOREVER, 0, 0};
		TU_CHECK_EQ(coev_spawn(wait_task, &wt[i], &t[i]), 0);
		parked(t[i], COEV_WAIT_CHANNEL, w);
	}
	coev_latest_free(w);
	for (int i = 0; i < 2; i++) {
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		TU_CHECK_EQ(wt[i].rc, COEV_ECLOSED);
		coev_latest_unsubscribe(rx[i]);
	}
	TU_CHECK_EQ(coev_latest_recv(behind, &v), 0);
	TU_CHECK_EQ(v, 3);
	TU_CHECK_EQ(coev_latest_recv(behind, &v), COEV_ECLOSED);
	coev_latest_unsubscribe(behind);
	return 0;
}

static void test_latest_free_with_receivers(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(free_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- deadlines and cancellation lose nothing ------------------------- */

static int dl_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx;
	coev_task_t *t;
	waiter_t wt;
	coev_time_t dl;
	int v = 0;

	(void)arg;
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, &v), 0);
	TU_CHECK_EQ(coev_latest_subscribe(w, &rx), 0);
	dl = coev_deadline(COEV_MSEC(5));
	TU_CHECK_EQ(coev_latest_recv_dl(rx, &v, dl), -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK_EQ(coev_latest_recv_dl(rx, &v, 0), -ETIMEDOUT);
	v = 1;
	coev_latest_send(w, &v);
	TU_CHECK_EQ(coev_latest_recv_dl(rx, &v, 0), 0);
	TU_CHECK_EQ(v, 1);

	/* A cancelled waiter withdraws and keeps its version. */
	wt = (waiter_t){rx, COEV_FOREVER, 0, 0};
	TU_CHECK_EQ(coev_spawn(wait_task, &wt, &t), 0);
	parked(t, COEV_WAIT_CHANNEL, w);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(wt.rc, -ECANCELED);
	TU_CHECK_EQ(wt.v, -1);
	TU_CHECK_EQ(coev_latest_seen(rx), 1);
	v = 2;
	coev_latest_send(w, &v);
	TU_CHECK_EQ(coev_latest_recv(rx, &v), 0);
	TU_CHECK_EQ(v, 2);

	/* Cancels racing sends: the waiter got the value, or nothing and
	 * its next receive gets it. */
	for (int i = 3; i < TU_SCALE(2000, 500, 200); i++) {
		wt = (waiter_t){rx, COEV_FOREVER, 1, -1};
		TU_CHECK_EQ(coev_spawn(wait_task, &wt, &t), 0);
		if (i % 2)
			coev_yield();
		coev_latest_send(w, &i);
		coev_cancel(t);
		TU_CHECK_EQ(coev_join(t, NULL), 0);
		if (wt.rc == 0) {
			TU_CHECK_EQ(wt.v, i);
		} else {
			TU_CHECK_MSG(wt.rc == -ECANCELED || wt.rc == 1, "rc %d",
				     wt.rc);
			TU_CHECK_EQ(coev_latest_try_recv(rx, &v), 0);
			TU_CHECK_EQ(v, i);
		}
		TU_CHECK_EQ(coev_latest_seen(rx), i);
	}
	coev_latest_unsubscribe(rx);
	coev_latest_free(w);
	return 0;
}

static void test_latest_deadline_and_cancel(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(dl_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- late subscribers --------------------------------------------------- */

static int late_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *late;
	int v = 0;

	(void)arg;
	TU_CHECK_EQ(coev_latest_new(&w, sizeof v, &v), 0);
	for (v = 1; v <= 5; v++)
		coev_latest_send(w, &v);
	/* A late subscriber counts the current version as seen. */
	TU_CHECK_EQ(coev_latest_subscribe(w, &late), 0);
	TU_CHECK_EQ(coev_latest_seen(late), 5);
	TU_CHECK_EQ(coev_latest_try_recv(late, &v), -EAGAIN);
	v = 6;
	coev_latest_send(w, &v);
	TU_CHECK_EQ(coev_latest_recv(late, &v), 0);
	TU_CHECK_EQ(v, 6);
	TU_CHECK_EQ(coev_latest_seen(late), 6);
	coev_latest_unsubscribe(late);
	coev_latest_free(w);
	return 0;
}

static void test_latest_late_subscriber(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(late_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- errors and misuse ------------------------------------------------ */

static void test_latest_bad_arguments(void **state)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx;
	int v = 0;

	(void)state;
	assert_int_equal(coev_latest_new(NULL, 4, NULL), -EINVAL);
	assert_int_equal(coev_latest_new(&w, 0, NULL), -EINVAL);
	assert_int_equal(coev_latest_new(&w, 65537, NULL), -EINVAL);
	assert_int_equal(coev_latest_new(&w, sizeof v, &v), 0);
	assert_int_equal(coev_latest_send(NULL, &v), -EINVAL);
	assert_int_equal(coev_latest_send(w, NULL), -EINVAL);
	assert_int_equal(coev_latest_get(w, NULL), -EINVAL);
	assert_int_equal(coev_latest_subscribe(NULL, &rx), -EINVAL);
	assert_int_equal(coev_latest_subscribe(w, NULL), -EINVAL);
	assert_int_equal(coev_latest_close(NULL), -EINVAL);
	assert_int_equal(coev_latest_subscribe(w, &rx), 0);
	assert_int_equal(coev_latest_recv(NULL, &v), -EINVAL);
	assert_int_equal(coev_latest_try_recv(rx, NULL), -EINVAL);
	assert_int_equal(coev_latest_borrow(rx, NULL), -EINVAL);
	/* A plain thread (this one) may receive. */
	assert_int_equal(coev_latest_recv_dl(rx, &v, 0), -ETIMEDOUT);
	coev_latest_unsubscribe(NULL);
	coev_latest_free(NULL);
	coev_latest_unsubscribe(rx);
	coev_latest_free(w);
}

/* In a child: unsubscribing a receiver while a task waits on it aborts. */
static int unsub_main(void *arg)
{
	coev_latest_t *w;
	coev_latest_rx_t *rx;
	coev_task_t *t;
	waiter_t wt;

	(void)arg;
	coev_latest_new(&w, sizeof(int), NULL);
	coev_latest_subscribe(w, &rx);
	wt = (waiter_t){rx, COEV_FOREVER, 0, 0};
	coev_spawn(wait_task, &wt, &t);
	parked(t, COEV_WAIT_CHANNEL, w);
	coev_latest_unsubscribe(rx);
	return 0;
}

static void child_unsubscribe_waiting(void *arg)
{
	(void)arg;
	tu_run_main(unsub_main, NULL, 1);
}

static void test_latest_unsubscribe_waiting_aborts(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child_unsubscribe_waiting, NULL, res),
			 0);
	if (!tu_child_signaled(res, SIGABRT) ||
	    !strstr(res->out, "coev_latest_unsubscribe"))
		tu_child_dump(res);
	assert_true(tu_child_signaled(res, SIGABRT));
	assert_non_null(strstr(res->out, "coev_latest_unsubscribe"));
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_latest_receivers_end_on_final_value),
		TU_FD_TEST(test_latest_versions_borrow_get),
		TU_FD_TEST(test_latest_close_hands_unseen_value_then_closed),
		TU_FD_TEST(test_latest_free_with_receivers),
		TU_FD_TEST(test_latest_deadline_and_cancel),
		TU_FD_TEST(test_latest_late_subscriber),
		TU_FD_TEST(test_latest_bad_arguments),
		TU_FD_TEST(test_latest_unsubscribe_waiting_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
