/* SPDX-License-Identifier: MIT */
/*
 * tests/sched/test_version.c — coev_version and coev_version_number
 * (sched/version.c) report the version of include/coev/version.h, and the
 * version macros agree with one another.
 */
#include "tests/testutil.h"

#include <stdlib.h>

static void test_version_runtime_matches_the_header(void **state)
{
	(void)state;
	assert_non_null(coev_version());
	assert_string_equal(coev_version(), COEV_VERSION_STRING);
	assert_int_equal(coev_version_number(), COEV_VERSION_NUMBER);
}

/* The string is MAJOR.MINOR.PATCH of the three macros, and the number is
 * made of the same three. */
static void test_version_string_and_number_agree(void **state)
{
	(void)state;
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", COEV_VERSION_MAJOR,
		 COEV_VERSION_MINOR, COEV_VERSION_PATCH);
	assert_string_equal(COEV_VERSION_STRING, want);
	assert_int_equal(COEV_VERSION_NUMBER, COEV_VERSION_MAJOR * 10000 +
						      COEV_VERSION_MINOR * 100 +
						      COEV_VERSION_PATCH);
	assert_true(COEV_VERSION_MINOR < 100 && COEV_VERSION_PATCH < 100);
}

static void test_version_at_least(void **state)
{
	(void)state;
	assert_true(COEV_VERSION_AT_LEAST(
		COEV_VERSION_MAJOR, COEV_VERSION_MINOR, COEV_VERSION_PATCH));
	assert_true(COEV_VERSION_AT_LEAST(0, 0, 0));
	assert_false(COEV_VERSION_AT_LEAST(COEV_VERSION_MAJOR,
					   COEV_VERSION_MINOR,
					   COEV_VERSION_PATCH + 1));
	assert_false(COEV_VERSION_AT_LEAST(COEV_VERSION_MAJOR,
					   COEV_VERSION_MINOR + 1, 0));
	assert_false(COEV_VERSION_AT_LEAST(COEV_VERSION_MAJOR + 1, 0, 0));
#if !COEV_VERSION_AT_LEAST(0, 1, 0)
	fail_msg("COEV_VERSION_AT_LEAST(0, 1, 0) is false in #if");
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_runtime_matches_the_header),
		cmocka_unit_test(test_version_string_and_number_agree),
		cmocka_unit_test(test_version_at_least),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
