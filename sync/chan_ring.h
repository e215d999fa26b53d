/* SPDX-License-Identifier: MIT */
/*
 * sync/chan_ring.h — the bounded channel's lock-free ring (sync/chan.c
 * explains the protocol): the head and tail words' bits, the slots, and
 * a send and a receive with and without the channel's lock. Included by
 * sync/chan.c only; static inline, so the lock-free paths compile into
 * the calls of coev/chan.h. Not installed.
 */
#ifndef COEV_SYNC_CHAN_RING_H
#define COEV_SYNC_CHAN_RING_H

#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "chan_internal.h"

/* wflags */
#define COEV__WF_RECV 1u
#define COEV__WF_SEND 2u
/* the tail word */
#define COEV__T_CLOSED ((size_t)1)
#define COEV__T_SWAIT ((size_t)2)
#define T_SHIFT 2
#define T_ONE ((size_t)1 << T_SHIFT)
/* the head word */
#define COEV__H_RWAIT ((size_t)1)
#define H_SHIFT 1
#define H_ONE ((size_t)1 << H_SHIFT)

/* Spins on a partner's unfinished step before each yield of the CPU. */
#define SPIN_TRIES 64

#define SLOT_DATA sizeof(atomic_size_t)

/* Copy one message: small common sizes inline, without a call. */
static inline void copy_msg(coev_chan_t *ch, void *dst, const void *src)
{
	switch (ch->esize) {
	case 4: memcpy(dst, src, 4); break;
	case 8: memcpy(dst, src, 8); break;
	case 16: memcpy(dst, src, 16); break;
	default: memcpy(dst, src, ch->esize); break;
	}
}

/* --- the ring ---------------------------------------------------------- */

static inline unsigned char *ring_slot(coev_chan_t *ch, size_t pos)
{
	size_t i = ch->pow2 ? pos & ch->mask : pos % ch->cap;

	return ch->ring + i * ch->stride;
}

static inline atomic_size_t *slot_seq(unsigned char *s)
{
	return (atomic_size_t *)s;
}

/* Whether sequence number a is before b (the counters never wrap, but
 * their difference is what the ring compares). */
static inline bool seq_before(size_t a, size_t b)
{
	return (intptr_t)(a - b) < 0;
}

/*
 * A send without the lock: 0, or -EAGAIN when it must go to the lock
 * (full, closed, senders waiting). Seq_cst CAS: pairs with the
 * read-modify-write of wflags in coev__chan_want (the header's "no lost
 * wakeup").
 */
static inline int ring_push_fast(coev_chan_t *ch, const void *msg)
{
	size_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
	size_t pos, seq;
	unsigned char *s;

	for (;;) {
		if (t & (COEV__T_CLOSED | COEV__T_SWAIT))
			return -EAGAIN;
		pos = t >> T_SHIFT;
		s = ring_slot(ch, pos);
		/* Another sender may claim pos, and fill it, between our
		 * look at tail and this look at its slot. */
		COEV__POINT(CHAN);
		/* Acquire: pairs with the release in the receive that freed
		 * the slot, which has read the old message. */
		seq = atomic_load_explicit(slot_seq(s), memory_order_acquire);
		if (seq == 2 * pos) {
			/* Another thread may mark waiters, close or take
			 * pos between the look and the claim. */
			COEV__POINT(CHAN);
			if (atomic_compare_exchange_weak_explicit(
				    &ch->tail, &t, t + T_ONE,
				    memory_order_seq_cst, memory_order_relaxed))
				break;
			COEV__POINT(CHAN);
			continue;
		}
		if (seq_before(seq, 2 * pos))
			return -EAGAIN; /* full */
		/* Another sender took pos: look again. */
		COEV__POINT(CHAN);
		t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
	}
	/* Claimed, not written: receivers that reach pos wait for us. */
	COEV__POINT(CHAN);
	copy_msg(ch, s + SLOT_DATA, msg);
	/* Release: pairs with the receivers' acquire loads of seq. */
	atomic_store_explicit(slot_seq(s), 2 * pos + 1, memory_order_release);
	return 0;
}

/* A receive without the lock: 0, or -EAGAIN when it must go to the lock
 * (empty, a send not yet written, receivers waiting). */
static inline int ring_pop_fast(coev_chan_t *ch, void *out)
{
	size_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
	size_t pos, seq;
	unsigned char *s;

	for (;;) {
		if (h & COEV__H_RWAIT)
			return -EAGAIN;
		pos = h >> H_SHIFT;
		s = ring_slot(ch, pos);
		/* Acquire: pairs with the sender's release of seq. */
		seq = atomic_load_explicit(slot_seq(s), memory_order_acquire);
		if (seq == 2 * pos + 1) {
			COEV__POINT(CHAN);
			if (atomic_compare_exchange_weak_explicit(
				    &ch->head, &h, h + H_ONE,
				    memory_order_seq_cst, memory_order_relaxed))
				break;
			COEV__POINT(CHAN);
			continue;
		}
		if (seq_before(seq, 2 * pos + 1))
			return -EAGAIN; /* empty, or being written */
		COEV__POINT(CHAN);
		h = atomic_load_explicit(&ch->head, memory_order_relaxed);
	}
	COEV__POINT(CHAN);
	copy_msg(ch, out, s + SLOT_DATA);
	/* Release: pairs with the next lap's sender's acquire of seq. */
	atomic_store_explicit(slot_seq(s), 2 * (pos + ch->cap),
			      memory_order_release);
	return 0;
}

/*
 * A batch receive without the lock: claims the run of written messages at
 * the head, at most max, with one CAS of the head, and copies them to out
 * in ring order. Returns how many (at least 1), or -EAGAIN as
 * ring_pop_fast. The claimed slots are the caller's alone once the CAS
 * succeeds: it copies them out and frees each (nothing in between may
 * suspend, so a claim is never left half read). One CAS and one pass over
 * the slots' cache lines per batch, instead of per message.
 */
static inline int ring_pop_batch_fast(coev_chan_t *ch, unsigned char *out,
				      size_t max)
{
	size_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
	size_t pos, k;
	unsigned char *s;

	for (;;) {
		if (h & COEV__H_RWAIT)
			return -EAGAIN;
		pos = h >> H_SHIFT;
		/* Acquire: pairs with each sender's release of seq; a slot
		 * seen written stays so until a receiver claims it. */
		for (k = 0; k < max && k < ch->cap; k++) {
			s = ring_slot(ch, pos + k);
			if (atomic_load_explicit(slot_seq(s),
						 memory_order_acquire) !=
			    2 * (pos + k) + 1)
				break;
		}
		if (k == 0) {
			/* Empty or being written, or another receiver took
			 * pos: ring_pop_fast tells the two apart. */
			COEV__POINT(CHAN);
			if (seq_before(atomic_load_explicit(
					       slot_seq(ring_slot(ch, pos)),
					       memory_order_acquire),
				       2 * pos + 1))
				return -EAGAIN;
			h = atomic_load_explicit(&ch->head,
						 memory_order_relaxed);
			continue;
		}
		/* Another receiver may claim some of them, or a waiter mark
		 * the head, between the look and the claim. */
		COEV__POINT(CHAN);
		if (atomic_compare_exchange_weak_explicit(
			    &ch->head, &h, h + k * H_ONE, memory_order_seq_cst,
			    memory_order_relaxed))
			break;
		COEV__POINT(CHAN);
	}
	for (size_t i = 0; i < k; i++) {
		s = ring_slot(ch, pos + i);
		COEV__POINT(CHAN);
		copy_msg(ch, out + i * ch->esize, s + SLOT_DATA);
		/* Release: pairs with the next lap's sender's acquire. */
		atomic_store_explicit(slot_seq(s), 2 * (pos + i + ch->cap),
				      memory_order_release);
	}
	return (int)k;
}

/* One turn of a wait for a partner's unfinished step (a claimed slot not
 * yet written or read): the partner holds no lock and needs none. */
static inline void spin_turn(unsigned *tries)
{
	COEV__POINT(SPIN);
	if (++*tries % SPIN_TRIES)
		coev__cpu_pause();
	else
		sched_yield();
}

/* Messages in the ring, with claimed slots not yet written; the loads are
 * seq_cst (the header's "no lost wakeup"). The head first: the tail read
 * after it is never behind it. */
static inline size_t ring_count(coev_chan_t *ch)
{
	size_t h = atomic_load(&ch->head) >> H_SHIFT;
	size_t t = atomic_load(&ch->tail) >> T_SHIFT;

	return t - h;
}

/*
 * A send under the lock (not closed): 0, or -EAGAIN when full. Waits for
 * a receiver still reading the slot it needs. With COEV__T_SWAIT set
 * only lock holders send, so the room it saw stays.
 */
static inline int ring_push_locked(coev_chan_t *ch, const void *msg)
{
	size_t t, pos, seq;
	unsigned char *s;
	unsigned tries = 0;

	for (;;) {
		if (ring_count(ch) >= ch->cap)
			return -EAGAIN;
		t = atomic_load(&ch->tail);
		pos = t >> T_SHIFT;
		s = ring_slot(ch, pos);
		COEV__POINT(CHAN); /* a lock-free sender may take pos */
		seq = atomic_load_explicit(slot_seq(s), memory_order_acquire);
		if (seq == 2 * pos) {
			if (atomic_compare_exchange_strong(&ch->tail, &t,
							   t + T_ONE))
				break;
			COEV__POINT(CHAN);
		} else if (seq_before(seq, 2 * pos)) {
			spin_turn(&tries); /* its receiver is reading */
		} else {
			COEV__POINT(CHAN);
		}
	}
	COEV__POINT(CHAN);
	copy_msg(ch, s + SLOT_DATA, msg);
	atomic_store_explicit(slot_seq(s), 2 * pos + 1, memory_order_release);
	return 0;
}

/* A receive under the lock: 0, or -EAGAIN when the ring is empty (no
 * claim either). Waits for a sender still writing the oldest slot. */
static inline int ring_pop_locked(coev_chan_t *ch, void *out)
{
	size_t h, pos, seq;
	unsigned char *s;
	unsigned tries = 0;

	for (;;) {
		if (ring_count(ch) == 0)
			return -EAGAIN;
		h = atomic_load(&ch->head);
		pos = h >> H_SHIFT;
		s = ring_slot(ch, pos);
		COEV__POINT(CHAN); /* a lock-free receiver may take pos */
		seq = atomic_load_explicit(slot_seq(s), memory_order_acquire);
		if (seq == 2 * pos + 1) {
			if (atomic_compare_exchange_strong(&ch->head, &h,
							   h + H_ONE))
				break;
			COEV__POINT(CHAN);
		} else if (seq_before(seq, 2 * pos + 1)) {
			spin_turn(&tries); /* its sender is writing */
		} else {
			COEV__POINT(CHAN);
		}
	}
	COEV__POINT(CHAN);
	copy_msg(ch, out, s + SLOT_DATA);
	atomic_store_explicit(slot_seq(s), 2 * (pos + ch->cap),
			      memory_order_release);
	return 0;
}

#endif
