/* SPDX-License-Identifier: MIT */
/*
 * adapters/ws.c — a WebSocket connection (coev/ws.h) on wslay's event API
 * over a coev stream: receiving, sending, pings and the close handshake.
 * The upgrade handshake that makes a connection is in ws_handshake.c.
 *
 * The model. wslay's event context does the protocol: it parses frames,
 * checks masks, opcodes, fragment order and UTF-8, enforces the message
 * limit, reassembles fragments, queues a pong for each ping and a close
 * in answer to a close, and frames what is queued for sending. It never
 * waits: its recv callback takes only bytes the stream has already
 * buffered (and says "would block" when there are none), and its send
 * callback appends frames to the connection's output buffer. All waiting
 * happens outside wslay, in the calling task, on the stream's calls with
 * the caller's deadline: the receiver waits for bytes with
 * coev_stream_peek and runs wslay again; the sender writes the output
 * buffer to the stream and flushes it.
 *
 * Concurrency. wslay's context is not thread-safe, and a receiver and a
 * sender may run at once on two workers (rule 1 of coev/ws.h). Three
 * locks, taken in this order:
 *  - rmu (a coev mutex): the reader role. Held by coev_ws_recv and the
 *    receiving part of coev_ws_close; only its holder reads the stream
 *    and runs wslay_event_recv.
 *  - wmu (a coev mutex): the writer role. Only its holder runs
 *    wslay_event_send, touches the output buffer and writes the stream.
 *  - mu (a pthread mutex): wslay's context and the fields marked [mu].
 *    Held only around wslay calls, which never wait, so never across a
 *    suspension: a plain mutex is right and cannot fail.
 * So the receiver waits for bytes while the sender writes, and neither
 * holds wslay's lock while waiting. Rejected: one coev mutex around
 * wslay with the callbacks waiting inside it. A sender blocked on a full
 * socket would then keep the receiver from reading, and two peers that
 * both write more than the sockets hold before reading would deadlock.
 *
 * Answers the receiver queues (pongs, the close reply) must go out while
 * a sender may hold wmu for a long time. The receiver never waits for
 * wmu: it sets kick (under mu) and tries the lock; if the lock is held,
 * its holder, on leaving (writer_exit), sees kick and sends them. The
 * kick is set before the try and read after the unlock, so one of the
 * two always sees the other.
 *
 * Errors. wslay closes the connection itself on a protocol violation (it
 * queues a close with the RFC's code and stops reading). The code is
 * known only once the close has gone out, so the receiver sends it (this
 * time waiting for wmu, a rare path) and maps the code sent to -EPROTO,
 * -EILSEQ or -EMSGSIZE, returned once; afterwards COEV_EWSCLOSED.
 * Transport errors met while writing stick (werr) and fail later sends.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "ws_internal.h"

/* The output buffer is written out once it holds this much. */
#define OUT_HIGH 65536u

struct msg {
	struct msg *next;
	coev_ws_msg_t m;
};

struct coev_ws {
	coev_stream_t *s;
	wslay_event_context_ptr ev; /* [mu] */
	pthread_mutex_t mu;
	coev_mutex_t rmu, wmu;
	int server;
	char *path, *protocol;

	/* [mu] */
	struct msg *head, *tail; /* received, not yet returned */
	int nomem;		 /* a message could not be copied */
	int kick;		 /* the receiver queued answers (above) */
	int close_code;		 /* the peer's close code, or 1006, or 0 */
	char reason[124];
	int rerr_once; /* an error coev_ws_recv returns once */
	int rerr;      /* what it returns after that (sticky) */
	int closed;    /* coev_ws_close completed */

	/* [rmu] the stream ended (COEV_EEOF) or failed under the reader */
	int in_err;

	/* [wmu] */
	unsigned char *out;
	size_t olen, opos, ocap;
	int werr; /* a transport error while writing (sticky) */

	atomic_uint_least64_t pongs;
};

/* --- wslay's callbacks (called under mu) --------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ev, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	coev_ws_t *ws = ud;
	size_t have = coev_stream_buffered(ws->s);
	ssize_t n;

	(void)flags;
	if (have == 0) {
		wslay_event_set_error(ev, ws->in_err
						  ? WSLAY_ERR_CALLBACK_FAILURE
						  : WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	/* Bytes are buffered, so this read returns them without waiting. */
	n = coev_stream_read(ws->s, buf, len < have ? len : have, COEV_FOREVER);
	if (n <= 0) {
		ws->in_err = n < 0 ? (int)n : COEV_EEOF;
		wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return n;
}

static ssize_t on_send(wslay_event_context_ptr ev, const uint8_t *data,
		       size_t len, int flags, void *ud)
{
	coev_ws_t *ws = ud;
	size_t room;

	(void)flags;
	if (ws->olen >= OUT_HIGH) {
		wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (ws->olen + len > ws->ocap) {
		size_t cap = ws->ocap ? ws->ocap : 4096;
		unsigned char *p;

		while (cap < ws->olen + len && cap < 2 * OUT_HIGH)
			cap *= 2;
		p = realloc(ws->out, cap);
		if (!p) {
			wslay_event_set_error(ev, WSLAY_ERR_NOMEM);
			return -1;
		}
		ws->out = p;
		ws->ocap = cap;
	}
	room = ws->ocap - ws->olen;
	if (len > room)
		len = room;
	memcpy(ws->out + ws->olen, data, len);
	ws->olen += len;
	return (ssize_t)len;
}

static int on_genmask(wslay_event_context_ptr ev, uint8_t *buf, size_t len,
		      void *ud)
{
	(void)ev;
	(void)ud;
	/* The mask must be unpredictable to the page's script (RFC 6455,
	 * 10.3); libcrypto's generator is seeded and thread-safe. */
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_close_frame(coev_ws_t *ws,
			   const struct wslay_event_on_msg_recv_arg *a)
{
	size_t rl = a->msg_length > 2 ? a->msg_length - 2 : 0;

	ws->close_code = a->status_code ? a->status_code : COEV_WS_NO_STATUS;
	if (rl >= sizeof(ws->reason))
		rl = sizeof(ws->reason) - 1;
	if (rl)
		memcpy(ws->reason, a->msg + 2, rl);
	ws->reason[rl] = 0;
}

static void on_msg(wslay_event_context_ptr ev,
		   const struct wslay_event_on_msg_recv_arg *a, void *ud)
{
	coev_ws_t *ws = ud;
	struct msg *m;

	(void)ev;
	if (a->opcode == WSLAY_PONG) {
		atomic_fetch_add_explicit(&ws->pongs, 1, memory_order_relaxed);
		return;
	}
	if (a->opcode == WSLAY_CONNECTION_CLOSE) {
		on_close_frame(ws, a);
		return;
	}
	if (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME)
		return; /* pings: wslay has queued the pong */
	m = malloc(sizeof(*m));
	if (m)
		m->m.data = malloc(a->msg_length + 1);
	if (!m || !m->m.data) {
		free(m);
		ws->nomem = 1;
		return;
	}
	if (a->msg_length)
		memcpy(m->m.data, a->msg, a->msg_length);
	m->m.data[a->msg_length] = 0;
	m->m.len = a->msg_length;
	m->m.type =
		a->opcode == WSLAY_TEXT_FRAME ? COEV_WS_TEXT : COEV_WS_BINARY;
	m->next = NULL;
	if (ws->tail)
		ws->tail->next = m;
	else
		ws->head = m;
	ws->tail = m;
}

/* --- life --------------------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

int coev__ws_new(coev_stream_t *s, int server, const coev_ws_opts_t *opts,
		 const char *path, const char *protocol, coev_ws_t **out)
{
	static const struct wslay_event_callbacks cbs = {
		on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg};
	coev_ws_t *ws = calloc(1, sizeof(*ws));
	int r;

	if (!ws)
		return -ENOMEM;
	ws->s = s;
	ws->server = server;
	ws->path = dup_or_empty(path);
	ws->protocol = dup_or_empty(protocol);
	r = server ? wslay_event_context_server_init(&ws->ev, &cbs, ws)
		   : wslay_event_context_client_init(&ws->ev, &cbs, ws);
	if (r != 0 || !ws->path || !ws->protocol) {
		if (r == 0)
			wslay_event_context_free(ws->ev);
		free(ws->path);
		free(ws->protocol);
		free(ws);
		return -ENOMEM;
	}
	wslay_event_config_set_max_recv_msg_length(
		ws->ev, opts && opts->max_message
				? opts->max_message
				: COEV_WS_MAX_MESSAGE_DEFAULT);
	pthread_mutex_init(&ws->mu, NULL);
	coev_mutex_init(&ws->rmu, 0);
	coev_mutex_init(&ws->wmu, 0);
	*out = ws;
	return 0;
}

void coev_ws_free(coev_ws_t *ws)
{
	struct msg *m, *next;

	if (!ws)
		return;
	for (m = ws->head; m; m = next) {
		next = m->next;
		free(m->m.data);
		free(m);
	}
	wslay_event_context_free(ws->ev);
	coev_stream_close(ws->s);
	coev_mutex_destroy(&ws->rmu);
	coev_mutex_destroy(&ws->wmu);
	pthread_mutex_destroy(&ws->mu);
	free(ws->out);
	free(ws->path);
	free(ws->protocol);
	free(ws);
}

void coev_ws_msg_release(coev_ws_msg_t *msg)
{
	if (!msg)
		return;
	free(msg->data);
	memset(msg, 0, sizeof(*msg));
}

/* --- the writer role (wmu) ----------------------------------------------- */

/* A write error: timeouts and cancels lose nothing; others stick. */
static int write_failed(coev_ws_t *ws, int r)
{
	if (r != -ETIMEDOUT && r != -ECANCELED)
		ws->werr = r;
	return r;
}

/*
 * Holding wmu: let wslay frame everything queued into the output buffer
 * and write it to the stream, then flush. Bytes the stream did not take
 * stay in the buffer for the next holder, in order.
 */
static int flush_locked(coev_ws_t *ws, coev_time_t deadline)
{
	for (;;) {
		int want, sr = 0;

		if (ws->werr)
			return ws->werr;
		if (ws->opos < ws->olen) {
			size_t done = 0;
			ssize_t w = coev_stream_write(ws->s, ws->out + ws->opos,
						      ws->olen - ws->opos,
						      &done, deadline);
			ws->opos += done;
			if (w < 0)
				return write_failed(ws, (int)w);
			continue;
		}
		ws->opos = ws->olen = 0;
		pthread_mutex_lock(&ws->mu);
		want = wslay_event_want_write(ws->ev);
		if (want)
			sr = wslay_event_send(ws->ev);
		pthread_mutex_unlock(&ws->mu);
		if (sr != 0)
			return write_failed(ws, -ENOMEM);
		if (ws->olen == 0)
			break;
	}
	{
		int r = coev_stream_flush(ws->s, deadline);
		return r < 0 ? write_failed(ws, r) : 0;
	}
}

/* Release wmu, first sending what a receiver queued meanwhile (kick). */
static void writer_exit(coev_ws_t *ws, coev_time_t deadline)
{
	for (;;) {
		int kick;

		coev_mutex_unlock(&ws->wmu);
		pthread_mutex_lock(&ws->mu);
		kick = ws->kick;
		pthread_mutex_unlock(&ws->mu);
		/* A holder who took wmu after our unlock sees kick itself. */
		if (!kick || coev_mutex_trylock(&ws->wmu) != 0)
			return;
		pthread_mutex_lock(&ws->mu);
		ws->kick = 0;
		pthread_mutex_unlock(&ws->mu);
		(void)flush_locked(ws, deadline);
	}
}

/* The receiver's answers: sent now when wmu is free, else by its holder. */
static int send_answers(coev_ws_t *ws, coev_time_t deadline)
{
	int r;

	pthread_mutex_lock(&ws->mu);
	ws->kick = 1;
	pthread_mutex_unlock(&ws->mu);
	if (coev_mutex_trylock(&ws->wmu) != 0)
		return 0;
	pthread_mutex_lock(&ws->mu);
	ws->kick = 0;
	pthread_mutex_unlock(&ws->mu);
	r = flush_locked(ws, deadline);
	writer_exit(ws, deadline);
	return r;
}

/* Queue one message (under wmu) and send everything queued. */
static int send_msg(coev_ws_t *ws, uint8_t opcode, const void *data, size_t len,
		    coev_time_t deadline)
{
	struct wslay_event_msg m = {opcode, data, len};
	int r;

	r = coev_mutex_lock_dl(&ws->wmu, deadline);
	if (r < 0)
		return r;
	pthread_mutex_lock(&ws->mu);
	if (ws->werr)
		r = ws->werr;
	else if (wslay_event_get_close_sent(ws->ev) ||
		 !wslay_event_get_write_enabled(ws->ev))
		r = COEV_EWSCLOSED;
	else {
		r = wslay_event_queue_msg(ws->ev, &m);
		r = r == 0			      ? 0
		    : r == WSLAY_ERR_NO_MORE_MSG      ? COEV_EWSCLOSED
		    : r == WSLAY_ERR_INVALID_ARGUMENT ? -EINVAL
						      : -ENOMEM;
	}
	pthread_mutex_unlock(&ws->mu);
	if (r == 0)
		r = flush_locked(ws, deadline);
	writer_exit(ws, deadline);
	return r;
}

int coev_ws_send(coev_ws_t *ws, int type, const void *data, size_t len,
		 coev_time_t deadline)
{
	if (!ws || (type != COEV_WS_TEXT && type != COEV_WS_BINARY) ||
	    (!data && len))
		return -EINVAL;
	return send_msg(ws,
			type == COEV_WS_TEXT ? WSLAY_TEXT_FRAME
					     : WSLAY_BINARY_FRAME,
			data, len, deadline);
}

int coev_ws_ping(coev_ws_t *ws, const void *data, size_t len,
		 coev_time_t deadline)
{
	if (!ws || len > 125 || (!data && len))
		return -EINVAL;
	return send_msg(ws, WSLAY_PING, data, len, deadline);
}

uint64_t coev_ws_pongs(const coev_ws_t *ws)
{
	return atomic_load_explicit(&ws->pongs, memory_order_relaxed);
}

/* --- the reader role (rmu) ----------------------------------------------- */

/* The error for the close code wslay sent after a protocol violation. */
static int error_for_code(int code)
{
	switch (code) {
	case COEV_WS_TOO_BIG: return -EMSGSIZE;
	case COEV_WS_INVALID_DATA: return -EILSEQ;
	case COEV_WS_PROTOCOL_ERROR: return -EPROTO;
	default: return COEV_EWSCLOSED;
	}
}

/*
 * wslay stopped reading without a close from the peer: it queued a close
 * for a violation, whose code is known once sent. Send it (waiting for
 * wmu: a rare path) and set the errors. Called with no lock held.
 */
static int violation(coev_ws_t *ws, coev_time_t deadline)
{
	int r = coev_mutex_lock_dl(&ws->wmu, deadline), code;

	if (r < 0)
		return r;
	r = flush_locked(ws, deadline);
	writer_exit(ws, deadline);
	pthread_mutex_lock(&ws->mu);
	code = wslay_event_get_close_sent(ws->ev)
		       ? wslay_event_get_status_code_sent(ws->ev)
		       : 0;
	if (code) {
		ws->rerr_once = error_for_code(code);
		ws->rerr = COEV_EWSCLOSED;
		r = 0;
	} else if (r != -ETIMEDOUT && r != -ECANCELED) {
		ws->rerr = r < 0 ? r : COEV_EWSCLOSED;
		r = 0;
	} /* else not sent yet, nothing lost: the next call tries again */
	pthread_mutex_unlock(&ws->mu);
	return r;
}

/* Under mu: move the oldest received message to *msg; 1 if there was one. */
static int take_msg(coev_ws_t *ws, coev_ws_msg_t *msg)
{
	struct msg *m = ws->head;

	if (!m)
		return 0;
	ws->head = m->next;
	if (!ws->head)
		ws->tail = NULL;
	*msg = m->m;
	free(m);
	return 1;
}

/*
 * Under mu: take a queued message, or the error to return, or run wslay
 * on what is buffered. Returns 1 (a message), 0 (nothing yet: wait for
 * bytes), 2 (wslay stopped reading for a violation: see violation()), 3
 * (wslay stopped reading just now: step again), or a negative code to
 * return.
 */
static int recv_step(coev_ws_t *ws, coev_ws_msg_t *msg)
{
	int r;

	if (take_msg(ws, msg))
		return 1;
	if (ws->nomem) {
		ws->nomem = 0;
		return -ENOMEM;
	}
	if (ws->rerr_once) {
		r = ws->rerr_once;
		ws->rerr_once = 0;
		return r;
	}
	if (ws->rerr)
		return ws->rerr;
	if (wslay_event_get_close_received(ws->ev)) {
		ws->rerr = COEV_EWSCLOSED;
		return 0;
	}
	if (!wslay_event_get_read_enabled(ws->ev))
		return 2;
	r = wslay_event_recv(ws->ev);
	if (r != 0) {
		if (!ws->close_code)
			ws->close_code = COEV_WS_ABNORMAL;
		ws->rerr_once = ws->in_err ? ws->in_err : -ENOMEM;
		ws->rerr = ws->rerr_once;
	}
	if (take_msg(ws, msg))
		return 1;
	/* A close or a violation stopped reading: look again, no wait. */
	return wslay_event_get_read_enabled(ws->ev) ? 0 : 3;
}

/* Wait for bytes from the peer; an end or a transport error is noted for
 * wslay's recv callback, which reports it on the next run. */
static int wait_bytes(coev_ws_t *ws, coev_time_t deadline)
{
	const void *d;
	size_t avail;
	int r = coev_stream_peek(ws->s, 1, &d, &avail, deadline);

	if (r == COEV_EEOF || (r < 0 && r != -ETIMEDOUT && r != -ECANCELED)) {
		ws->in_err = r;
		return 0;
	}
	return r;
}

static int recv_locked(coev_ws_t *ws, coev_ws_msg_t *msg, coev_time_t deadline)
{
	for (;;) {
		int r, want;

		pthread_mutex_lock(&ws->mu);
		r = recv_step(ws, msg);
		want = wslay_event_want_write(ws->ev);
		pthread_mutex_unlock(&ws->mu);
		/* Errors sending the answers stick for the senders (werr); a
		 * late deadline shows in the wait below. */
		if (want && r != 2)
			(void)send_answers(ws, deadline);
		if (r == 1)
			return 0;
		if (r < 0)
			return r;
		if (r == 2)
			r = violation(ws, deadline);
		else if (r == 0 && !coev_stream_buffered(ws->s) && !ws->rerr)
			r = wait_bytes(ws, deadline);
		if (r < 0)
			return r;
	}
}

int coev_ws_recv(coev_ws_t *ws, coev_ws_msg_t *msg, coev_time_t deadline)
{
	int r;

	if (!ws || !msg)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	r = coev_mutex_lock_dl(&ws->rmu, deadline);
	if (r < 0)
		return r;
	r = recv_locked(ws, msg, deadline);
	coev_mutex_unlock(&ws->rmu);
	return r;
}

/* --- closing -------------------------------------------------------------- */

static int queue_close(coev_ws_t *ws, int code, const char *reason,
		       coev_time_t deadline)
{
	size_t rl = reason ? strlen(reason) : 0;
	int r = coev_mutex_lock_dl(&ws->wmu, deadline);

	if (r < 0)
		return r;
	pthread_mutex_lock(&ws->mu);
	if (!wslay_event_get_close_sent(ws->ev) &&
	    wslay_event_get_write_enabled(ws->ev))
		r = wslay_event_queue_close(ws->ev, (uint16_t)code,
					    (const uint8_t *)reason, rl);
	pthread_mutex_unlock(&ws->mu);
	/* NO_MORE_MSG: a close is queued already (the peer's answer). */
	r = r == 0 || r == WSLAY_ERR_NO_MORE_MSG ? 0 : -ENOMEM;
	if (r == 0)
		r = flush_locked(ws, deadline);
	writer_exit(ws, deadline);
	return r;
}

/* Receive until the peer's close (dropping messages), as the reader. */
static int await_close(coev_ws_t *ws, coev_time_t deadline)
{
	coev_ws_msg_t m;
	int r = coev_mutex_lock_dl(&ws->rmu, deadline);

	if (r < 0)
		return r;
	do {
		memset(&m, 0, sizeof(m));
		r = recv_locked(ws, &m, deadline);
		coev_ws_msg_release(&m);
	} while (r == 0);
	coev_mutex_unlock(&ws->rmu);
	if (r == COEV_EWSCLOSED || r == -EMSGSIZE || r == -EILSEQ ||
	    r == -EPROTO)
		r = 0;
	return r;
}

static int valid_close(int code, const char *reason)
{
	if (reason && strlen(reason) > 123)
		return 0;
	return code >= 1000 && code <= 4999 && code != COEV_WS_NO_STATUS &&
	       code != COEV_WS_ABNORMAL && code != 1015;
}

int coev_ws_close(coev_ws_t *ws, int code, const char *reason,
		  coev_time_t deadline)
{
	int r;

	if (!ws || !valid_close(code, reason))
		return -EINVAL;
	pthread_mutex_lock(&ws->mu);
	r = ws->closed;
	pthread_mutex_unlock(&ws->mu);
	if (r)
		return 0;
	r = queue_close(ws, code, reason, deadline);
	if (r == 0)
		r = await_close(ws, deadline);
	if (r == 0) {
		r = coev_mutex_lock_dl(&ws->wmu, deadline);
		if (r == 0) {
			r = coev_stream_shutdown(ws->s, deadline);
			coev_mutex_unlock(&ws->wmu);
			/* The handshake is done; a peer that has already
			 * closed its socket (-EPIPE, -ENOTCONN) is no
			 * failure of it. */
			if (r != -ETIMEDOUT && r != -ECANCELED)
				r = 0;
		}
	}
	if (r == 0) {
		pthread_mutex_lock(&ws->mu);
		ws->closed = 1;
		pthread_mutex_unlock(&ws->mu);
	}
	return r;
}

int coev_ws_close_code(const coev_ws_t *ws, char *reason, size_t size)
{
	coev_ws_t *w = (coev_ws_t *)ws; /* mu is taken, nothing changed */
	int code;

	pthread_mutex_lock(&w->mu);
	code = w->close_code;
	if (reason && size) {
		strncpy(reason, w->reason, size - 1);
		reason[size - 1] = 0;
	}
	pthread_mutex_unlock(&w->mu);
	return code;
}

const char *coev_ws_path(const coev_ws_t *ws)
{
	return ws->path;
}

const char *coev_ws_protocol(const coev_ws_t *ws)
{
	return ws->protocol;
}

coev_stream_t *coev_ws_stream(const coev_ws_t *ws)
{
	return ws->s;
}
