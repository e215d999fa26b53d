/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_local.c — task-local values (sched/local.c): set, get,
 * replace and take; values that stay with their task while it is moved to
 * another worker at every resume (COEV_DEBUG_MIGRATE); destructors that
 * run exactly once when the task ends, whether it returned or was
 * cancelled; children that start empty; growth past the inline slots;
 * plain threads refused.
 */
#include "tests/testutil.h"

#include <pthread.h>

/* Destructor calls, per value: each value is an element of this array,
 * so a double destruction shows as a count of 2. */
#define NVALS 64
static atomic_int destroyed[NVALS];
static int vals[NVALS];

static void count_dtor(void *v)
{
	int *p = v;

	TU_CHECK(p >= vals && p < vals + NVALS);
	atomic_fetch_add(&destroyed[p - vals], 1);
}

static coev_local_t key_a = COEV_LOCAL_INIT(count_dtor);
static coev_local_t key_b = COEV_LOCAL_INIT(count_dtor);
static coev_local_t key_plain = COEV_LOCAL_INIT(NULL);
static coev_local_t many_keys[20];

static void reset_counts(void)
{
	for (int i = 0; i < NVALS; i++)
		atomic_store(&destroyed[i], 0);
}

static int run(coev_fn fn, void *arg, unsigned workers, unsigned debug)
{
	coev_config_t cfg = tu_config(workers);

	cfg.debug = debug;
	return coev_run(fn, arg, &cfg);
}

/* ---- set, get, replace, take ------------------------------------------ */

static int basics_main(void *arg)
{
	(void)arg;
	TU_CHECK(coev_local_get(&key_a) == NULL);
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[0]), 0);
	TU_CHECK_EQ(coev_local_set(&key_b, &vals[1]), 0);
	TU_CHECK(coev_local_get(&key_a) == &vals[0]);
	TU_CHECK(coev_local_get(&key_b) == &vals[1]);
	/* Replacing destroys the old value, once. */
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[2]), 0);
	TU_CHECK_EQ(atomic_load(&destroyed[0]), 1);
	TU_CHECK(coev_local_get(&key_a) == &vals[2]);
	/* Setting the same value again destroys nothing. */
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[2]), 0);
	TU_CHECK_EQ(atomic_load(&destroyed[2]), 0);
	/* Taking gives the value back undestroyed. */
	TU_CHECK(coev_local_take(&key_b) == &vals[1]);
	TU_CHECK(coev_local_get(&key_b) == NULL);
	TU_CHECK(coev_local_take(&key_b) == NULL);
	TU_CHECK_EQ(atomic_load(&destroyed[1]), 0);
	/* NULL removes and destroys. */
	TU_CHECK_EQ(coev_local_set(&key_a, NULL), 0);
	TU_CHECK_EQ(atomic_load(&destroyed[2]), 1);
	TU_CHECK(coev_local_get(&key_a) == NULL);
	TU_CHECK_EQ(coev_local_set(NULL, &vals[3]), -EINVAL);
	TU_CHECK(coev_local_get(NULL) == NULL);
	/* Left set: destroyed when main ends. */
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[4]), 0);
	TU_CHECK_EQ(coev_local_set(&key_plain, &vals[5]), 0);
	return 0;
}

static void test_local_set_get_replace_take(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(basics_main, NULL, 2, 0), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&destroyed[4]), 1);
	/* A key without a destructor: nothing called. */
	assert_int_equal(atomic_load(&destroyed[5]), 0);
}

/* ---- plain threads ----------------------------------------------------- */

static void test_local_plain_thread_refused(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(coev_local_set(&key_a, &vals[0]), COEV_ENOTCORO);
	assert_null(coev_local_get(&key_a));
	assert_null(coev_local_take(&key_a));
	assert_int_equal(atomic_load(&destroyed[0]), 0);
}

/* ---- migration --------------------------------------------------------- */

#define ROUNDS TU_SCALE(500, 200, 100)
#define MOVERS 8

/* Each task keeps its own value under the same key while it is moved to
 * the next worker at every yield: the value it reads is always its own. */
static int mover(void *arg)
{
	int i = (int)(intptr_t)arg;
	int last = coev_worker_id(), moves = 0;

	TU_CHECK_EQ(coev_local_set(&key_a, &vals[i]), 0);
	for (int r = 0; r < ROUNDS; r++) {
		TU_CHECK_EQ(coev_yield(), 0);
		if (coev_worker_id() != last)
			moves++;
		last = coev_worker_id();
		TU_CHECK_MSG(coev_local_get(&key_a) == &vals[i],
			     "task %d read another task's value", i);
		/* Set again now and then (a replace on a new worker). */
		if (r % 50 == 0) {
			TU_CHECK_EQ(coev_local_set(&key_b, &vals[i + MOVERS]),
				    0);
			TU_CHECK(coev_local_get(&key_b) == &vals[i + MOVERS]);
		}
	}
	TU_CHECK_MSG(moves >= ROUNDS / 2, "task %d moved %d times", i, moves);
	return 0;
}

static int movers_main(void *arg)
{
	coev_task_t *t[MOVERS];
	int res[MOVERS];

	(void)arg;
	for (int i = 0; i < MOVERS; i++)
		TU_CHECK_EQ(coev_spawn(mover, (void *)(intptr_t)i, &t[i]), 0);
	TU_CHECK_EQ(coev_gather(t, MOVERS, res), 0);
	return 0;
}

static void test_local_follows_task_across_workers(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(movers_main, NULL, 2, COEV_DEBUG_MIGRATE), 0);
	tu_assert_no_failures();
	for (int i = 0; i < MOVERS; i++) {
		assert_int_equal(atomic_load(&destroyed[i]), 1);
		/* key_b was set to the same value each time: one
		 * destruction, at the end. */
		assert_int_equal(atomic_load(&destroyed[i + MOVERS]), 1);
	}
}

/* ---- cancellation ------------------------------------------------------ */

static atomic_int sleeper_ready;

static int sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	int r;

	TU_CHECK_EQ(coev_local_set(&key_a, &vals[i]), 0);
	atomic_fetch_add(&sleeper_ready, 1);
	r = coev_sleep(COEV_SEC(30));
	TU_CHECK_EQ(r, -ECANCELED);
	return r;
}

static int cancel_main(void *arg)
{
	coev_task_t *t[4];
	int res;

	(void)arg;
	atomic_store(&sleeper_ready, 0);
	for (int i = 0; i < 4; i++)
		TU_CHECK_EQ(coev_spawn(sleeper, (void *)(intptr_t)i, &t[i]), 0);
	while (atomic_load(&sleeper_ready) < 4)
		coev_yield();
	for (int i = 0; i < 4; i++) {
		TU_CHECK_EQ(coev_cancel(t[i]), 0);
		TU_CHECK_EQ(coev_join(t[i], &res), 0);
		TU_CHECK_EQ(res, -ECANCELED);
		/* Destroyed by the time the join returns: the task ends
		 * after its destructors. */
		TU_CHECK_EQ(atomic_load(&destroyed[i]), 1);
	}
	return 0;
}

static void test_local_destroyed_once_when_cancelled(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(cancel_main, NULL, 2, 0), 0);
	tu_assert_no_failures();
	for (int i = 0; i < 4; i++)
		assert_int_equal(atomic_load(&destroyed[i]), 1);
}

/* ---- children ---------------------------------------------------------- */

static int child(void *arg)
{
	(void)arg;
	TU_CHECK(coev_local_get(&key_a) == NULL);
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[11]), 0);
	return 0;
}

static int parent_main(void *arg)
{
	coev_task_t *t;

	(void)arg;
	TU_CHECK_EQ(coev_local_set(&key_a, &vals[10]), 0);
	TU_CHECK_EQ(coev_spawn(child, NULL, &t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	/* The child's set changed only the child's table. */
	TU_CHECK(coev_local_get(&key_a) == &vals[10]);
	TU_CHECK_EQ(atomic_load(&destroyed[11]), 1);
	TU_CHECK_EQ(atomic_load(&destroyed[10]), 0);
	return 0;
}

static void test_local_children_start_empty(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(parent_main, NULL, 2, 0), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&destroyed[10]), 1);
}

/* ---- growth and destructors that set values ---------------------------- */

static int grow_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		many_keys[i].dtor = count_dtor;
		TU_CHECK_EQ(coev_local_set(&many_keys[i], &vals[20 + i]), 0);
	}
	for (int i = 0; i < 20; i++)
		TU_CHECK(coev_local_get(&many_keys[i]) == &vals[20 + i]);
	/* Remove one in the middle: the others stay found. */
	TU_CHECK(coev_local_take(&many_keys[7]) == &vals[27]);
	for (int i = 0; i < 20; i++)
		TU_CHECK(coev_local_get(&many_keys[i]) ==
			 (i == 7 ? NULL : &vals[20 + i]));
	return 0;
}

static void test_local_grows_past_inline_slots(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(grow_main, NULL, 1, 0), 0);
	tu_assert_no_failures();
	for (int i = 0; i < 20; i++)
		assert_int_equal(atomic_load(&destroyed[20 + i]),
				 i == 7 ? 0 : 1);
}

/* A destructor that sets another value: destroyed in a later pass. */
static void chain_dtor(void *v)
{
	count_dtor(v);
	TU_CHECK_EQ(coev_local_set(&key_b, &vals[51]), 0);
}

static coev_local_t key_chain = COEV_LOCAL_INIT(chain_dtor);

static int chain_main(void *arg)
{
	(void)arg;
	TU_CHECK_EQ(coev_local_set(&key_chain, &vals[50]), 0);
	return 0;
}

static void test_local_destructor_may_set(void **state)
{
	(void)state;
	reset_counts();
	assert_int_equal(run(chain_main, NULL, 1, 0), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&destroyed[50]), 1);
	assert_int_equal(atomic_load(&destroyed[51]), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_set_get_replace_take),
		cmocka_unit_test(test_local_plain_thread_refused),
		cmocka_unit_test(test_local_follows_task_across_workers),
		cmocka_unit_test(test_local_destroyed_once_when_cancelled),
		cmocka_unit_test(test_local_children_start_empty),
		cmocka_unit_test(test_local_grows_past_inline_slots),
		cmocka_unit_test(test_local_destructor_may_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
