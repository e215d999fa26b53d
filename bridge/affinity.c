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
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	coev_future_release(s->f);
	free(s);
}

static void submit_run(coev__post_t *p, bool run)
{
	struct submit *s = (struct submit *)p;
	int expect = CLAIM_QUEUED, r = run ? -ECANCELED : -ESHUTDOWN;

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
 * succeeds with its result), as sync/'s grant-or-withdraw rule has it.
 */
int coev_submit_to(coev_rt_t *rt, unsigned i, coev_fn fn, void *arg,
		   int *result)
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
	r = coev_future_wait(s->f, result);
	if (r < 0 && !atomic_compare_exchange_strong_explicit(
			     &s->claim, &expect, CLAIM_SKIPPED,
			     memory_order_acq_rel, memory_order_acquire)) {
		/* fn started (or the worker dropped the post): wait for it.
		 * Only a task's wait gives up, so t is set. */
		limit = coev__strict_begin(t);
		r = coev_future_wait(s->f, result);
		coev__strict_end(t, limit);
	}
	submit_put(s);
	return r;
}
