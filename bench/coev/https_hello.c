/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/https_hello.c — the coev server of the https workload
 * (bench/net/run-net.sh).
 *
 *   coev-https PORT             plain TCP
 *   coev-https PORT CERT KEY    TLS (coev/tls.h, OpenSSL)
 *
 * A keep-alive HTTP/1.1 hello server on 127.0.0.1:PORT with one coev
 * worker and one task per connection, reading through a buffered stream
 * (coev/stream.h) over the socket or over a TLS connection, so that the
 * plain and the TLS server differ only by the transport under the stream.
 * Requests and response are those of bench/http: a request ends at its
 * blank line (CRLFCRLF) and gets the same fixed "Hello, World!" response;
 * requests that arrive together are answered together, in one flush.
 *
 * This is the program a coev user writes, as an asyncio user would with
 * reader.readuntil(b"\r\n\r\n") and writer.write/drain: read_until for
 * each request, write, and flush once no further request is buffered.
 */
#define _GNU_SOURCE /* memmem */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "coev.h"
#include "coev/tls.h"

#define REQ_BUF 2048

#define RESPONSE                       \
	"HTTP/1.1 200 OK\r\n"          \
	"Content-Length: 13\r\n"       \
	"Content-Type: text/plain\r\n" \
	"\r\n"                         \
	"Hello, World!"
#define RESP_LEN (sizeof(RESPONSE) - 1)

/* The server's TLS config, or NULL for plain TCP. Read-only once the
 * first connection uses it (coev/tls.h), so every task shares it. */
static coev_tls_config_t *tls_cfg;

/* Whether another complete request is already buffered: then its
 * response joins this one before the flush. Peeking at what is buffered
 * never waits. */
static int more_buffered(coev_stream_t *s)
{
	size_t n = coev_stream_buffered(s), avail;
	const void *data;

	if (n < 4 || coev_stream_peek(s, n, &data, &avail, COEV_FOREVER) != 0)
		return 0;
	return memmem(data, avail, "\r\n\r\n", 4) != NULL;
}

static int serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[REQ_BUF];
	coev_stream_t *s;
	int err;

	if (tls_cfg) {
		/* The handshake; on failure the fd is closed for us. */
		err = coev_tls_accept(fd, tls_cfg, COEV_FOREVER, &s);
	} else {
		err = coev_stream_fd(fd, 0, &s);
		if (err < 0)
			coev_close(fd);
	}
	if (err < 0)
		return 0;
	for (;;) {
		/* End of stream, a request over REQ_BUF bytes (not one of
		 * ours) or a transport error all end the connection. */
		if (coev_stream_read_until(s, "\r\n\r\n", 4, req, sizeof req,
					   COEV_FOREVER) < 0)
			break;
		if (coev_stream_write(s, RESPONSE, RESP_LEN, NULL,
				      COEV_FOREVER) < 0)
			break;
		if (!more_buffered(s) && coev_stream_flush(s, COEV_FOREVER) < 0)
			break;
	}
	coev_stream_close(s);
	return 0;
}

static int serve_port(void *arg)
{
	unsigned port = (unsigned)(uintptr_t)arg;
	int lfd = coev_tcp_listen("127.0.0.1", port, 0, 0);

	if (lfd < 0) {
		fprintf(stderr, "coev-https: listen on port %u: %s\n", port,
			coev_strerror(lfd));
		return 1;
	}
	for (;;) {
		int one = 1;
		int fd = coev_accept(lfd, NULL, NULL, COEV_FOREVER);
		int err;

		if (fd < 0) {
			/* Out of descriptors: wait for connections to close
			 * instead of spinning on the listening socket. */
			fprintf(stderr, "coev-https: accept: %s\n",
				coev_strerror(fd));
			coev_sleep(COEV_MSEC(10));
			continue;
		}
		/* Every server of the benchmark disables Nagle's algorithm,
		 * as Go does by default. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		err = coev_spawn(serve, (void *)(intptr_t)fd, NULL);
		if (err < 0) {
			fprintf(stderr, "coev-https: spawn: %s\n",
				coev_strerror(err));
			coev_close(fd);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	coev_config_t cfg;
	long port;
	char *end;
	int err;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: coev-https PORT [CERT KEY]\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "coev-https: bad port '%s'\n", argv[1]);
		return 2;
	}
	if (argc == 4) {
		err = coev_tls_config_new(COEV_TLS_SERVER, &tls_cfg);
		if (err == 0)
			err = coev_tls_config_cert(tls_cfg, argv[2], argv[3]);
		if (err < 0) {
			fprintf(stderr, "coev-https: TLS config: %s %s\n",
				coev_strerror(err),
				tls_cfg ? coev_tls_config_error_text(tls_cfg)
					: "");
			return 1;
		}
	}
	coev_config_init(&cfg);
	cfg.workers = 1;
	err = coev_run(serve_port, (void *)(uintptr_t)port, &cfg);
	coev_tls_config_free(tls_cfg);
	return err;
}
