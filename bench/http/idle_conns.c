/* SPDX-License-Identifier: MIT */
/*
 * bench/http/idle_conns.c — the idle side of the c10k workload.
 *
 *   idle_conns PORT [CONNS] [PATH]
 *
 * Opens CONNS (default 10000) keep-alive connections to 127.0.0.1:PORT,
 * sends one complete GET request for PATH (default "/") on each, reads
 * each response in full (headers and Content-Length body), and then holds
 * every connection open without sending anything more. It prints
 *   READY conns=<n> open_ms=<time to open them all>
 * on stdout once all are established and answered, and waits for SIGTERM
 * or SIGINT; it then checks, without blocking, whether the server closed
 * or wrote to any of them, prints
 *   HELD conns=<n> closed=<closed by the server> extra=<unexpected data>
 * and exits. Exit status 1 on any failure to connect or read a response.
 *
 * Connections are opened in batches: every connection of a batch connects
 * and sends, then every response of the batch is read. A batch stays well
 * below the listen backlogs of the servers (the smallest, tokio's, is
 * 1024), so no SYN is dropped and retried a second later.
 */
#define _GNU_SOURCE /* POLLRDHUP, memmem, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONNS 10000
#define BATCH 200
#define IO_TIMEOUT_S 10

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int die(const char *what, long i)
{
	fprintf(stderr, "idle_conns: connection %ld: %s: %s\n", i, what,
		strerror(errno));
	return 1;
}

static int open_one(const struct sockaddr_in *sa, const char *req, size_t len)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t off = 0;

	if (fd < 0)
		return -1;
	/* Blocking I/O with a timeout: a server that never answers fails
	 * the run instead of hanging it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, req + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Read one response (headers, then Content-Length bytes of body). */
static int read_response(int fd)
{
	char buf[1024];
	size_t have = 0, need = 0;
	char *end = NULL;

	for (;;) {
		ssize_t got;

		if (end && have == need)
			return 0;
		if (end && have > need) {
			errno = EPROTO; /* more than one response */
			return -1;
		}
		if (have == sizeof buf - 1) {
			errno = EMSGSIZE;
			return -1;
		}
		got = read(fd, buf + have, sizeof buf - 1 - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = ECONNRESET;
			return -1;
		}
		have += (size_t)got;
		buf[have] = 0;
		if (!end) {
			char *cl;

			end = memmem(buf, have, "\r\n\r\n", 4);
			if (!end)
				continue;
			*end = 0;
			cl = strcasestr(buf, "\r\ncontent-length:");
			*end = '\r';
			if (!cl) {
				errno = EPROTO;
				return -1;
			}
			need = (size_t)(end - buf) + 4 +
			       strtoul(cl + 17, NULL, 10);
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct rlimit rl;
	sigset_t stop;
	char req[256];
	long port, conns = DEFAULT_CONNS, closed = 0, extra = 0;
	const char *path = argc > 3 ? argv[3] : "/";
	struct pollfd *pf;
	double t0;
	int len, sig;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: idle_conns PORT [CONNS] [PATH]\n");
		return 2;
	}
	port = strtol(argv[1], NULL, 10);
	if (argc > 2)
		conns = strtol(argv[2], NULL, 10);
	if (port <= 0 || port > 65535 || conns <= 0) {
		fprintf(stderr, "idle_conns: bad port or count\n");
		return 2;
	}
	/* The soft descriptor limit is usually 1024: raise it to the hard
	 * limit, which must leave room for every connection. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
	    rl.rlim_cur < (rlim_t)conns + 16) {
		fprintf(stderr,
			"idle_conns: descriptor limit %ld too low for "
			"%ld connections\n",
			(long)rl.rlim_cur, conns);
		return 1;
	}
	/* Blocked now so that sigwait() takes them later. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	len = snprintf(req, sizeof req,
		       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n\r\n", path,
		       port);
	if (len < 0 || (size_t)len >= sizeof req) {
		fprintf(stderr, "idle_conns: path too long\n");
		return 2;
	}
	pf = calloc((size_t)conns, sizeof *pf);
	if (!pf) {
		perror("idle_conns: calloc");
		return 1;
	}
	t0 = now_ms();
	for (long b = 0; b < conns; b += BATCH) {
		long e = b + BATCH < conns ? b + BATCH : conns;

		for (long i = b; i < e; i++) {
			pf[i].fd = open_one(&sa, req, (size_t)len);
			if (pf[i].fd < 0)
				return die("connect or send", i);
			pf[i].events = POLLIN | POLLRDHUP;
		}
		for (long i = b; i < e; i++)
			if (read_response(pf[i].fd) < 0)
				return die("response", i);
	}
	printf("READY conns=%ld open_ms=%.1f\n", conns, now_ms() - t0);
	fflush(stdout);

	while (sigwait(&stop, &sig) != 0)
		;
	if (poll(pf, (nfds_t)conns, 0) > 0) {
		for (long i = 0; i < conns; i++) {
			char c;

			if (!(pf[i].revents &
			      (POLLIN | POLLRDHUP | POLLHUP | POLLERR)))
				continue;
			if (recv(pf[i].fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) > 0)
				extra++;
			else
				closed++;
		}
	}
	printf("HELD conns=%ld closed=%ld extra=%ld\n", conns, closed, extra);
	return 0;
}
