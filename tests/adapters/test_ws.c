/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/test_ws.c — the WebSocket adapter (adapters/ws.c,
 * adapters/ws_handshake.c) against peers that are not coev: Python's
 * websockets (tests/adapters/ws_peer.py, run by /usr/bin/python3) as the
 * client of a coev server and as the server of a coev client, and a raw
 * socket writing frames by hand for the bad input: unmasked frames, an
 * oversize message, invalid UTF-8 split across fragments, fragments
 * interleaved with pings, a peer closing mid-frame, bad upgrade requests.
 * Then a receiver and a sender on one connection at once, deadlines and
 * cancellation, and 10,000 connections held open on one server with the
 * fds and heap counted before and after.
 *
 * Servers listen on 127.0.0.1 with port 0 (the kernel picks; the test
 * reads it back), the Python server prints its port. Python processes are
 * started with posix_spawn and ended by their PID.
 */
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>

#include "../testutil.h"
#include "coev/tls.h"
#include "coev/ws.h"

extern char **environ;

#define PEER "tests/adapters/ws_peer.py"

/* ---- helpers ----------------------------------------------------------- */

/* A listening socket on 127.0.0.1 and its port. */
static int listen_any(int *port)
{
	int lfd = coev_tcp_listen("127.0.0.1", 0, 4096, 0);

	assert_true(lfd >= 0);
	*port = coev_sock_port(lfd);
	assert_true(*port > 0);
	return lfd;
}

/* Accept one connection and do the server handshake. */
static int accept_ws(int lfd, const coev_ws_opts_t *o, coev_ws_t **ws)
{
	coev_stream_t *s = NULL;
	int r, fd = coev_accept(lfd, NULL, NULL, tu_guard());

	if (fd < 0)
		return fd;
	r = coev_stream_fd(fd, 0, &s);
	if (r < 0) {
		coev_close(fd);
		return r;
	}
	r = coev_ws_accept(s, o, ws, tu_guard());
	if (r < 0)
		coev_stream_close(s);
	return r;
}

/* Connect to port and do the client handshake (bufsize for the stream). */
static int connect_ws(int port, size_t bufsize, coev_ws_t **ws)
{
	coev_stream_t *s = NULL;
	int r, fd = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());

	if (fd < 0)
		return fd;
	r = coev_stream_fd(fd, bufsize, &s);
	if (r < 0) {
		coev_close(fd);
		return r;
	}
	r = coev_ws_connect(s, "127.0.0.1", "/t", NULL, ws, tu_guard());
	if (r < 0)
		coev_stream_close(s);
	return r;
}

/* Start /usr/bin/python3 PEER args...; its stdout as a stream. */
static pid_t start_peer(char *const argv[], coev_stream_t **out)
{
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	assert_int_equal(
		posix_spawn(&pid, "/usr/bin/python3", &fa, NULL, argv, environ),
		0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	assert_int_equal(coev_fd_nonblock(p[0]), 0);
	assert_int_equal(coev_stream_fd(p[0], 0, out), 0);
	return pid;
}

static int wait_pid(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	return st;
}

/* A frame by hand: mask NULL for none. Returns its length. */
static size_t frame(unsigned char *b, int fin, int op,
		    const unsigned char *mask, const void *data, size_t n)
{
	size_t h = 2;

	b[0] = (unsigned char)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		b[1] = (unsigned char)n;
	} else {
		b[1] = 126;
		b[2] = (unsigned char)(n >> 8);
		b[3] = (unsigned char)n;
		h = 4;
	}
	if (mask) {
		b[1] |= 0x80;
		memcpy(b + h, mask, 4);
		h += 4;
	}
	for (size_t i = 0; i < n; i++)
		b[h + i] = ((const unsigned char *)data)[i] ^
			   (mask ? mask[i & 3] : 0);
	return h + n;
}

static const unsigned char MASK[4] = {0x11, 0x22, 0x33, 0x44};

/* A raw client: connect, send a valid upgrade, read the 101. */
static coev_stream_t *raw_client(int port)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	char buf[1024];
	coev_stream_t *s = NULL;
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard());

	TU_CHECK(fd >= 0);
	TU_CHECK(coev_stream_fd(fd, 0, &s) == 0);
	TU_CHECK(coev_stream_write(s, req, sizeof(req) - 1, NULL, tu_guard()) ==
		 (ssize_t)sizeof(req) - 1);
	TU_CHECK(coev_stream_flush(s, tu_guard()) == 0);
	ssize_t n = coev_stream_read_until(s, "\r\n\r\n", 4, buf,
					   sizeof(buf) - 1, tu_guard());
	TU_CHECK(n > 0);
	buf[n > 0 ? n : 0] = 0;
	/* The RFC's own example key and accept value (section 1.3). */
	TU_CHECK(strstr(buf, "HTTP/1.1 101") == buf);
	TU_CHECK(strstr(buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
	return s;
}

static void raw_send(coev_stream_t *s, const void *b, size_t n)
{
	TU_CHECK(coev_stream_write(s, b, n, NULL, tu_guard()) == (ssize_t)n);
	TU_CHECK(coev_stream_flush(s, tu_guard()) == 0);
}

/* Read one unmasked frame from the server: its opcode, payload in p. */
static int raw_frame(coev_stream_t *s, unsigned char *p, size_t *n)
{
	unsigned char h[4];

	if (coev_stream_read_exactly(s, h, 2, NULL, tu_guard()) != 2)
		return -1;
	*n = h[1] & 0x7f;
	if (*n == 126) {
		if (coev_stream_read_exactly(s, h + 2, 2, NULL, tu_guard()) !=
		    2)
			return -1;
		*n = (size_t)h[2] << 8 | h[3];
	}
	if (*n &&
	    coev_stream_read_exactly(s, p, *n, NULL, tu_guard()) != (ssize_t)*n)
		return -1;
	return h[0] & 0x0f;
}

/* The close code of the server's next frame, which must be a close. */
static int raw_close_code(coev_stream_t *s)
{
	unsigned char p[256];
	size_t n;
	int op = raw_frame(s, p, &n);

	TU_CHECK_EQ(op, 8);
	return op == 8 && n >= 2 ? p[0] << 8 | p[1] : -1;
}

/* ---- a coev server that records what it receives ------------------------ */

typedef struct {
	int lfd, port;
	coev_ws_opts_t opts;
	int accept_rc;
	int nmsg;	  /* messages received */
	char text[4][64]; /* the first ones, as text */
	int end_rc;	  /* the recv that ended the loop */
	int close_code;
	char reason[64];
	int echo;		/* echo each message back */
	coev_tls_config_t *tls; /* serve wss:// with it (NULL: ws://) */
	const char *cafile;	/* the CA of tls's certificate */
} rec_t;

/* Accept one connection, the TLS handshake, then the WebSocket one. */
static int accept_wss(rec_t *r, coev_ws_t **ws)
{
	coev_stream_t *s = NULL;
	int fd = coev_accept(r->lfd, NULL, NULL, tu_guard()), rc;

	if (fd < 0)
		return fd;
	rc = coev_tls_accept(fd, r->tls, tu_guard(), &s);
	if (rc < 0)
		return rc;
	rc = coev_ws_accept(s, &r->opts, ws, tu_guard());
	if (rc < 0)
		coev_stream_close(s);
	return rc;
}

static int rec_server(void *arg)
{
	rec_t *r = arg;
	coev_ws_t *ws;
	coev_ws_msg_t m;

	r->accept_rc =
		r->tls ? accept_wss(r, &ws) : accept_ws(r->lfd, &r->opts, &ws);
	if (r->accept_rc < 0)
		return 0;
	while ((r->end_rc = coev_ws_recv(ws, &m, tu_guard())) == 0) {
		if (r->nmsg < 4)
			snprintf(r->text[r->nmsg], 64, "%s", (char *)m.data);
		r->nmsg++;
		if (r->echo)
			TU_CHECK(coev_ws_send(ws, m.type, m.data, m.len,
					      tu_guard()) == 0);
		coev_ws_msg_release(&m);
	}
	r->close_code = coev_ws_close_code(ws, r->reason, sizeof(r->reason));
	coev_ws_free(ws);
	return 0;
}

/* Runs fn(r, arg) as the peer of a rec_server, in a runtime of 2 workers. */
typedef struct {
	rec_t *r;
	void (*fn)(rec_t *r);
} rec_run_t;

static int rec_main(void *arg)
{
	rec_run_t *rr = arg;
	coev_task_t *t;

	TU_CHECK(coev_spawn(rec_server, rr->r, &t) == 0);
	rr->fn(rr->r);
	TU_CHECK(coev_join(t, NULL) == 0);
	return 0;
}

static void rec_run(rec_t *r, void (*fn)(rec_t *r))
{
	rec_run_t rr = {r, fn};

	r->lfd = listen_any(&r->port);
	assert_int_equal(tu_run_main(rec_main, &rr, 2), 0);
	coev_close(r->lfd);
	tu_assert_no_failures();
}

/* ---- against Python's websockets --------------------------------------- */

static void py_client(rec_t *r)
{
	char port[16], line[256];
	char *argv[] = {"python3",	   PEER, "client", port,
			(char *)r->cafile, NULL};
	coev_stream_t *out;
	pid_t pid;

	snprintf(port, sizeof(port), "%d", r->port);
	pid = start_peer(argv, &out);
	ssize_t n =
		coev_stream_read_line(out, line, sizeof(line) - 1, tu_guard());
	line[n > 0 ? n : 0] = 0;
	TU_CHECK_MSG(strcmp(line, "client ok\n") == 0, "python said: %s", line);
	coev_stream_close(out);
	int st = wait_pid(pid);
	TU_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Python's client against a coev echo server: text, binary, fragmented,
 * ping, subprotocol and path, and its close code and reason. */
static void test_ws_python_client(void **state)
{
	static const char *const protos[] = {"v1.coev", "v3.coev", NULL};
	rec_t r = {0};

	(void)state;
	r.echo = 1;
	r.opts.protocols = protos;
	rec_run(&r, py_client);
	assert_int_equal(r.accept_rc, 0);
	assert_int_equal(r.nmsg, 3);
	assert_string_equal(r.text[0], "héllo");
	assert_string_equal(r.text[2], "fragmented");
	assert_int_equal(r.end_rc, COEV_EWSCLOSED);
	assert_int_equal(r.close_code, 1000);
	assert_string_equal(r.reason, "bye");
}

typedef struct {
	int rc;
	char closed[128];
	uint64_t pongs;
} pyserv_t;

static int py_server_main(void *arg)
{
	pyserv_t *ps = arg;
	char *argv[] = {"python3", PEER, "server", NULL};
	static char big[70000]; /* larger than a task's stack */
	char line[128];
	coev_stream_t *out;
	coev_ws_t *ws;
	coev_ws_msg_t m;
	pid_t pid = start_peer(argv, &out);
	ssize_t n =
		coev_stream_read_line(out, line, sizeof(line) - 1, tu_guard());
	int port = n > 5 ? atoi(line + 5) : 0;

	TU_CHECK(port > 0);
	ps->rc = connect_ws(port, 0, &ws);
	if (ps->rc == 0) {
		TU_CHECK(coev_ws_send(ws, COEV_WS_TEXT, "ciao", 4,
				      tu_guard()) == 0);
		TU_CHECK(coev_ws_recv(ws, &m, tu_guard()) == 0);
		TU_CHECK(m.type == COEV_WS_TEXT && m.len == 4 &&
			 memcmp(m.data, "ciao", 4) == 0);
		coev_ws_msg_release(&m);
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (char)(i * 7);
		TU_CHECK(coev_ws_send(ws, COEV_WS_BINARY, big, sizeof(big),
				      tu_guard()) == 0);
		TU_CHECK(coev_ws_ping(ws, "pp", 2, tu_guard()) == 0);
		TU_CHECK(coev_ws_recv(ws, &m, tu_guard()) == 0);
		TU_CHECK(m.type == COEV_WS_BINARY && m.len == sizeof(big) &&
			 memcmp(m.data, big, sizeof(big)) == 0);
		coev_ws_msg_release(&m);
		TU_CHECK(coev_ws_close(ws, 4000, "done", tu_guard()) == 0);
		ps->pongs = coev_ws_pongs(ws);
		TU_CHECK(coev_ws_recv(ws, &m, tu_guard()) == COEV_EWSCLOSED);
		TU_CHECK(coev_ws_close_code(ws, NULL, 0) == 4000);
		coev_ws_free(ws);
	}
	n = coev_stream_read_line(out, ps->closed, sizeof(ps->closed) - 1,
				  tu_guard());
	ps->closed[n > 0 ? n : 0] = 0;
	kill(pid, SIGTERM);
	wait_pid(pid);
	coev_stream_close(out);
	return 0;
}

/* A coev client against Python's echo server. */
static void test_ws_python_server(void **state)
{
	pyserv_t ps = {0};

	(void)state;
	assert_int_equal(tu_run_main(py_server_main, &ps, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(ps.rc, 0);
	assert_string_equal(ps.closed, "closed 4000 done\n");
	/* The pong was read while the close waited for the peer's close. */
	assert_int_equal(ps.pongs, 1);
}

/* ---- over TLS (wss://) ------------------------------------------------------ */

static coev_tls_config_t *wss_client_cfg;

/* A CA and a certificate for localhost, made with the openssl CLI. */
static int make_certs(const char *dir)
{
	char cmd[2048];
	const char *req = "openssl req -newkey ec -pkeyopt "
			  "ec_paramgen_curve:P-256 -nodes";

	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; exec 2>openssl.log; "
		 "%s -x509 -days 2 -keyout ca.key -out ca.pem -subj /CN=ws-CA "
		 "-addext basicConstraints=critical,CA:TRUE; "
		 "printf 'subjectAltName=DNS:localhost\\n' >srv.ext; "
		 "%s -keyout srv.key -out srv.csr -subj /CN=localhost; "
		 "openssl x509 -req -days 2 -CA ca.pem -CAkey ca.key "
		 "-CAcreateserial -in srv.csr -out srv.pem -extfile srv.ext",
		 dir, req, req);
	return system(cmd) == 0 ? 0 : -1;
}

static void wss_client(rec_t *r)
{
	coev_stream_t *s = NULL;
	coev_ws_t *ws;
	coev_ws_msg_t m;

	TU_CHECK(coev_tls_connect("localhost", (unsigned)r->port,
				  wss_client_cfg, tu_guard(), &s) == 0);
	TU_CHECK(coev_ws_connect(s, "localhost", "/secure", NULL, &ws,
				 tu_guard()) == 0);
	TU_CHECK(coev_ws_send(ws, COEV_WS_TEXT, "sealed", 6, tu_guard()) == 0);
	TU_CHECK(coev_ws_recv(ws, &m, tu_guard()) == 0);
	TU_CHECK(m.len == 6 && memcmp(m.data, "sealed", 6) == 0);
	coev_ws_msg_release(&m);
	TU_CHECK(coev_ws_close(ws, 1000, "tls bye", tu_guard()) == 0);
	coev_ws_free(ws);
}

/* WebSockets over coev's TLS streams: Python's websockets as a wss://
 * client of a coev server, then a coev client of the same server. */
static void test_ws_over_tls(void **state)
{
	static const char *const protos[] = {"v1.coev", NULL};
	char dir[128], ca[192], cert[192], key[192];
	coev_tls_config_t *srv;
	rec_t r = {0};

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir)), 0);
	assert_int_equal(make_certs(dir), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	assert_int_equal(coev_tls_config_new(COEV_TLS_SERVER, &srv), 0);
	assert_int_equal(coev_tls_config_cert(srv, cert, key), 0);
	assert_int_equal(coev_tls_config_new(COEV_TLS_CLIENT, &wss_client_cfg),
			 0);
	assert_int_equal(coev_tls_config_ca(wss_client_cfg, ca, NULL), 0);

	r.tls = srv;
	r.cafile = ca;
	r.echo = 1;
	r.opts.protocols = protos;
	rec_run(&r, py_client);
	assert_int_equal(r.accept_rc, 0);
	assert_int_equal(r.nmsg, 3);
	assert_string_equal(r.text[2], "fragmented");
	assert_int_equal(r.close_code, 1000);

	memset(&r, 0, sizeof(r));
	r.tls = srv;
	r.echo = 1;
	rec_run(&r, wss_client);
	assert_int_equal(r.accept_rc, 0);
	assert_int_equal(r.nmsg, 1);
	assert_int_equal(r.end_rc, COEV_EWSCLOSED);
	assert_int_equal(r.close_code, 1000);
	assert_string_equal(r.reason, "tls bye");

	coev_tls_config_free(wss_client_cfg);
	coev_tls_config_free(srv);
	tu_rmtree(dir);
}

/* ---- bad input, by hand --------------------------------------------------- */

static void unmasked(rec_t *r)
{
	unsigned char b[64];
	coev_stream_t *s = raw_client(r->port);

	raw_send(s, b, frame(b, 1, 1, NULL, "hi", 2));
	TU_CHECK_EQ(raw_close_code(s), 1002);
	coev_stream_close(s);
}

/* A client frame without a mask: close 1002, -EPROTO. */
static void test_ws_unmasked_client_frame(void **state)
{
	rec_t r = {0};

	(void)state;
	rec_run(&r, unmasked);
	assert_int_equal(r.nmsg, 0);
	assert_int_equal(r.end_rc, -EPROTO);
}

static void oversize(rec_t *r)
{
	unsigned char b[3000], d[2000];
	coev_stream_t *s = raw_client(r->port);

	memset(d, 'x', sizeof(d));
	raw_send(s, b, frame(b, 1, 1, MASK, d, 900)); /* within the limit */
	raw_send(s, b, frame(b, 1, 2, MASK, d, sizeof(d)));
	TU_CHECK_EQ(raw_close_code(s), 1009);
	coev_stream_close(s);
}

/* A message over max_message: close 1009, -EMSGSIZE, after the one that
 * fitted was delivered. */
static void test_ws_oversize_message(void **state)
{
	rec_t r = {0};

	(void)state;
	r.opts.max_message = 1000;
	rec_run(&r, oversize);
	assert_int_equal(r.nmsg, 1);
	assert_int_equal(r.end_rc, -EMSGSIZE);
}

static void bad_utf8(rec_t *r)
{
	unsigned char b[64];
	coev_stream_t *s = raw_client(r->port);

	/* The euro sign split between two fragments: valid. */
	raw_send(s, b, frame(b, 0, 1, MASK, "\xE2\x82", 2));
	raw_send(s, b, frame(b, 1, 0, MASK, "\xAC", 1));
	/* E2 82 followed by '(' in the next fragment: invalid. */
	raw_send(s, b, frame(b, 0, 1, MASK, "ok\xE2\x82", 4));
	raw_send(s, b, frame(b, 1, 0, MASK, "(", 1));
	TU_CHECK_EQ(raw_close_code(s), 1007);
	coev_stream_close(s);
}

/* Invalid UTF-8 across fragments: close 1007, -EILSEQ. */
static void test_ws_invalid_utf8_across_fragments(void **state)
{
	rec_t r = {0};

	(void)state;
	rec_run(&r, bad_utf8);
	assert_int_equal(r.nmsg, 1);
	assert_string_equal(r.text[0], "\xE2\x82\xAC");
	assert_int_equal(r.end_rc, -EILSEQ);
}

static void frag_pings(rec_t *r)
{
	unsigned char b[64], p[64];
	size_t n;
	coev_stream_t *s = raw_client(r->port);

	raw_send(s, b, frame(b, 0, 1, MASK, "one ", 4));
	raw_send(s, b, frame(b, 1, 9, MASK, "p", 1));
	raw_send(s, b, frame(b, 0, 0, MASK, "two ", 4));
	raw_send(s, b, frame(b, 1, 9, MASK, "q", 1));
	raw_send(s, b, frame(b, 1, 0, MASK, "three", 5));
	TU_CHECK_EQ(raw_frame(s, p, &n), 10);
	TU_CHECK(n == 1 && p[0] == 'p');
	TU_CHECK_EQ(raw_frame(s, p, &n), 10);
	TU_CHECK(n == 1 && p[0] == 'q');
	/* The echo of the joined message. */
	TU_CHECK_EQ(raw_frame(s, p, &n), 1);
	TU_CHECK(n == 13 && memcmp(p, "one two three", 13) == 0);
	raw_send(s, b, frame(b, 1, 8, MASK, "\x03\xe8", 2));
	TU_CHECK_EQ(raw_close_code(s), 1000);
	coev_stream_close(s);
}

/* Pings between a message's fragments are answered at once, the message
 * is joined, a close is answered with a close. */
static void test_ws_fragments_interleaved_with_pings(void **state)
{
	rec_t r = {0};

	(void)state;
	r.echo = 1;
	rec_run(&r, frag_pings);
	assert_int_equal(r.nmsg, 1);
	assert_string_equal(r.text[0], "one two three");
	assert_int_equal(r.end_rc, COEV_EWSCLOSED);
	assert_int_equal(r.close_code, 1000);
}

static void mid_frame(rec_t *r)
{
	unsigned char b[256], d[100];
	coev_stream_t *s = raw_client(r->port);

	memset(d, 'y', sizeof(d));
	/* A frame of 100 bytes of which 30 arrive, then the connection ends. */
	raw_send(s, b, frame(b, 1, 2, MASK, d, sizeof(d)) - 70);
	coev_stream_close(s);
}

/* The peer drops the connection mid-frame: COEV_EEOF, code 1006. */
static void test_ws_peer_closes_mid_frame(void **state)
{
	rec_t r = {0};

	(void)state;
	rec_run(&r, mid_frame);
	assert_int_equal(r.nmsg, 0);
	assert_int_equal(r.end_rc, COEV_EEOF);
	assert_int_equal(r.close_code, COEV_WS_ABNORMAL);
}

/* Send a request; return the status line of the answer. */
static void bad_request(rec_t *r, const char *req, const char *want)
{
	char buf[1024];
	coev_stream_t *s = NULL;
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)r->port, tu_guard());

	TU_CHECK(fd >= 0 && coev_stream_fd(fd, 0, &s) == 0);
	if (!s)
		return;
	raw_send(s, req, strlen(req));
	ssize_t n = coev_stream_read_until(s, "\r\n\r\n", 4, buf,
					   sizeof(buf) - 1, tu_guard());
	buf[n > 0 ? n : 0] = 0;
	TU_CHECK_MSG(strncmp(buf, want, strlen(want)) == 0, "answer: %s", buf);
	coev_stream_close(s);
}

static void version_8(rec_t *r)
{
	bad_request(r,
		    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		    "Connection: keep-alive, Upgrade\r\n"
		    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 8\r\n\r\n",
		    "HTTP/1.1 426 ");
}

static void no_key(rec_t *r)
{
	bad_request(r,
		    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
		    "HTTP/1.1 400 ");
}

/* Bad upgrade requests are answered 426 or 400 and fail with -EPROTO. */
static void test_ws_bad_handshake(void **state)
{
	rec_t r = {0};

	(void)state;
	rec_run(&r, version_8);
	assert_int_equal(r.accept_rc, -EPROTO);
	memset(&r, 0, sizeof(r));
	rec_run(&r, no_key);
	assert_int_equal(r.accept_rc, -EPROTO);
}

/* ---- one receiver and one sender at once; deadlines; cancellation -------- */

#define CONC_N TU_SCALE(2000, 500, 200)

typedef struct {
	coev_ws_t *ws;
	int got;
	coev_task_t *peer; /* recv_block's handle, for cancel */
} conc_t;

static int conc_recv(void *arg)
{
	conc_t *c = arg;
	coev_ws_msg_t m;

	for (int i = 0; i < CONC_N; i++) {
		int r = coev_ws_recv(c->ws, &m, tu_guard());
		TU_CHECK_EQ(r, 0);
		if (r)
			return 0;
		TU_CHECK_EQ(atoi((char *)m.data), i);
		coev_ws_msg_release(&m);
		c->got++;
	}
	return 0;
}

static int recv_block(void *arg)
{
	conc_t *c = arg;
	coev_ws_msg_t m;

	return coev_ws_recv(c->ws, &m, COEV_FOREVER);
}

static void concurrent(rec_t *r)
{
	conc_t c = {0};
	coev_task_t *t;
	coev_ws_msg_t m;
	char txt[32];
	int ret = 0;

	TU_CHECK(connect_ws(r->port, 0, &c.ws) == 0);
	TU_CHECK(coev_spawn(conc_recv, &c, &t) == 0);
	for (int i = 0; i < CONC_N; i++) {
		int n = snprintf(txt, sizeof(txt), "%d", i);
		TU_CHECK_EQ(coev_ws_send(c.ws, COEV_WS_TEXT, txt, (size_t)n,
					 tu_guard()),
			    0);
	}
	TU_CHECK(coev_join(t, NULL) == 0);
	TU_CHECK_EQ(c.got, CONC_N);
	/* Nothing in flight: a deadline ends the wait and loses nothing. */
	TU_CHECK_EQ(coev_ws_recv(c.ws, &m, coev_deadline(COEV_MSEC(30))),
		    -ETIMEDOUT);
	TU_CHECK(coev_spawn(recv_block, &c, &t) == 0);
	coev_sleep(COEV_MSEC(20)); /* not synchronisation: either order works */
	TU_CHECK(coev_cancel(t) == 0);
	TU_CHECK(coev_join(t, &ret) == 0);
	TU_CHECK_EQ(ret, -ECANCELED);
	/* Still usable after both. */
	TU_CHECK_EQ(coev_ws_send(c.ws, COEV_WS_TEXT, "after", 5, tu_guard()),
		    0);
	TU_CHECK_EQ(coev_ws_recv(c.ws, &m, tu_guard()), 0);
	TU_CHECK(m.len == 5 && memcmp(m.data, "after", 5) == 0);
	coev_ws_msg_release(&m);
	TU_CHECK_EQ(coev_ws_close(c.ws, 1001, NULL, tu_guard()), 0);
	coev_ws_free(c.ws);
}

/* A receiver task and a sender task on one client connection, on two
 * workers; then a recv that times out and one that is cancelled, after
 * which the connection still works; then a close with 1001. */
static void test_ws_receiver_and_sender_at_once(void **state)
{
	rec_t r = {0};

	(void)state;
	r.echo = 1;
	rec_run(&r, concurrent);
	assert_int_equal(r.nmsg, CONC_N + 1);
	assert_int_equal(r.end_rc, COEV_EWSCLOSED);
	assert_int_equal(r.close_code, 1001);
}

/* ---- 10,000 connections held open ------------------------------------------ */

#define MANY TU_SCALE(10000, 2000, 1000)
#define MANY_BUF 512 /* stream buffers per connection, each way */
#define MANY_FDS (MANY + 256)

/*
 * The clients run in a child process, so that each process needs only
 * MANY fds (a container's hard limit may be 20,000). The child connects
 * all, waits for a byte on go (the server holds them all open), closes
 * each cleanly and exits 0.
 */
typedef struct {
	int lfd, port, go;
	atomic_int open;  /* server connections past the handshake */
	atomic_int ended; /* server handlers that saw the close */
} many_t;

static many_t *many; /* the test's state, for the handlers */

static int many_conn(void *arg)
{
	coev_ws_t *ws;
	coev_stream_t *s = NULL;
	coev_ws_msg_t m;
	int fd = (int)(intptr_t)arg;

	TU_CHECK(coev_stream_fd(fd, MANY_BUF, &s) == 0);
	TU_CHECK(coev_ws_accept(s, NULL, &ws, tu_guard()) == 0);
	atomic_fetch_add(&many->open, 1);
	TU_CHECK_EQ(coev_ws_recv(ws, &m, tu_guard()), COEV_EWSCLOSED);
	atomic_fetch_add(&many->ended, 1);
	coev_ws_free(ws);
	return 0;
}

/* One acceptor (a listening fd takes one waiting task), a task per
 * connection. */
static int many_accept(void *arg)
{
	many_t *mt = arg;

	for (int i = 0; i < MANY; i++) {
		int fd = coev_accept(mt->lfd, NULL, NULL, tu_guard());
		TU_CHECK(fd >= 0);
		if (fd < 0)
			return 0;
		TU_CHECK(coev_spawn(many_conn, (void *)(intptr_t)fd, NULL) ==
			 0);
	}
	return 0;
}

static int many_clients(void *arg)
{
	many_t *mt = arg;
	coev_ws_t **c = calloc(MANY, sizeof(*c));
	char b;
	int bad = 0;

	for (int i = 0; c && i < MANY; i++)
		bad += connect_ws(mt->port, MANY_BUF, &c[i]) != 0;
	bad += !c || coev_read(mt->go, &b, 1, tu_guard()) != 1;
	for (int i = 0; c && i < MANY; i++) {
		bad += c[i] && coev_ws_close(c[i], 1000, NULL, tu_guard()) != 0;
		coev_ws_free(c[i]);
	}
	free(c);
	return bad;
}

static int many_server(void *arg)
{
	many_t *mt = arg;
	coev_time_t guard = tu_guard();

	many = mt;
	TU_CHECK(coev_spawn(many_accept, mt, NULL) == 0);
	while (atomic_load(&mt->open) < MANY && coev_now() < guard)
		coev_sleep(COEV_MSEC(10)); /* polls a count, with a guard */
	/* All held open at once: every handler is waiting in recv. */
	TU_CHECK_EQ(atomic_load(&mt->open), MANY);
	TU_CHECK_EQ(atomic_load(&mt->ended), 0);
	TU_CHECK(write(mt->go, "g", 1) == 1);
	while (atomic_load(&mt->ended) < MANY && coev_now() < guard)
		coev_sleep(COEV_MSEC(10));
	return 0;
}

/* 10,000 WebSocket connections open at once on one server (coev clients
 * in a child process), closed cleanly; fds and heap back to where they
 * were. */
static void test_ws_ten_thousand_connections(void **state)
{
	many_t mt = {0};
	struct rlimit old;
	int sv[2], st;

	(void)state;
	if (tu_raise_nofile((rlim_t)MANY_FDS, &old) < 0) {
		print_message("skipped: RLIMIT_NOFILE cannot be raised to %d\n",
			      MANY_FDS);
		skip();
	}
	int fds = tu_fd_count();
	size_t heap = mallinfo2().uordblks;

	mt.lfd = listen_any(&mt.port);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		mt.go = sv[1];
		coev_fd_nonblock(mt.go);
		_exit(tu_run_main(many_clients, &mt, 2) == 0 ? 0 : 1);
	}
	close(sv[1]);
	mt.go = sv[0];
	assert_int_equal(tu_run_main(many_server, &mt, 2), 0);
	st = wait_pid(pid);
	close(sv[0]);
	coev_close(mt.lfd);
	tu_assert_no_failures();
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(atomic_load(&mt.ended), MANY);
	assert_int_equal(tu_fd_count(), fds);
	size_t after = mallinfo2().uordblks;
#if defined(COEV_ASAN) || defined(COEV_TSAN)
	/* The sanitizers' allocators do not report to mallinfo2 (both read
	 * 0); LeakSanitizer checks the heap at exit instead. */
	print_message("%d connections; heap not counted under a sanitizer\n",
		      MANY);
#else
	print_message("%d connections; heap in use %zu bytes before, %zu "
		      "after\n",
		      MANY, heap, after);
#endif
	/* Nothing per connection stays but the runtime's fd table entries,
	 * kept for every fd number once used (a page per 1,024 numbers,
	 * coev/io.h): under 64 bytes each. */
	assert_true(after < heap + (size_t)MANY * 64);
	setrlimit(RLIMIT_NOFILE, &old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_ws_python_client),
		TU_FD_TEST(test_ws_python_server),
		TU_FD_TEST(test_ws_over_tls),
		TU_FD_TEST(test_ws_unmasked_client_frame),
		TU_FD_TEST(test_ws_oversize_message),
		TU_FD_TEST(test_ws_invalid_utf8_across_fragments),
		TU_FD_TEST(test_ws_fragments_interleaved_with_pings),
		TU_FD_TEST(test_ws_peer_closes_mid_frame),
		TU_FD_TEST(test_ws_bad_handshake),
		TU_FD_TEST(test_ws_receiver_and_sender_at_once),
		cmocka_unit_test(test_ws_ten_thousand_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
