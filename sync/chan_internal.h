/*
 * sync/chan_internal.h — what the channel (sync/chan.c) shares with select
 * (sync/select.c): the channel's layout, a waiting select's state, and one
 * attempt at a send or a receive under the channel's lock. Not installed.
 */
#ifndef COEV_SYNC_CHAN_INTERNAL_H
#define COEV_SYNC_CHAN_INTERNAL_H

#include "internal.h"

/* A waiting select's state, shared by its wait nodes (wnode.sel). */
struct coev__sel {
	atomic_int winner; /* -1 open, -2 withdrawn, else the case index */
};

struct coev_chan {
	atomic_uint lk;
	coev__wq_t sendq, recvq; /* [lk] */
	size_t esize;		 /* [init] */
	size_t cap;		 /* [init] 0, n or COEV_CHAN_UNBOUNDED */
	size_t size;		 /* [lk] slots in buf */
	size_t head;		 /* [lk] index of the oldest message */
	atomic_size_t len;	 /* [lk] messages buffered; any reads */
	atomic_bool closed;	 /* [lk] set once; any reads */
	unsigned char *buf;	 /* [lk] size * esize bytes */
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

#endif
