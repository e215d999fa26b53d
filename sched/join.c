/* SPDX-License-Identifier: MIT */
/*
 * sched/join.c — waiting for tasks to end: join, detach, gather, wait-any
 * and wait_for.
 *
 * A task's end is published through its joiner slot (struct coev_task,
 * t->joiner), one atomic word with three sentinels (sched/internal.h):
 *   NULL           nobody waits yet;
 *   a waiter       someone waits: the ending task signals it (task.c,
 *                  task_finish) after storing its result;
 *   JOIN_DONE      ended, result published, handle not yet consumed;
 *   JOIN_DETACHED  handle given up (the task frees itself when it ends);
 *   JOIN_FREED     handle consumed by a join (misuse is caught here);
 *   JOIN_ABANDONED a shutdown gave up on the task: it never ends, and its
 *                  joins return -ESHUTDOWN.
 * A joiner installs its waiter with a compare-and-swap from NULL and gives
 * up with one back to NULL; a failed give-up means the end came first and
 * its signal is on the way, so the joiner settles it (coev__waiter_settle)
 * before its frame, which holds the waiter, goes away. wait-any installs
 * one waiter in the slot of every task it watches the same way; each task
 * that ends signals it once (the waiter counts signals); afterwards it
 * takes its registration back from every slot that still holds it and
 * waits for the signals already on their way before its frame may go.
 *
 * Shutdown (coev__join_abandon_all, once the workers have stopped) takes
 * the waiter out of the slot of every task it gave up on, as an ending
 * task would, notes in it that the task was abandoned, and signals it:
 * the join returns -ESHUTDOWN without touching the task again. A waiter
 * that is a task of the same runtime was given up too and is left alone.
 * A plain thread counts itself in its runtime's plain_waits while it waits
 * for one of its tasks, and coev_rt_free waits for that count to drop to
 * zero, so a thread released by the shutdown, or woken by a task's end
 * during it, never touches the runtime after it is freed.
 *
 * A join of a task that never ran is work-first (see the top of task.c):
 * the joiner queues a second entry for it in its own LIFO slot so it runs
 * next, on the joiner's worker, instead of waiting for a thief.
 *
 * gather joins in order and, when the caller is cancelled, cancels and
 * joins the rest (asyncio.gather); wait_for runs a function as a child
 * task and cancels it at the deadline (asyncio.wait_for).
 */
#include <limits.h>

#include "sched.h"

/* A plain thread starts or stops waiting for a task of rt (see the top of
 * this file). The unlock is leave's last touch of rt. */
static void plain_enter(struct coev_rt *rt)
{
	pthread_mutex_lock(&rt->live_mu);
	rt->plain_waits++;
	pthread_mutex_unlock(&rt->live_mu);
}

static void plain_leave(struct coev_rt *rt)
{
	pthread_mutex_lock(&rt->live_mu);
	if (--rt->plain_waits == 0)
		pthread_cond_broadcast(&rt->live_cv);
	pthread_mutex_unlock(&rt->live_mu);
}

/* The same for bridge/select_any.c's task cases: delta +1 or -1. */
void coev__join_plain(struct coev_rt *rt, int delta)
{
	if (delta > 0)
		plain_enter(rt);
	else
		plain_leave(rt);
}

/* coev_rt_free (runtime.c), after the shutdown: until every plain thread
 * waiting for one of rt's tasks has left its call. Bounded: every task
 * has ended or was abandoned, and every waiter signalled. */
void coev__join_drain(struct coev_rt *rt)
{
	pthread_mutex_lock(&rt->live_mu);
	while (rt->plain_waits > 0)
		pthread_cond_wait(&rt->live_cv, &rt->live_mu);
	pthread_mutex_unlock(&rt->live_mu);
}

static void take_result(coev_task_t *t, int *ret)
{
	if (ret)
		*ret = t->result;
	/* The handle is consumed: a second join or detach finds this. */
	atomic_store_explicit(&t->joiner, JOIN_FREED, memory_order_relaxed);
	coev__task_release(t);
}

/* Work-first join (see the top of this file): if t never ran, queue a
 * second entry for it in w's LIFO slot so that it runs next. */
static void boost(struct coev_worker *w, coev_task_t *t)
{
	if (t->boosted || t->rt != w->rt ||
	    atomic_load_explicit(&t->state, memory_order_relaxed) !=
		    TS_NOTIFIED)
		return;
	t->boosted = true;
	coev__task_ref(t);
	coev__schedule_lifo(w, coev__entry(t, ENTRY_BOOST));
}

_Noreturn static void handle_misuse(const char *call, coev_task_t *t)
{
	coev__panic("%s: task handle %p was already joined or detached "
		    "(each handle is joined or detached exactly once)",
		    call, (void *)t);
}

/* Wait for t with a waiter in its joiner slot (NULL: nobody else waits).
 * 0 once its result is taken; the wait's error when we gave up first;
 * -ESHUTDOWN when a shutdown gave up on t (nothing of t is touched after
 * its signal). */
static int join_wait(coev_task_t *t, coev_task_t *self, coev_time_t deadline,
		     int *ret)
{
	coev__waiter_t jw;
	coev__waiter_t *expect = NULL;
	int r;

	coev__waiter_init(&jw, self);
	if (self)
		coev__task_ref(self); /* held for the completer's wake */
	/* acq_rel: releases the waiter's initialisation to the ending task's
	 * acq_rel exchange of the slot (task.c, task_finish) or to
	 * abandon's; acquire on failure pairs with that exchange when it
	 * stored JOIN_DONE first, making the result visible. */
	if (!atomic_compare_exchange_strong_explicit(&t->joiner, &expect, &jw,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		if (self)
			coev__task_release(self);
		coev__waiter_fini(&jw);
		if (expect == JOIN_ABANDONED)
			return -ESHUTDOWN;
		if (expect != JOIN_DONE)
			handle_misuse("coev_join", t);
		take_result(t, ret);
		return 0;
	}
	r = coev__waiter_wait_on(&jw, deadline, COEV_WAIT_JOIN, t,
				 (long long)t->id);
	if (r < 0) { /* timed out or cancelled */
		expect = &jw;
		/* acq_rel/acquire: pairs with task_finish's exchange, as
		 * above; a failure means the task ended (or was abandoned)
		 * and took our waiter: its signal is coming. */
		if (atomic_compare_exchange_strong_explicit(
			    &t->joiner, &expect, NULL, memory_order_acq_rel,
			    memory_order_acquire)) {
			if (self)
				coev__task_release(self);
			coev__waiter_fini(&jw);
			return r;
		}
		coev__waiter_settle(&jw, 1);
	}
	coev__waiter_fini(&jw);
	if (atomic_load_explicit(&jw.gone, memory_order_relaxed))
		return -ESHUTDOWN;
	take_result(t, ret);
	return 0;
}

int coev_join_dl(coev_task_t *t, coev_time_t deadline, int *ret)
{
	struct coev_worker *w = coev__worker_self();
	coev_task_t *self = w ? w->current : NULL;
	coev__waiter_t *j;
	struct coev_rt *rt;
	int r;

	if (!t)
		return -EINVAL;
	if (w && !self)
		return COEV_ENOTCORO;
	if (t == self)
		return -EDEADLK;
	/* Acquire: pairs with the ending task's acq_rel exchange that
	 * stores JOIN_DONE (task_finish), so its result is visible to
	 * take_result. */
	j = atomic_load_explicit(&t->joiner, memory_order_acquire);
	if (j == JOIN_DONE) {
		take_result(t, ret);
		return 0;
	}
	if (j == JOIN_ABANDONED)
		return -ESHUTDOWN;
	if (j != NULL)
		handle_misuse("coev_join", t);
	if (self && (r = coev__cancel_check(self)) != 0)
		return r;
	if (self)
		deadline = coev__deadline_eff(self, deadline);
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now())
		return -ETIMEDOUT; /* only tried: t is not done */
	if (self) {
		boost(self->worker, t);
		return join_wait(t, self, deadline, ret);
	}
	rt = t->rt;
	plain_enter(rt);
	r = join_wait(t, NULL, deadline, ret);
	plain_leave(rt);
	return r;
}

int coev_join(coev_task_t *t, int *ret)
{
	return coev_join_dl(t, COEV_FOREVER, ret);
}

int coev_detach(coev_task_t *t)
{
	coev__waiter_t *j;

	if (!t)
		return -EINVAL;
	/* acq_rel: against task_finish's acq_rel exchange of JOIN_DONE
	 * (task.c): whichever comes second sees the other's value, and the
	 * acquire makes an ended task's end visible to the report below.
	 * coev__snapshot (observe/dump.c) reads the sentinel with an
	 * acquire load. */
	j = atomic_exchange_explicit(&t->joiner, JOIN_DETACHED,
				     memory_order_acq_rel);
	if (j != NULL && j != JOIN_DONE && j != JOIN_ABANDONED)
		handle_misuse("coev_detach", t);
	if (j == JOIN_DONE && t->result < 0 && t->rt->unjoined)
		coev__report_unjoined(t, "detached after it ended");
	coev__task_release(t);
	return 0;
}

/* Join t whatever the caller's cancellation or pushed deadline: for
 * handles that must be consumed (gather, wait_for). A task a shutdown gave
 * up on (of another runtime than the caller's) gets -ESHUTDOWN as its
 * result, and its handle is given up. */
static void join_strict(coev_task_t *t, int *ret)
{
	coev_task_t *self = coev__task_self();
	coev_time_t limit;
	int r;

	if (!self) {
		r = coev_join(t, ret);
	} else {
		limit = coev__strict_begin(self);
		r = coev_join(t, ret);
		coev__strict_end(self, limit);
	}
	if (r == -ESHUTDOWN) {
		if (ret)
			*ret = -ESHUTDOWN;
		coev_detach(t);
	}
}

/* Join tasks[0..n) in order; joined entries of clear (when not NULL, the
 * same array as tasks) are set to NULL. Joining in order costs no more
 * than the slowest task: those already done are taken at once. When the
 * deadline passes, every task that has finished by then is still taken
 * (the deadline has passed, so each later join only tries). When the
 * caller is cancelled (or a pushed deadline passes, for coev_gather, which
 * has no deadline of its own), the tasks not yet joined are cancelled and
 * joined, as asyncio.gather does, and every handle is consumed. */
static int gather(coev_task_t *const *tasks, coev_task_t **clear, size_t n,
		  int *rets, coev_time_t deadline)
{
	coev_task_t *self = coev__task_self();
	int failed = 0, r;

	/* The count of failures is an int. */
	if ((n && (!tasks || !rets)) || n > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!tasks[i] && !clear)
			return -EINVAL;
		if (tasks[i] && tasks[i] == self)
			return -EDEADLK;
	}
	for (size_t i = 0; i < n; i++) {
		if (clear && !clear[i])
			continue;
		r = coev_join_dl(tasks[i], deadline, &rets[i]);
		if (r == -ETIMEDOUT && clear &&
		    (!self || self->dl_limit >= deadline)) {
			failed = r;
			continue;
		}
		if (r == -ETIMEDOUT || r == -ECANCELED) {
			for (size_t k = i; k < n; k++)
				if (!clear || clear[k])
					coev_cancel(tasks[k]);
			for (size_t k = i; k < n; k++) {
				if (clear && !clear[k])
					continue;
				join_strict(tasks[k], &rets[k]);
				if (clear)
					clear[k] = NULL;
			}
			return r;
		}
		if (r < 0)
			return r;
		if (clear)
			clear[i] = NULL;
		if (rets[i] < 0 && failed >= 0)
			failed++;
	}
	return failed;
}

int coev_gather_dl(coev_task_t **tasks, size_t n, int *rets,
		   coev_time_t deadline)
{
	return gather(tasks, tasks, n, rets, deadline);
}

int coev_gather(coev_task_t *const *tasks, size_t n, int *rets)
{
	return gather(tasks, NULL, n, rets, COEV_FOREVER);
}

/* --- wait-any ------------------------------------------------------------ */

static int first_done(coev_task_t *const *tasks, size_t n)
{
	/* Acquire: pairs with task_finish's acq_rel exchange that stores
	 * JOIN_DONE (task.c): the result the caller's join takes is
	 * visible. */
	for (size_t i = 0; i < n; i++)
		if (tasks[i] &&
		    atomic_load_explicit(&tasks[i]->joiner,
					 memory_order_acquire) == JOIN_DONE)
			return (int)i;
	return -1;
}

_Noreturn static void any_misuse(coev_task_t *t)
{
	coev__panic("coev_wait_any: task handle %p is already joined, "
		    "detached, or being joined by someone else",
		    (void *)t);
}

/* Install jw in the joiner slot of each task from the first on; stops at
 * a task that has ended meanwhile, was abandoned by a shutdown (gone set),
 * or at a handle met earlier in tasks[] (its slot holds jw already: *dup
 * is set). Returns how many slots were passed (n when jw is in every one).
 */
static size_t any_install(coev_task_t *const *tasks, size_t n,
			  coev__waiter_t *jw, coev_task_t *self, bool *dup)
{
	coev__waiter_t *expect;
	size_t stop;

	for (stop = 0; stop < n; stop++) {
		if (!tasks[stop])
			continue;
		if (self) /* held for that task's signal */
			coev__task_ref(self);
		expect = NULL;
		/* acq_rel/acquire: pairs with task_finish's exchange of the
		 * slot (task.c), as in join_wait. */
		if (atomic_compare_exchange_strong_explicit(
			    &tasks[stop]->joiner, &expect, jw,
			    memory_order_acq_rel, memory_order_acquire))
			continue;
		if (self)
			coev__task_release(self);
		*dup = expect == jw;
		if (expect == JOIN_ABANDONED)
			atomic_store_explicit(&jw->gone, true,
					      memory_order_relaxed);
		else if (expect != JOIN_DONE && !*dup)
			any_misuse(tasks[stop]);
		break; /* it ended meanwhile: no need to wait */
	}
	return stop;
}

/* Take wt back from the first stop slots; wait for the signals of the
 * tasks that took it as they ended (or of the shutdown that abandoned
 * them). */
static void any_withdraw(coev_task_t *const *tasks, size_t stop,
			 coev__waiter_t *wt, coev_task_t *self)
{
	coev__waiter_t *expect;
	int pending = 0;

	for (size_t i = 0; i < stop; i++) {
		if (!tasks[i])
			continue;
		expect = wt;
		/* acq_rel/acquire: pairs with task_finish's exchange of the
		 * slot (task.c), as in join_wait's give-up; a failure means
		 * the task took wt and its signal is on the way. */
		if (atomic_compare_exchange_strong_explicit(
			    &tasks[i]->joiner, &expect, NULL,
			    memory_order_acq_rel, memory_order_acquire)) {
			if (self)
				coev__task_release(self);
		} else {
			pending++; /* ended: its signal is on its way */
		}
	}
	coev__waiter_settle(wt, pending);
}

/* A plain thread waiting in coev_wait_any counts itself in the runtime of
 * each task (see the top of this file): delta +1 or -1. Forward order on
 * the way out: each task's runtime is still held when it is read. */
static void any_plain(coev_task_t *const *tasks, size_t n, int delta)
{
	for (size_t i = 0; i < n; i++)
		if (tasks[i]) {
			if (delta > 0)
				plain_enter(tasks[i]->rt);
			else
				plain_leave(tasks[i]->rt);
		}
}

/* Wait until a task ends; the caller checked that none has yet. */
static int any_wait(coev_task_t *const *tasks, size_t n, coev_time_t deadline,
		    coev_task_t *self)
{
	coev__waiter_t jw;
	size_t stop;
	int r = 0, found;
	bool dup = false;

	coev__waiter_init(&jw, self);
	stop = any_install(tasks, n, &jw, self, &dup);
	if (stop == n)
		r = coev__waiter_wait_on(&jw, deadline, COEV_WAIT_JOIN, NULL,
					 0);
	any_withdraw(tasks, stop, &jw, self);
	coev__waiter_fini(&jw);
	if (dup) /* the same handle twice: withdrawn, refused */
		return -EINVAL;
#if defined(COEV_PLANT_WAITANY_GAVE_UP)
	/* Planted bug: a wait that gave up does not look again, so a task
	 * whose end signalled it while it withdrew is not reported. */
	found = r < 0 ? -1 : first_done(tasks, n);
#else
	found = first_done(tasks, n);
#endif
	if (found >= 0)
		return found;
	return atomic_load_explicit(&jw.gone, memory_order_relaxed) ? -ESHUTDOWN
								    : r;
}

int coev_wait_any(coev_task_t *const *tasks, size_t n, coev_time_t deadline)
{
	struct coev_worker *w = coev__worker_self();
	coev_task_t *self = w ? w->current : NULL;
	size_t i, any = 0;
	int r = 0, found;

	/* The index returned is an int. */
	if ((n && !tasks) || n > INT_MAX)
		return -EINVAL;
	if (w && !self)
		return COEV_ENOTCORO;
	for (i = 0; i < n; i++) {
		if (tasks[i] && tasks[i] == self)
			return -EDEADLK;
		any += tasks[i] != NULL;
	}
	if (!any)
		return -ENOENT;
	if ((found = first_done(tasks, n)) >= 0)
		return found;
	if (self && (r = coev__cancel_check(self)) != 0)
		return r;
	if (self)
		deadline = coev__deadline_eff(self, deadline);
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now())
		return -ETIMEDOUT;
	if (self)
		return any_wait(tasks, n, deadline, self);
	any_plain(tasks, n, +1);
	r = any_wait(tasks, n, deadline, NULL);
	any_plain(tasks, n, -1);
	return r;
}

/* --- tasks a shutdown gave up on -------------------------------------- */

/* The workers have stopped and t never ends: mark its slot abandoned, so
 * that a later join returns -ESHUTDOWN at once, and release whoever waits
 * in it (see the top of this file). Also from coev__task_spawn, for a
 * spawn that was let in before the shutdown and registered its task after
 * coev__join_abandon_all had looked. */
void coev__join_abandon(coev_task_t *t)
{
	/* Acquire: pairs with the acq_rel CAS that installed a waiter
	 * (join_wait, any_install): we signal an initialised waiter. */
	coev__waiter_t *j =
		atomic_load_explicit(&t->joiner, memory_order_acquire);

	do {
		if (j != NULL && (uintptr_t)j <= (uintptr_t)JOIN_ABANDONED)
			return; /* detached, or handle already consumed */
		/* acq_rel: as task_finish's exchange of the slot (task.c),
		 * against the waiter's CAS that installs or withdraws it. */
	} while (!atomic_compare_exchange_weak_explicit(
		&t->joiner, &j, JOIN_ABANDONED, memory_order_acq_rel,
		memory_order_acquire));
	if (j == NULL || (j->task && j->task->rt == t->rt))
		return; /* nobody waits, or a task given up as well */
	/* Relaxed: the signal's release (or the waiter's mutex) publishes
	 * it to the waiter, which reads it after the signal. */
	atomic_store_explicit(&j->gone, true, memory_order_relaxed);
	coev__waiter_signal(j, COEV_SIG_WAKE);
}

static void abandon_one(coev_task_t *t, void *arg)
{
	(void)arg;
	if (!(atomic_load_explicit(&t->state, memory_order_acquire) & TS_DONE))
		coev__join_abandon(t);
}

/* coev_rt_shutdown (runtime.c), once the workers have stopped: every task
 * that has not ended is abandoned. The walk holds a reference on each
 * block while it looks at it, so none is freed meanwhile. */
void coev__join_abandon_all(struct coev_rt *rt)
{
	/* Before the walk: a spawn that publishes its block after the walk
	 * has passed it sees this and abandons the task itself (task.c).
	 * seq_cst: the store half of a store-load order, against the
	 * spawn's store of refs before its load of abandoned: the walk's
	 * CAS (block.c: try_ref) sees the block or the spawn sees this. */
	atomic_store_explicit(&rt->abandoned, true, memory_order_seq_cst);
	coev__task_each(rt, abandon_one, NULL);
}

/* --- wait_for ------------------------------------------------------------ */

int coev_wait_for(coev_fn fn, void *arg, coev_time_t deadline, int *ret)
{
	coev_task_t *child;
	int r;

	r = coev_spawn_named("wait_for", fn, arg, &child);
	if (r < 0)
		return r;
	r = coev_join_dl(child, deadline, ret);
	if (r == 0)
		return 0;
	/* Deadline or our own cancellation: the child is cancelled and, as
	 * asyncio.wait_for does, waited for. */
	coev_cancel(child);
	join_strict(child, ret);
	return r;
}
