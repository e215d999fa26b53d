/* SPDX-License-Identifier: MIT */
/*
 * sched/live.c — the live count: tasks spawned and not yet ended, which a shutdown waits
 * to see reach 0. Tasks spawned by a task on worker h count in h's
 * st.spawned (+1 before the spawn looks at closed, -1 if it is refused),
 * and their ends in the live_ends[h] of the worker where they end; tasks
 * spawned from outside the workers count in live_ext (+1 at the spawn, -1
 * at the end). Every worker counter has one writer, its owner, which
 * adds with a load and a store: no locked instruction on spawn or end.
 * The count is live_ext + sum(spawned) - sum(live_ends), and h's share
 * (coev_worker_stats_t.alive) is its spawned minus the live_ends[h] of
 * every worker.
 *
 * The shutdown handshake (runtime.c: coev_rt_shutdown, wait_live) is two
 * store-load orders, each made of a light fence on the workers and a
 * heavy fence (membarrier) on the shutdown's side (sched/platform.h):
 *   1. a spawn counts itself, then loads closed; the shutdown stores
 *      closed, then counts: a spawn that missed closed is counted;
 *   2. an end (or a refused spawn's undo) stores its count, then loads
 *      live_waiters; a shutdown increments live_waiters, then counts: it
 *      counts the end, or the end sees it waiting, takes live_mu (which
 *      the shutdown holds from its count until its wait releases it) and
 *      counts again, broadcasting at 0. Two ends that both see it
 *      waiting count under live_mu, so the later one sees both.
 * Why a 0 is exact: the counts are read after the heavy fence, ends
 * before spawns (acquire loads of ends, against the release stores in
 * coev__live_end): every end read is of a spawn already counted in what is
 * read after it, so the difference never drops below the tasks left;
 * every spawn that succeeded counted itself before the shutdown's
 * fence, so it is in the sum. A refused spawn's brief +1 can only make
 * the sum larger; its undo wakes the shutdown like an end.
 *
 * The hot halves (a worker's spawn, undo and end) are inline in
 * sched/sched.h: coev__live_add, coev__live_undo, coev__live_end.
 *
 * Rejected: one count per worker that ends on other workers decrement
 * (the previous design: a locked add at every spawn and a locked
 * subtract at every end, about a quarter of a detached task's cost), and
 * a seq_cst fence in place of each locked instruction (the same cost).
 */
#include "sched.h"

long coev__live_count(struct coev_rt *rt)
{
	uint64_t ends = 0, spawns = 0;
	unsigned n = rt->nworkers;

	/* Acquire: pairs with coev__live_end's release store (sched.h); the spawns read
	 * below then include every spawn whose end was read here. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned h = 0; h < n; h++)
			ends += atomic_load_explicit(
				&rt->workers[i]->live_ends[h],
				memory_order_acquire);
	for (unsigned h = 0; h < n; h++)
		spawns += atomic_load_explicit(&rt->workers[h]->st.spawned,
					       memory_order_relaxed);
	/* seq_cst: the load half of the non-workers' store-load orders
	 * (live_ext_drop, coev__task_spawn). */
	return atomic_load_explicit(&rt->live_ext, memory_order_seq_cst) +
	       (long)(spawns - ends);
}

long coev__live_share(struct coev_rt *rt, unsigned h)
{
	uint64_t ends = 0;

	/* Acquire, and ends before spawns: as in coev__live_count, so the
	 * share is never negative. */
	for (unsigned i = 0; i < rt->nworkers; i++)
		ends += atomic_load_explicit(&rt->workers[i]->live_ends[h],
					     memory_order_acquire);
	return (long)(atomic_load_explicit(&rt->workers[h]->st.spawned,
					   memory_order_relaxed) -
		      ends);
}

/* A shutdown waits for the count to reach 0: count again under live_mu,
 * and wake it at 0 (see the handshake above). */
void coev__live_wake(struct coev_rt *rt)
{
	pthread_mutex_lock(&rt->live_mu);
	if (coev__live_count(rt) == 0)
		pthread_cond_broadcast(&rt->live_cv);
	pthread_mutex_unlock(&rt->live_mu);
}

/* The end of a task counted in live_ext, or the undo of such a count. */
void coev__live_ext_drop(struct coev_rt *rt)
{
	/* seq_cst: the decrement before the load of live_waiters, against
	 * wait_live's increment of live_waiters and heavy fence before its
	 * loads (step 2 of the handshake, with a locked RMW on this side). */
	atomic_fetch_sub_explicit(&rt->live_ext, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&rt->live_waiters, memory_order_seq_cst))
		coev__live_wake(rt);
}
