/* SPDX-License-Identifier: MIT */
/*
 * io/socket.c — non-blocking socket and fd calls for tasks.
 *
 * Every call follows one pattern (IO_RETRY_N): check the task's
 * cancellation, try the system call, and only when the fd is not ready
 * wait for readiness, then try again. Trying first makes the common case
 * (data there, room to write) one system call and no loop work, as in Go's
 * netpoller. errno is read right after the system call, before any switch:
 * a task may resume on another thread, whose errno is another variable.
 *
 * Fds created here are owned (sched/fd.c): registered once, edge-triggered,
 * at their first wait, with readiness remembered per direction. A call on
 * an owned fd reads the direction's edge count (seq) first; a direction
 * found drained at that count (EAGAIN, or a short transfer on a stream
 * socket) waits for the next edge without trying the call, which saves the
 * read that returns EAGAIN after a short read; after a full read the next
 * read goes straight to the system call. Short transfers do not drain
 * datagram sockets (more datagrams may wait), a peek (the bytes stay), an
 * accept (no count) or a stream whose peer's end came (the next read
 * returns 0 and no edge announces it). coev_close disowns before closing,
 * so the number, once reused, starts afresh. Fds from elsewhere take the
 * one-shot path (coev__wait_fd: an epoll_ctl per wait), safe against any
 * close. Rejected: owning any fd at its first coev call (a foreign fd
 * closed by its library, hiredis or curl, and its number reused, would
 * keep a stale registration and wait forever).
 */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "io/internal.h"
#include "sched/internal.h"

int coev__io_enter(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	return coev__cancel_check(t);
}

/* After a failed system call: 0 to try again (interrupted, or the fd is
 * now ready), or the error to return. */
static int io_again(int fd, unsigned events, coev_time_t deadline)
{
	int e = errno, r;

	if (e == EINTR)
		return 0;
	if (e != EAGAIN && e != EWOULDBLOCK)
		return -e;
	r = coev__wait_fd(fd, events, deadline);
	return r < 0 ? r : 0;
}

/*
 * An owned fd (sched/fd.c): the seq of the direction is read before the
 * system call; a direction found drained at the seq read (an EAGAIN, or a
 * short transfer on a stream socket) is waited for without trying the
 * call again, until an edge moves its seq. A deadline already past still
 * tries the call once.
 */

/* Before a call on owned f: 0 to make the call, 1 to look again (waited
 * for an edge), or the error to return. */
static int io_owned_gate(struct coev__fd *f, int fd, unsigned ev, uint32_t gen,
			 uint32_t seq, bool tried, coev_time_t deadline)
{
	struct coev__fd_snap snap = {gen, {seq, seq}};
	int r;

	/* Relaxed: drained is written and read by the direction's one user
	 * (io.h rule 3), whose calls are ordered by whatever orders them. */
	if (atomic_load_explicit(&f->drained[coev__fd_dir(ev)],
				 memory_order_relaxed) != (seq | 1))
		return 0;
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now())
		return tried ? -ETIMEDOUT : 0; /* only try */
	r = coev__fd_wait(f, fd, ev, &snap, deadline);
	return r < 0 ? r : 1;
}

/* After a call on owned f that moved r of n (n < 0: no count, as accept's
 * new fd; r < 0: EAGAIN): note the direction drained at seq, or not. */
static void io_owned_done(struct coev__fd *f, unsigned ev, uint32_t seq,
			  ssize_t r, ssize_t n)
{
	_Atomic uint32_t *dr = &f->drained[coev__fd_dir(ev)];

	/* Relaxed: closed is read after the acquire load of seq. */
#if defined(COEV_PLANT_IO_EOF_DRAIN)
	/* Planted (fuzz/plants.sh): "a short read drains", forgetting the
	 * peer's end: the read after the last bytes waits for an edge that
	 * came already, instead of returning 0. */
	if (r < 0 || (r > 0 && r < n && f->stream))
#else
	if (r < 0 ||
	    (r > 0 && r < n && f->stream &&
	     !(atomic_load_explicit(&f->closed, memory_order_relaxed) & ev)))
#endif
		atomic_store_explicit(dr, seq | 1, memory_order_relaxed);
	else if (atomic_load_explicit(dr, memory_order_relaxed))
		atomic_store_explicit(dr, 0, memory_order_relaxed);
}

#if defined(COEV_PLANT_IO_LATE_TIMEOUT)
/* Planted (fuzz/plants.sh): "the deadline passed during the call: report
 * it" — after the call took bytes, which are lost to the caller. */
#define IO_PLANT_LATE(r, dl) \
	((r) > 0 && (dl) != COEV_FOREVER && (dl) <= coev__plat_now())
#else
#define IO_PLANT_LATE(r, dl) 0
#endif

/* The ownership a call goes on with: block and generation. */
struct io_owner {
	struct coev__fd *f;
	uint32_t gen;
};

/* fd's ownership now (f NULL: not owned), or o, the one a composite call
 * (read_full, write_all) began with: its later steps get -EBADF once
 * coev_close ends it. Looking again would find a number coev_close has
 * disowned but not yet closed, wait on it as a foreign fd, and the close
 * would leave that wait unanswered (found by the io harness). */
static struct io_owner io_owner(int fd, const struct io_owner *o)
{
	struct io_owner now = {NULL, 0};

	if (o && o->f)
		return *o;
	if ((now.f = coev__fd_owned(fd)) != NULL)
		now.gen =
			atomic_load_explicit(&now.f->gen, memory_order_relaxed);
	return now;
}

/* Whether o's generation has ended (coev_close): the calls on it are
 * -EBADF, and never reach the number's next owner. */
static bool io_owner_gone(const struct io_owner *o)
{
	return !atomic_load_explicit(&o->f->owned, memory_order_relaxed) ||
	       atomic_load_explicit(&o->f->gen, memory_order_relaxed) != o->gen;
}

/* The seq of an owned fd is read with acquire: pairs with the release
 * store in coev__fd_event (sched/fd.c), so closed is as new as seq.
 * own: the ownership a composite call began with, or NULL. */
#define IO_RETRY_O(call, fd, events, n, deadline, own)                     \
	do {                                                               \
		struct io_owner o_;                                        \
		struct coev__fd *f_;                                       \
		ssize_t r_;                                                \
		int e_;                                                    \
		if ((e_ = coev__io_enter()) != 0)                          \
			return e_;                                         \
		o_ = io_owner(fd, (own));                                  \
		if ((f_ = o_.f) != NULL) {                                 \
			uint32_t g_ = o_.gen;                              \
			bool tried_ = false;                               \
			for (;;) {                                         \
				if (io_owner_gone(&o_))                    \
					return -EBADF;                     \
				uint32_t s_ = atomic_load_explicit(        \
					&f_->seq[coev__fd_dir(events)],    \
					memory_order_acquire);             \
				e_ = io_owned_gate(f_, fd, events, g_, s_, \
						   tried_, deadline);      \
				if (e_ < 0)                                \
					return e_;                         \
				if (e_ > 0)                                \
					continue;                          \
				r_ = (call);                               \
				tried_ = true;                             \
				if (r_ < 0 && errno == EINTR)              \
					continue;                          \
				if (r_ < 0 && errno != EAGAIN &&           \
				    errno != EWOULDBLOCK)                  \
					return -errno;                     \
				io_owned_done(f_, events, s_, r_, (n));    \
				if (r_ >= 0)                               \
					return IO_PLANT_LATE(r_, deadline) \
						       ? -ETIMEDOUT        \
						       : r_;               \
			}                                                  \
		}                                                          \
		for (;;) {                                                 \
			r_ = (call);                                       \
			if (r_ >= 0)                                       \
				return r_;                                 \
			if ((e_ = io_again(fd, events, deadline)) != 0)    \
				return e_;                                 \
		}                                                          \
	} while (0)

#define IO_RETRY_N(call, fd, events, n, deadline) \
	IO_RETRY_O(call, fd, events, n, deadline, NULL)
#define IO_RETRY(call, fd, events, deadline) \
	IO_RETRY_N(call, fd, events, -1, deadline)

/* poll(2) fd once: the ready events (> 0), 0, or a negative errno. */
static int poll_now(int fd, unsigned events)
{
	struct pollfd pfd;
	int r;

	pfd.fd = fd;
	pfd.events = (short)((events & COEV_READ ? POLLIN : 0) |
			     (events & COEV_WRITE ? POLLOUT : 0));
	while ((r = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (pfd.revents & POLLNVAL)
		return -EBADF; /* not open */
	return (pfd.revents & (POLLIN | POLLHUP | POLLERR) ? COEV_READ : 0) |
	       (pfd.revents & (POLLOUT | POLLHUP | POLLERR) ? COEV_WRITE : 0);
}

/* Whether every direction of events was found drained (by a call that
 * found it empty or full) at the seq of snap: then no edge has come since
 * and it is not ready. */
static bool owned_drained(struct coev__fd *f, unsigned events,
			  const struct coev__fd_snap *snap)
{
	for (unsigned ev = COEV_READ; ev <= COEV_WRITE; ev <<= 1) {
		unsigned d = coev__fd_dir(ev);

		/* Relaxed: drained is the direction's user's own note. */
		if ((events & ev) &&
		    atomic_load_explicit(&f->drained[d],
					 memory_order_relaxed) !=
			    (snap->seq[d] | 1))
			return false;
	}
	return true;
}

/* coev_wait_fd on an owned fd: its remembered readiness says nothing of a
 * direction not drained, so poll once after reading the seqs (unless
 * every direction asked for is drained at them: coev_try_read saw it
 * empty), and wait for an edge after them when nothing is ready. */
static int wait_owned(struct coev__fd *f, int fd, unsigned events,
		      coev_time_t deadline)
{
	struct coev__fd_snap snap;
	int r;

	snap.gen = atomic_load_explicit(&f->gen, memory_order_relaxed);
	for (;;) {
		/* Acquire: pairs with coev__fd_event's release of seq. */
		for (int d = 0; d < 2; d++)
			snap.seq[d] = atomic_load_explicit(
				&f->seq[d], memory_order_acquire);
		if (!owned_drained(f, events, &snap) &&
		    (r = poll_now(fd, events)) != 0)
			return r & (int)events ? r & (int)events : r;
		if ((r = coev__fd_wait(f, fd, events, &snap, deadline)) != 0)
			return r;
	}
}

int coev_wait_fd(int fd, unsigned events, coev_time_t deadline)
{
	struct coev__fd *f;
	int r;

	if (fd < 0 || !(events & (COEV_READ | COEV_WRITE)) ||
	    (events & ~(COEV_READ | COEV_WRITE)))
		return -EINVAL;
	if ((r = coev__io_enter()) != 0)
		return r;
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now()) {
		/* Only try: the events asked for (a hang-up or an error
		 * readies both), or the error (-EBADF: not open). */
		r = poll_now(fd, events);
		return r > 0 ? r & (int)events : r < 0 ? r : -ETIMEDOUT;
	}
	if (fd >= COEV_FD_MAX)
		return -EBADF;
	if ((f = coev__fd_owned(fd)) != NULL)
		return wait_owned(f, fd, events, deadline);
	while ((r = coev__wait_fd(fd, events, deadline)) == 0)
		; /* woken for another reason: wait on */
	return r;
}

int coev_fd_nonblock(int fd)
{
	int fl;

	/* A foreign fd: a number coev owned was closed behind its back. */
	coev__fd_disown(fd);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The bytes iov asks for (a short transfer is one of fewer), or -1 (no
 * count) for a bad iovcnt, which the system call refuses. */
static ssize_t iov_len(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -1;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

#if defined(COEV_PLANT_IO_TRY_DRAIN)
/* Planted (fuzz/plants.sh): "a try that moved bytes leaves the fd
 * drained" — the next try skips the read of bytes still there, and the
 * wait after it waits for an edge that came already. */
#define IO_PLANT_TRY(r) (-1)
#else
#define IO_PLANT_TRY(r) (r)
#endif

/* coev_try_read and coev_try_write: call (read or write of n bytes on fd)
 * once, never waiting; on an owned fd skipped when the direction of ev
 * is drained, and its outcome noted as IO_RETRY_O notes it. */
#define IO_TRY(call, fd, ev, n)                                        \
	do {                                                           \
		struct io_owner o_ = io_owner(fd, NULL);               \
		uint32_t s_ = 0;                                       \
		ssize_t r_;                                            \
		if (o_.f) {                                            \
			s_ = atomic_load_explicit(                     \
				&o_.f->seq[coev__fd_dir(ev)],          \
				memory_order_acquire);                 \
			if (atomic_load_explicit(                      \
				    &o_.f->drained[coev__fd_dir(ev)],  \
				    memory_order_relaxed) == (s_ | 1)) \
				return -EAGAIN;                        \
		}                                                      \
		while ((r_ = (call)) < 0 && errno == EINTR)            \
			;                                              \
		if (r_ < 0 && errno != EAGAIN && errno != EWOULDBLOCK) \
			return -errno;                                 \
		if (o_.f)                                              \
			io_owned_done(o_.f, ev, s_, IO_PLANT_TRY(r_),  \
				      (ssize_t)(n));                   \
		return r_ < 0 ? -EAGAIN : r_;                          \
	} while (0)

ssize_t coev_try_read(int fd, void *buf, size_t n)
{
	if (fd < 0)
		return -EBADF;
	IO_TRY(read(fd, buf, n), fd, COEV_READ, n);
}

ssize_t coev_try_write(int fd, const void *buf, size_t n)
{
	if (fd < 0)
		return -EBADF;
	IO_TRY(write(fd, buf, n), fd, COEV_WRITE, n);
}

/* coev_read and coev_write, going on with ownership own (or NULL). */
static ssize_t read_own(int fd, void *buf, size_t n, coev_time_t deadline,
			const struct io_owner *own)
{
	IO_RETRY_O(read(fd, buf, n), fd, COEV_READ, (ssize_t)n, deadline, own);
}

static ssize_t write_own(int fd, const void *buf, size_t n,
			 coev_time_t deadline, const struct io_owner *own)
{
	IO_RETRY_O(write(fd, buf, n), fd, COEV_WRITE, (ssize_t)n, deadline,
		   own);
}

ssize_t coev_read(int fd, void *buf, size_t n, coev_time_t deadline)
{
	return read_own(fd, buf, n, deadline, NULL);
}

ssize_t coev_write(int fd, const void *buf, size_t n, coev_time_t deadline)
{
	return write_own(fd, buf, n, deadline, NULL);
}

ssize_t coev_readv(int fd, const struct iovec *iov, int iovcnt,
		   coev_time_t deadline)
{
	IO_RETRY_N(readv(fd, iov, iovcnt), fd, COEV_READ, iov_len(iov, iovcnt),
		   deadline);
}

ssize_t coev_writev(int fd, const struct iovec *iov, int iovcnt,
		    coev_time_t deadline)
{
	IO_RETRY_N(writev(fd, iov, iovcnt), fd, COEV_WRITE,
		   iov_len(iov, iovcnt), deadline);
}

ssize_t coev_recv(int fd, void *buf, size_t n, int flags, coev_time_t deadline)
{
	/* A short peek leaves the bytes there: it does not drain. */
	IO_RETRY_N(recv(fd, buf, n, flags), fd, COEV_READ,
		   flags & MSG_PEEK ? -1 : (ssize_t)n, deadline);
}

ssize_t coev_send(int fd, const void *buf, size_t n, int flags,
		  coev_time_t deadline)
{
	IO_RETRY_N(send(fd, buf, n, flags | MSG_NOSIGNAL), fd, COEV_WRITE,
		   (ssize_t)n, deadline);
}

ssize_t coev_sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t alen,
		    coev_time_t deadline)
{
	IO_RETRY(sendto(fd, buf, n, flags | MSG_NOSIGNAL, addr, alen), fd,
		 COEV_WRITE, deadline);
}

ssize_t coev_recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *alen,
		      coev_time_t deadline)
{
	IO_RETRY(recvfrom(fd, buf, n, flags, addr, alen), fd, COEV_READ,
		 deadline);
}

ssize_t coev_read_full(int fd, void *buf, size_t n, size_t *done,
		       coev_time_t deadline)
{
	struct io_owner own = io_owner(fd, NULL);
	size_t got = 0;
	ssize_t r = 0;

	while (got < n) {
		r = read_own(fd, (char *)buf + got, n - got, deadline, &own);
		if (r <= 0) {
			if (r == 0)
				r = COEV_EEOF;
			break;
		}
		got += (size_t)r;
	}
	if (done)
		*done = got;
	return got == n ? (ssize_t)n : r;
}

ssize_t coev_write_all(int fd, const void *buf, size_t n, size_t *done,
		       coev_time_t deadline)
{
	struct io_owner own = io_owner(fd, NULL);
	size_t put = 0;
	ssize_t r = 0;

	while (put < n) {
		r = write_own(fd, (const char *)buf + put, n - put, deadline,
			      &own);
		if (r < 0)
			break;
		put += (size_t)r;
	}
	if (done)
		*done = put;
	return put == n ? (ssize_t)n : r;
}

/* --- sockets ------------------------------------------------------------- */

int coev_socket(int domain, int type, int protocol)
{
	int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

	if (fd < 0)
		return -errno;
	/* Not owned (a number past the table, no memory): the calls on it
	 * take the one-shot path. */
	coev__fd_own(fd, (type & 0xf) == SOCK_STREAM);
	return fd;
}

static int accept_once(int lfd, struct sockaddr *addr, socklen_t *alen)
{
	int fd = accept4(lfd, addr, alen, SOCK_NONBLOCK | SOCK_CLOEXEC), e;
	struct coev__fd *lf;

	/* A connection reset while in the kernel's queue: take the next. */
	if (fd < 0 && errno == ECONNABORTED)
		errno = EINTR;
	if (fd >= 0) {
		/* A foreign listener's kind is not known: only EAGAIN
		 * drains its connections. */
		lf = coev__fd_owned(lfd);
		e = errno;
		coev__fd_own(fd, lf && lf->stream);
		errno = e;
	}
	return fd;
}

int coev_accept(int lfd, struct sockaddr *addr, socklen_t *alen,
		coev_time_t deadline)
{
	IO_RETRY(accept_once(lfd, addr, alen), lfd, COEV_READ, deadline);
}

int coev_connect(int fd, const struct sockaddr *addr, socklen_t alen,
		 coev_time_t deadline)
{
	int r, err;
	socklen_t len = sizeof err;
	struct coev__fd *f;
	struct coev__fd_snap snap;

	if ((r = coev__io_enter()) != 0)
		return r;
	if ((f = coev__fd_owned(fd)) != NULL) {
		snap.gen = atomic_load_explicit(&f->gen, memory_order_relaxed);
		snap.seq[0] = snap.seq[1] =
			atomic_load_explicit(&f->seq[coev__fd_dir(COEV_WRITE)],
					     memory_order_relaxed);
	}
	if (connect(fd, addr, alen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	for (;;) {
		r = f ? coev__fd_wait(f, fd, COEV_WRITE, &snap, deadline)
		      : coev__wait_fd(fd, COEV_WRITE, deadline);
		if (r < 0)
			return r;
		if (r == 0)
			continue; /* woken for another reason */
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
}

int coev__numeric_addr(const char *host, unsigned port,
		       struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof *ss);
	if (!host || inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		if (!host)
			in4->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return 0;
	}
	return -EINVAL;
}

/* Close fd keeping the error that made us give it up. */
static int fail_close(int fd, int err)
{
	coev_close(fd);
	return err;
}

static int set_int_opt(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof v) < 0 ? -errno : 0;
}

int coev_tcp_listen(const char *host, unsigned port, int backlog,
		    unsigned flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	if (flags & ~(COEV_LISTEN_REUSEPORT | COEV_LISTEN_V6ONLY))
		return -EINVAL;
	if ((r = coev__numeric_addr(host, port, &ss, &len)) < 0)
		return r;
	if ((fd = coev_socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
		return fd;
	if ((r = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0 ||
	    ((flags & COEV_LISTEN_REUSEPORT) &&
	     (r = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0) ||
	    (ss.ss_family == AF_INET6 &&
	     (r = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
			      !!(flags & COEV_LISTEN_V6ONLY))) < 0))
		return fail_close(fd, r);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
		return fail_close(fd, -errno);
	return fd;
}

/* Connect a new stream socket of ss's family; the fd or an error. */
static int connect_addr(const struct sockaddr *sa, socklen_t len,
			coev_time_t deadline)
{
	int fd = coev_socket(sa->sa_family, SOCK_STREAM, 0), r;

	if (fd < 0)
		return fd;
	if ((r = coev_connect(fd, sa, len, deadline)) < 0)
		return fail_close(fd, r);
	if (sa->sa_family != AF_UNIX)
		set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	return fd;
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

int coev_tcp_connect(const char *host, unsigned port, coev_time_t deadline)
{
	struct sockaddr_storage addrs[8];
	int n, fd = COEV_ENOADDR;

	if ((n = coev_resolve(host, port, addrs, 8, deadline)) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		fd = connect_addr((struct sockaddr *)&addrs[i],
				  addr_len(&addrs[i]), deadline);
		if (fd >= 0 || fd == -ETIMEDOUT || fd == -ECANCELED)
			break;
	}
	return fd;
}

int coev_udp_bind(const char *host, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	if ((r = coev__numeric_addr(host, port, &ss, &len)) < 0)
		return r;
	if ((fd = coev_socket(ss.ss_family, SOCK_DGRAM, 0)) < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return fail_close(fd, -errno);
	return fd;
}

static int unix_addr(const char *path, struct sockaddr_un *un)
{
	if (!path)
		return -EINVAL;
	if (strlen(path) >= sizeof un->sun_path)
		return -ENAMETOOLONG;
	memset(un, 0, sizeof *un);
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, path);
	return 0;
}

int coev_unix_listen(const char *path, int backlog)
{
	struct sockaddr_un un;
	struct stat st;
	int fd, r;

	if ((r = unix_addr(path, &un)) < 0)
		return r;
	/* Replace a stale socket file, never any other kind of file. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((fd = coev_socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&un, sizeof un) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
		return fail_close(fd, -errno);
	return fd;
}

int coev_unix_connect(const char *path, coev_time_t deadline)
{
	struct sockaddr_un un;
	int r;

	if ((r = unix_addr(path, &un)) < 0)
		return r;
	if ((r = coev__io_enter()) != 0)
		return r;
	return connect_addr((struct sockaddr *)&un, sizeof un, deadline);
}

int coev_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int coev_shutdown(int fd, int how)
{
	return shutdown(fd, how) < 0 ? -errno : 0;
}

int coev_close(int fd)
{
	/* Before the close: once closed, the number may be another's. */
	coev__fd_disown(fd);
	/* Linux frees the fd even when close is interrupted: never retry. */
	if (close(fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}
