/* SPDX-License-Identifier: MIT */
/*
 * bench/http/coev_http.c — the coev server of the http and c10k workloads.
 *
 *   coev_http PORT
 *
 * A keep-alive HTTP/1.1 server on 127.0.0.1:PORT with one coev worker and
 * one task per connection. A request is everything up to its blank line
 * (CRLFCRLF); each one gets the same fixed 13-byte "Hello, World!"
 * response. Bodies are not expected (the load generators send GETs). The
 * peers in this folder (epoll, libuv, Go, tokio, uvloop) follow the same
 * rules so that only the runtime differs.
 *
 * The request buffer lives on the task's stack and is kept small: the c10k
 * workload measures resident memory per idle connection, and every byte a
 * task touches on its stack stays resident while the connection is open.
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

#define REQ_BUF 2048

#define RESPONSE                       \
	"HTTP/1.1 200 OK\r\n"          \
	"Content-Length: 13\r\n"       \
	"Content-Type: text/plain\r\n" \
	"\r\n"                         \
	"Hello, World!"
#define RESP_LEN (sizeof(RESPONSE) - 1)

/*
 * Pipelined requests are answered with one write per batch: the response
 * repeated BATCH times is built once at start-up, and a batch of k
 * requests writes its first k copies.
 */
#define BATCH 16
static char responses[BATCH * RESP_LEN];

/* Number of complete requests at the front of buf[0..len), and in *used
 * how many bytes they take. */
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

static int serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[REQ_BUF];
	size_t have = 0;

	for (;;) {
		ssize_t got = coev_read(fd, buf + have, sizeof buf - have,
					COEV_FOREVER);
		size_t used, n;

		if (got <= 0)
			break;
		have += (size_t)got;
		n = complete_requests(buf, have, &used);
		while (n > 0) {
			size_t k = n < BATCH ? n : BATCH;

			if (coev_write_all(fd, responses, k * RESP_LEN, NULL,
					   COEV_FOREVER) < 0)
				goto out;
			n -= k;
		}
		/* A request that does not fit the buffer is not one of ours:
		 * drop the connection rather than grow. */
		if (used == 0 && have == sizeof buf)
			break;
		memmove(buf, buf + used, have - used);
		have -= used;
	}
out:
	coev_close(fd);
	return 0;
}

static int serve_port(void *arg)
{
	unsigned port = (unsigned)(uintptr_t)arg;
	int lfd = coev_tcp_listen("127.0.0.1", port, 0, 0);

	if (lfd < 0) {
		fprintf(stderr, "coev_http: listen on port %u: %s\n", port,
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
			fprintf(stderr, "coev_http: accept: %s\n",
				coev_strerror(fd));
			coev_sleep(COEV_MSEC(10));
			continue;
		}
		/* Every server of the benchmark disables Nagle's algorithm,
		 * as Go does by default. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		err = coev_spawn(serve, (void *)(intptr_t)fd, NULL);
		if (err < 0) {
			fprintf(stderr, "coev_http: spawn: %s\n",
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

	if (argc != 2) {
		fprintf(stderr, "usage: coev_http PORT\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "coev_http: bad port '%s'\n", argv[1]);
		return 2;
	}
	for (size_t i = 0; i < BATCH; i++)
		memcpy(responses + i * RESP_LEN, RESPONSE, RESP_LEN);
	coev_config_init(&cfg);
	cfg.workers = 1;
	return coev_run(serve_port, (void *)(uintptr_t)port, &cfg);
}
