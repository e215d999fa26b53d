/* SPDX-License-Identifier: MIT */
/*
 * bridge/watch.c — the generic adapters for callback libraries: fd
 * watches, timers and socket sets on one worker's loop (coev/bridge.h).
 *
 * They are built on the platform seam's one-shot watchers
 * (sched/platform.h), not on libev directly, so adapters written on them
 * also run on the deterministic simulation platform. A watch is
 * level-triggered for its user: after each firing its callback runs and,
 * if the watch still wants events, it is armed again (one epoll_ctl). The
 * re-arm comes after the callback, not before, so data the callback has
 * read is not reported again; the callback may free the watch, so the
 * watch notes that it is inside its callback and defers the free.
 *
 * A socket set keeps its watches in an array indexed by fd (the kernel
 * hands out the lowest free fd, so the array stays as small as the
 * library's highest socket), plus one timer: exactly what c-ares'
 * sock_state_cb and libcurl's socket and timer callbacks describe.
 *
 * Everything here belongs to the worker that created it; any other thread
 * touching it is a bug that would corrupt that worker's loop, so it aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "coev/bridge.h"
#include "sched/internal.h"

struct coev_watch {
	coev__io_t io;
	struct coev_worker *w;
	coev_watch_fn fn;
	void *arg;
	int fd;
	unsigned want; /* wanted events */
	bool armed;    /* io armed for want */
	bool in_cb;    /* fn is running */
	bool dead;     /* freed while in fn: free on return */
};

struct coev_timer {
	coev__timer_t tm;
	struct coev_worker *w;
	coev_timer_fn fn;
	void *arg;
	bool armed;
};

static struct coev_worker *owner_check(struct coev_worker *w, const char *what)
{
	if (coev__worker_self() != w)
		coev__panic("%s called on a thread that is not the worker "
			    "that created it (pin the task: coev_pin)",
			    what);
	return w;
}

/* --- watches ------------------------------------------------------------- */

static int watch_arm(coev_watch_t *wa)
{
	int r = coev__plat_io_arm(wa->w, &wa->io, wa->fd, wa->want);

	wa->armed = r == 0;
	return r;
}

static void watch_fire(coev__io_t *io, unsigned events)
{
	coev_watch_t *wa = io->data;

	unsigned ev = events & wa->want;

	wa->armed = false;
	wa->in_cb = true;
	/* An error or hang-up is reported as every wanted event. */
	wa->fn(wa, wa->fd, ev ? ev : wa->want, wa->arg);
	wa->in_cb = false;
	if (wa->dead) {
		free(wa);
		return;
	}
	/* An arm failing now (fd closed without telling us) leaves the
	 * watch quiet; the library learns of the close on its own. */
	if (wa->want && !wa->armed)
		watch_arm(wa);
}

int coev_watch_new(int fd, coev_watch_fn fn, void *arg, coev_watch_t **out)
{
	struct coev_worker *w = coev__worker_self();
	coev_watch_t *wa;

	if (!w)
		return COEV_ENOTRT;
	if (fd < 0 || !fn || !out)
		return -EINVAL;
	if (!(wa = calloc(1, sizeof *wa)))
		return -ENOMEM;
	wa->io.fire = watch_fire;
	wa->io.data = wa;
	wa->w = w;
	wa->fn = fn;
	wa->arg = arg;
	wa->fd = fd;
	*out = wa;
	return 0;
}

int coev_watch_set(coev_watch_t *wa, unsigned events)
{
	if (!wa)
		return -EINVAL;
	owner_check(wa->w, "coev_watch_set");
	events &= COEV_READ | COEV_WRITE;
	if (events == wa->want && (wa->armed || wa->in_cb))
		return 0;
	if (wa->armed)
		coev__plat_io_disarm(wa->w, &wa->io);
	wa->armed = false;
	wa->want = events;
	/* Inside fn, watch_fire arms once fn returns. */
	if (!events || wa->in_cb)
		return 0;
	return watch_arm(wa);
}

void coev_watch_free(coev_watch_t *wa)
{
	if (!wa)
		return;
	owner_check(wa->w, "coev_watch_free");
	if (wa->armed)
		coev__plat_io_disarm(wa->w, &wa->io);
	wa->armed = false;
	wa->want = 0;
	if (wa->in_cb)
		wa->dead = true;
	else
		free(wa);
}

/* --- timers -------------------------------------------------------------- */

static void timer_fire(coev__timer_t *t)
{
	coev_timer_t *tm = t->data;

	/* fn may free tm: nothing touches it afterwards. */
	tm->armed = false;
	tm->fn(tm, tm->arg);
}

int coev_timer_new(coev_timer_fn fn, void *arg, coev_timer_t **out)
{
	struct coev_worker *w = coev__worker_self();
	coev_timer_t *tm;

	if (!w)
		return COEV_ENOTRT;
	if (!fn || !out)
		return -EINVAL;
	if (!(tm = calloc(1, sizeof *tm)))
		return -ENOMEM;
	tm->tm.fire = timer_fire;
	tm->tm.data = tm;
	tm->w = w;
	tm->fn = fn;
	tm->arg = arg;
	*out = tm;
	return 0;
}

int coev_timer_set(coev_timer_t *tm, coev_time_t deadline)
{
	if (!tm || deadline < 0)
		return -EINVAL;
	owner_check(tm->w, "coev_timer_set");
	if (tm->armed)
		coev__plat_timer_disarm(tm->w, &tm->tm);
	tm->armed = deadline != COEV_FOREVER;
	if (tm->armed)
		coev__plat_timer_arm(tm->w, &tm->tm, deadline);
	return 0;
}

void coev_timer_free(coev_timer_t *tm)
{
	if (!tm)
		return;
	owner_check(tm->w, "coev_timer_free");
	if (tm->armed)
		coev__plat_timer_disarm(tm->w, &tm->tm);
	free(tm);
}

/* --- socket sets --------------------------------------------------------- */

struct coev_sockset {
	struct coev_worker *w;
	coev_sockset_fn fn;
	void *arg;
	coev_watch_t **by_fd; /* indexed by fd; NULL where not watched */
	size_t nfd;
	coev_timer_t *timer;
	unsigned depth; /* callbacks running */
	bool dead;	/* freed inside a callback */
};

static void sockset_destroy(coev_sockset_t *ss)
{
	for (size_t i = 0; i < ss->nfd; i++)
		coev_watch_free(ss->by_fd[i]);
	coev_timer_free(ss->timer);
	free(ss->by_fd);
	free(ss);
}

/* Run fn, then finish a free that fn asked for. */
static void sockset_call(coev_sockset_t *ss, int fd, unsigned events)
{
	ss->depth++;
	ss->fn(ss, fd, events, ss->arg);
	if (--ss->depth == 0 && ss->dead)
		sockset_destroy(ss);
}

static void sockset_ready(coev_watch_t *wa, int fd, unsigned events, void *arg)
{
	(void)wa;
	sockset_call(arg, fd, events);
}

static void sockset_timer_fire(coev_timer_t *tm, void *arg)
{
	(void)tm;
	sockset_call(arg, COEV_SOCKSET_TIMER, 0);
}

int coev_sockset_new(coev_sockset_fn fn, void *arg, coev_sockset_t **out)
{
	struct coev_worker *w = coev__worker_self();
	coev_sockset_t *ss;
	int r;

	if (!w)
		return COEV_ENOTRT;
	if (!fn || !out)
		return -EINVAL;
	if (!(ss = calloc(1, sizeof *ss)))
		return -ENOMEM;
	ss->w = w;
	ss->fn = fn;
	ss->arg = arg;
	if ((r = coev_timer_new(sockset_timer_fire, ss, &ss->timer)) < 0) {
		free(ss);
		return r;
	}
	*out = ss;
	return 0;
}

int coev_sockset_watch(coev_sockset_t *ss, int fd, unsigned events)
{
	coev_watch_t *wa;
	int r;

	if (!ss || fd < 0)
		return -EINVAL;
	owner_check(ss->w, "coev_sockset_watch");
	if ((size_t)fd >= ss->nfd) {
		size_t n = ss->nfd ? ss->nfd : 16;
		coev_watch_t **a;

		if (!events)
			return 0;
		while (n <= (size_t)fd)
			n *= 2;
		if (!(a = realloc(ss->by_fd, n * sizeof *a)))
			return -ENOMEM;
		memset(a + ss->nfd, 0, (n - ss->nfd) * sizeof *a);
		ss->by_fd = a;
		ss->nfd = n;
	}
	wa = ss->by_fd[fd];
	if (!events) {
		coev_watch_free(wa);
		ss->by_fd[fd] = NULL;
		return 0;
	}
	if (!wa) {
		if ((r = coev_watch_new(fd, sockset_ready, ss, &wa)) < 0)
			return r;
		ss->by_fd[fd] = wa;
	}
	if ((r = coev_watch_set(wa, events)) < 0) {
		coev_watch_free(wa);
		ss->by_fd[fd] = NULL;
	}
	return r;
}

int coev_sockset_timer(coev_sockset_t *ss, coev_time_t deadline)
{
	if (!ss)
		return -EINVAL;
	return coev_timer_set(ss->timer, deadline);
}

void coev_sockset_free(coev_sockset_t *ss)
{
	if (!ss)
		return;
	owner_check(ss->w, "coev_sockset_free");
	if (ss->depth) {
		/* Quiet now, freed when the callback returns. */
		for (size_t i = 0; i < ss->nfd; i++) {
			coev_watch_free(ss->by_fd[i]);
			ss->by_fd[i] = NULL;
		}
		coev_timer_set(ss->timer, COEV_FOREVER);
		ss->dead = true;
		return;
	}
	sockset_destroy(ss);
}
