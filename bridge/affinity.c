/* SPDX-License-Identifier: MIT */
/*
 * bridge/affinity.c — a worker's own loop for libraries that attach to it
 * (coev_ev_loop), and running a function on a chosen worker (coev_submit,
 * coev/bridge.h). Keeping a task on one worker (coev_pin) is the
 * scheduler's: sched/pin.c.
 *
 * Submitting posts a small record to the worker's post stack
 * (coev__worker_post): the worker runs it between tasks, in its scheduler
 * context, and completes the record's future with fn's result. The
 * doorbell costs a system call only when that worker sleeps.
 */
#include <stdlib.h>

#include "coev/bridge.h"
#include "sched/internal.h"

struct ev_loop *coev_ev_loop(void)
{
	struct coev_worker *w = coev__worker_self();

	return w ? coev__plat_native_loop(w) : NULL;
}

/* --- submit -------------------------------------------------------------- */

/* Who decided about fn: the worker (it runs) or a caller that gave up
 * first (it never runs). */
enum { CLAIM_QUEUED, CLAIM_RUNNING, CLAIM_SKIPPED };

struct submit {
	coev__post_t post; /* first: the post is the record */
	coev_fn fn;
	void *arg;
	coev_future_t *f; /* the record's reference */
	atomic_int claim; /* CLAIM_* */
	atomic_uint refs; /* the post's, and coev_submit_to's */
};

static void submit_put(struct submit *s)
{
	/* acq_rel: pairs with the other reference's drop here (submit_run
	 * against coev_submit_to): the last one sees the other's writes
	 * before it frees the record. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	coev_future_release(s->f);
	free(s);
}

static void submit_run(coev__post_t *p, bool run)
{
	struct submit *s = (struct submit *)p;
	int expect = CLAIM_QUEUED, r = run ? -ECANCELED : -ESHUTDOWN;

	/* acq_rel/acquire: against the caller's CAS in coev_submit_to, one
	 * of them moves claim from QUEUED; fn and arg were published by
	 * the post itself (coev__worker_post). */
	if (run && !coev_future_cancelled(s->f) &&
	    atomic_compare_exchange_strong_explicit(
		    &s->claim, &expect, CLAIM_RUNNING, memory_order_acq_rel,
		    memory_order_acquire))
		r = s->fn(s->arg);
	coev_future_set(s->f, r);
	submit_put(s);
}

/* Post fn to worker i with a record holding refs references (the post's,
 * plus the caller's if it keeps *rec); *fut (if not NULL) gets a reference
 * to the future, taken before the post can run and complete it. */
static int submit_post(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		       unsigned refs, struct submit **rec, coev_future_t **fut)
{
	struct submit *s;
	int r;

	if (!rt && !(rt = coev_rt_current()))
		return COEV_ENOTRT;
	if (!fn || i >= rt->nworkers)
		return -EINVAL;
	/* Acquire: pairs with the release store of stop in stop_workers
	 * (sched/runtime.c). A post that races with it is failed with
	 * -ESHUTDOWN when the worker is freed (coev__worker_drop_posts). */
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
	atomic_init(&s->claim, CLAIM_QUEUED);
	atomic_init(&s->refs, refs);
	if (fut)
		*fut = coev_future_ref(s->f);
	if (rec)
		*rec = s;
	coev__worker_post(rt->workers[i], &s->post);
	return 0;
}

int coev_submit(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		coev_future_t **out)
{
	return submit_post(rt, i, fn, arg, 1, NULL, out);
}

/*
 * Unlike coev_future_await, a give-up here must not return while fn may
 * still run: arg is usually in the caller's frame. So the caller claims
 * the record: if fn has not started it never will (the call fails); if it
 * has, fn is a short loop callback, and the caller waits for it (the call
 * succeeds with its result), as sync/'s grant-or-withdraw rule has it. The
 * deadline thus bounds the wait for a worker busy in a long task, which is
 * the wait that can last.
 */
int coev_submit_to_dl(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		      int *result, coev_time_t deadline)
{
	coev_task_t *t = coev__task_self();
	int expect = CLAIM_QUEUED, r;
	struct submit *s;
	coev_time_t limit;

	/* Refuse a loop callback before posting anything. */
	if (coev__worker_self() && !t)
		return COEV_ENOTCORO;
	if ((r = submit_post(rt, i, fn, arg, 2, &s, NULL)) < 0)
		return r;
	r = coev_future_wait_dl(s->f, deadline, result);
	/* acq_rel/acquire: against the worker's CAS in submit_run, one of
	 * them moves claim from QUEUED; when the worker won, its future
	 * carries fn's result. */
	if (r < 0 && !atomic_compare_exchange_strong_explicit(
			     &s->claim, &expect, CLAIM_SKIPPED,
			     memory_order_acq_rel, memory_order_acquire)) {
		/* fn started (or the worker dropped the post): wait for it,
		 * whatever happens to the caller meanwhile. */
		limit = t ? coev__strict_begin(t) : 0;
		r = coev_future_wait(s->f, result);
		if (t)
			coev__strict_end(t, limit);
	}
	submit_put(s);
	return r;
}

int coev_submit_to(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		   int *result)
{
	return coev_submit_to_dl(rt, i, fn, arg, result, COEV_FOREVER);
}
