/* SPDX-License-Identifier: MIT */
/*
 * fuzz/h_timer.c — the timers and cancellation harness.
 *
 * Program: workers (1-3); 1-5 tasks of up to 6 operations: sleep, a
 * pushed deadline around a longer sleep, a shielded sleep, a loop timer
 * (coev_timer_new) that is left to fire, re-set or freed before it fires,
 * wait_for on a sleeping child, and a scope of sleeping children that may
 * be cancelled; and main cancelling one task after a virtual delay, and
 * possibly cancelling it again.
 *
 * Oracles: no sleep, deadline or timer ends before its time; a sleep
 * returns -ECANCELED only after its task was cancelled, and a shielded one
 * never does; a pushed deadline ends a longer wait with -ETIMEDOUT (or
 * -ECANCELED) and never before the deadline; a loop timer fires once at
 * most, never after it was re-set to COEV_FOREVER or freed, and always
 * when left armed; a wait_for that timed out saw its child cancelled; a
 * closed scope has no child left running; every task ends; nothing leaks.
 */
#include <errno.h>
#include <string.h>

#include "coev/bridge.h"
#include "fuzz/harness.h"

#define TASKS 5
#define OPS 6
#define NS 250

enum {
	OP_SLEEP,
	OP_DEADLINE,
	OP_SHIELD,
	OP_TIMER,
	OP_WAIT_FOR,
	OP_SCOPE,
	OP_YIELD,
	OP_CANCEL_SELF_SCOPE
};

struct task_prog {
	uint8_t op[OPS];
	unsigned nops;
	bool cancelled; /* main has called coev_cancel on it */
	const char *doing;
};

static struct state {
	unsigned workers, ntasks, victim, cancel_delay, cancel_twice;
	struct task_prog t[TASKS];
	int main_ret;
} st;

struct loop_timer {
	coev_time_t when;
	bool armed;
	unsigned fired;
};

static void timer_fired(coev_timer_t *tm, void *arg)
{
	struct loop_timer *lt = arg;

	(void)tm;
	H_CHECK(lt->armed, "a timer fired after it was disarmed");
	H_CHECK(coev_now() >= lt->when, "a timer fired %lld ns early",
		(long long)(lt->when - coev_now()));
	lt->fired++;
	lt->armed = false;
}

static int sleeper(void *arg)
{
	coev_time_t d = (coev_time_t)(uintptr_t)arg, t0 = coev_now();
	int r = coev_sleep(d);

	if (r == 0)
		H_CHECK(coev_now() - t0 >= d, "a child woke early");
	else
		H_CHECK(r == -ECANCELED, "child sleep: %d", r);
	return r;
}

static void checked_sleep(struct task_prog *p, coev_time_t d)
{
	coev_time_t t0 = coev_now();
	int r = coev_sleep(d);

	if (r == 0) {
		H_CHECK(coev_now() - t0 >= d, "slept %lld of %lld ns",
			(long long)(coev_now() - t0), (long long)d);
		return;
	}
	H_CHECK(r == -ECANCELED, "sleep: %d", r);
	H_CHECK(p->cancelled, "sleep cancelled without a cancel");
}

static void op_timer(unsigned a)
{
	struct loop_timer lt = {0};
	coev_timer_t *tm;
	int r;

	/* A loop timer belongs to its worker: stay there meanwhile. */
	coev_pin();
	r = coev_timer_new(timer_fired, &lt, &tm);
	H_CHECK(r == 0, "timer_new: %d", r);
	lt.when = coev_now() + (coev_time_t)(a % 4) * NS;
	lt.armed = true;
	coev_timer_set(tm, lt.when);
	switch ((a / 4) % 3) {
	case 0: /* left to fire */
		coev_shield_begin();
		while (!lt.fired)
			coev_sleep(NS);
		coev_shield_end();
		H_CHECK(lt.fired == 1, "timer fired %u times", lt.fired);
		break;
	case 1: /* disarmed before (or after) it fires */
		coev_yield();
		lt.armed = false;
		coev_timer_set(tm, COEV_FOREVER);
		break;
	case 2: /* freed right away */ break;
	}
	lt.armed = false;
	coev_timer_free(tm);
	H_CHECK(lt.fired <= 1, "timer fired %u times", lt.fired);
	coev_unpin();
}

static int task_main(void *arg)
{
	struct task_prog *p = arg;
	coev_time_t t0, tok, dl;
	coev_scope_t *s;
	int r, ret;

	for (unsigned i = 0; i < p->nops; i++) {
		unsigned op = p->op[i] % 8, a = p->op[i] / 8;

		switch (op) {
		case OP_SLEEP:
			p->doing = "sleep";
			checked_sleep(p, (coev_time_t)(a % 5) * NS);
			break;
		case OP_DEADLINE:
			p->doing = "sleep under a pushed deadline";
			t0 = coev_now();
			dl = t0 + (coev_time_t)(a % 4) * NS;
			tok = coev_deadline_push(dl);
			r = coev_sleep(8 * NS);
			coev_deadline_pop(tok);
			if (r == -ETIMEDOUT)
				H_CHECK(coev_now() >= dl,
					"deadline came %lld ns early",
					(long long)(dl - coev_now()));
			else if (r == -ECANCELED)
				H_CHECK(p->cancelled, "cancelled, not by us");
			else
				H_CHECK(r == 0 && dl >= t0 + 8 * NS,
					"sleep under deadline: %d", r);
			break;
		case OP_SHIELD:
			p->doing = "shielded sleep";
			coev_shield_begin();
			t0 = coev_now();
			r = coev_sleep((coev_time_t)(a % 3) * NS);
			coev_shield_end();
			H_CHECK(r == 0, "shielded sleep: %d", r);
			H_CHECK(coev_now() - t0 >= (coev_time_t)(a % 3) * NS,
				"shielded sleep woke early");
			break;
		case OP_TIMER:
			p->doing = "loop timer";
			op_timer(a);
			break;
		case OP_WAIT_FOR:
			p->doing = "wait_for";
			r = coev_wait_for(
				sleeper, (void *)(uintptr_t)((a % 3) * 2 * NS),
				coev_deadline(NS * (a / 3 % 3)), &ret);
			if (r == -ETIMEDOUT)
				H_CHECK(ret == -ECANCELED || ret == 0,
					"wait_for child: %d", ret);
			else if (r == 0)
				H_CHECK(ret == 0 || (ret == -ECANCELED &&
						     p->cancelled),
					"wait_for child: %d", ret);
			else
				H_CHECK(r == -ECANCELED && p->cancelled,
					"wait_for: %d", r);
			break;
		case OP_SCOPE:
		case OP_CANCEL_SELF_SCOPE:
			p->doing = "scope";
			r = coev_scope_open(0, &s);
			H_CHECK(r == 0, "scope_open: %d", r);
			for (unsigned k = 0; k < 1 + a % 2; k++) {
				r = coev_scope_spawn(
					s, NULL, sleeper,
					(void *)(uintptr_t)((a % 4) * NS));
				H_CHECK(r == 0 || r == -ECANCELED,
					"scope_spawn: %d", r);
			}
			if (op == OP_CANCEL_SELF_SCOPE) {
				coev_yield();
				coev_scope_cancel(s);
			}
			r = coev_scope_close(s);
			H_CHECK(r == 0 || r == -ECANCELED, "scope_close: %d",
				r);
			break;
		case OP_YIELD: coev_yield(); break;
		}
	}
	p->doing = "done";
	return 0;
}

static int main_task(void *arg)
{
	coev_task_t *ts[TASKS];

	(void)arg;
	for (unsigned i = 0; i < st.ntasks; i++)
		H_CHECK(coev_spawn(task_main, &st.t[i], &ts[i]) == 0, "spawn");
	if (st.victim < st.ntasks) {
		coev_sleep((coev_time_t)st.cancel_delay * NS);
		st.t[st.victim].cancelled = true;
		coev_cancel(ts[st.victim]);
		if (st.cancel_twice)
			coev_cancel(ts[st.victim]);
	}
	for (unsigned i = 0; i < st.ntasks; i++)
		H_CHECK(coev_join(ts[i], NULL) == 0, "join");
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
		fprintf(out, "  task %u: %s%s\n", i,
			st.t[i].doing ? st.t[i].doing : "not started",
			st.t[i].cancelled ? " (cancelled)" : "");
}

static void run(const uint8_t *data, size_t len, struct sim_opts *o)
{
	struct prog g = {data, len, 0};

	memset(&st, 0, sizeof st);
	st.workers = 1 + prog_byte(&g) % 3;
	st.ntasks = 1 + prog_byte(&g) % TASKS;
	st.victim = prog_byte(&g) % (st.ntasks + 1);
	st.cancel_delay = prog_byte(&g) % 8;
	st.cancel_twice = prog_byte(&g) % 2;
	for (unsigned i = 0; i < st.ntasks; i++) {
		st.t[i].nops = prog_byte(&g) % (OPS + 1);
		for (unsigned j = 0; j < st.t[i].nops; j++)
			st.t[i].op[j] = (uint8_t)prog_byte(&g);
	}
	sim_set_describe(describe, NULL);
	h_run(&g, o, host, NULL);
	H_CHECK(st.main_ret == 0, "coev_run returned %d", st.main_ret);
}

const struct harness h_timer = {
	"timer",
	"sleeps, deadlines, shields, loop timers, wait_for, scopes, cancel",
	run,
};
