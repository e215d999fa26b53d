/* SPDX-License-Identifier: MIT */
/*
 * sched/stack.c — coroutine stacks: arenas with guard regions, per-worker
 * pools, the fallback for kernels without guard regions.
 *
 * Layout. Stacks are carved from arenas, large anonymous mappings of
 * ARENA_BYTES (fewer when one stack is larger), each slot a guard region of
 * COEV__GUARD_BYTES followed by a usable stack:
 *
 *   arena    slot 0                          slot 1
 *   | guard | stack 0, grows down <- |hdr| guard | stack 1 <- |hdr| ...
 *
 * The guard is installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13):
 * page-table markers that fault on any access, inside one mapping, so a
 * million guarded stacks cost a million markers but only ARENA_BYTES-sized
 * mappings (32 MiB holds 102 stacks of the 256 KiB default: 1M stacks are
 * at most about 10,000 mappings, well inside the default vm.max_map_count
 * of 65530, and the kernel merges adjacent arenas: 1M sleepers measured 52
 * lines of /proc/self/maps). A new stack costs one madvise (its guard) and
 * a share of one mmap; a reused one costs no system call. ARENA_BYTES is a trade: larger arenas mean fewer mmap calls and
 * mappings, but a runtime keeps every arena it carved until it is freed,
 * so a burst leaves address space (not memory) behind; 32 MiB makes the
 * mmap a rare event (one per ~100 new stacks) and wastes at most one
 * partly carved arena per runtime. An arena's record takes its first page,
 * below the first slot, so arenas cost no heap block. COEV__GUARD_BYTES (64 KiB) is sized so that
 * a frame that does not probe its pages still faults in the guard unless
 * it is larger than 64 KiB; the library and coev.pc's Cflags add
 * -fstack-clash-protection, with which every frame larger than a page
 * touches each page on its way down and so cannot step over the guard.
 * Address space is cheap: the guard pages never become resident.
 *
 * The header (struct coev_stack) sits in the top bytes of a stack, so a
 * stack needs no separate allocation, and only the pages a task touches
 * become resident: a task that sleeps after a few calls costs one page.
 *
 * Pools. A task takes a stack when it first runs (coev__stack_get from the
 * running worker's pool) and gives it back to the pool of the worker it
 * ends on, so a million short tasks run on a handful of stacks. A pool that
 * grows past 2 * COEV_STACK_CACHE spills COEV_STACK_CACHE stacks to the
 * runtime's shared pool (one lock per batch), and an empty pool refills
 * from it before carving new ones, so tasks that end on another worker
 * than they started on do not make one worker carve while another hoards.
 * When a worker parks (coev__stack_trim), stacks beyond the pools' limits
 * give their pages back with MADV_DONTNEED (all but the header's page) and
 * go to the runtime's free list of arena stacks, keeping their address
 * range and their guard: guard markers survive MADV_DONTNEED (checked on
 * 6.18; the kernel's documentation of MADV_GUARD_INSTALL says so too), so
 * a reused stack needs no system call. Busy workers never pay for
 * MADV_DONTNEED and its TLB shootdowns. Arenas are unmapped when the runtime is freed,
 * unless a task abandoned at shutdown may still be on one (keep_arenas).
 *
 * Fallback (kernels before 6.13, where MADV_GUARD_INSTALL fails with
 * EINVAL; probed once per process on a scratch page, and again by every
 * carve's own madvise): the older scheme. Each stack is its
 * own mapping with a COEV__GUARD_BYTES region mprotect'ed PROT_NONE below it, two
 * kernel mappings per stack; guarded stacks are counted process-wide, and
 * past half of vm.max_map_count minus a reserve for everything else (or
 * when mmap/mprotect fails with ENOMEM) new stacks are carved from arenas
 * without guards. An unguarded stack is checked when its task ends: its
 * lowest COEV__CANARY_BYTES must still be zero (fresh anonymous memory reads as
 * zero without becoming resident, so the check costs no memory); if not,
 * the task reached the end of its stack and coev aborts naming it. No
 * warning is printed unless debug mode is on (COEV_DEBUG, through the
 * runtime's log); the metrics count every unguarded stack
 * (coev_worker_stats_t.stacks_unguarded, coev_stacks_unguarded_total).
 * The environment variable COEV_STACK_GUARD=mprotect, read once with the
 * probe, forces the fallback as if the probe had failed: so that the
 * fallback stays tested on kernels that have guard regions (the tests
 * run test_stack_guard and test_fault both ways). Any other value is
 * ignored.
 *
 * Rejected: one mapping per stack with mprotect (the fallback) costs two
 * mappings and three system calls per new stack and runs out of mappings
 * at ~30,700 stacks; PROT_NONE gaps made by mprotect inside an arena split
 * it into two mappings per stack all the same; guarding only every arena's
 * bottom leaves neighbours unprotected from each other.
 *
 * Stack overflow: a fault in a guard region is named by sched/overflow.c
 * (the SIGSEGV handler, installed with the probe, and the canary check of
 * unguarded stacks).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sched.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* Under valgrind (COEV_VALGRIND builds) every stack is registered while it
 * is mapped: valgrind then knows a context switch for what it is, not a
 * wild jump of the stack pointer. */
#if defined(COEV_VALGRIND)
#include <valgrind/valgrind.h>
#define VG_STACK_REGISTER(s)                           \
	((s)->vg_id = VALGRIND_STACK_REGISTER((s)->lo, \
					      (char *)(s)->lo + (s)->size))
#define VG_STACK_DEREGISTER(s) VALGRIND_STACK_DEREGISTER((s)->vg_id)
#else
#define VG_STACK_REGISTER(s) ((void)0)
#define VG_STACK_DEREGISTER(s) ((void)0)
#endif

#define HEADER_BYTES 64
#define ARENA_BYTES ((size_t)32 * 1024 * 1024)
#define MAP_RESERVE 4096

_Static_assert(sizeof(struct coev_stack) <= HEADER_BYTES,
	       "stack header too large");

/* A mapping stacks are carved from: n slots of slot bytes, the first
 * carved of them in use or on a free list. */
struct coev_arena {
	void *map; /* this record's page, then the slots */
	size_t len;
	char *slots;
	size_t slot;
	unsigned n, carved; /* [arena_mu] */
	bool guarded;	    /* slots begin with a guard region */
	struct coev_arena *next;
};

static size_t page_size;
/* MADV_GUARD_INSTALL works on this kernel: set by stack_once, cleared for
 * good by a carve that meets EINVAL (relaxed: a hint read and written by
 * any thread taking a stack, ordering nothing). */
static atomic_bool guard_madvise;
static long guard_limit; /* fallback: own-mapping guarded stacks */
static atomic_long guarded_live;
static atomic_bool fallback_said;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Whether this kernel installs guard regions: try it on a scratch page.
 * EINVAL means an older kernel (or an emulator that does not know it).
 * Without memory for the scratch page the answer is yes: a carve that then
 * fails with EINVAL turns the fallback on (arena_take). */
static bool probe_guard_madvise(void)
{
	void *m = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	bool ok;

	if (m == MAP_FAILED)
		return true;
	ok = madvise(m, page_size, MADV_GUARD_INSTALL) == 0 || errno != EINVAL;
	munmap(m, 2 * page_size);
	return ok;
}

/* COEV_STACK_GUARD=mprotect: behave as on a kernel without guard
 * regions (the fallback). Read once, by stack_once. */
static bool mprotect_forced(void)
{
	const char *v = getenv("COEV_STACK_GUARD");

	return v && strcmp(v, "mprotect") == 0;
}

static void stack_once(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long max = 65530;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	guard_limit = max > 2 * MAP_RESERVE ? (max - MAP_RESERVE) / 2 : 0;
	atomic_store_explicit(&guard_madvise,
			      !mprotect_forced() && probe_guard_madvise(),
			      memory_order_relaxed);
	coev__overflow_install();
}

size_t coev__page_size(void)
{
	pthread_once(&once, stack_once);
	return page_size;
}

/* Debug mode only: say once per process that stacks go unguarded. */
static void say_unguarded(struct coev_worker *w)
{
	/* seq_cst (plain atomic_exchange) protects no store-load order: a
	 * once flag between the threads that take stacks, against this same
	 * exchange on another thread; only its atomicity is needed. */
	if (!w->debug || atomic_exchange(&fallback_said, true))
		return;
	coev__logf(w->rt,
		   "coev: further coroutine stacks have no guard region (%s); "
		   "they are checked for overflow when their task ends, and "
		   "counted in stacks_unguarded",
		   atomic_load_explicit(&guard_madvise, memory_order_relaxed)
			   ? "MADV_GUARD_INSTALL failed"
			   : "vm.max_map_count or mprotect ran out; "
			     "raise it with sysctl vm.max_map_count=N");
}

static struct coev_stack *header_at(void *lo, size_t size, void *map,
				    size_t map_len, bool guarded)
{
	struct coev_stack *s =
		(struct coev_stack *)((char *)lo + size - HEADER_BYTES);

	s->lo = lo;
	s->size = size - HEADER_BYTES;
	s->map = map;
	s->map_len = map_len;
	s->guarded = guarded;
	s->next = NULL;
	VG_STACK_REGISTER(s);
	return s;
}

/* The fallback's guarded stack: a mapping of its own, two kernel mappings
 * once its guard is protected. */
static struct coev_stack *map_guarded(struct coev_rt *rt)
{
	size_t len = rt->stack_size + COEV__GUARD_BYTES;
	void *m;

	/* seq_cst (plain atomic_fetch_*) protects no store-load order: the
	 * count is a budget shared with every other mapper here and with
	 * the decrements of stack_unmap; each RMW is atomic, which is all
	 * the budget needs, and it publishes no data. The decrements below
	 * give back this increment. */
	if (atomic_fetch_add(&guarded_live, 1) >= guard_limit) {
		atomic_fetch_sub(&guarded_live, 1);
		return NULL;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
		 0);
	if (m == MAP_FAILED) {
		atomic_fetch_sub(&guarded_live, 1);
		return NULL;
	}
	if (mprotect(m, COEV__GUARD_BYTES, PROT_NONE) != 0) {
		munmap(m, len);
		atomic_fetch_sub(&guarded_live, 1);
		return NULL;
	}
	return header_at((char *)m + COEV__GUARD_BYTES, rt->stack_size, m, len,
			 true);
}

/* Unmap a stack that has a mapping of its own (the fallback's). */
static void stack_unmap(struct coev_stack *s)
{
	VG_STACK_DEREGISTER(s);
	munmap(s->map, s->map_len);
	/* seq_cst (plain): gives back map_guarded's increment; no
	 * store-load order, as there. */
	atomic_fetch_sub(&guarded_live, 1);
}

/* A new arena of guarded or plain slots, pushed on rt->arenas; called with
 * arena_mu held (an mmap every ~100 new stacks). Its record sits in its
 * first page, below the first slot, so an arena is no heap block: a stack
 * can fail only for want of a mapping. NULL without memory. */
static struct coev_arena *arena_new(struct coev_rt *rt, bool guarded)
{
	size_t slot = rt->stack_size + (guarded ? COEV__GUARD_BYTES : 0);
	size_t n = ARENA_BYTES / slot ? ARENA_BYTES / slot : 1;
	struct coev_arena *a;
	void *m;

	/* page + slot * n <= page + max(ARENA_BYTES, slot): no overflow. */
	m = mmap(NULL, page_size + slot * n, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
		 0);
	if (m == MAP_FAILED)
		return NULL;
	a = m;
	a->map = m;
	a->len = page_size + slot * n;
	a->slots = (char *)m + page_size;
	a->slot = slot;
	a->n = (unsigned)n;
	a->carved = 0;
	a->guarded = guarded;
	a->next = rt->arenas;
	rt->arenas = a;
	return a;
}

/*
 * A stack from rt's arenas: a released one if any (its guard, if it had
 * one, is still installed), else the next slot of the newest arena, whose
 * guard is installed here, outside the lock. Returns NULL without memory.
 */
static struct coev_stack *arena_take(struct coev_rt *rt, bool guarded)
{
	struct coev_stack *s;
	struct coev_arena *a;
	char *slot = NULL;

	pthread_mutex_lock(&rt->arena_mu);
	s = rt->arena_free;
	if (s) {
		rt->arena_free = s->next;
	} else {
		a = rt->arenas;
		if (!a || a->carved == a->n || a->guarded != guarded)
			a = arena_new(rt, guarded);
		if (a)
			slot = a->slots + a->slot * a->carved++;
	}
	pthread_mutex_unlock(&rt->arena_mu);
	if (s || !slot)
		return s;
	if (!guarded)
		return header_at(slot, rt->stack_size, NULL, 0, false);
	/* A failure here (ENOMEM for page tables) leaves the slot usable
	 * but unguarded: it is then checked by its canary and counted.
	 * EINVAL (a kernel the probe could not ask) turns the fallback on. */
	guarded = madvise(slot, COEV__GUARD_BYTES, MADV_GUARD_INSTALL) == 0;
	if (!guarded && errno == EINVAL)
		atomic_store_explicit(&guard_madvise, false,
				      memory_order_relaxed);
	return header_at(slot + COEV__GUARD_BYTES, rt->stack_size, NULL, 0,
			 guarded);
}

/* The pool length has one writer, the owner; statistics read it. */
static void pool_len_set(struct coev_worker *w, unsigned n)
{
	atomic_store_explicit(&w->stack_pool_len, n, memory_order_relaxed);
}

static unsigned pool_len(struct coev_worker *w)
{
	return atomic_load_explicit(&w->stack_pool_len, memory_order_relaxed);
}

/*
 * Return the pages of n ranges with MADV_DONTNEED. Each madvise that
 * drops pages of a process whose other threads run ends with a TLB
 * shootdown, an interrupt to every other CPU of the process (on this VM a
 * third of the sleepers workload went to those interrupts, one per stack);
 * process_madvise on ourselves (PIDFD_SELF, Linux 6.15) drops all n ranges
 * with one shootdown. Where it is refused, or under valgrind, which does
 * not know it, each range gets its own madvise.
 */
#define RELEASE_BATCH 128
#define PIDFD_SELF_PROCESS (-10001) /* linux/pidfd.h: this process */
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

#if !defined(COEV_VALGRIND)
static atomic_bool batch_refused;
#endif

static void pages_release(struct iovec *iov, unsigned n)
{
#if !defined(COEV_VALGRIND)
	size_t want = 0;

	for (unsigned i = 0; i < n; i++)
		want += iov[i].iov_len;
	/* Relaxed: a hint; a refusal seen late costs one refused call. */
	if (n > 1 &&
	    !atomic_load_explicit(&batch_refused, memory_order_relaxed)) {
		long r = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov,
				 n, MADV_DONTNEED, 0);

		if (r >= 0 && (size_t)r == want)
			return;
		if (r < 0 && errno != EINTR && errno != EAGAIN &&
		    errno != ENOMEM)
			atomic_store_explicit(&batch_refused, true,
					      memory_order_relaxed);
		/* A partial answer: dropping pages twice is harmless. */
	}
#endif
	for (unsigned i = 0; i < n; i++)
		madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
}

/*
 * Give the stacks of the list drop back to the kernel: unmap those with a
 * mapping of their own; return the pages of arena stacks, all but the top
 * page, which holds the header (madvise rounds lengths up), in batches
 * (pages_release), and keep them on rt's free list with their address
 * range and guard.
 */
static void stacks_release(struct coev_rt *rt, struct coev_stack *drop)
{
	struct coev_stack *keep = NULL, *last = NULL, *s;
	struct iovec iov[RELEASE_BATCH];
	unsigned n = 0;

	while ((s = drop) != NULL) {
		drop = s->next;
		if (s->map) {
			stack_unmap(s);
			continue;
		}
		iov[n].iov_base = s->lo;
		iov[n].iov_len =
			(size_t)((char *)s - (char *)s->lo) & ~(page_size - 1);
		if (++n == RELEASE_BATCH) {
			pages_release(iov, n);
			n = 0;
		}
		s->next = keep;
		keep = s;
		if (!last)
			last = s;
	}
	if (n)
		pages_release(iov, n);
	if (!keep)
		return;
	pthread_mutex_lock(&rt->arena_mu);
	last->next = rt->arena_free;
	rt->arena_free = keep;
	pthread_mutex_unlock(&rt->arena_mu);
}

/* Move up to n stacks from w's pool to the runtime's shared pool. */
static void spill(struct coev_worker *w, unsigned n)
{
	struct coev_rt *rt = w->rt;
	struct coev_stack *first = w->stack_pool, *last = NULL, *s;
	unsigned moved = 0;

	for (s = first; s && moved < n; s = s->next) {
		last = s;
		moved++;
	}
	if (!moved)
		return;
	w->stack_pool = last->next;
	pool_len_set(w, pool_len(w) - moved);
	pthread_mutex_lock(&rt->stack_mu);
	last->next = rt->stack_pool;
	rt->stack_pool = first;
	rt->stack_pool_len += moved;
	pthread_mutex_unlock(&rt->stack_mu);
}

/* Take up to n stacks from the shared pool into w's; returns how many. */
static unsigned refill(struct coev_worker *w, unsigned n)
{
	struct coev_rt *rt = w->rt;
	struct coev_stack *s;
	unsigned got = 0;

	if (!atomic_load_explicit(&rt->stack_pool_any, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&rt->stack_mu);
	while (got < n && (s = rt->stack_pool) != NULL) {
		rt->stack_pool = s->next;
		rt->stack_pool_len--;
		s->next = w->stack_pool;
		w->stack_pool = s;
		got++;
	}
	atomic_store_explicit(&rt->stack_pool_any, rt->stack_pool != NULL,
			      memory_order_relaxed);
	pthread_mutex_unlock(&rt->stack_mu);
	pool_len_set(w, pool_len(w) + got);
	return got;
}

struct coev_stack *coev__stack_get(struct coev_worker *w)
{
	struct coev_stack *s = w->stack_pool;

	if (s || refill(w, COEV_STACK_CACHE / 2)) {
		s = w->stack_pool;
		w->stack_pool = s->next;
		pool_len_set(w, pool_len(w) - 1);
		return s;
	}
	coev__page_size();
	if (atomic_load_explicit(&guard_madvise, memory_order_relaxed)) {
		s = arena_take(w->rt, true);
	} else {
		s = map_guarded(w->rt);
		if (!s)
			s = arena_take(w->rt, false);
	}
	if (!s)
		return NULL;
	COEV_STAT_ADD(w, stacks_mapped, 1);
	if (!s->guarded) {
		COEV_STAT_ADD(w, stacks_unguarded, 1);
		say_unguarded(w);
	}
	return s;
}

void coev__stack_put(struct coev_worker *w, struct coev_stack *s)
{
	s->next = w->stack_pool;
	w->stack_pool = s;
	pool_len_set(w, pool_len(w) + 1);
	if (pool_len(w) > 2 * COEV_STACK_CACHE) {
		spill(w, COEV_STACK_CACHE);
		atomic_store_explicit(&w->rt->stack_pool_any, true,
				      memory_order_relaxed);
	}
}

/*
 * Called by a worker about to park: keep COEV_STACK_CACHE stacks in its
 * pool and COEV_STACK_CACHE per worker in the shared pool, and give the
 * rest back to the kernel. Trimming only when idle keeps munmap and its
 * TLB shootdowns off busy workers: trimming on every put made a fork-join
 * stress test spend 40% of its time in munmap.
 */
void coev__stack_trim(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	unsigned keep = COEV_STACK_CACHE * rt->nworkers;
	struct coev_stack *drop = NULL, *s;

	if (pool_len(w) > COEV_STACK_CACHE) {
		spill(w, pool_len(w) - COEV_STACK_CACHE);
		atomic_store_explicit(&rt->stack_pool_any, true,
				      memory_order_relaxed);
	}
	if (!atomic_load_explicit(&rt->stack_pool_any, memory_order_relaxed))
		return;
	pthread_mutex_lock(&rt->stack_mu);
	while (rt->stack_pool_len > keep && (s = rt->stack_pool) != NULL) {
		rt->stack_pool = s->next;
		rt->stack_pool_len--;
		s->next = drop;
		drop = s;
	}
	pthread_mutex_unlock(&rt->stack_mu);
	stacks_release(rt, drop);
}

static void pool_list_free(struct coev_stack *s)
{
	struct coev_stack *next;

	for (; s; s = next) {
		next = s->next;
		if (s->map)
			stack_unmap(s);
	}
}

void coev__stack_pool_free(struct coev_worker *w)
{
	pool_list_free(w->stack_pool);
	w->stack_pool = NULL;
	pool_len_set(w, 0);
}

/* Forget an arena's stacks before it is unmapped (valgrind builds): each
 * carved stack's header tops its slot. */
static void arena_deregister(struct coev_arena *a)
{
#if defined(COEV_VALGRIND)
	for (unsigned i = 1; i <= a->carved; i++) {
		char *top = a->slots + i * a->slot;
		VG_STACK_DEREGISTER((struct coev_stack *)(top - HEADER_BYTES));
	}
#else
	(void)a;
#endif
}

/* Unmap the shared pool and every arena of rt (after all workers' pools
 * were emptied). */
void coev__stack_arenas_free(struct coev_rt *rt)
{
	struct coev_arena *a;

	pool_list_free(rt->stack_pool);
	rt->stack_pool = NULL;
	rt->stack_pool_len = 0;

	/* Kept when an abandoned task's stack may be in one. */
	while (!rt->keep_arenas && (a = rt->arenas) != NULL) {
		rt->arenas = a->next;
		arena_deregister(a);
		munmap(a->map, a->len); /* a with it */
	}
	rt->arenas = NULL;
	rt->arena_free = NULL;
}

/*
 * Debug mode's high-water mark: the bytes of s's stack that are resident,
 * counted from the top down to the lowest resident page (mincore). A
 * stack grows down, so the lowest page touched bounds what the task used;
 * coev__stack_forget drops the pages when the stack goes back to a pool,
 * so the next task's measure starts from nothing. Page granularity; a page
 * swapped out would be missed (swap is rare for a live stack).
 */
size_t coev__stack_used(const struct coev_stack *s)
{
	size_t page = coev__page_size(), npages = s->size / page;
	unsigned char vec[512];
	uintptr_t lo = (uintptr_t)s->lo;

	/* The header of a stack lies at its top, inside [lo, lo + size)
	 * (header_at): always resident, which makes the count at least one
	 * page. Walk up from the bottom in chunks. */
	for (size_t i = 0; i < npages; i += sizeof vec) {
		size_t n = npages - i < sizeof vec ? npages - i : sizeof vec;

		if (mincore((void *)(lo + i * page), n * page, vec) != 0)
			return 0;
		for (size_t k = 0; k < n; k++)
			if (vec[k] & 1)
				return s->size - (i + k) * page;
	}
	return 0;
}

void coev__stack_forget(const struct coev_stack *s)
{
	size_t page = coev__page_size();

	/* Only whole pages below the header's page. */
	if (s->size >= page)
		madvise(s->lo, s->size / page * page, MADV_DONTNEED);
}
