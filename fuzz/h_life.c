/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_life.c — the blocking pool, shutdown and coev_rt_free with work
 * in flight, and allocation failure decided by the input.
 *
 * Program: workers (1-2), the pool's idle time (a few steps: its threads
 * come and go), maybe an allocation that fails (the Nth, or the Nth and
 * every later one); 1-4 tasks spawned from the host (a plain thread) with
 * coev_rt_spawn, each one of: 1-2 coev_blocking calls (a job that takes a
 * virtual time, waiting on an event from its pool thread), each with or
 * without a deadline and after a sleep; a wait on an event; a long
 * shielded sleep (it may outlive the shutdown and be abandoned); spawns of
 * detached children. Maybe a plain thread (an actor) that joins task 0
 * and waits on the event with a deadline. Then the host waits a virtual
 * delay, maybe cancels a task, and either drains (sets the event and
 * joins every task first) or not, then shuts down with a deadline short
 * or long, joins what is left, and frees the runtime; or frees it at once
 * with the tasks still in flight (coev_rt_free shuts down itself).
 *
 * Oracles (coev/blocking.h, coev/runtime.h, coev/task.h, coev/sync.h):
 *  - no more than blocking_max (2) jobs run at once; a job runs once, and
 *    only while its call waits;
 *  - coev_blocking returns 0 only after its job ran, with the job's
 *    result; -ETIMEDOUT only when its deadline has passed, -ECANCELED only
 *    when its task was cancelled (or shut down), -EAGAIN or -ENOMEM only
 *    when an allocation failed, and in all these the job never ran;
 *  - the event wait returns 0 only after a set, -ECANCELED only after a
 *    cancel; a plain thread's timed wait returns -ETIMEDOUT only at its
 *    deadline; a shielded sleep is never cut;
 *  - spawns return 0, or -ESHUTDOWN once a shutdown began, or -ENOMEM
 *    when an allocation failed; after the shutdown, -ESHUTDOWN;
 *  - shutdown's count lies between the tasks started and not ended and
 *    those spawned and not ended; a join returns 0 with the task's own
 *    result, or -ESHUTDOWN for a task that never ended (and no more of
 *    those than the count); no task runs after the shutdown returned, and
 *    no job runs after coev_rt_free returned;
 *  - coev_rt_new fails only when an allocation failed, with a documented
 *    error; when every task ended, every allocation was returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coev/blocking.h"
#include "fuzz/harness.h"

#define TASKS 4
#define CALLS 2
#define RECS (TASKS * 3)
#define NS 250
#define POOL_MAX 2 /* h_config's blocking_max */

enum { T_BLOCK, T_SYNC, T_SHIELD, T_SPAWN, T_KINDS };
static const char *const kind_name[T_KINDS] = {"blocking", "event wait",
					       "shielded sleep", "spawner"};

enum { C_IDLE, C_WAITING, C_DONE };

struct call {
	unsigned task, len, dl; /* job's virtual time; deadline (0: none) */
	unsigned state;
	coev_time_t deadline;
	bool started, ended;
	int job_ret, r;
	int *box; /* the job's result on the heap: the caller frees it */
};

struct rec {
	unsigned kind, a, id;
	bool spawned, started, ended, cancelled;
	int ret;
	const char *doing;
	struct call call[CALLS];
};

static struct state {
	unsigned workers, idle, fail_mem, fail_more;
	unsigned ntasks, delay, victim, drain, actor, free_now, short_dl;
	struct rec r[RECS];
	unsigned nrec;
	coev_rt_t *rt;
	coev_task_t *h[TASKS];
	coev_event_t ev, never;
	bool ev_set, shut_begun, shut_returned, freed;
	unsigned jobs_running;
	int left;
	int actor_join, actor_ret;
} st;

static bool alloc_may_fail(void)
{
	return st.fail_mem != 0;
}

/* The task may be told to stop: cancelled by the host or shut down. */
static bool may_cancel(const struct rec *k)
{
	return k->cancelled || st.shut_begun;
}

static void alive(const struct rec *k)
{
	H_CHECK(!st.shut_returned, "task %u ran after the shutdown returned",
		k->id);
}

static int job(void *arg)
{
	struct call *c = arg;
	int r;

	H_CHECK(c->state == C_WAITING, "a job ran after its call returned %d",
		c->r);
	H_CHECK(!c->started, "a job ran twice");
	H_CHECK(!st.freed, "a job ran after coev_rt_free returned");
	c->started = true;
	H_CHECK(++st.jobs_running <= POOL_MAX, "%u jobs run at once",
		st.jobs_running);
	c->box = malloc(sizeof *c->box);
	if (c->box)
		*c->box = 300 + (int)c->task;
	if (c->len) {
		coev_time_t dl = coev_deadline((coev_time_t)c->len * NS);

		r = coev_event_wait_dl(&st.never, dl);
		H_CHECK(r == -ETIMEDOUT && coev_now() >= dl,
			"a pool thread's timed wait: %d", r);
	}
	st.jobs_running--;
	c->ended = true;
	c->job_ret = c->box ? 300 + (int)c->task : -ENOMEM;
	return c->job_ret;
}

static int block_call(struct rec *k, struct call *c)
{
	int r, ret = 12345;

	c->deadline = c->dl ? coev_deadline((coev_time_t)(c->dl - 1) * NS)
			    : COEV_FOREVER;
	c->state = C_WAITING;
	r = coev_blocking(job, c, c->deadline, &ret);
	c->state = C_DONE;
	c->r = r;
	alive(k);
	if (r == 0) {
		H_CHECK(c->ended, "coev_blocking returned 0 before its job "
				  "ended");
		H_CHECK(ret == c->job_ret, "coev_blocking: result %d, job's %d",
			ret, c->job_ret);
		free(c->box);
		c->box = NULL;
		return 0;
	}
	H_CHECK(!c->started, "coev_blocking returned %d, but its job ran", r);
	if (r == -ETIMEDOUT)
		H_CHECK(coev_now() >= c->deadline, "coev_blocking timed out "
						   "early");
	else if (r == -ECANCELED)
		H_CHECK(may_cancel(k), "coev_blocking cancelled, no cancel");
	else
		H_CHECK(((r == -EAGAIN || r == -ENOMEM) && alloc_may_fail()) ||
				(r == -ESHUTDOWN && st.shut_begun),
			"coev_blocking: %d", r);
	return r;
}

static int checked_sleep(struct rec *k, coev_time_t d)
{
	coev_time_t t0 = coev_now();
	int r = coev_sleep(d);

	alive(k);
	if (r == 0)
		H_CHECK(coev_now() - t0 >= d, "task %u woke early", k->id);
	else
		H_CHECK(r == -ECANCELED && may_cancel(k), "task %u sleep: %d",
			k->id, r);
	return r;
}

static int task_main(void *arg);

static int body(struct rec *k)
{
	coev_time_t t0;
	unsigned n;
	int r;

	switch (k->kind) {
	case T_BLOCK:
		for (unsigned i = 0; i < 1 + k->a % CALLS; i++) {
			k->doing = "sleep before a job";
			if (checked_sleep(k, (coev_time_t)(k->a / 2 + i) % 5 *
						     NS) < 0)
				return -ECANCELED;
			k->doing = "coev_blocking";
			if ((r = block_call(k, &k->call[i])) < 0)
				return r;
		}
		return 10 + (int)k->id;
	case T_SYNC:
		k->doing = "event wait";
		r = coev_event_wait(&st.ev);
		alive(k);
		if (r == 0)
			H_CHECK(st.ev_set, "an event wait returned 0 unset");
		else
			H_CHECK(r == -ECANCELED && may_cancel(k),
				"event wait: %d", r);
		return r == 0 ? 10 + (int)k->id : r;
	case T_SHIELD:
		k->doing = "shielded sleep";
		coev_shield_begin();
		t0 = coev_now();
		r = coev_sleep((coev_time_t)(1 + k->a % 12) * NS);
		coev_shield_end();
		alive(k);
		H_CHECK(r == 0 && coev_now() - t0 >= (1 + k->a % 12) * NS,
			"shielded sleep: %d", r);
		return 10 + (int)k->id;
	case T_SPAWN:
		n = 1 + k->a % 2;
		for (unsigned i = 0; i < n && st.nrec < RECS; i++) {
			struct rec *c = &st.r[st.nrec++];

			k->doing = "sleep before a spawn";
			if (checked_sleep(k, (coev_time_t)(k->a / 2 % 3) * NS) <
			    0)
				return -ECANCELED;
			c->kind = T_SHIELD;
			c->a = k->a / 8 + i;
			c->id = (unsigned)(c - st.r);
			c->doing = "queued";
			k->doing = "spawn";
			/* Marked first: it may run, and be counted, before
			 * the spawn returns. */
			c->spawned = true;
			r = coev_spawn(task_main, c, NULL);
			alive(k);
			if (r == 0)
				continue;
			c->spawned = false;
			c->doing = "refused";
			H_CHECK((r == -ESHUTDOWN && st.shut_begun) ||
					(r == -ENOMEM && alloc_may_fail()),
				"spawn: %d", r);
		}
		return 10 + (int)k->id;
	}
	return 0;
}

static int task_main(void *arg)
{
	struct rec *k = arg;
	int r;

	alive(k);
	H_CHECK(!k->started, "task %u ran twice", k->id);
	k->started = true;
	r = body(k);
	k->ret = r;
	k->ended = true;
	k->doing = "ended";
	return r;
}

/* Check a join's answer for record k. */
static void check_join(struct rec *k, int r, int ret, bool after_shutdown)
{
	if (r == -ESHUTDOWN) {
		H_CHECK(after_shutdown && st.left > 0 && !k->ended,
			"join of task %u: -ESHUTDOWN (count %d, ended %d)",
			k->id, st.left, k->ended);
		return;
	}
	H_CHECK(r == 0, "join of task %u: %d", k->id, r);
	if (k->started) {
		H_CHECK(k->ended && ret == k->ret,
			"join of task %u: result %d, its own %d", k->id, ret,
			k->ret);
		return;
	}
	/* It never ran: cancelled (or shut down) first, or no stack. */
	H_CHECK((ret == -ECANCELED && may_cancel(k)) ||
			(ret == COEV_ESTACKMAP && alloc_may_fail()),
		"task %u never ran: %d", k->id, ret);
}

static void actor_main(void *arg)
{
	coev_time_t dl;
	int r;

	(void)arg;
	/* Judged by the host once the count is known. */
	if (st.h[0])
		st.actor_join = coev_join(st.h[0], &st.actor_ret);
	dl = coev_deadline(3 * NS);
	r = coev_event_wait_dl(&st.ev, dl);
	H_CHECK(r == 0 ? st.ev_set : r == -ETIMEDOUT && coev_now() >= dl,
		"a plain thread's event wait: %d", r);
}

static void host_wait(coev_time_t d)
{
	coev_time_t dl = coev_deadline(d);
	int r = coev_event_wait_dl(&st.never, dl);

	H_CHECK(r == -ETIMEDOUT && coev_now() >= dl, "host's wait: %d", r);
}

/* The shutdown and the joins after it. */
static void shut_down(bool joined[])
{
	unsigned started = 0, live = 0, gone = 0;
	int r, ret;

	st.shut_begun = true;
	st.left = coev_rt_shutdown(
		st.rt, st.short_dl ? coev_deadline((coev_time_t)st.delay * NS)
				   : COEV_FOREVER);
	st.shut_returned = true;
	/* The count is of the tasks abandoned: a task that ended before the
	 * workers stopped is not one of them. */
	for (unsigned i = 0; i < st.nrec; i++) {
		struct rec *k = &st.r[i];

		live += k->spawned && !k->ended;
		started += k->spawned && k->started && !k->ended;
	}
	H_CHECK(st.left >= (int)started && st.left <= (int)live,
		"shutdown left %d: %u tasks started and not ended, %u "
		"spawned and not ended",
		st.left, started, live);
	H_CHECK(coev_rt_spawn(st.rt, NULL, task_main, &st.r[0], NULL) ==
			-ESHUTDOWN,
		"a spawn after the shutdown");
	for (unsigned i = 0; i < st.ntasks; i++) {
		if (!st.h[i] || joined[i])
			continue;
		r = coev_join(st.h[i], &ret);
		check_join(&st.r[i], r, ret, true);
		gone += r == -ESHUTDOWN;
	}
	H_CHECK(gone <= (unsigned)st.left, "%u joins gave up, count %d", gone,
		st.left);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nrec; i++)
		fprintf(out, "  task %u (%s%s): %s\n", i,
			kind_name[st.r[i].kind],
			st.r[i].cancelled ? ", cancelled" : "",
			st.r[i].doing ? st.r[i].doing : "not spawned");
	fprintf(out, "  jobs running: %u%s%s\n", st.jobs_running,
		st.shut_begun ? "; shutting down" : "",
		st.shut_returned ? "; shut down" : "");
}

static void host(void *arg)
{
	bool joined[TASKS] = {false};
	coev_config_t cfg;
	sim_actor_t actor;
	bool actor_on = false;
	int r, ret;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	cfg.blocking_idle = (coev_time_t)st.idle * NS;
	cfg.report_unjoined = 0;
	r = coev_rt_new(&cfg, &st.rt);
	if (r != 0) {
		H_CHECK(alloc_may_fail() && (r == -ENOMEM || r == -EAGAIN),
			"coev_rt_new: %d", r);
		return;
	}
	for (unsigned i = 0; i < st.ntasks; i++) {
		struct rec *k = &st.r[i];

		r = coev_rt_spawn(st.rt, kind_name[k->kind], task_main, k,
				  &st.h[i]);
		if (r == 0)
			k->spawned = true;
		else
			H_CHECK(r == -ENOMEM && alloc_may_fail(),
				"coev_rt_spawn: %d", r);
	}
	if (st.actor && !st.free_now)
		actor_on =
			sim_actor_start(&actor, "actor", actor_main, NULL) == 0;
	host_wait((coev_time_t)st.delay * NS);
	if (st.victim < st.ntasks && st.h[st.victim] &&
	    (st.victim || !actor_on)) {
		st.r[st.victim].cancelled = true;
		H_CHECK(coev_cancel(st.h[st.victim]) == 0, "cancel");
	}
	if (st.drain) {
		st.ev_set = true;
		coev_event_set(&st.ev);
		for (unsigned i = actor_on; i < st.ntasks; i++) {
			if (!st.h[i])
				continue;
			r = coev_join(st.h[i], &ret);
			check_join(&st.r[i], r, ret, false);
			joined[i] = true;
		}
	}
	if (actor_on)
		joined[0] = true; /* the actor's */
	if (!st.free_now) {
		shut_down(joined);
		if (actor_on) {
			sim_actor_join(actor);
			if (st.h[0])
				check_join(&st.r[0], st.actor_join,
					   st.actor_ret, true);
		}
	} else {
		st.shut_begun = true;
	}
	coev_rt_free(st.rt);
	st.shut_returned = st.freed = true;
	H_CHECK(st.jobs_running == 0, "%u jobs run after coev_rt_free",
		st.jobs_running);
	/* The results of jobs whose callers were abandoned. */
	for (unsigned i = 0; i < st.nrec; i++)
		for (unsigned j = 0; j < CALLS; j++)
			free(st.r[i].call[j].box);
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	bool ended = true;
	unsigned m, b;

	memset(&st, 0, sizeof st);
	b = prog_byte(&g);
	st.workers = 1 + b % 2;
	st.idle = 1 + (b / 2) % 6;
	m = prog_byte(&g);
	if (m % 4 == 0) {
		st.fail_mem = 1 + (m / 4) % 40;
		st.fail_more = (m / 4 / 40) % 2;
	}
	b = prog_byte(&g);
	st.ntasks = 1 + b % TASKS;
	st.drain = (b / 4) % 2;
	st.actor = (b / 8) % 2;
	b = prog_byte(&g);
	/* Rare: a run that abandons tasks keeps their blocks and stacks
	 * mapped (about 1 MB a run), and a series runs thousands. */
	st.free_now = b % 32 == 0;
	st.short_dl = b % 32 == 1;
	b = prog_byte(&g);
	st.delay = b % 8;
	st.victim = (b / 8) % (TASKS + 2);
	for (unsigned i = 0; i < st.ntasks; i++) {
		struct rec *k = &st.r[st.nrec++];

		b = prog_byte(&g);
		k->kind = b % T_KINDS;
		k->a = b / T_KINDS;
		k->id = i;
		k->doing = "queued";
		for (unsigned j = 0; j < CALLS; j++) {
			b = prog_byte(&g);
			k->call[j].task = i;
			k->call[j].len = b % 6;
			k->call[j].dl = (b / 6) % 3 ? 0 : 1 + (b / 18) % 6;
		}
	}
	o->fail_mem = st.fail_mem;
	o->fail_mem_more = st.fail_more;
	if (o->mode == SIM_BYTES) {
		o->bytes = g.p + g.i;
		o->len = g.i < g.n ? g.n - g.i : 0;
	}
	sim_run(o, host, NULL);
	/* Abandoned tasks keep their blocks and stacks (a bounded leak that
	 * the shutdown's count reports): judge leaks when every task ended,
	 * as h_run does. */
	for (unsigned i = 0; i < st.nrec; i++)
		if (st.r[i].spawned && !st.r[i].ended)
			ended = false;
	if ((st.free_now ? ended : st.left == 0) &&
	    (sim_leaked_allocs() || sim_leaked_map_bytes()))
		sim_fail("leak: %ld allocations and %ld mapped bytes not "
			 "returned by the end of the run",
			 sim_leaked_allocs(), sim_leaked_map_bytes());
}

const struct harness h_life = {
	"life",
	"the blocking pool with cancels and deadlines; shutdown and free with "
	"work in flight; failed allocations",
	run,
};
