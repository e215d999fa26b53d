/* SPDX-License-Identifier: MIT */
/*
 * io/stream.c — buffered byte streams (coev/stream.h): lines, delimiters,
 * exact counts, peek, and coalesced writes over any transport.
 *
 * The read buffer is one contiguous region with the unread bytes between
 * rstart and rend, so a delimiter search (memchr, memmem) always looks at
 * contiguous bytes and peek can hand out a plain pointer. Compaction moves
 * the unread bytes to the front only when the free tail is short and the
 * move is cheap (at most half the buffer), or when there is no room left
 * at all; otherwise the next read goes into the tail, so a stream that
 * reads whole lines seldom moves bytes. The buffer grows past bufsize
 * only while a call's max (read_until) or n (peek) asks for more bytes
 * than fit, doubling with an overflow check, and shrinks back to bufsize
 * once drained, so one long line does not pin a large buffer. Rejected:
 * a ring buffer, whose wrap every search and every peek would have to
 * handle (or copy around).
 * Buffers are allocated at their first use: a stream only read (a
 * child's stdout) never allocates a write buffer, and ten thousand idle
 * connections cost no buffers until they read.
 *
 * A delimiter search remembers how many start positions it has ruled out
 * (scan) and which delimiter it looked for, so a long line arriving in
 * small pieces is searched once, not once per piece, and a read_until
 * that timed out resumes its search in the next call. Consuming bytes
 * moves scan back by the same amount.
 *
 * Calls touch the transport only when the buffer cannot answer: a read
 * of buffered bytes makes no system call, and a read into an empty buffer
 * of at least a buffer's worth goes straight into the caller's memory
 * (one copy saved). End of stream is remembered: once the transport has
 * said 0, reads answer from the buffer and then 0 or COEV_EEOF without
 * asking the transport again (as asyncio's StreamReader does).
 *
 * Writes copy into the write buffer while they fit. A write that does not
 * fit first sends what is buffered; over an fd a write of at least a
 * buffer's worth sends the buffered bytes and the caller's in one writev.
 * Over other transports such a write passes through the buffer, a
 * buffer's worth at a time: a transport may keep bytes it took but could
 * not send yet and need the same bytes offered again (OpenSSL's pending
 * record, coev/tls.h rule 4), which only bytes the stream still holds can
 * be; written straight from the caller's memory, the bytes a failed write
 * reports as not accepted would go out with the next write anyway, in
 * place of that write's own. Nothing is lost (rule 2): a failed flush
 * leaves the unsent bytes buffered from wstart, and every read path
 * consumes only what it reports.
 *
 * The transport's functions are called as (s->ops->read)(...): the
 * simulation build (fuzz/sim_io_redirect.h) defines read, write, close
 * and shutdown as function-like macros, which the parentheses keep out.
 *
 * The reader's fields (r*, scan, eof) and the writer's (w*) are disjoint,
 * so one reader task and one writer task may use a stream at once on
 * different workers (rule 1) without a lock.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sched/internal.h"
#include "io/internal.h"

/* Delimiters up to this length are remembered between calls, so a search
 * resumes where the last one stopped; longer ones start over each call. */
#define STREAM_DELIM_KEEP 16

struct coev_stream {
	const coev_stream_ops_t *ops;
	void *ctx;
	size_t bufsize;

	/* Reader's state. */
	unsigned char *rbuf;
	size_t rcap, rstart, rend;
	size_t scan; /* start positions from rstart ruled out for sdelim */
	size_t sdlen;
	unsigned char sdelim[STREAM_DELIM_KEEP];
	bool eof;

	/* Writer's state. */
	unsigned char *wbuf;
	size_t wstart, wend;

	int fd; /* the fd transport's ctx (coev_stream_fd) */
};

size_t coev__stream_read_capacity(const coev_stream_t *s)
{
	return s->rcap;
}

/* ---- the fd transport ---------------------------------------------------- */

/*
 * Over an fd the transport's ctx is the stream's own fd field, so that a
 * shutdown of a pipe can give the fd up (below) and fileno then says -1.
 */
static int fd_of(void *ctx)
{
	return *(int *)ctx;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n, coev_time_t deadline)
{
	return coev_read(fd_of(ctx), buf, n, deadline);
}

static ssize_t fd_write(void *ctx, const void *buf, size_t n,
			coev_time_t deadline)
{
	return coev_write(fd_of(ctx), buf, n, deadline);
}

/*
 * A socket ends its write direction with shutdown(SHUT_WR). A pipe's
 * write end has no half-close: closing it is the only way its reader
 * sees end of stream (a child's stdin), and nothing else can use a
 * write-only fd, so it is closed here and the stream keeps -1.
 */
static int fd_shutdown(void *ctx, coev_time_t deadline)
{
	int *fdp = ctx;
	int rc = coev_shutdown(*fdp, SHUT_WR);

	(void)deadline;
	if (rc == -ENOTSOCK && (fcntl(*fdp, F_GETFL) & O_ACCMODE) == O_WRONLY) {
		rc = coev_close(*fdp);
		*fdp = -1;
	}
	return rc;
}

static void fd_close(void *ctx)
{
	if (fd_of(ctx) >= 0)
		coev_close(fd_of(ctx));
}

static const coev_stream_ops_t fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.shutdown = fd_shutdown,
	.close = fd_close,
	.fd = fd_of,
};

/* ---- creation and release ------------------------------------------------ */

int coev_stream_new(const coev_stream_ops_t *ops, void *ctx, size_t bufsize,
		    coev_stream_t **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!ops || !ops->read || !ops->write)
		return -EINVAL;
	if (bufsize == 0)
		bufsize = COEV_STREAM_BUF_DEFAULT;
	if (bufsize > COEV_STREAM_PEEK_MAX)
		return -EINVAL;
	coev_stream_t *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->ctx = ctx;
	s->bufsize = bufsize;
	*out = s;
	return 0;
}

int coev_stream_fd(int fd, size_t bufsize, coev_stream_t **out)
{
	if (fd < 0) {
		if (out)
			*out = NULL;
		return -EBADF;
	}
	int rc = coev_stream_new(&fd_ops, NULL, bufsize, out);

	if (rc == 0) {
		(*out)->fd = fd;
		(*out)->ctx = &(*out)->fd;
	}
	return rc;
}

void coev_stream_close(coev_stream_t *s)
{
	if (!s)
		return;
	if (s->ops->close)
		(s->ops->close)(s->ctx);
	free(s->rbuf);
	free(s->wbuf);
	free(s);
}

int coev_stream_fileno(const coev_stream_t *s)
{
	if (!s)
		coev__panic("coev_stream_fileno: NULL stream");
	if (!s->ops->fd)
		return -1;
	return (s->ops->fd)(s->ctx);
}

/* Calls that may wait must come from a task (rule 4). */
static int stream_enter(const coev_stream_t *s)
{
	if (!s)
		return -EINVAL;
	return coev_self() ? 0 : COEV_ENOTCORO;
}

/* ---- the read buffer ----------------------------------------------------- */

size_t coev_stream_buffered(const coev_stream_t *s)
{
	if (!s)
		coev__panic("coev_stream_buffered: NULL stream");
	return s->rend - s->rstart;
}

static void rconsume(coev_stream_t *s, size_t n)
{
	s->rstart += n;
	s->scan = s->scan > n ? s->scan - n : 0;
	if (s->rstart < s->rend)
		return;
	s->rstart = s->rend = 0;
	/* Drained: a buffer grown for one long line goes back to bufsize.
	 * A failed shrink keeps the larger buffer, which is still valid. */
	if (s->rcap > s->bufsize) {
		unsigned char *p = realloc(s->rbuf, s->bufsize);
		if (p) {
			s->rbuf = p;
			s->rcap = s->bufsize;
		}
	}
}

/* Copy n buffered bytes to buf and consume them. */
static void rtake(coev_stream_t *s, void *buf, size_t n)
{
	memcpy(buf, s->rbuf + s->rstart, n);
	rconsume(s, n);
}

/* A buffer of cap bytes holding the unread bytes at its front. */
static int rrealloc(coev_stream_t *s, size_t cap)
{
	size_t have = s->rend - s->rstart;
	unsigned char *p = malloc(cap);

	if (!p)
		return -ENOMEM;
	if (have)
		memcpy(p, s->rbuf + s->rstart, have);
	free(s->rbuf);
	s->rbuf = p;
	s->rcap = cap;
	s->rstart = 0;
	s->rend = have;
	return 0;
}

/*
 * Make room after rend for a transport read, for a call that wants limit
 * bytes buffered in all (limit > buffered). Compacts when cheap or
 * unavoidable, grows (never past limit) when the buffer is full. Returns
 * 0 or -ENOMEM (nothing lost: the old buffer stays).
 */
static int rroom(coev_stream_t *s, size_t limit)
{
	size_t have = s->rend - s->rstart;
	size_t tail = s->rcap - s->rend;

	if (!s->rbuf)
		return rrealloc(s, s->bufsize);
	if (tail > 0 && (tail >= s->rcap / 4 || tail >= limit - have))
		return 0;
	if (s->rstart > 0 && have <= s->rcap / 2) {
		/* A buffer grown for a long line goes back to bufsize here
		 * as well, for a stream that never quite drains; the copy
		 * replaces the move (and a failed malloc keeps the move). */
		if (s->rcap > s->bufsize && have <= s->bufsize / 2 &&
		    rrealloc(s, s->bufsize) == 0)
			return 0;
		memmove(s->rbuf, s->rbuf + s->rstart, have);
		s->rstart = 0;
		s->rend = have;
		return 0;
	}
	if (s->rcap < limit && (tail == 0 || s->rstart == 0)) {
		size_t cap = s->rcap <= SIZE_MAX / 2 ? s->rcap * 2 : SIZE_MAX;
		if (cap > limit)
			cap = limit;
		return rrealloc(s, cap);
	}
	if (tail == 0) {
		memmove(s->rbuf, s->rbuf + s->rstart, have);
		s->rstart = 0;
		s->rend = have;
	}
	return 0;
}

/*
 * One transport read into the buffer, for a call that wants limit bytes
 * buffered. Returns the count (> 0), 0 at end of stream (remembered), or
 * a negative code; the buffered bytes are untouched on error.
 */
static ssize_t rfill(coev_stream_t *s, size_t limit, coev_time_t deadline)
{
	if (s->eof)
		return 0;
	int rc = rroom(s, limit);
	if (rc < 0)
		return rc;
	ssize_t r = (s->ops->read)(s->ctx, s->rbuf + s->rend, s->rcap - s->rend,
				   deadline);
	if (r == 0)
		s->eof = true;
	else if (r > 0)
		s->rend += (size_t)r;
	return r;
}

/* ---- reads --------------------------------------------------------------- */

ssize_t coev_stream_read(coev_stream_t *s, void *buf, size_t n,
			 coev_time_t deadline)
{
	int rc = stream_enter(s);
	size_t have;

	if (rc < 0)
		return rc;
	if (n == 0)
		return 0;
	if (!buf)
		return -EINVAL;
	have = s->rend - s->rstart;
	if (have == 0) {
		if (s->eof)
			return 0;
		/* A large read into an empty buffer skips the copy. */
		if (n >= s->bufsize) {
			ssize_t r = (s->ops->read)(s->ctx, buf, n, deadline);
			if (r == 0)
				s->eof = true;
			return r;
		}
		ssize_t r = rfill(s, s->bufsize, deadline);
		if (r <= 0)
			return r;
		have = (size_t)r;
	}
	if (n > have)
		n = have;
	rtake(s, buf, n);
	return (ssize_t)n;
}

ssize_t coev_stream_read_exactly(coev_stream_t *s, void *buf, size_t n,
				 size_t *done, coev_time_t deadline)
{
	int rc = stream_enter(s);
	size_t got = 0;
	ssize_t r = 0;

	if (done)
		*done = 0;
	if (rc < 0)
		return rc;
	if (!buf && n)
		return -EINVAL;
	while (got < n) {
		size_t have = s->rend - s->rstart, want = n - got;
		if (have > 0) {
			size_t k = have < want ? have : want;
			rtake(s, (char *)buf + got, k);
			got += k;
			continue;
		}
		if (want >= s->bufsize && !s->eof) {
			r = (s->ops->read)(s->ctx, (char *)buf + got, want,
					   deadline);
			if (r > 0)
				got += (size_t)r;
			else if (r == 0)
				s->eof = true;
		} else {
			r = rfill(s, s->bufsize, deadline);
		}
		if (r <= 0) {
			if (r == 0)
				r = COEV_EEOF;
			break;
		}
	}
	if (done)
		*done = got;
	return got == n ? (ssize_t)n : r;
}

/* Reset the remembered search when the delimiter is not the last one. */
static void scan_for(coev_stream_t *s, const void *delim, size_t dlen)
{
	if (dlen == s->sdlen && memcmp(delim, s->sdelim, dlen) == 0)
		return;
	s->scan = 0;
	s->sdlen = 0;
	if (dlen <= STREAM_DELIM_KEEP) {
		memcpy(s->sdelim, delim, dlen);
		s->sdlen = dlen;
	}
}

/*
 * Look for delim in the first max buffered bytes, from the first start
 * position not yet ruled out. Returns the length through the delimiter,
 * or 0 when it is not there (and records the positions ruled out).
 */
static size_t search(coev_stream_t *s, const void *delim, size_t dlen,
		     size_t max)
{
	size_t have = s->rend - s->rstart;
	size_t len = have < max ? have : max;

	if (len < dlen)
		return 0;
	size_t from = s->scan, end = len - dlen + 1; /* start positions */
	if (from < end) {
		const unsigned char *base = s->rbuf + s->rstart;
		const unsigned char *p =
			dlen == 1
				? memchr(base + from, *(const char *)delim,
					 end - from)
				: memmem(base + from, len - from, delim, dlen);
		if (p)
			return (size_t)(p - base) + dlen;
		from = end;
	}
	/* Only a delimiter the stream remembers keeps its scan. */
	s->scan = s->sdlen ? from : 0;
	return 0;
}

ssize_t coev_stream_read_until(coev_stream_t *s, const void *delim, size_t dlen,
			       void *buf, size_t max, coev_time_t deadline)
{
	int rc = stream_enter(s);

	if (rc < 0)
		return rc;
	if (!delim || dlen == 0 || max < dlen || !buf)
		return -EINVAL;
	scan_for(s, delim, dlen);
	for (;;) {
		size_t n = search(s, delim, dlen, max);
		if (n > 0) {
			rtake(s, buf, n);
			return (ssize_t)n;
		}
		if (s->rend - s->rstart >= max)
			return -EMSGSIZE;
		if (s->eof)
			return COEV_EEOF;
		ssize_t r = rfill(s, max, deadline);
		if (r == 0)
			return COEV_EEOF;
		if (r < 0)
			return r;
	}
}

ssize_t coev_stream_read_line(coev_stream_t *s, char *buf, size_t max,
			      coev_time_t deadline)
{
	return coev_stream_read_until(s, "\n", 1, buf, max, deadline);
}

int coev_stream_peek(coev_stream_t *s, size_t n, const void **data,
		     size_t *avail, coev_time_t deadline)
{
	int rc = stream_enter(s);

	if (rc < 0)
		return rc;
	if (n > COEV_STREAM_PEEK_MAX)
		return -EMSGSIZE;
	while (s->rend - s->rstart < n) {
		ssize_t r = rfill(s, n, deadline);
		if (r == 0)
			break;
		if (r < 0)
			return (int)r;
	}
	if (data)
		*data = s->rbuf ? s->rbuf + s->rstart : NULL;
	if (avail)
		*avail = s->rend - s->rstart;
	return s->rend - s->rstart < n ? COEV_EEOF : 0;
}

int coev_stream_consume(coev_stream_t *s, size_t n)
{
	if (!s || n > s->rend - s->rstart)
		return -EINVAL;
	if (n)
		rconsume(s, n);
	return 0;
}

/* ---- writes -------------------------------------------------------------- */

/* Write out the buffered bytes; on error those not sent stay, in order. */
static int wflush(coev_stream_t *s, coev_time_t deadline)
{
	while (s->wstart < s->wend) {
		ssize_t r = (s->ops->write)(s->ctx, s->wbuf + s->wstart,
					    s->wend - s->wstart, deadline);
		if (r < 0)
			return (int)r;
		s->wstart += (size_t)r;
	}
	s->wstart = s->wend = 0;
	return 0;
}

/*
 * Over an fd: the buffered bytes and the caller's n in one writev, until
 * the buffer is out; then the rest of the caller's bytes directly.
 * *put counts the caller's bytes sent. Returns 0 or a negative code.
 */
static int wdirect(coev_stream_t *s, const char *buf, size_t n, size_t *put,
		   coev_time_t deadline)
{
	int fd = fd_of(s->ctx);

	while (fd >= 0 && s->wstart < s->wend) {
		struct iovec iov[2] = {
			{s->wbuf + s->wstart, s->wend - s->wstart},
			{(void *)buf, n},
		};
		ssize_t r = coev_writev(fd, iov, 2, deadline);
		if (r < 0)
			return (int)r;
		size_t k = (size_t)r, b = s->wend - s->wstart;
		s->wstart += k < b ? k : b;
		if (k > b)
			*put = k - b;
	}
	int rc = wflush(s, deadline);
	while (rc == 0 && *put < n) {
		ssize_t r =
			(s->ops->write)(s->ctx, buf + *put, n - *put, deadline);
		if (r < 0)
			return (int)r;
		*put += (size_t)r;
	}
	return rc;
}

/*
 * Over other transports: the caller's n bytes through the buffer, written
 * out each time it fills; the last piece stays buffered (rule 5). *put
 * counts the bytes copied in (accepted: sent, or buffered for the next
 * flush). Returns 0 or a negative code.
 */
static int wthrough(coev_stream_t *s, const char *buf, size_t n, size_t *put,
		    coev_time_t deadline)
{
	while (*put < n) {
		if (s->wend == s->bufsize) {
			int rc = wflush(s, deadline);
			if (rc < 0)
				return rc;
		}
		size_t k = s->bufsize - s->wend;
		if (k > n - *put)
			k = n - *put;
		memcpy(s->wbuf + s->wend, buf + *put, k);
		s->wend += k;
		*put += k;
	}
	return 0;
}

ssize_t coev_stream_write(coev_stream_t *s, const void *buf, size_t n,
			  size_t *done, coev_time_t deadline)
{
	int rc = stream_enter(s);
	size_t put = 0;

	if (done)
		*done = 0;
	if (rc < 0)
		return rc;
	if (n == 0)
		return 0;
	if (!buf)
		return -EINVAL;
	if (n >= s->bufsize && s->ops == &fd_ops) {
		rc = wdirect(s, buf, n, &put, deadline);
	} else {
		if (!s->wbuf && !(s->wbuf = malloc(s->bufsize)))
			return -ENOMEM;
		if (n >= s->bufsize) {
			rc = wthrough(s, buf, n, &put, deadline);
		} else {
			if (n > s->bufsize - s->wend)
				rc = wflush(s, deadline);
			if (rc == 0) {
				memcpy(s->wbuf + s->wend, buf, n);
				s->wend += n;
				put = n;
			}
		}
	}
	if (done)
		*done = put;
	return rc < 0 ? rc : (ssize_t)n;
}

int coev_stream_flush(coev_stream_t *s, coev_time_t deadline)
{
	int rc = stream_enter(s);

	return rc < 0 ? rc : wflush(s, deadline);
}

int coev_stream_shutdown(coev_stream_t *s, coev_time_t deadline)
{
	int rc = stream_enter(s);

	if (rc == 0)
		rc = wflush(s, deadline);
	if (rc == 0 && s->ops->shutdown)
		rc = (s->ops->shutdown)(s->ctx, deadline);
	return rc;
}
