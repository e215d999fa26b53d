/* SPDX-License-Identifier: MIT */
/*
 * bench/coev/redis_bench.c — coev's side of the redis workload: what
 * `redis-benchmark -t set,get -c 50 -n N -d 3 -P 1` does, with tasks and
 * the hiredis adapter (coev/redis.h).
 *
 *   coev-redis-bench [-p port] [-n requests] [-c clients] <workers> [mode...]
 *
 * As redis-benchmark: first a SET test, then a GET test, each of N
 * requests (default 100000) shared by C clients (default 50), each client
 * waiting for its reply before its next request (no pipelining within a
 * client); the key is redis-benchmark's own when -r is not given,
 * "key:__rand_int__", the value 3 bytes, "xxx". A test's rate is N over
 * the time from the clients' start to the last reply; ops_per_s is the
 * mean of the SET and GET rates, as bench/redis/run-redis.sh reports for
 * redis-benchmark. Connections are made before the clock starts. The
 * server is 127.0.0.1, port $COEV_REDIS_PORT (default 6390) unless -p.
 *
 * Modes (default: conn_per_task shared):
 *   conn_per_task   one connection per client, like redis-benchmark -c;
 *                   connection i is owned by worker i % workers and client
 *                   i is pinned there (the intended use: a task and its
 *                   connection on one worker);
 *   shared          one connection per worker; the clients are spread over
 *                   the workers, pinned, and pipeline through their
 *                   worker's connection;
 *   conn_per_task_unpinned  as conn_per_task, clients not pinned (a client
 *                   stolen to the other worker hands its commands over);
 *   one_conn        one connection, owned by worker 0; the clients are not
 *                   pinned: a command from a client running on worker 1
 *                   is handed to worker 0 (the adapter's queue and one
 *                   coev_submit per burst);
 *   one_conn_pinto  the same, each command wrapped in coev_pin_to(0) ...
 *                   coev_unpin() (so the clients gather on worker 0);
 *   cross           one connection, owned by worker 0; the clients have a
 *                   home worker (half on 0, half on 1) and stay pinned
 *                   there: worker 1's commands are handed over;
 *   cross_pinto     the same homes; a client away from worker 0 moves
 *                   there for each command and back home after it
 *                   (coev_pin_to(0), the command, coev_pin_to(home)): the
 *                   rejected design, for comparison;
 *   all             every mode above.
 * Prints one line per mode:
 *   BENCH redis <runtime> workers=<n> ops_per_s=<mean> set_per_s=...
 *       get_per_s=... mode=<mode> clients=<c> requests=<n>
 * where <runtime> is "coev" for conn_per_task, the mode that does what
 * redis-benchmark does, and "coev-<mode>" for the others: bench/report.py
 * pools every line of a runtime, and a pipelining mode is no comparison
 * with redis-benchmark -P 1. Exits non-zero when a command fails or a
 * reply is wrong.
 */
#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coev.h"
#include "coev/redis.h"
#include "common.h"

#define MAX_CLIENTS 1024

enum mode {
	CONN_PER_TASK,
	SHARED,
	UNPINNED,
	ONE_CONN,
	ONE_CONN_PINTO,
	CROSS,
	CROSS_PINTO,
	NMODES
};

static const char *const mode_names[NMODES] = {
	"conn_per_task", "shared",	   "conn_per_task_unpinned",
	"one_conn",	 "one_conn_pinto", "cross",
	"cross_pinto",
};

struct bench {
	int port, clients;
	long requests;
	unsigned workers;
	enum mode mode;
	coev_redis_t *conns[MAX_CLIENTS];
	int nconns;
	bool get; /* the GET test, else the SET test */
	atomic_long issued;
	atomic_int errors;
	char line[256];
};

struct client {
	struct bench *b;
	int i;
};

static const char *const set_argv[] = {"SET", "key:__rand_int__", "xxx"};
static const char *const get_argv[] = {"GET", "key:__rand_int__"};

/* The connection client i uses and the worker it is pinned to (-1: none). */
static coev_redis_t *conn_of(struct bench *b, int i, int *pin)
{
	switch (b->mode) {
	case CONN_PER_TASK: *pin = i % (int)b->workers; return b->conns[i];
	case UNPINNED: *pin = -1; return b->conns[i];
	case SHARED: *pin = i % (int)b->workers; return b->conns[*pin];
	case CROSS:
	case CROSS_PINTO: *pin = i % (int)b->workers; return b->conns[0];
	default: *pin = -1; return b->conns[0];
	}
}

static bool reply_ok(const struct bench *b, const coev_redis_reply_t *rep)
{
	if (b->get)
		return rep->type == COEV_REDIS_STRING && rep->len == 3 &&
		       memcmp(rep->str, "xxx", 3) == 0;
	return rep->type == COEV_REDIS_STATUS && strcmp(rep->str, "OK") == 0;
}

static int client(void *arg)
{
	struct client *cl = arg;
	struct bench *b = cl->b;
	coev_redis_reply_t *rep;
	int pin, r;
	coev_redis_t *c = conn_of(b, cl->i, &pin);
	unsigned owner = (unsigned)coev_redis_owner(c);
	/* Moves to the owner for each command (and back to its pin). */
	bool pinto = b->mode == ONE_CONN_PINTO ||
		     (b->mode == CROSS_PINTO && pin != (int)owner);

	if (pin >= 0 && (r = coev_pin_to((unsigned)pin)) < 0)
		return fail("coev_pin_to", r);
	while (atomic_fetch_add_explicit(&b->issued, 1, memory_order_relaxed) <
	       b->requests) {
		if (pinto) {
			if (pin >= 0)
				coev_unpin();
			coev_pin_to(owner);
		}
		if (b->get)
			r = coev_redis_commandargv(c, COEV_FOREVER, &rep, 2,
						   get_argv, NULL);
		else
			r = coev_redis_commandargv(c, COEV_FOREVER, &rep, 3,
						   set_argv, NULL);
		if (pinto) {
			coev_unpin();
			if (pin >= 0)
				coev_pin_to((unsigned)pin);
		}
		if (r < 0 || !reply_ok(b, rep)) {
			if (atomic_fetch_add(&b->errors, 1) == 0)
				fail(b->get ? "GET" : "SET",
				     r < 0 ? r : -EPROTO);
			coev_redis_reply_free(rep);
			break;
		}
		coev_redis_reply_free(rep);
	}
	if (pin >= 0)
		coev_unpin();
	return 0;
}

/* Runs one test with every client; returns requests per second, or a
 * negative error. */
static double run_test(struct bench *b, bool get)
{
	struct client cl[MAX_CLIENTS];
	coev_task_t *t[MAX_CLIENTS];
	int n = 0, r;

	b->get = get;
	atomic_store(&b->issued, 0);
	int64_t t0 = now_ns();
	for (; n < b->clients; n++) {
		cl[n].b = b;
		cl[n].i = n;
		if ((r = coev_spawn(client, &cl[n], &t[n])) < 0) {
			fail("coev_spawn", r);
			atomic_store(&b->issued, b->requests);
			break;
		}
	}
	for (int i = 0; i < n; i++)
		coev_join(t[i], NULL);
	int64_t t1 = now_ns();
	if (n < b->clients || atomic_load(&b->errors))
		return -1;
	return (double)b->requests * 1e9 / (double)(t1 - t0);
}

struct conn_job {
	struct bench *b;
	int i;
	unsigned worker;
	int rc;
};

static int connect_on(void *arg)
{
	struct conn_job *j = arg;
	int r;

	if ((r = coev_pin_to(j->worker)) < 0)
		return j->rc = fail("coev_pin_to", r);
	j->rc = coev_redis_connect("127.0.0.1", j->b->port,
				   coev_deadline(COEV_SEC(5)),
				   &j->b->conns[j->i]);
	if (j->rc < 0)
		fail("coev_redis_connect", j->rc);
	coev_unpin();
	return 0;
}

/* Connection i owned by worker i % workers, for the mode's count. */
static int connect_all(struct bench *b)
{
	static struct conn_job jobs[MAX_CLIENTS];
	coev_task_t *t[MAX_CLIENTS];
	int n, r, err = 0;

	switch (b->mode) {
	case CONN_PER_TASK:
	case UNPINNED: n = b->clients; break;
	case SHARED: n = (int)b->workers; break;
	default: n = 1; break;
	}
	b->nconns = 0;
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct conn_job){b, i, (unsigned)i % b->workers, 0};
		if ((r = coev_spawn(connect_on, &jobs[i], &t[i])) < 0)
			return fail("coev_spawn", r);
	}
	for (int i = 0; i < n; i++) {
		coev_join(t[i], NULL);
		if (jobs[i].rc < 0 && !err)
			err = jobs[i].rc;
	}
	b->nconns = n;
	return err;
}

static void close_all(struct bench *b)
{
	for (int i = 0; i < b->nconns; i++) {
		if (b->conns[i])
			coev_redis_close(b->conns[i]);
		b->conns[i] = NULL;
	}
	b->nconns = 0;
}

static int bench_mode(struct bench *b)
{
	double set, get;
	int r;

	if ((r = connect_all(b)) < 0) {
		close_all(b);
		return r;
	}
	set = run_test(b, false);
	get = set < 0 ? -1 : run_test(b, true);
	close_all(b);
	if (set < 0 || get < 0)
		return -1;
	snprintf(b->line, sizeof b->line,
		 "ops_per_s=%.0f set_per_s=%.0f get_per_s=%.0f mode=%s "
		 "clients=%d requests=%ld",
		 (set + get) / 2, set, get, mode_names[b->mode], b->clients,
		 b->requests);
	return 0;
}

static int bench_main(void *arg)
{
	return bench_mode(arg);
}

static void usage(void)
{
	fprintf(stderr, "usage: coev-redis-bench [-p port] [-n requests] "
			"[-c clients] <workers> [mode...|all]\n");
}

int main(int argc, char **argv)
{
	static struct bench b;
	const char *env = getenv("COEV_REDIS_PORT");
	bool want[NMODES] = {false};
	coev_config_t cfg;
	int opt, rc, any = 0;

	b.port = env && *env ? atoi(env) : 6390;
	b.requests = 100000;
	b.clients = 50;
	while ((opt = getopt(argc, argv, "p:n:c:")) != -1) {
		switch (opt) {
		case 'p': b.port = atoi(optarg); break;
		case 'n': b.requests = atol(optarg); break;
		case 'c': b.clients = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (optind >= argc || b.requests < 1 || b.clients < 1 ||
	    b.clients > MAX_CLIENTS) {
		usage();
		return 2;
	}
	if ((rc = bench_config(&cfg, argv[optind])) != 0)
		return rc;
	b.workers = cfg.workers;
	for (int i = optind + 1; i < argc; i++) {
		int hit = 0;

		for (int m = 0; m < NMODES; m++) {
			if (!strcmp(argv[i], mode_names[m]) ||
			    !strcmp(argv[i], "all"))
				want[m] = true;
			hit = any = 1;
		}
		if (!hit) {
			fprintf(stderr, "coev-redis-bench: unknown mode %s\n",
				argv[i]);
			return 2;
		}
	}
	if (!any)
		want[CONN_PER_TASK] = want[SHARED] = true;
	if (b.workers < 2) /* the cross modes need a second worker */
		want[CROSS] = want[CROSS_PINTO] = want[ONE_CONN] =
			want[ONE_CONN_PINTO] = false;
	for (int m = 0; m < NMODES; m++) {
		if (!want[m])
			continue;
		b.mode = (enum mode)m;
		atomic_store(&b.errors, 0);
		rc = coev_run(bench_main, &b, &cfg);
		if (rc < 0) {
			fprintf(stderr, "coev-redis-bench: %s failed\n",
				mode_names[m]);
			return 1;
		}
		printf("BENCH redis coev%s%s workers=%u %s\n",
		       m == CONN_PER_TASK ? "" : "-",
		       m == CONN_PER_TASK ? "" : mode_names[m], cfg.workers,
		       b.line);
		fflush(stdout);
	}
	return 0;
}
