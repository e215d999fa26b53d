/* SPDX-License-Identifier: MIT */
/*
 * examples/tls_echo.c — a line echo server over TLS, and a client for it:
 * echo.c with a certificate, on buffered streams (coev/stream.h) over the
 * TLS adapter (coev/tls.h, libcoev_tls.a). asyncio's version:
 *
 *   ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
 *   ctx.load_cert_chain("cert.pem", "key.pem")
 *
 *   async def handle_client(reader, writer):
 *       while line := await reader.readline():
 *           writer.write(line)
 *           await writer.drain()
 *       writer.close()
 *
 *   server = await asyncio.start_server(handle_client, "127.0.0.1", 8443,
 *                                       ssl=ctx)
 *
 * Run it and talk to it (a throwaway certificate for localhost):
 *
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
 *       -keyout key.pem -out cert.pem -days 1 -subj /CN=localhost \
 *       -addext subjectAltName=DNS:localhost
 *   build/examples/tls_echo server cert.pem key.pem 8443 &
 *   build/examples/tls_echo client -a cert.pem localhost 8443 hello world
 *   openssl s_client -connect 127.0.0.1:8443 -servername localhost -quiet
 *   kill %1                                             # or Ctrl-C
 *
 * Usage:
 *   tls_echo server CERT KEY [PORT [WORKERS]]
 *       PORT on 127.0.0.1 (default 8443; 0 picks a free one, printed)
 *   tls_echo client [-a CAFILE] HOST PORT LINE...
 *       sends each LINE, prints what comes back; verifies the server
 *       against CAFILE (default: the system's trusted certificates)
 *
 * What it shows: one config shared by every connection; the handshake
 * run by hand (coev_tls_new, coev_tls_handshake) so that a failed one is
 * logged with OpenSSL's reason, then the connection as a stream; lines
 * read with coev_stream_read_line and a clean TLS close (close_notify)
 * both ways. Stopping is echo.c's: SIGINT or SIGTERM on a signalfd.
 */
#include <coev.h>
#include <coev/stream.h>
#include <coev/tls.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define LINE_MAX_LEN 1024 /* a longer line is echoed in pieces */
#define IDLE COEV_SEC(60) /* a client silent this long is dropped */

static coev_tls_config_t *tls_cfg;
static int listen_fd = -1;

/* A TLS connection over the accepted fd, handshaken and made a stream;
 * NULL (the fd closed, the reason logged) when that fails. */
static coev_stream_t *tls_open(int fd)
{
	coev_tls_t *t = NULL;
	coev_stream_t *s = NULL;
	int r = coev_tls_new(tls_cfg, fd, NULL, &t);

	if (r < 0) {
		coev_close(fd);
		return NULL;
	}
	r = coev_tls_handshake(t, coev_deadline(COEV_SEC(10)));
	if (r == 0)
		r = coev_tls_stream(t, 0, &s);
	if (r < 0) {
		if (r != -ECANCELED)
			fprintf(stderr, "tls_echo: handshake: %s (%s)\n",
				coev_strerror(r), coev_tls_error_text(t));
		coev_tls_free(t);
		return NULL;
	}
	printf("tls_echo: %s client, SNI %s\n", coev_tls_version(t),
	       coev_tls_server_name(t) ? coev_tls_server_name(t) : "none");
	return s;
}

/* One client: echo every line until the client ends (its close_notify),
 * goes silent, fails, or the server stops (-ECANCELED). Detached: its
 * end is nobody's error. */
static int echo_client(void *arg)
{
	coev_stream_t *s = tls_open((int)(intptr_t)arg);
	char line[LINE_MAX_LEN];
	ssize_t n;

	if (!s)
		return 0;
	for (;;) {
		n = coev_stream_read_line(s, line, sizeof line,
					  coev_deadline(IDLE));
		/* Too long, or a last line without '\n': what there is. */
		if (n == -EMSGSIZE || n == COEV_EEOF)
			n = coev_stream_read(s, line, sizeof line,
					     coev_deadline(IDLE));
		if (n <= 0)
			break;
		if (coev_stream_write(s, line, (size_t)n, NULL,
				      coev_deadline(IDLE)) < 0 ||
		    coev_stream_flush(s, coev_deadline(IDLE)) < 0)
			break;
	}
	/* A clean end: our close_notify after the client's. */
	if (n == 0)
		(void)coev_stream_shutdown(s, coev_deadline(COEV_SEC(1)));
	else if (n != -ECANCELED && n != -ETIMEDOUT)
		fprintf(stderr, "tls_echo: client: %s\n",
			coev_strerror((int)n));
	coev_stream_close(s);
	return 0;
}

/* The accept loop: one detached task per client, until cancelled. */
static int accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = coev_accept(listen_fd, NULL, NULL, COEV_FOREVER);
		if (fd == -ECANCELED)
			return 0;
		if (fd < 0) {
			/* Out of fds or a passing failure: wait a little. */
			if (coev_sleep(COEV_MSEC(100)) == -ECANCELED)
				return 0;
			continue;
		}
		if (coev_spawn_named("client", echo_client,
				     (void *)(intptr_t)fd, NULL) < 0)
			coev_close(fd);
	}
}

/* Until SIGINT or SIGTERM arrives on the signalfd (arg). */
static int wait_for_signal(void *arg)
{
	struct signalfd_siginfo si;
	ssize_t n = coev_read((int)(intptr_t)arg, &si, sizeof si, COEV_FOREVER);

	if (n == (ssize_t)sizeof si)
		printf("tls_echo: %s, stopping\n",
		       strsignal((int)si.ssi_signo));
	return 0;
}

/* The server's first task: the accept loop and the signal watcher until
 * either ends; clients still connected are cancelled by coev_run. */
static int server_main(void *arg)
{
	coev_task_t *tasks[2];
	int rets[2];

	if (coev_spawn(accept_loop, NULL, &tasks[0]) < 0)
		return -ENOMEM;
	if (coev_spawn(wait_for_signal, arg, &tasks[1]) < 0) {
		coev_cancel(tasks[0]);
		(void)coev_join(tasks[0], NULL);
		return -ENOMEM;
	}
	(void)coev_wait_any(tasks, 2, COEV_FOREVER);
	coev_cancel(tasks[0]);
	coev_cancel(tasks[1]);
	return coev_gather(tasks, 2, rets);
}

static int server(int argc, char **argv)
{
	unsigned port = argc > 2 ? (unsigned)atoi(argv[2]) : 8443;
	coev_config_t cfg;
	sigset_t signals;
	int sfd, r;

	coev_config_init(&cfg);
	if (argc > 3)
		cfg.workers = (unsigned)atoi(argv[3]);
	r = coev_tls_config_new(COEV_TLS_SERVER, &tls_cfg);
	if (r == 0 && (r = coev_tls_config_cert(tls_cfg, argv[0], argv[1])) < 0)
		fprintf(stderr, "tls_echo: %s\n",
			coev_tls_config_error_text(tls_cfg));
	if (r < 0) {
		coev_tls_config_free(tls_cfg);
		return EXIT_FAILURE;
	}
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	sfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
	listen_fd = coev_tcp_listen("127.0.0.1", port, 0, 0);
	if (sfd < 0 || listen_fd < 0) {
		fprintf(stderr, "tls_echo: listen on 127.0.0.1:%u: %s\n", port,
			coev_strerror(listen_fd));
		return EXIT_FAILURE;
	}
	printf("tls_echo: listening on 127.0.0.1:%d\n",
	       coev_sock_port(listen_fd));
	r = coev_run(server_main, (void *)(intptr_t)sfd, &cfg);
	coev_close(listen_fd);
	close(sfd);
	coev_tls_config_free(tls_cfg);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

struct client_args {
	const char *host;
	unsigned port;
	char **lines;
	int n;
};

/* The client: each line out, its echo back, then a clean close. */
static int client_main(void *arg)
{
	struct client_args *a = arg;
	coev_time_t dl = coev_deadline(COEV_SEC(10));
	coev_stream_t *s = NULL;
	char line[LINE_MAX_LEN + 1];
	ssize_t n;
	int r = coev_tls_connect(a->host, a->port, tls_cfg, dl, &s);

	if (r < 0) {
		fprintf(stderr, "tls_echo: connect to %s:%u: %s\n", a->host,
			a->port, coev_strerror(r));
		return r;
	}
	for (int i = 0; i < a->n && r == 0; i++) {
		size_t len = strlen(a->lines[i]);
		if ((n = coev_stream_write(s, a->lines[i], len, NULL, dl)) <
			    0 ||
		    (n = coev_stream_write(s, "\n", 1, NULL, dl)) < 0 ||
		    (n = coev_stream_flush(s, dl)) < 0 ||
		    (n = coev_stream_read_line(s, line, sizeof line - 1, dl)) <
			    0) {
			r = (int)n;
			break;
		}
		line[n] = '\0';
		printf("%s", line);
	}
	if (r == 0)
		r = coev_stream_shutdown(s, dl);
	if (r < 0)
		fprintf(stderr, "tls_echo: %s\n", coev_strerror(r));
	coev_stream_close(s);
	return r;
}

static int client(int argc, char **argv)
{
	struct client_args a;
	const char *ca = NULL;
	int r;

	if (argc >= 2 && strcmp(argv[0], "-a") == 0) {
		ca = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		return 2;
	a.host = argv[0];
	a.port = (unsigned)atoi(argv[1]);
	a.lines = argv + 2;
	a.n = argc - 2;
	r = coev_tls_config_new(COEV_TLS_CLIENT, &tls_cfg);
	if (r == 0 && ca && (r = coev_tls_config_ca(tls_cfg, ca, NULL)) < 0)
		fprintf(stderr, "tls_echo: %s\n",
			coev_tls_config_error_text(tls_cfg));
	if (r == 0)
		r = coev_run(client_main, &a, NULL);
	coev_tls_config_free(tls_cfg);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	int r = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && strcmp(argv[1], "server") == 0)
		r = server(argc - 2, argv + 2);
	else if (argc >= 4 && strcmp(argv[1], "client") == 0)
		r = client(argc - 2, argv + 2);
	if (r == 2)
		fprintf(stderr,
			"usage: tls_echo server CERT KEY [PORT [WORKERS]]\n"
			"       tls_echo client [-a CAFILE] HOST PORT "
			"LINE...\n");
	return r;
}
