/* SPDX-License-Identifier: MIT */
/*
 * bench/net/ws_load.c — the load client of the ws-echo workload, one
 * client for every server (coev, Go, Python).
 *
 *   ws_load PORT CONNS SECONDS SIZE
 *
 * Opens CONNS WebSocket connections to 127.0.0.1:PORT (the RFC 6455
 * upgrade, its Sec-WebSocket-Accept checked), then for SECONDS keeps one
 * text message of SIZE bytes (at most 125: one-byte length) outstanding
 * on each: send it, wait for the echo, check that the echo is the message,
 * send the next. Every message is different (connection and sequence
 * number in it) and masked with a fresh key, as the RFC asks of clients,
 * so a server that did not echo would be caught. At the end it sends each
 * connection a close frame (1000) and waits up to 3 s for the server to
 * close it.
 *
 * Why C on one epoll loop and not Go: the machine has two cores, one for
 * the server and one for this client, and a client costlier per message
 * than the server would measure itself. Each message here costs one
 * write and one read of a prepared frame, as wrk's HTTP requests do; the
 * WebSocket parts are a handful of bytes of framing (the handshake's
 * SHA-1 and base64 come from Debian's libcrypto).
 *
 * Prints one line:
 *
 *   WSLOAD conns=100 size=32 seconds=10 msgs=... msgs_total=...
 *     msgs_per_s=... p50_us=... p99_us=... client_cpu_pct=...
 *     handshake_ms=... unclean_close=...
 *
 * msgs: round trips completed within the SECONDS window (msgs_per_s =
 * msgs / SECONDS); msgs_total: also those completed after it, before the
 * close (what the server's CPU time over the whole run is divided by);
 * p50_us, p99_us: round-trip time from the write to the echo's last
 * byte; client_cpu_pct: this process's user + system time over the window
 * as a share of one CPU (near 100: the client, not the server, was the
 * limit); unclean_close: connections the server had not closed 3 s after
 * the close frame. Exits 1 on any protocol error, naming the connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 125
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Round-trip histogram: one bucket per microsecond up to HIST_US, the
 * rest in the last bucket. */
#define HIST_US 100000

struct conn {
	int fd;
	unsigned id;
	uint64_t seq;
	int sending;  /* a message is out and its echo awaited */
	int want_out; /* EPOLLOUT registered: a frame is partly written */
	size_t out_len, out_off, in_len;
	double sent_at;
	unsigned char out[6 + MAX_SIZE];
	unsigned char msg[MAX_SIZE];
	unsigned char in[2 + MAX_SIZE];
};

static unsigned size;
static int ep;
static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint32_t hist[HIST_US + 1];

static void die(const char *what, unsigned id)
{
	fprintf(stderr, "ws_load: connection %u: %s\n", id, what);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* xorshift64: the masking keys. The RFC wants them unpredictable to the
 * network; for a loopback benchmark a fresh key per frame is what
 * matters (the server's unmasking does real work on each). */
static uint32_t next_mask(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void write_all(int fd, const char *p, size_t n, unsigned id)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("handshake write failed", id);
		p += w;
		n -= (size_t)w;
	}
}

/* handshake: connect (blocking) and upgrade; checks the 101 status and
 * Sec-WebSocket-Accept = base64(SHA-1(key + GUID)). Returns the fd, made
 * non-blocking. */
static int handshake(int port, unsigned id)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect failed", id);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	unsigned char raw[16], key[32], cat[96], sha[SHA_DIGEST_LENGTH];
	unsigned char accept[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		die("RAND_bytes failed", id);
	EVP_EncodeBlock(key, raw, sizeof(raw));
	snprintf((char *)cat, sizeof(cat), "%s%s", key, WS_GUID);
	SHA1(cat, strlen((char *)cat), sha);
	EVP_EncodeBlock(accept, sha, sizeof(sha));

	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 port, (char *)key);
	write_all(fd, req, (size_t)n, id);

	/* Read byte by byte up to the blank line: the server may send
	 * nothing after it before our first frame, and a short loop over a
	 * small response costs nothing next to the benchmark. */
	char resp[4096];
	size_t got = 0;
	while (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0) {
		if (got == sizeof(resp) - 1)
			die("handshake response too long", id);
		ssize_t r = read(fd, resp + got, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("server closed during the handshake", id);
		got++;
	}
	resp[got] = '\0';
	if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
		die("handshake answered without 101", id);
	char *h = strcasestr(resp, "\r\nSec-WebSocket-Accept:");
	if (h == NULL)
		die("no Sec-WebSocket-Accept", id);
	h += strlen("\r\nSec-WebSocket-Accept:");
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncmp(h, (char *)accept, 28) != 0 ||
	    (h[28] != '\r' && h[28] != ' '))
		die("wrong Sec-WebSocket-Accept", id);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void want_out(struct conn *c, int on)
{
	if (c->want_out == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
				 .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl failed", c->id);
	c->want_out = on;
}

/* flush: write what is left of the frame; EPOLLOUT while some is. */
static void flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off,
				  c->out_len - c->out_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0)
			die("write failed", c->id);
		c->out_off += (size_t)w;
	}
	want_out(c, c->out_off < c->out_len);
}

/* frame: a masked client frame of opcode op carrying p[0..n) into c->out. */
static void frame(struct conn *c, unsigned op, const unsigned char *p, size_t n)
{
	uint32_t m = next_mask();
	unsigned char *k = c->out + 2;
	c->out[0] = (unsigned char)(0x80 | op);
	c->out[1] = (unsigned char)(0x80 | n);
	memcpy(k, &m, 4);
	for (size_t i = 0; i < n; i++)
		c->out[6 + i] = p[i] ^ k[i & 3];
	c->out_len = 6 + n;
	c->out_off = 0;
}

/* send_next: the next message of c, different from every other. */
static void send_next(struct conn *c, double t)
{
	char head[40];
	int n = snprintf(head, sizeof(head), "c%u m%llu ", c->id,
			 (unsigned long long)c->seq++);
	memset(c->msg, 'x', size);
	memcpy(c->msg, head, (size_t)n < size ? (size_t)n : size);
	frame(c, 0x1, c->msg, size);
	c->in_len = 0;
	c->sending = 1;
	c->sent_at = t;
	flush(c);
}

/* receive: read what is left of the echo (never more: one message is
 * outstanding). Returns 1 when the echo is complete and checked. */
static int receive(struct conn *c)
{
	size_t want = 2 + size;
	while (c->in_len < want) {
		ssize_t r = read(c->fd, c->in + c->in_len, want - c->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r == 0)
			die("server closed the connection", c->id);
		if (r < 0)
			die("read failed", c->id);
		c->in_len += (size_t)r;
		if (c->in_len >= 2 && (c->in[0] & 0x0f) == 0x8)
			die("server sent a close frame", c->id);
	}
	if (c->in[0] != 0x81 || c->in[1] != size)
		die("echo is not one unmasked text frame of the message's size",
		    c->id);
	if (memcmp(c->in + 2, c->msg, size) != 0)
		die("echo differs from the message", c->id);
	c->sending = 0;
	return 1;
}

static unsigned percentile(uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total), seen = 0;
	for (unsigned i = 0; i <= HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

/* close_all: a close frame (1000) on each connection, then wait up to 3 s
 * for every server to close; echoes still in flight are read and
 * dropped. Returns how many connections were not closed in time. */
static unsigned close_all(struct conn *cs, unsigned n)
{
	static const unsigned char code[2] = {0x03, 0xe8};
	unsigned open = n;
	for (unsigned i = 0; i < n; i++) {
		frame(&cs[i], 0x8, code, sizeof(code));
		flush(&cs[i]);
	}
	double end = now() + 3;
	struct epoll_event evs[256];
	while (open > 0 && now() < end) {
		int k = epoll_wait(ep, evs, 256, 100);
		for (int j = 0; j < k; j++) {
			struct conn *c = evs[j].data.ptr;
			if (evs[j].events & EPOLLOUT)
				flush(c);
			unsigned char junk[4096];
			ssize_t r = read(c->fd, junk, sizeof(junk));
			if (r == 0 ||
			    (r < 0 && errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				open--;
			}
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (cs[i].fd >= 0)
			close(cs[i].fd);
	return open;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: ws_load PORT CONNS SECONDS SIZE\n");
		return 2;
	}
	int port = atoi(argv[1]);
	unsigned n = (unsigned)atoi(argv[2]);
	double secs = atof(argv[3]);
	size = (unsigned)atoi(argv[4]);
	if (port <= 0 || n == 0 || secs <= 0 || size < 16 || size > MAX_SIZE) {
		fprintf(stderr, "ws_load: bad arguments (SIZE: 16..125)\n");
		return 2;
	}
	struct conn *cs = calloc(n, sizeof(*cs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (cs == NULL || ep < 0)
		die("out of memory or descriptors", 0);
	rng ^= (uint64_t)getpid() << 32;

	double t0 = now();
	for (unsigned i = 0; i < n; i++) {
		cs[i].id = i;
		cs[i].fd = handshake(port, i);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
			die("epoll_ctl failed", i);
	}
	double start = now(), end = start + secs, t = start;
	double cpu0 = cpu_s();
	uint64_t msgs = 0, total = 0;
	for (unsigned i = 0; i < n; i++)
		send_next(&cs[i], t);
	unsigned busy = n;
	struct epoll_event evs[256];
	/* Until the window closes, each echo is answered with the next
	 * message; after, the echoes still in flight are awaited (they count
	 * in msgs_total only), so that the close finds no frame half-way. */
	while (busy > 0) {
		int k = epoll_wait(ep, evs, 256, 100);
		if (k < 0 && errno != EINTR)
			die("epoll_wait failed", 0);
		t = now();
		if (t - end > 5)
			die("echoes still missing 5 s after the window", 0);
		for (int j = 0; j < k; j++) {
			struct conn *c = evs[j].data.ptr;
			if (evs[j].events & EPOLLOUT)
				flush(c);
			if (!(evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			if (!c->sending)
				die("server sent a frame nobody asked for",
				    c->id);
			if (!receive(c))
				continue;
			double rtt = (t - c->sent_at) * 1e6;
			hist[rtt < HIST_US ? (unsigned)rtt : HIST_US]++;
			total++;
			if (t < end) {
				msgs++;
				send_next(c, t);
			} else {
				busy--;
			}
		}
	}
	double cpu = cpu_s() - cpu0;
	unsigned unclean = close_all(cs, n);
	printf("WSLOAD conns=%u size=%u seconds=%g msgs=%llu msgs_total=%llu "
	       "msgs_per_s=%.1f p50_us=%u p99_us=%u client_cpu_pct=%.0f "
	       "handshake_ms=%.1f unclean_close=%u\n",
	       n, size, secs, (unsigned long long)msgs,
	       (unsigned long long)total, (double)msgs / secs,
	       percentile(total, 0.50), percentile(total, 0.99),
	       100 * cpu / secs, (start - t0) * 1e3, unclean);
	free(cs);
	return 0;
}
