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
 * The lock, the close, the free, the send that hands each new value to
 * the waiting receivers (setting their seen to the new version),
 * subscribing and the receive's wait are the skeleton this channel
 * shares with the broadcast one (sync/fanout.c); this file keeps the
 * value and the version. A close grants COEV_ECLOSED: a waiter has seen
 * the current version by then.
 *
 * Rejected: a seqlock for lock-free reads of the value. Receivers copy the
 * value under the lock once per change they see, and a seqlock's reader
 * would copy bytes a writer may be changing (a data race in C11 unless
 * every byte is an atomic).
 */
#include <stdlib.h>
#include <string.h>

#include "coev/latest.h"
#include "fanout.h"

#define ELEM_MAX 65536

struct coev_latest {
	coev__fanout_t f;   /* first: the shared skeleton, its lock lk */
	uint64_t version;   /* [f.lk] sends so far */
	unsigned char *val; /* [init] esize bytes, contents [f.lk] */
};

struct coev_latest_rx {
	coev__fanout_rx_t rx; /* first: rx.f is the channel */
	uint64_t seen;	      /* [f.lk] the version it saw last */
};

static inline coev_latest_t *chan_of(coev__fanout_t *f)
{
	return (coev_latest_t *)f;
}

static inline coev_latest_rx_t *rx_of(coev__fanout_rx_t *rx)
{
	return (coev_latest_rx_t *)rx;
}

static const void *latest_store(coev__fanout_t *f, const void *msg)
{
	coev_latest_t *w = chan_of(f);

	memcpy(w->val, msg, f->esize);
	w->version++;
	return w->val;
}

/* Every waiter had seen the previous version: it has just seen this. */
static void latest_caught_up(coev__fanout_rx_t *rx)
{
	rx_of(rx)->seen = chan_of(rx->f)->version;
}

/* One receive attempt: 0 with the value if it is news, else -EAGAIN. */
static int latest_take(coev__fanout_rx_t *frx, void *out)
{
	coev_latest_rx_t *rx = rx_of(frx);
	coev_latest_t *w = chan_of(frx->f);

	if (rx->seen >= w->version)
		return -EAGAIN;
	memcpy(out, w->val, w->f.esize);
	rx->seen = w->version;
	return 0;
}

static bool latest_idle(coev__fanout_rx_t *rx)
{
	return rx_of(rx)->seen >= chan_of(rx->f)->version;
}

static void latest_destroy(coev__fanout_t *f)
{
	free(chan_of(f)->val);
	free(chan_of(f));
}

static const coev__fanout_ops_t latest_ops = {
	.store = latest_store,
	.caught_up = latest_caught_up,
	.take = latest_take,
	.idle = latest_idle,
	.join = latest_caught_up, /* a new receiver has seen the value */
	.destroy = latest_destroy,
#if defined(COEV_PLANT_LATEST_RECHECK)
	/* Planted bug: a send between the look and the queueing is not news
	 * to this waiter, which waits for a later one (and ends on a stale
	 * version at the close). */
	.plant_recheck = true,
#endif
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
	coev__fanout_init(&w->f, esize, &latest_ops);
	*out = w;
	return 0;
}

int coev_latest_close(coev_latest_t *w)
{
	return w ? coev__fanout_close(&w->f) : -EINVAL;
}

void coev_latest_free(coev_latest_t *w)
{
	if (w)
		coev__fanout_free(&w->f);
}

int coev_latest_send(coev_latest_t *w, const void *msg)
{
	size_t count;

	if (!w || !msg)
		return -EINVAL;
	return coev__fanout_send(&w->f, msg, &count);
}

int coev_latest_get(coev_latest_t *w, void *out)
{
	if (!w || !out)
		return -EINVAL;
	coev__spin_lock(&w->f.lk);
	memcpy(out, w->val, w->f.esize);
	coev__spin_unlock(&w->f.lk);
	return 0;
}

int coev_latest_subscribe(coev_latest_t *w, coev_latest_rx_t **out)
{
	coev_latest_rx_t *rx;

	if (!w || !out)
		return -EINVAL;
	if (!(rx = calloc(1, sizeof *rx)))
		return -ENOMEM;
	coev__fanout_subscribe(&w->f, &rx->rx);
	*out = rx;
	return 0;
}

void coev_latest_unsubscribe(coev_latest_rx_t *rx)
{
	if (!rx)
		return;
	coev__fanout_unsubscribe(&rx->rx, "coev_latest_unsubscribe");
	free(rx);
}

int coev_latest_recv(coev_latest_rx_t *rx, void *out)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, COEV_FOREVER, true);
}

int coev_latest_recv_dl(coev_latest_rx_t *rx, void *out, coev_time_t deadline)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, deadline, true);
}

int coev_latest_try_recv(coev_latest_rx_t *rx, void *out)
{
	if (!rx || !out)
		return -EINVAL;
	return coev__fanout_recv(&rx->rx, out, 0, false);
}

int coev_latest_borrow(coev_latest_rx_t *rx, void *out)
{
	coev_latest_t *w;

	if (!rx || !out)
		return -EINVAL;
	w = chan_of(rx->rx.f);
	coev__spin_lock(&w->f.lk);
	memcpy(out, w->val, w->f.esize);
	rx->seen = w->version;
	coev__spin_unlock(&w->f.lk);
	return 0;
}

uint64_t coev_latest_seen(coev_latest_rx_t *rx)
{
	if (!rx)
		coev__panic("coev_latest_seen: NULL receiver");
	return rx->seen;
}

/* --- a source of select_any (sync/internal.h) ------------------------ */

/* As broadcast.c's (sync/fanout.c): a node without a buffer is told of a
 * send or the close, and the receiver's version does not move. */
int coev__latest_arm(coev_latest_rx_t *rx, coev__wnode_t *n)
{
	return coev__fanout_arm(&rx->rx, n);
}

int coev__latest_disarm(coev_latest_rx_t *rx, coev__wnode_t *n)
{
	return coev__fanout_disarm(&rx->rx, n);
}
