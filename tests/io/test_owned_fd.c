/* SPDX-License-Identifier: MIT */
/*
 * tests/io/test_owned_fd.c — the fds coev owns (sched/fd.c): registered
 * once, edge-triggered, with readiness remembered per direction.
 *
 * An owned fd closed through coev and its number reused by a new socket
 * while a task on another worker waits on the old one; coev_wait_fd on
 * huge and negative fd numbers (an error, and no memory growth); a read
 * after a full read goes straight to the system call; a short read and
 * data that arrives after it, before the next read waits and while it
 * waits; coev_try_read and coev_try_write, which skip the system call on
 * a direction known drained, and coev_wait_fd after them; many
 * connections echoing while their tasks move between workers
 * (COEV_DEBUG_MIGRATE in make check-tsan-migrate).
 *
 * White-box: the tests look at the state block (coev__fd_owned) to tell
 * that a call did not wait (the fd was never registered) and that a short
 * read left the direction drained.
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coev/bridge.h"
#include "sched/internal.h"

/* A connected TCP pair over 127.0.0.1, both ends owned: *c connects to
 * listener lfd, *s is accepted. */
static int pair_on(int lfd, int *c, int *s)
{
	int port = coev_sock_port(lfd);

	*c = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());
	if (*c < 0)
		return *c;
	*s = coev_accept(lfd, NULL, NULL, tu_guard());
	return *s < 0 ? *s : 0;
}

/* A listener *lfd and a connected pair over it (pair_on); the accepted
 * end's state block, or NULL (a check failed). */
static struct coev__fd *owned_pair(int *lfd, int *c, int *s)
{
	struct coev__fd *f;

	*lfd = coev_tcp_listen("127.0.0.1", 0, 8, 0);
	TU_CHECK(*lfd >= 0);
	TU_CHECK_EQ(pair_on(*lfd, c, s), 0);
	f = coev__fd_owned(*s);
	TU_CHECK(f != NULL);
	return f;
}

/* Block the thread (not the task) until fd is readable: the data is in
 * the socket without any wait of the runtime. */
static void plain_poll_in(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	TU_CHECK_EQ(poll(&p, 1, TU_GUARD_S * 1000), 1);
}

/* Yield until t waits on an fd (0), or -ETIMEDOUT after the guard. */
static int until_waiting_on_fd(coev_task_t *t)
{
	coev_time_t dl = tu_guard();

	while (atomic_load(&t->wait_kind) != COEV_WAIT_FD) {
		if (coev_now() > dl)
			return -ETIMEDOUT;
		coev_yield();
	}
	return 0;
}

/* ---- close and reuse while another worker's task waits ------------------ */

typedef struct reuse {
	int fd;
	ssize_t got;
	char buf[16];
} reuse_t;

static int reuse_reader(void *arg)
{
	reuse_t *r = arg;

	TU_CHECK_EQ(coev_pin_to(1), 0);
	r->got = coev_read(r->fd, r->buf, sizeof r->buf, tu_guard());
	return 0;
}

static int reuse_main(void *arg)
{
	reuse_t old = {0}, fresh = {0};
	coev_task_t *t, *u;
	int lfd, c, s, c2, s2;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	(void)arg;
	TU_CHECK_EQ(coev_pin_to(0), 0);
	lfd = coev_tcp_listen("127.0.0.1", 0, 8, 0);
	TU_CHECK(lfd >= 0);
	a.sin_port = htons((uint16_t)coev_sock_port(lfd));
	TU_CHECK_EQ(pair_on(lfd, &c, &s), 0);

	/* A task on worker 1 waits on s (registered in worker 1's set). */
	old.fd = s;
	TU_CHECK_EQ(coev_spawn(reuse_reader, &old, &t), 0);
	TU_CHECK_EQ(until_waiting_on_fd(t), 0);
	TU_CHECK_EQ(coev_worker_id(), 0);

	/* Closed through coev here, on worker 0: the waiter gets -EBADF. */
	TU_CHECK_EQ(coev_close(s), 0);
	TU_CHECK_EQ(coev_join(t, NULL), 0);
	TU_CHECK_EQ(old.got, -EBADF);

	/* The number is reused by a new socket at once (the lowest free). */
	c2 = coev_socket(AF_INET, SOCK_STREAM, 0);
	TU_CHECK_EQ(c2, s);
	TU_CHECK_EQ(
		coev_connect(c2, (struct sockaddr *)&a, sizeof a, tu_guard()),
		0);
	s2 = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(s2 >= 0);

	/* Data written before anyone waits on the new socket ... */
	TU_CHECK_EQ(coev_write(s2, "first", 5, tu_guard()), 5);
	plain_poll_in(c2);
	fresh.fd = c2;
	TU_CHECK_EQ(coev_spawn(reuse_reader, &fresh, &u), 0);
	TU_CHECK_EQ(coev_join(u, NULL), 0);
	TU_CHECK_EQ(fresh.got, 5);
	TU_CHECK_EQ(memcmp(fresh.buf, "first", 5), 0);
	/* ... and while a task on worker 1 waits on it. */
	TU_CHECK_EQ(coev_spawn(reuse_reader, &fresh, &u), 0);
	TU_CHECK_EQ(until_waiting_on_fd(u), 0);
	TU_CHECK_EQ(coev_write(s2, "second", 6, tu_guard()), 6);
	TU_CHECK_EQ(coev_join(u, NULL), 0);
	TU_CHECK_EQ(fresh.got, 6);
	TU_CHECK_EQ(memcmp(fresh.buf, "second", 6), 0);

	TU_CHECK_EQ(coev_close(c), 0);
	TU_CHECK_EQ(coev_close(c2), 0);
	TU_CHECK_EQ(coev_close(s2), 0);
	TU_CHECK_EQ(coev_close(lfd), 0);
	return 0;
}

static void test_owned_close_and_reuse_while_another_worker_waits(void **st)
{
	(void)st;
	assert_int_equal(tu_run_main(reuse_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- huge and negative fd numbers --------------------------------------- */

static long rss_pages(void)
{
	long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss;
}

static int huge_main(void *arg)
{
	static const int huge[] = {30000000, INT_MAX, COEV_FD_MAX};
	long before, after, page = sysconf(_SC_PAGESIZE);
	char c;

	(void)arg;
	before = rss_pages();
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
			coev_time_t dl = coev_deadline(COEV_MSEC(10));

			TU_CHECK_EQ(coev_wait_fd(huge[i], COEV_READ, dl),
				    -EBADF);
			TU_CHECK_EQ(coev_wait_fd(huge[i], COEV_WRITE, dl),
				    -EBADF);
			TU_CHECK_EQ(coev_read(huge[i], &c, 1, dl), -EBADF);
		}
		/* Below the bound but not open: the one-shot path's
		 * epoll_ctl refuses it. */
		TU_CHECK_EQ(coev_wait_fd(COEV_FD_MAX - 1, COEV_READ,
					 coev_deadline(COEV_MSEC(10))),
			    -EBADF);
		TU_CHECK_EQ(coev_wait_fd(-1, COEV_READ, tu_guard()), -EINVAL);
		TU_CHECK_EQ(coev_wait_fd(INT_MIN, COEV_WRITE, tu_guard()),
			    -EINVAL);
	}
	after = rss_pages();
	TU_CHECK(before > 0 && after > 0);
	/* One page of slots (32 KiB) and the table's top may be touched;
	 * the old table grew to 1 GiB for fd 30,000,000. */
	TU_CHECK_MSG((after - before) * page < 1024 * 1024,
		     "RSS grew by %ld KiB", (after - before) * page / 1024);
	return 0;
}

static void test_owned_huge_and_negative_fds_are_refused(void **st)
{
	(void)st;
	assert_int_equal(tu_run_main(huge_main, NULL, 1), 0);
	tu_assert_no_failures();
}

/* ---- a read after a full read, a short read, data arriving later -------- */

typedef struct later {
	int fd;
	const char *what;
	size_t n;
} later_t;

static int later_writer(void *arg)
{
	later_t *l = arg;

	TU_CHECK_EQ(coev_write(l->fd, l->what, l->n, tu_guard()),
		    (ssize_t)l->n);
	return 0;
}

static int reads_main(void *arg)
{
	int lfd, c, s;
	char buf[256], data[200];
	struct coev__fd *f;
	coev_task_t *w;
	later_t l;

	(void)arg;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 7);
	if (!(f = owned_pair(&lfd, &c, &s)))
		return -1;

	/* Two full reads of what is there: neither waits, so the fd is
	 * never registered, and nothing is left drained. */
	TU_CHECK_EQ(coev_write(c, data, 200, tu_guard()), 200);
	plain_poll_in(s);
	TU_CHECK_EQ(coev_read(s, buf, 100, tu_guard()), 100);
	TU_CHECK_EQ(coev_read(s, buf + 100, 100, tu_guard()), 100);
	TU_CHECK_EQ(memcmp(buf, data, 200), 0);
	TU_CHECK(!f->reg);
	TU_CHECK_EQ(atomic_load(&f->drained[0]), 0);

	/* A short read drains: the direction is noted drained at its seq. */
	TU_CHECK_EQ(coev_write(c, data, 10, tu_guard()), 10);
	plain_poll_in(s);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 10);
	TU_CHECK_EQ(atomic_load(&f->drained[0]), atomic_load(&f->seq[0]) | 1);

	/* Data that arrives between the short read and the next read's
	 * wait (not registered yet: the registration reports it). */
	TU_CHECK_EQ(coev_write(c, data + 10, 5, tu_guard()), 5);
	plain_poll_in(s);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 5);
	TU_CHECK_EQ(memcmp(buf, data + 10, 5), 0);
	TU_CHECK(f->reg);

	/* The same once registered: an edge that comes before the wait. */
	for (int round = 0; round < 20; round++) {
		TU_CHECK_EQ(coev_write(c, data + round, 3, tu_guard()), 3);
		plain_poll_in(s);
		TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 3);
		TU_CHECK_EQ(memcmp(buf, data + round, 3), 0);
	}

	/* And data that arrives while the reader waits. */
	l = (later_t){.fd = c, .what = data, .n = 7};
	TU_CHECK_EQ(coev_spawn(later_writer, &l, &w), 0);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 7);
	TU_CHECK_EQ(memcmp(buf, data, 7), 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);

	/* A deadline already past still tries: data there is read. */
	TU_CHECK_EQ(coev_write(c, data, 4, tu_guard()), 4);
	plain_poll_in(s);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, coev_now() - 1), 4);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, coev_now() - 1), -ETIMEDOUT);

	/* The peer's end after a short read: the next read returns 0. */
	TU_CHECK_EQ(coev_write(c, data, 9, tu_guard()), 9);
	TU_CHECK_EQ(coev_shutdown(c, SHUT_WR), 0);
	TU_CHECK_EQ(coev_read(s, buf, 5, tu_guard()), 5);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 4);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 0);
	TU_CHECK_EQ(coev_read(s, buf, sizeof buf, tu_guard()), 0);

	TU_CHECK_EQ(coev_close(c), 0);
	TU_CHECK_EQ(coev_close(s), 0);
	TU_CHECK_EQ(coev_close(lfd), 0);
	TU_CHECK(coev__fd_owned(s) == NULL);
	return 0;
}

static void test_owned_full_and_short_reads(void **st)
{
	(void)st;
	assert_int_equal(tu_run_main(reads_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- coev_try_read, coev_try_write, and the wait after them ------------- */

static int try_main(void *arg)
{
	int lfd, c, s, p[2];
	char buf[256], big[65536];
	struct coev__fd *f;
	coev_task_t *w;
	later_t l;
	ssize_t r, put = 0;

	(void)arg;
	memset(big, 'x', sizeof big);
	if (!(f = owned_pair(&lfd, &c, &s)))
		return -1;
	TU_CHECK_EQ(coev_try_read(-1, buf, sizeof buf), -EBADF);

	/* Nothing there: -EAGAIN, and the direction is noted drained. */
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), -EAGAIN);
	TU_CHECK_EQ(atomic_load(&f->drained[0]), atomic_load(&f->seq[0]) | 1);

	/* Data that comes now, while no wait has registered the fd, is not
	 * seen by a try: no edge moved the seq, so no read(2) is made. The
	 * wait registers the fd, learns of the data and returns at once. */
	TU_CHECK_EQ(coev_write(c, "abc", 3, tu_guard()), 3);
	plain_poll_in(s);
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), -EAGAIN);
	TU_CHECK_EQ(coev_wait_fd(s, COEV_READ, tu_guard()), (int)COEV_READ);
	TU_CHECK_EQ(coev_try_read(s, buf, 2), 2);
	TU_CHECK_EQ(memcmp(buf, "ab", 2), 0);
	/* A full read leaves it undrained: the next try reads. */
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), 1);
	TU_CHECK_EQ(buf[0], 'c');
	/* That was short: drained, so a wait parks without polling until
	 * data comes, and then returns. */
	TU_CHECK_EQ(atomic_load(&f->drained[0]), atomic_load(&f->seq[0]) | 1);
	l = (later_t){.fd = c, .what = "later", .n = 5};
	TU_CHECK_EQ(coev_spawn(later_writer, &l, &w), 0);
	TU_CHECK_EQ(coev_wait_fd(s, COEV_READ, tu_guard()), (int)COEV_READ);
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), 5);
	TU_CHECK_EQ(memcmp(buf, "later", 5), 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	/* Drained, and nothing comes: the wait times out. */
	TU_CHECK_EQ(coev_wait_fd(s, COEV_READ, coev_now() + COEV_MSEC(20)),
		    -ETIMEDOUT);

	/* Writes: fill the socket until -EAGAIN, then wait for room. */
	while ((r = coev_try_write(c, big, sizeof big)) > 0)
		put += r;
	TU_CHECK_EQ(r, -EAGAIN);
	TU_CHECK(put > 0);
	for (ssize_t got = 0; got < put;) {
		TU_CHECK_EQ(coev_wait_fd(s, COEV_READ, tu_guard()),
			    (int)COEV_READ);
		while ((r = coev_try_read(s, big, sizeof big)) > 0)
			got += r;
		TU_CHECK_EQ(r, -EAGAIN);
	}
	TU_CHECK_EQ(coev_wait_fd(c, COEV_WRITE, tu_guard()), (int)COEV_WRITE);
	TU_CHECK_EQ(coev_try_write(c, "z", 1), 1);

	/* The peer's end: 0, and 0 again (an end is not "drained"). */
	TU_CHECK_EQ(coev_shutdown(c, SHUT_WR), 0);
	TU_CHECK_EQ(coev_wait_fd(s, COEV_READ, tu_guard()), (int)COEV_READ);
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), 1);
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), 0);
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), 0);

	/* An fd coev does not own: the plain system calls. */
	TU_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	TU_CHECK_EQ(coev_try_read(p[0], buf, sizeof buf), -EAGAIN);
	TU_CHECK_EQ(coev_try_write(p[1], "pq", 2), 2);
	TU_CHECK_EQ(coev_try_read(p[0], buf, sizeof buf), 2);
	TU_CHECK_EQ(memcmp(buf, "pq", 2), 0);
	close(p[0]);
	close(p[1]);

	TU_CHECK_EQ(coev_close(c), 0);
	TU_CHECK_EQ(coev_close(s), 0);
	TU_CHECK_EQ(coev_close(lfd), 0);
	/* Closed through coev: the number is no longer ours. */
	TU_CHECK_EQ(coev_try_read(s, buf, sizeof buf), -EBADF);
	return 0;
}

static void test_try_read_write_and_the_wait_after(void **st)
{
	(void)st;
	assert_int_equal(tu_run_main(try_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- many connections, tasks moving between workers --------------------- */

#define CONNS TU_SCALE(64, 32, 16)
#define MSGS TU_SCALE(200, 100, 50)

static int echo_serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	ssize_t n;

	while ((n = coev_read(fd, buf, sizeof buf, tu_guard())) > 0)
		TU_CHECK_EQ(
			coev_write_all(fd, buf, (size_t)n, NULL, tu_guard()),
			n);
	TU_CHECK_EQ(n, 0);
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

static int echo_client(void *arg)
{
	int port = (int)(intptr_t)arg;
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());
	char out[400], in[400];

	TU_CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	for (int m = 0; m < MSGS; m++) {
		size_t n = 1 + (size_t)(m * 37 + fd) % sizeof out;

		for (size_t i = 0; i < n; i++)
			out[i] = (char)(m + i + (size_t)fd);
		TU_CHECK_EQ(coev_write_all(fd, out, n, NULL, tu_guard()),
			    (ssize_t)n);
		TU_CHECK_EQ(coev_read_full(fd, in, n, NULL, tu_guard()),
			    (ssize_t)n);
		TU_CHECK_EQ(memcmp(in, out, n), 0);
		if (m % 16 == 0)
			coev_yield();
	}
	TU_CHECK_EQ(coev_close(fd), 0);
	return 0;
}

static int echo_main(void *arg)
{
	coev_task_t *clients[CONNS], *servers[CONNS];
	int lfd, port;

	(void)arg;
	lfd = coev_tcp_listen("127.0.0.1", 0, CONNS, 0);
	TU_CHECK(lfd >= 0);
	port = coev_sock_port(lfd);
	for (int i = 0; i < CONNS; i++)
		TU_CHECK_EQ(coev_spawn(echo_client, (void *)(intptr_t)port,
				       &clients[i]),
			    0);
	for (int i = 0; i < CONNS; i++) {
		int fd = coev_accept(lfd, NULL, NULL, tu_guard());

		TU_CHECK(fd >= 0);
		TU_CHECK_EQ(coev_spawn(echo_serve, (void *)(intptr_t)fd,
				       &servers[i]),
			    0);
	}
	for (int i = 0; i < CONNS; i++) {
		TU_CHECK_EQ(coev_join(clients[i], NULL), 0);
		TU_CHECK_EQ(coev_join(servers[i], NULL), 0);
	}
	TU_CHECK_EQ(coev_close(lfd), 0);
	return 0;
}

static void test_owned_many_connections_across_workers(void **st)
{
	(void)st;
	assert_int_equal(tu_run_main(echo_main, NULL, 2), 0);
	tu_assert_no_failures();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(
			test_owned_close_and_reuse_while_another_worker_waits),
		TU_FD_TEST(test_owned_huge_and_negative_fds_are_refused),
		TU_FD_TEST(test_owned_full_and_short_reads),
		TU_FD_TEST(test_try_read_write_and_the_wait_after),
		TU_FD_TEST(test_owned_many_connections_across_workers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
