/* SPDX-License-Identifier: MIT */
/*
 * sched/wait.c — waiting for one event with a deadline: waiters, timed
 * parks and sleep.
 *
 * A waiter is what a completer signals: either a task or a plain thread.
 *   - A task waiter holds a reference on its task from registration until
 *     the signal (taken by the registrant, dropped by the signaller), so
 *     the signaller may wake it even if the task, woken spuriously, has
 *     already seen `done` and moved on. `done` is stored with release
 *     before the wake and read with acquire by the waiting task.
 *   - A once waiter (sync/'s wait queues, signalled by one grant) holds
 *     no reference: the signaller stores done 1, wakes, and stores 2 as
 *     its last touch, and the waiter that saw 1 waits for 2 (a few
 *     instructions) before it leaves, so the task cannot end under the
 *     wake. Two atomic read-modify-writes of the task's count fewer per
 *     wait; not for waits of several signals (join's gather counts
 *     them).
 *   - A thread waiter blocks on a mutex and condition variable clocked by
 *     CLOCK_MONOTONIC, the runtime's clock. The signaller's last touch is
 *     the unlock, after which the waiter may return and its frame vanish.
 *
 * A timed or fd wait (wait_common) arms a timer and/or an io watcher on the
 * current worker's loop and pins the task to that worker while it waits:
 * the watchers live in the task's frame and may be touched only by that
 * worker's thread. A watcher that fires (on that worker) takes both down
 * and wakes the task unpinned, so it is queued normally and may be stolen.
 * Any other wake (a cancel from another thread, a signal) finds the task
 * pinned and queues it on that worker's inbox, which thieves never touch,
 * so it resumes there and takes its watchers down itself: cancelling a
 * wait registered on another worker's loop is handed to that worker.
 * Rejected: handing watcher cancellations to the owning worker as messages
 * (an allocation and a round trip per early wake; pinning costs nothing
 * while the task waits, since a waiting task is in no queue).
 *
 * Every wait checks the task's cancellation first and after it wakes, and
 * is bounded by the task's pushed deadline (coev_deadline_push).
 */
#include <sched.h>
#include <time.h>

#include "sched.h"

coev_time_t coev_now(void)
{
	return coev__plat_now();
}

coev_time_t coev_deadline(coev_time_t timeout)
{
	coev_time_t now = coev__plat_now();

	if (timeout <= 0)
		return now;
	if (timeout > COEV_FOREVER - now)
		return COEV_FOREVER;
	return now + timeout;
}

void coev__waiter_init(coev__waiter_t *wt, coev_task_t *self)
{
	pthread_condattr_t ca;

	wt->task = self;
	wt->once = false;
	atomic_init(&wt->done, 0);
	atomic_init(&wt->gone, false);
	if (self)
		return;
	pthread_mutex_init(&wt->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wt->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void coev__waiter_fini(coev__waiter_t *wt)
{
	if (wt->task)
		return;
	pthread_cond_destroy(&wt->cv);
	pthread_mutex_destroy(&wt->mu);
}

static inline void wake_how(coev_task_t *t, int how)
{
	if (how == COEV_SIG_RESUME)
		coev__wake_resume(t);
	else if (how == COEV_SIG_SHARED)
		coev__wake_shared(t);
	else
		coev__wake(t);
}

void coev__waiter_signal(coev__waiter_t *wt, int how)
{
	coev_task_t *t = wt->task;

	COEV__POINT(WAKE);
	if (t && wt->once) {
		/* Release (both stores): pair with the acquire loads of done
		 * in coev__waiter_wait_n, publishing what the signaller wrote
		 * before (a message, a handed-over lock). The waiter does not
		 * leave before it reads 2, so t stays alive through the wake,
		 * and the store of 2 is the last touch of wt. */
		atomic_store_explicit(&wt->done, 1, memory_order_release);
		wake_how(t, how);
		COEV__POINT(WAKE);
		atomic_store_explicit(&wt->done, 2, memory_order_release);
		return;
	}
	if (t) {
		/* Release: pairs with the acquire loads of done in
		 * coev__waiter_wait_n(), publishing what the signaller wrote
		 * before (a result, a handed-over lock). The add is the last
		 * touch of wt: the waiter may return and its frame vanish
		 * right after it. */
		atomic_fetch_add_explicit(&wt->done, 1, memory_order_release);
		wake_how(t, how);
		coev__task_release(t);
		return;
	}
	pthread_mutex_lock(&wt->mu);
	atomic_fetch_add_explicit(&wt->done, 1, memory_order_relaxed);
	pthread_cond_signal(&wt->cv);
	pthread_mutex_unlock(&wt->mu);
}

static int thread_wait(coev__waiter_t *wt, int n, coev_time_t deadline)
{
	struct timespec ts;
	int r = 0;

	/* A negative deadline would give a negative tv_nsec, which
	 * pthread_cond_timedwait refuses with EINVAL (not ETIMEDOUT): the
	 * loop below would spin until signalled. 0 is as past. */
	if (deadline < 0)
		deadline = 0;
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&wt->mu);
	while (atomic_load_explicit(&wt->done, memory_order_relaxed) < n) {
		if (deadline == COEV_FOREVER) {
			pthread_cond_wait(&wt->cv, &wt->mu);
		} else if (pthread_cond_timedwait(&wt->cv, &wt->mu, &ts) ==
			   ETIMEDOUT) {
			if (atomic_load_explicit(&wt->done,
						 memory_order_relaxed) < n)
				r = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&wt->mu);
	return r;
}

/* Spins before each yield of the CPU, waiting for a partner's few
 * instructions. */
#define SPIN_TRIES 64

/* A once waiter was signalled (done 1): wait for the signaller's last
 * touch (done 2). It is a few instructions away, unless its thread was
 * preempted: then yield the CPU to it. */
static __attribute__((noinline)) void once_finish(coev__waiter_t *wt)
{
	/* Acquire: pairs with the release store of 2 in
	 * coev__waiter_signal: the wake is done with the task. */
	for (unsigned i = 1;
	     atomic_load_explicit(&wt->done, memory_order_acquire) < 2; i++) {
		if (i % SPIN_TRIES)
			coev__cpu_pause();
		else
			sched_yield();
	}
}

int coev__waiter_wait_n(coev__waiter_t *wt, int n, coev_time_t deadline)
{
	coev_task_t *t = wt->task; /* the calling task */
	int r;

	if (!t)
		return thread_wait(wt, n, deadline);
	/* Acquire (both loads): pairs with the release fetch_add of
	 * done in coev__waiter_signal, so what each signaller wrote before
	 * its signal is visible once done reaches n. */
	while (atomic_load_explicit(&wt->done, memory_order_acquire) < n) {
		/* Without a deadline, the park without wait_common's
		 * questions (coev__park_until's answer for it). */
		if (coev__deadline_eff(t, deadline) == COEV_FOREVER &&
		    !coev__cancel_check(t)) {
			coev__park_task(t);
			r = coev__cancel_check(t);
		} else {
			r = coev__park_until(deadline);
		}
		if (r < 0 &&
		    atomic_load_explicit(&wt->done, memory_order_acquire) < n)
			return r;
	}
	/* Acquire: as in once_finish. */
	if (wt->once &&
	    atomic_load_explicit(&wt->done, memory_order_acquire) < 2)
		once_finish(wt);
	return 0;
}

int coev__waiter_wait_on(coev__waiter_t *wt, coev_time_t deadline,
			 unsigned kind, const void *what, long long arg)
{
	int r;

	if (wt->task)
		coev__wait_note(wt->task, kind, what, arg);
	r = coev__waiter_wait_n(wt, 1, deadline);
	if (wt->task)
		coev__wait_note(wt->task, COEV_WAIT_NONE, NULL, 0);
	return r;
}

void coev__waiter_settle(coev__waiter_t *wt, int n)
{
	coev_task_t *t = wt->task;
	coev_time_t limit;

	if (!t) {
		thread_wait(wt, n, COEV_FOREVER);
		return;
	}
	/* The signals are coming, and wt must outlive them. */
	limit = coev__strict_begin(t);
	coev__waiter_wait_n(wt, n, COEV_FOREVER);
	coev__strict_end(t, limit);
}

/*
 * One wait of a task on its worker's loop. The watchers live here, in the
 * waiting task's frame, and only the worker that armed them (w) touches
 * them: the task stays pinned to w until a watcher fires, and a watcher
 * fires on w. The watcher that fires first takes both down, notes why,
 * and wakes the task unpinned (coev__wake_unpin), so a task made ready by
 * I/O or a timer is queued like any other and may be stolen. A task woken
 * otherwise (a cancel, a signal) is still pinned: it resumes on w and
 * takes the watchers down itself.
 */
struct wait {
	coev__timer_t tm;
	coev__io_t io;
	coev_task_t *task;
	struct coev_worker *w;
	struct coev__fd *owned;	    /* an owned fd's wait (fd.c), or NULL */
	bool timer_armed, io_armed; /* [w] */
	int fired;		    /* [w] ready events, or -ETIMEDOUT */
};

/* Take wt's io down: what ended it meanwhile (an owned fd's dispatcher on
 * another worker, or a close, leaves its result in the io), or 0. */
static int wait_io_disarm(struct wait *wt)
{
	if (wt->owned)
		return coev__fd_disarm(&wt->io);
	coev__plat_io_disarm(wt->w, &wt->io);
	return 0;
}

static void wait_fired(struct wait *wt, int why)
{
	coev_task_t *t = wt->task;
	int r;

	if (wt->timer_armed)
		coev__plat_timer_disarm(wt->w, &wt->tm);
	if (wt->io_armed && (r = wait_io_disarm(wt)) != 0)
		why = r; /* the io's end came first (from another worker) */
	wt->timer_armed = wt->io_armed = false;
	wt->fired = why;
	/* wt may vanish from here on: the task can run at once. */
	coev__wake_unpin(t);
}

static void wait_timer_fire(coev__timer_t *tm)
{
	wait_fired(tm->data, -ETIMEDOUT);
}

static void wait_io_fire(coev__io_t *io, unsigned events)
{
	struct wait *wt = io->data;

	/* The backend took the io down before firing it. */
	wt->io_armed = false;
	wait_fired(wt, (int)events);
}

/* Arm wt's watchers on t's worker and pin t there while it waits. False
 * when nothing was armed: *r is then the wait's answer (a regular file
 * cannot be polled and is always ready). */
static bool wait_arm(struct wait *wt, coev_task_t *t, int fd, unsigned events,
		     const struct coev__fd_snap *snap, coev_time_t deadline,
		     int *r)
{
	struct coev_worker *w = t->worker;

	wt->task = t;
	wt->w = w;
	wt->fired = 0;
	wt->timer_armed = deadline != COEV_FOREVER;
	wt->io_armed = fd >= 0;
	t->pin = w;
	if (wt->timer_armed) {
		wt->tm.fire = wait_timer_fire;
		wt->tm.data = wt;
		coev__plat_timer_arm(w, &wt->tm, deadline);
	}
	if (wt->io_armed) {
		wt->io.fire = wait_io_fire;
		wt->io.data = wt;
		*r = wt->owned ? coev__fd_arm(wt->owned, fd, &wt->io, w, t,
					      events, snap)
			       : coev__plat_io_arm(w, &wt->io, fd, events);
		if (*r != 0) {
			if (wt->timer_armed)
				coev__plat_timer_disarm(w, &wt->tm);
			t->pin = t->pin_depth ? w : NULL;
			if (*r == -EPERM)
				*r = (int)events;
			return false;
		}
	}
	return true;
}

static int wait_common(int fd, unsigned events, struct coev__fd *owned,
		       const struct coev__fd_snap *snap, coev_time_t deadline)
{
	coev_task_t *t = coev__task_self();
	struct wait wt;
	bool noted;
	int r;

	if (!t)
		coev__panic("a coev wait was called outside a task");
	if ((r = coev__cancel_check(t)) != 0)
		return r;
	deadline = coev__deadline_eff(t, deadline);
	if (fd < 0 && deadline == COEV_FOREVER) {
		coev__park();
		return coev__cancel_check(t);
	}
	if (deadline != COEV_FOREVER && deadline <= coev__plat_now())
		return -ETIMEDOUT;
	wt.owned = owned;
	if (!wait_arm(&wt, t, fd, events, snap, deadline, &r))
		return r;
	noted = atomic_load_explicit(&t->wait_kind, memory_order_relaxed) !=
		COEV_WAIT_NONE;
	if (!noted)
		coev__wait_note(t, fd >= 0 ? COEV_WAIT_FD : COEV_WAIT_TIMER,
				(const void *)(uintptr_t)events,
				fd >= 0 ? fd : deadline);
	coev__park();
	if (!noted)
		coev__wait_note(t, COEV_WAIT_NONE, NULL, 0);
	/* Either a watcher took both down (and may have unpinned us), or we
	 * are still pinned and so running on wt.w, where we take them down. */
	if (wt.timer_armed)
		coev__plat_timer_disarm(wt.w, &wt.tm);
	if (wt.io_armed && (r = wait_io_disarm(&wt)) != 0 && !wt.fired)
		wt.fired = r;
	/* A task pinned by coev_pin stays pinned (to wt.w, where it already
	 * was). */
	t->pin = t->pin_depth ? wt.w : NULL;
	if (wt.fired)
		return wt.fired;
	return coev__cancel_check(t);
}

int coev__park_until(coev_time_t deadline)
{
	return wait_common(-1, 0, NULL, NULL, deadline);
}

int coev__wait_fd(int fd, unsigned events, coev_time_t deadline)
{
	return wait_common(fd, events, NULL, NULL, deadline);
}

int coev__fd_wait(struct coev__fd *f, int fd, unsigned events,
		  const struct coev__fd_snap *snap, coev_time_t deadline)
{
	return wait_common(fd, events, f, snap, deadline);
}

int coev_sleep_until(coev_time_t deadline)
{
	coev_task_t *t = coev__task_self();
	int r;

	if (!t)
		return COEV_ENOTCORO;
	/* A sleep without end has no timer to note it by. */
	if (deadline == COEV_FOREVER)
		coev__wait_note(t, COEV_WAIT_TIMER, NULL, COEV_FOREVER);
	for (;;) {
		r = coev__park_until(deadline);
		if (deadline == COEV_FOREVER && r < 0)
			coev__wait_note(t, COEV_WAIT_NONE, NULL, 0);
		if (r == -ETIMEDOUT)
			/* Our own deadline, or an earlier pushed one. */
			return t->dl_limit < deadline ? -ETIMEDOUT : 0;
		if (r < 0)
			return r;
	}
}

int coev_sleep(coev_time_t ns)
{
	return coev_sleep_until(coev_deadline(ns));
}

/* --- the spin lock (sched/internal.h) --- */

/* SPIN_TRIES (above): long enough for a critical section on another
 * core, short against a time slice. */

void coev__spin_lock_slow(atomic_uint *l)
{
	for (;;) {
		for (int i = 0; i < SPIN_TRIES; i++) {
			/* Acquire: pairs with the release in
			 * coev__spin_unlock. */
			if (!atomic_load_explicit(l, memory_order_relaxed) &&
			    !atomic_exchange_explicit(l, 1,
						      memory_order_acquire))
				return;
			coev__cpu_pause();
		}
		/* The holder's thread was preempted: let it run. */
		sched_yield();
	}
}
