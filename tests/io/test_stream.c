/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_stream.c — buffered streams (include/coev/stream.h) over
 * socketpairs, pipes, TCP loopback and memory transports: lines split
 * across many small writes, delimiters spanning refills, multi-byte
 * delimiters, over-long lines, a peer closing mid-line, deadlines and
 * cancellation mid-line, exact reads, peek and consume, write coalescing
 * and direct writes counted through a counting transport, flushes to a
 * closed peer, absurd sizes, and a transport giving one byte per read.
 *
 * Rule 2 (nothing lost) is what most tests check: after each failure the
 * bytes a call did not report are read back and compared. Peers are
 * plain blocking C on a pthread (so the bytes arrive in the pieces the
 * test chooses, from outside the runtime), or a /usr/bin/python3 process
 * for the TCP test. Every test runs under TU_FD_TEST (no fd leaked).
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <pthread.h>
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

	if (p->go)
		while (!atomic_load(p->go))
			tu_nap_ms(1);
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
	size_t write_max; /* at most this many per write (0: no limit) */
	int reads, writes, shutdowns, closes;
} mem_t;

static ssize_t mem_read(void *ctx, void *buf, size_t n, coev_time_t dl)
{
	mem_t *m = ctx;

	(void)dl;
	m->reads++;
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

/* ---- writes coalesce; large writes go straight out ----------------------- */

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
	/* A write larger than the buffer: what is buffered, then it. */
	TU_CHECK_EQ(coev_stream_write(s, big, sizeof big, &done, tu_guard()),
		    300);
	TU_CHECK_EQ(done, 300);
	TU_CHECK_EQ(m.writes, 3);
	TU_CHECK_EQ(m.out_len, 420);
	TU_CHECK(memcmp(m.out + 90, thirty, 30) == 0);
	TU_CHECK(memcmp(m.out + 120, big, 300) == 0);
	TU_CHECK_EQ(coev_stream_write(s, "tail", 4, NULL, tu_guard()), 4);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	TU_CHECK_EQ(m.shutdowns, 1);
	TU_CHECK_EQ(m.out_len, 424);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_stream_lines_split_across_small_writes),
		TU_FD_TEST(test_stream_custom_transport_one_byte_per_read),
		TU_FD_TEST(test_stream_line_longer_than_max_loses_nothing),
		TU_FD_TEST(test_stream_writes_coalesce),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
