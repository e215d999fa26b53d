/* SPDX-License-Identifier: MIT */
/*
 * tests/adapters/test_tls.c — the TLS adapter (include/coev/tls.h,
 * adapters/tls.c, adapters/tls_stream.c) against TLS peers that are not
 * coev, on 127.0.0.1: tests/adapters/tls_peer.py (Python's ssl module,
 * run as /usr/bin/python3) as server and client, `openssl s_server -rev`
 * and `openssl s_client`. Each peer is started here and waited for (and
 * killed if need be) by its PID; its exit status says whether it saw
 * what it expected (an echo, a close_notify).
 *
 * The certificates are made at start by the openssl CLI in a private
 * folder under $TMPDIR: a CA; "localhost" (with IP 127.0.0.1),
 * "other.test" and an expired "localhost" signed by it; a self-signed
 * "localhost".
 *
 * Cases: a client's echo with SNI and ALPN seen by the server, a line
 * read back a byte at a time (from what the SSL holds while the socket is
 * drained), its clean shutdown both ways; s_server's reversed echo; a server's echo to a
 * Python client, and to s_client; per-name certificates (SNI) on the
 * server; client certificates a server asks for (signed, none,
 * self-signed); an untrusted and an expired certificate (COEV_ECERT) and a
 * wrong name (COEV_EHOSTNAME), each with OpenSSL's reason, which every
 * later call repeats (as truncation's does); a peer silent
 * after accepting, and one that stops mid-record (-ETIMEDOUT at the
 * deadline); cancellation in the handshake (-ECANCELED); a read's
 * deadline and cancellation, after which the connection still works; a
 * write's deadline against a peer that stops reading; truncation
 * (COEV_ETLS); a reader task and a writer task at once on one connection
 * moving 8 MB each way; as streams, coev_tls_connect with 4 MB through
 * coev_stream_read_exactly while a writer task writes, and
 * coev_tls_accept with lines; a stream shut down before its handshake
 * (close_notify still sent); a stream's large write cut by its deadline
 * and followed by other bytes (the peer reads exactly the accepted head,
 * then them); the config's bad input. Every test checks
 * that it leaves no fd open.
 */
#include "tests/testutil.h"

#include <fcntl.h>
#include <spawn.h>

#include <openssl/err.h>

#include "coev/stream.h"
#include "coev/tls.h"

extern char **environ;

static char dir[128];
static char peer_py[512];

/* dir/name. */
static const char *path_of(const char *name)
{
	static char buf[8][256];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* ---- certificates --------------------------------------------------------- */

/* Makes the certificates with the openssl CLI. Returns 0 or -1. */
static int make_certs(void)
{
	char cmd[4096];
	const char *req = "openssl req -newkey ec -pkeyopt "
			  "ec_paramgen_curve:P-256 -nodes";
	const char *sign = "openssl x509 -req -days 2 -CA ca.pem -CAkey ca.key "
			   "-CAcreateserial";

	snprintf(cmd, sizeof cmd,
		 "set -e; cd '%s'; exec 2>openssl.log; "
		 "%s -x509 -days 2 -keyout ca.key -out ca.pem "
		 "-subj /CN=coev-test-CA "
		 "-addext basicConstraints=critical,CA:TRUE "
		 "-addext keyUsage=critical,keyCertSign,cRLSign; "
		 "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' "
		 ">srv.ext; "
		 "printf 'subjectAltName=DNS:other.test\\n' >other.ext; "
		 "%s -keyout srv.key -out srv.csr -subj /CN=localhost; "
		 "%s -in srv.csr -out srv.pem -extfile srv.ext; "
		 "%s -keyout other.key -out other.csr -subj /CN=other.test; "
		 "%s -in other.csr -out other.pem -extfile other.ext; "
		 "%s -keyout expired.key -out expired.csr -subj /CN=localhost; "
		 "%s -in expired.csr -out expired.pem -extfile srv.ext "
		 "-days -1; "
		 "%s -x509 -days 2 -keyout self.key -out self.pem "
		 "-subj /CN=localhost -addext subjectAltName=DNS:localhost",
		 dir, req, req, sign, req, sign, req, sign, req);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- peers ---------------------------------------------------------------- */

struct peer {
	pid_t pid;
	int port;
};

/* Starts argv with stdin from in_path (NULL: /dev/null) and stdout to
 * a pipe whose read end *out_fd receives, or else to out_path (NULL: the
 * test's own stdout). */
static pid_t spawn(char *const argv[], const char *in_path,
		   const char *out_path, int *out_fd)
{
	posix_spawn_file_actions_t fa;
	int p[2] = {-1, -1};
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(
		&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
	if (out_fd) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	} else if (out_path) {
		posix_spawn_file_actions_addopen(
			&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	}
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	if (out_fd) {
		close(p[1]);
		*out_fd = p[0];
	}
	return pid;
}

/* Reads one line (up to a newline or EOF) from fd into buf. */
static void read_line_fd(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0 || buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
}

/* tls_peer.py server MODE with cert/key (names in dir) and extra (may be
 * NULL); *p gets its PID and port. */
static void peer_server(struct peer *p, const char *mode, const char *cert,
			const char *key, const char *extra)
{
	char c[300], k[300], line[64];
	char *argv[] = {"/usr/bin/python3", peer_py, "server",
			(char *)mode,	    c,	     k,
			(char *)extra,	    NULL};
	int fd;

	snprintf(c, sizeof c, "cert=%s", path_of(cert));
	snprintf(k, sizeof k, "key=%s", path_of(key));
	p->pid = spawn(argv, NULL, NULL, &fd);
	read_line_fd(fd, line, sizeof line);
	close(fd);
	p->port = atoi(line);
	assert_true(p->port > 0);
}

/* Waits for p to exit (killing it after the guard) and returns its exit
 * status, or -1 when it did not exit by itself. */
static int peer_wait(struct peer *p)
{
	coev_time_t dl = tu_guard();
	int st;

	while (waitpid(p->pid, &st, WNOHANG) == 0) {
		if (coev_now() > dl) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			return -1;
		}
		tu_nap_ms(5);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- helpers for tasks ----------------------------------------------------- */

/* A client config trusting the test CA only. */
static coev_tls_config_t *client_cfg(void)
{
	coev_tls_config_t *cfg = NULL;

	TU_CHECK_EQ(coev_tls_config_new(COEV_TLS_CLIENT, &cfg), 0);
	TU_CHECK_EQ(coev_tls_config_ca(cfg, path_of("ca.pem"), NULL), 0);
	return cfg;
}

/* A server config with the "localhost" certificate. */
static coev_tls_config_t *server_cfg(void)
{
	coev_tls_config_t *cfg = NULL;

	TU_CHECK_EQ(coev_tls_config_new(COEV_TLS_SERVER, &cfg), 0);
	TU_CHECK_EQ(coev_tls_config_cert(cfg, path_of("srv.pem"),
					 path_of("srv.key")),
		    0);
	return cfg;
}

/* Connects to 127.0.0.1:port as a client of cfg proving host; the
 * handshake's result, with *out the connection (NULL if the TCP connect
 * failed). */
static int client_handshake(coev_tls_config_t *cfg, int port, const char *host,
			    coev_time_t dl, coev_tls_t **out)
{
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)port, dl);

	*out = NULL;
	TU_CHECK(fd >= 0);
	if (fd < 0)
		return fd;
	int rc = coev_tls_new(cfg, fd, host, out);
	TU_CHECK_EQ(rc, 0);
	if (rc < 0) {
		coev_close(fd);
		return rc;
	}
	return coev_tls_handshake(*out, dl);
}

/* Reads from t until n bytes or a newline; the count, or a code. */
static ssize_t read_line_tls(coev_tls_t *t, char *buf, size_t n)
{
	size_t got = 0;

	while (got + 1 < n) {
		ssize_t r =
			coev_tls_read(t, buf + got, n - 1 - got, tu_guard());
		if (r <= 0)
			return r;
		got += (size_t)r;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Writes all of buf to t. */
static int write_all_tls(coev_tls_t *t, const void *buf, size_t n)
{
	for (size_t at = 0; at < n;) {
		ssize_t w = coev_tls_write(t, (const char *)buf + at, n - at,
					   tu_guard());
		if (w < 0)
			return (int)w;
		at += (size_t)w;
	}
	return 0;
}

/* ---- a client against Python: SNI, ALPN, echo, clean shutdown ------------ */

static int client_echo_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t;
	char line[128];

	TU_CHECK_EQ(coev_tls_config_alpn(cfg, "h2,http/1.1"), 0);
	TU_CHECK_EQ(client_handshake(cfg, p->port, "localhost", tu_guard(), &t),
		    0);
	TU_CHECK_EQ(strcmp(coev_tls_version(t), "TLSv1.3"), 0);
	TU_CHECK(coev_tls_alpn(t) && strcmp(coev_tls_alpn(t), "http/1.1") == 0);
	TU_CHECK(read_line_tls(t, line, sizeof line) > 0);
	TU_CHECK_MSG(strcmp(line, "SNI=localhost ALPN=http/1.1\n") == 0,
		     "server said %s", line);
	TU_CHECK_EQ(write_all_tls(t, "ping\n", 5), 0);
	TU_CHECK_EQ(read_line_tls(t, line, sizeof line), 5);
	TU_CHECK_EQ(strcmp(line, "ping\n"), 0);
	/* A line read back a byte at a time: after the first byte the rest
	 * waits decrypted in the SSL while the socket is drained, and each
	 * read must take it from there instead of waiting for the fd. */
	for (size_t i = 0; i < 99; i++)
		line[i] = (char)('a' + i % 26);
	line[99] = '\n';
	TU_CHECK_EQ(write_all_tls(t, line, 100), 0);
	for (size_t i = 0; i < 100; i++) {
		char c = 0;

		TU_CHECK_EQ(coev_tls_read(t, &c, 1, tu_guard()), 1);
		TU_CHECK_EQ(c, i < 99 ? (char)('a' + i % 26) : '\n');
	}
	/* Our close_notify; the server answers with its own: end of stream. */
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), 0);
	TU_CHECK_EQ(coev_tls_read(t, line, sizeof line, tu_guard()), 0);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_client_echo_sni_alpn(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "sni", "srv.pem", "srv.key", "alpn=spdy/1,http/1.1");
	assert_int_equal(tu_run_main(client_echo_main, &p, 2), 0);
	tu_assert_no_failures();
	/* The peer exits 0 only after our close_notify. */
	assert_int_equal(peer_wait(&p), 0);
}

/* ---- a client against openssl s_server -rev ------------------------------- */

static int s_server_main(void *arg)
{
	int port = *(int *)arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t;
	char line[64];

	/* By its address: verified against the certificate's IP entry. */
	TU_CHECK_EQ(client_handshake(cfg, port, "127.0.0.1", tu_guard(), &t),
		    0);
	TU_CHECK_EQ(write_all_tls(t, "hello tls\n", 10), 0);
	TU_CHECK_EQ(read_line_tls(t, line, sizeof line), 10);
	TU_CHECK_MSG(strcmp(line, "slt olleh\n") == 0, "got %s", line);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), 0);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_client_openssl_s_server(void **state)
{
	int port = 21100 + (int)(getpid() % 100), fd;
	char accept[64], line[128];
	char *argv[] = {"/usr/bin/openssl",
			"s_server",
			"-accept",
			accept,
			"-cert",
			(char *)path_of("srv.pem"),
			"-key",
			(char *)path_of("srv.key"),
			"-rev",
			"-naccept",
			"1",
			NULL};
	struct peer p;

	(void)state;
	snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
	p.pid = spawn(argv, NULL, NULL, &fd);
	/* s_server says ACCEPT once it listens. */
	do
		read_line_fd(fd, line, sizeof line);
	while (line[0] && strcmp(line, "ACCEPT") != 0);
	assert_string_equal(line, "ACCEPT");
	assert_int_equal(tu_run_main(s_server_main, &port, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
	close(fd);
}

/* ---- a server: Python and s_client as clients, SNI certificates ---------- */

struct serve_arg {
	const char *client; /* "python" or "s_client" */
	const char *name;   /* the host name the client asks for */
	const char *size;   /* python: bytes to echo, or NULL */
	struct peer p;
};

/* Starts the client of a for port (in a task: posix_spawn never waits
 * long). */
static void start_client(struct serve_arg *a, int port)
{
	char ca[300], po[32], nm[64], sz[64], connect[64];

	snprintf(ca, sizeof ca, "ca=%s", path_of("ca.pem"));
	snprintf(po, sizeof po, "port=%d", port);
	snprintf(nm, sizeof nm, "name=%s", a->name);
	snprintf(sz, sizeof sz, "size=%s", a->size ? a->size : "");
	snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
	if (strcmp(a->client, "python") == 0) {
		char *argv[] = {"/usr/bin/python3",
				peer_py,
				"client",
				"echo",
				ca,
				po,
				nm,
				a->size ? sz : NULL,
				NULL};
		a->p.pid = spawn(argv, NULL, NULL, NULL);
	} else {
		char *argv[] = {"/usr/bin/openssl",
				"s_client",
				"-connect",
				connect,
				"-servername",
				(char *)a->name,
				"-CAfile",
				(char *)path_of("ca.pem"),
				"-verify_return_error",
				"-quiet",
				NULL};
		a->p.pid = spawn(argv, path_of("s_client.in"),
				 path_of("s_client.out"), NULL);
	}
}

static int serve_main(void *arg)
{
	struct serve_arg *a = arg;
	coev_tls_config_t *cfg = server_cfg();
	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0), fd;
	coev_tls_t *t = NULL;
	char buf[65536];
	ssize_t r;

	TU_CHECK_EQ(coev_tls_config_sni_cert(cfg, "other.test",
					     path_of("other.pem"),
					     path_of("other.key")),
		    0);
	start_client(a, coev_sock_port(lfd));
	fd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_tls_new(cfg, fd, NULL, &t), 0);
	TU_CHECK_EQ(coev_tls_handshake(t, tu_guard()), 0);
	TU_CHECK(coev_tls_server_name(t) &&
		 strcmp(coev_tls_server_name(t), a->name) == 0);
	/* Echo until the client's close_notify (s_client: one line). */
	while ((r = coev_tls_read(t, buf, sizeof buf, tu_guard())) > 0) {
		TU_CHECK_EQ(write_all_tls(t, buf, (size_t)r), 0);
		if (strcmp(a->client, "s_client") == 0)
			break;
	}
	TU_CHECK(r >= 0);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), 0);
	coev_tls_free(t);
	coev_close(lfd);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_server_python_client(void **state)
{
	struct serve_arg a = {.client = "python", .name = "localhost"};

	(void)state;
	assert_int_equal(tu_run_main(serve_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

/* The client verifies other.test: only the per-name certificate passes. */
static void test_tls_server_sni_certificate(void **state)
{
	struct serve_arg a = {.client = "python", .name = "other.test"};

	(void)state;
	assert_int_equal(tu_run_main(serve_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

static void test_tls_server_openssl_s_client(void **state)
{
	struct serve_arg a = {.client = "s_client", .name = "localhost"};
	char out[128] = "";
	FILE *f = fopen(path_of("s_client.in"), "w");

	(void)state;
	assert_non_null(f);
	fputs("hello from s_client\n", f);
	fclose(f);
	assert_int_equal(tu_run_main(serve_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
	f = fopen(path_of("s_client.out"), "r");
	assert_non_null(f);
	assert_non_null(fgets(out, sizeof out, f));
	fclose(f);
	assert_string_equal(out, "hello from s_client\n");
}

/* ---- client certificates (a coev server and coev clients) ---------------- */

/* The server: three clients in turn; the first proves itself with a
 * certificate the CA signed, the second sends none, the third a
 * self-signed one. */
static int mtls_server(void *arg)
{
	int lfd = *(int *)arg;
	coev_tls_config_t *cfg = server_cfg();
	static const int want[3] = {0, COEV_ECERT, COEV_ECERT};
	static const char *const why[3] = {"", "certificate", "self-signed"};
	char buf[8];

	TU_CHECK_EQ(coev_tls_config_ca(cfg, path_of("ca.pem"), NULL), 0);
	TU_CHECK_EQ(coev_tls_config_verify_clients(cfg), 0);
	for (int i = 0; i < 3; i++) {
		coev_tls_t *t = NULL;
		int fd = coev_accept(lfd, NULL, NULL, tu_guard());
		TU_CHECK(fd >= 0);
		TU_CHECK_EQ(coev_tls_new(cfg, fd, NULL, &t), 0);
		TU_CHECK_EQ(coev_tls_handshake(t, tu_guard()), want[i]);
		TU_CHECK_MSG(strstr(coev_tls_error_text(t), why[i]) != NULL,
			     "client %d: %s", i, coev_tls_error_text(t));
		if (i == 0) {
			TU_CHECK_EQ(
				coev_tls_read(t, buf, sizeof buf, tu_guard()),
				3);
			TU_CHECK_EQ(coev_tls_write(t, "ok\n", 3, tu_guard()),
				    3);
		}
		coev_tls_free(t);
	}
	coev_tls_config_free(cfg);
	return 0;
}

/* One client with cert/key (NULL: none): 0 when the server answered. */
static int mtls_client(int port, const char *cert, const char *key)
{
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t = NULL;
	char buf[8];
	int rc;

	if (cert)
		TU_CHECK_EQ(
			coev_tls_config_cert(cfg, path_of(cert), path_of(key)),
			0);
	rc = client_handshake(cfg, port, "localhost", tu_guard(), &t);
	/* TLS 1.3: the client's part ends before the server judges it;
	 * the server's refusal comes as an alert at the first read. */
	if (rc == 0 &&
	    (rc = (int)coev_tls_write(t, "hi\n", 3, tu_guard())) == 3)
		rc = (int)coev_tls_read(t, buf, sizeof buf, tu_guard());
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return rc == 3 ? 0 : rc;
}

static int mtls_main(void *arg)
{
	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	int port = coev_sock_port(lfd);
	coev_task_t *srv = NULL;

	(void)arg;
	TU_CHECK_EQ(coev_spawn(mtls_server, &lfd, &srv), 0);
	TU_CHECK_EQ(mtls_client(port, "srv.pem", "srv.key"), 0);
	/* Refused: the server's alert (COEV_ETLS), or, when the client's
	 * write reached the socket the server had closed, a reset that
	 * drops the alert (TCP's race, not the adapter's). */
	for (int i = 0; i < 2; i++) {
		int rc = i == 0 ? mtls_client(port, NULL, NULL)
				: mtls_client(port, "self.pem", "self.key");
		TU_CHECK_MSG(rc == COEV_ETLS || rc == -ECONNRESET ||
				     rc == -EPIPE,
			     "client %d: %s", i + 1, coev_strerror(rc));
	}
	TU_CHECK_EQ(coev_join(srv, NULL), 0);
	coev_close(lfd);
	return 0;
}

static void test_tls_client_certificates(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(mtls_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- refused certificates ----------------------------------------------- */

struct refuse_arg {
	struct peer p;
	const char *host;
	int want;
	const char *why; /* in the error text */
};

static int refuse_main(void *arg)
{
	struct refuse_arg *a = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t;

	TU_CHECK_EQ(client_handshake(cfg, a->p.port, a->host, tu_guard(), &t),
		    a->want);
	/* The reason is there for the log. */
	TU_CHECK_MSG(t && strstr(coev_tls_error_text(t), a->why) != NULL,
		     "error text: %s", t ? coev_tls_error_text(t) : "");
	/* OpenSSL must not be called again: every later call gives the
	 * same failure, and its reason stays. */
	char c;
	TU_CHECK_EQ(coev_tls_read(t, &c, 1, tu_guard()), a->want);
	TU_CHECK_EQ(coev_tls_write(t, "x", 1, tu_guard()), a->want);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), a->want);
	TU_CHECK_EQ(coev_tls_handshake(t, tu_guard()), a->want);
	TU_CHECK_MSG(t && strstr(coev_tls_error_text(t), a->why) != NULL,
		     "error text after more calls: %s",
		     t ? coev_tls_error_text(t) : "");
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_untrusted_certificate(void **state)
{
	struct refuse_arg a = {
		.host = "localhost", .want = COEV_ECERT, .why = "self-signed"};

	(void)state;
	peer_server(&a.p, "refused", "self.pem", "self.key", NULL);
	assert_int_equal(tu_run_main(refuse_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

static void test_tls_wrong_host_name(void **state)
{
	struct refuse_arg a = {.host = "other.test",
			       .want = COEV_EHOSTNAME,
			       .why = "mismatch"};

	(void)state;
	peer_server(&a.p, "refused", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(refuse_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

static void test_tls_expired_certificate(void **state)
{
	struct refuse_arg a = {
		.host = "localhost", .want = COEV_ECERT, .why = "expired"};

	(void)state;
	peer_server(&a.p, "refused", "expired.pem", "expired.key", NULL);
	assert_int_equal(tu_run_main(refuse_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

/* ---- stalls, cancellation, truncation ------------------------------------ */

/* A server that accepts, sends the first 8 bytes of a handshake record
 * (a header announcing 64 bytes, and 3 of them) when partial, and then
 * says nothing until the client goes. */
static int staller(void *arg)
{
	int lfd = *(int *)arg, fd;
	static const unsigned char head[8] = {0x16, 0x03, 0x03, 0x00,
					      0x40, 0x02, 0x00, 0x00};
	char buf[4096];

	fd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_write(fd, head, sizeof head, tu_guard()), 8);
	while (coev_read(fd, buf, sizeof buf, tu_guard()) > 0)
		;
	coev_close(fd);
	return 0;
}

static int stall_main(void *arg)
{
	coev_tls_config_t *cfg = client_cfg();
	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	coev_task_t *srv = NULL;
	coev_tls_t *t;

	(void)arg;
	/* Silent: the kernel accepts; nobody answers the ClientHello. */
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(client_handshake(cfg, coev_sock_port(lfd), "localhost",
				     t0 + COEV_MSEC(200), &t),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(200));
	coev_tls_free(t);
	/* Partial: a record that never completes. */
	TU_CHECK_EQ(coev_spawn(staller, &lfd, &srv), 0);
	t0 = coev_now();
	TU_CHECK_EQ(client_handshake(cfg, coev_sock_port(lfd), "localhost",
				     t0 + COEV_MSEC(200), &t),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(200));
	coev_tls_free(t);
	TU_CHECK_EQ(coev_join(srv, NULL), 0);
	coev_close(lfd);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_stalled_handshake_times_out(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(stall_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static atomic_int handshaking;

/* Connects, then handshakes with no deadline against a server that never
 * answers; says when the handshake starts, so that the fd wait the test
 * waits for is the handshake's, not the connect's. */
static int cancelled_handshake(void *arg)
{
	int port = *(int *)arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t = NULL;
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)port, tu_guard()), rc;

	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_tls_new(cfg, fd, "localhost", &t), 0);
	atomic_store(&handshaking, 1);
	rc = coev_tls_handshake(t, COEV_FOREVER);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return rc;
}

static int cancel_main(void *arg)
{
	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	int port = coev_sock_port(lfd);
	coev_task_t *c = NULL;
	int res = 0;

	(void)arg;
	atomic_store(&handshaking, 0);
	TU_CHECK_EQ(coev_spawn(cancelled_handshake, &port, &c), 0);
	TU_CHECK_EQ(tu_wait_at_least(&handshaking, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, c, COEV_WAIT_FD, NULL), 0);
	TU_CHECK_EQ(coev_cancel(c), 0);
	TU_CHECK_EQ(coev_join(c, &res), 0);
	TU_CHECK_EQ(res, -ECANCELED);
	coev_close(lfd);
	return 0;
}

static void test_tls_cancel_during_handshake(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cancel_main, NULL, 2), 0);
	tu_assert_no_failures();
}

static int truncate_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_tls_t *t;
	char buf[64];
	size_t got = 0;
	ssize_t r;

	TU_CHECK_EQ(client_handshake(cfg, p->port, "localhost", tu_guard(), &t),
		    0);
	while ((r = coev_tls_read(t, buf + got, sizeof buf - got, tu_guard())) >
	       0)
		got += (size_t)r;
	TU_CHECK_EQ(got, 7);
	TU_CHECK(memcmp(buf, "partial", 7) == 0);
	/* Never 0: the peer closed TCP without close_notify. */
	TU_CHECK_EQ(r, COEV_ETLS);
	/* The failure stays, with its reason, and OpenSSL is not asked
	 * again (not even to shut down, which its rules forbid). */
	TU_CHECK_EQ(coev_tls_read(t, buf, sizeof buf, tu_guard()), COEV_ETLS);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), COEV_ETLS);
	TU_CHECK_MSG(strstr(coev_tls_error_text(t), "unexpected eof") != NULL,
		     "error text: %s", coev_tls_error_text(t));
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_truncation_is_an_error(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "truncate", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(truncate_main, &p, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
}

/* ---- deadlines and cancellation after the handshake ----------------------- */

static atomic_int reading;

/* Reads with no deadline until cancelled; says when it starts. */
static int cancelled_read(void *arg)
{
	char c;

	atomic_store(&reading, 1);
	return (int)coev_tls_read(arg, &c, 1, COEV_FOREVER);
}

static int read_deadline_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_task_t *r = NULL;
	coev_tls_t *t;
	char line[64];
	int res = 0;

	TU_CHECK_EQ(client_handshake(cfg, p->port, "localhost", tu_guard(), &t),
		    0);
	/* Nothing sent yet, so nothing comes: the deadline ends the read. */
	coev_time_t t0 = coev_now();
	TU_CHECK_EQ(coev_tls_read(t, line, sizeof line, t0 + COEV_MSEC(100)),
		    -ETIMEDOUT);
	TU_CHECK(coev_now() - t0 >= COEV_MSEC(100));
	/* A reader parked in coev_wait_fd is cancelled. */
	atomic_store(&reading, 0);
	TU_CHECK_EQ(coev_spawn(cancelled_read, t, &r), 0);
	TU_CHECK_EQ(tu_wait_at_least(&reading, 1), 0);
	TU_CHECK_EQ(tu_wait_parked(NULL, r, COEV_WAIT_FD, NULL), 0);
	TU_CHECK_EQ(coev_cancel(r), 0);
	TU_CHECK_EQ(coev_join(r, &res), 0);
	TU_CHECK_EQ(res, -ECANCELED);
	/* The connection goes on: nothing was lost or broken. */
	TU_CHECK_EQ(write_all_tls(t, "still here\n", 11), 0);
	TU_CHECK_EQ(read_line_tls(t, line, sizeof line), 11);
	TU_CHECK_EQ(strcmp(line, "still here\n"), 0);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), 0);
	TU_CHECK_EQ(coev_tls_read(t, line, sizeof line, tu_guard()), 0);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_read_deadline_and_cancel(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "echo", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(read_deadline_main, &p, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
}

/* A coev server that completes the handshake and then reads nothing
 * until the client has given up writing (ev set). */
struct deaf {
	int lfd;
	coev_event_t gave_up;
};

static int deaf_server(void *arg)
{
	struct deaf *d = arg;
	coev_tls_config_t *cfg = server_cfg();
	int fd = coev_accept(d->lfd, NULL, NULL, tu_guard());
	coev_tls_t *t = NULL;

	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_tls_new(cfg, fd, NULL, &t), 0);
	TU_CHECK_EQ(coev_tls_handshake(t, tu_guard()), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&d->gave_up, tu_guard()), 0);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static int write_deadline_main(void *arg)
{
	struct deaf d;
	coev_tls_config_t *cfg = client_cfg();
	coev_task_t *srv = NULL;
	static char chunk[65536];
	coev_tls_t *t;
	ssize_t w;
	size_t sent = 0;

	(void)arg;
	d.lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	TU_CHECK_EQ(coev_event_init(&d.gave_up), 0);
	TU_CHECK_EQ(coev_spawn(deaf_server, &d, &srv), 0);
	TU_CHECK_EQ(client_handshake(cfg, coev_sock_port(d.lfd), "localhost",
				     tu_guard(), &t),
		    0);
	/* The socket buffers fill; then a write waits until its deadline. */
	coev_time_t dl = coev_now() + COEV_MSEC(300);
	while ((w = coev_tls_write(t, chunk, sizeof chunk, dl)) > 0)
		sent += (size_t)w;
	TU_CHECK_EQ(w, -ETIMEDOUT);
	TU_CHECK(coev_now() >= dl);
	TU_CHECK(sent > 0);
	coev_event_set(&d.gave_up);
	TU_CHECK_EQ(coev_join(srv, NULL), 0);
	coev_tls_free(t);
	coev_close(d.lfd);
	coev_event_destroy(&d.gave_up);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_write_deadline(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(write_deadline_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- a reader and a writer at once --------------------------------------- */

#define BIG (8u << 20)

static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 7 + 3) % 251);
}

static int big_writer(void *arg)
{
	coev_tls_t *t = arg;
	unsigned char *buf = malloc(65536);

	for (size_t at = 0; at < BIG;) {
		size_t n = BIG - at < 65536 ? BIG - at : 65536;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(at + i);
		TU_CHECK_EQ(write_all_tls(t, buf, n), 0);
		at += n;
	}
	free(buf);
	TU_CHECK_EQ(coev_tls_shutdown(t, tu_guard()), 0);
	return 0;
}

static int big_reader(void *arg)
{
	coev_tls_t *t = arg;
	unsigned char *buf = malloc(65536);
	size_t at = 0, bad = 0;
	ssize_t r;

	while ((r = coev_tls_read(t, buf, 65536, tu_guard())) > 0) {
		for (ssize_t i = 0; i < r; i++)
			bad += buf[i] != pat(at + (size_t)i);
		at += (size_t)r;
	}
	free(buf);
	TU_CHECK_EQ(r, 0);
	TU_CHECK_EQ(at, BIG);
	TU_CHECK_EQ(bad, 0);
	return 0;
}

static int duplex_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_task_t *w = NULL, *r = NULL;
	coev_tls_t *t;

	TU_CHECK_EQ(client_handshake(cfg, p->port, "localhost", tu_guard(), &t),
		    0);
	TU_CHECK_EQ(coev_spawn(big_reader, t, &r), 0);
	TU_CHECK_EQ(coev_spawn(big_writer, t, &w), 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	TU_CHECK_EQ(coev_join(r, NULL), 0);
	coev_tls_free(t);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_reader_and_writer_at_once(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "echo", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(duplex_main, &p, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
}

/* ---- as a stream ------------------------------------------------------------ */

#define STREAM_BIG (4u << 20)

static int stream_writer(void *arg)
{
	coev_stream_t *s = arg;
	unsigned char chunk[1000];

	/* Odd-sized writes: some buffered, the buffer written out when full. */
	for (size_t at = 0; at < STREAM_BIG;) {
		size_t n = STREAM_BIG - at < sizeof chunk ? STREAM_BIG - at
							  : sizeof chunk;
		for (size_t i = 0; i < n; i++)
			chunk[i] = pat(at + i);
		TU_CHECK_EQ(coev_stream_write(s, chunk, n, NULL, tu_guard()),
			    (ssize_t)n);
		at += n;
	}
	/* Flushes, then close_notify. */
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	return 0;
}

static int stream_client_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	coev_stream_t *s = NULL;
	coev_task_t *w = NULL;
	unsigned char *buf = malloc(STREAM_BIG), one;
	size_t done = 0, bad = 0;

	/* By name: SNI and the certificate's DNS entry. */
	TU_CHECK_EQ(coev_tls_connect("localhost", (unsigned)p->port, cfg,
				     tu_guard(), &s),
		    0);
	TU_CHECK(coev_stream_fileno(s) >= 0);
	TU_CHECK_EQ(coev_spawn(stream_writer, s, &w), 0);
	TU_CHECK_EQ(
		coev_stream_read_exactly(s, buf, STREAM_BIG, &done, tu_guard()),
		(ssize_t)STREAM_BIG);
	for (size_t i = 0; i < STREAM_BIG; i++)
		bad += buf[i] != pat(i);
	TU_CHECK_EQ(bad, 0);
	/* The server's close_notify after ours: end of stream. */
	TU_CHECK_EQ(coev_stream_read(s, &one, 1, tu_guard()), 0);
	TU_CHECK_EQ(coev_join(w, NULL), 0);
	coev_stream_close(s);
	free(buf);
	/* A refused connection: nothing is left open (the fd check). */
	TU_CHECK_EQ(coev_tls_connect("127.0.0.1", 1, cfg, tu_guard(), &s),
		    -ECONNREFUSED);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_stream_client_read_exactly(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "echo", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(stream_client_main, &p, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
}

static int stream_server_main(void *arg)
{
	struct serve_arg *a = arg;
	coev_tls_config_t *cfg = server_cfg();
	int lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0), fd;
	coev_stream_t *s = NULL;
	char line[128];

	start_client(a, coev_sock_port(lfd));
	fd = coev_accept(lfd, NULL, NULL, tu_guard());
	TU_CHECK_EQ(coev_tls_accept(fd, cfg, tu_guard(), &s), 0);
	TU_CHECK_EQ(coev_stream_read_line(s, line, sizeof line, tu_guard()),
		    18);
	TU_CHECK_EQ(memcmp(line, "hello from python\n", 18), 0);
	TU_CHECK_EQ(coev_stream_write(s, line, 18, NULL, tu_guard()), 18);
	TU_CHECK_EQ(coev_stream_flush(s, tu_guard()), 0);
	/* The client's close_notify, then ours. */
	TU_CHECK_EQ(coev_stream_read_line(s, line, sizeof line, tu_guard()),
		    COEV_EEOF);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	coev_stream_close(s);
	coev_close(lfd);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_stream_server_lines(void **state)
{
	struct serve_arg a = {.client = "python", .name = "localhost"};

	(void)state;
	assert_int_equal(tu_run_main(stream_server_main, &a, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&a.p), 0);
}

/* ---- shutdown before the handshake ------------------------------------------ */

/*
 * A stream runs the handshake at its first read or write; a program that
 * ends one before either (a client with nothing to say, a server turning
 * a client away) still owes the peer a close_notify, which needs a
 * handshake first. The echo peer exits 0 only after our close_notify.
 */
static int early_shutdown_main(void *arg)
{
	struct peer *p = arg;
	coev_tls_config_t *cfg = client_cfg();
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)p->port, tu_guard());
	coev_stream_t *s = NULL;
	coev_tls_t *t = NULL;
	char c;

	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_tls_new(cfg, fd, "localhost", &t), 0);
	TU_CHECK_EQ(coev_tls_stream(t, 0, &s), 0);
	TU_CHECK_EQ(coev_stream_shutdown(s, tu_guard()), 0);
	TU_CHECK_MSG(ERR_peek_error() == 0, "OpenSSL error left queued: %lu",
		     ERR_peek_error());
	/* The peer's close_notify answers ours. */
	TU_CHECK_EQ(coev_stream_read(s, &c, 1, tu_guard()), 0);
	TU_CHECK_EQ(strcmp(coev_tls_version(t), "TLSv1.3"), 0);
	coev_stream_close(s);
	coev_tls_config_free(cfg);
	return 0;
}

static void test_tls_stream_shutdown_before_handshake(void **state)
{
	struct peer p;

	(void)state;
	peer_server(&p, "echo", "srv.pem", "srv.key", NULL);
	assert_int_equal(tu_run_main(early_shutdown_main, &p, 2), 0);
	tu_assert_no_failures();
	assert_int_equal(peer_wait(&p), 0);
}

/* ---- a stream's large write cut by its deadline ----------------------------- */

/*
 * OpenSSL encrypts a record before it knows whether the socket takes it;
 * a write that then times out leaves that record pending, and the next
 * SSL_write must offer the same bytes again (coev/tls.h rule 4). A
 * stream's write larger than its buffer must therefore keep the bytes it
 * reports as not accepted out of OpenSSL's hands, or the next write sends
 * them anyway (or fails): the peer must read exactly the accepted head,
 * then what was written after the timeout.
 */
#define CUT_BIG (2u << 20)

struct cut {
	int lfd;
	coev_event_t go; /* the writer gave up: start reading */
	unsigned char *got;
	size_t got_len;
};

/* Small socket buffers, so that a couple of MiB fill them. */
static void small_buffers(int fd)
{
	int small = 32768;

	TU_CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
		    0);
	TU_CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
		    0);
}

static int cut_server(void *arg)
{
	struct cut *c = arg;
	coev_tls_config_t *cfg = server_cfg();
	int fd = coev_accept(c->lfd, NULL, NULL, tu_guard());
	coev_stream_t *s = NULL;
	ssize_t r = -1;

	TU_CHECK(fd >= 0);
	TU_CHECK_EQ(coev_tls_accept(fd, cfg, tu_guard(), &s), 0);
	TU_CHECK_EQ(coev_event_wait_dl(&c->go, tu_guard()), 0);
	while (s && (r = coev_stream_read(s, c->got + c->got_len,
					  CUT_BIG + 64 - c->got_len,
					  tu_guard())) > 0)
		c->got_len += (size_t)r;
	/* The client's close_notify ends the bytes. */
	TU_CHECK_EQ(r, 0);
	coev_stream_close(s);
	coev_tls_config_free(cfg);
	return 0;
}

static int cut_main(void *arg)
{
	struct cut c = {0};
	coev_tls_config_t *cfg = client_cfg();
	unsigned char *big = malloc(CUT_BIG);
	coev_stream_t *s = NULL;
	coev_task_t *srv = NULL;
	coev_tls_t *t = NULL;
	size_t done = 0;

	(void)arg;
	c.got = malloc(CUT_BIG + 64);
	TU_CHECK(big && c.got);
	for (size_t i = 0; i < CUT_BIG; i++)
		big[i] = pat(i);
	c.lfd = coev_tcp_listen("127.0.0.1", 0, 0, 0);
	small_buffers(c.lfd);
	TU_CHECK_EQ(coev_event_init(&c.go), 0);
	TU_CHECK_EQ(coev_spawn(cut_server, &c, &srv), 0);
	int fd = coev_tcp_connect("127.0.0.1", (unsigned)coev_sock_port(c.lfd),
				  tu_guard());
	TU_CHECK(fd >= 0);
	small_buffers(fd);
	TU_CHECK_EQ(coev_tls_new(cfg, fd, "localhost", &t), 0);
	TU_CHECK_EQ(coev_tls_handshake(t, tu_guard()), 0);
	TU_CHECK_EQ(coev_tls_stream(t, 0, &s), 0);
	/* The server reads nothing yet: the write ends at its deadline. */
	TU_CHECK_EQ(coev_stream_write(s, big, CUT_BIG, &done,
				      coev_deadline(COEV_MSEC(200))),
		    -ETIMEDOUT);
	TU_CHECK(done > 0 && done < CUT_BIG);
	/* Other bytes follow the accepted ones; then close_notify. */
	coev_event_set(&c.go);
	TU_CHECK_EQ(coev_stream_write(s, "END\n", 4, NULL, tu_guard()), 4);
	int rc = coev_stream_shutdown(s, tu_guard());
	TU_CHECK_EQ(rc, 0);
	if (rc < 0) {
		/* The server is not left waiting for a close_notify. */
		coev_stream_close(s);
		s = NULL;
	}
	TU_CHECK_EQ(coev_join(srv, NULL), 0);
	TU_CHECK_MSG(c.got_len == done + 4, "peer read %zu, accepted %zu + 4",
		     c.got_len, done);
	TU_CHECK(c.got_len < done || memcmp(c.got, big, done) == 0);
	TU_CHECK(c.got_len < done + 4 || memcmp(c.got + done, "END\n", 4) == 0);
	coev_stream_close(s);
	coev_close(c.lfd);
	coev_event_destroy(&c.go);
	coev_tls_config_free(cfg);
	free(c.got);
	free(big);
	return 0;
}

static void test_tls_stream_write_cut_by_deadline_keeps_bytes(void **state)
{
	(void)state;
	assert_int_equal(tu_run_main(cut_main, NULL, 2), 0);
	tu_assert_no_failures();
}

/* ---- the config's bad input ---------------------------------------------- */

static void test_tls_config_errors(void **state)
{
	coev_tls_config_t *cfg = NULL;
	coev_tls_t *t = NULL;

	(void)state;
	assert_int_equal(coev_tls_config_new(7, &cfg), -EINVAL);
	assert_int_equal(coev_tls_config_new(COEV_TLS_SERVER, &cfg), 0);
	assert_int_equal(coev_tls_config_cert(cfg, path_of("srv.pem"),
					      path_of("other.key")),
			 COEV_ETLS);
	assert_non_null(strstr(coev_tls_config_error_text(cfg), "key"));
	assert_int_equal(coev_tls_config_cert(cfg, path_of("missing.pem"),
					      path_of("srv.key")),
			 COEV_ETLS);
	assert_int_equal(coev_tls_config_alpn(cfg, "h2,,x"), -EINVAL);
	assert_int_equal(coev_tls_config_alpn(cfg, ""), -EINVAL);
	/* A server takes no host name; a client needs one to verify. */
	assert_int_equal(coev_tls_new(cfg, 0, "x", &t), -EINVAL);
	assert_int_equal(coev_tls_new(cfg, -1, NULL, &t), -EBADF);
	coev_tls_config_free(cfg);
	assert_int_equal(coev_tls_config_new(COEV_TLS_CLIENT, &cfg), 0);
	assert_int_equal(coev_tls_new(cfg, 0, NULL, &t), -EINVAL);
	assert_int_equal(coev_tls_config_ca(cfg, path_of("missing.pem"), NULL),
			 COEV_ETLS);
	assert_int_equal(coev_tls_config_sni_cert(cfg, "a", path_of("srv.pem"),
						  path_of("srv.key")),
			 -EINVAL);
	coev_tls_config_free(cfg);
}

/* ---- main ------------------------------------------------------------------ */

static int setup(void **state)
{
	const char *src = __FILE__, *slash = strrchr(src, '/');

	(void)state;
	snprintf(peer_py, sizeof peer_py, "%.*s/tls_peer.py",
		 slash ? (int)(slash - src) : 1, slash ? src : ".");
	if (access(peer_py, R_OK) != 0 || tu_mkdtemp(dir, sizeof dir) != 0)
		return -1;
	return make_certs();
}

static int teardown(void **state)
{
	(void)state;
	return tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TU_FD_TEST(test_tls_client_echo_sni_alpn),
		TU_FD_TEST(test_tls_client_openssl_s_server),
		TU_FD_TEST(test_tls_server_python_client),
		TU_FD_TEST(test_tls_server_sni_certificate),
		TU_FD_TEST(test_tls_server_openssl_s_client),
		TU_FD_TEST(test_tls_client_certificates),
		TU_FD_TEST(test_tls_untrusted_certificate),
		TU_FD_TEST(test_tls_wrong_host_name),
		TU_FD_TEST(test_tls_expired_certificate),
		TU_FD_TEST(test_tls_stalled_handshake_times_out),
		TU_FD_TEST(test_tls_cancel_during_handshake),
		TU_FD_TEST(test_tls_truncation_is_an_error),
		TU_FD_TEST(test_tls_read_deadline_and_cancel),
		TU_FD_TEST(test_tls_write_deadline),
		TU_FD_TEST(test_tls_reader_and_writer_at_once),
		TU_FD_TEST(test_tls_stream_client_read_exactly),
		TU_FD_TEST(test_tls_stream_server_lines),
		TU_FD_TEST(test_tls_stream_write_cut_by_deadline_keeps_bytes),
		TU_FD_TEST(test_tls_stream_shutdown_before_handshake),
		TU_FD_TEST(test_tls_config_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
