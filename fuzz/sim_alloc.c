/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_alloc.c — allocation accounting and failure for the simulation
 * harnesses, linked with -Wl,--wrap for each function below: every call
 * the library (and the simulation) makes goes through here first.
 *
 * While a run is on (sim_alloc_begin .. sim_alloc_end) the wrappers count
 * allocations still out and bytes still mapped, so a harness can check
 * that a run returned everything it took (the leak oracle; LeakSanitizer
 * runs only at exit, which persistent fuzzing never reaches), and fail the
 * Nth allocation, or the Nth and every later one, to reach the error paths
 * on every interleaving.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "fuzz/sim.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void __real_free(void *p);
void *__real_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int __real_munmap(void *a, size_t n);

static bool on;
static long allocs, map_bytes;
static unsigned count, fail_at, failed;
static bool fail_more;

void sim_alloc_begin(unsigned at, bool persist);
void sim_alloc_end(void);

void sim_alloc_begin(unsigned at, bool persist)
{
	on = true;
	allocs = map_bytes = 0;
	count = failed = 0;
	fail_at = at;
	fail_more = persist;
}

void sim_alloc_end(void)
{
	on = false;
}

long sim_leaked_allocs(void)
{
	return allocs;
}

long sim_leaked_map_bytes(void)
{
	return map_bytes;
}

unsigned sim_failed_allocs(void)
{
	return failed;
}

/* Should this allocation fail? */
static bool fail_now(void)
{
	if (!on || !fail_at)
		return false;
	count++;
	if (count == fail_at || (fail_more && count > fail_at)) {
		failed++;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = __real_malloc(n)) && on)
		allocs++;
	return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = __real_calloc(k, n)) && on)
		allocs++;
	return p;
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = __real_aligned_alloc(a, n)) && on)
		allocs++;
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	void *q;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	q = __real_realloc(p, n);
	if (on && q && !p)
		allocs++;
	return q;
}

void __wrap_free(void *p)
{
	if (p && on)
		allocs--;
	__real_free(p);
}

void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = __real_mmap(a, n, prot, flags, fd, off);
	if (p != MAP_FAILED && on)
		map_bytes += (long)n;
	return p;
}

int __wrap_munmap(void *a, size_t n)
{
	int r = __real_munmap(a, n);

	if (r == 0 && on)
		map_bytes -= (long)n;
	return r;
}
