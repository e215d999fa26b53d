/* SPDX-License-Identifier: MIT */
/*
 * bridge/select_any.c — one select over different sources (coev/select.h):
 * channel sends and receives, futures, tasks' ends, fds' readiness, a
 * stream's bytes or line, broadcast and latest-value receivers, events,
 * signal watches and deadlines.
 *
 * The model. Every kind of case is a source with three steps:
 *   poll    is it ready now? A case that takes something (a channel
 *           send or receive, a broadcast or latest-value receive, a
 *           signal delivery) performs it here, and the poll that finds a
 *           case ready chooses it, so only the chosen case takes; the
 *           others only look (a stream's look reads ahead into the
 *           stream's buffer, which consumes nothing);
 *   arm     register the select where the source's completer will find
 *           it: channel nodes (sync/select.c, coev__chsel_arm); a wait
 *           node in the queue of a future (bridge/future.c), an event
 *           (sync/event.c, also a signal watch's, coev_signal_event) or a
 *           broadcast or latest-value channel (sync/broadcast.c,
 *           sync/latest.c: a node without a buffer, told of a send but
 *           handed nothing); the waiter in a task's joiner slot
 *           (sched/join.c's compare-and-swap); an io watcher on the
 *           worker's loop for an fd or a stream's fd (sched/fd.c for an
 *           fd coev owns, sched/platform.h's one-shot watcher otherwise);
 *           a deadline needs no registration, it bounds the park;
 *   disarm  take the registration back, saying whether the completer's
 *           signal is on its way (grant-or-withdraw, sync/internal.h).
 * A call polls every case in a random order (the first ready one wins, so
 * none starves: Go's rule), then loops over rounds: arm every case (a
 * case found ready while arming ends the arming), park once, disarm every
 * case, and poll again in a new random order.
 *
 * Only channel cases take something at grant time (a partner moves the
 * message into or out of the select's buffer), so only they must never
 * fire twice: they keep coev_select's protocol, in which a partner claims
 * the whole select by a compare-and-swap of one winner word before it
 * moves a message, and the select withdraws by claiming it itself. A
 * partner's claim decides the call: disarm reports that case whatever
 * else became ready. The other sources' grants only say "look again": a
 * future completed, a task ended, an event set or a deadline passed stays
 * so, and a value sent, a delivery or an fd's data waits for the poll
 * (someone else may take an fd's data first, which the next round sees),
 * so any number of them may signal, and the poll after the round decides
 * which case wins, again at random among the ready ones. A future is
 * never awaited nor cancelled, a task's handle never taken: the losers
 * are untouched.
 *
 * Signals. The round's waiter counts its signals
 * rather than taking one: every registration that may signal holds a
 * reference on the waiting task, dropped by its signal or by its
 * withdrawal, and disarm settles exactly the signals whose withdrawal
 * failed before the frame goes. An fd's watcher runs on the task's own
 * worker, where the task is pinned while it waits (coev_pin), so it wakes
 * the task directly and is taken down there; an owned fd's event
 * dispatched by another worker leaves its result in the watcher and wakes
 * the task, which the disarm reads. A task parks once per round with
 * coev__park_until, so every kind of wake (a signal, an fd, a timer, a
 * cancel, a spurious one) leads to a disarm and a poll; a plain thread
 * waits on the waiter's condition variable, and so cannot take fd or
 * stream cases.
 *
 * Rejected: a helper task per source feeding one channel (an allocation
 * and a spawn per case per call, and the helper consumes what it waited
 * for, so a losing future would be awaited and a losing task joined); a
 * claim word for the sources that consume nothing (nothing to protect,
 * and a completed future would have to reach every select watching it).
 */
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "internal.h"
#include "sched/platform.h"

/* An fd case's watcher, in the caller's frame for the round. */
struct any_fd {
	coev__io_t io;
	struct coev__fd *owned; /* an owned fd's registration, or NULL */
	coev_task_t *task;	/* to wake */
	bool live;		/* a one-shot watcher not fired yet [w] */
	int fired;		/* ready events or an error, else 0 [w] */
};

/* One case's registration for the round: a future's node or an fd's
 * watcher. */
union any_slot {
	coev__wnode_t node;
	struct any_fd fd;
};

struct any {
	coev_any_t *cases;
	size_t n;
	coev_task_t *self; /* the calling task, or NULL for a plain thread */
	bool fds;	   /* some fd case is usable */
	unsigned char order[COEV_SELECT_MAX];  /* cases, shuffled */
	unsigned char chcase[COEV_SELECT_MAX]; /* channel case -> case */
	unsigned char chpos[COEV_SELECT_MAX];  /* case -> channel case */
	coev_sel_t sels[COEV_SELECT_MAX];      /* the channel cases */
	struct coev__chsel chs;
	bool ch_armed;		     /* chs queued for the round */
	bool armed[COEV_SELECT_MAX]; /* the case is registered */
	union any_slot slots[COEV_SELECT_MAX];
	coev__waiter_t jw;
};
/* coev/select.h promises about 16 KiB of the caller's stack. */
_Static_assert(sizeof(struct any) <= 15 * 1024, "struct any fits its promise");

static void shuffle(struct any *a)
{
	size_t i, j;

	/* Fisher-Yates, as coev_select: every ready case is equally likely
	 * to be looked at first. */
	for (i = 0; i < a->n; i++) {
		j = coev__sync_rand() % (i + 1);
		a->order[i] = a->order[j];
		a->order[j] = (unsigned char)i;
	}
}

/* Whether case c can ever be chosen (rule 3's switched-off cases). */
static bool usable(const coev_any_t *c)
{
	switch (c->kind) {
	case COEV_ANY_SEND:
	case COEV_ANY_RECV: return c->chan != NULL;
	case COEV_ANY_FUTURE: return c->future != NULL;
	case COEV_ANY_TASK: return c->task != NULL;
	case COEV_ANY_FD: return c->fd >= 0;
	case COEV_ANY_DEADLINE: return true;
	case COEV_ANY_STREAM_BYTES:
	case COEV_ANY_STREAM_LINE: return c->stream != NULL;
	case COEV_ANY_BCAST: return c->bcast != NULL;
	case COEV_ANY_LATEST: return c->latest != NULL;
	case COEV_ANY_EVENT: return c->event != NULL;
	case COEV_ANY_SIGNAL: return c->signal != NULL;
	default: return false;
	}
}

/* Whether case c waits on an fd of the caller's worker. */
static bool fd_kind(const coev_any_t *c)
{
	return c->kind == COEV_ANY_FD || c->kind == COEV_ANY_STREAM_BYTES ||
	       c->kind == COEV_ANY_STREAM_LINE;
}

/* Check one case (coev_select_any's -EINVAL and -EDEADLK rules). */
static int check_case(const coev_any_t *c, coev_task_t *self, bool wait)
{
	if (c->kind < COEV_ANY_NONE || c->kind > COEV_ANY_SIGNAL)
		return -EINVAL;
	if (!usable(c))
		return 0;
	if ((c->kind == COEV_ANY_SEND || c->kind == COEV_ANY_RECV ||
	     c->kind == COEV_ANY_BCAST || c->kind == COEV_ANY_LATEST) &&
	    !c->buf)
		return -EINVAL;
	if (c->kind == COEV_ANY_TASK && c->task == self && self)
		return -EDEADLK;
	if (c->kind == COEV_ANY_FD &&
	    (!(c->events & (COEV_READ | COEV_WRITE)) ||
	     (c->events & ~(COEV_READ | COEV_WRITE)) || (wait && !self)))
		return -EINVAL;
	/* A stream is read ahead (a task's call) and waited on by its fd. */
	if ((c->kind == COEV_ANY_STREAM_BYTES ||
	     c->kind == COEV_ANY_STREAM_LINE) &&
	    (!self || coev_stream_fileno(c->stream) < 0))
		return -EINVAL;
	return 0;
}

static int prepare(struct any *a, coev_any_t *cases, size_t n, bool wait)
{
	size_t nch = 0;
	coev_any_t *c;
	int r;

	if ((!cases && n) || n > COEV_SELECT_MAX)
		return -EINVAL;
	a->cases = cases;
	a->n = n;
	a->self = coev__task_self();
	a->fds = false;
	a->ch_armed = false;
	for (size_t i = 0; i < n; i++) {
		c = &cases[i];
		a->armed[i] = false;
		a->slots[i].fd.fired = 0;
		if ((r = check_case(c, a->self, wait)) < 0)
			return r;
		a->fds |= fd_kind(c) && usable(c);
		if ((c->kind != COEV_ANY_SEND && c->kind != COEV_ANY_RECV) ||
		    !c->chan)
			continue;
		a->sels[nch].ch = c->chan;
		a->sels[nch].op = c->kind == COEV_ANY_SEND ? COEV_SEL_SEND
							   : COEV_SEL_RECV;
		a->sels[nch].buf = c->buf;
		a->sels[nch].result = 0;
		a->chcase[nch] = (unsigned char)i;
		a->chpos[i] = (unsigned char)nch++;
	}
	shuffle(a);
	return coev__chsel_prepare(&a->chs, a->sels, nch);
}

/* An fd's readiness for events now, without waiting: the events ready, a
 * negative errno, or 0. */
static int fd_poll(int fd, unsigned events)
{
	struct pollfd p = {.fd = fd, .events = 0, .revents = 0};
	int r;

	p.events = (short)((events & COEV_READ ? POLLIN : 0) |
			   (events & COEV_WRITE ? POLLOUT : 0));
	while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return r < 0 ? -errno : 0;
	if (p.revents & POLLNVAL)
		return -EBADF;
	/* A hang-up or an error readies both directions, as coev_wait_fd. */
	r = (p.revents & (POLLIN | POLLHUP | POLLERR) ? COEV_READ : 0) |
	    (p.revents & (POLLOUT | POLLHUP | POLLERR) ? COEV_WRITE : 0);
	return r & (int)events;
}

/* A task case's readiness: 1 (result set) once the task has ended or a
 * shutdown gave up on it, else 0. */
static int task_poll(coev_any_t *c)
{
	/* Acquire: pairs with task_finish's acq_rel exchange that stores
	 * JOIN_DONE (sched/task.c): the result is visible. */
	coev__waiter_t *j =
		atomic_load_explicit(&c->task->joiner, memory_order_acquire);

	if (j == JOIN_DONE)
		c->result = c->task->result;
	else if (j == JOIN_ABANDONED)
		c->result = -ESHUTDOWN;
	else
		return 0;
	return 1;
}

/*
 * A stream case's readiness: 1 (result set) when its bytes or its line
 * are buffered, or when a read would return at once with the end or an
 * error; else 0. It reads ahead what the transport has, without waiting
 * (a peek with a past deadline only tries), into the stream's buffer:
 * the bytes stay there for the stream's reader (coev/stream.h rule 2).
 * Each peek asks for one byte more than is buffered, so it reads the
 * transport only when the buffer holds no answer yet.
 */
static int stream_poll(coev_any_t *c)
{
	size_t have = 0, avail, max = c->max ? c->max : COEV_ANY_LINE_MAX;
	const void *data = NULL, *nl;
	int r;

	for (;;) {
		avail = 0;
		r = coev_stream_peek(c->stream, have + 1, &data, &avail, 0);
		if (r == -ETIMEDOUT)
			return 0; /* nothing more now */
		if (r != 0) {
			c->result = r; /* the end, or an error */
			return 1;
		}
		have = avail;
		if (c->kind == COEV_ANY_STREAM_BYTES) {
			c->result = have > INT_MAX ? INT_MAX : (int)have;
			return 1;
		}
		if ((nl = memchr(data, '\n', have < max ? have : max))) {
			c->result =
				(int)((const char *)nl - (const char *)data) +
				1;
			return 1;
		}
		if (have >= max) {
			c->result = -EMSGSIZE;
			return 1;
		}
	}
}

/* A broadcast or latest-value case: receive now if a receive would not
 * wait (the poll that finds a case ready chooses it, so only the chosen
 * case receives). 1 (result set) or 0. */
static int receiver_poll(coev_any_t *c)
{
	int r = c->kind == COEV_ANY_BCAST
			? coev_bcast_try_recv(c->bcast, c->buf)
			: coev_latest_try_recv(c->latest, c->buf);

	if (r == -EAGAIN)
		return 0;
	c->result = r;
	return 1;
}

/* A signal case: take a delivery the watch has not returned, if there
 * is one (a wait with a past deadline only looks; it clears the watch's
 * event, which the dispatcher sets again at the next delivery). A
 * cancellation is the select's own answer, not the case's. */
static int signal_poll(coev_any_t *c)
{
	int r = coev_signal_wait(c->signal, c->buf, 0);

	if (r == -ETIMEDOUT || r == -ECANCELED)
		return 0;
	c->result = r;
	return 1;
}

/* A deadline case's readiness: 1 once coev_now() has reached it. */
static int deadline_poll(coev_any_t *c)
{
	c->result = 0;
#if defined(COEV_PLANT_ANY_DL_EARLY)
	/* Planted bug: a deadline case counts as reached a little before
	 * it is. */
	return coev__plat_now() + 300 >= c->at;
#else
	return coev__plat_now() >= c->at;
#endif
}

/* Case i's readiness now; a channel case is performed if it can be.
 * 1 when ready (its result set), else 0. */
static int poll_case(struct any *a, size_t i)
{
	coev_any_t *c = &a->cases[i];
	int r;

	if (!usable(c))
		return 0;
	switch (c->kind) {
	case COEV_ANY_SEND:
	case COEV_ANY_RECV:
		if (coev__chsel_try_one(&a->chs, a->chpos[i]) < 0)
			return 0;
		c->result = a->sels[a->chpos[i]].result;
		return 1;
	case COEV_ANY_FUTURE:
		return coev_future_poll(c->future, &c->result) == 0;
	case COEV_ANY_TASK: return task_poll(c);
	case COEV_ANY_STREAM_BYTES:
	case COEV_ANY_STREAM_LINE: return stream_poll(c);
	case COEV_ANY_BCAST:
	case COEV_ANY_LATEST: return receiver_poll(c);
	case COEV_ANY_EVENT:
		c->result = 0;
		return coev_event_is_set(c->event) != 0;
	case COEV_ANY_SIGNAL: return signal_poll(c);
	case COEV_ANY_FD:
		if ((r = fd_poll(c->fd, c->events)) == 0)
			return 0;
		c->result = r;
		return 1;
	default: return deadline_poll(c);
	}
}

/* Every case in a new random order: the first ready one's index, or
 * -EAGAIN. */
static int poll_all(struct any *a)
{
	shuffle(a);
	for (size_t k = 0; k < a->n; k++)
		if (poll_case(a, a->order[k]))
			return a->order[k];
	return -EAGAIN;
}

/* --- arming and disarming one round ------------------------------------ */

static void ref_self(struct any *a)
{
	if (a->self) /* held for the registration's signal */
		coev__task_ref(a->self);
}

static void unref_self(struct any *a)
{
	if (a->self) /* the registration was withdrawn: no signal */
		coev__task_release(a->self);
}

_Noreturn static void task_misuse(coev_task_t *t)
{
	coev__panic("coev_select_any: task handle %p is already joined, "
		    "detached, or being joined by someone else",
		    (void *)t);
}

/* Install the round's waiter in t's joiner slot. 0 armed (*armed set),
 * 1 ended (or abandoned) meanwhile, 0 unarmed for a handle met earlier in
 * the cases (the slot holds the waiter already). */
static int task_arm(struct any *a, coev_task_t *t, bool *armed)
{
	coev__waiter_t *expect = NULL;

	ref_self(a);
	/* acq_rel/acquire: pairs with task_finish's exchange of the slot
	 * (sched/task.c), as join_wait's install (sched/join.c). */
	if (atomic_compare_exchange_strong_explicit(&t->joiner, &expect, &a->jw,
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		*armed = true;
		return 0;
	}
	unref_self(a);
	if (expect == &a->jw)
		return 0;
	if (expect != JOIN_DONE && expect != JOIN_ABANDONED)
		task_misuse(t);
	return 1;
}

/* The watcher of an fd case fired, on the task's worker. */
static void fd_fire(coev__io_t *io, unsigned events)
{
	struct any_fd *s = io->data;

	/* A one-shot watcher was taken down by the backend before this. */
	s->live = false;
	s->fired = events ? (int)events : s->fired;
	coev__wake(s->task);
}

/* Arm an fd case's watcher on the caller's worker. 0 armed (*armed set),
 * 1 ready (the result is then found by the poll, or set here). */
static int fd_arm(struct any *a, coev_any_t *c, struct any_fd *s, bool *armed)
{
	struct coev_worker *w = a->self->worker;
	struct coev__fd_snap snap;
	bool st = c->kind != COEV_ANY_FD;
	int fd = st ? coev_stream_fileno(c->stream) : c->fd, r;
	unsigned events = st ? COEV_READ : c->events;

	s->io.fire = fd_fire;
	s->io.data = s;
	s->task = a->self;
	s->fired = 0;
	s->owned = fd >= 0 && fd < COEV_FD_MAX ? coev__fd_owned(fd) : NULL;
	if (s->owned) {
		/* As coev_wait_fd on an owned fd: the seqs before the look,
		 * so an edge after the look is not lost. */
		snap.gen = atomic_load_explicit(&s->owned->gen,
						memory_order_relaxed);
		for (int d = 0; d < 2; d++)
			snap.seq[d] = atomic_load_explicit(
				&s->owned->seq[d], memory_order_relaxed);
	}
	if (fd_poll(fd, events) != 0)
		return 1;
	r = s->owned ? coev__fd_arm(s->owned, fd, &s->io, w, a->self, events,
				    &snap)
		     : coev__plat_io_arm(w, &s->io, fd, events);
	if (r == 0) {
		s->live = true;
		*armed = true;
		return 0;
	}
	/* Ready, or an error (-EPERM: a regular file, always ready, which
	 * the poll finds; -EBUSY: another task waits on that direction),
	 * which chooses the case (fd_error). */
	if (r < 0 && r != -EPERM)
		s->fired = r;
	return 1;
}

/* Queue case i's wait node on its future or receiver; 1 when it was
 * found ready instead. */
static int node_arm(struct any *a, size_t i)
{
	coev_any_t *c = &a->cases[i];
	coev__wnode_t *n = &a->slots[i].node;
	int r;

	ref_self(a);
	coev__wnode_init(n, &a->jw);
	if (c->kind == COEV_ANY_FUTURE)
		r = coev__future_arm(c->future, n);
	else if (c->kind == COEV_ANY_BCAST)
		r = coev__bcast_arm(c->bcast, n);
	else if (c->kind == COEV_ANY_EVENT)
		r = coev__event_arm(c->event, n);
	else if (c->kind == COEV_ANY_SIGNAL)
		r = coev__event_arm(coev_signal_event(c->signal), n);
	else
		r = coev__latest_arm(c->latest, n);
	if (r == 0) {
		a->armed[i] = true;
		return 0;
	}
	unref_self(a);
	return 1;
}

/* Register case i; 1 when it was found ready instead. */
static int arm_case(struct any *a, size_t i)
{
	coev_any_t *c = &a->cases[i];
	union any_slot *s = &a->slots[i];

	switch (usable(c) ? c->kind : COEV_ANY_NONE) {
	case COEV_ANY_FUTURE:
	case COEV_ANY_BCAST:
	case COEV_ANY_LATEST:
	case COEV_ANY_EVENT:
	case COEV_ANY_SIGNAL: return node_arm(a, i);
	case COEV_ANY_TASK: return task_arm(a, c->task, &a->armed[i]);
	case COEV_ANY_FD:
	case COEV_ANY_STREAM_BYTES:
	case COEV_ANY_STREAM_LINE: return fd_arm(a, c, &s->fd, &a->armed[i]);
	default: /* channels are armed together; deadlines bound the park */
		return 0;
	}
}

/* Arm the round: the index of a channel case performed while arming, -2
 * when some case was found ready (nothing more armed), -1 when all are
 * armed. */
static int arm_all(struct any *a)
{
	int win;

	coev__waiter_init(&a->jw, a->self);
	if (a->chs.nlocks) {
		ref_self(a);
		if ((win = coev__chsel_arm(&a->chs, &a->jw)) >= 0) {
			unref_self(a);
			a->cases[a->chcase[win]].result = a->sels[win].result;
			return a->chcase[win];
		}
		a->ch_armed = true;
	}
	for (size_t i = 0; i < a->n; i++)
		if (arm_case(a, i))
			return -2;
	return -1;
}

/* Take case i's registration back: 1 when its signal is on its way. */
static int disarm_case(struct any *a, size_t i)
{
	coev_any_t *c = &a->cases[i];
	struct any_fd *s = &a->slots[i].fd;
	coev__waiter_t *expect = &a->jw;
	int r;

	a->armed[i] = false;
	switch (c->kind) {
	case COEV_ANY_FUTURE:
		if (coev__future_disarm(c->future, &a->slots[i].node))
			return 1;
		break;
	case COEV_ANY_BCAST:
		if (coev__bcast_disarm(c->bcast, &a->slots[i].node))
			return 1;
		break;
	case COEV_ANY_LATEST:
		if (coev__latest_disarm(c->latest, &a->slots[i].node))
			return 1;
		break;
	case COEV_ANY_EVENT:
		if (coev__event_disarm(c->event, &a->slots[i].node))
			return 1;
		break;
	case COEV_ANY_SIGNAL:
		if (coev__event_disarm(coev_signal_event(c->signal),
				       &a->slots[i].node))
			return 1;
		break;
	case COEV_ANY_TASK:
		/* acq_rel/acquire: as task_arm; a failure means the task
		 * ended (or was abandoned) and took the waiter. */
		if (!atomic_compare_exchange_strong_explicit(
			    &c->task->joiner, &expect, NULL,
			    memory_order_acq_rel, memory_order_acquire))
			return 1;
		break;
	default: /* fds and streams: we run on the watcher's worker (pinned) */
		if (s->owned && (r = coev__fd_disarm(&s->io)) != 0)
			s->fired = r;
		else if (!s->owned && s->live)
			coev__plat_io_disarm(a->self->worker, &s->io);
		if (s->fired < 0)
			c->result = s->fired;
		return 0; /* its wake is the task's, not the waiter's */
	}
	unref_self(a);
	return 0;
}

/* Disarm the round and settle its signals: the index of a channel case a
 * partner performed, else -1. */
static int disarm_all(struct any *a)
{
	int pending = 0, win = -1, k;

	if (a->ch_armed) {
		a->ch_armed = false;
		if ((k = coev__chsel_disarm(&a->chs)) >= 0) {
			pending++;
#if !defined(COEV_PLANT_ANY_CLAIM_IGNORED)
			win = a->chcase[k];
#endif
			/* (Planted bug ANY_CLAIM_IGNORED: a partner's claim
			 * does not decide the call, so the poll may choose
			 * another case and the message moved is lost.) */
			a->cases[a->chcase[k]].result = a->sels[k].result;
		} else {
			unref_self(a);
		}
	}
	for (size_t i = 0; i < a->n; i++)
		if (a->armed[i])
			pending += disarm_case(a, i);
	/* The signals whose withdrawals failed are coming, and the waiter
	 * in this frame must outlive them. */
	coev__waiter_settle(&a->jw, pending);
	coev__waiter_fini(&a->jw);
	return win;
}

/* An fd case whose watcher reported an error is chosen with it. */
static int fd_error(struct any *a)
{
	for (size_t k = 0; k < a->n; k++) {
		coev_any_t *c = &a->cases[a->order[k]];

		if (fd_kind(c) && usable(c) &&
		    a->slots[a->order[k]].fd.fired < 0)
			return a->order[k];
	}
	return -EAGAIN;
}

/* --- waiting ------------------------------------------------------------ */

/* The park's deadline: the call's, or an earlier DEADLINE case's. */
static coev_time_t park_deadline(struct any *a, coev_time_t deadline)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->cases[i].kind == COEV_ANY_DEADLINE &&
		    a->cases[i].at < deadline)
			deadline = a->cases[i].at;
	return deadline;
}

static int park(struct any *a, coev_time_t dl)
{
	int r;

	if (!a->self)
		return coev__waiter_wait_n(&a->jw, 1, dl);
	coev__wait_note(a->self, COEV_WAIT_SELECT, a->cases, (long long)a->n);
	r = coev__park_until(dl);
	coev__wait_note(a->self, COEV_WAIT_NONE, NULL, 0);
	return r;
}

/* One round: the chosen index, or -EAGAIN with *r the park's answer. */
static int round_once(struct any *a, coev_time_t dl, int *r)
{
	int armed = arm_all(a), win;

	*r = armed == -1 ? park(a, dl) : 0;
	win = disarm_all(a);
	if (armed >= 0)
		return armed;
	if (win >= 0)
		return win; /* a partner moved a message: it decides */
	if (*r == -ECANCELED)
		return -EAGAIN;
	if ((win = fd_error(a)) >= 0)
		return win;
	return poll_all(a);
}

/* A plain thread waiting for tasks counts itself in their runtimes
 * (sched/join.c), delta +1 or -1. */
static void plain_tasks(struct any *a, int delta)
{
	for (size_t i = 0; i < a->n; i++) {
		coev_any_t *c = &a->cases[i];

		if (c->kind != COEV_ANY_TASK || !c->task)
			continue;
		coev__join_plain(c->task->rt, delta);
	}
}

static int wait_rounds(struct any *a, coev_time_t deadline)
{
	coev_time_t dl = park_deadline(a, deadline);
	int r, win;

	do {
		if ((win = round_once(a, dl, &r)) >= 0)
			return win;
	} while (r == 0);
	return r;
}

int coev_select_any(coev_any_t *cases, size_t n, coev_time_t deadline)
{
	struct coev_worker *w = coev__worker_self();
	struct any a;
	int r;

	if (w && !w->current)
		return COEV_ENOTCORO;
	if ((r = prepare(&a, cases, n, true)) < 0)
		return r;
	if ((r = poll_all(&a)) >= 0)
		return r;
	if (a.self && (r = coev__cancel_check(a.self)) != 0)
		return r;
	if (a.self)
		deadline = coev__deadline_eff(a.self, deadline);
	if (!a.self) {
		plain_tasks(&a, +1);
		r = wait_rounds(&a, deadline);
		plain_tasks(&a, -1);
		return r;
	}
	if (a.fds)
		coev_pin(); /* the fd watchers live on this worker's loop */
	r = wait_rounds(&a, deadline);
	if (a.fds)
		coev_unpin();
	return r;
}

int coev_try_select_any(coev_any_t *cases, size_t n)
{
	struct any a;
	int r;

	if ((r = prepare(&a, cases, n, false)) < 0)
		return r;
	return poll_all(&a);
}
