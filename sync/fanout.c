/* SPDX-License-Identifier: MIT */
/*
 * sync/fanout.c — the shared skeleton of the broadcast and latest-value
 * channels (sync/fanout.h): lock, close, free, send, subscribe, receive
 * and the select's arm, written once for both.
 *
 * Everything (the channel's values, each receiver's place, the wait
 * queue, the counts) is under one spin lock; a value is copied in or out
 * under it. A receiver waits only when it has nothing new, so the next
 * send is exactly what it waits for: the sender, under the lock, copies
 * the new value into each waiter's buffer, moves the receiver past it
 * (ops->caught_up) and grants it 0; a close grants COEV_ECLOSED. A waiter
 * whose deadline or cancel comes after its grant succeeds with the value
 * (nothing lost); one withdrawn was given nothing and did not move. Woken
 * receivers are queued where idle workers may take them
 * (COEV_SIG_SHARED): a send wakes many, and the sender goes on running.
 *
 * Scheduling points (the simulation's, sched/platform.h) are the spin
 * lock's and the wake's: every step another thread could see happens
 * under the lock, and only the signals come after it.
 *
 * Lifetime: a reference count under the lock, one for the creator and one
 * per receiver, so receivers may drain a channel whose creator has freed
 * it (free closes it first).
 *
 * A select's node has no buffer (coev__fanout_arm): a send or a close
 * grants it without moving the receiver, so the value stays for the
 * receive the select then makes if it chooses that case.
 */
#include <string.h>

#include "fanout.h"

void coev__fanout_init(coev__fanout_t *f, size_t esize,
		       const coev__fanout_ops_t *ops)
{
	atomic_init(&f->lk, 0);
	f->esize = esize;
	f->ops = ops;
	f->refs = 1;
}

/* Drop one reference under f->lk, which this releases. */
static void release_unlock(coev__fanout_t *f)
{
	bool last = --f->refs == 0;

	coev__spin_unlock(&f->lk);
	/* The last reference: nobody can be queued (a waiter holds one). */
	if (last)
		f->ops->destroy(f);
}

/* Close under f->lk: every waiter is granted COEV_ECLOSED onto wk. */
static int close_locked(coev__fanout_t *f, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (f->closed)
		return COEV_ECLOSED;
	f->closed = true;
	while ((n = f->q.head) != NULL) {
		((coev__fanout_rx_t *)n->arg)->waiting = false;
		coev__wq_grant(&f->q, n, COEV_ECLOSED, wk);
	}
	return 0;
}

int coev__fanout_close(coev__fanout_t *f)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r;

	coev__spin_lock(&f->lk);
	r = close_locked(f, &wk);
	coev__spin_unlock(&f->lk);
	coev__wq_wake(&wk);
	return r;
}

void coev__fanout_free(coev__fanout_t *f)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};

	coev__spin_lock(&f->lk);
	(void)close_locked(f, &wk);
	/* The woken waiters hold references of their own: f stays until
	 * they unsubscribe, so signalling after the release is safe. */
	release_unlock(f);
	coev__wq_wake(&wk);
}

int coev__fanout_send(coev__fanout_t *f, const void *msg, size_t *receivers)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	coev__wnode_t *n;
	coev__fanout_rx_t *rx;
	const void *s;

	coev__spin_lock(&f->lk);
	if (f->closed) {
		coev__spin_unlock(&f->lk);
		return COEV_ECLOSED;
	}
	s = f->ops->store(f, msg);
	/* Every waiter had nothing new before this value: hand it over (the
	 * grant is the receive, so a waiter that gives up late still has
	 * it). */
	while ((n = f->q.head) != NULL) {
		rx = (coev__fanout_rx_t *)n->arg;
		if (n->buf) { /* a select's node (buf NULL) is only told */
			memcpy(n->buf, s, f->esize);
			f->ops->caught_up(rx);
		}
		rx->waiting = false;
		coev__wq_grant(&f->q, n, 0, &wk);
	}
	*receivers = f->receivers;
	coev__spin_unlock(&f->lk);
	coev__wq_wake(&wk);
	return 0;
}

void coev__fanout_subscribe(coev__fanout_t *f, coev__fanout_rx_t *rx)
{
	rx->f = f;
	coev__spin_lock(&f->lk);
	f->ops->join(rx);
	f->receivers++;
	f->refs++;
	coev__spin_unlock(&f->lk);
}

void coev__fanout_unsubscribe(coev__fanout_rx_t *rx, const char *fn)
{
	coev__fanout_t *f = rx->f;

	coev__spin_lock(&f->lk);
	if (rx->waiting) {
		coev__spin_unlock(&f->lk);
		coev__panic("%s: receiver %p is waiting", fn, (void *)rx);
	}
	f->receivers--;
	release_unlock(f);
}

/* A waiter gave up before any grant: it is no longer queued. */
static void withdrawn(void *obj, coev__wake_t *wk)
{
	(void)wk;
	((coev__fanout_rx_t *)obj)->waiting = false;
}

int coev__fanout_recv(coev__fanout_rx_t *rx, void *out, coev_time_t deadline,
		      bool wait)
{
	coev__fanout_t *f = rx->f;
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	coev__spin_lock(&f->lk);
	r = f->ops->take(rx, out);
	if (r == -EAGAIN && f->closed)
		r = COEV_ECLOSED;
	/* The planted bug, when built (fuzz/plants.sh): the look and the
	 * queueing under two holds of the lock, so a send in between is
	 * missed by this receiver. */
	if (f->ops->plant_recheck && r == -EAGAIN && wait) {
		coev__spin_unlock(&f->lk);
		coev__spin_lock(&f->lk);
	}
	if (r != -EAGAIN || !wait || (r = coev__waiter_begin(&wt)) < 0) {
		coev__spin_unlock(&f->lk);
		return r;
	}
	coev__wnode_init(&n, &wt);
	n.buf = out;
	n.arg = (uintptr_t)rx;
	rx->waiting = true;
	coev__wq_push(&f->q, &n);
	coev__spin_unlock(&f->lk);
	return coev__wq_wait(&f->lk, &f->q, &n, deadline, withdrawn, rx,
			     COEV_WAIT_CHANNEL, f);
}

int coev__fanout_arm(coev__fanout_rx_t *rx, coev__wnode_t *n)
{
	coev__fanout_t *f = rx->f;
	int ready = 1;

	coev__spin_lock(&f->lk);
	if (f->ops->idle(rx) && !f->closed) {
		n->buf = NULL;
		n->arg = (uintptr_t)rx;
		rx->waiting = true;
		coev__wq_push(&f->q, n);
		ready = 0;
	}
	coev__spin_unlock(&f->lk);
	return ready;
}

int coev__fanout_disarm(coev__fanout_rx_t *rx, coev__wnode_t *n)
{
	coev__fanout_t *f = rx->f;
	bool queued;

	coev__spin_lock(&f->lk);
	if ((queued = n->queued)) {
		coev__wq_remove(&f->q, n);
		rx->waiting = false;
	}
	coev__spin_unlock(&f->lk);
	return !queued;
}
