/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_loop.c — the simulation's loops (see fuzz/sim.c): the virtual
 * clock, each worker's timers, the fake fds and the fake poller that parks
 * a worker until its doorbell rings, a timer is due or a fd is ready.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/sim_internal.h"

coev_time_t coev__plat_now(void)
{
	return coev__sim.clock;
}

/* The virtual clock is the only clock: the coarse one is the same. */
coev_time_t coev__plat_coarse_now(void)
{
	return coev__sim.clock;
}

/* Ids of the loops, for the owned fds' registrations (sched/fd.c). */
static uint64_t loop_ids;

int coev__plat_loop_init(struct coev_worker *w)
{
	struct sim_loop *l = calloc(1, sizeof *l);

	if (!l)
		return -ENOMEM;
	w->loop = l;
	w->io_id = ++loop_ids;
	return 0;
}

void coev__plat_loop_destroy(struct coev_worker *w)
{
	free(w->loop);
	w->loop = NULL;
}

void *coev__plat_native_loop(struct coev_worker *w)
{
	(void)w;
	return NULL;
}

void coev__plat_timer_arm(struct coev_worker *w, coev__timer_t *tm,
			  coev_time_t deadline)
{
	struct sim_loop *l = loop_of(w);
	struct timer_impl *p = (struct timer_impl *)tm->impl;

	COEV__POINT(TIMER);
	for (coev__timer_t *t = l->timers; t;
	     t = ((struct timer_impl *)t->impl)->next)
		if (t == tm)
			sim_fail("a timer armed twice (the platform's "
				 "contract: arm only a disarmed timer)");
	p->when = deadline;
	p->seq = coev__sim.seq++;
	p->next = l->timers;
	l->timers = tm;
}

void coev__plat_timer_disarm(struct coev_worker *w, coev__timer_t *tm)
{
	struct sim_loop *l = loop_of(w);
	struct timer_impl *p = (struct timer_impl *)tm->impl;

	COEV__POINT(TIMER);
	for (coev__timer_t **pp = &l->timers; *pp;
	     pp = &((struct timer_impl *)(*pp)->impl)->next) {
		if (*pp == tm) {
			*pp = p->next;
			break;
		}
	}
}

/* The earliest armed timer of l, or NULL. */
coev__timer_t *coev__sim_first_timer(struct sim_loop *l)
{
	coev__timer_t *best = NULL, *tm;
	struct timer_impl *b = NULL, *p;

	for (tm = l->timers; tm; tm = p->next) {
		p = (struct timer_impl *)tm->impl;
		if (!b || p->when < b->when ||
		    (p->when == b->when && p->seq < b->seq)) {
			best = tm;
			b = p;
		}
	}
	return best;
}

/* Fake fds: numbers from SIM_FD_BASE, readiness set by the harness. */
#define SIM_FD_BASE 1000000
#define SIM_FDS 64
static unsigned fd_ready[SIM_FDS];
static bool fd_open[SIM_FDS];
/* Owned fds' registrations (sched/fd.c), edge-triggered: the worker whose
 * loop delivers them, their key, and the edges not yet delivered (every
 * sim_fd_set is an arrival of the events it sets). */
static struct {
	struct coev_worker *w;
	uint64_t key;
	unsigned edge;
} fd_et[SIM_FDS];

int sim_fd_new(void)
{
	for (int i = 0; i < SIM_FDS; i++) {
		if (!fd_open[i]) {
			fd_open[i] = true;
			fd_ready[i] = 0;
			fd_et[i].w = NULL;
			fd_et[i].edge = 0;
			return SIM_FD_BASE + i;
		}
	}
	return -EMFILE;
}

void sim_fd_set(int fd, unsigned events)
{
	fd_ready[fd - SIM_FD_BASE] = events;
	if (fd_et[fd - SIM_FD_BASE].w)
		fd_et[fd - SIM_FD_BASE].edge |= events;
}

void sim_fd_close(int fd)
{
	/* The kernel drops a closed fd's registrations. */
	fd_open[fd - SIM_FD_BASE] = false;
	fd_et[fd - SIM_FD_BASE].w = NULL;
}

/* io helper's hook for fuzz/sim_fd.c: whether fd is a fake fd's number,
 * and a fake fd's readiness changed by its own calls (no edge). */
bool sim_fd_fake(int fd)
{
	return fd >= SIM_FD_BASE && fd < SIM_FD_BASE + SIM_FDS;
}

void sim_fd_level(int fd, unsigned events)
{
	fd_ready[fd - SIM_FD_BASE] = events;
	/* epoll reports an edge with the readiness at its harvest: what
	 * went away meanwhile is not announced. */
	fd_et[fd - SIM_FD_BASE].edge &= events;
}

void coev__sim_fd_reset(void)
{
	memset(fd_open, 0, sizeof fd_open);
	memset(fd_et, 0, sizeof fd_et);
}

static unsigned fd_events(int fd)
{
	if (fd < SIM_FD_BASE || fd >= SIM_FD_BASE + SIM_FDS)
		return 0;
	return fd_ready[fd - SIM_FD_BASE];
}

int coev__plat_io_arm(struct coev_worker *w, coev__io_t *io, int fd,
		      unsigned events)
{
	struct sim_loop *l = loop_of(w);
	struct io_impl *p = (struct io_impl *)io->impl, *q;

	if (fd < SIM_FD_BASE || fd >= SIM_FD_BASE + SIM_FDS ||
	    !fd_open[fd - SIM_FD_BASE])
		return -EBADF;
	for (coev__io_t *o = l->ios; o; o = q->next) {
		q = (struct io_impl *)o->impl;
		if (q->fd == fd && (q->events & events))
			return -EBUSY;
	}
	for (coev__io_t *o = l->ios; o; o = ((struct io_impl *)o->impl)->next)
		if (o == io)
			sim_fail("an io armed twice");
	p->fd = fd;
	p->events = events;
	p->next = l->ios;
	l->ios = io;
	return 0;
}

void coev__plat_io_disarm(struct coev_worker *w, coev__io_t *io)
{
	struct sim_loop *l = loop_of(w);
	struct io_impl *p = (struct io_impl *)io->impl;

	for (coev__io_t **pp = &l->ios; *pp;
	     pp = &((struct io_impl *)(*pp)->impl)->next) {
		if (*pp == io) {
			*pp = p->next;
			break;
		}
	}
}

static coev__io_t *ready_io(struct sim_loop *l)
{
	struct io_impl *p;

	for (coev__io_t *io = l->ios; io; io = p->next) {
		p = (struct io_impl *)io->impl;
		if (fd_events(p->fd) & p->events)
			return io;
	}
	return NULL;
}

/* A registered owned fd of l's worker with an edge to deliver, or -1. */
static int ready_et(struct sim_loop *l)
{
	for (int i = 0; i < SIM_FDS; i++)
		if (fd_et[i].w && loop_of(fd_et[i].w) == l && fd_et[i].edge)
			return i;
	return -1;
}

bool coev__sim_loop_due(struct sim_loop *l)
{
	coev__timer_t *tm = coev__sim_first_timer(l);

	return l->ring || ready_io(l) || ready_et(l) >= 0 ||
	       (tm && ((struct timer_impl *)tm->impl)->when <= coev__sim.clock);
}

/* Run what is due on w's loop: ready fds, then due timers, one at a time
 * (a callback may arm or disarm others). */
static void loop_run(struct coev_worker *w)
{
	struct sim_loop *l = loop_of(w);
	coev__timer_t *tm;
	coev__io_t *io;
	int i;

	l->ring = false;
	while ((io = ready_io(l)) != NULL) {
		struct io_impl *p = (struct io_impl *)io->impl;
		unsigned got = fd_events(p->fd) & p->events;

		coev__plat_io_disarm(w, io);
		io->fire(io, got);
	}
	while ((i = ready_et(l)) >= 0) {
		unsigned e = fd_et[i].edge;

		fd_et[i].edge = 0;
		coev__fd_event(w, fd_et[i].key, e);
	}
	while ((tm = coev__sim_first_timer(l)) != NULL &&
	       ((struct timer_impl *)tm->impl)->when <= coev__sim.clock) {
		coev__plat_timer_disarm(w, tm);
		tm->fire(tm);
	}
}

void coev__plat_park(struct coev_worker *w)
{
	struct sim_loop *l = loop_of(w);

	if (!coev__sim_loop_due(l)) {
		coev__sim.cur->state = S_PARK;
		coev__sim.cur->w = w;
		coev__sim_to_loop();
	}
	loop_run(w);
}

void coev__plat_poll(struct coev_worker *w)
{
	loop_run(w);
}

void coev__plat_unpark(struct coev_worker *w)
{
	COEV__POINT(UNPARK);
	loop_of(w)->ring = true;
}

/* An owned fd's registration (sched/fd.c): as epoll's ADD, it reports
 * the readiness the fd has now as an edge. */
int coev__plat_fd_register(struct coev_worker *w, int fd, uint64_t key)
{
	int i = fd - SIM_FD_BASE;

	if (fd < SIM_FD_BASE || fd >= SIM_FD_BASE + SIM_FDS || !fd_open[i])
		return -EBADF;
	fd_et[i].w = w;
	fd_et[i].key = key;
	fd_et[i].edge = fd_ready[i];
	return 0;
}
