/* SPDX-License-Identifier: MIT */
/*
 * sync/rwlock.c — the read-write lock.
 *
 * `readers` is the number of readers holding it, or -1 while a writer
 * does. Waiters queue in order, each marked reader or writer; a newcomer
 * queues whenever anyone is queued, so a waiting writer holds back the
 * readers behind it (writers never starve). dispatch() admits from the
 * head: one writer when the lock is free, or every reader in a row while
 * no writer holds it. It runs after each unlock and after a waiter
 * withdraws (a writer leaving the head may free the readers behind it).
 */
#include "internal.h"

enum { RW_READ = 0, RW_WRITE = 1 }; /* a wait node's arg */

struct rwlock {
	atomic_uint lk;
	int readers;		      /* [lk] holders, or -1 for a writer */
	coev__wq_t q;		      /* [lk] */
	_Atomic(const void *) writer; /* [holder] the write holder */
};
COEV__SYNC_LAYOUT(coev_rwlock_t, struct rwlock);

static inline struct rwlock *RW(coev_rwlock_t *rw)
{
	return (struct rwlock *)(void *)rw;
}

int coev_rwlock_init(coev_rwlock_t *pub)
{
	struct rwlock *rw = RW(pub);

	if (!pub)
		return -EINVAL;
	atomic_init(&rw->lk, 0);
	rw->readers = 0;
	rw->q.head = rw->q.tail = NULL;
	atomic_init(&rw->writer, NULL);
	return 0;
}

void coev_rwlock_destroy(coev_rwlock_t *pub)
{
	struct rwlock *rw = RW(pub);

	coev__sync_check_idle(&rw->lk, &rw->q, "rwlock", rw);
}

/* Under lk: admit whoever the queue's head allows (see the top). */
static void dispatch(void *obj, coev__wake_t *wk)
{
	struct rwlock *rw = obj;
	coev__wnode_t *n;

	while ((n = rw->q.head) != NULL) {
		if (n->arg == RW_WRITE) {
			if (rw->readers != 0)
				return;
			rw->readers = -1;
			coev__wq_grant(&rw->q, n, 0, wk);
			return;
		}
		if (rw->readers < 0)
			return;
		rw->readers++;
		coev__wq_grant(&rw->q, n, 0, wk);
	}
}

/* Under lk: take rw now if that is allowed without waiting. */
static bool rw_take(struct rwlock *rw, int kind)
{
#if defined(COEV_PLANT_RWLOCK_BARGE)
	/* Planted bug: a reader joins the readers holding the lock past a
	 * queued writer, which may then wait as long as readers come. */
	if (rw->q.head && kind == RW_WRITE)
		return false;
#else
	if (rw->q.head)
		return false;
#endif
	if (kind == RW_READ && rw->readers >= 0) {
		rw->readers++;
		return true;
	}
	if (kind == RW_WRITE && rw->readers == 0) {
		rw->readers = -1;
		return true;
	}
	return false;
}

static int rw_lock(struct rwlock *rw, int kind, coev_time_t deadline, bool wait)
{
	const void *self = coev__sync_self();
	coev__waiter_t wt;
	coev__wnode_t n;
	int r = 0;

	if (!rw)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	/* Only a wait could deadlock: a try by the writer just fails. */
	if (wait && kind == RW_WRITE &&
	    atomic_load_explicit(&rw->writer, memory_order_relaxed) == self)
		return -EDEADLK;
	if (wait && (r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__spin_lock(&rw->lk);
	if (rw_take(rw, kind)) {
		coev__spin_unlock(&rw->lk);
		if (wait)
			coev__waiter_abandon(&wt);
	} else if (!wait) {
		coev__spin_unlock(&rw->lk);
		return -EBUSY;
	} else {
		coev__wnode_init(&n, &wt);
		n.arg = (uintptr_t)kind;
		coev__wq_push(&rw->q, &n);
		coev__spin_unlock(&rw->lk);
		r = coev__wq_wait(&rw->lk, &rw->q, &n, deadline, dispatch, rw,
				  COEV_WAIT_SEM, rw);
#if defined(COEV_PLANT_RWLOCK_LATE)
		/* Planted bug: a grant that lands after the deadline is
		 * reported as a timeout, and the hold it gave is never
		 * released. */
		if (r == 0 && deadline != COEV_FOREVER &&
		    coev__plat_now() >= deadline)
			return -ETIMEDOUT;
#endif
		if (r < 0)
			return r;
	}
	if (kind == RW_WRITE)
		atomic_store_explicit(&rw->writer, self, memory_order_relaxed);
	return 0;
}

int coev_rwlock_rdlock_dl(coev_rwlock_t *rw, coev_time_t deadline)
{
	return rw_lock(RW(rw), RW_READ, deadline, true);
}

int coev_rwlock_rdlock(coev_rwlock_t *rw)
{
	return rw_lock(RW(rw), RW_READ, COEV_FOREVER, true);
}

int coev_rwlock_tryrdlock(coev_rwlock_t *rw)
{
	return rw_lock(RW(rw), RW_READ, 0, false);
}

int coev_rwlock_wrlock_dl(coev_rwlock_t *rw, coev_time_t deadline)
{
	return rw_lock(RW(rw), RW_WRITE, deadline, true);
}

int coev_rwlock_wrlock(coev_rwlock_t *rw)
{
	return rw_lock(RW(rw), RW_WRITE, COEV_FOREVER, true);
}

int coev_rwlock_trywrlock(coev_rwlock_t *rw)
{
	return rw_lock(RW(rw), RW_WRITE, 0, false);
}

static void rw_unlock(struct rwlock *rw, int kind)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	bool bad;

	if (kind == RW_WRITE) {
		if (atomic_load_explicit(&rw->writer, memory_order_relaxed) !=
		    coev__sync_self())
			coev__panic("coev_rwlock_wrunlock: rwlock %p is not "
				    "write-locked by the caller",
				    (void *)rw);
		atomic_store_explicit(&rw->writer, NULL, memory_order_relaxed);
	}
	coev__spin_lock(&rw->lk);
	bad = kind == RW_WRITE ? rw->readers != -1 : rw->readers <= 0;
	if (!bad) {
		rw->readers = kind == RW_WRITE ? 0 : rw->readers - 1;
		dispatch(rw, &wk);
	}
	coev__spin_unlock(&rw->lk);
	if (bad)
		coev__panic("%s: rwlock %p is not %s-locked",
			    kind == RW_WRITE ? "coev_rwlock_wrunlock"
					     : "coev_rwlock_rdunlock",
			    (void *)rw, kind == RW_WRITE ? "write" : "read");
	coev__wq_wake(&wk);
}

void coev_rwlock_rdunlock(coev_rwlock_t *rw)
{
	rw_unlock(RW(rw), RW_READ);
}

void coev_rwlock_wrunlock(coev_rwlock_t *rw)
{
	rw_unlock(RW(rw), RW_WRITE);
}
