/* SPDX-License-Identifier: MIT */
/*
 * sync/event.c — the event: a flag that tasks wait to see set (see the
 * family's design at coev__wq_wait_until in sync/internal.h).
 */
#include "internal.h"

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
	/* Release: pairs with the acquire in event_is_set, so what was
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

/* Whether e is set (coev_event_is_set, and coev_event_wait_dl's fast
 * path). */
static inline bool event_is_set(struct event *e)
{
	/* Acquire: pairs with the release store in coev_event_set. */
	if (!atomic_load_explicit(&e->set, memory_order_acquire))
		return false;
	/* The set may not have unlocked yet, and whoever sees e set may
	 * destroy it. */
	coev__spin_wait_unlocked(&e->lk);
	return true;
}

int coev_event_is_set(coev_event_t *pub)
{
	if (!pub)
		coev__panic("coev_event_is_set: NULL event");
	return event_is_set(E(pub));
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

	if (!pub)
		return -EINVAL;
	if ((r = coev__sync_may_block()) < 0)
		return r;
	if (event_is_set(e))
		return 0;
	return coev__wq_wait_until(&e->lk, &e->q, event_ready, e, deadline);
}

int coev_event_wait(coev_event_t *e)
{
	return coev_event_wait_dl(e, COEV_FOREVER);
}

/* --- a source of select_any (sync/internal.h) ------------------------ */

int coev__event_arm(coev_event_t *pub, coev__wnode_t *n)
{
	struct event *e = E(pub);
	int ready = 1;

	coev__spin_lock(&e->lk);
	if (!atomic_load_explicit(&e->set, memory_order_relaxed)) {
		coev__wq_push(&e->q, n);
		ready = 0;
	}
	coev__spin_unlock(&e->lk);
	return ready;
}

int coev__event_disarm(coev_event_t *pub, coev__wnode_t *n)
{
	struct event *e = E(pub);
	bool queued;

	coev__spin_lock(&e->lk);
	if ((queued = n->queued))
		coev__wq_remove(&e->q, n);
	coev__spin_unlock(&e->lk);
	return !queued;
}
