/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_io.c — the socket path harness: io/socket.c and sched/fd.c over
 * fake sockets that hold bytes (fuzz/sim_fd.c).
 *
 * Program: workers (1-2), a buffer capacity per direction (1-8 bytes), and
 * one connection, then maybe a second that takes a closed number again.
 * A connection is either made by coev (coev_unix_listen, coev_unix_connect
 * in one task, coev_accept in another: both ends owned, edge-triggered)
 * or a pair from elsewhere made non-blocking with coev_fd_nonblock (the
 * one-shot path). Its writer, a task (coev_write, coev_writev, coev_send,
 * coev_write_all) or a foreign actor (raw non-blocking writes), sends
 * 1-48 bytes in chunks of sizes from the program, with deadlines from the
 * program, then shuts its side down or closes it (through coev, or behind
 * coev's back). Its reader task reads (coev_read, coev_readv, coev_recv,
 * coev_read_full, coev_try_read and a wait after its -EAGAIN, a peek,
 * coev_wait_fd) with sizes and deadlines from the program, and may close
 * its end early. Main, after a delay from the program, does one of:
 * nothing, cancel the reader, close the reader's fd with coev_close under
 * its wait (and open the second connection at once, taking the number
 * while the old reader may not have run), close the writer's fd with
 * coev_close under its wait, reset the connection, or make the next
 * system call on either end fail with EINTR.
 *
 * Oracles, from coev/io.h: the reader sees the writer's bytes exactly
 * once, in order (each connection's bytes are distinct, so a byte of
 * another connection, a lost or a repeated byte breaks the pattern); a
 * read returns 0 only after the writer shut down or closed and every byte
 * it sent was read (or after a reset); a transfer returns 1..n (read_full
 * and write_all: n, or an error with done telling what moved); -ETIMEDOUT
 * only for a deadline that has passed in virtual time, and since the
 * pattern continues across it, the call consumed nothing; -ECANCELED
 * only for a cancelled task; -EBADF only for a task whose fd main
 * closed; -EPIPE/-ECONNRESET only after the reader closed or a reset;
 * EINTR never shows; a peek takes nothing; coev_wait_fd answers
 * COEV_READ only when there is something to read; after a cancelled or
 * closed reader, the bytes left in the fd continue the pattern up to what
 * the writer sent; every fake socket is closed at the end and nothing
 * leaks. Connections made by coev may fail first: connect and accept
 * (which may come late) have deadlines from the program, and answer
 * -ETIMEDOUT only after them, -ECONNREFUSED only once the acceptor gave
 * up; a connect that succeeds has an accepted peer.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz/harness.h"
#include "sched/internal.h"

int coev__sim_sched_yield(void);
int coev__sim_shutdown(int fd, int how);

#define CHUNKS 8
#define NS 300

enum {
	ACT_NONE,
	ACT_CANCEL,
	ACT_CLOSE,
	ACT_RESET,
	ACT_EINTR_R,
	ACT_EINTR_W,
	ACT_CLOSE_W,
	ACTS
};

struct conn {
	unsigned id, total;
	bool owned;	   /* made by coev: listen, connect, accept */
	bool actor;	   /* the writer is a foreign actor */
	unsigned wend;	   /* 0 coev_close, 1 shutdown then close, 2 raw */
	unsigned rclose;   /* the reader closes after this many bytes (0: no) */
	unsigned rend_raw; /* the reader's fd is closed behind coev's back */
	uint8_t wop[CHUNKS], wn[CHUNKS], wdl[CHUNKS];
	uint8_t rop[CHUNKS], rn[CHUNKS], rdl[CHUNKS];
	int rfd, wfd, lfd;
	/* What happened: */
	unsigned sent, got;
	bool wdone;   /* the writer has shut down or closed (sent final) */
	bool rclosed; /* the reader closed its end */
	bool reset, cancelled, wcancelled;
	bool closing;  /* main closes the reader's fd */
	bool wclosing; /* main closes the writer's fd */
	bool rdone;    /* the reader ended */
	bool eof;
	unsigned adelay, adl, cdl; /* accept's delay and deadline, connect's */
	bool afailed;		   /* accept timed out */
	bool failed;		   /* the connection was not made */
	struct conn *after;	   /* write once its reader has ended */
	coev_event_t ended;	   /* set when the reader has ended */
	bool ev_init;
	coev_task_t *reader, *writer;
	sim_actor_t wact;
	const char *rdoing, *wdoing;
};

static struct state {
	unsigned workers, cap, act, delay, nconns;
	struct conn c[2];
	int main_ret;
} st;

static void describe(FILE *out, void *arg);

static uint8_t pat(const struct conn *c, unsigned pos)
{
	return (uint8_t)(c->id * 128 + pos);
}

/* A deadline from the program; after 3 timeouts, none (a task polling
 * with deadlines would keep the peer off the CPU under PCT). */
static coev_time_t deadline(uint8_t b, unsigned *timeouts)
{
	return b % 4 || *timeouts >= 3
		       ? COEV_FOREVER
		       : coev_now() + (coev_time_t)(b / 4 % 6) * NS;
}

static void check_bytes(struct conn *c, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		H_CHECK(b[i] == pat(c, c->got + (unsigned)i),
			"conn %u: byte %u is %u, not %u (lost, repeated or "
			"foreign)",
			c->id, c->got + (unsigned)i, b[i],
			pat(c, c->got + (unsigned)i));
	c->got += (unsigned)n;
	H_CHECK(c->got <= c->total, "conn %u: read %u of %u", c->id, c->got,
		c->total);
}

/* An error answer of a wait that ended at dl: allowed now? */
static bool timed_out(ssize_t r, coev_time_t dl)
{
	if (r != -ETIMEDOUT)
		return false;
	H_CHECK(dl != COEV_FOREVER && coev_now() >= dl,
		"-ETIMEDOUT before the deadline (now %lld, deadline %lld)",
		(long long)coev_now(), (long long)dl);
	return true;
}

static int reader(void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16];
	unsigned timeouts = 0;
	bool must_read = false;

	for (unsigned i = 0;; i++) {
		unsigned op = c->rop[i % CHUNKS],
			 n = 1 + c->rn[i % CHUNKS] % 12;
		coev_time_t dl = deadline(c->rdl[i % CHUNKS], &timeouts);
		struct iovec v[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
		size_t done = 0;
		bool counted = false;
		ssize_t r;

		if (c->closing)
			break; /* main closes the fd: no call after that */
		if (c->rclose && c->got >= c->rclose) {
			c->rclosed = true;
			H_CHECK(coev_close(c->rfd) == 0, "reader's close");
			c->rfd = -1;
			break;
		}
		c->rdoing = "reading";
		/* After a peek, a wait or a whole read_full, a read (or a
		 * try): the program progresses. */
		switch (op % (must_read ? 5 : 7)) {
		case 0: r = coev_read(c->rfd, buf, n, dl); break;
		case 1: r = coev_readv(c->rfd, v, 2, dl); break;
		case 2: r = coev_recv(c->rfd, buf, n, 0, dl); break;
		case 3:
			r = coev_read_full(c->rfd, buf, n, &done, dl);
			H_CHECK(done <= n && (r < 0 || (size_t)r == n),
				"read_full of %u returned %zd, done %zu", n, r,
				done);
			check_bytes(c, buf, done);
			if (r == COEV_EEOF)
				r = 0;
			counted = r > 0;
			break;
		case 4:
			/* One try, never waiting; after -EAGAIN the wait must
			 * learn of bytes that came since (a try skips the
			 * system call on a direction known drained). */
			r = coev_try_read(c->rfd, buf, n);
			if (r != -EAGAIN)
				break;
			if (c->closing)
				goto out; /* no call after main's close */
					  /* fall through */
		case 5:
			/* Only this task reads the fd: what the wait saw is
			 * still there. */
			r = coev_wait_fd(c->rfd, COEV_READ, dl);
			H_CHECK(r <= 0 ||
					(r == COEV_READ &&
					 (c->closing || /* after the wake */
					  sim_sock_level(c->rfd) & COEV_READ)),
				"conn %u: coev_wait_fd(COEV_READ) returned "
				"%zd, readiness %u",
				c->id, r, sim_sock_level(c->rfd));
			counted = r > 0;
			break;
		default:
			r = coev_recv(c->rfd, buf, n, MSG_PEEK, dl);
			if (r > 0) { /* the bytes stay */
				H_CHECK((size_t)r <= n, "peek of %u: %zd", n,
					r);
				check_bytes(c, buf, (size_t)r);
				c->got -= (unsigned)r;
				counted = true;
			}
			break;
		}
		c->rdoing = "between reads";
		must_read = counted;
		if (counted)
			continue;
		if (r > 0) {
			H_CHECK((size_t)r <= n, "read of %u returned %zd", n,
				r);
			check_bytes(c, buf, (size_t)r);
			continue;
		}
		if (timed_out(r, dl) && ++timeouts) {
			coev_sleep(NS); /* a deadline past only tries */
			continue;
		}
		if (r == 0) {
			/* A writer whose fd main closed may not have
			 * counted its last write yet: checked at the end. */
			H_CHECK(c->reset || c->wclosing ||
					(c->wdone && c->got == c->sent),
				"conn %u: end of stream after %u bytes; "
				"writer %s, sent %u",
				c->id, c->got, c->wdone ? "done" : "writing",
				c->sent);
			c->eof = true;
			break;
		}
		if (r == -ECONNRESET) {
			H_CHECK(c->reset, "conn %u: -ECONNRESET, no reset",
				c->id);
			continue;
		}
		H_CHECK((r == -ECANCELED && c->cancelled) ||
				(r == -EBADF && c->closing),
			"conn %u: read returned %zd", c->id, r);
		break;
	}
out:
	c->rdoing = "done";
	c->rdone = true;
	coev_event_set(&c->ended);
	return 0;
}

/* The writer's end once it has written what it could. */
static void writer_end(struct conn *c)
{
	c->wdone = true;
	if (c->wclosing)
		return; /* main closed it */
	if (c->wend == 1)
		H_CHECK(coev_shutdown(c->wfd, SHUT_WR) == 0, "shutdown");
	if (c->wend == 2)
		sim_sock_close(c->wfd); /* behind coev's back */
	else
		H_CHECK(coev_close(c->wfd) == 0, "writer's close");
	c->wfd = -1;
}

/* An error a write may give now. */
static void write_err(struct conn *c, ssize_t r)
{
	H_CHECK(((r == -EPIPE || r == -ECONNRESET) &&
		 (c->rclosed || c->reset || c->closing)) ||
			(r == -ECANCELED && c->wcancelled) ||
			(r == -EBADF && c->wclosing),
		"conn %u: write returned %zd", c->id, r);
}

static int writer(void *arg)
{
	struct conn *c = arg;
	uint8_t buf[16];
	unsigned timeouts = 0;

	c->wdoing = "writing";
	if (c->after)
		H_CHECK(coev_event_wait(&c->after->ended) == 0, "event");
	for (unsigned i = 0; c->sent < c->total; i++) {
		unsigned op = c->wop[i % CHUNKS],
			 n = 1 + c->wn[i % CHUNKS] % 12;
		coev_time_t dl = deadline(c->wdl[i % CHUNKS], &timeouts);
		size_t done = 0;
		ssize_t r;

		if (c->wclosing)
			break; /* main closes the fd: no call after that */
		if (n > c->total - c->sent)
			n = c->total - c->sent;
		for (unsigned k = 0; k < n; k++)
			buf[k] = pat(c, c->sent + k);
		struct iovec v[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
		switch (op % 4) {
		case 0: r = coev_write(c->wfd, buf, n, dl); break;
		case 1: r = coev_writev(c->wfd, v, 2, dl); break;
		case 2: r = coev_send(c->wfd, buf, n, 0, dl); break;
		default:
			r = coev_write_all(c->wfd, buf, n, &done, dl);
			H_CHECK(done <= n &&
					(r < 0 ? done < n : (size_t)r == n),
				"write_all of %u returned %zd, done %zu", n, r,
				done);
			c->sent += (unsigned)done;
			if (r > 0)
				continue;
			break;
		}
		if (r > 0) {
			H_CHECK((size_t)r <= n, "write of %u returned %zd", n,
				r);
			c->sent += (unsigned)r;
			continue;
		}
		H_CHECK(r != 0, "write of %u returned 0", n);
		if (timed_out(r, dl) && ++timeouts) {
			coev_sleep(NS); /* a deadline past only tries */
			continue;
		}
		write_err(c, r);
		break;
	}
	c->wdoing = "done";
	writer_end(c);
	return 0;
}

/* A writer from elsewhere: raw writes, spinning on a full buffer. */
static void actor_writer(void *arg)
{
	struct conn *c = arg;

	c->wdoing = "writing (actor)";
	while (c->after && !c->after->rdone)
		coev__sim_sched_yield();
	for (unsigned i = 0; c->sent < c->total && !c->rdone; i++) {
		uint8_t buf[16];
		unsigned n = 1 + c->wn[i % CHUNKS] % 12;
		ssize_t r;

		if (n > c->total - c->sent)
			n = c->total - c->sent;
		for (unsigned k = 0; k < n; k++)
			buf[k] = pat(c, c->sent + k);
		r = sim_sock_write(c->wfd, buf, n);
		if (r > 0) {
			c->sent += (unsigned)r;
		} else if (r == -EAGAIN || r == -EINTR) {
			coev__sim_sched_yield();
		} else {
			write_err(c, r);
			break;
		}
		if (c->wop[i % CHUNKS] & 4)
			coev__sim_sched_yield();
	}
	c->wdoing = "done";
	c->wdone = true;
	if (c->wend == 1)
		coev__sim_shutdown(c->wfd, SHUT_WR);
	sim_sock_close(c->wfd);
	c->wfd = -1;
}

static char path[] = "/nonexistent/coev-sim-io";

/* Accept c's connection after a delay, with a deadline from the program;
 * a timed-out acceptor closes the listener (the connect is refused). */
static int acceptor(void *arg)
{
	struct conn *c = arg;
	coev_time_t dl;
	int fd;

	if (c->adelay)
		coev_sleep((coev_time_t)c->adelay * NS);
	dl = c->adl ? coev_now() + (coev_time_t)c->adl * NS : COEV_FOREVER;
	fd = coev_accept(c->lfd, NULL, NULL, dl);
	if (fd == -ETIMEDOUT) {
		H_CHECK(coev_now() >= dl, "accept: -ETIMEDOUT before the "
					  "deadline");
		c->afailed = true;
		H_CHECK(coev_close(c->lfd) == 0, "close listener");
		c->lfd = -1;
		return 0;
	}
	H_CHECK(fd >= 0, "accept returned %d", fd);
	c->rfd = fd;
	return 0;
}

/* Make c's two ends; false when the connection was not made. */
static bool conn_open(struct conn *c)
{
	int fds[2];

	if (c->owned) {
		coev_task_t *a;
		coev_time_t dl = c->cdl ? coev_now() + (coev_time_t)c->cdl * NS
					: COEV_FOREVER;
		int r;

		c->lfd = coev_unix_listen(path, 4);
		H_CHECK(c->lfd >= 0, "listen returned %d", c->lfd);
		H_CHECK(coev_spawn(acceptor, c, &a) == 0, "spawn");
		r = coev_unix_connect(path, dl);
		H_CHECK(r >= 0 || (r == -ETIMEDOUT && coev_now() >= dl) ||
				(r == -ECONNREFUSED && c->afailed),
			"connect returned %d", r);
		H_CHECK(coev_join(a, NULL) == 0, "join acceptor");
		if (c->lfd >= 0) {
			H_CHECK(coev_close(c->lfd) == 0, "close listener");
			c->lfd = -1;
		}
		H_CHECK(r < 0 || c->rfd >= 0,
			"connected, and the acceptor got nothing");
		if (r >= 0)
			c->wfd = r;
		if (r >= 0 && c->rfd >= 0)
			return true;
		/* Not made: what one side got is closed. */
		if (c->rfd >= 0)
			H_CHECK(coev_close(c->rfd) == 0, "close");
		if (r >= 0)
			H_CHECK(coev_close(r) == 0, "close");
		c->rfd = c->wfd = -1;
		return false;
	} else {
		H_CHECK(sim_sock_pair(fds) == 0, "pair");
		c->rfd = fds[0];
		c->wfd = fds[1];
		H_CHECK(coev_fd_nonblock(c->rfd) == 0, "nonblock");
		H_CHECK(coev_fd_nonblock(c->wfd) == 0, "nonblock");
	}
	return true;
}

static void conn_start(struct conn *c)
{
	H_CHECK(coev_event_init(&c->ended) == 0, "event");
	c->ev_init = true;
	if (!conn_open(c)) {
		c->failed = true;
		coev_event_set(&c->ended);
		return;
	}
	H_CHECK(coev_spawn(reader, c, &c->reader) == 0, "spawn reader");
	if (c->actor)
		H_CHECK(sim_actor_start(&c->wact, "writer", actor_writer, c) ==
				0,
			"actor");
	else
		H_CHECK(coev_spawn(writer, c, &c->writer) == 0, "spawn writer");
}

/* After the reader ended early: the rest of the bytes, by raw reads. */
static void drain(struct conn *c)
{
	uint8_t buf[16];
	ssize_t r;

	while ((r = sim_sock_read(c->rfd, buf, sizeof buf)) > 0 || r == -EINTR)
		if (r > 0)
			check_bytes(c, buf, (size_t)r);
	H_CHECK(c->reset || c->got == c->sent,
		"conn %u: read %u and left %u of %u sent", c->id, c->got - 0,
		0u, c->sent);
}

static void conn_finish(struct conn *c)
{
	if (c->failed)
		return;
	H_CHECK(coev_join(c->reader, NULL) == 0, "join reader");
	c->rdone = true; /* also when cancelled before it began */
	coev_event_set(&c->ended);
	if (!c->eof && !c->actor) {
		/* The reader stopped early: the writer may wait for room. */
		c->wcancelled = true;
		coev_cancel(c->writer);
	}
	if (c->actor)
		sim_actor_join(c->wact);
	else
		H_CHECK(coev_join(c->writer, NULL) == 0, "join writer");
	if (c->wfd >= 0) { /* cancelled before it began */
		c->wdone = true;
		H_CHECK(coev_close(c->wfd) == 0, "writer's close");
		c->wfd = -1;
	}
	H_CHECK(c->sent <= c->total, "sent %u of %u", c->sent, c->total);
	if (c->eof)
		H_CHECK(c->reset || c->got == c->sent,
			"conn %u: read %u of %u sent", c->id, c->got, c->sent);
	if (c->rfd >= 0 && !c->closing) {
		if (!c->eof && !c->rclosed)
			drain(c);
		if (c->rend_raw)
			sim_sock_close(c->rfd);
		else
			H_CHECK(coev_close(c->rfd) == 0, "reader's close");
		c->rfd = -1;
	}
}

static int main_task(void *arg)
{
	struct conn *c = &st.c[0];

	(void)arg;
	conn_start(c);
	if (c->failed)
		st.act = ACT_NONE;
	if (st.act != ACT_NONE)
		coev_sleep((coev_time_t)st.delay * NS);
	switch (st.act) {
	case ACT_CANCEL:
		c->cancelled = true;
		coev_cancel(c->reader);
		break;
	case ACT_CLOSE:
		if (c->rdone || c->rclosed || !c->owned)
			break; /* one closer */
		c->closing = true;
		H_CHECK(coev_close(c->rfd) == 0, "close under a wait");
		if (st.nconns > 1) {
			/* The number again at once, from elsewhere; its
			 * bytes come once the old reader has ended (a call
			 * of it inside the system call may still hit the
			 * number). */
			st.c[1].owned = false;
			st.c[1].after = c;
			conn_start(&st.c[1]);
		}
		break;
	case ACT_RESET:
		c->reset = true;
		sim_sock_fail(c->rfd >= 0 ? c->rfd : c->wfd, ECONNRESET);
		break;
	case ACT_EINTR_R:
		if (c->rfd >= 0)
			sim_sock_fail(c->rfd, EINTR);
		break;
	case ACT_EINTR_W:
		if (c->wfd >= 0)
			sim_sock_fail(c->wfd, EINTR);
		break;
	case ACT_CLOSE_W:
		if (c->wdone || c->actor || !c->owned)
			break; /* one closer */
		c->wclosing = true;
		H_CHECK(coev_close(c->wfd) == 0, "close under a wait");
		c->wfd = -1;
		break;
	}
	conn_finish(c);
	if (st.nconns > 1) {
		if (!st.c[1].reader)
			conn_start(&st.c[1]);
		conn_finish(&st.c[1]);
	}
	return 0;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	st.main_ret = coev_run(main_task, NULL, &cfg);
	for (unsigned i = 0; i < 2; i++)
		if (st.c[i].ev_init)
			coev_event_destroy(&st.c[i].ended);
	coev__fd_table_free();
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nconns; i++) {
		struct conn *c = &st.c[i];

		fprintf(out,
			"  conn %u (read fd %d, write fd %d, %s): reader %s, "
			"writer %s, %u sent of %u, %u read\n",
			i, c->rfd, c->wfd, c->owned ? "owned" : "foreign",
			c->rdoing ? c->rdoing : "not started",
			c->wdoing ? c->wdoing : "not started", c->sent,
			c->total, c->got);
	}
}

static void conn_prog(struct prog *g, struct conn *c, unsigned id)
{
	unsigned b = prog_byte(g);

	c->id = id;
	c->owned = !(b & 1);
	c->actor = b & 2;
	c->wend = (b >> 2) % 3;
	c->rend_raw = b & 0x40;
	c->total = 1 + prog_byte(g) % 48;
	b = prog_byte(g);
	c->rclose = b % 4 == 0 ? 1 + b / 4 % c->total : 0;
	b = prog_byte(g);
	if (b & 1) { /* accept late, connect and accept with deadlines */
		c->adelay = b / 2 % 4;
		c->adl = b / 8 % 4;
		c->cdl = b / 32 % 8;
	}
	for (unsigned i = 0; i < CHUNKS; i++) {
		c->wop[i] = (uint8_t)prog_byte(g);
		c->wn[i] = (uint8_t)prog_byte(g);
		c->wdl[i] = (uint8_t)prog_byte(g);
		c->rop[i] = (uint8_t)prog_byte(g);
		c->rn[i] = (uint8_t)prog_byte(g);
		c->rdl[i] = (uint8_t)prog_byte(g);
	}
	c->rfd = c->wfd = c->lfd = -1;
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	sim_sock_clear();
	st.workers = 1 + prog_byte(&g) % 2;
	b = prog_byte(&g);
	st.cap = 1 + b % 8;
	st.nconns = 1 + (b >> 3) % 2;
	b = prog_byte(&g);
	st.act = b % ACTS;
	st.delay = b / ACTS % 8;
	for (unsigned i = 0; i < 2; i++)
		conn_prog(&g, &st.c[i], i);
	sim_sock_cap(st.cap);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	if (sim_sock_open())
		describe(stderr, NULL);
	H_CHECK(sim_sock_open() == 0, "%u fake sockets left open",
		sim_sock_open());
}

const struct harness h_io = {
	"io",
	"sockets over fake fds with bytes: partial transfers, deadlines, "
	"cancel, close, reset, EINTR, reuse",
	run,
};
