/* SPDX-License-Identifier: MIT */
/*
 * bench/http/epoll_http.c — the raw epoll server of the http and c10k
 * workloads: the practical limit for one thread on this machine.
 *
 *   epoll_http PORT
 *
 * One thread, one level-triggered epoll set, non-blocking sockets, a
 * malloc'd state block per connection. Requests end at their blank line
 * (CRLFCRLF) and all get the same fixed "Hello, World!" response, exactly
 * as in coev_http.c; pipelined requests are answered in one write.
 */
#define _GNU_SOURCE /* accept4, memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_BUF 2048
#define MAX_EVENTS 256

#define RESPONSE                       \
	"HTTP/1.1 200 OK\r\n"          \
	"Content-Length: 13\r\n"       \
	"Content-Type: text/plain\r\n" \
	"\r\n"                         \
	"Hello, World!"
#define RESP_LEN (sizeof(RESPONSE) - 1)
#define BATCH 16

/* The response repeated BATCH times: any run of queued responses is a
 * window of this periodic stream, so a connection only counts bytes. */
static char responses[BATCH * RESP_LEN];

struct conn {
	int fd;
	size_t have;	 /* request bytes in buf */
	size_t out_left; /* response bytes still to write */
	char buf[REQ_BUF];
};

static int ep;

static size_t complete_requests(const char *buf, size_t len, size_t *used)
{
	size_t n = 0, at = 0;

	for (;;) {
		const char *end = memmem(buf + at, len - at, "\r\n\r\n", 4);

		if (!end)
			break;
		at = (size_t)(end - buf) + 4;
		n++;
	}
	*used = at;
	return n;
}

static void drop(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c);
}

static int watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	return epoll_ctl(ep, op, c->fd, &ev);
}

/* Write what is queued; 1 when all is out, 0 when the socket is full (the
 * connection then waits for EPOLLOUT), -1 on error. */
static int flush(struct conn *c)
{
	while (c->out_left > 0) {
		size_t off = (RESP_LEN - c->out_left % RESP_LEN) % RESP_LEN;
		size_t n = sizeof responses - off;
		ssize_t w;

		if (n > c->out_left)
			n = c->out_left;
		w = write(c->fd, responses + off, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		c->out_left -= (size_t)w;
	}
	return 1;
}

static void on_readable(struct conn *c)
{
	size_t used, n;
	ssize_t got = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		drop(c);
		return;
	}
	c->have += (size_t)got;
	n = complete_requests(c->buf, c->have, &used);
	if (n == 0 && c->have == sizeof c->buf) {
		drop(c); /* a request larger than the buffer is not ours */
		return;
	}
	memmove(c->buf, c->buf + used, c->have - used);
	c->have -= used;
	c->out_left = n * RESP_LEN;
	switch (flush(c)) {
	case 1: break;
	case 0:
		/* Stop reading until the responses are out, as a task
		 * blocked in its write would. */
		if (watch(c, EPOLL_CTL_MOD, EPOLLOUT) < 0)
			drop(c);
		break;
	default: drop(c); break;
	}
}

static void on_writable(struct conn *c)
{
	switch (flush(c)) {
	case 1:
		if (watch(c, EPOLL_CTL_MOD, EPOLLIN) < 0)
			drop(c);
		break;
	case 0: break;
	default: drop(c); break;
	}
}

static void on_accept(int lfd)
{
	for (;;) {
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				perror("epoll_http: accept4");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		/* Only the header is set: the buffer stays untouched (and
		 * not resident) until data arrives. */
		c = malloc(sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->have = 0;
		c->out_left = 0;
		if (watch(c, EPOLL_CTL_ADD, EPOLLIN) < 0)
			drop(c);
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	int one = 1, lfd;
	long port;
	char *end;

	if (argc != 2) {
		fprintf(stderr, "usage: epoll_http PORT\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "epoll_http: bad port '%s'\n", argv[1]);
		return 2;
	}
	for (size_t i = 0; i < BATCH; i++)
		memcpy(responses + i * RESP_LEN, RESPONSE, RESP_LEN);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(lfd, SOMAXCONN) < 0) {
		perror("epoll_http: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("epoll_http: epoll");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_http: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c)
				on_accept(lfd);
			else if (evs[i].events & EPOLLOUT)
				on_writable(c);
			else
				on_readable(c);
		}
	}
}
