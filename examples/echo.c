/* SPDX-License-Identifier: MIT */
/*
 * examples/echo.c — a line echo server, the smallest coev server: one task
 * per client, each reading lines and writing every line straight back.
 * asyncio's version:
 *
 *   async def handle_client(reader, writer):
 *       while line := await reader.readline():
 *           writer.write(line)
 *           await writer.drain()
 *       writer.close()
 *
 *   server = await asyncio.start_server(handle_client, "127.0.0.1", 8007)
 *
 * Run it and talk to it:
 *
 *   make examples
 *   build/examples/echo 8007 &
 *   printf 'hello\nworld\n' | nc -q1 127.0.0.1 8007     # hello, world
 *   kill %1                                             # or Ctrl-C
 *
 * Usage: echo [-i SECS] [PORT [WORKERS]]
 *   PORT     port on 127.0.0.1 (default 8007; 0 picks a free one, printed)
 *   WORKERS  worker threads (default: COEV_WORKERS, else one per CPU)
 *   -i SECS  a client silent this long is disconnected (default 60)
 *
 * What it shows, next to http_hello.c (which keeps its tasks in a scope):
 * fire-and-forget tasks. Each client's task is spawned detached
 * (coev_spawn with a NULL handle) and nobody waits for it. To stop, main
 * cancels the accept loop (coev_cancel, then coev_join) and returns;
 * coev_run() then cancels the client tasks still running, and each closes
 * its socket on the -ECANCELED its read returns.
 */
#include <coev.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_BUF 1024 /* a longer line is echoed in pieces */

static int listen_fd = -1;
static coev_time_t idle_timeout = COEV_SEC(60);

/* Write buf[0..n) to the client; a client that does not read for the idle
 * timeout is as gone as one that does not write. */
static int send_back(int fd, const char *buf, size_t n)
{
	ssize_t r =
		coev_write_all(fd, buf, n, NULL, coev_deadline(idle_timeout));

	return r < 0 ? (int)r : 0;
}

/* handle_client(): read what comes, echo every complete line, keep the
 * incomplete last one until the rest of it arrives. The client's socket is
 * the argument. Ends when the client closes, goes silent, fails, or the
 * server stops (-ECANCELED). Nobody takes the result (the task is
 * detached), so a client that went silent or away is a normal end (0):
 * coev reports a detached task's other errors on stderr, as asyncio
 * reports an exception never retrieved. */
static int echo_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[LINE_BUF];
	size_t len = 0, done;
	ssize_t n;
	int r = 0;

	for (;;) {
		n = coev_read(fd, buf + len, sizeof buf - len,
			      coev_deadline(idle_timeout));
		if (n <= 0) {
			/* End of stream (a last line without '\n' still goes
			 * back), idle timeout, error or cancellation. */
			if (n == 0 && len > 0)
				r = send_back(fd, buf, len);
			else
				r = (int)n;
			break;
		}
		len += (size_t)n;
		/* Everything up to the last newline goes back in one write;
		 * a full buffer without one goes back as it is. */
		for (done = len; done > 0 && buf[done - 1] != '\n'; done--)
			;
		if (done == 0 && len == sizeof buf)
			done = len;
		if ((r = send_back(fd, buf, done)) < 0)
			break;
		memmove(buf, buf + done, len - done);
		len -= done;
	}
	coev_close(fd);
	if (r == -ETIMEDOUT || r == -ECONNRESET || r == -EPIPE)
		r = 0; /* the client went silent or away */
	return r;
}

/* asyncio.start_server's loop: one detached task per client. Runs until
 * it is cancelled (returns 0) or accept fails (returns the error). */
static int accept_loop(void *arg)
{
	int fd, r;

	(void)arg;
	for (;;) {
		fd = coev_accept(listen_fd, NULL, NULL, COEV_FOREVER);
		if (fd == -ECANCELED)
			return 0;
		if (fd == -EMFILE || fd == -ENFILE) {
			/* Out of fds: wait for some client to leave. */
			if (coev_sleep(COEV_MSEC(100)) == -ECANCELED)
				return 0;
			continue;
		}
		if (fd < 0) {
			fprintf(stderr, "echo: accept: %s\n",
				coev_strerror(fd));
			return fd;
		}
		r = coev_spawn_named("client", echo_client,
				     (void *)(intptr_t)fd, NULL);
		if (r < 0) {
			fprintf(stderr, "echo: spawn: %s\n", coev_strerror(r));
			coev_close(fd);
			if (r == -ESHUTDOWN)
				return 0;
		}
	}
}

/* Wait for SIGINT or SIGTERM on the watch main made (arg): asyncio's
 * loop.add_signal_handler, as a task that waits. */
static int wait_for_signal(void *arg)
{
	int s = coev_signal_wait(arg, NULL, COEV_FOREVER);

	if (s == -ECANCELED)
		return 0; /* the accept loop ended first */
	if (s < 0) {
		fprintf(stderr, "echo: signal wait: %s\n", coev_strerror(s));
		return s;
	}
	printf("echo: %s, stopping\n", strsignal(s));
	return 0;
}

/* The first task: run the accept loop and the signal watcher side by side
 * until either ends (asyncio.wait(..., return_when=FIRST_COMPLETED)), then
 * cancel the other; returns 0, or the error that ended either. Clients still
 * connected are cancelled by coev_run() when this returns. */
static int echo_main(void *arg)
{
	coev_task_t *tasks[2];
	int rets[2], r;

	r = coev_spawn_named("accept", accept_loop, NULL, &tasks[0]);
	if (r < 0) {
		fprintf(stderr, "echo: spawn: %s\n", coev_strerror(r));
		return r;
	}
	r = coev_spawn_named("signals", wait_for_signal, arg, &tasks[1]);
	if (r < 0) {
		fprintf(stderr, "echo: spawn: %s\n", coev_strerror(r));
		coev_cancel(tasks[0]);
		(void)coev_join(tasks[0], NULL); /* r is the error */
		return r;
	}
	(void)coev_wait_any(tasks, 2, COEV_FOREVER); /* either one ended */
	coev_cancel(tasks[0]);
	coev_cancel(tasks[1]);
	if ((r = coev_gather(tasks, 2, rets)) < 0)
		return r;
	/* A task cancelled before it first ran ends with -ECANCELED without
	 * running (a signal that came before the accept loop started): that
	 * is the stop asked for, not an error. */
	for (int i = 0; i < 2; i++)
		if (rets[i] < 0 && rets[i] != -ECANCELED)
			return rets[i];
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: echo [-i SECS] [PORT [WORKERS]]\n");
	exit(2);
}

/* A number in [lo, hi] from the command line; exits on a bad one. */
static double number_arg(const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "echo: %s: out of range\n", s);
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned port = 8007;
	static const int stop_signals[] = {SIGINT, SIGTERM};
	coev_signal_t *stop;
	coev_config_t cfg;
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr, "echo: a COEV_* variable is malformed (%s)\n",
			coev_strerror(r));
	while ((opt = getopt(argc, argv, "i:h")) != -1) {
		if (opt != 'i')
			usage();
		idle_timeout = (coev_time_t)(number_arg(optarg, 0.001, 1e6) *
					     (double)COEV_SEC(1));
	}
	if (argc - optind > 2)
		usage();
	if (optind < argc)
		port = (unsigned)number_arg(argv[optind], 0, 65535);
	if (optind + 1 < argc)
		cfg.workers = (unsigned)number_arg(argv[optind + 1], 1,
						   COEV_WORKERS_MAX);

	/* Watched from here on, before the runtime starts: a Ctrl-C from
	 * now on is counted and stops the server, whichever thread the
	 * kernel gives it to. */
	r = coev_signal_new(stop_signals, 2, &stop);
	if (r < 0) {
		fprintf(stderr, "echo: signals: %s\n", coev_strerror(r));
		return EXIT_FAILURE;
	}
	listen_fd = coev_tcp_listen("127.0.0.1", port, 0, 0);
	if (listen_fd < 0) {
		fprintf(stderr, "echo: listen on 127.0.0.1:%u: %s\n", port,
			coev_strerror(listen_fd));
		coev_signal_free(stop);
		return EXIT_FAILURE;
	}
	printf("echo: listening on 127.0.0.1:%d with %u workers\n",
	       coev_sock_port(listen_fd), cfg.workers);
	r = coev_run(echo_main, stop, &cfg);
	if (r < 0)
		fprintf(stderr, "echo: %s\n", coev_strerror(r));
	coev_close(listen_fd);
	coev_signal_free(stop);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
