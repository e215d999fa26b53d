/* SPDX-License-Identifier: MIT */
/*
 * sched/worker.c — the scheduler loop of one worker, run queues, stealing
 * and parking.
 *
 * Each worker is one thread with one event loop. Where it looks for work,
 * in order (the model is tokio's multi-threaded scheduler and Go's
 * findrunnable):
 *   1. every COEV_TICK_GLOBAL ticks: poll its loop without blocking (due
 *      timers, ready fds; skipped when nothing is armed) and take one
 *      entry from the inject queue first, so neither starves behind a busy
 *      local queue;
 *   2. its inbox: tasks pinned to this worker (resuming after a timed wait
 *      armed on this loop); thieves never look there; at most
 *      COEV_LIFO_MAX times in a row, then after the LIFO slot and ring, so
 *      a pinned task yielding in a loop cannot starve them;
 *   3. the LIFO slot: the task most recently spawned or woken here, for
 *      cache locality in message passing; at most COEV_LIFO_MAX wakes in
 *      a row, so two tasks waking each other cannot starve the ring (new
 *      and boosted children are exempt: see next_local());
 *   4. the local ring (ck_ring SPMC, COEV_RUNQ_SIZE slots, FIFO);
 *   5. the inject queue, taking a batch (its share, no more than the
 *      ring has room for) into the ring;
 *   6. stealing: become a searcher (at most half the workers search at
 *      once), then take half of a random victim's ring (or, if it is empty,
 *      its LIFO entry when the owner leaves it there for 3 us), visiting
 *      every other worker once from a random start; but not the hand-off
 *      partners of a victim's running task (partners_only);
 *   7. spinning: a searcher that found nothing keeps searching for up to
 *      COEV_SPIN_NS while another worker is awake, still counted as
 *      searching, so producers ring no doorbell (spin());
 *   8. parking inside its loop (coev__plat_park), woken by the doorbell.
 *
 * Who may touch what: only the owner pushes to its ring and sets its LIFO
 * slot; any worker may pop from the ring (CAS on the consumer head), and a
 * searcher may take a LIFO entry that its owner left alone for 3 us,
 * unless it is a partner of the owner's running task (rule 6). Work pushed
 * by a thread that is not a worker of the runtime goes to the inject
 * queue. Pinned tasks go to their worker's inbox,
 * and so, under COEV_DEBUG_MIGRATE, does every other resumed task, to the
 * inbox of the worker after the one it last ran on (schedule_migrate).
 *
 * Parking without losing work (the protocol of tokio's idle.rs):
 *   - idle_state packs (searching, unparked) in one word. A producer that
 *     made work visible (ring, LIFO, inject) issues a seq_cst fence and
 *     reads idle_state; if nobody searches and someone sleeps, it pops a
 *     sleeper under idle_mu, counts it as unparked and searching, and
 *     rings its doorbell (coev__notify_parked).
 *   - A worker that parks takes itself off the counts under idle_mu (a
 *     seq_cst RMW); if it was the last searcher it re-checks every queue
 *     afterwards and notifies if it finds work. Since a worker only parks
 *     without searching when another worker searches, some searcher always
 *     makes that re-check after the producer's push.
 *   - A worker that finds work while searching stops searching; if it was
 *     the last searcher it wakes another, because one task found suggests
 *     more (tokio's transition_worker_from_searching).
 *   - The doorbell keeps a ring that comes before the park, so a notify
 *     between "pushed onto the sleepers" and "blocked in the loop" is kept.
 *   - What a wake costs: a ring of an awake worker (or one not yet
 *     blocked) costs no system call (libev writes the eventfd only while
 *     the loop blocks, plat_ev.c), and a producer that sees a searcher
 *     rings nothing. Waking a sleeper costs three: the waker's eventfd
 *     write, the sleeper's epoll_wait return and its eventfd read, the
 *     same as a hand-written eventfd loop. Counted with perf on the
 *     pipeline and bridge workloads, eventfd writes equal the parks'
 *     epoll_wait calls (5,056 and 5,055 for 10M pipeline messages): no
 *     ring goes to a worker that is not asleep or falling asleep.
 *
 * The one hole in that protocol, and who closes it: filling the LIFO slot
 * notifies nobody (a wake per message-passing hop would cost a syscall),
 * so a task left in the LIFO slot (or ring) of a worker that then runs one
 * task for a long time without suspending would wait for it. The monitor
 * (monitor.c) is the other half of this file's policy: it watches every
 * worker's run_seq (odd while a task runs, written at each run's start and
 * end) and, when a worker stays in one run for a whole period with work
 * queued behind it, notifies a sleeper that then steals that work.
 *
 * Rejected: a condition variable per worker next to the loop (two ways to
 * sleep means the loop can't be both waited on and woken, or a timer fd
 * plus a futex must be combined by hand); spinning workers that never park
 * (burns the second core the benchmarks and other processes need); a
 * lock-free MPMC inject queue from ck (ck_fifo_mpmc needs safe memory
 * reclamation for its nodes; the inject queue is off the hot path, and
 * tokio and Go both use a lock there).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runq.h"
#include "sched.h"
#include "switch.h"

#define SEARCH_ONE ((uint_fast64_t)1)
#define UNPARK_ONE ((uint_fast64_t)1 << 32)
#define N_SEARCHING(s) ((unsigned)((s)&0xffffffffu))
#define N_UNPARKED(s) ((unsigned)((s) >> 32))

/* The clock spawns stamp their tasks' ages with (task.c). */
static uint32_t coarse_ms(struct coev_worker *w)
{
	return (uint32_t)((coev__plat_coarse_now() - w->rt->started_coarse) /
			  1000000);
}

/* --- idle workers ------------------------------------------------------ */

/*
 * Wake a sleeping worker to search if nobody searches. The seq_cst fence
 * pairs with the seq_cst RMW of idle_state in park_worker(), so either the
 * parker's re-check sees the work the caller made visible or we see the
 * parker asleep. Callers that are running workers of rt, which will run
 * the work themselves if nobody else does, first take notify_if_idle's
 * relaxed look instead.
 */
void coev__notify_parked(struct coev_rt *rt)
{
	uint_fast64_t s;
	unsigned i;
	struct coev_worker *v;

	/* seq_cst: the store-load order of the producing side, our push
	 * before the load of idle_state below, against park_worker's
	 * seq_cst RMW before its re-check (see above). */
	atomic_thread_fence(memory_order_seq_cst);
	s = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
	if (N_SEARCHING(s) != 0 || N_UNPARKED(s) >= rt->nworkers)
		return;
	pthread_mutex_lock(&rt->idle_mu);
	s = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
	if (N_SEARCHING(s) != 0 || rt->nsleepers == 0) {
		pthread_mutex_unlock(&rt->idle_mu);
		return;
	}
	i = rt->sleepers[--rt->nsleepers];
	v = rt->workers[i];
	v->sleeping = false;
	/* seq_cst, like every RMW of idle_state: v counts as searching from
	 * here, so a producer's fence and load above that sees it skips
	 * its wake and leaves its work to v's search, or to the re-check
	 * of the last searcher in park_worker. (v itself learns it was
	 * notified under idle_mu, in park_worker.) */
	atomic_fetch_add_explicit(&rt->idle_state, SEARCH_ONE + UNPARK_ONE,
				  memory_order_seq_cst);
	pthread_mutex_unlock(&rt->idle_mu);
	coev__plat_unpark(v);
}

/* A running worker's wake of a sleeper, after a relaxed first look without
 * the fence (inline: on the paths of every spawn and yield, nobody asleep
 * or someone searching is the common answer). A worker parking at that
 * instant is missed: the next push repairs it, and parallelism is lost,
 * never work, since the caller runs the work if nobody else does. */
static inline void notify_if_idle(struct coev_rt *rt)
{
	uint_fast64_t s =
		atomic_load_explicit(&rt->idle_state, memory_order_relaxed);

	if (N_SEARCHING(s) == 0 && N_UNPARKED(s) < rt->nworkers)
		coev__notify_parked(rt);
}

static bool try_become_searching(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	uint_fast64_t s;

	if (w->searching)
		return true;
	s = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
	/* seq_cst, like every RMW of idle_state: in one total order with
	 * the seq_cst fence in coev__notify_parked. A producer whose fence
	 * and load see this searcher skips its wake; the searcher then
	 * steals the work or, finding none, parks, and the last searcher
	 * to park re-checks the queues (park_worker). */
	do {
		if (2 * N_SEARCHING(s) >= rt->nworkers)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&rt->idle_state, &s, s + SEARCH_ONE, memory_order_seq_cst,
		memory_order_relaxed));
	w->searching = true;
	return true;
}

static void stop_searching(struct coev_worker *w)
{
	uint_fast64_t prev;

	if (!w->searching)
		return;
	w->searching = false;
	/* seq_cst: the decrement before coev__notify_parked's fence and
	 * load of idle_state, against producers' fence and load
	 * there: a producer that still saw us searching and skipped its
	 * wake is covered by the wake the last searcher makes here. */
	prev = atomic_fetch_sub_explicit(&w->rt->idle_state, SEARCH_ONE,
					 memory_order_seq_cst);
	if (N_SEARCHING(prev) == 1)
		coev__notify_parked(w->rt);
}

void coev__worker_depths(struct coev_worker *w, uint64_t *ring, uint64_t *lifo,
			 uint64_t *inbox)
{
	unsigned bi = atomic_load_explicit(&w->batch_i, memory_order_relaxed);
	unsigned bn = atomic_load_explicit(&w->batch_n, memory_order_relaxed);

	/* The batch counts as ring; a refill seen half-way reads as 0. */
	*ring = ring_size(w) + (bn > bi ? bn - bi : 0);
	*lifo = atomic_load_explicit(&w->lifo, memory_order_relaxed) != NULL;
	*inbox = atomic_load_explicit(&w->inbox.len, memory_order_relaxed);
}

#if defined(COEV_SIM)
long coev__sim_queued_work(struct coev_rt *rt)
{
	long n = (long)atomic_load_explicit(&rt->inject.len,
					    memory_order_relaxed);

	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];
		uint64_t ring, lifo, inbox;

		coev__worker_depths(w, &ring, &lifo, &inbox);
		n += (long)(ring + lifo + inbox);
		n += atomic_load_explicit(&w->posts, memory_order_relaxed) !=
		     NULL;
	}
	return n;
}
#endif

/*
 * Hand-off partners: what v's running task (or the one before) woke into
 * its LIFO slot, and the one that displaced to the ring (n <= 1), run next
 * on v, in its cache. Thieves leave them, the displaced one rings no
 * doorbell and any_work skips it, until the monitor marks v's run stuck
 * (docs/ARCHITECTURE.md). Relaxed: a stale answer costs a steal, or a wait.
 */
static bool partners_only(struct coev_worker *v, unsigned n)
{
	uint_fast64_t run,
		lr = atomic_load_explicit(&v->lifo_run, memory_order_relaxed);

	if (n > 1 || !lr)
		return false; /* before run_seq's line, written at every run */
	run = atomic_load_explicit(&v->run_seq, memory_order_relaxed);
	return (run & 1) && run - lr <= 2 &&
	       atomic_load_explicit(&v->stuck_run, memory_order_relaxed) != run;
}

static bool any_work(struct coev_rt *rt)
{
	if (atomic_load_explicit(&rt->inject.len, memory_order_relaxed))
		return true;
	/* LIFO slots are not counted: a busy worker's slot changes all the
	 * time, and waking a worker for it would make an idle worker spin
	 * between parking and searching. Searchers still take a slot that
	 * stays put (steal_lifo). Nor are hand-off partners. */
	for (unsigned i = 0, n; i < rt->nworkers; i++)
		if ((n = ring_size(rt->workers[i])) != 0 &&
		    !partners_only(rt->workers[i], n))
			return true;
	return false;
}

/* Back from a park: off the sleepers by itself (woken by its own loop) or
 * by a notifier, which counted it as searching. */
static void unpark_worker(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;

	w->now_ms = coarse_ms(w);
	pthread_mutex_lock(&rt->idle_mu);
	if (w->sleeping) {
		/* Woken by its own loop (timer, I/O, inbox), not notified. */
		for (unsigned i = 0; i < rt->nsleepers; i++) {
			if (rt->sleepers[i] == w->index) {
				rt->sleepers[i] = rt->sleepers[--rt->nsleepers];
				break;
			}
		}
		w->sleeping = false;
		/* seq_cst, like every RMW of idle_state; it protects no
		 * store-load order: it counts us awake again for the
		 * relaxed first looks of notify_if_idle and the
		 * monitor's next_look (monitor.c). */
		atomic_fetch_add_explicit(&rt->idle_state, UNPARK_ONE,
					  memory_order_seq_cst);
	} else {
		/* The notifier counted us as searching. */
		w->searching = true;
		COEV_STAT_ADD(w, unparks, 1);
	}
	pthread_mutex_unlock(&rt->idle_mu);
}

static void park_worker(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	uint_fast64_t dec = UNPARK_ONE, prev;
	bool last_searcher;

	COEV__POINT(PARK);
	pthread_mutex_lock(&rt->idle_mu);
	if (w->searching)
		dec += SEARCH_ONE;
	/* seq_cst: the store-load order of the parking side. This RMW,
	 * before the last searcher's re-check of the queues (any_work),
	 * pairs with the seq_cst fence in coev__notify_parked between a
	 * producer's push and its load of idle_state: either the producer
	 * sees us gone and wakes a sleeper, or our re-check sees its
	 * push. */
	prev = atomic_fetch_sub_explicit(&rt->idle_state, dec,
					 memory_order_seq_cst);
	last_searcher = w->searching && N_SEARCHING(prev) == 1;
	w->searching = false;
	w->sleeping = true;
	rt->sleepers[rt->nsleepers++] = w->index;
	pthread_mutex_unlock(&rt->idle_mu);

#if defined(COEV_PLANT_PARK_NO_RECHECK)
	/* Planted bug: the last searcher gives up without re-checking the
	 * queues: a producer that saw it still searching rang no doorbell. */
	(void)last_searcher;
	(void)any_work;
#else
	if (last_searcher && any_work(rt))
		coev__notify_parked(rt);
#endif
	coev__stack_trim(w);
	COEV__POINT(PARK);
	/* Acquire: pairs with the release store of stop in stop_workers
	 * (runtime.c), which then rings every doorbell: a worker that
	 * misses stop here is woken from its park by that ring. */
	if (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		coev_time_t start = coev__plat_now();

		COEV_STAT_ADD(w, parks, 1);
		atomic_store_explicit(&w->park_start, start,
				      memory_order_relaxed);
		coev__plat_park(w);
		atomic_store_explicit(&w->park_start, 0, memory_order_relaxed);
		COEV_STAT_ADD(w, idle_ns, (uint64_t)(coev__plat_now() - start));
		if (COEV__TRACING(w))
			coev__trace_idle(w, start);
	}

	unpark_worker(w);
}

/* --- scheduling ---------------------------------------------------------- */

void coev__schedule_lifo(struct coev_worker *w, coev__entry_t *t)
{
	coev__entry_t *prev;
	uint_fast64_t run;

	COEV__POINT(PUSH);
	/* Relaxed: a hint for thieves (partners_only). */
	run = atomic_load_explicit(&w->run_seq, memory_order_relaxed);
	atomic_store_explicit(&w->lifo_run,
			      coev__entry_kind(t) == ENTRY_RUN ? run : 0,
			      memory_order_relaxed);
	/* acq_rel: the release publishes t's task (its spawn's
	 * initialisation, a waker's writes) to a thief's acq_rel CAS in
	 * steal_lifo; prev is this worker's own earlier entry or a thief's
	 * NULL, so the acquire half pairs with steal_lifo's CAS only to
	 * order its taking before ours. */
	prev = atomic_exchange_explicit(&w->lifo, t, memory_order_acq_rel);

	/* Only work that thieves can see (the ring, but not a hand-off
	 * partner) is worth a wake-up: the LIFO slot runs next here. */
	if (prev) {
		ring_push(w, prev);
		if (!partners_only(w, ring_size(w)))
			notify_if_idle(w->rt);
	}
}

void coev__schedule_inject(struct coev_rt *rt, coev__entry_t *e)
{
	coev__inject_push(&rt->inject, e, e, 1);
	coev__notify_parked(rt);
}

/* COEV_DEBUG_MIGRATE: queue e on the inbox of the worker after the one
 * that last ran its task, so that the task resumes on another thread. The
 * inbox because it takes pushes from any thread (a ring has one producer,
 * its owner) and thieves never take from it (the task cannot be stolen
 * back). t->worker is safe to read: a yield or permit is queued by the
 * thread that set it, and a wake's notify acquires the state word that the
 * park published after it. */
static void schedule_migrate(coev_task_t *t, coev__entry_t *e)
{
	struct coev_rt *rt = t->rt;
	struct coev_worker *v =
		rt->workers[(t->worker->index + 1) % rt->nworkers];

	coev__inject_push(&v->inbox, e, e, 1);
	coev__plat_unpark(v);
}

/* Queue a started task (a run or resume entry): on its pinned worker's inbox,
 * on the calling worker (LIFO slot for a wake, ring tail for a yield), or
 * on the inject queue from outside the runtime. */
void coev__schedule(coev_task_t *t, bool yielded)
{
	coev__schedule_entry(coev__entry(t, ENTRY_RUN), yielded);
}

void coev__schedule_entry(coev__entry_t *e, bool yielded)
{
	coev_task_t *t = coev__entry_task(e);
	struct coev_worker *w, *pin = t->pin;

	/* pin is read once: once the entry is in the inbox the task may run
	 * there, end its wait and clear t->pin before we ring. */
	if (pin) {
		coev__inject_push(&pin->inbox, e, e, 1);
		coev__plat_unpark(pin);
		return;
	}
	if (t->rt->migrate) {
		schedule_migrate(t, e);
		return;
	}
	w = coev__worker_self();
	if (!w || w->rt != t->rt) {
		coev__schedule_inject(t->rt, e);
		return;
	}
	if (!yielded) {
		coev__schedule_lifo(w, e);
		return;
	}
	ring_push(w, e);
	notify_if_idle(w->rt);
}

void coev__schedule_yield(struct coev_worker *w, coev__entry_t *e)
{
	coev_task_t *t = coev__entry_task(e);

	if (__builtin_expect(t->pin != NULL || t->rt->migrate, 0)) {
		coev__schedule_entry(e, true);
		return;
	}
	ring_push(w, e);
	notify_if_idle(w->rt);
}

/* Take v's LIFO entry if v leaves it there for LIFO_GRACE_NS: v is then
 * busy in a long task, and its next task would wait for it (Go's runqgrab
 * gives the owner the same grace before taking its runnext). The owner's
 * exchange and our CAS decide who has the entry. */
#define LIFO_GRACE_NS 3000

static coev__entry_t *steal_lifo(struct coev_worker *w, struct coev_worker *v)
{
	coev__entry_t *e = atomic_load_explicit(&v->lifo, memory_order_relaxed);
	coev_time_t until;

	if (!e)
		return NULL;
	until = coev__plat_now() + LIFO_GRACE_NS;
	while (coev__plat_now() < until) {
		COEV__POINT(SPIN);
		if (atomic_load_explicit(&v->lifo, memory_order_relaxed) != e)
			return NULL;
	}
	COEV__POINT(STEAL);
#if defined(COEV_PLANT_STEAL_TWICE)
	/* Planted bug: the entry is taken with a plain store, so the owner
	 * may take it too. Release: pairs with the owner's exchanges in
	 * next_local and coev__schedule_lifo; the bug is the store, not the
	 * order. */
	atomic_store_explicit(&v->lifo, NULL, memory_order_release);
#else
	/* acq_rel: the acquire pairs with the owner's release exchange in
	 * coev__schedule_lifo that stored e (its task's fields are
	 * visible); against the owner's exchanges in next_local, one RMW
	 * chain decides who gets the entry. */
	if (!atomic_compare_exchange_strong_explicit(&v->lifo, &e, NULL,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return NULL;
#endif
	COEV_STAT_ADD(w, stolen, 1);
	COEV_STAT_ADD(w, steal_ops, 1);
	if (COEV__TRACING(w))
		coev__trace_steal(w, v, 1);
	return e;
}

/* Take half of v's ring into w's, or else v's idle LIFO entry; returns one
 * task to run now. */
static coev__entry_t *steal_from(struct coev_worker *w, struct coev_worker *v)
{
	unsigned n, take, got = 0;
	coev__entry_t *first = NULL, *t;

	COEV__POINT(STEAL);
	if (partners_only(v, n = ring_size(v)))
		return NULL;
	if (n == 0)
		return steal_lifo(w, v);
	take = n - n / 2;
	while (got < take && (t = ring_pop(v)) != NULL) {
		if (!first)
			first = t;
		else
			ring_push(w, t);
		got++;
	}
	if (got) {
		COEV_STAT_ADD(w, stolen, got);
		COEV_STAT_ADD(w, steal_ops, 1);
		if (COEV__TRACING(w))
			coev__trace_steal(w, v, got);
	}
	return first;
}

/* Take from the inject queue: one entry on a fairness tick (Go's
 * globrunqget(pp, 1) there), else a batch of this worker's share that fits
 * in the ring. The ring is not filled past its free space: an overflow
 * would pass the batch's entries through the inject queue again, and a
 * batch taken on every tick of a busy worker made each entry cross the
 * ring many times. */
static coev__entry_t *take_inject(struct coev_worker *w, bool one)
{
	struct coev_rt *rt = w->rt;
	coev__entry_t *first = NULL, *t, *next;
	size_t len =
		atomic_load_explicit(&rt->inject.len, memory_order_relaxed);
	size_t max, n, room;

	if (!len)
		return NULL;
	max = one ? 1 : len / rt->nworkers + 1;
	if (max > COEV_RUNQ_SIZE / 2)
		max = COEV_RUNQ_SIZE / 2;
	room = ck_ring_capacity(&w->ring) - 1 - ring_size(w);
	if (max > room + 1)
		max = room + 1;
	n = coev__inject_pop_batch(&rt->inject, max, &first);
	if (!n)
		return NULL;
	COEV_STAT_ADD(w, inject_pops, n);
	for (t = *coev__entry_link(first); t; t = next) {
		next = *coev__entry_link(t);
		ring_push(w, t);
	}
	return first;
}

/* Take our own LIFO entry, counting a wake against the LIFO cap. */
static inline coev__entry_t *take_lifo(struct coev_worker *w)
{
	coev__entry_t *t;

	COEV__POINT(POP);
	/* acq_rel: against steal_lifo's CAS in a thief (one RMW chain
	 * decides who gets the entry, and a thief may have taken it since
	 * next_local looked: t is then NULL and next_local goes on); the
	 * entry is ours, set by coev__schedule_lifo on this thread. */
	t = atomic_exchange_explicit(&w->lifo, NULL, memory_order_acq_rel);
	if (coev__entry_kind(t) == ENTRY_RUN)
		w->lifo_runs++;
	else
		w->lifo_runs = 0;
	return t;
}

/* The LIFO entry a task parking on w may switch to (the hand-off, task.c
 * tells the bound), or NULL: next_local's LIFO step, taken only when
 * next_local would take it. */
coev__entry_t *coev__worker_handoff(struct coev_worker *w)
{
	coev__entry_t *t = atomic_load_explicit(&w->lifo, memory_order_relaxed);
	unsigned kind = coev__entry_kind(t);

	if (!t || (kind != ENTRY_RUN && kind != ENTRY_RESUME) ||
	    (w->tick + 1) % COEV_TICK_GLOBAL == 0 ||
	    atomic_load_explicit(&w->posts, memory_order_relaxed) ||
	    atomic_load_explicit(&w->inbox.len, memory_order_relaxed))
		return NULL;
	if (kind == ENTRY_RUN && w->lifo_runs >= COEV_LIFO_MAX) {
		/* The batch too: its entries are the ring's oldest (thieves
		 * may have emptied the ring behind it). */
		if (batch_left(w) || ring_size(w))
			return NULL;
		w->lifo_runs = 0; /* nothing waits: as next_local would */
	}
	w->tick++;
	w->inbox_runs = 0;
	/* NULL when a thief took the entry since the look above. */
	return take_lifo(w);
}

static coev__entry_t *next_local(struct coev_worker *w)
{
	coev__entry_t *t;

	batch_check(w);
	if (++w->tick % COEV_TICK_GLOBAL == 0) {
		/* Fairness: the loop and the inject queue get a turn at least
		 * every COEV_TICK_GLOBAL polls, however busy the local queue
		 * is. */
		coev__plat_poll(w);
		w->now_ms = coarse_ms(w);
		if ((t = take_inject(w, true)) != NULL)
			return t;
	}
	/* After the poll, which may consume the doorbell of a post: a post
	 * pushed before it is found here, one pushed after rings again. */
	if (atomic_load_explicit(&w->posts, memory_order_relaxed))
		coev__worker_run_posts(w, true);
	/* The inbox first (pinned tasks resume nowhere else), but at most
	 * COEV_LIFO_MAX times in a row: a pinned task that yields in a loop
	 * goes back to the inbox each time and would starve the LIFO slot
	 * and the ring. */
	if (w->inbox_runs < COEV_LIFO_MAX &&
	    atomic_load_explicit(&w->inbox.len, memory_order_relaxed) &&
	    (t = coev__inject_pop(&w->inbox)) != NULL) {
		w->inbox_runs++;
		return t;
	}
	w->inbox_runs = 0;
	t = atomic_load_explicit(&w->lifo, memory_order_relaxed);
	if (t && (w->lifo_runs < COEV_LIFO_MAX ||
		  coev__entry_kind(t) != ENTRY_RUN)) {
		/* Only wakes count against the LIFO cap: two tasks waking
		 * each other must not starve the ring. A new or boosted
		 * child continues its parent's work, as a call would, and a
		 * joiner resumed by its ended child is that call returning;
		 * running them first keeps fork-join code depth-first. A
		 * thief may have taken it since we looked: then the batch
		 * and the ring, which must not be left behind (a worker whose
		 * next_local finds nothing may park, and its batch is seen
		 * by nobody else). */
		if ((t = take_lifo(w)) != NULL)
			return t;
	}
	w->lifo_runs = 0;
	if ((t = batch_pop(w)) != NULL)
		return t;
	/* acq_rel: against steal_lifo's CAS, as above. */
	if ((t = atomic_exchange_explicit(&w->lifo, NULL,
					  memory_order_acq_rel)) != NULL)
		return t;
	if (atomic_load_explicit(&w->inbox.len, memory_order_relaxed) &&
	    (t = coev__inject_pop(&w->inbox)) != NULL)
		return t; /* the inbox's turn was skipped, and nothing else */
	return take_inject(w, false);
}

static coev__entry_t *search(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	unsigned n = rt->nworkers, start, i;
	coev__entry_t *t;

	/* No loop poll here: a worker that finds nothing parks in its loop,
	 * and a busy one polls every COEV_TICK_GLOBAL ticks; polling on every
	 * empty moment cost an epoll_wait per stolen batch. */
	if (atomic_load_explicit(&w->inbox.len, memory_order_relaxed) &&
	    (t = coev__inject_pop(&w->inbox)) != NULL)
		return t;
	/* Search even alone: parking re-checks the queues only for the last
	 * searcher, and a single worker that never searched could park just
	 * after a spawner saw it still awake (it then slept until libev's
	 * 60 s cap). */
	if (try_become_searching(w)) {
		start = coev__plat_choose(w, n);
		for (i = 0; i < n; i++) {
			struct coev_worker *v = rt->workers[(start + i) % n];
			if (v != w && (t = steal_from(w, v)) != NULL)
				return t;
		}
	}
	return take_inject(w, false);
}

/*
 * Before parking: keep searching for up to COEV_SPIN_NS, still counted as
 * a searcher, so producers see someone searching and skip their doorbell
 * (Go's spinning M). Only a searcher spins (at most half the workers), and
 * only while another worker is awake to make work: with every other
 * worker asleep, work comes from the loop or other threads, whose wake
 * costs the same whether we spin or park.
 */
static coev__entry_t *spin(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	coev_time_t until = 0;
	coev__entry_t *t;

	for (unsigned i = 0; i < COEV_SPIN_ROUNDS && w->searching; i++) {
		uint_fast64_t s = atomic_load_explicit(&rt->idle_state,
						       memory_order_relaxed);

		if (N_UNPARKED(s) < 2 ||
		    atomic_load_explicit(&rt->stop, memory_order_relaxed))
			return NULL;
		for (unsigned k = 0; k < 16; k++)
			coev__cpu_pause();
		if ((t = next_local(w)) != NULL || (t = search(w)) != NULL)
			return t;
		if (i % 8 == 0) {
			coev_time_t now = coev__plat_now();

			if (!until)
				until = now + COEV_SPIN_NS;
			else if (now >= until)
				return NULL;
		}
	}
	return NULL;
}

void *coev__worker_main(void *arg)
{
	struct coev_worker *w = arg;
	struct coev_rt *rt = w->rt;
	coev__entry_t *t;

	/* For debug mode's reports: /proc/self/task/TID tells whether this
	 * thread runs or waits in the kernel (observe/backtrace.c). */
	atomic_store_explicit(&w->tid, (int)syscall(SYS_gettid),
			      memory_order_relaxed);
	coev__stack_thread_init(w);
	coev__switch_thread_init(w);
	/* Acquire: pairs with the release store of stop in stop_workers
	 * (runtime.c). */
	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		t = next_local(w);
		if (!t)
			t = search(w);
		if (!t)
			t = spin(w);
		if (t) {
			stop_searching(w);
			coev__task_run(w, t);
			continue;
		}
		park_worker(w);
	}
	stop_searching(w);
	coev__stack_thread_fini(w);
	return NULL;
}
