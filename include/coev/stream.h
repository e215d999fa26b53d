/* SPDX-License-Identifier: MIT */
/*
 * coev/stream.h — buffered byte streams for tasks: read a line, read until
 * a delimiter, read exactly n bytes, peek, and buffered writes with flush,
 * each with a deadline (asyncio's StreamReader and StreamWriter, Go's
 * bufio).
 *
 * A stream sits over a transport: a plain fd (coev_stream_fd), or anything
 * that moves bytes with a deadline, given as a coev_stream_ops_t
 * (coev_stream_new). TLS (coev/tls.h) is such a transport, and WebSockets
 * (coev/ws.h) run over any stream, so a program reads lines the same way
 * from a socket, a pipe or a TLS connection.
 *
 * Rules:
 *  1. At most one task reads and one task writes a stream at a time; the
 *     reader and the writer may be different tasks, on different workers.
 *  2. Nothing is lost. A read that fails (-ETIMEDOUT, -ECANCELED,
 *     -EMSGSIZE, COEV_EEOF, a transport error) consumed only what it
 *     reports through its done argument; every other byte stays buffered
 *     and the next read returns it. A write that fails reports through
 *     done how many bytes the stream accepted; those are sent or stay
 *     buffered for the next flush.
 *  3. Reads return a count of bytes; coev_stream_read returns 0 at end of
 *     stream. The calls that need a given amount or a delimiter return
 *     COEV_EEOF when the stream ends first. End of stream is remembered:
 *     once the transport has reported it, the stream answers from its
 *     buffer and never reads the transport again.
 *  4. Calls that can wait must be made from a task (COEV_ENOTCORO
 *     otherwise). Cancellation ends any wait with -ECANCELED, as it does
 *     for fds (coev/io.h).
 *  5. Writes are buffered: bytes reach the peer when the buffer fills, on
 *     coev_stream_flush, or on coev_stream_shutdown. coev_stream_close
 *     does not flush (it never waits); unflushed bytes are dropped.
 */
#ifndef COEV_STREAM_H
#define COEV_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coev_stream coev_stream_t;

/*
 * coev_stream_ops_t — a transport under a stream. ctx is the pointer given
 * to coev_stream_new. Each function is called from the task using the
 * stream, on whichever worker it runs.
 *  read:     read up to n (> 0) bytes: a count > 0, 0 at end of stream, or
 *            a negative code (-ETIMEDOUT when deadline passes first).
 *  write:    write up to n (> 0) bytes: a count > 0 or a negative code.
 *  shutdown: end the write direction cleanly (TCP FIN, TLS close_notify);
 *            0 or a negative code. May be NULL (nothing to do).
 *  close:    release ctx and everything it owns (its fd). Never waits.
 *            May be NULL.
 *  fd:       the fd under the transport (for readiness waits), or -1.
 *            May be NULL (no fd).
 */
typedef struct coev_stream_ops {
	ssize_t (*read)(void *ctx, void *buf, size_t n, coev_time_t deadline);
	ssize_t (*write)(void *ctx, const void *buf, size_t n,
			 coev_time_t deadline);
	int (*shutdown)(void *ctx, coev_time_t deadline);
	void (*close)(void *ctx);
	int (*fd)(void *ctx);
} coev_stream_ops_t;

/* The read and write buffer size when 0 is given: 16 KiB each. */
#define COEV_STREAM_BUF_DEFAULT 16384u

/*
 * coev_stream_new — a stream over the transport ops/ctx, with buffers of
 * bufsize bytes (0: COEV_STREAM_BUF_DEFAULT). The read buffer grows past
 * bufsize only as a call's max argument asks (read_until, peek), and
 * shrinks back when drained. On success the stream owns ctx (ops->close
 * runs at coev_stream_close); on failure (-ENOMEM, -EINVAL for NULL ops,
 * a NULL read or write, or an absurd bufsize) the caller still owns it.
 * Any thread; never waits.
 */
COEV_API int coev_stream_new(const coev_stream_ops_t *ops, void *ctx,
			     size_t bufsize, coev_stream_t **out);

/*
 * coev_stream_fd — a stream over a non-blocking fd (a socket, a pipe, a
 * tty). On success the stream owns fd and closes it at coev_stream_close
 * (with coev_close); on failure the caller still owns it. Errors as
 * coev_stream_new, and -EBADF for a negative fd.
 */
COEV_API int coev_stream_fd(int fd, size_t bufsize, coev_stream_t **out);

/*
 * coev_stream_close — release the stream, its buffers and its transport
 * (closing its fd). Unflushed written bytes are dropped (rule 5); a
 * program that wants them sent calls coev_stream_flush or
 * coev_stream_shutdown first. NULL is allowed. No task may be using the
 * stream.
 */
COEV_API void coev_stream_close(coev_stream_t *s);

/*
 * coev_stream_read — up to n bytes: what is buffered, or else what one
 * transport read brings. Returns a count > 0, 0 at end of stream, or a
 * negative code.
 */
COEV_API ssize_t coev_stream_read(coev_stream_t *s, void *buf, size_t n,
				  coev_time_t deadline);

/*
 * coev_stream_read_exactly — exactly n bytes into buf. Returns n, or a
 * negative code: COEV_EEOF when the stream ended first, or any error of a
 * read. done (may be NULL) receives the bytes placed in buf, also on
 * error; those are consumed, nothing else is.
 */
COEV_API ssize_t coev_stream_read_exactly(coev_stream_t *s, void *buf, size_t n,
					  size_t *done, coev_time_t deadline);

/*
 * coev_stream_read_until — the bytes up to and including the first
 * occurrence of the delimiter delim (dlen > 0 bytes), copied into buf
 * (max bytes). Returns their count, or a negative code:
 *  -EMSGSIZE   the delimiter is not within the first max bytes;
 *  COEV_EEOF   the stream ended before the delimiter;
 *  -EINVAL     dlen is 0, or max < dlen;
 *  or any error of a read (-ETIMEDOUT, -ECANCELED, ...).
 * On any error nothing is consumed: the bytes stay buffered and
 * coev_stream_read or coev_stream_peek returns them.
 */
COEV_API ssize_t coev_stream_read_until(coev_stream_t *s, const void *delim,
					size_t dlen, void *buf, size_t max,
					coev_time_t deadline);

/*
 * coev_stream_read_line — coev_stream_read_until with "\n": one line,
 * its newline included. Same returns.
 */
COEV_API ssize_t coev_stream_read_line(coev_stream_t *s, char *buf, size_t max,
				       coev_time_t deadline);

/*
 * coev_stream_peek — wait until at least n bytes are buffered, or the
 * stream ends, and show them without consuming: *data points into the
 * stream's buffer (valid until the next read or consume on s) and *avail
 * receives how many bytes are there (>= n, or fewer at end of stream).
 * Returns 0, COEV_EEOF when the stream ended with fewer than n bytes
 * (*avail tells how many; they stay readable), -EMSGSIZE when n exceeds
 * what a stream may buffer (COEV_STREAM_PEEK_MAX), or any read error.
 */
#define COEV_STREAM_PEEK_MAX (64u << 20)
COEV_API int coev_stream_peek(coev_stream_t *s, size_t n, const void **data,
			      size_t *avail, coev_time_t deadline);

/*
 * coev_stream_consume — drop n bytes from the front of the read buffer
 * (after coev_stream_peek). Returns 0, or -EINVAL when fewer than n bytes
 * are buffered. Never waits.
 */
COEV_API int coev_stream_consume(coev_stream_t *s, size_t n);

/* coev_stream_buffered — bytes readable now without waiting (the
 * reader's view, rule 1). Never waits. s NULL aborts, naming the call. */
COEV_API size_t coev_stream_buffered(const coev_stream_t *s);

/*
 * coev_stream_write — buffer n bytes for the peer, writing the buffer out
 * when it fills (writes larger than the buffer go out directly, after
 * what was buffered). Returns n or a negative code (rule 2); done (may be
 * NULL) receives the bytes accepted, also on error.
 */
COEV_API ssize_t coev_stream_write(coev_stream_t *s, const void *buf, size_t n,
				   size_t *done, coev_time_t deadline);

/*
 * coev_stream_flush — write out everything buffered. Returns 0 or a
 * negative code; on error the bytes not yet written stay buffered, in
 * order, and a later flush sends them.
 */
COEV_API int coev_stream_flush(coev_stream_t *s, coev_time_t deadline);

/*
 * coev_stream_shutdown — flush, then end the write direction (the peer
 * reads end of stream; TLS sends close_notify). Reads stay possible.
 * Returns 0 or a negative code. Over an fd that is a pipe's write end,
 * which has no half-close, the fd is closed (the reader sees end of
 * stream) and coev_stream_fileno returns -1 from then on.
 */
COEV_API int coev_stream_shutdown(coev_stream_t *s, coev_time_t deadline);

/* coev_stream_fileno — the fd under the stream's transport, or -1. s
 * NULL aborts, naming the call. */
COEV_API int coev_stream_fileno(const coev_stream_t *s);

#ifdef __cplusplus
}
#endif

#endif
