/* SPDX-License-Identifier: MIT */
/*
 * examples/redis_counter.c — 100 tasks on every worker increment counters
 * in Redis through one shared connection (coev/redis.h), then the totals
 * are checked.
 *
 *   ci/servers.sh start      # or: redis-server --port 6390 --save '' &
 *   make build/examples/redis_counter
 *   COEV_REDIS_PORT=6390 build/examples/redis_counter
 *
 * Each task adds 1 to one of four fields of a hash (HINCRBY), ROUNDS
 * times, waiting for each reply before the next. The tasks share one
 * connection: hiredis pipelines what they send during one loop turn into
 * one write, and each task gets its own reply back. Exits 0 when every
 * field holds what was added, 1 when not (or a command failed), 2 when the
 * server cannot be reached.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coev.h"
#include "coev/redis.h"

#define TASKS 100
#define ROUNDS 1000
#define FIELDS 4

static coev_redis_t *conn;
static char hash[64];
static atomic_int failed;

static int counter(void *arg)
{
	int field = (int)(intptr_t)arg % FIELDS;
	coev_redis_reply_t *rep;
	int r;

	for (int i = 0; i < ROUNDS; i++) {
		r = coev_redis_command(conn, coev_deadline(COEV_SEC(5)), &rep,
				       "HINCRBY %s f%d 1", hash, field);
		if (r < 0 || rep->type != COEV_REDIS_INTEGER) {
			fprintf(stderr, "HINCRBY: %s\n",
				r < 0 ? coev_strerror(r) : rep->str);
			coev_redis_reply_free(rep);
			atomic_fetch_add(&failed, 1);
			return r < 0 ? r : -EPROTO;
		}
		coev_redis_reply_free(rep);
	}
	return 0;
}

/* Checks every field; returns the number of wrong ones. */
static int check(void)
{
	long long want = (long long)TASKS / FIELDS * ROUNDS;
	coev_redis_reply_t *rep;
	int wrong = 0;

	for (int f = 0; f < FIELDS; f++) {
		long long got = -1;

		if (coev_redis_command(conn, coev_deadline(COEV_SEC(5)), &rep,
				       "HGET %s f%d", hash, f) == 0 &&
		    rep->type == COEV_REDIS_STRING)
			got = atoll(rep->str);
		coev_redis_reply_free(rep);
		printf("  f%d = %lld%s\n", f, got,
		       got == want ? "" : "  WRONG");
		wrong += got != want;
	}
	return wrong;
}

static int run(void *arg)
{
	int port = *(int *)arg, r, wrong;
	coev_task_t *t[TASKS];
	coev_time_t t0;

	r = coev_redis_connect("127.0.0.1", port, coev_deadline(COEV_SEC(2)),
			       &conn);
	if (r < 0) {
		fprintf(stderr,
			"redis_counter: cannot reach redis-server on "
			"127.0.0.1:%d: %s (start one: ci/servers.sh start)\n",
			port, coev_strerror(r));
		return 2;
	}
	snprintf(hash, sizeof hash, "coev:example:counter:%d", (int)getpid());
	coev_redis_command(conn, coev_deadline(COEV_SEC(5)), NULL, "DEL %s",
			   hash);

	t0 = coev_now();
	for (int i = 0; i < TASKS; i++) {
		if ((r = coev_spawn(counter, (void *)(intptr_t)i, &t[i])) < 0) {
			fprintf(stderr, "spawn: %s\n", coev_strerror(r));
			return 1;
		}
	}
	for (int i = 0; i < TASKS; i++)
		coev_join(t[i], NULL);
	double s = (double)(coev_now() - t0) / 1e9;

	printf("%d tasks, %d HINCRBY over one connection in %.2f s "
	       "(%.0f commands/s)\n",
	       TASKS, TASKS * ROUNDS, s, TASKS * ROUNDS / s);
	wrong = check();
	coev_redis_command(conn, coev_deadline(COEV_SEC(5)), NULL, "DEL %s",
			   hash);
	coev_redis_close(conn);
	if (wrong || atomic_load(&failed)) {
		printf("FAILED: %d wrong totals, %d failed tasks\n", wrong,
		       atomic_load(&failed));
		return 1;
	}
	printf("totals OK\n");
	return 0;
}

int main(void)
{
	const char *p = getenv("COEV_REDIS_PORT");
	int port = p && *p ? atoi(p) : 6390;
	int r = coev_run(run, &port, NULL);

	return r < 0 ? 1 : r;
}
