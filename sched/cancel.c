/* SPDX-License-Identifier: MIT */
/*
 * sched/cancel.c — cancellation, shields and pushed deadlines.
 *
 * Model: libdill's and Trio's. Cancelling a task is a flag on the task and
 * a wake. The flag is never cleared: every wait the task makes from then on
 * (wait.c checks before parking and after waking) returns -ECANCELED until
 * the task returns, so a task cannot swallow a cancel by accident. The wake
 * is an ordinary coev__wake: it ends a wait in progress wherever it is
 * registered (a pinned task resumes on the worker whose loop holds its
 * watchers, and takes them down there), and leaves the permit when the
 * task is running, so its next park returns at once.
 *
 * Ordering: the flag is stored before the wake, whose acq_rel read-modify-
 * write on the state word releases it to whoever next runs the task (the
 * claim acquires). A task running while it is cancelled may miss the flag
 * on a relaxed load, but then finds the permit, parks for no time, and
 * reads the flag after the claim.
 *
 * Cancellation racing completion: the task's result is what its function
 * returned; a cancel that came too late to be seen changed nothing. A task
 * cancelled before its first run is finished by the worker that claims it,
 * with -ECANCELED, without running (task.c).
 *
 * Shields hide the flag from waits (a depth counter, owner-only). Pushed
 * deadlines (coev_deadline_push) bound every wait of the task; they are the
 * C shape of asyncio.timeout() and Trio's move_on_after.
 */
#include "sched.h"

int coev_cancel(coev_task_t *t)
{
	if (!t)
		return -EINVAL;
	COEV__POINT(CANCEL);
	atomic_store_explicit(&t->cancel, 1, memory_order_relaxed);
	/* Released by the wake's acq_rel; a finished task is left alone. */
	if (!(atomic_load_explicit(&t->state, memory_order_relaxed) & TS_DONE))
		coev__wake(t);
	return 0;
}

int coev_cancelled(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	return atomic_load_explicit(&t->cancel, memory_order_relaxed) != 0;
}

int coev_shield_begin(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	t->shield++;
	return 0;
}

int coev_shield_end(void)
{
	coev_task_t *t = coev__task_self();

	if (!t)
		return COEV_ENOTCORO;
	if (t->shield == 0)
		coev__panic("coev_shield_end without coev_shield_begin in "
			    "task %llu '%s'",
			    (unsigned long long)t->id, t->name);
	t->shield--;
	return 0;
}

coev_time_t coev_deadline_push(coev_time_t deadline)
{
	coev_task_t *t = coev__task_self();
	coev_time_t token;

	if (!t)
		return COEV_ENOTCORO;
	token = t->dl_limit;
	if (deadline < t->dl_limit)
		t->dl_limit = deadline < 0 ? 0 : deadline;
	return token;
}

void coev_deadline_pop(coev_time_t token)
{
	coev_task_t *t = coev__task_self();

	if (!t || token < 0)
		return;
	if (token < t->dl_limit)
		coev__panic("coev_deadline_pop out of order in task %llu '%s'",
			    (unsigned long long)t->id, t->name);
	t->dl_limit = token;
}
