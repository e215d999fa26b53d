/* SPDX-License-Identifier: MIT */
/*
 * bench/net/epoll_https.c — the raw epoll server of the https workload:
 * OpenSSL's own cost per request, with the fewest calls around it.
 *
 *   epoll_https PORT             plain TCP
 *   epoll_https PORT CERT KEY    TLS (OpenSSL, on its socket BIO)
 *
 * The floor the TLS servers of the workload are read against: what
 * OpenSSL costs per request on this machine when nothing but a bare loop
 * calls it, so that the part of coev-tls's cost that is OpenSSL's can be
 * told from the part that is coev's. The structure is that of
 * bench/http/epoll_http.c: one thread, one level-triggered epoll set,
 * non-blocking sockets, a malloc'd state block per connection; requests
 * end at their blank line (CRLFCRLF) and all get the same fixed "Hello,
 * World!" response, pipelined requests answered in one write.
 *
 * The SSL_CTX has exactly the settings of adapters/tls.c's server (TLS
 * 1.2 at least, no renegotiation, read ahead, the same TLS 1.3 suites in
 * the server's order, partial writes with a moving buffer), so that the
 * two differ only in what is around OpenSSL. Each connection's SSL reads
 * and writes its socket through SSL_set_fd, the plain way OpenSSL is
 * used; the handshake, reads and writes are retried when epoll reports
 * the direction that SSL_get_error asked for.
 *
 * The plain and the TLS mode run the same loop: one read per readiness
 * (read(2), or SSL_read) unless the read filled the buffer or OpenSSL
 * holds more (SSL_has_pending), so a request costs one read and one write
 * in both, and a plain/TLS pair of runs differs only by what TLS adds.
 */
#define _GNU_SOURCE /* accept4, memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
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
	SSL *ssl;	   /* NULL in plain mode */
	int handshaken;	   /* the TLS handshake is done (always in plain) */
	uint32_t watching; /* the epoll events the fd is registered for */
	uint32_t want;	   /* what the last call that could not go on needs */
	size_t have;	   /* request bytes in buf */
	size_t out_left;   /* response bytes still to write */
	char buf[REQ_BUF];
};

static int ep;
static SSL_CTX *ctx; /* NULL in plain mode */

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
	SSL_free(c->ssl); /* no close_notify: the peer is gone or bad */
	close(c->fd);	  /* also removes it from the epoll set */
	free(c);
}

static int watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	c->watching = events;
	return epoll_ctl(ep, op, c->fd, &ev);
}

/* After an SSL call returned r <= 0: 0 when it only has to wait (c->want
 * says for what), -1 when the connection is over. */
static int ssl_wait(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ: c->want = EPOLLIN; return 0;
	case SSL_ERROR_WANT_WRITE: c->want = EPOLLOUT; return 0;
	default: return -1; /* close_notify, reset, bad record, ... */
	}
}

/* Read into buf: the byte count, 0 when the transport has nothing now
 * (c->want says what to wait for), -1 at the end or on an error. */
static ssize_t transport_read(struct conn *c, char *p, size_t n)
{
	ssize_t got;
	int r;

	if (!c->ssl) {
		do
			got = read(c->fd, p, n);
		while (got < 0 && errno == EINTR);
		if (got < 0 && errno == EAGAIN) {
			c->want = EPOLLIN;
			return 0;
		}
		return got > 0 ? got : -1;
	}
	/* SSL_get_error reads the thread's error queue: it must hold
	 * nothing from an earlier call. */
	ERR_clear_error();
	r = SSL_read(c->ssl, p, (int)n);
	return r > 0 ? r : ssl_wait(c, r);
}

/* Write n bytes or fewer: as transport_read. */
static ssize_t transport_write(struct conn *c, const char *p, size_t n)
{
	ssize_t w;
	int r;

	if (!c->ssl) {
		do
			w = write(c->fd, p, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno == EAGAIN) {
			c->want = EPOLLOUT;
			return 0;
		}
		return w > 0 ? w : -1;
	}
	ERR_clear_error();
	r = SSL_write(c->ssl, p, (int)n);
	return r > 0 ? r : ssl_wait(c, r);
}

/* Write what is queued; 1 when all is out, 0 when the transport is full
 * (c->want says what to wait for), -1 on error. A write that has to be
 * repeated is repeated with the same length, as OpenSSL requires: the
 * window only moves with what was written. */
static int flush(struct conn *c)
{
	while (c->out_left > 0) {
		size_t off = (RESP_LEN - c->out_left % RESP_LEN) % RESP_LEN;
		size_t n = sizeof responses - off;
		ssize_t w;

		if (n > c->out_left)
			n = c->out_left;
		w = transport_write(c, responses + off, n);
		if (w <= 0)
			return (int)w;
		c->out_left -= (size_t)w;
	}
	return 1;
}

/* Take what the transport has and answer every complete request; 0 when
 * the transport has nothing more or cannot take the responses yet
 * (c->want says what to wait for), -1 when the connection is over. A
 * connection whose responses are not out reads nothing more, as a task
 * blocked in its write would not. One read per readiness: the set is
 * level-triggered, so bytes left in the socket are reported again, and a
 * read after a short one would only say EAGAIN (WANT_READ); only bytes
 * OpenSSL already holds (SSL_has_pending), which epoll cannot see, or a
 * read that filled the buffer, make it read again at once. */
static int serve(struct conn *c)
{
	for (;;) {
		size_t used, n, room = sizeof c->buf - c->have;
		ssize_t got;
		int r = flush(c);

		if (r <= 0)
			return r;
		got = transport_read(c, c->buf + c->have, room);
		if (got <= 0)
			return (int)got;
		c->have += (size_t)got;
		n = complete_requests(c->buf, c->have, &used);
		if (n == 0 && c->have == sizeof c->buf)
			return -1; /* a request larger than the buffer */
		memmove(c->buf, c->buf + used, c->have - used);
		c->have -= used;
		c->out_left = n * RESP_LEN;
		if ((size_t)got < room &&
		    !(c->ssl && SSL_has_pending(c->ssl))) {
			r = flush(c);
			if (r > 0)
				c->want = EPOLLIN;
			return r > 0 ? 0 : r;
		}
	}
}

/* An event on a connection: go on with whatever it was waiting to do,
 * then watch for what it waits for now. Level-triggered: a direction is
 * watched only while a call waits for it. */
static void on_event(struct conn *c)
{
	int r = 1;

	if (!c->handshaken) {
		ERR_clear_error();
		r = SSL_accept(c->ssl);
		if (r <= 0)
			r = ssl_wait(c, r);
		else
			c->handshaken = 1;
	}
	if (r > 0)
		r = serve(c);
	if (r < 0 ||
	    (c->want != c->watching && watch(c, EPOLL_CTL_MOD, c->want) < 0))
		drop(c);
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
				perror("epoll_https: accept4");
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
		c->ssl = NULL;
		c->handshaken = 1;
		c->have = 0;
		c->out_left = 0;
		c->want = EPOLLIN;
		if (ctx) {
			c->handshaken = 0;
			c->ssl = SSL_new(ctx);
			if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
				drop(c);
				continue;
			}
		}
		/* The client speaks first, in both modes. */
		if (watch(c, EPOLL_CTL_ADD, EPOLLIN) < 0)
			drop(c);
	}
}

/* The server's SSL_CTX, set as adapters/tls.c's make_ctx sets a server's
 * (the ALPN, SNI and session-id settings aside: wrk uses none of them),
 * with CERT and KEY; NULL after printing OpenSSL's errors. */
static SSL_CTX *make_ctx(const char *cert, const char *key)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	if (!c)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION |
				       SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_read_ahead(c, 1);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
				    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256:"
					 "TLS_AES_256_GCM_SHA384:"
					 "TLS_CHACHA20_POLY1305_SHA256") ||
	    SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	int one = 1, lfd;
	long port;
	char *end;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: epoll_https PORT [CERT KEY]\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "epoll_https: bad port '%s'\n", argv[1]);
		return 2;
	}
	if (argc == 4) {
		ctx = make_ctx(argv[2], argv[3]);
		if (!ctx) {
			fprintf(stderr, "epoll_https: TLS setup failed:\n");
			ERR_print_errors_fp(stderr);
			return 1;
		}
	}
	/* A peer that resets the connection while a response is written
	 * must cost an EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < BATCH; i++)
		memcpy(responses + i * RESP_LEN, RESPONSE, RESP_LEN);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(lfd, SOMAXCONN) < 0) {
		perror("epoll_https: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("epoll_https: epoll");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_https: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c)
				on_accept(lfd);
			else
				on_event(c);
		}
	}
}
