/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_stream.c — buffered streams (include/coev/stream.h) over
 * socketpairs, pipes, TCP loopback and memory transports: lines split
 * across many small writes, delimiters spanning refills, multi-byte
 * delimiters, over-long lines, a peer closing mid-line, deadlines and
 * cancellation mid-line, exact reads, peek and consume, write coalescing
 * and large writes (through the buffer over a transport that is not an
 * fd) counted through a counting transport, flushes to a
 * closed peer, a large write cut by its deadline, a pipe ended by
 * shutdown, absurd sizes, a transport giving one byte per read, a 4 MiB
 * line searched in linear time, a grown buffer given back, one reader
 * and one writer per stream at once, and random calls over a failing
 * transport checked against a model of the byte stream.
 *
 * Rule 2 (nothing lost) is what most tests check: after each failure the
 * bytes a call did not report are read back and compared. Peers are
 * plain blocking C on a pthread (so the bytes arrive in the pieces the
 * test chooses, from outside the runtime), or a /usr/bin/python3 process
 * for the TCP test. Every test runs under TU_FD_TEST (no fd leaked).
 */
#include "tests/testutil.h"
#include "io/internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/socket.h>

/* ---- helpers ------------------------------------------------------------- */

/* A socketpair whose end [0] is non-blocking, for the stream; end [1]
 * stays blocking, for a plain-thread peer. */
static void nb_socketpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	assert_int_equal(coev_fd_nonblock(sv[0]), 0);
}

/* A plain thread writing pieces of a script to an fd, each piece its own
 * write(2), then closing the fd when close_at_end is set. */
typedef struct peer {
	int fd;
	const char *data;
	size_t len;
	size_t piece;	/* bytes per write */
	atomic_int *go; /* if set, wait for *go before writing */
	bool close_at_end;
	pthread_t th;
} peer_t;

static void *peer_main(void *arg)
{
	peer_t *p = arg;

	for (size_t off = 0; off < p->len;) {
		size_t k = p->len - off < p->piece ? p->len - off : p->piece;
		ssize_t w = write(p->fd, p->data + off, k);
		TU_CHECK_MSG(w > 0, "peer write: %s", strerror(errno));
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (p->close_at_end)
		close(p->fd);
	return NULL;
}

static void peer_start(peer_t *p)
{
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_join(peer_t *p)
{
	assert_int_equal(pthread_join(p->th, NULL), 0);
}

/* ---- a memory transport that counts its calls ---------------------------- */

typedef struct mem {
	const char *in; /* bytes the reads deliver, then end of stream */
	size_t in_len, in_off;
	size_t per_read; /* at most this many bytes per read (0: no limit) */
	char out[65536]; /* bytes the writes took */
	size_t out_len;
	size_t write_max;   /* at most this many per write (0: no limit) */
	int fail_writes;    /* this many writes fail with -EPIPE first */
	size_t last_read_n; /* the n of the last read */
	int reads, writes, shutdowns, closes;
} mem_t;

static ssize_t mem_read(void *ctx, void *buf, size_t n, coev_time_t dl)
{
	mem_t *m = ctx;

	(void)dl;
	m->reads++;
	m->last_read_n = n;
	size_t k = m->in_len - m->in_off;
	if (k > n)
		k = n;
	if (m->per_read && k > m->per_read)
		k = m->per_read;
	memcpy(buf, m->in + m->in_off, k);
	m->in_off += k;
	return (ssize_t)k;
}

static ssize_t mem_write(void *ctx, const void *buf, size_t n, coev_time_t dl)
{
	mem_t *m = ctx;

	(void)dl;
	m->writes++;
	if (m->fail_writes > 0) {
		m->fail_writes--;
		return -EPIPE;
	}
	if (m->write_max && n > m->write_max)
		n = m->write_max;
	if (n > sizeof m->out - m->out_len)
		return -ENOSPC;
	memcpy(m->out + m->out_len, buf, n);
	m->out_len += n;
	return (ssize_t)n;
}

static int mem_shutdown(void *ctx, coev_time_t dl)
{
	(void)dl;
	((mem_t *)ctx)->shutdowns++;
	return 0;
}

static void mem_close(void *ctx)
{
	((mem_t *)ctx)->closes++;
}

static const coev_stream_ops_t mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

/* ---- lines over a socketpair, written one byte at a time ----------------- */

static int lines_small_writes(void *arg)
{
	int fd = *(int *)arg;
	coev_stream_t *s = NULL;
	char line[64];

	TU_CHECK_EQ(coev_stream_fd(fd, 0, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_fileno(s), fd);
	for (int i = 0; i < 50; i++) {
		char want[32];
		int wl = snprintf(want, sizeof want, "line %d\n", i);
		ssize_t n =
			coev_stream_read_line(s, line, sizeof line, tu_guard());
		TU_CHECK_EQ(n, wl);
		if (n == wl)
			TU_CHECK(memcmp(line, want, (size_t)wl) == 0);
	}
	/* The peer closed: end of stream, 0 from a plain read. */
	TU_CHECK_EQ(coev_stream_read_line(s, line, sizeof line, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(coev_stream_read(s, line, sizeof line, tu_guard()), 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_lines_split_across_small_writes(void **state)
{
	int sv[2];
	char script[1024];
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(script + len, sizeof script - len,
					"line %d\n", i);
	nb_socketpair(sv);
	peer_t p = {.fd = sv[1],
		    .data = script,
		    .len = len,
		    .piece = 1,
		    .close_at_end = true};
	peer_start(&p);
	assert_int_equal(tu_run_main(lines_small_writes, &sv[0], 2), 0);
	peer_join(&p);
	tu_assert_no_failures();
}

/* ---- one byte per read, multi-byte delimiters, counting reads ------------ */

static int one_byte_reads(void *arg)
{
	(void)arg;
	static const char in[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
	mem_t m = {.in = in, .in_len = sizeof in - 1, .per_read = 1};
	coev_stream_t *s = NULL;
	char buf[64];

	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 0, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_fileno(s), -1);
	ssize_t n = coev_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof buf,
					   tu_guard());
	TU_CHECK_EQ(n, 27);
	TU_CHECK(n == 27 && memcmp(buf, in, 27) == 0);
	/* One read per byte, and none past the delimiter. */
	TU_CHECK_EQ(m.reads, 27);
	n = coev_stream_read_exactly(s, buf, 4, NULL, tu_guard());
	TU_CHECK_EQ(n, 4);
	TU_CHECK(memcmp(buf, "body", 4) == 0);
	TU_CHECK_EQ(coev_stream_read(s, buf, sizeof buf, tu_guard()), 0);
	coev_stream_close(s);
	TU_CHECK_EQ(m.closes, 1);
	return 0;
}

static void test_stream_custom_transport_one_byte_per_read(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(one_byte_reads, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- a line longer than max: -EMSGSIZE and every byte still there -------- */

static int too_long(void *arg)
{
	(void)arg;
	static char in[300];
	mem_t m = {.in = in, .in_len = sizeof in, .per_read = 7};
	coev_stream_t *s = NULL;
	char buf[300];

	memset(in, 'a', sizeof in);
	in[250] = '\n';
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 64, &s), 0);
	if (!s)
		return -1;
	/* The delimiter is at 250; a max of 100 cannot hold the line. */
	TU_CHECK_EQ(coev_stream_read_line(s, buf, 100, tu_guard()), -EMSGSIZE);
	TU_CHECK(coev_stream_buffered(s) >= 100);
	/* A second call fails at once, without reading more. */
	int reads = m.reads;
	TU_CHECK_EQ(coev_stream_read_line(s, buf, 100, tu_guard()), -EMSGSIZE);
	TU_CHECK_EQ(m.reads, reads);
	/* A larger max gets the whole line, from its first byte. */
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, tu_guard()), 251);
	TU_CHECK(buf[0] == 'a' && buf[249] == 'a' && buf[250] == '\n');
	/* The tail follows, then end of stream mid-"line". */
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, 49, NULL, tu_guard()), 49);
	size_t done = 99;
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, 1, &done, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(done, 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_line_longer_than_max_loses_nothing(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(too_long, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- writes coalesce; large writes pass through the buffer --------------- */

static int coalesce(void *arg)
{
	(void)arg;
	static mem_t m;
	coev_stream_t *s = NULL;
	char big[300];
	size_t done = 0;

	memset(&m, 0, sizeof m);
	memset(big, 'B', sizeof big);
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 100, &s), 0);
	if (!s)
		return -1;
	for (int i = 0; i < 30; i++)
		TU_CHECK_EQ(coev_stream_write(s, "abc", 3, &done, tu_guard()),
			    3);
	TU_CHECK_EQ(done, 3);
	/* 90 bytes in a 100-byte buffer: nothing written yet. */
	TU_CHECK_EQ(m.writes, 0);
	/* 30 more do not fit: the 90 go out in one write, then buffer. */
	char thirty[30];
	memset(thirty, 'x', sizeof thirty);
	TU_CHECK_EQ(coev_stream_write(s, thirty, 30, NULL, tu_guard()), 30);
	TU_CHECK_EQ(m.writes, 1);
	TU_CHECK_EQ(m.out_len, 90);
	/* A write larger than the buffer, over a transport that is not an
	 * fd: through the buffer, a buffer's worth per write (so that bytes
	 * a transport must be offered again stay in the stream); the last
	 * 30 bytes stay buffered. */
	TU_CHECK_EQ(coev_stream_write(s, big, sizeof big, &done, tu_guard()),
		    300);
	TU_CHECK_EQ(done, 300);
	TU_CHECK_EQ(m.writes, 4);
	TU_CHECK_EQ(m.out_len, 390);
	TU_CHECK(memcmp(m.out + 90, thirty, 30) == 0);
	TU_CHECK(memcmp(m.out + 120, big, 270) == 0);
	TU_CHECK_EQ(coev_stream_write(s, "tail", 4, NULL, tu_guard()), 4);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	TU_CHECK_EQ(m.shutdowns, 1);
	TU_CHECK_EQ(m.out_len, 424);
	TU_CHECK(memcmp(m.out + 120, big, 300) == 0);
	TU_CHECK(memcmp(m.out + 420, "tail", 4) == 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_writes_coalesce(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(coalesce, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- shutdown of a pipe's write end -------------------------------------- */

static int pipe_shutdown(void *arg)
{
	int *p = arg;
	coev_stream_t *w = NULL, *r = NULL;
	char buf[16];

	TU_CHECK_EQ(coev_stream_fd(p[1], 0, &w), 0);
	TU_CHECK_EQ(coev_stream_fd(p[0], 0, &r), 0);
	if (!w || !r)
		return -1;
	TU_CHECK_EQ(coev_stream_write(w, "last\n", 5, NULL, tu_guard()), 5);
	/* A pipe has no half-close: its write end is closed, so the reader
	 * sees the bytes and then end of stream. */
	TU_CHECK_EQ(coev_stream_shutdown(w, tu_guard()), 0);
	TU_CHECK_EQ(coev_stream_fileno(w), -1);
	TU_CHECK_EQ(coev_stream_read_line(r, buf, sizeof buf, tu_guard()), 5);
	TU_CHECK_EQ(coev_stream_read(r, buf, sizeof buf, tu_guard()), 0);
	coev_stream_close(w);
	coev_stream_close(r);
	return 0;
}

static void test_stream_shutdown_of_a_pipe_ends_the_stream(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(tu_run_main(pipe_shutdown, p, 1), 0);
	tu_assert_no_failures();
}

/* ---- a large write cut short by its deadline ----------------------------- */

#define BIG_WRITE (1u << 20)

/* A plain thread reading an fd to its end into sink (BIG_WRITE + 64). */
typedef struct sink {
	int fd;	 /* the end the sink reads */
	int sfd; /* the end the stream writes */
	unsigned char *buf;
	size_t len;
	pthread_t th;
} sink_t;

static void *sink_main(void *arg)
{
	sink_t *k = arg;

	for (;;) {
		size_t room = BIG_WRITE + 64 - k->len;
		ssize_t r =
			read(k->fd, k->buf + k->len, room < 1000 ? room : 1000);
		if (r <= 0) {
			TU_CHECK_MSG(r == 0, "sink read: %s", strerror(errno));
			break;
		}
		k->len += (size_t)r;
	}
	return NULL;
}

static unsigned char big_pat(size_t i)
{
	return (unsigned char)((i * 131u) ^ (i >> 11));
}

static int big_write(void *arg)
{
	sink_t *k = arg;
	unsigned char *big = malloc(BIG_WRITE);
	coev_stream_t *s = NULL;
	size_t done = 0;

	TU_CHECK(big != NULL);
	if (!big)
		return -1;
	for (size_t i = 0; i < BIG_WRITE; i++)
		big[i] = big_pat(i);
	TU_CHECK_EQ(coev_stream_fd(k->sfd, 4096, &s), 0);
	if (!s) {
		free(big);
		return -1;
	}
	TU_CHECK_EQ(coev_stream_write(s, "head", 4, NULL, tu_guard()), 4);
	/* Nobody reads yet: the socket fills and the deadline passes. The
	 * buffered "head" and the caller's bytes went out in writev calls;
	 * done says how many of the caller's were accepted. */
	TU_CHECK_EQ(coev_stream_write(s, big, BIG_WRITE, &done,
				      coev_deadline(COEV_MSEC(50))),
		    -ETIMEDOUT);
	TU_CHECK(done < BIG_WRITE);
	TU_CHECK_EQ(pthread_create(&k->th, NULL, sink_main, k), 0);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	coev_stream_close(s);
	TU_CHECK_EQ(pthread_join(k->th, NULL), 0);
	/* The peer got "head" and exactly the accepted bytes, in order. */
	TU_CHECK_EQ(k->len, 4 + done);
	TU_CHECK(memcmp(k->buf, "head", 4) == 0);
	for (size_t i = 0; i + 4 < k->len; i++)
		if (k->buf[4 + i] != big_pat(i)) {
			TU_CHECK_MSG(0, "byte %zu differs", i);
			break;
		}
	free(big);
	return 0;
}

static void test_stream_write_cut_by_deadline_reports_accepted(void **state)
{
	int sv[2];
	sink_t k = {0};

	(void)state;
	nb_socketpair(sv);
	k.fd = sv[1];
	k.buf = malloc(BIG_WRITE + 64);
	assert_non_null(k.buf);
	k.sfd = sv[0];
	assert_int_equal(tu_run_main(big_write, &k, 2), 0);
	close(sv[1]);
	free(k.buf);
	tu_assert_no_failures();
}

/* ---- random operations against a model ---------------------------------- */

/*
 * A transport that fails (-ETIMEDOUT on reads, -EPIPE on writes) at
 * random and otherwise moves a random number of bytes; the stream's
 * results are checked against the plain byte string they come from (and
 * go to). Every outcome of every call is legal only if nothing was lost
 * or reordered.
 */
typedef struct chaos {
	uint64_t rng;
	const char *in;
	size_t in_len, in_off;
	char *out;
	size_t out_len, out_cap;
} chaos_t;

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static ssize_t chaos_read(void *ctx, void *buf, size_t n, coev_time_t dl)
{
	chaos_t *c = ctx;

	(void)dl;
	if (rnd(&c->rng) % 8 == 0)
		return -ETIMEDOUT;
	size_t k = 1 + rnd(&c->rng) % 97, left = c->in_len - c->in_off;
	if (k > n)
		k = n;
	if (k > left)
		k = left;
	memcpy(buf, c->in + c->in_off, k);
	c->in_off += k;
	return (ssize_t)k;
}

static ssize_t chaos_write(void *ctx, const void *buf, size_t n, coev_time_t dl)
{
	chaos_t *c = ctx;

	(void)dl;
	if (rnd(&c->rng) % 6 == 0)
		return -EPIPE;
	size_t k = 1 + rnd(&c->rng) % 211;
	if (k > n)
		k = n;
	if (k > c->out_cap - c->out_len)
		return -ENOSPC;
	memcpy(c->out + c->out_len, buf, k);
	c->out_len += k;
	return (ssize_t)k;
}

static const coev_stream_ops_t chaos_ops = {.read = chaos_read,
					    .write = chaos_write};

/* The length through the first delim in d[0, len) that ends within max
 * bytes, or 0 when there is none. */
static size_t model_find(const char *d, size_t len, const char *delim,
			 size_t dlen, size_t max)
{
	for (size_t i = 0; i + dlen <= len && i + dlen <= max; i++)
		if (memcmp(d + i, delim, dlen) == 0)
			return i + dlen;
	return 0;
}

/* A random read_until, checked against the model; moves *pos. */
static void chaos_until(coev_stream_t *s, chaos_t *c, size_t *pos, char *buf,
			size_t n)
{
	static const char *const delims[] = {"\n", "\r\n", "ab", "xyx"};
	const char *d = c->in + *pos, *dl = delims[rnd(&c->rng) % 4];
	size_t left = c->in_len - *pos, dlen = strlen(dl), max = dlen + n;
	size_t want = model_find(d, left, dl, dlen, max);
	ssize_t r = coev_stream_read_until(s, dl, dlen, buf, max, COEV_FOREVER);

	if (r > 0) {
		TU_CHECK_EQ(r, want);
		TU_CHECK(memcmp(buf, d, (size_t)r) == 0);
		*pos += (size_t)r;
	} else if (r == -EMSGSIZE) {
		TU_CHECK(want == 0 && left >= max);
	} else if (r == COEV_EEOF) {
		TU_CHECK(want == 0 && left < max);
	} else {
		TU_CHECK_EQ(r, -ETIMEDOUT);
	}
}

/* A random peek and consume, checked against the model; moves *pos. */
static void chaos_peek(coev_stream_t *s, chaos_t *c, size_t *pos, size_t n)
{
	const char *d = c->in + *pos;
	size_t left = c->in_len - *pos, avail = 0;
	const void *data = NULL;
	int r = coev_stream_peek(s, n, &data, &avail, COEV_FOREVER);

	if (r == -ETIMEDOUT)
		return;
	TU_CHECK(r == 0 ? avail >= n : (r == COEV_EEOF && avail == left));
	TU_CHECK(avail <= left && (!avail || memcmp(data, d, avail) == 0));
	size_t k = avail ? rnd(&c->rng) % (avail + 1) : 0;
	TU_CHECK_EQ(coev_stream_consume(s, k), 0);
	*pos += k;
}

/* One random read-side call, checked against the model; moves *pos. */
static void chaos_read_op(coev_stream_t *s, chaos_t *c, size_t *pos, char *buf)
{
	const char *d = c->in + *pos;
	size_t left = c->in_len - *pos, n = 1 + rnd(&c->rng) % 300, done = 0;
	ssize_t r;

	switch (rnd(&c->rng) % 5) {
	case 0: chaos_until(s, c, pos, buf, n); break;
	case 1:
		r = coev_stream_read_exactly(s, buf, n, &done, COEV_FOREVER);
		TU_CHECK(done <= left && memcmp(buf, d, done) == 0);
		TU_CHECK(r == (ssize_t)n ? done == n
					 : r == -ETIMEDOUT || (r == COEV_EEOF &&
							       done == left));
		*pos += done;
		break;
	case 2:
		r = coev_stream_read(s, buf, n, COEV_FOREVER);
		TU_CHECK(r == -ETIMEDOUT || (r >= 0 && (size_t)r <= left));
		TU_CHECK(r != 0 || left == 0);
		if (r > 0) {
			TU_CHECK(memcmp(buf, d, (size_t)r) == 0);
			*pos += (size_t)r;
		}
		break;
	default: chaos_peek(s, c, pos, n); break;
	}
	TU_CHECK(coev_stream_buffered(s) <= c->in_len - *pos);
}

/* One random write-side call; *sent counts the bytes the stream took. */
static void chaos_write_op(coev_stream_t *s, chaos_t *c, const char *src,
			   size_t *sent)
{
	size_t n = 1 + rnd(&c->rng) % 400, done = 0;

	if (rnd(&c->rng) % 4 == 0) {
		int r = coev_stream_flush(s, COEV_FOREVER);
		TU_CHECK(r == 0 || r == -EPIPE);
		if (r == 0)
			TU_CHECK_EQ(c->out_len, *sent);
		return;
	}
	ssize_t r = coev_stream_write(s, src + *sent, n, &done, COEV_FOREVER);
	TU_CHECK(r == (ssize_t)n ? done == n : (r == -EPIPE && done < n));
	*sent += done;
	/* What reached the transport is a prefix of what was taken. */
	TU_CHECK(c->out_len <= *sent);
	TU_CHECK(memcmp(c->out, src, c->out_len) == 0);
}

#define CHAOS_BYTES 40000u

/* One stream of bufsize over a chaos transport seeded with seed: reads
 * all of its input and writes most of it back, at random. */
static void chaos_run(char *in, char *out, char *buf, size_t bufsize,
		      uint64_t seed)
{
	static const char alpha[] = "ab\r\nxyab\n";
	chaos_t c = {.rng = seed,
		     .in = in,
		     .in_len = CHAOS_BYTES,
		     .out = out,
		     .out_cap = 2 * CHAOS_BYTES};
	coev_stream_t *s = NULL;
	size_t pos = 0, sent = 0;
	int r;

	for (size_t i = 0; i < CHAOS_BYTES; i++)
		in[i] = alpha[rnd(&c.rng) % (sizeof alpha - 1)];
	TU_CHECK_EQ(coev_stream_new(&chaos_ops, &c, bufsize, &s), 0);
	if (!s)
		return;
	for (int op = 0; pos < CHAOS_BYTES && op < 1000000; op++) {
		chaos_read_op(s, &c, &pos, buf);
		if (sent + 400 < CHAOS_BYTES)
			chaos_write_op(s, &c, in, &sent);
	}
	TU_CHECK_EQ(pos, CHAOS_BYTES);
	while ((r = coev_stream_flush(s, COEV_FOREVER)) == -EPIPE) {
	}
	TU_CHECK_EQ(r, 0);
	TU_CHECK_EQ(c.out_len, sent);
	TU_CHECK(memcmp(out, in, sent) == 0);
	coev_stream_close(s);
}

static int chaos_main(void *arg)
{
	static const size_t bufsizes[] = {1, 7, 64, 512, 0};
	char *in = malloc(CHAOS_BYTES), *out = malloc(2 * CHAOS_BYTES);
	char *buf = malloc(1024);

	(void)arg;
	TU_CHECK(in && out && buf);
	for (size_t b = 0; in && out && buf && b < 5; b++)
		chaos_run(in, out, buf, bufsizes[b], 0x9e3779b97f4a7c15ull + b);
	free(in);
	free(out);
	free(buf);
	return 0;
}

static void test_stream_random_operations_match_a_model(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(chaos_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- a buffer grown for a long line is given back ------------------------ */

/* The read buffer's capacity is asked of the stream itself (an internal
 * call), not of malloc: the sanitizers and valgrind replace malloc, and
 * the test must conclude under them too. */

#define GROW_LINE (4u << 20)

static int grow_and_shrink(void *arg)
{
	size_t *cap = arg;
	char *in = malloc(GROW_LINE + 1), *buf = malloc(GROW_LINE + 1);
	mem_t m = {.in = in, .in_len = GROW_LINE + 1};
	coev_stream_t *s = NULL;

	TU_CHECK(in && buf);
	if (!in || !buf)
		goto out;
	memset(in, 'G', GROW_LINE);
	in[GROW_LINE] = '\n';
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 0, &s), 0);
	if (!s)
		goto out;
	TU_CHECK_EQ(coev_stream_peek(s, GROW_LINE / 2, NULL, NULL, tu_guard()),
		    0);
	cap[0] = coev__stream_read_capacity(s);
	TU_CHECK_EQ(coev_stream_read_line(s, buf, GROW_LINE + 1, tu_guard()),
		    GROW_LINE + 1);
	cap[1] = coev__stream_read_capacity(s);
	coev_stream_close(s);
out:
	free(in);
	free(buf);
	return 0;
}

static void test_stream_buffer_grown_for_a_line_is_given_back(void **state)
{
	size_t cap[2] = {0, 0};

	(void)state;
	assert_int_equal(tu_run_main(grow_and_shrink, cap, 1), 0);
	tu_assert_no_failures();
	/* The peek grew the buffer to hold half the line; once drained it
	 * is back to the default size exactly. */
	assert_true(cap[0] >= GROW_LINE / 2);
	assert_int_equal(cap[1], COEV_STREAM_BUF_DEFAULT);
}

/* ---- a delimiter spanning refills, over a socketpair --------------------- */

static int spanning(void *arg)
{
	int fd = *(int *)arg;
	coev_stream_t *s = NULL;
	char buf[64];

	/* A 4-byte buffer: every delimiter of "--==--" spans refills, and
	 * the buffer grows only as far as each call's max asks. */
	TU_CHECK_EQ(coev_stream_fd(fd, 4, &s), 0);
	if (!s)
		return -1;
	static const char *const want[] = {"alpha--==--", "b--==--", "--==--",
					   "-=-=--==--"};
	for (int i = 0; i < 4; i++) {
		size_t wl = strlen(want[i]);
		ssize_t n = coev_stream_read_until(s, "--==--", 6, buf,
						   sizeof buf, tu_guard());
		TU_CHECK_MSG(n == (ssize_t)wl, "record %d: %zd", i, n);
		if (n == (ssize_t)wl)
			TU_CHECK(memcmp(buf, want[i], wl) == 0);
	}
	/* "tail" and the end: COEV_EEOF with the bytes kept. */
	TU_CHECK_EQ(coev_stream_read_until(s, "--==--", 6, buf, sizeof buf,
					   tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(coev_stream_buffered(s), 4);
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, 4, NULL, tu_guard()), 4);
	TU_CHECK(memcmp(buf, "tail", 4) == 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_multibyte_delimiter_spanning_refills(void **state)
{
	static const char script[] = "alpha--==--b--==----==---=-=--==--tail";
	int sv[2];

	(void)state;
	nb_socketpair(sv);
	/* Pieces of 3 bytes: no piece holds a whole delimiter. */
	peer_t p = {.fd = sv[1],
		    .data = script,
		    .len = sizeof script - 1,
		    .piece = 3,
		    .close_at_end = true};
	peer_start(&p);
	assert_int_equal(tu_run_main(spanning, &sv[0], 2), 0);
	peer_join(&p);
	tu_assert_no_failures();
}

/* ---- end of stream mid-line over a pipe ---------------------------------- */

static int eof_mid_line(void *arg)
{
	int fd = *(int *)arg;
	coev_stream_t *s = NULL;
	char buf[64];
	const void *data = NULL;
	size_t avail = 0;

	TU_CHECK_EQ(coev_stream_fd(fd, 0, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, tu_guard()), 4);
	TU_CHECK(memcmp(buf, "abc\n", 4) == 0);
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, tu_guard()),
		    COEV_EEOF);
	/* The partial line is all there, through peek and through read. */
	TU_CHECK_EQ(coev_stream_buffered(s), 3);
	TU_CHECK_EQ(coev_stream_peek(s, 10, &data, &avail, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(avail, 3);
	TU_CHECK(avail == 3 && memcmp(data, "def", 3) == 0);
	TU_CHECK_EQ(coev_stream_read(s, buf, sizeof buf, tu_guard()), 3);
	TU_CHECK(memcmp(buf, "def", 3) == 0);
	TU_CHECK_EQ(coev_stream_read(s, buf, sizeof buf, tu_guard()), 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_peer_closing_mid_line_over_a_pipe(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(coev_fd_nonblock(p[0]), 0);
	assert_int_equal(write(p[1], "abc\ndef", 7), 7);
	close(p[1]);
	assert_int_equal(tu_run_main(eof_mid_line, &p[0], 1), 0);
	tu_assert_no_failures();
}

/* ---- a deadline in the middle of a line ---------------------------------- */

static int deadline_mid_line(void *arg)
{
	int *sv = arg;
	coev_stream_t *s = NULL;
	char buf[64];
	size_t done = 99;

	TU_CHECK_EQ(coev_stream_fd(sv[0], 0, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(write(sv[1], "hel", 3), 3);
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf,
					  coev_deadline(COEV_MSEC(20))),
		    -ETIMEDOUT);
	TU_CHECK_EQ(coev_stream_buffered(s), 3);
	/* A deadline already past only tries: still nothing lost. */
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, coev_now() - 1),
		    -ETIMEDOUT);
	TU_CHECK_EQ(write(sv[1], "lo\nwor", 6), 6);
	TU_CHECK_EQ(coev_stream_read_line(s, buf, sizeof buf, tu_guard()), 6);
	TU_CHECK(memcmp(buf, "hello\n", 6) == 0);

	/* read_exactly reports the bytes it placed, which are consumed. */
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, 8, &done,
					     coev_deadline(COEV_MSEC(20))),
		    -ETIMEDOUT);
	TU_CHECK_EQ(done, 3);
	TU_CHECK(memcmp(buf, "wor", 3) == 0);
	TU_CHECK_EQ(coev_stream_buffered(s), 0);
	TU_CHECK_EQ(write(sv[1], "ld\n", 3), 3);
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf + 3, 3, &done, tu_guard()),
		    3);
	TU_CHECK(memcmp(buf, "world\n", 6) == 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_deadline_mid_line_loses_nothing(void **state)
{
	int sv[2];

	(void)state;
	nb_socketpair(sv);
	assert_int_equal(tu_run_main(deadline_mid_line, sv, 1), 0);
	close(sv[1]);
	tu_assert_no_failures();
}

/* ---- cancelling a task blocked in read_line ------------------------------ */

typedef struct cancel_arg {
	int *sv;
	coev_stream_t *s;
	ssize_t r;
} cancel_arg_t;

static int blocked_reader(void *arg)
{
	cancel_arg_t *c = arg;
	char buf[64];

	c->r = coev_stream_read_line(c->s, buf, sizeof buf, tu_guard());
	return 0;
}

static int cancel_mid_line(void *arg)
{
	cancel_arg_t *c = arg;
	coev_task_t *t = NULL;
	char buf[64];

	TU_CHECK_EQ(coev_stream_fd(c->sv[0], 0, &c->s), 0);
	if (!c->s)
		return -1;
	TU_CHECK_EQ(write(c->sv[1], "partial", 7), 7);
	c->r = 1;
	TU_CHECK_EQ(coev_spawn(blocked_reader, c, &t), 0);
	/* The reader has taken "partial" and waits for the rest. */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FD, NULL), 0);
	TU_CHECK_EQ(coev_cancel(t), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(c->r, -ECANCELED);
	TU_CHECK_EQ(coev_stream_buffered(c->s), 7);
	TU_CHECK_EQ(write(c->sv[1], " line\n", 6), 6);
	TU_CHECK_EQ(coev_stream_read_line(c->s, buf, sizeof buf, tu_guard()),
		    13);
	TU_CHECK(memcmp(buf, "partial line\n", 13) == 0);
	coev_stream_close(c->s);
	return 0;
}

static void test_stream_cancel_blocked_read_line(void **state)
{
	int sv[2];
	cancel_arg_t c = {.sv = sv};

	(void)state;
	nb_socketpair(sv);
	assert_int_equal(tu_run_main(cancel_mid_line, &c, 2), 0);
	close(sv[1]);
	tu_assert_no_failures();
}

/* ---- peek and consume; no transport call when the buffer answers --------- */

static int peek_consume(void *arg)
{
	(void)arg;
	static char in[100];
	mem_t m = {.in = in, .in_len = sizeof in};
	coev_stream_t *s = NULL;
	const void *data = NULL;
	size_t avail = 0;
	char buf[64];

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (char)('0' + i % 10);
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 16, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_peek(s, 4, &data, &avail, tu_guard()), 0);
	TU_CHECK_EQ(m.reads, 1);
	TU_CHECK_EQ(avail, 16);
	TU_CHECK(memcmp(data, "0123", 4) == 0);
	TU_CHECK_EQ(coev_stream_consume(s, 17), -EINVAL);
	TU_CHECK_EQ(coev_stream_consume(s, 4), 0);
	/* Everything below comes from the 12 buffered bytes. */
	TU_CHECK_EQ(coev_stream_read(s, buf, 3, tu_guard()), 3);
	TU_CHECK(memcmp(buf, "456", 3) == 0);
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, 4, NULL, tu_guard()), 4);
	TU_CHECK(memcmp(buf, "7890", 4) == 0);
	TU_CHECK_EQ(
		coev_stream_read_until(s, "3", 1, buf, sizeof buf, tu_guard()),
		3);
	TU_CHECK(memcmp(buf, "123", 3) == 0);
	TU_CHECK_EQ(coev_stream_read(s, buf, sizeof buf, tu_guard()), 2);
	TU_CHECK(memcmp(buf, "45", 2) == 0);
	TU_CHECK_EQ(m.reads, 1);
	/* A peek past bufsize grows the buffer and shows 30 in a row. */
	TU_CHECK_EQ(coev_stream_peek(s, 30, &data, &avail, tu_guard()), 0);
	TU_CHECK(avail >= 30);
	TU_CHECK(avail >= 30 &&
		 memcmp(data, "6789012345678901234567890123456", 30) == 0);
	TU_CHECK_EQ(coev_stream_consume(s, avail), 0);
	TU_CHECK_EQ(coev_stream_buffered(s), 0);
	/* A large read into an empty buffer goes straight to the caller's
	 * memory: the transport is asked for all of it. */
	int reads = m.reads;
	TU_CHECK_EQ(coev_stream_read(s, buf, 40, tu_guard()), 40);
	TU_CHECK_EQ(m.reads, reads + 1);
	TU_CHECK_EQ(m.last_read_n, 40);
	TU_CHECK_EQ(coev_stream_peek(s, COEV_STREAM_PEEK_MAX + 1u, &data,
				     &avail, tu_guard()),
		    -EMSGSIZE);
	TU_CHECK_EQ(coev_stream_peek(s, SIZE_MAX, &data, &avail, tu_guard()),
		    -EMSGSIZE);
	coev_stream_close(s);
	return 0;
}

static void test_stream_peek_consume_and_no_needless_reads(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(peek_consume, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- flushing to a closed peer ------------------------------------------- */

static int flush_epipe(void *arg)
{
	int *sv = arg;
	coev_stream_t *s = NULL;
	static mem_t m;
	char big[64];
	size_t done = 99;

	TU_CHECK_EQ(coev_stream_fd(sv[0], 0, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_write(s, "hello", 5, NULL, tu_guard()), 5);
	TU_CHECK_EQ(close(sv[1]), 0);
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), -EPIPE);
	/* Still buffered: a second flush tries them again. */
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), -EPIPE);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), -EPIPE);
	coev_stream_close(s);

	/* Over a transport that fails twice, then works: the bytes go out
	 * whole and in order at the flush that succeeds. */
	memset(&m, 0, sizeof m);
	m.fail_writes = 2;
	memset(big, 'B', sizeof big);
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 16, &s), 0);
	if (!s)
		return -1;
	TU_CHECK_EQ(coev_stream_write(s, "0123456789", 10, &done, tu_guard()),
		    10);
	/* Does not fit: the flush of the 10 fails; nothing accepted. */
	TU_CHECK_EQ(coev_stream_write(s, "abcdefgh", 8, &done, tu_guard()),
		    -EPIPE);
	TU_CHECK_EQ(done, 0);
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), -EPIPE);
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), 0);
	TU_CHECK_EQ(m.out_len, 10);
	TU_CHECK(memcmp(m.out, "0123456789", 10) == 0);
	/* A write larger than the buffer passes through it; the last
	 * piece stays buffered. */
	m.write_max = 40;
	TU_CHECK_EQ(coev_stream_write(s, big, sizeof big, &done, tu_guard()),
		    64);
	TU_CHECK_EQ(done, 64);
	TU_CHECK_EQ(m.out_len, 58);
	/* The next one's first flush fails: nothing accepted, the piece
	 * stays, and a flush sends it. */
	m.fail_writes = 1;
	TU_CHECK_EQ(coev_stream_write(s, big, sizeof big, &done, tu_guard()),
		    -EPIPE);
	TU_CHECK_EQ(done, 0);
	TU_CHECK_EQ(m.out_len, 58);
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), 0);
	TU_CHECK_EQ(m.out_len, 74);
	TU_CHECK(memcmp(m.out + 10, big, 64) == 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_flush_to_closed_peer_keeps_bytes(void **state)
{
	int sv[2];

	(void)state;
	nb_socketpair(sv);
	assert_int_equal(tu_run_main(flush_epipe, sv, 1), 0);
	tu_assert_no_failures();
}

/* ---- absurd sizes and bad arguments -------------------------------------- */

static int huge_sizes(void *arg)
{
	(void)arg;
	static char in[1 << 16];
	mem_t m = {.in = in, .in_len = sizeof in, .per_read = 1000};
	coev_stream_t *s = NULL;
	static char buf[1 << 16];

	memset(in, 'h', sizeof in);
	in[5000] = '\n';
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 64, &s), 0);
	if (!s)
		return -1;
	/* max SIZE_MAX: the buffer grows as the bytes need, no further. */
	TU_CHECK_EQ(
		coev_stream_read_until(s, "\n", 1, buf, SIZE_MAX, tu_guard()),
		5001);
	TU_CHECK_EQ(
		coev_stream_read_until(s, "\n", 1, buf, SIZE_MAX, tu_guard()),
		COEV_EEOF);
	size_t rest = sizeof in - 5001;
	TU_CHECK_EQ(coev_stream_buffered(s), rest);
	TU_CHECK_EQ(coev_stream_read_exactly(s, buf, rest, NULL, tu_guard()),
		    (ssize_t)rest);
	TU_CHECK_EQ(coev_stream_read_until(s, "", 0, buf, 10, tu_guard()),
		    -EINVAL);
	TU_CHECK_EQ(coev_stream_read_until(s, "abc", 3, buf, 2, tu_guard()),
		    -EINVAL);
	coev_stream_close(s);
	return 0;
}

static void test_stream_huge_sizes_and_bad_arguments(void **state)
{
	mem_t m = {0};
	coev_stream_t *s = (coev_stream_t *)&m;
	coev_stream_ops_t no_write = {.read = mem_read};
	char buf[8];

	(void)state;
	assert_int_equal(coev_stream_new(&mem_ops, &m, SIZE_MAX, &s), -EINVAL);
	assert_null(s);
	assert_int_equal(coev_stream_new(NULL, &m, 0, &s), -EINVAL);
	assert_int_equal(coev_stream_new(&no_write, &m, 0, &s), -EINVAL);
	assert_int_equal(coev_stream_fd(-1, 0, &s), -EBADF);
	assert_int_equal(m.closes, 0); /* the caller still owns ctx */
	coev_stream_close(NULL);

	/* Outside a task: calls that may wait refuse, the others work. */
	assert_int_equal(coev_stream_new(&mem_ops, &m, 0, &s), 0);
	assert_int_equal(coev_stream_read(s, buf, 1, COEV_FOREVER),
			 COEV_ENOTCORO);
	assert_int_equal(coev_stream_read_line(s, buf, 8, COEV_FOREVER),
			 COEV_ENOTCORO);
	assert_int_equal(coev_stream_write(s, "x", 1, NULL, COEV_FOREVER),
			 COEV_ENOTCORO);
	assert_int_equal(coev_stream_flush(s, COEV_FOREVER), COEV_ENOTCORO);
	assert_int_equal(coev_stream_buffered(s), 0);
	assert_int_equal(coev_stream_consume(s, 0), 0);
	assert_int_equal(m.reads + m.writes, 0);
	coev_stream_close(s);
	assert_int_equal(m.closes, 1);

	assert_int_equal(tu_run_main(huge_sizes, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- a long line in one-byte pieces: searched once, not per piece ------- */

#define LONG_LINE TU_SCALE(4u << 20, 4u << 20, 1u << 20)

static int long_line(void *arg)
{
	(void)arg;
	size_t len = LONG_LINE;
	char *in = malloc(len + 1), *buf = malloc(len + 1);
	mem_t m = {.in = in, .in_len = len + 1, .per_read = 1};
	coev_stream_t *s = NULL;

	TU_CHECK(in && buf);
	if (!in || !buf)
		goto out;
	memset(in, 'L', len);
	in[len] = '\n';
	TU_CHECK_EQ(coev_stream_new(&mem_ops, &m, 0, &s), 0);
	if (!s)
		goto out;
	/* A search from the start at each byte would compare len^2 / 2
	 * bytes (8.8e12 for 4 MiB: many minutes); resumed searches take well
	 * under a second. The bound is loose for loaded machines. */
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_stream_read_line(s, buf, len + 1, tu_guard()),
		    (ssize_t)len + 1);
	coev_time_t took = coev_now() - t0;
	TU_CHECK_MSG(took < COEV_SEC(20), "%lld ms", (long long)took / 1000000);
	TU_CHECK_EQ(m.reads, (int)len + 1);
	TU_CHECK(buf[0] == 'L' && buf[len - 1] == 'L' && buf[len] == '\n');
	coev_stream_close(s);
out:
	free(in);
	free(buf);
	return 0;
}

static void test_stream_long_line_in_one_byte_pieces(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(long_line, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- one reader and one writer per stream at once, over TCP -------------- */

#define DUPLEX_LINES TU_SCALE(20000, 5000, 2000)

typedef struct duplex {
	coev_stream_t *s;
	int lines;
	int got;
} duplex_t;

/* Writes "<i> <padding>\n" for each i, then shuts the direction down. */
static int duplex_writer(void *arg)
{
	duplex_t *d = arg;
	char line[128];

	for (int i = 0; i < d->lines; i++) {
		int n = snprintf(line, sizeof line, "%d %.*s\n", i, i % 90,
				 "........................................"
				 "........................................"
				 "..........");
		ssize_t w = coev_stream_write(d->s, line, (size_t)n, NULL,
					      tu_guard());
		if (w != n) {
			TU_CHECK_EQ(w, n);
			return -1;
		}
	}
	TU_CHECK_EQ(coev_stream_shutdown(d->s, tu_guard()), 0);
	return 0;
}

/* Reads the lines back, checking each, until end of stream. */
static int duplex_reader(void *arg)
{
	duplex_t *d = arg;
	char line[128];

	for (;;) {
		ssize_t n = coev_stream_read_line(d->s, line, sizeof line,
						  tu_guard());
		if (n == COEV_EEOF)
			break;
		if (n <= 0) {
			TU_CHECK_MSG(n > 0, "%s", coev_strerror((int)n));
			return -1;
		}
		char *end = NULL;
		long i = strtol(line, &end, 10);
		TU_CHECK_EQ(i, d->got);
		TU_CHECK_EQ(n, (end - line) + 2 + i % 90);
		d->got++;
	}
	TU_CHECK_EQ(coev_stream_buffered(d->s), 0);
	return 0;
}

static int duplex_main(void *arg)
{
	(void)arg;
	int lfd = coev_tcp_listen("127.0.0.1", 0, 4, 0), c = -1, a = -1;
	coev_stream_t *sc = NULL, *sa = NULL;
	coev_task_t *t[4];

	TU_CHECK(lfd >= 0);
	c = coev_tcp_connect("127.0.0.1", (unsigned)coev_sock_port(lfd),
			     tu_guard());
	a = coev_accept(lfd, NULL, NULL, tu_guard());
	coev_close(lfd);
	TU_CHECK(c >= 0 && a >= 0);
	TU_CHECK_EQ(coev_stream_fd(c, 512, &sc), 0);
	TU_CHECK_EQ(coev_stream_fd(a, 0, &sa), 0);
	if (!sc || !sa)
		return -1;
	duplex_t d[4] = {{sc, DUPLEX_LINES, 0},
			 {sa, DUPLEX_LINES, 0},
			 {sa, 0, 0},
			 {sc, 0, 0}};
	TU_CHECK_EQ(coev_spawn(duplex_writer, &d[0], &t[0]), 0);
	TU_CHECK_EQ(coev_spawn(duplex_writer, &d[1], &t[1]), 0);
	TU_CHECK_EQ(coev_spawn(duplex_reader, &d[2], &t[2]), 0);
	TU_CHECK_EQ(coev_spawn(duplex_reader, &d[3], &t[3]), 0);
	for (int i = 0; i < 4; i++) {
		int ret = -1;
		TU_CHECK_EQ(coev_join(t[i], &ret), 0);
		TU_CHECK_EQ(ret, 0);
	}
	TU_CHECK_EQ(d[2].got, DUPLEX_LINES);
	TU_CHECK_EQ(d[3].got, DUPLEX_LINES);
	coev_stream_close(sc);
	coev_stream_close(sa);
	return 0;
}

static void test_stream_reader_and_writer_at_once_over_tcp(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(duplex_main, NULL, 4), 0);
	tu_assert_no_failures();
}

/* ---- a peer that is not coev: Python over TCP ---------------------------- */

/*
 * The peer sends 300 lines of random lengths (up to 3,000 bytes, so many
 * exceed the stream's 1 KiB buffer) ending in CRLF, in random pieces,
 * then ends its direction; a thread of its own reads the replies (each
 * line upper-cased, ending in LF) and the peer exits 0 when they are
 * exactly what it expects.
 */
static const char py_peer[] =
	"import random, socket, sys, threading\n"
	"rnd = random.Random(19)\n"
	"lines = [('line %d ' % i) + ''.join(rnd.choice('abcxyz')"
	" for _ in range(rnd.randrange(3000))) for i in range(300)]\n"
	"data = ''.join(l + '\\r\\n' for l in lines).encode()\n"
	"s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
	"s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
	"got = []\n"
	"def rd():\n"
	"    while True:\n"
	"        b = s.recv(65536)\n"
	"        if not b: break\n"
	"        got.append(b)\n"
	"t = threading.Thread(target=rd); t.start()\n"
	"off = 0\n"
	"while off < len(data):\n"
	"    k = rnd.randrange(1, 4000); s.sendall(data[off:off + k]); off += "
	"k\n"
	"s.shutdown(socket.SHUT_WR)\n"
	"t.join()\n"
	"want = ''.join(l.upper() + '\\n' for l in lines).encode()\n"
	"sys.exit(0 if b''.join(got) == want else 1)\n";

static int py_serve(void *arg)
{
	pid_t *pid = arg;
	int lfd = coev_tcp_listen("127.0.0.1", 0, 4, 0);
	char port[16], line[4096];
	coev_stream_t *s = NULL;
	int lines = 0;

	TU_CHECK(lfd >= 0);
	snprintf(port, sizeof port, "%d", coev_sock_port(lfd));
	char *argv[] = {"/usr/bin/python3", "-c", (char *)py_peer, port, NULL};
	TU_CHECK_EQ(posix_spawn(pid, argv[0], NULL, NULL, argv, environ), 0);
	int fd = coev_accept(lfd, NULL, NULL, tu_guard());
	coev_close(lfd);
	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_stream_fd(fd, 1024, &s), 0);
	if (!s)
		return -1;
	for (;;) {
		ssize_t n = coev_stream_read_until(s, "\r\n", 2, line,
						   sizeof line, tu_guard());
		if (n == COEV_EEOF)
			break;
		if (n < 2) {
			TU_CHECK_MSG(n >= 2, "%s", coev_strerror((int)n));
			break;
		}
		for (ssize_t i = 0; i < n - 2; i++)
			line[i] = (char)toupper((unsigned char)line[i]);
		line[n - 2] = '\n';
		TU_CHECK_EQ(coev_stream_write(s, line, (size_t)n - 1, NULL,
					      tu_guard()),
			    n - 1);
		lines++;
	}
	TU_CHECK_EQ(lines, 300);
	TU_CHECK_EQ(coev_stream_buffered(s), 0);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	coev_stream_close(s);
	return 0;
}

static void test_stream_python_peer_over_tcp(void **state)
{
	pid_t pid = -1;
	int st = 0;

	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0)
		skip();
	assert_int_equal(tu_run_main(py_serve, &pid, 2), 0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_stream_lines_split_across_small_writes),
		TU_FD_TEST(test_stream_custom_transport_one_byte_per_read),
		TU_FD_TEST(test_stream_line_longer_than_max_loses_nothing),
		TU_FD_TEST(test_stream_writes_coalesce),
		TU_FD_TEST(test_stream_multibyte_delimiter_spanning_refills),
		TU_FD_TEST(test_stream_peer_closing_mid_line_over_a_pipe),
		TU_FD_TEST(test_stream_deadline_mid_line_loses_nothing),
		TU_FD_TEST(test_stream_cancel_blocked_read_line),
		TU_FD_TEST(test_stream_peek_consume_and_no_needless_reads),
		TU_FD_TEST(test_stream_flush_to_closed_peer_keeps_bytes),
		TU_FD_TEST(test_stream_shutdown_of_a_pipe_ends_the_stream),
		TU_FD_TEST(test_stream_write_cut_by_deadline_reports_accepted),
		TU_FD_TEST(test_stream_random_operations_match_a_model),
		TU_FD_TEST(test_stream_huge_sizes_and_bad_arguments),
		TU_FD_TEST(test_stream_long_line_in_one_byte_pieces),
		TU_FD_TEST(test_stream_buffer_grown_for_a_line_is_given_back),
		TU_FD_TEST(test_stream_reader_and_writer_at_once_over_tcp),
		TU_FD_TEST(test_stream_python_peer_over_tcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
