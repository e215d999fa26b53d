/* SPDX-License-Identifier: MIT */
/*
 * coev/io.h — non-blocking I/O for tasks: fd readiness, sockets (TCP, UDP,
 * Unix), reads and writes with deadlines.
 *
 * Every call here that can wait takes an absolute deadline (coev_now() +
 * timeout, or coev_deadline(timeout); COEV_FOREVER waits forever; a
 * deadline already past only tries). A wait registers the fd on the
 * calling worker's event loop and suspends the task; the worker runs other
 * tasks meanwhile and never blocks. Cancellation ends any wait with
 * -ECANCELED (see coev/task.h).
 *
 * Rules:
 *  1. The fds these calls create are non-blocking and close-on-exec. Fds
 *     from elsewhere must be made non-blocking by their owner (for
 *     example with coev_fd_nonblock()); a blocking fd would block the
 *     worker.
 *  2. Return values: a count (>= 0) or a new fd for success, a negative
 *     errno-style code for failure: -ETIMEDOUT (deadline; nothing was
 *     lost: the fd stays usable and no byte was consumed by the call that
 *     timed out), -ECANCELED, and the system's codes (-ECONNRESET,
 *     -EPIPE, ...). A read returning 0 means end of stream.
 *  3. At most one task reads and one task writes an fd at a time (a second
 *     task waiting for the same direction of an fd gets -EBUSY). Once a
 *     call has returned, the fd may be closed from any task or thread. A
 *     task waiting on an fd that coev created and another task closes with
 *     coev_close gets -EBADF; do not close an fd another task waits on by
 *     other means: cancel that task first.
 *  4. Calls that can wait must be made from a task (COEV_ENOTCORO
 *     otherwise); calls that never wait (listen, socket, close) work from
 *     any thread.
 *  5. The runtime sets SIGPIPE to be ignored when it was at its default,
 *     as Rust's and Go's runtimes do: a write to a closed peer returns
 *     -EPIPE instead of killing the process.
 *  6. Fds created here (coev_socket, coev_accept, coev_tcp_listen,
 *     coev_tcp_connect, coev_udp_bind, coev_unix_listen,
 *     coev_unix_connect) are owned by coev until coev_close: each is
 *     registered once with an event loop, edge-triggered, and its
 *     readiness is remembered (a read that found it empty waits for new
 *     data without trying again). Close them with coev_close, never
 *     close(2): a closed owned fd whose number is reused by an fd from
 *     elsewhere would keep the old state, unless that fd goes through
 *     coev_fd_nonblock first. Other fds are registered for each wait.
 *  7. Fd numbers at or above 2^24 are refused with -EBADF by every call
 *     that waits (the runtime's fd tables are bounded).
 */
#ifndef COEV_IO_H
#define COEV_IO_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "error.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness events. */
#define COEV_READ 1u
#define COEV_WRITE 2u

/*
 * coev_wait_fd — wait until fd is ready for any of events (COEV_READ,
 * COEV_WRITE) or the deadline. Returns the ready events (> 0), or
 * -ETIMEDOUT, -ECANCELED, -EINVAL (negative fd, or no events), -EBADF (fd
 * not open, or >= 2^24; an owned fd closed by coev_close meanwhile),
 * COEV_ENOTCORO, -ENOMEM (see below). Suspends. On an owned fd (rule 6)
 * it polls once before waiting, unless each direction asked for is known
 * not ready (the last call on it found it drained: EAGAIN, or a short
 * transfer, and no edge came since). Allocates only a page of the runtime's
 * fd tables (1,024 entries) at the first wait on an fd in a range of
 * 1,024 numbers not used before; if that fails, the call returns -ENOMEM
 * and nothing was waited for.
 */
COEV_API int coev_wait_fd(int fd, unsigned events, coev_time_t deadline);

/* coev_fd_nonblock — make fd non-blocking, and take it as an fd coev does
 * not own (a number an owned fd closed by close(2) had is forgotten).
 * Returns 0 or a negative errno. */
COEV_API int coev_fd_nonblock(int fd);

/*
 * coev_read, coev_write, coev_readv, coev_writev, coev_recv, coev_send —
 * the system calls of the same names, waiting while fd is not ready: each
 * transfers at least one byte (or reports end of stream, or fails) and may
 * transfer fewer than asked. coev_send always adds MSG_NOSIGNAL. Suspend
 * when the fd is not ready, and then may allocate as coev_wait_fd does
 * (-ENOMEM).
 */
COEV_API ssize_t coev_read(int fd, void *buf, size_t n, coev_time_t deadline);
COEV_API ssize_t coev_write(int fd, const void *buf, size_t n,
			    coev_time_t deadline);
COEV_API ssize_t coev_readv(int fd, const struct iovec *iov, int iovcnt,
			    coev_time_t deadline);
COEV_API ssize_t coev_writev(int fd, const struct iovec *iov, int iovcnt,
			     coev_time_t deadline);
COEV_API ssize_t coev_recv(int fd, void *buf, size_t n, int flags,
			   coev_time_t deadline);
COEV_API ssize_t coev_send(int fd, const void *buf, size_t n, int flags,
			   coev_time_t deadline);

/*
 * coev_try_read, coev_try_write — read(2) or write(2) once, never waiting:
 * the count (0 for end of stream on a read), -EAGAIN when fd is not
 * ready, or the system's code. On an owned fd (rule 6) a direction known
 * not ready (the last call found it drained and no edge came since)
 * returns -EAGAIN without a system call, so after -EAGAIN wait with
 * coev_wait_fd before trying again: only the wait learns of new
 * readiness. For wrapping libraries that make their own I/O calls (an
 * OpenSSL BIO, a protocol engine's callbacks): the same rules as the
 * calls above (rule 3), and a short transfer counts as drained, as
 * theirs does. Any thread; no cancellation check.
 */
COEV_API ssize_t coev_try_read(int fd, void *buf, size_t n);
COEV_API ssize_t coev_try_write(int fd, const void *buf, size_t n);

/*
 * coev_read_full — read exactly n bytes. coev_write_all — write all n
 * bytes. Return n, or a negative code: COEV_EEOF when the stream ended
 * before n bytes (read_full), or any error of coev_read/coev_write. done
 * (may be NULL) receives the bytes transferred, also on error, so nothing
 * is lost: they are in buf, or were sent.
 */
COEV_API ssize_t coev_read_full(int fd, void *buf, size_t n, size_t *done,
				coev_time_t deadline);
COEV_API ssize_t coev_write_all(int fd, const void *buf, size_t n, size_t *done,
				coev_time_t deadline);

/*
 * coev_sendto, coev_recvfrom — datagrams (UDP, Unix datagram). addr and
 * alen as in the system calls (recvfrom's may be NULL). Return the datagram
 * size or a negative code.
 */
COEV_API ssize_t coev_sendto(int fd, const void *buf, size_t n, int flags,
			     const struct sockaddr *addr, socklen_t alen,
			     coev_time_t deadline);
COEV_API ssize_t coev_recvfrom(int fd, void *buf, size_t n, int flags,
			       struct sockaddr *addr, socklen_t *alen,
			       coev_time_t deadline);

/*
 * coev_socket — socket(2), non-blocking and close-on-exec. Returns the fd
 * or a negative errno. Any thread.
 */
COEV_API int coev_socket(int domain, int type, int protocol);

/*
 * coev_accept — accept a connection on listening socket lfd. addr/alen may
 * be NULL. Returns the new fd (non-blocking, close-on-exec) or a negative
 * code. Connections that fail between the kernel's queue and accept
 * (ECONNABORTED) are skipped; -EMFILE and -ENFILE are returned.
 */
COEV_API int coev_accept(int lfd, struct sockaddr *addr, socklen_t *alen,
			 coev_time_t deadline);

/*
 * coev_connect — connect socket fd to addr, waiting until the connection is
 * made or fails or the deadline passes. Returns 0 or a negative code
 * (-ECONNREFUSED, -ETIMEDOUT, -ECANCELED, ...). On failure fd's state is
 * unspecified: close it.
 */
COEV_API int coev_connect(int fd, const struct sockaddr *addr, socklen_t alen,
			  coev_time_t deadline);

/* Flags of coev_tcp_listen. */
#define COEV_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: processes share the port */
#define COEV_LISTEN_V6ONLY 2u	 /* IPv6 socket does not take IPv4 */

/*
 * coev_tcp_listen — a TCP socket bound to host:port and listening.
 * host: a numeric IPv4 or IPv6 address ("127.0.0.1", "::1"), or NULL for
 * every IPv4 address; port 0 picks a free port (see coev_sock_port).
 * SO_REUSEADDR is always set. backlog <= 0 means SOMAXCONN. Returns the fd
 * or a negative code (-EINVAL for a host that is not a numeric address,
 * -EADDRINUSE, ...). Any thread; never suspends.
 */
COEV_API int coev_tcp_listen(const char *host, unsigned port, int backlog,
			     unsigned flags);

/*
 * coev_tcp_connect — connect to host:port. host is a numeric address or a
 * name; names are resolved with getaddrinfo() on the blocking pool, and
 * each address is tried in turn until one connects or the deadline
 * passes. TCP_NODELAY is set. Returns the fd or a negative code (those of
 * coev_resolve for a name that does not resolve, or the last address's
 * error).
 * Suspends; allocates while resolving. From a task only.
 * The deadline bounds the name's lookup too (coev_resolve).
 */
COEV_API int coev_tcp_connect(const char *host, unsigned port,
			      coev_time_t deadline);

/*
 * coev_resolver_fn — a name resolver for coev_tcp_connect: store up to max
 * addresses of host (with port set) in addrs[] and return how many (> 0),
 * or a negative code: COEV_ENONAME (no such name), COEV_ENOADDR (the name
 * has no address of the family asked for), -ETIMEDOUT, -ECANCELED, ...
 * Called in the connecting task, which it may suspend.
 * coev_set_resolver — resolve names with fn(arg, ...) from now on (the
 * c-ares adapter, coev/ares.h, provides one); NULL restores getaddrinfo()
 * on the blocking pool. Process-wide; set it while no lookup is in
 * progress (at start-up, and before the resolver's state is freed).
 * coev_resolve — the addresses of host (numeric, or a name looked up by
 * the resolver set here) with port set, at most max of them in addrs[]:
 * what coev_tcp_connect and the adapters connect to. Returns how many
 * (> 0), or -EINVAL, COEV_ENONAME ("name not found": getaddrinfo's
 * EAI_NONAME), COEV_ENOADDR (the name has no usable address: EAI_NODATA,
 * EAI_ADDRFAMILY), -EAGAIN (the name server failed or refused: EAI_AGAIN,
 * EAI_FAIL), -ENOMEM, -ETIMEDOUT, -ECANCELED, COEV_ENOTCORO (not in a
 * task). Suspends while looking a name up.
 * With getaddrinfo the deadline and a cancel bound the call even while
 * the lookup runs: the caller returns on time, and the lookup it leaves
 * ends on its own on the blocking pool (keeping a pool thread until then;
 * coev_rt_free waits for it) and frees its answer.
 */
struct sockaddr_storage;
typedef int (*coev_resolver_fn)(void *arg, const char *host, unsigned port,
				struct sockaddr_storage *addrs, int max,
				coev_time_t deadline);
COEV_API void coev_set_resolver(coev_resolver_fn fn, void *arg);
COEV_API int coev_resolve(const char *host, unsigned port,
			  struct sockaddr_storage *addrs, int max,
			  coev_time_t deadline);

/*
 * coev_udp_bind — a UDP socket bound to host:port (numeric host, NULL for
 * every IPv4 address, port 0 for any). Returns the fd or a negative code.
 * Any thread.
 */
COEV_API int coev_udp_bind(const char *host, unsigned port);

/*
 * coev_unix_listen — a Unix stream socket bound to path and listening (an
 * existing socket file at path is replaced). coev_unix_connect — connect
 * to one. Return the fd or a negative code (-ENAMETOOLONG for a path that
 * does not fit). listen: any thread; connect: from a task, suspends.
 */
COEV_API int coev_unix_listen(const char *path, int backlog);
COEV_API int coev_unix_connect(const char *path, coev_time_t deadline);

/*
 * coev_sock_port — the local port fd is bound to (host order), or a
 * negative errno. Any thread.
 */
COEV_API int coev_sock_port(int fd);

/*
 * coev_shutdown — shutdown(2) (SHUT_RD, SHUT_WR, SHUT_RDWR). coev_close —
 * close(2); an interrupted close is not retried (the fd is gone either
 * way on Linux). For an fd coev owns (rule 6) it first ends the ownership:
 * a task waiting on it gets -EBADF. Return 0 or a negative errno. Any
 * thread.
 */
COEV_API int coev_shutdown(int fd, int how);
COEV_API int coev_close(int fd);

#ifdef __cplusplus
}
#endif

#endif
