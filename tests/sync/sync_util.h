/*
 * tests/sync/sync_util.h — helpers shared by the suites of sync/'s objects
 * (mutex, rwlock, semaphore, event, condition, wait group, barrier, once).
 * Include after tests/testutil.h.
 */
#ifndef COEV_TESTS_SYNC_UTIL_H
#define COEV_TESTS_SYNC_UTIL_H

/* Time for a task that announced it is about to wait to really wait, or for
 * something that should not happen to show itself. Only used to order
 * things; never an upper bound on anything. */
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

/* As a task: wait until *flag is set, then give its setter SETTLE to reach
 * the wait it announced. */
static TU_UNUSED void settle_after(atomic_int *flag)
{
	TU_CHECK_EQ(tu_wait_at_least(flag, 1), 0);
	coev_sleep(SETTLE);
}

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
