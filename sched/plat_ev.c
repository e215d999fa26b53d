/* SPDX-License-Identifier: MIT */
/*
 * sched/plat_ev.c — the real platform: pthreads, CLOCK_MONOTONIC and one
 * libev loop per worker (see platform.h for the contract).
 *
 * Each worker has a libev loop (ev_loop_new(): epoll where available), for
 * timers and for libraries that attach to it (coev_ev_loop), and an epoll
 * set of its own (io_fd) for fd readiness and the doorbell; libev watches
 * that set with one ev_io. A park or poll with no libev timer armed and
 * the loop never lent waits on the worker's set directly: one epoll_wait
 * per round instead of libev's plus the set's (the http benchmark's
 * server parks with no timer). Otherwise it runs libev, which wakes when
 * the set is ready and dispatches it (io_dispatch).
 *
 * The doorbell is an eventfd in the worker's set. As libev's ev_async did,
 * a ring costs a system call only when the worker sleeps in its loop or is
 * about to (db_sleeping) and no ring is pending (db_pending): ringing a
 * busy worker costs one atomic exchange. A ring that comes before a park
 * ends it at once; a park consumes the pending ring, a poll leaves it.
 * Rejected: libev's ev_async kept beside a direct wait on the set (its
 * eventfd is in libev's set, which the direct wait does not watch).
 * Only the owning worker's thread runs or changes its loop and its set's
 * waits; coev__plat_unpark is the one call made from other threads.
 */
#include <errno.h>
#include <ev.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include "sched.h"

_Static_assert(sizeof(ev_timer) <= sizeof(((coev__timer_t *)0)->impl),
	       "coev__timer_t.impl too small for ev_timer");
_Static_assert(EV_READ == COEV_READ && EV_WRITE == COEV_WRITE,
	       "coev's event bits are libev's");
_Static_assert(sizeof(ev_io) <= sizeof(((struct coev_worker *)0)->io_watch),
	       "coev_worker.io_watch too small for ev_io");

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

/* The asymmetric fence (platform.h). Registered once per process: the
 * registration is for the whole address space and is never undone. */
bool coev__plat_fence_cheap;
static pthread_once_t fence_once = PTHREAD_ONCE_INIT;

static void fence_register(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		    0, 0) != 0)
		return; /* the light fence stays a full fence */
	coev__plat_fence_cheap = true;
}

void coev__plat_fence_init(void)
{
	pthread_once(&fence_once, fence_register);
}

void coev__plat_fence_heavy(void)
{
	/* seq_cst: our own half of the order (the membarrier call is a full
	 * barrier on this thread too, but say so to the compiler). */
	atomic_thread_fence(memory_order_seq_cst);
	if (coev__plat_fence_cheap &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) !=
		    0)
		coev__panic("membarrier failed after it was registered: %s",
			    strerror(errno));
	atomic_thread_fence(memory_order_seq_cst);
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
static void io_poll(struct coev_worker *w, int timeout_ms);

/* Ids of the loops' epoll sets, for coev__fd_event (fd.c). */
static atomic_uint_fast64_t loop_ids;

/* The doorbell's key in the worker's epoll set: neither an fd (the
 * one-shot path's keys) nor an owned fd's (bit 63). */
#define KEY_DOORBELL (1ull << 62)

int coev__plat_loop_init(struct coev_worker *w)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	ev_io *iow = (ev_io *)w->io_watch;
	struct epoll_event ev;
	int e;

	if (!loop)
		return -EMFILE;
	w->io_fd = epoll_create1(EPOLL_CLOEXEC);
	w->db_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.u64 = KEY_DOORBELL;
	if (w->io_fd < 0 || w->db_fd < 0 ||
	    epoll_ctl(w->io_fd, EPOLL_CTL_ADD, w->db_fd, &ev) < 0) {
		e = errno;
		if (w->io_fd >= 0)
			close(w->io_fd);
		if (w->db_fd >= 0)
			close(w->db_fd);
		ev_loop_destroy(loop);
		return -e;
	}
	atomic_init(&w->db_pending, 0);
	atomic_init(&w->db_sleeping, 0);
	ev_io_init(iow, io_dispatch, w->io_fd, EV_READ);
	ev_io_start(loop, iow);
	ev_set_userdata(loop, w);
	w->loop = loop;
	w->io_id =
		atomic_fetch_add_explicit(&loop_ids, 1, memory_order_relaxed) +
		1;
	return 0;
}

void coev__plat_loop_destroy(struct coev_worker *w)
{
	struct ev_loop *loop = w->loop;

	if (!loop)
		return;
	ev_io_stop(loop, (ev_io *)w->io_watch);
	ev_loop_destroy(loop);
	w->loop = NULL;
	close(w->io_fd);
	close(w->db_fd);
	if (w->io_pages) {
		for (size_t i = 0; i < COEV_FD_MAX / 1024; i++)
			free(atomic_load_explicit(&w->io_pages[i],
						  memory_order_relaxed));
		free(w->io_pages);
		w->io_pages = NULL;
	}
}

/* Whether only w's own epoll set can have anything for it: no libev timer
 * armed and the loop never lent. Then the set is waited on directly, one
 * epoll_wait, rather than through libev's set that watches it (two). */
static bool direct(struct coev_worker *w)
{
	return !w->loop_lent &&
	       !atomic_load_explicit(&w->st.timers, memory_order_relaxed);
}

void coev__plat_park(struct coev_worker *w)
{
	bool rung;

	/* seq_cst (this store and the load of db_pending): the store-load
	 * order of the parking side, against the exchange-then-load of
	 * coev__plat_unpark: either the ringer sees us sleeping and
	 * writes the eventfd, or we see its ring and do not block. */
	atomic_store_explicit(&w->db_sleeping, 1, memory_order_seq_cst);
	rung = atomic_load_explicit(&w->db_pending, memory_order_seq_cst);
	if (direct(w))
		io_poll(w, rung ? 0 : -1);
	else
		ev_run(w->loop, rung ? EVRUN_NOWAIT : EVRUN_ONCE);
	w->io_parked = true;
	atomic_store_explicit(&w->db_sleeping, 0, memory_order_relaxed);
	/* Acquire: pairs with the exchange in coev__plat_unpark, so what
	 * the ringer published before ringing (a queued task, a post) is
	 * seen by the scheduler's look after this park. */
	if (atomic_load_explicit(&w->db_pending, memory_order_relaxed))
		atomic_exchange_explicit(&w->db_pending, 0,
					 memory_order_acquire);
}

/* A poll that can find nothing is skipped: with no timer and no fd armed
 * or registered, and the loop never handed to a user (coev_ev_loop, whose
 * watchers we cannot see), only the doorbell can be ready, and what it
 * announces (posts, the inbox) the scheduler reads without the loop. A
 * ring is left pending: it ends the next park at once. A worker that
 * parked since the last fairness poll has just read its set: that poll is
 * skipped too (the http server parks every few dozen requests, and these
 * polls were a fifth of its epoll_wait calls, nearly all finding nothing). */
void coev__plat_poll(struct coev_worker *w)
{
	if (direct(w)) {
		if (w->io_parked)
			w->io_parked = false;
		else if (w->io_ets ||
			 atomic_load_explicit(&w->st.ios, memory_order_relaxed))
			io_poll(w, 0);
		return;
	}
	ev_run(w->loop, EVRUN_NOWAIT);
}

void *coev__plat_native_loop(struct coev_worker *w)
{
	w->loop_lent = true; /* its users' watchers are polled from now on */
	return w->loop;
}

void coev__plat_unpark(struct coev_worker *w)
{
	uint64_t one = 1;

	/* seq_cst: see coev__plat_park. A ring already pending was
	 * written, or will be seen by the park's load: nothing to do. */
	if (atomic_exchange_explicit(&w->db_pending, 1, memory_order_seq_cst))
		return;
	if (atomic_load_explicit(&w->db_sleeping, memory_order_seq_cst) &&
	    write(w->db_fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, so it is readable anyway. */
	}
}

/*
 * fd readiness. Each worker has its own epoll set, watched by one ev_io of
 * its loop (or waited on directly, see the header). Owned fds (sched/fd.c)
 * are registered there once, edge-triggered, keyed with bit 63, their
 * generation and number; coev__fd_event takes their events. Every other
 * waited-for fd is registered for one wait with EPOLLONESHOT, keyed by its
 * number:
 *   arm:    the first wait on an fd ADDs it, later waits MOD it (a MOD
 *           that finds no entry, because the fd was closed and its number
 *           reused, ADDs): one epoll_ctl per wait;
 *   fire:   the event disables the entry by itself (one shot); the
 *           dispatcher wakes the waiters and re-arms only for a waiter of
 *           the other direction still waiting;
 *   disarm: a wait ended otherwise (deadline, cancel) DELs the entry.
 * So once a wait has ended the loop never touches its fd again, and the
 * task may move to another worker and close the fd there, as the
 * adapters' libraries close theirs.
 * Rejected: libev's own ev_io per wait. libev stops an fd lazily: the fd
 * stays in the kernel's set until an event comes for it, and then libev
 * calls epoll_ctl on it from this worker while the task, moved elsewhere,
 * may be closing it (TSan caught the race; an EBADF also makes libev
 * rebuild its whole epoll set). libev does not expose its epoll fd to
 * remove the fd eagerly. The slots sit in a two-level table bounded by
 * COEV_FD_MAX (fd.c's coev__fd_table).
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

/* libev found w's set ready (a park or poll through libev). */
static void io_dispatch(struct ev_loop *loop, ev_io *watch, int revents)
{
	(void)watch;
	(void)revents;
	io_poll(ev_userdata(loop), 0);
}

/* Wait up to timeout_ms (-1: no limit) for w's set and dispatch what it
 * has: the doorbell, owned fds' edges (fd.c), one-shot waits. */
/* A one-shot registration of fd fired with got: wake its waiters. */
static void io_fire_oneshot(struct coev_worker *w, int fd, unsigned got)
{
	struct io_slot *sl = io_slot(w, fd, false);
	coev__io_t *rd = NULL, *wr = NULL;

	if (!sl)
		return;
	sl->armed = false; /* one shot: the entry is disabled now */
	if (sl->rd && (got & COEV_READ)) {
		rd = sl->rd;
		sl->rd = NULL;
	}
	if (sl->wr && (got & COEV_WRITE)) {
		wr = sl->wr;
		sl->wr = NULL;
	}
	/* An io armed for both directions fires once, whichever came, and
	 * leaves the slot for both. */
	if (rd && sl->wr == rd)
		sl->wr = NULL;
	if (wr && sl->rd == wr)
		sl->rd = NULL;
	if (rd == wr)
		wr = NULL;
	if (sl->rd || sl->wr)
		io_sync(w, fd, sl); /* the other direction waits on */
	/* rd's fire may disarm (and free) wr, or grow the slots: wr is
	 * looked up again after it. */
	sl->pending = wr;
	if (rd) {
		COEV_STAT_ADD(w, ios, -1);
		rd->fire(rd, got);
	}
	if (!wr || !(sl = io_slot(w, fd, false)))
		return;
	wr = sl->pending;
	sl->pending = NULL;
	if (wr) {
		COEV_STAT_ADD(w, ios, -1);
		wr->fire(wr, got);
	}
}

static void io_poll(struct coev_worker *w, int timeout_ms)
{
	struct epoll_event evs[128];
	uint64_t cnt;
	int n;

	n = epoll_wait(w->io_fd, evs, 128, timeout_ms);
	/* Awake from here: the wakes of what is dispatched below (and of
	 * libev's timers) must not write the doorbell, which the next park
	 * would then find rung (an eventfd write and read per round). */
	atomic_store_explicit(&w->db_sleeping, 0, memory_order_relaxed);
	for (int i = 0; i < n; i++) {
		uint64_t key = evs[i].data.u64;
		uint32_t e = evs[i].events;
		unsigned got = 0;

		if (key == KEY_DOORBELL) {
			/* Reset the counter; the ring is db_pending's. */
			if (read(w->db_fd, &cnt, sizeof cnt) < 0) {
				/* EAGAIN: another read got it */
			}
			continue;
		}
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			got |= COEV_READ;
		if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			got |= COEV_WRITE;
		if (!(key >> 63)) {
			io_fire_oneshot(w, (int)key, got);
			continue;
		}
		if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			got |= COEV__FD_CLOSED_READ;
		if (e & (EPOLLHUP | EPOLLERR))
			got |= COEV__FD_CLOSED_WRITE;
		coev__fd_event(w, key, got);
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
	atomic_store_explicit(&w->db_sleeping, 0, memory_order_relaxed);
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
