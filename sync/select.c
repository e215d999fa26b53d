/* SPDX-License-Identifier: MIT */
/*
 * sync/select.c — select over channels (sync/chan.c), and the channel
 * cases of the select over mixed sources (bridge/select_any.c), which
 * arms and disarms them through coev__chsel_* (sync/internal.h).
 *
 * Select follows Go's design. It locks every channel of its cases in
 * address order (one lock per channel, however many cases use it), looks
 * at the cases in a random order and performs the first that can
 * proceed. If none can, it queues one node per case, all sharing one
 * waiter and one `winner` word, and sleeps. A partner that finds one of
 * these nodes first claims the select by a compare-and-swap of winner
 * from -1 to the case's index; a node whose select was already claimed
 * elsewhere is dropped from the queue and skipped. A select that gives up
 * claims itself (winner -1 -> -2) to withdraw: if that fails a partner
 * won, and the select settles for that case. Either way it then unlinks
 * its remaining nodes under all the locks.
 *
 * A bounded channel's buffer is a lock-free ring (sync/chan.c): before
 * its last attempt a select that may wait marks each case's side of its
 * channel (coev__chan_want), so that lock-free sends and receives that
 * complete afterwards come to the lock and serve its nodes; each unlock
 * settles the marks of queues left empty. While a side is marked, only
 * the lock's holder moves that side of the ring, so a partner that saw a
 * message or a free slot may claim a select for it.
 */
#include <string.h>

#include "chan_internal.h"

int coev__chsel_prepare(struct coev__chsel *s, coev_sel_t *cases, size_t n)
{
	size_t i, j;
	coev_chan_t *ch;

	if ((!cases && n) || n > COEV_SELECT_MAX)
		return -EINVAL;
	s->cases = cases;
	s->n = n;
	s->nlocks = 0;
	for (i = 0; i < n; i++) {
		if (!(ch = cases[i].ch))
			continue;
		if ((cases[i].op != COEV_SEL_SEND &&
		     cases[i].op != COEV_SEL_RECV) ||
		    !cases[i].buf)
			return -EINVAL;
		/* Insertion into the sorted set of channels. */
		for (j = s->nlocks; j > 0 && s->locks[j - 1] > ch; j--)
			s->locks[j] = s->locks[j - 1];
		if (j > 0 && s->locks[j - 1] == ch) {
			memmove(&s->locks[j], &s->locks[j + 1],
				(s->nlocks - j) * sizeof s->locks[0]);
			continue;
		}
		s->locks[j] = ch;
		s->nlocks++;
	}
	/* Fisher-Yates: every ready case is equally likely to go first. */
	for (i = 0; i < n; i++) {
		j = coev__sync_rand() % (i + 1);
		s->order[i] = s->order[j];
		s->order[j] = (unsigned char)i;
	}
	return 0;
}

static void lock_all(struct coev__chsel *s)
{
	for (size_t i = 0; i < s->nlocks; i++)
		coev__spin_lock(&s->locks[i]->lk);
}

static void unlock_all(struct coev__chsel *s)
{
	for (size_t i = s->nlocks; i > 0; i--) {
		coev__chan_settle(s->locks[i - 1]);
		coev__spin_unlock(&s->locks[i - 1]->lk);
	}
}

/* Under all locks, before the last attempt of a select that may wait:
 * mark each case's side of its channel as maybe waited on (sync/chan.c,
 * "waiters"), so that lock-free operations come to serve it. */
static void want_all(struct coev__chsel *s)
{
	coev_sel_t *c;

	for (size_t i = 0; i < s->n; i++) {
		c = &s->cases[i];
		if (c->ch)
			coev__chan_want(c->ch, c->op == COEV_SEL_SEND);
	}
}

/* Under c's channel's lock: one attempt at case c; 0 or -EAGAIN. */
static int case_try(coev_sel_t *c, coev__wake_t *wk)
{
	int r = c->op == COEV_SEL_SEND
			? coev__chan_send_locked(c->ch, c->buf, wk)
			: coev__chan_recv_locked(c->ch, c->buf, wk);

	if (r == -EAGAIN)
		return r;
	c->result = r;
	return 0;
}

/* Under all locks: perform the first case that can proceed, in the
 * shuffled order. Returns its index, or -EAGAIN. */
static int select_try(struct coev__chsel *s, coev__wake_t *wk)
{
	coev_sel_t *c;

	for (size_t k = 0; k < s->n; k++) {
		c = &s->cases[s->order[k]];
		if (c->ch && case_try(c, wk) == 0)
			return s->order[k];
	}
	return -EAGAIN;
}

int coev__chsel_try(struct coev__chsel *s)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	int r;

	lock_all(s);
	r = select_try(s, &wk);
	unlock_all(s);
	coev__wq_wake(&wk);
	return r;
}

int coev__chsel_try_one(struct coev__chsel *s, size_t i)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	coev_sel_t *c = &s->cases[i];
	int r;

	if (!c->ch)
		return -EAGAIN;
	coev__spin_lock(&c->ch->lk);
	r = case_try(c, &wk);
	coev__chan_settle(c->ch);
	coev__spin_unlock(&c->ch->lk);
	coev__wq_wake(&wk);
	return r == 0 ? (int)i : r;
}

/* The queue a case waits in on its channel. */
static coev__wq_t *case_queue(coev_sel_t *c)
{
	return c->op == COEV_SEL_SEND ? &c->ch->sendq : &c->ch->recvq;
}

/* Under all locks: queue one node per case, all sharing wt and s->sel. */
static void select_queue(struct coev__chsel *s, coev__waiter_t *wt)
{
	coev_sel_t *c;
	coev__wnode_t *n;

	for (size_t i = 0; i < s->n; i++) {
		c = &s->cases[i];
		n = &s->nodes[i];
		coev__wnode_init(n, wt);
		if (!c->ch)
			continue;
		n->sel = &s->sel;
		n->index = (int)i;
		n->buf = c->buf;
		coev__wq_push(case_queue(c), n);
	}
}

int coev__chsel_arm(struct coev__chsel *s, coev__waiter_t *wt)
{
	coev__wake_t wk = {NULL, COEV_SIG_WAKE};
	int win;

	atomic_init(&s->sel.winner, -1);
	lock_all(s);
	want_all(s);
	if ((win = select_try(s, &wk)) < 0)
		select_queue(s, wt);
	unlock_all(s);
	/* The attempts may have served other waiters on the way. */
	coev__wq_wake(&wk);
	return win;
}

int coev__chsel_disarm(struct coev__chsel *s)
{
	int open = -1, win;

	lock_all(s);
	/* Acq_rel, and acquire in the load: pair with a partner's claiming
	 * CAS in partner() (sync/chan.c). */
	if (atomic_compare_exchange_strong_explicit(&s->sel.winner, &open, -2,
						    memory_order_acq_rel,
						    memory_order_acquire))
		win = -1;
	else
		win = open;
	for (size_t i = 0; i < s->n; i++)
#if defined(COEV_PLANT_SELECT_STALE)
		/* Planted bug: a select that was granted trusts its partner
		 * to have dropped its nodes; only a give-up unlinks them, so
		 * the losing cases stay queued after the select returns. */
		if (win < 0 && s->nodes[i].queued)
#else
		if (s->nodes[i].queued)
#endif
			coev__wq_remove(case_queue(&s->cases[i]), &s->nodes[i]);
	unlock_all(s);
	if (win >= 0)
		s->cases[win].result = s->nodes[win].status;
	return win;
}

static int select_wait(struct coev__chsel *s, coev_time_t deadline)
{
	coev__waiter_t wt;
	int r, win;

	if ((r = coev__waiter_begin(&wt)) < 0)
		return r;
	if ((win = coev__chsel_arm(s, &wt)) >= 0) {
		coev__waiter_abandon(&wt);
		return win;
	}
	r = coev__waiter_wait_on(&wt, deadline, COEV_WAIT_SELECT, s, 0);
	if ((win = coev__chsel_disarm(s)) < 0) {
		coev__waiter_abandon(&wt);
		return r;
	}
	if (r < 0)
		coev__waiter_settle(&wt, 1);
	coev__waiter_fini(&wt);
	return win;
}

static int select_common(coev_sel_t *cases, size_t n, coev_time_t deadline,
			 bool wait)
{
	struct coev__chsel s;
	int r;

	if ((r = coev__chsel_prepare(&s, cases, n)) < 0)
		return r;
	if (wait)
		return select_wait(&s, deadline);
	return coev__chsel_try(&s);
}

int coev_select_dl(coev_sel_t *cases, size_t n, coev_time_t deadline)
{
	return select_common(cases, n, deadline, true);
}

int coev_select(coev_sel_t *cases, size_t n)
{
	return select_common(cases, n, COEV_FOREVER, true);
}

int coev_try_select(coev_sel_t *cases, size_t n)
{
	return select_common(cases, n, 0, false);
}
