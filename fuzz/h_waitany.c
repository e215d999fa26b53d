/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_waitany.c — the wait-any harness: coev_wait_any (coev/scope.h)
 * over tasks that end while it waits, with deadlines, a duplicate handle,
 * the cancellation of the waiter and a waiter that is a plain thread.
 *
 * Program: workers (1-3); 1-4 target tasks, each ending after a short
 * sleep, a few yields, or an event main sets, with its own result; a
 * watcher, a task or a plain thread (a foreign actor), that takes them
 * in the order they end, as coev/scope.h shows (wait_any, join the index
 * returned, clear its entry, again), each call with a deadline the
 * program picks (none, 0-900 ns ahead, or one already past), the first
 * maybe with one handle twice; before a call it may cancel a target
 * (the handles are its own). Main takes up to three steps, each after
 * some yields: set the event, cancel the watcher (a task), or nothing; then it sets the event so that every target ends.
 * A cancelled watcher goes on inside a shield.
 *
 * Oracles (coev/scope.h, coev/task.h, coev/sync.h rule 2):
 *   - an index returned names a non-NULL entry whose task has ended (its
 *     function returned), and the join of it does not wait (a join with
 *     a deadline already past returns 0) and gives its result;
 *   - -ETIMEDOUT only from a call with a deadline, once coev_now() has
 *     reached it; -ECANCELED only in a cancelled watcher outside its
 *     shield; -EINVAL only with the duplicate; -ENOENT once every entry is
 *     NULL; nothing else;
 *   - exactness, in the simulation's terms: a task's second call that
 *     only tries (deadline 0), made with no scheduling point between (the
 *     virtual clock has not moved, so no other thread ran), sees the state the
 *     first one returned in: it returns the same index (the lowest one
 *     that has ended), and when the first returned an error it finds no
 *     task ended (one that had ended was to be reported instead);
 *   - every target is taken exactly once; no registration is left in the
 *     slots of the others after a call returns (a later join or wait of
 *     them would abort: the handle looks joined); no wait hangs; nothing
 *     leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define TARGETS 4
#define ROUNDS 8 /* calls the watcher's program decides; later: none */
#define STEPS 3

enum { E_SLEEP, E_YIELD, E_EVENT };

struct target {
	unsigned how, arg, id;
	bool ended;	/* its function returned */
	bool taken;	/* the watcher joined it */
	bool cancelled; /* the watcher cancelled it */
	int result;	/* what it returned */
	coev_task_t *t;
};

static struct state {
	unsigned workers, nt;
	struct target tg[TARGETS];
	coev_task_t *ts[TARGETS + 1]; /* the watcher's array: one spare */
	uint8_t dl[ROUNDS];
	bool dup, thread;
	bool cancelled, shielded;
	uint8_t step[STEPS][2];
	coev_event_t go, fin; /* targets wait for go; fin: the watcher ends */
	coev_task_t *wt;
	sim_actor_t wa;
	const char *doing;
	unsigned calls;
	int main_ret;
} st;

static int target(void *arg)
{
	struct target *g = arg;
	int r = 0;

	switch (g->how) {
	case E_SLEEP: r = coev_sleep((coev_time_t)(g->arg % 4) * 300); break;
	case E_YIELD:
		for (unsigned i = 0; i < g->arg % 4; i++)
			coev_yield();
		break;
	case E_EVENT: r = coev_event_wait(&st.go); break;
	}
	g->result = r < 0 ? r : (int)g->id * 10 + 1;
	g->ended = true;
	return g->result;
}

/* The index or error a call that only tries gives now, and whether no
 * other thread ran since before (the clock has not moved). */
static int recheck(size_t n, coev_time_t before, bool *exact)
{
	int r = coev_wait_any(st.ts, n, 0);

	/* A plain thread may block after its call decided (leaving the
	 * runtime's count of plain waiters): then others run, maybe with no
	 * point passed. */
	*exact = coev_now() == before && !st.thread;
	return r;
}

/* Index i was returned: join it without waiting, clear it. */
static void take(int i)
{
	struct target *g;
	int ret = 0, r;

	H_CHECK(i >= 0 && (unsigned)i < st.nt && st.ts[i],
		"wait_any returned %d for a NULL or missing entry", i);
	g = &st.tg[i];
	/* A target cancelled before it first ran never ran: -ECANCELED. */
	H_CHECK(g->ended || g->cancelled,
		"wait_any returned %d, whose task has not ended", i);
	r = coev_join_dl(st.ts[i], 0, &ret);
	H_CHECK(r == 0 && ret == (g->ended ? g->result : -ECANCELED),
		"join of the task returned: %d, result %d (it returned %d)", r,
		ret, g->result);
	H_CHECK(!g->taken, "target %d taken twice", i);
	g->taken = true;
	st.ts[i] = NULL;
}

/* One call of the as-completed loop; false once every entry is NULL. */
static bool round_once(unsigned k)
{
	unsigned d = k < ROUNDS ? st.dl[k] : 0;
	size_t n = st.nt;
	coev_time_t dl, t;
	int r, again;
	bool exact, dup = k == 0 && st.dup;

	/* No deadline, 0-900 ns ahead, or already past; later rounds wait. */
	dl = k >= ROUNDS || d % 3 == 0 ? COEV_FOREVER
	     : d % 3 == 1 ? coev_now() + (coev_time_t)(d / 3 % 4) * 300
			  : coev_now() - 1;
	/* The handles are the watcher's: it may cancel one. */
	if ((d & 0x80) && st.ts[(d >> 4) % st.nt]) {
		st.tg[(d >> 4) % st.nt].cancelled = true;
		H_CHECK(coev_cancel(st.ts[(d >> 4) % st.nt]) == 0, "cancel");
	}
	if (dup) {
		st.ts[n] = st.ts[0];
		n++;
	}
	st.calls++;
	r = coev_wait_any(st.ts, n, dl);
	t = coev_now();
	again = recheck(n, t, &exact);
	if (dup)
		st.ts[n - 1] = NULL;
	if (r >= 0) {
		H_CHECK(!exact || again == r,
			"wait_any returned %d, and at once after %d", r, again);
		if (dup && (size_t)r == n - 1)
			r = 0; /* the same task as entry 0 */
		take(r);
		return true;
	}
	H_CHECK(!exact || again < 0,
		"wait_any answered %d while task %d had ended", r, again);
	switch (r) {
	case -ENOENT:
		for (unsigned i = 0; i < st.nt; i++)
			H_CHECK(!st.ts[i], "-ENOENT with entry %u set", i);
		return false;
	case -ETIMEDOUT:
		H_CHECK(dl != COEV_FOREVER && t >= dl, "wait_any timed out %s",
			dl == COEV_FOREVER ? "without a deadline" : "early");
		break;
	case -ECANCELED:
		H_CHECK(st.cancelled && !st.shielded,
			"-ECANCELED in a watcher %s",
			st.cancelled ? "inside its shield"
				     : "nobody cancelled");
		H_CHECK(coev_shield_begin() == 0, "shield");
		st.shielded = true;
		break;
	case -EINVAL: H_CHECK(dup, "-EINVAL without a duplicate"); break;
	default: H_CHECK(0, "wait_any answered %d", r);
	}
	/* An index the recheck found is the next to take. */
	if (again >= 0)
		take(again);
	return true;
}

static void watch(void)
{
	st.doing = "waiting";
	for (unsigned k = 0; round_once(k); k++)
		H_CHECK(k < 64, "the as-completed loop does not end");
	if (st.shielded)
		H_CHECK(coev_shield_end() == 0, "shield end");
	for (unsigned i = 0; i < st.nt; i++)
		H_CHECK(st.tg[i].taken, "target %u never taken", i);
	st.doing = "done";
	coev_event_set(&st.fin);
}

static int watcher_task(void *arg)
{
	(void)arg;
	watch();
	return 0;
}

static void watcher_thread(void *arg)
{
	(void)arg;
	watch();
}

static int main_task(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nt; i++) {
		H_CHECK(coev_spawn(target, &st.tg[i], &st.tg[i].t) == 0,
			"spawn");
		st.ts[i] = st.tg[i].t;
	}
	if (st.thread)
		H_CHECK(sim_actor_start(&st.wa, "watcher", watcher_thread,
					NULL) == 0,
			"actor start");
	else
		H_CHECK(coev_spawn(watcher_task, NULL, &st.wt) == 0, "spawn");
	for (unsigned s = 0; s < STEPS; s++) {
		unsigned what = st.step[s][1] % 4;

		for (unsigned y = 0; y < st.step[s][0] % 8; y++)
			coev_yield();
		if (what == 1) {
			coev_event_set(&st.go);
		} else if (what == 3 && !st.thread) {
			st.cancelled = true;
			H_CHECK(coev_cancel(st.wt) == 0, "cancel");
		}
	}
	coev_event_set(&st.go);
	/* A plain thread's join would block this worker, which the targets
	 * may need: wait for the watcher as a task first. */
	if (st.thread) {
		H_CHECK(coev_event_wait(&st.fin) == 0, "fin");
		sim_actor_join(st.wa);
		return 0;
	}
	H_CHECK(coev_join(st.wt, NULL) == 0, "join");
	/* A watcher cancelled before it first ran never ran: its targets
	 * are main's to join. */
	for (unsigned i = 0; i < st.nt; i++)
		if (st.ts[i] && !st.tg[i].taken)
			H_CHECK(coev_join(st.ts[i], NULL) == 0, "join");
	return 0;
}

static void describe(FILE *out, void *arg);

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	H_CHECK(coev_event_init(&st.go) == 0 && coev_event_init(&st.fin) == 0,
		"event_init");
	st.main_ret = coev_run(main_task, NULL, &cfg);
	coev_event_destroy(&st.go);
	coev_event_destroy(&st.fin);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	fprintf(out, "  watcher (%s%s): %s, %u calls\n",
		st.thread ? "thread" : "task",
		st.cancelled ? ", cancelled" : "",
		st.doing ? st.doing : "not started", st.calls);
	for (unsigned i = 0; i < st.nt; i++)
		fprintf(out, "  target %u (how %u): %s%s\n", i, st.tg[i].how,
			st.tg[i].ended ? "ended" : "running",
			st.tg[i].taken ? ", taken" : "");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned b;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	b = prog_byte(&g);
	st.nt = 1 + b % TARGETS;
	st.dup = (b >> 2) & 1;
	st.thread = (b >> 3) & (b >> 4) & 1;
	for (unsigned i = 0; i < st.nt; i++) {
		b = prog_byte(&g);
		st.tg[i].id = i;
		st.tg[i].how = b % 3;
		st.tg[i].arg = b / 3;
	}
	for (unsigned k = 0; k < ROUNDS; k++)
		st.dl[k] = (uint8_t)prog_byte(&g);
	for (unsigned s = 0; s < STEPS; s++) {
		st.step[s][0] = (uint8_t)prog_byte(&g);
		st.step[s][1] = (uint8_t)prog_byte(&g);
	}
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
}

const struct harness h_waitany = {
	"waitany",
	"wait-any over ending tasks: as completed, deadlines, cancel, a "
	"duplicate, a plain thread",
	run,
};
