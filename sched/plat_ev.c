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
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <time.h>

#include "sched.h"

_Static_assert(sizeof(ev_timer) <= sizeof(((coev__timer_t *)0)->impl),
	       "coev__timer_t.impl too small for ev_timer");
_Static_assert(EV_READ == COEV_READ && EV_WRITE == COEV_WRITE,
	       "coev's event bits are libev's");
_Static_assert(sizeof(ev_io) <= sizeof(((struct coev_worker *)0)->io_watch),
	       "coev_worker.io_watch too small for ev_io");
_Static_assert(sizeof(ev_async) <= sizeof(((struct coev_worker *)0)->doorbell),
	       "coev_worker.doorbell too small for ev_async");

coev_time_t coev__plat_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (coev_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

coev_time_t coev__plat_coarse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
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

static void io_dispatch(struct ev_loop *loop, ev_io *watch, int revents);

static void doorbell_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	/* The ring's only job is to end the loop's wait. */
	(void)loop;
	(void)a;
	(void)revents;
}

/*
 * libev makes the doorbell's eventfd inside ev_async_start and aborts the
 * process when it cannot (no fd left). So an eventfd is made here first,
 * where failing is an error, and closed just before ev_async_start, whose
 * eventfd then gets the same number (the lowest free one). Only an fd
 * opened by another thread between the two calls can still make libev
 * abort.
 */
static int probe_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Ids of the loops' epoll sets, for coev__fd_event (fd.c). */
static atomic_uint_fast64_t loop_ids;

int coev__plat_loop_init(struct coev_worker *w)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	ev_async *db = (ev_async *)w->doorbell;
	int r;

	if (!loop)
		return -EMFILE;
	ev_io *iow = (ev_io *)w->io_watch;

	w->io_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->io_fd < 0) {
		int e = errno;

		ev_loop_destroy(loop);
		return -e;
	}
	if ((r = probe_eventfd()) < 0) {
		close(w->io_fd);
		ev_loop_destroy(loop);
		return r;
	}
	ev_async_init(db, doorbell_cb);
	ev_async_start(loop, db);
	ev_io_init(iow, io_dispatch, w->io_fd, EV_READ);
	ev_io_start(loop, iow);
	ev_set_userdata(loop, w);
	w->loop = loop;
	w->io_id = atomic_fetch_add_explicit(&loop_ids, 1,
					     memory_order_relaxed) +
		   1;
	return 0;
}

void coev__plat_loop_destroy(struct coev_worker *w)
{
	struct ev_loop *loop = w->loop;

	if (!loop)
		return;
	ev_async_stop(loop, (ev_async *)w->doorbell);
	ev_io_stop(loop, (ev_io *)w->io_watch);
	ev_loop_destroy(loop);
	w->loop = NULL;
	close(w->io_fd);
	if (w->io_pages) {
		for (size_t i = 0; i < COEV_FD_MAX / 1024; i++)
			free(atomic_load_explicit(&w->io_pages[i],
						  memory_order_relaxed));
		free(w->io_pages);
		w->io_pages = NULL;
	}
}

void coev__plat_park(struct coev_worker *w)
{
	ev_run(w->loop, EVRUN_ONCE);
}

/* A poll that can find nothing is skipped: with no timer and no fd armed,
 * and the loop never handed to a user (coev_ev_loop, whose watchers we
 * cannot see), only the doorbell can be ready, and what it announces
 * (posts, the inbox) the scheduler reads without the loop. A ring left
 * unread ends the next park at once. */
void coev__plat_poll(struct coev_worker *w)
{
	if (!w->loop_lent && !w->io_ets &&
	    !atomic_load_explicit(&w->st.timers, memory_order_relaxed) &&
	    !atomic_load_explicit(&w->st.ios, memory_order_relaxed))
		return;
	ev_run(w->loop, EVRUN_NOWAIT);
}

void *coev__plat_native_loop(struct coev_worker *w)
{
	w->loop_lent = true; /* its users' watchers are polled from now on */
	return w->loop;
}

void coev__plat_unpark(struct coev_worker *w)
{
	ev_async_send(w->loop, (ev_async *)w->doorbell);
}

/*
 * fd readiness. Each worker has its own epoll set, watched by one ev_io of
 * its loop, and registers each waited-for fd there with EPOLLONESHOT:
 *   arm:    the first wait on an fd ADDs it, later waits MOD it (a MOD
 *           that finds no entry, because the fd was closed and its number
 *           reused, ADDs): one epoll_ctl per wait;
 *   fire:   the event disables the entry by itself (one shot); the
 *           dispatcher wakes the waiters and re-arms only for a waiter of
 *           the other direction still waiting;
 *   disarm: a wait ended otherwise (deadline, cancel) DELs the entry.
 * So once a wait has ended the loop never touches its fd again, and the
 * task may move to another worker and close the fd there.
 * Rejected: libev's own ev_io per wait. libev stops an fd lazily: the fd
 * stays in the kernel's set until an event comes for it, and then libev
 * calls epoll_ctl on it from this worker while the task, moved elsewhere,
 * may be closing it (TSan caught the race; an EBADF also makes libev
 * rebuild its whole epoll set). libev does not expose its epoll fd to
 * remove the fd eagerly. Rejected too: a permanent edge-triggered
 * registration per fd (Go's pollDesc): without owning every close, a
 * reused fd number cannot be told from the old one.
 */
struct io_slot {
	coev__io_t *rd, *wr; /* waiting for read / write, or NULL */
	coev__io_t *pending; /* taken out to fire after rd's fire returns */
	bool reg;	     /* in the epoll set (maybe disabled) */
	bool armed;	     /* enabled: an event may still come */
};

struct io_impl {
	int fd;
	unsigned events;
};

_Static_assert(sizeof(struct io_impl) <= sizeof(((coev__io_t *)0)->impl),
	       "coev__io_t.impl too small");

/* fd's slot, in a table bounded whatever the fd (fd.c): NULL for an fd
 * out of its range, or when a page is missing and cannot be had. */
static struct io_slot *io_slot(struct coev_worker *w, int fd, bool grow)
{
	if (!w->io_pages) {
		if (!grow || !(w->io_pages = calloc(COEV_FD_MAX / 1024,
						    sizeof *w->io_pages)))
			return NULL;
	}
	return coev__fd_table(w->io_pages, sizeof(struct io_slot), fd, grow);
}

/* Make the kernel's entry for fd match the slot's waiters. */
static int io_sync(struct coev_worker *w, int fd, struct io_slot *sl)
{
	struct epoll_event ev;
	int op;

	ev.events =
		(sl->rd ? EPOLLIN | EPOLLRDHUP : 0) | (sl->wr ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)(unsigned)fd;
	if (!ev.events) {
		if (sl->armed &&
		    epoll_ctl(w->io_fd, EPOLL_CTL_DEL, fd, NULL) == 0)
			sl->reg = false;
		sl->armed = false;
		return 0;
	}
	ev.events |= EPOLLONESHOT;
	op = sl->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(w->io_fd, op, fd, &ev) < 0) {
		if (errno == ENOENT && op == EPOLL_CTL_MOD)
			op = EPOLL_CTL_ADD; /* closed and reused */
		else if (errno == EEXIST && op == EPOLL_CTL_ADD)
			op = EPOLL_CTL_MOD;
		else
			return -errno;
		if (epoll_ctl(w->io_fd, op, fd, &ev) < 0)
			return -errno;
	}
	sl->reg = sl->armed = true;
	return 0;
}

int coev__plat_io_arm(struct coev_worker *w, coev__io_t *io, int fd,
		      unsigned events)
{
	struct io_impl *p = (struct io_impl *)io->impl;
	struct io_slot *sl;
	int r;

	if (fd >= COEV_FD_MAX)
		return -EBADF;
	if (!(sl = io_slot(w, fd, true)))
		return -ENOMEM;
	if (((events & COEV_READ) && sl->rd) ||
	    ((events & COEV_WRITE) && sl->wr))
		return -EBUSY;
	p->fd = fd;
	p->events = events;
	if (events & COEV_READ)
		sl->rd = io;
	if (events & COEV_WRITE)
		sl->wr = io;
	if ((r = io_sync(w, fd, sl)) < 0) {
		if (sl->rd == io)
			sl->rd = NULL;
		if (sl->wr == io)
			sl->wr = NULL;
		return r;
	}
	COEV_STAT_ADD(w, ios, 1);
	return r;
}

void coev__plat_io_disarm(struct coev_worker *w, coev__io_t *io)
{
	struct io_impl *p = (struct io_impl *)io->impl;
	struct io_slot *sl = io_slot(w, p->fd, false);
	bool mine = false;

	if (!sl)
		return;
	if (sl->pending == io) /* disarmed by the fire before its own */
		sl->pending = NULL;
	if (sl->rd == io) {
		sl->rd = NULL;
		mine = true;
	}
	if (sl->wr == io) {
		sl->wr = NULL;
		mine = true;
	}
	if (mine) {
		COEV_STAT_ADD(w, ios, -1);
		io_sync(w, p->fd, sl);
	}
}

static void io_dispatch(struct ev_loop *loop, ev_io *watch, int revents)
{
	struct coev_worker *w = ev_userdata(loop);
	struct epoll_event evs[128];
	int n;

	(void)watch;
	(void)revents;
	n = epoll_wait(w->io_fd, evs, 128, 0);
	for (int i = 0; i < n; i++) {
		int fd = (int)evs[i].data.u64;
		uint32_t e = evs[i].events;
		struct io_slot *sl;
		coev__io_t *rd = NULL, *wr = NULL;
		unsigned got = 0;

		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			got |= COEV_READ;
		if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			got |= COEV_WRITE;
		if (evs[i].data.u64 >> 63) {
			if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				got |= COEV__FD_CLOSED_READ;
			if (e & (EPOLLHUP | EPOLLERR))
				got |= COEV__FD_CLOSED_WRITE;
			coev__fd_event(w, evs[i].data.u64, got);
			continue;
		}
		if (!(sl = io_slot(w, fd, false)))
			continue;
		sl->armed = false; /* one shot: the entry is disabled now */
		if (sl->rd && (got & COEV_READ)) {
			rd = sl->rd;
			sl->rd = NULL;
		}
		if (sl->wr && (got & COEV_WRITE)) {
			wr = sl->wr;
			sl->wr = NULL;
		}
		/* An io armed for both directions fires once, whichever
		 * came, and leaves the slot for both. */
		if (rd && sl->wr == rd)
			sl->wr = NULL;
		if (wr && sl->rd == wr)
			sl->rd = NULL;
		if (rd == wr)
			wr = NULL;
		if (sl->rd || sl->wr)
			io_sync(w, fd, sl); /* the other direction waits on */
		/* rd's fire may disarm (and free) wr, or grow the slots:
		 * wr is looked up again after it. */
		sl->pending = wr;
		if (rd) {
			COEV_STAT_ADD(w, ios, -1);
			rd->fire(rd, got);
		}
		if (!wr || !(sl = io_slot(w, fd, false)))
			continue;
		wr = sl->pending;
		sl->pending = NULL;
		if (wr) {
			COEV_STAT_ADD(w, ios, -1);
			wr->fire(wr, got);
		}
	}
}

int coev__plat_fd_register(struct coev_worker *w, int fd, uint64_t key)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = key;
	if (epoll_ctl(w->io_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	/* The same file registered before, under an older key. */
	if (errno == EEXIST && epoll_ctl(w->io_fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return -errno;
}

static void timer_cb(struct ev_loop *loop, ev_timer *et, int revents)
{
	coev__timer_t *tm = et->data;
	struct coev_worker *w = ev_userdata(loop);

	(void)revents;
	ev_timer_stop(loop, et); /* one shot (a no-op: it has no repeat) */
	COEV_STAT_ADD(w, timers, -1);
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
	COEV_STAT_ADD(w, timers, 1);
}

void coev__plat_timer_disarm(struct coev_worker *w, coev__timer_t *tm)
{
	if (ev_is_active((ev_timer *)tm->impl))
		COEV_STAT_ADD(w, timers, -1);
	ev_timer_stop(w->loop, (ev_timer *)tm->impl);
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
