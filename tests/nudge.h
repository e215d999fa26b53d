/* SPDX-License-Identifier: MIT */
/*
 * tests/nudge.h — for the lifetime tests (tests/sync/test_lifetime.c,
 * tests/bridge/test_future_life.c): run a waiter and its waker on one CPU,
 * and interrupt a thread every NUDGE_NS with NUDGE_SIG, whose handler
 * yields the CPU, so that the waker is preempted at arbitrary
 * instructions and the windows after a last wake are reached. Included
 * after tests/testutil.h.
 */
#ifndef COEV_TESTS_NUDGE_H
#define COEV_TESTS_NUDGE_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NUDGE_SIG (SIGRTMIN + 3)
#define NUDGE_NS 50000

/* The first CPU the test may run on, or -1. */
static int one_cpu(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			return i;
	return -1;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Best effort: without it the test still checks the rule, only the
	 * windows are rarer. */
	(void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void nudged(int sig)
{
	(void)sig;
	sched_yield();
}

/* Interrupt the calling thread every NUDGE_NS (best effort). */
static int nudge_start(timer_t *t)
{
	struct sigevent ev;
	struct itimerspec its = {{0, NUDGE_NS}, {0, NUDGE_NS}};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = nudged;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(NUDGE_SIG, &sa, NULL) != 0)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = NUDGE_SIG;
	ev._sigev_un._tid = gettid(); /* glibc 2.36 names no macro */
	if (timer_create(CLOCK_MONOTONIC, &ev, t) != 0)
		return -1;
	if (timer_settime(*t, 0, &its, NULL) != 0) {
		timer_delete(*t);
		return -1;
	}
	return 0;
}

#endif
