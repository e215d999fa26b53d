/* SPDX-License-Identifier: MIT */
/*
 * fuzz/sim_sync.c — the simulation's pthread mutexes and condition
 * variables (see fuzz/sim_redirect.h): waiting on one blocks the simulated
 * thread, which gives the CPU back to the loop instead of blocking the one
 * OS thread every simulated thread shares.
 */
#include <errno.h>
#include <string.h>

#include "fuzz/sim_internal.h"

/* A simulated mutex keeps its owner in the pthread_mutex_t's storage (a
 * zeroed one, as PTHREAD_MUTEX_INITIALIZER is, is unlocked). */
struct sim_mutex {
	struct sim_thread *owner;
};

_Static_assert(sizeof(struct sim_mutex) <= sizeof(pthread_mutex_t),
	       "sim_mutex too big");

static struct sim_mutex *mx(pthread_mutex_t *m)
{
	return (struct sim_mutex *)(void *)m;
}

int coev__sim_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	(void)a;
	memset(m, 0, sizeof *m);
	return 0;
}

int coev__sim_mutex_destroy(pthread_mutex_t *m)
{
	if (mx(m)->owner)
		sim_fail("a mutex destroyed while %s holds it",
			 mx(m)->owner->name);
	return 0;
}

int coev__sim_mutex_lock(pthread_mutex_t *m)
{
	struct sim_thread *me =
		coev__sim.running ? coev__sim.cur : &coev__sim.loop;

	COEV__POINT(LOCK);
	while (mx(m)->owner) {
		if (mx(m)->owner == me)
			sim_fail("%s locks a mutex it holds", me->name);
		if (!coev__sim.running || me == &coev__sim.loop)
			sim_fail("a mutex is held outside the simulation");
		me->state = S_MUTEX;
		me->on = m;
		coev__sim_to_loop();
	}
	mx(m)->owner = me;
	return 0;
}

int coev__sim_mutex_trylock(pthread_mutex_t *m)
{
	if (mx(m)->owner)
		return EBUSY;
	mx(m)->owner = coev__sim.running ? coev__sim.cur : &coev__sim.loop;
	return 0;
}

int coev__sim_mutex_unlock(pthread_mutex_t *m)
{
	struct sim_thread *me =
		coev__sim.running ? coev__sim.cur : &coev__sim.loop;

	if (mx(m)->owner != me)
		sim_fail("%s unlocks a mutex it does not hold", me->name);
	mx(m)->owner = NULL;
	for (unsigned i = 0; i < coev__sim.nthreads; i++) {
		struct sim_thread *t = coev__sim.threads[i];

		if (t->state == S_MUTEX && t->on == m)
			t->state = S_RUN; /* all retry; one wins */
	}
	return 0;
}

int coev__sim_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
	(void)a;
	memset(c, 0, sizeof *c);
	return 0;
}

int coev__sim_cond_destroy(pthread_cond_t *c)
{
	for (unsigned i = 0; i < coev__sim.nthreads; i++)
		if (coev__sim.threads[i]->state == S_COND &&
		    coev__sim.threads[i]->on == c)
			sim_fail("a condition variable destroyed with %s "
				 "waiting",
				 coev__sim.threads[i]->name);
	return 0;
}

static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, coev_time_t until)
{
	struct sim_thread *me = coev__sim.cur;

	if (!coev__sim.running || me == &coev__sim.loop)
		sim_fail("a condition variable waited on outside the "
			 "simulation");
	me->state = S_COND;
	me->on = c;
	me->until = until;
	me->signalled = me->timedout = false;
	coev__sim_mutex_unlock(m);
	coev__sim_to_loop();
	coev__sim_mutex_lock(m);
	return me->timedout && !me->signalled ? ETIMEDOUT : 0;
}

int coev__sim_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	return cond_wait(c, m, COEV_FOREVER);
}

int coev__sim_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
			     const struct timespec *ts)
{
	/* The runtime's deadlines are coev__plat_now() values, the virtual
	 * clock, turned into a CLOCK_MONOTONIC timespec. */
	return cond_wait(c, m,
			 (coev_time_t)ts->tv_sec * 1000000000 + ts->tv_nsec);
}

static int cond_wake(pthread_cond_t *c, bool all)
{
	struct sim_thread *waiters[SIM_THREADS_MAX];
	unsigned n = 0;

	for (unsigned i = 0; i < coev__sim.nthreads; i++)
		if (coev__sim.threads[i]->state == S_COND &&
		    coev__sim.threads[i]->on == c)
			waiters[n++] = coev__sim.threads[i];
	if (!n)
		return 0;
	if (!all) {
		/* Which waiter a signal wakes is a choice too. */
		waiters[0] = waiters[sim_choose(n)];
		n = 1;
	}
	for (unsigned i = 0; i < n; i++) {
		waiters[i]->signalled = true;
		waiters[i]->state = S_RUN;
	}
	return 0;
}

int coev__sim_cond_signal(pthread_cond_t *c)
{
	return cond_wake(c, false);
}

int coev__sim_cond_broadcast(pthread_cond_t *c)
{
	return cond_wake(c, true);
}
