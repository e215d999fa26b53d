/* SPDX-License-Identifier: MIT */
/*
 * sync/fanout.h — the skeleton the broadcast channel (sync/broadcast.c)
 * and the latest-value channel (sync/latest.c) share: one sender's values
 * fanned out to many receivers, closable, with a reference count so that
 * receivers outlive the creator's free. Not installed.
 *
 * The two channels differ only in what they keep (a ring of values and a
 * position per receiver, or one value and a version) and in how a receive
 * reads it. Everything else is here, written once: the lock, the close
 * granting COEV_ECLOSED, the free, the send loop that hands the new value
 * to every waiter under the lock, subscribe and unsubscribe, the receive
 * with its grant-or-withdraw wait (sync/internal.h), and a receiver as a
 * source of the select over mixed sources. A channel embeds
 * coev__fanout_t as its first member and its receivers embed
 * coev__fanout_rx_t as theirs, and it names what differs in a
 * coev__fanout_ops_t, each of whose functions runs under the lock.
 */
#ifndef COEV_SYNC_FANOUT_H
#define COEV_SYNC_FANOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct coev__fanout coev__fanout_t;
typedef struct coev__fanout_rx coev__fanout_rx_t;

typedef struct coev__fanout_ops {
	/* Keep msg (esize bytes) as the newest value; return where it sits
	 * now, for the copies to the waiters. */
	const void *(*store)(coev__fanout_t *f, const void *msg);
	/* rx, a waiter, was just handed the newest value: move it past. */
	void (*caught_up)(coev__fanout_rx_t *rx);
	/* One receive attempt: 0 with out filled, a channel's own answer
	 * (the broadcast's COEV_ELAGGED), or -EAGAIN when there is nothing
	 * new (which the receive turns into COEV_ECLOSED once closed). */
	int (*take)(coev__fanout_rx_t *rx, void *out);
	/* Whether a receive by rx would find nothing new. */
	bool (*idle)(coev__fanout_rx_t *rx);
	/* Where rx stands, when it subscribes: past every value so far. */
	void (*join)(coev__fanout_rx_t *rx);
	/* The last reference went: free what the channel added. */
	void (*destroy)(coev__fanout_t *f);
	/* A planted bug for the simulation's checks (fuzz/plants.sh): look
	 * and queue under two holds of the lock. False in every build. */
	bool plant_recheck;
} coev__fanout_ops_t;

struct coev__fanout {
	atomic_uint lk;
	bool closed;	  /* [lk] */
	size_t esize;	  /* [init] */
	size_t receivers; /* [lk] subscribed */
	size_t refs;	  /* [lk] the creator's (until free) + rx */
	coev__wq_t q;	  /* [lk] waiting receivers; wnode.arg: rx */
	const coev__fanout_ops_t *ops; /* [init] */
};

struct coev__fanout_rx {
	coev__fanout_t *f; /* [init] */
	bool waiting;	   /* [f->lk] queued on f->q */
};

/* Set up f (already zeroed) with one reference, the creator's. */
void coev__fanout_init(coev__fanout_t *f, size_t esize,
		       const coev__fanout_ops_t *ops);

/* Close f: 0, or COEV_ECLOSED if it already was; waiters get COEV_ECLOSED. */
int coev__fanout_close(coev__fanout_t *f);

/* Close f and drop the creator's reference. */
void coev__fanout_free(coev__fanout_t *f);

/* Store msg and hand it to every waiter: the count of receivers, or
 * COEV_ECLOSED. */
int coev__fanout_send(coev__fanout_t *f, const void *msg, size_t *receivers);

/* Subscribe rx (already zeroed, the channel's receiver) to f. */
void coev__fanout_subscribe(coev__fanout_t *f, coev__fanout_rx_t *rx);

/* Unsubscribe rx (panics if it is waiting); the caller frees rx after. */
void coev__fanout_unsubscribe(coev__fanout_rx_t *rx, const char *fn);

/* A receive: wait (until deadline) or not. 0, what ops->take answers,
 * COEV_ECLOSED, -EAGAIN (not waiting), or the wait's errors. */
int coev__fanout_recv(coev__fanout_rx_t *rx, void *out, coev_time_t deadline,
		      bool wait);

/* The select's arm and disarm (sync/internal.h's coev__bcast_arm). */
int coev__fanout_arm(coev__fanout_rx_t *rx, coev__wnode_t *n);
int coev__fanout_disarm(coev__fanout_rx_t *rx, coev__wnode_t *n);

#endif
