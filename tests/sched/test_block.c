/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_block.c — task blocks (sched/block.c): reuse across
 * workers and from plain threads, and every chunk unmapped when the
 * runtime is freed, tasks parked or not.
 */
#include "tests/testutil.h"

#include "sched/sched.h"

/* Blocks per 2 MiB chunk are in the thousands: a test that never has more
 * than a few thousand tasks alive at once needs a few chunks, whatever the
 * number of tasks spawned, if and only if freed blocks are reused. */
#define ROUNDS TU_SCALE(200, 100, 40)
#define PER_ROUND 1000
#define CHUNKS_MAX 4

static int trivial(void *arg)
{
	return (int)(uintptr_t)arg;
}

static int done_trivial(void *arg)
{
	coev_wg_done(arg);
	return 0;
}

/* Rounds of tasks: half kept and gathered, half detached and waited for
 * with a wait group, so blocks end on either worker and are freed there. */
static int rounds_main(void *arg)
{
	coev_task_t *t[PER_ROUND / 2];
	int rets[PER_ROUND / 2];
	coev_wg_t wg;

	(void)arg;
	TU_CHECK_EQ(coev_wg_init(&wg), 0);
	for (int r = 0; r < ROUNDS; r++) {
		coev_wg_add(&wg, PER_ROUND / 2);
		for (int i = 0; i < PER_ROUND / 2; i++) {
			TU_CHECK_EQ(coev_spawn(trivial, (void *)(uintptr_t)i,
					       &t[i]),
				    0);
			TU_CHECK_EQ(coev_spawn(done_trivial, &wg, NULL), 0);
		}
		TU_CHECK_EQ(coev_gather(t, PER_ROUND / 2, rets), 0);
		for (int i = 0; i < PER_ROUND / 2; i++)
			TU_CHECK_EQ(rets[i], i);
		TU_CHECK_EQ(coev_wg_wait(&wg), 0);
	}
	coev_wg_destroy(&wg);
	return 7;
}

static void test_block_reused_across_workers(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	uint64_t chunks = 0, spawned = 0;
	int ret = 0;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "rounds", rounds_main, NULL, &t), 0);
	assert_int_equal(coev_join(t, &ret), 0);
	assert_int_equal(ret, 7);
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t st;

		assert_int_equal(coev_rt_worker_stats(rt, i, &st), 0);
		chunks += st.task_chunks;
		spawned += st.spawned;
	}
	print_message("%llu tasks spawned by tasks, %llu chunks mapped by "
		      "workers, %u in all\n",
		      (unsigned long long)spawned, (unsigned long long)chunks,
		      coev__block_chunks(rt));
	assert_int_equal(spawned, (uint64_t)ROUNDS * PER_ROUND);
	assert_true(chunks >= 1);
	assert_true(coev__block_chunks(rt) <= CHUNKS_MAX);
	coev_rt_free(rt);
	tu_assert_no_failures();
}

/* Spawned and joined from this (plain) thread: blocks are taken from and
 * freed to the runtime's batches, one at a time, and reused. */
static void test_block_reused_from_plain_thread(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t[PER_ROUND];

	(void)state;
	for (int r = 0; r < ROUNDS / 4; r++) {
		for (int i = 0; i < PER_ROUND; i++)
			assert_int_equal(coev_rt_spawn(rt, NULL, trivial,
						       (void *)(uintptr_t)i,
						       &t[i]),
					 0);
		for (int i = 0; i < PER_ROUND; i++) {
			int ret = -1;

			assert_int_equal(coev_join(t[i], &ret), 0);
			assert_int_equal(ret, i);
		}
	}
	/* Only this thread allocated: one chunk holds PER_ROUND blocks. */
	assert_int_equal(coev__block_chunks(rt), 1);
	coev_rt_free(rt);
}

/* Many tasks alive at once, so several chunks: all unmapped by
 * coev_rt_free. */
#define MANY TU_SCALE(30000, 20000, 10000)

static int many_main(void *arg)
{
	coev_task_t **t = calloc(MANY, sizeof *t);

	(void)arg;
	if (!t)
		return -ENOMEM;
	for (int i = 0; i < MANY; i++)
		TU_CHECK_EQ(coev_spawn(trivial, NULL, &t[i]), 0);
	for (int i = 0; i < MANY; i++)
		TU_CHECK_EQ(coev_join(t[i], NULL), 0);
	free(t);
	return 0;
}

static void test_block_chunks_unmapped_by_rt_free(void **state)
{
	size_t before = coev__block_mapped();
	coev_rt_t *rt = tu_new_rt(2);
	coev_task_t *t;
	unsigned chunks;

	(void)state;
	assert_int_equal(coev_rt_spawn(rt, "many", many_main, NULL, &t), 0);
	assert_int_equal(coev_join(t, NULL), 0);
	chunks = coev__block_chunks(rt);
	assert_true(chunks >= 2);
	assert_true(coev__block_mapped() >=
		    before + chunks * ((size_t)2 << 20));
	coev_rt_free(rt);
	assert_int_equal(coev__block_mapped(), before);
	tu_assert_no_failures();
}

/* Tasks parked on an event nobody sets, and handles never joined: the
 * walk of the chunks finds each of them, the runtime's shutdown cancels
 * them, and coev_rt_free frees their blocks
 * and unmaps every chunk (ASan and valgrind see no leak). */
/* More than one chunk's worth (8,191 blocks of 256 bytes per chunk). */
#define PARKED 9000

struct park_ctx {
	coev_event_t ev;
	coev_wg_t started;
};

static int parked(void *arg)
{
	struct park_ctx *c = arg;

	coev_wg_done(&c->started);
	return coev_event_wait(&c->ev);
}

static void test_block_rt_freed_with_tasks_parked(void **state)
{
	size_t before = coev__block_mapped();
	coev_rt_t *rt = tu_new_rt(2);
	struct park_ctx *c = calloc(1, sizeof *c);
	coev_task_t *t;

	(void)state;
	assert_non_null(c);
	assert_int_equal(coev_event_init(&c->ev), 0);
	assert_int_equal(coev_wg_init(&c->started), 0);
	coev_wg_add(&c->started, PARKED);
	/* Every other handle is kept and never joined. */
	for (int i = 0; i < PARKED; i++)
		assert_int_equal(coev_rt_spawn(rt, "parked", parked, c,
					       i % 2 ? &t : NULL),
				 0);
	assert_int_equal(coev_wg_wait_dl(&c->started, tu_guard()), 0);
	assert_true(coev__block_chunks(rt) >= 2);
	/* The walk of the chunks finds every one of them. */
	assert_int_equal(coev_rt_tasks(rt, NULL, 0), PARKED);
	assert_true(coev__block_mapped() > before);
	/* Cancelled, they end: none is abandoned, so nothing is kept. */
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	coev_rt_free(rt);
	assert_int_equal(coev__block_mapped(), before);
	coev_wg_destroy(&c->started);
	coev_event_destroy(&c->ev);
	free(c);
}

/* Snapshots from a plain thread while tasks are spawned and released on
 * the workers: the walk takes a reference on each live block, so none is
 * reused under it (ASan and TSan check the memory), and every task it
 * lists is one that was spawned here. */
#define SNAPSHOTS TU_SCALE(300, 100, 50)

struct churn {
	atomic_bool stop;
	atomic_long spawned;
	coev_wg_t going; /* done after the first batch */
};

static int churn_main(void *arg)
{
	struct churn *c = arg;
	coev_task_t *t[64];
	int first = 0;

	while (!atomic_load(&c->stop)) {
		for (int i = 0; i < 64; i++) {
			TU_CHECK_EQ(coev_spawn_named("churn", trivial, NULL,
						     i % 2 ? &t[i] : NULL),
				    0);
			atomic_fetch_add(&c->spawned, 1);
		}
		for (int i = 1; i < 64; i += 2)
			TU_CHECK_EQ(coev_join(t[i], NULL), 0);
		if (!first++)
			coev_wg_done(&c->going);
	}
	return 0;
}

static void test_block_walk_races_spawn_and_release(void **state)
{
	coev_rt_t *rt = tu_new_rt(2);
	struct churn c = {.stop = false};
	coev_task_info_t info[32];
	coev_task_t *main;
	long seen = 0;

	(void)state;
	assert_int_equal(coev_wg_init(&c.going), 0);
	coev_wg_add(&c.going, 1);
	assert_int_equal(coev_rt_spawn(rt, "main", churn_main, &c, &main), 0);
	/* The snapshots begin once tasks are spawned and released. */
	assert_int_equal(coev_wg_wait_dl(&c.going, tu_guard()), 0);
	for (int i = 0; i < SNAPSHOTS; i++) {
		int n = coev_rt_tasks(rt, info, 32);

		assert_true(n >= 1); /* main, at least */
		for (int k = 0; k < n && k < 32; k++) {
			assert_true(info[k].id != 0);
			assert_true(strcmp(info[k].name, "churn") == 0 ||
				    strcmp(info[k].name, "main") == 0);
		}
		seen += n;
	}
	atomic_store(&c.stop, true);
	assert_int_equal(coev_join(main, NULL), 0);
	print_message("%ld tasks spawned, %ld seen in %d snapshots\n",
		      atomic_load(&c.spawned), seen, SNAPSHOTS);
	assert_true(atomic_load(&c.spawned) >= 64);
	/* Once every task has ended, none is listed. */
	assert_int_equal(coev_rt_shutdown(rt, tu_guard()), 0);
	assert_int_equal(coev_rt_tasks(rt, NULL, 0), 0);
	coev_rt_free(rt);
	coev_wg_destroy(&c.going);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_reused_across_workers),
		cmocka_unit_test(test_block_reused_from_plain_thread),
		cmocka_unit_test(test_block_chunks_unmapped_by_rt_free),
		cmocka_unit_test(test_block_rt_freed_with_tasks_parked),
		cmocka_unit_test(test_block_walk_races_spawn_and_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
