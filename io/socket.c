/*
 * io/socket.c — non-blocking socket and fd calls for tasks.
 *
 * Every call follows one pattern (IO_RETRY): check the task's
 * cancellation, try the system call, and only when it reports EAGAIN wait
 * for readiness on the current worker's loop (coev__wait_fd, wait.c), then
 * try again. Trying first makes the common case (data already there, room
 * in the socket buffer) one system call and no loop work, as in Go's
 * netpoller; waiting registers the fd for that one wait, one-shot, in the
 * worker's own epoll set (sched/plat_ev.c), with an epoll_ctl per wait.
 * errno is read right after the system call, before any switch: a task may
 * resume on another thread, whose errno is another variable.
 *
 * Not done yet: registering each fd once, edge-triggered, with a per-fd
 * state block (Go's pollDesc, tokio's ScheduledIo) that also remembers
 * "drained" after a short read. It would save the epoll_ctl of every wait
 * and the read that returns EAGAIN, but it needs an fd table and a rule
 * for fds closed behind the runtime's back. The http benchmark measures
 * the cost of the simple form: the same requests per second as a raw epoll
 * server (wrk's ceiling), at 3x its user CPU per request (bench/README.md).
 *
 * Names (coev_resolve, coev_tcp_connect) are looked up with getaddrinfo on
 * the blocking pool, unless coev_set_resolver chose another resolver.
 * getaddrinfo cannot be interrupted and may take seconds (a DNS server that
 * does not answer), yet the caller's deadline must bound the call: the
 * lookup is an abandonable job (coev__blocking_abandonable, sched/pool.c)
 * whose record, name and answer are on the heap, so a caller that gives
 * up returns at once and the lookup frees its answer when it ends.
 * Rejected: coev_blocking with the record in the caller's frame (the
 * caller must wait for a running lookup: a 100 ms connect took 2 s), and
 * a thread per lookup detached from the pool (unbounded threads, and
 * nothing for coev_rt_free to wait for).
 */
#include <fcntl.h>
#include <netdb.h>
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

#include "sched/internal.h"

/* The calling task's cancellation, or COEV_ENOTCORO outside a task. */
static int io_enter(void)
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

#define IO_RETRY(call, fd, events, deadline)                            \
	do {                                                            \
		ssize_t r_;                                             \
		int e_;                                                 \
		if ((e_ = io_enter()) != 0)                             \
			return e_;                                      \
		for (;;) {                                              \
			r_ = (call);                                    \
			if (r_ >= 0)                                    \
				return r_;                              \
			if ((e_ = io_again(fd, events, deadline)) != 0) \
				return e_;                              \
		}                                                       \
	} while (0)

int coev_wait_fd(int fd, unsigned events, coev_time_t deadline)
{
	struct pollfd pfd;
	int r;

	if (fd < 0 || !(events & (COEV_READ | COEV_WRITE)) ||
	    (events & ~(COEV_READ | COEV_WRITE)))
		return -EINVAL;
	if ((r = io_enter()) != 0)
		return r;
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now()) {
		/* Only try. */
		pfd.fd = fd;
		pfd.events = (short)((events & COEV_READ ? POLLIN : 0) |
				     (events & COEV_WRITE ? POLLOUT : 0));
		if (poll(&pfd, 1, 0) <= 0)
			return -ETIMEDOUT;
		return (pfd.revents & (POLLIN | POLLHUP | POLLERR) ? COEV_READ
								   : 0) |
		       (pfd.revents & (POLLOUT | POLLHUP | POLLERR) ? COEV_WRITE
								    : 0);
	}
	while ((r = coev__wait_fd(fd, events, deadline)) == 0)
		; /* woken for another reason: wait on */
	return r;
}

int coev_fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

ssize_t coev_read(int fd, void *buf, size_t n, coev_time_t deadline)
{
	IO_RETRY(read(fd, buf, n), fd, COEV_READ, deadline);
}

ssize_t coev_write(int fd, const void *buf, size_t n, coev_time_t deadline)
{
	IO_RETRY(write(fd, buf, n), fd, COEV_WRITE, deadline);
}

ssize_t coev_readv(int fd, const struct iovec *iov, int iovcnt,
		   coev_time_t deadline)
{
	IO_RETRY(readv(fd, iov, iovcnt), fd, COEV_READ, deadline);
}

ssize_t coev_writev(int fd, const struct iovec *iov, int iovcnt,
		    coev_time_t deadline)
{
	IO_RETRY(writev(fd, iov, iovcnt), fd, COEV_WRITE, deadline);
}

ssize_t coev_recv(int fd, void *buf, size_t n, int flags, coev_time_t deadline)
{
	IO_RETRY(recv(fd, buf, n, flags), fd, COEV_READ, deadline);
}

ssize_t coev_send(int fd, const void *buf, size_t n, int flags,
		  coev_time_t deadline)
{
	IO_RETRY(send(fd, buf, n, flags | MSG_NOSIGNAL), fd, COEV_WRITE,
		 deadline);
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
	size_t got = 0;
	ssize_t r = 0;

	while (got < n) {
		r = coev_read(fd, (char *)buf + got, n - got, deadline);
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
	size_t put = 0;
	ssize_t r = 0;

	while (put < n) {
		r = coev_write(fd, (const char *)buf + put, n - put, deadline);
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

	return fd < 0 ? -errno : fd;
}

static int accept_once(int lfd, struct sockaddr *addr, socklen_t *alen)
{
	int fd = accept4(lfd, addr, alen, SOCK_NONBLOCK | SOCK_CLOEXEC);

	/* A connection reset while in the kernel's queue: take the next. */
	if (fd < 0 && errno == ECONNABORTED)
		errno = EINTR;
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

	if ((r = io_enter()) != 0)
		return r;
	if (connect(fd, addr, alen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	for (;;) {
		r = coev__wait_fd(fd, COEV_WRITE, deadline);
		if (r < 0)
			return r;
		if (r == 0)
			continue; /* woken for another reason */
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
}

/* A numeric host (NULL: any IPv4 address) and port as a socket address. */
static int numeric_addr(const char *host, unsigned port,
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
	close(fd);
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
	if ((r = numeric_addr(host, port, &ss, &len)) < 0)
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

/* A lookup on the blocking pool: on the heap with its own copy of the
 * name, since a caller that gives up (deadline, cancel) leaves it running
 * (coev__blocking_abandonable); resolve_free frees it and its answer. */
struct resolve {
	const char *host; /* name[] */
	char port[8];
	struct addrinfo *res;
	int r;
	char name[];
};

/* getaddrinfo's answer as a coev code: lookups have codes of their own
 * (COEV_ENONAME, COEV_ENOADDR), as the c-ares adapter's; a server that
 * failed or refused (EAI_AGAIN, EAI_FAIL) is -EAGAIN there too. */
static int eai_err(int r)
{
	switch (r) {
	case 0: return 0;
	case EAI_NONAME: return COEV_ENONAME;
	case EAI_NODATA:
	case EAI_ADDRFAMILY: return COEV_ENOADDR;
	case EAI_AGAIN:
	case EAI_FAIL: return -EAGAIN;
	case EAI_MEMORY: return -ENOMEM;
	case EAI_SYSTEM: return errno ? -errno : -EIO;
	case EAI_SERVICE:
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
	case EAI_BADFLAGS: return -EINVAL;
	default: return -EIO;
	}
}

static int do_resolve(void *arg)
{
	struct resolve *q = arg;
	struct addrinfo hints;
	int r;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	r = getaddrinfo(q->host, q->port, &hints, &q->res);
	q->r = eai_err(r);
	return 0;
}

static void resolve_free(void *arg)
{
	struct resolve *q = arg;

	if (q->res)
		freeaddrinfo(q->res);
	free(q);
}

/* The resolver set by coev_set_resolver, or NULL for getaddrinfo(). */
static _Atomic(coev_resolver_fn) resolver_fn;
static void *_Atomic resolver_arg;

void coev_set_resolver(coev_resolver_fn fn, void *arg)
{
	atomic_store_explicit(&resolver_arg, arg, memory_order_relaxed);
	/* Release: pairs with the acquire load of resolver_fn in
	 * coev_resolve: a lookup that sees fn sees the arg stored with it
	 * (or a later one, when another call races with the lookup). */
	atomic_store_explicit(&resolver_fn, fn, memory_order_release);
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

int coev_resolve(const char *host, unsigned port,
		 struct sockaddr_storage *addrs, int max, coev_time_t deadline)
{
	coev_resolver_fn fn;
	struct resolve *q;
	size_t hlen;
	socklen_t len;
	int n = 0, r;

	if (!host || !addrs || max <= 0 || port > 65535)
		return -EINVAL;
	if ((r = io_enter()) != 0)
		return r;
	if (numeric_addr(host, port, &addrs[0], &len) == 0)
		return 1;
	/* Acquire: pairs with the release store in coev_set_resolver. */
	fn = atomic_load_explicit(&resolver_fn, memory_order_acquire);
	if (fn)
		return fn(atomic_load_explicit(&resolver_arg,
					       memory_order_relaxed),
			  host, port, addrs, max, deadline);
	hlen = strlen(host) + 1;
	if (!(q = malloc(sizeof *q + hlen)))
		return -ENOMEM;
	memcpy(q->name, host, hlen);
	q->host = q->name;
	q->res = NULL;
	snprintf(q->port, sizeof q->port, "%u", port);
	/* The deadline bounds the call, not the lookup: a caller that gives
	 * up leaves a running getaddrinfo to end on its own. */
	if ((r = coev__blocking_abandonable(do_resolve, q, resolve_free,
					    deadline, NULL)) < 0)
		return r;
	for (struct addrinfo *ai = q->res; ai && n < max && q->r == 0;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof addrs[n])
			continue;
		memset(&addrs[n], 0, sizeof addrs[n]);
		memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
		n++;
	}
	r = q->r;
	resolve_free(q);
	return r < 0 ? r : n ? n : COEV_ENOADDR;
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

	if ((r = numeric_addr(host, port, &ss, &len)) < 0)
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
	if ((r = io_enter()) != 0)
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
	/* Linux frees the fd even when close is interrupted: never retry. */
	if (close(fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}
