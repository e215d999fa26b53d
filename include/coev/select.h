/* SPDX-License-Identifier: MIT */
/*
 * coev/select.h — wait on anything at once: one select over channel sends
 * and receives, futures, tasks' ends, fds' readiness and deadlines
 * (tokio's select!, Go's select with time.After and ctx.Done(),
 * asyncio.wait(return_when=FIRST_COMPLETED) over mixed awaitables).
 *
 *     int v;
 *     coev_any_t cs[] = {
 *             coev_any_recv(jobs, &v),
 *             coev_any_future(reply),
 *             coev_any_task(worker),
 *             coev_any_fd(sock, COEV_READ),
 *             coev_any_until(coev_deadline(COEV_SEC)),
 *     };
 *     switch (coev_select_any(cs, 5, COEV_FOREVER)) {
 *     case 0: ... v received ...
 *     case 1: ... cs[1].result is the future's result ...
 *     ...
 *     }
 *
 * Rules:
 *  1. Exactly one case is chosen, the first that is ready; when several
 *     are, one is picked at random, so none starves (Go's rule).
 *  2. The cases that lose have no effect: a channel, broadcast or
 *     latest-value case that was not chosen sent or received nothing; a
 *     future stays awaitable, a task's handle stays joinable (select
 *     never consumes it), an fd's data stays unread, a stream's bytes
 *     stay buffered for its next read. Only the chosen case moves a
 *     message.
 *  3. What a case waits for, and its result when chosen (case.result):
 *       COEV_ANY_SEND / _RECV  the message at buf sent to, or received
 *                              from, chan: 0, COEV_ECLOSED or -ENOMEM as
 *                              for coev_select (coev/chan.h);
 *       COEV_ANY_FUTURE        future complete: its result
 *                              (coev_future_poll's);
 *       COEV_ANY_TASK          task ended: its result (join it to consume
 *                              the handle; the join does not wait), or
 *                              -ESHUTDOWN when a shutdown gave up on it;
 *       COEV_ANY_FD            fd ready for events (COEV_READ and/or
 *                              COEV_WRITE; a hang-up or an error readies
 *                              both): the events ready, or a negative
 *                              errno (-EBADF: not open);
 *       COEV_ANY_DEADLINE      coev_now() has reached at: 0;
 *       COEV_ANY_STREAM_BYTES  stream has bytes to read: how many are
 *                              buffered (> 0), COEV_EEOF at its end, or
 *                              the transport's error;
 *       COEV_ANY_STREAM_LINE   stream has a whole line ("\n"): its length
 *                              with the "\n" (coev_stream_read_line then
 *                              returns it without waiting), COEV_EEOF when
 *                              the stream ends first, -EMSGSIZE when max
 *                              bytes hold no "\n", or the transport's
 *                              error.
 *       COEV_ANY_BCAST         a broadcast receiver has something: a
 *                              value (received into buf: 0),
 *                              COEV_ELAGGED or COEV_ECLOSED, as
 *                              coev_bcast_try_recv answers;
 *       COEV_ANY_LATEST        a latest-value receiver has a version it
 *                              has not seen (received into buf: 0), or
 *                              COEV_ECLOSED, as coev_latest_try_recv.
 *       COEV_ANY_EVENT         event is set (Go's ctx.Done(): an event a
 *                              canceller sets): 0; the event stays set.
 *       COEV_ANY_SIGNAL        a delivery the signal watch has not
 *                              returned: its signal number (> 0), with
 *                              the coev_siginfo_t in buf when buf is not
 *                              NULL (coev_signal_wait's answer).
 *     A stream case reads ahead what its transport has without waiting
 *     (it stays buffered: nothing is consumed) and waits on the stream's
 *     fd (coev_stream_fileno), so it needs a stream with an fd and a
 *     task.
 *     A case of kind COEV_ANY_NONE, or whose object is NULL (fd < 0), is
 *     never chosen, which switches it off without rebuilding the array.
 *  4. Waits follow coev/sync.h's rules: an absolute deadline for the whole
 *     call, -ETIMEDOUT and -ECANCELED; a channel case a partner completed
 *     before the give-up is returned rather than the error.
 *  5. Tasks suspend; plain threads block (without fd or stream cases:
 *     those need a worker's loop); a worker thread outside a task gets
 *     COEV_ENOTCORO. The cases live in the caller's frame, and the call
 *     takes about 16 KiB of its stack (room for COEV_SELECT_MAX cases);
 *     nothing is allocated, except that a stream case may grow the
 *     stream's read buffer, as a read would.
 */
#ifndef COEV_SELECT_H
#define COEV_SELECT_H

#include "chan.h"
#include "error.h"
#include "future.h"
#include "broadcast.h"
#include "io.h"
#include "latest.h"
#include "signal.h"
#include "stream.h"
#include "sync.h"
#include "task.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
	COEV_ANY_NONE = 0,
	COEV_ANY_SEND = 1,
	COEV_ANY_RECV = 2,
	COEV_ANY_FUTURE = 3,
	COEV_ANY_TASK = 4,
	COEV_ANY_FD = 5,
	COEV_ANY_DEADLINE = 6,
	COEV_ANY_STREAM_BYTES = 7,
	COEV_ANY_STREAM_LINE = 8,
	COEV_ANY_BCAST = 9,
	COEV_ANY_LATEST = 10,
	COEV_ANY_EVENT = 11,
	COEV_ANY_SIGNAL = 12,
};

/* A STREAM_LINE case's longest line when its max is 0. */
#define COEV_ANY_LINE_MAX ((size_t)64 * 1024)

/* One case of coev_select_any: kind says which fields it reads. */
typedef struct coev_any {
	int kind;		  /* COEV_ANY_* */
	coev_chan_t *chan;	  /* SEND, RECV */
	void *buf;		  /* SEND: the message; RECV: where it goes */
	coev_future_t *future;	  /* FUTURE (the caller holds a reference) */
	coev_task_t *task;	  /* TASK (a handle not joined nor detached) */
	coev_stream_t *stream;	  /* STREAM_* (the caller is its reader) */
	coev_bcast_rx_t *bcast;	  /* BCAST: receive into buf */
	coev_latest_rx_t *latest; /* LATEST: receive into buf */
	coev_event_t *event;	  /* EVENT */
	coev_signal_t *signal;	  /* SIGNAL: info into buf (may be NULL) */
	size_t max;		  /* STREAM_LINE: longest line (0: LINE_MAX) */
	int fd;			  /* FD */
	unsigned events;	  /* FD: COEV_READ, COEV_WRITE or both */
	coev_time_t at;		  /* DEADLINE: absolute, from coev_now() */
	int result;		  /* out: the chosen case's result (rule 3) */
} coev_any_t;

/* Case builders, for arrays written as lists. */
static inline coev_any_t coev__any_case(int kind)
{
	coev_any_t c = {kind, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			NULL, NULL, 0,	  -1,	0,    0,    0};
	return c;
}

static inline coev_any_t coev_any_send(coev_chan_t *ch, const void *msg)
{
	coev_any_t c = coev__any_case(COEV_ANY_SEND);
	c.chan = ch;
	c.buf = (void *)msg;
	return c;
}

static inline coev_any_t coev_any_recv(coev_chan_t *ch, void *out)
{
	coev_any_t c = coev__any_case(COEV_ANY_RECV);
	c.chan = ch;
	c.buf = out;
	return c;
}

static inline coev_any_t coev_any_future(coev_future_t *f)
{
	coev_any_t c = coev__any_case(COEV_ANY_FUTURE);
	c.future = f;
	return c;
}

static inline coev_any_t coev_any_task(coev_task_t *t)
{
	coev_any_t c = coev__any_case(COEV_ANY_TASK);
	c.task = t;
	return c;
}

static inline coev_any_t coev_any_fd(int fd, unsigned events)
{
	coev_any_t c = coev__any_case(COEV_ANY_FD);
	c.fd = fd;
	c.events = events;
	return c;
}

static inline coev_any_t coev_any_until(coev_time_t at)
{
	coev_any_t c = coev__any_case(COEV_ANY_DEADLINE);
	c.at = at;
	return c;
}

static inline coev_any_t coev_any_bcast(coev_bcast_rx_t *rx, void *out)
{
	coev_any_t c = coev__any_case(COEV_ANY_BCAST);
	c.bcast = rx;
	c.buf = out;
	return c;
}

static inline coev_any_t coev_any_latest(coev_latest_rx_t *rx, void *out)
{
	coev_any_t c = coev__any_case(COEV_ANY_LATEST);
	c.latest = rx;
	c.buf = out;
	return c;
}

static inline coev_any_t coev_any_event(coev_event_t *e)
{
	coev_any_t c = coev__any_case(COEV_ANY_EVENT);
	c.event = e;
	return c;
}

static inline coev_any_t coev_any_signal(coev_signal_t *w, coev_siginfo_t *info)
{
	coev_any_t c = coev__any_case(COEV_ANY_SIGNAL);
	c.signal = w;
	c.buf = info;
	return c;
}

static inline coev_any_t coev_any_bytes(coev_stream_t *s)
{
	coev_any_t c = coev__any_case(COEV_ANY_STREAM_BYTES);
	c.stream = s;
	return c;
}

static inline coev_any_t coev_any_line(coev_stream_t *s, size_t max)
{
	coev_any_t c = coev__any_case(COEV_ANY_STREAM_LINE);
	c.stream = s;
	c.max = max;
	return c;
}

/*
 * coev_select_any — wait until one of the n cases is ready, perform it
 * (a channel case) or report it (the others), and return its index; the
 * others have no effect (rules 1-3). deadline bounds the whole call
 * (COEV_FOREVER: none; a DEADLINE case is a case, returned by index).
 * Returns the index, -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO, or -EINVAL
 * (NULL cases with n > 0, n > COEV_SELECT_MAX, an unknown kind, a channel,
 * broadcast or latest-value case with a NULL buf, an fd case with bad events or from a plain
 * thread, a stream case outside a task or on a stream without an fd),
 * -EDEADLK (a task case names the caller). A task handle another
 * caller is joining aborts, as a second join does. With no usable case it
 * waits until the deadline. May suspend.
 * coev_try_select_any — the same without waiting: -EAGAIN when no case is
 * ready. Any thread (a worker thread outside a task too).
 */
COEV_API int coev_select_any(coev_any_t *cases, size_t n, coev_time_t deadline);
COEV_API int coev_try_select_any(coev_any_t *cases, size_t n);

#ifdef __cplusplus
}
#endif

#endif
