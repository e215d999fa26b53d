/* SPDX-License-Identifier: MIT */
/*
 * tests/sync/sync_util.h — helpers shared by the suites of sync/'s objects
 * (mutex, rwlock, semaphore, event, condition, wait group, barrier, once).
 * Include after tests/testutil.h.
 */
#ifndef COEV_TESTS_SYNC_UTIL_H
#define COEV_TESTS_SYNC_UTIL_H

/* Time for something that should not happen to show itself (a waiter
 * that must stay queued, a release that must not be taken). Never used to
 * line waiters up (parked() does that) nor as an upper bound. */
#define SETTLE COEV_MSEC(TU_SCALE(10, 20, 30))

/* xorshift32: a cheap per-test random sequence. */
static TU_UNUSED unsigned rnd_next(unsigned *s)
{
	unsigned x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* As a task (or, with rt, a plain thread): until task t is parked waiting
 * on obj (kind COEV_WAIT_*: sync/'s notes are COEV_WAIT_MUTEX for a
 * mutex, COEV_WAIT_SEM for a semaphore or a read-write lock,
 * COEV_WAIT_EVENT for an event, a wait group, a barrier or once,
 * COEV_WAIT_COND for a condition variable): then it is in obj's wait
 * queue, behind every waiter seen parked there before it. */
#define parked(t, kind, obj) TU_CHECK_EQ(tu_wait_parked(NULL, t, kind, obj), 0)

/* The same for a waiter with a deadline, which may have given up (and
 * ended) before it was seen parked. */
#define parked_or_ended(t, kind, obj)                                        \
	do {                                                                 \
		int pr_ = tu_wait_parked(NULL, t, kind, obj);                \
		TU_CHECK_MSG(pr_ == 0 || pr_ == -ESRCH, "returned %d", pr_); \
	} while (0)

/* As a task: yield until *v >= n, or fail after the guard (for loops too
 * fast for tu_wait_at_least's 1 ms naps). */
static TU_UNUSED int spin_until(atomic_int *v, int n)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(v) < n) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		coev_yield();
	}
	return 0;
}

#endif
