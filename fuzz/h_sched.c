/*
 * fuzz/h_sched.c — the scheduler and tasks harness.
 *
 * Program: the number of workers (1-3), then up to 6 tasks of up to 8
 * operations each. A task's operations act on a stack of children it
 * spawned: spawn a leaf, join, cancel or detach the newest, gather them
 * all, wait_for a leaf with a short deadline, yield, sleep; a task joins
 * what it still holds when its operations end. Leaves yield a few times
 * and return a value that names them. Some leaves first spawn a detached
 * twig: a spawn that may race with the shutdown coev_run starts when main
 * returns (the live count's handshake, sched/task.c).
 *
 * Oracles: every leaf that is not cancelled runs exactly once, and none
 * runs twice; a join or gather gets the leaf's own value, or -ECANCELED
 * for a leaf cancelled before it started (which then never ran); every
 * started leaf finishes; the runtime ends with nothing leaked. A twig's
 * spawn succeeds or, once the shutdown began, fails with -ESHUTDOWN; a
 * spawned twig runs at most once, and coev_run (whose shutdown waits for
 * the live count to reach 0) returns 0, so no task outlived it.
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
	bool twig; /* spawns a detached twig first */
	int twig_rc;
	int twig_ran;
	int started, finished;
	bool cancelled, detached;
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
} st;

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

	l->started++;
	H_CHECK(l->started == 1, "leaf %d started twice", l->id);
	if (l->twig) {
		l->twig_rc = coev_spawn(twig_main, l, NULL);
		H_CHECK(l->twig_rc == 0 || l->twig_rc == -ESHUTDOWN,
			"twig spawn: %d", l->twig_rc);
	}
	for (unsigned i = 0; i < l->yields; i++)
		coev_yield();
	l->finished++;
	return leaf_value(l->id);
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
	return l;
}

/* A join's result for leaf l. */
static void check_ret(struct leaf *l, int ret)
{
	if (ret == -ECANCELED) {
		H_CHECK(l->cancelled, "leaf %d: -ECANCELED without a cancel",
			l->id);
		H_CHECK(l->started == 0,
			"leaf %d: ran but its join says cancelled", l->id);
		return;
	}
	H_CHECK(ret == leaf_value(l->id), "leaf %d: join got %d", l->id, ret);
	H_CHECK(l->started == 1 && l->finished == 1,
		"leaf %d joined but ran %d times, finished %d", l->id,
		l->started, l->finished);
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
			coev_yield();
			break;
		case OP_SPAWN:
			if (nh == HELD || !(l = new_leaf(a)))
				break;
			p->doing = "spawn";
			r = coev_spawn(leaf_main, l, &h[nh].t);
			H_CHECK(r == 0, "spawn: %d", r);
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
			coev_cancel(h[nh - 1].t);
			break;
		case OP_DETACH:
			if (!nh)
				break;
			nh--;
			h[nh].l->detached = true;
			coev_detach(h[nh].t);
			break;
		case OP_SLEEP:
			p->doing = "sleep";
			coev_sleep((coev_time_t)(a % 4) * 1000);
			break;
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
			H_CHECK(r == 0, "gather miscounted failures");
			nh = 0;
			break;
		}
		case OP_WAIT_FOR:
			if (!(l = new_leaf(a)))
				break;
			p->doing = "wait_for";
			r = coev_wait_for(
				leaf_main, l,
				coev_deadline((coev_time_t)(a % 3) * 500),
				&ret);
			H_CHECK(r == 0 || r == -ETIMEDOUT, "wait_for: %d", r);
			if (r == -ETIMEDOUT) /* it was cancelled */
				l->cancelled = true;
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
	coev_task_t *ts[TASKS];
	int rets[TASKS], r;

	(void)arg;
	for (unsigned i = 0; i < st.ntasks; i++) {
		r = coev_spawn(task_main, &st.t[i], &ts[i]);
		H_CHECK(r == 0, "spawn: %d", r);
	}
	r = coev_gather(ts, st.ntasks, rets);
	H_CHECK(r == 0, "gather: %d", r);
	for (unsigned i = 0; i < st.ntasks; i++)
		H_CHECK(rets[i] == 0, "task %u returned %d", i, rets[i]);
	return 0;
}

static void host(void *arg)
{
	coev_config_t cfg;

	(void)arg;
	h_config(&cfg, st.workers);
	st.main_ret = coev_run(main_task, NULL, &cfg);
}

static void describe(FILE *out, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < st.ntasks; i++)
		fprintf(out, "  task %u: %s\n", i,
			st.t[i].doing ? st.t[i].doing : "not started");
	for (int i = 0; i < st.nleaves; i++)
		fprintf(out, "  leaf %d: started %d finished %d%s%s\n", i,
			st.leaves[i].started, st.leaves[i].finished,
			st.leaves[i].cancelled ? " cancelled" : "",
			st.leaves[i].detached ? " detached" : "");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.ntasks = 1 + prog_byte(&g) % TASKS;
	for (unsigned i = 0; i < st.ntasks; i++) {
		st.t[i].nops = prog_byte(&g) % (OPS + 1);
		for (unsigned j = 0; j < st.t[i].nops; j++)
			st.t[i].op[j] = (uint8_t)prog_byte(&g);
	}
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
	for (int i = 0; i < st.nleaves; i++) {
		struct leaf *l = &st.leaves[i];

		H_CHECK(l->started <= 1 && l->finished == l->started,
			"leaf %d started %d finished %d", i, l->started,
			l->finished);
		/* A detached leaf may still be queued when main returns:
		 * coev_run then cancels it. */
		H_CHECK(l->started == 1 || l->cancelled || l->detached,
			"leaf %d never ran and was not cancelled", i);
		H_CHECK(l->twig_ran <= (l->started && l->twig && !l->twig_rc),
			"leaf %d: a twig ran that was not spawned", i);
	}
}

const struct harness h_sched = {
	"sched",
	"tasks: spawn, join, cancel, detach, gather, wait_for, yield, sleep",
	run,
};
