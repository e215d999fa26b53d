/*
 * sync/sem.c — the counting semaphore and the read-write lock: objects
 * that hand out a countable resource in queue order.
 *
 * Semaphore. Invariant: permits are free only while nobody waits (count >
 * 0 implies an empty queue), because a release with waiters hands its
 * permit straight to the head waiter instead of counting it. So a waiter
 * is never overtaken by a later acquirer, and a permit is never both
 * counted and handed over.
 *
 * Read-write lock. `readers` is the number of readers holding it, or -1
 * while a writer does. Waiters queue in order, each marked reader or
 * writer; a newcomer queues whenever anyone is queued, so a waiting writer
 * holds back the readers behind it (writers never starve). dispatch()
 * admits from the head: one writer when the lock is free, or every reader
 * in a row while no writer holds it. It runs after each unlock and after a
 * waiter withdraws (a writer leaving the head may free the readers behind
 * it).
 */
#include <stddef.h>

#include "internal.h"

/* --- semaphore -------------------------------------------------------- */

struct sem {
	atomic_uint lk;
	atomic_uint count; /* [lk] atomic for coev_sem_value's snapshot */
	coev__wq_t q;	   /* [lk] */
};
COEV__SYNC_LAYOUT(coev_sem_t, struct sem);

static inline struct sem *S(coev_sem_t *s)
{
	return (struct sem *)(void *)s;
}

int coev_sem_init(coev_sem_t *pub, unsigned count)
{
	struct sem *s = S(pub);

	if (!pub || count > COEV_SEM_MAX)
		return -EINVAL;
	atomic_init(&s->lk, 0);
	atomic_init(&s->count, count);
	s->q.head = s->q.tail = NULL;
	return 0;
}

void coev_sem_destroy(coev_sem_t *pub)
{
	struct sem *s = S(pub);

	coev__sync_check_idle(&s->lk, &s->q, "semaphore", s);
}

/* Under lk: take a permit if one is free. */
static bool sem_take(struct sem *s)
{
	unsigned c = atomic_load_explicit(&s->count, memory_order_relaxed);

	if (c == 0)
		return false;
	atomic_store_explicit(&s->count, c - 1, memory_order_relaxed);
	return true;
}

int coev_sem_tryacquire(coev_sem_t *pub)
{
	struct sem *s = S(pub);
	bool ok;

	coev__spin_lock(&s->lk);
	ok = sem_take(s);
	coev__spin_unlock(&s->lk);
	return ok ? 0 : -EAGAIN;
}

int coev_sem_acquire_dl(coev_sem_t *pub, coev_time_t deadline)
{
	struct sem *s = S(pub);
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if ((r = coev__sync_may_block()) < 0)
		return r;
	if (coev_sem_tryacquire(pub) == 0)
		return 0;
	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
	coev__spin_lock(&s->lk);
	if (sem_take(s)) {
		coev__spin_unlock(&s->lk);
		coev__waiter_abandon(&wt);
		return 0;
	}
	coev__wq_push(&s->q, &n);
	coev__spin_unlock(&s->lk);
	r = coev__wq_wait(&s->lk, &s->q, &n, deadline, NULL, NULL,
			  COEV_WAIT_SEM, s);
#if defined(COEV_PLANT_SEM_FORGET)
	/* Planted bug: a permit granted to a cancelled waiter is dropped. */
	if (r == 0 && coev_cancelled() == 1)
		return -ECANCELED;
#endif
	return r;
}

int coev_sem_acquire(coev_sem_t *s)
{
	return coev_sem_acquire_dl(s, COEV_FOREVER);
}

int coev_sem_release(coev_sem_t *pub)
{
	struct sem *s = S(pub);
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	unsigned c;
	int r = 0;

	coev__spin_lock(&s->lk);
	c = atomic_load_explicit(&s->count, memory_order_relaxed);
	if (s->q.head)
		coev__wq_grant(&s->q, s->q.head, 0, &wk);
	else if (c >= COEV_SEM_MAX)
		r = -EOVERFLOW;
	else
		atomic_store_explicit(&s->count, c + 1, memory_order_relaxed);
	coev__spin_unlock(&s->lk);
	coev__wq_wake(&wk);
	return r;
}

unsigned coev_sem_value(coev_sem_t *pub)
{
	return atomic_load_explicit(&S(pub)->count, memory_order_relaxed);
}

/* --- read-write lock -------------------------------------------------- */

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
	if (rw->q.head)
		return false;
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
