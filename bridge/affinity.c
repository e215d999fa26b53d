/*
 * bridge/affinity.c — keeping a task on one worker, and running a function
 * on a chosen worker (coev/bridge.h).
 *
 * Pinning reuses the scheduler's pin (sched/wait.c): a task whose `pin` is
 * set is queued only on that worker's inbox, which thieves never touch, so
 * it resumes there after every wait and yield. coev_pin sets it for good
 * (counted in pin_depth, which timed waits respect when they pin and unpin
 * for their own watchers); coev_pin_to sets it to another worker and
 * yields, and the yield's queueing moves the task to that inbox.
 *
 * Submitting posts a small record to the worker's post stack
 * (coev__worker_post): the worker runs it between tasks, in its scheduler
 * context, and completes the record's future with fn's result. The
 * doorbell costs a system call only when that worker sleeps.
 */
#include <stdlib.h>

#include "coev/bridge.h"
#include "sched/sched.h"

int coev_pin(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	t->pin_depth++;
	t->pin = t->worker;
	return 0;
}

int coev_pin_to(unsigned i)
{
	coev_task_t *t = coev__task_self();
	struct coev_worker *target;

	if (!t)
		return COEV_ENOTCORO;
	if (i >= t->rt->nworkers)
		return -EINVAL;
	target = t->rt->workers[i];
	if (t->pin_depth && t->pin != target)
		return -EBUSY;
	t->pin_depth++;
	t->pin = target;
	/* The yield queues us on target's inbox (coev__schedule_entry). */
	while (coev__worker_self() != target)
		coev_yield();
	return 0;
}

int coev_unpin(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	if (!t->pin_depth)
		return -EINVAL;
	if (--t->pin_depth == 0)
		t->pin = NULL;
	return 0;
}

struct ev_loop *coev_ev_loop(void)
{
	struct coev_worker *w = coev__worker_self();

	return w ? coev__plat_native_loop(w) : NULL;
}

/* --- submit -------------------------------------------------------------- */

struct submit {
	coev__post_t post; /* first: the post is the record */
	coev_fn fn;
	void *arg;
	coev_future_t *f; /* the record's reference */
};

static void submit_run(coev__post_t *p, bool run)
{
	struct submit *s = (struct submit *)p;
	int r = -ESHUTDOWN;

	if (run && !coev_future_cancelled(s->f))
		r = s->fn(s->arg);
	coev_future_set(s->f, r);
	coev_future_release(s->f);
	free(s);
}

int coev_submit(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		coev_future_t **out)
{
	struct submit *s;
	int r;

	if (!rt && !(rt = coev_rt_current()))
		return COEV_ENOTRT;
	if (!fn || i >= rt->nworkers)
		return -EINVAL;
	if (atomic_load_explicit(&rt->stop, memory_order_acquire))
		return -ESHUTDOWN;
	if (!(s = malloc(sizeof *s)))
		return -ENOMEM;
	if ((r = coev_future_new(&s->f)) < 0) {
		free(s);
		return r;
	}
	s->fn = fn;
	s->arg = arg;
	s->post.fn = submit_run;
	if (out)
		*out = coev_future_ref(s->f);
	coev__worker_post(rt->workers[i], &s->post);
	return 0;
}

int coev_submit_to(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		   int *result)
{
	coev_future_t *f;
	int r;

	/* Refuse a loop callback before posting anything. */
	if (coev__worker_self() && !coev__task_self())
		return COEV_ENOTCORO;
	if ((r = coev_submit(rt, i, fn, arg, &f)) < 0)
		return r;
	r = coev_future_await(f, result);
	coev_future_release(f);
	return r;
}
