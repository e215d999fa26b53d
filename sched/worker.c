/*
 * sched/worker.c — the scheduler loop of one worker, run queues, stealing
 * and parking.
 *
 * Each worker is one thread with one event loop. Where it looks for work,
 * in order (the model is tokio's multi-threaded scheduler and Go's
 * findrunnable):
 *   1. every COEV_TICK_GLOBAL ticks: poll its loop without blocking (due
 *      timers, ready fds) and take from the inject queue first, so neither
 *      starves behind a busy local queue;
 *   2. its inbox: tasks pinned to this worker (resuming after a timed wait
 *      armed on this loop); thieves never look there;
 *   3. the LIFO slot: the task most recently spawned or woken here, for
 *      cache locality in message passing; at most COEV_LIFO_MAX runs in a
 *      row, so the LIFO slot cannot starve the ring;
 *   4. the local ring (ck_ring SPMC, COEV_RUNQ_SIZE slots, FIFO);
 *   5. the inject queue, taking a batch into the ring;
 *   6. stealing: become a searcher (at most half the workers search at
 *      once), then take half of a random victim's ring, visiting every
 *      other worker once from a random start;
 *   7. parking inside its loop (coev__plat_park), woken by the doorbell.
 *
 * Who may touch what: only the owner pushes to its ring and sets its LIFO
 * slot; any worker may pop from the ring (CAS on the consumer head) and
 * take the LIFO slot. Work pushed by a thread that is not a worker of the
 * runtime goes to the inject queue. Pinned tasks go to their worker's inbox.
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

#include "sched.h"
#include "switch.h"

#define SEARCH_ONE ((uint_fast64_t)1)
#define UNPARK_ONE ((uint_fast64_t)1 << 32)
#define N_SEARCHING(s) ((unsigned)((s)&0xffffffffu))
#define N_UNPARKED(s) ((unsigned)((s) >> 32))

/* --- the inject queue ------------------------------------------------- */

void coev__inject_push(coev__inject_t *q, coev_task_t *first,
		       coev_task_t *last, size_t n)
{
	last->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = first;
	else
		q->head = first;
	q->tail = last;
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len,
		memory_order_relaxed) + n, memory_order_relaxed);
	pthread_mutex_unlock(&q->mu);
}

/* Pop up to max tasks as a list; returns the count, *out the first. */
static size_t inject_pop_batch(coev__inject_t *q, size_t max,
			       coev_task_t **out)
{
	size_t n = 0;
	coev_task_t *t, *prev = NULL;

	if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&q->mu);
	t = q->head;
	*out = t;
	while (t && n < max) {
		prev = t;
		t = t->next;
		n++;
	}
	if (prev)
		prev->next = NULL;
	q->head = t;
	if (!t)
		q->tail = NULL;
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len,
		memory_order_relaxed) - n, memory_order_relaxed);
	pthread_mutex_unlock(&q->mu);
	return n;
}

coev_task_t *coev__inject_pop(coev__inject_t *q)
{
	coev_task_t *t = NULL;
	return inject_pop_batch(q, 1, &t) ? t : NULL;
}

/* --- the local ring ---------------------------------------------------- */

/* ck's ring publishes with a store fence and reads slots with memcpy, which
 * ThreadSanitizer cannot see: the release/acquire pair below names the
 * edge (the enqueue's fence + p_tail store pairs with the dequeue's load of
 * p_tail). A thief's read of a slot that the CAS then rejects is the ring's
 * designed, validated race; reads inside the dequeue are not reported. */
#if defined(COEV_TSAN)
void __tsan_ignore_reads_begin(void);
void __tsan_ignore_reads_end(void);
#define RING_READS_BEGIN() __tsan_ignore_reads_begin()
#define RING_READS_END() __tsan_ignore_reads_end()
#else
#define RING_READS_BEGIN() ((void)0)
#define RING_READS_END() ((void)0)
#endif

static coev_task_t *ring_pop(struct coev_worker *v)
{
	void *p;
	bool ok;

	RING_READS_BEGIN();
	ok = ck_ring_dequeue_spmc(&v->ring, v->buf, &p);
	RING_READS_END();
	if (!ok)
		return NULL;
	COEV_TSAN_ACQUIRE(&v->ring);
	return p;
}

/* Owner only. When the ring is full, half of it and t go to the inject
 * queue in one batch (Go's runqputslow). */
static void ring_push(struct coev_worker *w, coev_task_t *t)
{
	coev_task_t *first = NULL, *last = NULL, *x;
	size_t n = 0, half;

	COEV_TSAN_RELEASE(&w->ring);
	if (ck_ring_enqueue_spmc(&w->ring, w->buf, t))
		return;
	half = ck_ring_capacity(&w->ring) / 2;
	while (n < half && (x = ring_pop(w)) != NULL) {
		if (last)
			last->next = x;
		else
			first = x;
		last = x;
		n++;
	}
	if (last)
		last->next = t;
	else
		first = t;
	coev__inject_push(&w->rt->inject, first, t, n + 1);
}

/* --- idle workers ------------------------------------------------------ */

void coev__notify_parked(struct coev_rt *rt)
{
	uint_fast64_t s;
	unsigned i;
	struct coev_worker *v;

	/* Pairs with the seq_cst RMW of idle_state in park_worker(): either
	 * the parker's re-check sees our push, or we see it asleep. */
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
	atomic_fetch_add_explicit(&rt->idle_state, SEARCH_ONE + UNPARK_ONE,
				  memory_order_seq_cst);
	pthread_mutex_unlock(&rt->idle_mu);
	coev__plat_unpark(v);
}

static bool try_become_searching(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	uint_fast64_t s;

	if (w->searching)
		return true;
	s = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
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
	prev = atomic_fetch_sub_explicit(&w->rt->idle_state, SEARCH_ONE,
					 memory_order_seq_cst);
	if (N_SEARCHING(prev) == 1)
		coev__notify_parked(w->rt);
}

static bool any_work(struct coev_rt *rt)
{
	if (atomic_load_explicit(&rt->inject.len, memory_order_relaxed))
		return true;
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (ck_ring_size(&rt->workers[i]->ring) ||
		    atomic_load_explicit(&rt->workers[i]->lifo,
					 memory_order_relaxed))
			return true;
	return false;
}

static void park_worker(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	uint_fast64_t dec = UNPARK_ONE, prev;
	bool last_searcher;

	pthread_mutex_lock(&rt->idle_mu);
	if (w->searching)
		dec += SEARCH_ONE;
	prev = atomic_fetch_sub_explicit(&rt->idle_state, dec,
					 memory_order_seq_cst);
	last_searcher = w->searching && N_SEARCHING(prev) == 1;
	w->searching = false;
	w->sleeping = true;
	rt->sleepers[rt->nsleepers++] = w->index;
	pthread_mutex_unlock(&rt->idle_mu);

	if (last_searcher && any_work(rt))
		coev__notify_parked(rt);
	if (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		atomic_fetch_add_explicit(&w->st.parks, 1, memory_order_relaxed);
		coev__plat_park(w);
	}

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
		atomic_fetch_add_explicit(&rt->idle_state, UNPARK_ONE,
					  memory_order_seq_cst);
	} else {
		/* The notifier counted us as searching. */
		w->searching = true;
	}
	pthread_mutex_unlock(&rt->idle_mu);
}

/* --- scheduling ---------------------------------------------------------- */

void coev__schedule_pinned(coev_task_t *t)
{
	struct coev_worker *p = t->pin;

	coev__inject_push(&p->inbox, t, t, 1);
	coev__plat_unpark(p);
}

void coev__schedule(coev_task_t *t, bool yielded)
{
	struct coev_worker *w;
	coev_task_t *prev;

	if (t->pin) {
		coev__schedule_pinned(t);
		return;
	}
	w = coev__worker_self();
	if (!w || w->rt != t->rt) {
		coev__inject_push(&t->rt->inject, t, t, 1);
		coev__notify_parked(t->rt);
		return;
	}
	if (yielded) {
		ring_push(w, t);
	} else {
		prev = atomic_exchange_explicit(&w->lifo, t,
						memory_order_acq_rel);
		if (prev)
			ring_push(w, prev);
	}
	coev__notify_parked(w->rt);
}

/* Take half of v's ring into w's; returns one task to run now. */
static coev_task_t *steal_from(struct coev_worker *w, struct coev_worker *v)
{
	unsigned n = ck_ring_size(&v->ring), take, got = 0;
	coev_task_t *first = NULL, *t;

	if (n == 0)
		return NULL;
	take = n - n / 2;
	while (got < take && (t = ring_pop(v)) != NULL) {
		if (!first)
			first = t;
		else
			ring_push(w, t);
		got++;
	}
	if (got) {
		atomic_fetch_add_explicit(&w->st.stolen, got,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&w->st.steal_ops, 1,
					  memory_order_relaxed);
	}
	return first;
}

static coev_task_t *take_inject(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	coev_task_t *first = NULL, *t, *next;
	size_t len = atomic_load_explicit(&rt->inject.len, memory_order_relaxed);
	size_t max, n;

	if (!len)
		return NULL;
	max = len / rt->nworkers + 1;
	if (max > COEV_RUNQ_SIZE / 2)
		max = COEV_RUNQ_SIZE / 2;
	n = inject_pop_batch(&rt->inject, max, &first);
	if (!n)
		return NULL;
	atomic_fetch_add_explicit(&w->st.inject_pops, n, memory_order_relaxed);
	for (t = first->next; t; t = next) {
		next = t->next;
		ring_push(w, t);
	}
	return first;
}

static coev_task_t *next_local(struct coev_worker *w)
{
	coev_task_t *t;

	if (++w->tick % COEV_TICK_GLOBAL == 0) {
		coev__plat_poll(w);
		if ((t = take_inject(w)) != NULL)
			return t;
	}
	if (atomic_load_explicit(&w->inbox.len, memory_order_relaxed) &&
	    (t = coev__inject_pop(&w->inbox)) != NULL)
		return t;
	if (w->lifo_runs < COEV_LIFO_MAX &&
	    atomic_load_explicit(&w->lifo, memory_order_relaxed) &&
	    (t = atomic_exchange_explicit(&w->lifo, NULL,
					  memory_order_acq_rel)) != NULL) {
		w->lifo_runs++;
		return t;
	}
	w->lifo_runs = 0;
	if ((t = ring_pop(w)) != NULL)
		return t;
	if ((t = atomic_exchange_explicit(&w->lifo, NULL,
					  memory_order_acq_rel)) != NULL)
		return t;
	return take_inject(w);
}

static coev_task_t *search(struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;
	unsigned n = rt->nworkers, start, i;
	coev_task_t *t;

	coev__plat_poll(w);
	if (atomic_load_explicit(&w->inbox.len, memory_order_relaxed) &&
	    (t = coev__inject_pop(&w->inbox)) != NULL)
		return t;
	if (n > 1 && try_become_searching(w)) {
		start = coev__plat_choose(w, n);
		for (i = 0; i < n; i++) {
			struct coev_worker *v = rt->workers[(start + i) % n];
			if (v != w && (t = steal_from(w, v)) != NULL)
				return t;
		}
	}
	return take_inject(w);
}

void *coev__worker_main(void *arg)
{
	struct coev_worker *w = arg;
	struct coev_rt *rt = w->rt;
	coev_task_t *t;

	coev__stack_thread_init(w);
	coev__switch_thread_init(w);
	while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
		t = next_local(w);
		if (!t)
			t = search(w);
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
