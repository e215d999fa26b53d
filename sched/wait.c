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
 *   - A thread waiter blocks on a mutex and condition variable clocked by
 *     CLOCK_MONOTONIC, the runtime's clock. The signaller's last touch is
 *     the unlock, after which the waiter may return and its frame vanish.
 *
 * A timed park (coev__park_until) arms a timer on the current worker's loop
 * and pins the task to that worker until the park ends: the timer's
 * watcher lives in the task's frame and may be disarmed only by that
 * worker's thread, and while pinned the task can only resume there, so the
 * timer callback (run by that worker) and the task never run at once.
 * Pinned tasks resume through the worker's inbox, which thieves never
 * touch. Rejected: handing timer cancellations to the owning worker as
 * messages (costs an allocation and a round trip per early wake; pinning
 * costs nothing while the task waits, since a waiting task is in no queue).
 */
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
	atomic_init(&wt->done, 0);
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

void coev__waiter_signal(coev__waiter_t *wt, bool resume)
{
	coev_task_t *t = wt->task;

	if (t) {
		/* Pairs with the acquire load in coev__waiter_wait(). */
		atomic_store_explicit(&wt->done, 1, memory_order_release);
		if (resume)
			coev__wake_resume(t);
		else
			coev__wake(t);
		coev__task_release(t);
		return;
	}
	pthread_mutex_lock(&wt->mu);
	atomic_store_explicit(&wt->done, 1, memory_order_relaxed);
	pthread_cond_signal(&wt->cv);
	pthread_mutex_unlock(&wt->mu);
}

static int thread_wait(coev__waiter_t *wt, coev_time_t deadline)
{
	struct timespec ts;
	int r = 0;

	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&wt->mu);
	while (!atomic_load_explicit(&wt->done, memory_order_relaxed)) {
		if (deadline == COEV_FOREVER) {
			pthread_cond_wait(&wt->cv, &wt->mu);
		} else if (pthread_cond_timedwait(&wt->cv, &wt->mu, &ts) ==
			   ETIMEDOUT) {
			if (!atomic_load_explicit(&wt->done,
						  memory_order_relaxed))
				r = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&wt->mu);
	return r;
}

int coev__waiter_wait(coev__waiter_t *wt, coev_time_t deadline)
{
	if (!wt->task)
		return thread_wait(wt, deadline);
	while (!atomic_load_explicit(&wt->done, memory_order_acquire)) {
		if (coev__park_until(deadline) &&
		    !atomic_load_explicit(&wt->done, memory_order_acquire))
			return -ETIMEDOUT;
	}
	return 0;
}

struct timed_park {
	coev__timer_t tm;
	coev_task_t *task;
	bool fired;
};

static void timed_park_fire(coev__timer_t *tm)
{
	struct timed_park *tp = tm->data;

	tp->fired = true;
	coev__wake(tp->task);
}

bool coev__park_until(coev_time_t deadline)
{
	coev_task_t *t = coev__task_self();
	struct coev_worker *w;
	struct timed_park tp;

	if (!t)
		coev__panic("coev__park_until called outside a task");
	if (deadline == COEV_FOREVER) {
		coev__park();
		return false;
	}
	if (deadline <= coev__plat_now())
		return true;
	w = t->worker;
	tp.task = t;
	tp.fired = false;
	tp.tm.fire = timed_park_fire;
	tp.tm.data = &tp;
	t->pin = w;
	coev__plat_timer_arm(w, &tp.tm, deadline);
	coev__park();
	if (!tp.fired)
		coev__plat_timer_disarm(w, &tp.tm);
	t->pin = NULL;
	return tp.fired || deadline <= coev__plat_now();
}

int coev_sleep_until(coev_time_t deadline)
{
	if (!coev__task_self())
		return COEV_ENOTCORO;
	while (coev__plat_now() < deadline)
		coev__park_until(deadline);
	return 0;
}

int coev_sleep(coev_time_t ns)
{
	return coev_sleep_until(coev_deadline(ns));
}
