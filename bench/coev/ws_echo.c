/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/ws_echo.c — the coev server of the ws-echo workload
 * (bench/net/run-net.sh).
 *
 *   coev-ws PORT
 *
 * A WebSocket echo server on 127.0.0.1:PORT with one coev worker and one
 * task per connection: a buffered stream over the accepted socket, the
 * upgrade (coev_ws_accept), then every message received is sent back
 * with its type, until the client closes. It is the loop coev/ws.h shows
 * and the one the Go (gorilla's ReadMessage/WriteMessage) and Python
 * (async for message in websocket) servers of bench/net/ run, so that
 * only the runtime and its WebSocket library differ.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "coev.h"
#include "coev/ws.h"

static int serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	coev_stream_t *s;
	coev_ws_t *ws;
	coev_ws_msg_t m;

	if (coev_stream_fd(fd, 0, &s) < 0) {
		coev_close(fd);
		return 0;
	}
	/* A client that never finishes its upgrade is dropped after 10 s. */
	if (coev_ws_accept(s, NULL, &ws, coev_deadline(COEV_SEC(10))) < 0) {
		coev_stream_close(s);
		return 0;
	}
	/* The close handshake, a dropped connection or a protocol error end
	 * the loop; coev_ws_recv has answered the client's close by then. */
	while (coev_ws_recv(ws, &m, COEV_FOREVER) == 0) {
		int err = coev_ws_send(ws, m.type, m.data, m.len, COEV_FOREVER);

		coev_ws_msg_release(&m);
		if (err < 0)
			break;
	}
	coev_ws_free(ws);
	return 0;
}

static int serve_port(void *arg)
{
	unsigned port = (unsigned)(uintptr_t)arg;
	int lfd = coev_tcp_listen("127.0.0.1", port, 0, 0);

	if (lfd < 0) {
		fprintf(stderr, "coev-ws: listen on port %u: %s\n", port,
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
			fprintf(stderr, "coev-ws: accept: %s\n",
				coev_strerror(fd));
			coev_sleep(COEV_MSEC(10));
			continue;
		}
		/* Every server of the benchmark disables Nagle's algorithm,
		 * as Go does by default. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		err = coev_spawn(serve, (void *)(intptr_t)fd, NULL);
		if (err < 0) {
			fprintf(stderr, "coev-ws: spawn: %s\n",
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
		fprintf(stderr, "usage: coev-ws PORT\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port <= 0 || port > 65535) {
		fprintf(stderr, "coev-ws: bad port '%s'\n", argv[1]);
		return 2;
	}
	coev_config_init(&cfg);
	cfg.workers = 1;
	return coev_run(serve_port, (void *)(uintptr_t)port, &cfg);
}
