/* SPDX-License-Identifier: MIT */
/*
 * bench/http/uv_http.c — the libuv server of the http and c10k workloads.
 *
 *   uv_http PORT
 *
 * One uv_loop on one thread, a uv_tcp_t per connection with its own small
 * request buffer (handed to libuv by the alloc callback), and the same
 * request framing and fixed "Hello, World!" response as coev_http.c.
 * Responses go out with uv_try_write; only what the socket does not take
 * at once is queued with uv_write (from the static response buffer, so
 * nothing is copied).
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define REQ_BUF 2048

#define RESPONSE                       \
	"HTTP/1.1 200 OK\r\n"          \
	"Content-Length: 13\r\n"       \
	"Content-Type: text/plain\r\n" \
	"\r\n"                         \
	"Hello, World!"
#define RESP_LEN (sizeof(RESPONSE) - 1)
#define BATCH 16

static char responses[BATCH * RESP_LEN];

struct conn {
	uv_tcp_t tcp; /* first: the handle pointer is the conn pointer */
	size_t have;
	char buf[REQ_BUF];
};

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

static void on_close(uv_handle_t *h)
{
	free(h);
}

static void drop(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = (struct conn *)h;

	(void)hint;
	*b = uv_buf_init(c->buf + c->have, (unsigned)(REQ_BUF - c->have));
}

static void on_written(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	if (status < 0)
		drop(c);
}

/* Send n bytes of the response stream: what the socket takes now, the
 * rest queued. libuv keeps queued writes in order. */
static int send_responses(struct conn *c, size_t n)
{
	while (n > 0) {
		size_t k = n < sizeof responses ? n : sizeof responses;
		uv_buf_t b = uv_buf_init(responses, (unsigned)k);
		int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		uv_write_t *req;

		if (w == UV_EAGAIN)
			w = 0;
		if (w < 0)
			return w;
		if ((size_t)w < k) {
			/* The static buffer outlives the write, so the
			 * unsent tail is queued without a copy. */
			b = uv_buf_init(responses + w,
					(unsigned)(k - (size_t)w));
			req = malloc(sizeof *req);
			if (!req)
				return UV_ENOMEM;
			req->data = c;
			if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1,
				     on_written) < 0) {
				free(req);
				return UV_EIO;
			}
		}
		n -= k;
	}
	return 0;
}

static void on_read(uv_stream_t *s, ssize_t got, const uv_buf_t *b)
{
	struct conn *c = (struct conn *)s;
	size_t used, n;

	(void)b;
	if (got == 0)
		return; /* EAGAIN: libuv returns the buffer */
	if (got < 0) {
		drop(c);
		return;
	}
	c->have += (size_t)got;
	n = complete_requests(c->buf, c->have, &used);
	if (n == 0 && c->have == REQ_BUF) {
		drop(c); /* a request larger than the buffer is not ours */
		return;
	}
	memmove(c->buf, c->buf + used, c->have - used);
	c->have -= used;
	if (n > 0 && send_responses(c, n * RESP_LEN) < 0)
		drop(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status < 0) {
		fprintf(stderr, "uv_http: listen: %s\n", uv_strerror(status));
		return;
	}
	c = malloc(sizeof *c);
	if (!c)
		return;
	c->have = 0;
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		drop(c);
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	struct sockaddr_in sa;
	uv_tcp_t server;
	long port;
	char *end;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: uv_http PORT\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "uv_http: bad port '%s'\n", argv[1]);
		return 2;
	}
	for (size_t i = 0; i < BATCH; i++)
		memcpy(responses + i * RESP_LEN, RESPONSE, RESP_LEN);
	uv_tcp_init(loop, &server);
	uv_ip4_addr("127.0.0.1", (int)port, &sa);
	err = uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0);
	if (!err)
		err = uv_listen((uv_stream_t *)&server, SOMAXCONN,
				on_connection);
	if (err) {
		fprintf(stderr, "uv_http: listen on port %ld: %s\n", port,
			uv_strerror(err));
		return 1;
	}
	return uv_run(loop, UV_RUN_DEFAULT);
}
