/* SPDX-License-Identifier: MIT */
/*
 * sync/chan.c — channels (select is in sync/select.c).
 *
 * A bounded channel (capacity n > 0) keeps its messages in a lock-free
 * ring; a send or receive that does not have to wait takes no lock. Its
 * waiters, a rendezvous channel (capacity 0) and an unbounded channel
 * (whose buffer grows) go through one spin lock and two wait queues,
 * senders and receivers, as before the ring.
 *
 * The ring (Vyukov's bounded MPMC queue). Slot i holds a sequence number
 * and a message. A sender reads the tail position p, checks that slot
 * p mod n has seq 2p (free: its receiver of the last lap is done), claims
 * p by a compare-and-swap of the tail to p + 1, copies its message in and
 * sets seq to 2p + 1 (release: the message is there). A receiver does the
 * same on the head with seq 2p + 1, copies the message out and sets seq
 * to 2(p + n) (free for the next lap). (Vyukov's seq p and p + 1 would
 * confuse "written at p" with "free for p + 1" when n is 1.) A sender finds the ring full from the
 * slot alone and a receiver finds it empty the same way, so neither reads
 * the other side's counter; the tail and the head each sit alone on their
 * cache line. The positions are 62-bit counters and never wrap. Rejected:
 * a ring under the lock (the producer and the consumer of a pipeline, on
 * two workers, fought over it: a third of the time in the lock's slow
 * path); ck_ring (its MPMC ring has no per-slot sequence, so a sender
 * that claimed a slot and has not written it yet cannot be told apart
 * from a written one without a second counter; and the close and waiter
 * bits below must sit in the counters themselves).
 *
 * Close. The tail word holds a closed bit, set under the lock by
 * coev_chan_close. A send claims a position by a CAS that expects the bit
 * clear, so once the bit is set no send gets in, and every send that got
 * in before holds a position below the final tail: receivers drain up to
 * it and then get COEV_ECLOSED. A claimed slot not yet written counts as
 * a message (the lock holder waits the few instructions until it is).
 *
 * Waiters. Waiting is on the locked path, by the wait-queue protocol of
 * sync/internal.h. Three marks say that a queue may be non-empty, all set
 * under the lock (coev__chan_want) by a caller before its last attempt
 * that may end with it queued, and cleared under the lock once the queue
 * is empty (coev__chan_settle):
 *   - COEV__WF_RECV / COEV__WF_SEND in wflags, on a line of its own that
 *     is read by every lock-free operation and written only when a queue
 *     starts or stops having waiters;
 *   - COEV__H_RWAIT in the head word, COEV__T_SWAIT in the tail word:
 *     the lock-free receive (send) expects its bit clear in its CAS, so
 *     while anyone waits to receive (send) only the lock's holder takes
 *     from (puts into) the ring. Waiting receivers and senders are so
 *     served first in, first out, and a holder that has seen a message
 *     (a free slot) may claim a waiting select for it: nobody else can
 *     take it between the look and the claim.
 * A lock-free send that completes reads wflags; if receivers may wait it
 * takes the lock and hands the ring's oldest messages to them
 * (serve_recv). A lock-free receive that completes does the same for
 * waiting senders, whose messages go into the freed slots in queue order
 * (serve_send). A send that sees COEV__WF_RECV before it starts goes to
 * the lock at once, and hands its message straight to the waiting
 * receiver. Woken partners go to the waker's LIFO slot (COEV_SIG_WAKE):
 * the receiver runs next on the sender's worker.
 *
 * No lost wakeup: a receiver R that queues did, under the lock, a
 * seq_cst read-modify-write of wflags (setting COEV__WF_RECV) and then
 * seq_cst loads of the head and the tail, finding the ring empty. A
 * sender S's claim is a seq_cst CAS of the tail, after which S loads
 * wflags (seq_cst). All four are in the one total order of seq_cst
 * operations, so either R's load of the tail follows S's CAS (R sees the
 * message, or the claim, and waits for it: no queueing) or S's load of
 * wflags follows R's mark (S comes to the lock after R unlocked, and
 * serves R). The same pairing holds for a sender that queues on a full
 * ring (wflags' COEV__WF_SEND, then the head) against a receiver's CAS of
 * the head and its load of wflags. A mark left by an earlier waiter
 * serves as well: its read-modify-write precedes the new waiter's lock.
 * On x86 the CAS is the fence, so the check costs one load of a line
 * that is rarely written. Cases that cannot lose a wakeup either: a
 * waiter that withdraws (deadline, cancel) settles the marks under the
 * lock; a select's nodes dropped by partners or by itself settle at the
 * unlock of each channel; close grants receivers COEV_ECLOSED only once
 * the ring holds nothing, while its senders' claims are all written.
 *
 * A batch receive (coev_chan_recv_batch) claims the run of written slots
 * at the head, up to its max, with one CAS of the head (expecting
 * COEV__H_RWAIT clear, as a single receive does) and copies them out in
 * the same call; the wflags check after the CAS is the single receive's.
 * When none is ready it takes one message as a receive would, waiting if
 * allowed, and then whatever else is there without waiting.
 *
 * The rendezvous and unbounded channels keep the older locked design:
 * every operation under the lock; an unbounded channel's buffer doubles
 * under it (a failed allocation fails that send with -ENOMEM and changes
 * nothing). The invariants under the lock, for every kind: receivers wait
 * only while nothing is buffered and no sender waits; senders wait only
 * while the buffer is full (always, for a rendezvous) and no receiver
 * waits; a closed channel has no waiting senders.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan_ring.h"

#define ELEM_MAX 65536
#define UNBOUNDED_MIN 16

int coev_chan_new(coev_chan_t **out, size_t esize, size_t cap)
{
	coev_chan_t *ch;
	bool bounded = cap != COEV_CHAN_UNBOUNDED && cap > 0;
	size_t stride = 0, bytes = 0;

	if (!out || esize == 0 || esize > ELEM_MAX)
		return -EINVAL;
	if (bounded) {
		stride = (SLOT_DATA + esize + sizeof(size_t) - 1) &
			 ~(sizeof(size_t) - 1);
		/* The positions count in 62 bits: at most 2^61 slots. */
		if (cap > SIZE_MAX / 8 / stride)
			return -ENOMEM;
		bytes = (cap * stride + COEV__CHAN_LINE - 1) &
			~(size_t)(COEV__CHAN_LINE - 1);
	}
	if (!(ch = aligned_alloc(_Alignof(coev_chan_t), sizeof *ch)))
		return -ENOMEM;
	memset(ch, 0, sizeof *ch);
	if (bounded && !(ch->ring = aligned_alloc(COEV__CHAN_LINE, bytes))) {
		free(ch);
		return -ENOMEM;
	}
	for (size_t i = 0; bounded && i < cap; i++)
		atomic_init((atomic_size_t *)(ch->ring + i * stride), 2 * i);
	atomic_init(&ch->lk, 0);
	atomic_init(&ch->closed, false);
	atomic_init(&ch->len, 0);
	atomic_init(&ch->wflags, 0);
	atomic_init(&ch->tail, 0);
	atomic_init(&ch->head, 0);
	ch->esize = esize;
	ch->cap = cap;
	ch->stride = stride;
	ch->pow2 = bounded && (cap & (cap - 1)) == 0;
	ch->mask = ch->pow2 ? cap - 1 : 0;
	*out = ch;
	return 0;
}

void coev_chan_free(coev_chan_t *ch)
{
	if (!ch)
		return;
	coev__sync_check_idle(&ch->lk, &ch->recvq, "channel", ch);
	coev__sync_check_idle(&ch->lk, &ch->sendq, "channel", ch);
	free(ch->ring);
	free(ch->buf);
	free(ch);
}

static inline size_t buffered(coev_chan_t *ch);

size_t coev_chan_len(coev_chan_t *ch)
{
	if (!ch)
		coev__panic("coev_chan_len: NULL channel");
	return buffered(ch);
}

size_t coev_chan_cap(coev_chan_t *ch)
{
	if (!ch)
		coev__panic("coev_chan_cap: NULL channel");
	return ch->cap;
}

int coev_chan_closed(coev_chan_t *ch)
{
	if (!ch)
		coev__panic("coev_chan_closed: NULL channel");
	return atomic_load_explicit(&ch->closed, memory_order_relaxed);
}

/* --- the buffer, whatever the kind (under lk) -------------------------- */

static inline unsigned char *ubuf_slot(coev_chan_t *ch, size_t i)
{
	size_t k = ch->first + i;

	if (k >= ch->size)
		k -= ch->size;
	return ch->buf + k * ch->esize;
}

/* Messages buffered now; any thread (coev_chan_len). */
static inline size_t buffered(coev_chan_t *ch)
{
	size_t n;

	if (!ch->ring)
		return atomic_load_explicit(&ch->len, memory_order_relaxed);
	n = atomic_load_explicit(&ch->head, memory_order_relaxed) >> H_SHIFT;
	n = (atomic_load_explicit(&ch->tail, memory_order_relaxed) >> T_SHIFT) -
	    n;
	/* The head, read first, may have moved on by a lap meanwhile. */
	return n > ch->cap ? ch->cap : n;
}

/* Double an unbounded channel's buffer, keeping the order. */
static int grow(coev_chan_t *ch)
{
	size_t n = buffered(ch), size = UNBOUNDED_MIN, bytes;
	unsigned char *buf;

	if ((ch->size && __builtin_mul_overflow(ch->size, 2, &size)) ||
	    __builtin_mul_overflow(size, ch->esize, &bytes) ||
	    !(buf = malloc(bytes)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		memcpy(buf + i * ch->esize, ubuf_slot(ch, i), ch->esize);
	free(ch->buf);
	ch->buf = buf;
	ch->size = size;
	ch->first = 0;
	return 0;
}

/* Whether a message is buffered (or being written into the ring). */
static bool buf_ready(coev_chan_t *ch)
{
	return ch->ring ? ring_count(ch) != 0
			: atomic_load_explicit(&ch->len, memory_order_relaxed);
}

/* Whether a send would find room (always, unbounded). */
static bool buf_room(coev_chan_t *ch)
{
	if (ch->ring)
		return ring_count(ch) < ch->cap;
	return ch->cap == COEV_CHAN_UNBOUNDED;
}

/* 0, -EAGAIN (full) or -ENOMEM (could not grow). */
static int buf_push(coev_chan_t *ch, const void *msg)
{
	size_t n;
	int r;

	if (ch->ring)
		return ring_push_locked(ch, msg);
	if (ch->cap != COEV_CHAN_UNBOUNDED)
		return -EAGAIN;
	n = buffered(ch);
	if (n == ch->size && (r = grow(ch)) < 0)
		return r;
	copy_msg(ch, ubuf_slot(ch, n), msg);
	atomic_store_explicit(&ch->len, n + 1, memory_order_relaxed);
	return 0;
}

/* 0, or -EAGAIN (nothing buffered). */
static int buf_pop(coev_chan_t *ch, void *out)
{
	size_t n;

	if (ch->ring)
		return ring_pop_locked(ch, out);
	if (!(n = buffered(ch)))
		return -EAGAIN;
	copy_msg(ch, out, ubuf_slot(ch, 0));
	if (++ch->first == ch->size)
		ch->first = 0;
	atomic_store_explicit(&ch->len, n - 1, memory_order_relaxed);
	return 0;
}

/* --- matching partners (under lk) ------------------------------------ */

/* The first waiter of q that may still be served: a plain waiter, or a
 * select's node that this call claims for its select. Nodes of selects
 * decided elsewhere are unlinked on the way. */
static coev__wnode_t *partner(coev__wq_t *q)
{
	coev__wnode_t *n;
	int open;

	while ((n = q->head) != NULL) {
		open = -1;
#if defined(COEV_PLANT_SELECT_CLAIM)
		/* Planted bug: the claim looks, then writes: a partner on
		 * another channel (another lock), or the select's own
		 * withdrawal, may claim it in between, and the select gets
		 * two messages or loses one. */
		if (!n->sel) {
			return n;
		} else if (atomic_load(&n->sel->winner) == open) {
			COEV__POINT(CHAN);
			atomic_store(&n->sel->winner, n->index);
			return n;
		}
#else
		/* Acq_rel: pairs with select_wait's withdrawal CAS and its
		 * acquire load of winner (sync/select.c): the select's own
		 * claim and ours decide once who has it. */
		if (!n->sel ||
		    atomic_compare_exchange_strong_explicit(
			    &n->sel->winner, &open, n->index,
			    memory_order_acq_rel, memory_order_relaxed))
			return n;
#endif
		coev__wq_remove(q, n);
	}
	return NULL;
}

/* Grant every waiter of q status, claiming the selects among them. */
static void grant_all(coev__wq_t *q, int status, coev__wake_t *wk)
{
	coev__wnode_t *n;

	while ((n = partner(q)) != NULL)
		coev__wq_grant(q, n, status, wk);
}

static void must(int r, const char *what)
{
	if (r != 0)
		coev__panic("channel: %s failed under the lock (%d)", what, r);
}

/*
 * Hand buffered messages to waiting receivers, oldest first; once closed
 * and empty, tell the rest COEV_ECLOSED. While receivers wait only lock
 * holders take from the ring (COEV__H_RWAIT), so a message seen stays.
 */
static void serve_recv(coev_chan_t *ch, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (coev__wq_empty(&ch->recvq))
		return;
	while (buf_ready(ch) && (n = partner(&ch->recvq)) != NULL) {
		must(buf_pop(ch, n->buf), "a receive for a waiter");
		coev__wq_grant(&ch->recvq, n, 0, wk);
	}
	if (atomic_load_explicit(&ch->closed, memory_order_relaxed) &&
	    !buf_ready(ch))
		grant_all(&ch->recvq, COEV_ECLOSED, wk);
}

/* Move waiting senders' messages into free slots, in queue order. While
 * senders wait only lock holders put into the ring (COEV__T_SWAIT), so a
 * free slot seen stays free. */
static void serve_send(coev_chan_t *ch, coev__wake_t *wk)
{
	coev__wnode_t *n;

	while (!coev__wq_empty(&ch->sendq) && buf_room(ch) &&
	       (n = partner(&ch->sendq)) != NULL) {
		must(buf_push(ch, n->buf), "a send for a waiter");
		coev__wq_grant(&ch->sendq, n, 0, wk);
	}
}

int coev__chan_send_locked(coev_chan_t *ch, const void *msg, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (atomic_load_explicit(&ch->closed, memory_order_relaxed))
		return COEV_ECLOSED;
	serve_recv(ch, wk);
	/* Receivers still waiting: the buffer is empty (serve_recv). */
	if ((n = partner(&ch->recvq)) != NULL) {
		copy_msg(ch, n->buf, msg);
		coev__wq_grant(&ch->recvq, n, 0, wk);
		return 0;
	}
	/* Waiting senders go first. */
	serve_send(ch, wk);
	if (!coev__wq_empty(&ch->sendq))
		return -EAGAIN;
	return buf_push(ch, msg);
}

int coev__chan_recv_locked(coev_chan_t *ch, void *out, coev__wake_t *wk)
{
	coev__wnode_t *n;

	/* Waiting receivers go first. */
	serve_recv(ch, wk);
	if (coev__wq_empty(&ch->recvq) && buf_pop(ch, out) == 0) {
		/* A freed slot: the longest-waiting sender fills it. */
		serve_send(ch, wk);
		return 0;
	}
	if (!buf_ready(ch) && (n = partner(&ch->sendq)) != NULL) {
		copy_msg(ch, out, n->buf);
		coev__wq_grant(&ch->sendq, n, 0, wk);
		serve_send(ch, wk); /* bounded: the others fill the ring */
		return 0;
	}
	return atomic_load_explicit(&ch->closed, memory_order_relaxed) &&
			       !buf_ready(ch)
		       ? COEV_ECLOSED
		       : -EAGAIN;
}

/* --- waiters' marks (under lk) --------------------------------------- */

static inline bool wanted(coev_chan_t *ch, bool send)
{
	return atomic_load_explicit(&ch->wflags, memory_order_relaxed) &
	       (send ? COEV__WF_SEND : COEV__WF_RECV);
}

void coev__chan_want(coev_chan_t *ch, bool send)
{
	unsigned f = send ? COEV__WF_SEND : COEV__WF_RECV;

	if (atomic_load_explicit(&ch->wflags, memory_order_relaxed) & f)
		return;
	if (ch->ring) {
		if (send)
			atomic_fetch_or(&ch->tail, COEV__T_SWAIT);
		else
			atomic_fetch_or(&ch->head, COEV__H_RWAIT);
	}
	/* Seq_cst, then the caller's seq_cst loads of the ring: pairs with
	 * a lock-free operation's CAS and its load of wflags. */
	atomic_fetch_or(&ch->wflags, f);
}

/* Clear bit of a ring word; only the lock's holder writes it while
 * marked. */
static inline void clear_mark(atomic_size_t *word, size_t bit)
{
	atomic_store_explicit(
		word, atomic_load_explicit(word, memory_order_relaxed) & ~bit,
		memory_order_relaxed);
}

/* coev__chan_settle, keeping the receivers' marks when keep_recv (see
 * chan_slow). */
static void settle(coev_chan_t *ch, bool keep_recv)
{
	unsigned was = atomic_load_explicit(&ch->wflags, memory_order_relaxed);
	unsigned f = was;

	/* Plain stores: while a side is marked, only the lock's holder
	 * changes its word of the ring (and the close, under the lock). */
	if ((f & COEV__WF_RECV) && !keep_recv && coev__wq_empty(&ch->recvq)) {
		if (ch->ring)
			clear_mark(&ch->head, COEV__H_RWAIT);
		f &= ~COEV__WF_RECV;
	}
	if ((f & COEV__WF_SEND) && coev__wq_empty(&ch->sendq)) {
		if (ch->ring)
			clear_mark(&ch->tail, COEV__T_SWAIT);
		f &= ~COEV__WF_SEND;
	}
	if (f != was)
		atomic_store_explicit(&ch->wflags, f, memory_order_relaxed);
}

void coev__chan_settle(coev_chan_t *ch)
{
	settle(ch, false);
}

/* A waiter gave up: its queue may be empty now. */
static void withdrawn(void *obj, coev__wake_t *wk)
{
	(void)wk;
	coev__chan_settle(obj);
}

/* --- send and receive -------------------------------------------------- */

/* A lock-free operation that completed found waiters of the other side
 * marked: serve them under the lock. */
__attribute__((noinline)) static void serve(coev_chan_t *ch, bool recv)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};

	coev__spin_lock(&ch->lk);
	if (recv)
		serve_recv(ch, &wk);
	else
		serve_send(ch, &wk);
	coev__chan_settle(ch);
	coev__spin_unlock(&ch->lk);
	coev__wq_wake(&wk);
}

/*
 * The locked path of a send or receive: one attempt, then (if it must
 * wait and may) a node on the right queue with buf as its message or
 * destination.
 */
__attribute__((noinline)) static int chan_slow(coev_chan_t *ch, void *buf,
					       bool send, coev_time_t deadline,
					       bool wait)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	coev__waiter_t wt;
	coev__wnode_t n;
	coev__wq_t *q;
	int r;

	coev__spin_lock(&ch->lk);
	/* Mark before the last look that may end queued (the header's "no
	 * lost wakeup"). A receive here found the ring empty and will most
	 * likely wait: it marks first. A send here most often hands its
	 * message to a waiting receiver: it looks first, and marks and
	 * looks again only if it must wait. */
	if (wait && !send)
		coev__chan_want(ch, false);
	r = send ? coev__chan_send_locked(ch, buf, &wk)
		 : coev__chan_recv_locked(ch, buf, &wk);
	if (r == -EAGAIN && wait && send && !wanted(ch, true)) {
		coev__chan_want(ch, true);
		r = coev__chan_send_locked(ch, buf, &wk);
	}
	if (r == -EAGAIN && wait) {
		/* Under the lock: for a task this only fills the waiter; a
		 * plain thread's condition variable is set up, no syscall. */
		if ((r = coev__waiter_begin(&wt)) == 0) {
			coev__wnode_init(&n, &wt);
			n.buf = buf;
			q = send ? &ch->sendq : &ch->recvq;
			coev__wq_push(q, &n);
			coev__chan_settle(ch);
			coev__spin_unlock(&ch->lk);
			coev__wq_wake(&wk);
			return coev__wq_wait(&ch->lk, q, &n, deadline,
					     withdrawn, ch, COEV_WAIT_CHANNEL,
					     ch);
		}
	}
	/* A send that gave its message to a waiting receiver leaves the
	 * receivers' marks up: that receiver most likely comes back to wait
	 * (a ping-pong, a consumer that keeps up), and marking again costs it
	 * two read-modify-writes. A mark nobody needs is safe (the header's
	 * "no lost wakeup" needs marks only while receivers wait) and costs
	 * one trip to the lock: the next operation that finds it goes there,
	 * and its settle takes the mark down. */
	settle(ch, send && r == 0 && wk.head);
	coev__spin_unlock(&ch->lk);
	coev__wq_wake(&wk);
	return r;
}

static inline int chan_send(coev_chan_t *ch, const void *msg,
			    coev_time_t deadline, bool wait)
{
	int r;

	if (!ch || !msg)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	/* Receivers waiting: to the lock, to hand the message over. */
	if (ch->ring &&
	    !(atomic_load_explicit(&ch->wflags, memory_order_relaxed) &
	      COEV__WF_RECV) &&
	    ring_push_fast(ch, msg) == 0) {
		/* Seq_cst: after the claim's CAS (the header). */
		if (atomic_load(&ch->wflags) & COEV__WF_RECV)
			serve(ch, true);
		return 0;
	}
	return chan_slow(ch, (void *)msg, true, deadline, wait);
}

static inline int chan_recv(coev_chan_t *ch, void *out, coev_time_t deadline,
			    bool wait)
{
	int r;

	if (!ch || !out)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	if (ch->ring && ring_pop_fast(ch, out) == 0) {
		/* Seq_cst: after the claim's CAS (the header). */
		if (atomic_load(&ch->wflags) & COEV__WF_SEND)
			serve(ch, false);
		return 0;
	}
	return chan_slow(ch, out, false, deadline, wait);
}

/*
 * A batch receive: what the ring holds ready, up to max, with one claim
 * (ring_pop_batch_fast); else one message as coev_chan_recv takes it
 * (waiting, if wait), then whatever else is there without waiting. Each
 * message is copied out in the call that claims it, so a wait that ends
 * in a deadline or a cancel has claimed nothing, and none is lost.
 */
static int chan_recv_batch(coev_chan_t *ch, void *out, size_t max,
			   coev_time_t deadline, bool wait)
{
	unsigned char *o = out;
	int n, r;

	if (!ch || !out || max == 0)
		return -EINVAL;
	if (max > INT_MAX)
		max = INT_MAX;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	if (ch->ring && (n = ring_pop_batch_fast(ch, o, max)) > 0) {
		/* Seq_cst: after the claim's CAS (the header). */
		if (atomic_load(&ch->wflags) & COEV__WF_SEND)
			serve(ch, false);
		return n;
	}
	if ((r = chan_slow(ch, o, false, deadline, wait)) != 0)
		return r;
	for (n = 1; (size_t)n < max; n++)
		if (chan_recv(ch, o + (size_t)n * ch->esize, 0, false) != 0)
			break;
	return n;
}

int coev_chan_recv_batch(coev_chan_t *ch, void *out, size_t max,
			 coev_time_t deadline)
{
	return chan_recv_batch(ch, out, max, deadline, true);
}

int coev_chan_try_recv_batch(coev_chan_t *ch, void *out, size_t max)
{
	return chan_recv_batch(ch, out, max, 0, false);
}

int coev_chan_send_dl(coev_chan_t *ch, const void *msg, coev_time_t deadline)
{
	return chan_send(ch, msg, deadline, true);
}

int coev_chan_send(coev_chan_t *ch, const void *msg)
{
	return chan_send(ch, msg, COEV_FOREVER, true);
}

int coev_chan_try_send(coev_chan_t *ch, const void *msg)
{
	return chan_send(ch, msg, 0, false);
}

int coev_chan_recv_dl(coev_chan_t *ch, void *out, coev_time_t deadline)
{
	return chan_recv(ch, out, deadline, true);
}

int coev_chan_recv(coev_chan_t *ch, void *out)
{
	return chan_recv(ch, out, COEV_FOREVER, true);
}

int coev_chan_try_recv(coev_chan_t *ch, void *out)
{
	return chan_recv(ch, out, 0, false);
}

int coev_chan_close(coev_chan_t *ch)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	bool was;

	if (!ch)
		return -EINVAL;
	coev__spin_lock(&ch->lk);
	was = atomic_load_explicit(&ch->closed, memory_order_relaxed);
	if (!was) {
		atomic_store_explicit(&ch->closed, true, memory_order_relaxed);
		/* No send claims a slot after this. */
		if (ch->ring)
			atomic_fetch_or(&ch->tail, COEV__T_CLOSED);
		/* Waiting receivers get what claims are still being written,
		 * then COEV_ECLOSED. Waiting senders keep their messages. */
		serve_recv(ch, &wk);
		grant_all(&ch->sendq, COEV_ECLOSED, &wk);
		coev__chan_settle(ch);
	}
	coev__spin_unlock(&ch->lk);
	coev__wq_wake(&wk);
	return was ? COEV_ECLOSED : 0;
}
