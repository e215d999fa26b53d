/* SPDX-License-Identifier: MIT */
/*
 * coev/ws.h — WebSockets (RFC 6455) for tasks, server and client, over any
 * coev stream (coev/stream.h): a plain socket or TLS alike.
 *
 *     coev_stream_t *s;
 *     coev_ws_t *ws;
 *     coev_ws_msg_t m;
 *
 *     coev_stream_fd(coev_accept(lfd, NULL, NULL, dl), 0, &s);
 *     if (coev_ws_accept(s, NULL, &ws, dl) < 0) { ...; coev_stream_close(s); }
 *     while (coev_ws_recv(ws, &m, COEV_FOREVER) == 0) {   // async for ...
 *             coev_ws_send(ws, m.type, m.data, m.len, COEV_FOREVER);
 *             coev_ws_msg_release(&m);
 *     }
 *     coev_ws_free(ws);                       // closes s too
 *
 * Build with -lcoev_ws -lwslay -lhttp_parser -lcrypto (pkg-config
 * coev-ws; CMake coev::ws).
 *
 * The framing is Debian's wslay (libwslay-dev), used through its event
 * API: it parses and builds frames, unmasks, reassembles fragments,
 * checks UTF-8 in text messages (also across fragments), answers pings
 * and closes, and never touches a socket itself: its recv and send
 * callbacks read and write the stream, whose calls take deadlines. The
 * alternative, libwebsockets, owns its event loop and its sockets (a
 * second loop beside the worker's, and no TLS of coev's choosing);
 * hand-written framing is exactly what a maintained library is for.
 * The upgrade request and answer are parsed with Debian's http-parser,
 * and the Sec-WebSocket-Accept value is SHA-1 and base64 from OpenSSL's
 * libcrypto.
 *
 * Rules:
 *  1. One task may receive (coev_ws_recv) while another sends
 *     (coev_ws_send, coev_ws_ping) on the same connection, on any
 *     workers. Two receivers, or two senders, take turns: the second
 *     waits (bounded by its deadline) until the first returns.
 *  2. Pings are answered with pongs, and a close from the peer with a
 *     close, by whichever task receives; a program that only sends must
 *     still receive for those answers to go out.
 *  3. After the close handshake (either side starting it) coev_ws_recv
 *     returns COEV_EWSCLOSED and coev_ws_close_code tells the peer's code.
 *     A protocol violation by the peer closes the connection with the
 *     code RFC 6455 names and fails coev_ws_recv with: -EMSGSIZE (a
 *     message over max_message: 1009), -EILSEQ (invalid UTF-8 in a text
 *     message: 1007), -EPROTO (an unmasked frame to a server, a masked one
 *     to a client, a bad opcode or fragment order: 1002); later calls
 *     return COEV_EWSCLOSED. A peer that drops the connection without a
 *     close makes coev_ws_recv return COEV_EEOF (close code 1006).
 *  4. Deadlines and cancellation end a wait with -ETIMEDOUT or -ECANCELED
 *     and lose nothing: a message half received stays half received in
 *     wslay and the next coev_ws_recv continues it; a message half sent
 *     is finished by the next send, ping or close.
 *  5. Every call that can wait must be made from a task (COEV_ENOTCORO).
 */
#ifndef COEV_WS_H
#define COEV_WS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "stream.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_ws coev_ws_t;

/* Message types (the RFC's opcodes). */
#define COEV_WS_TEXT 1
#define COEV_WS_BINARY 2

/* Close codes of RFC 6455, section 7.4.1, that coev sends or reports. */
#define COEV_WS_NORMAL 1000
#define COEV_WS_GOING_AWAY 1001
#define COEV_WS_PROTOCOL_ERROR 1002
#define COEV_WS_NO_STATUS 1005
#define COEV_WS_ABNORMAL 1006
#define COEV_WS_INVALID_DATA 1007
#define COEV_WS_TOO_BIG 1009

/* The largest message received when opts give 0: 16 MiB. */
#define COEV_WS_MAX_MESSAGE_DEFAULT (16u << 20)
/* The largest upgrade request or answer, headers included. */
#define COEV_WS_MAX_HANDSHAKE 8192u

/*
 * coev_ws_opts_t — options of coev_ws_accept and coev_ws_connect (NULL:
 * all defaults).
 *  max_message: the largest message coev_ws_recv accepts, in bytes (0:
 *               COEV_WS_MAX_MESSAGE_DEFAULT); a larger one closes with
 *               1009.
 *  protocols:   NULL, or a NULL-terminated list of subprotocols. A server
 *               picks the first of its list that the client offered (none
 *               when no entry matches); a client offers them all and
 *               accepts only one of them in the answer.
 *  headers:     client only: NULL, or extra request header lines, each
 *               ending in "\r\n" (an Origin, say).
 */
typedef struct coev_ws_opts {
	size_t max_message;
	const char *const *protocols;
	const char *headers;
} coev_ws_opts_t;

/*
 * coev_ws_msg_t — a received message. data is NUL-terminated (not counted
 * in len) so that text can be used as a C string; it belongs to the
 * caller until coev_ws_msg_release.
 */
typedef struct coev_ws_msg {
	int type; /* COEV_WS_TEXT or COEV_WS_BINARY */
	size_t len;
	unsigned char *data;
} coev_ws_msg_t;

/*
 * coev_ws_accept — the server's side of the handshake on stream s: read
 * the HTTP upgrade request, check it (GET, HTTP/1.1, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Version: 13, a Sec-WebSocket-Key of
 * 16 bytes in base64) and answer 101 with Sec-WebSocket-Accept (and the
 * chosen subprotocol). A bad request is answered 400 (426 with
 * Sec-WebSocket-Version: 13 for another version) and fails with -EPROTO;
 * a request over COEV_WS_MAX_HANDSHAKE bytes is answered 431 and fails
 * with -EMSGSIZE; a stream that ends first gives COEV_EEOF; also any
 * stream error, -ENOMEM. On success *out owns s (coev_ws_free closes it);
 * on failure the caller still owns s. Suspends; allocates.
 */
COEV_API int coev_ws_accept(coev_stream_t *s, const coev_ws_opts_t *opts,
			    coev_ws_t **out, coev_time_t deadline);

/*
 * coev_ws_connect — the client's side on stream s (connected to the
 * server): send a GET for path (with Host: host) and a random
 * Sec-WebSocket-Key, read the answer and check it: status 101, Upgrade
 * and Connection, the Sec-WebSocket-Accept value for the key, and a
 * subprotocol only among those offered. Returns 0 or -EPROTO (any of
 * these wrong; another status), -EMSGSIZE (an answer over
 * COEV_WS_MAX_HANDSHAKE), COEV_EEOF, a stream error, -EINVAL (NULL host
 * or path, or either holding a CR or LF), -ENOMEM. Ownership as
 * coev_ws_accept. Suspends; allocates.
 */
COEV_API int coev_ws_connect(coev_stream_t *s, const char *host,
			     const char *path, const coev_ws_opts_t *opts,
			     coev_ws_t **out, coev_time_t deadline);

/*
 * coev_ws_recv — the next text or binary message, fragments joined, into
 * *msg. Pings met on the way are answered; pongs are counted
 * (coev_ws_pongs). Returns 0, or COEV_EWSCLOSED (the close handshake is
 * done, or this side closed), -EMSGSIZE, -EILSEQ, -EPROTO (rule 3),
 * COEV_EEOF (the peer dropped the connection), -ETIMEDOUT, -ECANCELED
 * (rule 4), a stream error, -ENOMEM. Suspends; allocates msg->data.
 */
COEV_API int coev_ws_recv(coev_ws_t *ws, coev_ws_msg_t *msg,
			  coev_time_t deadline);

/* coev_ws_msg_release — free msg->data and clear *msg. NULL is allowed. */
COEV_API void coev_ws_msg_release(coev_ws_msg_t *msg);

/*
 * coev_ws_send — send one message of type COEV_WS_TEXT or COEV_WS_BINARY
 * (len bytes of data; text must be UTF-8, which is not checked) and wait
 * until it is written to the stream and flushed. Returns 0, or
 * COEV_EWSCLOSED (a close was sent), -EINVAL (another type), -ETIMEDOUT,
 * -ECANCELED (rule 4: the message stays queued and goes out with the next
 * send), a stream error, -ENOMEM. Suspends; copies data.
 */
COEV_API int coev_ws_send(coev_ws_t *ws, int type, const void *data, size_t len,
			  coev_time_t deadline);

/*
 * coev_ws_ping — send a ping carrying len (<= 125) bytes of data. The pong
 * comes back through the receiving task (rule 2), which counts it:
 * coev_ws_pongs. Returns as coev_ws_send (-EINVAL for len > 125).
 */
COEV_API int coev_ws_ping(coev_ws_t *ws, const void *data, size_t len,
			  coev_time_t deadline);

/* coev_ws_pongs — how many pongs were received so far. Any thread. */
COEV_API uint64_t coev_ws_pongs(const coev_ws_t *ws);

/*
 * coev_ws_close — start (or finish) the close handshake: send a close with
 * code (1000-4999, not 1005 or 1006) and reason (NULL, or up to 123 bytes
 * of UTF-8), then receive until the peer's close arrives, dropping
 * messages still in flight; when another task is receiving, wait for it
 * to see the close instead. Then end the stream's write direction.
 * Returns 0, or -EINVAL (a bad code, a reason too long), -ETIMEDOUT,
 * -ECANCELED, COEV_EEOF (the peer dropped the connection instead), a
 * stream error. Calling it again after it returned 0 returns 0.
 * Suspends.
 */
COEV_API int coev_ws_close(coev_ws_t *ws, int code, const char *reason,
			   coev_time_t deadline);

/*
 * coev_ws_close_code — the close code the peer sent (COEV_WS_NO_STATUS
 * for a close without one), COEV_WS_ABNORMAL when the connection ended
 * without a close, or 0 while none was received. reason (may be NULL)
 * receives the peer's reason, NUL-terminated, cut to size bytes. Any
 * thread; never waits.
 */
COEV_API int coev_ws_close_code(const coev_ws_t *ws, char *reason, size_t size);

/*
 * coev_ws_path, coev_ws_protocol — the request's path (the target of the
 * GET, with its query) and the chosen subprotocol ("" for none). Valid
 * until coev_ws_free. Any thread.
 */
COEV_API const char *coev_ws_path(const coev_ws_t *ws);
COEV_API const char *coev_ws_protocol(const coev_ws_t *ws);

/* coev_ws_stream — the stream under ws (still owned by ws). */
COEV_API coev_stream_t *coev_ws_stream(const coev_ws_t *ws);

/*
 * coev_ws_free — release ws and close its stream, without waiting (no
 * close frame is sent: call coev_ws_close first for a clean end). NULL is
 * allowed. No task may be using ws.
 */
COEV_API void coev_ws_free(coev_ws_t *ws);

#ifdef __cplusplus
}
#endif

#endif
