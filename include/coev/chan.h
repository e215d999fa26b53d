/* SPDX-License-Identifier: MIT */
/*
 * coev/chan.h — channels: typed-by-size message queues between tasks and
 * plain threads, with close and select (Go's channels, asyncio.Queue).
 *
 * A channel carries messages of one fixed size, copied in and out. Its
 * capacity is the number of messages it buffers:
 *   0                    a rendezvous: a send waits for a receiver, and
 *                        the message goes straight from one to the other
 *                        (Go's unbuffered channel);
 *   n > 0                a bounded queue: a send waits while n are queued;
 *   COEV_CHAN_UNBOUNDED  sends never wait (the buffer grows as needed).
 *
 * Rules:
 *  1. Many senders and many receivers. Each message is received exactly
 *     once. Messages from one sender arrive in the order it sent them;
 *     waiting senders and receivers are served first in, first out.
 *  2. Close: after coev_chan_close, sends fail with COEV_ECLOSED (their
 *     message stays with the caller), senders waiting at the close fail
 *     the same way, and receivers first get what is buffered, then
 *     COEV_ECLOSED.
 *  3. Waits follow coev/sync.h's rules: a _dl form with an absolute
 *     deadline, -ETIMEDOUT and -ECANCELED, and nothing lost: a send that
 *     fails did not send, a receive that fails received nothing; a waiter
 *     already handed its message when its deadline passed succeeds.
 *  4. Tasks suspend; plain threads block; a worker thread outside a task
 *     may only use the try forms (the others return COEV_ENOTCORO there,
 *     even when they would not have to wait).
 *  5. A channel is shared: coev_chan_new allocates it, coev_chan_free
 *     frees it once nobody uses it (waiters at free time abort).
 */
#ifndef COEV_CHAN_H
#define COEV_CHAN_H

#include <stddef.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_chan coev_chan_t;

#define COEV_CHAN_UNBOUNDED ((size_t)-1)

/*
 * coev_chan_new — a channel for messages of elem_size bytes (1 to 65536)
 * with the given capacity (0, n, or COEV_CHAN_UNBOUNDED). Stores it in
 * *out and returns 0, or -EINVAL (NULL out, bad elem_size), -ENOMEM (also
 * when capacity * elem_size overflows).
 * Any thread; allocates the channel and a bounded channel's buffer.
 * coev_chan_free — free ch and any messages still buffered (their bytes
 * only). It must have no waiters (aborts otherwise). NULL is ignored.
 */
COEV_API int coev_chan_new(coev_chan_t **out, size_t elem_size,
			   size_t capacity);
COEV_API void coev_chan_free(coev_chan_t *ch);

/*
 * coev_chan_send / _send_dl — copy elem_size bytes from msg into ch,
 * waiting for room (or, on a rendezvous channel, for a receiver). Returns
 * 0, COEV_ECLOSED (closed before the message went in), -ETIMEDOUT,
 * -ECANCELED, -ENOMEM (unbounded channel: no memory to grow; nothing was
 * sent), COEV_ENOTCORO, -EINVAL (NULL argument). The caller keeps msg.
 * coev_chan_try_send — the same without waiting: -EAGAIN when a send
 * would have to wait. Any thread.
 */
COEV_API int coev_chan_send(coev_chan_t *ch, const void *msg);
COEV_API int coev_chan_send_dl(coev_chan_t *ch, const void *msg,
			       coev_time_t deadline);
COEV_API int coev_chan_try_send(coev_chan_t *ch, const void *msg);

/*
 * coev_chan_recv / _recv_dl — take the oldest message into out (elem_size
 * bytes), waiting for one. Returns 0, COEV_ECLOSED (closed and empty: no
 * message will ever come), -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO, -EINVAL.
 * coev_chan_try_recv — the same without waiting: -EAGAIN when empty and
 * open. Any thread.
 */
COEV_API int coev_chan_recv(coev_chan_t *ch, void *out);
COEV_API int coev_chan_recv_dl(coev_chan_t *ch, void *out,
			       coev_time_t deadline);
COEV_API int coev_chan_try_recv(coev_chan_t *ch, void *out);

/*
 * coev_chan_recv_batch — take up to max of the oldest messages into out
 * (an array of max elements), waiting until the deadline (COEV_FOREVER:
 * no limit) for the first; the others are what is there without waiting.
 * Each message as coev_chan_recv would take it: rules 1 to 3 hold per
 * message, and a wait that fails took none. A bounded channel hands over
 * the ready messages at its head with one claim (one atomic operation and
 * one pass over their cache lines, not one per message). Returns how many
 * (1 to max), or COEV_ECLOSED (closed and empty), -ETIMEDOUT, -ECANCELED,
 * COEV_ENOTCORO, -EINVAL (NULL argument, max 0). At most INT_MAX per call.
 * coev_chan_try_recv_batch — the same without waiting: -EAGAIN when empty
 * and open. Any thread; no allocation.
 */
COEV_API int coev_chan_recv_batch(coev_chan_t *ch, void *out, size_t max,
				  coev_time_t deadline);
COEV_API int coev_chan_try_recv_batch(coev_chan_t *ch, void *out, size_t max);

/*
 * coev_chan_close — close ch (rule 2) and wake everyone waiting on it.
 * Returns 0, or COEV_ECLOSED if it was closed already. Any thread.
 * coev_chan_len — messages buffered now (a snapshot); coev_chan_cap — the
 * capacity given to coev_chan_new; coev_chan_closed — 1 once closed. These
 * three abort on a NULL ch, with a line naming the call; every other call
 * here returns -EINVAL for a NULL channel.
 */
COEV_API int coev_chan_close(coev_chan_t *ch);
COEV_API size_t coev_chan_len(coev_chan_t *ch);
COEV_API size_t coev_chan_cap(coev_chan_t *ch);
COEV_API int coev_chan_closed(coev_chan_t *ch);

/* --- select ----------------------------------------------------------- */

enum { COEV_SEL_SEND = 1, COEV_SEL_RECV = 2 };

/*
 * One case of a select: a send of the message at buf, or a receive into
 * buf, on ch. A case whose ch is NULL is never chosen (Go's nil channel),
 * which switches a case off without rebuilding the array.
 */
typedef struct coev_sel {
	coev_chan_t *ch;
	int op;	    /* COEV_SEL_SEND or COEV_SEL_RECV */
	void *buf;  /* message to send, or where to receive one */
	int result; /* out: 0, COEV_ECLOSED or -ENOMEM for the chosen case */
} coev_sel_t;

/*
 * coev_select / _select_dl — wait until one of the n cases can proceed,
 * perform exactly that one and return its index; no other case has any
 * effect. When several are ready one is picked at random, so none
 * starves. A closed channel makes its case ready: the case's result is
 * COEV_ECLOSED (a receive got nothing; a send sent nothing). A send to an
 * unbounded channel whose buffer could not grow is chosen with the result
 * -ENOMEM (nothing sent), as coev_chan_send fails. Returns the
 * index, -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO, or -EINVAL (NULL cases
 * with n > 0, a bad op or a NULL buf, n > COEV_SELECT_MAX). One channel
 * may appear in several cases. With no usable case it waits until the
 * deadline.
 * coev_try_select — the same without waiting: -EAGAIN when no case is
 * ready. Any thread.
 */
#define COEV_SELECT_MAX 64

COEV_API int coev_select(coev_sel_t *cases, size_t n);
COEV_API int coev_select_dl(coev_sel_t *cases, size_t n, coev_time_t deadline);
COEV_API int coev_try_select(coev_sel_t *cases, size_t n);

#ifdef __cplusplus
}
#endif

#endif
