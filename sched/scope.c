/* SPDX-License-Identifier: MIT */
/*
 * sched/scope.c — task scopes (structured concurrency) and the
 * cancellation of every task at shutdown.
 *
 * A scope is a mutex-protected set: its live child tasks (linked through
 * the tasks' sprev/snext), its child scopes, the first error, and the
 * owner's waiter while it closes. The tree of scopes follows the tasks:
 * a scope opened by task T hangs under T's innermost open scope, or else
 * under the scope T is a child of, so cancelling a scope reaches every
 * task below it at once (locks are taken parent before child, never the
 * other way).
 *
 * Lifetimes: a child task is in its scope's list from spawn (coev__scope_
 * adopt, before it is queued) until it ends (coev__scope_child_done, run by
 * the worker that finishes it, before the task drops its run reference).
 * So a cancel that walks the list under the lock only ever touches live
 * blocks. The scope itself lives until its owner's close returns, which is
 * after the last child left the list and signalled: the signal is the
 * child's last touch of the scope's memory (the waiter protocol of
 * wait.c), and close then takes the lock once more before freeing, so no
 * child can still hold it.
 *
 * Close is in two phases: wait (deadline, owner's cancellation); if that
 * is cut short, cancel the scope and wait again, shielded, until every
 * child has ended. Once the set is empty under the lock the scope is
 * closed, and later spawns into it are refused: no child can start after
 * close has looked.
 */
#include <stdlib.h>

#include "sched.h"

struct coev_scope {
	pthread_mutex_t mu;
	struct coev_rt *rt;		  /* [init] */
	coev_task_t *owner;		  /* [init] */
	struct coev_scope *parent;	  /* [init] or NULL */
	struct coev_scope *prev_top;	  /* [owner] owner's scope_top before */
	struct coev_scope *kids;	  /* [mu] child scopes */
	struct coev_scope *kprev, *knext; /* [parent->mu] sibling links */
	coev_task_t *head;		  /* [mu] live child tasks */
	size_t live;			  /* [mu] */
	int first_err;			  /* [mu] */
	unsigned flags;			  /* [init] */
	bool cancelled;			  /* [mu] */
	bool closed;			  /* [mu] */
	coev__waiter_t *waiter;		  /* [mu] owner in close */
};

int coev_scope_open(unsigned flags, coev_scope_t **out)
{
	coev_task_t *t = coev__task_self();
	struct coev_scope *s, *p;

	if (!t)
		return COEV_ENOTCORO;
	if (!out || (flags & ~COEV_SCOPE_FAIL_FAST))
		return -EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->rt = t->rt;
	s->owner = t;
	s->flags = flags;
	s->prev_top = t->scope_top;
	p = t->scope_top ? t->scope_top : t->scope;
	s->parent = p;
	if (p) {
		pthread_mutex_lock(&p->mu);
		s->cancelled = p->cancelled;
		s->knext = p->kids;
		if (p->kids)
			p->kids->kprev = s;
		p->kids = s;
		pthread_mutex_unlock(&p->mu);
	}
	t->scope_top = s;
	*out = s;
	return 0;
}

int coev__scope_adopt(struct coev_scope *s, coev_task_t *t)
{
	int r = 0;

	pthread_mutex_lock(&s->mu);
	if (s->closed) {
		r = -EINVAL;
	} else if (s->cancelled) {
		r = -ECANCELED;
	} else {
		t->scope = s;
		t->sprev = NULL;
		t->snext = s->head;
		if (s->head)
			s->head->sprev = t;
		s->head = t;
		s->live++;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int coev_scope_spawn(coev_scope_t *s, const char *name, coev_fn fn, void *arg)
{
	struct coev_worker *w = coev__worker_self();

	if (!s || !fn)
		return -EINVAL;
	if (!w || !w->current)
		return COEV_ENOTCORO;
	return coev__task_spawn(s->rt, w, s, name, fn, arg, NULL);
}

/* Cancel s's tasks and every scope under it. Called with s->mu held. */
static void cancel_locked(struct coev_scope *s)
{
	s->cancelled = true;
	for (coev_task_t *t = s->head; t; t = t->snext)
		coev_cancel(t);
	for (struct coev_scope *k = s->kids; k; k = k->knext) {
		pthread_mutex_lock(&k->mu);
		cancel_locked(k);
		pthread_mutex_unlock(&k->mu);
	}
}

int coev_scope_cancel(coev_scope_t *s)
{
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	cancel_locked(s);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

size_t coev_scope_live(coev_scope_t *s)
{
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	n = s->live;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void coev__scope_child_done(coev_task_t *t)
{
	struct coev_scope *s = t->scope;
	coev__waiter_t *wt = NULL;

	pthread_mutex_lock(&s->mu);
	if (t->sprev)
		t->sprev->snext = t->snext;
	else
		s->head = t->snext;
	if (t->snext)
		t->snext->sprev = t->sprev;
	t->scope = NULL;
	if (t->result < 0 && s->first_err == 0) {
		s->first_err = t->result;
		if ((s->flags & COEV_SCOPE_FAIL_FAST) && !s->cancelled)
			cancel_locked(s);
	}
	if (--s->live == 0) {
		wt = s->waiter;
		s->waiter = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (wt)
		coev__waiter_signal(wt, COEV_SIG_WAKE);
}

/* Wait until s has no live child (strict: whatever the caller's
 * cancellation and pushed deadline). Returns 0, or the error that cut the
 * wait short. */
static int wait_empty(struct coev_scope *s, coev_task_t *self,
		      coev_time_t deadline, bool strict)
{
	coev__waiter_t wt;
	int r;

	pthread_mutex_lock(&s->mu);
	if (s->live == 0) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	coev__waiter_init(&wt, self);
	coev__task_ref(self); /* held for the last child's signal */
	s->waiter = &wt;
	pthread_mutex_unlock(&s->mu);
	if (strict) {
		coev__waiter_settle(&wt, 1);
		return 0;
	}
	r = coev__waiter_wait_on(&wt, deadline, COEV_WAIT_SCOPE, s, 0);
	if (r == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (s->waiter == &wt) {
		s->waiter = NULL;
		pthread_mutex_unlock(&s->mu);
		coev__task_release(self);
		return r;
	}
	pthread_mutex_unlock(&s->mu);
	coev__waiter_settle(&wt, 1); /* the last child's signal is coming */
	return 0;
}

int coev_scope_close_dl(coev_scope_t *s, coev_time_t deadline)
{
	coev_task_t *self = coev__task_self();
	struct coev_scope *p;
	int cut = 0, r;

	if (!s)
		return -EINVAL;
	if (!self || s->owner != self || self->scope_top != s)
		coev__panic("coev_scope_close: scope %p closed by task %llu, "
			    "not by its owner %llu in reverse order of opening",
			    (void *)s,
			    (unsigned long long)(self ? self->id : 0),
			    (unsigned long long)s->owner->id);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (s->live == 0) {
			s->closed = true;
			pthread_mutex_unlock(&s->mu);
			break;
		}
		pthread_mutex_unlock(&s->mu);
		r = wait_empty(s, self, deadline, cut != 0);
		if (r < 0 && !cut) {
			/* The cut is the scope's failure unless a child failed
			 * before it: what the cancelled children return
			 * afterwards must not hide it. */
			cut = r;
			pthread_mutex_lock(&s->mu);
			if (s->first_err == 0)
				s->first_err = cut;
			cancel_locked(s);
			pthread_mutex_unlock(&s->mu);
#if defined(COEV_PLANT_SCOPE_CUT)
			/* Planted bug: the give-up path takes the cancel as
			 * done and leaves without the re-check, while the
			 * cancelled children may still run. */
			break;
#endif
		}
	}
	self->scope_top = s->prev_top;
	if ((p = s->parent) != NULL) {
		pthread_mutex_lock(&p->mu);
		if (s->kprev)
			s->kprev->knext = s->knext;
		else
			p->kids = s->knext;
		if (s->knext)
			s->knext->kprev = s->kprev;
		pthread_mutex_unlock(&p->mu);
	}
	r = s->first_err;
	pthread_mutex_destroy(&s->mu);
	free(s);
	return r;
}

int coev_scope_close(coev_scope_t *s)
{
	return coev_scope_close_dl(s, COEV_FOREVER);
}

/* --- shutdown ---------------------------------------------------------- */

static void cancel_one(coev_task_t *t, void *arg)
{
	(void)arg;
	coev_cancel(t);
}

/* Every live task is cancelled; the walk holds a reference on each block
 * while it cancels it, so none is freed meanwhile. */
void coev__cancel_all(struct coev_rt *rt)
{
	coev__task_each(rt, cancel_one, NULL);
}
