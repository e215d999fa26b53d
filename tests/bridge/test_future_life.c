/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_future_life.c — a future's last reference released
 * the moment a wait returns (include/coev/future.h, rule 1): a completer
 * thread completes futures one after another while a waiter thread polls
 * them in order and releases each, its last reference, as soon as its
 * wait returns. The completer holds no reference of its own (the future
 * lives until the wait it ends has returned) or holds one and releases
 * it after completing; either way coev must not touch the future once
 * the last reference is gone: ASan reports the use of freed memory, TSan
 * the race with the free.
 *
 * As in tests/sync/test_lifetime.c, both threads run on one CPU and a
 * timer signal makes the completer give the CPU up every few
 * microseconds, at an arbitrary instruction of its calls; nothing sleeps.
 */
#include "tests/testutil.h"
#include "tests/nudge.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#define RING 4096
#define FUTURES TU_SCALE(400000, 100000, 40000)

typedef struct chase {
	_Atomic(coev_future_t *) slot[RING];
	atomic_long published; /* futures the completer may complete */
	long total;
	int cpu;
	int own_ref; /* the completer holds a reference of its own */
} chase_t;

static void *completer_main(void *arg)
{
	chase_t *c = arg;
	coev_future_t *f;
	timer_t t;
	int nudging;

	pin(c->cpu);
	nudging = nudge_start(&t) == 0;
	for (long i = 0; i < c->total; i++) {
		/* Acquire: pairs with the waiter's release of published. */
		while (atomic_load_explicit(&c->published,
					    memory_order_acquire) <= i)
			sched_yield();
		f = atomic_load_explicit(&c->slot[i % RING],
					 memory_order_relaxed);
		TU_CHECK_EQ(coev_future_set(f, (int)(i % 1000)), 0);
		if (c->own_ref)
			coev_future_release(f);
	}
	if (nudging)
		timer_delete(t);
	return NULL;
}

static long refill(chase_t *c, long made, long next)
{
	coev_future_t *f;

	while (made < c->total && made - next < RING) {
		assert_int_equal(coev_future_new(&f), 0);
		if (c->own_ref)
			coev_future_ref(f); /* the completer's */
		atomic_store_explicit(&c->slot[made % RING], f,
				      memory_order_relaxed);
		made++;
	}
	/* Release: the futures, to the completer. */
	atomic_store_explicit(&c->published, made, memory_order_release);
	return made;
}

static void chase(int own_ref)
{
	chase_t *c = calloc(1, sizeof *c);
	long made = 0, next = 0;
	pthread_t th;
	int res;

	assert_non_null(c);
	c->total = FUTURES;
	c->own_ref = own_ref;
	c->cpu = one_cpu();
	pin(c->cpu);
	assert_int_equal(pthread_create(&th, NULL, completer_main, c), 0);
	while (next < c->total) {
		if (made - next < RING / 2)
			made = refill(c, made, next);
		coev_future_t *f = atomic_load_explicit(&c->slot[next % RING],
							memory_order_relaxed);
		if (coev_future_wait_dl(f, 0, &res) == 0) {
			TU_CHECK_EQ(res, (int)(next % 1000));
			coev_future_release(f); /* the last, or all but */
			next++;
		} else {
			sched_yield();
		}
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	free(c);
	tu_assert_no_failures();
}

static void test_future_life_released_after_wait(void **state)
{
	(void)state;
	chase(0);
}

static void test_future_life_completer_with_reference(void **state)
{
	(void)state;
	chase(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_future_life_released_after_wait),
		cmocka_unit_test(test_future_life_completer_with_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
