/* SPDX-License-Identifier: MIT */
/*
 * sync/once.c — once: the first caller runs the function while later ones
 * wait for its outcome, and one of them runs it again if it failed (see the
 * family's design at coev__wq_wait_until in sync/internal.h).
 */
#include "internal.h"

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

/* Whether o is done (coev_once_done, and coev_once_dl's fast path). */
static inline bool once_done(struct once *o)
{
	/* Acquire: pairs with the release store in once_run. */
	if (atomic_load_explicit(&o->state, memory_order_acquire) != ONCE_DONE)
		return false;
	/* The runner may not have unlocked yet, and whoever sees o done may
	 * destroy it. */
	coev__spin_wait_unlocked(&o->lk);
	return true;
}

/* Run fn as the runner, then publish the outcome and wake the waiters. */
static int once_run(struct once *o, coev_once_cb fn, void *arg)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r = fn(arg);

	coev__spin_lock(&o->lk);
	o->runner = NULL;
	/* Release: pairs with the acquire in once_done: fn's effects are
	 * seen by whoever sees DONE, who then waits for our unlock. */
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
		if (once_done(o))
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
		r = coev__wq_wait_until(&o->lk, &o->q, once_not_running, o,
					deadline);
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
	if (!pub)
		coev__panic("coev_once_done: NULL once");
	return once_done((struct once *)(void *)pub);
}
