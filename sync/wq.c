/* SPDX-License-Identifier: MIT */
/*
 * sync/wq.c — the wait queue: the one waiting primitive under every object
 * of sync/ (see the protocol in sync/internal.h).
 *
 * A queue is an intrusive FIFO list of wait nodes that live in the waiters'
 * frames, under the object's spin lock. Granting and signalling are split:
 * a granter decides under the lock who gets what (so the decision and the
 * object's state change together), and signals after unlocking, so wakes
 * (which may ring another worker's doorbell) stay out of the critical
 * section.
 *
 * Why the grant-or-withdraw rule rather than "a waiter that gives up passes
 * what it was given on": the rule needs no undo. Passing a channel message
 * on would reorder it, and passing a lock on from a cancelled waiter makes
 * the outcome depend on which of two racing threads looked first. Under the
 * rule, a call either did what it was asked or did nothing, which is also
 * how a task's own result outranks a racing cancel (coev/task.h).
 */
#include "internal.h"

/* --- waiters ---------------------------------------------------------- */

int coev__waiter_begin(coev__waiter_t *wt)
{
	coev_task_t *t = coev__task_self();

	if (!t && coev__worker_self())
		return COEV_ENOTCORO;
	/* Signalled once (a grant), so no reference on the task. */
	coev__waiter_init_once(wt, t);
	return 0;
}

void coev__waiter_abandon(coev__waiter_t *wt)
{
	coev__waiter_fini(wt);
}

__thread char coev__sync_token __attribute__((tls_model("initial-exec")));

uint32_t coev__sync_rand(void)
{
	static __thread uint32_t x;

	if (x == 0)
		x = (uint32_t)(uintptr_t)&x | 1u;
	/* xorshift32 */
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* --- queues ----------------------------------------------------------- */

void coev__wnode_init(coev__wnode_t *n, coev__waiter_t *wt)
{
	n->prev = n->next = NULL;
	n->wt = wt;
	n->sel = NULL;
	n->buf = NULL;
	n->arg = 0;
	n->status = 0;
	n->index = 0;
	n->queued = false;
}

void coev__wq_push(coev__wq_t *q, coev__wnode_t *n)
{
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	n->queued = true;
}

void coev__wq_push_front(coev__wq_t *q, coev__wnode_t *n)
{
	n->prev = NULL;
	n->next = q->head;
	if (q->head)
		q->head->prev = n;
	else
		q->tail = n;
	q->head = n;
	n->queued = true;
}

void coev__wq_remove(coev__wq_t *q, coev__wnode_t *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
	n->prev = n->next = NULL;
	n->queued = false;
}

void coev__wq_grant(coev__wq_t *q, coev__wnode_t *n, int status,
		    coev__wake_t *wk)
{
	coev__wq_remove(q, n);
	n->status = status;
	n->next = wk->head;
	wk->head = n;
}

void coev__wq_grant_all(coev__wq_t *q, int status, coev__wake_t *wk)
{
	while (q->head)
		coev__wq_grant(q, q->head, status, wk);
}

void coev__wq_wake(coev__wake_t *wk)
{
	coev__wnode_t *n = wk->head, *next;

	wk->head = NULL;
	for (; n; n = next) {
		/* Read next first: once signalled, n may vanish. */
		next = n->next;
		coev__waiter_signal(n->wt, wk->how);
	}
}

int coev__wq_wait_arg(atomic_uint *lk, coev__wq_t *q, coev__wnode_t *n,
		      coev_time_t deadline, coev__withdrawn_fn withdrawn,
		      void *obj, unsigned kind, const void *what, long long arg)
{
	coev__wake_t wk = {NULL, COEV_SIG_SHARED};
	int r = coev__waiter_wait_on(n->wt, deadline, kind, what, arg);

	if (r < 0) {
		coev__spin_lock(lk);
		if (n->queued) {
			coev__wq_remove(q, n);
			if (withdrawn)
				withdrawn(obj, &wk);
			coev__spin_unlock(lk);
			coev__wq_wake(&wk);
			coev__waiter_abandon(n->wt);
			return r;
		}
		coev__spin_unlock(lk);
		/* Granted meanwhile: the signal is on its way. */
		coev__waiter_settle(n->wt, 1);
	}
	coev__waiter_fini(n->wt);
	return n->status;
}

int coev__wq_wait_until(atomic_uint *lk, coev__wq_t *q, bool (*ready)(void *),
			void *obj, coev_time_t deadline)
{
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
	coev__spin_lock(lk);
	if (ready(obj)) {
		coev__spin_unlock(lk);
		coev__waiter_abandon(&wt);
		return 0;
	}
	coev__wq_push(q, &n);
	coev__spin_unlock(lk);
	return coev__wq_wait(lk, q, &n, deadline, NULL, NULL, COEV_WAIT_EVENT,
			     obj);
}

void coev__sync_check_idle(atomic_uint *lk, coev__wq_t *q, const char *what,
			   const void *p)
{
	coev__wnode_t *n;
	const char *name = "a plain thread";

	coev__spin_lock(lk);
	n = q->head;
	if (n && n->wt->task)
		name = n->wt->task->name[0] ? n->wt->task->name : "a task";
	coev__spin_unlock(lk);
	if (n)
		coev__panic("%s %p destroyed while %s (and maybe others) waits "
			    "on it",
			    what, p, name);
}
