/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_error.c — coev_strerror (include/coev/error.h).
 */
#include "tests/testutil.h"

#include <limits.h>
#include <pthread.h>

static void test_error_own_codes_have_their_messages(void **state)
{
	(void)state;
#define CHECK_OWN(name, value, msg)                               \
	do {                                                      \
		assert_int_equal((name), (value));                \
		assert_true((name) < COEV_ERR_BASE);              \
		assert_string_equal(coev_strerror(name), msg);    \
		assert_string_equal(coev_strerror(-(name)), msg); \
	} while (0);
	COEV_OWN_ERRORS(CHECK_OWN)
#undef CHECK_OWN
}

/* Every errno value coev's calls document returning. */
static const int documented_errno[] = {
	EINVAL,	   ENOMEM,  EAGAIN, EMFILE, ENFILE, ESHUTDOWN,
	ETIMEDOUT, EDEADLK, EIO,    EPERM,  ENOENT, ECANCELED,
};

static void test_error_errno_codes_are_named(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof documented_errno / sizeof documented_errno[0]; i++) {
		int e = documented_errno[i];
		const char *m = coev_strerror(-e);
		assert_non_null(m);
		assert_true(strlen(m) > 0);
		assert_string_not_equal(m, "unknown error");
		/* Positive values are treated as their negation. */
		assert_string_equal(coev_strerror(e), m);
	}
	/* Different codes, different messages. */
	assert_string_not_equal(coev_strerror(-EINVAL),
				coev_strerror(-ETIMEDOUT));
	assert_string_not_equal(coev_strerror(COEV_ENOTCORO),
				coev_strerror(COEV_ENOTRT));
}

static void test_error_every_code_gives_a_string(void **state)
{
	(void)state;
	/* Across the errno range and coev's own range: never NULL, never
	 * empty. */
	for (int e = -200; e <= 200; e++) {
		const char *m = coev_strerror(e);
		assert_non_null(m);
		assert_true(strlen(m) > 0);
	}
	for (int e = COEV_ERR_BASE - 50; e <= COEV_ERR_BASE + 50; e++) {
		const char *m = coev_strerror(e);
		assert_non_null(m);
		assert_true(strlen(m) > 0);
	}
}

static void test_error_unknown_code(void **state)
{
	(void)state;
	static const int unknown[] = {COEV_ERR_BASE - 1000,
				      COEV_ERR_BASE - 100,
				      -123456789,
				      123456789,
				      INT_MIN,
				      INT_MAX,
				      COEV_ERR_BASE};
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		const char *m = coev_strerror(unknown[i]);
		if (!m || strcmp(m, "unknown error") != 0)
			fprintf(stderr, "coev_strerror(%d) = \"%s\"\n",
				unknown[i], m ? m : "(null)");
		assert_non_null(m);
		assert_string_equal(m, "unknown error");
	}
}

/* Any thread, and the result is a constant: the same pointer each time. */
static void *strerror_thread(void *arg)
{
	const char **out = arg;

	for (int i = 0; i < 1000; i++)
		out[0] = coev_strerror(-ETIMEDOUT);
	out[1] = coev_strerror(COEV_ESTACKMAP);
	return NULL;
}

static void test_error_strerror_from_threads(void **state)
{
	pthread_t th[4];
	const char *got[4][2];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, strerror_thread, got[i]),
			0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_string_equal(got[i][0], coev_strerror(-ETIMEDOUT));
		assert_string_equal(got[i][1],
				    "no memory mapping left for a coroutine "
				    "stack");
	}
}

/* A refused second completion of a future returns -EALREADY
 * (include/coev/future.h): its message must read right for a future
 * (it read "already in progress"), and still for the system's EALREADY
 * (a connect already under way). */
static void test_error_ealready_reads_right_for_futures(void **state)
{
	coev_future_t *f;
	int r;

	(void)state;
	assert_int_equal(coev_future_new(&f), 0);
	assert_int_equal(coev_future_set(f, 1), 0);
	r = coev_future_set(f, 2);
	assert_int_equal(r, -EALREADY);
	if (!strstr(coev_strerror(r), "already completed"))
		fail_msg("coev_future_set after completion: %d (%s)", r,
			 coev_strerror(r));
	assert_non_null(strstr(coev_strerror(r), "in progress"));
	assert_int_equal(coev_future_cancel(f), -EALREADY);
	coev_future_release(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_own_codes_have_their_messages),
		cmocka_unit_test(test_error_errno_codes_are_named),
		cmocka_unit_test(test_error_every_code_gives_a_string),
		cmocka_unit_test(test_error_unknown_code),
		cmocka_unit_test(test_error_strerror_from_threads),
		cmocka_unit_test(test_error_ealready_reads_right_for_futures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
