/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_socket.c — non-blocking I/O for tasks (include/coev/io.h):
 * ten thousand connections held open at once against an echo server,
 * partial reads and writes, readv/writev, resets, an accept storm,
 * deadlines mid-read and mid-write, end of stream, UDP, Unix sockets,
 * connecting by name and to a refused port, coev_wait_fd on a pipe, and
 * calls from outside a task.
 *
 * Only loopback addresses (127.0.0.1, ::1) and Unix sockets in a private
 * temporary directory are used. Every test runs under TU_FD_TEST, which
 * fails it if it leaves an fd open. Task bodies record failures with
 * TU_CHECK; the test thread checks tu_assert_no_failures().
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

/* ---- helpers ------------------------------------------------------------ */

/* A generous deadline for waits that must not time out: a broken runtime
 * then fails a check instead of hanging the binary. */

/* A pattern byte for offset i of a stream (not periodic at small powers
 * of two, so shifted or repeated chunks are caught). */
static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 131u) ^ (i >> 11) ^ (i >> 19));
}

static void fill_pat(unsigned char *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* Index of the first byte of p (stream offset off) that breaks the
 * pattern, or n. */
static size_t check_pat(const unsigned char *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(off + i))
			return i;
	return n;
}

static int set_int_opt(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof v);
}

static int get_int_opt(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof v;

	if (getsockopt(fd, level, opt, &v, &len) != 0)
		return -errno;
	return v;
}

/* O_NONBLOCK and FD_CLOEXEC, as rule 1 promises for coev's fds. */
static int is_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	int fdfl = fcntl(fd, F_GETFD);

	return fl >= 0 && fdfl >= 0 && (fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC);
}

/*
 * A connected TCP pair over 127.0.0.1, from a task: *c is the connecting
 * side (coev_tcp_connect), *s the accepted one. rcvbuf > 0 sets the
 * accepted side's receive buffer (through the listener, before the
 * connection exists). Returns 0 or a negative code.
 */
static int tcp_pair_buf(int *c, int *s, int rcvbuf)
{
	int lfd = coev_tcp_listen("127.0.0.1", 0, 8, 0);

	*c = *s = -1;
	if (lfd < 0)
		return lfd;
	if (rcvbuf > 0)
		set_int_opt(lfd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
	int port = coev_sock_port(lfd);
	if (port <= 0) {
		coev_close(lfd);
		return port < 0 ? port : -EINVAL;
	}
	*c = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());
	if (*c < 0) {
		int rc = *c;
		coev_close(lfd);
		return rc;
	}
	*s = coev_accept(lfd, NULL, NULL, tu_guard());
	coev_close(lfd);
	if (*s < 0) {
		int rc = *s;
		coev_close(*c);
		*c = -1;
		return rc;
	}
	return 0;
}

static int tcp_pair(int *c, int *s)
{
	return tcp_pair_buf(c, s, 0);
}

/* ---- an echo server ----------------------------------------------------- */

typedef struct echo_srv echo_srv_t;

typedef struct echo_conn {
	echo_srv_t *srv;
	int fd;
} echo_conn_t;

struct echo_srv {
	int lfd;
	int max;	     /* connections to accept, then the acceptor ends */
	echo_conn_t *conns;  /* max of them */
	atomic_int accepted; /* connections accepted */
	atomic_int closed;   /* connections the server has closed */
	atomic_long bytes;   /* bytes echoed */
};

/* Echoes everything until end of stream, then closes. */
static int echo_conn(void *arg)
{
	echo_conn_t *c = arg;
	char buf[512];

	for (;;) {
		ssize_t n = coev_read(c->fd, buf, sizeof buf, tu_guard());
		if (n == 0)
			break;
		if (n < 0) {
			TU_CHECK_MSG(n >= 0, "echo read: %s",
				     coev_strerror((int)n));
			break;
		}
		ssize_t w =
			coev_write_all(c->fd, buf, (size_t)n, NULL, tu_guard());
		if (w > 0)
			atomic_fetch_add(&c->srv->bytes, (long)w);
		if (w != n) {
			TU_CHECK_MSG(w == n, "echo write: %zd (%s)", w,
				     coev_strerror((int)w));
			break;
		}
	}
	TU_CHECK_EQ(coev_close(c->fd), 0);
	atomic_fetch_add(&c->srv->closed, 1);
	return 0;
}

/* Accepts srv->max connections, each served by a detached echo task. */
static int echo_acceptor(void *arg)
{
	echo_srv_t *srv = arg;

	for (int k = 0; k < srv->max; k++) {
		int fd = coev_accept(srv->lfd, NULL, NULL, tu_guard());
		if (fd < 0) {
			TU_CHECK_MSG(fd >= 0, "accept %d: %s", k,
				     coev_strerror(fd));
			return fd;
		}
		if (k < 4)
			TU_CHECK(is_nonblock_cloexec(fd));
		atomic_fetch_add(&srv->accepted, 1);
		srv->conns[k] = (echo_conn_t){.srv = srv, .fd = fd};
		int rc = coev_spawn_named("echo", echo_conn, &srv->conns[k],
					  NULL);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "spawn echo: %s",
				     coev_strerror(rc));
			coev_close(fd);
			atomic_fetch_add(&srv->closed, 1);
		}
	}
	return 0;
}

/* ---- ten thousand connections at once ----------------------------------- */

/*
 * MANY clients connect to an echo server and each exchanges one message;
 * once every client has been answered, with every connection still open,
 * the clients are released (a second message each) and close.
 *
 * Client and server run in this process when RLIMIT_NOFILE can be raised
 * to two fds per connection plus a margin. When the hard limit is lower and
 * cannot be raised (no CAP_SYS_RESOURCE, as in some containers), the
 * clients run in a forked child process so that each process needs one fd
 * per connection; still MANY connections, all open at once. If even that
 * does not fit, the test fails and says why.
 */
#ifndef MANY
#define MANY 10000
#endif
#define MSG 16
#define FD_MARGIN 512

typedef struct many {
	int n;
	unsigned port;
	atomic_int *cfd; /* each client's fd, -1 until connected */
	atomic_int connected, answered, released, failed;
} many_t;

typedef struct many_client {
	many_t *m;
	int i;
} many_client_t;

static void many_msg(char out[MSG], char tag, int i)
{
	char tmp[MSG + 1];

	snprintf(tmp, sizeof tmp, "%c%014d\n", tag, i);
	memcpy(out, tmp, MSG);
}

static int many_client_fail(many_t *m, int fd, int rc)
{
	atomic_fetch_add(&m->failed, 1);
	if (fd >= 0)
		coev_close(fd);
	return rc < 0 ? rc : -EIO;
}

static int many_client(void *arg)
{
	many_client_t *c = arg;
	many_t *m = c->m;
	char msg[MSG], got[MSG];

	int fd = coev_tcp_connect("127.0.0.1", m->port, tu_guard());
	if (fd < 0) {
		TU_CHECK_MSG(fd >= 0, "client %d: connect: %s", c->i,
			     coev_strerror(fd));
		return many_client_fail(m, -1, fd);
	}
	atomic_store(&m->cfd[c->i], fd);
	atomic_fetch_add(&m->connected, 1);

	/* First exchange: the client's own message comes back. */
	many_msg(msg, 'q', c->i);
	ssize_t r = coev_write_all(fd, msg, MSG, NULL, tu_guard());
	if (r != MSG) {
		TU_CHECK_MSG(r == MSG, "client %d: write: %zd", c->i, r);
		atomic_store(&m->cfd[c->i], -1);
		return many_client_fail(m, fd, (int)r);
	}
	r = coev_read_full(fd, got, MSG, NULL, tu_guard());
	if (r != MSG || memcmp(got, msg, MSG) != 0) {
		TU_CHECK_MSG(0, "client %d: reply: %zd", c->i, r);
		atomic_store(&m->cfd[c->i], -1);
		return many_client_fail(m, fd, (int)r);
	}
	atomic_fetch_add(&m->answered, 1);

	/* Second: the releasing task writes 'r' on this fd once every client
	 * has been answered; the server echoes it back to us. */
	many_msg(msg, 'r', c->i);
	r = coev_read_full(fd, got, MSG, NULL, tu_guard());
	if (r != MSG || memcmp(got, msg, MSG) != 0) {
		TU_CHECK_MSG(0, "client %d: release: %zd", c->i, r);
		return many_client_fail(m, fd, (int)r);
	}
	atomic_fetch_add(&m->released, 1);
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

/* The client side, from a task: start m->n clients, wait until all are
 * answered, check that they are all open, release them and join them.
 * Returns 0 when every client succeeded. */
static int many_clients(many_t *m, echo_srv_t *srv_here)
{
	int n = m->n, spawned = 0, ok = 0;
	coev_task_t **ct = calloc((size_t)n, sizeof *ct);
	many_client_t *cargs = calloc((size_t)n, sizeof *cargs);
	int fds_before = tu_fd_count();

	TU_CHECK(ct && cargs);
	if (!ct || !cargs) {
		free(ct);
		free(cargs);
		return -ENOMEM;
	}
	/* Clients start in waves of at most 512 unconnected ones, so that the
	 * listen queue does not overflow (an overflow only costs SYN
	 * retransmissions, i.e. seconds). */
	for (int i = 0; i < n; i++) {
		while (i - atomic_load(&m->connected) -
			       atomic_load(&m->failed) >
		       512)
			coev_sleep(COEV_MSEC(1));
		cargs[i] = (many_client_t){.m = m, .i = i};
		int rc = coev_spawn_named("client", many_client, &cargs[i],
					  &ct[i]);
		if (rc != 0) {
			TU_CHECK_MSG(rc == 0, "spawn client %d: %s", i,
				     coev_strerror(rc));
			break;
		}
		spawned++;
	}

	/* Every client answered while all of them hold their connection. */
	coev_time_t dl = coev_deadline(COEV_SEC(2 * TU_GUARD_S));
	while (atomic_load(&m->answered) + atomic_load(&m->failed) < spawned &&
	       coev_now() < dl)
		coev_sleep(COEV_MSEC(5));
	int answered = atomic_load(&m->answered);
	int fds_now = tu_fd_count();
	TU_CHECK_EQ(answered, n);
	TU_CHECK_EQ(atomic_load(&m->failed), 0);
	int fds_want = fds_before + (srv_here ? 2 : 1) * n;
	TU_CHECK_MSG(fds_now >= fds_want, "%d fds open, expected at least %d",
		     fds_now, fds_want);
	if (srv_here) {
		int open_srv = atomic_load(&srv_here->accepted) -
			       atomic_load(&srv_here->closed);
		TU_CHECK_EQ(open_srv, n);
	}

	/* Release every client (on failure: end the connections instead). */
	for (int i = 0; i < spawned; i++) {
		int fd = atomic_load(&m->cfd[i]);
		if (fd < 0)
			continue;
		if (answered == n) {
			char msg[MSG];
			many_msg(msg, 'r', i);
			ssize_t w =
				coev_write_all(fd, msg, MSG, NULL, tu_guard());
			TU_CHECK_EQ(w, MSG);
		} else {
			coev_shutdown(fd, SHUT_RDWR);
		}
	}
	for (int i = 0; i < spawned; i++) {
		int r = -1;
		TU_CHECK_EQ(coev_join(ct[i], &r), 0);
		if (r == 0)
			ok++;
	}
	TU_CHECK_EQ(ok, n);
	TU_CHECK_EQ(atomic_load(&m->released), n);
	free(ct);
	free(cargs);
	return ok == n ? 0 : -EIO;
}

/* The server side, from a task, once many_clients (here or in the other
 * process) is running or done: every connection accepted, every first
 * message echoed while all connections were open, all closed at the
 * end. */
typedef struct many_srv {
	echo_srv_t srv;
	many_t *m;     /* the clients, when they run in this process */
	int split;     /* the clients run in another process */
	int open_peak; /* open connections once every first message was
			  echoed (split mode) */
} many_srv_t;

static int many_server_main(void *arg)
{
	many_srv_t *ms = arg;
	echo_srv_t *srv = &ms->srv;
	coev_task_t *acc;
	int n = srv->max, rc;

	rc = coev_spawn_named("acceptor", echo_acceptor, srv, &acc);
	TU_CHECK_EQ(rc, 0);
	if (rc != 0)
		return rc;
	if (ms->split) {
		/* Releases come only after every client was answered, so
		 * n first messages echoed means all were open at once. */
		coev_time_t dl = coev_deadline(COEV_SEC(2 * TU_GUARD_S));
		while (atomic_load(&srv->bytes) < (long)n * MSG &&
		       coev_now() < dl)
			coev_sleep(COEV_MSEC(5));
		ms->open_peak =
			atomic_load(&srv->accepted) - atomic_load(&srv->closed);
		TU_CHECK_EQ(atomic_load(&srv->bytes) >= (long)n * MSG, 1);
		TU_CHECK_EQ(ms->open_peak, n);
	} else {
		rc = many_clients(ms->m, srv);
	}
	if (atomic_load(&srv->accepted) < n) {
		/* The acceptor is stuck: wake it with connections of ours. */
		for (int k = atomic_load(&srv->accepted); k < n; k++) {
			int fd = coev_tcp_connect(
				"127.0.0.1", (unsigned)coev_sock_port(srv->lfd),
				tu_guard());
			if (fd >= 0)
				coev_close(fd);
		}
	}
	TU_CHECK_EQ(coev_join(acc, NULL), 0);
	/* The server closes each connection once its client has. */
	TU_CHECK_EQ(tu_wait_at_least(&srv->closed, atomic_load(&srv->accepted)),
		    0);
	TU_CHECK_EQ(atomic_load(&srv->accepted), n);
	TU_CHECK_EQ(atomic_load(&srv->bytes), (long)n * MSG * 2);
	return rc;
}

static int many_clients_main(void *arg)
{
	return many_clients(arg, NULL);
}

/* In the forked child: run the clients, exit 0 on success. */
static void many_child(many_t *m)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

	/* Crashes must kill this process, not land in cmocka's handler. */
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	int rc = tu_run_main(many_clients_main, m, 2);
	int failures = atomic_load(&tu_failures);
	fflush(stderr);
	_exit(rc == 0 && failures == 0 ? 0 : 1);
}

static void test_socket_ten_thousand_connections_at_once(void **state)
{
	many_t *m = calloc(1, sizeof *m);
	many_srv_t *ms = calloc(1, sizeof *ms);
	struct rlimit old = {0, 0};
	int split = 0, rc;

	(void)state;
	assert_non_null(m);
	assert_non_null(ms);
	m->n = MANY;
	m->cfd = calloc(MANY, sizeof *m->cfd);
	ms->srv.conns = calloc(MANY, sizeof *ms->srv.conns);
	assert_non_null(m->cfd);
	assert_non_null(ms->srv.conns);
	for (int i = 0; i < MANY; i++)
		atomic_init(&m->cfd[i], -1);

	/* Two fds per connection (client and server side) plus the fds open
	 * now, the runtime's loops and a margin. */
	int base = tu_fd_count();
	rlim_t want = (rlim_t)(2 * MANY + base + FD_MARGIN);
	rlim_t half = (rlim_t)(MANY + base + FD_MARGIN);
	const char *why = NULL;
#if defined(COEV_TSAN)
	/* TSan maps memory for every fiber: 2 * MANY tasks in one process
	 * run into vm.max_map_count, MANY do not. */
	why = "TSan build";
#else
	rc = tu_raise_nofile(want, &old);
	if (rc != 0)
		why = "RLIMIT_NOFILE's hard limit is too low and cannot be "
		      "raised";
#endif
	if (why) {
		split = 1;
		rc = tu_raise_nofile(half, &old);
		if (rc != 0)
			fail_msg("RLIMIT_NOFILE: %d connections need %llu fds "
				 "in one process, or %llu in each of two; the "
				 "hard limit is %llu and cannot be raised: %s",
				 MANY, (unsigned long long)want,
				 (unsigned long long)half,
				 (unsigned long long)old.rlim_max,
				 strerror(-rc));
		print_message("%s (hard limit %llu, %llu wanted): the clients "
			      "run in a child process\n",
			      why, (unsigned long long)old.rlim_max,
			      (unsigned long long)want);
	}

	ms->m = m;
	ms->split = split;
	ms->srv.max = MANY;
	ms->srv.lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	assert_true(ms->srv.lfd >= 0);
	m->port = (unsigned)coev_sock_port(ms->srv.lfd);
	assert_true(m->port > 0);

	coev_time_t t0 = coev_now();
	pid_t child = -1;
	if (split) {
		fflush(stdout);
		fflush(stderr);
		/* Fork before any runtime exists in this process. */
		child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			close(ms->srv.lfd);
			many_child(m);
		}
	}
	rc = tu_run_main(many_server_main, ms, 2);
	int child_ok = 1;
	if (split) {
		int status = 0;
		while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
		}
		child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (!child_ok)
			fprintf(stderr, "client process: status 0x%x\n",
				status);
	}
	print_message("%d connections in %.2f s%s\n", MANY,
		      (double)(coev_now() - t0) / 1e9,
		      split ? " (clients in a child process)" : "");
	assert_int_equal(coev_close(ms->srv.lfd), 0);
	/* Back to the soft limit found (the hard one may stay raised). */
	struct rlimit now;
	getrlimit(RLIMIT_NOFILE, &now);
	now.rlim_cur = old.rlim_cur;
	setrlimit(RLIMIT_NOFILE, &now);
	free(m->cfd);
	free(m);
	free(ms->srv.conns);
	free(ms);
	tu_assert_no_failures();
	assert_int_equal(rc, 0);
	assert_true(child_ok);
}

/* ---- partial writes: several MB against a slow reader ------------------- */

#define BIG ((size_t)TU_SCALE(8, 4, 4) * 1024 * 1024)
#define SMALLBUF (64 * 1024)

typedef struct bulk {
	int wfd, rfd;
	unsigned char *src;
	size_t n;
	ssize_t first_write; /* result of one coev_write of 1 MB */
	atomic_int first_done;
	ssize_t all;
	size_t done;
} bulk_t;

static int bulk_writer(void *arg)
{
	bulk_t *b = arg;

	/* One plain write bigger than both socket buffers takes what fits:
	 * a partial write. */
	b->first_write = coev_write(b->wfd, b->src, 1024 * 1024, tu_guard());
	atomic_store(&b->first_done, 1);
	if (b->first_write <= 0)
		return -EIO;
	size_t off = (size_t)b->first_write;
	b->all = coev_write_all(b->wfd, b->src + off, b->n - off, &b->done,
				tu_guard());
	b->done += off;
	if (b->all >= 0)
		b->all += (ssize_t)off;
	TU_CHECK_EQ(coev_shutdown(b->wfd, SHUT_WR), 0);
	return 0;
}

static int bulk_main(void *arg)
{
	bulk_t *b = arg;
	coev_task_t *w;
	unsigned char *chunk = malloc(4096);
	size_t got = 0, reads = 0, bad = 0;

	TU_CHECK_EQ(tcp_pair_buf(&b->wfd, &b->rfd, SMALLBUF), 0);
	TU_CHECK_EQ(set_int_opt(b->wfd, SOL_SOCKET, SO_SNDBUF, SMALLBUF), 0);
	TU_CHECK_EQ(coev_spawn(bulk_writer, b, &w), 0);
	TU_CHECK_EQ(tu_wait_at_least(&b->first_done, 1), 0);
	TU_CHECK_MSG(b->first_write > 0 && b->first_write < 1024 * 1024,
		     "a 1 MB write to a full socket returned %zd",
		     b->first_write);

	/* A slow reader: small reads of varying size, a nap every 8. */
	for (;;) {
		size_t want = 1 + (reads * 977) % 4096;
		ssize_t n = coev_read(b->rfd, chunk, want, tu_guard());
		if (n <= 0) {
			TU_CHECK_MSG(n == 0, "read: %s", coev_strerror((int)n));
			break;
		}
		TU_CHECK((size_t)n <= want);
		if (check_pat(chunk, got, (size_t)n) != (size_t)n)
			bad++;
		got += (size_t)n;
		if (++reads % 8 == 0)
			coev_sleep(COEV_MSEC(1));
	}
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	TU_CHECK_EQ(b->all, (ssize_t)b->n);
	TU_CHECK_EQ(b->done, b->n);
	TU_CHECK_EQ(got, b->n);
	TU_CHECK_EQ(bad, 0);
	TU_CHECK_EQ(coev_close(b->wfd), 0);
	TU_CHECK_EQ(coev_close(b->rfd), 0);
	free(chunk);
	return 0;
}

static void test_socket_write_all_large_against_slow_reader(void **state)
{
	bulk_t *b = calloc(1, sizeof *b);

	(void)state;
	b->n = BIG;
	b->src = malloc(BIG);
	assert_non_null(b->src);
	fill_pat(b->src, 0, BIG);
	assert_int_equal(tu_run_main(bulk_main, b, 2), 0);
	tu_assert_no_failures();
	free(b->src);
	free(b);
}

/* ---- read_full assembles small pieces ----------------------------------- */

#define PIECES_TOTAL 700

typedef struct pieces {
	int wfd;
	int pieces;
} pieces_t;

static int pieces_writer(void *arg)
{
	pieces_t *p = arg;
	unsigned char buf[8];
	size_t off = 0;

	/* 1..7 bytes at a time with a nap in between: TCP_NODELAY (set by
	 * coev_tcp_connect) sends each piece on its own. */
	while (off < PIECES_TOTAL) {
		size_t n = 1 + (size_t)p->pieces % 7;
		if (n > PIECES_TOTAL - off)
			n = PIECES_TOTAL - off;
		fill_pat(buf, off, n);
		ssize_t w = coev_write(p->wfd, buf, n, tu_guard());
		TU_CHECK_EQ(w, (ssize_t)n);
		if (w != (ssize_t)n)
			return -EIO;
		off += n;
		p->pieces++;
		if (p->pieces % 4 == 0)
			coev_sleep(COEV_MSEC(1));
		else
			coev_yield();
	}
	return 0;
}

static int pieces_main(void *arg)
{
	pieces_t p = {0};
	coev_task_t *w;
	int rfd;
	unsigned char buf[PIECES_TOTAL + 1];
	size_t done = 12345;

	(void)arg;
	TU_CHECK_EQ(tcp_pair(&p.wfd, &rfd), 0);
	TU_CHECK_EQ(get_int_opt(p.wfd, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
	TU_CHECK_EQ(coev_spawn(pieces_writer, &p, &w), 0);
	ssize_t n = coev_read_full(rfd, buf, PIECES_TOTAL, &done, tu_guard());
	TU_CHECK_EQ(n, PIECES_TOTAL);
	TU_CHECK_EQ(done, PIECES_TOTAL);
	TU_CHECK_EQ(check_pat(buf, 0, PIECES_TOTAL), PIECES_TOTAL);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	TU_CHECK(p.pieces >= PIECES_TOTAL / 7);
	/* done may be NULL; a zero-byte read_full returns 0 at once. */
	TU_CHECK_EQ(coev_read_full(rfd, buf, 0, NULL, tu_guard()), 0);
	TU_CHECK_EQ(coev_close(p.wfd), 0);
	TU_CHECK_EQ(coev_close(rfd), 0);
	return 0;
}

static void test_socket_read_full_assembles_small_pieces(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(pieces_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- readv / writev ----------------------------------------------------- */

/* Drops the first n bytes from an iovec array in place; returns the new
 * count of entries (the array start moves through *iov). */
static int iov_advance(struct iovec **iov, int cnt, size_t n)
{
	while (cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		cnt--;
	}
	if (cnt > 0 && n > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
	return cnt;
}

#define VEC_BIG ((size_t)2 * 1024 * 1024)

typedef struct vec {
	int wfd, rfd;
	unsigned char *src, *dst;
	ssize_t first_writev;
	atomic_int first_done;
} vec_t;

static int vec_writer(void *arg)
{
	vec_t *v = arg;
	/* Four uneven pieces of one 2 MB stream. */
	size_t cut[5] = {0, 3, 70000, 1500000, VEC_BIG};
	struct iovec store[4], *iov = store;
	int cnt = 4;

	for (int i = 0; i < 4; i++)
		store[i] = (struct iovec){v->src + cut[i], cut[i + 1] - cut[i]};
	size_t sent = 0;
	int calls = 0;
	while (cnt > 0) {
		ssize_t n = coev_writev(v->wfd, iov, cnt, tu_guard());
		if (n <= 0) {
			TU_CHECK_MSG(n > 0, "writev: %s",
				     coev_strerror((int)n));
			return -EIO;
		}
		if (calls++ == 0) {
			v->first_writev = n;
			atomic_store(&v->first_done, 1);
		}
		sent += (size_t)n;
		cnt = iov_advance(&iov, cnt, (size_t)n);
	}
	TU_CHECK_EQ(sent, VEC_BIG);
	TU_CHECK(calls > 1);
	TU_CHECK_EQ(coev_shutdown(v->wfd, SHUT_WR), 0);
	return 0;
}

static int vec_main(void *arg)
{
	vec_t *v = arg;
	coev_task_t *w;

	TU_CHECK_EQ(tcp_pair_buf(&v->wfd, &v->rfd, SMALLBUF), 0);
	TU_CHECK_EQ(set_int_opt(v->wfd, SOL_SOCKET, SO_SNDBUF, SMALLBUF), 0);

	/* Small: three pieces written with one writev arrive as one stream,
	 * read back with readv into differently cut pieces. */
	char a[] = "hello, ", b[] = "vectored ", c[] = "world";
	struct iovec wv[3] = {{a, 7}, {b, 9}, {c, 5}};
	TU_CHECK_EQ(coev_writev(v->wfd, wv, 3, tu_guard()), 21);
	char r1[4], r2[10], r3[7];
	struct iovec rstore[3] = {{r1, 4}, {r2, 10}, {r3, 7}}, *rv = rstore;
	int rcnt = 3;
	size_t got = 0;
	while (rcnt > 0) {
		ssize_t n = coev_readv(v->rfd, rv, rcnt, tu_guard());
		if (n <= 0) {
			TU_CHECK_MSG(n > 0, "readv: %zd", n);
			break;
		}
		got += (size_t)n;
		rcnt = iov_advance(&rv, rcnt, (size_t)n);
	}
	TU_CHECK_EQ(got, 21);
	TU_CHECK(memcmp(r1, "hell", 4) == 0);
	TU_CHECK(memcmp(r2, "o, vectore", 10) == 0);
	TU_CHECK(memcmp(r3, "d world", 7) == 0);

	/* Big: writev of 2 MB through small buffers is partial; readv with
	 * three pieces per call assembles it. */
	TU_CHECK_EQ(coev_spawn(vec_writer, v, &w), 0);
	TU_CHECK_EQ(tu_wait_at_least(&v->first_done, 1), 0);
	TU_CHECK_MSG(v->first_writev > 0 && (size_t)v->first_writev < VEC_BIG,
		     "first writev of %zu bytes returned %zd", VEC_BIG,
		     v->first_writev);
	size_t off = 0;
	while (off < VEC_BIG) {
		static const size_t cuts[3] = {1000, 1, 30000};
		struct iovec rs[3];
		size_t left = VEC_BIG - off, pos = off;
		int cnt = 0;
		for (int k = 0; k < 3 && left > 0; k++) {
			size_t take = cuts[k] < left ? cuts[k] : left;
			rs[cnt++] = (struct iovec){v->dst + pos, take};
			pos += take;
			left -= take;
		}
		ssize_t n = coev_readv(v->rfd, rs, cnt, tu_guard());
		if (n <= 0) {
			TU_CHECK_MSG(n > 0, "readv at %zu: %zd", off, n);
			break;
		}
		off += (size_t)n;
	}
	char extra;
	TU_CHECK_EQ(coev_read(v->rfd, &extra, 1, tu_guard()), 0);
	TU_CHECK_EQ(off, VEC_BIG);
	TU_CHECK(memcmp(v->src, v->dst, VEC_BIG) == 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	TU_CHECK_EQ(coev_close(v->wfd), 0);
	TU_CHECK_EQ(coev_close(v->rfd), 0);
	return 0;
}

static void test_socket_readv_writev_partial(void **state)
{
	vec_t *v = calloc(1, sizeof *v);

	(void)state;
	v->src = malloc(VEC_BIG);
	v->dst = calloc(1, VEC_BIG);
	assert_non_null(v->src);
	assert_non_null(v->dst);
	fill_pat(v->src, 7, VEC_BIG);
	assert_int_equal(tu_run_main(vec_main, v, 2), 0);
	tu_assert_no_failures();
	free(v->src);
	free(v->dst);
	free(v);
}

/* ---- a peer that resets ------------------------------------------------- */

typedef struct reset {
	int fd;
	atomic_int waiting;
	ssize_t rc;
	size_t done;
	unsigned char *buf;
} reset_t;

static int reset_reader(void *arg)
{
	reset_t *r = arg;
	char c;

	atomic_store(&r->waiting, 1);
	r->rc = coev_read(r->fd, &c, 1, tu_guard());
	return 0;
}

static int reset_writer(void *arg)
{
	reset_t *r = arg;

	atomic_store(&r->waiting, 1);
	r->rc = coev_write_all(r->fd, r->buf, BIG, &r->done, tu_guard());
	return 0;
}

static void hard_close(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	TU_CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	TU_CHECK_EQ(coev_close(fd), 0);
}

static int reset_main(void *arg)
{
	reset_t r = {0};
	coev_task_t *t;
	int peer;

	(void)arg;
	/* A reader waiting when the peer resets gets -ECONNRESET... */
	TU_CHECK_EQ(tcp_pair(&r.fd, &peer), 0);
	TU_CHECK_EQ(coev_spawn(reset_reader, &r, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&r.waiting, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FD, NULL), 0);
	hard_close(peer);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_MSG(r.rc == -ECONNRESET, "read after reset: %zd (%s)", r.rc,
		     coev_strerror((int)r.rc));
	/* ...and a write afterwards fails instead of raising SIGPIPE. */
	static char junk[65536];
	ssize_t w = 0;
	for (int i = 0; i < 64 && w >= 0; i++)
		w = coev_write(r.fd, junk, sizeof junk, tu_guard());
	TU_CHECK_MSG(w == -EPIPE || w == -ECONNRESET,
		     "write after reset: %zd (%s)", w, coev_strerror((int)w));
	TU_CHECK_EQ(coev_close(r.fd), 0);

	/* A writer blocked in write_all on a full socket when the peer
	 * resets gets -ECONNRESET or -EPIPE, and done tells what was sent. */
	reset_t r2 = {0};
	r2.buf = calloc(1, BIG);
	TU_CHECK_EQ(tcp_pair_buf(&r2.fd, &peer, SMALLBUF), 0);
	TU_CHECK_EQ(set_int_opt(r2.fd, SOL_SOCKET, SO_SNDBUF, SMALLBUF), 0);
	TU_CHECK_EQ(coev_spawn(reset_writer, &r2, &t), 0);
	TU_CHECK_EQ(tu_wait_at_least(&r2.waiting, 1), 0);
	/* Blocked: the socket's buffers are full. */
	TU_CHECK_EQ(tu_wait_parked(NULL, t, COEV_WAIT_FD, NULL), 0);
	hard_close(peer);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_MSG(r2.rc == -ECONNRESET || r2.rc == -EPIPE,
		     "write_all after reset: %zd (%s)", r2.rc,
		     coev_strerror((int)r2.rc));
	TU_CHECK(r2.done > 0 && r2.done < BIG);
	TU_CHECK_EQ(coev_close(r2.fd), 0);
	free(r2.buf);
	return 0;
}

static void test_socket_peer_reset_is_an_error_not_a_crash(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(reset_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- an accept storm ---------------------------------------------------- */

#define STORM TU_SCALE(800, 600, 400)

typedef struct storm {
	unsigned port;
	atomic_int connected;
	atomic_int ok;
	unsigned char seen[STORM];
} storm_t;

typedef struct storm_client {
	storm_t *s;
	uint32_t i;
} storm_client_t;

static int storm_client(void *arg)
{
	storm_client_t *c = arg;
	char ack[2];

	int fd = coev_tcp_connect("127.0.0.1", c->s->port, tu_guard());
	if (fd < 0) {
		TU_CHECK_MSG(fd >= 0, "storm connect %u: %s", c->i,
			     coev_strerror(fd));
		return fd;
	}
	atomic_fetch_add(&c->s->connected, 1);
	TU_CHECK_EQ(coev_write_all(fd, &c->i, sizeof c->i, NULL, tu_guard()),
		    (ssize_t)sizeof c->i);
	/* One byte of acknowledgement, then the server's end of stream. */
	ssize_t n = coev_read_full(fd, ack, 1, NULL, tu_guard());
	TU_CHECK_EQ(n, 1);
	TU_CHECK_EQ(coev_read(fd, ack + 1, 1, tu_guard()), 0);
	if (n == 1 && ack[0] == 'k')
		atomic_fetch_add(&c->s->ok, 1);
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

static int storm_main(void *arg)
{
	storm_t *s = arg;
	storm_client_t *cargs = calloc(STORM, sizeof *cargs);
	coev_task_t **ct = calloc(STORM, sizeof *ct);
	int accepted = 0;

	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	TU_CHECK(lfd >= 0);
	s->port = (unsigned)coev_sock_port(lfd);
	/* All clients at once: none runs before the loop ends. */
	for (uint32_t i = 0; i < STORM; i++) {
		cargs[i] = (storm_client_t){.s = s, .i = i};
		TU_CHECK_EQ(coev_spawn(storm_client, &cargs[i], &ct[i]), 0);
	}
	for (int k = 0; k < STORM; k++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof from;
		int fd = coev_accept(lfd, (struct sockaddr *)&from, &flen,
				     tu_guard());
		if (fd < 0) {
			TU_CHECK_MSG(fd >= 0, "accept %d: %s", k,
				     coev_strerror(fd));
			break;
		}
		accepted++;
		TU_CHECK_EQ(from.sin_family, AF_INET);
		TU_CHECK_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		uint32_t idx = UINT32_MAX;
		TU_CHECK_EQ(
			coev_read_full(fd, &idx, sizeof idx, NULL, tu_guard()),
			(ssize_t)sizeof idx);
		if (idx < STORM) {
			TU_CHECK_EQ(s->seen[idx], 0);
			s->seen[idx] = 1;
		} else {
			TU_CHECK_MSG(idx < STORM, "bad index %u", idx);
		}
		TU_CHECK_EQ(coev_write(fd, "k", 1, tu_guard()), 1);
		TU_CHECK_EQ(coev_close(fd), 0);
	}
	for (int i = 0; i < STORM; i++)
		TU_CHECK_EQ(coev_join(ct[i], NULL), 0);
	TU_CHECK_EQ(accepted, STORM);
	int seen = 0;
	for (int i = 0; i < STORM; i++)
		seen += s->seen[i];
	TU_CHECK_EQ(seen, STORM);
	TU_CHECK_EQ(atomic_load(&s->ok), STORM);
	TU_CHECK_EQ(coev_close(lfd), 0);
	free(cargs);
	free(ct);
	return 0;
}

/* coev_resolve: numeric addresses need no lookup and get the port; names
 * go through the resolver (getaddrinfo on the pool by default); unknown
 * names and bad arguments fail with codes. */
static int resolve_main(void *arg)
{
	struct sockaddr_storage a[4];
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a[0];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a[0];
	int n;

	(void)arg;
	TU_CHECK(coev_resolve("127.0.0.1", 8080, a, 4, tu_guard()) == 1);
	TU_CHECK(a[0].ss_family == AF_INET && ntohs(in4->sin_port) == 8080);
	TU_CHECK(coev_resolve("::1", 99, a, 4, tu_guard()) == 1);
	TU_CHECK(a[0].ss_family == AF_INET6 && ntohs(in6->sin6_port) == 99);
	n = coev_resolve("localhost", 7, a, 4, tu_guard());
	TU_CHECK(n >= 1 && n <= 4);
	for (int i = 0; i < n && i < 4; i++)
		TU_CHECK(ntohs(a[i].ss_family == AF_INET6
				       ? ((struct sockaddr_in6 *)&a[i])
						 ->sin6_port
				       : ((struct sockaddr_in *)&a[i])
						 ->sin_port) == 7);
	/* .invalid never resolves; without a reachable DNS server the
	 * system resolver says "try again" instead. Either way the code is
	 * a lookup's, and so is its message (it once read "no such file or
	 * directory"). */
	n = coev_resolve("no-such-host.invalid", 7, a, 4, tu_guard());
	TU_CHECK_MSG(n == COEV_ENONAME || n == -EAGAIN, "%d (%s)", n,
		     coev_strerror(n));
	TU_CHECK_MSG(!strstr(coev_strerror(n), "file"), "%d (%s)", n,
		     coev_strerror(n));
	TU_CHECK(coev_resolve(NULL, 7, a, 4, tu_guard()) == -EINVAL);
	TU_CHECK(coev_resolve("127.0.0.1", 7, a, 0, tu_guard()) == -EINVAL);
	TU_CHECK(coev_resolve("127.0.0.1", 70000, a, 4, tu_guard()) == -EINVAL);
	return 0;
}

static void test_socket_resolve(void **state)
{
	struct sockaddr_storage a[1];

	(void)state;
	assert_int_equal(coev_resolve("127.0.0.1", 1, a, 1, COEV_FOREVER),
			 COEV_ENOTCORO);
	assert_int_equal(tu_run_main(resolve_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static void test_socket_accept_storm_accepts_every_connection(void **state)
{
	storm_t *s = calloc(1, sizeof *s);

	(void)state;
	assert_int_equal(tu_run_main(storm_main, s, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(atomic_load(&s->connected), STORM);
	free(s);
}

/* ---- deadlines ---------------------------------------------------------- */

static int deadline_main(void *arg)
{
	int a, b;
	char buf[32];
	size_t done = 0;

	(void)arg;
	TU_CHECK_EQ(tcp_pair(&a, &b), 0);

	/* A read that times out returns -ETIMEDOUT after the deadline... */
	coev_time_t t0 = coev_now();
	ssize_t n = coev_read(a, buf, sizeof buf, t0 + COEV_MSEC(50));
	coev_time_t took = coev_now() - t0;
	TU_CHECK_EQ(n, -ETIMEDOUT);
	TU_CHECK_MSG(took >= COEV_MSEC(50) && took < COEV_SEC(5),
		     "a 50 ms read deadline returned after %lld ns",
		     (long long)took);
	/* ...and leaves the fd usable: data sent afterwards is read. */
	TU_CHECK_EQ(coev_write(b, "hello", 5, tu_guard()), 5);
	n = coev_read(a, buf, sizeof buf, tu_guard());
	TU_CHECK_EQ(n, 5);
	TU_CHECK(memcmp(buf, "hello", 5) == 0);

	/* A deadline already past only tries: -ETIMEDOUT without data,
	 * the data when there is some. */
	TU_CHECK_EQ(coev_read(a, buf, sizeof buf, coev_now() - 1), -ETIMEDOUT);
	TU_CHECK_EQ(coev_write(b, "x", 1, tu_guard()), 1);
	TU_CHECK_EQ(coev_wait_fd(a, COEV_READ, tu_guard()) & COEV_READ,
		    COEV_READ);
	TU_CHECK_EQ(coev_read(a, buf, sizeof buf, coev_now() - 1), 1);

	/* read_full interrupted by its deadline keeps what it got (done),
	 * and the rest follows. */
	TU_CHECK_EQ(coev_write(b, "abc", 3, tu_guard()), 3);
	memset(buf, 0, sizeof buf);
	t0 = coev_now();
	n = coev_read_full(a, buf, 8, &done, t0 + COEV_MSEC(50));
	took = coev_now() - t0;
	TU_CHECK_EQ(n, -ETIMEDOUT);
	TU_CHECK_EQ(done, 3);
	TU_CHECK(took >= COEV_MSEC(50) && took < COEV_SEC(5));
	TU_CHECK(memcmp(buf, "abc", 3) == 0);
	TU_CHECK_EQ(coev_write(b, "defgh", 5, tu_guard()), 5);
	TU_CHECK_EQ(coev_read_full(a, buf + 3, 5, &done, tu_guard()), 5);
	TU_CHECK_EQ(done, 5);
	TU_CHECK(memcmp(buf, "abcdefgh", 8) == 0);

	/* A write_all that times out on a full socket reports what it sent;
	 * the reader sees exactly those bytes, then the rest. The buffers
	 * are fixed small: with loopback TCP's autotuning, both sides
	 * together could absorb the whole 4 MiB (seen on a loaded CI run:
	 * the write completed instead of timing out). */
	int small = 64 * 1024;
	TU_CHECK_EQ(setsockopt(b, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
		    0);
	TU_CHECK_EQ(setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
		    0);
	size_t big = (size_t)4 * 1024 * 1024;
	unsigned char *src = malloc(big), *dst = malloc(big);
	fill_pat(src, 0, big);
	t0 = coev_now();
	n = coev_write_all(b, src, big, &done, t0 + COEV_MSEC(50));
	took = coev_now() - t0;
	TU_CHECK_EQ(n, -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(50) && took < COEV_SEC(5));
	TU_CHECK(done > 0 && done < big);
	if (done == 0 || done + 4096 > big) {
		/* Failed above; the rest would read past dst. */
		free(src);
		free(dst);
		coev_close(a);
		coev_close(b);
		return 0;
	}
	size_t first = done;
	/* Drain exactly `first` bytes; nothing more may be there. */
	TU_CHECK_EQ(coev_read_full(a, dst, first, NULL, tu_guard()),
		    (ssize_t)first);
	TU_CHECK_EQ(coev_read(a, dst + first, 1, coev_now() - 1), -ETIMEDOUT);
	TU_CHECK_EQ(check_pat(dst, 0, first), first);
	/* Still usable: the rest goes through, then end of stream. */
	TU_CHECK_EQ(coev_write_all(b, src + first, 4096, NULL, tu_guard()),
		    4096);
	TU_CHECK_EQ(coev_read_full(a, dst + first, 4096, NULL, tu_guard()),
		    4096);
	TU_CHECK_EQ(check_pat(dst + first, first, 4096), 4096);
	TU_CHECK_EQ(coev_close(b), 0);
	TU_CHECK_EQ(coev_read(a, dst, 1, tu_guard()), 0);
	free(src);
	free(dst);
	TU_CHECK_EQ(coev_close(a), 0);
	return 0;
}

static void test_socket_deadline_mid_read_leaves_fd_usable(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(deadline_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- end of stream ------------------------------------------------------ */

static int eof_main(void *arg)
{
	int a, b;
	char buf[16];
	size_t done = 999;

	(void)arg;
	TU_CHECK_EQ(tcp_pair(&a, &b), 0);
	TU_CHECK_EQ(coev_write(b, "12345", 5, tu_guard()), 5);
	TU_CHECK_EQ(coev_shutdown(b, SHUT_WR), 0);
	memset(buf, 0, sizeof buf);
	ssize_t n = coev_read_full(a, buf, 10, &done, tu_guard());
	TU_CHECK_MSG(n == COEV_EEOF, "read_full at end of stream: %zd (%s)", n,
		     coev_strerror((int)n));
	TU_CHECK_EQ(done, 5);
	TU_CHECK(memcmp(buf, "12345", 5) == 0);
	/* The stream stays ended. */
	TU_CHECK_EQ(coev_read(a, buf, sizeof buf, tu_guard()), 0);
	TU_CHECK_EQ(coev_read_full(a, buf, 4, &done, tu_guard()), COEV_EEOF);
	TU_CHECK_EQ(done, 0);
	TU_CHECK_EQ(coev_read_full(a, buf, 4, NULL, tu_guard()), COEV_EEOF);
	/* The other direction still works (half-close). */
	TU_CHECK_EQ(coev_write_all(a, "back", 4, NULL, tu_guard()), 4);
	TU_CHECK_EQ(coev_read_full(b, buf, 4, NULL, tu_guard()), 4);
	TU_CHECK(memcmp(buf, "back", 4) == 0);
	TU_CHECK_EQ(coev_close(a), 0);
	TU_CHECK_EQ(coev_close(b), 0);
	return 0;
}

static void test_socket_read_full_eof_reports_done(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(eof_main, NULL, 2), 0);
	tu_assert_no_failures();
	assert_string_equal(coev_strerror(COEV_EEOF),
			    "end of stream before the requested number of "
			    "bytes");
}

/* ---- coev_wait_fd's answer when it only tries ------------------------- */

/* A deadline already past: the answer is still among the events asked
 * for (a hang-up readies both directions to poll), and an fd that is not
 * open is -EBADF, not a timeout (the io harness found both). */
static int wait_past_main(void *arg)
{
	int a, b, fds[2];

	(void)arg;
	TU_CHECK_EQ(tcp_pair(&a, &b), 0);
	TU_CHECK_EQ(coev_close(b), 0);
	TU_CHECK_EQ(coev_wait_fd(a, COEV_READ, 0), COEV_READ);
	TU_CHECK_EQ(coev_wait_fd(a, COEV_READ, tu_guard()), COEV_READ);
	TU_CHECK_EQ(coev_close(a), 0);
	TU_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	TU_CHECK_EQ(coev_fd_nonblock(fds[0]), 0);
	TU_CHECK_EQ(close(fds[1]), 0);
	TU_CHECK_EQ(coev_wait_fd(fds[0], COEV_READ, 0), COEV_READ);
	TU_CHECK_EQ(coev_wait_fd(fds[0], COEV_WRITE, 0), COEV_WRITE);
	TU_CHECK_EQ(close(fds[0]), 0);
	TU_CHECK_EQ(coev_wait_fd(fds[0], COEV_READ, 0), -EBADF);
	return 0;
}

static void test_socket_wait_fd_past_deadline_answers(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(wait_past_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- UDP ---------------------------------------------------------------- */

#define DGRAMS 20

typedef struct udp {
	int a, b;
	int pa, pb;
} udp_t;

static int udp_sender(void *arg)
{
	udp_t *u = arg;
	unsigned char buf[1200];
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)u->pb),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < DGRAMS; i++) {
		size_t len = 1 + (size_t)i * 50;
		memset(buf, i, len);
		ssize_t n =
			coev_sendto(u->a, buf, len, 0, (struct sockaddr *)&to,
				    sizeof to, tu_guard());
		TU_CHECK_EQ(n, (ssize_t)len);
	}
	return 0;
}

static int udp_main(void *arg)
{
	udp_t u;
	coev_task_t *t;
	unsigned char buf[2048];

	(void)arg;
	u.a = coev_udp_bind("127.0.0.1", 0);
	u.b = coev_udp_bind("127.0.0.1", 0);
	TU_CHECK(u.a >= 0 && u.b >= 0);
	TU_CHECK(is_nonblock_cloexec(u.a));
	u.pa = coev_sock_port(u.a);
	u.pb = coev_sock_port(u.b);
	TU_CHECK(u.pa > 0 && u.pb > 0 && u.pa != u.pb);

	/* Nothing sent yet: a receive times out. */
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_recvfrom(u.b, buf, sizeof buf, 0, NULL, NULL,
				  t0 + COEV_MSEC(30)),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(30));

	TU_CHECK_EQ(coev_spawn(udp_sender, &u, &t), 0);
	struct sockaddr_in from;
	for (int i = 0; i < DGRAMS; i++) {
		socklen_t flen = sizeof from;
		memset(&from, 0, sizeof from);
		ssize_t n = coev_recvfrom(u.b, buf, sizeof buf, 0,
					  (struct sockaddr *)&from, &flen,
					  tu_guard());
		TU_CHECK_EQ(n, 1 + i * 50);
		TU_CHECK(n > 0 && buf[0] == i && buf[n - 1] == i);
		TU_CHECK_EQ(flen, sizeof from);
		TU_CHECK_EQ(ntohs(from.sin_port), u.pa);
		TU_CHECK_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	}
	TU_CHECK_EQ(coev_join(t, NULL), 0);

	/* A reply to the address recvfrom gave; recvfrom without an
	 * address. */
	TU_CHECK_EQ(coev_sendto(u.b, "pong", 4, 0, (struct sockaddr *)&from,
				sizeof from, tu_guard()),
		    4);
	TU_CHECK_EQ(
		coev_recvfrom(u.a, buf, sizeof buf, 0, NULL, NULL, tu_guard()),
		4);
	TU_CHECK(memcmp(buf, "pong", 4) == 0);
	TU_CHECK_EQ(coev_close(u.a), 0);
	TU_CHECK_EQ(coev_close(u.b), 0);
	return 0;
}

static void test_socket_udp_sendto_recvfrom(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(udp_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- Unix stream sockets ------------------------------------------------ */

typedef struct unx {
	char dir[64];
	char path[128];
	int lfd;
	int conns;
} unx_t;

static int unix_server(void *arg)
{
	unx_t *u = arg;
	char buf[64];

	for (int k = 0; k < u->conns; k++) {
		int fd = coev_accept(u->lfd, NULL, NULL, tu_guard());
		if (fd < 0) {
			TU_CHECK_MSG(fd >= 0, "unix accept: %s",
				     coev_strerror(fd));
			return fd;
		}
		ssize_t n = coev_read(fd, buf, sizeof buf, tu_guard());
		TU_CHECK(n > 0);
		if (n > 0)
			TU_CHECK_EQ(coev_write_all(fd, buf, (size_t)n, NULL,
						   tu_guard()),
				    n);
		TU_CHECK_EQ(coev_close(fd), 0);
	}
	return 0;
}

static int unix_client(void *arg)
{
	unx_t *u = arg;
	char msg[32], got[32];

	int fd = coev_unix_connect(u->path, tu_guard());
	if (fd < 0) {
		TU_CHECK_MSG(fd >= 0, "unix connect: %s", coev_strerror(fd));
		return fd;
	}
	TU_CHECK(is_nonblock_cloexec(fd));
	int len = snprintf(msg, sizeof msg, "unix %p", (void *)&msg);
	TU_CHECK_EQ(coev_write_all(fd, msg, (size_t)len, NULL, tu_guard()),
		    len);
	TU_CHECK_EQ(coev_read_full(fd, got, (size_t)len, NULL, tu_guard()),
		    len);
	TU_CHECK(memcmp(msg, got, (size_t)len) == 0);
	TU_CHECK_EQ(coev_read(fd, got, 1, tu_guard()), 0);
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

static int unix_main(void *arg)
{
	unx_t *u = arg;
	coev_task_t *srv, *cl[3];

	u->conns = 3;
	u->lfd = coev_unix_listen(u->path, 16);
	TU_CHECK_MSG(u->lfd >= 0, "unix listen: %s", coev_strerror(u->lfd));
	if (u->lfd < 0)
		return u->lfd;
	TU_CHECK(is_nonblock_cloexec(u->lfd));
	TU_CHECK_EQ(coev_spawn(unix_server, u, &srv), 0);
	for (int i = 0; i < 3; i++)
		TU_CHECK_EQ(coev_spawn(unix_client, u, &cl[i]), 0);
	for (int i = 0; i < 3; i++) {
		int r = -1;
		TU_CHECK_EQ(coev_join(cl[i], &r), 0);
		TU_CHECK_EQ(r, 0);
	}
	TU_CHECK_EQ(coev_join(srv, NULL), 0);
	TU_CHECK_EQ(coev_close(u->lfd), 0);

	/* The socket file left behind is replaced by a new listener. */
	struct stat st;
	TU_CHECK_EQ(stat(u->path, &st), 0);
	u->conns = 1;
	u->lfd = coev_unix_listen(u->path, 4);
	TU_CHECK_MSG(u->lfd >= 0, "listen over an old socket file: %s",
		     coev_strerror(u->lfd));
	if (u->lfd >= 0) {
		TU_CHECK_EQ(coev_spawn(unix_server, u, &srv), 0);
		TU_CHECK_EQ(unix_client(u), 0);
		TU_CHECK_EQ(coev_join(srv, NULL), 0);
		TU_CHECK_EQ(coev_close(u->lfd), 0);
	}

	/* Errors: a path that does not fit, a path with no socket. */
	char longpath[300];
	memset(longpath, 'x', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	TU_CHECK_EQ(coev_unix_listen(longpath, 4), -ENAMETOOLONG);
	TU_CHECK_EQ(coev_unix_connect(longpath, tu_guard()), -ENAMETOOLONG);
	char missing[160];
	snprintf(missing, sizeof missing, "%s/nobody-here", u->dir);
	TU_CHECK_EQ(coev_unix_connect(missing, tu_guard()), -ENOENT);
	return 0;
}

static void test_socket_unix_stream_sockets(void **state)
{
	unx_t *u = calloc(1, sizeof *u);

	(void)state;
	assert_int_equal(tu_mkdtemp(u->dir, sizeof u->dir), 0);
	snprintf(u->path, sizeof u->path, "%s/sock", u->dir);
	int rc = tu_run_main(unix_main, u, 2);
	tu_rmtree(u->dir);
	tu_assert_no_failures();
	assert_int_equal(rc, 0);
	free(u);
}

/* ---- connecting by name, refused ---------------------------------------- */

typedef struct named {
	int lfd;
} named_t;

/* Accepts one connection and answers "hi" to its first byte. */
static int accept_one_hi(void *arg)
{
	named_t *n = arg;
	char c;

	int fd = coev_accept(n->lfd, NULL, NULL, tu_guard());
	if (fd < 0) {
		TU_CHECK_MSG(fd >= 0, "accept: %s", coev_strerror(fd));
		return fd;
	}
	TU_CHECK_EQ(coev_read_full(fd, &c, 1, NULL, tu_guard()), 1);
	TU_CHECK_EQ(coev_write_all(fd, "hi", 2, NULL, tu_guard()), 2);
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

static void connect_and_greet(const char *listen_host, const char *host)
{
	named_t n;
	coev_task_t *t;
	char buf[2];

	n.lfd = coev_tcp_listen(listen_host, 0, 8, 0);
	TU_CHECK_MSG(n.lfd >= 0, "listen on %s: %s", listen_host,
		     coev_strerror(n.lfd));
	if (n.lfd < 0)
		return;
	int port = coev_sock_port(n.lfd);
	TU_CHECK_EQ(coev_spawn(accept_one_hi, &n, &t), 0);
	int fd = coev_tcp_connect(host, (unsigned)port, tu_guard());
	TU_CHECK_MSG(fd >= 0, "connect to %s:%d: %s", host, port,
		     coev_strerror(fd));
	if (fd >= 0) {
		TU_CHECK(is_nonblock_cloexec(fd));
		TU_CHECK(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY) > 0);
		TU_CHECK_EQ(coev_write(fd, "?", 1, tu_guard()), 1);
		TU_CHECK_EQ(coev_read_full(fd, buf, 2, NULL, tu_guard()), 2);
		TU_CHECK(memcmp(buf, "hi", 2) == 0);
		TU_CHECK_EQ(coev_close(fd), 0);
	} else {
		/* Let the acceptor finish. */
		int w = coev_tcp_connect(listen_host, (unsigned)port,
					 tu_guard());
		if (w >= 0) {
			coev_write(w, "?", 1, tu_guard());
			coev_close(w);
		}
	}
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(coev_close(n.lfd), 0);
}

static int ipv6_loopback_usable(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6,
				 .sin6_addr = IN6ADDR_LOOPBACK_INIT};

	if (fd < 0)
		return 0;
	int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static int named_main(void *arg)
{
	(void)arg;
	/* "localhost" is resolved on the blocking pool; if it also names ::1
	 * and nothing listens there, the next address is tried. */
	connect_and_greet("127.0.0.1", "localhost");
	connect_and_greet("127.0.0.1", "127.0.0.1");
	if (ipv6_loopback_usable())
		connect_and_greet("::1", "::1");
	else
		print_message("::1 is not configured here: IPv6 part "
			      "not run\n");
	/* Listening takes numeric addresses only. */
	TU_CHECK_EQ(coev_tcp_listen("localhost", 0, 8, 0), -EINVAL);
	return 0;
}

static void test_socket_tcp_connect_by_name(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(named_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int refused_main(void *arg)
{
	(void)arg;
	/* A port bound but not listening refuses connections, and keeping
	 * it bound stops anyone else from taking it meanwhile. */
	int hold = coev_socket(AF_INET, SOCK_STREAM, 0);
	TU_CHECK(hold >= 0);
	TU_CHECK(is_nonblock_cloexec(hold));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	TU_CHECK_EQ(bind(hold, (struct sockaddr *)&a, sizeof a), 0);
	int port = coev_sock_port(hold);
	TU_CHECK(port > 0);
	a.sin_port = htons((uint16_t)port);

	int rc = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());
	TU_CHECK_MSG(rc == -ECONNREFUSED, "tcp_connect: %d (%s)", rc,
		     coev_strerror(rc));
	rc = coev_tcp_connect("localhost", (unsigned)port, tu_guard());
	TU_CHECK_MSG(rc == -ECONNREFUSED, "tcp_connect by name: %d (%s)", rc,
		     coev_strerror(rc));
	int fd = coev_socket(AF_INET, SOCK_STREAM, 0);
	TU_CHECK(fd >= 0);
	rc = coev_connect(fd, (struct sockaddr *)&a, sizeof a, tu_guard());
	TU_CHECK_MSG(rc == -ECONNREFUSED, "connect: %d (%s)", rc,
		     coev_strerror(rc));
	TU_CHECK_EQ(coev_close(fd), 0);
	TU_CHECK_EQ(coev_close(hold), 0);
	return 0;
}

static void test_socket_tcp_connect_refused(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(refused_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- coev_wait_fd on a pipe --------------------------------------------- */

typedef struct pipe_io {
	int p[2];
	atomic_int acted;
	coev_task_t *waiter; /* the task that waits for the late act */
} pipe_io_t;

/* Writes once the waiter waits on the fd. */
static int pipe_late_writer(void *arg)
{
	pipe_io_t *pp = arg;

	TU_CHECK_EQ(tu_wait_parked(NULL, pp->waiter, COEV_WAIT_FD, NULL), 0);
	atomic_store(&pp->acted, 1);
	TU_CHECK_EQ(write(pp->p[1], "z", 1), 1);
	return 0;
}

static int pipe_late_drainer(void *arg)
{
	pipe_io_t *pp = arg;
	static char sink[1 << 16];

	TU_CHECK_EQ(tu_wait_parked(NULL, pp->waiter, COEV_WAIT_FD, NULL), 0);
	atomic_store(&pp->acted, 1);
	TU_CHECK(coev_read(pp->p[0], sink, sizeof sink, tu_guard()) > 0);
	return 0;
}

static int pipe_main(void *arg)
{
	pipe_io_t pp = {.waiter = coev_self()};
	coev_task_t *t;
	char c;

	(void)arg;
	TU_CHECK_EQ(pipe2(pp.p, O_NONBLOCK | O_CLOEXEC), 0);

	/* Nothing to read: the wait times out after its deadline. */
	coev_time_t t0 = coev_now();
	int r = coev_wait_fd(pp.p[0], COEV_READ, t0 + COEV_MSEC(30));
	coev_time_t took = coev_now() - t0;
	TU_CHECK_EQ(r, -ETIMEDOUT);
	TU_CHECK(took >= COEV_MSEC(30) && took < COEV_SEC(5));

	/* A writer makes it readable, once we wait. */
	TU_CHECK_EQ(coev_spawn(pipe_late_writer, &pp, &t), 0);
	r = coev_wait_fd(pp.p[0], COEV_READ, tu_guard());
	TU_CHECK_EQ(r, COEV_READ);
	TU_CHECK_EQ(atomic_load(&pp.acted), 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(coev_read(pp.p[0], &c, 1, tu_guard()), 1);
	TU_CHECK_EQ(c, 'z');

	/* An empty pipe is writable at once, also when asked for both. */
	TU_CHECK_EQ(coev_wait_fd(pp.p[1], COEV_WRITE, coev_now()), COEV_WRITE);
	r = coev_wait_fd(pp.p[1], COEV_READ | COEV_WRITE, tu_guard());
	TU_CHECK(r > 0 && (r & COEV_WRITE));
	/* A full one is not, until someone drains it. */
	static char junk[4096];
	while (write(pp.p[1], junk, sizeof junk) > 0) {
	}
	TU_CHECK_EQ(
		coev_wait_fd(pp.p[1], COEV_WRITE, coev_now() + COEV_MSEC(30)),
		-ETIMEDOUT);
	atomic_store(&pp.acted, 0);
	TU_CHECK_EQ(coev_spawn(pipe_late_drainer, &pp, &t), 0);
	TU_CHECK_EQ(coev_wait_fd(pp.p[1], COEV_WRITE, tu_guard()), COEV_WRITE);
	TU_CHECK_EQ(atomic_load(&pp.acted), 1);
	TU_CHECK_EQ(coev_join(t, NULL), 0);

	/* The read end reports end of stream once the write end closes. */
	TU_CHECK_EQ(coev_close(pp.p[1]), 0);
	ssize_t n;
	while ((n = coev_read(pp.p[0], junk, sizeof junk, tu_guard())) > 0) {
	}
	TU_CHECK_EQ(n, 0);
	TU_CHECK_EQ(coev_close(pp.p[0]), 0);

	/* Bad input. */
	TU_CHECK_EQ(coev_wait_fd(-1, COEV_READ, tu_guard()), -EINVAL);
	int q[2];
	TU_CHECK_EQ(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
	TU_CHECK_EQ(coev_wait_fd(q[0], 0, tu_guard()), -EINVAL);
	close(q[0]);
	close(q[1]);
	return 0;
}

static void test_socket_wait_fd_on_a_pipe(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(pipe_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* A pipe from elsewhere made non-blocking with coev_fd_nonblock. */
static int nonblock_main(void *arg)
{
	int p[2];
	char c;

	(void)arg;
	TU_CHECK_EQ(pipe(p), 0);
	TU_CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	TU_CHECK_EQ(coev_fd_nonblock(p[0]), 0);
	TU_CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	TU_CHECK_EQ(coev_fd_nonblock(p[1]), 0);
	TU_CHECK_EQ(coev_read(p[0], &c, 1, coev_now() + COEV_MSEC(10)),
		    -ETIMEDOUT);
	TU_CHECK_EQ(coev_write(p[1], "q", 1, tu_guard()), 1);
	TU_CHECK_EQ(coev_read(p[0], &c, 1, tu_guard()), 1);
	TU_CHECK_EQ(c, 'q');
	close(p[0]);
	close(p[1]);
	TU_CHECK(coev_fd_nonblock(p[0]) < 0); /* closed: EBADF */
	return 0;
}

static void test_socket_fd_nonblock_on_a_foreign_pipe(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(nonblock_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- outside a task ----------------------------------------------------- */

static void test_socket_calls_outside_a_task_return_enotcoro(void **state)
{
	int p[2];
	char buf[8];
	size_t done = 0;
	struct iovec iov = {buf, sizeof buf};

	(void)state;
	/* Fds that are not ready, so that nothing could succeed at once. */
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	static char junk[4096];
	while (write(p[1], junk, sizeof junk) > 0) {
	}
	coev_time_t dl = coev_deadline(COEV_SEC(1));
	assert_int_equal(coev_wait_fd(p[0], COEV_READ, dl), COEV_ENOTCORO);
	assert_int_equal(coev_read(p[0], buf, 1, dl), COEV_ENOTCORO);
	assert_int_equal(coev_write(p[1], buf, 1, dl), COEV_ENOTCORO);
	assert_int_equal(coev_readv(p[0], &iov, 1, dl), COEV_ENOTCORO);
	assert_int_equal(coev_writev(p[1], &iov, 1, dl), COEV_ENOTCORO);
	assert_int_equal(coev_read_full(p[0], buf, 4, &done, dl),
			 COEV_ENOTCORO);
	assert_int_equal(coev_write_all(p[1], buf, 4, &done, dl),
			 COEV_ENOTCORO);

	/* Calls that never wait work from any thread. */
	int lfd = coev_tcp_listen("127.0.0.1", 0, 8, 0);
	assert_true(lfd >= 0);
	int port = coev_sock_port(lfd);
	assert_true(port > 0);
	assert_int_equal(coev_accept(lfd, NULL, NULL, dl), COEV_ENOTCORO);
	assert_int_equal(coev_tcp_connect("127.0.0.1", (unsigned)port, dl),
			 COEV_ENOTCORO);
	int s = coev_socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(coev_connect(s, (struct sockaddr *)&a, sizeof a, dl),
			 COEV_ENOTCORO);
	assert_int_equal(coev_recv(s, buf, 1, 0, dl), COEV_ENOTCORO);
	assert_int_equal(coev_send(s, buf, 1, 0, dl), COEV_ENOTCORO);
	int u = coev_udp_bind("127.0.0.1", 0);
	assert_true(u >= 0);
	assert_int_equal(coev_recvfrom(u, buf, 1, 0, NULL, NULL, dl),
			 COEV_ENOTCORO);
	assert_int_equal(
		coev_sendto(u, buf, 1, 0, (struct sockaddr *)&a, sizeof a, dl),
		COEV_ENOTCORO);
	assert_int_equal(coev_unix_connect("/nonexistent/coev.sock", dl),
			 COEV_ENOTCORO);
	assert_int_equal(coev_close(u), 0);
	assert_int_equal(coev_close(s), 0);
	assert_int_equal(coev_close(lfd), 0);
	assert_int_equal(coev_close(p[0]), 0);
	assert_int_equal(coev_close(p[1]), 0);
	/* A closed fd: close reports EBADF. */
	assert_int_equal(coev_close(p[0]), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_socket_ten_thousand_connections_at_once),
		TU_FD_TEST(test_socket_write_all_large_against_slow_reader),
		TU_FD_TEST(test_socket_read_full_assembles_small_pieces),
		TU_FD_TEST(test_socket_readv_writev_partial),
		TU_FD_TEST(test_socket_peer_reset_is_an_error_not_a_crash),
		TU_FD_TEST(test_socket_accept_storm_accepts_every_connection),
		TU_FD_TEST(test_socket_deadline_mid_read_leaves_fd_usable),
		TU_FD_TEST(test_socket_read_full_eof_reports_done),
		TU_FD_TEST(test_socket_wait_fd_past_deadline_answers),
		TU_FD_TEST(test_socket_udp_sendto_recvfrom),
		TU_FD_TEST(test_socket_unix_stream_sockets),
		TU_FD_TEST(test_socket_tcp_connect_by_name),
		TU_FD_TEST(test_socket_tcp_connect_refused),
		TU_FD_TEST(test_socket_wait_fd_on_a_pipe),
		TU_FD_TEST(test_socket_fd_nonblock_on_a_foreign_pipe),
		TU_FD_TEST(test_socket_calls_outside_a_task_return_enotcoro),
		TU_FD_TEST(test_socket_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
