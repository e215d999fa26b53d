/* SPDX-License-Identifier: MIT */
/*
 * tests/fault/fault.c — the wrappers behind fault.h.
 *
 * Each __wrap_SYMBOL asks inject() whether this call fails. The armed
 * state is one atomic kind (-1: disarmed) read with acquire against
 * fault_arm's release store, which comes after the counters were reset and
 * the target set, so a call that sees the kind armed sees this arming's
 * target. The call counter is a fetch_add: every counted call gets its own
 * number, whichever thread makes it.
 */
#include "tests/fault/fault.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

static atomic_int armed = -1;		/* the counted kind, or -1 */
static atomic_int forced = FAULT_KINDS; /* a kind that always fails */
static atomic_long target;		/* fail the call with this number */
static atomic_bool sticky;		/* and every later one */
static atomic_long calls, hits;
static atomic_long live_blocks, live_maps;

void fault_arm(enum fault_kind kind, long nth, bool persistent)
{
	atomic_store(&armed, -1);
	atomic_store(&calls, 0);
	atomic_store(&hits, 0);
	atomic_store(&target, nth);
	atomic_store(&sticky, persistent);
	/* Release: a call that sees the kind sees the target above. */
	atomic_store_explicit(&armed, (int)kind, memory_order_release);
}

void fault_force(enum fault_kind kind)
{
	atomic_store(&forced, (int)kind);
}

long fault_disarm(void)
{
	atomic_store(&armed, -1);
	atomic_store(&forced, FAULT_KINDS);
	return atomic_load(&hits);
}

long fault_calls(void)
{
	return atomic_load(&calls);
}

long fault_hits(void)
{
	return atomic_load(&hits);
}

const char *fault_kind_name(enum fault_kind kind)
{
	static const char *const names[FAULT_KINDS] = {
		"alloc", "mmap", "mprotect", "thread", "fd", "loop"};

	return kind < FAULT_KINDS ? names[kind] : "?";
}

void fault_live(fault_live_t *out)
{
	out->blocks = atomic_load(&live_blocks);
	out->maps = atomic_load(&live_maps);
}

/* Whether this call of kind k fails. */
static bool inject(enum fault_kind k)
{
	int on = atomic_load_explicit(&armed, memory_order_acquire);
	long n, at;

	if (on < 0)
		return false;
	if (atomic_load(&forced) == (int)k)
		return true;
	if (on != (int)k)
		return false;
	n = atomic_fetch_add(&calls, 1) + 1;
	at = atomic_load(&target);
	if (at <= 0 || n < at || (n > at && !atomic_load(&sticky)))
		return false;
	atomic_fetch_add(&hits, 1);
	return true;
}

static void *counted(void *p)
{
	if (p)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

/* --- the heap ------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **out, size_t align, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);

void *__wrap_malloc(size_t n)
{
	if (inject(FAULT_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (inject(FAULT_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
	void *q;

	if (inject(FAULT_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	q = __real_realloc(p, n);
	if (!p && q)
		atomic_fetch_add(&live_blocks, 1);
	else if (p && !q && n == 0)
		atomic_fetch_sub(&live_blocks, 1); /* freed */
	return q;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	if (inject(FAULT_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_aligned_alloc(align, n));
}

int __wrap_posix_memalign(void **out, size_t align, size_t n)
{
	int r;

	if (inject(FAULT_ALLOC))
		return ENOMEM;
	r = __real_posix_memalign(out, align, n);
	if (r == 0)
		counted(*out);
	return r;
}

char *__wrap_strdup(const char *s)
{
	if (inject(FAULT_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_strdup(s));
}

void __wrap_free(void *p)
{
	if (p)
		atomic_fetch_sub(&live_blocks, 1);
	__real_free(p);
}

/* --- mappings ------------------------------------------------------------ */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
int __real_munmap(void *addr, size_t len);
int __real_mprotect(void *addr, size_t len, int prot);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	void *m;

	if (inject(FAULT_MMAP)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	m = __real_mmap(addr, len, prot, flags, fd, off);
	if (m != MAP_FAILED)
		atomic_fetch_add(&live_maps, 1);
	return m;
}

int __wrap_munmap(void *addr, size_t len)
{
	int r = __real_munmap(addr, len);

	if (r == 0)
		atomic_fetch_sub(&live_maps, 1);
	return r;
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	if (inject(FAULT_MPROTECT)) {
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(addr, len, prot);
}

/* --- threads, fds, loops ---------------------------------------------------- */

int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);
int __real_eventfd(unsigned int initval, int flags);
int __real_epoll_create1(int flags);
int __real_socket(int domain, int type, int protocol);
struct ev_loop *__real_ev_loop_new(unsigned int flags);

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	if (inject(FAULT_THREAD))
		return EAGAIN;
	return __real_pthread_create(th, attr, fn, arg);
}

int __wrap_eventfd(unsigned int initval, int flags)
{
	if (inject(FAULT_FD)) {
		errno = EMFILE;
		return -1;
	}
	return __real_eventfd(initval, flags);
}

int __wrap_epoll_create1(int flags)
{
	if (inject(FAULT_FD)) {
		errno = EMFILE;
		return -1;
	}
	return __real_epoll_create1(flags);
}

int __wrap_socket(int domain, int type, int protocol)
{
	if (inject(FAULT_FD)) {
		errno = EMFILE;
		return -1;
	}
	return __real_socket(domain, type, protocol);
}

struct ev_loop *__wrap_ev_loop_new(unsigned int flags)
{
	if (inject(FAULT_LOOP)) {
		errno = EMFILE;
		return NULL;
	}
	return __real_ev_loop_new(flags);
}
