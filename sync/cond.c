/* SPDX-License-Identifier: MIT */
/*
 * sync/cond.c — the condition variable: a wait queue of its own, used with
 * a mutex (sync/mutex.c) that a waiter releases while it waits and takes
 * again, strictly (relock), before it returns.
 */
#include "internal.h"

struct cond {
	atomic_uint lk;
	coev__wq_t q; /* [lk] */
};
COEV__SYNC_LAYOUT(coev_cond_t, struct cond);

static inline struct cond *C(coev_cond_t *c)
{
	return (struct cond *)(void *)c;
}

int coev_cond_init(coev_cond_t *pub)
{
	struct cond *c = C(pub);

	if (!pub)
		return -EINVAL;
	atomic_init(&c->lk, 0);
	c->q.head = c->q.tail = NULL;
	return 0;
}

void coev_cond_destroy(coev_cond_t *pub)
{
	struct cond *c = C(pub);

	coev__sync_check_idle(&c->lk, &c->q, "condition variable", c);
}

/* Take m again after a condition wait: as long as it takes, whatever the
 * task's cancellation or pushed deadline, since the caller must hold m on
 * return. */
static void relock(coev_mutex_t *m)
{
	coev_task_t *t = coev__task_self();
	coev_time_t limit = 0;

	if (t)
		limit = coev__strict_begin(t);
	if (coev_mutex_lock_dl(m, COEV_FOREVER) != 0)
		coev__panic("condition variable: re-locking mutex %p failed",
			    (void *)m);
	if (t)
		coev__strict_end(t, limit);
}

int coev_cond_wait_dl(coev_cond_t *pub, coev_mutex_t *m, coev_time_t deadline)
{
	struct cond *c = C(pub);
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if (!pub || !m)
		return -EINVAL;
	if (!coev__mutex_held(m))
		coev__panic("coev_cond_wait: mutex %p is not held by the "
			    "caller",
			    (void *)m);
	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
#if defined(COEV_PLANT_COND_UNLOCK_EARLY)
	/* Planted bug: the mutex is released before the waiter is queued,
	 * so a signal sent in between finds nobody and is lost. */
	coev__mutex_unlock_checked(m, "coev_cond_wait");
#endif
	coev__spin_lock(&c->lk);
	coev__wq_push(&c->q, &n);
	coev__spin_unlock(&c->lk);
#if !defined(COEV_PLANT_COND_UNLOCK_EARLY)
	/* Queued before the unlock: a signal sent after it finds us. */
	coev__mutex_unlock_checked(m, "coev_cond_wait");
#endif
	r = coev__wq_wait(&c->lk, &c->q, &n, deadline, NULL, NULL,
			  COEV_WAIT_COND, c);
#if defined(COEV_PLANT_COND_LATE)
	/* Planted bug: a wake that lands after the deadline is reported
	 * as a timeout, and the signal it was is lost. */
	if (r == 0 && deadline != COEV_FOREVER && coev__plat_now() >= deadline)
		r = -ETIMEDOUT;
#endif
	relock(m);
	return r;
}

int coev_cond_wait(coev_cond_t *c, coev_mutex_t *m)
{
	return coev_cond_wait_dl(c, m, COEV_FOREVER);
}

static void cond_wake(struct cond *c, bool all)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};

	coev__spin_lock(&c->lk);
	if (all)
		coev__wq_grant_all(&c->q, 0, &wk);
	else if (c->q.head)
		coev__wq_grant(&c->q, c->q.head, 0, &wk);
	coev__spin_unlock(&c->lk);
	coev__wq_wake(&wk);
}

void coev_cond_signal(coev_cond_t *c)
{
	cond_wake(C(c), false);
}

void coev_cond_broadcast(coev_cond_t *c)
{
	cond_wake(C(c), true);
}
