/* SPDX-License-Identifier: MIT */
/*
 * sched/runq.h — a worker's run queue: the ring (ck_ring SPMC, the owner
 * pushes, anyone pops) and the owner's batch, for sched/worker.c and
 * sched/runq.c only. The hot operations are inline here; the cold ones
 * (overflow, the batch's hand-over to the monitor) are in runq.c.
 */
#ifndef COEV_SCHED_RUNQ_H
#define COEV_SCHED_RUNQ_H

#include <string.h>

#include "sched.h"
#include "switch.h"

/* ck's ring publishes with a store fence and plain (volatile) stores, and
 * reads its indexes and slots with plain loads, none of which
 * ThreadSanitizer understands even with CK_USE_CC_BUILTINS (only ck's CAS
 * becomes a compiler atomic). So in TSan builds the reads inside every ring
 * call are not tracked, and the ring's one synchronisation edge is named
 * instead: the enqueue's fence + p_tail store (release) pairs with the
 * dequeue's load of p_tail (acquire). A thief's read of a slot that its CAS
 * then rejects is the ring's designed, validated race. */
#if defined(COEV_TSAN)
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define RING_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define RING_READS_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define RING_READS_BEGIN() ((void)0)
#define RING_READS_END() ((void)0)
#endif

static inline unsigned ring_size(struct coev_worker *v)
{
	unsigned n;

	RING_READS_BEGIN();
	n = ck_ring_size(&v->ring);
	RING_READS_END();
	return n;
}

static inline coev__entry_t *ring_pop(struct coev_worker *v)
{
	void *p;
	bool ok;

	COEV__POINT(POP);
	RING_READS_BEGIN();
	/* Consume edge: the dequeue's load of p_tail (then a load fence)
	 * pairs with the owner's store fence and p_tail store in
	 * ck_ring_enqueue_spmc (ring_push), so the entry's task is seen as
	 * its queuer left it; the CAS on c_head decides between thieves
	 * and the owner. COEV_TSAN_ACQUIRE names that edge for TSan and
	 * pairs with COEV_TSAN_RELEASE in ring_push. */
	ok = ck_ring_dequeue_spmc(&v->ring, v->buf, &p);
	RING_READS_END();
	if (!ok)
		return NULL;
	COEV_TSAN_ACQUIRE(&v->ring);
	return p;
}

/* Owner only: claim the n oldest entries of the owner's own ring with one
 * CAS on the consumer head, against thieves' pops of the same word (Go's
 * runqputslow and tokio's push_overflow claim their batch the same way):
 * true with *at the head they start at, false when fewer than n are
 * queued. The caller reads the slots after the claim: only the owner
 * writes slots, and it pushes nothing before it has read them. */
static inline bool ring_claim(struct coev_worker *w, unsigned n, unsigned *at)
{
	unsigned head, tail;

	COEV__POINT(POP);
	/* Relaxed: the owner wrote every slot and p_tail itself. */
	head = ck_pr_load_uint(&w->ring.c_head);
	do {
		tail = ck_pr_load_uint(&w->ring.p_tail);
		if (tail - head < n)
			return false;
		/* The CAS decides between us and a thief that read the same
		 * head (ck_ring_dequeue_spmc's CAS on c_head). */
	} while (!ck_pr_cas_uint_value(&w->ring.c_head, head, head + n, &head));
	*at = head;
	return true;
}

/* runq.c: the cold halves. */
__attribute__((cold)) void coev__ring_overflow(struct coev_worker *w,
					       coev__entry_t *t);
__attribute__((cold)) void coev__batch_back(struct coev_worker *w);

static inline void ring_push(struct coev_worker *w, coev__entry_t *t)
{
	bool ok;

	COEV__POINT(PUSH);
	/* Publish edge: the enqueue's store fence and p_tail store pair
	 * with the load of p_tail in ck_ring_dequeue_spmc (ring_pop, in the
	 * owner or a thief). COEV_TSAN_RELEASE, before the enqueue, names
	 * that edge for TSan and pairs with COEV_TSAN_ACQUIRE in
	 * ring_pop. */
	COEV_TSAN_RELEASE(&w->ring);
	RING_READS_BEGIN();
	ok = ck_ring_enqueue_spmc(&w->ring, w->buf, t);
	RING_READS_END();
	if (__builtin_expect(!ok, 0))
		coev__ring_overflow(w, t);
}

/*
 * The owner's batch. The owner does not pop its ring one CAS at a time: it
 * claims up to COEV_BATCH of the oldest entries with one CAS (ring_claim)
 * into w->batch and pops them from there with no atomic instruction, so a
 * long queue of yielding tasks pays a CAS per COEV_BATCH runs. It claims
 * at most half of what the ring holds (rounded up), so that at the claim
 * at least as much is left for thieves as it took.
 *
 * What thieves cannot see. Entries in the batch are the owner's: a thief
 * steals only from the ring. They are at most COEV_BATCH - 1 tasks, each
 * of which the owner runs as soon as the task it runs suspends, as it
 * would run its LIFO slot. A task that runs long without suspending would
 * keep them waiting, and that is what the monitor rescues (monitor.c):
 * finding the worker in the same run a whole period later with a batch
 * left, it calls coev__worker_batch_rescue, which takes the batch away
 * from the owner in a handshake of two store-load orders (the asymmetric
 * fence, sched/platform.h):
 *   1. the monitor stores batch_gone = 1, issues the heavy fence, and
 *      loads run_seq again; the owner, at the end of every run, stores
 *      run_seq (run_end, task.c), issues the light fence in next_local
 *      and loads batch_gone before it touches the batch;
 *   2. if run_seq is still the stuck run's, the owner has not left it
 *      and, when it does, will see batch_gone: the monitor moves the
 *      batch to the inject queue, empties it and stores batch_gone = 2
 *      (release), then notifies a sleeper; the owner, seeing 2
 *      (acquire), finds its batch empty and clears batch_gone;
 *   3. if run_seq changed, the owner may be using the batch: the monitor
 *      stores batch_gone = 0 and leaves; an owner that saw the 1 waits
 *      for that (a few instructions away).
 * The batch's fields are the owner's but for that window: the owner's
 * last writes before the stuck run are published by run_begin's release
 * store of run_seq, which the monitor acquires.
 *
 * Rejected: a Chase-Lev deque (the owner pops the end it pushes, which
 * makes a yield LIFO, and its pop needs a store-load fence, which costs
 * what the CAS does); a CAS-free pop guarded by "nobody searches" (every
 * search would then need a heavy fence, and message passing between two
 * workers starts a search at every hop).
 */
/* Whether the owner's batch holds entries not yet run [owner]. */
static inline bool batch_left(struct coev_worker *w)
{
	return atomic_load_explicit(&w->batch_i, memory_order_relaxed) !=
	       atomic_load_explicit(&w->batch_n, memory_order_relaxed);
}

static inline coev__entry_t *batch_pop(struct coev_worker *w)
{
	/* Relaxed, here and below: the owner's own fields, atomic only so
	 * that the monitor's and metrics' looks are no data race. */
	unsigned i = atomic_load_explicit(&w->batch_i, memory_order_relaxed);
	unsigned size, n, at, off;

	if (i == atomic_load_explicit(&w->batch_n, memory_order_relaxed)) {
		size = ring_size(w);
		if (!size)
			return NULL;
		n = (size + 1) / 2;
		if (n > COEV_BATCH)
			n = COEV_BATCH;
		/* Thieves took some since we looked: one at a time then. */
		if (!ring_claim(w, n, &at))
			return ring_pop(w);
		off = at & w->ring.mask;
		if (off + n <= COEV_RUNQ_SIZE) {
			memcpy(w->batch, &w->buf[off], n * sizeof w->buf[0]);
		} else {
			for (unsigned j = 0; j < n; j++)
				w->batch[j] =
					w->buf[(at + j) & w->ring.mask].value;
		}
		i = 0;
		atomic_store_explicit(&w->batch_n, n, memory_order_relaxed);
	}
	atomic_store_explicit(&w->batch_i, i + 1, memory_order_relaxed);
	return w->batch[i];
}

static inline void batch_check(struct coev_worker *w)
{
	/* Store-load: run_end's store of run_seq before this load, against
	 * coev__worker_batch_rescue's store of batch_gone and heavy fence
	 * before its load of run_seq. */
	coev__fence_light();
	if (__builtin_expect(
		    atomic_load_explicit(&w->batch_gone, memory_order_relaxed),
		    0))
		coev__batch_back(w);
}

#endif
