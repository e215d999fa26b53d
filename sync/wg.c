/* SPDX-License-Identifier: MIT */
/*
 * sync/wg.c — the wait group: a count that tasks wait to see reach zero
 * (see the family's design at coev__wq_wait_until in sync/internal.h).
 *
 * Lifetime: the last done publishes zero under the lock and then still
 * unlocks, so a wait that sees zero without the lock waits for the unlock
 * before it returns: a group on the waiter's stack (Go's idiom) may go as
 * soon as the wait returns.
 */
#include "internal.h"

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
	bool over;

	coev__spin_lock(&wg->lk);
	/* Checked: the count is a long, and an overflow is the caller's bug
	 * (as a count below zero), not a count that wraps negative. */
	over = __builtin_add_overflow(
		atomic_load_explicit(&wg->count, memory_order_relaxed), n, &c);
	if (!over && c >= 0) {
		/* Release: pairs with the acquire in coev_wg_wait_dl. */
		atomic_store_explicit(&wg->count, c, memory_order_release);
		if (c == 0)
			coev__wq_grant_all(&wg->q, 0, &wk);
	}
	coev__spin_unlock(&wg->lk);
	if (over)
		coev__panic("coev_wg_add: wait group %p count would overflow "
			    "(adding %ld)",
			    (void *)wg, n);
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

	if (!pub)
		return -EINVAL;
	if ((r = coev__sync_may_block()) < 0)
		return r;
	/* Acquire: pairs with the release store in coev_wg_add. */
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
		/* The last done may not have unlocked yet. */
		coev__spin_wait_unlocked(&wg->lk);
		return 0;
	}
	return coev__wq_wait_until(&wg->lk, &wg->q, wg_ready, wg, deadline);
}

int coev_wg_wait(coev_wg_t *wg)
{
	return coev_wg_wait_dl(wg, COEV_FOREVER);
}
