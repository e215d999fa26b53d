/* SPDX-License-Identifier: MIT */
/*
 * sync/sem.c — the counting semaphore.
 *
 * Invariant: permits are free only while nobody waits (count > 0 implies
 * an empty queue), because a release with waiters hands its permit
 * straight to the head waiter instead of counting it. So a waiter is never
 * overtaken by a later acquirer, and a permit is never both counted and
 * handed over.
 */
#include "internal.h"

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

	if (!pub)
		return -EINVAL;
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

	if (!pub)
		return -EINVAL;
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

	if (!pub)
		return -EINVAL;
	coev__spin_lock(&s->lk);
	c = atomic_load_explicit(&s->count, memory_order_relaxed);
#if defined(COEV_PLANT_SEM_LIFO)
	/* Planted bug: the permit goes to the newest waiter, not the
	 * longest. */
	if (s->q.head)
		coev__wq_grant(&s->q, s->q.tail, 0, &wk);
#else
	if (s->q.head)
		coev__wq_grant(&s->q, s->q.head, 0, &wk);
#endif
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
	if (!pub)
		coev__panic("coev_sem_value: NULL semaphore");
	return atomic_load_explicit(&S(pub)->count, memory_order_relaxed);
}
