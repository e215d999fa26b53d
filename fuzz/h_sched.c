/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_sched.c — the scheduler and tasks harness.
 *
 * Program: the number of workers (1-3), an allocation to fail (most
 * programs fail none; sim_opts.fail_mem), then up to 6 tasks of up to 8
 * operations each. A task's operations act on a stack of children it
 * spawned: spawn a leaf, join, cancel or detach the newest, gather them
 * all, wait_for a leaf with a short deadline, yield, sleep; a task joins
 * what it still holds when its operations end. Leaves yield a few times,
 * some sleep (a wait a cancel ends), and return a value that names them,
 * negative for some (a failed task). Some leaves first spawn a detached
 * twig: a spawn that may race with the shutdown coev_run starts when main
 * returns (the live count's handshake, sched/task.c).
 *
 * Oracles, from coev/task.h and coev/runtime.h: every leaf that is not
 * cancelled runs exactly once, and none runs twice; a leaf's result is
 * delivered exactly once, and a join, gather or wait_for gets the leaf's
 * own return value, or -ECANCELED for a leaf cancelled before it started
 * (which then never ran); gather returns the number of negative results;
 * wait_for returns 0 or -ETIMEDOUT, and -ETIMEDOUT only once its deadline
 * passed; a sleep returns 0 no earlier than its time, or -ECANCELED only
 * after a cancel of its task (by coev_cancel, or by a wait_for whose
 * deadline passed); join, cancel, detach and yield return 0; every started
 * leaf finishes; the runtime ends with nothing leaked. A twig's spawn
 * succeeds or, once the shutdown began, fails with -ESHUTDOWN; a spawned
 * twig runs at most once, and coev_run (whose shutdown waits for the live
 * count to reach 0) returns main's result, 0, so no task outlived it.
 * With an allocation failed on purpose: a spawn (and wait_for) may also
 * return -ENOMEM, and then nothing ran; coev_run may return a negative
 * error without running main; a task whose stack could not be mapped never
 * ran and its result is COEV_ESTACKMAP; everything else holds, nothing
 * leaks.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/harness.h"

#define TASKS 6
#define OPS 8
#define LEAVES 64
#define HELD 4

enum {
	OP_YIELD,
	OP_SPAWN,
	OP_JOIN,
	OP_CANCEL,
	OP_DETACH,
	OP_SLEEP,
	OP_GATHER,
	OP_WAIT_FOR
};

struct leaf {
	int id;
	unsigned yields;
	bool twig;	   /* spawns a detached twig first */
	bool fails;	   /* returns a negative value */
	coev_time_t sleep; /* sleeps this long (0: no sleep) */
	int twig_rc;
	int twig_ran;
	int started, finished, joined;
	int ret; /* what it returned */
	bool cancelled, detached;
	bool wf;	      /* run by wait_for */
	coev_time_t deadline; /* wait_for's */
};

struct task_prog {
	uint8_t op[OPS];
	unsigned nops;
	const char *doing; /* for the deadlock dump */
};

static struct state {
	unsigned workers, ntasks;
	struct task_prog t[TASKS];
	struct leaf leaves[LEAVES];
	int nleaves;
	int main_ret;
	bool main_ran, main_done;
	unsigned fail_mem;
	bool fail_more;
} st;

/* An allocation was failed on purpose: -ENOMEM and COEV_ESTACKMAP are
 * answers the docs allow. */
static bool mem_failed(void)
{
	return sim_failed_allocs() > 0;
}

static int leaf_value(int id)
{
	return 1000 + id;
}

static int twig_main(void *arg)
{
	struct leaf *l = arg;

	l->twig_ran++;
	H_CHECK(l->twig_ran == 1, "twig of leaf %d ran twice", l->id);
	coev_yield();
	return 0;
}

static int leaf_main(void *arg)
{
	struct leaf *l = arg;

	int r;

	l->started++;
	H_CHECK(l->started == 1, "leaf %d started twice", l->id);
	if (l->twig) {
		l->twig_rc = coev_spawn(twig_main, l, NULL);
		H_CHECK(l->twig_rc == 0 || l->twig_rc == -ESHUTDOWN ||
				(l->twig_rc == -ENOMEM && mem_failed()),
			"twig spawn: %d", l->twig_rc);
	}
	for (unsigned i = 0; i < l->yields; i++) {
		r = coev_yield();
		H_CHECK(r == 0, "leaf %d: yield: %d", l->id, r);
	}
	l->ret = l->fails ? -leaf_value(l->id) : leaf_value(l->id);
	if (l->sleep) {
		coev_time_t t0 = coev_now();

		r = coev_sleep(l->sleep);
		if (r == 0) {
			H_CHECK(coev_now() >= t0 + l->sleep,
				"leaf %d: a sleep of %lld ns returned after "
				"%lld ns",
				l->id, (long long)l->sleep,
				(long long)(coev_now() - t0));
		} else {
			H_CHECK(r == -ECANCELED, "leaf %d: sleep: %d", l->id,
				r);
			/* coev_run cancels what is left when main
			 * returns: detached leaves. */
			H_CHECK(l->cancelled ||
					(l->wf && coev_now() >= l->deadline) ||
					(l->detached && st.main_done),
				"leaf %d: sleep -ECANCELED, but nobody "
				"cancelled it",
				l->id);
			l->ret = -ECANCELED;
		}
	}
	l->finished++;
	return l->ret;
}

static struct leaf *new_leaf(unsigned arg)
{
	struct leaf *l;

	if (st.nleaves == LEAVES)
		return NULL;
	l = &st.leaves[st.nleaves];
	memset(l, 0, sizeof *l);
	l->id = st.nleaves++;
	l->yields = arg % 4;
	l->twig = arg / 4 % 2;
	l->sleep = arg / 8 % 2 ? 300 * (1 + arg % 3) : 0;
	l->fails = arg / 16 % 2;
	return l;
}

/* A join's (gather's, wait_for's) result for leaf l: its own return
 * value, delivered once; a leaf that never ran was cancelled first (its
 * result -ECANCELED) or got no stack (COEV_ESTACKMAP). */
static void check_ret(struct leaf *l, int ret)
{
	l->joined++;
	H_CHECK(l->joined == 1, "leaf %d: its result delivered %d times", l->id,
		l->joined);
	if (!l->started) {
		H_CHECK((ret == -ECANCELED && l->cancelled) ||
				(ret == COEV_ESTACKMAP && mem_failed()),
			"leaf %d never ran, and its join got %d%s", l->id, ret,
			l->cancelled ? "" : " (it was not cancelled)");
		return;
	}
	H_CHECK(l->finished == 1,
		"leaf %d joined but ran %d times, finished %d", l->id,
		l->started, l->finished);
	H_CHECK(ret == l->ret, "leaf %d: join got %d, it returned %d", l->id,
		ret, l->ret);
}

struct held {
	coev_task_t *t;
	struct leaf *l;
};

static int task_main(void *arg)
{
	struct task_prog *p = arg;
	struct held h[HELD];
	unsigned nh = 0;
	int r, ret;

	for (unsigned i = 0; i < p->nops; i++) {
		unsigned op = p->op[i] % 8, a = p->op[i] / 8;
		struct leaf *l;

		switch (op) {
		case OP_YIELD:
			p->doing = "yield";
			r = coev_yield();
			H_CHECK(r == 0, "yield: %d", r);
			break;
		case OP_SPAWN:
			if (nh == HELD || !(l = new_leaf(a)))
				break;
			p->doing = "spawn";
			r = coev_spawn(leaf_main, l, &h[nh].t);
			H_CHECK(r == 0 || (r == -ENOMEM && mem_failed()),
				"spawn: %d", r);
			if (r) {
				l->cancelled = true; /* never ran: not judged */
				l->joined = 1;
				break;
			}
			h[nh++].l = l;
			break;
		case OP_JOIN:
			if (!nh)
				break;
			p->doing = "join";
			nh--;
			r = coev_join(h[nh].t, &ret);
			H_CHECK(r == 0, "join: %d", r);
			check_ret(h[nh].l, ret);
			break;
		case OP_CANCEL:
			if (!nh)
				break;
			p->doing = "cancel";
			h[nh - 1].l->cancelled = true;
			r = coev_cancel(h[nh - 1].t);
			H_CHECK(r == 0, "cancel: %d", r);
			break;
		case OP_DETACH:
			if (!nh)
				break;
			nh--;
			h[nh].l->detached = true;
			r = coev_detach(h[nh].t);
			H_CHECK(r == 0, "detach: %d", r);
			break;
		case OP_SLEEP: {
			coev_time_t t0 = coev_now(), d = (a % 4) * 1000;

			p->doing = "sleep";
			r = coev_sleep(d);
			H_CHECK(r == 0,
				"sleep: %d (the task was not cancelled)", r);
			H_CHECK(coev_now() >= t0 + d,
				"a sleep of %lld ns returned after %lld ns",
				(long long)d, (long long)(coev_now() - t0));
			break;
		}
		case OP_GATHER: {
			coev_task_t *ts[HELD];
			int rets[HELD];

			if (!nh)
				break;
			p->doing = "gather";
			for (unsigned j = 0; j < nh; j++)
				ts[j] = h[j].t;
			r = coev_gather(ts, nh, rets);
			H_CHECK(r >= 0, "gather: %d", r);
			for (unsigned j = 0; j < nh; j++) {
				check_ret(h[j].l, rets[j]);
				r -= rets[j] < 0;
			}
			H_CHECK(r == 0,
				"gather: its count of failed tasks is "
				"off by %d",
				r);
			nh = 0;
			break;
		}
		case OP_WAIT_FOR:
			if (!(l = new_leaf(a)))
				break;
			p->doing = "wait_for";
			l->wf = true;
			l->deadline = coev_deadline((coev_time_t)(a % 3) * 500);
			r = coev_wait_for(leaf_main, l, l->deadline, &ret);
			H_CHECK(r == 0 || r == -ETIMEDOUT ||
					(r == -ENOMEM && mem_failed()),
				"wait_for: %d", r);
			if (r == -ENOMEM) {
				H_CHECK(!l->started,
					"wait_for: -ENOMEM, but the leaf ran");
				break;
			}
			if (r == -ETIMEDOUT) {
				H_CHECK(coev_now() >= l->deadline,
					"wait_for: -ETIMEDOUT %lld ns before "
					"its deadline",
					(long long)(l->deadline - coev_now()));
				l->cancelled = true; /* it was cancelled */
			} else {
				H_CHECK(l->started && l->finished,
					"wait_for: 0, but the leaf did not "
					"finish");
			}
			check_ret(l, ret);
			break;
		}
	}
	p->doing = "final joins";
	while (nh) {
		nh--;
		r = coev_join(h[nh].t, &ret);
		H_CHECK(r == 0, "join: %d", r);
		check_ret(h[nh].l, ret);
	}
	p->doing = "done";
	return 0;
}

static int main_task(void *arg)
{
	coev_task_t *ts[TASKS] = {0};
	int rets[TASKS], r, bad = 0;
	unsigned n = 0;

	(void)arg;
	st.main_ran = true;
	for (unsigned i = 0; i < st.ntasks; i++) {
		r = coev_spawn(task_main, &st.t[i], &ts[n]);
		H_CHECK(r == 0 || (r == -ENOMEM && mem_failed()), "spawn: %d",
			r);
		n += r == 0;
	}
	r = coev_gather(ts, n, rets);
	for (unsigned i = 0; i < n; i++) {
		/* A task whose stack could not be mapped never ran. */
		H_CHECK(rets[i] == 0 ||
				(rets[i] == COEV_ESTACKMAP && mem_failed()),
			"task %u returned %d", i, rets[i]);
		bad += rets[i] < 0;
	}
	H_CHECK(r == bad, "gather: %d, but %d tasks failed", r, bad);
	st.main_done = true;
	return 0;
}

/* The runtime reports failed tasks nobody joined (detached failing
 * leaves): expected here, and not worth a line per run. */
static void quiet(void *arg, const char *text)
{
	(void)arg;
	(void)text;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	h_config(&cfg, st.workers);
	cfg.log = quiet;
	st.main_ret = coev_run(main_task, NULL, &cfg);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.ntasks; i++)
		fprintf(out, "  task %u: %s\n", i,
			st.t[i].doing ? st.t[i].doing : "not started");
	for (int i = 0; i < st.nleaves; i++)
		fprintf(out,
			"  leaf %d: started %d finished %d returned %d "
			"joined %d; sleeps %lld%s%s%s\n",
			i, st.leaves[i].started, st.leaves[i].finished,
			st.leaves[i].ret, st.leaves[i].joined,
			(long long)st.leaves[i].sleep,
			st.leaves[i].cancelled ? " cancelled" : "",
			st.leaves[i].detached ? " detached" : "",
			st.leaves[i].wf ? " (wait_for)" : "");
	if (st.fail_mem)
		fprintf(out,
			"  allocation %u fails (and later ones: %d); %u "
			"failed\n",
			st.fail_mem, st.fail_more, sim_failed_allocs());
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};
	unsigned f;

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	/* One program in eight fails one allocation of the run (the Nth),
	 * one in eight the Nth and every later one (which reaches the
	 * allocations after the runtime's start: stacks, task blocks). */
	f = prog_byte(&g);
	st.fail_mem = f % 8 == 1 || f % 8 == 5 ? 1 + f / 8 : 0;
	o->fail_mem = st.fail_mem;
	o->fail_mem_more = st.fail_more = f % 8 == 5;
	st.ntasks = 1 + prog_byte(&g) % TASKS;
	for (unsigned i = 0; i < st.ntasks; i++) {
		st.t[i].nops = prog_byte(&g) % (OPS + 1);
		for (unsigned j = 0; j < st.t[i].nops; j++)
			st.t[i].op[j] = (uint8_t)prog_byte(&g);
	}
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	if (st.main_ran)
		H_CHECK(st.main_ret == 0,
			"coev_run returned %d, main returned 0", st.main_ret);
	else
		H_CHECK(st.main_ret < 0 && mem_failed(),
			"coev_run returned %d without running main",
			st.main_ret);
	for (int i = 0; i < st.nleaves; i++) {
		struct leaf *l = &st.leaves[i];

		H_CHECK(l->started <= 1 && l->finished == l->started,
			"leaf %d started %d finished %d", i, l->started,
			l->finished);
		/* A detached leaf may still be queued when main returns:
		 * coev_run then cancels it. */
		H_CHECK(l->started == 1 || l->cancelled || l->detached ||
				mem_failed(),
			"leaf %d never ran and was not cancelled", i);
		H_CHECK(l->joined == (l->detached ? 0 : 1) ||
				(!st.main_ran || mem_failed()),
			"leaf %d: its result delivered %d times", i, l->joined);
		H_CHECK(l->twig_ran <= (l->started && l->twig && !l->twig_rc),
			"leaf %d: a twig ran that was not spawned", i);
	}
}

const struct harness h_sched = {
	"sched",
	"tasks: spawn, join, cancel, detach, gather, wait_for, yield, sleep",
	run,
};
