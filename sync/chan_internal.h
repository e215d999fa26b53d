/* SPDX-License-Identifier: MIT */
/*
 * sync/chan_internal.h — what the channel (sync/chan.c) shares with select
 * (sync/select.c): the channel's layout, a waiting select's state, and one
 * attempt at a send or a receive under the channel's lock. Not installed.
 */
#ifndef COEV_SYNC_CHAN_INTERNAL_H
#define COEV_SYNC_CHAN_INTERNAL_H

#include <stdalign.h>

#include "internal.h"

#define COEV__CHAN_LINE 64

/*
 * The layout (sync/chan.c explains the protocol). Four cache lines: what
 * never changes; the lock with the wait queues and the unbounded buffer;
 * the waiter flags (written only when a queue becomes empty or not, read
 * by every lock-free operation); the ring's tail (senders') and its head
 * (receivers'), each alone.
 */
struct coev_chan {
	size_t esize;	     /* [init] */
	size_t cap;	     /* [init] 0, n or COEV_CHAN_UNBOUNDED */
	size_t stride;	     /* [init] bytes per ring slot: seq, message */
	size_t mask;	     /* [init] cap - 1 when cap is a power of two */
	bool pow2;	     /* [init] */
	unsigned char *ring; /* [init] cap slots: bounded, cap > 0 */

	alignas(COEV__CHAN_LINE) atomic_uint lk;
	atomic_bool closed;	 /* [lk] set once; any reads */
	coev__wq_t sendq, recvq; /* [lk] */
	size_t size;		 /* [lk] unbounded: slots in buf */
	size_t first;		 /* [lk] unbounded: the oldest message */
	atomic_size_t len;	 /* [lk] unbounded: buffered; any reads */
	unsigned char *buf;	 /* [lk] unbounded: size * esize bytes */

	/* COEV__WF_*: set under lk, read by anyone */
	alignas(COEV__CHAN_LINE) atomic_uint wflags;

	/* position << 2 | COEV__T_CLOSED | COEV__T_SWAIT */
	alignas(COEV__CHAN_LINE) atomic_size_t tail;
	/* position << 1 | COEV__H_RWAIT */
	alignas(COEV__CHAN_LINE) atomic_size_t head;
};

/*
 * coev__chan_send_locked — one send attempt under ch->lk: 0 (sent),
 * COEV_ECLOSED, -ENOMEM, or -EAGAIN (it would have to wait).
 * coev__chan_recv_locked — one receive attempt under ch->lk: 0 (received),
 * COEV_ECLOSED, or -EAGAIN.
 * A partner they complete with is granted onto wk, to be signalled once
 * the lock is released.
 */
int coev__chan_send_locked(coev_chan_t *ch, const void *msg, coev__wake_t *wk);
int coev__chan_recv_locked(coev_chan_t *ch, void *out, coev__wake_t *wk);

/*
 * coev__chan_want — under ch->lk, before an attempt that may end with the
 * caller queued on ch (as a sender if send, else as a receiver): publish
 * that such a waiter may exist, so lock-free operations that complete
 * after it come to the lock to serve it (sync/chan.c, "waiters").
 * coev__chan_settle — under ch->lk, last before unlocking: withdraw that
 * mark for a queue that ended up empty.
 */
void coev__chan_want(coev_chan_t *ch, bool send);
void coev__chan_settle(coev_chan_t *ch);

#endif
