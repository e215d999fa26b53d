/* SPDX-License-Identifier: MIT */
/*
 * examples/ws_echo.c — the WebSocket server of the asyncio post coev grew
 * from, and a client that shows why it is concurrent. The Python:
 *
 *   async def handle_client(websocket, path):
 *       async for message in websocket:
 *           await asyncio.sleep(0.1)           # processing
 *           await websocket.send(f"Processed: {message}")
 *
 *   server = await websockets.serve(handle_client, "localhost", 8765)
 *
 * Usage:
 *   ws_echo server [PORT]        serve on 127.0.0.1:PORT (default 8765; 0
 *                                picks a free one); prints "listening on
 *                                127.0.0.1:PORT"; stops cleanly on SIGINT
 *                                or SIGTERM
 *   ws_echo client PORT N M      N connections at once, M messages each,
 *                                each awaiting its answer; prints the
 *                                elapsed time: about M x 0.1 s, not
 *                                N x M x 0.1 s
 *
 * One task per client (detached: coev_spawn with a NULL handle); each
 * reads messages in a loop with coev_ws_recv (async for), sleeps 100 ms
 * and answers. While one client's task sleeps, the workers run the
 * others. On a signal, main cancels the accept loop and returns; coev_run
 * then cancels the client tasks, whose recv returns -ECANCELED.
 */
#include <coev.h>
#include <coev/ws.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

static int listen_fd = -1;
static int signal_fd = -1;

/* handle_client: "Processed: <message>" after 0.1 s, for each message. */
static int handle_client(void *arg)
{
	int fd = (int)(intptr_t)arg, r;
	coev_stream_t *s;
	coev_ws_t *ws;
	coev_ws_msg_t m;

	if ((r = coev_stream_fd(fd, 0, &s)) < 0) {
		coev_close(fd);
		return r;
	}
	if (coev_ws_accept(s, NULL, &ws, coev_deadline(COEV_SEC(10))) < 0) {
		coev_stream_close(s); /* not a WebSocket client: answered 400 */
		return 0;
	}
	while ((r = coev_ws_recv(ws, &m, COEV_FOREVER)) == 0) {
		size_t n = m.len + sizeof("Processed: ");
		char *out = malloc(n);

		coev_sleep(COEV_MSEC(100)); /* the processing */
		if (out) {
			snprintf(out, n, "Processed: %s", (char *)m.data);
			r = coev_ws_send(ws, COEV_WS_TEXT, out, n - 1,
					 coev_deadline(COEV_SEC(10)));
			free(out);
		}
		coev_ws_msg_release(&m);
		if (!out || r < 0)
			break;
	}
	coev_ws_free(ws);
	return 0;
}

static int accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = coev_accept(listen_fd, NULL, NULL, COEV_FOREVER);

		if (fd == -ECANCELED)
			return 0;
		if (fd < 0) {
			fprintf(stderr, "ws_echo: accept: %s\n",
				coev_strerror(fd));
			return fd;
		}
		if (coev_spawn(handle_client, (void *)(intptr_t)fd, NULL) < 0)
			coev_close(fd);
	}
}

static int server_main(void *arg)
{
	struct signalfd_siginfo si;
	coev_task_t *acc;
	ssize_t n;

	(void)arg;
	if (coev_spawn(accept_loop, NULL, &acc) < 0)
		return 1;
	n = coev_read(signal_fd, &si, sizeof(si), COEV_FOREVER);
	if (n == (ssize_t)sizeof(si))
		printf("ws_echo: %s, stopping\n", strsignal((int)si.ssi_signo));
	coev_cancel(acc);
	return coev_join(acc, NULL);
}

/* ---- the client ----------------------------------------------------------- */

static unsigned port, msgs;
static atomic_int failed;

static int one_client(void *arg)
{
	int id = (int)(intptr_t)arg, fd, r;
	coev_stream_t *s;
	coev_ws_t *ws;
	coev_ws_msg_t m;
	char txt[64], want[96];

	fd = coev_tcp_connect("127.0.0.1", port, coev_deadline(COEV_SEC(10)));
	if (fd < 0 || coev_stream_fd(fd, 0, &s) < 0)
		goto fail;
	if (coev_ws_connect(s, "127.0.0.1", "/", NULL, &ws,
			    coev_deadline(COEV_SEC(10))) < 0) {
		coev_stream_close(s);
		goto fail;
	}
	for (unsigned i = 0; i < msgs; i++) {
		int n = snprintf(txt, sizeof(txt), "client %d message %u", id,
				 i);

		snprintf(want, sizeof(want), "Processed: %s", txt);
		r = coev_ws_send(ws, COEV_WS_TEXT, txt, (size_t)n,
				 COEV_FOREVER);
		if (r == 0)
			r = coev_ws_recv(ws, &m, coev_deadline(COEV_SEC(10)));
		if (r == 0 && strcmp((char *)m.data, want) != 0)
			r = -EPROTO;
		coev_ws_msg_release(&m);
		if (r < 0) {
			fprintf(stderr, "ws_echo: client %d: %s\n", id,
				coev_strerror(r));
			atomic_fetch_add(&failed, 1);
			break;
		}
	}
	coev_ws_close(ws, COEV_WS_NORMAL, NULL, coev_deadline(COEV_SEC(5)));
	coev_ws_free(ws);
	return 0;
fail:
	atomic_fetch_add(&failed, 1);
	return 0;
}

static int client_main(void *arg)
{
	unsigned n = *(unsigned *)arg;
	coev_task_t **t = calloc(n, sizeof(*t));
	int *rets = calloc(n, sizeof(*rets));
	coev_time_t t0 = coev_now();

	for (unsigned i = 0; t && rets && i < n; i++)
		if (coev_spawn(one_client, (void *)(intptr_t)i, &t[i]) < 0)
			return 1; /* coev_run cancels those started */
	if (!t || !rets || coev_gather(t, n, rets) < 0)
		return 1;
	free(t);
	free(rets);
	printf("%u clients x %u messages in %.2f s (one at a time: %.1f s)\n",
	       n, msgs, (double)(coev_now() - t0) / 1e9, n * msgs * 0.1);
	return atomic_load(&failed) ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: ws_echo server [PORT] | client PORT N M\n");
	exit(2);
}

static int run_server(unsigned p)
{
	sigset_t sig;
	int r;

	/* SIGINT and SIGTERM are blocked in every thread (the workers inherit
	 * the mask) and read from a signalfd by server_main. */
	sigemptyset(&sig);
	sigaddset(&sig, SIGINT);
	sigaddset(&sig, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sig, NULL);
	signal_fd = signalfd(-1, &sig, SFD_NONBLOCK | SFD_CLOEXEC);
	listen_fd = coev_tcp_listen("127.0.0.1", p, 0, 0);
	if (signal_fd < 0 || listen_fd < 0) {
		fprintf(stderr, "ws_echo: cannot listen on port %u\n", p);
		return 1;
	}
	printf("listening on 127.0.0.1:%d\n", coev_sock_port(listen_fd));
	r = coev_run(server_main, NULL, NULL);
	coev_close(listen_fd);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "server") == 0 && argc <= 3)
		return run_server(argc == 3 ? (unsigned)atoi(argv[2]) : 8765);
	if (argc != 5 || strcmp(argv[1], "client") != 0)
		usage();
	port = (unsigned)atoi(argv[2]);
	n = (unsigned)atoi(argv[3]);
	msgs = (unsigned)atoi(argv[4]);
	if (!port || !n || !msgs)
		usage();
	return coev_run(client_main, &n, NULL) == 0 ? 0 : 1;
}
