/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_future.c — the futures and bridge harness.
 *
 * Program: workers (1-3); 1-4 futures; 1-4 waiting tasks, each waiting on
 * one future in one of four ways (wait, wait with a short deadline, await,
 * await with a short deadline), some of them cancelled by main while they
 * may wait, some taking the value over once their wait returned 0; 1-2
 * foreign actors (simulated plain threads, as a callback library's own
 * threads are), each with up to 4 actions: complete a future with a
 * value, cancel one, or post (coev_submit) a function to a worker that
 * completes one there; and two on_done callbacks on some futures, plus a
 * third registered by main once the actors are done. When the actors are
 * done, main completes every future (refused where it is complete
 * already), so every wait ends.
 *
 * Beside them, maybe a future whose one reference is its waiter's: an
 * actor completes it through a borrowed pointer, and the waiter releases
 * it (freeing it) as soon as its wait returns, while the completion may
 * still be returning (coev/future.h, rule 1; ASan builds report a touch
 * of the freed future).
 *
 * Oracles (coev/future.h): each future is completed exactly once (one
 * completion or cancel returned 0, or an await that gave up cancelled
 * it), every other completion is refused with -EALREADY (after a
 * completion) or -ECANCELED (after a cancel) and its value stays with the
 * caller; every waiter that returned 0 saw the future's one result; a
 * wait returns 0, -ETIMEDOUT only once its deadline has passed (virtual
 * time) and only if no completion had returned before the deadline (the
 * completer notes coev_now() when its call returns: a completion that
 * came first is delivered), -ECANCELED only in a task main cancelled and
 * only if no completion had returned before the wait began; an await
 * that gives up leaves the future cancelled; the value a waiter borrows
 * or takes is the winner's, taken by one taker at most; each on_done
 * callback runs exactly once, after completion, in registration order
 * (also one registered while the completer still runs earlier ones), and
 * at once when registered on a future whose completion call has
 * returned; every value is freed
 * exactly once (by its future, unless taken, or by the refused caller),
 * and nothing leaks.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "coev/bridge.h"
#include "coev/future.h"
#include "fuzz/harness.h"

#define FUTURES 4
#define WAITERS 4
#define ACTORS 2
#define ACTIONS 4
#define VALUES 32 /* completions with a value: actors' and main's */
#define CBS 3	  /* on_done callbacks per future: two early, one late */

enum { W_WAIT, W_WAIT_DL, W_AWAIT, W_AWAIT_DL };
enum { A_COMPLETE, A_CANCEL, A_SUBMIT, A_YIELD };

struct waiter {
	unsigned f, how, a;
	bool cancel, take; /* main cancels it; it takes the value */
	bool cancelled;	   /* main has asked (before coev_cancel) */
	int r, res;
	const char *doing;
};

struct actor {
	uint8_t act[ACTIONS];
	unsigned nact, id;
	const char *doing;
};

/* A completion's value: from a pool, so a second free is seen, not
 * undefined. */
struct value {
	int res;
	bool live; /* allocated, not yet freed */
	bool taken;
};

static struct state {
	unsigned workers, nf, nw, na;
	uint8_t on_done_mask;
	coev_future_t *f[FUTURES];
	struct waiter w[WAITERS];
	struct actor a[ACTORS];
	unsigned wins[FUTURES];	      /* completions or cancels that won */
	int result[FUTURES];	      /* the winner's result */
	struct value *won[FUTURES];   /* the winner's value */
	coev_time_t done_at[FUTURES]; /* a winning call had returned by then */
	unsigned gave_up[FUTURES];    /* awaits that gave up (and cancel) */
	unsigned cb_runs[FUTURES][CBS];
	unsigned cb_order[FUTURES]; /* callbacks run so far, in order */
	struct value vals[VALUES];
	unsigned nvals;
	struct post {
		unsigned f;
		int res;
	} posts[ACTORS][ACTIONS];
	coev_rt_t *rt;
	int main_ret;
	bool life;	   /* the future of the lifetime check */
	coev_future_t *lf; /* its one reference is life_waiter's */
} st;

static void value_free(void *p)
{
	struct value *v = p;

	H_CHECK(v >= st.vals && v < st.vals + VALUES, "a foreign value freed");
	H_CHECK(v->live && !v->taken, "value %d freed twice, or once taken",
		(int)(v - st.vals));
	v->live = false;
}

static struct value *value_new(int res)
{
	struct value *v;

	H_CHECK(st.nvals < VALUES, "out of values");
	v = &st.vals[st.nvals++];
	v->res = res;
	v->live = true;
	return v;
}

/* The winner of future j returned: note when (its waiters' deadlines are
 * judged against it). */
static void won(unsigned j, int res, struct value *v)
{
	st.wins[j]++;
	st.result[j] = res;
	st.won[j] = v;
	if (!st.done_at[j])
		st.done_at[j] = coev_now();
}

/* Complete future j with result res and a value, as a callback would. */
static void complete(unsigned j, int res)
{
	struct value *v = value_new(res);
	int r;

	r = coev_future_complete(st.f[j], res, v, value_free);
	if (r == 0) {
		won(j, res, v);
		return;
	}
	H_CHECK(r == -EALREADY || r == -ECANCELED,
		"a refused completion returned %d", r);
	H_CHECK((r == -ECANCELED) == (coev_future_cancelled(st.f[j]) == 1),
		"completion refused with %d, cancelled %d", r,
		coev_future_cancelled(st.f[j]));
	value_free(v); /* refused: still ours */
}

static void cancel(unsigned j)
{
	int r = coev_future_cancel(st.f[j]);

	if (r == 0) {
		won(j, -ECANCELED, NULL);
		return;
	}
	H_CHECK(r == -EALREADY, "a refused cancel returned %d", r);
}

static int posted(void *arg)
{
	struct post *p = arg;

	H_CHECK(coev_worker_id() >= 0, "a posted function off its worker");
	complete(p->f, p->res);
	return 0;
}

static void actor_main(void *arg)
{
	struct actor *a = arg;

	for (unsigned i = 0; i < a->nact; i++) {
		unsigned op = a->act[i] % 4, x = a->act[i] / 4;
		unsigned j = x % st.nf;
		struct post *p;
		coev_future_t *f;

		switch (op) {
		case A_COMPLETE:
			a->doing = "complete";
			f = coev_future_ref(st.f[j]);
			complete(j, (int)(j * 10 + a->id));
			coev_future_release(f);
			break;
		case A_CANCEL:
			a->doing = "cancel";
			cancel(j);
			break;
		case A_SUBMIT:
			a->doing = "submit";
			p = &st.posts[a->id][i];
			p->f = j;
			p->res = (int)(j * 10 + 5);
			H_CHECK(coev_submit(st.rt, (x / 4) % st.workers, posted,
					    p, NULL) == 0,
				"submit");
			break;
		case A_YIELD: sched_yield(); break;
		}
	}
	a->doing = "done";
}

/* Callback k of future j: once, after completion, after those registered
 * before it. */
static void on_done(coev_future_t *f, void *arg)
{
	unsigned j = (unsigned)(uintptr_t)arg % FUTURES,
		 k = (unsigned)(uintptr_t)arg / FUTURES;

	H_CHECK(f == st.f[j], "on_done for the wrong future");
	H_CHECK(coev_future_poll(f, NULL) == 0, "on_done before completion");
	H_CHECK(st.cb_order[j] == k, "future %u: callback %u ran as number %u",
		j, k, st.cb_order[j]);
	st.cb_order[j]++;
	st.cb_runs[j][k]++;
}

static void on_done_add(unsigned j, unsigned k)
{
	H_CHECK(coev_future_on_done(st.f[j], on_done,
				    (void *)(uintptr_t)(k * FUTURES + j)) == 0,
		"on_done");
}

/* The answer of waiter w's call, begun at t0 with deadline dl. */
static void judge(struct waiter *w, coev_time_t t0, coev_time_t dl)
{
	coev_future_t *f = st.f[w->f];
	coev_time_t done = st.done_at[w->f], now = coev_now();
	bool timed = w->how == W_WAIT_DL || w->how == W_AWAIT_DL;
	bool await = w->how == W_AWAIT || w->how == W_AWAIT_DL;
	int res;

	switch (w->r) {
	case 0:
		H_CHECK(coev_future_poll(f, &res) == 0 && res == w->res,
			"wait returned 0 with %d, the future holds %d", w->res,
			res);
		return;
	case -ETIMEDOUT:
		H_CHECK(timed, "a wait without a deadline timed out");
		H_CHECK(now >= dl, "timed out %lld ns before its deadline",
			(long long)(dl - now));
		H_CHECK(!done || done >= dl,
			"future %u: timed out although its completion returned "
			"%lld ns before the deadline",
			w->f, (long long)(dl - done));
		break;
	case -ECANCELED:
		H_CHECK(w->cancelled, "-ECANCELED in a task nobody cancelled");
		H_CHECK(!done || done >= t0,
			"future %u: -ECANCELED although complete before the "
			"wait began",
			w->f);
		break;
	default: H_CHECK(0, "wait (how %u): %d", w->how, w->r);
	}
	/* Gave up: an await cancels the future, unless a completion came
	 * first (then it returns 0). */
	if (await)
		H_CHECK(coev_future_cancelled(f) == 1,
			"future %u: an await gave up (%d) and left it "
			"uncancelled",
			w->f, w->r);
	if (w->how == W_AWAIT_DL || w->how == W_AWAIT)
		st.gave_up[w->f]++;
}

/* Take the value over after a wait that returned 0: the winner's, to one
 * taker. */
static void take(struct waiter *w)
{
	struct value *v = coev_future_take(st.f[w->f]);

	if (!v)
		return;
	H_CHECK(v == st.won[w->f] || !st.won[w->f],
		"future %u: took a value that is not the winner's", w->f);
	H_CHECK(v->live && !v->taken && v->res == w->res,
		"future %u: value taken twice or freed (%d, result %d)", w->f,
		v->res, w->res);
	v->taken = true;
	v->live = false; /* ours now: freed here */
}

static int waiter_main(void *arg)
{
	struct waiter *w = arg;
	coev_future_t *f = st.f[w->f];
	coev_time_t t0 = coev_now(),
		    dl = coev_deadline((coev_time_t)(w->a % 4) * 400);

	w->res = 12345;
	w->doing = "waiting";
	switch (w->how) {
	case W_WAIT: w->r = coev_future_wait(f, &w->res); break;
	case W_WAIT_DL: w->r = coev_future_wait_dl(f, dl, &w->res); break;
	case W_AWAIT: w->r = coev_future_await(f, &w->res); break;
	case W_AWAIT_DL: w->r = coev_future_await_dl(f, dl, &w->res); break;
	}
	judge(w, t0, dl);
	if (w->r == 0 && w->take)
		take(w);
	w->doing = "done";
	return 0;
}

static void life_completer(void *arg)
{
	(void)arg;
	H_CHECK(coev_future_set(st.lf, 42) == 0, "life future's set");
}

static int life_waiter(void *arg)
{
	int r, res = 0;

	(void)arg;
	r = coev_future_wait(st.lf, &res);
	H_CHECK(r == 0 && res == 42, "life future: %d, %d", r, res);
	coev_future_release(st.lf); /* the last reference: frees it */
	return 0;
}

static int main_task(void *arg)
{
	coev_task_t *ts[WAITERS], *lw = NULL;
	sim_actor_t as[ACTORS], la;

	(void)arg;
	st.rt = coev_rt_current();
	if (st.life) {
		H_CHECK(coev_future_new(&st.lf) == 0, "future_new");
		H_CHECK(coev_spawn(life_waiter, NULL, &lw) == 0, "spawn");
		H_CHECK(sim_actor_start(&la, "life", life_completer, NULL) == 0,
			"actor start");
	}
	for (unsigned i = 0; i < st.nw; i++)
		H_CHECK(coev_spawn(waiter_main, &st.w[i], &ts[i]) == 0,
			"spawn");
	for (unsigned j = 0; j < st.nf; j++)
		if (st.on_done_mask & (1u << j)) {
			on_done_add(j, 0);
			on_done_add(j, 1);
		}
	for (unsigned i = 0; i < st.na; i++)
		H_CHECK(sim_actor_start(&as[i], "actor", actor_main,
					&st.a[i]) == 0,
			"actor start");
	for (unsigned i = 0; i < st.nw; i++)
		if (st.w[i].cancel) {
			st.w[i].cancelled = true;
			H_CHECK(coev_cancel(ts[i]) == 0, "cancel");
		}
	for (unsigned i = 0; i < st.na; i++)
		sim_actor_join(as[i]);
	/* A callback registered on a complete future runs at once. */
	for (unsigned j = 0; j < st.nf; j++) {
		/* Complete by a call that has returned (after running the
		 * callbacks before this one): nothing to wait for. */
		bool was = coev_future_poll(st.f[j], NULL) == 0 &&
			   st.done_at[j] != 0;

		if (!(st.on_done_mask & (1u << j)))
			continue;
		on_done_add(j, 2);
		H_CHECK(!was || st.cb_runs[j][2] == 1,
			"future %u: on_done on a complete future did not run "
			"at once",
			j);
	}
	/* Every wait must end: complete what is still pending. */
	for (unsigned j = 0; j < st.nf; j++)
		complete(j, (int)(j * 10 + 9));
	for (unsigned i = 0; i < st.nw; i++)
		H_CHECK(coev_join(ts[i], NULL) == 0, "join");
	/* A waiter cancelled before it first ran never ran (r stays 1). */
	if (st.life) {
		H_CHECK(coev_join(lw, NULL) == 0, "join");
		sim_actor_join(la);
	}
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	for (unsigned j = 0; j < st.nf; j++)
		H_CHECK(coev_future_new(&st.f[j]) == 0, "future_new");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	for (unsigned j = 0; j < st.nf; j++) {
		struct value *v;
		int res = 0;

		H_CHECK(coev_future_poll(st.f[j], &res) == 0,
			"future %u still pending", j);
		H_CHECK(st.wins[j] == 1 ||
				(st.wins[j] == 0 && st.gave_up[j] &&
				 coev_future_cancelled(st.f[j]) == 1),
			"future %u: %u completions won", j, st.wins[j]);
		if (st.wins[j])
			H_CHECK(res == st.result[j],
				"future %u: result %d, the winner set %d", j,
				res, st.result[j]);
		st.result[j] = res;
		v = coev_future_value(st.f[j]);
		H_CHECK(!v || (v == st.won[j] && !v->taken),
			"future %u: a value not the winner's, or taken", j);
		for (unsigned k = 0; k < CBS; k++)
			H_CHECK(st.cb_runs[j][k] ==
					(st.on_done_mask & (1u << j) ? 1u : 0u),
				"future %u: on_done %u ran %u times", j, k,
				st.cb_runs[j][k]);
		coev_future_release(st.f[j]);
	}
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nw; i++)
		fprintf(out, "  waiter %u (future %u, how %u%s): %s\n", i,
			st.w[i].f, st.w[i].how,
			st.w[i].cancel ? ", cancelled" : "",
			st.w[i].doing ? st.w[i].doing : "not started");
	for (unsigned i = 0; i < st.na; i++)
		fprintf(out, "  actor %u: %s\n", i,
			st.a[i].doing ? st.a[i].doing : "not started");
	for (unsigned j = 0; j < st.nf; j++)
		fprintf(out, "  future %u: %s, %u wins\n", j,
			coev_future_poll(st.f[j], NULL) == 0 ? "complete"
							     : "pending",
			st.wins[j]);
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned extra;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.nf = 1 + prog_byte(&g) % FUTURES;
	st.nw = 1 + prog_byte(&g) % WAITERS;
	st.na = 1 + prog_byte(&g) % ACTORS;
	st.on_done_mask = (uint8_t)prog_byte(&g);
	extra = prog_byte(&g);
	st.life = extra & 1;
	for (unsigned i = 0; i < st.nw; i++) {
		unsigned b = prog_byte(&g);

		st.w[i].f = b % st.nf;
		st.w[i].how = (b / 4) % 4;
		st.w[i].a = b / 16;
		/* Bits 1-4 of extra: cancel waiter i; 5-7 and the waiter's
		 * byte: take the value. */
		st.w[i].cancel = (extra >> (1 + i)) & 1 && (b & 0x40);
		st.w[i].take = (b & 0x80) != 0;
		st.w[i].r = 1; /* not run */
	}
	for (unsigned i = 0; i < st.na; i++) {
		st.a[i].id = i;
		st.a[i].nact = prog_byte(&g) % (ACTIONS + 1);
		for (unsigned k = 0; k < st.a[i].nact; k++)
			st.a[i].act[k] = (uint8_t)prog_byte(&g);
	}
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	for (unsigned k = 0; k < st.nvals; k++)
		H_CHECK(!st.vals[k].live, "value %u not freed", k);
	for (unsigned i = 0; i < st.nw; i++) {
		struct waiter *w = &st.w[i];

		if (w->r == 0)
			H_CHECK(w->res == st.result[w->f],
				"waiter %u saw %d, the future holds %d", i,
				w->res, st.result[w->f]);
	}
}

const struct harness h_future = {
	"future",
	"futures completed, cancelled and posted by foreign actors",
	run,
};
