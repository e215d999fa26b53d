/* SPDX-License-Identifier: MIT */
/*
 * examples/pipeline.c — fetch -> process -> store: three stages of tasks
 * joined by bounded channels, shut down cleanly from the front.
 *
 * The asyncio posts sketch a pipeline as one coroutine per item
 * (`data = await fetch(url); processed = await process(data); await
 * store(processed)`). With channels the stages become long-lived pools of
 * tasks instead, each pool sized for its own work, as in Go:
 *
 *   fetch (F tasks) --[chan, cap C]--> process (P tasks) --[chan, cap C]-->
 *   store (S tasks)
 *
 *   for each stage:  wg.Add(n); go stage task ... defer wg.Done()
 *   go func() { fetchers.Wait(); close(fetched) }()
 *   go func() { processors.Wait(); close(processed) }()
 *
 * What it shows:
 *  1. Back-pressure. The channels are bounded (coev_chan_new with capacity
 *     C; 0 makes them rendezvous channels). A fetcher that gets ahead of
 *     the processors waits in coev_chan_send until there is room, so the
 *     messages in flight never exceed the two capacities, whatever the
 *     stages' speeds.
 *  2. Many senders and many receivers on one channel: each message is
 *     received by exactly one task, whichever is free.
 *  3. Closing from the front. Only the sending side closes a channel. Each
 *     stage counts its running tasks in a coev_wg_t; main waits for the
 *     fetchers' count to reach zero and closes fetch->process. The
 *     processors drain what is buffered, get COEV_ECLOSED, and end; main
 *     then closes process->store, and the storers drain and end the same
 *     way. Nothing is lost and nothing waits forever.
 *  4. Failure. Every task runs in one COEV_SCOPE_FAIL_FAST scope: a task
 *     that fails cancels the others, whose channel waits then return
 *     -ECANCELED, so a dead stage cannot leave its neighbours blocked.
 *  5. Checking. A message is a small struct (id, payload). The storers
 *     mark every id in a shared bitmap with an atomic OR, so a bit that
 *     was already set is a duplicate, and add up the payloads; main
 *     compares the bitmap and the sum with what a plain loop computes.
 *
 * Usage: pipeline [-n COUNT] [-f F] [-p P] [-s S] [-c CAP] [-w WORKERS] [-x]
 *   -n COUNT  messages to send through (default 6000000; 0 is allowed)
 *   -f/-p/-s  tasks in the fetch, process and store stages (2, 4, 2)
 *   -c CAP    capacity of both channels (default 256; 0: rendezvous)
 *   -w N      worker threads (default 2)
 *   -x        lose one message in the process stage, to see the check fail
 * It prints each stage's message counts, the check and the rate, and exits
 * with status 0 when every message arrived exactly once with the right
 * payload, 1 otherwise, 2 for bad arguments.
 */
#include <coev.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* One message: which item it is and the value that travels with it. */
struct msg {
	uint64_t id;
	uint64_t value;
};

enum { FETCH, PROCESS, STORE, NSTAGES };

struct pipeline;
struct stage;

/* One task of a stage and what it counted. The task writes its fields;
 * main reads them after the scope has closed, which orders the accesses. */
struct worker {
	struct pipeline *p;
	struct stage *st;
	unsigned index;	 /* 0..ntasks-1 within its stage */
	uint64_t count;	 /* messages this task handled */
	uint64_t sum;	 /* storers: the payloads they stored, added up */
	uint64_t dups;	 /* storers: ids that had arrived already */
	uint64_t strays; /* storers: ids out of range */
};

/* A pool of tasks running the same body between two channels. */
struct stage {
	const char *name;
	unsigned ntasks;
	int (*body)(struct worker *w);
	coev_chan_t *in, *out; /* NULL before fetch and after store */
	coev_wg_t running;     /* tasks of the stage not yet finished */
	struct worker *workers;
};

/* The whole run. */
struct pipeline {
	uint64_t n;		/* messages */
	size_t cap;		/* capacity of both channels */
	bool lose_one;		/* -x: the process stage drops one message */
	atomic_bool lost;	/* -x: it has */
	_Atomic uint64_t *seen; /* bitmap of stored ids, (n + 63) / 64 words */
	struct stage stages[NSTAGES];
	coev_chan_t *chans[NSTAGES - 1];
};

/* The payload a fetcher "downloads" for an id: a splitmix64 hash, so the
 * values are spread and a lost or doubled message changes the sum. */
static uint64_t payload(uint64_t id)
{
	uint64_t z = id + 0x9e3779b97f4a7c15u;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* What the process stage does to a payload: a little arithmetic. */
static uint64_t transform(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdu;
	v ^= v >> 33;
	return v;
}

/* Fetcher i of F sends ids i, i + F, i + 2F, ... below n, so the fetchers
 * share the ids without coordinating; with more fetchers than messages,
 * some send nothing. */
static int fetch_body(struct worker *w)
{
	const struct pipeline *p = w->p;
	uint64_t step = w->st->ntasks;
	int r;

	for (uint64_t id = w->index; id < p->n; id += step) {
		struct msg m = {id, payload(id)};

		if ((r = coev_chan_send(w->st->out, &m)) < 0)
			return r;
		w->count++;
	}
	return 0;
}

/* Take messages until the fetch side has closed its channel and it is
 * empty; transform each one and pass it on. */
static int process_body(struct worker *w)
{
	struct pipeline *p = w->p;
	struct msg m;
	int r;

	while ((r = coev_chan_recv(w->st->in, &m)) == 0) {
		w->count++;
		if (p->lose_one && !atomic_exchange(&p->lost, true))
			continue; /* -x: this one never reaches the store */
		m.value = transform(m.value);
		if ((r = coev_chan_send(w->st->out, &m)) < 0)
			return r;
	}
	return r == COEV_ECLOSED ? 0 : r;
}

/* Take messages until the process side has closed its channel and it is
 * empty; mark each id in the bitmap and add its payload to this task's
 * sum. */
static int store_body(struct worker *w)
{
	struct pipeline *p = w->p;
	struct msg m;
	int r;

	while ((r = coev_chan_recv(w->st->in, &m)) == 0) {
		uint64_t bit = UINT64_C(1) << (m.id % 64), old;

		w->count++;
		if (m.id >= p->n) {
			w->strays++;
			continue;
		}
		/* Relaxed: only the atomicity of the OR matters here (two
		 * storers with the same id must not both see the bit clear);
		 * main reads the bitmap after the scope's close. */
		old = atomic_fetch_or_explicit(&p->seen[m.id / 64], bit,
					       memory_order_relaxed);
		if (old & bit)
			w->dups++;
		w->sum += m.value;
	}
	return r == COEV_ECLOSED ? 0 : r;
}

/* Every task of every stage: run the stage's body, then count itself out
 * of the stage whatever happened, so that main's wait for the stage ends
 * even when a task fails. */
static int stage_task(void *arg)
{
	struct worker *w = arg;
	int r = w->st->body(w);

	coev_wg_done(&w->st->running);
	return r;
}

/* Start every stage's tasks in the scope. On failure, uncount the tasks
 * not started and return the error; the caller then cancels the scope
 * (the later stages' counts were never raised). */
static int start_stages(struct pipeline *p, coev_scope_t *scope)
{
	int r;

	for (int s = 0; s < NSTAGES; s++) {
		struct stage *st = &p->stages[s];

		coev_wg_add(&st->running, (long)st->ntasks);
		for (unsigned i = 0; i < st->ntasks; i++) {
			r = coev_scope_spawn(scope, st->name, stage_task,
					     &st->workers[i]);
			if (r < 0) {
				coev_wg_add(&st->running,
					    -(long)(st->ntasks - i));
				return r;
			}
		}
	}
	return 0;
}

/* Shut the pipeline down from the front: as soon as every task of a stage
 * has finished, close the channel it was sending into, which lets the next
 * stage drain it and finish in turn. Returns 0 or the first error. */
static int close_from_front(struct pipeline *p)
{
	int r;

	for (int s = 0; s < NSTAGES; s++) {
		struct stage *st = &p->stages[s];

		if ((r = coev_wg_wait(&st->running)) < 0)
			return r;
		if (st->out != NULL && (r = coev_chan_close(st->out)) < 0)
			return r; /* COEV_ECLOSED: someone else closed it */
	}
	return 0;
}

/* n with a comma between groups of three digits ("2,000,000") in buf,
 * which must hold 27 bytes; returns buf. */
static const char *grouped(uint64_t n, char *buf)
{
	char digits[21];
	int len = snprintf(digits, sizeof digits, "%" PRIu64, n), o = 0;

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* The sums and counts main compares with the plain computation. */
struct tally {
	uint64_t count[NSTAGES], lo[NSTAGES], hi[NSTAGES];
	uint64_t sum, dups, strays, ids; /* ids: distinct ids stored */
};

/* Add up what each task counted and how many bits the bitmap has. */
static void tally(const struct pipeline *p, struct tally *t)
{
	*t = (struct tally){0};
	for (int s = 0; s < NSTAGES; s++) {
		const struct stage *st = &p->stages[s];

		t->lo[s] = UINT64_MAX;
		for (unsigned i = 0; i < st->ntasks; i++) {
			const struct worker *w = &st->workers[i];

			t->count[s] += w->count;
			t->lo[s] = w->count < t->lo[s] ? w->count : t->lo[s];
			t->hi[s] = w->count > t->hi[s] ? w->count : t->hi[s];
			t->sum += w->sum;
			t->dups += w->dups;
			t->strays += w->strays;
		}
	}
	for (uint64_t i = 0; i < (p->n + 63) / 64; i++)
		t->ids += (uint64_t)__builtin_popcountll(atomic_load_explicit(
			&p->seen[i], memory_order_relaxed));
}

/* Print the stages' counts, the check and the rate; returns whether the
 * check passed. */
static bool report(const struct pipeline *p, const struct tally *t,
		   uint64_t expect_sum, double secs)
{
	bool ok = t->ids == p->n && t->dups == 0 && t->strays == 0 &&
		  t->count[STORE] == p->n && t->sum == expect_sum;
	uint64_t rate =
		secs > 0 ? (uint64_t)((double)t->count[STORE] / secs) : 0;
	char a[27], b[27], c[27];

	for (int s = 0; s < NSTAGES; s++)
		printf("  %-7s %3u task%s %11s messages (%s..%s per task)\n",
		       p->stages[s].name, p->stages[s].ntasks,
		       p->stages[s].ntasks == 1 ? " " : "s",
		       grouped(t->count[s], a), grouped(t->lo[s], b),
		       grouped(t->hi[s], c));
	printf("  check: %s of %s ids stored, %s missing, %" PRIu64
	       " duplicates, %" PRIu64 " unknown\n",
	       grouped(t->ids, a), grouped(p->n, b), grouped(p->n - t->ids, c),
	       t->dups, t->strays);
	printf("  payload sum 0x%016" PRIx64 ", expected 0x%016" PRIx64
	       ": %s\n",
	       t->sum, expect_sum,
	       t->sum == expect_sum ? "equal" : "DIFFERENT");
	printf("  %s messages stored in %.3f s: %s messages/s\n",
	       grouped(t->count[STORE], a), secs, grouped(rate, b));
	if (ok)
		printf("pipeline: OK: all %s messages accounted for, each "
		       "exactly once\n",
		       grouped(p->n, a));
	else
		printf("pipeline: FAILED: the store stage did not get every "
		       "message exactly once\n");
	return ok;
}

/* The first task: build the channels, start the stages in one fail-fast
 * scope, close from the front, wait for the scope and check. Returns 0
 * when the check passed; 1 when it failed or a task failed (both reported
 * here); a negative error when the channels or the scope could not be
 * made. */
static int pipeline_main(void *arg)
{
	struct pipeline *p = arg;
	uint64_t expect_sum = 0;
	coev_scope_t *scope;
	coev_time_t start;
	struct tally t;
	int r, rc;

	for (uint64_t id = 0; id < p->n; id++)
		expect_sum += transform(payload(id));
	for (int c = 0; c < NSTAGES - 1; c++)
		if ((r = coev_chan_new(&p->chans[c], sizeof(struct msg),
				       p->cap)) < 0)
			return r;
	p->stages[FETCH].out = p->stages[PROCESS].in = p->chans[0];
	p->stages[PROCESS].out = p->stages[STORE].in = p->chans[1];

	start = coev_now();
	if ((r = coev_scope_open(COEV_SCOPE_FAIL_FAST, &scope)) < 0)
		return r;
	if ((r = start_stages(p, scope)) < 0 || (r = close_from_front(p)) < 0) {
		fprintf(stderr, "pipeline: starting or closing: %s\n",
			coev_strerror(r));
		coev_scope_cancel(scope);
	}
	rc = coev_scope_close(scope);
	if (r == 0 && rc < 0) {
		fprintf(stderr, "pipeline: a task failed: %s\n",
			coev_strerror(rc));
		r = rc;
	}
	tally(p, &t);
	rc = report(p, &t, expect_sum, (double)(coev_now() - start) / 1e9);
	return r == 0 && rc ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: pipeline [-n COUNT] [-f FETCHERS] "
			"[-p PROCESSORS] [-s STORERS] [-c CAPACITY]\n"
			"                [-w WORKERS] [-x]\n");
	exit(2);
}

/* A whole number in [lo, hi] from the command line; exits on a bad one. */
static uint64_t number_arg(const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr,
			"pipeline: %s: out of range (%" PRIu64 "..%" PRIu64
			")\n",
			s, lo, hi);
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	static const char *const names[NSTAGES] = {"fetch", "process", "store"};
	static int (*const bodies[NSTAGES])(struct worker *) = {
		fetch_body, process_body, store_body};
	static struct pipeline p = {.n = 6000000, .cap = 256};
	unsigned ntasks[NSTAGES] = {2, 4, 2};
	coev_config_t cfg;
	char buf[27];
	int opt, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = coev_config_init(&cfg)) < 0)
		fprintf(stderr,
			"pipeline: a COEV_* variable is malformed (%s)\n",
			coev_strerror(r));
	cfg.workers = 2;
	while ((opt = getopt(argc, argv, "n:f:p:s:c:w:xh")) != -1) {
		switch (opt) {
		case 'n': p.n = number_arg(optarg, 0, 1000000000); break;
		case 'f':
			ntasks[FETCH] = (unsigned)number_arg(optarg, 1, 10000);
			break;
		case 'p':
			ntasks[PROCESS] =
				(unsigned)number_arg(optarg, 1, 10000);
			break;
		case 's':
			ntasks[STORE] = (unsigned)number_arg(optarg, 1, 10000);
			break;
		case 'c': p.cap = (size_t)number_arg(optarg, 0, 1000000); break;
		case 'w':
			cfg.workers = (unsigned)number_arg(optarg, 1,
							   COEV_WORKERS_MAX);
			break;
		case 'x': p.lose_one = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	p.seen = calloc((size_t)(p.n + 63) / 64 + 1, sizeof *p.seen);
	for (int s = 0; s < NSTAGES; s++) {
		struct stage *st = &p.stages[s];

		*st = (struct stage){.name = names[s],
				     .ntasks = ntasks[s],
				     .body = bodies[s]};
		coev_wg_init(&st->running);
		st->workers = calloc(ntasks[s], sizeof *st->workers);
		if (st->workers == NULL || p.seen == NULL) {
			fprintf(stderr, "pipeline: out of memory\n");
			return EXIT_FAILURE;
		}
		for (unsigned i = 0; i < ntasks[s]; i++)
			st->workers[i] = (struct worker){&p, st, i, 0, 0, 0, 0};
	}
	printf("pipeline: %s messages through fetch (%u) -> process (%u) -> "
	       "store (%u),\n  channels of capacity %zu, %u worker threads\n",
	       grouped(p.n, buf), ntasks[FETCH], ntasks[PROCESS], ntasks[STORE],
	       p.cap, cfg.workers);

	r = coev_run(pipeline_main, &p, &cfg);
	if (r < 0)
		fprintf(stderr, "pipeline: %s\n", coev_strerror(r));
	for (int c = 0; c < NSTAGES - 1; c++)
		coev_chan_free(p.chans[c]);
	for (int s = 0; s < NSTAGES; s++) {
		coev_wg_destroy(&p.stages[s].running);
		free(p.stages[s].workers);
	}
	free(p.seen);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
