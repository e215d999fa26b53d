/*
 * examples/fetch_many.c — fetch many URLs at once, at most K at a time: the
 * asyncio posts' news-site fetcher, against the http_hello server.
 *
 *   async def fetch(session, url):
 *       async with session.get(url) as response:
 *           return await response.text()
 *
 *   sem = asyncio.Semaphore(K)
 *   async def bounded(url):
 *       async with sem:
 *           return await fetch(session, url)
 *   pages = await asyncio.gather(*[bounded(u) for u in urls])
 *
 * Run it against the hello server (here one that takes 100 ms to answer):
 *
 *   make examples
 *   build/examples/http_hello -d 100 8080 &
 *   build/examples/fetch_many -n 50 -k 10 8080
 *   kill %1
 *
 * Usage: fetch_many [-n N] [-k K] [-t SECS] [-v] [HOST:]PORT
 *   -n N     requests to make (default 100): GET /, /Ada, /Grace, ...
 *   -k K     at most K requests in flight (default 10)
 *   -t SECS  deadline of each request, connect to last byte (default 5)
 *   -v       print every request, not only the failures
 *   HOST     a numeric address or a name (default 127.0.0.1)
 *
 * It prints the wall time of the whole run against the sum of the
 * individual request times: with K requests in flight, the run takes
 * about 1/K of the sum, because each request spends its time waiting on
 * the network and the server while the others proceed. It exits with
 * status 1 when any request failed.
 *
 * How: coev has no semaphore yet, so the limit is K worker tasks, each
 * taking the next request number from an atomic counter until none is
 * left, joined with coev_gather. Each request opens a connection
 * (coev_tcp_connect), writes the request (coev_write_all), reads until the
 * status line, headers and Content-Length bytes of body are in (coev_read),
 * and checks the greeting; every call has the request's deadline.
 */
#include <coev.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RESPONSE_MAX 2048 /* the hello server's answers are ~150 bytes */

/* The names to greet, in turn; request 0, N+1, ... asks for / instead. */
static const char *const names[] = {
	"Ada",	    /* Lovelace */
	"Grace",    /* Hopper */
	"Edsger",   /* Dijkstra */
	"Barbara",  /* Liskov */
	"Dennis",   /* Ritchie */
	"Ken",	    /* Thompson */
	"Margaret", /* Hamilton */
	"Donald",   /* Knuth */
	"Radia",    /* Perlman */
	"Niklaus",  /* Wirth */
};
#define NNAMES (sizeof names / sizeof names[0])

/* One request: what to ask, what the answer must say, and how it went. */
struct request {
	char path[32];
	char expect[48];  /* the body that must come back */
	coev_time_t took; /* from connect to the last byte */
	int status;	  /* the HTTP status, 0 if none came */
	int err;	  /* 0, or why the request failed */
};

/* The whole run, shared by the worker tasks. */
struct run {
	const char *host;
	unsigned port;
	coev_time_t timeout;
	size_t n, k;
	struct request *reqs;
	atomic_size_t next; /* the next request number to take */
	bool verbose;
};

/* Seconds, for printing. */
static double secs(coev_time_t ns)
{
	return (double)ns / 1e9;
}

/* Find the status and Content-Length in the response head buf[0..head),
 * which holds the status line and headers and ends with the empty line.
 * Returns 0 or -EPROTO for a head that is not HTTP. */
static int parse_head(const char *buf, size_t head, int *status,
		      size_t *content_length)
{
	const char *line, *end = buf + head;
	bool have_length = false;

	if (sscanf(buf, "HTTP/1.%*1[01] %3d ", status) != 1)
		return -EPROTO;
	for (line = buf; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));

		if (eol == NULL)
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0) {
			char *stop;
			unsigned long v = strtoul(line + 15, &stop, 10);

			if (stop == line + 15 || v > RESPONSE_MAX)
				return -EPROTO;
			*content_length = v;
			have_length = true;
		}
		line = eol + 1;
	}
	return have_length ? 0 : -EPROTO;
}

/* Read one response from fd into buf (RESPONSE_MAX + 1 bytes): the head,
 * then as many bytes of body as Content-Length says. Stores the status,
 * and the body in *body and *body_len. Returns 0 or a negative code
 * (COEV_EEOF for a response cut short). */
static int read_response(int fd, char *buf, coev_time_t deadline, int *status,
			 const char **body, size_t *body_len)
{
	size_t len = 0, head = 0, clen = 0;
	ssize_t n;
	int r;

	for (;;) {
		if (head > 0 && len >= head + clen)
			break;
		if (len == RESPONSE_MAX)
			return -EMSGSIZE;
		n = coev_read(fd, buf + len, RESPONSE_MAX - len, deadline);
		if (n == 0)
			return COEV_EEOF;
		if (n < 0)
			return (int)n;
		len += (size_t)n;
		buf[len] = '\0';
		if (head == 0) {
			char *blank = strstr(buf, "\r\n\r\n");

			if (blank == NULL)
				continue;
			head = (size_t)(blank - buf) + 4;
			if ((r = parse_head(buf, head, status, &clen)) < 0)
				return r;
		}
	}
	*body = buf + head;
	*body_len = clen;
	return 0;
}

/* session.get(url): one GET on a new connection. Fills in req's status,
 * time and error. */
static void fetch(const struct run *run, struct request *req)
{
	coev_time_t start = coev_now();
	coev_time_t deadline = start + run->timeout;
	char buf[RESPONSE_MAX + 1];
	bool v6 = strchr(run->host, ':') != NULL; /* [::1]:8080 in Host */
	const char *body = NULL;
	size_t body_len = 0;
	ssize_t w;
	int fd, n;

	fd = coev_tcp_connect(run->host, run->port, deadline);
	if (fd < 0) {
		req->err = fd;
		goto out;
	}
	n = snprintf(buf, sizeof buf,
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s%s%s:%u\r\n"
		     "Connection: close\r\n"
		     "\r\n",
		     req->path, v6 ? "[" : "", run->host, v6 ? "]" : "",
		     run->port);
	if (n < 0 || (size_t)n >= sizeof buf) {
		req->err = -ENAMETOOLONG; /* a host name of 2 KiB? */
	} else if ((w = coev_write_all(fd, buf, (size_t)n, NULL, deadline)) <
		   0) {
		req->err = (int)w;
	} else {
		req->err = read_response(fd, buf, deadline, &req->status, &body,
					 &body_len);
		if (req->err == 0 && req->status == 200 &&
		    (body_len != strlen(req->expect) ||
		     memcmp(body, req->expect, body_len) != 0))
			req->err = -EBADMSG; /* not the greeting we asked for */
	}
	coev_close(fd);
out:
	req->took = coev_now() - start;
}

/* One of the K workers: take the next request until none is left. */
static int fetch_worker(void *arg)
{
	struct run *run = arg;
	size_t i;

	while ((i = atomic_fetch_add(&run->next, 1)) < run->n) {
		struct request *req = &run->reqs[i];

		fetch(run, req);
		if (req->err < 0)
			printf("  #%-4zu GET %-10s failed after %.3f s: %s\n",
			       i, req->path, secs(req->took),
			       req->err == -ENOENT ? "unknown host"
						   : coev_strerror(req->err));
		else if (req->status != 200)
			printf("  #%-4zu GET %-10s HTTP %d after %.3f s\n", i,
			       req->path, req->status, secs(req->took));
		else if (run->verbose)
			printf("  #%-4zu GET %-10s %d in %.3f s\n", i,
			       req->path, req->status, secs(req->took));
	}
	return 0;
}

/* The first task: start K workers, wait for all of them, and sum up.
 * Returns the number of failed requests, or a negative code when no
 * worker could start. */
static int fetch_main(void *arg)
{
	struct run *run = arg;
	coev_task_t **workers = calloc(run->k, sizeof *workers);
	int *rets = calloc(run->k, sizeof *rets);
	coev_time_t start, wall, sum = 0, fastest = COEV_FOREVER, slowest = 0;
	size_t started = 0, failed = 0;
	int r = 0;

	if (workers == NULL || rets == NULL) {
		fprintf(stderr, "fetch_many: out of memory\n");
		free(workers);
		free(rets);
		return -ENOMEM;
	}
	printf("fetch_many: %zu GETs from %s:%u, at most %zu at a time\n",
	       run->n, run->host, run->port, run->k);
	start = coev_now();
	for (; started < run->k; started++) {
		r = coev_spawn_named("fetcher", fetch_worker, run,
				     &workers[started]);
		if (r < 0) { /* the workers already started do it all */
			fprintf(stderr, "fetch_many: spawn: %s\n",
				coev_strerror(r));
			break;
		}
	}
	if (started > 0 && (r = coev_gather(workers, started, rets)) < 0)
		fprintf(stderr, "fetch_many: gather: %s\n", coev_strerror(r));
	wall = coev_now() - start;
	free(workers);
	free(rets);
	if (started == 0)
		return r;

	for (size_t i = 0; i < run->n; i++) {
		const struct request *req = &run->reqs[i];

		if (req->err < 0 || req->status != 200)
			failed++;
		sum += req->took;
		fastest = req->took < fastest ? req->took : fastest;
		slowest = req->took > slowest ? req->took : slowest;
	}
	printf("  %zu answered with the right greeting, %zu failed\n",
	       run->n - failed, failed);
	printf("  wall time %.3f s; the requests took %.3f s added up "
	       "(%.1fx)\n",
	       secs(wall), secs(sum),
	       wall > 0 ? (double)sum / (double)wall : 0);
	if (failed == 0 && run->k > 1)
		printf("  each one waited on the network and the server while "
		       "the others ran\n");
	printf("  fastest request %.3f s, slowest %.3f s\n", secs(fastest),
	       secs(slowest));
	return (int)failed;
}

static void usage(void)
{
	fprintf(stderr, "usage: fetch_many [-n N] [-k K] [-t SECS] [-v] "
			"[HOST:]PORT\n");
	exit(2);
}

/* A number in [lo, hi] from the command line; exits on a bad one. */
static double number_arg(const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "fetch_many: %s: out of range\n", s);
		usage();
	}
	return v;
}

/* Split [HOST:]PORT (HOST may be [v6-address]) into run's host and port;
 * the string is modified in place. Exits on a malformed one. */
static void parse_target(char *s, struct run *run)
{
	char *colon;

	run->host = "127.0.0.1";
	if (s[0] == '[' && (colon = strstr(s, "]:")) != NULL) {
		*colon = '\0';
		run->host = s + 1;
		s = colon + 2;
	} else if ((colon = strrchr(s, ':')) != NULL) {
		*colon = '\0';
		run->host = s;
		s = colon + 1;
	}
	run->port = (unsigned)number_arg(s, 1, 65535);
}

int main(int argc, char **argv)
{
	struct run run = {.n = 100, .k = 10, .timeout = COEV_SEC(5)};
	coev_config_t cfg;
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:k:t:vh")) != -1) {
		switch (opt) {
		case 'n': run.n = (size_t)number_arg(optarg, 1, 1e7); break;
		case 'k': run.k = (size_t)number_arg(optarg, 1, 1e5); break;
		case 't':
			run.timeout = (coev_time_t)(number_arg(optarg, 0, 1e6) *
						    (double)COEV_SEC(1));
			break;
		case 'v': run.verbose = true; break;
		default: usage();
		}
	}
	if (argc - optind != 1)
		usage();
	parse_target(argv[optind], &run);
	if (run.k > run.n)
		run.k = run.n;
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"fetch_many: a COEV_* variable is malformed (%s)\n",
			coev_strerror(r));

	run.reqs = calloc(run.n, sizeof *run.reqs);
	if (run.reqs == NULL) {
		fprintf(stderr, "fetch_many: out of memory\n");
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < run.n; i++) {
		struct request *req = &run.reqs[i];
		size_t which = i % (NNAMES + 1);

		if (which == 0) {
			strcpy(req->path, "/");
			strcpy(req->expect, "Hello, Anonymous!");
		} else {
			snprintf(req->path, sizeof req->path, "/%s",
				 names[which - 1]);
			snprintf(req->expect, sizeof req->expect, "Hello, %s!",
				 names[which - 1]);
		}
	}
	r = coev_run(fetch_main, &run, &cfg);
	if (r < 0)
		fprintf(stderr, "fetch_many: %s\n", coev_strerror(r));
	free(run.reqs);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
