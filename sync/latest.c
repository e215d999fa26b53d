/* SPDX-License-Identifier: MIT */
/*
 * sync/latest.c — the latest-value channel (coev/latest.h): one value, a
 * version, and the receivers waiting for the version to pass theirs.
 *
 * Model. The value and its version (raised by one per send, never
 * wrapping in 64 bits) are under one spin lock; a receiver holds seen, the
 * version it saw last. A receive with seen < version copies the value and
 * sets seen = version; with seen == version it answers COEV_ECLOSED once
 * closed, else it waits. So a receiver's versions only grow, and it never
 * sees one twice.
 *
 * Waiting follows sync/internal.h's grant-or-withdraw protocol. A send,
 * under the lock, copies the new value into each waiter's buffer, sets its
 * seen to the new version and grants it 0: the grant is the receive, so a
 * waiter whose deadline or cancel comes late succeeds with the value, and
 * one withdrawn was given nothing and keeps its seen. A close grants
 * COEV_ECLOSED: a waiter has seen the current version by then. Woken
 * receivers go where idle workers may take them (COEV_SIG_SHARED), since a
 * send wakes many and goes on running.
 *
 * Scheduling points (the simulation's, sched/platform.h) are the spin
 * lock's and the wake's: every step that another thread could see
 * happens under the lock, and only the signals come after it, so the
 * races worth exploring (a deadline or a cancel against a grant, a
 * receive against a send or a close) all turn at those points.
 *
 * Lifetime: a reference count under the lock, one for the creator and one
 * per receiver (coev_latest_free closes first), as sync/broadcast.c.
 *
 * Rejected: a seqlock for lock-free reads of the value. Receivers copy the
 * value under the lock once per change they see, and a seqlock's reader
 * would copy bytes a writer may be changing (a data race in C11 unless
 * every byte is an atomic).
 */
#include <stdlib.h>
#include <string.h>

#include "coev/latest.h"
#include "internal.h"

#define ELEM_MAX 65536

struct coev_latest {
	atomic_uint lk;
	bool closed;	    /* [lk] */
	size_t esize;	    /* [init] */
	uint64_t version;   /* [lk] sends so far */
	size_t refs;	    /* [lk] the creator's (until free) + receivers */
	coev__wq_t q;	    /* [lk] waiting receivers; wnode.arg: the rx */
	unsigned char *val; /* [init] esize bytes, contents [lk] */
};

struct coev_latest_rx {
	coev_latest_t *w; /* [init] */
	uint64_t seen;	  /* [w->lk] the version it saw last */
	bool waiting;	  /* [w->lk] queued on w->q */
};

int coev_latest_new(coev_latest_t **out, size_t esize, const void *init)
{
	coev_latest_t *w;

	if (!out || esize == 0 || esize > ELEM_MAX)
		return -EINVAL;
	if (!(w = calloc(1, sizeof *w)))
		return -ENOMEM;
	if (!(w->val = calloc(1, esize))) {
		free(w);
		return -ENOMEM;
	}
	if (init)
		memcpy(w->val, init, esize);
	atomic_init(&w->lk, 0);
	w->esize = esize;
	w->refs = 1;
	*out = w;
	return 0;
}

/* Drop one reference under w->lk, which this releases. */
static void release_unlock(coev_latest_t *w)
{
	bool last = --w->refs == 0;

	coev__spin_unlock(&w->lk);
	if (last) {
		/* Nobody can be queued: a waiter holds a reference. */
		free(w->val);
		free(w);
	}
}

/* Close under w->lk: every waiter is granted COEV_ECLOSED onto wk. */
static int close_locked(coev_latest_t *w, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (w->closed)
		return COEV_ECLOSED;
	w->closed = true;
	while ((n = w->q.head) != NULL) {
		((coev_latest_rx_t *)n->arg)->waiting = false;
		coev__wq_grant(&w->q, n, COEV_ECLOSED, wk);
	}
	return 0;
}

int coev_latest_close(coev_latest_t *w)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r;

	if (!w)
		return -EINVAL;
	coev__spin_lock(&w->lk);
	r = close_locked(w, &wk);
	coev__spin_unlock(&w->lk);
	coev__wq_wake(&wk);
	return r;
}

void coev_latest_free(coev_latest_t *w)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};

	if (!w)
		return;
	coev__spin_lock(&w->lk);
	(void)close_locked(w, &wk);
	/* Woken waiters hold references of their own: w outlives them. */
	release_unlock(w);
	coev__wq_wake(&wk);
}

int coev_latest_send(coev_latest_t *w, const void *msg)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	coev__wnode_t *n;
	coev_latest_rx_t *rx;

	if (!w || !msg)
		return -EINVAL;
	coev__spin_lock(&w->lk);
	if (w->closed) {
		coev__spin_unlock(&w->lk);
		return COEV_ECLOSED;
	}
	memcpy(w->val, msg, w->esize);
	w->version++;
	/* Every waiter has seen the previous version: this one is news. */
	while ((n = w->q.head) != NULL) {
		rx = (coev_latest_rx_t *)n->arg;
		if (n->buf) { /* a select's node (buf NULL) is only told */
			memcpy(n->buf, w->val, w->esize);
			rx->seen = w->version;
		}
		rx->waiting = false;
		coev__wq_grant(&w->q, n, 0, &wk);
	}
	coev__spin_unlock(&w->lk);
	coev__wq_wake(&wk);
	return 0;
}

int coev_latest_get(coev_latest_t *w, void *out)
{
	if (!w || !out)
		return -EINVAL;
	coev__spin_lock(&w->lk);
	memcpy(out, w->val, w->esize);
	coev__spin_unlock(&w->lk);
	return 0;
}

int coev_latest_subscribe(coev_latest_t *w, coev_latest_rx_t **out)
{
	coev_latest_rx_t *rx;

	if (!w || !out)
		return -EINVAL;
	if (!(rx = calloc(1, sizeof *rx)))
		return -ENOMEM;
	rx->w = w;
	coev__spin_lock(&w->lk);
	rx->seen = w->version;
	w->refs++;
	coev__spin_unlock(&w->lk);
	*out = rx;
	return 0;
}

void coev_latest_unsubscribe(coev_latest_rx_t *rx)
{
	coev_latest_t *w;

	if (!rx)
		return;
	w = rx->w;
	coev__spin_lock(&w->lk);
	if (rx->waiting) {
		coev__spin_unlock(&w->lk);
		coev__panic("coev_latest_unsubscribe: receiver %p is waiting",
			    (void *)rx);
	}
	release_unlock(w);
	free(rx);
}

/* A waiter gave up before any grant: it is no longer queued. */
static void withdrawn(void *obj, coev__wake_t *wk)
{
	(void)wk;
	((coev_latest_rx_t *)obj)->waiting = false;
}

static int latest_recv(coev_latest_rx_t *rx, void *out, coev_time_t deadline,
		       bool wait)
{
	coev_latest_t *w;
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if (!rx || !out)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	w = rx->w;
	coev__spin_lock(&w->lk);
	if (rx->seen < w->version) {
		memcpy(out, w->val, w->esize);
		rx->seen = w->version;
		coev__spin_unlock(&w->lk);
		return 0;
	}
	r = w->closed ? COEV_ECLOSED : -EAGAIN;
#if defined(COEV_PLANT_LATEST_RECHECK)
	/* Planted bug: the look and the queueing under two holds of the
	 * lock: a send in between is not news to this waiter, which waits
	 * for a later one (and ends on a stale version at the close). */
	if (r == -EAGAIN && wait) {
		coev__spin_unlock(&w->lk);
		coev__spin_lock(&w->lk);
	}
#endif
	if (r != -EAGAIN || !wait || (r = coev__waiter_begin(&wt)) < 0) {
		coev__spin_unlock(&w->lk);
		return r;
	}
	coev__wnode_init(&n, &wt);
	n.buf = out;
	n.arg = (uintptr_t)rx;
	rx->waiting = true;
	coev__wq_push(&w->q, &n);
	coev__spin_unlock(&w->lk);
	return coev__wq_wait(&w->lk, &w->q, &n, deadline, withdrawn, rx,
			     COEV_WAIT_CHANNEL, w);
}

int coev_latest_recv(coev_latest_rx_t *rx, void *out)
{
	return latest_recv(rx, out, COEV_FOREVER, true);
}

int coev_latest_recv_dl(coev_latest_rx_t *rx, void *out, coev_time_t deadline)
{
	return latest_recv(rx, out, deadline, true);
}

int coev_latest_try_recv(coev_latest_rx_t *rx, void *out)
{
	return latest_recv(rx, out, 0, false);
}

int coev_latest_borrow(coev_latest_rx_t *rx, void *out)
{
	coev_latest_t *w;

	if (!rx || !out)
		return -EINVAL;
	w = rx->w;
	coev__spin_lock(&w->lk);
	memcpy(out, w->val, w->esize);
	rx->seen = w->version;
	coev__spin_unlock(&w->lk);
	return 0;
}

uint64_t coev_latest_seen(coev_latest_rx_t *rx)
{
	if (!rx)
		coev__panic("coev_latest_seen: NULL receiver");
	return rx->seen;
}

/* --- a source of select_any (sync/internal.h) ------------------------ */

/* As broadcast.c's: a node without a buffer is told of a send or the
 * close, and the receiver's version does not move, so the value stays
 * for the receive the select makes if it chooses that case. */
int coev__latest_arm(coev_latest_rx_t *rx, coev__wnode_t *n)
{
	coev_latest_t *w = rx->w;
	int ready = 1;

	coev__spin_lock(&w->lk);
	if (rx->seen >= w->version && !w->closed) {
		n->buf = NULL;
		n->arg = (uintptr_t)rx;
		rx->waiting = true;
		coev__wq_push(&w->q, n);
		ready = 0;
	}
	coev__spin_unlock(&w->lk);
	return ready;
}

int coev__latest_disarm(coev_latest_rx_t *rx, coev__wnode_t *n)
{
	coev_latest_t *w = rx->w;
	bool queued;

	coev__spin_lock(&w->lk);
	if ((queued = n->queued)) {
		coev__wq_remove(&w->q, n);
		rx->waiting = false;
	}
	coev__spin_unlock(&w->lk);
	return !queued;
}
