/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_fd.c — fake sockets that hold bytes, for the simulation build.
 *
 * fuzz/sim_io_redirect.h sends the library's fd system calls here. A fake
 * socket is a fake fd of the poller (sim_fd_new, fuzz/sim_loop.c); every
 * other fd goes to the system. A connection is a pair of ends, each with a
 * buffer of what its peer wrote (a capacity of 1-32 bytes chosen by the
 * harness: writes are partial or EAGAIN when it is full); an end reads
 * what its buffer holds, then 0 once the peer shut its writing down or
 * closed, or the error the peer's close or a reset left (ECONNRESET, once,
 * after the bytes). A write to a peer that closed gets EPIPE. Listeners
 * (socket, bind to a path, listen) queue connections; connect returns
 * EINPROGRESS and the connection is made by the listener's accept4.
 *
 * Readiness follows the kernel's edges: an end gets an edge (sim_fd_set)
 * when bytes arrive, room is made by its peer's read, the peer shuts down
 * or closes, a reset comes or its connection is accepted; its own reads
 * and writes only lower its level (sim_fd_level), never announce anything.
 * The harness injects errors (sim_sock_fail: EINTR for the next call, or a
 * reset now) and closes ends behind coev's back (sim_sock_close); closed
 * numbers are reused, lowest first, as the kernel's.
 *
 * Each call on a fake fd is a scheduling point first: another thread may
 * act between the caller's look at the fd's state and the call.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/un.h>

#include "fuzz/sim.h"
#include "sched/internal.h"

#undef read
#undef write
#undef readv
#undef writev
#undef recv
#undef send
#undef recvfrom
#undef sendto
#undef socket
#undef bind
#undef listen
#undef accept4
#undef connect
#undef getsockopt
#undef setsockopt
#undef shutdown
#undef close
#undef poll
#undef fcntl

#define FILES 16
#define CONNS 16
#define CAP 32
#define BACKLOG 4

struct end {
	uint8_t buf[CAP]; /* what the peer wrote, not yet read */
	unsigned len, cap;
	bool eof;     /* the peer shut its writing down or closed */
	bool rd_shut; /* this end shut its reading down */
	int err;      /* a pending error (after the bytes): ECONNRESET */
	int fd;	      /* -1: closed */
};

struct conn {
	bool used;
	bool reset; /* writes get EPIPE */
	struct end e[2];
};

enum kind { K_FREE, K_SOCK, K_LISTEN, K_END };

struct file {
	enum kind kind;
	int fd;
	struct conn *c;
	int side;
	int fail;     /* fail the next call with this errno */
	int conn_err; /* SO_ERROR of a connect */
	bool nonblock;
	char path[32];
	struct conn *queue[BACKLOG]; /* a listener's connections */
	unsigned nq;
};

static struct file files[FILES];
static struct conn conns[CONNS];
static unsigned default_cap = 8;

void sim_sock_clear(void)
{
	memset(files, 0, sizeof files);
	memset(conns, 0, sizeof conns);
	default_cap = 8;
}

void sim_sock_cap(unsigned cap)
{
	default_cap = cap < 1 ? 1 : cap > CAP ? CAP : cap;
}

static struct file *file_of(int fd)
{
	for (int i = 0; i < FILES; i++)
		if (files[i].kind != K_FREE && files[i].fd == fd)
			return &files[i];
	return NULL;
}

static struct file *file_new(enum kind kind)
{
	int fd;

	for (int i = 0; i < FILES; i++) {
		if (files[i].kind != K_FREE)
			continue;
		if ((fd = sim_fd_new()) < 0)
			return NULL;
		memset(&files[i], 0, sizeof files[i]);
		files[i].kind = kind;
		files[i].fd = fd;
		return &files[i];
	}
	return NULL;
}

static struct conn *conn_new(void)
{
	for (int i = 0; i < CONNS; i++) {
		if (!conns[i].used) {
			memset(&conns[i], 0, sizeof conns[i]);
			conns[i].used = true;
			for (int s = 0; s < 2; s++) {
				conns[i].e[s].cap = default_cap;
				conns[i].e[s].fd = -1;
			}
			return &conns[i];
		}
	}
	return NULL;
}

/* Free c once both ends are closed (-1; -2 is an end a listener has not
 * accepted yet). */
static void conn_put(struct conn *c)
{
	if (c->e[0].fd == -1 && c->e[1].fd == -1)
		c->used = false;
}

/* The readiness of an end: what a poll would say. */
static unsigned end_level(struct conn *c, int side)
{
	struct end *me = &c->e[side], *peer = &c->e[!side];
	unsigned ev = 0;

	if (me->len || me->eof || me->err || me->rd_shut)
		ev |= COEV_READ;
	if (peer->len < peer->cap || peer->fd == -1 || c->reset)
		ev |= COEV_WRITE;
	if (me->eof || me->err)
		ev |= COEV__FD_CLOSED_READ;
	if (c->reset || peer->fd == -1)
		ev |= COEV__FD_CLOSED_WRITE;
	return ev;
}

static unsigned file_level(struct file *f)
{
	if (f->kind == K_END)
		return end_level(f->c, f->side);
	if (f->kind == K_LISTEN)
		return f->nq ? COEV_READ : 0;
	return 0;
}

/* Something arrived at end side: an edge with its readiness. */
static void edge(struct conn *c, int side)
{
	if (c->e[side].fd >= 0)
		sim_fd_set(c->e[side].fd, end_level(c, side));
}

/* f's own call changed its state: its level, no edge. */
static void level(struct file *f)
{
	sim_fd_level(f->fd, file_level(f));
}

/* The call's prologue: a scheduling point, then the file, or NULL with
 * errno set for a fake number not open. */
static struct file *enter(int fd, bool *fake)
{
	struct file *f;

	*fake = sim_fd_fake(fd);
	if (!*fake)
		return NULL;
	COEV__POINT(SYSCALL);
	if (!(f = file_of(fd))) {
		errno = EBADF;
		return NULL;
	}
	return f;
}

static void reset(struct conn *c)
{
	c->reset = true;
	for (int s = 0; s < 2; s++) {
		c->e[s].err = ECONNRESET;
		c->e[s].eof = true;
	}
	for (int s = 0; s < 2; s++)
		edge(c, s);
}

void sim_sock_fail(int fd, int err)
{
	struct file *f = file_of(fd);

	if (!f)
		return;
	if (err == ECONNRESET && f->kind == K_END)
		reset(f->c);
	else
		f->fail = err;
}

static ssize_t end_read(struct file *f, struct iovec *iov, int iovcnt,
			bool peek)
{
	struct end *me = &f->c->e[f->side];
	size_t got = 0, want = 0;

	for (int i = 0; i < iovcnt; i++)
		want += iov[i].iov_len;
	if (!want)
		return 0;
	if (!me->len) {
		if (me->err && !peek) {
			errno = me->err;
			me->err = 0;
			level(f);
			return -1;
		}
		if (me->eof || me->rd_shut || me->err)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	for (int i = 0; i < iovcnt && got < me->len; i++) {
		size_t k = iov[i].iov_len;

		if (k > me->len - got)
			k = me->len - got;
		memcpy(iov[i].iov_base, me->buf + got, k);
		got += k;
	}
	if (!peek) {
		memmove(me->buf, me->buf + got, me->len - got);
		me->len -= (unsigned)got;
		level(f);
		edge(f->c, !f->side); /* room for the peer */
	}
	return (ssize_t)got;
}

static ssize_t end_write(struct file *f, const struct iovec *iov, int iovcnt)
{
	struct end *peer = &f->c->e[!f->side];
	size_t put = 0;

	if (f->c->reset || peer->fd == -1 || peer->rd_shut || peer->eof) {
		errno = EPIPE;
		return -1;
	}
	if (peer->fd == -2) { /* not accepted yet */
		errno = EAGAIN;
		return -1;
	}
	for (int i = 0; i < iovcnt && peer->len < peer->cap; i++) {
		size_t k = iov[i].iov_len;

		if (k > peer->cap - peer->len)
			k = peer->cap - peer->len;
		memcpy(peer->buf + peer->len, iov[i].iov_base, k);
		peer->len += (unsigned)k;
		put += k;
	}
	if (!put) {
		size_t want = 0;

		for (int i = 0; i < iovcnt; i++)
			want += iov[i].iov_len;
		if (!want)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	level(f);
	edge(f->c, !f->side);
	return (ssize_t)put;
}

/* An injected error, for the transfers only. */
static bool failed(struct file *f)
{
	if (!f->fail)
		return false;
	errno = f->fail;
	f->fail = 0;
	return true;
}

static ssize_t io_read(struct file *f, struct iovec *iov, int n, bool peek)
{
	if (failed(f))
		return -1;
	if (f->kind != K_END) {
		errno = f->kind == K_SOCK ? ENOTCONN : EINVAL;
		return -1;
	}
	return end_read(f, iov, n, peek);
}

static ssize_t io_write(struct file *f, const struct iovec *iov, int n)
{
	if (failed(f))
		return -1;
	if (f->kind != K_END) {
		errno = f->kind == K_SOCK ? ENOTCONN : EINVAL;
		return -1;
	}
	return end_write(f, iov, n);
}

ssize_t coev__sim_read(int fd, void *buf, size_t n)
{
	struct iovec v = {buf, n};
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return io_read(f, &v, 1, false);
	return fake ? -1 : read(fd, buf, n);
}

ssize_t coev__sim_write(int fd, const void *buf, size_t n)
{
	struct iovec v = {(void *)buf, n};
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return io_write(f, &v, 1);
	return fake ? -1 : write(fd, buf, n);
}

/* An iovcnt the system call takes, or false with errno EINVAL. */
static bool iov_ok(int iovcnt)
{
	if (iovcnt >= 0 && iovcnt <= 64)
		return true;
	errno = EINVAL;
	return false;
}

ssize_t coev__sim_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return iov_ok(iovcnt)
			       ? io_read(f, (struct iovec *)iov, iovcnt, false)
			       : -1;
	return fake ? -1 : readv(fd, iov, iovcnt);
}

ssize_t coev__sim_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return iov_ok(iovcnt) ? io_write(f, iov, iovcnt) : -1;
	return fake ? -1 : writev(fd, iov, iovcnt);
}

ssize_t coev__sim_recv(int fd, void *buf, size_t n, int flags)
{
	struct iovec v = {buf, n};
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return io_read(f, &v, 1, flags & MSG_PEEK);
	return fake ? -1 : recv(fd, buf, n, flags);
}

ssize_t coev__sim_send(int fd, const void *buf, size_t n, int flags)
{
	struct iovec v = {(void *)buf, n};
	struct file *f;
	bool fake;

	if ((f = enter(fd, &fake)))
		return io_write(f, &v, 1);
	return fake ? -1 : send(fd, buf, n, flags);
}

ssize_t coev__sim_recvfrom(int fd, void *buf, size_t n, int flags,
			   struct sockaddr *addr, socklen_t *alen)
{
	if (sim_fd_fake(fd)) {
		if (alen)
			*alen = 0;
		return coev__sim_recv(fd, buf, n, flags);
	}
	return recvfrom(fd, buf, n, flags, addr, alen);
}

ssize_t coev__sim_sendto(int fd, const void *buf, size_t n, int flags,
			 const struct sockaddr *addr, socklen_t alen)
{
	if (sim_fd_fake(fd))
		return coev__sim_send(fd, buf, n, flags);
	return sendto(fd, buf, n, flags, addr, alen);
}

/* Unix stream sockets are fake in the simulation; others are the
 * system's. */
int coev__sim_socket(int domain, int type, int protocol)
{
	struct file *f;

	if (domain != AF_UNIX || (type & 0xf) != SOCK_STREAM)
		return socket(domain, type, protocol);
	COEV__POINT(SYSCALL);
	if (!(f = file_new(K_SOCK))) {
		errno = EMFILE;
		return -1;
	}
	f->nonblock = type & SOCK_NONBLOCK;
	return f->fd;
}

static const char *path_of(const struct sockaddr *addr, socklen_t alen)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)addr;

	if (alen < sizeof(sa_family_t) + 1 || addr->sa_family != AF_UNIX)
		return NULL;
	return un->sun_path;
}

int coev__sim_bind(int fd, const struct sockaddr *addr, socklen_t alen)
{
	struct file *f;
	const char *p;
	bool fake;

	if (!(f = enter(fd, &fake)))
		return fake ? -1 : bind(fd, addr, alen);
	if (f->kind != K_SOCK || !(p = path_of(addr, alen)) ||
	    strlen(p) >= sizeof f->path) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < FILES; i++) {
		if (files[i].kind == K_LISTEN && !strcmp(files[i].path, p)) {
			errno = EADDRINUSE;
			return -1;
		}
	}
	strcpy(f->path, p);
	return 0;
}

int coev__sim_listen(int fd, int backlog)
{
	struct file *f;
	bool fake;

	(void)backlog;
	if (!(f = enter(fd, &fake)))
		return fake ? -1 : listen(fd, backlog);
	if (f->kind != K_SOCK || !f->path[0]) {
		errno = EINVAL;
		return -1;
	}
	f->kind = K_LISTEN;
	return 0;
}

int coev__sim_connect(int fd, const struct sockaddr *addr, socklen_t alen)
{
	struct file *f, *l = NULL;
	struct conn *c;
	const char *p;
	bool fake;

	if (!(f = enter(fd, &fake)))
		return fake ? -1 : connect(fd, addr, alen);
	if (f->kind != K_SOCK) {
		errno = f->kind == K_END ? EISCONN : EINVAL;
		return -1;
	}
	if ((p = path_of(addr, alen)))
		for (int i = 0; i < FILES; i++)
			if (files[i].kind == K_LISTEN &&
			    !strcmp(files[i].path, p))
				l = &files[i];
	if (!l) {
		errno = ECONNREFUSED;
		return -1;
	}
	if (l->nq == BACKLOG || !(c = conn_new())) {
		errno = EAGAIN;
		return -1;
	}
	f->kind = K_END;
	f->c = c;
	f->side = 0;
	c->e[0].fd = fd;
	c->e[1].fd = -2; /* not accepted yet: open, no number */
	l->queue[l->nq++] = c;
	sim_fd_set(l->fd, COEV_READ);
	level(f); /* not writable until accepted */
	errno = EINPROGRESS;
	return -1;
}

int coev__sim_accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	struct file *l, *f;
	struct conn *c;
	bool fake;

	if (!(l = enter(fd, &fake)))
		return fake ? -1 : accept4(fd, addr, alen, flags);
	if (l->kind != K_LISTEN) {
		errno = EINVAL;
		return -1;
	}
	if (!l->nq) {
		errno = EAGAIN;
		return -1;
	}
	if (!(f = file_new(K_END))) {
		errno = EMFILE;
		return -1;
	}
	c = l->queue[0];
	memmove(l->queue, l->queue + 1, --l->nq * sizeof l->queue[0]);
	level(l);
	f->c = c;
	f->side = 1;
	f->nonblock = flags & SOCK_NONBLOCK;
	c->e[1].fd = f->fd;
	level(f);
	edge(c, 0); /* the connect is made */
	if (alen)
		*alen = 0;
	return f->fd;
}

int coev__sim_getsockopt(int fd, int level, int name, void *v, socklen_t *len)
{
	struct file *f;
	bool fake;

	if (!(f = enter(fd, &fake)))
		return fake ? -1 : getsockopt(fd, level, name, v, len);
	if (level == SOL_SOCKET && name == SO_ERROR && *len >= sizeof(int)) {
		*(int *)v = f->conn_err;
		f->conn_err = 0;
		*len = sizeof(int);
		return 0;
	}
	errno = ENOPROTOOPT;
	return -1;
}

int coev__sim_setsockopt(int fd, int level, int name, const void *v,
			 socklen_t len)
{
	if (sim_fd_fake(fd))
		return file_of(fd) ? 0 : (errno = EBADF, -1);
	return setsockopt(fd, level, name, v, len);
}

int coev__sim_shutdown(int fd, int how)
{
	struct file *f;
	bool fake;

	if (!(f = enter(fd, &fake)))
		return fake ? -1 : shutdown(fd, how);
	if (f->kind != K_END) {
		errno = ENOTCONN;
		return -1;
	}
	if (how == SHUT_RD || how == SHUT_RDWR) {
		f->c->e[f->side].rd_shut = true;
		edge(f->c, f->side);
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		f->c->e[!f->side].eof = true;
		edge(f->c, !f->side);
	}
	return 0;
}

static void end_close(struct file *f)
{
	struct conn *c = f->c;
	struct end *me = &c->e[f->side], *peer = &c->e[!f->side];

	/* Unread bytes: the peer's reads get ECONNRESET after its own. */
	if (me->len && !peer->err)
		peer->err = ECONNRESET;
	peer->eof = true;
	me->fd = -1;
	me->len = 0;
	if (peer->fd >= 0)
		edge(c, !f->side);
	conn_put(c);
}

int sim_sock_close(int fd)
{
	struct file *f = file_of(fd);

	if (!f) {
		errno = EBADF;
		return -1;
	}
	if (f->kind == K_END)
		end_close(f);
	if (f->kind == K_LISTEN) {
		/* Connections never accepted: refused. */
		for (unsigned i = 0; i < f->nq; i++) {
			struct conn *c = f->queue[i];

			c->e[1].fd = -1;
			c->e[0].err = ECONNRESET;
			c->e[0].eof = true;
			if (c->e[0].fd >= 0) {
				struct file *cf = file_of(c->e[0].fd);

				if (cf)
					cf->conn_err = ECONNREFUSED;
				edge(c, 0);
			}
			conn_put(c);
		}
	}
	f->kind = K_FREE;
	sim_fd_close(fd);
	return 0;
}

int coev__sim_close(int fd)
{
	if (!sim_fd_fake(fd))
		return close(fd);
	COEV__POINT(SYSCALL);
	return sim_sock_close(fd);
}

int coev__sim_poll(struct pollfd *p, nfds_t n, int timeout)
{
	int r = 0;

	if (n != 1 || !sim_fd_fake(p->fd))
		return poll(p, n, timeout);
	COEV__POINT(SYSCALL);
	struct file *f = file_of(p->fd);
	unsigned ev;

	if (!f) {
		p->revents = POLLNVAL;
		return 1;
	}
	ev = file_level(f);
	p->revents = (short)((ev & COEV_READ ? POLLIN : 0) |
			     (ev & COEV_WRITE ? POLLOUT : 0));
	p->revents &= p->events;
	if (f->kind == K_END && f->c->e[f->side].err)
		p->revents |= POLLERR;
	r = p->revents != 0;
	return r;
}

int coev__sim_fcntl(int fd, int cmd, ...)
{
	struct file *f;
	va_list ap;
	long arg;
	bool fake;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (!(f = enter(fd, &fake)))
		return fake ? -1 : fcntl(fd, cmd, arg);
	if (cmd == F_GETFL)
		return O_RDWR | (f->nonblock ? O_NONBLOCK : 0);
	if (cmd == F_SETFL) {
		f->nonblock = arg & O_NONBLOCK;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

/* --- the harnesses' side ------------------------------------------------ */

int sim_sock_pair(int fds[2])
{
	struct file *a, *b;
	struct conn *c;

	if (!(c = conn_new()))
		return -EMFILE;
	if (!(a = file_new(K_END))) {
		c->used = false;
		return -EMFILE;
	}
	if (!(b = file_new(K_END))) {
		a->kind = K_FREE;
		sim_fd_close(a->fd);
		c->used = false;
		return -EMFILE;
	}
	a->c = b->c = c;
	a->side = 0;
	b->side = 1;
	c->e[0].fd = fds[0] = a->fd;
	c->e[1].fd = fds[1] = b->fd;
	level(a);
	level(b);
	return 0;
}

ssize_t sim_sock_read(int fd, void *buf, size_t n)
{
	ssize_t r = coev__sim_read(fd, buf, n);

	return r < 0 ? -errno : r;
}

ssize_t sim_sock_write(int fd, const void *buf, size_t n)
{
	ssize_t r = coev__sim_write(fd, buf, n);

	return r < 0 ? -errno : r;
}

unsigned sim_sock_open(void)
{
	unsigned n = 0;

	for (int i = 0; i < FILES; i++)
		n += files[i].kind != K_FREE;
	return n;
}

unsigned sim_sock_level(int fd)
{
	struct file *f = file_of(fd);

	return f ? file_level(f) & (COEV_READ | COEV_WRITE) : 0;
}

unsigned sim_sock_unread(int fd)
{
	struct file *f = file_of(fd);

	return f && f->kind == K_END ? f->c->e[f->side].len : 0;
}
