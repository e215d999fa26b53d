/* SPDX-License-Identifier: MIT */
/*
 * sched/block.c — task blocks (struct coev_task): per-worker pools carved
 * from large mappings, recycled without system calls.
 *
 * Model. A runtime maps CHUNK_BYTES at a time (a chunk) and carves blocks
 * of BLOCK_BYTES from it on demand, so only the pages that blocks reach
 * become resident. A freed block goes to the free list of the worker it is
 * freed on (whichever worker that is; its home does not matter), and a
 * worker allocates from its own list first: steady-state spawn and finish
 * touch no lock and make no system call. The only kernel work is one mmap
 * per chunk while the number of live tasks grows past every earlier peak.
 *
 * Batches. A worker's list holds at most COEV_TASK_CACHE blocks, plus one
 * full batch of COEV_TASK_CACHE held in reserve (task_spare). When both are
 * full, the reserve batch moves to the runtime's stack of batches (one
 * lock per batch, not per block), and a worker whose lists are empty takes
 * a whole batch back before it carves. This is the shape of sched/stack.c's
 * pools: blocks freed on another worker than their spawner's (stolen
 * tasks, tasks joined across workers) flow back to the spawner a batch at
 * a time, so no worker keeps carving while another hoards. A thread that
 * is not one of the runtime's workers (coev_join from a plain thread, the
 * last reference dropped by a library thread, a spawn from outside) frees
 * to and allocates from the runtime's batches under the lock, one block
 * at a time.
 *
 * A free block's links live in its queue links (link[], unused once the
 * block is free) in plain builds, so the joiner word keeps JOIN_FREED for
 * misuse checks. In ASan and valgrind builds they live in a tail just
 * past the struct, outside what the sanitizer is told is the block: a
 * free block is poisoned (ASan) or freed (valgrind's FREELIKE), all but
 * its joiner word, so a use after free is still reported, and a block
 * handed out again is made fresh (unpoisoned, MALLOCLIKE) before its
 * spawn writes it.
 *
 * Chunks are listed on the runtime (appended under block_mu when mapped)
 * and unmapped only by coev_rt_free, never on the hot path; a chunk that
 * holds the block of an abandoned task (one that outlived the shutdown,
 * coev__task_free_all) stays mapped, as that task's stack does. Chunks
 * after a runtime's first are advised MADV_HUGEPAGE: a runtime that keeps many tasks alive then takes one
 * page fault per 2 MiB instead of one per 4 KiB, and a small runtime
 * touches only the 4 KiB pages of its first chunk.
 *
 * Finding every task. There is no registry: coev__task_each walks every
 * chunk's blocks and takes a reference on each whose count is above zero
 * (try_ref: a CAS that never raises a count from zero), so a block it
 * looks at is not freed, and so not reused, until it lets go. A spawn
 * publishes its block by storing the count last, after every field is
 * written (task.c), and a free block's count is zero, as is a block
 * never carved (chunks are zero-filled). Shutdown (cancel, abandon),
 * dumps, reports and coev_rt_free use the walk: cold paths, at one CAS
 * per block in use.
 *
 * Rejected: malloc per block (glibc grows each thread's arena with an
 * mprotect per 128 KiB or so and a page fault per page: over half the
 * time of spawning a million tasks was system time); one shared free list
 * under a lock (a lock per spawn and per finish); a registry of live
 * tasks per worker under a mutex (two lock round trips per task, and a
 * shared line whenever a task ends away from its spawner's worker).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sched.h"

#if defined(COEV_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define BLK_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define BLK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define BLK_ROOT_ADD(p, n) __lsan_register_root_region(p, n)
#define BLK_ROOT_DEL(p, n) __lsan_unregister_root_region(p, n)
#else
#define BLK_POISON(p, n) ((void)(p), (void)(n))
#define BLK_UNPOISON(p, n) ((void)(p), (void)(n))
#define BLK_ROOT_ADD(p, n) ((void)(p), (void)(n))
#define BLK_ROOT_DEL(p, n) ((void)(p), (void)(n))
#endif

#if defined(COEV_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define VG_BORN(t) VALGRIND_MALLOCLIKE_BLOCK(t, sizeof(coev_task_t), 0, 0)
#define VG_DEAD(t) VALGRIND_FREELIKE_BLOCK(t, 0)
#define VG_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)
#define VG_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define VG_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#else
#define VG_BORN(t) ((void)(t))
#define VG_DEAD(t) ((void)(t))
#define VG_DEFINED(p, n) ((void)(p), (void)(n))
#define VG_QUIET_BEGIN() ((void)0)
#define VG_QUIET_END() ((void)0)
#endif

#if defined(COEV_ASAN) || defined(COEV_VALGRIND)
#define LINKS_OUTSIDE 1
#define LINK_BYTES (3 * sizeof(void *))
#else
#define LINKS_OUTSIDE 0
#define LINK_BYTES 0
#endif

#define CHUNK_BYTES ((size_t)2 << 20)
#ifndef COEV_TASK_HUGE
#define COEV_TASK_HUGE 1
#endif
#define CHUNK_HEADER 64
#define BLOCK_BYTES                                                \
	((sizeof(coev_task_t) + LINK_BYTES + COEV_CACHELINE - 1) & \
	 ~(size_t)(COEV_CACHELINE - 1))

_Static_assert(sizeof(struct coev__chunk) <= CHUNK_HEADER,
	       "chunk header too large");

/* Bytes of chunks mapped now, by every runtime (tests). */
static atomic_size_t mapped_bytes;

/* --- a free block's links ------------------------------------------------ */

/* Three words of a free block: [0] the next block of its batch, [1] the
 * next batch (first block of a batch on the runtime's stack only), [2]
 * the batch's length (likewise). */
static coev__entry_t **links(coev_task_t *t)
{
#if LINKS_OUTSIDE
	return (coev__entry_t **)(void *)((char *)t + sizeof *t);
#else
	return t->link;
#endif
}

#define NEXT(t) ((coev_task_t *)links(t)[0])
#define SET_NEXT(t, v) (links(t)[0] = (coev__entry_t *)(v))
#define BATCH(t) ((coev_task_t *)links(t)[1])
#define SET_BATCH(t, v) (links(t)[1] = (coev__entry_t *)(v))
#define BLEN(t) ((unsigned)(uintptr_t)links(t)[2])
#define SET_BLEN(t, n) (links(t)[2] = (coev__entry_t *)(uintptr_t)(n))

/* Hand a block out: it becomes a live allocation for the sanitizers. */
static coev_task_t *born(coev_task_t *t)
{
	BLK_UNPOISON(t, sizeof *t);
	VG_BORN(t);
	return t;
}

/* A block becomes free: a later access is a use after free, except to
 * its joiner word, which keeps JOIN_FREED so that a second join or detach
 * of the handle still aborts naming the misuse (sched/join.c). Under ASan
 * the rest is zeroed first, so stale pointers in it keep nothing
 * reachable for LeakSanitizer (chunks are its root regions). */
static void dead(coev_task_t *t)
{
	size_t j = offsetof(coev_task_t, joiner);
	size_t e = j + sizeof t->joiner;

#if defined(COEV_ASAN)
	memset(t, 0, j);
	memset((char *)t + e, 0, sizeof *t - e);
#endif
	BLK_POISON(t, j);
	BLK_POISON((char *)t + e, sizeof *t - e);
	VG_DEAD(t);
	VG_DEFINED(&t->joiner, e - j);
}

/* --- chunks ---------------------------------------------------------------- */

/* Map a chunk, advised huge pages if huge and 2 MiB-aligned (Linux 6.7
 * and later align mappings of that size; earlier ones may not, and then
 * the advice could not apply: trimming a larger mapping would cost two
 * more system calls per chunk). NULL when the kernel refuses. */
static struct coev__chunk *chunk_map(bool huge)
{
	char *m = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct coev__chunk *c;

	if (m == MAP_FAILED)
		return NULL;
#if defined(MADV_HUGEPAGE)
	if (huge && COEV_TASK_HUGE && !((uintptr_t)m & (CHUNK_BYTES - 1)))
		(void)madvise(m, CHUNK_BYTES, MADV_HUGEPAGE);
#else
	(void)huge;
#endif
	atomic_fetch_add_explicit(&mapped_bytes, CHUNK_BYTES,
				  memory_order_relaxed);
	c = (struct coev__chunk *)(void *)m;
	c->next = NULL;
	c->kept = false;
	BLK_ROOT_ADD(m, CHUNK_BYTES);
	BLK_POISON(m + CHUNK_HEADER, CHUNK_BYTES - CHUNK_HEADER);
	return c;
}

/* Carve the next block from *bump, or NULL when [*bump, end) is used up. */
static coev_task_t *carve(char **bump, char *end)
{
	coev_task_t *t;

	if (!*bump || (size_t)(end - *bump) < BLOCK_BYTES)
		return NULL;
	t = (coev_task_t *)(void *)*bump;
	*bump += BLOCK_BYTES;
	BLK_UNPOISON(t, BLOCK_BYTES);
	return t;
}

/* Map a chunk and list it on rt; the caller carves from the returned
 * range. Takes block_mu unless the caller holds it (locked). */
static char *chunk_new(struct coev_rt *rt, bool locked)
{
	unsigned n = atomic_fetch_add_explicit(&rt->block_chunks, 1,
					       memory_order_relaxed);
	struct coev__chunk *c = chunk_map(n > 0);

	if (!c) {
		atomic_fetch_sub_explicit(&rt->block_chunks, 1,
					  memory_order_relaxed);
		return NULL;
	}
	if (!locked)
		pthread_mutex_lock(&rt->block_mu);
	c->next = rt->chunks;
	rt->chunks = c;
	if (!locked)
		pthread_mutex_unlock(&rt->block_mu);
	return (char *)c + CHUNK_HEADER;
}

/* --- the runtime's batches --------------------------------------------- */

/* Push a chain of n blocks from first as one batch. [block_mu] */
static void batch_push(struct coev_rt *rt, coev_task_t *first, unsigned n)
{
	SET_BATCH(first, rt->batches);
	SET_BLEN(first, n);
	rt->batches = first;
	/* Relaxed: a hint only; the list itself is read under block_mu. */
	atomic_store_explicit(&rt->batches_any, true, memory_order_relaxed);
}

/* Pop the top batch, its length in *n, or NULL. [block_mu] */
static coev_task_t *batch_pop(struct coev_rt *rt, unsigned *n)
{
	coev_task_t *b = rt->batches;

	if (!b)
		return NULL;
	*n = BLEN(b);
	rt->batches = BATCH(b);
	atomic_store_explicit(&rt->batches_any, rt->batches != NULL,
			      memory_order_relaxed);
	return b;
}

/* Allocation and release by a thread that is not one of rt's workers:
 * one block at a time from and to the batches. */
static coev_task_t *plain_get(struct coev_rt *rt)
{
	coev_task_t *t;
	unsigned n;

	pthread_mutex_lock(&rt->block_mu);
	t = batch_pop(rt, &n);
	if (t && n > 1)
		batch_push(rt, NEXT(t), n - 1);
	if (!t && !(t = carve(&rt->bump, rt->bump_end))) {
		char *m = chunk_new(rt, true);

		if (m) {
			rt->bump = m;
			rt->bump_end = (char *)m - CHUNK_HEADER + CHUNK_BYTES;
			t = carve(&rt->bump, rt->bump_end);
		}
	}
	pthread_mutex_unlock(&rt->block_mu);
	return t ? born(t) : NULL;
}

static void plain_put(struct coev_rt *rt, coev_task_t *t)
{
	coev_task_t *top;
	unsigned n;

	dead(t);
	pthread_mutex_lock(&rt->block_mu);
	top = rt->batches;
	if (top && BLEN(top) < COEV_TASK_CACHE) {
		top = batch_pop(rt, &n);
		SET_NEXT(t, top);
		batch_push(rt, t, n + 1);
	} else {
		SET_NEXT(t, NULL);
		batch_push(rt, t, 1);
	}
	pthread_mutex_unlock(&rt->block_mu);
}

/* --- the worker's lists ------------------------------------------------ */

/* Refill w's empty list: its reserve, then a batch of the runtime's, then
 * its carving range, then a new chunk. False when memory ran out. */
static bool refill(struct coev_rt *rt, struct coev_worker *w)
{
	coev_task_t *t;
	char *m;

	if (w->task_spare) {
		w->task_cache = w->task_spare;
		w->task_cache_len = COEV_TASK_CACHE;
		w->task_spare = NULL;
		return true;
	}
	if (atomic_load_explicit(&rt->batches_any, memory_order_relaxed)) {
		unsigned n = 0;

		pthread_mutex_lock(&rt->block_mu);
		t = batch_pop(rt, &n);
		pthread_mutex_unlock(&rt->block_mu);
		if (t) {
			w->task_cache = t;
			w->task_cache_len = n;
			return true;
		}
	}
	if (!w->task_bump ||
	    (size_t)(w->task_bump_end - w->task_bump) < BLOCK_BYTES) {
		if (!(m = chunk_new(rt, false)))
			return false;
		COEV_STAT_ADD(w, task_chunks, 1);
		w->task_bump = m;
		w->task_bump_end = m - CHUNK_HEADER + CHUNK_BYTES;
	}
	t = carve(&w->task_bump, w->task_bump_end);
	SET_NEXT(t, NULL);
	w->task_cache = t;
	w->task_cache_len = 1;
	return true;
}

coev_task_t *coev__block_get(struct coev_rt *rt, struct coev_worker *w)
{
	coev_task_t *t;

	if (!w || w->rt != rt)
		return plain_get(rt);
	if (!w->task_cache && !refill(rt, w))
		return NULL;
	t = w->task_cache;
	w->task_cache = NEXT(t);
	w->task_cache_len--;
	return born(t);
}

void coev__block_put(struct coev_rt *rt, struct coev_worker *w, coev_task_t *t)
{
	if (!w || w->rt != rt) {
		plain_put(rt, t);
		return;
	}
	dead(t);
	if (w->task_cache_len == COEV_TASK_CACHE) {
		if (w->task_spare) {
			pthread_mutex_lock(&rt->block_mu);
			batch_push(rt, w->task_spare, COEV_TASK_CACHE);
			pthread_mutex_unlock(&rt->block_mu);
		}
		w->task_spare = w->task_cache;
		w->task_cache = NULL;
		w->task_cache_len = 0;
	}
	SET_NEXT(t, w->task_cache);
	w->task_cache = t;
	w->task_cache_len++;
}

void coev__block_drop(coev_task_t *t)
{
	dead(t);
}

/* Whether t is live, at teardown (nothing else touches blocks then). */
__attribute__((no_sanitize("address"))) static bool try_peek(coev_task_t *t)
{
	/* Relaxed: the workers are joined, which ordered their writes. */
	return atomic_load_explicit(&t->refs, memory_order_relaxed) != 0;
}

/* --- finding every live task ------------------------------------------- */

/* A reference on t if it is live (refs above zero), without ever raising
 * a count from zero: a block being freed, free, or never carved (chunks
 * are zero-filled) is skipped, so the block cannot be reused under the
 * caller until it drops the reference. Reads free blocks, which the
 * sanitizers see as freed: ASan is told not to check, valgrind not to
 * report. */
__attribute__((no_sanitize("address"))) static bool try_ref(coev_task_t *t)
{
	/* Relaxed: only a hint for the CAS. */
	unsigned r = atomic_load_explicit(&t->refs, memory_order_relaxed);

	/* seq_cst: the CAS's load is the load half of a store-load order,
	 * against coev__task_spawn's store of refs (the publication of the
	 * block, task.c) before its load of rt->abandoned: after
	 * coev__join_abandon_all's store of abandoned, either this walk sees
	 * the block or the spawn sees abandoned. The acquire half pairs with
	 * that store's release, so the fields spawn wrote are read whole. */
	while (r != 0)
		if (atomic_compare_exchange_weak_explicit(&t->refs, &r, r + 1,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			return true;
	return false;
}

/* For each live block of rt (refs above zero): fn(t, arg). ref: with a
 * reference held across the call, dropped after it (the block may be
 * freed then); without one only at teardown, no thread running tasks.
 * Chunks mapped after the walk began are not visited: their blocks were
 * published after it began. */
static void walk_from(struct coev__chunk *c, bool ref,
		      void (*fn)(coev_task_t *t, void *arg), void *arg)
{
	for (; c; c = c->next) {
		char *p = (char *)c + CHUNK_HEADER;
		char *end = (char *)c + CHUNK_BYTES;

		for (; p + BLOCK_BYTES <= end; p += BLOCK_BYTES) {
			coev_task_t *t = (coev_task_t *)(void *)p;
			bool live;

			VG_QUIET_BEGIN();
			live = ref ? try_ref(t) : try_peek(t);
			VG_QUIET_END();
			if (!live)
				continue;
			fn(t, arg);
			if (ref)
				coev__task_release(t);
		}
	}
}

static void walk(struct coev_rt *rt, bool ref,
		 void (*fn)(coev_task_t *t, void *arg), void *arg)
{
	struct coev__chunk *c;

	/* The lock orders the links of every chunk listed so far before the
	 * reads of c->next in walk_from. */
	pthread_mutex_lock(&rt->block_mu);
	c = rt->chunks;
	pthread_mutex_unlock(&rt->block_mu);
	walk_from(c, ref, fn, arg);
}

#if defined(COEV_SIM)
/* The simulation's failure dumps run while every other simulated thread
 * is stopped, perhaps one holding block_mu: no lock, no reference. */
void coev__sim_task_each(struct coev_rt *rt,
			 void (*fn)(coev_task_t *t, void *arg), void *arg)
{
	walk_from(rt->chunks, false, fn, arg);
}
#endif

void coev__task_each(struct coev_rt *rt, void (*fn)(coev_task_t *t, void *arg),
		     void *arg)
{
	walk(rt, true, fn, arg);
}

void coev__block_each_unref(struct coev_rt *rt,
			    void (*fn)(coev_task_t *t, void *arg), void *arg)
{
	walk(rt, false, fn, arg);
}

/* t belongs to an abandoned task: its chunk is never unmapped. A walk of
 * the chunks, at teardown only. */
void coev__block_keep(struct coev_rt *rt, coev_task_t *t)
{
	for (struct coev__chunk *c = rt->chunks; c; c = c->next)
		if ((char *)t >= (char *)c &&
		    (char *)t < (char *)c + CHUNK_BYTES)
			c->kept = true;
}

void coev__block_fini(struct coev_rt *rt)
{
	struct coev__chunk *c, *next;

	for (c = rt->chunks; c; c = next) {
		next = c->next;
		if (c->kept)
			continue;
		/* ASan's shadow outlives the mapping: clear it, or the next
		 * mapping at this address would read as poisoned. */
		BLK_UNPOISON(c, CHUNK_BYTES);
		BLK_ROOT_DEL(c, CHUNK_BYTES);
		munmap(c, CHUNK_BYTES);
		atomic_fetch_sub_explicit(&mapped_bytes, CHUNK_BYTES,
					  memory_order_relaxed);
	}
	rt->chunks = NULL;
	rt->batches = NULL;
	rt->bump = rt->bump_end = NULL;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];

		if (!w)
			continue;
		w->task_cache = w->task_spare = NULL;
		w->task_cache_len = 0;
		w->task_bump = w->task_bump_end = NULL;
	}
}

/* Bytes of chunks mapped now, process-wide (tests). */
size_t coev__block_mapped(void)
{
	return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

/* Chunks rt has mapped (tests). */
unsigned coev__block_chunks(struct coev_rt *rt)
{
	return atomic_load_explicit(&rt->block_chunks, memory_order_relaxed);
}
