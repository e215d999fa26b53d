/* SPDX-License-Identifier: MIT */
/*
 * sync/broadcast.c — the broadcast channel (coev/broadcast.h): a ring of
 * the last n values, one position per receiver.
 *
 * Model. Every value sent gets the next position of one sequence (tail,
 * counted from 0, never wrapping in 64 bits); the value at position p sits
 * in slot p mod n until position p + n overwrites it, so the ring keeps
 * positions [tail - n, tail). A receiver holds next, the position it reads
 * next. Receiving is a comparison of next with that window:
 *   next < tail - n   lagged: it missed (tail - n) - next values; next
 *                     jumps to tail - n and the call says COEV_ELAGGED;
 *   next < tail       the value at next, and next + 1;
 *   next == tail      nothing new: COEV_ECLOSED once closed, else wait.
 * Everything (the ring, tail, each receiver's next, the wait queue, the
 * counts) is under one spin lock; a value is copied in or out under it.
 *
 * Waiting follows sync/internal.h's grant-or-withdraw protocol. A receiver
 * waits only with next == tail, so the next send is exactly what it waits
 * for: the sender, under the lock, copies the new value into each waiter's
 * buffer, moves its next past it and grants it 0; a close grants
 * COEV_ECLOSED. A waiter whose deadline or cancel comes after its grant
 * succeeds with the value (nothing lost); one withdrawn was given nothing
 * and its next did not move. Woken receivers are queued where idle
 * workers may take them (COEV_SIG_SHARED): a send wakes many, and the
 * sender goes on running.
 *
 * Scheduling points (the simulation's, sched/platform.h) are the spin
 * lock's and the wake's: every step that another thread could see
 * happens under the lock, and only the signals come after it, so the
 * races worth exploring (a deadline or a cancel against a grant, a
 * receive against a send or a close) all turn at those points.
 *
 * Lifetime: a reference count under the lock, one for the creator and one
 * per receiver, so receivers may drain a channel whose sender has freed it
 * (coev_bcast_free closes it first).
 *
 * A select over mixed sources (bridge/select_any.c) waits with a node
 * that has no buffer (coev__bcast_arm): a send or a close grants it
 * without moving the receiver's next, so the value stays for the
 * receive the select then makes if it chooses that case, and is not
 * taken if it does not.
 *
 * Rejected: tokio's design, a lock per slot and a lock-free tail so that
 * receivers read in parallel. Receivers here copy small values under one
 * lock; a broadcast's traffic is one send fanned out, where the sender's
 * copies to waiting receivers already happen under the lock once per
 * receiver. Rejected too: sends that wait for the slowest receiver (a
 * slow receiver would stall every other one; tokio and this channel tell
 * it how much it missed instead).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "coev/broadcast.h"
#include "internal.h"

#define ELEM_MAX 65536
#define CAP_MAX ((size_t)1 << 20)

struct coev_bcast {
	atomic_uint lk;
	bool closed;	     /* [lk] */
	size_t esize, cap;   /* [init] */
	uint64_t tail;	     /* [lk] positions sent so far */
	size_t receivers;    /* [lk] subscribed */
	size_t refs;	     /* [lk] the creator's (until free) + receivers */
	coev__wq_t q;	     /* [lk] waiting receivers; wnode.arg: the rx */
	unsigned char *ring; /* [init] cap * esize bytes, contents [lk] */
};

struct coev_bcast_rx {
	coev_bcast_t *b; /* [init] */
	uint64_t next;	 /* [b->lk] the position it reads next */
	uint64_t missed; /* [owner] the last COEV_ELAGGED's count */
	bool waiting;	 /* [b->lk] queued on b->q */
};

int coev_bcast_new(coev_bcast_t **out, size_t esize, size_t cap)
{
	coev_bcast_t *b;

	if (!out || esize == 0 || esize > ELEM_MAX || cap == 0 || cap > CAP_MAX)
		return -EINVAL;
	if (!(b = calloc(1, sizeof *b)))
		return -ENOMEM;
	if (!(b->ring = malloc(cap * esize))) {
		free(b);
		return -ENOMEM;
	}
	atomic_init(&b->lk, 0);
	b->esize = esize;
	b->cap = cap;
	b->refs = 1;
	*out = b;
	return 0;
}

static void bcast_destroy(coev_bcast_t *b)
{
	/* The last reference: nobody can be queued (a waiter holds one). */
	free(b->ring);
	free(b);
}

/* Drop one reference under b->lk, which this releases. */
static void release_unlock(coev_bcast_t *b)
{
	bool last = --b->refs == 0;

	coev__spin_unlock(&b->lk);
	if (last)
		bcast_destroy(b);
}

/* Close under b->lk: every waiter is granted COEV_ECLOSED onto wk. */
static int close_locked(coev_bcast_t *b, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (b->closed)
		return COEV_ECLOSED;
	b->closed = true;
	while ((n = b->q.head) != NULL) {
		((coev_bcast_rx_t *)n->arg)->waiting = false;
		coev__wq_grant(&b->q, n, COEV_ECLOSED, wk);
	}
	return 0;
}

int coev_bcast_close(coev_bcast_t *b)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r;

	if (!b)
		return -EINVAL;
	coev__spin_lock(&b->lk);
	r = close_locked(b, &wk);
	coev__spin_unlock(&b->lk);
	coev__wq_wake(&wk);
	return r;
}

void coev_bcast_free(coev_bcast_t *b)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};

	if (!b)
		return;
	coev__spin_lock(&b->lk);
	(void)close_locked(b, &wk);
	/* The woken waiters hold references of their own: b stays until
	 * they unsubscribe, so signalling after the release is safe. */
	release_unlock(b);
	coev__wq_wake(&wk);
}

size_t coev_bcast_receivers(coev_bcast_t *b)
{
	size_t n;

	if (!b)
		coev__panic("coev_bcast_receivers: NULL channel");
	coev__spin_lock(&b->lk);
	n = b->receivers;
	coev__spin_unlock(&b->lk);
	return n;
}

static inline unsigned char *slot(coev_bcast_t *b, uint64_t pos)
{
	return b->ring + (size_t)(pos % b->cap) * b->esize;
}

int coev_bcast_send(coev_bcast_t *b, const void *msg)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	coev__wnode_t *n;
	coev_bcast_rx_t *rx;
	unsigned char *s;
	size_t count;

	if (!b || !msg)
		return -EINVAL;
	coev__spin_lock(&b->lk);
	if (b->closed) {
		coev__spin_unlock(&b->lk);
		return COEV_ECLOSED;
	}
	s = slot(b, b->tail);
	memcpy(s, msg, b->esize);
	b->tail++;
	/* Every waiter waits with next == the old tail: hand it this value
	 * (the grant is the receive, so a waiter that gives up late still
	 * has it). */
	while ((n = b->q.head) != NULL) {
		rx = (coev_bcast_rx_t *)n->arg;
		if (n->buf) { /* a select's node (buf NULL) is only told */
			memcpy(n->buf, s, b->esize);
			rx->next = b->tail;
		}
		rx->waiting = false;
		coev__wq_grant(&b->q, n, 0, &wk);
	}
	count = b->receivers;
	coev__spin_unlock(&b->lk);
	coev__wq_wake(&wk);
	return count > INT_MAX ? INT_MAX : (int)count;
}

int coev_bcast_subscribe(coev_bcast_t *b, coev_bcast_rx_t **out)
{
	coev_bcast_rx_t *rx;

	if (!b || !out)
		return -EINVAL;
	if (!(rx = calloc(1, sizeof *rx)))
		return -ENOMEM;
	rx->b = b;
	coev__spin_lock(&b->lk);
	rx->next = b->tail;
	b->receivers++;
	b->refs++;
	coev__spin_unlock(&b->lk);
	*out = rx;
	return 0;
}

void coev_bcast_unsubscribe(coev_bcast_rx_t *rx)
{
	coev_bcast_t *b;

	if (!rx)
		return;
	b = rx->b;
	coev__spin_lock(&b->lk);
	if (rx->waiting) {
		coev__spin_unlock(&b->lk);
		coev__panic("coev_bcast_unsubscribe: receiver %p is waiting",
			    (void *)rx);
	}
	b->receivers--;
	release_unlock(b);
	free(rx);
}

/* The oldest position the ring still keeps. */
static inline uint64_t oldest(const coev_bcast_t *b)
{
	return b->tail > b->cap ? b->tail - b->cap : 0;
}

/* One receive attempt under the lock: 0, COEV_ELAGGED, COEV_ECLOSED or
 * -EAGAIN (nothing new, open). */
static int recv_locked(coev_bcast_rx_t *rx, void *out)
{
	coev_bcast_t *b = rx->b;
	uint64_t first = oldest(b);

	if (rx->next < first) {
		rx->missed = first - rx->next;
		rx->next = first;
		return COEV_ELAGGED;
	}
	if (rx->next < b->tail) {
		memcpy(out, slot(b, rx->next), b->esize);
		rx->next++;
		return 0;
	}
	return b->closed ? COEV_ECLOSED : -EAGAIN;
}

/* A waiter gave up before any grant: it is no longer queued. */
static void withdrawn(void *obj, coev__wake_t *wk)
{
	(void)wk;
	((coev_bcast_rx_t *)obj)->waiting = false;
}

static int bcast_recv(coev_bcast_rx_t *rx, void *out, coev_time_t deadline,
		      bool wait)
{
	coev_bcast_t *b;
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if (!rx || !out)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	b = rx->b;
	coev__spin_lock(&b->lk);
	r = recv_locked(rx, out);
#if defined(COEV_PLANT_BCAST_RECHECK)
	/* Planted bug: the look and the queueing under two holds of the
	 * lock: a send in between is skipped (its value never reaches this
	 * receiver, with no COEV_ELAGGED to say so). */
	if (r == -EAGAIN && wait) {
		coev__spin_unlock(&b->lk);
		coev__spin_lock(&b->lk);
	}
#endif
	if (r != -EAGAIN || !wait || (r = coev__waiter_begin(&wt)) < 0) {
		coev__spin_unlock(&b->lk);
		return r;
	}
	coev__wnode_init(&n, &wt);
	n.buf = out;
	n.arg = (uintptr_t)rx;
	rx->waiting = true;
	coev__wq_push(&b->q, &n);
	coev__spin_unlock(&b->lk);
	return coev__wq_wait(&b->lk, &b->q, &n, deadline, withdrawn, rx,
			     COEV_WAIT_CHANNEL, b);
}

int coev_bcast_recv(coev_bcast_rx_t *rx, void *out)
{
	return bcast_recv(rx, out, COEV_FOREVER, true);
}

int coev_bcast_recv_dl(coev_bcast_rx_t *rx, void *out, coev_time_t deadline)
{
	return bcast_recv(rx, out, deadline, true);
}

int coev_bcast_try_recv(coev_bcast_rx_t *rx, void *out)
{
	return bcast_recv(rx, out, 0, false);
}

uint64_t coev_bcast_missed(coev_bcast_rx_t *rx)
{
	if (!rx)
		coev__panic("coev_bcast_missed: NULL receiver");
	return rx->missed;
}

size_t coev_bcast_pending(coev_bcast_rx_t *rx)
{
	coev_bcast_t *b;
	uint64_t from;
	size_t n;

	if (!rx)
		coev__panic("coev_bcast_pending: NULL receiver");
	b = rx->b;
	coev__spin_lock(&b->lk);
	from = rx->next > oldest(b) ? rx->next : oldest(b);
	n = (size_t)(b->tail - from);
	coev__spin_unlock(&b->lk);
	return n;
}

/* --- a source of select_any (sync/internal.h) ------------------------ */

int coev__bcast_arm(coev_bcast_rx_t *rx, coev__wnode_t *n)
{
	coev_bcast_t *b = rx->b;
	int ready = 1;

	coev__spin_lock(&b->lk);
	/* A lagging receiver has next < tail too: a receive answers now. */
	if (rx->next >= b->tail && !b->closed) {
		n->buf = NULL;
		n->arg = (uintptr_t)rx;
		rx->waiting = true;
		coev__wq_push(&b->q, n);
		ready = 0;
	}
	coev__spin_unlock(&b->lk);
	return ready;
}

int coev__bcast_disarm(coev_bcast_rx_t *rx, coev__wnode_t *n)
{
	coev_bcast_t *b = rx->b;
	bool queued;

	coev__spin_lock(&b->lk);
	if ((queued = n->queued)) {
		coev__wq_remove(&b->q, n);
		rx->waiting = false;
	}
	coev__spin_unlock(&b->lk);
	return !queued;
}
