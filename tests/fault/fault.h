/* SPDX-License-Identifier: MIT */
/*
 * tests/fault/fault.h — failure injection for the fault suite, SQLite's
 * way: count the calls coev makes to one kind of resource and make the Nth
 * fail, or the Nth and every later one.
 *
 * How the calls are caught: the suite is linked with GNU ld's
 * --wrap=SYMBOL for every function below (tests/fault/rules.mk), so each
 * call to SYMBOL from the linked objects (libcoev.a and the test, not
 * libc, libev or cmocka, which are shared libraries) goes to
 * __wrap_SYMBOL in fault.c, which counts it and either fails it or calls
 * the real function (__real_SYMBOL).
 *
 * Kinds, and how a failed call looks:
 *   FAULT_ALLOC     malloc, calloc, realloc, aligned_alloc, posix_memalign,
 *                   strdup: NULL (posix_memalign: ENOMEM), errno ENOMEM
 *   FAULT_MMAP      mmap: MAP_FAILED, errno ENOMEM
 *   FAULT_MPROTECT  mprotect: -1, errno ENOMEM
 *   FAULT_THREAD    pthread_create: EAGAIN
 *   FAULT_FD        eventfd, epoll_create1, socket: -1, errno EMFILE
 *   FAULT_LOOP      ev_loop_new: NULL, errno EMFILE
 *
 * Rules:
 *  1. Nothing fails until fault_arm(); calls of other kinds than the armed
 *     one are never counted. Arm only around the operation under test, so
 *     that cmocka's and the test's own work is left alone.
 *  2. Calls are counted from every thread (workers, pool threads), in the
 *     order they take the counter.
 *  3. fault_disarm() stops counting and failing; a call that read the
 *     armed state just before may still be counted, so read fault_hits()
 *     once the operation's threads are gone.
 *  4. Independently of arming, the wrappers keep the number of live heap
 *     blocks and mappings made through them (fault_live), for leak checks
 *     that need no sanitizer.
 */
#ifndef COEV_TESTS_FAULT_H
#define COEV_TESTS_FAULT_H

#include <stdbool.h>

enum fault_kind {
	FAULT_ALLOC,
	FAULT_MMAP,
	FAULT_MPROTECT,
	FAULT_THREAD,
	FAULT_FD,
	FAULT_LOOP,
	FAULT_KINDS
};

/*
 * fault_arm — count the calls of kind from now on and fail the nth (1 is
 * the first); with persistent, fail the nth and every later one. nth 0
 * only counts. Also clears the call and failure counters.
 * fault_force — make every call of kind fail while armed, beside the
 * counted kind (for reaching a fallback's own allocations: a forced
 * mprotect failure sends stacks to the unguarded slabs). FAULT_KINDS
 * forces nothing. Cleared by fault_disarm.
 * fault_disarm — stop (rule 3); returns the failures injected so far.
 * fault_calls, fault_hits — calls of the armed kind counted, and failures
 * injected, since the last fault_arm.
 */
void fault_arm(enum fault_kind kind, long nth, bool persistent);
void fault_force(enum fault_kind kind);
long fault_disarm(void);
long fault_calls(void);
long fault_hits(void);

/* fault_kind_name — "alloc", "mmap", ... */
const char *fault_kind_name(enum fault_kind kind);

/* Heap blocks (allocated and not yet freed) and mappings (mapped and not
 * yet unmapped) made by calls that went through the wrappers. */
typedef struct fault_live {
	long blocks;
	long maps;
} fault_live_t;

void fault_live(fault_live_t *out);

#endif
