/* SPDX-License-Identifier: MIT */
/*
 * sched/runq.c — the cold paths of a worker's run queue (sched/runq.h):
 * a full ring's overflow, and the owner's batch handed to the monitor.
 */
#include "runq.h"

/* Owner only. When the ring is full, its older half is taken out (one
 * claim): stale entries are dropped (this is where fork-join code sheds
 * the spawn entries of children that a join already ran); if that freed
 * at least a quarter of the ring the live ones go back in, else they and
 * t go to the inject queue in one batch (Go's runqputslow). */
void coev__ring_overflow(struct coev_worker *w, coev__entry_t *t)
{
	coev__entry_t *first = NULL, *last = NULL, *x, *next;
	unsigned half = ck_ring_capacity(&w->ring) / 2, n = 0, i, at;

	/* Thieves took some since the push found the ring full: there is
	 * room now. */
	if (!ring_claim(w, half, &at)) {
		ring_push(w, t);
		return;
	}
	/* The live entries are out of every queue now: chain them through
	 * their own links (no array on what may be a task's stack). */
	for (i = 0; i < half; i++) {
		x = w->buf[(at + i) & w->ring.mask].value;
		if (coev__entry_stale(x)) {
			coev__task_release(coev__entry_task(x));
			continue;
		}
		if (last)
			*coev__entry_link(last) = x;
		else
			first = x;
		last = x;
		n++;
	}
	if (half - n >= half / 2) {
		for (x = first; n-- > 0; x = next) {
			next = *coev__entry_link(x);
			ring_push(w, x);
		}
		ring_push(w, t);
		return;
	}
	if (last)
		*coev__entry_link(last) = t;
	else
		first = t;
	coev__inject_push(&w->rt->inject, first, t, n + 1);
}

/* The owner's half of the batch handshake (steps 2 and 3 above), when
 * the monitor has begun one: wait for its outcome. */
void coev__batch_back(struct coev_worker *w)
{
	unsigned g;

	/* Acquire: pairs with the monitor's release store of 2 (the batch
	 * it emptied) or of 0 (it left the batch alone). */
	while ((g = atomic_load_explicit(&w->batch_gone,
					 memory_order_acquire)) == 1)
		coev__cpu_pause();
	if (g == 2)
		atomic_store_explicit(&w->batch_gone, 0, memory_order_relaxed);
}

void coev__worker_batch_rescue(struct coev_worker *w, uint_fast64_t seq)
{
	coev__entry_t *first = NULL, *last = NULL, *x;
	unsigned n;
	unsigned i = atomic_load_explicit(&w->batch_i, memory_order_relaxed);
	unsigned end = atomic_load_explicit(&w->batch_n, memory_order_relaxed);

	if (i == end)
		return;
	atomic_store_explicit(&w->batch_gone, 1, memory_order_relaxed);
	coev__plat_fence_heavy();
	/* Acquire: pairs with run_begin's release store of seq, which
	 * published the batch as the owner left it. */
	if (atomic_load_explicit(&w->run_seq, memory_order_acquire) != seq) {
		/* Release: pairs with coev__batch_back's acquire. */
		atomic_store_explicit(&w->batch_gone, 0, memory_order_release);
		return;
	}
	/* Read again: the owner may have popped since the first look and
	 * before the run began; that run's release store published it. */
	i = atomic_load_explicit(&w->batch_i, memory_order_relaxed);
	end = atomic_load_explicit(&w->batch_n, memory_order_relaxed);
	n = end - i;
	for (; i < end; i++) {
		x = w->batch[i];
		if (last)
			*coev__entry_link(last) = x;
		else
			first = x;
		last = x;
	}
	atomic_store_explicit(&w->batch_i, end, memory_order_relaxed);
	/* Release: pairs with coev__batch_back's acquire; the batch is empty. */
	atomic_store_explicit(&w->batch_gone, 2, memory_order_release);
	if (n) {
		coev__inject_push(&w->rt->inject, first, last, n);
		coev__notify_parked(w->rt);
	}
}
