/* SPDX-License-Identifier: MIT */
/*
 * tests/abi/test_abi.c — the layouts of the public structs programs
 * compile in (tests/abi/abi_table.h) stay what the table records, so that
 * a change that would break programs built against an earlier release
 * fails here and names docs/ABI.md, rather than being found by a user.
 */
#include "tests/testutil.h"

#include <stdalign.h>

#include "abi_table.h"

struct abi_row {
	const char *name;
	size_t size, align;	      /* what this compiler makes of it */
	size_t want_size, want_align; /* what the table records */
};

static const struct abi_row rows[] = {
#define ABI_ROW(type, size, align) \
	{#type, sizeof(type), alignof(type), (size), (align)},
	COEV_ABI_STRUCTS(ABI_ROW)
#undef ABI_ROW
};

/* Every row is compared before the test fails, so that one run names
 * every struct that changed. */
static void test_abi_struct_layouts_match_the_table(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct abi_row *r = &rows[i];
		if (r->size == r->want_size && r->align == r->want_align)
			continue;
		print_error(
			"%s: sizeof %zu, alignof %zu; tests/abi/abi_table.h "
			"records %zu, %zu. Callers compile this layout "
			"in: changing it breaks the ABI (docs/ABI.md says "
			"when that is allowed and what else must "
			"change).\n",
			r->name, r->size, r->align, r->want_size,
			r->want_align);
		bad++;
	}
	if (bad)
		fail_msg("%d public struct(s) changed layout", bad);
}

/* The sync objects' storage is a single opaque member, which the library
 * may lay out as it likes within it: the first byte is the start. */
static void test_abi_sync_storage_starts_the_struct(void **state)
{
	(void)state;
	assert_int_equal(offsetof(coev_mutex_t, _p), 0);
	assert_int_equal(sizeof(((coev_mutex_t *)0)->_p), sizeof(coev_mutex_t));
}

/* The config's fields, in order: a program that sets one by name writes
 * where the library reads it only if the offsets match the release the
 * library was built as. A reordering keeps the size, so the size row alone
 * would not see it. */
static void test_abi_config_fields_keep_their_offsets(void **state)
{
	(void)state;
	assert_int_equal(offsetof(coev_config_t, workers), 0);
	assert_int_equal(offsetof(coev_config_t, debug), 4);
	assert_int_equal(offsetof(coev_config_t, stack_size), 8);
	assert_int_equal(offsetof(coev_config_t, shutdown_timeout), 16);
	assert_int_equal(offsetof(coev_config_t, blocking_max), 24);
	assert_int_equal(offsetof(coev_config_t, blocking_idle), 32);
	assert_int_equal(offsetof(coev_config_t, slow_task), 40);
	assert_int_equal(offsetof(coev_config_t, log), 48);
	assert_int_equal(offsetof(coev_config_t, log_arg), 56);
	assert_int_equal(offsetof(coev_config_t, trace), 64);
	assert_int_equal(offsetof(coev_config_t, trace_events), 72);
	assert_int_equal(offsetof(coev_config_t, report_unjoined), 80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_struct_layouts_match_the_table),
		cmocka_unit_test(test_abi_sync_storage_starts_the_struct),
		cmocka_unit_test(test_abi_config_fields_keep_their_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
