/*
 * sched/plat_ev.c — the real platform: pthreads, CLOCK_MONOTONIC and one
 * libev loop per worker (see platform.h for the contract).
 *
 * Each worker's loop is created with ev_loop_new() (epoll where available)
 * and carries one ev_async, the doorbell. libev keeps an ev_async_send()
 * that arrives while the loop is not blocked as pending, and only writes to
 * its eventfd when the loop is about to block or blocked, so ringing a busy
 * worker costs a few atomic operations and no syscall. Only the owning
 * worker's thread runs or changes its loop; ev_async_send is libev's one
 * call that is safe from other threads.
 */
#include <ev.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "sched.h"

_Static_assert(sizeof(ev_timer) <= sizeof(((coev__timer_t *)0)->impl),
	       "coev__timer_t.impl too small for ev_timer");
_Static_assert(sizeof(ev_io) <= sizeof(((coev__io_t *)0)->impl),
	       "coev__io_t.impl too small for ev_io");
_Static_assert(EV_READ == COEV_READ && EV_WRITE == COEV_WRITE,
	       "coev's event bits are libev's");
_Static_assert(sizeof(ev_async) <= sizeof(((struct coev_worker *)0)->doorbell),
	       "coev_worker.doorbell too small for ev_async");

coev_time_t coev__plat_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (coev_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int coev__plat_thread_start(coev__thread_t *th, void *(*fn)(void *), void *arg)
{
	pthread_t p;
	int r = pthread_create(&p, NULL, fn, arg);

	if (r != 0)
		return -r;
	th->handle = (uintptr_t)p;
	return 0;
}

void coev__plat_thread_join(coev__thread_t th)
{
	pthread_join((pthread_t)th.handle, NULL);
}

static void doorbell_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	/* The ring's only job is to end the loop's wait. */
	(void)loop;
	(void)a;
	(void)revents;
}

int coev__plat_loop_init(struct coev_worker *w)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	ev_async *db = (ev_async *)w->doorbell;

	if (!loop)
		return -EMFILE;
	ev_async_init(db, doorbell_cb);
	ev_async_start(loop, db);
	ev_set_userdata(loop, w);
	w->loop = loop;
	return 0;
}

void coev__plat_loop_destroy(struct coev_worker *w)
{
	struct ev_loop *loop = w->loop;

	if (!loop)
		return;
	ev_async_stop(loop, (ev_async *)w->doorbell);
	ev_loop_destroy(loop);
	w->loop = NULL;
}

void coev__plat_park(struct coev_worker *w)
{
	ev_run(w->loop, EVRUN_ONCE);
}

void coev__plat_poll(struct coev_worker *w)
{
	ev_run(w->loop, EVRUN_NOWAIT);
}

void coev__plat_unpark(struct coev_worker *w)
{
	ev_async_send(w->loop, (ev_async *)w->doorbell);
}

static void timer_cb(struct ev_loop *loop, ev_timer *et, int revents)
{
	coev__timer_t *tm = et->data;

	(void)revents;
	ev_timer_stop(loop, et); /* one shot (a no-op: it has no repeat) */
	tm->fire(tm);
}

void coev__plat_timer_arm(struct coev_worker *w, coev__timer_t *tm,
			  coev_time_t deadline)
{
	ev_timer *et = (ev_timer *)tm->impl;
	coev_time_t left = deadline - coev__plat_now();

	if (left < 0)
		left = 0;
	ev_now_update(w->loop);
	ev_timer_init(et, timer_cb, (ev_tstamp)left / 1e9, 0.);
	et->data = tm;
	ev_timer_start(w->loop, et);
}

void coev__plat_timer_disarm(struct coev_worker *w, coev__timer_t *tm)
{
	ev_timer_stop(w->loop, (ev_timer *)tm->impl);
}

static void io_cb(struct ev_loop *loop, ev_io *eio, int revents)
{
	coev__io_t *io = eio->data;

	/* One shot: the wait that armed it decides whether to wait again. */
	ev_io_stop(loop, eio);
	io->fire(io, (unsigned)revents & (EV_READ | EV_WRITE));
}

void coev__plat_io_arm(struct coev_worker *w, coev__io_t *io, int fd,
		       unsigned events)
{
	ev_io *eio = (ev_io *)io->impl;

	/* ev_io_init marks the fd as set anew, so libev re-registers it
	 * with the kernel even if it thinks it is registered already: the
	 * fd number may belong to a new file since the last wait. */
	ev_io_init(eio, io_cb, fd, (int)events);
	eio->data = io;
	ev_io_start(w->loop, eio);
}

void coev__plat_io_disarm(struct coev_worker *w, coev__io_t *io)
{
	ev_io_stop(w->loop, (ev_io *)io->impl);
}

unsigned coev__plat_choose(struct coev_worker *w, unsigned n)
{
	/* xorshift64: cheap, per worker, good enough to spread thieves. */
	uint64_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->rng = x;
	return (unsigned)((x >> 32) % n);
}
