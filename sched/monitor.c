/* SPDX-License-Identifier: MIT */
/*
 * sched/monitor.c — the monitor: a thread that rescues work queued behind a
 * stuck worker (Go's sysmon, in small).
 *
 * One monitor runs per runtime with two or more workers, or in debug mode.
 * Every period (2 ms while a worker is awake, 20 ms while all sleep) it
 * reads each worker's run_seq, which the worker makes odd when a task
 * starts running and even when it stops (worker.c, run_begin/run_end in
 * task.c). A worker whose odd run_seq has not changed since the last look
 * is stuck in one task. If work is queued behind it (its ring or its LIFO
 * slot), the monitor wakes a sleeping worker to search
 * (coev__notify_parked), which takes half the ring or, after the LIFO
 * grace, the LIFO entry. Without this, a task spawned or woken into the
 * LIFO slot of a worker that then runs for seconds without suspending
 * waited for it: the LIFO slot alone never wakes anyone (tokio has the same
 * hole). The cost when nothing is stuck: one relaxed store per run start
 * and end on the worker, and a few loads per period here.
 *
 * In debug mode each period also hands the time to observe/'s reports
 * (coev__debug_tick: slow tasks, SIGUSR1 dumps), which need a thread that
 * is not a worker for the same reason.
 *
 * What stays with a stuck worker: tasks pinned to its loop (their timers
 * and fd waits fire late, when the stuck task suspends, and are never lost)
 * and functions posted to it with coev_submit.
 *
 * Rejected: a timer on each worker's own loop (a stuck worker never polls
 * it: the watchdog must be another thread); preempting the stuck task (a
 * stackful coroutine can only be switched where it calls into coev; a
 * signal-driven switch would break every non-reentrant library the task is
 * in); moving the stuck worker's timers and fd waits to others (a libev
 * loop belongs to its thread).
 *
 * The platform decides whether a monitor runs at all (COEV__PLAT_MONITOR):
 * the simulation schedules every thread itself and has none.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "sched.h"

#define PERIOD_NS 2000000
#define PERIOD_IDLE_NS 20000000

#define N_UNPARKED(s) ((unsigned)((s) >> 32))

#if COEV__PLAT_MONITOR

struct coev__monitor {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;	      /* [mu] */
	coev_time_t period;   /* [init] while a worker is awake */
	uint_fast64_t seen[]; /* [monitor] run_seq at the last look */
};

/* One look at every worker: help the stuck ones' queued work move. */
static void rescue(struct coev_rt *rt, struct coev__monitor *m)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct coev_worker *w = rt->workers[i];
		/* Acquire: pairs with the release increments of run_seq in
		 * run_begin/run_end, so the queue depths read below are at
		 * least as new as the run they belong to. */
		uint_fast64_t seq =
			atomic_load_explicit(&w->run_seq, memory_order_acquire);
		uint64_t ring, lifo, inbox;

		if ((seq & 1) && seq == m->seen[i]) {
			/* Stuck in one run for a period at least: its batch
			 * goes to the inject queue (worker.c). */
			coev__worker_batch_rescue(w, seq);
			coev__worker_depths(w, &ring, &lifo, &inbox);
			if (ring || lifo) {
				/* Relaxed: read by thieves after the
				 * wake below (partners_only, worker.c). */
				atomic_store_explicit(&w->stuck_run, seq,
						      memory_order_relaxed);
				atomic_fetch_add_explicit(&rt->stuck_kicks, 1,
							  memory_order_relaxed);
				coev__notify_parked(rt);
			}
		}
		m->seen[i] = seq;
	}
}

/* The time until the next look: short while any worker is awake. */
static coev_time_t next_look(struct coev_rt *rt, struct coev__monitor *m)
{
	uint_fast64_t s =
		atomic_load_explicit(&rt->idle_state, memory_order_relaxed);

	return coev__plat_now() +
	       (N_UNPARKED(s) || COEV__DEBUG(rt) ? m->period : PERIOD_IDLE_NS);
}

static void *monitor_main(void *arg)
{
	struct coev_rt *rt = arg;
	struct coev__monitor *m = rt->mon;
	struct timespec ts;
	sigset_t all;

	/* Process-directed signals go to the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		coev_time_t until = next_look(rt, m);

		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
		if (m->stop)
			break;
		pthread_mutex_unlock(&m->mu);
		rescue(rt, m);
		if (COEV__DEBUG(rt))
			coev__debug_tick(rt);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

static void monitor_free(struct coev__monitor *m)
{
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

int coev__monitor_start(struct coev_rt *rt)
{
	struct coev__monitor *m;
	pthread_condattr_t ca;
	int r;

	if (rt->nworkers < 2 && !COEV__DEBUG(rt))
		return 0;
	m = calloc(1, sizeof *m + rt->nworkers * sizeof m->seen[0]);
	if (!m)
		return -ENOMEM;
	m->period = PERIOD_NS;
	/* Debug mode looks four times per slow-task limit, at most every
	 * 100 us, so a slow run is reported close to the limit. */
	if (COEV__DEBUG(rt) && rt->slow_ns / 4 < m->period)
		m->period = rt->slow_ns / 4 > 100000 ? rt->slow_ns / 4 : 100000;
	if (COEV__DEBUG(rt) && (r = coev__debug_start(rt)) < 0) {
		free(m);
		return r;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cv, &ca);
	pthread_condattr_destroy(&ca);
	rt->mon = m;
	if ((r = pthread_create(&m->th, NULL, monitor_main, rt)) != 0) {
		if (COEV__DEBUG(rt))
			coev__debug_stop(rt);
		rt->mon = NULL;
		monitor_free(m);
		return -r;
	}
	return 0;
}

void coev__monitor_stop(struct coev_rt *rt)
{
	struct coev__monitor *m = rt->mon;

	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->th, NULL);
	if (COEV__DEBUG(rt))
		coev__debug_stop(rt);
	rt->mon = NULL;
	monitor_free(m);
}

#else /* The platform schedules every thread itself: no monitor. */

int coev__monitor_start(struct coev_rt *rt)
{
	(void)rt;
	return 0;
}

void coev__monitor_stop(struct coev_rt *rt)
{
	(void)rt;
}

#endif
