/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/owner_busy.h — for the adapters' _dl close and free tests:
 * call a _dl function with the adapter's owner worker (worker 0) held
 * busy by a spinning task, and check that it returned -ETIMEDOUT near its
 * deadline rather than waiting for the owner. Used by test_ares.c,
 * test_curl.c and test_redis.c, after tests/testutil.h.
 */
#ifndef COEV_TESTS_ADAPTERS_OWNER_BUSY_H
#define COEV_TESTS_ADAPTERS_OWNER_BUSY_H

#include <errno.h>
#include <stdatomic.h>

#include "coev.h"
#include "tests/testutil.h"

#define DL_MS 100
#define DL_RATIO 15

typedef struct owner_spin {
	atomic_int ready, release;
} owner_spin_t;

static int spin_on_owner(void *arg)
{
	owner_spin_t *s = arg;

	TU_CHECK_EQ(coev_pin_to(0), 0);
	atomic_store(&s->ready, 1);
	while (!atomic_load(&s->release))
		;
	coev_unpin();
	return 0;
}

static int noop_fn(void *arg)
{
	(void)arg;
	return 0;
}

/* As a task on worker 1: call fn(arg, deadline) with worker 0 held busy,
 * then free worker 0 and wait until its posts so far have run. Returns
 * fn's result; *took how long it took. */
static int with_owner_busy(int (*fn)(void *, coev_time_t), void *arg,
			   coev_time_t *took)
{
	owner_spin_t s = {0};
	coev_task_t *st;
	coev_time_t t0;
	int r, res = -1;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	TU_CHECK_EQ(coev_spawn(spin_on_owner, &s, &st), 0);
	TU_CHECK_EQ(tu_wait_at_least(&s.ready, 1), 0);
	t0 = coev_now();
	r = fn(arg, coev_deadline(COEV_MSEC(DL_MS)));
	*took = coev_now() - t0;
	atomic_store(&s.release, 1);
	TU_CHECK_EQ(coev_join_dl(st, tu_guard(), NULL), 0);
	TU_CHECK_EQ(coev_submit_to_dl(NULL, 0, noop_fn, NULL, &res, tu_guard()),
		    0);
	TU_CHECK_EQ(coev_unpin(), 0);
	return r;
}

static void check_timed_out(const char *call, int r, coev_time_t took)
{
	TU_CHECK_MSG(r == -ETIMEDOUT && took <= DL_RATIO * COEV_MSEC(DL_MS),
		     "%s with its owner busy returned %d after %.3f s; "
		     "expected -ETIMEDOUT within %.3f s",
		     call, r, (double)took / 1e9,
		     (double)(DL_RATIO * COEV_MSEC(DL_MS)) / 1e9);
}

#endif
