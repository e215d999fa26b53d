/* SPDX-License-Identifier: MIT */
/*
 * tests/misuse/misuse_util.h — helpers shared by the misuse suites.
 *
 *  - wait_gate: a task body that sleeps until gate_open is set (or it is
 *    cancelled); shielded_sleep_ms: sleeps arg ms with cancellation
 *    hidden, counting sleepers_started.
 *  - expect_abort(child, arg, words): child(arg) in a forked process must
 *    die of SIGABRT after a "coev: fatal" line containing every word;
 *    expect_main_aborts(fn, words): the same for coev_run(fn).
 *  - expect_clean_child(fn, arg): fn(arg) in a forked process under an
 *    alarm must end with no failed TU_CHECK and no sanitizer report; the
 *    body must not use cmocka's assertions (child_rt makes a runtime
 *    without them).
 */
#ifndef COEV_TESTS_MISUSE_UTIL_H
#define COEV_TESTS_MISUSE_UTIL_H

#include "tests/testutil.h"

#include <limits.h>
#include <pthread.h>

/* "Promptly": far above any scheduling delay, far below a hang. */
#define PROMPT COEV_SEC(TU_SCALE(2, 4, 5))

/* Seconds a child may take before its alarm ends it. */
#define CHILD_ALARM_S TU_SCALE(20, 40, 60)

TU_UNUSED static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

/* A gate tasks wait on (sleeping, so that cancellation ends the wait). */
static atomic_int gate_open TU_UNUSED;

TU_UNUSED static int wait_gate(void *arg)
{
	(void)arg;
	while (!atomic_load(&gate_open))
		if (coev_sleep(COEV_MSEC(1)) == -ECANCELED)
			return -ECANCELED;
	return 0;
}

/* A task that sleeps for arg milliseconds with cancellation hidden. */
static atomic_int sleepers_started TU_UNUSED;

TU_UNUSED static int shielded_sleep_ms(void *arg)
{
	coev_shield_begin();
	atomic_fetch_add(&sleepers_started, 1);
	coev_sleep(COEV_MSEC((intptr_t)arg));
	coev_shield_end();
	return 0;
}

/* In a child: coev_run(fn) with two workers, then a line saying that it
 * returned (shown when an abort test fails). */
TU_UNUSED static void run_in_runtime(void *fn)
{
	coev_config_t cfg;

	if (coev_config_init(&cfg) != 0)
		_exit(90);
	cfg.workers = 2;
	cfg.shutdown_timeout = COEV_SEC(2);
	int rc = coev_run((coev_fn)fn, NULL, &cfg);
	fprintf(stderr, "coev_run returned %d: no abort\n", rc);
}

/* Runs child(arg) in a forked process and asserts that it died of SIGABRT
 * with a message containing every word of words (NULL-terminated). */
TU_UNUSED static void expect_abort(void (*child)(void *), void *arg,
				   const char *const *words)
{
	tu_child_t *res = malloc(sizeof *res);
	int ok;

	assert_non_null(res);
	assert_int_equal(tu_run_in_child(child, arg, res), 0);
	ok = tu_child_signaled(res, SIGABRT) && strstr(res->out, "coev: fatal");
	for (const char *const *w = words; ok && *w; w++)
		ok = strstr(res->out, *w) != NULL;
	if (!ok) {
		fprintf(stderr, "expected an abort naming:");
		for (const char *const *w = words; *w; w++)
			fprintf(stderr, " '%s'", *w);
		fprintf(stderr, "\n");
		tu_child_dump(res);
	}
	free(res);
	assert_true(ok);
}

/* As expect_abort for coev_run(fn) in the child. */
TU_UNUSED static void expect_main_aborts(coev_fn fn, const char *const *words)
{
	expect_abort(run_in_runtime, (void *)fn, words);
}

/* The body of a child that must end normally: an alarm ends it if it
 * hangs, and it exits with status 1 if any check failed. */
typedef struct checked {
	void (*fn)(void *arg);
	void *arg;
} checked_t;

TU_UNUSED static void checked_child(void *arg)
{
	checked_t *c = arg;

	alarm(CHILD_ALARM_S);
	c->fn(c->arg);
	int n = atomic_load(&tu_failures);
	fprintf(stderr, "checked child: %d failure(s)\n", n);
	fflush(stderr);
	_exit(n ? 1 : 0);
}

/* A runtime for a child's body, which must not use cmocka's assertions
 * (they would jump back into the copy of the test runner). */
TU_UNUSED static coev_rt_t *child_rt(unsigned workers)
{
	coev_config_t cfg;
	coev_rt_t *rt;

	if (coev_config_init(&cfg) != 0)
		_exit(92);
	cfg.workers = workers;
	if (coev_rt_new(&cfg, &rt) != 0)
		_exit(93);
	return rt;
}

/* Runs fn(arg) in a forked child and asserts that it exited with no
 * failed check, in time. */
TU_UNUSED static void expect_clean_child(void (*fn)(void *), void *arg)
{
	checked_t c = {fn, arg};
	tu_child_t *res = malloc(sizeof *res);

	assert_non_null(res);
	assert_int_equal(tu_run_in_child(checked_child, &c, res), 0);
	/* A child ends with _exit: a sanitizer's report would not change
	 * its status, so look for one in its output. */
	int ok = WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0 &&
		 !strstr(res->out, "Sanitizer") &&
		 !strstr(res->out, "runtime error");
	if (!ok) {
		if (WIFSIGNALED(res->status))
			fprintf(stderr, "child killed by signal %d%s\n",
				WTERMSIG(res->status),
				WTERMSIG(res->status) == SIGALRM
					? " (the alarm: it hung)"
					: "");
		tu_child_dump(res);
	}
	free(res);
	assert_true(ok);
}

#endif
