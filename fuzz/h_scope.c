/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_scope.c — the scopes harness (coev/scope.h), with allocation
 * failure decided by the input.
 *
 * Program: workers (1-3); maybe an allocation that fails (the Nth, or the
 * Nth and every later one); 1-3 scope descriptions, each with flags
 * (maybe COEV_SCOPE_FAIL_FAST), maybe a close deadline, maybe a cancel of
 * its own by the owner before it closes, and 1-4 children, each one of:
 * sleep and succeed, sleep and fail with an error of its own, a shielded
 * sleep, open a nested scope of the next description (and return its
 * close's answer), cancel its own scope from inside, spawn a sibling into
 * its scope (maybe while the scope is being cancelled), yield, wait for
 * a cancel (the owner cancels the scope unless a fail-fast one has a
 * child that fails). An owner
 * task opens a scope of the first description; main may cancel that owner
 * after a virtual delay (rule 4), and joins it.
 *
 * Oracles (coev/scope.h, coev/task.h):
 *  - close returns only when every child of its scope has ended, and no
 *    child starts after it returned;
 *  - close's answer is 0 only when no child returned a negative result,
 *    and otherwise one a child really returned, or -ECANCELED when a
 *    cancel reached the scope from outside its own fail-fast (an explicit
 *    cancel, its owner's cancellation, an enclosing scope's cancel or
 *    failure or cut), or -ETIMEDOUT when its deadline has passed, or
 *    COEV_ESTACKMAP when an allocation failed;
 *  - the first failure in a fail-fast scope cancels its siblings (a
 *    child waiting for a cancel is ended by nothing else);
 *  - a child's sleep returns -ECANCELED only when some cancel could have
 *    reached it, and must return it when it began after a cancel of its
 *    scope (or an enclosing one) had returned; a shielded sleep never
 *    does; a sleep that returns 0 slept its time;
 *  - a spawn into a scope returns 0 or, only once a cancel could have
 *    reached the scope, -ECANCELED, and must return -ECANCELED after a
 *    cancel of it (or an enclosing scope) returned; -ENOMEM only when an
 *    allocation failed; the same for open;
 *  - the owner's join sees the top close's answer; coev_run returns main's
 *    result or, when an allocation failed, a documented error; every
 *    allocation is returned (the leak oracle of h_run).
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define DESCS 3
#define KIDS 4
#define SCOPES 12  /* scope instances in one run */
#define RECORDS 40 /* child records in one run */
#define NS 250

enum {
	K_SLEEP,
	K_FAIL,
	K_SHIELD,
	K_NEST,
	K_CANCEL,
	K_SPAWN,
	K_YIELD,
	K_WAIT,
	K_KINDS
};
static const char *const kind_name[K_KINDS] = {
	"sleep", "fail", "shield", "nest", "cancel", "spawn", "yield", "wait",
};

struct desc {
	unsigned flags, dl, cancel_self, nkids;
	uint8_t kid[KIDS];
};

/* One open (or closed) scope. */
struct sc {
	int parent; /* index, or -1 */
	unsigned desc;
	coev_scope_t *s;
	bool fail_fast, closed;
	bool cancel_issued, cancel_done; /* an explicit coev_scope_cancel */
	bool *owner_cancel;		 /* the owner was cancelled (top) */
	bool ff_failed;			 /* a child failed, fail-fast */
	bool ecanceled_ok;    /* a nested close answered -ECANCELED */
	coev_time_t close_dl; /* COEV_FOREVER: none */
	unsigned running;     /* children started, not ended */
	int neg[RECORDS];     /* negative results of children */
	unsigned nneg;
};

enum { R_QUEUED, R_RUNNING, R_ENDED, R_REFUSED };

struct rec {
	int sc;
	unsigned kind, a, id, state;
	int ret;
	const char *doing;
};

static struct state {
	unsigned workers, ndesc, cancel_delay, cancel_owner;
	unsigned fail_mem, fail_more;
	struct desc d[DESCS];
	struct sc sc[SCOPES];
	unsigned nsc;
	struct rec r[RECORDS];
	unsigned nrec;
	bool top_cancelled;
	coev_event_t never;
	int top_ret, owner_ret, main_ret, run_ret;
	bool owner_ran;
} st;

static int run_scope(unsigned desc, int parent);

/* A cancel could have reached scope i: allow -ECANCELED. With own_ff,
 * counting a fail-fast failure in i itself (which cancels i's children,
 * but is never the first error of i). */
static bool may_cancel(int i, bool own_ff)
{
	for (bool own = true; i >= 0; i = st.sc[i].parent, own = false) {
		struct sc *c = &st.sc[i];

		if (c->cancel_issued || (c->owner_cancel && *c->owner_cancel))
			return true;
		if (c->ff_failed && (own_ff || !own))
			return true;
		if (!own && c->close_dl != COEV_FOREVER &&
		    coev_now() >= c->close_dl)
			return true;
		if (own && own_ff && c->close_dl != COEV_FOREVER &&
		    coev_now() >= c->close_dl)
			return true;
	}
	return false;
}

/* A cancel of scope i or an enclosing one has returned: every wait of
 * i's children from now on must return -ECANCELED. */
static bool must_cancel(int i)
{
	for (; i >= 0; i = st.sc[i].parent)
		if (st.sc[i].cancel_done)
			return true;
	return false;
}

static bool alloc_may_fail(void)
{
	return st.fail_mem != 0;
}

/* A child's sleep with its oracles; returns the sleep's answer. */
static int kid_sleep(struct rec *k, coev_time_t d)
{
	bool must = d > 0 && must_cancel(k->sc);
	coev_time_t t0 = coev_now();
	int r = coev_sleep(d);

	if (r == 0) {
		H_CHECK(!must,
			"child %u slept after a cancel of its scope "
			"had returned",
			k->id);
		H_CHECK(coev_now() - t0 >= d, "child %u slept %lld of %lld ns",
			k->id, (long long)(coev_now() - t0), (long long)d);
	} else {
		H_CHECK(r == -ECANCELED, "child %u sleep: %d", k->id, r);
		H_CHECK(may_cancel(k->sc, true),
			"child %u cancelled, but no cancel reached it", k->id);
	}
	return r;
}

static int kid_main(void *arg);

/* Spawn a child of kind into scope i, checking the answer; true when it
 * was spawned. */
static bool spawn_kid(int i, unsigned kind, unsigned a)
{
	struct sc *c = &st.sc[i];
	bool must = must_cancel(i);
	struct rec *k;
	int r;

	if (st.nrec == RECORDS)
		return false;
	/* Taken before the spawn: other tasks spawn meanwhile. */
	k = &st.r[st.nrec++];
	k->sc = i;
	k->kind = kind;
	k->a = a;
	k->id = (unsigned)(k - st.r);
	k->state = R_QUEUED;
	k->doing = "queued";
	r = coev_scope_spawn(c->s, NULL, kid_main, k);
	if (r == 0) {
		H_CHECK(!must, "spawn into a cancelled scope returned 0");
		return true;
	}
	k->state = R_REFUSED;
	k->doing = "refused";
	if (r == -ECANCELED)
		H_CHECK(may_cancel(i, true),
			"spawn refused with -ECANCELED, but no cancel came");
	else
		H_CHECK(r == -ENOMEM && alloc_may_fail(), "scope_spawn: %d", r);
	return false;
}

static int kid_body(struct rec *k)
{
	struct sc *c = &st.sc[k->sc];
	coev_time_t d = (coev_time_t)(k->a % 4) * NS, t0;
	int r;

	switch (k->kind) {
	case K_SLEEP:
		k->doing = "sleep";
		if (kid_sleep(k, d) < 0)
			return -ECANCELED;
		return (int)k->id + 1;
	case K_FAIL:
		k->doing = "sleep, then fail";
		if (kid_sleep(k, d) < 0)
			return -ECANCELED;
		return -200 - (int)k->id;
	case K_SHIELD:
		k->doing = "shielded sleep";
		coev_shield_begin();
		t0 = coev_now();
		r = coev_sleep(d);
		coev_shield_end();
		H_CHECK(r == 0, "child %u shielded sleep: %d", k->id, r);
		H_CHECK(coev_now() - t0 >= d, "shielded sleep woke early");
		return (int)k->id + 1;
	case K_NEST:
		k->doing = "nested scope";
		if (c->desc + 1 < st.ndesc) {
			int n = run_scope(c->desc + 1, k->sc);

			if (n != -ENOSPC)
				return n;
		} /* no nesting left, or no slot: a sleep instead */
		if (kid_sleep(k, d) < 0)
			return -ECANCELED;
		return (int)k->id + 1;
	case K_CANCEL:
		k->doing = "sleep, then cancel its scope";
		if (kid_sleep(k, d) < 0)
			return -ECANCELED;
		c->cancel_issued = true;
		H_CHECK(coev_scope_cancel(c->s) == 0, "scope_cancel");
		c->cancel_done = true;
		/* It is one of the scope's tasks: cancelled too. */
		r = kid_sleep(k, NS);
		H_CHECK(r == -ECANCELED,
			"child %u slept on after cancelling "
			"its own scope",
			k->id);
		return 0;
	case K_SPAWN:
		k->doing = "sleep, then spawn a sibling";
		if (kid_sleep(k, d) < 0)
			return -ECANCELED;
		spawn_kid(k->sc, K_SLEEP, k->a / 4);
		return (int)k->id + 1;
	case K_WAIT:
		/* Only a cancel ends it: the scope's fail-fast, or a cancel
		 * run_scope makes sure of. */
		k->doing = "wait for a cancel";
		r = coev_event_wait(&st.never);
		H_CHECK(r == -ECANCELED && may_cancel(k->sc, true),
			"child %u's wait: %d", k->id, r);
		return r;
	case K_YIELD:
		k->doing = "yield";
		for (unsigned i = 0; i < 1 + k->a % 3; i++)
			coev_yield();
		return (int)k->id + 1;
	}
	return 0;
}

static int kid_main(void *arg)
{
	struct rec *k = arg;
	struct sc *c = &st.sc[k->sc];
	int r;

	H_CHECK(!c->closed, "child %u started after its scope closed", k->id);
	H_CHECK(k->state == R_QUEUED, "child %u ran twice", k->id);
	k->state = R_RUNNING;
	c->running++;
	r = kid_body(k);
	if (r < 0 && c->fail_fast)
		c->ff_failed = true; /* its end cancels the scope (rule 5) */
	k->ret = r;
	k->state = R_ENDED;
	k->doing = "ended";
	c->running--;
	if (r < 0)
		c->neg[c->nneg++] = r;
	/* A nested close's answer (its own cancel): a child's result like
	 * any other. Other children return -ECANCELED only when cancelled,
	 * and may_cancel judges those. */
	if (r == -ECANCELED && k->kind == K_NEST)
		c->ecanceled_ok = true;
	return r;
}

/* May close of scope i answer r? */
static bool close_answer_ok(int i, int r)
{
	struct sc *c = &st.sc[i];

	if (r == 0)
		return c->nneg == 0;
	/* Rule 6: what the scope's own fail-fast cancelled never hides
	 * the failure. */
	if (r == -ECANCELED)
		return may_cancel(i, false) || c->ecanceled_ok;
	for (unsigned j = 0; j < c->nneg; j++)
		if (c->neg[j] == r)
			return true;
	if (r == -ETIMEDOUT)
		return c->close_dl != COEV_FOREVER && coev_now() >= c->close_dl;
	if (r == COEV_ESTACKMAP)
		return sim_failed_allocs() > 0;
	return false;
}

/* Open a scope of description desc under scope parent (-1: none), run
 * it, close it and check the close; returns the close's answer. */
static int run_scope(unsigned desc, int parent)
{
	const struct desc *d = &st.d[desc];
	coev_scope_t *s;
	struct sc *c;
	bool waits = false, fails = false;
	int i, r;

	/* The slot is taken before the open, which may reach a scheduling
	 * point: tasks on other workers open nested scopes meanwhile, and
	 * each saw room (K_NEST) before any of them took it. */
	if (st.nsc == SCOPES)
		return -ENOSPC; /* the caller sleeps instead */
	i = (int)st.nsc++;
	c = &st.sc[i];
	memset(c, 0, sizeof *c);
	c->parent = parent;
	c->desc = desc;
	c->closed = true; /* until the open succeeded */
	r = coev_scope_open(d->flags, &s);
	if (r != 0) {
		H_CHECK(r == -ENOMEM && alloc_may_fail(), "scope_open: %d", r);
		return r;
	}
	c->closed = false;
	c->s = s;
	c->fail_fast = d->flags & COEV_SCOPE_FAIL_FAST;
	c->owner_cancel = parent < 0 ? &st.top_cancelled : NULL;
	c->close_dl = COEV_FOREVER;
	for (unsigned j = 0; j < d->nkids; j++) {
		unsigned kind = d->kid[j] % K_KINDS;
		bool ok = spawn_kid(i, kind, d->kid[j] / K_KINDS);

		waits |= kind == K_WAIT && ok;
		fails |= kind == K_FAIL && ok;
	}
	/* A wait for a cancel ends by the first failure of a fail-fast
	 * scope (rule 5), or else by a cancel here. */
	if (d->cancel_self || (waits && !(c->fail_fast && fails))) {
		coev_yield();
		c->cancel_issued = true;
		H_CHECK(coev_scope_cancel(s) == 0, "scope_cancel");
		c->cancel_done = true;
	}
	if (d->dl) {
		c->close_dl = coev_deadline((coev_time_t)(d->dl - 1) * NS);
		r = coev_scope_close_dl(s, c->close_dl);
	} else {
		r = coev_scope_close(s);
	}
	c->closed = true;
	H_CHECK(c->running == 0,
		"scope %d's close returned %d with %u children running", i, r,
		c->running);
	H_CHECK(close_answer_ok(i, r),
		"scope %d's close returned %d (%u child errors, first %d)", i,
		r, c->nneg, c->nneg ? c->neg[0] : 0);
	return r;
}

static int owner_main(void *arg)
{
	(void)arg;
	st.owner_ran = true;
	st.top_ret = run_scope(0, -1);
	return st.top_ret;
}

static int main_task(void *arg)
{
	coev_task_t *o;
	int r, ret = 0;

	(void)arg;
	r = coev_spawn(owner_main, NULL, &o);
	if (r != 0) {
		H_CHECK(r == -ENOMEM && alloc_may_fail(), "spawn: %d", r);
		return r;
	}
	if (st.cancel_owner) {
		coev_sleep((coev_time_t)st.cancel_delay * NS);
		st.top_cancelled = true;
		H_CHECK(coev_cancel(o) == 0, "cancel");
	}
	r = coev_join(o, &ret);
	H_CHECK(r == 0, "join of the owner: %d", r);
	if (st.owner_ran)
		H_CHECK(ret == st.top_ret, "owner's result %d, its close %d",
			ret, st.top_ret);
	else
		H_CHECK((ret == -ECANCELED && st.top_cancelled) ||
				(ret == COEV_ESTACKMAP && alloc_may_fail()),
			"owner never ran: %d", ret);
	st.owner_ret = ret;
	return 7;
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.nrec; i++)
		fprintf(out, "  child %u (scope %d, %s): %s\n", i, st.r[i].sc,
			kind_name[st.r[i].kind], st.r[i].doing);
	for (unsigned i = 0; i < st.nsc; i++)
		fprintf(out, "  scope %u: parent %d, %u running%s%s%s\n", i,
			st.sc[i].parent, st.sc[i].running,
			st.sc[i].cancel_issued ? ", cancelled" : "",
			st.sc[i].ff_failed ? ", a child failed" : "",
			st.sc[i].closed ? ", closed" : "");
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	sim_set_describe(describe, NULL);
	h_config(&cfg, st.workers);
	st.run_ret = coev_run(main_task, NULL, &cfg);
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned m;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	m = prog_byte(&g);
	if (m % 4 == 0) {
		st.fail_mem = 1 + (m / 4) % 40;
		st.fail_more = (m / 4 / 40) % 2;
	}
	st.cancel_owner = prog_byte(&g) % 3 == 0;
	st.cancel_delay = prog_byte(&g) % 6;
	st.ndesc = 1 + prog_byte(&g) % DESCS;
	for (unsigned i = 0; i < st.ndesc; i++) {
		struct desc *d = &st.d[i];
		unsigned b = prog_byte(&g);

		d->flags = b % 2 ? COEV_SCOPE_FAIL_FAST : 0;
		d->cancel_self = (b / 2) % 5 == 0;
		d->dl = (b / 10) % 3 == 0 ? 1 + (b / 30) % 6 : 0;
		d->nkids = 1 + prog_byte(&g) % KIDS;
		for (unsigned j = 0; j < d->nkids; j++)
			d->kid[j] = (uint8_t)prog_byte(&g);
	}
	o->fail_mem = st.fail_mem;
	o->fail_mem_more = st.fail_more;
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	if (!st.fail_mem) {
		H_CHECK(st.run_ret == 7, "coev_run returned %d", st.run_ret);
		return;
	}
	/* coev_rt_new's errors (main never ran), a failed spawn of main
	 * (-ENOMEM) or of its stack, or main's own result. */
	H_CHECK(st.run_ret == 7 || st.run_ret == -ENOMEM ||
			st.run_ret == -EAGAIN || st.run_ret == COEV_ESTACKMAP,
		"coev_run returned %d with allocation %u failing%s", st.run_ret,
		st.fail_mem, st.fail_more ? " and after" : "");
	if (st.run_ret != 7)
		H_CHECK(sim_failed_allocs() > 0, "coev_run failed: %d",
			st.run_ret);
}

const struct harness h_scope = {
	"scope",
	"scopes: fail-fast, nesting, cancels, close deadlines; failed "
	"allocations",
	run,
};
