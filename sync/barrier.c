/* SPDX-License-Identifier: MIT */
/*
 * sync/barrier.c — the barrier: each round's parties wait until the last
 * one arrives, which wakes them all (see the family's design at
 * coev__wq_wait_until in sync/internal.h).
 */
#include "internal.h"

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
#if defined(COEV_PLANT_BARRIER_KEEP)
	/* Planted bug: the arrival of a party that gave up still counts,
	 * so its round completes one party short. */
	(void)b;
#else
	b->arrived--;
#endif
}

int coev_barrier_wait_dl(coev_barrier_t *pub, coev_time_t deadline)
{
	struct barrier *b = B(pub);
	coev__waiter_t wt;
	coev__wnode_t n;
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r;

	if (!pub)
		return -EINVAL;
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
