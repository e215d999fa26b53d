/*
 * fuzz/h_future.c — the futures and bridge harness.
 *
 * Program: workers (1-3); 1-4 futures; 1-4 waiting tasks, each waiting on
 * one future in one of four ways (wait, wait with a short deadline, await,
 * await with a short deadline); 1-2 foreign actors (simulated plain
 * threads, as a callback library's own threads are), each with up to 4
 * actions: complete a future with a heap value, cancel one, or post
 * (coev_submit) a function to a worker that completes one there; and
 * on_done callbacks on some futures. When the actors are done, main
 * completes every future (refused where it is complete already), so every
 * wait ends.
 *
 * Beside them, maybe a future whose one reference is its waiter's: an
 * actor completes it through a borrowed pointer, and the waiter releases
 * it (freeing it) as soon as its wait returns, while the completion may
 * still be returning (coev/future.h, rule 1; ASan builds report a touch
 * of the freed future).
 *
 * Oracles: each future is completed exactly once (one completion or
 * cancel returned 0, or an await that gave up cancelled it), every other
 * completion is refused with -EALREADY (after a completion) or -ECANCELED
 * (after a cancel) and its value stays with the caller; every waiter that
 * returned 0 saw the future's one result; a plain wait never returns
 * anything but 0; each on_done callback runs exactly once; every value is
 * freed exactly once, and nothing leaks.
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

enum { W_WAIT, W_WAIT_DL, W_AWAIT, W_AWAIT_DL };
enum { A_COMPLETE, A_CANCEL, A_SUBMIT, A_YIELD };

struct waiter {
	unsigned f, how, a;
	int r, res;
	const char *doing;
};

struct actor {
	uint8_t act[ACTIONS];
	unsigned nact, id;
	const char *doing;
};

static struct state {
	unsigned workers, nf, nw, na;
	uint8_t on_done_mask;
	coev_future_t *f[FUTURES];
	struct waiter w[WAITERS];
	struct actor a[ACTORS];
	unsigned wins[FUTURES];	   /* completions or cancels that won */
	int result[FUTURES];	   /* the winner's result */
	unsigned gave_up[FUTURES]; /* awaits that gave up (and cancel) */
	unsigned on_done_runs[FUTURES];
	long values; /* values allocated and not freed */
	struct post {
		unsigned f;
		int res;
	} posts[ACTORS][ACTIONS];
	coev_rt_t *rt;
	int main_ret;
	bool life;	   /* the future of the lifetime check */
	coev_future_t *lf; /* its one reference is life_waiter's */
} st;

static void value_free(void *v)
{
	st.values--;
	free(v);
}

/* Complete future j with result res and a value, as a callback would. */
static void complete(unsigned j, int res)
{
	int *v = malloc(sizeof *v);
	int r;

	H_CHECK(v != NULL, "malloc");
	*v = res;
	st.values++;
	r = coev_future_complete(st.f[j], res, v, value_free);
	if (r == 0) {
		st.wins[j]++;
		st.result[j] = res;
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
		st.wins[j]++;
		st.result[j] = -ECANCELED;
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

static void on_done(coev_future_t *f, void *arg)
{
	unsigned j = (unsigned)(uintptr_t)arg;

	H_CHECK(f == st.f[j], "on_done for the wrong future");
	H_CHECK(coev_future_poll(f, NULL) == 0, "on_done before completion");
	st.on_done_runs[j]++;
}

static int waiter_main(void *arg)
{
	struct waiter *w = arg;
	coev_future_t *f = st.f[w->f];
	coev_time_t dl = coev_deadline((coev_time_t)(w->a % 4) * 400);

	w->res = 12345;
	w->doing = "waiting";
	switch (w->how) {
	case W_WAIT:
		w->r = coev_future_wait(f, &w->res);
		H_CHECK(w->r == 0, "wait: %d", w->r);
		break;
	case W_WAIT_DL:
		w->r = coev_future_wait_dl(f, dl, &w->res);
		H_CHECK(w->r == 0 || w->r == -ETIMEDOUT, "wait_dl: %d", w->r);
		break;
	case W_AWAIT:
		w->r = coev_future_await(f, &w->res);
		H_CHECK(w->r == 0, "await: %d", w->r);
		break;
	case W_AWAIT_DL:
		w->r = coev_future_await_dl(f, dl, &w->res);
		H_CHECK(w->r == 0 || w->r == -ETIMEDOUT, "await_dl: %d", w->r);
		if (w->r == -ETIMEDOUT)
			st.gave_up[w->f]++;
		break;
	}
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
		if (st.on_done_mask & (1u << j))
			H_CHECK(coev_future_on_done(st.f[j], on_done,
						    (void *)(uintptr_t)j) == 0,
				"on_done");
	for (unsigned i = 0; i < st.na; i++)
		H_CHECK(sim_actor_start(&as[i], "actor", actor_main,
					&st.a[i]) == 0,
			"actor start");
	for (unsigned i = 0; i < st.na; i++)
		sim_actor_join(as[i]);
	/* Every wait must end: complete what is still pending. */
	for (unsigned j = 0; j < st.nf; j++)
		complete(j, (int)(j * 10 + 9));
	for (unsigned i = 0; i < st.nw; i++)
		H_CHECK(coev_join(ts[i], NULL) == 0, "join");
	if (st.life) {
		H_CHECK(coev_join(lw, NULL) == 0, "join");
		sim_actor_join(la);
	}
	return 0;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	h_config(&cfg, st.workers);
	for (unsigned j = 0; j < st.nf; j++)
		H_CHECK(coev_future_new(&st.f[j]) == 0, "future_new");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	for (unsigned j = 0; j < st.nf; j++) {
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
		H_CHECK(st.on_done_runs[j] ==
				(st.on_done_mask & (1u << j) ? 1u : 0u),
			"future %u: on_done ran %u times", j,
			st.on_done_runs[j]);
		coev_future_release(st.f[j]);
	}
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nw; i++)
		fprintf(out, "  waiter %u (future %u, how %u): %s\n", i,
			st.w[i].f, st.w[i].how,
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

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.nf = 1 + prog_byte(&g) % FUTURES;
	st.nw = 1 + prog_byte(&g) % WAITERS;
	st.na = 1 + prog_byte(&g) % ACTORS;
	st.on_done_mask = (uint8_t)prog_byte(&g);
	st.life = prog_byte(&g) & 1;
	for (unsigned i = 0; i < st.nw; i++) {
		unsigned b = prog_byte(&g);

		st.w[i].f = b % st.nf;
		st.w[i].how = (b / 4) % 4;
		st.w[i].a = b / 16;
	}
	for (unsigned i = 0; i < st.na; i++) {
		st.a[i].id = i;
		st.a[i].nact = prog_byte(&g) % (ACTIONS + 1);
		for (unsigned k = 0; k < st.a[i].nact; k++)
			st.a[i].act[k] = (uint8_t)prog_byte(&g);
	}
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	H_CHECK(st.values == 0, "%ld values not freed", st.values);
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
