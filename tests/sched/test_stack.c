/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_stack.c — coroutine stacks: reuse from the pools, the
 * guard region and its overflow report, and the configured size.
 */
#include "tests/testutil.h"

/* ---- reuse -------------------------------------------------------------- */

#define REUSE_TASKS TU_SCALE(1000000, 1000000, 300000)
#define REUSE_BATCH 1000

static int tiny(void *arg)
{
	/* Touch the stack a little so that a stack is really used. */
	volatile char buf[128];

	buf[0] = (char)(uintptr_t)arg;
	buf[127] = buf[0];
	return buf[127] == (char)(uintptr_t)arg ? 0 : -1;
}

static int reuse_main(void *arg)
{
	coev_task_t **t = calloc(REUSE_BATCH, sizeof *t);
	int *rets = calloc(REUSE_BATCH, sizeof *rets);
	long done = 0;

	(void)arg;
	for (long base = 0; base < REUSE_TASKS; base += REUSE_BATCH) {
		for (int i = 0; i < REUSE_BATCH; i++) {
			int rc = coev_spawn(tiny, (void *)(uintptr_t)i, &t[i]);
			if (rc != 0) {
				TU_CHECK_MSG(0, "spawn: %s", coev_strerror(rc));
				goto out;
			}
		}
		int failed = coev_gather(t, REUSE_BATCH, rets);
		TU_CHECK_EQ(failed, 0);
		done += REUSE_BATCH;
	}
out:
	free(t);
	free(rets);
	return (int)(done == REUSE_TASKS);
}

static void test_stack_reused_from_pool(void **state)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	coev_task_t *t;
	int ok = 0;
	uint64_t mapped = 0, pooled = 0;

	(void)state;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	assert_int_equal(coev_rt_spawn(rt, "reuse", reuse_main, NULL, &t), 0);
	assert_int_equal(coev_join(t, &ok), 0);
	for (unsigned i = 0; i < coev_rt_workers(rt); i++) {
		coev_worker_stats_t st;
		assert_int_equal(coev_rt_worker_stats(rt, i, &st), 0);
		mapped += st.stacks_mapped;
		pooled += st.stacks_pooled;
	}
	coev_rt_free(rt);
	tu_assert_no_failures();
	assert_int_equal(ok, 1);
	print_message("%d tasks ran on %llu stacks (%llu idle at the end)\n",
		      REUSE_TASKS, (unsigned long long)mapped,
		      (unsigned long long)pooled);
	/* Every task used a stack, but far fewer than one each. */
	assert_true(mapped >= 1);
	assert_true(mapped < 1000);
	assert_true(pooled >= 1);
	assert_true(pooled <= mapped);
}

/* ---- overflow ----------------------------------------------------------- */

static volatile int stop_recursing;

static TU_NOINLINE int recurse(int depth)
{
	volatile char frame[512];

	frame[0] = (char)depth;
	frame[511] = (char)depth;
	if (stop_recursing)
		return depth;
	int r = recurse(depth + 1);
	/* Work after the call: no tail call, the frames stay. */
	return r + frame[0] + frame[511];
}

static int deep_recurser(void *arg)
{
	(void)arg;
	return recurse(0);
}

static int overflow_main(void *arg)
{
	coev_task_t *t;
	int r = 0;

	(void)arg;
	if (coev_spawn_named("deep-recurser", deep_recurser, NULL, &t) != 0)
		return -1;
	coev_join(t, &r);
	return -2; /* not reached: the overflow kills the process */
}

static void run_overflow(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 2;
	cfg.stack_size = 64 * 1024;
	int rc = coev_run(overflow_main, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no overflow detected\n", rc);
}

static void test_stack_overflow_reports_task_name(void **state)
{
	tu_child_t *res = malloc(sizeof *res);

	(void)state;
	assert_int_equal(tu_run_in_child(run_overflow, NULL, res), 0);
	int died = tu_child_signaled(res, SIGSEGV) ||
		   tu_child_signaled(res, SIGBUS) ||
		   tu_child_signaled(res, SIGABRT);
#if defined(COEV_ASAN)
	/* ASan's own fault handler, if the library hands the fault on to
	 * it, ends the process with exit status 1 instead of the signal. */
	died = died ||
	       (WIFEXITED(res->status) && WEXITSTATUS(res->status) != 0);
#endif
	int named = strstr(res->out, "stack overflow") != NULL &&
		    strstr(res->out, "deep-recurser") != NULL;
	if (!died || !named)
		tu_child_dump(res);
	assert_false(res->timed_out);
	assert_true(died);
	assert_non_null(strstr(res->out, "stack overflow"));
	assert_non_null(strstr(res->out, "deep-recurser"));
	free(res);
}

/* ---- size --------------------------------------------------------------- */

static void expect_env_size(const char *value, size_t want)
{
	coev_config_t cfg;

	setenv("COEV_STACK_SIZE", value, 1);
	memset(&cfg, 0, sizeof cfg);
	int rc = coev_config_init(&cfg);
	if (rc != 0 || cfg.stack_size != want)
		fprintf(stderr,
			"COEV_STACK_SIZE=%s: rc %d size %zu, want %zu\n", value,
			rc, cfg.stack_size, want);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.stack_size, want);
}

static void expect_env_rejected(const char *value)
{
	coev_config_t cfg;

	setenv("COEV_STACK_SIZE", value, 1);
	memset(&cfg, 0xab, sizeof cfg);
	int rc = coev_config_init(&cfg);
	if (rc != -EINVAL)
		fprintf(stderr, "COEV_STACK_SIZE=%s: rc %d size %zu\n", value,
			rc, cfg.stack_size);
	assert_int_equal(rc, -EINVAL);
	/* That field keeps its built-in default; the others are set. */
	assert_int_equal(cfg.stack_size, COEV_STACK_DEFAULT);
	assert_true(cfg.workers >= 1 && cfg.workers <= COEV_WORKERS_MAX);
	assert_int_equal(cfg.shutdown_timeout, COEV_SEC(5));
}

static void test_stack_size_from_environment(void **state)
{
	(void)state;
	unsetenv("COEV_WORKERS");
	expect_env_size("65536", 65536);
	expect_env_size("131072", 131072);
	expect_env_size("128k", 128 * 1024);
	expect_env_size("1m", 1024 * 1024);
	expect_env_size("16k", COEV_STACK_MIN);
	expect_env_size("1024m", COEV_STACK_MAX);

	expect_env_rejected("0");
	expect_env_rejected("abc");
	expect_env_rejected("12q");
	expect_env_rejected("-65536");
	expect_env_rejected("1k");	   /* below COEV_STACK_MIN */
	expect_env_rejected("16383");	   /* one byte below */
	expect_env_rejected("1025m");	   /* above COEV_STACK_MAX */
	expect_env_rejected("1073741825"); /* one byte above */
	expect_env_rejected("99999999999999999999999999");
	expect_env_rejected("18446744073709551615");
	/* (2^64 + 64 KiB) bytes: wraps to a valid size if scaled unchecked */
	expect_env_rejected("18014398509482048k");

	unsetenv("COEV_STACK_SIZE");
	coev_config_t cfg;
	assert_int_equal(coev_config_init(&cfg), 0);
	assert_int_equal(cfg.stack_size, COEV_STACK_DEFAULT);
}

static void test_stack_size_rejected_by_rt_new(void **state)
{
	static const size_t bad[] = {0, COEV_STACK_MIN - 1, COEV_STACK_MAX + 1,
				     SIZE_MAX / 2, SIZE_MAX};
	coev_rt_t *rt = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		coev_config_t cfg = tu_config(2);
		cfg.stack_size = bad[i];
		assert_int_equal(coev_rt_new(&cfg, &rt), -EINVAL);
	}
}

/* A task can use (nearly) all of the configured size. */
static TU_NOINLINE int use_stack(size_t bytes)
{
	/* Touch one byte per 256 in a series of frames totalling `bytes`. */
	volatile char frame[4096];

	for (size_t i = 0; i < sizeof frame; i += 256)
		frame[i] = (char)i;
	if (bytes <= sizeof frame)
		return frame[256];
	return use_stack(bytes - sizeof frame) + frame[0];
}

static int use_most_of_stack(void *arg)
{
	size_t bytes = (size_t)(uintptr_t)arg;
	return use_stack(bytes) >= 0 ? 0 : 1;
}

static void run_sized(size_t stack_size, size_t use)
{
	coev_config_t cfg = tu_config(2);
	coev_rt_t *rt = NULL;
	coev_task_t *t[4];

	cfg.stack_size = stack_size;
	assert_int_equal(coev_rt_new(&cfg, &rt), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(coev_rt_spawn(rt, "big-user",
					       use_most_of_stack,
					       (void *)(uintptr_t)use, &t[i]),
				 0);
	for (int i = 0; i < 4; i++) {
		int r = -1;
		assert_int_equal(coev_join(t[i], &r), 0);
		assert_int_equal(r, 0);
	}
	coev_rt_free(rt);
}

static void test_stack_configured_size_is_usable(void **state)
{
	(void)state;
	/* Half of a 1 MiB stack, well beyond the 256 KiB default. ASan's
	 * frames are larger, so it uses a little less. */
	run_sized(1024 * 1024, TU_SCALE(512, 384, 512) * 1024);
	/* The smallest size, not a page multiple: rounded up, and usable. */
	run_sized(COEV_STACK_MIN + 1, TU_SCALE(8, 4, 8) * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* The death test first, while the process has one thread. */
		cmocka_unit_test(test_stack_overflow_reports_task_name),
		cmocka_unit_test(test_stack_reused_from_pool),
		cmocka_unit_test(test_stack_size_from_environment),
		cmocka_unit_test(test_stack_size_rejected_by_rt_new),
		cmocka_unit_test(test_stack_configured_size_is_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
