/* SPDX-License-Identifier: MIT */
/*
 * bridge/future.c — futures completed once from anywhere, awaited by any
 * number of tasks and threads (coev/future.h).
 *
 * A future is sync/'s wait queue (grant or withdraw, sync/internal.h) with
 * a one-way state word: PENDING, then DONE or CANCELLED, changed once
 * under the spin lock by the completion that wins; every later completion
 * finds the word set and is refused. Waiters are queued under the same
 * lock, so a completion either finds a waiter queued (and grants it) or
 * the waiter finds the word set before queueing: no wake is lost. A waiter
 * that gives up withdraws if still queued, else it was granted and
 * returns the result. The word is also published with release, so a wait
 * on a completed future, and a poll, take no lock.
 *
 * Lifetime is a reference count only: completion, waiting and callbacks
 * never free the future, so a producer holding a reference can always
 * complete it safely, however late. The state word then tells it whether
 * anyone still wanted the result (-ECANCELED after a cancel). The last
 * release takes the lock before freeing, so a waiter that saw the
 * completion may release at once, while the completer is still inside.
 *
 * Waking: the completer hands each waiting task to the scheduler. From a
 * thread outside the runtime that is the inject queue plus a doorbell for
 * a sleeping worker (none when a worker is awake); from a task that goes on
 * running it is the ring, where an idle worker takes it at once; from a
 * loop callback it is the worker's next task. A task whose wait has a
 * deadline is pinned to its worker for the wait and goes to that worker's
 * inbox, whose doorbell costs a system call only while that loop sleeps.
 */
#include <stdlib.h>

#include "internal.h"

enum { F_PENDING, F_DONE, F_CANCELLED };

/* A completion callback waiting for its future. */
struct fut_cb {
	struct fut_cb *next;
	coev_future_cb fn;
	void *arg;
};

struct coev_future {
	atomic_uint lk;
	atomic_uint refs;
	atomic_int state;	 /* F_*: set once under lk, read by anyone */
	int result;		 /* written before state leaves F_PENDING */
	void *value;		 /* [lk] NULL once taken */
	coev_free_fn value_free; /* [lk] */
	coev__wq_t q;		 /* [lk] waiters */
	struct fut_cb *cbs, *cbs_tail; /* [lk] callbacks, in order */
	/* Set under lk, before state leaves F_PENDING, while the completer
	 * still has callbacks to run; cleared under lk once it has run them
	 * all. A callback registered meanwhile queues behind them (run in
	 * registration order). Read by anyone. */
	atomic_bool cbs_running;
};

int coev_future_new(coev_future_t **out)
{
	coev_future_t *f;

	if (!out)
		return -EINVAL;
	if (!(f = calloc(1, sizeof *f)))
		return -ENOMEM;
	atomic_init(&f->refs, 1);
	atomic_init(&f->state, F_PENDING);
	atomic_init(&f->cbs_running, false);
	*out = f;
	return 0;
}

coev_future_t *coev_future_ref(coev_future_t *f)
{
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void coev_future_release(coev_future_t *f)
{
	unsigned old;

	if (!f)
		return;
	/* acq_rel, against every other holder's release here. Release: our
	 * writes happen before the free; acquire on the last one:
	 * everyone's writes happen before it. */
	old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
	if (old == 0)
		coev__panic("coev_future_release: future %p released more "
			    "often than referenced",
			    (void *)f);
	if (old != 1)
		return;
	/* Every callback holds a reference, so none is pending here; a
	 * waiter does not, and would wait on freed memory. Taking the lock
	 * also waits out a completion still in its critical section: finish
	 * publishes the state before it unlocks, and whoever saw the state
	 * may release the last reference at once (coev/future.h, rule 1).
	 * After its unlock, finish touches f only for callbacks, each with a
	 * reference of its own, and holds one itself while it runs them. */
	coev__sync_check_idle(&f->lk, &f->q, "future", f);
	if (f->value && f->value_free)
		f->value_free(f->value);
	free(f);
}

/* The completer runs the callbacks it took, then those registered while
 * it ran them (coev_future_on_done queues them behind, in order), until
 * none is left; then it drops the reference finish took. */
static void run_callbacks(coev_future_t *f, struct fut_cb *cb)
{
	struct fut_cb *next;

	while (cb) {
		for (; cb; cb = next) {
			next = cb->next;
			cb->fn(f, cb->arg);
			free(cb);
			coev_future_release(f); /* the callback's reference */
		}
		coev__spin_lock(&f->lk);
		cb = f->cbs;
		f->cbs = f->cbs_tail = NULL;
		if (!cb)
			/* Release: pairs with on_done's acquire load: the
			 * callbacks run happen before one run at once. */
			atomic_store_explicit(&f->cbs_running, false,
					      memory_order_release);
		coev__spin_unlock(&f->lk);
	}
	coev_future_release(f);
}

/* Complete f (state F_DONE or F_CANCELLED) and wake everyone. */
static int finish(coev_future_t *f, int state, int result, void *value,
		  coev_free_fn value_free)
{
	coev__wake_t wk = {NULL,
			   coev__task_self() ? COEV_SIG_SHARED : COEV_SIG_WAKE};
	struct fut_cb *cb;
	int old;

	COEV__POINT(COMPLETE);
#if defined(COEV_PLANT_FUTURE_TWICE)
	/* Planted bug: the state is checked before the lock, so two
	 * completers can both see it pending. */
	old = atomic_load_explicit(&f->state, memory_order_relaxed);
	COEV__POINT(COMPLETE);
	coev__spin_lock(&f->lk);
#else
	coev__spin_lock(&f->lk);
	old = atomic_load_explicit(&f->state, memory_order_relaxed);
#endif
	if (old != F_PENDING) {
		coev__spin_unlock(&f->lk);
		return old == F_CANCELLED ? -ECANCELED : -EALREADY;
	}
	f->result = result;
	f->value = value;
	f->value_free = value_free;
	cb = f->cbs;
	f->cbs = f->cbs_tail = NULL;
	if (cb) {
		/* Ours while we run the callbacks: each releases its own,
		 * and the last look below must not touch a freed f. Safe
		 * to take: the callbacks' references keep f alive. */
		coev_future_ref(f);
		atomic_store_explicit(&f->cbs_running, true,
				      memory_order_relaxed);
	}
	/* Release: pairs with the acquire loads of state in
	 * coev_future_poll, coev_future_cancelled, value_get and
	 * coev_future_on_done (the waits read the result through poll;
	 * on_done sees cbs_running set). */
	atomic_store_explicit(&f->state, state, memory_order_release);
	coev__wq_grant_all(&f->q, 0, &wk);
	coev__spin_unlock(&f->lk);
	coev__wq_wake(&wk);
	if (cb)
		run_callbacks(f, cb);
	return 0;
}

int coev_future_complete(coev_future_t *f, int result, void *value,
			 coev_free_fn value_free)
{
	if (!f)
		return -EINVAL;
	return finish(f, F_DONE, result, value, value_free);
}

int coev_future_set(coev_future_t *f, int result)
{
	return coev_future_complete(f, result, NULL, NULL);
}

int coev_future_cancel(coev_future_t *f)
{
	int r;

	if (!f)
		return -EINVAL;
	r = finish(f, F_CANCELLED, -ECANCELED, NULL, NULL);
	return r == -ECANCELED ? -EALREADY : r;
}

int coev_future_poll(coev_future_t *f, int *result)
{
	if (!f)
		return -EINVAL;
	/* Acquire: pairs with finish's release store of state: the result
	 * is visible. */
	if (atomic_load_explicit(&f->state, memory_order_acquire) == F_PENDING)
		return -EAGAIN;
	if (result)
		*result = f->result;
	return 0;
}

int coev_future_cancelled(coev_future_t *f)
{
	/* Acquire: pairs with finish's release store of state. */
	return f && atomic_load_explicit(&f->state, memory_order_acquire) ==
			    F_CANCELLED;
}

static int wait_dl(coev_future_t *f, coev_time_t deadline, int *result)
{
	coev__waiter_t wt;
	coev__wnode_t n;
	int r;

	if (!f)
		return -EINVAL;
	COEV__POINT(AWAIT);
	if ((r = coev__sync_may_block()) < 0)
		return r;
	if (coev_future_poll(f, result) == 0)
		return 0;
	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	coev__wnode_init(&n, &wt);
	coev__spin_lock(&f->lk);
	if (atomic_load_explicit(&f->state, memory_order_relaxed) !=
	    F_PENDING) {
		coev__spin_unlock(&f->lk);
		coev__waiter_abandon(&wt);
		return coev_future_poll(f, result);
	}
	coev__wq_push(&f->q, &n);
	coev__spin_unlock(&f->lk);
	r = coev__wq_wait(&f->lk, &f->q, &n, deadline, NULL, NULL,
			  COEV_WAIT_FUTURE, f);
#if defined(COEV_PLANT_FUTURE_DL_LATE)
	/* Planted bug: a wait that resumes after its deadline reports the
	 * timeout, although the completion that woke it came first. */
	if (deadline != COEV_FOREVER && coev_now() >= deadline)
		return -ETIMEDOUT;
#endif
	if (r < 0)
		return r;
	return coev_future_poll(f, result);
}

int coev_future_wait_dl(coev_future_t *f, coev_time_t deadline, int *result)
{
	return wait_dl(f, deadline, result);
}

int coev_future_wait(coev_future_t *f, int *result)
{
	return wait_dl(f, COEV_FOREVER, result);
}

int coev_future_await_dl(coev_future_t *f, coev_time_t deadline, int *result)
{
	int r = wait_dl(f, deadline, result);

	if (r != -ETIMEDOUT && r != -ECANCELED)
		return r;
	/* Gave up: tell the producer, unless its result came first. */
	if (coev_future_cancel(f) == -EALREADY && !coev_future_cancelled(f))
		return coev_future_poll(f, result);
	return r;
}

int coev_future_await(coev_future_t *f, int *result)
{
	return coev_future_await_dl(f, COEV_FOREVER, result);
}

/* The completed value, borrowed or (take) handed over. */
static void *value_get(coev_future_t *f, bool take)
{
	void *v;

	/* Acquire: pairs with finish's release store of state (the value
	 * itself is then read under lk). */
	if (!f ||
	    atomic_load_explicit(&f->state, memory_order_acquire) == F_PENDING)
		return NULL;
	coev__spin_lock(&f->lk);
	v = f->value;
	if (take)
		f->value = NULL;
	coev__spin_unlock(&f->lk);
	return v;
}

void *coev_future_value(coev_future_t *f)
{
	return value_get(f, false);
}

void *coev_future_take(coev_future_t *f)
{
	return value_get(f, true);
}

int coev_future_on_done(coev_future_t *f, coev_future_cb fn, void *arg)
{
	struct fut_cb *cb;

	if (!f || !fn)
		return -EINVAL;
	/* Acquire: pairs with finish's release store of state (fn sees the
	 * result, and cbs_running as finish set it) and with
	 * run_callbacks' release store of cbs_running (the callbacks
	 * before fn have run). */
	if (atomic_load_explicit(&f->state, memory_order_acquire) !=
		    F_PENDING &&
	    !atomic_load_explicit(&f->cbs_running, memory_order_acquire)) {
		fn(f, arg);
		return 0;
	}
	if (!(cb = malloc(sizeof *cb)))
		return -ENOMEM;
	cb->next = NULL;
	cb->fn = fn;
	cb->arg = arg;
	coev__spin_lock(&f->lk);
	/* Complete and the completer done with its callbacks: at once.
	 * Complete with callbacks still running: queue behind them. */
	if (atomic_load_explicit(&f->state, memory_order_relaxed) !=
		    F_PENDING &&
	    !atomic_load_explicit(&f->cbs_running, memory_order_relaxed)) {
		coev__spin_unlock(&f->lk);
		free(cb);
		fn(f, arg);
		return 0;
	}
	coev_future_ref(f);
	if (f->cbs_tail)
		f->cbs_tail->next = cb;
	else
		f->cbs = cb;
	f->cbs_tail = cb;
	coev__spin_unlock(&f->lk);
	return 0;
}

/* --- a source of select_any (bridge/internal.h) ----------------------- */

int coev__future_arm(coev_future_t *f, coev__wnode_t *n)
{
	coev__spin_lock(&f->lk);
	if (atomic_load_explicit(&f->state, memory_order_relaxed) !=
	    F_PENDING) {
		coev__spin_unlock(&f->lk);
		return 1;
	}
	coev__wq_push(&f->q, n);
	coev__spin_unlock(&f->lk);
	return 0;
}

int coev__future_disarm(coev_future_t *f, coev__wnode_t *n)
{
	bool queued;

	coev__spin_lock(&f->lk);
	if ((queued = n->queued))
		coev__wq_remove(&f->q, n);
	coev__spin_unlock(&f->lk);
	return !queued;
}
