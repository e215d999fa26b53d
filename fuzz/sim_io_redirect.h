/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_io_redirect.h — forced into every library file of the
 * simulation build after fuzz/sim_redirect.h: the fd system calls the
 * library makes (io/socket.c's) become fuzz/sim_fd.c's, which serve the
 * simulation's fake sockets and pass every other fd to the system. The
 * system's declarations come first, so the names below only rename calls.
 */
#ifndef COEV_FUZZ_SIM_IO_REDIRECT_H
#define COEV_FUZZ_SIM_IO_REDIRECT_H

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t coev__sim_read(int fd, void *buf, size_t n);
ssize_t coev__sim_write(int fd, const void *buf, size_t n);
ssize_t coev__sim_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t coev__sim_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t coev__sim_recv(int fd, void *buf, size_t n, int flags);
ssize_t coev__sim_send(int fd, const void *buf, size_t n, int flags);
ssize_t coev__sim_recvfrom(int fd, void *buf, size_t n, int flags,
			   struct sockaddr *addr, socklen_t *alen);
ssize_t coev__sim_sendto(int fd, const void *buf, size_t n, int flags,
			 const struct sockaddr *addr, socklen_t alen);
int coev__sim_socket(int domain, int type, int protocol);
int coev__sim_bind(int fd, const struct sockaddr *addr, socklen_t alen);
int coev__sim_listen(int fd, int backlog);
int coev__sim_accept4(int fd, struct sockaddr *addr, socklen_t *alen,
		      int flags);
int coev__sim_connect(int fd, const struct sockaddr *addr, socklen_t alen);
int coev__sim_getsockopt(int fd, int level, int name, void *v, socklen_t *len);
int coev__sim_setsockopt(int fd, int level, int name, const void *v,
			 socklen_t len);
int coev__sim_shutdown(int fd, int how);
int coev__sim_close(int fd);
int coev__sim_poll(struct pollfd *p, nfds_t n, int timeout);
int coev__sim_fcntl(int fd, int cmd, ...);

#define read(fd, b, n) coev__sim_read(fd, b, n)
#define write(fd, b, n) coev__sim_write(fd, b, n)
#define readv(fd, v, c) coev__sim_readv(fd, v, c)
#define writev(fd, v, c) coev__sim_writev(fd, v, c)
#define recv(fd, b, n, f) coev__sim_recv(fd, b, n, f)
#define send(fd, b, n, f) coev__sim_send(fd, b, n, f)
#define recvfrom(fd, b, n, f, a, l) coev__sim_recvfrom(fd, b, n, f, a, l)
#define sendto(fd, b, n, f, a, l) coev__sim_sendto(fd, b, n, f, a, l)
#define socket(d, t, p) coev__sim_socket(d, t, p)
#define bind(fd, a, l) coev__sim_bind(fd, a, l)
#define listen(fd, b) coev__sim_listen(fd, b)
#define accept4(fd, a, l, f) coev__sim_accept4(fd, a, l, f)
#define connect(fd, a, l) coev__sim_connect(fd, a, l)
#define getsockopt(fd, l, n, v, s) coev__sim_getsockopt(fd, l, n, v, s)
#define setsockopt(fd, l, n, v, s) coev__sim_setsockopt(fd, l, n, v, s)
#define shutdown(fd, h) coev__sim_shutdown(fd, h)
#define close(fd) coev__sim_close(fd)
#define poll(p, n, t) coev__sim_poll(p, n, t)
#define fcntl(...) coev__sim_fcntl(__VA_ARGS__)

#endif
