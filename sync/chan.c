/*
 * sync/chan.c — channels (select is in sync/select.c).
 *
 * A channel is a ring buffer of fixed-size messages plus two wait queues,
 * senders and receivers, all under one spin lock. The invariants, under
 * the lock:
 *   - receivers wait only while the buffer is empty and no sender waits;
 *   - senders wait only while the buffer is full (always, for a
 *     rendezvous) and no receiver waits;
 *   - a closed channel has no waiting senders.
 * So an operation that finds a partner waiting completes with it
 * directly: a send copies its message into the waiting receiver's buffer;
 * a receive takes the buffer's oldest message and moves the head waiting
 * sender's message into the freed slot (order is kept), or, with nothing
 * buffered, copies straight from the waiting sender. Each such hand-over
 * is a grant of the wait-queue protocol (sync/internal.h): the partner is
 * dequeued, its status set and, after the unlock, signalled.
 *
 * An unbounded channel grows its buffer by doubling under the lock; a
 * failed allocation fails that send with -ENOMEM and changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"

#define ELEM_MAX 65536
#define UNBOUNDED_MIN 16

int coev_chan_new(coev_chan_t **out, size_t esize, size_t cap)
{
	coev_chan_t *ch;
	size_t size = cap == COEV_CHAN_UNBOUNDED ? 0 : cap;

	if (!out || esize == 0 || esize > ELEM_MAX)
		return -EINVAL;
	if (size > SIZE_MAX / esize)
		return -ENOMEM;
	if (!(ch = calloc(1, sizeof *ch)))
		return -ENOMEM;
	if (size && !(ch->buf = malloc(size * esize))) {
		free(ch);
		return -ENOMEM;
	}
	atomic_init(&ch->lk, 0);
	atomic_init(&ch->len, 0);
	atomic_init(&ch->closed, false);
	ch->esize = esize;
	ch->cap = cap;
	ch->size = size;
	*out = ch;
	return 0;
}

void coev_chan_free(coev_chan_t *ch)
{
	if (!ch)
		return;
	coev__sync_check_idle(&ch->lk, &ch->recvq, "channel", ch);
	coev__sync_check_idle(&ch->lk, &ch->sendq, "channel", ch);
	free(ch->buf);
	free(ch);
}

size_t coev_chan_len(coev_chan_t *ch)
{
	if (!ch)
		coev__panic("coev_chan_len: NULL channel");
	return atomic_load_explicit(&ch->len, memory_order_relaxed);
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

/* --- the buffer (under lk) -------------------------------------------- */

static inline size_t buffered(coev_chan_t *ch)
{
	return atomic_load_explicit(&ch->len, memory_order_relaxed);
}

static inline void set_buffered(coev_chan_t *ch, size_t n)
{
	atomic_store_explicit(&ch->len, n, memory_order_relaxed);
}

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

static inline unsigned char *slot(coev_chan_t *ch, size_t i)
{
	size_t k = ch->head + i;

	if (k >= ch->size)
		k -= ch->size;
	return ch->buf + k * ch->esize;
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
		memcpy(buf + i * ch->esize, slot(ch, i), ch->esize);
	free(ch->buf);
	ch->buf = buf;
	ch->size = size;
	ch->head = 0;
	return 0;
}

static void push_msg(coev_chan_t *ch, const void *msg)
{
	size_t n = buffered(ch);

	copy_msg(ch, slot(ch, n), msg);
	set_buffered(ch, n + 1);
}

static void pop_msg(coev_chan_t *ch, void *out)
{
	copy_msg(ch, out, slot(ch, 0));
	if (++ch->head == ch->size)
		ch->head = 0;
	set_buffered(ch, buffered(ch) - 1);
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
		/* Acq_rel: pairs with select_wait's withdrawal CAS and its
		 * acquire load of winner (sync/select.c): the select's own
		 * claim and ours decide once who has it. */
		if (!n->sel ||
		    atomic_compare_exchange_strong_explicit(
			    &n->sel->winner, &open, n->index,
			    memory_order_acq_rel, memory_order_relaxed))
			return n;
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

int coev__chan_send_locked(coev_chan_t *ch, const void *msg, coev__wake_t *wk)
{
	coev__wnode_t *n;
	int r;

	if (atomic_load_explicit(&ch->closed, memory_order_relaxed))
		return COEV_ECLOSED;
	if ((n = partner(&ch->recvq)) != NULL) {
		copy_msg(ch, n->buf, msg);
		coev__wq_grant(&ch->recvq, n, 0, wk);
		return 0;
	}
	if (buffered(ch) == ch->size) {
		if (ch->cap != COEV_CHAN_UNBOUNDED)
			return -EAGAIN;
		if ((r = grow(ch)) < 0)
			return r;
	}
	push_msg(ch, msg);
	return 0;
}

int coev__chan_recv_locked(coev_chan_t *ch, void *out, coev__wake_t *wk)
{
	coev__wnode_t *n;

	if (buffered(ch)) {
		pop_msg(ch, out);
		/* A freed slot: the longest-waiting sender fills it. */
		if ((n = partner(&ch->sendq)) != NULL) {
			push_msg(ch, n->buf);
			coev__wq_grant(&ch->sendq, n, 0, wk);
		}
		return 0;
	}
	if ((n = partner(&ch->sendq)) != NULL) {
		copy_msg(ch, out, n->buf);
		coev__wq_grant(&ch->sendq, n, 0, wk);
		return 0;
	}
	return atomic_load_explicit(&ch->closed, memory_order_relaxed)
		       ? COEV_ECLOSED
		       : -EAGAIN;
}

/* --- send and receive -------------------------------------------------- */

/*
 * A send or receive: one attempt, then (if it must wait and may) a node on
 * the right queue with buf as its message or destination.
 */
static int chan_op(coev_chan_t *ch, void *buf, bool send, coev_time_t deadline,
		   bool wait)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	coev__waiter_t wt;
	coev__wnode_t n;
	coev__wq_t *q;
	int r;

	if (!ch || !buf)
		return -EINVAL;
	if (wait && (r = coev__sync_may_block()) < 0)
		return r;
	coev__spin_lock(&ch->lk);
	r = send ? coev__chan_send_locked(ch, buf, &wk)
		 : coev__chan_recv_locked(ch, buf, &wk);
	if (r == -EAGAIN && wait) {
		/* Under the lock: for a task this only fills the waiter; a
		 * plain thread's condition variable is set up, no syscall. */
		if ((r = coev__waiter_begin(&wt)) == 0) {
			coev__wnode_init(&n, &wt);
			n.buf = buf;
			q = send ? &ch->sendq : &ch->recvq;
			coev__wq_push(q, &n);
			coev__spin_unlock(&ch->lk);
			return coev__wq_wait(&ch->lk, q, &n, deadline, NULL,
					     NULL, COEV_WAIT_CHANNEL, ch);
		}
	}
	coev__spin_unlock(&ch->lk);
	coev__wq_wake(&wk);
	return r;
}

int coev_chan_send_dl(coev_chan_t *ch, const void *msg, coev_time_t deadline)
{
	return chan_op(ch, (void *)msg, true, deadline, true);
}

int coev_chan_send(coev_chan_t *ch, const void *msg)
{
	return chan_op(ch, (void *)msg, true, COEV_FOREVER, true);
}

int coev_chan_try_send(coev_chan_t *ch, const void *msg)
{
	return chan_op(ch, (void *)msg, true, 0, false);
}

int coev_chan_recv_dl(coev_chan_t *ch, void *out, coev_time_t deadline)
{
	return chan_op(ch, out, false, deadline, true);
}

int coev_chan_recv(coev_chan_t *ch, void *out)
{
	return chan_op(ch, out, false, COEV_FOREVER, true);
}

int coev_chan_try_recv(coev_chan_t *ch, void *out)
{
	return chan_op(ch, out, false, 0, false);
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
		/* Waiting receivers imply an empty buffer: they get nothing
		 * more. Waiting senders keep their messages. */
		grant_all(&ch->recvq, COEV_ECLOSED, &wk);
		grant_all(&ch->sendq, COEV_ECLOSED, &wk);
	}
	coev__spin_unlock(&ch->lk);
	coev__wq_wake(&wk);
	return was ? COEV_ECLOSED : 0;
}
