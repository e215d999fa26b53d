/*
 * sync/event.c — objects that make tasks wait until something has
 * happened: the event, the wait group, the barrier and once.
 *
 * Each keeps its condition under its spin lock, next to its wait queue,
 * and wakes every waiter when the condition becomes true (grant_all), so
 * a waiter that gives up late still returns success: it was granted.
 * The event and the wait group also publish their condition in an atomic
 * word, so a wait on a condition already true takes no lock.
 */
#include <stddef.h>

#include "internal.h"

/*
 * Queue the calling waiter on q under lk, unless ready(obj) says the
 * condition already holds (checked under lk). Returns 0 at once when it
 * holds, else the wait's result (the granter's status, or an error).
 */
static int wait_until(atomic_uint *lk, coev__wq_t *q, bool (*ready)(void *),
		      void *obj, coev_time_t deadline,
		      coev__withdrawn_fn withdrawn)
{
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
	coev__spin_lock(lk);
	if (ready(obj)) {
		coev__spin_unlock(lk);
		coev__waiter_abandon(&wt);
		return 0;
	}
	coev__wq_push(q, &n);
	coev__spin_unlock(lk);
	return coev__wq_wait(lk, q, &n, deadline, withdrawn, obj,
			     COEV_WAIT_EVENT, obj);
}

/* --- event ------------------------------------------------------------ */

struct event {
	atomic_uint lk;
	atomic_uint set; /* written under lk */
	coev__wq_t q;	 /* [lk] */
};
COEV__SYNC_LAYOUT(coev_event_t, struct event);

static inline struct event *E(coev_event_t *e)
{
	return (struct event *)(void *)e;
}

int coev_event_init(coev_event_t *pub)
{
	struct event *e = E(pub);

	if (!pub)
		return -EINVAL;
	atomic_init(&e->lk, 0);
	atomic_init(&e->set, 0);
	e->q.head = e->q.tail = NULL;
	return 0;
}

void coev_event_destroy(coev_event_t *pub)
{
	struct event *e = E(pub);

	coev__sync_check_idle(&e->lk, &e->q, "event", e);
}

void coev_event_set(coev_event_t *pub)
{
	struct event *e = E(pub);
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};

	coev__spin_lock(&e->lk);
	/* Release: pairs with the acquire in coev_event_is_set, so what was
	 * written before the set is seen by a waiter that saw it set. */
	atomic_store_explicit(&e->set, 1, memory_order_release);
	coev__wq_grant_all(&e->q, 0, &wk);
	coev__spin_unlock(&e->lk);
	coev__wq_wake(&wk);
}

void coev_event_clear(coev_event_t *pub)
{
	struct event *e = E(pub);

	coev__spin_lock(&e->lk);
	atomic_store_explicit(&e->set, 0, memory_order_relaxed);
	coev__spin_unlock(&e->lk);
}

int coev_event_is_set(coev_event_t *pub)
{
	return (int)atomic_load_explicit(&E(pub)->set, memory_order_acquire);
}

static bool event_ready(void *obj)
{
	struct event *e = obj;

	return atomic_load_explicit(&e->set, memory_order_relaxed) != 0;
}

int coev_event_wait_dl(coev_event_t *pub, coev_time_t deadline)
{
	struct event *e = E(pub);
	int r;

	if ((r = coev__sync_may_block()) < 0)
		return r;
	if (coev_event_is_set(pub))
		return 0;
	return wait_until(&e->lk, &e->q, event_ready, e, deadline, NULL);
}

int coev_event_wait(coev_event_t *e)
{
	return coev_event_wait_dl(e, COEV_FOREVER);
}

/* --- wait group ------------------------------------------------------- */

struct wg {
	atomic_uint lk;
	atomic_long count; /* written under lk */
	coev__wq_t q;	   /* [lk] */
};
COEV__SYNC_LAYOUT(coev_wg_t, struct wg);

static inline struct wg *WG(coev_wg_t *wg)
{
	return (struct wg *)(void *)wg;
}

int coev_wg_init(coev_wg_t *pub)
{
	struct wg *wg = WG(pub);

	if (!pub)
		return -EINVAL;
	atomic_init(&wg->lk, 0);
	atomic_init(&wg->count, 0);
	wg->q.head = wg->q.tail = NULL;
	return 0;
}

void coev_wg_destroy(coev_wg_t *pub)
{
	struct wg *wg = WG(pub);

	coev__sync_check_idle(&wg->lk, &wg->q, "wait group", wg);
}

void coev_wg_add(coev_wg_t *pub, long n)
{
	struct wg *wg = WG(pub);
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	long c;

	coev__spin_lock(&wg->lk);
	c = atomic_load_explicit(&wg->count, memory_order_relaxed) + n;
	if (c >= 0) {
		/* Release: pairs with the acquire in coev_wg_wait_dl. */
		atomic_store_explicit(&wg->count, c, memory_order_release);
		if (c == 0)
			coev__wq_grant_all(&wg->q, 0, &wk);
	}
	coev__spin_unlock(&wg->lk);
	if (c < 0)
		coev__panic("coev_wg_add: wait group %p count would go below "
			    "zero (%ld)",
			    (void *)wg, c);
	coev__wq_wake(&wk);
}

void coev_wg_done(coev_wg_t *wg)
{
	coev_wg_add(wg, -1);
}

static bool wg_ready(void *obj)
{
	struct wg *wg = obj;

	return atomic_load_explicit(&wg->count, memory_order_relaxed) == 0;
}

int coev_wg_wait_dl(coev_wg_t *pub, coev_time_t deadline)
{
	struct wg *wg = WG(pub);
	int r;

	if ((r = coev__sync_may_block()) < 0)
		return r;
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0)
		return 0;
	return wait_until(&wg->lk, &wg->q, wg_ready, wg, deadline, NULL);
}

int coev_wg_wait(coev_wg_t *wg)
{
	return coev_wg_wait_dl(wg, COEV_FOREVER);
}

/* --- barrier ---------------------------------------------------------- */

struct barrier {
	atomic_uint lk;
	unsigned n;	  /* [init] parties */
	unsigned arrived; /* [lk] in this round */
	coev__wq_t q;	  /* [lk] */
};
COEV__SYNC_LAYOUT(coev_barrier_t, struct barrier);

static inline struct barrier *B(coev_barrier_t *b)
{
	return (struct barrier *)(void *)b;
}

int coev_barrier_init(coev_barrier_t *pub, unsigned n)
{
	struct barrier *b = B(pub);

	if (!pub || n == 0)
		return -EINVAL;
	atomic_init(&b->lk, 0);
	b->n = n;
	b->arrived = 0;
	b->q.head = b->q.tail = NULL;
	return 0;
}

void coev_barrier_destroy(coev_barrier_t *pub)
{
	struct barrier *b = B(pub);

	coev__sync_check_idle(&b->lk, &b->q, "barrier", b);
}

/* Under lk: count this party in; true when it completes the round. */
static bool barrier_arrive(void *obj)
{
	struct barrier *b = obj;

	if (++b->arrived < b->n)
		return false;
	b->arrived = 0;
	return true;
}

/* A party gave up before its round completed: take its arrival back. */
static void barrier_withdrawn(void *obj, coev__wake_t *wk)
{
	struct barrier *b = obj;

	(void)wk;
	b->arrived--;
}

int coev_barrier_wait_dl(coev_barrier_t *pub, coev_time_t deadline)
{
	struct barrier *b = B(pub);
	coev__waiter_t wt;
	coev__wnode_t n;
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r;

	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
	coev__spin_lock(&b->lk);
	if (barrier_arrive(b)) {
		coev__wq_grant_all(&b->q, 0, &wk);
		coev__spin_unlock(&b->lk);
		coev__wq_wake(&wk);
		coev__waiter_abandon(&wt);
		return COEV_BARRIER_SERIAL;
	}
	coev__wq_push(&b->q, &n);
	coev__spin_unlock(&b->lk);
	return coev__wq_wait(&b->lk, &b->q, &n, deadline, barrier_withdrawn, b,
			     COEV_WAIT_EVENT, b);
}

int coev_barrier_wait(coev_barrier_t *b)
{
	return coev_barrier_wait_dl(b, COEV_FOREVER);
}

/* --- once ------------------------------------------------------------- */

enum { ONCE_NEW, ONCE_RUNNING, ONCE_DONE };
enum { ONCE_GRANT_DONE = 0, ONCE_GRANT_RETRY = 1 };

struct once {
	atomic_uint lk;
	atomic_uint state;  /* ONCE_*, written under lk */
	coev__wq_t q;	    /* [lk] callers waiting for the runner */
	const void *runner; /* [lk] the caller running fn (coev__sync_self) */
};
COEV__SYNC_LAYOUT(coev_once_t, struct once);

static bool once_not_running(void *obj)
{
	struct once *o = obj;

	return atomic_load_explicit(&o->state, memory_order_relaxed) !=
	       ONCE_RUNNING;
}

/* Run fn as the runner, then publish the outcome and wake the waiters. */
static int once_run(struct once *o, coev_once_cb fn, void *arg)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r = fn(arg);

	coev__spin_lock(&o->lk);
	o->runner = NULL;
	/* Release: pairs with the acquire in coev_once_dl and
	 * coev_once_done: fn's effects are seen by whoever sees DONE. */
	atomic_store_explicit(&o->state, r >= 0 ? ONCE_DONE : ONCE_NEW,
			      memory_order_release);
	coev__wq_grant_all(&o->q, r >= 0 ? ONCE_GRANT_DONE : ONCE_GRANT_RETRY,
			   &wk);
	coev__spin_unlock(&o->lk);
	coev__wq_wake(&wk);
	return r < 0 ? r : 0;
}

int coev_once_dl(coev_once_t *pub, coev_once_cb fn, void *arg,
		 coev_time_t deadline)
{
	struct once *o = (struct once *)(void *)pub;
	unsigned s;
	int r;

	if (!pub || !fn)
		return -EINVAL;
	for (;;) {
		if (atomic_load_explicit(&o->state, memory_order_acquire) ==
		    ONCE_DONE)
			return 0;
		coev__spin_lock(&o->lk);
		s = atomic_load_explicit(&o->state, memory_order_relaxed);
		if (s == ONCE_NEW) {
			atomic_store_explicit(&o->state, ONCE_RUNNING,
					      memory_order_relaxed);
			o->runner = coev__sync_self();
			coev__spin_unlock(&o->lk);
			return once_run(o, fn, arg);
		}
		/* fn called coev_once on its own o: waiting for ourselves
		 * would never end. */
		if (s == ONCE_RUNNING && o->runner == coev__sync_self()) {
			coev__spin_unlock(&o->lk);
			return -EDEADLK;
		}
		coev__spin_unlock(&o->lk);
		if (s == ONCE_DONE)
			continue;
		r = wait_until(&o->lk, &o->q, once_not_running, o, deadline,
			       NULL);
		if (r < 0)
			return r;
		/* Done, or the runner failed: look again. */
	}
}

int coev_once(coev_once_t *o, coev_once_cb fn, void *arg)
{
	return coev_once_dl(o, fn, arg, COEV_FOREVER);
}

int coev_once_done(coev_once_t *pub)
{
	struct once *o = (struct once *)(void *)pub;

	return atomic_load_explicit(&o->state, memory_order_acquire) ==
	       ONCE_DONE;
}
