/* SPDX-License-Identifier: MIT */
/*
 * tests/observe/test_symbol.c — coev__symbolise (observe/symbol.c): names for
 * a static function, a global one, a library function linked in statically
 * (coev_spawn) and a libc function; a libc function missing from libc's
 * table gives the address form; a return address names its caller and is
 * looked up one byte back; data and garbage addresses give the address
 * forms; truncation keeps the NUL; several threads on a cold cache; a task
 * on its coroutine stack; more objects than the cache holds.
 *
 * The test binary is not stripped (built with -g) and not linked with
 * -rdynamic, so its static and global functions are found only through
 * its .symtab, which is what symbol.c adds over dladdr().
 */
#include "tests/testutil.h"
#include "observe/symbol.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>

#define OBJ "test_symbol"

/* ---- subjects ----------------------------------------------------------- */

/* Global, so that its name is in .symtab with STB_GLOBAL. */
int symbol_test_global(int x);

TU_NOINLINE int symbol_test_global(int x)
{
	return x * 3 + 1;
}

TU_NOINLINE static int symbol_test_static(int x)
{
	return x * 5 + 2;
}

/* Returns its own return address: a point inside its caller, just after
 * the call. */
TU_NOINLINE static uintptr_t where_called(void)
{
	return (uintptr_t)__builtin_return_address(0);
}

/* The known caller. The store after the call keeps the call from becoming
 * a tail jump, which would return into this function's caller instead. */
TU_NOINLINE static void known_caller(volatile uintptr_t *out)
{
	*out = where_called();
	*out += 0;
}

static int symbol_test_data = 7;

static uintptr_t fn_addr(int (*fn)(int))
{
	return (uintptr_t)fn;
}

/* A function as libc defines it. &fopen in this file may be a sanitizer's
 * interceptor (in libasan, or in the binary under TSan), so the address is
 * taken from libc's own handle. 0 when libc cannot be found by name. */
static uintptr_t libc_sym(const char *name)
{
	void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	void *f;

	if (!h)
		return 0;
	f = dlsym(h, name);
	dlclose(h);
	return (uintptr_t)f;
}

/* Symbolises pc into buf (256 bytes) and checks the returned length. */
static const char *sym(uintptr_t pc, bool ret_addr, char *buf)
{
	size_t n = coev__symbolise(pc, ret_addr, buf, 256);

	TU_CHECK_EQ(n, strlen(buf));
	return buf;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- names -------------------------------------------------------------- */

static void test_symbol_static_function(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(symbol_test_static(1), 7);
	sym(fn_addr(symbol_test_static), false, buf);
	assert_string_equal(buf, "symbol_test_static+0x0 (" OBJ ")");
	sym(fn_addr(symbol_test_static) + 3, false, buf);
	assert_string_equal(buf, "symbol_test_static+0x3 (" OBJ ")");
	tu_assert_no_failures();
}

static void test_symbol_global_function(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(symbol_test_global(1), 4);
	sym(fn_addr(symbol_test_global), false, buf);
	assert_string_equal(buf, "symbol_test_global+0x0 (" OBJ ")");
	tu_assert_no_failures();
}

/* coev_spawn comes from libcoev.a: linked into this binary, hidden. */
static void test_symbol_library_function(void **state)
{
	char buf[256];

	(void)state;
	sym((uintptr_t)coev_spawn, false, buf);
	assert_string_equal(buf, "coev_spawn+0x0 (" OBJ ")");
	tu_assert_no_failures();
}

static void test_symbol_libc_function(void **state)
{
	uintptr_t f = libc_sym("fopen");
	char buf[256];

	(void)state;
	if (!f)
		skip();
	sym(f, false, buf);
	print_message("libc fopen: %s\n", buf);
	assert_non_null(strstr(buf, "fopen+0x0 ("));
	assert_non_null(strstr(buf, "(libc"));
	tu_assert_no_failures();
}

/* strlen is an IFUNC: the address is the variant chosen for this CPU
 * (__strlen_avx2 and the like), a local symbol, absent from the dynamic
 * symbol table of a stripped libc. Then the address form is right, not the
 * name of whatever exported function precedes it. */
static void test_symbol_libc_unlisted_function(void **state)
{
	uintptr_t f = libc_sym("strlen");
	char buf[256];

	(void)state;
	if (!f)
		skip();
	sym(f, false, buf);
	print_message("libc strlen: %s\n", buf);
	if (starts(buf, "0x"))
		assert_non_null(strstr(buf, " (libc"));
	else
		assert_non_null(strstr(buf, "strlen"));
	tu_assert_no_failures();
}

/* ---- return addresses --------------------------------------------------- */

static void test_symbol_return_address_names_caller(void **state)
{
	volatile uintptr_t ra = 0;
	uintptr_t start = (uintptr_t)known_caller;
	char buf[256], want[64];

	(void)state;
	known_caller(&ra);
	assert_true(ra != 0);
	sym(ra, true, buf);
	print_message("return address: %s\n", buf);
	/* A compiler may clone it as known_caller.isra.0 or the like. */
	assert_true(starts(buf, "known_caller"));
	assert_non_null(strstr(buf, " (" OBJ ")"));
	/* The offset is measured to the printed pc, not to pc - 1. */
	if (starts(buf, "known_caller+")) {
		snprintf(want, sizeof want, "known_caller+0x%" PRIxPTR " (",
			 ra - start);
		assert_true(starts(buf, want));
	}
	tu_assert_no_failures();
}

/* A return address equal to a function's first byte belongs to a call at
 * the very end of whatever precedes it: pc - 1 is looked up. */
static void test_symbol_return_address_looks_one_byte_back(void **state)
{
	uintptr_t f = fn_addr(symbol_test_static);
	char buf[256];

	(void)state;
	sym(f, true, buf);
	assert_false(starts(buf, "symbol_test_static+"));
	sym(f + 1, true, buf);
	assert_string_equal(buf, "symbol_test_static+0x1 (" OBJ ")");
	tu_assert_no_failures();
}

/* ---- addresses without a function --------------------------------------- */

static void test_symbol_data_address(void **state)
{
	char buf[256], want[64];

	(void)state;
	symbol_test_data++;
	sym((uintptr_t)&symbol_test_data, false, buf);
	snprintf(want, sizeof want, "0x%" PRIxPTR " (" OBJ "+0x",
		 (uintptr_t)&symbol_test_data);
	print_message("data: %s\n", buf);
	assert_true(starts(buf, want));
	assert_int_equal(buf[strlen(buf) - 1], ')');
	tu_assert_no_failures();
}

static void test_symbol_garbage_addresses(void **state)
{
	char *heap = malloc(64);
	int local = 0;
	const uintptr_t pcs[] = {
		0,
		1,
		2,
		4096,
		(uintptr_t)heap,
		(uintptr_t)&local,
		UINTPTR_MAX,
		UINTPTR_MAX - 4095,
	};
	char buf[256], want[32];

	(void)state;
	assert_non_null(heap);
	for (size_t i = 0; i < sizeof pcs / sizeof pcs[0]; i++) {
		for (int ra = 0; ra < 2; ra++) {
			sym(pcs[i], ra, buf);
			snprintf(want, sizeof want, "0x%" PRIxPTR, pcs[i]);
			assert_string_equal(buf, want);
		}
	}
	free(heap);
	tu_assert_no_failures();
}

static void test_symbol_truncation(void **state)
{
	const uintptr_t pcs[] = {fn_addr(symbol_test_static), 1,
				 (uintptr_t)&symbol_test_data};
	char full[256], buf[300];

	(void)state;
	assert_int_equal(coev__symbolise(pcs[0], false, NULL, 0), 0);
	for (size_t i = 0; i < sizeof pcs / sizeof pcs[0]; i++) {
		size_t n = coev__symbolise(pcs[i], false, full, sizeof full);
		const size_t lens[] = {0, 1, 2, 5, n, n + 1, n + 2};

		assert_true(n > 2 && n < sizeof full - 1);
		for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
			size_t len = lens[j];
			size_t want = len == 0 ? 0 : len - 1 < n ? len - 1 : n;

			memset(buf, 'X', sizeof buf);
			assert_int_equal(
				coev__symbolise(pcs[i], false, buf, len), want);
			assert_memory_equal(buf, full, want);
			if (len > 0)
				assert_int_equal(buf[want], '\0');
			assert_int_equal(buf[len], 'X');
		}
	}
}

/* ---- threads, tasks, many objects --------------------------------------- */

#define THREADS 4
#define THREAD_ROUNDS TU_SCALE(300, 100, 50)

static atomic_int go;

static void *symbol_thread(void *arg)
{
	uintptr_t f = (uintptr_t)arg;
	char buf[256];

	while (!atomic_load(&go)) {
	}
	for (int i = 0; i < THREAD_ROUNDS; i++) {
		volatile uintptr_t ra = 0;

		TU_CHECK(strcmp(sym(fn_addr(symbol_test_static), false, buf),
				"symbol_test_static+0x0 (" OBJ ")") == 0);
		TU_CHECK(strcmp(sym((uintptr_t)coev_spawn, false, buf),
				"coev_spawn+0x0 (" OBJ ")") == 0);
		if (f)
			TU_CHECK(strstr(sym(f, false, buf), "fopen+0x0 (libc"));
		known_caller(&ra);
		TU_CHECK(starts(sym(ra, true, buf), "known_caller"));
	}
	return NULL;
}

/* Runs first, while nothing is cached: the threads race to load. */
static void test_symbol_threads_cold_cache(void **state)
{
	pthread_t th[THREADS];
	uintptr_t f = libc_sym("fopen");

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, symbol_thread, (void *)f),
			0);
	atomic_store(&go, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	tu_assert_no_failures();
}

static int symbol_task(void *arg)
{
	volatile uintptr_t ra = 0;
	char buf[256];

	(void)arg;
	TU_CHECK(strcmp(sym((uintptr_t)coev_spawn, false, buf),
			"coev_spawn+0x0 (" OBJ ")") == 0);
	known_caller(&ra);
	TU_CHECK(starts(sym(ra, true, buf), "known_caller"));
	return 0;
}

/* On a coroutine stack, which is smaller than a thread's. */
static void test_symbol_in_task(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(symbol_task, NULL, 1), 0);
	tu_assert_no_failures();
}

/* Symbolises an address in the middle of each loaded object's first
 * executable segment. */
static int each_object(struct dl_phdr_info *info, size_t size, void *data)
{
	int *count = data;
	char buf[256];

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t pc = info->dlpi_addr + ph->p_vaddr + ph->p_memsz / 2;
		const char *slash = strrchr(info->dlpi_name, '/');
		const char *base = slash ? slash + 1 : info->dlpi_name;
		sym(pc, true, buf);
		TU_CHECK_MSG(!*base || strstr(buf, base), "%s: %s",
			     info->dlpi_name, buf);
		(*count)++;
		break;
	}
	return 0;
}

/* libcurl brings some thirty libraries: more objects than the cache has
 * slots, so slots are reused and objects read again. */
static void test_symbol_more_objects_than_slots(void **state)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	char buf[256];
	int count = 0;

	(void)state;
	if (!h)
		skip();
	for (int round = 0; round < 2; round++) {
		dl_iterate_phdr(each_object, &count);
		sym(fn_addr(symbol_test_static), false, buf);
		assert_string_equal(buf, "symbol_test_static+0x0 (" OBJ ")");
	}
	print_message("%d objects symbolised\n", count);
	assert_true(count > 2 * 16);
	dlclose(h);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_symbol_threads_cold_cache),
		TU_FD_TEST(test_symbol_static_function),
		TU_FD_TEST(test_symbol_global_function),
		TU_FD_TEST(test_symbol_library_function),
		TU_FD_TEST(test_symbol_libc_function),
		TU_FD_TEST(test_symbol_libc_unlisted_function),
		TU_FD_TEST(test_symbol_return_address_names_caller),
		TU_FD_TEST(test_symbol_return_address_looks_one_byte_back),
		TU_FD_TEST(test_symbol_data_address),
		TU_FD_TEST(test_symbol_garbage_addresses),
		TU_FD_TEST(test_symbol_truncation),
		TU_FD_TEST(test_symbol_in_task),
		TU_FD_TEST(test_symbol_more_objects_than_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
