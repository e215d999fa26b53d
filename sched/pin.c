/* SPDX-License-Identifier: MIT */
/*
 * sched/pin.c — keeping a task on one worker (coev_pin, coev_pin_to,
 * coev_unpin; declared with the bridge's calls in coev/bridge.h, since
 * loop-affine libraries are what need them).
 *
 * A task whose `pin` is set is queued only on that worker's inbox, which
 * thieves never touch, so it resumes there after every wait and yield
 * (coev__schedule_entry, worker.c). coev_pin sets it for good, counted in
 * pin_depth, which timed waits respect when they pin and unpin for their
 * own watchers (wait.c); coev_pin_to sets it to another worker and yields,
 * and the yield's queueing moves the task to that inbox. Both fields are
 * the running task's own: no other thread writes them.
 */
#include "sched.h"

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
