/* SPDX-License-Identifier: MIT */
/*
 * examples/http_hello.c — the "Hello, {name}!" web server of the asyncio
 * posts, as a coev program. The aiohttp original:
 *
 *   async def handle(request):
 *       name = request.match_info.get('name', "Anonymous")
 *       return web.Response(text=f"Hello, {name}!")
 *
 *   app = web.Application()
 *   app.add_routes([web.get('/', handle), web.get('/{name}', handle)])
 *   web.run_app(app)
 *
 * Run it and ask it:
 *
 *   make examples
 *   build/examples/http_hello 8080 &
 *   curl http://127.0.0.1:8080/          # Hello, Anonymous!
 *   curl http://127.0.0.1:8080/Ada       # Hello, Ada!
 *   curl http://127.0.0.1:8080/metrics   # the runtime's metrics (Prometheus)
 *   kill %1                              # or Ctrl-C: it stops at once
 *
 * Usage: http_hello [-r SECS] [-i SECS] [-d MS] [PORT [WORKERS]]
 *   PORT     port on 127.0.0.1 (default 8080; 0 picks a free one, printed)
 *   WORKERS  worker threads (default: COEV_WORKERS, else one per CPU)
 *   -r SECS  time a client has to send a whole request once it began and
 *            to take an answer (default 10); slower clients get 408
 *   -i SECS  how long a keep-alive connection may sit idle (default 60)
 *   -d MS    pretend every greeting needs a slow backend: sleep MS first
 *            (default 0); the other connections are served meanwhile
 *
 * What it shows:
 *   - One task per connection, all of them in one scope (asyncio's
 *     TaskGroup): the accept loop spawns each connection's task into the
 *     scope, and the server stops by cancelling the scope.
 *   - Wrapping a callback library: Debian's http-parser calls on_url,
 *     on_message_complete, ... while it parses what a task has read. The
 *     task pauses the parser at the end of each request and answers it
 *     before parsing on, so pipelined requests are answered in order.
 *   - Deadlines instead of timers: every read and write names the time by
 *     which it must be done (a whole request must arrive within -r of its
 *     first byte, an idle connection is dropped after -i).
 *   - A prompt, clean stop: a task waits for SIGINT or SIGTERM
 *     (coev_signal_wait); it cancels the scope, every connection task's
 *     wait returns -ECANCELED, each closes its socket, and main returns.
 *
 * Limits, so that no client can make the server hold much: 4 KiB read
 * and 2 KiB write buffers per connection, on the task's stack (10,000 idle
 * connections take about 125 MB), 8 KiB of request line and headers
 * (431), 512 bytes of URL (414), 200 bytes of name (400), 8 KiB of request
 * body (413).
 * Only GET and HEAD are answered (405 for other methods); any path other
 * than / and /NAME is 404, and a malformed request gets 400 and a close.
 * GET /metrics answers the runtime's metrics (coev_rt_metrics, in
 * coev/debug.h) in the Prometheus text format, so that a Prometheus
 * server can scrape the example; so no one can be greeted as "metrics".
 */
#include <coev.h>

#include <http_parser.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BUF 4096
#define WRITE_BUF 2048
#define URL_MAX 512
#define NAME_MAX_LEN 200
#define HEADERS_MAX (8 * 1024)
#define BODY_MAX (8 * 1024)
#define LINGER COEV_SEC(1) /* how long a closing connection is drained */

/* The whole server: its sockets, its scope, its settings, its counters. One
 * instance, set up by main() before the runtime starts and read-only
 * afterwards, except for the counters. */
struct server {
	int lfd;	     /* the listening socket */
	coev_signal_t *stop; /* the watch of SIGINT and SIGTERM */
	coev_scope_t *scope; /* the accept loop, the signal watcher and
				every connection */
	coev_time_t request_timeout, idle_timeout, delay;
	atomic_ulong connections, requests;
};

static struct server srv = {
	.lfd = -1,
	.request_timeout = COEV_SEC(10),
	.idle_timeout = COEV_SEC(60),
};

/* One connection: the parser, the request being parsed, the answers not
 * yet written, and what was read but not yet parsed. It lives on the stack
 * of the connection's task. */
struct conn {
	int fd;
	http_parser parser;
	/* The request being parsed. */
	bool in_request;      /* its first byte has been parsed */
	coev_time_t deadline; /* by when the rest of it must be in */
	int reject;	      /* status a callback chose to refuse it with */
	size_t url_len;
	size_t body_len;
	char url[URL_MAX];
	/* Answers not yet written. */
	size_t out_len;
	char out[WRITE_BUF];
	/* What the last read brought. */
	char in[READ_BUF];
};

/* --- http-parser callbacks ---------------------------------------------- */

/* http_parser_execute() calls these as it meets the parts of a request;
 * parser->data points to the connection. A callback that returns non-zero
 * stops the parser with an error; these set c->reject first to say which
 * answer the client gets. */

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	c->in_request = true;
	c->deadline = coev_deadline(srv.request_timeout);
	c->reject = 0;
	c->url_len = 0;
	c->body_len = 0;
	return 0;
}

/* The URL may come in pieces, when it is split between two reads. */
static int on_url(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (n > sizeof c->url - c->url_len) {
		c->reject = HTTP_STATUS_URI_TOO_LONG;
		return -1;
	}
	memcpy(c->url + c->url_len, at, n);
	c->url_len += n;
	return 0;
}

/* Nobody sends a body to this server, but a client may: it is skipped,
 * up to a limit. */
static int on_body(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	(void)at;
	c->body_len += n;
	if (c->body_len > BODY_MAX) {
		c->reject = HTTP_STATUS_PAYLOAD_TOO_LARGE;
		return -1;
	}
	return 0;
}

/* A whole request is in: pause the parser, so that http_parser_execute()
 * returns and the task answers this request before it parses the next. */
static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->in_request = false;
	http_parser_pause(p, 1);
	return 0;
}

static http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- answers ------------------------------------------------------------ */

/* Write the answers gathered in c->out. */
static int flush(struct conn *c)
{
	ssize_t r;

	if (c->out_len == 0)
		return 0;
	r = coev_write_all(c->fd, c->out, c->out_len, NULL,
			   coev_deadline(srv.request_timeout));
	c->out_len = 0;
	return r < 0 ? (int)r : 0;
}

/* The Connection header an answer needs, or "". */
static const char *conn_header(const struct conn *c, bool keep_alive)
{
	if (!keep_alive)
		return "Connection: close\r\n";
	if (c->parser.http_major == 1 && c->parser.http_minor == 0)
		return "Connection: keep-alive\r\n"; /* HTTP/1.0 asked */
	return "";
}

/* Add one answer to c->out, writing out what is there first if it does
 * not fit. Answers to pipelined requests go out together, in one write,
 * when the task has parsed everything it read. */
static int respond(struct conn *c, int status, const char *body, bool head,
		   bool keep_alive)
{
	const char *conn_hdr = conn_header(c, keep_alive);
	size_t room;
	int n, r;

	for (;;) {
		room = sizeof c->out - c->out_len;
		n = snprintf(c->out + c->out_len, room,
			     "HTTP/1.1 %d %s\r\n"
			     "Server: coev-http_hello\r\n"
			     "Content-Type: text/plain; charset=utf-8\r\n"
			     "Content-Length: %zu\r\n"
			     "%s%s\r\n"
			     "%s",
			     status, http_status_str((enum http_status)status),
			     strlen(body),
			     status == HTTP_STATUS_METHOD_NOT_ALLOWED
				     ? "Allow: GET, HEAD\r\n"
				     : "",
			     conn_hdr, head ? "" : body);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < room) {
			c->out_len += (size_t)n;
			return 0;
		}
		if (c->out_len == 0) /* cannot happen: answers are short */
			return -EOVERFLOW;
		/* No room: write out the answers before it, then again. */
		if ((r = flush(c)) < 0)
			return r;
	}
}

/* An answer that is not a greeting: "404: Not Found", as aiohttp words
 * it. */
static int respond_error(struct conn *c, int status, bool keep_alive)
{
	char body[64];

	snprintf(body, sizeof body, "%d: %s", status,
		 http_status_str((enum http_status)status));
	return respond(c, status, body, false, keep_alive);
}

/*
 * GET /metrics: the runtime's metrics (coev_rt_metrics) in the Prometheus
 * text format, for a Prometheus server to scrape. The text is longer than
 * c->out, so it is rendered into a buffer sized by a first call (with room
 * for the time figures, which may print longer a moment later) and
 * written after the answers gathered before it.
 */
static int respond_metrics(struct conn *c, bool head, bool keep_alive)
{
	const coev_rt_t *rt = coev_rt_current();
	int need = coev_rt_metrics(rt, NULL, 0), n, r;
	size_t cap = need > 0 ? (size_t)need + 512 : 0;
	char hdr[256], *body = cap ? malloc(cap) : NULL;
	coev_time_t by = coev_deadline(srv.request_timeout);

	if (!body)
		return respond_error(c, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				     keep_alive);
	n = coev_rt_metrics(rt, body, cap);
	if (n < 0 || (size_t)n >= cap) {
		free(body);
		return respond_error(c, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				     keep_alive);
	}
	snprintf(hdr, sizeof hdr,
		 "HTTP/1.1 200 OK\r\n"
		 "Server: coev-http_hello\r\n"
		 "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %d\r\n"
		 "%s\r\n",
		 n, conn_header(c, keep_alive));
	r = flush(c);
	if (r == 0)
		r = (int)coev_write_all(c->fd, hdr, strlen(hdr), NULL, by);
	if (r >= 0 && !head)
		r = (int)coev_write_all(c->fd, body, (size_t)n, NULL, by);
	free(body);
	return r < 0 ? r : 0;
}

/* The value of one hex digit, or -1. */
static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The route /{name}: percent-decode the path segment s[0..n) into name
 * (NAME_MAX_LEN + 1 bytes). Returns 200, 404 for a path with more
 * segments, or 400 for a name that is malformed, too long, or holds a
 * control character. */
static int decode_name(const char *s, size_t n, char *name)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '/')
			return HTTP_STATUS_NOT_FOUND;
		if (ch == '%') {
			int hi, lo;

			if (n - i < 3)
				return HTTP_STATUS_BAD_REQUEST;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return HTTP_STATUS_BAD_REQUEST;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f || len == NAME_MAX_LEN)
			return HTTP_STATUS_BAD_REQUEST;
		name[len++] = (char)ch;
	}
	name[len] = '\0';
	return HTTP_STATUS_OK;
}

/* route()'s answer for GET /metrics (not an HTTP status). */
#define ROUTE_METRICS (-1)

/* The router: GET /metrics, GET / and GET /{name}. Stores the name to
 * greet in name (NAME_MAX_LEN + 1 bytes) and returns the status to answer
 * with, or ROUTE_METRICS. */
static int route(struct conn *c, char *name)
{
	struct http_parser_url u;
	const char *path;
	size_t len;

	if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD)
		return HTTP_STATUS_METHOD_NOT_ALLOWED;
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1u << UF_PATH)))
		return HTTP_STATUS_BAD_REQUEST;
	path = c->url + u.field_data[UF_PATH].off; /* the query is dropped */
	len = u.field_data[UF_PATH].len;
	if (len == 8 && memcmp(path, "/metrics", 8) == 0)
		return ROUTE_METRICS;
	if (len == 1) {
		strcpy(name, "Anonymous");
		return HTTP_STATUS_OK;
	}
	return decode_name(path + 1, len - 1, name);
}

/* handle(request): answer the request the parser has just completed, the
 * aiohttp handler's work. Sets *keep_alive to whether the connection goes
 * on. */
static int answer(struct conn *c, bool *keep_alive)
{
	char name[NAME_MAX_LEN + 1];
	char text[sizeof name + 16];
	int status, r;

	/* http-parser reads the version and the Connection header for us:
	 * HTTP/1.0 closes unless it asked for keep-alive, 1.1 unless it
	 * asked to close. An Upgrade request is answered, then closed. */
	*keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade;
	atomic_fetch_add_explicit(&srv.requests, 1, memory_order_relaxed);
	status = route(c, name);
	if (status == ROUTE_METRICS)
		return respond_metrics(c, c->parser.method == HTTP_HEAD,
				       *keep_alive);
	if (status != HTTP_STATUS_OK) {
		if (status == HTTP_STATUS_BAD_REQUEST)
			*keep_alive = false;
		return respond_error(c, status, *keep_alive);
	}
	if (srv.delay > 0) {
		/* The slow backend: this task sleeps, the others run. Answers
		 * already gathered go out first. */
		if ((r = flush(c)) < 0 || (r = coev_sleep(srv.delay)) < 0)
			return r;
	}
	snprintf(text, sizeof text, "Hello, %s!", name);
	return respond(c, HTTP_STATUS_OK, text, c->parser.method == HTTP_HEAD,
		       *keep_alive);
}

/* --- connections -------------------------------------------------------- */

/* A request http-parser refused: answer 400, or what a callback chose,
 * and close. Returns 0 (the last answer is queued) or a negative code. */
static int refuse(struct conn *c, enum http_errno e)
{
	int status = c->reject ? c->reject : HTTP_STATUS_BAD_REQUEST;

	if (e == HPE_HEADER_OVERFLOW)
		status = HTTP_STATUS_REQUEST_HEADER_FIELDS_TOO_LARGE;
	return respond_error(c, status, false);
}

/* Parse the len bytes just read into c->in, answering every request that
 * they complete; pipelined requests are answered in order. Returns 1 when
 * the connection goes on, 0 when a last answer is queued (the client
 * asked to close, or sent something wrong), or a negative code. */
static int parse(struct conn *c, size_t len)
{
	size_t off = 0, n;
	enum http_errno e;
	bool keep_alive;
	int r;

	while (off < len) {
		n = http_parser_execute(&c->parser, &parser_settings,
					c->in + off, len - off);
		off += n;
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_OK && n > 0)
			continue; /* all parsed, the request not complete */
		if (e != HPE_PAUSED)
			return refuse(c, e);
		/* on_message_complete paused the parser: answer, go on. */
		http_parser_pause(&c->parser, 0);
		if ((r = answer(c, &keep_alive)) < 0)
			return r;
		if (!keep_alive)
			return 0;
	}
	return 1;
}

/* The life of one connection: read, parse, answer, until the client or
 * the server ends it. Returns 0 after a last answer (close politely), or a
 * negative code when the connection is to be closed at once (COEV_EEOF:
 * the client closed; -ECANCELED: the server is stopping; -ETIMEDOUT: idle
 * too long or slow to read; or an error of the socket). */
static int serve(struct conn *c)
{
	coev_time_t deadline;
	ssize_t n;
	int r, w;

	for (;;) {
		/* The rest of a request must come by its deadline; the next
		 * request within the idle timeout. */
		deadline = c->in_request ? c->deadline
					 : coev_deadline(srv.idle_timeout);
		n = coev_read(c->fd, c->in, sizeof c->in, deadline);
		if (n > 0)
			r = parse(c, (size_t)n);
		else if (n == -ETIMEDOUT && c->in_request)
			r = respond_error(c, HTTP_STATUS_REQUEST_TIMEOUT,
					  false);
		else
			return n == 0 ? COEV_EEOF : (int)n;
		if (r < 0)
			return r;
		/* The answers to everything read so far go out together. */
		if ((w = flush(c)) < 0)
			return w;
		if (r == 0)
			return 0;
	}
}

/* Close after a last answer without losing it: a close() with unread
 * input makes the kernel send a reset, which may destroy the answer before
 * the client has read it. So stop sending (the client sees the end of the
 * answer), read and drop what the client still sends for a moment, then
 * close. */
static void close_politely(int fd)
{
	coev_time_t deadline = coev_deadline(LINGER);
	char sink[512];

	if (coev_shutdown(fd, SHUT_WR) == 0)
		while (coev_read(fd, sink, sizeof sink, deadline) > 0)
			;
	coev_close(fd);
}

/* A connection's task. The socket arrives as the argument; the connection
 * state lives on this task's stack. It always returns 0: a connection
 * that ends badly is the client's business, and a failure would stop the
 * whole scope (it is COEV_SCOPE_FAIL_FAST, for the accept loop's sake). */
static int conn_task(void *arg)
{
	struct conn c;
	int r;

	/* Not the buffers: they are written before they are read. */
	c.fd = (int)(intptr_t)arg;
	c.in_request = false;
	c.reject = 0;
	c.url_len = c.body_len = c.out_len = 0;
	http_parser_init(&c.parser, HTTP_REQUEST);
	c.parser.data = &c;

	r = serve(&c);
	if (r == 0)
		close_politely(c.fd);
	else
		coev_close(c.fd);
	/* The routine ways for a connection to end need no message. */
	if (r < 0 && r != COEV_EEOF && r != -ECANCELED && r != -ETIMEDOUT &&
	    r != -ECONNRESET && r != -EPIPE)
		fprintf(stderr, "http_hello: connection: %s\n",
			coev_strerror(r));
	return 0;
}

/* --- the server --------------------------------------------------------- */

/* web.run_app(app)'s loop: accept connections and give each its own task
 * in the scope. Returns 0 when the scope is cancelled, or an error that
 * makes the server stop. */
static int accept_loop(void *arg)
{
	bool complained = false;
	int fd, r;

	(void)arg;
	for (;;) {
		fd = coev_accept(srv.lfd, NULL, NULL, COEV_FOREVER);
		if (fd == -ECANCELED)
			return 0;
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
		    fd == -ENOMEM) {
			/* Out of fds or memory: the connection waits in the
			 * kernel's queue until some close. */
			if (!complained)
				fprintf(stderr,
					"http_hello: accept: %s; waiting for "
					"connections to close\n",
					coev_strerror(fd));
			complained = true;
			if (coev_sleep(COEV_MSEC(100)) == -ECANCELED)
				return 0;
			continue;
		}
		if (fd < 0) {
			fprintf(stderr, "http_hello: accept: %s\n",
				coev_strerror(fd));
			return fd;
		}
		complained = false;
		r = coev_scope_spawn(srv.scope, "conn", conn_task,
				     (void *)(intptr_t)fd);
		if (r < 0) {
			coev_close(fd);
			if (r == -ECANCELED)
				return 0;
			fprintf(stderr, "http_hello: spawn: %s\n",
				coev_strerror(r));
			continue; /* -ENOMEM: drop this connection only */
		}
		atomic_fetch_add_explicit(&srv.connections, 1,
					  memory_order_relaxed);
	}
}

/* Wait for SIGINT or SIGTERM (counted by the watch main made before the
 * runtime started), then cancel the scope: the accept loop and every
 * connection end at their next wait, which is at once. */
static int watch_signals(void *arg)
{
	int s;

	(void)arg;
	s = coev_signal_wait(srv.stop, NULL, COEV_FOREVER);
	if (s == -ECANCELED)
		return 0; /* the server is stopping for another reason */
	if (s < 0) {
		fprintf(stderr, "http_hello: signal wait: %s\n",
			coev_strerror(s));
		return s;
	}
	printf("http_hello: %s, stopping\n", strsignal(s));
	coev_scope_cancel(srv.scope);
	return 0;
}

/* The first task: the scope that holds the whole server. Closing it waits
 * until every task in it has ended; that happens when the signal watcher
 * cancels it, or when the accept loop fails (COEV_SCOPE_FAIL_FAST). */
static int server_main(void *arg)
{
	int r;

	(void)arg;
	if ((r = coev_scope_open(COEV_SCOPE_FAIL_FAST, &srv.scope)) < 0) {
		fprintf(stderr, "http_hello: scope: %s\n", coev_strerror(r));
		return r;
	}
	r = coev_scope_spawn(srv.scope, "accept", accept_loop, NULL);
	if (r == 0)
		r = coev_scope_spawn(srv.scope, "signals", watch_signals, NULL);
	if (r < 0) {
		fprintf(stderr, "http_hello: spawn: %s\n", coev_strerror(r));
		coev_scope_cancel(srv.scope);
		(void)coev_scope_close(srv.scope); /* r is the error */
		return r;
	}
	return coev_scope_close(srv.scope);
}

/* Read a number of seconds (or of ms, with scale COEV_MSEC(1)) from an
 * option; exits on a bad one. */
static coev_time_t duration_arg(const char *s, coev_time_t scale, char opt)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= 0) || v > 1e6) {
		fprintf(stderr, "http_hello: -%c %s: not a duration\n", opt, s);
		exit(2);
	}
	return (coev_time_t)(v * (double)scale);
}

/* A number in [lo, hi] from the command line; exits on a bad one. */
static unsigned long number_arg(const char *s, unsigned long lo,
				unsigned long hi, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "http_hello: %s: bad %s\n", s, what);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: http_hello [-r SECS] [-i SECS] [-d MS] "
			"[PORT [WORKERS]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long port = 8080;
	static const int stop_signals[] = {SIGINT, SIGTERM};
	coev_config_t cfg;
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"http_hello: a COEV_* variable is malformed (%s); "
			"using the default\n",
			coev_strerror(r));
	while ((opt = getopt(argc, argv, "r:i:d:h")) != -1) {
		switch (opt) {
		case 'r':
			srv.request_timeout =
				duration_arg(optarg, COEV_SEC(1), 'r');
			break;
		case 'i':
			srv.idle_timeout =
				duration_arg(optarg, COEV_SEC(1), 'i');
			break;
		case 'd':
			srv.delay = duration_arg(optarg, COEV_MSEC(1), 'd');
			break;
		default: usage();
		}
	}
	if (argc - optind > 2)
		usage();
	if (optind < argc)
		port = number_arg(argv[optind], 0, 65535, "port");
	if (optind + 1 < argc)
		cfg.workers = (unsigned)number_arg(argv[optind + 1], 1,
						   COEV_WORKERS_MAX, "workers");

	/* Watch the stop signals before the runtime starts: from here on a
	 * SIGINT or SIGTERM is counted (not fatal), whichever thread the
	 * kernel gives it to, and the watcher task sees it. */
	if ((r = coev_signal_new(stop_signals, 2, &srv.stop)) < 0) {
		fprintf(stderr, "http_hello: signals: %s\n", coev_strerror(r));
		return EXIT_FAILURE;
	}
	srv.lfd = coev_tcp_listen("127.0.0.1", (unsigned)port, 0, 0);
	if (srv.lfd < 0) {
		fprintf(stderr, "http_hello: listen on 127.0.0.1:%lu: %s\n",
			port, coev_strerror(srv.lfd));
		coev_signal_free(srv.stop);
		return EXIT_FAILURE;
	}
	http_parser_set_max_header_size(HEADERS_MAX);

	printf("http_hello: listening on http://127.0.0.1:%d/ with %u "
	       "workers\n",
	       coev_sock_port(srv.lfd), cfg.workers);
	r = coev_run(server_main, NULL, &cfg);
	if (r < 0)
		fprintf(stderr, "http_hello: %s\n", coev_strerror(r));
	coev_close(srv.lfd);
	coev_signal_free(srv.stop);
	printf("http_hello: stopped after %lu connections and %lu requests\n",
	       atomic_load(&srv.connections), atomic_load(&srv.requests));
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
