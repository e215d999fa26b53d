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
 * The lock, the close, the free, the send that hands each new value to
 * the waiting receivers, subscribing and the receive's wait are the
 * skeleton this channel shares with the latest-value one
 * (sync/fanout.c); this file keeps the ring and the lag. A receiver
 * waits only with next == tail, so the next send is exactly what it
 * waits for: the send copies the value into the waiter's buffer and
 * moves its next past it (bcast_caught_up).
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
#include "fanout.h"

#define ELEM_MAX 65536
#define CAP_MAX ((size_t)1 << 20)

struct coev_bcast {
	coev__fanout_t f;    /* first: the shared skeleton, its lock lk */
	size_t cap;	     /* [init] */
	uint64_t tail;	     /* [f.lk] positions sent so far */
	unsigned char *ring; /* [init] cap * esize bytes, contents [f.lk] */
};

struct coev_bcast_rx {
	coev__fanout_rx_t rx; /* first: rx.f is the channel */
	uint64_t next;	      /* [f.lk] the position it reads next */
	uint64_t missed;      /* [owner] the last COEV_ELAGGED's count */
};

static inline coev_bcast_t *chan_of(coev__fanout_t *f)
{
	return (coev_bcast_t *)f;
}

static inline coev_bcast_rx_t *rx_of(coev__fanout_rx_t *rx)
{
	return (coev_bcast_rx_t *)rx;
}

static inline unsigned char *slot(coev_bcast_t *b, uint64_t pos)
{
	return b->ring + (size_t)(pos % b->cap) * b->f.esize;
}

/* The oldest position the ring still keeps. */
static inline uint64_t oldest(const coev_bcast_t *b)
{
	return b->tail > b->cap ? b->tail - b->cap : 0;
}

static const void *bcast_store(coev__fanout_t *f, const void *msg)
{
	coev_bcast_t *b = chan_of(f);
	unsigned char *s = slot(b, b->tail);

	memcpy(s, msg, f->esize);
	b->tail++;
	return s;
}

/* A waiter waits with next == the old tail: it has just read that. */
static void bcast_caught_up(coev__fanout_rx_t *rx)
{
	rx_of(rx)->next = chan_of(rx->f)->tail;
}

/* One receive attempt: 0, COEV_ELAGGED or -EAGAIN (nothing new). */
static int bcast_take(coev__fanout_rx_t *frx, void *out)
{
	coev_bcast_rx_t *rx = rx_of(frx);
	coev_bcast_t *b = chan_of(frx->f);
	uint64_t first = oldest(b);

	if (rx->next < first) {
		rx->missed = first - rx->next;
		rx->next = first;
		return COEV_ELAGGED;
	}
	if (rx->next < b->tail) {
		memcpy(out, slot(b, rx->next), b->f.esize);
		rx->next++;
		return 0;
	}
	return -EAGAIN;
}

/* A lagging receiver has next < tail too: a receive answers now. */
static bool bcast_idle(coev__fanout_rx_t *rx)
{
	return rx_of(rx)->next >= chan_of(rx->f)->tail;
}

static void bcast_join(coev__fanout_rx_t *rx)
{
	rx_of(rx)->next = chan_of(rx->f)->tail;
}

static void bcast_destroy(coev__fanout_t *f)
{
	free(chan_of(f)->ring);
	free(chan_of(f));
}

static const coev__fanout_ops_t bcast_ops = {
	.store = bcast_store,
	.caught_up = bcast_caught_up,
	.take = bcast_take,
	.idle = bcast_idle,
	.join = bcast_join,
	.destroy = bcast_destroy,
#if defined(COEV_PLANT_BCAST_RECHECK)
	/* Planted bug: a send between the look and the queueing is skipped
	 * (its value never reaches this receiver, and no COEV_ELAGGED says
	 * so). */
	.plant_recheck = true,
#endif
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
	coev__fanout_init(&b->f, esize, &bcast_ops);
	b->cap = cap;
	*out = b;
	return 0;
}

int coev_bcast_close(coev_bcast_t *b)
{
	return b ? coev__fanout_close(&b->f) : -EINVAL;
}

void coev_bcast_free(coev_bcast_t *b)
{
	if (b)
		coev__fanout_free(&b->f);
}

size_t coev_bcast_receivers(coev_bcast_t *b)
{
	size_t n;

	if (!b)
		coev__panic("coev_bcast_receivers: NULL channel");
	coev__spin_lock(&b->f.lk);
	n = b->f.receivers;
	coev__spin_unlock(&b->f.lk);
	return n;
}

int coev_bcast_send(coev_bcast_t *b, const void *msg)
{
	size_t count;
	int r;

	if (!b || !msg)
		return -EINVAL;
	if ((r = coev__fanout_send(&b->f, msg, &count)) != 0)
		return r;
	return count > INT_MAX ? INT_MAX : (int)count;
}

int coev_bcast_subscribe(coev_bcast_t *b, coev_bcast_rx_t **out)
{
	coev_bcast_rx_t *rx;

	if (!b || !out)
		return -EINVAL;
	if (!(rx = calloc(1, sizeof *rx)))
		return -ENOMEM;
	coev__fanout_subscribe(&b->f, &rx->rx);
	*out = rx;
	return 0;
}

void coev_bcast_unsubscribe(coev_bcast_rx_t *rx)
{
	if (!rx)
		return;
	coev__fanout_unsubscribe(&rx->rx, "coev_bcast_unsubscribe");
	free(rx);
}

int coev_bcast_recv(coev_bcast_rx_t *rx, void *out)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, COEV_FOREVER, true);
}

int coev_bcast_recv_dl(coev_bcast_rx_t *rx, void *out, coev_time_t deadline)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, deadline, true);
}

int coev_bcast_try_recv(coev_bcast_rx_t *rx, void *out)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, 0, false);
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
	b = chan_of(rx->rx.f);
	coev__spin_lock(&b->f.lk);
	from = rx->next > oldest(b) ? rx->next : oldest(b);
	n = (size_t)(b->tail - from);
	coev__spin_unlock(&b->f.lk);
	return n;
}

/* --- a source of select_any (sync/internal.h) ------------------------ */

int coev__bcast_arm(coev_bcast_rx_t *rx, coev__wnode_t *n)
{
	return coev__fanout_arm(&rx->rx, n);
}

int coev__bcast_disarm(coev_bcast_rx_t *rx, coev__wnode_t *n)
{
	return coev__fanout_disarm(&rx->rx, n);
}
