/* SPDX-License-Identifier: MIT */
/*
 * sched/fd.c — the state of the fds coev owns: one registration per fd
 * for its life, edge-triggered, and readiness remembered per direction.
 *
 * An fd is owned from its creation through coev's socket calls (socket,
 * accept, listen, connect: io/socket.c) until coev_close. Its state block
 * (struct coev__fd, sched/internal.h) lives in a process-wide table and
 * holds, per direction (read, write):
 *   seq      edges seen, +2 per event the backend delivers for that
 *            direction; written under the block's lock, read lock-free;
 *   drained  seq | 1 when a call on that direction last found it empty
 *            (EAGAIN, or a short read or write on a stream socket) at that
 *            seq, else anything else (0): the next call waits for an edge
 *            without trying the system call first; a call after a full
 *            read goes straight to the system call;
 *   waiter   the one task waiting for that direction (rule 3 of io.h);
 * and closed, the directions the peer or an error ended for good: after
 * the peer's end a short read no longer drains (the next read returns 0
 * and no edge announces it), as tokio keeps READ_CLOSED through its
 * clears.
 * A call reads seq before its system call and, finding the fd empty, waits
 * until seq moves past what it read: an edge that comes between the system
 * call and the wait moved seq already, and the wait returns at once, so no
 * edge is lost (tokio's ScheduledIo ticks serve the same end; Go's
 * pollDesc keeps a pdReady token per direction instead).
 *
 * Registration. The first wait registers the fd (EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET) in the epoll set of the worker that waits, and it
 * stays there: its events are dispatched by that worker (coev__fd_event)
 * whichever worker the waiting task runs on. A waiter on the same worker
 * is fired as today's one-shot waits are (it takes its deadline's timer
 * down and is queued unpinned); a waiter on another worker gets its result
 * in its io and a wake, and since it is pinned while it waits, it resumes
 * on its own worker and takes its timer down there. Chosen over one
 * runtime-wide set polled by whoever parks (Go's netpoll): that set's
 * readiness would wake every parked worker's loop for each event (one
 * ev_io per worker on one epoll fd), and its polls would contend. The
 * cost at 64 cores: an fd keeps the worker of its first wait; a task
 * stolen away is woken across workers (a doorbell when its worker sleeps),
 * and a busy registration worker dispatches others' events; with
 * accept-and-serve on one worker, as the servers do, tasks mostly stay.
 * The key of an event carries the fd and the block's generation; an event
 * of an older generation, or of a set that is not the block's (a loop
 * destroyed, another runtime), is dropped.
 *
 * Closing. An owned fd must be closed through coev (coev_close), which
 * disowns it first: the generation moves on, waiters get -EBADF, and the
 * kernel drops the registration with the file. A reused number owned
 * again starts afresh (a new generation, registered at its first wait).
 * A call carries the generation it began with into its waits
 * (struct coev__fd_snap): a call woken by an edge just before a close,
 * that finds the direction drained again, gets -EBADF rather than waiting
 * on the number's next owner (the fd harness found that case).
 * An owned fd closed behind coev's back (close(2)) whose number is then
 * reused by an fd coev did not create: calls on it would take the stale
 * state and could wait forever. coev_fd_nonblock, what a foreign fd gets
 * before coev uses it, disowns the number, which covers that case too.
 * Fds coev did not create (the adapters' libraries', pipes) take the
 * one-shot path of plat_ev.c, safe against any close.
 *
 * Memory: the table has two levels (COEV_FD_MAX / 1024 page pointers, 128
 * KiB of zero pages until used, and pages of 1024 blocks allocated on
 * first use and kept), so it costs 64 bytes per fd in the ranges of fd
 * numbers in use and an fd at or above COEV_FD_MAX is refused.
 */
#include <sched.h>
#include <stdlib.h>

#include "sched.h"

#define PAGE_SHIFT 10
#define PAGE_LEN (1u << PAGE_SHIFT)
#define TOP_LEN (COEV_FD_MAX >> PAGE_SHIFT)

/* The key of an owned fd's registration: bit 63 tells it from the
 * one-shot path's keys (the fd alone). */
#define KEY_OWNED (1ull << 63)

static void *_Atomic fd_pages[TOP_LEN];

void *coev__fd_table(void *_Atomic *top, size_t size, int fd, bool grow)
{
	void *_Atomic *slot;
	void *p, *fresh;

	if (fd < 0 || fd >= COEV_FD_MAX)
		return NULL;
	slot = &top[fd >> PAGE_SHIFT];
	/* Acquire: pairs with the release CAS below (the page's zeroes). */
	p = atomic_load_explicit(slot, memory_order_acquire);
	if (!p) {
		if (!grow || !(fresh = calloc(PAGE_LEN, size)))
			return NULL;
		p = NULL;
		if (atomic_compare_exchange_strong_explicit(
			    slot, &p, fresh, memory_order_acq_rel,
			    memory_order_acquire))
			p = fresh;
		else
			free(fresh); /* another thread put one there */
	}
	return (char *)p + (size_t)(fd & (PAGE_LEN - 1)) * size;
}

/* An owned wait, in the io's impl. */
struct fd_wait {
	struct coev__fd *f;
	coev_task_t *task;
	struct coev_worker *w; /* the waiting task's worker */
	unsigned events;
	int result; /* [f's lock] what ended it, 0 while armed */
};

_Static_assert(sizeof(struct fd_wait) <= sizeof(((coev__io_t *)0)->impl),
	       "coev__io_t.impl too small");

/* Take io out of every direction's slot and leave it result (under the
 * lock). */
static void take(struct coev__fd *f, coev__io_t *io, int result)
{
	struct fd_wait *p = (struct fd_wait *)io->impl;

	for (int d = 0; d < 2; d++)
		if (f->waiter[d] == io)
			f->waiter[d] = NULL;
	p->result = result;
}

/* Take every waiter with result: their tasks, referenced, in ts[]. */
static int take_all(struct coev__fd *f, int result, coev_task_t *ts[2])
{
	int n = 0;

	for (int d = 0; d < 2; d++) {
		coev__io_t *io = f->waiter[d];

		if (!io)
			continue;
		ts[n] = ((struct fd_wait *)io->impl)->task;
		coev__task_ref(ts[n++]);
		take(f, io, result);
	}
	return n;
}

/* Wake tasks whose waits were ended from elsewhere: pinned, they resume
 * on their own workers and take their timers down there. */
static void wake_all(coev_task_t *ts[2], int n)
{
	for (int i = 0; i < n; i++) {
		coev__wake(ts[i]);
		coev__task_release(ts[i]);
	}
}

struct coev__fd *coev__fd_owned(int fd)
{
	struct coev__fd *f = coev__fd_table(fd_pages, sizeof *f, fd, false);

	/* Acquire: pairs with the release store of owned in coev__fd_own. */
	if (f && atomic_load_explicit(&f->owned, memory_order_acquire))
		return f;
	return NULL;
}

/* Start or end an ownership of f: a new generation, nothing registered,
 * no edge, no waiter (a waiter left on an fd closed behind coev's back
 * gets -EBADF). */
static void fd_reset(struct coev__fd *f, bool own, bool stream)
{
	coev_task_t *ts[2];
	int n;

	coev__spin_lock(&f->lock);
	n = take_all(f, -EBADF, ts);
	atomic_store_explicit(
		&f->gen,
		(atomic_load_explicit(&f->gen, memory_order_relaxed) + 1) &
			0x7fffffff,
		memory_order_relaxed);
	f->stream = stream;
	f->reg = false;
	atomic_store_explicit(&f->closed, 0, memory_order_relaxed);
	for (int d = 0; d < 2; d++) {
		atomic_store_explicit(&f->seq[d], 0, memory_order_relaxed);
		atomic_store_explicit(&f->drained[d], 0, memory_order_relaxed);
	}
	/* Release: pairs with the acquire load in coev__fd_owned. */
	atomic_store_explicit(&f->owned, own, memory_order_release);
	coev__spin_unlock(&f->lock);
	wake_all(ts, n);
}

int coev__fd_own(int fd, bool stream)
{
	struct coev__fd *f;

	if (fd < 0 || fd >= COEV_FD_MAX)
		return -EBADF;
	if (!(f = coev__fd_table(fd_pages, sizeof *f, fd, true)))
		return -ENOMEM;
	fd_reset(f, true, stream);
	return 0;
}

void coev__fd_disown(int fd)
{
	struct coev__fd *f = coev__fd_table(fd_pages, sizeof *f, fd, false);

	if (f && atomic_load_explicit(&f->owned, memory_order_relaxed))
		fd_reset(f, false, false);
}

/* Whether f's registration is in a live set of w's runtime. */
static bool reg_live(const struct coev__fd *f, struct coev_worker *w)
{
	struct coev_rt *rt = w->rt;

	if (!f->reg)
		return false;
	if (f->reg_id == w->io_id)
		return true;
	return f->reg_idx < rt->nworkers &&
	       rt->workers[f->reg_idx]->io_id == f->reg_id;
}

int coev__fd_arm(struct coev__fd *f, int fd, coev__io_t *io,
		 struct coev_worker *w, coev_task_t *t, unsigned events,
		 const struct coev__fd_snap *snap)
{
	struct fd_wait *p = (struct fd_wait *)io->impl;
	unsigned ready = 0;
	int r;

	coev__spin_lock(&f->lock);
	/* A call that began before a close through coev, woken by an edge
	 * just before it, must not wait on the number's next owner. */
	if (!atomic_load_explicit(&f->owned, memory_order_relaxed) ||
	    atomic_load_explicit(&f->gen, memory_order_relaxed) != snap->gen) {
		coev__spin_unlock(&f->lock);
		return -EBADF;
	}
	for (unsigned ev = COEV_READ; ev <= COEV_WRITE; ev <<= 1) {
		unsigned d = coev__fd_dir(ev);

		if (!(events & ev))
			continue;
		if (atomic_load_explicit(&f->seq[d], memory_order_relaxed) !=
		    snap->seq[d])
			ready |= ev;
		else if (f->waiter[d]) {
			coev__spin_unlock(&f->lock);
			return -EBUSY;
		}
	}
	if (ready) {
		coev__spin_unlock(&f->lock);
		return (int)ready;
	}
	if (!reg_live(f, w)) {
		uint32_t gen =
			atomic_load_explicit(&f->gen, memory_order_relaxed);

		r = coev__plat_fd_register(
			w, fd, KEY_OWNED | (uint64_t)gen << 32 | (unsigned)fd);
		if (r < 0) {
			coev__spin_unlock(&f->lock);
			return r == -EPERM ? (int)events : r;
		}
		f->reg = true;
		f->reg_idx = w->index;
		f->reg_id = w->io_id;
		w->io_ets = true;
	}
	p->f = f;
	p->task = t;
	p->w = w;
	p->events = events;
	p->result = 0;
	for (unsigned ev = COEV_READ; ev <= COEV_WRITE; ev <<= 1)
		if (events & ev)
			f->waiter[coev__fd_dir(ev)] = io;
	coev__spin_unlock(&f->lock);
	return 0;
}

int coev__fd_disarm(coev__io_t *io)
{
	struct fd_wait *p = (struct fd_wait *)io->impl;
	struct coev__fd *f = p->f;
	int r;

	coev__spin_lock(&f->lock);
	if (f->waiter[0] == io || f->waiter[1] == io)
		take(f, io, 0);
	r = p->result;
	coev__spin_unlock(&f->lock);
	return r;
}

/* Under f's lock: an edge of events came; take the waiters it ends, the
 * local ones (w's) into local[] with their results in lres[], the others'
 * tasks, referenced, into ts[]. */
static void fd_edge(struct coev__fd *f, struct coev_worker *w, unsigned events,
		    coev__io_t *local[2], int lres[2], int *nl,
		    coev_task_t *ts[2], int *nr)
{
	if (events & (COEV__FD_CLOSED_READ | COEV__FD_CLOSED_WRITE))
		atomic_fetch_or_explicit(
			&f->closed,
			(events & COEV__FD_CLOSED_READ ? COEV_READ : 0) |
				(events & COEV__FD_CLOSED_WRITE ? COEV_WRITE
								: 0),
			memory_order_relaxed);
	for (unsigned ev = COEV_READ; ev <= COEV_WRITE; ev <<= 1) {
		unsigned d = coev__fd_dir(ev);
		coev__io_t *io = f->waiter[d];
		struct fd_wait *p;

		if (!(events & ev))
			continue;
#if defined(COEV_PLANT_FD_EDGE_NOWAITER)
		/* Planted (fuzz/plants.sh): "nobody waits, nothing to
		 * record" — an edge between a call's EAGAIN and its wait
		 * is lost, and the call waits forever with bytes there. */
		if (!io)
			continue;
#endif
		/* Release: pairs with the acquire load of seq before a
		 * call (io/socket.c): a caller that reads this seq sees
		 * closed as set above, and so does not take a short read
		 * with the peer's end pending for drained. */
		atomic_store_explicit(
			&f->seq[d],
			atomic_load_explicit(&f->seq[d], memory_order_relaxed) +
				2,
			memory_order_release);
		if (!io)
			continue;
		p = (struct fd_wait *)io->impl;
		take(f, io,
		     (int)(events & p->events & (COEV_READ | COEV_WRITE)));
		if (p->w == w) {
			lres[*nl] = p->result;
			local[(*nl)++] = io;
		} else {
			ts[*nr] = p->task;
			coev__task_ref(ts[(*nr)++]);
		}
	}
}

void coev__fd_event(struct coev_worker *w, uint64_t key, unsigned events)
{
	int fd = (int)(key & 0xffffffffu);
	uint32_t gen = (uint32_t)(key >> 32) & 0x7fffffff;
	struct coev__fd *f = coev__fd_table(fd_pages, sizeof *f, fd, false);
	coev__io_t *local[2];
	int lres[2];
	coev_task_t *ts[2];
	int nl = 0, nr = 0;

	if (!f)
		return;
	coev__spin_lock(&f->lock);
	if (!atomic_load_explicit(&f->owned, memory_order_relaxed) ||
	    atomic_load_explicit(&f->gen, memory_order_relaxed) != gen ||
	    !f->reg || f->reg_id != w->io_id) {
		coev__spin_unlock(
			&f->lock); /* an older generation's, or an older set's */
		return;
	}
	fd_edge(f, w, events, local, lres, &nl, ts, &nr);
	coev__spin_unlock(&f->lock);
	wake_all(ts, nr);
	/* A local waiter's task is pinned here and we run here: its frame
	 * stays until its fire has woken it. */
	for (int i = 0; i < nl; i++)
		local[i]->fire(local[i], (unsigned)lres[i]);
}

void coev__fd_table_free(void)
{
	for (size_t i = 0; i < TOP_LEN; i++)
		free(atomic_exchange_explicit(&fd_pages[i], NULL,
					      memory_order_relaxed));
}
