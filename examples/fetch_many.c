/* SPDX-License-Identifier: MIT */
/*
 * examples/fetch_many.c — fetch many URLs at once, at most K at a time: the
 * asyncio posts' news-site fetcher, with libcurl through coev's adapter,
 * against the http_hello server.
 *
 *   async def fetch(session, url):
 *       async with session.get(url) as response:
 *           return await response.text()
 *
 *   sem = asyncio.Semaphore(10)
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
 *   -n N     requests to make (default 100, at most 10000): GET /, /Ada,
 *            /Grace, ...
 *   -k K     at most K requests in flight (default 10)
 *   -t SECS  deadline of each request, from taking its permit to the last
 *            byte (default 5)
 *   -v       print every request and its answer, not only the failures
 *   HOST     a numeric address or a name (default 127.0.0.1); [::1] for v6
 *
 * It prints what it fetched (each greeting and how often it came), the
 * peak number of requests in flight, and the wall time of the whole run
 * against the sum of the individual request times: with K requests in
 * flight, the run takes about 1/K of the sum, because each request spends
 * its time waiting on the network and the server while the others
 * proceed. It exits with status 1 when any request failed or more than K
 * were ever in flight, 2 for bad arguments.
 *
 * How: as the asyncio code, one task per URL, all gathered with
 * coev_gather; each takes a permit of a coev_sem_t of K (asyncio's
 * Semaphore) around its request, so K run and the rest wait in the
 * semaphore's queue (each waiting task holds its stack: hence -n's cap).
 * The session is a coev_curl_t (coev/curl.h): one libcurl multi handle,
 * with its connection cache, owned by the first task's worker; a request
 * is coev_curl_get(), which hands the transfer to that worker and suspends
 * the task until the whole body is in, with the request's deadline. Each
 * task counts itself in an atomic in-flight counter while it holds its
 * permit and raises an atomic peak, which must never exceed K.
 */
#include <coev.h>
#include <coev/curl.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_MAX 10000

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

/* One request: what to ask, what the answer must say, and how it went.
 * Its task writes the results; fetch_main reads them after the gather. */
struct request {
	struct run *run;
	char path[32];
	char expect[48];  /* the body that must come back */
	coev_time_t took; /* from the permit to the last byte */
	int status;	  /* the HTTP status, 0 if none came */
	int err;	  /* 0, or why the request failed */
};

/* The whole run, shared by the tasks. */
struct run {
	char base[300]; /* http://HOST:PORT */
	coev_time_t timeout;
	size_t n, k;
	bool verbose;
	struct request *reqs;
	coev_curl_t *session;
	coev_sem_t sem;
	atomic_size_t in_flight; /* requests holding a permit now */
	atomic_size_t peak;	 /* the most in_flight has been */
};

/* Seconds, for printing. */
static double secs(coev_time_t ns)
{
	return (double)ns / 1e9;
}

/* Raise *max to at least v. */
static void atomic_max(atomic_size_t *max, size_t v)
{
	size_t cur = atomic_load_explicit(max, memory_order_relaxed);

	while (cur < v && !atomic_compare_exchange_weak_explicit(
				  max, &cur, v, memory_order_relaxed,
				  memory_order_relaxed))
		;
}

/* session.get(url).text(): one GET. Fills in req's status, time and
 * error; an answer other than the greeting asked for is -EBADMSG. */
static void fetch(struct run *run, struct request *req)
{
	coev_time_t start = coev_now();
	char url[sizeof run->base + sizeof req->path];
	char *body = NULL;
	size_t len = 0;

	snprintf(url, sizeof url, "%s%s", run->base, req->path);
	req->err = coev_curl_get(run->session, url, start + run->timeout, &body,
				 &len, &req->status);
	if (req->err == 0 && req->status == 200 &&
	    (len != strlen(req->expect) || memcmp(body, req->expect, len) != 0))
		req->err = -EBADMSG; /* not the greeting we asked for */
	req->took = coev_now() - start;
	if (run->verbose && req->err == 0)
		printf("  #%-4zu GET %-10s %d in %.3f s: %s\n",
		       (size_t)(req - run->reqs), req->path, req->status,
		       secs(req->took), body);
	free(body);
}

/* bounded(url): async with sem, then fetch. The in-flight counter goes up
 * only after the permit is taken and down before it is given back, so it
 * counts permit holders (relaxed: the semaphore orders a release before
 * the acquire that receives its permit). */
static int bounded(void *arg)
{
	struct request *req = arg;
	struct run *run = req->run;
	size_t i = (size_t)(req - run->reqs);
	int r;

	if ((r = coev_sem_acquire(&run->sem)) < 0) {
		req->err = r;
		return r;
	}
	atomic_max(&run->peak, atomic_fetch_add_explicit(&run->in_flight, 1,
							 memory_order_relaxed) +
				       1);
	fetch(run, req);
	atomic_fetch_sub_explicit(&run->in_flight, 1, memory_order_relaxed);
	coev_sem_release(&run->sem);

	if (req->err < 0)
		printf("  #%-4zu GET %-10s failed after %.3f s: %s\n", i,
		       req->path, secs(req->took), coev_strerror(req->err));
	else if (req->status != 200)
		printf("  #%-4zu GET %-10s HTTP %d after %.3f s\n", i,
		       req->path, req->status, secs(req->took));
	return req->err;
}

/* What came back: each greeting and how many times, wrapped at 76. */
static void print_fetched(const struct run *run)
{
	size_t count[NNAMES + 1] = {0}, col = 0, total = 0;

	for (size_t i = 0; i < run->n; i++) {
		const struct request *req = &run->reqs[i];

		if (req->err == 0 && req->status == 200) {
			count[i % (NNAMES + 1)]++;
			total++;
		}
	}
	if (total == 0) {
		printf("  fetched: nothing\n");
		return;
	}
	printf("  fetched:");
	col = 10;
	for (size_t w = 0; w <= NNAMES && w < run->n; w++) {
		char item[80];
		int len = snprintf(item, sizeof item, " %zu x \"%s\"%s",
				   count[w], run->reqs[w].expect,
				   w < NNAMES && w + 1 < run->n ? "," : "");

		if (col + (size_t)len > 76) {
			printf("\n   ");
			col = 3;
		}
		fputs(item, stdout);
		col += (size_t)len;
	}
	printf("\n");
}

/* The first task: open the session, start one task per URL, gather them,
 * and sum up. Returns 0 when every request got its greeting and the peak
 * kept to the limit, 1 otherwise, or a negative code when nothing ran. */
static int fetch_main(void *arg)
{
	struct run *run = arg;
	coev_task_t **tasks = calloc(run->n, sizeof *tasks);
	int *rets = calloc(run->n, sizeof *rets);
	coev_time_t start, wall, sum = 0, fastest = COEV_FOREVER, slowest = 0;
	size_t started = 0, failed = 0, peak;
	int r;

	if (tasks == NULL || rets == NULL) {
		fprintf(stderr, "fetch_many: out of memory\n");
		free(tasks);
		free(rets);
		return -ENOMEM;
	}
	if ((r = coev_curl_new(&run->session)) < 0) {
		fprintf(stderr, "fetch_many: libcurl: %s\n", coev_strerror(r));
		free(tasks);
		free(rets);
		return r;
	}
	printf("fetch_many: %zu GETs from %s with libcurl, at most %zu at a "
	       "time\n",
	       run->n, run->base, run->k);
	start = coev_now();
	for (; started < run->n; started++) {
		r = coev_spawn_named("bounded", bounded, &run->reqs[started],
				     &tasks[started]);
		if (r < 0) {
			fprintf(stderr, "fetch_many: spawn: %s\n",
				coev_strerror(r));
			break;
		}
	}
	if (started > 0 && (r = coev_gather(tasks, started, rets)) < 0)
		fprintf(stderr, "fetch_many: gather: %s\n", coev_strerror(r));
	wall = coev_now() - start;
	coev_curl_free(run->session);
	free(tasks);
	free(rets);
	if (started == 0)
		return r; /* the spawn's error */

	for (size_t i = 0; i < run->n; i++) {
		const struct request *req = &run->reqs[i];

		if (i >= started || req->err < 0 || req->status != 200)
			failed++;
		sum += req->took;
		fastest = req->took < fastest ? req->took : fastest;
		slowest = req->took > slowest ? req->took : slowest;
	}
	peak = atomic_load(&run->peak);
	print_fetched(run);
	printf("  %zu answered with the right greeting, %zu failed\n",
	       run->n - failed, failed);
	printf("  peak in flight: %zu (limit %zu)\n", peak, run->k);
	printf("  wall time %.3f s; the requests took %.3f s added up "
	       "(%.1fx)\n",
	       secs(wall), secs(sum),
	       wall > 0 ? (double)sum / (double)wall : 0);
	if (failed == 0 && run->k > 1)
		printf("  each one waited on the network and the server while "
		       "the others ran\n");
	printf("  fastest request %.3f s, slowest %.3f s\n", secs(fastest),
	       secs(slowest));
	if (peak > run->k) {
		printf("fetch_many: FAILED: %zu requests in flight at once, "
		       "the limit is %zu\n",
		       peak, run->k);
		return 1;
	}
	return failed ? 1 : 0;
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

/* [HOST:]PORT (HOST may be [v6-address]) into run->base, "http://HOST:PORT".
 * The string is modified in place. Exits on a malformed one. */
static void parse_target(char *s, struct run *run)
{
	const char *host = "127.0.0.1";
	char *colon;
	bool v6 = false;
	unsigned port;
	int n;

	if (s[0] == '[' && (colon = strstr(s, "]:")) != NULL) {
		*colon = '\0';
		host = s + 1;
		s = colon + 2;
		v6 = true;
	} else if ((colon = strrchr(s, ':')) != NULL) {
		*colon = '\0';
		host = s;
		s = colon + 1;
	}
	port = (unsigned)number_arg(s, 1, 65535);
	n = snprintf(run->base, sizeof run->base, "http://%s%s%s:%u",
		     v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= sizeof run->base) {
		fprintf(stderr, "fetch_many: host name too long\n");
		usage();
	}
}

int main(int argc, char **argv)
{
	struct run run = {.n = 100, .k = 10, .timeout = COEV_SEC(5)};
	coev_config_t cfg;
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:k:t:vh")) != -1) {
		switch (opt) {
		case 'n': run.n = (size_t)number_arg(optarg, 1, N_MAX); break;
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
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"fetch_many: a COEV_* variable is malformed (%s)\n",
			coev_strerror(r));

	run.reqs = calloc(run.n, sizeof *run.reqs);
	if (run.reqs == NULL || coev_sem_init(&run.sem, (unsigned)run.k) < 0) {
		fprintf(stderr, "fetch_many: out of memory\n");
		free(run.reqs);
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < run.n; i++) {
		struct request *req = &run.reqs[i];
		size_t which = i % (NNAMES + 1);

		req->run = &run;
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
	coev_sem_destroy(&run.sem);
	free(run.reqs);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
