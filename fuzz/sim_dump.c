/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_dump.c — what the simulation says when a run fails (see
 * fuzz/sim.h): the dump of every simulated thread, every task of every
 * runtime with its wait note, the harness's description and the last
 * switches; the ring of switches it keeps for that; and the liveness
 * oracle, which the loop checks before each pick.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz/sim_internal.h"

static const char *const state_name[] = {
	"runnable",
	"waits for a mutex",
	"waits on a condition variable",
	"parked in its loop",
	"joins a thread",
	"ended",
};

static const char *const wait_name[] = {
	"nothing noted (a bare park)",
	"fd",
	"a timer",
	"mutex",
	"condition",
	"semaphore",
	"event",
	"channel",
	"a select",
	"future",
	"task",
	"a blocking-pool job",
	"the children of a scope",
};

/* Each runtime once: the runtime of the first live worker thread of it. */
static bool first_of_rt(unsigned i)
{
	struct coev_rt *rt = coev__sim.threads[i]->worker->rt;

	for (unsigned k = 0; k < i; k++)
		if (coev__sim.threads[k]->worker &&
		    coev__sim.threads[k]->worker->rt == rt)
			return false;
	return true;
}

static void dump_task(coev_task_t *t, void *arg)
{
	FILE *out = arg;
	unsigned st = atomic_load(&t->state);
	coev__waiter_t *j = atomic_load(&t->joiner);
	unsigned kind;

	/* As coev_rt_tasks: a joined or detached task that ended is gone. */
	if (j == JOIN_FREED || (j == JOIN_DETACHED && (st & TS_DONE)))
		return;
	fprintf(out, "    task #%llu '%s':", (unsigned long long)t->id,
		t->name[0] ? t->name : "?");
	if (st & TS_DONE) {
		fprintf(out, " ended, not yet joined (result %d)", t->result);
	} else if (st & TS_RUNNING) {
		fprintf(out, " running or yielded, on worker %d",
			t->worker ? (int)t->worker->index : -1);
	} else if (st & TS_NOTIFIED) {
		fprintf(out, " queued%s", st & TS_STARTED ? "" : ", never ran");
	} else {
		kind = atomic_load(&t->wait_kind);
		fprintf(out, " waits on %s %p (arg %lld)",
			kind < sizeof wait_name / sizeof wait_name[0]
				? wait_name[kind]
				: "?",
			atomic_load(&t->wait_obj), atomic_load(&t->wait_arg));
	}
	fprintf(out, "%s\n", atomic_load(&t->cancel) ? ", cancelled" : "");
}

/* Each simulated thread and what it waits on. */
static void dump_threads(FILE *out)
{
	fprintf(out, "sim: step %llu, virtual time %.6f s, %u threads\n",
		(unsigned long long)coev__sim.steps,
		(double)(coev__sim.clock - SIM_EPOCH) / 1e9,
		coev__sim.nthreads);
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];
		unsigned timers = 0, ios = 0;

		fprintf(out, "  %-12s %s", t->name, state_name[t->state]);
		if (t->state == S_PARK) {
			struct sim_loop *l = loop_of(t->w);
			struct timer_impl *p;
			struct io_impl *q;

			for (coev__timer_t *tm = l->timers; tm; tm = p->next) {
				p = (struct timer_impl *)tm->impl;
				timers++;
			}
			for (coev__io_t *io = l->ios; io; io = q->next) {
				q = (struct io_impl *)io->impl;
				ios++;
			}
			fprintf(out,
				" (worker %u: %u timers, %u fds armed; "
				"queued: lifo %d, ring %u, inbox %zu, "
				"inject %zu)",
				t->w->index, timers, ios,
				atomic_load(&t->w->lifo) != NULL,
				ck_ring_size(&t->w->ring),
				(size_t)atomic_load(&t->w->inbox.len),
				(size_t)atomic_load(&t->w->rt->inject.len));
		} else if (t->state == S_COND && t->until != COEV_FOREVER) {
			fprintf(out, " (until %.6f s)",
				(double)(t->until - SIM_EPOCH) / 1e9);
		} else if (t->state == S_JOIN) {
			fprintf(out, " (%s)",
				((const struct sim_thread *)t->on)->name);
		}
		fprintf(out, "%s\n", t == coev__sim.cur ? "  <- running" : "");
	}
}

/* The last switches, and where the running thread is now. */
static void dump_ring(FILE *out)
{
	fprintf(out, "the last switches (step, virtual time, where the "
		     "running thread stopped, from -> to):\n");
	for (uint64_t k = coev__sim.nswitch > SIM_RING
				  ? coev__sim.nswitch - SIM_RING
				  : 0;
	     k < coev__sim.nswitch; k++) {
		const struct sim_switch *sw = &coev__sim.ring[k % SIM_RING];

		fprintf(out, "  %8llu %9.6f  %-8s %s:%d  %s -> %s\n",
			(unsigned long long)sw->step,
			(double)(sw->clock - SIM_EPOCH) / 1e9,
			sw->site ? coev__sim_point_name[sw->site->p]
				 : "(blocked)",
			sw->site ? sw->site->file : "",
			sw->site ? sw->site->line : 0, sw->from, sw->to);
	}
	if (coev__sim.running && coev__sim.cur != &coev__sim.loop &&
	    coev__sim.last_site)
		fprintf(out,
			"  then %s ran to step %llu, last point %s %s:%d\n",
			coev__sim.cur->name,
			(unsigned long long)coev__sim.steps,
			coev__sim_point_name[coev__sim.last_site->p],
			coev__sim.last_site->file, coev__sim.last_site->line);
}

void coev__sim_dump(FILE *out)
{
	dump_threads(out);
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct coev_rt *rt;

		if (!coev__sim.threads[i]->worker || !first_of_rt(i))
			continue;
		rt = coev__sim.threads[i]->worker->rt;
		fprintf(out, "  runtime %p: %ld entries queued; its tasks:\n",
			(void *)rt, coev__sim_queued_work(rt));
		coev__sim_task_each(rt, dump_task, out);
	}
	if (coev__sim.describe) {
		fprintf(out, "the harness says:\n");
		coev__sim.describe(out, coev__sim.describe_arg);
	}
	dump_ring(out);
}

/*
 * The liveness oracle: every worker of a runtime parked in its loop with
 * nothing due (no doorbell, no ready fd, no due timer) while entries are
 * queued in the runtime is a lost wakeup, even if a later timer or a
 * thread's later call would repair it. Judged only when no other
 * simulated thread can act now (none runnable or waiting for a mutex):
 * a producer between its push and its doorbell is such a thread, and its
 * ring is on its way. Armed timers that are not due do not excuse it: no
 * part of the runtime leaves queued work to a timer.
 */
void coev__sim_check_liveness(void)
{
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];
		bool parked = t->state == S_PARK && !coev__sim_runnable(t);

		if (!t->worker &&
		    (coev__sim_runnable(t) || t->state == S_MUTEX))
			return;
		if (t->worker && !parked)
			return; /* of its runtime's workers, one can act */
	}
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct coev_rt *rt;
		long n;

		if (!coev__sim.threads[i]->worker || !first_of_rt(i))
			continue;
		rt = coev__sim.threads[i]->worker->rt;
		if (atomic_load(&rt->stop))
			continue;
		if ((n = coev__sim_queued_work(rt)) > 0)
			sim_fail("liveness: every worker of runtime %p is "
				 "parked with nothing due, and no other "
				 "thread can act, while %ld entries are "
				 "queued (a lost wakeup)",
				 (void *)rt, n);
	}
}

/* Keep the switch to t in the ring of the last ones. The thread that ran
 * last stopped at last_site if it is still runnable; otherwise it
 * blocked (or ended). */
void coev__sim_record_switch(struct sim_thread *t)
{
	struct sim_thread *from = coev__sim.prev;
	struct sim_switch *sw;

	if (from == t && t->state == S_RUN)
		return; /* it keeps the CPU: no switch */
	sw = &coev__sim.ring[coev__sim.nswitch++ % SIM_RING];

	sw->step = coev__sim.steps;
	sw->clock = coev__sim.clock;
	sw->site = NULL;
	sw->from[0] = 0;
	if (from && from != &coev__sim.loop) {
		bool alive = false;

		for (unsigned i = 0; i < coev__sim.nthreads && !alive; i++)
			alive = coev__sim.threads[i] == from;
		if (alive) {
			memcpy(sw->from, from->name, sizeof sw->from);
			if (from->state == S_RUN)
				sw->site = coev__sim.last_site;
		} else {
			strcpy(sw->from, "(ended)");
		}
	}
	memcpy(sw->to, t->name, sizeof sw->to);
}
